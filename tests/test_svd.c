/* tests/test_svd.c - tests of SVD-softmax (adasm_svd_*) in adasoftmax.h.

   Build (from the repository root; meson builds it as test 'svd'):
     gcc -std=c99 -O2 -Wall -Wextra -Wpedantic -Wshadow -Wconversion -I. \
         tests/test_svd.c -lm -o test_svd
   Run:
     ./test_svd              all tests (~3 s)
     ./test_svd --quick      smaller sizes (sanitizers, qemu)
     ./test_svd --perf-build N D        preparation time of a random N x D
                                        matrix, by stage
     ./test_svd --perf-query N D [W:N ...]  query time vs the exact path and
                                        top-1 agreement, random Gaussian head
     ./test_svd --perf-npy A.npy X.npy [W:N ...]  the same on a real head

   What is checked: the factorisation (||A - B V^T|| / ||A||, V^T V = I,
   singular values descending and equal to those of A = U diag(s) V^T built
   from random orthogonal factors), the query against the exact path where
   it must be exact (W = d, or N = n) and against a double-precision
   reference of the method otherwise, the defaults of window and top
   against their values spelled out, argument and data errors with their
   documented codes, failure of every allocation (ADASM_MALLOC is a
   counting, failing allocator here, test_util.h's, as in test_alloc.c), and
   every ISA the CPU has. Random data come from the library's PCG32. */
#if defined(__unix__) || defined(__APPLE__)
#define _POSIX_C_SOURCE 199309L /* clock_gettime */
#endif
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

/* ---- harness and the counting, failing allocator (test_util.h) ---------- */
/* main keeps the allocator armed: it counts every call. */
#define TEST_ALLOCATOR
#define TEST_MAX_LIVE 16
#include "test_util.h"

#define ADASM_MALLOC(sz, ctx) test_malloc((sz), (ctx))
#define ADASM_FREE(p, ctx) test_free((p), (ctx))

/* Stage clocks of the build (the library's ADASM_SVD_PROF hook): wall
   seconds, and process CPU seconds (the machines here are shared). */
static double g_stage[5], g_stage_cpu[5];
static double g_stage_t0, g_stage_c0;
static double now_sec(void);
static double cpu_sec(void);
#define ADASM_SVD_PROF(stage)                                                  \
  do {                                                                         \
    const double t1_ = now_sec(), c1_ = cpu_sec();                             \
    g_stage[stage] = t1_ - g_stage_t0;                                         \
    g_stage_cpu[stage] = c1_ - g_stage_c0;                                     \
    g_stage_t0 = t1_;                                                          \
    g_stage_c0 = c1_;                                                          \
  } while (0)

#define ADASOFTMAX_IMPLEMENTATION
#include "../adasoftmax.h"

#include <math.h>

static double now_sec(void) {
#if defined(CLOCK_MONOTONIC)
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return (double)ts.tv_sec + 1e-9 * (double)ts.tv_nsec;
#else
  return (double)clock() / (double)CLOCKS_PER_SEC;
#endif
}

static double cpu_sec(void) { return (double)clock() / (double)CLOCKS_PER_SEC; }

static void prof_start(void) {
  g_stage_t0 = now_sec();
  g_stage_c0 = cpu_sec();
}

/* max without fmax: aarch64 gcc 12 hits an internal compiler error when it
   vectorises fmax reductions in these loops */
static double dmax(double a, double b) { return b > a ? b : a; }

/* ---- random data ---------------------------------------------------------- */
static double gauss(adasm_pcg32 *r) {
  const double u1 = adasm_pcg32_uniform_open(r);
  const double u2 = adasm_pcg32_uniform_open(r);
  return sqrt(-2.0 * log(u1)) * cos(6.283185307179586 * u2);
}

static void fill_gauss(float *v, size_t count, double scale, adasm_pcg32 *r) {
  size_t i;
  for (i = 0; i < count; ++i) v[i] = (float)(scale * gauss(r));
}

/* Q (rows x cols, rows >= cols) with orthonormal columns: modified
   Gram-Schmidt, twice, on a Gaussian matrix (double). */
static void rand_orth(double *Q, size_t rows, size_t cols, adasm_pcg32 *r) {
  size_t i, j, c, pass;
  for (i = 0; i < rows * cols; ++i) Q[i] = gauss(r);
  for (c = 0; c < cols; ++c)
    for (pass = 0; pass < 2; ++pass) {
      double nrm = 0.0;
      for (j = 0; j < c; ++j) {
        double dot = 0.0;
        for (i = 0; i < rows; ++i) dot += Q[i * cols + j] * Q[i * cols + c];
        for (i = 0; i < rows; ++i) Q[i * cols + c] -= dot * Q[i * cols + j];
      }
      for (i = 0; i < rows; ++i) nrm += Q[i * cols + c] * Q[i * cols + c];
      nrm = sqrt(nrm);
      for (i = 0; i < rows; ++i) Q[i * cols + c] /= nrm;
    }
}

/* A = U diag(s) V^T (n x d, lda), s[i] = s0 * ratio^i for i < rank, else 0;
   U is n x rank, V is d x rank. */
static void make_known(float *A, size_t n, size_t d, size_t lda, size_t rank,
                       double s0, double ratio, double *s, adasm_pcg32 *r) {
  double *U = (double *)xmalloc(n * rank * sizeof(double));
  double *V = (double *)xmalloc(d * rank * sizeof(double));
  size_t i, j, t;
  rand_orth(U, n, rank, r);
  rand_orth(V, d, rank, r);
  for (t = 0; t < d; ++t) s[t] = t < rank ? s0 * pow(ratio, (double)t) : 0.0;
  for (i = 0; i < n; ++i)
    for (j = 0; j < d; ++j) {
      double acc = 0.0;
      for (t = 0; t < rank; ++t) acc += U[i * rank + t] * s[t] * V[j * rank + t];
      A[i * lda + j] = (float)acc;
    }
  free(U);
  free(V);
}

static float bat(const adasm_svd_model *m, size_t i, size_t j) {
  return m->B[((j / 16) * m->n + i) * 16 + j % 16];
}

/* ---- factorisation checks --------------------------------------------------- */
typedef struct fac_err {
  double recon;  /* ||A - B V^T||_F / ||A||_F */
  double orth;   /* max |V^T V - I| */
  double sig;    /* max |sigma_i - s_i| / s_0 (known construction) */
  double bnorm;  /* max | ||B[:, k]|| - sigma_k | / sigma_0 */
  int desc;      /* sigma descending and >= 0 */
  int pad_zero;  /* padding columns of B are 0 */
} fac_err;

static fac_err check_factor(const adasm_svd_model *m, const float *A,
                            size_t lda, const double *s) {
  const size_t n = m->n, d = m->d;
  fac_err f;
  double num = 0.0, den = 0.0, s0;
  double *row = (double *)xmalloc(d * sizeof(double));
  size_t i, j, k;
  memset(&f, 0, sizeof f);
  for (i = 0; i < n; ++i) {
    for (j = 0; j < d; ++j) row[j] = 0.0;
    for (k = 0; k < d; ++k) {
      const double b = (double)bat(m, i, k);
      const float *v = m->vt + k * d;
      for (j = 0; j < d; ++j) row[j] += b * (double)v[j];
    }
    for (j = 0; j < d; ++j) {
      const double a = (double)A[i * lda + j];
      num += (a - row[j]) * (a - row[j]);
      den += a * a;
    }
  }
  f.recon = den > 0.0 ? sqrt(num / den) : sqrt(num);
  for (j = 0; j < d; ++j)
    for (k = j; k < d; ++k) {
      double dot = 0.0;
      for (i = 0; i < d; ++i) dot += (double)m->vt[j * d + i] * (double)m->vt[k * d + i];
      dot -= j == k ? 1.0 : 0.0;
      if (fabs(dot) > f.orth) f.orth = fabs(dot);
    }
  f.desc = 1;
  for (j = 0; j < d; ++j) {
    if (!(m->sigma[j] >= 0.0)) f.desc = 0;
    if (j > 0 && m->sigma[j] > m->sigma[j - 1]) f.desc = 0;
  }
  s0 = m->sigma[0] > 0.0 ? m->sigma[0] : 1.0;
  if (s) {
    for (j = 0; j < d; ++j) {
      const double e = fabs(m->sigma[j] - s[j]) / (s[0] > 0.0 ? s[0] : 1.0);
      if (e > f.sig) f.sig = e;
    }
  }
  for (k = 0; k < d; ++k) {
    double nb = 0.0;
    for (i = 0; i < n; ++i) nb += (double)bat(m, i, k) * (double)bat(m, i, k);
    nb = fabs(sqrt(nb) - m->sigma[k]) / s0;
    if (nb > f.bnorm) f.bnorm = nb;
  }
  f.pad_zero = 1;
  for (i = 0; i < n; ++i)
    for (j = d; j < m->panels * 16; ++j)
      if (m->B[((j / 16) * n + i) * 16 + j % 16] != 0.0f) f.pad_zero = 0;
  free(row);
  return f;
}

