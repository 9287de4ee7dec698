// How the GEMM kernels write their fp32 sums: C = alpha * acc + beta * C,
// optionally masked by LoRA's dropout (the input gradient through drop(X)).
#pragma once

#include "common.cuh"

struct Epilogue {
  void *c;
  int dtype;  // LORAC_F32 or LORAC_BF16
  int64_t ldc;
  float alpha, beta;  // beta == 0: C is not read (it may hold NaN)
  int dropout;        // 1: element (m, n) is kept iff lorac_dropout_keep(seed, m * ldc + n, threshold)
  uint64_t seed, threshold;
  float keep_scale;  // 1 / (1 - p) for kept elements

  __device__ __forceinline__ void operator()(int m, int n, float acc) const {
    const int64_t off = (int64_t)m * ldc + n;
    float v = alpha * acc;
    if (dropout) v = lorac_dropout_keep(seed, (uint64_t)off, threshold) ? v * keep_scale : 0.0f;
    store_f32(c, dtype, off, beta == 0.0f ? v : v + beta * load_f32(c, dtype, off));
  }
};

// C = alpha * acc + beta * C, no mask.
static inline Epilogue plain_epilogue(void *c, int dtype, int64_t ldc, float alpha, float beta) {
  return Epilogue{c, dtype, ldc, alpha, beta, 0, 0, 0, 1.0f};
}
