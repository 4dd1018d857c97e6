/* test_sample.c - the sampler chain of adasoftmax.h: adasm_sample_logits,
   adasm_exact_sample, adasm_sample_gumbel and the adasm_sample wrapper.

   What is checked, against references written here in double precision
   from the header's definition (bias, penalties, temperature, top-k, top-p,
   min-p, Gumbel-max with G_t from the documented PCG32 outputs):
   - the definition: for random logits (ties, -inf, +inf), parameters and
     draws, the token is exactly the brute-force argmax of s_t + G_t over
     the reference K, on every ISA, through every internal path (heap,
     selection, list and scan races); kept, p and log_norm agree;
   - the distribution: chi-square tests of >= 10^6 draws (draw indices 0,
     1, 2, ...; also streams and seeds) per filter and combination on
     small heads; each test raises a false alarm with probability 1e-6
     (Wilson-Hilferty quantile), so a full run of the ~30 tests has a false
     alarm rate below 1e-4. ADASM_TEST_QUICK=1 (sanitizers, qemu, valgrind)
     uses 10^5 draws;
   - determinism: the same (seed, stream, draw) gives the same token on
     every ISA; the fused pass over A (f32, f16, bf16) gives bit for bit the
     token, p, log_norm and kept of the chain on adasm_exact_query's logits,
     on every ISA;
   - hostile parameters (NaN or negative temperature, top-p > 1, bias on an
     out-of-range token, ...) are refused with their documented code and
     the outputs untouched; data errors (NaN, all -inf) fill NaN; the
     workspace is checked, and works at any alignment.

   Build by hand:
     gcc -std=c99 -O2 -Wall -Wextra -Wpedantic -Wshadow -Wconversion -I. \
         tests/test_sample.c -lm && ./a.out */
#include <float.h>
#include <math.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "test_util.h"
#define ADASOFTMAX_IMPLEMENTATION
#include "adasoftmax.h"

static int g_quick;
static const adasm_kernels *g_k[ADASM_ISA_COUNT];
static const char *g_kname[ADASM_ISA_COUNT];
static int g_nk;

static float f_inf(void) { return (float)HUGE_VAL; }

static double seconds(void) { return (double)clock() / CLOCKS_PER_SEC; }

/* Gaussian from the library's PCG32 (Box-Muller in double). */
static double gauss(adasm_pcg32 *r) {
  const double u = adasm_pcg32_uniform_open(r), v = adasm_pcg32_uniform_open(r);
  return sqrt(-2.0 * log(u)) * cos(6.283185307179586 * v);
}

/* ---- the reference: the header's definition, written out ----------------- */
static int pen_on(const adasm_sampler_params *p) {
  return p->nhistory > 0 &&
         ((p->repetition_penalty != 0.0f && p->repetition_penalty != 1.0f) ||
          p->frequency_penalty != 0.0f || p->presence_penalty != 0.0f);
}

/* Steps 1 and 2: the same float operations the header documents. */
static void ref_adjust(const float *z, size_t n, const adasm_sampler_params *p,
                       float *out) {
  size_t i, *count = (size_t *)xmalloc(n * sizeof(size_t));
  const float r = p->repetition_penalty;
  memcpy(out, z, n * sizeof(float));
  for (i = 0; i < p->nbias; ++i) {
    const size_t t = p->bias[i].token;
    out[t] = p->bias[i].bias == -f_inf() ? -f_inf() : out[t] + p->bias[i].bias;
  }
  memset(count, 0, n * sizeof(size_t));
  if (pen_on(p))
    for (i = 0; i < p->nhistory; ++i) count[p->history[i]]++;
  for (i = 0; i < n; ++i)
    if (count[i]) {
      float v = out[i];
      if (r != 0.0f && r != 1.0f) v = v > 0.0f ? v / r : v * r;
      out[i] = (float)((double)v - (double)count[i] * (double)p->frequency_penalty -
                       (double)p->presence_penalty);
    }
  free(count);
}

static const float *g_sort_z;
static int cmp_order(const void *a, const void *b) {
  const size_t i = *(const size_t *)a, j = *(const size_t *)b;
  const float x = g_sort_z[i], y = g_sort_z[j];
  if (x > y) return -1;
  if (x < y) return 1;
  return (i > j) - (i < j);
}

/* The filtered distribution of adjusted logits zb: q (n, 0 outside K), K
   as flags, |K|, the log-normalizer, and how close the input lies to a
   filter boundary (relative; tests skip inputs closer than 1e-5, where
   float rounding may decide either way). Greedy and +inf as documented. */
typedef struct ref_out {
  double *q;
  unsigned char *in;
  size_t kept, top;
  double lse, margin;
  int special; /* 0 normal, 1 greedy, 2 +inf logits */
} ref_out;