static const adasm_isa g_isas[] = {ADASM_ISA_SCALAR, ADASM_ISA_AVX2,
                                   ADASM_ISA_AVX512, ADASM_ISA_NEON};
#define N_ISAS (sizeof g_isas / sizeof g_isas[0])

typedef struct shape {
  size_t n, d, lda, rank; /* rank 0: Gaussian entries */
  double ratio;
} shape;

static void test_factor(const shape *sh, int quick) {
  const size_t n = sh->n, d = sh->d, lda = sh->lda;
  float *A = (float *)xmalloc(n * lda * sizeof(float));
  double *s = (double *)xmalloc(d * sizeof(double));
  adasm_pcg32 r;
  size_t i, j, t;
  adasm_pcg32_seed(&r, 11u + n * 31u + d, 3u);
  if (sh->rank) {
    make_known(A, n, d, lda, sh->rank, 10.0, sh->ratio, s, &r);
  } else {
    fill_gauss(A, n * lda, 1.0, &r);
  }
  for (i = 0; i < n; ++i) /* padding past d is never read */
    for (j = d; j < lda; ++j) A[i * lda + j] = adasm__nanf();
  for (t = 0; t < N_ISAS; ++t) {
    const adasm_kernels *k;
    adasm_svd_model m;
    adasm_result res;
    fac_err f;
    if (adasm_kernels_get(g_isas[t], &k) != ADASM_OK) continue;
    if (quick && g_isas[t] != adasm_isa_best() && g_isas[t] != ADASM_ISA_SCALAR)
      continue;
    res = adasm_svd_build(&m, k, A, n, d, lda, NULL);
    CHECK(res == ADASM_OK, "build %lux%lu %s: %s", (unsigned long)n,
          (unsigned long)d, adasm_isa_name(g_isas[t]), adasm_result_string(res));
    if (res != ADASM_OK) continue;
    CHECK(m.n == n && m.d == d && m.panels == (d + 15) / 16, "model fields");
    f = check_factor(&m, A, lda, sh->rank ? s : NULL);
    /* bounds: float B and V^T (2^-24 each), summed over d terms */
    CHECK(f.recon <= 2e-6 * sqrt((double)d) + 1e-6,
          "%lux%lu %s: ||A - B V^T|| / ||A|| = %.3g", (unsigned long)n,
          (unsigned long)d, adasm_isa_name(g_isas[t]), f.recon);
    CHECK(f.orth <= 1e-6 * sqrt((double)d) + 1e-6,
          "%lux%lu %s: max |V^T V - I| = %.3g", (unsigned long)n,
          (unsigned long)d, adasm_isa_name(g_isas[t]), f.orth);
    CHECK(f.desc, "%lux%lu: singular values not descending / negative",
          (unsigned long)n, (unsigned long)d);
    CHECK(f.bnorm <= 1e-5, "%lux%lu: column norms of B vs sigma: %.3g",
          (unsigned long)n, (unsigned long)d, f.bnorm);
    CHECK(f.pad_zero, "%lux%lu: padding columns of B not zero",
          (unsigned long)n, (unsigned long)d);
    if (sh->rank)
      CHECK(f.sig <= 1e-5, "%lux%lu rank %lu %s: singular values off by %.3g s0",
            (unsigned long)n, (unsigned long)d, (unsigned long)sh->rank,
            adasm_isa_name(g_isas[t]), f.sig);
    printf("  build %4lux%-4lu lda %-4lu %-7s %s recon %.1e orth %.1e sig %.1e\n",
           (unsigned long)n, (unsigned long)d, (unsigned long)lda,
           adasm_isa_name(g_isas[t]), sh->rank ? "known" : "gauss", f.recon,
           f.orth, sh->rank ? f.sig : 0.0);
    adasm_svd_free(&m);
    CHECK(m.block == NULL && m.B == NULL, "free did not clear the model");
    adasm_svd_free(&m); /* second free: no-op */
  }
  CHECK(ta.live == 0 && ta.bad == 0, "allocator: %ld live, %ld bad", ta.live, ta.bad);
  free(A);
  free(s);
}

/* ---- query checks ---------------------------------------------------------------- */
/* Reference of the method in double from the model: previews, selection of
   the N best previews, refinement, mixed normalizer, top k. Returns the gap
   between the N-th and (N+1)-th previews and between the k-th and (k+1)-th
   refined logits (relative to the logit scale): when tiny, float and double
   may legitimately choose differently. */
typedef struct ref_out {
  size_t idx[64];
  double prob[64];
  double log_norm;
  double gap;
} ref_out;

static const double *g_sort_key; /* for cmp_desc */
static int cmp_desc(const void *a, const void *b) { /* key desc, index asc */
  const size_t i = *(const size_t *)a, j = *(const size_t *)b;
  if (g_sort_key[i] != g_sort_key[j]) return g_sort_key[i] > g_sort_key[j] ? -1 : 1;
  return i < j ? -1 : i > j;
}

static void ref_query(const adasm_svd_model *m, const float *x, float beta,
                      size_t W, size_t N, size_t k, ref_out *o) {
  const size_t n = m->n, d = m->d;
  double *xt = (double *)xmalloc(d * sizeof(double));
  double *pre = (double *)xmalloc(n * sizeof(double));
  double *z = (double *)xmalloc(n * sizeof(double));
  unsigned char *sel = (unsigned char *)xmalloc(n);
  double mx = -HUGE_VAL, sum = 0.0, scale = 0.0, gap = HUGE_VAL;
  size_t i, j, t, last = 0;
  for (j = 0; j < d; ++j) {
    double acc = 0.0;
    for (i = 0; i < d; ++i) acc += (double)m->vt[j * d + i] * (double)x[i];
    xt[j] = (double)beta * acc;
  }
  for (i = 0; i < n; ++i) {
    double a = 0.0, b = 0.0;
    for (j = 0; j < d; ++j) {
      const double v = (double)bat(m, i, j) * xt[j];
      if (j < W) a += v;
      b += v;
    }
    pre[i] = a;
    z[i] = b;
    sel[i] = 0;
    if (fabs(b) > scale) scale = fabs(b);
  }
  { /* N best previews (ties: low index) */
    size_t *ord = (size_t *)xmalloc(n * sizeof(size_t));
    for (i = 0; i < n; ++i) ord[i] = i;
    g_sort_key = pre;
    qsort(ord, n, sizeof *ord, cmp_desc);
    for (t = 0; t < N; ++t) sel[ord[t]] = 1;
    last = ord[N - 1];
    if (N < n) gap = pre[last] - pre[ord[N]];
    free(ord);
  }
  for (i = 0; i < n; ++i)
    if (!sel[i]) z[i] = pre[i];
  for (i = 0; i < n; ++i)
    if (z[i] > mx) mx = z[i];
  for (i = 0; i < n; ++i) sum += exp(z[i] - mx);
  o->log_norm = mx + log(sum);
  for (t = 0; t < k + 1 && t < N; ++t) {
    size_t best = n;
    for (i = 0; i < n; ++i)
      if (sel[i] == 1 && (best == n || z[i] > z[best])) best = i;
    if (t == k) {
      const double g = z[o->idx[k - 1]] - z[best];
      if (g < gap) gap = g;
      break;
    }
    sel[best] = 2;
    o->idx[t] = best;
    o->prob[t] = exp(z[best] - o->log_norm);
  }
  o->gap = gap / (scale > 1.0 ? scale : 1.0);
  free(xt);
  free(pre);
  free(z);
  free(sel);
}

/* A query's params (the rest default), and a result over caller arrays. */
static adasm_svd_params qparams(const adasm_kernels *k, float beta, size_t W,
                                size_t N, size_t kk) {
  adasm_svd_params p = adasm_svd_params_default();
  p.kern = k;
  p.beta = beta;
  p.window = W;
  p.top = N;
  p.k = kk;
  return p;
}

static adasm_svd_result qresult(size_t *idx, float *prob) {
  adasm_svd_result o;
  o.idx = idx;
  o.prob = prob;
  o.log_norm = 0.0;
  o.madds = 0;
  return o;
}

