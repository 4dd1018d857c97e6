/* adasoftmax - the command-line front end of adasoftmax.h.

   Runs softmax(beta * A x) for every query row x of a .npy file and reports
   the top-k rows, their probabilities, the log normalizer, the work done and
   the time per query as JSON Lines. The contract (options, output, exit
   codes) is `adasoftmax --help` and the README's tool section; tests/
   test_tool.sh holds the tool to it.

   Build: part of the Meson build (examples/meson.build), or by hand from the
   repository root:
       cc -std=c99 -O2 -I. examples/adasoftmax.c -o adasoftmax -lm

   Exit status: 0 success; 2 usage or input error (bad option, bad file);
   1 internal error (library failure, out of memory, write error). Every error
   is ONE line on stderr, and nothing is written to the output before all
   queries have succeeded.

   Adding a method: write its prepare/query (and optionally calibrate,
   release) functions and fill its row of `methods[]`; a row with a NULL
   query function is reported as "not implemented yet". */
#if !defined(_WIN32) && !defined(_POSIX_C_SOURCE)
#define _POSIX_C_SOURCE 200809L /* clock_gettime */
#endif

#define ADASOFTMAX_IMPLEMENTATION
#include "adasoftmax.h"
#define NPY_IMPLEMENTATION
#define NPY_STATIC
#include "npy.h"
#include "lmhead.h"

#include <ctype.h>
#include <errno.h>
#include <inttypes.h>
#include <math.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#ifdef _WIN32
#include <windows.h>
#endif

#define EXIT_INTERNAL 1 /* library failure, out of memory, write error */
#define EXIT_INPUT 2    /* usage error or unacceptable input */

#if defined(__GNUC__) || defined(__clang__)
#define TOOL_PRINTF(f, a) __attribute__((format(printf, f, a)))
#else
#define TOOL_PRINTF(f, a)
#endif

/* ---- small utilities --------------------------------------------------- */

/* One line on stderr, prefixed with the program name. Control characters
   (from file names or option values) are replaced so it stays one line. */
static void errorf(const char *fmt, ...) TOOL_PRINTF(1, 2);
static void errorf(const char *fmt, ...) {
  char msg[1024];
  size_t i;
  va_list ap;
  va_start(ap, fmt);
  vsnprintf(msg, sizeof msg, fmt, ap);
  va_end(ap);
  for (i = 0; msg[i]; i++)
    if ((unsigned char)msg[i] < 0x20 || (unsigned char)msg[i] == 0x7f)
      msg[i] = '?';
  fprintf(stderr, "adasoftmax: %s\n", msg);
}

static uint64_t now_ns(void) {
#ifdef _WIN32
  LARGE_INTEGER c, f;
  QueryPerformanceCounter(&c);
  QueryPerformanceFrequency(&f);
  return (uint64_t)((double)c.QuadPart * 1e9 / (double)f.QuadPart);
#else
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return (uint64_t)ts.tv_sec * 1000000000u + (uint64_t)ts.tv_nsec;
#endif
}

/* Shortest "%.*g" that reads back as the same value: round-trips like %.17g
   (%.9g for float) without printing 0.29999999999999999 for 0.3. JSON has no
   NaN or infinity; they print as null (valid input never produces them). */
static const char *fmt_double(char *buf, size_t cap, double v) {
  int prec;
  if (!isfinite(v)) {
    snprintf(buf, cap, "null");
    return buf;
  }
  if (v == floor(v) && fabs(v) < 1e15) { /* integers (counts) as integers */
    snprintf(buf, cap, "%.0f", v);
    return buf;
  }
  for (prec = 1; prec < 17; prec++) {
    snprintf(buf, cap, "%.*g", prec, v);
    if (strtod(buf, NULL) == v) return buf;
  }
  snprintf(buf, cap, "%.17g", v);
  return buf;
}

static const char *fmt_float(char *buf, size_t cap, float v) {
  int prec;
  if (!isfinite(v)) {
    snprintf(buf, cap, "null");
    return buf;
  }
  for (prec = 1; prec < 9; prec++) {
    snprintf(buf, cap, "%.*g", prec, (double)v);
    if (strtof(buf, NULL) == v) return buf;
  }
  snprintf(buf, cap, "%.9g", (double)v);
  return buf;
}

/* Output with write errors remembered (the first errno), so a full disk is
   reported instead of a silently short file. */
typedef struct output {
  FILE *f;
  int failed, err;
} output;

static void out_printf(output *o, const char *fmt, ...) TOOL_PRINTF(2, 3);
static void out_printf(output *o, const char *fmt, ...) {
  va_list ap;
  int r;
  va_start(ap, fmt);
  errno = 0;
  r = vfprintf(o->f, fmt, ap);
  va_end(ap);
  if (r < 0 && !o->failed) {
    o->failed = 1;
    o->err = errno;
  }
}

/* Flush (and close unless it is stdout); 0 or EXIT_INTERNAL after a
   message naming `what`. */
static int out_finish(output *o, const char *what) {
  errno = 0;
  if (fflush(o->f) != 0 && !o->failed) {
    o->failed = 1;
    o->err = errno;
  }
  if (ferror(o->f) && !o->failed) {
    o->failed = 1;
    o->err = errno;
  }
  if (o->f != stdout) {
    errno = 0;
    if (fclose(o->f) != 0 && !o->failed) {
      o->failed = 1;
      o->err = errno;
    }
  }
  o->f = NULL;
  if (o->failed) {
    errorf("%s: write error: %s", what,
           o->err ? strerror(o->err) : "unknown error");
    return EXIT_INTERNAL;
  }
  return 0;
}

static int cmp_u64(const void *a, const void *b) {
  uint64_t x = *(const uint64_t *)a, y = *(const uint64_t *)b;
  return (x > y) - (x < y);
}

static int cmp_size(const void *a, const void *b) {
  const size_t x = *(const size_t *)a, y = *(const size_t *)b;
  return (x > y) - (x < y);
}

/* ---- usage ------------------------------------------------------------- */

static const char usage_text[] =
    "usage: adasoftmax <command> [options]\n"
    "\n"
    "Computes softmax(B * A x) with adasoftmax.h for every query row x of a\n"
    "file and reports the top-k rows of A, their probabilities, the log of\n"
    "the normalizer, the multiply-adds spent and the time, as JSON Lines.\n"
    "\n"
    "commands:\n"
    "  query --weights A.npy --queries X.npy [options]\n"
    "      A is n x d, X is q x d (one query per row); both 2-D C-order\n"
    "      NumPy files, X float32 ('<f4'), A float32 or float16 ('<f2').\n"
    "      --method exact|ada|svd|hs|certified\n"
    "                                 method (default ada): exact product,\n"
    "                                 AdaSoftmax, SVD-softmax, hierarchical\n"
    "                                 softmax, or the exact float32 top-k\n"
    "                                 through a 16-bit screen (certified)\n"
    "      --weights-dtype f32|f16|bf16\n"
    "                                 how to hold A (default: as the file):\n"
    "                                 '<f4' and '<f2' files are converted\n"
    "                                 (rounded to nearest even); a '<u2'\n"
    "                                 file holds raw bfloat16 bits and needs\n"
    "                                 bf16. certified works on float32 rows:\n"
    "                                 16-bit weights are widened for it\n"
    "                                 (exactly)\n"
    "      --k K                      top-k, 1 <= K <= n (default 1)\n"
    "      --eps E --delta D          PAC parameters in (0,1) (default 0.3, "
    "0.1)\n"
    "      --temperature B            logits are B * (A x), B > 0 (default 1)\n"
    "      --calibrate N              ada: certify a confidence scale on N\n"
    "                                 queries drawn at random (seeded), report\n"
    "                                 the others (N < q; default 0)\n"
    "      --seed S                   random seed, 0..2^64-1 (default 42)\n"
    "      --svd-window W --svd-top N svd: preview with the first W of the d\n"
    "                                 singular directions, refine the N best\n"
    "                                 rows (default W = max(16, d/8) <= d,\n"
    "                                 N = max(K, 512) <= n)\n"
    "      --hs-model M.bin           hs: a fastText model trained with\n"
    "                                 -loss hs, instead of --weights; X holds\n"
    "                                 its hidden vectors, the top ids are its\n"
    "                                 classes in the model's label order\n"
    "      --isa auto|scalar|avx2|avx512|neon\n"
    "                                 force a kernel set (default auto: the "
    "best)\n"
    "      --out FILE                 write the results here (default stdout)\n";

static const char usage_text2[] =
    "  sample --weights A.npy --queries X.npy [options]\n"
    "      draws the next token from softmax((A x) / T) for every query row x,\n"
    "      through the sampler chain: temperature, then top-k, top-p and\n"
    "      min-p on the tempered distribution, then a Gumbel-max draw\n"
    "      --method exact|ada         method (default exact): one read of A\n"
    "                                 per draw; ada: AdaSoftmax\n"
    "      --temperature T            T > 0, or 0 for greedy (default 1)\n"
    "      --top-k K                  keep the K most probable (default 0: off)\n"
    "      --top-p P                  keep the fewest most probable tokens\n"
    "                                 holding mass P, in [0, 1] (0 or 1: off)\n"
    "      --min-p P                  keep p >= P p_max, in [0, 1] (0: off)\n"
    "      --draws N                  draws per query, 1..2^31 (default 1); the\n"
    "                                 random numbers of (query q, draw i)\n"
    "                                 depend only on (seed, q, i)\n"
    "      --seed S --isa I --out FILE   as for query\n"
    "      --eps E --delta D --calibrate N   ada only, as for query\n"
    "  demo [--n N] [--d D] [--queries Q] [--calibrate C] [--k K]\n"
    "       [--eps E] [--delta D] [--temperature B] [--seed S] [--isa I]\n"
    "      exact, ada and svd side by side on a seeded LM-shaped head (GPT-2's\n"
    "      50257 x 768 by default; N, D >= 16): Q timed queries (default 20),\n"
    "      C more to calibrate ada (default 100); prints per method the setup\n"
    "      and query time, the speed-up, top-1 agreement and p error against\n"
    "      a double reference, the multiply-adds, then a takeaway line\n"
    "  help, --help                   this text\n"
    "  --version                      the library version\n"
    "\n"
    "output of query, one line per reported query, then a summary line:\n"
    "  {\"query\": 17, \"top\": [4021], \"p\": [0.4132], \"log_norm\": "
    "12.0931,\n"
    "   \"samples\": 3120000, \"ns\": 812345}\n"
    "  {\"summary\": {\"method\": ..., \"queries\": ..., \"mean_ns\": ..., "
    "...}}\n"
    "samples: multiply-adds with entries of A (n*d for exact); ns: wall time\n"
    "of that query alone.\n"
    "output of sample, one line per query and draw, then a summary line:\n"
    "  {\"query\": 3, \"draw\": 0, \"token\": 4021, \"p\": 0.38, "
    "\"log_norm\": 12.09,\n"
    "   \"samples\": 38597376, \"ns\": 4100000}\n"
    "p: the token's probability under the filtered distribution.\n"
    "\n"
    "exit status: 0 success, 2 usage or input error, 1 internal error\n"
    "(library failure, out of memory, write error).\n";

