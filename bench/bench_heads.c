/* bench_heads.c - AdaSoftmax on one head, against the exact path and
   OpenBLAS, in one run: the table of `bash bench/run.sh heads`.

     bench_heads NAME A.npy X.npy [DELTA ...]      (default deltas 0.1 0.05 0.01)

   A: n x d '<f4' weights; X: q x d '<f4' queries (q >= BENCH_CALIB + 1).
   BENCH_CALIB (200) queries drawn at random (seed BENCH_SEED, default 42)
   calibrate; the others are judged, against a float64 reference computed
   here (every logit a double dot product). For each delta:
     1. adasm_ada_calibrate certifies a ci_scale on the calibration queries
        (Learn-then-Test, alpha 0.05; eps BENCH_EPS_PERMILLE / 1000 = 0.3);
     2. every judged query runs three contenders back to back, in a rotating
        order: ada (adasm_ada_query, k = 1, its stream = the query's index),
        exact (adasm_exact_query: the project's fused exact path, float32),
        openblas (cblas_sgemv on one thread + adasm_softmax_topk).
   Success, as the paper counts it: ada's top-1 is the float64 top-1 and
   |p_hat - p| <= eps p. One markdown row per delta: success with its
   one-sided 95% lower confidence bound (Wilson), the certified ci_scale,
   the pull gain (n d / mean multiply-adds), the mean MB ada read per query
   and how many of its queries fell back to the exact pass, median ms of
   each contender, and the medians of the per-query ratios exact/ada and
   openblas/ada (paired: the three ran on the same query within
   microseconds). Then the cost model (docs/ada-engine.md): the time
   predicted from ada's bytes alone at the bandwidth the exact path showed
   in this run (its bytes / its median time), against the measured time.
   Timing: thread CPU time (bench_util.h; BENCH_CLOCK=wall for wall time). */
#include "bench_util.h"

#define ADASOFTMAX_IMPLEMENTATION
#include "adasoftmax.h"
#define NPY_IMPLEMENTATION
#define NPY_STATIC
#include "../examples/npy.h"

#include <cblas.h>

extern void openblas_set_num_threads(int num_threads) __attribute__((weak));

/* One thread: every contender is single-threaded. */
static void openblas_set_num_threads_maybe(void) {
  if (openblas_set_num_threads) openblas_set_num_threads(1);
}

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

/* Top-1 and its probability in double: every logit a double-accumulated
   dot product (BLAS sdsdot's sibling dsdot: float products summed in
   double). */
static void truth(const float *A, size_t n, size_t d, const float *x,
                  size_t *top, double *p) {
  double m = -HUGE_VAL, s = 0.0, *z = (double *)malloc(n * sizeof(double));
  size_t i;
  if (!z) exit(2);
  *top = 0;
  for (i = 0; i < n; ++i) {
    const double t = cblas_dsdot((int)d, A + i * d, 1, x, 1);
    z[i] = t;
    if (t > m) {
      m = t;
      *top = i;
    }
  }
  for (i = 0; i < n; ++i) s += exp(z[i] - m);
  *p = 1.0 / s;
  free(z);
}