static void test_query(const shape *sh, int quick) {
  const size_t n = sh->n, d = sh->d, lda = sh->lda;
  float *A = (float *)xmalloc(n * lda * sizeof(float));
  float *X = (float *)xmalloc(4 * d * sizeof(float));
  double *s = (double *)xmalloc(d * sizeof(double));
  adasm_svd_model ref_m;
  adasm_pcg32 r;
  size_t t, q, c;
  int have_ref = 0, skipped = 0;
  adasm_pcg32_seed(&r, 77u + n + 1000u * d, 5u);
  if (sh->rank) make_known(A, n, d, lda, sh->rank, 8.0, sh->ratio, s, &r);
  else fill_gauss(A, n * lda, 0.3, &r);
  fill_gauss(X, 4 * d, 1.0, &r);
  for (t = 0; t < N_ISAS; ++t) {
    const adasm_kernels *k;
    adasm_svd_model m;
    adasm_svd_params p;
    adasm_result res;
    void *work;
    size_t bytes = 0;
    if (adasm_kernels_get(g_isas[t], &k) != ADASM_OK) continue;
    if (quick && g_isas[t] != adasm_isa_best() && g_isas[t] != ADASM_ISA_SCALAR)
      continue;
    res = adasm_svd_build(&m, k, A, n, d, lda, NULL);
    CHECK(res == ADASM_OK, "build: %s", adasm_result_string(res));
    if (res != ADASM_OK) continue;
    p = qparams(k, 1.0f, 1, n, 1); /* the largest top: enough for every case */
    res = adasm_svd_workspace_size(&m, &p, &bytes);
    CHECK(res == ADASM_OK, "workspace size: %s", adasm_result_string(res));
    work = xmalloc(bytes + 1);
    for (q = 0; q < 4; ++q) {
      const float *x = X + q * d;
      const float beta = 0.5f + 0.5f * (float)q;
      /* (W, N, k) cases: exact ones first */
      const size_t cases[6][3] = {
          {d, 1 + (q * 7) % n, 1},
          {d, n, n < 5 ? n : 5},
          {1, n, n < 3 ? n : 3},
          {(d + 1) / 2, n, 1},
          {(d + 3) / 4, n < 10 ? n : 10, n < 3 ? n : 3},
          {d > 17 ? 17 : d, n < 40 ? n : 40, 1}};
      for (c = 0; c < 6; ++c) {
        const size_t W = cases[c][0], N = cases[c][1], kk = cases[c][2];
        size_t idx[64], eidx[64], u;
        float prob[64], eprob[64];
        double ln, eln = 0.0, perr = 0.0;
        adasm_svd_result out = qresult(idx, prob);
        int same = 1;
        p = qparams(k, beta, W, N, kk);
        /* unaligned workspace on purpose */
        res = adasm_svd_query(&m, &p, x, (unsigned char *)work + 1, bytes, &out);
        CHECK(res == ADASM_OK, "query W=%lu N=%lu k=%lu: %s", (unsigned long)W,
              (unsigned long)N, (unsigned long)kk, adasm_result_string(res));
        if (res != ADASM_OK) continue;
        ln = out.log_norm;
        CHECK(out.madds == (uint64_t)d * d + (uint64_t)n * W + (uint64_t)N * (d - W),
              "madds %lu", (unsigned long)out.madds);
        if (W == d || N == n) { /* must equal the exact path */
          res = adasm_gemv_softmax_topk(k, A, n, d, lda, x, beta, kk, eidx,
                                        eprob, &eln, NULL);
          CHECK(res == ADASM_OK, "exact: %s", adasm_result_string(res));
          for (u = 0; u < kk; ++u) {
            if (idx[u] != eidx[u]) same = 0;
            perr = dmax(perr, fabs((double)prob[u] - (double)eprob[u]) /
                                  fmax((double)eprob[u], 1e-30));
          }
          CHECK(same, "%s W=%lu N=%lu: top-%lu differs from the exact path",
                adasm_isa_name(g_isas[t]), (unsigned long)W, (unsigned long)N,
                (unsigned long)kk);
          CHECK(perr <= 2e-5 && fabs(ln - eln) <= 2e-5 * fmax(1.0, fabs(eln)),
                "%s W=%lu N=%lu: p rel err %.3g, log_norm %.9g vs %.9g",
                adasm_isa_name(g_isas[t]), (unsigned long)W, (unsigned long)N,
                perr, ln, eln);
        }
        { /* the method itself, against the double reference */
          ref_out o;
          ref_query(&m, x, beta, W, N, kk, &o);
          if (o.gap < 1e-4) {
            ++skipped;
          } else {
            same = 1;
            perr = 0.0;
            for (u = 0; u < kk; ++u) {
              if (idx[u] != o.idx[u]) same = 0;
              perr = dmax(perr, fabs((double)prob[u] - o.prob[u]) / fmax(o.prob[u], 1e-30));
            }
            CHECK(same, "%s W=%lu N=%lu k=%lu: top-k differs from the reference",
                  adasm_isa_name(g_isas[t]), (unsigned long)W, (unsigned long)N,
                  (unsigned long)kk);
            CHECK(perr <= 2e-5 && fabs(ln - o.log_norm) <= 2e-5 * fmax(1.0, fabs(ln)),
                  "%s W=%lu N=%lu: vs reference p err %.3g, log_norm %.9g vs %.9g",
                  adasm_isa_name(g_isas[t]), (unsigned long)W, (unsigned long)N,
                  perr, ln, o.log_norm);
          }
        }
      }
    }
    /* every ISA agrees with the scalar model's answer */
    if (!have_ref) {
      ref_m = m;
      have_ref = 1;
    } else {
      size_t i1[8], i2[8], u;
      float p1[8], p2[8];
      const size_t W = (d + 1) / 2, N = n < 20 ? n : 20, kk = N < 8 ? N : 8;
      const adasm_svd_params p0 = qparams(NULL, 1.0f, W, N, kk);
      adasm_svd_result o1 = qresult(i1, p1), o2 = qresult(i2, p2);
      double l1, l2, e = 0.0;
      int same = 1;
      p = qparams(k, 1.0f, W, N, kk);
      CHECK(adasm_svd_query(&ref_m, &p0, X, work, bytes, &o1) == ADASM_OK, "ref query");
      CHECK(adasm_svd_query(&m, &p, X, work, bytes, &o2) == ADASM_OK, "isa query");
      l1 = o1.log_norm;
      l2 = o2.log_norm;
      for (u = 0; u < kk; ++u) {
        same &= i1[u] == i2[u];
        e = dmax(e, fabs((double)p1[u] - (double)p2[u]) / (double)p1[u]);
      }
      CHECK(same && e < 1e-3 && fabs(l1 - l2) < 1e-3,
            "%s model vs scalar model: same %d, p err %.3g", adasm_isa_name(g_isas[t]),
            same, e);
      adasm_svd_free(&m);
    }
    free(work);
  }
  if (have_ref) adasm_svd_free(&ref_m);
  if (skipped) printf("  (%d near-tie reference comparisons skipped)\n", skipped);
  CHECK(ta.live == 0 && ta.bad == 0, "allocator: %ld live, %ld bad", ta.live, ta.bad);
  free(A);
  free(X);
  free(s);
}

