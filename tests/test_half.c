/* tests/test_half.c - half-precision weights: conversions, the 16-bit dot
   kernels and exact path, the certified float32 top-k, and SVD-softmax
   built from 16-bit weights.

   What is checked, on every ISA the CPU and build support (and, on a CPU
   with AVX-512 BF16, both AVX-512 variants of the bf16 kernel):
   - conversions: every array kernel bit for bit against the scalar
     functions (all 2^32 floats in the native build, a stride and every
     boundary in quick mode), and the scalar functions against an
     independent reference written here in double (round to nearest even,
     subnormals, overflow to inf, NaN payloads); adasm_convert over every
     dtype pair, tails and misaligned buffers, and its argument errors;
   - dot kernels: bit for bit dot_rows on the widened rows where the header
     says so (scalar, NEON), and the stated bound against a double reference on
     the same 16-bit values (ADASM__DOT_DEPTH, plus the subnormal flush term
     for vdpbf16ps); special values as the plain path;
   - adasm_exact_query on 16-bit matrices: the same answer, bit for bit, as
     on the widened float matrix (scalar, NEON), or logits within the bound
     and the exact path's answer on them (AVX2, AVX-512); argument errors;
   - certified top-k and SVD from 16-bit weights: see their sections below.

   Environment: ADASM_TEST_QUICK=1 (sanitizers, qemu, valgrind) samples the
   2^32 conversion sweep and shrinks the sizes.
   Build by hand:
     gcc -std=c99 -O2 -Wall -Wextra -Wpedantic -Wshadow -Wconversion -I. \
         tests/test_half.c -lm && ./a.out */
#define TEST_ALLOCATOR
#define TEST_TYPED_CTX
#include "test_util.h"

#define ADASM_MALLOC(sz, ctx) test_malloc((sz), (ctx))
#define ADASM_FREE(p, ctx) test_free((p), (ctx))
#define ADASOFTMAX_IMPLEMENTATION
#include "adasoftmax.h"

#include <float.h>
#include <math.h>
#include <stdint.h>
#include <time.h>

static int g_quick;

/* ---- kernel sets under test ------------------------------------------------ */
typedef struct kset {
  const adasm_kernels *k;
  const char *name;
} kset;
static kset g_ks[8];
static size_t g_nks;

static void collect_kernel_sets(void) {
  int isa;
  for (isa = ADASM_ISA_SCALAR; isa < ADASM_ISA_COUNT; ++isa) {
    const adasm_kernels *k;
    if (adasm_kernels_get((adasm_isa)isa, &k) != ADASM_OK) continue;
    g_ks[g_nks].k = k;
    g_ks[g_nks++].name = adasm_isa_name((adasm_isa)isa);
#if defined(ADASM__HAVE_AVX512BF16)
    /* the AVX-512 set the dispatcher picks is the vdpbf16ps variant on a
       CPU that has it: test the plain one too */
    if (isa == ADASM_ISA_AVX512 && k == &adasm__kernels_avx512bf16) {
      g_ks[g_nks].k = &adasm__kernels_avx512;
      g_ks[g_nks++].name = "avx512-plain";
    }
#endif
  }
}
/* The kernel sets whose 16-bit dot kernels are their float kernel with the
   load widened (the header promises bit-for-bit equality there). */
static int widens_float_kernel(const adasm_kernels *k) {
#if defined(ADASM__HAVE_NEON)
  if (k == &adasm__kernels_neon) return 1;
#endif
  return k == &adasm__kernels_scalar;
}
static int is_dpbf16(const adasm_kernels *k) {
#if defined(ADASM__HAVE_AVX512BF16)
  return k == &adasm__kernels_avx512bf16;
#else
  (void)k;
  return 0;
#endif
}

/* ---- data --------------------------------------------------------------------- */
static adasm_pcg32 g_rng;
static float unif(float lo, float hi) {
  return lo + (hi - lo) * adasm_pcg32_uniform(&g_rng);
}
static uint32_t f2u(float f) {
  uint32_t u;
  memcpy(&u, &f, 4);
  return u;
}
static float u2f(uint32_t u) {
  float f;
  memcpy(&f, &u, 4);
  return f;
}

/* ---- conversions: independent references in double --------------------------- */
/* IEEE binary16 / bfloat16 of a float, round to nearest even, by scaling in
   double and rint (exact: every value involved has < 53 bits). */
static uint16_t ref_f32_to_16(float f, int bf) {
  const uint32_t x = f2u(f);
  const uint16_t sign = (uint16_t)((x >> 16) & 0x8000u);
  const int mbits = bf ? 7 : 10, emin = bf ? -126 : -14;
  const double maxfin = bf ? (double)FLT_MAX : 65504.0;
  double a = fabs((double)f), q, ulp, half_past;
  int e;
  if (f != f) { /* NaN: quiet, top payload bits */
    if (bf) return (uint16_t)((x >> 16) | 0x40u);
    return (uint16_t)(sign | 0x7e00u | ((x >> 13) & 0x3ffu));
  }
  if (isinf(a)) return (uint16_t)(sign | (bf ? 0x7f80u : 0x7c00u));
  if (a == 0.0) return sign;
  (void)frexp(a, &e); /* a = m 2^e, m in [0.5, 1) */
  e -= 1;             /* a in [2^e, 2^(e+1)) */
  if (e < emin) e = emin;
  ulp = ldexp(1.0, e - mbits);
  half_past = maxfin + ldexp(1.0, (bf ? 127 : 15) - mbits - 1);
  if (a >= half_past) return (uint16_t)(sign | (bf ? 0x7f80u : 0x7c00u));
  q = rint(a / ulp) * ulp; /* rint: ties to even in the default mode */
  if (q > maxfin) return (uint16_t)(sign | (bf ? 0x7f80u : 0x7c00u));
  {
    /* encode q */
    int qe;
    double m;
    uint32_t bits;
    if (q == 0.0) return sign;
    m = frexp(q, &qe);
    qe -= 1;
    if (qe < emin) { /* subnormal */
      bits = (uint32_t)(q / ldexp(1.0, emin - mbits));
    } else {
      bits = ((uint32_t)(qe + (bf ? 127 : 15)) << mbits) |
             ((uint32_t)((m * 2.0 - 1.0) * ldexp(1.0, mbits)));
    }
    return (uint16_t)(sign | bits);
  }
}
static float ref_16_to_f32(uint16_t h, int bf) {
  const int mbits = bf ? 7 : 10, ebits = bf ? 8 : 5, bias = bf ? 127 : 15;
  const int e = (h >> mbits) & ((1 << ebits) - 1);
  const int m = h & ((1 << mbits) - 1);
  const double s = (h & 0x8000u) ? -1.0 : 1.0;
  if (e == (1 << ebits) - 1) {
    if (m == 0) return (float)(s * HUGE_VAL);
    return u2f((uint32_t)(h & 0x8000u) << 16 | 0x7f800000u |
               (uint32_t)m << (23 - mbits) | (bf ? 0u : 0x400000u)); /* NaN:
               payload kept; f16 made quiet */
  }
  if (e == 0) return (float)(s * ldexp((double)m, 1 - bias - mbits));
  return (float)(s * ldexp(1.0 + ldexp((double)m, -mbits), e - bias));
}
static int same_float_bits(float a, float b) { return f2u(a) == f2u(b); }

