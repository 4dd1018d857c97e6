/* tests/test_alloc.c - allocation failures in adasoftmax.h.

   Build (from the repository root; meson builds it as test 'alloc'):
     gcc -std=c99 -O2 -Wall -Wextra -Wpedantic -Wshadow -Wconversion -I. \
         tests/test_alloc.c -lm -o test_alloc
   Run: ./test_alloc   (returns 0 when every check passes; ~1 s)

   ADASM_MALLOC / ADASM_FREE are routed to a counting allocator (test_util.h)
   that can be told to fail its N-th call. Every public function that may
   allocate is run as a "scenario": first once with nothing failing, which
   counts its allocation calls (so the test stays right when the library
   gains more allocation sites), then once per call with exactly that call
   failing, and once more with that call and every later one failing. Each
   failing run must return ADASM_ERR_NOMEM, leave its output object safe to
   free (here: untouched, or with no block to free) and leak nothing: the
   allocator keeps a table of live blocks and checks that every free gets
   back a block it handed out, with the context it was allocated with, and
   the sanitizer build runs LeakSanitizer on top. A scenario that has no
   allocation today still runs (and must succeed, leaving nothing live): the
   day it gains one, the failure runs start covering it with no edit here. */
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* ---- harness and the counting, failing allocator (test_util.h) ---------- */
/* Every allocation context here is a test_ctx (TEST_TYPED_CTX): the library
   must hand it to the allocator unchanged, and free each block with the
   context it was allocated with. Only calls made while `ta.armed` are
   counted and may fail: a scenario arms the allocator just around the call
   under test. */
#define TEST_ALLOCATOR
#define TEST_TYPED_CTX
#define TEST_MAX_LIVE 64
#include "test_util.h"

#define ADASM_MALLOC(sz, ctx) test_malloc((sz), (ctx))
#define ADASM_FREE(p, ctx) test_free((p), (ctx))
#define ADASOFTMAX_IMPLEMENTATION
#include "adasoftmax.h"

#include <math.h>

/* ---- data ----------------------------------------------------------------- */
/* Gaussian-ish entries from the library's PCG32 (never libc rand); every
   seventh column is zero so the sampler's "free column" path runs too. */
static void fill(float *v, size_t n, size_t d, size_t ld, uint64_t seed) {
  adasm_pcg32 r;
  size_t i, j;
  adasm_pcg32_seed(&r, seed, 7u);
  for (i = 0; i < n; ++i)
    for (j = 0; j < ld; ++j) {
      const float u = adasm_pcg32_uniform(&r) + adasm_pcg32_uniform(&r) - 1.0f;
      v[i * ld + j] = (j < d && j % 7 != 3) ? 2.0f * u : 0.0f;
    }
}

#define MAXN 300
#define MAXD 70
static float g_A[MAXN * (MAXD + 5)];
static float g_X[8 * MAXD];

/* ---- scenarios ------------------------------------------------------------- */
/* A scenario runs one public call (arming the allocator only around it),
   checks its own outputs, releases everything, and returns the call's
   result. `variant` picks how the caller initialised the output object. */
typedef adasm_result (*scenario_fn)(const void *arg, int variant);

typedef struct build_case {
  size_t n, d, lda;
} build_case;

/* adasm_ada_index_build into an object the caller zeroed (variant 0) or
   left as garbage (variant 1). On failure the object must be untouched or
   hold no block: adasm_ada_index_free is then safe on a zeroed object. */
