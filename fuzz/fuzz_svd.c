/* Fuzzing of SVD-softmax: adasm_svd_build (and now and then
   adasm_svd_build_matrix on the f16 / bf16 rounding of A, which must give
   the model of the widened floats bit for bit), adasm_svd_workspace_size,
   adasm_svd_query and adasm_svd_free on small matrices decoded from the
   fuzzer's bytes, including sizes and parameters out of range and floats
   straight from raw bits (NaN, Inf, subnormals, huge magnitudes).

   Input layout (everything past the end of the input reads as 0; matrix
   entries past the end come from a PCG32 seeded by the input's seed):
     [0]    n = 1 + (bits 0-5) % 48; bits 6-7: lda - d (0..3; the padding
            is NaN and must never be read)
     [1]    d = 1 + (bits 0-5) % 40; bits 6-7: entry coding
              0 raw float bits (4 bytes each) for A and x
              1 int8/16 (1 byte each) for A and x
              2 int8/16 * 2^([7] - 128) for A, int8/16 * 2^([8] - 128) for x
              3 A = U Vr / 256 of rank 1 + ([7] & 3) from int8 bytes (U by
                rows, then Vr), x int8/16: a spectrum the preview can use
     [2]    window W: 0 -> the default (params.window 0: min(d, 16) here),
            255 -> d+1 (invalid), 254 -> d, else 1 + byte % d
     [3]    top N: 0 -> the default (params.top 0: n here, as n < 512),
            255 -> n+1 (invalid), 254 -> n, else 1 + byte % n
     [4]    k: 0 -> 0, 255 -> N+1, 253 -> n+1 (invalid), 254 -> N,
            else 1 + byte % N (% n when N is invalid)
     [5]    flags: bits 0-1 ISA of the build, bits 2-3 ISA of the query
            (auto, scalar, AVX2, AVX-512; unsupported -> auto), bits 4-5
            workspace (0, 1 exact size; 2 too small: half, or 65 bytes
            short; 3 NULL), bit 6 misaligned workspace, bit 7 a default
            window or top spelled out (its value instead of 0) in the
            first query
     [6]    beta (2^((b-128)/16), with 0, -1, NaN, inf, subnormal, FLT_MAX)
     [7]    aux (coding 2: A's exponent; coding 3: rank)
     [8]    aux for x (coding 2: x's exponent)
     [9..12] seed (u32 LE)
     then A (n x d row-major; coding 3: U then Vr), then x (d).

   Checks: every return code is one the header documents for that call
   and, where the inputs decide it, the expected one; failed builds leave
   the model alone, and adasm_svd_free on it (zeroed) or twice is a no-op;
   argument errors (NULL params, x, out, out->idx or out->prob among them)
   leave the outputs alone, data errors fill them as documented (prob and
   log_norm NaN, madds 0, idx 0 for x with NaN/inf).
   A built model: the documented shape, zero padding columns, sigma
   descending and matching the column norms of B, V^T orthonormal and
   B V^T = A to the stated accuracy, the same bits when rebuilt. A
   successful query: indices < n and distinct, probabilities in [0, 1],
   best first, summing to at most 1, log_norm finite (or +inf when logits
   overflowed: then the probabilities are 0 or 1/count), madds
   d^2 + n W + N (d - W), the same bits again in a workspace filled with
   0xff and with the window and top spelled out (a default gives the
   answer of its value). Where no float intermediate can overflow: the
   result is ADASM_OK, every returned row's logit log(prob) + log_norm is
   its refined logit B_i . beta V^T x up to float rounding (a double
   reference from the model), no returned row is one that cannot be among
   the N best previews, no refined row left out beats the k-th, log_norm
   lies between the normalizers of the lowest and highest logits the mixed
   set allows, and when W == d or N == n the answer equals
   adasm_gemv_softmax_topk's within the header's accuracy of both paths
   (skipped when a tolerance passes 50, as in fuzz_ada).

   Run (from the repository root; scripts/fuzz.sh does the same for every
   harness):
     clang -O1 -g -fsanitize=fuzzer,address,undefined \
       -fno-sanitize-recover=all -I. fuzz/fuzz_svd.c -o /tmp/fs -lm
     cp -r fuzz/corpus/fuzz_svd /tmp/work && /tmp/fs -max_total_time=120 /tmp/work
   then fold new coverage back with -merge=1 into a copy of the seed-*
   files. Corpus (fuzz/corpus/fuzz_svd/): seed-* are the inputs this file
   writes when built with -DFUZZ_SVD_SEEDS
     cc -DFUZZ_SVD_SEEDS -I. fuzz/fuzz_svd.c -o /tmp/seeds -lm &&
       /tmp/seeds fuzz/corpus/fuzz_svd
   regress-* are past findings, the rest is the fuzzer's merged corpus.
   Finding: regress-no-finite-max* (every logit overflows to -inf, as with
   beta = FLT_MAX and A x < 0) returned ADASM_ERR_NO_FINITE_MAX, which the
   declaration of adasm_svd_query did not list; it now does. */
#define ADASOFTMAX_IMPLEMENTATION
#include "../adasoftmax.h"
#include "fuzz_util.h"
#include <float.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define MAXN 48
#define MAXD 40
#define HDR 13

static size_t g_n, g_d, g_w, g_top, g_k; /* for the failure message */

static void fail(const char *what, double got, double want) {
  fprintf(stderr,
          "fuzz_svd: %s n=%lu d=%lu W=%lu N=%lu k=%lu got=%.17g want=%.17g\n",
          what, (unsigned long)g_n, (unsigned long)g_d, (unsigned long)g_w,
          (unsigned long)g_top, (unsigned long)g_k, got, want);
  abort();
}

/* ---- decoding ------------------------------------------------------------ */

static float beta_param(unsigned b) {
  switch (b) {
  case 0: return 0.0f;
  case 1: return -1.0f;
  case 2: return (float)nan("");
  case 3: return (float)HUGE_VAL;
  case 4: return FLT_MIN / 4.0f; /* subnormal */
  case 255: return FLT_MAX;
  default: return (float)pow(2.0, ((double)b - 128.0) / 16.0);
  }
}

