/* npy.h - a strict reader (and a small writer) for NumPy .npy files.
   Single header, C99 (also compiles as C++11), libc only. Part of the
   adasoftmax examples; usable on its own and from fuzz harnesses.

   DO THIS in exactly one C or C++ file:

       #define NPY_IMPLEMENTATION
       #include "npy.h"

   (define NPY_STATIC as well to make every function static).

   What it reads: format versions 1.0, 2.0 and 3.0; a header that is a Python
   dict literal with exactly the keys 'descr', 'fortran_order' and 'shape'
   (any order, any whitespace between tokens, optional trailing comma,
   whitespace padding after the closing brace); C order only; the dtypes
   '<f4', '<f2', '<i4' and '<u2', each only when the caller allows it.
   Everything else is refused with a one-line message naming the problem:
   Fortran order, big-endian or other dtypes, a rank other than the one asked
   for, negative or non-integer dimensions, sizes that overflow, a header
   length past the end of the input, non-ASCII or control bytes in the header,
   duplicate, missing or unknown keys, and data whose length is not exactly
   product(shape) * itemsize (truncated data and trailing bytes alike).

   Memory: the only allocation the caller sees is the data buffer (one
   malloc, at least 1 byte even for an empty array) which the caller releases
   with free() or npy_free(). npy_read() allocates a temporary header buffer
   (about the size of the header) and frees it before returning. Sizes are
   overflow-checked; there is no cap on the file size (real heads reach GBs).
   Data are returned in host byte order (swapped on a big-endian host).

   Error messages go to a caller buffer (err, errlen; err may be NULL); they
   name the problem but not the file, so the caller can prefix the name.
*/
#ifndef NPY_H
#define NPY_H

#include <stddef.h>

#ifndef NPY_DEF
#ifdef NPY_STATIC
#if defined(__GNUC__) || defined(__clang__)
#define NPY_DEF static __attribute__((unused))
#else
#define NPY_DEF static
#endif
#else
#define NPY_DEF extern
#endif
#endif

#ifdef __cplusplus
extern "C" {
#endif

/* dtype bits: the `dtypes` argument of the readers is an OR of these. */
#define NPY_F4 1u /* '<f4' float32 */
#define NPY_F2 2u /* '<f2' float16 (raw bits; convert with npy_f16_to_f32) */
#define NPY_I4 4u /* '<i4' int32 */
#define NPY_U2 8u /* '<u2' uint16 (e.g. raw bfloat16 bits) */

#define NPY_MAX_RANK 8

typedef enum npy_status {
  NPY_OK = 0,
  NPY_ERR_FORMAT = -1, /* the input is not an acceptable .npy file */
  NPY_ERR_IO = -2,     /* the file cannot be opened or read (or written) */
  NPY_ERR_NOMEM = -3,  /* the data buffer cannot be allocated */
  NPY_ERR_ARG = -4     /* bad arguments from the caller (NULL, bad rank) */
} npy_status;

typedef struct npy_array {
  unsigned dtype;              /* one of NPY_F4, NPY_F2, NPY_I4, NPY_U2 */
  size_t itemsize;             /* bytes per element */
  int version;                 /* format major version: 1, 2 or 3 */
  int ndim;                    /* number of dimensions */
  size_t shape[NPY_MAX_RANK];  /* shape[0..ndim-1]; the rest are 0 */
  size_t count;                /* product of the shape (0 if a dim is 0) */
  size_t nbytes;               /* count * itemsize */
  size_t data_offset;          /* where the data start in the file */
  void *data;                  /* the elements (malloc'd), NULL after a
                                  header-only parse */
} npy_array;

/* Parse the prelude and header dict at the start of buf (len bytes; the data
   need not follow). Fills everything but `data`. rank: the required number
   of dimensions (1..NPY_MAX_RANK), or 0 for any. */
NPY_DEF int npy_parse_header(const void *buf, size_t len, unsigned dtypes,
                             int rank, npy_array *out, char *err,
                             size_t errlen);
/* Parse a whole .npy file held in memory; out->data is a malloc'd copy
   (so it is aligned whatever the alignment of buf). */
NPY_DEF int npy_parse(const void *buf, size_t len, unsigned dtypes, int rank,
                      npy_array *out, char *err, size_t errlen);
/* Read a .npy file (header first, then exactly the promised data). */
NPY_DEF int npy_read(const char *path, unsigned dtypes, int rank,
                     npy_array *out, char *err, size_t errlen);
NPY_DEF void npy_free(npy_array *a);

/* Write a 2-D C-order '<f4' array (format 1.0). On failure the partial file
   is removed. */
NPY_DEF int npy_write_f32(const char *path, const float *data, size_t rows,
                          size_t cols, char *err, size_t errlen);

/* "<f4" etc.; "?" for an unknown bit. */
NPY_DEF const char *npy_dtype_descr(unsigned dtype);
/* IEEE binary16 bits to float (exact; NaN payload not kept). */
NPY_DEF float npy_f16_to_f32(unsigned short h);

#ifdef __cplusplus
}
#endif
#endif /* NPY_H */

