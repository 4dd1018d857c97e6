/* Fuzzing of AdaSoftmax: adasm_ada_index_build, adasm_ada_query (and now and
   then adasm_ada_calibrate) on small matrices decoded from the fuzzer's
   bytes, including parameters out of range and floats straight from raw
   bits (NaN, Inf, subnormals, huge magnitudes).

   Input layout (everything past the end of the input reads as 0; matrix
   entries past the end come from a PCG32 seeded by the input's seed):
     [0]    n-1 in bits 0-5; bits 6-7: lda - d (0..3)
     [1]    d-1 in bits 0-5; bits 6-7: fudge factors (1, 0.01, 1e-6, invalid)
     [2]    k: 255 -> 0, 254 -> n+1 (both invalid), else 1 + byte % n
     [3]    flags: 0 estimate_best, 1 entries as int8/16 (else raw float
            bits), 2 force k = n, 3-4 ISA (auto, scalar, AVX2, AVX-512),
            5 workspace half the size, 6 misaligned workspace, 7 calibrate
     [4,5]  eps   (u16 LE: < 0xff00 maps into (0,1), above: special values)
     [6,7]  delta (same coding)
     [8]    beta  (2^((b-128)/16), with 0, -1, NaN, inf, subnormal, FLT_MAX)
     [9]    burnin_frac (bits 0-2: 0.1, 1, 0.01, 0.5, 1e-9, 0, 1.5, NaN)
     [10..17] seed (u64 LE)
     then A (n x d row-major), then x (d), as raw float bits (4 bytes) or as
     int8/16 (1 byte) per entry.

   Checks: every return code is one the header documents for that call and,
   where the inputs decide it, the expected one; on ADASM_OK the indices are
   valid and distinct, the probabilities finite, in [0, 1] and best first,
   log_norm finite, the pull counters add up and never exceed n * nnz
   (a pull is an entry not used before); on NaN in x the outputs are
   NaN; a second run with the same seed in a dirtied workspace gives the
   same bits (no uninitialised workspace read); when every arm is computed
   exactly (k == n with exact best rows, or pulls_total == n * nnz) the
   answer equals adasm_gemv_softmax_topk's within the header's stated
   logit accuracy.

   Run (from the repository root; scripts/fuzz.sh does the same for every
   harness):
     clang -O1 -g -fsanitize=fuzzer,address,undefined \
       -fno-sanitize-recover=all -I. fuzz/fuzz_ada.c -o /tmp/fa -lm
     cp -r fuzz/corpus/fuzz_ada /tmp/work && /tmp/fa -max_total_time=120 /tmp/work
   then fold new coverage back with -merge=1 into a copy of the seed-*
   files. Corpus (fuzz/corpus/fuzz_ada/): seed-* are the inputs this file
   writes when built with -DFUZZ_ADA_SEEDS
     cc -DFUZZ_ADA_SEEDS -I. fuzz/fuzz_ada.c -o /tmp/seeds -lm &&
       /tmp/seeds fuzz/corpus/fuzz_ada
   regress-* are past findings, the rest is the fuzzer's merged corpus. */
#define ADASOFTMAX_IMPLEMENTATION
#include "../adasoftmax.h"
#include <float.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define MAXN 64
#define MAXD 64

static void fail(const char *what, size_t n, size_t d, size_t k, double got,
                 double want) {
  fprintf(stderr, "fuzz_ada: %s n=%lu d=%lu k=%lu got=%.17g want=%.17g\n",
          what, (unsigned long)n, (unsigned long)d, (unsigned long)k, got,
          want);
  abort();
}

/* ---- decoding ------------------------------------------------------------ */
typedef struct reader {
  const uint8_t *p;
  size_t left;
} reader;

static unsigned get8(reader *r) {
  if (r->left == 0) return 0;
  --r->left;
  return *r->p++;
}
static unsigned get16(reader *r) {
  const unsigned lo = get8(r);
  return lo | (get8(r) << 8);
}
static uint64_t get64(reader *r) {
  uint64_t v = 0;
  int i;
  for (i = 0; i < 8; ++i) v |= (uint64_t)get8(r) << (8 * i);
  return v;
}