static void ref_filter(const float *zb, size_t n, const adasm_sampler_params *p,
                       ref_out *o) {
  size_t *ord = (size_t *)xmalloc(n * sizeof(size_t));
  size_t i, L = 0, ninf = 0;
  double T = (double)p->temperature, m, S = 0.0, SK = 0.0;
  memset(o->q, 0, n * sizeof(double));
  memset(o->in, 0, n);
  o->margin = HUGE_VAL;
  o->special = 0;
  for (i = 0; i < n; ++i) {
    ord[i] = i;
    ninf += zb[i] == f_inf();
  }
  g_sort_z = zb;
  qsort(ord, n, sizeof(size_t), cmp_order);
  o->top = ord[0];
  m = (double)zb[ord[0]];
  for (i = 0; i < n; ++i) L += zb[i] > -f_inf();
  if (p->temperature < 1e-30f) {
    o->special = 1;
    T = 1.0;
  }
  if (ninf) { /* uniform over the +inf logits */
    o->special = p->temperature < 1e-30f ? 1 : 2;
    L = ninf;
    if (o->special == 2) {
      if (p->top_k > 0 && p->top_k < L) L = p->top_k;
      if (p->top_p > 0.0f && p->top_p < 1.0f) {
        const double c = ceil((double)p->top_p * (double)L);
        if (c < (double)L) L = c < 1.0 ? 1 : (size_t)c;
      }
    } else {
      L = 1;
    }
    for (i = 0; i < L; ++i) {
      o->in[ord[i]] = 1;
      o->q[ord[i]] = 1.0 / (double)L;
    }
    o->kept = L;
    o->lse = HUGE_VAL;
    free(ord);
    return;
  }
  for (i = 0; i < n; ++i) S += exp(((double)zb[i] - m) / T);
  o->lse = m / T + log(S);
  if (o->special == 1) { /* greedy */
    o->in[ord[0]] = 1;
    o->q[ord[0]] = 1.0;
    o->kept = 1;
    free(ord);
    return;
  }
  if (p->top_k > 0 && p->top_k < L) {
    L = p->top_k;
    /* ties across the top-k boundary are decided by id: exact, no margin */
  }
  if (p->top_p > 0.0f && p->top_p < 1.0f) {
    double Sk = 0.0, cum = 0.0;
    size_t Lp = L;
    for (i = 0; i < L; ++i) Sk += exp(((double)zb[ord[i]] - m) / T);
    for (i = 0; i < L; ++i) {
      cum += exp(((double)zb[ord[i]] - m) / T);
      if (fabs(cum - (double)p->top_p * Sk) / Sk < o->margin)
        o->margin = fabs(cum - (double)p->top_p * Sk) / Sk;
      if (cum >= (double)p->top_p * Sk) {
        Lp = i + 1;
        break;
      }
    }
    L = Lp;
  }
  if (p->min_p > 0.0f) {
    const double thr = m + T * log((double)p->min_p);
    size_t Lm = 0;
    for (i = 0; i < n; ++i) {
      const double d = fabs((double)zb[i] - thr) / (fabs(thr) > 1.0 ? fabs(thr) : 1.0);
      if (zb[i] > -f_inf() && d < o->margin && ord[0] != i) o->margin = d;
    }
    while (Lm < L && (double)zb[ord[Lm]] >= thr) ++Lm;
    L = Lm;
  }
  for (i = 0; i < L; ++i) {
    o->in[ord[i]] = 1;
    SK += exp(((double)zb[ord[i]] - m) / T);
  }
  for (i = 0; i < L; ++i) o->q[ord[i]] = exp(((double)zb[ord[i]] - m) / T) / SK;
  o->kept = L;
  free(ord);
}

/* Step 5 by brute force: every key of K computed. */
static size_t ref_draw(const float *zb, size_t n, const adasm_sampler_params *p,
                       const ref_out *o) {
  size_t i, best = o->top;
  double b = -HUGE_VAL;
  if (o->special == 1) return o->top;
  for (i = 0; i < n; ++i)
    if (o->in[i]) {
      const double s = o->special == 2 ? 0.0 : (double)zb[i] / (double)p->temperature;
      const double key = s + adasm_sample_gumbel(p->seed, p->stream, p->draw, i);
      if (key > b) { /* ids ascend: ties keep the lower one */
        b = key;
        best = i;
      }
    }
  return best;
}

/* ---- helpers ------------------------------------------------------------- */
static void *g_work;
static size_t g_work_cap;
static void *work_for(size_t bytes) {
  if (bytes > g_work_cap) {
    free(g_work);
    g_work = xmalloc(bytes);
    g_work_cap = bytes;
  }
  return g_work;
}

static adasm_result run_chain(const float *z, size_t n,
                              const adasm_sampler_params *p,
                              adasm_sampler_result *out) {
  size_t bytes = 0;
  adasm_result r = adasm_sample_logits_workspace_size(n, p, &bytes);
  if (r != ADASM_OK) return r;
  return adasm_sample_logits(z, n, p, bytes ? work_for(bytes) : NULL, bytes, out);
}

/* Random logits: Gaussian * scale, some on a 0.25 grid (ties), some -inf,
   rarely +inf. */
static void make_logits(adasm_pcg32 *r, float *z, size_t n, double scale,
                        int ties, int neginf, int posinf) {
  size_t i;
  for (i = 0; i < n; ++i) {
    double v = gauss(r) * scale;
    if (ties) v = floor(v * 4.0) / 4.0;
    z[i] = (float)v;
  }
  if (neginf && n > 1)
    for (i = 0; i < n / 8 + 1; ++i) z[adasm_pcg32_bounded(r, (uint32_t)n)] = -f_inf();
  if (posinf)
    for (i = 0; i < (size_t)posinf; ++i) z[adasm_pcg32_bounded(r, (uint32_t)n)] = f_inf();
}

