// LoRA forward and backward on the CPU, with PEFT's semantics:
//   XA = drop(X)·Aᵀ, Y += scale·XA·Bᵀ, drop(x_i) = keep_i ? x_i/(1-p) : 0,
// keep_i from lorac.h's counter-based hash of the element index row*K+col, so
// the backward recomputes the forward's mask instead of storing it.
//
// Every product is a call of the blocked GEMM (gemm.cpp), which splits work
// over output rows and columns only, so results do not depend on the thread
// count. With dropout, drop(X) is written out as f32 [M, K] for the products
// that read it, and dX's mask is applied to G·A before it is added.
#include <omp.h>

#include <stdexcept>
#include <vector>

#include "common.h"

namespace {

// C = alpha·op(A)·op(B) + beta·C through lorac_gemm; a failure (it has set the error) becomes an exception.
void gemm(lorac_ctx *ctx, bool ta, bool tb, int64_t M, int64_t N, int64_t K, float alpha, const void *A, int a_dtype,
          int64_t lda, const void *B, int b_dtype, int64_t ldb, float beta, void *C, int c_dtype, int64_t ldc) {
  if (lorac_gemm(ctx, ta, tb, (int32_t)M, (int32_t)N, (int32_t)K, alpha, A, a_dtype, (int32_t)lda, B, b_dtype,
                 (int32_t)ldb, beta, C, c_dtype, (int32_t)ldc) != LORAC_OK)
    throw std::runtime_error(lorac_last_error(ctx));
}

struct Dropout {
  uint64_t seed;
  uint64_t threshold;
  float keep_scale;  // 1/(1-p), as torch's dropout scales the kept elements
  bool active;
  Dropout(float p, uint64_t s)
      : seed(s), threshold(lorac_dropout_threshold(p)), keep_scale(1.0f / (1.0f - p)), active(p > 0.0f) {}
  // The factor element i is multiplied by: 0 or 1/(1-p).
  float factor(uint64_t i) const { return lorac_dropout_keep(seed, i, threshold) ? keep_scale : 0.0f; }
};

// drop(X) of an F32/BF16 [M, K] matrix, as f32.
std::vector<float> dropped(lorac_ctx *ctx, const void *X, int x_dtype, int64_t M, int64_t K, const Dropout &drop) {
  std::vector<float> out((size_t)M * K);
  float *o = out.data();
#pragma omp parallel for num_threads(ctx_threads(ctx))
  for (int64_t m = 0; m < M; m++) {
    for (int64_t i = m * K; i < (m + 1) * K; i++) {
      const float x = x_dtype == LORAC_F32 ? ((const float *)X)[i] : bf16_to_f32(((const uint16_t *)X)[i]);
      o[i] = x * drop.factor((uint64_t)i);
    }
  }
  return out;
}

void lora_forward(lorac_ctx *ctx, int64_t M, int64_t N, int64_t K, int64_t r, const void *X, int x_dtype,
                  const float *A, const float *B, float scale, const Dropout &drop, float *XA, void *Y,
                  int y_dtype) {
  std::vector<float> x_dropped;
  if (drop.active) {
    x_dropped = dropped(ctx, X, x_dtype, M, K, drop);
    X = x_dropped.data();
    x_dtype = LORAC_F32;
  }
  gemm(ctx, false, true, M, r, K, 1.0f, X, x_dtype, K, A, LORAC_F32, K, 0.0f, XA, LORAC_F32, r);  // XA = drop(X)·Aᵀ
  gemm(ctx, false, true, M, N, r, scale, XA, LORAC_F32, r, B, LORAC_F32, r, 1.0f, Y, y_dtype, N);  // Y += s·XA·Bᵀ
}

void lora_backward(lorac_ctx *ctx, int64_t M, int64_t N, int64_t K, int64_t r, const void *X, int x_dtype,
                   const float *A, const float *B, float scale, const Dropout &drop, const float *XA,
                   const void *dY, int dy_dtype, float *dA, float *dB, void *dX, int dx_dtype) {
  std::vector<float> G((size_t)M * r);
  gemm(ctx, false, false, M, r, N, scale, dY, dy_dtype, N, B, LORAC_F32, r, 0.0f, G.data(), LORAC_F32, r);  // s·dY·B
  gemm(ctx, true, false, N, r, M, scale, dY, dy_dtype, N, XA, LORAC_F32, r, 1.0f, dB, LORAC_F32, r);  // += s·dYᵀ·XA
  if (!drop.active) {
    gemm(ctx, true, false, r, K, M, 1.0f, G.data(), LORAC_F32, r, X, x_dtype, K, 1.0f, dA, LORAC_F32, K);  // += Gᵀ·X
    if (dX) gemm(ctx, false, false, M, K, r, 1.0f, G.data(), LORAC_F32, r, A, LORAC_F32, K, 1.0f, dX, dx_dtype, K);
    return;
  }
  std::vector<float> work = dropped(ctx, X, x_dtype, M, K, drop);
  gemm(ctx, true, false, r, K, M, 1.0f, G.data(), LORAC_F32, r, work.data(), LORAC_F32, K, 1.0f, dA, LORAC_F32,
       K);  // += Gᵀ·drop(X)
  if (!dX) return;
  // dX += drop'(G·A): the same mask and 1/(1-p) as the forward, on G·A written over drop(X).
  gemm(ctx, false, false, M, K, r, 1.0f, G.data(), LORAC_F32, r, A, LORAC_F32, K, 0.0f, work.data(), LORAC_F32, K);
  const float *w = work.data();
#pragma omp parallel for num_threads(ctx_threads(ctx))
  for (int64_t m = 0; m < M; m++) {
    for (int64_t i = m * K; i < (m + 1) * K; i++) {
      const float v = w[i] * drop.factor((uint64_t)i);
      if (dx_dtype == LORAC_F32)
        ((float *)dX)[i] += v;
      else
        ((uint16_t *)dX)[i] = f32_to_bf16(bf16_to_f32(((uint16_t *)dX)[i]) + v);
    }
  }
}

}  // namespace

