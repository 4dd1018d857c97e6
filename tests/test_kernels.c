/* test_kernels.c - correctness of every exact kernel on every ISA.

   For each instruction set the CPU and build support (forced through
   adasm_kernels_get), checks softmax (every algorithm), log-softmax,
   logsumexp, fused top-k, the fused GEMV + softmax + top-k and sampling
   against double-precision references computed here with libm, plus the
   special-value and argument-error policy of the header (sections 6 and 7).

   Environment:
     ADASM_TEST_QUICK=1  smaller sizes and fewer draws (sanitizers, qemu)
     ADASM_TEST_LARGE=1  also softmax a vector of 10^8 elements

   Prints one line per failure (prefixed with the function, ISA, algorithm,
   input regime and length; the first 200 only), then a summary with one
   example per distinct failure, then "N passed, M failed"; exits 0 iff no
   check failed. Every input comes from seeded PCG32 streams, so a failure
   reproduces exactly.

   Build by hand:
     gcc -std=c99 -O2 -Wall -Wextra -Wpedantic -Wshadow -Wconversion -I. \
         tests/test_kernels.c -lm && ./a.out */
#define ADASOFTMAX_IMPLEMENTATION
#include "adasoftmax.h"

#include <float.h>
#include <math.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#if defined(__GNUC__) || defined(__clang__)
#define T_PRINTF(a, b) __attribute__((format(printf, a, b)))
#else
#define T_PRINTF(a, b)
#endif

/* ---- Bookkeeping ------------------------------------------------------- */
static unsigned long g_pass, g_fail, g_printed;
static int g_quick, g_large;
static char g_ctx[256]; /* what is being tested, printed with each failure */
#define MAX_PRINTED 200ul

static void set_ctx(const char *fmt, ...) T_PRINTF(1, 2);
static void set_ctx(const char *fmt, ...) {
  va_list ap;
  va_start(ap, fmt);
  vsnprintf(g_ctx, sizeof g_ctx, fmt, ap);
  va_end(ap);
}

/* Failures grouped by (function, ISA, algorithm, message format), so that a
   summary at the end shows every distinct problem even when thousands of
   individual checks fail. */
#define MAX_GROUPS 512
typedef struct fail_group {
  char key[96];
  const char *fmt;
  unsigned long count;
  char example[400];
} fail_group;
static fail_group g_groups[MAX_GROUPS];
static size_t g_ngroups;

/* "softmax isa=avx2 algo=online regime=x n=5" -> "softmax isa=avx2 algo=online" */
static void group_key(char *key, size_t size) {
  const char *s = g_ctx;
  size_t len = 0;
  int tok = 0;
  key[0] = '\0';
  while (*s) {
    const char *e = strchr(s, ' ');
    size_t tl = e ? (size_t)(e - s) : strlen(s);
    if ((tok == 0 || strncmp(s, "isa=", 4) == 0 || strncmp(s, "algo=", 5) == 0 ||
         strncmp(s, "params=", 7) == 0) &&
        len + tl + 2 < size) {
      if (len) key[len++] = ' ';
      memcpy(key + len, s, tl);
      len += tl;
      key[len] = '\0';
    }
    tok++;
    if (!e) break;
    s = e + 1;
  }
}

static void record_failure(const char *fmt, const char *msg) {
  char key[96];
  size_t i;
  group_key(key, sizeof key);
  for (i = 0; i < g_ngroups; ++i)
    if (g_groups[i].fmt == fmt && strcmp(g_groups[i].key, key) == 0) {
      g_groups[i].count++;
      return;
    }
  if (g_ngroups < MAX_GROUPS) {
    fail_group *g = &g_groups[g_ngroups++];
    memcpy(g->key, key, sizeof key);
    g->fmt = fmt;
    g->count = 1;
    /* truncation of a long example is harmless */
    size_t cl = strlen(g_ctx);
    if (cl > 150) cl = 150;
    snprintf(g->example, sizeof g->example, "[%.*s] %.240s", (int)cl, g_ctx, msg);
  }
}

/* One check: counts it, and prints "FAIL [context] message" if !ok. */
static int check(int ok, const char *fmt, ...) T_PRINTF(2, 3);
static int check(int ok, const char *fmt, ...) {
  va_list ap;
  char msg[512];
  if (ok) {
    g_pass++;
    return 1;
  }
  g_fail++;
  va_start(ap, fmt);
  vsnprintf(msg, sizeof msg, fmt, ap);
  va_end(ap);
  record_failure(fmt, msg);
  if (g_printed < MAX_PRINTED) {
    printf("FAIL [%s] %s\n", g_ctx, msg);
    fflush(stdout);
  } else if (g_printed == MAX_PRINTED) {
    printf("(further failure messages suppressed; see the summary)\n");
  }
  g_printed++;
  return 0;
}

static void print_summary(void) {
  size_t i;
  if (!g_ngroups) return;
  printf("\nFailure summary (%lu failures in %zu groups%s):\n", g_fail,
         g_ngroups, g_ngroups == MAX_GROUPS ? ", group table full" : "");
  for (i = 0; i < g_ngroups; ++i)
    printf("%8lu x %s\n", g_groups[i].count, g_groups[i].example);
}

static void *xmalloc(size_t bytes) {
  void *p = malloc(bytes ? bytes : 1);
  if (!p) {
    printf("out of memory (%zu bytes)\n", bytes);
    exit(2);
  }
  return p;
}

static int env_flag(const char *name) {
  const char *v = getenv(name);
  return v && *v && strcmp(v, "0") != 0;
}

static const char *res_str(adasm_result r) {
  const char *s = adasm_result_string(r);
  return s ? s : "(null)";
}

static double seconds(void) { return (double)clock() / CLOCKS_PER_SEC; }

/* Float helpers that do not depend on -ffinite-math-only. */
static uint32_t f2u(float f) {
  uint32_t u;
  memcpy(&u, &f, sizeof u);
  return u;
}
static float u2f(uint32_t u) {
  float f;
  memcpy(&f, &u, sizeof f);
  return f;
}
static int is_nan_f(float f) { return (f2u(f) & 0x7fffffffu) > 0x7f800000u; }
static int is_nan_d(double d) { return d != d; }
static float f_inf(void) { return u2f(0x7f800000u); }
#define NEG_INF_F (-f_inf())

/* ---- Instruction sets -------------------------------------------------- */
typedef struct isa_entry {
  const adasm_kernels *k;
  adasm_isa isa;
  const char *name;
} isa_entry;
static isa_entry g_isa[ADASM_ISA_COUNT]; /* g_isa[0] is always scalar */
static int g_nisa;

static const char *isa_str(adasm_isa isa) {
  const char *s = adasm_isa_name(isa);
  return s ? s : "(null)";
}

/* Dispatch: every supported ISA gives a kernel set that knows its ISA; an
   unsupported one is refused without touching (or NULLing) the out pointer. */
static void test_dispatch(void) {
  int i;
  adasm_isa best = adasm_isa_best();
  const adasm_kernels *k = NULL;
  adasm_result r;
  static const adasm_kernels *const sentinel = (const adasm_kernels *)&g_isa;

  set_ctx("dispatch");
  check(adasm_isa_supported(ADASM_ISA_SCALAR) == 1,
        "adasm_isa_supported(SCALAR) = %d, expected 1",
        adasm_isa_supported(ADASM_ISA_SCALAR));
  check(best >= ADASM_ISA_SCALAR && best < ADASM_ISA_COUNT &&
            adasm_isa_supported(best) == 1,
        "adasm_isa_best() = %d is not a supported ISA", (int)best);
  r = adasm_kernels_get(ADASM_ISA_AUTO, &k);
  check(r == ADASM_OK && k != NULL,
        "adasm_kernels_get(AUTO) returned %d (%s), k=%p", (int)r, res_str(r),
        (const void *)k);
  if (k)
    check(adasm_kernels_isa(k) == best,
          "adasm_kernels_isa(get(AUTO)) = %d, expected best %d (%s)",
          (int)adasm_kernels_isa(k), (int)best, isa_str(best));
  r = adasm_kernels_get(ADASM_ISA_SCALAR, NULL);
  check(r == ADASM_ERR_NULL, "adasm_kernels_get(SCALAR, NULL) returned %d (%s), "
        "expected ADASM_ERR_NULL", (int)r, res_str(r));
  k = sentinel;
  r = adasm_kernels_get((adasm_isa)99, &k);
  check(r != ADASM_OK && (k == sentinel || k == NULL),
        "adasm_kernels_get(99) returned %d (%s), k=%p", (int)r, res_str(r),
        (const void *)k);

  g_nisa = 0;
  for (i = ADASM_ISA_SCALAR; i < ADASM_ISA_COUNT; ++i) {
    adasm_isa isa = (adasm_isa)i;
    const char *name = adasm_isa_name(isa);
    set_ctx("dispatch isa=%d (%s)", i, name ? name : "(null)");
    check(name != NULL && name[0] != '\0', "adasm_isa_name(%d) is empty", i);
    k = sentinel;
    r = adasm_kernels_get(isa, &k);
    if (adasm_isa_supported(isa)) {
      if (check(r == ADASM_OK && k != NULL && k != sentinel,
                "supported ISA: adasm_kernels_get returned %d (%s), k=%p",
                (int)r, res_str(r), (const void *)k)) {
        check(adasm_kernels_isa(k) == isa,
              "adasm_kernels_isa round trip gave %d, expected %d",
              (int)adasm_kernels_isa(k), i);
        g_isa[g_nisa].k = k;
        g_isa[g_nisa].isa = isa;
        g_isa[g_nisa].name = name ? name : "?";
        g_nisa++;
      }
    } else {
      check(r == ADASM_ERR_ISA_UNSUPPORTED,
            "unsupported ISA: adasm_kernels_get returned %d (%s), expected "
            "ADASM_ERR_ISA_UNSUPPORTED", (int)r, res_str(r));
      check(k == sentinel || k == NULL,
            "unsupported ISA: out pointer changed to %p (must stay or be NULL)",
            (const void *)k);
    }
  }
  if (g_nisa == 0 || g_isa[0].isa != ADASM_ISA_SCALAR) {
    printf("FATAL: no scalar kernel set; cannot continue\n");
    printf("%lu passed, %lu failed\n", g_pass, g_fail + 1);
    exit(1);
  }
  printf("ISAs under test:");
  for (i = 0; i < g_nisa; ++i) printf(" %s", g_isa[i].name);
  printf(" (best: %s)\n", isa_str(best));
}

/* ---- Random inputs ----------------------------------------------------- */
static double unif(adasm_pcg32 *r) { return adasm_pcg32_uniform_open(r); }
static double gauss(adasm_pcg32 *r) { /* Box-Muller */
  double u1 = unif(r), u2 = unif(r);
  return sqrt(-2.0 * log(u1)) * cos(6.283185307179586 * u2);
}
static size_t rand_below(adasm_pcg32 *r, size_t n) {
  return (size_t)adasm_pcg32_bounded64(r, (uint64_t)n);
}

enum {
  R_N1,          /* N(0,1) */
  R_N10,         /* N(0,1) * 10 */
  R_N30,         /* N(0,1) * 30: many outputs below 1e-30 */
  R_HIGH,        /* uniform in [90, 100]: exp(z) alone overflows float */
  R_NEG1E4,      /* uniform in [-1e4, -1e4 + 20]: exp(z) alone underflows */
  R_HUGE,        /* +-(1e6..3e7) + [0, 100]: float ulp is 0.06 .. 2 */
  R_MIX_NEG1E30, /* 1/4 of the entries -1e30, the rest N(0,1) * 5 */
  R_MIX_NEGMAX,  /* 1/4 of the entries -FLT_MAX (a common mask value) */
  R_CONST,       /* all equal (0, 88.5, -1e4, 3e7, -1e30, +-FLT_MAX, ...) */
  R_DOMINANT,    /* N(0,1) plus one entry +100 */
  R_TIES,        /* small integers, many ties, +0 and -0 mixed */
  R_NEGINF,      /* 1/3 of the entries -inf (masking), at least one finite */
  R_COUNT
};
static const char *const g_regime_name[R_COUNT] = {
    "N(0,1)",   "N(0,1)*10", "N(0,1)*30", "[90,100]",  "[-1e4,-1e4+20]",
    "huge",     "mix-1e30",  "mix-FLTMAX", "const",    "dominant",
    "ties",     "mask-inf"};