static void test_scalar_conversions(void) {
  /* the kernels are checked against these functions on every float; here
     every boundary and a stride of the rest (the reference is slow) */
  uint32_t h, x, step = g_quick ? 40009u : 251u;
  unsigned long bad16 = 0, badbf = 0, checked = 0;
  /* 16 -> 32: every input */
  for (h = 0; h < 65536u; ++h) {
    CHECK(same_float_bits(adasm_f16_to_f32((uint16_t)h), ref_16_to_f32((uint16_t)h, 0)),
          "f16_to_f32(0x%04x)", (unsigned)h);
    CHECK(same_float_bits(adasm_bf16_to_f32((uint16_t)h), ref_16_to_f32((uint16_t)h, 1)),
          "bf16_to_f32(0x%04x)", (unsigned)h);
  }
  /* 32 -> 16 around every 16-bit value: the value, its neighbours in
     float, and the midpoints to the next value and their neighbours */
  for (h = 0; h < 65536u; ++h) {
    int bf;
    for (bf = 0; bf < 2; ++bf) {
      const float v = bf ? adasm_bf16_to_f32((uint16_t)h) : adasm_f16_to_f32((uint16_t)h);
      const float w = bf ? adasm_bf16_to_f32((uint16_t)(h + 1)) : adasm_f16_to_f32((uint16_t)(h + 1));
      float c[7];
      int t;
      if (v != v || w != w || isinf(v) || (h & 0x7fffu) == 0x7fffu) continue;
      c[0] = v;
      c[1] = u2f(f2u(v) + 1u);
      c[2] = f2u(v) & 0x7fffffffu ? u2f(f2u(v) - 1u) : v;
      c[3] = (float)(((double)v + (double)w) / 2); /* exact midpoint */
      c[4] = u2f(f2u(c[3]) + 1u);
      c[5] = u2f(f2u(c[3]) - 1u);
      c[6] = isinf(w) ? v : w;
      for (t = 0; t < 7; ++t) {
        const uint16_t got = bf ? adasm_f32_to_bf16(c[t]) : adasm_f32_to_f16(c[t]);
        if (got != ref_f32_to_16(c[t], bf)) {
          if (bf) ++badbf; else ++bad16;
          if (bad16 + badbf <= 10)
            printf("  %s(%.9g = 0x%08x) = 0x%04x, reference 0x%04x\n",
                   bf ? "f32_to_bf16" : "f32_to_f16", (double)c[t],
                   (unsigned)f2u(c[t]), got, ref_f32_to_16(c[t], bf));
        }
        ++checked;
      }
    }
  }
  /* and a sweep of all floats (every step-th) */
  for (x = 0;; x += step) {
    const float f = u2f(x);
    if (adasm_f32_to_f16(f) != ref_f32_to_16(f, 0)) ++bad16;
    if (adasm_f32_to_bf16(f) != ref_f32_to_16(f, 1)) ++badbf;
    ++checked;
    if (x > 0xffffffffu - step) break;
  }
  CHECK(bad16 == 0 && badbf == 0,
        "scalar f32 -> 16 bit: %lu f16 and %lu bf16 of %lu differ from the "
        "double reference", bad16, badbf, checked);
  /* named special values */
  CHECK(adasm_f32_to_f16(65504.0f) == 0x7bffu, "f16 max");
  CHECK(adasm_f32_to_f16(65519.996f) == 0x7bffu, "f16 below the overflow midpoint");
  CHECK(adasm_f32_to_f16(65520.0f) == 0x7c00u, "f16 overflow midpoint rounds to inf");
  CHECK(adasm_f32_to_f16(-1e10f) == 0xfc00u, "f16 -overflow");
  CHECK(adasm_f32_to_f16(5.9604644775390625e-8f) == 0x0001u, "f16 min subnormal");
  CHECK(adasm_f32_to_f16(2.98023223876953125e-8f) == 0x0000u, "2^-25 ties to even 0");
  CHECK(adasm_f32_to_f16(u2f(f2u(2.98023223876953125e-8f) + 1)) == 0x0001u, "just past 2^-25");
  CHECK(adasm_f32_to_f16(-0.0f) == 0x8000u, "f16 -0");
  CHECK(adasm_f32_to_f16(u2f(0x7f800001u)) == 0x7e00u, "f16 sNaN quieted");
  CHECK(adasm_f32_to_f16(u2f(0xffc02000u)) == 0xfe01u, "f16 NaN payload top bits");
  CHECK(adasm_f32_to_bf16(u2f(0x7f800001u)) == 0x7fc0u, "bf16 sNaN quieted");
  CHECK(adasm_f32_to_bf16(FLT_MAX) == 0x7f80u, "bf16 FLT_MAX rounds to inf");
  CHECK(adasm_f32_to_bf16(u2f(0x00008000u)) == 0x0000u, "bf16 subnormal tie to even");
  CHECK(adasm_f32_to_bf16(u2f(0x00018000u)) == 0x0002u, "bf16 subnormal tie up");
  CHECK(adasm_f32_to_bf16(1.00390625f) == 0x3f80u, "bf16 1 + 2^-8 ties to 1");
  CHECK(adasm_f16_to_f32(0x0001u) == 5.9604644775390625e-8f, "f16 subnormal widens");
  CHECK(isnan(adasm_f16_to_f32(0x7c01u)) && isnan(adasm_bf16_to_f32(0xff81u)), "NaN widens");
}

/* Every array kernel against the scalar functions, bit for bit. */
static void test_kernel_conversions(void) {
  enum { CH = 1 << 16 };
  static float src[CH + 16], back[CH + 16];
  static uint16_t h16[CH + 16], ref16[CH + 16], refbf[CH + 16];
  uint64_t base;
  const uint64_t step = g_quick ? 977u : 1u, total = (uint64_t)1 << 32;
  size_t s, i;
  unsigned long bad[8][4];
  memset(bad, 0, sizeof bad);
  for (base = 0; base < total; base += (uint64_t)CH * step) {
    size_t n = 0;
    for (i = 0; i < CH && base + i * step < total; ++i)
      src[n++] = u2f((uint32_t)(base + i * step));
    for (i = 0; i < n; ++i) {
      ref16[i] = adasm_f32_to_f16(src[i]);
      refbf[i] = adasm_f32_to_bf16(src[i]);
    }
    for (s = 0; s < g_nks; ++s) {
      const adasm_kernels *k = g_ks[s].k;
      if (k == &adasm__kernels_scalar) continue;
      k->f32_to_f16(src, n, h16);
      if (memcmp(h16, ref16, n * 2)) ++bad[s][0];
      k->f32_to_bf16(src, n, h16);
      if (memcmp(h16, refbf, n * 2)) ++bad[s][1];
    }
  }
  /* 16 -> 32: all 65536 inputs, in odd lengths and at odd offsets */
  for (i = 0; i < 65536u; ++i) h16[i] = (uint16_t)i;
  for (s = 0; s < g_nks; ++s) {
    const adasm_kernels *k = g_ks[s].k;
    int bf;
    for (bf = 0; bf < 2; ++bf) {
      size_t off = 0, len = 1;
      while (off < 65536u) {
        if (len > 65536u - off) len = 65536u - off;
        (bf ? k->bf16_to_f32 : k->f16_to_f32)(h16 + off, len, back + 1);
        for (i = 0; i < len; ++i) {
          const uint16_t hv = (uint16_t)(off + i);
          if (!same_float_bits(back[1 + i], bf ? adasm_bf16_to_f32(hv) : adasm_f16_to_f32(hv)))
            ++bad[s][2 + bf];
        }
        off += len;
        len = len * 3 + 1;
      }
    }
    CHECK(bad[s][0] + bad[s][1] + bad[s][2] + bad[s][3] == 0,
          "%s conversion kernels differ from the scalar functions: f32->f16 "
          "%lu chunks, f32->bf16 %lu, f16->f32 %lu values, bf16->f32 %lu",
          g_ks[s].name, bad[s][0], bad[s][1], bad[s][2], bad[s][3]);
  }
}

