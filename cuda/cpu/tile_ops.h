// Small f32 tile kernels shared by attention.cpp and cross_entropy.cpp: the
// products and row reductions of one block, each with a plain version
// (tile_ops.cpp) and an AVX2 + FMA version (tile_ops_avx2.cpp) picked at run
// time. Tiles are small (tens to a few thousand along each side) and already
// in f32; callers pack and convert their operands first.
#pragma once

#include <cstdint>

namespace tiles {

struct TileOps {
  const char *name;
  // C[m,n] (+)= A[m,k] . B[k,n]. A(i,p) is a[i*rsa + p*csa] (so A may be a
  // transposed view), B is row-major with row stride ldb, C with ldc.
  void (*gemm_nn)(int m, int n, int k, const float *a, int64_t rsa, int64_t csa, const float *b,
                  int64_t ldb, float *c, int64_t ldc, bool accumulate);
  // C[m,n] (+)= A[m,k] . B[n,k]^T, A and B row-major (row strides lda, ldb):
  // dot products along contiguous rows, for long k.
  void (*gemm_nt)(int m, int n, int k, const float *a, int64_t lda, const float *b, int64_t ldb,
                  float *c, int64_t ldc, bool accumulate);
  // max of x[0..n), n >= 1.
  float (*row_max)(int n, const float *x);
  // x[i] = exp(x[i] - shift) in place; returns the sum of the new x.
  float (*exp_sub_sum)(int n, float *x, float shift);
};

// The portable kernels (plain loops; the reference for the vector ones).
const TileOps &tile_ops_portable();
// AVX2 + FMA kernels; call only when the CPU has both (x86-64 only).
const TileOps &tile_ops_avx2();
// The fastest kernels this CPU runs.
const TileOps &tile_ops();

}  // namespace tiles