/* A float from the input (raw bits or int8/16), else from the generator. */
static float get_entry(fuzz_reader *r, int raw, adasm_pcg32 *g) {
  if (fuzz_left(r) >= (raw ? 4u : 1u)) {
    if (!raw) return (float)(signed char)fuzz_u8(r) / 16.0f;
    {
      uint32_t u = fuzz_u32(r);
      float f;
      memcpy(&f, &u, 4);
      return f;
    }
  }
  r->left = 0;
  return ((float)adasm_pcg32_bounded(g, 256) - 128.0f) / 16.0f;
}

static const adasm_kernels *isa_kernels(unsigned code) {
  static const adasm_isa isas[4] = {ADASM_ISA_AUTO, ADASM_ISA_SCALAR,
                                    ADASM_ISA_AVX2, ADASM_ISA_AVX512};
  const adasm_kernels *k = NULL;
  if (code == 0 || adasm_kernels_get(isas[code & 3u], &k) != ADASM_OK)
    return NULL; /* not on this CPU/build: best instead */
  return k;
}

/* ---- checks -------------------------------------------------------------- */
static int is_nan_f(float f) { return f != f; }
static int finite_d(double v) { return v == v && v - v == 0.0; }
static int same_bits_f(float a, float b) { return memcmp(&a, &b, sizeof a) == 0; }
static int same_bits_d(double a, double b) { return memcmp(&a, &b, sizeof a) == 0; }

static float Bat(const adasm_svd_model *m, size_t i, size_t j) {
  return m->B[((j / 16) * m->n + i) * 16 + j % 16];
}

/* B (without padding) and V^T in double, row-major; filled by check_model */
static double Bd[MAXN * MAXD], Vd[MAXD * MAXD];

/* The documented codes of each call; anything else is a bug. */
static int documented_build(adasm_result r) {
  return r == ADASM_OK || r == ADASM_ERR_NULL || r == ADASM_ERR_SIZE ||
         r == ADASM_ERR_OVERFLOW || r == ADASM_ERR_NAN || r == ADASM_ERR_PARAM ||
         r == ADASM_ERR_NOMEM;
}
static int documented_query(adasm_result r) {
  return r == ADASM_OK || r == ADASM_ERR_NULL || r == ADASM_ERR_SIZE ||
         r == ADASM_ERR_PARAM || r == ADASM_ERR_WORKSPACE || r == ADASM_ERR_NAN ||
         r == ADASM_ERR_NO_FINITE_MAX;
}

/* The model against A, in double: shape, padding, sigma, V, B V^T = A. */
static void check_model(const adasm_svd_model *m, const float *A, size_t n,
                        size_t d, size_t lda, const void *ctx) {
  const size_t dp = (d + 15) / 16;
  double fa2 = 0.0, r2 = 0.0, s2 = 0.0, tolr, tols;
  size_t i, j, k;
  if (m->n != n || m->d != d || m->panels != dp || !m->B || !m->vt ||
      !m->sigma || !m->block || m->alloc_ctx != ctx)
    fail("model: fields", (double)m->panels, (double)dp);
  for (i = 0; i < n; ++i)
    for (j = d; j < dp * 16; ++j)
      if (Bat(m, i, j) != 0.0f) fail("model: B padding not 0", Bat(m, i, j), 0);
  for (i = 0; i < n * dp * 16; ++i)
    if (!(m->B[i] - m->B[i] == 0.0f)) fail("model: B not finite", m->B[i], 0);
  for (i = 0; i < n; ++i)
    for (j = 0; j < d; ++j) Bd[i * d + j] = (double)Bat(m, i, j);
  for (i = 0; i < d * d; ++i) Vd[i] = (double)m->vt[i];
  for (j = 0; j < d; ++j) {
    if (!(finite_d(m->sigma[j]) && m->sigma[j] >= 0.0))
      fail("model: sigma", m->sigma[j], (double)j);
    if (j > 0 && m->sigma[j] > m->sigma[j - 1])
      fail("model: sigma not descending", m->sigma[j], m->sigma[j - 1]);
    s2 += m->sigma[j] * m->sigma[j];
  }
  for (i = 0; i < n; ++i)
    for (j = 0; j < d; ++j) fa2 += (double)A[i * lda + j] * (double)A[i * lda + j];
  /* V^T V = I "to float rounding (~1e-6)" */
  for (i = 0; i < d; ++i)
    for (j = i; j < d; ++j) {
      double s = 0.0;
      for (k = 0; k < d; ++k) s += Vd[i * d + k] * Vd[j * d + k];
      if (fabs(s - (i == j ? 1.0 : 0.0)) > 4e-6) fail("model: V not orthonormal", s, i == j);
    }
  /* "B V^T reproduces A to ~1e-6 ||A||": Frobenius on both sides (a factor
     sqrt(d) each way), 4x margin on the "~", plus the absolute error of
     float sums that underflow (2^-149 per operation) */
  for (i = 0; i < n; ++i) {
    double row[MAXD];
    for (k = 0; k < d; ++k) row[k] = -(double)A[i * lda + k];
    for (j = 0; j < d; ++j) {
      const double b = Bd[i * d + j];
      const double *v = Vd + j * d;
      for (k = 0; k < d; ++k) row[k] += b * v[k];
    }
    for (k = 0; k < d; ++k) r2 += row[k] * row[k];
  }
  tolr = 4e-6 * sqrt((double)d) * sqrt(fa2) + ldexp(1.0, -140) * (double)d * sqrt((double)(n * d));
  if (sqrt(r2) > tolr) fail("model: |B V^T - A|_F", sqrt(r2), tolr);
  /* sum sigma^2 = trace(A^T A) = |A|_F^2 (eigenvalues to ~1e-15 |G|) */
  if (fabs(s2 - fa2) > 1e-12 * (double)d * fa2)
    fail("model: sum sigma^2 vs |A|_F^2", s2, fa2);
  /* sigma_j = |B e_j| = |A v_j|: in the same order as the columns of B */
  tols = (4e-6 * sqrt((double)d) + sqrt(1e-13 * (double)d)) * sqrt(fa2) +
         ldexp(1.0, -140) * (double)d * sqrt((double)n);
  for (j = 0; j < d; ++j) {
    double c = 0.0;
    for (i = 0; i < n; ++i) c += Bd[i * d + j] * Bd[i * d + j];
    if (fabs(sqrt(c) - m->sigma[j]) > tols) fail("model: |B e_j| vs sigma_j", sqrt(c), m->sigma[j]);
  }
}

