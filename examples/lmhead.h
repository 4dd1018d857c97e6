/* lmhead.h - seeded heads and queries with the statistics of trained
 * language-model output layers. Used by the tool's demo and by
 * bench/data/llmhead.c (the benchmarks' LLM-shaped heads); include it after
 * adasoftmax.h (it uses the PCG32 and the exact GEMV). All functions are
 * static: include it in one file.
 *
 * No LLM weights can be downloaded here, so the generator reproduces what
 * matters to softmax(A x) in trained language models:
 *
 *  - Zipf token frequencies: rank r has frequency (r + 2.7)^-1.07; ranks are
 *    assigned to rows by a random permutation.
 *  - A power-law spectrum in a non-axis basis: each row's own part is
 *    v_i = Q (s .* g_i), g_i ~ N(0, I), s_k ~ (k + 1)^-ALPHA (normalised to
 *    sum s_k^2 = 1), Q a fixed random rotation (a network of random Givens
 *    rotations, 2 log2(d) + 4 layers, each pairing the coordinates by a
 *    random permutation: every output coordinate mixes every input one).
 *  - Anisotropy: every row also holds kappa_i u0 along one shared unit
 *    direction u0 (not an axis), kappa_i = KAPPA0 + KAPPA1 * lf_i, where lf_i
 *    is the row's standardised log-frequency: the rows sit in a cone, and the
 *    component of x along u0 acts as a unigram prior on the logits.
 *  - Row norms that grow with frequency: v_i is scaled by
 *    max(0.5, 1 + NU1 * lf_i).
 *  - Massive activations: MASSIVE fixed axis coordinates of every query are
 *    MASSIVE_MAG times the RMS of the query's other coordinates, with fixed
 *    signs (as the few huge hidden-state dimensions of trained transformers);
 *    the head's columns there hold a shared offset plus 0.3 times the usual
 *    row variation, so they shift all logits alike and still separate rows.
 *  - Next-token entropies like a small LM on web text: each query's entropy
 *    target is 7 * Beta(1.2, 1.9) nats (mean 2.7, from near 0 to ~6.5), met
 *    by bisection on the query's scale (the inverse temperature of its
 *    context). The query direction mixes the rows of a target token and two
 *    alternates drawn by frequency with weights 1, U(0,.7), U(0,.5), a
 *    random in-distribution direction of weight U(.5, 1.5), and the shared
 *    direction u0 (weight ZETA).
 *
 * Deterministic for a seed, on every ISA up to the last bits of the float
 * GEMV that the entropy bisection reads. C99, libc + libm. */
#ifndef LMHEAD_H
#define LMHEAD_H

#include <math.h>
#include <stdint.h>
#include <stdlib.h>

#define LMHEAD_ALPHA 0.5    /* spectrum exponent: s_k ~ (k+1)^-ALPHA */
#define LMHEAD_KAPPA0 0.6   /* mean coefficient of every row along u0 */
#define LMHEAD_KAPPA1 0.15  /* ... and its growth per sd of log-frequency */
#define LMHEAD_NU1 0.15     /* row-norm growth per sd of log-frequency */
#define LMHEAD_ZETA 0.35    /* weight of u0 in the query direction */
#define LMHEAD_MASSIVE 3    /* massive-activation coordinates */
#define LMHEAD_MASSIVE_MAG 25.0
#define LMHEAD_MASSIVE_OFF 2.0 /* shared column offset there, x 1/sqrt(d) */
#define LMHEAD_HMAX 7.0     /* entropy targets: HMAX * Beta(1.2, 1.9) nats */
#define LMHEAD_MIN_DIM 16   /* smallest n and d */

/* What the generator reports about the queries it made. */
typedef struct lmhead_info {
  double h_mean, h_min, h_max; /* next-token entropy, nats */
  double p1_mean;              /* mean top-1 probability */
  size_t h_lt1, h_gt5, p1_90;  /* queries with H < 1, H > 5, p1 > 0.9 */
  size_t massive[LMHEAD_MASSIVE];
} lmhead_info;

typedef struct lmhead__gen {
  adasm_pcg32 rng;
  size_t d, layers;
  size_t *pair; /* rotation: [layers][d] permutations; pairs (2t, 2t+1) */
  double *cs;   /* [layers][d/2][2]: cos, sin */
} lmhead__gen;

