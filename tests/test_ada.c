/* tests/test_ada.c - AdaSoftmax in adasoftmax.h: errors, edge cases, the
   estimator's statistics, the guarantee on families built to break it,
   calibration's certificate, scale invariance, double-precision answers,
   per-query streams, 16-bit matrices and the kernels of every ISA.

   Build (meson builds it as test 'ada'):
     gcc -std=c99 -O2 -Wall -Wextra -Wpedantic -Wshadow -Wconversion -I. \
         tests/test_ada.c -lm -o test_ada
   Run:
     ./test_ada            everything (deterministic seeds, ~1 min)
     ./test_ada --quick    fewer trials (sanitizers, qemu)
     ./test_ada --smoke    every path once, few trials (valgrind)

   Statistical checks: over T trials (a fresh query and stream each), the
   number of failures (a returned set other than the double-precision
   top-k, or a p off by more than eps relatively) must not exceed the
   99.9% quantile of Binomial(T, delta), computed here; the estimator's
   checks use z-scores with a Bonferroni bound over the rows. The
   reference answers are computed here in double from A. Random data come
   from the library's PCG32. */
#include "test_util.h"
#define ADASOFTMAX_IMPLEMENTATION
#include "adasoftmax.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

static double now_sec(void) { return (double)clock() / (double)CLOCKS_PER_SEC; }

static double gauss(adasm_pcg32 *r) {
  const double u = adasm_pcg32_uniform_open(r), v = adasm_pcg32_uniform_open(r);
  return sqrt(-2.0 * log(u)) * cos(6.283185307179586 * v);
}

/* ---- references --------------------------------------------------------- */

/* beta * A x in double, any dtype (A's own values). */
static void ref_logits(const adasm_matrix *A, const float *x, double beta,
                       double *z) {
  size_t i, j;
  for (i = 0; i < A->rows; ++i) {
    double s = 0.0;
    for (j = 0; j < A->cols; ++j) {
      const size_t o = i * A->ld + j;
      const double a =
          A->dtype == ADASM_F32 ? (double)((const float *)A->data)[o]
          : A->dtype == ADASM_F16
              ? (double)adasm_f16_to_f32(((const uint16_t *)A->data)[o])
              : (double)adasm_bf16_to_f32(((const uint16_t *)A->data)[o]);
      s += a * (double)x[j];
    }
    z[i] = beta * s;
  }
}

static double ref_lse(const double *z, size_t n) {
  double m = -HUGE_VAL, s = 0.0;
  size_t i;
  for (i = 0; i < n; ++i) m = z[i] > m ? z[i] : m;
  for (i = 0; i < n; ++i) s += exp(z[i] - m);
  return m + log(s);
}

/* 1 if (idx, prob) is the top k of z (as a set; rows of equal logit at the
   boundary count as either) with every p within eps relatively. */
static int success(const double *z, size_t n, size_t k, double eps,
                   const size_t *idx, const float *prob) {
  const double lse = ref_lse(z, n);
  size_t t, i, above;
  for (t = 0; t < k; ++t) {
    const double p = exp(z[idx[t]] - lse);
    if (idx[t] >= n) return 0;
    for (i = 0; i < t; ++i)
      if (idx[i] == idx[t]) return 0;
    /* p below the float range: any float within it is as close as it gets */
    if (!(fabs((double)prob[t] - p) <= eps * p) &&
        !(p < 1.1754943508222875e-38 && (double)prob[t] <= 1.2e-38))
      return 0;
    /* fewer than k rows may lie strictly above a returned one */
    for (i = 0, above = 0; i < n; ++i) above += z[i] > z[idx[t]];
    if (above >= k) return 0;
  }
  return 1;
}

/* Smallest c with P(Binomial(T, p) <= c) >= q. */
static size_t binom_quantile(size_t T, double p, double q) {
  double pmf = pow(1.0 - p, (double)T), cdf = pmf;
  size_t c = 0;
  while (cdf < q && c < T) {
    pmf *= (double)(T - c) / (double)(c + 1) * p / (1.0 - p);
    cdf += pmf;
    ++c;
  }
  return c;
}

/* ---- families of heads, built to stress the guarantee --------------------- */
enum {
  FAM_LM,      /* anisotropic low-rank rows, Zipf norms, massive x dims */
  FAM_TIES,    /* planted near-ties at the k-th boundary */
  FAM_HEAVY,   /* heavy-tailed entries (t-like columns) */
  FAM_MASSIVE, /* one column with a huge x entry */
  FAM_COUNT
};
static const char *const fam_name[FAM_COUNT] = {"lm-like", "near-ties",
                                                "heavy-tailed", "massive"};

typedef struct head {
  int kind;
  size_t n, d;
  float *A, *x, *base; /* base: the query direction before the trial's noise */
  adasm_matrix M;
  adasm_ada_index ix;
  double *z;
} head;

static void head_init(head *h, int kind, size_t n, size_t d, uint64_t seed) {
  adasm_pcg32 r;
  size_t i, j, rank = d < 24 ? d : 24;
  double *basis = (double *)xmalloc(rank * d * sizeof(double));
  adasm_pcg32_seed(&r, seed, 7u);
  h->kind = kind;
  h->n = n;
  h->d = d;
  h->A = (float *)xmalloc(n * d * sizeof(float));
  h->x = (float *)xmalloc(d * sizeof(float));
  h->base = (float *)xmalloc(d * sizeof(float));
  h->z = (double *)xmalloc(n * sizeof(double));
  for (i = 0; i < rank * d; ++i) basis[i] = gauss(&r);
  for (i = 0; i < n; ++i) {
    /* row norms grow with a Zipf-like frequency; a shared direction */
    const double nu = 0.7 + 0.6 / (1.0 + (double)i / 50.0);
    for (j = 0; j < d; ++j) {
      double a = 0.0;
      size_t t;
      switch (kind) {
      case FAM_LM:
        for (t = 0; t < rank; ++t)
          a += basis[t * d + j] * gauss(&r) / (1.0 + (double)t);
        a = nu * (0.6 * a + 0.3 * gauss(&r)) / sqrt((double)d) +
            0.4 * basis[j] / sqrt((double)d);
        break;
      case FAM_HEAVY: {
        const double u = adasm_pcg32_uniform_open(&r);
        a = gauss(&r) / pow(u, 0.6) / sqrt((double)d); /* Pareto-ish tails */
        break;
      }
      default:
        a = gauss(&r) / sqrt((double)d);
      }
      h->A[i * d + j] = (float)a;
    }
  }
  if (kind == FAM_TIES) { /* rows 1..4 copy row 0 with one entry nudged */
    for (i = 1; i < 5 && i < n; ++i) {
      memcpy(h->A + i * d, h->A, d * sizeof(float));
      h->A[i * d + i % d] = nextafterf(h->A[i * d + i % d], 1.0f);
    }
  }
  for (j = 0; j < d; ++j) h->base[j] = (float)gauss(&r);
  if (kind == FAM_TIES) /* x aligned with the tied rows */
    for (j = 0; j < d; ++j) h->base[j] = 4.0f * h->A[j] * (float)sqrt((double)d);
  h->M = adasm_matrix_f32(h->A, n, d, d);
  CHECK(adasm_ada_index_build(&h->ix, &h->M, 0u, NULL) == ADASM_OK,
        "%s: build", fam_name[kind]);
  free(basis);
}

static void head_free(head *h) {
  adasm_ada_index_free(&h->ix);
  free(h->A);
  free(h->x);
  free(h->base);
  free(h->z);
}

/* Trial t's query: the base direction, noise, a temperature-like scale
   spread over two decades, and (lm-like) massive coordinates. */
static void head_query(head *h, uint64_t t) {
  adasm_pcg32 r;
  const double scale = pow(10.0, -0.5 + (double)(t % 7) / 3.0);
  size_t j;
  adasm_pcg32_seed(&r, 1000u + t, (uint64_t)h->kind);
  for (j = 0; j < h->d; ++j)
    h->x[j] = (float)(scale * ((double)h->base[j] * 0.8 + 0.6 * gauss(&r)));
  if (h->kind == FAM_LM) {
    h->x[3 % h->d] *= 25.0f;
    h->x[17 % h->d] *= -25.0f;
  }
  if (h->kind == FAM_MASSIVE) h->x[5 % h->d] = (float)(200.0 * scale);
}

/* Every kernel set a test runs on (those the CPU lacks are skipped). */
static const adasm_isa g_isas[] = {ADASM_ISA_SCALAR, ADASM_ISA_AVX2,
                                   ADASM_ISA_AVX512, ADASM_ISA_NEON};

