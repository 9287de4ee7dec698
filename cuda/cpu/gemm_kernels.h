// The GEMM micro-kernel interface shared by gemm.cpp (packing, blocking,
// threads, dispatch) and the ISA-specific files gemm_avx2.cpp / gemm_avx512.cpp /
// gemm_amx.cpp.
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
  // AMX tiles: A [k/32][mr][32] (rows of 32 consecutive k), B [k/2][nr][2] as
  // kPackBf16Pairs; k padded with 0 to a multiple of 32.
  kPackAmx = 2,
};

// k counts the panels' k steps: elements (f32), pairs (bf16 pairs) or 32s (AMX).
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
const GemmKernel *gemm_kernel_amx_bf16();

// The CPU has AMX-BF16 and the OS granted this process its tile state (asked once).
bool lorac_amx_usable();

// The AMX kernel's packers for its two common operands (AVX-512, gemm_amx.cpp).
// A: `rows` (<= 32) rows of f32 (or bf16) with k contiguous, row stride ld,
// into [kp/32][32][32] bf16, zero past kn and past the rows.
void amx_pack_a(const void *src, bool bf16, int64_t ld, int rows, int64_t kn, int64_t kp, uint16_t *panel);
// B: the NF4 operand's elements (x0..x0+xn, k0..k0+kn), element (x, k) at flat
// index x * sx + k * sk, into [kn/2][32] bf16 pairs. False when the panel is
// not one this path takes (a partial panel, or blocks that do not start on a
// multiple of 32): the caller packs it the portable way.
bool amx_pack_b_nf4(const uint8_t *w, const float *absmax, int shift, int64_t sx, int64_t sk, int64_t x0, int xn,
                    int64_t k0, int64_t kn, uint32_t *panel);
