/* test_static_a.c + test_static_b.c - two private copies of the library in
   one program. Both files define ADASOFTMAX_STATIC and
   ADASOFTMAX_IMPLEMENTATION, so every adasm_ function is static in each and
   the link must succeed without duplicate symbols. Copy B is configured
   differently (ADASM_NO_SIMD: scalar kernels only), which is what static
   copies are for: two configurations side by side. Each copy uses only a few
   functions, so the unused ones must not warn either.
   This file holds copy A (default configuration) and main(). */
#define ADASOFTMAX_STATIC
#define ADASOFTMAX_IMPLEMENTATION
#include "adasoftmax.h"

#include <math.h>
#include <stdio.h>

typedef adasm_result (*softmax_fn)(const adasm_kernels *, const float *,
                                   size_t, float *);

/* Defined in test_static_b.c with copy B: softmax of z, B's best ISA, and
   B's adasm_softmax as a function pointer. */
int static_b_softmax(const float *z, size_t n, float *p, int *best_isa,
                     softmax_fn *fn);

#define N 37

int main(void) {
  float z[N], pa[N], pb[N];
  int best_b = -1, failures = 0;
  softmax_fn fn_b = NULL;
  size_t i;
  double ref = 0.0;

  for (i = 0; i < N; i++) z[i] = (float)((double)i * 0.37 - 5.0);
  for (i = 0; i < N; i++) ref += exp((double)z[i]);

  if (adasm_softmax(NULL, z, N, pa) != ADASM_OK) {
    fprintf(stderr, "copy A: adasm_softmax failed\n");
    failures++;
  }
  if (static_b_softmax(z, N, pb, &best_b, &fn_b) != 0) {
    fprintf(stderr, "copy B: adasm_softmax failed\n");
    failures++;
  }
  /* two copies: the functions have different addresses */
  if (fn_b == NULL || fn_b == &adasm_softmax) {
    fprintf(stderr, "copy B's adasm_softmax is copy A's (or NULL)\n");
    failures++;
  }
  /* copy B was built with ADASM_NO_SIMD: scalar only */
  if (best_b != (int)ADASM_ISA_SCALAR) {
    fprintf(stderr, "copy B best ISA is %d, want scalar\n", best_b);
    failures++;
  }
  /* both copies meet the accuracy contract against a double reference */
  for (i = 0; i < N; i++) {
    double want = exp((double)z[i]) / ref;
    if (fabs((double)pa[i] - want) > 1e-6 * want ||
        fabs((double)pb[i] - want) > 1e-6 * want) {
      fprintf(stderr, "p[%u]: A %.9g B %.9g want %.9g\n", (unsigned)i,
              (double)pa[i], (double)pb[i], want);
      failures++;
    }
  }
  if (failures) return 1;
  printf("test_static: two copies ok (A best ISA %s)\n",
         adasm_isa_name(adasm_isa_best()));
  return 0;
}