/* Per-row references (double) of one query: see LLVMFuzzerTestOneInput. */
static double xt[MAXD], sabs[MAXD];
static double zsvd[MAXN], zprev[MAXN], ftol[MAXN], ptol[MAXN], dz[MAXN], srow[MAXN];

/* log(sum exp(v)) in double, max taken out. */
static double lse_d(const double *v, size_t n) {
  double mx = -HUGE_VAL, s = 0.0;
  size_t i;
  for (i = 0; i < n; ++i)
    if (v[i] > mx) mx = v[i];
  for (i = 0; i < n; ++i) s += exp(v[i] - mx);
  return mx + log(s);
}

/* The method itself against the model's double reference (any W, N): the
   refined logits of the returned rows, the selection, the normalizer. */
static void check_method(size_t n, size_t N, size_t k, const size_t *idx,
                         const float *prob, double log_norm) {
  static int sure_in[MAXN], sure_out[MAXN];
  static double lo[MAXN], hi[MAXN];
  size_t i, j, t;
  double llo, lhi, slack;
  for (i = 0; i < n; ++i) {
    size_t above_maybe = 0, above_sure = 0;
    for (j = 0; j < n; ++j) {
      if (j == i) continue;
      above_maybe += zprev[j] + ptol[j] >= zprev[i] - ptol[i];
      above_sure += zprev[j] - ptol[j] > zprev[i] + ptol[i];
    }
    sure_in[i] = above_maybe + 1 <= N;
    sure_out[i] = above_sure >= N;
    lo[i] = hi[i] = 0.0;
    if (!sure_out[i]) { /* may be refined */
      lo[i] = zsvd[i] - ftol[i];
      hi[i] = zsvd[i] + ftol[i];
    }
    if (!sure_in[i]) { /* may stay a preview */
      const double a = zprev[i] - ptol[i], b = zprev[i] + ptol[i];
      lo[i] = sure_out[i] ? a : fmin(lo[i], a);
      hi[i] = sure_out[i] ? b : fmax(hi[i], b);
    }
  }
  for (t = 0; t < k; ++t) {
    const size_t r = idx[t];
    if (sure_out[r]) fail("returned a row below the N-th preview", (double)r, zprev[r]);
    if ((double)prob[t] >= 1e-30) {
      const double got = log((double)prob[t]) + log_norm;
      /* + rounding of prob to float, its clamp to 1, exp */
      if (fabs(got - zsvd[r]) > ftol[r] + 1e-6 + ldexp(fabs(log_norm), -50))
        fail("refined logit (log p + log_norm) vs reference", got, zsvd[r]);
    }
  }
  /* a refined row left out must not surely beat the k-th */
  for (i = 0; i < n; ++i) {
    int kept = 0;
    for (t = 0; t < k; ++t) kept |= idx[t] == i;
    if (!kept && sure_in[i] &&
        zsvd[i] - ftol[i] > zsvd[idx[k - 1]] + ftol[idx[k - 1]])
      fail("top-k missed a refined row", zsvd[i], zsvd[idx[k - 1]]);
  }
  llo = lse_d(lo, n);
  lhi = lse_d(hi, n);
  slack = 1e-6 * fmax(1.0, fmax(fabs(llo), fabs(lhi)));
  if (log_norm < llo - slack || log_norm > lhi + slack)
    fail("log_norm outside the mixed normalizer's range", log_norm, log_norm < llo ? llo : lhi);
}

/* W == d or N == n: the answer must be the exact path's. Logit i errs by
   ftol (the SVD path vs its model), dz (the model vs A, computed), and the
   exact path's 2^-22 sqrt(d) beta sum_j |A_ij x_j| (plus underflow); log p
   errs by its row's error plus the normalizer's (the largest), plus the
   float rounding of exp. */
static void compare_exact(const adasm_kernels *kq, const float *A, size_t n,
                          size_t d, size_t lda, const float *x, float beta,
                          size_t k, const size_t *idx, const float *prob,
                          double log_norm) {
  static size_t eidx[MAXN];
  static float eprob[MAXN];
  static double pe[MAXN], tol[MAXN];
  double eln, tmax = 0.0;
  size_t i, t;
  adasm_result r = adasm_gemv_softmax_topk(kq, A, n, d, lda, x, beta, n, eidx,
                                           eprob, &eln, NULL);
  if (r != ADASM_OK || !finite_d(eln)) return; /* float logits overflowed */
  for (i = 0; i < n; ++i) {
    /* the exact path forms A x in float before beta scales it */
    if (!(srow[i] < (double)FLT_MAX / 2.0)) return;
    tol[i] = ftol[i] + dz[i] + ldexp(1.0, -22) * sqrt((double)d) * (double)beta * srow[i] +
             ldexp(1.0, -146) * (double)(d + 2) * (1.0 + (double)beta);
    if (tol[i] > tmax) tmax = tol[i];
  }
  if (!finite_d(tmax) || tmax > 50.0) return; /* bound says nothing */
  for (t = 0; t < n; ++t) pe[eidx[t]] = (double)eprob[t];
  if (fabs(log_norm - eln) > tmax + 1e-6 * fmax(1.0, fabs(eln)))
    fail("log_norm vs exact", log_norm, eln);
  for (t = 0; t < k; ++t) {
    const double pa = (double)prob[t], p = pe[idx[t]], q = (double)eprob[t];
    const double f = exp(tol[idx[t]] + tmax + 2e-6), f2 = exp(2.0 * tmax + 2e-6);
    if (pa > p * f + 1e-30 || p > pa * f + 1e-30)
      fail("probability vs exact (same row)", pa, p);
    if (pa > q * f2 + 1e-30 || q > pa * f2 + 1e-30) /* t-th best vs t-th best */
      fail("probability vs exact (same rank)", pa, q);
  }
}

