/* Fuzzing the sampler chain: adasm_sample_logits and adasm_exact_sample on
   every ISA the CPU has, against the header's definition written out here.

   Input: a 24-byte header (parameters, raw float bits for some of them),
   up to 7 logit-bias entries and 15 history ids, then the logits as raw
   float32 bits (NaN, infinities, subnormals and huge values all appear),
   optionally repeated to make ties and longer vectors (n <= 2048).

   Checks:
   - argument errors: the code the header documents for each rule, checked
     here independently, and the outputs untouched;
   - data errors (a NaN logit after bias and penalties, all -inf): the
     documented code, NaN p, token 0, kept 0;
   - otherwise, unless the input lies within 1e-4 of a filter boundary
     (where float rounding may decide either way): kept = |K| and the token
     = the brute-force argmax of z/T + G_t over K (adasm_sample_gumbel) on
     every ISA; p within 1e-5 relative of the filtered probability (2e-6
     plus the float exp's error at large arguments); log_norm within 1e-6;
   - the fused pass over an n x 1 matrix holding z (so A x = z exactly; also
     f16 and bf16 copies) gives bit for bit what the chain gives on those
     logits. */
#define ADASOFTMAX_IMPLEMENTATION
#include "../adasoftmax.h"
#include "fuzz_util.h"
#include <float.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define MAXN 2048

static void fail(const char *what, const char *isa, double got, double want) {
  fprintf(stderr, "fuzz_sample: %s isa=%s got=%.17g want=%.17g\n", what, isa,
          got, want);
  abort();
}

static int is_nan(double x) { return x != x; }

/* ---- the definition (as in tests/test_sample.c) --------------------------- */
static int pen_on(const adasm_sampler_params *p) {
  return p->nhistory > 0 &&
         ((p->repetition_penalty != 0.0f && p->repetition_penalty != 1.0f) ||
          p->frequency_penalty != 0.0f || p->presence_penalty != 0.0f);
}

static void ref_adjust(const float *z, size_t n, const adasm_sampler_params *p,
                       float *out) {
  static size_t count[MAXN];
  const float r = p->repetition_penalty;
  size_t i;
  memcpy(out, z, n * sizeof(float));
  for (i = 0; i < p->nbias; ++i) {
    const size_t t = p->bias[i].token;
    out[t] = p->bias[i].bias == -INFINITY ? -INFINITY : out[t] + p->bias[i].bias;
  }
  memset(count, 0, n * sizeof(size_t));
  if (pen_on(p))
    for (i = 0; i < p->nhistory; ++i) count[p->history[i]]++;
  for (i = 0; i < n; ++i)
    if (count[i]) {
      float v = out[i];
      if (r != 0.0f && r != 1.0f) v = v > 0.0f ? v / r : v * r;
      out[i] = (float)((double)v - (double)count[i] * (double)p->frequency_penalty -
                       (double)p->presence_penalty);
    }
}

static const float *g_z;
static int cmp_order(const void *a, const void *b) {
  const size_t i = *(const size_t *)a, j = *(const size_t *)b;
  if (g_z[i] > g_z[j]) return -1;
  if (g_z[i] < g_z[j]) return 1;
  return (i > j) - (i < j);
}

/* Returns the expected code; on ADASM_OK fills K (in), |K|, q (the filtered
   probabilities), lse and the margin to the nearest boundary. */
