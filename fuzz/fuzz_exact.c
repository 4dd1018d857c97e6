/* Differential fuzzing of the exact kernels: every ISA the CPU has against
   a double-precision reference and against each other, on inputs whose
   floats come straight from the fuzzer's bytes (NaN, Inf, subnormals, huge
   magnitudes all appear). The bounds are the ones the header states. */
#define ADASOFTMAX_IMPLEMENTATION
#include "../adasoftmax.h"
#include "fuzz_util.h"
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define MAXN 4096

static void fail(const char *what, const char *isa, size_t n, size_t i,
                 double got, double want) {
  fprintf(stderr, "fuzz_exact: %s isa=%s n=%zu i=%zu got=%.9g want=%.9g\n",
          what, isa, n, i, got, want);
  abort();
}

static int isnan_d(double x) { return x != x; }

/* Reference softmax in double; returns the adasm_result the policy asks for. */
static double ref_logp[MAXN]; /* (z - m) - log S: exact even for huge m */

static adasm_result ref_softmax(const float *z, size_t n, double *p,
                                double *lse) {
  double m = -INFINITY, s = 0;
  size_t i, ninf = 0;
  for (i = 0; i < n; ++i) {
    if (isnan_d(z[i])) return ADASM_ERR_NAN;
    if (z[i] > m) m = z[i];
  }
  if (m == -INFINITY) return ADASM_ERR_NO_FINITE_MAX;
  if (m == INFINITY) {
    for (i = 0; i < n; ++i) ninf += z[i] == INFINITY;
    for (i = 0; i < n; ++i) p[i] = z[i] == INFINITY ? 1.0 / (double)ninf : 0.0;
    *lse = INFINITY;
    return ADASM_OK;
  }
  for (i = 0; i < n; ++i) s += exp((double)z[i] - m);
  for (i = 0; i < n; ++i) p[i] = exp((double)z[i] - m) / s;
  for (i = 0; i < n; ++i) ref_logp[i] = ((double)z[i] - m) - log(s);
  *lse = m + log(s);
  return ADASM_OK;
}

static void check_probs(const char *what, const char *isa, const float *got,
                        const double *ref, size_t n) {
  size_t i;
  double sum = 0;
  for (i = 0; i < n; ++i) {
    double g = got[i], r = ref[i];
    if (!(g >= 0.0) || g > 1.0 + 1e-6) fail(what, isa, n, i, g, r);
    if (r >= 1e-30 && fabs(g - r) > 1e-6 * r) fail(what, isa, n, i, g, r);
    if (r < 1e-30 && g > 1e-29) fail(what, isa, n, i, g, r);
    sum += g;
  }
  if (fabs(sum - 1.0) > 1e-6) fail("sum", isa, n, 0, sum, 1.0);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);
