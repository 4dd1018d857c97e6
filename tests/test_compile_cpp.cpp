// test_compile_cpp.cpp - the header, implementation included, compiled as
// C++11 (Meson builds this file with cpp_std=c++11) under strict warnings,
// next to standard C++ headers, and used the way C++ code would use it:
// std::vector buffers, nullptr, enums passed as their types, the struct
// value-initialised with {}. The public symbols must have C linkage, so a C
// program and a C++ program can share one implementation file.
// Returns 0 when every check passes.
#define ADASOFTMAX_IMPLEMENTATION
#include "adasoftmax.h"

#include <cmath>
#include <cstdio>
#include <numeric>
#include <vector>

namespace {

int failures = 0;

void check(bool ok, const char *what, int line) {
  if (!ok) {
    ++failures;
    std::fprintf(stderr, "%s:%d: FAILED %s\n", __FILE__, line, what);
  }
}

#define CHECK(cond) check((cond), #cond, __LINE__)

} // namespace

// The declarations are extern "C": taking the address as a C function
// pointer type must compile.
extern "C" {
typedef adasm_result (*softmax_fn)(const adasm_kernels *, const float *,
                                   size_t, float *);
}

int main() {
  const std::vector<float> z = {0.5f, -1.0f, 3.0f, 2.0f, 0.0f, -7.5f, 1.0f};
  const size_t n = z.size();
  std::vector<float> p(n), lp(n);

  double ref_lse = 0.0;
  for (float v : z) ref_lse += std::exp(static_cast<double>(v));
  ref_lse = std::log(ref_lse);

  const adasm_kernels *k = nullptr;
  CHECK(adasm_kernels_get(ADASM_ISA_SCALAR, &k) == ADASM_OK);
  CHECK(k != nullptr && adasm_kernels_isa(k) == ADASM_ISA_SCALAR);

  softmax_fn fn = &adasm_softmax;
  CHECK(fn(k, z.data(), n, p.data()) == ADASM_OK);
  const double sum = std::accumulate(p.begin(), p.end(), 0.0);
  CHECK(std::fabs(sum - 1.0) < 1e-6);
  for (size_t i = 0; i < n; ++i) {
    const double want = std::exp(static_cast<double>(z[i]) - ref_lse);
    CHECK(std::fabs(static_cast<double>(p[i]) - want) <= 1e-6 * want);
  }

  // Every algorithm on the best kernel set meets the same accuracy.
  const adasm_softmax_algo algos[] = {ADASM_SOFTMAX_AUTO,
                                      ADASM_SOFTMAX_THREE_PASS,
                                      ADASM_SOFTMAX_TWO_PASS,
                                      ADASM_SOFTMAX_ONLINE};
  for (adasm_softmax_algo algo : algos) {
    std::vector<float> q(n);
    CHECK(adasm_softmax_ex(nullptr, algo, z.data(), n, q.data()) == ADASM_OK);
    for (size_t i = 0; i < n; ++i) {
      const double want = std::exp(static_cast<double>(z[i]) - ref_lse);
      CHECK(std::fabs(static_cast<double>(q[i]) - want) <= 1e-6 * want);
    }
  }

  CHECK(adasm_log_softmax(nullptr, z.data(), n, lp.data()) == ADASM_OK);
  double lse = 0.0;
  CHECK(adasm_logsumexp(nullptr, z.data(), n, &lse) == ADASM_OK);
  CHECK(std::fabs(lse - ref_lse) < 1e-6);

  std::vector<size_t> idx(3);
  std::vector<float> prob(3);
  CHECK(adasm_softmax_topk(nullptr, z.data(), n, 3, idx.data(), prob.data(),
                           nullptr) == ADASM_OK);
  CHECK(idx[0] == 2 && idx[1] == 3 && idx[2] == 6);

  // Errors come back as codes, with a name: topk > n, a missing prob.
  const adasm_result bad = adasm_softmax_topk(nullptr, z.data(), n, n + 1,
                                              idx.data(), prob.data(), nullptr);
  CHECK(bad == ADASM_ERR_SIZE);
  CHECK(adasm_result_string(bad) != nullptr);
  CHECK(adasm_softmax_topk(nullptr, z.data(), n, 1, idx.data(), nullptr,
                           nullptr) == ADASM_ERR_NULL);

  // Sampling with a std::vector workspace, top-k + nucleus filter.
  adasm_sample_params sp = adasm_sample_params_default();
  sp.top_k = 2;
  sp.top_p = 0.9f;
  size_t bytes = 0;
  CHECK(adasm_sample_workspace_size(n, &sp, &bytes) == ADASM_OK);
  std::vector<unsigned char> work(bytes + 1);
  adasm_pcg32 rng{}; // value-initialised, then seeded
  adasm_pcg32_seed(&rng, 7u, 0u);
  int seen[2] = {0, 0};
  for (int t = 0; t < 100; ++t) {
    size_t pick = n;
    CHECK(adasm_sample(nullptr, z.data(), n, &sp, &rng, work.data(), bytes,
                       &pick) == ADASM_OK);
    CHECK(pick == 2 || pick == 3); // only the top two survive top_k = 2
    if (pick == 2 || pick == 3) seen[pick - 2] = 1;
  }
  // Their mass (0.83 of the total) is below top_p, so both stay; the
  // second has probability 0.27 per draw: 100 draws miss it with p < 1e-13.
  CHECK(seen[0] && seen[1]);

  // Fused GEMV: A = identity-like 7 x 7 (so A x = x).
  std::vector<float> A(n * n, 0.0f);
  for (size_t i = 0; i < n; ++i) A[i * n + i] = 1.0f;
  size_t top = n;
  float top_p = 0.0f;
  double log_norm = 0.0;
  CHECK(adasm_gemv_softmax_topk(nullptr, A.data(), n, n, n, z.data(), 1.0f, 1,
                                &top, &top_p, &log_norm,
                                nullptr) == ADASM_OK);
  CHECK(top == 2);
  CHECK(std::fabs(log_norm - ref_lse) < 1e-6);
  CHECK(std::fabs(static_cast<double>(top_p) - static_cast<double>(p[2])) <=
        1e-6 * static_cast<double>(p[2]));

  // The sampler chain with a std::vector workspace: top-k 2 keeps tokens 2
  // and 3 only; greedy is the argmax.
  adasm_sampler_params sp2 = adasm_sampler_params_default();
  sp2.top_k = 2;
  CHECK(adasm_sample_logits_workspace_size(n, &sp2, &bytes) == ADASM_OK);
  std::vector<unsigned char> work2(bytes + 1);
  for (uint64_t t = 0; t < 100; ++t) {
    adasm_sampler_result res{};
    sp2.draw = t;
    CHECK(adasm_sample_logits(z.data(), n, &sp2, work2.data() + 1, bytes, &res) ==
          ADASM_OK);
    CHECK((res.token == 2 || res.token == 3) && res.kept == 2);
  }
  sp2.temperature = 0.0f;
  {
    // greedy through the fused pass: A is the identity, so A x = z
    adasm_sampler_result res{};
    const adasm_matrix M = adasm_matrix_f32(A.data(), n, n, n);
    size_t fb = 0;
    CHECK(adasm_exact_sample_workspace_size(&M, &sp2, &fb) == ADASM_OK);
    std::vector<unsigned char> fw(fb);
    CHECK(adasm_exact_sample(&M, &sp2, z.data(), fw.data(), fb, &res) == ADASM_OK);
    CHECK(res.token == 2 && res.p == 1.0f && res.madds == n * n);
  }

  if (failures != 0) {
    std::fprintf(stderr, "test_compile_cpp: %d checks FAILED\n", failures);
    return 1;
  }
  std::printf("test_compile_cpp: ok\n");
  return 0;
}