static int print_usage_stdout(void) {
  output o;
  o.f = stdout;
  o.failed = 0;
  o.err = 0;
  out_printf(&o, "%s%s", usage_text, usage_text2);
  return out_finish(&o, "stdout");
}

/* ---- options ----------------------------------------------------------- */

enum { CMD_QUERY = 1u, CMD_DEMO = 2u, CMD_SAMPLE = 4u };

enum opt_id {
  OPT_WEIGHTS,
  OPT_QUERIES,
  OPT_METHOD,
  OPT_K,
  OPT_EPS,
  OPT_DELTA,
  OPT_TEMPERATURE,
  OPT_CALIBRATE,
  OPT_SEED,
  OPT_SVD_WINDOW,
  OPT_SVD_TOP,
  OPT_HS_MODEL,
  OPT_OUT,
  OPT_ISA,
  OPT_WEIGHTS_DTYPE,
  OPT_N,
  OPT_D,
  OPT_TOP_K, /* sample */
  OPT_TOP_P,
  OPT_MIN_P,
  OPT_DRAWS,
  OPT_COUNT
};

typedef struct opt_def {
  const char *name;
  enum opt_id id;
  unsigned cmds; /* the commands that accept it */
} opt_def;

static const opt_def opt_defs[] = {
    {"weights", OPT_WEIGHTS, CMD_QUERY | CMD_SAMPLE},
    {"queries", OPT_QUERIES, CMD_QUERY | CMD_DEMO | CMD_SAMPLE},
    {"method", OPT_METHOD, CMD_QUERY | CMD_SAMPLE},
    {"k", OPT_K, CMD_QUERY | CMD_DEMO},
    {"eps", OPT_EPS, CMD_QUERY | CMD_SAMPLE | CMD_DEMO},
    {"delta", OPT_DELTA, CMD_QUERY | CMD_SAMPLE | CMD_DEMO},
    {"temperature", OPT_TEMPERATURE, CMD_QUERY | CMD_DEMO | CMD_SAMPLE},
    {"calibrate", OPT_CALIBRATE, CMD_QUERY | CMD_SAMPLE | CMD_DEMO},
    {"seed", OPT_SEED, CMD_QUERY | CMD_DEMO | CMD_SAMPLE},
    {"svd-window", OPT_SVD_WINDOW, CMD_QUERY},
    {"svd-top", OPT_SVD_TOP, CMD_QUERY},
    {"hs-model", OPT_HS_MODEL, CMD_QUERY},
    {"out", OPT_OUT, CMD_QUERY | CMD_SAMPLE},
    {"isa", OPT_ISA, CMD_QUERY | CMD_DEMO | CMD_SAMPLE},
    {"weights-dtype", OPT_WEIGHTS_DTYPE, CMD_QUERY | CMD_SAMPLE},
    {"n", OPT_N, CMD_DEMO},
    {"d", OPT_D, CMD_DEMO},
    {"top-k", OPT_TOP_K, CMD_SAMPLE},
    {"top-p", OPT_TOP_P, CMD_SAMPLE},
    {"min-p", OPT_MIN_P, CMD_SAMPLE},
    {"draws", OPT_DRAWS, CMD_SAMPLE},
};

enum method_id { METHOD_EXACT, METHOD_ADA, METHOD_SVD, METHOD_HS,
                 METHOD_CERTIFIED, METHOD_COUNT };
static const char *const method_names[METHOD_COUNT] = {"exact", "ada", "svd",
                                                       "hs", "certified"};

typedef struct options {
  const char *weights, *queries, *out, *hs_model;
  enum method_id method;
  size_t k;
  double eps, delta;
  float beta; /* --temperature: the logits are beta * (A x) */
  size_t calibrate;
  uint64_t seed;
  size_t svd_window, svd_top;
  adasm_isa isa;
  int weights_dtype;             /* an adasm_dtype, or -1: as the file */
  size_t demo_n, demo_d, demo_q; /* demo only */
  /* sample only: --temperature is T (0: greedy), not beta */
  float sample_t, top_p, min_p;
  size_t top_k, draws;
  unsigned long given; /* bit (1 << opt_id) for every option given */
} options;

static void options_default(options *o) {
  memset(o, 0, sizeof *o);
  o->method = METHOD_ADA; /* the contract's default */
  o->k = 1;
  o->eps = 0.3;
  o->delta = 0.1;
  o->beta = 1.0f;
  o->seed = 42;
  o->isa = ADASM_ISA_AUTO;
  o->weights_dtype = -1;
  o->demo_n = 50257; /* GPT-2's vocabulary and width */
  o->demo_d = 768;
  o->demo_q = 20;
  o->sample_t = 1.0f;
  o->top_p = 1.0f; /* off */
  o->draws = 1;
}

/* Strict unsigned integer: decimal digits only (hex with 0x when allowed),
   no sign, no spaces. 0 ok, -1 not a number, -2 too large. */
static int parse_u64(const char *s, int allow_hex, uint64_t *out) {
  unsigned base = 10;
  uint64_t v = 0;
  if (allow_hex && s[0] == '0' && (s[1] == 'x' || s[1] == 'X')) {
    base = 16;
    s += 2;
  }
  if (*s == '\0') return -1;
  for (; *s; s++) {
    unsigned dv;
    if (*s >= '0' && *s <= '9')
      dv = (unsigned)(*s - '0');
    else if (base == 16 && *s >= 'a' && *s <= 'f')
      dv = (unsigned)(*s - 'a') + 10;
    else if (base == 16 && *s >= 'A' && *s <= 'F')
      dv = (unsigned)(*s - 'A') + 10;
    else
      return -1;
    if (v > (UINT64_MAX - dv) / base) return -2;
    v = v * base + dv;
  }
  *out = v;
  return 0;
}

static int opt_size(const char *name, const char *val, size_t min,
                    size_t max, size_t *out) {
  uint64_t v = 0;
  int r = parse_u64(val, 0, &v);
  if (r == -1) {
    errorf("option --%s: '%s' is not a non-negative integer", name, val);
    return EXIT_INPUT;
  }
  if (r == -2 || v > (uint64_t)max || v < (uint64_t)min) {
    if (max == SIZE_MAX)
      errorf("option --%s: %s is out of range (must be >= %zu)", name, val,
             min);
    else
      errorf("option --%s: %s is out of range (must be %zu..%zu)", name,
             val, min, max);
    return EXIT_INPUT;
  }
  *out = (size_t)v;
  return 0;
}

/* A finite number in (lo, hi), both bounds excluded. */
static int opt_double(const char *name, const char *val, double lo,
                      double hi, const char *range, double *out) {
  char *end;
  double v;
  if (val[0] == '\0' || isspace((unsigned char)val[0])) goto nan;
  errno = 0;
  v = strtod(val, &end);
  if (*end != '\0') goto nan;
  if (!isfinite(v) || errno == ERANGE || !(v > lo) || !(v < hi)) {
    errorf("option --%s: %s is out of range (must be %s)", name, val,
           range);
    return EXIT_INPUT;
  }
  *out = v;
  return 0;
nan:
  errorf("option --%s: '%s' is not a number", name, val);
  return EXIT_INPUT;
}

static int parse_isa(const char *val, adasm_isa *out) {
  static const struct {
    const char *name;
    adasm_isa isa;
  } isas[] = {{"auto", ADASM_ISA_AUTO},
              {"scalar", ADASM_ISA_SCALAR},
              {"avx2", ADASM_ISA_AVX2},
              {"avx512", ADASM_ISA_AVX512},
              {"neon", ADASM_ISA_NEON}};
  size_t i;
  for (i = 0; i < sizeof isas / sizeof isas[0]; i++)
    if (strcmp(val, isas[i].name) == 0) {
      *out = isas[i].isa;
      return 0;
    }
  errorf("option --isa: unknown instruction set '%s' (expected auto, "
         "scalar, avx2, avx512 or neon)", val);
  return EXIT_INPUT;
}

/* sample's temperature: 0 (greedy) or finite and > 0 as a float. */
static int opt_sample_t(const char *val, float *out) {
  double v;
  int r = opt_double("temperature", val, -1e-300, (double)3.4e38f,
                     "0 (greedy), or finite and > 0", &v);
  if (r) return r;
  if (v < 0.0 || (v != 0.0 && (float)v == 0.0f)) {
    errorf("option --temperature: %s is out of range (must be 0 (greedy), "
           "or finite and > 0 as a float)", val);
    return EXIT_INPUT;
  }
  *out = (float)v;
  return 0;
}

static int apply_option(options *o, const opt_def *def, const char *val) {
  double v;
  uint64_t u;
  int r;
  switch (def->id) {
  case OPT_WEIGHTS: o->weights = val; return 0;
  case OPT_QUERIES: o->queries = val; return 0;
  case OPT_METHOD: {
    int m;
    for (m = 0; m < METHOD_COUNT; m++)
      if (strcmp(val, method_names[m]) == 0) {
        o->method = (enum method_id)m;
        return 0;
      }
    errorf("option --method: unknown method '%s' (expected exact, ada, svd, "
           "hs or certified)", val);
    return EXIT_INPUT;
  }
  case OPT_K: return opt_size("k", val, 1, SIZE_MAX, &o->k);
  case OPT_EPS: return opt_double("eps", val, 0, 1, "in (0, 1)", &o->eps);
  case OPT_DELTA:
    return opt_double("delta", val, 0, 1, "in (0, 1)", &o->delta);
  case OPT_TEMPERATURE:
    /* > 0 and finite as a float too (1e300 would become inf, 1e-50 zero) */
    r = opt_double("temperature", val, 0, (double)3.4e38f,
                   "finite and > 0", &v);
    if (r) return r;
    if ((float)v == 0.0f) {
      errorf("option --temperature: %s is out of range (must be finite and "
             "> 0 as a float)", val);
      return EXIT_INPUT;
    }
    o->beta = (float)v;
    return 0;
  case OPT_CALIBRATE:
    return opt_size("calibrate", val, 0, SIZE_MAX, &o->calibrate);
  case OPT_SEED:
    r = parse_u64(val, 1, &u);
    if (r) {
      errorf(r == -2 ? "option --seed: %s is out of range (must be "
                       "0..18446744073709551615)"
                     : "option --seed: '%s' is not a non-negative integer",
             val);
      return EXIT_INPUT;
    }
    o->seed = u;
    return 0;
  case OPT_SVD_WINDOW:
    return opt_size("svd-window", val, 1, SIZE_MAX, &o->svd_window);
  case OPT_SVD_TOP: return opt_size("svd-top", val, 1, SIZE_MAX, &o->svd_top);
  case OPT_HS_MODEL: o->hs_model = val; return 0;
  case OPT_OUT: o->out = val; return 0;
  case OPT_ISA: return parse_isa(val, &o->isa);
  case OPT_WEIGHTS_DTYPE:
    if (strcmp(val, "f32") == 0) o->weights_dtype = ADASM_F32;
    else if (strcmp(val, "f16") == 0) o->weights_dtype = ADASM_F16;
    else if (strcmp(val, "bf16") == 0) o->weights_dtype = ADASM_BF16;
    else {
      errorf("option --weights-dtype: unknown dtype '%s' (expected f32, f16 "
             "or bf16)", val);
      return EXIT_INPUT;
    }
    return 0;
  case OPT_N: return opt_size("n", val, 1, (size_t)UINT32_MAX, &o->demo_n);
  case OPT_D: return opt_size("d", val, 1, (size_t)1 << 24, &o->demo_d);
  case OPT_TOP_K: return opt_size("top-k", val, 0, SIZE_MAX, &o->top_k);
  case OPT_TOP_P:
  case OPT_MIN_P:
    /* [0, 1]: opt_double's open interval, widened by the least amount */
    r = opt_double(def->name, val, -1e-300, 1.0 + 2.220446049250313e-16,
                   "in [0, 1]", &v);
    if (r) return r;
    if (v < 0.0) {
      errorf("option --%s: %s is out of range (must be in [0, 1])",
             def->name, val);
      return EXIT_INPUT;
    }
    if (def->id == OPT_TOP_P)
      o->top_p = (float)v;
    else
      o->min_p = (float)v;
    return 0;
  case OPT_DRAWS:
    return opt_size("draws", val, 1, (size_t)1 << 31, &o->draws);
  case OPT_COUNT: break;
  }
  return EXIT_INPUT;
}