static void gen(int regime, adasm_pcg32 *r, float *z, size_t n) {
  static const float consts[] = {0.0f,  1.5f,  -87.5f, 88.5f,    1e4f,
                                 -1e4f, 3e7f,  -1e30f, -FLT_MAX, FLT_MAX};
  size_t i;
  double base;
  float c;
  switch (regime) {
  case R_N1:
  case R_N10:
  case R_N30: {
    double s = regime == R_N1 ? 1.0 : regime == R_N10 ? 10.0 : 30.0;
    for (i = 0; i < n; ++i) z[i] = (float)(gauss(r) * s);
    break;
  }
  case R_HIGH:
    for (i = 0; i < n; ++i) z[i] = (float)(90.0 + 10.0 * unif(r));
    break;
  case R_NEG1E4:
    for (i = 0; i < n; ++i) z[i] = (float)(-1e4 + 20.0 * unif(r));
    break;
  case R_HUGE:
    base = 1e6 + unif(r) * (3e7 - 1e6);
    if (adasm_pcg32_next(r) & 1u) base = -base;
    for (i = 0; i < n; ++i) z[i] = (float)(base + 100.0 * unif(r));
    break;
  case R_MIX_NEG1E30:
  case R_MIX_NEGMAX:
    for (i = 0; i < n; ++i)
      z[i] = rand_below(r, 4) == 0
                 ? (regime == R_MIX_NEG1E30 ? -1e30f : -FLT_MAX)
                 : (float)(gauss(r) * 5.0);
    break;
  case R_CONST:
    c = consts[rand_below(r, sizeof consts / sizeof consts[0])];
    for (i = 0; i < n; ++i) z[i] = c;
    break;
  case R_DOMINANT:
    for (i = 0; i < n; ++i) z[i] = (float)gauss(r);
    if (n) z[rand_below(r, n)] += 100.0f;
    break;
  case R_TIES:
    for (i = 0; i < n; ++i) {
      z[i] = (float)floor(gauss(r) * 2.0 + 0.5);
      if (z[i] == 0.0f && (adasm_pcg32_next(r) & 1u)) z[i] = -0.0f;
    }
    break;
  case R_NEGINF: {
    int any = 0;
    for (i = 0; i < n; ++i) {
      if (rand_below(r, 3) == 0) {
        z[i] = NEG_INF_F;
      } else {
        z[i] = (float)(gauss(r) * 3.0);
        any = 1;
      }
    }
    if (n && !any) z[rand_below(r, n)] = 0.5f;
    break;
  }
  default:
    break;
  }
}

/* ---- Reference softmax in double --------------------------------------- */
/* m = max, sum = sum exp(z - m), lse = m + log(sum); -inf entries give 0.
   Probabilities are stored (p) or, for huge n, recomputed on the fly. */
typedef struct ref_t {
  const float *z;
  size_t n;
  double m, sum, logsum, lse;
  double *p; /* NULL: compute on the fly */
} ref_t;

static void ref_compute(ref_t *r, const float *z, size_t n, int store) {
  size_t i, j;
  double m = -HUGE_VAL, sum = 0.0;
  for (i = 0; i < n; ++i)
    if ((double)z[i] > m) m = (double)z[i];
  r->z = z;
  r->n = n;
  r->p = store ? (double *)xmalloc(n * sizeof(double)) : NULL;
  /* blocked sum: keeps the rounding error of 10^8 terms far below 1e-12 */
  for (i = 0; i < n; i += 4096) {
    double part = 0.0;
    size_t end = n - i < 4096 ? n : i + 4096;
    for (j = i; j < end; ++j) {
      double e = exp((double)z[j] - m);
      if (r->p) r->p[j] = e;
      part += e;
    }
    sum += part;
  }
  r->m = m;
  r->sum = sum;
  r->logsum = log(sum);
  r->lse = m + r->logsum;
  if (r->p)
    for (i = 0; i < n; ++i) r->p[i] /= sum;
}
static void ref_free(ref_t *r) {
  free(r->p);
  r->p = NULL;
}
static double ref_p(const ref_t *r, size_t i) {
  return r->p ? r->p[i] : exp((double)r->z[i] - r->m) / r->sum;
}
/* log p_i = (z_i - m) - log(sum): exact even where m + log(sum) rounds to m */
static double ref_logp(const ref_t *r, size_t i) {
  return ((double)r->z[i] - r->m) - r->logsum;
}

/* The header's accuracy rules (section 7). */
#define P_REL 1e-6   /* probabilities >= 1e-30: relative error */
#define P_TINY 1e-30 /* below this reference ...                 */
#define P_TINY_MAX 1e-29 /* ... the output must be in [0, 1e-29]  */
static int prob_ok(float zi, double expect, float got, double rel) {
  double g = (double)got;
  if (zi == NEG_INF_F) return g == 0.0 && !is_nan_f(got); /* masked: exact 0 */
  if (expect >= P_TINY) return fabs(g - expect) <= rel * expect;
  return g >= 0.0 && g <= P_TINY_MAX;
}
static int logp_ok(float zi, double expect, float got) {
  if (zi == NEG_INF_F) return got == NEG_INF_F;
  return fabs((double)got - expect) <= 1e-6 * fmax(1.0, fabs(expect));
}
/* logsumexp: absolute 1e-6 (header), or a few double ulps where |lse| is so
   large that 1e-6 is below the resolution of a double (|lse| > ~1e9). */
static double lse_tol(double expect) {
  double t = 4.0 * DBL_EPSILON * fabs(expect);
  return t > 1e-6 ? t : 1e-6;
}
static int lse_ok(double got, double expect) {
  if (expect == HUGE_VAL || expect == -HUGE_VAL) return got == expect;
  return fabs(got - expect) <= lse_tol(expect);
}

static void check_probs(const ref_t *r, const float *p, const char *what) {
  size_t i, nbad = 0, first = 0;
  double sum = 0.0, maxrel = 0.0;
  for (i = 0; i < r->n; ++i) {
    double e = ref_p(r, i);
    sum += (double)p[i];
    if (e >= P_TINY && r->z[i] != NEG_INF_F) {
      double rel = fabs((double)p[i] - e) / e;
      if (!(rel <= maxrel)) maxrel = rel;
    }
    if (!prob_ok(r->z[i], e, p[i], P_REL)) {
      if (nbad++ == 0) first = i;
    }
  }
  if (!check(nbad == 0,
             "%s: %zu of %zu probabilities out of bounds; first at index %zu: "
             "z=%.9g got %.9g expected %.9g (max rel err %.3g, bound %.0e)",
             what, nbad, r->n, first, (double)r->z[first], (double)p[first],
             ref_p(r, first), maxrel, P_REL))
    return;
  check(fabs(sum - 1.0) <= 1e-6, "%s: outputs sum to %.12f (|err| %.3g > 1e-6)",
        what, sum, fabs(sum - 1.0));
}

static void check_logp(const ref_t *r, const float *out, const char *what) {
  size_t i, nbad = 0, first = 0;
  double maxerr = 0.0;
  for (i = 0; i < r->n; ++i) {
    double e = ref_logp(r, i);
    if (r->z[i] != NEG_INF_F) {
      double err = fabs((double)out[i] - e) / fmax(1.0, fabs(e));
      if (!(err <= maxerr)) maxerr = err;
    }
    if (!logp_ok(r->z[i], e, out[i])) {
      if (nbad++ == 0) first = i;
    }
  }
  check(nbad == 0,
        "%s: %zu of %zu log-probabilities out of bounds; first at index %zu: "
        "z=%.9g got %.9g expected %.9g (max err/max(1,|ref|) %.3g, bound 1e-6)",
        what, nbad, r->n, first, (double)r->z[first], (double)out[first],
        ref_logp(r, first), maxerr);
}

/* ISA vs scalar: a few ulp apart (FMA contraction), 1e-6 relative. */
static void check_vs_scalar(const ref_t *r, const float *p, const float *ps,
                            const char *what) {
  size_t i, nbad = 0, first = 0;
  for (i = 0; i < r->n; ++i) {
    if (ref_p(r, i) < P_TINY) continue; /* both already checked <= 1e-29 */
    if (!(fabs((double)p[i] - (double)ps[i]) <= 1e-6 * fabs((double)ps[i]))) {
      if (nbad++ == 0) first = i;
    }
  }
  check(nbad == 0,
        "%s: %zu outputs differ from the scalar kernel by more than 1e-6 "
        "relative; first at index %zu: got %.9g scalar %.9g (ref %.9g)",
        what, nbad, first, (double)p[first], (double)ps[first],
        ref_p(r, first));
}

/* ---- Output buffers with guard zones ----------------------------------- */
/* Output arrays sit between two guard zones filled with a sentinel so that
   any write outside [0, n) (a tail-handling bug) is detected; `off` shifts
   the array off 64-byte alignment. */
#define GUARD 24
#define SENTINEL_BITS 0xdeadbeefu
typedef struct outbuf {
  float *mem, *p;
  size_t n, lead;
} outbuf;
static void ob_init(outbuf *o, size_t n, size_t off) {
  o->n = n;
  o->lead = GUARD + off;
  o->mem = (float *)xmalloc((n + o->lead + GUARD) * sizeof(float));
  o->p = o->mem + o->lead;
}
static void ob_fill(outbuf *o) {
  size_t i, total = o->n + o->lead + GUARD;
  float s = u2f(SENTINEL_BITS);
  for (i = 0; i < total; ++i) o->mem[i] = s;
}
static int ob_guards_ok(const outbuf *o) {
  size_t i;
  for (i = 0; i < o->lead; ++i)
    if (f2u(o->mem[i]) != SENTINEL_BITS) return 0;
  for (i = 0; i < GUARD; ++i)
    if (f2u(o->p[o->n + i]) != SENTINEL_BITS) return 0;
  return 1;
}
/* 1 if none of p[0..n) was written */
static int ob_untouched(const outbuf *o) {
  size_t i;
  for (i = 0; i < o->n; ++i)
    if (f2u(o->p[i]) != SENTINEL_BITS) return 0;
  return ob_guards_ok(o);
}
static void ob_free(outbuf *o) { free(o->mem); }

/* The same for size_t index arrays. */
#define IDX_SENTINEL ((size_t)0x5a5a5a5au)
typedef struct idxbuf {
  size_t *mem, *p, n;
} idxbuf;
static void ib_init(idxbuf *b, size_t n) {
  b->n = n;
  b->mem = (size_t *)xmalloc((n + 2 * GUARD) * sizeof(size_t));
  b->p = b->mem + GUARD;
}
static void ib_fill(idxbuf *b) {
  size_t i;
  for (i = 0; i < b->n + 2 * GUARD; ++i) b->mem[i] = IDX_SENTINEL;
}
static int ib_guards_ok(const idxbuf *b) {
  size_t i;
  for (i = 0; i < GUARD; ++i)
    if (b->mem[i] != IDX_SENTINEL || b->p[b->n + i] != IDX_SENTINEL) return 0;
  return 1;
}
static int ib_untouched(const idxbuf *b) {
  size_t i;
  for (i = 0; i < b->n; ++i)
    if (b->p[i] != IDX_SENTINEL) return 0;
  return ib_guards_ok(b);
}
static void ib_free(idxbuf *b) { free(b->mem); }

