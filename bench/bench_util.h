/* bench_util.h - shared helpers for the adasoftmax benchmarks (not tests).

   Include this header FIRST in a bench source: it sets _POSIX_C_SOURCE for
   clock_gettime and posix_memalign.

   What is here, and why:
   - a clock (thread CPU time by default, see below) and a median: the
     machines are shared and noisy, so every figure we print is the median of
     several interleaved repetitions;
   - a 64-byte aligned allocator (huge pages requested where Linux has them,
     so that TLB misses do not blur the bandwidth figures);
   - a cheap seeded generator (splitmix64) to fill large buffers: never rand();
   - memory-bandwidth probes (read, write, write non-temporal, copy, copy
     non-temporal) and "skeleton" passes: the same pass structure as a
     softmax algorithm with trivial arithmetic, so "within X% of the
     bandwidth limit" is measured against what this machine can actually
     stream for that structure, not against a datasheet number.
   The SIMD probes use per-function target attributes chosen at run time with
   __builtin_cpu_supports (x86-64 with gcc/clang); elsewhere they are scalar
   loops, which is good enough to stream memory on most cores. */
#ifndef BENCH_UTIL_H
#define BENCH_UTIL_H

#ifndef _POSIX_C_SOURCE
#define _POSIX_C_SOURCE 200809L
#endif
#if defined(__linux__) && !defined(_DEFAULT_SOURCE)
#define _DEFAULT_SOURCE /* madvise */
#endif

#include <math.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#if defined(__unix__) || defined(__APPLE__)
#include <unistd.h>
#endif
#ifdef __linux__
#include <sys/mman.h>
#endif

#if defined(__GNUC__) || defined(__clang__)
#define BENCH_FN static __attribute__((unused))
#else
#define BENCH_FN static
#endif

#if (defined(__x86_64__) || defined(_M_X64)) &&                              \
    (defined(__GNUC__) || defined(__clang__))
#define BENCH_X86 1
#include <immintrin.h>
#define BENCH_TARGET_AVX2 __attribute__((target("avx2,fma")))
#define BENCH_TARGET_AVX512 __attribute__((target("avx512f")))
#else
#define BENCH_X86 0
#endif

/* ---- Clock, statistics ------------------------------------------------- */
/* Timings use the calling thread's CPU time by default: on a shared machine
   the bench is often descheduled for milliseconds, which wall time would
   charge to whichever contender was running. CPU time still includes every
   stall on memory (the thread is on the core while it waits), and every
   contender is single-threaded (OpenBLAS is pinned to one thread, XNNPACK
   gets no thread pool), so on an idle machine the two clocks agree.
   BENCH_CLOCK=wall selects CLOCK_MONOTONIC. bench_wall_total and
   bench_cpu_total add up both clocks over all samples: their ratio says how
   much of the run the bench was waiting for a core. */
static int bench_clock_wall = -1; /* -1: not read from the environment yet */
static double bench_wall_total, bench_cpu_total;

BENCH_FN double bench_wall_ns(void) {
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return (double)ts.tv_sec * 1e9 + (double)ts.tv_nsec;
}
BENCH_FN double bench_cpu_ns(void) {
  struct timespec ts;
#ifdef CLOCK_THREAD_CPUTIME_ID
  if (clock_gettime(CLOCK_THREAD_CPUTIME_ID, &ts) == 0)
    return (double)ts.tv_sec * 1e9 + (double)ts.tv_nsec;
#endif
  return bench_wall_ns();
}
/* The clock every measurement uses. */
BENCH_FN double bench_now_ns(void) {
  if (bench_clock_wall < 0) {
    const char *e = getenv("BENCH_CLOCK");
    bench_clock_wall = e != NULL && strcmp(e, "wall") == 0;
  }
  return bench_clock_wall ? bench_wall_ns() : bench_cpu_ns();
}
BENCH_FN const char *bench_clock_name(void) {
  (void)bench_now_ns();
  return bench_clock_wall ? "wall clock" : "thread CPU time";
}
/* One line on how busy the machine was while we measured. */
BENCH_FN void bench_print_load(const char *who) {
  if (bench_cpu_total > 0)
    printf("%s: timed with %s; wall/CPU time over all samples = %.2f "
           "(1.00: the bench had a core to itself)\n",
           who, bench_clock_name(), bench_wall_total / bench_cpu_total);
}