static adasm_result sc_build(const void *arg, int variant) {
  const build_case *bc = (const build_case *)arg;
  adasm_ada_index ix, before;
  test_ctx c;
  adasm_result r;
  long frees;
  test_ctx_init(&c);
  memset(&ix, variant ? 0xa5 : 0, sizeof ix);
  before = ix;
  ta.check_ctx = 1;
  ta.expect_ctx = &c;
  ta.armed = 1;
  {
    const adasm_matrix M = adasm_matrix_f32(g_A, bc->n, bc->d, bc->lda);
    r = adasm_ada_index_build(&ix, &M, variant ? ADASM_ADA_OWN_ROWS : 0u, &c);
  }
  ta.armed = 0;
  ta.check_ctx = 0;
  if (r == ADASM_OK) {
    CHECK(ix.n == bc->n && ix.d == bc->d &&
              (variant ? ix.A.data != (const void *)g_A && ix.A.ld == bc->d
                       : ix.A.data == (const void *)g_A && ix.A.ld == bc->lda),
          "build n=%lu d=%lu: index fields", (unsigned long)bc->n,
          (unsigned long)bc->d);
    CHECK(ix.alloc_ctx == (void *)&c, "build: alloc_ctx not stored");
    CHECK(c.live >= 1, "build succeeded with nothing allocated in its ctx");
    CHECK(ix.cols != NULL && ix.mu != NULL && ix.sigma != NULL && ix.rho != NULL,
          "build: arrays");
    adasm_ada_index_free(&ix);
    CHECK(ix.block == NULL && ix.cols == NULL, "free: object not cleared");
    frees = c.frees;
    adasm_ada_index_free(&ix); /* a second free is a no-op */
    CHECK(c.frees == frees, "second adasm_ada_index_free freed again");
  } else {
    const int untouched = memcmp(&ix, &before, sizeof ix) == 0;
    CHECK(untouched || ix.block == NULL,
          "build failed (%s) but left a block in the object",
          adasm_result_string(r));
    if (!variant || ix.block == NULL) {
      frees = c.frees;
      adasm_ada_index_free(&ix); /* must be safe on what failure left */
      CHECK(c.frees == frees, "free after failed build freed something");
    }
  }
  CHECK(c.live == 0, "build n=%lu d=%lu: %ld block(s) leaked in its context",
        (unsigned long)bc->n, (unsigned long)bc->d, c.live);
  return r;
}

/* Builds an index with the allocator disarmed (never fails), for scenarios
   that test the calls made on an index. */
static int setup_index(adasm_ada_index *ix, test_ctx *c, size_t n, size_t d) {
  adasm_result r;
  test_ctx_init(c);
  {
    const adasm_matrix M = adasm_matrix_f32(g_A, n, d, d);
    r = adasm_ada_index_build(ix, &M, 0u, c);
  }
  CHECK(r == ADASM_OK, "setup build: %s", adasm_result_string(r));
  return r == ADASM_OK;
}

typedef struct query_case {
  size_t n, d, k;
  double ci_scale;
} query_case;

/* adasm_ada_query: takes the caller's workspace, so it allocates nothing
   today; if it ever does, the allocation must use the index's context. */
static adasm_result sc_query(const void *arg, int variant) {
  const query_case *qc = (const query_case *)arg;
  adasm_ada_index ix;
  adasm_ada_params p = adasm_ada_params_default();
  adasm_ada_result out;
  test_ctx c;
  size_t bytes = 0, idx[MAXN], t;
  float prob[MAXN];
  void *work;
  adasm_result r;
  if (!setup_index(&ix, &c, qc->n, qc->d)) return ADASM_ERR_NULL;
  p.k = qc->k;
  p.ci_scale = qc->ci_scale;
  p.seed = 1000u + (uint64_t)variant;
  r = adasm_ada_workspace_size(&ix, &p, &bytes);
  CHECK(r == ADASM_OK && bytes > 0, "workspace size: %s",
        adasm_result_string(r));
  work = malloc(bytes);
  CHECK(work != NULL, "out of memory (%lu bytes)", (unsigned long)bytes);
  memset(&out, 0, sizeof out);
  out.idx = idx;
  out.prob = prob;
  ta.check_ctx = 1;
  ta.expect_ctx = &c;
  ta.armed = 1;
  r = work ? adasm_ada_query(&ix, &p, g_X, work, bytes, &out) : ADASM_ERR_NOMEM;
  ta.armed = 0;
  ta.check_ctx = 0;
  if (r == ADASM_OK) {
    for (t = 0; t < qc->k; ++t)
      CHECK(idx[t] < qc->n && prob[t] >= 0.0f && prob[t] <= 1.0f,
            "query: answer %lu out of range", (unsigned long)t);
    CHECK(isfinite(out.log_norm), "query: log_norm not finite");
  }
  free(work);
  adasm_ada_index_free(&ix);
  CHECK(c.live == 0, "query: %ld block(s) leaked", c.live);
  return r;
}

