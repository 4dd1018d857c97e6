/* tests/test_ada.c - tests of AdaSoftmax (Algorithm 1) in adasoftmax.h.

   Build (from the repository root; meson builds it as test 'ada'):
     gcc -std=c99 -O2 -Wall -Wextra -Wpedantic -Wshadow -Wconversion -I. \
         tests/test_ada.c -lm -o test_ada
   Run:
     ./test_ada            all tests (deterministic seeds, ~1 min)
     ./test_ada --quick    fewer statistical trials (sanitizers, qemu)
     ./test_ada --smoke    every path once, few trials, small heads (valgrind)
     ./test_ada --report   pull gains and timings at n = 10^4, d = 512/1024
     ./test_ada --perf     seconds vs the exact path: GPT-2-sized and wide heads

   Statistical tests: over T trials (fresh query and seed each), the number
   of failures (wrong top-k set, or some |p_hat - p| > eps p) must not exceed
   the one-sided 99.9% quantile of Binomial(T, delta). Reference answers are
   computed here in double from the row-major A. Random data comes from the
   library's PCG32 (never libc rand). */
#define ADASOFTMAX_IMPLEMENTATION
#define ADASM_ADA_PROFILE /* stage timers for --perf */
#include "adasoftmax.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

/* ---- tiny harness, xmalloc (test_util.h) ------------------------------- */
#include "test_util.h"

static double now_sec(void) { return (double)clock() / (double)CLOCKS_PER_SEC; }

/* ---- random data ---------------------------------------------------------- */
static double gauss(adasm_pcg32 *r) {
  const double u1 = adasm_pcg32_uniform_open(r);
  const double u2 = adasm_pcg32_uniform_open(r);
  return sqrt(-2.0 * log(u1)) * cos(6.283185307179586 * u2);
}
static double unif(adasm_pcg32 *r, double a, double b) {
  return a + (b - a) * adasm_pcg32_uniform_open(r);
}

/* ---- exact reference (double) -------------------------------------------- */
static void ref_logits(const float *A, size_t n, size_t d, size_t lda,
                       const float *x, float beta, double *mu) {
  size_t i, j;
  for (i = 0; i < n; ++i) {
    double s = 0.0;
    for (j = 0; j < d; ++j) s += (double)A[i * lda + j] * (double)x[j];
    mu[i] = (double)beta * s;
  }
}
static double ref_lse(const double *mu, size_t n) {
  double mx = mu[0], s = 0.0;
  size_t i;
  for (i = 1; i < n; ++i)
    if (mu[i] > mx) mx = mu[i];
  for (i = 0; i < n; ++i) s += exp(mu[i] - mx);
  return mx + log(s);
}
/* Top k by (mu desc, index asc): O(n k), fine for the small k used here. */
static void ref_topk(const double *mu, size_t n, size_t k, size_t *idx) {
  size_t t, i, c = 0;
  for (i = 0; i < n; ++i) {
    size_t pos = c < k ? c : k;
    if (c == k && !(mu[i] > mu[idx[k - 1]])) continue;
    while (pos > 0 && mu[i] > mu[idx[pos - 1]]) --pos;
    for (t = (c < k ? c : k - 1); t > pos; --t) idx[t] = idx[t - 1];
    idx[pos] = i;
    if (c < k) ++c;
  }
}

/* 1 if out's set is the exact top-k set and every p is within eps. */
static int success(const double *mu, size_t n, size_t k, double eps,
                   const adasm_ada_result *out, size_t *scratch) {
  const double lse = ref_lse(mu, n);
  size_t s, t;
  ref_topk(mu, n, k, scratch);
  for (s = 0; s < k; ++s) {
    int found = 0;
    double p;
    for (t = 0; t < k; ++t)
      if (scratch[t] == out->idx[s]) found = 1;
    if (!found) return 0;
    p = exp(mu[out->idx[s]] - lse);
    if (!(fabs((double)out->prob[s] - p) <= eps * p)) return 0;
  }
  return 1;
}

/* Smallest c with P(Binomial(T, p) <= c) >= q. */
static size_t binom_quantile(size_t T, double p, double q) {
  double pmf = pow(1.0 - p, (double)T), cdf = pmf;
  size_t c = 0;
  while (cdf < q && c < T) {
    pmf *= (double)(T - c) / (double)(c + 1) * p / (1.0 - p);
    ++c;
    cdf += pmf;
  }
  return c;
}

/* ---- synthetic families (after the reference's tests/test_utils.py) ------ */
enum { FAM_ONEHOT, FAM_SIGN, FAM_HIGHVAR, FAM_PLANTED, FAM_COUNT };
static const char *const fam_names[FAM_COUNT] = {
    "(a) one-hot winner in noise", "(b) gaussian A, x = sign(row)",
    "(c) few high-variance columns", "(d) planted logits"};

typedef struct family {
  int kind;
  size_t n, d;
  float *A;      /* row-major n x d */
  float *x;      /* current query */
  float *x0;     /* fixed query of the planted family */
  size_t winner; /* (a) */
  adasm_ada_index ix;
} family;

#define HV_PEAKS 2

static void fam_init(family *f, int kind, size_t n, size_t d, uint64_t seed) {
  adasm_pcg32 r;
  size_t i, j;
  adasm_result rc;
  adasm_pcg32_seed(&r, seed, 7u + (uint64_t)kind);
  f->kind = kind;
  f->n = n;
  f->d = d;
  f->A = (float *)xmalloc(n * d * sizeof(float));
  f->x = (float *)xmalloc(d * sizeof(float));
  f->x0 = (float *)xmalloc(d * sizeof(float));
  f->winner = adasm_pcg32_bounded(&r, (uint32_t)n);
  switch (kind) {
  case FAM_ONEHOT:
    /* noise N(0, 1/d); the winner row gets +8/d per column, so with
       x ~ U[0.94, 1] its logit is ~7.8 while the others are ~N(0, 1). */
    for (i = 0; i < n * d; ++i) f->A[i] = (float)(gauss(&r) / sqrt((double)d));
    for (j = 0; j < d; ++j) f->A[f->winner * d + j] += (float)(8.0 / (double)d);
    break;
  case FAM_SIGN:
    /* A ~ N(0, 1) * 12.5/d: the row r that x = sign(A_r) copies has logit
       ~10, the others N(0, 12.5^2/d). */
    for (i = 0; i < n * d; ++i) f->A[i] = (float)(gauss(&r) * 12.5 / (double)d);
    break;
  case FAM_HIGHVAR:
    /* N(0, 1/d) entries, but the first HV_PEAKS columns are +-10/sqrt(d)
       and x = 10 there: logits ~ (100/sqrt d) (s_1 + s_2) + N(0, 1). */
    for (i = 0; i < n; ++i)
      for (j = 0; j < d; ++j)
        f->A[i * d + j] =
            j < HV_PEAKS
                ? (float)((adasm_pcg32_next(&r) & 1u ? 10.0 : -10.0) /
                          sqrt((double)d))
                : (float)(gauss(&r) / sqrt((double)d));
    break;
  default: { /* FAM_PLANTED: A x0 = mu exactly (up to float rounding) */
    double *mu = (double *)xmalloc(n * sizeof(double)), xx = 0.0, sx = 0.0;
    static const double top[5] = {7.0, 6.0, 5.2, 4.6, 4.0};
    size_t t;
    for (j = 0; j < d; ++j) {
      f->x0[j] = (float)unif(&r, 0.94, 1.0);
      xx += (double)f->x0[j] * (double)f->x0[j];
      sx += (double)f->x0[j];
    }
    for (i = 0; i < n; ++i) mu[i] = unif(&r, -3.0, 3.0);
    for (t = 0; t < 5 && t < n; ++t) mu[(f->winner + t * 7919u) % n] = top[t];
    for (i = 0; i < n; ++i) {
      double dot = 0.0;
      float *row = f->A + i * d;
      for (j = 0; j < d; ++j)
        row[j] = (float)(mu[i] * (double)f->x0[j] / xx +
                         gauss(&r) / sqrt((double)d));
      for (j = 0; j < d; ++j) dot += (double)row[j] * (double)f->x0[j];
      for (j = 0; j < d; ++j) row[j] -= (float)((dot - mu[i]) / sx);
    }
    free(mu);
  } break;
  }
  rc = adasm_ada_index_build(&f->ix, f->A, n, d, d, NULL);
  if (rc != ADASM_OK) {
    printf("index build failed: %s\n", adasm_result_string(rc));
    exit(2);
  }
}

static void fam_free(family *f) {
  adasm_ada_index_free(&f->ix);
  free(f->A);
  free(f->x);
  free(f->x0);
}