/* Median of v[0..n) (v is reordered). n = 0 gives NaN. */
BENCH_FN double bench_median(double *v, size_t n) {
  size_t i, j;
  if (n == 0) return NAN;
  for (i = 1; i < n; i++) { /* insertion sort: reps, or a few thousand queries */
    double x = v[i];
    for (j = i; j > 0 && v[j - 1] > x; j--) v[j] = v[j - 1];
    v[j] = x;
  }
  return (n % 2) ? v[n / 2] : 0.5 * (v[n / 2 - 1] + v[n / 2]);
}

/* Environment knobs: BENCH_REPS, BENCH_QUICK, ... */
BENCH_FN long bench_env_long(const char *name, long dflt) {
  const char *s = getenv(name);
  char *end = NULL;
  long v;
  if (s == NULL || *s == '\0') return dflt;
  v = strtol(s, &end, 10);
  return (end != NULL && *end == '\0') ? v : dflt;
}

/* Sink for results that must not be optimised away. */
static volatile double bench_sink;

/* ---- Memory ------------------------------------------------------------- */
/* 64-byte aligned, pages touched (so page faults are not timed later).
   Exits with a message on failure: a benchmark cannot do anything useful. */
BENCH_FN void *bench_alloc(size_t bytes) {
  void *p = NULL;
  if (bytes == 0) bytes = 64;
  if (posix_memalign(&p, 64, bytes) != 0 || p == NULL) {
    fprintf(stderr, "bench: cannot allocate %zu bytes\n", bytes);
    exit(2);
  }
#if defined(__linux__) && defined(MADV_HUGEPAGE)
  if (bytes >= ((size_t)8 << 20)) {
    /* madvise needs a page-aligned start: round inwards to 2 MiB. */
    uintptr_t b = ((uintptr_t)p + 0x1FFFFFu) & ~(uintptr_t)0x1FFFFF;
    uintptr_t e = ((uintptr_t)p + bytes) & ~(uintptr_t)0x1FFFFF;
    if (e > b) (void)madvise((void *)b, (size_t)(e - b), MADV_HUGEPAGE);
  }
#endif
  memset(p, 0, bytes);
  return p;
}

/* MemAvailable from /proc/meminfo in bytes; 0 if unknown. */
BENCH_FN size_t bench_mem_available(void) {
  size_t kb = 0;
  FILE *f = fopen("/proc/meminfo", "r");
  char line[256];
  if (f == NULL) return 0;
  while (fgets(line, sizeof line, f) != NULL) {
    unsigned long v;
    if (sscanf(line, "MemAvailable: %lu kB", &v) == 1) {
      kb = (size_t)v;
      break;
    }
  }
  fclose(f);
  return kb * 1024u;
}

/* Last-level cache size as the OS reports it (0 if unknown). Under a
   hypervisor this can be nonsense (a whole socket's L3, or made up), so the
   benches never rely on it alone: out-of-cache working sets are at least
   1 GiB and the DRAM probe shows the bandwidth they actually got. */
BENCH_FN size_t bench_llc_bytes(void) {
#if defined(__linux__) && defined(_SC_LEVEL3_CACHE_SIZE)
  long l3 = sysconf(_SC_LEVEL3_CACHE_SIZE);
  long l2 = sysconf(_SC_LEVEL2_CACHE_SIZE);
  if (l3 > 0) return (size_t)l3;
  if (l2 > 0) return (size_t)l2;
#endif
  return 0;
}

/* ---- Seeded generator (splitmix64) ------------------------------------- */
typedef struct bench_rng {
  uint64_t s;
} bench_rng;

BENCH_FN uint64_t bench_rng_next(bench_rng *r) {
  uint64_t z = (r->s += 0x9E3779B97F4A7C15u);
  z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9u;
  z = (z ^ (z >> 27)) * 0x94D049BB133111EBu;
  return z ^ (z >> 31);
}