/* adasm_convert: every pair, every length to 70, buffers one element off
   a vector boundary. */
static void test_convert_api(void) {
  static const adasm_dtype dt[3] = {ADASM_F32, ADASM_F16, ADASM_BF16};
  static float sbuf_f[72], dbuf_f[72], want_f[72];
  unsigned char *sbuf = (unsigned char *)sbuf_f, *dbuf = (unsigned char *)dbuf_f;
  unsigned char *want = (unsigned char *)want_f;
  size_t s, n, i, a, b;
  float f[70];
  for (i = 0; i < 70; ++i) {
    const uint32_t r = adasm_pcg32_next(&g_rng);
    f[i] = (i % 5 == 0) ? u2f(r) : unif(-70000.0f, 70000.0f) * (float)ldexp(1.0, (int)(r % 40) - 30);
  }
  for (s = 0; s < g_nks; ++s)
    for (a = 0; a < 3; ++a)
      for (b = 0; b < 3; ++b)
        for (n = 0; n <= 70; ++n) {
          const size_t sa = a ? 2 : 4, sb = b ? 2 : 4;
          adasm_result r;
          for (i = 0; i < n; ++i) { /* the source: f rounded to dtype a */
            if (a == 0) memcpy(sbuf + 4 + 4 * i, &f[i], 4);
            else {
              const uint16_t hv = a == 1 ? adasm_f32_to_f16(f[i]) : adasm_f32_to_bf16(f[i]);
              memcpy(sbuf + 4 + 2 * i, &hv, 2);
            }
          }
          for (i = 0; i < n; ++i) { /* expected: through the scalar functions */
            float v;
            uint16_t hv;
            if (a == 0) memcpy(&v, sbuf + 4 + 4 * i, 4);
            else {
              memcpy(&hv, sbuf + 4 + 2 * i, 2);
              v = a == 1 ? adasm_f16_to_f32(hv) : adasm_bf16_to_f32(hv);
            }
            if (b == 0) memcpy(want + 4 * i, &v, 4);
            else {
              hv = b == 1 ? adasm_f32_to_f16(v) : adasm_f32_to_bf16(v);
              memcpy(want + 2 * i, &hv, 2);
            }
          }
          memset(dbuf, 0xee, sizeof dbuf_f);
          r = adasm_convert(g_ks[s].k, sbuf + 4, dt[a], n, dbuf + 4, dt[b]);
          CHECK(r == ADASM_OK && memcmp(dbuf + 4, want, n * sb) == 0 &&
                    dbuf[4 + n * sb] == 0xee && dbuf[3] == 0xee,
                "adasm_convert %s %lu -> %lu n=%lu: result %d or bytes", g_ks[s].name,
                (unsigned long)a, (unsigned long)b, (unsigned long)n, (int)r);
          (void)sa;
        }
  CHECK(adasm_convert(NULL, NULL, ADASM_F32, 0, NULL, ADASM_F16) == ADASM_OK, "n = 0 with NULLs");
  CHECK(adasm_convert(NULL, NULL, ADASM_F32, 3, dbuf, ADASM_F16) == ADASM_ERR_NULL, "NULL src");
  CHECK(adasm_convert(NULL, sbuf, ADASM_F32, 3, NULL, ADASM_F16) == ADASM_ERR_NULL, "NULL dst");
  CHECK(adasm_convert(NULL, sbuf, (adasm_dtype)7, 3, dbuf, ADASM_F16) == ADASM_ERR_PARAM, "bad from");
  CHECK(adasm_convert(NULL, sbuf, ADASM_F16, 3, dbuf, (adasm_dtype)-1) == ADASM_ERR_PARAM, "bad to");
  CHECK(adasm_convert(NULL, sbuf, ADASM_F32, (size_t)-1 / 2, dbuf, ADASM_F16) == ADASM_ERR_OVERFLOW,
        "n * 4 overflows");
}

/* ---- dot kernels --------------------------------------------------------------- */
/* A row of 16-bit values of dtype bf (0 f16, 1 bf16) drawn from a mix:
   mostly N(0,1)-ish scaled by 2^[-scale, scale], some subnormal, some 0. */
static uint16_t rand16(int bf, int scale) {
  const uint32_t r = adasm_pcg32_next(&g_rng);
  float v = (unif(-1, 1) + unif(-1, 1)) * (float)ldexp(1.0, (int)(r % (uint32_t)(2 * scale + 1)) - scale);
  if (r % 17 == 0) v = 0.0f;
  if (r % 23 == 0) v = (float)ldexp(unif(-1, 1), bf ? -130 : -16); /* subnormal */
  return bf ? adasm_f32_to_bf16(v) : adasm_f32_to_f16(v);
}
static float wid(uint16_t h, int bf) { return bf ? adasm_bf16_to_f32(h) : adasm_f16_to_f32(h); }

static double gamma_depth(size_t d) {
  const double mu = (double)ADASM__DOT_DEPTH(d) * ldexp(1.0, -24);
  return mu / (1.0 - mu);
}