static adasm_result ref_chain(const float *zb, size_t n,
                              const adasm_sampler_params *p, unsigned char *in,
                              double *q, size_t *kept, double *lse,
                              double *margin) {
  static size_t ord[MAXN];
  size_t i, L = 0, ninf = 0;
  double T = (double)p->temperature, m, S = 0.0, SK = 0.0;
  const int greedy = p->temperature < 1e-30f;
  memset(in, 0, n);
  *margin = HUGE_VAL;
  for (i = 0; i < n; ++i) {
    if (is_nan(zb[i])) return ADASM_ERR_NAN;
    ord[i] = i;
    ninf += zb[i] == INFINITY;
    L += zb[i] > -INFINITY;
  }
  if (L == 0) return ADASM_ERR_NO_FINITE_MAX;
  g_z = zb;
  qsort(ord, n, sizeof(size_t), cmp_order);
  m = (double)zb[ord[0]];
  if (greedy) T = 1.0;
  if (ninf) {
    L = greedy ? 1 : ninf;
    if (!greedy && p->top_k > 0 && p->top_k < L) L = p->top_k;
    if (!greedy && p->top_p > 0.0f && p->top_p < 1.0f) {
      const double c = ceil((double)p->top_p * (double)L);
      if (c < (double)L) L = c < 1.0 ? 1 : (size_t)c;
    }
    for (i = 0; i < L; ++i) {
      in[ord[i]] = 1;
      q[ord[i]] = 1.0 / (double)L;
    }
    *kept = L;
    *lse = INFINITY;
    return ADASM_OK;
  }
  for (i = 0; i < n; ++i) S += exp(((double)zb[i] - m) / T);
  *lse = m / T + log(S);
  if (greedy) {
    in[ord[0]] = 1;
    q[ord[0]] = 1.0;
    *kept = 1;
    return ADASM_OK;
  }
  if (p->top_k > 0 && p->top_k < L) L = p->top_k;
  if (p->top_p > 0.0f && p->top_p < 1.0f) {
    double Sk = 0.0, cum = 0.0;
    size_t Lp = L;
    for (i = 0; i < L; ++i) Sk += exp(((double)zb[ord[i]] - m) / T);
    for (i = 0; i < L; ++i) {
      cum += exp(((double)zb[ord[i]] - m) / T);
      if (fabs(cum - (double)p->top_p * Sk) / Sk < *margin)
        *margin = fabs(cum - (double)p->top_p * Sk) / Sk;
      if (cum >= (double)p->top_p * Sk) {
        Lp = i + 1;
        break;
      }
    }
    L = Lp;
  }
  if (p->min_p > 0.0f) {
    const double thr = m + T * log((double)p->min_p);
    size_t Lm = 0;
    while (Lm < L && (double)zb[ord[Lm]] >= thr) ++Lm;
    L = Lm;
  }
  for (i = 0; i < L; ++i) {
    in[ord[i]] = 1;
    SK += exp(((double)zb[ord[i]] - m) / T);
  }
  for (i = 0; i < L; ++i) q[ord[i]] = exp(((double)zb[ord[i]] - m) / T) / SK;
  *kept = L;
  return ADASM_OK;
}

static size_t ref_draw(const float *zb, size_t n, const adasm_sampler_params *p,
                       const unsigned char *in, int special) {
  size_t i, best = n;
  double b = -HUGE_VAL;
  for (i = 0; i < n; ++i)
    if (in[i]) {
      const double s = special ? 0.0 : (double)zb[i] / (double)p->temperature;
      const double key = s + adasm_sample_gumbel(p->seed, p->stream, p->draw, i);
      if (best == n || key > b) {
        b = key;
        best = i;
      }
    }
  return best;
}

/* The argument rules of the header, checked independently. */
static adasm_result ref_args(size_t n, const adasm_sampler_params *p) {
  size_t i;
  if ((p->nbias && !p->bias) || (p->nhistory && !p->history)) return ADASM_ERR_NULL;
  if (n == 0) return ADASM_ERR_SIZE;
  if (is_nan(p->temperature) || isinf(p->temperature) || p->temperature < 0.0f)
    return ADASM_ERR_PARAM;
  if (!(p->top_p >= 0.0f && p->top_p <= 1.0f)) return ADASM_ERR_PARAM;
  if (!(p->min_p >= 0.0f && p->min_p <= 1.0f)) return ADASM_ERR_PARAM;
  if (!isfinite(p->repetition_penalty) || p->repetition_penalty < 0.0f)
    return ADASM_ERR_PARAM;
  if (!isfinite(p->frequency_penalty) || !isfinite(p->presence_penalty))
    return ADASM_ERR_PARAM;
  if (p->draw >= ((uint64_t)1 << 31)) return ADASM_ERR_PARAM;
  for (i = 0; i < p->nbias; ++i)
    if (p->bias[i].token >= n || is_nan(p->bias[i].bias) || p->bias[i].bias == INFINITY)
      return ADASM_ERR_PARAM;
  for (i = 0; i < p->nhistory; ++i)
    if (p->history[i] >= n) return ADASM_ERR_PARAM;
  return ADASM_OK;
}

