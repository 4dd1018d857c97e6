/* tests/test_hs.c - hierarchical softmax (fastText's binary tree).

   Build (from the repository root; meson builds it as test 'hs'):
     gcc -std=c99 -O2 -Wall -Wextra -Wpedantic -Wshadow -Wconversion -I. \
         tests/test_hs.c -lm -o test_hs
   Run: ./test_hs   (returns 0 when every check passes; about 1 s, plus a
   few seconds when fastText is installed)

   What is checked:
   - the tree: the same nodes as an independent transcription of fastText's
     two-queue construction, and, for counts in fastText's order, the
     weighted path length of an optimal Huffman code (computed here by
     repeatedly merging the two smallest weights);
   - probabilities: over every leaf, found by walking the whole tree here,
     they sum to 1 (double); log_prob agrees;
   - top-k, on every ISA this CPU has: equal to brute force over all leaves
     (same kernels, same order of additions, so equal bit for bit, ties
     included), with thresholds; the fastText mode equal to a recursive
     transcription of fastText 0.9.2's dfs;
   - the .bin reader, on images written here: fields, names, vectors; every
     truncation, wrong magic/version, other losses, quantized models,
     lying sizes and counts, trailing bytes, non-finite vectors; random byte
     corruption never crashes;
   - allocation failure at every allocation site (a counting ADASM_MALLOC,
     test_util.h's);
   - argument errors, NaN and inf queries;
   - if `fasttext` is on PATH: a tiny model trained by it, whose
     predict-prob output must match the fastText mode (and is compared with
     the default mode); skipped with a message otherwise. */
#if !defined(_POSIX_C_SOURCE) && (defined(__unix__) || defined(__APPLE__))
#define _POSIX_C_SOURCE 200809L /* mkdtemp, popen */
#endif
#include <math.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#if defined(__unix__) || defined(__APPLE__)
#include <unistd.h>
#define HAVE_POSIX 1
#endif

/* ---- harness and the counting, failing allocator (test_util.h) ---------- */
#define TEST_ALLOCATOR
#define TEST_MAX_LIVE 16
#include "test_util.h"

#define ADASM_MALLOC(sz, ctx) test_malloc((sz), (ctx))
#define ADASM_FREE(p, ctx) test_free((p), (ctx))
#define ADASOFTMAX_IMPLEMENTATION
#include "../adasoftmax.h"

/* ---- random data ------------------------------------------------------------ */
static float urand(adasm_pcg32 *r) { /* (-1, 1) */
  return adasm_pcg32_uniform(r) * 2.0f - 1.0f;
}

/* Counts in fastText's order (decreasing), with ties when `tied`. */
static void make_counts(int64_t *c, size_t n, adasm_pcg32 *r, int tied) {
  size_t i;
  int64_t v = 1 + (int64_t)adasm_pcg32_bounded(r, 5);
  for (i = n; i-- > 0;) {
    c[i] = v;
    if (!tied || adasm_pcg32_bounded(r, 3) == 0)
      v += 1 + (int64_t)adasm_pcg32_bounded(r, (uint32_t)(v / 2 + 2));
  }
}

/* ---- references ------------------------------------------------------------- */
/* fastText's construction written as two explicit queues: leaves from the
   last one down, internal nodes first-in first-out; a leaf wins only if
   its count is strictly smaller than the waiting internal node's. */
static void ref_tree(const int64_t *c, size_t n, int32_t *par, int32_t *kid,
                     uint8_t *code, int64_t *cnt) {
  size_t leaves_left = n, qhead = n, i, j;
  for (i = 0; i < 2 * n - 1; ++i) {
    par[i] = -1;
    code[i] = 0;
    cnt[i] = i < n ? c[i] : 0;
  }
  for (i = n; i < 2 * n - 1; ++i) {
    size_t pick[2];
    for (j = 0; j < 2; ++j) {
      const int internal_ready = qhead < i;
      if (leaves_left > 0 &&
          (!internal_ready || cnt[leaves_left - 1] < cnt[qhead]))
        pick[j] = --leaves_left;
      else
        pick[j] = qhead++;
    }
    kid[2 * (i - n)] = (int32_t)pick[0];
    kid[2 * (i - n) + 1] = (int32_t)pick[1];
    par[pick[0]] = par[pick[1]] = (int32_t)i;
    code[pick[1]] = 1;
    cnt[i] = cnt[pick[0]] + cnt[pick[1]];
  }
}

/* Cost of an optimal prefix code: merge the two smallest weights, n - 1
   times (O(n^2), small n only). */
static int64_t huffman_cost(const int64_t *c, size_t n) {
  int64_t *w = (int64_t *)xmalloc(n * sizeof *w), cost = 0;
  size_t m = n, i;
  memcpy(w, c, n * sizeof *w);
  while (m > 1) {
    size_t a = 0, b = 1, t;
    if (w[b] < w[a]) { a = 1; b = 0; }
    for (i = 2; i < m; ++i) {
      if (w[i] < w[a]) { b = a; a = i; }
      else if (w[i] < w[b]) b = i;
    }
    w[a] += w[b];
    cost += w[a];
    t = m - 1; /* remove b */
    w[b] = w[t];
    m = t;
  }
  free(w);
  return cost;
}

/* Depth of every leaf from the parent links (sum count * depth). */
static int64_t tree_cost(const adasm_hs_model *m) {
  int64_t cost = 0;
  size_t i;
  for (i = 0; i < m->nlabels; ++i) {
    int64_t d = 0;
    int32_t v = (int32_t)i;
    while (m->parent[v] >= 0) {
      v = m->parent[v];
      ++d;
    }
    CHECK((size_t)v == m->root, "leaf %lu does not reach the root",
          (unsigned long)i);
    cost += d * m->count[i];
  }
  return cost;
}

/* log p of every leaf, root to leaf, with the library's kernels and
   log-sigmoid: the same additions in the same order as the search. */
static void all_leaves(const adasm_hs_model *m, const adasm_kernels *k,
                       const float *x, size_t v, double s, double *out) {
  float z;
  double lr, ll;
  const size_t n = m->nlabels;
  if (v < n) {
    out[v] = s;
    return;
  }
  k->dot_rows(m->vec + (v - n) * m->ldv, 1, m->dim, m->ldv, x, 1.0f, &z);
  adasm__hs_logsig((double)z, &lr, &ll);
  all_leaves(m, k, x, (size_t)m->child[2 * (v - n)], s + ll, out);
  all_leaves(m, k, x, (size_t)m->child[2 * (v - n) + 1], s + lr, out);
}

/* fastText 0.9.2's HierarchicalSoftmaxLoss::dfs, as recursion, with a k-best
   list kept sorted (descending score; equal scores: lower class first). */
typedef struct ftref {
  size_t k, held;
  float s[65];
  int32_t node[65];
} ftref;

static float ft_std_log(float x) { return (float)log((double)x + 1e-5); }

