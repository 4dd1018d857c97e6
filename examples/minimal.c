/* minimal.c - vendoring adasoftmax.h: copy the header next to this file,
   cc -O2 minimal.c -lm, run. The exact top-3 of softmax(A x), then
   AdaSoftmax's (PAC, eps 0.3, delta 0.1) for the same x. */
#define ADASOFTMAX_IMPLEMENTATION
#include "adasoftmax.h"
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

int main(void) {
  enum { N = 20000, D = 256, K = 3 };
  float *A = (float *)malloc((size_t)N * D * sizeof(float)), x[D], prob[K];
  adasm_matrix M = adasm_matrix_f32(A, N, D, D);
  adasm_exact_params ep = adasm_exact_params_default();
  adasm_exact_result er;
  adasm_ada_params ap = adasm_ada_params_default();
  adasm_ada_result ar;
  adasm_ada_index ix;
  adasm_pcg32 rng;
  size_t idx[K], i, bytes;
  void *work;
  if (!A) return 1;
  memset(&er, 0, sizeof er);
  memset(&ar, 0, sizeof ar);
  adasm_pcg32_seed(&rng, 1, 0);
  for (i = 0; i < (size_t)N * D; ++i) A[i] = adasm_pcg32_uniform(&rng) - 0.5f;
  for (i = 0; i < D; ++i) x[i] = A[7 * D + i] * 4.0f; /* row 7 should win */

  ep.k = ap.k = K;
  ap.ci_scale = 0.05; /* as adasm_ada_calibrate would certify; 1 = proven */
  er.idx = idx;
  er.prob = prob;
  if (adasm_exact_query(&M, &ep, x, NULL, 0, &er) != ADASM_OK) return 1;
  printf("exact: top %zu (p %.3f), log_norm %.4f\n", idx[0], prob[0], er.log_norm);

  if (adasm_ada_index_build(&ix, &M, 0u, NULL) != ADASM_OK ||
      adasm_ada_workspace_size(&ix, &ap, &bytes) != ADASM_OK ||
      !(work = malloc(bytes)))
    return 1;
  ar.idx = idx;
  ar.prob = prob;
  if (adasm_ada_query(&ix, &ap, x, work, bytes, &ar) != ADASM_OK) return 1;
  printf("ada:   top %zu (p %.3f), log_norm %.4f, %s\n", idx[0], prob[0],
         ar.log_norm, ar.exact ? "answered by the exact pass" : "sampled");
  free(work);
  adasm_ada_index_free(&ix);
  free(A);
  return 0;
}
