/* llmhead.c - writes a seeded LM-output-layer-like head and its queries for
 * the benchmarks: the generator of examples/lmhead.h (its comment says what
 * the heads reproduce of trained language models, and how), run for one
 * shape and seed.
 *
 * Writes DIR/A.npy (n x d '<f4', row-major), DIR/X.npy (q x d '<f4') and
 * DIR/stats.txt (what it prints: entropy and top-1 statistics of the
 * queries, spectrum and anisotropy of the head). Deterministic for a seed.
 *
 * usage: llmhead DIR N D Q SEED
 * C99, libc + libm, and adasoftmax.h. Assumes a little-endian host.
 */
#define ADASOFTMAX_IMPLEMENTATION
#include "adasoftmax.h"
#include "../../examples/lmhead.h"

#include <math.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static void die(const char *msg, const char *arg) {
  fprintf(stderr, "llmhead: %s%s%s\n", msg, arg ? ": " : "", arg ? arg : "");
  exit(1);
}
static void *xmalloc(size_t n) {
  void *p = malloc(n ? n : 1);
  if (!p) die("out of memory", NULL);
  return p;
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

static int cmp_desc(const void *a, const void *b) {
  double x = *(const double *)a, y = *(const double *)b;
  return (x < y) - (x > y);
}

int main(int argc, char **argv) {
  const char *dir;
  size_t n, d, q, i, j, c;
  uint64_t seed;
  float *A, *X;
  lmhead_info info;
  adasm_pcg32 rng;
  char path[4200];
  FILE *st;
  double cos_sum = 0;

  if (argc != 6) die("usage: llmhead DIR N D Q SEED", NULL);
  dir = argv[1];
  n = (size_t)strtoull(argv[2], NULL, 10);
  d = (size_t)strtoull(argv[3], NULL, 10);
  q = (size_t)strtoull(argv[4], NULL, 10);
  seed = (uint64_t)strtoull(argv[5], NULL, 10);
  if (n < LMHEAD_MIN_DIM || d < LMHEAD_MIN_DIM || q < 1 || d > 65536)
    die("bad N, D or Q", NULL);
  A = (float *)xmalloc(n * d * sizeof(float));
  X = (float *)xmalloc(q * d * sizeof(float));
  if (lmhead_generate(n, d, q, seed, A, X, &info) != 0) die("out of memory", NULL);

  /* head statistics: mean cosine between random row pairs */
  adasm_pcg32_seed(&rng, seed, 0xc05ull);
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
              info.h_mean, info.h_min, info.h_max,
              100.0 * (double)info.h_lt1 / (double)q,
              100.0 * (double)info.h_gt5 / (double)q);
      fprintf(outs[o], "top-1 probability: mean %.3f; above 0.9: %.1f%%\n",
              info.p1_mean, 100.0 * (double)info.p1_90 / (double)q);
      fprintf(outs[o], "mean cosine of random row pairs: %.3f\n",
              cos_sum / 2000.0);
      fprintf(outs[o], "row norms: max %.3f, median %.3f, min %.3f\n",
              norms[0], norms[n / 2], norms[n - 1]);
      fprintf(outs[o], "spectrum s_k ~ (k+1)^-%.2f in a rotated basis; "
                       "massive coordinates:", LMHEAD_ALPHA);
      for (c = 0; c < LMHEAD_MASSIVE; ++c) fprintf(outs[o], " %zu", info.massive[c]);
      fprintf(outs[o], " (x%.0f the query RMS)\n", LMHEAD_MASSIVE_MAG);
    }
    free(norms);
  }
  fclose(st);
  free(A);
  free(X);
  return 0;
}