/* ---- errors --------------------------------------------------------------------- */
static void test_errors(void) {
  enum { N = 40, D = 20 };
  static float A[N * D], x[D];
  adasm_svd_model m, z, before;
  adasm_svd_params p, q;
  adasm_svd_result out, o2;
  adasm_pcg32 r;
  size_t idx[4], bytes = 0, b2;
  float prob[4];
  unsigned char work[8192];
  adasm_result res;
  size_t t;
  adasm_pcg32_seed(&r, 9u, 9u);
  fill_gauss(A, N * D, 1.0, &r);
  fill_gauss(x, D, 1.0, &r);
  memset(&z, 0, sizeof z);
  memset(&m, 0x5a, sizeof m);
  before = m;
  /* build: argument errors, model untouched */
  CHECK(adasm_svd_build(NULL, NULL, A, N, D, D, NULL) == ADASM_ERR_NULL, "build NULL m");
  CHECK(adasm_svd_build(&m, NULL, NULL, N, D, D, NULL) == ADASM_ERR_NULL, "build NULL A");
  CHECK(adasm_svd_build(&m, NULL, A, 0, D, D, NULL) == ADASM_ERR_SIZE, "build n=0");
  CHECK(adasm_svd_build(&m, NULL, A, N, 0, D, NULL) == ADASM_ERR_SIZE, "build d=0");
  CHECK(adasm_svd_build(&m, NULL, A, N, D, D - 1, NULL) == ADASM_ERR_SIZE, "build lda<d");
  CHECK(adasm_svd_build(&m, NULL, A, (size_t)1 << 62, D, D, NULL) == ADASM_ERR_OVERFLOW,
        "build n huge");
  CHECK(adasm_svd_build(&m, NULL, A, 2, (size_t)1 << 33, (size_t)1 << 33, NULL) ==
            ADASM_ERR_OVERFLOW, "build d huge");
  CHECK(adasm_svd_build(&m, NULL, A, 2, (size_t)-1, (size_t)-1, NULL) ==
            ADASM_ERR_OVERFLOW, "build d = SIZE_MAX");
  A[77] = adasm__nanf();
  CHECK(adasm_svd_build(&m, NULL, A, N, D, D, NULL) == ADASM_ERR_NAN, "build NaN A");
  A[77] = -adasm__inff();
  CHECK(adasm_svd_build(&m, NULL, A, N, D, D, NULL) == ADASM_ERR_PARAM, "build inf A");
  A[77] = 0.5f;
  {
    const float big[4] = {3e38f, 3e38f, 1.0f, 2.0f}; /* B row = 6e38/sqrt 2 */
    CHECK(adasm_svd_build(&m, NULL, big, 2, 2, 2, NULL) == ADASM_ERR_PARAM,
          "build: B overflows float");
  }
  CHECK(memcmp(&m, &before, sizeof m) == 0, "failed builds touched the model");
  CHECK(ta.live == 0, "failed builds leaked %ld", ta.live);
  CHECK(adasm_svd_build(&m, NULL, A, N, D, D, NULL) == ADASM_OK, "build");

  /* workspace size: the query's argument checks, and bytes */
  p = qparams(NULL, 1.0f, 5, 10, 3);
#define WSERR(expect, what, mm, field, value)                                  \
  do {                                                                         \
    q = p;                                                                     \
    q.field = value;                                                           \
    res = adasm_svd_workspace_size(mm, &q, &bytes);                            \
    CHECK(res == (expect), "ws %s: %s", what, adasm_result_string(res));       \
  } while (0)
  CHECK(adasm_svd_workspace_size(&m, &p, NULL) == ADASM_ERR_NULL, "ws NULL bytes");
  CHECK(adasm_svd_workspace_size(&m, NULL, &bytes) == ADASM_ERR_NULL, "ws NULL params");
  WSERR(ADASM_ERR_NULL, "NULL m", NULL, k, 3);
  WSERR(ADASM_ERR_NULL, "zeroed m", &z, k, 3);
  WSERR(ADASM_ERR_SIZE, "W>d", &m, window, D + 1);
  WSERR(ADASM_ERR_SIZE, "N>n", &m, top, N + 1);
  WSERR(ADASM_ERR_SIZE, "k=0", &m, k, 0);
  WSERR(ADASM_ERR_SIZE, "k>N", &m, k, 11);
  WSERR(ADASM_ERR_PARAM, "beta 0", &m, beta, 0.0f);
#undef WSERR
  res = adasm_svd_workspace_size(&m, &p, &bytes);
  CHECK(res == ADASM_OK && bytes <= sizeof work, "ws: %s, %lu bytes",
        adasm_result_string(res), (unsigned long)bytes);
  q = p;
  q.window = D;
  CHECK(adasm_svd_workspace_size(&m, &q, &b2) == ADASM_OK && b2 == bytes,
        "workspace depends on W");

  /* query: argument errors leave the outputs alone; each case changes one
     argument of a valid query */
  out = qresult(idx, prob);
#define QERR(expect, what, mm, pp, xx, ww, nb, oo)                             \
  do {                                                                         \
    idx[0] = 99; prob[0] = 9.0f; out.log_norm = 1.0; out.madds = 7;            \
    res = adasm_svd_query(mm, pp, xx, ww, nb, oo);                             \
    CHECK(res == (expect), "query %s: %s", what, adasm_result_string(res));    \
    CHECK(idx[0] == 99 && prob[0] == 9.0f && out.log_norm == 1.0 &&            \
              out.madds == 7, "query %s: outputs touched", what);              \
  } while (0)
#define QPAR(expect, what, field, value)                                       \
  do {                                                                         \
    q = p;                                                                     \
    q.field = value;                                                           \
    QERR(expect, what, &m, &q, x, work, bytes, &out);                          \
  } while (0)
  QERR(ADASM_ERR_NULL, "NULL m", NULL, &p, x, work, bytes, &out);
  QERR(ADASM_ERR_NULL, "zeroed m", &z, &p, x, work, bytes, &out);
  QERR(ADASM_ERR_NULL, "NULL params", &m, NULL, x, work, bytes, &out);
  QERR(ADASM_ERR_NULL, "NULL x", &m, &p, NULL, work, bytes, &out);
  QERR(ADASM_ERR_NULL, "NULL out", &m, &p, x, work, bytes, NULL);
  o2 = qresult(NULL, prob);
  QERR(ADASM_ERR_NULL, "NULL idx", &m, &p, x, work, bytes, &o2);
  CHECK(o2.log_norm == 0.0 && o2.madds == 0, "query NULL idx: outputs touched");
  o2 = qresult(idx, NULL);
  QERR(ADASM_ERR_NULL, "NULL prob", &m, &p, x, work, bytes, &o2);
  CHECK(o2.log_norm == 0.0 && o2.madds == 0, "query NULL prob: outputs touched");
  QPAR(ADASM_ERR_SIZE, "W>d", window, D + 1);
  QPAR(ADASM_ERR_SIZE, "N>n", top, N + 1);
  QPAR(ADASM_ERR_SIZE, "k=0", k, 0);
  QPAR(ADASM_ERR_SIZE, "k>N", top, 2);
  q = qparams(NULL, 1.0f, 0, 0, N + 1); /* the default top is at most n */
  QERR(ADASM_ERR_SIZE, "k>n, defaults", &m, &q, x, work, bytes, &out);
  QPAR(ADASM_ERR_PARAM, "beta NaN", beta, adasm__nanf());
  QPAR(ADASM_ERR_PARAM, "beta inf", beta, adasm__inff());
  QPAR(ADASM_ERR_PARAM, "beta 0", beta, 0.0f);
  QPAR(ADASM_ERR_PARAM, "beta < 0", beta, -1.0f);
  QERR(ADASM_ERR_WORKSPACE, "work NULL", &m, &p, x, NULL, bytes, &out);
  QERR(ADASM_ERR_WORKSPACE, "work small", &m, &p, x, work, bytes - 65, &out);
  QERR(ADASM_ERR_WORKSPACE, "work 0", &m, &p, x, work, 0, &out);
#undef QPAR
#undef QERR
  /* the exact bytes suffice at any alignment */
  for (t = 0; t < 64; ++t)
    CHECK(adasm_svd_query(&m, &p, x, work + t, bytes, &out) == ADASM_OK,
          "workspace at offset %lu", (unsigned long)t);
  /* data errors: NaN / inf in x -> outputs NaN, idx 0 */
  x[3] = adasm__nanf();
  res = adasm_svd_query(&m, &p, x, work, bytes, &out);
  CHECK(res == ADASM_ERR_NAN, "NaN x: %s", adasm_result_string(res));
  CHECK(adasm__isnanf(prob[0]) && adasm__isnanf(prob[2]) && idx[0] == 0 &&
            idx[2] == 0 && out.log_norm != out.log_norm && out.madds == 0,
        "NaN x: outputs not NaN/0");
  x[3] = adasm__inff();
  prob[0] = 1.0f; idx[0] = 5; out.log_norm = 0.0; out.madds = 3;
  res = adasm_svd_query(&m, &p, x, work, bytes, &out);
  CHECK(res == ADASM_ERR_PARAM, "inf x: %s", adasm_result_string(res));
  CHECK(adasm__isnanf(prob[0]) && idx[0] == 0 && out.log_norm != out.log_norm &&
            out.madds == 0, "inf x: outputs not NaN/0");
  x[3] = 0.25f;
  /* logits overflowing to +inf share the mass, as in the exact path */
  q = qparams(NULL, 3e38f, D, 10, 1);
  res = adasm_svd_query(&m, &q, x, work, bytes, &out);
  CHECK(res == ADASM_OK || res == ADASM_ERR_NAN, "huge beta: %s", adasm_result_string(res));
  if (res == ADASM_OK) CHECK(prob[0] > 0.0f && prob[0] <= 1.0f, "huge beta: p %g", prob[0]);
  adasm_svd_free(&m);
  adasm_svd_free(NULL);
  adasm_svd_free(&z);
  CHECK(ta.live == 0 && ta.bad == 0, "errors: %ld live, %ld bad", ta.live, ta.bad);
}