static void result_init(adasm_ada_result *out, size_t *idx, float *prob) {
  memset(out, 0, sizeof *out);
  out->idx = idx;
  out->prob = prob;
}

/* One workspace, grown on demand. */
static void *g_work = NULL;
static size_t g_work_bytes = 0;
static void *work_for(const adasm_ada_index *ix, const adasm_ada_params *p,
                      size_t *bytes) {
  CHECK(adasm_ada_workspace_size(ix, p, bytes) == ADASM_OK, "workspace size");
  if (*bytes > g_work_bytes) {
    free(g_work);
    g_work = xmalloc(*bytes);
    g_work_bytes = *bytes;
  }
  return g_work;
}

/* Failures of T trials of head h at params p (fresh stream per trial). */
static size_t trials(head *h, adasm_ada_params p, size_t first, size_t T,
                     size_t *exact_answers) {
  size_t t, fails = 0, bytes, idx[64];
  float prob[64];
  void *w = work_for(&h->ix, &p, &bytes);
  adasm_ada_result out;
  *exact_answers = 0;
  for (t = first; t < first + T; ++t) {
    adasm_result r;
    head_query(h, t);
    ref_logits(&h->M, h->x, (double)p.beta, h->z);
    result_init(&out, idx, prob);
    p.stream = t;
    r = adasm_ada_query(&h->ix, &p, h->x, w, bytes, &out);
    CHECK(r == ADASM_OK, "%s trial %lu: %s", fam_name[h->kind],
          (unsigned long)t, adasm_result_string(r));
    fails += r != ADASM_OK || !success(h->z, h->n, p.k, p.eps, idx, prob);
    *exact_answers += (size_t)out.exact;
    CHECK(out.madds <= (uint64_t)h->n * (uint64_t)h->d * 2u &&
              out.rounds <= 12 && out.rows_exact <= h->n,
          "%s: counters out of range", fam_name[h->kind]);
  }
  return fails;
}

/* ---- errors ------------------------------------------------------------------ */
static void test_errors(void) {
  float A[6 * 4], x[4] = {1, 2, 3, 4}, xb[4];
  adasm_matrix M = adasm_matrix_f32(A, 6, 4, 4), bad;
  adasm_ada_index ix, untouched;
  adasm_ada_params p = adasm_ada_params_default(), q;
  adasm_ada_result out;
  adasm_ada_calibration cal;
  size_t idx[6] = {99, 99, 99, 99, 99, 99}, bytes, i;
  float prob[6] = {5, 5, 5, 5, 5, 5};
  void *w;
  for (i = 0; i < 24; ++i) A[i] = (float)i * 0.1f - 1.0f;
  /* build */
  memset(&ix, 0x5a, sizeof ix);
  untouched = ix;
  CHECK(adasm_ada_index_build(NULL, &M, 0u, NULL) == ADASM_ERR_NULL, "build NULL ix");
  CHECK(adasm_ada_index_build(&ix, NULL, 0u, NULL) == ADASM_ERR_NULL, "build NULL A");
  bad = M; bad.data = NULL;
  CHECK(adasm_ada_index_build(&ix, &bad, 0u, NULL) == ADASM_ERR_NULL, "build NULL data");
  bad = M; bad.dtype = (adasm_dtype)3;
  CHECK(adasm_ada_index_build(&ix, &bad, 0u, NULL) == ADASM_ERR_PARAM, "build dtype");
  CHECK(adasm_ada_index_build(&ix, &M, 2u, NULL) == ADASM_ERR_PARAM, "build flag");
  bad = M; bad.rows = 0;
  CHECK(adasm_ada_index_build(&ix, &bad, 0u, NULL) == ADASM_ERR_SIZE, "build rows 0");
  bad = M; bad.cols = 0;
  CHECK(adasm_ada_index_build(&ix, &bad, 0u, NULL) == ADASM_ERR_SIZE, "build cols 0");
  bad = M; bad.ld = 3;
  CHECK(adasm_ada_index_build(&ix, &bad, 0u, NULL) == ADASM_ERR_SIZE, "build ld < cols");
  bad = M; bad.rows = (size_t)-1 / 2;
  CHECK(adasm_ada_index_build(&ix, &bad, 0u, NULL) == ADASM_ERR_OVERFLOW, "build overflow");
  A[7] = adasm__nanf();
  CHECK(adasm_ada_index_build(&ix, &M, 0u, NULL) == ADASM_ERR_NAN, "build NaN");
  A[7] = -adasm__inff();
  CHECK(adasm_ada_index_build(&ix, &M, 0u, NULL) == ADASM_ERR_PARAM, "build inf");
  A[7] = 0.5f;
  CHECK(memcmp(&ix, &untouched, sizeof ix) == 0, "failed builds wrote *ix");
  CHECK(adasm_ada_index_build(&ix, &M, 0u, NULL) == ADASM_OK, "build");
  adasm_ada_index_free(NULL);
  /* query */
  CHECK(adasm_ada_workspace_size(&ix, &p, &bytes) == ADASM_OK, "ws size");
  CHECK(adasm_ada_workspace_size(&ix, &p, NULL) == ADASM_ERR_NULL, "ws size NULL");
  w = xmalloc(bytes);
  result_init(&out, idx, prob);
#define QERR(pp, xx, ww, nb, want, what)                                        \
  CHECK(adasm_ada_query(&ix, (pp), (xx), (ww), (nb), &out) == (want), what)
  QERR(&p, NULL, w, bytes, ADASM_ERR_NULL, "x NULL");
  QERR(NULL, x, w, bytes, ADASM_ERR_NULL, "params NULL");
  CHECK(adasm_ada_query(NULL, &p, x, w, bytes, &out) == ADASM_ERR_NULL, "ix NULL");
  CHECK(adasm_ada_query(&ix, &p, x, w, bytes, NULL) == ADASM_ERR_NULL, "out NULL");
  q = p; q.k = 0; QERR(&q, x, w, bytes, ADASM_ERR_SIZE, "k 0");
  q = p; q.k = 7; QERR(&q, x, w, bytes, ADASM_ERR_SIZE, "k > n");
  q = p; q.eps = 0.0; QERR(&q, x, w, bytes, ADASM_ERR_PARAM, "eps 0");
  q = p; q.eps = 1.0; QERR(&q, x, w, bytes, ADASM_ERR_PARAM, "eps 1");
  q = p; q.eps = (double)adasm__nanf(); QERR(&q, x, w, bytes, ADASM_ERR_PARAM, "eps NaN");
  q = p; q.delta = 0.0; QERR(&q, x, w, bytes, ADASM_ERR_PARAM, "delta 0");
  q = p; q.delta = (double)adasm__nanf(); QERR(&q, x, w, bytes, ADASM_ERR_PARAM, "delta NaN");
  q = p; q.beta = 0.0f; QERR(&q, x, w, bytes, ADASM_ERR_PARAM, "beta 0");
  q = p; q.beta = -1.0f; QERR(&q, x, w, bytes, ADASM_ERR_PARAM, "beta < 0");
  q = p; q.beta = adasm__inff(); QERR(&q, x, w, bytes, ADASM_ERR_PARAM, "beta inf");
  q = p; q.beta = adasm__nanf(); QERR(&q, x, w, bytes, ADASM_ERR_PARAM, "beta NaN");
  q = p; q.ci_scale = 0.0; QERR(&q, x, w, bytes, ADASM_ERR_PARAM, "ci_scale 0");
  q = p; q.ci_scale = 1.5; QERR(&q, x, w, bytes, ADASM_ERR_PARAM, "ci_scale > 1");
  q = p; q.ci_scale = (double)adasm__nanf(); QERR(&q, x, w, bytes, ADASM_ERR_PARAM, "ci_scale NaN");
  QERR(&p, x, NULL, bytes, ADASM_ERR_WORKSPACE, "work NULL");
  QERR(&p, x, w, bytes - 1, ADASM_ERR_WORKSPACE, "work small");
  CHECK(idx[0] == 99 && prob[0] == 5.0f, "argument errors wrote outputs");
  memcpy(xb, x, sizeof x);
  xb[2] = adasm__nanf();
  QERR(&p, xb, w, bytes, ADASM_ERR_NAN, "x NaN");
  CHECK(prob[0] != prob[0] && out.log_norm != out.log_norm && idx[0] == 0,
        "x NaN: outputs not NaN");
  xb[2] = adasm__inff();
  QERR(&p, xb, w, bytes, ADASM_ERR_PARAM, "x inf");
  CHECK(prob[0] != prob[0], "x inf: outputs not NaN");
  QERR(&p, x, (unsigned char *)w + 1, bytes - 1, ADASM_ERR_WORKSPACE,
       "misaligned and one byte short");
#undef QERR
  /* estimate */
  {
    double est[6], var[6];
    CHECK(adasm_ada_estimate(&ix, &p, x, 0, w, bytes, est, var) == ADASM_ERR_SIZE, "estimate m 0");
    CHECK(adasm_ada_estimate(&ix, &p, x, 5, w, bytes, est, var) == ADASM_ERR_SIZE, "estimate m > d");
    CHECK(adasm_ada_estimate(&ix, &p, x, 2, w, bytes, NULL, var) == ADASM_ERR_NULL, "estimate NULL");
    CHECK(adasm_ada_estimate(&ix, &p, xb, 2, w, bytes, est, var) == ADASM_ERR_PARAM &&
              est[0] != est[0], "estimate x inf");
  }
  /* calibrate */
  {
    size_t cb;
    void *cw;
    CHECK(adasm_ada_calibrate_workspace_size(&ix, &p, 0, &cb) == ADASM_ERR_SIZE, "cal q 0");
    CHECK(adasm_ada_calibrate_workspace_size(&ix, &p, 3, &cb) == ADASM_OK, "cal ws");
    cw = xmalloc(cb);
    CHECK(adasm_ada_calibrate(&ix, &p, A, 3, 4, 0.0, cw, cb, &cal) == ADASM_ERR_PARAM, "cal alpha 0");
    CHECK(adasm_ada_calibrate(&ix, &p, A, 3, 4, 1.0, cw, cb, &cal) == ADASM_ERR_PARAM, "cal alpha 1");
    CHECK(adasm_ada_calibrate(&ix, &p, A, 3, 3, 0.05, cw, cb, &cal) == ADASM_ERR_SIZE, "cal ldx < d");
    CHECK(adasm_ada_calibrate(&ix, &p, A, 3, 4, 0.05, cw, cb - 1, &cal) == ADASM_ERR_WORKSPACE, "cal ws small");
    CHECK(adasm_ada_calibrate(&ix, &p, NULL, 3, 4, 0.05, cw, cb, &cal) == ADASM_ERR_NULL, "cal X NULL");
    A[5] = adasm__nanf();
    CHECK(adasm_ada_calibrate(&ix, &p, A, 3, 4, 0.05, cw, cb, &cal) == ADASM_ERR_NAN, "cal X NaN");
    A[5] = 0.0f;
    CHECK(adasm_ada_calibrate(&ix, &p, A, 3, 4, 0.05, cw, cb, &cal) == ADASM_OK &&
              cal.ci_scale == 1.0 && !cal.certified, "cal q 3 certifies nothing");
    free(cw);
  }
  free(w);
  adasm_ada_index_free(&ix);
  adasm_ada_index_free(&ix); /* twice: a no-op */
  CHECK(ix.block == NULL, "free: not zeroed");
}

