/* bench_half.c - half-precision weights and the certified float32 top-k
   (issue 13's table).

     bench_half                         the exact path on f32, f16 and bf16
                                        weights and the certified top-k, on
                                        the GPT-2, Llama-2 and Llama-3 shapes
     bench_half agree NAME A.npy X.npy  certified vs the float32 exact path
                                        on a real head, every query
     bench_half synth                   the same on synthetic heads (random,
                                        and structured: low rank, varied row
                                        norms, repeated and one-ulp rows,
                                        queries aimed at rows)

   Shapes: each contender runs in one interleaved loop per shape, medians
   of BENCH_REPS (default 9) repetitions, thread CPU time (bench_util.h):
     f32 / f16 / bf16   adasm_exact_query, k = 1, best ISA (AVX-512; bf16
                        with vdpbf16ps where the CPU has it)
     bf16 plain         the AVX-512 conversion kernel (no vdpbf16ps)
     certified          adasm_certified_query, k = 1
     *-avx2             the same on the AVX2 kernels
     read-32 / read-16 / read-bf16 / read-copy
                        a SIMD read-sum of the float32, f16, bf16 matrix /
                        of the certified index's f16 copy: the very bytes
                        each contender streams (each ratio uses the read of
                        its own buffer), measured in the same loop
   Ratios are medians of per-repetition ratios (paired samples). A is
   uniform on [-1, 1], x has logits of standard deviation ~3 (as
   bench_gemv). Every run checks the answers: f16/bf16 top-1 against the
   float32 top-1 up to the 16-bit rounding, certified top-1 identical to
   the float32 path's.
   Agreement: for k = 1 and 5, the share of queries whose certified top-k
   list is the float32 exact path's (rows and order), the mean number of
   rows recomputed from float32, the largest reported log_norm_err, and
   the median of per-query time ratios exact / certified (the two run back
   to back on each query). */
#include "bench_util.h"

/* The library's own memory (the certified index's f16 copy) comes from the
   benchmark's allocator, as the matrices do: 64-byte aligned with huge
   pages requested. Otherwise the copy would sit in 4 KB pages and the
   float32 matrix it is compared with in huge pages, and the comparison
   would measure TLB misses (~15% at 50257x768), not the methods. */
static void *hb_malloc(size_t bytes) {
  void *p = NULL;
  if (bytes == 0) bytes = 64;
  if (posix_memalign(&p, 64, bytes) != 0) return NULL;
#if defined(__linux__) && defined(MADV_HUGEPAGE)
  if (bytes >= ((size_t)8 << 20)) {
    uintptr_t b = ((uintptr_t)p + 0x1FFFFFu) & ~(uintptr_t)0x1FFFFF;
    uintptr_t e = ((uintptr_t)p + bytes) & ~(uintptr_t)0x1FFFFF;
    if (e > b) (void)madvise((void *)b, (size_t)(e - b), MADV_HUGEPAGE);
  }
#endif
  return p;
}
#define ADASM_MALLOC(sz, ctx) ((void)(ctx), hb_malloc(sz))
#define ADASM_FREE(p, ctx) ((void)(ctx), free(p))
#define ADASOFTMAX_IMPLEMENTATION
#include "adasoftmax.h"
#define NPY_IMPLEMENTATION
#define NPY_STATIC
#include "../examples/npy.h"

typedef struct hb_ctx {
  adasm_matrix m;
  const adasm_kernels *k;
  const float *x;
  const bench_stream_kernels *sk;
  size_t read_floats; /* read contenders: floats to read from m.data */
  adasm_certified_index *ix;
  void *work;
  size_t work_bytes, rows_exact, calls, idx[5];
  float prob[5];
} hb_ctx;