/* An input array of exactly n floats (so ASan sees any over-read), shifted
   by `off` floats from the allocation start. */
typedef struct inbuf {
  float *mem, *z;
} inbuf;
static void in_init(inbuf *b, size_t n, size_t off) {
  b->mem = (float *)xmalloc((n + off) * sizeof(float));
  b->z = b->mem + off;
}
static void in_free(inbuf *b) { free(b->mem); }

/* ---- Algorithms -------------------------------------------------------- */
#define ALGO_PLAIN (-1) /* adasm_softmax() */
static const int g_algos[] = {ALGO_PLAIN, ADASM_SOFTMAX_AUTO,
                              ADASM_SOFTMAX_THREE_PASS, ADASM_SOFTMAX_TWO_PASS,
                              ADASM_SOFTMAX_ONLINE};
#define N_ALGOS ((int)(sizeof g_algos / sizeof g_algos[0]))
static const char *algo_name(int a) {
  switch (a) {
  case ALGO_PLAIN: return "softmax()";
  case ADASM_SOFTMAX_AUTO: return "auto";
  case ADASM_SOFTMAX_THREE_PASS: return "three_pass";
  case ADASM_SOFTMAX_TWO_PASS: return "two_pass";
  case ADASM_SOFTMAX_ONLINE: return "online";
  default: return "?";
  }
}
static adasm_result run_softmax(const adasm_kernels *k, int a, const float *z,
                                size_t n, float *p) {
  if (a == ALGO_PLAIN) return adasm_softmax(k, z, n, p);
  return adasm_softmax_ex(k, (adasm_softmax_algo)a, z, n, p);
}

/* ---- Reference top-k (descending value, ties to the lower index) ------- */
static const float *g_sort_z;
static int cmp_desc_f(const void *a, const void *b) {
  size_t i = *(const size_t *)a, j = *(const size_t *)b;
  float x = g_sort_z[i], y = g_sort_z[j];
  if (x > y) return -1;
  if (x < y) return 1;
  return i < j ? -1 : (i > j);
}
static const double *g_sort_d;
static int cmp_desc_d(const void *a, const void *b) {
  size_t i = *(const size_t *)a, j = *(const size_t *)b;
  double x = g_sort_d[i], y = g_sort_d[j];
  if (x > y) return -1;
  if (x < y) return 1;
  return i < j ? -1 : (i > j);
}
/* i beats j: larger value, or equal value (+0 == -0) and lower index */
static int beats(const float *z, size_t i, size_t j) {
  return z[i] > z[j] || (z[i] == z[j] && i < j);
}
static void ref_topk(const float *z, size_t n, size_t k, size_t *out) {
  size_t i, cnt = 0;
  if (k > 64) { /* full sort */
    size_t *ord = (size_t *)xmalloc(n * sizeof(size_t));
    for (i = 0; i < n; ++i) ord[i] = i;
    g_sort_z = z;
    qsort(ord, n, sizeof(size_t), cmp_desc_f);
    memcpy(out, ord, k * sizeof(size_t));
    free(ord);
    return;
  }
  for (i = 0; i < n; ++i) { /* insertion into a sorted list of the best k */
    size_t pos;
    if (cnt == k && !beats(z, i, out[k - 1])) continue;
    pos = cnt < k ? cnt++ : k - 1;
    while (pos > 0 && beats(z, i, out[pos - 1])) {
      out[pos] = out[pos - 1];
      pos--;
    }
    out[pos] = i;
  }
}

/* ---- softmax / log_softmax / logsumexp / top-k on one input ------------ */
typedef struct case_opts {
  int cross;     /* compare every ISA with the scalar result */
  int inplace;   /* 0: none, 1: plain softmax only, 2: every algorithm */
  int topk_full; /* also top-k with topk = n */
  int store_ref; /* keep reference probabilities in memory */
} case_opts;

static void test_topk_case(const ref_t *r, const char *rname, size_t kk) {
  size_t n = r->n, j;
  size_t *want = (size_t *)xmalloc(kk * sizeof(size_t));
  int t;
  ref_topk(r->z, n, kk, want);
  for (t = 0; t < g_nisa; ++t) {
    idxbuf ib, ib2;
    outbuf pb;
    double ln = 12345.0;
    adasm_result res;
    size_t nbad = 0, first = 0;
    set_ctx("softmax_topk isa=%s regime=%s n=%zu topk=%zu", g_isa[t].name,
            rname, n, kk);
    ib_init(&ib, kk);
    ib_fill(&ib);
    ob_init(&pb, kk, kk % 3);
    ob_fill(&pb);
    res = adasm_softmax_topk(g_isa[t].k, r->z, n, kk, ib.p, pb.p, &ln);
    if (check(res == ADASM_OK, "returned %d (%s)", (int)res, res_str(res))) {
      for (j = 0; j < kk; ++j)
        if (ib.p[j] != want[j]) {
          if (nbad++ == 0) first = j;
        }
      check(nbad == 0,
            "%zu indices differ from the stable-sort reference; first at rank "
            "%zu: got index %zu (z=%.9g) expected %zu (z=%.9g)",
            nbad, first, ib.p[first],
            ib.p[first] < n ? (double)r->z[ib.p[first]] : -1.0,
            want[first], (double)r->z[want[first]]);
      nbad = 0;
      for (j = 0; j < kk; ++j)
        if (!prob_ok(r->z[want[j]], ref_p(r, want[j]), pb.p[j], P_REL)) {
          if (nbad++ == 0) first = j;
        }
      check(nbad == 0,
            "%zu probabilities out of bounds; first at rank %zu (index %zu): "
            "got %.9g expected %.9g", nbad, first, want[first],
            (double)pb.p[first], ref_p(r, want[first]));
      check(lse_ok(ln, r->lse), "log_norm got %.17g expected %.17g (tol %.3g)",
            ln, r->lse, lse_tol(r->lse));
      check(ib_guards_ok(&ib), "wrote outside idx[0..topk)");
      check(ob_guards_ok(&pb), "wrote outside prob[0..topk)");
    }
    /* prob is required: a clean error; log_norm is optional and the
       indices must not change without it */
    ib_init(&ib2, kk);
    ib_fill(&ib2);
    res = adasm_softmax_topk(g_isa[t].k, r->z, n, kk, ib2.p, NULL, NULL);
    check(res == ADASM_ERR_NULL, "prob=NULL: returned %d (%s), expected "
          "ADASM_ERR_NULL", (int)res, res_str(res));
    ob_fill(&pb);
    res = adasm_softmax_topk(g_isa[t].k, r->z, n, kk, ib2.p, pb.p, NULL);
    if (check(res == ADASM_OK, "log_norm=NULL: returned %d (%s)",
              (int)res, res_str(res))) {
      nbad = 0;
      for (j = 0; j < kk; ++j)
        if (ib2.p[j] != want[j]) {
          if (nbad++ == 0) first = j;
        }
      check(nbad == 0,
            "log_norm=NULL: %zu indices wrong; first at rank %zu: "
            "got %zu expected %zu", nbad, first, ib2.p[first], want[first]);
      check(ib_guards_ok(&ib2), "log_norm=NULL: wrote outside idx[0..topk)");
    }
    ib_free(&ib2);
    ib_free(&ib);
    ob_free(&pb);
  }
  free(want);
}

static void test_case(int regime, size_t n, adasm_pcg32 *rng,
                      const case_opts *opt) {
  const char *rname = g_regime_name[regime];
  inbuf in;
  float *zsave, *scal = NULL;
  outbuf o, cp; /* cp: the in-place runs, guarded like o */
  ref_t ref;
  int a, t;
  size_t off = n % 4, kks[5], nk = 0, i;

  in_init(&in, n, off);
  gen(regime, rng, in.z, n);
  zsave = (float *)xmalloc(n * sizeof(float));
  memcpy(zsave, in.z, n * sizeof(float));
  ref_compute(&ref, zsave, n, opt->store_ref);
  ob_init(&o, n, (n / 4) % 4);
  ob_init(&cp, opt->inplace ? n : 0, off);
  if (opt->cross && g_nisa > 1) scal = (float *)xmalloc(n * sizeof(float));

  for (a = 0; a < N_ALGOS; ++a) {
    for (t = 0; t < g_nisa; ++t) {
      adasm_result res;
      set_ctx("softmax isa=%s algo=%s regime=%s n=%zu", g_isa[t].name,
              algo_name(g_algos[a]), rname, n);
      ob_fill(&o);
      res = run_softmax(g_isa[t].k, g_algos[a], in.z, n, o.p);
      if (!check(res == ADASM_OK, "returned %d (%s), expected ADASM_OK",
                 (int)res, res_str(res)))
        continue;
      if (n == 0) {
        check(ob_untouched(&o), "n=0 wrote to the output");
        continue;
      }
      check_probs(&ref, o.p, "out of place");
      check(ob_guards_ok(&o), "wrote outside p[0..n)");
      check(memcmp(in.z, zsave, n * sizeof(float)) == 0,
            "modified its input z");
      if (scal) {
        if (t == 0)
          memcpy(scal, o.p, n * sizeof(float));
        else
          check_vs_scalar(&ref, o.p, scal, "vs scalar");
      }
      if (opt->inplace == 2 || (opt->inplace == 1 && g_algos[a] == ALGO_PLAIN)) {
        ob_fill(&cp);
        memcpy(cp.p, zsave, n * sizeof(float));
        res = run_softmax(g_isa[t].k, g_algos[a], cp.p, n, cp.p);
        if (check(res == ADASM_OK, "in place: returned %d (%s)", (int)res,
                  res_str(res))) {
          check_probs(&ref, cp.p, "in place (p == z)");
          check(ob_guards_ok(&cp), "in place: wrote outside p[0..n)");
        }
      }
    }
  }

  for (t = 0; t < g_nisa; ++t) { /* log_softmax and logsumexp */
    adasm_result res;
    double lse = 12345.0;
    set_ctx("log_softmax isa=%s regime=%s n=%zu", g_isa[t].name, rname, n);
    ob_fill(&o);
    res = adasm_log_softmax(g_isa[t].k, in.z, n, o.p);
    if (check(res == ADASM_OK, "returned %d (%s)", (int)res, res_str(res))) {
      if (n == 0) {
        check(ob_untouched(&o), "n=0 wrote to the output");
      } else {
        check_logp(&ref, o.p, "out of place");
        check(ob_guards_ok(&o), "wrote outside out[0..n)");
        check(memcmp(in.z, zsave, n * sizeof(float)) == 0,
              "modified its input z");
      }
    }
    if (opt->inplace && n > 0) {
      ob_fill(&cp);
      memcpy(cp.p, zsave, n * sizeof(float));
      res = adasm_log_softmax(g_isa[t].k, cp.p, n, cp.p);
      if (check(res == ADASM_OK, "in place: returned %d (%s)", (int)res,
                res_str(res))) {
        check_logp(&ref, cp.p, "in place (out == z)");
        check(ob_guards_ok(&cp), "in place: wrote outside out[0..n)");
      }
    }
    set_ctx("logsumexp isa=%s regime=%s n=%zu", g_isa[t].name, rname, n);
    res = adasm_logsumexp(g_isa[t].k, in.z, n, &lse);
    if (check(res == ADASM_OK, "returned %d (%s)", (int)res, res_str(res))) {
      if (n == 0)
        check(lse == -HUGE_VAL, "n=0: got %.17g expected -inf", lse);
      else
        check(lse_ok(lse, ref.lse), "got %.17g expected %.17g (|err| %.3g > %.3g)",
              lse, ref.lse, fabs(lse - ref.lse), lse_tol(ref.lse));
    }
  }

  /* top-k for k in {1, 2, 5, 17, n} (those <= n) */
  {
    static const size_t base_k[] = {1, 2, 5, 17};
    for (i = 0; i < 4; ++i)
      if (base_k[i] <= n) kks[nk++] = base_k[i];
    if (opt->topk_full && n > 17) kks[nk++] = n;
    for (i = 0; i < nk; ++i) test_topk_case(&ref, rname, kks[i]);
  }

  free(scal);
  ob_free(&cp);
  ob_free(&o);
  ref_free(&ref);
  free(zsave);
  in_free(&in);
}

