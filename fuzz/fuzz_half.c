/* Fuzzing the half-precision paths: conversions, the exact path on f16 and
   bf16 weights, and the certified float32 top-k. Floats and 16-bit values
   come straight from the input's bytes (NaN, Inf, subnormals, huge
   magnitudes all appear); every ISA the CPU has is run, and on a CPU with
   AVX-512 BF16 both AVX-512 variants of the bf16 dot kernel.

   byte 0 % 3 selects:
   0 conversions: every array kernel (adasm_convert) bit for bit against
     the scalar functions, and those against a reference in double;
   1 exact path on 16-bit weights (byte 1: dtype, 2: rows, 3: cols, 4:
     extra leading dimension, 5: k, 6: beta): where the kernels widen the
     float ones (scalar, NEON), bit for bit the answer on the widened float
     matrix; elsewhere (AVX2, AVX-512, vdpbf16ps) logits within the
     header's bound of a double reference, the special values of inf and
     NaN inputs as the scalar kernel's, the top-k consistent with the
     logits;
   2 certified (same header bytes): the build refuses non-finite A with the
     documented codes; otherwise every query returns what the float32 exact
     path returns with the same kernels: the same code, the same rows in
     the same order, probabilities and log_norm within the reported bound. */
#define ADASOFTMAX_IMPLEMENTATION
#include "../adasoftmax.h"
#include "fuzz_util.h"
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define MAXN 96
#define MAXD 80
#define MAXK 8

static void fail(const char *what, const char *isa, double got, double want) {
  fprintf(stderr, "fuzz_half: %s isa=%s got=%.9g want=%.9g\n", what, isa, got,
          want);
  abort();
}

/* equal bits, or both NaN */
static int same(float a, float b) {
  uint32_t ua, ub;
  memcpy(&ua, &a, 4);
  memcpy(&ub, &b, 4);
  return ua == ub || (a != a && b != b);
}
static uint32_t f2u(float f) {
  uint32_t u;
  memcpy(&u, &f, 4);
  return u;
}

/* ---- kernel sets ------------------------------------------------------------ */
static const adasm_kernels *g_k[8];
static const char *g_name[8];
static int g_nk;
static void kernel_sets(void) {
  int isa;
  if (g_nk) return;
  for (isa = ADASM_ISA_SCALAR; isa < ADASM_ISA_COUNT; ++isa) {
    const adasm_kernels *k;
    if (adasm_kernels_get((adasm_isa)isa, &k) != ADASM_OK) continue;
    g_k[g_nk] = k;
    g_name[g_nk++] = adasm_isa_name((adasm_isa)isa);
#if defined(ADASM__HAVE_AVX512BF16)
    if (k == &adasm__kernels_avx512bf16) {
      g_k[g_nk] = &adasm__kernels_avx512;
      g_name[g_nk++] = "avx512-plain";
    }
#endif
  }
}
static int widens(const adasm_kernels *k) { /* scalar, NEON: see the header */
#if defined(ADASM__HAVE_NEON)
  if (k == &adasm__kernels_neon) return 1;
#endif
  return k == &adasm__kernels_scalar;
}
static int is_dp(const adasm_kernels *k) {
#if defined(ADASM__HAVE_AVX512BF16)
  return k == &adasm__kernels_avx512bf16;
#else
  (void)k;
  return 0;
#endif
}

/* ---- op 0: conversions --------------------------------------------------------- */
/* Round to nearest even in double (independent of the library's integer
   code): the 16-bit value nearest to f, by magnitude search. */
