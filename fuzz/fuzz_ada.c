/* Fuzzing of AdaSoftmax: adasm_ada_index_build, adasm_ada_query,
   adasm_ada_estimate, adasm_ada_sample and (now and then)
   adasm_ada_calibrate and adasm_ada_sample_calibrate on small
   matrices decoded from the fuzzer's bytes, with parameters out of range
   and floats straight from raw bits (NaN, Inf, subnormals, huge values).

   Input layout (fuzz_util.h: past the end everything reads as 0; matrix
   entries past the end come from a PCG32 seeded by the input's seed):
     [0]    n-1 in bits 0-5; bits 6-7: ld - d (0..3)
     [1]    d-1 in bits 0-5; bits 6-7: dtype (f32, f16, bf16, invalid)
     [2]    k: 255 -> 0, 254 -> n+1 (both invalid), else 1 + byte % n
     [3]    flags: 0 own rows, 1 entries as int8 (else raw bits), 2 k = n,
            3-4 ISA (auto, scalar, AVX2, AVX-512), 5 workspace one byte
            short, 6 misaligned workspace, 7 calibrate
     [4,5]  eps   (u16: < 0xff00 maps into (0,1), above: special values)
     [6,7]  delta (same coding)
     [8]    beta  (2^((b-128)/16), with 0, -1, NaN, inf, subnormal, FLT_MAX)
     [9]    ci_scale (1, 0.1, 0.01, 1e-3, 0, 1.5, NaN, else 2^-(b/16))
     [10]   the power of two s of the invariance check (s = byte % 41 - 20)
     [11..18] seed, [19,20] stream
     then A (n x d row-major in its dtype; f32 from 4 raw bytes, 16-bit
     types from 2), then x (d floats), each entry 1 byte instead when int8.

   Checks: every return code is one the header documents for that call and,
   where the inputs decide it, the expected one; argument errors leave the
   outputs untouched, data errors fill them with NaN; on ADASM_OK the rows
   are valid, distinct and ranked by their double logit, the probabilities
   finite, in [0, 1] and within eps of the truth when the answer came from
   the exact pass, log_norm finite, the counters in range; a second run in
   a dirtied workspace gives the same bits; the answer is the same bit for
   bit when A is scaled by 2^s and beta by 2^-s (and x likewise), whenever
   those scalings are exact (from the exact pass: the same rows, p and
   log_norm to float accuracy, see same_answer); adasm_ada_sample's draw
   is in range, and from the exact pass adasm_exact_sample's, bit for bit.

   Run (from the repository root; scripts/fuzz.sh does the same for every
   harness):
     clang -O1 -g -fsanitize=fuzzer,address,undefined \
       -fno-sanitize-recover=all -I. fuzz/fuzz_ada.c -o /tmp/fa -lm
     cp -r fuzz/corpus/fuzz_ada /tmp/work && /tmp/fa -max_total_time=120 /tmp/work */
#define ADASOFTMAX_IMPLEMENTATION
#include "../adasoftmax.h"
#include "fuzz_util.h"
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

static double scale_param(unsigned b) {
  switch (b) {
  case 0: return 1.0;
  case 1: return 0.1;
  case 2: return 0.01;
  case 3: return 1e-3;
  case 4: return 0.0;
  case 5: return 1.5;
  case 6: return nan("");
  default: return pow(2.0, -(double)b / 16.0);
  }
}

/* One entry of A or x as a float (raw bits, or int8 / 16). */
static float get_entry(fuzz_reader *r, int int8, adasm_pcg32 *g) {
  if (fuzz_left(r) >= (int8 ? 1u : 4u))
    return int8 ? (float)(signed char)fuzz_u8(r) / 16.0f : fuzz_f32_bits(r);
  r->left = 0;
  return ((float)adasm_pcg32_bounded(g, 256) - 128.0f) / 16.0f;
}
static uint16_t get_half(fuzz_reader *r, int int8, adasm_pcg32 *g, int bf) {
  if (!int8 && fuzz_left(r) >= 2u) return (uint16_t)fuzz_u16(r);
  {
    const float f = get_entry(r, int8, g);
    return bf ? adasm_f32_to_bf16(f) : adasm_f32_to_f16(f);
  }
}

