// Placeholder until the kernels of this file land.
#include "common.h"
extern "C" {
int lorac_global_norm(lorac_ctx *ctx, const float *grads, int64_t n, float *norm_out) { return lorac_fail(ctx, LORAC_ERR_LIBRARY, "lorac_global_norm: not implemented"); }
int lorac_adamw_step(lorac_ctx *ctx, float *state, int64_t n, float lr, float beta1, float beta2, float eps, float weight_decay, int32_t step, const float *norm, float max_norm) { return lorac_fail(ctx, LORAC_ERR_LIBRARY, "lorac_adamw_step: not implemented"); }
}