static void ft_dfs(const adasm_hs_model *m, const adasm_kernels *k,
                   const float *x, float thr, size_t v, float score,
                   ftref *r) {
  const size_t n = m->nlabels;
  float z, f;
  if (score < ft_std_log(thr)) return;
  if (r->held > 0 && r->held == r->k && score < r->s[r->held - 1]) return;
  if (v < n) { /* insert in order, then drop the worst if k + 1 */
    size_t j = r->held++;
    while (j > 0 && (r->s[j - 1] < score ||
                     (r->s[j - 1] == score && r->node[j - 1] > (int32_t)v))) {
      r->s[j] = r->s[j - 1];
      r->node[j] = r->node[j - 1];
      --j;
    }
    r->s[j] = score;
    r->node[j] = (int32_t)v;
    if (r->held > r->k) r->held = r->k;
    return;
  }
  k->dot_rows(m->vec + (v - n) * m->ldv, 1, m->dim, m->ldv, x, 1.0f, &z);
  f = (float)(1.0 / (double)(1.0f + expf(-z)));
  ft_dfs(m, k, x, thr, (size_t)m->child[2 * (v - n)],
         score + ft_std_log((float)(1.0 - (double)f)), r);
  ft_dfs(m, k, x, thr, (size_t)m->child[2 * (v - n) + 1],
         score + ft_std_log(f), r);
}

/* ---- tree -------------------------------------------------------------------- */
static void test_tree(void) {
  static const size_t ns[] = {1, 2, 3, 4, 5, 7, 8, 13, 31, 64, 100, 257, 1000};
  adasm_pcg32 r;
  size_t a, i, trial;
  float vec[1] = {0.0f};
  adasm_pcg32_seed(&r, 11u, 1u);
  for (a = 0; a < sizeof ns / sizeof ns[0]; ++a)
    for (trial = 0; trial < 4; ++trial) {
      const size_t n = ns[a];
      int64_t *c = (int64_t *)xmalloc(n * sizeof *c);
      int64_t *cnt = (int64_t *)xmalloc((2 * n - 1) * sizeof *cnt);
      int32_t *par = (int32_t *)xmalloc((2 * n - 1) * sizeof *par);
      int32_t *kid = (int32_t *)xmalloc((2 * n) * sizeof *kid);
      uint8_t *code = (uint8_t *)xmalloc(2 * n - 1);
      float *vecs = (float *)calloc(n, sizeof(float));
      adasm_hs_model m;
      adasm_result e;
      int same = 1;
      if (trial == 3) /* any order: fastText builds some full tree too */
        for (i = 0; i < n; ++i) c[i] = (int64_t)adasm_pcg32_bounded(&r, 50);
      else if (trial == 2)
        for (i = 0; i < n; ++i) c[i] = 7; /* all equal */
      else
        make_counts(c, n, &r, (int)trial);
      e = adasm_hs_build(&m, c, n, n > 1 ? vecs : vec, 1, 1, NULL);
      CHECK(e == ADASM_OK, "build n=%lu: %s", (unsigned long)n,
            adasm_result_string(e));
      if (e != ADASM_OK) continue;
      ref_tree(c, n, par, kid, code, cnt);
      CHECK(m.root == 2 * n - 2, "root");
      for (i = 0; i < 2 * n - 1; ++i)
        same &= m.parent[i] == par[i] && m.code[i] == code[i] &&
                m.count[i] == cnt[i];
      for (i = 0; i + 1 < n; ++i)
        same &= m.child[2 * i] == kid[2 * i] &&
                m.child[2 * i + 1] == kid[2 * i + 1];
      CHECK(same, "tree n=%lu trial %lu differs from the reference",
            (unsigned long)n, (unsigned long)trial);
      if (trial < 3 && n <= 1000)
        CHECK(tree_cost(&m) == huffman_cost(c, n),
              "n=%lu trial %lu: weighted path length %lld, Huffman %lld",
              (unsigned long)n, (unsigned long)trial, (long long)tree_cost(&m),
              (long long)huffman_cost(c, n));
      else
        (void)tree_cost(&m); /* structure only */
      adasm_hs_free(&m);
      free(c); free(cnt); free(par); free(kid); free(code); free(vecs);
    }
}

/* ---- probabilities and top-k ------------------------------------------------ */
typedef struct lbl {
  double s;
  size_t i;
} lbl;
static int lbl_cmp(const void *pa, const void *pb) {
  const lbl *a = (const lbl *)pa, *b = (const lbl *)pb;
  if (a->s != b->s) return a->s > b->s ? -1 : 1;
  return a->i < b->i ? -1 : (a->i > b->i);
}

static void check_model_topk(const adasm_hs_model *m, const float *x,
                             const char *what) {
  static const adasm_isa isas[] = {ADASM_ISA_SCALAR, ADASM_ISA_AVX2,
                                   ADASM_ISA_AVX512, ADASM_ISA_NEON};
  static const float thr[] = {0.0f, 1e-3f, 0.05f, 0.3f};
  const size_t n = m->nlabels;
  size_t ks[4], a, b, t, c, i;
  double *s = (double *)xmalloc(n * sizeof(double));
  lbl *ref = (lbl *)xmalloc(n * sizeof(lbl));
  size_t *idx = (size_t *)xmalloc(n * sizeof(size_t));
  float *prob = (float *)xmalloc(n * sizeof(float));
  double *lp = (double *)xmalloc(n * sizeof(double));
  size_t bytes = 0;
  void *work;
  adasm_hs_params p = adasm_hs_params_default();
  ks[0] = 1;
  ks[1] = n < 2 ? n : 2;
  ks[2] = n < 5 ? n : 5;
  ks[3] = n;
  p.k = n;
  CHECK(adasm_hs_workspace_size(m, &p, &bytes) == ADASM_OK, "workspace");
  work = xmalloc(bytes);
  for (a = 0; a < sizeof isas / sizeof isas[0]; ++a) {
    const adasm_kernels *k;
    double sum = 0.0;
    if (adasm_kernels_get(isas[a], &k) != ADASM_OK) continue;
    for (i = 0; i < n; ++i) s[i] = 1.0; /* poison */
    all_leaves(m, k, x, m->root, 0.0, s);
    for (i = 0; i < n; ++i) {
      double l;
      sum += exp(s[i]);
      ref[i].s = s[i];
      ref[i].i = i;
      CHECK(s[i] <= 0.0, "%s: log p > 0", what);
      CHECK(adasm_hs_log_prob(m, k, x, i, &l) == ADASM_OK &&
                fabs(l - s[i]) <= 1e-12 * (1.0 + fabs(s[i])),
            "%s %s: log_prob(%lu) %.17g vs %.17g", what,
            adasm_isa_name(isas[a]), (unsigned long)i, l, s[i]);
    }
    CHECK(fabs(sum - 1.0) < 1e-12, "%s %s: leaf probabilities sum to %.17g",
          what, adasm_isa_name(isas[a]), sum);
    qsort(ref, n, sizeof *ref, lbl_cmp);
    p.kern = k;
    for (b = 0; b < 4; ++b)
      for (t = 0; t < sizeof thr / sizeof thr[0]; ++t) {
        adasm_hs_result out;
        adasm_result e;
        size_t want = 0;
        int same = 1;
        p.k = ks[b];
        p.threshold = thr[t];
        p.fasttext = 0;
        memset(&out, 0, sizeof out);
        out.idx = idx;
        out.prob = prob;
        out.log_prob = lp;
        e = adasm_hs_topk(m, &p, x, work, bytes, &out);
        CHECK(e == ADASM_OK, "%s: topk %s", what, adasm_result_string(e));
        while (want < p.k && (thr[t] == 0.0f || ref[want].s >= log((double)thr[t])))
          ++want;
        CHECK(out.count == want, "%s %s k=%lu thr=%g: count %lu, want %lu",
              what, adasm_isa_name(isas[a]), (unsigned long)p.k,
              (double)thr[t], (unsigned long)out.count, (unsigned long)want);
        for (c = 0; c < want && c < out.count; ++c)
          same &= idx[c] == ref[c].i && lp[c] == ref[c].s &&
                  prob[c] == (float)exp(ref[c].s);
        for (; c < p.k; ++c)
          same &= idx[c] == 0 && prob[c] == 0.0f && lp[c] < -1e308;
        CHECK(same, "%s %s k=%lu thr=%g: top-k differs from brute force",
              what, adasm_isa_name(isas[a]), (unsigned long)p.k,
              (double)thr[t]);
        CHECK(out.nodes <= n - 1 && out.madds == out.nodes * m->dim,
              "%s: nodes %lu", what, (unsigned long)out.nodes);
        /* fastText mode against the recursive transcription */
        if (p.k <= 64) {
          ftref fr;
          fr.k = p.k;
          fr.held = 0;
          ft_dfs(m, k, x, thr[t], m->root, 0.0f, &fr);
          p.fasttext = 1;
          memset(&out, 0, sizeof out);
          out.idx = idx;
          out.prob = prob;
          e = adasm_hs_topk(m, &p, x, work, bytes, &out);
          same = e == ADASM_OK && out.count == fr.held;
          for (c = 0; same && c < fr.held; ++c)
            same &= idx[c] == (size_t)fr.node[c] && prob[c] == expf(fr.s[c]);
          CHECK(same, "%s %s k=%lu thr=%g: fasttext mode differs from dfs "
                "(count %lu vs %lu)", what, adasm_isa_name(isas[a]),
                (unsigned long)p.k, (double)thr[t], (unsigned long)out.count,
                (unsigned long)fr.held);
        }
      }
  }
  free(work); free(s); free(ref); free(idx); free(prob); free(lp);
}