static double lmhead__unif(lmhead__gen *g) {
  return adasm_pcg32_uniform_open(&g->rng);
}
static double lmhead__gauss(lmhead__gen *g) {
  double u = lmhead__unif(g), v = lmhead__unif(g);
  return sqrt(-2.0 * log(u)) * cos(6.283185307179586 * v);
}
/* Gamma(a, 1) by Marsaglia-Tsang (a >= 1). */
static double lmhead__gamma(lmhead__gen *g, double a) {
  double dd = a - 1.0 / 3.0, c = 1.0 / sqrt(9.0 * dd);
  for (;;) {
    double z = lmhead__gauss(g), v = 1.0 + c * z, u;
    if (v <= 0) continue;
    v = v * v * v;
    u = lmhead__unif(g);
    if (log(u) < 0.5 * z * z + dd - dd * v + dd * log(v)) return dd * v;
  }
}
static double lmhead__beta(lmhead__gen *g, double a, double b) {
  double x = lmhead__gamma(g, a), y = lmhead__gamma(g, b);
  return x / (x + y);
}
static void lmhead__shuffle(lmhead__gen *g, size_t *p, size_t n) {
  size_t i;
  for (i = 0; i < n; ++i) p[i] = i;
  for (i = n; i > 1; --i) {
    size_t j = (size_t)adasm_pcg32_bounded64(&g->rng, i), t = p[i - 1];
    p[i - 1] = p[j];
    p[j] = t;
  }
}

/* The rotation Q: layers of random Givens rotations. */
static int lmhead__rot_init(lmhead__gen *g, size_t d) {
  size_t l, t, lg = 0;
  while (((size_t)1 << lg) < d) ++lg;
  g->d = d;
  g->layers = 2 * lg + 4;
  g->pair = (size_t *)malloc(g->layers * d * sizeof(size_t));
  g->cs = (double *)malloc(g->layers * d * sizeof(double));
  if (!g->pair || !g->cs) return 0;
  for (l = 0; l < g->layers; ++l) {
    lmhead__shuffle(g, g->pair + l * d, d);
    for (t = 0; t < d / 2; ++t) {
      double a = 6.283185307179586 * lmhead__unif(g);
      g->cs[l * d + 2 * t] = cos(a);
      g->cs[l * d + 2 * t + 1] = sin(a);
    }
  }
  return 1;
}
static void lmhead__rot_apply(const lmhead__gen *g, double *v) {
  size_t l, t, d = g->d;
  for (l = 0; l < g->layers; ++l) {
    const size_t *p = g->pair + l * d;
    const double *cs = g->cs + l * d;
    for (t = 0; t < d / 2; ++t) {
      double a = v[p[2 * t]], b = v[p[2 * t + 1]];
      v[p[2 * t]] = cs[2 * t] * a - cs[2 * t + 1] * b;
      v[p[2 * t + 1]] = cs[2 * t + 1] * a + cs[2 * t] * b;
    }
  }
}

/* Entropy (nats) and top-1 probability of softmax(s * z). */
static double lmhead_entropy(const float *z, size_t n, double s, double *p1) {
  double m = -HUGE_VAL, sum = 0, ez = 0;
  size_t i;
  for (i = 0; i < n; ++i)
    if (s * z[i] > m) m = s * z[i];
  for (i = 0; i < n; ++i) {
    double t = s * z[i] - m, e = exp(t);
    sum += e;
    ez += e * t;
  }
  if (p1) *p1 = 1.0 / sum;
  return log(sum) - ez / sum;
}

/* Row i of A: own part nu_i Q (s .* g), cone part kappa_i u0, the massive
   columns' offset. */
static void lmhead__rows(lmhead__gen *g, size_t n, size_t d, const double *s,
                         const double *u0, const double *lf,
                         const size_t *massive, double *v, float *A) {
  size_t i, j, c;
  for (i = 0; i < n; ++i) {
    double nu = 1.0 + LMHEAD_NU1 * lf[i], kap = LMHEAD_KAPPA0 + LMHEAD_KAPPA1 * lf[i];
    if (nu < 0.5) nu = 0.5;
    for (j = 0; j < d; ++j) v[j] = s[j] * lmhead__gauss(g);
    lmhead__rot_apply(g, v);
    for (j = 0; j < d; ++j) v[j] = nu * v[j] + kap * u0[j];
    for (c = 0; c < LMHEAD_MASSIVE; ++c)
      v[massive[c]] = LMHEAD_MASSIVE_OFF / sqrt((double)d) + 0.3 * v[massive[c]];
    for (j = 0; j < d; ++j) A[i * d + j] = (float)v[j];
  }
}

