// AVX-512 GEMM micro-kernels, each a 12 x 32 tile in 24 zmm registers:
// - f32: 2 zmm of B, 12 broadcasts of A, 24 FMAs per k step;
// - bf16 (AVX512-BF16): vdpbf16ps on k pairs, twice the f32 rate on CPUs with
//   the instruction (Cooper Lake, Sapphire Rapids, Zen 4).
// Compiled with -mavx512f/bw/vl/dq/bf16; gemm.cpp calls the f32 kernel only on
// CPUs with AVX-512 F/BW/VL/DQ and the bf16 one only where avx512bf16 is set.
#if defined(__x86_64__)
#include <immintrin.h>

#include "gemm_kernels.h"

namespace {

constexpr int kMr = 12;
constexpr int kNv = 2;  // zmm vectors per row of the tile
constexpr int kNr = kNv * 16;

// C is touched only at the end: start fetching its 12 rows of 128 bytes now.
__attribute__((always_inline)) inline void prefetch_tile(const float *c, int64_t ldc) {
#pragma GCC unroll 12
  for (int i = 0; i < kMr; i++) {
    _mm_prefetch((const char *)(c + i * ldc), _MM_HINT_T0);
    _mm_prefetch((const char *)(c + i * ldc + kNr - 1), _MM_HINT_T0);
  }
}

// The shared epilogue: C = alpha * acc + beta * C for a full or edge tile.
// Inlined with every loop unrolled, as in the kernels: GCC keeps the acc
// array in registers only when no loop indexes it at run time.
__attribute__((always_inline)) inline void store_tile(__m512 (&acc)[kMr][kNv], float *c, int64_t ldc, float alpha,
                                                      float beta, int m, int n) {
  const __m512 va = _mm512_set1_ps(alpha);
  if (m == kMr && n == kNr) {
    const __m512 vb = _mm512_set1_ps(beta);
#pragma GCC unroll 12
    for (int i = 0; i < kMr; i++)
#pragma GCC unroll 2
      for (int v = 0; v < kNv; v++) {
        float *cp = c + i * ldc + 16 * v;
        __m512 r = _mm512_mul_ps(va, acc[i][v]);
        if (beta != 0.0f) r = _mm512_fmadd_ps(vb, _mm512_loadu_ps(cp), r);
        _mm512_storeu_ps(cp, r);
      }
    return;
  }
  alignas(64) float tile[kMr * kNr];
#pragma GCC unroll 12
  for (int i = 0; i < kMr; i++)
#pragma GCC unroll 2
    for (int v = 0; v < kNv; v++) _mm512_store_ps(tile + i * kNr + 16 * v, acc[i][v]);
  gemm_update_tile(tile, kNr, c, ldc, alpha, beta, m, n);
}

void kernel_f32(int64_t k, const void *a_, const void *b_, float *c, int64_t ldc, float alpha, float beta, int m,
                int n) {
  const float *a = (const float *)a_;
  const float *b = (const float *)b_;
  __m512 acc[kMr][kNv];
#pragma GCC unroll 12
  for (int i = 0; i < kMr; i++)
#pragma GCC unroll 2
    for (int v = 0; v < kNv; v++) acc[i][v] = _mm512_setzero_ps();
  prefetch_tile(c, ldc);
#pragma GCC unroll 2
  for (int64_t p = 0; p < k; p++) {
    __m512 bv[kNv];
#pragma GCC unroll 2
    for (int v = 0; v < kNv; v++) bv[v] = _mm512_load_ps(b + 16 * v);
#pragma GCC unroll 12
    for (int i = 0; i < kMr; i++) {
      __m512 ai = _mm512_set1_ps(a[i]);
#pragma GCC unroll 2
      for (int v = 0; v < kNv; v++) acc[i][v] = _mm512_fmadd_ps(ai, bv[v], acc[i][v]);
    }
    a += kMr;
    b += kNr;
  }
  store_tile(acc, c, ldc, alpha, beta, m, n);
}

// k counts pairs: A [k][12][2] and B [k][32][2] bf16.
void kernel_bf16(int64_t k, const void *a_, const void *b_, float *c, int64_t ldc, float alpha, float beta, int m,
                 int n) {
  const uint32_t *a = (const uint32_t *)a_;  // one (k, k+1) pair of a row per 32 bits
  const uint16_t *b = (const uint16_t *)b_;
  __m512 acc[kMr][kNv];
#pragma GCC unroll 12
  for (int i = 0; i < kMr; i++)
#pragma GCC unroll 2
    for (int v = 0; v < kNv; v++) acc[i][v] = _mm512_setzero_ps();
  prefetch_tile(c, ldc);
#pragma GCC unroll 2
  for (int64_t p = 0; p < k; p++) {
    __m512bh bv[kNv];
#pragma GCC unroll 2
    for (int v = 0; v < kNv; v++) bv[v] = (__m512bh)_mm512_load_si512(b + 32 * v);
#pragma GCC unroll 12
    for (int i = 0; i < kMr; i++) {
      __m512bh ai = (__m512bh)_mm512_set1_epi32((int)a[i]);
#pragma GCC unroll 2
      for (int v = 0; v < kNv; v++) acc[i][v] = _mm512_dpbf16_ps(acc[i][v], ai, bv[v]);
    }
    a += kMr;
    b += 2 * kNr;
  }
  store_tile(acc, c, ldc, alpha, beta, m, n);
}

// Server AVX-512 cores: 1-2 MiB L2 holds the 144 x 256 A block with room to
// spare; the B micro-panel (256 x 32 f32 = 32 KiB, half that in bf16) sits in
// the 48 KiB L1.
const GemmKernel kAvx512F32 = {kMr, kNr, 144, 256, 2048, kPackF32, kernel_f32};
const GemmKernel kAvx512Bf16 = {kMr, kNr, 144, 512, 2048, kPackBf16Pairs, kernel_bf16};

}  // namespace

const GemmKernel *gemm_kernel_avx512_f32() { return &kAvx512F32; }
const GemmKernel *gemm_kernel_avx512_bf16() { return &kAvx512Bf16; }

#endif  // __x86_64__