/* ---- edge cases --------------------------------------------------------------- */

/* Runs one query and checks it against the double reference exactly
   (set, order by logit, p within eps; log_norm within the band). */
static void check_query(const char *what, const adasm_matrix *M,
                        const float *x, adasm_ada_params p, int want_exact) {
  adasm_ada_index ix;
  adasm_ada_result out;
  size_t bytes, *idx = (size_t *)xmalloc(M->rows * sizeof(size_t)), t;
  float *prob = (float *)xmalloc(M->rows * sizeof(float));
  double *z = (double *)xmalloc(M->rows * sizeof(double)), lse;
  void *w;
  adasm_result r = adasm_ada_index_build(&ix, M, 0u, NULL);
  CHECK(r == ADASM_OK, "%s: build %s", what, adasm_result_string(r));
  if (r != ADASM_OK) goto done;
  w = work_for(&ix, &p, &bytes);
  result_init(&out, idx, prob);
  r = adasm_ada_query(&ix, &p, x, w, bytes, &out);
  CHECK(r == ADASM_OK, "%s: query %s", what, adasm_result_string(r));
  ref_logits(M, x, (double)p.beta, z);
  lse = ref_lse(z, M->rows);
  CHECK(success(z, M->rows, p.k, p.eps, idx, prob), "%s: wrong answer", what);
  for (t = 1; t < p.k; ++t)
    CHECK(z[idx[t - 1]] > z[idx[t]] ||
              (z[idx[t - 1]] == z[idx[t]] && idx[t - 1] < idx[t]),
          "%s: order at %lu", what, (unsigned long)t);
  CHECK(fabs(out.log_norm - lse) <= 0.36, "%s: log_norm %.9g vs %.9g", what,
        out.log_norm, lse);
  if (want_exact >= 0)
    CHECK(out.exact == want_exact, "%s: exact flag %d", what, out.exact);
  adasm_ada_index_free(&ix);
done:
  free(idx);
  free(prob);
  free(z);
}

static void test_edges(void) {
  adasm_ada_params p = adasm_ada_params_default();
  adasm_pcg32 r;
  float A[40 * 9], x[9], one = 2.5f, xo = 3.0f;
  adasm_matrix M;
  size_t i;
  adasm_pcg32_seed(&r, 5, 5);
  for (i = 0; i < 40 * 9; ++i) A[i] = (float)gauss(&r);
  for (i = 0; i < 9; ++i) x[i] = (float)gauss(&r);
  M = adasm_matrix_f32(&one, 1, 1, 1);
  check_query("n = d = 1", &M, &xo, p, 1);
  M = adasm_matrix_f32(A, 40, 9, 9);
  p.k = 40;
  check_query("k = n", &M, x, p, 1);
  p.k = 3;
  check_query("small head (the cost model picks the exact pass)", &M, x, p, 1);
  M = adasm_matrix_f32(A, 40, 1, 9);
  p.k = 2;
  check_query("d = 1", &M, x, p, -1);
  { /* x zero: every logit equal, p = 1/n, the lowest rows */
    float z9[9] = {0};
    adasm_ada_index ix;
    adasm_ada_result out;
    size_t idx[3], bytes;
    float prob[3];
    void *w;
    M = adasm_matrix_f32(A, 40, 9, 9);
    p.k = 3;
    CHECK(adasm_ada_index_build(&ix, &M, 0u, NULL) == ADASM_OK, "zero x: build");
    w = work_for(&ix, &p, &bytes);
    result_init(&out, idx, prob);
    CHECK(adasm_ada_query(&ix, &p, z9, w, bytes, &out) == ADASM_OK, "zero x");
    CHECK(idx[0] == 0 && idx[1] == 1 && idx[2] == 2 &&
              fabs(prob[0] - 1.0 / 40.0) < 1e-6 && fabs(out.log_norm - log(40.0)) < 1e-9,
          "zero x: %lu %lu %lu p %g", (unsigned long)idx[0],
          (unsigned long)idx[1], (unsigned long)idx[2], prob[0]);
    adasm_ada_index_free(&ix);
  }
  { /* every row the same: ties to the lowest indices */
    float B[40 * 9];
    for (i = 0; i < 40 * 9; ++i) B[i] = A[i % 9];
    M = adasm_matrix_f32(B, 40, 9, 9);
    p.k = 4;
    check_query("identical rows", &M, x, p, -1);
  }
  p.k = 1;
  M = adasm_matrix_f32(A, 40, 9, 9);
  p.beta = 1e-3f;
  check_query("beta 1e-3", &M, x, p, -1);
  p.beta = 1e3f;
  check_query("beta 1e3", &M, x, p, -1);
  p.beta = 3e30f;
  check_query("beta 3e30", &M, x, p, -1);
}

/* A small head's query checks x in its exact pass (no separate read of x):
   NaN and inf in x, alone or together, with a zero column or one of one
   sign, give the errors and NaN outputs of every other query, on every
   ISA; a finite x the exact answer. */
