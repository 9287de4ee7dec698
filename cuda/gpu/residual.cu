// y = alpha * a + beta * b: the residual add, a scale, a sum of gradients.
// Products and the sum are rounded one by one, as the CPU build rounds them.
#include "common.cuh"

namespace {

__global__ void add_scaled_kernel(int64_t n, float alpha, const void *a, int a_dtype, float beta, const void *b,
                                  int b_dtype, void *y, int y_dtype) {
  for (int64_t i = blockIdx.x * (int64_t)blockDim.x + threadIdx.x; i < n; i += (int64_t)gridDim.x * blockDim.x) {
    const float va = load_f32(a, a_dtype, i);
    const float v = b ? __fadd_rn(__fmul_rn(alpha, va), __fmul_rn(beta, load_f32(b, b_dtype, i))) : __fmul_rn(va, alpha);
    store_f32(y, y_dtype, i, v);
  }
}

}  // namespace

extern "C" int lorac_add_scaled(lorac_ctx *ctx, int64_t n, float alpha, const void *a, int32_t a_dtype, float beta,
                                const void *b, int32_t b_dtype, void *y, int32_t y_dtype) {
  const char *fn = "lorac_add_scaled";
  ENTER(ctx);
  const bool use_b = b != nullptr && beta != 0.0f;
  LORAC_REQUIRE(ctx, n >= 0, "%s: n must not be negative, got %lld", fn, (long long)n);
  LORAC_REQUIRE(ctx, is_float_dtype(a_dtype) && is_float_dtype(y_dtype) && (!use_b || is_float_dtype(b_dtype)),
                "%s: dtypes must be F32 or BF16 (got a %d, b %d, y %d)", fn, a_dtype, b_dtype, y_dtype);
  LORAC_REQUIRE(ctx, (a && y) || n == 0, "%s: a and y must not be NULL", fn);
  LORAC_REQUIRE(ctx, b || beta == 0.0f, "%s: b is NULL but beta = %g (pass beta = 0 or a tensor)", fn, beta);
  if (n == 0) return LORAC_OK;
  add_scaled_kernel<<<grid_for(n, 256), 256, 0, ctx->stream>>>(n, alpha, a, a_dtype, beta, use_b ? b : nullptr,
                                                               b_dtype, y, y_dtype);
  LAUNCH_CHECK(ctx, add_scaled_kernel);
  return LORAC_OK;
}
