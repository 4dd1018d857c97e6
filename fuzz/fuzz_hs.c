/* Fuzzing of the hierarchical softmax: adasm_hs_load_fasttext on arbitrary
   bytes (the strict .bin reader), adasm_hs_build on decoded counts and raw
   float bits, then adasm_hs_topk (both modes) and adasm_hs_log_prob on
   whatever loaded.

   Input layout:
     [0]  flags: bits 0-2 k-1 (1..8, capped at n); bit 3 fastText mode;
          bits 4-5 threshold (0, 1e-3, 0.1, 1); bit 6 misaligned workspace;
          bit 7 build mode (else the rest is a .bin image)
     build mode:
     [1]  n-1 (bits 0-5: 1..64 classes)
     [2]  dim-1 (bits 0-4: 1..32)
     then n counts as u16 LE (0xffff -> -1: invalid), then (n-1) x dim node
     vectors as raw float bits (NaN, inf, subnormals, huge values); bytes
     past the end read as 0.
   The query x is drawn from a PCG32 seeded by the input's length and first
   bytes, |x_j| < 2 (one entry raw bits in build mode).

   Checks: every return code is one the header documents for that call; a
   failed load leaves the model alone and gives a printable reason; a
   loaded model is a full binary tree (every non-root node has a parent
   with a larger index, children point back at it, the right child has
   code 1); topk: count <= k (= k in the default mode with threshold 0),
   distinct classes < n, probabilities in [0, 1] best first; log_prob of
   each returned class agrees with the search's; the same call in a
   dirtied workspace gives the same bits (no uninitialised reads).

   Run (from the repository root):
     clang -O1 -g -fsanitize=fuzzer,address,undefined \
       -fno-sanitize-recover=all -I. fuzz/fuzz_hs.c -o /tmp/fh -lm
     cp -r fuzz/corpus/fuzz_hs /tmp/work && /tmp/fh -max_total_time=120 /tmp/work
   Corpus (fuzz/corpus/fuzz_hs/): seed-* are tiny models trained by fastText
   0.9.2 (supervised and skipgram with -loss hs, one with -loss ns) behind
   a flags byte, and build-mode inputs; the rest is the fuzzer's merged
   corpus. */
#define ADASOFTMAX_IMPLEMENTATION
#include "../adasoftmax.h"
#include "fuzz_util.h"
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define MAXK 8
#define MAX_WORK ((size_t)1 << 22) /* queries on models with n*dim above: skipped */

static void fail(const char *what, size_t n, size_t d, size_t k) {
  fprintf(stderr, "fuzz_hs: %s (n=%lu dim=%lu k=%lu)\n", what,
          (unsigned long)n, (unsigned long)d, (unsigned long)k);
  abort();
}

static void check_tree(const adasm_hs_model *m) {
  const size_t n = m->nlabels;
  size_t i;
  if (n == 0 || m->root != 2 * n - 2 || m->parent[m->root] != -1)
    fail("bad root", n, m->dim, 0);
  for (i = 0; i + 1 < 2 * n; ++i) {
    if (i == m->root) continue;
    if (m->parent[i] <= (int32_t)i || (size_t)m->parent[i] > m->root)
      fail("bad parent", n, m->dim, 0);
    if (m->child[2 * ((size_t)m->parent[i] - n) + m->code[i]] != (int32_t)i)
      fail("child does not point back", n, m->dim, 0);
  }
}

static void query(const adasm_hs_model *m, unsigned flags, const float *x) {
  static const float thr[4] = {0.0f, 1e-3f, 0.1f, 1.0f};
  adasm_hs_params p = adasm_hs_params_default();
  adasm_hs_result out, out2;
  size_t idx[MAXK], idx2[MAXK], need = 0, t, u;
  float prob[MAXK], prob2[MAXK];
  double lp[MAXK], lp2[MAXK];
  unsigned char *work;
  adasm_result e, e2;
  const size_t off = (flags & 64u) ? 3u : 0u;
  p.k = 1 + (flags & 7u);
  if (p.k > m->nlabels) p.k = m->nlabels;
  p.fasttext = (flags & 8u) ? 1 : 0;
  p.threshold = thr[(flags >> 4) & 3u];
  if (adasm_hs_workspace_size(m, &p, &need) != ADASM_OK)
    fail("workspace size", m->nlabels, m->dim, p.k);
  work = (unsigned char *)malloc(need + off);
  if (!work) return;
  memset(work, 0, need + off);
  memset(&out, 0, sizeof out);
  out.idx = idx;
  out.prob = prob;
  out.log_prob = lp;
  e = adasm_hs_topk(m, &p, x, work + off, need, &out);
  if (e != ADASM_OK && e != ADASM_ERR_NAN && e != ADASM_ERR_PARAM)
    fail("topk: undocumented result", m->nlabels, m->dim, p.k);
  out2 = out;
  out2.idx = idx2;
  out2.prob = prob2;
  out2.log_prob = lp2;
  memset(work, 0xa5, need + off);
  e2 = adasm_hs_topk(m, &p, x, work + off, need, &out2);
  if (e2 != e || out2.count != out.count || out2.nodes != out.nodes ||
      memcmp(idx, idx2, sizeof idx[0] * p.k) != 0 ||
      memcmp(prob, prob2, sizeof prob[0] * p.k) != 0)
    fail("topk not repeatable in a dirtied workspace", m->nlabels, m->dim, p.k);
  free(work);
  if (e != ADASM_OK) {
    for (t = 0; t < p.k; ++t)
      if (prob[t] == prob[t] || idx[t] != 0) fail("error outputs not NaN", m->nlabels, m->dim, p.k);
    return;
  }
  if (out.count > p.k || (!p.fasttext && p.threshold == 0.0f && out.count != p.k))
    fail("count", m->nlabels, m->dim, p.k);
  if (out.nodes >= m->nlabels && !(m->nlabels == 1 && out.nodes == 0))
    fail("more nodes than internal nodes", m->nlabels, m->dim, p.k);
  for (t = 0; t < out.count; ++t) {
    if (idx[t] >= m->nlabels) fail("class out of range", m->nlabels, m->dim, p.k);
    for (u = 0; u < t; ++u)
      if (idx[u] == idx[t]) fail("class twice", m->nlabels, m->dim, p.k);
    /* fastText's scores add log(s + 1e-5) per step: slightly above 0 (and
       prob above 1) when every s on the path is close to 1 */
    if (!(prob[t] >= 0.0f && prob[t] <= (p.fasttext ? 1.001f : 1.0f)) ||
        !(lp[t] <= (p.fasttext ? 1e-3 : 0.0)))
      fail("probability out of range", m->nlabels, m->dim, p.k);
    if (t > 0 && lp[t] > lp[t - 1]) fail("not best first", m->nlabels, m->dim, p.k);
    if (!p.fasttext) {
      double l = 0.0;
      if (adasm_hs_log_prob(m, NULL, x, idx[t], &l) != ADASM_OK)
        fail("log_prob failed", m->nlabels, m->dim, p.k);
      if (!(fabs(l - lp[t]) <= 1e-9 * (1.0 + fabs(lp[t]))) &&
          !(l == lp[t])) /* -inf == -inf */
        fail("log_prob disagrees with topk", m->nlabels, m->dim, p.k);
    }
  }
  for (; t < p.k; ++t)
    if (idx[t] != 0 || prob[t] != 0.0f) fail("slot past count", m->nlabels, m->dim, p.k);
}