/* Uniform on [lo, hi): 24 random bits per float, two floats per draw. */
BENCH_FN void bench_fill_uniform(float *p, size_t n, uint64_t seed, float lo,
                                 float hi) {
  bench_rng r;
  size_t i = 0;
  const float scale = (hi - lo) * (1.0f / 16777216.0f);
  r.s = seed;
  while (i < n) {
    uint64_t u = bench_rng_next(&r);
    p[i++] = lo + (float)(uint32_t)(u >> 40) * scale;
    if (i < n) p[i++] = lo + (float)(uint32_t)((u >> 8) & 0xFFFFFFu) * scale;
  }
}

/* ---- Streaming kernels: probes and skeletons ---------------------------- */
/* read:  sum of p[0..n)                      (bytes moved: 4n read)
   write: p[i] = v                            (4n written)
   copy:  dst[i] = s * src[i]                 (4n read + 4n written)
   scale: p[i] *= s, in place                 (4n read + 4n written)
   The *_nt variants store with non-temporal (streaming) stores, which skip
   the read-for-ownership of the destination line: what an out-of-cache
   kernel can do at best. Several accumulators so the add latency never
   limits a read from L1/L2. */
typedef float (*bench_read_fn)(const float *p, size_t n);
typedef void (*bench_write_fn)(float *p, size_t n, float v);
typedef void (*bench_copy_fn)(const float *src, float *dst, size_t n, float s);
typedef void (*bench_scale_fn)(float *p, size_t n, float s);

typedef struct bench_stream_kernels {
  const char *isa;
  bench_read_fn read;
  bench_write_fn write, write_nt;
  bench_copy_fn copy, copy_nt;
  bench_scale_fn scale, scale_nt;
} bench_stream_kernels;

BENCH_FN float bench_read_scalar(const float *p, size_t n) {
  float a0 = 0, a1 = 0, a2 = 0, a3 = 0;
  size_t i = 0;
  for (; i + 4 <= n; i += 4) {
    a0 += p[i];
    a1 += p[i + 1];
    a2 += p[i + 2];
    a3 += p[i + 3];
  }
  for (; i < n; i++) a0 += p[i];
  return (a0 + a1) + (a2 + a3);
}
BENCH_FN void bench_write_scalar(float *p, size_t n, float v) {
  size_t i;
  for (i = 0; i < n; i++) p[i] = v;
}
BENCH_FN void bench_copy_scalar(const float *src, float *dst, size_t n,
                                float s) {
  size_t i;
  for (i = 0; i < n; i++) dst[i] = s * src[i];
}
BENCH_FN void bench_scale_scalar(float *p, size_t n, float s) {
  size_t i;
  for (i = 0; i < n; i++) p[i] *= s;
}

#if BENCH_X86
/* AVX2: 32 floats per iteration, 4 accumulators. Unaligned loads; the
   streaming variants peel to a 32-byte boundary first. */
