// The portable tile kernels (plain loops the compiler vectorises for the
// baseline ISA) and the run-time choice between them and the AVX2 ones.
#include "tile_ops.h"

#include <cmath>
#include <cstdlib>
#include <cstring>

namespace tiles {
namespace {

void gemm_nn(int m, int n, int k, const float *a, int64_t rsa, int64_t csa, const float *b,
             int64_t ldb, float *c, int64_t ldc, bool accumulate) {
  for (int i = 0; i < m; i++) {
    float *ci = c + i * ldc;
    if (!accumulate)
      for (int j = 0; j < n; j++) ci[j] = 0.0f;
    for (int p = 0; p < k; p++) {
      const float aip = a[i * rsa + p * csa];
      const float *bp = b + p * ldb;
#pragma omp simd
      for (int j = 0; j < n; j++) ci[j] += aip * bp[j];
    }
  }
}

void gemm_nt(int m, int n, int k, const float *a, int64_t lda, const float *b, int64_t ldb,
             float *c, int64_t ldc, bool accumulate) {
  for (int i = 0; i < m; i++)
    for (int j = 0; j < n; j++) {
      const float *ai = a + i * lda;
      const float *bj = b + j * ldb;
      float dot = 0.0f;
#pragma omp simd reduction(+ : dot)
      for (int p = 0; p < k; p++) dot += ai[p] * bj[p];
      c[i * ldc + j] = accumulate ? c[i * ldc + j] + dot : dot;
    }
}

float row_max(int n, const float *x) {
  float m = x[0];
  for (int i = 1; i < n; i++) m = x[i] > m ? x[i] : m;
  return m;
}

float exp_sub_sum(int n, float *x, float shift) {
  float sum = 0.0f;
  for (int i = 0; i < n; i++) {
    x[i] = std::exp(x[i] - shift);
    sum += x[i];
  }
  return sum;
}

}  // namespace

const TileOps &tile_ops_portable() {
  static const TileOps ops = {"portable", gemm_nn, gemm_nt, row_max, exp_sub_sum};
  return ops;
}

// LORAC_CPU_ISA=portable (read on every call, as gemm.cpp does) forces the
// plain kernels so tests can run both paths on one machine.
const TileOps &tile_ops() {
  const char *isa = std::getenv("LORAC_CPU_ISA");
  if (isa && !std::strcmp(isa, "portable")) return tile_ops_portable();
#if defined(__x86_64__)
  static const bool avx2 = __builtin_cpu_supports("avx2") && __builtin_cpu_supports("fma");
  if (avx2) return tile_ops_avx2();
#endif
  return tile_ops_portable();
}

}  // namespace tiles