static int finite_d(double v) { return v == v && v - v == 0.0; }

/* The double reference of the matrix's own values. */
static double entry(const adasm_matrix *M, size_t i, size_t j) {
  const size_t o = i * M->ld + j;
  if (M->dtype == ADASM_F32) return (double)((const float *)M->data)[o];
  if (M->dtype == ADASM_F16)
    return (double)adasm_f16_to_f32(((const uint16_t *)M->data)[o]);
  return (double)adasm_bf16_to_f32(((const uint16_t *)M->data)[o]);
}

/* Checks an answer: valid distinct rows ranked by their double logit
   (ties: lower row first), p in [0, 1], log_norm finite; from the exact
   pass, p and log_norm close to the double reference. */
static double check_answer(const adasm_matrix *M, const float *x, double beta,
                           const adasm_ada_params *p, const adasm_ada_result *o) {
  const size_t n = M->rows, d = M->cols, k = p->k;
  double z[MAXN], m = -HUGE_VAL, s = 0.0, lse, tol = 0.0, tolf = 0.0;
  size_t i, j, t;
  for (i = 0; i < n; ++i) {
    double a = 0.0, aa = 0.0;
    for (j = 0; j < d; ++j) {
      a += entry(M, i, j) * (double)x[j];
      aa += fabs(entry(M, i, j) * (double)x[j]);
    }
    z[i] = beta * a;
    m = z[i] > m ? z[i] : m;
    /* two double dot products in other orders differ by this much */
    if (2.0 * (double)d * 1.12e-16 * beta * aa > tol)
      tol = 2.0 * (double)d * 1.12e-16 * beta * aa;
    /* the exact pass's normalizer takes the rows that cannot reach the top
       k with float logits (as the exact path does): within this */
    if ((double)(d + 2) * 5.97e-8 * beta * aa + 1e-7 > tolf)
      tolf = (double)(d + 2) * 5.97e-8 * beta * aa + 1e-7;
  }
  for (i = 0; i < n; ++i) s += exp(z[i] - m);
  lse = m + log(s);
  if (!finite_d(o->log_norm)) fail("log_norm not finite", n, d, k, o->log_norm, lse);
  if (o->rounds > 12 || o->rows_exact > n)
    fail("counters out of range", n, d, k, (double)o->rounds, (double)o->rows_exact);
  for (t = 0; t < k; ++t) {
    const size_t r = o->idx[t];
    if (r >= n) fail("row out of range", n, d, k, (double)r, (double)n);
    for (j = 0; j < t; ++j)
      if (o->idx[j] == r) fail("row twice", n, d, k, (double)r, (double)t);
    if (!(o->prob[t] >= 0.0f && o->prob[t] <= 1.0f))
      fail("p not in [0, 1]", n, d, k, (double)o->prob[t], 0.0);
    /* (within the rounding of two double sums, either order: a tie here
       may not be one in the library's order of summation) */
    if (t > 0 && !(z[o->idx[t - 1]] > z[r] + tol ||
                   (z[o->idx[t - 1]] >= z[r] - tol &&
                    (z[o->idx[t - 1]] != z[r] || tol > 0.0)) ||
                   (z[o->idx[t - 1]] == z[r] && o->idx[t - 1] < r)))
      fail("rows not ranked by their double logit", n, d, k, z[r],
           z[o->idx[t - 1]]);
    if (o->exact && tol < 1e-7) { /* (else p is as rounded as the logits) */
      const double pt = exp(z[r] - lse);
      if (!(fabs((double)o->prob[t] - pt) <= (1e-5 + 2.0 * tolf) * pt + 1e-37))
        fail("exact pass: p", n, d, k, (double)o->prob[t], pt);
    }
  }
  if (o->exact && fabs(o->log_norm - lse) > 1e-6 * (1.0 + fabs(lse)) + 2.0 * tol + tolf)
    fail("exact pass: log_norm", n, d, k, o->log_norm, lse);
  if (o->exact) { /* the exact pass returns the exact top k */
    for (t = 0; t < k; ++t) {
      size_t above = 0;
      for (i = 0; i < n; ++i) above += z[i] > z[o->idx[t]] + 2.0 * tol;
      if (above >= k) fail("exact pass: not the top k", n, d, k, (double)above, (double)k);
    }
  }
  return tolf;
}