static void test_topk(void) {
  static const size_t ns[] = {1, 2, 3, 7, 50, 300};
  static const size_t ds[] = {1, 3, 16, 17, 40};
  static const float scales[] = {0.3f, 3.0f, 40.0f};
  adasm_pcg32 r;
  size_t a, b, c, i;
  char what[96];
  adasm_pcg32_seed(&r, 5u, 2u);
  for (a = 0; a < sizeof ns / sizeof ns[0]; ++a)
    for (b = 0; b < sizeof ds / sizeof ds[0]; ++b)
      for (c = 0; c < sizeof scales / sizeof scales[0]; ++c) {
        const size_t n = ns[a], d = ds[b], ld = d + (d & 1u);
        int64_t *cnt = (int64_t *)xmalloc(n * sizeof *cnt);
        float *v = (float *)xmalloc(n * ld * sizeof(float));
        float *x = (float *)xmalloc(d * sizeof(float));
        adasm_hs_model m;
        make_counts(cnt, n, &r, (int)(c & 1u));
        for (i = 0; i < n * ld; ++i) v[i] = urand(&r) * scales[c];
        for (i = 0; i < d; ++i) x[i] = urand(&r);
        if (adasm_hs_build(&m, cnt, n, v, d, ld, NULL) == ADASM_OK) {
          snprintf(what, sizeof what, "n=%lu d=%lu scale=%g", (unsigned long)n,
                   (unsigned long)d, (double)scales[c]);
          check_model_topk(&m, x, what);
          adasm_hs_free(&m);
        } else {
          CHECK(0, "build failed");
        }
        free(cnt); free(v); free(x);
      }
  { /* all z = 0: every p is 2^-depth, many ties: lower class first */
    const size_t n = 37, d = 4;
    int64_t cnt[37];
    float v[37 * 4], x[4] = {1, -2, 3, 0.5f};
    adasm_hs_model m;
    for (i = 0; i < n; ++i) cnt[i] = (int64_t)(100 - i);
    memset(v, 0, sizeof v);
    if (adasm_hs_build(&m, cnt, n, v, d, d, NULL) == ADASM_OK) {
      check_model_topk(&m, x, "ties");
      adasm_hs_free(&m);
    }
  }
}

/* ---- .bin images ---------------------------------------------------------------- */
typedef struct bytes {
  unsigned char *p;
  size_t len, cap;
} bytes;
static void put(bytes *b, const void *src, size_t n) {
  if (b->len + n > b->cap) {
    unsigned char *q;
    b->cap = 2 * (b->len + n) + 64;
    q = (unsigned char *)realloc(b->p, b->cap);
    if (!q) exit(2);
    b->p = q;
  }
  memcpy(b->p + b->len, src, n);
  b->len += n;
}
static void put32(bytes *b, uint32_t v) {
  unsigned char c[4];
  c[0] = (unsigned char)v; c[1] = (unsigned char)(v >> 8);
  c[2] = (unsigned char)(v >> 16); c[3] = (unsigned char)(v >> 24);
  put(b, c, 4);
}
static void put64(bytes *b, uint64_t v) {
  put32(b, (uint32_t)v);
  put32(b, (uint32_t)(v >> 32));
}
static void putf(bytes *b, float f) {
  uint32_t u;
  memcpy(&u, &f, 4);
  put32(b, u);
}
static void put8(bytes *b, unsigned v) {
  unsigned char c = (unsigned char)v;
  put(b, &c, 1);
}

/* What the writer writes; defaults from spec_init describe a valid model. */
typedef struct ftspec {
  int32_t magic, version, dim, loss, model, bucket, size, nwords, nlabels;
  int64_t ntokens, prune, in_m, in_n, out_m, out_n;
  int64_t counts[64];
  signed char type[64]; /* entry type bytes */
  int empty_entry;       /* entry 0 gets an empty string */
  int32_t nwrite;        /* entries written (default: size, at most 64) */
  unsigned quant, qout;
  size_t trailing;
  float in[64 * 8], out[64 * 8];
} ftspec;

static void spec_init(ftspec *s, int32_t nwords, int32_t nlabels,
                      int32_t dim, int32_t model, uint64_t seed) {
  adasm_pcg32 r;
  int32_t i;
  const int32_t osz = model == 3 ? nlabels : nwords;
  memset(s, 0, sizeof *s);
  adasm_pcg32_seed(&r, seed, 3u);
  s->magic = 793712314;
  s->version = 12;
  s->dim = dim;
  s->loss = 1;
  s->model = model;
  s->bucket = 0;
  s->size = nwords + nlabels;
  s->nwords = nwords;
  s->nlabels = nlabels;
  s->ntokens = 12345;
  s->prune = -1;
  s->in_m = nwords + s->bucket;
  s->in_n = dim;
  s->out_m = osz;
  s->out_n = dim;
  make_counts(s->counts, (size_t)nwords, &r, 1);
  make_counts(s->counts + nwords, (size_t)nlabels, &r, 0);
  for (i = 0; i < s->size; ++i) s->type[i] = (signed char)(i < nwords ? 0 : 1);
  for (i = 0; i < 64 * 8; ++i) {
    s->in[i] = urand(&r);
    s->out[i] = 2.0f * urand(&r);
  }
}