/* ---- 1. the definition, exactly ------------------------------------------ */
static void test_definition(void) {
  static const size_t ns[] = {1, 2, 7, 33, 300, 2000, 5000};
  static const float Ts[] = {0.0f, 0.3f, 1.0f, 2.5f, 1e-20f};
  static const size_t ks[] = {0, 1, 3, 20, 1100, 100000};
  static const float ps[] = {0.0f, 0.5f, 0.9f, 0.999f, 1.0f};
  static const float mps[] = {0.0f, 0.05f, 0.3f, 1.0f};
  adasm_pcg32 r;
  size_t trials = g_quick ? 150 : 600, tr, skipped = 0, checked = 0;
  size_t maxn = 5000;
  float *z = (float *)xmalloc(maxn * sizeof(float));
  float *zb = (float *)xmalloc(maxn * sizeof(float));
  ref_out o;
  adasm_logit_bias bias[8];
  size_t hist[40];
  double t0 = seconds();
  o.q = (double *)xmalloc(maxn * sizeof(double));
  o.in = (unsigned char *)xmalloc(maxn);
  adasm_pcg32_seed(&r, 2024u, 14u);
  for (tr = 0; tr < trials; ++tr) {
    const size_t n = ns[adasm_pcg32_bounded(&r, (uint32_t)(sizeof ns / sizeof ns[0]))];
    adasm_sampler_params p = adasm_sampler_params_default();
    const uint32_t shape = adasm_pcg32_next(&r);
    size_t d, i;
    int isa;
    make_logits(&r, z, n, (shape & 3u) == 0 ? 0.2 : (shape & 3u) == 1 ? 2.0 : 6.0,
                (shape & 4u) != 0, (shape & 8u) != 0,
                (shape & 0x70u) == 0x70u ? 1 + (int)((shape >> 8) & 3u) : 0);
    p.temperature = Ts[adasm_pcg32_bounded(&r, 5)];
    p.top_k = ks[adasm_pcg32_bounded(&r, 6)];
    p.top_p = ps[adasm_pcg32_bounded(&r, 5)];
    p.min_p = mps[adasm_pcg32_bounded(&r, 4)];
    p.seed = adasm_pcg32_next(&r);
    p.stream = adasm_pcg32_next(&r);
    if (shape & 0x100u) { /* bias, some banning */
      p.nbias = 1 + adasm_pcg32_bounded(&r, 8);
      for (i = 0; i < p.nbias; ++i) {
        bias[i].token = adasm_pcg32_bounded(&r, (uint32_t)n);
        bias[i].bias = (i % 5 == 4) ? -f_inf() : (float)(gauss(&r) * 3.0);
      }
      p.bias = bias;
    }
    if (shape & 0x200u) { /* a history with repeats, and penalties */
      p.nhistory = adasm_pcg32_bounded(&r, 40);
      for (i = 0; i < p.nhistory; ++i)
        hist[i] = adasm_pcg32_bounded(&r, (uint32_t)(n < 12 ? n : 12));
      p.history = hist;
      p.repetition_penalty = (shape & 0x400u) ? 1.3f : 0.0f;
      p.frequency_penalty = (shape & 0x800u) ? 0.4f : -0.2f;
      p.presence_penalty = (shape & 0x1000u) ? 0.7f : 0.0f;
    }
    ref_adjust(z, n, &p, zb);
    {
      size_t fin = 0;
      for (i = 0; i < n; ++i) fin += zb[i] > -f_inf();
      if (fin == 0) continue; /* all banned: tested in test_hostile */
      for (i = 0; i < n; ++i) CHECK(zb[i] == zb[i], "reference NaN");
    }
    ref_filter(zb, n, &p, &o);
    if (o.margin < 1e-5) {
      ++skipped;
      continue;
    }
    for (d = 0; d < 4; ++d) {
      size_t want;
      p.draw = adasm_pcg32_bounded(&r, 1u << 31);
      want = ref_draw(zb, n, &p, &o);
      for (isa = 0; isa < g_nk; ++isa) {
        adasm_sampler_result res;
        memset(&res, 0, sizeof res);
        adasm_result rc;
        p.kern = g_k[isa];
        memset(&res, 0xa5, sizeof res);
        rc = run_chain(z, n, &p, &res);
        ++checked;
        CHECK(rc == ADASM_OK, "definition trial %lu isa %s: %s", (unsigned long)tr,
              g_kname[isa], adasm_result_string(rc));
        if (rc != ADASM_OK) continue;
        CHECK(res.token == want,
              "definition trial %lu isa %s n=%lu T=%g k=%lu p=%g minp=%g bias=%lu "
              "hist=%lu: token %lu, definition %lu",
              (unsigned long)tr, g_kname[isa], (unsigned long)n,
              (double)p.temperature, (unsigned long)p.top_k, (double)p.top_p,
              (double)p.min_p, (unsigned long)p.nbias, (unsigned long)p.nhistory,
              (unsigned long)res.token, (unsigned long)want);
        CHECK(res.kept == o.kept, "trial %lu isa %s: kept %lu, reference %lu",
              (unsigned long)tr, g_kname[isa], (unsigned long)res.kept,
              (unsigned long)o.kept);
        CHECK(fabs((double)res.p - o.q[want]) <= 2e-6 * o.q[want] + 1e-12,
              "trial %lu isa %s: p %.9g, reference %.9g", (unsigned long)tr,
              g_kname[isa], (double)res.p, o.q[want]);
        if (o.lse == HUGE_VAL)
          CHECK(res.log_norm == HUGE_VAL, "trial %lu: log_norm %g, expected +inf",
                (unsigned long)tr, res.log_norm);
        else
          CHECK(fabs(res.log_norm - o.lse) <= 1e-6 * (fabs(o.lse) > 1.0 ? fabs(o.lse) : 1.0),
                "trial %lu isa %s: log_norm %.12g, reference %.12g",
                (unsigned long)tr, g_kname[isa], res.log_norm, o.lse);
        CHECK(res.madds == 0, "madds %lu for a logit vector", (unsigned long)res.madds);
      }
    }
  }
  printf("definition: %lu draws checked on %d ISA(s), %lu of %lu inputs skipped "
         "(within 1e-5 of a filter boundary), %.1f s\n",
         (unsigned long)checked, g_nk, (unsigned long)skipped, (unsigned long)trials,
         seconds() - t0);
  CHECK(skipped * 10 < trials, "%lu of %lu inputs too close to a boundary",
        (unsigned long)skipped, (unsigned long)trials);
  free(z);
  free(zb);
  free(o.q);
  free(o.in);
}

/* Large heads through each internal path: the heap (top-k <= 1024), the
   selection (top-p alone, top-k > 1024), the list race (|K| <= n / 64) and
   the scan race, with the exact token of the definition. */
static void test_paths(void) {
  struct {
    const char *name;
    float T;
    size_t k;
    float p, minp;
    double scale;
  } cfg[] = {
      {"plain", 1.0f, 0, 1.0f, 0.0f, 2.0},
      {"min-p", 0.8f, 0, 1.0f, 0.01f, 2.0},
      {"top-k 40 (list)", 1.0f, 40, 1.0f, 0.0f, 2.0},
      {"top-k 1000 (heap, scan)", 1.0f, 1000, 1.0f, 0.0f, 2.0},
      {"top-k 3000 (selection)", 1.2f, 3000, 1.0f, 0.0f, 1.0},
      {"top-k 3000 top-p 0.7", 1.2f, 3000, 0.7f, 0.0f, 1.0},
      {"top-p 0.9 (peaked)", 1.0f, 0, 0.9f, 0.0f, 3.0},
      {"top-p 0.95 (flat)", 1.0f, 0, 0.95f, 0.0f, 0.3},
      {"top-p 0.99 (flat)", 1.0f, 0, 0.99f, 0.0f, 0.2},
      {"all filters", 0.7f, 50, 0.8f, 0.02f, 2.0},
      {"T = 40 (flat)", 40.0f, 0, 1.0f, 0.0f, 2.0},
  };
  const size_t n = g_quick ? 20000 : 128256;
  float *z = (float *)xmalloc(n * sizeof(float));
  ref_out o;
  adasm_pcg32 r;
  size_t c, d, draws = g_quick ? 3 : 8;
  int isa;
  double t0 = seconds();
  o.q = (double *)xmalloc(n * sizeof(double));
  o.in = (unsigned char *)xmalloc(n);
  for (c = 0; c < sizeof cfg / sizeof cfg[0]; ++c) {
    adasm_sampler_params p = adasm_sampler_params_default();
    size_t attempt;
    p.temperature = cfg[c].T;
    p.top_k = cfg[c].k;
    p.top_p = cfg[c].p;
    p.min_p = cfg[c].minp;
    for (attempt = 0; attempt < 20; ++attempt) { /* away from boundaries */
      adasm_pcg32_seed(&r, 77u + attempt, c);
      make_logits(&r, z, n, cfg[c].scale, 0, 0, 0);
      ref_filter(z, n, &p, &o);
      if (o.margin >= 1e-6) break;
    }
    CHECK(o.margin >= 1e-6, "paths %s: every input within 1e-6 of a boundary",
          cfg[c].name);
    if (o.margin < 1e-6) continue;
    for (d = 0; d < draws; ++d) {
      size_t want;
      p.seed = 1000u + d;
      p.draw = d * 7919u;
      want = ref_draw(z, n, &p, &o);
      for (isa = 0; isa < g_nk; ++isa) {
        adasm_sampler_result res;
        memset(&res, 0, sizeof res);
        adasm_result rc;
        p.kern = g_k[isa];
        rc = run_chain(z, n, &p, &res);
        CHECK(rc == ADASM_OK && res.token == want && res.kept == o.kept,
              "paths %s isa %s draw %lu: rc %s token %lu (definition %lu) kept "
              "%lu (reference %lu)", cfg[c].name, g_kname[isa], (unsigned long)d,
              adasm_result_string(rc), (unsigned long)res.token,
              (unsigned long)want, (unsigned long)res.kept, (unsigned long)o.kept);
      }
    }
  }
  printf("paths: n=%lu, %.1f s\n", (unsigned long)n, seconds() - t0);
  free(z);
  free(o.q);
  free(o.in);
}

