// The GEMM micro-kernel interface shared by gemm.cpp (packing, blocking,
// threads, dispatch) and the ISA-specific files gemm_avx2.cpp / gemm_avx512.cpp.
//
// A micro-kernel multiplies one packed A micro-panel by one packed B
// micro-panel and updates an mr x nr tile of an f32 C:
//   C[i][j] = alpha * sum_p A[i][p] B[p][j] + beta * C[i][j]   (i < m, j < n)
// C is not read when beta == 0. Panels are zero-padded to full mr / nr.
#pragma once

#include <cstdint>

// How packed panels hold their k elements.
enum GemmPacking {
  // f32: A micro-panel [k][mr], B micro-panel [k][nr].
  kPackF32 = 0,
  // bf16 pairs for vdpbf16ps: A [k/2][mr][2], B [k/2][nr][2]; odd k padded with 0.
  kPackBf16Pairs = 1,
};

// k counts the panels' k steps: elements (f32) or pairs (bf16 pairs).
typedef void (*GemmMicroKernel)(int64_t k, const void *a, const void *b, float *c, int64_t ldc,
                                float alpha, float beta, int m, int n);

struct GemmKernel {
  int mr, nr;          // register tile: rows of A, columns of B
  int mc, kc, nc;      // cache blocks: A block mc x kc (L2), B panel kc x nc (L3)
  GemmPacking packing;
  GemmMicroKernel run;
};

// The C update every micro-kernel ends with, for a tile held in acc[m][acc_ld].
static inline void gemm_update_tile(const float *acc, int acc_ld, float *c, int64_t ldc, float alpha,
                                    float beta, int m, int n) {
  for (int i = 0; i < m; i++)
    for (int j = 0; j < n; j++) {
      float v = alpha * acc[i * acc_ld + j];
      c[i * ldc + j] = beta == 0.0f ? v : v + beta * c[i * ldc + j];
    }
}

// Defined only on x86-64; call them only after the CPU checks of gemm.cpp.
const GemmKernel *gemm_kernel_avx2_f32();
const GemmKernel *gemm_kernel_avx512_f32();
const GemmKernel *gemm_kernel_avx512_bf16();