/* ======================================================================== */
#if defined(NPY_IMPLEMENTATION) && !defined(NPY_IMPLEMENTATION_INCLUDED)
#define NPY_IMPLEMENTATION_INCLUDED

#include <errno.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#if defined(__GNUC__) || defined(__clang__)
#define NPY__PRIVATE static __attribute__((unused))
#define NPY__PRINTF(f, a) __attribute__((format(printf, f, a)))
#else
#define NPY__PRIVATE static
#define NPY__PRINTF(f, a)
#endif

NPY__PRIVATE void npy__fail(char *err, size_t errlen, const char *fmt, ...)
    NPY__PRINTF(3, 4);
NPY__PRIVATE void npy__fail(char *err, size_t errlen, const char *fmt, ...) {
  va_list ap;
  if (err == NULL || errlen == 0) return;
  va_start(ap, fmt);
  vsnprintf(err, errlen, fmt, ap);
  va_end(ap);
  /* Quoted header text may hold tabs: keep the message one printable line. */
  for (; *err; err++)
    if ((unsigned char)*err < 0x20 || *err == 0x7f) *err = '?';
}

NPY__PRIVATE int npy__host_is_big_endian(void) {
  const uint16_t one = 1;
  unsigned char b;
  memcpy(&b, &one, 1);
  return b == 0;
}

/* Data in the file are little-endian; swap in place on a big-endian host. */
NPY__PRIVATE void npy__to_host(void *data, size_t count, size_t itemsize) {
  unsigned char *p = (unsigned char *)data;
  size_t i, j;
  if (!npy__host_is_big_endian() || itemsize < 2) return;
  for (i = 0; i < count; i++, p += itemsize)
    for (j = 0; j < itemsize / 2; j++) {
      unsigned char t = p[j];
      p[j] = p[itemsize - 1 - j];
      p[itemsize - 1 - j] = t;
    }
}

NPY_DEF const char *npy_dtype_descr(unsigned dtype) {
  switch (dtype) {
  case NPY_F4: return "<f4";
  case NPY_F2: return "<f2";
  case NPY_I4: return "<i4";
  case NPY_U2: return "<u2";
  default: return "?";
  }
}

NPY_DEF float npy_f16_to_f32(unsigned short h) {
  uint32_t sign = (uint32_t)(h & 0x8000u) << 16;
  uint32_t e = (uint32_t)(h >> 10) & 0x1fu, m = (uint32_t)h & 0x3ffu, bits;
  float f;
  if (e == 0x1f) { /* inf or NaN */
    bits = sign | 0x7f800000u | (m ? 0x00400000u : 0u);
  } else if (e != 0) { /* normal: rebias 15 -> 127 */
    bits = sign | ((e + 112u) << 23) | (m << 13);
  } else if (m == 0) {
    bits = sign;
  } else { /* subnormal half: normalise (every half is a normal float) */
    e = 113u;
    while ((m & 0x400u) == 0) {
      m <<= 1;
      e--;
    }
    bits = sign | (e << 23) | ((m & 0x3ffu) << 13);
  }
  memcpy(&f, &bits, sizeof f);
  return f;
}

NPY_DEF void npy_free(npy_array *a) {
  if (a == NULL) return;
  free(a->data);
  a->data = NULL;
}

/* ---- header dict lexer ------------------------------------------------- */
typedef struct npy__lex {
  const char *s; /* the header text (not NUL-terminated) */
  size_t n, i;
  char *err;
  size_t errlen;
} npy__lex;

