/* bench_hs.cc - hierarchical softmax: agreement with fastText and speed.

   usage: bench_hs MODEL.bin X.npy [PRED.txt] [--k K] [--reps R]
     MODEL.bin  a fastText model trained with -loss hs
     X.npy      its hidden vectors of the queries (rows, '<f4'), e.g.
                words/X_hs.npy from bench/data/build_heads.sh
     PRED.txt   optional: `fasttext predict-prob MODEL.bin QUERIES.txt K`
                on the same queries, one line per query
   Built by bench/hs_agree.sh (which also times the fastText CLI). C++11
   only because of the optional in-process fastText: compiled with
   -DHAVE_FASTTEXT=1 and linked with Debian's libfasttext (libfasttext-dev),
   it loads the model with fastText's own code, builds its
   HierarchicalSoftmaxLoss from the label counts and output matrix, and
   calls its predict(k, threshold 0) on the same hidden vectors: the same
   work as the CLI's predict minus reading the line and averaging the
   input rows, so the times compare like with like.

   Reports, for adasm_hs_topk's default mode (exact probabilities) and its
   fastText mode (params.fasttext = 1):
   - agreement with fastText: top-1 equal; top-K as an ordered list (same
     length too: fastText returns fewer than K when scores fall below
     log(1e-5)); top-K as a set; against the CLI's printed labels and
     against in-process fastText;
   - per-query time: each contender answers all the queries in one pass
     (so the tree rows of a query are mostly out of cache, as in a stream
     of queries), passes interleaved R times (fastText, ours default, ours
     fastText mode, ours default with scalar kernels); a query's figure is
     its minimum over the R passes (wall clock, CLOCK_MONOTONIC), reported
     as the median over queries and the mean;
   - nodes evaluated (dot products of length dim) per query. */
#ifndef _POSIX_C_SOURCE
#define _POSIX_C_SOURCE 200809L
#endif
#define ADASOFTMAX_IMPLEMENTATION
#include "../adasoftmax.h"
#define NPY_IMPLEMENTATION
#define NPY_STATIC
#include "../examples/npy.h"

#include <algorithm>
#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <string>
#include <time.h>
#include <vector>

#if HAVE_FASTTEXT
#include <fasttext/fasttext.h>
#include <fasttext/loss.h>
#include <fasttext/model.h>
#endif

static double now_ns() {
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return (double)ts.tv_sec * 1e9 + (double)ts.tv_nsec;
}

static double median(std::vector<double> v) {
  if (v.empty()) return NAN;
  std::sort(v.begin(), v.end());
  const size_t n = v.size();
  return n % 2 ? v[n / 2] : 0.5 * (v[n / 2 - 1] + v[n / 2]);
}
static double mean(const std::vector<double> &v) {
  double s = 0;
  for (double x : v) s += x;
  return v.empty() ? NAN : s / (double)v.size();
}

static void die(const char *msg, const char *arg) {
  std::fprintf(stderr, "bench_hs: %s%s%s\n", msg, arg ? ": " : "", arg ? arg : "");
  std::exit(1);
}

typedef std::vector<std::string> labels_t;

/* Agreement of one contender's answers with a reference (fastText). */
struct agree {
  size_t q = 0, top1 = 0, list = 0, set = 0, short_ref = 0;
  void add(const labels_t &ours, const labels_t &ref) {
    ++q;
    if (ref.size() < 5) ++short_ref;
    if (!ours.empty() && !ref.empty() && ours[0] == ref[0]) ++top1;
    if (ours == ref) ++list;
    labels_t a = ours, b = ref;
    std::sort(a.begin(), a.end());
    std::sort(b.begin(), b.end());
    if (a == b) ++set;
  }
  void print(const char *who, const char *ref) const {
    std::printf("  %-28s vs %-22s top-1 %4zu/%zu (%.2f%%)  top-K list %4zu/%zu "
                "(%.2f%%)  top-K set %4zu/%zu (%.2f%%)\n",
                who, ref, top1, q, 100.0 * (double)top1 / (double)q, list, q,
                100.0 * (double)list / (double)q, set, q,
                100.0 * (double)set / (double)q);
  }
};