/* ---- 2. the distribution ----------------------------------------------- */
/* Upper quantile of chi-square(df) at tail probability 1e-6 (Wilson-
   Hilferty; conservative for small df). */
static double chi2_crit(double df) {
  const double zq = 4.753424308822899; /* Phi^-1(1 - 1e-6) */
  const double h = 2.0 / (9.0 * df), c = 1.0 - h + zq * sqrt(h);
  return df * c * c * c;
}

/* Pearson's statistic over classes with q > 0 (those expected fewer than 5
   times pooled); any draw of a class with q = 0 is a failure by itself. */
static void chi2_check(const char *name, const size_t *counts, const double *q,
                       size_t n, size_t draws) {
  size_t i, bins = 0, forbidden = 0;
  double stat = 0.0, pe = 0.0, po = 0.0;
  for (i = 0; i < n; ++i) {
    const double e = q[i] * (double)draws;
    if (q[i] == 0.0) {
      forbidden += counts[i];
      continue;
    }
    if (e < 5.0) {
      pe += e;
      po += (double)counts[i];
    } else {
      stat += ((double)counts[i] - e) * ((double)counts[i] - e) / e;
      ++bins;
    }
  }
  if (pe > 0.0) {
    stat += (po - pe) * (po - pe) / (pe > 1.0 ? pe : 1.0);
    ++bins;
  }
  CHECK(forbidden == 0, "%s: %lu draws of filtered-out tokens", name,
        (unsigned long)forbidden);
  if (bins >= 2)
    CHECK(stat <= chi2_crit((double)(bins - 1)),
          "%s: chi-square %.2f > %.2f (df %lu, p < 1e-6) over %lu draws", name,
          stat, chi2_crit((double)(bins - 1)), (unsigned long)(bins - 1),
          (unsigned long)draws);
}

static void test_distribution(void) {
  static const size_t hist[] = {0, 0, 3, 5, 5, 5, 9};
  adasm_logit_bias bias[3];
  struct {
    const char *name;
    size_t n;
    float T;
    size_t k;
    float p, minp;
    int adj;  /* 1: bias and penalties */
    int vary; /* 0: draw = i; 1: stream = i; 2: seed = i */
  } cfg[] = {
      {"plain", 13, 1.0f, 0, 1.0f, 0.0f, 0, 0},
      {"T=0.5", 50, 0.5f, 0, 1.0f, 0.0f, 0, 0},
      {"T=2", 6, 2.0f, 0, 1.0f, 0.0f, 0, 0},
      {"top-k 3", 13, 1.0f, 3, 1.0f, 0.0f, 0, 0},
      {"top-p 0.9", 13, 1.0f, 0, 0.9f, 0.0f, 0, 0},
      {"top-p 0.9 n=50", 50, 1.0f, 0, 0.9f, 0.0f, 0, 0},
      {"min-p 0.1", 20, 1.0f, 0, 1.0f, 0.1f, 0, 0},
      {"top-k 5 top-p 0.8 T 0.7", 20, 0.7f, 5, 0.8f, 0.0f, 0, 0},
      {"top-k 10 top-p 0.95 min-p 0.05 T 2", 37, 2.0f, 10, 0.95f, 0.05f, 0, 0},
      {"top-p 0.6 min-p 0.2", 30, 1.3f, 0, 0.6f, 0.2f, 0, 0},
      {"bias + penalties", 12, 1.0f, 0, 1.0f, 0.0f, 1, 0},
      {"bias + penalties + all filters", 12, 0.9f, 6, 0.9f, 0.02f, 1, 0},
      {"streams", 13, 1.0f, 0, 1.0f, 0.0f, 0, 1},
      {"seeds", 13, 1.0f, 4, 0.95f, 0.0f, 0, 2},
  };
  const size_t draws = g_quick ? 100000u : 1000000u;
  size_t c, i;
  double t0 = seconds();
  bias[0].token = 1;
  bias[0].bias = 2.0f;
  bias[1].token = 4;
  bias[1].bias = -f_inf();
  bias[2].token = 1;
  bias[2].bias = -0.5f;
  for (c = 0; c < sizeof cfg / sizeof cfg[0]; ++c) {
    const size_t n = cfg[c].n;
    float z[64], zb[64];
    double q[64];
    unsigned char in[64];
    size_t counts[64], attempt;
    ref_out o;
    adasm_sampler_params p = adasm_sampler_params_default();
    adasm_pcg32 r;
    o.q = q;
    o.in = in;
    p.temperature = cfg[c].T;
    p.top_k = cfg[c].k;
    p.top_p = cfg[c].p;
    p.min_p = cfg[c].minp;
    p.kern = g_k[g_nk - 1]; /* the best ISA; the others give the same tokens */
    if (cfg[c].adj) {
      p.bias = bias;
      p.nbias = 3;
      p.history = hist;
      p.nhistory = sizeof hist / sizeof hist[0];
      p.repetition_penalty = 1.4f;
      p.frequency_penalty = 0.3f;
      p.presence_penalty = 0.2f;
    }
    for (attempt = 0; attempt < 1000; ++attempt) { /* far from boundaries */
      adasm_pcg32_seed(&r, 0x5a3b1e00u + c, attempt);
      for (i = 0; i < n; ++i) z[i] = (float)(gauss(&r) * 1.5);
      ref_adjust(z, n, &p, zb);
      ref_filter(zb, n, &p, &o);
      if (o.margin > 1e-3) break;
    }
    memset(counts, 0, sizeof counts);
    for (i = 0; i < draws; ++i) {
      adasm_sampler_result res;
      adasm_result rc;
      if (cfg[c].vary == 0) p.draw = i;
      if (cfg[c].vary == 1) p.stream = i;
      if (cfg[c].vary == 2) p.seed = i;
      rc = run_chain(z, n, &p, &res);
      if (rc != ADASM_OK || res.token >= n) {
        CHECK(0, "%s: draw %lu returned %s", cfg[c].name, (unsigned long)i,
              adasm_result_string(rc));
        break;
      }
      counts[res.token]++;
    }
    chi2_check(cfg[c].name, counts, q, n, draws);
  }
  printf("distribution: %lu configurations x %lu draws, %.1f s\n",
         (unsigned long)(sizeof cfg / sizeof cfg[0]), (unsigned long)draws,
         seconds() - t0);
}