NPY__PRIVATE void npy__skip_ws(npy__lex *L) {
  while (L->i < L->n && (L->s[L->i] == ' ' || L->s[L->i] == '\t' ||
                         L->s[L->i] == '\n' || L->s[L->i] == '\r'))
    L->i++;
}

NPY__PRIVATE int npy__is_delim(char c) {
  return c == ' ' || c == '\t' || c == '\n' || c == '\r' || c == ',' ||
         c == ')' || c == '}' || c == ':';
}

/* A short, printable description of the next token, for messages: up to
   the next whitespace or delimiter (or the delimiter alone). The header was
   checked to be printable ASCII before any of this runs. */
NPY__PRIVATE const char *npy__near(const npy__lex *L, char *buf, size_t cap) {
  size_t j = 0, k = L->i;
  if (k >= L->n) return "the end of the header";
  buf[j++] = '\'';
  if (npy__is_delim(L->s[k]))
    buf[j++] = L->s[k];
  else
    while (k < L->n && !npy__is_delim(L->s[k]) && j < cap - 5)
      buf[j++] = L->s[k++];
  buf[j++] = '\'';
  buf[j] = '\0';
  return buf;
}

/* A Python string literal in single or double quotes, no escapes (none of the
   values we accept needs one). Copies at most cap-1 chars; a longer string
   is still consumed and *truncated says so. 0: no string here. */
NPY__PRIVATE int npy__string(npy__lex *L, char *out, size_t cap,
                             int *truncated) {
  char q;
  size_t j = 0;
  *truncated = 0;
  if (L->i >= L->n || (L->s[L->i] != '\'' && L->s[L->i] != '"')) return 0;
  q = L->s[L->i++];
  while (L->i < L->n && L->s[L->i] != q) {
    char c = L->s[L->i];
    if (c == '\\') {
      npy__fail(L->err, L->errlen,
                "escape sequences in header strings are not supported");
      return -1;
    }
    if (c == '\n' || c == '\r') break; /* unterminated on this line */
    if (j + 1 < cap)
      out[j++] = c;
    else
      *truncated = 1;
    L->i++;
  }
  if (L->i >= L->n || L->s[L->i] != q) {
    npy__fail(L->err, L->errlen, "unterminated string in the header");
    return -1;
  }
  L->i++;
  out[j] = '\0';
  return 1;
}

/* One dimension: a non-negative decimal integer in Python syntax (no sign,
   no leading zeros; an 'L' suffix from Python 2 era files is accepted). */
NPY__PRIVATE int npy__dim(npy__lex *L, size_t *out) {
  size_t v = 0, start = L->i;
  char near[40];
  if (L->i < L->n && L->s[L->i] == '-') {
    npy__fail(L->err, L->errlen, "negative dimension %s in the shape",
              npy__near(L, near, sizeof near));
    return -1;
  }
  while (L->i < L->n && L->s[L->i] >= '0' && L->s[L->i] <= '9') {
    size_t digit = (size_t)(L->s[L->i] - '0');
    if (v > (SIZE_MAX - digit) / 10) {
      L->i = start;
      npy__fail(L->err, L->errlen, "dimension %s is too large",
                npy__near(L, near, sizeof near));
      return -1;
    }
    v = v * 10 + digit;
    L->i++;
  }
  if (L->i > start && L->i < L->n &&
      (L->s[L->i] == 'L' || L->s[L->i] == 'l'))
    L->i++;
  if (L->i == start || L->i >= L->n || !npy__is_delim(L->s[L->i]) ||
      L->s[L->i] == ':' || L->s[L->i] == '}' ||
      (L->s[start] == '0' && L->s[start + 1] >= '0' &&
       L->s[start + 1] <= '9')) {
    L->i = start;
    npy__fail(L->err, L->errlen, "dimension %s is not a non-negative integer",
              npy__near(L, near, sizeof near));
    return -1;
  }
  *out = v;
  return 0;
}

/* '(' [dim (',' dim)* [',']] ')'. A single dim needs its comma: (3) is an
   int in Python, not a tuple. */