static void make_x(float *x, size_t d, const uint8_t *data, size_t size) {
  adasm_pcg32 r;
  size_t j;
  uint64_t seed = (uint64_t)size;
  for (j = 0; j < 8 && j < size; ++j) seed = seed * 131u + data[j];
  adasm_pcg32_seed(&r, seed, 17u);
  for (j = 0; j < d; ++j) x[j] = 4.0f * adasm_pcg32_uniform(&r) - 2.0f;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);
int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
  adasm_hs_model m, before;
  adasm_result e;
  const char *why = NULL;
  unsigned flags;
  float *x;
  if (size < 1) return 0;
  flags = data[0];
  memset(&m, 0x5c, sizeof m);
  before = m;
  if (flags & 128u) { /* build from decoded counts and raw vector bits */
    fuzz_reader r = fuzz_reader_init(data + 1, size - 1);
    const size_t n = 1 + (fuzz_u8(&r) & 63u), d = 1 + (fuzz_u8(&r) & 31u);
    size_t i, j;
    int64_t cnt[64];
    float vec[63 * 32] = {0.0f};
    int bad_count = 0, nan = 0, inf = 0;
    for (i = 0; i < n; ++i) {
      const unsigned v = fuzz_u16(&r);
      cnt[i] = v == 0xffffu ? -1 : (int64_t)v;
      bad_count |= v == 0xffffu;
    }
    for (i = 0; i + 1 < n; ++i)
      for (j = 0; j < d; ++j) {
        const uint32_t u = fuzz_u32(&r);
        memcpy(&vec[i * d + j], &u, 4);
        if ((u & 0x7fffffffu) > 0x7f800000u) nan = 1;
        else if ((u & 0x7fffffffu) == 0x7f800000u) inf = 1;
      }
    e = adasm_hs_build(&m, cnt, n, vec, d, d, NULL);
    if (e != (bad_count ? ADASM_ERR_PARAM
                        : nan ? ADASM_ERR_NAN
                              : inf ? ADASM_ERR_PARAM : ADASM_OK))
      fail("build: unexpected result", n, d, 0);
  } else {
    e = adasm_hs_load_fasttext(&m, data + 1, size - 1, NULL, &why);
    if (e == ADASM_OK) {
      size_t i;
      if (why != NULL) fail("why set on success", m.nlabels, m.dim, 0);
      for (i = 0; i < m.nlabels; ++i) {
        const char *s = adasm_hs_label_name(&m, data + 1, i);
        if (!s || !*s) fail("no label name", m.nlabels, m.dim, 0);
      }
    } else {
      size_t i, len = 0;
      if (e != ADASM_ERR_SIZE && e != ADASM_ERR_PARAM && e != ADASM_ERR_NAN &&
          e != ADASM_ERR_NOMEM && e != ADASM_ERR_OVERFLOW)
        fail("load: undocumented result", 0, 0, 0);
      if (!why || (len = strlen(why)) == 0) fail("load: no reason", 0, 0, 0);
      for (i = 0; i < len; ++i)
        if ((unsigned char)why[i] < 0x20 || why[i] == 0x7f)
          fail("load: unprintable reason", 0, 0, 0);
      if (memcmp(&m, &before, sizeof m) != 0) fail("load: model written on error", 0, 0, 0);
    }
  }
  if (e != ADASM_OK) return 0;
  check_tree(&m);
  if (m.nlabels * m.dim <= MAX_WORK) {
    x = (float *)malloc(m.dim * sizeof(float));
    if (x) {
      make_x(x, m.dim, data, size);
      query(&m, flags, x);
      if (flags & 128u) { /* and once with a raw-bits entry */
        uint32_t u = size > 3 ? (uint32_t)data[size - 1] * 0x01010101u : 0u;
        memcpy(&x[0], &u, 4);
        query(&m, flags, x);
      }
      free(x);
    }
  }
  adasm_hs_free(&m);
  return 0;
}
