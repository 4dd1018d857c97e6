/* test_pcg.c - known-answer and statistical tests of adasm_pcg32.

   1. Known answers: pcg-c-basic's demo seeds pcg32_srandom_r(&rng, 42u, 54u)
      and prints 0xa15c02b7 0x7b47f409 0xba1d3330 0x83d2f293 0xbfa4784b
      0xcbed606e. A small reference implementation below (written from the
      published algorithm, independent of the header) must reproduce those,
      and the header must match it draw for draw over long runs and several
      seeds, including the extreme ones.
   2. advance() equals stepping, and composes modulo the period 2^64.
   3. Derived draws (bounded, bounded64, uniform, uniform_open, gumbel) stay in
      their documented ranges and have the right distribution. Statistical
      checks use fixed seeds, so they are deterministic; each threshold is set
      so that a correct generator would fail it for fewer than ~1e-4 of all
      seeds, while the bugs they target (modulo bias, too few random bits,
      a wrong transform) fail by a wide margin at the sample sizes used.

   Returns 0 when every check passes. */
#define ADASOFTMAX_IMPLEMENTATION
#include "adasoftmax.h"

#include <math.h>
#include <stdio.h>

static int failures;
static int checks;

/* Counts every check, prints only failures (with the values involved). */
#define CHECK(cond, ...)                                                       \
  do {                                                                         \
    checks++;                                                                  \
    if (!(cond)) {                                                             \
      failures++;                                                              \
      fprintf(stderr, "%s:%d: FAILED %s: ", __FILE__, __LINE__, #cond);        \
      fprintf(stderr, __VA_ARGS__);                                            \
      fputc('\n', stderr);                                                     \
    }                                                                          \
  } while (0)

/* ---- Reference pcg32 (XSH-RR 64/32), as in pcg-c-basic ------------------- */
typedef struct ref_pcg32 {
  uint64_t state;
  uint64_t inc;
} ref_pcg32;

static uint32_t ref_next(ref_pcg32 *r) {
  uint64_t old = r->state;
  uint32_t xorshifted, rot;
  r->state = old * 6364136223846793005ULL + r->inc;
  xorshifted = (uint32_t)(((old >> 18u) ^ old) >> 27u);
  rot = (uint32_t)(old >> 59u);
  return (xorshifted >> rot) | (xorshifted << ((32u - rot) & 31u));
}

static void ref_seed(ref_pcg32 *r, uint64_t seed, uint64_t stream) {
  r->state = 0u;
  r->inc = (stream << 1u) | 1u;
  (void)ref_next(r);
  r->state += seed;
  (void)ref_next(r);
}

/* ---- Statistics helpers ------------------------------------------------- */

/* Upper critical value of chi-square with `df` degrees of freedom at the
   one-sided normal deviate z (Wilson-Hilferty; accurate to a few percent for
   df >= 2, far tighter than the margins the targeted bugs produce).
   z = 4 is a false-alarm probability of about 3e-5. */
static double chi2_critical(double df, double z) {
  double a = 2.0 / (9.0 * df);
  double t = 1.0 - a + z * sqrt(a);
  return df * t * t * t;
}

#define CHI2_Z 4.0
#define MAX_BUCKETS 16

/* Pearson's statistic of observed counts against expected probabilities. */
static double chi2_stat(const uint64_t *obs, const double *prob, int buckets,
                        uint64_t n) {
  double s = 0.0;
  int b;
  for (b = 0; b < buckets; b++) {
    double e = prob[b] * (double)n;
    double d = (double)obs[b] - e;
    s += d * d / e;
  }
  return s;
}

static void check_chi2(const char *what, const uint64_t *obs,
                       const double *prob, int buckets, uint64_t n) {
  double stat = chi2_stat(obs, prob, buckets, n);
  double crit = chi2_critical((double)(buckets - 1), CHI2_Z);
  CHECK(stat < crit, "%s: chi2 = %.2f >= %.2f (df %d, n %llu)", what, stat,
        crit, buckets - 1, (unsigned long long)n);
}

/* Exact probability of each of `buckets` equal-width buckets of [0, bound)
   when bucket(v) = floor(v * buckets / bound): the bucket holds the integers
   v with j*bound <= v*buckets < (j+1)*bound. */
static void bucket_probs(uint64_t bound, int buckets, double *prob) {
  int j;
  for (j = 0; j < buckets; j++) {
    /* first v of bucket j is ceil(j * bound / buckets); fits in 64 bits for
       the bounds used here (bound < 2^60 when buckets = 16) */
    uint64_t lo = ((uint64_t)j * bound + (uint64_t)buckets - 1u) /
                  (uint64_t)buckets;
    uint64_t hi = ((uint64_t)(j + 1) * bound + (uint64_t)buckets - 1u) /
                  (uint64_t)buckets;
    prob[j] = (double)(hi - lo) / (double)bound;
  }
}

/* ---- 1. Known answers ---------------------------------------------------- */
static void test_known_answer(void) {
  static const uint32_t expect[6] = {0xa15c02b7u, 0x7b47f409u, 0xba1d3330u,
                                     0x83d2f293u, 0xbfa4784bu, 0xcbed606eu};
  adasm_pcg32 rng;
  ref_pcg32 ref;
  int i;
  adasm_pcg32_seed(&rng, 42u, 54u);
  ref_seed(&ref, 42u, 54u);
  for (i = 0; i < 6; i++) {
    uint32_t got = adasm_pcg32_next(&rng);
    uint32_t want = ref_next(&ref);
    CHECK(want == expect[i], "reference draw %d: 0x%08lx, published 0x%08lx",
          i, (unsigned long)want, (unsigned long)expect[i]);
    CHECK(got == expect[i], "draw %d: 0x%08lx, published 0x%08lx", i,
          (unsigned long)got, (unsigned long)expect[i]);
  }
}

static void test_matches_reference(void) {
  static const uint64_t seeds[][2] = {
      {42u, 54u},
      {0u, 0u},
      {1u, 1u},
      {UINT64_MAX, UINT64_MAX},
      {0x853c49e6748fea9bULL, 0xda3e39cb94b95bdbULL}, /* pcg-c-basic's init */
      {0x0123456789abcdefULL, 0x8000000000000000ULL}, /* stream's top bit is
                                                          shifted out */
  };
  size_t s;
  for (s = 0; s < sizeof seeds / sizeof seeds[0]; s++) {
    adasm_pcg32 rng;
    ref_pcg32 ref;
    int i, mismatches = 0;
    adasm_pcg32_seed(&rng, seeds[s][0], seeds[s][1]);
    ref_seed(&ref, seeds[s][0], seeds[s][1]);
    CHECK(rng.state == ref.state && rng.inc == ref.inc,
          "seed set %d: state/inc differ from pcg32_srandom_r", (int)s);
    CHECK((rng.inc & 1u) == 1u, "seed set %d: inc is even", (int)s);
    for (i = 0; i < 20000; i++)
      if (adasm_pcg32_next(&rng) != ref_next(&ref)) mismatches++;
    CHECK(mismatches == 0, "seed set %d: %d of 20000 draws differ", (int)s,
          mismatches);
  }
}

/* ---- 2. Sequences, streams, advance ------------------------------------- */
static void test_streams(void) {
  adasm_pcg32 a, b, c, d;
  int i, same_ab = 0, same_ac = 0, same_ad = 0;
  adasm_pcg32_seed(&a, 2024u, 7u);
  adasm_pcg32_seed(&b, 2024u, 7u);
  adasm_pcg32_seed(&c, 2024u, 8u); /* other stream */
  adasm_pcg32_seed(&d, 2025u, 7u); /* other seed */
  for (i = 0; i < 1000; i++) {
    uint32_t x = adasm_pcg32_next(&a);
    if (x == adasm_pcg32_next(&b)) same_ab++;
    if (x == adasm_pcg32_next(&c)) same_ac++;
    if (x == adasm_pcg32_next(&d)) same_ad++;
  }
  CHECK(same_ab == 1000, "same seed and stream: only %d of 1000 equal",
        same_ab);
  /* independent 32-bit draws coincide with probability 2^-32 each */
  CHECK(same_ac <= 2, "other stream: %d of 1000 draws equal", same_ac);
  CHECK(same_ad <= 2, "other seed: %d of 1000 draws equal", same_ad);
}

static void test_advance(void) {
  static const uint64_t deltas[] = {0u, 1u, 2u, 3u, 31u, 64u, 1000u, 12345u};
  size_t t;
  adasm_pcg32 a, b;
  for (t = 0; t < sizeof deltas / sizeof deltas[0]; t++) {
    uint64_t i;
    int j, ok = 1;
    adasm_pcg32_seed(&a, 99u, 3u);
    adasm_pcg32_seed(&b, 99u, 3u);
    for (i = 0; i < deltas[t]; i++) (void)adasm_pcg32_next(&b);
    adasm_pcg32_advance(&a, deltas[t]);
    CHECK(a.state == b.state && a.inc == b.inc,
          "advance(%llu) != %llu steps", (unsigned long long)deltas[t],
          (unsigned long long)deltas[t]);
    for (j = 0; j < 8; j++)
      if (adasm_pcg32_next(&a) != adasm_pcg32_next(&b)) ok = 0;
    CHECK(ok, "draws after advance(%llu) differ",
          (unsigned long long)deltas[t]);
  }

  /* The period is 2^64: advancing by 2^64 - 1 and then one step is the
     identity, and jumps compose modulo 2^64. */
  {
    uint64_t d1 = 0x9e3779b97f4a7c15ULL, d2 = 0xd1b54a32d192ed03ULL;
    adasm_pcg32_seed(&a, 5u, 11u);
    b = a;
    adasm_pcg32_advance(&a, UINT64_MAX);
    (void)adasm_pcg32_next(&a);
    CHECK(a.state == b.state, "advance(2^64-1) + 1 step is not the identity");

    adasm_pcg32_seed(&a, 5u, 11u);
    b = a;
    adasm_pcg32_advance(&a, d1);
    adasm_pcg32_advance(&a, d2);
    adasm_pcg32_advance(&b, d1 + d2); /* wraps modulo 2^64 */
    CHECK(a.state == b.state, "advance(d1) advance(d2) != advance(d1 + d2)");

    adasm_pcg32_seed(&a, 5u, 11u);
    b = a;
    adasm_pcg32_advance(&a, d1);
    adasm_pcg32_advance(&a, 0u - d1); /* back to the start */
    CHECK(a.state == b.state, "advance(d) advance(-d) is not the identity");
  }
}

/* ---- 3. Derived draws ----------------------------------------------------- */
static void test_bounded_range(void) {
  static const uint32_t bounds[] = {1u,          2u,          3u,
                                    7u,          1000u,       0x7fffffffu,
                                    0x80000000u, 0x80000001u, 0xc0000000u,
                                    0xfffffffeu, 0xffffffffu};
  adasm_pcg32 rng;
  size_t b;
  int i, bad = 0;
  adasm_pcg32_seed(&rng, 1u, 2u);
  for (i = 0; i < 100; i++)
    if (adasm_pcg32_bounded(&rng, 0u) != 0u) bad++;
  CHECK(bad == 0, "bounded(0) returned non-zero %d times", bad);
  for (b = 0; b < sizeof bounds / sizeof bounds[0]; b++) {
    uint32_t maxv = 0;
    bad = 0;
    for (i = 0; i < 20000; i++) {
      uint32_t v = adasm_pcg32_bounded(&rng, bounds[b]);
      if (v >= bounds[b]) bad++;
      if (v > maxv) maxv = v;
    }
    CHECK(bad == 0, "bounded(%lu): %d draws out of range",
          (unsigned long)bounds[b], bad);
    /* the largest of 20000 draws is near the top: catches a generator that
       only covers a fraction of the range (e.g. bound 2 stuck at 0) */
    CHECK((double)maxv >= 0.99 * (double)(bounds[b] - 1u),
          "bounded(%lu): max of 20000 draws only %lu",
          (unsigned long)bounds[b], (unsigned long)maxv);
  }
}

/* Chi-square of bounded(bound) in `buckets` equal-width buckets (high bits),
   and of the low 4 bits (a float-scaled draw has structured low bits). */
static void chi2_bounded32(uint32_t bound, int buckets, uint64_t n,
                           uint64_t seed, int check_low_bits) {
  uint64_t obs[MAX_BUCKETS] = {0}, low[MAX_BUCKETS] = {0};
  double prob[MAX_BUCKETS], lowprob[MAX_BUCKETS];
  char what[96];
  adasm_pcg32 rng;
  uint64_t i;
  int j;
  adasm_pcg32_seed(&rng, seed, 17u);
  for (i = 0; i < n; i++) {
    uint32_t v = adasm_pcg32_bounded(&rng, bound);
    obs[(uint64_t)v * (uint64_t)buckets / bound]++;
    low[v & 15u]++;
  }
  bucket_probs(bound, buckets, prob);
  snprintf(what, sizeof what, "bounded(%lu) buckets", (unsigned long)bound);
  check_chi2(what, obs, prob, buckets, n);
  if (check_low_bits) {
    /* for bound >= 2^31 the 16 residues are equally likely within 2^-27 */
    for (j = 0; j < 16; j++) lowprob[j] = 1.0 / 16.0;
    snprintf(what, sizeof what, "bounded(%lu) low bits",
             (unsigned long)bound);
    check_chi2(what, low, lowprob, 16, n);
  }
}

static void test_bounded_chi2(void) {
  /* Bound 7: every value its own bucket. 140000 draws, 20000 expected each. */
  chi2_bounded32(7u, 7, 140000u, 101u, 0);
  /* 2^31 + 1: the rejection zone is almost half of the 32-bit range, so the
     retry loop runs constantly; the low bits catch float scaling. */
  chi2_bounded32(0x80000001u, 16, 200000u, 102u, 1);
  /* 3 * 2^30: plain `next % bound` would put half of the mass in the first
     third (2^32 mod bound = 2^30 values get two preimages); the chi-square
     of 3 buckets would be ~ n/8 = 12500 against a threshold of ~22. */
  chi2_bounded32(0xc0000000u, 3, 100000u, 103u, 1);
}

static void test_bounded64(void) {
  static const uint64_t bounds[] = {1u,
                                    2u,
                                    3u,
                                    0xffffffffULL,
                                    0x100000000ULL,
                                    0x100000001ULL,
                                    0x8000000000000001ULL,
                                    0xc000000000000000ULL,
                                    UINT64_MAX};
  adasm_pcg32 rng;
  size_t b;
  int i;
  adasm_pcg32_seed(&rng, 3u, 4u);
  for (b = 0; b < sizeof bounds / sizeof bounds[0]; b++) {
    uint64_t maxv = 0;
    int bad = 0;
    for (i = 0; i < 20000; i++) {
      uint64_t v = adasm_pcg32_bounded64(&rng, bounds[b]);
      if (v >= bounds[b]) bad++;
      if (v > maxv) maxv = v;
    }
    CHECK(bad == 0, "bounded64(%llu): %d draws out of range",
          (unsigned long long)bounds[b], bad);
    CHECK((double)maxv >= 0.99 * (double)(bounds[b] - 1u),
          "bounded64(%llu): max of 20000 draws only %llu",
          (unsigned long long)bounds[b], (unsigned long long)maxv);
  }

  /* 3 * 2^62: same modulo-bias trap as the 32-bit case, one level up; the
     buckets are the top two bits, exact thirds. */
  {
    uint64_t obs[3] = {0}, low[16] = {0}, n = 100000u, k;
    double prob[3] = {1.0 / 3, 1.0 / 3, 1.0 / 3}, lowprob[16];
    int j;
    adasm_pcg32_seed(&rng, 104u, 17u);
    for (k = 0; k < n; k++) {
      uint64_t v = adasm_pcg32_bounded64(&rng, 0xc000000000000000ULL);
      obs[v >> 62]++;
      low[v & 15u]++;
    }
    for (j = 0; j < 16; j++) lowprob[j] = 1.0 / 16.0;
    check_chi2("bounded64(3*2^62) thirds", obs, prob, 3, n);
    check_chi2("bounded64(3*2^62) low bits", low, lowprob, 16, n);
  }
  /* 2^40 + 3: needs both 32-bit halves; 16 buckets on the value (catches a
     draw that leaves the high word zero) and the low bits. */
  {
    const uint64_t bound = (1ULL << 40) + 3u;
    uint64_t obs[16] = {0}, low[16] = {0}, n = 160000u, k;
    double prob[16], lowprob[16];
    int j;
    adasm_pcg32_seed(&rng, 105u, 17u);
    for (k = 0; k < n; k++) {
      uint64_t v = adasm_pcg32_bounded64(&rng, bound);
      obs[v * 16u / bound]++; /* v < 2^41, no overflow */
      low[v & 15u]++;
    }
    bucket_probs(bound, 16, prob);
    for (j = 0; j < 16; j++) lowprob[j] = 1.0 / 16.0;
    check_chi2("bounded64(2^40+3) buckets", obs, prob, 16, n);
    check_chi2("bounded64(2^40+3) low bits", low, lowprob, 16, n);
  }
  /* small bound: every value its own bucket */
  {
    uint64_t obs[5] = {0}, n = 100000u, k;
    double prob[5] = {0.2, 0.2, 0.2, 0.2, 0.2};
    adasm_pcg32_seed(&rng, 106u, 17u);
    for (k = 0; k < n; k++) obs[adasm_pcg32_bounded64(&rng, 5u)]++;
    check_chi2("bounded64(5)", obs, prob, 5, n);
  }
}

static void test_uniform(void) {
  const uint64_t n = 1000000u;
  uint64_t obs[16] = {0}, i, out_of_range = 0, not_24bit = 0;
  double prob[16], sum = 0.0, lo = 1.0, hi = 0.0, mean, tol;
  adasm_pcg32 rng;
  int j;
  adasm_pcg32_seed(&rng, 201u, 5u);
  for (i = 0; i < n; i++) {
    float u = adasm_pcg32_uniform(&rng);
    double du = (double)u, scaled = du * 16777216.0; /* 2^24 */
    if (!(du >= 0.0 && du < 1.0)) {
      out_of_range++;
      continue;
    }
    if (scaled != floor(scaled)) not_24bit++;
    obs[(int)(du * 16.0)]++;
    sum += du;
    if (du < lo) lo = du;
    if (du > hi) hi = du;
  }
  CHECK(out_of_range == 0, "uniform: %llu draws outside [0, 1)",
        (unsigned long long)out_of_range);
  CHECK(not_24bit == 0, "uniform: %llu draws are not multiples of 2^-24",
        (unsigned long long)not_24bit);
  /* mean of U[0,1) has sd sqrt(1/12/n) = 2.9e-4 at n = 1e6; allow 5 sd */
  mean = sum / (double)n;
  tol = 5.0 * sqrt(1.0 / 12.0 / (double)n);
  CHECK(fabs(mean - 0.5) < tol, "uniform: mean %.6f, want 0.5 +- %.6f", mean,
        tol);
  /* P(min > 1e-4) = (1 - 1e-4)^1e6 = e^-100 */
  CHECK(lo < 1e-4 && hi > 1.0 - 1e-4, "uniform: min %.3g max %.9f", lo, hi);
  for (j = 0; j < 16; j++) prob[j] = 1.0 / 16.0;
  check_chi2("uniform 16 buckets", obs, prob, 16, n);
}

static void test_uniform_open(void) {
  const uint64_t n = 1000000u;
  uint64_t i, out_of_range = 0, coarse = 0;
  double sum = 0.0, mean, tol;
  adasm_pcg32 rng;
  adasm_pcg32_seed(&rng, 301u, 5u);
  for (i = 0; i < n; i++) {
    double u = adasm_pcg32_uniform_open(&rng);
    double scaled = u * 4294967296.0; /* 2^32 */
    if (!(u > 0.0 && u < 1.0)) {
      out_of_range++;
      continue;
    }
    if (scaled == floor(scaled)) coarse++;
    sum += u;
  }
  CHECK(out_of_range == 0, "uniform_open: %llu draws outside (0, 1)",
        (unsigned long long)out_of_range);
  /* with 53 random bits, a draw is a multiple of 2^-32 with probability
     about 2^-21; a generator with only 32 bits fails on every draw */
  CHECK(coarse < 10, "uniform_open: %llu of %llu draws are multiples of "
        "2^-32 (fewer than 53 bits?)", (unsigned long long)coarse,
        (unsigned long long)n);
  mean = sum / (double)n;
  tol = 5.0 * sqrt(1.0 / 12.0 / (double)n);
  CHECK(fabs(mean - 0.5) < tol, "uniform_open: mean %.6f, want 0.5 +- %.6f",
        mean, tol);
}

static void test_gumbel(void) {
  /* Standard Gumbel: mean = Euler-Mascheroni gamma, variance = pi^2/6,
     excess kurtosis 12/5, so Var(sample variance) ~ (2 + 12/5) sigma^4 / n.
     At n = 1e6: sd(mean) = 1.28e-3, sd(variance) = 3.45e-3; allow 5 sd.
     Tails: P(G > 5) = 1 - exp(-e^-5), P(G < -1) = exp(-e), binomial sd. */
  const double gamma_e = 0.57721566490153286, pi = 3.14159265358979324;
  const double var = pi * pi / 6.0;
  const uint64_t n = 1000000u;
  uint64_t i, nonfinite = 0, above5 = 0, below_m1 = 0;
  double sum = 0.0, sumsq = 0.0, mean, s2, tol_mean, tol_var;
  double p_hi = 1.0 - exp(-exp(-5.0)), p_lo = exp(-exp(1.0));
  double e_hi = p_hi * (double)n, e_lo = p_lo * (double)n;
  adasm_pcg32 rng;
  adasm_pcg32_seed(&rng, 401u, 5u);
  for (i = 0; i < n; i++) {
    double g = (double)adasm_pcg32_gumbel(&rng);
    if (!isfinite(g)) {
      nonfinite++;
      continue;
    }
    sum += g;
    sumsq += g * g;
    if (g > 5.0) above5++;
    if (g < -1.0) below_m1++;
  }
  CHECK(nonfinite == 0, "gumbel: %llu non-finite draws",
        (unsigned long long)nonfinite);
  mean = sum / (double)n;
  s2 = (sumsq - (double)n * mean * mean) / (double)(n - 1u);
  tol_mean = 5.0 * sqrt(var / (double)n);
  tol_var = 5.0 * var * sqrt(4.4 / (double)n);
  CHECK(fabs(mean - gamma_e) < tol_mean, "gumbel: mean %.5f, want %.5f +- %.5f",
        mean, gamma_e, tol_mean);
  CHECK(fabs(s2 - var) < tol_var, "gumbel: variance %.5f, want %.5f +- %.5f",
        s2, var, tol_var);
  CHECK(fabs((double)above5 - e_hi) < 5.0 * sqrt(e_hi * (1.0 - p_hi)),
        "gumbel: %llu draws > 5, expected %.0f", (unsigned long long)above5,
        e_hi);
  CHECK(fabs((double)below_m1 - e_lo) < 5.0 * sqrt(e_lo * (1.0 - p_lo)),
        "gumbel: %llu draws < -1, expected %.0f", (unsigned long long)below_m1,
        e_lo);
}

int main(void) {
  test_known_answer();
  test_matches_reference();
  test_streams();
  test_advance();
  test_bounded_range();
  test_bounded_chi2();
  test_bounded64();
  test_uniform();
  test_uniform_open();
  test_gumbel();
  if (failures) {
    fprintf(stderr, "test_pcg: %d of %d checks FAILED\n", failures, checks);
    return 1;
  }
  printf("test_pcg: all %d checks passed\n", checks);
  return 0;
}