int main(int argc, char **argv) {
  const char *model_path = NULL, *x_path = NULL, *pred_path = NULL;
  size_t K = 5, reps = 3;
  for (int i = 1; i < argc; ++i) {
    if (!std::strcmp(argv[i], "--k") && i + 1 < argc) K = (size_t)std::atol(argv[++i]);
    else if (!std::strcmp(argv[i], "--reps") && i + 1 < argc) reps = (size_t)std::atol(argv[++i]);
    else if (!model_path) model_path = argv[i];
    else if (!x_path) x_path = argv[i];
    else if (!pred_path) pred_path = argv[i];
    else die("usage: bench_hs MODEL.bin X.npy [PRED.txt] [--k K] [--reps R]", NULL);
  }
  if (!model_path || !x_path || K == 0 || reps == 0)
    die("usage: bench_hs MODEL.bin X.npy [PRED.txt] [--k K] [--reps R]", NULL);

  /* ---- the model, read whole into memory (the library does no I/O) ---- */
  std::vector<unsigned char> bin;
  {
    FILE *f = std::fopen(model_path, "rb");
    if (!f) die("cannot read", model_path);
    std::fseek(f, 0, SEEK_END);
    long len = std::ftell(f);
    std::fseek(f, 0, SEEK_SET);
    if (len <= 0) die("empty model", model_path);
    bin.resize((size_t)len);
    if (std::fread(bin.data(), 1, bin.size(), f) != bin.size()) die("short read", model_path);
    std::fclose(f);
  }
  adasm_hs_model m;
  const char *why = NULL;
  double t0 = now_ns();
  adasm_result e = adasm_hs_load_fasttext(&m, bin.data(), bin.size(), NULL, &why);
  const double load_ms = (now_ns() - t0) * 1e-6;
  if (e != ADASM_OK) die(why ? why : adasm_result_string(e), model_path);
  if (K > m.nlabels) K = m.nlabels;

  npy_array X;
  char err[256];
  std::memset(&X, 0, sizeof X);
  if (npy_read(x_path, NPY_F4, 2, &X, err, sizeof err) != NPY_OK) die(err, x_path);
  if (X.shape[1] != m.dim) die("X's columns differ from the model's dim", x_path);
  const size_t nq = X.shape[0], d = m.dim;
  const float *Xd = (const float *)X.data;
  std::printf("model %s: %zu classes, dim %zu, %zu words; loaded in %.0f ms\n",
              model_path, m.nlabels, m.dim, m.ft_nwords, load_ms);
  std::printf("queries %s: %zu; K = %zu; %zu passes per contender "
              "(per-query minimum kept), wall clock\n", x_path, nq, K, reps);

  /* ---- optional: the CLI's predictions ---- */
  std::vector<labels_t> cli;
  if (pred_path) {
    FILE *f = std::fopen(pred_path, "r");
    if (!f) die("cannot read", pred_path);
    std::vector<char> line(1 << 16);
    while (std::fgets(line.data(), (int)line.size(), f)) {
      labels_t l;
      char *save = NULL;
      for (char *t = strtok_r(line.data(), " \n", &save); t; t = strtok_r(NULL, " \n", &save)) {
        l.push_back(t);
        if (!strtok_r(NULL, " \n", &save)) break; /* its probability */
      }
      cli.push_back(l);
    }
    std::fclose(f);
    if (cli.size() != nq) die("PRED.txt does not have one line per query", pred_path);
  }

#if HAVE_FASTTEXT
  fasttext::FastText ft;
  ft.loadModel(std::string(model_path));
  std::shared_ptr<fasttext::Matrix> wo =
      std::const_pointer_cast<fasttext::DenseMatrix>(ft.getOutputMatrix());
  const std::vector<int64_t> counts =
      ft.getDictionary()->getCounts(fasttext::entry_type::label);
  fasttext::HierarchicalSoftmaxLoss ftloss(wo, counts);
  fasttext::Model::State state((int32_t)d, (int32_t)m.nlabels, 0);
  fasttext::Predictions heap;
  heap.reserve(K + 1);
#endif

  /* ---- the runs ---- */
  adasm_hs_params p = adasm_hs_params_default();
  p.k = K;
  size_t need = 0;
  if (adasm_hs_workspace_size(&m, &p, &need) != ADASM_OK) die("workspace size", NULL);
  std::vector<unsigned char> work(need);
  std::vector<size_t> idx(K);
  std::vector<float> prob(K);
  std::vector<double> t_ours(nq), t_compat(nq), t_ft(nq), t_scalar(nq);
  double nodes_ours = 0, nodes_compat = 0;
  agree a_ours_cli, a_compat_cli, a_ours_ft, a_compat_ft, a_cli_ft;
  const adasm_kernels *scalar = NULL;
  (void)adasm_kernels_get(ADASM_ISA_SCALAR, &scalar);
  std::printf("kernels: %s\n", adasm_isa_name(adasm_isa_best()));
  size_t shown = 0;
  std::vector<labels_t> ours_l(nq), compat_l(nq), ft_l(nq);
  std::vector<std::vector<double> > ours_p(nq);
  for (size_t q = 0; q < nq; ++q) t_ft[q] = t_ours[q] = t_compat[q] = t_scalar[q] = INFINITY;

  /* Each contender runs over all the queries in one pass, passes
     interleaved R times: a query's tree rows have been evicted by the
     queries between (50 MB of node vectors), as in a stream of queries. */
  for (size_t r = 0; r < reps; ++r) {
#if HAVE_FASTTEXT
    for (size_t q = 0; q < nq; ++q) {
      std::memcpy(state.hidden.data(), Xd + q * d, d * sizeof(float));
      t0 = now_ns();
      heap.clear();
      ftloss.predict((int32_t)K, 0.0f, heap, state);
      t_ft[q] = std::min(t_ft[q], now_ns() - t0);
      if (r == 0)
        for (const auto &h : heap)
          ft_l[q].push_back(adasm_hs_label_name(&m, bin.data(), (size_t)h.second));
    }
#endif
    for (int mode = 0; mode < 3; ++mode) {
      std::vector<double> &tt = mode == 0 ? t_ours : mode == 1 ? t_compat : t_scalar;
      p.fasttext = mode == 1;
      p.kern = mode == 2 ? scalar : NULL;
      for (size_t q = 0; q < nq; ++q) {
        adasm_hs_result out;
        std::memset(&out, 0, sizeof out);
        out.idx = idx.data();
        out.prob = prob.data();
        t0 = now_ns();
        e = adasm_hs_topk(&m, &p, Xd + q * d, work.data(), work.size(), &out);
        const double dt = now_ns() - t0;
        if (e != ADASM_OK) die("adasm_hs_topk failed", adasm_result_string(e));
        tt[q] = std::min(tt[q], dt);
        if (r == 0 && mode < 2) {
          labels_t &l = mode == 0 ? ours_l[q] : compat_l[q];
          for (size_t t = 0; t < out.count; ++t)
            l.push_back(adasm_hs_label_name(&m, bin.data(), idx[t]));
          (mode == 0 ? nodes_ours : nodes_compat) += (double)out.nodes;
          if (mode == 0)
            for (size_t t = 0; t < out.count; ++t) ours_p[q].push_back(prob[t]);
        }
      }
    }
  }

  for (size_t q = 0; q < nq; ++q) {
#if HAVE_FASTTEXT
    a_ours_ft.add(ours_l[q], ft_l[q]);
    a_compat_ft.add(compat_l[q], ft_l[q]);
    if (!cli.empty()) a_cli_ft.add(cli[q], ft_l[q]);
#endif
    if (!cli.empty()) {
      a_ours_cli.add(ours_l[q], cli[q]);
      a_compat_cli.add(compat_l[q], cli[q]);
      if (ours_l[q] != cli[q] && shown < 3 && std::getenv("BENCH_HS_SHOW")) {
        ++shown;
        std::printf("  query %zu: ours", q);
        for (size_t t = 0; t < ours_l[q].size(); ++t)
          std::printf(" %s %.4g", ours_l[q][t].c_str(), ours_p[q][t]);
        std::printf("\n            fastText");
        for (const auto &s : cli[q]) std::printf(" %s", s.c_str());
        std::printf("\n");
      }
    }
  }

  std::printf("agreement (%zu queries):\n", nq);
  if (!cli.empty()) {
    a_ours_cli.print("adasm default (exact p)", "fasttext predict-prob");
    a_compat_cli.print("adasm fastText mode", "fasttext predict-prob");
    std::printf("  (fastText returned fewer than K classes for %zu queries)\n",
                a_ours_cli.short_ref);
  }
#if HAVE_FASTTEXT
  a_ours_ft.print("adasm default (exact p)", "libfasttext predict");
  a_compat_ft.print("adasm fastText mode", "libfasttext predict");
  if (!cli.empty()) a_cli_ft.print("fasttext predict-prob", "libfasttext predict");
#endif
  std::printf("time per query (ns; median over queries, mean in brackets):\n");
#if HAVE_FASTTEXT
  std::printf("  libfasttext HierarchicalSoftmaxLoss::predict  %9.0f  (%.0f)\n",
              median(t_ft), mean(t_ft));
#endif
  std::printf("  adasm_hs_topk default, %-8s             %9.0f  (%.0f)  nodes/query %.1f\n",
              adasm_isa_name(adasm_isa_best()), median(t_ours), mean(t_ours),
              nodes_ours / (double)nq);
  std::printf("  adasm_hs_topk fastText mode, %-8s       %9.0f  (%.0f)  nodes/query %.1f\n",
              adasm_isa_name(adasm_isa_best()), median(t_compat), mean(t_compat),
              nodes_compat / (double)nq);
  std::printf("  adasm_hs_topk default, scalar kernels         %9.0f  (%.0f)\n",
              median(t_scalar), mean(t_scalar));
#if HAVE_FASTTEXT
  std::printf("  speed-up over libfasttext (ratio of medians): default %.1fx, "
              "fastText mode %.1fx\n", median(t_ft) / median(t_ours),
              median(t_ft) / median(t_compat));
#endif
  npy_free(&X);
  adasm_hs_free(&m);
  return 0;
}