/* The Gumbel variables themselves: the documented recipe, recomputed from
   the PCG32 API, and their first two moments (Euler's gamma, pi^2 / 6). */
static void test_gumbel(void) {
  const size_t N = g_quick ? 20000 : 200000;
  double s1 = 0.0, s2 = 0.0, lo = HUGE_VAL, hi = -HUGE_VAL;
  size_t t;
  for (t = 0; t < 64; ++t) {
    const uint64_t seed = 0x1234u + t, stream = t * 3u, draw = t * 1000003u % (1u << 31);
    const size_t token = (size_t)(t * 2654435761u % 4000000000u);
    adasm_pcg32 g;
    uint32_t a, b;
    double u, want;
    adasm_pcg32_seed(&g, seed, stream);
    adasm_pcg32_advance(&g, draw << 33);
    adasm_pcg32_advance(&g, 2u * (uint64_t)token);
    a = adasm_pcg32_next(&g);
    b = adasm_pcg32_next(&g);
    u = ((double)a * 2097152.0 + (double)(b >> 11) + 0.5) / 9007199254740992.0;
    want = -log(-log(u));
    CHECK(adasm_sample_gumbel(seed, stream, draw, token) == want,
          "adasm_sample_gumbel(%lu) differs from the documented recipe",
          (unsigned long)t);
  }
  for (t = 0; t < N; ++t) {
    const double g = adasm_sample_gumbel(5u, 6u, 7u, t);
    s1 += g;
    s2 += g * g;
    if (g < lo) lo = g;
    if (g > hi) hi = g;
  }
  s1 /= (double)N;
  s2 = s2 / (double)N - s1 * s1;
  /* standard errors: sqrt(1.645 / N) and about sqrt(14.6 / N) */
  CHECK(fabs(s1 - 0.5772156649) < 6.0 * sqrt(1.645 / (double)N),
        "Gumbel mean %g, expected 0.5772", s1);
  CHECK(fabs(s2 - 1.6449340668) < 6.0 * sqrt(14.6 / (double)N),
        "Gumbel variance %g, expected 1.6449", s2);
  CHECK(lo >= -3.63 && hi <= 37.5, "Gumbel range [%g, %g]", lo, hi);
}

/* ---- 3. determinism across ISAs, and the fused pass ------------------------ */
static void test_isa_determinism(void) {
  const size_t n = 3000, draws = g_quick ? 100 : 1000;
  float *z = (float *)xmalloc(n * sizeof(float));
  size_t *tok = (size_t *)xmalloc(draws * sizeof(size_t));
  adasm_pcg32 r;
  int c, isa;
  adasm_pcg32_seed(&r, 99u, 1u);
  make_logits(&r, z, n, 2.0, 0, 1, 0);
  for (c = 0; c < 4; ++c) {
    adasm_sampler_params p = adasm_sampler_params_default();
    size_t d, diff = 0;
    p.temperature = c == 3 ? 0.6f : 1.0f;
    p.top_k = c == 1 ? 30 : 0;
    p.top_p = c == 2 ? 0.9f : c == 3 ? 0.8f : 1.0f;
    p.min_p = c == 3 ? 0.05f : 0.0f;
    p.seed = 31337u;
    for (isa = 0; isa < g_nk; ++isa) {
      p.kern = g_k[isa];
      for (d = 0; d < draws; ++d) {
        adasm_sampler_result res;
        memset(&res, 0, sizeof res);
        p.draw = d;
        if (run_chain(z, n, &p, &res) != ADASM_OK) res.token = (size_t)-1;
        if (isa == 0)
          tok[d] = res.token;
        else
          diff += tok[d] != res.token;
      }
      CHECK(diff == 0, "config %d isa %s: %lu of %lu draws differ from %s", c,
            g_kname[isa], (unsigned long)diff, (unsigned long)draws, g_kname[0]);
    }
  }
  free(z);
  free(tok);
}