BENCH_TARGET_AVX2 static float bench_read_avx2(const float *p, size_t n) {
  __m256 a0 = _mm256_setzero_ps(), a1 = a0, a2 = a0, a3 = a0;
  float t[8], s = 0;
  size_t i = 0;
  int j;
  for (; i + 32 <= n; i += 32) {
    a0 = _mm256_add_ps(a0, _mm256_loadu_ps(p + i));
    a1 = _mm256_add_ps(a1, _mm256_loadu_ps(p + i + 8));
    a2 = _mm256_add_ps(a2, _mm256_loadu_ps(p + i + 16));
    a3 = _mm256_add_ps(a3, _mm256_loadu_ps(p + i + 24));
  }
  _mm256_storeu_ps(t, _mm256_add_ps(_mm256_add_ps(a0, a1),
                                    _mm256_add_ps(a2, a3)));
  for (j = 0; j < 8; j++) s += t[j];
  for (; i < n; i++) s += p[i];
  return s;
}
BENCH_TARGET_AVX2 static void bench_write_avx2(float *p, size_t n, float v) {
  const __m256 vv = _mm256_set1_ps(v);
  size_t i = 0;
  for (; i + 32 <= n; i += 32) {
    _mm256_storeu_ps(p + i, vv);
    _mm256_storeu_ps(p + i + 8, vv);
    _mm256_storeu_ps(p + i + 16, vv);
    _mm256_storeu_ps(p + i + 24, vv);
  }
  for (; i < n; i++) p[i] = v;
}
BENCH_TARGET_AVX2 static void bench_write_nt_avx2(float *p, size_t n,
                                                  float v) {
  const __m256 vv = _mm256_set1_ps(v);
  size_t i = 0;
  for (; i < n && ((uintptr_t)(p + i) & 31u) != 0; i++) p[i] = v;
  for (; i + 32 <= n; i += 32) {
    _mm256_stream_ps(p + i, vv);
    _mm256_stream_ps(p + i + 8, vv);
    _mm256_stream_ps(p + i + 16, vv);
    _mm256_stream_ps(p + i + 24, vv);
  }
  for (; i < n; i++) p[i] = v;
  _mm_sfence();
}
BENCH_TARGET_AVX2 static void bench_copy_avx2(const float *src, float *dst,
                                              size_t n, float s) {
  const __m256 vs = _mm256_set1_ps(s);
  size_t i = 0;
  for (; i + 32 <= n; i += 32) {
    _mm256_storeu_ps(dst + i, _mm256_mul_ps(vs, _mm256_loadu_ps(src + i)));
    _mm256_storeu_ps(dst + i + 8,
                     _mm256_mul_ps(vs, _mm256_loadu_ps(src + i + 8)));
    _mm256_storeu_ps(dst + i + 16,
                     _mm256_mul_ps(vs, _mm256_loadu_ps(src + i + 16)));
    _mm256_storeu_ps(dst + i + 24,
                     _mm256_mul_ps(vs, _mm256_loadu_ps(src + i + 24)));
  }
  for (; i < n; i++) dst[i] = s * src[i];
}
BENCH_TARGET_AVX2 static void bench_copy_nt_avx2(const float *src,
                                                 float *dst, size_t n,
                                                 float s) {
  const __m256 vs = _mm256_set1_ps(s);
  size_t i = 0;
  for (; i < n && ((uintptr_t)(dst + i) & 31u) != 0; i++) dst[i] = s * src[i];
  for (; i + 32 <= n; i += 32) {
    _mm256_stream_ps(dst + i, _mm256_mul_ps(vs, _mm256_loadu_ps(src + i)));
    _mm256_stream_ps(dst + i + 8,
                     _mm256_mul_ps(vs, _mm256_loadu_ps(src + i + 8)));
    _mm256_stream_ps(dst + i + 16,
                     _mm256_mul_ps(vs, _mm256_loadu_ps(src + i + 16)));
    _mm256_stream_ps(dst + i + 24,
                     _mm256_mul_ps(vs, _mm256_loadu_ps(src + i + 24)));
  }
  for (; i < n; i++) dst[i] = s * src[i];
  _mm_sfence();
}
BENCH_TARGET_AVX2 static void bench_scale_avx2(float *p, size_t n, float s) {
  bench_copy_avx2(p, p, n, s);
}
BENCH_TARGET_AVX2 static void bench_scale_nt_avx2(float *p, size_t n,
                                                  float s) {
  bench_copy_nt_avx2(p, p, n, s);
}