static void run_exact(void *c, size_t call) {
  hb_ctx *g = (hb_ctx *)c;
  adasm_exact_params pr = adasm_exact_params_default();
  adasm_exact_result r;
  (void)call;
  memset(&r, 0, sizeof r);
  r.idx = g->idx;
  r.prob = g->prob;
  pr.kern = g->k;
  (void)adasm_exact_query(&g->m, &pr, g->x, NULL, 0, &r);
  bench_sink = r.log_norm;
}
static void run_cert(void *c, size_t call) {
  hb_ctx *g = (hb_ctx *)c;
  adasm_certified_params pr = adasm_certified_params_default();
  adasm_certified_result r;
  (void)call;
  memset(&r, 0, sizeof r);
  r.idx = g->idx;
  r.prob = g->prob;
  pr.kern = g->k;
  (void)adasm_certified_query(g->ix, &pr, g->x, g->work, g->work_bytes, &r);
  bench_sink = r.log_norm;
  g->rows_exact += r.rows_exact;
  g->calls++;
}
static void run_read(void *c, size_t call) {
  const hb_ctx *g = (const hb_ctx *)c;
  (void)call;
  bench_sink = (double)g->sk->read((const float *)g->m.data, g->read_floats);
}

typedef struct shape {
  size_t n, d;
  const char *what;
} shape;

enum { C_F32, C_F16, C_BF16, C_BF16P, C_CERT, C_F32_2, C_F16_2, C_BF16_2,
       C_CERT_2, C_R32, C_R16, C_RBF, C_RCERT, NC };
static const char *const cnames[NC] = {
    "f32", "f16", "bf16", "bf16 plain", "certified", "f32 avx2", "f16 avx2",
    "bf16 avx2", "certified avx2", "read-32", "read-16", "read-bf16",
    "read-copy"};
#define IS_READ(j) ((j) == C_R32 || (j) == C_R16 || (j) == C_RBF || (j) == C_RCERT)