NPY__PRIVATE int npy__shape(npy__lex *L, npy_array *a) {
  char near[40];
  int commas = 0;
  if (L->i >= L->n || L->s[L->i] != '(') {
    npy__fail(L->err, L->errlen, "'shape' must be a tuple, found %s",
              npy__near(L, near, sizeof near));
    return -1;
  }
  L->i++;
  a->ndim = 0;
  npy__skip_ws(L);
  while (L->i < L->n && L->s[L->i] != ')') {
    size_t v;
    if (a->ndim == NPY_MAX_RANK) {
      npy__fail(L->err, L->errlen, "more than %d dimensions", NPY_MAX_RANK);
      return -1;
    }
    if (npy__dim(L, &v) != 0) return -1;
    a->shape[a->ndim++] = v;
    npy__skip_ws(L);
    if (L->i < L->n && L->s[L->i] == ',') {
      L->i++;
      commas++;
      npy__skip_ws(L);
    } else if (L->i >= L->n || L->s[L->i] != ')') {
      npy__fail(L->err, L->errlen,
                "expected ',' or ')' in the shape, found %s",
                npy__near(L, near, sizeof near));
      return -1;
    }
  }
  if (L->i >= L->n) {
    npy__fail(L->err, L->errlen, "unterminated shape tuple");
    return -1;
  }
  if (a->ndim == 1 && commas == 0) {
    npy__fail(L->err, L->errlen,
              "'shape' must be a tuple: a single dimension needs a comma");
    return -1;
  }
  L->i++; /* ')' */
  return 0;
}

/* A bare word (True, False) followed by a delimiter or the end. */
NPY__PRIVATE int npy__word(npy__lex *L, const char *w) {
  size_t len = strlen(w);
  if (L->n - L->i < len || memcmp(L->s + L->i, w, len) != 0) return 0;
  if (L->i + len < L->n && !npy__is_delim(L->s[L->i + len])) return 0;
  L->i += len;
  return 1;
}

NPY__PRIVATE void npy__format_shape(const npy_array *a, char *buf,
                                    size_t cap) {
  size_t used = 0;
  int k;
  used += (size_t)snprintf(buf, cap, "(");
  for (k = 0; k < a->ndim && used < cap; k++)
    used += (size_t)snprintf(buf + used, cap - used, "%s%zu",
                             k ? ", " : "", a->shape[k]);
  if (used < cap)
    snprintf(buf + used, cap - used, "%s)", a->ndim == 1 ? "," : "");
}

NPY__PRIVATE void npy__expected(unsigned dtypes, char *buf, size_t cap) {
  static const unsigned all[4] = {NPY_F4, NPY_F2, NPY_I4, NPY_U2};
  size_t used = 0;
  int k, shown = 0;
  buf[0] = '\0';
  for (k = 0; k < 4 && used < cap; k++)
    if (dtypes & all[k])
      used += (size_t)snprintf(buf + used, cap - used, "%s'%s'",
                               shown++ ? " or " : "", npy_dtype_descr(all[k]));
  if (shown == 0) snprintf(buf, cap, "nothing: no dtype allowed");
}

/* Magic, version and header length; len may stop anywhere. */
NPY__PRIVATE int npy__prelude(const unsigned char *b, size_t len,
                              size_t *prelude, size_t *hlen, char *err,
                              size_t errlen) {
  if (len == 0) {
    npy__fail(err, errlen, "the file is empty");
    return NPY_ERR_FORMAT;
  }
  if (len < 6 || memcmp(b, "\x93NUMPY", 6) != 0) {
    npy__fail(err, errlen, "not a .npy file (bad magic)");
    return NPY_ERR_FORMAT;
  }
  if (len < 8) {
    npy__fail(err, errlen, "the file ends inside the .npy prelude");
    return NPY_ERR_FORMAT;
  }
  if ((b[6] != 1 && b[6] != 2 && b[6] != 3) || b[7] != 0) {
    npy__fail(err, errlen, "unsupported .npy format version %u.%u",
              (unsigned)b[6], (unsigned)b[7]);
    return NPY_ERR_FORMAT;
  }
  /* 1.0: uint16 length; 2.0 and 3.0 (UTF-8 header): uint32 length. */
  *prelude = b[6] == 1 ? 10 : 12;
  if (len < *prelude) {
    npy__fail(err, errlen, "the file ends inside the .npy prelude");
    return NPY_ERR_FORMAT;
  }
  *hlen = (size_t)b[8] | (size_t)b[9] << 8;
  if (*prelude == 12)
    *hlen |= (size_t)b[10] << 16 | (size_t)((uint32_t)b[11] << 24);
  return NPY_OK;
}