#define SENT_IDX ((size_t)0x5a5a5a5au)
#define SENT_P 7.0f
#define SENT_LN 7.0
#define SENT_S ((uint64_t)7u)

static void fill_sentinels(adasm_svd_result *o, size_t k) {
  size_t t;
  for (t = 0; t < k; ++t) {
    o->idx[t] = SENT_IDX;
    o->prob[t] = SENT_P;
  }
  o->log_norm = SENT_LN;
  o->madds = SENT_S;
}
static int untouched(const adasm_svd_result *o, size_t k) {
  size_t t;
  for (t = 0; t < k; ++t)
    if (o->idx[t] != SENT_IDX || !same_bits_f(o->prob[t], SENT_P)) return 0;
  return same_bits_d(o->log_norm, SENT_LN) && o->madds == SENT_S;
}
/* data errors: prob and log_norm NaN, madds 0; idx 0 if idx0 */
static int nan_filled(const adasm_svd_result *o, size_t k, int idx0) {
  size_t t;
  for (t = 0; t < k; ++t)
    if (!is_nan_f(o->prob[t]) || (idx0 && o->idx[t] != 0)) return 0;
  return o->log_norm != o->log_norm && o->madds == 0;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);
int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
  static float A[MAXN * (MAXD + 3)], U[MAXN * 4], Vr[4 * MAXD];
  static int ctx_tag;
  fuzz_reader rd;
  adasm_pcg32 g;
  adasm_svd_model m, before, zero;
  const adasm_kernels *kb, *kq;
  size_t n, d, lda, W, N, k, kk, i, j, t, bytes = 0, want_bytes, off, extent;
  unsigned b0, b1, bw, bn, bk, flags, aux, xaux, mode, wsmode;
  uint32_t seed;
  float beta, *Acopy, *x, *prob, *prob2;
  size_t *idx, *idx2;
  adasm_svd_params prm, pdef, p2;
  adasm_svd_result out, out2, onull;
  int a_nan = 0, a_inf = 0, x_nan = 0, x_inf = 0, e_size, e_beta, e_ws, clean;
  unsigned char *work;
  adasm_result r, r2;

  rd = fuzz_reader_init(data, size);
  b0 = fuzz_u8(&rd);
  b1 = fuzz_u8(&rd);
  bw = fuzz_u8(&rd);
  bn = fuzz_u8(&rd);
  bk = fuzz_u8(&rd);
  flags = fuzz_u8(&rd);
  beta = beta_param(fuzz_u8(&rd));
  aux = fuzz_u8(&rd);
  xaux = fuzz_u8(&rd);
  seed = fuzz_u32(&rd);
  n = 1 + (b0 & 63u) % MAXN;
  d = 1 + (b1 & 63u) % MAXD;
  lda = d + (b0 >> 6);
  mode = b1 >> 6;
  /* byte 0: the defaults, max(16, d/8) <= d and max(k, 512) <= n */
  W = bw == 0 ? (d < 16 ? d : 16) : bw == 255 ? d + 1 : bw == 254 ? d : 1 + bw % d;
  N = bn == 0 ? n : bn == 255 ? n + 1 : bn == 254 ? n : 1 + bn % n;
  k = bk == 0     ? 0
      : bk == 255 ? N + 1
      : bk == 253 ? n + 1
      : bk == 254 ? N
                  : 1 + bk % (N >= 1 && N <= n ? N : n);
  g_n = n; g_d = d; g_w = W; g_top = N; g_k = k;
  kb = isa_kernels(flags & 3u);
  kq = isa_kernels((flags >> 2) & 3u);
  wsmode = (flags >> 4) & 3u;
  prm = adasm_svd_params_default();
  prm.k = k;
  prm.window = bw == 0 && !(flags & 128u) ? 0 : W;
  prm.top = bn == 0 && !(flags & 128u) ? 0 : N;
  prm.beta = beta;
  prm.kern = kq;
  pdef = adasm_svd_params_default();

  /* ---- decode A (padding NaN) and x ---- */
  adasm_pcg32_seed(&g, seed, 99u);
  if (mode == 3) {
    const size_t R = 1 + (aux & 3u);
    for (i = 0; i < n * R; ++i) U[i] = get_entry(&rd, 0, &g);
    for (i = 0; i < R * d; ++i) Vr[i] = get_entry(&rd, 0, &g);
    for (i = 0; i < n; ++i)
      for (j = 0; j < d; ++j) {
        float s = 0.0f;
        for (t = 0; t < R; ++t) s += U[i * R + t] * Vr[t * d + j];
        A[i * lda + j] = s;
      }
  } else {
    for (i = 0; i < n; ++i)
      for (j = 0; j < d; ++j) {
        float v = get_entry(&rd, mode == 0, &g);
        if (mode == 2) v = ldexpf(v, (int)aux - 128);
        A[i * lda + j] = v;
      }
  }
  for (i = 0; i < n; ++i)
    for (j = 0; j < lda; ++j) {
      if (j >= d) {
        A[i * lda + j] = (float)nan(""); /* the library must never read it */
        continue;
      }
      a_nan |= is_nan_f(A[i * lda + j]);
      a_inf |= !is_nan_f(A[i * lda + j]) && A[i * lda + j] - A[i * lda + j] != 0.0f;
    }
  x = (float *)malloc(d * sizeof(float)); /* exact sizes: ASan sees overruns */
  extent = (n - 1) * lda + d;
  Acopy = (float *)malloc(extent * sizeof(float));
  if (!x || !Acopy) {
    free(x);
    free(Acopy);
    return 0;
  }
  memcpy(Acopy, A, extent * sizeof(float));
  for (j = 0; j < d; ++j) {
    float v = get_entry(&rd, mode == 0, &g);
    if (mode == 2) v = ldexpf(v, (int)xaux - 128);
    x[j] = v;
    x_nan |= is_nan_f(v);
    x_inf |= !is_nan_f(v) && v - v != 0.0f;
  }

  /* ---- build ---- */
  memset(&zero, 0, sizeof zero);
  memset(&m, 0x5a, sizeof m);
  memcpy(&before, &m, sizeof m);
  r = adasm_svd_build(&m, kb, Acopy, n, d, lda, &ctx_tag);
  if (!documented_build(r)) fail("build: undocumented code", r, 0);
  if (a_nan && !a_inf && r != ADASM_ERR_NAN) fail("build: NaN in A", r, ADASM_ERR_NAN);
  if (a_inf && !a_nan && r != ADASM_ERR_PARAM) fail("build: inf in A", r, ADASM_ERR_PARAM);
  if (a_nan && a_inf && r != ADASM_ERR_NAN && r != ADASM_ERR_PARAM)
    fail("build: NaN and inf in A", r, ADASM_ERR_NAN);
  if (!a_nan && !a_inf) {
    /* B would overflow only if a row's norm nears FLT_MAX (|B_ij| <= |A_i|) */
    double amax = 0.0;
    for (i = 0; i < n; ++i) {
      double s = 0.0;
      for (j = 0; j < d; ++j) s += (double)A[i * lda + j] * (double)A[i * lda + j];
      if (sqrt(s) > amax) amax = sqrt(s);
    }
    if (r != ADASM_OK && !(r == ADASM_ERR_PARAM && amax >= (double)FLT_MAX / 4.0))
      fail("build", r, ADASM_OK);
  }
  if (r != ADASM_OK) {
    if (memcmp(&m, &before, sizeof m) != 0) fail("failed build touched the model", r, 0);
    memset(&m, 0, sizeof m);
    adasm_svd_free(&m); /* a zeroed model: no-op */
    adasm_svd_free(&m);
    adasm_svd_free(NULL);
    if (memcmp(&m, &zero, sizeof m) != 0) fail("free of a zeroed model", 0, 0);
    free(Acopy);
    free(x);
    return 0;
  }
  check_model(&m, Acopy, n, d, lda, &ctx_tag);
  if ((seed & 7u) == 0) { /* now and then: the same bits when rebuilt */
    adasm_svd_model m2;
    r = adasm_svd_build(&m2, kb, Acopy, n, d, lda, &ctx_tag);
    if (r != ADASM_OK) fail("rebuild", r, 0);
    if (memcmp(m.B, m2.B, n * m.panels * 16 * sizeof(float)) != 0 ||
        memcmp(m.vt, m2.vt, d * d * sizeof(float)) != 0 ||
        memcmp(m.sigma, m2.sigma, d * sizeof(double)) != 0)
      fail("rebuild differs", 0, 0);
    adasm_svd_free(&m2);
  }
  if ((seed & 7u) == 1) { /* 16-bit rows: the model of their widened floats */
    const int bf = (seed >> 3) & 1;
    const size_t ext = (n - 1) * lda + d;
    uint16_t *H = (uint16_t *)malloc(ext * sizeof(uint16_t));
    float *Wd = (float *)malloc(ext * sizeof(float));
    adasm_svd_model mh, mw;
    adasm_matrix M;
    adasm_result rh, rw;
    if (!H || !Wd) {
      free(H);
      free(Wd);
      fail("out of memory", 0, 0);
    }
    for (i = 0; i < ext; ++i) {
      H[i] = bf ? adasm_f32_to_bf16(Acopy[i]) : adasm_f32_to_f16(Acopy[i]);
      Wd[i] = bf ? adasm_bf16_to_f32(H[i]) : adasm_f16_to_f32(H[i]);
    }
    M = bf ? adasm_matrix_bf16(H, n, d, lda) : adasm_matrix_f16(H, n, d, lda);
    rh = adasm_svd_build_matrix(&mh, &M, kb, &ctx_tag);
    rw = adasm_svd_build(&mw, kb, Wd, n, d, lda, &ctx_tag);
    if (rh != rw) fail("16-bit build: another result than its widened floats", rh, rw);
    if (rh == ADASM_OK) {
      if (memcmp(mh.B, mw.B, n * mh.panels * 16 * sizeof(float)) != 0 ||
          memcmp(mh.vt, mw.vt, d * d * sizeof(float)) != 0 ||
          memcmp(mh.sigma, mw.sigma, d * sizeof(double)) != 0)
        fail("16-bit build: not the model of its widened floats", 0, 0);
      adasm_svd_free(&mh);
      adasm_svd_free(&mw);
    }
    free(H);
    free(Wd);
  }

  /* ---- workspace size: the query's argument checks ---- */
  e_size = W > d || N > n || k == 0 || k > N;
  e_beta = !(beta > 0.0f && beta - beta == 0.0f);
  {
    const adasm_result want = e_size ? ADASM_ERR_SIZE : e_beta ? ADASM_ERR_PARAM : ADASM_OK;
    r = adasm_svd_workspace_size(&m, &prm, &bytes);
    if (r != want) fail("workspace_size", r, want);
  }
  if (adasm_svd_workspace_size(&m, &pdef, NULL) != ADASM_ERR_NULL) fail("workspace_size: NULL bytes", 0, 0);
  if (adasm_svd_workspace_size(&m, NULL, &want_bytes) != ADASM_ERR_NULL)
    fail("workspace_size: NULL params", 0, 0);
  if (adasm_svd_workspace_size(&zero, &pdef, &want_bytes) != ADASM_ERR_NULL)
    fail("workspace_size: zeroed model", 0, 0);
  if (r == ADASM_OK) {
    /* "4 (2 * 16 ceil(d/16) + 2 n) + sizeof(size_t) (n + N), plus 64"; the
       library rounds each of its 6 pieces up to 64 bytes */
    size_t b2 = 0;
    want_bytes = 4 * (2 * 16 * m.panels + 2 * n) + sizeof(size_t) * (n + N) + 64;
    if (bytes < want_bytes || bytes > want_bytes + 6 * 63)
      fail("workspace_size vs the documented formula", (double)bytes, (double)want_bytes);
    p2 = prm;
    p2.window = W == 1 ? d : 1;
    if (adasm_svd_workspace_size(&m, &p2, &b2) != ADASM_OK || b2 != bytes)
      fail("workspace size depends on W", (double)b2, (double)bytes);
  } else {
    bytes = 64; /* still call query: it must refuse */
  }

  /* ---- query ---- */
  kk = k ? k : 1;
  idx = (size_t *)malloc(kk * sizeof(size_t));
  idx2 = (size_t *)malloc(kk * sizeof(size_t));
  prob = (float *)malloc(kk * sizeof(float));
  prob2 = (float *)malloc(kk * sizeof(float));
  off = (flags & 64u) ? 1 + (seed & 62u) : 0;
  work = (unsigned char *)malloc(off + bytes);
  if (!idx || !idx2 || !prob || !prob2 || !work) {
    free(idx); free(idx2); free(prob); free(prob2); free(work);
    adasm_svd_free(&m);
    free(Acopy);
    free(x);
    return 0;
  }
  memset(work, 0, off + bytes);
  out.idx = idx;
  out.prob = prob;

  /* (with bad sizes or beta `bytes` means nothing) */
  e_ws = wsmode >= 2 && !e_size && !e_beta;

  /* NULL pointers and a zeroed model, other arguments valid: ADASM_ERR_NULL,
     outputs untouched */
  fill_sentinels(&out, kk);
  if (!e_size && !e_beta) {
    onull = out;
    onull.idx = NULL;
    if (adasm_svd_query(&m, &prm, x, work + off, bytes, &onull) != ADASM_ERR_NULL)
      fail("query: NULL out->idx not refused", 0, 0);
    onull = out;
    onull.prob = NULL;
    if (adasm_svd_query(&m, &prm, x, work + off, bytes, &onull) != ADASM_ERR_NULL)
      fail("query: NULL out->prob not refused", 0, 0);
    if (adasm_svd_query(&m, &prm, NULL, work + off, bytes, &out) != ADASM_ERR_NULL ||
        adasm_svd_query(&m, &prm, x, work + off, bytes, NULL) != ADASM_ERR_NULL ||
        adasm_svd_query(&m, NULL, x, work + off, bytes, &out) != ADASM_ERR_NULL ||
        adasm_svd_query(&zero, &prm, x, work + off, bytes, &out) != ADASM_ERR_NULL ||
        adasm_svd_query(NULL, &prm, x, work + off, bytes, &out) != ADASM_ERR_NULL)
      fail("query: NULL argument not refused", 0, 0);
  }
  if (!untouched(&out, kk)) fail("query: NULL argument touched outputs", 0, 0);
  {
    const size_t wb = wsmode == 3 ? bytes : wsmode == 2 ? ((seed & 1u) ? bytes / 2 : bytes - 65) : bytes;
    /* bytes / 2 and bytes - 65 are too small at any alignment: the size
       includes 64 bytes of slack and at least 6 * 64 of pieces */
    r = adasm_svd_query(&m, &prm, x, wsmode == 3 ? NULL : work + off, wb, &out);
  }
  if (!documented_query(r)) fail("query: undocumented code", r, 0);

  /* Reference (double) from the model: xt = beta V^T x; zsvd_i = B_i . xt
     (refined logit), zprev_i = the first W terms (preview). Tolerances of
     the float path: each dot product (V^T x, the preview, the rest) errs by
     at most (d + 8) u times its sum of |terms|, doubled; plus 2^-149 per
     operation where sums underflow, which beta scales up. */
  clean = !e_beta && !x_nan && !x_inf && !e_size;
  if (clean) {
    const double u4 = ldexp(1.0, -22) * (double)(d + 8), bd = (double)beta;
    for (j = 0; j < d; ++j) {
      double s = 0.0, a = 0.0;
      for (t = 0; t < d; ++t) {
        s += Vd[j * d + t] * (double)x[t];
        a += fabs(Vd[j * d + t] * (double)x[t]);
      }
      xt[j] = bd * s;
      sabs[j] = a;
      /* V^T x is formed in float before beta scales it, as in dot_rows */
      if (!(a < (double)FLT_MAX / 4.0 && bd * a < (double)FLT_MAX / 4.0)) clean = 0;
    }
    for (i = 0; clean && i < n; ++i) {
      double zs = 0.0, zp = 0.0, T = 0.0, P = 0.0, babs = 0.0, zr = 0.0, sr = 0.0, sl;
      for (j = 0; j < d; ++j) {
        const double b = Bd[i * d + j], term = fabs(b) * bd * sabs[j];
        zs += b * xt[j];
        T += term;
        babs += fabs(b);
        if (j < W) {
          zp += b * xt[j];
          P += term;
        }
        zr += (double)Acopy[i * lda + j] * (double)x[j];
        sr += fabs((double)Acopy[i * lda + j] * (double)x[j]);
      }
      if (!(T < (double)FLT_MAX / 4.0)) clean = 0; /* preview/refined may overflow */
      sl = ldexp(1.0, -146) * (double)(d + 2) * (1.0 + babs) * (1.0 + bd);
      zsvd[i] = zs;
      zprev[i] = zp;
      ftol[i] = u4 * T + sl;
      ptol[i] = u4 * P + sl;
      srow[i] = sr;
      dz[i] = fabs(zs - bd * zr) + ldexp(fabs(zs) + fabs(bd * zr) + bd * sr, -50);
    }
  }

  {
    /* which errors the inputs call for (any of them if several apply) */
    const int any_arg = e_size || e_beta || e_ws;
    const int data = !any_arg && (x_nan || x_inf);
    if (r == ADASM_OK && (any_arg || x_nan || x_inf)) fail("query accepted bad input", r, -1);
    if (r == ADASM_ERR_NULL) fail("query: NULL with valid pointers", r, 0);
    /* every logit overflowed to -inf (never when clean, caught below) */
    if (r == ADASM_ERR_NO_FINITE_MAX && (any_arg || x_nan || x_inf))
      fail("query: NO_FINITE_MAX with bad input", r, 0);
    if (r == ADASM_ERR_SIZE && !e_size) fail("query: SIZE", r, 0);
    if (r == ADASM_ERR_WORKSPACE && !(e_ws || e_size)) fail("query: WORKSPACE", r, 0);
    if (r == ADASM_ERR_PARAM && !(e_beta || x_inf)) fail("query: PARAM", r, 0);
    /* NaN: from x, or from logits that overflowed (never when clean) */
    if (r == ADASM_ERR_NAN && !x_nan && (any_arg || x_inf || clean)) fail("query: NAN", r, 0);
    if (data && x_nan && !x_inf && r != ADASM_ERR_NAN) fail("query: NaN in x", r, ADASM_ERR_NAN);
    if (data && x_inf && !x_nan && r != ADASM_ERR_PARAM) fail("query: inf in x", r, ADASM_ERR_PARAM);
    if (data && x_inf && x_nan && r != ADASM_ERR_NAN && r != ADASM_ERR_PARAM)
      fail("query: NaN and inf in x", r, ADASM_ERR_NAN);
    if (clean && !e_ws && r != ADASM_OK) fail("query: valid input, no overflow", r, ADASM_OK);
    /* outputs: untouched on argument errors, NaN-filled on data errors */
    if (r == ADASM_ERR_SIZE || r == ADASM_ERR_WORKSPACE ||
        (r == ADASM_ERR_PARAM && !x_inf)) {
      if (!untouched(&out, k)) fail("argument error touched the outputs", r, 0);
    } else if (r == ADASM_ERR_PARAM) { /* inf in x, perhaps a bad beta too */
      if (!nan_filled(&out, k, 1) && !(e_beta && untouched(&out, k)))
        fail("inf in x: outputs not NaN / idx 0", r, 0);
    } else if (r == ADASM_ERR_NO_FINITE_MAX) { /* prob NaN, log_norm -inf */
      const double ln = out.log_norm;
      for (t = 0; t < k; ++t)
        if (prob[t] == prob[t]) fail("NO_FINITE_MAX: prob not NaN", prob[t], 0);
      if (!(ln < 0.0 && ln - ln != ln - ln)) fail("NO_FINITE_MAX: log_norm not -inf", ln, 0);
      if (out.madds != 0) fail("NO_FINITE_MAX: madds not 0", (double)out.madds, 0);
    } else if (r == ADASM_ERR_NAN) { /* NaN in x (idx 0) or a NaN logit */
      if (!nan_filled(&out, k, x_nan || x_inf)) fail("NaN: outputs not NaN", r, 0);
    }
  }

  if (r == ADASM_OK) {
    double psum = 0.0;
    for (t = 0; t < k; ++t) {
      if (idx[t] >= n) fail("index out of range", (double)idx[t], (double)n);
      for (i = 0; i < t; ++i)
        if (idx[i] == idx[t]) fail("index repeated", (double)idx[t], (double)t);
      if (!(prob[t] >= 0.0f && prob[t] <= 1.0f)) fail("probability outside [0, 1]", prob[t], (double)t);
      if (t > 0 && prob[t] > prob[t - 1]) fail("not best first", prob[t], prob[t - 1]);
      psum += (double)prob[t];
    }
    if (psum > 1.0 + 1e-6 + (double)k * ldexp(1.0, -23)) fail("probabilities sum above 1", psum, 1.0);
    if (!finite_d(out.log_norm)) {
      /* only +inf logits (overflow) make it +inf: they share the mass */
      if (clean || out.log_norm != HUGE_VAL) fail("log_norm not finite", out.log_norm, 0);
      for (t = 0; t < k; ++t)
        if (prob[t] != 0.0f && !(prob[t] == prob[0] && prob[0] == (float)(1.0 / floor(1.0 / prob[0] + 0.5))))
          fail("+inf logits: probabilities not 1/count", prob[t], prob[0]);
    }
    if (out.madds != (uint64_t)d * d + (uint64_t)n * W + (uint64_t)N * (d - W))
      fail("madds", (double)out.madds, (double)((uint64_t)d * d + (uint64_t)n * W + (uint64_t)N * (d - W)));

    /* the same query in a dirtied workspace, window and top spelled out */
    memset(work, 0xff, off + bytes);
    p2 = prm;
    p2.window = W;
    p2.top = N;
    out2.idx = idx2;
    out2.prob = prob2;
    r2 = adasm_svd_query(&m, &p2, x, work + off, bytes, &out2);
    if (r2 != ADASM_OK) fail("rerun failed", r2, 0);
    if (memcmp(idx, idx2, k * sizeof idx[0]) != 0 || memcmp(prob, prob2, k * sizeof prob[0]) != 0 ||
        !same_bits_d(out.log_norm, out2.log_norm) || out.madds != out2.madds)
      fail("rerun differs", out2.log_norm, out.log_norm);

    if (clean) {
      const double ln2 = out2.log_norm;
      double tmax = 0.0;
      for (i = 0; i < n; ++i) tmax = fmax(tmax, fmax(ftol[i], ptol[i]));
      if (finite_d(ln2) && tmax <= 50.0) check_method(n, N, k, idx2, prob2, ln2);
      if (W == d || N == n) compare_exact(kq, Acopy, n, d, lda, x, beta, k, idx2, prob2, ln2);
    }
  }

  free(idx); free(idx2); free(prob); free(prob2); free(work);
  adasm_svd_free(&m);
  if (memcmp(&m, &zero, sizeof m) != 0) fail("free did not zero the model", 0, 0);
  adasm_svd_free(&m); /* a second call: no-op */
  free(Acopy);
  free(x);
  return 0;
}

