/* test_compile_c.c - the whole header, implementation included, compiled as
   C99 under the project's strict warnings and linked into a program; every
   public function is called once and its result checked against a property
   of its contract (values computed here in double with libm). The C++ twin
   is test_compile_cpp.cpp. Returns 0 when every check passes. */
#define ADASOFTMAX_IMPLEMENTATION
#include "adasoftmax.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>

static int failures;

#define CHECK(cond)                                                            \
  do {                                                                         \
    if (!(cond)) {                                                             \
      failures++;                                                              \
      fprintf(stderr, "%s:%d: FAILED %s\n", __FILE__, __LINE__, #cond);        \
    }                                                                          \
  } while (0)

/* |a - b| <= rel * |b| (+ a tiny absolute floor for b = 0) */
static int close_rel(double a, double b, double rel) {
  return fabs(a - b) <= rel * fabs(b) + 1e-30;
}

#define N 5

int main(void) {
  static const float z[N] = {1.0f, 2.0f, 3.0f, 4.0f, 5.0f};
  const adasm_kernels *k = NULL;
  float p[N], lp[N], prob[2];
  double ref_lse = 0.0, lse = 0.0, log_norm = 0.0, sum = 0.0;
  size_t idx[2], i, pick = N, bytes = 0;
  adasm_sample_params sp;
  adasm_pcg32 rng;
  void *work = NULL;
  int isa;

  /* reference: log(sum exp(z)) in double */
  for (i = 0; i < N; i++) ref_lse += exp((double)z[i]);
  ref_lse = log(ref_lse);

  /* errors and ISAs */
  CHECK(adasm_result_string(ADASM_OK) != NULL);
  CHECK(adasm_result_string(ADASM_ERR_NAN) != NULL);
  for (isa = ADASM_ISA_AUTO; isa < ADASM_ISA_COUNT; isa++)
    CHECK(adasm_isa_name((adasm_isa)isa) != NULL);
  CHECK(adasm_isa_supported(ADASM_ISA_SCALAR) == 1);
  CHECK(adasm_isa_supported(adasm_isa_best()) == 1);
  CHECK(adasm_kernels_get(ADASM_ISA_AUTO, &k) == ADASM_OK && k != NULL);
  CHECK(k != NULL && adasm_kernels_isa(k) == adasm_isa_best());

  /* softmax family */
  CHECK(adasm_softmax(k, z, N, p) == ADASM_OK);
  for (i = 0; i < N; i++) {
    sum += (double)p[i];
    CHECK(close_rel((double)p[i], exp((double)z[i] - ref_lse), 1e-6));
  }
  CHECK(fabs(sum - 1.0) < 1e-6);
  CHECK(adasm_softmax_ex(NULL, ADASM_SOFTMAX_ONLINE, z, N, p) == ADASM_OK);
  CHECK(close_rel((double)p[N - 1], exp((double)z[N - 1] - ref_lse), 1e-6));
  CHECK(adasm_log_softmax(NULL, z, N, lp) == ADASM_OK);
  for (i = 0; i < N; i++)
    CHECK(fabs((double)lp[i] - ((double)z[i] - ref_lse)) <=
          1e-6 * fmax(1.0, fabs((double)z[i] - ref_lse)));
  CHECK(adasm_logsumexp(NULL, z, N, &lse) == ADASM_OK);
  CHECK(fabs(lse - ref_lse) < 1e-6);
  CHECK(adasm_softmax_topk(NULL, z, N, 2, idx, prob, &log_norm) == ADASM_OK);
  CHECK(idx[0] == 4 && idx[1] == 3);
  CHECK(close_rel((double)prob[0], exp(5.0 - ref_lse), 1e-6));
  CHECK(fabs(log_norm - ref_lse) < 1e-6);
  CHECK(adasm_softmax(NULL, NULL, N, p) == ADASM_ERR_NULL);

  /* sampling: greedy is the argmax; plain sampling returns a valid index */
  sp = adasm_sample_params_default();
  CHECK(sp.temperature == 1.0f && sp.top_k == 0);
  adasm_pcg32_seed(&rng, 42u, 54u);
  CHECK(adasm_sample_workspace_size(N, &sp, &bytes) == ADASM_OK);
  if (bytes > 0) work = malloc(bytes);
  CHECK(bytes == 0 || work != NULL);
  CHECK(adasm_sample(NULL, z, N, &sp, &rng, work, bytes, &pick) == ADASM_OK);
  CHECK(pick < N);
  free(work);
  sp.temperature = 0.0f;
  CHECK(adasm_sample_workspace_size(N, &sp, &bytes) == ADASM_OK);
  work = bytes > 0 ? malloc(bytes) : NULL;
  CHECK(bytes == 0 || work != NULL);
  CHECK(adasm_sample(NULL, z, N, &sp, &rng, work, bytes, &pick) == ADASM_OK);
  CHECK(pick == N - 1);
  free(work);

  /* PCG32 */
  adasm_pcg32_seed(&rng, 42u, 54u);
  CHECK(adasm_pcg32_next(&rng) == 0xa15c02b7u); /* pcg-c-basic demo */
  CHECK(adasm_pcg32_bounded(&rng, 10u) < 10u);
  CHECK(adasm_pcg32_bounded64(&rng, 10u) < 10u);
  {
    float u = adasm_pcg32_uniform(&rng);
    double uo = adasm_pcg32_uniform_open(&rng);
    float g = adasm_pcg32_gumbel(&rng);
    CHECK(u >= 0.0f && u < 1.0f);
    CHECK(uo > 0.0 && uo < 1.0);
    CHECK(isfinite(g));
  }
  {
    adasm_pcg32 a, b;
    adasm_pcg32_seed(&a, 1u, 2u);
    b = a;
    adasm_pcg32_advance(&a, 3u);
    (void)adasm_pcg32_next(&b);
    (void)adasm_pcg32_next(&b);
    (void)adasm_pcg32_next(&b);
    CHECK(adasm_pcg32_next(&a) == adasm_pcg32_next(&b));
  }

  /* exact softmax(A x): A is 3 x 2 with lda 3 (one padding column) */
  {
    static const float A[3 * 3] = {1.0f, 0.0f, 99.0f, /* row 0 */
                                   0.0f, 1.0f, 99.0f, /* row 1 */
                                   1.0f, 1.0f, 99.0f};
    static const float x[2] = {0.5f, 2.0f};
    const float beta = 2.0f;
    float logits[3], gp[1];
    size_t top[1];
    double ln = 0.0, ref_ln = 0.0, ref_logit[3];
    size_t r;
    for (r = 0; r < 3; r++) {
      ref_logit[r] = (double)beta * ((double)A[r * 3] * 0.5 +
                                     (double)A[r * 3 + 1] * 2.0);
      ref_ln += exp(ref_logit[r]);
    }
    ref_ln = log(ref_ln);
    CHECK(adasm_gemv_softmax_topk(NULL, A, 3, 2, 3, x, beta, 1, top, gp, &ln,
                                  logits) == ADASM_OK);
    CHECK(top[0] == 2);
    CHECK(fabs(ln - ref_ln) < 1e-6 * fabs(ref_ln) + 1e-6);
    CHECK(close_rel((double)gp[0], exp(ref_logit[2] - ref_ln), 1e-6));
    for (r = 0; r < 3; r++)
      CHECK(close_rel((double)logits[r], ref_logit[r], 1e-6));
  }

  /* the sampler chain: greedy is the argmax; a bias can make another
     token the argmax; the fused pass equals the chain on its logits; the
     Gumbel of the definition is finite */
  {
    static const float A[3 * 2] = {1.0f, 0.0f, 0.0f, 1.0f, 1.0f, 1.0f};
    static const float x[2] = {0.5f, 2.0f};
    static const float logit[3] = {0.5f, 2.0f, 2.5f};
    adasm_sampler_params q = adasm_sampler_params_default();
    adasm_sampler_result a, b;
    adasm_logit_bias bias;
    adasm_matrix M = adasm_matrix_f32(A, 3, 2, 2);
    size_t need = 0;
    void *w;
    CHECK(q.temperature == 1.0f && q.seed == 42u && q.top_k == 0);
    q.temperature = 0.0f;
    CHECK(adasm_sample_logits(z, N, &q, NULL, 0, &a) == ADASM_OK);
    CHECK(a.token == N - 1 && a.p == 1.0f && a.kept == 1 && a.madds == 0);
    CHECK(fabs(a.log_norm - ref_lse) < 1e-6);
    bias.token = 0;
    bias.bias = 10.0f;
    q.bias = &bias;
    q.nbias = 1;
    CHECK(adasm_sample_logits_workspace_size(N, &q, &need) == ADASM_OK);
    w = malloc(need);
    CHECK(w != NULL);
    CHECK(adasm_sample_logits(z, N, &q, w, need, &a) == ADASM_OK && a.token == 0);
    free(w);
    q = adasm_sampler_params_default();
    q.top_k = 2;
    q.draw = 3;
    CHECK(adasm_exact_sample_workspace_size(&M, &q, &need) == ADASM_OK);
    w = malloc(need);
    CHECK(w != NULL);
    CHECK(adasm_exact_sample(&M, &q, x, w, need, &a) == ADASM_OK);
    free(w);
    CHECK(adasm_sample_logits_workspace_size(3, &q, &need) == ADASM_OK);
    w = malloc(need);
    CHECK(w != NULL);
    CHECK(adasm_sample_logits(logit, 3, &q, w, need, &b) == ADASM_OK);
    free(w);
    CHECK(a.token == b.token && a.p == b.p && a.log_norm == b.log_norm &&
          a.kept == 2 && a.madds == 6 && (a.token == 1 || a.token == 2));
    CHECK(isfinite(adasm_sample_gumbel(1u, 2u, 3u, 4u)));
  }

  if (failures) {
    fprintf(stderr, "test_compile_c: %d checks FAILED\n", failures);
    return 1;
  }
  printf("test_compile_c: ok (best ISA %s)\n", adasm_isa_name(adasm_isa_best()));
  return 0;
}
