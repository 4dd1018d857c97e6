/* llmhead.c - seeded LM-output-layer-like heads and queries for the benchmarks.
 *
 * No LLM weights can be downloaded here, so this program builds heads with
 * the statistics that matter to softmax(A x) in trained language models:
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
 * Writes DIR/A.npy (n x d '<f4', row-major), DIR/X.npy (q x d '<f4') and
 * DIR/stats.txt (what it prints: entropy and top-1 statistics of the
 * queries, spectrum and anisotropy of the head). Deterministic for a seed.
 *
 * usage: llmhead DIR N D Q SEED
 * C99, libc + libm, and adasoftmax.h (its PCG32 and its exact GEMV). Assumes a
 * little-endian host.
 */
#define ADASOFTMAX_IMPLEMENTATION
#include "adasoftmax.h"

#include <math.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define ALPHA 0.5      /* spectrum exponent: s_k ~ (k+1)^-ALPHA */
#define KAPPA0 0.6     /* mean coefficient of every row along u0 */
#define KAPPA1 0.15    /* ... and its growth per sd of log-frequency */
#define NU1 0.15       /* row-norm growth per sd of log-frequency */
#define ZETA 0.35      /* weight of u0 in the query direction */
#define MASSIVE 3      /* massive-activation coordinates */
#define MASSIVE_MAG 25.0
#define MASSIVE_OFF 2.0 /* shared column offset there, in units of 1/sqrt(d) */
#define HMAX 7.0       /* entropy targets: HMAX * Beta(1.2, 1.9) nats */

static void die(const char *msg, const char *arg) {
  fprintf(stderr, "llmhead: %s%s%s\n", msg, arg ? ": " : "", arg ? arg : "");
  exit(1);
}
static void *xmalloc(size_t n) {
  void *p = malloc(n ? n : 1);
  if (!p) die("out of memory", NULL);
  return p;
}

/* ---- random numbers ----------------------------------------------------- */
static adasm_pcg32 rng;
static double unif(void) { return adasm_pcg32_uniform_open(&rng); }
static double gauss(void) {
  double u = unif(), v = unif();
  return sqrt(-2.0 * log(u)) * cos(6.283185307179586 * v);
}
/* Gamma(a, 1) by Marsaglia-Tsang (a >= 1). */
static double gamma_draw(double a) {
  double dd = a - 1.0 / 3.0, c = 1.0 / sqrt(9.0 * dd);
  for (;;) {
    double z = gauss(), v = 1.0 + c * z, u;
    if (v <= 0) continue;
    v = v * v * v;
    u = unif();
    if (log(u) < 0.5 * z * z + dd - dd * v + dd * log(v)) return dd * v;
  }
}
static double beta_draw(double a, double b) {
  double x = gamma_draw(a), y = gamma_draw(b);
  return x / (x + y);
}
static void shuffle(size_t *p, size_t n) {
  size_t i;
  for (i = 0; i < n; ++i) p[i] = i;
  for (i = n; i > 1; --i) {
    size_t j = (size_t)adasm_pcg32_bounded64(&rng, i), t = p[i - 1];
    p[i - 1] = p[j];
    p[j] = t;
  }
}

/* ---- the rotation Q: layers of random Givens rotations ------------------ */
typedef struct {
  size_t d, layers;
  size_t *pair; /* [layers][d]: a permutation; pairs (p[2t], p[2t+1]) */
  double *cs;   /* [layers][d/2][2]: cos, sin */
} rotation;