/* Parses argv[2..]: "--name value" or "--name=value". Returns -1 to go on,
   0 after printing the usage (--help), or an exit code after an error. */
static int parse_options(int argc, char **argv, unsigned cmd, options *o) {
  unsigned long seen = 0;
  int i;
  for (i = 2; i < argc; i++) {
    const char *arg = argv[i], *val = NULL, *eq;
    size_t len, j;
    const opt_def *def = NULL;
    int r;
    if (strcmp(arg, "--help") == 0 || strcmp(arg, "-h") == 0)
      return print_usage_stdout();
    if (strncmp(arg, "--", 2) != 0 || arg[2] == '\0') {
      errorf("%s: unexpected argument '%s' (options start with --)", argv[1],
             arg);
      return EXIT_INPUT;
    }
    eq = strchr(arg + 2, '=');
    len = eq ? (size_t)(eq - arg - 2) : strlen(arg + 2);
    for (j = 0; j < sizeof opt_defs / sizeof opt_defs[0]; j++)
      if (strlen(opt_defs[j].name) == len &&
          strncmp(opt_defs[j].name, arg + 2, len) == 0 &&
          (opt_defs[j].cmds & cmd))
        def = &opt_defs[j];
    if (def == NULL) {
      errorf("%s: unknown option '%.*s'", argv[1], (int)(len + 2), arg);
      return EXIT_INPUT;
    }
    if (eq) {
      val = eq + 1;
    } else if (i + 1 < argc &&
               !(strncmp(argv[i + 1], "--", 2) == 0 && argv[i + 1][2])) {
      val = argv[++i];
    } else { /* a following "--opt" is taken as a forgotten value */
      errorf("option --%s needs a value", def->name);
      return EXIT_INPUT;
    }
    if (seen & (1ul << def->id)) {
      errorf("option --%s is given twice", def->name);
      return EXIT_INPUT;
    }
    seen |= 1ul << def->id;
    o->given = seen;
    if (val[0] == '\0') {
      errorf("option --%s: empty value", def->name);
      return EXIT_INPUT;
    }
    /* demo's --queries is a count, query's a file; sample's --temperature
       is T >= 0 (0: greedy), query's the factor B > 0 */
    if (cmd == CMD_DEMO && def->id == OPT_QUERIES)
      r = opt_size("queries", val, 1, 1000000, &o->demo_q);
    else if (cmd == CMD_SAMPLE && def->id == OPT_TEMPERATURE)
      r = opt_sample_t(val, &o->sample_t);
    else
      r = apply_option(o, def, val);
    if (r) return r;
  }
  return -1;
}

/* The kernel set for --isa (AUTO: the best the CPU has). */
static int get_kernels(adasm_isa isa, const adasm_kernels **k) {
  adasm_result r = adasm_kernels_get(isa, k);
  if (r == ADASM_ERR_ISA_UNSUPPORTED) {
    errorf("option --isa: instruction set '%s' is not available on this CPU "
           "or in this build", adasm_isa_name(isa));
    return EXIT_INPUT;
  }
  if (r != ADASM_OK || *k == NULL) {
    errorf("cannot get the kernels for '%s': %s", adasm_isa_name(isa),
           adasm_result_string(r));
    return EXIT_INTERNAL;
  }
  return 0;
}

/* ---- methods ----------------------------------------------------------- */

/* What every method sees. Inputs are read-only; `state` is the method's. */
typedef struct method_ctx {
  const adasm_kernels *kern;
  adasm_matrix W; /* the weights as held (--weights-dtype), n x d */
  const float *A; /* n x d, row-major float32: W itself, or W widened for
                     the method that needs float rows (certified) */
  size_t n, d, k;
  float beta;
  double eps, delta;
  uint64_t seed;
  size_t svd_window, svd_top;
  const char *hs_model;
  double ci_scale;  /* ada: the confidence scale used (1 = the proven one) */
  int certified;    /* ada: 1 if --calibrate certified ci_scale */
  uint64_t stream;  /* the query's random stream: its index in the file */
  uint64_t cal_stream; /* the first calibration query's stream */
  uint64_t open_ns; /* preparation done before run_method (hs: the model) */
  void *state;
} method_ctx;

/* Functions return 0, EXIT_INPUT or EXIT_INTERNAL, and on error write a
   message (without the program name) to err. */
typedef struct method_def {
  /* one-off work before the first query (timed as prepare_ns); may be NULL */
  int (*prepare)(method_ctx *m, char *err, size_t errlen);
  /* tune on the first --calibrate queries; NULL: nothing to tune */
  int (*calibrate)(method_ctx *m, const float *X, size_t nq, char *err,
                   size_t errlen);
  /* one query: top (k indices, best first), p (k), log normalizer and the
     multiply-adds spent; NULL: the method is not implemented yet */
  int (*query)(method_ctx *m, const float *x, size_t *top, float *p,
               double *log_norm, uint64_t *samples, char *err,
               size_t errlen);
  void (*release)(method_ctx *m); /* may be NULL */
} method_def;

static int exact_query(method_ctx *m, const float *x, size_t *top, float *p,
                       double *log_norm, uint64_t *samples, char *err,
                       size_t errlen) {
  adasm_exact_params pr = adasm_exact_params_default();
  adasm_exact_result res;
  adasm_result r;
  memset(&res, 0, sizeof res);
  res.idx = top;
  res.prob = p;
  pr.k = m->k;
  pr.beta = m->beta;
  pr.kern = m->kern;
  r = adasm_exact_query(&m->W, &pr, x, NULL, 0, &res);
  if (r != ADASM_OK) {
    snprintf(err, errlen, "%s", adasm_result_string(r));
    return EXIT_INTERNAL;
  }
  *log_norm = res.log_norm;
  *samples = res.madds;
  return 0;
}

/* ---- ada: the index is built once (prepare); one workspace serves every
   query, so a query allocates nothing. */
typedef struct ada_state {
  adasm_ada_index ix;
  adasm_ada_params params;
  void *work;
  size_t work_bytes;
} ada_state;

static void ada_release(method_ctx *m) {
  ada_state *st = (ada_state *)m->state;
  if (!st) return;
  adasm_ada_index_free(&st->ix);
  free(st->work);
  free(st);
  m->state = NULL;
}

static int ada_fail(char *err, size_t errlen, const char *what,
                    adasm_result r) {
  snprintf(err, errlen, "%s: %s", what, adasm_result_string(r));
  return r == ADASM_ERR_NOMEM ? EXIT_INTERNAL : EXIT_INPUT;
}

static int ada_prepare(method_ctx *m, char *err, size_t errlen) {
  ada_state *st = (ada_state *)calloc(1, sizeof *st);
  adasm_result r;
  if (!st) return ada_fail(err, errlen, "index", ADASM_ERR_NOMEM);
  m->state = st;
  r = adasm_ada_index_build(&st->ix, &m->W, 0u, NULL);
  if (r != ADASM_OK) return ada_fail(err, errlen, "building the index", r);
  st->params = adasm_ada_params_default();
  st->params.k = m->k;
  st->params.eps = m->eps;
  st->params.delta = m->delta;
  st->params.beta = m->beta;
  st->params.seed = m->seed;
  st->params.kern = m->kern;
  r = adasm_ada_workspace_size(&st->ix, &st->params, &st->work_bytes);
  if (r != ADASM_OK) return ada_fail(err, errlen, "workspace", r);
  st->work = malloc(st->work_bytes);
  if (!st->work) return ada_fail(err, errlen, "workspace", ADASM_ERR_NOMEM);
  return 0;
}

static int ada_calibrate(method_ctx *m, const float *X, size_t nq, char *err,
                         size_t errlen) {
  ada_state *st = (ada_state *)m->state;
  size_t bytes;
  void *work;
  adasm_result r =
      adasm_ada_calibrate_workspace_size(&st->ix, &st->params, nq, &bytes);
  if (r != ADASM_OK) return ada_fail(err, errlen, "calibration workspace", r);
  work = malloc(bytes);
  if (!work) return ada_fail(err, errlen, "calibration", ADASM_ERR_NOMEM);
  {
    adasm_ada_calibration cal;
    st->params.stream = m->cal_stream;
    r = adasm_ada_calibrate(&st->ix, &st->params, X, nq, m->d, 0.05, work,
                            bytes, &cal);
    free(work);
    if (r != ADASM_OK) return ada_fail(err, errlen, "calibration", r);
    st->params.ci_scale = cal.ci_scale;
    m->ci_scale = cal.ci_scale;
    m->certified = cal.certified;
  }
  return 0;
}

static int ada_query(method_ctx *m, const float *x, size_t *top, float *p,
                     double *log_norm, uint64_t *samples, char *err,
                     size_t errlen) {
  ada_state *st = (ada_state *)m->state;
  adasm_ada_result res;
  adasm_result r;
  memset(&res, 0, sizeof res);
  res.idx = top;
  res.prob = p;
  st->params.stream = m->stream;
  r = adasm_ada_query(&st->ix, &st->params, x, st->work, st->work_bytes, &res);
  if (r != ADASM_OK) return ada_fail(err, errlen, "query", r);
  *log_norm = res.log_norm;
  *samples = res.madds;
  return 0;
}

/* ---- hs: a fastText model trained with -loss hs. It holds its own node
   vectors (no --weights); the queries are its hidden vectors and the top
   ids its classes in the model's label order. The model is opened by
   cmd_query (its shape decides what the queries must look like) and timed
   as the preparation. */
typedef struct hs_state {
  adasm_hs_model model;
  adasm_hs_params params;
  unsigned char *file; /* the .bin: label names point into it */
  void *work;
  size_t work_bytes;
} hs_state;

static void hs_release(method_ctx *m) {
  hs_state *st = (hs_state *)m->state;
  if (!st) return;
  adasm_hs_free(&st->model);
  free(st->file);
  free(st->work);
  free(st);
  m->state = NULL;
}