/* Two answers to one problem split differently between beta, A and x:
   the same bits, except that the exact pass's normalizer takes the rows
   outside the top-k candidates with float logits, and which rows are
   candidates may change where the float screen's products underflow:
   there p and log_norm agree to float accuracy: tolf, the float logits'
   error bound of check_answer (the rows still agree). */
static int same_answer(const adasm_ada_result *a, const adasm_ada_result *b,
                       size_t k, double tolf) {
  size_t t;
  if (memcmp(a->idx, b->idx, k * sizeof(size_t)) != 0 || a->madds != b->madds ||
      a->exact != b->exact)
    return 0;
  if (!a->exact)
    return memcmp(a->prob, b->prob, k * sizeof(float)) == 0 &&
           a->log_norm == b->log_norm;
  for (t = 0; t < k; ++t)
    if (!(fabs((double)a->prob[t] - (double)b->prob[t]) <=
          (1e-6 + 2.0 * tolf) * (double)a->prob[t] + 1e-37))
      return 0;
  return fabs(a->log_norm - b->log_norm) <= 1e-6 * (1.0 + fabs(a->log_norm)) + tolf;
}

/* x (or A) times 2^s, when every entry stays exact; 0 if one does not. */
static int scaled_f32(const float *v, size_t cnt, int s, float *out) {
  size_t i;
  for (i = 0; i < cnt; ++i) {
    out[i] = ldexpf(v[i], s);
    if (v[i] != 0.0f && (!(fabsf(out[i]) >= FLT_MIN) || fabsf(out[i]) > FLT_MAX ||
                         ldexpf(out[i], -s) != v[i] || !(fabsf(v[i]) >= FLT_MIN)))
      return 0;
  }
  return 1;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);