static int same_result(const adasm_sampler_result *a, const adasm_sampler_result *b) {
  return a->token == b->token && a->kept == b->kept &&
         (a->p == b->p || (is_nan(a->p) && is_nan(b->p))) &&
         (a->log_norm == b->log_norm || (is_nan(a->log_norm) && is_nan(b->log_norm)));
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);
int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
  static const float Ts[8] = {0.0f, 1.0f, 0.5f, 2.0f, 0.0f, 1e-20f, 1e20f, 0.05f};
  static const float Ps[4] = {0.0f, 0.5f, 0.9f, 0.99f};
  static const float Ms[4] = {0.0f, 0.01f, 0.1f, 0.5f};
  static float base[MAXN], z[MAXN], zb[MAXN], A[MAXN];
  static uint16_t A16[MAXN];
  static double q[MAXN];
  static unsigned char in[MAXN], work[MAXN * 32 + 1024];
  adasm_logit_bias bias[7];
  size_t hist[15], nb, nh, cnt, n, rep, i, kept = 0, bytes = 0, want_t = 0;
  adasm_sampler_params p;
  adasm_sampler_result out, first = {0, 0.0f, 0.0, 0, 0};
  adasm_result want_args, want;
  double lse = 0.0, margin = HUGE_VAL;
  int isa, have_first = 0, raw;
  fuzz_reader h, r;
  unsigned b0, b1;
  if (size < 24) return 0;
  h = fuzz_reader_init(data, size); /* the header, its fields at fixed places */
  r = h;
  fuzz_skip(&r, 24);
  b0 = fuzz_u8_at(&h, 0);
  b1 = fuzz_u8_at(&h, 1);
  p = adasm_sampler_params_default();
  raw = (b1 >> 4) & 1; /* raw bits: parameters may be invalid */
  p.temperature = (b0 & 7) == 4 || raw ? fuzz_f32_at(&h, 14) : Ts[b0 & 7];
  p.top_k = (b0 & 8) ? fuzz_u16_at(&h, 2) : 0;
  if (b0 & 16) p.top_p = raw && (b1 & 3) == 0 ? fuzz_f32_at(&h, 18) : Ps[b1 & 3];
  if (b0 & 32) {
    uint32_t u = fuzz_u32_at(&h, 18) ^ 0x5a5a5a5au;
    memcpy(&p.min_p, &u, sizeof u);
    if (!(raw && ((b1 >> 2) & 3) == 0)) p.min_p = Ms[(b1 >> 2) & 3];
  }
  p.seed = fuzz_u32_at(&h, 4);
  p.stream = fuzz_u16_at(&h, 8);
  p.draw = raw ? fuzz_u32_at(&h, 10) : fuzz_u32_at(&h, 10) & 0x7fffffffu;
  nb = (b0 & 128) ? fuzz_u8_at(&h, 22) % 8 : 0;
  nh = (b0 & 64) ? fuzz_u8_at(&h, 23) % 16 : 0;
  rep = (b1 & 0x80u) ? 9u + (size_t)(fuzz_u8_at(&h, 12) % 8u) * 8u : 1u; /* copies */
  if (fuzz_left(&r) < nb * 6 + nh * 2) return 0;
  for (i = 0; i < nb; ++i) {
    bias[i].token = fuzz_u16(&r);
    bias[i].bias = fuzz_f32_bits(&r);
    if (!raw && !(bias[i].bias <= 3e38f)) bias[i].bias = -INFINITY; /* ban */
  }
  for (i = 0; i < nh; ++i) hist[i] = fuzz_u16(&r);
  if (nh) {
    uint32_t u = fuzz_u32_at(&h, 18) ^ 0x12345678u;
    p.history = hist;
    p.nhistory = nh;
    memcpy(&p.repetition_penalty, &u, sizeof u);
    if (!raw) p.repetition_penalty = 1.0f + (float)(fuzz_u8_at(&h, 13) % 8) * 0.25f;
    p.frequency_penalty = (float)(int)(fuzz_u8_at(&h, 13) >> 4) * 0.125f - 1.0f;
    p.presence_penalty = (float)(fuzz_u8_at(&h, 15) % 5) * 0.5f;
  }
  if (nb) {
    p.bias = bias;
    p.nbias = nb;
  }
  cnt = fuzz_left(&r) / 4;
  if (cnt == 0) return 0;
  if (cnt > MAXN) cnt = MAXN;
  for (i = 0; i < cnt; ++i) base[i] = fuzz_f32_bits(&r);
  n = cnt * rep > MAXN ? MAXN : cnt * rep;
  for (i = 0; i < n; ++i) z[i] = base[i % cnt]; /* copies: exact ties */
  if (!raw) { /* ids in range (mostly) */
    for (i = 0; i < nb; ++i) bias[i].token %= n + (fuzz_u8_at(&h, 15) & 1);
    for (i = 0; i < nh; ++i) hist[i] %= n + (fuzz_u8_at(&h, 15) >> 1 & 1);
  }

  want_args = ref_args(n, &p);
  if (want_args == ADASM_OK) {
    ref_adjust(z, n, &p, zb);
    want = ref_chain(zb, n, &p, in, q, &kept, &lse, &margin);
    if (want == ADASM_OK && margin >= 1e-4)
      want_t = ref_draw(zb, n, &p, in, lse == INFINITY);
  } else {
    want = want_args;
  }
  for (isa = ADASM_ISA_SCALAR; isa < ADASM_ISA_COUNT; ++isa) {
    const adasm_kernels *k;
    const char *name = adasm_isa_name((adasm_isa)isa);
    adasm_result r;
    if (adasm_kernels_get((adasm_isa)isa, &k) != ADASM_OK) continue;
    p.kern = k;
    r = adasm_sample_logits_workspace_size(n, &p, &bytes);
    if (r != want_args) fail("workspace_size result", name, r, want_args);
    if (r == ADASM_OK && bytes + 1 > sizeof work) fail("workspace size", name, (double)bytes, 0);
    memset(&out, 0x77, sizeof out);
    r = adasm_sample_logits(z, n, &p, work + 1, r == ADASM_OK ? bytes : sizeof work - 1, &out);
    if (r != want) fail("result", name, r, want);
    if (want_args != ADASM_OK) {
      adasm_sampler_result u;
      memset(&u, 0x77, sizeof u);
      if (memcmp(&u, &out, sizeof u) != 0) fail("outputs written on an argument error", name, 0, 0);
      continue;
    }
    if (r != ADASM_OK) {
      if (!is_nan(out.p) || out.token != 0 || out.kept != 0) fail("data error fill", name, out.p, 0);
      if (r == ADASM_ERR_NAN && !is_nan(out.log_norm)) fail("NaN log_norm", name, out.log_norm, 0);
      if (r == ADASM_ERR_NO_FINITE_MAX && out.log_norm != -INFINITY)
        fail("-inf log_norm", name, out.log_norm, -INFINITY);
    } else {
      if (out.token >= n) fail("token out of range", name, (double)out.token, 0);
      if (margin >= 1e-4 && !in[out.token])
        fail("token outside K", name, (double)out.token, 0);
      if (margin >= 1e-4) {
        const int special = lse == INFINITY;
        if (out.kept != kept) fail("kept", name, (double)out.kept, (double)kept);
        if (out.token != want_t) fail("token", name, (double)out.token, (double)want_t);
        if (!(fabs((double)out.p - q[out.token]) <= 1e-5 * q[out.token] + 1e-30))
          fail("p", name, out.p, q[out.token]);
        if (special ? out.log_norm != INFINITY
                    : !(fabs(out.log_norm - lse) <= 1e-6 * fmax(1.0, fabs(lse))))
          fail("log_norm", name, out.log_norm, lse);
      }
      if (!have_first) {
        first = out;
        have_first = 1;
      } else if (margin >= 1e-4 && (out.token != first.token || out.kept != first.kept)) {
        fail("ISAs disagree", name, (double)out.token, (double)first.token);
      }
    }
    /* the fused pass over an n x 1 matrix: A x = z exactly (x = 1) */
    if (((b1 >> 5) & 3) != 3) {
      const int dt = (b1 >> 5) & 3;
      const float one = 1.0f;
      adasm_matrix M;
      adasm_sampler_result fu, ch;
      adasm_result rf, rc;
      size_t fb = 0;
      if (dt == 0) {
        memcpy(A, z, n * sizeof(float));
        M = adasm_matrix_f32(A, n, 1, 1);
      } else {
        for (i = 0; i < n; ++i) {
          A16[i] = dt == 1 ? adasm_f32_to_f16(z[i]) : adasm_f32_to_bf16(z[i]);
          A[i] = dt == 1 ? adasm_f16_to_f32(A16[i]) : adasm_bf16_to_f32(A16[i]);
        }
        M = dt == 1 ? adasm_matrix_f16(A16, n, 1, 1) : adasm_matrix_bf16(A16, n, 1, 1);
      }
      rf = adasm_exact_sample_workspace_size(&M, &p, &fb);
      if (rf != want_args) fail("fused workspace result", name, rf, want_args);
      if (rf != ADASM_OK) continue;
      if (fb > sizeof work) fail("fused workspace size", name, (double)fb, 0);
      memset(&fu, 0, sizeof fu);
      memset(&ch, 0, sizeof ch);
      rf = adasm_exact_sample(&M, &p, &one, work, fb, &fu);
      rc = adasm_sample_logits(A, n, &p, work, sizeof work, &ch);
      {
        /* bf16 rows may go through vdpbf16ps, which flushes subnormal
           entries to zero (the documented 2^-123 term): with one, the
           fused logits are not the widened values bit for bit */
        int sub = 0;
        for (i = 0; dt == 2 && i < n; ++i)
          sub |= A[i] != 0.0f && fabsf(A[i]) < FLT_MIN;
        if (sub) continue;
      }
      if (rf != rc) fail("fused result", name, rf, rc);
      if (!same_result(&fu, &ch)) fail("fused output", name, (double)fu.token, (double)ch.token);
      if (fu.madds != (uint64_t)n) fail("fused madds", name, (double)fu.madds, (double)n);
    }
  }
  return 0;
}