static void rot_init(rotation *q, size_t d) {
  size_t l, t, lg = 0;
  while (((size_t)1 << lg) < d) ++lg;
  q->d = d;
  q->layers = 2 * lg + 4;
  q->pair = (size_t *)xmalloc(q->layers * d * sizeof(size_t));
  q->cs = (double *)xmalloc(q->layers * d * sizeof(double));
  for (l = 0; l < q->layers; ++l) {
    shuffle(q->pair + l * d, d);
    for (t = 0; t < d / 2; ++t) {
      double a = 6.283185307179586 * unif();
      q->cs[l * d + 2 * t] = cos(a);
      q->cs[l * d + 2 * t + 1] = sin(a);
    }
  }
}
static void rot_apply(const rotation *q, double *v) {
  size_t l, t, d = q->d;
  for (l = 0; l < q->layers; ++l) {
    const size_t *p = q->pair + l * d;
    const double *cs = q->cs + l * d;
    for (t = 0; t < d / 2; ++t) {
      double a = v[p[2 * t]], b = v[p[2 * t + 1]];
      v[p[2 * t]] = cs[2 * t] * a - cs[2 * t + 1] * b;
      v[p[2 * t + 1]] = cs[2 * t + 1] * a + cs[2 * t] * b;
    }
  }
}

static void write_npy(const char *path, size_t rows, size_t cols,
                      const float *data) {
  char hdr[256], tmp[4200];
  int len = snprintf(hdr, sizeof hdr,
                     "{'descr': '<f4', 'fortran_order': False, 'shape': "
                     "(%zu, %zu), }",
                     rows, cols);
  size_t total, pad, hlen, i;
  unsigned char pre[10] = {0x93, 'N', 'U', 'M', 'P', 'Y', 1, 0, 0, 0};
  FILE *f;
  if (len < 0 || len > 200) die("npy header too long", path);
  total = 10 + (size_t)len + 1;
  pad = (64 - total % 64) % 64;
  hlen = (size_t)len + pad + 1;
  pre[8] = (unsigned char)(hlen & 0xff);
  pre[9] = (unsigned char)(hlen >> 8);
  snprintf(tmp, sizeof tmp, "%s.tmp", path);
  f = fopen(tmp, "wb");
  if (!f) die("cannot write", tmp);
  fwrite(pre, 1, sizeof pre, f);
  fwrite(hdr, 1, (size_t)len, f);
  for (i = 0; i < pad; ++i) putc(' ', f);
  putc('\n', f);
  fwrite(data, sizeof(float), rows * cols, f);
  if (ferror(f) || fclose(f) != 0) die("write error", tmp);
  if (rename(tmp, path) != 0) die("cannot rename to", path);
}