static void test_fused(void) {
  static const size_t shapes[][2] = {{1, 1}, {7, 5}, {300, 33}, {1000, 64}, {5000, 17}};
  adasm_pcg32 r;
  size_t s, i;
  adasm_pcg32_seed(&r, 4242u, 2u);
  for (s = 0; s < sizeof shapes / sizeof shapes[0]; ++s) {
    const size_t n = shapes[s][0], d = shapes[s][1], ld = d + (s & 1u);
    float *A = (float *)xmalloc(n * ld * sizeof(float));
    uint16_t *A16 = (uint16_t *)xmalloc(n * ld * sizeof(uint16_t));
    float *x = (float *)xmalloc(d * sizeof(float));
    float *logits = (float *)xmalloc(n * sizeof(float));
    int dt, isa, c;
    for (i = 0; i < n * ld; ++i) A[i] = (float)(gauss(&r) / sqrt((double)d));
    for (i = 0; i < d; ++i) x[i] = (float)(gauss(&r) * 3.0);
    for (dt = 0; dt < 3; ++dt) {
      adasm_matrix M;
      if (dt == 0) M = adasm_matrix_f32(A, n, d, ld);
      if (dt == 1) {
        for (i = 0; i < n * ld; ++i) A16[i] = adasm_f32_to_f16(A[i]);
        M = adasm_matrix_f16(A16, n, d, ld);
      }
      if (dt == 2) {
        for (i = 0; i < n * ld; ++i) A16[i] = adasm_f32_to_bf16(A[i]);
        M = adasm_matrix_bf16(A16, n, d, ld);
      }
      for (isa = 0; isa < g_nk; ++isa)
        for (c = 0; c < 4; ++c) {
          adasm_exact_params ep = adasm_exact_params_default();
          adasm_exact_result er;
          adasm_sampler_params p = adasm_sampler_params_default();
          adasm_sampler_result a, b;
          adasm_logit_bias bias[2];
          size_t hist[3], idx, bytes = 0;
          float prob;
          adasm_result ra, rb;
          ep.kern = g_k[isa];
          er.idx = &idx;
          er.prob = &prob;
          er.logits = logits;
          p.kern = g_k[isa];
          p.seed = 5u + s;
          p.draw = (uint64_t)c;
          p.temperature = c == 0 ? 1.0f : c == 1 ? 0.0f : 0.8f;
          p.top_k = c == 2 ? 10 : 0;
          p.top_p = c == 3 ? 0.9f : 1.0f;
          p.min_p = c == 3 ? 0.01f : 0.0f;
          if (c >= 2) {
            bias[0].token = n / 2;
            bias[0].bias = 1.5f;
            bias[1].token = 0;
            bias[1].bias = -f_inf();
            hist[0] = n - 1;
            hist[1] = n / 3;
            hist[2] = n - 1;
            p.bias = bias;
            p.nbias = n > 1 ? 2 : 1;
            if (n == 1) bias[0].token = 0, bias[0].bias = 1.0f;
            p.history = hist;
            p.nhistory = 3;
            p.repetition_penalty = 1.2f;
            p.frequency_penalty = 0.1f;
          }
          CHECK(adasm_exact_query(&M, &ep, x, NULL, 0, &er) == ADASM_OK,
                "exact_query n=%lu", (unsigned long)n);
          ra = run_chain(logits, n, &p, &a);
          CHECK(adasm_exact_sample_workspace_size(&M, &p, &bytes) == ADASM_OK,
                "exact_sample_workspace_size");
          memset(&b, 0x5a, sizeof b);
          rb = adasm_exact_sample(&M, &p, x, work_for(bytes + 1), bytes, &b);
          CHECK(ra == rb, "fused n=%lu d=%lu dtype %d isa %s config %d: %s vs %s",
                (unsigned long)n, (unsigned long)d, dt, g_kname[isa], c,
                adasm_result_string(rb), adasm_result_string(ra));
          if (ra == ADASM_OK && rb == ADASM_OK)
            CHECK(a.token == b.token && a.p == b.p && a.log_norm == b.log_norm &&
                      a.kept == b.kept && b.madds == (uint64_t)n * d,
                  "fused n=%lu d=%lu dtype %d isa %s config %d: token %lu/%lu "
                  "p %g/%g log_norm %.17g/%.17g kept %lu/%lu madds %lu",
                  (unsigned long)n, (unsigned long)d, dt, g_kname[isa], c,
                  (unsigned long)b.token, (unsigned long)a.token, (double)b.p,
                  (double)a.p, b.log_norm, a.log_norm, (unsigned long)b.kept,
                  (unsigned long)a.kept, (unsigned long)b.madds);
        }
    }
    free(A);
    free(A16);
    free(x);
    free(logits);
  }
}

/* ---- 4. hostile parameters, special values, workspace --------------------- */
static int untouched(const adasm_sampler_result *a) {
  adasm_sampler_result b;
  memset(&b, 0x77, sizeof b);
  return memcmp(a, &b, sizeof b) == 0;
}