/* The whole file in memory; one error line on failure. */
static int read_file(const char *path, unsigned char **buf, size_t *len) {
  FILE *f;
  long size;
  errno = 0;
  f = fopen(path, "rb");
  if (!f) {
    errorf("%s: cannot open: %s", path, errno ? strerror(errno) : "?");
    return EXIT_INPUT;
  }
  if (fseek(f, 0, SEEK_END) != 0 || (size = ftell(f)) < 0 ||
      fseek(f, 0, SEEK_SET) != 0) {
    errorf("%s: cannot read: not a regular file", path);
    fclose(f);
    return EXIT_INPUT;
  }
  if ((unsigned long)size > (unsigned long)(SIZE_MAX - 1)) {
    errorf("%s: too large to load", path);
    fclose(f);
    return EXIT_INPUT;
  }
  *buf = (unsigned char *)malloc((size_t)size + 1);
  if (!*buf) {
    errorf("%s: out of memory for %ld bytes", path, size);
    fclose(f);
    return EXIT_INTERNAL;
  }
  *len = fread(*buf, 1, (size_t)size, f);
  if (*len != (size_t)size || ferror(f)) {
    errorf("%s: read error", path);
    free(*buf);
    *buf = NULL;
    fclose(f);
    return EXIT_INPUT;
  }
  fclose(f);
  return 0;
}

/* Loads --hs-model into m (state, n = classes, d = dim). */
static int hs_open(method_ctx *m, const char *path) {
  hs_state *st = (hs_state *)calloc(1, sizeof *st);
  const char *why = NULL;
  size_t len = 0;
  adasm_result r;
  int rc;
  if (!st) {
    errorf("out of memory");
    return EXIT_INTERNAL;
  }
  m->state = st;
  if ((rc = read_file(path, &st->file, &len)) != 0) return rc;
  r = adasm_hs_load_fasttext(&st->model, st->file, len, NULL, &why);
  if (r != ADASM_OK) {
    errorf("%s: not a usable fastText -loss hs model: %s", path,
           why ? why : adasm_result_string(r));
    return r == ADASM_ERR_NOMEM ? EXIT_INTERNAL : EXIT_INPUT;
  }
  m->n = st->model.nlabels;
  m->d = st->model.dim;
  return 0;
}

static int hs_prepare(method_ctx *m, char *err, size_t errlen) {
  hs_state *st = (hs_state *)m->state;
  adasm_result r;
  st->params = adasm_hs_params_default();
  st->params.k = m->k;
  st->params.kern = m->kern;
  r = adasm_hs_workspace_size(&st->model, &st->params, &st->work_bytes);
  if (r != ADASM_OK) return ada_fail(err, errlen, "workspace", r);
  st->work = malloc(st->work_bytes);
  if (!st->work) return ada_fail(err, errlen, "workspace", ADASM_ERR_NOMEM);
  return 0;
}

static int hs_query(method_ctx *m, const float *x, size_t *top, float *p,
                    double *log_norm, uint64_t *samples, char *err,
                    size_t errlen) {
  hs_state *st = (hs_state *)m->state;
  adasm_hs_result res;
  adasm_result r;
  memset(&res, 0, sizeof res);
  res.idx = top;
  res.prob = p;
  r = adasm_hs_topk(&st->model, &st->params, x, st->work, st->work_bytes,
                    &res);
  if (r != ADASM_OK) return ada_fail(err, errlen, "query", r);
  *log_norm = 0.0; /* the leaves' probabilities sum to 1 by construction */
  *samples = res.madds;
  return 0;
}

/* ---- svd: the factorisation is the preparation; W and N were checked
   against d, n and k by cmd_query. */
typedef struct svd_state {
  adasm_svd_model model;
  adasm_svd_params params;
  void *work;
  size_t work_bytes;
} svd_state;

static void svd_release(method_ctx *m) {
  svd_state *st = (svd_state *)m->state;
  if (!st) return;
  adasm_svd_free(&st->model);
  free(st->work);
  free(st);
  m->state = NULL;
}

static int svd_prepare(method_ctx *m, char *err, size_t errlen) {
  svd_state *st = (svd_state *)calloc(1, sizeof *st);
  adasm_result r;
  if (!st) return ada_fail(err, errlen, "model", ADASM_ERR_NOMEM);
  m->state = st;
  r = adasm_svd_build_matrix(&st->model, &m->W, m->kern, NULL);
  if (r != ADASM_OK) return ada_fail(err, errlen, "factorising A", r);
  st->params = adasm_svd_params_default();
  st->params.k = m->k;
  st->params.window = m->svd_window;
  st->params.top = m->svd_top;
  st->params.beta = m->beta;
  st->params.kern = m->kern;
  r = adasm_svd_workspace_size(&st->model, &st->params, &st->work_bytes);
  if (r != ADASM_OK) return ada_fail(err, errlen, "workspace", r);
  st->work = malloc(st->work_bytes);
  if (!st->work) return ada_fail(err, errlen, "workspace", ADASM_ERR_NOMEM);
  return 0;
}

static int svd_query(method_ctx *m, const float *x, size_t *top, float *p,
                     double *log_norm, uint64_t *samples, char *err,
                     size_t errlen) {
  svd_state *st = (svd_state *)m->state;
  adasm_svd_result res;
  adasm_result r;
  res.idx = top;
  res.prob = p;
  r = adasm_svd_query(&st->model, &st->params, x, st->work, st->work_bytes,
                      &res);
  if (r != ADASM_OK) return ada_fail(err, errlen, "query", r);
  *log_norm = res.log_norm;
  *samples = res.madds;
  return 0;
}

/* ---- certified: the index (f16 copy + bounds) is the preparation; one
   workspace serves every query. */
typedef struct cert_state {
  adasm_certified_index ix;
  adasm_certified_params params;
  void *work;
  size_t work_bytes;
} cert_state;

static void cert_release(method_ctx *m) {
  cert_state *st = (cert_state *)m->state;
  if (!st) return;
  adasm_certified_free(&st->ix);
  free(st->work);
  free(st);
  m->state = NULL;
}

static int cert_prepare(method_ctx *m, char *err, size_t errlen) {
  cert_state *st = (cert_state *)calloc(1, sizeof *st);
  adasm_matrix a = adasm_matrix_f32(m->A, m->n, m->d, m->d);
  adasm_result r;
  if (!st) return ada_fail(err, errlen, "index", ADASM_ERR_NOMEM);
  m->state = st;
  r = adasm_certified_build(&st->ix, &a, NULL);
  if (r != ADASM_OK) return ada_fail(err, errlen, "building the index", r);
  st->params = adasm_certified_params_default();
  st->params.k = m->k;
  st->params.beta = m->beta;
  st->params.kern = m->kern;
  r = adasm_certified_workspace_size(&st->ix, &st->params, &st->work_bytes);
  if (r != ADASM_OK) return ada_fail(err, errlen, "workspace", r);
  st->work = malloc(st->work_bytes);
  if (!st->work) return ada_fail(err, errlen, "workspace", ADASM_ERR_NOMEM);
  return 0;
}

static int cert_query(method_ctx *m, const float *x, size_t *top, float *p,
                      double *log_norm, uint64_t *samples, char *err,
                      size_t errlen) {
  cert_state *st = (cert_state *)m->state;
  adasm_certified_result res;
  adasm_result r;
  memset(&res, 0, sizeof res);
  res.idx = top;
  res.prob = p;
  r = adasm_certified_query(&st->ix, &st->params, x, st->work, st->work_bytes,
                            &res);
  if (r != ADASM_OK) {
    snprintf(err, errlen, "%s", adasm_result_string(r));
    return EXIT_INTERNAL;
  }
  *log_norm = res.log_norm;
  *samples = res.madds;
  return 0;
}

/* Indexed by enum method_id. */
static const method_def methods[METHOD_COUNT] = {
    {NULL, NULL, exact_query, NULL},                   /* exact */
    {ada_prepare, ada_calibrate, ada_query, ada_release}, /* ada */
    {svd_prepare, NULL, svd_query, svd_release},       /* svd */
    {hs_prepare, NULL, hs_query, hs_release},          /* hs */
    {cert_prepare, NULL, cert_query, cert_release},    /* certified */
};

static int method_check(enum method_id id) {
  if (methods[id].query == NULL) {
    errorf("method '%s' is not implemented yet", method_names[id]);
    return EXIT_INPUT;
  }
  return 0;
}

/* ---- running the queries ----------------------------------------------- */

typedef struct run_result {
  size_t ncal, count, k;  /* calibration queries; reported queries */
  size_t *qidx;           /* count: their indices in the file */
  size_t *top;            /* count * k */
  float *p;               /* count * k */
  double *log_norm;       /* count */
  uint64_t *samples, *ns; /* count */
  uint64_t prepare_ns, calibrate_ns;
} run_result;

static void run_free(run_result *r) {
  free(r->qidx);
  free(r->top);
  free(r->p);
  free(r->log_norm);
  free(r->samples);
  free(r->ns);
  memset(r, 0, sizeof *r);
}

static int result_finite(const run_result *r, size_t i) {
  size_t j;
  if (!isfinite(r->log_norm[i])) return 0;
  for (j = 0; j < r->k; j++)
    if (!isfinite(r->p[i * r->k + j])) return 0;
  return 1;
}

/* The calibration queries: the first ncal of a seeded shuffle of the nq
   rows of X, copied in file order to Xc; the other rows' indices, in file
   order, to qidx. (A file's prefix is often one part of a corpus.) */
static int split_queries(uint64_t seed, const float *X, size_t nq, size_t d,
                         size_t ncal, size_t *qidx, float *Xc) {
  adasm_pcg32 rng;
  size_t i, c = 0, r = 0, *order = (size_t *)malloc(nq * sizeof(size_t));
  if (!order) return 0;
  adasm_pcg32_seed(&rng, seed, 0xca1u);
  for (i = 0; i < nq; i++) order[i] = i;
  for (i = 0; i < ncal; i++) {
    const size_t j = i + (size_t)adasm_pcg32_bounded64(&rng, nq - i), t = order[i];
    order[i] = order[j];
    order[j] = t;
  }
  qsort(order, ncal, sizeof *order, cmp_size);
  for (i = 0; i < nq; i++) {
    if (c < ncal && order[c] == i) {
      memcpy(Xc + c * d, X + i * d, d * sizeof(float));
      c++;
    } else {
      qidx[r++] = i;
    }
  }
  free(order);
  return 1;
}

/* Prepare, calibrate on `calibrate` queries drawn at random (a prefix of a
   file is often one part of a corpus), then time each of the others alone,
   in file order. Results are kept in memory and written only when every
   query succeeded. Prints its own error line. */