static void test_dot_kernels(void) {
  static const size_t ds[] = {1, 2, 3, 7, 8, 9, 15, 16, 17, 31, 32, 33, 47, 63,
                              64, 65, 100, 127, 128, 129, 255, 256, 257, 768, 1031, 4099};
  enum { MAXR = 9, MAXD = 4100, LDX = 5 };
  static uint16_t A[MAXR * (MAXD + LDX)];
  static float W[MAXR * (MAXD + LDX)], x[MAXD];
  float y[MAXR], yw[MAXR];
  size_t di, s, rows, i, j, trial;
  for (di = 0; di < sizeof ds / sizeof ds[0]; ++di) {
    const size_t d = ds[di];
    if (g_quick && d > 300 && d != 768 && d != 4099) continue;
    for (trial = 0; trial < 3; ++trial) {
      int bf;
      for (bf = 0; bf < 2; ++bf) {
        const size_t lda = d + (trial == 1 ? LDX : 0);
        const float beta = trial == 2 ? 0.37f : 1.0f;
        for (i = 0; i < MAXR * lda; ++i) A[i] = rand16(bf, trial == 2 ? (bf ? 30 : 12) : 4);
        for (i = 0; i < MAXR * lda; ++i) W[i] = wid(A[i], bf);
        for (j = 0; j < d; ++j) x[j] = unif(-2, 2) * (float)ldexp(1.0, (int)(adasm_pcg32_next(&g_rng) % 9) - 4);
        for (rows = 1; rows <= MAXR; rows += (rows < 5 ? 1 : 4)) {
          for (s = 0; s < g_nks; ++s) {
            const adasm_kernels *k = g_ks[s].k;
            const int dp = bf && is_dpbf16(k);
            (bf ? k->dot_rows_bf16 : k->dot_rows_f16)(A, rows, d, lda, x, beta, y);
            if (widens_float_kernel(k)) { /* bit for bit the float kernel on the widened rows */
              k->dot_rows(W, rows, d, lda, x, beta, yw);
              CHECK(memcmp(y, yw, rows * sizeof(float)) == 0,
                    "%s dot_rows_%s d=%lu rows=%lu lda=%lu: not bit for bit "
                    "dot_rows on the widened rows (%.9g vs %.9g)",
                    g_ks[s].name, bf ? "bf16" : "f16", (unsigned long)d,
                    (unsigned long)rows, (unsigned long)lda, (double)y[0], (double)yw[0]);
            }
            for (i = 0; i < rows; ++i) { /* the stated bound */
              double ref = 0, mag = 0, l1a = 0, l1x = 0, tol;
              for (j = 0; j < d; ++j) {
                const double p = (double)W[i * lda + j] * (double)x[j];
                ref += p;
                mag += fabs(p);
                l1a += fabs((double)W[i * lda + j]);
                l1x += fabs((double)x[j]);
              }
              tol = gamma_depth(d) * (double)beta * mag +
                    (dp ? (double)beta * ldexp((double)d + l1a + l1x, -123) : 0.0) + 1e-300;
              CHECK(fabs((double)y[i] - (double)beta * ref) <= tol,
                    "%s dot_rows_%s d=%lu row %lu: %.9g vs %.17g (bound %.3g)",
                    g_ks[s].name, bf ? "bf16" : "f16", (unsigned long)d,
                    (unsigned long)i, (double)y[i], (double)beta * ref, tol);
            }
          }
        }
      }
    }
  }
  /* exact arithmetic: small integers give exact sums on every kernel */
  for (s = 0; s < g_nks; ++s) {
    const adasm_kernels *k = g_ks[s].k;
    int bf;
    for (bf = 0; bf < 2; ++bf)
      for (di = 0; di < sizeof ds / sizeof ds[0]; ++di) {
        const size_t d = ds[di];
        double want[MAXR];
        for (i = 0; i < MAXR; ++i) {
          want[i] = 0;
          for (j = 0; j < d; ++j) {
            const float v = (float)((int)(adasm_pcg32_bounded(&g_rng, 15)) - 7);
            A[i * d + j] = bf ? adasm_f32_to_bf16(v) : adasm_f32_to_f16(v);
          }
        }
        for (j = 0; j < d; ++j) x[j] = (float)((int)adasm_pcg32_bounded(&g_rng, 9) - 4);
        for (i = 0; i < MAXR; ++i)
          for (j = 0; j < d; ++j) want[i] += (double)wid(A[i * d + j], bf) * (double)x[j];
        (bf ? k->dot_rows_bf16 : k->dot_rows_f16)(A, MAXR, d, d, x, 2.0f, y);
        for (i = 0; i < MAXR; ++i)
          CHECK((double)y[i] == 2.0 * want[i], "%s dot_rows_%s d=%lu integer row %lu: %g vs %g",
                g_ks[s].name, bf ? "bf16" : "f16", (unsigned long)d, (unsigned long)i,
                (double)y[i], 2.0 * want[i]);
      }
  }
  /* special values: inf, NaN, a sum past FLT_MAX, huge and tiny x: the
     vdpbf16ps variant returns the plain kernel's value wherever that one is
     not finite, and a finite value wherever it is */
#if defined(ADASM__HAVE_AVX512BF16)
  for (s = 0; s < g_nks; ++s) {
    const adasm_kernels *k = g_ks[s].k;
    size_t c;
    if (!is_dpbf16(k)) continue;
    for (c = 0; c < 8; ++c) {
      const size_t d = 37 + c * 7;
      float yp[MAXR];
      for (i = 0; i < MAXR * d; ++i) A[i] = rand16(1, 3);
      for (j = 0; j < d; ++j) x[j] = unif(-1, 1);
      A[1 * d + c] = 0x7f80u;                 /* row 1: +inf */
      A[2 * d + 3] = 0xff80u;                 /* row 2: -inf ... */
      A[2 * d + 5] = 0x7f80u;                 /* ... and +inf: NaN */
      A[3 * d + c + 1] = 0x7fc1u;             /* row 3: NaN */
      A[4 * d] = A[4 * d + 1] = 0x7f7fu;      /* row 4: near FLT_MAX twice */
      x[0] = x[1] = c % 2 ? 3.0f : -3.0f;
      if (c == 5) x[d - 1] = u2f(0x7f800000u); /* x holds inf */
      if (c == 6) x[2] = u2f(0x7fc00000u);     /* x holds NaN */
      if (c == 7) x[3] = 1e-42f;               /* x holds a subnormal */
      k->dot_rows_bf16(A, MAXR, d, d, x, 1.0f, y);
      adasm__kernels_avx512.dot_rows_bf16(A, MAXR, d, d, x, 1.0f, yp);
      for (i = 0; i < MAXR; ++i)
        CHECK(adasm__isfinitef(yp[i]) ? adasm__isfinitef(y[i])
                                      : (isnan(yp[i]) ? isnan(y[i]) : y[i] == yp[i]),
              "%s dot_rows_bf16 special case %lu row %lu: %g, plain kernel %g",
              g_ks[s].name, (unsigned long)c, (unsigned long)i, (double)y[i], (double)yp[i]);
    }
  }
#endif
}

/* adasm_exact_query on f16 / bf16: the answer on the widened float matrix,
   bit for bit (logits, top-k, probabilities, log-normalizer) where the
   kernels widen the float ones; elsewhere the bound and consistency. */
