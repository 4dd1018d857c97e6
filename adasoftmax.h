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
       >>ada >>hs >>svd >>certified
     Kernels: every kernel of one ISA (exp, exact, sampler chain, ada,
       16-bit dots and conversions, SVD-softmax last) is in its >>k_<isa>
       section and is reached through that ISA's one table (struct
       adasm_kernels, contracts in >>k_scalar; the SVD ones as k->svd);
       every table is filled in >>dispatch. NEON has no SVD kernels of its
       own: its table holds the scalar ones.
     For tests: besides the API, tests/ may use only these private names
       (the implementation file's): the float specials adasm__nanf,
       adasm__inff, adasm__isnanf, adasm__isfinitef; the kernel tables
       adasm__kernels_<isa> and the arguments of the ada kernels
       (adasm__ada_acc, adasm__ada_bp), to hold every kernel to the scalar
       one; adasm__svd_givens and adasm__hs_logsig, to test them against a
       double reference. Anything else a test needs goes through the API.

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
       ADASM_NO_AVX512BF16   impl  leave out the vdpbf16ps variant of the
                                   AVX-512 bf16 dot kernel
       ADASM_NO_NEON         impl  leave out the NEON kernels
       ADASM_NO_SVD          all   leave out SVD-softmax (the baseline)
       ADASM_NO_HS           all   leave out hierarchical softmax (baseline)
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
      Matrices: adasm_matrix describes rows of float32, IEEE float16 or
      bfloat16 (adasm_dtype); the methods in the shared query shape take one
      (adasm_exact_query; adasm_svd_build_matrix). 16-bit weights read half
      the bytes; x and every sum stay float. adasm_convert converts arrays.
      Certified top-k (adasm_certified_*): the float32 exact top-k, read
      mostly from a 16-bit copy of A with a proof per row (no probability).
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

      16-bit weights: conversions to f16/bf16 round to nearest even (no
      dependence on MXCSR/FPCR), from them are exact; the same bits on every
      ISA. A logit from 16-bit rows is within gamma(d/4 + 16) beta sum_j
      |a_j x_j| of the exact value on the same 16-bit a_j (see
      adasm_exact_query; vdpbf16ps adds a subnormal-flush term).

   8. CHANGELOG
      next   the sampler chain (adasm_sample_logits, adasm_exact_sample,
             adasm_sample_gumbel); adasm_sample became a thin wrapper of
             it. Half-precision weights: adasm_matrix / adasm_dtype, f16 and bf16
             dot kernels on every ISA (F16C, AVX-512 with vdpbf16ps where
             the CPU has it, NEON), adasm_exact_query, adasm_convert;
             certified float32 top-k (adasm_certified_*); SVD-softmax from
             16-bit weights (adasm_svd_build_matrix). AVX2 now also
             requires F16C. A new AdaSoftmax engine built for bytes read
             (docs/ada-engine.md): a 16-bit column-major index, Poisson
             sampling with a certainty stratum and running sums, exact
             double rows for the survivors and the normalizer's heavy
             rows, a byte cost model that falls back to the exact pass;
             the index takes any adasm_matrix; params.ci_scale and
             params.stream; calibration by Learn-then-Test
             (adasm_ada_calibrate returns a certificate);
             adasm_ada_estimate; adaptive sampling (adasm_ada_sample).
             SVD-softmax queries take the shared shape: adasm_svd_query
             and adasm_svd_workspace_size read adasm_svd_params (window
             and top default to the tool's choice) and the query fills
             adasm_svd_result; the positional forms are gone.
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
  ADASM_ISA_AVX2 = 2,   /* AVX2 + FMA + F16C (x86-64) */
  ADASM_ISA_AVX512 = 3, /* AVX-512 F/DQ/BW/VL (x86-64); bf16 dots use
                           vdpbf16ps where the CPU has AVX512_BF16 */
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
   From 16 bits: exact (a signaling f16 NaN comes back quiet, as F16C and
   AArch64 FCVTL make it; bf16 is the top half of a float, bits kept).
   Same results on every ISA (no kernel set). */
ADASM_DEF uint16_t adasm_f32_to_f16(float f);
ADASM_DEF float adasm_f16_to_f32(uint16_t h);
ADASM_DEF uint16_t adasm_f32_to_bf16(float f);
ADASM_DEF float adasm_bf16_to_f32(uint16_t h);
/* n elements of src (dtype `from`) to dst (dtype `to`), any pair of
   ADASM_F32, ADASM_F16 and ADASM_BF16, with the kernels of `k` (NULL: the
   best): bit for bit the scalar functions above on every ISA (f16 <-> bf16
   goes through float, one rounding). src and dst are arrays of their
   element type (aligned as such) and must not overlap. n = 0 does nothing
   (the pointers may then be NULL).
   Errors: ADASM_ERR_PARAM (unknown dtype), ADASM_ERR_OVERFLOW (n times the
   element size overflows size_t), ADASM_ERR_NULL. */
ADASM_DEF adasm_result adasm_convert(const adasm_kernels *k, const void *src,
                                     adasm_dtype from, size_t n, void *dst,
                                     adasm_dtype to);

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
   stores from ADASM__NT_MIN on). AUTO switches where the two cost the
   same on the machines measured (README, the softmax table). */
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
   16-bit rows widened as they are read (f16: F16C / vcvtph2ps / FCVTL;
   bf16: a shift, or on a CPU with AVX-512 BF16 the vdpbf16ps dot product);
   x and every sum are float. A 16-bit matrix reads 2 bytes per entry.
   Accuracy, against the exact value on the same 16-bit entries a_j (the
   rounding of the weights to 16 bits is the caller's): every logit obeys
     |logit - beta sum_j a_j x_j| <= gamma(d/4 + 16) beta sum_j |a_j x_j|,
   gamma(m) = m 2^-24 / (1 - m 2^-24), on every ISA (ADASM__DOT_DEPTH; the
   typical error is near 2^-24 sqrt(d/16) of the same sum), plus 2^-123 (d
   + sum_j |a_j| + sum_j |x_j|) beta with vdpbf16ps, which flushes
   subnormals. With the scalar and NEON kernels a 16-bit matrix gives bit
   for bit the answer of its widened float32 copy (same order of sums);
   AVX2 and AVX-512 sum in their own order (one row at a time: faster).
   Special values as adasm_gemv_softmax_topk (vdpbf16ps rows that are not
   finite are recomputed the plain way, so inf and NaN entries behave the
   same; where the float partial sums pass FLT_MAX, vdpbf16ps may return
   the finite value). Needs no workspace: work may be NULL and work_bytes
   0. Errors as adasm_gemv_softmax_topk; also ADASM_ERR_PARAM for an
   unknown dtype. */
ADASM_DEF adasm_result adasm_exact_query(const adasm_matrix *A,
                                         const adasm_exact_params *params,
                                         const float *x, void *work,
                                         size_t work_bytes,
                                         adasm_exact_result *out);


/* ---- AdaSoftmax: PAC top-k and normalizer of softmax(beta A x) ---------
   After Baharav, Kang, Sullivan, Tiwari, Luxenberg, Tse, Pilanci,
   "Adaptive Sampling for Efficient Softmax Approximation", NeurIPS 2024:
   every row of A is an arm of a bandit; a query samples columns to bound
   every logit, eliminates the rows that cannot be in the top k, computes
   the survivors and the rows that weigh in the normalizer exactly, and
   bounds the rest of the normalizer from the samples. With probability at
   least 1 - delta (over the query's random columns) the returned set is
   the exact top-k of beta A x and every returned p is within a factor
   (1 +- eps) of the true softmax probability. docs/ada-engine.md has the
   estimator, the proof of its confidence intervals and the cost model.

   Built for bytes, not pulls: the index keeps a column-major 16-bit copy
   of the centred, column-normalised A, so one round reads its new columns
   for every row as contiguous streams (2 bytes per entry), and no entry is
   ever read twice (Poisson sampling with running sums: a column's weight
   1/pi_j does not change once it is in). Exact rows are read from the
   caller's A. When the samples show that adaptivity cannot win (a flat
   softmax, a small n or d), the query finishes with an exact pass and says
   so (result.exact = 1): calling it costs at most one cheap round more
   than the exact path.

   Guarantee: with ci_scale = 1 every confidence interval is a proven
   Bernstein bound (union bound over rows and rounds), valid for any A and
   x. Those bounds are loose, so adasm_ada_calibrate certifies a smaller
   ci_scale on sample queries (Learn-then-Test): with probability >= 1 -
   alpha over the calibration queries, the failure rate on queries drawn
   from the same distribution is <= delta. */
typedef struct adasm_ada_index {
  size_t n, d;       /* rows (arms) and columns */
  adasm_matrix A;    /* the rows exact logits are computed from: the
                        caller's (not owned: must outlive the index), or
                        the index's own copy (ADASM_ADA_OWN_ROWS) */
  uint16_t *cols;    /* column-major f16: entry (i, j) at cols[j * ldc + i]
                        is (A_ij - mu_j) / sigma_j, rounded to nearest */
  size_t ldc;        /* n rounded up to 32 (64-byte column starts) */
  double *mu;        /* [d] column means */
  double *sigma;     /* [d] RMS of the centred columns (0: constant) */
  float *rho;        /* [n] largest |stored entry| of each row: the range
                        of one sampled term, for the Bernstein bound */
  float *rnorm;      /* [n] ||A_i|| (rounded up): bounds a float dot's error */
  int aexp;          /* exponent (frexp) of the largest |A_ij| */
  void *block;       /* the one allocation, for adasm_ada_index_free */
  void *alloc_ctx;   /* passed to ADASM_MALLOC / ADASM_FREE */
} adasm_ada_index;

#define ADASM_ADA_OWN_ROWS 1u /* the index copies A's rows (see build) */

/* Builds the index of A (any dtype): four passes over A (checks, means,
   RMS, the transposed 16-bit copy). Memory: one allocation of 2 ldc d +
   16 d + 8 n bytes (+ 64), i.e. half a float32 copy of A; with
   ADASM_ADA_OWN_ROWS also a copy of A's rows in its own dtype, so the
   caller may free A. The build also takes 136 d bytes of scratch, freed
   before it returns.
   Errors: ADASM_ERR_NULL (ix, A, A->data), ADASM_ERR_SIZE (rows or cols 0,
   ld < cols), ADASM_ERR_OVERFLOW, ADASM_ERR_NAN (NaN in A), ADASM_ERR_PARAM
   (+-inf in A, an unknown dtype or flag), ADASM_ERR_NOMEM. *ix is written
   only on success. */
ADASM_DEF adasm_result adasm_ada_index_build(adasm_ada_index *ix,
                                             const adasm_matrix *A,
                                             unsigned flags, void *alloc_ctx);
/* Frees the index and zeroes it; NULL or a zeroed index is a no-op. */
ADASM_DEF void adasm_ada_index_free(adasm_ada_index *ix);

typedef struct adasm_ada_params {
  size_t k;        /* rows to return, 1 <= k <= n; default 1 */
  double eps;      /* relative error of every returned p, in (0, 1);
                      default 0.3 */
  double delta;    /* failure probability, in (0, 1); default 0.1 */
  float beta;      /* inverse temperature, finite and > 0; default 1 */
  uint64_t seed;   /* the query's random columns come from the PCG32
                      stream (seed, stream): same seed and stream, same
                      answer. Give every query its own stream (e.g. its
                      index in the batch), so that queries fail
                      independently; default seed 42, stream 0 */
  uint64_t stream;
  double ci_scale; /* multiplies every confidence radius, in (0, 1]; 1
                      (default) is the proven bound, smaller values come
                      from adasm_ada_calibrate */
  const adasm_kernels *kern; /* NULL (default): the best the CPU has; the
                      sampled columns do not depend on it */
} adasm_ada_params;

typedef struct adasm_ada_result {
  size_t *idx;        /* caller array of k: rows, best first by their
                         exact logit (ties: lower index first) */
  float *prob;        /* caller array of k: their probabilities */
  double log_norm;    /* estimate of log sum_i exp(beta A_i x) */
  uint64_t madds;     /* multiply-adds with entries of A or its index:
                         the sampled entries plus d per exact row */
  uint64_t bytes;     /* bytes of A and of the index read */
  size_t rounds;      /* sampling rounds */
  size_t cols;        /* columns read for every row (sampled + certain) */
  size_t rows_exact;  /* rows computed exactly */
  int exact;          /* 1: answered by an exact pass over A (adaptivity
                         could not win); then madds = n d */
} adasm_ada_result;

ADASM_DEF adasm_ada_params adasm_ada_params_default(void);

/* Bytes of workspace adasm_ada_query needs: about 40 n + 64 d bytes plus
   64 of alignment per piece; no alignment needed by the caller. Errors: as
   the query's argument checks. */
ADASM_DEF adasm_result adasm_ada_workspace_size(const adasm_ada_index *ix,
                                                const adasm_ada_params *params,
                                                size_t *bytes);

/* Top k rows of softmax(beta A x) and log of its normalizer, PAC (above).
   Returned logits are double-precision dot products of A's rows with x (x
   and A's entries are exact in double; the sum rounds in double), so near
   ties are ranked as a double reference ranks them. log_norm is within
   the eps band of the truth whenever the answer succeeds.
   Errors: ADASM_ERR_NULL (ix, params, x, out, out->idx, out->prob, or an
   unbuilt index); ADASM_ERR_SIZE (k = 0 or k > n); ADASM_ERR_PARAM (eps,
   delta, beta or ci_scale out of range); ADASM_ERR_WORKSPACE; outputs
   untouched. Data errors fill prob and log_norm with NaN and idx with 0:
   ADASM_ERR_NAN (NaN in x), ADASM_ERR_PARAM (+-inf in x). */
ADASM_DEF adasm_result adasm_ada_query(const adasm_ada_index *ix,
                                       const adasm_ada_params *params,
                                       const float *x, void *work,
                                       size_t work_bytes,
                                       adasm_ada_result *out);

/* The estimator alone (docs/ada-engine.md, "Estimator"): one sampling
   round of expected size m columns (1 <= m <= d; the certain columns
   included) with the query's stream, and for every row est[i], an unbiased
   estimate of beta A_i x as the index stores A (centred, 16-bit; within
   the bias bound of the docs of A itself), and var[i], an estimate of its
   variance whose mean is at least the true variance. The query's first
   round is this call with its first sample size. For tests, and for
   callers who want logit estimates with error bars. Uses the query
   workspace; est and var hold n doubles each (caller's).
   Errors: as adasm_ada_query (argument and data errors; outputs untouched
   on argument errors, NaN on data errors), ADASM_ERR_NULL (est, var),
   ADASM_ERR_SIZE (m = 0 or m > d). */
ADASM_DEF adasm_result adasm_ada_estimate(const adasm_ada_index *ix,
                                          const adasm_ada_params *params,
                                          const float *x, size_t m,
                                          void *work, size_t work_bytes,
                                          double *est, double *var);

/* Certifies a ci_scale on q calibration queries (rows of X, leading
   dimension ldx >= d), by Learn-then-Test's fixed-sequence testing (Angelopoulos
   et al. 2021): the scales 1, 10^-0.05, 10^-0.1, ... 10^-3 are tried in
   that order, each on all q queries (query t uses stream params->stream +
   t); a scale passes when its failures F on the q queries satisfy
   P(Binomial(q, delta) <= F) <= alpha, and the sequence stops at the first
   scale that does not pass. Every scale that passed is certified together
   (the test controls the family-wise error), so the result is the one of
   them whose queries read the fewest bytes (certified = 1), or 1 when none
   passed (certified = 0: too few queries for this delta and alpha, e.g.
   q < 29 at delta 0.1 or q < 299 at delta 0.01, alpha 0.05).
   Certificate: if the calibration queries and streams are drawn i.i.d.
   from the distribution of future queries, then with probability >= 1 -
   alpha the failure rate of future queries at the returned scale is <=
   delta. A failure is a returned set other than the exact top-k of a
   double-precision reference, or a returned p off by more than eps
   relatively. Draw the q queries at random from your traffic (not a
   prefix); more queries or a lower alpha give margin.
   Cost: q double-precision exact passes plus up to 61 q adaptive queries
   (a query that would end in the exact pass is counted as the success it
   is without making the pass).
   Errors: as adasm_ada_query's argument checks, plus ADASM_ERR_NULL (X,
   out), ADASM_ERR_SIZE (q = 0, ldx < d), ADASM_ERR_PARAM (alpha not in
   (0, 1)), data errors of any query (NaN or inf in X). */
typedef struct adasm_ada_calibration {
  double ci_scale;  /* the certified scale (1 if none passed) */
  int certified;    /* 1 if some scale passed */
  size_t failures;  /* failures of the returned scale on the q queries */
  size_t steps;     /* scales tried */
  double bytes;     /* mean bytes read per query at the returned scale */
} adasm_ada_calibration;

ADASM_DEF adasm_result adasm_ada_calibrate_workspace_size(
    const adasm_ada_index *ix, const adasm_ada_params *params, size_t q,
    size_t *bytes);
ADASM_DEF adasm_result adasm_ada_calibrate(const adasm_ada_index *ix,
                                           const adasm_ada_params *params,
                                           const float *X, size_t q,
                                           size_t ldx, double alpha,
                                           void *work, size_t work_bytes,
                                           adasm_ada_calibration *out);

/* Adaptive sampling: the sampler chain's draw (see "Sampling the next
   token") from softmax((A x) / T), reading only part of A. The query's
   rounds bound every logit; the top-k of the chain (or the top row) is
   computed exactly; then one pass over the rows, with the draw's own random
   numbers, keeps only the tokens whose upper bound plus their Gumbel could
   still beat the best exact key found so far, and computes those exactly
   (the draw's lazy test of adasm_exact_sample, on bounds instead of
   logits). Guarantee: where every interval holds (probability >= 1 - delta
   at ci_scale 1, or the certificate of a calibrated scale), the token is
   adasm_exact_sample's for the same (seed, stream, draw): the total
   variation distance between the two draws' distributions is at most
   delta. (The tokens computed here get double-precision logits, the exact
   sampler's are the float kernel's: two keys within that rounding of each
   other may be ordered differently.) p is exact under top-k alone (the k
   kept tokens are computed exactly); under min-p the kept set is every row
   whose upper bound reaches the threshold, and with no filter p is exp(s -
   log S) with the estimated normalizer: both within the eps band where
   the intervals hold. Bias,
   penalties and top-p need every logit: the draw then makes one exact pass
   (result.exact = 1), as do heads where adaptivity cannot win. The
   columns' random stream is derived from (seed, stream, draw), apart from
   the Gumbels'. */
typedef struct adasm_ada_sample_params {
  adasm_sampler_params chain; /* the chain, seed, stream, draw, kernels */
  double eps;                 /* as adasm_ada_params; default 0.3 */
  double delta;               /* default 0.1 */
  double ci_scale;            /* default 1 (the proven bounds) */
} adasm_ada_sample_params;

typedef struct adasm_ada_sample_result {
  size_t token;    /* the draw */
  float p;         /* its probability under the filtered distribution */
  double log_norm; /* log sum_t exp(s_t) (estimated unless exact) */
  size_t kept;     /* tokens the filters kept (n with no filter) */
  uint64_t madds;  /* multiply-adds with entries of A or its index */
  uint64_t bytes;  /* bytes of A and of the index read */
  int exact;       /* 1: one exact pass over A made the draw */
} adasm_ada_sample_result;

ADASM_DEF adasm_ada_sample_params adasm_ada_sample_params_default(void);
/* Errors: as adasm_ada_sample's argument checks. */
ADASM_DEF adasm_result adasm_ada_sample_workspace_size(
    const adasm_ada_index *ix, const adasm_ada_sample_params *params,
    size_t *bytes);
/* Errors: ADASM_ERR_NULL (ix, params, x, out), the chain's argument errors
   (adasm_sample_logits, with n = rows), ADASM_ERR_PARAM (eps, delta or
   ci_scale out of range), ADASM_ERR_WORKSPACE; outputs untouched. Data
   errors (non-finite x: ADASM_ERR_NAN, ADASM_ERR_PARAM) set token 0, p and
   log_norm NaN. */
ADASM_DEF adasm_result adasm_ada_sample(const adasm_ada_index *ix,
                                        const adasm_ada_sample_params *params,
                                        const float *x, void *work,
                                        size_t work_bytes,
                                        adasm_ada_sample_result *out);

/* Certifies a ci_scale for adasm_ada_sample with these params (their
   ci_scale is not used) on q calibration queries (rows of X, ldx >= d;
   query t draws with stream chain.stream + t), by the fixed-sequence test
   of adasm_ada_calibrate, where a draw fails when its token is not
   adasm_exact_sample's for the same (seed, stream, draw) or its p is off
   by more than eps relatively. Certificate: if the calibration queries and
   streams are drawn i.i.d. from those of future draws, then with
   probability >= 1 - alpha over the calibration sample, the rate at which
   future draws differ from the exact sampler's is <= delta; so is the
   total-variation distance between the two samplers' draws, averaged over
   that distribution. Cost: q exact draws and up to 61 q adaptive ones (a
   draw that would take the exact pass counts as the success it is). Errors:
   as adasm_ada_sample's argument checks, ADASM_ERR_NULL (X, out),
   ADASM_ERR_SIZE (q = 0, ldx < d), ADASM_ERR_PARAM (alpha not in (0, 1)),
   ADASM_ERR_WORKSPACE, and the data errors of X (NaN, inf) or of the
   exact draws (adasm_exact_sample's). */
ADASM_DEF adasm_result adasm_ada_sample_calibrate_workspace_size(
    const adasm_ada_index *ix, const adasm_ada_sample_params *params,
    size_t q, size_t *bytes);
ADASM_DEF adasm_result adasm_ada_sample_calibrate(
    const adasm_ada_index *ix, const adasm_ada_sample_params *params,
    const float *X, size_t q, size_t ldx, double alpha, void *work,
    size_t work_bytes, adasm_ada_calibration *out);


#ifndef ADASM_NO_HS
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
   bound that starts loose): on a real word head, 300 nodes vs 87.
   bench/hs_agree.sh checks both modes against fastText 0.9.2's own
   predict on a real -loss hs model (agreement and times: README).
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


#endif /* ADASM_NO_HS */

#ifndef ADASM_NO_SVD
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
   caches and vectorised. Single-threaded (build times: README).
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
/* The same from a matrix of any dtype (adasm_matrix): f16 and bf16 rows are
   widened exactly as they are packed (no float copy of A is made), so the
   model is the one adasm_svd_build makes from the widened float rows, bit
   for bit. Errors as adasm_svd_build (ADASM_ERR_NULL also for A->data
   NULL), plus ADASM_ERR_PARAM for an unknown dtype. */
ADASM_DEF adasm_result adasm_svd_build_matrix(adasm_svd_model *m,
                                              const adasm_matrix *A,
                                              const adasm_kernels *k,
                                              void *alloc_ctx);
/* Releases the model's memory and zeroes it; NULL or a zeroed model is a
   no-op (so is a second call). */
ADASM_DEF void adasm_svd_free(adasm_svd_model *m);

/* A query in the shared shape (see adasm_exact_params). The defaults of
   window and top are the command-line tool's. */
typedef struct adasm_svd_params {
  size_t k;       /* rows to return, 1 <= k <= N; default 1 */
  size_t window;  /* W, preview columns, 1 <= W <= d; 0 (default): d / 8,
                     at least 16, at most d */
  size_t top;     /* N, rows refined with all d columns, k <= N <= n; 0
                     (default): 512, at least k, at most n */
  float beta;     /* inverse temperature, finite, > 0; default 1 */
  const adasm_kernels *kern; /* NULL (default): the best the CPU has; it
                     changes which rows are refined only through the
                     rounding of the previews */
} adasm_svd_params;

typedef struct adasm_svd_result {
  size_t *idx;     /* caller array of k: rows, best first by refined logit
                      (ties: lower index first) */
  float *prob;     /* caller array of k: their probabilities */
  double log_norm; /* log of the mixed normalizer (adasm_svd_query) */
  uint64_t madds;  /* multiply-adds executed: d^2 + n W + N (d - W) */
} adasm_svd_result;

ADASM_DEF adasm_svd_params adasm_svd_params_default(void);

/* Bytes of workspace adasm_svd_query needs for this model and params (of
   them only N matters): about 4 (2 * 16 ceil(d/16) + 2 n) + sizeof(size_t)
   (n + N), plus up to 64 bytes of alignment padding for each of its six
   pieces and 64 more; ask this function rather than the formula. The
   workspace itself needs no alignment.
   Errors: as adasm_svd_query's argument checks (ADASM_ERR_NULL also for
   bytes NULL), ADASM_ERR_OVERFLOW. */
ADASM_DEF adasm_result adasm_svd_workspace_size(const adasm_svd_model *m,
                                                const adasm_svd_params *params,
                                                size_t *bytes);

/* Top k rows of softmax(beta A x) by SVD-softmax: previews of every row
   from the first W singular directions, the N best refined with all d.
   out->idx and out->prob: k entries each, best first by refined logit
   (ties: lower index first). prob[t] = exp(refined_t - log_norm), where
   log_norm is log(sum over the N refined rows of exp(refined) + sum over
   the other rows of exp(preview)), computed like the exact path's (max
   taken out, sums in double); an entry below the N-th preview is never
   returned. madds: d^2 (x~ = V^T x) + n W (previews) + N (d - W)
   (refinement), against n d for adasm_gemv_softmax_topk.
   Cost: reads 4 d^2 bytes of V^T, 4 n 16 ceil(W/16) bytes of B in
   contiguous runs, and N rows of d/16 lines each; plus n exponentials.
   Errors: ADASM_ERR_NULL (m, params, x, out, out->idx or out->prob NULL,
   or an unbuilt model), ADASM_ERR_SIZE (window > d, top > n, k = 0 or
   k > N), ADASM_ERR_PARAM (beta not finite and > 0), ADASM_ERR_WORKSPACE
   (work NULL or smaller than adasm_svd_workspace_size); outputs untouched.
   Data errors write every prob and log_norm as NaN and madds as 0: x
   holding a NaN (ADASM_ERR_NAN; every idx 0), x holding +-inf
   (ADASM_ERR_PARAM, as adasm_ada_query; every idx 0), a logit that
   overflows to NaN (ADASM_ERR_NAN; idx as the exact path leaves it).
   Every logit overflowing to -inf (beta A x below -FLT_MAX on every row):
   ADASM_ERR_NO_FINITE_MAX, every prob NaN, log_norm -inf, madds 0, as the
   exact path. Logits that overflow to +inf share the mass, as in the
   exact path. The gain depends on the spectrum: a head whose leading
   singular values dominate (trained heads) gains several times at 99%
   top-1 agreement, a flat one (random Gaussian rows) almost nothing
   (README, the baselines table). */
ADASM_DEF adasm_result adasm_svd_query(const adasm_svd_model *m,
                                       const adasm_svd_params *params,
                                       const float *x, void *work,
                                       size_t work_bytes,
                                       adasm_svd_result *out);

#endif /* ADASM_NO_SVD */

/* ---- Certified exact top-k of softmax(beta A x) for float32 A -----------
   The exact top-k, read mostly from a 16-bit copy: an index keeps A in f16
   (each row scaled by a power of two to [2^14, 2^15), so no row loses
   range) with a rigorous error bound per row. A query screens every row
   through the copy (half the bytes of A), takes T = the k-th largest lower
   bound, recomputes from the float32 rows only the rows whose upper bound
   reaches T, and returns their top k. A row left out is below at least k
   recomputed rows for certain, so the answer is the one the float32 exact
   path (adasm_exact_query / adasm_gemv_softmax_topk with the same kernel
   set) returns, bit for bit: same rows, same order, ties included. No
   probability of failure: the bound is a proof, not a statistic.
   The bound on |screened - float32 path's logit| of row i:
     beta (e_i + g (2^-s_i ||h_i|| + ||A_i||)) ||x||_2
       + beta 2^-123 (2^-s_i (d + ||h_i||_1) + d + ||A_i||_1 + (2^-s_i + 1)
         ||x||_1) + 2^-122,
   e_i = ||A_i - 2^-s_i h_i||_2 (measured at build, in double), h_i the
   scaled f16 row, g = gamma(ADASM__DOT_DEPTH(d)) the rounding bound of the
   dot kernels (both the screen's and the float32 path's, any ISA), the
   2^-123 terms flush-to-zero and underflow (so the bound holds even under
   FTZ/DAZ). Cost per query: one read of the copy (2 n d bytes), 8 n bytes
   of bounds, and d floats per recomputed row (on real heads the k rows and
   a few near-ties; every row if all rows tie). The normalizer uses the
   exact logits of the recomputed rows and the screened ones elsewhere; its
   error bound is reported per query (log_norm_err, typically ~1e-4 times
   beta |A_i| |x|). The index is read-only during queries: threads may
   share it, each with its own workspace. */
typedef struct adasm_certified_index {
  size_t n, d, lda;   /* A: n x d, leading dimension lda */
  const float *A;     /* the caller's float32 rows (not owned: must outlive
                         the index; the recomputed rows are read from it) */
  uint16_t *h;        /* f16 copy, n x d, row i = f16(A_i 2^s_i) */
  float *scale;       /* 2^-s_i */
  float *c2, *c1;     /* per-row bound: c2 ||x||_2 + c1 (1 + ||x||_1), times
                         beta (rounded up) */
  double anorm;       /* max_i ||A_i||_2 (rounded up): with ||x||_2 it tells
                         whether the float32 path's sums could overflow */
  void *block;        /* the one allocation, for adasm_certified_free */
  void *alloc_ctx;    /* passed to ADASM_MALLOC / ADASM_FREE */
} adasm_certified_index;

typedef struct adasm_certified_params {
  size_t k;                  /* rows to return, 1 <= k <= n; default 1 */
  float beta;                /* inverse temperature, finite, > 0; default 1 */
  const adasm_kernels *kern; /* NULL (default): the best the CPU has; the
                                answer is the exact path's with this set */
} adasm_certified_params;

typedef struct adasm_certified_result {
  size_t *idx;         /* caller array of k: rows, best first (ties: lower
                          index first) */
  float *prob;         /* caller array of k: their probabilities */
  double log_norm;     /* log sum_i exp(logit_i), screened logits for the
                          rows not recomputed */
  double log_norm_err; /* bound on |log_norm - the exact path's log_norm|
                          (beyond both paths' ~1e-7 rounding); prob[t] is
                          within a factor exp(+-log_norm_err) of the exact
                          path's. 0 when every row was recomputed */
  uint64_t madds;      /* n d (screen) + d per recomputed row */
  size_t rows_exact;   /* rows recomputed from the float32 A */
} adasm_certified_result;

/* Builds the index of a float32 matrix (A->dtype ADASM_F32): one allocation
   of 2 n d + 12 n bytes (+ 256), one pass over A. The index keeps a
   pointer to A->data. Errors: ADASM_ERR_NULL (ix, A or A->data),
   ADASM_ERR_PARAM (A is not float32, or holds +-inf), ADASM_ERR_NAN (A
   holds a NaN), ADASM_ERR_SIZE (rows or cols 0, ld < cols),
   ADASM_ERR_OVERFLOW, ADASM_ERR_NOMEM; *ix is written only on success. */
ADASM_DEF adasm_result adasm_certified_build(adasm_certified_index *ix,
                                             const adasm_matrix *A,
                                             void *alloc_ctx);
/* Frees the index and zeroes it; NULL or a zeroed index is a no-op. */
ADASM_DEF void adasm_certified_free(adasm_certified_index *ix);
ADASM_DEF adasm_certified_params adasm_certified_params_default(void);
/* Bytes of workspace for this index and params->k: 8 n + 8 k (+ 256); no
   alignment needed. Errors: ADASM_ERR_NULL, ADASM_ERR_SIZE (k), an
   unbuilt index (ADASM_ERR_NULL). */
ADASM_DEF adasm_result adasm_certified_workspace_size(
    const adasm_certified_index *ix, const adasm_certified_params *params,
    size_t *bytes);
/* Top k rows of softmax(beta A x), exactly as the float32 exact path with
   params->kern returns them (see above). x holding +-inf or NaN, logits
   that could reach 2^126, or max_i ||A_i|| ||x|| >= 2^126 (the float32
   path's sums, formed before beta scales them, could overflow) fall back
   to the float32 exact path over every row (rows_exact = n), so special
   values and errors are its own: ADASM_ERR_NAN, ADASM_ERR_NO_FINITE_MAX,
   +inf logits sharing the mass.
   Errors: ADASM_ERR_NULL (ix unbuilt, params, x, out, out->idx,
   out->prob), ADASM_ERR_SIZE (k not in [1, n]), ADASM_ERR_PARAM (beta not
   finite and > 0), ADASM_ERR_WORKSPACE; outputs untouched on these. */
ADASM_DEF adasm_result adasm_certified_query(const adasm_certified_index *ix,
                                             const adasm_certified_params *params,
                                             const float *x, void *work,
                                             size_t work_bytes,
                                             adasm_certified_result *out);

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
/* The AVX-512 BF16 dot product (vdpbf16ps): a variant of the AVX-512 set,
   used only when the CPU reports it (>>cpu, >>dispatch). */
#if defined(ADASM__HAVE_AVX512) && !defined(ADASM_NO_AVX512BF16) &&          \
    (defined(__clang__) ? __clang_major__ >= 9                               \
                        : (defined(__GNUC__) ? __GNUC__ >= 10 : 0))
#define ADASM__HAVE_AVX512BF16 1
#endif

#if defined(ADASM__HAVE_AVX2) || defined(ADASM__HAVE_AVX512)
#include <immintrin.h>
#endif
#if defined(ADASM__HAVE_NEON)
#include <arm_neon.h>
#endif

#if defined(__GNUC__) || defined(__clang__)
#define ADASM__PRIVATE static __attribute__((unused))
#define ADASM__TARGET_AVX2 __attribute__((target("avx2,fma,f16c")))
#define ADASM__TARGET_AVX512                                                   \
  __attribute__((target("avx512f,avx512dq,avx512bw,avx512vl,avx2,fma,f16c")))
#define ADASM__TARGET_AVX512BF16                                               \
  __attribute__((target(                                                       \
      "avx512f,avx512dq,avx512bw,avx512vl,avx2,fma,f16c,avx512bf16")))
#define ADASM__FORCEINLINE static inline __attribute__((always_inline))
#define ADASM__RESTRICT __restrict
#define ADASM__LIKELY(x) __builtin_expect(!!(x), 1)
#else
#define ADASM__PRIVATE static
#define ADASM__TARGET_AVX2
#define ADASM__TARGET_AVX512
#define ADASM__TARGET_AVX512BF16
#if defined(_MSC_VER)
#define ADASM__FORCEINLINE static __forceinline
#else
#define ADASM__FORCEINLINE static inline
#endif
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

/* Workspaces: every method lays its pieces out with one carver, first to
   measure (base NULL), then to cut the same sequence from an aligned base.
   Each piece starts on a 64-byte line. */
#define ADASM__ALIGN 64
typedef struct adasm__carver {
  unsigned char *base; /* NULL: only measure */
  size_t off;          /* bytes taken so far */
  int ok;              /* 0 once a size overflowed size_t */
} adasm__carver;

ADASM__PRIVATE void *adasm__carve(adasm__carver *c, size_t count,
                                  size_t elem) {
  size_t bytes, at;
  if (!c->ok || adasm__mul_overflows(count, elem, &bytes) ||
      bytes > (size_t)-1 - (ADASM__ALIGN - 1)) {
    c->ok = 0;
    return NULL;
  }
  bytes = (bytes + (ADASM__ALIGN - 1)) & ~(size_t)(ADASM__ALIGN - 1);
  if (c->off > (size_t)-1 - bytes) {
    c->ok = 0;
    return NULL;
  }
  at = c->off;
  c->off += bytes;
  return c->base ? (void *)(c->base + at) : NULL;
}

/* The first 64-byte aligned address at or after p (p may be NULL). */
ADASM__PRIVATE unsigned char *adasm__align_up(void *p) {
  const uintptr_t a = (uintptr_t)p;
  return (unsigned char *)p + ((ADASM__ALIGN - a % ADASM__ALIGN) % ADASM__ALIGN);
}

/* 1 if v[0..n) holds a NaN, 2 if it holds an infinity (and no NaN), 0 if
   every entry is finite. */
ADASM__PRIVATE int adasm__nonfinite(const float *v, size_t n) {
  unsigned nan = 0, inf = 0; /* on the bits, without branches: vectorised */
  size_t i;
  for (i = 0; i < n; ++i) {
    uint32_t b;
    memcpy(&b, v + i, sizeof b);
    b &= 0x7fffffffu;
    nan |= b > 0x7f800000u;
    inf |= b >= 0x7f800000u;
  }
  return nan ? 1 : inf ? 2 : 0;
}

/* Sorts the indices v[0..n) by key[v] descending, ties by lower index
   (heap sort: O(n log n), no memory, deterministic). */
ADASM__PRIVATE int adasm__before(const double *key, size_t a, size_t b) {
  return key[a] > key[b] || (!(key[a] < key[b]) && a < b);
}
ADASM__PRIVATE void adasm__sift(size_t *v, size_t root, size_t n,
                                const double *key) {
  for (;;) {
    size_t child = 2 * root + 1, pick = root, t;
    if (child < n && adasm__before(key, v[pick], v[child])) pick = child;
    if (child + 1 < n && adasm__before(key, v[pick], v[child + 1]))
      pick = child + 1;
    if (pick == root) return;
    t = v[root];
    v[root] = v[pick];
    v[pick] = t;
    root = pick;
  }
}
ADASM__PRIVATE void adasm__sort_desc(size_t *v, size_t n, const double *key) {
  size_t i, t;
  if (n < 2) return;
  for (i = n / 2; i-- > 0;) adasm__sift(v, i, n, key);
  for (i = n - 1; i > 0; --i) {
    t = v[0];
    v[0] = v[i];
    v[i] = t;
    adasm__sift(v, 0, i, key);
  }
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
  if (e == 0x1fu) /* inf, or NaN made quiet (as F16C and FCVTL do) */
    return adasm__u2f(sign | 0x7f800000u | (m << 13) | (m ? 0x400000u : 0u));
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
#define ADASM__CPU_AVX2 2       /* AVX2 + FMA + F16C */
#define ADASM__CPU_AVX512 4
#define ADASM__CPU_AVX512BF16 8 /* AVX-512 + vdpbf16ps */

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
  /* OSXSAVE (27), AVX (28), FMA (12), F16C (29) */
  if (!(r[2] & (1u << 27)) || !(r[2] & (1u << 28)) || !(r[2] & (1u << 12)) ||
      !(r[2] & (1u << 29)))
    return f;
  xcr0 = adasm__xgetbv();
  if ((xcr0 & 0x6u) != 0x6u) return f; /* XMM and YMM state */
  adasm__cpuid(7, 0, r);
  if (r[1] & (1u << 5)) f |= ADASM__CPU_AVX2;
  /* AVX-512 F (16), DQ (17), BW (30), VL (31); opmask + ZMM state (5..7) */
  if ((r[1] & (1u << 16)) && (r[1] & (1u << 17)) && (r[1] & (1u << 30)) &&
      (r[1] & (1u << 31)) && (xcr0 & 0xe6u) == 0xe6u && (f & ADASM__CPU_AVX2))
    f |= ADASM__CPU_AVX512;
  /* AVX512_BF16: leaf 7 subleaf 1, EAX bit 5 (subleaf 1 exists when
     subleaf 0 reports a maximum subleaf >= 1 in EAX) */
  if ((f & ADASM__CPU_AVX512) && r[0] >= 1u) {
    adasm__cpuid(7, 1, r);
    if (r[0] & (1u << 5)) f |= ADASM__CPU_AVX512BF16;
  }
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

/* AdaSoftmax's running sums of one query, one float per arm each (see
   >>ada): e over the certain columns, p over the sampled ones (sign of x_j
   times the entry), q their squares (the variance estimate). */
typedef struct adasm__ada_acc {
  float *e, *p, *q;
} adasm__ada_acc;

/* Inputs of the bounds kernel for one round (>>ada derives them): per arm
     u   = e + p inv_lam                        (the estimate)
     v   = q inv_lam^2                          (its variance estimate)
     b   = rho inv_lam                          (range of one term)
     s   = b sl,  su = sqrt(v + s^2) + s        (sqrt of the variance bound)
     rad = scale (cl su + b l3) + bias_rho rho + bias_abs
           + bias_rel (|e| + |p| inv_lam)
   and ucb = u + rad, lcb = u - rad. */
typedef struct adasm__ada_bp {
  const float *e, *p, *q, *rho;
  float inv_lam, sl, cl, l3, scale;
  float bias_rho, bias_abs, bias_rel;
} adasm__ada_bp;
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

#ifndef ADASM_NO_SVD
/* SVD-softmax's kernels of one ISA, the member `svd` of its table. */
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
#endif /* ADASM_NO_SVD */

struct adasm_kernels {
  adasm_isa isa;
  /* per dtype (f32, f16, bf16): the fewest float lanes any of the set's
     dot kernels sums a row in; its rounding chain is d / lanes + 12 at
     most (see adasm__dot_depth) */
  unsigned char dot_lanes[3];
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
  /* The same for rows of f16 and bf16 bits, x and the sums in float. The
     scalar and NEON ones are dot_rows with the load widened (bit for bit
     dot_rows on the widened rows, NaN payloads aside); AVX2 and AVX-512
     stream one row at a time with their own lanes (see >>k_avx512), and
     the AVX-512 BF16 variant of dot_rows_bf16 uses vdpbf16ps. Every dot
     kernel, float or 16-bit, rounds at most ADASM__DOT_DEPTH(d) times on
     the way from a product to y[r] (its error budget, see there). */
  void (*dot_rows_f16)(const uint16_t *A, size_t rows, size_t d, size_t lda,
                       const float *x, float beta, float *y);
  void (*dot_rows_bf16)(const uint16_t *A, size_t rows, size_t d, size_t lda,
                        const float *x, float beta, float *y);
  /* Array conversions, bit for bit the scalar adasm_f32_to_f16 & co. */
  void (*f32_to_f16)(const float *src, size_t n, uint16_t *dst);
  void (*f16_to_f32)(const uint16_t *src, size_t n, float *dst);
  void (*f32_to_bf16)(const float *src, size_t n, uint16_t *dst);
  void (*bf16_to_f32)(const uint16_t *src, size_t n, float *dst);
  /* out[t] = sum_j A_{r_t, j} x_j in double (a float product is exact in
     double; the sum rounds in double), r_t = rows[t], or r0 + t when rows
     is NULL; A of any dtype */
  void (*dot_rows_f64)(const adasm_matrix *A, const size_t *rows, size_t r0,
                       size_t cnt, const float *x, double *out);
  /* AdaSoftmax: adds columns c[0..nc) of the f16 column-major index
     (column c[t] starts at cols + c[t] ldc) to the running sums of rows
     [r0, r1): with a the entry and f = coef + 3t, e += f[0] a,
     p += f[1] a, q += f[2] a^2 (float, in column order); with init the
     sums start from 0 (their old contents are not read) */
  void (*ada_accum)(const uint16_t *cols, size_t ldc, const size_t *c,
                    const float *coef, size_t nc, size_t r0, size_t r1,
                    const adasm__ada_acc *acc, int init);
  /* AdaSoftmax: ucb and lcb of rows [r0, r1) (adasm__ada_bp); raises
     mx[0] to the largest ucb and mx[1] to the largest lcb */
  void (*ada_bounds)(const adasm__ada_bp *bp, size_t r0, size_t r1,
                     float *ucb, float *lcb, float *mx);
  /* AdaSoftmax normalizer profile of rows [r0, r1): du = g (ucb - m),
     dl = g (lcb - m) (float), bucket b = 0 if du > -1, else
     min(nb - 1, floor(-du)); adds 1, e^du, e^dl and e^((du + dl) / 2) to
     hb[4b .. 4b + 3], each exp's argument first clamped to <= 64; rows
     with b < nb - 1 are also appended, in order, to near[] (the row) and
     nearb[] (b) at *nn. The exps are this table's exp (relative error
     < 2e-7; 0 below e^-86); g finite and > 0; 2 <= nb <= 33 */
  void (*ada_profile)(const float *ucb, const float *lcb, size_t r0,
                      size_t r1, float m, float g, size_t nb, double *hb,
                      size_t *near, unsigned char *nearb, size_t *nn);
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
#ifndef ADASM_NO_SVD
  adasm__svd_kset svd; /* SVD-softmax (>>svd); NEON: the scalar ones */
#endif
};

/* Rounding depth of every dot kernel: a product a_j x_j reaches y[r]
   through at most this many float roundings (lane chain d / lanes, the
   tail, the horizontal sum, the scaling by beta), so
     |y[r] - beta sum_j a_j x_j| <= gamma(ADASM__DOT_DEPTH(d)) beta
                                     sum_j |a_j x_j|,  gamma(m) = m u/(1-m u),
   u = 2^-24, in round-to-nearest without underflow (the scalar kernels sum
   in double, far inside it). The longest chains: NEON 8 lanes (d/8 + 11),
   AVX-512 vdpbf16ps over 4 rows (d > 4096; four roundings per 32 columns:
   d/8 + 10); the others d/16 + 7 or less. */
#define ADASM__DOT_DEPTH(d) ((d) / 4 + 16)
/* Besides, underflow (and vdpbf16ps's flush of subnormal inputs and
   results) adds at most 2^-123 (d + sum_j |a_j| + sum_j |x_j|) beta. */
/* The depth of kernel set k on dtype t: twice its longest chain (a margin
   for a miscount), never more than the bound for every set. */
ADASM__PRIVATE size_t adasm__dot_depth(const adasm_kernels *k, adasm_dtype t,
                                       size_t d) {
  const size_t own = 2u * (d / k->dot_lanes[t] + 12u);
  return own < (size_t)ADASM__DOT_DEPTH(d) ? own : (size_t)ADASM__DOT_DEPTH(d);
}
/* Powers of two as decimal constants (C++11 has no hex floats). */
#define ADASM__P2M22 2.384185791015625e-07
#define ADASM__P2M24 5.960464477539063e-08
#define ADASM__P2M50 8.881784197001252e-16
#define ADASM__P2M52 2.220446049250313e-16
#define ADASM__P2M122 1.88079096131566e-37
#define ADASM__P2M148 2.802596928649634e-45
#define ADASM__P2M123 9.4039548065783e-38
#define ADASM__P2P126 8.507059173023462e+37
/* The 16-bit SIMD dot kernels read rows of d >= this four at a time, and
   shorter rows one after another (measured: see >>k_avx512). */
#define ADASM__ROWS4_MIN 2048u

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

/* Exp parameters that take the maximum m (finite) out of every term. */
ADASM__PRIVATE void adasm__expp_fold(int N, adasm__expp *e) {
  e->shift = 0.0f;
  e->N = N;
  e->magic = ADASM__MAGIC + (float)(127 - N);
  /* z >= cutoff keeps n - N >= -126, a normal power of two */
  e->cutoff = (float)(((double)N - 125.0) * ADASM__LN2);
  e->base = (double)N * ADASM__LN2;
}

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

/* One row of any dtype against x, in double. */
ADASM__PRIVATE double adasm__dot_f64_scalar(const adasm_matrix *A, size_t r,
                                           const float *x) {
  const size_t d = A->cols;
  double s0 = 0.0, s1 = 0.0;
  size_t j;
  if (A->dtype == ADASM_F32) {
    const float *a = (const float *)A->data + r * A->ld;
    for (j = 0; j + 2 <= d; j += 2) {
      s0 += (double)a[j] * (double)x[j];
      s1 += (double)a[j + 1] * (double)x[j + 1];
    }
    if (j < d) s0 += (double)a[j] * (double)x[j];
  } else {
    const uint16_t *a = (const uint16_t *)A->data + r * A->ld;
    const int f16 = A->dtype == ADASM_F16;
    for (j = 0; j < d; ++j)
      s0 += (double)(f16 ? adasm_f16_to_f32(a[j]) : adasm_bf16_to_f32(a[j])) *
            (double)x[j];
  }
  return s0 + s1;
}

ADASM__PRIVATE void adasm__dot_rows_f64_scalar(const adasm_matrix *A,
                                               const size_t *rows, size_t r0,
                                               size_t cnt, const float *x,
                                               double *out) {
  size_t t;
  for (t = 0; t < cnt; ++t)
    out[t] = adasm__dot_f64_scalar(A, rows ? rows[t] : r0 + t, x);
}

ADASM__PRIVATE void adasm__ada_accum_scalar(const uint16_t *cols, size_t ldc,
                                            const size_t *c, const float *coef,
                                            size_t nc, size_t r0, size_t r1,
                                            const adasm__ada_acc *acc,
                                            int init) {
  size_t t, i;
  if (init)
    for (i = r0; i < r1; ++i) acc->e[i] = acc->p[i] = acc->q[i] = 0.0f;
  for (t = 0; t < nc; ++t) {
    const uint16_t *col = cols + c[t] * ldc;
    const float *f = coef + 3 * t;
    for (i = r0; i < r1; ++i) {
      const float a = adasm_f16_to_f32(col[i]);
      acc->e[i] += f[0] * a;
      acc->p[i] += f[1] * a;
      acc->q[i] += f[2] * (a * a);
    }
  }
}

ADASM__PRIVATE void adasm__ada_bounds_scalar(const adasm__ada_bp *bp,
                                             size_t r0, size_t r1, float *ucb,
                                             float *lcb, float *mx) {
  float hi = mx[0], lo = mx[1];
  size_t i;
  for (i = r0; i < r1; ++i) {
    const float e = bp->e[i], p = bp->p[i], rho = bp->rho[i];
    const float u = e + p * bp->inv_lam;
    const float v = bp->q[i] * bp->inv_lam * bp->inv_lam;
    const float b = rho * bp->inv_lam, s = b * bp->sl;
    float su, rad;
    su = sqrtf((v > 0.0f ? v : 0.0f) + s * s) + s;
    rad = bp->scale * (bp->cl * su + b * bp->l3) + bp->bias_rho * rho +
          bp->bias_abs + bp->bias_rel * (fabsf(e) + fabsf(p) * bp->inv_lam);
    ucb[i] = u + rad;
    lcb[i] = u - rad;
    hi = ucb[i] > hi ? ucb[i] : hi;
    lo = lcb[i] > lo ? lcb[i] : lo;
  }
  mx[0] = hi;
  mx[1] = lo;
}

/* e^x for x <= 64 with the SIMD kernels' algorithm; 0 below e^-86. */
ADASM__PRIVATE double adasm__exp_lim_scalar(double x) {
  double nn, t;
  if (!(x >= -86.0)) return 0.0;
  nn = floor(x * ADASM__LOG2E + 0.5);
  t = x - nn * ADASM__LN2;
  return adasm__exp_core_scalar(t, (int)nn);
}

ADASM__PRIVATE void adasm__ada_profile_scalar(const float *ucb,
                                              const float *lcb, size_t r0,
                                              size_t r1, float m, float g,
                                              size_t nb, double *hb,
                                              size_t *near,
                                              unsigned char *nearb,
                                              size_t *nn) {
  size_t i;
  for (i = r0; i < r1; ++i) {
    const float du = g * (ucb[i] - m), dl = g * (lcb[i] - m);
    const float b = du > -1.0f ? 0.0f
                               : (-du < (float)(nb - 1) ? -du : (float)(nb - 1));
    const double cu = du < 64.0f ? (double)du : 64.0;
    const double cl = dl < 64.0f ? (double)dl : 64.0;
    double *h = hb + 4 * (size_t)b;
    if ((size_t)b < nb - 1) {
      near[*nn] = i;
      nearb[(*nn)++] = (unsigned char)b;
    }
    h[0] += 1.0;
    h[1] += adasm__exp_lim_scalar(cu);
    h[2] += adasm__exp_lim_scalar(cl);
    h[3] += adasm__exp_lim_scalar(0.5 * (cu + cl));
  }
}

/* dot_rows over 16-bit rows: the same loop with each entry widened
   exactly (so equal to dot_rows on the widened rows, bit for bit). */
ADASM__FORCEINLINE void adasm__dot_rows_h_scalar(const uint16_t *A,
                                                 size_t rows, size_t d,
                                                 size_t lda, const float *x,
                                                 float beta, float *y,
                                                 int bf) {
  size_t r, j;
  for (r = 0; r < rows; ++r) {
    const uint16_t *a = A + r * lda;
    double s0 = 0, s1 = 0;
#define ADASM__W(h) (double)(bf ? adasm_bf16_to_f32(h) : adasm_f16_to_f32(h))
    for (j = 0; j + 2 <= d; j += 2) {
      s0 += ADASM__W(a[j]) * (double)x[j];
      s1 += ADASM__W(a[j + 1]) * (double)x[j + 1];
    }
    if (j < d) s0 += ADASM__W(a[j]) * (double)x[j];
#undef ADASM__W
    y[r] = (float)((double)beta * (s0 + s1));
  }
}
ADASM__PRIVATE void adasm__dot_rows_f16_scalar(const uint16_t *A, size_t rows,
                                               size_t d, size_t lda,
                                               const float *x, float beta,
                                               float *y) {
  adasm__dot_rows_h_scalar(A, rows, d, lda, x, beta, y, 0);
}
ADASM__PRIVATE void adasm__dot_rows_bf16_scalar(const uint16_t *A,
                                                size_t rows, size_t d,
                                                size_t lda, const float *x,
                                                float beta, float *y) {
  adasm__dot_rows_h_scalar(A, rows, d, lda, x, beta, y, 1);
}

ADASM__PRIVATE void adasm__cvt_f32_f16_scalar(const float *src, size_t n,
                                              uint16_t *dst) {
  size_t i;
  for (i = 0; i < n; ++i) dst[i] = adasm_f32_to_f16(src[i]);
}
ADASM__PRIVATE void adasm__cvt_f16_f32_scalar(const uint16_t *src, size_t n,
                                              float *dst) {
  size_t i;
  for (i = 0; i < n; ++i) dst[i] = adasm_f16_to_f32(src[i]);
}
ADASM__PRIVATE void adasm__cvt_f32_bf16_scalar(const float *src, size_t n,
                                               uint16_t *dst) {
  size_t i;
  for (i = 0; i < n; ++i) dst[i] = adasm_f32_to_bf16(src[i]);
}
ADASM__PRIVATE void adasm__cvt_bf16_f32_scalar(const uint16_t *src, size_t n,
                                               float *dst) {
  size_t i;
  for (i = 0; i < n; ++i) dst[i] = adasm_bf16_to_f32(src[i]);
}

/* ---- SVD-softmax kernels (contracts at adasm__svd_kset) ----------------- */
#ifndef ADASM_NO_SVD
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
#endif /* ADASM_NO_SVD */

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
   at most V_j. Sums go through float over 8 steps, then double. Long: the
   two vectors are unrolled by hand (the same step twice), as the other
   ISAs' race kernels. */
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

/* AdaSoftmax and exact-row kernels: 8 lanes; the row tails (fewer than 8
   rows, or columns) go through the scalar kernels. */
#define ADASM__F64_STEP_AVX2(LOAD)                                             \
  do {                                                                         \
    const __m256 xv = _mm256_loadu_ps(x + j);                                  \
    const __m256d xlo = _mm256_cvtps_pd(_mm256_castps256_ps128(xv));           \
    if (pf[0] && ((j * es) & 63u) == 0) { /* a prefetch per line */          \
      _mm_prefetch((const char *)(pf[0] + j * es), _MM_HINT_T0);               \
      _mm_prefetch((const char *)(pf[1] + j * es), _MM_HINT_T0);               \
      _mm_prefetch((const char *)(pf[2] + j * es), _MM_HINT_T0);               \
      _mm_prefetch((const char *)(pf[3] + j * es), _MM_HINT_T0);               \
    }                                                                          \
    const __m256d xhi = _mm256_cvtps_pd(_mm256_extractf128_ps(xv, 1));         \
    const __m256 a0 = LOAD(row0, j), a1 = LOAD(row1, j);                       \
    const __m256 a2 = LOAD(row2, j), a3 = LOAD(row3, j);                       \
    s0 = _mm256_fmadd_pd(_mm256_cvtps_pd(_mm256_castps256_ps128(a0)), xlo, s0);\
    s1 = _mm256_fmadd_pd(_mm256_cvtps_pd(_mm256_extractf128_ps(a0, 1)), xhi, s1);\
    s2 = _mm256_fmadd_pd(_mm256_cvtps_pd(_mm256_castps256_ps128(a1)), xlo, s2);\
    s3 = _mm256_fmadd_pd(_mm256_cvtps_pd(_mm256_extractf128_ps(a1, 1)), xhi, s3);\
    s4 = _mm256_fmadd_pd(_mm256_cvtps_pd(_mm256_castps256_ps128(a2)), xlo, s4);\
    s5 = _mm256_fmadd_pd(_mm256_cvtps_pd(_mm256_extractf128_ps(a2, 1)), xhi, s5);\
    s6 = _mm256_fmadd_pd(_mm256_cvtps_pd(_mm256_castps256_ps128(a3)), xlo, s6);\
    s7 = _mm256_fmadd_pd(_mm256_cvtps_pd(_mm256_extractf128_ps(a3, 1)), xhi, s7);\
  } while (0)
#define ADASM__F64_STEP1_AVX2(LOAD)                                            \
  do {                                                                         \
    const __m256 xv = _mm256_loadu_ps(x + j), a0 = LOAD(row0, j);              \
    s0 = _mm256_fmadd_pd(_mm256_cvtps_pd(_mm256_castps256_ps128(a0)),          \
                         _mm256_cvtps_pd(_mm256_castps256_ps128(xv)), s0);     \
    s1 = _mm256_fmadd_pd(_mm256_cvtps_pd(_mm256_extractf128_ps(a0, 1)),        \
                         _mm256_cvtps_pd(_mm256_extractf128_ps(xv, 1)), s1);   \
  } while (0)
#define ADASM__LD_F32_AVX2(r, j)                                               \
  _mm256_loadu_ps((const float *)(const void *)(r) + (j))
#define ADASM__LD_F16_AVX2(r, j)                                               \
  _mm256_cvtph_ps(                                                             \
      _mm_loadu_si128((const __m128i *)(const void *)((const uint16_t *)(r) + (j))))
#define ADASM__LD_BF16_AVX2(r, j)                                              \
  _mm256_castsi256_ps(_mm256_slli_epi32(                                       \
      _mm256_cvtepu16_epi32(_mm_loadu_si128(                                   \
          (const __m128i *)(const void *)((const uint16_t *)(r) + (j)))),      \
      16))

ADASM__TARGET_AVX2 static void adasm__dot_rows_f64_avx2(
    const adasm_matrix *A, const size_t *rows, size_t r0, size_t cnt,
    const float *x, double *out) {
  const size_t d = A->cols, es = A->dtype == ADASM_F32 ? 4u : 2u;
  const size_t ld = A->ld * es, d8 = d & ~(size_t)7;
  const unsigned char *base = (const unsigned char *)A->data;
  size_t t, j, u, g;
  uintptr_t pf[4];
  for (t = 0; t < cnt; t += g) {
    const unsigned char *row[4], *row0, *row1, *row2, *row3;
    size_t ri[4];
    g = cnt - t < 4 ? 1 : 4; /* four rows, or one (see the AVX-512 kernel) */
    __m256d s0 = _mm256_setzero_pd(), s1 = s0, s2 = s0, s3 = s0, s4 = s0,
            s5 = s0, s6 = s0, s7 = s0;
    double r4[4];
    for (u = 0; u < 4; ++u) {
      ri[u] = u < g ? (rows ? rows[t + u] : r0 + t + u) : (rows ? rows[t] : r0 + t);
      row[u] = base + ri[u] * ld;
    }
    row0 = row[0];
    row1 = row[1];
    row2 = row[2];
    row3 = row[3];
    /* listed rows: the four after the next, a line per step (as the
       AVX-512 kernel; the first call prefetches rows 4..7 whole) */
    if (rows && t + 8 < cnt)
      for (u = 0; u < 4; ++u)
        pf[u] = (uintptr_t)base + rows[t + 8 + u < cnt ? t + 8 + u : cnt - 1] * ld;
    else
      pf[0] = pf[1] = pf[2] = pf[3] = 0u;
    if (rows && t == 0 && 4 < cnt) {
      const size_t h = cnt - 4 < 4 ? cnt - 4 : 4;
      for (u = 0; u < h; ++u) {
        const uintptr_t nx = (uintptr_t)base + rows[4 + u] * ld;
        size_t o;
        for (o = 0; o < d * es; o += 64) _mm_prefetch((const char *)(nx + o), _MM_HINT_T0);
      }
    }
    if (g == 1 && A->dtype == ADASM_F32) {
      for (j = 0; j < d8; j += 8) ADASM__F64_STEP1_AVX2(ADASM__LD_F32_AVX2);
    } else if (g == 1 && A->dtype == ADASM_F16) {
      for (j = 0; j < d8; j += 8) ADASM__F64_STEP1_AVX2(ADASM__LD_F16_AVX2);
    } else if (g == 1) {
      for (j = 0; j < d8; j += 8) ADASM__F64_STEP1_AVX2(ADASM__LD_BF16_AVX2);
    } else if (A->dtype == ADASM_F32) {
      for (j = 0; j < d8; j += 8) ADASM__F64_STEP_AVX2(ADASM__LD_F32_AVX2);
    } else if (A->dtype == ADASM_F16) {
      for (j = 0; j < d8; j += 8) ADASM__F64_STEP_AVX2(ADASM__LD_F16_AVX2);
    } else {
      for (j = 0; j < d8; j += 8) ADASM__F64_STEP_AVX2(ADASM__LD_BF16_AVX2);
    }
    r4[0] = adasm__hsum_pd_avx2(_mm256_add_pd(s0, s1));
    r4[1] = adasm__hsum_pd_avx2(_mm256_add_pd(s2, s3));
    r4[2] = adasm__hsum_pd_avx2(_mm256_add_pd(s4, s5));
    r4[3] = adasm__hsum_pd_avx2(_mm256_add_pd(s6, s7));
    for (u = 0; u < g; ++u) {
      double tail = 0.0;
      for (j = d8; j < d; ++j) {
        const size_t o = ri[u] * A->ld + j;
        const float a = A->dtype == ADASM_F32 ? ((const float *)A->data)[o]
                        : A->dtype == ADASM_F16
                            ? adasm_f16_to_f32(((const uint16_t *)A->data)[o])
                            : adasm_bf16_to_f32(((const uint16_t *)A->data)[o]);
        tail += (double)a * (double)x[j];
      }
      out[t + u] = r4[u] + tail;
    }
  }
}
#undef ADASM__F64_STEP_AVX2
#undef ADASM__F64_STEP1_AVX2
#undef ADASM__LD_F32_AVX2
#undef ADASM__LD_F16_AVX2
#undef ADASM__LD_BF16_AVX2

ADASM__TARGET_AVX2 static void adasm__ada_accum_avx2(
    const uint16_t *cols, size_t ldc, const size_t *c, const float *coef,
    size_t nc, size_t r0, size_t r1, const adasm__ada_acc *acc, int init) {
  const size_t r8 = r0 + ((r1 - r0) & ~(size_t)7);
  size_t t, i, u;
  for (t = 0; t < nc || (init && t == 0); t += 8) {
    const size_t g = nc - t < 8 ? nc - t : 8;
    const int fresh = init && t == 0;
    const uint16_t *col[8];
    float f[8][3];
    for (u = 0; u < 8; ++u) {
      size_t v;
      col[u] = u < g ? cols + c[t + u] * ldc : cols;
      for (v = 0; v < 3; ++v) f[u][v] = u < g ? coef[3 * (t + u) + v] : 0.0f;
    }
    for (i = r0; i < r8; i += 8) {
      __m256 e = _mm256_setzero_ps(), p = e, q = e;
      if (!fresh) {
        e = _mm256_loadu_ps(acc->e + i);
        p = _mm256_loadu_ps(acc->p + i);
        q = _mm256_loadu_ps(acc->q + i);
      }
      if (((i - r0) & 31u) == 0)
        for (u = 0; u < g; ++u)
          _mm_prefetch((const char *)(uintptr_t)((uintptr_t)(col[u] + i) + 512u),
                       _MM_HINT_T0);
      for (u = 0; u < g; ++u) {
        const __m256 a = _mm256_cvtph_ps(
            _mm_loadu_si128((const __m128i *)(const void *)(col[u] + i)));
        e = _mm256_fmadd_ps(_mm256_set1_ps(f[u][0]), a, e);
        p = _mm256_fmadd_ps(_mm256_set1_ps(f[u][1]), a, p);
        q = _mm256_fmadd_ps(_mm256_set1_ps(f[u][2]), _mm256_mul_ps(a, a), q);
      }
      _mm256_storeu_ps(acc->e + i, e);
      _mm256_storeu_ps(acc->p + i, p);
      _mm256_storeu_ps(acc->q + i, q);
    }
    if (nc == 0) break;
  }
  if (r8 < r1) adasm__ada_accum_scalar(cols, ldc, c, coef, nc, r8, r1, acc, init);
}

ADASM__TARGET_AVX2 static void adasm__ada_bounds_avx2(
    const adasm__ada_bp *bp, size_t r0, size_t r1, float *ucb, float *lcb,
    float *mx) {
  const size_t r8 = r0 + ((r1 - r0) & ~(size_t)7);
  const __m256 il = _mm256_set1_ps(bp->inv_lam), sl = _mm256_set1_ps(bp->sl);
  const __m256 cl = _mm256_set1_ps(bp->cl), l3 = _mm256_set1_ps(bp->l3);
  const __m256 sc = _mm256_set1_ps(bp->scale), br = _mm256_set1_ps(bp->bias_rho);
  const __m256 ba = _mm256_set1_ps(bp->bias_abs), bl = _mm256_set1_ps(bp->bias_rel);
  const __m256 zero = _mm256_setzero_ps();
  const __m256 nosign = _mm256_castsi256_ps(_mm256_set1_epi32(0x7fffffff));
  __m256 hi = _mm256_set1_ps(mx[0]), lo = _mm256_set1_ps(mx[1]);
  size_t i;
  for (i = r0; i < r8; i += 8) {
    const __m256 e = _mm256_loadu_ps(bp->e + i), p = _mm256_loadu_ps(bp->p + i);
    const __m256 rho = _mm256_loadu_ps(bp->rho + i);
    const __m256 u = _mm256_fmadd_ps(p, il, e);
    const __m256 b = _mm256_mul_ps(rho, il), sv = _mm256_mul_ps(b, sl);
    const __m256 v = _mm256_max_ps(
        _mm256_mul_ps(_mm256_mul_ps(_mm256_loadu_ps(bp->q + i), il), il), zero);
    const __m256 su = _mm256_add_ps(_mm256_sqrt_ps(_mm256_fmadd_ps(sv, sv, v)), sv);
    __m256 rad = _mm256_mul_ps(sc, _mm256_fmadd_ps(cl, su, _mm256_mul_ps(b, l3)));
    __m256 up, dn;
    rad = _mm256_fmadd_ps(br, rho, _mm256_add_ps(rad, ba));
    rad = _mm256_fmadd_ps(bl, _mm256_fmadd_ps(_mm256_and_ps(p, nosign), il,
                                              _mm256_and_ps(e, nosign)), rad);
    up = _mm256_add_ps(u, rad);
    dn = _mm256_sub_ps(u, rad);
    _mm256_storeu_ps(ucb + i, up);
    _mm256_storeu_ps(lcb + i, dn);
    hi = _mm256_max_ps(hi, up);
    lo = _mm256_max_ps(lo, dn);
  }
  mx[0] = adasm__hmax_avx2(hi);
  mx[1] = adasm__hmax_avx2(lo);
  if (r8 < r1) adasm__ada_bounds_scalar(bp, r8, r1, ucb, lcb, mx);
}

ADASM__TARGET_AVX2 static void adasm__ada_profile_avx2(
    const float *ucb, const float *lcb, size_t r0, size_t r1, float m,
    float g, size_t nb, double *hb, size_t *near, unsigned char *nearb,
    size_t *nn) {
  const size_t r8 = r0 + ((r1 - r0) & ~(size_t)7);
  adasm__expp ep;
  adasm__expv_avx2 ev;
  const __m256 vm = _mm256_set1_ps(m), vg = _mm256_set1_ps(g);
  const __m256 last = _mm256_set1_ps(-(float)(nb - 1)), half = _mm256_set1_ps(0.5f);
  const __m256 lim = _mm256_set1_ps(64.0f);
  __m256d cu = _mm256_setzero_pd(), clo = cu, cz = cu;
  double cnt = 0.0;
  size_t i;
  adasm__expp_fold(0, &ep);
  adasm__expv_init_avx2(&ev, &ep);
  for (i = r0; i < r8; i += 8) {
    const __m256 du = _mm256_min_ps(
        lim, _mm256_mul_ps(vg, _mm256_sub_ps(_mm256_loadu_ps(ucb + i), vm)));
    const __m256 dl = _mm256_min_ps(
        lim, _mm256_mul_ps(vg, _mm256_sub_ps(_mm256_loadu_ps(lcb + i), vm)));
    const __m256 farm = _mm256_cmp_ps(du, last, _CMP_LE_OQ);
    const int far = _mm256_movemask_ps(farm);
    const __m256 eu = adasm__exp8_avx2(&ev, du), el = adasm__exp8_avx2(&ev, dl);
    const __m256 ez = adasm__exp8_avx2(&ev, _mm256_mul_ps(half, _mm256_add_ps(du, dl)));
    cu = adasm__sum8_pd_avx2(cu, _mm256_and_ps(farm, eu));
    clo = adasm__sum8_pd_avx2(clo, _mm256_and_ps(farm, el));
    cz = adasm__sum8_pd_avx2(cz, _mm256_and_ps(farm, ez));
    cnt += (double)_mm_popcnt_u32((unsigned)far);
    if (far != 0xff) {
      float a[8], bl[8], z[8], d8[8];
      unsigned mk = (unsigned)(~far) & 0xffu;
      _mm256_storeu_ps(a, eu);
      _mm256_storeu_ps(bl, el);
      _mm256_storeu_ps(z, ez);
      _mm256_storeu_ps(d8, du);
      while (mk) {
        const unsigned ln = (unsigned)__builtin_ctz(mk);
        const size_t bi = d8[ln] > -1.0f ? 0u : (size_t)(-d8[ln]);
        double *h = hb + 4 * bi;
        mk &= mk - 1u;
        near[*nn] = i + ln;
        nearb[(*nn)++] = (unsigned char)bi;
        h[0] += 1.0;
        h[1] += (double)a[ln];
        h[2] += (double)bl[ln];
        h[3] += (double)z[ln];
      }
    }
  }
  hb[4 * (nb - 1)] += cnt;
  hb[4 * (nb - 1) + 1] += adasm__hsum_pd_avx2(cu);
  hb[4 * (nb - 1) + 2] += adasm__hsum_pd_avx2(clo);
  hb[4 * (nb - 1) + 3] += adasm__hsum_pd_avx2(cz);
  if (r8 < r1)
    adasm__ada_profile_scalar(ucb, lcb, r8, r1, m, g, nb, hb, near, nearb, nn);
}

/* 8 widened 16-bit entries (F16C for f16; a shift for bf16). */
ADASM__TARGET_AVX2 ADASM__FORCEINLINE __m256 adasm__ld8h_avx2(const uint16_t *p,
                                                          int bf) {
  const __m128i h = _mm_loadu_si128((const __m128i *)(const void *)p);
  return bf ? _mm256_castsi256_ps(_mm256_slli_epi32(_mm256_cvtepu16_epi32(h), 16))
            : _mm256_cvtph_ps(h);
}
/* The d & 7 last entries, zero-padded (AVX2 has no 16-bit masked load):
   +0 in the padding lanes, as dot_rows' masked loads. */
ADASM__TARGET_AVX2 ADASM__FORCEINLINE __m256 adasm__ld8h_tail_avx2(
    const uint16_t *p, size_t rem, int bf) {
  uint16_t buf[8] = {0, 0, 0, 0, 0, 0, 0, 0};
  memcpy(buf, p, rem * sizeof(uint16_t));
  return adasm__ld8h_avx2(buf, bf);
}

/* The AVX-512 kernel's two structures (see there) in 8 lanes: short rows
   one after another with four accumulators and a prefetch 4 KB ahead;
   long rows (d >= ADASM__ROWS4_MIN) four at a time, the next group
   prefetched. Rounding depth d/16 + 8 at most. */
#define ADASM__PF16_AVX2 4096u
ADASM__TARGET_AVX2 ADASM__FORCEINLINE __m128 adasm__hsum4_avx2(__m256 v) {
  __m128 w = _mm_add_ps(_mm256_castps256_ps128(v), _mm256_extractf128_ps(v, 1));
  w = _mm_add_ps(w, _mm_movehl_ps(w, w));
  return _mm_add_ss(w, _mm_shuffle_ps(w, w, 1));
}
ADASM__TARGET_AVX2 ADASM__FORCEINLINE void adasm__dot_rows_h_avx2(
    const uint16_t *A, size_t rows, size_t d, size_t lda, const float *x,
    float beta, float *y, int bf) {
  static const int32_t mtab[16] = {-1, -1, -1, -1, -1, -1, -1, -1,
                                   0,  0,  0,  0,  0,  0,  0,  0};
  const size_t rem = d & 7u;
  const __m256i tm = _mm256_loadu_si256((const __m256i *)(const void *)(mtab + 8 - rem));
  size_t r = 0, j;
  if (d >= ADASM__ROWS4_MIN)
    for (; r + 4 <= rows; r += 4) {
      const uint16_t *a0 = A + r * lda, *a1 = a0 + lda, *a2 = a1 + lda, *a3 = a2 + lda;
      const uintptr_t pf = (uintptr_t)a0 + 4u * lda * sizeof(uint16_t);
      const size_t ld2 = lda * sizeof(uint16_t);
      __m256 s0 = _mm256_setzero_ps(), s1 = s0, s2 = s0, s3 = s0;
      __m256 t0 = s0, t1 = s0, t2 = s0, t3 = s0;
      for (j = 0; j + 16 <= d; j += 16) {
        const __m256 xa = _mm256_loadu_ps(x + j), xb = _mm256_loadu_ps(x + j + 8);
        if ((j & 31u) == 0) {
          const uintptr_t pj = pf + j * sizeof(uint16_t);
          _mm_prefetch((const char *)pj, _MM_HINT_T0);
          _mm_prefetch((const char *)(pj + ld2), _MM_HINT_T0);
          _mm_prefetch((const char *)(pj + 2u * ld2), _MM_HINT_T0);
          _mm_prefetch((const char *)(pj + 3u * ld2), _MM_HINT_T0);
        }
        s0 = _mm256_fmadd_ps(adasm__ld8h_avx2(a0 + j, bf), xa, s0);
        s1 = _mm256_fmadd_ps(adasm__ld8h_avx2(a1 + j, bf), xa, s1);
        s2 = _mm256_fmadd_ps(adasm__ld8h_avx2(a2 + j, bf), xa, s2);
        s3 = _mm256_fmadd_ps(adasm__ld8h_avx2(a3 + j, bf), xa, s3);
        t0 = _mm256_fmadd_ps(adasm__ld8h_avx2(a0 + j + 8, bf), xb, t0);
        t1 = _mm256_fmadd_ps(adasm__ld8h_avx2(a1 + j + 8, bf), xb, t1);
        t2 = _mm256_fmadd_ps(adasm__ld8h_avx2(a2 + j + 8, bf), xb, t2);
        t3 = _mm256_fmadd_ps(adasm__ld8h_avx2(a3 + j + 8, bf), xb, t3);
      }
      for (; j + 8 <= d; j += 8) {
        const __m256 xa = _mm256_loadu_ps(x + j);
        s0 = _mm256_fmadd_ps(adasm__ld8h_avx2(a0 + j, bf), xa, s0);
        s1 = _mm256_fmadd_ps(adasm__ld8h_avx2(a1 + j, bf), xa, s1);
        s2 = _mm256_fmadd_ps(adasm__ld8h_avx2(a2 + j, bf), xa, s2);
        s3 = _mm256_fmadd_ps(adasm__ld8h_avx2(a3 + j, bf), xa, s3);
      }
      if (rem) {
        const __m256 xa = _mm256_maskload_ps(x + j, tm);
        t0 = _mm256_fmadd_ps(adasm__ld8h_tail_avx2(a0 + j, rem, bf), xa, t0);
        t1 = _mm256_fmadd_ps(adasm__ld8h_tail_avx2(a1 + j, rem, bf), xa, t1);
        t2 = _mm256_fmadd_ps(adasm__ld8h_tail_avx2(a2 + j, rem, bf), xa, t2);
        t3 = _mm256_fmadd_ps(adasm__ld8h_tail_avx2(a3 + j, rem, bf), xa, t3);
      }
      y[r] = beta * _mm_cvtss_f32(adasm__hsum4_avx2(_mm256_add_ps(s0, t0)));
      y[r + 1] = beta * _mm_cvtss_f32(adasm__hsum4_avx2(_mm256_add_ps(s1, t1)));
      y[r + 2] = beta * _mm_cvtss_f32(adasm__hsum4_avx2(_mm256_add_ps(s2, t2)));
      y[r + 3] = beta * _mm_cvtss_f32(adasm__hsum4_avx2(_mm256_add_ps(s3, t3)));
    }
  for (; r < rows; ++r) {
    const uint16_t *a = A + r * lda;
    const uintptr_t pf = (uintptr_t)a + ADASM__PF16_AVX2;
    __m256 s0 = _mm256_setzero_ps(), s1 = s0, s2 = s0, s3 = s0;
    for (j = 0; j + 32 <= d; j += 32) {
      _mm_prefetch((const char *)(pf + j * sizeof(uint16_t)), _MM_HINT_T0);
      s0 = _mm256_fmadd_ps(adasm__ld8h_avx2(a + j, bf), _mm256_loadu_ps(x + j), s0);
      s1 = _mm256_fmadd_ps(adasm__ld8h_avx2(a + j + 8, bf), _mm256_loadu_ps(x + j + 8), s1);
      s2 = _mm256_fmadd_ps(adasm__ld8h_avx2(a + j + 16, bf), _mm256_loadu_ps(x + j + 16), s2);
      s3 = _mm256_fmadd_ps(adasm__ld8h_avx2(a + j + 24, bf), _mm256_loadu_ps(x + j + 24), s3);
    }
    for (; j + 8 <= d; j += 8)
      s0 = _mm256_fmadd_ps(adasm__ld8h_avx2(a + j, bf), _mm256_loadu_ps(x + j), s0);
    if (rem)
      s1 = _mm256_fmadd_ps(adasm__ld8h_tail_avx2(a + j, rem, bf),
                           _mm256_maskload_ps(x + j, tm), s1);
    y[r] = beta * _mm_cvtss_f32(adasm__hsum4_avx2(
                      _mm256_add_ps(_mm256_add_ps(s0, s1), _mm256_add_ps(s2, s3))));
  }
}
ADASM__TARGET_AVX2 static void adasm__dot_rows_f16_avx2(const uint16_t *A,
                                                       size_t rows, size_t d,
                                                       size_t lda,
                                                       const float *x,
                                                       float beta, float *y) {
  adasm__dot_rows_h_avx2(A, rows, d, lda, x, beta, y, 0);
}
ADASM__TARGET_AVX2 static void adasm__dot_rows_bf16_avx2(const uint16_t *A,
                                                        size_t rows, size_t d,
                                                        size_t lda,
                                                        const float *x,
                                                        float beta, float *y) {
  adasm__dot_rows_h_avx2(A, rows, d, lda, x, beta, y, 1);
}

/* f32 -> f16 with F16C (vcvtps2ph, round to nearest even from the
   immediate, whatever MXCSR says); the tail through the scalar function. */
ADASM__TARGET_AVX2 static void adasm__cvt_f32_f16_avx2(const float *src,
                                                      size_t n,
                                                      uint16_t *dst) {
  size_t i = 0;
  for (; i + 16 <= n; i += 16) {
    _mm_storeu_si128((__m128i *)(void *)(dst + i),
                     _mm256_cvtps_ph(_mm256_loadu_ps(src + i), _MM_FROUND_TO_NEAREST_INT));
    _mm_storeu_si128((__m128i *)(void *)(dst + i + 8),
                     _mm256_cvtps_ph(_mm256_loadu_ps(src + i + 8), _MM_FROUND_TO_NEAREST_INT));
  }
  for (; i < n; ++i) dst[i] = adasm_f32_to_f16(src[i]);
}
ADASM__TARGET_AVX2 static void adasm__cvt_f16_f32_avx2(const uint16_t *src,
                                                      size_t n, float *dst) {
  size_t i = 0;
  for (; i + 16 <= n; i += 16) {
    _mm256_storeu_ps(dst + i, adasm__ld8h_avx2(src + i, 0));
    _mm256_storeu_ps(dst + i + 8, adasm__ld8h_avx2(src + i + 8, 0));
  }
  for (; i < n; ++i) dst[i] = adasm_f16_to_f32(src[i]);
}
/* f32 -> bf16 in integers, as adasm_f32_to_bf16: (x + 0x7fff + lsb) >> 16,
   NaN -> (x >> 16) | 0x40 (quiet). Not vcvtneps2bf16: it flushes
   subnormals. */
ADASM__TARGET_AVX2 static inline __m256i adasm__bf16_round_avx2(__m256 v) {
  const __m256i x = _mm256_castps_si256(v);
  const __m256i ax = _mm256_and_si256(x, _mm256_set1_epi32(0x7fffffff));
  const __m256i isnan = _mm256_cmpgt_epi32(ax, _mm256_set1_epi32(0x7f800000));
  const __m256i lsb = _mm256_and_si256(_mm256_srli_epi32(x, 16), _mm256_set1_epi32(1));
  const __m256i rne = _mm256_srli_epi32(
      _mm256_add_epi32(_mm256_add_epi32(x, _mm256_set1_epi32(0x7fff)), lsb), 16);
  const __m256i qnan = _mm256_or_si256(_mm256_srli_epi32(x, 16), _mm256_set1_epi32(0x40));
  return _mm256_blendv_epi8(rne, qnan, isnan);
}
ADASM__TARGET_AVX2 static void adasm__cvt_f32_bf16_avx2(const float *src,
                                                       size_t n,
                                                       uint16_t *dst) {
  size_t i = 0;
  for (; i + 16 <= n; i += 16) {
    const __m256i lo = adasm__bf16_round_avx2(_mm256_loadu_ps(src + i));
    const __m256i hi = adasm__bf16_round_avx2(_mm256_loadu_ps(src + i + 8));
    /* packus works per 128-bit lane: (lo0 hi0 lo1 hi1) -> reorder */
    const __m256i pk = _mm256_permute4x64_epi64(_mm256_packus_epi32(lo, hi), 0xd8);
    _mm256_storeu_si256((__m256i *)(void *)(dst + i), pk);
  }
  for (; i < n; ++i) dst[i] = adasm_f32_to_bf16(src[i]);
}
ADASM__TARGET_AVX2 static void adasm__cvt_bf16_f32_avx2(const uint16_t *src,
                                                       size_t n, float *dst) {
  size_t i = 0;
  for (; i + 16 <= n; i += 16) {
    _mm256_storeu_ps(dst + i, adasm__ld8h_avx2(src + i, 1));
    _mm256_storeu_ps(dst + i + 8, adasm__ld8h_avx2(src + i + 8, 1));
  }
  for (; i < n; ++i) dst[i] = adasm_bf16_to_f32(src[i]);
}

/* ---- SVD-softmax kernels (contracts at adasm__svd_kset) ----------------- */
#ifndef ADASM_NO_SVD
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
#endif /* ADASM_NO_SVD */
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

/* Four rows at a time share the conversion of x to double. Listed rows
   come from DRAM one by one (the prefetcher cannot guess them): every line
   of the next four is prefetched. One loop per dtype (a branch per vector
   would cost more than the arithmetic). */
#define ADASM__F64_STEP_AVX512(LOAD, k, xv)                                    \
  do {                                                                         \
    const __m512d xlo = _mm512_cvtps_pd(_mm512_castps512_ps256(xv));           \
    const __m512d xhi = _mm512_cvtps_pd(adasm__hi256_avx512(xv));              \
    const __m512 a0 = LOAD(row0, j, k), a1 = LOAD(row1, j, k);                 \
    const __m512 a2 = LOAD(row2, j, k), a3 = LOAD(row3, j, k);                 \
    s0 = _mm512_fmadd_pd(_mm512_cvtps_pd(_mm512_castps512_ps256(a0)), xlo, s0);\
    s1 = _mm512_fmadd_pd(_mm512_cvtps_pd(adasm__hi256_avx512(a0)), xhi, s1);   \
    s2 = _mm512_fmadd_pd(_mm512_cvtps_pd(_mm512_castps512_ps256(a1)), xlo, s2);\
    s3 = _mm512_fmadd_pd(_mm512_cvtps_pd(adasm__hi256_avx512(a1)), xhi, s3);   \
    s4 = _mm512_fmadd_pd(_mm512_cvtps_pd(_mm512_castps512_ps256(a2)), xlo, s4);\
    s5 = _mm512_fmadd_pd(_mm512_cvtps_pd(adasm__hi256_avx512(a2)), xhi, s5);   \
    s6 = _mm512_fmadd_pd(_mm512_cvtps_pd(_mm512_castps512_ps256(a3)), xlo, s6);\
    s7 = _mm512_fmadd_pd(_mm512_cvtps_pd(adasm__hi256_avx512(a3)), xhi, s7);   \
  } while (0)
#define ADASM__F64_ROWS_AVX512(LOAD)                                           \
  for (j = 0; j + 16 <= d; j += 16) {                                          \
    const __m512 xv = _mm512_loadu_ps(x + j);                                  \
    if (pf[0] && ((j * es) & 63u) == 0) { /* a prefetch per line */          \
      _mm_prefetch((const char *)(pf[0] + j * es), _MM_HINT_T0);               \
      _mm_prefetch((const char *)(pf[1] + j * es), _MM_HINT_T0);               \
      _mm_prefetch((const char *)(pf[2] + j * es), _MM_HINT_T0);               \
      _mm_prefetch((const char *)(pf[3] + j * es), _MM_HINT_T0);               \
    }                                                                          \
    ADASM__F64_STEP_AVX512(LOAD, (__mmask16)0xffff, xv);                       \
  }                                                                            \
  if (j < d) {                                                                 \
    const __mmask16 k = adasm__tailmask_avx512(d - j);                         \
    const __m512 xv = _mm512_maskz_loadu_ps(k, x + j);                         \
    ADASM__F64_STEP_AVX512(LOAD, k, xv);                                       \
  }
#define ADASM__LD_F32_AVX512(r, j, k)                                          \
  _mm512_maskz_loadu_ps(k, (const float *)(const void *)(r) + (j))
#define ADASM__LD_F16_AVX512(r, j, k)                                          \
  _mm512_cvtph_ps(_mm256_maskz_loadu_epi16(                                    \
      k, (const uint16_t *)(const void *)(r) + (j)))
#define ADASM__LD_BF16_AVX512(r, j, k)                                         \
  _mm512_castsi512_ps(_mm512_slli_epi32(                                       \
      _mm512_cvtepu16_epi32(_mm256_maskz_loadu_epi16(                          \
          k, (const uint16_t *)(const void *)(r) + (j))),                      \
      16))

/* One row alone: the four-row loop's lanes and order (lane l of s0 sums
   columns 16 i + l, of s1 16 i + 8 + l, then hsum(s0 + s1)), so a row's
   value does not depend on the group it falls in (equal rows rank by
   index), but each 512-bit half kept as two 256-bit quarters: converting
   whole 512-bit vectors costs more than the row's bytes (2x slower on Zen
   4), and a row on its own has no conversion of x to share. */
#define ADASM__F64_ROW_AVX512(LOAD8)                                           \
  for (j = 0; j < d; j += 16) {                                                \
    const size_t m = d - j;                                                    \
    const __mmask8 k0 = m >= 8 ? (__mmask8)0xff : (__mmask8)((1u << m) - 1u);  \
    const __mmask8 k1 = m >= 16  ? (__mmask8)0xff                              \
                        : m > 8 ? (__mmask8)((1u << (m - 8)) - 1u)             \
                                : (__mmask8)0;                                 \
    const __m256 a0 = LOAD8(row, j, k0), x0 = _mm256_maskz_loadu_ps(k0, x + j); \
    const __m256 a1 = k1 ? LOAD8(row, j + 8, k1) : _mm256_setzero_ps();        \
    const __m256 x1 = k1 ? _mm256_maskz_loadu_ps(k1, x + j + 8) : _mm256_setzero_ps(); \
    _mm_prefetch((const char *)(pf + j * es), _MM_HINT_T0);                    \
    s0a = _mm256_fmadd_pd(_mm256_cvtps_pd(_mm256_castps256_ps128(a0)),         \
                          _mm256_cvtps_pd(_mm256_castps256_ps128(x0)), s0a);   \
    s0b = _mm256_fmadd_pd(_mm256_cvtps_pd(_mm256_extractf128_ps(a0, 1)),       \
                          _mm256_cvtps_pd(_mm256_extractf128_ps(x0, 1)), s0b); \
    s1a = _mm256_fmadd_pd(_mm256_cvtps_pd(_mm256_castps256_ps128(a1)),         \
                          _mm256_cvtps_pd(_mm256_castps256_ps128(x1)), s1a);   \
    s1b = _mm256_fmadd_pd(_mm256_cvtps_pd(_mm256_extractf128_ps(a1, 1)),       \
                          _mm256_cvtps_pd(_mm256_extractf128_ps(x1, 1)), s1b); \
  }
#define ADASM__LD8_F32_AVX512(r, j, k)                                         \
  _mm256_maskz_loadu_ps(k, (const float *)(const void *)(r) + (j))
#define ADASM__LD8_F16_AVX512(r, j, k)                                         \
  _mm256_cvtph_ps(_mm_maskz_loadu_epi16(k, (const uint16_t *)(const void *)(r) + (j)))
#define ADASM__LD8_BF16_AVX512(r, j, k)                                        \
  _mm256_castsi256_ps(_mm256_slli_epi32(                                       \
      _mm256_cvtepu16_epi32(                                                   \
          _mm_maskz_loadu_epi16(k, (const uint16_t *)(const void *)(r) + (j))), \
      16))
ADASM__TARGET_AVX512 static double adasm__dot_row_f64_avx512(
    const adasm_matrix *A, const unsigned char *row, const float *x) {
  const size_t d = A->cols, es = A->dtype == ADASM_F32 ? 4u : 2u;
  /* 2 KB ahead (an integer address: past the row it is only a hint) */
  const uintptr_t pf = (uintptr_t)row + 2048u;
  __m256d s0a = _mm256_setzero_pd(), s0b = s0a, s1a = s0a, s1b = s0a;
  size_t j;
  if (A->dtype == ADASM_F32) {
    ADASM__F64_ROW_AVX512(ADASM__LD8_F32_AVX512)
  } else if (A->dtype == ADASM_F16) {
    ADASM__F64_ROW_AVX512(ADASM__LD8_F16_AVX512)
  } else {
    ADASM__F64_ROW_AVX512(ADASM__LD8_BF16_AVX512)
  }
  return adasm__hsum_pd_avx512(_mm512_insertf64x4(
      _mm512_castpd256_pd512(_mm256_add_pd(s0a, s1a)), _mm256_add_pd(s0b, s1b), 1));
}
#undef ADASM__F64_ROW_AVX512
#undef ADASM__LD8_F32_AVX512
#undef ADASM__LD8_F16_AVX512
#undef ADASM__LD8_BF16_AVX512

ADASM__TARGET_AVX512 static void adasm__dot_rows_f64_avx512(
    const adasm_matrix *A, const size_t *rows, size_t r0, size_t cnt,
    const float *x, double *out) {
  const size_t d = A->cols, es = A->dtype == ADASM_F32 ? 4u : 2u;
  const size_t ld = A->ld * es, bytes = d * es;
  const unsigned char *base = (const unsigned char *)A->data;
  size_t t = 0, j, u, g;
  for (; t < cnt; t += g) {
    /* four rows, or one: a group padded with copies of its first row
       would convert and multiply them all */
    g = cnt - t < 4 ? 1 : 4;
    const unsigned char *row[4], *row0, *row1, *row2, *row3;
    __m512d s0 = _mm512_setzero_pd(), s1 = s0, s2 = s0, s3 = s0, s4 = s0,
            s5 = s0, s6 = s0, s7 = s0;
    double r4[4];
    for (u = 0; u < 4; ++u) {
      const size_t r = u < g ? (rows ? rows[t + u] : r0 + t + u)
                             : (rows ? rows[t] : r0 + t);
      row[u] = base + r * ld;
    }
    row0 = row[0];
    row1 = row[1];
    row2 = row[2];
    row3 = row[3];
    /* a line per step of four rows ahead (integer addresses: past the end
       of A only a hint): contiguous rows, the next four; listed rows come
       from DRAM one by one (the prefetcher cannot guess them), the four
       after the next, whose latency the next group's steps then cover
       (the first call prefetches rows 4..7 whole) */
    uintptr_t pf[4] = {0u, 0u, 0u, 0u};
    if (!rows && t + 8 <= cnt)
      for (u = 0; u < 4; ++u) pf[u] = (uintptr_t)(row[0] + (4 + u) * ld);
    if (rows && t + 8 < cnt)
      for (u = 0; u < 4; ++u)
        pf[u] = (uintptr_t)base + rows[t + 8 + u < cnt ? t + 8 + u : cnt - 1] * ld;
    if (rows && t == 0 && 4 < cnt) {
      const size_t h = cnt - 4 < 4 ? cnt - 4 : 4;
      for (u = 0; u < h; ++u) {
        const uintptr_t nx = (uintptr_t)base + rows[4 + u] * ld;
        size_t o;
        for (o = 0; o < bytes; o += 64)
          _mm_prefetch((const char *)(nx + o), _MM_HINT_T0);
      }
    }
    if (g == 1) {
      out[t] = adasm__dot_row_f64_avx512(A, row0, x);
      continue;
    }
    if (A->dtype == ADASM_F32) {
      ADASM__F64_ROWS_AVX512(ADASM__LD_F32_AVX512)
    } else if (A->dtype == ADASM_F16) {
      ADASM__F64_ROWS_AVX512(ADASM__LD_F16_AVX512)
    } else {
      ADASM__F64_ROWS_AVX512(ADASM__LD_BF16_AVX512)
    }
    r4[0] = adasm__hsum_pd_avx512(_mm512_add_pd(s0, s1));
    r4[1] = adasm__hsum_pd_avx512(_mm512_add_pd(s2, s3));
    r4[2] = adasm__hsum_pd_avx512(_mm512_add_pd(s4, s5));
    r4[3] = adasm__hsum_pd_avx512(_mm512_add_pd(s6, s7));
    for (u = 0; u < g; ++u) out[t + u] = r4[u];
  }
}
#undef ADASM__F64_STEP_AVX512
#undef ADASM__F64_ROWS_AVX512
#undef ADASM__LD_F32_AVX512
#undef ADASM__LD_F16_AVX512
#undef ADASM__LD_BF16_AVX512

/* Columns in groups of eight per pass over the rows, so each running sum
   is loaded and stored once per eight columns; each column segment is
   prefetched 256 rows (512 B) ahead: eight streams 2 KB ahead fill the
   core's miss buffers and stall it (Llama-2 shape, Zen 4: the query 13%
   faster at 512 B than at 2 KB, 4% faster than no prefetch). */
ADASM__TARGET_AVX512 static void adasm__ada_accum_avx512(
    const uint16_t *cols, size_t ldc, const size_t *c, const float *coef,
    size_t nc, size_t r0, size_t r1, const adasm__ada_acc *acc, int init) {
  size_t t, i, u;
  for (t = 0; t < nc || (init && t == 0); t += 8) {
    const size_t g = nc - t < 8 ? nc - t : 8;
    const int fresh = init && t == 0;
    const uint16_t *col[8];
    float f[8][3];
    for (u = 0; u < 8; ++u) {
      size_t v;
      col[u] = u < g ? cols + c[t + u] * ldc : cols;
      for (v = 0; v < 3; ++v) f[u][v] = u < g ? coef[3 * (t + u) + v] : 0.0f;
    }
    for (i = r0; i < r1; i += 16) {
      const __mmask16 k = r1 - i >= 16 ? (__mmask16)0xffff
                                       : adasm__tailmask_avx512(r1 - i);
      __m512 e = _mm512_setzero_ps(), p = e, q = e;
      if (!fresh) {
        e = _mm512_maskz_loadu_ps(k, acc->e + i);
        p = _mm512_maskz_loadu_ps(k, acc->p + i);
        q = _mm512_maskz_loadu_ps(k, acc->q + i);
      }
      if (((i - r0) & 31u) == 0)
        for (u = 0; u < g; ++u)
          _mm_prefetch((const char *)(uintptr_t)((uintptr_t)(col[u] + i) + 512u),
                       _MM_HINT_T0);
      for (u = 0; u < g; ++u) {
        const __m512 a = _mm512_cvtph_ps(_mm256_loadu_si256(
            (const __m256i *)(const void *)(col[u] + i)));
        e = _mm512_fmadd_ps(_mm512_set1_ps(f[u][0]), a, e);
        p = _mm512_fmadd_ps(_mm512_set1_ps(f[u][1]), a, p);
        q = _mm512_fmadd_ps(_mm512_set1_ps(f[u][2]), _mm512_mul_ps(a, a), q);
      }
      _mm512_mask_storeu_ps(acc->e + i, k, e);
      _mm512_mask_storeu_ps(acc->p + i, k, p);
      _mm512_mask_storeu_ps(acc->q + i, k, q);
    }
    if (nc == 0) break;
  }
}

ADASM__TARGET_AVX512 static void adasm__ada_bounds_avx512(
    const adasm__ada_bp *bp, size_t r0, size_t r1, float *ucb, float *lcb,
    float *mx) {
  const __m512 il = _mm512_set1_ps(bp->inv_lam);
  const __m512 sl = _mm512_set1_ps(bp->sl), cl = _mm512_set1_ps(bp->cl);
  const __m512 l3 = _mm512_set1_ps(bp->l3), sc = _mm512_set1_ps(bp->scale);
  const __m512 br = _mm512_set1_ps(bp->bias_rho), ba = _mm512_set1_ps(bp->bias_abs);
  const __m512 bl = _mm512_set1_ps(bp->bias_rel), zero = _mm512_setzero_ps();
  __m512 hi = _mm512_set1_ps(mx[0]), lo = _mm512_set1_ps(mx[1]);
  size_t i;
  for (i = r0; i < r1; i += 16) {
    const __mmask16 k = r1 - i >= 16 ? (__mmask16)0xffff
                                     : adasm__tailmask_avx512(r1 - i);
    const __m512 e = _mm512_maskz_loadu_ps(k, bp->e + i);
    const __m512 p = _mm512_maskz_loadu_ps(k, bp->p + i);
    const __m512 rho = _mm512_maskz_loadu_ps(k, bp->rho + i);
    const __m512 u = _mm512_fmadd_ps(p, il, e);
    __m512 v = _mm512_maskz_loadu_ps(k, bp->q + i);
    const __m512 b = _mm512_mul_ps(rho, il), s = _mm512_mul_ps(b, sl);
    __m512 su, rad, up, dn;
    v = _mm512_max_ps(_mm512_mul_ps(_mm512_mul_ps(v, il), il), zero);
    su = _mm512_add_ps(_mm512_sqrt_ps(_mm512_fmadd_ps(s, s, v)), s);
    rad = _mm512_mul_ps(sc, _mm512_fmadd_ps(cl, su, _mm512_mul_ps(b, l3)));
    rad = _mm512_fmadd_ps(br, rho, _mm512_add_ps(rad, ba));
    rad = _mm512_fmadd_ps(
        bl, _mm512_fmadd_ps(_mm512_abs_ps(p), il, _mm512_abs_ps(e)), rad);
    up = _mm512_add_ps(u, rad);
    dn = _mm512_sub_ps(u, rad);
    _mm512_mask_storeu_ps(ucb + i, k, up);
    _mm512_mask_storeu_ps(lcb + i, k, dn);
    hi = _mm512_mask_max_ps(hi, k, hi, up);
    lo = _mm512_mask_max_ps(lo, k, lo, dn);
  }
  mx[0] = adasm__hmax_avx512(hi);
  mx[1] = adasm__hmax_avx512(lo);
}

/* Rows far below (the last bucket, most of them in a peaked softmax) are
   summed in vectors; the others are added to their buckets lane by lane. */
ADASM__TARGET_AVX512 static void adasm__ada_profile_avx512(
    const float *ucb, const float *lcb, size_t r0, size_t r1, float m,
    float g, size_t nb, double *hb, size_t *near, unsigned char *nearb,
    size_t *nn) {
  adasm__expp ep;
  adasm__expv_avx512 ev;
  const __m512 vm = _mm512_set1_ps(m), vg = _mm512_set1_ps(g);
  const __m512 last = _mm512_set1_ps(-(float)(nb - 1)), half = _mm512_set1_ps(0.5f);
  const __m512 lim = _mm512_set1_ps(64.0f);
  __m512d cu = _mm512_setzero_pd(), clo = cu, cz = cu;
  double cnt = 0.0, lane[16][32][4]; /* per lane: no store-to-load chains */
  size_t i, l, b, nbn = nb - 1 < 32 ? nb - 1 : 32;
  memset(lane, 0, sizeof lane);
  adasm__expp_fold(0, &ep);
  adasm__expv_init_avx512(&ev, &ep);
  for (i = r0; i < r1; i += 16) {
    const __mmask16 k = r1 - i >= 16 ? (__mmask16)0xffff
                                     : adasm__tailmask_avx512(r1 - i);
    const __m512 du = _mm512_min_ps(
        lim, _mm512_mul_ps(vg, _mm512_sub_ps(_mm512_maskz_loadu_ps(k, ucb + i), vm)));
    const __m512 dl = _mm512_min_ps(
        lim, _mm512_mul_ps(vg, _mm512_sub_ps(_mm512_maskz_loadu_ps(k, lcb + i), vm)));
    const __mmask16 far = (__mmask16)(k & _mm512_cmp_ps_mask(du, last, _CMP_LE_OQ));
    const __mmask16 close = (__mmask16)(k & ~far);
    const __m512 eu = _mm512_maskz_mov_ps(k, adasm__exp16_avx512(&ev, du));
    const __m512 el = _mm512_maskz_mov_ps(k, adasm__exp16_avx512(&ev, dl));
    const __m512 ez = _mm512_maskz_mov_ps(
        k, adasm__exp16_avx512(&ev, _mm512_mul_ps(half, _mm512_add_ps(du, dl))));
    cu = adasm__sum16_pd_avx512(cu, _mm512_maskz_mov_ps(far, eu));
    clo = adasm__sum16_pd_avx512(clo, _mm512_maskz_mov_ps(far, el));
    cz = adasm__sum16_pd_avx512(cz, _mm512_maskz_mov_ps(far, ez));
    cnt += (double)_mm_popcnt_u32((unsigned)far);
    if (close) {
      float a[16], bl[16], z[16], d16[16];
      unsigned mk = (unsigned)close;
      _mm512_storeu_ps(a, eu);
      _mm512_storeu_ps(bl, el);
      _mm512_storeu_ps(z, ez);
      _mm512_storeu_ps(d16, du);
      while (mk) {
        const unsigned ln = (unsigned)__builtin_ctz(mk);
        const size_t bi = d16[ln] > -1.0f ? 0u : (size_t)(-d16[ln]);
        double *h = lane[ln][bi];
        mk &= mk - 1u;
        near[*nn] = i + ln;
        nearb[(*nn)++] = (unsigned char)bi;
        h[0] += 1.0;
        h[1] += (double)a[ln];
        h[2] += (double)bl[ln];
        h[3] += (double)z[ln];
      }
    }
  }
  for (l = 0; l < 16; ++l)
    for (b = 0; b < nbn; ++b) {
      hb[4 * b] += lane[l][b][0];
      hb[4 * b + 1] += lane[l][b][1];
      hb[4 * b + 2] += lane[l][b][2];
      hb[4 * b + 3] += lane[l][b][3];
    }
  hb[4 * (nb - 1)] += cnt;
  hb[4 * (nb - 1) + 1] += adasm__hsum_pd_avx512(cu);
  hb[4 * (nb - 1) + 2] += adasm__hsum_pd_avx512(clo);
  hb[4 * (nb - 1) + 3] += adasm__hsum_pd_avx512(cz);
}

/* 16 widened 16-bit entries; tail: the first `k` of them, +0 elsewhere. */
ADASM__TARGET_AVX512 ADASM__FORCEINLINE __m512 adasm__wid16_avx512(__m256i h,
                                                               int bf) {
  return bf ? _mm512_castsi512_ps(_mm512_slli_epi32(_mm512_cvtepu16_epi32(h), 16))
            : _mm512_cvtph_ps(h);
}
ADASM__TARGET_AVX512 ADASM__FORCEINLINE __m512 adasm__ld16h_avx512(
    const uint16_t *p, int bf) {
  return adasm__wid16_avx512(_mm256_loadu_si256((const __m256i *)(const void *)p), bf);
}
ADASM__TARGET_AVX512 ADASM__FORCEINLINE __m512 adasm__ld16h_mask_avx512(
    __mmask16 k, const uint16_t *p, int bf) {
  return adasm__wid16_avx512(_mm256_maskz_loadu_epi16(k, p), bf);
}

/* Two loop structures, measured on 16-bit rows (Zen 5, DRAM, against a
   read of the same bytes in the same run):
   - short rows (d < ADASM__ROWS4_MIN): one row after another, a single
     stream the hardware prefetcher follows, four accumulators of 16 lanes,
     a prefetch ADASM__PF16 bytes ahead: 1.00-1.10x the read at d = 768,
     where four interleaved rows (short streams, x twice their size in L1)
     cost 1.2-1.3x;
   - long rows: four rows at a time, as dot_rows reads float rows, so each
     x load feeds four rows, 64 columns per step and the next group
     prefetched: 1.0-1.2x at d = 4096, where one row at a time cost
     1.3-1.4x (it reloads 16 KB of x per 8 KB row).
   Rounding depth d/32 + 10 at most. */
#define ADASM__PF16 4096u
ADASM__TARGET_AVX512 ADASM__FORCEINLINE void adasm__dot_row1_h_avx512(
    const uint16_t *a, size_t d, const float *x, float beta, float *y,
    __mmask16 tk, int bf) {
  /* an address formed as an integer: past the end of A only a hint */
  const uintptr_t pf = (uintptr_t)a + ADASM__PF16;
  __m512 s0 = _mm512_setzero_ps(), s1 = s0, s2 = s0, s3 = s0;
  size_t j;
  for (j = 0; j + 64 <= d; j += 64) {
    _mm_prefetch((const char *)(pf + j * sizeof(uint16_t)), _MM_HINT_T0);
    _mm_prefetch((const char *)(pf + j * sizeof(uint16_t) + 64u), _MM_HINT_T0);
    s0 = _mm512_fmadd_ps(adasm__ld16h_avx512(a + j, bf), _mm512_loadu_ps(x + j), s0);
    s1 = _mm512_fmadd_ps(adasm__ld16h_avx512(a + j + 16, bf), _mm512_loadu_ps(x + j + 16), s1);
    s2 = _mm512_fmadd_ps(adasm__ld16h_avx512(a + j + 32, bf), _mm512_loadu_ps(x + j + 32), s2);
    s3 = _mm512_fmadd_ps(adasm__ld16h_avx512(a + j + 48, bf), _mm512_loadu_ps(x + j + 48), s3);
  }
  for (; j + 16 <= d; j += 16)
    s0 = _mm512_fmadd_ps(adasm__ld16h_avx512(a + j, bf), _mm512_loadu_ps(x + j), s0);
  if (tk)
    s1 = _mm512_fmadd_ps(adasm__ld16h_mask_avx512(tk, a + j, bf),
                         _mm512_maskz_loadu_ps(tk, x + j), s1);
  *y = beta * adasm__hsum_avx512(_mm512_add_ps(_mm512_add_ps(s0, s1),
                                               _mm512_add_ps(s2, s3)));
}
ADASM__TARGET_AVX512 ADASM__FORCEINLINE void adasm__dot_rows_h_avx512(
    const uint16_t *A, size_t rows, size_t d, size_t lda, const float *x,
    float beta, float *y, int bf) {
  const __mmask16 tk = adasm__tailmask_avx512(d & 15u);
  size_t r = 0, j;
  if (d >= ADASM__ROWS4_MIN)
    for (; r + 4 <= rows; r += 4) {
      const uint16_t *a0 = A + r * lda, *a1 = a0 + lda, *a2 = a1 + lda, *a3 = a2 + lda;
      const uintptr_t pf = (uintptr_t)a0 + 4u * lda * sizeof(uint16_t);
      const size_t ld2 = lda * sizeof(uint16_t);
      __m512 s0 = _mm512_setzero_ps(), s1 = s0, s2 = s0, s3 = s0;
      __m512 t0 = s0, t1 = s0, t2 = s0, t3 = s0;
      for (j = 0; j + 64 <= d; j += 64) {
        const __m512 xa = _mm512_loadu_ps(x + j), xb = _mm512_loadu_ps(x + j + 16);
        const __m512 xc = _mm512_loadu_ps(x + j + 32), xd = _mm512_loadu_ps(x + j + 48);
        const uintptr_t pj = pf + j * sizeof(uint16_t);
        _mm_prefetch((const char *)pj, _MM_HINT_T0);
        _mm_prefetch((const char *)(pj + 64u), _MM_HINT_T0);
        _mm_prefetch((const char *)(pj + ld2), _MM_HINT_T0);
        _mm_prefetch((const char *)(pj + ld2 + 64u), _MM_HINT_T0);
        _mm_prefetch((const char *)(pj + 2u * ld2), _MM_HINT_T0);
        _mm_prefetch((const char *)(pj + 2u * ld2 + 64u), _MM_HINT_T0);
        _mm_prefetch((const char *)(pj + 3u * ld2), _MM_HINT_T0);
        _mm_prefetch((const char *)(pj + 3u * ld2 + 64u), _MM_HINT_T0);
        s0 = _mm512_fmadd_ps(adasm__ld16h_avx512(a0 + j, bf), xa, s0);
        s1 = _mm512_fmadd_ps(adasm__ld16h_avx512(a1 + j, bf), xa, s1);
        s2 = _mm512_fmadd_ps(adasm__ld16h_avx512(a2 + j, bf), xa, s2);
        s3 = _mm512_fmadd_ps(adasm__ld16h_avx512(a3 + j, bf), xa, s3);
        t0 = _mm512_fmadd_ps(adasm__ld16h_avx512(a0 + j + 16, bf), xb, t0);
        t1 = _mm512_fmadd_ps(adasm__ld16h_avx512(a1 + j + 16, bf), xb, t1);
        t2 = _mm512_fmadd_ps(adasm__ld16h_avx512(a2 + j + 16, bf), xb, t2);
        t3 = _mm512_fmadd_ps(adasm__ld16h_avx512(a3 + j + 16, bf), xb, t3);
        s0 = _mm512_fmadd_ps(adasm__ld16h_avx512(a0 + j + 32, bf), xc, s0);
        s1 = _mm512_fmadd_ps(adasm__ld16h_avx512(a1 + j + 32, bf), xc, s1);
        s2 = _mm512_fmadd_ps(adasm__ld16h_avx512(a2 + j + 32, bf), xc, s2);
        s3 = _mm512_fmadd_ps(adasm__ld16h_avx512(a3 + j + 32, bf), xc, s3);
        t0 = _mm512_fmadd_ps(adasm__ld16h_avx512(a0 + j + 48, bf), xd, t0);
        t1 = _mm512_fmadd_ps(adasm__ld16h_avx512(a1 + j + 48, bf), xd, t1);
        t2 = _mm512_fmadd_ps(adasm__ld16h_avx512(a2 + j + 48, bf), xd, t2);
        t3 = _mm512_fmadd_ps(adasm__ld16h_avx512(a3 + j + 48, bf), xd, t3);
      }
      for (; j + 16 <= d; j += 16) {
        const __m512 xa = _mm512_loadu_ps(x + j);
        s0 = _mm512_fmadd_ps(adasm__ld16h_avx512(a0 + j, bf), xa, s0);
        s1 = _mm512_fmadd_ps(adasm__ld16h_avx512(a1 + j, bf), xa, s1);
        s2 = _mm512_fmadd_ps(adasm__ld16h_avx512(a2 + j, bf), xa, s2);
        s3 = _mm512_fmadd_ps(adasm__ld16h_avx512(a3 + j, bf), xa, s3);
      }
      if (tk) {
        const __m512 xa = _mm512_maskz_loadu_ps(tk, x + j);
        t0 = _mm512_fmadd_ps(adasm__ld16h_mask_avx512(tk, a0 + j, bf), xa, t0);
        t1 = _mm512_fmadd_ps(adasm__ld16h_mask_avx512(tk, a1 + j, bf), xa, t1);
        t2 = _mm512_fmadd_ps(adasm__ld16h_mask_avx512(tk, a2 + j, bf), xa, t2);
        t3 = _mm512_fmadd_ps(adasm__ld16h_mask_avx512(tk, a3 + j, bf), xa, t3);
      }
      y[r] = beta * adasm__hsum_avx512(_mm512_add_ps(s0, t0));
      y[r + 1] = beta * adasm__hsum_avx512(_mm512_add_ps(s1, t1));
      y[r + 2] = beta * adasm__hsum_avx512(_mm512_add_ps(s2, t2));
      y[r + 3] = beta * adasm__hsum_avx512(_mm512_add_ps(s3, t3));
    }
  for (; r < rows; ++r) adasm__dot_row1_h_avx512(A + r * lda, d, x, beta, y + r, tk, bf);
}
ADASM__TARGET_AVX512 static void adasm__dot_rows_f16_avx512(
    const uint16_t *A, size_t rows, size_t d, size_t lda, const float *x,
    float beta, float *y) {
  adasm__dot_rows_h_avx512(A, rows, d, lda, x, beta, y, 0);
}
ADASM__TARGET_AVX512 static void adasm__dot_rows_bf16_avx512(
    const uint16_t *A, size_t rows, size_t d, size_t lda, const float *x,
    float beta, float *y) {
  adasm__dot_rows_h_avx512(A, rows, d, lda, x, beta, y, 1);
}

/* Conversions: vcvtps2ph / vcvtph2ps (exact, round to nearest even from
   the immediate); bf16 in integers as adasm__bf16_round_avx2 (the
   BF16 extension's vcvtneps2bf16 flushes subnormals). Masked tails. */
ADASM__TARGET_AVX512 static inline __m512i adasm__bf16_round_avx512(__m512 v) {
  const __m512i x = _mm512_castps_si512(v);
  const __m512i ax = _mm512_and_si512(x, _mm512_set1_epi32(0x7fffffff));
  const __mmask16 isnan = _mm512_cmpgt_epi32_mask(ax, _mm512_set1_epi32(0x7f800000));
  const __m512i hi = _mm512_srli_epi32(x, 16);
  const __m512i lsb = _mm512_and_si512(hi, _mm512_set1_epi32(1));
  const __m512i rne = _mm512_srli_epi32(
      _mm512_add_epi32(_mm512_add_epi32(x, _mm512_set1_epi32(0x7fff)), lsb), 16);
  return _mm512_mask_or_epi32(rne, isnan, hi, _mm512_set1_epi32(0x40));
}
ADASM__TARGET_AVX512 static void adasm__cvt_f32_f16_avx512(const float *src,
                                                          size_t n,
                                                          uint16_t *dst) {
  size_t i = 0;
  for (; i + 16 <= n; i += 16)
    _mm256_storeu_si256((__m256i *)(void *)(dst + i),
                        _mm512_cvtps_ph(_mm512_loadu_ps(src + i), _MM_FROUND_TO_NEAREST_INT));
  if (i < n) {
    const __mmask16 k = adasm__tailmask_avx512(n - i);
    _mm256_mask_storeu_epi16(dst + i, k,
                             _mm512_cvtps_ph(_mm512_maskz_loadu_ps(k, src + i),
                                             _MM_FROUND_TO_NEAREST_INT));
  }
}
ADASM__TARGET_AVX512 static void adasm__cvt_f16_f32_avx512(const uint16_t *src,
                                                          size_t n,
                                                          float *dst) {
  size_t i = 0;
  for (; i + 16 <= n; i += 16) _mm512_storeu_ps(dst + i, adasm__ld16h_avx512(src + i, 0));
  if (i < n) {
    const __mmask16 k = adasm__tailmask_avx512(n - i);
    _mm512_mask_storeu_ps(dst + i, k, adasm__ld16h_mask_avx512(k, src + i, 0));
  }
}
ADASM__TARGET_AVX512 static void adasm__cvt_f32_bf16_avx512(const float *src,
                                                           size_t n,
                                                           uint16_t *dst) {
  size_t i = 0;
  for (; i + 16 <= n; i += 16)
    _mm256_storeu_si256((__m256i *)(void *)(dst + i),
                        _mm512_cvtepi32_epi16(adasm__bf16_round_avx512(_mm512_loadu_ps(src + i))));
  if (i < n) {
    const __mmask16 k = adasm__tailmask_avx512(n - i);
    _mm512_mask_cvtepi32_storeu_epi16(
        dst + i, k, adasm__bf16_round_avx512(_mm512_maskz_loadu_ps(k, src + i)));
  }
}
ADASM__TARGET_AVX512 static void adasm__cvt_bf16_f32_avx512(const uint16_t *src,
                                                           size_t n,
                                                           float *dst) {
  size_t i = 0;
  for (; i + 16 <= n; i += 16) _mm512_storeu_ps(dst + i, adasm__ld16h_avx512(src + i, 1));
  if (i < n) {
    const __mmask16 k = adasm__tailmask_avx512(n - i);
    _mm512_mask_storeu_ps(dst + i, k, adasm__ld16h_mask_avx512(k, src + i, 1));
  }
}

/* ---- SVD-softmax kernels (contracts at adasm__svd_kset) ----------------- */
#ifndef ADASM_NO_SVD
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
#endif /* ADASM_NO_SVD */

#if defined(ADASM__HAVE_AVX512BF16)
/* ---- the AVX-512 BF16 variant: dot_rows_bf16 with vdpbf16ps -------------
   vdpbf16ps multiplies bf16 pairs and adds them to float lanes. x stays
   float: each 32 columns of x are split into three bf16 vectors whose sum
   is x exactly (hi = x with its low 16 bits cleared, mid = the same of
   x - hi, lo = x - hi - mid, which has at most 8 significant bits), so a
   row is sum_j a_j hi_j + a_j mid_j + a_j lo_j with exact products (8 x 8
   bits) and float sums. The pieces carry the sign of x: the sum of their
   |a_j piece| is sum_j |a_j x_j|, and the rounding bound of ADASM__DOT_DEPTH
   holds (hi: two roundings per 32 columns per lane; mid + lo: four).
   vdpbf16ps also treats subnormal inputs as zero and flushes subnormal
   results (whatever MXCSR says), which adds at most 2^-123 (d + sum_j |a_j|
   + sum_j |x_j|) to a row's error. A row whose sum is not finite (inf or
   NaN entries, or a sum past FLT_MAX) is recomputed by the plain path, so
   special values come out exactly as from adasm__dot_rows_bf16_avx512. */
ADASM__TARGET_AVX512BF16 ADASM__FORCEINLINE void adasm__xsplit_avx512bf16(
    __m512 xa, __m512 xb, __m512bh *hi, __m512bh *mid, __m512bh *lo) {
  const __m512i m = _mm512_set1_epi32((int)0xffff0000u);
  const __m512 ha = _mm512_castsi512_ps(_mm512_and_si512(_mm512_castps_si512(xa), m));
  const __m512 hb = _mm512_castsi512_ps(_mm512_and_si512(_mm512_castps_si512(xb), m));
  const __m512 ra = _mm512_sub_ps(xa, ha), rb = _mm512_sub_ps(xb, hb); /* exact */
  const __m512 ma = _mm512_castsi512_ps(_mm512_and_si512(_mm512_castps_si512(ra), m));
  const __m512 mb = _mm512_castsi512_ps(_mm512_and_si512(_mm512_castps_si512(rb), m));
  /* the pieces have 16 zero low bits: the conversions are exact */
  *hi = _mm512_cvtne2ps_pbh(hb, ha);
  *mid = _mm512_cvtne2ps_pbh(mb, ma);
  *lo = _mm512_cvtne2ps_pbh(_mm512_sub_ps(rb, mb), _mm512_sub_ps(ra, ma));
}
ADASM__TARGET_AVX512BF16 ADASM__FORCEINLINE __m512bh
adasm__ldbh_avx512bf16(const uint16_t *p) {
  return (__m512bh)_mm512_loadu_si512((const void *)p);
}

/* d > ADASM__DP_MAXD: four rows at a time, x split on the fly for each
   group of four. Long: the four rows' accumulators are unrolled by hand,
   as every rows4 kernel. */
ADASM__TARGET_AVX512BF16 static void adasm__dot_rows_bf16_dp4_avx512bf16(
    const uint16_t *A, size_t rows, size_t d, size_t lda, const float *x,
    float beta, float *y) {
  const size_t rem = d & 31u;
  const __mmask32 tka = rem ? (__mmask32)((1u << rem) - 1u) : 0;
  const __mmask16 tx0 = adasm__tailmask_avx512(rem < 16 ? rem : 16);
  const __mmask16 tx1 = adasm__tailmask_avx512(rem > 16 ? rem - 16 : 0);
  size_t r = 0, j, t;
  __m512bh xh, xm, xl;
  for (; r + 4 <= rows; r += 4) {
    const uint16_t *a0 = A + r * lda, *a1 = a0 + lda, *a2 = a1 + lda, *a3 = a2 + lda;
    __m512 h0 = _mm512_setzero_ps(), h1 = h0, h2 = h0, h3 = h0;
    __m512 l0 = h0, l1 = h0, l2 = h0, l3 = h0;
    /* each row ADASM__PF16 bytes ahead of where it is read (four rows of
       the next group at the same offset would be 4 rows ahead: too far
       for L1 when rows are long) */
    const uintptr_t pf = (uintptr_t)a0 + ADASM__PF16;
    for (j = 0; j + 32 <= d; j += 32) {
      const uintptr_t pj = pf + j * sizeof(uint16_t);
      __m512bh v0, v1, v2, v3;
      _mm_prefetch((const char *)pj, _MM_HINT_T0);
      _mm_prefetch((const char *)(pj + lda * sizeof(uint16_t)), _MM_HINT_T0);
      _mm_prefetch((const char *)(pj + 2u * lda * sizeof(uint16_t)), _MM_HINT_T0);
      _mm_prefetch((const char *)(pj + 3u * lda * sizeof(uint16_t)), _MM_HINT_T0);
      adasm__xsplit_avx512bf16(_mm512_loadu_ps(x + j), _mm512_loadu_ps(x + j + 16),
                               &xh, &xm, &xl);
      v0 = adasm__ldbh_avx512bf16(a0 + j);
      v1 = adasm__ldbh_avx512bf16(a1 + j);
      v2 = adasm__ldbh_avx512bf16(a2 + j);
      v3 = adasm__ldbh_avx512bf16(a3 + j);
      h0 = _mm512_dpbf16_ps(h0, v0, xh);
      h1 = _mm512_dpbf16_ps(h1, v1, xh);
      h2 = _mm512_dpbf16_ps(h2, v2, xh);
      h3 = _mm512_dpbf16_ps(h3, v3, xh);
      l0 = _mm512_dpbf16_ps(_mm512_dpbf16_ps(l0, v0, xl), v0, xm);
      l1 = _mm512_dpbf16_ps(_mm512_dpbf16_ps(l1, v1, xl), v1, xm);
      l2 = _mm512_dpbf16_ps(_mm512_dpbf16_ps(l2, v2, xl), v2, xm);
      l3 = _mm512_dpbf16_ps(_mm512_dpbf16_ps(l3, v3, xl), v3, xm);
    }
    if (rem) {
      __m512bh v0, v1, v2, v3;
      adasm__xsplit_avx512bf16(_mm512_maskz_loadu_ps(tx0, x + j),
                               _mm512_maskz_loadu_ps(tx1, x + j + 16), &xh, &xm, &xl);
      v0 = (__m512bh)_mm512_maskz_loadu_epi16(tka, a0 + j);
      v1 = (__m512bh)_mm512_maskz_loadu_epi16(tka, a1 + j);
      v2 = (__m512bh)_mm512_maskz_loadu_epi16(tka, a2 + j);
      v3 = (__m512bh)_mm512_maskz_loadu_epi16(tka, a3 + j);
      h0 = _mm512_dpbf16_ps(h0, v0, xh);
      h1 = _mm512_dpbf16_ps(h1, v1, xh);
      h2 = _mm512_dpbf16_ps(h2, v2, xh);
      h3 = _mm512_dpbf16_ps(h3, v3, xh);
      l0 = _mm512_dpbf16_ps(_mm512_dpbf16_ps(l0, v0, xl), v0, xm);
      l1 = _mm512_dpbf16_ps(_mm512_dpbf16_ps(l1, v1, xl), v1, xm);
      l2 = _mm512_dpbf16_ps(_mm512_dpbf16_ps(l2, v2, xl), v2, xm);
      l3 = _mm512_dpbf16_ps(_mm512_dpbf16_ps(l3, v3, xl), v3, xm);
    }
    y[r] = beta * adasm__hsum_avx512(_mm512_add_ps(h0, l0));
    y[r + 1] = beta * adasm__hsum_avx512(_mm512_add_ps(h1, l1));
    y[r + 2] = beta * adasm__hsum_avx512(_mm512_add_ps(h2, l2));
    y[r + 3] = beta * adasm__hsum_avx512(_mm512_add_ps(h3, l3));
  }
  for (; r < rows; ++r) {
    const uint16_t *a0 = A + r * lda;
    __m512 h0 = _mm512_setzero_ps(), l0 = h0;
    __m512bh v0;
    for (j = 0; j + 32 <= d; j += 32) {
      adasm__xsplit_avx512bf16(_mm512_loadu_ps(x + j), _mm512_loadu_ps(x + j + 16),
                               &xh, &xm, &xl);
      v0 = adasm__ldbh_avx512bf16(a0 + j);
      h0 = _mm512_dpbf16_ps(h0, v0, xh);
      l0 = _mm512_dpbf16_ps(_mm512_dpbf16_ps(l0, v0, xl), v0, xm);
    }
    if (rem) {
      adasm__xsplit_avx512bf16(_mm512_maskz_loadu_ps(tx0, x + j),
                               _mm512_maskz_loadu_ps(tx1, x + j + 16), &xh, &xm, &xl);
      v0 = (__m512bh)_mm512_maskz_loadu_epi16(tka, a0 + j);
      h0 = _mm512_dpbf16_ps(h0, v0, xh);
      l0 = _mm512_dpbf16_ps(_mm512_dpbf16_ps(l0, v0, xl), v0, xm);
    }
    y[r] = beta * adasm__hsum_avx512(_mm512_add_ps(h0, l0));
  }
  for (t = 0; t < rows; ++t) /* special values: as the plain path */
    if (!adasm__isfinitef(y[t])) adasm__dot_rows_bf16_avx512(A + t * lda, 1, d, lda, x, beta, y + t);
}

/* d <= ADASM__DP_MAXD: x split once per call into a stack buffer (3 d bf16,
   24 KB at most), then rows one after another as the plain kernel, six
   accumulators (hi, mid, lo of two 32-column chunks: vdpbf16ps has twice
   the latency of an FMA). Rounding depth d/32 + 10. */
#define ADASM__DP_MAXD 4096
ADASM__TARGET_AVX512BF16 static void adasm__dot_rows_bf16_avx512bf16(
    const uint16_t *A, size_t rows, size_t d, size_t lda, const float *x,
    float beta, float *y) {
  uint16_t xp[3 * ADASM__DP_MAXD]; /* hi | mid | lo, zero past d */
  const size_t rem = d & 31u, dc = d - rem, dp = (d + 31u) & ~(size_t)31u;
  const __mmask32 tka = rem ? (__mmask32)((1u << rem) - 1u) : 0;
  const __mmask16 tx0 = adasm__tailmask_avx512(rem < 16 ? rem : 16);
  const __mmask16 tx1 = adasm__tailmask_avx512(rem > 16 ? rem - 16 : 0);
  size_t r, j;
  __m512bh xh, xm, xl;
  if (d > ADASM__DP_MAXD) {
    adasm__dot_rows_bf16_dp4_avx512bf16(A, rows, d, lda, x, beta, y);
    return;
  }
  for (j = 0; j < dp; j += 32) {
    const __mmask16 k0 = j < dc ? (__mmask16)0xffff : tx0;
    const __mmask16 k1 = j < dc ? (__mmask16)0xffff : tx1;
    adasm__xsplit_avx512bf16(_mm512_maskz_loadu_ps(k0, x + j),
                             _mm512_maskz_loadu_ps(k1, x + j + 16), &xh, &xm, &xl);
    _mm512_storeu_si512((void *)(xp + j), (__m512i)xh);
    _mm512_storeu_si512((void *)(xp + ADASM__DP_MAXD + j), (__m512i)xm);
    _mm512_storeu_si512((void *)(xp + 2 * ADASM__DP_MAXD + j), (__m512i)xl);
  }
  for (r = 0; r < rows; ++r) {
    const uint16_t *a = A + r * lda;
    const uintptr_t pf = (uintptr_t)a + ADASM__PF16;
    __m512 h0 = _mm512_setzero_ps(), m0 = h0, l0 = h0, h1 = h0, m1 = h0, l1 = h0;
    for (j = 0; j + 64 <= d; j += 64) {
      const __m512bh v0 = adasm__ldbh_avx512bf16(a + j);
      const __m512bh v1 = adasm__ldbh_avx512bf16(a + j + 32);
      _mm_prefetch((const char *)(pf + j * sizeof(uint16_t)), _MM_HINT_T0);
      _mm_prefetch((const char *)(pf + j * sizeof(uint16_t) + 64u), _MM_HINT_T0);
      h0 = _mm512_dpbf16_ps(h0, v0, adasm__ldbh_avx512bf16(xp + j));
      m0 = _mm512_dpbf16_ps(m0, v0, adasm__ldbh_avx512bf16(xp + ADASM__DP_MAXD + j));
      l0 = _mm512_dpbf16_ps(l0, v0, adasm__ldbh_avx512bf16(xp + 2 * ADASM__DP_MAXD + j));
      h1 = _mm512_dpbf16_ps(h1, v1, adasm__ldbh_avx512bf16(xp + j + 32));
      m1 = _mm512_dpbf16_ps(m1, v1, adasm__ldbh_avx512bf16(xp + ADASM__DP_MAXD + j + 32));
      l1 = _mm512_dpbf16_ps(l1, v1, adasm__ldbh_avx512bf16(xp + 2 * ADASM__DP_MAXD + j + 32));
    }
    for (; j < dp; j += 32) { /* a last whole chunk, then the masked tail */
      const __m512bh v0 = j < dc ? adasm__ldbh_avx512bf16(a + j)
                                 : (__m512bh)_mm512_maskz_loadu_epi16(tka, a + j);
      h0 = _mm512_dpbf16_ps(h0, v0, adasm__ldbh_avx512bf16(xp + j));
      m0 = _mm512_dpbf16_ps(m0, v0, adasm__ldbh_avx512bf16(xp + ADASM__DP_MAXD + j));
      l0 = _mm512_dpbf16_ps(l0, v0, adasm__ldbh_avx512bf16(xp + 2 * ADASM__DP_MAXD + j));
    }
    y[r] = beta * adasm__hsum_avx512(_mm512_add_ps(
                      _mm512_add_ps(_mm512_add_ps(l0, l1), _mm512_add_ps(m0, m1)),
                      _mm512_add_ps(h0, h1)));
    if (!adasm__isfinitef(y[r])) /* special values: as the plain path */
      adasm__dot_rows_bf16_avx512(a, 1, d, lda, x, beta, y + r);
  }
}
#endif /* ADASM__HAVE_AVX512BF16 */
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

/* AdaSoftmax and exact-row kernels: 4 lanes (f16 widened by vcvt); the
   row tails go through the scalar kernels. */
static inline float32x4_t adasm__f16x4_neon(const uint16_t *h) {
  return vcvt_f32_f16(vreinterpret_f16_u16(vld1_u16(h)));
}
static inline float32x4_t adasm__row4_neon(const adasm_matrix *A,
                                           const unsigned char *row, size_t j) {
  if (A->dtype == ADASM_F32) return vld1q_f32((const float *)(const void *)row + j);
  if (A->dtype == ADASM_F16)
    return adasm__f16x4_neon((const uint16_t *)(const void *)row + j);
  return vreinterpretq_f32_u32(
      vshll_n_u16(vld1_u16((const uint16_t *)(const void *)row + j), 16));
}

static void adasm__dot_rows_f64_neon(const adasm_matrix *A, const size_t *rows,
                                     size_t r0, size_t cnt, const float *x,
                                     double *out) {
  const size_t d = A->cols, es = A->dtype == ADASM_F32 ? 4u : 2u;
  const size_t ld = A->ld * es, d4 = d & ~(size_t)3;
  const unsigned char *base = (const unsigned char *)A->data;
  size_t t, j;
  for (t = 0; t < cnt; ++t) {
    const size_t r = rows ? rows[t] : r0 + t;
    const unsigned char *row = base + r * ld;
    float64x2_t s0 = vdupq_n_f64(0.0), s1 = s0;
    double tail = 0.0;
    for (j = 0; j < d4; j += 4) {
      const float32x4_t a = adasm__row4_neon(A, row, j), xv = vld1q_f32(x + j);
      s0 = vfmaq_f64(s0, vcvt_f64_f32(vget_low_f32(a)), vcvt_f64_f32(vget_low_f32(xv)));
      s1 = vfmaq_f64(s1, vcvt_high_f64_f32(a), vcvt_high_f64_f32(xv));
    }
    for (; j < d; ++j) {
      const size_t o = r * A->ld + j;
      const float a = A->dtype == ADASM_F32 ? ((const float *)A->data)[o]
                      : A->dtype == ADASM_F16
                          ? adasm_f16_to_f32(((const uint16_t *)A->data)[o])
                          : adasm_bf16_to_f32(((const uint16_t *)A->data)[o]);
      tail += (double)a * (double)x[j];
    }
    s0 = vaddq_f64(s0, s1);
    out[t] = vgetq_lane_f64(s0, 0) + vgetq_lane_f64(s0, 1) + tail;
  }
}

static void adasm__ada_accum_neon(const uint16_t *cols, size_t ldc,
                                  const size_t *c, const float *coef,
                                  size_t nc, size_t r0, size_t r1,
                                  const adasm__ada_acc *acc, int init) {
  const size_t r4 = r0 + ((r1 - r0) & ~(size_t)3);
  size_t t, i, u;
  for (t = 0; t < nc || (init && t == 0); t += 8) {
    const size_t g = nc - t < 8 ? nc - t : 8;
    const int fresh = init && t == 0;
    const uint16_t *col[8];
    float f[8][3];
    for (u = 0; u < 8; ++u) {
      size_t v;
      col[u] = u < g ? cols + c[t + u] * ldc : cols;
      for (v = 0; v < 3; ++v) f[u][v] = u < g ? coef[3 * (t + u) + v] : 0.0f;
    }
    for (i = r0; i < r4; i += 4) {
      float32x4_t e = vdupq_n_f32(0.0f), p = e, q = e;
      if (!fresh) {
        e = vld1q_f32(acc->e + i);
        p = vld1q_f32(acc->p + i);
        q = vld1q_f32(acc->q + i);
      }
      for (u = 0; u < g; ++u) {
        const float32x4_t a = adasm__f16x4_neon(col[u] + i);
        e = vfmaq_n_f32(e, a, f[u][0]);
        p = vfmaq_n_f32(p, a, f[u][1]);
        q = vfmaq_n_f32(q, vmulq_f32(a, a), f[u][2]);
      }
      vst1q_f32(acc->e + i, e);
      vst1q_f32(acc->p + i, p);
      vst1q_f32(acc->q + i, q);
    }
    if (nc == 0) break;
  }
  if (r4 < r1) adasm__ada_accum_scalar(cols, ldc, c, coef, nc, r4, r1, acc, init);
}

static void adasm__ada_bounds_neon(const adasm__ada_bp *bp, size_t r0,
                                   size_t r1, float *ucb, float *lcb,
                                   float *mx) {
  const size_t r4 = r0 + ((r1 - r0) & ~(size_t)3);
  const float32x4_t zero = vdupq_n_f32(0.0f);
  float32x4_t hi = vdupq_n_f32(mx[0]), lo = vdupq_n_f32(mx[1]);
  size_t i;
  for (i = r0; i < r4; i += 4) {
    const float32x4_t e = vld1q_f32(bp->e + i), p = vld1q_f32(bp->p + i);
    const float32x4_t rho = vld1q_f32(bp->rho + i);
    const float32x4_t u = vfmaq_n_f32(e, p, bp->inv_lam);
    const float32x4_t b = vmulq_n_f32(rho, bp->inv_lam);
    const float32x4_t sv = vmulq_n_f32(b, bp->sl);
    const float32x4_t v = vmaxq_f32(
        vmulq_n_f32(vmulq_n_f32(vld1q_f32(bp->q + i), bp->inv_lam), bp->inv_lam),
        zero);
    const float32x4_t su = vaddq_f32(vsqrtq_f32(vfmaq_f32(v, sv, sv)), sv);
    float32x4_t rad = vmulq_n_f32(vfmaq_n_f32(vmulq_n_f32(b, bp->l3), su, bp->cl),
                                  bp->scale);
    float32x4_t up, dn;
    rad = vfmaq_n_f32(vaddq_f32(rad, vdupq_n_f32(bp->bias_abs)), rho, bp->bias_rho);
    rad = vfmaq_n_f32(rad, vfmaq_n_f32(vabsq_f32(e), vabsq_f32(p), bp->inv_lam),
                      bp->bias_rel);
    up = vaddq_f32(u, rad);
    dn = vsubq_f32(u, rad);
    vst1q_f32(ucb + i, up);
    vst1q_f32(lcb + i, dn);
    hi = vmaxq_f32(hi, up);
    lo = vmaxq_f32(lo, dn);
  }
  mx[0] = vmaxvq_f32(hi);
  mx[1] = vmaxvq_f32(lo);
  if (r4 < r1) adasm__ada_bounds_scalar(bp, r4, r1, ucb, lcb, mx);
}

static void adasm__ada_profile_neon(const float *ucb, const float *lcb,
                                    size_t r0, size_t r1, float m, float g,
                                    size_t nb, double *hb, size_t *near,
                                    unsigned char *nearb, size_t *nn) {
  const size_t r4 = r0 + ((r1 - r0) & ~(size_t)3);
  adasm__expp ep;
  adasm__expv_neon ev;
  const float32x4_t vm = vdupq_n_f32(m), lim = vdupq_n_f32(64.0f);
  const float32x4_t last = vdupq_n_f32(-(float)(nb - 1));
  float64x2_t cu = vdupq_n_f64(0.0), clo = cu, cz = cu;
  double cnt = 0.0;
  size_t i;
  adasm__expp_fold(0, &ep);
  adasm__expv_init_neon(&ev, &ep);
  for (i = r0; i < r4; i += 4) {
    const float32x4_t du =
        vminq_f32(lim, vmulq_n_f32(vsubq_f32(vld1q_f32(ucb + i), vm), g));
    const float32x4_t dl =
        vminq_f32(lim, vmulq_n_f32(vsubq_f32(vld1q_f32(lcb + i), vm), g));
    const uint32x4_t farm = vcleq_f32(du, last);
    const float32x4_t eu = adasm__exp4_neon(&ev, du), el = adasm__exp4_neon(&ev, dl);
    const float32x4_t ez = adasm__exp4_neon(&ev, vmulq_n_f32(vaddq_f32(du, dl), 0.5f));
    uint32_t fl[4];
    size_t l;
    cu = adasm__sum4_pd_neon(cu, vreinterpretq_f32_u32(vandq_u32(farm, vreinterpretq_u32_f32(eu))));
    clo = adasm__sum4_pd_neon(clo, vreinterpretq_f32_u32(vandq_u32(farm, vreinterpretq_u32_f32(el))));
    cz = adasm__sum4_pd_neon(cz, vreinterpretq_f32_u32(vandq_u32(farm, vreinterpretq_u32_f32(ez))));
    vst1q_u32(fl, farm);
    for (l = 0; l < 4; ++l) {
      float a[4], bl[4], z[4], d4[4];
      size_t bi;
      double *h;
      if (fl[l]) {
        cnt += 1.0;
        continue;
      }
      vst1q_f32(a, eu);
      vst1q_f32(bl, el);
      vst1q_f32(z, ez);
      vst1q_f32(d4, du);
      bi = d4[l] > -1.0f ? 0u : (size_t)(-d4[l]);
      h = hb + 4 * bi;
      near[*nn] = i + l;
      nearb[(*nn)++] = (unsigned char)bi;
      h[0] += 1.0;
      h[1] += (double)a[l];
      h[2] += (double)bl[l];
      h[3] += (double)z[l];
    }
  }
  hb[4 * (nb - 1)] += cnt;
  hb[4 * (nb - 1) + 1] += vgetq_lane_f64(cu, 0) + vgetq_lane_f64(cu, 1);
  hb[4 * (nb - 1) + 2] += vgetq_lane_f64(clo, 0) + vgetq_lane_f64(clo, 1);
  hb[4 * (nb - 1) + 3] += vgetq_lane_f64(cz, 0) + vgetq_lane_f64(cz, 1);
  if (r4 < r1)
    adasm__ada_profile_scalar(ucb, lcb, r4, r1, m, g, nb, hb, near, nearb, nn);
}

/* 8 widened 16-bit entries as two float32x4 (FCVTL, or a shift for bf16). */
ADASM__FORCEINLINE void adasm__ld8h_neon(const uint16_t *p, int bf,
                                         float32x4_t *lo, float32x4_t *hi) {
  const uint16x8_t h = vld1q_u16(p);
  if (bf) {
    *lo = vreinterpretq_f32_u32(vshll_n_u16(vget_low_u16(h), 16));
    *hi = vreinterpretq_f32_u32(vshll_high_n_u16(h, 16));
  } else {
    *lo = vcvt_f32_f16(vreinterpret_f16_u16(vget_low_u16(h)));
    *hi = vcvt_high_f32_f16(vreinterpretq_f16_u16(h));
  }
}
ADASM__FORCEINLINE float adasm__wid_neon(uint16_t h, int bf) {
  return bf ? adasm_bf16_to_f32(h) : adasm_f16_to_f32(h);
}

/* adasm__dot_rows_neon with the loads widened (same lanes and order). */
ADASM__FORCEINLINE void adasm__dot_rows_h_neon(const uint16_t *A, size_t rows,
                                               size_t d, size_t lda,
                                               const float *x, float beta,
                                               float *y, int bf) {
  size_t r = 0, j;
  for (; r + 4 <= rows; r += 4) {
    const uint16_t *a0 = A + r * lda, *a1 = a0 + lda, *a2 = a1 + lda, *a3 = a2 + lda;
    float32x4_t s0 = vdupq_n_f32(0.0f), s1 = s0, s2 = s0, s3 = s0;
    float32x4_t u0 = s0, u1 = s0, u2 = s0, u3 = s0;
    float t0 = 0, t1 = 0, t2 = 0, t3 = 0;
    for (j = 0; j + 8 <= d; j += 8) {
      float32x4_t xv = vld1q_f32(x + j), xw = vld1q_f32(x + j + 4), lo, hi;
      adasm__ld8h_neon(a0 + j, bf, &lo, &hi);
      s0 = vfmaq_f32(s0, lo, xv);
      u0 = vfmaq_f32(u0, hi, xw);
      adasm__ld8h_neon(a1 + j, bf, &lo, &hi);
      s1 = vfmaq_f32(s1, lo, xv);
      u1 = vfmaq_f32(u1, hi, xw);
      adasm__ld8h_neon(a2 + j, bf, &lo, &hi);
      s2 = vfmaq_f32(s2, lo, xv);
      u2 = vfmaq_f32(u2, hi, xw);
      adasm__ld8h_neon(a3 + j, bf, &lo, &hi);
      s3 = vfmaq_f32(s3, lo, xv);
      u3 = vfmaq_f32(u3, hi, xw);
    }
    for (; j < d; ++j) {
      t0 += adasm__wid_neon(a0[j], bf) * x[j];
      t1 += adasm__wid_neon(a1[j], bf) * x[j];
      t2 += adasm__wid_neon(a2[j], bf) * x[j];
      t3 += adasm__wid_neon(a3[j], bf) * x[j];
    }
    y[r] = beta * (vaddvq_f32(vaddq_f32(s0, u0)) + t0);
    y[r + 1] = beta * (vaddvq_f32(vaddq_f32(s1, u1)) + t1);
    y[r + 2] = beta * (vaddvq_f32(vaddq_f32(s2, u2)) + t2);
    y[r + 3] = beta * (vaddvq_f32(vaddq_f32(s3, u3)) + t3);
  }
  for (; r < rows; ++r) {
    const uint16_t *a0 = A + r * lda;
    float32x4_t s0 = vdupq_n_f32(0.0f), s1 = s0, lo, hi;
    float t0 = 0;
    for (j = 0; j + 8 <= d; j += 8) {
      adasm__ld8h_neon(a0 + j, bf, &lo, &hi);
      s0 = vfmaq_f32(s0, lo, vld1q_f32(x + j));
      s1 = vfmaq_f32(s1, hi, vld1q_f32(x + j + 4));
    }
    for (; j < d; ++j) t0 += adasm__wid_neon(a0[j], bf) * x[j];
    y[r] = beta * (vaddvq_f32(vaddq_f32(s0, s1)) + t0);
  }
}
static void adasm__dot_rows_f16_neon(const uint16_t *A, size_t rows, size_t d,
                                     size_t lda, const float *x, float beta,
                                     float *y) {
  adasm__dot_rows_h_neon(A, rows, d, lda, x, beta, y, 0);
}
static void adasm__dot_rows_bf16_neon(const uint16_t *A, size_t rows,
                                      size_t d, size_t lda, const float *x,
                                      float beta, float *y) {
  adasm__dot_rows_h_neon(A, rows, d, lda, x, beta, y, 1);
}

/* Conversions: FCVTN / FCVTL (IEEE half, round to nearest even under the
   default FPCR, as Linux and every ABI leave it); bf16 in integers as
   adasm__bf16_round_avx2. */
static void adasm__cvt_f32_f16_neon(const float *src, size_t n, uint16_t *dst) {
  size_t i = 0;
  for (; i + 8 <= n; i += 8) {
    const float16x8_t h = vcvt_high_f16_f32(vcvt_f16_f32(vld1q_f32(src + i)),
                                            vld1q_f32(src + i + 4));
    vst1q_u16(dst + i, vreinterpretq_u16_f16(h));
  }
  for (; i < n; ++i) dst[i] = adasm_f32_to_f16(src[i]);
}
static void adasm__cvt_f16_f32_neon(const uint16_t *src, size_t n, float *dst) {
  size_t i = 0;
  for (; i + 8 <= n; i += 8) {
    float32x4_t lo, hi;
    adasm__ld8h_neon(src + i, 0, &lo, &hi);
    vst1q_f32(dst + i, lo);
    vst1q_f32(dst + i + 4, hi);
  }
  for (; i < n; ++i) dst[i] = adasm_f16_to_f32(src[i]);
}
static inline uint16x4_t adasm__bf16_round_neon(float32x4_t v) {
  const uint32x4_t x = vreinterpretq_u32_f32(v);
  const uint32x4_t ax = vandq_u32(x, vdupq_n_u32(0x7fffffffu));
  const uint32x4_t isnan = vcgtq_u32(ax, vdupq_n_u32(0x7f800000u));
  const uint32x4_t hi = vshrq_n_u32(x, 16);
  const uint32x4_t rne = vshrq_n_u32(
      vaddq_u32(vaddq_u32(x, vdupq_n_u32(0x7fffu)), vandq_u32(hi, vdupq_n_u32(1u))), 16);
  return vmovn_u32(vbslq_u32(isnan, vorrq_u32(hi, vdupq_n_u32(0x40u)), rne));
}
static void adasm__cvt_f32_bf16_neon(const float *src, size_t n,
                                     uint16_t *dst) {
  size_t i = 0;
  for (; i + 8 <= n; i += 8)
    vst1q_u16(dst + i, vcombine_u16(adasm__bf16_round_neon(vld1q_f32(src + i)),
                                    adasm__bf16_round_neon(vld1q_f32(src + i + 4))));
  for (; i < n; ++i) dst[i] = adasm_f32_to_bf16(src[i]);
}
static void adasm__cvt_bf16_f32_neon(const uint16_t *src, size_t n,
                                     float *dst) {
  size_t i = 0;
  for (; i + 8 <= n; i += 8) {
    float32x4_t lo, hi;
    adasm__ld8h_neon(src + i, 1, &lo, &hi);
    vst1q_f32(dst + i, lo);
    vst1q_f32(dst + i + 4, hi);
  }
  for (; i < n; ++i) dst[i] = adasm_bf16_to_f32(src[i]);
}

/* SVD-softmax has no NEON kernels: the NEON table (>>dispatch) takes the
   scalar ones. */
#endif /* ADASM__HAVE_NEON */

/* >>dispatch --------------------------------------------------------------
   Every ISA's kernel table, filled here in one place: the fields in the
   order of struct adasm_kernels (positional: C++11 has no designated
   initializers), the kernels from the >>k_<isa> sections.
   ADASM__SVD_KSET(isa) is the last member, svd: the SVD kernels named
   with that suffix, or nothing under ADASM_NO_SVD. */
#ifndef ADASM_NO_SVD
#define ADASM__SVD_KSET(isa)                                                   \
  , {adasm__svd_dtile_##isa, adasm__svd_ftile_##isa, adasm__svd_symv_##isa,   \
     adasm__svd_rot_##isa, adasm__svd_prev16_##isa, adasm__svd_rows_##isa}
#else
#define ADASM__SVD_KSET(isa)
#endif

static const adasm_kernels adasm__kernels_scalar = {
    ADASM_ISA_SCALAR, {16, 16, 16}, adasm__max_scalar, adasm__expsum_scalar,
    adasm__scale_scalar,  adasm__sub2_scalar,   adasm__tp_sum_scalar,
    adasm__dot_rows_scalar,
    adasm__dot_rows_f16_scalar, adasm__dot_rows_bf16_scalar,
    adasm__cvt_f32_f16_scalar,  adasm__cvt_f16_f32_scalar,
    adasm__cvt_f32_bf16_scalar, adasm__cvt_bf16_f32_scalar,
    adasm__dot_rows_f64_scalar,
    adasm__ada_accum_scalar, adasm__ada_bounds_scalar,
    adasm__ada_profile_scalar,
    adasm__find_ge_scalar, adasm__texpsum_scalar, adasm__race_scalar,
    adasm__sumgather_scalar ADASM__SVD_KSET(scalar)};

#if defined(ADASM__HAVE_AVX2)
static const adasm_kernels adasm__kernels_avx2 = {
    ADASM_ISA_AVX2, {16, 16, 16}, adasm__max_avx2, adasm__expsum_avx2,
    adasm__scale_avx2,  adasm__sub2_avx2,   adasm__tp_sum_avx2,
    adasm__dot_rows_avx2,
    adasm__dot_rows_f16_avx2, adasm__dot_rows_bf16_avx2,
    adasm__cvt_f32_f16_avx2,  adasm__cvt_f16_f32_avx2,
    adasm__cvt_f32_bf16_avx2, adasm__cvt_bf16_f32_avx2,
    adasm__dot_rows_f64_avx2,
    adasm__ada_accum_avx2, adasm__ada_bounds_avx2,
    adasm__ada_profile_avx2,
    adasm__find_ge_avx2, adasm__texpsum_avx2, adasm__race_avx2,
    adasm__sumgather_avx2 ADASM__SVD_KSET(avx2)};
#endif /* ADASM__HAVE_AVX2 */

#if defined(ADASM__HAVE_AVX512)
static const adasm_kernels adasm__kernels_avx512 = {
    ADASM_ISA_AVX512, {32, 32, 32}, adasm__max_avx512, adasm__expsum_avx512,
    adasm__scale_avx512,  adasm__sub2_avx512, adasm__tp_sum_avx512,
    adasm__dot_rows_avx512,
    adasm__dot_rows_f16_avx512, adasm__dot_rows_bf16_avx512,
    adasm__cvt_f32_f16_avx512,  adasm__cvt_f16_f32_avx512,
    adasm__cvt_f32_bf16_avx512, adasm__cvt_bf16_f32_avx512,
    adasm__dot_rows_f64_avx512,
    adasm__ada_accum_avx512, adasm__ada_bounds_avx512,
    adasm__ada_profile_avx512,
    adasm__find_ge_avx512, adasm__texpsum_avx512, adasm__race_avx512,
    adasm__sumgather_avx512 ADASM__SVD_KSET(avx512)};

#if defined(ADASM__HAVE_AVX512BF16)
/* the same set, with vdpbf16ps for bf16 (see >>k_avx512) */
static const adasm_kernels adasm__kernels_avx512bf16 = {
    ADASM_ISA_AVX512, {32, 32, 8}, adasm__max_avx512, adasm__expsum_avx512,
    adasm__scale_avx512,  adasm__sub2_avx512, adasm__tp_sum_avx512,
    adasm__dot_rows_avx512,
    adasm__dot_rows_f16_avx512, adasm__dot_rows_bf16_avx512bf16,
    adasm__cvt_f32_f16_avx512,  adasm__cvt_f16_f32_avx512,
    adasm__cvt_f32_bf16_avx512, adasm__cvt_bf16_f32_avx512,
    adasm__dot_rows_f64_avx512,
    adasm__ada_accum_avx512, adasm__ada_bounds_avx512,
    adasm__ada_profile_avx512,
    adasm__find_ge_avx512, adasm__texpsum_avx512, adasm__race_avx512,
    adasm__sumgather_avx512 ADASM__SVD_KSET(avx512)};
#endif /* ADASM__HAVE_AVX512BF16 */
#endif /* ADASM__HAVE_AVX512 */

#if defined(ADASM__HAVE_NEON)
/* the draw's scan (race) and SVD-softmax have no NEON kernels: the scalar
   ones */
static const adasm_kernels adasm__kernels_neon = {
    ADASM_ISA_NEON, {8, 8, 8}, adasm__max_neon, adasm__expsum_neon,
    adasm__scale_neon,  adasm__sub2_neon,   adasm__tp_sum_neon,
    adasm__dot_rows_neon,
    adasm__dot_rows_f16_neon, adasm__dot_rows_bf16_neon,
    adasm__cvt_f32_f16_neon,  adasm__cvt_f16_f32_neon,
    adasm__cvt_f32_bf16_neon, adasm__cvt_bf16_f32_neon,
    adasm__dot_rows_f64_neon,
    adasm__ada_accum_neon, adasm__ada_bounds_neon,
    adasm__ada_profile_neon,
    adasm__find_ge_neon, adasm__texpsum_neon, adasm__race_scalar,
    adasm__sumgather_neon ADASM__SVD_KSET(scalar)};
#endif /* ADASM__HAVE_NEON */
#undef ADASM__SVD_KSET

ADASM__PRIVATE const adasm_kernels *adasm__table(adasm_isa isa) {
  switch (isa) {
  case ADASM_ISA_SCALAR: return &adasm__kernels_scalar;
#if defined(ADASM__HAVE_AVX2)
  case ADASM_ISA_AVX2:
    return (adasm__cpu_features() & ADASM__CPU_AVX2) ? &adasm__kernels_avx2 : NULL;
#endif
#if defined(ADASM__HAVE_AVX512)
  case ADASM_ISA_AVX512:
#if defined(ADASM__HAVE_AVX512BF16)
    if (adasm__cpu_features() & ADASM__CPU_AVX512BF16)
      return &adasm__kernels_avx512bf16; /* same set, vdpbf16ps for bf16 */
#endif
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

/* ---- array conversions ----------------------------------------------------- */
ADASM__PRIVATE size_t adasm__dtype_size(adasm_dtype t) {
  return t == ADASM_F32 ? 4u : (t == ADASM_F16 || t == ADASM_BF16) ? 2u : 0u;
}

ADASM_DEF adasm_result adasm_convert(const adasm_kernels *k, const void *src,
                                     adasm_dtype from, size_t n, void *dst,
                                     adasm_dtype to) {
  float buf[256];
  size_t i, bytes;
  if (!adasm__dtype_size(from) || !adasm__dtype_size(to)) return ADASM_ERR_PARAM;
  if (adasm__mul_overflows(n, adasm__dtype_size(from), &bytes) ||
      adasm__mul_overflows(n, adasm__dtype_size(to), &bytes))
    return ADASM_ERR_OVERFLOW;
  if (n == 0) return ADASM_OK;
  if (!src || !dst) return ADASM_ERR_NULL;
  k = adasm__k(k);
  if (from == to) {
    memcpy(dst, src, n * adasm__dtype_size(from));
  } else if (from == ADASM_F32) {
    (to == ADASM_F16 ? k->f32_to_f16 : k->f32_to_bf16)((const float *)src, n,
                                                        (uint16_t *)dst);
  } else if (to == ADASM_F32) {
    (from == ADASM_F16 ? k->f16_to_f32 : k->bf16_to_f32)((const uint16_t *)src,
                                                          n, (float *)dst);
  } else { /* f16 <-> bf16 through float: the widening is exact */
    const uint16_t *s = (const uint16_t *)src;
    uint16_t *o = (uint16_t *)dst;
    for (i = 0; i < n; i += 256) {
      const size_t len = n - i < 256 ? n - i : 256;
      (from == ADASM_F16 ? k->f16_to_f32 : k->bf16_to_f32)(s + i, len, buf);
      (to == ADASM_F16 ? k->f32_to_f16 : k->f32_to_bf16)(buf, len, o + i);
    }
  }
  return ADASM_OK;
}

/* >>exact -----------------------------------------------------------------
   Drivers shared by every ISA: special values, algorithm choice, blocking. */

/* Exp parameters that take the maximum m (finite) out of every term. */
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

/* y[r] = beta * (A_{r0 + r} . x) for r < len, any dtype: the rows of
   adasm_exact_query (the kernel set's float32 or 16-bit dot), shared by the
   fused sampler so both read A alike. */
ADASM__PRIVATE void adasm__matrix_rows(const adasm_kernels *k,
                                       const adasm_matrix *A, size_t r0,
                                       size_t len, const float *x, float beta,
                                       float *y) {
  if (A->dtype == ADASM_F32)
    k->dot_rows((const float *)A->data + r0 * A->ld, len, A->cols, A->ld, x,
                beta, y);
  else
    (A->dtype == ADASM_F16 ? k->dot_rows_f16 : k->dot_rows_bf16)(
        (const uint16_t *)A->data + r0 * A->ld, len, A->cols, A->ld, x, beta,
        y);
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
  void (*dot)(const uint16_t *, size_t, size_t, size_t, const float *, float,
              float *);
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
  dot = A->dtype == ADASM_F16 ? k->dot_rows_f16 : k->dot_rows_bf16;
  h.idx = out->idx; h.val = out->prob; h.size = 0; h.cap = params->k;
  adasm__online_init(&st);
  for (r = 0; r < n; r += ADASM__GEMV_ROWS) {
    size_t len = n - r < ADASM__GEMV_ROWS ? n - r : ADASM__GEMV_ROWS;
    float *y = out->logits ? out->logits + r : buf;
    dot((const uint16_t *)A->data + r * ld, len, d, ld, x, params->beta, y);
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
   AdaSoftmax, as docs/ada-engine.md derives it. A query:
     setup       scale x, column weights w_j = |x_j| sigma_j, one uniform
                 per column (the query's PCG stream)
     rounds      Poisson sampling: column j is in the round-r sample when
                 u_j < pi_j = min(1, lambda_r w_j), lambda_r doubling the
                 expected sample size each round; a round streams only the
                 columns that entered (and those that became certain) for
                 every row, into running sums
     bounds      a Bernstein confidence interval per row; the k-th largest
                 lower bound eliminates every row whose upper bound is below
     plan        from the bounds, the rows the normalizer needs exactly and
                 the cost (bytes) of finishing now, of another round, and of
                 the exact path: the cheapest is taken
     best arms   the survivors and the heavy rows, exactly (double dots of
                 the caller's rows)
     normalizer  exact mass of those rows plus the sampled bounds of the
                 rest; log_norm in the middle of the eps band they allow.
   Per-row work is a few passes of vector code (the ada_* kernels); per
   column, O(d) scalar work. */
#define ADASM__ADA_ROUNDS 12 /* most rounds a query may take: the union
                                bound of the guarantee counts them */
#define ADASM__ADA_NB 32     /* normalizer profile: one-logit buckets below
                                the largest lower bound (the last: the rest,
                                each row under e^-31 of the top logit) */
#define ADASM__ADA_NB1 9     /* the first profile's buckets: 8 one-logit
                                buckets, the rest summed in vectors (rows
                                within 8 logits of the top are a few percent
                                of an LM head; the full profile, when it is
                                needed, costs a pass more) */
#define ADASM__ADA_TILE 32768 /* rows per kernel call: long column streams,
                                 the sums (384 KB) in L2 */
#define ADASM__ADA_CAL_STEPS 61 /* calibration: ci_scale 10^(-0.05 s) */
/* Cost model, in bytes of DRAM traffic (docs/ada-engine.md): a pass over
   the per-row state costs about as much time as reading ADASM__ADA_ARM
   bytes per row; an exact row costs its bytes plus ADASM__ADA_ROW. */
#define ADASM__ADA_ARM 48.0
#define ADASM__ADA_ROW 128.0
#define ADASM__ADA_COL 48.0 /* per column per query: weight, uniform */

typedef struct adasm__ada_ws {
  double *w;         /* [d] weight |xs_j| sigma'_j (0: never sampled) */
  double *u;         /* [d] the column's uniform */
  unsigned char *st; /* [d] 0 out, 1 sampled, 2 certain */
  size_t *rc;        /* [d] the round's new columns */
  float *rf;         /* [3 d] their coefficients (see ada_accum) */
  adasm__ada_acc acc; /* [n] each */
  float *ucb, *lcb;  /* [n] */
  size_t *list;      /* [n] rows to compute exactly */
  size_t *near;      /* [n] rows of the profile's near buckets ... */
  unsigned char *nearb; /* [n] ... and their buckets */
  double *zx;        /* [n] their exact logits (by list position) */
  double *hb;        /* [4 NB] profile: count, sum e^ucb, e^lcb, e^u */
  size_t *top;       /* [k] heap of the answer */
  double *tz;        /* [k] its logits */
} adasm__ada_ws;

/* One query's state. Sampled quantities live in "index units": the logit
   of row i is G (base + u_i), with u_i the estimate from the running sums;
   G > 0 carries beta and the power-of-two scales of x and of A, so the
   floats in the kernels are O(1) whatever the caller's scaling. */
typedef struct adasm__ada_q {
  const adasm_ada_index *ix;
  const adasm_ada_params *p;
  const adasm_kernels *k;
  const float *x;
  adasm__ada_ws ws;
  size_t n, d;
  double G, base, wmax, wsum, L;
  double lam;           /* current lambda (index units) */
  size_t nnz, m, ncert, nsamp, terms;
  double cert_w;        /* sum of w over the certain columns */
  float M, Lk;          /* largest ucb, k-th largest lcb */
  size_t bstar, nx;     /* buckets computed exactly; rows in them */
  size_t nnear;         /* rows in the profile's near buckets */
  size_t nb;            /* buckets of the current profile (the last: the
                           rest), ADASM__ADA_NB1 or ADASM__ADA_NB */
  size_t xdone;         /* list[0, xdone) has its exact logits in zx (a
                           deeper profile keeps the list's first buckets) */
  int defer_exact;      /* 1: where the exact pass would answer, return 0
                           and leave it to the caller (the sampler) */
  float xx;             /* x . x by the dot kernel (adasm__ada_start) */
  int lazy_x;           /* 1: x not checked yet (a small head that goes
                           straight to the exact pass, which checks it) */
  int bad;              /* after a lazy check: 1 NaN in x, 2 inf */
  double shrink;        /* rows to compute exactly, next round / this one */
  size_t prev_nx;
  uint64_t bytes, madds;
  size_t rounds;
} adasm__ada_q;

ADASM__PRIVATE size_t adasm__ada_dsize(adasm_dtype t) {
  return t == ADASM_F32 ? 4u : 2u;
}

/* A head of a few rows (not bf16): its exact pass screens x as it is. */
ADASM__PRIVATE int adasm__ada_small(const adasm_ada_index *ix) {
  return ix->n <= 32 && ix->A.dtype != ADASM_BF16;
}

/* 1 when adaptivity cannot win whatever x is: its cheapest query (one
   round, the per-row and per-column work, k exact rows) would cost half
   the exact pass. */
ADASM__PRIVATE int adasm__ada_hopeless(const adasm_ada_index *ix,
                                       const adasm_ada_params *p) {
  const double exact =
      (double)ix->n * (double)ix->d * (double)adasm__ada_dsize(ix->A.dtype);
  return p->k >= ix->n ||
         (double)ix->n * ADASM__ADA_ARM + (double)ix->d * ADASM__ADA_COL >=
             0.5 * exact;
}

/* Lays the query workspace out (base NULL: measures). 0 on overflow. */
ADASM__PRIVATE int adasm__ada_layout(size_t n, size_t d, size_t k,
                                     unsigned char *base, adasm__ada_ws *w,
                                     size_t *total) {
  adasm__carver c;
  c.base = base;
  c.off = 0;
  c.ok = 1;
  w->w = (double *)adasm__carve(&c, d, sizeof(double));
  w->u = (double *)adasm__carve(&c, d, sizeof(double));
  w->st = (unsigned char *)adasm__carve(&c, d, 1);
  w->rc = (size_t *)adasm__carve(&c, d, sizeof(size_t));
  w->rf = (float *)adasm__carve(&c, d, 3 * sizeof(float));
  w->acc.e = (float *)adasm__carve(&c, n, sizeof(float));
  w->acc.p = (float *)adasm__carve(&c, n, sizeof(float));
  w->acc.q = (float *)adasm__carve(&c, n, sizeof(float));
  w->ucb = (float *)adasm__carve(&c, n, sizeof(float));
  w->lcb = (float *)adasm__carve(&c, n, sizeof(float));
  w->list = (size_t *)adasm__carve(&c, n, sizeof(size_t));
  w->near = (size_t *)adasm__carve(&c, n, sizeof(size_t));
  w->nearb = (unsigned char *)adasm__carve(&c, n, 1);
  w->zx = (double *)adasm__carve(&c, n, sizeof(double));
  w->hb = (double *)adasm__carve(&c, 4 * ADASM__ADA_NB, sizeof(double));
  w->top = (size_t *)adasm__carve(&c, k, sizeof(size_t));
  w->tz = (double *)adasm__carve(&c, k, sizeof(double));
  if (!c.ok || c.off > (size_t)-1 - ADASM__ALIGN) return 0;
  *total = c.off + ADASM__ALIGN; /* the caller's buffer needs no alignment */
  return 1;
}

/* adasm__nonfinite with the kernels' dot product first: x . x (in *xx,
   which the exact pass reuses) is finite exactly when every entry is (or
   the squares overflow: then the scalar check decides), at the speed of
   the vector code. */
ADASM__PRIVATE int adasm__ada_nonfinite(const adasm_kernels *k, const float *x,
                                        size_t d, float *xx) {
  k->dot_rows(x, 1, d, d, x, 1.0f, xx);
  return adasm__isfinitef(*xx) ? 0 : adasm__nonfinite(x, d);
}

/* ---- index ------------------------------------------------------------- */


/* 1 if entry j of row i is NaN, 2 if +-inf, 0 if finite (on the raw bits). */
ADASM__PRIVATE int adasm__ada_bad(const adasm_matrix *A, size_t i, size_t j) {
  const size_t o = i * A->ld + j;
  if (A->dtype == ADASM_F32) {
    const float f = ((const float *)A->data)[o];
    return adasm__isnanf(f) ? 1 : (adasm__isfinitef(f) ? 0 : 2);
  } else {
    const uint16_t h = ((const uint16_t *)A->data)[o];
    const uint16_t e = A->dtype == ADASM_F16 ? 0x7c00u : 0x7f80u;
    const uint16_t m = A->dtype == ADASM_F16 ? 0x03ffu : 0x007fu;
    return (h & e) != e ? 0 : ((h & m) ? 1 : 2);
  }
}

/* Row i of A as floats: A's own memory for float32, else converted into
   buf (d floats). */
ADASM__PRIVATE const float *adasm__ada_row(const adasm_matrix *A, size_t i,
                                           float *buf) {
  size_t j;
  if (A->dtype == ADASM_F32) return (const float *)A->data + i * A->ld;
  if (A->dtype == ADASM_F16) {
    const uint16_t *h = (const uint16_t *)A->data + i * A->ld;
    for (j = 0; j < A->cols; ++j) buf[j] = adasm_f16_to_f32(h[j]);
  } else {
    const uint16_t *h = (const uint16_t *)A->data + i * A->ld;
    for (j = 0; j < A->cols; ++j) buf[j] = adasm_bf16_to_f32(h[j]);
  }
  return buf;
}

/* The index's statistics: column means mu and RMS sigma of the centred
   columns (two passes: no cancellation when a column's mean dwarfs its
   spread), in double; row norms rnorm (rounded up: bounds); aexp. inv
   gets 1 / sigma (0 for a constant column). scratch: d floats. */
ADASM__PRIVATE void adasm__ada_stats(const adasm_matrix *A, adasm_ada_index *t,
                                     float *scratch, double *inv) {
  const size_t n = A->rows, d = A->cols;
  double amax = 0.0;
  size_t i, j;
  for (j = 0; j < 2 * d; ++j) t->mu[j] = 0.0;
  for (i = 0; i < n; ++i) {
    const float *a = adasm__ada_row(A, i, scratch);
    double r2 = 0.0;
    for (j = 0; j < d; ++j) {
      t->mu[j] += (double)a[j];
      r2 += (double)a[j] * (double)a[j];
      amax = fabs((double)a[j]) > amax ? fabs((double)a[j]) : amax;
    }
    /* rounded up, so it bounds the norm (float never underestimates here
       by more than the next float above) */
    t->rnorm[i] = (float)(sqrt(r2) * (1.0 + 1e-6));
  }
  t->aexp = 0;
  if (amax > 0.0) (void)frexp(amax, &t->aexp);
  for (j = 0; j < d; ++j) t->mu[j] /= (double)n;
  for (i = 0; i < n; ++i) {
    const float *a = adasm__ada_row(A, i, scratch);
    for (j = 0; j < d; ++j) {
      const double v = (double)a[j] - t->mu[j];
      t->sigma[j] += v * v;
    }
  }
  for (j = 0; j < d; ++j) {
    t->sigma[j] = sqrt(t->sigma[j] / (double)n);
    inv[j] = t->sigma[j] > 0.0 ? 1.0 / t->sigma[j] : 0.0;
  }
}

/* The transposed f16 copy of the centred, normalised columns, 32 rows at
   a time (a column's 32 entries are one 64-byte line, which stays in cache
   while the rows fill it), padding rows zero; rho: a row's largest |entry|,
   taken on the bits (f16 orders as integers). scratch: 32 d floats. */
ADASM__PRIVATE void adasm__ada_transpose(const adasm_matrix *A,
                                         adasm_ada_index *t, float *scratch,
                                         const double *inv) {
  const size_t n = A->rows, d = A->cols, ldc = t->ldc;
  size_t i, j, r;
  for (i = 0; i < ldc; i += 32)
    for (r = 0; r < 32; ++r) {
      uint16_t *col = t->cols + i + r;
      unsigned big = 0;
      if (i + r >= n) {
        for (j = 0; j < d; ++j) col[j * ldc] = 0;
      } else {
        const float *a = adasm__ada_row(A, i + r, scratch + r * d);
        for (j = 0; j < d; ++j) {
          const uint16_t h = adasm_f32_to_f16(
              (float)(((double)a[j] - t->mu[j]) * inv[j]));
          col[j * ldc] = h;
          big = (h & 0x7fffu) > big ? (h & 0x7fffu) : big;
        }
        t->rho[i + r] = adasm_f16_to_f32((uint16_t)big);
      }
    }
}

/* The argument checks of adasm_ada_index_build, before any allocation:
   shapes, overflow of every size, then NaN (first) and inf entries.
   *sbytes: the build's scratch (32 rows as floats and 1 / sigma). */
ADASM__PRIVATE adasm_result adasm__ada_index_check(const adasm_matrix *A,
                                                   unsigned flags,
                                                   size_t *sbytes) {
  size_t n, d, i, j, span, es;
  int has_inf = 0;
  if (!A->data) return ADASM_ERR_NULL;
  if (A->dtype != ADASM_F32 && A->dtype != ADASM_F16 && A->dtype != ADASM_BF16)
    return ADASM_ERR_PARAM;
  if (flags & ~ADASM_ADA_OWN_ROWS) return ADASM_ERR_PARAM;
  n = A->rows;
  d = A->cols;
  if (n == 0 || d == 0 || A->ld < d) return ADASM_ERR_SIZE;
  es = adasm__ada_dsize(A->dtype);
  if (adasm__mul_overflows(n - 1, A->ld, &span) || span > (size_t)-1 - d ||
      adasm__mul_overflows(span + d, es, &span) || n > (size_t)-1 - 31 ||
      adasm__mul_overflows(d, 32 * sizeof(float) + sizeof(double), sbytes))
    return ADASM_ERR_OVERFLOW;
  for (i = 0; i < n; ++i)
    for (j = 0; j < d; ++j) {
      const int b = adasm__ada_bad(A, i, j);
      if (b == 1) return ADASM_ERR_NAN;
      has_inf |= b == 2;
    }
  return has_inf ? ADASM_ERR_PARAM : ADASM_OK;
}

ADASM_DEF adasm_result adasm_ada_index_build(adasm_ada_index *ix,
                                             const adasm_matrix *A,
                                             unsigned flags,
                                             void *alloc_ctx) {
  adasm_ada_index t;
  adasm__carver c;
  size_t n, d, i, span, ldc, own = 0, es, sbytes;
  float *scratch;
  void *copy = NULL;
  adasm_result r;
  if (!ix || !A) return ADASM_ERR_NULL;
  r = adasm__ada_index_check(A, flags, &sbytes);
  if (r != ADASM_OK) return r;
  n = A->rows;
  d = A->cols;
  es = adasm__ada_dsize(A->dtype);
  ldc = (n + 31) & ~(size_t)31;
  c.base = NULL;
  c.off = 0;
  c.ok = 1;
  if (adasm__mul_overflows(ldc, d, &span)) return ADASM_ERR_OVERFLOW;
  (void)adasm__carve(&c, span, 2);
  (void)adasm__carve(&c, 2 * d, sizeof(double));
  (void)adasm__carve(&c, 2 * n, sizeof(float));
  if (flags & ADASM_ADA_OWN_ROWS) {
    if (adasm__mul_overflows(n, d, &own)) return ADASM_ERR_OVERFLOW;
    (void)adasm__carve(&c, own, es);
  }
  if (!c.ok || c.off > (size_t)-1 - ADASM__ALIGN) return ADASM_ERR_OVERFLOW;
  t.block = ADASM_MALLOC(c.off + ADASM__ALIGN, alloc_ctx);
  if (!t.block) return ADASM_ERR_NOMEM;
  scratch = (float *)ADASM_MALLOC(sbytes, alloc_ctx); /* freed below */
  if (!scratch) {
    ADASM_FREE(t.block, alloc_ctx);
    return ADASM_ERR_NOMEM;
  }
  c.base = adasm__align_up(t.block);
  c.off = 0;
  t.cols = (uint16_t *)adasm__carve(&c, span, 2);
  t.mu = (double *)adasm__carve(&c, 2 * d, sizeof(double));
  t.sigma = t.mu + d;
  t.rho = (float *)adasm__carve(&c, 2 * n, sizeof(float));
  t.rnorm = t.rho + n;
  if (own) copy = adasm__carve(&c, own, es);
  t.n = n;
  t.d = d;
  t.ldc = ldc;
  t.alloc_ctx = alloc_ctx;
  t.A = *A;
  if (copy) {
    for (i = 0; i < n; ++i)
      memcpy((unsigned char *)copy + i * d * es,
             (const unsigned char *)A->data + i * A->ld * es, d * es);
    t.A.data = copy;
    t.A.ld = d;
  }
  adasm__ada_stats(A, &t, scratch, (double *)(void *)(scratch + 32 * d));
  adasm__ada_transpose(A, &t, scratch, (const double *)(void *)(scratch + 32 * d));
  ADASM_FREE(scratch, alloc_ctx);
  *ix = t;
  return ADASM_OK;
}

ADASM_DEF void adasm_ada_index_free(adasm_ada_index *ix) {
  if (!ix) return;
  if (ix->block) ADASM_FREE(ix->block, ix->alloc_ctx);
  memset(ix, 0, sizeof *ix);
}

/* ---- query: checks and setup --------------------------------------------- */

ADASM_DEF adasm_ada_params adasm_ada_params_default(void) {
  adasm_ada_params p;
  p.k = 1;
  p.eps = 0.3;
  p.delta = 0.1;
  p.beta = 1.0f;
  p.seed = 42u;
  p.stream = 0u;
  p.ci_scale = 1.0;
  p.kern = NULL;
  return p;
}

ADASM__PRIVATE adasm_result adasm__ada_check(const adasm_ada_index *ix,
                                             const adasm_ada_params *p) {
  if (!ix || !p || !ix->block || !ix->cols || !ix->A.data) return ADASM_ERR_NULL;
  if (p->k == 0 || p->k > ix->n) return ADASM_ERR_SIZE;
  if (!(p->eps > 0.0 && p->eps < 1.0) || !(p->delta > 0.0 && p->delta < 1.0) ||
      !adasm__isfinitef(p->beta) || !(p->beta > 0.0f) ||
      !(p->ci_scale > 0.0 && p->ci_scale <= 1.0))
    return ADASM_ERR_PARAM;
  return ADASM_OK;
}

ADASM_DEF adasm_result adasm_ada_workspace_size(const adasm_ada_index *ix,
                                                const adasm_ada_params *params,
                                                size_t *bytes) {
  adasm__ada_ws w;
  adasm_result r = adasm__ada_check(ix, params);
  if (r != ADASM_OK) return r;
  if (!bytes) return ADASM_ERR_NULL;
  if (!adasm__ada_layout(ix->n, ix->d, params->k, NULL, &w, bytes))
    return ADASM_ERR_OVERFLOW;
  return ADASM_OK;
}

/* Scales, weights and uniforms; 0 when no column carries weight (every
   logit is then the same: the exact pass answers). */
ADASM__PRIVATE int adasm__ada_setup(adasm__ada_q *q) {
  const adasm_ada_index *ix = q->ix;
  adasm_pcg32 rng;
  double xmax = 0.0, smax = 0.0, base = 0.0, px, ps;
  int ex = 0, es = 0;
  size_t j;
  for (j = 0; j < q->d; ++j) {
    const double a = fabs((double)q->x[j]);
    xmax = a > xmax ? a : xmax;
    smax = ix->sigma[j] > smax ? ix->sigma[j] : smax;
  }
  if (xmax > 0.0) (void)frexp(xmax, &ex);
  if (smax > 0.0) (void)frexp(smax, &es);
  /* powers of two only: the answer does not depend on how a product is
     split between A, x and beta */
  q->wsum = 0.0;
  q->wmax = 0.0;
  q->nnz = 0;
  /* (multiplications by 2^-ex and 2^-es: exact in double for every float
     x and every sigma, and a tenth of ldexp's cost) */
  px = ldexp(1.0, -ex);
  ps = ldexp(1.0, -es);
  for (j = 0; j < q->d; ++j) {
    const double xs = (double)q->x[j] * px;
    q->ws.w[j] = fabs(xs) * (ix->sigma[j] * ps);
    base += ix->mu[j] * xs;
    q->wsum += q->ws.w[j];
    q->wmax = q->ws.w[j] > q->wmax ? q->ws.w[j] : q->wmax;
    q->nnz += q->ws.w[j] > 0.0;
    q->ws.st[j] = 0;
  }
  q->base = ldexp(base, -es);
  q->G = ldexp((double)q->p->beta, ex + es);
  adasm_pcg32_seed(&rng, q->p->seed, q->p->stream);
  for (j = 0; j < q->d; ++j) q->ws.u[j] = adasm_pcg32_uniform_open(&rng);
  q->L = log(3.0 * (double)q->n * (double)ADASM__ADA_ROUNDS / q->p->delta);
  q->lam = 0.0;
  q->m = 0;
  q->ncert = q->nsamp = q->terms = 0;
  q->cert_w = 0.0;
  q->shrink = 0.4;
  q->prev_nx = 0;
  return q->nnz > 0 && q->wsum > 0.0;
}

/* lambda with expected sample size sum_j min(1, lambda w_j) = m (m < nnz):
   the fixed point lambda = (m - #certain) / (weight of the uncertain),
   approached from below in a few O(d) steps. */
ADASM__PRIVATE double adasm__ada_lambda(const adasm__ada_q *q, double m) {
  double lam = m / q->wsum;
  size_t iter, j;
  if (m >= (double)q->nnz) return HUGE_VAL; /* every column, certain */
  for (iter = 0; iter < 64; ++iter) {
    double wu = 0.0, next;
    size_t t = 0;
    for (j = 0; j < q->d; ++j) {
      if (lam * q->ws.w[j] >= 1.0) ++t;
      else wu += q->ws.w[j];
    }
    if (wu <= 0.0 || (double)t >= m) break;
    next = (m - (double)t) / wu;
    if (!(next > lam)) break;
    lam = next;
  }
  return lam;
}

/* ---- rounds --------------------------------------------------------------- */

/* Round r: the columns that enter at lambda (sampled, certain, or sampled
   before and certain now), streamed for every row into the running sums. */
ADASM__PRIVATE void adasm__ada_round(adasm__ada_q *q, double m) {
  const adasm_ada_index *ix = q->ix;
  const double lam = adasm__ada_lambda(q, m);
  size_t j, nc = 0, r0;
  for (j = 0; j < q->d; ++j) {
    const double w = q->ws.w[j], xs = q->x[j] < 0.0f ? -1.0 : 1.0;
    float *f = q->ws.rf + 3 * nc;
    unsigned char to;
    if (w <= 0.0 || q->ws.st[j] == 2) continue;
    to = lam * w >= 1.0 ? 2 : (q->ws.u[j] < lam * w ? 1 : 0);
    if (to == q->ws.st[j]) continue;
    f[0] = to == 2 ? (float)(xs * w) : 0.0f; /* sigma' xs = sign * w */
    f[1] = to == 2 ? (q->ws.st[j] == 1 ? (float)-xs : 0.0f) : (float)xs;
    f[2] = to == 2 ? (q->ws.st[j] == 1 ? -1.0f : 0.0f) : 1.0f;
    if (to == 2) {
      q->ncert += 1;
      q->cert_w += w;
      if (q->ws.st[j] == 1) q->nsamp -= 1;
    } else {
      q->nsamp += 1;
    }
    q->ws.st[j] = to;
    q->ws.rc[nc++] = j;
  }
  for (r0 = 0; r0 < q->n && (nc > 0 || q->rounds == 0);
       r0 += ADASM__ADA_TILE) {
    const size_t r1 = q->n - r0 < ADASM__ADA_TILE ? q->n : r0 + ADASM__ADA_TILE;
    q->k->ada_accum(ix->cols, ix->ldc, q->ws.rc, q->ws.rf, nc, r0, r1,
                    &q->ws.acc, q->rounds == 0);
  }
  q->lam = lam;
  q->m = m >= (double)q->nnz ? q->nnz : (size_t)m;
  q->terms += nc;
  q->bytes += (uint64_t)nc * (uint64_t)ix->ldc * 2u;
  q->madds += (uint64_t)nc * (uint64_t)q->n;
  q->rounds += 1;
}

/* ---- bounds and elimination ---------------------------------------------- */

/* The k-th largest of v[0..n), with a min-heap of k floats in h. */
ADASM__PRIVATE float adasm__ada_kth(const float *v, size_t n, size_t k,
                                    float *h) {
  size_t i;
  for (i = 0; i < k; ++i) {
    size_t c = i;
    h[c] = v[i];
    while (c > 0 && h[(c - 1) / 2] > h[c]) { /* sift up */
      const float t = h[c];
      h[c] = h[(c - 1) / 2];
      h[(c - 1) / 2] = t;
      c = (c - 1) / 2;
    }
  }
  for (i = k; i < n; ++i) {
    size_t c = 0;
    if (!(v[i] > h[0])) continue;
    h[0] = v[i];
    for (;;) { /* sift down */
      size_t l = 2 * c + 1, m = c;
      float t;
      if (l < k && h[l] < h[m]) m = l;
      if (l + 1 < k && h[l + 1] < h[m]) m = l + 1;
      if (m == c) break;
      t = h[c];
      h[c] = h[m];
      h[m] = t;
      c = m;
    }
  }
  return h[0];
}

/* Confidence intervals of every row (docs/ada-engine.md, "Bounds"): with
   ci_scale 1 each holds with probability >= 1 - 3 e^-L, so all n rows of
   all rounds hold together with probability >= 1 - delta. The f16 copy and
   the float sums add a deterministic bias term. */
ADASM__PRIVATE void adasm__ada_bounds(adasm__ada_q *q) {
  adasm__ada_bp bp;
  const double inv_lam = q->nsamp > 0 ? 1.0 / q->lam : 0.0;
  /* sum over the sample of |multiplier|: certain columns w_j, sampled 1/lam */
  const double cs = q->cert_w + (double)q->nsamp * inv_lam;
  /* ci_scale scales the log-confidence of every interval */
  const double lf = q->L * q->p->ci_scale;
  float mx[2];
  size_t r0;
  bp.e = q->ws.acc.e;
  bp.p = q->ws.acc.p;
  bp.q = q->ws.acc.q;
  bp.rho = q->ix->rho;
  bp.inv_lam = (float)inv_lam;
  bp.sl = (float)sqrt(lf / 2.0);
  bp.cl = (float)sqrt(2.0 * lf);
  bp.l3 = (float)(lf / 3.0);
  bp.scale = 1.0f;
  /* f16 rounding (2^-11 relative, 2^-25 absolute below 2^-14) and float
     sums of `terms` entries, each doubled for safety: 2^-10, 2^-23 */
  bp.bias_rho = (float)((9.765625e-4 + (double)q->terms * 1.1920928955078125e-7) * cs);
  bp.bias_abs = (float)(1.1920928955078125e-7 * cs);
  bp.bias_rel = 4.76837158203125e-7f; /* 2^-21 */
  mx[0] = mx[1] = -adasm__inff();
  for (r0 = 0; r0 < q->n; r0 += ADASM__ADA_TILE) {
    const size_t r1 = q->n - r0 < ADASM__ADA_TILE ? q->n : r0 + ADASM__ADA_TILE;
    q->k->ada_bounds(&bp, r0, r1, q->ws.ucb, q->ws.lcb, mx);
  }
  /* the profile's reference: the largest lower bound, a lower bound of
     the top logit (the largest upper bound may sit far above it) */
  q->M = mx[1];
  q->Lk = q->p->k == 1 ? mx[1]
                       : adasm__ada_kth(q->ws.lcb, q->n, q->p->k,
                                        (float *)(void *)q->ws.zx);
}

/* ---- plan: what the normalizer needs, and what each way costs ----------- */

/* Bucket of a row in the normalizer profile: whole logits below M. */
ADASM__PRIVATE size_t adasm__ada_bucket(const adasm__ada_q *q, float ucb) {
  const double t = q->G * ((double)q->M - (double)ucb);
  if (t < 1.0) return 0;
  return t < (double)(q->nb - 1) ? (size_t)t : q->nb - 1;
}

/* The profile: per bucket, rows and sums of e^(G(ucb - M)), e^(G(lcb - M))
   and e^(G(u - M)), by the kernel in float when G is a float; the kernel's
   rounding (the difference, the product by G, the exp: together below
   2e-5 relative for arguments above -86) is absorbed where the sums are
   used. nb buckets (the last: the rest). */
ADASM__PRIVATE void adasm__ada_profile(adasm__ada_q *q, size_t nb) {
  double *h = q->ws.hb;
  size_t i, r0;
  for (i = 0; i < 4 * ADASM__ADA_NB; ++i) h[i] = 0.0;
  q->nnear = 0;
  q->nb = nb;
  if (q->G < 1e30) {
    for (r0 = 0; r0 < q->n; r0 += ADASM__ADA_TILE) {
      const size_t r1 = q->n - r0 < ADASM__ADA_TILE ? q->n : r0 + ADASM__ADA_TILE;
      q->k->ada_profile(q->ws.ucb, q->ws.lcb, r0, r1, q->M, (float)q->G, nb,
                        h, q->ws.near, q->ws.nearb, &q->nnear);
    }
    return;
  }
  for (i = 0; i < q->n; ++i) { /* G beyond float: in double */
    const size_t b = adasm__ada_bucket(q, q->ws.ucb[i]);
    double du = q->G * ((double)q->ws.ucb[i] - (double)q->M);
    double dl = q->G * ((double)q->ws.lcb[i] - (double)q->M);
    du = du < 64.0 ? du : 64.0;
    dl = dl < 64.0 ? dl : 64.0;
    if (b < nb - 1) {
      q->ws.near[q->nnear] = i;
      q->ws.nearb[q->nnear++] = (unsigned char)b;
    }
    h[4 * b] += 1.0;
    h[4 * b + 1] += exp(du);
    h[4 * b + 2] += exp(dl);
    h[4 * b + 3] += exp(0.5 * (du + dl));
  }
}

/* The band the normalizer must fit in: S_hi / S_lo <= (1 + eps)/(1 - eps). */
ADASM__PRIVATE double adasm__ada_band(const adasm_ada_params *p) {
  return (1.0 + p->eps) / (1.0 - p->eps);
}

/* Smallest bucket b (rows of buckets 0..b computed exactly) that holds
   every top-k candidate and whose tail, predicted with the estimates as
   the exact mass, fits the band. NB - 1 when none does. */
ADASM__PRIVATE size_t adasm__ada_choose(adasm__ada_q *q) {
  const double *h = q->ws.hb, R = adasm__ada_band(q->p);
  double th = 0.0, tl = 0.0, ez = 0.0, cnt = 0.0;
  size_t b, bk = adasm__ada_bucket(q, q->Lk);
  for (b = 0; b < q->nb; ++b) { /* start with everything as tail */
    th += h[4 * b + 1];
    tl += h[4 * b + 2];
  }
  for (b = 0; b < q->nb - 1; ++b) {
    th -= h[4 * b + 1];
    tl -= h[4 * b + 2];
    ez += h[4 * b + 3];
    cnt += h[4 * b];
    if (b >= bk && th - R * tl <= (R - 1.0) * 0.7 * ez) break;
  }
  q->bstar = b;
  q->nx = 0;
  for (b = 0; b <= q->bstar; ++b) q->nx += (size_t)h[4 * b];
  (void)cnt;
  return q->bstar;
}

enum { ADASM__ADA_FINISH, ADASM__ADA_MORE, ADASM__ADA_EXACT };

/* Bytes of each way to go on; the cheapest wins. */
ADASM__PRIVATE int adasm__ada_plan(adasm__ada_q *q, double next_m) {
  const double row = (double)q->d * (double)adasm__ada_dsize(q->ix->A.dtype);
  const double exact = (double)q->n * row;
  const double finish = q->bstar >= q->nb - 1
                            ? exact * 2.0
                            : (double)q->nx * (row + ADASM__ADA_ROW);
  double more = exact * 4.0;
  if (q->prev_nx > 0 && q->nx > 0) {
    q->shrink = (double)q->nx / (double)q->prev_nx;
    q->shrink = q->shrink < 0.1 ? 0.1 : (q->shrink > 1.0 ? 1.0 : q->shrink);
  }
  /* a normalizer that needs more rows than the exact pass reads gives no
     ground to expect the next round to rescue it */
  if (finish >= exact) q->shrink = 1.0;
  q->prev_nx = q->nx;
  if ((double)q->m < (double)q->nnz && q->rounds < ADASM__ADA_ROUNDS)
    more = (next_m - (double)q->m) * (double)q->n * 2.0 +
           (double)q->n * ADASM__ADA_ARM + finish * q->shrink;
  if (finish <= more && finish <= exact) return ADASM__ADA_FINISH;
  if (more < 0.8 * exact) return ADASM__ADA_MORE;
  return finish <= exact ? ADASM__ADA_FINISH : ADASM__ADA_EXACT;
}

/* ---- the exact pass (the fallback, and the reference of calibration) ---- */

/* Inline exp in double for the per-row loops: x = k ln2 + r, |r| <= ln2/2
   (fdlibm's two-part ln2), Taylor to r^13 by Estrin's scheme, 2^k applied
   in two normal halves; x clamped to [-746, 710]. Within 2 ulp of libm. */
ADASM__PRIVATE double adasm__exp_f64(double x) {
  static const double c[14] = {
      1.0, 1.0, 0.5, 1.6666666666666666e-01, 4.1666666666666664e-02,
      8.3333333333333332e-03, 1.3888888888888889e-03, 1.9841269841269841e-04,
      2.4801587301587302e-05, 2.7557319223985893e-06, 2.7557319223985888e-07,
      2.5052108385441720e-08, 2.0876756987868099e-09, 1.6059043836821613e-10};
  const double magic = 6755399441055744.0; /* 1.5 * 2^52 */
  double k, k1, r, r2, r4, q0, q2, q4, t1, t2, s1, s2;
  uint64_t b1, b2;
  x = x < -746.0 ? -746.0 : x;
  x = x > 710.0 ? 710.0 : x;
  k = (x * 1.4426950408889634 + magic) - magic;
  r = (x - k * 6.93147180369123816490e-01) - k * 1.90821492927058770002e-10;
  r2 = r * r;
  r4 = r2 * r2;
  q0 = (c[0] + c[1] * r) + (c[2] + c[3] * r) * r2;
  q2 = (c[4] + c[5] * r) + (c[6] + c[7] * r) * r2;
  q4 = (c[8] + c[9] * r) + (c[10] + c[11] * r) * r2;
  q0 += q2 * r4;
  q4 += (c[12] + c[13] * r) * r4;
  k1 = (k * 0.5 + magic) - magic;
  t1 = k1 + magic;
  t2 = (k - k1) + magic;
  memcpy(&b1, &t1, sizeof b1);
  memcpy(&b2, &t2, sizeof b2);
  b1 = (b1 + 1023u) << 52;
  b2 = (b2 + 1023u) << 52;
  memcpy(&s1, &b1, sizeof s1);
  memcpy(&s2, &b2, sizeof s2);
  return (q0 + q4 * (r4 * r4)) * s1 * s2;
}

/* Best-first order of rows by logit: larger first, then lower index. */
ADASM__PRIVATE int adasm__ada_better(double za, size_t a, double zb,
                                     size_t b) {
  return za > zb || (za == zb && a < b);
}

/* Offers row i with logit z to the min-heap (worst at the root) of the k
   best rows so far; zs holds their logits. */
ADASM__PRIVATE void adasm__ada_offer(size_t *top, double *zs, size_t *cnt,
                                     size_t k, size_t i, double z) {
  size_t c;
  if (*cnt < k) {
    c = (*cnt)++;
    top[c] = i;
    zs[c] = z;
    while (c > 0 && adasm__ada_better(zs[(c - 1) / 2], top[(c - 1) / 2], zs[c], top[c])) {
      size_t t = top[c];
      double tz = zs[c];
      top[c] = top[(c - 1) / 2];
      zs[c] = zs[(c - 1) / 2];
      top[(c - 1) / 2] = t;
      zs[(c - 1) / 2] = tz;
      c = (c - 1) / 2;
    }
    return;
  }
  if (!adasm__ada_better(z, i, zs[0], top[0])) return;
  top[0] = i;
  zs[0] = z;
  c = 0;
  for (;;) {
    size_t l = 2 * c + 1, m = c, t;
    double tz;
    if (l < k && adasm__ada_better(zs[m], top[m], zs[l], top[l])) m = l;
    if (l + 1 < k && adasm__ada_better(zs[m], top[m], zs[l + 1], top[l + 1])) m = l + 1;
    if (m == c) break;
    t = top[c];
    tz = zs[c];
    top[c] = top[m];
    zs[c] = zs[m];
    top[m] = t;
    zs[m] = tz;
    c = m;
  }
}

/* Sorts the heap best-first (heap sort, worst to the back). */
ADASM__PRIVATE void adasm__ada_sort_top(size_t *top, double *zs, size_t k) {
  size_t end;
  for (end = k; end > 1; --end) {
    size_t c = 0, t = top[0];
    double tz = zs[0];
    top[0] = top[end - 1];
    zs[0] = zs[end - 1];
    top[end - 1] = t;
    zs[end - 1] = tz;
    for (;;) {
      size_t l = 2 * c + 1, m = c;
      if (l < end - 1 && adasm__ada_better(zs[m], top[m], zs[l], top[l])) m = l;
      if (l + 1 < end - 1 && adasm__ada_better(zs[m], top[m], zs[l + 1], top[l + 1])) m = l + 1;
      if (m == c) break;
      t = top[c];
      tz = zs[c];
      top[c] = top[m];
      zs[c] = zs[m];
      top[m] = t;
      zs[m] = tz;
      c = m;
    }
  }
}

#define ADASM__ADA_XBLOCK 256 /* rows per block of the exact pass */

/* The exact answer: the top k by double logits (ranked as a double
   reference ranks them) and the log-normalizer; writes idx and zs (k each,
   zs the logits) and *log_norm. Scratch: zf (n floats), cand (n), zc (n).
   The logits are first the float kernels' (one streaming read, the exact
   path's speed), each within e_i = g_d ||A_i|| ||x|| of the truth
   (g_d = m u / (1 - m u), u = 2^-24, m = adasm__dot_depth the most
   roundings kern's dot kernels make); only the rows whose float logit plus e_i reaches the k-th
   largest float lower bound can be in the top k, and only they are
   recomputed in double. The normalizer comes from the float logits
   (relative error below 2 beta max_i e_i). Float logits that overflow
   send every row through double dots. */
/* The double pass: every logit in double into zc, and the log-normalizer. */
ADASM__PRIVATE void adasm__ada_pass_f64(const adasm_ada_index *ix,
                                        const adasm_kernels *kern,
                                        const float *x, double beta,
                                        double *zc, double *log_norm) {
  double m = -HUGE_VAL, s = 0.0;
  float ef[ADASM__ADA_XBLOCK];
  adasm__expp ep;
  size_t r0, t;
  adasm__expp_fold(0, &ep);
  for (r0 = 0; r0 < ix->n; r0 += ADASM__ADA_XBLOCK) {
    const size_t len = ix->n - r0 < ADASM__ADA_XBLOCK ? ix->n - r0 : ADASM__ADA_XBLOCK;
    double bm = -HUGE_VAL, bs;
    kern->dot_rows_f64(&ix->A, NULL, r0, len, x, zc + r0);
    for (t = 0; t < len; ++t)
      bm = beta * zc[r0 + t] > bm ? beta * zc[r0 + t] : bm;
    /* the block's sum of exps with the kernels' exp (within 2e-7): the
       differences to the block maximum, in float, are exact enough */
    for (t = 0; t < len; ++t) {
      const double dz = beta * zc[r0 + t] - bm;
      ef[t] = dz > -100.0 ? (float)dz : -100.0f;
    }
    bs = kern->expsum(ef, len, &ep, NULL, 1.0f);
    if (bm > m) {
      s = s * adasm__exp_f64(m - bm) + bs;
      m = bm;
    } else {
      s += bs * adasm__exp_f64(bm - m);
    }
  }
  *log_norm = m + log(s);
}

ADASM__PRIVATE void adasm__ada_exact_pass(const adasm_ada_index *ix,
                                          const adasm_kernels *kern,
                                          const float *x, double beta,
                                          size_t k, size_t *idx, double *zs,
                                          double *log_norm, float *zf,
                                          size_t *cand, double *zc,
                                          float *xs, const float *xx) {
  const size_t n = ix->n, d = ix->d;
  /* the dot kernels round at most this many times per logit (and on x . x,
     computed by the float kernel) */
  const size_t dep = adasm__dot_depth(kern, ix->A.dtype, d),
               dep32 = adasm__dot_depth(kern, ADASM_F32, d);
  const double gd = (double)(dep > dep32 ? dep : dep32) * 5.9604644775390625e-8;
  double xn = 0.0, xn1, lk, m = -HUGE_VAL, s = 0.0, xmax = 0.0, sc;
  size_t t, r0, cnt = 0, nc = 0, ci;
  int screen = gd < 0.5, ex = 0;
  /* A head of a few rows (not bf16) screens x as it is: the passes over x
     that scale it would cost more than the rows. Its ||x|| comes from the
     dot kernel (within gamma, corrected below); x's scale cannot change
     the rows' answer, only which rows the normalizer takes in float. */
  const int small = adasm__ada_small(ix);
  const float *xv = small ? x : xs;
  /* otherwise the float screen sees x 2^-(ex + aexp): its products are the
     same bits however beta A x is split between beta, A and x (powers of
     two) */
  for (t = 0; screen && !small && t < d; ++t)
    xmax = fabs((double)x[t]) > xmax ? fabs((double)x[t]) : xmax;
  if (xmax > 0.0) (void)frexp(xmax, &ex);
  sc = ldexp(1.0, -ex - ix->aexp); /* exact in double: |-ex - aexp| < 300 */
  for (t = 0; screen && !small && t < d; ++t) {
    xs[t] = (float)((double)x[t] * sc);
    /* (below 2^-101 a kernel's pieces or products may underflow) */
    if (xs[t] != 0.0f && fabs((double)xs[t]) < 3.944304526105059e-31) screen = 0;
    xn += (double)xs[t] * (double)xs[t];
  }
  if (small) ex = -ix->aexp; /* the screen's scale is 1 */
  sc = ldexp(beta, ex + ix->aexp); /* beta times the screen's scale */
  for (r0 = 0; screen && r0 < n; r0 += ADASM__ADA_XBLOCK) {
    const size_t len = n - r0 < ADASM__ADA_XBLOCK ? n - r0 : ADASM__ADA_XBLOCK;
    if (ix->A.dtype == ADASM_F32)
      kern->dot_rows((const float *)ix->A.data + r0 * ix->A.ld, len, d,
                     ix->A.ld, xv, 1.0f, zf + r0);
    else
      (ix->A.dtype == ADASM_F16 ? kern->dot_rows_f16 : kern->dot_rows_bf16)(
          (const uint16_t *)ix->A.data + r0 * ix->A.ld, len, d, ix->A.ld, xv,
          1.0f, zf + r0);
    for (t = r0; t < r0 + len; ++t) screen &= adasm__isfinitef(zf[t]);
  }
  if (small && screen) { /* x . x: the query's check computed it (xx), or
                            here, after the rows (x is in cache now) */
    float f;
    if (xx) f = *xx;
    else kern->dot_rows(x, 1, d, d, x, 1.0f, &f);
    xn = (double)f / (1.0 - gd);
    screen &= adasm__isfinitef(f);
  }
  if (!screen) {
    adasm__ada_pass_f64(ix, kern, x, beta, zc, log_norm);
    for (t = 0; t < n; ++t) cand[t] = t;
    nc = n;
  } else {
    adasm__expp ep;
    /* row t's screen error: gamma ||A_t|| ||xs|| + the underflow term
       2^-123 (d + ||xs||_1) (in the screen's units; doubled below for the
       rounding of these sums). x has no nonzero xs_j below 2^-101 (else
       no screen), so vdpbf16ps's 8-bit pieces of xs are never subnormal,
       and never flushed (a small head's unscaled x is never bf16's). */
    xn = sqrt(xn);
    xn1 = ADASM__P2M122 * ((double)d + sqrt((double)d) * xn);
    xn *= (gd / (1.0 - gd)) * (1.0 + 1e-12);
    /* lk: the k-th largest float lower bound (a min-heap in idx / zs);
       (x = 0 leaves no product error, even where ||A_t|| passes FLT_MAX
       and rnorm is inf) */
    for (t = 0; t < n; ++t) {
      const double e = xn > 0.0 ? (double)ix->rnorm[t] * xn : 0.0;
      const double lo = (double)zf[t] - e - xn1;
      if (cnt < k || lo > zs[0]) adasm__ada_offer(idx, zs, &cnt, k, t, lo);
    }
    lk = zs[0];
    /* the candidates: rows that may reach the top k (and every row when
       the underflow term is not negligible in the normalizer: logits
       near 1e29) */
    for (t = 0; t < n; ++t)
      if ((double)zf[t] + (xn > 0.0 ? (double)ix->rnorm[t] * xn : 0.0) + xn1 >= lk ||
          sc * xn1 > 1e-7)
        cand[nc++] = t;
    kern->dot_rows_f64(&ix->A, cand, 0, nc, x, zc);
    /* the normalizer: double logits for the candidates, float for the rest
       (each within the float kernel's accuracy, as the exact path's) */
    /* (the row of the largest float logit is a candidate: every lower
       bound is below it) */
    for (t = 0; t < nc; ++t) m = beta * zc[t] > m ? beta * zc[t] : m;
    for (t = 0, ci = 0; t < n; ++t) {
      const double dz = sc * (double)zf[t] - m;
      if (ci < nc && cand[ci] == t) {
        zf[t] = -100.0f;
        ++ci;
      } else {
        zf[t] = dz > -100.0 ? (float)dz : -100.0f;
      }
    }
    adasm__expp_fold(0, &ep);
    s = kern->expsum(zf, n, &ep, NULL, 1.0f);
    for (t = 0; t < nc; ++t) s += adasm__exp_f64(beta * zc[t] - m);
    *log_norm = m + log(s);
  }
  cnt = 0;
  for (t = 0; t < nc; ++t) {
    const double zt = zc[t] * beta;
    if (cnt < k || adasm__ada_better(zt, cand[t], zs[0], idx[0]))
      adasm__ada_offer(idx, zs, &cnt, k, cand[t], zt);
  }
  adasm__ada_sort_top(idx, zs, k);
}

/* ---- finish: best arms and normalizer ------------------------------------- */


/* The bucket a row with upper bound v would have. */
ADASM__PRIVATE size_t adasm__ada_row_bucket_of(const adasm__ada_q *q, float v) {
  if (q->G < 1e30) {
    const float du = (float)q->G * (v - q->M);
    if (du > -1.0f) return 0;
    return -du < (float)(q->nb - 1) ? (size_t)-du : q->nb - 1;
  }
  return adasm__ada_bucket(q, v);
}

/* A row's bucket, computed exactly as the profile kernel computes it (so
   every row is either in a bucket computed exactly or in the tail sums). */
ADASM__PRIVATE size_t adasm__ada_row_bucket(const adasm__ada_q *q, size_t i) {
  return adasm__ada_row_bucket_of(q, q->ws.ucb[i]);
}

/* The rows of buckets 0 .. nb-2 (the profile's near list) into the list,
   grouped by bucket (a counting sort on the profile's counts); start[b] is
   bucket b's first position, start[nb-1] their total. */
ADASM__PRIVATE void adasm__ada_sort_rows(adasm__ada_q *q, size_t *start) {
  size_t pos[ADASM__ADA_NB], b, i;
  start[0] = 0;
  for (b = 0; b + 1 < q->nb; ++b)
    start[b + 1] = start[b] + (size_t)q->ws.hb[4 * b];
  for (b = 0; b < q->nb; ++b) pos[b] = start[b];
  for (i = 0; i < q->nnear; ++i) q->ws.list[pos[q->ws.nearb[i]]++] = q->ws.near[i];
}

/* The exact logits of list[from, to). */
ADASM__PRIVATE void adasm__ada_exact_rows(adasm__ada_q *q, size_t from,
                                          size_t to) {
  size_t i;
  q->k->dot_rows_f64(&q->ix->A, q->ws.list + from, 0, to - from, q->x,
                     q->ws.zx + from);
  for (i = from; i < to; ++i) q->ws.zx[i] *= (double)q->p->beta;
  q->bytes += (uint64_t)(to - from) *
              ((uint64_t)q->d * adasm__ada_dsize(q->ix->A.dtype));
  q->madds += (uint64_t)(to - from) * (uint64_t)q->d;
}

/* With list[0, nl) exact (buckets 0..b): 1 and *ls = log_norm when the
   normalizer's bounds fit the band. */
ADASM__PRIVATE int adasm__ada_band_fits(const adasm__ada_q *q, size_t nl,
                                        size_t b, double *zmax,
                                        double *ls) {
  const double *h = q->ws.hb, R = adasm__ada_band(q->p);
  double ex = 0.0, th = 0.0, tl = 0.0, c, lo, hi;
  size_t i, t;
  *zmax = -HUGE_VAL;
  for (i = 0; i < nl; ++i) *zmax = q->ws.zx[i] > *zmax ? q->ws.zx[i] : *zmax;
  for (i = 0; i < nl; ++i) ex += adasm__exp_f64(q->ws.zx[i] - *zmax);
  for (t = b + 1; t < q->nb; ++t) {
    th += h[4 * t + 1];
    tl += h[4 * t + 2];
  }
  /* the profile's reference e^(G (base + M)) against e^zmax; its sums
     are within 2e-5 relative (see adasm__ada_profile), and each row
     flushed to 0 had less than e^-86 */
  c = q->G * (q->base + (double)q->M) - *zmax;
  th = th * (1.0 + 4e-5) + (double)q->n * 4.5e-38;
  tl *= 1.0 - 4e-5;
  if (c > 700.0) return 0; /* the tail bound is useless: more rows */
  th *= exp(c);
  tl *= exp(c);
  if (!(ex + th <= R * (ex + tl))) return 0;
  lo = *zmax + log(ex + tl);
  hi = *zmax + log(ex + th);
  /* the middle of [hi - log(1 + eps), lo - log(1 - eps)]: every p within
     a factor 1 +- eps of the truth whatever S is inside [lo, hi] */
  *ls = 0.5 * (hi - log1p(q->p->eps) + lo - log1p(-q->p->eps));
  return 1;
}

/* The best arms and the normalizer: buckets are computed exactly from the
   top, at least down to the k-th largest lower bound's (every top-k
   candidate), until the normalizer fits the band. 0: it never did (the
   exact pass answers). */
ADASM__PRIVATE int adasm__ada_finish(adasm__ada_q *q, adasm_ada_result *out) {
  size_t start[ADASM__ADA_NB], b, i, cnt = 0;
  const size_t bk = adasm__ada_row_bucket_of(q, q->Lk);
  double zmax, ls;
  adasm__ada_sort_rows(q, start);
  for (b = 0; b + 1 < q->nb; ++b) {
    if (start[b + 1] > q->xdone) {
      adasm__ada_exact_rows(q, start[b] > q->xdone ? start[b] : q->xdone,
                            start[b + 1]);
      q->xdone = start[b + 1];
    }
    if (b >= bk && start[b + 1] >= q->p->k &&
        adasm__ada_band_fits(q, start[b + 1], b, &zmax, &ls))
      break;
  }
  if (b + 1 >= q->nb) return 0;
  for (i = 0; i < start[b + 1]; ++i) /* top k: they are all in the list */
    if (cnt < q->p->k ||
        adasm__ada_better(q->ws.zx[i], q->ws.list[i], q->ws.tz[0], q->ws.top[0]))
      adasm__ada_offer(q->ws.top, q->ws.tz, &cnt, q->p->k, q->ws.list[i],
                       q->ws.zx[i]);
  adasm__ada_sort_top(q->ws.top, q->ws.tz, q->p->k);
  for (i = 0; i < q->p->k; ++i) {
    out->idx[i] = q->ws.top[i];
    out->prob[i] = (float)exp(q->ws.tz[i] - ls);
  }
  out->log_norm = ls;
  out->rows_exact = start[b + 1];
  return 1;
}

ADASM__PRIVATE void adasm__ada_fill_nan(const adasm_ada_params *p,
                                        adasm_ada_result *out) {
  size_t i;
  for (i = 0; i < p->k; ++i) {
    out->idx[i] = 0;
    out->prob[i] = adasm__nanf();
  }
  out->log_norm = (double)adasm__nanf();
  out->madds = out->bytes = 0;
  out->rounds = out->cols = out->rows_exact = 0;
  out->exact = 0;
}

/* The answer by the exact pass (result.exact = 1). */
ADASM__PRIVATE void adasm__ada_by_exact(adasm__ada_q *q, adasm_ada_result *out) {
  double *zs = q->ws.tz;
  size_t i;
  if (q->defer_exact) return;
  adasm__ada_exact_pass(q->ix, q->k, q->x, (double)q->p->beta, q->p->k,
                        out->idx, zs, &out->log_norm, q->ws.ucb, q->ws.list,
                        q->ws.zx, (float *)(void *)q->ws.w,
                        q->lazy_x ? NULL : &q->xx);
  /* x unchecked: a NaN or inf in x makes every logit, so the normalizer,
     NaN or inf (A is finite); a finite x leaves it finite */
  if (q->lazy_x && !adasm__isfinite(out->log_norm)) {
    q->bad = adasm__nonfinite(q->x, q->d);
    if (q->bad) return;
  }
  for (i = 0; i < q->p->k; ++i)
    out->prob[i] = (float)exp(zs[i] - out->log_norm);
  q->bytes += (uint64_t)q->n * (uint64_t)q->d * adasm__ada_dsize(q->ix->A.dtype);
  out->madds = q->madds + (uint64_t)q->n * (uint64_t)q->d;
  out->bytes = q->bytes;
  out->rounds = q->rounds;
  out->cols = q->ncert + q->nsamp;
  out->rows_exact = q->n;
  out->exact = 1;
}

/* The query's stages, as docs/ada-engine.md describes them. Returns 1 when
   the sampled answer is in *out (q holds the bounds and the exact rows),
   0 when the exact pass answered. q->ws is laid out; x is finite. */
ADASM__PRIVATE int adasm__ada_run(adasm__ada_q *q, adasm_ada_result *out) {
  const double row = (double)q->d * (double)adasm__ada_dsize(q->ix->A.dtype);
  const double exact = (double)q->n * row;
  int ok;
  /* the first round: d/32 columns, at least 16, at most 128 (all of them
     when that is most of the non-zero ones) */
  double m = (double)q->d / 32.0;
  m = m < 16.0 ? 16.0 : (m > 128.0 ? 128.0 : m);
  /* adaptivity cannot win when its cheapest query (one round, the per-row
     and per-column work, k exact rows) costs half the exact pass */
  if (adasm__ada_hopeless(q->ix, q->p) || !adasm__ada_setup(q) ||
      (m >= 0.5 * (double)q->nnz ? (double)q->nnz : m) * (double)q->n * 2.0 +
              (double)q->n * ADASM__ADA_ARM + (double)q->d * ADASM__ADA_COL +
              (double)q->p->k * row >= 0.5 * exact) {
    adasm__ada_by_exact(q, out);
    return 0;
  }
  if (m >= 0.5 * (double)q->nnz) m = (double)q->nnz;
  for (;;) { /* rounds: sample, bound, eliminate, plan */
    int step;
    double next;
    adasm__ada_round(q, m);
    adasm__ada_bounds(q);
    adasm__ada_profile(q, ADASM__ADA_NB1);
    adasm__ada_choose(q);
    if (q->bstar >= q->nb - 1) { /* the rows it needs go deeper */
      adasm__ada_profile(q, ADASM__ADA_NB);
      adasm__ada_choose(q);
    }
    next = 2.0 * m >= 0.5 * (double)q->nnz ? (double)q->nnz : 2.0 * m;
    step = adasm__ada_plan(q, next);
    if (step == ADASM__ADA_EXACT) {
      adasm__ada_by_exact(q, out);
      return 0;
    }
    if (step == ADASM__ADA_FINISH) break;
    m = next;
  }
  q->xdone = 0;
  ok = adasm__ada_finish(q, out); /* best arms and normalizer */
  if (!ok && q->nb < ADASM__ADA_NB) { /* deeper buckets may fit the band */
    adasm__ada_profile(q, ADASM__ADA_NB);
    ok = adasm__ada_finish(q, out);
  }
  if (!ok) {
    adasm__ada_by_exact(q, out);
    return 0;
  }
  out->madds = q->madds;
  out->bytes = q->bytes;
  out->rounds = q->rounds;
  out->cols = q->ncert + q->nsamp;
  out->exact = 0;
  return 1;
}

/* Checks and workspace of a query; q ready for adasm__ada_run. A data
   error (non-finite x) fills out with NaN. lazy: a small head that goes
   straight to the exact pass leaves x's check to it (the separate read of
   x cost a quarter of such a query), and the caller reports q->bad. */
ADASM__PRIVATE adasm_result adasm__ada_start(adasm__ada_q *q,
                                             const adasm_ada_index *ix,
                                             const adasm_ada_params *params,
                                             const float *x, void *work,
                                             size_t work_bytes, int lazy,
                                             adasm_ada_result *out) {
  size_t need;
  int bad = 0;
  adasm_result r = adasm__ada_check(ix, params);
  if (r != ADASM_OK) return r;
  if (!x || !out || !out->idx || !out->prob) return ADASM_ERR_NULL;
  if (!adasm__ada_layout(ix->n, ix->d, params->k, NULL, &q->ws, &need))
    return ADASM_ERR_OVERFLOW;
  if (!work || work_bytes < need) return ADASM_ERR_WORKSPACE;
  q->lazy_x = lazy && adasm__ada_small(ix) && adasm__ada_hopeless(ix, params);
  q->bad = 0;
  if (!q->lazy_x)
    bad = adasm__ada_nonfinite(adasm__k(params->kern), x, ix->d, &q->xx);
  if (bad) {
    adasm__ada_fill_nan(params, out);
    return bad == 1 ? ADASM_ERR_NAN : ADASM_ERR_PARAM;
  }
  (void)adasm__ada_layout(ix->n, ix->d, params->k, adasm__align_up(work),
                          &q->ws, &need);
  q->ix = ix;
  q->p = params;
  q->k = adasm__k(params->kern);
  q->x = x;
  q->n = ix->n;
  q->d = ix->d;
  q->bytes = q->madds = 0;
  q->rounds = 0;
  q->ncert = q->nsamp = 0;
  q->defer_exact = 0;
  return ADASM_OK;
}

ADASM_DEF adasm_result adasm_ada_query(const adasm_ada_index *ix,
                                       const adasm_ada_params *params,
                                       const float *x, void *work,
                                       size_t work_bytes,
                                       adasm_ada_result *out) {
  adasm__ada_q q;
  const adasm_result r =
      adasm__ada_start(&q, ix, params, x, work, work_bytes, 1, out);
  if (r != ADASM_OK) return r;
  (void)adasm__ada_run(&q, out);
  if (q.bad) {
    adasm__ada_fill_nan(params, out);
    return q.bad == 1 ? ADASM_ERR_NAN : ADASM_ERR_PARAM;
  }
  return ADASM_OK;
}

ADASM_DEF adasm_result adasm_ada_estimate(const adasm_ada_index *ix,
                                          const adasm_ada_params *params,
                                          const float *x, size_t m,
                                          void *work, size_t work_bytes,
                                          double *est, double *var) {
  adasm__ada_q q;
  size_t need, i;
  int bad;
  adasm_result r = adasm__ada_check(ix, params);
  if (r != ADASM_OK) return r;
  if (!x || !est || !var) return ADASM_ERR_NULL;
  if (m == 0 || m > ix->d) return ADASM_ERR_SIZE;
  if (!adasm__ada_layout(ix->n, ix->d, params->k, NULL, &q.ws, &need))
    return ADASM_ERR_OVERFLOW;
  if (!work || work_bytes < need) return ADASM_ERR_WORKSPACE;
  bad = adasm__nonfinite(x, ix->d);
  if (bad) {
    for (i = 0; i < ix->n; ++i) est[i] = var[i] = (double)adasm__nanf();
    return bad == 1 ? ADASM_ERR_NAN : ADASM_ERR_PARAM;
  }
  (void)adasm__ada_layout(ix->n, ix->d, params->k, adasm__align_up(work),
                          &q.ws, &need);
  q.ix = ix;
  q.p = params;
  q.k = adasm__k(params->kern);
  q.x = x;
  q.n = ix->n;
  q.d = ix->d;
  q.bytes = q.madds = 0;
  q.rounds = 0;
  q.ncert = q.nsamp = 0;
  if (!adasm__ada_setup(&q)) { /* no column carries weight: all exact */
    for (i = 0; i < ix->n; ++i) {
      est[i] = q.G * q.base;
      var[i] = 0.0;
    }
    return ADASM_OK;
  }
  adasm__ada_round(&q, (double)m >= (double)q.nnz ? (double)q.nnz : (double)m);
  {
    const double il = q.nsamp > 0 ? 1.0 / q.lam : 0.0;
    for (i = 0; i < ix->n; ++i) {
      est[i] = q.G * (q.base + (double)q.ws.acc.e[i] + (double)q.ws.acc.p[i] * il);
      var[i] = q.G * q.G * (double)q.ws.acc.q[i] * il * il;
    }
  }
  return ADASM_OK;
}

/* ---- sampling ------------------------------------------------------------- */

ADASM_DEF adasm_ada_sample_params adasm_ada_sample_params_default(void) {
  adasm_ada_sample_params p;
  p.chain = adasm_sampler_params_default();
  p.eps = 0.3;
  p.delta = 0.1;
  p.ci_scale = 1.0;
  return p;
}

/* The query the draw runs: top-k of the chain (1 when off), beta = 1/T. */
ADASM__PRIVATE adasm_ada_params adasm__ada_sample_query(
    const adasm_ada_sample_params *sp, size_t n) {
  adasm_ada_params ap = adasm_ada_params_default();
  const adasm_sampler_params *c = &sp->chain;
  const int greedy = !(c->temperature >= ADASM__SAMPLE_GREEDY_T);
  ap.k = c->top_k > 0 && c->top_k < n && !greedy ? c->top_k : 1;
  ap.eps = sp->eps;
  ap.delta = sp->delta;
  ap.ci_scale = sp->ci_scale;
  ap.beta = greedy ? 1.0f : (float)(1.0 / (double)c->temperature);
  if (!adasm__isfinitef(ap.beta)) ap.beta = 1.0f; /* checked as greedy */
  /* the columns' stream: apart from the Gumbels' (seed, stream, draw) */
  ap.seed = c->seed ^ 0xada5a3b1e5eed5ull;
  ap.stream = c->stream + (c->draw << 31);
  ap.kern = c->kern;
  return ap;
}

/* Layout after the query workspace: the answer's k rows and probabilities
   and the workspace of adasm_sample_logits (for the exact pass). */
ADASM__PRIVATE int adasm__ada_sample_layout(const adasm_ada_index *ix,
                                            const adasm_ada_sample_params *sp,
                                            unsigned char *base,
                                            adasm__ada_ws *ws, size_t **idx,
                                            float **prob, void **swork,
                                            size_t *sbytes, size_t *total) {
  const adasm_ada_params ap = adasm__ada_sample_query(sp, ix->n);
  adasm__carver c;
  size_t qb;
  if (!adasm__ada_layout(ix->n, ix->d, ap.k, base, ws, &qb)) return 0;
  if (adasm_sample_logits_workspace_size(ix->n, &sp->chain, sbytes) != ADASM_OK)
    return 0;
  c.base = base;
  c.off = 0;
  c.ok = 1;
  (void)adasm__carve(&c, qb, 1);
  *idx = (size_t *)adasm__carve(&c, ap.k, sizeof(size_t));
  *prob = (float *)adasm__carve(&c, ap.k, sizeof(float));
  *swork = adasm__carve(&c, *sbytes + 1, 1);
  if (!c.ok || c.off > (size_t)-1 - ADASM__ALIGN) return 0;
  *total = c.off + ADASM__ALIGN;
  return 1;
}

ADASM__PRIVATE adasm_result adasm__ada_sample_check(
    const adasm_ada_index *ix, const adasm_ada_sample_params *sp) {
  adasm_ada_params ap;
  adasm_result r;
  if (!ix || !sp) return ADASM_ERR_NULL;
  if (!ix->block) return ADASM_ERR_NULL;
  r = adasm__sample_check(ix->n, &sp->chain);
  if (r != ADASM_OK) return r;
  ap = adasm__ada_sample_query(sp, ix->n);
  return adasm__ada_check(ix, &ap);
}

ADASM_DEF adasm_result adasm_ada_sample_workspace_size(
    const adasm_ada_index *ix, const adasm_ada_sample_params *params,
    size_t *bytes) {
  adasm__ada_ws ws;
  size_t *idx, sb;
  float *prob;
  void *sw;
  const adasm_result r = adasm__ada_sample_check(ix, params);
  if (r != ADASM_OK) return r;
  if (!bytes) return ADASM_ERR_NULL;
  if (!adasm__ada_sample_layout(ix, params, NULL, &ws, &idx, &prob, &sw, &sb,
                                bytes))
    return ADASM_ERR_OVERFLOW;
  return ADASM_OK;
}

/* One row's dot product with x in double. */
ADASM__PRIVATE double adasm__ada_dot(adasm__ada_q *q, size_t row) {
  double z;
  q->k->dot_rows_f64(&q->ix->A, &row, 0, 1, q->x, &z);
  q->madds += q->d;
  q->bytes += (uint64_t)q->d * adasm__ada_dsize(q->ix->A.dtype);
  return z;
}

/* The draw on the query's bounds (see adasm_ada_sample). */
ADASM__PRIVATE void adasm__ada_draw(adasm__ada_q *q,
                                    const adasm_ada_sample_params *sp,
                                    const adasm_ada_result *ar,
                                    adasm_ada_sample_result *out) {
  const adasm_sampler_params *c = &sp->chain;
  const double T = (double)c->temperature;
  const size_t k = q->p->k;
  const int topk = c->top_k > 0 && c->top_k < q->n, minp = c->min_p > 0.0f;
  const double z0 = adasm__ada_dot(q, ar->idx[0]);
  const double thr = minp ? z0 + T * log((double)c->min_p) : -HUGE_VAL;
  adasm__draw g;
  uint64_t st, at = 0;
  size_t t, win = ar->idx[0], i;
  double b, zw = z0, mass = 0.0, widen = 0.0;
  /* a calibrated scale's intervals are not each valid: widen every upper
     bound by the worst excess of an exact logit over its bound seen among
     the rows computed exactly (0 where they all held) */
  for (i = 0; i < ar->rows_exact; ++i) {
    const double over = q->ws.zx[i] -
                        q->G * (q->base + (double)q->ws.ucb[q->ws.list[i]]);
    widen = over > widen ? over : widen;
  }
  adasm__draw_init(&g, c->seed, c->stream, c->draw);
  st = g.s0;
  b = z0 / T + adasm__gumbel_of(adasm__draw_state(&g, 2u * (uint64_t)win), g.inc);
  for (t = 0; t < q->n; ++t) {
    /* the token's upper bound in units of z / T, widened for beta's
       rounding to float */
    double su = q->G * (q->base + (double)q->ws.ucb[t]) + widen, u, zt, key;
    uint32_t hi, lo;
    int in;
    su += 1e-6 * fabs(su) + 1e-9;
    if (su < b - 37.5) continue; /* no Gumbel reaches: G_t <= 37.43 */
    st = 2u * (uint64_t)t - at > 64u
             ? adasm__pcg_jump(st, g.inc, 2u * (uint64_t)t - at)
             : st;
    while (at < 2u * (uint64_t)t) {
      st = st * ADASM__PCG_MULT + g.inc;
      ++at;
    }
    at = 2u * (uint64_t)t;
    hi = adasm__pcg_out(st);
    lo = adasm__pcg_out(st * ADASM__PCG_MULT + g.inc);
    u = ((double)(((uint64_t)hi << 21) | (lo >> 11)) + 0.5) *
        (1.0 / 9007199254740992.0);
    /* beating b needs -log u <= exp(su - b), so 1 - u <= exp(su - b) */
    if (1.0 - u > exp(su - b) * (1.0 + 1e-9)) continue;
    zt = adasm__ada_dot(q, t);
    key = zt / T - log(-log(u));
    in = !minp || zt >= thr;
    for (i = 0; topk && in && i < k; ++i)
      if (ar->idx[i] == t) break;
    if (topk && i == k) in = 0;
    if (in && (key > b || (key == b && t < win))) {
      b = key;
      win = t;
      zw = zt;
    }
  }
  out->token = win;
  out->log_norm = ar->log_norm;
  if (topk) { /* K: the top k, above the min-p threshold */
    out->kept = 0;
    for (i = 0; i < k; ++i) {
      const double zi = adasm__ada_dot(q, ar->idx[i]);
      if (zi >= thr) {
        mass += exp((zi - z0) / T);
        ++out->kept;
      }
    }
  } else if (minp) { /* K: every row whose upper bound reaches thr */
    out->kept = 0;
    for (t = 0; t < q->n; ++t) {
      double su = (q->G * (q->base + (double)q->ws.ucb[t]) + widen) * T, zi;
      su += 1e-6 * fabs(su) + 1e-9;
      if (su < thr) continue;
      zi = adasm__ada_dot(q, t);
      if (zi >= thr) {
        mass += exp((zi - z0) / T);
        ++out->kept;
      }
    }
  }
  out->p = topk || minp ? (float)(exp((zw - z0) / T) / mass)
                        : (float)exp(zw / T - ar->log_norm);
  if (!topk && !minp) out->kept = q->n;
}

/* adasm_ada_sample; with defer_exact, a draw that would take the exact
   pass returns at once with out->exact = 1 (calibration counts it as the
   exact sampler's draw, which it would be, without paying for the pass). */
ADASM__PRIVATE adasm_result adasm__ada_sample_do(
    const adasm_ada_index *ix, const adasm_ada_sample_params *params,
    const float *x, void *work, size_t work_bytes, int defer_exact,
    adasm_ada_sample_result *out) {
  adasm__ada_q q;
  adasm_ada_params ap;
  adasm_ada_result ar;
  adasm__ada_ws ws;
  size_t need, *idx, sbytes;
  float *prob;
  void *swork;
  adasm_result r = adasm__ada_sample_check(ix, params);
  const adasm_sampler_params *c;
  if (r != ADASM_OK) return r;
  if (!x || !out) return ADASM_ERR_NULL;
  if (!adasm__ada_sample_layout(ix, params, NULL, &ws, &idx, &prob, &swork,
                                &sbytes, &need))
    return ADASM_ERR_OVERFLOW;
  if (!work || work_bytes < need) return ADASM_ERR_WORKSPACE;
  (void)adasm__ada_sample_layout(ix, params, adasm__align_up(work), &ws, &idx,
                                 &prob, &swork, &sbytes, &need);
  c = &params->chain;
  ap = adasm__ada_sample_query(params, ix->n);
  memset(&ar, 0, sizeof ar);
  ar.idx = idx;
  ar.prob = prob;
  r = adasm__ada_start(&q, ix, &ap, x, work, work_bytes, 0, &ar);
  if (r != ADASM_OK) { /* the only errors left are x's */
    out->token = 0;
    out->p = adasm__nanf();
    out->log_norm = (double)adasm__nanf();
    out->kept = 0;
    out->madds = out->bytes = 0;
    out->exact = 0;
    return r;
  }
  q.defer_exact = 1;
  if (!adasm__sample_adj(c) && !(c->top_p > 0.0f && c->top_p < 1.0f) &&
      adasm__ada_run(&q, &ar)) {
    out->exact = 0;
    if (!(c->temperature >= ADASM__SAMPLE_GREEDY_T)) { /* greedy */
      out->token = ar.idx[0];
      out->p = 1.0f;
      out->log_norm = ar.log_norm;
      out->kept = 1;
    } else {
      adasm__ada_draw(&q, params, &ar, out);
    }
    out->madds = q.madds;
    out->bytes = q.bytes;
    return ADASM_OK;
  }
  if (defer_exact) {
    out->exact = 1;
    out->madds = q.madds;
    out->bytes = q.bytes;
    return ADASM_OK;
  }
  { /* one exact pass: the float logits adasm_exact_sample computes, then
       the chain on them (the same draw, bit for bit) */
    adasm_sampler_result sr;
    size_t r0;
    for (r0 = 0; r0 < q.n; r0 += ADASM__GEMV_ROWS) {
      const size_t len = q.n - r0 < ADASM__GEMV_ROWS ? q.n - r0 : ADASM__GEMV_ROWS;
      adasm__matrix_rows(q.k, &ix->A, r0, len, x, 1.0f, q.ws.ucb + r0);
    }
    r = adasm_sample_logits(q.ws.ucb, q.n, c, swork, sbytes, &sr);
    out->token = sr.token;
    out->p = sr.p;
    out->log_norm = sr.log_norm;
    out->kept = sr.kept;
    out->madds = q.madds + (uint64_t)q.n * (uint64_t)q.d;
    out->bytes = q.bytes + (uint64_t)q.n * (uint64_t)q.d * adasm__ada_dsize(ix->A.dtype);
    out->exact = 1;
    return r;
  }
}

ADASM_DEF adasm_result adasm_ada_sample(const adasm_ada_index *ix,
                                        const adasm_ada_sample_params *params,
                                        const float *x, void *work,
                                        size_t work_bytes,
                                        adasm_ada_sample_result *out) {
  return adasm__ada_sample_do(ix, params, x, work, work_bytes, 0, out);
}

/* ---- calibration: Learn-then-Test, fixed sequence ------------------------- */

/* log P(Binomial(q, delta) <= f), summed in log space. */
ADASM__PRIVATE double adasm__ada_binom_lcdf(size_t q, double delta, size_t f) {
  double lpmf = (double)q * log1p(-delta), lcdf = lpmf;
  size_t c;
  for (c = 0; c < f && c < q; ++c) {
    lpmf += log((double)(q - c) / (double)(c + 1)) + log(delta) - log1p(-delta);
    lcdf = lcdf > lpmf ? lcdf + log1p(exp(lpmf - lcdf))
                       : lpmf + log1p(exp(lcdf - lpmf));
  }
  return lcdf;
}

/* Failures of scale f on the calibration queries (counting may stop past
   `stop`); *bytes: the mean bytes a query read. */
typedef size_t (*adasm__ada_cal_fn)(void *ctx, double f, size_t stop,
                                    double *bytes);

/* Fixed-sequence testing over the scales 1, 10^-0.05, ..., 10^-3 on q
   queries (adasm_ada_calibrate's doc): the cheapest scale of those that
   passed before the first that failed. */
ADASM__PRIVATE void adasm__ada_ltt(size_t q, double delta, double alpha,
                                   adasm__ada_cal_fn fails_at, void *ctx,
                                   adasm_ada_calibration *out) {
  const double la = log(alpha);
  size_t limit, s;
  out->ci_scale = 1.0;
  out->certified = 0;
  out->failures = 0;
  out->steps = 0;
  out->bytes = 0.0;
  /* a scale passes with at most `limit` - 1 failures */
  for (limit = 0; limit <= q; ++limit)
    if (adasm__ada_binom_lcdf(q, delta, limit) > la) break;
  if (limit == 0) return; /* even no failure proves nothing */
  /* every scale before the first that fails the test is certified at once
     (family-wise, level alpha), so the cheapest of them may be picked
     after the fact */
  for (s = 0; s < ADASM__ADA_CAL_STEPS; ++s) {
    const double f = pow(10.0, -0.05 * (double)s);
    double bytes;
    const size_t fails = fails_at(ctx, f, limit - 1, &bytes);
    out->steps = s + 1;
    if (fails >= limit) break;
    if (!out->certified || bytes < out->bytes) {
      out->ci_scale = f;
      out->failures = fails;
      out->bytes = bytes;
    }
    out->certified = 1;
  }
}

/* The calibration functions' checks of X, q, ldx and alpha, then of the
   queries' values. */
ADASM__PRIVATE adasm_result adasm__ada_cal_args(const adasm_ada_index *ix,
                                                const float *X, size_t q,
                                                size_t ldx, double alpha,
                                                const void *out) {
  size_t span;
  if (!X || !out) return ADASM_ERR_NULL;
  if (q == 0 || ldx < ix->d) return ADASM_ERR_SIZE;
  if (!(alpha > 0.0 && alpha < 1.0)) return ADASM_ERR_PARAM;
  if (adasm__mul_overflows(q - 1, ldx, &span) || span > (size_t)-1 - ix->d)
    return ADASM_ERR_OVERFLOW;
  return ADASM_OK;
}
ADASM__PRIVATE adasm_result adasm__ada_cal_data(const adasm_ada_index *ix,
                                                const float *X, size_t q,
                                                size_t ldx) {
  size_t t;
  for (t = 0; t < q; ++t) {
    const int bad = adasm__nonfinite(X + t * ldx, ix->d);
    if (bad) return bad == 1 ? ADASM_ERR_NAN : ADASM_ERR_PARAM;
  }
  return ADASM_OK;
}

typedef struct adasm__ada_cal {
  adasm__ada_ws qws;  /* the query workspace comes first */
  size_t qbytes;
  size_t *tidx;       /* [q k] exact top-k of every calibration query */
  double *tp;         /* [q k] their probabilities */
  size_t *oidx;       /* [k] a query's answer */
  float *op;          /* [k] */
  double *zs;         /* [k] */
} adasm__ada_cal;

ADASM__PRIVATE int adasm__ada_cal_layout(const adasm_ada_index *ix, size_t k,
                                         size_t q, unsigned char *base,
                                         adasm__ada_cal *c, size_t *total) {
  adasm__carver cv;
  size_t qk;
  if (!adasm__ada_layout(ix->n, ix->d, k, base, &c->qws, &c->qbytes)) return 0;
  if (adasm__mul_overflows(q, k, &qk)) return 0;
  cv.base = base;
  cv.off = 0;
  cv.ok = 1;
  (void)adasm__carve(&cv, c->qbytes, 1);
  c->tidx = (size_t *)adasm__carve(&cv, qk, sizeof(size_t));
  c->tp = (double *)adasm__carve(&cv, qk, sizeof(double));
  c->oidx = (size_t *)adasm__carve(&cv, k, sizeof(size_t));
  c->op = (float *)adasm__carve(&cv, k, sizeof(float));
  c->zs = (double *)adasm__carve(&cv, k, sizeof(double));
  if (!cv.ok || cv.off > (size_t)-1 - ADASM__ALIGN) return 0;
  *total = cv.off + ADASM__ALIGN;
  return 1;
}

ADASM_DEF adasm_result adasm_ada_calibrate_workspace_size(
    const adasm_ada_index *ix, const adasm_ada_params *params, size_t q,
    size_t *bytes) {
  adasm__ada_cal c;
  adasm_result r = adasm__ada_check(ix, params);
  if (r != ADASM_OK) return r;
  if (!bytes) return ADASM_ERR_NULL;
  if (q == 0) return ADASM_ERR_SIZE;
  if (!adasm__ada_cal_layout(ix, params->k, q, NULL, &c, bytes))
    return ADASM_ERR_OVERFLOW;
  return ADASM_OK;
}

/* Failures of ci_scale f on the q queries (stops counting past `stop`);
   *bytes: the bytes the queries read. */
ADASM__PRIVATE size_t adasm__ada_cal_failures(
    const adasm_ada_index *ix, const adasm_ada_params *base, const float *X,
    size_t q, size_t ldx, unsigned char *w, const adasm__ada_cal *c,
    double f, size_t stop, double *bytes) {
  adasm_ada_params p = *base;
  adasm_ada_result res;
  size_t t, s, u, fails = 0;
  p.ci_scale = f;
  res.idx = c->oidx;
  res.prob = c->op;
  *bytes = 0.0;
  for (t = 0; t < q && fails <= stop; ++t) {
    adasm__ada_q qq;
    int ok = 1;
    p.stream = base->stream + (uint64_t)t;
    if (adasm__ada_start(&qq, ix, &p, X + t * ldx, w, c->qbytes, 0, &res) !=
        ADASM_OK) {
      ++fails;
      continue;
    }
    /* a query that would end in the exact pass returns the exact answer
       (the truth above, to float rounding): a success, counted without
       making the pass, which is most of the cost of the safest scales */
    qq.defer_exact = 1;
    if (!adasm__ada_run(&qq, &res)) {
      *bytes += (double)qq.bytes + (double)ix->n * (double)ix->d *
                                       (double)adasm__ada_dsize(ix->A.dtype);
      continue;
    }
    *bytes += (double)res.bytes;
    /* the same set (order among equal logits aside) and every p in band */
    for (s = 0; s < p.k && ok; ++s) {
      const size_t i = res.idx[s];
      int found = 0;
      for (u = 0; u < p.k; ++u)
        if (c->tidx[t * p.k + u] == i) {
          const double pt = c->tp[t * p.k + u];
          found = 1;
          /* p below the float range counts as right when prob is too */
          if (!(fabs((double)res.prob[s] - pt) <= p.eps * pt) &&
              !(pt < 1.1754943508222875e-38 && (double)res.prob[s] <= 1.2e-38))
            ok = 0;
        }
      if (!found) ok = 0;
    }
    fails += !ok;
  }
  return fails;
}

typedef struct adasm__ada_cal_run {
  const adasm_ada_index *ix;
  const adasm_ada_params *p;
  const float *X;
  size_t q, ldx;
  unsigned char *w;
  const adasm__ada_cal *c;
} adasm__ada_cal_run;

ADASM__PRIVATE size_t adasm__ada_cal_at(void *ctx, double f, size_t stop,
                                        double *bytes) {
  const adasm__ada_cal_run *r = (const adasm__ada_cal_run *)ctx;
  const size_t fails = adasm__ada_cal_failures(r->ix, r->p, r->X, r->q, r->ldx,
                                               r->w, r->c, f, stop, bytes);
  *bytes /= (double)r->q;
  return fails;
}

ADASM_DEF adasm_result adasm_ada_calibrate(const adasm_ada_index *ix,
                                           const adasm_ada_params *params,
                                           const float *X, size_t q,
                                           size_t ldx, double alpha,
                                           void *work, size_t work_bytes,
                                           adasm_ada_calibration *out) {
  adasm__ada_cal c;
  unsigned char *w;
  const adasm_kernels *kern;
  size_t need, t, s;
  adasm_result r = adasm__ada_check(ix, params);
  if (r != ADASM_OK) return r;
  r = adasm__ada_cal_args(ix, X, q, ldx, alpha, out);
  if (r != ADASM_OK) return r;
  if (!adasm__ada_cal_layout(ix, params->k, q, NULL, &c, &need))
    return ADASM_ERR_OVERFLOW;
  if (!work || work_bytes < need) return ADASM_ERR_WORKSPACE;
  r = adasm__ada_cal_data(ix, X, q, ldx);
  if (r != ADASM_OK) return r;
  w = adasm__align_up(work);
  (void)adasm__ada_cal_layout(ix, params->k, q, w, &c, &need);
  kern = adasm__k(params->kern);
  /* the truth, once per query: double-precision exact answers */
  for (t = 0; t < q; ++t) {
    double ln;
    adasm__ada_exact_pass(ix, kern, X + t * ldx, (double)params->beta,
                          params->k, c.tidx + t * params->k, c.zs, &ln,
                          c.qws.ucb, c.qws.list, c.qws.zx,
                          (float *)(void *)c.qws.w, NULL);
    for (s = 0; s < params->k; ++s)
      c.tp[t * params->k + s] = exp(c.zs[s] - ln);
  }
  {
    adasm__ada_cal_run run;
    run.ix = ix;
    run.p = params;
    run.X = X;
    run.q = q;
    run.ldx = ldx;
    run.w = w;
    run.c = &c;
    adasm__ada_ltt(q, params->delta, alpha, adasm__ada_cal_at, &run, out);
  }
  return ADASM_OK;
}

/* ---- calibration of the sampler ------------------------------------------- */

typedef struct adasm__ada_scal {
  const adasm_ada_index *ix;
  const adasm_ada_sample_params *sp;
  const float *X;
  size_t q, ldx;
  void *aw;          /* adasm_ada_sample's workspace */
  size_t ab;
  size_t *tok;       /* [q] the exact sampler's draws */
  float *tp;         /* [q] their p */
} adasm__ada_scal;

/* Draws of scale f that are not the exact sampler's (or whose p is off by
   more than eps). */
ADASM__PRIVATE size_t adasm__ada_scal_at(void *ctx, double f, size_t stop,
                                         double *bytes) {
  const adasm__ada_scal *c = (const adasm__ada_scal *)ctx;
  const double full = (double)c->ix->n * (double)c->ix->d *
                      (double)adasm__ada_dsize(c->ix->A.dtype);
  adasm_ada_sample_params p = *c->sp;
  adasm_ada_sample_result o;
  size_t t, fails = 0;
  double b = 0.0;
  p.ci_scale = f;
  for (t = 0; t < c->q && fails <= stop; ++t) {
    p.chain.stream = c->sp->chain.stream + (uint64_t)t;
    if (adasm__ada_sample_do(c->ix, &p, c->X + t * c->ldx, c->aw, c->ab, 1, &o) !=
        ADASM_OK) {
      ++fails;
      continue;
    }
    b += (double)o.bytes + (o.exact ? full : 0.0);
    if (o.exact) continue; /* the exact pass draws the exact sampler's token */
    fails += !(o.token == c->tok[t] &&
               fabs((double)o.p - (double)c->tp[t]) <= p.eps * (double)c->tp[t]);
  }
  *bytes = b / (double)c->q;
  return fails;
}

/* [adasm_ada_sample's workspace][adasm_exact_sample's][q tokens][q p]. */
ADASM__PRIVATE int adasm__ada_scal_layout(const adasm_ada_index *ix,
                                          const adasm_ada_sample_params *sp,
                                          size_t q, unsigned char *base,
                                          adasm__ada_scal *c, void **ew,
                                          size_t *eb, size_t *total) {
  adasm__carver cv;
  if (adasm_ada_sample_workspace_size(ix, sp, &c->ab) != ADASM_OK ||
      adasm_exact_sample_workspace_size(&ix->A, &sp->chain, eb) != ADASM_OK)
    return 0;
  cv.base = base;
  cv.off = 0;
  cv.ok = 1;
  c->aw = adasm__carve(&cv, c->ab, 1);
  *ew = adasm__carve(&cv, *eb + 1, 1);
  c->tok = (size_t *)adasm__carve(&cv, q, sizeof(size_t));
  c->tp = (float *)adasm__carve(&cv, q, sizeof(float));
  if (!cv.ok || cv.off > (size_t)-1 - ADASM__ALIGN) return 0;
  *total = cv.off + ADASM__ALIGN;
  return 1;
}

ADASM_DEF adasm_result adasm_ada_sample_calibrate_workspace_size(
    const adasm_ada_index *ix, const adasm_ada_sample_params *params,
    size_t q, size_t *bytes) {
  adasm__ada_scal c;
  void *ew;
  size_t eb;
  const adasm_result r = adasm__ada_sample_check(ix, params);
  if (r != ADASM_OK) return r;
  if (!bytes) return ADASM_ERR_NULL;
  if (q == 0) return ADASM_ERR_SIZE;
  if (!adasm__ada_scal_layout(ix, params, q, NULL, &c, &ew, &eb, bytes))
    return ADASM_ERR_OVERFLOW;
  return ADASM_OK;
}

ADASM_DEF adasm_result adasm_ada_sample_calibrate(
    const adasm_ada_index *ix, const adasm_ada_sample_params *params,
    const float *X, size_t q, size_t ldx, double alpha, void *work,
    size_t work_bytes, adasm_ada_calibration *out) {
  adasm__ada_scal c;
  adasm_sampler_params ep;
  adasm_sampler_result er;
  void *ew;
  size_t eb, need, t;
  adasm_result r = adasm__ada_sample_check(ix, params);
  if (r != ADASM_OK) return r;
  r = adasm__ada_cal_args(ix, X, q, ldx, alpha, out);
  if (r != ADASM_OK) return r;
  if (!adasm__ada_scal_layout(ix, params, q, NULL, &c, &ew, &eb, &need))
    return ADASM_ERR_OVERFLOW;
  if (!work || work_bytes < need) return ADASM_ERR_WORKSPACE;
  r = adasm__ada_cal_data(ix, X, q, ldx);
  if (r != ADASM_OK) return r;
  (void)adasm__ada_scal_layout(ix, params, q, adasm__align_up(work), &c, &ew,
                               &eb, &need);
  /* the truth: the exact sampler's draw of every calibration query */
  ep = params->chain;
  for (t = 0; t < q; ++t) {
    ep.stream = params->chain.stream + (uint64_t)t;
    r = adasm_exact_sample(&ix->A, &ep, X + t * ldx, ew, eb + 1, &er);
    if (r != ADASM_OK) return r;
    c.tok[t] = er.token;
    c.tp[t] = er.p;
  }
  c.ix = ix;
  c.sp = params;
  c.X = X;
  c.q = q;
  c.ldx = ldx;
  adasm__ada_ltt(q, params->delta, alpha, adasm__ada_scal_at, &c, out);
  return ADASM_OK;
}

#ifndef ADASM_NO_HS
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

/* Pass 1: validates the whole buffer, allocates nothing. Long: fastText's
   fields in the order the file holds them, one check each, so the format
   reads top to bottom in one place. */
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


#endif /* ADASM_NO_HS */

#ifndef ADASM_NO_SVD
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
   - The kernels (tiles, symmetric matrix-vector product, rotations,
     previews: adasm__svd_kset) sit with every other kernel of their ISA
     (>>k_scalar, >>k_avx2, >>k_avx512; NEON has none and uses the scalar
     ones) and are called as k->svd.<kernel> of the kernel table.
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

/* ---- double GEMM on packed panels ---------------------------------------- */
/* An operand: element (i, k) = scale * p[i*rs + k*cs], p double or float. */
typedef struct adasm__svd_op {
  const double *pd;   /* double source, or NULL */
  const float *pf;    /* float source when pd is NULL, or NULL */
  const uint16_t *ph; /* else 16-bit source, of dtype ht */
  size_t rs, cs;
  double scale;
  adasm_dtype ht;
} adasm__svd_op;

/* A 16-bit entry widened (exactly) to double. */
ADASM__PRIVATE double adasm__svd_f16(uint16_t h) {
  return (double)adasm_f16_to_f32(h);
}
ADASM__PRIVATE double adasm__svd_bf16(uint16_t h) {
  return (double)adasm_bf16_to_f32(h);
}

ADASM__PRIVATE adasm__svd_op adasm__svd_opd(const double *p, size_t rs,
                                            size_t cs, double scale) {
  adasm__svd_op o;
  o.pd = p; o.pf = NULL; o.ph = NULL; o.rs = rs; o.cs = cs; o.scale = scale;
  o.ht = ADASM_F32;
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
    } else if (o->pf) {
      ADASM__SVD_PACK(o->pf, (double))
    } else if (o->ht == ADASM_F16) {
      ADASM__SVD_PACK(o->ph, adasm__svd_f16)
    } else {
      ADASM__SVD_PACK(o->ph, adasm__svd_bf16)
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
ADASM__PRIVATE void adasm__svd_dgemm(const adasm_kernels *k, size_t M,
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
            k->svd.dtile(ap, bp, kc, ct, rs);
          } else {
            double buf[8 * 16];
            memset(buf, 0, sizeof buf);
            k->svd.dtile(ap, bp, kc, buf, 16);
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
   Blocked as LAPACK's dsytrd/dlatrd, on rows instead of columns. Long:
   kept whole so it reads against dlatrd's panel step by step. */
ADASM__PRIVATE void adasm__svd_tridiag(const adasm_kernels *k, size_t d,
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
        k->svd.symv(s + (j + 1) * d + (j + 1), d - j - 1, d, v + j + 1, wv + j + 1);
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
        adasm__svd_dgemm(k, L, L, 2 * nbc, &oa, &ob, s + r0 * d + r0, d, 0, 1,
                         w->apack, w->bpack);
    }
  }
  for (j = R; j < d; ++j) w->dg[j] = s[j * d + j];
  if (d >= 2) w->e[d - 2] = s[(d - 2) * d + d - 1];
  w->e[d - 1] = 0.0;
}

/* Q = H_0 H_1 ... H_{R-1}, accumulated backwards in blocks of QB:
   Q[jb+1:, jb+1:] = (I - V T V^T) Q[jb+1:, jb+1:] (compact WY, dlarft). */
ADASM__PRIVATE void adasm__svd_formq(const adasm_kernels *k, size_t d,
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
    adasm__svd_dgemm(k, nbb, m, m, &oa, &ob, y, dpad, 0, 0, w->apack, w->bpack);
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
    adasm__svd_dgemm(k, m, m, nbb, &oa, &ob, qs, d, 0, 0, w->apack, w->bpack);
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
ADASM__PRIVATE void adasm__svd_flush(const adasm_kernels *k, size_t d,
                                     size_t nch, adasm__svd_tmp *w,
                                     size_t nsw) {
  size_t c, q;
  for (c = 0; c < nch; ++c) {
    double *rows = w->s + c * d * 16;
    const double *p = w->cs;
    for (q = 0; q < nsw; ++q) {
      k->svd.rot(rows, w->swtop[q], w->swcnt[q], p);
      p += 2 * w->swcnt[q];
    }
  }
}

/* Implicit QL with Wilkinson shifts on (dg, e) (tql2 / Numerical Recipes'
   tqli); the rotations go to Q^T in chunks (w->s) in batches. An eigenvalue
   that has not converged after ITMAX sweeps is deflated as it is: V stays
   orthogonal, so only the preview's quality could suffer (never seen). */
ADASM__PRIVATE void adasm__svd_ql(const adasm_kernels *k, size_t d,
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
        adasm__svd_flush(k, d, nch, w, nsw);
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
  if (nsw) adasm__svd_flush(k, d, nch, w, nsw);
}

/* B (panels) = A V, V = vt^T: float tiles of 12 rows x 2 panels over depth
   blocks of FKC; B must be zero on entry. */
ADASM__PRIVATE void adasm__svd_bav(const adasm_kernels *k, const void *A,
                                   adasm_dtype dt, size_t n, size_t d,
                                   size_t lda, const float *vt, size_t dp,
                                   float *B, adasm__svd_tmp *w) {
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
            const size_t at = (i0 + s * 12 + t) * lda + k0;
            if (dt == ADASM_F32) {
              const float *src = (const float *)A + at;
              for (r = 0; r < kc; ++r) dst[r * 12] = src[r];
            } else { /* widened exactly, as the Gram matrix saw it */
              const uint16_t *src = (const uint16_t *)A + at;
              if (dt == ADASM_F16)
                for (r = 0; r < kc; ++r) dst[r * 12] = adasm_f16_to_f32(src[r]);
              else
                for (r = 0; r < kc; ++r) dst[r * 12] = adasm_bf16_to_f32(src[r]);
            }
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
            k->svd.ftile(w->fap + s * kc * 12, b0, b1, kc, c0, c1);
          } else {
            float buf[2 * 12 * 16];
            memset(buf, 0, sizeof buf);
            k->svd.ftile(w->fap + s * kc * 12, b0, b1, kc, buf, b1 ? buf + 192 : NULL);
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
  adasm__carver c;
  size_t dd, sd, rcap;
#define ADASM__SVD_TAKE(field, type, count)                                    \
  w->field = (type *)adasm__carve(&c, (count), sizeof(type))
  c.base = base;
  c.off = 0;
  c.ok = 1;
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
  if (!c.ok) return 0;
  w->rcap = rcap;
  w->scap = rcap / 4 + 1;
  *total = c.off;
  return 1;
}

/* ---- public -------------------------------------------------------------- */
/* 1 if entry j of row i is NaN (*inf set if it is +-inf). */
ADASM__PRIVATE int adasm__svd_nan(const adasm_matrix *A, size_t at, int *inf) {
  if (A->dtype == ADASM_F32) {
    const float v = ((const float *)A->data)[at];
    *inf |= !adasm__isnanf(v) && !adasm__isfinitef(v);
    return adasm__isnanf(v);
  } else {
    const uint16_t h = ((const uint16_t *)A->data)[at];
    const uint16_t e = A->dtype == ADASM_F16 ? 0x7c00u : 0x7f80u;
    if ((h & e) != e) return 0;
    *inf |= (h & 0x7fffu) == e;
    return (h & 0x7fffu) != e;
  }
}

ADASM_DEF adasm_result adasm_svd_build(adasm_svd_model *m,
                                       const adasm_kernels *k, const float *A,
                                       size_t n, size_t d, size_t lda,
                                       void *alloc_ctx) {
  adasm_matrix am;
  if (!m || !A) return ADASM_ERR_NULL;
  am = adasm_matrix_f32(A, n, d, lda);
  return adasm_svd_build_matrix(m, &am, k, alloc_ctx);
}

/* The build in its stages (the numbered comments: Gram matrix, Householder
   tridiagonalisation, QL, B = A V), each a function; long because it lays
   out the one workspace they share and times each stage. */
ADASM_DEF adasm_result adasm_svd_build_matrix(adasm_svd_model *m,
                                              const adasm_matrix *A,
                                              const adasm_kernels *k,
                                              void *alloc_ctx) {
  adasm_svd_model r;
  adasm__svd_tmp w;
  size_t dp, dpad, extent, nb, nv, at_b, at_v, at_s, tbytes, i, j, c;
  size_t n, d, lda;
  adasm__carver cv;
  unsigned char *block, *base, *tblock, *tbase;
  int has_inf = 0;
  if (!m || !A || !A->data) return ADASM_ERR_NULL;
  if (A->dtype != ADASM_F32 && A->dtype != ADASM_F16 && A->dtype != ADASM_BF16)
    return ADASM_ERR_PARAM;
  n = A->rows;
  d = A->cols;
  lda = A->ld;
  if (n == 0 || d == 0 || lda < d) return ADASM_ERR_SIZE;
  /* A spans (n-1) lda + d floats; the model n dpad + d^2 floats + d doubles */
  if (d > (size_t)-1 - 15 || adasm__mul_overflows(n - 1, lda, &extent) ||
      extent > (size_t)-1 - d)
    return ADASM_ERR_OVERFLOW;
  dp = (d + 15) / 16;
  dpad = dp * 16;
  cv.base = NULL;
  cv.off = 0;
  cv.ok = 1;
  if (adasm__mul_overflows(n, dpad, &nb) || adasm__mul_overflows(d, d, &nv))
    return ADASM_ERR_OVERFLOW;
  at_b = cv.off;
  (void)adasm__carve(&cv, nb, sizeof(float));
  at_v = cv.off;
  (void)adasm__carve(&cv, nv, sizeof(float));
  at_s = cv.off;
  (void)adasm__carve(&cv, d, sizeof(double));
  if (!cv.ok || cv.off > (size_t)-1 - 64 ||
      !adasm__svd_tmp_layout(d, dpad, NULL, &w, &tbytes) ||
      tbytes > (size_t)-1 - 64)
    return ADASM_ERR_OVERFLOW;
  for (i = 0; i < n; ++i) /* refuse non-finite entries before allocating */
    for (j = 0; j < d; ++j)
      if (adasm__svd_nan(A, i * lda + j, &has_inf)) return ADASM_ERR_NAN;
  if (has_inf) return ADASM_ERR_PARAM;
  block = (unsigned char *)ADASM_MALLOC(cv.off + 64, alloc_ctx);
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
  k = adasm__k(k);

  /* 1. G = A^T A (upper triangle, double): in panels in q, then copied by
     rows to s */
  {
    adasm__svd_op oa = adasm__svd_opd(NULL, 1, lda, 1.0);
    if (A->dtype == ADASM_F32) oa.pf = (const float *)A->data;
    else oa.ph = (const uint16_t *)A->data; /* widened as packed */
    oa.ht = A->dtype;
    memset(w.q, 0, dpad * d * sizeof(double));
    adasm__svd_dgemm(k, d, d, n, &oa, &oa, w.q, d, 1, 1, w.apack, w.bpack);
    for (i = 0; i < d; ++i)
      for (j = i; j < d; ++j) w.s[i * d + j] = w.q[((j / 16) * d + i) * 16 + j % 16];
  }
  ADASM_SVD_PROF(0);
  /* 2. T = Q^T G Q, 3. Q, 4. T = Z diag Z^T with Z applied to Q^T */
  adasm__svd_tridiag(k, d, dpad, &w);
  ADASM_SVD_PROF(1);
  adasm__svd_formq(k, d, dpad, &w);
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
  adasm__svd_ql(k, d, dp, &w);
  ADASM_SVD_PROF(3);
  /* 5. descending order; V^T rows and singular values */
  for (j = 0; j < d; ++j) w.perm[j] = j;
  adasm__sort_desc(w.perm, d, w.dg);
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
  adasm__svd_bav(k, A->data, A->dtype, n, d, lda, r.vt, dp, r.B, &w);
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
  adasm__carver c;
#define ADASM__SVD_TAKE(field, type, count)                                    \
  w->field = (type *)adasm__carve(&c, (count), sizeof(type))
  c.base = base;
  c.off = 0;
  c.ok = 1;
  ADASM__SVD_TAKE(xpre, float, m->panels * 16);
  ADASM__SVD_TAKE(xrest, float, m->panels * 16);
  ADASM__SVD_TAKE(z, float, m->n);
  ADASM__SVD_TAKE(keys, uint32_t, m->n);
  ADASM__SVD_TAKE(cand, size_t, m->n);
  ADASM__SVD_TAKE(sidx, size_t, top);
#undef ADASM__SVD_TAKE
  if (!c.ok || c.off > (size_t)-1 - 64) return 0;
  *total = c.off;
  return 1;
}

ADASM_DEF adasm_svd_params adasm_svd_params_default(void) {
  adasm_svd_params p;
  p.k = 1;
  p.window = 0;
  p.top = 0;
  p.beta = 1.0f;
  p.kern = NULL;
  return p;
}

/* The argument checks of a query; *W and *N are the window and top with
   their defaults resolved. */
ADASM__PRIVATE adasm_result adasm__svd_check(const adasm_svd_model *m,
                                             const adasm_svd_params *p,
                                             size_t *W, size_t *N) {
  if (!m || !p || !m->B || !m->vt || !m->block) return ADASM_ERR_NULL;
  *W = p->window ? p->window : m->d / 8 > 16 ? m->d / 8 : 16;
  *N = p->top ? p->top : p->k > 512 ? p->k : 512;
  if (!p->window && *W > m->d) *W = m->d;
  if (!p->top && *N > m->n) *N = m->n;
  if (*W > m->d || *N > m->n || p->k == 0 || p->k > *N) return ADASM_ERR_SIZE;
  if (!adasm__isfinitef(p->beta) || !(p->beta > 0.0f)) return ADASM_ERR_PARAM;
  return ADASM_OK;
}

ADASM_DEF adasm_result adasm_svd_workspace_size(const adasm_svd_model *m,
                                                const adasm_svd_params *params,
                                                size_t *bytes) {
  adasm__svd_ws w;
  size_t window, top, total;
  adasm_result r = adasm__svd_check(m, params, &window, &top);
  if (r != ADASM_OK) return r;
  if (!bytes) return ADASM_ERR_NULL;
  if (!adasm__svd_ws_layout(m, top, NULL, &w, &total)) return ADASM_ERR_OVERFLOW;
  *bytes = total + 64;
  return ADASM_OK;
}

/* Long: the three steps of Shim et al. (preview of every row from the
   window, the top candidates, their exact rows and the normalizer) with
   the data errors each step can meet, in order. */
ADASM_DEF adasm_result adasm_svd_query(const adasm_svd_model *m,
                                       const adasm_svd_params *params,
                                       const float *x, void *work,
                                       size_t work_bytes,
                                       adasm_svd_result *out) {
  const adasm_kernels *k;
  adasm__svd_ws w;
  adasm__online st;
  adasm__heap h;
  unsigned char *base;
  size_t n, d, dpad, total, pad, pw, i, t, r0, nsel, window, top, topk;
  int has_nan = 0, has_inf = 0, nan = 0;
  adasm_result res = adasm__svd_check(m, params, &window, &top);
  if (res != ADASM_OK) return res;
  if (!x || !out || !out->idx || !out->prob) return ADASM_ERR_NULL;
  topk = params->k;
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
      out->idx[t] = 0;
      out->prob[t] = adasm__nanf();
    }
    out->log_norm = (double)adasm__nanf();
    out->madds = 0;
    return has_nan ? ADASM_ERR_NAN : ADASM_ERR_PARAM;
  }
  k = adasm__k(params->kern);

  /* x~ = beta V^T x, split at the window: xpre = x~[:W], xrest = x~[W:] */
  k->dot_rows(m->vt, d, d, d, x, params->beta, w.xpre);
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
    for (t = 0; t + 16 <= len; t += 16) k->svd.prev16(m->B, n, r0 + t, 0, pw, w.xpre, z + t);
    if (t < len) {
      size_t rows[16], u;
      for (u = 0; u < len - t; ++u) rows[u] = r0 + t + u;
      k->svd.rows(m->B, n, rows, len - t, 0, pw, w.xpre, z + t);
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
        k->svd.rows(m->B, n, w.sidx + t, cnt, p0, m->panels, w.xrest, rest);
        for (u = 0; u < cnt; ++u) w.z[w.sidx[t + u]] += rest[u];
      }
    }
  }
  out->madds = (uint64_t)d * (uint64_t)d + (uint64_t)n * (uint64_t)window +
               (uint64_t)nsel * (uint64_t)(d - window);

  /* normalizer over the mixed logits; top k among the refined rows, fed
     in index order so that ties keep the lower index */
  adasm__online_run(k, &st, w.z, n);
  h.idx = out->idx; h.val = out->prob; h.size = 0; h.cap = topk;
  for (t = 0; t < nsel; ++t) {
    const float v = w.z[w.sidx[t]];
    if (!adasm__isnanf(v)) adasm__heap_push(&h, v, w.sidx[t]);
  }
  res = adasm__topk_finish(&h, &st, &out->log_norm);
  if (res != ADASM_OK) out->madds = 0;
  return res;
}

#endif /* ADASM_NO_SVD */

/* >>certified -------------------------------------------------------------
   Certified exact top-k for float32 weights: a 16-bit screen with a
   rigorous per-row bound, the float32 rows only where the bound cannot
   decide. The contract and the bound are at adasm_certified_index. How:
   - Each row is scaled by 2^s_i so its largest entry lies in [2^14, 2^15)
     (s_i clamped to [-113, 126] so 2^-s_i is a normal float): every row
     uses f16's full precision and none overflows it. The scaled value is
     exact in double and in float down to 2^-126, below which f16 rounds to
     0 anyway, so h = f16(A 2^s) is the correctly rounded copy.
   - e_i, ||h_i|| and ||A_i|| are summed in double and rounded up when
     stored in float, with a relative margin of (d + 8) 2^-52 for the
     rounding of the double sums.
   - A query's bound b_i is formed in double with margins that cover its
     own rounding: each interval [s_i - b_i, s_i + b_i] contains the float32
     path's logit y_i. The k largest lower bounds are kept in a min-heap of
     doubles; T is its root. A row with upper bound < T has y_i < T <= y_j
     for the k rows in the heap, so it is not in the top k (strictly, so
     ties do not matter). The others are recomputed with the same kernel
     the float32 path uses (dot_rows on a single row gives the same bits as
     in a block: see the kernels) and fed, in index order, to the exact
     path's heap: ties break by index as there.
   - The normalizer runs the exact path's online (max, sum) over the
     screened logits with the recomputed rows overwritten; each other row
     is off by at most its b_i plus the rounding of s_i to float. */
#define ADASM__CERT_ROWS 256 /* rows per screen block (1 KB of logits) */


/* A float >= v, without a branch: v moved up by 2^-22 |v| + 2^-148 is at
   least half a float ulp above v (ulp <= 2^-23 |v|, or 2^-149 below
   2^-126), so rounding it to nearest cannot land below v. */
ADASM__PRIVATE float adasm__cert_up(double v) {
  return (float)(v + fabs(v) * ADASM__P2M22 + ADASM__P2M148);
}

/* Index layout from base (NULL: only measures); 0 on overflow. */
ADASM__PRIVATE int adasm__cert_layout(size_t n, size_t d, unsigned char *base,
                                      adasm_certified_index *ix,
                                      size_t *total) {
  adasm__carver c;
  size_t nd;
  if (adasm__mul_overflows(n, d, &nd)) return 0;
  c.base = base;
  c.off = 0;
  c.ok = 1;
  ix->h = (uint16_t *)adasm__carve(&c, nd, sizeof(uint16_t));
  ix->scale = (float *)adasm__carve(&c, n, sizeof(float));
  ix->c2 = (float *)adasm__carve(&c, n, sizeof(float));
  ix->c1 = (float *)adasm__carve(&c, n, sizeof(float));
  if (!c.ok || c.off > (size_t)-1 - 64) return 0;
  *total = c.off;
  return 1;
}

/* Row i: the scaled copy and its bound coefficients. */
ADASM__PRIVATE void adasm__cert_row(const adasm_kernels *k, const float *a,
                                    size_t d, double gam, uint16_t *h,
                                    float *scale, float *c2, float *c1,
                                    double *anorm) {
  float tmp[256];
  double mx = 0, e2 = 0, hn2 = 0, hn1 = 0, an2 = 0, an1 = 0, sg, up, fd = (double)d;
  size_t j, j0;
  int ex = 0, s;
  for (j = 0; j < d; ++j)
    if (fabs((double)a[j]) > mx) mx = fabs((double)a[j]);
  if (mx > 0) (void)frexp(mx, &ex); /* mx in [2^(ex-1), 2^ex) */
  s = mx > 0 ? 15 - ex : 0;
  if (s > 126) s = 126;
  if (s < -113) s = -113;
  sg = ldexp(1.0, -s);
  for (j0 = 0; j0 < d; j0 += 256) {
    const size_t len = d - j0 < 256 ? d - j0 : 256;
    const double p2 = ldexp(1.0, s); /* exact products in double */
    for (j = 0; j < len; ++j) tmp[j] = (float)((double)a[j0 + j] * p2);
    k->f32_to_f16(tmp, len, h + j0);
  }
  for (j = 0; j < d; ++j) {
    const double hv = (double)adasm_f16_to_f32(h[j]), av = (double)a[j];
    const double err = av - hv * sg;
    e2 += err * err;
    hn2 += hv * hv;
    hn1 += fabs(hv);
    an2 += av * av;
    an1 += fabs(av);
  }
  up = 1.0 + (fd + 8.0) * ADASM__P2M52; /* the rounding of the d-term sums */
  *scale = (float)sg;
  *c2 = adasm__cert_up((sqrt(e2 * up) + gam * (sg * sqrt(hn2 * up) + sqrt(an2 * up))) * up);
  *c1 = adasm__cert_up(
      ADASM__P2M123 * fmax(sg * (fd + hn1) + fd + an1, sg + 1.0) * up);
  *anorm = fmax(*anorm, sqrt(an2 * up) * up);
}

ADASM_DEF adasm_result adasm_certified_build(adasm_certified_index *ix,
                                             const adasm_matrix *A,
                                             void *alloc_ctx) {
  adasm_certified_index r;
  const adasm_kernels *k = adasm__k(NULL);
  const float *a;
  size_t n, d, lda, extent, total, i, j;
  unsigned char *block, *base;
  double mu, gam;
  int has_inf = 0;
  if (!ix || !A || !A->data) return ADASM_ERR_NULL;
  if (A->dtype != ADASM_F32) return ADASM_ERR_PARAM;
  n = A->rows;
  d = A->cols;
  lda = A->ld;
  a = (const float *)A->data;
  if (n == 0 || d == 0 || lda < d) return ADASM_ERR_SIZE;
  if (adasm__mul_overflows(n - 1, lda, &extent) || extent > (size_t)-1 - d ||
      !adasm__cert_layout(n, d, NULL, &r, &total))
    return ADASM_ERR_OVERFLOW;
  for (i = 0; i < n; ++i) /* refuse non-finite entries before allocating */
    for (j = 0; j < d; ++j) {
      if (adasm__isnanf(a[i * lda + j])) return ADASM_ERR_NAN;
      if (!adasm__isfinitef(a[i * lda + j])) has_inf = 1;
    }
  if (has_inf) return ADASM_ERR_PARAM;
  block = (unsigned char *)ADASM_MALLOC(total + 64, alloc_ctx);
  if (!block) return ADASM_ERR_NOMEM;
  base = block + ((64u - (size_t)((uintptr_t)block & 63u)) & 63u);
  (void)adasm__cert_layout(n, d, base, &r, &total);
  r.n = n;
  r.d = d;
  r.lda = lda;
  r.A = a;
  r.block = block;
  r.alloc_ctx = alloc_ctx;
  mu = (double)ADASM__DOT_DEPTH(d) * ADASM__P2M24;
  gam = mu < 0.5 ? mu / (1.0 - mu) : (double)adasm__inff(); /* inf: all
                                                                recomputed */
  r.anorm = 0.0;
  for (i = 0; i < n; ++i)
    adasm__cert_row(k, a + i * lda, d, gam, r.h + i * d, r.scale + i, r.c2 + i,
                    r.c1 + i, &r.anorm);
  *ix = r;
  return ADASM_OK;
}

ADASM_DEF void adasm_certified_free(adasm_certified_index *ix) {
  if (!ix) return;
  if (ix->block) ADASM_FREE(ix->block, ix->alloc_ctx);
  memset(ix, 0, sizeof *ix);
}

ADASM_DEF adasm_certified_params adasm_certified_params_default(void) {
  adasm_certified_params p;
  p.k = 1;
  p.beta = 1.0f;
  p.kern = NULL;
  return p;
}

typedef struct adasm__cert_ws {
  float *z;  /* n: screened logits, then exact where recomputed */
  float *u;  /* n: upper bounds (rounded up) */
  double *lo; /* k: min-heap of the k largest lower bounds */
} adasm__cert_ws;

ADASM__PRIVATE int adasm__cert_ws_layout(size_t n, size_t k, unsigned char *base,
                                         adasm__cert_ws *w, size_t *total) {
  adasm__carver c;
  c.base = base;
  c.off = 0;
  c.ok = 1;
  w->z = (float *)adasm__carve(&c, n, sizeof(float));
  w->u = (float *)adasm__carve(&c, n, sizeof(float));
  w->lo = (double *)adasm__carve(&c, k, sizeof(double));
  if (!c.ok || c.off > (size_t)-1 - 64) return 0;
  *total = c.off + 64;
  return 1;
}

ADASM__PRIVATE adasm_result adasm__cert_check(const adasm_certified_index *ix,
                                              const adasm_certified_params *p) {
  if (!ix || !p || !ix->block || !ix->A || !ix->h) return ADASM_ERR_NULL;
  if (p->k == 0 || p->k > ix->n) return ADASM_ERR_SIZE;
  if (!adasm__isfinitef(p->beta) || !(p->beta > 0.0f)) return ADASM_ERR_PARAM;
  return ADASM_OK;
}

ADASM_DEF adasm_result adasm_certified_workspace_size(
    const adasm_certified_index *ix, const adasm_certified_params *params,
    size_t *bytes) {
  adasm__cert_ws w;
  size_t total;
  adasm_result r;
  if (!bytes) return ADASM_ERR_NULL;
  r = adasm__cert_check(ix, params);
  if (r != ADASM_OK) return r;
  if (!adasm__cert_ws_layout(ix->n, params->k, NULL, &w, &total))
    return ADASM_ERR_OVERFLOW;
  *bytes = total;
  return ADASM_OK;
}

/* Min-heap of doubles (the k largest lower bounds): push or replace the
   root when v beats it. */
ADASM__PRIVATE void adasm__cert_keep(double *h, size_t *len, size_t cap,
                                     double v) {
  size_t i, c;
  if (*len < cap) {
    i = (*len)++;
    while (i > 0 && h[(i - 1) / 2] > v) {
      h[i] = h[(i - 1) / 2];
      i = (i - 1) / 2;
    }
    h[i] = v;
    return;
  }
  if (!(v > h[0])) return;
  i = 0;
  for (;;) {
    c = 2 * i + 1;
    if (c >= cap) break;
    if (c + 1 < cap && h[c + 1] < h[c]) ++c;
    if (!(h[c] < v)) break;
    h[i] = h[c];
    i = c;
  }
  h[i] = v;
}

/* Screen: z = beta 2^-s (h x) rounded to float, u = its upper bound, and
   the k largest lower bounds in w->lo. 0 if some bound is not finite or
   reaches 2^126 (the float32 logits might overflow: let the exact path
   decide). */
ADASM__PRIVATE int adasm__cert_screen(const adasm_certified_index *ix,
                                      const adasm_kernels *k, const float *x,
                                      float beta, double a2, double a1,
                                      size_t kk, adasm__cert_ws *w,
                                      double *maxe) {
  const size_t n = ix->n, d = ix->d;
  size_t r0, i, len = 0;
  double me = 0.0;
  int ok = 1;
  for (r0 = 0; r0 < n; r0 += ADASM__CERT_ROWS) {
    const size_t cnt = n - r0 < ADASM__CERT_ROWS ? n - r0 : ADASM__CERT_ROWS;
    float *z = w->z + r0, *u = w->u + r0;
    const float *sc = ix->scale + r0, *c2 = ix->c2 + r0, *c1 = ix->c1 + r0;
    k->dot_rows_f16(ix->h + r0 * d, cnt, d, d, x, 1.0f, z);
    for (i = 0; i < cnt; ++i) {
      /* exact: float beta times a power of two times float z */
      const double s = (double)beta * (double)sc[i] * (double)z[i];
      double b = (double)c2[i] * a2 + (double)c1[i] * a1 + ADASM__P2M122;
      b += (fabs(s) + b) * ADASM__P2M50; /* covers the rounding of b, s +- b */
      const double e = b + fabs(s) * ADASM__P2M22; /* >= |float(s) - y_i| */
      ok &= fabs(s) + b < ADASM__P2P126; /* false for NaN too */
      z[i] = (float)s;
      u[i] = adasm__cert_up(s + b);
      me = e > me ? e : me;
      if (len < kk || s - b > w->lo[0]) adasm__cert_keep(w->lo, &len, kk, s - b);
    }
  }
  *maxe = me;
  return ok;
}

/* Bound on |log Z^ - log Z|, Z^ = sum exp(z_i) as computed, Z the same with
   the float32 path's logits y_i. Only the screened rows differ, each by
   |z_i - y_i| <= maxe (the largest b_i + |s_i| 2^-22 of the screen), and
   |exp(z_i) - exp(y_i)| is at most
   exp(z_i) (exp(e_i) - 1) and at most exp(u_i) (both below u_i), so
   |Z^ - Z| <= delta Z^ with delta = min(exp(maxe) - 1, sum_i exp(u_i) / Z^)
   and |log Z^ - log Z| <= -log(1 - delta). The second form keeps the bound
   small when the uncertain rows carry no mass (huge logits far below the
   top). u holds -inf for the recomputed rows. */
ADASM__PRIVATE double adasm__cert_lse_err(const adasm_kernels *k,
                                          const adasm__cert_ws *w, size_t n,
                                          double maxe, double lse) {
  adasm__online st;
  double lse_u, delta;
  size_t i;
  adasm__online_init(&st);
  for (i = 0; i < n; i += ADASM__BLOCK)
    (void)adasm__online_feed(k, &st, w->u + i, n - i < ADASM__BLOCK ? n - i : ADASM__BLOCK);
  if (adasm__online_result(&st, &lse_u) != ADASM_OK) return 0.0; /* none left */
  /* 1e-6: the exp's own relative error in both sums, outward */
  delta = fmin(expm1(maxe), exp(lse_u - lse) * (1.0 + 1e-6)) * (1.0 + 1e-6);
  return delta < 1.0 ? -log1p(-delta) : (double)adasm__inff();
}

ADASM_DEF adasm_result adasm_certified_query(const adasm_certified_index *ix,
                                             const adasm_certified_params *params,
                                             const float *x, void *work,
                                             size_t work_bytes,
                                             adasm_certified_result *out) {
  const adasm_kernels *k;
  adasm__cert_ws w;
  adasm__online st;
  adasm__heap h;
  size_t total, i, n, d, nex = 0;
  double xn2 = 0, xn1 = 0, infl, thr, maxe = 0;
  adasm_result r;
  unsigned char *base;
  int finite = 1;
  if (!x || !out || !out->idx || !out->prob) return ADASM_ERR_NULL;
  r = adasm__cert_check(ix, params);
  if (r != ADASM_OK) return r;
  n = ix->n;
  d = ix->d;
  if (!adasm__cert_ws_layout(n, params->k, NULL, &w, &total))
    return ADASM_ERR_OVERFLOW;
  if (!work || work_bytes < total) return ADASM_ERR_WORKSPACE;
  base = (unsigned char *)work + ((64u - (size_t)((uintptr_t)work & 63u)) & 63u);
  (void)adasm__cert_ws_layout(n, params->k, base, &w, &total);
  k = adasm__k(params->kern);
  out->madds = 0;
  for (i = 0; i < d; ++i) {
    const double v = (double)x[i];
    finite &= adasm__isfinitef(x[i]);
    xn2 += v * v;
    xn1 += fabs(v);
  }
  /* the two norms, rounded up (relative error of a d-term sum: d 2^-53) */
  infl = 1.0 + ((double)d + 4.0) * ADASM__P2M52;
  /* the float32 path sums A_i x before scaling by beta: if those sums
     could pass FLT_MAX (|partial sum| <= ||A_i|| ||x||), its overflow
     decides the answer */
  finite &= ix->anorm * sqrt(xn2 * infl) * infl < ADASM__P2P126;
  if (finite) {
    const double a2 = (double)params->beta * sqrt(xn2 * infl) * infl;
    const double a1 = (double)params->beta * (1.0 + xn1 * infl) * infl;
    finite = adasm__cert_screen(ix, k, x, params->beta, a2, a1, params->k, &w,
                                &maxe);
    out->madds = (uint64_t)n * (uint64_t)d;
  }
  if (!finite) { /* special values: the float32 path, every row */
    r = adasm_gemv_softmax_topk(k, ix->A, n, d, ix->lda, x, params->beta,
                                params->k, out->idx, out->prob,
                                &out->log_norm, NULL);
    out->madds += (uint64_t)n * (uint64_t)d;
    out->rows_exact = n;
    out->log_norm_err = 0.0;
    return r;
  }
  /* recompute the rows the bound cannot decide; the others keep their
     screened logit, off by at most maxe */
  thr = w.lo[0];
  h.idx = out->idx; h.val = out->prob; h.size = 0; h.cap = params->k;
  for (i = 0; i < n; ++i) {
    if ((double)w.u[i] >= thr) {
      k->dot_rows(ix->A + i * ix->lda, 1, d, ix->lda, x, params->beta, w.z + i);
      adasm__heap_push(&h, w.z[i], i);
      w.u[i] = -adasm__inff(); /* u now lists the rows left screened */
      ++nex;
    }
  }
  adasm__online_init(&st);
  for (i = 0; i < n; i += ADASM__BLOCK)
    (void)adasm__online_feed(k, &st, w.z + i, n - i < ADASM__BLOCK ? n - i : ADASM__BLOCK);
  r = adasm__topk_finish(&h, &st, &out->log_norm);
  out->madds += (uint64_t)nex * (uint64_t)d;
  out->rows_exact = nex;
  out->log_norm_err = adasm__cert_lse_err(k, &w, n, maxe, out->log_norm);
  return r;
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