static int run_method(enum method_id id, method_ctx *m, const float *X,
                      size_t nq, size_t calibrate, run_result *res) {
  const method_def *md = &methods[id];
  char err[512];
  size_t i, count = nq - calibrate;
  float *Xc = NULL;
  uint64_t t0;
  int rc = 0;
  memset(res, 0, sizeof *res);
  res->ncal = calibrate;
  res->count = count;
  res->k = m->k;
  if (count > SIZE_MAX / m->k / sizeof(size_t)) {
    errorf("too many results to hold (%zu queries x k=%zu)", count, m->k);
    return EXIT_INTERNAL;
  }
  res->top = (size_t *)malloc(count * m->k * sizeof(size_t));
  res->p = (float *)malloc(count * m->k * sizeof(float));
  res->log_norm = (double *)malloc(count * sizeof(double));
  res->samples = (uint64_t *)malloc(count * sizeof(uint64_t));
  res->ns = (uint64_t *)malloc(count * sizeof(uint64_t));
  res->qidx = (size_t *)malloc(count * sizeof(size_t));
  Xc = calibrate ? (float *)malloc(calibrate * m->d * sizeof(float)) : NULL;
  if (!res->top || !res->p || !res->log_norm || !res->samples || !res->ns ||
      !res->qidx || (calibrate && !Xc) ||
      !split_queries(m->seed, X, nq, m->d, calibrate, res->qidx, Xc)) {
    errorf("out of memory for the results of %zu queries", count);
    free(Xc);
    run_free(res);
    return EXIT_INTERNAL;
  }
  m->cal_stream = (uint64_t)nq; /* streams apart from every reported query's */
  err[0] = '\0';
  t0 = now_ns();
  if (md->prepare) rc = md->prepare(m, err, sizeof err);
  res->prepare_ns = now_ns() - t0 + m->open_ns;
  if (rc) {
    errorf("%s: preparation failed: %s", method_names[id], err);
    goto fail;
  }
  t0 = now_ns();
  if (md->calibrate && calibrate > 0)
    rc = md->calibrate(m, Xc, calibrate, err, sizeof err);
  res->calibrate_ns = now_ns() - t0;
  free(Xc);
  Xc = NULL;
  if (rc) {
    errorf("%s: calibration failed: %s", method_names[id], err);
    goto fail;
  }
  for (i = 0; i < count; i++) {
    const float *x = X + res->qidx[i] * m->d;
    uint64_t t1;
    m->stream = (uint64_t)res->qidx[i];
    t0 = now_ns();
    rc = md->query(m, x, res->top + i * m->k, res->p + i * m->k,
                   res->log_norm + i, res->samples + i, err, sizeof err);
    t1 = now_ns();
    if (rc) {
      errorf("query %zu: %s", res->qidx[i], err);
      goto fail;
    }
    /* JSON has no infinity; and an infinite normalizer is no answer. The
       library reports NaN itself; +inf logits (infinite entries, or float
       overflow of beta * A x) come back as a valid limit we cannot print. */
    if (!result_finite(res, i)) {
      errorf("query %zu: the logits overflow float (infinite or huge values "
             "in the weights or the query): log_norm is not finite",
             res->qidx[i]);
      rc = EXIT_INTERNAL;
      goto fail;
    }
    res->ns[i] = t1 - t0;
  }
  if (md->release) md->release(m);
  return 0;
fail:
  if (md->release) md->release(m);
  free(Xc);
  run_free(res);
  return rc;
}

typedef struct summary {
  double mean_ns, median_ns, mean_samples, gain;
} summary;

static int summarize(const run_result *r, size_t n, size_t d, summary *s) {
  uint64_t *sorted;
  double sum_ns = 0, sum_samples = 0;
  size_t i;
  memset(s, 0, sizeof *s);
  if (r->count == 0) return 0;
  sorted = (uint64_t *)malloc(r->count * sizeof *sorted);
  if (sorted == NULL) {
    errorf("out of memory for the summary");
    return EXIT_INTERNAL;
  }
  for (i = 0; i < r->count; i++) {
    sum_ns += (double)r->ns[i];
    sum_samples += (double)r->samples[i];
    sorted[i] = r->ns[i];
  }
  qsort(sorted, r->count, sizeof *sorted, cmp_u64);
  s->median_ns = r->count % 2
                     ? (double)sorted[r->count / 2]
                     : ((double)sorted[r->count / 2 - 1] +
                        (double)sorted[r->count / 2]) / 2;
  free(sorted);
  s->mean_ns = sum_ns / (double)r->count;
  s->mean_samples = sum_samples / (double)r->count;
  s->gain = s->mean_samples > 0
                ? (double)n * (double)d / s->mean_samples
                : 0;
  return 0;
}

static void write_query_line(output *o, const run_result *r, size_t i) {
  char b[40];
  size_t j;
  out_printf(o, "{\"query\": %zu, \"top\": [", r->qidx[i]);
  for (j = 0; j < r->k; j++)
    out_printf(o, "%s%zu", j ? ", " : "", r->top[i * r->k + j]);
  out_printf(o, "], \"p\": [");
  for (j = 0; j < r->k; j++)
    out_printf(o, "%s%s", j ? ", " : "",
               fmt_float(b, sizeof b, r->p[i * r->k + j]));
  out_printf(o, "], \"log_norm\": %s, ",
             fmt_double(b, sizeof b, r->log_norm[i]));
  out_printf(o, "\"samples\": %" PRIu64 ", \"ns\": %" PRIu64 "}\n",
             r->samples[i], r->ns[i]);
}

static void write_summary(output *o, enum method_id id, const method_ctx *m,
                          const run_result *r, const summary *s) {
  char b[40];
  out_printf(o, "{\"summary\": {\"method\": \"%s\", \"queries\": %zu, "
                "\"n\": %zu, \"d\": %zu, \"k\": %zu, ",
             method_names[id], r->count, m->n, m->d, m->k);
  out_printf(o, "\"mean_ns\": %s, ", fmt_double(b, sizeof b, s->mean_ns));
  out_printf(o, "\"median_ns\": %s, ", fmt_double(b, sizeof b, s->median_ns));
  out_printf(o, "\"mean_samples\": %s, ",
             fmt_double(b, sizeof b, s->mean_samples));
  out_printf(o, "\"gain\": %s, ", fmt_double(b, sizeof b, s->gain));
  out_printf(o, "\"ci_scale\": %s, \"certified\": %s, ",
             fmt_double(b, sizeof b, m->ci_scale),
             m->certified ? "true" : "false");
  out_printf(o, "\"prepare_ns\": %" PRIu64 ", \"calibrate\": %zu, "
                "\"calibrate_ns\": %" PRIu64 ", ",
             r->prepare_ns, r->ncal, r->calibrate_ns);
  if (id == METHOD_SVD)
    out_printf(o, "\"svd_window\": %zu, \"svd_top\": %zu, ", m->svd_window,
               m->svd_top);
  out_printf(o, "\"isa\": \"%s\", ", adasm_isa_name(adasm_kernels_isa(m->kern)));
  out_printf(o, "\"eps\": %s, ", fmt_double(b, sizeof b, m->eps));
  out_printf(o, "\"delta\": %s, ", fmt_double(b, sizeof b, m->delta));
  out_printf(o, "\"temperature\": %s, ", fmt_float(b, sizeof b, m->beta));
  out_printf(o, "\"seed\": %" PRIu64 "}}\n", m->seed);
}

/* SVD's window and refined rows: the options', or a window of d/8 (at
   least 16) and 512 refined rows (at least k), within the head's shape:
   adasm_svd_params' defaults, worked out here because the summary prints
   them and the option checks name them. */
static void svd_defaults(const options *o, size_t n, size_t d, size_t *w,
                         size_t *t) {
  *w = o->svd_window ? o->svd_window : d / 8 > 16 ? d / 8 : 16;
  *t = o->svd_top ? o->svd_top : o->k > 512 ? o->k : 512;
  if (!o->svd_window && *w > d) *w = d;
  if (!o->svd_top && *t > n) *t = n;
}

static void method_ctx_init(method_ctx *m, const options *o,
                            const adasm_kernels *kern, const float *A,
                            size_t n, size_t d) {
  memset(m, 0, sizeof *m);
  m->kern = kern;
  m->W = adasm_matrix_f32(A, n, d, d);
  m->A = A;
  m->n = n;
  m->d = d;
  m->k = o->k;
  m->beta = o->beta;
  m->eps = o->eps;
  m->delta = o->delta;
  m->seed = o->seed;
  svd_defaults(o, n, d, &m->svd_window, &m->svd_top);
  m->hs_model = o->hs_model;
  m->ci_scale = 1.0;
  m->certified = 0;
}

/* ---- query command ----------------------------------------------------- */

static const char *dtype_name(adasm_dtype t) {
  return t == ADASM_F32 ? "f32" : t == ADASM_F16 ? "f16" : "bf16";
}

/* The weights as --weights-dtype asks (want < 0: as the file): a '<f4' or
   '<f2' file is converted if needed (rounded to nearest even), a '<u2' file
   is raw bfloat16 bits and only read as bf16. *W views the held rows (the
   file's buffer in a->data, or *conv). When need_f32, *F32 gets float32
   rows: W's own, or *wide, W widened exactly. Shapes are checked by the
   caller. One error line; 0 or an exit code. */
static int load_weights(const char *path, int want, int need_f32,
                        npy_array *a, void **conv, float **wide,
                        adasm_matrix *W, const float **F32) {
  char err[512];
  size_t n, d, count;
  adasm_dtype ft, t;
  int r = npy_read(path, NPY_F4 | NPY_F2 | NPY_U2, 2, a, err, sizeof err);
  if (r != NPY_OK) {
    errorf("%s: %s", path ? path : "?", err);
    return r == NPY_ERR_NOMEM ? EXIT_INTERNAL : EXIT_INPUT;
  }
  n = a->shape[0];
  d = a->shape[1];
  count = n * d; /* npy checked that it fits */
  if (count > SIZE_MAX / sizeof(float)) {
    errorf("%s: %zu x %zu weights are too large to hold", path, n, d);
    return EXIT_INPUT;
  }
  ft = a->dtype == NPY_F4 ? ADASM_F32 : a->dtype == NPY_F2 ? ADASM_F16 : ADASM_BF16;
  if (a->dtype == NPY_U2 && want != ADASM_BF16) {
    errorf("%s: '<u2' weights are raw bfloat16 bits: they need "
           "--weights-dtype bf16", path);
    return EXIT_INPUT;
  }
  t = want < 0 ? ft : (adasm_dtype)want;
  *W = adasm_matrix_f32((const float *)a->data, n, d, d);
  W->dtype = t;
  if (t != ft) { /* convert, then drop the file's copy */
    *conv = malloc(count ? count * (t == ADASM_F32 ? 4 : 2) : 1);
    if (!*conv) {
      errorf("%s: out of memory converting %zu x %zu weights to %s", path, n,
             d, dtype_name(t));
      return EXIT_INTERNAL;
    }
    if (adasm_convert(NULL, a->data, ft, count, *conv, t) != ADASM_OK) {
      errorf("%s: cannot convert the weights to %s", path, dtype_name(t));
      return EXIT_INTERNAL;
    }
    npy_free(a);
    W->data = *conv;
  }
  *F32 = t == ADASM_F32 ? (const float *)W->data : NULL;
  if (need_f32 && t != ADASM_F32) {
    *wide = (float *)malloc(count ? count * sizeof(float) : 1);
    if (!*wide) {
      errorf("%s: out of memory widening %zu x %zu weights to float32", path,
             n, d);
      return EXIT_INTERNAL;
    }
    if (adasm_convert(NULL, W->data, t, count, *wide, ADASM_F32) != ADASM_OK) {
      errorf("%s: cannot widen the weights to float32", path);
      return EXIT_INTERNAL;
    }
    *F32 = *wide;
  }
  return 0;
}

static int load_matrix(const char *path, npy_array *a) {
  char err[512];
  int r = npy_read(path, NPY_F4, 2, a, err, sizeof err);
  if (r != NPY_OK) {
    /* (path is never NULL; the test keeps gcc's -Wformat-overflow quiet
       after it inlines npy_read's argument check) */
    errorf("%s: %s", path ? path : "?", err);
    return r == NPY_ERR_NOMEM ? EXIT_INTERNAL : EXIT_INPUT;
  }
  return 0;
}