static void test_small_x(void) {
  const size_t n = 10, d = 37;
  float A[10 * 37], x[37], xb[37], prob[2];
  size_t idx[2], bytes, i, j, s, c;
  adasm_pcg32 r;
  adasm_matrix M;
  adasm_ada_index ix;
  adasm_ada_params p = adasm_ada_params_default();
  adasm_ada_result out;
  void *w;
  adasm_pcg32_seed(&r, 11, 4);
  for (i = 0; i < n * d; ++i) A[i] = (float)gauss(&r);
  for (i = 0; i < n; ++i) {
    A[i * d + 3] = 0.0f;                /* a zero column */
    A[i * d + 5] = -fabsf(A[i * d + 5]); /* a column of one sign */
  }
  for (j = 0; j < d; ++j) x[j] = (float)gauss(&r);
  M = adasm_matrix_f32(A, n, d, d);
  CHECK(adasm_ada_index_build(&ix, &M, 0u, NULL) == ADASM_OK, "small x: build");
  p.k = 2;
  w = work_for(&ix, &p, &bytes);
  result_init(&out, idx, prob);
  for (s = 0; s < sizeof g_isas / sizeof g_isas[0]; ++s) {
    static const struct { size_t col; float v; size_t col2; float v2; adasm_result want; } cs[] = {
        {3, 0.0f, 3, 0.0f, ADASM_ERR_NAN},    /* v NaN (set below) */
        {0, 1.0f, 0, 1.0f, ADASM_ERR_PARAM},  /* v +inf */
        {3, 1.0f, 3, 1.0f, ADASM_ERR_PARAM},  /* +inf on the zero column */
        {5, 1.0f, 5, 1.0f, ADASM_ERR_PARAM},  /* +inf: every logit -inf */
        {5, -1.0f, 5, -1.0f, ADASM_ERR_PARAM}, /* -inf: every logit +inf */
        {0, 1.0f, 1, -1.0f, ADASM_ERR_PARAM}, /* +inf and -inf */
        {0, 0.0f, 1, 1.0f, ADASM_ERR_NAN}};   /* NaN and +inf */
    if (!adasm_isa_supported(g_isas[s])) continue;
    CHECK(adasm_kernels_get(g_isas[s], &p.kern) == ADASM_OK, "small x: kernels");
    for (c = 0; c < sizeof cs / sizeof cs[0]; ++c) {
      adasm_result got;
      memcpy(xb, x, sizeof x);
      xb[cs[c].col] = cs[c].v == 0.0f ? adasm__nanf() : cs[c].v * adasm__inff();
      xb[cs[c].col2] = cs[c].v2 == 0.0f ? adasm__nanf() : cs[c].v2 * adasm__inff();
      idx[0] = idx[1] = 77;
      got = adasm_ada_query(&ix, &p, xb, w, bytes, &out);
      CHECK(got == cs[c].want && prob[0] != prob[0] && prob[1] != prob[1] &&
                out.log_norm != out.log_norm && idx[0] == 0 && idx[1] == 0,
            "small x (%s, case %lu): %s", adasm_isa_name(g_isas[s]),
            (unsigned long)c, adasm_result_string(got));
    }
    CHECK(adasm_ada_query(&ix, &p, x, w, bytes, &out) == ADASM_OK && out.exact &&
              adasm__isfinite(out.log_norm) && idx[0] != idx[1],
          "small x (%s): finite x", adasm_isa_name(g_isas[s]));
  }
  adasm_ada_index_free(&ix);
}

/* A head of a few long rows (its exact pass screens the unscaled x): ranks
   agree with the double reference and probabilities with it to float
   accuracy, on every ISA, and rows that tie in float but not in double
   rank as in double. */
static void test_small_order(void) {
  enum { N = 8, D = 3000 };
  float *A = (float *)xmalloc(2 * N * D * sizeof(float)), *B = A + N * D,
        x[D], xt[D], prob[3];
  double z[N], lse;
  size_t idx[3], bytes, i, j, s, k, q;
  adasm_pcg32 r;
  adasm_matrix M = adasm_matrix_f32(A, N, D, D), MB = adasm_matrix_f32(B, N, D, D);
  adasm_ada_index ix, ib;
  adasm_ada_params p = adasm_ada_params_default();
  adasm_ada_result out;
  void *w;
  adasm_pcg32_seed(&r, 23, 1);
  for (i = 0; i < N * D; ++i) A[i] = B[i] = (float)gauss(&r);
  /* B: rows 4 and 5 tie in float (2^24 + 1 - 2^24 sums to 0 there) but
     not in double, far above the rest for xt */
  memset(xt, 0, sizeof xt);
  memset(B + 4 * D, 0, 2 * D * sizeof(float));
  xt[0] = xt[1] = xt[2] = 1.0f;
  B[5 * D] = B[4 * D] = 16777216.0f;
  B[5 * D + 2] = B[4 * D + 2] = -16777216.0f;
  B[5 * D + 1] = 1.0f;
  for (j = 3; j < 200; ++j) {
    xt[j] = 1.0f;
    B[4 * D + j] = B[5 * D + j] = 0.5f;
  }
  CHECK(adasm_ada_index_build(&ix, &M, 0u, NULL) == ADASM_OK &&
            adasm_ada_index_build(&ib, &MB, 0u, NULL) == ADASM_OK,
        "small order: build");
  p.k = 3;
  w = work_for(&ix, &p, &bytes);
  result_init(&out, idx, prob);
  for (s = 0; s < sizeof g_isas / sizeof g_isas[0]; ++s) {
    if (!adasm_isa_supported(g_isas[s])) continue;
    CHECK(adasm_kernels_get(g_isas[s], &p.kern) == ADASM_OK, "small order: kernels");
    for (q = 0; q < 4; ++q) {
      for (j = 0; j < D; ++j) x[j] = (float)(0.05 * gauss(&r));
      ref_logits(&M, x, 1.0, z);
      lse = ref_lse(z, N);
      for (k = 1; k <= 3; ++k) {
        p.k = k;
        CHECK(adasm_ada_query(&ix, &p, x, w, bytes, &out) == ADASM_OK && out.exact,
              "small order: query");
        /* the double reference's top k, best first, p to float accuracy */
        CHECK(success(z, N, k, 1e-4, idx, prob) &&
                  (k < 2 || z[idx[0]] > z[idx[1]]) && (k < 3 || z[idx[1]] > z[idx[2]]),
              "small order (%s, query %lu, k %lu): rows %lu.. p %.9g",
              adasm_isa_name(g_isas[s]), (unsigned long)q, (unsigned long)k,
              (unsigned long)idx[0], prob[0]);
        CHECK(fabs(out.log_norm - lse) <= 1e-5, "small order: log_norm %.9g vs %.9g",
              out.log_norm, lse);
      }
    }
    for (k = 1; k <= 2; ++k) { /* the float tie: the double order answers */
      p.k = k;
      CHECK(adasm_ada_query(&ib, &p, xt, w, bytes, &out) == ADASM_OK &&
                idx[0] == 5 && (k == 1 || idx[1] == 4),
            "small order (%s): float tie ranked %lu %lu", adasm_isa_name(g_isas[s]),
            (unsigned long)idx[0], (unsigned long)(k > 1 ? idx[1] : 0));
    }
  }
  adasm_ada_index_free(&ix);
  adasm_ada_index_free(&ib);
  free(A);
}

/* A head big enough for the sampling path (not the exact pass). */
static void big_head(size_t n, size_t d, uint64_t seed, float **A, float **x) {
  adasm_pcg32 r;
  size_t i, j;
  *A = (float *)xmalloc(n * d * sizeof(float));
  *x = (float *)xmalloc(d * sizeof(float));
  adasm_pcg32_seed(&r, seed, 3);
  for (i = 0; i < n * d; ++i) (*A)[i] = (float)(gauss(&r) / sqrt((double)d));
  for (j = 0; j < d; ++j) /* aligned with rows 7 and 8 */
    (*x)[j] = (float)(6.0 * (double)((*A)[7 * d + j] + (*A)[8 * d + j]) *
                      sqrt((double)d) / 2.0 + 0.3 * gauss(&r));
}

/* Returned logits are double dot products: rows that tie in float but not
   in double rank as in double; and a query that samples agrees with the
   double reference on planted near-ties. */
static void test_double_logits(void) {
  const size_t n = 3000, d = 256;
  float *A, *x;
  adasm_ada_params p = adasm_ada_params_default();
  adasm_matrix M;
  size_t j;
  big_head(n, d, 17u, &A, &x);
  /* rows 11 and 10: 2^24 + 1 - 2^24 is 1 in double and 0 summed in float */
  for (j = 0; j < d; ++j) A[10 * d + j] = A[11 * d + j] = 0.0f;
  for (j = 0; j < 3; ++j) x[j] = 1.0f;
  A[11 * d + 0] = 16777216.0f;
  A[11 * d + 1] = 1.0f;
  A[11 * d + 2] = -16777216.0f;
  A[10 * d + 0] = 16777216.0f;
  A[10 * d + 2] = -16777216.0f;
  for (j = 3; j < d; ++j) { /* both far above every other row */
    A[10 * d + j] = A[11 * d + j] = 0.5f;
    x[j] = 1.0f;
  }
  M = adasm_matrix_f32(A, n, d, d);
  p.k = 2;
  p.ci_scale = 0.01;
  check_query("float tie, double order (k 2)", &M, x, p, -1);
  p.k = 1;
  check_query("float tie, double order (k 1)", &M, x, p, -1);
  free(A);
  free(x);
}

/* The answer does not depend on how beta A x is split between beta, A and
   x: every output is the same bit for bit under A 2^s, beta 2^-s and under
   x 2^s, beta 2^-s. */