static void test_exact_query(void) {
  enum { N = 700, D = 77, LD = 80, K = 7 };
  static uint16_t A[N * LD];
  static float W[N * LD], lg16[N], lg32[N];
  float x[D], p16[K], p32[K];
  size_t i16[K], i32[K], s, i;
  int bf;
  for (bf = 0; bf < 2; ++bf) {
    adasm_matrix m16, m32;
    for (i = 0; i < N * LD; ++i) A[i] = rand16(bf, 2);
    for (i = 0; i < 5; ++i) /* duplicated rows: ties break by index */
      memcpy(A + (600 + i * 11) * LD, A + 17 * LD, LD * 2);
    for (i = 0; i < N * LD; ++i) W[i] = wid(A[i], bf);
    for (i = 0; i < D; ++i) x[i] = unif(-1, 1);
    m16 = bf ? adasm_matrix_bf16(A, N, D, LD) : adasm_matrix_f16(A, N, D, LD);
    m32 = adasm_matrix_f32(W, N, D, LD);
    for (s = 0; s < g_nks; ++s) {
      adasm_exact_params pr = adasm_exact_params_default();
      adasm_exact_result r16, r32;
      adasm_result e16, e32;
      pr.k = K;
      pr.beta = 3.5f;
      pr.kern = g_ks[s].k;
      memset(&r16, 0, sizeof r16);
      memset(&r32, 0, sizeof r32);
      r16.idx = i16; r16.prob = p16; r16.logits = lg16;
      r32.idx = i32; r32.prob = p32; r32.logits = lg32;
      e16 = adasm_exact_query(&m16, &pr, x, NULL, 0, &r16);
      e32 = adasm_exact_query(&m32, &pr, x, NULL, 0, &r32);
      CHECK(e16 == ADASM_OK && e32 == ADASM_OK, "%s exact_query: %d %d", g_ks[s].name, (int)e16, (int)e32);
      if (!widens_float_kernel(g_ks[s].k)) {
        /* another summation order: every logit within the stated bound of
           the double reference, and the answer is the exact path's on
           those logits */
        double ref_max = -HUGE_VAL, z = 0;
        size_t j, t, kth = 0;
        for (i = 0; i < N; ++i) {
          double ref = 0, mag = 0;
          for (j = 0; j < D; ++j) {
            ref += (double)W[i * LD + j] * (double)x[j];
            mag += fabs((double)W[i * LD + j] * (double)x[j]);
          }
          CHECK(fabs((double)lg16[i] - 3.5 * ref) <=
                    3.5 * gamma_depth(D) * mag + (bf && is_dpbf16(g_ks[s].k) ? 1e-30 : 0.0),
                "%s 16-bit logit %lu: %.9g vs %.17g", g_ks[s].name, (unsigned long)i,
                (double)lg16[i], 3.5 * ref);
          if (lg16[i] > ref_max) ref_max = lg16[i];
        }
        for (i = 0; i < N; ++i) z += exp((double)lg16[i] - ref_max);
        CHECK(fabs(r16.log_norm - (ref_max + log(z))) <= 1e-6 * fmax(1.0, fabs(r16.log_norm)),
              "%s 16-bit log_norm %.17g vs %.17g", g_ks[s].name, r16.log_norm, ref_max + log(z));
        for (t = 0; t < K; ++t) { /* rank of i16[t] among the logits */
          kth = 0;
          for (i = 0; i < N; ++i)
            kth += lg16[i] > lg16[i16[t]] || (lg16[i] == lg16[i16[t]] && i < i16[t]);
          CHECK(kth == t, "%s 16-bit top %lu is row %lu, of rank %lu", g_ks[s].name,
                (unsigned long)t, (unsigned long)i16[t], (unsigned long)kth);
          CHECK(fabs((double)p16[t] - exp((double)lg16[i16[t]] - r16.log_norm)) <=
                    2e-6 * (double)p16[t] + 1e-38,
                "%s 16-bit p[%lu]", g_ks[s].name, (unsigned long)t);
        }
      } else {
        CHECK(memcmp(lg16, lg32, sizeof lg16) == 0 && memcmp(i16, i32, sizeof i16) == 0 &&
                  memcmp(p16, p32, sizeof p16) == 0 && r16.log_norm == r32.log_norm,
              "%s exact_query %s: not the widened matrix's answer", g_ks[s].name,
              bf ? "bf16" : "f16");
      }
      CHECK(r16.madds == (uint64_t)N * D, "madds");
    }
  }
  { /* argument errors leave the outputs alone */
    adasm_exact_params pr = adasm_exact_params_default();
    adasm_exact_result r;
    adasm_matrix m = adasm_matrix_f16(A, N, D, LD);
    memset(&r, 0, sizeof r);
    r.idx = i16; r.prob = p16;
    r.log_norm = 42.0;
    m.dtype = (adasm_dtype)9;
    CHECK(adasm_exact_query(&m, &pr, x, NULL, 0, &r) == ADASM_ERR_PARAM && r.log_norm == 42.0,
          "exact_query: unknown dtype");
    m = adasm_matrix_bf16(A, N, D, D - 1);
    CHECK(adasm_exact_query(&m, &pr, x, NULL, 0, &r) == ADASM_ERR_SIZE, "exact_query: ld < cols");
    m = adasm_matrix_bf16(NULL, N, D, LD);
    CHECK(adasm_exact_query(&m, &pr, x, NULL, 0, &r) == ADASM_ERR_NULL, "exact_query: NULL data");
  }
}

/* ---- certified top-k ---------------------------------------------------------------- */
/* One query on every kernel set: the certified answer must be the float32
   exact path's with the same kernels, bit for bit in the rows (ties
   included), with probabilities and log_norm within the reported bound. */
static size_t g_cert_queries, g_cert_rows_exact, g_cert_n;

static void cert_compare(const char *what, const adasm_certified_index *ix,
                         const float *A, size_t n, size_t d, size_t lda,
                         const float *x, size_t kk, float beta) {
  static size_t ic[64], ie[64];
  static float pc[64], pe[64];
  static unsigned char work[1 << 20];
  size_t s, t;
  for (s = 0; s < g_nks; ++s) {
    adasm_certified_params cp = adasm_certified_params_default();
    adasm_certified_result cr;
    adasm_exact_params ep = adasm_exact_params_default();
    adasm_exact_result er;
    adasm_matrix m = adasm_matrix_f32(A, n, d, lda);
    adasm_result rc, re;
    size_t need = 0;
    cp.k = ep.k = kk;
    cp.beta = ep.beta = beta;
    cp.kern = ep.kern = g_ks[s].k;
    memset(&cr, 0, sizeof cr);
    memset(&er, 0, sizeof er);
    cr.idx = ic; cr.prob = pc;
    er.idx = ie; er.prob = pe;
    CHECK(adasm_certified_workspace_size(ix, &cp, &need) == ADASM_OK && need <= sizeof work - 3,
          "%s: workspace %lu", what, (unsigned long)need);
    rc = adasm_certified_query(ix, &cp, x, work + 3, need, &cr);
    re = adasm_exact_query(&m, &ep, x, NULL, 0, &er);
    CHECK(rc == re, "%s %s: result %d, exact path %d", what, g_ks[s].name, (int)rc, (int)re);
    ++g_cert_queries;
    g_cert_rows_exact += cr.rows_exact;
    g_cert_n += n;
    if (rc != ADASM_OK || re != ADASM_OK) continue;
    CHECK(memcmp(ic, ie, kk * sizeof(size_t)) == 0,
          "%s %s k=%lu: rows differ from the exact path's (first: %lu vs %lu; "
          "%lu rows recomputed)", what, g_ks[s].name, (unsigned long)kk,
          (unsigned long)ic[0], (unsigned long)ie[0], (unsigned long)cr.rows_exact);
    CHECK(cr.rows_exact >= kk && cr.rows_exact <= n, "%s: rows_exact %lu", what,
          (unsigned long)cr.rows_exact);
    CHECK(cr.madds == (uint64_t)(n + cr.rows_exact) * d ||
              (cr.rows_exact == n && cr.madds == (uint64_t)n * d), /* no screen */
          "%s: madds", what);
    CHECK(cr.log_norm_err >= 0 && (cr.rows_exact < n || cr.log_norm_err == 0.0),
          "%s: log_norm_err %g", what, cr.log_norm_err);
    CHECK(cr.log_norm == er.log_norm ||
              fabs(cr.log_norm - er.log_norm) <= cr.log_norm_err + 2e-6 * fmax(1.0, fabs(er.log_norm)),
          "%s %s: log_norm %.17g vs %.17g (bound %.3g)", what, g_ks[s].name,
          cr.log_norm, er.log_norm, cr.log_norm_err);
    for (t = 0; t < kk; ++t)
      CHECK(cr.log_norm_err > 700.0 ||
                fabs((double)pc[t] - (double)pe[t]) <=
                    (expm1(cr.log_norm_err) + 4e-6) * (double)pe[t] + 1e-38,
            "%s %s: p[%lu] %.9g vs %.9g (bound %.3g)", what, g_ks[s].name,
            (unsigned long)t, (double)pc[t], (double)pe[t], cr.log_norm_err);
  }
}