static void test_softmax_all(void) {
  static const size_t large[] = {1000, 4099, 65537, (size_t)1 << 20,
                                 ((size_t)4 << 20) + 3};
  size_t n, li, nlarge = g_quick ? 3 : 5;
  int reg;
  adasm_pcg32 rng;
  case_opts small = {1, 2, 1, 1};
  double t0 = seconds();

  for (n = 0; n <= 257; ++n)
    for (reg = 0; reg < R_COUNT; ++reg) {
      adasm_pcg32_seed(&rng, 0x5eed0000u + n, (uint64_t)reg);
      test_case(reg, n, &rng, &small);
    }
  printf("softmax family, n = 0..257, %d regimes: %.1f s\n", R_COUNT,
         seconds() - t0);
  for (li = 0; li < nlarge; ++li) {
    case_opts big = {1, 1, 0, 1};
    n = large[li];
    big.inplace = n <= 65537 ? 2 : 1;
    big.topk_full = n <= 65537;
    t0 = seconds();
    for (reg = 0; reg < R_COUNT; ++reg) {
      /* 4M: the regimes that stress the out-of-cache (online) path most;
         1M already runs them all through it */
      if (n > ((size_t)1 << 20) && (reg == R_N1 || reg == R_N30 ||
                                    reg == R_MIX_NEG1E30 || reg == R_DOMINANT))
        continue;
      adasm_pcg32_seed(&rng, 0x1a26e000u + n, (uint64_t)reg);
      test_case(reg, n, &rng, &big);
    }
    printf("softmax family, n = %zu: %.1f s\n", n, seconds() - t0);
  }
  if (g_large) { /* 10^8: the long-sum accuracy claim of section 7 */
    static const int regs[] = {R_N10, R_HIGH, R_HUGE};
    case_opts huge = {0, 0, 0, 0};
    size_t r;
    n = 100000000u;
    t0 = seconds();
    for (r = 0; r < sizeof regs / sizeof regs[0]; ++r) {
      adasm_pcg32_seed(&rng, 0xb16u, (uint64_t)regs[r]);
      test_case(regs[r], n, &rng, &huge);
    }
    printf("softmax family, n = %zu (LARGE): %.1f s\n", n, seconds() - t0);
  }
}

/* ---- Special values and argument errors -------------------------------- */
static int all_nan(const float *p, size_t n, size_t *first) {
  size_t i;
  for (i = 0; i < n; ++i)
    if (!is_nan_f(p[i])) {
      *first = i;
      return 0;
    }
  return 1;
}

/* Runs every softmax-family function on z (n > 0) and expects `want` with
   NaN outputs (NaN input or all -inf). */
static void expect_data_error(const float *z, size_t n, adasm_result want,
                              const char *what) {
  int t, a;
  outbuf o;
  idxbuf ib;
  size_t kk = n < 3 ? n : 3, first = 0;
  ob_init(&o, n, n % 4);
  ib_init(&ib, kk);
  for (t = 0; t < g_nisa; ++t) {
    const adasm_kernels *k = g_isa[t].k;
    adasm_result res;
    double lse = 12345.0;
    for (a = 0; a < N_ALGOS; ++a) {
      set_ctx("softmax isa=%s algo=%s n=%zu input=%s", g_isa[t].name,
              algo_name(g_algos[a]), n, what);
      ob_fill(&o);
      res = run_softmax(k, g_algos[a], z, n, o.p);
      check(res == want, "returned %d (%s), expected %d (%s)", (int)res,
            res_str(res), (int)want, res_str(want));
      check(all_nan(o.p, n, &first), "output %zu is %.9g, expected NaN",
            first, (double)o.p[first]);
      check(ob_guards_ok(&o), "wrote outside p[0..n)");
    }
    set_ctx("log_softmax isa=%s n=%zu input=%s", g_isa[t].name, n, what);
    ob_fill(&o);
    res = adasm_log_softmax(k, z, n, o.p);
    check(res == want, "returned %d (%s), expected %d (%s)", (int)res,
          res_str(res), (int)want, res_str(want));
    check(all_nan(o.p, n, &first), "output %zu is %.9g, expected NaN", first,
          (double)o.p[first]);
    check(ob_guards_ok(&o), "wrote outside out[0..n)");

    set_ctx("logsumexp isa=%s n=%zu input=%s", g_isa[t].name, n, what);
    res = adasm_logsumexp(k, z, n, &lse);
    check(res == want, "returned %d (%s), expected %d (%s)", (int)res,
          res_str(res), (int)want, res_str(want));
    if (want == ADASM_ERR_NAN)
      check(is_nan_d(lse), "lse got %.17g, expected NaN", lse);
    else
      check(lse == -HUGE_VAL, "lse got %.17g, expected -inf", lse);

    set_ctx("softmax_topk isa=%s n=%zu topk=%zu input=%s", g_isa[t].name, n,
            kk, what);
    ob_fill(&o);
    ib_fill(&ib);
    lse = 12345.0;
    res = adasm_softmax_topk(k, z, n, kk, ib.p, o.p, &lse);
    check(res == want, "returned %d (%s), expected %d (%s)", (int)res,
          res_str(res), (int)want, res_str(want));
    check(all_nan(o.p, kk, &first), "prob %zu is %.9g, expected NaN", first,
          (double)o.p[first]);
    if (want == ADASM_ERR_NAN)
      check(is_nan_d(lse), "log_norm got %.17g, expected NaN", lse);
    else /* log of the normalizer: -inf (logsumexp) or NaN (an output) */
      check(lse == -HUGE_VAL || is_nan_d(lse),
            "log_norm got %.17g, expected -inf (or NaN)", lse);
    check(ib_guards_ok(&ib), "wrote outside idx[0..topk)");
  }
  ib_free(&ib);
  ob_free(&o);
}

/* +inf entries (cnt of them): they share the mass equally, the rest get 0. */
static void test_posinf(const float *z, size_t n, size_t cnt) {
  int t, a;
  outbuf o;
  size_t i, nbad, first = 0;
  double share = 1.0 / (double)cnt, lshare = -log((double)cnt);
  size_t kk = cnt + 1 <= n ? cnt + 1 : n;
  size_t *want = (size_t *)xmalloc(kk * sizeof(size_t));
  idxbuf ib;
  ref_topk(z, n, kk, want);
  ob_init(&o, n, 1);
  ib_init(&ib, kk);
  for (t = 0; t < g_nisa; ++t) {
    const adasm_kernels *k = g_isa[t].k;
    adasm_result res;
    double lse = 12345.0;
    for (a = 0; a < N_ALGOS; ++a) {
      set_ctx("softmax isa=%s algo=%s n=%zu input=%zu x +inf", g_isa[t].name,
              algo_name(g_algos[a]), n, cnt);
      ob_fill(&o);
      res = run_softmax(k, g_algos[a], z, n, o.p);
      if (!check(res == ADASM_OK, "returned %d (%s), expected ADASM_OK",
                 (int)res, res_str(res)))
        continue;
      nbad = 0;
      for (i = 0; i < n; ++i) {
        int ok = z[i] == f_inf() ? fabs((double)o.p[i] - share) <= P_REL * share
                                 : o.p[i] == 0.0f && !is_nan_f(o.p[i]);
        if (!ok && nbad++ == 0) first = i;
      }
      check(nbad == 0, "%zu outputs wrong; first at index %zu (z=%.9g): got "
            "%.9g expected %.9g", nbad, first, (double)z[first],
            (double)o.p[first], z[first] == f_inf() ? share : 0.0);
      check(ob_guards_ok(&o), "wrote outside p[0..n)");
    }
    set_ctx("log_softmax isa=%s n=%zu input=%zu x +inf", g_isa[t].name, n, cnt);
    ob_fill(&o);
    res = adasm_log_softmax(k, z, n, o.p);
    if (check(res == ADASM_OK, "returned %d (%s), expected ADASM_OK", (int)res,
              res_str(res))) {
      nbad = 0;
      for (i = 0; i < n; ++i) {
        int ok = z[i] == f_inf()
                     ? fabs((double)o.p[i] - lshare) <= 1e-6 * fmax(1.0, -lshare)
                     : o.p[i] == NEG_INF_F;
        if (!ok && nbad++ == 0) first = i;
      }
      check(nbad == 0, "%zu outputs wrong; first at index %zu (z=%.9g): got "
            "%.9g expected %.9g", nbad, first, (double)z[first],
            (double)o.p[first], z[first] == f_inf() ? lshare : -HUGE_VAL);
    }
    set_ctx("logsumexp isa=%s n=%zu input=%zu x +inf", g_isa[t].name, n, cnt);
    res = adasm_logsumexp(k, z, n, &lse);
    check(res == ADASM_OK && lse == HUGE_VAL,
          "returned %d (%s) lse=%.17g, expected ADASM_OK and +inf", (int)res,
          res_str(res), lse);
    set_ctx("softmax_topk isa=%s n=%zu topk=%zu input=%zu x +inf",
            g_isa[t].name, n, kk, cnt);
    ob_fill(&o);
    ib_fill(&ib);
    lse = 12345.0;
    res = adasm_softmax_topk(k, z, n, kk, ib.p, o.p, &lse);
    if (check(res == ADASM_OK, "returned %d (%s)", (int)res, res_str(res))) {
      nbad = 0;
      for (i = 0; i < kk; ++i) {
        double e = z[want[i]] == f_inf() ? share : 0.0;
        int ok = ib.p[i] == want[i] &&
                 (e > 0.0 ? fabs((double)o.p[i] - e) <= P_REL * e
                          : o.p[i] == 0.0f && !is_nan_f(o.p[i]));
        if (!ok && nbad++ == 0) first = i;
      }
      check(nbad == 0, "rank %zu: got index %zu prob %.9g, expected index %zu "
            "prob %.9g", first, ib.p[first], (double)o.p[first], want[first],
            z[want[first]] == f_inf() ? share : 0.0);
      check(lse == HUGE_VAL, "log_norm got %.17g, expected +inf", lse);
    }
  }
  ib_free(&ib);
  ob_free(&o);
  free(want);
}