extern "C" {

int lorac_lora_forward(lorac_ctx *ctx, int32_t M, int32_t N, int32_t K, int32_t r, const void *X, int32_t x_dtype,
                       const float *A, const float *B, float scale, float dropout_p, uint64_t seed, float *XA,
                       void *Y, int32_t y_dtype) {
  LORAC_REQUIRE(ctx, ctx, "lorac_lora_forward: ctx is NULL");
  LORAC_REQUIRE(ctx, M >= 0 && N > 0 && K > 0 && r > 0,
                "lorac_lora_forward: sizes must be M >= 0 and N, K, r > 0 (got M=%d N=%d K=%d r=%d)", M, N, K, r);
  LORAC_REQUIRE(ctx, is_float_dtype(x_dtype) && is_float_dtype(y_dtype),
                "lorac_lora_forward: X and Y must be F32 or BF16 (got dtypes %d, %d)", x_dtype, y_dtype);
  LORAC_REQUIRE(ctx, dropout_p >= 0.0f && dropout_p < 1.0f, "lorac_lora_forward: dropout_p must be in [0, 1), got %g",
                (double)dropout_p);
  LORAC_REQUIRE(ctx, X && A && B && XA && Y, "lorac_lora_forward: X, A, B, XA or Y is NULL");
  LORAC_TRY(ctx, { lora_forward(ctx, M, N, K, r, X, x_dtype, A, B, scale, Dropout(dropout_p, seed), XA, Y, y_dtype); })
  return LORAC_OK;
}

int lorac_lora_backward(lorac_ctx *ctx, int32_t M, int32_t N, int32_t K, int32_t r, const void *X, int32_t x_dtype,
                        const float *A, const float *B, float scale, float dropout_p, uint64_t seed, const float *XA,
                        const void *dY, int32_t dy_dtype, float *dA, float *dB, void *dX, int32_t dx_dtype) {
  LORAC_REQUIRE(ctx, ctx, "lorac_lora_backward: ctx is NULL");
  LORAC_REQUIRE(ctx, M >= 0 && N > 0 && K > 0 && r > 0,
                "lorac_lora_backward: sizes must be M >= 0 and N, K, r > 0 (got M=%d N=%d K=%d r=%d)", M, N, K, r);
  LORAC_REQUIRE(ctx, is_float_dtype(x_dtype) && is_float_dtype(dy_dtype) && (!dX || is_float_dtype(dx_dtype)),
                "lorac_lora_backward: X, dY and dX must be F32 or BF16 (got dtypes %d, %d, %d)", x_dtype, dy_dtype,
                dx_dtype);
  LORAC_REQUIRE(ctx, dropout_p >= 0.0f && dropout_p < 1.0f,
                "lorac_lora_backward: dropout_p must be in [0, 1), got %g", (double)dropout_p);
  LORAC_REQUIRE(ctx, X && A && B && XA && dY && dA && dB, "lorac_lora_backward: X, A, B, XA, dY, dA or dB is NULL");
  LORAC_TRY(ctx, {
    lora_backward(ctx, M, N, K, r, X, x_dtype, A, B, scale, Dropout(dropout_p, seed), XA, dY, dy_dtype, dA, dB, dX,
                  dx_dtype);
  })
  return LORAC_OK;
}

}  // extern "C"