/* AVX-512: 64 floats per iteration, 4 accumulators. */
BENCH_TARGET_AVX512 static float bench_read_avx512(const float *p,
                                                   size_t n) {
  __m512 a0 = _mm512_setzero_ps(), a1 = a0, a2 = a0, a3 = a0;
  float s;
  size_t i = 0;
  for (; i + 64 <= n; i += 64) {
    a0 = _mm512_add_ps(a0, _mm512_loadu_ps(p + i));
    a1 = _mm512_add_ps(a1, _mm512_loadu_ps(p + i + 16));
    a2 = _mm512_add_ps(a2, _mm512_loadu_ps(p + i + 32));
    a3 = _mm512_add_ps(a3, _mm512_loadu_ps(p + i + 48));
  }
  s = _mm512_reduce_add_ps(
      _mm512_add_ps(_mm512_add_ps(a0, a1), _mm512_add_ps(a2, a3)));
  for (; i < n; i++) s += p[i];
  return s;
}
BENCH_TARGET_AVX512 static void bench_write_avx512(float *p, size_t n,
                                                   float v) {
  const __m512 vv = _mm512_set1_ps(v);
  size_t i = 0;
  for (; i + 64 <= n; i += 64) {
    _mm512_storeu_ps(p + i, vv);
    _mm512_storeu_ps(p + i + 16, vv);
    _mm512_storeu_ps(p + i + 32, vv);
    _mm512_storeu_ps(p + i + 48, vv);
  }
  for (; i < n; i++) p[i] = v;
}
BENCH_TARGET_AVX512 static void bench_write_nt_avx512(float *p, size_t n,
                                                      float v) {
  const __m512 vv = _mm512_set1_ps(v);
  size_t i = 0;
  for (; i < n && ((uintptr_t)(p + i) & 63u) != 0; i++) p[i] = v;
  for (; i + 64 <= n; i += 64) {
    _mm512_stream_ps(p + i, vv);
    _mm512_stream_ps(p + i + 16, vv);
    _mm512_stream_ps(p + i + 32, vv);
    _mm512_stream_ps(p + i + 48, vv);
  }
  for (; i < n; i++) p[i] = v;
  _mm_sfence();
}
BENCH_TARGET_AVX512 static void bench_copy_avx512(const float *src,
                                                  float *dst, size_t n,
                                                  float s) {
  const __m512 vs = _mm512_set1_ps(s);
  size_t i = 0;
  for (; i + 64 <= n; i += 64) {
    _mm512_storeu_ps(dst + i, _mm512_mul_ps(vs, _mm512_loadu_ps(src + i)));
    _mm512_storeu_ps(dst + i + 16,
                     _mm512_mul_ps(vs, _mm512_loadu_ps(src + i + 16)));
    _mm512_storeu_ps(dst + i + 32,
                     _mm512_mul_ps(vs, _mm512_loadu_ps(src + i + 32)));
    _mm512_storeu_ps(dst + i + 48,
                     _mm512_mul_ps(vs, _mm512_loadu_ps(src + i + 48)));
  }
  for (; i < n; i++) dst[i] = s * src[i];
}
BENCH_TARGET_AVX512 static void bench_copy_nt_avx512(const float *src,
                                                     float *dst, size_t n,
                                                     float s) {
  const __m512 vs = _mm512_set1_ps(s);
  size_t i = 0;
  for (; i < n && ((uintptr_t)(dst + i) & 63u) != 0; i++) dst[i] = s * src[i];
  for (; i + 64 <= n; i += 64) {
    _mm512_stream_ps(dst + i, _mm512_mul_ps(vs, _mm512_loadu_ps(src + i)));
    _mm512_stream_ps(dst + i + 16,
                     _mm512_mul_ps(vs, _mm512_loadu_ps(src + i + 16)));
    _mm512_stream_ps(dst + i + 32,
                     _mm512_mul_ps(vs, _mm512_loadu_ps(src + i + 32)));
    _mm512_stream_ps(dst + i + 48,
                     _mm512_mul_ps(vs, _mm512_loadu_ps(src + i + 48)));
  }
  for (; i < n; i++) dst[i] = s * src[i];
  _mm_sfence();
}
BENCH_TARGET_AVX512 static void bench_scale_avx512(float *p, size_t n,
                                                   float s) {
  bench_copy_avx512(p, p, n, s);
}
BENCH_TARGET_AVX512 static void bench_scale_nt_avx512(float *p, size_t n,
                                                      float s) {
  bench_copy_nt_avx512(p, p, n, s);
}
#endif /* BENCH_X86 */

/* The widest probe kernels this CPU runs. */
BENCH_FN bench_stream_kernels bench_stream_best(void) {
  bench_stream_kernels k;
  k.isa = "scalar";
  k.read = bench_read_scalar;
  k.write = k.write_nt = bench_write_scalar;
  k.copy = k.copy_nt = bench_copy_scalar;
  k.scale = k.scale_nt = bench_scale_scalar;
#if BENCH_X86
  __builtin_cpu_init();
  if (__builtin_cpu_supports("avx512f")) {
    k.isa = "avx512";
    k.read = bench_read_avx512;
    k.write = bench_write_avx512;
    k.write_nt = bench_write_nt_avx512;
    k.copy = bench_copy_avx512;
    k.copy_nt = bench_copy_nt_avx512;
    k.scale = bench_scale_avx512;
    k.scale_nt = bench_scale_nt_avx512;
  } else if (__builtin_cpu_supports("avx2") && __builtin_cpu_supports("fma")) {
    k.isa = "avx2";
    k.read = bench_read_avx2;
    k.write = bench_write_avx2;
    k.write_nt = bench_write_nt_avx2;
    k.copy = bench_copy_avx2;
    k.copy_nt = bench_copy_nt_avx2;
    k.scale = bench_scale_avx2;
    k.scale_nt = bench_scale_nt_avx2;
  }
#endif
  return k;
}