static void cert_case(const char *what, const float *A, size_t n, size_t d,
                      size_t lda, const float *X, size_t q, size_t kk, float beta) {
  adasm_certified_index ix;
  adasm_matrix m = adasm_matrix_f32(A, n, d, lda);
  adasm_result r = adasm_certified_build(&ix, &m, NULL);
  size_t i;
  CHECK(r == ADASM_OK, "%s: build %d", what, (int)r);
  if (r != ADASM_OK) return;
  for (i = 0; i < q; ++i) cert_compare(what, &ix, A, n, d, lda, X + i * d, kk, beta);
  adasm_certified_free(&ix);
  CHECK(ix.block == NULL && ix.h == NULL, "%s: free", what);
}

static void test_certified(void) {
  enum { MN = 3000, MD = 200, Q = 6 };
  static float A[MN * (MD + 3)], X[Q * MD];
  char what[96];
  size_t i, j, c;
  const size_t nq = g_quick ? 2 : Q;
  /* random heads of several shapes, k from 1 to n */
  static const size_t shp[][3] = {{1, 1, 1}, {5, 3, 4}, {64, 17, 17}, {700, 33, 35},
                                  {3000, 64, 64}, {1500, 200, 203}};
  for (c = 0; c < sizeof shp / sizeof shp[0]; ++c) {
    const size_t n = shp[c][0], d = shp[c][1], lda = shp[c][2];
    static const size_t ks[] = {1, 2, 5, 40};
    size_t t;
    for (i = 0; i < n * lda; ++i) A[i] = unif(-1, 1);
    for (i = 0; i < nq * d; ++i) X[i] = unif(-1, 1) * 3.0f / sqrtf((float)d) * 3.0f;
    for (t = 0; t < 4; ++t) {
      const size_t kk = ks[t] < n ? ks[t] : n;
      snprintf(what, sizeof what, "random %lux%lu k=%lu", (unsigned long)n, (unsigned long)d,
               (unsigned long)kk);
      cert_case(what, A, n, d, lda, X, nq, kk, t == 3 ? 7.5f : 1.0f);
    }
  }
  { /* ties: rows repeated, all rows equal, near-ties of one ulp */
    const size_t n = 600, d = 48;
    for (i = 0; i < n * d; ++i) A[i] = unif(-1, 1);
    for (i = 0; i < d; ++i) X[i] = unif(-1, 1);
    for (i = 1; i < 40; ++i) memcpy(A + (i * 13) * d, A + 5 * d, d * sizeof(float));
    cert_case("repeated rows k=1", A, n, d, d, X, 1, 1, 1.0f);
    cert_case("repeated rows k=30", A, n, d, d, X, 1, 30, 1.0f);
    /* make row 5 the winner, then its copies tie with it */
    for (j = 0; j < d; ++j) A[5 * d + j] = X[j] > 0 ? 1.0f : -1.0f;
    for (i = 1; i < 40; ++i) memcpy(A + (i * 13) * d, A + 5 * d, d * sizeof(float));
    cert_case("tied winners k=7", A, n, d, d, X, 1, 7, 1.0f);
    /* one-ulp changes in one entry: the f16 copies are equal, the float32
       logits differ in the last bits or tie */
    for (i = 1; i < 40; ++i) {
      float *row = A + (i * 13) * d;
      const size_t jj = i % d;
      uint32_t u = f2u(row[jj]);
      u = (i % 3 == 0) ? u + 1u : (i % 3 == 1 ? u - 1u : u);
      row[jj] = u2f(u);
    }
    cert_case("one-ulp near-ties k=1", A, n, d, d, X, 1, 1, 1.0f);
    cert_case("one-ulp near-ties k=12", A, n, d, d, X, 1, 12, 1.0f);
    for (i = 0; i < n; ++i) memcpy(A + i * d, A + 5 * d, d * sizeof(float));
    cert_case("all rows equal k=3", A, n, d, d, X, 1, 3, 1.0f);
  }
  { /* adversarial near-ties: logits packed within the bound of each other
       (rows = base + tiny multiples of a direction orthogonal-ish to x) */
    const size_t n = 800, d = 40;
    for (j = 0; j < d; ++j) X[j] = unif(-1, 1);
    for (i = 0; i < n; ++i)
      for (j = 0; j < d; ++j)
        A[i * d + j] = (float)((double)X[j] * 0.5 + 1e-4 * (double)(i % 50) *
                                                       (double)unif(-1, 1));
    cert_case("packed logits k=1", A, n, d, d, X, 1, 1, 1.0f);
    cert_case("packed logits k=25", A, n, d, d, X, 1, 25, 30.0f);
  }
  { /* magnitudes: huge, tiny, mixed in one row, zero rows, subnormals */
    const size_t n = 300, d = 29;
    for (i = 0; i < n; ++i)
      for (j = 0; j < d; ++j) {
        const int sc = (int)(i % 7) * 20 - 60; /* 2^-60 .. 2^60 by row */
        A[i * d + j] = (float)ldexp((double)unif(-1, 1), sc + ((i % 11 == 0) ? (int)(j % 5) * 12 : 0));
      }
    for (j = 0; j < d; ++j) A[7 * d + j] = 0.0f;          /* zero row */
    for (j = 0; j < d; ++j) A[8 * d + j] = 1e-42f * (float)j; /* subnormals */
    for (j = 0; j < d; ++j) X[j] = (float)ldexp((double)unif(-1, 1), -20);
    for (j = 0; j < d; ++j) X[d + j] = unif(-1, 1);
    cert_case("magnitudes k=1", A, n, d, d, X, 2, 1, 1.0f);
    cert_case("magnitudes k=9", A, n, d, d, X, 2, 9, 1e-3f);
  }
  { /* special values fall back to the exact path: x with inf and NaN,
       logits past FLT_MAX */
    const size_t n = 50, d = 10;
    for (i = 0; i < n * d; ++i) A[i] = unif(-1, 1);
    for (j = 0; j < 3 * d; ++j) X[j] = unif(-1, 1);
    X[3] = u2f(0x7f800000u);
    X[d + 4] = u2f(0x7fc00000u);
    A[2 * d] = 3e38f;
    X[2 * d] = 100.0f;
    cert_case("special values k=2", A, n, d, d, X, 3, 2, 1.0f);
  }
  printf("  certified: %lu queries, %.2f%% of the rows recomputed\n",
         (unsigned long)g_cert_queries,
         g_cert_n ? 100.0 * (double)g_cert_rows_exact / (double)g_cert_n : 0.0);
}

