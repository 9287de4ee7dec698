// LoRA with PEFT's semantics on the GPU: Y += scale * (drop(X) . Aᵀ) . Bᵀ and
// its gradients. The rank r is small, so every product is the fp32 CUDA-core
// GEMM of gemm_simt.cuh, reading operands through strides (no transposed
// copies) and applying the dropout mask as it loads X or stores dX: the mask
// is recomputed from (seed, flat index), never stored.
#include "gemm_simt.cuh"

namespace {

// X as a GEMM operand, through the dropout mask when p > 0.
simt::Operand dropped_x(const void *X, int x_dtype, int K, float p, uint64_t seed) {
  simt::Operand x = simt::dense(X, x_dtype, K, false);
  if (p > 0.0f) {
    x.dropout = 1;
    x.seed = seed;
    x.threshold = lorac_dropout_threshold(p);
    x.keep_scale = 1.0f / (1.0f - p);
  }
  return x;
}

}  // namespace

extern "C" {

int lorac_lora_forward(lorac_ctx *ctx, int32_t M, int32_t N, int32_t K, int32_t r, const void *X, int32_t x_dtype,
                       const float *A, const float *B, float scale, float dropout_p, uint64_t seed, float *XA,
                       void *Y, int32_t y_dtype) {
  ENTER(ctx);
  LORAC_REQUIRE(ctx, M >= 0 && N > 0 && K > 0 && r > 0,
                "lorac_lora_forward: sizes must be M >= 0 and N, K, r > 0 (got M=%d N=%d K=%d r=%d)", M, N, K, r);
  LORAC_REQUIRE(ctx, is_float_dtype(x_dtype) && is_float_dtype(y_dtype),
                "lorac_lora_forward: X and Y must be F32 or BF16 (got dtypes %d, %d)", x_dtype, y_dtype);
  LORAC_REQUIRE(ctx, dropout_p >= 0.0f && dropout_p < 1.0f, "lorac_lora_forward: dropout_p must be in [0, 1), got %g",
                (double)dropout_p);
  LORAC_REQUIRE(ctx, X && A && B && XA && Y, "lorac_lora_forward: X, A, B, XA or Y is NULL");
  // XA[M,r] = drop(X)[M,K] . A^T (A [r,K] read transposed).
  CUDA_CHECK(ctx,
             simt::gemm(ctx, M, r, K, dropped_x(X, x_dtype, K, dropout_p, seed),
                        simt::dense(A, LORAC_F32, K, true), plain_epilogue(XA, LORAC_F32, r, 1.0f, 0.0f)),
             "launching the GEMM XA = drop(X) . A^T");
  // Y[M,N] += scale * XA . B^T (B [N,r] read transposed).
  CUDA_CHECK(ctx,
             simt::gemm(ctx, M, N, r, simt::dense(XA, LORAC_F32, r, false),
                        simt::dense(B, LORAC_F32, r, true), plain_epilogue(Y, y_dtype, N, scale, 1.0f)),
             "launching the GEMM Y += scale * XA . B^T");
  return LORAC_OK;
}

int lorac_lora_backward(lorac_ctx *ctx, int32_t M, int32_t N, int32_t K, int32_t r, const void *X, int32_t x_dtype,
                        const float *A, const float *B, float scale, float dropout_p, uint64_t seed, const float *XA,
                        const void *dY, int32_t dy_dtype, float *dA, float *dB, void *dX, int32_t dx_dtype) {
  ENTER(ctx);
  LORAC_REQUIRE(ctx, M >= 0 && N > 0 && K > 0 && r > 0,
                "lorac_lora_backward: sizes must be M >= 0 and N, K, r > 0 (got M=%d N=%d K=%d r=%d)", M, N, K, r);
  LORAC_REQUIRE(ctx, is_float_dtype(x_dtype) && is_float_dtype(dy_dtype) && (!dX || is_float_dtype(dx_dtype)),
                "lorac_lora_backward: X, dY and dX must be F32 or BF16 (got dtypes %d, %d, %d)", x_dtype, dy_dtype,
                dx_dtype);
  LORAC_REQUIRE(ctx, dropout_p >= 0.0f && dropout_p < 1.0f,
                "lorac_lora_backward: dropout_p must be in [0, 1), got %g", (double)dropout_p);
  LORAC_REQUIRE(ctx, X && A && B && XA && dY && dA && dB, "lorac_lora_backward: X, A, B, XA, dY, dA or dB is NULL");
  if (M == 0) return LORAC_OK;  // no rows: every gradient term is zero

  // dB[N,r] += scale * dY^T . XA (dY [M,N] read transposed).
  CUDA_CHECK(ctx,
             simt::gemm(ctx, N, r, M, simt::dense(dY, dy_dtype, N, true), simt::dense(XA, LORAC_F32, r, false),
                        plain_epilogue(dB, LORAC_F32, r, scale, 1.0f)),
             "launching the GEMM dB += scale * dY^T . XA");

  // G[M,r] = scale * dY . B, shared by dA and dX.
  float *G = nullptr;
  const size_t g_bytes = (size_t)M * r * sizeof(float);
  CUDA_CHECK(ctx, lorac_scratch_alloc(ctx, g_bytes, (void **)&G), "allocating the M x r gradient workspace");
  cudaError_t err = simt::gemm(ctx, M, r, N, simt::dense(dY, dy_dtype, N, false),
                               simt::dense(B, LORAC_F32, r, false), plain_epilogue(G, LORAC_F32, r, scale, 0.0f));
  const char *what = "launching the GEMM G = scale * dY . B";
  if (err == cudaSuccess) {
    // dA[r,K] += G^T . drop(X) (G read transposed).
    err = simt::gemm(ctx, r, K, M, simt::dense(G, LORAC_F32, r, true),
                     dropped_x(X, x_dtype, K, dropout_p, seed), plain_epilogue(dA, LORAC_F32, K, 1.0f, 1.0f));
    what = "launching the GEMM dA += G^T . drop(X)";
  }
  if (err == cudaSuccess && dX) {
    // dX[M,K] += mask / (1-p) * (G . A): the mask applied as each element is stored.
    const simt::Operand x = dropped_x(X, x_dtype, K, dropout_p, seed);
    const Epilogue epi{dX, dx_dtype, K, 1.0f, 1.0f, x.dropout, x.seed, x.threshold, x.keep_scale};
    err = simt::gemm(ctx, M, K, r, simt::dense(G, LORAC_F32, r, false), simt::dense(A, LORAC_F32, K, false),
                     epi);
    what = "launching the GEMM dX += mask . (G . A)";
  }
  const cudaError_t free_err = lorac_scratch_free(ctx, G);
  CUDA_CHECK(ctx, err, what);
  CUDA_CHECK(ctx, free_err, "freeing the gradient workspace");
  return LORAC_OK;
}

}  // extern "C"