/* ---- Bandwidth probe ----------------------------------------------------- */
/* GB/s (1e9 bytes/s), median of `reps` runs over `bytes` of buf (which must
   hold at least `bytes`; the copy probes use its two halves).
   read_gbs counts bytes read, write_* bytes written, copy_* bytes read plus
   bytes written (so a read+write pass over m floats takes 8m / copy_gbs). */
typedef struct bench_bandwidth {
  size_t bytes;
  double read_gbs, write_gbs, write_nt_gbs, copy_gbs, copy_nt_gbs;
} bench_bandwidth;

#define BENCH_MAX_REPS 64

BENCH_FN bench_bandwidth bench_bandwidth_probe(const bench_stream_kernels *k,
                                               float *buf, size_t bytes,
                                               int reps) {
  double t[5][BENCH_MAX_REPS];
  const size_t n = bytes / sizeof(float), half = n / 2;
  const double b = (double)(n * sizeof(float));
  bench_bandwidth bw;
  int r, w;
  if (reps > BENCH_MAX_REPS) reps = BENCH_MAX_REPS;
  for (r = -1; r < reps; r++) { /* r = -1: warm-up, not recorded */
    double t0, t1, t2, t3, t4, t5;
    t0 = bench_now_ns();
    bench_sink = k->read(buf, n);
    t1 = bench_now_ns();
    k->write(buf, n, 1.0f);
    t2 = bench_now_ns();
    k->write_nt(buf, n, 1.0f);
    t3 = bench_now_ns();
    k->copy(buf, buf + half, half, 1.0f);
    t4 = bench_now_ns();
    k->copy_nt(buf + half, buf, half, 1.0f);
    t5 = bench_now_ns();
    if (r < 0) continue;
    t[0][r] = t1 - t0;
    t[1][r] = t2 - t1;
    t[2][r] = t3 - t2;
    t[3][r] = t4 - t3;
    t[4][r] = t5 - t4;
  }
  for (w = 0; w < 5; w++) t[w][0] = bench_median(t[w], (size_t)reps);
  bw.bytes = n * sizeof(float);
  bw.read_gbs = b / t[0][0];
  bw.write_gbs = b / t[1][0];
  bw.write_nt_gbs = b / t[2][0];
  bw.copy_gbs = b / t[3][0]; /* half read + half written = b bytes */
  bw.copy_nt_gbs = b / t[4][0];
  return bw;
}

/* Read bandwidth of a hot buffer: `bytes` of buf read over and over (the
   cache-resident floor for a small matrix). */
BENCH_FN double bench_read_hot_gbs(const bench_stream_kernels *k,
                                   const float *buf, size_t bytes, int reps) {
  double t[BENCH_MAX_REPS];
  const size_t n = bytes / sizeof(float);
  const double target_ns = 2e6;
  size_t it, iters = 1;
  int r;
  double t0 = bench_now_ns();
  bench_sink = k->read(buf, n); /* warm the cache, calibrate */
  t0 = bench_now_ns() - t0;
  if (t0 < target_ns) iters = (size_t)(target_ns / (t0 > 1 ? t0 : 1)) + 1;
  if (reps > BENCH_MAX_REPS) reps = BENCH_MAX_REPS;
  for (r = 0; r < reps; r++) {
    double s = 0;
    t0 = bench_now_ns();
    for (it = 0; it < iters; it++) s += (double)k->read(buf, n);
    t[r] = (bench_now_ns() - t0) / (double)iters;
    bench_sink = s;
  }
  return (double)(n * sizeof(float)) / bench_median(t, (size_t)reps);
}