/* One query into xq (d floats): its direction, the massive coordinates,
   then the scale that meets a sampled entropy target. z: n floats of
   scratch; x, v: d doubles. Returns its entropy, *p1 its top-1 p. */
static double lmhead__query(lmhead__gen *g, size_t n, size_t d, const float *A,
                            const double *s, const double *u0,
                            const double *cum, const size_t *rank_of,
                            const size_t *massive, const double *msign,
                            double *x, double *v, float *z, float *xq,
                            double *p1) {
  double w[3], nn = 0, rms = 0, lo = -12, hi = 12, ln;
  const double target = LMHEAD_HMAX * lmhead__beta(g, 1.2, 1.9);
  size_t t, r, j, top[1];
  float prob[1], sc;
  for (j = 0; j < d; ++j) x[j] = 0;
  w[0] = 1.0;
  w[1] = 0.7 * lmhead__unif(g);
  w[2] = 0.5 * lmhead__unif(g);
  for (t = 0; t < 3; ++t) { /* the target token and two alternates */
    double u = lmhead__unif(g), an = 0;
    size_t lo_r = 0, hi_r = n - 1;
    while (lo_r < hi_r) { /* first rank with cum >= u */
      size_t mid = (lo_r + hi_r) / 2;
      if (cum[mid] >= u) hi_r = mid; else lo_r = mid + 1;
    }
    r = rank_of[lo_r];
    for (j = 0; j < d; ++j) an += (double)A[r * d + j] * A[r * d + j];
    an = sqrt(an);
    for (j = 0; j < d; ++j) x[j] += w[t] * A[r * d + j] / an;
  }
  {
    double rw = 0.5 + lmhead__unif(g), vn = 0;
    for (j = 0; j < d; ++j) v[j] = s[j] * lmhead__gauss(g);
    lmhead__rot_apply(g, v);
    for (j = 0; j < d; ++j) vn += v[j] * v[j];
    for (j = 0; j < d; ++j) x[j] += rw * v[j] / sqrt(vn);
  }
  for (j = 0; j < d; ++j) x[j] += LMHEAD_ZETA * u0[j];
  for (j = 0; j < d; ++j) nn += x[j] * x[j];
  for (j = 0; j < d; ++j) x[j] /= sqrt(nn);
  for (j = 0; j < d; ++j) rms += x[j] * x[j];
  rms = sqrt(rms / (double)d);
  for (t = 0; t < LMHEAD_MASSIVE; ++t)
    x[massive[t]] = msign[t] * LMHEAD_MASSIVE_MAG * rms;
  for (j = 0; j < d; ++j) xq[j] = (float)x[j];
  (void)adasm_gemv_softmax_topk(NULL, A, n, d, d, xq, 1.0f, 1, top, prob, &ln, z);
  for (t = 0; t < 60; ++t) { /* bisection on log(scale) */
    double mid = 0.5 * (lo + hi);
    if (lmhead_entropy(z, n, exp(mid), NULL) > target) lo = mid; else hi = mid;
  }
  sc = (float)exp(0.5 * (lo + hi));
  for (j = 0; j < d; ++j) xq[j] *= sc;
  return lmhead_entropy(z, n, (double)sc, p1);
}

/* A (n x d, row-major) and X (q x d) for a seed; n, d >= LMHEAD_MIN_DIM.
   Returns 0, or -1 when out of memory (A and X then hold garbage). */