static bytes write_bin(const ftspec *s) {
  bytes b;
  int32_t i;
  int64_t j;
  char name[32];
  memset(&b, 0, sizeof b);
  put32(&b, (uint32_t)s->magic);
  put32(&b, (uint32_t)s->version);
  put32(&b, (uint32_t)s->dim);
  put32(&b, 5); put32(&b, 5); put32(&b, 1); put32(&b, 5); put32(&b, 1);
  put32(&b, (uint32_t)s->loss);
  put32(&b, (uint32_t)s->model);
  put32(&b, (uint32_t)s->bucket);
  put32(&b, 0); put32(&b, 0); put32(&b, 100);
  {
    double t = 1e-4;
    put(&b, &t, 8); /* host order; never read */
  }
  put32(&b, (uint32_t)s->size);
  put32(&b, (uint32_t)s->nwords);
  put32(&b, (uint32_t)s->nlabels);
  put64(&b, (uint64_t)s->ntokens);
  put64(&b, (uint64_t)s->prune);
  for (i = 0; i < (s->nwrite ? s->nwrite : s->size) && i < 64; ++i) {
    if (i < s->nwords) snprintf(name, sizeof name, "w%d", (int)i);
    else snprintf(name, sizeof name, "__label__c%d", (int)(i - s->nwords));
    if (i == 0 && s->empty_entry) name[0] = '\0';
    put(&b, name, strlen(name) + 1);
    put64(&b, (uint64_t)s->counts[i]);
    put8(&b, (unsigned)(unsigned char)s->type[i]);
  }
  for (j = 0; j < s->prune && j < 16; ++j) {
    put32(&b, (uint32_t)j);
    put32(&b, (uint32_t)j);
  }
  put8(&b, s->quant);
  put64(&b, (uint64_t)s->in_m);
  put64(&b, (uint64_t)s->in_n);
  for (j = 0; j < s->in_m * s->in_n && j < 64 * 8; ++j) putf(&b, s->in[j]);
  put8(&b, s->qout);
  put64(&b, (uint64_t)s->out_m);
  put64(&b, (uint64_t)s->out_n);
  for (j = 0; j < s->out_m * s->out_n && j < 64 * 8; ++j) putf(&b, s->out[j]);
  for (j = 0; j < (int64_t)s->trailing; ++j) put8(&b, 0);
  return b;
}

#define ANY_ERROR ((adasm_result)1) /* for load_expect: any failure */

/* Loads s's image; expects `want` (or any error for ANY_ERROR); on failure *m must be untouched and
   `why` set; on success `why` is NULL. Returns the result. */
static adasm_result load_expect(const ftspec *s, adasm_result want,
                                const char *why_has, const char *what) {
  bytes b = write_bin(s);
  adasm_hs_model m;
  unsigned char before[sizeof m];
  const char *why = "unset";
  adasm_result e;
  memset(&m, 0x5a, sizeof m);
  memcpy(before, &m, sizeof m);
  e = adasm_hs_load_fasttext(&m, b.p, b.len, NULL, &why);
  CHECK(want == ANY_ERROR ? e != ADASM_OK : e == want,
        "%s: got %s (%s), want %s", what, adasm_result_string(e),
        why ? why : "-", adasm_result_string(want));
  if (e == ADASM_OK) {
    CHECK(why == NULL, "%s: why set on success", what);
    adasm_hs_free(&m);
  } else {
    CHECK(why != NULL && strlen(why) > 0, "%s: no reason", what);
    CHECK(memcmp(&m, before, sizeof m) == 0, "%s: model written on error",
          what);
    if (why_has && why)
      CHECK(strstr(why, why_has) != NULL, "%s: reason '%s' lacks '%s'", what,
            why, why_has);
  }
  free(b.p);
  return e;
}

