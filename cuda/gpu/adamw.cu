// torch.optim.AdamW on the GPU over one flat state [params | grads | m | v],
// with the global gradient norm and its clipping kept on the device: the norm
// is written to device memory and the step reads it there, so a training step
// never waits for the host.
#include <cmath>

#include "common.cuh"

namespace {

constexpr int kThreads = 256;

// Sum of squares in fp64 over a fixed grid: one partial per block, in a fixed
// order, so the norm is the same on every run.
__global__ void sum_squares_kernel(const float *grads, int64_t n, double *partials) {
  __shared__ double part[kThreads];
  double s = 0.0;
  for (int64_t i = blockIdx.x * (int64_t)kThreads + threadIdx.x; i < n; i += (int64_t)gridDim.x * kThreads) {
    const double g = grads[i];
    s += g * g;
  }
  part[threadIdx.x] = s;
  __syncthreads();
  for (unsigned half = kThreads / 2; half > 0; half /= 2) {
    if (threadIdx.x < half) part[threadIdx.x] += part[threadIdx.x + half];
    __syncthreads();
  }
  if (threadIdx.x == 0) partials[blockIdx.x] = part[0];
}

// norm_out[0] = sqrt(sum of the partials): one block.
__global__ void finish_norm_kernel(const double *partials, int count, float *norm_out) {
  __shared__ double part[kThreads];
  double s = 0.0;
  for (int i = threadIdx.x; i < count; i += kThreads) s += partials[i];
  part[threadIdx.x] = s;
  __syncthreads();
  for (unsigned half = kThreads / 2; half > 0; half /= 2) {
    if (threadIdx.x < half) part[threadIdx.x] += part[threadIdx.x + half];
    __syncthreads();
  }
  if (threadIdx.x == 0) norm_out[0] = (float)sqrt(part[0]);
}

// Scalars of one step, computed on the host in fp64 as torch does in Python
// and as the CPU build does, then applied as fp32.
struct AdamWStep {
  float decay;            // 1 - lr * weight_decay
  float one_minus_beta1;  // the lerp weight
  float beta2, one_minus_beta2;
  float neg_step_size;  // -lr / (1 - beta1^step)
  float bc2_sqrt;       // sqrt(1 - beta2^step)
  float eps;
  float max_norm;
};

// Every product and sum rounded on its own (no FMA), in the CPU build's
// order, so both builds update the state bit for bit alike.
__global__ void adamw_kernel(float *state, int64_t n, AdamWStep s, const float *norm) {
  // torch.nn.utils.clip_grad_norm_: coef = max_norm / (norm + 1e-6), at most 1; a NaN norm stays NaN.
  float clip = 1.0f;
  if (s.max_norm > 0.0f) {
    const float coef = s.max_norm / __fadd_rn(norm[0], 1e-6f);
    clip = coef > 1.0f ? 1.0f : coef;
  }
  float *params = state, *grads = state + n, *m = state + 2 * n, *v = state + 3 * n;
  for (int64_t i = blockIdx.x * (int64_t)kThreads + threadIdx.x; i < n; i += (int64_t)gridDim.x * kThreads) {
    const float g = __fmul_rn(grads[i], clip);  // clip_grad_norm_ scales the stored gradient in place
    const float param = __fmul_rn(params[i], s.decay);
    const float mi = __fadd_rn(m[i], __fmul_rn(s.one_minus_beta1, __fadd_rn(g, -m[i])));  // exp_avg.lerp_(g, 1 - beta1)
    const float vi = __fadd_rn(__fmul_rn(v[i], s.beta2), __fmul_rn(__fmul_rn(s.one_minus_beta2, g), g));
    const float denom = __fadd_rn(sqrtf(vi) / s.bc2_sqrt, s.eps);
    params[i] = __fadd_rn(param, __fmul_rn(s.neg_step_size, mi) / denom);  // param.addcdiv_(m, denom, value=-step_size)
    grads[i] = g;
    m[i] = mi;
    v[i] = vi;
  }
}

unsigned blocks_for(int64_t n) {
  const int64_t b = (n + kThreads * 4 - 1) / (kThreads * 4);
  return (unsigned)(b < 1 ? 1 : (b > kReduceBlocks ? kReduceBlocks : b));
}

}  // namespace

extern "C" {

int lorac_global_norm(lorac_ctx *ctx, const float *grads, int64_t n, float *norm_out) {
  ENTER(ctx);
  LORAC_REQUIRE(ctx, n >= 0, "lorac_global_norm: n = %lld is negative", (long long)n);
  LORAC_REQUIRE(ctx, norm_out && (n == 0 || grads), "lorac_global_norm: grads or norm_out is NULL");
  const unsigned blocks = blocks_for(n);
  sum_squares_kernel<<<blocks, kThreads, 0, ctx->stream>>>(grads, n, ctx->reduce_scratch);
  LAUNCH_CHECK(ctx, sum_squares_kernel);
  finish_norm_kernel<<<1, kThreads, 0, ctx->stream>>>(ctx->reduce_scratch, (int)blocks, norm_out);
  LAUNCH_CHECK(ctx, finish_norm_kernel);
  return LORAC_OK;
}

int lorac_adamw_step(lorac_ctx *ctx, float *state, int64_t n, float lr, float beta1, float beta2, float eps,
                     float weight_decay, int32_t step, const float *norm, float max_norm) {
  ENTER(ctx);
  LORAC_REQUIRE(ctx, n >= 0, "lorac_adamw_step: n = %lld is negative", (long long)n);
  LORAC_REQUIRE(ctx, n == 0 || state, "lorac_adamw_step: state is NULL");
  LORAC_REQUIRE(ctx, step >= 1, "lorac_adamw_step: step is 1-based, got %d", step);
  LORAC_REQUIRE(ctx, beta1 >= 0.0f && beta1 < 1.0f && beta2 >= 0.0f && beta2 < 1.0f,
                "lorac_adamw_step: betas must be in [0, 1), got %g and %g", (double)beta1, (double)beta2);
  LORAC_REQUIRE(ctx, !(max_norm > 0.0f) || norm,
                "lorac_adamw_step: max_norm > 0 needs the gradient norm (norm is NULL); pass lorac_global_norm's output");
  if (n == 0) return LORAC_OK;
  const double bias_correction1 = 1.0 - std::pow((double)beta1, step);
  const double bias_correction2 = 1.0 - std::pow((double)beta2, step);
  const AdamWStep s{(float)(1.0 - (double)lr * weight_decay),
                    (float)(1.0 - beta1),
                    beta2,
                    (float)(1.0 - beta2),
                    (float)(-(double)lr / bias_correction1),
                    (float)std::sqrt(bias_correction2),
                    eps,
                    max_norm};
  adamw_kernel<<<blocks_for(n), kThreads, 0, ctx->stream>>>(state, n, s, norm);
  LAUNCH_CHECK(ctx, adamw_kernel);
  return LORAC_OK;
}

}  // extern "C"