/* Query number `trial` of the family (deterministic). */
static void fam_query(family *f, uint64_t trial) {
  adasm_pcg32 r;
  size_t j;
  adasm_pcg32_seed(&r, trial, 1000u + (uint64_t)f->kind);
  switch (f->kind) {
  case FAM_ONEHOT:
    for (j = 0; j < f->d; ++j) f->x[j] = (float)unif(&r, 0.94, 1.0);
    break;
  case FAM_SIGN: {
    const size_t row = adasm_pcg32_bounded(&r, (uint32_t)f->n);
    for (j = 0; j < f->d; ++j) f->x[j] = f->A[row * f->d + j] < 0.0f ? -1.0f : 1.0f;
  } break;
  case FAM_HIGHVAR:
    for (j = 0; j < f->d; ++j)
      f->x[j] = j < HV_PEAKS ? 10.0f
                             : (adasm_pcg32_next(&r) & 1u ? 1.0f : -1.0f);
    break;
  default:
    memcpy(f->x, f->x0, f->d * sizeof(float));
    break;
  }
}

/* ---- statistics over trials ------------------------------------------------ */
typedef struct stats {
  size_t trials, failures;
  double pulls, madds, burnin, elim, best, norm; /* sums */
  double t_ada, t_exact;                         /* seconds */
} stats;

static void *g_work = NULL;
static size_t g_work_bytes = 0;

static void *work_for(const adasm_ada_index *ix, const adasm_ada_params *p,
                      size_t *bytes) {
  size_t need = 0;
  adasm_result rc = adasm_ada_workspace_size(ix, p, &need);
  if (rc != ADASM_OK) {
    printf("workspace_size: %s\n", adasm_result_string(rc));
    exit(2);
  }
  if (need > g_work_bytes) {
    free(g_work);
    g_work = xmalloc(need);
    g_work_bytes = need;
  }
  *bytes = g_work_bytes;
  return g_work;
}

/* Runs trials first_trial .. first_trial + T - 1 of family f with params p
   (seed varied per trial), checks each against the exact answer. */
static stats run_trials(family *f, adasm_ada_params p, size_t first_trial,
                        size_t T) {
  stats st;
  size_t t, bytes;
  void *work = work_for(&f->ix, &p, &bytes);
  double *mu = (double *)xmalloc(f->n * sizeof(double));
  size_t *idx = (size_t *)xmalloc(p.k * sizeof(size_t));
  size_t *scratch = (size_t *)xmalloc(p.k * sizeof(size_t));
  float *prob = (float *)xmalloc(p.k * sizeof(float));
  const uint64_t seed0 = p.seed;
  memset(&st, 0, sizeof st);
  for (t = first_trial; t < first_trial + T; ++t) {
    adasm_ada_result out;
    adasm_result rc;
    double t0;
    fam_query(f, t);
    p.seed = seed0 + 1000003u * (uint64_t)t;
    out.idx = idx;
    out.prob = prob;
    t0 = now_sec();
    rc = adasm_ada_query(&f->ix, &p, f->x, work, bytes, &out);
    st.t_ada += now_sec() - t0;
    CHECK(rc == ADASM_OK, "query: %s", adasm_result_string(rc));
    t0 = now_sec();
    ref_logits(f->A, f->n, f->d, f->d, f->x, p.beta, mu);
    st.t_exact += now_sec() - t0;
    ++st.trials;
    if (rc != ADASM_OK || !success(mu, f->n, p.k, p.eps, &out, scratch))
      ++st.failures;
    CHECK(out.pulls_total == out.pulls_burnin + out.pulls_elim +
                                 out.pulls_best + out.pulls_norm,
          "stage pulls do not add up");
    CHECK(out.pulls_total <= (uint64_t)f->n * (uint64_t)out.nnz,
          "more pulls than n*nnz");
    CHECK(out.madds >= out.pulls_total, "executed madds below pulls");
    st.pulls += (double)out.pulls_total;
    st.madds += (double)out.madds;
    st.burnin += (double)out.pulls_burnin;
    st.elim += (double)out.pulls_elim;
    st.best += (double)out.pulls_best;
    st.norm += (double)out.pulls_norm;
  }
  free(mu);
  free(idx);
  free(scratch);
  free(prob);
  return st;
}

static void print_stats(const char *label, const family *f, const stats *s) {
  const double nd = (double)f->n * (double)f->d * (double)s->trials;
  printf("  %-34s fail %3lu/%-4lu gain %6.2fx (madds %5.2fx)  "
         "burn %4.1f%% elim %4.1f%% best %4.1f%% norm %4.1f%%  "
         "ada %.3f ms, exact-ref %.3f ms\n",
         label, (unsigned long)s->failures, (unsigned long)s->trials,
         nd / s->pulls, nd / s->madds, 100.0 * s->burnin / s->pulls,
         100.0 * s->elim / s->pulls, 100.0 * s->best / s->pulls,
         100.0 * s->norm / s->pulls, 1e3 * s->t_ada / (double)s->trials,
         1e3 * s->t_exact / (double)s->trials);
}