static void test_parser(void) {
  ftspec s, t;
  bytes b;
  adasm_hs_model m, ref;
  adasm_result e;
  const char *why = NULL;
  size_t i, j, len;
  int same;

  /* a valid supervised model: fields, names, counts, vectors, tree */
  spec_init(&s, 9, 6, 5, 3, 1u);
  b = write_bin(&s);
  e = adasm_hs_load_fasttext(&m, b.p, b.len, NULL, &why);
  CHECK(e == ADASM_OK && why == NULL, "valid model: %s (%s)",
        adasm_result_string(e), why ? why : "-");
  if (e == ADASM_OK) {
    CHECK(m.nlabels == 6 && m.dim == 5 && m.ft_nwords == 9 &&
              m.ft_nentries == 15 && m.ft_label_base == 9 && m.ft_model == 3 &&
              m.ft_input_rows == 9,
          "valid model: header fields");
    CHECK(strcmp(adasm_hs_label_name(&m, b.p, 0), "__label__c0") == 0 &&
              strcmp(adasm_hs_label_name(&m, b.p, 5), "__label__c5") == 0 &&
              adasm_hs_label_name(&m, b.p, 6) == NULL &&
              strcmp((const char *)b.p + m.ft_name[3], "w3") == 0,
          "valid model: names");
    {
      float f;
      memcpy(&f, b.p + m.ft_input_offset + 4 * (2 * 5 + 1), 4);
      CHECK(f == s.in[2 * 5 + 1], "valid model: input offset");
    }
    same = 1;
    for (i = 0; i < 6; ++i) same &= m.count[i] == s.counts[9 + i];
    for (i = 0; i < 5; ++i)
      for (j = 0; j < 5; ++j) same &= m.vec[i * m.ldv + j] == s.out[i * 5 + j];
    CHECK(same, "valid model: counts or vectors");
    if (adasm_hs_build(&ref, s.counts + 9, 6, s.out, 5, 5, NULL) == ADASM_OK) {
      same = 1;
      for (i = 0; i < 11; ++i)
        same &= ref.parent[i] == m.parent[i] && ref.code[i] == m.code[i];
      CHECK(same && ref.ft_name == NULL &&
                adasm_hs_label_name(&ref, b.p, 0) == NULL,
            "load and build give different trees");
      adasm_hs_free(&ref);
    }
    adasm_hs_free(&m);
    CHECK(m.block == NULL && m.nlabels == 0, "free did not clear");
    adasm_hs_free(&m);
  }

  /* every truncation fails, leaves the model alone, and gives a reason */
  for (len = 0; len < b.len; ++len) {
    memset(&m, 0x5a, sizeof m);
    why = NULL;
    e = adasm_hs_load_fasttext(&m, b.p, len, NULL, &why);
    CHECK(e == ADASM_ERR_SIZE && why != NULL && m.block != NULL,
          "truncated at %lu of %lu: %s", (unsigned long)len,
          (unsigned long)b.len, adasm_result_string(e));
  }
  CHECK(adasm_hs_load_fasttext(NULL, b.p, b.len, NULL, &why) == ADASM_ERR_NULL,
        "NULL model");
  CHECK(adasm_hs_load_fasttext(&m, NULL, b.len, NULL, NULL) == ADASM_ERR_NULL,
        "NULL buffer");

  /* random corruption: never a crash; a model that loads is sane */
  {
    adasm_pcg32 r;
    size_t trial, ok = 0;
    unsigned char *c = (unsigned char *)xmalloc(b.len);
    adasm_pcg32_seed(&r, 99u, 4u);
    for (trial = 0; trial < 3000; ++trial) {
      size_t nflip = 1 + adasm_pcg32_bounded(&r, 4), f;
      memcpy(c, b.p, b.len);
      for (f = 0; f < nflip; ++f)
        c[adasm_pcg32_bounded(&r, (uint32_t)b.len)] =
            (unsigned char)adasm_pcg32_next(&r);
      if (adasm_hs_load_fasttext(&m, c, b.len, NULL, NULL) == ADASM_OK) {
        ++ok;
        same = m.nlabels >= 1 && m.parent[m.root] == -1;
        for (i = 0; i + 1 < 2 * m.nlabels; ++i)
          if (i != m.root)
            same &= m.parent[i] > (int32_t)i &&
                    (size_t)m.parent[i] <= m.root;
        CHECK(same, "corrupted model loaded with a broken tree");
        adasm_hs_free(&m);
      }
    }
    CHECK(ok > 0, "no corrupted image loaded (vector bytes should)");
    free(c);
  }
  free(b.p);

  /* cbow / skipgram: the classes are the words */
  spec_init(&s, 7, 0, 3, 2, 2u);
  b = write_bin(&s);
  e = adasm_hs_load_fasttext(&m, b.p, b.len, NULL, &why);
  CHECK(e == ADASM_OK, "skipgram model: %s (%s)", adasm_result_string(e),
        why ? why : "-");
  if (e == ADASM_OK) {
    CHECK(m.nlabels == 7 && m.ft_label_base == 0 &&
              strcmp(adasm_hs_label_name(&m, b.p, 6), "w6") == 0 &&
              m.count[2] == s.counts[2],
          "skipgram model: classes are words");
    adasm_hs_free(&m);
  }
  free(b.p);

  /* one class: a leaf as root, p = 1 */
  spec_init(&s, 3, 1, 2, 3, 3u);
  if (load_expect(&s, ADASM_OK, NULL, "one label") == ADASM_OK) {
    adasm_hs_params p = adasm_hs_params_default();
    adasm_hs_result out;
    size_t idx = 7, need = 0;
    float prob = 0.0f, x[2] = {1, 2};
    unsigned char work[256];
    b = write_bin(&s);
    (void)adasm_hs_load_fasttext(&m, b.p, b.len, NULL, NULL);
    memset(&out, 0, sizeof out);
    out.idx = &idx;
    out.prob = &prob;
    CHECK(adasm_hs_workspace_size(&m, &p, &need) == ADASM_OK &&
              need <= sizeof work,
          "one label: workspace");
    e = adasm_hs_topk(&m, &p, x, work, sizeof work, &out);
    CHECK(e == ADASM_OK && idx == 0 && prob == 1.0f && out.count == 1 &&
              out.nodes == 0,
          "one label: topk");
    p.fasttext = 1;
    e = adasm_hs_topk(&m, &p, x, work, sizeof work, &out);
    CHECK(e == ADASM_OK && idx == 0 && prob == 1.0f, "one label: fasttext");
    adasm_hs_free(&m);
    free(b.p);
  }

  /* refusals */
  spec_init(&s, 9, 6, 5, 3, 1u);
  t = s; t.magic = 793712315;
  load_expect(&t, ADASM_ERR_PARAM, "magic", "bad magic");
  t = s; t.version = 11;
  load_expect(&t, ADASM_ERR_PARAM, "version", "version 11");
  t = s; t.loss = 2;
  load_expect(&t, ADASM_ERR_PARAM, "-loss hs", "loss ns");
  t = s; t.loss = 3;
  load_expect(&t, ADASM_ERR_PARAM, "-loss hs", "loss softmax");
  t = s; t.loss = 9;
  load_expect(&t, ADASM_ERR_PARAM, "loss", "loss 9");
  t = s; t.model = 4;
  load_expect(&t, ADASM_ERR_PARAM, "model type", "model 4");
  t = s; t.dim = 0;
  load_expect(&t, ADASM_ERR_PARAM, "dim", "dim 0");
  t = s; t.dim = -5;
  load_expect(&t, ADASM_ERR_PARAM, "dim", "dim -5");
  t = s; t.bucket = -1;
  load_expect(&t, ADASM_ERR_PARAM, "bucket", "bucket -1");
  t = s; t.quant = 1;
  load_expect(&t, ADASM_ERR_PARAM, "quantized", "quantized input");
  t = s; t.qout = 1;
  load_expect(&t, ADASM_ERR_PARAM, "quantized", "quantized output");
  t = s; t.quant = 2;
  load_expect(&t, ADASM_ERR_PARAM, "flag", "quant flag 2");
  t = s; t.qout = 7;
  load_expect(&t, ADASM_ERR_PARAM, "flag", "qout flag 7");
  t = s; t.prune = 2; /* pruned dictionary, not quantized */
  load_expect(&t, ADASM_ERR_PARAM, "pruned", "pruned, not quantized");
  t = s; t.prune = 2; t.quant = 1;
  load_expect(&t, ADASM_ERR_PARAM, "quantized", "pruned and quantized");
  t = s; t.prune = -2;
  load_expect(&t, ADASM_ERR_PARAM, "pruned", "prune -2");
  t = s; t.prune = (int64_t)1 << 40; /* lying pair count */
  load_expect(&t, ADASM_ERR_SIZE, "truncated", "prune 2^40");
  t = s; t.ntokens = -1;
  load_expect(&t, ADASM_ERR_PARAM, "token", "ntokens -1");
  t = s; t.size = 0x7fffffff; /* lying sizes */
  load_expect(&t, ADASM_ERR_PARAM, "sizes", "size 2^31-1");
  t = s; t.size = 0x7fffffff; t.nwords = 0x7fffffff - 6;
  load_expect(&t, ADASM_ERR_SIZE, "larger than the file", "nwords 2^31-7");
  t = s; t.size = 16; t.nlabels = 7; t.nwrite = 15;
  load_expect(&t, ANY_ERROR, NULL, "one entry more than written");
  t = s; t.size = -1; t.nwords = -7;
  load_expect(&t, ADASM_ERR_PARAM, "sizes", "negative sizes");
  t = s; t.size = 9; t.nlabels = 0; t.out_m = 0;
  load_expect(&t, ADASM_ERR_SIZE, "no classes", "no labels");
  t = s; t.counts[10] = -3;
  load_expect(&t, ADASM_ERR_PARAM, "negative", "negative count");
  t = s; t.counts[2] = -3;
  load_expect(&t, ADASM_ERR_PARAM, "negative", "negative word count");
  t = s; t.counts[9] = 999999999999999LL; t.counts[10] = 2;
  load_expect(&t, ADASM_ERR_PARAM, "1e15", "counts sum to 1e15");
  t = s; t.counts[9] = 999999999999000LL;
  load_expect(&t, ADASM_OK, NULL, "counts just below 1e15");
  t = s; t.type[3] = 1;
  load_expect(&t, ADASM_ERR_PARAM, "order", "label among words");
  t = s; t.type[12] = 0;
  load_expect(&t, ADASM_ERR_PARAM, "order", "word among labels");
  t = s; t.type[12] = 2;
  load_expect(&t, ADASM_ERR_PARAM, "order", "type 2");
  t = s; t.empty_entry = 1;
  load_expect(&t, ADASM_ERR_PARAM, "empty", "empty entry");
  t = s; t.in_m = 10;
  load_expect(&t, ADASM_ERR_PARAM, "input matrix", "input rows");
  t = s; t.bucket = 3; /* rows must then be nwords + 3 */
  load_expect(&t, ADASM_ERR_PARAM, "input matrix", "bucket 3, 9 rows");
  t = s; t.bucket = 3; t.in_m = 12;
  load_expect(&t, ADASM_OK, NULL, "bucket 3, 12 rows");
  t = s; t.in_n = 4;
  load_expect(&t, ADASM_ERR_PARAM, "input matrix", "input cols");
  t = s; t.out_m = 5;
  load_expect(&t, ADASM_ERR_PARAM, "output matrix", "output rows");
  t = s; t.out_n = 6;
  load_expect(&t, ADASM_ERR_PARAM, "output matrix", "output cols");
  t = s; t.in_m = -9;
  load_expect(&t, ADASM_ERR_PARAM, "input matrix", "input rows -9");
  t = s; t.dim = 0x7fffffff; t.in_n = t.out_n = 0x7fffffff; /* huge dim */
  load_expect(&t, ADASM_ERR_SIZE, "truncated", "dim 2^31-1");
  t = s; t.nlabels = t.size = 1 << 30; t.nwords = 0;  /* huge, short */
  load_expect(&t, ADASM_ERR_SIZE, NULL, "2^30 labels");
  t = s; t.trailing = 1;
  load_expect(&t, ADASM_ERR_SIZE, "trailing", "trailing byte");
  t = s; t.out[7] = (float)nan("");
  load_expect(&t, ADASM_ERR_NAN, "NaN", "NaN node vector");
  t = s; t.out[3] = adasm__inff();
  load_expect(&t, ADASM_ERR_PARAM, "infinite", "inf node vector");
  t = s; t.out[5 * 5 + 2] = (float)nan(""); /* last row: not a node */
  load_expect(&t, ADASM_OK, NULL, "NaN in the unused last row");
  t = s; t.in[4] = (float)nan("");
  load_expect(&t, ADASM_OK, NULL, "NaN in the input matrix");
}