static void test_hostile(void) {
  static const float z[6] = {0.1f, 2.0f, -1.0f, 0.7f, 1.9f, -3.0f};
  const float nan_ = (float)(HUGE_VAL - HUGE_VAL);
  const adasm_sampler_params d = adasm_sampler_params_default();
  adasm_sampler_params p;
  adasm_sampler_result res;
  adasm_logit_bias bias[1];
  size_t hist[2] = {1, 7}, bytes, i;
  static unsigned char work[1 << 16];
  adasm_result rc;
  int isa;
  struct {
    const char *what;
    int field;
    float v;
  } bad[] = {
      {"T NaN", 0, 0}, {"T -1", 0, -1.0f}, {"T +inf", 0, 0},
      {"top-p 1.5", 1, 1.5f}, {"top-p -0.1", 1, -0.1f}, {"top-p NaN", 1, 0},
      {"min-p 2", 2, 2.0f}, {"min-p -1e-9", 2, -1e-9f}, {"min-p NaN", 2, 0},
      {"repetition -1", 3, -1.0f}, {"repetition inf", 3, 0}, {"repetition NaN", 3, 0},
      {"frequency NaN", 4, 0}, {"frequency -inf", 4, 0}, {"presence inf", 5, 0},
  };
  bad[0].v = nan_;
  bad[2].v = f_inf();
  bad[5].v = nan_;
  bad[8].v = nan_;
  bad[10].v = f_inf();
  bad[11].v = nan_;
  bad[12].v = nan_;
  bad[13].v = -f_inf();
  bad[14].v = f_inf();

  /* defaults: T 1, seed 42, no filters; a zeroed struct is valid (greedy) */
  CHECK(d.temperature == 1.0f && d.seed == 42u && d.top_k == 0 &&
            (d.top_p == 1.0f || d.top_p == 0.0f) && d.min_p == 0.0f &&
            d.nbias == 0 && d.nhistory == 0 && d.kern == NULL,
        "sampler defaults");
  memset(&p, 0, sizeof p);
  CHECK(run_chain(z, 6, &p, &res) == ADASM_OK && res.token == 1 && res.p == 1.0f &&
            res.kept == 1,
        "zeroed params: greedy, token %lu", (unsigned long)res.token);
  CHECK(adasm_sample_logits_workspace_size(6, &d, &bytes) == ADASM_OK && bytes == 0,
        "no workspace for plain sampling (%lu bytes)", (unsigned long)bytes);

  for (i = 0; i < sizeof bad / sizeof bad[0]; ++i) {
    p = d;
    p.nhistory = 2; /* so the penalties are read */
    hist[1] = 3;
    p.history = hist;
    if (bad[i].field == 0) p.temperature = bad[i].v;
    if (bad[i].field == 1) p.top_p = bad[i].v;
    if (bad[i].field == 2) p.min_p = bad[i].v;
    if (bad[i].field == 3) p.repetition_penalty = bad[i].v;
    if (bad[i].field == 4) p.frequency_penalty = bad[i].v;
    if (bad[i].field == 5) p.presence_penalty = bad[i].v;
    memset(&res, 0x77, sizeof res);
    rc = adasm_sample_logits(z, 6, &p, work, sizeof work, &res);
    CHECK(rc == ADASM_ERR_PARAM && untouched(&res), "%s: %s, outputs %s", bad[i].what,
          adasm_result_string(rc), untouched(&res) ? "untouched" : "WRITTEN");
    CHECK(adasm_sample_logits_workspace_size(6, &p, &bytes) == ADASM_ERR_PARAM,
          "%s: workspace size accepted it", bad[i].what);
  }
  /* token ids out of range, bad biases, NULL lists, sizes, draws */
  {
    struct {
      const char *what;
      size_t btok;
      float bval;
      size_t htok;
      int nullb, nullh;
      uint64_t draw;
      adasm_result want;
    } t[] = {
        {"bias on token n", 6, 1.0f, 0, 0, 0, 0, ADASM_ERR_PARAM},
        {"bias on token 2^31", (size_t)1 << 31, 1.0f, 0, 0, 0, 0, ADASM_ERR_PARAM},
        {"bias NaN", 0, 0.0f, 0, 0, 0, 0, ADASM_ERR_PARAM},
        {"bias +inf", 0, 0.0f, 0, 0, 0, 0, ADASM_ERR_PARAM},
        {"history token n", 0, 1.0f, 6, 0, 0, 0, ADASM_ERR_PARAM},
        {"bias list NULL", 0, 1.0f, 0, 1, 0, 0, ADASM_ERR_NULL},
        {"history NULL", 0, 1.0f, 0, 0, 1, 0, ADASM_ERR_NULL},
        {"draw 2^31", 0, 1.0f, 0, 0, 0, (uint64_t)1 << 31, ADASM_ERR_PARAM},
    };
    t[2].bval = nan_;
    t[3].bval = f_inf();
    for (i = 0; i < sizeof t / sizeof t[0]; ++i) {
      size_t h[1];
      p = d;
      bias[0].token = t[i].btok;
      bias[0].bias = t[i].bval;
      h[0] = t[i].htok;
      p.bias = t[i].nullb ? NULL : bias;
      p.nbias = 1;
      p.history = t[i].nullh ? NULL : h;
      p.nhistory = 1;
      p.draw = t[i].draw;
      memset(&res, 0x77, sizeof res);
      rc = adasm_sample_logits(z, 6, &p, work, sizeof work, &res);
      CHECK(rc == t[i].want && untouched(&res), "%s: %s (expected %s)", t[i].what,
            adasm_result_string(rc), adasm_result_string(t[i].want));
    }
  }
  p = d;
  memset(&res, 0x77, sizeof res);
  CHECK(adasm_sample_logits(NULL, 6, &p, work, sizeof work, &res) == ADASM_ERR_NULL &&
            untouched(&res), "z NULL");
  CHECK(adasm_sample_logits(z, 6, NULL, work, sizeof work, &res) == ADASM_ERR_NULL,
        "params NULL");
  CHECK(adasm_sample_logits(z, 6, &p, work, sizeof work, NULL) == ADASM_ERR_NULL,
        "out NULL");
  CHECK(adasm_sample_logits(z, 0, &p, work, sizeof work, &res) == ADASM_ERR_SIZE &&
            untouched(&res), "n = 0");
  CHECK(adasm_sample_logits_workspace_size((size_t)1 << 32, &p, &bytes) ==
            (sizeof(size_t) > 4 ? ADASM_ERR_SIZE : ADASM_OK),
        "n = 2^32");
  CHECK(adasm_sample_logits_workspace_size(6, &p, NULL) == ADASM_ERR_NULL, "bytes NULL");
  /* an empty history with penalties on, T at the greedy boundary */
  p = d;
  p.repetition_penalty = 2.0f;
  p.frequency_penalty = 1.0f;
  CHECK(run_chain(z, 6, &p, &res) == ADASM_OK && res.token < 6, "empty history");
  p.temperature = 1e-31f;
  CHECK(run_chain(z, 6, &p, &res) == ADASM_OK && res.token == 1 && res.kept == 1,
        "T = 1e-31 is greedy: token %lu", (unsigned long)res.token);

  /* workspace: too small, missing, odd addresses */
  p = d;
  p.top_k = 3;
  p.nbias = 1;
  bias[0].token = 2;
  bias[0].bias = 5.0f;
  p.bias = bias;
  CHECK(adasm_sample_logits_workspace_size(6, &p, &bytes) == ADASM_OK && bytes > 0,
        "workspace with top-k and bias");
  memset(&res, 0x77, sizeof res);
  CHECK(adasm_sample_logits(z, 6, &p, work, bytes - 1, &res) == ADASM_ERR_WORKSPACE &&
            untouched(&res), "workspace one byte short");
  CHECK(adasm_sample_logits(z, 6, &p, NULL, bytes, &res) == ADASM_ERR_WORKSPACE &&
            untouched(&res), "workspace NULL");
  for (i = 1; i < 8; ++i) {
    CHECK(adasm_sample_logits(z, 6, &p, work + i, bytes, &res) == ADASM_OK &&
              res.token == 2,
          "workspace at offset %lu: token %lu (the bias makes it 2)", (unsigned long)i,
          (unsigned long)res.token);
  }

  for (isa = 0; isa < g_nk; ++isa) {
    float zz[6];
    size_t s, ok = 0;
    p = d;
    p.kern = g_k[isa];
    memcpy(zz, z, sizeof zz);
    zz[3] = nan_;
    memset(&res, 0x77, sizeof res);
    rc = run_chain(zz, 6, &p, &res);
    CHECK(rc == ADASM_ERR_NAN && res.p != res.p && res.log_norm != res.log_norm &&
              res.token == 0 && res.kept == 0,
          "isa %s NaN logit: %s", g_kname[isa], adasm_result_string(rc));
    for (i = 0; i < 6; ++i) zz[i] = -f_inf();
    rc = run_chain(zz, 6, &p, &res);
    CHECK(rc == ADASM_ERR_NO_FINITE_MAX && res.p != res.p && res.log_norm == -HUGE_VAL,
          "isa %s all -inf: %s", g_kname[isa], adasm_result_string(rc));
    /* a bias of -inf on every token: no finite logit either */
    {
      adasm_logit_bias ban[6];
      for (i = 0; i < 6; ++i) {
        ban[i].token = i;
        ban[i].bias = -f_inf();
      }
      p.bias = ban;
      p.nbias = 6;
      rc = run_chain(z, 6, &p, &res);
      CHECK(rc == ADASM_ERR_NO_FINITE_MAX, "isa %s everything banned: %s",
            g_kname[isa], adasm_result_string(rc));
      p.nbias = 2; /* the best two banned */
      ban[0].token = 1;
      ban[1].token = 4;
      for (s = 0; s < 500; ++s) {
        p.draw = s;
        ok += run_chain(z, 6, &p, &res) == ADASM_OK && res.token != 1 && res.token != 4;
      }
      CHECK(ok == 500, "isa %s banned tokens drawn: %lu of 500 fine", g_kname[isa],
            (unsigned long)ok);
      p.nbias = 0;
      p.bias = NULL;
    }
    /* +inf logits share the mass; greedy takes the first */
    memcpy(zz, z, sizeof zz);
    zz[2] = f_inf();
    zz[5] = f_inf();
    for (ok = 0, s = 0; s < 500; ++s) {
      p.draw = s;
      ok += run_chain(zz, 6, &p, &res) == ADASM_OK && (res.token == 2 || res.token == 5) &&
            res.p == 0.5f && res.log_norm == HUGE_VAL;
    }
    CHECK(ok == 500, "isa %s +inf logits: %lu of 500 fine", g_kname[isa],
          (unsigned long)ok);
    p.temperature = 0.0f;
    CHECK(run_chain(zz, 6, &p, &res) == ADASM_OK && res.token == 2, "greedy with +inf");
  }
}