static int shapes_main(void) {
  static const shape shapes[3] = {{50257, 768, "GPT-2 head"},
                                  {32000, 4096, "Llama-2 head"},
                                  {128256, 4096, "Llama-3 head"}};
  const int quick = bench_env_long("BENCH_QUICK", 0) != 0;
  int reps = (int)bench_env_long("BENCH_REPS", quick ? 3 : 9);
  const bench_stream_kernels sk = bench_stream_best();
  const adasm_kernels *k512 = NULL, *k2 = NULL, *kplain = NULL;
  double ms[3][NC], ratio[3][8], rows[3][2];
  char check[3][160];
  int done[3] = {0, 0, 0};
  int si, j;
  if (reps < 1) reps = 1;
  if (reps > BENCH_MAX_REPS) reps = BENCH_MAX_REPS;
  if (adasm_kernels_get(ADASM_ISA_AVX512, &k512) != ADASM_OK) k512 = NULL;
  if (adasm_kernels_get(ADASM_ISA_AVX2, &k2) != ADASM_OK) k2 = NULL;
#if defined(ADASM__HAVE_AVX512)
  if (k512) kplain = &adasm__kernels_avx512;
#endif
  printf("## Half-precision weights and the certified top-k: adasoftmax %d.%d.%d\n\n",
         ADASOFTMAX_VERSION_MAJOR, ADASOFTMAX_VERSION_MINOR, ADASOFTMAX_VERSION_PATCH);
  printf("best ISA %s%s; reps = %d (medians); %s\n\n", adasm_isa_name(adasm_isa_best()),
         k512 && k512 != kplain ? " (vdpbf16ps for bf16)" : "", reps, bench_clock_name());
  fflush(stdout);
  for (si = 0; si < 3; ++si) {
    const shape *s = &shapes[si];
    const size_t n = s->n, d = s->d, nd = n * d;
    const size_t need = nd * 4 + nd * 2 * 3 + ((size_t)1 << 30);
    const size_t avail = bench_mem_available();
    float *A, *x;
    uint16_t *H, *B;
    adasm_certified_index ix;
    adasm_matrix m32;
    hb_ctx g[NC];
    bench_contender c[NC];
    size_t i, nc = 0, ref1, r1;
    int map[NC];
    if (avail != 0 && avail < need) {
      snprintf(check[si], sizeof check[si], "skipped: %.0f MiB available", (double)avail / 1048576.0);
      continue;
    }
    A = (float *)bench_alloc(nd * 4);
    H = (uint16_t *)bench_alloc(nd * 2);
    B = (uint16_t *)bench_alloc(nd * 2);
    x = (float *)bench_alloc(d * 4);
    bench_fill_uniform(A, nd, 0x5eed0000u + (uint64_t)si, -1.0f, 1.0f);
    bench_fill_uniform(x, d, 0x5eed1000u + (uint64_t)si, -1.0f, 1.0f);
    for (i = 0; i < d; ++i) x[i] *= 9.0f / sqrtf((float)d);
    (void)adasm_convert(NULL, A, ADASM_F32, nd, H, ADASM_F16);
    (void)adasm_convert(NULL, A, ADASM_F32, nd, B, ADASM_BF16);
    m32 = adasm_matrix_f32(A, n, d, d);
    if (adasm_certified_build(&ix, &m32, NULL) != ADASM_OK) {
      fprintf(stderr, "bench_half: certified build failed\n");
      return 1;
    }
    for (j = 0; j < NC; ++j) {
      const adasm_kernels *kk = j >= C_F32_2 && j <= C_CERT_2 ? k2 : k512;
      memset(&g[j], 0, sizeof g[j]);
      g[j].x = x;
      g[j].sk = &sk;
      g[j].ix = &ix;
      g[j].k = kk;
      map[j] = -1;
      if (!kk && !IS_READ(j)) continue;
      switch (j) {
      case C_F32: case C_F32_2: case C_CERT: case C_CERT_2: case C_R32:
        g[j].m = m32; break;
      case C_F16: case C_F16_2: g[j].m = adasm_matrix_f16(H, n, d, d); break;
      case C_BF16: case C_BF16_2: g[j].m = adasm_matrix_bf16(B, n, d, d); break;
      case C_BF16P:
        if (!kplain) continue;
        g[j].m = adasm_matrix_bf16(B, n, d, d);
        g[j].k = kplain;
        break;
      /* each read reads the very buffer its contenders read: pages and
         placement differ between allocations by up to ~30% here */
      case C_R16: g[j].m = adasm_matrix_f16(H, n, d, d); break;
      case C_RBF: g[j].m = adasm_matrix_bf16(B, n, d, d); break;
      case C_RCERT: g[j].m = adasm_matrix_f16(ix.h, n, d, d); break;
      default: break;
      }
      if (j == C_CERT || j == C_CERT_2) {
        adasm_certified_params cp = adasm_certified_params_default();
        (void)adasm_certified_workspace_size(&ix, &cp, &g[j].work_bytes);
        g[j].work = bench_alloc(g[j].work_bytes);
      }
      g[j].read_floats = j == C_R32 ? nd : nd / 2;
      c[nc].name = cnames[j];
      c[nc].ctx = &g[j];
      c[nc].iters = 0;
      c[nc].run = IS_READ(j) ? run_read : (j == C_CERT || j == C_CERT_2 ? run_cert : run_exact);
      map[j] = (int)nc++;
    }
    bench_measure(c, nc, reps, 2e6, NULL);
    for (j = 0; j < NC; ++j) ms[si][j] = map[j] >= 0 ? c[map[j]].median * 1e-6 : NAN;
#define PR(a, b) (map[a] >= 0 && map[b] >= 0 ? bench_paired_ratio(c[map[a]].samples, c[map[b]].samples, reps) : NAN)
    ratio[si][0] = PR(C_F32, C_R32);
    ratio[si][1] = PR(C_F16, C_R16);
    ratio[si][2] = PR(C_BF16, C_RBF);
    ratio[si][3] = PR(C_BF16P, C_RBF);
    ratio[si][4] = PR(C_CERT, C_RCERT); /* certified / a read of its copy */
    ratio[si][5] = PR(C_F32, C_F16);
    ratio[si][6] = PR(C_F16_2, C_R16);
    ratio[si][7] = PR(C_BF16_2, C_RBF);
#undef PR
    rows[si][0] = g[C_CERT].calls ? (double)g[C_CERT].rows_exact / (double)g[C_CERT].calls : NAN;
    rows[si][1] = map[C_CERT] >= 0 ? bench_paired_ratio(c[map[C_F32]].samples, c[map[C_CERT]].samples, reps) : NAN;
    /* checks (untimed): the 16-bit top-1 is the float32 top-1 or within
       the 16-bit rounding of it; certified top-1 is float32's exactly */
    ref1 = g[C_F32].idx[0];
    r1 = g[C_CERT].idx[0];
    {
      double zr = 0, z16 = 0, zb = 0;
      const size_t a16 = g[C_F16].idx[0], abf = g[C_BF16].idx[0];
      for (i = 0; i < d; ++i) {
        zr += (double)A[ref1 * d + i] * (double)x[i];
        z16 += (double)A[a16 * d + i] * (double)x[i];
        zb += (double)A[abf * d + i] * (double)x[i];
      }
      snprintf(check[si], sizeof check[si], "%s; f16 top-1 %s; bf16 top-1 %s",
               r1 == ref1 ? "certified = f32" : "CERTIFIED DIFFERS",
               a16 == ref1 ? "= f32" : (zr - z16 < 0.05 ? "near-tie" : "OFF"),
               abf == ref1 ? "= f32" : (zr - zb < 0.3 ? "near-tie" : "OFF"));
    }
    done[si] = 1;
    fprintf(stderr, "bench_half: %zux%zu done\n", n, d);
    for (j = 0; j < NC; ++j) free(g[j].work);
    adasm_certified_free(&ix);
    free(A);
    free(H);
    free(B);
    free(x);
  }
  printf("| shape | f32 ms | f16 ms | bf16 ms | bf16 plain ms | certified ms | read-32 ms | read-16 ms "
         "| f32/read-32 | f16/read-16 | bf16/read-16 | bf16 plain/read-16 | certified/read-copy "
         "| f32/f16 | f32/certified | certified rows recomputed | f16 avx2/read-16 | bf16 avx2/read-16 "
         "| check |\n");
  printf("|:--|--:|--:|--:|--:|--:|--:|--:|--:|--:|--:|--:|--:|--:|--:|--:|--:|--:|:--|\n");
  for (si = 0; si < 3; ++si) {
    if (!done[si]) {
      printf("| %zux%zu | | | | | | | | | | | | | | | | | | %s |\n", shapes[si].n, shapes[si].d, check[si]);
      continue;
    }
    printf("| %zux%zu | %.3f | %.3f | %.3f | %.3f | %.3f | %.3f | %.3f | %.2f | %.2f | %.2f | %.2f "
           "| %.2f | %.2f | %.2f | %.2f | %.2f | %.2f | %s |\n",
           shapes[si].n, shapes[si].d, ms[si][C_F32], ms[si][C_F16], ms[si][C_BF16], ms[si][C_BF16P],
           ms[si][C_CERT], ms[si][C_R32], ms[si][C_R16], ratio[si][0], ratio[si][1], ratio[si][2],
           ratio[si][3], ratio[si][4], ratio[si][5], rows[si][1], rows[si][0], ratio[si][6],
           ratio[si][7], check[si]);
  }
  printf("\nAVX2 (same loop): ");
  for (si = 0; si < 3; ++si)
    if (done[si])
      printf("%zux%zu f32 %.3f, f16 %.3f, bf16 %.3f, certified %.3f ms; ", shapes[si].n, shapes[si].d,
             ms[si][C_F32_2], ms[si][C_F16_2], ms[si][C_BF16_2], ms[si][C_CERT_2]);
  printf("\n\nTargets (medians of paired ratios):\n");
  for (si = 0; si < 3; ++si) {
    if (!done[si]) continue;
    printf("- %zux%zu f16/read-16 = %.2f, bf16/read-16 = %.2f (target <= 1.10): %s; "
           "AVX2 %.2f / %.2f (target <= 1.20): %s\n",
           shapes[si].n, shapes[si].d, ratio[si][1], ratio[si][2],
           ratio[si][1] <= 1.10 && ratio[si][2] <= 1.10 ? "met" : "MISSED", ratio[si][6],
           ratio[si][7], ratio[si][6] <= 1.20 && ratio[si][7] <= 1.20 ? "met" : "MISSED");
  }
  if (done[0])
    printf("- 50257x768 f32/certified = %.2f (target >= 1.6): %s\n", rows[0][1],
           rows[0][1] >= 1.6 ? "met" : "MISSED");
  printf("\n");
  bench_print_load("bench_half");
  return 0;
}

