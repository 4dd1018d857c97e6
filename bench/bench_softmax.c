/* bench_softmax.c - exact softmax kernels vs XNNPACK and vs memory bandwidth.

   For lengths 1e3 .. 6.4e7 it times adasm_softmax_ex with every algorithm on
   the best ISA (and, for the record, on AVX2 and scalar), XNNPACK's f32
   softmax (the Debian package: what a user gets without us), and skeletons
   of the same pass structures doing trivial arithmetic. Two data sets:
     hot:  one input reused (n <= 256K elements: in cache);
     cold: a rotation over 512 MiB of inputs and 512 MiB of outputs, shared by
           all contenders, so every call starts out of cache.
   Prints markdown tables of ns/element, ratios and |sum(p) - 1| (in double),
   the online algorithm's first pass (adasm_logsumexp) against a read-only
   pass, and the targets as measured (never asserted).
   Run through bench/run.sh. Environment: BENCH_REPS (default 7),
   BENCH_QUICK=1 (3 reps, lengths up to 4e6: to check the harness only),
   BENCH_CLOCK=wall (default: thread CPU time, see bench_util.h).
   Build with -DBENCH_NO_XNNPACK where XNNPACK is missing. */
#include "bench_util.h"

#define ADASOFTMAX_IMPLEMENTATION
#include "adasoftmax.h"

#ifndef BENCH_NO_XNNPACK
#include <xnnpack.h>
#endif

#define N_LENGTHS 9
static const size_t lengths[N_LENGTHS] = {1000,    4000,     16000,
                                          64000,   256000,   1000000,
                                          4000000, 16000000, 64000000};
#define HOT_MAX 256000u              /* "in cache" lengths */
#define POOL_BYTES ((size_t)512 << 20) /* per side: inputs, outputs */

#define N_ALGOS 4
static const adasm_softmax_algo algos[N_ALGOS] = {
    ADASM_SOFTMAX_AUTO, ADASM_SOFTMAX_THREE_PASS, ADASM_SOFTMAX_TWO_PASS,
    ADASM_SOFTMAX_ONLINE};
static const char *const algo_names[N_ALGOS] = {"AUTO", "3-pass", "2-pass",
                                                "online"};

/* One case: n elements, nbuf buffers `stride` floats apart in each pool.
   Call number c uses buffer c % nbuf (hot: nbuf = 1). */
typedef struct sm_case {
  const float *in;
  float *out;
  size_t n, stride, nbuf;
} sm_case;

static const float *case_in(const sm_case *c, size_t call) {
  return c->in + (call % c->nbuf) * c->stride;
}
static float *case_out(const sm_case *c, size_t call) {
  return c->out + (call % c->nbuf) * c->stride;
}

typedef struct sm_ctx {
  const sm_case *cs;
  const adasm_kernels *k;
  adasm_softmax_algo algo;
  const bench_stream_kernels *sk;
  int nt; /* skeletons: non-temporal stores */
#ifndef BENCH_NO_XNNPACK
  xnn_operator_t op;
#endif
} sm_ctx;

static void run_ours(void *p, size_t call) {
  const sm_ctx *x = (const sm_ctx *)p;
  (void)adasm_softmax_ex(x->k, x->algo, case_in(x->cs, call), x->cs->n,
                         case_out(x->cs, call));
}

#ifndef BENCH_NO_XNNPACK
static void run_xnn(void *p, size_t call) {
  const sm_ctx *x = (const sm_ctx *)p;
  (void)xnn_setup_softmax_nc_f32(x->op, 1, case_in(x->cs, call),
                                 case_out(x->cs, call), NULL);
  (void)xnn_run_operator(x->op, NULL);
}
#endif

/* Skeleton of the three-pass structure: read z; read z, write p; read p,
   write p. Trivial arithmetic, same bytes moved as a three-pass softmax. */
static void run_skel3(void *p, size_t call) {
  const sm_ctx *x = (const sm_ctx *)p;
  const float *z = case_in(x->cs, call);
  float *o = case_out(x->cs, call);
  const size_t n = x->cs->n;
  float s = x->sk->read(z, n);
  float inv = 1.0f / (1.0f + fabsf(s));
  (x->nt ? x->sk->copy_nt : x->sk->copy)(z, o, n, inv);
  (x->nt ? x->sk->scale_nt : x->sk->scale)(o, n, 0.5f);
}

/* Pass 1 of the online algorithm alone: adasm_logsumexp (best ISA). */
static void run_lse(void *p, size_t call) {
  const sm_ctx *x = (const sm_ctx *)p;
  double lse = 0;
  (void)adasm_logsumexp(x->k, case_in(x->cs, call), x->cs->n, &lse);
  bench_sink = lse;
}