static void test_special(void) {
  static const size_t lens[] = {1,  2,  3,  4,   7,   8,   9,   15,   16,  17,
                                31, 32, 33, 63,  64,  65,  127, 128,  129, 257,
                                1000, 4099};
  static const uint32_t nan_bits[] = {0x7fc00000u, 0xffc00000u, 0x7f800001u,
                                      0xff812345u};
  size_t li, i, pi;
  adasm_pcg32 rng;
  double t0 = seconds();

  for (li = 0; li < sizeof lens / sizeof lens[0]; ++li) {
    size_t n = lens[li];
    float *z = (float *)xmalloc(n * sizeof(float));
    size_t pos[3];
    char what[96];
    pos[0] = 0;
    pos[1] = n / 2;
    pos[2] = n - 1;
    adasm_pcg32_seed(&rng, 0x5bec1a1u + n, 7u);

    /* NaN anywhere (any payload, either sign, signalling too), even next to
       +-inf, wins */
    for (pi = 0; pi < 3; ++pi) {
      uint32_t bits = nan_bits[(pi + li) % 4];
      for (i = 0; i < n; ++i) z[i] = (float)(gauss(&rng) * 3.0);
      if (n >= 4) {
        z[(pos[pi] + 1) % n] = f_inf();
        z[(pos[pi] + 2) % n] = NEG_INF_F;
      }
      z[pos[pi]] = u2f(bits);
      snprintf(what, sizeof what, "NaN(0x%08lx)@%zu", (unsigned long)bits,
               pos[pi]);
      expect_data_error(z, n, ADASM_ERR_NAN, what);
    }
    /* every entry -inf: softmax undefined */
    for (i = 0; i < n; ++i) z[i] = NEG_INF_F;
    expect_data_error(z, n, ADASM_ERR_NO_FINITE_MAX, "all -inf");

    /* +inf entries share the mass; finite and -inf entries get 0 */
    {
      size_t cnts[4], nc = 0, c;
      cnts[nc++] = 1;
      if (n >= 2) cnts[nc++] = 2;
      if (n >= 3) cnts[nc++] = 3;
      if (n > 3) cnts[nc++] = n;
      for (c = 0; c < nc; ++c) {
        size_t *perm = (size_t *)xmalloc(n * sizeof(size_t));
        for (i = 0; i < n; ++i) {
          perm[i] = i;
          z[i] = (float)(gauss(&rng) * 3.0);
        }
        if (n > cnts[c] + 1) z[rand_below(&rng, n)] = NEG_INF_F;
        if (n > cnts[c] + 2) z[rand_below(&rng, n)] = FLT_MAX;
        for (i = 0; i < cnts[c]; ++i) { /* distinct random positions */
          size_t j = i + rand_below(&rng, n - i), tmp = perm[i];
          perm[i] = perm[j];
          perm[j] = tmp;
          z[perm[i]] = f_inf();
        }
        test_posinf(z, n, cnts[c]);
        free(perm);
      }
    }
    free(z);
  }
  printf("special values: %.1f s\n", seconds() - t0);
}

/* Argument errors: the result code, and outputs left untouched. */
static void test_arg_errors(void) {
  float z[5] = {1.0f, -2.0f, 0.5f, 3.0f, 3.0f};
  int t, a;
  outbuf o;
  idxbuf ib;
  ob_init(&o, 5, 0);
  ib_init(&ib, 5);
  for (t = 0; t < g_nisa; ++t) {
    const adasm_kernels *k = g_isa[t].k;
    adasm_result res;
    double lse;
    for (a = 0; a < N_ALGOS; ++a) {
      set_ctx("softmax isa=%s algo=%s n=5 args", g_isa[t].name,
              algo_name(g_algos[a]));
      ob_fill(&o);
      res = run_softmax(k, g_algos[a], NULL, 5, o.p);
      check(res == ADASM_ERR_NULL && ob_untouched(&o),
            "z=NULL: returned %d (%s), expected ADASM_ERR_NULL, output %s",
            (int)res, res_str(res), ob_untouched(&o) ? "untouched" : "WRITTEN");
      res = run_softmax(k, g_algos[a], z, 5, NULL);
      check(res == ADASM_ERR_NULL, "p=NULL: returned %d (%s), expected "
            "ADASM_ERR_NULL", (int)res, res_str(res));
      /* n = 0: valid, writes nothing */
      ob_fill(&o);
      res = run_softmax(k, g_algos[a], z, 0, o.p);
      check(res == ADASM_OK && ob_untouched(&o),
            "n=0: returned %d (%s), output %s", (int)res, res_str(res),
            ob_untouched(&o) ? "untouched" : "WRITTEN");
    }
    {
      static const int bad_algos[] = {4, 99, -1};
      size_t b;
      for (b = 0; b < 3; ++b) {
        set_ctx("softmax_ex isa=%s algo=%d (invalid) n=5", g_isa[t].name,
                bad_algos[b]);
        ob_fill(&o);
        res = adasm_softmax_ex(k, (adasm_softmax_algo)bad_algos[b], z, 5, o.p);
        check(res != ADASM_OK && ob_untouched(&o),
              "returned %d (%s), output %s; expected an error and no write",
              (int)res, res_str(res), ob_untouched(&o) ? "untouched" : "WRITTEN");
      }
    }
    set_ctx("log_softmax isa=%s n=5 args", g_isa[t].name);
    ob_fill(&o);
    res = adasm_log_softmax(k, NULL, 5, o.p);
    check(res == ADASM_ERR_NULL && ob_untouched(&o),
          "z=NULL: returned %d (%s), expected ADASM_ERR_NULL, no write",
          (int)res, res_str(res));
    res = adasm_log_softmax(k, z, 5, NULL);
    check(res == ADASM_ERR_NULL, "out=NULL: returned %d (%s)", (int)res,
          res_str(res));
    set_ctx("logsumexp isa=%s n=5 args", g_isa[t].name);
    lse = 12345.0;
    res = adasm_logsumexp(k, NULL, 5, &lse);
    check(res == ADASM_ERR_NULL && lse == 12345.0,
          "z=NULL: returned %d (%s), lse %.17g; expected ADASM_ERR_NULL, "
          "untouched", (int)res, res_str(res), lse);
    res = adasm_logsumexp(k, z, 5, NULL);
    check(res == ADASM_ERR_NULL, "lse=NULL: returned %d (%s)", (int)res,
          res_str(res));

    set_ctx("softmax_topk isa=%s n=5 args", g_isa[t].name);
    {
      static const size_t bad_k[] = {0, 6, 1000};
      size_t b;
      for (b = 0; b < 3; ++b) {
        ob_fill(&o);
        ib_fill(&ib);
        lse = 12345.0;
        res = adasm_softmax_topk(k, z, 5, bad_k[b], ib.p, o.p, &lse);
        check(res == ADASM_ERR_SIZE && ob_untouched(&o) && ib_untouched(&ib) &&
                  lse == 12345.0,
              "topk=%zu: returned %d (%s), expected ADASM_ERR_SIZE and no "
              "write", bad_k[b], (int)res, res_str(res));
      }
      ib_fill(&ib);
      res = adasm_softmax_topk(k, z, 0, 1, ib.p, o.p, &lse);
      check(res == ADASM_ERR_SIZE && ib_untouched(&ib),
            "n=0 topk=1: returned %d (%s), expected ADASM_ERR_SIZE", (int)res,
            res_str(res));
      ob_fill(&o);
      res = adasm_softmax_topk(k, NULL, 5, 2, ib.p, o.p, &lse);
      check(res == ADASM_ERR_NULL && ib_untouched(&ib) && ob_untouched(&o),
            "z=NULL: returned %d (%s), expected ADASM_ERR_NULL, no write",
            (int)res, res_str(res));
      res = adasm_softmax_topk(k, z, 5, 2, NULL, o.p, &lse);
      check(res == ADASM_ERR_NULL && ob_untouched(&o),
            "idx=NULL: returned %d (%s), expected ADASM_ERR_NULL, no write",
            (int)res, res_str(res));
    }
  }
  /* NULL kernel set = the best one: same bits as the explicit best set */
  {
    const adasm_kernels *kb = NULL;
    float pa[5], pb[5];
    adasm_result r1, r2;
    set_ctx("softmax k=NULL");
    if (adasm_kernels_get(ADASM_ISA_AUTO, &kb) == ADASM_OK) {
      r1 = adasm_softmax(NULL, z, 5, pa);
      r2 = adasm_softmax(kb, z, 5, pb);
      check(r1 == ADASM_OK && r2 == ADASM_OK && memcmp(pa, pb, sizeof pa) == 0,
            "k=NULL returned %d, best returned %d; outputs %s", (int)r1,
            (int)r2, memcmp(pa, pb, sizeof pa) == 0 ? "equal" : "DIFFER");
    }
  }
  ib_free(&ib);
  ob_free(&o);
}