/* eps / delta: almost always inside (0, 1), the top codes are the edges. */
static double prob_param(unsigned u) {
  static const double special[] = {0.0, 1.0, -0.5, 1.5, 1e-300, 1.0 - 1e-16,
                                   HUGE_VAL, -HUGE_VAL};
  if (u < 0xff00u) return ((double)u + 1.0) / 65281.0; /* (0, 1) */
  if ((u & 0xffu) == 0xffu) return nan("");
  return special[u & 7u];
}

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
static float get_entry(reader *r, int int8, adasm_pcg32 *g) {
  if (r->left >= (int8 ? 1u : 4u)) {
    if (int8) return (float)(signed char)get8(r) / 16.0f;
    {
      uint32_t u = get8(r);
      float f;
      u |= (uint32_t)get8(r) << 8;
      u |= (uint32_t)get8(r) << 16;
      u |= (uint32_t)get8(r) << 24;
      memcpy(&f, &u, 4);
      return f;
    }
  }
  r->left = 0;
  return ((float)adasm_pcg32_bounded(g, 256) - 128.0f) / 16.0f;
}

/* ---- checks ---------------------------------------------------------------- */
static int is_nan_f(float f) { return f != f; }
static int finite_d(double v) { return v == v && v - v == 0.0; }

/* sum_j |A_ij x_j| in double (may be inf). The header's logit accuracy of
   the exact path for row i is 2^-22 sqrt(d) beta times this. */
static double row_abs_dot(const float *A, size_t lda, size_t d, size_t i,
                          const float *x) {
  double s = 0.0;
  size_t j;
  for (j = 0; j < d; ++j) s += fabs((double)A[i * lda + j] * (double)x[j]);
  return s;
}

/* k == n (or every arm pulled to the end): the answer must be the exact
   one. log p errs by the row's logit error plus the normalizer's (at most
   the largest row error), plus the float rounding of exp. */
static void compare_exact(const float *A, size_t n, size_t d, size_t lda,
                          const float *x, float beta, size_t k,
                          const size_t *idx, const float *prob,
                          double log_norm) {
  static size_t eidx[MAXN];
  static float eprob[MAXN];
  static double pe[MAXN], tol[MAXN];
  double eln, tmax = 0.0;
  size_t i, t;
  adasm_result r = adasm_gemv_softmax_topk(NULL, A, n, d, lda, x, beta, n,
                                           eidx, eprob, &eln, NULL);
  if (r != ADASM_OK || !finite_d(eln)) return; /* float logits overflowed */
  for (i = 0; i < n; ++i) {
    const double s = row_abs_dot(A, lda, d, i, x);
    /* The exact path's dot products are float: past FLT_MAX they may
       overflow to +-inf (or NaN) before a tiny beta scales them back down,
       while the adaptive path works in double. Its bound assumes no
       overflow (see adasm_gemv_softmax_topk). */
    if (!(s < (double)FLT_MAX / 2.0)) return;
    tol[i] = ldexp(1.0, -22) * sqrt((double)d) * (double)beta * s;
    if (tol[i] > tmax) tmax = tol[i];
  }
  if (!finite_d(tmax) || tmax > 50.0) return; /* bound says nothing */
  for (t = 0; t < n; ++t) pe[eidx[t]] = (double)eprob[t];
  if (fabs(log_norm - eln) > tmax + 1e-6 * fmax(1.0, fabs(eln)))
    fail("log_norm vs exact", n, d, k, log_norm, eln);
  for (t = 0; t < k; ++t) {
    const double pa = (double)prob[t], p = pe[idx[t]];
    const double f = exp(tol[idx[t]] + tmax + 2e-6);
    if (pa > p * f + 1e-30 || p > pa * f + 1e-30)
      fail("probability vs exact", n, d, k, pa, p);
  }
}