/* ---- tests ------------------------------------------------------------------- */
static void test_errors(void) {
  float A[6] = {1, 2, 3, 4, 5, 6}, x[3] = {1, 0, -1};
  float bad[6] = {1, 2, 3, 4, 5, 6};
  adasm_ada_index ix;
  adasm_ada_params p = adasm_ada_params_default(), q;
  adasm_ada_result out;
  size_t idx[2] = {7, 7}, bytes = 0, need = 0;
  float prob[2] = {5.0f, 5.0f};
  unsigned char work[16384]; /* holds the 8 KB tile accumulators too */
  adasm_result rc;

  CHECK(adasm_ada_index_build(NULL, A, 2, 3, 3, NULL) == ADASM_ERR_NULL, "NULL ix");
  CHECK(adasm_ada_index_build(&ix, NULL, 2, 3, 3, NULL) == ADASM_ERR_NULL, "NULL A");
  CHECK(adasm_ada_index_build(&ix, A, 0, 3, 3, NULL) == ADASM_ERR_SIZE, "n = 0");
  CHECK(adasm_ada_index_build(&ix, A, 2, 0, 3, NULL) == ADASM_ERR_SIZE, "d = 0");
  CHECK(adasm_ada_index_build(&ix, A, 2, 3, 2, NULL) == ADASM_ERR_SIZE, "lda < d");
  CHECK(adasm_ada_index_build(&ix, A, (size_t)-1 / 2, 4, 4, NULL) ==
            ADASM_ERR_OVERFLOW, "n*d overflow");
  CHECK(adasm_ada_index_build(&ix, A, 3, (size_t)-1 / 2, (size_t)-1 / 2, NULL) ==
            ADASM_ERR_OVERFLOW, "(n-1)*lda overflow");
  bad[4] = adasm__nanf();
  CHECK(adasm_ada_index_build(&ix, bad, 2, 3, 3, NULL) == ADASM_ERR_NAN, "NaN in A");
  bad[4] = adasm__inff();
  CHECK(adasm_ada_index_build(&ix, bad, 2, 3, 3, NULL) == ADASM_ERR_PARAM, "inf in A");
  bad[4] = -adasm__inff();
  CHECK(adasm_ada_index_build(&ix, bad, 2, 3, 3, NULL) == ADASM_ERR_PARAM, "-inf in A");

  rc = adasm_ada_index_build(&ix, A, 2, 3, 3, NULL);
  CHECK(rc == ADASM_OK, "build: %s", adasm_result_string(rc));
  CHECK(adasm_ada_workspace_size(&ix, &p, NULL) == ADASM_ERR_NULL, "NULL bytes");
  CHECK(adasm_ada_workspace_size(NULL, &p, &bytes) == ADASM_ERR_NULL, "NULL ix");
  CHECK(adasm_ada_workspace_size(&ix, NULL, &bytes) == ADASM_ERR_NULL, "NULL p");
  CHECK(adasm_ada_workspace_size(&ix, &p, &need) == ADASM_OK, "size");
  CHECK(need <= sizeof work, "workspace %lu", (unsigned long)need);
  out.idx = idx;
  out.prob = prob;

#define QERR(params, xx, expect, what)                                         \
  CHECK(adasm_ada_query(&ix, (params), (xx), work, sizeof work, &out) ==       \
            (expect),                                                          \
        "%s", what)
  q = p; q.k = 0;            QERR(&q, x, ADASM_ERR_SIZE, "k = 0");
  q = p; q.k = 3;            QERR(&q, x, ADASM_ERR_SIZE, "k > n");
  q = p; q.eps = 0.0;        QERR(&q, x, ADASM_ERR_PARAM, "eps = 0");
  q = p; q.eps = 1.0;        QERR(&q, x, ADASM_ERR_PARAM, "eps = 1");
  q = p; q.eps = (double)adasm__nanf(); QERR(&q, x, ADASM_ERR_PARAM, "eps NaN");
  q = p; q.delta = 0.0;      QERR(&q, x, ADASM_ERR_PARAM, "delta = 0");
  q = p; q.delta = 1.5;      QERR(&q, x, ADASM_ERR_PARAM, "delta > 1");
  q = p; q.delta = (double)adasm__nanf(); QERR(&q, x, ADASM_ERR_PARAM, "delta NaN");
  q = p; q.beta = 0.0f;      QERR(&q, x, ADASM_ERR_PARAM, "beta = 0");
  q = p; q.beta = -1.0f;     QERR(&q, x, ADASM_ERR_PARAM, "beta < 0");
  q = p; q.beta = adasm__inff(); QERR(&q, x, ADASM_ERR_PARAM, "beta inf");
  q = p; q.beta = adasm__nanf(); QERR(&q, x, ADASM_ERR_PARAM, "beta NaN");
  q = p; q.fudge_elim = 0.0; QERR(&q, x, ADASM_ERR_PARAM, "fudge_elim = 0");
  q = p; q.fudge_norm = -1.0; QERR(&q, x, ADASM_ERR_PARAM, "fudge_norm < 0");
  q = p; q.burnin_frac = 0.0; QERR(&q, x, ADASM_ERR_PARAM, "burnin_frac = 0");
  q = p; q.burnin_frac = 1.5; QERR(&q, x, ADASM_ERR_PARAM, "burnin_frac > 1");
  QERR(&p, NULL, ADASM_ERR_NULL, "NULL x");
  CHECK(adasm_ada_query(NULL, &p, x, work, sizeof work, &out) == ADASM_ERR_NULL, "NULL ix");
  CHECK(adasm_ada_query(&ix, NULL, x, work, sizeof work, &out) == ADASM_ERR_NULL, "NULL p");
  CHECK(adasm_ada_query(&ix, &p, x, work, sizeof work, NULL) == ADASM_ERR_NULL, "NULL out");
  out.idx = NULL;
  QERR(&p, x, ADASM_ERR_NULL, "NULL out.idx");
  out.idx = idx;
  out.prob = NULL;
  QERR(&p, x, ADASM_ERR_NULL, "NULL out.prob");
  out.prob = prob;
  CHECK(adasm_ada_query(&ix, &p, x, NULL, 0, &out) == ADASM_ERR_WORKSPACE, "NULL work");
  CHECK(adasm_ada_query(&ix, &p, x, work, need - ADASM__ADA_ALIGN - 1, &out) ==
            ADASM_ERR_WORKSPACE, "small work");
  /* argument errors leave the outputs untouched */
  CHECK(idx[0] == 7 && prob[0] == 5.0f, "outputs touched on argument error");
  {
    float xn[3] = {1, 0, 0};
    xn[1] = adasm__nanf();
    QERR(&p, xn, ADASM_ERR_NAN, "NaN in x");
    CHECK(prob[0] != prob[0] && out.log_norm != out.log_norm &&
              idx[0] == (size_t)-1, "NaN x: outputs must be NaN");
    xn[1] = -adasm__inff();
    QERR(&p, xn, ADASM_ERR_PARAM, "inf in x");
  }
  /* misaligned workspace pointer of exactly the advertised size works */
  rc = adasm_ada_query(&ix, &p, x, work + 3, need, &out);
  CHECK(rc == ADASM_OK, "misaligned work: %s", adasm_result_string(rc));
#undef QERR
  /* calibration argument checks */
  CHECK(adasm_ada_calibrate_workspace_size(&ix, &p, 0, &bytes) == ADASM_ERR_SIZE, "q = 0");
  CHECK(adasm_ada_calibrate(&ix, &p, x, 1, 2, work, sizeof work, &p.eps, &p.delta) ==
            ADASM_ERR_SIZE, "ldx < d");
  CHECK(adasm_ada_calibrate(&ix, &p, NULL, 1, 3, work, sizeof work, &p.eps, &p.delta) ==
            ADASM_ERR_NULL, "NULL X");
  CHECK(adasm_ada_calibrate(&ix, &p, x, 1, 3, NULL, 0, &p.eps, &p.delta) ==
            ADASM_ERR_WORKSPACE, "NULL calibration work");
  adasm_ada_index_free(&ix);
  CHECK(ix.block == NULL && ix.cols == NULL, "free clears the index");
  adasm_ada_index_free(&ix); /* twice is harmless */
  adasm_ada_index_free(NULL);
}

/* One query with the given params on (A, x); compares the returned set with
   the exact one, p within rel_tol, log_norm within abs_tol. */
static void check_query(const char *what, const float *A, size_t n, size_t d,
                        size_t lda, const float *x, adasm_ada_params p,
                        double rel_tol, double abs_tol, adasm_ada_result *keep) {
  adasm_ada_index ix;
  adasm_ada_result out;
  size_t bytes, s;
  void *work;
  double *mu = (double *)xmalloc(n * sizeof(double)), lse;
  size_t *idx = (size_t *)xmalloc(p.k * sizeof(size_t));
  size_t *ref = (size_t *)xmalloc(p.k * sizeof(size_t));
  float *prob = (float *)xmalloc(p.k * sizeof(float));
  adasm_result rc = adasm_ada_index_build(&ix, A, n, d, lda, NULL);
  CHECK(rc == ADASM_OK, "%s: build %s", what, adasm_result_string(rc));
  if (rc != ADASM_OK) return;
  work = work_for(&ix, &p, &bytes);
  out.idx = idx;
  out.prob = prob;
  rc = adasm_ada_query(&ix, &p, x, work, bytes, &out);
  CHECK(rc == ADASM_OK, "%s: query %s", what, adasm_result_string(rc));
  ref_logits(A, n, d, lda, x, p.beta, mu);
  lse = ref_lse(mu, n);
  ref_topk(mu, n, p.k, ref);
  for (s = 0; s < p.k; ++s) {
    const double pr = exp(mu[ref[s]] - lse);
    CHECK(idx[s] == ref[s], "%s: rank %lu is row %lu, expected %lu", what,
          (unsigned long)s, (unsigned long)idx[s], (unsigned long)ref[s]);
    CHECK(fabs((double)prob[s] - pr) <= rel_tol * pr, "%s: p %g vs %g", what,
          (double)prob[s], pr);
  }
  CHECK(fabs(out.log_norm - lse) <= abs_tol, "%s: log_norm %.17g vs %.17g", what,
        out.log_norm, lse);
  if (keep) {
    *keep = out;
    keep->idx = NULL;
    keep->prob = NULL;
  }
  adasm_ada_index_free(&ix);
  free(mu);
  free(idx);
  free(ref);
  free(prob);
}