/* Fused: argument errors of the matrix and of the parameters. */
static void test_fused_errors(void) {
  float A[12] = {1, 0, 0, 1, 1, 1, 2, 2, 0, 0, 3, 1}, x[2] = {1, -1};
  adasm_matrix M = adasm_matrix_f32(A, 6, 2, 2), bad;
  adasm_sampler_params p = adasm_sampler_params_default();
  adasm_sampler_result res;
  static unsigned char work[4096];
  size_t bytes = 0;
  adasm_result rc;
  CHECK(adasm_exact_sample_workspace_size(&M, &p, &bytes) == ADASM_OK &&
            bytes >= 6 * sizeof(float),
        "fused workspace %lu", (unsigned long)bytes);
  memset(&res, 0x77, sizeof res);
  CHECK(adasm_exact_sample(&M, &p, x, work, bytes - 1, &res) == ADASM_ERR_WORKSPACE &&
            untouched(&res), "fused: workspace short");
  CHECK(adasm_exact_sample(&M, &p, NULL, work, bytes, &res) == ADASM_ERR_NULL &&
            untouched(&res), "fused: x NULL");
  bad = M;
  bad.ld = 1;
  CHECK(adasm_exact_sample(&bad, &p, x, work, bytes, &res) == ADASM_ERR_SIZE,
        "fused: ld < cols");
  bad = M;
  bad.dtype = (adasm_dtype)3; /* in the enum's range (C++), not a dtype */
  CHECK(adasm_exact_sample(&bad, &p, x, work, bytes, &res) == ADASM_ERR_PARAM,
        "fused: unknown dtype");
  bad = M;
  bad.data = NULL;
  CHECK(adasm_exact_sample(&bad, &p, x, work, bytes, &res) == ADASM_ERR_NULL,
        "fused: data NULL");
  bad = M;
  bad.rows = (size_t)-1 / 2;
  CHECK(adasm_exact_sample_workspace_size(&bad, &p, &bytes) == ADASM_ERR_OVERFLOW,
        "fused: size overflow");
  p.temperature = -1.0f;
  CHECK(adasm_exact_sample(&M, &p, x, work, sizeof work, &res) == ADASM_ERR_PARAM &&
            untouched(&res), "fused: T -1");
  p = adasm_sampler_params_default();
  x[0] = (float)(HUGE_VAL - HUGE_VAL);
  rc = adasm_exact_sample(&M, &p, x, work, sizeof work, &res);
  CHECK(rc == ADASM_ERR_NAN && res.p != res.p, "fused: NaN in x: %s",
        adasm_result_string(rc));
}

/* The former entry point: the chain seeded with 64 bits of the generator. */
static void test_wrapper(void) {
  static const float z[9] = {0.5f, 3.0f, 1.0f, -2.0f, 3.0f, 3.0f, 0.0f, 2.9f, 1.0f};
  adasm_sample_params sp = adasm_sample_params_default();
  size_t s, bytes = 0, same = 0;
  static unsigned char work[4096];
  sp.top_k = 4;
  sp.top_p = 0.0f; /* off, in this API */
  CHECK(adasm_sample_workspace_size(9, &sp, &bytes) == ADASM_OK, "wrapper size");
  for (s = 0; s < 200; ++s) {
    adasm_pcg32 g, h;
    adasm_sampler_params p = adasm_sampler_params_default();
    adasm_sampler_result res;
    size_t out = 99;
    uint32_t hi;
    adasm_pcg32_seed(&g, s, 3u);
    h = g;
    CHECK(adasm_sample(NULL, z, 9, &sp, &g, work, bytes, &out) == ADASM_OK, "wrapper");
    hi = adasm_pcg32_next(&h);
    p.seed = ((uint64_t)hi << 32) | adasm_pcg32_next(&h);
    p.top_k = 4;
    CHECK(run_chain(z, 9, &p, &res) == ADASM_OK, "chain");
    same += res.token == out && g.state == h.state;
  }
  CHECK(same == 200, "wrapper = chain with the generator's 64 bits: %lu of 200",
        (unsigned long)same);
}

int main(void) {
  int i;
  double t0 = seconds();
  const char *q = getenv("ADASM_TEST_QUICK");
  g_quick = q != NULL && q[0] != '\0' && q[0] != '0';
  for (i = ADASM_ISA_SCALAR; i < ADASM_ISA_COUNT; ++i)
    if (adasm_kernels_get((adasm_isa)i, &g_k[g_nk]) == ADASM_OK)
      g_kname[g_nk++] = adasm_isa_name((adasm_isa)i);
  printf("ISAs:");
  for (i = 0; i < g_nk; ++i) printf(" %s", g_kname[i]);
  printf("%s\n", g_quick ? " (quick)" : "");
  test_gumbel();
  test_hostile();
  test_fused_errors();
  test_wrapper();
  test_definition();
  test_paths();
  test_isa_determinism();
  test_fused();
  test_distribution();
  free(g_work);
  printf("test_sample: %d checks, %d failed, %.1f s\n", g_checks, g_fails,
         seconds() - t0);
  return g_fails ? 1 : 0;
}