NPY_DEF int npy_parse_header(const void *buf, size_t len, unsigned dtypes,
                             int rank, npy_array *out, char *err,
                             size_t errlen) {
  const unsigned char *b = (const unsigned char *)buf;
  size_t prelude = 0, hlen = 0, i, count;
  int seen_descr = 0, seen_fortran = 0, seen_shape = 0, fortran = 0, r;
  char descr[24], key[24], near[40];
  npy__lex L;
  if ((buf == NULL && len > 0) || out == NULL || rank < 0 ||
      rank > NPY_MAX_RANK) {
    npy__fail(err, errlen, "invalid arguments to npy_parse_header");
    return NPY_ERR_ARG;
  }
  memset(out, 0, sizeof *out);
  descr[0] = '\0';
  r = npy__prelude(b, len, &prelude, &hlen, err, errlen);
  if (r != NPY_OK) return r;
  out->version = b[6];
  if (hlen > len - prelude) {
    npy__fail(err, errlen,
              "header length %zu goes past the end of the file (%zu bytes)",
              hlen, len);
    return NPY_ERR_FORMAT;
  }
  /* The dict holds only ASCII; refusing the rest up front keeps every later
     message printable and single-line. */
  for (i = 0; i < hlen; i++) {
    unsigned char c = b[prelude + i];
    if (c >= 0x80) {
      npy__fail(err, errlen, "non-ASCII byte 0x%02x in the header", c);
      return NPY_ERR_FORMAT;
    }
    if ((c < 0x20 && c != '\n' && c != '\t' && c != '\r') || c == 0x7f) {
      npy__fail(err, errlen, "control byte 0x%02x in the header", c);
      return NPY_ERR_FORMAT;
    }
  }
  L.s = (const char *)b + prelude;
  L.n = hlen;
  L.i = 0;
  L.err = err;
  L.errlen = errlen;
  npy__skip_ws(&L);
  if (L.i >= L.n || L.s[L.i] != '{') {
    npy__fail(err, errlen, "the header is not a dict: found %s",
              npy__near(&L, near, sizeof near));
    return NPY_ERR_FORMAT;
  }
  L.i++;
  for (;;) {
    int trunc;
    npy__skip_ws(&L);
    if (L.i < L.n && L.s[L.i] == '}') break;
    r = npy__string(&L, key, sizeof key, &trunc);
    if (r < 0) return NPY_ERR_FORMAT;
    if (r == 0) {
      npy__fail(err, errlen, "expected a quoted key in the header, found %s",
                npy__near(&L, near, sizeof near));
      return NPY_ERR_FORMAT;
    }
    npy__skip_ws(&L);
    if (L.i >= L.n || L.s[L.i] != ':') {
      npy__fail(err, errlen, "expected ':' after key '%s%s'", key,
                trunc ? "..." : "");
      return NPY_ERR_FORMAT;
    }
    L.i++;
    npy__skip_ws(&L);
    if (!trunc && strcmp(key, "descr") == 0) {
      if (seen_descr++) {
        npy__fail(err, errlen, "duplicate key 'descr' in the header");
        return NPY_ERR_FORMAT;
      }
      r = npy__string(&L, descr, sizeof descr, &trunc);
      if (r < 0) return NPY_ERR_FORMAT;
      if (r == 0) {
        npy__fail(err, errlen, "'descr' must be a simple dtype string "
                               "(structured dtypes are not supported)");
        return NPY_ERR_FORMAT;
      }
      if (trunc) strcpy(descr + sizeof descr - 4, "...");
    } else if (!trunc && strcmp(key, "fortran_order") == 0) {
      if (seen_fortran++) {
        npy__fail(err, errlen, "duplicate key 'fortran_order' in the header");
        return NPY_ERR_FORMAT;
      }
      if (npy__word(&L, "True"))
        fortran = 1;
      else if (!npy__word(&L, "False")) {
        npy__fail(err, errlen, "'fortran_order' must be True or False, "
                               "found %s", npy__near(&L, near, sizeof near));
        return NPY_ERR_FORMAT;
      }
    } else if (!trunc && strcmp(key, "shape") == 0) {
      if (seen_shape++) {
        npy__fail(err, errlen, "duplicate key 'shape' in the header");
        return NPY_ERR_FORMAT;
      }
      if (npy__shape(&L, out) != 0) return NPY_ERR_FORMAT;
    } else {
      npy__fail(err, errlen, "unexpected key '%s%s' in the header", key,
                trunc ? "..." : "");
      return NPY_ERR_FORMAT;
    }
    npy__skip_ws(&L);
    if (L.i < L.n && L.s[L.i] == ',') {
      L.i++;
      continue;
    }
    if (L.i < L.n && L.s[L.i] == '}') break;
    npy__fail(err, errlen, "expected ',' or '}' in the header, found %s",
              npy__near(&L, near, sizeof near));
    return NPY_ERR_FORMAT;
  }
  L.i++; /* '}' */
  npy__skip_ws(&L);
  if (L.i < L.n) {
    npy__fail(err, errlen, "unexpected text after the header dict: %s",
              npy__near(&L, near, sizeof near));
    return NPY_ERR_FORMAT;
  }
  if (!seen_descr || !seen_fortran || !seen_shape) {
    npy__fail(err, errlen, "missing key '%s' in the header",
              !seen_descr ? "descr"
                          : !seen_fortran ? "fortran_order" : "shape");
    return NPY_ERR_FORMAT;
  }
  /* Semantic checks, in the order a user fixes them. */
  if (strcmp(descr, "<f4") == 0)
    out->dtype = NPY_F4;
  else if (strcmp(descr, "<f2") == 0)
    out->dtype = NPY_F2;
  else if (strcmp(descr, "<i4") == 0)
    out->dtype = NPY_I4;
  else if (strcmp(descr, "<u2") == 0)
    out->dtype = NPY_U2;
  if ((out->dtype & dtypes) == 0) {
    char want[48];
    npy__expected(dtypes, want, sizeof want);
    npy__fail(err, errlen, "%sdtype '%s' is not supported (expected %s)",
              descr[0] == '>' ? "big-endian " : "", descr, want);
    out->dtype = 0;
    return NPY_ERR_FORMAT;
  }
  out->itemsize = out->dtype == NPY_F2 || out->dtype == NPY_U2 ? 2 : 4;
  if (fortran) {
    npy__fail(err, errlen, "fortran_order=True is not supported");
    return NPY_ERR_FORMAT;
  }
  if (rank != 0 && out->ndim != rank) {
    char sh[96];
    npy__format_shape(out, sh, sizeof sh);
    npy__fail(err, errlen, "expected a %d-D array, found shape %s", rank, sh);
    return NPY_ERR_FORMAT;
  }
  count = 1;
  for (i = 0; i < (size_t)out->ndim; i++)
    if (out->shape[i] == 0) count = 0;
  for (i = 0; i < (size_t)out->ndim && count != 0; i++) {
    if (count > SIZE_MAX / out->shape[i]) break;
    count *= out->shape[i];
  }
  if ((count != 0 && i < (size_t)out->ndim) ||
      count > SIZE_MAX / out->itemsize) {
    char sh[96];
    npy__format_shape(out, sh, sizeof sh);
    npy__fail(err, errlen, "shape %s is too large (size overflows)", sh);
    return NPY_ERR_FORMAT;
  }
  out->count = count;
  out->nbytes = count * out->itemsize;
  out->data_offset = prelude + hlen;
  return NPY_OK;
}

