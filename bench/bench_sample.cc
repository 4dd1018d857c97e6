/* bench_sample.cc - the sampler chain of adasoftmax.h (issue 14's targets).

     bench_sample [chain] [fused] [HEAD_DIR ...]
     bench_sample ada HEAD_DIR ...

   chain: the chain on a materialised logit vector of n = BENCH_SAMPLE_N
     (128256, Llama 3's vocabulary) entries, against one softmax pass over
     the vector (adasm_softmax) and against sorting it (what a sort-based
     top-p does): qsort and std::sort of the (logit, id) pairs, and
     std::partial_sort of only the |K| tokens the chain kept (a partial sort
     told the answer's size in advance: the best a sorting sampler can do).
     Two logit vectors: "peaked" (N(0, 3^2), one token +18, ten +14: the
     top token holds ~80% of the mass, as after a confident context) and
     "flat" (N(0, 2^2), 200 tokens set to N(10, 0.5^2): they hold ~85% of
     the mass, the top one ~1%, and top-p 0.9 keeps a few hundred tokens).
     Every contender runs once per repetition, in a rotating order; the
     table gives medians and the median of the per-repetition ratios.
   fused: adasm_exact_sample (no filter, and T 0.8 + top-k 40 + top-p 0.95
     + min-p 0.05) against adasm_exact_query with k = 1 (the exact top-1
     path) on the same query, rotating order, one query after another: a
     synthetic GPT-2-sized head (50257 x 768, f32 and bf16), and the real
     heads of bench/data given as directories holding A.npy and X.npy.

   ada: adasm_ada_sample, calibrated with adasm_ada_sample_calibrate on
     BENCH_CALIB (200) random queries of each head, against
     adasm_exact_sample on the others (up to BENCH_QUERIES, default 1000
     here), one draw each with the same random numbers: the rate of draws
     that differ, and the paired time ratio. Two settings: T 1, and T 0.8 +
     top-k 40 + min-p 0.05.

   Timing: thread CPU time (bench_util.h; BENCH_CLOCK=wall for wall time).
   Environment: BENCH_REPS (chain repetitions, default 301), BENCH_QUERIES
   (fused queries per head, default 100), BENCH_QUICK=1 (few of each). */
#include "bench_util.h"

#define ADASOFTMAX_IMPLEMENTATION
#include "adasoftmax.h"
#define NPY_IMPLEMENTATION
#define NPY_STATIC
#include "../examples/npy.h"

#include <algorithm>
#include <utility>
#include <vector>