/* ---- GEMV + softmax + top-k -------------------------------------------- */
static void test_gemv_one(const float *A, size_t n, size_t d, size_t lda,
                          const float *x, const double *dot,
                          const double *asum, float beta, size_t kk) {
  double *rl = (double *)xmalloc(n * sizeof(double));
  double *tol = (double *)xmalloc(n * sizeof(double));
  size_t *ord = (size_t *)xmalloc(n * sizeof(size_t));
  unsigned char *mark = (unsigned char *)xmalloc(n);
  double m = -HUGE_VAL, s = 0.0, rlse;
  size_t i, j;
  int t;
  double maxtol = 0.0, ptol;
  for (i = 0; i < n; ++i) {
    rl[i] = (double)beta * dot[i];
    /* the header's bound: 2^-22 sqrt(d) beta sum_j |A_ij x_j| (+ rounding) */
    tol[i] = ldexp(1.0, -22) * sqrt((double)d) * (double)beta * asum[i] +
             ldexp(1.0, -23) * fabs(rl[i]) + 1e-30;
    if (tol[i] > maxtol) maxtol = tol[i];
    if (rl[i] > m) m = rl[i];
    ord[i] = i;
  }
  /* log p = logit - lse: its error is the logit's plus at most maxtol */
  ptol = expm1(2.0 * maxtol) + 1e-6;
  for (i = 0; i < n; ++i) s += exp(rl[i] - m);
  rlse = m + log(s);
  g_sort_d = rl;
  qsort(ord, n, sizeof(size_t), cmp_desc_d);

  for (t = 0; t < g_nisa; ++t) {
    outbuf lg, pb;
    idxbuf ib, ib2;
    double ln = 12345.0;
    adasm_result res;
    size_t nbad = 0, first = 0;
    set_ctx("gemv_softmax_topk isa=%s n=%zu d=%zu lda=%zu beta=%g topk=%zu",
            g_isa[t].name, n, d, lda, (double)beta, kk);
    ob_init(&lg, n, 1);
    ob_fill(&lg);
    ob_init(&pb, kk, 2);
    ob_fill(&pb);
    ib_init(&ib, kk);
    ib_fill(&ib);
    res = adasm_gemv_softmax_topk(g_isa[t].k, A, n, d, lda, x, beta, kk, ib.p,
                                  pb.p, &ln, lg.p);
    if (!check(res == ADASM_OK, "returned %d (%s)", (int)res, res_str(res)))
      goto next;
    /* logits */
    for (i = 0; i < n; ++i)
      if (!(fabs((double)lg.p[i] - rl[i]) <= tol[i])) {
        if (nbad++ == 0) first = i;
      }
    check(nbad == 0, "%zu logits out of tolerance; first at row %zu: got "
          "%.9g expected %.9g (tol %.3g)", nbad, first, (double)lg.p[first],
          rl[first], tol[first]);
    check(ob_guards_ok(&lg), "wrote outside logits[0..n)");
    check(ob_guards_ok(&pb), "wrote outside prob[0..topk)");
    check(ib_guards_ok(&ib), "wrote outside idx[0..topk)");
    /* indices: valid and distinct */
    memset(mark, 0, n);
    nbad = 0;
    for (j = 0; j < kk; ++j) {
      if (ib.p[j] >= n || mark[ib.p[j]]) {
        if (nbad++ == 0) first = j;
      } else {
        mark[ib.p[j]] = 1;
      }
    }
    if (!check(nbad == 0, "rank %zu: index %zu invalid or repeated", first,
               ib.p[first]))
      goto next;
    /* equal to the reference wherever the reference order is decided beyond
       the logit tolerance */
    nbad = 0;
    for (j = 0; j < kk; ++j) {
      int decided = 1;
      if (j > 0 && rl[ord[j - 1]] - rl[ord[j]] <= tol[ord[j - 1]] + tol[ord[j]])
        decided = 0;
      if (j + 1 < n && rl[ord[j]] - rl[ord[j + 1]] <= tol[ord[j]] + tol[ord[j + 1]])
        decided = 0;
      if (decided && ib.p[j] != ord[j]) {
        if (nbad++ == 0) first = j;
      }
    }
    check(nbad == 0, "%zu ranks differ from the reference; first at rank %zu: "
          "got index %zu (logit %.9g) expected %zu (logit %.9g)", nbad, first,
          ib.p[first], rl[ib.p[first]], ord[first], rl[ord[first]]);
    /* the returned set is a top-k up to tolerance */
    nbad = 0;
    for (j = 0; j < kk; ++j) {
      size_t b = ord[kk - 1];
      if (rl[ib.p[j]] < rl[b] - (tol[ib.p[j]] + tol[b])) {
        if (nbad++ == 0) first = j;
      }
    }
    check(nbad == 0, "rank %zu: index %zu (logit %.9g) is not in the top %zu "
          "(k-th logit %.9g)", first, ib.p[first], rl[ib.p[first]], kk,
          rl[ord[kk - 1]]);
    /* consistent with its own logits: best first, ties to the lower index,
       nothing left out that beats the last one */
    nbad = 0;
    for (j = 0; j + 1 < kk; ++j)
      if (!beats(lg.p, ib.p[j], ib.p[j + 1])) {
        if (nbad++ == 0) first = j;
      }
    check(nbad == 0, "not ordered by its own logits: rank %zu index %zu (%.9g) "
          "before index %zu (%.9g)", first, ib.p[first],
          (double)lg.p[ib.p[first]], ib.p[first + 1 < kk ? first + 1 : first],
          (double)lg.p[ib.p[first + 1 < kk ? first + 1 : first]]);
    nbad = 0;
    for (i = 0; i < n; ++i)
      if (!mark[i] && beats(lg.p, i, ib.p[kk - 1])) {
        if (nbad++ == 0) first = i;
      }
    check(nbad == 0, "row %zu (own logit %.9g) beats the returned k-th row %zu "
          "(%.9g) but was left out", first, (double)lg.p[first], ib.p[kk - 1],
          (double)lg.p[ib.p[kk - 1]]);
    /* probabilities and normalizer */
    nbad = 0;
    for (j = 0; j < kk; ++j) {
      double e = exp(rl[ib.p[j]] - rlse);
      int ok = e >= P_TINY ? fabs((double)pb.p[j] - e) <= ptol * e
                           : pb.p[j] >= 0.0f && (double)pb.p[j] <= P_TINY_MAX;
      if (!ok && nbad++ == 0) first = j;
    }
    check(nbad == 0, "%zu probabilities off by more than ptol relative; first "
          "at rank %zu (index %zu): got %.9g expected %.9g (its logit: got "
          "%.9g expected %.9g; log_norm got %.9g expected %.9g)", nbad, first,
          ib.p[first], (double)pb.p[first], exp(rl[ib.p[first]] - rlse),
          (double)lg.p[ib.p[first]], rl[ib.p[first]], ln, rlse);
    check(fabs(ln - rlse) <= maxtol + 1e-6 * fmax(1.0, fabs(rlse)),
          "log_norm got %.17g expected %.17g (|err| %.3g > %.3g)", ln, rlse,
          fabs(ln - rlse), maxtol + 1e-6 * fmax(1.0, fabs(rlse)));
    /* prob is required (the heap keeps its values there): a clean error,
       nothing written; log_norm and logits are optional */
    ib_init(&ib2, kk);
    ib_fill(&ib2);
    res = adasm_gemv_softmax_topk(g_isa[t].k, A, n, d, lda, x, beta, kk,
                                  ib2.p, NULL, NULL, NULL);
    check(res == ADASM_ERR_NULL && ib_guards_ok(&ib2),
          "prob=NULL: returned %d (%s), expected ADASM_ERR_NULL", (int)res,
          res_str(res));
    ob_fill(&pb);
    res = adasm_gemv_softmax_topk(g_isa[t].k, A, n, d, lda, x, beta, kk,
                                  ib2.p, pb.p, NULL, NULL);
    if (check(res == ADASM_OK, "log_norm/logits NULL: returned %d (%s)",
              (int)res, res_str(res)))
      check(memcmp(ib.p, ib2.p, kk * sizeof(size_t)) == 0 &&
                ib_guards_ok(&ib2),
            "log_norm/logits NULL: indices differ from the full call");
    ib_free(&ib2);
  next:
    ob_free(&lg);
    ob_free(&pb);
    ib_free(&ib);
  }
  free(rl);
  free(tol);
  free(ord);
  free(mark);
}

static void test_gemv(void) {
  static const size_t ns[] = {1, 2, 3, 4, 5, 7, 8, 9, 31, 33, 64, 65, 1000};
  static const size_t ds[] = {1, 2, 15, 16, 17, 31, 33, 64, 100, 768, 1025};
  static const float betas[] = {1.0f, 0.5f, 3.0f};
  size_t ni, di, pi, bi, i, j;
  adasm_pcg32 rng;
  double t0 = seconds();
  for (ni = 0; ni < sizeof ns / sizeof ns[0]; ++ni)
    for (di = 0; di < sizeof ds / sizeof ds[0]; ++di)
      for (pi = 0; pi < 2; ++pi) {
        size_t n = ns[ni], d = ds[di];
        size_t lda = d + (pi ? 1 + (n * 7 + d) % 17 : 0);
        size_t size = (n - 1) * lda + d; /* exact: no slack after the last row */
        float *A = (float *)xmalloc(size * sizeof(float));
        float *x = (float *)xmalloc(d * sizeof(float));
        double *dot = (double *)xmalloc(n * sizeof(double));
        double *asum = (double *)xmalloc(n * sizeof(double));
        double sc = 3.0 / sqrt((double)d); /* logits ~ N(0, 9) at beta 1 */
        size_t kks[3], nk = 0, ki;
        adasm_pcg32_seed(&rng, 0x6e3f0000u + n * 4096u + d, pi);
        for (i = 0; i < size; ++i) A[i] = u2f(0x7fc0dead); /* NaN padding */
        for (i = 0; i < n; ++i)
          for (j = 0; j < d; ++j) A[i * lda + j] = (float)(gauss(&rng) * sc);
        if (n >= 3) /* an exact duplicate row: a tie */
          memcpy(A + 2 * lda, A, d * sizeof(float));
        for (j = 0; j < d; ++j) x[j] = (float)gauss(&rng);
        for (i = 0; i < n; ++i) {
          double s = 0.0, sa = 0.0;
          for (j = 0; j < d; ++j) {
            double p = (double)A[i * lda + j] * (double)x[j];
            s += p;
            sa += fabs(p);
          }
          dot[i] = s;
          asum[i] = sa;
        }
        kks[nk++] = 1;
        if (n > 5) kks[nk++] = 5;
        if (n > 1) kks[nk++] = n;
        for (bi = 0; bi < 3; ++bi)
          for (ki = 0; ki < nk; ++ki)
            test_gemv_one(A, n, d, lda, x, dot, asum, betas[bi], kks[ki]);
        free(A);
        free(x);
        free(dot);
        free(asum);
      }

  /* NaN in x or in a real entry of A: ADASM_ERR_NAN, outputs NaN */
  {
    size_t n = 9, d = 17, lda = 20, t2;
    float *A = (float *)xmalloc(n * lda * sizeof(float));
    float x[17];
    int t;
    adasm_pcg32_seed(&rng, 0xa2a2u, 1u);
    for (i = 0; i < n * lda; ++i) A[i] = (float)gauss(&rng);
    for (j = 0; j < d; ++j) x[j] = (float)gauss(&rng);
    for (t2 = 0; t2 < 2; ++t2) {
      if (t2 == 0)
        x[5] = u2f(0x7fc00000u);
      else {
        x[5] = 0.25f;
        A[4 * lda + 16] = u2f(0xffc00001u);
      }
      for (t = 0; t < g_nisa; ++t) {
        outbuf pb, lg;
        idxbuf ib;
        double ln = 12345.0;
        adasm_result res;
        size_t first = 0;
        set_ctx("gemv_softmax_topk isa=%s n=%zu d=%zu NaN in %s", g_isa[t].name,
                n, d, t2 == 0 ? "x" : "A");
        ob_init(&pb, 3, 0);
        ob_fill(&pb);
        ob_init(&lg, n, 0);
        ob_fill(&lg);
        ib_init(&ib, 3);
        ib_fill(&ib);
        res = adasm_gemv_softmax_topk(g_isa[t].k, A, n, d, lda, x, 1.0f, 3,
                                      ib.p, pb.p, &ln, lg.p);
        check(res == ADASM_ERR_NAN, "returned %d (%s), expected ADASM_ERR_NAN",
              (int)res, res_str(res));
        check(all_nan(pb.p, 3, &first), "prob %zu is %.9g, expected NaN", first,
              (double)pb.p[first]);
        check(is_nan_d(ln), "log_norm %.17g, expected NaN", ln);
        if (t2 == 0)
          check(all_nan(lg.p, n, &first), "logit %zu is %.9g, expected NaN",
                first, (double)lg.p[first]);
        ob_free(&pb);
        ob_free(&lg);
        ib_free(&ib);
      }
    }
    free(A);
  }
  printf("gemv_softmax_topk: %.1f s\n", seconds() - t0);
}

/* Equal rows must get bit-equal logits wherever they fall (in a group of
   four rows or in the tail), or the documented tie rule (lower index
   first) would depend on the row's position. */
static void test_gemv_equal_rows(void) {
  static const size_t ds[] = {1, 7, 8, 9, 16, 17, 37, 64, 100, 257};
  size_t di, i, j;
  int t;
  adasm_pcg32 rng;
  adasm_pcg32_seed(&rng, 0xe9a1u, 3u);
  for (di = 0; di < sizeof ds / sizeof ds[0]; ++di) {
    const size_t d = ds[di], n = 11;
    float *A = (float *)malloc(n * d * sizeof(float));
    float *x = (float *)malloc(d * sizeof(float)), y[11], p[11];
    size_t idx[11];
    if (!A || !x) abort();
    for (j = 0; j < d; ++j) {
      A[j] = adasm_pcg32_uniform(&rng) * 2.0f - 1.0f;
      x[j] = adasm_pcg32_uniform(&rng) * 2.0f - 1.0f;
    }
    for (i = 1; i < n; ++i) memcpy(A + i * d, A, d * sizeof(float));
    for (t = 0; t < g_nisa; ++t) {
      adasm_result r;
      set_ctx("gemv_softmax_topk isa=%s n=%zu d=%zu equal rows", g_isa[t].name,
              n, d);
      r = adasm_gemv_softmax_topk(g_isa[t].k, A, n, d, d, x, 1.0f, n, idx, p,
                                  NULL, y);
      int same = r == ADASM_OK, ordered = r == ADASM_OK;
      for (i = 1; i < n; ++i) {
        same &= memcmp(&y[i], &y[0], sizeof y[0]) == 0;
        ordered &= idx[i] == i;
      }
      check(same && ordered, "gemv isa=%s d=%zu: equal rows, %s", g_isa[t].name,
            d, !same ? "unequal logits" : "ties not in index order");
    }
    free(A);
    free(x);
  }
}

static void gemv_expect(const adasm_kernels *k, const float *A, size_t n,
                        size_t d, size_t lda, const float *x, float beta,
                        size_t topk, int idx_null, adasm_result want,
                        const char *what) {
  idxbuf ib;
  outbuf pb, lg;
  double ln = 12345.0;
  adasm_result res;
  size_t nl = n < 16 ? n : 16;
  ib_init(&ib, 4);
  ib_fill(&ib);
  ob_init(&pb, 4, 0);
  ob_fill(&pb);
  ob_init(&lg, nl, 0);
  ob_fill(&lg);
  res = adasm_gemv_softmax_topk(k, A, n, d, lda, x, beta, topk,
                                idx_null ? NULL : ib.p, pb.p, &ln,
                                n <= 16 ? lg.p : NULL);
  check(res == want && ib_untouched(&ib) && ob_untouched(&pb) &&
            ob_untouched(&lg) && ln == 12345.0,
        "%s: returned %d (%s), expected %d (%s); outputs %s", what, (int)res,
        res_str(res), (int)want, res_str(want),
        ib_untouched(&ib) && ob_untouched(&pb) && ob_untouched(&lg) &&
                ln == 12345.0
            ? "untouched"
            : "WRITTEN");
  ib_free(&ib);
  ob_free(&pb);
  ob_free(&lg);
}