static void test_scale_invariance(void) {
  const size_t n = 4000, d = 192;
  static const int ss[5] = {-64, -16, 0, 16, 64};
  float *A, *x, *As = (float *)xmalloc(n * d * sizeof(float)), xs[192];
  const double scales[2] = {1.0, 0.01};
  size_t si, c, i, bytes;
  big_head(n, d, 23u, &A, &x);
  for (c = 0; c < 2; ++c) {
    size_t idx0[4], idx[4];
    float p0[4], pr[4];
    double ln0 = 0.0;
    uint64_t madds0 = 0;
    for (si = 0; si < 5; ++si) {
      int which;
      for (which = 0; which < 2; ++which) {
        adasm_ada_index ix;
        adasm_ada_params p = adasm_ada_params_default();
        adasm_matrix M;
        adasm_ada_result out;
        void *w;
        const float f = ldexpf(1.0f, ss[si]);
        for (i = 0; i < n * d; ++i) As[i] = which ? A[i] : A[i] * f;
        for (i = 0; i < d; ++i) xs[i] = which ? x[i] * f : x[i];
        M = adasm_matrix_f32(As, n, d, d);
        p.k = 4;
        p.ci_scale = scales[c];
        p.stream = 9;
        p.beta = ldexpf(0.75f, -ss[si]);
        if (adasm_ada_index_build(&ix, &M, 0u, NULL) != ADASM_OK) {
          CHECK(0, "scale %d: build", ss[si]);
          continue;
        }
        w = work_for(&ix, &p, &bytes);
        result_init(&out, idx, pr);
        CHECK(adasm_ada_query(&ix, &p, xs, w, bytes, &out) == ADASM_OK,
              "scale %d: query", ss[si]);
        if (si == 0 && which == 0) {
          memcpy(idx0, idx, sizeof idx);
          memcpy(p0, pr, sizeof pr);
          ln0 = out.log_norm;
          madds0 = out.madds;
        } else {
          CHECK(memcmp(idx0, idx, sizeof idx) == 0 &&
                    memcmp(p0, pr, sizeof pr) == 0 && ln0 == out.log_norm &&
                    madds0 == out.madds,
                "ci_scale %g: 2^%d on %s changes the answer (%.17g vs %.17g, "
                "madds %lu vs %lu)",
                scales[c], ss[si], which ? "x" : "A", out.log_norm, ln0,
                (unsigned long)out.madds, (unsigned long)madds0);
        }
        adasm_ada_index_free(&ix);
      }
    }
  }
  free(A);
  free(x);
  free(As);
}

/* Same seed and stream: the same bits, also from a dirtied workspace;
   another stream: other columns. */
static void test_streams(void) {
  const size_t n = 3000, d = 256;
  float *A, *x;
  adasm_ada_index ix;
  adasm_ada_params p = adasm_ada_params_default();
  adasm_matrix M;
  double *e1 = (double *)xmalloc(n * sizeof(double));
  double *e2 = (double *)xmalloc(n * sizeof(double));
  double *v = (double *)xmalloc(n * sizeof(double));
  size_t bytes, i, differ = 0, idx1[2], idx2[2];
  float p1[2], p2[2];
  adasm_ada_result o1, o2;
  void *w;
  big_head(n, d, 29u, &A, &x);
  M = adasm_matrix_f32(A, n, d, d);
  CHECK(adasm_ada_index_build(&ix, &M, 0u, NULL) == ADASM_OK, "streams: build");
  p.k = 2;
  p.ci_scale = 0.01;
  w = work_for(&ix, &p, &bytes);
  memset(&o1, 0, sizeof o1);
  o2 = o1;
  o1.idx = idx1;
  o1.prob = p1;
  o2.idx = idx2;
  o2.prob = p2;
  CHECK(adasm_ada_query(&ix, &p, x, w, bytes, &o1) == ADASM_OK, "streams q1");
  memset(w, 0xcd, bytes);
  CHECK(adasm_ada_query(&ix, &p, x, w, bytes, &o2) == ADASM_OK, "streams q2");
  CHECK(memcmp(idx1, idx2, sizeof idx1) == 0 && memcmp(p1, p2, sizeof p1) == 0 &&
            o1.log_norm == o2.log_norm && o1.madds == o2.madds,
        "same stream, dirty workspace: another answer");
  CHECK(adasm_ada_estimate(&ix, &p, x, 32, w, bytes, e1, v) == ADASM_OK, "estimate");
  p.stream = 1;
  CHECK(adasm_ada_estimate(&ix, &p, x, 32, w, bytes, e2, v) == ADASM_OK, "estimate 2");
  for (i = 0; i < n; ++i) differ += e1[i] != e2[i];
  CHECK(differ > n / 2, "streams 0 and 1 drew the same columns (%lu rows differ)",
        (unsigned long)differ);
  p.stream = 0;
  p.seed = 43;
  CHECK(adasm_ada_estimate(&ix, &p, x, 32, w, bytes, e2, v) == ADASM_OK, "estimate 3");
  for (i = 0, differ = 0; i < n; ++i) differ += e1[i] != e2[i];
  CHECK(differ > n / 2, "seeds 42 and 43 drew the same columns");
  adasm_ada_index_free(&ix);
  free(A);
  free(x);
  free(e1);
  free(e2);
  free(v);
}

/* The estimator (one round, adasm_ada_estimate) over S streams: its mean is
   the logit of the matrix the index stores (f16 entries; within the bias
   bound of A's), and the mean variance estimate is at least the variance
   seen across streams. */
static void test_estimator(size_t S) {
  const size_t n = 200, d = 96, m = 12;
  float *A, *x;
  adasm_ada_index ix;
  adasm_ada_params p = adasm_ada_params_default();
  adasm_matrix M;
  double *mean = (double *)calloc(n, sizeof(double));
  double *sq = (double *)calloc(n, sizeof(double));
  double *mv = (double *)calloc(n, sizeof(double));
  double *est = (double *)xmalloc(n * sizeof(double));
  double *var = (double *)xmalloc(n * sizeof(double));
  double zmax = 0.0, vratio_min = HUGE_VAL, sumv = 0.0, sume = 0.0;
  const double zlim = sqrt(2.0 * log(2.0 * (double)n / 1e-3));
  size_t s, i, j, bytes;
  void *w;
  big_head(n, d, 31u, &A, &x);
  for (j = 0; j < d; ++j) x[j] *= (j % 5 == 0) ? 8.0f : 1.0f; /* uneven weights */
  M = adasm_matrix_f32(A, n, d, d);
  CHECK(adasm_ada_index_build(&ix, &M, 0u, NULL) == ADASM_OK, "estimator: build");
  w = work_for(&ix, &p, &bytes);
  for (s = 0; s < S; ++s) {
    p.stream = s;
    CHECK(adasm_ada_estimate(&ix, &p, x, m, w, bytes, est, var) == ADASM_OK,
          "estimate");
    for (i = 0; i < n; ++i) {
      mean[i] += est[i];
      sq[i] += est[i] * est[i];
      mv[i] += var[i];
    }
  }
  for (i = 0; i < n; ++i) {
    /* the logit of the stored matrix: mu_j x_j + sigma_j f16 entry x_j */
    double t = 0.0, ev, sd;
    for (j = 0; j < d; ++j)
      t += (ix.mu[j] + ix.sigma[j] * (double)adasm_f16_to_f32(ix.cols[j * ix.ldc + i])) *
           (double)x[j];
    mean[i] /= (double)S;
    ev = sq[i] / (double)S - mean[i] * mean[i];
    ev = ev * (double)S / (double)(S - 1);
    sd = sqrt(ev / (double)S);
    if (sd > 0.0 && fabs(mean[i] - t) / sd > zmax) zmax = fabs(mean[i] - t) / sd;
    mv[i] /= (double)S;
    if (ev > 0.0 && mv[i] / ev < vratio_min) vratio_min = mv[i] / ev;
    sumv += mv[i];
    sume += ev;
  }
  CHECK(zmax <= zlim, "estimator biased: max |z| %.2f over %lu rows (limit %.2f)",
        zmax, (unsigned long)n, zlim);
  /* per row the mean variance estimate may dip below the empirical
     variance by sampling error only: allow 6 standard errors of a
     variance (sqrt(2/S) for Gaussian-like estimates, tails heavier) */
  CHECK(vratio_min >= 1.0 - 6.0 * sqrt(2.0 / (double)S) * 2.0,
        "variance estimate below the variance: min ratio %.3f", vratio_min);
  CHECK(sumv >= sume * (1.0 - 3.0 * sqrt(2.0 / (double)S)),
        "variance estimate too small overall: %.4g vs %.4g", sumv, sume);
  printf("  estimator: %lu streams, max |z| of the mean %.2f (limit %.2f), "
         "variance estimate / variance: min %.3f, overall %.3f\n",
         (unsigned long)S, zmax, zlim, vratio_min, sumv / sume);
  adasm_ada_index_free(&ix);
  free(A);
  free(x);
  free(mean);
  free(sq);
  free(mv);
  free(est);
  free(var);
}

