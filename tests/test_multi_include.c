/* test_multi_include.c - the header included many times in one file: twice
   as declarations only, then with ADASOFTMAX_IMPLEMENTATION and custom
   ADASM_MALLOC / ADASM_FREE / ADASM_ASSERT, then twice more with the
   implementation macro still defined and once after #undef. The include
   guards must make every repeat a no-op (no redefinition errors), and the
   implementation must route its allocations and assertions through the
   macros, passing the caller's allocation context (adasm_ada_index_build's
   alloc_ctx) through unchanged. Returns 0 when every check passes. */
#include "adasoftmax.h"
#include "adasoftmax.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* Counting allocator: every block the library takes must be given back.
   The hooks are extern (with prototypes) so that an implementation that
   never allocates does not leave unused static functions behind. */
static long live_blocks, total_blocks, assert_failures, wrong_ctx;
static int alloc_tag; /* its address is the context the caller passes */
static void *last_ctx;

void *counting_malloc(size_t size, void *ctx);
void counting_free(void *p, void *ctx);
void assert_failed(const char *expr, const char *file, int line);

void *counting_malloc(size_t size, void *ctx) {
  void *p = malloc(size);
  if (ctx != NULL && ctx != &alloc_tag) wrong_ctx++;
  last_ctx = ctx;
  if (p != NULL) {
    live_blocks++;
    total_blocks++;
  }
  return p;
}

void counting_free(void *p, void *ctx) {
  if (ctx != NULL && ctx != &alloc_tag) wrong_ctx++;
  last_ctx = ctx;
  if (p != NULL) live_blocks--;
  free(p);
}

void assert_failed(const char *expr, const char *file, int line) {
  assert_failures++;
  fprintf(stderr, "%s:%d: ADASM_ASSERT(%s) failed\n", file, line, expr);
}

#define ADASM_MALLOC(sz, ctx) counting_malloc((sz), (ctx))
#define ADASM_FREE(p, ctx) counting_free((p), (ctx))
#define ADASM_ASSERT(x) ((x) ? (void)0 : assert_failed(#x, __FILE__, __LINE__))
#define ADASOFTMAX_IMPLEMENTATION
#include "adasoftmax.h"
#include "adasoftmax.h"
#include "adasoftmax.h"
#undef ADASOFTMAX_IMPLEMENTATION
#include "adasoftmax.h"

static int failures;

#define CHECK(cond)                                                            \
  do {                                                                         \
    if (!(cond)) {                                                             \
      failures++;                                                              \
      fprintf(stderr, "%s:%d: FAILED %s\n", __FILE__, __LINE__, #cond);        \
    }                                                                          \
  } while (0)

#define N 3000

int main(void) {
  static float z[N], p[N];
  static size_t idx[N];
  double lse = 0.0, ref = 0.0;
  adasm_pcg32 rng;
  size_t i, topk;

  adasm_pcg32_seed(&rng, 11u, 13u);
  for (i = 0; i < N; i++) {
    z[i] = 8.0f * adasm_pcg32_uniform(&rng) - 4.0f;
    ref += exp((double)z[i]);
  }
  ref = log(ref);

  /* The exact calls under the custom macros: large top-k, the two-pass and
     online algorithms, the fused GEMV (none of them should leak). */
  CHECK(adasm_softmax_ex(NULL, ADASM_SOFTMAX_TWO_PASS, z, N, p) == ADASM_OK);
  CHECK(adasm_softmax_ex(NULL, ADASM_SOFTMAX_ONLINE, z, N, p) == ADASM_OK);
  CHECK(adasm_logsumexp(NULL, z, N, &lse) == ADASM_OK);
  CHECK(fabs(lse - ref) < 1e-6);
  for (topk = 1; topk <= N; topk *= 3) {
    CHECK(adasm_softmax_topk(NULL, z, N, topk, idx, p, NULL) == ADASM_OK);
    for (i = 1; i < topk; i++) CHECK(p[i - 1] >= p[i]);
  }
  CHECK(adasm_gemv_softmax_topk(NULL, z, 100, 30, 30, z, 0.5f, 50, idx, p,
                                NULL, NULL) == ADASM_OK);

  /* The AdaSoftmax index allocates with the caller's context: it must reach
     ADASM_MALLOC and ADASM_FREE unchanged, and the memory must come back. */
  {
    adasm_ada_index ix;
    adasm_ada_params prm = adasm_ada_params_default();
    adasm_ada_result res;
    size_t bytes = 0, top = N;
    float top_p = 0.0f;
    long before = total_blocks;
    void *work;
    const adasm_matrix zm = adasm_matrix_f32(z, 100, 30, 30);
    CHECK(adasm_ada_index_build(&ix, &zm, 0u, &alloc_tag) == ADASM_OK);
    CHECK(total_blocks > before); /* the index went through ADASM_MALLOC */
    CHECK(last_ctx == &alloc_tag);  /* ... with the caller's context */
    CHECK(live_blocks > 0);
    CHECK(adasm_ada_workspace_size(&ix, &prm, &bytes) == ADASM_OK);
    work = malloc(bytes ? bytes : 1);
    CHECK(work != NULL);
    memset(&res, 0, sizeof res);
    res.idx = &top;
    res.prob = &top_p;
    if (work != NULL) {
      CHECK(adasm_ada_query(&ix, &prm, z, work, bytes, &res) == ADASM_OK);
      CHECK(top < 100);
    }
    free(work);
    last_ctx = NULL;
    adasm_ada_index_free(&ix);
    CHECK(last_ctx == &alloc_tag); /* ADASM_FREE got it back too */
  }

  CHECK(wrong_ctx == 0); /* the context was passed through */
  CHECK(assert_failures == 0);
  CHECK(live_blocks == 0); /* no leak through the custom allocator */
  if (failures) return 1;
  printf("test_multi_include: ok (%ld blocks through ADASM_MALLOC)\n",
         total_blocks);
  return 0;
}