/* ---- allocation failures ----------------------------------------------------------- */
static void test_alloc(void) {
  enum { N = 50, D = 21 };
  static float A[N * D];
  adasm_svd_model m, before;
  adasm_pcg32 r;
  int ctx_tag;
  long sites, f, rest;
  adasm_result res;
  adasm_pcg32_seed(&r, 4u, 4u);
  fill_gauss(A, N * D, 1.0, &r);
  ta.calls = 0; ta.fail_at = 0; ta.fail_rest = 0;
  res = adasm_svd_build(&m, NULL, A, N, D, D, &ctx_tag);
  sites = ta.calls;
  CHECK(res == ADASM_OK && sites >= 1, "clean build: %s, %ld allocations",
        adasm_result_string(res), sites);
  CHECK(ta.last_ctx == (void *)&ctx_tag && m.alloc_ctx == (void *)&ctx_tag,
        "allocation context not passed through");
  CHECK(ta.live == 1, "a built model holds %ld blocks (documented: one)", ta.live);
  adasm_svd_free(&m);
  for (f = 1; f <= sites; ++f)
    for (rest = 0; rest <= 1; ++rest) {
      memset(&m, 0x33, sizeof m);
      before = m;
      ta.calls = 0; ta.fail_at = f; ta.fail_rest = (int)rest;
      res = adasm_svd_build(&m, NULL, A, N, D, D, &ctx_tag);
      CHECK(res == ADASM_ERR_NOMEM, "allocation %ld of %ld failed: build returned %s",
            f, sites, adasm_result_string(res));
      CHECK(ta.live == 0, "allocation %ld failed: %ld block(s) leaked", f, ta.live);
      CHECK(memcmp(&m, &before, sizeof m) == 0, "failed build touched the model");
    }
  ta.fail_at = 0;
  ta.fail_rest = 0;
  CHECK(ta.bad == 0, "%ld bad frees", ta.bad);
  printf("  build: %ld allocation site(s), each failed alone and with the rest\n", sites);
}

/* Degenerate matrices: zero, rank one, duplicate columns, a single row. */
static void test_degenerate(void) {
  enum { N = 30, D = 19 };
  static float A[N * D];
  adasm_svd_model m;
  adasm_pcg32 r;
  size_t i, j, c;
  adasm_pcg32_seed(&r, 8u, 8u);
  for (c = 0; c < 4; ++c) {
    fac_err f;
    size_t n = N;
    for (i = 0; i < N; ++i)
      for (j = 0; j < D; ++j) {
        float v = 0.0f;
        if (c == 1) v = (float)(i + 1) * (float)(j % 5 + 1) * 0.1f;
        if (c == 2) v = (float)gauss(&r);
        if (c == 3) v = (float)gauss(&r);
        A[i * D + j] = v;
      }
    if (c == 2) /* columns 1..D-1 copies of column 0 */
      for (i = 0; i < N; ++i)
        for (j = 1; j < D; ++j) A[i * D + j] = A[i * D];
    if (c == 3) n = 1;
    CHECK(adasm_svd_build(&m, NULL, A, n, D, D, NULL) == ADASM_OK, "degenerate %lu",
          (unsigned long)c);
    f = check_factor(&m, A, D, NULL);
    CHECK(f.recon <= 1e-5 && f.orth <= 1e-5 && f.desc,
          "degenerate %lu: recon %.3g orth %.3g desc %d", (unsigned long)c,
          f.recon, f.orth, f.desc);
    if (c == 0) CHECK(m.sigma[0] == 0.0, "zero matrix: sigma_0 = %g", m.sigma[0]);
    if (c >= 1) CHECK(m.sigma[1] <= 1e-6 * m.sigma[0], "rank one: sigma_1 = %g sigma_0",
                      m.sigma[1] / m.sigma[0]);
    adasm_svd_free(&m);
  }
}

/* Entries spanning the whole float range (fuzz_svd's first finding: one
   row mixing +-1.7e38 with subnormals). The Gram matrix is rank-deficient;
   its rounding noise sits ~1e-16 below 1e76 with entries down to 1e-160,
   whose squares vanish: a reflector's norm computed from them gave an H
   that was not orthogonal (~1 matrix in 5000 of the random family below
   before the fix, on every ISA). */
/* Builds A on every ISA (isa = N_ISAS) or on g_isas[isa] only. */
static int extreme_case(float *A, size_t n, size_t d, const char *what, size_t isa) {
  int bad = 0;
  size_t t;
  double fa = 0.0, tol;
  for (t = 0; t < n * d; ++t) fa += (double)A[t] * (double)A[t];
  fa = sqrt(fa);
  /* as fuzz_svd: relative float rounding, plus the absolute error of float
     sums that underflow (2^-149 per operation) */
  tol = 2e-6 * sqrt((double)d) + 1e-6 +
        (fa > 0.0 ? ldexp(1.0, -140) * (double)d * sqrt((double)(n * d)) / fa : 0.0);
  for (t = 0; t < N_ISAS; ++t) {
    const adasm_kernels *k;
    adasm_svd_model m;
    adasm_result res;
    fac_err f;
    int ok;
    if (isa < N_ISAS && t != isa) continue;
    if (adasm_kernels_get(g_isas[t], &k) != ADASM_OK) continue;
    res = adasm_svd_build(&m, k, A, n, d, d, NULL);
    if (res == ADASM_ERR_PARAM) continue; /* B = A V would overflow float */
    CHECK(res == ADASM_OK, "extreme range %s %s: %s", what,
          adasm_isa_name(g_isas[t]), adasm_result_string(res));
    if (res != ADASM_OK) return 1;
    f = check_factor(&m, A, d, NULL);
    ok = f.orth <= 1e-6 * sqrt((double)d) + 1e-6 && f.desc && f.recon <= tol;
    bad |= !ok;
    CHECK(ok, "extreme range %s %lux%lu %s: orth %.3g recon %.3g desc %d",
          what, (unsigned long)n, (unsigned long)d, adasm_isa_name(g_isas[t]),
          f.orth, f.recon, f.desc);
    adasm_svd_free(&m);
  }
  return bad;
}

static void test_extreme_range(int quick) {
  static const uint32_t row[8] = {0xfefef6feu, 0x0001fefeu, 0xdd000000u,
                                  0x000001c0u, 0xfee0e0e0u, 0x00000000u,
                                  0x00002d00u, 0x7eff1e02u};
  /* fuzz_svd's second finding: its tridiagonal carries off-diagonals down
     to 1e-323, and a QL rotation made from two subnormals had
     c^2 + s^2 = 8/9 */
  static const uint32_t row2[8] = {0xfefef6feu, 0x0001fefeu, 0xdd000000u,
                                   0xe00001c0u, 0x0000fee0u, 0x0000e000u,
                                   0x00002d00u, 0x7eff1e02u};
  static const double fg[][2] = {{4.9406564584124654e-324, 4.9406564584124654e-324},
                                 {1e-310, -3e-312}, {0.0, 2.5e-320},
                                 {-7e-300, 1e-290}, {3.0, 4.0}, {1e300, -1e300}};
  const unsigned trials = quick ? 3000u : 30000u;
  float A[3 * 32], v[32];
  adasm_pcg32 r;
  unsigned c;
  size_t i, j;
  memcpy(A, row, sizeof row);
  extreme_case(A, 1, 8, "fuzz_svd row", N_ISAS);
  memcpy(A, row2, sizeof row2);
  extreme_case(A, 1, 8, "fuzz_svd row 2", N_ISAS);
  for (c = 0; c < sizeof fg / sizeof fg[0]; ++c) { /* rotations */
    double cs = 2.0, sn = 2.0;
    const double rr = adasm__svd_givens(fg[c][0], fg[c][1], &cs, &sn);
    const double h = hypot(fg[c][0], fg[c][1]), tol = 4e-16 * h + 5e-324;
    CHECK(fabs(cs * cs + sn * sn - 1.0) <= 4e-16 && fabs(rr - h) <= tol &&
              fabs(sn * rr - fg[c][0]) <= tol && fabs(cs * rr - fg[c][1]) <= tol,
          "givens(%g, %g): c %.17g s %.17g r %.17g", fg[c][0], fg[c][1], cs, sn, rr);
  }
  adasm_pcg32_seed(&r, 1u, 2u);
  for (c = 0; c < trials; ++c) { /* rows i v: subnormal, huge or ordinary */
    const size_t n = 1 + c % 3, d = 2 + adasm_pcg32_bounded(&r, 30);
    for (j = 0; j < d; ++j) {
      const uint32_t kind = adasm_pcg32_bounded(&r, 3);
      const int e = kind == 0   ? (int)adasm_pcg32_bounded(&r, 24) - 149
                    : kind == 1 ? 100 + (int)adasm_pcg32_bounded(&r, 26)
                                : (int)adasm_pcg32_bounded(&r, 120) - 60;
      const float x = (float)ldexp(1.0 + (double)adasm_pcg32_bounded(&r, 256) / 256.0, e);
      v[j] = adasm_pcg32_bounded(&r, 2) ? -x : x;
      if (adasm_pcg32_bounded(&r, 4) == 0) v[j] = 0.0f;
    }
    for (i = 0; i < n; ++i)
      for (j = 0; j < d; ++j) A[i * d + j] = v[j] * (float)(i + 1) * 0.5f;
    /* one ISA per matrix, in turn: the defect was in the shared code */
    if (extreme_case(A, n, d, "random", c % N_ISAS)) break; /* one report */
  }
}