/* ---- agreement -------------------------------------------------------------- */
typedef struct agree_row {
  size_t q, same[2];
  double rows[2], err[2], speed[2], cert_ms[2], exact_ms[2];
} agree_row;

/* certified vs exact on every query (rows of X), k = 1 and 5. */
static void agree(const char *name, const float *A, size_t n, size_t d, const float *X,
                  size_t q) {
  adasm_matrix m = adasm_matrix_f32(A, n, d, d);
  adasm_certified_index ix;
  agree_row r;
  double *tr, *tc, *te;
  size_t t, kk;
  static const size_t ks[2] = {1, 5};
  memset(&r, 0, sizeof r);
  r.q = q;
  if (adasm_certified_build(&ix, &m, NULL) != ADASM_OK) {
    printf("| %s | build failed | |\n", name);
    return;
  }
  tr = (double *)bench_alloc(q * sizeof(double));
  tc = (double *)bench_alloc(q * sizeof(double));
  te = (double *)bench_alloc(q * sizeof(double));
  for (kk = 0; kk < 2; ++kk) {
    adasm_certified_params cp = adasm_certified_params_default();
    adasm_exact_params ep = adasm_exact_params_default();
    size_t wb, ic[5], ie[5];
    float pc[5], pe[5];
    void *work;
    cp.k = ep.k = ks[kk] < n ? ks[kk] : n;
    (void)adasm_certified_workspace_size(&ix, &cp, &wb);
    work = bench_alloc(wb);
    for (t = 0; t < q; ++t) {
      adasm_certified_result cr;
      adasm_exact_result er;
      double t0, t1, t2;
      memset(&cr, 0, sizeof cr);
      memset(&er, 0, sizeof er);
      cr.idx = ic; cr.prob = pc;
      er.idx = ie; er.prob = pe;
      if (t % 2) { /* alternate who goes first */
        t0 = bench_now_ns();
        (void)adasm_exact_query(&m, &ep, X + t * d, NULL, 0, &er);
        t1 = bench_now_ns();
        (void)adasm_certified_query(&ix, &cp, X + t * d, work, wb, &cr);
        t2 = bench_now_ns();
        te[t] = t1 - t0;
        tc[t] = t2 - t1;
      } else {
        t0 = bench_now_ns();
        (void)adasm_certified_query(&ix, &cp, X + t * d, work, wb, &cr);
        t1 = bench_now_ns();
        (void)adasm_exact_query(&m, &ep, X + t * d, NULL, 0, &er);
        t2 = bench_now_ns();
        tc[t] = t1 - t0;
        te[t] = t2 - t1;
      }
      tr[t] = te[t] / tc[t];
      r.same[kk] += memcmp(ic, ie, cp.k * sizeof(size_t)) == 0;
      r.rows[kk] += (double)cr.rows_exact;
      if (cr.log_norm_err > r.err[kk]) r.err[kk] = cr.log_norm_err;
    }
    r.rows[kk] /= (double)q;
    r.speed[kk] = bench_median(tr, q);
    r.cert_ms[kk] = bench_median(tc, q) * 1e-6;
    r.exact_ms[kk] = bench_median(te, q) * 1e-6;
    printf("| %s | %zu x %zu | %zu | %zu | %zu / %zu (%.1f%%) | %.2f | %.2g | %.3f | %.3f | %.2f |\n",
           name, n, d, q, cp.k, r.same[kk], q, 100.0 * (double)r.same[kk] / (double)q,
           r.rows[kk], r.err[kk], r.exact_ms[kk], r.cert_ms[kk], r.speed[kk]);
    fflush(stdout);
    free(work);
  }
  free(tr);
  free(tc);
  free(te);
  adasm_certified_free(&ix);
}