static void test_gemv_errors(void) {
  float A[12], x[3] = {1.0f, 2.0f, -1.0f};
  size_t i;
  int t;
  for (i = 0; i < 12; ++i) A[i] = (float)i * 0.1f;
  for (t = 0; t < g_nisa; ++t) {
    const adasm_kernels *k = g_isa[t].k;
    set_ctx("gemv_softmax_topk isa=%s args", g_isa[t].name);
    gemv_expect(k, A, 4, 3, 2, x, 1.0f, 1, 0, ADASM_ERR_SIZE, "lda < d");
    gemv_expect(k, A, 0, 3, 3, x, 1.0f, 1, 0, ADASM_ERR_SIZE, "n = 0");
    gemv_expect(k, A, 4, 0, 3, x, 1.0f, 1, 0, ADASM_ERR_SIZE, "d = 0");
    gemv_expect(k, A, 4, 3, 3, x, 1.0f, 0, 0, ADASM_ERR_SIZE, "topk = 0");
    gemv_expect(k, A, 4, 3, 3, x, 1.0f, 5, 0, ADASM_ERR_SIZE, "topk > n");
    gemv_expect(k, A, 4, 3, 3, x, 0.0f, 1, 0, ADASM_ERR_PARAM, "beta = 0");
    gemv_expect(k, A, 4, 3, 3, x, -1.0f, 1, 0, ADASM_ERR_PARAM, "beta < 0");
    gemv_expect(k, A, 4, 3, 3, x, u2f(0x7fc00000u), 1, 0, ADASM_ERR_PARAM,
                "beta = NaN");
    gemv_expect(k, A, 4, 3, 3, x, f_inf(), 1, 0, ADASM_ERR_PARAM, "beta = +inf");
    gemv_expect(k, A, 4, 3, 3, x, NEG_INF_F, 1, 0, ADASM_ERR_PARAM,
                "beta = -inf");
    gemv_expect(k, NULL, 4, 3, 3, x, 1.0f, 1, 0, ADASM_ERR_NULL, "A = NULL");
    gemv_expect(k, A, 4, 3, 3, NULL, 1.0f, 1, 0, ADASM_ERR_NULL, "x = NULL");
    gemv_expect(k, A, 4, 3, 3, x, 1.0f, 1, 1, ADASM_ERR_NULL, "idx = NULL");
  }
}

/* Last: if the overflow check is missing, the call reads far out of bounds
   and crashes, so say what is being run first. */
static void test_gemv_overflow(void) {
  float dummy[8] = {0}, x[2] = {1.0f, 1.0f};
  int t;
  printf("gemv overflow checks (a crash here means a missing size check)\n");
  fflush(stdout);
  for (t = 0; t < g_nisa; ++t) {
    set_ctx("gemv_softmax_topk isa=%s overflow", g_isa[t].name);
    /* n * lda wraps around size_t */
    gemv_expect(g_isa[t].k, dummy, (SIZE_MAX / 2) + 1, 2, 2, x, 1.0f, 1, 0,
                ADASM_ERR_OVERFLOW, "n*lda overflows size_t");
    gemv_expect(g_isa[t].k, dummy, SIZE_MAX, 1, 3, x, 1.0f, 1, 0,
                ADASM_ERR_OVERFLOW, "n*lda overflows size_t (n = SIZE_MAX)");
    /* n * lda fits, but n * lda * sizeof(float) bytes does not */
    gemv_expect(g_isa[t].k, dummy, (SIZE_MAX / 8) + 1, 2, 2, x, 1.0f, 1, 0,
                ADASM_ERR_OVERFLOW, "n*lda*sizeof(float) overflows size_t");
  }
}

/* ---- Sampling ---------------------------------------------------------- */
/* Upper quantile of chi-square(df) at tail probability 1e-6, by the
   Wilson-Hilferty cube approximation (conservative for small df). */
static double chi2_crit(double df) {
  const double zq = 4.753424308822899; /* Phi^-1(1 - 1e-6) */
  double h = 2.0 / (9.0 * df), c = 1.0 - h + zq * sqrt(h);
  return df * c * c * c;
}

/* Exact target of adasm_sample: softmax(z / T); then the top_k largest
   (ties to the lower index); then the smallest prefix by probability whose
   mass (of the renormalised top-k distribution) reaches top_p. Returns the
   distance between top_p and the nearest prefix mass, and between the
   scaled logits around the top-k boundary, so the caller avoids inputs where
   float noise could move a boundary. */
static void sample_target(const float *z, size_t n, const adasm_sample_params *sp,
                          double *q, double *margin) {
  size_t *ord = (size_t *)xmalloc(n * sizeof(size_t));
  size_t i, keep = n;
  double m = -HUGE_VAL, s = 0.0, T = (double)sp->temperature;
  *margin = HUGE_VAL;
  for (i = 0; i < n; ++i) {
    ord[i] = i;
    if ((double)z[i] > m) m = (double)z[i];
  }
  g_sort_z = z;
  qsort(ord, n, sizeof(size_t), cmp_desc_f);
  for (i = 0; i < n; ++i) q[i] = exp(((double)z[i] - m) / T);
  if (sp->top_k > 0 && sp->top_k < n) {
    keep = sp->top_k;
    *margin = ((double)z[ord[keep - 1]] - (double)z[ord[keep]]) / T;
    for (i = keep; i < n; ++i) q[ord[i]] = 0.0;
  }
  for (i = 0; i < n; ++i) s += q[i];
  for (i = 0; i < n; ++i) q[i] /= s;
  if (sp->top_p > 0.0f && sp->top_p < 1.0f) {
    double cum = 0.0, tp = (double)sp->top_p;
    size_t cnt = keep;
    for (i = 0; i < keep; ++i) {
      cum += q[ord[i]];
      if (fabs(cum - tp) < *margin) *margin = fabs(cum - tp);
      if (cum >= tp) {
        cnt = i + 1;
        break;
      }
    }
    for (i = cnt; i < n; ++i) q[ord[i]] = 0.0;
    s = 0.0;
    for (i = 0; i < n; ++i) s += q[i];
    for (i = 0; i < n; ++i) q[i] /= s;
  }
  free(ord);
}

typedef struct sample_cfg {
  const char *name;
  float temperature;
  size_t top_k;
  float top_p;
  size_t n;
} sample_cfg;

/* Draw `count` samples; returns 0 (after a failed check) if a call fails. */
static int draw(const adasm_kernels *k, const float *z, size_t n,
                const adasm_sample_params *sp, uint64_t seed, size_t count,
                size_t *out_seq, size_t *counts) {
  adasm_pcg32 rng;
  size_t bytes = 0, s;
  void *work;
  adasm_result res = adasm_sample_workspace_size(n, sp, &bytes);
  if (!check(res == ADASM_OK, "workspace_size returned %d (%s)", (int)res,
             res_str(res)))
    return 0;
  work = bytes ? xmalloc(bytes) : NULL;
  adasm_pcg32_seed(&rng, seed, 54u);
  for (s = 0; s < count; ++s) {
    size_t o = (size_t)-1;
    res = adasm_sample(k, z, n, sp, &rng, work, bytes, &o);
    if (res != ADASM_OK || o >= n) {
      check(0, "draw %zu: returned %d (%s), class %zu (n=%zu)", s, (int)res,
            res_str(res), o, n);
      free(work);
      return 0;
    }
    if (out_seq) out_seq[s] = o;
    if (counts) counts[o]++;
  }
  free(work);
  return 1;
}

static void chi2_check(const size_t *counts, const double *q, size_t n,
                       size_t draws) {
  size_t i, forbidden = 0, first = 0, bins = 0, worst = 0;
  double stat = 0.0, pool_e = 0.0, pool_o = 0.0, worst_c = -1.0;
  double small_e = HUGE_VAL;
  size_t small_i = (size_t)-1;
  for (i = 0; i < n; ++i)
    if (q[i] == 0.0 && counts[i] != 0) {
      if (forbidden++ == 0) first = i;
    }
  check(forbidden == 0, "%zu excluded classes were drawn; first class %zu "
        "drawn %zu times (target probability 0)", forbidden, first,
        counts[first]);
  /* classes expected fewer than 5 times are pooled into one bin */
  for (i = 0; i < n; ++i) {
    double e = q[i] * (double)draws;
    if (q[i] == 0.0) continue;
    if (e < 5.0) {
      pool_e += e;
      pool_o += (double)counts[i];
    } else {
      double c = ((double)counts[i] - e) * ((double)counts[i] - e) / e;
      stat += c;
      bins++;
      if (c > worst_c) {
        worst_c = c;
        worst = i;
      }
      if (e < small_e) {
        small_e = e;
        small_i = i;
      }
    }
  }
  if (pool_e >= 5.0) {
    stat += (pool_o - pool_e) * (pool_o - pool_e) / pool_e;
    bins++;
  } else if (pool_e > 0.0 && small_i != (size_t)-1) {
    /* too small to stand alone: merge into the smallest regular bin */
    double e = q[small_i] * (double)draws, o = (double)counts[small_i];
    stat -= (o - e) * (o - e) / e;
    stat += (o + pool_o - e - pool_e) * (o + pool_o - e - pool_e) / (e + pool_e);
  }
  if (bins >= 2) {
    double crit = chi2_crit((double)(bins - 1));
    check(stat <= crit, "chi-square %.2f > %.2f (df %zu, p < 1e-6) over %zu "
          "draws; worst class %zu: drawn %zu, expected %.1f", stat, crit,
          bins - 1, draws, worst, counts[worst], q[worst] * (double)draws);
  }
}

