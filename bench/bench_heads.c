/* bench_heads.c - AdaSoftmax on a real head, against the exact path and
   OpenBLAS, in one run (issue 3's table).

     bench_heads NAME A.npy X.npy [DELTA ...]      (default deltas 0.1 0.05 0.01)

   A: n x d '<f4' weights; X: q x d '<f4' queries. For each delta: the fudge
   factors are calibrated on the first BENCH_CALIB (200) queries
   (adasm_ada_calibrate), then every other query runs three contenders back
   to back, in a rotating order:
     ada      adasm_ada_query, k = 1, eps = BENCH_EPS (0.3)
     exact    adasm_gemv_softmax_topk (the project's exact path)
     openblas cblas_sgemv (one thread) + adasm_softmax_topk of the logits
   Query t runs with seed BENCH_SEED + t (default 42); the calibration
   always starts from seed 42. Success, as the paper counts it: ada's top-1
   is exact's top-1 and |p_hat - p| <= eps p. Prints one markdown row per
   delta: success with a
   one-sided 95% lower confidence bound (Wilson), fudge factors, pull gain
   (n d / mean pulls), median ms of each contender, and the median of the
   per-query time ratios exact/ada and openblas/ada (paired: the three ran
   on the same query within microseconds of each other).
   Timing: thread CPU time (bench_util.h; BENCH_CLOCK=wall for wall time).
   A second table says where ada's pulls go: mean pulls per query in each
   stage (burn-in, elimination, best arms, normalizer) and the multiply-adds
   executed (HT recomputes included) against the exact path's n d. Built
   with -DBENCH_STAGES (the `bench_stages` executable) it also times the
   stages (the library's ADASM_ADA_PROFILE hook: two clock() calls per
   stage, so those ada times are not the main table's) and, on x86-64, the
   share of ada's cycles spent in the pull kernels (tile kernel, whole-row
   dots, gathers; the rest is per-arm work outside them). */
#include "bench_util.h"

#ifdef BENCH_STAGES
#define ADASM_ADA_PROFILE /* stage CPU timers */
#endif
#define ADASOFTMAX_IMPLEMENTATION
#include "adasoftmax.h"
#define NPY_IMPLEMENTATION
#define NPY_STATIC
#include "../examples/npy.h"

#include <cblas.h>

extern void openblas_set_num_threads(int num_threads) __attribute__((weak));

static int load(const char *path, npy_array *a) {
  char err[256];
  if (npy_read(path, NPY_F4, 2, a, err, sizeof err) != NPY_OK) {
    fprintf(stderr, "bench_heads: %s: %s\n", path, err);
    return 0;
  }
  return 1;
}

/* One-sided 95% Wilson lower bound of a binomial proportion. */
static double wilson_lower(size_t ok, size_t n) {
  const double z = 1.6448536269514722, p = (double)ok / (double)n;
  const double den = 1.0 + z * z / (double)n;
  const double c = p + z * z / (2.0 * (double)n);
  const double r = z * sqrt(p * (1.0 - p) / (double)n +
                            z * z / (4.0 * (double)n * (double)n));
  return (c - r) / den;
}

