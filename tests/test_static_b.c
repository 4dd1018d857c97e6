/* test_static_b.c - copy B of the library for test_static (see
   test_static_a.c): static, scalar kernels only. */
#define ADASOFTMAX_STATIC
#define ADASOFTMAX_IMPLEMENTATION
#ifndef ADASM_NO_SIMD /* the -Dsimd=none build already defines it */
#define ADASM_NO_SIMD 1
#endif
#include "adasoftmax.h"

typedef adasm_result (*softmax_fn)(const adasm_kernels *, const float *,
                                   size_t, float *);

int static_b_softmax(const float *z, size_t n, float *p, int *best_isa,
                     softmax_fn *fn);

int static_b_softmax(const float *z, size_t n, float *p, int *best_isa,
                     softmax_fn *fn) {
  *best_isa = (int)adasm_isa_best();
  *fn = &adasm_softmax;
  return adasm_softmax(NULL, z, n, p) == ADASM_OK ? 0 : 1;
}