static uint16_t ref_16(float f, int bf) {
  const uint32_t x = f2u(f);
  const uint16_t sign = (uint16_t)((x >> 16) & 0x8000u);
  const uint16_t inf = bf ? 0x7f80u : 0x7c00u;
  double a = fabs((double)f);
  uint32_t lo = 0, hi = inf, mid;
  double vlo, vhi;
  if (f != f) return bf ? (uint16_t)((x >> 16) | 0x40u)
                        : (uint16_t)(sign | 0x7e00u | ((x >> 13) & 0x3ffu));
  /* largest magnitude code with value <= a (codes are ordered) */
  while (hi - lo > 1) {
    mid = (lo + hi) / 2;
    if ((double)(bf ? adasm_bf16_to_f32((uint16_t)mid) : adasm_f16_to_f32((uint16_t)mid)) <= a)
      lo = mid;
    else
      hi = mid;
  }
  vlo = (double)(bf ? adasm_bf16_to_f32((uint16_t)lo) : adasm_f16_to_f32((uint16_t)lo));
  if (vlo == a) return (uint16_t)(sign | lo);
  if (lo == inf - 1u) { /* past the largest finite: overflow at its half ulp */
    const double ulp = bf ? ldexp(1.0, 127 - 7) : ldexp(1.0, 15 - 10);
    return (uint16_t)(sign | (a >= vlo + ulp / 2 ? inf : lo));
  }
  vhi = (double)(bf ? adasm_bf16_to_f32((uint16_t)(lo + 1u)) : adasm_f16_to_f32((uint16_t)(lo + 1u)));
  if (a - vlo < vhi - a) return (uint16_t)(sign | lo);
  if (a - vlo > vhi - a) return (uint16_t)(sign | (lo + 1u));
  return (uint16_t)(sign | ((lo & 1u) ? lo + 1u : lo)); /* tie: even */
}

static void op_convert(fuzz_reader in) {
  static float f[1024], back[1024];
  static uint16_t h[1024], o16[1024], obf[1024];
  const size_t size = fuzz_left(&in);
  size_t n = size / 4 > 1024 ? 1024 : size / 4, m = size / 2 > 1024 ? 1024 : size / 2;
  size_t i;
  int s;
  fuzz_reader r = in; /* the same bytes as floats, then as 16-bit values */
  for (i = 0; i < n; ++i) f[i] = fuzz_f32_bits(&r);
  r = in;
  for (i = 0; i < m; ++i) h[i] = (uint16_t)fuzz_u16(&r);
  for (i = 0; i < n; ++i) {
    const uint16_t a = adasm_f32_to_f16(f[i]), b = adasm_f32_to_bf16(f[i]);
    if (a != ref_16(f[i], 0)) fail("f32_to_f16 vs reference", "scalar", a, ref_16(f[i], 0));
    if (b != ref_16(f[i], 1)) fail("f32_to_bf16 vs reference", "scalar", b, ref_16(f[i], 1));
  }
  for (s = 0; s < g_nk; ++s) {
    if (adasm_convert(g_k[s], f, ADASM_F32, n, o16, ADASM_F16) != ADASM_OK ||
        adasm_convert(g_k[s], f, ADASM_F32, n, obf, ADASM_BF16) != ADASM_OK)
      fail("convert result", g_name[s], 0, 0);
    for (i = 0; i < n; ++i) {
      if (o16[i] != adasm_f32_to_f16(f[i])) fail("f32->f16", g_name[s], o16[i], f2u(f[i]));
      if (obf[i] != adasm_f32_to_bf16(f[i])) fail("f32->bf16", g_name[s], obf[i], f2u(f[i]));
    }
    (void)adasm_convert(g_k[s], h, ADASM_F16, m, back, ADASM_F32);
    for (i = 0; i < m; ++i)
      if (f2u(back[i]) != f2u(adasm_f16_to_f32(h[i]))) fail("f16->f32", g_name[s], back[i], h[i]);
    (void)adasm_convert(g_k[s], h, ADASM_BF16, m, back, ADASM_F32);
    for (i = 0; i < m; ++i)
      if (f2u(back[i]) != f2u(adasm_bf16_to_f32(h[i]))) fail("bf16->f32", g_name[s], back[i], h[i]);
    (void)adasm_convert(g_k[s], h, ADASM_F16, m, o16, ADASM_BF16);
    for (i = 0; i < m; ++i)
      if (o16[i] != adasm_f32_to_bf16(adasm_f16_to_f32(h[i]))) fail("f16->bf16", g_name[s], o16[i], h[i]);
  }
}