NPY__PRIVATE void npy__size_mismatch(const npy_array *a, size_t avail,
                                     char *err, size_t errlen) {
  char sh[96];
  npy__format_shape(a, sh, sizeof sh);
  if (avail < a->nbytes)
    npy__fail(err, errlen,
              "data is truncated: shape %s needs %zu bytes, found %zu", sh,
              a->nbytes, avail);
  else
    npy__fail(err, errlen,
              "%zu unexpected bytes after the data of shape %s",
              avail - a->nbytes, sh);
}

NPY_DEF int npy_parse(const void *buf, size_t len, unsigned dtypes, int rank,
                      npy_array *out, char *err, size_t errlen) {
  int r = npy_parse_header(buf, len, dtypes, rank, out, err, errlen);
  size_t avail;
  if (r != NPY_OK) return r;
  avail = len - out->data_offset;
  if (avail != out->nbytes) {
    npy__size_mismatch(out, avail, err, errlen);
    return NPY_ERR_FORMAT;
  }
  out->data = malloc(out->nbytes ? out->nbytes : 1);
  if (out->data == NULL) {
    npy__fail(err, errlen, "out of memory (%zu bytes of data)", out->nbytes);
    return NPY_ERR_NOMEM;
  }
  if (out->nbytes) /* buf may be NULL only when len is 0, refused above */
    memcpy(out->data, (const unsigned char *)buf + out->data_offset,
           out->nbytes);
  npy__to_host(out->data, out->count, out->itemsize);
  return NPY_OK;
}