/* Skeleton of a read-only pass (what logsumexp could cost at best). */
static void run_skel1(void *p, size_t call) {
  const sm_ctx *x = (const sm_ctx *)p;
  bench_sink = (double)x->sk->read(case_in(x->cs, call), x->cs->n);
}

/* Skeleton of the two-pass / online structure: read z; read z, write p. */
static void run_skel2(void *p, size_t call) {
  const sm_ctx *x = (const sm_ctx *)p;
  const float *z = case_in(x->cs, call);
  const size_t n = x->cs->n;
  float s = x->sk->read(z, n);
  (x->nt ? x->sk->copy_nt : x->sk->copy)(z, case_out(x->cs, call), n,
                                         1.0f / (1.0f + fabsf(s)));
}

static double sum_err(const float *p, size_t n) {
  double s = 0;
  size_t i;
  for (i = 0; i < n; i++) s += (double)p[i];
  return fabs(s - 1.0);
}

/* Contender slots of one case. */
#define MAX_ISAS 3
enum {
  C_OURS = 0, /* + isa * N_ALGOS + algo */
  C_XNN = MAX_ISAS * N_ALGOS,
  C_SKEL3,
  C_SKEL3_NT,
  C_SKEL2,
  C_SKEL2_NT,
  C_LSE,   /* logsumexp on the best ISA: the online algorithm's pass 1 */
  C_SKEL1, /* read-only skeleton */
  C_COUNT
};

typedef struct sm_result {
  size_t n;
  int hot;
  double ns[C_COUNT];  /* ns per call, median; NaN = not run */
  double err[C_COUNT]; /* |sum - 1|; NaN = not applicable */
  int failed[C_COUNT]; /* a call returned an error */
  double smp[C_COUNT][BENCH_MAX_REPS]; /* ns per call, per repetition */
  /* Skeletons per repetition: the better of plain and non-temporal stores. */
  double skel3[BENCH_MAX_REPS], skel2[BENCH_MAX_REPS];
} sm_result;

static int reps; /* repetitions of every measurement */

/* Paired ratio of two slots (or a slot and a skeleton array). */
static double ratio(const sm_result *q, int a, const double *b) {
  if (q->ns[a] != q->ns[a] || b[0] != b[0]) return NAN;
  return bench_paired_ratio(q->smp[a], b, reps);
}

static const char *fmt_nsel(char *buf, size_t cap, double ns, size_t n) {
  if (ns != ns) snprintf(buf, cap, "-");
  else snprintf(buf, cap, "%.3f", ns / (double)n);
  return buf;
}
static const char *fmt_ratio(char *buf, size_t cap, double x) {
  if (x != x) snprintf(buf, cap, "-");
  else snprintf(buf, cap, "%.2f", x);
  return buf;
}
static const char *fmt_err(char *buf, size_t cap, double e) {
  if (e != e) snprintf(buf, cap, "-");
  else snprintf(buf, cap, "%.1e", e);
  return buf;
}
static double min2(double a, double b) {
  if (a != a) return b;
  if (b != b) return a;
  return a < b ? a : b;
}