int main(int argc, char **argv) {
  static const double default_deltas[] = {0.1, 0.05, 0.01};
  const double eps = (double)bench_env_long("BENCH_EPS_PERMILLE", 300) / 1000.0;
  const size_t calib = (size_t)bench_env_long("BENCH_CALIB", 200);
  /* query t runs with seed BENCH_SEED + t (another value: other samples) */
  const uint64_t qseed = (uint64_t)bench_env_long("BENCH_SEED", 42);
  npy_array A, X;
  adasm_ada_index ix;
  size_t n, d, q, t, di, ndelta;
  double deltas[16];
  double stage[16][5];   /* per delta: mean pulls burn-in, elim, best, norm,
                            and madds */
  double stage_ms[16][5]; /* per delta (BENCH_STAGES): CPU ms per stage */
#ifdef BENCH_STAGES
  double kern_pct[16][3]; /* per delta: % of ada's cycles in the tile
                             kernel, whole-row dots, gathers */
#endif
  float *logits;
  void *work = NULL;
  double t0;

  if (argc < 4 || argc - 4 > 16) {
    fprintf(stderr, "usage: bench_heads NAME A.npy X.npy [DELTA ...]\n");
    return 2;
  }
  if (!load(argv[2], &A) || !load(argv[3], &X)) return 2;
  n = A.shape[0];
  d = A.shape[1];
  q = X.shape[0];
  if (X.shape[1] != d || q <= calib) {
    fprintf(stderr, "bench_heads: X must be q x %lu with q > %lu\n",
            (unsigned long)d, (unsigned long)calib);
    return 2;
  }
  ndelta = argc > 4 ? (size_t)(argc - 4) : 3;
  for (di = 0; di < ndelta; di++)
    deltas[di] = argc > 4 ? atof(argv[4 + di]) : default_deltas[di];
  if (openblas_set_num_threads) openblas_set_num_threads(1);
  logits = (float *)bench_alloc(n * sizeof(float));
  t0 = bench_wall_ns();
  if (adasm_ada_index_build(&ix, (const float *)A.data, n, d, d, NULL) !=
      ADASM_OK) {
    fprintf(stderr, "bench_heads: index build failed\n");
    return 1;
  }
  fprintf(stderr, "bench_heads: %s %lu x %lu, index built in %.0f ms\n",
          argv[1], (unsigned long)n, (unsigned long)d,
          (bench_wall_ns() - t0) / 1e6);
  bench_print_load("bench_heads");
  printf("| head | n x d | delta | success (95%% lower bound) | fudge elim / "
         "norm | pull gain | ada ms | exact ms | OpenBLAS ms | exact/ada | "
         "OpenBLAS/ada |\n|:--|:--|--:|--:|--:|--:|--:|--:|--:|--:|--:|\n");

  for (di = 0; di < ndelta; di++) {
    adasm_ada_params p = adasm_ada_params_default();
    const size_t nrep = q - calib;
    double *t_ada = (double *)malloc(nrep * sizeof(double));
    double *t_ex = (double *)malloc(nrep * sizeof(double));
    double *t_ob = (double *)malloc(nrep * sizeof(double));
    double *r_ex = (double *)malloc(nrep * sizeof(double));
    double *r_ob = (double *)malloc(nrep * sizeof(double));
    double fe = 1, fn = 1, pulls = 0;
    size_t ok = 0, bytes = 0, cbytes = 0;
    if (!t_ada || !t_ex || !t_ob || !r_ex || !r_ob) return 1;
    p.eps = eps;
    p.delta = deltas[di];
    p.k = 1;
    if (adasm_ada_workspace_size(&ix, &p, &bytes) != ADASM_OK ||
        adasm_ada_calibrate_workspace_size(&ix, &p, calib, &cbytes) !=
            ADASM_OK) {
      fprintf(stderr, "bench_heads: bad parameters (delta %g)\n", p.delta);
      return 2;
    }
    work = malloc(bytes > cbytes ? bytes : cbytes);
    if (!work) return 1;
    p.seed = 42; /* calibration's base seed, the same for every delta */
    if (calib > 0 &&
        adasm_ada_calibrate(&ix, &p, (const float *)X.data, calib, d, work,
                            cbytes, &fe, &fn) != ADASM_OK) {
      fprintf(stderr, "bench_heads: calibration failed\n");
      return 1;
    }
    p.fudge_elim = fe;
    p.fudge_norm = fn;
    memset(stage[di], 0, sizeof stage[di]);
    memset(stage_ms[di], 0, sizeof stage_ms[di]);
#ifdef BENCH_STAGES
    memset(adasm__ada_prof, 0, sizeof adasm__ada_prof);
    memset(adasm__ada_prof_cyc, 0, sizeof adasm__ada_prof_cyc);
#endif
    for (t = 0; t < nrep; t++) {
      const float *x = (const float *)X.data + (calib + t) * d;
      size_t aidx, eidx, oidx, c;
      float aprob, eprob, oprob;
      double eln, oln, tt[3];
      adasm_ada_result out;
      memset(&out, 0, sizeof out);
      out.idx = &aidx;
      out.prob = &aprob;
      p.seed = qseed + t;
      for (c = 0; c < 3; c++) { /* rotate who goes first */
        const size_t who = (c + t) % 3;
        const double s = bench_now_ns();
        if (who == 0) {
          if (adasm_ada_query(&ix, &p, x, work, bytes, &out) != ADASM_OK)
            return 1;
        } else if (who == 1) {
          if (adasm_gemv_softmax_topk(NULL, (const float *)A.data, n, d, d, x,
                                      1.0f, 1, &eidx, &eprob, &eln,
                                      NULL) != ADASM_OK)
            return 1;
        } else {
          cblas_sgemv(CblasRowMajor, CblasNoTrans, (int)n, (int)d, 1.0f,
                      (const float *)A.data, (int)d, x, 1, 0.0f, logits, 1);
          if (adasm_softmax_topk(NULL, logits, n, 1, &oidx, &oprob, &oln) !=
              ADASM_OK)
            return 1;
        }
        tt[who] = bench_now_ns() - s;
      }
      t_ada[t] = tt[0];
      t_ex[t] = tt[1];
      t_ob[t] = tt[2];
      r_ex[t] = tt[1] / tt[0];
      r_ob[t] = tt[2] / tt[0];
      pulls += (double)out.pulls_total;
      stage[di][0] += (double)out.pulls_burnin / (double)nrep;
      stage[di][1] += (double)out.pulls_elim / (double)nrep;
      stage[di][2] += (double)out.pulls_best / (double)nrep;
      stage[di][3] += (double)out.pulls_norm / (double)nrep;
      stage[di][4] += (double)out.madds / (double)nrep;
      ok += aidx == eidx && fabs((double)aprob - (double)eprob) <=
                                eps * (double)eprob;
    }
    printf("| %s | %lu x %lu | %g | %.1f%% (>= %.1f%%) | %.3g / %.3g | "
           "%.2fx | %.3f | %.3f | %.3f | %.2f | %.2f |\n",
           argv[1], (unsigned long)n, (unsigned long)d, p.delta,
           100.0 * (double)ok / (double)nrep,
           100.0 * wilson_lower(ok, nrep), fe, fn,
           (double)n * (double)d / (pulls / (double)nrep),
           bench_median(t_ada, nrep) / 1e6, bench_median(t_ex, nrep) / 1e6,
           bench_median(t_ob, nrep) / 1e6, bench_median(r_ex, nrep),
           bench_median(r_ob, nrep));
    fflush(stdout);
#ifdef BENCH_STAGES
    for (t = 0; t < 5; t++) stage_ms[di][t] = 1e3 * adasm__ada_prof[t] / (double)nrep;
    for (t = 0; t < 3; t++) /* 0 where the cycle counter is not read */
      kern_pct[di][t] = adasm__ada_prof_cyc[3] > 0.0
                            ? 100.0 * adasm__ada_prof_cyc[t] / adasm__ada_prof_cyc[3]
                            : 0.0;
#endif
    free(work);
    free(t_ada);
    free(t_ex);
    free(t_ob);
    free(r_ex);
    free(r_ob);
  }
  printf("\n| head | delta | pulls: burn-in | elimination | best | "
         "normalizer | multiply-adds executed | / n d |");
#ifdef BENCH_STAGES
  printf(" ms: setup | burn-in | elimination | best | normalizer |"
         " %% of ada: tile kernel | whole rows | gathers |");
#endif
  printf("\n|:--|--:|--:|--:|--:|--:|--:|--:|");
#ifdef BENCH_STAGES
  printf("--:|--:|--:|--:|--:|--:|--:|--:|");
#endif
  printf("\n");
  for (di = 0; di < ndelta; di++) {
    printf("| %s | %g | %.0f | %.0f | %.0f | %.0f | %.0f | %.2f |", argv[1],
           deltas[di], stage[di][0], stage[di][1], stage[di][2], stage[di][3],
           stage[di][4], stage[di][4] / ((double)n * (double)d));
#ifdef BENCH_STAGES
    printf(" %.3f | %.3f | %.3f | %.3f | %.3f | %.0f | %.0f | %.0f |",
           stage_ms[di][0], stage_ms[di][1], stage_ms[di][2], stage_ms[di][3],
           stage_ms[di][4], kern_pct[di][0], kern_pct[di][1], kern_pct[di][2]);
#endif
    printf("\n");
  }
  bench_print_load("bench_heads");
  adasm_ada_index_free(&ix);
  npy_free(&A);
  npy_free(&X);
  return 0;
}