/* Ties: identical rows give identical previews and logits; the selection
   and the top k must keep the lowest indices (the exact path's rule), and
   the answer must equal the exact path's with N = n. */
static void test_ties(void) {
  enum { N = 50, D = 19 };
  static float A[N * D], x[D];
  adasm_svd_model m;
  adasm_pcg32 r;
  size_t i, j, t, idx[4], eidx[4], bytes;
  float prob[4], eprob[4];
  double ln, eln;
  adasm_svd_params p = qparams(NULL, 1.0f, 1, N, 1);
  adasm_svd_result out = qresult(idx, prob);
  void *work;
  adasm_pcg32_seed(&r, 21u, 2u);
  fill_gauss(A, D, 1.0, &r);
  fill_gauss(x, D, 1.0, &r);
  for (i = 1; i < N; ++i)
    for (j = 0; j < D; ++j) A[i * D + j] = A[j];
  CHECK(adasm_svd_build(&m, NULL, A, N, D, D, NULL) == ADASM_OK, "ties: build");
  CHECK(adasm_svd_workspace_size(&m, &p, &bytes) == ADASM_OK, "ties: ws");
  work = xmalloc(bytes);
  for (t = 0; t < 2 * N_ISAS; ++t) { /* every ISA: previews of identical rows tie */
    const size_t W = t % 2 ? 3 : 1, top = 7, k = 4;
    const adasm_kernels *ks;
    if (adasm_kernels_get(g_isas[t / 2], &ks) != ADASM_OK) continue;
    p = qparams(ks, 1.0f, W, top, k);
    CHECK(adasm_svd_query(&m, &p, x, work, bytes, &out) == ADASM_OK, "ties: query");
    CHECK(idx[0] == 0 && idx[1] == 1 && idx[2] == 2 && idx[3] == 3,
          "ties W=%lu: idx %lu %lu %lu %lu", (unsigned long)W, (unsigned long)idx[0],
          (unsigned long)idx[1], (unsigned long)idx[2], (unsigned long)idx[3]);
    CHECK(prob[0] == prob[3] && prob[0] > 0.0f, "ties: probabilities differ");
  }
  p = qparams(NULL, 1.0f, 2, N, 4);
  CHECK(adasm_svd_query(&m, &p, x, work, bytes, &out) == ADASM_OK, "ties: query N = n");
  ln = out.log_norm;
  /* the scalar exact kernel: the AVX2 dot_rows gives identical rows in its
     4-row tail logits one ulp apart, so its tie order depends on position */
  {
    const adasm_kernels *ks;
    CHECK(adasm_kernels_get(ADASM_ISA_SCALAR, &ks) == ADASM_OK &&
              adasm_gemv_softmax_topk(ks, A, N, D, D, x, 1.0f, 4, eidx, eprob, &eln,
                                      NULL) == ADASM_OK, "ties: exact");
  }
  CHECK(memcmp(idx, eidx, sizeof idx) == 0 &&
            fabs((double)prob[0] - 1.0 / N) < 1e-6 && fabs(ln - eln) < 1e-5,
        "ties N = n: idx %lu %lu %lu %lu vs exact %lu %lu %lu %lu, p %.9g vs %.9g, log_norm %.9g vs %.9g",
        (unsigned long)idx[0], (unsigned long)idx[1], (unsigned long)idx[2], (unsigned long)idx[3],
        (unsigned long)eidx[0], (unsigned long)eidx[1], (unsigned long)eidx[2], (unsigned long)eidx[3],
        prob[0], eprob[0], ln, eln);
  free(work);
  adasm_svd_free(&m);
}

/* Large n takes the sampled selection: a threshold from 2048 strided
   previews. Here every 4th row (the sampled ones, at n / 2048 = 4) has a
   large preview and the others a small one, so the sample's threshold
   gathers fewer than N rows and the selection must fall back to all rows;
   and a random head with n > 4 * 2048 takes the ordinary sampled path. */
static void test_select_large(void) {
  enum { N = 9000, D = 12 };
  static float A[N * D], x[D];
  adasm_svd_model m;
  adasm_pcg32 r;
  size_t i, j, c, idx[8], bytes = 0;
  float prob[8];
  double ln;
  adasm_svd_params p = qparams(NULL, 1.0f, 1, N, 1);
  adasm_svd_result out = qresult(idx, prob);
  void *work;
  adasm_pcg32_seed(&r, 31u, 2u);
  for (c = 0; c < 2; ++c) {
    fill_gauss(A, N * D, 0.05, &r);
    fill_gauss(x, D, 1.0, &r);
    if (c == 0)
      for (i = 0; i < N; i += 4)
        for (j = 0; j < D; ++j) A[i * D + j] += 2.0f * x[j] / (float)D;
    CHECK(adasm_svd_build(&m, NULL, A, N, D, D, NULL) == ADASM_OK, "large: build");
    p = qparams(NULL, 1.0f, 1, N, 1);
    CHECK(adasm_svd_workspace_size(&m, &p, &bytes) == ADASM_OK, "large: ws");
    work = xmalloc(bytes);
    {
      const size_t cases[4][3] = {{1, 600, 8}, {2, 3000, 5}, {3, 40, 3}, {D, 1, 1}};
      size_t q, u;
      for (q = 0; q < 4; ++q) {
        const size_t W = cases[q][0], top = cases[q][1], k = cases[q][2];
        ref_out o;
        int same = 1;
        double perr = 0.0;
        p = qparams(NULL, 1.0f, W, top, k);
        CHECK(adasm_svd_query(&m, &p, x, work, bytes, &out) == ADASM_OK, "large: query");
        ln = out.log_norm;
        ref_query(&m, x, 1.0f, W, top, k, &o);
        if (o.gap < 1e-4) continue;
        for (u = 0; u < k; ++u) {
          same &= idx[u] == o.idx[u];
          perr = dmax(perr, fabs((double)prob[u] - o.prob[u]) / o.prob[u]);
        }
        CHECK(same && perr < 2e-5 && fabs(ln - o.log_norm) < 2e-5 * fmax(1.0, fabs(ln)),
              "large %s W=%lu N=%lu: same %d, p err %.3g, log_norm %.9g vs %.9g",
              c ? "random" : "skewed", (unsigned long)W, (unsigned long)top, same,
              perr, ln, o.log_norm);
      }
    }
    free(work);
    adasm_svd_free(&m);
  }
}

/* window = 0 and top = 0 are d/8 (16 <= W <= d) and 512 (k <= N <= n):
   the same bits, madds and workspace as those values spelled out. */