/* Entropy (nats) and top-1 probability of softmax(s * z). */
static double entropy(const float *z, size_t n, double s, double *p1) {
  double m = -INFINITY, sum = 0, ez = 0;
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

static int cmp_desc(const void *a, const void *b) {
  double x = *(const double *)a, y = *(const double *)b;
  return (x < y) - (x > y);
}

int main(int argc, char **argv) {
  const char *dir;
  size_t n, d, q, i, j, c, *perm, *rank_of, massive[MASSIVE];
  uint64_t seed;
  double *s, *u0, *lf, *cum, *v, *row, msign[MASSIVE], lfm = 0, lfs = 0;
  float *A, *X, *z;
  rotation rot;
  char path[4200];
  FILE *st;
  double hsum = 0, hmin = 1e9, hmax = 0, p1sum = 0, cos_sum = 0;
  size_t p1_90 = 0, h_lt1 = 0, h_gt5 = 0;

  if (argc != 6) die("usage: llmhead DIR N D Q SEED", NULL);
  dir = argv[1];
  n = (size_t)strtoull(argv[2], NULL, 10);
  d = (size_t)strtoull(argv[3], NULL, 10);
  q = (size_t)strtoull(argv[4], NULL, 10);
  seed = (uint64_t)strtoull(argv[5], NULL, 10);
  if (n < 16 || d < 16 || q < 1 || d > 65536) die("bad N, D or Q", NULL);
  adasm_pcg32_seed(&rng, seed, 0x11a7eadull);

  /* frequencies: rank r -> (r + 2.7)^-1.07; row i has rank perm[i] */
  perm = (size_t *)xmalloc(n * sizeof(size_t));
  rank_of = (size_t *)xmalloc(n * sizeof(size_t));
  shuffle(perm, n);
  for (i = 0; i < n; ++i) rank_of[perm[i]] = i; /* rank r -> row */
  lf = (double *)xmalloc(n * sizeof(double));
  cum = (double *)xmalloc(n * sizeof(double));
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
  s = (double *)xmalloc(d * sizeof(double));
  {
    double ss = 0;
    for (j = 0; j < d; ++j) ss += pow((double)j + 1.0, -2.0 * ALPHA);
    for (j = 0; j < d; ++j) s[j] = pow((double)j + 1.0, -ALPHA) / sqrt(ss);
  }
  rot_init(&rot, d);
  u0 = (double *)xmalloc(d * sizeof(double));
  {
    double nn = 0;
    for (j = 0; j < d; ++j) {
      u0[j] = gauss();
      nn += u0[j] * u0[j];
    }
    for (j = 0; j < d; ++j) u0[j] /= sqrt(nn);
  }
  for (c = 0; c < MASSIVE; ++c) {
    size_t t;
  again:
    massive[c] = (size_t)adasm_pcg32_bounded64(&rng, d);
    for (t = 0; t < c; ++t)
      if (massive[t] == massive[c]) goto again;
    msign[c] = unif() < 0.5 ? -1.0 : 1.0;
  }

  /* rows */
  A = (float *)xmalloc(n * d * sizeof(float));
  v = (double *)xmalloc(d * sizeof(double));
  row = (double *)xmalloc(d * sizeof(double));
  for (i = 0; i < n; ++i) {
    double nu = 1.0 + NU1 * lf[i], kap = KAPPA0 + KAPPA1 * lf[i];
    if (nu < 0.5) nu = 0.5;
    for (j = 0; j < d; ++j) v[j] = s[j] * gauss();
    rot_apply(&rot, v);
    for (j = 0; j < d; ++j) row[j] = nu * v[j] + kap * u0[j];
    for (c = 0; c < MASSIVE; ++c)
      row[massive[c]] = MASSIVE_OFF / sqrt((double)d) + 0.3 * row[massive[c]];
    for (j = 0; j < d; ++j) A[i * d + j] = (float)row[j];
  }

  /* queries */
  X = (float *)xmalloc(q * d * sizeof(float));
  z = (float *)xmalloc(n * sizeof(float));
  {
    size_t top[1];
    float prob[1];
    double ln;
    for (c = 0; c < q; ++c) {
      double *x = row, w[3], nn = 0, rms = 0;
      double target = HMAX * beta_draw(1.2, 1.9), lo = -12, hi = 12, p1, H;
      size_t t, r;
      float *xq = X + c * d;
      for (j = 0; j < d; ++j) x[j] = 0;
      w[0] = 1.0;
      w[1] = 0.7 * unif();
      w[2] = 0.5 * unif();
      for (t = 0; t < 3; ++t) {
        double u = unif(), an = 0;
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
        double rw = 0.5 + unif(), vn = 0;
        for (j = 0; j < d; ++j) v[j] = s[j] * gauss();
        rot_apply(&rot, v);
        for (j = 0; j < d; ++j) vn += v[j] * v[j];
        for (j = 0; j < d; ++j) x[j] += rw * v[j] / sqrt(vn);
      }
      for (j = 0; j < d; ++j) x[j] += ZETA * u0[j];
      for (j = 0; j < d; ++j) nn += x[j] * x[j];
      for (j = 0; j < d; ++j) x[j] /= sqrt(nn);
      for (j = 0; j < d; ++j) rms += x[j] * x[j];
      rms = sqrt(rms / (double)d);
      for (t = 0; t < MASSIVE; ++t)
        x[massive[t]] = msign[t] * MASSIVE_MAG * rms;
      for (j = 0; j < d; ++j) xq[j] = (float)x[j];
      if (adasm_gemv_softmax_topk(NULL, A, n, d, d, xq, 1.0f, 1, top, prob,
                                  &ln, z) != ADASM_OK)
        die("gemv failed", NULL);
      /* bisection on log(scale): entropy falls as the scale grows */
      for (t = 0; t < 60; ++t) {
        double mid = 0.5 * (lo + hi);
        if (entropy(z, n, exp(mid), NULL) > target) lo = mid; else hi = mid;
      }
      {
        float sc = (float)exp(0.5 * (lo + hi));
        for (j = 0; j < d; ++j) xq[j] *= sc;
        H = entropy(z, n, (double)sc, &p1);
      }
      hsum += H;
      if (H < hmin) hmin = H;
      if (H > hmax) hmax = H;
      p1sum += p1;
      p1_90 += p1 > 0.9;
      h_lt1 += H < 1.0;
      h_gt5 += H > 5.0;
      if ((c + 1) % 200 == 0) fprintf(stderr, "llmhead: %zu/%zu queries\n", c + 1, q);
    }
  }

  /* head statistics: mean cosine between random row pairs, spectrum share */
  for (c = 0; c < 2000; ++c) {
    size_t a = (size_t)adasm_pcg32_bounded64(&rng, n);
    size_t b = (size_t)adasm_pcg32_bounded64(&rng, n);
    double ab = 0, aa = 0, bb = 0;
    for (j = 0; j < d; ++j) {
      ab += (double)A[a * d + j] * A[b * d + j];
      aa += (double)A[a * d + j] * A[a * d + j];
      bb += (double)A[b * d + j] * A[b * d + j];
    }
    cos_sum += ab / sqrt(aa * bb);
  }

  snprintf(path, sizeof path, "%s/A.npy", dir);
  write_npy(path, n, d, A);
  snprintf(path, sizeof path, "%s/X.npy", dir);
  write_npy(path, q, d, X);
  snprintf(path, sizeof path, "%s/stats.txt", dir);
  st = fopen(path, "w");
  if (!st) die("cannot write", path);
  {
    FILE *outs[2];
    int o;
    double *norms = (double *)xmalloc(n * sizeof(double));
    for (i = 0; i < n; ++i) {
      double a2 = 0;
      for (j = 0; j < d; ++j) a2 += (double)A[i * d + j] * A[i * d + j];
      norms[i] = sqrt(a2);
    }
    qsort(norms, n, sizeof(double), cmp_desc);
    outs[0] = stdout;
    outs[1] = st;
    for (o = 0; o < 2; ++o) {
      fprintf(outs[o], "head %zu x %zu, seed %llu, %zu queries\n", n, d,
              (unsigned long long)seed, q);
      fprintf(outs[o],
              "entropy (nats): mean %.2f, min %.3f, max %.2f; below 1: %.1f%%, "
              "above 5: %.1f%%\n",
              hsum / (double)q, hmin, hmax, 100.0 * (double)h_lt1 / (double)q,
              100.0 * (double)h_gt5 / (double)q);
      fprintf(outs[o], "top-1 probability: mean %.3f; above 0.9: %.1f%%\n",
              p1sum / (double)q, 100.0 * (double)p1_90 / (double)q);
      fprintf(outs[o], "mean cosine of random row pairs: %.3f\n",
              cos_sum / 2000.0);
      fprintf(outs[o], "row norms: max %.3f, median %.3f, min %.3f\n",
              norms[0], norms[n / 2], norms[n - 1]);
      fprintf(outs[o], "spectrum s_k ~ (k+1)^-%.2f in a rotated basis; "
                       "massive coordinates:", ALPHA);
      for (c = 0; c < MASSIVE; ++c) fprintf(outs[o], " %zu", massive[c]);
      fprintf(outs[o], " (x%.0f the query RMS)\n", MASSIVE_MAG);
    }
    free(norms);
  }
  fclose(st);
  return 0;
}