/* ---- the guarantee ---------------------------------------------------------- */

/* ci_scale 1: the proven bounds; T trials per family, k and beta varied. */
static void test_guarantee(head *hs, size_t T) {
  static const size_t ks[4] = {1, 5, 16, 64};
  static const float betas[4] = {0.01f, 1.0f, 10.0f, 100.0f};
  int f;
  for (f = 0; f < FAM_COUNT; ++f) {
    adasm_ada_params p = adasm_ada_params_default();
    size_t ki, bi, ex, fails = 0, lim;
    for (ki = 0; ki < 4; ++ki) {
      p.k = ks[ki];
      fails += trials(&hs[f], p, 0, T / 8, &ex);
    }
    p.k = 1;
    for (bi = 0; bi < 4; ++bi) {
      p.beta = betas[bi];
      fails += trials(&hs[f], p, 500, T / 8, &ex);
    }
    lim = binom_quantile(8 * (T / 8), p.delta, 0.999);
    CHECK(fails <= lim, "%s, proven bounds: %lu failures in %lu (limit %lu)",
          fam_name[f], (unsigned long)fails, (unsigned long)(8 * (T / 8)),
          (unsigned long)lim);
    printf("  %-12s ci_scale 1: %lu failures in %lu trials (k 1..64, beta "
           "0.01..100)\n", fam_name[f], (unsigned long)fails,
           (unsigned long)(8 * (T / 8)));
  }
}

/* Calibration on q training queries, then T held-out queries at the
   certified scale: the held-out failures stay within the binomial bound of
   delta (the certificate), and the scale is below 1 when q allows it. */
static void test_calibrated(head *hs, size_t q, size_t T) {
  int f;
  for (f = 0; f < FAM_COUNT; ++f) {
    head *h = &hs[f];
    adasm_ada_params p = adasm_ada_params_default();
    adasm_ada_calibration cal;
    float *X = (float *)xmalloc(q * h->d * sizeof(float));
    size_t t, cb, ex, fails, lim;
    void *cw;
    p.stream = 100000u; /* training streams apart from the trials' */
    for (t = 0; t < q; ++t) {
      head_query(h, 100000u + t);
      memcpy(X + t * h->d, h->x, h->d * sizeof(float));
    }
    CHECK(adasm_ada_calibrate_workspace_size(&h->ix, &p, q, &cb) == ADASM_OK,
          "cal ws");
    cw = xmalloc(cb);
    CHECK(adasm_ada_calibrate(&h->ix, &p, X, q, h->d, 0.05, cw, cb, &cal) == ADASM_OK,
          "%s: calibrate", fam_name[f]);
    free(cw);
    free(X);
    p.ci_scale = cal.ci_scale;
    fails = trials(h, p, 0, T, &ex);
    lim = binom_quantile(T, p.delta, 0.999);
    CHECK(fails <= lim, "%s calibrated (scale %.3g): %lu failures in %lu (limit %lu)",
          fam_name[f], cal.ci_scale, (unsigned long)fails, (unsigned long)T,
          (unsigned long)lim);
    if (q >= 100)
      CHECK(cal.certified && cal.ci_scale < 1.0, "%s: nothing certified on %lu queries",
            fam_name[f], (unsigned long)q);
    printf("  %-12s calibrated on %lu: scale %.3g (%lu train failures, %lu steps); "
           "held out: %lu failures in %lu, %lu exact passes\n",
           fam_name[f], (unsigned long)q, cal.ci_scale, (unsigned long)cal.failures,
           (unsigned long)cal.steps, (unsigned long)fails, (unsigned long)T,
           (unsigned long)ex);
  }
}

/* ---- 16-bit matrices, own rows ------------------------------------------------- */
static void test_half(void) {
  const size_t n = 2000, d = 128;
  float *A, *x;
  uint16_t *H = (uint16_t *)xmalloc(n * d * sizeof(uint16_t));
  adasm_ada_params p = adasm_ada_params_default();
  adasm_matrix M;
  size_t i;
  big_head(n, d, 37u, &A, &x);
  p.k = 3;
  p.ci_scale = 0.02;
  for (i = 0; i < n * d; ++i) H[i] = adasm_f32_to_f16(A[i]);
  M = adasm_matrix_f16(H, n, d, d);
  check_query("f16 matrix", &M, x, p, -1);
  for (i = 0; i < n * d; ++i) H[i] = adasm_f32_to_bf16(A[i]);
  M = adasm_matrix_bf16(H, n, d, d);
  check_query("bf16 matrix", &M, x, p, -1);
  { /* own rows: the caller's A may go */
    adasm_ada_index ix;
    adasm_ada_result out;
    size_t idx[3], idx2[3], bytes;
    float pr[3], pr2[3];
    float *copy = (float *)xmalloc(n * d * sizeof(float));
    void *w;
    memcpy(copy, A, n * d * sizeof(float));
    M = adasm_matrix_f32(copy, n, d, d);
    CHECK(adasm_ada_index_build(&ix, &M, ADASM_ADA_OWN_ROWS, NULL) == ADASM_OK,
          "own rows: build");
    memset(copy, 0xff, n * d * sizeof(float)); /* NaN everywhere */
    free(copy);
    w = work_for(&ix, &p, &bytes);
    result_init(&out, idx, pr);
    CHECK(adasm_ada_query(&ix, &p, x, w, bytes, &out) == ADASM_OK, "own rows: query");
    M = adasm_matrix_f32(A, n, d, d);
    {
      adasm_ada_index ix2;
      CHECK(adasm_ada_index_build(&ix2, &M, 0u, NULL) == ADASM_OK, "own rows: ref");
      out.idx = idx2;
      out.prob = pr2;
      CHECK(adasm_ada_query(&ix2, &p, x, w, bytes, &out) == ADASM_OK, "own rows: q2");
      CHECK(memcmp(idx, idx2, sizeof idx) == 0 && memcmp(pr, pr2, sizeof pr) == 0,
            "own rows: another answer than the caller's rows give");
      adasm_ada_index_free(&ix2);
    }
    adasm_ada_index_free(&ix);
  }
  free(H);
  free(A);
  free(x);
}