/* ---- the shared header of ops 1 and 2 ------------------------------------------ */
typedef struct shape {
  size_t n, d, ld, k;
  float beta;
  int bf;
} shape;

/* The header after the op byte; 0 when the input is shorter. */
static int read_shape(fuzz_reader *r, shape *sh) {
  static const float betas[8] = {1.0f, 0.5f, 2.0f, 1e-3f, 30.0f, 1e-30f, 7.25f, 1e4f};
  if (fuzz_left(r) < 7) return 0;
  fuzz_skip(r, 1); /* the op */
  sh->bf = fuzz_u8(r) & 1;
  sh->n = (size_t)fuzz_u8(r) % MAXN + 1;
  sh->d = (size_t)fuzz_u8(r) % MAXD + 1;
  sh->ld = sh->d + (size_t)(fuzz_u8(r) % 4);
  sh->k = (size_t)fuzz_u8(r) % MAXK + 1;
  if (sh->k > sh->n) sh->k = sh->n;
  sh->beta = betas[fuzz_u8(r) % 8];
  return 1;
}

/* Bytes to values, cycling through r's bytes from byte `from` so every
   entry is set. */
static void fill_bytes(void *dst, size_t bytes, fuzz_reader r, size_t from) {
  size_t i, size;
  unsigned char *o = (unsigned char *)dst;
  fuzz_skip(&r, from);
  size = fuzz_left(&r);
  for (i = 0; i < bytes; ++i)
    o[i] = size ? (unsigned char)(fuzz_u8_at(&r, i % size) ^ (unsigned char)(i / size)) : 0;
}

static double gamma_d(size_t d) {
  const double mu = (double)ADASM__DOT_DEPTH(d) * ldexp(1.0, -24);
  return mu / (1.0 - mu);
}

