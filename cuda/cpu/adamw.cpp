// The optimiser on the CPU: the global gradient norm and one AdamW step over
// the flat state [params | grads | m | v], following torch.optim.AdamW's
// single-tensor (foreach=False) update and clip_grad_norm_'s in-place clipping.
#include <algorithm>
#include <cmath>
#include <vector>

#include "common.h"

namespace {

// Fixed-size chunks summed in a fixed order: the norm is the same for every
// thread count.
constexpr int64_t kNormChunk = 1 << 16;

// Σ x² over one chunk in double, 8 interleaved partial sums.
double sum_squares(const float *x, int64_t n) {
  double acc[8] = {};
  int64_t i = 0;
  for (; i + 8 <= n; i += 8)
    for (int u = 0; u < 8; u++) acc[u] += (double)x[i + u] * (double)x[i + u];
  for (; i < n; i++) acc[0] += (double)x[i] * (double)x[i];
  return ((acc[0] + acc[4]) + (acc[1] + acc[5])) + ((acc[2] + acc[6]) + (acc[3] + acc[7]));
}

float global_norm(lorac_ctx *ctx, const float *grads, int64_t n) {
  const int64_t chunks = (n + kNormChunk - 1) / kNormChunk;
  std::vector<double> partial((size_t)chunks);
#pragma omp parallel for num_threads(ctx_threads(ctx)) schedule(static)
  for (int64_t c = 0; c < chunks; c++) {
    const int64_t start = c * kNormChunk;
    partial[c] = sum_squares(grads + start, std::min(kNormChunk, n - start));
  }
  double total = 0.0;
  for (double p : partial) total += p;
  return (float)std::sqrt(total);
}

void adamw_step(lorac_ctx *ctx, float *state, int64_t n, double lr, double beta1, double beta2, double eps,
                double weight_decay, int step, float clip) {
  float *p = state, *g = state + n, *m = state + 2 * n, *v = state + 3 * n;
  // torch computes these in Python floats (double) and applies them as fp32 scalars.
  const float decay = (float)(1.0 - lr * weight_decay);
  const float one_minus_beta1 = (float)(1.0 - beta1);
  const float b2 = (float)beta2, one_minus_beta2 = (float)(1.0 - beta2);
  const double bias_correction1 = 1.0 - std::pow(beta1, step);
  const double bias_correction2 = 1.0 - std::pow(beta2, step);
  const float neg_step_size = (float)(-lr / bias_correction1);
  const float bc2_sqrt = (float)std::sqrt(bias_correction2);
  const float epsf = (float)eps;
#pragma omp parallel for simd num_threads(ctx_threads(ctx)) schedule(static)
  for (int64_t i = 0; i < n; i++) {
    const float grad = g[i] * clip;  // clip_grad_norm_ scales the stored gradient in place
    g[i] = grad;
    const float param = p[i] * decay;
    const float mi = m[i] + one_minus_beta1 * (grad - m[i]);  // exp_avg.lerp_(grad, 1 - beta1)
    const float vi = v[i] * b2 + one_minus_beta2 * grad * grad;
    const float denom = std::sqrt(vi) / bc2_sqrt + epsf;
    m[i] = mi;
    v[i] = vi;
    p[i] = param + neg_step_size * mi / denom;  // param.addcdiv_(m, denom, value=-step_size)
  }
}

}  // namespace

extern "C" {

int lorac_global_norm(lorac_ctx *ctx, const float *grads, int64_t n, float *norm_out) {
  LORAC_REQUIRE(ctx, ctx, "lorac_global_norm: ctx is NULL");
  LORAC_REQUIRE(ctx, n >= 0, "lorac_global_norm: n = %lld is negative", (long long)n);
  LORAC_REQUIRE(ctx, norm_out && (n == 0 || grads), "lorac_global_norm: grads or norm_out is NULL");
  LORAC_TRY(ctx, { *norm_out = global_norm(ctx, grads, n); })
  return LORAC_OK;
}

int lorac_adamw_step(lorac_ctx *ctx, float *state, int64_t n, float lr, float beta1, float beta2, float eps,
                     float weight_decay, int32_t step, const float *norm, float max_norm) {
  LORAC_REQUIRE(ctx, ctx, "lorac_adamw_step: ctx is NULL");
  LORAC_REQUIRE(ctx, n >= 0, "lorac_adamw_step: n = %lld is negative", (long long)n);
  LORAC_REQUIRE(ctx, n == 0 || state, "lorac_adamw_step: state is NULL");
  LORAC_REQUIRE(ctx, step >= 1, "lorac_adamw_step: step is 1-based, got %d", step);
  LORAC_REQUIRE(ctx, beta1 >= 0.0f && beta1 < 1.0f && beta2 >= 0.0f && beta2 < 1.0f,
                "lorac_adamw_step: betas must be in [0, 1), got %g and %g", (double)beta1, (double)beta2);
  LORAC_REQUIRE(ctx, !(max_norm > 0.0f) || norm,
                "lorac_adamw_step: max_norm > 0 needs the gradient norm (norm is NULL); pass lorac_global_norm's output");
  // torch.nn.utils.clip_grad_norm_: coef = max_norm / (norm + 1e-6), clamped to at most 1.
  // A NaN norm makes NaN gradients, as in torch.
  float clip = 1.0f;
  if (max_norm > 0.0f) {
    const float coef = max_norm / (norm[0] + 1e-6f);
    clip = coef > 1.0f ? 1.0f : coef;
  }
  LORAC_TRY(ctx, { adamw_step(ctx, state, n, lr, beta1, beta2, eps, weight_decay, step, clip); })
  return LORAC_OK;
}

}  // extern "C"