/* ---- kernels of every ISA against the scalar ones --------------------------- */
static void test_kernels(void) {
  static const adasm_isa isas[3] = {ADASM_ISA_AVX2, ADASM_ISA_AVX512, ADASM_ISA_NEON};
  const size_t n = 1000, d = 77;
  float *A, *x;
  adasm_matrix M;
  adasm_ada_index ix;
  const adasm_kernels *ks;
  size_t ii, i, cols[9] = {0, 5, 9, 13, 40, 41, 60, 70, 76};
  float coef[27];
  adasm_pcg32 r;
  big_head(n, d, 41u, &A, &x);
  M = adasm_matrix_f32(A, n, d, d);
  CHECK(adasm_ada_index_build(&ix, &M, 0u, NULL) == ADASM_OK, "kernels: build");
  adasm_pcg32_seed(&r, 1, 1);
  for (i = 0; i < 27; ++i) coef[i] = (float)gauss(&r);
  CHECK(adasm_kernels_get(ADASM_ISA_SCALAR, &ks) == ADASM_OK, "scalar kernels");
  for (ii = 0; ii < 3; ++ii) {
    const adasm_kernels *kv;
    float *e0 = (float *)xmalloc(6 * n * sizeof(float)), *e1 = e0 + 3 * n;
    adasm__ada_acc a0, a1;
    double z0[9], z1[9], maxrel = 0.0;
    size_t rows[9] = {3, 999, 0, 500, 501, 7, 7, 123, 640};
    if (adasm_kernels_get(isas[ii], &kv) != ADASM_OK) {
      free(e0);
      continue;
    }
    a0.e = e0; a0.p = e0 + n; a0.q = e0 + 2 * n;
    a1.e = e1; a1.p = e1 + n; a1.q = e1 + 2 * n;
    /* accumulate over odd row ranges, init then add */
    ks->ada_accum(ix.cols, ix.ldc, cols, coef, 9, 3, 997, &a0, 1);
    ks->ada_accum(ix.cols, ix.ldc, cols + 2, coef + 6, 5, 3, 997, &a0, 0);
    kv->ada_accum(ix.cols, ix.ldc, cols, coef, 9, 3, 997, &a1, 1);
    kv->ada_accum(ix.cols, ix.ldc, cols + 2, coef + 6, 5, 3, 997, &a1, 0);
    for (i = 3; i < 997; ++i) {
      const double d0 = fabs((double)e0[i] - (double)e1[i]);
      const double d1 = fabs((double)a0.p[i] - (double)a1.p[i]);
      const double d2 = fabs((double)a0.q[i] - (double)a1.q[i]);
      const double sc = 1.0 + fabs((double)e0[i]) + fabs((double)a0.p[i]) +
                        fabs((double)a0.q[i]);
      if ((d0 + d1 + d2) / sc > maxrel) maxrel = (d0 + d1 + d2) / sc;
    }
    CHECK(maxrel < 1e-5, "%s ada_accum: relative difference %.3g",
          adasm_isa_name(isas[ii]), maxrel);
    { /* bounds and profile on the sums */
      adasm__ada_bp bp;
      float *u0 = (float *)xmalloc(4 * n * sizeof(float));
      float mx0[2] = {-adasm__inff(), -adasm__inff()}, mx1[2];
      double h0[4 * 32], h1[4 * 32];
      size_t *nr0 = (size_t *)xmalloc(2 * n * sizeof(size_t)), nn0 = 0, nn1 = 0;
      unsigned char *nb0 = (unsigned char *)xmalloc(2 * n);
      memset(&bp, 0, sizeof bp);
      bp.e = a0.e; bp.p = a0.p; bp.q = a0.q; bp.rho = ix.rho;
      bp.inv_lam = 0.25f; bp.sl = 2.0f; bp.cl = 4.0f; bp.l3 = 3.0f;
      bp.scale = 1.0f; bp.bias_rho = 1e-4f; bp.bias_abs = 1e-6f; bp.bias_rel = 4.8e-7f;
      mx1[0] = mx0[0];
      mx1[1] = mx0[1];
      ks->ada_bounds(&bp, 3, 997, u0, u0 + n, mx0);
      kv->ada_bounds(&bp, 3, 997, u0 + 2 * n, u0 + 3 * n, mx1);
      maxrel = 0.0;
      for (i = 3; i < 997; ++i) {
        const double dd = fabs((double)u0[i] - (double)u0[2 * n + i]) +
                          fabs((double)u0[n + i] - (double)u0[3 * n + i]);
        if (dd / (1.0 + fabs((double)u0[i])) > maxrel) maxrel = dd / (1.0 + fabs((double)u0[i]));
      }
      CHECK(maxrel < 1e-5 && fabsf(mx0[0] - mx1[0]) <= 1e-5f * (1.0f + fabsf(mx0[0])) &&
                fabsf(mx0[1] - mx1[1]) <= 1e-5f * (1.0f + fabsf(mx0[1])),
            "%s ada_bounds: difference %.3g", adasm_isa_name(isas[ii]), maxrel);
      memset(h0, 0, sizeof h0);
      memset(h1, 0, sizeof h1);
      ks->ada_profile(u0, u0 + n, 3, 997, mx0[1], 2.0f, 32, h0, nr0, nb0, &nn0);
      kv->ada_profile(u0, u0 + n, 3, 997, mx0[1], 2.0f, 32, h1, nr0 + n, nb0 + n, &nn1);
      CHECK(nn0 == nn1 && memcmp(nr0, nr0 + n, nn0 * sizeof(size_t)) == 0 &&
                memcmp(nb0, nb0 + n, nn0) == 0,
            "%s ada_profile: near lists differ", adasm_isa_name(isas[ii]));
      for (i = 0; i < 4 * 32; ++i)
        CHECK(fabs(h0[i] - h1[i]) <= 1e-5 * (1e-30 + fabs(h0[i])),
              "%s ada_profile: bucket sum %lu: %.9g vs %.9g",
              adasm_isa_name(isas[ii]), (unsigned long)i, h0[i], h1[i]);
      free(u0);
      free(nr0);
      free(nb0);
    }
    /* exact rows: listed and contiguous, every dtype */
    {
      int dt;
      uint16_t *H = (uint16_t *)xmalloc(n * d * sizeof(uint16_t));
      for (dt = 0; dt < 3; ++dt) {
        adasm_matrix D = M;
        if (dt) {
          for (i = 0; i < n * d; ++i)
            H[i] = dt == 1 ? adasm_f32_to_f16(A[i]) : adasm_f32_to_bf16(A[i]);
          D = dt == 1 ? adasm_matrix_f16(H, n, d, d) : adasm_matrix_bf16(H, n, d, d);
        }
        ks->dot_rows_f64(&D, rows, 0, 9, x, z0);
        kv->dot_rows_f64(&D, rows, 0, 9, x, z1);
        for (i = 0; i < 9; ++i)
          CHECK(fabs(z0[i] - z1[i]) <= 1e-12 * (1.0 + fabs(z0[i])) * (double)d,
                "%s dot_rows_f64 dtype %d row %lu: %.17g vs %.17g",
                adasm_isa_name(isas[ii]), dt, (unsigned long)rows[i], z0[i], z1[i]);
        ks->dot_rows_f64(&D, NULL, 990, 9, x, z0);
        kv->dot_rows_f64(&D, NULL, 990, 9, x, z1);
        for (i = 0; i < 9; ++i)
          CHECK(fabs(z0[i] - z1[i]) <= 1e-12 * (1.0 + fabs(z0[i])) * (double)d,
                "%s dot_rows_f64 contiguous dtype %d", adasm_isa_name(isas[ii]), dt);
        /* a row's value does not depend on the group it is computed in
           (four rows at a time, or alone): equal rows rank by index */
        {
          adasm_matrix D2 = D; /* tails of 13 and of 6 columns */
          size_t c;
          for (c = 0; c < 2; ++c) {
            D2.cols = c ? 70 : d;
            kv->dot_rows_f64(&D2, rows, 0, 9, x, z1);
            for (i = 0; i < 9; ++i) {
              double one;
              kv->dot_rows_f64(&D2, rows + i, 0, 1, x, &one);
              CHECK(memcmp(&one, &z1[i], sizeof one) == 0,
                    "%s dot_rows_f64 dtype %d d %lu row %lu alone: %.17g, in a group: %.17g",
                    adasm_isa_name(isas[ii]), dt, (unsigned long)D2.cols,
                    (unsigned long)rows[i], one, z1[i]);
            }
          }
        }
      }
      free(H);
    }
    free(e0);
  }
  adasm_ada_index_free(&ix);
  free(A);
  free(x);
}

