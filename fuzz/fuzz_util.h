/* fuzz/fuzz_util.h - what the fuzz harnesses share: a reader over the
   fuzzer's bytes (everything past the end reads as 0) and the decoding of
   floats from raw bits, so NaN, infinities, subnormals and huge values all
   reach the library. Header-only, static functions. */
#ifndef FUZZ_UTIL_H
#define FUZZ_UTIL_H

#include <stddef.h>
#include <stdint.h>
#include <string.h>

#if defined(__GNUC__) || defined(__clang__)
#define FUZZ_FN static __attribute__((unused))
#else
#define FUZZ_FN static
#endif

typedef struct fuzz_reader {
  const uint8_t *p;
  size_t left;
} fuzz_reader;

FUZZ_FN fuzz_reader fuzz_reader_init(const uint8_t *data, size_t size) {
  fuzz_reader r;
  r.p = data;
  r.left = size;
  return r;
}
FUZZ_FN unsigned fuzz_u8(fuzz_reader *r) {
  if (r->left == 0) return 0;
  --r->left;
  return *r->p++;
}
FUZZ_FN unsigned fuzz_u16(fuzz_reader *r) { /* little-endian */
  const unsigned lo = fuzz_u8(r);
  return lo | (fuzz_u8(r) << 8);
}
FUZZ_FN uint32_t fuzz_u32(fuzz_reader *r) {
  const uint32_t lo = fuzz_u16(r);
  return lo | ((uint32_t)fuzz_u16(r) << 16);
}
FUZZ_FN uint64_t fuzz_u64(fuzz_reader *r) {
  const uint64_t lo = fuzz_u32(r);
  return lo | ((uint64_t)fuzz_u32(r) << 32);
}
/* A float from 4 raw bytes (any bit pattern). */
FUZZ_FN float fuzz_f32_bits(fuzz_reader *r) {
  const uint32_t u = fuzz_u32(r);
  float f;
  memcpy(&f, &u, sizeof f);
  return f;
}
/* Bytes still unread. */
FUZZ_FN size_t fuzz_left(const fuzz_reader *r) { return r->left; }
/* The reader past its next n bytes (all that is left if fewer). */
FUZZ_FN void fuzz_skip(fuzz_reader *r, size_t n) {
  n = n < r->left ? n : r->left;
  r->p += n;
  r->left -= n;
}
/* Random access for a fixed header whose fields overlap: the value at byte
   off of the unread bytes, the reader unchanged (0 past the end). */
FUZZ_FN unsigned fuzz_u8_at(const fuzz_reader *r, size_t off) {
  return off < r->left ? r->p[off] : 0u;
}
FUZZ_FN unsigned fuzz_u16_at(const fuzz_reader *r, size_t off) {
  fuzz_reader s = *r;
  fuzz_skip(&s, off);
  return off < r->left ? fuzz_u16(&s) : 0u;
}
FUZZ_FN uint32_t fuzz_u32_at(const fuzz_reader *r, size_t off) {
  fuzz_reader s = *r;
  fuzz_skip(&s, off);
  return off < r->left ? fuzz_u32(&s) : 0u;
}
FUZZ_FN float fuzz_f32_at(const fuzz_reader *r, size_t off) {
  const uint32_t u = fuzz_u32_at(r, off);
  float f;
  memcpy(&f, &u, sizeof f);
  return f;
}

#endif /* FUZZ_UTIL_H */