static void agree_header(void) {
  printf("| head | n x d | queries | k | identical top-k (rows and order) | rows recomputed "
         "(mean) | max log_norm_err | exact ms | certified ms | exact/certified |\n");
  printf("|:--|:--|--:|--:|--:|--:|--:|--:|--:|--:|\n");
}

static int agree_main(const char *name, const char *pa, const char *px) {
  npy_array A, X;
  char err[256];
  if (npy_read(pa, NPY_F4, 2, &A, err, sizeof err) != NPY_OK ||
      npy_read(px, NPY_F4, 2, &X, err, sizeof err) != NPY_OK) {
    fprintf(stderr, "bench_half: %s\n", err);
    return 1;
  }
  if (X.shape[1] != A.shape[1]) {
    fprintf(stderr, "bench_half: d mismatch\n");
    return 1;
  }
  agree(name, (const float *)A.data, A.shape[0], A.shape[1], (const float *)X.data, X.shape[0]);
  npy_free(&A);
  npy_free(&X);
  return 0;
}

/* Synthetic heads: "random" as the shapes table; "structured" shaped like
   a trained head, with the ties a certificate must get right: rank-32
   structure plus noise, row norms spread over a factor 8, 2% of the rows
   repeated and 2% repeated with one entry moved by one ulp, queries aimed
   at a row, every other one at a repeated row (the top-k is then decided
   by exact ties and one-ulp near-ties). */