/* adasm_ada_calibrate (and its workspace size): caller's workspace too. */
static adasm_result sc_calibrate(const void *arg, int variant) {
  const query_case *qc = (const query_case *)arg;
  const size_t q = 4;
  adasm_ada_index ix;
  adasm_ada_params p = adasm_ada_params_default();
  test_ctx c;
  size_t bytes = 0;
  adasm_ada_calibration cal;
  void *work;
  adasm_result r;
  if (!setup_index(&ix, &c, qc->n, qc->d)) return ADASM_ERR_NULL;
  p.k = qc->k;
  p.seed = 77u + (uint64_t)variant;
  ta.check_ctx = 1;
  ta.expect_ctx = &c;
  ta.armed = 1;
  r = adasm_ada_calibrate_workspace_size(&ix, &p, q, &bytes);
  ta.armed = 0;
  CHECK(r == ADASM_OK || r == ADASM_ERR_NOMEM, "calibrate workspace: %s",
        adasm_result_string(r));
  if (r == ADASM_OK) {
    work = malloc(bytes);
    CHECK(work != NULL, "out of memory (%lu bytes)", (unsigned long)bytes);
    ta.armed = 1;
    r = work ? adasm_ada_calibrate(&ix, &p, g_X, q, qc->d, 0.05, work, bytes,
                                   &cal)
             : ADASM_ERR_NOMEM;
    ta.armed = 0;
    /* q = 4 certifies nothing: the scale stays at the theory's 1 */
    if (r == ADASM_OK)
      CHECK(cal.ci_scale == 1.0 && !cal.certified, "calibrate q=4: scale %g",
            cal.ci_scale);
    free(work);
  }
  ta.check_ctx = 0;
  adasm_ada_index_free(&ix);
  CHECK(c.live == 0, "calibrate: %ld block(s) leaked", c.live);
  return r;
}

/* The exact path has no context argument; it works in caller memory. */
static adasm_result sc_exact(const void *arg, int variant) {
  const query_case *qc = (const query_case *)arg;
  size_t idx[MAXN], pick = 0, need = 0;
  float prob[MAXN], logits[MAXN];
  double ln = 0.0, lse = 0.0;
  adasm_sample_params sp = adasm_sample_params_default();
  adasm_pcg32 rng;
  static unsigned char work[MAXN * 32];
  adasm_result r;
  adasm_pcg32_seed(&rng, 5u + (uint64_t)variant, 1u);
  sp.top_k = qc->k;
  sp.top_p = 0.9f;
  ta.armed = 1;
  r = adasm_gemv_softmax_topk(NULL, g_A, qc->n, qc->d, qc->d, g_X, 1.0f, qc->k,
                              idx, prob, &ln, logits);
  if (r == ADASM_OK) r = adasm_softmax(NULL, logits, qc->n, prob);
  if (r == ADASM_OK) r = adasm_logsumexp(NULL, logits, qc->n, &lse);
  if (r == ADASM_OK) r = adasm_log_softmax(NULL, logits, qc->n, prob);
  if (r == ADASM_OK) r = adasm_softmax_topk(NULL, logits, qc->n, qc->k, idx, prob, &ln);
  if (r == ADASM_OK) r = adasm_sample_workspace_size(qc->n, &sp, &need);
  if (r == ADASM_OK && need <= sizeof work)
    r = adasm_sample(NULL, logits, qc->n, &sp, &rng, work, need, &pick);
  ta.armed = 0;
  CHECK(need <= sizeof work, "sample workspace %lu > %lu", (unsigned long)need,
        (unsigned long)sizeof work);
  if (r == ADASM_OK) CHECK(pick < qc->n, "sample: class %lu", (unsigned long)pick);
  return r;
}

/* The sampler chain (adasm_sample_logits, adasm_exact_sample, their
   workspace sizes, adasm_sample_gumbel): caller workspace only, so no
   allocation today, through every path (heap, selection, list and scan
   races, bias and penalties, greedy). */