int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
  static float z[MAXN], out[MAXN];
  static double ref[MAXN];
  static size_t idx[MAXN];
  size_t n, i, topk;
  int isa, op;
  double lse_ref = 0.0;
  adasm_result want;
  fuzz_reader rd = fuzz_reader_init(data, size);
  if (size < 3) return 0;
  op = (int)(fuzz_u8(&rd) % 4u);
  topk = (size_t)fuzz_u8(&rd) + 1;
  n = fuzz_left(&rd) / 4 > MAXN ? MAXN : fuzz_left(&rd) / 4;
  for (i = 0; i < n; ++i) z[i] = fuzz_f32_bits(&rd);
  want = ref_softmax(z, n, ref, &lse_ref);
  if (n == 0) want = ADASM_OK;
  for (isa = ADASM_ISA_SCALAR; isa < ADASM_ISA_COUNT; ++isa) {
    const adasm_kernels *k;
    const char *name = adasm_isa_name((adasm_isa)isa);
    adasm_result r;
    if (adasm_kernels_get((adasm_isa)isa, &k) != ADASM_OK) continue;
    if (op == 0) { /* every softmax algorithm */
      int algo;
      for (algo = 0; algo < 4; ++algo) {
        r = adasm_softmax_ex(k, (adasm_softmax_algo)algo, z, n, out);
        if (r != want) fail("softmax result", name, n, (size_t)algo, r, want);
        if (r == ADASM_OK && n > 0) check_probs("softmax", name, out, ref, n);
        if (r == ADASM_ERR_NAN || r == ADASM_ERR_NO_FINITE_MAX)
          for (i = 0; i < n; ++i)
            if (!isnan_d(out[i])) fail("nan fill", name, n, i, out[i], NAN);
      }
      { /* adasm_softmax is AUTO (algo 0), bit for bit */
        static float out0[MAXN];
        const adasm_result r0 = adasm_softmax_ex(k, ADASM_SOFTMAX_AUTO, z, n, out0);
        r = adasm_softmax(k, z, n, out);
        if (r != r0 || (n > 0 && memcmp(out, out0, n * sizeof(float)) != 0))
          fail("adasm_softmax is not AUTO", name, n, 0, r, r0);
      }
    } else if (op == 1) { /* log-softmax and logsumexp */
      double lse;
      r = adasm_log_softmax(k, z, n, out);
      if (r != want) fail("log_softmax result", name, n, 0, r, want);
      if (r == ADASM_OK && lse_ref != INFINITY)
        for (i = 0; i < n; ++i) {
          double rr = ref_logp[i];
          if (ref[i] >= 1e-30 && fabs(out[i] - rr) > 1e-6 * fmax(1.0, fabs(rr)))
            fail("log_softmax", name, n, i, out[i], rr);
        }
      r = adasm_logsumexp(k, z, n, &lse);
      if (r != want) fail("logsumexp result", name, n, 0, r, want);
      if (r == ADASM_OK && n > 0 && fabs(lse - lse_ref) > 1e-6 * fmax(1.0, fabs(lse_ref)) &&
          lse != lse_ref)
        fail("logsumexp", name, n, 0, lse, lse_ref);
    } else if (op == 2 && n > 0) { /* fused top-k */
      double ln;
      size_t kk = topk > n ? n : topk, j;
      r = adasm_softmax_topk(k, z, n, kk, idx, out, &ln);
      if (r != want) fail("topk result", name, n, 0, r, want);
      if (r != ADASM_OK) continue;
      for (j = 0; j < kk; ++j) {
        if (idx[j] >= n) fail("topk index", name, n, j, (double)idx[j], 0);
        if (ref[idx[j]] >= 1e-30 && fabs(out[j] - ref[idx[j]]) > 1e-6 * ref[idx[j]])
          fail("topk prob", name, n, j, out[j], ref[idx[j]]);
        if (j > 0 && (z[idx[j]] > z[idx[j - 1]] ||
                      (z[idx[j]] == z[idx[j - 1]] && idx[j] < idx[j - 1])))
          fail("topk order", name, n, j, z[idx[j]], z[idx[j - 1]]);
      }
      /* nothing left out is better than the k-th kept entry */
      for (i = 0; i < n; ++i) {
        int kept = 0;
        for (j = 0; j < kk; ++j) kept |= idx[j] == i;
        if (!kept && !isnan_d(z[i]) &&
            (z[i] > z[idx[kk - 1]] || (z[i] == z[idx[kk - 1]] && i < idx[kk - 1])))
          fail("topk missed", name, n, i, z[i], z[idx[kk - 1]]);
      }
    } else if (op == 3 && n > 0) { /* sampling never picks a zero-mass class */
      adasm_sample_params sp = adasm_sample_params_default();
      adasm_pcg32 g;
      size_t pick, need;
      /* adasm_sample_logits_workspace_size: at most 24 n bytes + 512 */
      static unsigned char work[MAXN * 24 + 576];
      sp.top_k = topk % 3 == 0 ? 0 : topk;
      sp.top_p = (float)(topk % 5) * 0.2f;
      sp.temperature = (float)(topk % 7) * 0.5f;
      adasm_pcg32_seed(&g, 1, 2);
      if (adasm_sample_workspace_size(n, &sp, &need) != ADASM_OK) fail("ws", name, n, 0, 0, 0);
      if (need > sizeof work - 1) fail("ws size", name, n, 0, (double)need, 0);
      r = adasm_sample(k, z, n, &sp, &g, work + 1, need, &pick); /* misaligned */
      if (r != (want == ADASM_OK ? ADASM_OK : want)) fail("sample result", name, n, 0, r, want);
      if (r == ADASM_OK && (pick >= n || ref[pick] == 0.0))
        fail("sample pick", name, n, pick, pick < n ? ref[pick] : -1.0, 0);
    }
  }
  return 0;
}