static void test_defaults(void) {
  static const size_t shapes[3][3] = {{40, 20, 3}, {600, 200, 5}, {600, 90, 520}};
  static size_t i1[520], i2[520];
  static float p1[520], p2[520];
  adasm_pcg32 r;
  size_t c;
  adasm_pcg32_seed(&r, 44u, 4u);
  for (c = 0; c < 3; ++c) {
    const size_t n = shapes[c][0], d = shapes[c][1], kk = shapes[c][2];
    const size_t W = d / 8 > 16 ? d / 8 : d < 16 ? d : 16;
    const size_t N = n < (kk > 512 ? kk : 512) ? n : (kk > 512 ? kk : 512);
    float *A = (float *)xmalloc(n * d * sizeof(float));
    float *x = (float *)xmalloc(d * sizeof(float));
    adasm_svd_params pd = adasm_svd_params_default();
    const adasm_svd_params pe = qparams(NULL, 1.0f, W, N, kk);
    adasm_svd_result od = qresult(i1, p1), oe = qresult(i2, p2);
    adasm_svd_model m;
    size_t bd = 0, be = 0;
    void *work;
    fill_gauss(A, n * d, 1.0, &r);
    fill_gauss(x, d, 1.0, &r);
    pd.k = kk;
    CHECK(pd.window == 0 && pd.top == 0 && pd.beta == 1.0f && pd.kern == NULL,
          "params_default");
    CHECK(adasm_svd_build(&m, NULL, A, n, d, d, NULL) == ADASM_OK, "defaults: build");
    CHECK(adasm_svd_workspace_size(&m, &pd, &bd) == ADASM_OK &&
              adasm_svd_workspace_size(&m, &pe, &be) == ADASM_OK && bd == be,
          "defaults %lux%lu: workspace %lu vs %lu", (unsigned long)n,
          (unsigned long)d, (unsigned long)bd, (unsigned long)be);
    work = xmalloc(bd);
    CHECK(adasm_svd_query(&m, &pd, x, work, bd, &od) == ADASM_OK &&
              adasm_svd_query(&m, &pe, x, work, bd, &oe) == ADASM_OK,
          "defaults: queries");
    CHECK(memcmp(i1, i2, kk * sizeof i1[0]) == 0 && memcmp(p1, p2, kk * sizeof p1[0]) == 0 &&
              od.log_norm == oe.log_norm &&
              od.madds == (uint64_t)d * d + (uint64_t)n * W + (uint64_t)N * (d - W) &&
              od.madds == oe.madds,
          "defaults %lux%lu k=%lu: not W=%lu N=%lu (madds %lu vs %lu)",
          (unsigned long)n, (unsigned long)d, (unsigned long)kk, (unsigned long)W,
          (unsigned long)N, (unsigned long)od.madds, (unsigned long)oe.madds);
    free(work);
    adasm_svd_free(&m);
    free(A);
    free(x);
  }
}

/* Same inputs, same bytes. */
static void test_determinism(void) {
  enum { N = 70, D = 33 };
  static float A[N * D], x[D];
  adasm_svd_model m1, m2;
  adasm_pcg32 r;
  size_t i1[5], i2[5], bytes;
  float p1[5], p2[5];
  const adasm_svd_params p = qparams(NULL, 1.0f, 8, 12, 5);
  adasm_svd_result o1 = qresult(i1, p1), o2 = qresult(i2, p2);
  void *work;
  adasm_pcg32_seed(&r, 12u, 1u);
  fill_gauss(A, N * D, 1.0, &r);
  fill_gauss(x, D, 1.0, &r);
  CHECK(adasm_svd_build(&m1, NULL, A, N, D, D, NULL) == ADASM_OK, "build 1");
  CHECK(adasm_svd_build(&m2, NULL, A, N, D, D, NULL) == ADASM_OK, "build 2");
  CHECK(memcmp(m1.B, m2.B, N * 48 * sizeof(float)) == 0 &&
            memcmp(m1.vt, m2.vt, D * D * sizeof(float)) == 0 &&
            memcmp(m1.sigma, m2.sigma, D * sizeof(double)) == 0,
        "two builds differ");
  CHECK(adasm_svd_workspace_size(&m1, &p, &bytes) == ADASM_OK, "ws");
  work = xmalloc(bytes);
  CHECK(adasm_svd_query(&m1, &p, x, work, bytes, &o1) == ADASM_OK &&
            adasm_svd_query(&m1, &p, x, work, bytes, &o2) == ADASM_OK,
        "queries");
  CHECK(memcmp(i1, i2, sizeof i1) == 0 && memcmp(p1, p2, sizeof p1) == 0 &&
            o1.log_norm == o2.log_norm && o1.madds == o2.madds,
        "two queries differ");
  free(work);
  adasm_svd_free(&m1);
  adasm_svd_free(&m2);
}

/* ---- performance ---------------------------------------------------------------- */
static int cmp_double(const void *a, const void *b) {
  const double x = *(const double *)a, y = *(const double *)b;
  return x < y ? -1 : x > y;
}

static void perf_build(size_t n, size_t d) {
  float *A = (float *)xmalloc(n * d * sizeof(float));
  adasm_svd_model m;
  adasm_pcg32 r;
  double t0, t1, c0, c1;
  adasm_result res;
  adasm_pcg32_seed(&r, 1u, 1u);
  fill_gauss(A, n * d, 1.0, &r);
  t0 = now_sec();
  c0 = cpu_sec();
  prof_start();
  res = adasm_svd_build(&m, NULL, A, n, d, d, NULL);
  t1 = now_sec();
  c1 = cpu_sec();
  printf("build %lu x %lu (%s): %s\n  wall %.2f s: Gram %.2f, tridiagonal %.2f, "
         "Q %.2f, QL+rotations %.2f, B=AV %.2f\n",
         (unsigned long)n, (unsigned long)d, adasm_isa_name(adasm_isa_best()),
         adasm_result_string(res), t1 - t0, g_stage[0], g_stage[1], g_stage[2],
         g_stage[3], g_stage[4]);
  printf("  cpu  %.2f s: Gram %.2f, tridiagonal %.2f, Q %.2f, QL+rotations %.2f, "
         "B=AV %.2f\n", c1 - c0, g_stage_cpu[0], g_stage_cpu[1], g_stage_cpu[2],
         g_stage_cpu[3], g_stage_cpu[4]);
  if (res == ADASM_OK) {
    /* spot check: orthogonality of a few rows, reconstruction of a few rows */
    double orth = 0.0, num = 0.0, den = 0.0;
    size_t i, j, k;
    for (j = 0; j < 8; ++j)
      for (k = 0; k < d; k += d / 8) {
        double dot = 0.0;
        for (i = 0; i < d; ++i) dot += (double)m.vt[j * d + i] * (double)m.vt[k * d + i];
        orth = dmax(orth, fabs(dot - (j == k ? 1.0 : 0.0)));
      }
    for (i = 0; i < n; i += n / 16)
      for (j = 0; j < d; ++j) {
        double acc = 0.0;
        for (k = 0; k < d; ++k) acc += (double)bat(&m, i, k) * (double)m.vt[k * d + j];
        num += (acc - (double)A[i * d + j]) * (acc - (double)A[i * d + j]);
        den += (double)A[i * d + j] * (double)A[i * d + j];
      }
    printf("  spot checks: max |V^T V - I| %.2e, rows recon %.2e, sigma %.4g .. %.4g\n",
           orth, sqrt(num / den), m.sigma[0], m.sigma[d - 1]);
    adasm_svd_free(&m);
  }
  free(A);
}

/* Median query time of SVD-softmax vs the exact path on q queries, and
   top-1 agreement, for each (W, N). */