static adasm_result sc_sample(const void *arg, int variant) {
  const query_case *qc = (const query_case *)arg;
  static unsigned char work[MAXN * 64 + 4096];
  static const size_t hist[4] = {1, 2, 2, 7};
  adasm_logit_bias bias[2];
  float logits[MAXN], prob[1];
  size_t idx[1], need = 0, c;
  adasm_exact_params ep = adasm_exact_params_default();
  adasm_exact_result er;
  adasm_matrix M = adasm_matrix_f32(g_A, qc->n, qc->d, qc->d);
  adasm_result r;
  er.idx = idx;
  er.prob = prob;
  er.logits = logits;
  bias[0].token = 3;
  bias[0].bias = 1.5f;
  bias[1].token = 4;
  bias[1].bias = -(float)HUGE_VAL;
  r = adasm_exact_query(&M, &ep, g_X, NULL, 0, &er); /* disarmed: setup */
  for (c = 0; r == ADASM_OK && c < 6; ++c) {
    adasm_sampler_params p = adasm_sampler_params_default();
    adasm_sampler_result res;
    p.seed = 9u + (uint64_t)variant;
    p.draw = c;
    p.temperature = c == 5 ? 0.0f : 0.9f;
    p.top_k = c == 1 ? 5 : c == 2 ? qc->n - 1 : 0;
    p.top_p = c == 2 || c == 3 ? 0.8f : 1.0f;
    p.min_p = c == 4 ? 0.1f : 0.0f;
    if (c >= 3) {
      p.bias = bias;
      p.nbias = 2;
      p.history = hist;
      p.nhistory = 4;
      p.repetition_penalty = 1.3f;
    }
    ta.armed = 1;
    r = adasm_sample_logits_workspace_size(qc->n, &p, &need);
    if (r == ADASM_OK && need <= sizeof work)
      r = adasm_sample_logits(logits, qc->n, &p, work, need, &res);
    if (r == ADASM_OK) CHECK(res.token < qc->n, "sample_logits: token %lu", (unsigned long)res.token);
    if (r == ADASM_OK) r = adasm_exact_sample_workspace_size(&M, &p, &need);
    if (r == ADASM_OK && need <= sizeof work)
      r = adasm_exact_sample(&M, &p, g_X, work, need, &res);
    if (r == ADASM_OK) CHECK(res.token < qc->n, "exact_sample: token %lu", (unsigned long)res.token);
    (void)adasm_sample_gumbel(1u, 2u, c, c);
    ta.armed = 0;
    CHECK(need <= sizeof work, "sample workspace %lu > %lu", (unsigned long)need,
          (unsigned long)sizeof work);
  }
  return r;
}

/* ---- the driver ------------------------------------------------------------ */
static void reset(long fail_at, int fail_rest) {
  ta.armed = 0;
  ta.calls = 0;
  ta.fail_at = fail_at;
  ta.fail_rest = fail_rest;
  ta.injected = 0;
  ta.check_ctx = 0;
}

/* Counts the scenario's allocations on a clean run, then fails each one in
   turn (alone, and together with all later ones). Returns the count. */
static long run_scenario(const char *name, scenario_fn fn, const void *arg) {
  long n_alloc, f, live0 = ta.live, bad0 = ta.bad;
  int rest, variant;
  adasm_result r;
  reset(0, 0);
  r = fn(arg, 0);
  n_alloc = ta.calls;
  CHECK(r == ADASM_OK, "%s: clean run returned %s", name, adasm_result_string(r));
  CHECK(ta.live == live0, "%s: clean run leaked %ld block(s)", name,
        ta.live - live0);
  for (f = 1; f <= n_alloc; ++f)
    for (rest = 0; rest <= 1; ++rest)
      for (variant = 0; variant <= 1; ++variant) {
        reset(f, rest);
        r = fn(arg, variant);
        CHECK(ta.injected >= 1, "%s: allocation #%ld was never reached", name, f);
        CHECK(r == ADASM_ERR_NOMEM,
              "%s: allocation #%ld of %ld failed (%s), call returned %s", name,
              f, n_alloc, rest ? "and the rest" : "alone",
              adasm_result_string(r));
        CHECK(ta.live == live0, "%s: failing allocation #%ld leaked %ld block(s)",
              name, f, ta.live - live0);
      }
  CHECK(ta.bad == bad0,
        "%s: %ld bad allocator call(s) (wrong ctx, foreign or double free)",
        name, ta.bad - bad0);
  reset(0, 0);
  printf("  %-34s %ld allocation site(s) hit, %ld failure run(s)\n", name,
         n_alloc, 4 * n_alloc);
  return n_alloc;
}

/* The context given to adasm_ada_index_build reaches the allocator and the
   index frees with it: two indexes with two contexts, one with NULL. */