static void test_edges(void) {
  adasm_pcg32 r;
  adasm_ada_params p = adasm_ada_params_default();
  adasm_ada_result out;
  size_t d, i, j;
  float *A, *x;
  adasm_pcg32_seed(&r, 99u, 1u);
  A = (float *)xmalloc(300 * 40 * sizeof(float));
  x = (float *)xmalloc(300 * sizeof(float));
  for (i = 0; i < 300 * 40; ++i) A[i] = (float)gauss(&r);
  for (j = 0; j < 300; ++j) x[j] = (float)gauss(&r);

  /* n = 1: row 0, p = 1, log_norm = mu_0 exactly */
  {
    adasm_ada_index ix;
    size_t bytes, idx1;
    float p1;
    double mu0;
    void *work;
    adasm_ada_index_build(&ix, A, 1, 40, 40, NULL);
    work = work_for(&ix, &p, &bytes);
    out.idx = &idx1;
    out.prob = &p1;
    CHECK(adasm_ada_query(&ix, &p, x, work, bytes, &out) == ADASM_OK, "n = 1");
    ref_logits(A, 1, 40, 40, x, p.beta, &mu0);
    CHECK(idx1 == 0 && p1 == 1.0f && out.log_norm == mu0,
          "n = 1: idx %lu p %g log_norm %.17g vs %.17g", (unsigned long)idx1,
          (double)p1, out.log_norm, mu0);
    adasm_ada_index_free(&ix);
  }
  /* d = 1 (budget reaches d at once: exact answer) */
  p.k = 2;
  check_query("d = 1", A, 300, 1, 1, x, p, 1e-6, 1e-9, NULL);
  /* tiny d: every estimate is exact, answers match to rounding */
  p.k = 3;
  for (d = 2; d <= 16; d += 7)
    check_query("tiny d", A, 300, d, 40, x, p, 1e-6, 1e-9, NULL);
  /* k = n: everything exact */
  p.k = 50;
  check_query("k = n", A, 50, 40, 40, x, p, 1e-6, 1e-9, &out);
  CHECK(out.pulls_total == 50u * 40u, "k = n pulls %lu",
        (unsigned long)out.pulls_total);
  { /* ... and agrees with the header's exact fused GEMV + softmax */
    size_t top[3];
    float ptop[3];
    double ln = 0.0;
    adasm_result rc = adasm_gemv_softmax_topk(NULL, A, 50, 40, 40, x, p.beta,
                                              3, top, ptop, &ln, NULL);
    CHECK(rc == ADASM_OK && fabs(ln - out.log_norm) < 1e-5,
          "k = n vs adasm_gemv_softmax_topk: %.9g vs %.9g", ln, out.log_norm);
  }
  /* all-zero x: logits 0, top-k = lowest indices, p = 1/n, log_norm = ln n */
  {
    float *z = (float *)xmalloc(40 * sizeof(float));
    for (j = 0; j < 40; ++j) z[j] = 0.0f;
    p.k = 4;
    check_query("all-zero x", A, 300, 40, 40, z, p, 1e-6, 1e-12, &out);
    CHECK(out.pulls_total == 0 && out.nnz == 0, "all-zero x costs nothing");
    CHECK(fabs(out.log_norm - log(300.0)) < 1e-12, "all-zero log_norm");
    free(z);
  }
  /* all-zero columns are never sampled: nnz counts only the useful ones */
  {
    float *B = (float *)xmalloc(200 * 40 * sizeof(float));
    memcpy(B, A, 200 * 40 * sizeof(float));
    for (i = 0; i < 200; ++i)
      for (j = 0; j < 40; j += 2) B[i * 40 + j] = 0.0f;
    p.k = 1;
    check_query("zero columns", B, 200, 40, 40, x, p, p.eps, p.eps, &out);
    CHECK(out.nnz == 20, "nnz %lu (expected 20)", (unsigned long)out.nnz);
    free(B);
  }
  /* exact ties: rows 3, 11, 250 identical and far above the rest, so their
     order must come out by index (they can only be told apart exactly) */
  {
    float *B = (float *)xmalloc(300 * 40 * sizeof(float));
    size_t k;
    for (i = 0; i < 300 * 40; ++i) B[i] = (float)(0.1 * gauss(&r));
    for (j = 0; j < 40; ++j)
      B[3 * 40 + j] = B[11 * 40 + j] = B[250 * 40 + j] = x[j] > 0 ? 0.5f : -0.5f;
    for (k = 1; k <= 3; ++k) {
      uint64_t seed;
      p.k = k;
      for (seed = 0; seed < 10; ++seed) {
        p.seed = seed;
        check_query("tie", B, 300, 40, 40, x, p, 1e-6, p.eps, NULL);
      }
    }
    p.seed = adasm_ada_params_default().seed;
    free(B);
  }
  /* huge and tiny beta (tiny: all logits ~0, p ~ 1/n; still exact set) */
  p.k = 1;
  p.beta = 1e-3f;
  check_query("beta 1e-3", A, 300, 40, 40, x, p, p.eps, 1e-1, NULL);
  p.beta = 1e3f;
  check_query("beta 1e3", A, 300, 40, 40, x, p, p.eps, 1e3 * p.eps, NULL);
  p.beta = 3e30f;
  check_query("beta 3e30", A, 300, 40, 40, x, p, p.eps, 1e30, NULL);
  free(A);
  free(x);
}

/* At a fixed sample size g, the Horvitz-Thompson estimate is unbiased and
   its variance estimate is unbiased for the estimate's variance (rank
   conditioning makes the per-column terms uncorrelated). Checked over many
   seeds through the internal functions, on a problem with a few heavy
   columns and a few zero ones. */
static void test_estimator(void) {
  enum { N = 40, D = 64, S = 4000 };
  static const size_t levels[3] = {4, 16, 48};
  adasm_pcg32 r;
  adasm_ada_index ix;
  adasm_ada_params p = adasm_ada_params_default();
  adasm__ada_q q;
  float *A = (float *)xmalloc(N * D * sizeof(float)), x[D];
  double truth[N], s1[N], s2[N], sv[N];
  size_t bytes, i, j, li;
  void *work;
  adasm_pcg32_seed(&r, 2718u, 3u);
  for (i = 0; i < N * D; ++i) A[i] = (float)gauss(&r);
  for (i = 0; i < N; ++i) A[i * D + 5] *= 20.0f; /* heavy columns */
  for (i = 0; i < N; ++i) A[i * D + 9] *= 8.0f;
  for (j = 0; j < D; ++j) x[j] = (float)gauss(&r);
  x[3] = x[17] = 0.0f; /* never sampled */
  adasm_ada_index_build(&ix, A, N, D, D, NULL);
  ref_logits(A, N, D, D, x, 1.0f, truth);
  work = work_for(&ix, &p, &bytes);
  CHECK(adasm__ada_carve(&ix, 1, work, bytes, &q.w), "carve");
  q.beta = 1.0;
  for (li = 0; li < 3; ++li) {
    const size_t g = levels[li];
    double zmax = 0.0, est_var = 0.0, emp_var = 0.0;
    uint64_t seed, pulls = 0;
    for (i = 0; i < N; ++i) s1[i] = s2[i] = sv[i] = 0.0;
    for (seed = 0; seed < S; ++seed) {
      adasm__ada_prepare(&q, &ix, x);
      adasm__ada_order(&q, seed);
      for (i = 0; i < N; ++i) q.w.set[i] = i;
      adasm__ada_pull(&q, q.w.set, N, g, &pulls);
      for (i = 0; i < N; ++i) {
        s1[i] += q.w.mu[i];
        s2[i] += q.w.mu[i] * q.w.mu[i];
        sv[i] += q.w.var[i];
      }
    }
    CHECK(pulls == (uint64_t)S * N * g, "pull count at g = %lu", (unsigned long)g);
    for (i = 0; i < N; ++i) {
      const double mean = s1[i] / (double)S, var = s2[i] / (double)S - mean * mean;
      const double z = fabs(mean - truth[i]) / sqrt(var / (double)S);
      if (z > zmax) zmax = z;
      est_var += sv[i] / (double)S;
      emp_var += var;
    }
    printf("  HT estimator, g = %2lu of 62: max |z| of the mean %.2f, "
           "mean variance estimate / empirical variance %.3f\n",
           (unsigned long)g, zmax, est_var / emp_var);
    CHECK(zmax < 4.5, "HT estimate biased at g = %lu (max z %.2f)",
          (unsigned long)g, zmax);
    CHECK(fabs(est_var / emp_var - 1.0) < 0.1,
          "HT variance estimate off at g = %lu: ratio %.3f", (unsigned long)g,
          est_var / emp_var);
  }
  adasm_ada_index_free(&ix);
  free(A);
}

/* The fast path (float level weights, SIMD tile kernel of every ISA this
   CPU runs, and the row gather) against the double reference path
   adasm__ada_pull, at grid sizes 16 and 36 of 62 columns (the sparse arms:
   whole exact rows when g >= d/4, gathers otherwise: d = 64 and 1024). */