BENCH_FN void bench_print_bandwidth(const char *label,
                                    const bench_bandwidth *bw) {
  printf("%s: %.0f MiB buffer: read %.1f GB/s, write %.1f GB/s "
         "(non-temporal %.1f), copy %.1f GB/s read+written "
         "(non-temporal %.1f)\n",
         label, (double)bw->bytes / 1048576.0, bw->read_gbs, bw->write_gbs,
         bw->write_nt_gbs, bw->copy_gbs, bw->copy_nt_gbs);
}

/* ---- Interleaved timing --------------------------------------------------- */
/* A contender is a function run(ctx, call) timed `iters` calls per sample
   (call counts up across all samples, so it can rotate buffers). All
   contenders of one case are timed in the same loop, one sample each per
   repetition, with the starting contender rotated per repetition, so slow
   drift and neighbours' load hit them all alike. */
typedef void (*bench_run_fn)(void *ctx, size_t call);

typedef struct bench_contender {
  const char *name;
  bench_run_fn run;
  void *ctx;
  size_t iters;   /* calls per sample; 0 = calibrate to target_ns */
  double median;  /* out: ns per call */
  double samples[BENCH_MAX_REPS];
} bench_contender;

/* `shared_call`, if not NULL, is one counter shared by all contenders (out of
   cache: every call must take the next buffer of a common rotation, or one
   contender would find the buffers the previous one just left in cache). */
BENCH_FN void bench_measure(bench_contender *c, size_t nc, int reps,
                            double target_ns, size_t *shared_call) {
  size_t i, it, own = 0;
  size_t *call = shared_call != NULL ? shared_call : &own;
  int r;
  if (reps > BENCH_MAX_REPS) reps = BENCH_MAX_REPS;
  for (i = 0; i < nc; i++) { /* warm-up and calibration: 1 call, then more */
    double t0 = bench_now_ns(), t;
    c[i].run(c[i].ctx, (*call)++);
    t = bench_now_ns() - t0;
    if (c[i].iters == 0 && t >= target_ns) c[i].iters = 1;
    if (c[i].iters == 0) { /* re-time a few calls: the first one was cold */
      size_t k = (size_t)(target_ns / (t > 50 ? t : 50));
      if (k < 1) k = 1;
      if (k > 8) k = 8;
      t0 = bench_now_ns();
      for (it = 0; it < k; it++) c[i].run(c[i].ctx, (*call)++);
      t = (bench_now_ns() - t0) / (double)k;
      c[i].iters = t < target_ns ? (size_t)(target_ns / (t > 5 ? t : 5)) + 1 : 1;
    }
  }
  for (r = 0; r < reps; r++) {
    for (i = 0; i < nc; i++) {
      bench_contender *ci = &c[(i + (size_t)r) % nc];
      double w0 = bench_wall_ns(), c0 = bench_cpu_ns(), w1, c1;
      for (it = 0; it < ci->iters; it++) ci->run(ci->ctx, (*call)++);
      c1 = bench_cpu_ns();
      w1 = bench_wall_ns();
      bench_wall_total += w1 - w0;
      bench_cpu_total += c1 - c0;
      ci->samples[r] = (bench_clock_wall ? w1 - w0 : c1 - c0) / (double)ci->iters;
    }
  }
  for (i = 0; i < nc; i++) {
    double tmp[BENCH_MAX_REPS];
    memcpy(tmp, c[i].samples, sizeof(double) * (size_t)reps);
    c[i].median = bench_median(tmp, (size_t)reps);
  }
}

/* Median over repetitions of a[r] / b[r]. The contenders of one case ran
   next to each other in every repetition, so the ratio of paired samples
   cancels slow drift and a neighbour's burst better than a ratio of
   medians. NaN if either side has no samples. */
BENCH_FN double bench_paired_ratio(const double *a, const double *b,
                                   int reps) {
  double q[BENCH_MAX_REPS];
  int r;
  if (reps < 1 || reps > BENCH_MAX_REPS) return NAN;
  for (r = 0; r < reps; r++) q[r] = a[r] / b[r];
  return bench_median(q, (size_t)reps);
}

#endif /* BENCH_UTIL_H */
