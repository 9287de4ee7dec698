// The fp32 GEMM on the CUDA cores: C[M,N] = alpha * op(A)[M,K] . op(B)[K,N] + beta * C
// with fp32 products and sums, so f32 paths (the dense f32 GEMM, every LoRA
// product) stay as accurate as the CPU build's (~1e-6 relative).
//
// Operands are read element by element, so any transposition, leading
// dimension, F32 / BF16 dtype and LoRA's dropout mask on X are one code path
// (gemm_simt.cu).
#pragma once

#include "epilogue.cuh"

namespace simt {

// op(S) as a logical [rows, cols] matrix: element (r, c) is S[r * ld + c], or
// S[c * ld + r] when trans. With dropout, a stored element i = its flat index
// is kept iff lorac_dropout_keep(seed, i, threshold), then scaled by keep_scale.
struct Operand {
  const void *p;
  int dtype;
  int64_t ld;
  int trans;
  int dropout;
  uint64_t seed, threshold;
  float keep_scale;

  __device__ __forceinline__ float at(int r, int c) const {
    const int64_t off = trans ? (int64_t)c * ld + r : (int64_t)r * ld + c;
    const float v = load_f32(p, dtype, off);
    if (!dropout) return v;
    return lorac_dropout_keep(seed, (uint64_t)off, threshold) ? v * keep_scale : 0.0f;
  }
};

static inline Operand dense(const void *p, int dtype, int64_t ld, bool trans) {
  return Operand{p, dtype, ld, trans ? 1 : 0, 0, 0, 0, 1.0f};
}

// C = epi(op(A) . op(B)) on ctx's stream; nothing to do for an empty C.
cudaError_t gemm(lorac_ctx *ctx, int M, int N, int K, const Operand &a, const Operand &b, const Epilogue &epi);

}  // namespace simt