#ifdef FUZZ_SVD_SEEDS
/* Writes the seed inputs: one per interesting corner, small. */
static void put(const char *dir, const char *name, const uint8_t *h,
                size_t na, size_t nx, int raw, int xspecial, uint64_t s) {
  char path[512];
  uint8_t hh[HDR];
  FILE *f;
  size_t i;
  adasm_pcg32 g;
  adasm_pcg32_seed(&g, s, 5u);
  sprintf(path, "%s/seed-%s", dir, name);
  f = fopen(path, "wb");
  if (!f) {
    perror(path);
    exit(1);
  }
  memcpy(hh, h, HDR);
  hh[9] = (uint8_t)(s * 5u); /* seed: rebuild check when % 8 == 0 */
  fwrite(hh, 1, HDR, f);
  for (i = 0; i < na + nx; ++i) {
    const int in_x = i >= na;
    if (raw) { /* plausible floats: N(0,1)-ish via int/32 */
      float v = ((float)adasm_pcg32_bounded(&g, 256) - 128.0f) / 32.0f;
      if (in_x && i == na + nx - 1 && xspecial == 1) v = (float)nan("");
      if (in_x && i == na + nx - 1 && xspecial == 2) v = (float)-HUGE_VAL;
      if (in_x && xspecial == 3) v = 0.0f;
      fwrite(&v, 4, 1, f);
    } else {
      uint8_t c = (uint8_t)adasm_pcg32_bounded(&g, 256);
      if (in_x && xspecial == 3) c = 0;
      fwrite(&c, 1, 1, f);
    }
  }
  fclose(f);
}