int main(int argc, char **argv) {
  static const double default_deltas[] = {0.1, 0.05, 0.01};
  const double eps = (double)bench_env_long("BENCH_EPS_PERMILLE", 300) / 1000.0;
  const size_t calib = (size_t)bench_env_long("BENCH_CALIB", 200);
  const uint64_t seed = (uint64_t)bench_env_long("BENCH_SEED", 42);
  npy_array A, X;
  adasm_ada_index ix;
  adasm_matrix M;
  const double *deltas = default_deltas;
  size_t ndelta = 3, n, d, q, nj, i, di, *judged, *ttop;
  double *tp, prep_ms;
  float *Xc, *logits;
  double deltas_arg[16];
  char pred[16][160];

  if (argc < 4) {
    fprintf(stderr, "usage: bench_heads NAME A.npy X.npy [DELTA ...]\n");
    return 2;
  }
  if (argc > 4) {
    ndelta = 0;
    for (i = 4; i < (size_t)argc && ndelta < 16; ++i)
      deltas_arg[ndelta++] = atof(argv[i]);
    deltas = deltas_arg;
  }
  if (!load(argv[2], &A) || !load(argv[3], &X)) return 1;
  n = A.shape[0];
  d = A.shape[1];
  q = X.shape[0];
  if (X.shape[1] != d || q <= calib) {
    fprintf(stderr, "bench_heads: X must be q x %lu with q > %lu\n",
            (unsigned long)d, (unsigned long)calib);
    return 1;
  }
  openblas_set_num_threads_maybe();
  M = adasm_matrix_f32((const float *)A.data, n, d, d);
  {
    const double t0 = bench_wall_ns();
    if (adasm_ada_index_build(&ix, &M, 0u, NULL) != ADASM_OK) {
      fprintf(stderr, "bench_heads: index build failed\n");
      return 1;
    }
    prep_ms = (bench_wall_ns() - t0) * 1e-6;
  }
  /* the calibration queries: a seeded random subset */
  {
    size_t *order = (size_t *)malloc(q * sizeof(size_t)), c = 0;
    unsigned char *is_cal = (unsigned char *)calloc(q, 1);
    adasm_pcg32 rng;
    if (!order || !is_cal) return 2;
    adasm_pcg32_seed(&rng, seed, 0xca1u);
    for (i = 0; i < q; ++i) order[i] = i;
    for (i = 0; i < calib; ++i) {
      const size_t j = i + (size_t)adasm_pcg32_bounded64(&rng, q - i), t = order[i];
      order[i] = order[j];
      order[j] = t;
      is_cal[order[i]] = 1;
    }
    nj = q - calib;
    Xc = (float *)malloc(calib * d * sizeof(float));
    judged = (size_t *)malloc(nj * sizeof(size_t));
    if (!Xc || !judged) return 2;
    for (i = 0, nj = 0; i < q; ++i) {
      if (is_cal[i]) memcpy(Xc + (c++) * d, (const float *)X.data + i * d, d * sizeof(float));
      else judged[nj++] = i;
    }
    free(order);
    free(is_cal);
  }
  ttop = (size_t *)malloc(nj * sizeof(size_t));
  tp = (double *)malloc(nj * sizeof(double));
  logits = (float *)malloc(n * sizeof(float));
  if (!ttop || !tp || !logits) return 2;
  for (i = 0; i < nj; ++i)
    truth((const float *)A.data, n, d, (const float *)X.data + judged[i] * d,
          ttop + i, tp + i);

  printf("| head | n x d | delta | success (95%% lower bound) | ci_scale | "
         "pull gain | MB read / query | exact passes | ada ms | exact ms | "
         "OpenBLAS ms | exact/ada | OpenBLAS/ada |\n");
  printf("|:--|:--|--:|--:|--:|--:|--:|--:|--:|--:|--:|--:|--:|\n");
  for (di = 0; di < ndelta; ++di) {
    adasm_ada_params p = adasm_ada_params_default();
    adasm_ada_calibration cal;
    adasm_exact_params ep = adasm_exact_params_default();
    size_t bytes, cbytes, ok = 0, nexact = 0, t;
    double madds = 0.0, rbytes = 0.0;
    double *t_ada = (double *)malloc(nj * sizeof(double));
    double *t_ex = (double *)malloc(nj * sizeof(double));
    double *t_ob = (double *)malloc(nj * sizeof(double));
    double *r_ex = (double *)malloc(nj * sizeof(double));
    double *r_ob = (double *)malloc(nj * sizeof(double));
    void *work, *cwork;
    double med_ex, med_ada, bw;
    p.delta = deltas[di];
    p.eps = eps;
    p.seed = seed;
    p.stream = (uint64_t)q; /* calibration streams apart from the judged */
    if (!t_ada || !t_ex || !t_ob || !r_ex || !r_ob ||
        adasm_ada_workspace_size(&ix, &p, &bytes) != ADASM_OK ||
        adasm_ada_calibrate_workspace_size(&ix, &p, calib, &cbytes) != ADASM_OK)
      return 1;
    work = bench_alloc(bytes);
    cwork = bench_alloc(cbytes);
    if (adasm_ada_calibrate(&ix, &p, Xc, calib, d, 0.05, cwork, cbytes, &cal) !=
        ADASM_OK)
      return 1;
    free(cwork);
    p.ci_scale = cal.ci_scale;
    for (t = 0; t < nj; ++t) {
      const float *x = (const float *)X.data + judged[t] * d;
      size_t aidx, eidx, oidx, c;
      float aprob, eprob, oprob;
      double oln, tt[3];
      adasm_ada_result out;
      adasm_exact_result eo;
      memset(&out, 0, sizeof out);
      out.idx = &aidx;
      out.prob = &aprob;
      memset(&eo, 0, sizeof eo);
      eo.idx = &eidx;
      eo.prob = &eprob;
      p.stream = judged[t];
      for (c = 0; c < 3; ++c) { /* rotate who goes first */
        const size_t who = (c + t) % 3;
        const double s = bench_now_ns();
        if (who == 0) {
          if (adasm_ada_query(&ix, &p, x, work, bytes, &out) != ADASM_OK) return 1;
        } else if (who == 1) {
          if (adasm_exact_query(&M, &ep, x, NULL, 0, &eo) != ADASM_OK) return 1;
        } else {
          cblas_sgemv(CblasRowMajor, CblasNoTrans, (int)n, (int)d, 1.0f,
                      (const float *)A.data, (int)d, x, 1, 0.0f, logits, 1);
          if (adasm_softmax_topk(NULL, logits, n, 1, &oidx, &oprob, &oln) != ADASM_OK)
            return 1;
        }
        tt[who] = bench_now_ns() - s;
      }
      t_ada[t] = tt[0];
      t_ex[t] = tt[1];
      t_ob[t] = tt[2];
      r_ex[t] = tt[1] / tt[0];
      r_ob[t] = tt[2] / tt[0];
      madds += (double)out.madds;
      rbytes += (double)out.bytes;
      nexact += (size_t)out.exact;
      ok += aidx == ttop[t] && fabs((double)aprob - tp[t]) <= eps * tp[t];
    }
    med_ada = bench_median(t_ada, nj) * 1e-6;
    med_ex = bench_median(t_ex, nj) * 1e-6;
    printf("| %s | %lu x %lu | %g | %.1f%% (>= %.1f%%) | %.3g%s | %.2fx | %.2f | "
           "%.1f%% | %.3f | %.3f | %.3f | %.2f | %.2f |\n",
           argv[1], (unsigned long)n, (unsigned long)d, p.delta,
           100.0 * (double)ok / (double)nj, 100.0 * wilson_lower(ok, nj),
           cal.ci_scale, cal.certified ? "" : " (none certified)",
           (double)n * (double)d / (madds / (double)nj),
           rbytes / (double)nj / 1048576.0, 100.0 * (double)nexact / (double)nj,
           med_ada, med_ex, bench_median(t_ob, nj) * 1e-6,
           bench_median(r_ex, nj), bench_median(r_ob, nj));
    fflush(stdout);
    /* the cost model: ada's bytes at the exact path's bandwidth */
    bw = (double)n * (double)d * 4.0 / (med_ex * 1e-3); /* bytes per second */
    snprintf(pred[di], sizeof pred[di],
             "| %s | %g | %.1f | %.3f | %.3f | %.2f |", argv[1], p.delta,
             rbytes / (double)nj / 1048576.0, rbytes / (double)nj / bw * 1e3,
             med_ada, bw / 1e9);
    free(work);
    free(t_ada);
    free(t_ex);
    free(t_ob);
    free(r_ex);
    free(r_ob);
  }
  printf("\nCost model (docs/ada-engine.md): bytes alone at the bandwidth the "
         "exact path reached in this run\n\n");
  printf("| head | delta | MB read / query | predicted ms (bytes / bandwidth) | "
         "measured ms (median) | GB/s (exact path) |\n");
  printf("|:--|--:|--:|--:|--:|--:|\n");
  for (di = 0; di < ndelta; ++di) printf("%s\n", pred[di]);
  printf("\n%s: index built in %.0f ms (%.1f MB: a 16-bit column-major copy "
         "and %lu + %lu scalars); %lu queries judged, %lu calibrated\n",
         argv[1], prep_ms, ((double)ix.ldc * (double)d * 2.0 +
                            (double)d * 16.0 + (double)n * 4.0) / 1048576.0,
         (unsigned long)(2 * d), (unsigned long)n, (unsigned long)nj,
         (unsigned long)calib);
  adasm_ada_index_free(&ix);
  free(Xc);
  free(judged);
  free(ttop);
  free(tp);
  free(logits);
  npy_free(&A);
  npy_free(&X);
  return 0;
}