static void test_ctx_route(void) {
  test_ctx c1, c2;
  adasm_ada_index a, b, z;
  const adasm_matrix ma = adasm_matrix_f32(g_A, 10, 9, 9);
  const adasm_matrix mb = adasm_matrix_f32(g_A, 20, 5, 6);
  const adasm_matrix mz = adasm_matrix_f32(g_A, 3, 3, 3);
  long bad0 = ta.bad, live0 = ta.live, frees2;
  test_ctx_init(&c1);
  test_ctx_init(&c2);
  CHECK(adasm_ada_index_build(&a, &ma, 0u, &c1) == ADASM_OK, "build a");
  CHECK(adasm_ada_index_build(&b, &mb, ADASM_ADA_OWN_ROWS, &c2) == ADASM_OK,
        "build b");
  ta.check_ctx = 1;
  ta.expect_ctx = NULL;
  CHECK(adasm_ada_index_build(&z, &mz, 0u, NULL) == ADASM_OK, "build z");
  ta.check_ctx = 0;
  CHECK(c1.live >= 1, "ctx 1 holds %ld blocks", c1.live);
  CHECK(c2.live >= 1, "ctx 2 holds %ld blocks", c2.live);
  CHECK(a.alloc_ctx == (void *)&c1 && b.alloc_ctx == (void *)&c2 &&
            z.alloc_ctx == NULL,
        "alloc_ctx not kept in the index");
  frees2 = c2.frees;
  adasm_ada_index_free(&a);
  CHECK(c1.live == 0 && c2.frees == frees2,
        "freeing index a: ctx 1 live %ld, ctx 2 freed %ld", c1.live,
        c2.frees - frees2);
  adasm_ada_index_free(&b);
  CHECK(c2.live == 0 && c2.frees == c2.mallocs, "freeing index b: live %ld",
        c2.live);
  adasm_ada_index_free(&z);
  CHECK(ta.live == live0, "NULL-context index leaked %ld block(s)",
        ta.live - live0);
  CHECK(ta.bad == bad0, "%ld bad allocator call(s) in ctx routing",
        ta.bad - bad0);
}

/* The allocator itself: fails exactly the requested calls, and catches a
   double free (so a silent pass above means something). */
static void test_allocator(void) {
  test_ctx c;
  void *p1, *p2, *p3;
  long bad0 = ta.bad;
  test_ctx_init(&c);
  reset(2, 0);
  ta.armed = 1;
  p1 = test_malloc(8, &c);
  p2 = test_malloc(8, &c);
  p3 = test_malloc(8, &c);
  ta.armed = 0;
  CHECK(p1 != NULL && p2 == NULL && p3 != NULL && ta.injected == 1,
        "allocator: fail_at=2 did not fail exactly call 2");
  test_free(p1, &c);
  test_free(p3, NULL); /* wrong context: refused and counted */
  CHECK(ta.bad == bad0 + 1, "allocator: wrong-context free not caught");
  test_free(p3, &c);
  test_free(p3, &c); /* double free: refused and counted */
  CHECK(ta.bad == bad0 + 2, "allocator: double free not caught");
  CHECK(c.live == 0, "allocator: %ld live", c.live);
  ta.bad = bad0;
  reset(0, 0);
}

int main(void) {
  static const build_case builds[] = {
      {1, 1, 1}, {37, 19, 23}, {300, 70, 75}, {65, 64, 64}};
  static const query_case queries[] = {
      {37, 19, 1, 1.0}, {37, 19, 3, 0.01}, {37, 19, 37, 1.0}, {300, 70, 5, 0.01}};
  char name[64];
  size_t i;
  long build_sites = 0;
  fill(g_A, MAXN, MAXD, MAXD + 5, 1u);
  fill(g_X, 8, MAXD, MAXD, 2u);

  test_allocator();
  test_ctx_route();
  for (i = 0; i < sizeof builds / sizeof builds[0]; ++i) {
    long sites;
    sprintf(name, "adasm_ada_index_build %lux%lu", (unsigned long)builds[i].n,
            (unsigned long)builds[i].d);
    sites = run_scenario(name, sc_build, &builds[i]);
    /* the header documents that the index owns an allocation */
    CHECK(sites >= 1, "%s: no allocation seen", name);
    build_sites += sites;
  }
  for (i = 0; i < sizeof queries / sizeof queries[0]; ++i) {
    sprintf(name, "adasm_ada_query n=%lu k=%lu s=%g", (unsigned long)queries[i].n,
            (unsigned long)queries[i].k, queries[i].ci_scale);
    run_scenario(name, sc_query, &queries[i]);
  }
  sprintf(name, "adasm_ada_calibrate (+ws size)");
  run_scenario(name, sc_calibrate, &queries[1]);
  sprintf(name, "exact: gemv, softmax, topk, sample");
  run_scenario(name, sc_exact, &queries[3]);
  sprintf(name, "sampler chain: logits, fused");
  run_scenario(name, sc_sample, &queries[3]);

  printf("  adasm_ada_index_build: %ld allocation(s) per build on average\n",
         build_sites / (long)(sizeof builds / sizeof builds[0]));
  CHECK(ta.live == 0, "%ld block(s) still live at exit", ta.live);
  CHECK(ta.bad == 0, "%ld bad allocator call(s)", ta.bad);
  printf("test_alloc: %d checks, %d failed\n", g_checks, g_fails);
  return g_fails ? 1 : 0;
}