/* fread that tells a read error from end of file. */
NPY__PRIVATE int npy__fread(FILE *f, void *dst, size_t n, size_t *got,
                            char *err, size_t errlen) {
  *got = fread(dst, 1, n, f);
  if (*got < n && ferror(f)) {
    npy__fail(err, errlen, "read error: %s", strerror(errno));
    return NPY_ERR_IO;
  }
  return NPY_OK;
}

NPY_DEF int npy_read(const char *path, unsigned dtypes, int rank,
                     npy_array *out, char *err, size_t errlen) {
  unsigned char pre[12];
  unsigned char *hdr = NULL;
  size_t got, prelude = 0, hlen = 0, total, have, extra = 0;
  int r;
  FILE *f;
  if (path == NULL || out == NULL) {
    npy__fail(err, errlen, "invalid arguments to npy_read");
    return NPY_ERR_ARG;
  }
  memset(out, 0, sizeof *out);
  errno = 0;
  f = fopen(path, "rb");
  if (f == NULL) {
    npy__fail(err, errlen, "cannot open: %s",
              errno ? strerror(errno) : "unknown error");
    return NPY_ERR_IO;
  }
  /* The prelude alone (magic, version, header length), checked before
     anything else is read: a large non-.npy file is refused at once. */
  r = npy__fread(f, pre, 8, &got, err, errlen);
  if (r == NPY_OK && got == 8) {
    size_t more;
    r = npy__fread(f, pre + 8, pre[6] == 1 ? 2 : 4, &more, err, errlen);
    got += more;
  }
  if (r != NPY_OK) goto done;
  r = npy__prelude(pre, got, &prelude, &hlen, err, errlen);
  if (r != NPY_OK) goto done;
  if (hlen > SIZE_MAX - prelude) {
    npy__fail(err, errlen, "header length %zu is too large", hlen);
    r = NPY_ERR_FORMAT;
    goto done;
  }
  /* Read the header growing the buffer as bytes arrive, so a lying length
     costs at most twice what the file really holds. */
  total = prelude + hlen;
  have = prelude;
  {
    size_t cap = total < 4096 ? total : 4096;
    hdr = (unsigned char *)malloc(cap);
    if (hdr == NULL) goto nomem;
    memcpy(hdr, pre, prelude);
    while (have < total) {
      if (have == cap) {
        size_t ncap = cap > total / 2 ? total : cap * 2;
        unsigned char *h2 = (unsigned char *)realloc(hdr, ncap);
        if (h2 == NULL) goto nomem;
        hdr = h2;
        cap = ncap;
      }
      r = npy__fread(f, hdr + have, cap - have, &got, err, errlen);
      if (r != NPY_OK) goto done;
      have += got;
      if (got == 0) break; /* EOF */
    }
  }
  r = npy_parse_header(hdr, have, dtypes, rank, out, err, errlen);
  if (r != NPY_OK) goto done;
  /* Size check before allocating: a small file whose header claims a huge
     shape is refused as truncated, not as out of memory. Seekable files
     tell their size; for pipes the buffer grows as data arrive, so memory
     follows what the stream really holds. */
  {
    long pos = ftell(f), end = -1;
    if (pos >= 0 && fseek(f, 0, SEEK_END) == 0) {
      end = ftell(f);
      if (fseek(f, pos, SEEK_SET) != 0) {
        npy__fail(err, errlen, "seek error: %s", strerror(errno));
        r = NPY_ERR_IO;
        goto done;
      }
    }
    clearerr(f); /* a failed fseek on a pipe is not a read error */
    if (end >= pos && pos >= 0) {
      unsigned long avail = (unsigned long)(end - pos);
      if (avail != out->nbytes) {
        npy__size_mismatch(out, avail > SIZE_MAX ? SIZE_MAX : (size_t)avail,
                           err, errlen);
        r = NPY_ERR_FORMAT;
        goto done;
      }
      have = out->nbytes; /* allocate all at once */
    } else {
      have = out->nbytes < ((size_t)1 << 20) ? out->nbytes : (size_t)1 << 20;
    }
  }
  out->data = malloc(have ? have : 1);
  if (out->data == NULL) goto nomem;
  got = 0;
  for (;;) {
    size_t n;
    r = npy__fread(f, (unsigned char *)out->data + got, have - got, &n, err,
                   errlen);
    if (r != NPY_OK) goto done;
    got += n;
    if (got < have || have == out->nbytes) break; /* EOF or complete */
    {
      size_t ncap = have > out->nbytes / 2 ? out->nbytes : have * 2;
      void *d2 = realloc(out->data, ncap);
      if (d2 == NULL) goto nomem;
      out->data = d2;
      have = ncap;
    }
  }
  if (got == out->nbytes) { /* count what follows; it must be nothing */
    unsigned char sink[4096];
    size_t n;
    do {
      r = npy__fread(f, sink, sizeof sink, &n, err, errlen);
      if (r != NPY_OK) goto done;
      extra += n;
    } while (n == sizeof sink);
  }
  if (got != out->nbytes || extra != 0) {
    npy__size_mismatch(out, got + extra, err, errlen);
    r = NPY_ERR_FORMAT;
    goto done;
  }
  npy__to_host(out->data, out->count, out->itemsize);
  r = NPY_OK;
  goto done;
nomem:
  npy__fail(err, errlen, "out of memory reading the file");
  r = NPY_ERR_NOMEM;
done:
  free(hdr);
  fclose(f); /* read-only: nothing to lose */
  if (r != NPY_OK) npy_free(out);
  return r;
}