static int lmhead_generate(size_t n, size_t d, size_t q, uint64_t seed,
                           float *A, float *X, lmhead_info *info) {
  lmhead__gen g;
  size_t i, j, c, *perm = NULL, *rank_of = NULL;
  double *s = NULL, *u0 = NULL, *lf = NULL, *cum = NULL, *v = NULL, *x = NULL;
  double msign[LMHEAD_MASSIVE], lfm = 0, lfs = 0, hsum = 0, p1sum = 0;
  float *z = NULL;
  int rc = -1;
  g.pair = NULL;
  g.cs = NULL;
  if (n < LMHEAD_MIN_DIM || d < LMHEAD_MIN_DIM) return -1;
  adasm_pcg32_seed(&g.rng, seed, 0x11a7eadull);
  perm = (size_t *)malloc(n * sizeof(size_t));
  rank_of = (size_t *)malloc(n * sizeof(size_t));
  lf = (double *)malloc(n * sizeof(double));
  cum = (double *)malloc(n * sizeof(double));
  s = (double *)malloc(d * sizeof(double));
  u0 = (double *)malloc(d * sizeof(double));
  v = (double *)malloc(d * sizeof(double));
  x = (double *)malloc(d * sizeof(double));
  z = (float *)malloc(n * sizeof(float));
  if (!perm || !rank_of || !lf || !cum || !s || !u0 || !v || !x || !z) goto done;

  /* frequencies: rank r -> (r + 2.7)^-1.07; row i has rank perm[i] */
  lmhead__shuffle(&g, perm, n);
  for (i = 0; i < n; ++i) rank_of[perm[i]] = i; /* rank r -> row */
  {
    double tot = 0;
    for (c = 0; c < n; ++c) {
      tot += pow((double)c + 2.7, -1.07);
      cum[c] = tot;
    }
    for (c = 0; c < n; ++c) cum[c] /= tot;
    for (i = 0; i < n; ++i) lf[i] = -1.07 * log((double)perm[i] + 2.7);
    for (i = 0; i < n; ++i) lfm += lf[i];
    lfm /= (double)n;
    for (i = 0; i < n; ++i) lfs += (lf[i] - lfm) * (lf[i] - lfm);
    lfs = sqrt(lfs / (double)n);
    for (i = 0; i < n; ++i) lf[i] = (lf[i] - lfm) / lfs;
  }

  /* spectrum, rotation, shared direction, massive coordinates */
  {
    double ss = 0;
    for (j = 0; j < d; ++j) ss += pow((double)j + 1.0, -2.0 * LMHEAD_ALPHA);
    for (j = 0; j < d; ++j) s[j] = pow((double)j + 1.0, -LMHEAD_ALPHA) / sqrt(ss);
  }
  if (!lmhead__rot_init(&g, d)) goto done;
  {
    double nn = 0;
    for (j = 0; j < d; ++j) {
      u0[j] = lmhead__gauss(&g);
      nn += u0[j] * u0[j];
    }
    for (j = 0; j < d; ++j) u0[j] /= sqrt(nn);
  }
  for (c = 0; c < LMHEAD_MASSIVE; ++c) {
    size_t t;
    do { /* distinct coordinates */
      info->massive[c] = (size_t)adasm_pcg32_bounded64(&g.rng, d);
      for (t = 0; t < c && info->massive[t] != info->massive[c]; ++t) {}
    } while (t < c);
    msign[c] = lmhead__unif(&g) < 0.5 ? -1.0 : 1.0;
  }

  lmhead__rows(&g, n, d, s, u0, lf, info->massive, v, A);

  info->h_min = HUGE_VAL;
  info->h_max = 0;
  info->h_lt1 = info->h_gt5 = info->p1_90 = 0;
  for (c = 0; c < q; ++c) {
    double p1;
    const double H = lmhead__query(&g, n, d, A, s, u0, cum, rank_of, info->massive,
                                   msign, x, v, z, X + c * d, &p1);
    hsum += H;
    if (H < info->h_min) info->h_min = H;
    if (H > info->h_max) info->h_max = H;
    p1sum += p1;
    info->p1_90 += p1 > 0.9;
    info->h_lt1 += H < 1.0;
    info->h_gt5 += H > 5.0;
  }
  info->h_mean = q ? hsum / (double)q : 0.0;
  info->p1_mean = q ? p1sum / (double)q : 0.0;
  rc = 0;
done:
  free(g.pair);
  free(g.cs);
  free(perm);
  free(rank_of);
  free(lf);
  free(cum);
  free(s);
  free(u0);
  free(v);
  free(x);
  free(z);
  return rc;
}

#endif /* LMHEAD_H */