static int cmd_query(int argc, char **argv) {
  options o;
  npy_array A, X;
  void *conv = NULL; /* the weights converted to --weights-dtype */
  float *wide = NULL; /* 16-bit weights widened for ada and certified */
  const adasm_kernels *kern = NULL;
  method_ctx m;
  run_result res;
  summary s;
  output out;
  size_t n, d, q, i;
  int rc;
  memset(&A, 0, sizeof A);
  memset(&X, 0, sizeof X);
  memset(&res, 0, sizeof res);
  options_default(&o);
  memset(&m, 0, sizeof m);
  rc = parse_options(argc, argv, CMD_QUERY, &o);
  if (rc >= 0) return rc;
  if (o.method == METHOD_HS) { /* the model is the weights */
    if (o.hs_model == NULL) {
      errorf("query: --method hs needs --hs-model (a fastText model "
             "trained with -loss hs)");
      return EXIT_INPUT;
    }
    if (o.weights != NULL) {
      errorf("query: --weights is not used by --method hs (the model "
             "holds its node vectors)");
      return EXIT_INPUT;
    }
    if (o.beta != 1.0f) {
      errorf("option --temperature: not supported by --method hs (its "
             "probabilities are products of sigmoids)");
      return EXIT_INPUT;
    }
    if (o.weights_dtype >= 0) {
      errorf("option --weights-dtype: only used with --weights (--method hs "
             "reads its model's float32 vectors)");
      return EXIT_INPUT;
    }
  } else {
    if (o.weights == NULL) {
      errorf("query: --weights is required");
      return EXIT_INPUT;
    }
    if (o.hs_model != NULL) {
      errorf("option --hs-model: only used by --method hs");
      return EXIT_INPUT;
    }
  }
  if (o.method != METHOD_SVD && (o.svd_window || o.svd_top)) {
    errorf("option --%s: only used by --method svd",
           o.svd_window ? "svd-window" : "svd-top");
    return EXIT_INPUT;
  }
  if (o.queries == NULL) {
    errorf("query: --queries is required");
    return EXIT_INPUT;
  }
  if ((rc = method_check(o.method)) != 0) return rc;
  if ((rc = get_kernels(o.isa, &kern)) != 0) return rc;
  method_ctx_init(&m, &o, kern, NULL, 0, 0);
  if (o.method == METHOD_HS) {
    uint64_t t0 = now_ns();
    if ((rc = hs_open(&m, o.hs_model)) != 0) goto done;
    m.open_ns = now_ns() - t0;
    n = m.n;
    d = m.d;
  } else {
    /* certified screens float32 rows: 16-bit weights are widened for it */
    const int need_f32 = o.method == METHOD_CERTIFIED;
    if ((rc = load_weights(o.weights, o.weights_dtype, need_f32, &A, &conv,
                           &wide, &m.W, &m.A)) != 0)
      goto done;
    n = m.W.rows;
    d = m.W.cols;
    if (n == 0 || d == 0) {
      errorf("%s: the weights have no %s (shape (%zu, %zu))", o.weights,
             n == 0 ? "rows" : "columns", n, d);
      rc = EXIT_INPUT;
      goto done;
    }
    m.n = n;
    m.d = d;
  }
  if ((rc = load_matrix(o.queries, &X)) != 0) goto done;
  q = X.shape[0];
  if (q == 0) {
    errorf("%s: there are no queries (shape (0, %zu))", o.queries,
           X.shape[1]);
    rc = EXIT_INPUT;
    goto done;
  }
  if (X.shape[1] != d) {
    errorf("%s: the queries have %zu columns but the %s of %s have %zu "
           "(d must match)", o.queries, X.shape[1],
           o.weights ? "rows" : "node vectors",
           o.weights ? o.weights : o.hs_model, d);
    rc = EXIT_INPUT;
    goto done;
  }
  if (o.k > n) {
    errorf("option --k: %zu is larger than the number of %s of %s (%zu)",
           o.k, o.weights ? "rows" : "classes",
           o.weights ? o.weights : o.hs_model, n);
    rc = EXIT_INPUT;
    goto done;
  }
  if (o.method == METHOD_SVD) {
    size_t w, t;
    svd_defaults(&o, n, d, &w, &t);
    if (w > d) {
      errorf("option --svd-window: %zu is larger than d, the number of "
             "columns of %s (%zu)", w, o.weights, d);
      rc = EXIT_INPUT;
      goto done;
    }
    if (t > n) {
      errorf("option --svd-top: %zu is larger than the number of rows of "
             "%s (%zu)", t, o.weights, n);
      rc = EXIT_INPUT;
      goto done;
    }
    if (o.k > t) {
      errorf("option --k: %zu is larger than --svd-top (%zu): only refined "
             "rows are returned", o.k, t);
      rc = EXIT_INPUT;
      goto done;
    }
    m.svd_window = w;
    m.svd_top = t;
  }
  if (o.calibrate >= q) {
    errorf("option --calibrate: %zu must be smaller than the number of "
           "queries in %s (%zu)", o.calibrate, o.queries, q);
    rc = EXIT_INPUT;
    goto done;
  }
  rc = run_method(o.method, &m, (const float *)X.data, q, o.calibrate, &res);
  if (rc) goto done;
  if ((rc = summarize(&res, n, d, &s)) != 0) goto done;
  /* Opened only now: a failed run leaves an existing file untouched. */
  out.failed = 0;
  out.err = 0;
  out.f = stdout;
  if (o.out) {
    errno = 0;
    out.f = fopen(o.out, "w");
    if (out.f == NULL) {
      errorf("%s: cannot create: %s", o.out,
             errno ? strerror(errno) : "unknown error");
      rc = EXIT_INPUT;
      goto done;
    }
  }
  for (i = 0; i < res.count; i++) write_query_line(&out, &res, i);
  write_summary(&out, o.method, &m, &res, &s);
  rc = out_finish(&out, o.out ? o.out : "stdout");
done:
  if (m.state && methods[o.method].release) methods[o.method].release(&m);
  run_free(&res);
  npy_free(&A);
  npy_free(&X);
  free(conv);
  free(wide);
  return rc;
}

/* ---- sample command ---------------------------------------------------- */

/* What a sampling method sees. params is the chain (bias and penalties are
   library-only); cmd_sample sets params.stream and params.draw before each
   draw, so the random numbers of (query q, draw i) depend only on (seed,
   q, i). `state` is the method's. */
typedef struct sample_ctx {
  const adasm_kernels *kern;
  adasm_matrix A; /* n x d */
  size_t n, d;
  adasm_sampler_params params;
  double eps, delta;             /* ada */
  double ci_scale;   /* ada: the confidence scale used (1 = the proven one) */
  int certified;     /* ada: 1 if --calibrate certified ci_scale */
  uint64_t cal_stream; /* ada: the first calibration query's stream */
  void *state;
} sample_ctx;

/* Functions return 0, EXIT_INPUT or EXIT_INTERNAL, and on error write a
   message (without the program name) to err. */
typedef struct sample_method_def {
  /* one-off work before the first draw (timed as prepare_ns); may be NULL */
  int (*prepare)(sample_ctx *s, char *err, size_t errlen);
  /* tune on the first --calibrate queries; NULL: nothing to tune */
  int (*calibrate)(sample_ctx *s, const float *X, size_t nq, char *err,
                   size_t errlen);
  /* one draw from query row x: token, p, log_norm and madds in res;
     NULL: the method cannot sample (yet) */
  int (*draw)(sample_ctx *s, const float *x, adasm_sampler_result *res,
              char *err, size_t errlen);
  void (*release)(sample_ctx *s); /* may be NULL */
} sample_method_def;

/* ---- exact: adasm_exact_sample, one read of A per draw. */
typedef struct exact_sample_state {
  void *work;
  size_t work_bytes;
} exact_sample_state;

static void exact_sample_release(sample_ctx *s) {
  exact_sample_state *st = (exact_sample_state *)s->state;
  if (!st) return;
  free(st->work);
  free(st);
  s->state = NULL;
}

static int exact_sample_prepare(sample_ctx *s, char *err, size_t errlen) {
  exact_sample_state *st =
      (exact_sample_state *)calloc(1, sizeof(exact_sample_state));
  adasm_result r;
  if (!st) return ada_fail(err, errlen, "workspace", ADASM_ERR_NOMEM);
  s->state = st;
  r = adasm_exact_sample_workspace_size(&s->A, &s->params, &st->work_bytes);
  if (r != ADASM_OK) return ada_fail(err, errlen, "workspace", r);
  st->work = malloc(st->work_bytes ? st->work_bytes : 1);
  if (!st->work) return ada_fail(err, errlen, "workspace", ADASM_ERR_NOMEM);
  return 0;
}

static int exact_sample_draw(sample_ctx *s, const float *x,
                             adasm_sampler_result *res, char *err,
                             size_t errlen) {
  exact_sample_state *st = (exact_sample_state *)s->state;
  adasm_result r = adasm_exact_sample(&s->A, &s->params, x, st->work,
                                      st->work_bytes, res);
  if (r != ADASM_OK) {
    snprintf(err, errlen, "%s", adasm_result_string(r));
    return EXIT_INTERNAL;
  }
  return 0;
}

/* ---- ada: adasm_ada_sample on an index built once; the confidence scale
   certified by adasm_ada_sample_calibrate (a failure: a draw other than
   the exact sampler's). */
typedef struct ada_sample_state {
  adasm_ada_index ix;
  void *work;
  size_t work_bytes;
} ada_sample_state;

static void ada_sample_release(sample_ctx *s) {
  ada_sample_state *st = (ada_sample_state *)s->state;
  if (!st) return;
  adasm_ada_index_free(&st->ix);
  free(st->work);
  free(st);
  s->state = NULL;
}

static adasm_ada_sample_params ada_sample_params(const sample_ctx *s) {
  adasm_ada_sample_params p = adasm_ada_sample_params_default();
  p.chain = s->params;
  p.eps = s->eps;
  p.delta = s->delta;
  p.ci_scale = s->ci_scale;
  return p;
}

static int ada_sample_prepare(sample_ctx *s, char *err, size_t errlen) {
  ada_sample_state *st = (ada_sample_state *)calloc(1, sizeof *st);
  adasm_ada_sample_params p = ada_sample_params(s);
  adasm_result r;
  if (!st) return ada_fail(err, errlen, "index", ADASM_ERR_NOMEM);
  s->state = st;
  r = adasm_ada_index_build(&st->ix, &s->A, 0u, NULL);
  if (r != ADASM_OK) return ada_fail(err, errlen, "building the index", r);
  r = adasm_ada_sample_workspace_size(&st->ix, &p, &st->work_bytes);
  if (r != ADASM_OK) return ada_fail(err, errlen, "workspace", r);
  st->work = malloc(st->work_bytes);
  if (!st->work) return ada_fail(err, errlen, "workspace", ADASM_ERR_NOMEM);
  return 0;
}

/* The sampler's own certificate: draws that differ from the exact
   sampler's (adasm_ada_sample_calibrate), streams apart from the reported
   queries'. */