/* ---- adaptive sampling against the exact sampler ---------------------------- */
static void test_sample(head *h, size_t T) {
  static const float temps[3] = {1.0f, 0.7f, 1.5f};
  adasm_ada_sample_params sp = adasm_ada_sample_params_default();
  adasm_sampler_params ep;
  adasm_ada_sample_result ar;
  adasm_sampler_result er;
  size_t ab = 0, eb = 0, t, cfg, diff, lim, exact_draws;
  int ok;
  void *aw, *ew;
  for (cfg = 0; cfg < 5; ++cfg) {
    sp = adasm_ada_sample_params_default();
    sp.ci_scale = cfg < 2 ? 1.0 : 0.02;
    sp.chain.top_k = cfg == 1 || cfg == 3 ? 40 : 0;
    sp.chain.min_p = cfg == 2 || cfg == 3 ? 0.05f : 0.0f;
    sp.chain.top_p = cfg == 4 ? 0.9f : 1.0f;
    CHECK(adasm_ada_sample_workspace_size(&h->ix, &sp, &ab) == ADASM_OK, "sample ws");
    aw = xmalloc(ab);
    ep = sp.chain;
    CHECK(adasm_exact_sample_workspace_size(&h->M, &ep, &eb) == ADASM_OK, "exact sample ws");
    ew = xmalloc(eb ? eb : 1);
    diff = exact_draws = 0;
    for (t = 0; t < T; ++t) {
      head_query(h, 7000u + t);
      sp.chain.temperature = ep.temperature = temps[t % 3];
      sp.chain.stream = ep.stream = t;
      sp.chain.draw = ep.draw = t % 5;
      CHECK(adasm_ada_sample(&h->ix, &sp, h->x, aw, ab, &ar) == ADASM_OK, "ada sample");
      CHECK(adasm_exact_sample(&h->M, &ep, h->x, ew, eb, &er) == ADASM_OK, "exact sample");
      exact_draws += (size_t)ar.exact;
      /* a draw is right when its token is the exact sampler's and its p
         is within eps (exact under top-k and from the exact pass); the
         guarantee bounds the rate of wrong draws by delta */
      ok = ar.token == er.token &&
           fabs((double)ar.p - (double)er.p) <=
               (cfg == 1 || ar.exact ? 1e-4 : sp.eps) * (double)er.p + 1e-30 &&
           (cfg != 1 && !ar.exact ? 1 : ar.kept == er.kept);
      if (!ok && diff < 3)
        printf("  sample cfg %lu query %lu: token %lu p %g kept %lu, exact sampler "
               "token %lu p %g kept %lu\n", (unsigned long)cfg, (unsigned long)t,
               (unsigned long)ar.token, (double)ar.p, (unsigned long)ar.kept,
               (unsigned long)er.token, (double)er.p, (unsigned long)er.kept);
      diff += !ok;
    }
    lim = binom_quantile(T, sp.delta, 0.999);
    CHECK(diff <= lim, "sample cfg %lu: %lu of %lu draws are wrong "
          "(limit %lu)", (unsigned long)cfg, (unsigned long)diff,
          (unsigned long)T, (unsigned long)lim);
    if (cfg == 4) CHECK(exact_draws == T, "top-p: not the exact pass");
    printf("  sample (%s, ci_scale %g, top-k %lu, min-p %g, top-p %g): %lu of %lu "
           "draws wrong (token or p), %lu exact passes\n",
           fam_name[h->kind], sp.ci_scale, (unsigned long)sp.chain.top_k,
           (double)sp.chain.min_p, (double)sp.chain.top_p, (unsigned long)diff,
           (unsigned long)T, (unsigned long)exact_draws);
    free(aw);
    free(ew);
  }
  /* greedy, and argument errors */
  sp = adasm_ada_sample_params_default();
  sp.chain.temperature = 0.0f;
  CHECK(adasm_ada_sample_workspace_size(&h->ix, &sp, &ab) == ADASM_OK, "greedy ws");
  aw = xmalloc(ab);
  CHECK(adasm_ada_sample(&h->ix, &sp, h->x, aw, ab, &ar) == ADASM_OK && ar.p == 1.0f &&
            ar.kept == 1, "greedy");
  sp.chain.top_p = 1.5f;
  CHECK(adasm_ada_sample(&h->ix, &sp, h->x, aw, ab, &ar) == ADASM_ERR_PARAM, "top-p 1.5");
  sp = adasm_ada_sample_params_default();
  sp.ci_scale = 0.0;
  CHECK(adasm_ada_sample(&h->ix, &sp, h->x, aw, ab, &ar) == ADASM_ERR_PARAM, "ci_scale 0");
  sp = adasm_ada_sample_params_default();
  CHECK(adasm_ada_sample(&h->ix, &sp, h->x, aw, 10, &ar) == ADASM_ERR_WORKSPACE, "ws small");
  CHECK(adasm_ada_sample(&h->ix, &sp, NULL, aw, ab, &ar) == ADASM_ERR_NULL, "x NULL");
  free(aw);
}

/* ---- the sampler's calibration: certified on q queries, held out on T ------ */
static void test_sample_calibrated(head *h, size_t q, size_t T) {
  static const size_t topks[2] = {0, 40};
  size_t cfg, t, cb = 0, ab = 0, eb = 0, wrong, lim, ex;
  float *X = (float *)xmalloc(q * h->d * sizeof(float));
  for (t = 0; t < q; ++t) {
    head_query(h, 200000u + t);
    memcpy(X + t * h->d, h->x, h->d * sizeof(float));
  }
  for (cfg = 0; cfg < 2; ++cfg) {
    adasm_ada_sample_params sp = adasm_ada_sample_params_default();
    adasm_sampler_params ep;
    adasm_ada_sample_result ar;
    adasm_sampler_result er;
    adasm_ada_calibration cal;
    void *cw, *aw, *ew;
    sp.chain.top_k = topks[cfg];
    sp.chain.stream = 200000u; /* calibration streams apart from the trials' */
    CHECK(adasm_ada_sample_calibrate_workspace_size(&h->ix, &sp, q, &cb) == ADASM_OK,
          "sample calibrate ws");
    cw = xmalloc(cb);
    CHECK(adasm_ada_sample_calibrate(&h->ix, &sp, X, q, h->d, 0.05, cw, cb, &cal) ==
              ADASM_OK, "sample calibrate");
    CHECK(cal.ci_scale > 0.0 && cal.ci_scale <= 1.0 && cal.steps >= 1,
          "sample calibrate: scale %g", cal.ci_scale);
    if (cfg == 0) { /* argument errors */
      CHECK(adasm_ada_sample_calibrate(&h->ix, &sp, X, 0, h->d, 0.05, cw, cb, &cal) ==
                ADASM_ERR_SIZE, "q 0");
      CHECK(adasm_ada_sample_calibrate(&h->ix, &sp, X, q, h->d, 0.0, cw, cb, &cal) ==
                ADASM_ERR_PARAM, "alpha 0");
      CHECK(adasm_ada_sample_calibrate(&h->ix, &sp, NULL, q, h->d, 0.05, cw, cb, &cal) ==
                ADASM_ERR_NULL, "X NULL");
      CHECK(adasm_ada_sample_calibrate(&h->ix, &sp, X, q, h->d, 0.05, cw, cb - 1, &cal) ==
                ADASM_ERR_WORKSPACE, "ws short");
      CHECK(adasm_ada_sample_calibrate(&h->ix, &sp, X, q, h->d - 1, 0.05, cw, cb, &cal) ==
                ADASM_ERR_SIZE, "ldx < d");
    }
    free(cw);
    sp.ci_scale = cal.ci_scale;
    ep = sp.chain;
    CHECK(adasm_ada_sample_workspace_size(&h->ix, &sp, &ab) == ADASM_OK &&
              adasm_exact_sample_workspace_size(&h->M, &ep, &eb) == ADASM_OK, "ws");
    aw = xmalloc(ab);
    ew = xmalloc(eb ? eb : 1);
    wrong = ex = 0;
    for (t = 0; t < T; ++t) { /* held out: other queries, other streams */
      head_query(h, 300000u + t);
      sp.chain.stream = ep.stream = 300000u + t;
      CHECK(adasm_ada_sample(&h->ix, &sp, h->x, aw, ab, &ar) == ADASM_OK &&
                adasm_exact_sample(&h->M, &ep, h->x, ew, eb, &er) == ADASM_OK,
            "sample");
      wrong += ar.token != er.token ||
               !(fabs((double)ar.p - (double)er.p) <= sp.eps * (double)er.p);
      ex += (size_t)ar.exact;
    }
    lim = binom_quantile(T, sp.delta, 0.999);
    CHECK(wrong <= lim, "calibrated sampler (top-k %lu): %lu of %lu draws wrong (limit %lu)",
          (unsigned long)topks[cfg], (unsigned long)wrong, (unsigned long)T,
          (unsigned long)lim);
    printf("  sampler calibrated on %lu (top-k %lu): scale %.3g (%lu train failures, "
           "%lu steps); held out: %lu of %lu draws wrong, %lu exact passes\n",
           (unsigned long)q, (unsigned long)topks[cfg], cal.ci_scale,
           (unsigned long)cal.failures, (unsigned long)cal.steps, (unsigned long)wrong,
           (unsigned long)T, (unsigned long)ex);
    free(aw);
    free(ew);
  }
  free(X);
}

int main(int argc, char **argv) {
  const int smoke = argc > 1 && strcmp(argv[1], "--smoke") == 0;
  const int quick = smoke || (argc > 1 && strcmp(argv[1], "--quick") == 0);
  const size_t T = smoke ? 16 : quick ? 200 : 1000;
  const size_t fam_n = smoke ? 600 : 2500, fam_d = smoke ? 96 : 256;
  head hs[FAM_COUNT];
  double t0 = now_sec();
  int f;
  setvbuf(stdout, NULL, _IOLBF, 0);
  test_errors();
  test_edges();
  test_small_x();
  test_small_order();
  test_kernels();
  test_double_logits();
  test_streams();
  test_half();
  if (!smoke) test_scale_invariance();
  test_estimator(smoke ? 60 : quick ? 400 : 2000);
  for (f = 0; f < FAM_COUNT; ++f) head_init(&hs[f], f, fam_n, fam_d, 11u + (uint64_t)f);
  test_sample(&hs[FAM_LM], smoke ? 20 : quick ? 200 : 1000);
  test_sample_calibrated(&hs[FAM_LM], smoke ? 30 : 200, T);
  test_guarantee(hs, T);
  test_calibrated(hs, smoke ? 30 : 200, T);
  for (f = 0; f < FAM_COUNT; ++f) head_free(&hs[f]);
  free(g_work);
  printf("%d checks, %d failed (%.1f s)\n", g_checks, g_fails, now_sec() - t0);
  return g_fails ? 1 : 0;
}
