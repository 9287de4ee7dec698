// Placeholder until the kernels of this file land.
#include "common.h"
extern "C" {
int lorac_nf4_gemm(lorac_ctx *ctx, int32_t M, int32_t N, int32_t K, const void *X, int32_t x_dtype, const uint8_t *W, const float *absmax, int32_t blocksize, void *Y, int32_t y_dtype, int32_t accumulate) { return lorac_fail(ctx, LORAC_ERR_LIBRARY, "lorac_nf4_gemm: not implemented"); }
int lorac_nf4_gemm_dx(lorac_ctx *ctx, int32_t M, int32_t N, int32_t K, const void *dY, int32_t dy_dtype, const uint8_t *W, const float *absmax, int32_t blocksize, void *dX, int32_t dx_dtype, int32_t accumulate) { return lorac_fail(ctx, LORAC_ERR_LIBRARY, "lorac_nf4_gemm_dx: not implemented"); }
int lorac_gemm(lorac_ctx *ctx, int32_t trans_a, int32_t trans_b, int32_t M, int32_t N, int32_t K, float alpha, const void *A, int32_t a_dtype, int32_t lda, const void *B, int32_t b_dtype, int32_t ldb, float beta, void *C, int32_t c_dtype, int32_t ldc) { return lorac_fail(ctx, LORAC_ERR_LIBRARY, "lorac_gemm: not implemented"); }
}
