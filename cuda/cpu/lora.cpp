// Placeholder until the kernels of this file land.
#include "common.h"
extern "C" {
int lorac_lora_forward(lorac_ctx *ctx, int32_t M, int32_t N, int32_t K, int32_t r, const void *X, int32_t x_dtype, const float *A, const float *B, float scale, float dropout_p, uint64_t seed, float *XA, void *Y, int32_t y_dtype) { return lorac_fail(ctx, LORAC_ERR_LIBRARY, "lorac_lora_forward: not implemented"); }
int lorac_lora_backward(lorac_ctx *ctx, int32_t M, int32_t N, int32_t K, int32_t r, const void *X, int32_t x_dtype, const float *A, const float *B, float scale, float dropout_p, uint64_t seed, const float *XA, const void *dY, int32_t dy_dtype, float *dA, float *dB, void *dX, int32_t dx_dtype) { return lorac_fail(ctx, LORAC_ERR_LIBRARY, "lorac_lora_backward: not implemented"); }
}