static void test_fast_path_d(size_t D) {
  enum { N = 300 };
  static const adasm_isa isas[4] = {ADASM_ISA_SCALAR, ADASM_ISA_AVX2,
                                    ADASM_ISA_AVX512, ADASM_ISA_NEON};
  static const size_t levels[2] = {16, 36};
  adasm_pcg32 r;
  adasm_ada_index ix;
  adasm_ada_params p = adasm_ada_params_default();
  adasm__ada_q q;
  float *A = (float *)xmalloc(N * D * sizeof(float));
  float *x = (float *)xmalloc(D * sizeof(float));
  double ref_mu[N], ref_var[N];
  size_t bytes, i, li, ii, sparse[3] = {3, 150, 299};
  void *work;
  adasm_pcg32_seed(&r, 1618u, 5u);
  for (i = 0; i < N * D; ++i) A[i] = (float)gauss(&r);
  for (i = 0; i < D; ++i) x[i] = (float)gauss(&r);
  x[7] = 0.0f;
  adasm_ada_index_build(&ix, A, N, D, D, NULL);
  work = work_for(&ix, &p, &bytes);
  CHECK(adasm__ada_carve(&ix, 1, work, bytes, &q.w), "carve");
  q.beta = 1.0;
  for (li = 0; li < 2; ++li) {
    const size_t g = levels[li];
    uint64_t pulls = 0;
    adasm__ada_prepare(&q, &ix, x);
    adasm__ada_order(&q, 99u);
    for (i = 0; i < N; ++i) q.w.set[i] = i;
    adasm__ada_pull(&q, q.w.set, N, g, &pulls);
    for (i = 0; i < N; ++i) {
      ref_mu[i] = q.w.mu[i];
      ref_var[i] = q.w.var[i];
    }
    for (ii = 0; ii < 4; ++ii) {
      double err_mu = 0.0, err_var = 0.0;
      size_t gt = 0, t0;
      if (!adasm_isa_supported(isas[ii])) continue;
      adasm__ada_prepare(&q, &ix, x);
      adasm__ada_order(&q, 99u);
      q.tile = adasm__ada_tile_for(isas[ii]);
      /* tiles of the dense kernel, then a sparse set (row gathers); the
         dense arms in descending order: P need not be ascending (the
         best arms are pulled in acceptance order) */
      for (t0 = 0; t0 < N; t0 += ADASM__ADA_TILE) {
        const size_t cnt = N - t0 < ADASM__ADA_TILE ? N - t0 : ADASM__ADA_TILE;
        for (i = 0; i < cnt; ++i) q.w.set[i] = t0 + cnt - 1 - i;
        adasm__ada_pull_fast(&q, q.w.set, cnt, g, &gt, &pulls);
      }
      for (i = 0; i < 3; ++i) q.w.m[sparse[i]] = 0;
      gt = 0;
      adasm__ada_pull_fast(&q, sparse, 3, g, &gt, &pulls);
      for (i = 0; i < N; ++i) {
        const int sp = i == sparse[0] || i == sparse[1] || i == sparse[2];
        double em, ev;
        if (sp && g * 4 >= D) {
          /* a sparse arm at g >= d/4 is read whole: exact, variance 0 */
          double dot = 0.0;
          size_t j;
          for (j = 0; j < D; ++j) dot += (double)A[i * D + j] * (double)x[j];
          CHECK(q.w.m[i] == q.nnz && q.w.var[i] == 0.0 &&
                    fabs(q.w.mu[i] - dot) <= 1e-5 * (1.0 + fabs(dot)),
                "whole row %lu: m %lu var %g mu %.9g dot %.9g",
                (unsigned long)i, (unsigned long)q.w.m[i], q.w.var[i],
                q.w.mu[i], dot);
          continue;
        }
        em = fabs(q.w.mu[i] - ref_mu[i]) / (1.0 + fabs(ref_mu[i]));
        ev = fabs(q.w.var[i] - ref_var[i]) / (1e-30 + ref_var[i]);
        if (em > err_mu) err_mu = em;
        if (ev > err_var) err_var = ev;
        CHECK(q.w.m[i] == g, "fast path m %lu", (unsigned long)q.w.m[i]);
      }
      printf("  fast path %-6s g = %2lu: max rel. error mu %.1e, var %.1e\n",
             adasm_isa_name(isas[ii]), (unsigned long)g, err_mu, err_var);
      CHECK(err_mu < 1e-4 && err_var < 1e-4, "fast path %s off: %g %g",
            adasm_isa_name(isas[ii]), err_mu, err_var);
    }
  }
  adasm_ada_index_free(&ix);
  free(A);
  free(x);
}

static void test_fast_path(void) {
  test_fast_path_d(64);   /* sparse arms read whole (g >= d/4) */
  test_fast_path_d(1024); /* sparse arms gathered */
}

/* Same seed -> bit-identical output; another seed -> same (correct) set. */
static void test_determinism(family *f) {
  adasm_ada_params p = adasm_ada_params_default();
  adasm_ada_result a, b;
  size_t ia[3], ib[3], bytes;
  float pa[3], pb[3];
  void *work;
  p.k = 3;
  work = work_for(&f->ix, &p, &bytes);
  fam_query(f, 5);
  a.idx = ia; a.prob = pa; b.idx = ib; b.prob = pb;
  adasm_ada_query(&f->ix, &p, f->x, work, bytes, &a);
  memset(work, 0xab, bytes); /* stale workspace must not matter */
  adasm_ada_query(&f->ix, &p, f->x, work, bytes, &b);
  CHECK(memcmp(ia, ib, sizeof ia) == 0 && memcmp(pa, pb, sizeof pa) == 0 &&
            a.log_norm == b.log_norm && a.pulls_total == b.pulls_total &&
            a.madds == b.madds, "same seed, different answers");
  p.seed = 12345u;
  adasm_ada_query(&f->ix, &p, f->x, work, bytes, &b);
  CHECK(memcmp(ia, ib, sizeof ia) == 0, "another seed, another top set");
  CHECK(a.pulls_total != b.pulls_total || a.log_norm != b.log_norm,
        "another seed gives the very same run (seed unused?)");
}

/* ADASM_ADA_OWN_ROWS: an index built from a padded copy of A that is then
   poisoned and freed answers bit for bit like the index over A itself. */
static void test_own_rows(family *f) {
  adasm_ada_params p = adasm_ada_params_default();
  adasm_ada_index own;
  adasm_ada_result a, b;
  size_t ia[3], ib[3], bytes, i, lda = f->d + 3;
  float pa[3], pb[3];
  float *copy = (float *)xmalloc(f->n * lda * sizeof(float));
  void *work;
  for (i = 0; i < f->n; ++i)
    memcpy(copy + i * lda, f->A + i * f->d, f->d * sizeof(float));
  CHECK(adasm_ada_index_build_ex(&own, copy, f->n, f->d, lda, 2u, NULL) ==
            ADASM_ERR_PARAM, "unknown build flag accepted");
  CHECK(adasm_ada_index_build_ex(&own, copy, f->n, f->d, lda,
                                 ADASM_ADA_OWN_ROWS, NULL) == ADASM_OK,
        "build with own rows");
  for (i = 0; i < f->n * lda; ++i) copy[i] = (float)nan("");
  free(copy); /* the index must not need it any more */
  CHECK(own.lda == f->d && own.A != NULL, "own rows: lda %lu",
        (unsigned long)own.lda);
  p.k = 3;
  work = work_for(&f->ix, &p, &bytes);
  fam_query(f, 7);
  a.idx = ia; a.prob = pa; b.idx = ib; b.prob = pb;
  CHECK(adasm_ada_query(&f->ix, &p, f->x, work, bytes, &a) == ADASM_OK &&
            adasm_ada_query(&own, &p, f->x, work, bytes, &b) == ADASM_OK,
        "own rows: queries");
  CHECK(memcmp(ia, ib, sizeof ia) == 0 && memcmp(pa, pb, sizeof pa) == 0 &&
            a.log_norm == b.log_norm && a.pulls_total == b.pulls_total,
        "own rows: a different answer");
  adasm_ada_index_free(&own);
}

/* Sparse x: 90% zeros; cost scales with the non-zero columns only. */
static void test_sparse(family *f, size_t T) {
  adasm_ada_params p = adasm_ada_params_default();
  size_t t, j, bytes, fails = 0, scratch[2], idx[2];
  float prob[2];
  double *mu = (double *)xmalloc(f->n * sizeof(double));
  void *work;
  adasm_pcg32 r;
  p.k = 2;
  work = work_for(&f->ix, &p, &bytes);
  adasm_pcg32_seed(&r, 31u, 4u);
  for (t = 0; t < T; ++t) {
    adasm_ada_result out;
    size_t nz = 0;
    fam_query(f, t);
    for (j = 0; j < f->d; ++j)
      if (adasm_pcg32_bounded(&r, 10) != 0) f->x[j] = 0.0f;
      else ++nz;
    out.idx = idx;
    out.prob = prob;
    p.seed = 77u + t;
    CHECK(adasm_ada_query(&f->ix, &p, f->x, work, bytes, &out) == ADASM_OK, "sparse");
    CHECK(out.nnz == nz, "sparse nnz %lu vs %lu", (unsigned long)out.nnz,
          (unsigned long)nz);
    CHECK(out.pulls_total <= (uint64_t)f->n * nz, "sparse: pulls beyond n*nnz");
    ref_logits(f->A, f->n, f->d, f->d, f->x, p.beta, mu);
    if (!success(mu, f->n, p.k, p.eps, &out, scratch)) ++fails;
  }
  CHECK(fails <= binom_quantile(T, p.delta, 0.999), "sparse: %lu failures of %lu",
        (unsigned long)fails, (unsigned long)T);
  free(mu);
}