int main(void) {
  const int quick = bench_env_long("BENCH_QUICK", 0) != 0;
  const size_t max_len = quick ? 4000000u : lengths[N_LENGTHS - 1];
  const bench_stream_kernels sk = bench_stream_best();
  const adasm_kernels *ks[MAX_ISAS];
  adasm_isa isas[MAX_ISAS];
  int nisa = 0, have_xnn = 0, i;
  float *pool_in, *pool_out;
  bench_bandwidth dram;
  static sm_result res[2 * N_LENGTHS];
  int nres = 0, r;
  char b1[32], b2[32], b3[32], b4[32], b5[32], b6[32], b7[32], b8[32],
      b9[32];

  reps = (int)bench_env_long("BENCH_REPS", quick ? 3 : 7);
  if (reps < 1) reps = 1;
  if (reps > BENCH_MAX_REPS) reps = BENCH_MAX_REPS;

  /* Kernel sets: the best, then AVX2 and scalar for the record. */
  {
    const adasm_isa wanted[MAX_ISAS] = {adasm_isa_best(), ADASM_ISA_AVX2,
                                        ADASM_ISA_SCALAR};
    for (i = 0; i < MAX_ISAS; i++) {
      const adasm_kernels *k = NULL;
      int j, dup = 0;
      for (j = 0; j < nisa; j++) dup |= isas[j] == wanted[i];
      if (dup || adasm_kernels_get(wanted[i], &k) != ADASM_OK) continue;
      isas[nisa] = wanted[i];
      ks[nisa++] = k;
    }
  }
#ifndef BENCH_NO_XNNPACK
  have_xnn = xnn_initialize(NULL) == xnn_status_success;
  if (!have_xnn) fprintf(stderr, "bench_softmax: xnn_initialize failed\n");
#endif
  (void)have_xnn; /* unused without XNNPACK */

  pool_in = (float *)bench_alloc(2 * POOL_BYTES);
  pool_out = pool_in + POOL_BYTES / sizeof(float);
  /* DRAM bandwidth over the whole 1 GiB block (>> any real LLC here). */
  dram = bench_bandwidth_probe(&sk, pool_in, 2 * POOL_BYTES, reps < 3 ? 3 : reps);
  /* Logits uniform on [-10, 10): a realistic spread for the exp. */
  bench_fill_uniform(pool_in, POOL_BYTES / sizeof(float), 12345u, -10.0f,
                     10.0f);

  printf("## softmax: adasoftmax %d.%d.%d vs XNNPACK (Debian) and the memory "
         "bandwidth\n\n",
         ADASOFTMAX_VERSION_MAJOR, ADASOFTMAX_VERSION_MINOR,
         ADASOFTMAX_VERSION_PATCH);
  printf("ours = adasm_softmax_ex on %s (best ISA); probes and skeletons use "
         "%s; reps = %d (medians); %s; LLC as reported by the OS: %.0f MiB\n",
         adasm_isa_name(isas[0]), sk.isa, reps, bench_clock_name(),
         (double)bench_llc_bytes() / 1048576.0);
  bench_print_bandwidth("DRAM probe", &dram);
  printf("\n");
  fflush(stdout);

  for (i = 0; i < N_LENGTHS; i++) {
    const size_t n = lengths[i];
    int hot;
    if (n > max_len) break;
    for (hot = 1; hot >= 0; hot--) {
      sm_case cs;
      sm_ctx ctx[C_COUNT];
      bench_contender c[C_COUNT];
      int slot_of[C_COUNT];
      size_t nc = 0, shared = 0, j;
      int a, s;
      sm_result *out;
      if (hot && n > HOT_MAX) continue; /* "hot" only where it fits */
      out = &res[nres++];
      cs.in = pool_in;
      cs.out = pool_out;
      cs.n = n;
      cs.stride = (n + 15u) & ~(size_t)15u; /* 64-byte aligned buffers */
      cs.nbuf = hot ? 1 : POOL_BYTES / sizeof(float) / cs.stride;
      out->n = n;
      out->hot = hot;
      for (j = 0; j < C_COUNT; j++) {
        out->ns[j] = out->err[j] = NAN;
        out->failed[j] = 0;
        memset(&ctx[j], 0, sizeof ctx[j]);
        ctx[j].cs = &cs;
        ctx[j].sk = &sk;
      }
      /* Our kernels: check the return code once, outside the timing. */
      for (s = 0; s < nisa; s++) {
        for (a = 0; a < N_ALGOS; a++) {
          const int slot = C_OURS + s * N_ALGOS + a;
          ctx[slot].k = ks[s];
          ctx[slot].algo = algos[a];
          if (adasm_softmax_ex(ks[s], algos[a], cs.in, n, cs.out) !=
              ADASM_OK) {
            out->failed[slot] = 1;
            continue;
          }
          c[nc].name = algo_names[a];
          c[nc].run = run_ours;
          c[nc].ctx = &ctx[slot];
          c[nc].iters = 0;
          slot_of[nc++] = slot;
        }
      }
#ifndef BENCH_NO_XNNPACK
      if (have_xnn &&
          xnn_create_softmax_nc_f32(n, n, n, 0, &ctx[C_XNN].op) ==
              xnn_status_success) {
        c[nc].name = "xnnpack";
        c[nc].run = run_xnn;
        c[nc].ctx = &ctx[C_XNN];
        c[nc].iters = 0;
        slot_of[nc++] = C_XNN;
      } else if (have_xnn) {
        out->failed[C_XNN] = 1;
      }
#endif
      ctx[C_LSE].k = ks[0];
      c[nc].name = "logsumexp";
      c[nc].run = run_lse;
      c[nc].ctx = &ctx[C_LSE];
      c[nc].iters = 0;
      slot_of[nc++] = C_LSE;
      c[nc].name = "skeleton";
      c[nc].run = run_skel1;
      c[nc].ctx = &ctx[C_SKEL1];
      c[nc].iters = 0;
      slot_of[nc++] = C_SKEL1;
      for (s = 0; s < 4; s++) { /* last: skel3, skel3 nt, skel2, skel2 nt */
        const int slot = C_SKEL3 + s;
        ctx[slot].nt = s & 1;
        c[nc].name = "skeleton";
        c[nc].run = s < 2 ? run_skel3 : run_skel2;
        c[nc].ctx = &ctx[slot];
        c[nc].iters = 0;
        slot_of[nc++] = slot;
      }

      bench_measure(c, nc, reps, hot ? 2e6 : 5e6, hot ? NULL : &shared);

      for (j = 0; j < (size_t)reps; j++) {
        out->skel3[j] = min2(c[nc - 4].samples[j], c[nc - 3].samples[j]);
        out->skel2[j] = min2(c[nc - 2].samples[j], c[nc - 1].samples[j]);
      }
      for (j = 0; j < nc; j++) {
        const int slot = slot_of[j];
        out->ns[slot] = c[j].median;
        memcpy(out->smp[slot], c[j].samples, sizeof(double) * (size_t)reps);
        if (slot <= C_XNN) { /* accuracy on buffer 0, after the timing */
          c[j].run(c[j].ctx, 0);
          out->err[slot] = sum_err(cs.out, n);
        }
      }
#ifndef BENCH_NO_XNNPACK
      if (ctx[C_XNN].op != NULL) xnn_delete_operator(ctx[C_XNN].op);
#endif
      fprintf(stderr, "bench_softmax: n=%zu %s done\n", n, hot ? "hot" : "cold");
    }
  }

  /* ---- Main table: AUTO on the best ISA against XNNPACK and the floor. */
  printf("| n | data | ours ns/el | XNNPACK ns/el | XNNPACK/ours | "
         "skeleton ns/el | ours/skeleton | floor ns/el | ours/floor | "
         "ours \\|sum-1\\| | XNNPACK \\|sum-1\\| |\n");
  printf("|---:|:---|---:|---:|---:|---:|---:|---:|---:|---:|---:|\n");
  for (r = 0; r < nres; r++) {
    sm_result *q = &res[r];
    const double ours = q->ns[C_OURS];
    double tmp[BENCH_MAX_REPS];
    double skel2, xnn_ratio = NAN, floor2 = NAN;
    memcpy(tmp, q->skel2, sizeof(double) * (size_t)reps);
    skel2 = bench_median(tmp, (size_t)reps);
    if (q->ns[C_XNN] == q->ns[C_XNN] && ours == ours)
      xnn_ratio = bench_paired_ratio(q->smp[C_XNN], q->smp[C_OURS], reps);
    /* Model floor (cold only): one read pass at the read bandwidth plus one
       read+write pass at the better copy bandwidth. */
    if (!q->hot)
      floor2 = (double)q->n * 4.0 / dram.read_gbs +
               (double)q->n * 8.0 /
                   (dram.copy_gbs > dram.copy_nt_gbs ? dram.copy_gbs
                                                     : dram.copy_nt_gbs);
    printf("| %zu | %s | %s%s | %s%s | %s | %s | %s | %s | %s | %s | %s |\n",
           q->n, q->hot ? "hot" : "cold",
           fmt_nsel(b1, sizeof b1, ours, q->n),
           q->failed[C_OURS] ? " (error)" : "",
           fmt_nsel(b2, sizeof b2, q->ns[C_XNN], q->n),
           q->failed[C_XNN] ? " (error)" : "",
           fmt_ratio(b3, sizeof b3, xnn_ratio),
           fmt_nsel(b4, sizeof b4, skel2, q->n),
           fmt_ratio(b5, sizeof b5, ratio(q, C_OURS, q->skel2)),
           fmt_nsel(b6, sizeof b6, floor2, q->n),
           fmt_ratio(b7, sizeof b7, ours / floor2),
           fmt_err(b8, sizeof b8, q->err[C_OURS]),
           fmt_err(b9, sizeof b9, q->err[C_XNN]));
  }
  printf("\nours = AUTO on %s. skeleton = the fewest passes an exact softmax "
         "that writes p needs (read z; read z + write p) with trivial "
         "arithmetic, best of plain and non-temporal stores, timed in the same "
         "loop. floor = the same bytes at the DRAM probe's read and copy "
         "bandwidth (cold data only). Ratios are medians of per-repetition "
         "ratios. ours/x > 1: ours is slower than x; XNNPACK/ours > 1: ours "
         "is faster than XNNPACK.\n\n",
         adasm_isa_name(isas[0]));

  /* ---- Details: every algorithm and ISA, and each algorithm against the
     skeleton of its own pass structure. */
  printf("| n | data | kernels | AUTO | 3-pass | 2-pass | online | "
         "3-pass/skel3 | 2-pass/skel2 | online/skel2 | max \\|sum-1\\| |\n");
  printf("|---:|:---|:---|---:|---:|---:|---:|---:|---:|---:|---:|\n");
  for (r = 0; r < nres; r++) {
    const sm_result *q = &res[r];
    double t3[BENCH_MAX_REPS], t2[BENCH_MAX_REPS], skel3, skel2;
    int s;
    memcpy(t3, q->skel3, sizeof(double) * (size_t)reps);
    memcpy(t2, q->skel2, sizeof(double) * (size_t)reps);
    skel3 = bench_median(t3, (size_t)reps);
    skel2 = bench_median(t2, (size_t)reps);
    for (s = 0; s < nisa; s++) {
      const int o = C_OURS + s * N_ALGOS;
      double emax = NAN;
      int a;
      for (a = 0; a < N_ALGOS; a++)
        if (q->err[o + a] == q->err[o + a] && !(emax >= q->err[o + a]))
          emax = q->err[o + a];
      printf("| %zu | %s | %s | %s | %s | %s | %s | %s | %s | %s | %s |\n",
             q->n, q->hot ? "hot" : "cold", adasm_isa_name(isas[s]),
             fmt_nsel(b1, sizeof b1, q->ns[o], q->n),
             fmt_nsel(b2, sizeof b2, q->ns[o + 1], q->n),
             fmt_nsel(b3, sizeof b3, q->ns[o + 2], q->n),
             fmt_nsel(b4, sizeof b4, q->ns[o + 3], q->n),
             fmt_ratio(b5, sizeof b5, ratio(q, o + 1, q->skel3)),
             fmt_ratio(b6, sizeof b6, ratio(q, o + 2, q->skel2)),
             fmt_ratio(b7, sizeof b7, ratio(q, o + 3, q->skel2)),
             fmt_err(b8, sizeof b8, emax));
    }
    printf("| %zu | %s | skeleton (%s) | - | %s | %s | %s | - | - | - | - |\n",
           q->n, q->hot ? "hot" : "cold", sk.isa,
           fmt_nsel(b1, sizeof b1, skel3, q->n),
           fmt_nsel(b2, sizeof b2, skel2, q->n),
           fmt_nsel(b3, sizeof b3, skel2, q->n));
  }

  /* ---- Pass 1 of the online algorithm against a read-only pass. */
  printf("\n| n | data | logsumexp ns/el | read skeleton ns/el | "
         "logsumexp/read |\n");
  printf("|---:|:---|---:|---:|---:|\n");
  for (r = 0; r < nres; r++) {
    const sm_result *q = &res[r];
    printf("| %zu | %s | %s | %s | %s |\n", q->n, q->hot ? "hot" : "cold",
           fmt_nsel(b1, sizeof b1, q->ns[C_LSE], q->n),
           fmt_nsel(b2, sizeof b2, q->ns[C_SKEL1], q->n),
           fmt_ratio(b3, sizeof b3, ratio(q, C_LSE, q->smp[C_SKEL1])));
  }
  printf("\nlogsumexp on %s = the online algorithm's first pass (read z, "
         "running max and sum): if online/skel2 is high but this is not, the "
         "cost is in the second pass (exp, scale, store).\n",
         adasm_isa_name(isas[0]));

  /* ---- Targets of the issue, measured (not asserted). */
  printf("\nTargets (measured here; medians of paired ratios):\n");
  for (r = 0; r < nres; r++) {
    const sm_result *q = &res[r];
    if (q->hot && q->ns[C_XNN] == q->ns[C_XNN] && q->ns[C_OURS] == q->ns[C_OURS]) {
      const double x = bench_paired_ratio(q->smp[C_XNN], q->smp[C_OURS], reps);
      printf("- hot  n=%-9zu XNNPACK/ours = %s (target >= 2.5): %s\n", q->n,
             fmt_ratio(b1, sizeof b1, x), x >= 2.5 ? "met" : "MISSED");
    }
    if (!q->hot && q->n >= 1000000u) {
      const double x = ratio(q, C_OURS, q->skel2);
      printf("- cold n=%-9zu ours/skeleton = %s (target <= 1.15): %s\n", q->n,
             fmt_ratio(b1, sizeof b1, x), x <= 1.15 ? "met" : "MISSED");
    }
  }

  printf("\n");
  bench_print_load("bench_softmax");

#ifndef BENCH_NO_XNNPACK
  if (have_xnn) xnn_deinitialize();
#endif
  free(pool_in);
  return 0;
}