static int synth_main(void) {
  const size_t n = 50257, d = 768, r = 32;
  const size_t q = (size_t)bench_env_long("BENCH_SYNTH_QUERIES", 300);
  float *A = (float *)bench_alloc(n * d * 4), *X = (float *)bench_alloc(q * d * 4);
  float *U = (float *)bench_alloc(n * r * 4), *V = (float *)bench_alloc(r * d * 4);
  size_t *copies = (size_t *)bench_alloc(q * sizeof(size_t));
  bench_rng g;
  size_t i, j, t;
  bench_fill_uniform(A, n * d, 11, -1.0f, 1.0f);
  bench_fill_uniform(X, q * d, 12, -1.0f, 1.0f);
  for (i = 0; i < q * d; ++i) X[i] *= 9.0f / sqrtf((float)d);
  agree("random", A, n, d, X, q);
  /* structured */
  bench_fill_uniform(U, n * r, 13, -1.0f, 1.0f);
  bench_fill_uniform(V, r * d, 14, -1.0f, 1.0f);
  bench_fill_uniform(A, n * d, 15, -0.1f, 0.1f);
  g.s = 16;
  for (i = 0; i < n; ++i) {
    const float scale = 0.25f + 1.75f * (float)(bench_rng_next(&g) >> 40) / 16777216.0f;
    for (j = 0; j < d; ++j) {
      float s = 0;
      size_t k;
      for (k = 0; k < r; ++k) s += U[i * r + k] * V[k * d + j];
      A[i * d + j] = scale * (A[i * d + j] + s / sqrtf((float)r));
    }
  }
  for (i = 0; i < n / 50; ++i) { /* repeated rows and one-ulp neighbours */
    const size_t src = (size_t)(bench_rng_next(&g) % n), dst = (size_t)(bench_rng_next(&g) % n);
    const size_t dst2 = (size_t)(bench_rng_next(&g) % n);
    if (i < q) copies[i] = dst;
    uint32_t u;
    memcpy(A + dst * d, A + src * d, d * 4);
    memcpy(A + dst2 * d, A + src * d, d * 4);
    memcpy(&u, A + dst2 * d + i % d, 4);
    u += (i & 1) ? 1u : (uint32_t)-1;
    memcpy(A + dst2 * d + i % d, &u, 4);
  }
  for (t = 0; t < q; ++t) { /* aimed at a row, with noise; every other
                                 query at a repeated row (exact ties) */
    const size_t row = t % 2 && t / 2 < n / 50 ? copies[t / 2] : (size_t)(bench_rng_next(&g) % n);
    for (j = 0; j < d; ++j) X[t * d + j] = 6.0f * A[row * d + j] + 0.5f * X[t * d + j];
  }
  agree("structured", A, n, d, X, q);
  free(A);
  free(X);
  free(U);
  free(V);
  free(copies);
  return 0;
}

int main(int argc, char **argv) {
  if (argc >= 2 && strcmp(argv[1], "agree") == 0) {
    if (argc != 5) {
      fprintf(stderr, "usage: bench_half agree NAME A.npy X.npy\n");
      return 2;
    }
    if (getenv("BENCH_NO_HEADER") == NULL) agree_header();
    return agree_main(argv[2], argv[3], argv[4]);
  }
  if (argc >= 2 && strcmp(argv[1], "synth") == 0) {
    agree_header();
    return synth_main();
  }
  if (argc >= 2) {
    fprintf(stderr, "usage: bench_half [agree NAME A.npy X.npy | synth]\n");
    return 2;
  }
  return shapes_main();
}