int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
  static float Af[MAXN * (MAXD + 3)], As[MAXN * (MAXD + 3)], x[MAXD], xs[MAXD];
  static uint16_t Ah[MAXN * (MAXD + 3)];
  static unsigned char work[1 << 17], work2[1 << 17];
  static const adasm_isa isas[4] = {ADASM_ISA_AUTO, ADASM_ISA_SCALAR,
                                    ADASM_ISA_AVX2, ADASM_ISA_AVX512};
  fuzz_reader r = fuzz_reader_init(data, size);
  const unsigned b0 = fuzz_u8(&r), b1 = fuzz_u8(&r), kb = fuzz_u8(&r);
  const unsigned flags = fuzz_u8(&r);
  const size_t n = (b0 & 63u) + 1, d = (b1 & 63u) + 1, ld = d + (b0 >> 6);
  const unsigned dt = b1 >> 6;
  const int int8 = (flags >> 1) & 1, own = flags & 1;
  adasm_ada_params p = adasm_ada_params_default();
  adasm_ada_index ix;
  adasm_ada_result o, o2;
  adasm_matrix M;
  adasm_pcg32 g;
  adasm_result rb, rq;
  size_t i, j, bytes = 0, idx[MAXN + 1], idx2[MAXN + 1];
  float prob[MAXN + 1], prob2[MAXN + 1];
  int sh, x_bad = 0, a_nan = 0, a_inf = 0;
  double tolf = 0.0;
  p.k = kb == 255 ? 0 : kb == 254 ? n + 1 : 1 + kb % n;
  if (flags & 4u) p.k = n;
  p.eps = prob_param(fuzz_u16(&r));
  p.delta = prob_param(fuzz_u16(&r));
  p.beta = beta_param(fuzz_u8(&r));
  p.ci_scale = scale_param(fuzz_u8(&r));
  sh = (int)(fuzz_u8(&r) % 41u) - 20;
  p.seed = fuzz_u64(&r);
  p.stream = fuzz_u16(&r);
  if (adasm_kernels_get(isas[(flags >> 3) & 3u], &p.kern) != ADASM_OK) p.kern = NULL;
  adasm_pcg32_seed(&g, p.seed, 5u);
  /* A in its dtype (an invalid dtype is read as f32 and refused) */
  for (i = 0; i < n; ++i)
    for (j = 0; j < ld; ++j) {
      if (dt == 1 || dt == 2) {
        Ah[i * ld + j] = get_half(&r, int8, &g, dt == 2);
        Af[i * ld + j] = dt == 1 ? adasm_f16_to_f32(Ah[i * ld + j])
                                 : adasm_bf16_to_f32(Ah[i * ld + j]);
      } else {
        Af[i * ld + j] = get_entry(&r, int8, &g);
      }
      if (j < d) {
        a_nan |= Af[i * ld + j] != Af[i * ld + j];
        a_inf |= Af[i * ld + j] == Af[i * ld + j] && isinf(Af[i * ld + j]);
      }
    }
  for (j = 0; j < d; ++j) {
    x[j] = get_entry(&r, int8, &g);
    if (x[j] != x[j]) x_bad = 1; /* NaN wins over inf */
    else if (isinf(x[j]) && x_bad == 0) x_bad = 2;
  }
  M = dt == 1 ? adasm_matrix_f16(Ah, n, d, ld)
      : dt == 2 ? adasm_matrix_bf16(Ah, n, d, ld)
                : adasm_matrix_f32(Af, n, d, ld);
  if (dt == 3) M.dtype = (adasm_dtype)3;
  rb = adasm_ada_index_build(&ix, &M, own ? ADASM_ADA_OWN_ROWS : 0u, NULL);
  if (dt == 3) {
    if (rb != ADASM_ERR_PARAM) fail("build: unknown dtype accepted", n, d, 0, rb, ADASM_ERR_PARAM);
    return 0;
  }
  if (a_nan) {
    if (rb != ADASM_ERR_NAN) fail("build: NaN in A", n, d, 0, rb, ADASM_ERR_NAN);
    return 0;
  }
  if (a_inf) {
    if (rb != ADASM_ERR_PARAM) fail("build: inf in A", n, d, 0, rb, ADASM_ERR_PARAM);
    return 0;
  }
  if (rb != ADASM_OK) fail("build failed", n, d, 0, rb, 0);
  if (own) memset(dt ? (void *)Ah : (void *)Af, 0xff, sizeof Af / (dt ? 2 : 1));

  rq = adasm_ada_workspace_size(&ix, &p, &bytes);
  memset(&o, 0, sizeof o);
  o.idx = idx;
  o.prob = prob;
  idx[0] = 12345;
  prob[0] = 7.0f;
  {
    const int arg_bad = p.k == 0 || p.k > n ? 1
                        : !(p.eps > 0.0 && p.eps < 1.0) ||
                                  !(p.delta > 0.0 && p.delta < 1.0) ||
                                  !(p.beta > 0.0f && p.beta <= FLT_MAX) ||
                                  !(p.ci_scale > 0.0 && p.ci_scale <= 1.0)
                            ? 2 : 0;
    if (arg_bad) {
      if (rq != (arg_bad == 1 ? ADASM_ERR_SIZE : ADASM_ERR_PARAM))
        fail("workspace_size: bad argument accepted", n, d, p.k, rq, 0);
      rq = adasm_ada_query(&ix, &p, x, work, sizeof work, &o);
      if (rq != (arg_bad == 1 ? ADASM_ERR_SIZE : ADASM_ERR_PARAM))
        fail("query: bad argument accepted", n, d, p.k, rq, 0);
      if (idx[0] != 12345 || prob[0] != 7.0f)
        fail("argument error wrote the outputs", n, d, p.k, prob[0], 7.0);
      adasm_ada_index_free(&ix);
      return 0;
    }
  }
  if (rq != ADASM_OK || bytes > sizeof work - 64)
    fail("workspace_size", n, d, p.k, rq, (double)bytes);
  if (flags & 32u) {
    rq = adasm_ada_query(&ix, &p, x, work, bytes - 1, &o);
    if (rq != ADASM_ERR_WORKSPACE) fail("short workspace accepted", n, d, p.k, rq, 0);
    adasm_ada_index_free(&ix);
    return 0;
  }
  {
    unsigned char *w = work + ((flags & 64u) ? 1 : 0);
    rq = adasm_ada_query(&ix, &p, x, w, bytes, &o);
  }
  if (x_bad) {
    if (rq != (x_bad == 1 ? ADASM_ERR_NAN : ADASM_ERR_PARAM))
      fail("query: non-finite x", n, d, p.k, rq, x_bad);
    for (i = 0; i < p.k; ++i)
      if (prob[i] == prob[i]) fail("data error: p not NaN", n, d, p.k, prob[i], 0);
    adasm_ada_index_free(&ix);
    return 0;
  }
  if (rq != ADASM_OK) fail("query failed", n, d, p.k, rq, 0);
  {
    /* the reference reads the caller's matrix: rebuild it for own rows */
    adasm_matrix R = ix.A;
    tolf = check_answer(&R, x, (double)p.beta, &p, &o);
  }
  /* the same bits from a dirtied workspace */
  memset(work2, 0xa5, sizeof work2);
  memset(&o2, 0, sizeof o2);
  o2.idx = idx2;
  o2.prob = prob2;
  if (adasm_ada_query(&ix, &p, x, work2, bytes, &o2) != ADASM_OK ||
      memcmp(idx, idx2, p.k * sizeof(size_t)) != 0 ||
      memcmp(prob, prob2, p.k * sizeof(float)) != 0 ||
      memcmp(&o.log_norm, &o2.log_norm, sizeof o.log_norm) != 0 ||
      o.madds != o2.madds)
    fail("dirty workspace: another answer", n, d, p.k, o2.log_norm, o.log_norm);
  /* estimate: finite, or NaN only where the query is */
  {
    double est[MAXN], var[MAXN];
    const size_t m = 1 + (size_t)(p.seed % d);
    if (adasm_ada_estimate(&ix, &p, x, m, work2, bytes, est, var) != ADASM_OK)
      fail("estimate failed", n, d, m, 0, 0);
    for (i = 0; i < n; ++i)
      if (!(var[i] >= 0.0) || est[i] != est[i])
        fail("estimate: NaN or negative variance", n, d, m, est[i], var[i]);
  }
  /* invariance: x 2^s with beta 2^-s; A 2^s with beta 2^-s (f32 only) */
  {
    const float bs = ldexpf(p.beta, -sh);
    if (bs >= FLT_MIN && bs <= FLT_MAX && ldexpf(bs, sh) == p.beta &&
        scaled_f32(x, d, sh, xs)) {
      adasm_ada_params ps = p;
      ps.beta = bs;
      memset(&o2, 0, sizeof o2);
      o2.idx = idx2;
      o2.prob = prob2;
      if (adasm_ada_query(&ix, &ps, xs, work2, bytes, &o2) != ADASM_OK ||
          !same_answer(&o, &o2, p.k, tolf))
        fail("x 2^s, beta 2^-s: another answer", n, d, p.k, o2.log_norm, o.log_norm);
    }
    if (dt == 0 && !own && bs >= FLT_MIN && bs <= FLT_MAX &&
        ldexpf(bs, sh) == p.beta) {
      int exact_scale = 1;
      for (i = 0; i < n && exact_scale; ++i)
        exact_scale = scaled_f32(Af + i * ld, d, sh, As + i * ld);
      if (exact_scale) {
        adasm_ada_index ixs;
        const adasm_matrix Ms = adasm_matrix_f32(As, n, d, ld);
        adasm_ada_params ps = p;
        ps.beta = bs;
        if (adasm_ada_index_build(&ixs, &Ms, 0u, NULL) != ADASM_OK)
          fail("scaled build failed", n, d, p.k, 0, 0);
        memset(&o2, 0, sizeof o2);
        o2.idx = idx2;
        o2.prob = prob2;
        if (adasm_ada_query(&ixs, &ps, x, work2, bytes, &o2) != ADASM_OK ||
            !same_answer(&o, &o2, p.k, tolf))
          fail("A 2^s, beta 2^-s: another answer", n, d, p.k, o2.log_norm,
               o.log_norm);
        adasm_ada_index_free(&ixs);
      }
    }
  }
  /* adaptive sampling: the chain from the parameters' bits; from the exact
     pass, the exact sampler's draw bit for bit */
  {
    adasm_ada_sample_params sp = adasm_ada_sample_params_default();
    adasm_ada_sample_result sr;
    adasm_sampler_result er;
    size_t sb = 0, eb = 0;
    adasm_result rs;
    sp.eps = p.eps;
    sp.delta = p.delta;
    sp.ci_scale = p.ci_scale;
    sp.chain.temperature = (float)(1.0 / (double)p.beta);
    if (!(sp.chain.temperature <= FLT_MAX)) sp.chain.temperature = 0.0f;
    sp.chain.top_k = (p.seed >> 8) % 3u == 0 ? p.k : 0;
    sp.chain.min_p = (float)((p.seed >> 16) & 3u) * 0.1f;
    sp.chain.top_p = ((p.seed >> 24) & 7u) == 0 ? 0.9f : 1.0f;
    sp.chain.seed = p.seed;
    sp.chain.stream = p.stream;
    sp.chain.draw = (p.seed >> 32) & 7u;
    sp.chain.kern = p.kern;
    rs = adasm_ada_sample_workspace_size(&ix, &sp, &sb);
    if (rs != ADASM_OK && rs != ADASM_ERR_PARAM)
      fail("ada_sample_workspace_size: undocumented error", n, d, p.k, rs, 0);
    if (rs == ADASM_OK) {
      if (sb > sizeof work2) fail("ada_sample workspace", n, d, p.k, 0, (double)sb);
      memset(work2, 0x5a, sizeof work2);
      rs = adasm_ada_sample(&ix, &sp, x, work2, sb, &sr);
      if (rs != ADASM_OK) { /* data errors of the float logits: the exact
                               pass meets the exact sampler's */
        const adasm_sampler_params ep = sp.chain;
        adasm_result re;
        if (rs != ADASM_ERR_NAN && rs != ADASM_ERR_NO_FINITE_MAX)
          fail("ada_sample: undocumented error", n, d, p.k, rs, 0);
        if (adasm_exact_sample_workspace_size(&ix.A, &ep, &eb) != ADASM_OK ||
            eb > sizeof work)
          fail("exact_sample workspace", n, d, p.k, 0, (double)eb);
        re = adasm_exact_sample(&ix.A, &ep, x, work, eb, &er);
        if (re != rs) fail("ada_sample: another error than the exact sampler's",
                           n, d, p.k, rs, re);
        adasm_ada_index_free(&ix);
        return 0;
      }
      /* (+inf logits in float are the chain's to handle: log_norm inf) */
      if (sr.token >= n || !(sr.p >= 0.0f && sr.p <= 1.0f) || sr.kept == 0 ||
          sr.kept > n || !(sr.exact || finite_d(sr.log_norm)))
        fail("ada_sample: answer out of range", n, d, p.k, (double)sr.token, sr.p);
      if (sr.exact) {
        const adasm_sampler_params ep = sp.chain;
        if (adasm_exact_sample_workspace_size(&ix.A, &ep, &eb) != ADASM_OK ||
            eb > sizeof work)
          fail("exact_sample workspace", n, d, p.k, 0, (double)eb);
        if (adasm_exact_sample(&ix.A, &ep, x, work, eb, &er) != ADASM_OK)
          fail("exact_sample failed", n, d, p.k, 0, 0);
        if (er.token != sr.token || er.p != sr.p || er.kept != sr.kept ||
            memcmp(&er.log_norm, &sr.log_norm, sizeof er.log_norm) != 0)
          fail("ada_sample exact pass: not the exact sampler's draw", n, d, p.k,
               (double)sr.token, (double)er.token);
      }
    }
  }
  /* calibration, on a few copies of x with different streams */
  if (flags & 128u) {
    adasm_ada_calibration cal;
    size_t cb;
    float X3[3 * MAXD];
    for (i = 0; i < 3; ++i) memcpy(X3 + i * d, x, d * sizeof(float));
    if (adasm_ada_calibrate_workspace_size(&ix, &p, 3, &cb) != ADASM_OK ||
        cb > sizeof work2)
      fail("calibrate workspace", n, d, p.k, 0, (double)cb);
    if (adasm_ada_calibrate(&ix, &p, X3, 3, d, 0.05, work2, cb, &cal) != ADASM_OK)
      fail("calibrate failed", n, d, p.k, 0, 0);
    /* 3 queries certify only when even no failure is unlikely at delta */
    if (cal.certified ? !(pow(1.0 - p.delta, 3.0) <= 0.05) || cal.failures > 3 ||
                            !(cal.ci_scale > 0.0 && cal.ci_scale <= 1.0)
                      : cal.ci_scale != 1.0)
      fail("calibrate: certificate", n, d, p.k, cal.ci_scale, p.delta);
    { /* the sampler's calibration: the same certificate's arithmetic, or
         the exact draws' data errors */
      adasm_ada_sample_params sp = adasm_ada_sample_params_default();
      adasm_result rc;
      sp.eps = p.eps;
      sp.delta = p.delta;
      sp.chain.seed = p.seed;
      sp.chain.top_k = (p.seed >> 8) % 3u == 0 ? p.k : 0;
      sp.chain.kern = p.kern;
      if (adasm_ada_sample_calibrate_workspace_size(&ix, &sp, 3, &cb) != ADASM_OK ||
          cb > sizeof work2)
        fail("sample calibrate workspace", n, d, p.k, 0, (double)cb);
      rc = adasm_ada_sample_calibrate(&ix, &sp, X3, 3, d, 0.05, work2, cb, &cal);
      if (rc != ADASM_OK && rc != ADASM_ERR_NAN && rc != ADASM_ERR_NO_FINITE_MAX)
        fail("sample calibrate failed", n, d, p.k, rc, 0);
      if (rc == ADASM_OK &&
          (cal.certified ? !(pow(1.0 - p.delta, 3.0) <= 0.05) || cal.failures > 3 ||
                               !(cal.ci_scale > 0.0 && cal.ci_scale <= 1.0)
                         : cal.ci_scale != 1.0))
        fail("sample calibrate: certificate", n, d, p.k, cal.ci_scale, p.delta);
    }
  }
  adasm_ada_index_free(&ix);
  return 0;
}