/* ---- allocation failures, arguments --------------------------------------------- */
static void test_alloc_and_args(void) {
  ftspec s;
  bytes b;
  adasm_hs_model m, before;
  adasm_hs_params p = adasm_hs_params_default();
  adasm_hs_result out;
  adasm_result e;
  const char *why;
  long calls, f;
  size_t idx[6], need = 0, i;
  float prob[6], x[5] = {0.5f, -1, 2, 0.25f, 1};
  double lp[6], l;
  unsigned char *work;
  int ctx_token = 0;
  spec_init(&s, 9, 6, 5, 3, 1u);
  b = write_bin(&s);

  /* count the allocations of each call, then fail each one in turn, with
     every later one (fail_rest) */
  ta.fail_rest = 1;
  ta.armed = 1; ta.calls = 0; ta.fail_at = 0;
  e = adasm_hs_load_fasttext(&m, b.p, b.len, &ctx_token, NULL);
  ta.armed = 0;
  calls = ta.calls;
  CHECK(e == ADASM_OK && calls >= 1 && ta.last_ctx == (void *)&ctx_token &&
            m.alloc_ctx == (void *)&ctx_token,
        "load: %ld allocation(s), context passed", calls);
  if (e == ADASM_OK) adasm_hs_free(&m);
  CHECK(ta.live == 0, "load + free leaked %ld block(s)", ta.live);
  for (f = 1; f <= calls; ++f) {
    memset(&m, 0x33, sizeof m);
    before = m;
    ta.armed = 1; ta.calls = 0; ta.fail_at = f;
    why = NULL;
    e = adasm_hs_load_fasttext(&m, b.p, b.len, NULL, &why);
    ta.armed = 0; ta.fail_at = 0;
    CHECK(e == ADASM_ERR_NOMEM && why != NULL &&
              memcmp(&m, &before, sizeof m) == 0 && ta.live == 0,
          "load with allocation %ld failing: %s, %ld live", f,
          adasm_result_string(e), ta.live);
  }
  ta.armed = 1; ta.calls = 0;
  e = adasm_hs_build(&m, s.counts + 9, 6, s.out, 5, 5, NULL);
  ta.armed = 0;
  calls = ta.calls;
  CHECK(e == ADASM_OK && calls >= 1, "build: %ld allocation(s)", calls);
  for (f = 1; f <= calls; ++f) {
    adasm_hs_model m2;
    memset(&m2, 0x33, sizeof m2);
    before = m2;
    ta.armed = 1; ta.calls = 0; ta.fail_at = f;
    e = adasm_hs_build(&m2, s.counts + 9, 6, s.out, 5, 5, NULL);
    ta.armed = 0; ta.fail_at = 0;
    CHECK(e == ADASM_ERR_NOMEM && memcmp(&m2, &before, sizeof m2) == 0,
          "build with allocation %ld failing: %s", f, adasm_result_string(e));
  }
  CHECK(ta.live == 1, "build failures leaked (%ld live)", ta.live);

  /* queries allocate nothing */
  p.k = 6;
  CHECK(adasm_hs_workspace_size(&m, &p, &need) == ADASM_OK, "workspace");
  work = (unsigned char *)xmalloc(need + 1);
  memset(&out, 0, sizeof out);
  out.idx = idx;
  out.prob = prob;
  out.log_prob = lp;
  ta.armed = 1; ta.calls = 0;
  e = adasm_hs_topk(&m, &p, x, work, need, &out);
  p.fasttext = 1;
  if (e == ADASM_OK) e = adasm_hs_topk(&m, &p, x, work + 1, need, &out);
  p.fasttext = 0;
  if (e == ADASM_OK) e = adasm_hs_log_prob(&m, NULL, x, 3, &l);
  ta.armed = 0;
  CHECK(e == ADASM_OK && ta.calls == 0, "queries: %s, %ld allocation(s)",
        adasm_result_string(e), ta.calls);

  /* argument errors */
  CHECK(adasm_hs_topk(NULL, &p, x, work, need, &out) == ADASM_ERR_NULL, "NULL m");
  CHECK(adasm_hs_topk(&m, NULL, x, work, need, &out) == ADASM_ERR_NULL, "NULL p");
  CHECK(adasm_hs_topk(&m, &p, NULL, work, need, &out) == ADASM_ERR_NULL, "NULL x");
  CHECK(adasm_hs_topk(&m, &p, x, work, need, NULL) == ADASM_ERR_NULL, "NULL out");
  out.idx = NULL;
  CHECK(adasm_hs_topk(&m, &p, x, work, need, &out) == ADASM_ERR_NULL, "NULL idx");
  out.idx = idx;
  out.prob = NULL;
  CHECK(adasm_hs_topk(&m, &p, x, work, need, &out) == ADASM_ERR_NULL, "NULL prob");
  out.prob = prob;
  CHECK(adasm_hs_topk(&m, &p, x, NULL, need, &out) == ADASM_ERR_WORKSPACE,
        "NULL work");
  CHECK(adasm_hs_topk(&m, &p, x, work, need - 65, &out) == ADASM_ERR_WORKSPACE,
        "small work");
  CHECK(adasm_hs_workspace_size(&m, &p, NULL) == ADASM_ERR_NULL, "NULL bytes");
  p.k = 0;
  CHECK(adasm_hs_topk(&m, &p, x, work, need, &out) == ADASM_ERR_SIZE, "k = 0");
  p.k = 7;
  CHECK(adasm_hs_topk(&m, &p, x, work, need, &out) == ADASM_ERR_SIZE, "k > n");
  p.k = 3;
  p.threshold = -0.1f;
  CHECK(adasm_hs_topk(&m, &p, x, work, need, &out) == ADASM_ERR_PARAM, "thr < 0");
  p.threshold = 1.5f;
  CHECK(adasm_hs_topk(&m, &p, x, work, need, &out) == ADASM_ERR_PARAM, "thr > 1");
  p.threshold = (float)nan("");
  CHECK(adasm_hs_topk(&m, &p, x, work, need, &out) == ADASM_ERR_PARAM, "thr NaN");
  p.threshold = 1.0f; /* legal: only p = 1 passes, i.e. none here */
  e = adasm_hs_topk(&m, &p, x, work, need, &out);
  CHECK(e == ADASM_OK && out.count == 0 && idx[0] == 0 && prob[0] == 0.0f,
        "threshold 1: %s, count %lu", adasm_result_string(e),
        (unsigned long)out.count);
  p.threshold = 0.0f;
  p.fasttext = 2;
  CHECK(adasm_hs_topk(&m, &p, x, work, need, &out) == ADASM_ERR_PARAM,
        "fasttext = 2");
  p.fasttext = 0;
  {
    adasm_hs_model z;
    memset(&z, 0, sizeof z);
    CHECK(adasm_hs_topk(&z, &p, x, work, need, &out) == ADASM_ERR_NULL,
          "unbuilt model");
  }
  /* NaN and inf queries: data errors, outputs NaN, count 0 */
  for (i = 0; i < 2; ++i) {
    float xb[5];
    memcpy(xb, x, sizeof xb);
    xb[2] = i == 0 ? (float)nan("") : adasm__inff();
    p.fasttext = (int)i;
    out.count = 99;
    e = adasm_hs_topk(&m, &p, xb, work, need, &out);
    CHECK(e == (i == 0 ? ADASM_ERR_NAN : ADASM_ERR_PARAM) && out.count == 0 &&
              prob[0] != prob[0] && prob[2] != prob[2] && lp[1] != lp[1] &&
              idx[0] == 0,
          "%s x: %s", i == 0 ? "NaN" : "inf", adasm_result_string(e));
    e = adasm_hs_log_prob(&m, NULL, xb, 1, &l);
    CHECK(e == (i == 0 ? ADASM_ERR_NAN : ADASM_ERR_PARAM) && l != l,
          "log_prob with a %s x: %s", i == 0 ? "NaN" : "inf",
          adasm_result_string(e));
  }
  p.fasttext = 0;
  { /* a dot product that overflows to inf - inf */
    float big[5] = {3e38f, 3e38f, 3e38f, 3e38f, 3e38f};
    float vecs[5 * 5];
    int64_t c2[6] = {6, 5, 4, 3, 2, 1};
    adasm_hs_model mb;
    for (i = 0; i < 25; ++i) vecs[i] = (i & 1u) ? 3e38f : -3e38f;
    if (adasm_hs_build(&mb, c2, 6, vecs, 5, 5, NULL) == ADASM_OK) {
      e = adasm_hs_topk(&mb, &p, big, work, need, &out);
      CHECK(e == ADASM_ERR_NAN || e == ADASM_OK, "overflowing dot: %s",
            adasm_result_string(e));
      if (e == ADASM_OK)
        for (i = 0; i < out.count; ++i) CHECK(prob[i] >= 0.0f, "prob");
      adasm_hs_free(&mb);
    }
  }
  CHECK(adasm_hs_log_prob(&m, NULL, x, 6, &l) == ADASM_ERR_SIZE, "label >= n");
  CHECK(adasm_hs_log_prob(&m, NULL, NULL, 0, &l) == ADASM_ERR_NULL, "NULL x");
  CHECK(adasm_hs_log_prob(&m, NULL, x, 0, NULL) == ADASM_ERR_NULL, "NULL lp");
  free(work);

  /* build's argument errors */
  {
    adasm_hs_model m2;
    int64_t c2[4] = {4, 3, 2, 1};
    float v2[3 * 2] = {1, 2, 3, 4, 5, 6};
    CHECK(adasm_hs_build(NULL, c2, 4, v2, 2, 2, NULL) == ADASM_ERR_NULL, "b1");
    CHECK(adasm_hs_build(&m2, NULL, 4, v2, 2, 2, NULL) == ADASM_ERR_NULL, "b2");
    CHECK(adasm_hs_build(&m2, c2, 4, NULL, 2, 2, NULL) == ADASM_ERR_NULL, "b3");
    CHECK(adasm_hs_build(&m2, c2, 0, v2, 2, 2, NULL) == ADASM_ERR_SIZE, "b4");
    CHECK(adasm_hs_build(&m2, c2, 4, v2, 0, 2, NULL) == ADASM_ERR_SIZE, "b5");
    CHECK(adasm_hs_build(&m2, c2, 4, v2, 2, 1, NULL) == ADASM_ERR_SIZE, "b6");
    CHECK(adasm_hs_build(&m2, c2, ((size_t)1 << 30) + 1, v2, 2, 2, NULL) ==
              ADASM_ERR_SIZE, "b7");
    c2[1] = -1;
    CHECK(adasm_hs_build(&m2, c2, 4, v2, 2, 2, NULL) == ADASM_ERR_PARAM, "b8");
    c2[1] = 3;
    v2[4] = (float)nan("");
    CHECK(adasm_hs_build(&m2, c2, 4, v2, 2, 2, NULL) == ADASM_ERR_NAN, "b9");
    v2[4] = -adasm__inff();
    CHECK(adasm_hs_build(&m2, c2, 4, v2, 2, 2, NULL) == ADASM_ERR_PARAM, "b10");
    v2[4] = 5;
    CHECK(adasm_hs_build(&m2, c2, 1, NULL, 2, 2, NULL) == ADASM_OK, "b11");
    adasm_hs_free(&m2);
    CHECK(adasm_hs_build(&m2, c2, 4, v2, 2, (size_t)-1, NULL) ==
              ADASM_ERR_OVERFLOW, "b12");
  }
  adasm_hs_free(&m);
  ta.fail_rest = 0;
  CHECK(ta.live == 0 && ta.bad == 0, "allocator: %ld live, %ld bad", ta.live,
        ta.bad);
  free(b.p);
}