static void test_sample(void) {
  static const sample_cfg cfgs[] = {
      {"default", 1.0f, 0, 0.0f, 13},
      {"T=0.5", 0.5f, 0, 0.0f, 50},
      {"T=2", 2.0f, 0, 0.0f, 6},
      {"top_k=3", 1.0f, 3, 0.0f, 13},
      {"top_p=0.9", 1.0f, 0, 0.9f, 13},
      {"top_p=0.9 n=50", 1.0f, 0, 0.9f, 50},
      {"T=0.7 top_k=5 top_p=0.8", 0.7f, 5, 0.8f, 20},
      {"T=2 top_k=10 top_p=0.95", 2.0f, 10, 0.95f, 37},
      {"T=1.5 top_p=0.5", 1.5f, 0, 0.5f, 8},
      {"top_k=1", 1.0f, 1, 0.0f, 9},
      {"top_k=n", 1.0f, 31, 0.0f, 31},
      {"top_k>n", 1.0f, 40, 0.0f, 31},
      {"top_p=1", 1.0f, 0, 1.0f, 7},
      {"top_p=0.01", 1.0f, 0, 0.01f, 12},
  };
  size_t ncfg = sizeof cfgs / sizeof cfgs[0], c, i;
  size_t draws = g_quick ? 50000u : 200000u;
  adasm_pcg32 rng;
  double t0 = seconds();
  adasm_sample_params dp = adasm_sample_params_default();

  set_ctx("sample_params_default");
  check(dp.temperature == 1.0f && dp.top_k == 0 &&
            (dp.top_p == 0.0f || dp.top_p == 1.0f),
        "default params T=%g top_k=%zu top_p=%g, expected T=1, no filters",
        (double)dp.temperature, dp.top_k, (double)dp.top_p);
  {
    size_t bytes = 777;
    adasm_result res = adasm_sample_workspace_size(100, &dp, &bytes);
    check(res == ADASM_OK && bytes == 0,
          "workspace_size(default params) returned %d (%s), %zu bytes; "
          "expected 0 bytes for plain sampling", (int)res, res_str(res), bytes);
  }

  for (c = 0; c < ncfg; ++c) {
    const sample_cfg *cf = &cfgs[c];
    size_t n = cf->n, attempt;
    float *z = (float *)xmalloc(n * sizeof(float));
    double *q = (double *)xmalloc(n * sizeof(double)), margin = 0.0;
    size_t *counts = (size_t *)xmalloc(n * sizeof(size_t));
    size_t *seq0 = (size_t *)xmalloc(1000 * sizeof(size_t));
    size_t *seq = (size_t *)xmalloc(1000 * sizeof(size_t));
    adasm_sample_params sp = dp;
    int t;
    sp.temperature = cf->temperature;
    sp.top_k = cf->top_k;
    sp.top_p = cf->top_p;
    /* an input whose filter boundaries are far from float noise */
    for (attempt = 0; attempt < 1000; ++attempt) {
      adasm_pcg32_seed(&rng, 0x5a3b1e00u + c, attempt);
      for (i = 0; i < n; ++i) z[i] = (float)(gauss(&rng) * 1.5);
      sample_target(z, n, &sp, q, &margin);
      if (margin > 1e-3) break;
    }
    for (t = 0; t < g_nisa; ++t) {
      set_ctx("sample isa=%s params=%s n=%zu", g_isa[t].name, cf->name, n);
      memset(counts, 0, n * sizeof(size_t));
      if (draw(g_isa[t].k, z, n, &sp, 0xd1ce0000u + c, draws, NULL, counts))
        chi2_check(counts, q, n, draws);
      /* same seed, same draws on every ISA */
      if (draw(g_isa[t].k, z, n, &sp, 0xc0ffeeu + c, 1000, t ? seq : seq0,
               NULL) &&
          t > 0) {
        size_t diff = 0, first = 0;
        for (i = 0; i < 1000; ++i)
          if (seq[i] != seq0[i]) {
            if (diff++ == 0) first = i;
          }
        check(diff == 0, "same seed: %zu of 1000 draws differ from scalar; "
              "first at draw %zu: got class %zu, scalar drew %zu", diff, first,
              seq[first], seq0[first]);
      }
    }
    /* workspace: too small or missing is refused, outputs untouched */
    {
      size_t bytes = 0;
      adasm_result res = adasm_sample_workspace_size(n, &sp, &bytes);
      set_ctx("sample isa=%s params=%s n=%zu workspace", g_isa[0].name,
              cf->name, n);
      if (res == ADASM_OK && bytes > 0) {
        unsigned char *w = (unsigned char *)xmalloc(bytes + 8);
        size_t o = IDX_SENTINEL;
        adasm_pcg32_seed(&rng, 1u, 2u);
        res = adasm_sample(g_isa[0].k, z, n, &sp, &rng, w, bytes - 1, &o);
        check(res == ADASM_ERR_WORKSPACE && o == IDX_SENTINEL,
              "work_bytes = %zu - 1: returned %d (%s), out %s", bytes,
              (int)res, res_str(res), o == IDX_SENTINEL ? "untouched" : "WRITTEN");
        res = adasm_sample(g_isa[0].k, z, n, &sp, &rng, NULL, bytes, &o);
        check(res == ADASM_ERR_WORKSPACE && o == IDX_SENTINEL,
              "work = NULL: returned %d (%s), out %s", (int)res, res_str(res),
              o == IDX_SENTINEL ? "untouched" : "WRITTEN");
        /* no alignment is documented: an odd address must work */
        res = adasm_sample(g_isa[0].k, z, n, &sp, &rng, w + 1, bytes, &o);
        check(res == ADASM_OK && o < n,
              "workspace at an odd address: returned %d (%s), class %zu",
              (int)res, res_str(res), o);
        free(w);
      }
    }
    free(z);
    free(q);
    free(counts);
    free(seq0);
    free(seq);
  }

  /* temperature 0: always the argmax, lowest index on ties */
  {
    static const float zg[9] = {0.5f, 3.0f, 1.0f, -2.0f, 3.0f, 3.0f, 0.0f,
                                2.9f, 1.0f};
    static const size_t tks[3] = {0, 3, 1};
    static const float tps[3] = {0.0f, 0.5f, 0.9f};
    int t;
    size_t v, s;
    for (t = 0; t < g_nisa; ++t)
      for (v = 0; v < 3; ++v) {
        adasm_sample_params sp = dp;
        size_t bytes = 0, bad = 0, got = 0;
        void *w;
        sp.temperature = 0.0f;
        sp.top_k = tks[v];
        sp.top_p = tps[v];
        set_ctx("sample isa=%s T=0 top_k=%zu top_p=%g", g_isa[t].name,
                sp.top_k, (double)sp.top_p);
        if (!check(adasm_sample_workspace_size(9, &sp, &bytes) == ADASM_OK,
                   "workspace_size failed"))
          continue;
        w = bytes ? xmalloc(bytes) : NULL;
        adasm_pcg32_seed(&rng, 99u, v);
        for (s = 0; s < 200; ++s) {
          size_t o = IDX_SENTINEL;
          adasm_result res = adasm_sample(g_isa[t].k, zg, 9, &sp, &rng, w,
                                          bytes, &o);
          if (res != ADASM_OK || o != 1) {
            if (bad++ == 0) got = o;
          }
        }
        check(bad == 0, "%zu of 200 draws not the argmax (index 1); e.g. got "
              "%zu", bad, got);
        free(w);
      }
  }

  /* invalid parameters, NULLs, special inputs */
  {
    static const float zs[6] = {0.1f, 2.0f, -1.0f, 0.7f, 1.9f, -3.0f};
    float zz[6];
    const float nanf_ = u2f(0x7fc00000u);
    struct {
      float temperature, top_p;
      const char *what;
    } bad[] = {{-1.0f, 0.0f, "T=-1"},   {-0.0001f, 0.0f, "T=-1e-4"},
               {0.0f, 0.0f, NULL},      {1.0f, 1.5f, "top_p=1.5"},
               {1.0f, -0.1f, "top_p=-0.1"}, {1.0f, 0.0f, NULL}};
    size_t b, big = 1u << 16;
    unsigned char *w = (unsigned char *)xmalloc(big);
    int t;
    bad[2].temperature = nanf_;
    bad[2].what = "T=NaN";
    bad[5].top_p = nanf_;
    bad[5].what = "top_p=NaN";
    for (t = 0; t < g_nisa; ++t) {
      const adasm_kernels *k = g_isa[t].k;
      adasm_sample_params sp;
      adasm_result res;
      size_t o;
      for (b = 0; b < sizeof bad / sizeof bad[0]; ++b) {
        sp = dp;
        sp.temperature = bad[b].temperature;
        sp.top_p = bad[b].top_p;
        set_ctx("sample isa=%s %s", g_isa[t].name, bad[b].what);
        o = IDX_SENTINEL;
        adasm_pcg32_seed(&rng, 3u, 4u);
        res = adasm_sample(k, zs, 6, &sp, &rng, w, big, &o);
        check(res == ADASM_ERR_PARAM && o == IDX_SENTINEL,
              "returned %d (%s), out %s; expected ADASM_ERR_PARAM, untouched",
              (int)res, res_str(res), o == IDX_SENTINEL ? "untouched" : "WRITTEN");
      }
      sp = dp;
      sp.temperature = f_inf();
      set_ctx("sample isa=%s T=+inf", g_isa[t].name);
      o = IDX_SENTINEL;
      res = adasm_sample(k, zs, 6, &sp, &rng, w, big, &o);
      check(res == ADASM_ERR_PARAM && o == IDX_SENTINEL,
            "returned %d (%s); expected ADASM_ERR_PARAM (not finite)",
            (int)res, res_str(res));
      sp = dp;
      set_ctx("sample isa=%s NULL args", g_isa[t].name);
      o = IDX_SENTINEL;
      res = adasm_sample(k, NULL, 6, &sp, &rng, w, big, &o);
      check(res == ADASM_ERR_NULL && o == IDX_SENTINEL,
            "z=NULL: returned %d (%s)", (int)res, res_str(res));
      res = adasm_sample(k, zs, 6, &sp, NULL, w, big, &o);
      check(res == ADASM_ERR_NULL && o == IDX_SENTINEL,
            "rng=NULL: returned %d (%s)", (int)res, res_str(res));
      res = adasm_sample(k, zs, 6, &sp, &rng, w, big, NULL);
      check(res == ADASM_ERR_NULL, "out=NULL: returned %d (%s)", (int)res,
            res_str(res));

      /* NaN input, all -inf, masked and +inf entries */
      set_ctx("sample isa=%s special inputs", g_isa[t].name);
      memcpy(zz, zs, sizeof zz);
      zz[3] = nanf_;
      res = adasm_sample(k, zz, 6, &sp, &rng, w, big, &o);
      check(res == ADASM_ERR_NAN, "NaN input: returned %d (%s), expected "
            "ADASM_ERR_NAN", (int)res, res_str(res));
      for (i = 0; i < 6; ++i) zz[i] = NEG_INF_F;
      res = adasm_sample(k, zz, 6, &sp, &rng, w, big, &o);
      check(res == ADASM_ERR_NO_FINITE_MAX, "all -inf: returned %d (%s), "
            "expected ADASM_ERR_NO_FINITE_MAX", (int)res, res_str(res));
      {
        size_t s, badm = 0, badp = 0, got = 0;
        memcpy(zz, zs, sizeof zz);
        zz[1] = NEG_INF_F; /* the largest two are masked */
        zz[4] = NEG_INF_F;
        for (s = 0; s < 2000; ++s) {
          res = adasm_sample(k, zz, 6, &sp, &rng, w, big, &o);
          if (res != ADASM_OK || o >= 6 || o == 1 || o == 4) {
            if (badm++ == 0) got = o;
          }
        }
        check(badm == 0, "-inf entries 1 and 4: %zu of 2000 draws failed or "
              "hit a masked class (e.g. %zu)", badm, got);
        memcpy(zz, zs, sizeof zz);
        zz[2] = f_inf();
        zz[5] = f_inf();
        for (s = 0; s < 2000; ++s) {
          res = adasm_sample(k, zz, 6, &sp, &rng, w, big, &o);
          if (res != ADASM_OK || (o != 2 && o != 5)) {
            if (badp++ == 0) got = o;
          }
        }
        check(badp == 0, "+inf entries 2 and 5: %zu of 2000 draws failed or "
              "drew another class (e.g. %zu)", badp, got);
      }
      {
        size_t o1 = IDX_SENTINEL;
        float one = 42.0f;
        res = adasm_sample(k, &one, 1, &sp, &rng, w, big, &o1);
        check(res == ADASM_OK && o1 == 0, "n=1: returned %d (%s), class %zu",
              (int)res, res_str(res), o1);
      }
    }
    free(w);
  }
  printf("sample: %.1f s\n", seconds() - t0);
}

int main(void) {
  double t0 = seconds();
  g_quick = env_flag("ADASM_TEST_QUICK");
  g_large = env_flag("ADASM_TEST_LARGE");
  test_dispatch();
  test_softmax_all();
  test_special();
  test_arg_errors();
  test_gemv();
  test_gemv_equal_rows();
  test_gemv_errors();
  test_sample();
  test_gemv_overflow();
  printf("total %.1f s\n", seconds() - t0);
  print_summary();
  printf("%lu passed, %lu failed\n", g_pass, g_fail);
  return g_fail == 0 ? 0 : 1;
}
