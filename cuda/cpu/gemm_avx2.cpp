// The AVX2 + FMA GEMM micro-kernel: a 6 x 16 fp32 tile in 12 ymm registers.
// Per k step it loads 16 floats of B, broadcasts 6 floats of A and issues 12
// FMAs, enough independent chains to keep both FMA pipes of Zen and Intel
// cores busy. Compiled with -mavx2 -mfma; gemm.cpp calls it only on CPUs that
// have both.
#if defined(__x86_64__)
#include <immintrin.h>

#include "gemm_kernels.h"

namespace {

constexpr int kMr = 6;
constexpr int kNr = 16;  // two ymm vectors

// Named accumulators: GCC keeps them in registers (an array of __m256 spills).
void kernel_6x16(int64_t k, const void *a_, const void *b_, float *c, int64_t ldc, float alpha, float beta,
                 int m, int n) {
  const float *a = (const float *)a_;
  const float *b = (const float *)b_;
  __m256 c00 = _mm256_setzero_ps(), c01 = c00, c10 = c00, c11 = c00, c20 = c00, c21 = c00;
  __m256 c30 = c00, c31 = c00, c40 = c00, c41 = c00, c50 = c00, c51 = c00;
  // C is touched only at the end: start fetching it now.
  for (int i = 0; i < kMr; i++) {
    _mm_prefetch((const char *)(c + i * ldc), _MM_HINT_T0);
    _mm_prefetch((const char *)(c + i * ldc + kNr - 1), _MM_HINT_T0);
  }
  for (int64_t p = 0; p < k; p++) {
    const __m256 b0 = _mm256_load_ps(b), b1 = _mm256_load_ps(b + 8);
    __m256 ai = _mm256_broadcast_ss(a);
    c00 = _mm256_fmadd_ps(ai, b0, c00);
    c01 = _mm256_fmadd_ps(ai, b1, c01);
    ai = _mm256_broadcast_ss(a + 1);
    c10 = _mm256_fmadd_ps(ai, b0, c10);
    c11 = _mm256_fmadd_ps(ai, b1, c11);
    ai = _mm256_broadcast_ss(a + 2);
    c20 = _mm256_fmadd_ps(ai, b0, c20);
    c21 = _mm256_fmadd_ps(ai, b1, c21);
    ai = _mm256_broadcast_ss(a + 3);
    c30 = _mm256_fmadd_ps(ai, b0, c30);
    c31 = _mm256_fmadd_ps(ai, b1, c31);
    ai = _mm256_broadcast_ss(a + 4);
    c40 = _mm256_fmadd_ps(ai, b0, c40);
    c41 = _mm256_fmadd_ps(ai, b1, c41);
    ai = _mm256_broadcast_ss(a + 5);
    c50 = _mm256_fmadd_ps(ai, b0, c50);
    c51 = _mm256_fmadd_ps(ai, b1, c51);
    a += kMr;
    b += kNr;
  }
  const __m256 acc[kMr][2] = {{c00, c01}, {c10, c11}, {c20, c21}, {c30, c31}, {c40, c41}, {c50, c51}};
  if (m == kMr && n == kNr) {
    const __m256 va = _mm256_set1_ps(alpha), vb = _mm256_set1_ps(beta);
    for (int i = 0; i < kMr; i++)
      for (int v = 0; v < 2; v++) {
        float *cp = c + i * ldc + 8 * v;
        __m256 r = _mm256_mul_ps(va, acc[i][v]);
        if (beta != 0.0f) r = _mm256_fmadd_ps(vb, _mm256_loadu_ps(cp), r);
        _mm256_storeu_ps(cp, r);
      }
    return;
  }
  alignas(32) float tile[kMr * kNr];
  for (int i = 0; i < kMr; i++)
    for (int v = 0; v < 2; v++) _mm256_store_ps(tile + i * kNr + 8 * v, acc[i][v]);
  gemm_update_tile(tile, kNr, c, ldc, alpha, beta, m, n);
}

// Blocks for Zen 1 / Haswell-class caches: the 144 x 576 A block (324 KiB)
// in L2, the 576 x 1024 B panel in L3. A deep k slice streams the B
// micro-panel from L2 at no cost to the kernel, and lets K <= 576 (the
// SmolLM2 layers) run in one slice that packs whole contiguous rows of X:
// 10% faster than 256 on the small-N k/v projections, even elsewhere.
const GemmKernel kAvx2F32 = {kMr, kNr, 144, 576, 1024, kPackF32, kernel_6x16};

}  // namespace

const GemmKernel *gemm_kernel_avx2_f32() { return &kAvx2F32; }

#endif  // __x86_64__