/* ---- against fastText itself ------------------------------------------------------ */
#ifdef HAVE_POSIX
static char *slurp(const char *path, size_t *len) {
  FILE *f = fopen(path, "rb");
  char *buf;
  long n;
  if (!f) return NULL;
  if (fseek(f, 0, SEEK_END) != 0 || (n = ftell(f)) < 0 ||
      fseek(f, 0, SEEK_SET) != 0) {
    fclose(f);
    return NULL;
  }
  buf = (char *)xmalloc((size_t)n + 1);
  if (fread(buf, 1, (size_t)n, f) != (size_t)n) {
    fclose(f);
    free(buf);
    return NULL;
  }
  buf[n] = '\0';
  fclose(f);
  *len = (size_t)n;
  return buf;
}

/* Row of `word` among the model's words (linear search: tiny models). */
static long word_row(const adasm_hs_model *m, const char *buf,
                     const char *word) {
  size_t i;
  for (i = 0; i < m->ft_nwords; ++i)
    if (strcmp(buf + m->ft_name[i], word) == 0) return (long)i;
  return -1;
}

static void test_fasttext(void) {
  enum { NTRAIN = 6000, NTEST = 600, NLAB = 40, NVOC = 200, DIM = 12 };
  char dir[] = "/tmp/adasm_hs_XXXXXX", cmd[1024], path[512], line[4096];
  FILE *f;
  adasm_pcg32 r;
  size_t i, len = 0, agree1[2] = {0, 0}, agree5[2] = {0, 0}, nq = 0;
  char *bin, *pred;
  adasm_hs_model m;
  adasm_result e;
  const char *why;
  if (system("command -v fasttext >/dev/null 2>&1") != 0) {
    printf("SKIP fastText comparison: `fasttext` is not on PATH "
           "(apt-get install fasttext)\n");
    return;
  }
  if (!mkdtemp(dir)) {
    printf("SKIP fastText comparison: no temporary directory\n");
    return;
  }
  /* labels with Zipf-like frequencies; words drawn near the label */
  adasm_pcg32_seed(&r, 2024u, 9u);
  for (i = 0; i < 2; ++i) {
    size_t t, total = i == 0 ? NTRAIN : NTEST;
    snprintf(path, sizeof path, "%s/%s", dir, i == 0 ? "train.txt" : "test.txt");
    f = fopen(path, "w");
    if (!f) { printf("SKIP: cannot write %s\n", path); return; }
    for (t = 0; t < total; ++t) {
      const double u = adasm_pcg32_uniform_open(&r);
      uint32_t lab = (uint32_t)(1.0 / u) - 1u, w, nw;
      if (lab >= NLAB) lab = adasm_pcg32_bounded(&r, NLAB);
      fprintf(f, "__label__c%u", (unsigned)lab);
      nw = 2 + adasm_pcg32_bounded(&r, 6);
      for (w = 0; w < nw; ++w)
        fprintf(f, " w%u", (unsigned)((lab * 5u + adasm_pcg32_bounded(&r, 14) +
                                       (adasm_pcg32_bounded(&r, 4) == 0
                                            ? adasm_pcg32_bounded(&r, NVOC)
                                            : 0u)) % NVOC));
      fprintf(f, "\n");
    }
    fclose(f);
  }
  snprintf(cmd, sizeof cmd,
           "fasttext supervised -input %s/train.txt -output %s/m -loss hs "
           "-dim %d -epoch 5 -lr 0.5 -minCount 1 -bucket 0 -thread 1 "
           "-verbose 0 >/dev/null 2>&1 && fasttext predict-prob %s/m.bin "
           "%s/test.txt 5 > %s/pred.txt 2>/dev/null",
           dir, dir, DIM, dir, dir, dir);
  if (system(cmd) != 0) {
    CHECK(0, "fasttext failed: %s", cmd);
    return;
  }
  snprintf(path, sizeof path, "%s/m.bin", dir);
  bin = slurp(path, &len);
  CHECK(bin != NULL, "cannot read %s", path);
  if (!bin) return;
  e = adasm_hs_load_fasttext(&m, bin, len, NULL, &why);
  CHECK(e == ADASM_OK, "fastText's model: %s (%s)", adasm_result_string(e),
        why ? why : "-");
  snprintf(path, sizeof path, "%s/pred.txt", dir);
  pred = slurp(path, &len);
  snprintf(path, sizeof path, "%s/test.txt", dir);
  if (e == ADASM_OK && pred) {
    FILE *ft = fopen(path, "r");
    char *pl = pred;
    adasm_hs_params p = adasm_hs_params_default();
    size_t need = 0, idx[5];
    float prob[5], x[DIM], inrow[DIM];
    void *work;
    p.k = 5;
    (void)adasm_hs_workspace_size(&m, &p, &need);
    work = xmalloc(need);
    while (ft && fgets(line, sizeof line, ft)) {
      char *tok, *save = NULL, *pe, *names[5];
      size_t cnt = 0, j, np = 0, mode;
      float hsum[DIM];
      memset(hsum, 0, sizeof hsum);
      /* fastText's hidden vector: float sum of the known words' input
         rows in line order, then "</s>", times (float)(1.0 / count) */
      for (tok = strtok_r(line, " \t\r\n", &save); ;
           tok = strtok_r(NULL, " \t\r\n", &save)) {
        const char *w = tok ? tok : "</s>";
        long row;
        if (tok && strncmp(tok, "__label__", 9) == 0) continue;
        row = word_row(&m, bin, w);
        if (row >= 0) {
          memcpy(inrow, bin + m.ft_input_offset + (size_t)row * DIM * 4,
                 sizeof inrow);
          for (j = 0; j < DIM; ++j) hsum[j] += inrow[j];
          ++cnt;
        }
        if (!tok) break;
      }
      for (j = 0; j < DIM; ++j) x[j] = hsum[j] * (float)(1.0 / (double)cnt);
      /* fastText's line: label prob label prob ... */
      pe = strchr(pl, '\n');
      if (!pe) break;
      *pe = '\0';
      for (tok = strtok_r(pl, " ", &save); tok && np < 5;
           tok = strtok_r(NULL, " ", &save)) {
        names[np++] = tok;
        tok = strtok_r(NULL, " ", &save);
        if (!tok) break;
      }
      pl = pe + 1;
      ++nq;
      for (mode = 0; mode < 2; ++mode) {
        adasm_hs_result out;
        int all = 1;
        memset(&out, 0, sizeof out);
        out.idx = idx;
        out.prob = prob;
        p.fasttext = (int)mode;
        if (adasm_hs_topk(&m, &p, x, work, need, &out) != ADASM_OK) continue;
        if (np > 0 && out.count > 0 &&
            strcmp(adasm_hs_label_name(&m, bin, idx[0]), names[0]) == 0)
          ++agree1[mode];
        all = out.count == np;
        for (j = 0; all && j < np; ++j)
          all = strcmp(adasm_hs_label_name(&m, bin, idx[j]), names[j]) == 0;
        agree5[mode] += (size_t)all;
      }
    }
    if (ft) fclose(ft);
    free(work);
    printf("fastText predict-prob vs adasm_hs_topk on %lu queries: top-1 "
           "%lu / %lu (default) %lu / %lu (fasttext mode); top-5 lists "
           "%lu / %lu (default) %lu / %lu (fasttext mode)\n",
           (unsigned long)nq, (unsigned long)agree1[0], (unsigned long)nq,
           (unsigned long)agree1[1], (unsigned long)nq,
           (unsigned long)agree5[0], (unsigned long)nq,
           (unsigned long)agree5[1], (unsigned long)nq);
    CHECK(nq == NTEST, "read %lu of %d predictions", (unsigned long)nq, NTEST);
    CHECK(agree1[1] * 1000 >= nq * 999 && agree5[1] * 100 >= nq * 99,
          "fasttext mode disagrees with fastText");
    CHECK(agree1[0] * 100 >= nq * 99, "default mode top-1 disagrees with "
          "fastText on more than 1%% of the queries");
  }
  if (e == ADASM_OK) adasm_hs_free(&m);
  free(bin);
  free(pred);
  snprintf(cmd, sizeof cmd, "rm -rf %s", dir);
  if (system(cmd) != 0) printf("note: could not remove %s\n", dir);
}
#else
static void test_fasttext(void) {
  printf("SKIP fastText comparison: needs a POSIX system\n");
}
#endif

int main(void) {
  test_tree();
  test_topk();
  test_parser();
  test_alloc_and_args();
  test_fasttext();
  printf("test_hs: %d checks, %d failures\n", g_checks, g_fails);
  return g_fails ? 1 : 0;
}