/* Statistical guarantee with the theory constants (fudge 1). */
static void test_statistical(family *fams, size_t T) {
  static const double deltas[2] = {0.1, 0.05};
  int fi, di;
  printf("statistical (fudge 1, eps 0.3, %lu trials each):\n", (unsigned long)T);
  for (fi = 0; fi < FAM_COUNT; ++fi)
    for (di = 0; di < 2; ++di) {
      adasm_ada_params p = adasm_ada_params_default();
      stats st;
      size_t bound;
      char label[96];
      p.delta = deltas[di];
      p.k = fams[fi].kind == FAM_PLANTED ? 3 : 1;
      st = run_trials(&fams[fi], p, 0, T);
      bound = binom_quantile(T, p.delta, 0.999);
      sprintf(label, "%.29s d%.2f k%lu", fam_names[fi], p.delta, (unsigned long)p.k);
      print_stats(label, &fams[fi], &st);
      CHECK(st.failures <= bound, "%s: %lu failures > %lu", label,
            (unsigned long)st.failures, (unsigned long)bound);
    }
}

/* Other modes: temperature, estimated best logits, k = 5. */
static void test_variants(family *fams, size_t T) {
  adasm_ada_params p = adasm_ada_params_default();
  stats st;
  printf("variants (%lu trials each):\n", (unsigned long)T);
  p.beta = 0.5f;
  st = run_trials(&fams[FAM_SIGN], p, 500, T);
  print_stats("(b) beta 0.5", &fams[FAM_SIGN], &st);
  CHECK(st.failures <= binom_quantile(T, p.delta, 0.999), "beta 0.5");
  p.beta = 3.0f;
  st = run_trials(&fams[FAM_PLANTED], p, 500, T);
  print_stats("(d) beta 3", &fams[FAM_PLANTED], &st);
  CHECK(st.failures <= binom_quantile(T, p.delta, 0.999), "beta 3");
  p.beta = 1.0f;
  p.estimate_best = 1;
  st = run_trials(&fams[FAM_ONEHOT], p, 500, T);
  print_stats("(a) estimate_best", &fams[FAM_ONEHOT], &st);
  CHECK(st.failures <= binom_quantile(T, p.delta, 0.999), "estimate_best");
  p.estimate_best = 0;
  p.k = 5;
  st = run_trials(&fams[FAM_PLANTED], p, 500, T);
  print_stats("(d) k 5", &fams[FAM_PLANTED], &st);
  CHECK(st.failures <= binom_quantile(T, p.delta, 0.999), "k = 5");
}

/* Calibrated fudge factors: tune on `train` queries, then the failure count
   on T held-out queries must stay within the binomial bound for delta. */
static void calibrate_and_test(family *f, adasm_ada_params p, size_t train,
                               size_t T, int check, stats *out_st,
                               double *fe, double *fn) {
  float *X = (float *)xmalloc(train * f->d * sizeof(float));
  size_t t, bytes = 0;
  void *cw;
  adasm_result rc;
  double t0;
  for (t = 0; t < train; ++t) {
    fam_query(f, 100000u + t);
    memcpy(X + t * f->d, f->x, f->d * sizeof(float));
  }
  rc = adasm_ada_calibrate_workspace_size(&f->ix, &p, train, &bytes);
  CHECK(rc == ADASM_OK, "calibrate size: %s", adasm_result_string(rc));
  cw = xmalloc(bytes);
  t0 = now_sec();
  rc = adasm_ada_calibrate(&f->ix, &p, X, train, f->d, cw, bytes, fe, fn);
  CHECK(rc == ADASM_OK, "calibrate: %s", adasm_result_string(rc));
  CHECK(*fe > 0.0 && *fe <= 1.0 && *fn > 0.0 && *fn <= 1.0, "fudges %g %g", *fe, *fn);
  p.fudge_elim = *fe;
  p.fudge_norm = *fn;
  *out_st = run_trials(f, p, 0, T);
  if (check)
    CHECK(out_st->failures <= binom_quantile(T, p.delta, 0.999),
          "calibrated %d: %lu failures of %lu", f->kind,
          (unsigned long)out_st->failures, (unsigned long)T);
  printf("  calibrated in %.2f s: fudge_elim %.3g fudge_norm %.3g\n",
         now_sec() - t0, *fe, *fn);
  free(cw);
  free(X);
}

/* The calibration's acceptance limit: largest c with P(Bin(q, delta) <= c)
   <= 0.05, checked against a direct (linear-space) computation. */
/* Distance of got from want in units of want's last place (0 when equal,
   1e9 when exactly one is inf). */
static double ulps(double got, double want) {
  if (got == want) return 0.0;
  if (got == HUGE_VAL || want == HUGE_VAL) return 1e9;
  return fabs(got - want) / (nextafter(want, HUGE_VAL) - want);
}

/* adasm__ada_exp (the per-arm exp) against libm over the whole range,
   subnormal results included, and the same 0, inf and NaN at the edges;
   then each ISA's vector kernel against the scalar one, lane by lane and
   in its sum, with infinities, NaN and 0 * inf in the inputs. */
static void test_exp(void) {
  static const double edge[] = {0.0, -0.0, 1e-300, -1e-17, 709.78, 709.79,
                                710.0, 1e300, -708.4, -740.0, -745.1, -745.2,
                                -746.0, -1e300};
  static const adasm_isa isas[4] = {ADASM_ISA_SCALAR, ADASM_ISA_AVX2,
                                    ADASM_ISA_AVX512, ADASM_ISA_NEON};
  enum { N = 1003 };
  double v[N], ref[N], got[N], worst = 0.0, wx = 0.0;
  const double inf = HUGE_VAL;
  adasm_pcg32 rng;
  size_t t, ii;
  adasm_pcg32_seed(&rng, 11, 12);
  for (t = 0; t < 2000000; ++t) {
    const double u = adasm_pcg32_uniform_open(&rng);
    const double x = t % 4 ? -750.0 + 1465.0 * u : 4.0 * u - 2.0;
    const double err = ulps(adasm__ada_exp(x), exp(x));
    if (err > worst) {
      worst = err;
      wx = x;
    }
  }
  CHECK(worst <= 4.0, "ada exp: %.2f ulp at %.17g", worst, wx);
  for (t = 0; t < sizeof edge / sizeof edge[0]; ++t)
    CHECK(ulps(adasm__ada_exp(edge[t]), exp(edge[t])) <= 4.0,
          "ada exp(%g): %.17g vs %.17g", edge[t], adasm__ada_exp(edge[t]),
          exp(edge[t]));
  CHECK(adasm__ada_exp(inf) == inf && adasm__ada_exp(-inf) == 0.0 &&
            adasm__ada_exp(-746.0) == 0.0 && adasm__ada_exp(710.0) == inf,
        "ada exp: 0 and inf at the ends");
  CHECK(adasm__ada_exp(nan("")) != adasm__ada_exp(nan("")), "ada exp(NaN) is NaN");

  for (t = 0; t < N; ++t) v[t] = -700.0 + 720.0 * adasm_pcg32_uniform_open(&rng);
  v[5] = -inf;
  v[17] = inf;
  v[40] = nan("");
  for (ii = 0; ii < 4; ++ii) {
    adasm__ada_expmin_fn f;
    double s_ref, s_got, e = 0.0;
    int nan_ok = 1;
    if (!adasm_isa_supported(isas[ii])) continue;
    f = adasm__ada_expmin_for(isas[ii]);
    /* the V1 form: exp(min(a - v/2, b - v)) */
    s_ref = adasm__ada_expmin_scalar(v, N, -3.0, -0.5, 1.0, -1.0, ref);
    s_got = f(v, N, -3.0, -0.5, 1.0, -1.0, got);
    for (t = 0; t < N; ++t) {
      if (ref[t] != ref[t] || got[t] != got[t]) {
        nan_ok &= ref[t] != ref[t] && got[t] != got[t];
        continue;
      }
      if (ulps(got[t], ref[t]) > e) e = ulps(got[t], ref[t]);
    }
    CHECK(nan_ok && e <= 4.0, "expmin %s: lanes %.1f ulp from scalar, NaN %d",
          adasm_isa_name(isas[ii]), e, nan_ok);
    CHECK(s_got != s_got && s_ref != s_ref, "expmin %s: NaN in the sum",
          adasm_isa_name(isas[ii]));
    /* the logsumexp form: b = inf, cb = 0 (0 * inf = NaN must not win) */
    v[40] = -1.0;
    s_ref = adasm__ada_expmin_scalar(v, N, -20.0, 1.0, inf, 0.0, NULL);
    s_got = f(v, N, -20.0, 1.0, inf, 0.0, NULL);
    v[40] = nan("");
    CHECK(s_ref == inf && s_got == inf, "expmin %s: +inf input", adasm_isa_name(isas[ii]));
    v[17] = -2.0;
    v[40] = -1.0;
    s_ref = adasm__ada_expmin_scalar(v, N, -20.0, 1.0, inf, 0.0, NULL);
    s_got = f(v, N, -20.0, 1.0, inf, 0.0, NULL);
    v[40] = nan("");
    v[17] = inf;
    CHECK(s_ref > 0.0 && s_ref < inf && fabs(s_got - s_ref) <= 1e-14 * s_ref,
          "expmin %s: sum %.17g vs %.17g", adasm_isa_name(isas[ii]), s_got, s_ref);
  }
}