int main(int argc, char **argv) {
  /* header: n-1|lda, d-1|coding, W, N, k, flags, beta, aux, xaux, seed */
#define H(n, d, w, nn, k, fl, be, ax, xa)                                      \
  {(uint8_t)(n), (uint8_t)(d), (uint8_t)(w), (uint8_t)(nn), (uint8_t)(k),     \
   (uint8_t)(fl), (uint8_t)(be), (uint8_t)(ax), (uint8_t)(xa), 9, 0, 0, 0}
  /* codings in bits 6-7 of d */
#define RAW 0
#define I8 64
#define SCALED 128
#define LOWRANK 192
  static const struct {
    const char *name;
    uint8_t h[HDR];
    size_t na, nx; /* entries of A (or U, Vr) and of x */
    int raw, xspecial;
  } seeds[] = {
      {"raw-8x5", H(7, 4 | RAW, 2, 4, 2, 0, 128, 0, 0), 8 * 5, 5, 1, 0},
      {"i8-48x40", H(47, 39 | I8, 16, 10, 3, 0, 128, 0, 0), 48 * 40, 40, 0, 0},
      {"w-eq-d", H(29, 19 | I8, 254, 5, 3, 0, 140, 0, 0), 30 * 20, 20, 0, 0},
      {"n-eq-top", H(19, 32 | I8, 7, 254, 5, 0, 120, 0, 0), 20 * 33, 33, 0, 0},
      {"lowrank2", H(47, 39 | LOWRANK, 2, 8, 4, 0, 160, 1, 0), 48 * 2 + 2 * 40, 40, 0, 0},
      {"lowrank4-scalar-avx512", H(40, 35 | LOWRANK, 5, 12, 3, 1 | 12, 150, 3, 0),
       41 * 4 + 4 * 36, 36, 0, 0},
      {"avx2-build-avx512-query", H(33, 30 | I8, 17, 9, 2, 2 | 12, 128, 0, 0), 34 * 31, 31, 0, 0},
      {"avx512-build-scalar-query", H(33, 30 | I8, 17, 9, 2, 3 | 4, 128, 0, 0), 34 * 31, 31, 0, 0},
      {"ws-half", H(9, 9 | I8, 3, 5, 2, 32, 128, 0, 0), 100, 10, 0, 0},
      {"ws-short65-misaligned", H(9 | 128, 9 | I8, 3, 5, 2, 32 | 64, 128, 0, 0), 100, 10, 0, 0},
      {"ws-null", H(9, 9 | I8, 3, 5, 2, 48, 128, 0, 0), 100, 10, 0, 0},
      {"w0", H(9, 9 | I8, 0, 5, 2, 0, 128, 0, 0), 100, 10, 0, 0}, /* default */
      {"w-gt-d", H(9, 9 | I8, 255, 5, 2, 0, 128, 0, 0), 100, 10, 0, 0},
      {"top0", H(9, 9 | I8, 3, 0, 2, 0, 128, 0, 0), 100, 10, 0, 0}, /* default */
      {"top-gt-n", H(9, 9 | I8, 3, 255, 2, 0, 128, 0, 0), 100, 10, 0, 0},
      {"k0", H(9, 9 | I8, 3, 5, 0, 0, 128, 0, 0), 100, 10, 0, 0},
      {"k-gt-top", H(9, 9 | I8, 3, 5, 255, 0, 128, 0, 0), 100, 10, 0, 0},
      {"beta-nan", H(9, 9 | I8, 3, 5, 2, 0, 2, 0, 0), 100, 10, 0, 0},
      {"beta-0", H(9, 9 | I8, 3, 5, 2, 0, 0, 0, 0), 100, 10, 0, 0},
      {"beta-max-scaled", H(15, 15 | SCALED, 254, 254, 4, 0, 255, 160, 110), 16 * 16, 16, 0, 0},
      {"huge-scaled", H(15, 15 | SCALED, 4, 6, 2, 0, 128, 250, 250), 16 * 16, 16, 0, 0},
      {"tiny-scaled", H(15, 15 | SCALED, 4, 6, 2, 0, 128, 2, 30), 16 * 16, 16, 0, 0},
      {"x-nan", H(9, 9 | RAW, 3, 5, 2, 0, 128, 0, 0), 100, 10, 1, 1},
      {"x-inf", H(9, 9 | RAW, 3, 5, 2, 0, 128, 0, 0), 100, 10, 1, 2},
      {"x-zero-ties", H(20, 17 | I8, 16, 7, 5, 0, 128, 0, 0), 21 * 18, 18, 0, 3},
      {"n1d1", H(0, 0 | RAW, 1, 1, 1, 0, 128, 0, 0), 1, 1, 1, 0},
      {"lda3-defaults-spelled", H(11 | 192, 6 | I8, 0, 0, 4, 128 | 64, 128, 0, 0), 12 * 7, 7, 0, 0},
  };
  size_t i;
  if (argc != 2) {
    fprintf(stderr, "usage: %s DIR\n", argv[0]);
    return 2;
  }
  for (i = 0; i < sizeof seeds / sizeof seeds[0]; ++i)
    put(argv[1], seeds[i].name, seeds[i].h, seeds[i].na, seeds[i].nx,
        seeds[i].raw, seeds[i].xspecial, (uint64_t)i + 1u);
  printf("wrote %lu seeds to %s\n", (unsigned long)i, argv[1]);
  return 0;
}
#endif