/* ---- op 1: exact path on 16-bit weights ---------------------------------------- */
static void op_exact(fuzz_reader in) {
  static uint16_t H[MAXN * (MAXD + 3)];
  static float W[MAXN * (MAXD + 3)], x[MAXD], l16[MAXN], l32[MAXN], lp[MAXN];
  size_t i16[MAXK], i32[MAXK], i, j;
  float p16[MAXK], p32[MAXK];
  shape sh;
  int s;
  adasm_matrix mh, mw;
  if (!read_shape(&in, &sh)) return;
  fill_bytes(H, sh.n * sh.ld * 2, in, 0);
  fill_bytes(x, sh.d * 4, in, fuzz_left(&in) > 3 ? fuzz_left(&in) / 3 : 0);
  for (i = 0; i < sh.n * sh.ld; ++i) W[i] = sh.bf ? adasm_bf16_to_f32(H[i]) : adasm_f16_to_f32(H[i]);
  mh = sh.bf ? adasm_matrix_bf16(H, sh.n, sh.d, sh.ld) : adasm_matrix_f16(H, sh.n, sh.d, sh.ld);
  mw = adasm_matrix_f32(W, sh.n, sh.d, sh.ld);
  for (s = 0; s < g_nk; ++s) {
    adasm_exact_params pr = adasm_exact_params_default();
    adasm_exact_result a, b;
    adasm_result ra, rb;
    pr.k = sh.k;
    pr.beta = sh.beta;
    pr.kern = g_k[s];
    memset(&a, 0, sizeof a);
    memset(&b, 0, sizeof b);
    a.idx = i16; a.prob = p16; a.logits = l16;
    b.idx = i32; b.prob = p32; b.logits = l32;
    ra = adasm_exact_query(&mh, &pr, x, NULL, 0, &a);
    rb = adasm_exact_query(&mw, &pr, x, NULL, 0, &b);
    if (widens(g_k[s])) { /* the same values (NaN payloads may differ:
                             operand order in FMA) */
      if (ra != rb) fail("result vs widened", g_name[s], ra, rb);
      for (i = 0; i < sh.n; ++i)
        if (!same(l16[i], l32[i])) fail("logit vs widened", g_name[s], l16[i], l32[i]);
      for (i = 0; i < sh.k; ++i)
        if (i16[i] != i32[i] || !same(p16[i], p32[i])) fail("top-k vs widened", g_name[s], p16[i], p32[i]);
      if (!(a.log_norm == b.log_norm || (a.log_norm != a.log_norm && b.log_norm != b.log_norm)))
        fail("log_norm vs widened", g_name[s], a.log_norm, b.log_norm);
      continue;
    }
    /* other orders: the logits against the scalar kernel's (special
       values) and a double reference (the bound) */
    (sh.bf ? adasm__kernels_scalar.dot_rows_bf16 : adasm__kernels_scalar.dot_rows_f16)(
        H, sh.n, sh.d, sh.ld, x, sh.beta, lp);
    for (i = 0; i < sh.n; ++i) {
      double ref = 0, mag = 0, l1 = 0, magf = 0;
      int special = 0;
      for (j = 0; j < sh.d; ++j) {
        const double t = (double)W[i * sh.ld + j] * (double)x[j];
        special |= !adasm__isfinitef(W[i * sh.ld + j]) || !adasm__isfinitef(x[j]);
        if (t == t && fabs(t) < HUGE_VAL) magf += fabs(t);
      }
      if (special) { /* inf or NaN inputs: NaN exactly where the scalar
                        kernel has NaN (sums of infinities of both signs
                        are NaN whatever the order), else the same inf;
                        unless the finite products could overflow a float
                        partial sum on the way */
        if (magf * (double)sh.beta < 1e37 && magf < 1e37 && !same(l16[i], lp[i]))
          fail("special value vs scalar", g_name[s], l16[i], lp[i]);
        continue;
      }
      /* finite inputs: partial sums past FLT_MAX (the scalar kernel sums in
         double) give inf or NaN, or the finite value; nothing to check */
      for (j = 0; j < sh.d; ++j) {
        const double t = (double)W[i * sh.ld + j] * (double)x[j];
        ref += t;
        mag += fabs(t);
        l1 += fabs((double)W[i * sh.ld + j]) + fabs((double)x[j]);
      }
      if (mag * (double)sh.beta > 1e37 || mag > 1e37) continue; /* partial sums may overflow */
      if (fabs((double)l16[i] - (double)sh.beta * ref) >
          gamma_d(sh.d) * (double)sh.beta * mag +
              (is_dp(g_k[s]) ? (double)sh.beta * ldexp((double)sh.d + l1, -123) : 0.0) +
              ldexp(1.0, -126))
        fail("logit bound", g_name[s], l16[i], (double)sh.beta * ref);
    }
    if (ra == ADASM_OK) { /* the answer is the exact path's on these logits */
      size_t t;
      for (t = 0; t < sh.k; ++t) {
        size_t rank = 0;
        for (i = 0; i < sh.n; ++i)
          rank += l16[i] > l16[i16[t]] || (l16[i] == l16[i16[t]] && i < i16[t]);
        if (rank != t) fail("top-k rank", g_name[s], (double)rank, (double)t);
      }
    }
  }
}