#ifdef FUZZ_ADA_SEEDS
/* Writes a few seed inputs to DIR (argv[1]). */
int main(int argc, char **argv) {
  static const unsigned char heads[][21] = {
      {39, 15, 0, 0, 0x40, 0x4d, 0x1a, 0x19, 128, 2, 20, 1, 2, 3, 4, 5, 6, 7, 8, 0, 0},
      {63, 63, 2, 2, 0x40, 0x4d, 0x1a, 0x19, 140, 3, 30, 9, 9, 9, 9, 9, 9, 9, 9, 1, 0},
      {20, 0x47, 1, 1, 0x40, 0x4d, 0x1a, 0x19, 120, 1, 5, 3, 0, 0, 0, 0, 0, 0, 0, 2, 0},
      {20, 0x87, 1, 3, 0x40, 0x4d, 0x1a, 0x19, 128, 2, 25, 4, 0, 0, 0, 0, 0, 0, 0, 3, 0},
      {7, 7, 2, 0x80 | 2, 0x40, 0x4d, 0x1a, 0x19, 128, 2, 20, 5, 0, 0, 0, 0, 0, 0, 0, 4, 0},
      {5, 5, 255, 0, 0, 0, 0, 0, 0, 6, 0, 6, 0, 0, 0, 0, 0, 0, 0, 0, 0}};
  size_t h;
  if (argc < 2) return 2;
  for (h = 0; h < sizeof heads / sizeof heads[0]; ++h) {
    char path[4096];
    FILE *f;
    size_t t;
    snprintf(path, sizeof path, "%s/seed-%lu", argv[1], (unsigned long)h);
    f = fopen(path, "wb");
    if (!f) return 1;
    fwrite(heads[h], 1, sizeof heads[h], f);
    for (t = 0; t < 600; ++t) putc((int)((t * 37u + h * 11u) & 0xffu), f);
    fclose(f);
  }
  return 0;
}
#endif