NPY_DEF int npy_write_f32(const char *path, const float *data, size_t rows,
                          size_t cols, char *err, size_t errlen) {
  char hdr[128];
  int len;
  size_t hlen, count, i;
  int bad;
  FILE *f;
  if (path == NULL || (data == NULL && rows != 0 && cols != 0)) {
    npy__fail(err, errlen, "invalid arguments to npy_write_f32");
    return NPY_ERR_ARG;
  }
  if (cols != 0 && rows > SIZE_MAX / 4 / cols) {
    npy__fail(err, errlen, "array too large");
    return NPY_ERR_ARG;
  }
  count = rows * cols;
  len = snprintf(hdr, sizeof hdr,
                 "{'descr': '<f4', 'fortran_order': False, "
                 "'shape': (%zu, %zu), }",
                 rows, cols);
  /* Pad with spaces and a final newline so the data start at a multiple of
     64 bytes, as NumPy does. */
  hlen = (size_t)len + 1;
  hlen += (64 - (10 + hlen) % 64) % 64;
  memset(hdr + len, ' ', hlen - (size_t)len - 1);
  hdr[hlen - 1] = '\n';
  errno = 0;
  f = fopen(path, "wb");
  if (f == NULL) {
    npy__fail(err, errlen, "cannot create: %s",
              errno ? strerror(errno) : "unknown error");
    return NPY_ERR_IO;
  }
  fwrite("\x93NUMPY\x01\x00", 1, 8, f);
  fputc((int)(hlen & 0xff), f);
  fputc((int)(hlen >> 8), f);
  fwrite(hdr, 1, hlen, f);
  if (!npy__host_is_big_endian()) {
    fwrite(data, sizeof(float), count, f);
  } else {
    for (i = 0; i < count; i++) {
      unsigned char b[4];
      memcpy(b, data + i, 4);
      npy__to_host(b, 1, 4); /* the same swap goes both ways */
      fwrite(b, 1, 4, f);
    }
  }
  bad = ferror(f);
  bad |= fclose(f) != 0;
  if (bad) {
    npy__fail(err, errlen, "write error: %s",
              errno ? strerror(errno) : "unknown error");
    remove(path);
    return NPY_ERR_IO;
  }
  return NPY_OK;
}

#endif /* NPY_IMPLEMENTATION */