static void test_cal_limit(void) {
  static const size_t qs[6] = {10, 28, 29, 100, 200, 1000};
  static const double ds[2] = {0.1, 0.05};
  size_t qi, di;
  for (di = 0; di < 2; ++di)
    for (qi = 0; qi < 6; ++qi) {
      const size_t q = qs[qi];
      const double dl = ds[di];
      double pmf = pow(1.0 - dl, (double)q), cdf = pmf;
      size_t c = 0, lim = 0;
      int ok_ref = cdf <= 0.05, ok;
      while (c < q) {
        pmf *= (double)(q - c) / (double)(c + 1) * dl / (1.0 - dl);
        if (cdf + pmf > 0.05) break;
        cdf += pmf;
        ++c;
      }
      ok = adasm__ada_cal_limit(q, dl, &lim);
      CHECK(ok == ok_ref && (!ok || lim == c),
            "cal limit q %lu delta %.2f: %d/%lu vs %d/%lu", (unsigned long)q,
            dl, ok, (unsigned long)lim, ok_ref, (unsigned long)c);
      if (q == 200 && di == 0) printf("  calibration limit q 200, delta 0.1: %lu failures\n", (unsigned long)lim);
    }
}

static void test_calibrated(family *fams, size_t train, size_t T) {
  int fi;
  printf("calibrated (train %lu, held-out %lu, delta 0.1):\n",
         (unsigned long)train, (unsigned long)T);
  for (fi = 0; fi < FAM_COUNT; ++fi) {
    adasm_ada_params p = adasm_ada_params_default();
    stats st;
    double fe, fn;
    calibrate_and_test(&fams[fi], p, train, T, 1, &st, &fe, &fn);
    print_stats(fam_names[fi], &fams[fi], &st);
  }
  { /* a smaller delta and k > 1 */
    adasm_ada_params p = adasm_ada_params_default();
    stats st;
    double fe, fn;
    p.delta = 0.05;
    p.k = 3;
    calibrate_and_test(&fams[FAM_PLANTED], p, train, T, 1, &st, &fe, &fn);
    print_stats("(d) planted, delta 0.05, k 3", &fams[FAM_PLANTED], &st);
  }
}

/* ---- --perf: seconds against the exact path ------------------------------
   Realistic heads, calibrated on 200 queries, measured on 300 others:
   success rate, pull gain, median ms of ada_query and of the header's exact
   adasm_gemv_softmax_topk (same queries, interleaved), and the median ms of
   each ada stage. Times are process CPU time (clock()): on this shared
   machine that excludes time the process waited for a core. */
enum { HEAD_LM, HEAD_WIDE };
static double g_perf_fe = 0.0, g_perf_fn = 0.0; /* --perf FE FN: skip calibration */

static int cmp_double(const void *a, const void *b) {
  const double x = *(const double *)a, y = *(const double *)b;
  return x < y ? -1 : x > y;
}
static double median(double *v, size_t cnt) {
  qsort(v, cnt, sizeof *v, cmp_double);
  return cnt % 2 ? v[cnt / 2] : 0.5 * (v[cnt / 2 - 1] + v[cnt / 2]);
}

/* LM-like head: rank-48 structure plus noise, 8 outlier dimensions with 4x
   scale, row norms log-normal. Query: a hidden state from the same latent
   space, scaled to a logit spread of 1.5, plus a push along one row so that
   row wins by a gap in U[0.5, 3]. Wide head (VGG-like): N(0, 1/d) rows,
   x = ReLU features (about half zeros) leaning towards one class, scaled so
   the winner leads by U[1, 4]. */
static void head_make(int kind, size_t n, size_t d, size_t nq, float **Aout,
                      float **Xout) {
  enum { R = 48 };
  adasm_pcg32 r;
  float *A = (float *)xmalloc(n * d * sizeof(float));
  float *X = (float *)xmalloc(nq * d * sizeof(float));
  float *lg = (float *)xmalloc(n * sizeof(float));
  double *W = (double *)xmalloc(d * R * sizeof(double)), z[R];
  double *h = (double *)xmalloc(d * sizeof(double));
  size_t i, j, k, t;
  adasm_pcg32_seed(&r, 4242u, 99u + (uint64_t)kind);
  if (kind == HEAD_LM) {
    for (i = 0; i < d * R; ++i) W[i] = gauss(&r);
    for (i = 0; i < n; ++i) {
      const double rho = exp(0.25 * gauss(&r)) / sqrt((double)d);
      for (k = 0; k < R; ++k) z[k] = gauss(&r) / sqrt((double)R);
      for (j = 0; j < d; ++j) {
        double lr = 0.0;
        for (k = 0; k < R; ++k) lr += W[j * R + k] * z[k];
        A[i * d + j] = (float)(rho * (j % 97 == 5 ? 4.0 : 1.0) *
                               (0.8 * lr + 0.6 * gauss(&r)));
      }
    }
  } else {
    for (i = 0; i < n * d; ++i) A[i] = (float)(gauss(&r) / sqrt((double)d));
  }
  for (t = 0; t < nq; ++t) {
    float *x = X + t * d;
    const size_t c = adasm_pcg32_bounded(&r, (uint32_t)n);
    size_t top;
    float ptop;
    double m1 = -HUGE_VAL, m2 = -HUGE_VAL, sc;
    if (kind == HEAD_LM) {
      double mean = 0.0, var = 0.0, nr = 0.0, push;
      for (k = 0; k < R; ++k) z[k] = gauss(&r);
      for (j = 0; j < d; ++j) {
        double lr = 0.0;
        for (k = 0; k < R; ++k) lr += W[j * R + k] * z[k];
        h[j] = 0.8 * lr / sqrt((double)R) + 0.6 * gauss(&r);
        x[j] = (float)h[j];
      }
      adasm_gemv_softmax_topk(NULL, A, n, d, d, x, 1.0f, 1, &top, &ptop, NULL, lg);
      for (i = 0; i < n; ++i) mean += (double)lg[i];
      mean /= (double)n;
      for (i = 0; i < n; ++i) var += ((double)lg[i] - mean) * ((double)lg[i] - mean);
      sc = 1.5 / sqrt(var / (double)n);
      for (i = 0; i < n; ++i)
        if (sc * (double)lg[i] > m1) m1 = sc * (double)lg[i];
      for (j = 0; j < d; ++j) nr += (double)A[c * d + j] * (double)A[c * d + j];
      push = m1 - sc * (double)lg[c] + unif(&r, 0.5, 3.0);
      for (j = 0; j < d; ++j)
        x[j] = (float)(sc * h[j] + push * (double)A[c * d + j] / nr);
    } else {
      const double b = unif(&r, 0.3, 0.6);
      for (j = 0; j < d; ++j) {
        const double g = gauss(&r), a = (double)A[c * d + j] * sqrt((double)d);
        x[j] = (float)((g > 0.0 ? g : 0.0) + (a > 0.0 && g > -0.5 ? b * a : 0.0));
      }
      adasm_gemv_softmax_topk(NULL, A, n, d, d, x, 1.0f, 1, &top, &ptop, NULL, lg);
      for (i = 0; i < n; ++i)
        if ((double)lg[i] > m1) { m2 = m1; m1 = (double)lg[i]; }
        else if ((double)lg[i] > m2) m2 = (double)lg[i];
      sc = unif(&r, 1.0, 4.0) / (m1 - m2 > 1e-6 ? m1 - m2 : 1e-6);
      for (j = 0; j < d; ++j) x[j] = (float)(sc * (double)x[j]);
    }
  }
  free(lg);
  free(W);
  free(h);
  *Aout = A;
  *Xout = X;
}

