// RMSNorm as LlamaRMSNorm computes it in fp32: t = x * rsqrt(mean(x^2) + eps),
// y = weight * t, one block per row. The weight is frozen, so the backward is
// the input gradient only, from the rstd the forward kept.
#include <algorithm>

#include "reduce.cuh"

namespace {

constexpr int kThreads = 256;

__global__ void rmsnorm_forward_kernel(int rows, int dim, const void *x, int x_dtype, const void *weight, int w_dtype,
                                       float eps, void *y, int y_dtype, float *rstd) {
  __shared__ float scratch[32];
  for (int r = blockIdx.x; r < rows; r += gridDim.x) {
    const int64_t base = (int64_t)r * dim;
    float ss = 0.0f;
    for (int i = threadIdx.x; i < dim; i += kThreads) {
      const float v = load_f32(x, x_dtype, base + i);
      ss += v * v;
    }
    ss = block_sum(ss, scratch);
    const float rs = 1.0f / sqrtf(ss / (float)dim + eps);
    for (int i = threadIdx.x; i < dim; i += kThreads)
      store_f32(y, y_dtype, base + i, __fmul_rn(load_f32(weight, w_dtype, i), __fmul_rn(load_f32(x, x_dtype, base + i), rs)));
    if (rstd && threadIdx.x == 0) rstd[r] = rs;
  }
}

// dx (+)= rs * (w dy) - rs^3 / dim * x * sum((w dy) x).
__global__ void rmsnorm_backward_kernel(int rows, int dim, const void *x, int x_dtype, const void *weight, int w_dtype,
                                        const float *rstd, const void *dy, int dy_dtype, void *dx, int dx_dtype,
                                        int accumulate) {
  __shared__ float scratch[32];
  for (int r = blockIdx.x; r < rows; r += gridDim.x) {
    const int64_t base = (int64_t)r * dim;
    float dot = 0.0f;
    for (int i = threadIdx.x; i < dim; i += kThreads)
      dot += __fmul_rn(load_f32(dy, dy_dtype, base + i), load_f32(weight, w_dtype, i)) * load_f32(x, x_dtype, base + i);
    dot = block_sum(dot, scratch);
    const float rs = rstd[r], c = rs * rs * rs * dot / (float)dim;
    for (int i = threadIdx.x; i < dim; i += kThreads) {
      const float g = __fmul_rn(load_f32(dy, dy_dtype, base + i), load_f32(weight, w_dtype, i));
      float v = __fadd_rn(__fmul_rn(rs, g), -__fmul_rn(c, load_f32(x, x_dtype, base + i)));
      if (accumulate) v = __fadd_rn(load_f32(dx, dx_dtype, base + i), v);
      store_f32(dx, dx_dtype, base + i, v);
    }
  }
}

int check(lorac_ctx *ctx, const char *fn, int32_t rows, int32_t dim, const void *x, int32_t x_dtype,
          const void *weight, int32_t w_dtype, int32_t out_dtype) {
  LORAC_REQUIRE(ctx, rows >= 0 && dim >= 1, "%s: bad sizes rows = %d, dim = %d", fn, rows, dim);
  LORAC_REQUIRE(ctx, is_float_dtype(x_dtype) && is_float_dtype(w_dtype) && is_float_dtype(out_dtype),
                "%s: dtypes must be F32 or BF16 (got x %d, weight %d, out %d)", fn, x_dtype, w_dtype, out_dtype);
  LORAC_REQUIRE(ctx, (x && weight) || rows == 0, "%s: x and weight must not be NULL", fn);
  return LORAC_OK;
}

}  // namespace

extern "C" {

int lorac_rmsnorm_forward(lorac_ctx *ctx, int32_t rows, int32_t dim, const void *x, int32_t x_dtype,
                          const void *weight, int32_t w_dtype, float eps, void *y, int32_t y_dtype, float *rstd) {
  ENTER(ctx);
  if (int st = check(ctx, "lorac_rmsnorm_forward", rows, dim, x, x_dtype, weight, w_dtype, y_dtype)) return st;
  LORAC_REQUIRE(ctx, y || rows == 0, "lorac_rmsnorm_forward: y must not be NULL");
  if (rows == 0) return LORAC_OK;
  rmsnorm_forward_kernel<<<(unsigned)std::min(rows, 65535), kThreads, 0, ctx->stream>>>(rows, dim, x, x_dtype, weight,
                                                                                        w_dtype, eps, y, y_dtype, rstd);
  LAUNCH_CHECK(ctx, rmsnorm_forward_kernel);
  return LORAC_OK;
}

int lorac_rmsnorm_backward(lorac_ctx *ctx, int32_t rows, int32_t dim, const void *x, int32_t x_dtype,
                           const void *weight, int32_t w_dtype, const float *rstd, const void *dy, int32_t dy_dtype,
                           void *dx, int32_t dx_dtype, int32_t accumulate) {
  const char *fn = "lorac_rmsnorm_backward";
  ENTER(ctx);
  if (int st = check(ctx, fn, rows, dim, x, x_dtype, weight, w_dtype, dx_dtype)) return st;
  LORAC_REQUIRE(ctx, is_float_dtype(dy_dtype), "%s: dy dtype must be F32 or BF16, got %d", fn, dy_dtype);
  LORAC_REQUIRE(ctx, (rstd && dy && dx) || rows == 0, "%s: rstd, dy and dx must not be NULL", fn);
  if (rows == 0) return LORAC_OK;
  rmsnorm_backward_kernel<<<(unsigned)std::min(rows, 65535), kThreads, 0, ctx->stream>>>(
      rows, dim, x, x_dtype, weight, w_dtype, rstd, dy, dy_dtype, dx, dx_dtype, accumulate);
  LAUNCH_CHECK(ctx, rmsnorm_backward_kernel);
  return LORAC_OK;
}

}  // extern "C"
