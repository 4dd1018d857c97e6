/* adasoftmax.h - v0.2.0 - softmax(A x) for large output layers, exact and adaptive.
   Single-file C99/C++11 library, no dependency beyond libc and libm.
   License: MIT or public domain (MIT-0), your choice; see the end of this file.

   DO THIS in exactly one C or C++ file, before including this header:

       #define ADASOFTMAX_IMPLEMENTATION
       #include "adasoftmax.h"

   Every other file includes the header without the define. Never pass -mavx2
   or -mavx512f: the SIMD kernels are compiled with per-function target
   attributes and chosen at run time from what the CPU reports.

   TABLE OF CONTENTS
     1. Quick start
     2. Build options
     3. Concepts
     4. API reference            (the declarations below, grouped by topic)
     5. Threading
     6. Errors
     7. Numerics and determinism
     8. Changelog
     Code map (grep for the tag): >>config >>platform >>util >>pcg >>cpu
       >>k_scalar >>k_avx2 >>k_avx512 >>k_neon >>dispatch >>exact >>sample
       >>ada >>hs >>svd

   1. QUICK START
       float z[5] = {1, 2, 3, 4, 5}, p[5];
       adasm_softmax(NULL, z, 5, p);                   // NULL: best ISA

       size_t top[3]; float prob[3]; double lognorm;
       adasm_gemv_softmax_topk(NULL, A, n, d, d, x, 1.0f, 3, top, prob,
                               &lognorm, NULL);        // exact softmax(A x)

       adasm_sampler_params sp = adasm_sampler_params_default();
       adasm_sampler_result next; size_t bytes; void *work;
       sp.temperature = 0.8f; sp.top_p = 0.95f; sp.draw = position;
       adasm_sample_logits_workspace_size(n, &sp, &bytes);
       work = malloc(bytes);                           // once, reused
       adasm_sample_logits(logits, n, &sp, work, bytes, &next);  // next.token

   2. BUILD OPTIONS (define before including; "all" = in every file that
      includes the header, "impl" = only in the implementation file)
       ADASOFTMAX_STATIC     all   make every function static (several copies
                                   in one program, or to hide the symbols)
       ADASM_NO_SIMD         impl  scalar kernels only
       ADASM_NO_AVX2         impl  leave out the AVX2+FMA kernels
       ADASM_NO_AVX512       impl  leave out the AVX-512 kernels
       ADASM_NO_NEON         impl  leave out the NEON kernels
       ADASM_ASSERT(x)       impl  default: assert(x) from <assert.h>
       ADASM_MALLOC(sz,ctx)  impl  default: malloc(sz); define both or neither
       ADASM_FREE(p,ctx)     impl  default: free(p)
       ADASM_SVD_PROF(stage) impl  default: nothing; called between the stages
                                   of adasm_svd_build (timing; see >>svd)

   3. CONCEPTS
      Kernel set: every exact function takes a `const adasm_kernels *` first.
      NULL means "the best the CPU has". adasm_kernels_get(ADASM_ISA_AVX2, &k)
      forces one (tests, reproducibility) and returns ADASM_ERR_ISA_UNSUPPORTED
      instead of crashing on a CPU that lacks it.
      Exact softmax(A x): A is n x d, row-major float32 with leading dimension
      lda >= d; the logits are beta * (A x).
      Sampler chain: the next token from logits (a vector, or A x read once):
      bias, penalties, temperature, top-k / top-p / min-p, then a Gumbel-max
      draw whose random numbers belong to (seed, stream, draw, token), so
      every method draws the same token from the same seed (section 4,
      "Sampling the next token").

   5. THREADING
      No mutable global state except a cached CPU-feature mask (written with
      one idempotent store; every thread computes the same value). Every
      function is reentrant; inputs are only read. A random generator
      (adasm_pcg32) is plain caller-owned state: one per thread.

   6. ERRORS
      Every fallible call returns adasm_result: ADASM_OK (0) or a negative
      code; adasm_result_string() names it. Arguments are always validated (not
      only in debug builds). Outputs are left untouched on argument errors; on
      data errors (NaN input) they are filled with NaN so nothing is stale.

   7. NUMERICS AND DETERMINISM
      exp() is computed by the same algorithm on every ISA: n = round(x log2 e)
      by a magic-bias add, two-constant Cody-Waite reduction, degree-5
      minimax polynomial, 2^n built in the exponent bits; max relative error
      about 2e-7 over the whole range. Sums of exponentials are accumulated in
      double (per vector lane, or per 512-element block for the two-pass
      algorithm), so a softmax of 10^8 elements still sums to 1 within 1e-6.
      The max is never subtracted in float: it is taken out as a power of two
      in the exponent field (see adasm__expp), so outputs keep their full
      relative accuracy even for inputs near 100 or -1e4.
      Probabilities: relative error <= 1e-6 vs. a double reference for every
      p >= 1e-30 (outputs below ~1e-38 may be flushed to 0). log-softmax:
      absolute error <= 1e-6 * max(1, |log p|). logsumexp: absolute <= 1e-6.
      Special values:   any NaN input -> ADASM_ERR_NAN, outputs NaN;
                        -inf entries   -> probability 0 (masking works);
                        all -inf       -> ADASM_ERR_NO_FINITE_MAX, outputs NaN,
                                          logsumexp -inf;
                        +inf entries   -> they share the mass equally (the limit).
      Results may differ by a few ulp between ISAs (FMA contraction); sampling
      with the same seed draws the same random numbers on every ISA, and the
      sampler chain's draw is exact given the logits (its lazy Gumbel test
      never changes the token), so only a filter boundary within rounding
      of a logit can make two ISAs' dot products disagree on a token.

   8. CHANGELOG
      unreleased  the sampler chain (adasm_sample_logits, adasm_exact_sample,
             adasm_sample_gumbel); adasm_sample became a thin wrapper of it.
      0.2.0  AdaSoftmax (index, query, calibration); SVD-softmax with the
             SVD computed in the header; hierarchical softmax with a strict
             fastText .bin reader.
      0.1.0  exact kernels (three-pass, two-pass, online), log-softmax,
             logsumexp, fused top-k, sampling, fused GEMV; PCG32; dispatch.
*/
#ifndef ADASOFTMAX_H
#define ADASOFTMAX_H

#include <stddef.h>
#include <stdint.h>

#define ADASOFTMAX_VERSION_MAJOR 0
#define ADASOFTMAX_VERSION_MINOR 2
#define ADASOFTMAX_VERSION_PATCH 0

#ifndef ADASM_DEF
#ifdef ADASOFTMAX_STATIC
#if defined(__GNUC__) || defined(__clang__)
#define ADASM_DEF static __attribute__((unused)) /* no unused warnings */
#else
#define ADASM_DEF static
#endif
#else
#define ADASM_DEF extern
#endif
#endif

#ifdef __cplusplus
extern "C" {
#endif

/* ---- Errors ------------------------------------------------------------ */
/* One list gives the enum and the strings (adasm_result_string). */
#define ADASM_RESULT_LIST(X)                                                   \
  X(ADASM_OK, 0, "success")                                                    \
  X(ADASM_ERR_NULL, -1, "a required pointer argument is NULL")                 \
  X(ADASM_ERR_SIZE, -2, "a size is zero or inconsistent (e.g. lda < d, k > n)")\
  X(ADASM_ERR_OVERFLOW, -3, "a size computation overflows size_t")             \
  X(ADASM_ERR_PARAM, -4, "a numeric parameter is out of range or not finite")  \
  X(ADASM_ERR_NAN, -5, "the input contains NaN")                               \
  X(ADASM_ERR_NO_FINITE_MAX, -6, "every input is -inf: softmax is undefined")  \
  X(ADASM_ERR_NOMEM, -7, "memory allocation failed")                           \
  X(ADASM_ERR_ISA_UNSUPPORTED, -8,                                             \
    "the requested instruction set is not available in this build or CPU")     \
  X(ADASM_ERR_WORKSPACE, -9, "the workspace is missing or too small")

typedef enum adasm_result {
#define ADASM__ENUM(name, value, text) name = value,
  ADASM_RESULT_LIST(ADASM__ENUM)
#undef ADASM__ENUM
  ADASM__RESULT_MIN = -10
} adasm_result;

ADASM_DEF const char *adasm_result_string(adasm_result r);

/* ---- Instruction sets and kernel sets ---------------------------------- */
typedef enum adasm_isa {
  ADASM_ISA_AUTO = 0, /* the best this CPU and build support */
  ADASM_ISA_SCALAR = 1,
  ADASM_ISA_AVX2 = 2,   /* AVX2 + FMA (x86-64) */
  ADASM_ISA_AVX512 = 3, /* AVX-512 F/DQ/BW/VL (x86-64) */
  ADASM_ISA_NEON = 4,   /* AArch64 Advanced SIMD */
  ADASM_ISA_COUNT = 5
} adasm_isa;

typedef struct adasm_kernels adasm_kernels; /* immutable; one per ISA */

ADASM_DEF const char *adasm_isa_name(adasm_isa isa);
/* 1 if `isa` is compiled in and the CPU (and OS) can run it. */
ADASM_DEF int adasm_isa_supported(adasm_isa isa);
ADASM_DEF adasm_isa adasm_isa_best(void);
/* The kernel set for `isa` (AUTO = best). Never NULL on ADASM_OK. */
ADASM_DEF adasm_result adasm_kernels_get(adasm_isa isa,
                                         const adasm_kernels **out);
ADASM_DEF adasm_isa adasm_kernels_isa(const adasm_kernels *k);

/* ---- Matrices: element types and the descriptor the methods take ------- */
typedef enum adasm_dtype {
  ADASM_F32 = 0,  /* IEEE binary32 (float) */
  ADASM_F16 = 1,  /* IEEE binary16, stored as uint16_t bits */
  ADASM_BF16 = 2  /* bfloat16 (the top half of a binary32), as uint16_t */
} adasm_dtype;

/* A row-major matrix the caller owns: `rows` rows of `cols` elements of
   `dtype`, row r starting at element r * ld (ld >= cols). Only
   (rows - 1) * ld + cols elements are read. */
typedef struct adasm_matrix {
  const void *data;
  size_t rows, cols, ld;
  adasm_dtype dtype;
} adasm_matrix;

ADASM_DEF adasm_matrix adasm_matrix_f32(const float *data, size_t rows,
                                        size_t cols, size_t ld);
ADASM_DEF adasm_matrix adasm_matrix_f16(const uint16_t *data, size_t rows,
                                        size_t cols, size_t ld);
ADASM_DEF adasm_matrix adasm_matrix_bf16(const uint16_t *data, size_t rows,
                                         size_t cols, size_t ld);

/* Conversions. To 16 bits: round to nearest, ties to even; values beyond
   the largest finite 16-bit number round to +-inf; f16 keeps subnormals
   (down to 2^-24); a NaN stays a NaN (quiet; the top payload bits kept).
   From 16 bits: exact. Same results on every ISA (no kernel set). */
ADASM_DEF uint16_t adasm_f32_to_f16(float f);
ADASM_DEF float adasm_f16_to_f32(uint16_t h);
ADASM_DEF uint16_t adasm_f32_to_bf16(float f);
ADASM_DEF float adasm_bf16_to_f32(uint16_t h);

/* ---- PCG32 random generator (O'Neill, pcg32 XSH-RR 64/32) -------------- */
typedef struct adasm_pcg32 {
  uint64_t state;
  uint64_t inc; /* always odd */
} adasm_pcg32;

/* Same as pcg32_srandom_r(rng, seed, stream) of the reference. */
ADASM_DEF void adasm_pcg32_seed(adasm_pcg32 *rng, uint64_t seed,
                                uint64_t stream);
ADASM_DEF uint32_t adasm_pcg32_next(adasm_pcg32 *rng);
/* Uniform on [0, bound), unbiased (rejection); bound 0 returns 0. */
ADASM_DEF uint32_t adasm_pcg32_bounded(adasm_pcg32 *rng, uint32_t bound);
/* Uniform on [0, bound) for 64-bit bounds, unbiased. */
ADASM_DEF uint64_t adasm_pcg32_bounded64(adasm_pcg32 *rng, uint64_t bound);
/* Uniform float on [0, 1): 24 random bits. */
ADASM_DEF float adasm_pcg32_uniform(adasm_pcg32 *rng);
/* Uniform double on (0, 1): 53 random bits, never 0, never 1. */
ADASM_DEF double adasm_pcg32_uniform_open(adasm_pcg32 *rng);
/* Standard Gumbel: -log(-log(U)), U on (0,1); always finite. */
ADASM_DEF float adasm_pcg32_gumbel(adasm_pcg32 *rng);
/* Jump ahead by `delta` draws in O(log delta). */
ADASM_DEF void adasm_pcg32_advance(adasm_pcg32 *rng, uint64_t delta);

/* ---- Exact softmax kernels --------------------------------------------- */
/* `k` is a kernel set from adasm_kernels_get, or NULL for the best one.
   Input and output may be the same array (in place). n = 0 is valid and does
   nothing (logsumexp of nothing is -inf). */
typedef enum adasm_softmax_algo {
  ADASM_SOFTMAX_AUTO = 0,  /* three-pass up to 2^19 elements, online above */
  ADASM_SOFTMAX_THREE_PASS, /* max; exp, store, sum; scale */
  ADASM_SOFTMAX_TWO_PASS,   /* Dukhan & Ablavatski 2020: (mantissa, exponent)
                               sums, no max pass */
  ADASM_SOFTMAX_ONLINE      /* Milakov & Gimelshein 2018: running max and sum
                               in one read, then exp and scale */
} adasm_softmax_algo;

ADASM_DEF adasm_result adasm_softmax(const adasm_kernels *k, const float *z,
                                     size_t n, float *p);
/* Three-pass computes each exp once but reads its output back; online
   computes it twice in two streaming passes (the second with non-temporal
   stores from ADASM__NT_MIN on). Measured crossover, data in cache or not:
   between 512K and 1M elements (Zen 5, AVX-512). */
#define ADASM__THREE_PASS_MAX (1u << 19)

ADASM_DEF adasm_result adasm_softmax_ex(const adasm_kernels *k,
                                        adasm_softmax_algo algo,
                                        const float *z, size_t n, float *p);
/* out[i] = z[i] - logsumexp(z) */
ADASM_DEF adasm_result adasm_log_softmax(const adasm_kernels *k,
                                         const float *z, size_t n, float *out);
ADASM_DEF adasm_result adasm_logsumexp(const adasm_kernels *k, const float *z,
                                       size_t n, double *lse);

/* Fused softmax + top-k in one read of z: the `topk` largest entries, best
   first (ties: lower index first), their probabilities, and log of the
   normalizer. idx and prob hold topk entries each (prob doubles as the
   heap's value storage, so it is required); log_norm may be NULL.
   1 <= topk <= n. On NaN input (ADASM_ERR_NAN) or all -inf, every prob is
   NaN and the idx slots not filled are 0. */
ADASM_DEF adasm_result adasm_softmax_topk(const adasm_kernels *k,
                                          const float *z, size_t n,
                                          size_t topk, size_t *idx,
                                          float *prob, double *log_norm);

/* Draw one class from softmax(z / temperature), optionally restricted to the
   top_k classes (top_k = 0: all) and then to the smallest prefix, by
   probability, whose mass reaches top_p (top_p = 0 or 1: off).
   Superseded by adasm_sample_logits (the sampler chain below: bias,
   penalties, min-p, draws reproducible per seed, stream and draw), and kept
   as a thin wrapper over it for callers that hold a generator: each call
   takes 64 bits from `rng` as the chain's seed (stream 0, draw 0) and runs
   the chain with temperature, top_k and top_p (top_p = 0 means off, as
   always here). Same distribution, conventions and errors as the chain
   (n >= 2^32: ADASM_ERR_SIZE); *out is written only on ADASM_OK.
   temperature = 0 (or below 1e-30) means greedy (the argmax, lowest index
   on ties), so a zeroed struct is greedy decoding;
   adasm_sample_params_default() gives temperature 1 with no filters.
   top_k > n is the same as top_k = n. n = 0: ADASM_ERR_SIZE. The
   workspace (adasm_sample_workspace_size: 0 bytes without top_k and top_p)
   needs no alignment. The same generator state and inputs give the same
   class. */
typedef struct adasm_sample_params {
  float temperature; /* > 0, or 0 for greedy; default 1 */
  size_t top_k;      /* 0 = no limit */
  float top_p;       /* in [0, 1]; 0 and 1 = no nucleus filter */
} adasm_sample_params;

ADASM_DEF adasm_sample_params adasm_sample_params_default(void);
/* Bytes of workspace adasm_sample needs (0 for plain sampling). */
ADASM_DEF adasm_result adasm_sample_workspace_size(
    size_t n, const adasm_sample_params *params, size_t *bytes);
ADASM_DEF adasm_result adasm_sample(const adasm_kernels *k, const float *z,
                                    size_t n,
                                    const adasm_sample_params *params,
                                    adasm_pcg32 *rng, void *work,
                                    size_t work_bytes, size_t *out);

/* ---- Sampling the next token: the sampler chain ------------------------
   One draw from the distribution a language model's decoder samples from,
   made by these steps, in this order (the order of Hugging Face
   transformers' generate and of vLLM):
     1. logit bias: z_t += b for each entry (t, b) of a sparse list (entries
        for the same token add up in list order; b = -inf bans t);
     2. penalties over a token history (ids may repeat; c_t = how often t
        occurs), applied to every t with c_t > 0: repetition penalty r
        (Keskar et al. 2019, as transformers and vLLM apply it): z_t /= r
        if z_t > 0, else z_t *= r; then frequency f and presence q (as
        OpenAI defines them): z_t -= c_t f + q, in double, rounded to float;
     3. temperature T: the tempered logits are s_t = z_t / T and the
        tempered distribution is p = softmax(s);
     4. filters, each computed on the tempered distribution. Order the
        tokens by z descending, ties by lower id first: every filter keeps a
        prefix of that order, so the kept set K is the shortest of them and
        always holds the first token. top-k keeps the first k; top-p keeps
        the shortest prefix whose mass under p, renormalised over the tokens
        top-k kept (all of them if top-k is off), reaches P; min-p keeps the
        tokens with p_t >= P_min p_max, decided as (double) z_t >=
        (double) z_max + T log P_min;
     5. the draw, by Gumbel-max: token = the t in K with the largest
        key_t = s_t + G_t (ties: lower t), which is a sample of p restricted
        to K and renormalised. G_t is a standard Gumbel variable that
        depends only on (seed, stream, draw, t):
          g    = adasm_pcg32_seed(&g, seed, stream), then
                 adasm_pcg32_advance(&g, draw * 2^33);
          hi   = output 2t of g, lo = output 2t + 1 (outputs counted
                 from 0 after the advance);
          U_t  = (hi * 2^21 + floor(lo / 2^11) + 1/2) / 2^53, in (0, 1);
          G_t  = -log(-log(U_t)), in [-3.62, 37.4];
        s_t = (double) z_t / (double) T, and key_t and both logs are IEEE
        double (the C library's log). T = 0 (below 1e-30) is greedy: the
        first token of the order, with no randomness.
   The randomness belongs to the tokens, not to the order they are visited
   in, so every method that knows the logits of K makes the same draw from
   the same (seed, stream, draw): the fused pass over A
   (adasm_exact_sample), a materialised vector (adasm_sample_logits), or an
   adaptive method that computes only the tokens that can still win;
   adasm_sample_gumbel gives G_t. Draws with different (seed, stream, draw)
   are independent; the generator of one draw serves up to 2^32 tokens.
   Lazy Gumbels: most G_t are never computed. A token can only beat the best
   key b found so far if -log U_t <= exp(s_t - b), and 1 - U_t <= -log U_t,
   so a test of the top 32 bits of U_t against exp(s_t - b) (with a relative
   margin of 1e-4 plus the rounding of the keys) rejects almost every token;
   only those it lets through get their exact key, which keeps the token
   exactly that of the definition. The scan starts from the key of the first
   token of the order, so about 1 + ln(1 / p_max) keys are computed per
   draw (p_max: its probability within K).
   Special values: a NaN logit (after bias and penalties) is a data error,
   ADASM_ERR_NAN; -inf logits have probability 0 and are never drawn; all
   -inf: ADASM_ERR_NO_FINITE_MAX. If some logits are +inf, p is uniform over
   them (the limit): the filters run on that distribution (top-k and top-p
   keep the first tokens of it by id) and the draw takes the largest G_t
   among the kept ones. Filters are decided from the computed logits: a
   method whose logits differ in the last bits (another ISA's dot products)
   may decide a token that lies within that rounding of a filter boundary
   differently, and top-p sums probabilities computed in float (relative
   error ~1e-6). */
typedef struct adasm_logit_bias {
  size_t token; /* < n */
  float bias;   /* finite, or -inf to ban the token */
} adasm_logit_bias;

typedef struct adasm_sampler_params {
  const adasm_logit_bias *bias; /* nbias entries; NULL if nbias = 0 */
  size_t nbias;
  const size_t *history;     /* nhistory token ids, each < n; NULL if 0 */
  size_t nhistory;
  float repetition_penalty;  /* finite, > 0; 1 (default) or 0: off */
  float frequency_penalty;   /* finite (negative rewards repeats); 0: off */
  float presence_penalty;    /* finite; 0 (default): off */
  float temperature;         /* finite, >= 0; 0 (or below 1e-30): greedy;
                                default 1 */
  size_t top_k;              /* 0 (default) or >= n: off */
  float top_p;               /* in [0, 1]; 0 or 1 (default): off */
  float min_p;               /* in [0, 1]; 0 (default): off */
  uint64_t seed;             /* default 42 */
  uint64_t stream;           /* e.g. the sequence; default 0 (bit 63 is
                                ignored, as by adasm_pcg32_seed) */
  uint64_t draw;             /* e.g. the position; < 2^31; default 0 */
  const adasm_kernels *kern; /* NULL (default): the best the CPU has */
} adasm_sampler_params;

typedef struct adasm_sampler_result {
  size_t token;    /* the draw */
  float p;         /* its probability under the filtered distribution:
                      exp(s_token) / sum over K of exp(s_t); 1 if greedy */
  double log_norm; /* log of sum over all tokens of exp(s_t): the
                      normalizer of the tempered distribution after bias
                      and penalties, before the filters (T = 1 if greedy) */
  size_t kept;     /* |K|: tokens the filters kept (1 if greedy) */
  uint64_t madds;  /* multiply-adds with entries of A: rows * cols for
                      adasm_exact_sample, 0 for adasm_sample_logits */
} adasm_sampler_result;

/* Defaults: temperature 1, seed 42, everything else off or 0. A zeroed
   struct is valid too: greedy decoding with no bias or penalty. */
ADASM_DEF adasm_sampler_params adasm_sampler_params_default(void);

/* Workspace of adasm_sample_logits for n logits: 0 bytes when neither bias,
   penalties, top-k nor top-p is on (or T = 0); with bias 4 n bytes, and 8
   more per history entry with penalties; with top-k (k <= 1024) 16 k
   bytes; with top-p and no top-k, or k > 1024, 24 n bytes; plus alignment
   padding (under 512 bytes). Ask this function rather than the formula;
   the workspace needs no alignment. Errors: as adasm_sample_logits's
   argument checks. */
ADASM_DEF adasm_result adasm_sample_logits_workspace_size(
    size_t n, const adasm_sampler_params *params, size_t *bytes);

/* The chain over a materialised logit vector z (n floats, the raw logits:
   bias, penalties and temperature are applied here; z is only read). No
   sort of all n logits: the max, the normalizer and the draw's test are
   streaming SIMD passes over z (two or three in all); top-k keeps a bounded
   heap fed by a SIMD scan for entries above its root; top-p gathers, in the
   pass that sums the normalizer, the tokens that can be in the nucleus (a
   level of relative weight 2^-3 ... 2^-12 whose mass above reaches P, else
   p_t >= (1 - P) / n) and selects among them by binning on z and a
   quickselect on cumulative mass: O(n) expected. Accuracy: p within 2e-6
   relative, log_norm within 1e-6 absolute (the normalizer is summed in
   double).
   Errors (outputs untouched): ADASM_ERR_NULL (z, params, out; bias or
   history NULL with a nonzero count); ADASM_ERR_SIZE (n = 0 or n >= 2^32);
   ADASM_ERR_PARAM (a parameter outside its range above, NaN included; a
   bias or history token >= n; a bias of NaN or +inf; draw >= 2^31);
   ADASM_ERR_WORKSPACE (work NULL or smaller than
   adasm_sample_logits_workspace_size says, when that is not 0). Data errors
   (see above) set token 0, p NaN, kept 0 and log_norm NaN (-inf for
   ADASM_ERR_NO_FINITE_MAX). */
ADASM_DEF adasm_result adasm_sample_logits(const float *z, size_t n,
                                           const adasm_sampler_params *params,
                                           void *work, size_t work_bytes,
                                           adasm_sampler_result *out);

/* Workspace of adasm_exact_sample: 4 rows bytes for the logits plus what
   adasm_sample_logits needs for rows logits (less its 4 n bytes of copy,
   as the logits are adjusted in place). Errors: as adasm_exact_sample's
   argument checks. */
ADASM_DEF adasm_result adasm_exact_sample_workspace_size(
    const adasm_matrix *A, const adasm_sampler_params *params, size_t *bytes);

/* Fused exact sampling from softmax((A x) / T): one streaming read of A
   (any dtype; the logits A x computed exactly as adasm_exact_query computes
   them with beta = 1, in blocks that stay in cache) and the chain on them,
   so a draw costs one read of A. The token, p, log_norm and kept are those
   of adasm_sample_logits on the same logits (bit for bit: same code after
   the product); madds = rows * cols. Errors: as adasm_exact_query (for A
   and x) and adasm_sample_logits (for the parameters, with n = rows). */
ADASM_DEF adasm_result adasm_exact_sample(const adasm_matrix *A,
                                          const adasm_sampler_params *params,
                                          const float *x, void *work,
                                          size_t work_bytes,
                                          adasm_sampler_result *out);

/* G_t of the definition above (any token and draw: the generator simply
   wraps around past 2^33 outputs per draw). O(log(draw)) time. */
ADASM_DEF double adasm_sample_gumbel(uint64_t seed, uint64_t stream,
                                     uint64_t draw, size_t token);

/* ---- Exact softmax(A x) ------------------------------------------------ */
/* Logits beta * (A x) for row-major A (n x d, leading dimension lda >= d),
   fused with logsumexp and top-k in one streaming read of A. idx/prob: topk
   entries each (1 <= topk <= n), best first, both required; log_norm and
   logits (n floats: the scaled logits) may be NULL. beta must be finite and
   > 0. Logits that overflow to +inf share the mass (see section 7). Only
   (n-1)*lda + d floats of A are read (the last row needs no padding).
   Accuracy: each logit is a float dot product (16-32 lanes, or double on
   the scalar path), within about 2^-22 * sqrt(d) * beta * sum_j |A_ij x_j|;
   probabilities inherit that as relative error. The product A x is formed
   before beta scales it, so it must fit a float: a row whose partial sums
   pass FLT_MAX gets a logit of +-inf (then as above) or NaN (overflows of
   both signs: ADASM_ERR_NAN), even when beta * (A x) would be finite. */
ADASM_DEF adasm_result adasm_gemv_softmax_topk(
    const adasm_kernels *k, const float *A, size_t n, size_t d, size_t lda,
    const float *x, float beta, size_t topk, size_t *idx, float *prob,
    double *log_norm, float *logits);

/* The query shape every method shares: method_query(model, params, x, work,
   work_bytes, out). params has a _default() function and carries the
   kernel set (`kern`, NULL = the best); out carries caller arrays idx and
   prob (k entries each) and is filled with log_norm and madds (the
   multiply-adds with entries of the model, n * cols for the exact path). */
typedef struct adasm_exact_params {
  size_t k;                  /* rows to return, 1 <= k <= rows; default 1 */
  float beta;                /* inverse temperature, finite, > 0; default 1 */
  const adasm_kernels *kern; /* NULL (default): the best the CPU has */
} adasm_exact_params;

typedef struct adasm_exact_result {
  size_t *idx;     /* caller array of k: rows, best first (ties: lower
                      index first) */
  float *prob;     /* caller array of k: their probabilities */
  float *logits;   /* optional caller array of `rows` (NULL: not written):
                      beta * A x */
  double log_norm; /* log sum_i exp(beta A_i x) */
  uint64_t madds;  /* rows * cols */
} adasm_exact_result;

ADASM_DEF adasm_exact_params adasm_exact_params_default(void);

/* Exact softmax(beta A x) of a matrix of any dtype: adasm_gemv_softmax_topk
   (one streaming read of A, logits, log-normalizer and top-k fused) with
   16-bit rows converted as they are read; x and the accumulation are
   float. Needs no workspace: work may be NULL and work_bytes 0. Errors and
   accuracy as adasm_gemv_softmax_topk; also ADASM_ERR_PARAM for an unknown
   dtype. */
ADASM_DEF adasm_result adasm_exact_query(const adasm_matrix *A,
                                         const adasm_exact_params *params,
                                         const float *x, void *work,
                                         size_t work_bytes,
                                         adasm_exact_result *out);


/* ---- AdaSoftmax: PAC top-k and normalizer of softmax(beta A x) ---------
   Baharav, Kang, Sullivan, Tiwari, Luxenberg, Tse, Pilanci, "Adaptive
   Sampling for Efficient Softmax Approximation", NeurIPS 2024.
   Build an index of A once; each query samples columns of A (importance
   weights |x_j| ||A_:,j||_1, without replacement by an exponential race,
   i.e. the Gumbel-top-k order; Horvitz-Thompson estimates) to find the
   top-k rows and estimate the normalizer
   so that, with probability >= 1 - delta, the top-k set is right and every
   returned p is within a factor (1 +- eps). A pull is one multiply-add with
   an entry of A that the query had not used before; `madds` counts the
   multiply-adds actually executed. The index is read-only during queries:
   threads may share it, each with its own workspace. */
/* Built once per matrix; read-only afterwards. */
typedef struct adasm_ada_index {
  size_t n, d;       /* rows (arms) and columns */
  size_t lda;        /* leading dimension of A (d for an own copy) */
  const float *A;    /* row-major A: the caller's (not owned; must outlive ix),
                        or the index's own copy (ADASM_ADA_OWN_ROWS) */
  float *cols;       /* column-major copy: column j is cols[j*n .. j*n+n) */
  double *atom;      /* a_j = sum_i |A_ij| (importance weight of column j) */
  double *colmax;    /* max_i |A_ij| (for the elimination's variance bound) */
  void *block;       /* the one allocation, for adasm_ada_index_free */
  void *alloc_ctx;   /* passed to ADASM_MALLOC / ADASM_FREE */
} adasm_ada_index;

typedef struct adasm_ada_params {
  size_t k;            /* rows to return, 1 <= k <= n; default 1 */
  double eps;          /* multiplicative error on p, in (0, 1); default 0.3 */
  double delta;        /* failure probability, in (0, 1); default 0.1 */
  float beta;          /* inverse temperature, finite and > 0; default 1 */
  uint64_t seed;       /* same seed, same answer; default 42 */
  double fudge_elim;   /* variance multiplier, elimination (> 0); default 1 */
  double fudge_norm;   /* variance multiplier, burn-in + normalizer; def. 1 */
  int estimate_best;   /* 0: exact logits of the returned rows (default);
                          1: estimate them (delta/3 per stage, eps/4) */
  double burnin_frac;  /* burn-in column cap, fraction of the non-zero
                          columns, in (0, 1]; default 0.1 */
  const adasm_kernels *kern; /* SIMD kernels to use; NULL (default) = the
                          best. The sampled columns do not depend on it;
                          estimates agree to float rounding. */
} adasm_ada_params;

typedef struct adasm_ada_result {
  size_t *idx;          /* caller array of k: rows, best first (ties: lower
                           index first) */
  float *prob;          /* caller array of k: their probabilities */
  double log_norm;      /* estimate of log sum_i exp(mu_i) */
  uint64_t pulls_burnin, pulls_elim, pulls_best, pulls_norm;
  uint64_t pulls_total; /* sum of the four; n*d is the exact cost */
  uint64_t madds;       /* multiply-adds executed (recomputes included) */
  size_t nnz;           /* columns with |x_j| * a_j > 0 (the rest are free) */
  size_t rounds;        /* elimination rounds */
} adasm_ada_result;

/* Builds the index of row-major A (n x d, leading dimension lda >= d): a
   column-major copy (sampled columns are contiguous) and two doubles per
   column, one allocation of 4 n d + 16 d bytes (+ 64). The index keeps a
   pointer to A (the exact logits of the returned rows read it), so A must
   outlive it; with adasm_ada_index_build_ex and ADASM_ADA_OWN_ROWS the
   index keeps its own row-major copy instead (another 4 n d bytes) and the
   caller may free A once the build returns. Cost: one pass over A.
   Errors: ADASM_ERR_NULL, ADASM_ERR_SIZE (n or d is 0, lda < d),
   ADASM_ERR_OVERFLOW, ADASM_ERR_NAN (NaN in A), ADASM_ERR_PARAM (+-inf in
   A, or an unknown flag), ADASM_ERR_NOMEM; *ix is written only on
   success. */
ADASM_DEF adasm_result adasm_ada_index_build(adasm_ada_index *ix,
                                             const float *A, size_t n,
                                             size_t d, size_t lda,
                                             void *alloc_ctx);
#define ADASM_ADA_OWN_ROWS 1u /* the index copies A's rows (see above) */
ADASM_DEF adasm_result adasm_ada_index_build_ex(adasm_ada_index *ix,
                                                const float *A, size_t n,
                                                size_t d, size_t lda,
                                                unsigned flags,
                                                void *alloc_ctx);
ADASM_DEF void adasm_ada_index_free(adasm_ada_index *ix);

ADASM_DEF adasm_ada_params adasm_ada_params_default(void);

ADASM_DEF adasm_result adasm_ada_workspace_size(const adasm_ada_index *ix,
                                                const adasm_ada_params *params,
                                                size_t *bytes);
ADASM_DEF adasm_result adasm_ada_query(const adasm_ada_index *ix,
                                       const adasm_ada_params *params,
                                       const float *x, void *work,
                                       size_t work_bytes,
                                       adasm_ada_result *out);

/* Fudge-factor tuning on q training queries (rows of X, leading dimension
   ldx >= d). Each factor is binary-searched over 10^[-6, 0] in log space
   (resolution 0.01 decades) for the smallest value whose failures on the q
   queries certify a failure rate below params->delta: at most c failures,
   c the largest count with P(Binomial(q, delta) <= c) <= 0.05 (q = 200,
   delta = 0.1: c = 12). Success = returned set equals the exact top-k AND
   every |p_hat - p| <= eps * p. First fudge_elim with fudge_norm = 1, then
   fudge_norm with the chosen fudge_elim; both stay 1 (theory) if q is too
   small to certify anything (q < 29 for delta = 0.1). The params' own fudge
   factors are ignored; query t uses seed params->seed + t * 0x9e37...15.
   Costs q exact products plus ~14 q adaptive queries. */
ADASM_DEF adasm_result adasm_ada_calibrate_workspace_size(
    const adasm_ada_index *ix, const adasm_ada_params *params, size_t q,
    size_t *bytes);
ADASM_DEF adasm_result adasm_ada_calibrate(const adasm_ada_index *ix,
                                           const adasm_ada_params *params,
                                           const float *X, size_t q,
                                           size_t ldx, void *work,
                                           size_t work_bytes,
                                           double *fudge_elim,
                                           double *fudge_norm);


/* ---- Hierarchical softmax (word2vec / fastText binary tree) ------------
   The classes are the leaves of a binary tree whose internal nodes carry a
   vector each. Going from internal node v to its right child has
   probability sigmoid(w_v . x), to its left child sigmoid(-w_v . x); p(c)
   is the product along the path from the root to leaf c. The leaf
   probabilities sum to 1 by construction: there is no normalizer (its log,
   the "log_norm" of the other methods, is 0), and p(c) costs depth(c) dot
   products instead of n. The tree is fastText's (Joulin et al. 2017, after
   word2vec, Mikolov et al. 2013): a Huffman tree over class counts, built
   exactly as fastText 0.9.2 builds it, so a fastText .bin trained with
   -loss hs gives fastText's own model.
   Node numbering (fastText's): nodes 0..n-1 are the leaves (node c is class
   c), nodes n..2n-2 the internal ones in creation order, the root is 2n-2
   (0 when n = 1); internal node n+i uses row i of the vector matrix (row i
   of fastText's output matrix). The model is read-only after building:
   threads may share it, each with its own workspace. */
typedef struct adasm_hs_model {
  size_t nlabels;  /* classes (leaves), >= 1 */
  size_t dim;      /* length of x and of every node vector */
  size_t root;     /* 2 nlabels - 2 */
  int32_t *parent; /* [2n-1] parent node; -1 at the root */
  int32_t *child;  /* [2(n-1)] internal node n+i has children child[2i]
                      (left: sigmoid(-z)) and child[2i+1] (right: sigmoid(z)) */
  uint8_t *code;   /* [2n-1] 1 if the node is its parent's right child */
  int64_t *count;  /* [2n-1] leaves: the counts; internal: sum of children */
  float *vec;      /* [(n-1) * ldv] row i: vector of internal node n+i */
  size_t ldv;      /* row stride of vec in floats: dim rounded up to 16, so
                      every row starts on a 64-byte line */
  /* Set by adasm_hs_load_fasttext only (0 / NULL after adasm_hs_build).
     Offsets are into the buffer the model was loaded from. */
  size_t ft_nentries;     /* dictionary entries: words, then labels */
  size_t ft_nwords;       /* words; they are input rows 0..nwords-1 */
  size_t ft_label_base;   /* entry of class 0: nwords (supervised), else 0 */
  size_t *ft_name;        /* [ft_nentries] offset of each entry's string
                             (NUL-terminated, as in the model: labels keep
                             their "__label__" prefix) */
  size_t ft_input_offset; /* offset of the input matrix data: ft_input_rows
                             x dim little-endian float32, not aligned */
  size_t ft_input_rows;   /* nwords + bucket */
  int ft_model;           /* 1 cbow, 2 skipgram, 3 supervised */
  void *block;            /* the one allocation, for adasm_hs_free */
  void *alloc_ctx;        /* passed to ADASM_MALLOC / ADASM_FREE */
} adasm_hs_model;

/* Builds the tree from class counts exactly as fastText's
   HierarchicalSoftmaxLoss::buildTree does: two queues, the leaves taken
   from the end of `counts` and the internal nodes in creation order; the
   next leaf is taken when its count is strictly below the next internal
   node's (ties go to the internal node); the first node taken becomes the
   left child. With counts sorted in decreasing order (fastText's
   dictionary order) this is a Huffman tree; in any other order it is still
   a full binary tree with the same leaves (what fastText would build).
   node_vectors: (n-1) rows of dim floats, leading dimension ld >= dim,
   copied (may be NULL when n = 1). Cost O(n dim); one allocation of about
   4 (n-1) round16(dim) + 25 n bytes.
   Errors: ADASM_ERR_NULL (m, counts, or node_vectors with n > 1);
   ADASM_ERR_SIZE (n = 0 or n > 2^30, dim = 0, ld < dim);
   ADASM_ERR_PARAM (a negative count, counts summing to 1e15 or more:
   fastText's sentinel for "no node", or an infinite vector entry);
   ADASM_ERR_NAN (NaN in a vector); ADASM_ERR_OVERFLOW; ADASM_ERR_NOMEM.
   *m is written only on success. */
ADASM_DEF adasm_result adasm_hs_build(adasm_hs_model *m, const int64_t *counts,
                                      size_t nlabels,
                                      const float *node_vectors, size_t dim,
                                      size_t ld, void *alloc_ctx);

/* Reads a fastText model (.bin of fastText 0.9.x: magic 793712314, version
   12) trained with -loss hs from memory (the library does no file I/O) and
   builds its tree from the dictionary counts of its classes: the labels of
   a supervised model, the words of a cbow/skipgram one (fastText's choice).
   Strict: every length, count and flag is checked against the format and
   against len before anything is allocated; the input never is read past
   len. Refused: another magic or version, a loss other than hs, quantized
   models (.ftz, quantize -qout), an unknown model type, dim <= 0, a
   negative bucket, count or token count, an empty or unterminated
   dictionary string, entries not ordered words-then-labels, a pruned
   dictionary, matrix shapes that disagree with the header (input:
   nwords + bucket rows, output: one row per class, both dim columns),
   non-finite node vectors, and trailing bytes. Fields the tree does not use
   (ws, epoch, minCount, neg, wordNgrams, minn, maxn, lrUpdateRate, t) are
   not interpreted. The input matrix is validated and skipped (its offset
   is in m->ft_input_offset); the output matrix rows become node vectors.
   why (may be NULL): on error, a static string naming the problem (e.g.
   "quantized model (.ftz): not supported"); NULL on success.
   Errors: ADASM_ERR_NULL (m or buf); ADASM_ERR_SIZE (truncated input,
   trailing bytes, a size larger than the buffer, no classes, more than
   2^30 classes); ADASM_ERR_PARAM (bad magic, version, loss, model type,
   flag or value, quantized, inconsistent shapes or order, infinite vector
   entry); ADASM_ERR_NAN (NaN in a node vector); ADASM_ERR_NOMEM;
   ADASM_ERR_OVERFLOW (the model does not fit in size_t: 32-bit hosts).
   Cost O(len); one allocation (as adasm_hs_build, plus 8 bytes per
   dictionary entry). *m is written only on success. */
ADASM_DEF adasm_result adasm_hs_load_fasttext(adasm_hs_model *m,
                                              const void *buf, size_t len,
                                              void *alloc_ctx,
                                              const char **why);

/* Frees the model's block and zeroes *m; m may be NULL or zeroed. */
ADASM_DEF void adasm_hs_free(adasm_hs_model *m);

/* The name of class `label` as stored in the fastText model (supervised
   labels keep their "__label__" prefix), a NUL-terminated string inside
   buf, which must be the buffer the model was loaded from. NULL if the
   model has no names (adasm_hs_build), buf is NULL or label >= nlabels. */
ADASM_DEF const char *adasm_hs_label_name(const adasm_hs_model *m,
                                          const void *buf, size_t label);

typedef struct adasm_hs_params {
  size_t k;        /* classes to return, 1 <= k <= nlabels; default 1 */
  float threshold; /* only classes with p >= threshold, in [0, 1]; def. 0 */
  int fasttext;    /* 0 (default): exact probabilities, best-first search.
                      1: fastText 0.9.2's predict, scores and all (below) */
  const adasm_kernels *kern; /* dot-product kernels; NULL = the best */
} adasm_hs_params;

typedef struct adasm_hs_result {
  size_t *idx;       /* caller array of k: classes, best first (ties:
                        lower class first); 0 in slots past count */
  float *prob;       /* caller array of k: their p; 0 past count */
  double *log_prob;  /* optional caller array of k (NULL: not written):
                        log p, exact where p underflows float; -inf past
                        count */
  size_t count;      /* classes returned: k, or fewer when fewer classes
                        pass the threshold */
  size_t nodes;      /* internal nodes evaluated (one dot product each) */
  uint64_t madds;    /* nodes * dim: multiply-adds with node vectors */
} adasm_hs_result;

ADASM_DEF adasm_hs_params adasm_hs_params_default(void);

/* Workspace of adasm_hs_topk: 16 (n + 1) + 64 bytes (the search frontier
   can hold every node in the worst case); no alignment needed.
   Errors: as adasm_hs_topk's argument checks. */
ADASM_DEF adasm_result adasm_hs_workspace_size(const adasm_hs_model *m,
                                               const adasm_hs_params *params,
                                               size_t *bytes);

/* Top-k classes of x (dim floats, the hidden vector: for fastText, the mean
   of the input rows of the words of a line and of "</s>").
   Default: best-first search. The frontier is a max-heap of nodes keyed by
   the log-probability of their path, which bounds every leaf below them
   (each step adds log sigmoid <= 0, also in floating point), so the leaves
   come out of the heap in decreasing order of p and the search stops after
   k of them: it evaluates only nodes at least as probable as the k-th
   class (result->nodes; a few times k * depth on real models, n - 1 at
   worst), with subtrees below the threshold never entered. The answer is
   the exact top-k of the computed probabilities (ties: lower class first).
   Accuracy: log p sums, in double, log sigmoid(+-z) = min(+-z, 0) -
   log1p(exp(-|z|)) (no overflow, no cancellation, full relative accuracy
   of p even at 1e-300); the z are float SIMD dot products, within about
   2^-22 sqrt(dim) sum_j |w_j x_j| each, which is the error of log p per
   node on the path.
   fasttext = 1 reproduces fastText 0.9.2's predict
   (HierarchicalSoftmaxLoss::dfs): depth first, left child first; a child
   scores, in float, parent + log(s + 1e-5) with s = 1 / (1 + expf(-z)) on
   its side; a subtree is skipped when its score is below
   log(threshold + 1e-5) (-11.5 for threshold 0) or, once k classes are
   held, below the k-th held score; prob = expf(score). These scores are
   not probabilities: the 1e-5 floor lifts improbable paths (it stops log 0)
   and makes the pruning approximate, a path of near-certain steps scores
   slightly above 0 (prob up to (1 + 1e-5)^depth), and fewer than k
   classes come back when the others score below log(threshold + 1e-5).
   Use it to reproduce fastText's answers, not as an estimate. Its z are
   this library's SIMD dot products, not fastText's sequential float sums:
   scores may differ in the last bits, so classes whose scores are equal or
   within ~1e-6 may come in another order than fastText's (equal scores
   here: lower class first and kept; fastText's order for them is its
   heap's). It evaluates more nodes than the default (depth-first, with a
   bound that starts loose): on the real word head below, 300 vs 87.
   Measured (bench/hs_agree.sh: fastText 0.9.2 -loss hs, 48565 labels,
   dim 256, 2000 held-out queries, k = 5): both modes return fastText's
   top-5 list on 2000 / 2000 queries; 6.8 us per query (default, AVX-512,
   rows out of cache) vs 47 us for fastText's own predict.
   Errors: ADASM_ERR_NULL (m, params, x, out, out->idx, out->prob; a model
   not built); ADASM_ERR_SIZE (k = 0 or k > nlabels); ADASM_ERR_PARAM
   (threshold not in [0, 1], an infinite x; fasttext not 0 or 1);
   ADASM_ERR_WORKSPACE; ADASM_ERR_NAN (NaN in x, or a dot product that
   overflowed to inf - inf): data errors fill prob and log_prob with NaN,
   idx with 0, and set count = 0. */
ADASM_DEF adasm_result adasm_hs_topk(const adasm_hs_model *m,
                                     const adasm_hs_params *params,
                                     const float *x, void *work,
                                     size_t work_bytes, adasm_hs_result *out);

/* log p(label | x), walking from the leaf up: depth(label) dot products,
   no workspace. Same arithmetic as adasm_hs_topk's default mode but summed
   leaf to root, so it may differ from topk's log_prob in the last bits.
   Errors: ADASM_ERR_NULL, ADASM_ERR_SIZE (label >= nlabels),
   ADASM_ERR_PARAM (infinite x), ADASM_ERR_NAN (*log_prob = NaN). */
ADASM_DEF adasm_result adasm_hs_log_prob(const adasm_hs_model *m,
                                         const adasm_kernels *kern,
                                         const float *x, size_t label,
                                         double *log_prob);


/* ---- SVD-softmax: preview logits from the SVD of A ----------------------
   Shim, Lee, Kim, Park, "SVD-Softmax: Fast Softmax Approximation on Large
   Vocabulary Neural Networks", NeurIPS 2017.
   Preparation factors A = U S V^T once, in the library (no LAPACK: Gram
   matrix A^T A and its eigendecomposition in double), and keeps B = U S and
   V. A query computes x~ = beta V^T x, previews every logit from the first
   W columns of B (B[:, :W] x~[:W]), recomputes the N rows with the largest
   previews with all d columns (B_i . x~ = beta A_i . x), and returns the top
   k of those N with probabilities under the normalizer of the mixed logits:
   refined for the N rows, previews for the others. Cost d^2 + n W + N (d-W)
   multiply-adds instead of n d. There is no guarantee: what W columns
   capture depends on the spectrum of A (a trained head has a few dominant
   directions; a random matrix has none). W = d or N = n give the exact
   answer up to float rounding. The model is read-only during queries:
   threads may share it, each with its own workspace. */
#define ADASM_SVD_PANEL 16 /* columns of B per panel (see adasm_svd_model) */

typedef struct adasm_svd_model {
  size_t n, d;     /* rows and columns of A */
  size_t panels;   /* ceil(d / ADASM_SVD_PANEL) */
  float *B;        /* U S (n x d) in column panels of 16: entry (i, j) is
                      B[((j / 16) * n + i) * 16 + j % 16]; columns j >= d of
                      the last panel are 0. A row's 16 entries of one panel
                      are one 64-byte line, and the first W columns of all
                      rows are ceil(W/16) contiguous runs (the preview). */
  float *vt;       /* V^T, d x d row-major: row j is the j-th right singular
                      vector (unit norm), in the order of sigma */
  double *sigma;   /* d singular values, descending, >= 0 */
  void *block;     /* the one allocation, for adasm_svd_free */
  void *alloc_ctx; /* passed to ADASM_MALLOC / ADASM_FREE */
} adasm_svd_model;

/* Factors row-major A (n x d, leading dimension lda >= d; n < d is fine).
   `k` chooses the SIMD kernels (NULL: the best); models built with
   different kernels differ by rounding only. A is not referenced after the
   call. The model is one allocation of 4 (n 16 ceil(d/16) + d^2) + 8 d
   bytes (+ 256); the build also allocates about 16 d^2 + 11 KB d bytes of
   scratch (313 MB at d = 4096) and frees it before returning.
   Cost: n d^2 / 2 multiply-adds in double (Gram matrix), about 2 d^3 in
   double (Householder tridiagonalisation, forming Q, and the implicit QL
   rotations applied to Q), n d^2 in float (B = A V); all blocked for the
   caches and vectorised. Single-threaded. Measured (one Zen 5 core,
   AVX-512): 32000 x 4096 in 26 s, 50257 x 768 in 0.7 s.
   Accuracy: V is orthonormal to float rounding (|V^T V - I| <= ~1e-6) and
   B V^T reproduces A to ~1e-6 ||A|| in norm (B is a float product summed
   over blocks of 512), whatever the spectrum: every logit of a refined row
   is as accurate as the exact path's. A singular value carries an absolute
   error of about 1e-15 sigma_1^2 / sigma_i from the eigendecomposition of
   A^T A, so values below ~1e-7 sigma_1 are only approximate (and such
   directions only matter to the preview, which is approximate anyway).
   Errors: ADASM_ERR_NULL (m or A NULL), ADASM_ERR_SIZE (n or d is 0, or
   lda < d), ADASM_ERR_OVERFLOW (a size overflows size_t), ADASM_ERR_NAN (A
   holds a NaN), ADASM_ERR_PARAM (A holds +-inf, or B would overflow float),
   ADASM_ERR_NOMEM. On any error *m is left untouched. */
ADASM_DEF adasm_result adasm_svd_build(adasm_svd_model *m,
                                       const adasm_kernels *k, const float *A,
                                       size_t n, size_t d, size_t lda,
                                       void *alloc_ctx);
/* Releases the model's memory and zeroes it; NULL or a zeroed model is a
   no-op (so is a second call). */
ADASM_DEF void adasm_svd_free(adasm_svd_model *m);

/* Bytes of workspace adasm_svd_query needs for this model, window W and
   top N: about 4 (2 * 16 ceil(d/16) + 2 n) + sizeof(size_t) (n + N), plus
   up to 64 bytes of alignment padding for each of its six pieces and 64
   more; ask this function rather than the formula. The workspace itself
   needs no alignment.
   Errors: ADASM_ERR_NULL (m, bytes, or an unbuilt model), ADASM_ERR_SIZE
   (window not in [1, d], top not in [1, n]), ADASM_ERR_OVERFLOW. */
ADASM_DEF adasm_result adasm_svd_workspace_size(const adasm_svd_model *m,
                                                size_t window, size_t top,
                                                size_t *bytes);

/* Top k rows of softmax(beta A x) by SVD-softmax: preview window W = window
   (1 <= W <= d), N = top rows refined (1 <= N <= n), 1 <= k <= N. idx and
   prob: k entries each, best first by refined logit (ties: lower index
   first), both required. prob[t] = exp(refined_t - log_norm), where
   log_norm (may be NULL) is log(sum over the N refined rows of exp(refined)
   + sum over the other rows of exp(preview)), computed like the exact
   path's (max taken out, sums in double); an entry below the N-th preview
   is never returned. samples (may be NULL): multiply-adds executed,
   d^2 (x~ = V^T x) + n W (previews) + N (d - W) (refinement), against n d
   for adasm_gemv_softmax_topk. `k` (the kernel set; NULL: the best) does
   not change which rows are refined beyond rounding of the previews.
   Cost: reads 4 d^2 bytes of V^T, 4 n 16 ceil(W/16) bytes of B in
   contiguous runs, and N rows of d/16 lines each; plus n exponentials.
   Errors: ADASM_ERR_NULL (m, x, idx or prob NULL, or an unbuilt model),
   ADASM_ERR_SIZE (window, top or k out of range), ADASM_ERR_PARAM (beta not
   finite and > 0), ADASM_ERR_WORKSPACE (work NULL or smaller than
   adasm_svd_workspace_size); outputs untouched. Data errors write every
   prob and *log_norm as NaN and *samples as 0: x holding a NaN
   (ADASM_ERR_NAN; every idx 0), x holding +-inf (ADASM_ERR_PARAM, as
   adasm_ada_query; every idx 0), a logit that overflows to NaN
   (ADASM_ERR_NAN; idx as the exact path leaves it). Every logit
   overflowing to -inf (beta A x below -FLT_MAX on every row):
   ADASM_ERR_NO_FINITE_MAX, every prob NaN, *log_norm -inf, *samples 0, as
   the exact path. Logits that overflow to +inf share the mass, as in the
   exact path.
   Measured (one Zen 5 core, median of 500 queries, same run): a real
   word-prediction head (fastText, 48565 x 256, sigma_1/sigma_16 = 23):
   W = 32, N = 512: 0.32 ms vs 1.28 ms exact (3.9x), top-1 as the exact
   path's in 99.6% of the queries; W = 48, N = 256: 3.5x, 100%. A random
   Gaussian head has a flat spectrum and gains nothing at 99% (50257 x 768:
   W = 384, N = 4096 is 1.5x). */
ADASM_DEF adasm_result adasm_svd_query(const adasm_svd_model *m,
                                       const adasm_kernels *k, const float *x,
                                       float beta, size_t window, size_t top,
                                       size_t topk, size_t *idx, float *prob,
                                       double *log_norm, uint64_t *samples,
                                       void *work, size_t work_bytes);

#ifdef __cplusplus
}
#endif
#endif /* ADASOFTMAX_H */

/* ======================================================================== */
/*                            IMPLEMENTATION                                */
/* ======================================================================== */
#if defined(ADASOFTMAX_IMPLEMENTATION) && !defined(ADASOFTMAX_IMPLEMENTATION_INCLUDED)
#define ADASOFTMAX_IMPLEMENTATION_INCLUDED

/* >>config ----------------------------------------------------------------
   Defaults for the override macros, checked for consistency. */
#include <math.h>
#include <string.h>
#include <stdlib.h>

#ifndef ADASM_ASSERT
#include <assert.h>
#define ADASM_ASSERT(x) assert(x)
#endif

#if defined(ADASM_MALLOC) != defined(ADASM_FREE)
#error "adasoftmax.h: define both ADASM_MALLOC(sz,ctx) and ADASM_FREE(p,ctx), or neither"
#endif
#ifndef ADASM_MALLOC
#define ADASM_MALLOC(sz, ctx) ((void)(ctx), malloc(sz))
#define ADASM_FREE(p, ctx) ((void)(ctx), free(p))
#endif

#ifdef ADASM_NO_SIMD
#undef ADASM_NO_AVX2
#undef ADASM_NO_AVX512
#undef ADASM_NO_NEON
#define ADASM_NO_AVX2
#define ADASM_NO_AVX512
#define ADASM_NO_NEON
#endif

/* >>platform --------------------------------------------------------------
   Which SIMD kernels this compiler can build. On x86-64 they are compiled
   with per-function target attributes (GCC, Clang, clang-cl) or plainly
   (MSVC, which allows intrinsics without /arch), and only called after the
   CPU check. AArch64 always has NEON. */
#if defined(__x86_64__) || defined(_M_X64)
#define ADASM__X86_64 1
#endif
#if defined(__aarch64__) || defined(_M_ARM64)
#define ADASM__ARM64 1
#endif

#if defined(ADASM__X86_64) && !defined(ADASM_NO_AVX2) &&                     \
    (defined(__clang__) || (defined(__GNUC__) && __GNUC__ >= 5) ||           \
     (defined(_MSC_VER) && _MSC_VER >= 1900))
#define ADASM__HAVE_AVX2 1
#endif
#if defined(ADASM__X86_64) && !defined(ADASM_NO_AVX512) &&                   \
    (defined(__clang__) || (defined(__GNUC__) && __GNUC__ >= 7) ||           \
     (defined(_MSC_VER) && _MSC_VER >= 1910))
#define ADASM__HAVE_AVX512 1
#endif
#if defined(ADASM__ARM64) && !defined(ADASM_NO_NEON)
#define ADASM__HAVE_NEON 1
#endif

#if defined(ADASM__HAVE_AVX2) || defined(ADASM__HAVE_AVX512)
#include <immintrin.h>
#endif
#if defined(ADASM__HAVE_NEON)
#include <arm_neon.h>
#endif

#if defined(__GNUC__) || defined(__clang__)
#define ADASM__PRIVATE static __attribute__((unused))
#define ADASM__TARGET_AVX2 __attribute__((target("avx2,fma")))
#define ADASM__TARGET_AVX512                                                   \
  __attribute__((target("avx512f,avx512dq,avx512bw,avx512vl,avx2,fma")))
#define ADASM__RESTRICT __restrict
#define ADASM__LIKELY(x) __builtin_expect(!!(x), 1)
#else
#define ADASM__PRIVATE static
#define ADASM__TARGET_AVX2
#define ADASM__TARGET_AVX512
#define ADASM__RESTRICT __restrict
#define ADASM__LIKELY(x) (x)
#endif

/* >>util ------------------------------------------------------------------ */
#define ADASM__LOG2E 1.4426950408889634
#define ADASM__LN2 0.69314718055994531
#define ADASM__BLOCK 2048 /* elements per online block: 8 KiB stays in L1 */
#define ADASM__NT_MIN ((size_t)1 << 19) /* 2 MiB of output: stream it */

ADASM__PRIVATE uint32_t adasm__f2u(float f) {
  uint32_t u;
  memcpy(&u, &f, sizeof u);
  return u;
}
ADASM__PRIVATE float adasm__u2f(uint32_t u) {
  float f;
  memcpy(&f, &u, sizeof f);
  return f;
}
/* Bit tests: immune to -ffinite-math-only folding x != x away. */
ADASM__PRIVATE int adasm__isnanf(float f) {
  return (adasm__f2u(f) & 0x7fffffffu) > 0x7f800000u;
}
ADASM__PRIVATE int adasm__isfinitef(float f) {
  return (adasm__f2u(f) & 0x7f800000u) != 0x7f800000u;
}
ADASM__PRIVATE int adasm__isfinite(double f) {
  uint64_t u;
  memcpy(&u, &f, sizeof u);
  return (u & 0x7ff0000000000000ull) != 0x7ff0000000000000ull;
}
ADASM__PRIVATE float adasm__inff(void) { return adasm__u2f(0x7f800000u); }
ADASM__PRIVATE float adasm__nanf(void) { return adasm__u2f(0x7fc00000u); }

/* a * b, or 1 if it overflows size_t (the bug class behind most fuzz finds). */
ADASM__PRIVATE int adasm__mul_overflows(size_t a, size_t b, size_t *out) {
  if (a != 0 && b > (size_t)-1 / a) return 1;
  *out = a * b;
  return 0;
}

ADASM__PRIVATE void adasm__fill(float *p, size_t n, float v) {
  size_t i;
  for (i = 0; i < n; ++i) p[i] = v;
}

/* Index of the lowest set bit of v != 0; number of set bits. */
ADASM__PRIVATE unsigned adasm__ctz32(uint32_t v) {
#if defined(__GNUC__) || defined(__clang__)
  return (unsigned)__builtin_ctz(v);
#else
  unsigned c = 0;
  while (!(v & 1u)) {
    v >>= 1;
    ++c;
  }
  return c;
#endif
}
ADASM__PRIVATE unsigned adasm__popcount32(uint32_t v) {
  v = v - ((v >> 1) & 0x55555555u);
  v = (v & 0x33333333u) + ((v >> 2) & 0x33333333u);
  return (unsigned)((((v + (v >> 4)) & 0x0f0f0f0fu) * 0x01010101u) >> 24);
}

/* 16-bit floats, bit by bit (integer arithmetic only: immune to the
   caller's floating-point flags and to -ffast-math). */
ADASM_DEF uint16_t adasm_f32_to_f16(float f) {
  const uint32_t x = adasm__f2u(f), ax = x & 0x7fffffffu;
  const uint16_t sign = (uint16_t)((x >> 16) & 0x8000u);
  if (ax > 0x7f800000u) /* NaN: quiet, top payload bits */
    return (uint16_t)(sign | 0x7e00u | ((ax >> 13) & 0x3ffu));
  if (ax >= 0x477ff000u) /* >= 65520 (half way past 65504): inf */
    return (uint16_t)(sign | 0x7c00u);
  if (ax >= 0x38800000u) { /* normal: rebias, round 23 -> 10 bits */
    const uint32_t r = ax + 0xfffu + ((ax >> 13) & 1u);
    return (uint16_t)(sign | ((r - (112u << 23)) >> 13));
  }
  { /* below 2^-14: a multiple of 2^-24, rounded to nearest even */
    const uint32_t e = ax >> 23, mant = (ax & 0x7fffffu) | 0x800000u;
    uint32_t shift, q, rem, half;
    if (e < 102u) return sign; /* below 2^-25: rounds to 0 */
    shift = 126u - e;          /* 14..24 */
    q = mant >> shift;
    rem = mant & ((1u << shift) - 1u);
    half = 1u << (shift - 1u);
    if (rem > half || (rem == half && (q & 1u))) ++q;
    return (uint16_t)(sign | q);
  }
}

ADASM_DEF float adasm_f16_to_f32(uint16_t h) {
  const uint32_t sign = (uint32_t)(h & 0x8000u) << 16;
  const uint32_t e = (h >> 10) & 0x1fu, m = h & 0x3ffu;
  if (e == 0x1fu) return adasm__u2f(sign | 0x7f800000u | (m << 13));
  if (e == 0u) { /* zero or subnormal: m * 2^-24, exact in float */
    const float v = (float)m * 5.9604644775390625e-8f;
    return sign ? -v : v;
  }
  return adasm__u2f(sign | ((e + 112u) << 23) | (m << 13));
}

ADASM_DEF uint16_t adasm_f32_to_bf16(float f) {
  const uint32_t x = adasm__f2u(f);
  if ((x & 0x7fffffffu) > 0x7f800000u) return (uint16_t)((x >> 16) | 0x40u);
  return (uint16_t)((x + 0x7fffu + ((x >> 16) & 1u)) >> 16);
}

ADASM_DEF float adasm_bf16_to_f32(uint16_t h) {
  return adasm__u2f((uint32_t)h << 16);
}

ADASM__PRIVATE adasm_matrix adasm__matrix(const void *data, size_t rows,
                                          size_t cols, size_t ld,
                                          adasm_dtype dtype) {
  adasm_matrix m;
  m.data = data;
  m.rows = rows;
  m.cols = cols;
  m.ld = ld;
  m.dtype = dtype;
  return m;
}
ADASM_DEF adasm_matrix adasm_matrix_f32(const float *data, size_t rows,
                                        size_t cols, size_t ld) {
  return adasm__matrix(data, rows, cols, ld, ADASM_F32);
}
ADASM_DEF adasm_matrix adasm_matrix_f16(const uint16_t *data, size_t rows,
                                        size_t cols, size_t ld) {
  return adasm__matrix(data, rows, cols, ld, ADASM_F16);
}
ADASM_DEF adasm_matrix adasm_matrix_bf16(const uint16_t *data, size_t rows,
                                         size_t cols, size_t ld) {
  return adasm__matrix(data, rows, cols, ld, ADASM_BF16);
}

/* >>pcg -------------------------------------------------------------------
   PCG32 (XSH-RR, 64-bit state), re-implemented from M. O'Neill's published
   algorithm (pcg-random.org, "PCG: A Family of Simple Fast Space-Efficient
   Statistically Good Algorithms for Random Number Generation", 2014). */
#define ADASM__PCG_MULT 6364136223846793005ull

/* Jumps of the PCG32 LCG s -> a s + inc, as constants: d steps map s to
   a^d s + inc h_d with h_d = sum_{k<d} a^k (mod 2^64), and neither power
   depends on the increment. ja[i], jh[i]: d = 2^i; la[l], lh[l]: d = 2 l
   (token l of a sampler scan, two outputs per token). Generated with
   Python's pow(a, d, 2**64); tests/test_sample.c checks them against
   adasm_pcg32_advance. */
static const uint64_t adasm__pcg_ja[64] = {
    0x5851f42d4c957f2dull, 0x685f98a2018fade9ull, 0xfb4d3ae39272be11ull,
    0xb59dda5f38413d21ull, 0x8d5e2ddc895abe41ull, 0x96481983e5188c81ull,
    0x4425ebbf6f4d5901ull, 0x8980d00b878bb201ull, 0x02078e0dd6db6401ull,
    0x659acb4fecc6c801ull, 0xaa1421b9d5cd9001ull, 0x88f21a239c9b2001ull,
    0x469c6146fd364001ull, 0x1dd8088d0a6c8001ull, 0x7fa1b91654d90001ull,
    0x52ae921da9b20001ull, 0x902da3ff53640001ull, 0xb4bd470ea6c80001ull,
    0x04028a5d4d900001ull, 0xba2505ba9b200001ull, 0x7cc9cf7536400001ull,
    0x1b92aeea6c800001ull, 0xbf219dd4d9000001ull, 0x9e343ba9b2000001ull,
    0xbc2c775364000001ull, 0x7768eea6c8000001ull, 0xeb11dd4d90000001ull,
    0xc723ba9b20000001ull, 0x5247753640000001ull, 0xb48eea6c80000001ull,
    0xa91dd4d900000001ull, 0x523ba9b200000001ull, 0xa477536400000001ull,
    0x48eea6c800000001ull, 0x91dd4d9000000001ull, 0x23ba9b2000000001ull,
    0x4775364000000001ull, 0x8eea6c8000000001ull, 0x1dd4d90000000001ull,
    0x3ba9b20000000001ull, 0x7753640000000001ull, 0xeea6c80000000001ull,
    0xdd4d900000000001ull, 0xba9b200000000001ull, 0x7536400000000001ull,
    0xea6c800000000001ull, 0xd4d9000000000001ull, 0xa9b2000000000001ull,
    0x5364000000000001ull, 0xa6c8000000000001ull, 0x4d90000000000001ull,
    0x9b20000000000001ull, 0x3640000000000001ull, 0x6c80000000000001ull,
    0xd900000000000001ull, 0xb200000000000001ull, 0x6400000000000001ull,
    0xc800000000000001ull, 0x9000000000000001ull, 0x2000000000000001ull,
    0x4000000000000001ull, 0x8000000000000001ull, 0x0000000000000001ull,
    0x0000000000000001ull};
static const uint64_t adasm__pcg_jh[64] = {
    0x0000000000000001ull, 0x5851f42d4c957f2eull, 0xcbb5f646404a560cull,
    0x9a8b7f78da6ef4d8ull, 0xfd8341fcddebfcb0ull, 0x375216576241c560ull,
    0xb5eb8df53e56bac0ull, 0x76e04ee60f5a3580ull, 0x41f7c92a64676b00ull,
    0x3950e877b79ad600ull, 0xfe942169ea65ac00ull, 0x20706e33c18b5800ull,
    0x5eeb75973616b000ull, 0x7c7aad6d382d6000ull, 0x19ef4fd5a05ac000ull,
    0x151dd39800b58000ull, 0x39f376e3016b0000ull, 0x089e2c9202d60000ull,
    0x12d9545405ac0000ull, 0xa22695680b580000ull, 0xe61cddd016b00000ull,
    0xd37887a02d600000ull, 0xc3ec3f405ac00000ull, 0xfbc53e80b5800000ull,
    0xc73d7d016b000000ull, 0xcd46fa02d6000000ull, 0x95bdf405ac000000ull,
    0x183be80b58000000ull, 0xe377d016b0000000ull, 0x92efa02d60000000ull,
    0x55df405ac0000000ull, 0x6bbe80b580000000ull, 0xd77d016b00000000ull,
    0xaefa02d600000000ull, 0x5df405ac00000000ull, 0xbbe80b5800000000ull,
    0x77d016b000000000ull, 0xefa02d6000000000ull, 0xdf405ac000000000ull,
    0xbe80b58000000000ull, 0x7d016b0000000000ull, 0xfa02d60000000000ull,
    0xf405ac0000000000ull, 0xe80b580000000000ull, 0xd016b00000000000ull,
    0xa02d600000000000ull, 0x405ac00000000000ull, 0x80b5800000000000ull,
    0x016b000000000000ull, 0x02d6000000000000ull, 0x05ac000000000000ull,
    0x0b58000000000000ull, 0x16b0000000000000ull, 0x2d60000000000000ull,
    0x5ac0000000000000ull, 0xb580000000000000ull, 0x6b00000000000000ull,
    0xd600000000000000ull, 0xac00000000000000ull, 0x5800000000000000ull,
    0xb000000000000000ull, 0x6000000000000000ull, 0xc000000000000000ull,
    0x8000000000000000ull};
static const uint64_t adasm__pcg_la[17] = {
    0x0000000000000001ull, 0x685f98a2018fade9ull, 0xfb4d3ae39272be11ull,
    0xf08d02b0115f7a79ull, 0xb59dda5f38413d21ull, 0xc07a0e3e901ef009ull,
    0x2baa1c4032658d31ull, 0x384115c58e369e99ull, 0x8d5e2ddc895abe41ull,
    0x98f1d81bdd781629ull, 0xcaf41223432ce051ull, 0x3b0114b115ade6b9ull,
    0x6ea923efda890361ull, 0x55c522eac22ba049ull, 0x9ec7d51306cd3771ull,
    0x493d9145485dd2d9ull, 0x96481983e5188c81ull};
static const uint64_t adasm__pcg_lh[17] = {
    0x0000000000000000ull, 0x5851f42d4c957f2eull, 0xcbb5f646404a560cull,
    0x30705b042917ec1aull, 0x9a8b7f78da6ef4d8ull, 0xab894868b3b04fc6ull,
    0x88cdb7ff5390e864ull, 0x70a3a52b7c609632ull, 0xfd8341fcddebfcb0ull,
    0x742d2f7a98716b5eull, 0x76035e0908e0bdbcull, 0x6fa72ca5f95e3b4aull,
    0x58a0df7459c07788ull, 0xae533cc45a8131f6ull, 0x6de3b115d9593614ull,
    0xf043bfa4b17f3b62ull, 0x375216576241c560ull};

/* The state s advanced by d steps of increment inc, by the table: one
   multiply-add per set bit of d. */
ADASM__PRIVATE uint64_t adasm__pcg_jump(uint64_t s, uint64_t inc, uint64_t d) {
  while (d != 0) {
    const unsigned i = (uint32_t)d ? adasm__ctz32((uint32_t)d)
                                   : 32u + adasm__ctz32((uint32_t)(d >> 32));
    s = adasm__pcg_ja[i] * s + inc * adasm__pcg_jh[i];
    d &= d - 1u;
  }
  return s;
}

/* The XSH-RR output of a state (before the state advances). */
ADASM__PRIVATE uint32_t adasm__pcg_out(uint64_t old) {
  const uint32_t xorshifted = (uint32_t)(((old >> 18u) ^ old) >> 27u);
  const uint32_t rot = (uint32_t)(old >> 59u);
  return (xorshifted >> rot) | (xorshifted << ((0u - rot) & 31u));
}

ADASM_DEF uint32_t adasm_pcg32_next(adasm_pcg32 *rng) {
  uint64_t old = rng->state;
  rng->state = old * ADASM__PCG_MULT + rng->inc;
  return adasm__pcg_out(old);
}

ADASM_DEF void adasm_pcg32_seed(adasm_pcg32 *rng, uint64_t seed,
                                uint64_t stream) {
  rng->state = 0u;
  rng->inc = (stream << 1u) | 1u;
  (void)adasm_pcg32_next(rng);
  rng->state += seed;
  (void)adasm_pcg32_next(rng);
}

ADASM_DEF uint32_t adasm_pcg32_bounded(adasm_pcg32 *rng, uint32_t bound) {
  /* Reject the low (2^32 mod bound) values so every residue is equally
     likely; (0u - bound) % bound is that count without MSVC's C4146. */
  uint32_t threshold, r;
  if (bound == 0u) return 0u;
  threshold = (0u - bound) % bound;
  for (;;) {
    r = adasm_pcg32_next(rng);
    if (r >= threshold) return r % bound;
  }
}

ADASM_DEF uint64_t adasm_pcg32_bounded64(adasm_pcg32 *rng, uint64_t bound) {
  uint64_t threshold, r;
  if (bound <= 0xffffffffull) return adasm_pcg32_bounded(rng, (uint32_t)bound);
  threshold = (0u - bound) % bound;
  for (;;) {
    r = ((uint64_t)adasm_pcg32_next(rng) << 32) | adasm_pcg32_next(rng);
    if (r >= threshold) return r % bound;
  }
}

ADASM_DEF float adasm_pcg32_uniform(adasm_pcg32 *rng) {
  return (float)(adasm_pcg32_next(rng) >> 8) * (1.0f / 16777216.0f);
}

ADASM_DEF double adasm_pcg32_uniform_open(adasm_pcg32 *rng) {
  /* 53 random bits, then +0.5 ulp: the result is strictly inside (0, 1). */
  uint64_t a = adasm_pcg32_next(rng) >> 5, b = adasm_pcg32_next(rng) >> 6;
  return ((double)((a << 26) | b) + 0.5) * (1.0 / 9007199254740992.0);
}

ADASM_DEF float adasm_pcg32_gumbel(adasm_pcg32 *rng) {
  return (float)-log(-log(adasm_pcg32_uniform_open(rng)));
}

ADASM_DEF void adasm_pcg32_advance(adasm_pcg32 *rng, uint64_t delta) {
  /* Brown's O(log n) jump for an LCG: compose the affine map delta times. */
  uint64_t cur_mult = ADASM__PCG_MULT, cur_plus = rng->inc;
  uint64_t acc_mult = 1u, acc_plus = 0u;
  while (delta > 0) {
    if (delta & 1u) {
      acc_mult *= cur_mult;
      acc_plus = acc_plus * cur_mult + cur_plus;
    }
    cur_plus = (cur_mult + 1u) * cur_plus;
    cur_mult *= cur_mult;
    delta >>= 1u;
  }
  rng->state = acc_mult * rng->state + acc_plus;
}

/* >>cpu -------------------------------------------------------------------
   cpuid + xgetbv: the CPU must report the instructions AND the OS must
   save the wider registers (XCR0), else AVX code faults. The result is
   cached in one int; every thread computes the same value, and the store is
   atomic (relaxed) where the compiler offers it, so there is no torn read. */
#define ADASM__CPU_VALID 1
#define ADASM__CPU_AVX2 2
#define ADASM__CPU_AVX512 4

#if defined(ADASM__X86_64)
#if defined(_MSC_VER) && !defined(__clang__)
#include <intrin.h>
ADASM__PRIVATE void adasm__cpuid(int leaf, int sub, unsigned r[4]) {
  int v[4];
  __cpuidex(v, leaf, sub);
  r[0] = (unsigned)v[0]; r[1] = (unsigned)v[1];
  r[2] = (unsigned)v[2]; r[3] = (unsigned)v[3];
}
ADASM__PRIVATE uint64_t adasm__xgetbv(void) { return _xgetbv(0); }
#else
ADASM__PRIVATE void adasm__cpuid(int leaf, int sub, unsigned r[4]) {
  unsigned a, b, c, d;
  __asm__ __volatile__("cpuid"
                       : "=a"(a), "=b"(b), "=c"(c), "=d"(d)
                       : "a"(leaf), "c"(sub));
  r[0] = a; r[1] = b; r[2] = c; r[3] = d;
}
ADASM__PRIVATE uint64_t adasm__xgetbv(void) {
  unsigned lo, hi;
  __asm__ __volatile__(".byte 0x0f, 0x01, 0xd0" : "=a"(lo), "=d"(hi) : "c"(0));
  return ((uint64_t)hi << 32) | lo;
}
#endif
ADASM__PRIVATE int adasm__cpu_detect(void) {
  unsigned r[4];
  int f = ADASM__CPU_VALID;
  uint64_t xcr0;
  adasm__cpuid(0, 0, r);
  if (r[0] < 7u) return f;
  adasm__cpuid(1, 0, r);
  /* OSXSAVE (27), AVX (28), FMA (12) */
  if (!(r[2] & (1u << 27)) || !(r[2] & (1u << 28)) || !(r[2] & (1u << 12)))
    return f;
  xcr0 = adasm__xgetbv();
  if ((xcr0 & 0x6u) != 0x6u) return f; /* XMM and YMM state */
  adasm__cpuid(7, 0, r);
  if (r[1] & (1u << 5)) f |= ADASM__CPU_AVX2;
  /* AVX-512 F (16), DQ (17), BW (30), VL (31); opmask + ZMM state (5..7) */
  if ((r[1] & (1u << 16)) && (r[1] & (1u << 17)) && (r[1] & (1u << 30)) &&
      (r[1] & (1u << 31)) && (xcr0 & 0xe6u) == 0xe6u && (f & ADASM__CPU_AVX2))
    f |= ADASM__CPU_AVX512;
  return f;
}
#else
ADASM__PRIVATE int adasm__cpu_detect(void) { return ADASM__CPU_VALID; }
#endif

static int adasm__cpu_cache; /* 0 = not yet known; the only global */

ADASM__PRIVATE int adasm__cpu_features(void) {
  int f;
#if defined(__GNUC__) || defined(__clang__)
  f = __atomic_load_n(&adasm__cpu_cache, __ATOMIC_RELAXED);
  if (f == 0) {
    f = adasm__cpu_detect();
    __atomic_store_n(&adasm__cpu_cache, f, __ATOMIC_RELAXED);
  }
#else
  f = *(volatile int *)&adasm__cpu_cache;
  if (f == 0) {
    f = adasm__cpu_detect();
    *(volatile int *)&adasm__cpu_cache = f;
  }
#endif
  return f;
}

/* >>k_scalar --------------------------------------------------------------
   The kernel contract, and the portable implementation of every kernel.

   exp: every ISA computes f(x) = 2^(n - N) * e^t for x = z - shift with
     n = round(x log2 e)   by adding a "magic" float whose ulp is 1;
     t = x - n ln2         with ln2 split in two floats (Cody-Waite, FMA);
     e^t ~ 1 + t p(t)      p of degree 4: our own minimax fit on
                           [-ln2/2, ln2/2], 1.1e-7 max relative error
                           (1.6e-7 evaluated in float);
     2^(n - N)             by shifting the magic sum into the exponent field.
   The magic constant carries N, so a row maximum m is taken out as the
   power of two 2^N with N = round(m log2 e) instead of a float subtraction
   z - m, which would round (0.5 ulp of 64 is 4e-6 relative error in the
   exp). This "fold" form needs |z| < 2^17; above that, z - m is exact by
   Sterbenz's lemma for every z within 87 of m, so we subtract ("shift")
   instead. Lanes with x < cutoff (e^-87 below the max) are flushed to 0. */
typedef struct adasm__expp {
  float shift;  /* x = z - shift */
  float magic;  /* 1.5 * 2^23 + 127 - N */
  float cutoff; /* lanes with x < cutoff are 0 */
  int N;
  double base; /* f(x) = exp(z - base), base = shift + N ln2 */
} adasm__expp;

/* Two-pass accumulator: sum of exp(z) = m * 2^e, plus what pass 1 saw. */
typedef struct adasm__tpacc {
  double m, e;
  float zmax;
  int nan;
} adasm__tpacc;

#define ADASM__TP_CLAMP 131072.0f /* 2^17: the magic-add range we allow */

/* The draw's scan of the sampler chain (>>sample). With e_j = exp((z[j] -
   m) invt) computed as texpsum computes it (0 below the flush cutoff) and
   h_j the PCG32 output of the state `state` advanced by 2 j steps
   (increment inc), token j is a survivor iff z[j] >= v and V_j cinv < e_j,
   V_j = (2^32 - 1 - h_j) / 2^32 (a kernel may compute V_j rounded, within
   a relative 2^-23, or smaller: the caller's margin covers it; written
   with the inverse, the product never is subnormal). The scan
   stops at the first survivor and returns its index (n if none), having
   added e_j to sum_all for every j up to and including it, and to sum_v,
   and 1 to count_v, for those with z[j] >= v. */

typedef struct adasm__race {
  float v, m, invt, cinv;
  uint64_t state, inc;
  double sum_all, sum_v;
  uint64_t count_v;
} adasm__race;

struct adasm_kernels {
  adasm_isa isa;
  /* max over the non-NaN entries (-inf if none); *nan |= any NaN seen */
  float (*max)(const float *z, size_t n, int *nan);
  /* sum of f(z_i) (see adasm__expp); if out, out[i] = f(z_i) * oscale,
     written with non-temporal stores when n >= ADASM__NT_MIN (SIMD) */
  double (*expsum)(const float *z, size_t n, const adasm__expp *e, float *out,
                   float oscale);
  void (*scale)(float *p, size_t n, float s);                 /* p *= s */
  void (*sub2)(const float *z, size_t n, float hi, float lo, float *out);
  /* two-pass pass 1: acc += sum exp(max(z, -2^17)); tracks max and NaN */
  void (*tp_sum)(const float *z, size_t n, adasm__tpacc *acc);
  /* y[r] = beta * dot(A[r*lda ..], x) for r < rows */
  void (*dot_rows)(const float *A, size_t rows, size_t d, size_t lda,
                   const float *x, float beta, float *y);
  /* sampler chain (>>sample): the first i with z[i] >= t (n if none) */
  size_t (*find_ge)(const float *z, size_t n, float t);
  /* sum over z[i] >= v of exp((z[i] - m) invt), computed as f(x) with
     x = (z[i]/2 - m/2) (2 invt) in float (as adasm__texp_scalar) and N =
     0 (0 below the cutoff) */
  double (*texpsum)(const float *z, size_t n, float m, float invt, float v);
  size_t (*race)(const float *z, size_t n, adasm__race *r); /* see above */
  /* with e_i = exp((z[i] - m) invt) as texpsum computes it: sets sum[l]
     = the sum of e_i over z[i] >= t[l] for the four levels t[0] >= ... >=
     t[3], and sum[4] = the sum over all i (each summed in float over 8
     vectors, then in double); writes i to idx and e_i to e, in order, for
     every z[i] >= t[3] and returns how many. idx and e need 16 entries of
     room past the count. */
  size_t (*sumgather)(const float *z, size_t n, float m, float invt,
                      const float *t, double *sum, uint32_t *idx, float *e);
};

/* The polynomial and reduction constants, shared by every ISA. */
#define ADASM__C1 0.9999998f
#define ADASM__C2 0.49999097f
#define ADASM__C3 0.16667281f
#define ADASM__C4 0.041904084f
#define ADASM__C5 0.008313744f
#define ADASM__LN2_HI 0.6931472f
#define ADASM__LN2_LO (-1.9046542e-09f)
#define ADASM__LOG2E_F 1.442695f
#define ADASM__MAGIC 12582912.0f /* 1.5 * 2^23 */

/* Merge the sum m2 * 2^e2 into acc (m, e), keeping e the larger exponent. */
ADASM__PRIVATE void adasm__tp_merge(adasm__tpacc *acc, double m2, double e2) {
  if (m2 == 0.0) return;
  if (acc->m == 0.0 || e2 > acc->e) {
    acc->m = acc->m == 0.0 ? m2 : m2 + ldexp(acc->m, (int)(acc->e - e2));
    acc->e = e2;
  } else {
    acc->m += ldexp(m2, (int)(e2 - acc->e));
  }
}

ADASM__PRIVATE float adasm__max_scalar(const float *z, size_t n, int *nan) {
  float m = -adasm__inff();
  size_t i;
  for (i = 0; i < n; ++i) {
    if (z[i] > m) m = z[i];
    else if (adasm__isnanf(z[i])) *nan = 1;
  }
  return m;
}

/* e^t * 2^k with the same polynomial as the SIMD kernels (in double). */
ADASM__PRIVATE double adasm__exp_core_scalar(double t, int k) {
  double p = (double)ADASM__C5;
  p = p * t + (double)ADASM__C4;
  p = p * t + (double)ADASM__C3;
  p = p * t + (double)ADASM__C2;
  p = p * t + (double)ADASM__C1;
  p = 1.0 + t * p;
  if (k < -126) return 0.0; /* the flush the SIMD kernels do by cutoff */
  return p * (double)adasm__u2f((uint32_t)(k + 127) << 23);
}

ADASM__PRIVATE double adasm__expsum_scalar(const float *z, size_t n,
                                           const adasm__expp *e, float *out,
                                           float oscale) {
  double sum = 0.0;
  size_t i;
  for (i = 0; i < n; ++i) {
    /* (double) z - shift is exact; n as in the SIMD kernels, t in double */
    double x = (double)z[i] - (double)e->shift, f;
    if (x < (double)e->cutoff) {
      f = 0.0;
    } else if (x != x) {
      f = x;
    } else {
      double nn = floor(x * ADASM__LOG2E + 0.5);
      double t = x - nn * ADASM__LN2;
      f = adasm__exp_core_scalar(t, (int)nn - e->N);
    }
    sum += f;
    if (out) out[i] = (float)f * oscale;
  }
  return sum;
}

ADASM__PRIVATE void adasm__scale_scalar(float *p, size_t n, float s) {
  size_t i;
  for (i = 0; i < n; ++i) p[i] *= s;
}

ADASM__PRIVATE void adasm__sub2_scalar(const float *z, size_t n, float hi,
                                       float lo, float *out) {
  size_t i;
  for (i = 0; i < n; ++i) out[i] = (z[i] - hi) - lo;
}

/* ---- sampler chain kernels (contracts at struct adasm_kernels) ---------- */
/* Exp parameters with nothing taken out (N = 0): f(x) = e^x for x <= 0,
   0 below the cutoff -125 ln 2 (every result a normal float). */
ADASM__PRIVATE void adasm__expp_unit(adasm__expp *e) {
  e->shift = 0.0f;
  e->N = 0;
  e->magic = ADASM__MAGIC + 127.0f;
  e->cutoff = (float)(-125.0 * ADASM__LN2);
  e->base = 0.0;
}

/* f((z - m) * invt) of the N = 0 parameters, x formed in float as the SIMD
   kernels form it: (z/2 - m/2) (2 invt), where the halved difference cannot
   overflow (z - m can, for logits near -+FLT_MAX and T > 1) and z/2 is
   exact; z <= m, so x <= 0 (x = -inf gives 0). */
ADASM__PRIVATE double adasm__texp_scalar(float z, float m, float invt) {
  const float xf = (z * 0.5f - m * 0.5f) * (invt * 2.0f);
  double x, nn;
  if (!(xf >= (float)(-125.0 * ADASM__LN2))) return 0.0;
  x = (double)xf;
  nn = floor(x * ADASM__LOG2E + 0.5);
  return adasm__exp_core_scalar(x - nn * ADASM__LN2, (int)nn);
}

ADASM__PRIVATE size_t adasm__find_ge_scalar(const float *z, size_t n,
                                            float t) {
  size_t i;
  for (i = 0; i < n; ++i)
    if (z[i] >= t) return i;
  return n;
}

ADASM__PRIVATE double adasm__texpsum_scalar(const float *z, size_t n,
                                            float m, float invt, float v) {
  double s = 0.0;
  size_t i;
  for (i = 0; i < n; ++i)
    if (z[i] >= v) s += adasm__texp_scalar(z[i], m, invt);
  return s;
}

ADASM__PRIVATE size_t adasm__race_scalar(const float *z, size_t n,
                                         adasm__race *r) {
  /* one token = two generator steps: s -> a2 s + c2 */
  const uint64_t a2 = adasm__pcg_la[1], c2 = r->inc * adasm__pcg_lh[1];
  const double ci = (double)r->cinv;
  uint64_t s = r->state, cnt = r->count_v;
  double sa = r->sum_all, sv = r->sum_v;
  size_t j;
  for (j = 0; j < n; ++j, s = s * a2 + c2) {
    const double e = adasm__texp_scalar(z[j], r->m, r->invt);
    sa += e;
    if (z[j] >= r->v) {
      const double v = (double)(0xffffffffu - adasm__pcg_out(s)) *
                       (1.0 / 4294967296.0);
      sv += e;
      ++cnt;
      if (v * ci < e) break;
    }
  }
  r->sum_all = sa;
  r->sum_v = sv;
  r->count_v = cnt;
  return j;
}

ADASM__PRIVATE size_t adasm__sumgather_scalar(const float *z, size_t n,
                                              float m, float invt,
                                              const float *t, double *sum,
                                              uint32_t *idx, float *e) {
  size_t i, l, c = 0;
  for (l = 0; l < 5; ++l) sum[l] = 0.0;
  for (i = 0; i < n; ++i) {
    const double f = adasm__texp_scalar(z[i], m, invt);
    sum[4] += f;
    for (l = 0; l < 4; ++l)
      if (z[i] >= t[l]) sum[l] += f;
    if (z[i] >= t[3]) {
      idx[c] = (uint32_t)i;
      e[c++] = (float)f;
    }
  }
  return c;
}

ADASM__PRIVATE void adasm__tp_sum_scalar(const float *z, size_t n,
                                         adasm__tpacc *acc) {
  size_t i;
  for (i = 0; i < n; ++i) {
    float v = z[i];
    double x, nn;
    if (adasm__isnanf(v)) { acc->nan = 1; continue; }
    if (v > acc->zmax) acc->zmax = v;
    if (v < -ADASM__TP_CLAMP) v = -ADASM__TP_CLAMP;
    if (v > ADASM__TP_CLAMP) v = ADASM__TP_CLAMP; /* caller falls back */
    x = (double)v;
    nn = floor(x * ADASM__LOG2E + 0.5);
    adasm__tp_merge(acc, adasm__exp_core_scalar(x - nn * ADASM__LN2, 0), nn);
  }
}

ADASM__PRIVATE void adasm__dot_rows_scalar(const float *A, size_t rows,
                                           size_t d, size_t lda,
                                           const float *x, float beta,
                                           float *y) {
  size_t r, j;
  for (r = 0; r < rows; ++r) {
    const float *a = A + r * lda;
    double s0 = 0, s1 = 0; /* double: the scalar path is the reference */
    for (j = 0; j + 2 <= d; j += 2) {
      s0 += (double)a[j] * (double)x[j];
      s1 += (double)a[j + 1] * (double)x[j + 1];
    }
    if (j < d) s0 += (double)a[j] * (double)x[j];
    y[r] = (float)((double)beta * (s0 + s1));
  }
}

static const adasm_kernels adasm__kernels_scalar = {
    ADASM_ISA_SCALAR,     adasm__max_scalar,    adasm__expsum_scalar,
    adasm__scale_scalar,  adasm__sub2_scalar,   adasm__tp_sum_scalar,
    adasm__dot_rows_scalar,
    adasm__find_ge_scalar, adasm__texpsum_scalar, adasm__race_scalar,
    adasm__sumgather_scalar};

/* >>k_avx2 ----------------------------------------------------------------
   8 lanes. Tails go through a small stack buffer padded with a value that
   the kernel ignores (-inf), so the loop body is the only code path. */
#if defined(ADASM__HAVE_AVX2)
typedef struct adasm__expv_avx2 {
  __m256 shift, magic, cutoff, log2e, mln2hi, mln2lo, c1, c2, c3, c4, c5;
} adasm__expv_avx2;

ADASM__TARGET_AVX2 static inline void
adasm__expv_init_avx2(adasm__expv_avx2 *v, const adasm__expp *e) {
  v->shift = _mm256_set1_ps(e->shift);
  v->magic = _mm256_set1_ps(e->magic);
  v->cutoff = _mm256_set1_ps(e->cutoff);
  v->log2e = _mm256_set1_ps(ADASM__LOG2E_F);
  v->mln2hi = _mm256_set1_ps(-ADASM__LN2_HI);
  v->mln2lo = _mm256_set1_ps(-ADASM__LN2_LO);
  v->c1 = _mm256_set1_ps(ADASM__C1);
  v->c2 = _mm256_set1_ps(ADASM__C2);
  v->c3 = _mm256_set1_ps(ADASM__C3);
  v->c4 = _mm256_set1_ps(ADASM__C4);
  v->c5 = _mm256_set1_ps(ADASM__C5);
}

/* f(z) for 8 lanes; see the exp contract above >>k_scalar. */
ADASM__TARGET_AVX2 static inline __m256
adasm__exp8_avx2(const adasm__expv_avx2 *v, __m256 z) {
  __m256 x = _mm256_sub_ps(z, v->shift);
  __m256 n = _mm256_fmadd_ps(x, v->log2e, v->magic);
  __m256 s = _mm256_castsi256_ps(_mm256_slli_epi32(_mm256_castps_si256(n), 23));
  __m256 t, p, f;
  n = _mm256_sub_ps(n, v->magic);
  t = _mm256_fmadd_ps(n, v->mln2hi, x);
  t = _mm256_fmadd_ps(n, v->mln2lo, t);
  p = _mm256_fmadd_ps(v->c5, t, v->c4);
  p = _mm256_fmadd_ps(p, t, v->c3);
  p = _mm256_fmadd_ps(p, t, v->c2);
  p = _mm256_fmadd_ps(p, t, v->c1);
  t = _mm256_mul_ps(t, s);
  f = _mm256_fmadd_ps(t, p, s);
  /* keep lanes with !(x < cutoff): NaN stays NaN, the far tail becomes 0 */
  return _mm256_and_ps(f, _mm256_cmp_ps(x, v->cutoff, _CMP_NLT_UQ));
}

ADASM__TARGET_AVX2 static inline __m256d adasm__sum8_pd_avx2(__m256d acc,
                                                             __m256 f) {
  acc = _mm256_add_pd(acc, _mm256_cvtps_pd(_mm256_castps256_ps128(f)));
  return _mm256_add_pd(acc, _mm256_cvtps_pd(_mm256_extractf128_ps(f, 1)));
}

ADASM__TARGET_AVX2 static inline double adasm__hsum_pd_avx2(__m256d a) {
  __m128d s = _mm_add_pd(_mm256_castpd256_pd128(a), _mm256_extractf128_pd(a, 1));
  return _mm_cvtsd_f64(_mm_add_sd(s, _mm_unpackhi_pd(s, s)));
}

ADASM__TARGET_AVX2 static inline float adasm__hmax_avx2(__m256 a) {
  __m128 m = _mm_max_ps(_mm256_castps256_ps128(a), _mm256_extractf128_ps(a, 1));
  m = _mm_max_ps(m, _mm_movehl_ps(m, m));
  m = _mm_max_ss(m, _mm_shuffle_ps(m, m, 1));
  return _mm_cvtss_f32(m);
}

ADASM__TARGET_AVX2 static float adasm__max_avx2(const float *z, size_t n,
                                               int *nan) {
  __m256 m0 = _mm256_set1_ps(-adasm__inff()), m1 = m0, m2 = m0, m3 = m0;
  __m256 un = _mm256_setzero_ps();
  size_t i = 0;
  float buf[8];
  for (; i + 32 <= n; i += 32) {
    __m256 a = _mm256_loadu_ps(z + i), b = _mm256_loadu_ps(z + i + 8);
    __m256 c = _mm256_loadu_ps(z + i + 16), d = _mm256_loadu_ps(z + i + 24);
    /* max_ps(x, m) returns m when x is NaN: NaN never enters the max */
    m0 = _mm256_max_ps(a, m0); m1 = _mm256_max_ps(b, m1);
    m2 = _mm256_max_ps(c, m2); m3 = _mm256_max_ps(d, m3);
    un = _mm256_or_ps(un, _mm256_or_ps(_mm256_cmp_ps(a, b, _CMP_UNORD_Q),
                                       _mm256_cmp_ps(c, d, _CMP_UNORD_Q)));
  }
  for (; i < n; i += 8) {
    __m256 a;
    if (i + 8 <= n) {
      a = _mm256_loadu_ps(z + i);
    } else {
      size_t r = n - i, j;
      for (j = 0; j < 8; ++j) buf[j] = j < r ? z[i + j] : -adasm__inff();
      a = _mm256_loadu_ps(buf);
    }
    m0 = _mm256_max_ps(a, m0);
    un = _mm256_or_ps(un, _mm256_cmp_ps(a, a, _CMP_UNORD_Q));
  }
  if (_mm256_movemask_ps(un)) *nan = 1;
  return adasm__hmax_avx2(_mm256_max_ps(_mm256_max_ps(m0, m1), _mm256_max_ps(m2, m3)));
}

/* The 2 lines of z two online blocks ahead: see adasm__prefetch4_avx512. */
ADASM__TARGET_AVX2 static inline void adasm__prefetch2_avx2(const float *z) {
  const uintptr_t a = (uintptr_t)z + 2u * ADASM__BLOCK * sizeof(float);
  _mm_prefetch((const char *)a, _MM_HINT_T0);
  _mm_prefetch((const char *)(a + 64u), _MM_HINT_T0);
}

ADASM__TARGET_AVX2 static double adasm__expsum_avx2(const float *z, size_t n,
                                                   const adasm__expp *e,
                                                   float *out, float oscale) {
  adasm__expv_avx2 v;
  __m256d s0 = _mm256_setzero_pd(), s1 = s0;
  __m256 os = _mm256_set1_ps(oscale);
  size_t i = 0;
  float buf[8];
  adasm__expv_init_avx2(&v, e);
  /* float tree of four vectors, then double; prefetch and non-temporal
     stores as in adasm__expsum_avx512 */
  if (out && n >= ADASM__NT_MIN && ((uintptr_t)out & 3u) == 0) {
    const size_t head = ((32u - ((uintptr_t)out & 31u)) & 31u) / 4u;
    if (head) {
      size_t j;
      __m256 f;
      for (j = 0; j < 8; ++j) buf[j] = j < head ? z[j] : -adasm__inff();
      f = adasm__exp8_avx2(&v, _mm256_loadu_ps(buf));
      s1 = adasm__sum8_pd_avx2(s1, f);
      _mm256_storeu_ps(buf, _mm256_mul_ps(f, os));
      for (j = 0; j < head; ++j) out[j] = buf[j];
      i = head;
    }
    for (; i + 32 <= n; i += 32) {
      __m256 f0, f1, f2, f3;
      adasm__prefetch2_avx2(z + i);
      f0 = adasm__exp8_avx2(&v, _mm256_loadu_ps(z + i));
      f1 = adasm__exp8_avx2(&v, _mm256_loadu_ps(z + i + 8));
      f2 = adasm__exp8_avx2(&v, _mm256_loadu_ps(z + i + 16));
      f3 = adasm__exp8_avx2(&v, _mm256_loadu_ps(z + i + 24));
      _mm256_stream_ps(out + i, _mm256_mul_ps(f0, os));
      _mm256_stream_ps(out + i + 8, _mm256_mul_ps(f1, os));
      _mm256_stream_ps(out + i + 16, _mm256_mul_ps(f2, os));
      _mm256_stream_ps(out + i + 24, _mm256_mul_ps(f3, os));
      s0 = adasm__sum8_pd_avx2(s0, _mm256_add_ps(_mm256_add_ps(f0, f1), _mm256_add_ps(f2, f3)));
    }
    _mm_sfence();
  } else if (out) {
    for (; i + 32 <= n; i += 32) {
      adasm__prefetch2_avx2(z + i);
      __m256 f0 = adasm__exp8_avx2(&v, _mm256_loadu_ps(z + i));
      __m256 f1 = adasm__exp8_avx2(&v, _mm256_loadu_ps(z + i + 8));
      __m256 f2 = adasm__exp8_avx2(&v, _mm256_loadu_ps(z + i + 16));
      __m256 f3 = adasm__exp8_avx2(&v, _mm256_loadu_ps(z + i + 24));
      _mm256_storeu_ps(out + i, _mm256_mul_ps(f0, os));
      _mm256_storeu_ps(out + i + 8, _mm256_mul_ps(f1, os));
      _mm256_storeu_ps(out + i + 16, _mm256_mul_ps(f2, os));
      _mm256_storeu_ps(out + i + 24, _mm256_mul_ps(f3, os));
      s0 = adasm__sum8_pd_avx2(s0, _mm256_add_ps(_mm256_add_ps(f0, f1), _mm256_add_ps(f2, f3)));
    }
  } else {
    for (; i + 32 <= n; i += 32) {
      adasm__prefetch2_avx2(z + i);
      __m256 f0 = adasm__exp8_avx2(&v, _mm256_loadu_ps(z + i));
      __m256 f1 = adasm__exp8_avx2(&v, _mm256_loadu_ps(z + i + 8));
      __m256 f2 = adasm__exp8_avx2(&v, _mm256_loadu_ps(z + i + 16));
      __m256 f3 = adasm__exp8_avx2(&v, _mm256_loadu_ps(z + i + 24));
      s1 = adasm__sum8_pd_avx2(s1, _mm256_add_ps(_mm256_add_ps(f0, f1), _mm256_add_ps(f2, f3)));
    }
  }
  for (; i < n; i += 8) {
    size_t r = n - i < 8 ? n - i : 8, j;
    __m256 f;
    for (j = 0; j < 8; ++j) buf[j] = j < r ? z[i + j] : -adasm__inff();
    f = adasm__exp8_avx2(&v, _mm256_loadu_ps(buf));
    s0 = adasm__sum8_pd_avx2(s0, f);
    if (out) {
      _mm256_storeu_ps(buf, _mm256_mul_ps(f, os));
      for (j = 0; j < r; ++j) out[i + j] = buf[j];
    }
  }
  return adasm__hsum_pd_avx2(_mm256_add_pd(s0, s1));
}

ADASM__TARGET_AVX2 static void adasm__scale_avx2(float *p, size_t n, float s) {
  __m256 vs = _mm256_set1_ps(s);
  size_t i = 0;
  for (; i + 32 <= n; i += 32) {
    _mm256_storeu_ps(p + i, _mm256_mul_ps(_mm256_loadu_ps(p + i), vs));
    _mm256_storeu_ps(p + i + 8, _mm256_mul_ps(_mm256_loadu_ps(p + i + 8), vs));
    _mm256_storeu_ps(p + i + 16, _mm256_mul_ps(_mm256_loadu_ps(p + i + 16), vs));
    _mm256_storeu_ps(p + i + 24, _mm256_mul_ps(_mm256_loadu_ps(p + i + 24), vs));
  }
  for (; i + 8 <= n; i += 8)
    _mm256_storeu_ps(p + i, _mm256_mul_ps(_mm256_loadu_ps(p + i), vs));
  for (; i < n; ++i) p[i] *= s;
}

ADASM__TARGET_AVX2 static void adasm__sub2_avx2(const float *z, size_t n,
                                               float hi, float lo, float *out) {
  __m256 vh = _mm256_set1_ps(hi), vl = _mm256_set1_ps(lo);
  size_t i = 0;
  for (; i + 8 <= n; i += 8)
    _mm256_storeu_ps(out + i, _mm256_sub_ps(_mm256_sub_ps(_mm256_loadu_ps(z + i), vh), vl));
  for (; i < n; ++i) out[i] = (z[i] - hi) - lo;
}

/* ---- sampler chain kernels (contracts at struct adasm_kernels) ---------- */
ADASM__TARGET_AVX2 static size_t adasm__find_ge_avx2(const float *z, size_t n,
                                                    float t) {
  const __m256 vt = _mm256_set1_ps(t);
  size_t i = 0;
  for (; i + 32 <= n; i += 32) {
    __m256 a = _mm256_cmp_ps(_mm256_loadu_ps(z + i), vt, _CMP_GE_OQ);
    __m256 b = _mm256_cmp_ps(_mm256_loadu_ps(z + i + 8), vt, _CMP_GE_OQ);
    __m256 c = _mm256_cmp_ps(_mm256_loadu_ps(z + i + 16), vt, _CMP_GE_OQ);
    __m256 d = _mm256_cmp_ps(_mm256_loadu_ps(z + i + 24), vt, _CMP_GE_OQ);
    if (_mm256_movemask_ps(_mm256_or_ps(_mm256_or_ps(a, b), _mm256_or_ps(c, d))))
      break; /* found in this group: the loop below finds where */
  }
  for (; i + 8 <= n; i += 8) {
    const int mk = _mm256_movemask_ps(
        _mm256_cmp_ps(_mm256_loadu_ps(z + i), vt, _CMP_GE_OQ));
    if (mk) return i + adasm__ctz32((uint32_t)mk);
  }
  for (; i < n; ++i)
    if (z[i] >= t) return i;
  return n;
}

ADASM__TARGET_AVX2 static double adasm__texpsum_avx2(const float *z, size_t n,
                                                    float m, float invt,
                                                    float v) {
  adasm__expp ep;
  adasm__expv_avx2 ev;
  /* x = (z/2 - m/2) (2 invt): the halved difference cannot overflow */
  const __m256 vm = _mm256_set1_ps(m * 0.5f), vi = _mm256_set1_ps(invt * 2.0f);
  const __m256 vh = _mm256_set1_ps(0.5f);
  const __m256 vv = _mm256_set1_ps(v);
  __m256d s0 = _mm256_setzero_pd(), s1 = s0;
  float buf[8];
  size_t i = 0, j;
  adasm__expp_unit(&ep);
  adasm__expv_init_avx2(&ev, &ep);
  for (; i + 32 <= n; i += 32) { /* a float tree of four, then double */
    const __m256 a = _mm256_loadu_ps(z + i), b = _mm256_loadu_ps(z + i + 8);
    const __m256 c = _mm256_loadu_ps(z + i + 16), d = _mm256_loadu_ps(z + i + 24);
    __m256 fa = adasm__exp8_avx2(&ev, _mm256_mul_ps(_mm256_fmsub_ps(a, vh, vm), vi));
    __m256 fb = adasm__exp8_avx2(&ev, _mm256_mul_ps(_mm256_fmsub_ps(b, vh, vm), vi));
    __m256 fc = adasm__exp8_avx2(&ev, _mm256_mul_ps(_mm256_fmsub_ps(c, vh, vm), vi));
    __m256 fd = adasm__exp8_avx2(&ev, _mm256_mul_ps(_mm256_fmsub_ps(d, vh, vm), vi));
    fa = _mm256_and_ps(fa, _mm256_cmp_ps(a, vv, _CMP_GE_OQ));
    fb = _mm256_and_ps(fb, _mm256_cmp_ps(b, vv, _CMP_GE_OQ));
    fc = _mm256_and_ps(fc, _mm256_cmp_ps(c, vv, _CMP_GE_OQ));
    fd = _mm256_and_ps(fd, _mm256_cmp_ps(d, vv, _CMP_GE_OQ));
    s0 = adasm__sum8_pd_avx2(s0, _mm256_add_ps(fa, fb));
    s1 = adasm__sum8_pd_avx2(s1, _mm256_add_ps(fc, fd));
  }
  for (; i < n; i += 8) {
    __m256 a, f;
    for (j = 0; j < 8; ++j) buf[j] = i + j < n ? z[i + j] : -adasm__inff();
    a = _mm256_loadu_ps(buf); /* -inf lanes give 0 */
    f = adasm__exp8_avx2(&ev, _mm256_mul_ps(_mm256_fmsub_ps(a, vh, vm), vi));
    s0 = adasm__sum8_pd_avx2(s0, _mm256_and_ps(f, _mm256_cmp_ps(a, vv, _CMP_GE_OQ)));
  }
  return adasm__hsum_pd_avx2(_mm256_add_pd(s0, s1));
}

/* a * b mod 2^64 in each 64-bit lane; b given as its 32-bit halves. */
ADASM__TARGET_AVX2 static inline __m256i adasm__mul64_avx2(__m256i a,
                                                          __m256i blo,
                                                          __m256i bhi) {
  const __m256i lo = _mm256_mul_epu32(a, blo);
  const __m256i mid = _mm256_add_epi64(
      _mm256_mul_epu32(_mm256_srli_epi64(a, 32), blo), _mm256_mul_epu32(a, bhi));
  return _mm256_add_epi64(lo, _mm256_slli_epi64(mid, 32));
}

/* PCG32 XSH-RR outputs of four states, in the low half of each lane. */
ADASM__TARGET_AVX2 static inline __m256i adasm__pcg_out4_avx2(__m256i s) {
  const __m256i x = _mm256_and_si256(
      _mm256_srli_epi64(_mm256_xor_si256(_mm256_srli_epi64(s, 18), s), 27),
      _mm256_set1_epi64x(0xffffffffll));
  const __m256i rot = _mm256_srli_epi64(s, 59);
  return _mm256_or_si256(
      _mm256_srlv_epi64(x, rot),
      _mm256_sllv_epi64(x, _mm256_sub_epi64(_mm256_set1_epi64x(32), rot)));
}

/* Eight tokens per step: two vectors of four generator states. V_j is
   floor((2^32 - 1 - h_j) / 2) / 2^31 (AVX2 converts only signed integers),
   at most V_j. Sums go through float over 8 steps, then double. */
ADASM__TARGET_AVX2 static size_t adasm__race_avx2(const float *z, size_t n,
                                                 adasm__race *r) {
  adasm__expp ep;
  adasm__expv_avx2 ev;
  /* x = (z/2 - m/2) (2 invt): the halved difference cannot overflow */
  const __m256 vm = _mm256_set1_ps(r->m * 0.5f), vi = _mm256_set1_ps(r->invt * 2.0f);
  const __m256 vh = _mm256_set1_ps(0.5f);
  const __m256 vv = _mm256_set1_ps(r->v);
  const __m256 scale = _mm256_set1_ps(r->cinv * (1.0f / 2147483648.0f));
  const __m256i ones = _mm256_set1_epi32(-1);
  const __m256i perm0 = _mm256_setr_epi32(0, 2, 4, 6, 1, 3, 5, 7);
  const __m256i perm1 = _mm256_setr_epi32(1, 3, 5, 7, 0, 2, 4, 6);
  __m256i s0, s1, alo, ahi, cc;
  __m256 fa = _mm256_setzero_ps(), fv = fa;
  __m256d da = _mm256_setzero_pd(), dv = da;
  uint64_t st[8], cnt = r->count_v;
  const uint64_t A = adasm__pcg_la[8], C = r->inc * adasm__pcg_lh[8];
  float buf[8];
  size_t j = 0, l, steps = 0;
  adasm__expp_unit(&ep);
  adasm__expv_init_avx2(&ev, &ep);
  for (l = 0; l < 8; ++l) /* token l's state; eight tokens: s -> A s + C */
    st[l] = adasm__pcg_la[l] * r->state + r->inc * adasm__pcg_lh[l];
  s0 = _mm256_loadu_si256((const __m256i *)(const void *)st);
  s1 = _mm256_loadu_si256((const __m256i *)(const void *)(st + 4));
  alo = _mm256_set1_epi64x((long long)(A & 0xffffffffu));
  ahi = _mm256_set1_epi64x((long long)(A >> 32));
  cc = _mm256_set1_epi64x((long long)C);
  for (; j < n; j += 8) {
    const size_t left = n - j < 8 ? n - j : 8;
    __m256 a, e, in, sv;
    __m256i h;
    int mk, mi;
    if (left == 8) {
      a = _mm256_loadu_ps(z + j);
    } else {
      for (l = 0; l < 8; ++l) buf[l] = l < left ? z[j + l] : -adasm__inff();
      a = _mm256_loadu_ps(buf);
    }
    e = adasm__exp8_avx2(&ev, _mm256_mul_ps(_mm256_fmsub_ps(a, vh, vm), vi));
    in = _mm256_cmp_ps(a, vv, _CMP_GE_OQ);
    h = _mm256_blend_epi32(
        _mm256_permutevar8x32_epi32(adasm__pcg_out4_avx2(s0), perm0),
        _mm256_permutevar8x32_epi32(adasm__pcg_out4_avx2(s1), perm1), 0xf0);
    sv = _mm256_mul_ps(
        _mm256_cvtepi32_ps(_mm256_srli_epi32(_mm256_xor_si256(h, ones), 1)),
        scale); /* V cinv */
    mi = _mm256_movemask_ps(in) & (int)((1u << left) - 1u);
    mk = _mm256_movemask_ps(_mm256_cmp_ps(sv, e, _CMP_LT_OQ)) & mi;
    if (mk) { /* lanes up to the first survivor are counted, no further */
      const unsigned first = adasm__ctz32((uint32_t)mk);
      double ea = 0.0, ev2 = 0.0;
      _mm256_storeu_ps(buf, e);
      for (l = 0; l <= first; ++l) {
        ea += (double)buf[l];
        if (mi & (1 << l)) {
          ev2 += (double)buf[l];
          ++cnt;
        }
      }
      da = adasm__sum8_pd_avx2(da, fa);
      dv = adasm__sum8_pd_avx2(dv, fv);
      r->sum_all += adasm__hsum_pd_avx2(da) + ea;
      r->sum_v += adasm__hsum_pd_avx2(dv) + ev2;
      r->count_v = cnt;
      return j + first;
    }
    fa = _mm256_add_ps(fa, e);
    fv = _mm256_add_ps(fv, _mm256_and_ps(e, in));
    cnt += adasm__popcount32((uint32_t)mi);
    if (++steps == 8) {
      da = adasm__sum8_pd_avx2(da, fa);
      dv = adasm__sum8_pd_avx2(dv, fv);
      fa = _mm256_setzero_ps();
      fv = fa;
      steps = 0;
    }
    s0 = _mm256_add_epi64(adasm__mul64_avx2(s0, alo, ahi), cc);
    s1 = _mm256_add_epi64(adasm__mul64_avx2(s1, alo, ahi), cc);
  }
  da = adasm__sum8_pd_avx2(da, fa);
  dv = adasm__sum8_pd_avx2(dv, fv);
  r->sum_all += adasm__hsum_pd_avx2(da);
  r->sum_v += adasm__hsum_pd_avx2(dv);
  r->count_v = cnt;
  return n;
}

ADASM__TARGET_AVX2 static size_t adasm__sumgather_avx2(const float *z,
                                                      size_t n, float m,
                                                      float invt,
                                                      const float *t,
                                                      double *sum,
                                                      uint32_t *idx,
                                                      float *e) {
  adasm__expp ep;
  adasm__expv_avx2 ev;
  /* x = (z/2 - m/2) (2 invt): the halved difference cannot overflow */
  const __m256 vm = _mm256_set1_ps(m * 0.5f), vi = _mm256_set1_ps(invt * 2.0f);
  const __m256 vh = _mm256_set1_ps(0.5f);
  const __m256 t0 = _mm256_set1_ps(t[0]), t1 = _mm256_set1_ps(t[1]);
  const __m256 t2 = _mm256_set1_ps(t[2]), t3 = _mm256_set1_ps(t[3]);
  __m256 fs = _mm256_setzero_ps(), f0 = fs, f1 = fs, f2 = fs, f3 = fs;
  __m256d ds = _mm256_setzero_pd(), d0 = ds, d1 = ds, d2 = ds, d3 = ds;
  float buf[8];
  size_t j, q, steps = 0, c = 0;
  adasm__expp_unit(&ep);
  adasm__expv_init_avx2(&ev, &ep);
  for (j = 0; j < n; j += 8) {
    __m256 a, f, in;
    unsigned mk;
    if (n - j >= 8) {
      a = _mm256_loadu_ps(z + j);
    } else {
      for (q = 0; q < 8; ++q) buf[q] = j + q < n ? z[j + q] : -adasm__inff();
      a = _mm256_loadu_ps(buf); /* -inf lanes give 0 */
    }
    f = adasm__exp8_avx2(&ev, _mm256_mul_ps(_mm256_fmsub_ps(a, vh, vm), vi));
    in = _mm256_cmp_ps(a, t3, _CMP_GE_OQ);
    fs = _mm256_add_ps(fs, f);
    f0 = _mm256_add_ps(f0, _mm256_and_ps(f, _mm256_cmp_ps(a, t0, _CMP_GE_OQ)));
    f1 = _mm256_add_ps(f1, _mm256_and_ps(f, _mm256_cmp_ps(a, t1, _CMP_GE_OQ)));
    f2 = _mm256_add_ps(f2, _mm256_and_ps(f, _mm256_cmp_ps(a, t2, _CMP_GE_OQ)));
    f3 = _mm256_add_ps(f3, _mm256_and_ps(f, in));
    mk = (unsigned)_mm256_movemask_ps(in);
    if (n - j < 8) mk &= (1u << (n - j)) - 1u;
    if (mk) {
      _mm256_storeu_ps(buf, f);
      while (mk) {
        const unsigned b = adasm__ctz32(mk);
        idx[c] = (uint32_t)(j + b);
        e[c++] = buf[b];
        mk &= mk - 1u;
      }
    }
    if (++steps == 8) { /* float over 8 vectors, then double */
      ds = adasm__sum8_pd_avx2(ds, fs);
      d0 = adasm__sum8_pd_avx2(d0, f0);
      d1 = adasm__sum8_pd_avx2(d1, f1);
      d2 = adasm__sum8_pd_avx2(d2, f2);
      d3 = adasm__sum8_pd_avx2(d3, f3);
      fs = f0 = f1 = f2 = f3 = _mm256_setzero_ps();
      steps = 0;
    }
  }
  sum[0] = adasm__hsum_pd_avx2(adasm__sum8_pd_avx2(d0, f0));
  sum[1] = adasm__hsum_pd_avx2(adasm__sum8_pd_avx2(d1, f1));
  sum[2] = adasm__hsum_pd_avx2(adasm__sum8_pd_avx2(d2, f2));
  sum[3] = adasm__hsum_pd_avx2(adasm__sum8_pd_avx2(d3, f3));
  sum[4] = adasm__hsum_pd_avx2(adasm__sum8_pd_avx2(ds, fs));
  return c;
}

/* 2^k for integral k <= 0 given as floats; k < -126 gives 0. */
ADASM__TARGET_AVX2 static inline __m256 adasm__pow2_avx2(__m256 k) {
  __m256i b = _mm256_cvtps_epi32(_mm256_max_ps(k, _mm256_set1_ps(-127.0f)));
  return _mm256_castsi256_ps(
      _mm256_slli_epi32(_mm256_add_epi32(b, _mm256_set1_epi32(127)), 23));
}

ADASM__TARGET_AVX2 static void adasm__tp_sum_avx2(const float *z, size_t n,
                                                 adasm__tpacc *acc) {
  /* Dukhan & Ablavatski: each e^z as (mantissa e^t, exponent n); per lane a
     running (m, e) with m rescaled by 2^(e_old - e_new) when e grows. The
     mantissas are summed in double so 10^8 terms keep 1e-7 accuracy. */
  adasm__expp ep;
  adasm__expv_avx2 v;
  __m256 vmax = _mm256_set1_ps(-adasm__inff()), un = _mm256_setzero_ps();
  __m256 ae = _mm256_set1_ps(-1e9f); /* running exponent per lane */
  __m256 lo = _mm256_set1_ps(-ADASM__TP_CLAMP), hi = _mm256_set1_ps(ADASM__TP_CLAMP);
  __m256d am0 = _mm256_setzero_pd(), am1 = am0; /* lanes 0-3, 4-7 */
  float buf[8], eb[8];
  double mb[8];
  size_t i = 0, j;
  ep.shift = 0.0f; ep.magic = ADASM__MAGIC + 127.0f; ep.cutoff = -adasm__inff();
  ep.N = 0; ep.base = 0.0;
  adasm__expv_init_avx2(&v, &ep);
  for (; i < n; i += 8) {
    __m256 a, x, nn, t, p, ne, sc;
    if (i + 8 <= n) {
      a = _mm256_loadu_ps(z + i);
    } else {
      size_t r = n - i;
      for (j = 0; j < 8; ++j) buf[j] = j < r ? z[i + j] : -adasm__inff();
      a = _mm256_loadu_ps(buf);
    }
    un = _mm256_or_ps(un, _mm256_cmp_ps(a, a, _CMP_UNORD_Q));
    vmax = _mm256_max_ps(a, vmax);
    x = _mm256_min_ps(_mm256_max_ps(a, lo), hi); /* NaN -> lo, ignored */
    nn = _mm256_fmadd_ps(x, v.log2e, v.magic);
    nn = _mm256_sub_ps(nn, v.magic);
    t = _mm256_fmadd_ps(nn, v.mln2hi, x);
    t = _mm256_fmadd_ps(nn, v.mln2lo, t);
    p = _mm256_fmadd_ps(v.c5, t, v.c4);
    p = _mm256_fmadd_ps(p, t, v.c3);
    p = _mm256_fmadd_ps(p, t, v.c2);
    p = _mm256_fmadd_ps(p, t, v.c1);
    p = _mm256_fmadd_ps(t, p, _mm256_set1_ps(1.0f)); /* e^t in [0.7, 1.42] */
    if (i + 8 > n) { /* padding lanes contribute nothing */
      size_t r = n - i;
      for (j = 0; j < 8; ++j) buf[j] = j < r ? 1.0f : 0.0f;
      p = _mm256_mul_ps(p, _mm256_loadu_ps(buf));
    }
    ne = _mm256_max_ps(ae, nn);
    sc = adasm__pow2_avx2(_mm256_sub_ps(ae, ne));          /* old -> new */
    p = _mm256_mul_ps(p, adasm__pow2_avx2(_mm256_sub_ps(nn, ne)));
    am0 = _mm256_fmadd_pd(am0, _mm256_cvtps_pd(_mm256_castps256_ps128(sc)),
                          _mm256_cvtps_pd(_mm256_castps256_ps128(p)));
    am1 = _mm256_fmadd_pd(am1, _mm256_cvtps_pd(_mm256_extractf128_ps(sc, 1)),
                          _mm256_cvtps_pd(_mm256_extractf128_ps(p, 1)));
    ae = ne;
  }
  if (_mm256_movemask_ps(un)) acc->nan = 1;
  {
    float m = adasm__hmax_avx2(vmax);
    if (m > acc->zmax) acc->zmax = m;
  }
  _mm256_storeu_ps(eb, ae);
  _mm256_storeu_pd(mb, am0);
  _mm256_storeu_pd(mb + 4, am1);
  for (j = 0; j < 8; ++j) adasm__tp_merge(acc, mb[j], (double)eb[j]);
}

/* y[r] = beta * A_r . x, four rows at a time so each x load feeds 4 FMAs. */
ADASM__TARGET_AVX2 static void adasm__dot_rows_avx2(const float *A,
                                                   size_t rows, size_t d,
                                                   size_t lda, const float *x,
                                                   float beta, float *y) {
  static const int32_t mtab[16] = {-1, -1, -1, -1, -1, -1, -1, -1,
                                   0,  0,  0,  0,  0,  0,  0,  0};
  size_t r = 0, j, rem = d & 7u;
  __m256i tm = _mm256_loadu_si256((const __m256i *)(const void *)(mtab + 8 - rem));
  for (; r + 4 <= rows; r += 4) {
    const float *a0 = A + r * lda, *a1 = a0 + lda, *a2 = a1 + lda, *a3 = a2 + lda;
    __m256 s0 = _mm256_setzero_ps(), s1 = s0, s2 = s0, s3 = s0;
    __m256 t0 = s0, t1 = s0, t2 = s0, t3 = s0;
    for (j = 0; j + 16 <= d; j += 16) {
      __m256 xa = _mm256_loadu_ps(x + j), xb = _mm256_loadu_ps(x + j + 8);
      s0 = _mm256_fmadd_ps(_mm256_loadu_ps(a0 + j), xa, s0);
      s1 = _mm256_fmadd_ps(_mm256_loadu_ps(a1 + j), xa, s1);
      s2 = _mm256_fmadd_ps(_mm256_loadu_ps(a2 + j), xa, s2);
      s3 = _mm256_fmadd_ps(_mm256_loadu_ps(a3 + j), xa, s3);
      t0 = _mm256_fmadd_ps(_mm256_loadu_ps(a0 + j + 8), xb, t0);
      t1 = _mm256_fmadd_ps(_mm256_loadu_ps(a1 + j + 8), xb, t1);
      t2 = _mm256_fmadd_ps(_mm256_loadu_ps(a2 + j + 8), xb, t2);
      t3 = _mm256_fmadd_ps(_mm256_loadu_ps(a3 + j + 8), xb, t3);
    }
    for (; j + 8 <= d; j += 8) {
      __m256 xa = _mm256_loadu_ps(x + j);
      s0 = _mm256_fmadd_ps(_mm256_loadu_ps(a0 + j), xa, s0);
      s1 = _mm256_fmadd_ps(_mm256_loadu_ps(a1 + j), xa, s1);
      s2 = _mm256_fmadd_ps(_mm256_loadu_ps(a2 + j), xa, s2);
      s3 = _mm256_fmadd_ps(_mm256_loadu_ps(a3 + j), xa, s3);
    }
    if (rem) { /* masked lanes are not read, so no over-read past the row */
      __m256 xa = _mm256_maskload_ps(x + j, tm);
      t0 = _mm256_fmadd_ps(_mm256_maskload_ps(a0 + j, tm), xa, t0);
      t1 = _mm256_fmadd_ps(_mm256_maskload_ps(a1 + j, tm), xa, t1);
      t2 = _mm256_fmadd_ps(_mm256_maskload_ps(a2 + j, tm), xa, t2);
      t3 = _mm256_fmadd_ps(_mm256_maskload_ps(a3 + j, tm), xa, t3);
    }
    {
      /* transpose-add the four accumulators into one vector of 4 sums */
      __m256 u0 = _mm256_hadd_ps(_mm256_add_ps(s0, t0), _mm256_add_ps(s1, t1));
      __m256 u1 = _mm256_hadd_ps(_mm256_add_ps(s2, t2), _mm256_add_ps(s3, t3));
      __m256 u = _mm256_hadd_ps(u0, u1);
      __m128 w = _mm_add_ps(_mm256_castps256_ps128(u), _mm256_extractf128_ps(u, 1));
      _mm_storeu_ps(y + r, _mm_mul_ps(w, _mm_set1_ps(beta)));
    }
  }
  for (; r < rows; ++r) {
    const float *a0 = A + r * lda;
    __m256 s0 = _mm256_setzero_ps(), t0 = s0;
    __m128 w;
    for (j = 0; j + 16 <= d; j += 16) {
      s0 = _mm256_fmadd_ps(_mm256_loadu_ps(a0 + j), _mm256_loadu_ps(x + j), s0);
      t0 = _mm256_fmadd_ps(_mm256_loadu_ps(a0 + j + 8), _mm256_loadu_ps(x + j + 8), t0);
    }
    for (; j + 8 <= d; j += 8)
      s0 = _mm256_fmadd_ps(_mm256_loadu_ps(a0 + j), _mm256_loadu_ps(x + j), s0);
    if (rem)
      t0 = _mm256_fmadd_ps(_mm256_maskload_ps(a0 + j, tm), _mm256_maskload_ps(x + j, tm), t0);
    /* the 4-row block's order of additions, so equal rows get equal
       logits wherever they fall (ties then break by index, as documented) */
    s0 = _mm256_add_ps(s0, t0);
    s0 = _mm256_hadd_ps(s0, s0);
    s0 = _mm256_hadd_ps(s0, s0);
    w = _mm_add_ps(_mm256_castps256_ps128(s0), _mm256_extractf128_ps(s0, 1));
    y[r] = beta * _mm_cvtss_f32(w);
  }
}

static const adasm_kernels adasm__kernels_avx2 = {
    ADASM_ISA_AVX2,     adasm__max_avx2,    adasm__expsum_avx2,
    adasm__scale_avx2,  adasm__sub2_avx2,   adasm__tp_sum_avx2,
    adasm__dot_rows_avx2,
    adasm__find_ge_avx2, adasm__texpsum_avx2, adasm__race_avx2,
    adasm__sumgather_avx2};
#endif /* ADASM__HAVE_AVX2 */

/* >>k_avx512 --------------------------------------------------------------
   16 lanes; tails use masked loads and stores (no over-read, no buffer). */
#if defined(ADASM__HAVE_AVX512)
#if defined(__GNUC__) && !defined(__clang__)
/* GCC 12's intrinsics use _mm512_undefined_ps(), which trips a false
   -Wmaybe-uninitialized in C++ (GCC bug 105593); scoped to this section. */
#pragma GCC diagnostic push
#pragma GCC diagnostic ignored "-Wmaybe-uninitialized"
#pragma GCC diagnostic ignored "-Wuninitialized"
#endif
typedef struct adasm__expv_avx512 {
  __m512 shift, magic, cutoff, log2e, mln2hi, mln2lo, c1, c2, c3, c4, c5;
} adasm__expv_avx512;

ADASM__TARGET_AVX512 static inline void
adasm__expv_init_avx512(adasm__expv_avx512 *v, const adasm__expp *e) {
  v->shift = _mm512_set1_ps(e->shift);
  v->magic = _mm512_set1_ps(e->magic);
  v->cutoff = _mm512_set1_ps(e->cutoff);
  v->log2e = _mm512_set1_ps(ADASM__LOG2E_F);
  v->mln2hi = _mm512_set1_ps(-ADASM__LN2_HI);
  v->mln2lo = _mm512_set1_ps(-ADASM__LN2_LO);
  v->c1 = _mm512_set1_ps(ADASM__C1);
  v->c2 = _mm512_set1_ps(ADASM__C2);
  v->c3 = _mm512_set1_ps(ADASM__C3);
  v->c4 = _mm512_set1_ps(ADASM__C4);
  v->c5 = _mm512_set1_ps(ADASM__C5);
}

ADASM__TARGET_AVX512 static inline __m512
adasm__exp16_avx512(const adasm__expv_avx512 *v, __m512 z) {
  __m512 x = _mm512_sub_ps(z, v->shift);
  __m512 n = _mm512_fmadd_ps(x, v->log2e, v->magic);
  __m512 s = _mm512_castsi512_ps(_mm512_slli_epi32(_mm512_castps_si512(n), 23));
  __m512 t, p, f;
  n = _mm512_sub_ps(n, v->magic);
  t = _mm512_fmadd_ps(n, v->mln2hi, x);
  t = _mm512_fmadd_ps(n, v->mln2lo, t);
  p = _mm512_fmadd_ps(v->c5, t, v->c4);
  p = _mm512_fmadd_ps(p, t, v->c3);
  p = _mm512_fmadd_ps(p, t, v->c2);
  p = _mm512_fmadd_ps(p, t, v->c1);
  t = _mm512_mul_ps(t, s);
  f = _mm512_fmadd_ps(t, p, s);
  return _mm512_maskz_mov_ps(_mm512_cmp_ps_mask(x, v->cutoff, _CMP_NLT_UQ), f);
}

/* Horizontal reductions written out: GCC 12's _mm512_reduce_* warn in C++. */
ADASM__TARGET_AVX512 static inline __m256 adasm__hi256_avx512(__m512 v) {
  return _mm256_castpd_ps(_mm512_extractf64x4_pd(_mm512_castps_pd(v), 1));
}
ADASM__TARGET_AVX512 static inline float adasm__hsum_avx512(__m512 v) {
  __m256 a = _mm256_add_ps(_mm512_castps512_ps256(v), adasm__hi256_avx512(v));
  __m128 b = _mm_add_ps(_mm256_castps256_ps128(a), _mm256_extractf128_ps(a, 1));
  b = _mm_add_ps(b, _mm_movehl_ps(b, b));
  return _mm_cvtss_f32(_mm_add_ss(b, _mm_shuffle_ps(b, b, 1)));
}
ADASM__TARGET_AVX512 static inline float adasm__hmax_avx512(__m512 v) {
  __m256 a = _mm256_max_ps(_mm512_castps512_ps256(v), adasm__hi256_avx512(v));
  __m128 b = _mm_max_ps(_mm256_castps256_ps128(a), _mm256_extractf128_ps(a, 1));
  b = _mm_max_ps(b, _mm_movehl_ps(b, b));
  return _mm_cvtss_f32(_mm_max_ss(b, _mm_shuffle_ps(b, b, 1)));
}
ADASM__TARGET_AVX512 static inline double adasm__hsum_pd_avx512(__m512d v) {
  __m256d a = _mm256_add_pd(_mm512_castpd512_pd256(v), _mm512_extractf64x4_pd(v, 1));
  __m128d b = _mm_add_pd(_mm256_castpd256_pd128(a), _mm256_extractf128_pd(a, 1));
  return _mm_cvtsd_f64(_mm_add_sd(b, _mm_unpackhi_pd(b, b)));
}

ADASM__TARGET_AVX512 static inline __m512d adasm__sum16_pd_avx512(__m512d acc,
                                                                  __m512 f) {
  acc = _mm512_add_pd(acc, _mm512_cvtps_pd(_mm512_castps512_ps256(f)));
  return _mm512_add_pd(
      acc, _mm512_cvtps_pd(adasm__hi256_avx512(f)));
}

ADASM__TARGET_AVX512 static inline __mmask16 adasm__tailmask_avx512(size_t r) {
  return (__mmask16)((1u << r) - 1u);
}

ADASM__TARGET_AVX512 static float adasm__max_avx512(const float *z, size_t n,
                                                   int *nan) {
  __m512 m0 = _mm512_set1_ps(-adasm__inff()), m1 = m0, m2 = m0, m3 = m0;
  __mmask16 un = 0;
  size_t i = 0;
  for (; i + 64 <= n; i += 64) {
    __m512 a = _mm512_loadu_ps(z + i), b = _mm512_loadu_ps(z + i + 16);
    __m512 c = _mm512_loadu_ps(z + i + 32), d = _mm512_loadu_ps(z + i + 48);
    m0 = _mm512_max_ps(a, m0); m1 = _mm512_max_ps(b, m1);
    m2 = _mm512_max_ps(c, m2); m3 = _mm512_max_ps(d, m3);
    un = (__mmask16)(un | _mm512_cmp_ps_mask(a, b, _CMP_UNORD_Q) |
                     _mm512_cmp_ps_mask(c, d, _CMP_UNORD_Q));
  }
  for (; i < n; i += 16) {
    __mmask16 k = n - i >= 16 ? (__mmask16)0xffff : adasm__tailmask_avx512(n - i);
    __m512 a = _mm512_mask_loadu_ps(_mm512_set1_ps(-adasm__inff()), k, z + i);
    m0 = _mm512_max_ps(a, m0);
    un = (__mmask16)(un | _mm512_cmp_ps_mask(a, a, _CMP_UNORD_Q));
  }
  if (un) *nan = 1;
  return adasm__hmax_avx512(_mm512_max_ps(_mm512_max_ps(m0, m1), _mm512_max_ps(m2, m3)));
}

/* The 4 lines of z two online blocks (2 ADASM__BLOCK floats) ahead. The
   exp is compute-bound (~6 cycles per 16 floats in L1) and the online
   algorithm alternates a max sweep (memory-bound) with an exp sweep of the
   same block: fetching ahead during the exp sweep lets the two overlap
   (one block ahead was too late: 0.16 ns/element for the first pass, two
   blocks 0.12, its in-cache cost). Addresses are formed as integers (they
   may pass the end; a prefetch never faults). */
ADASM__TARGET_AVX512 static inline void adasm__prefetch4_avx512(const float *z) {
  const uintptr_t a = (uintptr_t)z + 2u * ADASM__BLOCK * sizeof(float);
  _mm_prefetch((const char *)a, _MM_HINT_T0);
  _mm_prefetch((const char *)(a + 64u), _MM_HINT_T0);
  _mm_prefetch((const char *)(a + 128u), _MM_HINT_T0);
  _mm_prefetch((const char *)(a + 192u), _MM_HINT_T0);
}

ADASM__TARGET_AVX512 static double adasm__expsum_avx512(const float *z,
                                                       size_t n,
                                                       const adasm__expp *e,
                                                       float *out,
                                                       float oscale) {
  adasm__expv_avx512 v;
  __m512d s0 = _mm512_setzero_pd(), s1 = s0;
  __m512 os = _mm512_set1_ps(oscale);
  size_t i = 0;
  adasm__expv_init_avx512(&v, e);
  /* Four vectors are added in float as a tree, then once in double: every
     term sees at most two float roundings (relative 2^-23 in all), and the
     conversions, not the exp, had been the bottleneck of a sum-only pass. */
  if (out && n >= ADASM__NT_MIN && ((uintptr_t)out & 3u) == 0) {
    /* Outputs far larger than the caches: non-temporal stores skip the
       read-for-ownership of every output line (a third of the traffic).
       Peel to a 64-byte aligned out + i first (masked: -inf reads as 0). */
    const size_t head = ((64u - ((uintptr_t)out & 63u)) & 63u) / 4u;
    if (head) {
      const __mmask16 k = adasm__tailmask_avx512(head);
      __m512 f = adasm__exp16_avx512(
          &v, _mm512_mask_loadu_ps(_mm512_set1_ps(-adasm__inff()), k, z));
      s1 = adasm__sum16_pd_avx512(s1, f);
      _mm512_mask_storeu_ps(out, k, _mm512_mul_ps(f, os));
      i = head;
    }
    for (; i + 64 <= n; i += 64) {
      adasm__prefetch4_avx512(z + i);
      __m512 f0 = adasm__exp16_avx512(&v, _mm512_loadu_ps(z + i));
      __m512 f1 = adasm__exp16_avx512(&v, _mm512_loadu_ps(z + i + 16));
      __m512 f2 = adasm__exp16_avx512(&v, _mm512_loadu_ps(z + i + 32));
      __m512 f3 = adasm__exp16_avx512(&v, _mm512_loadu_ps(z + i + 48));
      _mm512_stream_ps(out + i, _mm512_mul_ps(f0, os));
      _mm512_stream_ps(out + i + 16, _mm512_mul_ps(f1, os));
      _mm512_stream_ps(out + i + 32, _mm512_mul_ps(f2, os));
      _mm512_stream_ps(out + i + 48, _mm512_mul_ps(f3, os));
      s0 = adasm__sum16_pd_avx512(s0, _mm512_add_ps(_mm512_add_ps(f0, f1), _mm512_add_ps(f2, f3)));
    }
    _mm_sfence(); /* order the streamed stores before anything after */
  } else if (out) {
    for (; i + 64 <= n; i += 64) {
      adasm__prefetch4_avx512(z + i);
      __m512 f0 = adasm__exp16_avx512(&v, _mm512_loadu_ps(z + i));
      __m512 f1 = adasm__exp16_avx512(&v, _mm512_loadu_ps(z + i + 16));
      __m512 f2 = adasm__exp16_avx512(&v, _mm512_loadu_ps(z + i + 32));
      __m512 f3 = adasm__exp16_avx512(&v, _mm512_loadu_ps(z + i + 48));
      _mm512_storeu_ps(out + i, _mm512_mul_ps(f0, os));
      _mm512_storeu_ps(out + i + 16, _mm512_mul_ps(f1, os));
      _mm512_storeu_ps(out + i + 32, _mm512_mul_ps(f2, os));
      _mm512_storeu_ps(out + i + 48, _mm512_mul_ps(f3, os));
      s0 = adasm__sum16_pd_avx512(s0, _mm512_add_ps(_mm512_add_ps(f0, f1), _mm512_add_ps(f2, f3)));
    }
  } else {
    for (; i + 64 <= n; i += 64) {
      adasm__prefetch4_avx512(z + i);
      __m512 f0 = adasm__exp16_avx512(&v, _mm512_loadu_ps(z + i));
      __m512 f1 = adasm__exp16_avx512(&v, _mm512_loadu_ps(z + i + 16));
      __m512 f2 = adasm__exp16_avx512(&v, _mm512_loadu_ps(z + i + 32));
      __m512 f3 = adasm__exp16_avx512(&v, _mm512_loadu_ps(z + i + 48));
      s1 = adasm__sum16_pd_avx512(s1, _mm512_add_ps(_mm512_add_ps(f0, f1), _mm512_add_ps(f2, f3)));
    }
  }
  for (; i < n; i += 16) {
    __mmask16 k = n - i >= 16 ? (__mmask16)0xffff : adasm__tailmask_avx512(n - i);
    __m512 f = adasm__exp16_avx512(
        &v, _mm512_mask_loadu_ps(_mm512_set1_ps(-adasm__inff()), k, z + i));
    s0 = adasm__sum16_pd_avx512(s0, f);
    if (out) _mm512_mask_storeu_ps(out + i, k, _mm512_mul_ps(f, os));
  }
  return adasm__hsum_pd_avx512(_mm512_add_pd(s0, s1));
}

ADASM__TARGET_AVX512 static void adasm__scale_avx512(float *p, size_t n,
                                                    float s) {
  __m512 vs = _mm512_set1_ps(s);
  size_t i = 0;
  for (; i + 64 <= n; i += 64) {
    _mm512_storeu_ps(p + i, _mm512_mul_ps(_mm512_loadu_ps(p + i), vs));
    _mm512_storeu_ps(p + i + 16, _mm512_mul_ps(_mm512_loadu_ps(p + i + 16), vs));
    _mm512_storeu_ps(p + i + 32, _mm512_mul_ps(_mm512_loadu_ps(p + i + 32), vs));
    _mm512_storeu_ps(p + i + 48, _mm512_mul_ps(_mm512_loadu_ps(p + i + 48), vs));
  }
  for (; i < n; i += 16) {
    __mmask16 k = n - i >= 16 ? (__mmask16)0xffff : adasm__tailmask_avx512(n - i);
    _mm512_mask_storeu_ps(p + i, k, _mm512_mul_ps(_mm512_maskz_loadu_ps(k, p + i), vs));
  }
}

ADASM__TARGET_AVX512 static void adasm__sub2_avx512(const float *z, size_t n,
                                                   float hi, float lo,
                                                   float *out) {
  __m512 vh = _mm512_set1_ps(hi), vl = _mm512_set1_ps(lo);
  size_t i = 0;
  for (; i < n; i += 16) {
    __mmask16 k = n - i >= 16 ? (__mmask16)0xffff : adasm__tailmask_avx512(n - i);
    __m512 a = _mm512_maskz_loadu_ps(k, z + i);
    _mm512_mask_storeu_ps(out + i, k, _mm512_sub_ps(_mm512_sub_ps(a, vh), vl));
  }
}

/* ---- sampler chain kernels (contracts at struct adasm_kernels) ---------- */
ADASM__TARGET_AVX512 static size_t adasm__find_ge_avx512(const float *z,
                                                        size_t n, float t) {
  const __m512 vt = _mm512_set1_ps(t);
  size_t i = 0;
  for (; i + 64 <= n; i += 64) {
    const __mmask16 a = _mm512_cmp_ps_mask(_mm512_loadu_ps(z + i), vt, _CMP_GE_OQ);
    const __mmask16 b = _mm512_cmp_ps_mask(_mm512_loadu_ps(z + i + 16), vt, _CMP_GE_OQ);
    const __mmask16 c = _mm512_cmp_ps_mask(_mm512_loadu_ps(z + i + 32), vt, _CMP_GE_OQ);
    const __mmask16 d = _mm512_cmp_ps_mask(_mm512_loadu_ps(z + i + 48), vt, _CMP_GE_OQ);
    const __mmask16 q = _mm512_kor(_mm512_kor(a, b), _mm512_kor(c, d));
    if (!_mm512_kortestz(q, q)) break;
  }
  for (; i < n; i += 16) {
    const __mmask16 k = n - i >= 16 ? (__mmask16)0xffff : adasm__tailmask_avx512(n - i);
    const __mmask16 mk =
        _mm512_mask_cmp_ps_mask(k, _mm512_maskz_loadu_ps(k, z + i), vt, _CMP_GE_OQ);
    if (mk) return i + adasm__ctz32((uint32_t)mk);
  }
  return n;
}

ADASM__TARGET_AVX512 static double adasm__texpsum_avx512(const float *z,
                                                        size_t n, float m,
                                                        float invt, float v) {
  adasm__expp ep;
  adasm__expv_avx512 ev;
  /* x = (z/2 - m/2) (2 invt): the halved difference cannot overflow */
  const __m512 vm = _mm512_set1_ps(m * 0.5f), vi = _mm512_set1_ps(invt * 2.0f);
  const __m512 vh = _mm512_set1_ps(0.5f);
  const __m512 vv = _mm512_set1_ps(v), ninf = _mm512_set1_ps(-adasm__inff());
  __m512d s0 = _mm512_setzero_pd(), s1 = s0;
  size_t i = 0;
  adasm__expp_unit(&ep);
  adasm__expv_init_avx512(&ev, &ep);
  for (; i + 64 <= n; i += 64) { /* a float tree of four, then double */
    const __m512 a = _mm512_loadu_ps(z + i), b = _mm512_loadu_ps(z + i + 16);
    const __m512 c = _mm512_loadu_ps(z + i + 32), d = _mm512_loadu_ps(z + i + 48);
    __m512 fa = adasm__exp16_avx512(&ev, _mm512_mul_ps(_mm512_fmsub_ps(a, vh, vm), vi));
    __m512 fb = adasm__exp16_avx512(&ev, _mm512_mul_ps(_mm512_fmsub_ps(b, vh, vm), vi));
    __m512 fc = adasm__exp16_avx512(&ev, _mm512_mul_ps(_mm512_fmsub_ps(c, vh, vm), vi));
    __m512 fd = adasm__exp16_avx512(&ev, _mm512_mul_ps(_mm512_fmsub_ps(d, vh, vm), vi));
    fa = _mm512_maskz_mov_ps(_mm512_cmp_ps_mask(a, vv, _CMP_GE_OQ), fa);
    fb = _mm512_maskz_mov_ps(_mm512_cmp_ps_mask(b, vv, _CMP_GE_OQ), fb);
    fc = _mm512_maskz_mov_ps(_mm512_cmp_ps_mask(c, vv, _CMP_GE_OQ), fc);
    fd = _mm512_maskz_mov_ps(_mm512_cmp_ps_mask(d, vv, _CMP_GE_OQ), fd);
    s0 = adasm__sum16_pd_avx512(s0, _mm512_add_ps(fa, fb));
    s1 = adasm__sum16_pd_avx512(s1, _mm512_add_ps(fc, fd));
  }
  for (; i < n; i += 16) {
    const __mmask16 k = n - i >= 16 ? (__mmask16)0xffff : adasm__tailmask_avx512(n - i);
    const __m512 a = _mm512_mask_loadu_ps(ninf, k, z + i); /* -inf: 0 */
    const __m512 f = adasm__exp16_avx512(&ev, _mm512_mul_ps(_mm512_fmsub_ps(a, vh, vm), vi));
    s0 = adasm__sum16_pd_avx512(
        s0, _mm512_maskz_mov_ps(_mm512_mask_cmp_ps_mask(k, a, vv, _CMP_GE_OQ), f));
  }
  return adasm__hsum_pd_avx512(_mm512_add_pd(s0, s1));
}

/* PCG32 XSH-RR outputs of eight states. */
ADASM__TARGET_AVX512 static inline __m256i adasm__pcg_out8_avx512(__m512i s) {
  const __m512i x =
      _mm512_srli_epi64(_mm512_xor_si512(_mm512_srli_epi64(s, 18), s), 27);
  return _mm256_rorv_epi32(_mm512_cvtepi64_epi32(x),
                           _mm512_cvtepi64_epi32(_mm512_srli_epi64(s, 59)));
}

/* Sixteen tokens per step: two vectors of eight generator states (64-bit
   multiplies of AVX-512 DQ). V_j is (2^32 - 1 - h_j) rounded to float.
   Sums go through float over 8 steps, then double. */
ADASM__TARGET_AVX512 static size_t adasm__race_avx512(const float *z,
                                                     size_t n,
                                                     adasm__race *r) {
  adasm__expp ep;
  adasm__expv_avx512 ev;
  /* x = (z/2 - m/2) (2 invt): the halved difference cannot overflow */
  const __m512 vm = _mm512_set1_ps(r->m * 0.5f), vi = _mm512_set1_ps(r->invt * 2.0f);
  const __m512 vh = _mm512_set1_ps(0.5f);
  const __m512 vv = _mm512_set1_ps(r->v);
  const __m512 ninf = _mm512_set1_ps(-adasm__inff());
  const __m512 scale = _mm512_set1_ps(r->cinv * (1.0f / 4294967296.0f));
  const __m512i ones = _mm512_set1_epi32(-1);
  __m512i s0, s1, va, vcc;
  __m512 fa = _mm512_setzero_ps(), fv = fa;
  __m512d da = _mm512_setzero_pd(), dv = da;
  uint64_t st[16], cnt = r->count_v;
  const uint64_t A = adasm__pcg_la[16], C = r->inc * adasm__pcg_lh[16];
  size_t j = 0, l, steps = 0;
  adasm__expp_unit(&ep);
  adasm__expv_init_avx512(&ev, &ep);
  for (l = 0; l < 16; ++l) /* token l's state; 16 tokens: s -> A s + C */
    st[l] = adasm__pcg_la[l] * r->state + r->inc * adasm__pcg_lh[l];
  s0 = _mm512_loadu_si512((const void *)st);
  s1 = _mm512_loadu_si512((const void *)(st + 8));
  va = _mm512_set1_epi64((long long)A);
  vcc = _mm512_set1_epi64((long long)C);
  for (; j < n; j += 16) {
    const __mmask16 k = n - j >= 16 ? (__mmask16)0xffff : adasm__tailmask_avx512(n - j);
    const __m512 a = _mm512_mask_loadu_ps(ninf, k, z + j);
    const __m512 e = adasm__exp16_avx512(&ev, _mm512_mul_ps(_mm512_fmsub_ps(a, vh, vm), vi));
    const __mmask16 in = _mm512_mask_cmp_ps_mask(k, a, vv, _CMP_GE_OQ);
    const __m512i h = _mm512_inserti64x4(
        _mm512_castsi256_si512(adasm__pcg_out8_avx512(s0)),
        adasm__pcg_out8_avx512(s1), 1);
    const __m512 sv = _mm512_mul_ps(_mm512_cvtepu32_ps(_mm512_xor_si512(h, ones)), scale);
    const __mmask16 mk = _mm512_mask_cmp_ps_mask(in, sv, e, _CMP_LT_OQ);
    if (mk) { /* lanes up to the first survivor are counted, no further */
      const unsigned first = adasm__ctz32((uint32_t)mk);
      const __mmask16 upto = (__mmask16)((2u << first) - 1u);
      fa = _mm512_mask_add_ps(fa, upto, fa, e);
      fv = _mm512_mask_add_ps(fv, (__mmask16)(in & upto), fv, e);
      cnt += adasm__popcount32((uint32_t)(in & upto));
      da = adasm__sum16_pd_avx512(da, fa);
      dv = adasm__sum16_pd_avx512(dv, fv);
      r->sum_all += adasm__hsum_pd_avx512(da);
      r->sum_v += adasm__hsum_pd_avx512(dv);
      r->count_v = cnt;
      return j + first;
    }
    fa = _mm512_add_ps(fa, e);
    fv = _mm512_mask_add_ps(fv, in, fv, e);
    cnt += adasm__popcount32((uint32_t)in);
    if (++steps == 8) {
      da = adasm__sum16_pd_avx512(da, fa);
      dv = adasm__sum16_pd_avx512(dv, fv);
      fa = _mm512_setzero_ps();
      fv = fa;
      steps = 0;
    }
    s0 = _mm512_add_epi64(_mm512_mullo_epi64(s0, va), vcc);
    s1 = _mm512_add_epi64(_mm512_mullo_epi64(s1, va), vcc);
  }
  da = adasm__sum16_pd_avx512(da, fa);
  dv = adasm__sum16_pd_avx512(dv, fv);
  r->sum_all += adasm__hsum_pd_avx512(da);
  r->sum_v += adasm__hsum_pd_avx512(dv);
  r->count_v = cnt;
  return n;
}

ADASM__TARGET_AVX512 static size_t adasm__sumgather_avx512(const float *z,
                                                          size_t n, float m,
                                                          float invt,
                                                          const float *t,
                                                          double *sum,
                                                          uint32_t *idx,
                                                          float *e) {
  adasm__expp ep;
  adasm__expv_avx512 ev;
  /* x = (z/2 - m/2) (2 invt): the halved difference cannot overflow */
  const __m512 vm = _mm512_set1_ps(m * 0.5f), vi = _mm512_set1_ps(invt * 2.0f);
  const __m512 vh = _mm512_set1_ps(0.5f);
  const __m512 ninf = _mm512_set1_ps(-adasm__inff());
  const __m512 t0 = _mm512_set1_ps(t[0]), t1 = _mm512_set1_ps(t[1]);
  const __m512 t2 = _mm512_set1_ps(t[2]), t3 = _mm512_set1_ps(t[3]);
  const __m512i iota = _mm512_setr_epi32(0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10,
                                         11, 12, 13, 14, 15);
  __m512 fs = _mm512_setzero_ps(), f0 = fs, f1 = fs, f2 = fs, f3 = fs;
  __m512d ds = _mm512_setzero_pd(), d0 = ds, d1 = ds, d2 = ds, d3 = ds;
  size_t j, steps = 0, c = 0;
  adasm__expp_unit(&ep);
  adasm__expv_init_avx512(&ev, &ep);
  for (j = 0; j < n; j += 16) {
    const __mmask16 k = n - j >= 16 ? (__mmask16)0xffff : adasm__tailmask_avx512(n - j);
    const __m512 a = _mm512_mask_loadu_ps(ninf, k, z + j); /* -inf: 0 */
    const __m512 f = adasm__exp16_avx512(&ev, _mm512_mul_ps(_mm512_fmsub_ps(a, vh, vm), vi));
    const __mmask16 mk = _mm512_mask_cmp_ps_mask(k, a, t3, _CMP_GE_OQ);
    fs = _mm512_add_ps(fs, f);
    f0 = _mm512_mask_add_ps(f0, _mm512_cmp_ps_mask(a, t0, _CMP_GE_OQ), f0, f);
    f1 = _mm512_mask_add_ps(f1, _mm512_cmp_ps_mask(a, t1, _CMP_GE_OQ), f1, f);
    f2 = _mm512_mask_add_ps(f2, _mm512_cmp_ps_mask(a, t2, _CMP_GE_OQ), f2, f);
    f3 = _mm512_mask_add_ps(f3, mk, f3, f);
    if (mk) {
      const __m512i id = _mm512_add_epi32(iota, _mm512_set1_epi32((int)j));
      _mm512_storeu_si512((void *)(idx + c), _mm512_maskz_compress_epi32(mk, id));
      _mm512_storeu_ps(e + c, _mm512_maskz_compress_ps(mk, f));
      c += adasm__popcount32((uint32_t)mk);
    }
    if (++steps == 8) { /* float over 8 vectors, then double */
      ds = adasm__sum16_pd_avx512(ds, fs);
      d0 = adasm__sum16_pd_avx512(d0, f0);
      d1 = adasm__sum16_pd_avx512(d1, f1);
      d2 = adasm__sum16_pd_avx512(d2, f2);
      d3 = adasm__sum16_pd_avx512(d3, f3);
      fs = f0 = f1 = f2 = f3 = _mm512_setzero_ps();
      steps = 0;
    }
  }
  sum[0] = adasm__hsum_pd_avx512(adasm__sum16_pd_avx512(d0, f0));
  sum[1] = adasm__hsum_pd_avx512(adasm__sum16_pd_avx512(d1, f1));
  sum[2] = adasm__hsum_pd_avx512(adasm__sum16_pd_avx512(d2, f2));
  sum[3] = adasm__hsum_pd_avx512(adasm__sum16_pd_avx512(d3, f3));
  sum[4] = adasm__hsum_pd_avx512(adasm__sum16_pd_avx512(ds, fs));
  return c;
}

ADASM__TARGET_AVX512 static void adasm__tp_sum_avx512(const float *z, size_t n,
                                                     adasm__tpacc *acc) {
  /* Two-pass, pass 1 (see adasm__tp_sum_avx2); scalef does the 2^k. */
  adasm__expp ep;
  adasm__expv_avx512 v;
  __m512 vmax = _mm512_set1_ps(-adasm__inff()), ae = _mm512_set1_ps(-1e9f);
  __m512 lo = _mm512_set1_ps(-ADASM__TP_CLAMP), hi = _mm512_set1_ps(ADASM__TP_CLAMP);
  __m512 one = _mm512_set1_ps(1.0f);
  __m512d am0 = _mm512_setzero_pd(), am1 = am0;
  __mmask16 un = 0;
  float eb[16];
  double mb[16];
  size_t i = 0, j;
  ep.shift = 0.0f; ep.magic = ADASM__MAGIC + 127.0f; ep.cutoff = -adasm__inff();
  ep.N = 0; ep.base = 0.0;
  adasm__expv_init_avx512(&v, &ep);
  for (; i < n; i += 16) {
    __mmask16 k = n - i >= 16 ? (__mmask16)0xffff : adasm__tailmask_avx512(n - i);
    __m512 a = _mm512_mask_loadu_ps(lo, k, z + i), x, nn, t, p, ne, sc;
    un = (__mmask16)(un | _mm512_cmp_ps_mask(a, a, _CMP_UNORD_Q));
    vmax = _mm512_max_ps(a, vmax);
    x = _mm512_min_ps(_mm512_max_ps(a, lo), hi);
    nn = _mm512_sub_ps(_mm512_fmadd_ps(x, v.log2e, v.magic), v.magic);
    t = _mm512_fmadd_ps(nn, v.mln2hi, x);
    t = _mm512_fmadd_ps(nn, v.mln2lo, t);
    p = _mm512_fmadd_ps(v.c5, t, v.c4);
    p = _mm512_fmadd_ps(p, t, v.c3);
    p = _mm512_fmadd_ps(p, t, v.c2);
    p = _mm512_fmadd_ps(p, t, v.c1);
    p = _mm512_maskz_mov_ps(k, _mm512_fmadd_ps(t, p, one));
    ne = _mm512_max_ps(ae, nn);
    sc = _mm512_scalef_ps(one, _mm512_sub_ps(ae, ne));
    p = _mm512_scalef_ps(p, _mm512_sub_ps(nn, ne));
    am0 = _mm512_fmadd_pd(am0, _mm512_cvtps_pd(_mm512_castps512_ps256(sc)),
                          _mm512_cvtps_pd(_mm512_castps512_ps256(p)));
    am1 = _mm512_fmadd_pd(
        am1, _mm512_cvtps_pd(adasm__hi256_avx512(sc)),
        _mm512_cvtps_pd(adasm__hi256_avx512(p)));
    ae = ne;
  }
  if (un) acc->nan = 1;
  {
    float m = adasm__hmax_avx512(vmax);
    if (m > acc->zmax) acc->zmax = m;
  }
  _mm512_storeu_ps(eb, ae);
  _mm512_storeu_pd(mb, am0);
  _mm512_storeu_pd(mb + 8, am1);
  for (j = 0; j < 16; ++j) adasm__tp_merge(acc, mb[j], (double)eb[j]);
}

ADASM__TARGET_AVX512 static void adasm__dot_rows_avx512(const float *A,
                                                       size_t rows, size_t d,
                                                       size_t lda,
                                                       const float *x,
                                                       float beta, float *y) {
  size_t r = 0, j;
  __mmask16 tk = adasm__tailmask_avx512(d & 15u);
  for (; r + 4 <= rows; r += 4) {
    const float *a0 = A + r * lda, *a1 = a0 + lda, *a2 = a1 + lda, *a3 = a2 + lda;
    __m512 s0 = _mm512_setzero_ps(), s1 = s0, s2 = s0, s3 = s0;
    __m512 t0 = s0, t1 = s0, t2 = s0, t3 = s0;
    /* Prefetch the next group of 4 rows: four interleaved streams are more
       than the hardware prefetcher keeps ahead of (measured ~5% at d=768).
       The address is formed as an integer: past the end of A it is only a
       hint, never a pointer. */
    const uintptr_t pf = (uintptr_t)a0 + 4u * lda * sizeof(float);
    for (j = 0; j + 32 <= d; j += 32) {
      __m512 xa = _mm512_loadu_ps(x + j), xb = _mm512_loadu_ps(x + j + 16);
      const uintptr_t pj = pf + j * sizeof(float);
      _mm_prefetch((const char *)pj, _MM_HINT_T0);
      _mm_prefetch((const char *)(pj + lda * sizeof(float)), _MM_HINT_T0);
      _mm_prefetch((const char *)(pj + 2u * lda * sizeof(float)), _MM_HINT_T0);
      _mm_prefetch((const char *)(pj + 3u * lda * sizeof(float)), _MM_HINT_T0);
      s0 = _mm512_fmadd_ps(_mm512_loadu_ps(a0 + j), xa, s0);
      s1 = _mm512_fmadd_ps(_mm512_loadu_ps(a1 + j), xa, s1);
      s2 = _mm512_fmadd_ps(_mm512_loadu_ps(a2 + j), xa, s2);
      s3 = _mm512_fmadd_ps(_mm512_loadu_ps(a3 + j), xa, s3);
      t0 = _mm512_fmadd_ps(_mm512_loadu_ps(a0 + j + 16), xb, t0);
      t1 = _mm512_fmadd_ps(_mm512_loadu_ps(a1 + j + 16), xb, t1);
      t2 = _mm512_fmadd_ps(_mm512_loadu_ps(a2 + j + 16), xb, t2);
      t3 = _mm512_fmadd_ps(_mm512_loadu_ps(a3 + j + 16), xb, t3);
    }
    for (; j + 16 <= d; j += 16) {
      __m512 xa = _mm512_loadu_ps(x + j);
      s0 = _mm512_fmadd_ps(_mm512_loadu_ps(a0 + j), xa, s0);
      s1 = _mm512_fmadd_ps(_mm512_loadu_ps(a1 + j), xa, s1);
      s2 = _mm512_fmadd_ps(_mm512_loadu_ps(a2 + j), xa, s2);
      s3 = _mm512_fmadd_ps(_mm512_loadu_ps(a3 + j), xa, s3);
    }
    if (tk) {
      __m512 xa = _mm512_maskz_loadu_ps(tk, x + j);
      t0 = _mm512_fmadd_ps(_mm512_maskz_loadu_ps(tk, a0 + j), xa, t0);
      t1 = _mm512_fmadd_ps(_mm512_maskz_loadu_ps(tk, a1 + j), xa, t1);
      t2 = _mm512_fmadd_ps(_mm512_maskz_loadu_ps(tk, a2 + j), xa, t2);
      t3 = _mm512_fmadd_ps(_mm512_maskz_loadu_ps(tk, a3 + j), xa, t3);
    }
    y[r] = beta * adasm__hsum_avx512(_mm512_add_ps(s0, t0));
    y[r + 1] = beta * adasm__hsum_avx512(_mm512_add_ps(s1, t1));
    y[r + 2] = beta * adasm__hsum_avx512(_mm512_add_ps(s2, t2));
    y[r + 3] = beta * adasm__hsum_avx512(_mm512_add_ps(s3, t3));
  }
  for (; r < rows; ++r) {
    const float *a0 = A + r * lda;
    __m512 s0 = _mm512_setzero_ps(), t0 = s0;
    for (j = 0; j + 32 <= d; j += 32) {
      s0 = _mm512_fmadd_ps(_mm512_loadu_ps(a0 + j), _mm512_loadu_ps(x + j), s0);
      t0 = _mm512_fmadd_ps(_mm512_loadu_ps(a0 + j + 16), _mm512_loadu_ps(x + j + 16), t0);
    }
    for (; j + 16 <= d; j += 16)
      s0 = _mm512_fmadd_ps(_mm512_loadu_ps(a0 + j), _mm512_loadu_ps(x + j), s0);
    if (tk)
      t0 = _mm512_fmadd_ps(_mm512_maskz_loadu_ps(tk, a0 + j), _mm512_maskz_loadu_ps(tk, x + j), t0);
    y[r] = beta * adasm__hsum_avx512(_mm512_add_ps(s0, t0));
  }
}

static const adasm_kernels adasm__kernels_avx512 = {
    ADASM_ISA_AVX512,     adasm__max_avx512,  adasm__expsum_avx512,
    adasm__scale_avx512,  adasm__sub2_avx512, adasm__tp_sum_avx512,
    adasm__dot_rows_avx512,
    adasm__find_ge_avx512, adasm__texpsum_avx512, adasm__race_avx512,
    adasm__sumgather_avx512};
#if defined(__GNUC__) && !defined(__clang__)
#pragma GCC diagnostic pop
#endif
#endif /* ADASM__HAVE_AVX512 */

/* >>k_neon ----------------------------------------------------------------
   4 lanes, AArch64 (NEON is part of the base ISA: no run-time check). */
#if defined(ADASM__HAVE_NEON)
typedef struct adasm__expv_neon {
  float32x4_t shift, magic, cutoff, log2e, mln2hi, mln2lo, c1, c2, c3, c4, c5;
} adasm__expv_neon;

static inline void adasm__expv_init_neon(adasm__expv_neon *v,
                                         const adasm__expp *e) {
  v->shift = vdupq_n_f32(e->shift);
  v->magic = vdupq_n_f32(e->magic);
  v->cutoff = vdupq_n_f32(e->cutoff);
  v->log2e = vdupq_n_f32(ADASM__LOG2E_F);
  v->mln2hi = vdupq_n_f32(-ADASM__LN2_HI);
  v->mln2lo = vdupq_n_f32(-ADASM__LN2_LO);
  v->c1 = vdupq_n_f32(ADASM__C1);
  v->c2 = vdupq_n_f32(ADASM__C2);
  v->c3 = vdupq_n_f32(ADASM__C3);
  v->c4 = vdupq_n_f32(ADASM__C4);
  v->c5 = vdupq_n_f32(ADASM__C5);
}

/* f(z) for 4 lanes; vfmaq_f32(c, a, b) = c + a * b. */
static inline float32x4_t adasm__exp4_neon(const adasm__expv_neon *v,
                                           float32x4_t z) {
  float32x4_t x = vsubq_f32(z, v->shift);
  float32x4_t n = vfmaq_f32(v->magic, x, v->log2e);
  float32x4_t s = vreinterpretq_f32_s32(vshlq_n_s32(vreinterpretq_s32_f32(n), 23));
  float32x4_t t, p, f;
  n = vsubq_f32(n, v->magic);
  t = vfmaq_f32(x, n, v->mln2hi);
  t = vfmaq_f32(t, n, v->mln2lo);
  p = vfmaq_f32(v->c4, v->c5, t);
  p = vfmaq_f32(v->c3, p, t);
  p = vfmaq_f32(v->c2, p, t);
  p = vfmaq_f32(v->c1, p, t);
  t = vmulq_f32(t, s);
  f = vfmaq_f32(s, t, p);
  /* clear lanes with x < cutoff; NaN compares false and stays NaN */
  return vreinterpretq_f32_u32(
      vbicq_u32(vreinterpretq_u32_f32(f), vcltq_f32(x, v->cutoff)));
}

static inline float64x2_t adasm__sum4_pd_neon(float64x2_t acc, float32x4_t f) {
  acc = vaddq_f64(acc, vcvt_f64_f32(vget_low_f32(f)));
  return vaddq_f64(acc, vcvt_high_f64_f32(f));
}

/* Loads z[i..i+4) or, past the end, pads with `pad`. */
static inline float32x4_t adasm__load4_neon(const float *z, size_t left,
                                            float pad) {
  float buf[4];
  size_t j;
  if (left >= 4) return vld1q_f32(z);
  for (j = 0; j < 4; ++j) buf[j] = j < left ? z[j] : pad;
  return vld1q_f32(buf);
}

static float adasm__max_neon(const float *z, size_t n, int *nan) {
  float32x4_t m0 = vdupq_n_f32(-adasm__inff()), m1 = m0;
  uint32x4_t ok = vdupq_n_u32(0xffffffffu);
  size_t i = 0;
  for (; i + 8 <= n; i += 8) {
    float32x4_t a = vld1q_f32(z + i), b = vld1q_f32(z + i + 4);
    m0 = vmaxnmq_f32(m0, a); /* maxNum: a NaN operand is ignored */
    m1 = vmaxnmq_f32(m1, b);
    ok = vandq_u32(ok, vandq_u32(vceqq_f32(a, a), vceqq_f32(b, b)));
  }
  for (; i < n; i += 4) {
    float32x4_t a = adasm__load4_neon(z + i, n - i, -adasm__inff());
    m0 = vmaxnmq_f32(m0, a);
    ok = vandq_u32(ok, vceqq_f32(a, a));
  }
  if (vminvq_u32(ok) == 0) *nan = 1;
  return vmaxnmvq_f32(vmaxnmq_f32(m0, m1));
}

static double adasm__expsum_neon(const float *z, size_t n,
                                 const adasm__expp *e, float *out,
                                 float oscale) {
  adasm__expv_neon v;
  float64x2_t s0 = vdupq_n_f64(0.0), s1 = s0;
  size_t i = 0;
  adasm__expv_init_neon(&v, e);
  for (; i + 8 <= n; i += 8) {
    float32x4_t f0 = adasm__exp4_neon(&v, vld1q_f32(z + i));
    float32x4_t f1 = adasm__exp4_neon(&v, vld1q_f32(z + i + 4));
    s0 = adasm__sum4_pd_neon(s0, f0);
    s1 = adasm__sum4_pd_neon(s1, f1);
    if (out) {
      vst1q_f32(out + i, vmulq_n_f32(f0, oscale));
      vst1q_f32(out + i + 4, vmulq_n_f32(f1, oscale));
    }
  }
  for (; i < n; i += 4) {
    size_t r = n - i < 4 ? n - i : 4, j;
    float buf[4];
    float32x4_t f = adasm__exp4_neon(&v, adasm__load4_neon(z + i, n - i, -adasm__inff()));
    s0 = adasm__sum4_pd_neon(s0, f);
    if (out) {
      vst1q_f32(buf, vmulq_n_f32(f, oscale));
      for (j = 0; j < r; ++j) out[i + j] = buf[j];
    }
  }
  return vaddvq_f64(vaddq_f64(s0, s1));
}

static void adasm__scale_neon(float *p, size_t n, float s) {
  size_t i = 0;
  for (; i + 4 <= n; i += 4) vst1q_f32(p + i, vmulq_n_f32(vld1q_f32(p + i), s));
  for (; i < n; ++i) p[i] *= s;
}

static void adasm__sub2_neon(const float *z, size_t n, float hi, float lo,
                             float *out) {
  float32x4_t vh = vdupq_n_f32(hi), vl = vdupq_n_f32(lo);
  size_t i = 0;
  for (; i + 4 <= n; i += 4)
    vst1q_f32(out + i, vsubq_f32(vsubq_f32(vld1q_f32(z + i), vh), vl));
  for (; i < n; ++i) out[i] = (z[i] - hi) - lo;
}

/* ---- sampler chain kernels (contracts at struct adasm_kernels); the
   draw's scan is the scalar one (AArch64 NEON has no 64-bit multiply) --- */
static size_t adasm__find_ge_neon(const float *z, size_t n, float t) {
  const float32x4_t vt = vdupq_n_f32(t);
  size_t i = 0, j;
  for (; i + 16 <= n; i += 16) {
    uint32x4_t a = vcgeq_f32(vld1q_f32(z + i), vt);
    a = vorrq_u32(a, vcgeq_f32(vld1q_f32(z + i + 4), vt));
    a = vorrq_u32(a, vcgeq_f32(vld1q_f32(z + i + 8), vt));
    a = vorrq_u32(a, vcgeq_f32(vld1q_f32(z + i + 12), vt));
    if (vmaxvq_u32(a)) break; /* found in this group: scanned below */
  }
  for (j = i; j < n; ++j)
    if (z[j] >= t) return j;
  return n;
}

static double adasm__texpsum_neon(const float *z, size_t n, float m,
                                  float invt, float v) {
  adasm__expp ep;
  adasm__expv_neon ev;
  /* x = -(m/2 - z/2) (2 invt): the halved difference cannot overflow */
  const float32x4_t vm = vdupq_n_f32(m * 0.5f), vi = vdupq_n_f32(invt * -2.0f);
  const float32x4_t vh = vdupq_n_f32(0.5f);
  const float32x4_t vv = vdupq_n_f32(v);
  float64x2_t s0 = vdupq_n_f64(0.0), s1 = s0;
  size_t i = 0;
  adasm__expp_unit(&ep);
  adasm__expv_init_neon(&ev, &ep);
  for (; i < n; i += 8) {
    const float32x4_t a = adasm__load4_neon(z + i, n - i, -adasm__inff());
    const float32x4_t b = i + 4 < n ? adasm__load4_neon(z + i + 4, n - i - 4,
                                                        -adasm__inff())
                                    : vdupq_n_f32(-adasm__inff());
    const float32x4_t fa = adasm__exp4_neon(&ev, vmulq_f32(vfmsq_f32(vm, a, vh), vi));
    const float32x4_t fb = adasm__exp4_neon(&ev, vmulq_f32(vfmsq_f32(vm, b, vh), vi));
    s0 = adasm__sum4_pd_neon(s0, vreinterpretq_f32_u32(vandq_u32(
                                     vreinterpretq_u32_f32(fa), vcgeq_f32(a, vv))));
    s1 = adasm__sum4_pd_neon(s1, vreinterpretq_f32_u32(vandq_u32(
                                     vreinterpretq_u32_f32(fb), vcgeq_f32(b, vv))));
  }
  return vaddvq_f64(vaddq_f64(s0, s1));
}

static size_t adasm__sumgather_neon(const float *z, size_t n, float m,
                                    float invt, const float *t, double *sum,
                                    uint32_t *idx, float *e) {
  adasm__expp ep;
  adasm__expv_neon ev;
  /* x = -(m/2 - z/2) (2 invt): the halved difference cannot overflow */
  const float32x4_t vm = vdupq_n_f32(m * 0.5f), vi = vdupq_n_f32(invt * -2.0f);
  const float32x4_t vh = vdupq_n_f32(0.5f);
  const float32x4_t t0 = vdupq_n_f32(t[0]), t1 = vdupq_n_f32(t[1]);
  const float32x4_t t2 = vdupq_n_f32(t[2]), t3 = vdupq_n_f32(t[3]);
  float32x4_t fs = vdupq_n_f32(0.0f), f0 = fs, f1 = fs, f2 = fs, f3 = fs;
  float64x2_t ds = vdupq_n_f64(0.0), d0 = ds, d1 = ds, d2 = ds, d3 = ds;
  float buf[4];
  size_t j, q, steps = 0, c = 0;
  adasm__expp_unit(&ep);
  adasm__expv_init_neon(&ev, &ep);
#define ADASM__NEON_MADD(acc, mask)                                            \
  vaddq_f32((acc), vreinterpretq_f32_u32(vandq_u32(vreinterpretq_u32_f32(f), (mask))))
  for (j = 0; j < n; j += 4) {
    const float32x4_t a = adasm__load4_neon(z + j, n - j, -adasm__inff());
    const float32x4_t f = adasm__exp4_neon(&ev, vmulq_f32(vfmsq_f32(vm, a, vh), vi));
    const uint32x4_t in = vcgeq_f32(a, t3);
    fs = vaddq_f32(fs, f);
    f0 = ADASM__NEON_MADD(f0, vcgeq_f32(a, t0));
    f1 = ADASM__NEON_MADD(f1, vcgeq_f32(a, t1));
    f2 = ADASM__NEON_MADD(f2, vcgeq_f32(a, t2));
    f3 = ADASM__NEON_MADD(f3, in);
    if (vmaxvq_u32(in)) {
      vst1q_f32(buf, f);
      for (q = 0; q < 4 && j + q < n; ++q)
        if (z[j + q] >= t[3]) {
          idx[c] = (uint32_t)(j + q);
          e[c++] = buf[q];
        }
    }
    if (++steps == 8) { /* float over 8 vectors, then double */
      ds = adasm__sum4_pd_neon(ds, fs);
      d0 = adasm__sum4_pd_neon(d0, f0);
      d1 = adasm__sum4_pd_neon(d1, f1);
      d2 = adasm__sum4_pd_neon(d2, f2);
      d3 = adasm__sum4_pd_neon(d3, f3);
      fs = f0 = f1 = f2 = f3 = vdupq_n_f32(0.0f);
      steps = 0;
    }
  }
#undef ADASM__NEON_MADD
  sum[0] = vaddvq_f64(adasm__sum4_pd_neon(d0, f0));
  sum[1] = vaddvq_f64(adasm__sum4_pd_neon(d1, f1));
  sum[2] = vaddvq_f64(adasm__sum4_pd_neon(d2, f2));
  sum[3] = vaddvq_f64(adasm__sum4_pd_neon(d3, f3));
  sum[4] = vaddvq_f64(adasm__sum4_pd_neon(ds, fs));
  return c;
}

/* 2^k for integral k <= 0 given as floats; k < -126 gives 0. */
static inline float32x4_t adasm__pow2_neon(float32x4_t k) {
  int32x4_t b = vcvtnq_s32_f32(vmaxq_f32(k, vdupq_n_f32(-127.0f)));
  return vreinterpretq_f32_s32(vshlq_n_s32(vaddq_s32(b, vdupq_n_s32(127)), 23));
}

static void adasm__tp_sum_neon(const float *z, size_t n, adasm__tpacc *acc) {
  /* Two-pass, pass 1 (see adasm__tp_sum_avx2). */
  adasm__expp ep;
  adasm__expv_neon v;
  float32x4_t vmax = vdupq_n_f32(-adasm__inff()), ae = vdupq_n_f32(-1e9f);
  float32x4_t lo = vdupq_n_f32(-ADASM__TP_CLAMP), hi = vdupq_n_f32(ADASM__TP_CLAMP);
  float64x2_t am0 = vdupq_n_f64(0.0), am1 = am0;
  uint32x4_t ok = vdupq_n_u32(0xffffffffu);
  float eb[4], pad[4];
  double mb[4];
  size_t i = 0, j;
  ep.shift = 0.0f; ep.magic = ADASM__MAGIC + 127.0f; ep.cutoff = -adasm__inff();
  ep.N = 0; ep.base = 0.0;
  adasm__expv_init_neon(&v, &ep);
  for (; i < n; i += 4) {
    float32x4_t a = adasm__load4_neon(z + i, n - i, -adasm__inff()), x, nn, t, p, ne, sc;
    ok = vandq_u32(ok, vceqq_f32(a, a));
    vmax = vmaxnmq_f32(vmax, a);
    x = vminq_f32(vmaxnmq_f32(a, lo), hi); /* NaN -> lo, ignored */
    nn = vsubq_f32(vfmaq_f32(v.magic, x, v.log2e), v.magic);
    t = vfmaq_f32(x, nn, v.mln2hi);
    t = vfmaq_f32(t, nn, v.mln2lo);
    p = vfmaq_f32(v.c4, v.c5, t);
    p = vfmaq_f32(v.c3, p, t);
    p = vfmaq_f32(v.c2, p, t);
    p = vfmaq_f32(v.c1, p, t);
    p = vfmaq_f32(vdupq_n_f32(1.0f), t, p);
    if (n - i < 4) {
      for (j = 0; j < 4; ++j) pad[j] = j < n - i ? 1.0f : 0.0f;
      p = vmulq_f32(p, vld1q_f32(pad));
    }
    ne = vmaxq_f32(ae, nn);
    sc = adasm__pow2_neon(vsubq_f32(ae, ne));
    p = vmulq_f32(p, adasm__pow2_neon(vsubq_f32(nn, ne)));
    am0 = vfmaq_f64(vcvt_f64_f32(vget_low_f32(p)), am0, vcvt_f64_f32(vget_low_f32(sc)));
    am1 = vfmaq_f64(vcvt_high_f64_f32(p), am1, vcvt_high_f64_f32(sc));
    ae = ne;
  }
  if (vminvq_u32(ok) == 0) acc->nan = 1;
  {
    float m = vmaxnmvq_f32(vmax);
    if (m > acc->zmax) acc->zmax = m;
  }
  vst1q_f32(eb, ae);
  vst1q_f64(mb, am0);
  vst1q_f64(mb + 2, am1);
  for (j = 0; j < 4; ++j) adasm__tp_merge(acc, mb[j], (double)eb[j]);
}

static void adasm__dot_rows_neon(const float *A, size_t rows, size_t d,
                                 size_t lda, const float *x, float beta,
                                 float *y) {
  size_t r = 0, j;
  for (; r + 4 <= rows; r += 4) {
    const float *a0 = A + r * lda, *a1 = a0 + lda, *a2 = a1 + lda, *a3 = a2 + lda;
    float32x4_t s0 = vdupq_n_f32(0.0f), s1 = s0, s2 = s0, s3 = s0;
    float32x4_t u0 = s0, u1 = s0, u2 = s0, u3 = s0; /* 8 lanes per row */
    float t0 = 0, t1 = 0, t2 = 0, t3 = 0;
    for (j = 0; j + 8 <= d; j += 8) {
      float32x4_t xv = vld1q_f32(x + j), xw = vld1q_f32(x + j + 4);
      s0 = vfmaq_f32(s0, vld1q_f32(a0 + j), xv);
      s1 = vfmaq_f32(s1, vld1q_f32(a1 + j), xv);
      s2 = vfmaq_f32(s2, vld1q_f32(a2 + j), xv);
      s3 = vfmaq_f32(s3, vld1q_f32(a3 + j), xv);
      u0 = vfmaq_f32(u0, vld1q_f32(a0 + j + 4), xw);
      u1 = vfmaq_f32(u1, vld1q_f32(a1 + j + 4), xw);
      u2 = vfmaq_f32(u2, vld1q_f32(a2 + j + 4), xw);
      u3 = vfmaq_f32(u3, vld1q_f32(a3 + j + 4), xw);
    }
    for (; j < d; ++j) {
      t0 += a0[j] * x[j]; t1 += a1[j] * x[j];
      t2 += a2[j] * x[j]; t3 += a3[j] * x[j];
    }
    y[r] = beta * (vaddvq_f32(vaddq_f32(s0, u0)) + t0);
    y[r + 1] = beta * (vaddvq_f32(vaddq_f32(s1, u1)) + t1);
    y[r + 2] = beta * (vaddvq_f32(vaddq_f32(s2, u2)) + t2);
    y[r + 3] = beta * (vaddvq_f32(vaddq_f32(s3, u3)) + t3);
  }
  for (; r < rows; ++r) {
    const float *a0 = A + r * lda;
    float32x4_t s0 = vdupq_n_f32(0.0f), s1 = s0;
    float t0 = 0;
    for (j = 0; j + 8 <= d; j += 8) {
      s0 = vfmaq_f32(s0, vld1q_f32(a0 + j), vld1q_f32(x + j));
      s1 = vfmaq_f32(s1, vld1q_f32(a0 + j + 4), vld1q_f32(x + j + 4));
    }
    for (; j < d; ++j) t0 += a0[j] * x[j];
    y[r] = beta * (vaddvq_f32(vaddq_f32(s0, s1)) + t0);
  }
}

static const adasm_kernels adasm__kernels_neon = {
    ADASM_ISA_NEON,     adasm__max_neon,    adasm__expsum_neon,
    adasm__scale_neon,  adasm__sub2_neon,   adasm__tp_sum_neon,
    adasm__dot_rows_neon,
    adasm__find_ge_neon, adasm__texpsum_neon, adasm__race_scalar,
    adasm__sumgather_neon};
#endif /* ADASM__HAVE_NEON */

/* >>dispatch -------------------------------------------------------------- */
ADASM__PRIVATE const adasm_kernels *adasm__table(adasm_isa isa) {
  switch (isa) {
  case ADASM_ISA_SCALAR: return &adasm__kernels_scalar;
#if defined(ADASM__HAVE_AVX2)
  case ADASM_ISA_AVX2:
    return (adasm__cpu_features() & ADASM__CPU_AVX2) ? &adasm__kernels_avx2 : NULL;
#endif
#if defined(ADASM__HAVE_AVX512)
  case ADASM_ISA_AVX512:
    return (adasm__cpu_features() & ADASM__CPU_AVX512) ? &adasm__kernels_avx512 : NULL;
#endif
#if defined(ADASM__HAVE_NEON)
  case ADASM_ISA_NEON: return &adasm__kernels_neon;
#endif
  default: return NULL;
  }
}

ADASM_DEF const char *adasm_result_string(adasm_result r) {
  switch (r) {
#define ADASM__CASE(name, value, text) case name: return text;
    ADASM_RESULT_LIST(ADASM__CASE)
#undef ADASM__CASE
  default: return "unknown adasm_result";
  }
}

ADASM_DEF const char *adasm_isa_name(adasm_isa isa) {
  switch (isa) {
  case ADASM_ISA_AUTO: return "auto";
  case ADASM_ISA_SCALAR: return "scalar";
  case ADASM_ISA_AVX2: return "avx2";
  case ADASM_ISA_AVX512: return "avx512";
  case ADASM_ISA_NEON: return "neon";
  default: return "unknown";
  }
}

ADASM_DEF int adasm_isa_supported(adasm_isa isa) {
  if (isa == ADASM_ISA_AUTO) return 1;
  return adasm__table(isa) != NULL;
}

ADASM_DEF adasm_isa adasm_isa_best(void) {
  static const adasm_isa order[] = {ADASM_ISA_AVX512, ADASM_ISA_AVX2,
                                    ADASM_ISA_NEON};
  size_t i;
  for (i = 0; i < sizeof order / sizeof order[0]; ++i)
    if (adasm__table(order[i])) return order[i];
  return ADASM_ISA_SCALAR;
}

ADASM_DEF adasm_result adasm_kernels_get(adasm_isa isa,
                                         const adasm_kernels **out) {
  const adasm_kernels *k;
  if (!out) return ADASM_ERR_NULL;
  if ((int)isa < 0 || (int)isa >= (int)ADASM_ISA_COUNT) return ADASM_ERR_PARAM;
  k = adasm__table(isa == ADASM_ISA_AUTO ? adasm_isa_best() : isa);
  if (!k) return ADASM_ERR_ISA_UNSUPPORTED;
  *out = k;
  return ADASM_OK;
}

ADASM_DEF adasm_isa adasm_kernels_isa(const adasm_kernels *k) {
  return k ? k->isa : adasm_isa_best();
}

ADASM__PRIVATE const adasm_kernels *adasm__k(const adasm_kernels *k) {
  return k ? k : adasm__table(adasm_isa_best());
}

/* >>exact -----------------------------------------------------------------
   Drivers shared by every ISA: special values, algorithm choice, blocking. */

/* Exp parameters that take the maximum m (finite) out of every term. */
ADASM__PRIVATE void adasm__expp_fold(int N, adasm__expp *e) {
  e->shift = 0.0f;
  e->N = N;
  e->magic = ADASM__MAGIC + (float)(127 - N);
  /* z >= cutoff keeps n - N >= -126, a normal power of two */
  e->cutoff = (float)(((double)N - 125.0) * ADASM__LN2);
  e->base = (double)N * ADASM__LN2;
}
ADASM__PRIVATE void adasm__expp_for_max(float m, adasm__expp *e) {
  if (m > -65536.0f && m < 65536.0f) {
    adasm__expp_fold((int)floor((double)m * ADASM__LOG2E + 0.5), e);
  } else { /* |m| >= 2^16: z - m is exact for every z that matters */
    e->shift = m;
    e->N = 0;
    e->magic = ADASM__MAGIC + 127.0f;
    e->cutoff = -87.0f;
    e->base = (double)m;
  }
}

/* Running (max, sum) over blocks: Milakov & Gimelshein's online normalizer,
   with the max taken per L1-sized block so each element costs one exp. */
typedef struct adasm__online {
  float m;       /* running max (-inf: none yet) */
  double s;      /* sum of exp(z - e.base) */
  adasm__expp e; /* parameters for the running max */
  size_t ninf;   /* count of +inf entries */
  int nan;
} adasm__online;

ADASM__PRIVATE void adasm__online_init(adasm__online *st) {
  memset(st, 0, sizeof *st);
  st->m = -adasm__inff();
}

/* Feeds z[0..n) and returns the block max (for callers that filter). */
ADASM__PRIVATE float adasm__online_feed(const adasm_kernels *k,
                                        adasm__online *st, const float *z,
                                        size_t n) {
  float bm = k->max(z, n, &st->nan);
  if (bm == adasm__inff()) {
    size_t i;
    for (i = 0; i < n; ++i) st->ninf += z[i] == bm;
    return bm;
  }
  if (bm == -adasm__inff() || st->ninf) return bm;
  if (bm > st->m) {
    adasm__expp ne;
    adasm__expp_for_max(bm, &ne);
    st->s = st->s > 0.0 ? st->s * exp(st->e.base - ne.base) : 0.0;
    st->e = ne;
    st->m = bm;
  }
  st->s += k->expsum(z, n, &st->e, NULL, 1.0f);
  return bm;
}

/* Classifies the outcome; on success *lse = log of the normalizer. */
ADASM__PRIVATE adasm_result adasm__online_result(const adasm__online *st,
                                                 double *lse) {
  if (st->nan) { *lse = (double)adasm__nanf(); return ADASM_ERR_NAN; }
  if (st->ninf) { *lse = (double)adasm__inff(); return ADASM_OK; }
  if (st->m == -adasm__inff()) {
    *lse = -(double)adasm__inff();
    return ADASM_ERR_NO_FINITE_MAX;
  }
  *lse = st->e.base + log(st->s);
  return ADASM_OK;
}

/* log p for a finite entry v: (v - base) - log S, never v - lse, because
   for |v| ~ 1e18 the double lse = base + log S has already lost log S. */
ADASM__PRIVATE double adasm__online_logp(const adasm__online *st, float v) {
  return ((double)v - st->e.base) - log(st->s);
}

ADASM__PRIVATE void adasm__online_run(const adasm_kernels *k,
                                      adasm__online *st, const float *z,
                                      size_t n) {
  size_t i;
  adasm__online_init(st);
  for (i = 0; i < n; i += ADASM__BLOCK)
    (void)adasm__online_feed(k, st, z + i, n - i < ADASM__BLOCK ? n - i : ADASM__BLOCK);
}

/* +inf entries share the mass: the limit of softmax as they grow. */
ADASM__PRIVATE void adasm__inf_share(const float *z, size_t n, float *p,
                                     int logp) {
  size_t i, c = 0;
  float v;
  for (i = 0; i < n; ++i) c += z[i] == adasm__inff();
  v = logp ? (float)-log((double)c) : (float)(1.0 / (double)c);
  for (i = 0; i < n; ++i)
    p[i] = z[i] == adasm__inff() ? v : (logp ? -adasm__inff() : 0.0f);
}

/* Writes the outputs for a special outcome; returns 1 if it did. */
ADASM__PRIVATE int adasm__special(adasm_result r, const float *z, size_t n,
                                  float *p, int logp, int ninf) {
  if (r != ADASM_OK) {
    adasm__fill(p, n, adasm__nanf());
    return 1;
  }
  if (ninf) {
    adasm__inf_share(z, n, p, logp);
    return 1;
  }
  return 0;
}

ADASM__PRIVATE adasm_result adasm__softmax_three_pass(const adasm_kernels *k,
                                                      const float *z, size_t n,
                                                      float *p) {
  int nan = 0;
  float m = k->max(z, n, &nan);
  adasm__expp e;
  double s;
  size_t i;
  adasm_result r = nan ? ADASM_ERR_NAN
                       : (m == -adasm__inff() ? ADASM_ERR_NO_FINITE_MAX : ADASM_OK);
  if (adasm__special(r, z, n, p, 0, m == adasm__inff())) return r;
  adasm__expp_for_max(m, &e);
  /* in pieces below ADASM__NT_MIN: p is read back by the scale pass, so it
     must stay in cache, never be streamed past it */
  for (s = 0.0, i = 0; i < n; i += ADASM__NT_MIN / 2)
    s += k->expsum(z + i, n - i < ADASM__NT_MIN / 2 ? n - i : ADASM__NT_MIN / 2,
                   &e, p + i, 1.0f);
  k->scale(p, n, (float)(1.0 / s));
  return ADASM_OK;
}

ADASM__PRIVATE adasm_result adasm__softmax_online(const adasm_kernels *k,
                                                  const float *z, size_t n,
                                                  float *p) {
  adasm__online st;
  double lse;
  adasm_result r;
  adasm__online_run(k, &st, z, n);
  r = adasm__online_result(&st, &lse);
  if (adasm__special(r, z, n, p, 0, st.ninf != 0)) return r;
  (void)k->expsum(z, n, &st.e, p, (float)(1.0 / st.s));
  return ADASM_OK;
}

ADASM__PRIVATE adasm_result adasm__softmax_two_pass(const adasm_kernels *k,
                                                    const float *z, size_t n,
                                                    float *p) {
  adasm__tpacc acc;
  adasm__expp e;
  acc.m = 0.0; acc.e = 0.0; acc.zmax = -adasm__inff(); acc.nan = 0;
  k->tp_sum(z, n, &acc);
  if (acc.nan || acc.zmax == -adasm__inff() || acc.zmax == adasm__inff())
    return adasm__softmax_three_pass(k, z, n, p); /* special values */
  if (!(acc.zmax < ADASM__TP_CLAMP - 1.0f && acc.zmax > 128.0f - ADASM__TP_CLAMP))
    return adasm__softmax_online(k, z, n, p); /* outside the magic range */
  adasm__expp_fold((int)acc.e, &e);
  (void)k->expsum(z, n, &e, p, (float)(1.0 / acc.m));
  return ADASM_OK;
}

ADASM_DEF adasm_result adasm_softmax_ex(const adasm_kernels *k,
                                        adasm_softmax_algo algo,
                                        const float *z, size_t n, float *p) {
  if (n == 0) return ADASM_OK;
  if (!z || !p) return ADASM_ERR_NULL;
  k = adasm__k(k);
  switch (algo) {
  case ADASM_SOFTMAX_AUTO:
    /* In cache the exp is the cost: compute it once (three-pass). Out of
       cache bytes are the cost: read twice, write once (online). */
    return n <= ADASM__THREE_PASS_MAX ? adasm__softmax_three_pass(k, z, n, p)
                                      : adasm__softmax_online(k, z, n, p);
  case ADASM_SOFTMAX_THREE_PASS: return adasm__softmax_three_pass(k, z, n, p);
  case ADASM_SOFTMAX_TWO_PASS: return adasm__softmax_two_pass(k, z, n, p);
  case ADASM_SOFTMAX_ONLINE: return adasm__softmax_online(k, z, n, p);
  default: return ADASM_ERR_PARAM;
  }
}

ADASM_DEF adasm_result adasm_softmax(const adasm_kernels *k, const float *z,
                                     size_t n, float *p) {
  return adasm_softmax_ex(k, ADASM_SOFTMAX_AUTO, z, n, p);
}

ADASM_DEF adasm_result adasm_logsumexp(const adasm_kernels *k, const float *z,
                                       size_t n, double *lse) {
  adasm__online st;
  if (!lse) return ADASM_ERR_NULL;
  if (n == 0) { *lse = -(double)adasm__inff(); return ADASM_OK; }
  if (!z) return ADASM_ERR_NULL;
  adasm__online_run(adasm__k(k), &st, z, n);
  return adasm__online_result(&st, lse);
}

ADASM_DEF adasm_result adasm_log_softmax(const adasm_kernels *k,
                                         const float *z, size_t n,
                                         float *out) {
  adasm__online st;
  adasm_result r;
  double lse;
  float hi;
  if (n == 0) return ADASM_OK;
  if (!z || !out) return ADASM_ERR_NULL;
  k = adasm__k(k);
  adasm__online_run(k, &st, z, n);
  r = adasm__online_result(&st, &lse);
  if (adasm__special(r, z, n, out, 1, st.ninf != 0)) return r;
  /* log p = (z - hi) - lo with hi + lo = base + log S: z - hi is exact near
     the max, where accuracy matters, and log S is not lost to a huge base */
  hi = (float)st.e.base;
  k->sub2(z, n, hi, (float)((st.e.base - (double)hi) + log(st.s)), out);
  return ADASM_OK;
}

/* ---- top-k: a min-heap whose root is the worst kept entry --------------
   Values live in val[], indices in idx[]; "worse" = smaller value, or the
   same value at a larger index, so ties keep the lower index. */
typedef struct adasm__heap {
  size_t *idx;
  float *val;
  size_t size, cap;
} adasm__heap;

ADASM__PRIVATE int adasm__worse(const adasm__heap *h, size_t a, size_t b) {
  return h->val[a] < h->val[b] || (h->val[a] == h->val[b] && h->idx[a] > h->idx[b]);
}
ADASM__PRIVATE void adasm__heap_swap(adasm__heap *h, size_t a, size_t b) {
  size_t ti = h->idx[a];
  float tv = h->val[a];
  h->idx[a] = h->idx[b]; h->val[a] = h->val[b];
  h->idx[b] = ti; h->val[b] = tv;
}
ADASM__PRIVATE void adasm__heap_down(adasm__heap *h, size_t i, size_t size) {
  for (;;) {
    size_t l = 2 * i + 1, r = l + 1, w = i;
    if (l < size && adasm__worse(h, l, w)) w = l;
    if (r < size && adasm__worse(h, r, w)) w = r;
    if (w == i) return;
    adasm__heap_swap(h, i, w);
    i = w;
  }
}
ADASM__PRIVATE void adasm__heap_push(adasm__heap *h, float v, size_t i) {
  size_t c;
  if (h->size < h->cap) {
    c = h->size++;
    h->val[c] = v; h->idx[c] = i;
    while (c > 0 && adasm__worse(h, c, (c - 1) / 2)) {
      adasm__heap_swap(h, c, (c - 1) / 2);
      c = (c - 1) / 2;
    }
  } else if (v > h->val[0]) { /* scan order is by index: ties never win */
    h->val[0] = v; h->idx[0] = i;
    adasm__heap_down(h, 0, h->size);
  }
}
/* Feeds z[0..n) (global index base + i); bm = max of the block. */
ADASM__PRIVATE void adasm__heap_feed(adasm__heap *h, const float *z, size_t n,
                                     size_t base, float bm) {
  size_t i;
  if (h->size == h->cap && !(bm > h->val[0])) return; /* nothing enters */
  for (i = 0; i < n; ++i)
    if (!adasm__isnanf(z[i])) adasm__heap_push(h, z[i], base + i);
}
/* Sorts best-first in place (heap sort: move the worst to the back). */
ADASM__PRIVATE void adasm__heap_sort(adasm__heap *h) {
  size_t end;
  for (end = h->size; end > 1; --end) {
    adasm__heap_swap(h, 0, end - 1);
    adasm__heap_down(h, 0, end - 1);
  }
}
/* Turns the kept values into probabilities (in place in val[]). */
ADASM__PRIVATE void adasm__heap_probs(adasm__heap *h, const adasm__online *st) {
  size_t i;
  for (i = 0; i < h->size; ++i) {
    if (st->ninf)
      h->val[i] = h->val[i] == adasm__inff() ? (float)(1.0 / (double)st->ninf) : 0.0f;
    else
      h->val[i] = (float)fmin(1.0, exp(adasm__online_logp(st, h->val[i])));
  }
}

ADASM__PRIVATE adasm_result adasm__topk_finish(adasm__heap *h,
                                               const adasm__online *st,
                                               double *log_norm) {
  double lse;
  adasm_result r = adasm__online_result(st, &lse);
  adasm__heap_sort(h);
  if (r != ADASM_OK) { /* nothing stale: every slot is written */
    size_t i;
    adasm__fill(h->val, h->cap, adasm__nanf());
    for (i = h->size; i < h->cap; ++i) h->idx[i] = 0;
  } else {
    adasm__heap_probs(h, st);
  }
  if (log_norm) *log_norm = lse;
  return r;
}

ADASM_DEF adasm_result adasm_softmax_topk(const adasm_kernels *k,
                                          const float *z, size_t n,
                                          size_t topk, size_t *idx,
                                          float *prob, double *log_norm) {
  adasm__online st;
  adasm__heap h;
  size_t i;
  if (!z || !idx || !prob) return ADASM_ERR_NULL;
  if (topk == 0 || topk > n) return ADASM_ERR_SIZE;
  k = adasm__k(k);
  h.idx = idx; h.val = prob; h.size = 0; h.cap = topk;
  adasm__online_init(&st);
  for (i = 0; i < n; i += ADASM__BLOCK) {
    size_t len = n - i < ADASM__BLOCK ? n - i : ADASM__BLOCK;
    adasm__heap_feed(&h, z + i, len, i, adasm__online_feed(k, &st, z + i, len));
  }
  return adasm__topk_finish(&h, &st, log_norm);
}

#define ADASM__GEMV_ROWS 256 /* logits per block: 1 KiB on the stack */

ADASM_DEF adasm_result adasm_gemv_softmax_topk(
    const adasm_kernels *k, const float *A, size_t n, size_t d, size_t lda,
    const float *x, float beta, size_t topk, size_t *idx, float *prob,
    double *log_norm, float *logits) {
  adasm__online st;
  adasm__heap h;
  float buf[ADASM__GEMV_ROWS];
  size_t r, total;
  if (!A || !x || !idx || !prob) return ADASM_ERR_NULL;
  if (n == 0 || d == 0 || lda < d || topk == 0 || topk > n) return ADASM_ERR_SIZE;
  if (adasm__mul_overflows(n - 1, lda, &total) || total > (size_t)-1 - d ||
      adasm__mul_overflows(total + d, sizeof(float), &total))
    return ADASM_ERR_OVERFLOW;
  if (!adasm__isfinitef(beta) || !(beta > 0.0f)) return ADASM_ERR_PARAM;
  k = adasm__k(k);
  h.idx = idx; h.val = prob; h.size = 0; h.cap = topk;
  adasm__online_init(&st);
  for (r = 0; r < n; r += ADASM__GEMV_ROWS) {
    size_t len = n - r < ADASM__GEMV_ROWS ? n - r : ADASM__GEMV_ROWS;
    float *y = logits ? logits + r : buf;
    k->dot_rows(A + r * lda, len, d, lda, x, beta, y);
    adasm__heap_feed(&h, y, len, r, adasm__online_feed(k, &st, y, len));
  }
  return adasm__topk_finish(&h, &st, log_norm);
}

/* beta * (A_r . x) for 16-bit rows, in double over float products: the
   portable path (the per-ISA 16-bit kernels replace it where they exist). */
ADASM__PRIVATE void adasm__dot_rows_16(const uint16_t *A, size_t rows,
                                       size_t d, size_t ld, adasm_dtype dt,
                                       const float *x, float beta, float *y) {
  size_t r, j;
  for (r = 0; r < rows; ++r) {
    const uint16_t *a = A + r * ld;
    double s = 0.0;
    if (dt == ADASM_F16)
      for (j = 0; j < d; ++j) s += (double)(adasm_f16_to_f32(a[j]) * x[j]);
    else
      for (j = 0; j < d; ++j) s += (double)(adasm_bf16_to_f32(a[j]) * x[j]);
    y[r] = (float)((double)beta * (double)(float)s);
  }
}

/* y[r] = beta * (A_{r0 + r} . x) for r < len, any dtype: the path of
   adasm_exact_query (the kernel set's f32 rows, or 16-bit rows converted as
   they are read), shared by the fused sampler so both read A alike. */
ADASM__PRIVATE void adasm__matrix_rows(const adasm_kernels *k,
                                       const adasm_matrix *A, size_t r0,
                                       size_t len, const float *x, float beta,
                                       float *y) {
  if (A->dtype == ADASM_F32)
    k->dot_rows((const float *)A->data + r0 * A->ld, len, A->cols, A->ld, x,
                beta, y);
  else
    adasm__dot_rows_16((const uint16_t *)A->data + r0 * A->ld, len, A->cols,
                       A->ld, A->dtype, x, beta, y);
}

ADASM_DEF adasm_exact_params adasm_exact_params_default(void) {
  adasm_exact_params p;
  p.k = 1;
  p.beta = 1.0f;
  p.kern = NULL;
  return p;
}

ADASM_DEF adasm_result adasm_exact_query(const adasm_matrix *A,
                                         const adasm_exact_params *params,
                                         const float *x, void *work,
                                         size_t work_bytes,
                                         adasm_exact_result *out) {
  adasm__online st;
  adasm__heap h;
  float buf[ADASM__GEMV_ROWS];
  const adasm_kernels *k;
  size_t r, n, d, ld, total;
  (void)work;
  (void)work_bytes;
  if (!A || !params || !x || !out || !out->idx || !out->prob || !A->data)
    return ADASM_ERR_NULL;
  n = A->rows;
  d = A->cols;
  ld = A->ld;
  if (A->dtype != ADASM_F32 && A->dtype != ADASM_F16 && A->dtype != ADASM_BF16)
    return ADASM_ERR_PARAM;
  if (n == 0 || d == 0 || ld < d || params->k == 0 || params->k > n)
    return ADASM_ERR_SIZE;
  if (adasm__mul_overflows(n - 1, ld, &total) || total > (size_t)-1 - d ||
      adasm__mul_overflows(total + d, sizeof(float), &total) ||
      adasm__mul_overflows(n, d, &total))
    return ADASM_ERR_OVERFLOW;
  if (!adasm__isfinitef(params->beta) || !(params->beta > 0.0f))
    return ADASM_ERR_PARAM;
  k = adasm__k(params->kern);
  out->madds = (uint64_t)n * (uint64_t)d;
  if (A->dtype == ADASM_F32)
    return adasm_gemv_softmax_topk(k, (const float *)A->data, n, d, ld, x,
                                   params->beta, params->k, out->idx,
                                   out->prob, &out->log_norm, out->logits);
  h.idx = out->idx; h.val = out->prob; h.size = 0; h.cap = params->k;
  adasm__online_init(&st);
  for (r = 0; r < n; r += ADASM__GEMV_ROWS) {
    size_t len = n - r < ADASM__GEMV_ROWS ? n - r : ADASM__GEMV_ROWS;
    float *y = out->logits ? out->logits + r : buf;
    adasm__matrix_rows(k, A, r, len, x, params->beta, y);
    adasm__heap_feed(&h, y, len, r, adasm__online_feed(k, &st, y, len));
  }
  return adasm__topk_finish(&h, &st, &out->log_norm);
}

/* >>sample ----------------------------------------------------------------
   The sampler chain ("Sampling the next token" in the API): bias and
   penalties, temperature, top-k / top-p / min-p as prefixes of the token
   order (z descending, id ascending), the Gumbel-max draw with lazy keys,
   and the fused pass over A. One function per stage:
     adasm__sample_adjust   bias and penalties (into the workspace copy)
     adasm__sample_run      max, specials, greedy; then one of
       (no top-k, no top-p)  K = {z >= min-p threshold}: scanned by the race
       adasm__sample_topk     top-k by a bounded heap (k <= 1024)
       adasm__sample_gather   candidates above a bound, then selection
     adasm__sample_race_*   the draw over K (a list, or a scan of all n)
   Workspace pieces are 64-byte aligned (adasm__sample_layout). */
#define ADASM__SAMPLE_GREEDY_T 1e-30f  /* below: greedy (1/T overflows) */
#define ADASM__SAMPLE_DRAW_SHIFT 33    /* 2^33 generator steps per draw */
#define ADASM__SAMPLE_MAX_N 0xffffffffu /* n < 2^32: ids fit the keys */
#define ADASM__SAMPLE_MAX_DRAW ((uint64_t)1 << 31)
#define ADASM__SAMPLE_KHEAP 1024       /* top-k by heap up to this k */
#define ADASM__SAMPLE_LIST_DIV 64      /* a list race when |K| <= n / 64 */
#define ADASM__SAMPLE_LIST_MIN 32      /* ... or |K| <= 32 */
#define ADASM__SAMPLE_MARGIN 1e-4      /* relative margin of the lazy test */

/* ---- the order of tokens: one uint64 key, larger = earlier --------------
   The float's bits made monotone (-0 counts as +0), then the complement of
   the id, so equal logits order by id. NaN never gets a key. */
ADASM__PRIVATE uint32_t adasm__ford(float z) {
  uint32_t u = adasm__f2u(z);
  if (u == 0x80000000u) u = 0u;
  return (u & 0x80000000u) ? ~u : (u | 0x80000000u);
}
ADASM__PRIVATE float adasm__fordinv(uint32_t o) {
  return adasm__u2f((o & 0x80000000u) ? (o & 0x7fffffffu) : ~o);
}
ADASM__PRIVATE uint64_t adasm__skey(float z, size_t id) {
  return ((uint64_t)adasm__ford(z) << 32) | (uint64_t)(0xffffffffu - (uint32_t)id);
}
ADASM__PRIVATE size_t adasm__skey_id(uint64_t key) {
  return (size_t)(0xffffffffu - (uint32_t)(key & 0xffffffffu));
}
ADASM__PRIVATE float adasm__skey_z(uint64_t key) {
  return adasm__fordinv((uint32_t)(key >> 32));
}
/* The next float above a finite or -inf z (z < +inf). */
ADASM__PRIVATE float adasm__fnext(float z) {
  return adasm__fordinv(adasm__ford(z) + 1u);
}
/* The smallest float >= d, and the largest float <= d, clamped to
   [-FLT_MAX, FLT_MAX] (d not NaN). */
ADASM__PRIVATE float adasm__fceil(double d) {
  float f;
  if (!(d > -3.4028234663852886e38)) return -3.4028234663852886e38f;
  if (d > 3.4028234663852886e38) return 3.4028234663852886e38f;
  f = (float)d;
  return (double)f < d ? adasm__fnext(f) : f;
}
ADASM__PRIVATE float adasm__ffloor(double d) {
  float f;
  if (!(d > -3.4028234663852886e38)) return -3.4028234663852886e38f;
  if (d > 3.4028234663852886e38) return 3.4028234663852886e38f;
  f = (float)d;
  return (double)f > d ? adasm__fordinv(adasm__ford(f) - 1u) : f;
}

/* ---- sorting small arrays (history ids; candidates) --------------------- */
ADASM__PRIVATE void adasm__sort_ids(size_t *a, size_t n) { /* ascending */
  size_t end, i;
  for (i = n / 2; i-- > 0;) { /* heap sort, max-heap */
    size_t p = i;
    for (;;) {
      size_t c = 2 * p + 1, t;
      if (c >= n) break;
      if (c + 1 < n && a[c + 1] > a[c]) ++c;
      if (a[p] >= a[c]) break;
      t = a[p]; a[p] = a[c]; a[c] = t;
      p = c;
    }
  }
  for (end = n; end > 1; --end) {
    size_t p = 0, t = a[0];
    a[0] = a[end - 1];
    a[end - 1] = t;
    for (;;) {
      size_t c = 2 * p + 1;
      if (c >= end - 1) break;
      if (c + 1 < end - 1 && a[c + 1] > a[c]) ++c;
      if (a[p] >= a[c]) break;
      t = a[p]; a[p] = a[c]; a[c] = t;
      p = c;
    }
  }
}

/* Min-heap of keys (the root is the worst kept token) with weights moved
   along (w may be NULL). */
ADASM__PRIVATE void adasm__kswap(uint64_t *key, double *w, size_t a, size_t b) {
  const uint64_t t = key[a];
  key[a] = key[b];
  key[b] = t;
  if (w) {
    const double u = w[a];
    w[a] = w[b];
    w[b] = u;
  }
}
ADASM__PRIVATE void adasm__kdown(uint64_t *key, double *w, size_t p,
                                 size_t size) {
  for (;;) {
    size_t c = 2 * p + 1;
    if (c >= size) return;
    if (c + 1 < size && key[c + 1] < key[c]) ++c;
    if (key[p] <= key[c]) return;
    adasm__kswap(key, w, p, c);
    p = c;
  }
}
/* Sorts key (and w) descending: heap sort on the min-heap. */
ADASM__PRIVATE void adasm__ksort(uint64_t *key, double *w, size_t n) {
  size_t i, end;
  for (i = n / 2; i-- > 0;) adasm__kdown(key, w, i, n);
  for (end = n; end > 1; --end) {
    adasm__kswap(key, w, 0, end - 1);
    adasm__kdown(key, w, 0, end - 1);
  }
}

/* Rearranges key/w[0..c) so that the first L entries hold the L largest
   keys, for the smallest L whose weights (1 each if unit) add up to at
   least target, and returns L; if all c do not reach it, returns c.
   Quickselect with pseudo-random pivots and a branch-free partition, heap
   sort past a depth limit: O(c) expected, O(c log c) at worst. */
ADASM__PRIVATE size_t adasm__sample_select(uint64_t *key, double *w,
                                           size_t c, int unit,
                                           double target) {
  size_t lo = 0, hi = c, depth = 0, limit = 16, i, j;
  uint32_t rnd = 0x9e3779b9u ^ (uint32_t)c;
  double acc = 0.0;
  for (i = c; i > 1; i >>= 1) limit += 2;
  while (hi > lo) {
    double W = 0.0, wp;
    uint64_t pk;
    if (hi - lo <= 16 || depth++ > limit) { /* sort what is left, then scan */
      adasm__ksort(key + lo, w + lo, hi - lo);
      for (i = lo; i < hi; ++i) {
        acc += unit ? 1.0 : w[i];
        if (acc >= target) return i + 1;
      }
      return hi;
    }
    rnd = rnd * 1664525u + 1013904223u; /* Knuth's LCG: a pivot position */
    adasm__kswap(key, w, lo + (size_t)(((uint64_t)rnd * (hi - lo)) >> 32), hi - 1);
    pk = key[hi - 1];
    /* Lomuto without branches: swap always, advance i past larger keys */
    for (i = lo, j = lo; j < hi - 1; ++j) {
      const uint64_t kj = key[j];
      const double wj = w[j];
      const size_t gt = kj > pk;
      key[j] = key[i];
      w[j] = w[i];
      key[i] = kj;
      w[i] = wj;
      W += (double)gt * (unit ? 1.0 : wj);
      i += gt;
    }
    adasm__kswap(key, w, i, hi - 1); /* the pivot at i, the larger before */
    wp = unit ? 1.0 : w[i];
    if (acc + W >= target) {
      hi = i;
    } else if (acc + W + wp >= target) {
      return i + 1;
    } else {
      acc += W + wp;
      lo = i + 1;
    }
  }
  return lo;
}

/* ---- the random numbers of one draw ------------------------------------- */
typedef struct adasm__draw {
  uint64_t s0, inc; /* the state of output 0 of the draw, the increment */
} adasm__draw;

ADASM__PRIVATE void adasm__draw_init(adasm__draw *g, uint64_t seed,
                                     uint64_t stream, uint64_t draw) {
  adasm_pcg32 p;
  adasm_pcg32_seed(&p, seed, stream);
  g->inc = p.inc;
  g->s0 = adasm__pcg_jump(p.state, p.inc, draw << ADASM__SAMPLE_DRAW_SHIFT);
}
/* The state of output t. */
ADASM__PRIVATE uint64_t adasm__draw_state(const adasm__draw *g, uint64_t t) {
  return adasm__pcg_jump(g->s0, g->inc, t);
}
/* G_t from the states of outputs 2t and 2t + 1. */
ADASM__PRIVATE double adasm__gumbel_of(uint64_t s, uint64_t inc) {
  const uint32_t hi = adasm__pcg_out(s);
  const uint32_t lo = adasm__pcg_out(s * ADASM__PCG_MULT + inc);
  const double u = ((double)(((uint64_t)hi << 21) | (lo >> 11)) + 0.5) *
                   (1.0 / 9007199254740992.0);
  return -log(-log(u));
}

ADASM_DEF double adasm_sample_gumbel(uint64_t seed, uint64_t stream,
                                     uint64_t draw, size_t token) {
  adasm_pcg32 p;
  adasm_pcg32_seed(&p, seed, stream);
  return adasm__gumbel_of(
      adasm__pcg_jump(p.state, p.inc,
                      (draw << ADASM__SAMPLE_DRAW_SHIFT) + 2u * (uint64_t)token),
      p.inc);
}

/* ---- parameters and workspace ------------------------------------------- */
ADASM_DEF adasm_sampler_params adasm_sampler_params_default(void) {
  adasm_sampler_params p;
  memset(&p, 0, sizeof p);
  p.repetition_penalty = 1.0f;
  p.temperature = 1.0f;
  p.top_p = 1.0f;
  p.seed = 42u;
  return p;
}

ADASM__PRIVATE int adasm__sample_pen(const adasm_sampler_params *p) {
  return p->nhistory > 0 &&
         ((p->repetition_penalty != 0.0f && p->repetition_penalty != 1.0f) ||
          p->frequency_penalty != 0.0f || p->presence_penalty != 0.0f);
}
ADASM__PRIVATE int adasm__sample_adj(const adasm_sampler_params *p) {
  return p->nbias > 0 || adasm__sample_pen(p);
}

/* Argument checks shared by every entry point of the chain. */
ADASM__PRIVATE adasm_result adasm__sample_check(size_t n,
                                                const adasm_sampler_params *p) {
  size_t i;
  if (!p) return ADASM_ERR_NULL;
  if ((p->nbias && !p->bias) || (p->nhistory && !p->history))
    return ADASM_ERR_NULL;
  if (n == 0 || n > ADASM__SAMPLE_MAX_N) return ADASM_ERR_SIZE;
  if (!adasm__isfinitef(p->temperature) || p->temperature < 0.0f ||
      !(p->top_p >= 0.0f && p->top_p <= 1.0f) ||
      !(p->min_p >= 0.0f && p->min_p <= 1.0f) ||
      !adasm__isfinitef(p->repetition_penalty) ||
      p->repetition_penalty < 0.0f ||
      !adasm__isfinitef(p->frequency_penalty) ||
      !adasm__isfinitef(p->presence_penalty) ||
      p->draw >= ADASM__SAMPLE_MAX_DRAW)
    return ADASM_ERR_PARAM;
  for (i = 0; i < p->nbias; ++i)
    if (p->bias[i].token >= n || adasm__isnanf(p->bias[i].bias) ||
        p->bias[i].bias == adasm__inff())
      return ADASM_ERR_PARAM;
  for (i = 0; i < p->nhistory; ++i)
    if (p->history[i] >= n) return ADASM_ERR_PARAM;
  return ADASM_OK;
}

/* How the filters will run: 0 no candidates (greedy, or K a threshold
   set), 1 a heap of top_k, 2 candidates gathered above a bound. */
ADASM__PRIVATE int adasm__sample_mode(size_t n, const adasm_sampler_params *p) {
  const int hk = p->top_k > 0 && p->top_k < n;
  const int hp = p->top_p > 0.0f && p->top_p < 1.0f;
  if (p->temperature < ADASM__SAMPLE_GREEDY_T) return 0;
  if (hk && p->top_k <= ADASM__SAMPLE_KHEAP) return 1;
  return hk || hp ? 2 : 0;
}

typedef struct adasm__sws {
  float *zb;     /* n adjusted logits (the fused path's logits) or NULL */
  size_t *hist;  /* nhistory ids, sorted here, or NULL */
  uint64_t *key; /* cap candidate keys */
  double *w;     /* cap weights exp(s - s_max) */
  size_t cap;
  uint32_t *gid; /* gathered ids and their e (n + 16 each), or NULL */
  float *ge;
} adasm__sws;

/* Reserves count * size bytes at the next 64-byte boundary of *off. */
ADASM__PRIVATE int adasm__sample_piece(size_t *off, size_t count, size_t size,
                                       unsigned char *base, void **out) {
  size_t o = *off, b;
  if (o > (size_t)-1 - 63u) return 0;
  o = (o + 63u) & ~(size_t)63u;
  if (adasm__mul_overflows(count, size, &b) || b > (size_t)-1 - o) return 0;
  *out = (base && b) ? (void *)(base + o) : NULL;
  *off = b ? o + b : *off;
  return 1;
}

/* Lays the pieces out from base (NULL: sizes only); need_z reserves the n
   logits. *total = 0 when nothing is needed. 0 on overflow. */
ADASM__PRIVATE int adasm__sample_layout(size_t n, const adasm_sampler_params *p,
                                        int need_z, unsigned char *base,
                                        adasm__sws *w, size_t *total) {
  const int mode = adasm__sample_mode(n, p);
  void *q;
  size_t off = 0;
  memset(w, 0, sizeof *w);
  w->cap = mode == 1 ? p->top_k : mode == 2 ? n : 0;
  if (!adasm__sample_piece(&off, need_z ? n : 0, sizeof(float), base, &q)) return 0;
  w->zb = (float *)q;
  if (!adasm__sample_piece(&off, adasm__sample_pen(p) ? p->nhistory : 0,
                           sizeof(size_t), base, &q))
    return 0;
  w->hist = (size_t *)q;
  if (!adasm__sample_piece(&off, w->cap, sizeof(uint64_t), base, &q)) return 0;
  w->key = (uint64_t *)q;
  if (!adasm__sample_piece(&off, w->cap, sizeof(double), base, &q)) return 0;
  w->w = (double *)q;
  if (!adasm__sample_piece(&off, mode == 2 ? n + 16 : 0, sizeof(uint32_t), base, &q))
    return 0;
  w->gid = (uint32_t *)q;
  if (!adasm__sample_piece(&off, mode == 2 ? n + 16 : 0, sizeof(float), base, &q))
    return 0;
  w->ge = (float *)q;
  *total = off;
  return 1;
}

/* Bytes to ask for (0 if nothing is needed: a NULL workspace is fine). */
ADASM__PRIVATE adasm_result adasm__sample_bytes(size_t n,
                                                const adasm_sampler_params *p,
                                                int need_z, size_t *bytes) {
  adasm__sws w;
  size_t total;
  if (!adasm__sample_layout(n, p, need_z, NULL, &w, &total) ||
      total > (size_t)-1 - 64u)
    return ADASM_ERR_OVERFLOW;
  *bytes = total ? total + 64u : 0u; /* room to align the caller's pointer */
  return ADASM_OK;
}

/* Aligns the caller's workspace and lays it out; 0 if it is missing or
   smaller than adasm__sample_bytes says (whatever its alignment). */
ADASM__PRIVATE int adasm__sample_carve(size_t n, const adasm_sampler_params *p,
                                       int need_z, void *work,
                                       size_t work_bytes, adasm__sws *w) {
  unsigned char *base = (unsigned char *)work;
  size_t total, pad;
  if (!adasm__sample_layout(n, p, need_z, NULL, w, &total)) return 0;
  if (total == 0) return 1;
  if (!work || total > (size_t)-1 - 64u || work_bytes < total + 64u) return 0;
  pad = (64u - (size_t)((uintptr_t)base & 63u)) & 63u;
  return adasm__sample_layout(n, p, need_z, base + pad, w, &total);
}

ADASM_DEF adasm_result adasm_sample_logits_workspace_size(
    size_t n, const adasm_sampler_params *params, size_t *bytes) {
  adasm_result r;
  if (!bytes) return ADASM_ERR_NULL;
  r = adasm__sample_check(n, params);
  if (r != ADASM_OK) return r;
  return adasm__sample_bytes(n, params, adasm__sample_adj(params), bytes);
}

/* ---- 1, 2: bias and penalties -------------------------------------------- */
/* zb = z (unless the same array) with the bias and the penalties applied. */
ADASM__PRIVATE void adasm__sample_adjust(const adasm_sampler_params *p,
                                         const float *z, size_t n, float *zb,
                                         size_t *hist) {
  const float r = p->repetition_penalty;
  const int rep = r != 0.0f && r != 1.0f;
  size_t i, j;
  if (zb != z) memcpy(zb, z, n * sizeof(float));
  for (i = 0; i < p->nbias; ++i) {
    const size_t t = p->bias[i].token;
    const float b = p->bias[i].bias;
    zb[t] = b == -adasm__inff() ? b : zb[t] + b;
  }
  if (!adasm__sample_pen(p)) return;
  memcpy(hist, p->history, p->nhistory * sizeof(size_t));
  adasm__sort_ids(hist, p->nhistory);
  for (i = 0; i < p->nhistory; i = j) {
    const size_t t = hist[i];
    float v = zb[t];
    for (j = i + 1; j < p->nhistory && hist[j] == t; ++j) {
    }
    if (rep) v = v > 0.0f ? v / r : v * r;
    zb[t] = (float)((double)v - (double)(j - i) * (double)p->frequency_penalty -
                    (double)p->presence_penalty);
  }
}

/* ---- 3-5: the chain on adjusted logits ----------------------------------- */
typedef struct adasm__chain {
  const adasm_kernels *k;
  const float *z;
  size_t n;
  const adasm_sampler_params *p;
  adasm__sws w;
  float m, invt; /* the max logit; 1/T in float */
  double T, ms;  /* T; m / T */
  size_t top;    /* the first token of the order (lowest id of the max) */
  adasm__draw g;
  double b;      /* the best key so far, and its token */
  size_t best;
} adasm__chain;

/* The exact key s_t + G_t of the definition; keeps the best. */
ADASM__PRIVATE void adasm__sample_try(adasm__chain *c, size_t t) {
  const double key = (double)c->z[t] / c->T +
                     adasm__gumbel_of(adasm__draw_state(&c->g, 2u * (uint64_t)t),
                                      c->g.inc);
  if (key > c->b || (key == c->b && t < c->best)) {
    c->b = key;
    c->best = t;
  }
}

/* exp(s_t - b) bound factor: token t can only win if V_t < w_t * factor,
   with w_t = exp(s_t - s_max). The margin covers the float exp and its
   float argument (well under 1e-4 for the 87 units that matter), V's
   rounding and the rounding of the double keys (relative 2^-53 of their
   size, counted 16 times). */
ADASM__PRIVATE double adasm__sample_factor(const adasm__chain *c) {
  const double mg = ADASM__SAMPLE_MARGIN +
                    16.0 * (fabs(c->ms) + fabs(c->b) + 64.0) / 9007199254740992.0;
  return exp(c->ms - c->b + mg);
}

/* The draw over an explicit K (keys and weights of its members). */
ADASM__PRIVATE void adasm__sample_race_list(adasm__chain *c,
                                            const uint64_t *key,
                                            const double *w, size_t len) {
  double f = adasm__sample_factor(c);
  size_t i;
  for (i = 0; i < len; ++i) {
    const size_t t = adasm__skey_id(key[i]);
    double v;
    if (t == c->top) continue; /* its key is already in */
    v = (double)(0xffffffffu - adasm__pcg_out(adasm__draw_state(&c->g, 2u * (uint64_t)t))) *
        (1.0 / 4294967296.0);
    if (v < w[i] * f) {
      adasm__sample_try(c, t);
      f = adasm__sample_factor(c);
    }
  }
}

/* The draw over K = {t: z_t >= v, and key_t >= kmin} by the SIMD scan of
   all n (kmin = 0: the first test alone); r returns the scan's sums. */
ADASM__PRIVATE void adasm__sample_race_scan(adasm__chain *c, float v,
                                            uint64_t kmin, adasm__race *r) {
  size_t j0 = 0;
  r->v = v;
  r->m = c->m;
  r->invt = c->invt;
  r->inc = c->g.inc;
  r->state = c->g.s0;
  r->sum_all = r->sum_v = 0.0;
  r->count_v = 0;
  for (;;) {
    const double f = adasm__sample_factor(c);
    size_t j;
    /* 1/f rounded down (more survivors, never fewer); 0 past 1e30, where
       every token with e > 0 survives */
    r->cinv = f > 1e30 ? 0.0f : adasm__ffloor(1.0 / f);
    j = j0 + c->k->race(c->z + j0, c->n - j0, r);
    if (j >= c->n) break;
    if (j != c->top && adasm__skey(c->z[j], j) >= kmin) adasm__sample_try(c, j);
    j0 = j + 1;
    r->state = adasm__draw_state(&c->g, 2u * (uint64_t)j0);
  }
}

/* Starts the draw: the first token of the order is always in K. */
ADASM__PRIVATE void adasm__sample_race_init(adasm__chain *c) {
  c->b = -adasm__inff();
  c->best = c->top;
  adasm__sample_try(c, c->top);
}

/* The weight exp(s_t - s_max) as the kernels compute it. */
ADASM__PRIVATE double adasm__sample_w(const adasm__chain *c, float z) {
  return adasm__texp_scalar(z, c->m, c->invt);
}

/* Finishes a draw over an explicit list of len members: p and kept; a race
   by list or by scan, whichever reads less. */
ADASM__PRIVATE void adasm__sample_finish_list(adasm__chain *c, size_t len,
                                              double S_all_known,
                                              double *S_all,
                                              adasm_sampler_result *out) {
  double SK = 0.0;
  uint64_t kmin = ~(uint64_t)0;
  size_t i;
  for (i = 0; i < len; ++i) {
    SK += c->w.w[i];
    if (c->w.key[i] < kmin) kmin = c->w.key[i];
  }
  adasm__sample_race_init(c);
  if (len <= c->n / ADASM__SAMPLE_LIST_DIV || len <= ADASM__SAMPLE_LIST_MIN) {
    adasm__sample_race_list(c, c->w.key, c->w.w, len);
    *S_all = S_all_known >= 0.0
                 ? S_all_known
                 : c->k->texpsum(c->z, c->n, c->m, c->invt, -adasm__inff());
  } else {
    adasm__race r;
    adasm__sample_race_scan(c, adasm__skey_z(kmin), kmin, &r);
    *S_all = r.sum_all;
  }
  out->token = c->best;
  out->kept = len;
  out->p = (float)fmin(1.0, adasm__sample_w(c, c->z[c->best]) / SK);
}

/* top-k by a min-heap of keys fed by the SIMD scan for entries above its
   root; then top-p on the sorted heap and min-p. */
ADASM__PRIVATE void adasm__sample_topk(adasm__chain *c, float thr_min,
                                       adasm_sampler_result *out,
                                       double *S_all) {
  const adasm_sampler_params *p = c->p;
  const int hp = p->top_p > 0.0f && p->top_p < 1.0f;
  const size_t k = p->top_k;
  uint64_t *key = c->w.key;
  double *w = c->w.w;
  float t = hp ? -3.4028234663852886e38f : thr_min; /* K lies above t */
  size_t size = 0, i = 0, len;
  while (i < c->n) {
    const size_t j = i + c->k->find_ge(c->z + i, c->n - i, t);
    uint64_t kj;
    if (j >= c->n) break;
    kj = adasm__skey(c->z[j], j);
    if (size < k) {
      size_t q = size++;
      key[q] = kj;
      while (q > 0 && key[(q - 1) / 2] > key[q]) {
        adasm__kswap(key, NULL, q, (q - 1) / 2);
        q = (q - 1) / 2;
      }
    } else if (kj > key[0]) {
      key[0] = kj;
      adasm__kdown(key, NULL, 0, size);
    }
    /* later ids with the root's value are worse than the root */
    if (size == k) t = adasm__fnext(adasm__skey_z(key[0]));
    i = j + 1;
  }
  for (i = 0; i < size; ++i) w[i] = adasm__sample_w(c, adasm__skey_z(key[i]));
  adasm__ksort(key, w, size);
  len = size;
  if (hp) {
    double Sk = 0.0, acc = 0.0, target;
    for (i = 0; i < size; ++i) Sk += w[i];
    target = (double)p->top_p * Sk;
    for (i = 0; i < size; ++i) {
      acc += w[i];
      if (acc >= target) break;
    }
    len = i < size ? i + 1 : size;
    while (len > 1 && adasm__skey_z(key[len - 1]) < thr_min) --len;
  }
  adasm__sample_finish_list(c, len, -1.0, S_all, out);
}

#define ADASM__SAMPLE_NBIN 256 /* bins of the candidates' refinement */

ADASM__PRIVATE size_t adasm__sample_bin(float m, float z, float scale) {
  const float v = (m - z) * scale;
  return v < (float)(ADASM__SAMPLE_NBIN - 1) ? (size_t)v : ADASM__SAMPLE_NBIN - 1;
}

/* The shortest prefix of the candidates' order (z descending, id
   ascending) whose weights (1 each if unit, else e) reach target, as the
   smallest key in it (all of them if they do not reach it). One pass bins
   the candidates by z into 256 bins of equal width below the max (the bin
   is a monotone function of z, so bins are prefixes too); the bin where
   the running sum reaches the target is resolved by a quickselect on its
   members. O(cnt) expected. */
ADASM__PRIVATE uint64_t adasm__sample_refine(adasm__chain *c, size_t cnt,
                                             float lo, int unit,
                                             double target) {
  double bw[ADASM__SAMPLE_NBIN], acc = 0.0;
  const uint32_t *gid = c->w.gid;
  const float *ge = c->w.ge;
  uint64_t *key = c->w.key, kmin = ~(uint64_t)0;
  double *w = c->w.w;
  float scale = 0.0f;
  size_t i, b, B, q = 0, len;
  if (cnt <= 64) { /* few: select among them all */
    for (i = 0; i < cnt; ++i) {
      key[i] = adasm__skey(c->z[gid[i]], gid[i]);
      w[i] = (double)ge[i];
    }
    len = adasm__sample_select(key, w, cnt, unit, target);
    for (i = 0; i < len; ++i)
      if (key[i] < kmin) kmin = key[i];
    return kmin;
  }
  for (b = 0; b < ADASM__SAMPLE_NBIN; ++b) bw[b] = 0.0;
  if (!(lo > -3.4028234663852886e38f)) /* no bound given: the smallest */
    for (lo = c->m, i = 0; i < cnt; ++i)
      if (c->z[gid[i]] < lo) lo = c->z[gid[i]];
  if ((double)c->m - (double)lo > 0.0) {
    const double sd = (ADASM__SAMPLE_NBIN - 1) / ((double)c->m - (double)lo);
    scale = sd < 3.4e38 ? (float)sd : 3.4e38f;
  }
  /* (m - z) * scale rounded down: monotone in z, so bins are prefixes;
     m - z may overflow to +inf (the last bin), and is never NaN */
#define ADASM__SAMPLE_BIN(zz) adasm__sample_bin(c->m, (zz), scale)
  for (i = 0; i < cnt; ++i)
    bw[ADASM__SAMPLE_BIN(c->z[gid[i]])] += unit ? 1.0 : (double)ge[i];
  for (B = 0; B < ADASM__SAMPLE_NBIN; ++B) {
    if (acc + bw[B] >= target) break;
    acc += bw[B];
  }
  for (i = 0; i < cnt; ++i) { /* bins before B: in; bin B: to resolve */
    const size_t t = gid[i];
    const size_t bi = ADASM__SAMPLE_BIN(c->z[t]);
    if (bi < B) {
      const uint64_t kt = adasm__skey(c->z[t], t);
      if (kt < kmin) kmin = kt;
    } else if (bi == B) {
      key[q] = adasm__skey(c->z[t], t);
      w[q++] = (double)ge[i];
    }
  }
#undef ADASM__SAMPLE_BIN
  if (B == ADASM__SAMPLE_NBIN) return kmin; /* not reached: all of them */
  len = adasm__sample_select(key, w, q, unit, target - acc);
  for (i = 0; i < len; ++i)
    if (key[i] < kmin) kmin = key[i];
  return kmin;
}

/* Keeps the candidates with key >= kmin (in order), without branches;
   returns how many. */
ADASM__PRIVATE size_t adasm__sample_keep(adasm__chain *c, size_t cnt,
                                         uint64_t kmin) {
  size_t i, q = 0;
  for (i = 0; i < cnt; ++i) {
    const uint32_t t = c->w.gid[i];
    c->w.gid[q] = t;
    c->w.ge[q] = c->w.ge[i];
    q += adasm__skey(c->z[t], t) >= kmin;
  }
  return q;
}
/* The draw over K = {t in the candidates: key_t >= kmin} (ids ascending,
   weights e): the generator jumps from one member to the next. */
ADASM__PRIVATE void adasm__sample_race_ids(adasm__chain *c, size_t cnt,
                                           uint64_t kmin) {
  double f = adasm__sample_factor(c);
  uint64_t st = c->g.s0, at = 0; /* st: the state of output `at` */
  size_t i;
  for (i = 0; i < cnt; ++i) {
    const size_t t = c->w.gid[i];
    double v;
    if (t == c->top || adasm__skey(c->z[t], t) < kmin) continue;
    st = adasm__pcg_jump(st, c->g.inc, 2u * (uint64_t)t - at);
    at = 2u * (uint64_t)t;
    v = (double)(0xffffffffu - adasm__pcg_out(st)) * (1.0 / 4294967296.0);
    if (v < (double)c->w.ge[i] * f) {
      adasm__sample_try(c, t);
      f = adasm__sample_factor(c);
    }
  }
}

/* Candidates gathered above a bound, then selection: top-k for k > 1024
   and top-p without top-k. For top-p, one pass sums S and the mass above
   four levels (e >= 2^-3, 2^-6, 2^-9, 2^-12) and gathers the tokens above
   the lowest; those below the highest level whose mass reaches P S cannot
   be in the nucleus. Only if no level does (a flat distribution), a second
   pass gathers down to p_t >= (1 - P) / n: the tokens below hold less
   than 1 - P together. Every filter is then a lower bound on the key: K =
   {key >= the largest bound}. */
ADASM__PRIVATE void adasm__sample_gather(adasm__chain *c, float thr_min,
                                         adasm_sampler_result *out,
                                         double *S_all) {
  const adasm_sampler_params *p = c->p;
  const int hk = p->top_k > 0 && p->top_k < c->n;
  const int hp = p->top_p > 0.0f && p->top_p < 1.0f;
  /* min-p as a key bound: z >= thr_min <=> key >= ford(thr_min) 2^32 */
  uint64_t kmin = (uint64_t)adasm__ford(thr_min) << 32, kb;
  double S, SK = 0.0, sum[5];
  float t[4];
  size_t cnt, i, l;
  if (hk) {
    t[0] = t[1] = t[2] = t[3] = hp ? -3.4028234663852886e38f : thr_min;
    cnt = c->k->sumgather(c->z, c->n, c->m, c->invt, t, sum, c->w.gid, c->w.ge);
    S = sum[4];
    if (cnt > p->top_k) {
      kb = adasm__sample_refine(c, cnt, t[3], 1, (double)p->top_k);
      if (kb > kmin) kmin = kb;
      cnt = adasm__sample_keep(c, cnt, kb);
    }
    if (hp) {
      double Sk = 0.0;
      for (i = 0; i < cnt; ++i) Sk += (double)c->w.ge[i];
      kb = adasm__sample_refine(c, cnt, t[3], 0, (double)p->top_p * Sk);
      if (kb > kmin) kmin = kb;
    }
  } else {
    const double target = (double)p->top_p;
    for (l = 0; l < 4; ++l) {
      t[l] = adasm__fceil((double)c->m - c->T * (double)(3 * l + 3) * ADASM__LN2);
      if (t[l] < thr_min) t[l] = thr_min;
    }
    cnt = c->k->sumgather(c->z, c->n, c->m, c->invt, t, sum, c->w.gid, c->w.ge);
    S = sum[4];
    for (l = 0; l < 4; ++l) /* the float sums err below 1e-5 */
      if (sum[l] >= target * S * (1.0 + 1e-5)) break;
    if (l < 3) { /* keep the tokens above that level */
      cnt = adasm__sample_keep(c, cnt, (uint64_t)adasm__ford(t[l]) << 32);
    } else if (l == 4 && t[3] > thr_min) {
      /* loosened for the float sum S (relative error below 1e-5) */
      const double slack = (1.0 - target) * 0.999 - 1e-4;
      float g = slack > 0.0 ? adasm__ffloor((double)c->m +
                                            c->T * log(slack * S / (double)c->n))
                            : -3.4028234663852886e38f;
      if (g < thr_min) g = thr_min;
      if (g < t[3]) {
        t[0] = t[1] = t[2] = t[3] = g;
        cnt = c->k->sumgather(c->z, c->n, c->m, c->invt, t, sum, c->w.gid,
                              c->w.ge);
      }
    }
    kb = adasm__sample_refine(c, cnt, l < 4 ? t[l] : t[3], 0, target * S);
    if (kb > kmin) kmin = kb;
  }
  cnt = adasm__sample_keep(c, cnt, kmin);
  for (i = 0; i < cnt; ++i) SK += (double)c->w.ge[i];
  adasm__sample_race_init(c);
  if (cnt <= c->n / ADASM__SAMPLE_LIST_DIV || cnt <= ADASM__SAMPLE_LIST_MIN) {
    adasm__sample_race_ids(c, cnt, kmin);
    *S_all = S;
  } else {
    adasm__race r;
    adasm__sample_race_scan(c, adasm__skey_z(kmin), kmin, &r);
    *S_all = r.sum_all;
  }
  out->token = c->best;
  out->kept = cnt;
  out->p = (float)fmin(1.0, adasm__sample_w(c, c->z[c->best]) / SK);
}

/* Logits with +inf: p is uniform over them; top-k and top-p keep the first
   ones by id (top-p: ceil(P c) of c), min-p keeps them all. */
ADASM__PRIVATE void adasm__sample_inf(adasm__chain *c,
                                      adasm_sampler_result *out) {
  const adasm_sampler_params *p = c->p;
  size_t cnt = 0, len, i, taken = 0;
  for (i = 0; i < c->n; ++i) cnt += c->z[i] == adasm__inff();
  len = cnt;
  if (p->top_k > 0 && p->top_k < len) len = p->top_k;
  if (p->top_p > 0.0f && p->top_p < 1.0f) {
    const double q = ceil((double)p->top_p * (double)len);
    if (q < (double)len) len = q < 1.0 ? 1 : (size_t)q;
  }
  c->b = -adasm__inff();
  c->best = c->top;
  c->T = 1.0; /* the keys are G_t: s_t = 0 for every kept token */
  for (i = c->top; i < c->n && taken < len; ++i)
    if (c->z[i] == adasm__inff()) {
      const double key = adasm__gumbel_of(adasm__draw_state(&c->g, 2u * (uint64_t)i),
                                          c->g.inc);
      if (key > c->b) {
        c->b = key;
        c->best = i;
      }
      ++taken;
    }
  out->token = c->best;
  out->p = (float)(1.0 / (double)len);
  out->kept = len;
  out->log_norm = (double)adasm__inff();
}

/* Data errors: nothing stale is returned. */
ADASM__PRIVATE adasm_result adasm__sample_fail(adasm_result r,
                                               adasm_sampler_result *out) {
  out->token = 0;
  out->p = adasm__nanf();
  out->kept = 0;
  out->log_norm = r == ADASM_ERR_NO_FINITE_MAX ? -(double)adasm__inff()
                                               : (double)adasm__nanf();
  return r;
}

/* The chain on the adjusted logits z (n of them; parameters checked). */
ADASM__PRIVATE adasm_result adasm__sample_run(const adasm_kernels *k,
                                              const float *z, size_t n,
                                              const adasm_sampler_params *p,
                                              const adasm__sws *w,
                                              adasm_sampler_result *out) {
  adasm__chain c;
  double S_all = 0.0;
  float thr_min;
  int nan = 0;
  memset(&c, 0, sizeof c);
  c.k = k;
  c.z = z;
  c.n = n;
  c.p = p;
  c.w = *w;
  c.m = k->max(z, n, &nan);
  if (nan) return adasm__sample_fail(ADASM_ERR_NAN, out);
  if (c.m == -adasm__inff()) return adasm__sample_fail(ADASM_ERR_NO_FINITE_MAX, out);
  c.top = k->find_ge(z, n, c.m);
  if (p->temperature < ADASM__SAMPLE_GREEDY_T) { /* greedy: no draw */
    out->token = c.top;
    out->p = 1.0f;
    out->kept = 1;
    out->log_norm = c.m == adasm__inff()
                        ? (double)c.m
                        : (double)c.m + log(k->texpsum(z, n, c.m, 1.0f, -adasm__inff()));
    return ADASM_OK;
  }
  adasm__draw_init(&c.g, p->seed, p->stream, p->draw);
  if (c.m == adasm__inff()) {
    adasm__sample_inf(&c, out);
    return ADASM_OK;
  }
  c.T = (double)p->temperature;
  c.invt = 1.0f / p->temperature;
  c.ms = (double)c.m / c.T;
  /* min-p: z >= max + T log(min_p), as the smallest float that passes */
  thr_min = p->min_p > 0.0f
                ? adasm__fceil((double)c.m + c.T * log((double)p->min_p))
                : -3.4028234663852886e38f; /* -inf logits are never kept */
  switch (adasm__sample_mode(n, p)) {
  case 1: adasm__sample_topk(&c, thr_min, out, &S_all); break;
  case 2: adasm__sample_gather(&c, thr_min, out, &S_all); break;
  default: { /* K = {z >= thr_min}: the scan also sums what p needs */
    adasm__race r;
    adasm__sample_race_init(&c);
    adasm__sample_race_scan(&c, thr_min, 0u, &r);
    S_all = r.sum_all;
    out->token = c.best;
    out->kept = (size_t)r.count_v;
    out->p = (float)fmin(1.0, adasm__sample_w(&c, z[c.best]) / r.sum_v);
  }
  }
  out->log_norm = c.ms + log(S_all);
  return ADASM_OK;
}

ADASM_DEF adasm_result adasm_sample_logits(const float *z, size_t n,
                                           const adasm_sampler_params *params,
                                           void *work, size_t work_bytes,
                                           adasm_sampler_result *out) {
  adasm__sws w;
  adasm_result r;
  if (!z || !out) return ADASM_ERR_NULL;
  r = adasm__sample_check(n, params);
  if (r != ADASM_OK) return r;
  if (!adasm__sample_carve(n, params, adasm__sample_adj(params), work,
                           work_bytes, &w))
    return ADASM_ERR_WORKSPACE;
  out->madds = 0;
  if (adasm__sample_adj(params)) {
    adasm__sample_adjust(params, z, n, w.zb, w.hist);
    z = w.zb;
  }
  return adasm__sample_run(adasm__k(params->kern), z, n, params, &w, out);
}

/* ---- the fused pass over A ------------------------------------------------ */
ADASM__PRIVATE adasm_result adasm__exact_sample_check(
    const adasm_matrix *A, const adasm_sampler_params *p) {
  size_t total;
  if (!A || !p || !A->data) return ADASM_ERR_NULL;
  if (A->dtype != ADASM_F32 && A->dtype != ADASM_F16 && A->dtype != ADASM_BF16)
    return ADASM_ERR_PARAM;
  if (A->rows == 0 || A->cols == 0 || A->ld < A->cols) return ADASM_ERR_SIZE;
  if (adasm__mul_overflows(A->rows - 1, A->ld, &total) ||
      total > (size_t)-1 - A->cols ||
      adasm__mul_overflows(total + A->cols, sizeof(float), &total) ||
      adasm__mul_overflows(A->rows, A->cols, &total))
    return ADASM_ERR_OVERFLOW;
  return adasm__sample_check(A->rows, p);
}

ADASM_DEF adasm_result adasm_exact_sample_workspace_size(
    const adasm_matrix *A, const adasm_sampler_params *params, size_t *bytes) {
  adasm_result r;
  if (!bytes) return ADASM_ERR_NULL;
  r = adasm__exact_sample_check(A, params);
  if (r != ADASM_OK) return r;
  return adasm__sample_bytes(A->rows, params, 1, bytes);
}

ADASM_DEF adasm_result adasm_exact_sample(const adasm_matrix *A,
                                          const adasm_sampler_params *params,
                                          const float *x, void *work,
                                          size_t work_bytes,
                                          adasm_sampler_result *out) {
  const adasm_kernels *k;
  adasm__sws w;
  adasm_result r;
  size_t n, i;
  if (!x || !out) return ADASM_ERR_NULL;
  r = adasm__exact_sample_check(A, params);
  if (r != ADASM_OK) return r;
  n = A->rows;
  if (!adasm__sample_carve(n, params, 1, work, work_bytes, &w))
    return ADASM_ERR_WORKSPACE;
  k = adasm__k(params->kern);
  for (i = 0; i < n; i += ADASM__GEMV_ROWS)
    adasm__matrix_rows(k, A, i, n - i < ADASM__GEMV_ROWS ? n - i : ADASM__GEMV_ROWS,
                       x, 1.0f, w.zb + i);
  if (adasm__sample_adj(params)) adasm__sample_adjust(params, w.zb, n, w.zb, w.hist);
  r = adasm__sample_run(k, w.zb, n, params, &w, out);
  out->madds = (uint64_t)n * (uint64_t)A->cols;
  return r;
}

/* ---- the former sampler, as a thin wrapper ------------------------------ */
ADASM_DEF adasm_sample_params adasm_sample_params_default(void) {
  adasm_sample_params p;
  p.temperature = 1.0f;
  p.top_k = 0;
  p.top_p = 1.0f;
  return p;
}

ADASM__PRIVATE adasm_sampler_params adasm__sample_compat(
    const adasm_kernels *k, const adasm_sample_params *sp) {
  adasm_sampler_params p = adasm_sampler_params_default();
  p.temperature = sp->temperature;
  p.top_k = sp->top_k;
  p.top_p = sp->top_p == 0.0f ? 1.0f : sp->top_p;
  p.kern = k;
  return p;
}

ADASM_DEF adasm_result adasm_sample_workspace_size(
    size_t n, const adasm_sample_params *params, size_t *bytes) {
  adasm_sampler_params p;
  if (!params || !bytes) return ADASM_ERR_NULL;
  p = adasm__sample_compat(NULL, params);
  return adasm_sample_logits_workspace_size(n, &p, bytes);
}

ADASM_DEF adasm_result adasm_sample(const adasm_kernels *k, const float *z,
                                    size_t n,
                                    const adasm_sample_params *params,
                                    adasm_pcg32 *rng, void *work,
                                    size_t work_bytes, size_t *out) {
  adasm_sampler_params p;
  adasm_sampler_result res;
  adasm__sws w;
  adasm_result r;
  uint32_t hi;
  if (!z || !params || !rng || !out) return ADASM_ERR_NULL;
  p = adasm__sample_compat(k, params);
  r = adasm__sample_check(n, &p);
  if (r != ADASM_OK) return r;
  if (!adasm__sample_carve(n, &p, 0, work, work_bytes, &w))
    return ADASM_ERR_WORKSPACE;
  hi = adasm_pcg32_next(rng);
  p.seed = ((uint64_t)hi << 32) | adasm_pcg32_next(rng);
  r = adasm__sample_run(adasm__k(k), z, n, &p, &w, &res);
  if (r == ADASM_OK) *out = res.token;
  return r;
}


/* >>ada -------------------------------------------------------------------
   AdaSoftmax (Algorithm 1): burn-in, round-based elimination against the
   k-th boundary, exact logits of the returned arms, two-stage normalizer;
   calibration of the two fudge factors. Constants and their sources are in
   the comments next to them. */
#define ADASM__ADA_GRID0 16       /* first column count of pull_to_var */
#define ADASM__ADA_CI_INIT 0.25   /* elimination starts at 1/4 of sigma^2 */
#define ADASM__ADA_CI_DECAY 0.5   /* ... and halves v every round */
#define ADASM__ADA_ALIGN 64
#define ADASM__ADA_STREAM 0xada50f7ull /* PCG stream of the race keys */
#define ADASM__ADA_PHI 0x9e3779b97f4a7c15ull /* calibration seed stride */
#define ADASM__ADA_CAL_ALPHA 0.05 /* calibration: test level per candidate */
/* Rows per tile of the dense SIMD kernel: its float mu/var accumulators
   (8 KB) stay in L1, and the tile's column segments (4 KB runs of the
   column-major copy) stay in L2 while the grid steps recompute the tile. */
#define ADASM__ADA_TILE 1024
#define ADASM__ADA_MAXLV 128 /* grid levels: 16 * 1.5^127 > 2^64 */
#if defined(__GNUC__) || defined(__clang__)
#define ADASM__ADA_PREFETCH(p) __builtin_prefetch(p)
#else
#define ADASM__ADA_PREFETCH(p) ((void)0)
#endif

/* Stage timers for tests/test_ada.c --perf and bench/bench_heads.c (its
   bench_stages build) only: defining ADASM_ADA_PROFILE
   before the implementation adds process-wide (not thread-safe) counters of
   CPU seconds per stage: 0 setup + order, 1 burn-in, 2 elimination, 3 best
   arms, 4 normalizer + output. On x86-64 with GCC or clang it also counts
   time-stamp-counter cycles in the pull kernels: 0 tile kernel, 1 whole-row
   dots, 2 gathers, 3 whole queries (read them as shares of 3; elsewhere
   they stay 0). Off by default: no global state. */
#ifdef ADASM_ADA_PROFILE
#include <time.h>
#if defined(ADASM__X86_64) && (defined(__GNUC__) || defined(__clang__))
#include <x86intrin.h>
#define ADASM__ADA_CYC() ((double)__rdtsc())
#else
#define ADASM__ADA_CYC() 0.0
#endif
static double adasm__ada_prof[5];
static double adasm__ada_prof_rows[2]; /* rows path: arm pulls, arm*g */
static double adasm__ada_prof_tile[2]; /* tile path: calls, span*g */
static double adasm__ada_prof_cyc[4];  /* tile, whole rows, gathers, query */
#define ADASM__ADA_PROF_ADD(arr, a, b) ((arr)[0] += (a), (arr)[1] += (b))
#define ADASM__ADA_CYC_ADD(slot, c0)                                           \
  (adasm__ada_prof_cyc[slot] += ADASM__ADA_CYC() - (c0))
static clock_t adasm__ada_prof_t0;
#define ADASM__ADA_PROF_START() (adasm__ada_prof_t0 = clock())
#define ADASM__ADA_PROF(stage)                                                 \
  do {                                                                         \
    const clock_t t1_ = clock();                                               \
    adasm__ada_prof[stage] +=                                                  \
        (double)(t1_ - adasm__ada_prof_t0) / (double)CLOCKS_PER_SEC;           \
    adasm__ada_prof_t0 = t1_;                                                  \
  } while (0)
#else
#define ADASM__ADA_PROF_START() ((void)0)
#define ADASM__ADA_PROF_ADD(arr, a, b) ((void)0)
#define ADASM__ADA_PROF(stage) ((void)0)
#define ADASM__ADA_CYC() 0.0
#define ADASM__ADA_CYC_ADD(slot, c0) ((void)(c0))
#endif

/* ---- workspace layout ---------------------------------------------------- */
typedef struct adasm__ada_ws {
  double *lw;    /* [d] weight w_j = |x_j| a_j, by column */
  double *key;   /* [d] race key w_j / E_j (E_j ~ Exp(1)), by column */
  double *cw;    /* [d] HT weight x_j / pi_j, by sample position */
  double *ew;    /* [d] beta^2 x_j^2 (1 - pi_j) / pi_j^2, by sample position */
  size_t *perm;  /* [d] sample order: columns by key, descending */
  size_t *nzl;   /* [d] non-zero columns, ascending (exact rows) */
  double *mu;    /* [n] estimate of beta * A_i x */
  double *var;   /* [n] variance estimate of mu (inf before any pull) */
  double *lo;    /* [n] lower bounds (elimination) / V1 (normalizer) */
  double *hi;    /* [n] upper bounds (elimination) / log alpha (normalizer) */
  double *heap;  /* [n + 1] k-th largest selection */
  size_t *m;     /* [n] columns used by the arm (nnz = exact) */
  size_t *set;   /* [n] arm list of the current stage */
  size_t *pset;  /* [2 TILE] pull_to_var: a tile's active arms, then the
                    ones pulled in one step */
  size_t *res;   /* [k] returned arms */
  float *fcw;    /* [3d + 64] float x_j / pi_j per grid level (fast path) */
  float *few;    /* [3d + 64] float beta^2 x_j^2 (1 - pi_j) / pi_j^2 */
  size_t *fidx;  /* [3d + 64] columns of each level, ascending */
  size_t *rank;  /* [d] position of column j in perm */
  uint64_t *sortk; /* [2d] radix-sort keys and their scratch (column order) */
  float *tmu;    /* [ADASM__ADA_TILE] tile accumulators of the SIMD kernel */
  float *tvar;   /* [ADASM__ADA_TILE] */
} adasm__ada_ws;

/* Reserves count*elem bytes, rounded up to 64, at *off. 0 on overflow. */
ADASM__PRIVATE int adasm__ada_take(size_t *off, size_t count, size_t elem,
                                   size_t *at) {
  size_t bytes;
  if (adasm__mul_overflows(count, elem, &bytes)) return 0;
  if (bytes > (size_t)-1 - (ADASM__ADA_ALIGN - 1)) return 0;
  bytes = (bytes + (ADASM__ADA_ALIGN - 1)) & ~(size_t)(ADASM__ADA_ALIGN - 1);
  if (*off > (size_t)-1 - bytes) return 0;
  *at = *off;
  *off += bytes;
  return 1;
}

#define ADASM__ADA_CARVE(field, type, count)                                   \
  do {                                                                         \
    size_t at_;                                                                \
    if (!adasm__ada_take(&off, (count), sizeof(type), &at_)) return 0;         \
    if (base) w->field = (type *)(void *)(base + at_);                         \
  } while (0)

/* Lays the workspace out from `base` (64-byte aligned), or only measures it
   when base is NULL. Returns 0 if the size overflows. */
ADASM__PRIVATE int adasm__ada_layout(size_t n, size_t d, size_t k,
                                     unsigned char *base, adasm__ada_ws *w,
                                     size_t *total) {
  size_t off = 0;
  if (n == (size_t)-1) return 0;
  ADASM__ADA_CARVE(lw, double, d);
  ADASM__ADA_CARVE(key, double, d);
  ADASM__ADA_CARVE(cw, double, d);
  ADASM__ADA_CARVE(ew, double, d);
  ADASM__ADA_CARVE(perm, size_t, d);
  ADASM__ADA_CARVE(nzl, size_t, d);
  ADASM__ADA_CARVE(mu, double, n);
  ADASM__ADA_CARVE(var, double, n);
  ADASM__ADA_CARVE(lo, double, n);
  ADASM__ADA_CARVE(hi, double, n);
  ADASM__ADA_CARVE(heap, double, n + 1);
  ADASM__ADA_CARVE(m, size_t, n);
  ADASM__ADA_CARVE(set, size_t, n);
  /* act + pull lists of one chunk of at most min(n, TILE) arms */
  ADASM__ADA_CARVE(pset, size_t, 2 * (n < ADASM__ADA_TILE ? n : ADASM__ADA_TILE));
  ADASM__ADA_CARVE(res, size_t, k);
  if (d > ((size_t)-1 - 64) / 3) return 0;
  ADASM__ADA_CARVE(fcw, float, 3 * d + 64);
  ADASM__ADA_CARVE(few, float, 3 * d + 64);
  ADASM__ADA_CARVE(fidx, size_t, 3 * d + 64);
  ADASM__ADA_CARVE(rank, size_t, d);
  ADASM__ADA_CARVE(sortk, uint64_t, 2 * d); /* 2d: d <= SIZE_MAX / 3 above */
  ADASM__ADA_CARVE(tmu, float, ADASM__ADA_TILE);
  ADASM__ADA_CARVE(tvar, float, ADASM__ADA_TILE);
  *total = off;
  return 1;
}
#undef ADASM__ADA_CARVE

/* ---- small helpers -------------------------------------------------------- */
/* Sort order used for columns (by race key) and arms (by logit): larger
   key first, then lower index first, so ties resolve like the exact path. */
ADASM__PRIVATE int adasm__ada_before(const double *key, size_t a, size_t b) {
  return key[a] > key[b] || (!(key[a] < key[b]) && a < b);
}

ADASM__PRIVATE void adasm__ada_sift(size_t *v, size_t root, size_t cnt,
                                    const double *key) {
  for (;;) {
    size_t child = 2 * root + 1, pick = root, tmp;
    if (child < cnt && adasm__ada_before(key, v[pick], v[child])) pick = child;
    if (child + 1 < cnt && adasm__ada_before(key, v[pick], v[child + 1]))
      pick = child + 1;
    if (pick == root) return;
    tmp = v[root];
    v[root] = v[pick];
    v[pick] = tmp;
    root = pick;
  }
}

/* Heapsort of indices v[0..cnt) in adasm__ada_before order: O(cnt log cnt),
   no memory, deterministic. */
ADASM__PRIVATE void adasm__ada_sort(size_t *v, size_t cnt, const double *key) {
  size_t i, tmp;
  if (cnt < 2) return;
  for (i = cnt / 2; i-- > 0;) adasm__ada_sift(v, i, cnt, key);
  for (i = cnt - 1; i > 0; --i) {
    tmp = v[0];
    v[0] = v[i];
    v[i] = tmp;
    adasm__ada_sift(v, 0, i, key);
  }
}

ADASM__PRIVATE void adasm__ada_minsift(double *h, size_t root, size_t cnt) {
  for (;;) {
    size_t child = 2 * root + 1, pick = root;
    double tmp;
    if (child < cnt && h[child] < h[pick]) pick = child;
    if (child + 1 < cnt && h[child + 1] < h[pick]) pick = child + 1;
    if (pick == root) return;
    tmp = h[root];
    h[root] = h[pick];
    h[pick] = tmp;
    root = pick;
  }
}

/* The k-th largest of v[0..cnt), 1 <= k <= cnt, with a min-heap of k
   entries: O(cnt log k). */
ADASM__PRIVATE double adasm__ada_kth_largest(const double *v, size_t cnt,
                                             size_t k, double *h) {
  size_t i;
  for (i = 0; i < k; ++i) h[i] = v[i];
  for (i = k / 2; i-- > 0;) adasm__ada_minsift(h, i, k);
  for (i = k; i < cnt; ++i)
    if (v[i] > h[0]) {
      h[0] = v[i];
      adasm__ada_minsift(h, 0, k);
    }
  return h[0];
}

/* exp(x) in double, inline and branch-free, for the loops that take one
   per arm (the normalizer takes four: glibc's exp, a call of ~20 cycles,
   was a third of a word-head query). x = k ln2 + r with |r| <= ln2/2
   (fdlibm's two-part ln2, exact for |k| < 2^11) and k rounded by the 1.5 *
   2^52 add; Taylor to r^13 (truncation < 2e-17 relative) evaluated by
   Estrin's scheme, so the dependency chain is 6 operations deep rather
   than Horner's 26 and a scalar (SSE2) loop overlaps its iterations; 2^k
   applied as 2^k1 * 2^k2 (both normal), so subnormal results round once
   and x > 709.8 gives inf. x is clamped to [-746, 710] first (exp(-746)
   rounds to 0); NaN passes the clamps and comes out NaN. Within 2 ulp of
   libm over 2M points (test_exp allows 4). */
#define ADASM__ADA_EXP_C(i) (adasm__ada_exp_coef[i])
static const double adasm__ada_exp_coef[14] = { /* 1 / i! */
    1.0, 1.0, 0.5, 1.6666666666666666e-01, 4.1666666666666664e-02,
    8.3333333333333332e-03, 1.3888888888888889e-03, 1.9841269841269841e-04,
    2.4801587301587302e-05, 2.7557319223985893e-06, 2.7557319223985888e-07,
    2.5052108385441720e-08, 2.0876756987868099e-09, 1.6059043836821613e-10};

ADASM__PRIVATE double adasm__ada_exp(double x) {
  const double magic = 6755399441055744.0; /* 1.5 * 2^52 */
  double k, k1, r, r2, r4, p, q0, q1, q2, q3, q4, q5, q6, t1, t2, s1, s2;
  uint64_t b1, b2;
  x = x < -746.0 ? -746.0 : x;
  x = x > 710.0 ? 710.0 : x;
  k = (x * 1.4426950408889634 + magic) - magic; /* round(x / ln2) */
  r = (x - k * 6.93147180369123816490e-01) - k * 1.90821492927058770002e-10;
  r2 = r * r;
  r4 = r2 * r2;
  /* sum of r^i / i!, i <= 13: pairs, then pairs of pairs */
  q0 = ADASM__ADA_EXP_C(0) + ADASM__ADA_EXP_C(1) * r;
  q1 = ADASM__ADA_EXP_C(2) + ADASM__ADA_EXP_C(3) * r;
  q2 = ADASM__ADA_EXP_C(4) + ADASM__ADA_EXP_C(5) * r;
  q3 = ADASM__ADA_EXP_C(6) + ADASM__ADA_EXP_C(7) * r;
  q4 = ADASM__ADA_EXP_C(8) + ADASM__ADA_EXP_C(9) * r;
  q5 = ADASM__ADA_EXP_C(10) + ADASM__ADA_EXP_C(11) * r;
  q6 = ADASM__ADA_EXP_C(12) + ADASM__ADA_EXP_C(13) * r;
  q0 += q1 * r2;
  q2 += q3 * r2;
  q4 += q5 * r2;
  q0 += q2 * r4;
  q4 += q6 * r4;
  p = q0 + q4 * (r4 * r4);
  k1 = (k * 0.5 + magic) - magic; /* k in [-1076, 1024]: k1, k - k1 */
  t1 = k1 + magic;                /* in [-538, 512]: 2^k1, 2^(k-k1) */
  t2 = (k - k1) + magic;          /* normal; the low bits of t are k */
  memcpy(&b1, &t1, sizeof b1);
  memcpy(&b2, &t2, sizeof b2);
  b1 = (b1 + 1023u) << 52;
  b2 = (b2 + 1023u) << 52;
  memcpy(&s1, &b1, sizeof s1);
  memcpy(&s2, &b2, sizeof s2);
  return p * s1 * s2;
}

/* ---- dense tile kernels ---------------------------------------------------
   For rows r < len of a tile (cols points at the tile's first row in the
   column-major copy; column j of the tile is cols + j*n), over the first g
   columns of the sample order: tmu[r] = sum_s A(r, perm[s]) cw[s] and
   tvar[r] = sum_s A(r, perm[s])^2 ew[s], in float. Columns are taken four
   at a time so each pass over the L1 accumulators reads four contiguous
   column segments. Float is enough: g is at most a few thousand terms, so
   the rounding (~g 2^-24 of sum |term|) is far below the sampling error
   these estimates carry; non-finite results are redone in double. */
typedef void (*adasm__ada_tile_fn)(const float *cols, size_t n,
                                   const size_t *perm, size_t g,
                                   const float *cw, const float *ew,
                                   size_t len, float *tmu, float *tvar);

ADASM__PRIVATE void adasm__ada_tile_scalar(const float *cols, size_t n,
                                           const size_t *perm, size_t g,
                                           const float *cw, const float *ew,
                                           size_t len, float *tmu,
                                           float *tvar) {
  size_t s, r;
  for (r = 0; r < len; ++r) tmu[r] = tvar[r] = 0.0f;
  for (s = 0; s < g; ++s) {
    const float *c = cols + perm[s] * n;
    const float a = cw[s], e = ew[s];
    for (r = 0; r < len; ++r) {
      const float v = c[r];
      tmu[r] += v * a;
      tvar[r] += v * v * e;
    }
  }
}

/* The SIMD tile kernels take the sampled columns four at a time; a last
   group with fewer is padded with weight 0 on a real column, so the loads
   stay in bounds and add nothing. */
typedef struct adasm__ada_quad {
  const float *c[4];
  float f[4], h[4]; /* mean and variance weights */
} adasm__ada_quad;

ADASM__PRIVATE adasm__ada_quad adasm__ada_quad_at(const float *cols, size_t n,
                                                  const size_t *perm,
                                                  const float *cw,
                                                  const float *ew, size_t s,
                                                  size_t g) {
  adasm__ada_quad q;
  size_t u;
  for (u = 0; u < 4; ++u) {
    const int in = s + u < g;
    q.c[u] = cols + perm[in ? s + u : s] * n;
    q.f[u] = in ? cw[s + u] : 0.0f;
    q.h[u] = in ? ew[s + u] : 0.0f;
  }
  return q;
}

/* The next quad's column segments, fetched one line per column per 16 rows
   while this quad computes: the kernels walk four 4 KB runs in four pages,
   where the hardware prefetcher starts late. Cold tiles (1024 rows, 54
   columns, AVX-512) went from 0.17 to 0.11 ns per entry. */
#define ADASM__ADA_PREFETCH_QUAD(nq, r)                                        \
  do {                                                                         \
    ADASM__ADA_PREFETCH((nq).c[0] + (r));                                      \
    ADASM__ADA_PREFETCH((nq).c[1] + (r));                                      \
    ADASM__ADA_PREFETCH((nq).c[2] + (r));                                      \
    ADASM__ADA_PREFETCH((nq).c[3] + (r));                                      \
  } while (0)

#if defined(ADASM__HAVE_AVX512)
ADASM__TARGET_AVX512 static void adasm__ada_tile_avx512(
    const float *cols, size_t n, const size_t *perm, size_t g,
    const float *cw, const float *ew, size_t len, float *tmu, float *tvar) {
  size_t s = 0, r;
  const __mmask16 tail = (__mmask16)((1u << (len & 15u)) - 1u);
  const size_t full = len & ~(size_t)15;
  for (r = 0; r < len; ++r) tmu[r] = tvar[r] = 0.0f;
  for (; s < g; s += 4) {
    const adasm__ada_quad qd = adasm__ada_quad_at(cols, n, perm, cw, ew, s, g);
    const float *c0 = qd.c[0], *c1 = qd.c[1], *c2 = qd.c[2], *c3 = qd.c[3];
    const __m512 a0 = _mm512_set1_ps(qd.f[0]), e0 = _mm512_set1_ps(qd.h[0]);
    const __m512 a1 = _mm512_set1_ps(qd.f[1]), e1 = _mm512_set1_ps(qd.h[1]);
    const __m512 a2 = _mm512_set1_ps(qd.f[2]), e2 = _mm512_set1_ps(qd.h[2]);
    const __m512 a3 = _mm512_set1_ps(qd.f[3]), e3 = _mm512_set1_ps(qd.h[3]);
    const adasm__ada_quad nq =
        adasm__ada_quad_at(cols, n, perm, cw, ew, s + 4 < g ? s + 4 : s, g);
    for (r = 0; r <= full; r += 16) {
      const __mmask16 k = r < full ? (__mmask16)0xffff : tail;
      ADASM__ADA_PREFETCH_QUAD(nq, r);
      __m512 m = _mm512_maskz_loadu_ps(k, tmu + r);
      __m512 v = _mm512_maskz_loadu_ps(k, tvar + r);
      const __m512 x0 = _mm512_maskz_loadu_ps(k, c0 + r);
      const __m512 x1 = _mm512_maskz_loadu_ps(k, c1 + r);
      const __m512 x2 = _mm512_maskz_loadu_ps(k, c2 + r);
      const __m512 x3 = _mm512_maskz_loadu_ps(k, c3 + r);
      if (!k) break;
      m = _mm512_fmadd_ps(x0, a0, m);
      v = _mm512_fmadd_ps(_mm512_mul_ps(x0, x0), e0, v);
      m = _mm512_fmadd_ps(x1, a1, m);
      v = _mm512_fmadd_ps(_mm512_mul_ps(x1, x1), e1, v);
      m = _mm512_fmadd_ps(x2, a2, m);
      v = _mm512_fmadd_ps(_mm512_mul_ps(x2, x2), e2, v);
      m = _mm512_fmadd_ps(x3, a3, m);
      v = _mm512_fmadd_ps(_mm512_mul_ps(x3, x3), e3, v);
      _mm512_mask_storeu_ps(tmu + r, k, m);
      _mm512_mask_storeu_ps(tvar + r, k, v);
    }
  }
}
#endif

#if defined(ADASM__HAVE_AVX2)
ADASM__TARGET_AVX2 static void adasm__ada_tile_avx2(
    const float *cols, size_t n, const size_t *perm, size_t g,
    const float *cw, const float *ew, size_t len, float *tmu, float *tvar) {
  size_t s = 0, r;
  const size_t full = len & ~(size_t)7;
  for (r = 0; r < len; ++r) tmu[r] = tvar[r] = 0.0f;
  for (; s < g; s += 4) {
    const adasm__ada_quad qd = adasm__ada_quad_at(cols, n, perm, cw, ew, s, g);
    const float *c0 = qd.c[0], *c1 = qd.c[1], *c2 = qd.c[2], *c3 = qd.c[3];
    const float f0 = qd.f[0], f1 = qd.f[1], f2 = qd.f[2], f3 = qd.f[3];
    const float h0 = qd.h[0], h1 = qd.h[1], h2 = qd.h[2], h3 = qd.h[3];
    const __m256 a0 = _mm256_set1_ps(f0), e0 = _mm256_set1_ps(h0);
    const __m256 a1 = _mm256_set1_ps(f1), e1 = _mm256_set1_ps(h1);
    const __m256 a2 = _mm256_set1_ps(f2), e2 = _mm256_set1_ps(h2);
    const __m256 a3 = _mm256_set1_ps(f3), e3 = _mm256_set1_ps(h3);
    const adasm__ada_quad nq =
        adasm__ada_quad_at(cols, n, perm, cw, ew, s + 4 < g ? s + 4 : s, g);
    for (r = 0; r < full; r += 8) {
      __m256 m = _mm256_loadu_ps(tmu + r), v = _mm256_loadu_ps(tvar + r);
      if (!(r & 15)) ADASM__ADA_PREFETCH_QUAD(nq, r);
      const __m256 x0 = _mm256_loadu_ps(c0 + r), x1 = _mm256_loadu_ps(c1 + r);
      const __m256 x2 = _mm256_loadu_ps(c2 + r), x3 = _mm256_loadu_ps(c3 + r);
      m = _mm256_fmadd_ps(x0, a0, m);
      v = _mm256_fmadd_ps(_mm256_mul_ps(x0, x0), e0, v);
      m = _mm256_fmadd_ps(x1, a1, m);
      v = _mm256_fmadd_ps(_mm256_mul_ps(x1, x1), e1, v);
      m = _mm256_fmadd_ps(x2, a2, m);
      v = _mm256_fmadd_ps(_mm256_mul_ps(x2, x2), e2, v);
      m = _mm256_fmadd_ps(x3, a3, m);
      v = _mm256_fmadd_ps(_mm256_mul_ps(x3, x3), e3, v);
      _mm256_storeu_ps(tmu + r, m);
      _mm256_storeu_ps(tvar + r, v);
    }
    for (; r < len; ++r) {
      const float x0 = c0[r], x1 = c1[r], x2 = c2[r], x3 = c3[r];
      tmu[r] += x0 * f0 + x1 * f1 + x2 * f2 + x3 * f3;
      tvar[r] += x0 * x0 * h0 + x1 * x1 * h1 + x2 * x2 * h2 + x3 * x3 * h3;
    }
  }
}
#endif

#if defined(ADASM__HAVE_NEON)
static void adasm__ada_tile_neon(const float *cols, size_t n,
                                 const size_t *perm, size_t g,
                                 const float *cw, const float *ew, size_t len,
                                 float *tmu, float *tvar) {
  size_t s = 0, r;
  const size_t full = len & ~(size_t)3;
  for (r = 0; r < len; ++r) tmu[r] = tvar[r] = 0.0f;
  for (; s < g; s += 4) {
    const adasm__ada_quad qd = adasm__ada_quad_at(cols, n, perm, cw, ew, s, g);
    const float *c0 = qd.c[0], *c1 = qd.c[1], *c2 = qd.c[2], *c3 = qd.c[3];
    const float f0 = qd.f[0], f1 = qd.f[1], f2 = qd.f[2], f3 = qd.f[3];
    const float h0 = qd.h[0], h1 = qd.h[1], h2 = qd.h[2], h3 = qd.h[3];
    const adasm__ada_quad nq =
        adasm__ada_quad_at(cols, n, perm, cw, ew, s + 4 < g ? s + 4 : s, g);
    for (r = 0; r < full; r += 4) {
      float32x4_t m = vld1q_f32(tmu + r), v = vld1q_f32(tvar + r);
      if (!(r & 15)) ADASM__ADA_PREFETCH_QUAD(nq, r);
      const float32x4_t x0 = vld1q_f32(c0 + r), x1 = vld1q_f32(c1 + r);
      const float32x4_t x2 = vld1q_f32(c2 + r), x3 = vld1q_f32(c3 + r);
      m = vfmaq_n_f32(m, x0, f0);
      v = vfmaq_n_f32(v, vmulq_f32(x0, x0), h0);
      m = vfmaq_n_f32(m, x1, f1);
      v = vfmaq_n_f32(v, vmulq_f32(x1, x1), h1);
      m = vfmaq_n_f32(m, x2, f2);
      v = vfmaq_n_f32(v, vmulq_f32(x2, x2), h2);
      m = vfmaq_n_f32(m, x3, f3);
      v = vfmaq_n_f32(v, vmulq_f32(x3, x3), h3);
      vst1q_f32(tmu + r, m);
      vst1q_f32(tvar + r, v);
    }
    for (; r < len; ++r) {
      const float x0 = c0[r], x1 = c1[r], x2 = c2[r], x3 = c3[r];
      tmu[r] += x0 * f0 + x1 * f1 + x2 * f2 + x3 * f3;
      tvar[r] += x0 * x0 * h0 + x1 * x1 * h1 + x2 * x2 * h2 + x3 * x3 * h3;
    }
  }
}
#endif

/* The tile kernel of an ISA (AUTO = best); scalar when not built. */
ADASM__PRIVATE adasm__ada_tile_fn adasm__ada_tile_for(adasm_isa isa) {
  if (isa == ADASM_ISA_AUTO) isa = adasm_isa_best();
  switch (isa) {
#if defined(ADASM__HAVE_AVX512)
  case ADASM_ISA_AVX512: return adasm__ada_tile_avx512;
#endif
#if defined(ADASM__HAVE_AVX2)
  case ADASM_ISA_AVX2: return adasm__ada_tile_avx2;
#endif
#if defined(ADASM__HAVE_NEON)
  case ADASM_ISA_NEON: return adasm__ada_tile_neon;
#endif
  default: return adasm__ada_tile_scalar;
  }
}

/* ---- per-arm exp kernels -------------------------------------------------
   The O(n) loops of a query (the normalizer's two logsumexps and V1
   targets, the output's logsumexp) take an exp per arm: sum_i e_i with
   e_i = exp(min(a + ca v_i, b + cb v_i)), stored to out[i] when out is not
   NULL. adasm__ada_exp four or eight lanes at a time; a compiler left to
   itself vectorises none of it (the clamps and the in-order sum), and in a
   default (SSE2) build the scalar loop was a fifth of a word-head query.
   Same formula on every ISA: results differ in the last bits only (FMA,
   summation order). */
typedef double (*adasm__ada_expmin_fn)(const double *v, size_t cnt, double a,
                                       double ca, double b, double cb,
                                       double *out);

ADASM__PRIVATE double adasm__ada_expmin_scalar(const double *v, size_t cnt,
                                               double a, double ca, double b,
                                               double cb, double *out) {
  double s = 0.0;
  size_t i;
  for (i = 0; i < cnt; ++i) {
    const double u = a + ca * v[i], w = b + cb * v[i];
    const double e = adasm__ada_exp(w < u ? w : u); /* w NaN (0 * inf): u */
    if (out) out[i] = e;
    s += e;
  }
  return s;
}

/* The vector exps below are adasm__ada_exp lane by lane (same clamps,
   reduction, Estrin polynomial and two-factor 2^k; FMA where it fits). */

#if defined(ADASM__HAVE_AVX2)
ADASM__TARGET_AVX2 static __m256d adasm__ada_exp_avx2(__m256d x) {
  const __m256d magic = _mm256_set1_pd(6755399441055744.0);
  const __m256i bias = _mm256_set1_epi64x(1023);
  __m256d k, k1, r, r2, r4, p, q0, q1, q2, q3, q4, q5, q6;
  __m256i b1, b2;
#define ADASM__C(i) _mm256_set1_pd(ADASM__ADA_EXP_C(i))
  x = _mm256_max_pd(_mm256_set1_pd(-746.0), x); /* NaN: x (2nd operand) */
  x = _mm256_min_pd(_mm256_set1_pd(710.0), x);
  k = _mm256_sub_pd(
      _mm256_fmadd_pd(x, _mm256_set1_pd(1.4426950408889634), magic), magic);
  r = _mm256_fnmadd_pd(k, _mm256_set1_pd(6.93147180369123816490e-01), x);
  r = _mm256_fnmadd_pd(k, _mm256_set1_pd(1.90821492927058770002e-10), r);
  r2 = _mm256_mul_pd(r, r);
  r4 = _mm256_mul_pd(r2, r2);
  q0 = _mm256_fmadd_pd(ADASM__C(1), r, ADASM__C(0));
  q1 = _mm256_fmadd_pd(ADASM__C(3), r, ADASM__C(2));
  q2 = _mm256_fmadd_pd(ADASM__C(5), r, ADASM__C(4));
  q3 = _mm256_fmadd_pd(ADASM__C(7), r, ADASM__C(6));
  q4 = _mm256_fmadd_pd(ADASM__C(9), r, ADASM__C(8));
  q5 = _mm256_fmadd_pd(ADASM__C(11), r, ADASM__C(10));
  q6 = _mm256_fmadd_pd(ADASM__C(13), r, ADASM__C(12));
  q0 = _mm256_fmadd_pd(q1, r2, q0);
  q2 = _mm256_fmadd_pd(q3, r2, q2);
  q4 = _mm256_fmadd_pd(q5, r2, q4);
  q0 = _mm256_fmadd_pd(q2, r4, q0);
  q4 = _mm256_fmadd_pd(q6, r4, q4);
  p = _mm256_fmadd_pd(q4, _mm256_mul_pd(r4, r4), q0);
#undef ADASM__C
  k1 = _mm256_sub_pd(_mm256_fmadd_pd(k, _mm256_set1_pd(0.5), magic), magic);
  b1 = _mm256_castpd_si256(_mm256_add_pd(k1, magic));
  b2 = _mm256_castpd_si256(_mm256_add_pd(_mm256_sub_pd(k, k1), magic));
  b1 = _mm256_slli_epi64(_mm256_add_epi64(b1, bias), 52);
  b2 = _mm256_slli_epi64(_mm256_add_epi64(b2, bias), 52);
  return _mm256_mul_pd(_mm256_mul_pd(p, _mm256_castsi256_pd(b1)),
                       _mm256_castsi256_pd(b2));
}

ADASM__TARGET_AVX2 static double adasm__ada_expmin_avx2(
    const double *v, size_t cnt, double a, double ca, double b, double cb,
    double *out) {
  const __m256d va = _mm256_set1_pd(a), vca = _mm256_set1_pd(ca);
  const __m256d vb = _mm256_set1_pd(b), vcb = _mm256_set1_pd(cb);
  __m256d acc = _mm256_setzero_pd();
  double lane[4];
  size_t i = 0;
  for (; i + 4 <= cnt; i += 4) {
    const __m256d x = _mm256_loadu_pd(v + i);
    const __m256d u = _mm256_fmadd_pd(vca, x, va);
    const __m256d w = _mm256_fmadd_pd(vcb, x, vb);
    const __m256d e = adasm__ada_exp_avx2(
        _mm256_blendv_pd(u, w, _mm256_cmp_pd(w, u, _CMP_LT_OQ)));
    if (out) _mm256_storeu_pd(out + i, e);
    acc = _mm256_add_pd(acc, e);
  }
  _mm256_storeu_pd(lane, acc);
  return (lane[0] + lane[1]) + (lane[2] + lane[3]) +
         adasm__ada_expmin_scalar(v + i, cnt - i, a, ca, b, cb,
                                  out ? out + i : NULL);
}
#endif

#if defined(ADASM__HAVE_AVX512)
#if defined(__GNUC__) && !defined(__clang__)
/* GCC 12's false -Wmaybe-uninitialized on AVX-512 intrinsics in C++ (see
   >>k_avx512); scoped to this block. */
#pragma GCC diagnostic push
#pragma GCC diagnostic ignored "-Wmaybe-uninitialized"
#pragma GCC diagnostic ignored "-Wuninitialized"
#endif
ADASM__TARGET_AVX512 static __m512d adasm__ada_exp_avx512(__m512d x) {
  const __m512d magic = _mm512_set1_pd(6755399441055744.0);
  const __m512i bias = _mm512_set1_epi64(1023);
  __m512d k, k1, r, r2, r4, p, q0, q1, q2, q3, q4, q5, q6;
  __m512i b1, b2;
#define ADASM__C(i) _mm512_set1_pd(ADASM__ADA_EXP_C(i))
  x = _mm512_max_pd(_mm512_set1_pd(-746.0), x); /* NaN: x (2nd operand) */
  x = _mm512_min_pd(_mm512_set1_pd(710.0), x);
  k = _mm512_sub_pd(
      _mm512_fmadd_pd(x, _mm512_set1_pd(1.4426950408889634), magic), magic);
  r = _mm512_fnmadd_pd(k, _mm512_set1_pd(6.93147180369123816490e-01), x);
  r = _mm512_fnmadd_pd(k, _mm512_set1_pd(1.90821492927058770002e-10), r);
  r2 = _mm512_mul_pd(r, r);
  r4 = _mm512_mul_pd(r2, r2);
  q0 = _mm512_fmadd_pd(ADASM__C(1), r, ADASM__C(0));
  q1 = _mm512_fmadd_pd(ADASM__C(3), r, ADASM__C(2));
  q2 = _mm512_fmadd_pd(ADASM__C(5), r, ADASM__C(4));
  q3 = _mm512_fmadd_pd(ADASM__C(7), r, ADASM__C(6));
  q4 = _mm512_fmadd_pd(ADASM__C(9), r, ADASM__C(8));
  q5 = _mm512_fmadd_pd(ADASM__C(11), r, ADASM__C(10));
  q6 = _mm512_fmadd_pd(ADASM__C(13), r, ADASM__C(12));
  q0 = _mm512_fmadd_pd(q1, r2, q0);
  q2 = _mm512_fmadd_pd(q3, r2, q2);
  q4 = _mm512_fmadd_pd(q5, r2, q4);
  q0 = _mm512_fmadd_pd(q2, r4, q0);
  q4 = _mm512_fmadd_pd(q6, r4, q4);
  p = _mm512_fmadd_pd(q4, _mm512_mul_pd(r4, r4), q0);
#undef ADASM__C
  k1 = _mm512_sub_pd(_mm512_fmadd_pd(k, _mm512_set1_pd(0.5), magic), magic);
  b1 = _mm512_castpd_si512(_mm512_add_pd(k1, magic));
  b2 = _mm512_castpd_si512(_mm512_add_pd(_mm512_sub_pd(k, k1), magic));
  b1 = _mm512_slli_epi64(_mm512_add_epi64(b1, bias), 52);
  b2 = _mm512_slli_epi64(_mm512_add_epi64(b2, bias), 52);
  return _mm512_mul_pd(_mm512_mul_pd(p, _mm512_castsi512_pd(b1)),
                       _mm512_castsi512_pd(b2));
}

ADASM__TARGET_AVX512 static double adasm__ada_expmin_avx512(
    const double *v, size_t cnt, double a, double ca, double b, double cb,
    double *out) {
  const __m512d va = _mm512_set1_pd(a), vca = _mm512_set1_pd(ca);
  const __m512d vb = _mm512_set1_pd(b), vcb = _mm512_set1_pd(cb);
  __m512d acc = _mm512_setzero_pd();
  double lane[8];
  size_t i = 0;
  for (; i + 8 <= cnt; i += 8) {
    const __m512d x = _mm512_loadu_pd(v + i);
    const __m512d u = _mm512_fmadd_pd(vca, x, va);
    const __m512d w = _mm512_fmadd_pd(vcb, x, vb);
    const __m512d e = adasm__ada_exp_avx512(_mm512_mask_blend_pd(
        _mm512_cmp_pd_mask(w, u, _CMP_LT_OQ), u, w));
    if (out) _mm512_storeu_pd(out + i, e);
    acc = _mm512_add_pd(acc, e);
  }
  _mm512_storeu_pd(lane, acc);
  return ((lane[0] + lane[1]) + (lane[2] + lane[3])) +
         ((lane[4] + lane[5]) + (lane[6] + lane[7])) +
         adasm__ada_expmin_scalar(v + i, cnt - i, a, ca, b, cb,
                                  out ? out + i : NULL);
}
#if defined(__GNUC__) && !defined(__clang__)
#pragma GCC diagnostic pop
#endif
#endif

#if defined(ADASM__HAVE_NEON)
static float64x2_t adasm__ada_exp_neon(float64x2_t x) {
  const float64x2_t magic = vdupq_n_f64(6755399441055744.0);
  const int64x2_t bias = vdupq_n_s64(1023);
  float64x2_t k, k1, r, r2, r4, p, q0, q1, q2, q3, q4, q5, q6;
  int64x2_t b1, b2;
#define ADASM__C(i) vdupq_n_f64(ADASM__ADA_EXP_C(i))
  x = vmaxq_f64(vdupq_n_f64(-746.0), x); /* NaN stays NaN */
  x = vminq_f64(vdupq_n_f64(710.0), x);
  k = vsubq_f64(vfmaq_f64(magic, x, vdupq_n_f64(1.4426950408889634)), magic);
  r = vfmsq_f64(x, k, vdupq_n_f64(6.93147180369123816490e-01));
  r = vfmsq_f64(r, k, vdupq_n_f64(1.90821492927058770002e-10));
  r2 = vmulq_f64(r, r);
  r4 = vmulq_f64(r2, r2);
  q0 = vfmaq_f64(ADASM__C(0), ADASM__C(1), r);
  q1 = vfmaq_f64(ADASM__C(2), ADASM__C(3), r);
  q2 = vfmaq_f64(ADASM__C(4), ADASM__C(5), r);
  q3 = vfmaq_f64(ADASM__C(6), ADASM__C(7), r);
  q4 = vfmaq_f64(ADASM__C(8), ADASM__C(9), r);
  q5 = vfmaq_f64(ADASM__C(10), ADASM__C(11), r);
  q6 = vfmaq_f64(ADASM__C(12), ADASM__C(13), r);
  q0 = vfmaq_f64(q0, q1, r2);
  q2 = vfmaq_f64(q2, q3, r2);
  q4 = vfmaq_f64(q4, q5, r2);
  q0 = vfmaq_f64(q0, q2, r4);
  q4 = vfmaq_f64(q4, q6, r4);
  p = vfmaq_f64(q0, q4, vmulq_f64(r4, r4));
#undef ADASM__C
  k1 = vsubq_f64(vfmaq_f64(magic, k, vdupq_n_f64(0.5)), magic);
  b1 = vreinterpretq_s64_f64(vaddq_f64(k1, magic));
  b2 = vreinterpretq_s64_f64(vaddq_f64(vsubq_f64(k, k1), magic));
  b1 = vshlq_n_s64(vaddq_s64(b1, bias), 52);
  b2 = vshlq_n_s64(vaddq_s64(b2, bias), 52);
  return vmulq_f64(vmulq_f64(p, vreinterpretq_f64_s64(b1)),
                   vreinterpretq_f64_s64(b2));
}

static double adasm__ada_expmin_neon(const double *v, size_t cnt, double a,
                                     double ca, double b, double cb,
                                     double *out) {
  const float64x2_t va = vdupq_n_f64(a), vca = vdupq_n_f64(ca);
  const float64x2_t vb = vdupq_n_f64(b), vcb = vdupq_n_f64(cb);
  float64x2_t acc0 = vdupq_n_f64(0.0), acc1 = vdupq_n_f64(0.0);
  size_t i = 0;
  for (; i + 4 <= cnt; i += 4) {
    const float64x2_t x0 = vld1q_f64(v + i), x1 = vld1q_f64(v + i + 2);
    const float64x2_t u0 = vfmaq_f64(va, vca, x0), w0 = vfmaq_f64(vb, vcb, x0);
    const float64x2_t u1 = vfmaq_f64(va, vca, x1), w1 = vfmaq_f64(vb, vcb, x1);
    const float64x2_t e0 = adasm__ada_exp_neon(vbslq_f64(vcltq_f64(w0, u0), w0, u0));
    const float64x2_t e1 = adasm__ada_exp_neon(vbslq_f64(vcltq_f64(w1, u1), w1, u1));
    if (out) {
      vst1q_f64(out + i, e0);
      vst1q_f64(out + i + 2, e1);
    }
    acc0 = vaddq_f64(acc0, e0);
    acc1 = vaddq_f64(acc1, e1);
  }
  return (vgetq_lane_f64(acc0, 0) + vgetq_lane_f64(acc0, 1)) +
         (vgetq_lane_f64(acc1, 0) + vgetq_lane_f64(acc1, 1)) +
         adasm__ada_expmin_scalar(v + i, cnt - i, a, ca, b, cb,
                                  out ? out + i : NULL);
}
#endif

ADASM__PRIVATE adasm__ada_expmin_fn adasm__ada_expmin_for(adasm_isa isa) {
  if (isa == ADASM_ISA_AUTO) isa = adasm_isa_best();
  switch (isa) {
#if defined(ADASM__HAVE_AVX512)
  case ADASM_ISA_AVX512: return adasm__ada_expmin_avx512;
#endif
#if defined(ADASM__HAVE_AVX2)
  case ADASM_ISA_AVX2: return adasm__ada_expmin_avx2;
#endif
#if defined(ADASM__HAVE_NEON)
  case ADASM_ISA_NEON: return adasm__ada_expmin_neon;
#endif
  default: return adasm__ada_expmin_scalar;
  }
}

/* log sum_i exp(scale * v[i]) over the arms, in double. */
ADASM__PRIVATE double adasm__ada_lse(adasm__ada_expmin_fn f, const double *v,
                                     size_t cnt, double scale) {
  double mx = -HUGE_VAL;
  size_t i;
  for (i = 0; i < cnt; ++i)
    if (scale * v[i] > mx) mx = scale * v[i];
  if (!(mx > -HUGE_VAL)) return mx;
  return mx + log(f(v, cnt, -mx, scale, HUGE_VAL, 0.0, NULL));
}

/* ---- per-query state ------------------------------------------------------ */
typedef struct adasm__ada_q {
  const adasm_ada_index *ix;
  const float *x;
  double beta;
  size_t n, nnz;
  adasm__ada_ws w;
  size_t wlevel;   /* sample size whose HT weights are in w.cw / w.ew */
  uint64_t madds;
  adasm__ada_tile_fn tile;                 /* dense kernel of the ISA */
  adasm__ada_expmin_fn expmin;             /* per-arm exps of the ISA */
  const adasm_kernels *kern;               /* its exact kernels (dot_rows) */
  unsigned char lv_ready[ADASM__ADA_MAXLV]; /* float weights of level made */
} adasm__ada_q;

/* Exact logit of arm i: one row of the caller's A over the non-zero columns
   in ascending order, in double. Products of two floats are exact in double,
   so this equals a plain double dot product over all d columns: exact ties
   stay ties and compare like the reference. */
ADASM__PRIVATE void adasm__ada_exact(adasm__ada_q *q, size_t i,
                                     uint64_t *pulls) {
  const float *row = q->ix->A + i * q->ix->lda;
  const size_t *nzl = q->w.nzl;
  double s = 0.0;
  size_t t;
  if (q->w.m[i] == q->nnz) return; /* already exact */
  for (t = 0; t < q->nnz; ++t) s += (double)row[nzl[t]] * (double)q->x[nzl[t]];
  q->w.mu[i] = q->beta * s;
  q->w.var[i] = 0.0;
  *pulls += (uint64_t)(q->nnz - q->w.m[i]);
  q->madds += (uint64_t)q->nnz;
  q->w.m[i] = q->nnz;
}

/* Horvitz-Thompson weights for the sample of the first g (< nnz) columns of
   the race order. r = (g+1)-th key; conditionally on r, column j is in the
   sample iff w_j / E_j > r, with probability pi_j = 1 - exp(-w_j / r).
   Since key_j >= r and E_j >= ~1e-16 (53-bit uniforms), pi_j >= ~1e-16:
   never 0. */
ADASM__PRIVATE void adasm__ada_weights(adasm__ada_q *q, size_t g) {
  const double r = q->w.key[q->w.perm[g]];
  const double b2 = q->beta * q->beta;
  size_t s;
  if (q->wlevel == g) return;
  for (s = 0; s < g; ++s) {
    const size_t j = q->w.perm[s];
    const double rate = q->w.lw[j] / r; /* <= ~1e180: finite */
    const double miss = exp(-rate);            /* 1 - pi, accurate near 1 */
    /* 1 - miss cancels only for small rates: expm1 there, and only there
       (it was a fifth of a wide head's query) */
    const double pi = rate < 0.25 ? -expm1(-rate) : 1.0 - miss;
    const double xj = (double)q->x[j];
    q->w.cw[s] = xj / pi;
    q->w.ew[s] = b2 * xj * xj * miss / (pi * pi);
  }
  q->wlevel = g;
}

/* Column-major (all arms of P per column: sequential when P is dense) or
   row-major (one row per arm: when P is sparse)? Compare cache lines. */
ADASM__PRIVATE int adasm__ada_use_rows(const adasm__ada_q *q, size_t np,
                                       size_t g) {
  const double per_row = (double)(g < q->ix->d / 16 + 1 ? g : q->ix->d / 16 + 1);
  const double per_col = (double)(np < q->n / 16 + 1 ? np : q->n / 16 + 1);
  return (double)np * per_row < (double)g * per_col;
}

/* Brings every arm of P (all with m < g) to the first g columns of the
   order: recomputes its HT estimate and variance from all g columns (pi
   depends on g), counting only the g - m new columns as pulls. */
ADASM__PRIVATE void adasm__ada_pull(adasm__ada_q *q, const size_t *P,
                                    size_t np, size_t g, uint64_t *pulls) {
  double *mu = q->w.mu, *var = q->w.var;
  const double *cw, *ew;
  const size_t *perm = q->w.perm;
  size_t t, s;
  if (g >= q->nnz) { /* the whole population: exact, variance 0 */
    for (t = 0; t < np; ++t) adasm__ada_exact(q, P[t], pulls);
    return;
  }
  adasm__ada_weights(q, g);
  cw = q->w.cw;
  ew = q->w.ew;
  for (t = 0; t < np; ++t) {
    *pulls += (uint64_t)(g - q->w.m[P[t]]);
    q->w.m[P[t]] = g;
  }
  q->madds += 2u * (uint64_t)np * (uint64_t)g; /* mean and variance */
  if (adasm__ada_use_rows(q, np, g)) {
    const size_t lda = q->ix->lda;
    for (t = 0; t < np; ++t) {
      const float *row = q->ix->A + P[t] * lda;
      double s1 = 0.0, s2 = 0.0;
      for (s = 0; s < g; ++s) {
        const double a = (double)row[perm[s]];
        s1 += a * cw[s];
        s2 += a * a * ew[s];
      }
      mu[P[t]] = q->beta * s1;
      var[P[t]] = s2;
    }
  } else {
    const size_t n = q->n;
    for (t = 0; t < np; ++t) mu[P[t]] = var[P[t]] = 0.0;
    for (s = 0; s < g; ++s) {
      const float *col = q->ix->cols + perm[s] * n;
      const double c = cw[s], e = ew[s];
      for (t = 0; t < np; ++t) {
        const double a = (double)col[P[t]];
        mu[P[t]] += a * c;
        var[P[t]] += a * a * e;
      }
    }
    for (t = 0; t < np; ++t) mu[P[t]] *= q->beta;
  }
}

/* Float HT weights of a grid sample size g (16, 24, 36, ... < nnz), made
   once per query and level (the same values as adasm__ada_weights, rounded
   to float, clamped to +-FLT_MAX so a weight is never inf and 0 * w never
   NaN). Level l lives at offset sum_{l' < l} g_l' < 3 nnz of w.fcw/few.
   Returns 0 if g is not on the grid (the caller then uses the double
   path). */
ADASM__PRIVATE int adasm__ada_level(adasm__ada_q *q, size_t g,
                                    const float **cw, const float **ew,
                                    const size_t **col) {
  size_t lv = 0, off = 0, gl = ADASM__ADA_GRID0, s;
  while (gl < g && lv + 1 < ADASM__ADA_MAXLV) {
    off += gl;
    gl += (gl + 1) / 2;
    ++lv;
  }
  if (gl != g || off + g > 3 * q->ix->d + 64) return 0;
  if (!q->lv_ready[lv]) {
    /* Entries in ascending column order (the sum does not care), so a row
       is read front to back (prefetcher-friendly) and the tile kernel
       walks the column-major copy forwards. */
    const double fmax = 3.4028234663852886e38;
    size_t t, o = off;
    adasm__ada_weights(q, g); /* double weights by sample position */
    for (t = 0; t < q->nnz; ++t) {
      const size_t j = q->w.nzl[t];
      double c, e;
      s = q->w.rank[j];
      if (s >= g) continue;
      c = q->w.cw[s];
      e = q->w.ew[s];
      if (c > fmax) c = fmax;
      if (c < -fmax) c = -fmax;
      if (e > fmax) e = fmax;
      q->w.fidx[o] = j;
      q->w.fcw[o] = (float)c;
      q->w.few[o++] = (float)e;
    }
    q->lv_ready[lv] = 1;
  }
  *cw = q->w.fcw + off;
  *ew = q->w.few + off;
  *col = q->w.fidx + off;
  return 1;
}

/* adasm__ada_pull for arms P (all in one tile of ADASM__ADA_TILE rows,
   ascending except the best arms, all with m < g) at a grid size g: the same
   estimator from float weights. Dense sets run the SIMD tile kernel over
   the rows P spans (contiguous column segments), sparse ones gather from
   their rows of A. Estimates that come out non-finite in float are redone
   by the double path. */
ADASM__PRIVATE void adasm__ada_pull_fast(adasm__ada_q *q, const size_t *P,
                                         size_t np, size_t g, size_t *gt,
                                         uint64_t *pulls) {
  const float *cw, *ew;
  const size_t *col;
  const size_t d = q->ix->d;
  double *mu = q->w.mu, *var = q->w.var;
  size_t *m = q->w.m;
  size_t t, s, lo = P[0], hi = P[0], span;
  uint64_t got = 0; /* pulls */
  int bad = 0;      /* a float estimate came out non-finite */
  for (t = 1; t < np; ++t) { /* P is ascending except for the best arms */
    if (P[t] < lo) lo = P[t];
    if (P[t] > hi) hi = P[t];
  }
  span = hi - lo + 1;
  if (g >= q->nnz || !adasm__ada_level(q, g, &cw, &ew, &col)) {
    adasm__ada_pull(q, P, np, g, pulls);
    return;
  }
  /* Cache lines from memory: rows path ~ min(g, d/16) per arm; tile ~
     span/16 per column, but the *gt columns this chunk already streamed
     come from L2 (counted at 1/5: they still cost the arithmetic). A
     gathered line costs 3 streamed ones: ~5.8 ns at random (latency-bound
     even with prefetch) against ~1.8 ns for a line of the prefetching tile
     kernel. (Before that kernel prefetched, weighting gathers measured
     slower and lines counted alike.) */
  if (3.0 * (double)np * (double)(g < d / 16 + 1 ? g : d / 16 + 1) <
      ((double)(g - (*gt < g ? *gt : g)) + 0.2 * (double)(*gt < g ? *gt : g)) *
          (double)(span / 16 + 1)) {
    /* Once g reaches d/4 a gather touches about every line of the row
       anyway, at random: reading the row whole is sequential, vectorised
       and exact (variance 0 meets any target), so in seconds it is the
       cheaper pull. It costs pulls (nnz - g more), not time. */
    const size_t lda = q->ix->lda;
    const int whole = g * 4 >= d;
    const double cyc0 = ADASM__ADA_CYC();
    q->madds += whole ? (uint64_t)np * (uint64_t)d : 2u * (uint64_t)np * (uint64_t)g;
    ADASM__ADA_PROF_ADD(adasm__ada_prof_rows, (double)np,
                        (double)np * (double)g);
    for (t = 0; t < np && whole; ++t) {
      float y;
      q->kern->dot_rows(q->ix->A + P[t] * lda, 1, d, lda, q->x, 1.0f, &y);
      got += (uint64_t)(q->nnz - m[P[t]]);
      m[P[t]] = q->nnz;
      mu[P[t]] = q->beta * (double)y;
      var[P[t]] = 0.0;
      if (!adasm__isfinite(mu[P[t]])) bad = 1;
    }
    for (t = 0; t < np && !whole; ++t) {
      const float *row = q->ix->A + P[t] * lda;
      float m0 = 0.0f, m1 = 0.0f, v0 = 0.0f, v1 = 0.0f;
      if (t + 2 < np) { /* every line the arm after next reads (col is
                           ascending): the gather becomes bandwidth-bound
                           instead of paying one memory latency per line */
        const float *nrow = q->ix->A + P[t + 2] * lda;
        uintptr_t last = 0;
        for (s = 0; s < g; ++s) {
          const uintptr_t line = (uintptr_t)(nrow + col[s]) >> 6;
          if (line != last) ADASM__ADA_PREFETCH(nrow + col[s]);
          last = line;
        }
      }
      if (t == 0) { /* the first two arms have no one prefetching them */
        size_t u;
        for (u = 0; u < 2 && u < np; ++u)
          for (s = 0; s < g; s += 8) ADASM__ADA_PREFETCH(q->ix->A + P[u] * lda + col[s]);
      }
      for (s = 0; s + 2 <= g; s += 2) { /* two chains: half the latency */
        const float a = row[col[s]], b = row[col[s + 1]];
        m0 += a * cw[s];
        v0 += a * a * ew[s];
        m1 += b * cw[s + 1];
        v1 += b * b * ew[s + 1];
      }
      if (s < g) {
        const float a = row[col[s]];
        m0 += a * cw[s];
        v0 += a * a * ew[s];
      }
      got += (uint64_t)(g - m[P[t]]);
      m[P[t]] = g;
      mu[P[t]] = q->beta * (double)(m0 + m1);
      var[P[t]] = (double)(v0 + v1);
      if (!adasm__isfinite(mu[P[t]]) || !adasm__isfinite(var[P[t]])) bad = 1;
    }
    ADASM__ADA_CYC_ADD(whole ? 1 : 2, cyc0);
  } else {
    const double cyc0 = ADASM__ADA_CYC();
    q->madds += 2u * (uint64_t)span * (uint64_t)g;
    q->tile(q->ix->cols + lo, q->n, col, g, cw, ew, span, q->w.tmu,
            q->w.tvar);
    ADASM__ADA_CYC_ADD(0, cyc0);
    if (g > *gt) *gt = g;
    ADASM__ADA_PROF_ADD(adasm__ada_prof_tile, 1.0, (double)span * (double)g);
    for (t = 0; t < np; ++t) {
      const size_t i = P[t];
      got += (uint64_t)(g - m[i]);
      m[i] = g;
      mu[i] = q->beta * (double)q->w.tmu[i - lo];
      var[i] = (double)q->w.tvar[i - lo];
      if (!adasm__isfinite(mu[i]) || !adasm__isfinite(var[i])) bad = 1;
    }
  }
  *pulls += got;
  for (t = 0; t < np && bad; ++t)
    if (!adasm__isfinite(mu[P[t]]) || !adasm__isfinite(var[P[t]])) {
      /* float overflowed: redo in double, at the same sample size (an arm
         read whole stays whole, so its pulls are not counted twice) */
      uint64_t dummy = 0;
      const int whole_row = m[P[t]] == q->nnz;
      m[P[t]] = 0;
      if (whole_row)
        adasm__ada_exact(q, P[t], &dummy);
      else
        adasm__ada_pull(q, P + t, 1, g, &dummy);
    }
}

/* pull_to_var(S, V): every arm i of S gets columns on the grid 16, 24, 36,
   54, ... (x1.5, capped at `cap`) until var_i * fudge <= V_i (Vi[i], or V
   when Vi is NULL) or it has `cap` columns. S is ascending; it is taken one
   tile of ADASM__ADA_TILE rows at a time, and within a tile every grid
   step pulls the tile's arms still above target together. Each arm sees
   the same steps as with one global pass per step (an arm's steps depend
   only on its own var, target and m), but a tile's column segments are
   read from memory once and re-read from L2 by the later steps. */
ADASM__PRIVATE void adasm__ada_pull_to_var(adasm__ada_q *q, const size_t *S,
                                           size_t cnt, const double *Vi,
                                           double V, double fudge, size_t cap,
                                           uint64_t *pulls) {
  const size_t *m = q->w.m;
  const double *var = q->w.var;
  const size_t chunk = q->n < ADASM__ADA_TILE ? q->n : ADASM__ADA_TILE;
  size_t *act = q->w.pset, *pull = q->w.pset + chunk;
  size_t a = 0;
  while (a < cnt) {
    const size_t tile = S[a] / ADASM__ADA_TILE;
    size_t b = a + 1, g = ADASM__ADA_GRID0 < cap ? ADASM__ADA_GRID0 : cap;
    size_t t, na = 0, np = 0, gt = 0; /* gt: columns the tile kernel streamed */
    size_t mmin = cap; /* fewest columns of an active arm */
    while (b < cnt && S[b] / ADASM__ADA_TILE == tile && b - a < chunk) ++b;
    /* the chunk's arms above target; later steps rescan only these */
    for (t = a; t < b; ++t) {
      const size_t i = S[t];
      if (m[i] < cap && var[i] * fudge > (Vi ? Vi[i] : V)) {
        act[na++] = i;
        if (m[i] < mmin) mmin = m[i];
      }
    }
    for (;;) {
      size_t keep = 0;
      if (!np && na) {
        /* steps at or below every active arm's m pull nothing (the
           normalizer's arms start at the burn-in's cap): go past them */
        while (g <= mmin && g < cap) {
          g += (g + 1) / 2;
          if (g > cap) g = cap;
        }
        for (t = 0; t < na; ++t)
          if (m[act[t]] < g) pull[np++] = act[t];
      }
      if (!na) break;
      if (np) adasm__ada_pull_fast(q, pull, np, g, &gt, pulls);
      if (g >= cap) break;
      g += (g + 1) / 2; /* ceil(1.5 g) */
      if (g > cap) g = cap;
      /* one branch-free pass: the arms still above target, and those the
         next step pulls (pull[] is free again: pull_fast is done with it;
         both writes stay below t) */
      np = 0;
      mmin = cap;
      for (t = 0; t < na; ++t) {
        const size_t i = act[t];
        const int on = (m[i] < cap) & (var[i] * fudge > (Vi ? Vi[i] : V));
        act[keep] = i;
        keep += (size_t)on;
        pull[np] = i;
        np += (size_t)(on & (m[i] < g));
        if (on && m[i] < mmin) mmin = m[i];
      }
      na = keep;
    }
    a = b;
  }
}

/* Per-query setup: sampling weights w_j = |x_j| a_j (columns with w_j = 0
   are never sampled and contribute exactly 0, so the population is the nnz
   others), and arms with no columns yet. q->w and q->beta must be set. */
ADASM__PRIVATE void adasm__ada_prepare(adasm__ada_q *q,
                                       const adasm_ada_index *ix,
                                       const float *x) {
  size_t i, j, nnz = 0;
  q->ix = ix;
  q->x = x;
  q->n = ix->n;
  q->wlevel = 0;
  q->madds = 0;
  q->tile = adasm__ada_tile_for(ADASM_ISA_AUTO);
  q->expmin = adasm__ada_expmin_for(ADASM_ISA_AUTO);
  q->kern = adasm__k(NULL);
  memset(q->lv_ready, 0, sizeof q->lv_ready);
  for (j = 0; j < ix->d; ++j) {
    const double a = ix->atom[j];
    if (x[j] != 0.0f && a > 0.0) {
      q->w.nzl[nnz++] = j;
      q->w.lw[j] = fabs((double)x[j]) * a; /* in [2e-90, 1e87] */
    }
  }
  q->nnz = nnz;
  for (i = 0; i < ix->n; ++i) {
    q->w.m[i] = 0;
    q->w.mu[i] = 0.0;
    q->w.var[i] = nnz ? HUGE_VAL : 0.0; /* nnz = 0: every logit is exactly 0 */
  }
}

/* Stable LSD radix sort of cnt (key, index) pairs by key ascending: eight
   passes of 8 bits, a pass skipped when every key has the same byte there.
   k2/v2 are scratch of cnt entries; returns the index array that holds the
   result (v or v2). O(cnt), where the heapsort's O(cnt log cnt) cache-
   missing compares took half of a wide head's query (25,088 columns). */
ADASM__PRIVATE size_t *adasm__ada_radix(uint64_t *k, size_t *v, uint64_t *k2,
                                        size_t *v2, size_t cnt) {
  size_t hist[8][256], t;
  unsigned pass;
  if (cnt < 2) return v;
  memset(hist, 0, sizeof hist);
  for (t = 0; t < cnt; ++t)
    for (pass = 0; pass < 8; ++pass) ++hist[pass][(k[t] >> (8 * pass)) & 255u];
  for (pass = 0; pass < 8; ++pass) {
    size_t *h = hist[pass], sum = 0, b;
    uint64_t *tk;
    size_t *tv;
    if (h[(k[0] >> (8 * pass)) & 255u] == cnt) continue; /* one bucket */
    for (b = 0; b < 256; ++b) {
      const size_t c = h[b];
      h[b] = sum;
      sum += c;
    }
    for (t = 0; t < cnt; ++t) {
      const size_t at = h[(k[t] >> (8 * pass)) & 255u]++;
      k2[at] = k[t];
      v2[at] = v[t];
    }
    tk = k; k = k2; k2 = tk;
    tv = v; v = v2; v2 = tv;
  }
  return v;
}

/* One exponential-race order per query: keys w_j / E_j, E_j = -log U_j
   standard exponential from a PCG32 seeded with the caller's seed, drawn in
   column order, sorted descending, ties by lower column first (the columns
   enter in ascending order and the sort is stable). This is the Gumbel-
   top-k order (log w_j + G_j with G_j = -log E_j) without two of its three
   logs: every prefix is a weighted sample without replacement. The keys are
   positive doubles, so their bits sort as integers; rank (rebuilt below)
   is the index scratch. */
ADASM__PRIVATE void adasm__ada_order(adasm__ada_q *q, uint64_t seed) {
  adasm_pcg32 rng;
  uint64_t *kb = q->w.sortk;
  size_t *sorted, t;
  adasm_pcg32_seed(&rng, seed, ADASM__ADA_STREAM);
  for (t = 0; t < q->nnz; ++t) {
    const size_t j = q->w.nzl[t];
    const double u = adasm_pcg32_uniform_open(&rng); /* in (0, 1) */
    const double key = q->w.lw[j] / -log(u); /* in [2e-92, 1e103] */
    uint64_t b;
    memcpy(&b, &key, sizeof b);
    q->w.key[j] = key;
    kb[t] = ~b; /* inverted: the sort is descending */
    q->w.perm[t] = j;
  }
  sorted = adasm__ada_radix(kb, q->w.perm, kb + q->nnz, q->w.rank, q->nnz);
  if (sorted != q->w.perm)
    memcpy(q->w.perm, sorted, q->nnz * sizeof *sorted);
  for (t = 0; t < q->nnz; ++t) q->w.rank[q->w.perm[t]] = t;
  q->wlevel = 0;
  memset(q->lv_ready, 0, sizeof q->lv_ready);
}

/* ---- validation ------------------------------------------------------------ */
ADASM__PRIVATE adasm_result adasm__ada_check(const adasm_ada_index *ix,
                                             const adasm_ada_params *p) {
  if (!ix || !p) return ADASM_ERR_NULL;
  if (!ix->A || !ix->cols || !ix->atom || !ix->colmax) return ADASM_ERR_NULL;
  if (ix->n == 0 || ix->d == 0 || ix->lda < ix->d) return ADASM_ERR_SIZE;
  if (p->k == 0 || p->k > ix->n) return ADASM_ERR_SIZE;
  if (!(p->eps > 0.0 && p->eps < 1.0)) return ADASM_ERR_PARAM; /* NaN too */
  if (!(p->delta > 0.0 && p->delta < 1.0)) return ADASM_ERR_PARAM;
  if (!(p->beta > 0.0f) || !adasm__isfinitef(p->beta)) return ADASM_ERR_PARAM;
  if (!(p->fudge_elim > 0.0) || !adasm__isfinite(p->fudge_elim))
    return ADASM_ERR_PARAM;
  if (!(p->fudge_norm > 0.0) || !adasm__isfinite(p->fudge_norm))
    return ADASM_ERR_PARAM;
  if (!(p->burnin_frac > 0.0 && p->burnin_frac <= 1.0)) return ADASM_ERR_PARAM;
  return ADASM_OK;
}

/* ---- public ------------------------------------------------------------------ */
ADASM_DEF adasm_ada_params adasm_ada_params_default(void) {
  adasm_ada_params p;
  p.k = 1;
  p.eps = 0.3;
  p.delta = 0.1;
  p.beta = 1.0f;
  p.seed = 42u;
  p.fudge_elim = 1.0;
  p.fudge_norm = 1.0;
  p.estimate_best = 0;
  p.burnin_frac = 0.1;
  p.kern = NULL;
  return p;
}

ADASM_DEF adasm_result adasm_ada_index_build(adasm_ada_index *ix,
                                             const float *A, size_t n,
                                             size_t d, size_t lda,
                                             void *alloc_ctx) {
  return adasm_ada_index_build_ex(ix, A, n, d, lda, 0u, alloc_ctx);
}

ADASM_DEF adasm_result adasm_ada_index_build_ex(adasm_ada_index *ix,
                                                const float *A, size_t n,
                                                size_t d, size_t lda,
                                                unsigned flags,
                                                void *alloc_ctx) {
  enum { TILE = 64 };
  adasm_ada_index r;
  size_t elems, bytes_cols, bytes_d, bytes_rows, total, extent, i, j;
  int has_inf = 0;
  const int own = (flags & ADASM_ADA_OWN_ROWS) != 0;
  unsigned char *block, *base;
  if (!ix || !A) return ADASM_ERR_NULL;
  if (n == 0 || d == 0 || lda < d) return ADASM_ERR_SIZE;
  if (flags & ~ADASM_ADA_OWN_ROWS) return ADASM_ERR_PARAM;
  /* A spans (n-1)*lda + d floats; the copy n*d floats plus two d arrays. */
  if (adasm__mul_overflows(n - 1, lda, &extent) || extent > (size_t)-1 - d ||
      adasm__mul_overflows(n, d, &elems) ||
      adasm__mul_overflows(elems, sizeof(float), &bytes_cols) ||
      adasm__mul_overflows(d, sizeof(double), &bytes_d) ||
      bytes_cols > (size_t)-1 / 2 || bytes_d > (size_t)-1 / 8)
    return ADASM_ERR_OVERFLOW;
  bytes_cols = (bytes_cols + 63u) & ~(size_t)63u;
  bytes_d = (bytes_d + 63u) & ~(size_t)63u;
  bytes_rows = own ? bytes_cols : 0u; /* the row copy: n d floats too */
  total = 64u + bytes_cols + 2u * bytes_d;
  if (total < bytes_cols || total > (size_t)-1 - bytes_rows)
    return ADASM_ERR_OVERFLOW;
  total += bytes_rows;
  /* Refuse non-finite entries before allocating: NaN first, then inf. */
  for (i = 0; i < n; ++i) {
    const float *row = A + i * lda;
    for (j = 0; j < d; ++j) {
      if (adasm__isnanf(row[j])) return ADASM_ERR_NAN;
      if (!adasm__isfinitef(row[j])) has_inf = 1;
    }
  }
  if (has_inf) return ADASM_ERR_PARAM;
  block = (unsigned char *)ADASM_MALLOC(total, alloc_ctx);
  if (!block) return ADASM_ERR_NOMEM;
  base = block + ((64u - (size_t)((uintptr_t)block & 63u)) & 63u);
  r.n = n;
  r.d = d;
  r.lda = lda;
  r.A = A;
  r.cols = (float *)(void *)base;
  r.atom = (double *)(void *)(base + bytes_cols);
  r.colmax = (double *)(void *)(base + bytes_cols + bytes_d);
  r.block = block;
  r.alloc_ctx = alloc_ctx;
  if (own) { /* rows of d floats after the column data */
    float *rows = (float *)(void *)(base + bytes_cols + 2u * bytes_d);
    for (i = 0; i < n; ++i) memcpy(rows + i * d, A + i * lda, d * sizeof(float));
    r.A = rows;
    r.lda = d;
  }
  for (j = 0; j < d; ++j) r.atom[j] = r.colmax[j] = 0.0;
  /* Transpose in TILE x TILE blocks so both sides stay in cache. */
  for (i = 0; i < n; i += TILE) {
    const size_t i1 = n - i < TILE ? n : i + TILE;
    size_t j0;
    for (j0 = 0; j0 < d; j0 += TILE) {
      const size_t j1 = d - j0 < TILE ? d : j0 + TILE;
      size_t ii;
      for (ii = i; ii < i1; ++ii) {
        const float *row = A + ii * lda;
        for (j = j0; j < j1; ++j) {
          const double a = fabs((double)row[j]);
          r.cols[j * n + ii] = row[j];
          r.atom[j] += a;
          if (a > r.colmax[j]) r.colmax[j] = a;
        }
      }
    }
  }
  *ix = r;
  return ADASM_OK;
}

ADASM_DEF void adasm_ada_index_free(adasm_ada_index *ix) {
  if (!ix) return;
  if (ix->block) ADASM_FREE(ix->block, ix->alloc_ctx);
  ix->n = ix->d = ix->lda = 0;
  ix->A = NULL;
  ix->cols = NULL;
  ix->atom = ix->colmax = NULL;
  ix->block = ix->alloc_ctx = NULL;
}

ADASM_DEF adasm_result adasm_ada_workspace_size(const adasm_ada_index *ix,
                                                const adasm_ada_params *params,
                                                size_t *bytes) {
  adasm__ada_ws w;
  size_t total;
  adasm_result r;
  if (!bytes) return ADASM_ERR_NULL;
  r = adasm__ada_check(ix, params);
  if (r != ADASM_OK) return r;
  if (!adasm__ada_layout(ix->n, ix->d, params->k, NULL, &w, &total) ||
      total > (size_t)-1 - ADASM__ADA_ALIGN)
    return ADASM_ERR_OVERFLOW;
  *bytes = total + ADASM__ADA_ALIGN; /* room to align the caller's pointer */
  return ADASM_OK;
}

/* Aligns the caller's workspace and lays it out; 0 if too small. */
ADASM__PRIVATE int adasm__ada_carve(const adasm_ada_index *ix, size_t k,
                                    void *work, size_t work_bytes,
                                    adasm__ada_ws *w) {
  size_t total, pad;
  unsigned char *base = (unsigned char *)work;
  if (!work) return 0;
  pad = (ADASM__ADA_ALIGN - (size_t)((uintptr_t)base & (ADASM__ADA_ALIGN - 1))) &
        (ADASM__ADA_ALIGN - 1);
  if (!adasm__ada_layout(ix->n, ix->d, k, NULL, w, &total)) return 0;
  if (work_bytes < pad || work_bytes - pad < total) return 0;
  return adasm__ada_layout(ix->n, ix->d, k, base + pad, w, &total);
}

ADASM__PRIVATE void adasm__ada_fill_nan(const adasm_ada_params *p,
                                        adasm_ada_result *out) {
  size_t t;
  for (t = 0; t < p->k; ++t) {
    out->idx[t] = (size_t)-1;
    out->prob[t] = adasm__nanf();
  }
  out->log_norm = (double)adasm__nanf();
}

/* Writes the k arms of w.res, sorted best first, with p = exp(mu - logS). */
ADASM__PRIVATE void adasm__ada_output(adasm__ada_q *q, size_t k, double logS,
                                      adasm_ada_result *out) {
  size_t t;
  adasm__ada_sort(q->w.res, k, q->w.mu);
  for (t = 0; t < k; ++t) {
    out->idx[t] = q->w.res[t];
    out->prob[t] = (float)exp(q->w.mu[q->w.res[t]] - logS);
  }
  out->log_norm = logS;
}

ADASM_DEF adasm_result adasm_ada_query(const adasm_ada_index *ix,
                                       const adasm_ada_params *params,
                                       const float *x, void *work,
                                       size_t work_bytes,
                                       adasm_ada_result *out) {
  adasm__ada_q q;
  adasm_result r;
  size_t n, d, k, nnz, i, j, t;
  double dp, ep, fe, fn;
  const double cyc0 = ADASM__ADA_CYC();
  int has_nan = 0, has_inf = 0;

  if (!x || !out || !out->idx || !out->prob) return ADASM_ERR_NULL;
  r = adasm__ada_check(ix, params);
  if (r != ADASM_OK) return r;
  n = ix->n;
  d = ix->d;
  k = params->k;
  if (!adasm__ada_carve(ix, k, work, work_bytes, &q.w))
    return ADASM_ERR_WORKSPACE;
  for (j = 0; j < d; ++j) {
    if (adasm__isnanf(x[j])) has_nan = 1;
    else if (!adasm__isfinitef(x[j])) has_inf = 1;
  }
  if (has_nan || has_inf) { /* data errors: nothing stale in the outputs */
    adasm__ada_fill_nan(params, out);
    return has_nan ? ADASM_ERR_NAN : ADASM_ERR_PARAM;
  }

  q.beta = (double)params->beta;
  out->pulls_burnin = out->pulls_elim = out->pulls_best = out->pulls_norm = 0;
  out->rounds = 0;
  /* delta' splits delta over the stages; eps' is the normalizer's share. */
  if (params->estimate_best) {
    dp = params->delta / 3.0;
    ep = params->eps / 4.0;
  } else {
    dp = params->delta / 2.0;
    ep = params->eps;
  }
  fe = params->fudge_elim;
  fn = params->fudge_norm;

  ADASM__ADA_PROF_START();
  adasm__ada_prepare(&q, ix, x);
  q.tile = adasm__ada_tile_for(adasm_kernels_isa(params->kern));
  q.expmin = adasm__ada_expmin_for(adasm_kernels_isa(params->kern));
  q.kern = adasm__k(params->kern);
  out->nnz = nnz = q.nnz;

  if (k == n) { /* every row is returned with its exact p: just compute */
    for (i = 0; i < n; ++i) {
      adasm__ada_exact(&q, i, &out->pulls_best);
      q.w.res[i] = i;
    }
    adasm__ada_output(&q, k, adasm__ada_lse(q.expmin, q.w.mu, n, 1.0), out);
  } else {
    /* ln(d) of the elimination's union bound over rounds, with d = nnz (the
       most columns an arm can use), at least 1 (ln 3 > 1). */
    const double lnd = nnz > 2 ? log((double)nnz) : 1.0;
    const double Le = log(6.0 * (double)n * lnd / dp);
    const double V0 = 1.0 / (17.0 * log(6.0 * (double)n / dp));
    double sigma2, v, logSa, logSg, logc, loge, Lb;
    size_t cap_b, cnt, kk, nres = 0;

    adasm__ada_order(&q, params->seed);

    /* 1. Burn-in: every arm to V0 (normalizer fudge), columns capped at
       burnin_frac of nnz, rounded up to a grid step (16, 24, 36, 54, ...) so
       the later stages continue on the same grid instead of recomputing
       every arm for a couple of columns. */
    {
      const double frac_cols = params->burnin_frac * (double)nnz;
      cap_b = ADASM__ADA_GRID0;
      while ((double)cap_b < frac_cols && cap_b < nnz) cap_b += (cap_b + 1) / 2;
      if (cap_b > nnz) cap_b = nnz;
    }
    for (i = 0; i < n; ++i) q.w.set[i] = i;
    ADASM__ADA_PROF(0);
    adasm__ada_pull_to_var(&q, q.w.set, n, NULL, V0, fn, cap_b,
                           &out->pulls_burnin);
    ADASM__ADA_PROF(1);

    /* 2. Round-based elimination for the top k (Hillel et al. 2013, Alg. 3,
       with accepts for k > 1). Radius r_i = sqrt(2 fe v_i Le); with k'
       arms still to find among C: reject i if U_i < (k'-th largest L), accept
       i if L_i > ((k'+1)-th largest U). v starts at sigma^2 / 4, where
       sigma^2 = beta^2 W sum_j |x_j| colmax_j^2 / a_j bounds the variance of
       a one-column importance-sampled estimate of any arm. */
    {
      double W = 0.0, s2 = 0.0;
      for (t = 0; t < nnz; ++t) {
        const size_t jj = q.w.nzl[t];
        const double ax = fabs((double)x[jj]);
        W += ax * ix->atom[jj];
        s2 += ax * ix->colmax[jj] * (ix->colmax[jj] / ix->atom[jj]);
      }
      sigma2 = q.beta * q.beta * W * s2;
    }
    v = ADASM__ADA_CI_INIT * sigma2;
    cnt = n;
    kk = k;
    for (;;) {
      double thr_lo, thr_hi;
      size_t keep = 0, acc = 0, s;
      int any_r = 0;
      ++out->rounds;
      adasm__ada_pull_to_var(&q, q.w.set, cnt, NULL, v, fe, nnz,
                             &out->pulls_elim);
      for (s = 0; s < cnt; ++s) {
        const size_t a = q.w.set[s];
        const double rad = sqrt(2.0 * fe * q.w.var[a] * Le);
        q.w.lo[s] = q.w.mu[a] - rad;
        q.w.hi[s] = q.w.mu[a] + rad;
        if (rad > 0.0) any_r = 1;
      }
      if (!any_r) { /* all remaining arms are certain: rank them */
        adasm__ada_sort(q.w.set, cnt, q.w.mu);
        for (s = 0; s < kk; ++s) q.w.res[nres++] = q.w.set[s];
        break;
      }
      thr_lo = adasm__ada_kth_largest(q.w.lo, cnt, kk, q.w.heap);
      thr_hi = adasm__ada_kth_largest(q.w.hi, cnt, kk + 1, q.w.heap);
      for (s = 0; s < cnt; ++s) {
        const size_t a = q.w.set[s];
        if (q.w.hi[s] < thr_lo) continue; /* k' arms surely above it */
        if (q.w.lo[s] > thr_hi) {         /* surely among the top k' */
          q.w.res[nres++] = a;
          ++acc;
          continue;
        }
        q.w.set[keep++] = a;
      }
      kk -= acc;
      if (kk == 0) break;
      if (keep == kk) {
        for (s = 0; s < keep; ++s) q.w.res[nres++] = q.w.set[s];
        break;
      }
      v *= ADASM__ADA_CI_DECAY;
      if (keep == cnt) {
        /* Nothing decided with these estimates, so every round whose v is
           at least the largest fe var_i of a pullable arm pulls nothing and
           decides nothing again: count them without running them (on the
           word head ~8 of 14 rounds over ~4,500 arms). Same answers. */
        double vmax = 0.0;
        for (s = 0; s < keep; ++s) {
          const size_t a = q.w.set[s];
          if (q.w.m[a] < nnz && q.w.var[a] * fe > vmax) vmax = q.w.var[a] * fe;
        }
        while (vmax > 0.0 && v >= vmax) {
          v *= ADASM__ADA_CI_DECAY;
          ++out->rounds;
        }
      }
      cnt = keep;
    }

    ADASM__ADA_PROF(2);
    /* 3. The returned arms' logits: exact, or to variance
       eps'^2 / (32 ln(2/delta')) (no fudge, as the reference). */
    if (!params->estimate_best) {
      for (t = 0; t < k; ++t) adasm__ada_exact(&q, q.w.res[t], &out->pulls_best);
    } else {
      adasm__ada_pull_to_var(&q, q.w.res, k, NULL,
                             ep * ep / (32.0 * log(2.0 / dp)), 1.0, nnz,
                             &out->pulls_best);
    }

    ADASM__ADA_PROF(3);
    /* 4. Normalizer, two stages (Algorithm 2), in log space. From the
       current estimates: C_i = sqrt(2 Lb fn v_i), log alpha_i = mu_i - C_i,
       log gamma_i = log alpha_i / 2, V1_i = min(sum gamma / (c gamma_i),
       sum alpha / (e alpha_i)) with c = 16 sqrt2 Lb / eps' (sum gamma)^2 /
       sum alpha and e = 16 ln(12/delta') / eps'^2. */
    Lb = log(6.0 * (double)n / dp);
    {
      double mx = -HUGE_VAL; /* both logsumexps from this one maximum */
      for (i = 0; i < n; ++i) {
        const double h = q.w.mu[i] - sqrt(2.0 * Lb * fn * q.w.var[i]);
        q.w.hi[i] = h;
        if (h > mx) mx = h;
      }
      if (mx > -HUGE_VAL) {
        logSa = mx + log(q.expmin(q.w.hi, n, -mx, 1.0, HUGE_VAL, 0.0, NULL));
        logSg = 0.5 * mx +
                log(q.expmin(q.w.hi, n, -0.5 * mx, 0.5, HUGE_VAL, 0.0, NULL));
      } else {
        logSa = logSg = mx;
      }
    }
    logc = log(16.0 * sqrt(2.0) * Lb / ep) + 2.0 * logSg - logSa;
    loge = log(16.0 * log(12.0 / dp) / (ep * ep));
    /* V1_i = exp(min(va, vb)), va = logSg - logc - hi_i / 2, vb = logSa -
       loge - hi_i (inf: no pulls needed) */
    q.expmin(q.w.hi, n, logSg - logc, -0.5, logSa - loge, -1.0, q.w.lo);
    for (i = 0; i < n; ++i) q.w.set[i] = i;
    adasm__ada_pull_to_var(&q, q.w.set, n, q.w.lo, 0.0, fn, nnz,
                           &out->pulls_norm);

    /* 5. log S_hat = logsumexp(mu_hat); p_hat_i = exp(mu_i - log S_hat). */
    adasm__ada_output(&q, k, adasm__ada_lse(q.expmin, q.w.mu, n, 1.0), out);
  }
  out->pulls_total =
      out->pulls_burnin + out->pulls_elim + out->pulls_best + out->pulls_norm;
  out->madds = q.madds;
  ADASM__ADA_PROF(4);
  ADASM__ADA_CYC_ADD(3, cyc0);
  return ADASM_OK;
}

/* ---- calibration -------------------------------------------------------------- */
typedef struct adasm__ada_cal {
  size_t qws;        /* bytes of the query workspace (first in work) */
  size_t off_mu, off_ord, off_stamp, off_tidx, off_tp, off_oidx, off_op;
  size_t total;
} adasm__ada_cal;

ADASM__PRIVATE int adasm__ada_cal_layout(const adasm_ada_index *ix,
                                         const adasm_ada_params *p, size_t q,
                                         adasm__ada_cal *c) {
  size_t off, qk;
  if (adasm_ada_workspace_size(ix, p, &c->qws) != ADASM_OK) return 0;
  if (adasm__mul_overflows(q, p->k, &qk)) return 0;
  off = c->qws;
  if (off > (size_t)-1 - ADASM__ADA_ALIGN) return 0;
  off = (off + (ADASM__ADA_ALIGN - 1)) & ~(size_t)(ADASM__ADA_ALIGN - 1);
  if (!adasm__ada_take(&off, ix->n, sizeof(double), &c->off_mu) ||
      !adasm__ada_take(&off, ix->n, sizeof(size_t), &c->off_ord) ||
      !adasm__ada_take(&off, ix->n, sizeof(size_t), &c->off_stamp) ||
      !adasm__ada_take(&off, qk, sizeof(size_t), &c->off_tidx) ||
      !adasm__ada_take(&off, qk, sizeof(double), &c->off_tp) ||
      !adasm__ada_take(&off, p->k, sizeof(size_t), &c->off_oidx) ||
      !adasm__ada_take(&off, p->k, sizeof(float), &c->off_op) ||
      off > (size_t)-1 - ADASM__ADA_ALIGN)
    return 0;
  c->total = off + ADASM__ADA_ALIGN;
  return 1;
}

ADASM_DEF adasm_result adasm_ada_calibrate_workspace_size(
    const adasm_ada_index *ix, const adasm_ada_params *params, size_t q,
    size_t *bytes) {
  adasm__ada_cal c;
  adasm_result r;
  if (!bytes) return ADASM_ERR_NULL;
  r = adasm__ada_check(ix, params);
  if (r != ADASM_OK) return r;
  if (q == 0) return ADASM_ERR_SIZE;
  if (!adasm__ada_cal_layout(ix, params, q, &c)) return ADASM_ERR_OVERFLOW;
  *bytes = c.total;
  return ADASM_OK;
}

/* Number of failures of the q queries with these fudge factors; stops
   counting once `limit` is exceeded (the answer is then limit + 1). */
ADASM__PRIVATE size_t adasm__ada_cal_failures(
    const adasm_ada_index *ix, const adasm_ada_params *base, const float *X,
    size_t q, size_t ldx, unsigned char *w, const adasm__ada_cal *c,
    double fe, double fn, size_t limit) {
  adasm_ada_params p = *base;
  adasm_ada_result res;
  const size_t k = base->k;
  const size_t *tidx = (const size_t *)(const void *)(w + c->off_tidx);
  const double *tp = (const double *)(const void *)(w + c->off_tp);
  size_t *stamp = (size_t *)(void *)(w + c->off_stamp);
  size_t t, s, fails = 0;
  p.fudge_elim = fe;
  p.fudge_norm = fn;
  res.idx = (size_t *)(void *)(w + c->off_oidx);
  res.prob = (float *)(void *)(w + c->off_op);
  for (t = 0; t < q && fails <= limit; ++t) {
    int ok = 1;
    p.seed = base->seed + (uint64_t)t * ADASM__ADA_PHI;
    if (adasm_ada_query(ix, &p, X + t * ldx, w, c->qws, &res) != ADASM_OK) {
      ++fails;
      continue;
    }
    /* stamp[i] = position of i in the true top-k of query t, plus t*k+1. */
    for (s = 0; s < k; ++s) stamp[tidx[t * k + s]] = t * k + s + 1;
    for (s = 0; s < k && ok; ++s) {
      const size_t i = res.idx[s], st = stamp[i];
      if (st <= t * k || st > t * k + k) ok = 0; /* not in the true set */
      else {
        const double p_true = tp[st - 1];
        if (!(fabs((double)res.prob[s] - p_true) <= base->eps * p_true)) ok = 0;
      }
    }
    if (!ok) ++fails;
  }
  return fails;
}

/* The largest failure count c with P(Binomial(q, delta) <= c) <= alpha:
   observing at most c failures rejects "failure rate >= delta" at level
   alpha. Returns 0 when even c = 0 cannot (q < ln(alpha) / ln(1 - delta)).
   Log space, so large q does not underflow. */
ADASM__PRIVATE int adasm__ada_cal_limit(size_t q, double delta, size_t *limit) {
  const double la = log(ADASM__ADA_CAL_ALPHA);
  double lpmf = (double)q * log1p(-delta), lcdf = lpmf;
  size_t c = 0;
  if (lcdf > la) return 0;
  while (c < q) {
    double next;
    lpmf += log((double)(q - c) / (double)(c + 1)) + log(delta) - log1p(-delta);
    next = lcdf > lpmf ? lcdf + log1p(exp(lpmf - lcdf)) : lpmf + log1p(exp(lcdf - lpmf));
    if (next > la) break;
    lcdf = next;
    ++c;
  }
  *limit = c;
  return 1;
}

/* Smallest 10^e, e in [-6, 0], with failures <= limit (bisection on e). */
ADASM__PRIVATE double adasm__ada_cal_search(
    const adasm_ada_index *ix, const adasm_ada_params *base, const float *X,
    size_t q, size_t ldx, unsigned char *w, const adasm__ada_cal *c,
    double other, int search_norm, size_t limit) {
  double lo = -6.0, hi = 0.0; /* hi: always passing or the theory value 1 */
  while (hi - lo > 0.01) {
    const double mid = 0.5 * (lo + hi), f = pow(10.0, mid);
    const size_t fails =
        search_norm
            ? adasm__ada_cal_failures(ix, base, X, q, ldx, w, c, other, f, limit)
            : adasm__ada_cal_failures(ix, base, X, q, ldx, w, c, f, other, limit);
    if (fails <= limit) hi = mid;
    else lo = mid;
  }
  return pow(10.0, hi);
}

ADASM_DEF adasm_result adasm_ada_calibrate(const adasm_ada_index *ix,
                                           const adasm_ada_params *params,
                                           const float *X, size_t q,
                                           size_t ldx, void *work,
                                           size_t work_bytes,
                                           double *fudge_elim,
                                           double *fudge_norm) {
  adasm__ada_cal c;
  adasm_result r;
  unsigned char *w;
  size_t pad, t, i, j, s, limit, n, d, k;
  double *mu;
  size_t *ord, *tidx, *stamp;
  double *tp;
  adasm__ada_expmin_fn expmin;
  if (!X || !fudge_elim || !fudge_norm) return ADASM_ERR_NULL;
  r = adasm__ada_check(ix, params);
  if (r != ADASM_OK) return r;
  if (q == 0 || ldx < ix->d) return ADASM_ERR_SIZE;
  if (!adasm__ada_cal_layout(ix, params, q, &c)) return ADASM_ERR_OVERFLOW;
  if (!work) return ADASM_ERR_WORKSPACE;
  pad = (ADASM__ADA_ALIGN - (size_t)((uintptr_t)work & (ADASM__ADA_ALIGN - 1))) &
        (ADASM__ADA_ALIGN - 1);
  if (work_bytes < pad || work_bytes - pad < c.total - ADASM__ADA_ALIGN)
    return ADASM_ERR_WORKSPACE;
  w = (unsigned char *)work + pad;
  n = ix->n;
  d = ix->d;
  k = params->k;
  mu = (double *)(void *)(w + c.off_mu);
  ord = (size_t *)(void *)(w + c.off_ord);
  stamp = (size_t *)(void *)(w + c.off_stamp);
  tidx = (size_t *)(void *)(w + c.off_tidx);
  tp = (double *)(void *)(w + c.off_tp);
  for (i = 0; i < n; ++i) stamp[i] = 0;
  /* the caller's ISA, as its queries use (params->kern; NULL = best) */
  expmin = adasm__ada_expmin_for(adasm_kernels_isa(params->kern));

  /* Exact answers once: logits in double, top-k (ties: lower index), p. */
  for (t = 0; t < q; ++t) {
    const float *x = X + t * ldx;
    double lse;
    for (j = 0; j < d; ++j)
      if (adasm__isnanf(x[j])) {
        *fudge_elim = *fudge_norm = (double)adasm__nanf();
        return ADASM_ERR_NAN;
      } else if (!adasm__isfinitef(x[j])) {
        *fudge_elim = *fudge_norm = (double)adasm__nanf();
        return ADASM_ERR_PARAM;
      }
    for (i = 0; i < n; ++i) {
      const float *row = ix->A + i * ix->lda;
      double acc = 0.0;
      for (j = 0; j < d; ++j) acc += (double)row[j] * (double)x[j];
      mu[i] = (double)params->beta * acc;
      ord[i] = i;
    }
    adasm__ada_sort(ord, n, mu);
    lse = adasm__ada_lse(expmin, mu, n, 1.0);
    for (s = 0; s < k; ++s) {
      tidx[t * k + s] = ord[s];
      tp[t * k + s] = exp(mu[ord[s]] - lse);
    }
  }

  /* A factor is accepted only if its failure count certifies a failure
     rate below delta (one-sided binomial test at level ADASM__ADA_CAL_ALPHA);
     "observed rate <= delta" alone gives held-out rates above delta (see
     NOTES.md). Too few queries to certify anything: keep the theory. */
  if (!adasm__ada_cal_limit(q, params->delta, &limit)) {
    *fudge_elim = *fudge_norm = 1.0;
    return ADASM_OK;
  }
  *fudge_elim = adasm__ada_cal_search(ix, params, X, q, ldx, w, &c, 1.0, 0,
                                      limit);
  *fudge_norm = adasm__ada_cal_search(ix, params, X, q, ldx, w, &c,
                                      *fudge_elim, 1, limit);
  return ADASM_OK;
}


/* >>hs --------------------------------------------------------------------
   Hierarchical softmax: fastText's tree, a strict .bin reader, and top-k.
   Why it looks like this:
   - The tree is rebuilt from the counts rather than stored: a fastText .bin
     holds only counts and the output matrix, and fastText rebuilds it at
     load time; matching its node numbering is what makes output row i the
     vector of internal node n+i. The construction is transcribed from the
     algorithm (two queues, strict "<" so ties go to internal nodes, first
     node taken = left = code 0), including its sentinel: internal nodes
     start at count 1e15, which is "no node yet" only while every real count
     stays below it; counts are therefore required to sum below 1e15, which
     also keeps the int64 sums from overflowing.
   - Top-k is best-first, not fastText's depth-first search: a path's
     log-probability can only fall going down, so the most probable frontier
     node is expanded next and the first k leaves popped are the answer. A
     depth-first search needs k leaves before its bound prunes anything and
     visits many more nodes for the same answer.
   - Probabilities are exact: log sigmoid in double by the stable form, no
     +1e-5. fastText adds 1e-5 inside every log (std_log) so that its
     sigmoid, which can round to 0 or 1 in float, never gives log 0; that
     biases every score upwards by up to 1e-5 / s per step and ranks classes
     slightly differently from their probabilities. The library's default
     answers the mathematical question; params.fasttext = 1 replays
     fastText's own search and scoring for drop-in agreement.
   - The reader runs in two passes: the first checks the whole file (every
     size against what is left of the buffer, no allocation, so lying counts
     cannot trigger a huge malloc), the second copies. Integers and floats
     are decoded little-endian byte by byte (fastText writes host order; all
     its platforms are little-endian) so unaligned input is fine.
   - Node vectors are copied into rows padded to 64 bytes: one dot product
     touches dim/16 cache lines and never a split line. fastText numbers
     internal nodes in creation order, so the top of the tree (hot for every
     query) is the last rows, contiguous, and stays in cache. Below it a
     node costs a cache and TLB miss (48565 x 256 floats is 50 MB): on the
     real word head about 80 ns per node in a stream of queries, 40 ns when
     warm. Software prefetch of the two children's rows when they are
     pushed was measured and gained nothing (the next pop follows too soon);
     the log-sigmoid in double is about 4 ns of that. */
#define ADASM__HS_MAX_N ((size_t)1 << 30) /* 2n - 1 nodes fit int32 */
#define ADASM__HS_SENTINEL 1000000000000000LL /* fastText's 1e15 */
#define ADASM__HS_ALIGN 64
#define ADASM__HS_FT_MAGIC 793712314
#define ADASM__HS_FT_VERSION 12
#define ADASM__HS_FT_LOSS_HS 1
#define ADASM__HS_FT_SUP 3
#define ADASM__HS_FT_EPS 1e-5 /* fastText's std_log: log(x + 1e-5) */

/* count*elem bytes at *off, rounded up to 64; 0 on overflow. */
ADASM__PRIVATE int adasm__hs_take(size_t *off, size_t count, size_t elem,
                                  size_t *at) {
  size_t bytes;
  if (adasm__mul_overflows(count, elem, &bytes)) return 0;
  if (bytes > (size_t)-1 - (ADASM__HS_ALIGN - 1)) return 0;
  bytes = (bytes + (ADASM__HS_ALIGN - 1)) & ~(size_t)(ADASM__HS_ALIGN - 1);
  if (*off > (size_t)-1 - bytes) return 0;
  *at = *off;
  *off += bytes;
  return 1;
}

/* Offsets of the model's arrays inside its block (from a 64-byte aligned
   base). 0 if a size overflows. */
typedef struct adasm__hs_lay {
  size_t vec, count, name, parent, child, code, total;
} adasm__hs_lay;

ADASM__PRIVATE int adasm__hs_layout(size_t n, size_t ldv, size_t nnames,
                                    adasm__hs_lay *l) {
  size_t off = 0, rows;
  if (adasm__mul_overflows(n - 1, ldv, &rows)) return 0;
  if (!adasm__hs_take(&off, rows, sizeof(float), &l->vec)) return 0;
  if (!adasm__hs_take(&off, 2 * n - 1, sizeof(int64_t), &l->count)) return 0;
  if (!adasm__hs_take(&off, nnames, sizeof(size_t), &l->name)) return 0;
  if (!adasm__hs_take(&off, 2 * n - 1, sizeof(int32_t), &l->parent)) return 0;
  if (!adasm__hs_take(&off, 2 * (n - 1), sizeof(int32_t), &l->child)) return 0;
  if (!adasm__hs_take(&off, 2 * n - 1, 1, &l->code)) return 0;
  if (off > (size_t)-1 - ADASM__HS_ALIGN) return 0;
  l->total = off + ADASM__HS_ALIGN; /* room to align the block */
  return 1;
}

/* Allocates the block for n classes of dim floats (nnames dictionary
   names) and points m's arrays into it; m's other fields are zeroed. */
ADASM__PRIVATE adasm_result adasm__hs_alloc(adasm_hs_model *m, size_t n,
                                            size_t dim, size_t nnames,
                                            void *alloc_ctx) {
  adasm__hs_lay l;
  size_t ldv;
  unsigned char *block, *base;
  if (dim > (size_t)-1 - 15u) return ADASM_ERR_OVERFLOW;
  ldv = (dim + 15u) & ~(size_t)15u;
  if (!adasm__hs_layout(n, ldv, nnames, &l)) return ADASM_ERR_OVERFLOW;
  block = (unsigned char *)ADASM_MALLOC(l.total, alloc_ctx);
  if (!block) return ADASM_ERR_NOMEM;
  base = block + ((ADASM__HS_ALIGN -
                   (size_t)((uintptr_t)block & (ADASM__HS_ALIGN - 1))) &
                  (ADASM__HS_ALIGN - 1));
  memset(m, 0, sizeof *m);
  m->nlabels = n;
  m->dim = dim;
  m->root = 2 * n - 2;
  m->ldv = ldv;
  m->vec = (float *)(void *)(base + l.vec);
  m->count = (int64_t *)(void *)(base + l.count);
  m->ft_name = nnames ? (size_t *)(void *)(base + l.name) : NULL;
  m->parent = (int32_t *)(void *)(base + l.parent);
  m->child = (int32_t *)(void *)(base + l.child);
  m->code = (uint8_t *)(void *)(base + l.code);
  m->block = block;
  m->alloc_ctx = alloc_ctx;
  return ADASM_OK;
}

/* fastText's buildTree on m->count[0..n-1] (validated: >= 0, sum < 1e15).
   Leaves are consumed from the end (smallest count when sorted), internal
   nodes in creation order; `node` never passes i because, with every real
   count below the sentinel, a leaf wins whenever no internal node is
   ready. */
ADASM__PRIVATE void adasm__hs_tree(adasm_hs_model *m) {
  const size_t n = m->nlabels, total = 2 * n - 1;
  int64_t *cnt = m->count;
  size_t i, node = n;
  int64_t leaf = (int64_t)n - 1;
  for (i = 0; i < total; ++i) {
    m->parent[i] = -1;
    m->code[i] = 0;
  }
  for (i = n; i < total; ++i) cnt[i] = ADASM__HS_SENTINEL;
  for (i = n; i < total; ++i) {
    size_t pick[2], j;
    for (j = 0; j < 2; ++j) {
      if (leaf >= 0 && cnt[leaf] < cnt[node]) pick[j] = (size_t)leaf--;
      else pick[j] = node++;
    }
    ADASM_ASSERT(pick[0] < i && pick[1] < i);
    m->child[2 * (i - n)] = (int32_t)pick[0];
    m->child[2 * (i - n) + 1] = (int32_t)pick[1];
    cnt[i] = cnt[pick[0]] + cnt[pick[1]];
    m->parent[pick[0]] = (int32_t)i;
    m->parent[pick[1]] = (int32_t)i;
    m->code[pick[1]] = 1;
  }
}

/* Running-sum check shared by the builder and the reader. */
ADASM__PRIVATE int adasm__hs_count_ok(int64_t c, int64_t *sum) {
  if (c < 0 || c >= ADASM__HS_SENTINEL - *sum) return 0;
  *sum += c;
  return 1;
}

ADASM_DEF adasm_result adasm_hs_build(adasm_hs_model *m, const int64_t *counts,
                                      size_t nlabels,
                                      const float *node_vectors, size_t dim,
                                      size_t ld, void *alloc_ctx) {
  adasm_hs_model r;
  adasm_result e;
  size_t i, j, extent;
  int64_t sum = 0;
  int has_inf = 0;
  if (!m || !counts || (nlabels > 1 && !node_vectors)) return ADASM_ERR_NULL;
  if (nlabels == 0 || nlabels > ADASM__HS_MAX_N || dim == 0 || ld < dim)
    return ADASM_ERR_SIZE;
  for (i = 0; i < nlabels; ++i)
    if (!adasm__hs_count_ok(counts[i], &sum)) return ADASM_ERR_PARAM;
  /* the vectors span (n-2) ld + dim floats */
  if (nlabels > 1 && (adasm__mul_overflows(nlabels - 2, ld, &extent) ||
                      extent > (size_t)-1 - dim))
    return ADASM_ERR_OVERFLOW;
  for (i = 0; i + 1 < nlabels; ++i) {
    const float *row = node_vectors + i * ld;
    for (j = 0; j < dim; ++j) {
      if (adasm__isnanf(row[j])) return ADASM_ERR_NAN;
      if (!adasm__isfinitef(row[j])) has_inf = 1;
    }
  }
  if (has_inf) return ADASM_ERR_PARAM;
  e = adasm__hs_alloc(&r, nlabels, dim, 0, alloc_ctx);
  if (e != ADASM_OK) return e;
  for (i = 0; i + 1 < nlabels; ++i) {
    float *dst = r.vec + i * r.ldv;
    memcpy(dst, node_vectors + i * ld, dim * sizeof(float));
    for (j = dim; j < r.ldv; ++j) dst[j] = 0.0f;
  }
  memcpy(r.count, counts, nlabels * sizeof(int64_t));
  adasm__hs_tree(&r);
  *m = r;
  return ADASM_OK;
}

ADASM_DEF void adasm_hs_free(adasm_hs_model *m) {
  if (!m) return;
  if (m->block) ADASM_FREE(m->block, m->alloc_ctx);
  memset(m, 0, sizeof *m);
}

ADASM_DEF const char *adasm_hs_label_name(const adasm_hs_model *m,
                                          const void *buf, size_t label) {
  if (!m || !buf || !m->ft_name || label >= m->nlabels ||
      m->ft_label_base + label >= m->ft_nentries)
    return NULL;
  return (const char *)buf + m->ft_name[m->ft_label_base + label];
}

/* ---- fastText .bin reader ---------------------------------------------- */
typedef struct adasm__hs_rd {
  const unsigned char *p;
  size_t len, off;
} adasm__hs_rd;

/* What pass 1 learns; pass 2 relies on it. */
typedef struct adasm__hs_ft {
  size_t dim, nentries, nwords, osz, base; /* base: entry of class 0 */
  size_t dict_off, in_off, in_rows, out_off;
  int model;
} adasm__hs_ft;

ADASM__PRIVATE uint32_t adasm__hs_le32(const unsigned char *p) {
  return (uint32_t)p[0] | ((uint32_t)p[1] << 8) | ((uint32_t)p[2] << 16) |
         ((uint32_t)p[3] << 24);
}
ADASM__PRIVATE int adasm__hs_i32(adasm__hs_rd *r, int32_t *v) {
  uint32_t u;
  if (r->len - r->off < 4) return 0;
  u = adasm__hs_le32(r->p + r->off);
  r->off += 4;
  /* two's complement without implementation-defined conversions */
  *v = u <= 0x7fffffffu ? (int32_t)u : -(int32_t)(~u) - 1;
  return 1;
}
ADASM__PRIVATE int adasm__hs_i64(adasm__hs_rd *r, int64_t *v) {
  uint64_t u;
  if (r->len - r->off < 8) return 0;
  u = (uint64_t)adasm__hs_le32(r->p + r->off) |
      ((uint64_t)adasm__hs_le32(r->p + r->off + 4) << 32);
  r->off += 8;
  *v = u <= 0x7fffffffffffffffull ? (int64_t)u : -(int64_t)(~u) - 1;
  return 1;
}
ADASM__PRIVATE int adasm__hs_u8(adasm__hs_rd *r, unsigned *v) {
  if (r->len - r->off < 1) return 0;
  *v = r->p[r->off++];
  return 1;
}

#define ADASM__HS_FAIL(code, msg)                                             \
  do {                                                                         \
    if (why) *why = (msg);                                                     \
    return (code);                                                             \
  } while (0)

/* A DenseMatrix header (int64 m, n) that must be rows x dim, and its data,
   which must fit in what is left. On success r->off is past the data and
   *data_off at its start. */
ADASM__PRIVATE adasm_result adasm__hs_matrix(adasm__hs_rd *r, size_t rows,
                                             size_t dim, size_t *data_off,
                                             const char *what_trunc,
                                             const char *what_shape,
                                             const char **why) {
  int64_t mm, nn;
  size_t elems, bytes;
  if (!adasm__hs_i64(r, &mm) || !adasm__hs_i64(r, &nn))
    ADASM__HS_FAIL(ADASM_ERR_SIZE, what_trunc);
  if (mm < 0 || nn < 0 || (uint64_t)mm != (uint64_t)rows ||
      (uint64_t)nn != (uint64_t)dim)
    ADASM__HS_FAIL(ADASM_ERR_PARAM, what_shape);
  if (adasm__mul_overflows(rows, dim, &elems) ||
      adasm__mul_overflows(elems, sizeof(float), &bytes) ||
      r->len - r->off < bytes)
    ADASM__HS_FAIL(ADASM_ERR_SIZE, what_trunc);
  *data_off = r->off;
  r->off += bytes;
  return ADASM_OK;
}

/* Pass 1: validates the whole buffer, allocates nothing. */
ADASM__PRIVATE adasm_result adasm__hs_ft_check(const unsigned char *buf,
                                               size_t len, adasm__hs_ft *ft,
                                               const char **why) {
  adasm__hs_rd r;
  int32_t a[12], size, nwords, nlabels;
  int64_t ntokens, prune, sum = 0, i64;
  unsigned flag;
  size_t i, j, osz, first, elems;
  adasm_result e;
  r.p = buf;
  r.len = len;
  r.off = 0;
  /* header: magic, version; Args: 12 int32 and the double t */
  if (!adasm__hs_i32(&r, &a[0]) || !adasm__hs_i32(&r, &a[1]))
    ADASM__HS_FAIL(ADASM_ERR_SIZE, "truncated: the file ends in its header");
  if (a[0] != ADASM__HS_FT_MAGIC)
    ADASM__HS_FAIL(ADASM_ERR_PARAM, "not a fastText model (bad magic)");
  if (a[1] != ADASM__HS_FT_VERSION)
    ADASM__HS_FAIL(ADASM_ERR_PARAM,
                   "unsupported fastText file version (only 12, fastText 0.9)");
  for (i = 0; i < 12; ++i)
    if (!adasm__hs_i32(&r, &a[i]))
      ADASM__HS_FAIL(ADASM_ERR_SIZE,
                     "truncated: the file ends in its arguments");
  if (r.len - r.off < 8)
    ADASM__HS_FAIL(ADASM_ERR_SIZE,
                   "truncated: the file ends in its arguments");
  r.off += 8; /* t, the sampling threshold: not used */
  /* a: dim ws epoch minCount neg wordNgrams loss model bucket minn maxn
     lrUpdateRate */
  if (a[0] <= 0) ADASM__HS_FAIL(ADASM_ERR_PARAM, "dim is not positive");
  if (a[6] < 1 || a[6] > 4)
    ADASM__HS_FAIL(ADASM_ERR_PARAM, "unknown loss in the model arguments");
  if (a[6] != ADASM__HS_FT_LOSS_HS)
    ADASM__HS_FAIL(ADASM_ERR_PARAM,
                   "not a hierarchical-softmax model "
                   "(trained without -loss hs)");
  if (a[7] < 1 || a[7] > 3)
    ADASM__HS_FAIL(ADASM_ERR_PARAM,
                   "unknown model type in the model arguments");
  if (a[8] < 0) ADASM__HS_FAIL(ADASM_ERR_PARAM, "negative bucket count");
  ft->dim = (size_t)a[0];
  ft->model = a[7];

  /* Dictionary: size, nwords, nlabels, ntokens, pruneidx_size, entries */
  if (!adasm__hs_i32(&r, &size) || !adasm__hs_i32(&r, &nwords) ||
      !adasm__hs_i32(&r, &nlabels) || !adasm__hs_i64(&r, &ntokens) ||
      !adasm__hs_i64(&r, &prune))
    ADASM__HS_FAIL(ADASM_ERR_SIZE,
                   "truncated: the file ends in the dictionary");
  if (size < 0 || nwords < 0 || nlabels < 0 ||
      (int64_t)nwords + (int64_t)nlabels != (int64_t)size)
    ADASM__HS_FAIL(ADASM_ERR_PARAM,
                   "dictionary sizes disagree (size != nwords + nlabels)");
  if (ntokens < 0) ADASM__HS_FAIL(ADASM_ERR_PARAM, "negative token count");
  if (prune < -1) ADASM__HS_FAIL(ADASM_ERR_PARAM, "bad pruned-index size");
  /* each entry takes at least 10 bytes: a 1-byte string, NUL, int64, int8 */
  if ((size_t)size > (r.len - r.off) / 10)
    ADASM__HS_FAIL(ADASM_ERR_SIZE,
                   "truncated: the dictionary is larger than the file");
  ft->nentries = (size_t)size;
  ft->nwords = (size_t)nwords;
  if (ft->model == ADASM__HS_FT_SUP) {
    osz = (size_t)nlabels;
    first = (size_t)nwords;
  } else {
    osz = (size_t)nwords;
    first = 0;
  }
  if (osz == 0)
    ADASM__HS_FAIL(ADASM_ERR_SIZE, "the model has no classes (no labels)");
  if (osz > ADASM__HS_MAX_N)
    ADASM__HS_FAIL(ADASM_ERR_SIZE, "more than 2^30 classes");
  ft->osz = osz;
  ft->base = first;
  ft->dict_off = r.off;
  for (i = 0; i < (size_t)size; ++i) {
    const unsigned char *s = r.p + r.off;
    const void *nul = r.off < r.len ? memchr(s, 0, r.len - r.off) : NULL;
    size_t sl;
    if (!nul)
      ADASM__HS_FAIL(ADASM_ERR_SIZE,
                   "truncated: the file ends in the dictionary");
    sl = (size_t)((const unsigned char *)nul - s);
    if (sl == 0) ADASM__HS_FAIL(ADASM_ERR_PARAM, "empty dictionary entry");
    r.off += sl + 1;
    if (!adasm__hs_i64(&r, &i64) || !adasm__hs_u8(&r, &flag))
      ADASM__HS_FAIL(ADASM_ERR_SIZE,
                   "truncated: the file ends in the dictionary");
    if (i64 < 0) ADASM__HS_FAIL(ADASM_ERR_PARAM, "negative dictionary count");
    if (flag != (i < (size_t)nwords ? 0u : 1u))
      ADASM__HS_FAIL(ADASM_ERR_PARAM,
                     "dictionary entries not in fastText's order "
                     "(words, then labels)");
    if (i >= first && i - first < osz && !adasm__hs_count_ok(i64, &sum))
      ADASM__HS_FAIL(ADASM_ERR_PARAM, "class counts sum to 1e15 or more");
  }
  if (prune >= 0) { /* pairs of int32; only quantized models have them */
    if ((uint64_t)prune > (uint64_t)((r.len - r.off) / 8))
      ADASM__HS_FAIL(ADASM_ERR_SIZE,
                     "truncated: the file ends in the pruned-word index");
    r.off += (size_t)prune * 8u;
  }
  if (!adasm__hs_u8(&r, &flag))
    ADASM__HS_FAIL(ADASM_ERR_SIZE,
                   "truncated: the file ends before the input matrix");
  if (flag > 1) ADASM__HS_FAIL(ADASM_ERR_PARAM, "bad quantization flag");
  if (flag == 1)
    ADASM__HS_FAIL(ADASM_ERR_PARAM,
                   "quantized model (.ftz): not supported, use the .bin it was "
                   "quantized from");
  if (prune >= 0)
    ADASM__HS_FAIL(ADASM_ERR_PARAM,
                   "pruned dictionary in a model that is not quantized");
  ft->in_rows = (size_t)nwords + (size_t)a[8];
  e = adasm__hs_matrix(&r, ft->in_rows, ft->dim, &ft->in_off,
                       "truncated: the file ends in the input matrix",
                       "input matrix shape is not (nwords + bucket) x dim",
                       why);
  if (e != ADASM_OK) return e;
  if (!adasm__hs_u8(&r, &flag))
    ADASM__HS_FAIL(ADASM_ERR_SIZE,
                   "truncated: the file ends before the output matrix");
  if (flag > 1) ADASM__HS_FAIL(ADASM_ERR_PARAM, "bad output quantization flag");
  if (flag == 1)
    ADASM__HS_FAIL(ADASM_ERR_PARAM,
                   "quantized output matrix (quantize -qout): not supported");
  e = adasm__hs_matrix(&r, osz, ft->dim, &ft->out_off,
                       "truncated: the file ends in the output matrix",
                       "output matrix shape is not classes x dim", why);
  if (e != ADASM_OK) return e;
  if (r.off != r.len)
    ADASM__HS_FAIL(ADASM_ERR_SIZE, "trailing bytes after the output matrix");
  /* node vectors: output rows 0..osz-2 (the last row is not used by hs) */
  elems = (osz - 1) * ft->dim; /* fits: checked as bytes above */
  {
    int has_inf = 0;
    const unsigned char *p = buf + ft->out_off;
    for (j = 0; j < elems; ++j) {
      const uint32_t u = adasm__hs_le32(p + 4 * j) & 0x7fffffffu;
      if (u > 0x7f800000u)
        ADASM__HS_FAIL(ADASM_ERR_NAN, "NaN in the output matrix");
      if (u == 0x7f800000u) has_inf = 1;
    }
    if (has_inf)
      ADASM__HS_FAIL(ADASM_ERR_PARAM, "infinite value in the output matrix");
  }
  return ADASM_OK;
}

ADASM_DEF adasm_result adasm_hs_load_fasttext(adasm_hs_model *m,
                                              const void *buf, size_t len,
                                              void *alloc_ctx,
                                              const char **why) {
  const unsigned char *b = (const unsigned char *)buf;
  adasm__hs_ft ft;
  adasm_hs_model r;
  adasm_result e;
  size_t i, j, off, t = 0;
  if (why) *why = NULL;
  if (!m || !buf) ADASM__HS_FAIL(ADASM_ERR_NULL, "NULL model or buffer");
  e = adasm__hs_ft_check(b, len, &ft, why);
  if (e != ADASM_OK) return e;
  e = adasm__hs_alloc(&r, ft.osz, ft.dim, ft.nentries, alloc_ctx);
  if (e == ADASM_ERR_NOMEM) ADASM__HS_FAIL(e, "out of memory");
  if (e != ADASM_OK) ADASM__HS_FAIL(e, "the model is too large for size_t");
  /* pass 2: the dictionary is known good */
  off = ft.dict_off;
  for (i = 0; i < ft.nentries; ++i) {
    const size_t sl = strlen((const char *)b + off);
    r.ft_name[i] = off;
    off += sl + 1;
    if (i >= ft.base && t < ft.osz) {
      uint64_t u = (uint64_t)adasm__hs_le32(b + off) |
                   ((uint64_t)adasm__hs_le32(b + off + 4) << 32);
      r.count[t++] = (int64_t)u; /* checked: 0 <= u < 1e15 */
    }
    off += 9;
  }
  for (i = 0; i + 1 < ft.osz; ++i) {
    const unsigned char *src = b + ft.out_off + 4 * i * ft.dim;
    float *dst = r.vec + i * r.ldv;
    for (j = 0; j < ft.dim; ++j)
      dst[j] = adasm__u2f(adasm__hs_le32(src + 4 * j));
    for (; j < r.ldv; ++j) dst[j] = 0.0f;
  }
  adasm__hs_tree(&r);
  r.ft_nentries = ft.nentries;
  r.ft_nwords = ft.nwords;
  r.ft_label_base = ft.base;
  r.ft_input_offset = ft.in_off;
  r.ft_input_rows = ft.in_rows;
  r.ft_model = ft.model;
  *m = r;
  return ADASM_OK;
}
#undef ADASM__HS_FAIL

/* ---- search ------------------------------------------------------------- */
ADASM_DEF adasm_hs_params adasm_hs_params_default(void) {
  adasm_hs_params p;
  p.k = 1;
  p.threshold = 0.0f;
  p.fasttext = 0;
  p.kern = NULL;
  return p;
}

ADASM__PRIVATE adasm_result adasm__hs_check(const adasm_hs_model *m,
                                            const adasm_hs_params *p) {
  if (!m || !p) return ADASM_ERR_NULL;
  if (!m->block || !m->parent || !m->code || !m->count ||
      (m->nlabels > 1 && (!m->vec || !m->child)))
    return ADASM_ERR_NULL;
  if (m->nlabels == 0 || m->nlabels > ADASM__HS_MAX_N || m->dim == 0 ||
      m->ldv < m->dim)
    return ADASM_ERR_SIZE;
  if (p->k == 0 || p->k > m->nlabels) return ADASM_ERR_SIZE;
  if (!(p->threshold >= 0.0f && p->threshold <= 1.0f)) return ADASM_ERR_PARAM;
  if (p->fasttext != 0 && p->fasttext != 1) return ADASM_ERR_PARAM;
  return ADASM_OK;
}

/* Frontier entry of the best-first search (16 bytes). */
typedef struct adasm__hs_ent {
  double s;      /* log-probability of the path to the node */
  int32_t node;
  int32_t pad_;
} adasm__hs_ent;

/* Entry of fastText's depth-first search and of its k-best heap. */
typedef struct adasm__hs_fent {
  float s;
  int32_t node;
} adasm__hs_fent;

ADASM_DEF adasm_result adasm_hs_workspace_size(const adasm_hs_model *m,
                                               const adasm_hs_params *params,
                                               size_t *bytes) {
  adasm_result r;
  size_t b;
  if (!bytes) return ADASM_ERR_NULL;
  r = adasm__hs_check(m, params);
  if (r != ADASM_OK) return r;
  /* best-first: <= n entries (each evaluation pops one and pushes two, at
     most n - 1 evaluations); depth-first: n stack + k + 1 heap of 8 bytes */
  if (adasm__mul_overflows(m->nlabels + 1, sizeof(adasm__hs_ent), &b) ||
      b > (size_t)-1 - ADASM__HS_ALIGN)
    return ADASM_ERR_OVERFLOW;
  *bytes = b + ADASM__HS_ALIGN;
  return ADASM_OK;
}

/* a comes out of the frontier before b: higher score; on a tie internal
   nodes first (a leaf below may tie too), then the lower node. */
ADASM__PRIVATE int adasm__hs_before(const adasm__hs_ent *a,
                                    const adasm__hs_ent *b, int32_t n) {
  int ai, bi;
  if (a->s != b->s) return a->s > b->s;
  ai = a->node >= n;
  bi = b->node >= n;
  if (ai != bi) return ai;
  return a->node < b->node;
}

ADASM__PRIVATE void adasm__hs_push(adasm__hs_ent *h, size_t *len,
                                   adasm__hs_ent e, int32_t n) {
  size_t i = (*len)++;
  while (i > 0) {
    const size_t up = (i - 1) / 2;
    if (!adasm__hs_before(&e, &h[up], n)) break;
    h[i] = h[up];
    i = up;
  }
  h[i] = e;
}

ADASM__PRIVATE adasm__hs_ent adasm__hs_pop(adasm__hs_ent *h, size_t *len,
                                           int32_t n) {
  const adasm__hs_ent top = h[0], last = h[--*len];
  const size_t sz = *len;
  size_t i = 0;
  for (;;) {
    size_t c = 2 * i + 1;
    if (c >= sz) break;
    if (c + 1 < sz && adasm__hs_before(&h[c + 1], &h[c], n)) ++c;
    if (!adasm__hs_before(&h[c], &last, n)) break;
    h[i] = h[c];
    i = c;
  }
  if (sz > 0) h[i] = last;
  return top;
}

/* z = w_v . x for internal node v (>= n) */
ADASM__PRIVATE float adasm__hs_dot(const adasm_hs_model *m,
                                   const adasm_kernels *k, size_t v,
                                   const float *x) {
  float z;
  k->dot_rows(m->vec + (v - m->nlabels) * m->ldv, 1, m->dim, m->ldv, x, 1.0f,
              &z);
  return z;
}

/* log sigmoid(z) and log sigmoid(-z), stably: log1p(exp(-|z|)) is in
   [0, log 2] and exact to double rounding; ok for z = +-inf. */
ADASM__PRIVATE void adasm__hs_logsig(double z, double *right, double *left) {
  const double t = log1p(exp(-fabs(z)));
  *right = (z < 0.0 ? z : 0.0) - t;
  *left = (z > 0.0 ? -z : 0.0) - t;
}

/* fastText's std_log(x) = log(x + 1e-5), a float argument and result. */
ADASM__PRIVATE float adasm__hs_ftlog(float x) {
  return (float)log((double)x + ADASM__HS_FT_EPS);
}

/* Min-heap for fastText's k best: the front is the worst held class
   (lowest score; among equal scores the higher class), the one dropped
   when a (k+1)-th comes in, so equal scores keep the lower classes. */
ADASM__PRIVATE int adasm__hs_worse(const adasm__hs_fent *a,
                                   const adasm__hs_fent *b) {
  return a->s < b->s || (a->s == b->s && a->node > b->node);
}
ADASM__PRIVATE void adasm__hs_fpush(adasm__hs_fent *h, size_t *len,
                                    adasm__hs_fent e) {
  size_t i = (*len)++;
  while (i > 0) {
    const size_t up = (i - 1) / 2;
    if (!adasm__hs_worse(&e, &h[up])) break;
    h[i] = h[up];
    i = up;
  }
  h[i] = e;
}
ADASM__PRIVATE void adasm__hs_fpop(adasm__hs_fent *h, size_t *len) {
  const adasm__hs_fent last = h[--*len];
  const size_t sz = *len;
  size_t i = 0;
  for (;;) {
    size_t c = 2 * i + 1;
    if (c >= sz) break;
    if (c + 1 < sz && adasm__hs_worse(&h[c + 1], &h[c])) ++c;
    if (!adasm__hs_worse(&h[c], &last)) break;
    h[i] = h[c];
    i = c;
  }
  if (sz > 0) h[i] = last;
}

/* fastText 0.9.2's HierarchicalSoftmaxLoss::dfs with an explicit stack
   (right child pushed first, so the left subtree is finished first, as in
   the recursion). Returns 0 on a NaN dot product. */
ADASM__PRIVATE int adasm__hs_dfs(const adasm_hs_model *m,
                                 const adasm_kernels *kern, const float *x,
                                 size_t k, float threshold, unsigned char *ws,
                                 adasm_hs_result *out) {
  const int32_t n = (int32_t)m->nlabels;
  adasm__hs_fent *stack = (adasm__hs_fent *)(void *)ws;
  adasm__hs_fent *best = stack + m->nlabels;
  const float floor_s = adasm__hs_ftlog(threshold);
  size_t sp = 0, nb = 0, t, u, nodes = 0;
  stack[sp].s = 0.0f;
  stack[sp++].node = (int32_t)m->root;
  while (sp > 0) {
    const adasm__hs_fent e = stack[--sp];
    float z, f;
    if (e.s < floor_s) continue;
    if (nb == k && e.s < best[0].s) continue;
    if (e.node < n) {
      adasm__hs_fpush(best, &nb, e);
      if (nb > k) adasm__hs_fpop(best, &nb);
      continue;
    }
    z = adasm__hs_dot(m, kern, (size_t)e.node, x);
    ++nodes;
    if (adasm__isnanf(z)) return 0;
    /* f = 1. / (1 + std::exp(-f)) with float f: float exp, float sum,
       double division */
    f = (float)(1.0 / (double)(1.0f + expf(-z)));
    {
      const int32_t *c = m->child + 2 * (size_t)(e.node - n);
      adasm__hs_fent l, r;
      r.node = c[1];
      r.s = e.s + adasm__hs_ftlog(f);
      l.node = c[0];
      l.s = e.s + adasm__hs_ftlog((float)(1.0 - (double)f));
      stack[sp++] = r;
      stack[sp++] = l;
    }
  }
  /* best first; equal scores: lower class first */
  for (t = 0; t < nb; ++t) {
    size_t b = t;
    for (u = t + 1; u < nb; ++u)
      if (best[u].s > best[b].s ||
          (best[u].s == best[b].s && best[u].node < best[b].node))
        b = u;
    if (b != t) {
      const adasm__hs_fent tmp = best[t];
      best[t] = best[b];
      best[b] = tmp;
    }
    out->idx[t] = (size_t)best[t].node;
    out->prob[t] = expf(best[t].s);
    if (out->log_prob) out->log_prob[t] = (double)best[t].s;
  }
  out->count = nb;
  out->nodes = nodes;
  return 1;
}

/* Best-first search; returns 0 on a NaN dot product. */
ADASM__PRIVATE int adasm__hs_best_first(const adasm_hs_model *m,
                                        const adasm_kernels *kern,
                                        const float *x, size_t k,
                                        float threshold, unsigned char *ws,
                                        adasm_hs_result *out) {
  const int32_t n = (int32_t)m->nlabels;
  adasm__hs_ent *h = (adasm__hs_ent *)(void *)ws;
  const double floor_s = threshold > 0.0f ? log((double)threshold)
                                          : -(double)adasm__inff();
  size_t len = 0, cnt = 0, nodes = 0;
  adasm__hs_ent e;
  e.s = 0.0;
  e.node = (int32_t)m->root;
  e.pad_ = 0;
  if (e.s >= floor_s) adasm__hs_push(h, &len, e, n);
  while (len > 0 && cnt < k) {
    e = adasm__hs_pop(h, &len, n);
    if (e.node < n) {
      out->idx[cnt] = (size_t)e.node;
      out->prob[cnt] = (float)exp(e.s);
      if (out->log_prob) out->log_prob[cnt] = e.s;
      ++cnt;
    } else {
      const int32_t *c = m->child + 2 * (size_t)(e.node - n);
      const float z = adasm__hs_dot(m, kern, (size_t)e.node, x);
      double lr, ll;
      adasm__hs_ent ch;
      ++nodes;
      if (adasm__isnanf(z)) return 0;
      adasm__hs_logsig((double)z, &lr, &ll);
      ch.pad_ = 0;
      ch.s = e.s + ll;
      ch.node = c[0];
      if (ch.s >= floor_s) adasm__hs_push(h, &len, ch, n);
      ch.s = e.s + lr;
      ch.node = c[1];
      if (ch.s >= floor_s) adasm__hs_push(h, &len, ch, n);
    }
  }
  out->count = cnt;
  out->nodes = nodes;
  return 1;
}

/* 0: finite; ADASM_ERR_NAN / ADASM_ERR_PARAM (inf) otherwise. */
ADASM__PRIVATE adasm_result adasm__hs_check_x(const float *x, size_t d) {
  size_t j;
  int has_inf = 0;
  for (j = 0; j < d; ++j) {
    if (adasm__isnanf(x[j])) return ADASM_ERR_NAN;
    if (!adasm__isfinitef(x[j])) has_inf = 1;
  }
  return has_inf ? ADASM_ERR_PARAM : ADASM_OK;
}

ADASM_DEF adasm_result adasm_hs_topk(const adasm_hs_model *m,
                                     const adasm_hs_params *params,
                                     const float *x, void *work,
                                     size_t work_bytes, adasm_hs_result *out) {
  adasm_result r;
  size_t need, pad, t;
  unsigned char *ws = (unsigned char *)work;
  const adasm_kernels *kern;
  int ok;
  if (!x || !out || !out->idx || !out->prob) return ADASM_ERR_NULL;
  r = adasm_hs_workspace_size(m, params, &need);
  if (r != ADASM_OK) return r;
  if (!work) return ADASM_ERR_WORKSPACE;
  pad = (ADASM__HS_ALIGN - (size_t)((uintptr_t)ws & (ADASM__HS_ALIGN - 1))) &
        (ADASM__HS_ALIGN - 1);
  if (work_bytes < pad || work_bytes - pad < need - ADASM__HS_ALIGN)
    return ADASM_ERR_WORKSPACE;
  ws += pad;
  kern = adasm__k(params->kern);
  r = adasm__hs_check_x(x, m->dim);
  out->count = 0;
  out->nodes = 0;
  out->madds = 0;
  if (r == ADASM_OK) {
    ok = params->fasttext
             ? adasm__hs_dfs(m, kern, x, params->k, params->threshold, ws, out)
             : adasm__hs_best_first(m, kern, x, params->k, params->threshold,
                                    ws, out);
    out->madds = (uint64_t)out->nodes * (uint64_t)m->dim;
    if (!ok) r = ADASM_ERR_NAN;
  }
  if (r != ADASM_OK) {
    out->count = 0;
    for (t = 0; t < params->k; ++t) {
      out->idx[t] = 0;
      out->prob[t] = adasm__nanf();
      if (out->log_prob) out->log_prob[t] = (double)adasm__nanf();
    }
    return r;
  }
  for (t = out->count; t < params->k; ++t) {
    out->idx[t] = 0;
    out->prob[t] = 0.0f;
    if (out->log_prob) out->log_prob[t] = -(double)adasm__inff();
  }
  return ADASM_OK;
}

ADASM_DEF adasm_result adasm_hs_log_prob(const adasm_hs_model *m,
                                         const adasm_kernels *kern,
                                         const float *x, size_t label,
                                         double *log_prob) {
  adasm_hs_params p = adasm_hs_params_default();
  adasm_result r;
  const adasm_kernels *k;
  double s = 0.0;
  size_t v = label;
  if (!x || !log_prob) return ADASM_ERR_NULL;
  r = adasm__hs_check(m, &p);
  if (r != ADASM_OK) return r;
  if (label >= m->nlabels) return ADASM_ERR_SIZE;
  r = adasm__hs_check_x(x, m->dim);
  if (r != ADASM_OK) {
    *log_prob = (double)adasm__nanf();
    return r;
  }
  k = adasm__k(kern);
  while (m->parent[v] >= 0) {
    const size_t up = (size_t)m->parent[v];
    const float z = adasm__hs_dot(m, k, up, x);
    double lr, ll;
    if (adasm__isnanf(z)) {
      *log_prob = (double)adasm__nanf();
      return ADASM_ERR_NAN;
    }
    adasm__hs_logsig((double)z, &lr, &ll);
    s += m->code[v] ? lr : ll;
    v = up;
  }
  *log_prob = s;
  return ADASM_OK;
}


/* >>svd -------------------------------------------------------------------
   SVD-softmax. Why it is built this way:
   - The SVD comes from the d x d Gram matrix G = A^T A (double): for a
     tall head (n >> d) the O(n d^2) part is then one symmetric rank-n
     update, which runs near the FMA peak, and the eigenproblem is only
     d x d. Squaring the condition number costs accuracy only in the
     tiny singular values, i.e. in directions the preview never uses, and
     the refinement does not depend on it at all: B = A V with V
     orthonormal gives B_i . (V^T x) = A_i . x for any orthonormal V.
   - Eigensolver: Householder tridiagonalisation blocked like LAPACK's
     dsytrd (panels of 32 reflectors: one symmetric matrix-vector product
     per reflector, the rest as a rank-64 update done with the GEMM tile),
     Q formed from the blocked reflectors (compact WY, GEMM), then implicit
     QL with Wilkinson shifts (tql2). tql2 spends almost all of its time
     rotating the columns of Q: 0.75 d^2 rotations of d-vectors, 40 GFLOP at
     d = 4096 that would stream Q (134 MB) from memory once per QL sweep.
     The rotations do not feed back into the iteration, so they are
     recorded (c, s per sweep) and applied in batches to Q^T cut into
     chunks of 16 coordinates (d x 16 doubles, 512 KB at d = 4096, L2):
     each chunk takes a whole batch while it is in cache.
   - GEMM micro-kernels: 8 x 16 double tiles (16 zmm accumulators) for
     everything O(d^3) or O(n d^2) in double; 12 x 32 float tiles for
     B = A V. Operands are packed into 16-wide panels (kc x 16, so a tile's
     B rows are one 128-byte line pair) by a generic strided packer.
   - B is stored in column panels of 16 (see adasm_svd_model): the preview
     reads ceil(W/16) contiguous streams of n lines, and a refined row reads
     d/16 lines, exactly as many as a row-major row. The preview kernel
     keeps 16 rows in 16 accumulators and reduces them with a transpose
     tree, so there is one horizontal reduction per 16 rows, not per row.
   - The N best previews are selected in O(n): a threshold estimated from
     a strided sample of 2048 previews, one branchless gather, and a radix
     selection among the rows gathered (see adasm__svd_select).
   - Normalizer and top-k reuse the exact path's online (max, sum) and
     heap: the probabilities and the special values (+inf logits, NaN)
     behave as in adasm_gemv_softmax_topk.
   Measured at 32000 x 4096 (one Zen 5 core, AVX-512; seconds): Gram 5.5
   (54 Gmadd/s), tridiagonal 6.0 (its symmetric matrix-vector products
   read d^3/6 doubles: memory-bound), forming Q 1.8, QL + rotations 6.5
   (0.8 d^2 rotations, 1.7 ns per 16 coordinates), B = A V 6.3 (85
   Gmadd/s); 26 s in all.
   Stage hook: ADASM_SVD_PROF(stage) (default: nothing) is expanded after
   each build stage: 0 Gram, 1 tridiagonal, 2 Q formed, 3 QL + rotations,
   4 B = A V; a benchmark can define it to read a clock (tests/test_svd.c). */
#ifndef ADASM_SVD_PROF
#define ADASM_SVD_PROF(stage) ((void)0)
#endif

#define ADASM__SVD_NB 32    /* reflectors per tridiagonalisation panel */
#define ADASM__SVD_QB 64    /* reflectors per WY block forming Q: each block
                               is two passes over Q (64: 1.8 s at d = 4096,
                               32: 2.1 s; 96 is no better) */
#define ADASM__SVD_KC 256   /* double GEMM: depth of a packed block (the 16-wide
                               B micro-panel, 32 KB, stays in L1) */
#define ADASM__SVD_MC 128   /* double GEMM: rows per packed A block (256 KB) */
#define ADASM__SVD_FKC 512  /* float GEMM: depth of a packed block */
#define ADASM__SVD_FMC 240  /* float GEMM: rows per packed A block (480 KB;
                               20 tiles of 12 rows) */
#define ADASM__SVD_ITMAX 60 /* QL iterations per eigenvalue before forcing */
#define ADASM__SVD_ROWS 256 /* previews per block (NaN-checked while in L1) */

/* Kernels of one ISA (picked from the adasm_kernels' ISA). */
typedef struct adasm__svd_kset {
  /* c[t*ldc + j] += sum_{r<kc} a[16r + t] b[16r + j], t < 8, j < 16 */
  void (*dtile)(const double *a, const double *b, size_t kc, double *c,
                size_t ldc);
  /* c0[16t + j] += sum_{r<kc} a[12r + t] b0[16r + j], t < 12, j < 16;
     the same for c1 with b1 unless b1 is NULL */
  void (*ftile)(const float *a, const float *b0, const float *b1, size_t kc,
                float *c0, float *c1);
  /* y[0..L) += T x, T symmetric with its upper triangle by rows:
     T[i][j] = t[i*ld + j] for j >= i */
  void (*symv)(const double *t, size_t L, size_t ld, const double *x,
               double *y);
  /* rows of 16 doubles; for q < cnt, i = top - q, (c, s) = cs[2q], cs[2q+1]:
     row[i+1] = s row[i] + c row[i+1], row[i] = c row[i] - s row[i+1] */
  void (*rot)(double *rows, size_t top, size_t cnt, const double *cs);
  /* out[t] = sum_{p0 <= p < p1} B[(p n + r0 + t) 16 ..+16) . xs[16p ..+16),
     for the 16 rows r0 .. r0+15 */
  void (*prev16)(const float *B, size_t n, size_t r0, size_t p0, size_t p1,
                 const float *xs, float *out);
  /* the same for cnt rows rows[0..cnt), with prev16's summation order, so
     a row's value does not depend on which kernel computed it */
  void (*rows)(const float *B, size_t n, const size_t *rows, size_t cnt,
               size_t p0, size_t p1, const float *xs, float *out);
} adasm__svd_kset;

/* ---- scalar kernels ------------------------------------------------------ */
ADASM__PRIVATE void adasm__svd_dtile_scalar(const double *a, const double *b,
                                            size_t kc, double *c,
                                            size_t ldc) {
  double acc[8][16];
  size_t r, t, j;
  memset(acc, 0, sizeof acc);
  for (r = 0; r < kc; ++r) {
    const double *ar = a + r * 16, *br = b + r * 16;
    for (t = 0; t < 8; ++t) {
      const double at = ar[t];
      for (j = 0; j < 16; ++j) acc[t][j] += at * br[j];
    }
  }
  for (t = 0; t < 8; ++t)
    for (j = 0; j < 16; ++j) c[t * ldc + j] += acc[t][j];
}

ADASM__PRIVATE void adasm__svd_ftile_scalar(const float *a, const float *b0,
                                            const float *b1, size_t kc,
                                            float *c0, float *c1) {
  float acc[12][16];
  size_t q, r, t, j;
  for (q = 0; q < 2; ++q) {
    const float *b = q ? b1 : b0;
    float *c = q ? c1 : c0;
    if (!b) break;
    memset(acc, 0, sizeof acc);
    for (r = 0; r < kc; ++r) {
      const float *ar = a + r * 12, *br = b + r * 16;
      for (t = 0; t < 12; ++t) {
        const float at = ar[t];
        for (j = 0; j < 16; ++j) acc[t][j] += at * br[j];
      }
    }
    for (t = 0; t < 12; ++t)
      for (j = 0; j < 16; ++j) c[t * 16 + j] += acc[t][j];
  }
}

ADASM__PRIVATE void adasm__svd_symv_scalar(const double *t, size_t L,
                                           size_t ld, const double *x,
                                           double *y) {
  size_t i, j;
  for (i = 0; i < L; ++i) {
    const double *row = t + i * ld;
    const double xi = x[i];
    double acc = row[i] * xi;
    for (j = i + 1; j < L; ++j) {
      acc += row[j] * x[j];
      y[j] += row[j] * xi;
    }
    y[i] += acc;
  }
}

ADASM__PRIVATE void adasm__svd_rot_scalar(double *rows, size_t top,
                                          size_t cnt, const double *cs) {
  size_t q, l;
  for (q = 0; q < cnt; ++q) {
    double *r0 = rows + (top - q) * 16, *r1 = r0 + 16;
    const double c = cs[2 * q], s = cs[2 * q + 1];
    for (l = 0; l < 16; ++l) {
      const double a = r0[l], b = r1[l];
      r1[l] = s * a + c * b;
      r0[l] = c * a - s * b;
    }
  }
}

ADASM__PRIVATE void adasm__svd_rows_scalar(const float *B, size_t n,
                                           const size_t *rows, size_t cnt,
                                           size_t p0, size_t p1,
                                           const float *xs, float *out) {
  size_t t, p, j;
  for (t = 0; t < cnt; ++t) {
    double s = 0.0; /* double, like the header's scalar dot_rows */
    for (p = p0; p < p1; ++p) {
      const float *b = B + (p * n + rows[t]) * 16, *x = xs + p * 16;
      for (j = 0; j < 16; ++j) s += (double)b[j] * (double)x[j];
    }
    out[t] = (float)s;
  }
}

ADASM__PRIVATE void adasm__svd_prev16_scalar(const float *B, size_t n,
                                             size_t r0, size_t p0, size_t p1,
                                             const float *xs, float *out) {
  size_t rows[16], t;
  for (t = 0; t < 16; ++t) rows[t] = r0 + t;
  adasm__svd_rows_scalar(B, n, rows, 16, p0, p1, xs, out);
}

static const adasm__svd_kset adasm__svd_k_scalar = {
    adasm__svd_dtile_scalar, adasm__svd_ftile_scalar, adasm__svd_symv_scalar,
    adasm__svd_rot_scalar,   adasm__svd_prev16_scalar, adasm__svd_rows_scalar};

/* ---- AVX2 + FMA kernels ------------------------------------------------- */
#if defined(ADASM__HAVE_AVX2)
ADASM__TARGET_AVX2 static void adasm__svd_dtile_avx2(const double *a,
                                                    const double *b,
                                                    size_t kc, double *c,
                                                    size_t ldc) {
  size_t h, q, r;
  for (h = 0; h < 2; ++h) /* rows 4h .. 4h+3 */
    for (q = 0; q < 2; ++q) { /* columns 8q .. 8q+7 */
      const double *ap = a + 4 * h, *bp = b + 8 * q;
      double *cp = c + 4 * h * ldc + 8 * q;
      __m256d c00 = _mm256_setzero_pd(), c01 = c00, c10 = c00, c11 = c00;
      __m256d c20 = c00, c21 = c00, c30 = c00, c31 = c00;
      for (r = 0; r < kc; ++r) {
        const __m256d b0 = _mm256_loadu_pd(bp + r * 16);
        const __m256d b1 = _mm256_loadu_pd(bp + r * 16 + 4);
        __m256d at = _mm256_broadcast_sd(ap + r * 16);
        c00 = _mm256_fmadd_pd(at, b0, c00);
        c01 = _mm256_fmadd_pd(at, b1, c01);
        at = _mm256_broadcast_sd(ap + r * 16 + 1);
        c10 = _mm256_fmadd_pd(at, b0, c10);
        c11 = _mm256_fmadd_pd(at, b1, c11);
        at = _mm256_broadcast_sd(ap + r * 16 + 2);
        c20 = _mm256_fmadd_pd(at, b0, c20);
        c21 = _mm256_fmadd_pd(at, b1, c21);
        at = _mm256_broadcast_sd(ap + r * 16 + 3);
        c30 = _mm256_fmadd_pd(at, b0, c30);
        c31 = _mm256_fmadd_pd(at, b1, c31);
      }
#define ADASM__SVD_ADD4(p, v) _mm256_storeu_pd((p), _mm256_add_pd(_mm256_loadu_pd(p), (v)))
      ADASM__SVD_ADD4(cp, c00); ADASM__SVD_ADD4(cp + 4, c01);
      ADASM__SVD_ADD4(cp + ldc, c10); ADASM__SVD_ADD4(cp + ldc + 4, c11);
      ADASM__SVD_ADD4(cp + 2 * ldc, c20); ADASM__SVD_ADD4(cp + 2 * ldc + 4, c21);
      ADASM__SVD_ADD4(cp + 3 * ldc, c30); ADASM__SVD_ADD4(cp + 3 * ldc + 4, c31);
#undef ADASM__SVD_ADD4
    }
}

ADASM__TARGET_AVX2 static void adasm__svd_ftile_avx2(const float *a,
                                                    const float *b0,
                                                    const float *b1,
                                                    size_t kc, float *c0,
                                                    float *c1) {
  size_t q, h, r;
  for (q = 0; q < 2; ++q) {
    const float *b = q ? b1 : b0;
    float *c = q ? c1 : c0;
    if (!b) break;
    for (h = 0; h < 2; ++h) { /* rows 6h .. 6h+5, 16 columns */
      const float *ap = a + 6 * h;
      float *cp = c + 6 * h * 16;
      __m256 s00 = _mm256_setzero_ps(), s01 = s00, s10 = s00, s11 = s00;
      __m256 s20 = s00, s21 = s00, s30 = s00, s31 = s00, s40 = s00, s41 = s00;
      __m256 s50 = s00, s51 = s00;
      for (r = 0; r < kc; ++r) {
        const __m256 bl = _mm256_loadu_ps(b + r * 16);
        const __m256 bh = _mm256_loadu_ps(b + r * 16 + 8);
        const float *ar = ap + r * 12;
        __m256 at = _mm256_broadcast_ss(ar);
        s00 = _mm256_fmadd_ps(at, bl, s00); s01 = _mm256_fmadd_ps(at, bh, s01);
        at = _mm256_broadcast_ss(ar + 1);
        s10 = _mm256_fmadd_ps(at, bl, s10); s11 = _mm256_fmadd_ps(at, bh, s11);
        at = _mm256_broadcast_ss(ar + 2);
        s20 = _mm256_fmadd_ps(at, bl, s20); s21 = _mm256_fmadd_ps(at, bh, s21);
        at = _mm256_broadcast_ss(ar + 3);
        s30 = _mm256_fmadd_ps(at, bl, s30); s31 = _mm256_fmadd_ps(at, bh, s31);
        at = _mm256_broadcast_ss(ar + 4);
        s40 = _mm256_fmadd_ps(at, bl, s40); s41 = _mm256_fmadd_ps(at, bh, s41);
        at = _mm256_broadcast_ss(ar + 5);
        s50 = _mm256_fmadd_ps(at, bl, s50); s51 = _mm256_fmadd_ps(at, bh, s51);
      }
#define ADASM__SVD_ADD8(p, v) _mm256_storeu_ps((p), _mm256_add_ps(_mm256_loadu_ps(p), (v)))
      ADASM__SVD_ADD8(cp, s00); ADASM__SVD_ADD8(cp + 8, s01);
      ADASM__SVD_ADD8(cp + 16, s10); ADASM__SVD_ADD8(cp + 24, s11);
      ADASM__SVD_ADD8(cp + 32, s20); ADASM__SVD_ADD8(cp + 40, s21);
      ADASM__SVD_ADD8(cp + 48, s30); ADASM__SVD_ADD8(cp + 56, s31);
      ADASM__SVD_ADD8(cp + 64, s40); ADASM__SVD_ADD8(cp + 72, s41);
      ADASM__SVD_ADD8(cp + 80, s50); ADASM__SVD_ADD8(cp + 88, s51);
#undef ADASM__SVD_ADD8
    }
  }
}

ADASM__TARGET_AVX2 static inline double adasm__svd_hsum_pd_avx2(__m256d v) {
  __m128d s = _mm_add_pd(_mm256_castpd256_pd128(v), _mm256_extractf128_pd(v, 1));
  return _mm_cvtsd_f64(_mm_add_sd(s, _mm_unpackhi_pd(s, s)));
}

/* Two rows per pass, so y is loaded and stored once per two rows of T. */
ADASM__TARGET_AVX2 static void adasm__svd_symv_avx2(const double *t, size_t L,
                                                   size_t ld, const double *x,
                                                   double *y) {
  size_t i = 0, j;
  for (; i + 2 <= L; i += 2) {
    const double *r0 = t + i * ld, *r1 = r0 + ld;
    const double x0 = x[i], x1 = x[i + 1];
    const __m256d vx0 = _mm256_set1_pd(x0), vx1 = _mm256_set1_pd(x1);
    __m256d a0 = _mm256_setzero_pd(), a1 = a0;
    double s0 = r0[i] * x0 + r0[i + 1] * x1, s1 = r0[i + 1] * x0 + r1[i + 1] * x1;
    for (j = i + 2; j + 4 <= L; j += 4) {
      const __m256d t0 = _mm256_loadu_pd(r0 + j), t1 = _mm256_loadu_pd(r1 + j);
      const __m256d xv = _mm256_loadu_pd(x + j);
      __m256d yv = _mm256_loadu_pd(y + j);
      a0 = _mm256_fmadd_pd(t0, xv, a0);
      a1 = _mm256_fmadd_pd(t1, xv, a1);
      yv = _mm256_fmadd_pd(t0, vx0, yv);
      _mm256_storeu_pd(y + j, _mm256_fmadd_pd(t1, vx1, yv));
    }
    for (; j < L; ++j) {
      s0 += r0[j] * x[j];
      s1 += r1[j] * x[j];
      y[j] += r0[j] * x0 + r1[j] * x1;
    }
    y[i] += s0 + adasm__svd_hsum_pd_avx2(a0);
    y[i + 1] += s1 + adasm__svd_hsum_pd_avx2(a1);
  }
  if (i < L) y[i] += t[i * ld + i] * x[i]; /* the last row: its diagonal */
}

ADASM__TARGET_AVX2 static void adasm__svd_rot_avx2(double *rows, size_t top,
                                                  size_t cnt,
                                                  const double *cs) {
  /* The row i of one rotation is the row i+1 of the next: it stays in
     registers, so each rotation loads one row and stores one. */
  const double *p = rows + (top + 1) * 16;
  __m256d b0 = _mm256_loadu_pd(p), b1 = _mm256_loadu_pd(p + 4);
  __m256d b2 = _mm256_loadu_pd(p + 8), b3 = _mm256_loadu_pd(p + 12);
  size_t q;
  for (q = 0; q < cnt; ++q) {
    double *r = rows + (top - q) * 16;
    const __m256d c = _mm256_set1_pd(cs[2 * q]), s = _mm256_set1_pd(cs[2 * q + 1]);
    const __m256d a0 = _mm256_loadu_pd(r), a1 = _mm256_loadu_pd(r + 4);
    const __m256d a2 = _mm256_loadu_pd(r + 8), a3 = _mm256_loadu_pd(r + 12);
    _mm256_storeu_pd(r + 16, _mm256_fmadd_pd(c, b0, _mm256_mul_pd(s, a0)));
    _mm256_storeu_pd(r + 20, _mm256_fmadd_pd(c, b1, _mm256_mul_pd(s, a1)));
    _mm256_storeu_pd(r + 24, _mm256_fmadd_pd(c, b2, _mm256_mul_pd(s, a2)));
    _mm256_storeu_pd(r + 28, _mm256_fmadd_pd(c, b3, _mm256_mul_pd(s, a3)));
    b0 = _mm256_fnmadd_pd(s, b0, _mm256_mul_pd(c, a0));
    b1 = _mm256_fnmadd_pd(s, b1, _mm256_mul_pd(c, a1));
    b2 = _mm256_fnmadd_pd(s, b2, _mm256_mul_pd(c, a2));
    b3 = _mm256_fnmadd_pd(s, b3, _mm256_mul_pd(c, a3));
  }
  {
    double *r = rows + (top + 1 - cnt) * 16;
    _mm256_storeu_pd(r, b0);
    _mm256_storeu_pd(r + 4, b1);
    _mm256_storeu_pd(r + 8, b2);
    _mm256_storeu_pd(r + 12, b3);
  }
}

/* Eight row sums at once: the lanes of s0..s7 are added as a transpose. */
ADASM__TARGET_AVX2 static inline __m256 adasm__svd_red2_avx2(__m256 a, __m256 b) {
  return _mm256_add_ps(_mm256_unpacklo_ps(a, b), _mm256_unpackhi_ps(a, b));
}
ADASM__TARGET_AVX2 static inline __m256 adasm__svd_red4_avx2(__m256 a, __m256 b) {
  const __m256d x = _mm256_castps_pd(a), y = _mm256_castps_pd(b);
  return _mm256_add_ps(_mm256_castpd_ps(_mm256_unpacklo_pd(x, y)),
                       _mm256_castpd_ps(_mm256_unpackhi_pd(x, y)));
}
ADASM__TARGET_AVX2 static inline __m256 adasm__svd_red8_avx2(__m256 a, __m256 b) {
  return _mm256_add_ps(_mm256_permute2f128_ps(a, b, 0x20),
                       _mm256_permute2f128_ps(a, b, 0x31));
}

ADASM__TARGET_AVX2 static void adasm__svd_prev8_avx2(const float *b0,
                                                    size_t stride, size_t p0,
                                                    size_t p1,
                                                    const float *xs,
                                                    float *out) {
  __m256 s0 = _mm256_setzero_ps(), s1 = s0, s2 = s0, s3 = s0;
  __m256 s4 = s0, s5 = s0, s6 = s0, s7 = s0;
  size_t p;
  for (p = p0; p < p1; ++p) {
    const float *b = b0 + p * stride;
    const __m256 xl = _mm256_loadu_ps(xs + p * 16), xh = _mm256_loadu_ps(xs + p * 16 + 8);
#define ADASM__SVD_R8(s, o)                                                    \
  s = _mm256_fmadd_ps(_mm256_loadu_ps(b + (o)), xl, s);                        \
  s = _mm256_fmadd_ps(_mm256_loadu_ps(b + (o) + 8), xh, s)
    ADASM__SVD_R8(s0, 0); ADASM__SVD_R8(s1, 16); ADASM__SVD_R8(s2, 32);
    ADASM__SVD_R8(s3, 48); ADASM__SVD_R8(s4, 64); ADASM__SVD_R8(s5, 80);
    ADASM__SVD_R8(s6, 96); ADASM__SVD_R8(s7, 112);
#undef ADASM__SVD_R8
  }
  _mm256_storeu_ps(
      out, adasm__svd_red8_avx2(
               adasm__svd_red4_avx2(adasm__svd_red2_avx2(s0, s1), adasm__svd_red2_avx2(s2, s3)),
               adasm__svd_red4_avx2(adasm__svd_red2_avx2(s4, s5), adasm__svd_red2_avx2(s6, s7))));
}

ADASM__TARGET_AVX2 static void adasm__svd_prev16_avx2(const float *B, size_t n,
                                                     size_t r0, size_t p0,
                                                     size_t p1,
                                                     const float *xs,
                                                     float *out) {
  adasm__svd_prev8_avx2(B + r0 * 16, n * 16, p0, p1, xs, out);
  adasm__svd_prev8_avx2(B + (r0 + 8) * 16, n * 16, p0, p1, xs, out + 8);
}

ADASM__TARGET_AVX2 static void adasm__svd_rows_avx2(const float *B, size_t n,
                                                   const size_t *rows,
                                                   size_t cnt, size_t p0,
                                                   size_t p1, const float *xs,
                                                   float *out) {
  /* The same FMA chain and reduction tree as adasm__svd_prev8_avx2 (the
     zeros add exactly), so a row's value does not depend on its position:
     identical rows tie exactly, as in the exact path. */
  const size_t stride = n * 16;
  const __m256 zero = _mm256_setzero_ps();
  size_t t, p;
  for (t = 0; t < cnt; ++t) {
    const float *b = B + rows[t] * 16;
    __m256 a = zero;
    for (p = p0; p < p1; ++p) {
      const float *bp = b + p * stride;
      a = _mm256_fmadd_ps(_mm256_loadu_ps(bp), _mm256_loadu_ps(xs + p * 16), a);
      a = _mm256_fmadd_ps(_mm256_loadu_ps(bp + 8), _mm256_loadu_ps(xs + p * 16 + 8), a);
    }
    a = adasm__svd_red8_avx2(adasm__svd_red4_avx2(adasm__svd_red2_avx2(a, zero), zero), zero);
    out[t] = _mm_cvtss_f32(_mm256_castps256_ps128(a));
  }
}

static const adasm__svd_kset adasm__svd_k_avx2 = {
    adasm__svd_dtile_avx2, adasm__svd_ftile_avx2,  adasm__svd_symv_avx2,
    adasm__svd_rot_avx2,   adasm__svd_prev16_avx2, adasm__svd_rows_avx2};
#endif /* ADASM__HAVE_AVX2 */

/* ---- AVX-512 kernels ----------------------------------------------------- */
#if defined(ADASM__HAVE_AVX512)
#if defined(__GNUC__) && !defined(__clang__)
/* GCC 12's false -Wmaybe-uninitialized on AVX-512 intrinsics in C++ (see
   >>k_avx512); scoped to this block. */
#pragma GCC diagnostic push
#pragma GCC diagnostic ignored "-Wmaybe-uninitialized"
#pragma GCC diagnostic ignored "-Wuninitialized"
#endif
ADASM__TARGET_AVX512 static void adasm__svd_dtile_avx512(const double *a,
                                                        const double *b,
                                                        size_t kc, double *c,
                                                        size_t ldc) {
  __m512d c00 = _mm512_setzero_pd(), c01 = c00, c10 = c00, c11 = c00;
  __m512d c20 = c00, c21 = c00, c30 = c00, c31 = c00, c40 = c00, c41 = c00;
  __m512d c50 = c00, c51 = c00, c60 = c00, c61 = c00, c70 = c00, c71 = c00;
  size_t r;
  for (r = 0; r < kc; ++r) {
    const double *ar = a + r * 16;
    const __m512d b0 = _mm512_loadu_pd(b + r * 16), b1 = _mm512_loadu_pd(b + r * 16 + 8);
    __m512d at;
#define ADASM__SVD_D8(t, x0, x1)                                               \
  at = _mm512_set1_pd(ar[t]);                                                  \
  x0 = _mm512_fmadd_pd(at, b0, x0);                                            \
  x1 = _mm512_fmadd_pd(at, b1, x1)
    ADASM__SVD_D8(0, c00, c01); ADASM__SVD_D8(1, c10, c11);
    ADASM__SVD_D8(2, c20, c21); ADASM__SVD_D8(3, c30, c31);
    ADASM__SVD_D8(4, c40, c41); ADASM__SVD_D8(5, c50, c51);
    ADASM__SVD_D8(6, c60, c61); ADASM__SVD_D8(7, c70, c71);
#undef ADASM__SVD_D8
  }
#define ADASM__SVD_ST8(t, x0, x1)                                              \
  _mm512_storeu_pd(c + (t) * ldc, _mm512_add_pd(_mm512_loadu_pd(c + (t) * ldc), x0)); \
  _mm512_storeu_pd(c + (t) * ldc + 8, _mm512_add_pd(_mm512_loadu_pd(c + (t) * ldc + 8), x1))
  ADASM__SVD_ST8(0, c00, c01); ADASM__SVD_ST8(1, c10, c11);
  ADASM__SVD_ST8(2, c20, c21); ADASM__SVD_ST8(3, c30, c31);
  ADASM__SVD_ST8(4, c40, c41); ADASM__SVD_ST8(5, c50, c51);
  ADASM__SVD_ST8(6, c60, c61); ADASM__SVD_ST8(7, c70, c71);
#undef ADASM__SVD_ST8
}

ADASM__TARGET_AVX512 static void adasm__svd_ftile_avx512(const float *a,
                                                        const float *b0,
                                                        const float *b1,
                                                        size_t kc, float *c0,
                                                        float *c1) {
  size_t r;
#define ADASM__SVD_FST(c, t, v)                                                \
  _mm512_storeu_ps((c) + (t) * 16, _mm512_add_ps(_mm512_loadu_ps((c) + (t) * 16), v))
  if (b1) { /* 12 rows x 2 panels: 24 accumulators */
    __m512 x00 = _mm512_setzero_ps(), x01 = x00, x10 = x00, x11 = x00;
    __m512 x20 = x00, x21 = x00, x30 = x00, x31 = x00, x40 = x00, x41 = x00;
    __m512 x50 = x00, x51 = x00, x60 = x00, x61 = x00, x70 = x00, x71 = x00;
    __m512 x80 = x00, x81 = x00, x90 = x00, x91 = x00, xa0 = x00, xa1 = x00;
    __m512 xb0 = x00, xb1 = x00;
    for (r = 0; r < kc; ++r) {
      const float *ar = a + r * 12;
      const __m512 v0 = _mm512_loadu_ps(b0 + r * 16), v1 = _mm512_loadu_ps(b1 + r * 16);
      __m512 at;
#define ADASM__SVD_F2(t, y0, y1)                                               \
  at = _mm512_set1_ps(ar[t]);                                                  \
  y0 = _mm512_fmadd_ps(at, v0, y0);                                            \
  y1 = _mm512_fmadd_ps(at, v1, y1)
      ADASM__SVD_F2(0, x00, x01); ADASM__SVD_F2(1, x10, x11);
      ADASM__SVD_F2(2, x20, x21); ADASM__SVD_F2(3, x30, x31);
      ADASM__SVD_F2(4, x40, x41); ADASM__SVD_F2(5, x50, x51);
      ADASM__SVD_F2(6, x60, x61); ADASM__SVD_F2(7, x70, x71);
      ADASM__SVD_F2(8, x80, x81); ADASM__SVD_F2(9, x90, x91);
      ADASM__SVD_F2(10, xa0, xa1); ADASM__SVD_F2(11, xb0, xb1);
#undef ADASM__SVD_F2
    }
    ADASM__SVD_FST(c0, 0, x00); ADASM__SVD_FST(c1, 0, x01);
    ADASM__SVD_FST(c0, 1, x10); ADASM__SVD_FST(c1, 1, x11);
    ADASM__SVD_FST(c0, 2, x20); ADASM__SVD_FST(c1, 2, x21);
    ADASM__SVD_FST(c0, 3, x30); ADASM__SVD_FST(c1, 3, x31);
    ADASM__SVD_FST(c0, 4, x40); ADASM__SVD_FST(c1, 4, x41);
    ADASM__SVD_FST(c0, 5, x50); ADASM__SVD_FST(c1, 5, x51);
    ADASM__SVD_FST(c0, 6, x60); ADASM__SVD_FST(c1, 6, x61);
    ADASM__SVD_FST(c0, 7, x70); ADASM__SVD_FST(c1, 7, x71);
    ADASM__SVD_FST(c0, 8, x80); ADASM__SVD_FST(c1, 8, x81);
    ADASM__SVD_FST(c0, 9, x90); ADASM__SVD_FST(c1, 9, x91);
    ADASM__SVD_FST(c0, 10, xa0); ADASM__SVD_FST(c1, 10, xa1);
    ADASM__SVD_FST(c0, 11, xb0); ADASM__SVD_FST(c1, 11, xb1);
  } else { /* the odd last panel */
    __m512 x0 = _mm512_setzero_ps(), x1 = x0, x2 = x0, x3 = x0, x4 = x0;
    __m512 x5 = x0, x6 = x0, x7 = x0, x8 = x0, x9 = x0, xa = x0, xb = x0;
    for (r = 0; r < kc; ++r) {
      const float *ar = a + r * 12;
      const __m512 v0 = _mm512_loadu_ps(b0 + r * 16);
#define ADASM__SVD_F1(t, y) y = _mm512_fmadd_ps(_mm512_set1_ps(ar[t]), v0, y)
      ADASM__SVD_F1(0, x0); ADASM__SVD_F1(1, x1); ADASM__SVD_F1(2, x2);
      ADASM__SVD_F1(3, x3); ADASM__SVD_F1(4, x4); ADASM__SVD_F1(5, x5);
      ADASM__SVD_F1(6, x6); ADASM__SVD_F1(7, x7); ADASM__SVD_F1(8, x8);
      ADASM__SVD_F1(9, x9); ADASM__SVD_F1(10, xa); ADASM__SVD_F1(11, xb);
#undef ADASM__SVD_F1
    }
    ADASM__SVD_FST(c0, 0, x0); ADASM__SVD_FST(c0, 1, x1);
    ADASM__SVD_FST(c0, 2, x2); ADASM__SVD_FST(c0, 3, x3);
    ADASM__SVD_FST(c0, 4, x4); ADASM__SVD_FST(c0, 5, x5);
    ADASM__SVD_FST(c0, 6, x6); ADASM__SVD_FST(c0, 7, x7);
    ADASM__SVD_FST(c0, 8, x8); ADASM__SVD_FST(c0, 9, x9);
    ADASM__SVD_FST(c0, 10, xa); ADASM__SVD_FST(c0, 11, xb);
  }
#undef ADASM__SVD_FST
}

ADASM__TARGET_AVX512 static void adasm__svd_symv_avx512(const double *t,
                                                       size_t L, size_t ld,
                                                       const double *x,
                                                       double *y) {
  size_t i = 0, j;
  for (; i + 2 <= L; i += 2) {
    const double *r0 = t + i * ld, *r1 = r0 + ld;
    const double x0 = x[i], x1 = x[i + 1];
    const __m512d vx0 = _mm512_set1_pd(x0), vx1 = _mm512_set1_pd(x1);
    __m512d a0 = _mm512_setzero_pd(), a1 = a0;
    const double s0 = r0[i] * x0 + r0[i + 1] * x1;
    const double s1 = r0[i + 1] * x0 + r1[i + 1] * x1;
    for (j = i + 2; j < L; j += 8) {
      const __mmask8 k = (__mmask8)(L - j >= 8 ? 0xffu : (1u << (L - j)) - 1u);
      const __m512d t0 = _mm512_maskz_loadu_pd(k, r0 + j);
      const __m512d t1 = _mm512_maskz_loadu_pd(k, r1 + j);
      const __m512d xv = _mm512_maskz_loadu_pd(k, x + j);
      __m512d yv = _mm512_maskz_loadu_pd(k, y + j);
      a0 = _mm512_fmadd_pd(t0, xv, a0);
      a1 = _mm512_fmadd_pd(t1, xv, a1);
      yv = _mm512_fmadd_pd(t0, vx0, yv);
      _mm512_mask_storeu_pd(y + j, k, _mm512_fmadd_pd(t1, vx1, yv));
    }
    y[i] += s0 + adasm__hsum_pd_avx512(a0);
    y[i + 1] += s1 + adasm__hsum_pd_avx512(a1);
  }
  if (i < L) y[i] += t[i * ld + i] * x[i];
}

ADASM__TARGET_AVX512 static void adasm__svd_rot_avx512(double *rows,
                                                      size_t top, size_t cnt,
                                                      const double *cs) {
  const double *p = rows + (top + 1) * 16;
  __m512d b0 = _mm512_loadu_pd(p), b1 = _mm512_loadu_pd(p + 8);
  size_t q;
  for (q = 0; q < cnt; ++q) {
    double *r = rows + (top - q) * 16;
    const __m512d c = _mm512_set1_pd(cs[2 * q]), s = _mm512_set1_pd(cs[2 * q + 1]);
    const __m512d a0 = _mm512_loadu_pd(r), a1 = _mm512_loadu_pd(r + 8);
    /* the carried row's chain is one FMA: c a is computed off the chain */
    _mm512_storeu_pd(r + 16, _mm512_fmadd_pd(c, b0, _mm512_mul_pd(s, a0)));
    _mm512_storeu_pd(r + 24, _mm512_fmadd_pd(c, b1, _mm512_mul_pd(s, a1)));
    b0 = _mm512_fnmadd_pd(s, b0, _mm512_mul_pd(c, a0));
    b1 = _mm512_fnmadd_pd(s, b1, _mm512_mul_pd(c, a1));
  }
  _mm512_storeu_pd(rows + (top + 1 - cnt) * 16, b0);
  _mm512_storeu_pd(rows + (top + 1 - cnt) * 16 + 8, b1);
}

/* Sixteen row sums at once (see adasm__svd_red2_avx2 for the idea). */
ADASM__TARGET_AVX512 static inline __m512 adasm__svd_red2_avx512(__m512 a, __m512 b) {
  return _mm512_add_ps(_mm512_unpacklo_ps(a, b), _mm512_unpackhi_ps(a, b));
}
ADASM__TARGET_AVX512 static inline __m512 adasm__svd_red4_avx512(__m512 a, __m512 b) {
  const __m512d x = _mm512_castps_pd(a), y = _mm512_castps_pd(b);
  return _mm512_add_ps(_mm512_castpd_ps(_mm512_unpacklo_pd(x, y)),
                       _mm512_castpd_ps(_mm512_unpackhi_pd(x, y)));
}
ADASM__TARGET_AVX512 static inline __m512 adasm__svd_red8_avx512(__m512 a, __m512 b) {
  return _mm512_add_ps(_mm512_shuffle_f32x4(a, b, 0x88), /* lanes 0,2 | 0,2 */
                       _mm512_shuffle_f32x4(a, b, 0xdd)); /* lanes 1,3 | 1,3 */
}

ADASM__TARGET_AVX512 static void adasm__svd_prev16_avx512(const float *B,
                                                         size_t n, size_t r0,
                                                         size_t p0, size_t p1,
                                                         const float *xs,
                                                         float *out) {
  __m512 s0 = _mm512_setzero_ps(), s1 = s0, s2 = s0, s3 = s0, s4 = s0, s5 = s0;
  __m512 s6 = s0, s7 = s0, s8 = s0, s9 = s0, sa = s0, sb = s0, sc = s0;
  __m512 sd = s0, se = s0, sf = s0;
  size_t p;
  for (p = p0; p < p1; ++p) {
    const float *b = B + (p * n + r0) * 16;
    const __m512 xv = _mm512_loadu_ps(xs + p * 16);
#define ADASM__SVD_R16(s, t) s = _mm512_fmadd_ps(_mm512_loadu_ps(b + 16 * (t)), xv, s)
    ADASM__SVD_R16(s0, 0); ADASM__SVD_R16(s1, 1); ADASM__SVD_R16(s2, 2);
    ADASM__SVD_R16(s3, 3); ADASM__SVD_R16(s4, 4); ADASM__SVD_R16(s5, 5);
    ADASM__SVD_R16(s6, 6); ADASM__SVD_R16(s7, 7); ADASM__SVD_R16(s8, 8);
    ADASM__SVD_R16(s9, 9); ADASM__SVD_R16(sa, 10); ADASM__SVD_R16(sb, 11);
    ADASM__SVD_R16(sc, 12); ADASM__SVD_R16(sd, 13); ADASM__SVD_R16(se, 14);
    ADASM__SVD_R16(sf, 15);
#undef ADASM__SVD_R16
  }
  {
    const __m512 q0 = adasm__svd_red4_avx512(adasm__svd_red2_avx512(s0, s1),
                                             adasm__svd_red2_avx512(s2, s3));
    const __m512 q1 = adasm__svd_red4_avx512(adasm__svd_red2_avx512(s4, s5),
                                             adasm__svd_red2_avx512(s6, s7));
    const __m512 q2 = adasm__svd_red4_avx512(adasm__svd_red2_avx512(s8, s9),
                                             adasm__svd_red2_avx512(sa, sb));
    const __m512 q3 = adasm__svd_red4_avx512(adasm__svd_red2_avx512(sc, sd),
                                             adasm__svd_red2_avx512(se, sf));
    _mm512_storeu_ps(out, adasm__svd_red8_avx512(adasm__svd_red8_avx512(q0, q1),
                                                 adasm__svd_red8_avx512(q2, q3)));
  }
}

ADASM__TARGET_AVX512 static void adasm__svd_rows_avx512(const float *B,
                                                       size_t n,
                                                       const size_t *rows,
                                                       size_t cnt, size_t p0,
                                                       size_t p1,
                                                       const float *xs,
                                                       float *out) {
  /* The same FMA chain and reduction tree as adasm__svd_prev16_avx512 (the
     zeros add exactly), so a row's value does not depend on its position:
     identical rows tie exactly, as in the exact path. */
  const size_t stride = n * 16;
  const __m512 zero = _mm512_setzero_ps();
  size_t t, p;
  for (t = 0; t < cnt; ++t) {
    const float *b = B + rows[t] * 16;
    __m512 a = zero;
    /* The next row's lines: a refined row is d/16 scattered lines, so the
       loads of two rows in flight hide more of the memory latency. The
       address is formed as an integer: it is only a hint. */
    if (t + 1 < cnt) {
      const uintptr_t nb = (uintptr_t)(B + rows[t + 1] * 16);
      for (p = p0; p < p1; ++p)
        _mm_prefetch((const char *)(nb + p * stride * sizeof(float)), _MM_HINT_T0);
    }
    for (p = p0; p < p1; ++p)
      a = _mm512_fmadd_ps(_mm512_loadu_ps(b + p * stride), _mm512_loadu_ps(xs + p * 16), a);
    a = adasm__svd_red8_avx512(
        adasm__svd_red8_avx512(
            adasm__svd_red4_avx512(adasm__svd_red2_avx512(a, zero), zero), zero),
        zero);
    out[t] = _mm_cvtss_f32(_mm512_castps512_ps128(a));
  }
}

static const adasm__svd_kset adasm__svd_k_avx512 = {
    adasm__svd_dtile_avx512, adasm__svd_ftile_avx512, adasm__svd_symv_avx512,
    adasm__svd_rot_avx512, adasm__svd_prev16_avx512, adasm__svd_rows_avx512};
#if defined(__GNUC__) && !defined(__clang__)
#pragma GCC diagnostic pop
#endif
#endif /* ADASM__HAVE_AVX512 */

ADASM__PRIVATE const adasm__svd_kset *adasm__svd_kset_for(adasm_isa isa) {
  switch (isa) {
#if defined(ADASM__HAVE_AVX512)
  case ADASM_ISA_AVX512: return &adasm__svd_k_avx512;
#endif
#if defined(ADASM__HAVE_AVX2)
  case ADASM_ISA_AVX2: return &adasm__svd_k_avx2;
#endif
  default: return &adasm__svd_k_scalar; /* NEON too: see the limitations */
  }
}

/* ---- double GEMM on packed panels ---------------------------------------- */
/* An operand: element (i, k) = scale * p[i*rs + k*cs], p double or float. */
typedef struct adasm__svd_op {
  const double *pd; /* double source, or NULL */
  const float *pf;  /* float source when pd is NULL */
  size_t rs, cs;
  double scale;
} adasm__svd_op;

ADASM__PRIVATE adasm__svd_op adasm__svd_opd(const double *p, size_t rs,
                                            size_t cs, double scale) {
  adasm__svd_op o;
  o.pd = p; o.pf = NULL; o.rs = rs; o.cs = cs; o.scale = scale;
  return o;
}

/* Packs rows i0 .. i0+ni of the operand, depth k0 .. k0+kc, as panels of 16
   rows: dst[(p kc + r) 16 + c] = op(i0 + 16p + c, k0 + r); missing rows 0. */
ADASM__PRIVATE void adasm__svd_pack(const adasm__svd_op *o, size_t i0,
                                    size_t ni, size_t k0, size_t kc,
                                    double *dst) {
  const size_t np = (ni + 15) / 16;
  size_t p, r, c;
  for (p = 0; p < np; ++p) {
    double *dp = dst + p * kc * 16;
    const size_t cn = ni - p * 16 < 16 ? ni - p * 16 : 16;
    const size_t base = (i0 + p * 16) * o->rs + k0 * o->cs;
    if (cn < 16)
      for (r = 0; r < kc; ++r)
        for (c = cn; c < 16; ++c) dp[r * 16 + c] = 0.0;
    /* walk the source along its unit stride */
#define ADASM__SVD_PACK(src, conv)                                             \
  if (o->cs == 1 && o->rs != 1) {                                              \
    for (c = 0; c < cn; ++c) {                                                 \
      const size_t at = base + c * o->rs;                                      \
      for (r = 0; r < kc; ++r) dp[r * 16 + c] = o->scale * conv(src[at + r]); \
    }                                                                          \
  } else {                                                                     \
    for (r = 0; r < kc; ++r) {                                                 \
      const size_t at = base + r * o->cs;                                      \
      for (c = 0; c < cn; ++c)                                                 \
        dp[r * 16 + c] = o->scale * conv(src[at + c * o->rs]);                 \
    }                                                                          \
  }
    if (o->pd) {
      ADASM__SVD_PACK(o->pd, (double))
    } else {
      ADASM__SVD_PACK(o->pf, (double))
    }
#undef ADASM__SVD_PACK
  }
}

/* C (M x N) += A Bt^T, A = op(i, k) (M x K) and Bt = op(j, k) (N x K).
   C is row-major with leading dimension ldc, or with panel set: in column
   panels of 16, entry (i, j) at C[((j / 16) ldc + i) 16 + j % 16] (a tile
   is then 1 KB in one page, not 8 rows in 8 pages: +15% for the Gram).
   upper: only tiles that reach the upper triangle (j >= i) are computed;
   the others are left alone, and entries below the diagonal inside
   computed tiles get their (symmetric) values too. */
ADASM__PRIVATE void adasm__svd_dgemm(const adasm__svd_kset *ks, size_t M,
                                     size_t N, size_t K,
                                     const adasm__svd_op *A,
                                     const adasm__svd_op *Bt, double *C,
                                     size_t ldc, int panel, int upper,
                                     double *apack, double *bpack) {
  size_t k0, i0, jp, it, t, j;
  for (k0 = 0; k0 < K; k0 += ADASM__SVD_KC) {
    const size_t kc = K - k0 < ADASM__SVD_KC ? K - k0 : ADASM__SVD_KC;
    adasm__svd_pack(Bt, 0, N, k0, kc, bpack);
    for (i0 = 0; i0 < M; i0 += ADASM__SVD_MC) {
      const size_t mc = M - i0 < ADASM__SVD_MC ? M - i0 : ADASM__SVD_MC;
      if (upper && i0 >= N) break;
      adasm__svd_pack(A, i0, mc, k0, kc, apack);
      for (jp = 0; jp * 16 < N; ++jp) {
        const size_t j0 = jp * 16, nj = N - j0 < 16 ? N - j0 : 16;
        const double *bp = bpack + jp * kc * 16;
        for (it = 0; it < mc; it += 8) {
          const size_t i = i0 + it, ni = mc - it < 8 ? mc - it : 8;
          const double *ap = apack + (it / 16) * kc * 16 + it % 16;
          double *ct = panel ? C + (jp * ldc + i) * 16 : C + i * ldc + j0;
          const size_t rs = panel ? 16 : ldc;
          if (upper && j0 + 16 <= i) continue;
          if (ni == 8 && nj == 16) {
            ks->dtile(ap, bp, kc, ct, rs);
          } else {
            double buf[8 * 16];
            memset(buf, 0, sizeof buf);
            ks->dtile(ap, bp, kc, buf, 16);
            for (t = 0; t < ni; ++t)
              for (j = 0; j < nj; ++j) ct[t * rs + j] += buf[t * 16 + j];
          }
        }
      }
    }
  }
}

/* ---- eigendecomposition of the Gram matrix ------------------------------- */
typedef struct adasm__svd_tmp {
  double *s;      /* [dpad * d] G, then the reflectors; then Q^T in chunks */
  double *q;      /* [dpad * d] G in panels, then Q */
  double *dg, *e; /* [d] diagonal and off-diagonal of T, then eigenvalues */
  double *tau;    /* [d] reflector scales */
  size_t *perm;   /* [d] eigenvalue order */
  double *vw;     /* [6 NB * dpad] panel vectors V, W, then [V W] and [W V];
                     then V and Y of a WY block (2 QB <= 6 NB rows) */
  double *tb;     /* [QB * QB] WY factor */
  double *apack;  /* [MC * KC] */
  double *bpack;  /* [KC * dpad] */
  float *fap;     /* [FMC * FKC] */
  float *fvp;     /* [FKC * dpad] */
  double *cs;     /* [2 rcap] recorded rotations */
  size_t *swtop, *swcnt; /* [scap] recorded sweeps */
  size_t rcap, scap;
} adasm__svd_tmp;

/* Householder tridiagonalisation of the symmetric S (upper triangle by rows,
   ld = d): T = Q^T S Q, Q = H_0 ... H_{d-3}, H_j = I - tau_j v_j v_j^T with
   v_j zero up to j, 1 at j+1, and stored in row j of S from column j+1.
   Blocked as LAPACK's dsytrd/dlatrd, on rows instead of columns. */
ADASM__PRIVATE void adasm__svd_tridiag(const adasm__svd_kset *ks, size_t d,
                                       size_t dpad, adasm__svd_tmp *w) {
  const size_t R = d >= 3 ? d - 2 : 0, NB = ADASM__SVD_NB;
  double *s = w->s, *V = w->vw, *W = w->vw + NB * dpad;
  size_t j0, c, t, i, j;
  for (j0 = 0; j0 < R; j0 += NB) {
    const size_t nbc = R - j0 < NB ? R - j0 : NB;
    for (c = 0; c < nbc; ++c) {
      double *row, *v = V + c * dpad, *wv = W + c * dpad, tj;
      j = j0 + c;
      row = s + j * d;
      /* row j of S minus the panel's earlier updates */
      for (t = 0; t < c; ++t) {
        const double *vt = V + t * dpad, *wt = W + t * dpad;
        const double a1 = vt[j], a2 = wt[j];
        for (i = j; i < d; ++i) row[i] -= a1 * wt[i] + a2 * vt[i];
      }
      w->dg[j] = row[j];
      /* the reflector that zeroes row[j+2 ..] (dlarfg). The norm is taken
         of the row scaled by a power of two to magnitude ~1: squares of
         entries near 1e-160 (rounding noise of a rank-deficient Gram
         matrix) are subnormal or zero, and a beta computed from them gives
         a (v, tau) whose H is not orthogonal. v = row / (alpha - beta) is a
         division: |row[i]| <= |alpha - beta|, so it cannot overflow. */
      {
        const double alpha = row[j + 1];
        double xn = 0.0, mx = 0.0, beta, as;
        int ex;
        for (i = j + 2; i < d; ++i)
          if (fabs(row[i]) > mx) mx = fabs(row[i]);
        if (mx == 0.0) {
          tj = 0.0;
          w->e[j] = alpha;
        } else {
          (void)frexp(fabs(alpha) > mx ? fabs(alpha) : mx, &ex);
          as = ldexp(alpha, -ex);
          for (i = j + 2; i < d; ++i) {
            const double r = ldexp(row[i], -ex);
            xn += r * r;
          }
          beta = ldexp(-copysign(sqrt(as * as + xn), alpha), ex);
          tj = (beta - alpha) / beta;
          for (i = j + 2; i < d; ++i) row[i] /= alpha - beta;
          w->e[j] = beta;
        }
        row[j + 1] = 1.0;
        w->tau[j] = tj;
        memset(v, 0, dpad * sizeof(double));
        memset(wv, 0, dpad * sizeof(double));
        for (i = j + 1; i < d; ++i) v[i] = row[i];
      }
      /* w = tau S' v - (tau^2 / 2)(v^T S' v) v, S' = S with the panel's
         earlier updates, which are applied here as corrections */
      if (tj != 0.0) {
        double sum = 0.0, a2;
        ks->symv(s + (j + 1) * d + (j + 1), d - j - 1, d, v + j + 1, wv + j + 1);
        for (t = 0; t < c; ++t) {
          const double *vt = V + t * dpad, *wt = W + t * dpad;
          double dw = 0.0, dv = 0.0;
          for (i = j + 1; i < d; ++i) {
            dw += wt[i] * v[i];
            dv += vt[i] * v[i];
          }
          for (i = j + 1; i < d; ++i) wv[i] -= vt[i] * dw + wt[i] * dv;
        }
        for (i = j + 1; i < d; ++i) {
          wv[i] *= tj;
          sum += wv[i] * v[i];
        }
        a2 = -0.5 * tj * sum;
        for (i = j + 1; i < d; ++i) wv[i] += a2 * v[i];
      }
    }
    /* trailing rows: S -= V W^T + W V^T as one rank-2nbc GEMM with
       [V W] (rows) times [W V] (columns) */
    {
      const size_t r0 = j0 + nbc, L = d - r0;
      double *P = w->vw + 2 * NB * dpad, *Q = P + 2 * nbc * dpad;
      adasm__svd_op oa, ob;
      for (t = 0; t < nbc; ++t) {
        memcpy(P + t * dpad, V + t * dpad, dpad * sizeof(double));
        memcpy(P + (nbc + t) * dpad, W + t * dpad, dpad * sizeof(double));
        memcpy(Q + t * dpad, W + t * dpad, dpad * sizeof(double));
        memcpy(Q + (nbc + t) * dpad, V + t * dpad, dpad * sizeof(double));
      }
      oa = adasm__svd_opd(P + r0, 1, dpad, 1.0);
      ob = adasm__svd_opd(Q + r0, 1, dpad, -1.0);
      if (L > 0)
        adasm__svd_dgemm(ks, L, L, 2 * nbc, &oa, &ob, s + r0 * d + r0, d, 0, 1,
                         w->apack, w->bpack);
    }
  }
  for (j = R; j < d; ++j) w->dg[j] = s[j * d + j];
  if (d >= 2) w->e[d - 2] = s[(d - 2) * d + d - 1];
  w->e[d - 1] = 0.0;
}

/* Q = H_0 H_1 ... H_{R-1}, accumulated backwards in blocks of QB:
   Q[jb+1:, jb+1:] = (I - V T V^T) Q[jb+1:, jb+1:] (compact WY, dlarft). */
ADASM__PRIVATE void adasm__svd_formq(const adasm__svd_kset *ks, size_t d,
                                     size_t dpad, adasm__svd_tmp *w) {
  const size_t R = d >= 3 ? d - 2 : 0, NB = ADASM__SVD_QB;
  double *q = w->q, *vb = w->vw, *y = w->vw + NB * dpad, *tb = w->tb;
  size_t jb, t, u, r, j;
  memset(q, 0, d * d * sizeof(double));
  for (j = 0; j < d; ++j) q[j * d + j] = 1.0;
  if (R == 0) return;
  for (jb = ((R - 1) / NB) * NB;; jb -= NB) {
    const size_t nbb = R - jb < NB ? R - jb : NB, m = d - jb - 1;
    double *qs = q + (jb + 1) * d + (jb + 1);
    adasm__svd_op oa, ob;
    for (t = 0; t < nbb; ++t) { /* vb[t][r] = v_{jb+t}[jb+1+r] */
      double *vr = vb + t * dpad;
      const double *src = w->s + (jb + t) * d + (jb + 1);
      for (r = 0; r < t; ++r) vr[r] = 0.0;
      for (r = t; r < m; ++r) vr[r] = src[r];
    }
    for (t = 0; t < nbb; ++t) { /* T: H_jb ... = I - V T V^T */
      const double tt = w->tau[jb + t];
      tb[t * NB + t] = tt;
      for (u = 0; u < t; ++u) {
        double dot = 0.0;
        for (r = t; r < m; ++r) dot += vb[u * dpad + r] * vb[t * dpad + r];
        y[u] = -tt * dot; /* y as scratch: T[0:t, t] before the product */
      }
      for (u = 0; u < t; ++u) {
        double acc = 0.0;
        size_t v2;
        for (v2 = u; v2 < t; ++v2) acc += tb[u * NB + v2] * y[v2];
        tb[u * NB + t] = acc;
      }
    }
    /* Y = V^T Qs (nbb x m) */
    for (t = 0; t < nbb; ++t) memset(y + t * dpad, 0, m * sizeof(double));
    oa = adasm__svd_opd(vb, dpad, 1, 1.0);
    ob = adasm__svd_opd(qs, 1, d, 1.0);
    adasm__svd_dgemm(ks, nbb, m, m, &oa, &ob, y, dpad, 0, 0, w->apack, w->bpack);
    /* Y = T Y in place, by rows: row t needs rows u >= t, not yet
       overwritten when t ascends */
    for (t = 0; t < nbb; ++t) {
      double *yt = y + t * dpad;
      const double tt = tb[t * NB + t];
      for (j = 0; j < m; ++j) yt[j] *= tt;
      for (u = t + 1; u < nbb; ++u) {
        const double tu = tb[t * NB + u], *yu = y + u * dpad;
        for (j = 0; j < m; ++j) yt[j] += tu * yu[j];
      }
    }
    /* Qs -= V Y */
    oa = adasm__svd_opd(vb, 1, dpad, 1.0);
    ob = adasm__svd_opd(y, 1, dpad, -1.0);
    adasm__svd_dgemm(ks, m, m, nbb, &oa, &ob, qs, d, 0, 0, w->apack, w->bpack);
    if (jb == 0) break;
  }
}

ADASM__PRIVATE double adasm__svd_pythag(double a, double b) {
  const double x = fabs(a), y = fabs(b);
  if (x > y) return x * sqrt(1.0 + (y / x) * (y / x));
  return y == 0.0 ? 0.0 : y * sqrt(1.0 + (x / y) * (x / y));
}

/* The rotation (c, s) with s = f / r, c = g / r, r = hypot(f, g) (returned;
   0 when f = g = 0, c and s then untouched). Tiny f and g are scaled by a
   power of two first: from subnormal operands r is rounded to a few bits,
   and c^2 + s^2 = 1 fails (it was 8/9 on fuzz_svd's second finding). */
ADASM__PRIVATE double adasm__svd_givens(double f, double g, double *c,
                                        double *s) {
  const double x = fabs(f) > fabs(g) ? fabs(f) : fabs(g);
  double r;
  int ex = 0;
  if (x == 0.0) return 0.0;
  if (x < 1e-270 || x > 1e270) {
    (void)frexp(x, &ex);
    f = ldexp(f, -ex);
    g = ldexp(g, -ex);
  }
  r = adasm__svd_pythag(f, g);
  *s = f / r;
  *c = g / r;
  return ex ? ldexp(r, ex) : r;
}

/* Applies the recorded sweeps to every chunk of Q^T (chunk c: d rows of
   16 doubles) while the chunk is in cache. */
ADASM__PRIVATE void adasm__svd_flush(const adasm__svd_kset *ks, size_t d,
                                     size_t nch, adasm__svd_tmp *w,
                                     size_t nsw) {
  size_t c, k;
  for (c = 0; c < nch; ++c) {
    double *rows = w->s + c * d * 16;
    const double *p = w->cs;
    for (k = 0; k < nsw; ++k) {
      ks->rot(rows, w->swtop[k], w->swcnt[k], p);
      p += 2 * w->swcnt[k];
    }
  }
}

/* Implicit QL with Wilkinson shifts on (dg, e) (tql2 / Numerical Recipes'
   tqli); the rotations go to Q^T in chunks (w->s) in batches. An eigenvalue
   that has not converged after ITMAX sweeps is deflated as it is: V stays
   orthogonal, so only the preview's quality could suffer (never seen). */
ADASM__PRIVATE void adasm__svd_ql(const adasm__svd_kset *ks, size_t d,
                                  size_t nch, adasm__svd_tmp *w) {
  double *dg = w->dg, *e = w->e, tst1 = 0.0;
  size_t l, m, i, nrot = 0, nsw = 0;
  for (l = 0; l < d; ++l) {
    unsigned iter = 0;
    /* tql2's deflation test: e[m] is negligible beside the largest
       |dg| + |e| met so far, not only beside its two neighbours (rounding
       noise of 1e-160 next to eigenvalues of 1e76 is deflated at once
       instead of being iterated on) */
    if (fabs(dg[l]) + fabs(e[l]) > tst1) tst1 = fabs(dg[l]) + fabs(e[l]);
    for (;;) {
      double g, r, s, c, p, f, b;
      size_t cnt = 0;
      int early = 0;
      for (m = l; m + 1 < d; ++m) {
        const double dd = fabs(dg[m]) + fabs(dg[m + 1]);
        if (fabs(e[m]) <= 2.220446049250313e-16 * (dd > tst1 ? dd : tst1))
          break;
      }
      if (m == l) break;
      if (++iter > ADASM__SVD_ITMAX) {
        e[l] = 0.0;
        continue;
      }
      if (nrot + d > w->rcap || nsw == w->scap) {
        adasm__svd_flush(ks, d, nch, w, nsw);
        nrot = nsw = 0;
      }
      g = (dg[l + 1] - dg[l]) / (2.0 * e[l]);
      r = adasm__svd_pythag(g, 1.0);
      g = dg[m] - dg[l] + e[l] / (g + copysign(r, g));
      s = c = 1.0;
      p = 0.0;
      for (i = m; i-- > l;) {
        f = s * e[i];
        b = c * e[i];
        e[i + 1] = r = adasm__svd_givens(f, g, &c, &s);
        if (r == 0.0) { /* f = g = 0: deflate here and start over */
          dg[i + 1] -= p;
          e[m] = 0.0;
          early = 1;
          break;
        }
        g = dg[i + 1] - p;
        r = (dg[i] - g) * s + 2.0 * c * b;
        p = s * r;
        dg[i + 1] = g + p;
        g = c * r - b;
        w->cs[2 * (nrot + cnt)] = c;
        w->cs[2 * (nrot + cnt) + 1] = s;
        ++cnt;
      }
      if (cnt) {
        w->swtop[nsw] = m - 1;
        w->swcnt[nsw] = cnt;
        ++nsw;
        nrot += cnt;
      }
      if (early) continue;
      dg[l] -= p;
      e[l] = g;
      e[m] = 0.0;
    }
  }
  if (nsw) adasm__svd_flush(ks, d, nch, w, nsw);
}

/* B (panels) = A V, V = vt^T: float tiles of 12 rows x 2 panels over depth
   blocks of FKC; B must be zero on entry. */
ADASM__PRIVATE void adasm__svd_bav(const adasm__svd_kset *ks, const float *A,
                                   size_t n, size_t d, size_t lda,
                                   const float *vt, size_t dp, float *B,
                                   adasm__svd_tmp *w) {
  size_t k0, i0, jp, s, r, c, t, j;
  for (k0 = 0; k0 < d; k0 += ADASM__SVD_FKC) {
    const size_t kc = d - k0 < ADASM__SVD_FKC ? d - k0 : ADASM__SVD_FKC;
    for (jp = 0; jp < dp; ++jp) /* fvp[(jp kc + r) 16 + c] = V[k0+r][16jp+c] */
      for (c = 0; c < 16; ++c) {
        float *dst = w->fvp + jp * kc * 16 + c;
        if (jp * 16 + c < d) {
          const float *src = vt + (jp * 16 + c) * d + k0;
          for (r = 0; r < kc; ++r) dst[r * 16] = src[r];
        } else {
          for (r = 0; r < kc; ++r) dst[r * 16] = 0.0f;
        }
      }
    for (i0 = 0; i0 < n; i0 += ADASM__SVD_FMC) {
      const size_t mc = n - i0 < ADASM__SVD_FMC ? n - i0 : ADASM__SVD_FMC;
      const size_t ns = (mc + 11) / 12;
      for (s = 0; s < ns; ++s) /* fap[(s kc + r) 12 + t] = A[i0+12s+t][k0+r] */
        for (t = 0; t < 12; ++t) {
          float *dst = w->fap + s * kc * 12 + t;
          if (s * 12 + t < mc) {
            const float *src = A + (i0 + s * 12 + t) * lda + k0;
            for (r = 0; r < kc; ++r) dst[r * 12] = src[r];
          } else {
            for (r = 0; r < kc; ++r) dst[r * 12] = 0.0f;
          }
        }
      for (jp = 0; jp < dp; jp += 2) {
        const float *b0 = w->fvp + jp * kc * 16;
        const float *b1 = jp + 1 < dp ? b0 + kc * 16 : NULL;
        for (s = 0; s < ns; ++s) {
          const size_t i = i0 + s * 12, rows = mc - s * 12 < 12 ? mc - s * 12 : 12;
          float *c0 = B + (jp * n + i) * 16;
          float *c1 = b1 ? B + ((jp + 1) * n + i) * 16 : NULL;
          if (rows == 12) {
            ks->ftile(w->fap + s * kc * 12, b0, b1, kc, c0, c1);
          } else {
            float buf[2 * 12 * 16];
            memset(buf, 0, sizeof buf);
            ks->ftile(w->fap + s * kc * 12, b0, b1, kc, buf, b1 ? buf + 192 : NULL);
            for (t = 0; t < rows; ++t)
              for (j = 0; j < 16; ++j) {
                c0[t * 16 + j] += buf[t * 16 + j];
                if (c1) c1[t * 16 + j] += buf[192 + t * 16 + j];
              }
          }
        }
      }
    }
  }
}

/* Lays out the build's scratch from base (NULL: only measures). 0 on
   overflow. */
ADASM__PRIVATE int adasm__svd_tmp_layout(size_t d, size_t dpad,
                                         unsigned char *base,
                                         adasm__svd_tmp *w, size_t *total) {
  size_t off = 0, at, dd, sd, rcap;
#define ADASM__SVD_TAKE(field, type, count)                                    \
  do {                                                                         \
    if (!adasm__ada_take(&off, (count), sizeof(type), &at)) return 0;          \
    if (base) w->field = (type *)(void *)(base + at);                          \
  } while (0)
  if (adasm__mul_overflows(d, d, &dd) || adasm__mul_overflows(dpad, d, &sd))
    return 0;
  /* rotations per batch: ~64 sweeps of length d, 4096 .. 2^20 (16 MB) */
  rcap = d > ((size_t)1 << 20) / 256 ? (size_t)1 << 20 : d * 256;
  if (rcap < 4096) rcap = 4096;
  ADASM__SVD_TAKE(s, double, sd);
  ADASM__SVD_TAKE(q, double, sd);
  ADASM__SVD_TAKE(dg, double, d);
  ADASM__SVD_TAKE(e, double, d);
  ADASM__SVD_TAKE(tau, double, d);
  ADASM__SVD_TAKE(perm, size_t, d);
  if (dpad > (size_t)-1 / (6 * ADASM__SVD_NB)) return 0;
  ADASM__SVD_TAKE(vw, double, 6 * ADASM__SVD_NB * dpad);
  ADASM__SVD_TAKE(tb, double, ADASM__SVD_QB * ADASM__SVD_QB);
  ADASM__SVD_TAKE(apack, double, ADASM__SVD_MC * ADASM__SVD_KC);
  if (dpad > (size_t)-1 / ADASM__SVD_FKC) return 0;
  ADASM__SVD_TAKE(bpack, double, ADASM__SVD_KC * dpad);
  ADASM__SVD_TAKE(fap, float, ADASM__SVD_FMC * ADASM__SVD_FKC);
  ADASM__SVD_TAKE(fvp, float, ADASM__SVD_FKC * dpad);
  ADASM__SVD_TAKE(cs, double, 2 * rcap);
  ADASM__SVD_TAKE(swtop, size_t, rcap / 4 + 1);
  ADASM__SVD_TAKE(swcnt, size_t, rcap / 4 + 1);
#undef ADASM__SVD_TAKE
  if (base) {
    w->rcap = rcap;
    w->scap = rcap / 4 + 1;
  }
  *total = off;
  return 1;
}

/* ---- public -------------------------------------------------------------- */
ADASM_DEF adasm_result adasm_svd_build(adasm_svd_model *m,
                                       const adasm_kernels *k, const float *A,
                                       size_t n, size_t d, size_t lda,
                                       void *alloc_ctx) {
  const adasm__svd_kset *ks;
  adasm_svd_model r;
  adasm__svd_tmp w;
  size_t dp, dpad, extent, nb, off = 0, at_b, at_v, at_s, tbytes, i, j, c;
  unsigned char *block, *base, *tblock, *tbase;
  int has_inf = 0;
  if (!m || !A) return ADASM_ERR_NULL;
  if (n == 0 || d == 0 || lda < d) return ADASM_ERR_SIZE;
  /* A spans (n-1) lda + d floats; the model n dpad + d^2 floats + d doubles */
  if (d > (size_t)-1 - 15 || adasm__mul_overflows(n - 1, lda, &extent) ||
      extent > (size_t)-1 - d)
    return ADASM_ERR_OVERFLOW;
  dp = (d + 15) / 16;
  dpad = dp * 16;
  if (adasm__mul_overflows(n, dpad, &nb) ||
      !adasm__ada_take(&off, nb, sizeof(float), &at_b) ||
      adasm__mul_overflows(d, d, &nb) ||
      !adasm__ada_take(&off, nb, sizeof(float), &at_v) ||
      !adasm__ada_take(&off, d, sizeof(double), &at_s) || off > (size_t)-1 - 64 ||
      !adasm__svd_tmp_layout(d, dpad, NULL, &w, &tbytes) ||
      tbytes > (size_t)-1 - 64)
    return ADASM_ERR_OVERFLOW;
  for (i = 0; i < n; ++i) { /* refuse non-finite entries before allocating */
    const float *row = A + i * lda;
    for (j = 0; j < d; ++j) {
      if (adasm__isnanf(row[j])) return ADASM_ERR_NAN;
      if (!adasm__isfinitef(row[j])) has_inf = 1;
    }
  }
  if (has_inf) return ADASM_ERR_PARAM;
  block = (unsigned char *)ADASM_MALLOC(off + 64, alloc_ctx);
  if (!block) return ADASM_ERR_NOMEM;
  tblock = (unsigned char *)ADASM_MALLOC(tbytes + 64, alloc_ctx);
  if (!tblock) {
    ADASM_FREE(block, alloc_ctx);
    return ADASM_ERR_NOMEM;
  }
  base = block + ((64u - (size_t)((uintptr_t)block & 63u)) & 63u);
  tbase = tblock + ((64u - (size_t)((uintptr_t)tblock & 63u)) & 63u);
  (void)adasm__svd_tmp_layout(d, dpad, tbase, &w, &tbytes);
  r.n = n;
  r.d = d;
  r.panels = dp;
  r.B = (float *)(void *)(base + at_b);
  r.vt = (float *)(void *)(base + at_v);
  r.sigma = (double *)(void *)(base + at_s);
  r.block = block;
  r.alloc_ctx = alloc_ctx;
  ks = adasm__svd_kset_for(adasm_kernels_isa(k));

  /* 1. G = A^T A (upper triangle, double): in panels in q, then copied by
     rows to s */
  {
    const adasm__svd_op oa = {NULL, A, 1, lda, 1.0};
    memset(w.q, 0, dpad * d * sizeof(double));
    adasm__svd_dgemm(ks, d, d, n, &oa, &oa, w.q, d, 1, 1, w.apack, w.bpack);
    for (i = 0; i < d; ++i)
      for (j = i; j < d; ++j) w.s[i * d + j] = w.q[((j / 16) * d + i) * 16 + j % 16];
  }
  ADASM_SVD_PROF(0);
  /* 2. T = Q^T G Q, 3. Q, 4. T = Z diag Z^T with Z applied to Q^T */
  adasm__svd_tridiag(ks, d, dpad, &w);
  ADASM_SVD_PROF(1);
  adasm__svd_formq(ks, d, dpad, &w);
  ADASM_SVD_PROF(2);
  for (c = 0; c < dp; ++c) { /* s = Q^T in chunks: s[(c d + k) 16 + t] = Q[16c+t][k] */
    double *ch = w.s + c * d * 16;
    size_t t;
    for (t = 0; t < 16; ++t) {
      if (c * 16 + t < d) {
        const double *src = w.q + (c * 16 + t) * d;
        for (j = 0; j < d; ++j) ch[j * 16 + t] = src[j];
      } else {
        for (j = 0; j < d; ++j) ch[j * 16 + t] = 0.0;
      }
    }
  }
  adasm__svd_ql(ks, d, dp, &w);
  ADASM_SVD_PROF(3);
  /* 5. descending order; V^T rows and singular values */
  for (j = 0; j < d; ++j) w.perm[j] = j;
  adasm__ada_sort(w.perm, d, w.dg);
  for (j = 0; j < d; ++j) {
    const double lam = w.dg[w.perm[j]];
    float *dst = r.vt + j * d;
    r.sigma[j] = lam > 0.0 ? sqrt(lam) : 0.0;
    for (c = 0; c < dp; ++c) {
      const double *src = w.s + (c * d + w.perm[j]) * 16;
      const size_t cn = d - c * 16 < 16 ? d - c * 16 : 16;
      size_t t;
      for (t = 0; t < cn; ++t) dst[c * 16 + t] = (float)src[t];
    }
  }
  /* 6. B = A V */
  memset(r.B, 0, n * dpad * sizeof(float));
  adasm__svd_bav(ks, A, n, d, lda, r.vt, dp, r.B, &w);
  ADASM_SVD_PROF(4);
  ADASM_FREE(tblock, alloc_ctx);
  for (i = 0; i < n * dpad; ++i)
    if (!adasm__isfinitef(r.B[i])) { /* a row of A near FLT_MAX */
      ADASM_FREE(block, alloc_ctx);
      return ADASM_ERR_PARAM;
    }
  *m = r;
  return ADASM_OK;
}

ADASM_DEF void adasm_svd_free(adasm_svd_model *m) {
  if (!m) return;
  if (m->block) ADASM_FREE(m->block, m->alloc_ctx);
  m->n = m->d = m->panels = 0;
  m->B = m->vt = NULL;
  m->sigma = NULL;
  m->block = m->alloc_ctx = NULL;
}

/* ---- selection of the N best previews ------------------------------------ */
/* An unsigned key in the order of the floats (no NaN); -0 and +0 are the
   same key, as they compare equal. */
ADASM__PRIVATE uint32_t adasm__svd_key(float f) {
  uint32_t u = adasm__f2u(f);
  if (u == 0x80000000u) u = 0u;
  return (u & 0x80000000u) ? ~u : (u | 0x80000000u);
}

/* Radix step: the bucket (of hist[0..nb)) that holds the need-th largest,
   counting from the top; need becomes the rank inside that bucket. */
ADASM__PRIVATE uint32_t adasm__svd_bucket(const uint32_t *hist, uint32_t nb,
                                          size_t *need) {
  uint32_t b = nb;
  while (b-- > 1) {
    if (hist[b] >= *need) return b;
    *need -= hist[b];
  }
  return 0;
}

/* The key of the rank-th largest of keys[0..cnt) (1 <= rank <= cnt) by
   radix selection on 11, 11 and 10 bits; *need = how many entries equal to
   it are within the top rank. keys[] is overwritten. O(cnt). */
ADASM__PRIVATE uint32_t adasm__svd_kth(uint32_t *keys, size_t cnt, size_t rank,
                                       size_t *need) {
  uint32_t hist[2048], prefix = 0, b;
  size_t i, m;
  int pass;
  *need = rank;
  for (pass = 0; pass < 3; ++pass) {
    const unsigned shift = pass == 0 ? 21u : pass == 1 ? 10u : 0u;
    const uint32_t nb = pass == 2 ? 1024u : 2048u;
    memset(hist, 0, nb * sizeof(uint32_t));
    for (i = 0; i < cnt; ++i) ++hist[(keys[i] >> shift) & (nb - 1u)];
    b = adasm__svd_bucket(hist, nb, need);
    prefix |= b << shift;
    for (i = m = 0; i < cnt; ++i) /* keep the bucket's entries */
      if (((keys[i] >> shift) & (nb - 1u)) == b) keys[m++] = keys[i];
    cnt = m;
  }
  return prefix;
}

/* The N best previews (value descending, then index ascending: the exact
   path's tie rule) into sidx, in index order; 1 <= N <= n, no NaN in z.
   A threshold below the N-th value is estimated from a strided sample of
   2048 previews (its rank is the expected one plus 4 standard deviations
   plus 4), the rows at or above it are gathered in one branchless pass,
   and the exact N-th key is found among those by radix selection; if the
   sample ever misleads (fewer than N gathered), every row is a candidate.
   O(n) with a small constant: a heap was a quarter of the query time at
   N = 1024, a full radix pass 3x the preview at W = 16. cand (n) and keys
   (n) are scratch. */
ADASM__PRIVATE void adasm__svd_select(const float *z, size_t n, size_t N,
                                      size_t *cand, uint32_t *keys,
                                      size_t *sidx) {
  size_t i, c = 0, m = 0, need;
  uint32_t tkey;
  float tau = -adasm__inff();
  if (N == n) {
    for (i = 0; i < n; ++i) sidx[i] = i;
    return;
  }
  if (n > 4 * 2048) {
    const size_t S = 2048, stride = n / S;
    const double mu = (double)N * (double)S / (double)n;
    const double rs = mu + 4.0 * sqrt(mu) + 4.0;
    if (rs < (double)S) {
      uint32_t u;
      for (i = 0; i < S; ++i) keys[i] = adasm__svd_key(z[i * stride]);
      u = adasm__svd_kth(keys, S, (size_t)rs, &need);
      u = (u & 0x80000000u) ? (u & 0x7fffffffu) : ~u; /* back to a float */
      tau = adasm__u2f(u);
    }
  }
  for (;;) {
    for (i = c = 0; i < n; ++i) { /* branchless gather of z >= tau */
      cand[c] = i;
      c += z[i] >= tau;
    }
    if (c >= N) break;
    tau = -adasm__inff(); /* the sample misled: take every row */
  }
  for (i = 0; i < c; ++i) keys[i] = adasm__svd_key(z[cand[i]]);
  tkey = adasm__svd_kth(keys, c, N, &need);
  for (i = 0; i < c && m < N; ++i) { /* above the N-th key, then the first
                                        `need` equal to it */
    const uint32_t kk = adasm__svd_key(z[cand[i]]);
    if (kk > tkey || (kk == tkey && need > 0)) {
      if (kk == tkey) --need;
      sidx[m++] = cand[i];
    }
  }
}

/* Query workspace: xpre, xrest [dpad] floats, z [n] floats, selection
   scratch cand [n] and keys [n], sidx [top]; 64-byte aligned pieces. */
typedef struct adasm__svd_ws {
  float *xpre, *xrest, *z;
  uint32_t *keys;
  size_t *cand, *sidx;
} adasm__svd_ws;

ADASM__PRIVATE int adasm__svd_ws_layout(const adasm_svd_model *m, size_t top,
                                        unsigned char *base, adasm__svd_ws *w,
                                        size_t *total) {
  size_t off = 0, at;
#define ADASM__SVD_TAKE(field, type, count)                                    \
  do {                                                                         \
    if (!adasm__ada_take(&off, (count), sizeof(type), &at)) return 0;         \
    if (base) w->field = (type *)(void *)(base + at);                          \
  } while (0)
  ADASM__SVD_TAKE(xpre, float, m->panels * 16);
  ADASM__SVD_TAKE(xrest, float, m->panels * 16);
  ADASM__SVD_TAKE(z, float, m->n);
  ADASM__SVD_TAKE(keys, uint32_t, m->n);
  ADASM__SVD_TAKE(cand, size_t, m->n);
  ADASM__SVD_TAKE(sidx, size_t, top);
#undef ADASM__SVD_TAKE
  if (off > (size_t)-1 - 64) return 0;
  *total = off;
  return 1;
}

ADASM__PRIVATE adasm_result adasm__svd_check(const adasm_svd_model *m,
                                             size_t window, size_t top) {
  if (!m || !m->B || !m->vt || !m->block) return ADASM_ERR_NULL;
  if (window == 0 || window > m->d || top == 0 || top > m->n)
    return ADASM_ERR_SIZE;
  return ADASM_OK;
}

ADASM_DEF adasm_result adasm_svd_workspace_size(const adasm_svd_model *m,
                                                size_t window, size_t top,
                                                size_t *bytes) {
  adasm__svd_ws w;
  size_t total;
  adasm_result r;
  if (!bytes) return ADASM_ERR_NULL;
  r = adasm__svd_check(m, window, top);
  if (r != ADASM_OK) return r;
  if (!adasm__svd_ws_layout(m, top, NULL, &w, &total)) return ADASM_ERR_OVERFLOW;
  *bytes = total + 64;
  return ADASM_OK;
}

ADASM_DEF adasm_result adasm_svd_query(const adasm_svd_model *m,
                                       const adasm_kernels *k, const float *x,
                                       float beta, size_t window, size_t top,
                                       size_t topk, size_t *idx, float *prob,
                                       double *log_norm, uint64_t *samples,
                                       void *work, size_t work_bytes) {
  const adasm__svd_kset *ks;
  adasm__svd_ws w;
  adasm__online st;
  adasm__heap h;
  unsigned char *base;
  size_t n, d, dpad, total, pad, pw, i, t, r0, nsel;
  int has_nan = 0, has_inf = 0, nan = 0;
  adasm_result res;
  if (!x || !idx || !prob) return ADASM_ERR_NULL;
  res = adasm__svd_check(m, window, top);
  if (res != ADASM_OK) return res;
  if (topk == 0 || topk > top) return ADASM_ERR_SIZE;
  if (!adasm__isfinitef(beta) || !(beta > 0.0f)) return ADASM_ERR_PARAM;
  n = m->n;
  d = m->d;
  dpad = m->panels * 16;
  if (!work || !adasm__svd_ws_layout(m, top, NULL, &w, &total))
    return ADASM_ERR_WORKSPACE;
  base = (unsigned char *)work;
  pad = (64u - (size_t)((uintptr_t)base & 63u)) & 63u;
  if (work_bytes < pad || work_bytes - pad < total) return ADASM_ERR_WORKSPACE;
  (void)adasm__svd_ws_layout(m, top, base + pad, &w, &total);
  for (i = 0; i < d; ++i) {
    if (adasm__isnanf(x[i])) has_nan = 1;
    else if (!adasm__isfinitef(x[i])) has_inf = 1;
  }
  if (has_nan || has_inf) { /* data errors: nothing stale in the outputs */
    for (t = 0; t < topk; ++t) {
      idx[t] = 0;
      prob[t] = adasm__nanf();
    }
    if (log_norm) *log_norm = (double)adasm__nanf();
    if (samples) *samples = 0;
    return has_nan ? ADASM_ERR_NAN : ADASM_ERR_PARAM;
  }
  k = adasm__k(k);
  ks = adasm__svd_kset_for(k->isa);

  /* x~ = beta V^T x, split at the window: xpre = x~[:W], xrest = x~[W:] */
  k->dot_rows(m->vt, d, d, d, x, beta, w.xpre);
  for (i = 0; i < dpad; ++i) {
    const float v = i < d ? w.xpre[i] : 0.0f;
    w.xrest[i] = i >= window ? v : 0.0f;
    w.xpre[i] = i < window ? v : 0.0f;
  }

  /* previews of all rows from ceil(W/16) panels, in blocks that are still
     in L1 when their NaN check runs */
  pw = (window + 15) / 16;
  for (r0 = 0; r0 < n; r0 += ADASM__SVD_ROWS) {
    const size_t len = n - r0 < ADASM__SVD_ROWS ? n - r0 : ADASM__SVD_ROWS;
    float *z = w.z + r0;
    for (t = 0; t + 16 <= len; t += 16) ks->prev16(m->B, n, r0 + t, 0, pw, w.xpre, z + t);
    if (t < len) {
      size_t rows[16], u;
      for (u = 0; u < len - t; ++u) rows[u] = r0 + t + u;
      ks->rows(m->B, n, rows, len - t, 0, pw, w.xpre, z + t);
    }
    (void)k->max(z, len, &nan);
  }

  /* the N best previews, refined with the remaining columns (a NaN preview
     makes the answer NaN anyway: adasm__topk_finish below reports it) */
  nsel = 0;
  if (!nan) {
    nsel = top;
    adasm__svd_select(w.z, n, top, w.cand, w.keys, w.sidx);
    if (window < d) {
      const size_t p0 = window / 16;
      float rest[16];
      for (t = 0; t < nsel; t += 16) {
        const size_t cnt = nsel - t < 16 ? nsel - t : 16;
        size_t u;
        ks->rows(m->B, n, w.sidx + t, cnt, p0, m->panels, w.xrest, rest);
        for (u = 0; u < cnt; ++u) w.z[w.sidx[t + u]] += rest[u];
      }
    }
  }
  if (samples)
    *samples = (uint64_t)d * (uint64_t)d + (uint64_t)n * (uint64_t)window +
               (uint64_t)nsel * (uint64_t)(d - window);

  /* normalizer over the mixed logits; top k among the refined rows, fed
     in index order so that ties keep the lower index */
  adasm__online_run(k, &st, w.z, n);
  h.idx = idx; h.val = prob; h.size = 0; h.cap = topk;
  for (t = 0; t < nsel; ++t) {
    const float v = w.z[w.sidx[t]];
    if (!adasm__isnanf(v)) adasm__heap_push(&h, v, w.sidx[t]);
  }
  res = adasm__topk_finish(&h, &st, log_norm);
  if (res != ADASM_OK && samples) *samples = 0;
  return res;
}

#endif /* ADASOFTMAX_IMPLEMENTATION */

/*
------------------------------------------------------------------------------
This software is available under 2 licenses -- choose whichever you prefer.
------------------------------------------------------------------------------
ALTERNATIVE A - MIT License
Copyright (c) 2026 The adasoftmax.h authors
Permission is hereby granted, free of charge, to any person obtaining a copy of
this software and associated documentation files (the "Software"), to deal in
the Software without restriction, including without limitation the rights to
use, copy, modify, merge, publish, distribute, sublicense, and/or sell copies
of the Software, and to permit persons to whom the Software is furnished to do
so, subject to the following conditions:
The above copyright notice and this permission notice shall be included in all
copies or substantial portions of the Software.
THE SOFTWARE IS PROVIDED "AS IS", WITHOUT WARRANTY OF ANY KIND, EXPRESS OR
IMPLIED, INCLUDING BUT NOT LIMITED TO THE WARRANTIES OF MERCHANTABILITY,
FITNESS FOR A PARTICULAR PURPOSE AND NONINFRINGEMENT. IN NO EVENT SHALL THE
AUTHORS OR COPYRIGHT HOLDERS BE LIABLE FOR ANY CLAIM, DAMAGES OR OTHER
LIABILITY, WHETHER IN AN ACTION OF CONTRACT, TORT OR OTHERWISE, ARISING FROM,
OUT OF OR IN CONNECTION WITH THE SOFTWARE OR THE USE OR OTHER DEALINGS IN THE
SOFTWARE.
------------------------------------------------------------------------------
ALTERNATIVE B - Public Domain (www.unlicense.org)
This is free and unencumbered software released into the public domain.
Anyone is free to copy, modify, publish, use, compile, sell, or distribute this
software, either in source code form or as a compiled binary, for any purpose,
commercial or non-commercial, and by any means.
------------------------------------------------------------------------------
*/