static int ada_sample_calibrate(sample_ctx *s, const float *X, size_t nq,
                                char *err, size_t errlen) {
  ada_sample_state *st = (ada_sample_state *)s->state;
  adasm_ada_sample_params p = ada_sample_params(s);
  adasm_ada_calibration cal;
  size_t bytes;
  void *work;
  adasm_result r;
  p.chain.stream = s->cal_stream;
  r = adasm_ada_sample_calibrate_workspace_size(&st->ix, &p, nq, &bytes);
  if (r != ADASM_OK) return ada_fail(err, errlen, "calibration workspace", r);
  work = malloc(bytes);
  if (!work) return ada_fail(err, errlen, "calibration", ADASM_ERR_NOMEM);
  r = adasm_ada_sample_calibrate(&st->ix, &p, X, nq, s->d, 0.05, work, bytes, &cal);
  free(work);
  if (r != ADASM_OK) return ada_fail(err, errlen, "calibration", r);
  s->ci_scale = cal.ci_scale;
  s->certified = cal.certified;
  return 0;
}

static int ada_sample_draw(sample_ctx *s, const float *x,
                           adasm_sampler_result *res, char *err,
                           size_t errlen) {
  ada_sample_state *st = (ada_sample_state *)s->state;
  adasm_ada_sample_params p = ada_sample_params(s);
  adasm_ada_sample_result o;
  adasm_result r = adasm_ada_sample(&st->ix, &p, x, st->work, st->work_bytes, &o);
  if (r != ADASM_OK) return ada_fail(err, errlen, "draw", r);
  res->token = o.token;
  res->p = o.p;
  res->log_norm = o.log_norm;
  res->kept = o.kept;
  res->madds = o.madds;
  return 0;
}

/* Indexed by enum method_id; svd and hs do not sample. */
static const sample_method_def sample_methods[METHOD_COUNT] = {
    {exact_sample_prepare, NULL, exact_sample_draw, exact_sample_release},
    {ada_sample_prepare, ada_sample_calibrate, ada_sample_draw,
     ada_sample_release},
    {NULL, NULL, NULL, NULL},
    {NULL, NULL, NULL, NULL},
};

static void write_sample_line(output *o, size_t query, size_t draw,
                              size_t token, float p, double log_norm,
                              uint64_t samples, uint64_t ns) {
  char b[40], c[40];
  out_printf(o, "{\"query\": %zu, \"draw\": %zu, \"token\": %zu, \"p\": %s, "
                "\"log_norm\": %s, ",
             query, draw, token, fmt_float(b, sizeof b, p),
             fmt_double(c, sizeof c, log_norm));
  out_printf(o, "\"samples\": %" PRIu64 ", \"ns\": %" PRIu64 "}\n", samples,
             ns);
}

static int cmd_sample(int argc, char **argv) {
  options o;
  npy_array A, X;
  const adasm_kernels *kern = NULL;
  const sample_method_def *md;
  sample_ctx s;
  run_result res; /* one entry per line: top[i] the token, p[i] its p */
  summary sm;
  output out;
  size_t n, d, q, i, j, lines;
  uint64_t t0;
  char err[512];
  float *Xc = NULL;
  int rc;
  memset(&A, 0, sizeof A);
  memset(&X, 0, sizeof X);
  memset(&res, 0, sizeof res);
  memset(&s, 0, sizeof s);
  options_default(&o);
  rc = parse_options(argc, argv, CMD_SAMPLE, &o);
  if (rc >= 0) return rc;
  if (!(o.given & (1ul << OPT_METHOD))) o.method = METHOD_EXACT;
  md = &sample_methods[o.method];
  if (md->draw == NULL) {
    errorf("sample: --method %s does not sample (expected exact or ada)",
           method_names[o.method]);
    return EXIT_INPUT;
  }
  if (o.method != METHOD_ADA) {
    static const enum opt_id ada_only[] = {OPT_EPS, OPT_DELTA, OPT_CALIBRATE};
    static const char *const ada_names[] = {"eps", "delta", "calibrate"};
    for (i = 0; i < 3; i++)
      if (o.given & (1ul << ada_only[i])) {
        errorf("option --%s: only used by --method ada", ada_names[i]);
        return EXIT_INPUT;
      }
  }
  if (o.weights == NULL) {
    errorf("sample: --weights is required");
    return EXIT_INPUT;
  }
  if (o.queries == NULL) {
    errorf("sample: --queries is required");
    return EXIT_INPUT;
  }
  if ((rc = get_kernels(o.isa, &kern)) != 0) return rc;
  if ((rc = load_matrix(o.weights, &A)) != 0) goto done;
  n = A.shape[0];
  d = A.shape[1];
  if (n == 0 || d == 0) {
    errorf("%s: the weights have no %s (shape (%zu, %zu))", o.weights,
           n == 0 ? "rows" : "columns", n, d);
    rc = EXIT_INPUT;
    goto done;
  }
  if (n > (size_t)UINT32_MAX - 1) {
    errorf("%s: %zu rows: sampling takes fewer than 2^32", o.weights, n);
    rc = EXIT_INPUT;
    goto done;
  }
  if ((rc = load_matrix(o.queries, &X)) != 0) goto done;
  q = X.shape[0];
  if (q == 0) {
    errorf("%s: there are no queries (shape (0, %zu))", o.queries,
           X.shape[1]);
    rc = EXIT_INPUT;
    goto done;
  }
  if (X.shape[1] != d) {
    errorf("%s: the queries have %zu columns but the rows of %s have %zu "
           "(d must match)", o.queries, X.shape[1], o.weights, d);
    rc = EXIT_INPUT;
    goto done;
  }
  if (o.calibrate >= q) {
    errorf("option --calibrate: %zu must be smaller than the number of "
           "queries in %s (%zu)", o.calibrate, o.queries, q);
    rc = EXIT_INPUT;
    goto done;
  }
  if ((q - o.calibrate) > SIZE_MAX / o.draws / sizeof(size_t)) {
    errorf("too many results to hold (%zu queries x %zu draws)",
           q - o.calibrate, o.draws);
    rc = EXIT_INTERNAL;
    goto done;
  }
  lines = (q - o.calibrate) * o.draws;
  s.kern = kern;
  s.A = adasm_matrix_f32((const float *)A.data, n, d, d);
  s.n = n;
  s.d = d;
  s.params = adasm_sampler_params_default();
  s.params.temperature = o.sample_t;
  s.params.top_k = o.top_k;
  s.params.top_p = o.top_p;
  s.params.min_p = o.min_p;
  s.params.seed = o.seed;
  s.params.kern = kern;
  s.eps = o.eps;
  s.delta = o.delta;
  s.ci_scale = 1.0;
  s.certified = 0;
  res.ncal = o.calibrate;
  res.qidx = (size_t *)malloc((q - o.calibrate) * sizeof(size_t));
  Xc = o.calibrate ? (float *)malloc(o.calibrate * d * sizeof(float)) : NULL;
  s.cal_stream = (uint64_t)q; /* streams apart from every reported query's */
  res.count = lines;
  res.k = 1;
  res.top = (size_t *)malloc(lines * sizeof(size_t));
  res.p = (float *)malloc(lines * sizeof(float));
  res.log_norm = (double *)malloc(lines * sizeof(double));
  res.samples = (uint64_t *)malloc(lines * sizeof(uint64_t));
  res.ns = (uint64_t *)malloc(lines * sizeof(uint64_t));
  if (!res.top || !res.p || !res.log_norm || !res.samples || !res.ns ||
      !res.qidx || (o.calibrate && !Xc) ||
      !split_queries(o.seed, (const float *)X.data, q, d, o.calibrate,
                     res.qidx, Xc)) {
    errorf("out of memory for the results of %zu draws", lines);
    rc = EXIT_INTERNAL;
    goto done;
  }
  err[0] = '\0';
  t0 = now_ns();
  rc = md->prepare ? md->prepare(&s, err, sizeof err) : 0;
  res.prepare_ns = now_ns() - t0;
  if (rc) {
    errorf("%s: preparation failed: %s", method_names[o.method], err);
    goto done;
  }
  t0 = now_ns();
  if (md->calibrate && o.calibrate > 0)
    rc = md->calibrate(&s, Xc, o.calibrate, err, sizeof err);
  res.calibrate_ns = now_ns() - t0;
  if (rc) {
    errorf("%s: calibration failed: %s", method_names[o.method], err);
    goto done;
  }
  for (i = 0; i < q - o.calibrate; i++)
    for (j = 0; j < o.draws; j++) {
      const size_t qi = res.qidx[i], line = i * o.draws + j;
      adasm_sampler_result r;
      uint64_t t1;
      memset(&r, 0, sizeof r);
      s.params.stream = qi;
      s.params.draw = j;
      t0 = now_ns();
      rc = md->draw(&s, (const float *)X.data + qi * d, &r, err, sizeof err);
      t1 = now_ns();
      if (rc) {
        errorf("query %zu draw %zu: %s", qi, j, err);
        goto done;
      }
      if (!isfinite(r.log_norm) || !isfinite(r.p)) { /* as in query */
        errorf("query %zu: the logits overflow float (infinite or huge "
               "values in the weights or the query): log_norm is not finite",
               qi);
        rc = EXIT_INTERNAL;
        goto done;
      }
      res.top[line] = r.token;
      res.p[line] = r.p;
      res.log_norm[line] = r.log_norm;
      res.samples[line] = r.madds;
      res.ns[line] = t1 - t0;
    }
  if ((rc = summarize(&res, n, d, &sm)) != 0) goto done;
  /* Opened only now: a failed run leaves an existing file untouched. */
  out.failed = 0;
  out.err = 0;
  out.f = stdout;
  if (o.out) {
    errno = 0;
    out.f = fopen(o.out, "w");
    if (out.f == NULL) {
      errorf("%s: cannot create: %s", o.out,
             errno ? strerror(errno) : "unknown error");
      rc = EXIT_INPUT;
      goto done;
    }
  }
  for (i = 0; i < lines; i++)
    write_sample_line(&out, res.qidx[i / o.draws], i % o.draws, res.top[i],
                      res.p[i], res.log_norm[i], res.samples[i], res.ns[i]);
  {
    char b[40];
    out_printf(&out, "{\"summary\": {\"method\": \"%s\", \"queries\": %zu, "
                     "\"draws\": %zu, \"n\": %zu, \"d\": %zu, ",
               method_names[o.method], q - o.calibrate, o.draws, n, d);
    out_printf(&out, "\"mean_ns\": %s, ", fmt_double(b, sizeof b, sm.mean_ns));
    out_printf(&out, "\"median_ns\": %s, ", fmt_double(b, sizeof b, sm.median_ns));
    out_printf(&out, "\"mean_samples\": %s, ",
               fmt_double(b, sizeof b, sm.mean_samples));
    out_printf(&out, "\"gain\": %s, ", fmt_double(b, sizeof b, sm.gain));
    out_printf(&out, "\"ci_scale\": %s, \"certified\": %s, ",
               fmt_double(b, sizeof b, s.ci_scale), s.certified ? "true" : "false");
    out_printf(&out, "\"prepare_ns\": %" PRIu64 ", \"calibrate\": %zu, "
                     "\"calibrate_ns\": %" PRIu64 ", ",
               res.prepare_ns, o.calibrate, res.calibrate_ns);
    out_printf(&out, "\"isa\": \"%s\", ", adasm_isa_name(adasm_kernels_isa(kern)));
    out_printf(&out, "\"temperature\": %s, ", fmt_float(b, sizeof b, o.sample_t));
    out_printf(&out, "\"top_k\": %zu, ", o.top_k);
    out_printf(&out, "\"top_p\": %s, ", fmt_float(b, sizeof b, o.top_p));
    out_printf(&out, "\"min_p\": %s, ", fmt_float(b, sizeof b, o.min_p));
    out_printf(&out, "\"seed\": %" PRIu64 "}}\n", o.seed);
  }
  rc = out_finish(&out, o.out ? o.out : "stdout");
done:
  free(Xc);
  if (s.state && md && md->release) md->release(&s);
  run_free(&res);
  npy_free(&A);
  npy_free(&X);
  return rc;
}