namespace {

typedef std::pair<float, uint32_t> zid;

/* (logit, id) ordered best first: larger logit, then lower id. */
bool better(const zid &a, const zid &b) {
  return a.first > b.first || (a.first == b.first && a.second < b.second);
}
int cmp_zid(const void *a, const void *b) {
  const zid *x = static_cast<const zid *>(a), *y = static_cast<const zid *>(b);
  return better(*x, *y) ? -1 : better(*y, *x) ? 1 : 0;
}

double gauss(bench_rng *r) {
  const double u = ((double)(bench_rng_next(r) >> 11) + 0.5) / 9007199254740992.0;
  const double v = ((double)(bench_rng_next(r) >> 11) + 0.5) / 9007199254740992.0;
  return sqrt(-2.0 * log(u)) * cos(6.283185307179586 * v);
}

struct chain_cfg {
  const char *name;
  adasm_sampler_params p;
};

double median_of(std::vector<double> v) { return bench_median(v.data(), v.size()); }

void bench_chain(int quick) {
  const size_t n = (size_t)bench_env_long("BENCH_SAMPLE_N", 128256);
  const size_t reps = (size_t)bench_env_long("BENCH_REPS", quick ? 21 : 301);
  std::vector<float> z(n), p(n);
  std::vector<zid> pairs(n);
  std::vector<size_t> hist(64);
  adasm_logit_bias bias[4] = {{5, 2.0f}, {77, -1.0f}, {900, -(float)HUGE_VAL}, {1000, 1.0f}};
  size_t work_bytes = 0;
  int shape;
  for (size_t i = 0; i < 64; ++i) hist[i] = (i * 2654435761u) % n;
  std::vector<chain_cfg> cfg;
  {
    chain_cfg c;
    c.p = adasm_sampler_params_default();
    c.name = "T 1, no filter";
    cfg.push_back(c);
    c.name = "top-k 50";
    c.p.top_k = 50;
    cfg.push_back(c);
    c.p = adasm_sampler_params_default();
    c.name = "top-p 0.9";
    c.p.top_p = 0.9f;
    cfg.push_back(c);
    c.p = adasm_sampler_params_default();
    c.name = "min-p 0.05";
    c.p.min_p = 0.05f;
    cfg.push_back(c);
    c.p = adasm_sampler_params_default();
    c.name = "T 0.8, top-k 40, top-p 0.95, min-p 0.05";
    c.p.temperature = 0.8f;
    c.p.top_k = 40;
    c.p.top_p = 0.95f;
    c.p.min_p = 0.05f;
    cfg.push_back(c);
    c.p = adasm_sampler_params_default();
    c.name = "bias (4) + penalties (64 ids) + top-k 50 + top-p 0.9";
    c.p.bias = bias;
    c.p.nbias = 4;
    c.p.history = hist.data();
    c.p.nhistory = hist.size();
    c.p.repetition_penalty = 1.1f;
    c.p.frequency_penalty = 0.2f;
    c.p.presence_penalty = 0.1f;
    c.p.top_k = 50;
    c.p.top_p = 0.9f;
    cfg.push_back(c);
  }
  for (size_t c = 0; c < cfg.size(); ++c) {
    size_t b = 0;
    if (adasm_sample_logits_workspace_size(n, &cfg[c].p, &b) != ADASM_OK) {
      fprintf(stderr, "bench_sample: workspace size failed\n");
      exit(1);
    }
    if (b > work_bytes) work_bytes = b;
  }
  void *work = bench_alloc(work_bytes + 64);
  printf("### The chain on a materialised logit vector (n = %zu)\n\n", n);
  printf("Medians of %zu interleaved repetitions (%s), AVX-512 where the CPU "
         "has it (`adasm_isa_best`: %s). Ratios are medians of per-repetition "
         "ratios.\n\n", reps, bench_clock_name(), adasm_isa_name(adasm_isa_best()));
  printf("| logits | chain | kept | chain us | softmax us | chain / softmax "
         "| qsort us | std::sort us | partial_sort(kept) us | qsort / chain "
         "| partial_sort / chain |\n");
  printf("|:--|:--|--:|--:|--:|--:|--:|--:|--:|--:|--:|\n");
  for (shape = 0; shape < 2; ++shape) {
    bench_rng r;
    r.s = 12345u + (uint64_t)shape;
    for (size_t i = 0; i < n; ++i) z[i] = (float)((shape == 0 ? 3.0 : 2.0) * gauss(&r));
    if (shape == 0) {
      z[77] += 18.0f;
      for (int i = 0; i < 10; ++i) z[bench_rng_next(&r) % n] += 14.0f;
    } else {
      for (int i = 0; i < 200; ++i)
        z[bench_rng_next(&r) % n] = (float)(10.0 + 0.5 * gauss(&r));
    }
    for (size_t c = 0; c < cfg.size(); ++c) {
      std::vector<double> t_chain, t_soft, t_q, t_s, t_ps, r_soft, r_q, r_ps;
      adasm_sampler_result res;
      size_t kept;
      cfg[c].p.draw = 0;
      if (adasm_sample_logits(z.data(), n, &cfg[c].p, work, work_bytes + 64, &res) != ADASM_OK) {
        fprintf(stderr, "bench_sample: chain failed\n");
        exit(1);
      }
      kept = res.kept;
      for (size_t rep = 0; rep < reps; ++rep) {
        double t[5];
        for (int k = 0; k < 5; ++k) {
          const int who = (int)((rep + (size_t)k) % 5);
          double t0 = bench_now_ns(), t1;
          if (who == 0) {
            cfg[c].p.draw = rep;
            adasm_sample_logits(z.data(), n, &cfg[c].p, work, work_bytes + 64, &res);
            bench_sink += (double)res.token;
          } else if (who == 1) {
            adasm_softmax(NULL, z.data(), n, p.data());
            bench_sink += (double)p[n / 2];
          } else if (who == 2) {
            for (size_t i = 0; i < n; ++i) pairs[i] = zid(z[i], (uint32_t)i);
            qsort(pairs.data(), n, sizeof(zid), cmp_zid);
            bench_sink += (double)pairs[0].second;
          } else if (who == 3) {
            for (size_t i = 0; i < n; ++i) pairs[i] = zid(z[i], (uint32_t)i);
            std::sort(pairs.begin(), pairs.end(), better);
            bench_sink += (double)pairs[0].second;
          } else {
            for (size_t i = 0; i < n; ++i) pairs[i] = zid(z[i], (uint32_t)i);
            std::partial_sort(pairs.begin(), pairs.begin() + (ptrdiff_t)kept, pairs.end(), better);
            bench_sink += (double)pairs[0].second;
          }
          t1 = bench_now_ns();
          t[who] = t1 - t0;
        }
        t_chain.push_back(t[0]);
        t_soft.push_back(t[1]);
        t_q.push_back(t[2]);
        t_s.push_back(t[3]);
        t_ps.push_back(t[4]);
        r_soft.push_back(t[0] / t[1]);
        r_q.push_back(t[2] / t[0]);
        r_ps.push_back(t[4] / t[0]);
      }
      printf("| %s | %s | %zu | %.1f | %.1f | **%.2f** | %.0f | %.0f | %.0f | %.1f | %.1f |\n",
             shape == 0 ? "peaked" : "flat", cfg[c].name, kept,
             median_of(t_chain) * 1e-3, median_of(t_soft) * 1e-3, median_of(r_soft),
             median_of(t_q) * 1e-3, median_of(t_s) * 1e-3, median_of(t_ps) * 1e-3,
             median_of(r_q), median_of(r_ps));
      fflush(stdout);
    }
  }
  printf("\n");
  free(work);
}

/* One head: exact top-1 vs the fused sampler (two settings), per query. */
void bench_head(const char *name, const adasm_matrix &M, const float *X,
                size_t q, size_t d) {
  adasm_sampler_params plain = adasm_sampler_params_default(), combo = plain;
  adasm_exact_params ep = adasm_exact_params_default();
  std::vector<double> te, tp, tc, rp, rc;
  size_t b1 = 0, b2 = 0, idx;
  float prob;
  combo.temperature = 0.8f;
  combo.top_k = 40;
  combo.top_p = 0.95f;
  combo.min_p = 0.05f;
  adasm_exact_sample_workspace_size(&M, &plain, &b1);
  adasm_exact_sample_workspace_size(&M, &combo, &b2);
  void *work = bench_alloc((b1 > b2 ? b1 : b2) + 64);
  for (size_t i = 0; i < q; ++i) {
    const float *x = X + i * d;
    double t[3];
    for (int k = 0; k < 3; ++k) {
      const int who = (int)((i + (size_t)k) % 3);
      adasm_exact_result er;
      adasm_sampler_result sr;
      adasm_result r;
      double t0, xs = 0.0;
      /* x fresh in cache, as a model's hidden state is; A streams */
      for (size_t j = 0; j < d; ++j) xs += (double)x[j];
      bench_sink += xs;
      t0 = bench_now_ns();
      if (who == 0) {
        er.idx = &idx;
        er.prob = &prob;
        er.logits = NULL;
        r = adasm_exact_query(&M, &ep, x, NULL, 0, &er);
        bench_sink += (double)idx;
      } else {
        adasm_sampler_params *p = who == 1 ? &plain : &combo;
        p->stream = i;
        r = adasm_exact_sample(&M, p, x, work, (b1 > b2 ? b1 : b2) + 64, &sr);
        bench_sink += (double)sr.token;
      }
      t[who] = bench_now_ns() - t0;
      if (r != ADASM_OK) {
        fprintf(stderr, "bench_sample: %s query %zu: %s\n", name, i, adasm_result_string(r));
        exit(1);
      }
    }
    te.push_back(t[0]);
    tp.push_back(t[1]);
    tc.push_back(t[2]);
    rp.push_back(t[1] / t[0]);
    rc.push_back(t[2] / t[0]);
  }
  printf("| %s | %zu x %zu | %s | %zu | %.3f | %.3f | %.3f | **%.3f** | **%.3f** |\n",
         name, M.rows, M.cols, M.dtype == ADASM_F32 ? "f32" : M.dtype == ADASM_F16 ? "f16" : "bf16",
         q, median_of(te) * 1e-6, median_of(tp) * 1e-6, median_of(tc) * 1e-6,
         median_of(rp), median_of(rc));
  fflush(stdout);
  free(work);
}

/* DIR/A.npy and DIR/X.npy as float32; on failure a table row of `cols`
   columns that says why, and 0. */
int load_head(const char *dir, npy_array *A, npy_array *X, int cols) {
  char pa[4096], px[4096], err[256];
  snprintf(pa, sizeof pa, "%s/A.npy", dir);
  snprintf(px, sizeof px, "%s/X.npy", dir);
  if (npy_read(pa, NPY_F4, 2, A, err, sizeof err) == NPY_OK) {
    if (npy_read(px, NPY_F4, 2, X, err, sizeof err) == NPY_OK) return 1;
    npy_free(A);
  }
  printf("| %s | (not built: %s) |", dir, err);
  for (int c = 2; c < cols; ++c) printf(" |");
  printf("\n");
  return 0;
}

void bench_fused(int quick, int argc, char **argv, int first) {
  const size_t q = (size_t)bench_env_long("BENCH_QUERIES", quick ? 10 : 100);
  printf("### Fused exact sampling against the exact top-1 path\n\n");
  printf("Per query, in a rotating order: `adasm_exact_query` (k = 1), "
         "`adasm_exact_sample` with no filter (T 1), and with T 0.8, top-k 40, "
         "top-p 0.95, min-p 0.05; medians over the queries (%s), and the "
         "median of the per-query ratios to the top-1 time.\n\n", bench_clock_name());
  printf("| head | n x d | dtype | queries | top-1 ms | sample ms | sample "
         "(filters) ms | sample / top-1 | sample (filters) / top-1 |\n");
  printf("|:--|:--|:--|--:|--:|--:|--:|--:|--:|\n");
  {
    const size_t n = 50257, d = 768;
    float *A = static_cast<float *>(bench_alloc(n * d * sizeof(float)));
    uint16_t *A16 = static_cast<uint16_t *>(bench_alloc(n * d * sizeof(uint16_t)));
    float *X = static_cast<float *>(bench_alloc(q * d * sizeof(float)));
    bench_rng r;
    r.s = 99u;
    for (size_t i = 0; i < n * d; ++i) A[i] = (float)(gauss(&r) / sqrt((double)d));
    for (size_t i = 0; i < n * d; ++i) A16[i] = adasm_f32_to_bf16(A[i]);
    for (size_t i = 0; i < q * d; ++i) X[i] = (float)(gauss(&r) * 4.0);
    bench_head("synthetic (GPT-2 size)", adasm_matrix_f32(A, n, d, d), X, q, d);
    bench_head("synthetic (GPT-2 size)", adasm_matrix_bf16(A16, n, d, d), X, q, d);
    free(A);
    free(A16);
    free(X);
  }
  for (int a = first; a < argc; ++a) {
    npy_array A, X;
    const char *name = strrchr(argv[a], '/') ? strrchr(argv[a], '/') + 1 : argv[a];
    if (!load_head(argv[a], &A, &X, 9)) continue;
    bench_head(name, adasm_matrix_f32((const float *)A.data, A.shape[0], A.shape[1], A.shape[1]),
               (const float *)X.data, X.shape[0] < q ? X.shape[0] : q, X.shape[1]);
    npy_free(&A);
    npy_free(&X);
  }
  printf("\n");
}

/* One LLM-shaped head: adaptive against fused exact sampling, one
   setting. Calibrates the sampler on `ncal` random queries, then draws
   once per judged query with both samplers (same seed, stream, draw). */
void bench_ada_head(const char *name, const adasm_matrix &M, const float *X,
                    size_t nq, size_t d, const char *label,
                    const adasm_sampler_params &chain, size_t ncal, size_t nj,
                    const adasm_ada_index &ix) {
  adasm_ada_sample_params sp = adasm_ada_sample_params_default();
  adasm_ada_calibration cal;
  std::vector<size_t> perm(nq);
  std::vector<float> Xc(ncal * d);
  std::vector<double> te, ta, ratio;
  size_t cb = 0, ab = 0, eb = 0, differ = 0, exact = 0, i;
  bench_rng r;
  double t0, cal_s;
  sp.chain = chain;
  sp.eps = 0.3;
  sp.delta = 0.1;
  r.s = 42u;
  for (i = 0; i < nq; ++i) perm[i] = i; /* calibration: a random subset */
  for (i = nq; i > 1; --i) std::swap(perm[i - 1], perm[bench_rng_next(&r) % i]);
  for (i = 0; i < ncal; ++i)
    memcpy(&Xc[i * d], X + perm[i] * d, d * sizeof(float));
  sp.chain.stream = 1000000u; /* apart from the judged queries' streams */
  if (adasm_ada_sample_calibrate_workspace_size(&ix, &sp, ncal, &cb) != ADASM_OK) exit(1);
  void *cw = bench_alloc(cb);
  t0 = bench_wall_ns();
  if (adasm_ada_sample_calibrate(&ix, &sp, Xc.data(), ncal, d, 0.05, cw, cb, &cal) !=
      ADASM_OK) {
    fprintf(stderr, "bench_sample: %s: calibration failed\n", name);
    exit(1);
  }
  cal_s = (bench_wall_ns() - t0) * 1e-9;
  free(cw);
  sp.ci_scale = cal.ci_scale;
  adasm_sampler_params ep = sp.chain;
  adasm_ada_sample_workspace_size(&ix, &sp, &ab);
  adasm_exact_sample_workspace_size(&M, &ep, &eb);
  void *aw = bench_alloc(ab + 64), *ew = bench_alloc(eb + 64);
  for (i = 0; i < nj && ncal + i < nq; ++i) {
    const size_t qi = perm[ncal + i];
    const float *x = X + qi * d;
    adasm_ada_sample_result ar;
    adasm_sampler_result er;
    double t[2];
    sp.chain.stream = ep.stream = qi;
    for (int k = 0; k < 2; ++k) {
      const int who = (int)((i + (size_t)k) % 2);
      double xs = 0.0, t1;
      for (size_t j = 0; j < d; ++j) xs += (double)x[j]; /* x in cache */
      bench_sink += xs;
      t1 = bench_now_ns();
      adasm_result rr = who == 0 ? adasm_exact_sample(&M, &ep, x, ew, eb + 64, &er)
                                 : adasm_ada_sample(&ix, &sp, x, aw, ab + 64, &ar);
      t[who] = bench_now_ns() - t1;
      if (rr != ADASM_OK) {
        fprintf(stderr, "bench_sample: %s query %zu: %s\n", name, qi, adasm_result_string(rr));
        exit(1);
      }
    }
    differ += ar.token != er.token;
    exact += (size_t)ar.exact;
    te.push_back(t[0]);
    ta.push_back(t[1]);
    ratio.push_back(t[0] / t[1]);
  }
  {
    /* one-sided 95% upper bound of the rate of differing draws (Wilson) */
    const double nn = (double)te.size(), ph = (double)differ / nn, z = 1.6448536269514722;
    const double den = 1.0 + z * z / nn;
    const double up = (ph + z * z / (2.0 * nn) +
                       z * sqrt(ph * (1.0 - ph) / nn + z * z / (4.0 * nn * nn))) / den;
    printf("| %s | %s | %zu | %.3g (%.1f s) | %.1f%% (<= %.1f%%) | %.1f%% | %.3f | %.3f | **%.2f** |\n",
           name, label, te.size(), cal.ci_scale, cal_s, 100.0 * ph, 100.0 * up,
           100.0 * (double)exact / nn, median_of(te) * 1e-6, median_of(ta) * 1e-6,
           median_of(ratio));
  }
  fflush(stdout);
  free(aw);
  free(ew);
}

/* Adaptive sampling (adasm_ada_sample, calibrated) against fused exact
   sampling on the heads given as directories. */
void bench_ada(int quick, int argc, char **argv, int first) {
  const size_t ncal = (size_t)bench_env_long("BENCH_CALIB", quick ? 60 : 200);
  const size_t nj = (size_t)bench_env_long("BENCH_QUERIES", quick ? 50 : 1000);
  printf("### Adaptive sampling against fused exact sampling\n\n");
  printf("`adasm_ada_sample` calibrated by `adasm_ada_sample_calibrate` (eps 0.3, "
         "delta 0.1, alpha 0.05) on %zu random queries, against "
         "`adasm_exact_sample` on the other queries (up to %zu), one draw each "
         "with the same (seed, stream, draw), in a rotating order; differ: draws "
         "whose token is not the exact sampler's (the total-variation distance "
         "is at most this rate), with its one-sided 95%% upper bound; medians "
         "(%s) and the median of the per-query ratios.\n\n",
         ncal, nj, bench_clock_name());
  printf("| head | setting | queries | ci_scale (calibration) | differ | exact passes "
         "| exact ms | ada ms | exact/ada |\n");
  printf("|:--|:--|--:|--:|--:|--:|--:|--:|--:|\n");
  for (int a = first; a < argc; ++a) {
    npy_array A, X;
    adasm_ada_index ix;
    const char *name = strrchr(argv[a], '/') ? strrchr(argv[a], '/') + 1 : argv[a];
    if (!load_head(argv[a], &A, &X, 9)) continue;
    const size_t n = A.shape[0], d = A.shape[1], q = X.shape[0];
    const adasm_matrix M = adasm_matrix_f32((const float *)A.data, n, d, d);
    if (q <= ncal || adasm_ada_index_build(&ix, &M, 0u, NULL) != ADASM_OK) {
      printf("| %s | (too few queries, or the index failed) | | | | | | | |\n", name);
      npy_free(&A);
      npy_free(&X);
      continue;
    }
    adasm_sampler_params plain = adasm_sampler_params_default(), combo = plain;
    combo.temperature = 0.8f;
    combo.top_k = 40;
    combo.min_p = 0.05f;
    bench_ada_head(name, M, (const float *)X.data, q, d, "T 1", plain, ncal, nj, ix);
    bench_ada_head(name, M, (const float *)X.data, q, d, "T 0.8, top-k 40, min-p 0.05",
                   combo, ncal, nj, ix);
    adasm_ada_index_free(&ix);
    npy_free(&A);
    npy_free(&X);
  }
  printf("\n");
}

} // namespace

int main(int argc, char **argv) {
  const int quick = bench_env_long("BENCH_QUICK", 0) != 0;
  int chain = 1, fused = 1, first = 1;
  if (argc > 1 && strcmp(argv[1], "chain") == 0) {
    fused = 0;
    first = 2;
  } else if (argc > 1 && strcmp(argv[1], "fused") == 0) {
    chain = 0;
    first = 2;
  } else if (argc > 1 && strcmp(argv[1], "ada") == 0) {
    bench_ada(quick, argc, argv, 2);
    bench_print_load("bench_sample");
    return 0;
  }
  if (chain) bench_chain(quick);
  if (fused) bench_fused(quick, argc, argv, first);
  bench_print_load("bench_sample");
  return 0;
}