/* Argument errors (outputs untouched) and build refusals. */
static void test_certified_errors(void) {
  float A[12] = {1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12}, x[3] = {1, 0, -1};
  uint16_t H[12];
  adasm_certified_index ix, zero;
  adasm_certified_params p = adasm_certified_params_default();
  adasm_certified_result r;
  adasm_matrix m = adasm_matrix_f32(A, 4, 3, 3);
  size_t idx[4], need;
  float prob[4];
  unsigned char work[4096];
  memset(&zero, 0, sizeof zero);
  memset(&ix, 0x5a, sizeof ix);
  CHECK(adasm_certified_build(NULL, &m, NULL) == ADASM_ERR_NULL, "build NULL ix");
  CHECK(adasm_certified_build(&ix, NULL, NULL) == ADASM_ERR_NULL, "build NULL A");
  m = adasm_matrix_f16(H, 4, 3, 3);
  CHECK(adasm_certified_build(&ix, &m, NULL) == ADASM_ERR_PARAM, "build f16");
  m = adasm_matrix_f32(A, 4, 3, 2);
  CHECK(adasm_certified_build(&ix, &m, NULL) == ADASM_ERR_SIZE, "build ld < cols");
  m = adasm_matrix_f32(A, 0, 3, 3);
  CHECK(adasm_certified_build(&ix, &m, NULL) == ADASM_ERR_SIZE, "build 0 rows");
  m = adasm_matrix_f32(A, (size_t)-1 / 2, 3, 3);
  CHECK(adasm_certified_build(&ix, &m, NULL) == ADASM_ERR_OVERFLOW, "build overflow");
  A[4] = u2f(0x7fc00000u);
  m = adasm_matrix_f32(A, 4, 3, 3);
  CHECK(adasm_certified_build(&ix, &m, NULL) == ADASM_ERR_NAN, "build NaN");
  A[4] = u2f(0xff800000u);
  CHECK(adasm_certified_build(&ix, &m, NULL) == ADASM_ERR_PARAM, "build -inf");
  {
    unsigned char junk[sizeof ix];
    memset(junk, 0x5a, sizeof junk);
    CHECK(memcmp(&ix, junk, sizeof ix) == 0, "failed builds wrote *ix");
  }
  A[4] = 5.0f;
  CHECK(adasm_certified_build(&ix, &m, NULL) == ADASM_OK, "build");
  memset(&r, 0, sizeof r);
  r.idx = idx; r.prob = prob; r.log_norm = 7.0; r.madds = 9;
  CHECK(adasm_certified_workspace_size(&ix, &p, &need) == ADASM_OK && need <= sizeof work, "ws");
  CHECK(adasm_certified_workspace_size(&zero, &p, &need) == ADASM_ERR_NULL, "ws unbuilt");
  CHECK(adasm_certified_query(&zero, &p, x, work, sizeof work, &r) == ADASM_ERR_NULL, "unbuilt");
  CHECK(adasm_certified_query(&ix, NULL, x, work, sizeof work, &r) == ADASM_ERR_NULL, "NULL params");
  CHECK(adasm_certified_query(&ix, &p, NULL, work, sizeof work, &r) == ADASM_ERR_NULL, "NULL x");
  CHECK(adasm_certified_query(&ix, &p, x, NULL, sizeof work, &r) == ADASM_ERR_WORKSPACE, "NULL work");
  CHECK(adasm_certified_query(&ix, &p, x, work, need - 1, &r) == ADASM_ERR_WORKSPACE, "small work");
  p.k = 0;
  CHECK(adasm_certified_query(&ix, &p, x, work, sizeof work, &r) == ADASM_ERR_SIZE, "k 0");
  p.k = 5;
  CHECK(adasm_certified_query(&ix, &p, x, work, sizeof work, &r) == ADASM_ERR_SIZE, "k > n");
  p.k = 1;
  p.beta = -1.0f;
  CHECK(adasm_certified_query(&ix, &p, x, work, sizeof work, &r) == ADASM_ERR_PARAM, "beta < 0");
  p.beta = u2f(0x7f800000u);
  CHECK(adasm_certified_query(&ix, &p, x, work, sizeof work, &r) == ADASM_ERR_PARAM, "beta inf");
  CHECK(r.log_norm == 7.0 && r.madds == 9, "outputs touched on argument errors");
  p.beta = 1.0f;
  CHECK(adasm_certified_query(&ix, &p, x, work, need, &r) == ADASM_OK && idx[0] == 0,
        "query: top row %lu", (unsigned long)idx[0]);
  adasm_certified_free(&ix);
  adasm_certified_free(&ix); /* twice: no-op */
  adasm_certified_free(NULL);
}

/* Every allocation of the build fails in turn: ADASM_ERR_NOMEM, nothing
   leaked, *ix untouched. */
static void test_certified_alloc(void) {
  static float A[40 * 9];
  adasm_matrix m = adasm_matrix_f32(A, 40, 9, 9);
  adasm_certified_index ix;
  test_ctx c;
  long calls, f;
  size_t i;
  for (i = 0; i < 40 * 9; ++i) A[i] = unif(-1, 1);
  test_ctx_init(&c);
  ta.armed = 1;
  ta.calls = 0;
  ta.fail_at = 0;
  CHECK(adasm_certified_build(&ix, &m, &c) == ADASM_OK, "alloc: build");
  ta.armed = 0;
  calls = ta.calls;
  CHECK(calls >= 1 && c.live == 1 && ix.alloc_ctx == (void *)&c, "alloc: %ld calls, %ld live",
        calls, c.live);
  adasm_certified_free(&ix);
  CHECK(c.live == 0, "alloc: free left %ld blocks", c.live);
  for (f = 1; f <= calls; ++f) {
    int rest;
    for (rest = 0; rest < 2; ++rest) {
      adasm_certified_index before;
      memset(&ix, 0x33, sizeof ix);
      before = ix;
      ta.armed = 1;
      ta.calls = 0;
      ta.fail_at = f;
      ta.fail_rest = rest;
      CHECK(adasm_certified_build(&ix, &m, &c) == ADASM_ERR_NOMEM, "alloc: failure %ld", f);
      ta.armed = 0;
      ta.fail_at = 0;
      ta.fail_rest = 0;
      CHECK(memcmp(&ix, &before, sizeof ix) == 0 && c.live == 0,
            "alloc: failure %ld touched *ix or leaked %ld", f, c.live);
    }
  }
  CHECK(ta.bad == 0, "allocator misuse: %ld", ta.bad);
}

/* ---- SVD-softmax from 16-bit weights ------------------------------------------------ */
/* The model from an f16 / bf16 matrix is the model from its widened float
   rows, bit for bit, and queries on it behave the same; refusals of
   non-finite entries; every allocation failing in turn. */