static void perf_query(const float *A, size_t n, size_t d, const float *X,
                       size_t q, int argc, char **argv, int argi) {
  static const size_t defaults[][2] = {{16, 64},  {32, 128},  {64, 256},
                                       {128, 512}, {128, 2048}, {256, 1024},
                                       {256, 4096}};
  adasm_svd_model m;
  adasm_svd_params p;
  size_t *eidx = (size_t *)xmalloc(q * sizeof(size_t));
  double *et = (double *)xmalloc(q * sizeof(double));
  double *st = (double *)xmalloc(q * sizeof(double));
  size_t i, c, nc = (size_t)(argc - argi);
  double t0, emed;
  adasm_result res;
  if (nc == 0) nc = sizeof defaults / sizeof defaults[0];
  t0 = now_sec();
  prof_start();
  res = adasm_svd_build(&m, NULL, A, n, d, d, NULL);
  printf("head %lu x %lu, %lu queries: build %s in %.2f s wall (Gram %.2f, eig %.2f, "
         "B %.2f)\n",
         (unsigned long)n, (unsigned long)d, (unsigned long)q,
         adasm_result_string(res), now_sec() - t0, g_stage[0],
         g_stage[1] + g_stage[2] + g_stage[3], g_stage[4]);
  if (res != ADASM_OK) return;
  printf("  sigma: %.4g %.4g %.4g %.4g ... %.4g (1, 2, W=16, 64, d)\n", m.sigma[0],
         m.sigma[1], m.sigma[d > 16 ? 15 : d - 1], m.sigma[d > 64 ? 63 : d - 1],
         m.sigma[d - 1]);
  for (i = 0; i < q; ++i) {
    float pr;
    double ln, a;
    a = now_sec();
    (void)adasm_gemv_softmax_topk(NULL, A, n, d, d, X + i * d, 1.0f, 1, eidx + i,
                                  &pr, &ln, NULL);
    et[i] = now_sec() - a;
  }
  qsort(et, q, sizeof *et, cmp_double);
  emed = et[q / 2];
  printf("  exact adasm_gemv_softmax_topk: median %.3f ms\n", 1e3 * emed);
  for (c = 0; c < nc; ++c) {
    size_t W, N, bytes, agree = 0;
    double pe = 0.0, le = 0.0, smp = 0.0, smed, emed2;
    void *work;
    if (argc > argi) {
      unsigned long w1, n1;
      if (sscanf(argv[argi + (int)c], "%lu:%lu", &w1, &n1) != 2) continue;
      W = (size_t)w1;
      N = (size_t)n1;
    } else {
      W = defaults[c][0];
      N = defaults[c][1];
    }
    if (W > d || N > n) continue;
    p = qparams(NULL, 1.0f, W, N, 1);
    if (adasm_svd_workspace_size(&m, &p, &bytes) != ADASM_OK) continue;
    work = xmalloc(bytes);
    for (i = 0; i < q; ++i) { /* interleaved with exact runs: same conditions */
      size_t id, eid;
      float pr, ep;
      double ln, eln, a;
      adasm_svd_result out = qresult(&id, &pr);
      a = now_sec();
      (void)adasm_svd_query(&m, &p, X + i * d, work, bytes, &out);
      st[i] = now_sec() - a;
      ln = out.log_norm;
      a = now_sec();
      (void)adasm_gemv_softmax_topk(NULL, A, n, d, d, X + i * d, 1.0f, 1, &eid, &ep,
                                    &eln, NULL);
      et[i] = now_sec() - a;
      agree += id == eid;
      if (id == eid) pe = dmax(pe, fabs((double)pr - (double)ep) / (double)ep);
      le = dmax(le, fabs(ln - eln));
      smp += (double)out.madds;
    }
    qsort(st, q, sizeof *st, cmp_double);
    qsort(et, q, sizeof *et, cmp_double);
    smed = st[q / 2];
    emed2 = et[q / 2];
    printf("  W %4lu N %5lu: median %.3f ms vs exact %.3f ms = %.2fx, top-1 agree "
           "%5.1f%%, max p err (agreeing) %.2e, max |dlog_norm| %.2e, gain %.1f\n",
           (unsigned long)W, (unsigned long)N, 1e3 * smed, 1e3 * emed2,
           emed2 / smed, 100.0 * (double)agree / (double)q, pe, le,
           (double)n * (double)d / (smp / (double)q));
    free(work);
  }
  adasm_svd_free(&m);
  free(eidx);
  free(et);
  free(st);
}

/* A minimal reader of 2-D little-endian float32 C-order .npy files. */
static float *read_npy(const char *path, size_t *rows, size_t *cols) {
  FILE *f = fopen(path, "rb");
  unsigned char pre[12];
  char hdr[4096];
  size_t hl, r = 0, c = 0, total;
  float *data;
  const char *p;
  if (!f) return NULL;
  if (fread(pre, 1, 10, f) != 10 || memcmp(pre, "\x93NUMPY", 6) != 0) {
    fclose(f);
    return NULL;
  }
  if (pre[6] == 1) {
    hl = (size_t)pre[8] | ((size_t)pre[9] << 8);
  } else {
    if (fread(pre + 10, 1, 2, f) != 2) { fclose(f); return NULL; }
    hl = (size_t)pre[8] | ((size_t)pre[9] << 8) | ((size_t)pre[10] << 16) |
         ((size_t)pre[11] << 24);
  }
  if (hl >= sizeof hdr || fread(hdr, 1, hl, f) != hl) { fclose(f); return NULL; }
  hdr[hl] = 0;
  p = strstr(hdr, "shape");
  if (!strstr(hdr, "<f4") || strstr(hdr, "True") || !p ||
      sscanf(strchr(p, '(') + 1, "%lu , %lu", (unsigned long *)&r, (unsigned long *)&c) != 2) {
    fclose(f);
    return NULL;
  }
  total = r * c;
  data = (float *)xmalloc(total * sizeof(float));
  if (fread(data, sizeof(float), total, f) != total) {
    free(data);
    data = NULL;
  }
  fclose(f);
  *rows = r;
  *cols = c;
  return data;
}

int main(int argc, char **argv) {
  const int quick = argc > 1 && strcmp(argv[1], "--quick") == 0;
  size_t i;
  ta.armed = 1; /* count every allocation */
  if (argc > 3 && strcmp(argv[1], "--perf-build") == 0) {
    perf_build((size_t)strtoul(argv[2], NULL, 10), (size_t)strtoul(argv[3], NULL, 10));
    return 0;
  }
  if (argc > 3 && strcmp(argv[1], "--perf-query") == 0) {
    const size_t n = (size_t)strtoul(argv[2], NULL, 10);
    const size_t d = (size_t)strtoul(argv[3], NULL, 10), q = 200;
    float *A = (float *)xmalloc(n * d * sizeof(float));
    float *X = (float *)xmalloc(q * d * sizeof(float));
    adasm_pcg32 r;
    adasm_pcg32_seed(&r, 2u, 2u);
    fill_gauss(A, n * d, 1.0 / sqrt((double)d), &r);
    fill_gauss(X, q * d, 2.0, &r);
    perf_query(A, n, d, X, q, argc, argv, 4);
    free(A);
    free(X);
    return 0;
  }
  if (argc > 3 && strcmp(argv[1], "--perf-npy") == 0) {
    size_t n, d, q, d2;
    float *A = read_npy(argv[2], &n, &d), *X = read_npy(argv[3], &q, &d2);
    if (!A || !X || d != d2) {
      printf("cannot read %s / %s (2-D <f4, same columns)\n", argv[2], argv[3]);
      return 1;
    }
    if (q > 500) q = 500;
    perf_query(A, n, d, X, q, argc, argv, 4);
    free(A);
    free(X);
    return 0;
  }
  {
    static const shape full[] = {
        {1, 1, 1, 0, 0},      {5, 3, 3, 0, 0},       {3, 5, 7, 0, 0},
        {4, 2, 2, 0, 0},      {37, 19, 23, 0, 0},    {100, 33, 33, 0, 0},
        {300, 70, 75, 0, 0},  {200, 64, 64, 64, 0.9}, {150, 40, 41, 12, 0.7},
        {2000, 160, 160, 160, 0.97}, {700, 300, 300, 0, 0},
        {64, 530, 530, 0, 0}};
    static const shape small[] = {
        {1, 1, 1, 0, 0},     {5, 3, 3, 0, 0},       {3, 5, 7, 0, 0},
        {37, 19, 23, 0, 0},  {200, 64, 64, 64, 0.9}, {150, 40, 41, 12, 0.7},
        {600, 96, 96, 96, 0.95}};
    static const shape qfull[] = {{1, 1, 1, 0, 0},       {7, 5, 5, 0, 0},
                                  {100, 33, 35, 0, 0},   {300, 70, 70, 20, 0.8},
                                  {1000, 128, 128, 0, 0}, {513, 48, 48, 0, 0}};
    static const shape qsmall[] = {{1, 1, 1, 0, 0}, {7, 5, 5, 0, 0},
                                   {100, 33, 35, 0, 0}, {300, 70, 70, 20, 0.8}};
    const shape *fs = quick ? small : full, *qs = quick ? qsmall : qfull;
    const size_t nf = quick ? sizeof small / sizeof small[0] : sizeof full / sizeof full[0];
    const size_t nq = quick ? sizeof qsmall / sizeof qsmall[0] : sizeof qfull / sizeof qfull[0];
    printf("factorisation:\n");
    for (i = 0; i < nf; ++i) test_factor(&fs[i], quick);
    printf("queries:\n");
    for (i = 0; i < nq; ++i) test_query(&qs[i], quick);
  }
  printf("errors, allocation failures, degenerate matrices, ties, defaults, "
         "determinism:\n");
  test_errors();
  test_alloc();
  test_degenerate();
  test_extreme_range(quick);
  test_ties();
  test_select_large();
  test_defaults();
  test_determinism();
  CHECK(ta.live == 0 && ta.bad == 0, "%ld block(s) live at exit, %ld bad", ta.live, ta.bad);
  printf("test_svd: %d checks, %d failed\n", g_checks, g_fails);
  return g_fails ? 1 : 0;
}