/* The documented error codes of a query / build; anything else is a bug. */
static int documented(adasm_result r) {
  return r == ADASM_OK || r == ADASM_ERR_NULL || r == ADASM_ERR_SIZE ||
         r == ADASM_ERR_OVERFLOW || r == ADASM_ERR_PARAM ||
         r == ADASM_ERR_NAN || r == ADASM_ERR_NOMEM ||
         r == ADASM_ERR_WORKSPACE;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);
int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
  static float A[MAXN * (MAXD + 3)], x[MAXD], X[3 * MAXD];
  static size_t idx[MAXN], idx2[MAXN];
  static float prob[MAXN], prob2[MAXN];
  static const double fudges[] = {1.0, 0.01, 1e-6, 0.0};
  static const double burnins[] = {0.1, 1.0, 0.01, 0.5, 1e-9, 0.0, 1.5, -1.0};
  reader rd;
  adasm_pcg32 g;
  adasm_ada_params p = adasm_ada_params_default();
  adasm_ada_index ix;
  adasm_ada_result out, out2;
  size_t n, d, lda, k, i, j, t, bytes = 0, off;
  unsigned b0, b1, b2, flags, isa;
  int int8, a_nan = 0, a_inf = 0, x_nan = 0, x_inf = 0, bad_param, short_ws;
  unsigned char *work;
  float *Acopy;
  adasm_result r, r2;

  rd.p = data;
  rd.left = size;
  b0 = get8(&rd);
  b1 = get8(&rd);
  b2 = get8(&rd);
  flags = get8(&rd);
  n = 1 + (b0 & 63u);
  d = 1 + (b1 & 63u);
  lda = d + (b0 >> 6);
  k = b2 == 255 ? 0 : b2 == 254 ? n + 1 : 1 + b2 % n;
  if (flags & 4u) k = n;
  int8 = (flags & 2u) != 0;
  p.k = k;
  p.estimate_best = (int)(flags & 1u);
  p.eps = prob_param(get16(&rd));
  p.delta = prob_param(get16(&rd));
  p.beta = beta_param(get8(&rd));
  {
    const unsigned bf = get8(&rd);
    p.burnin_frac = (bf & 7u) == 7u ? nan("") : burnins[bf & 7u];
  }
  p.seed = get64(&rd);
  p.fudge_elim = p.fudge_norm = fudges[b1 >> 6];
  if ((b1 >> 6) == 3u) p.fudge_norm = 1.0; /* only fudge_elim invalid */
  isa = (flags >> 3) & 3u;
  if (isa != 0 && adasm_kernels_get((adasm_isa)(isa == 1   ? ADASM_ISA_SCALAR
                                                : isa == 2 ? ADASM_ISA_AVX2
                                                           : ADASM_ISA_AVX512),
                                    &p.kern) != ADASM_OK)
    p.kern = NULL; /* not on this CPU/build: best instead */

  adasm_pcg32_seed(&g, p.seed, 99u);
  for (i = 0; i < n; ++i)
    for (j = 0; j < lda; ++j) {
      /* padding between rows is NaN: the library must never read it */
      const float v = j < d ? get_entry(&rd, int8, &g) : (float)nan("");
      A[i * lda + j] = v;
      if (j < d) {
        a_nan |= is_nan_f(v);
        a_inf |= !is_nan_f(v) && (v - v != 0.0f);
      }
    }
  for (j = 0; j < d; ++j) {
    x[j] = get_entry(&rd, int8, &g);
    x_nan |= is_nan_f(x[j]);
    x_inf |= !is_nan_f(x[j]) && (x[j] - x[j] != 0.0f);
  }

  /* ---- build ---- */
  memset(&ix, 0, sizeof ix);
  {
    /* exactly (n-1)*lda + d floats, so ASan sees any read past the end;
       with ADASM_ADA_OWN_ROWS (a seed bit) it is poisoned and freed right
       after the build: the index must not read it again */
    const size_t extent = (n - 1) * lda + d;
    const int own = ((p.seed >> 8) & 1u) != 0;
    Acopy = (float *)malloc(extent * sizeof(float));
    if (!Acopy) return 0;
    memcpy(Acopy, A, extent * sizeof(float));
    r = adasm_ada_index_build_ex(&ix, Acopy, n, d, lda,
                                 own ? ADASM_ADA_OWN_ROWS : 0u, NULL);
    if (!documented(r)) fail("build: undocumented code", n, d, k, r, 0);
    if (a_nan && r != ADASM_ERR_NAN) fail("build: NaN in A", n, d, k, r, ADASM_ERR_NAN);
    if (!a_nan && !a_inf && r != ADASM_OK) fail("build", n, d, k, r, ADASM_OK);
    if (r != ADASM_OK) {
      adasm_ada_index_free(&ix); /* safe on what a failed build left */
      free(Acopy);
      return 0;
    }
    if (own) {
      for (i = 0; i < extent; ++i) Acopy[i] = (float)nan("");
      free(Acopy);
      Acopy = NULL;
    }
  }

  /* ---- query ---- */
  bad_param = !(p.eps > 0.0 && p.eps < 1.0) || !(p.delta > 0.0 && p.delta < 1.0) ||
              !(p.beta > 0.0f && p.beta - p.beta == 0.0f) || !(p.fudge_elim > 0.0) ||
              !(p.burnin_frac > 0.0 && p.burnin_frac <= 1.0);
  r = adasm_ada_workspace_size(&ix, &p, &bytes);
  if (k == 0 || k > n) {
    if (r != ADASM_ERR_SIZE && !(bad_param && r == ADASM_ERR_PARAM))
      fail("workspace_size: k out of range", n, d, k, r, ADASM_ERR_SIZE);
  } else if (bad_param) {
    if (r != ADASM_ERR_PARAM) fail("workspace_size: bad param", n, d, k, r, ADASM_ERR_PARAM);
  } else if (r != ADASM_OK) {
    fail("workspace_size", n, d, k, r, ADASM_OK);
  }
  if (r != ADASM_OK) bytes = 64; /* still call query: it must refuse */
  short_ws = (flags & 32u) != 0 && bytes > 0;
  off = (flags & 64u) ? 1 + (p.seed & 62u) : 0;
  /* exactly the asked size past the offset: ASan catches an overrun */
  work = (unsigned char *)malloc(off + bytes);
  if (!work) {
    adasm_ada_index_free(&ix);
    free(Acopy);
    return 0;
  }
  memset(work, 0, off + bytes);
  memset(&out, 0x5a, sizeof out);
  out.idx = idx;
  out.prob = prob;
  /* half the size: too small at any alignment (the size includes at most
     an alignment's worth of slack, far less than half) */
  r = adasm_ada_query(&ix, &p, x, work + off, short_ws ? bytes / 2 : bytes, &out);
  if (!documented(r) || r == ADASM_ERR_NOMEM)
    fail("query: undocumented code", n, d, k, r, 0);
  {
    /* which errors the inputs call for (any of them if several apply) */
    const int e_size = k == 0 || k > n, e_param = bad_param || x_inf;
    const int e_ws = short_ws && !e_size && !bad_param;
    const int any = e_size || bad_param || x_nan || e_ws;
    if (r == ADASM_OK && any) fail("query accepted bad input", n, d, k, r, -1);
    if (r == ADASM_ERR_SIZE && !e_size) fail("query: SIZE", n, d, k, r, 0);
    if (r == ADASM_ERR_PARAM && !e_param) fail("query: PARAM", n, d, k, r, 0);
    if (r == ADASM_ERR_NAN && !x_nan) fail("query: NAN", n, d, k, r, 0);
    if (r == ADASM_ERR_WORKSPACE && !(e_ws || e_size || bad_param))
      fail("query: WORKSPACE", n, d, k, r, 0);
    if (r == ADASM_ERR_NULL || r == ADASM_ERR_OVERFLOW)
      fail("query: NULL/OVERFLOW on valid pointers and tiny sizes", n, d, k, r, 0);
    if (r == ADASM_ERR_NAN) /* data error: nothing stale in the outputs */
      for (t = 0; t < k; ++t)
        if (!is_nan_f(prob[t])) fail("query: NaN fill", n, d, k, prob[t], 0);
  }
  if (r == ADASM_OK) {
    for (t = 0; t < k; ++t) {
      if (idx[t] >= n) fail("index out of range", n, d, k, (double)idx[t], (double)n);
      for (i = 0; i < t; ++i)
        if (idx[i] == idx[t]) fail("index repeated", n, d, k, (double)idx[t], (double)t);
      if (!(prob[t] >= 0.0f && prob[t] <= 1.0f))
        fail("probability outside [0, 1]", n, d, k, prob[t], (double)t);
      if (t > 0 && prob[t] > prob[t - 1]) fail("not best first", n, d, k, prob[t], prob[t - 1]);
    }
    if (!finite_d(out.log_norm)) fail("log_norm not finite", n, d, k, out.log_norm, 0);
    if (out.pulls_total !=
        out.pulls_burnin + out.pulls_elim + out.pulls_best + out.pulls_norm)
      fail("pull counters", n, d, k, (double)out.pulls_total, 0);
    if (out.nnz > d) fail("nnz > d", n, d, k, (double)out.nnz, (double)d);
    if (out.pulls_total > (uint64_t)n * out.nnz)
      fail("more pulls than entries", n, d, k, (double)out.pulls_total,
           (double)((uint64_t)n * out.nnz));

    /* same seed, dirtied workspace: bit-identical answer */
    memset(work, 0xff, off + bytes);
    memset(&out2, 0, sizeof out2);
    out2.idx = idx2;
    out2.prob = prob2;
    r2 = adasm_ada_query(&ix, &p, x, work + off, bytes, &out2);
    if (r2 != ADASM_OK) fail("rerun failed", n, d, k, r2, 0);
    if (memcmp(idx, idx2, k * sizeof idx[0]) != 0 ||
        memcmp(prob, prob2, k * sizeof prob[0]) != 0 ||
        memcmp(&out.log_norm, &out2.log_norm, sizeof out.log_norm) != 0 ||
        out.pulls_total != out2.pulls_total)
      fail("rerun with the same seed differs", n, d, k, out2.log_norm, out.log_norm);

    if ((k == n && !p.estimate_best) ||
        (!p.estimate_best && out.pulls_total == (uint64_t)n * out.nnz))
      compare_exact(A, n, d, lda, x, p.beta, k, idx, prob, out.log_norm);
  }
  free(work);

  /* ---- calibration, now and then: a few training queries ---- */
  /* calibration costs ~60 queries: one input in 16 (flag and seed bits) */
  if ((flags & 128u) && (p.seed & 7u) == 0 && r == ADASM_OK) {
    const size_t q = 1 + (size_t)(p.seed % 3u);
    double fe = -1.0, fn = -1.0;
    for (t = 0; t < q; ++t)
      for (j = 0; j < d; ++j) X[t * d + j] = t == 0 ? x[j] : x[(j + t) % d];
    r = adasm_ada_calibrate_workspace_size(&ix, &p, q, &bytes);
    if (r != ADASM_OK) fail("calibrate workspace size", n, d, k, r, 0);
    work = (unsigned char *)malloc(bytes);
    if (work) {
      r = adasm_ada_calibrate(&ix, &p, X, q, d, work, bytes, &fe, &fn);
      if (r != ADASM_OK) fail("calibrate", n, d, k, r, 0);
      /* With no failure allowed, q queries certify a rate below delta only
         if (1 - delta)^q <= 0.05; otherwise the factors stay at 1. */
      if (pow(1.0 - p.delta, (double)q) > 0.05 ? !(fe == 1.0 && fn == 1.0)
                                                : !(fe >= 1e-6 && fe <= 1.0 &&
                                                    fn >= 1e-6 && fn <= 1.0))
        fail("calibrate: factors", n, d, k, fe, fn);
      free(work);
    }
  }

  adasm_ada_index_free(&ix);
  free(Acopy);
  return 0;
}