static void perf_head(const char *name, int kind, size_t n, size_t d,
                      size_t ncal, size_t ntest) {
  float *A, *X;
  adasm_ada_index ix;
  adasm_ada_params p = adasm_ada_params_default();
  double fe = 1.0, fn = 1.0, t0, tcal, pulls = 0.0, madds = 0.0, ptop = 0.0;
  double *mu = (double *)xmalloc(n * sizeof(double));
  double *ta = (double *)xmalloc(ntest * sizeof(double));
  double *te = (double *)xmalloc(ntest * sizeof(double));
  double *ts[5], prof0[5], sp[4] = {0, 0, 0, 0};
  size_t t, s, bytes, fails = 0, idx[1], scratch[1], top[1];
  float prob[1], ptmp[1];
  void *work, *cw;
  int st;
  for (st = 0; st < 5; ++st) ts[st] = (double *)xmalloc(ntest * sizeof(double));
  printf("%s: n = %lu, d = %lu; generating...\n", name, (unsigned long)n,
         (unsigned long)d);
  head_make(kind, n, d, ncal + ntest, &A, &X);
  if (adasm_ada_index_build(&ix, A, n, d, d, NULL) != ADASM_OK) exit(2);
  CHECK(adasm_ada_calibrate_workspace_size(&ix, &p, ncal, &bytes) == ADASM_OK, "cal size");
  cw = xmalloc(bytes);
  t0 = now_sec();
  if (g_perf_fe > 0.0 && kind == HEAD_LM) { /* quick iteration: given fudges */
    fe = g_perf_fe;
    fn = g_perf_fn;
  } else {
    CHECK(adasm_ada_calibrate(&ix, &p, X, ncal, d, cw, bytes, &fe, &fn) == ADASM_OK,
          "calibrate");
  }
  tcal = now_sec() - t0;
  free(cw);
  p.fudge_elim = fe;
  p.fudge_norm = fn;
  work = work_for(&ix, &p, &bytes);
  memset(adasm__ada_prof_rows, 0, sizeof adasm__ada_prof_rows);
  memset(adasm__ada_prof_tile, 0, sizeof adasm__ada_prof_tile);
  for (t = 0; t < ntest; ++t) {
    const float *x = X + (ncal + t) * d;
    adasm_ada_result out;
    double lse;
    out.idx = idx;
    out.prob = prob;
    p.seed = 7u + 1000003u * (uint64_t)t;
    t0 = now_sec();
    adasm_gemv_softmax_topk(NULL, A, n, d, d, x, 1.0f, 1, top, ptmp, NULL, NULL);
    te[t] = now_sec() - t0;
    memcpy(prof0, adasm__ada_prof, sizeof prof0);
    t0 = now_sec();
    CHECK(adasm_ada_query(&ix, &p, x, work, bytes, &out) == ADASM_OK, "query");
    ta[t] = now_sec() - t0;
    for (st = 0; st < 5; ++st) ts[st][t] = adasm__ada_prof[st] - prof0[st];
    ref_logits(A, n, d, d, x, 1.0f, mu);
    if (!success(mu, n, 1, p.eps, &out, scratch)) ++fails;
    lse = ref_lse(mu, n);
    ref_topk(mu, n, 1, scratch);
    ptop += exp(mu[scratch[0]] - lse);
    pulls += (double)out.pulls_total;
    madds += (double)out.madds;
    sp[0] += (double)out.pulls_burnin;
    sp[1] += (double)out.pulls_elim;
    sp[2] += (double)out.pulls_best;
    sp[3] += (double)out.pulls_norm;
  }
  {
    const double nd = (double)n * (double)d * (double)ntest;
    const double ma = median(ta, ntest), me = median(te, ntest);
    printf("  calibrated on %lu queries in %.1f s: fudge_elim %.3g, fudge_norm %.3g\n",
           (unsigned long)ncal, tcal, fe, fn);
    printf("  %lu held-out queries: success %.1f%% (mean top-1 p %.2f), pull gain "
           "%.2fx, madds gain %.2fx\n", (unsigned long)ntest,
           100.0 * (1.0 - (double)fails / (double)ntest), ptop / (double)ntest,
           nd / pulls, nd / madds);
    printf("  median ms: ada %.3f, exact %.3f -> ada is %.2fx %s\n", 1e3 * ma,
           1e3 * me, ma < me ? me / ma : ma / me, ma < me ? "faster" : "slower");
    printf("  ada stage medians (ms): setup+order %.3f, burn-in %.3f, elim %.3f, "
           "best %.3f, norm+out %.3f\n", 1e3 * median(ts[0], ntest),
           1e3 * median(ts[1], ntest), 1e3 * median(ts[2], ntest),
           1e3 * median(ts[3], ntest), 1e3 * median(ts[4], ntest));
    printf("  pulls per query: burn-in %.0f, elim %.0f, best %.0f, norm %.0f; "
           "row gathers %.0f arms (%.0f entries), tile kernel %.0f calls "
           "(%.0f entries)\n", sp[0] / (double)ntest, sp[1] / (double)ntest,
           sp[2] / (double)ntest, sp[3] / (double)ntest,
           adasm__ada_prof_rows[0] / (double)ntest,
           adasm__ada_prof_rows[1] / (double)ntest,
           adasm__ada_prof_tile[0] / (double)ntest,
           adasm__ada_prof_tile[1] / (double)ntest);
  }
  for (s = 0; s < 5; ++s) free(ts[s]);
  adasm_ada_index_free(&ix);
  free(A);
  free(X);
  free(mu);
  free(ta);
  free(te);
}

static void perf(void) {
  printf("isa %s\n", adasm_isa_name(adasm_isa_best()));
  perf_head("LM-like head (GPT-2 size)", HEAD_LM, 50257, 768, 200, 300);
  if (g_perf_fe <= 0.0)
    perf_head("wide head (VGG-19 size)", HEAD_WIDE, 10, 25088, 200, 300);
}

/* --report: gains at n = 10^4, d = 512 and 1024 (theory and calibrated). */
static void report(void) {
  static const size_t dims[2] = {512, 1024};
  int di, fi;
  for (di = 0; di < 2; ++di) {
    printf("== n = 10000, d = %lu, eps 0.3, delta 0.1, k 1 ==\n",
           (unsigned long)dims[di]);
    for (fi = 0; fi < FAM_COUNT; ++fi) {
      family f;
      adasm_ada_params p = adasm_ada_params_default();
      stats st;
      double fe, fn, t0, t_gemv = 0.0;
      size_t t, top;
      float ptop;
      fam_init(&f, fi, 10000, dims[di], 2024u + (uint64_t)di);
      printf("%s\n", fam_names[fi]);
      st = run_trials(&f, p, 0, 100);
      print_stats("theory (fudge 1)", &f, &st);
      for (t = 0; t < 100; ++t) {
        fam_query(&f, t);
        t0 = now_sec();
        adasm_gemv_softmax_topk(NULL, f.A, f.n, f.d, f.d, f.x, 1.0f, 1, &top,
                                &ptop, NULL, NULL);
        t_gemv += now_sec() - t0;
      }
      printf("  header exact adasm_gemv_softmax_topk: %.3f ms/query\n",
             1e3 * t_gemv / 100.0);
      calibrate_and_test(&f, p, 200, 300, 0, &st, &fe, &fn);
      print_stats("calibrated", &f, &st);
      fam_free(&f);
    }
  }
}

int main(int argc, char **argv) {
  family fams[FAM_COUNT];
  /* --smoke: every code path once with few trials (valgrind runs it;
     the binomial bounds widen with fewer trials, so the checks still hold) */
  int fi, smoke = argc > 1 && strcmp(argv[1], "--smoke") == 0;
  int quick = smoke || (argc > 1 && strcmp(argv[1], "--quick") == 0);
  const size_t T = smoke ? 9 : quick ? 60 : 300;
  const size_t fam_n = smoke ? 500 : 2000, fam_d = 512;
  double t0 = now_sec();
  setvbuf(stdout, NULL, _IOLBF, 0); /* progress visible when redirected */
  if (argc > 1 && strcmp(argv[1], "--perf") == 0) {
    if (argc > 3) {
      g_perf_fe = atof(argv[2]);
      g_perf_fn = atof(argv[3]);
    }
    perf();
    free(g_work);
    return g_fails ? 1 : 0;
  }
  if (argc > 1 && strcmp(argv[1], "--report") == 0) {
    report();
    free(g_work);
    return 0;
  }
  test_errors();
  test_edges();
  test_estimator();
  test_fast_path();
  test_exp();
  test_cal_limit();
  for (fi = 0; fi < FAM_COUNT; ++fi) fam_init(&fams[fi], fi, fam_n, fam_d, 11u);
  test_determinism(&fams[FAM_PLANTED]);
  test_own_rows(&fams[FAM_PLANTED]);
  test_sparse(&fams[FAM_SIGN], T / 3);
  test_statistical(fams, T);
  test_variants(fams, T / 3);
  test_calibrated(fams, smoke ? 30 : quick ? 60 : 150, T);
  for (fi = 0; fi < FAM_COUNT; ++fi) fam_free(&fams[fi]);
  free(g_work);
  printf("%d checks, %d failed (%.1f s)\n", g_checks, g_fails, now_sec() - t0);
  return g_fails ? 1 : 0;
}