/* ---- op 2: certified ------------------------------------------------------------- */
static void op_certified(fuzz_reader in) {
  static float A[MAXN * (MAXD + 3)], x[MAXD];
  static unsigned char work[1 << 16];
  size_t ic[MAXK], ie[MAXK], i, need = 0;
  float pc[MAXK], pe[MAXK];
  shape sh;
  adasm_matrix m;
  adasm_certified_index ix;
  adasm_result rb;
  int s, nan = 0, inf = 0, mode;
  if (!read_shape(&in, &sh)) return;
  mode = sh.bf; /* 1: A from raw bytes; 0: tame values (+ raw x) */
  fill_bytes(A, sh.n * sh.ld * 4, in, 0);
  fill_bytes(x, sh.d * 4, in, fuzz_left(&in) > 3 ? fuzz_left(&in) / 3 : 0);
  if (!mode) /* bytes -> values in [-2, 2) on a coarse grid: many exact ties */
    for (i = 0; i < sh.n * sh.ld; ++i) A[i] = (float)((int)(f2u(A[i]) % 64u) - 32) / 16.0f;
  for (i = 0; i < sh.n; ++i) {
    size_t j;
    for (j = 0; j < sh.d; ++j) {
      const float v = A[i * sh.ld + j];
      nan |= v != v;
      inf |= v == v && !adasm__isfinitef(v);
    }
  }
  m = adasm_matrix_f32(A, sh.n, sh.d, sh.ld);
  rb = adasm_certified_build(&ix, &m, NULL);
  if (rb != (nan ? ADASM_ERR_NAN : inf ? ADASM_ERR_PARAM : ADASM_OK))
    fail("build result", "-", rb, nan ? ADASM_ERR_NAN : inf ? ADASM_ERR_PARAM : ADASM_OK);
  if (rb != ADASM_OK) return;
  for (s = 0; s < g_nk; ++s) {
    adasm_certified_params cp = adasm_certified_params_default();
    adasm_certified_result cr;
    adasm_exact_params ep = adasm_exact_params_default();
    adasm_exact_result er;
    adasm_result rc, re;
    size_t t;
    cp.k = ep.k = sh.k;
    cp.beta = ep.beta = sh.beta;
    cp.kern = ep.kern = g_k[s];
    memset(&cr, 0, sizeof cr);
    memset(&er, 0, sizeof er);
    cr.idx = ic; cr.prob = pc;
    er.idx = ie; er.prob = pe;
    if (adasm_certified_workspace_size(&ix, &cp, &need) != ADASM_OK || need > sizeof work - 1)
      fail("workspace", g_name[s], (double)need, 0);
    rc = adasm_certified_query(&ix, &cp, x, work + 1, need, &cr);
    re = adasm_exact_query(&m, &ep, x, NULL, 0, &er);
    if (rc != re) fail("result vs exact path", g_name[s], rc, re);
    if (cr.rows_exact < (rc == ADASM_OK ? sh.k : 0) || cr.rows_exact > sh.n)
      fail("rows_exact", g_name[s], (double)cr.rows_exact, (double)sh.k);
    if (rc != ADASM_OK) continue;
    if (memcmp(ic, ie, sh.k * sizeof(size_t)))
      fail("rows differ from the exact path's", g_name[s], (double)ic[0], (double)ie[0]);
    if (!(cr.log_norm == er.log_norm ||
          fabs(cr.log_norm - er.log_norm) <= cr.log_norm_err + 2e-6 * fmax(1.0, fabs(er.log_norm))))
      fail("log_norm", g_name[s], cr.log_norm, er.log_norm);
    for (t = 0; t < sh.k; ++t)
      if (!(cr.log_norm_err > 700.0 || pc[t] == pe[t] ||
            fabs((double)pc[t] - (double)pe[t]) <=
                (expm1(cr.log_norm_err) + 4e-6) * (double)pe[t] + 1e-37))
        fail("prob", g_name[s], pc[t], pe[t]);
  }
  adasm_certified_free(&ix);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);
int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
  fuzz_reader r = fuzz_reader_init(data, size), body = r;
  if (size < 2) return 0;
  kernel_sets();
  fuzz_skip(&body, 1);
  switch (fuzz_u8_at(&r, 0) % 3) {
  case 0: op_convert(body); break;
  case 1: op_exact(r); break;
  default: op_certified(r); break;
  }
  return 0;
}