#ifdef FUZZ_ADA_SEEDS
/* Writes the seed inputs: one per interesting corner, small. */
static void put(const char *dir, const char *name, const uint8_t *h,
                size_t hn, size_t body, int raw, uint64_t s) {
  char path[512];
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
  fwrite(h, 1, hn, f);
  for (i = 0; i < body; ++i) {
    if (raw) { /* plausible floats: N(0,1)-ish via int/16 */
      float v = ((float)adasm_pcg32_bounded(&g, 256) - 128.0f) / 32.0f;
      fwrite(&v, 4, 1, f);
    } else {
      const uint8_t c = (uint8_t)adasm_pcg32_bounded(&g, 256);
      fwrite(&c, 1, 1, f);
    }
  }
  fclose(f);
}

int main(int argc, char **argv) {
  /* header: n-1|lda, d-1|fudge, k, flags, eps16, delta16, beta, burnin, seed */
#define H(n, d, k, fl, e, dl, be, bu)                                          \
  {(uint8_t)(n), (uint8_t)(d), (uint8_t)(k), (uint8_t)(fl), (uint8_t)((e) & 255),   \
   (uint8_t)((e) >> 8), (uint8_t)((dl) & 255), (uint8_t)((dl) >> 8), (uint8_t)(be), \
   (uint8_t)(bu), 7, 0, 0, 0, 0, 0, 0, 0}
  static const struct {
    const char *name;
    uint8_t h[18];
    size_t body;
    int raw;
  } seeds[] = {
      /* k=1 on 64x64, int8 entries, defaults-like eps/delta */
      {"k1-64x64", H(63, 63, 0, 2, 19584, 6528, 24, 0), 64 * 65, 0},
      {"k3-est", H(40, 30, 2, 3, 19584, 6528, 24, 0), 40 * 31, 0},
      {"kn-exact", H(15, 20, 0, 6, 19584, 6528, 24, 0), 16 * 21, 0},
      {"kn-raw", H(7, 9, 0, 4, 19584, 6528, 100, 0), 8 * 10, 1},
      {"lda3-fudge", H(63 | 192, 40 | 128, 4, 2, 30000, 3000, 40, 1), 64 * 41, 0},
      {"scalar-isa", H(30, 63, 1, 2 | 8, 19584, 6528, 24, 3), 31 * 64, 0},
      {"avx2-isa", H(30, 63, 1, 2 | 16, 19584, 6528, 24, 3), 31 * 64, 0},
      {"avx512-isa", H(30, 63, 1, 2 | 24, 19584, 6528, 24, 3), 31 * 64, 0},
      {"short-ws", H(9, 9, 0, 2 | 32 | 64, 19584, 6528, 24, 0), 10 * 10, 0},
      {"calibrate", H(20, 12, 1, 2 | 128, 19584, 6528, 24, 0), 21 * 13, 0},
      {"eps-bad", H(9, 9, 0, 2, 0xff00, 6528, 24, 0), 100, 0},
      {"delta-nan", H(9, 9, 0, 2, 19584, 0xffff, 24, 0), 100, 0},
      {"beta-nan", H(9, 9, 0, 2, 19584, 6528, 2, 0), 100, 0},
      {"beta-max", H(9, 9, 0, 2, 19584, 6528, 255, 0), 100, 0},
      {"k0", H(9, 9, 255, 2, 19584, 6528, 24, 0), 100, 0},
      {"burnin-nan", H(9, 9, 1, 2, 19584, 6528, 24, 7), 100, 0},
      {"n1d1", H(0, 0, 0, 0, 19584, 6528, 24, 0), 2, 1},
      {"tiny-eps", H(50, 50, 3, 2, 1, 1, 200, 2), 51 * 51, 0},
  };
  size_t i;
  if (argc != 2) {
    fprintf(stderr, "usage: %s DIR\n", argv[0]);
    return 2;
  }
  for (i = 0; i < sizeof seeds / sizeof seeds[0]; ++i)
    put(argv[1], seeds[i].name, seeds[i].h, sizeof seeds[i].h, seeds[i].body,
        seeds[i].raw, (uint64_t)i + 1u);
  printf("wrote %lu seeds to %s\n", (unsigned long)i, argv[1]);
  return 0;
}
#endif