static void test_svd_matrix(void) {
  static const size_t shp[][3] = {{40, 7, 9}, {300, 33, 33}, {9, 20, 21}};
  size_t c, s, i;
  for (c = 0; c < sizeof shp / sizeof shp[0]; ++c) {
    const size_t n = shp[c][0], d = shp[c][1], ld = shp[c][2];
    uint16_t *H = (uint16_t *)xmalloc(n * ld * sizeof(uint16_t));
    float *W = (float *)xmalloc(n * ld * sizeof(float));
    int bf;
    for (bf = 0; bf < 2; ++bf) {
      for (i = 0; i < n * ld; ++i) H[i] = rand16(bf, 3);
      for (i = 0; i < n * ld; ++i) W[i] = wid(H[i], bf);
      for (s = 0; s < g_nks; ++s) {
        adasm_svd_model m16, m32;
        adasm_matrix mh = bf ? adasm_matrix_bf16(H, n, d, ld) : adasm_matrix_f16(H, n, d, ld);
        adasm_result r16 = adasm_svd_build_matrix(&m16, &mh, g_ks[s].k, NULL);
        adasm_result r32 = adasm_svd_build(&m32, g_ks[s].k, W, n, d, ld, NULL);
        CHECK(r16 == ADASM_OK && r32 == ADASM_OK, "svd %s %s %lux%lu: %d %d", g_ks[s].name,
              bf ? "bf16" : "f16", (unsigned long)n, (unsigned long)d, (int)r16, (int)r32);
        if (r16 == ADASM_OK && r32 == ADASM_OK) {
          CHECK(m16.n == m32.n && m16.d == m32.d && m16.panels == m32.panels &&
                    memcmp(m16.B, m32.B, n * m16.panels * 16 * sizeof(float)) == 0 &&
                    memcmp(m16.vt, m32.vt, d * d * sizeof(float)) == 0 &&
                    memcmp(m16.sigma, m32.sigma, d * sizeof(double)) == 0,
                "svd %s %s %lux%lu: not the widened matrix's model bit for bit",
                g_ks[s].name, bf ? "bf16" : "f16", (unsigned long)n, (unsigned long)d);
        }
        if (r16 == ADASM_OK) adasm_svd_free(&m16);
        if (r32 == ADASM_OK) adasm_svd_free(&m32);
      }
    }
    free(H);
    free(W);
  }
  { /* refusals, *m untouched */
    uint16_t H[12];
    adasm_svd_model m, before;
    adasm_matrix mh = adasm_matrix_f16(H, 3, 4, 4);
    for (i = 0; i < 12; ++i) H[i] = adasm_f32_to_f16((float)i);
    memset(&m, 0x77, sizeof m);
    before = m;
    H[5] = 0x7e00u;
    CHECK(adasm_svd_build_matrix(&m, &mh, NULL, NULL) == ADASM_ERR_NAN, "svd f16 NaN");
    H[5] = 0xfc00u;
    CHECK(adasm_svd_build_matrix(&m, &mh, NULL, NULL) == ADASM_ERR_PARAM, "svd f16 -inf");
    mh = adasm_matrix_bf16(H, 3, 4, 4);
    H[5] = 0x7f80u;
    CHECK(adasm_svd_build_matrix(&m, &mh, NULL, NULL) == ADASM_ERR_PARAM, "svd bf16 inf");
    H[5] = 0xffc1u;
    CHECK(adasm_svd_build_matrix(&m, &mh, NULL, NULL) == ADASM_ERR_NAN, "svd bf16 NaN");
    mh.dtype = (adasm_dtype)3;
    CHECK(adasm_svd_build_matrix(&m, &mh, NULL, NULL) == ADASM_ERR_PARAM, "svd bad dtype");
    mh = adasm_matrix_bf16(NULL, 3, 4, 4);
    CHECK(adasm_svd_build_matrix(&m, &mh, NULL, NULL) == ADASM_ERR_NULL, "svd NULL data");
    CHECK(adasm_svd_build_matrix(&m, NULL, NULL, NULL) == ADASM_ERR_NULL, "svd NULL matrix");
    mh = adasm_matrix_f16(H, 3, 4, 3);
    CHECK(adasm_svd_build_matrix(&m, &mh, NULL, NULL) == ADASM_ERR_SIZE, "svd ld < cols");
    CHECK(memcmp(&m, &before, sizeof m) == 0, "svd: a refused build wrote *m");
  }
  { /* allocation failures */
    uint16_t H[30 * 6];
    adasm_matrix mh = adasm_matrix_bf16(H, 30, 6, 6);
    adasm_svd_model m;
    test_ctx tc;
    long calls, f;
    for (i = 0; i < 30 * 6; ++i) H[i] = rand16(1, 2);
    test_ctx_init(&tc);
    ta.armed = 1;
    ta.calls = 0;
    CHECK(adasm_svd_build_matrix(&m, &mh, NULL, &tc) == ADASM_OK, "svd alloc: build");
    ta.armed = 0;
    calls = ta.calls;
    adasm_svd_free(&m);
    CHECK(calls >= 2 && tc.live == 0, "svd alloc: %ld calls, %ld live", calls, tc.live);
    for (f = 1; f <= calls; ++f) {
      int rest;
      for (rest = 0; rest < 2; ++rest) {
        adasm_svd_model before;
        memset(&m, 0x44, sizeof m);
        before = m;
        ta.armed = 1;
        ta.calls = 0;
        ta.fail_at = f;
        ta.fail_rest = rest;
        CHECK(adasm_svd_build_matrix(&m, &mh, NULL, &tc) == ADASM_ERR_NOMEM,
              "svd alloc: failure %ld", f);
        ta.armed = 0;
        ta.fail_at = 0;
        ta.fail_rest = 0;
        CHECK(memcmp(&m, &before, sizeof m) == 0 && tc.live == 0,
              "svd alloc: failure %ld touched *m or leaked %ld", f, tc.live);
      }
    }
    CHECK(ta.bad == 0, "allocator misuse: %ld", ta.bad);
  }
}

/* ---- main ------------------------------------------------------------------------- */
#define TIMED(call)                                                            \
  do {                                                                         \
    const clock_t t0_ = clock();                                               \
    const int f0_ = g_fails;                                                   \
    call;                                                                      \
    printf("%-28s %6.2f s%s\n", #call, (double)(clock() - t0_) / CLOCKS_PER_SEC, \
           g_fails != f0_ ? "  FAILED" : "");                                  \
  } while (0)

int main(void) {
  const char *q = getenv("ADASM_TEST_QUICK");
  size_t s;
  g_quick = q != NULL && q[0] != '\0' && q[0] != '0';
  adasm_pcg32_seed(&g_rng, 2026, 13);
  collect_kernel_sets();
  printf("kernel sets:");
  for (s = 0; s < g_nks; ++s) printf(" %s", g_ks[s].name);
  printf("%s\n", g_quick ? " (quick)" : "");
  TIMED(test_scalar_conversions());
  TIMED(test_kernel_conversions());
  TIMED(test_convert_api());
  TIMED(test_dot_kernels());
  TIMED(test_exact_query());
  TIMED(test_certified());
  TIMED(test_certified_errors());
  TIMED(test_certified_alloc());
  TIMED(test_svd_matrix());
  printf("%d checks, %d failed\n", g_checks, g_fails);
  return g_fails != 0;
}