/* ---- demo -------------------------------------------------------------- */

/* Exact reference in double for one query: argmax and logsumexp, with a
   running (max, sum) pair so the logits need not be stored. */
static void reference(const float *A, size_t n, size_t d, const float *x,
                      float beta, size_t *argmax, double *lse) {
  size_t i, j, best = 0;
  double m = -HUGE_VAL, s = 0;
  for (i = 0; i < n; i++) {
    const float *a = A + i * d;
    double acc = 0, zi;
    for (j = 0; j < d; j++) acc += (double)a[j] * (double)x[j];
    zi = (double)beta * acc;
    if (zi > m) {
      s = s * exp(m - zi) + 1.0;
      m = zi;
      best = i;
    } else {
      s += exp(zi - m);
    }
  }
  *argmax = best;
  *lse = m + log(s);
}

/* The methods the demo compares, exact first (the others are measured
   against it); hierarchical softmax needs a tree trained with its head, so
   it has a line but no run. */
static const enum method_id demo_methods[] = {METHOD_EXACT, METHOD_ADA, METHOD_SVD};
#define DEMO_NMETHODS (sizeof demo_methods / sizeof demo_methods[0])

typedef struct demo_row {
  double setup_s, cal_s, ms, speedup, max_prel, madds;
  size_t agree, fallbacks; /* top-1 = double argmax; queries read n d */
} demo_row;

/* One method's row: its answers against the double reference. */
static void demo_score(const method_ctx *m, const run_result *res,
                       const summary *s, const float *A, const float *X,
                       const size_t *ref_top, const double *ref_lse,
                       double exact_ms, demo_row *row) {
  size_t i, j, d = m->d;
  memset(row, 0, sizeof *row);
  for (i = 0; i < res->count; i++) {
    const size_t q = res->qidx[i], top1 = res->top[i * res->k];
    const float *a = A + top1 * d;
    double acc = 0, p_ref, rel;
    /* the returned top-1's probability, in double, from the same floats */
    for (j = 0; j < d; j++) acc += (double)a[j] * (double)X[q * d + j];
    p_ref = exp((double)m->beta * acc - ref_lse[i]);
    rel = fabs((double)res->p[i * res->k] - p_ref) / p_ref;
    row->max_prel = rel > row->max_prel ? rel : row->max_prel;
    row->agree += top1 == ref_top[i];
    row->fallbacks += res->samples[i] >= (uint64_t)m->n * (uint64_t)d;
  }
  row->setup_s = (double)res->prepare_ns * 1e-9;
  row->cal_s = (double)res->calibrate_ns * 1e-9;
  row->ms = s->median_ns * 1e-6;
  row->speedup = row->ms > 0 ? exact_ms / row->ms : 0;
  row->madds = s->mean_samples;
}

/* The last line: what a user should take from the table. */
static void demo_takeaway(output *out, const demo_row *r, size_t q,
                          double eps) {
  const demo_row *ex = &r[0], *ada = &r[1], *svd = &r[2];
  if (ada->speedup >= 1.2)
    out_printf(out,
               "takeaway: AdaSoftmax: the exact top-1 for %zu/%zu, p within "
               "%.0f%% (eps %.0f%%), %.1fx faster than exact reading %.0fx "
               "fewer weights (setup %.1f s, once per head); SVD-softmax "
               "%.1fx, with no guarantee\n",
               ada->agree, q, 100.0 * ada->max_prel, 100.0 * eps, ada->speedup,
               ada->madds > 0 ? ex->madds / ada->madds : 0.0,
               ada->setup_s + ada->cal_s, svd->speedup);
  else
    out_printf(out,
               "takeaway: AdaSoftmax is not faster than exact on this head "
               "(%.2fx; %zu/%zu queries fell back to it): a head this small is "
               "read faster whole; on LM-sized heads it wins (bash "
               "bench/run.sh heads)\n",
               ada->speedup, ada->fallbacks, q);
}

static int cmd_demo(int argc, char **argv) {
  options o;
  const adasm_kernels *kern = NULL;
  float *A = NULL, *X = NULL;
  size_t *ref_top = NULL;
  double *ref_lse = NULL;
  demo_row rows[DEMO_NMETHODS];
  method_ctx m;
  run_result res;
  summary s;
  output out;
  lmhead_info info;
  size_t n, d, q, cal, total, i, mi;
  uint64_t t0, gen_ns;
  int rc;
  memset(&res, 0, sizeof res);
  options_default(&o);
  rc = parse_options(argc, argv, CMD_DEMO, &o);
  if (rc >= 0) return rc;
  n = o.demo_n;
  d = o.demo_d;
  q = o.demo_q;
  cal = (o.given & (1ul << OPT_CALIBRATE)) ? o.calibrate : 100;
  if (n < LMHEAD_MIN_DIM || d < LMHEAD_MIN_DIM) {
    errorf("demo: --n and --d must be at least %d", LMHEAD_MIN_DIM);
    return EXIT_INPUT;
  }
  if (o.k > n) {
    errorf("option --k: %zu is larger than --n (%zu)", o.k, n);
    return EXIT_INPUT;
  }
  if (cal > 1000000) {
    errorf("option --calibrate: %zu is out of range (at most 1000000 in the demo)", cal);
    return EXIT_INPUT;
  }
  if ((rc = get_kernels(o.isa, &kern)) != 0) return rc;
  total = q + cal;
  if (n > SIZE_MAX / sizeof(float) / d || total > SIZE_MAX / sizeof(float) / d) {
    errorf("demo: %zu x %zu is too large", n, d);
    return EXIT_INPUT;
  }
  A = (float *)malloc(n * d * sizeof(float));
  X = (float *)malloc(total * d * sizeof(float));
  ref_top = (size_t *)malloc(q * sizeof(size_t));
  ref_lse = (double *)malloc(q * sizeof(double));
  t0 = now_ns();
  if (!A || !X || !ref_top || !ref_lse ||
      lmhead_generate(n, d, total, o.seed, A, X, &info) != 0) {
    errorf("out of memory for a %zu x %zu head (%.1f MB)", n, d,
           (double)n * (double)d * 4e-6);
    rc = EXIT_INTERNAL;
    goto done;
  }
  gen_ns = now_ns() - t0;

  out.f = stdout;
  out.failed = 0;
  out.err = 0;
  out_printf(&out,
             "adasoftmax demo: softmax(A x) over an LM-shaped head, n=%zu x "
             "d=%zu (seeded synthetic\nweights with the statistics of trained "
             "LM heads, see examples/lmhead.h; not a trained model)\n",
             n, d);
  out_printf(&out,
             "%zu queries (next-token entropy mean %.1f nats, from %.2f to "
             "%.1f): %zu timed, %zu to calibrate\nAdaSoftmax; k=%zu, eps %g, "
             "delta %g, seed %" PRIu64 ", isa %s; generated in %.1f s\n\n",
             total, info.h_mean, info.h_min, info.h_max, q, cal, o.k, o.eps,
             o.delta, o.seed, adasm_isa_name(adasm_kernels_isa(kern)),
             (double)gen_ns * 1e-9);
  out_printf(&out, "%-7s %9s %10s %9s %14s %12s %13s\n", "method", "setup s",
             "ms/query", "speed-up", "top-1 = exact", "max p error",
             "madds/query");
  for (mi = 0; mi < DEMO_NMETHODS; mi++) {
    const enum method_id id = demo_methods[mi];
    demo_row *r = &rows[mi];
    method_ctx_init(&m, &o, kern, A, n, d);
    /* every method sets the same calibration queries aside */
    rc = run_method(id, &m, X, total, cal, &res); /* the path of `query` */
    if (rc) goto done;
    if ((rc = summarize(&res, n, d, &s)) != 0) goto done;
    if (mi == 0) /* the double reference of the timed queries (not timed) */
      for (i = 0; i < q; i++)
        reference(A, n, d, X + res.qidx[i] * d, o.beta, &ref_top[i], &ref_lse[i]);
    demo_score(&m, &res, &s, A, X, ref_top, ref_lse, mi ? rows[0].ms : s.median_ns * 1e-6, r);
    out_printf(&out, "%-7s %9.2f %10.3f %8.2fx %8zu/%-5zu %12.1e %12.2fM\n",
               method_names[id], r->setup_s + r->cal_s, r->ms, r->speedup,
               r->agree, q, r->max_prel, r->madds * 1e-6);
    if (id == METHOD_ADA)
      out_printf(&out,
                 "        setup: index %.2f s + calibration %.2f s on %zu "
                 "queries; ci_scale %.3g\n        (%s);\n        %zu/%zu "
                 "queries fell back to the exact path\n",
                 r->setup_s, r->cal_s, cal, m.ci_scale,
                 m.certified ? "certified: failure rate <= delta with "
                               "probability >= 0.95"
                             : "not certified: the proven bounds",
                 r->fallbacks, q);
    run_free(&res);
  }
  out_printf(&out, "%-7s %9s %10s %9s %14s %12s %13s  (needs a tree trained "
                   "with its head: --method hs)\n\n",
             "hs", "-", "-", "-", "-", "-", "-");
  demo_takeaway(&out, rows, q, o.eps);
  rc = out_finish(&out, "stdout");
done:
  run_free(&res);
  free(A);
  free(X);
  free(ref_top);
  free(ref_lse);
  return rc;
}

/* ---- main -------------------------------------------------------------- */

int main(int argc, char **argv) {
  const char *cmd;
  if (argc < 2) {
    fputs(usage_text, stderr);
    fputs(usage_text2, stderr);
    return EXIT_INPUT;
  }
  cmd = argv[1];
  if (strcmp(cmd, "query") == 0) return cmd_query(argc, argv);
  if (strcmp(cmd, "demo") == 0) return cmd_demo(argc, argv);
  if (strcmp(cmd, "sample") == 0) return cmd_sample(argc, argv);
  if (strcmp(cmd, "help") == 0 || strcmp(cmd, "--help") == 0 ||
      strcmp(cmd, "-h") == 0) {
    if (argc > 2) {
      errorf("%s takes no arguments", cmd);
      return EXIT_INPUT;
    }
    return print_usage_stdout();
  }
  if (strcmp(cmd, "--version") == 0) {
    output o;
    o.f = stdout;
    o.failed = 0;
    o.err = 0;
    out_printf(&o, "adasoftmax %d.%d.%d\n", ADASOFTMAX_VERSION_MAJOR,
               ADASOFTMAX_VERSION_MINOR, ADASOFTMAX_VERSION_PATCH);
    return out_finish(&o, "stdout");
  }
  errorf("unknown command '%s' (expected query, sample, demo or help)", cmd);
  return EXIT_INPUT;
}
