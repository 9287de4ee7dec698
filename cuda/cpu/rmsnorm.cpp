// RMSNorm as LlamaRMSNorm computes it in fp32: t = x * rsqrt(mean(x^2) + eps),
// y = weight * t. The weight is frozen, so the backward is the input
// gradient only, from the rstd the forward kept.
#include <cmath>
#include <vector>

#include "common.h"
#include "row_io.h"

namespace {

int check(lorac_ctx *ctx, const char *fn, int32_t rows, int32_t dim, const void *x, int32_t x_dtype,
          const void *weight, int32_t w_dtype, int32_t out_dtype) {
  LORAC_REQUIRE(ctx, rows >= 0 && dim >= 1, "%s: bad sizes rows = %d, dim = %d", fn, rows, dim);
  LORAC_REQUIRE(ctx, is_float_dtype(x_dtype) && is_float_dtype(w_dtype) && is_float_dtype(out_dtype),
                "%s: dtypes must be F32 or BF16 (got x %d, weight %d, out %d)", fn, x_dtype, w_dtype, out_dtype);
  LORAC_REQUIRE(ctx, (x && weight) || rows == 0, "%s: x and weight must not be NULL", fn);
  return LORAC_OK;
}

int forward(lorac_ctx *ctx, int32_t rows, int32_t dim, const void *x, int32_t x_dtype, const void *weight,
            int32_t w_dtype, float eps, void *y, int32_t y_dtype, float *rstd) {
  if (int st = check(ctx, "lorac_rmsnorm_forward", rows, dim, x, x_dtype, weight, w_dtype, y_dtype)) return st;
  LORAC_REQUIRE(ctx, y || rows == 0, "lorac_rmsnorm_forward: y must not be NULL");
  std::vector<float> w(dim);
  if (rows > 0) load_row(weight, w_dtype, 0, dim, w.data());
#pragma omp parallel num_threads(ctx_threads(ctx))
  {
    std::vector<float> row(dim);
#pragma omp for schedule(static)
    for (int32_t r = 0; r < rows; r++) {
      float *xr = row.data();
      load_row(x, x_dtype, (int64_t)r * dim, dim, xr);
      float ss = 0.0f;
#pragma omp simd reduction(+ : ss)
      for (int32_t i = 0; i < dim; i++) ss += xr[i] * xr[i];
      const float rs = 1.0f / std::sqrt(ss / (float)dim + eps);
      for (int32_t i = 0; i < dim; i++) xr[i] = w[i] * (xr[i] * rs);
      store_row(y, y_dtype, (int64_t)r * dim, dim, xr);
      if (rstd) rstd[r] = rs;
    }
  }
  return LORAC_OK;
}

int backward(lorac_ctx *ctx, int32_t rows, int32_t dim, const void *x, int32_t x_dtype, const void *weight,
             int32_t w_dtype, const float *rstd, const void *dy, int32_t dy_dtype, void *dx, int32_t dx_dtype,
             int32_t accumulate) {
  const char *fn = "lorac_rmsnorm_backward";
  if (int st = check(ctx, fn, rows, dim, x, x_dtype, weight, w_dtype, dx_dtype)) return st;
  LORAC_REQUIRE(ctx, is_float_dtype(dy_dtype), "%s: dy dtype must be F32 or BF16, got %d", fn, dy_dtype);
  LORAC_REQUIRE(ctx, (rstd && dy && dx) || rows == 0, "%s: rstd, dy and dx must not be NULL", fn);
  std::vector<float> w(dim);
  if (rows > 0) load_row(weight, w_dtype, 0, dim, w.data());
#pragma omp parallel num_threads(ctx_threads(ctx))
  {
    std::vector<float> xs(dim), gs(dim);
#pragma omp for schedule(static)
    for (int32_t r = 0; r < rows; r++) {
      float *xr = xs.data(), *g = gs.data();
      load_row(x, x_dtype, (int64_t)r * dim, dim, xr);
      load_row(dy, dy_dtype, (int64_t)r * dim, dim, g);
      float dot = 0.0f;  // sum of (w dy) x
#pragma omp simd reduction(+ : dot)
      for (int32_t i = 0; i < dim; i++) {
        g[i] *= w[i];
        dot += g[i] * xr[i];
      }
      const float rs = rstd[r], c = rs * rs * rs * dot / (float)dim;
      for (int32_t i = 0; i < dim; i++) g[i] = rs * g[i] - c * xr[i];
      store_row(dx, dx_dtype, (int64_t)r * dim, dim, g, 1.0f, accumulate != 0);
    }
  }
  return LORAC_OK;
}

}  // namespace

extern "C" {

int lorac_rmsnorm_forward(lorac_ctx *ctx, int32_t rows, int32_t dim, const void *x, int32_t x_dtype,
                          const void *weight, int32_t w_dtype, float eps, void *y, int32_t y_dtype, float *rstd) {
  LORAC_TRY(ctx, return forward(ctx, rows, dim, x, x_dtype, weight, w_dtype, eps, y, y_dtype, rstd);)
}

int lorac_rmsnorm_backward(lorac_ctx *ctx, int32_t rows, int32_t dim, const void *x, int32_t x_dtype,
                           const void *weight, int32_t w_dtype, const float *rstd, const void *dy, int32_t dy_dtype,
                           void *dx, int32_t dx_dtype, int32_t accumulate) {
  LORAC_TRY(ctx, return backward(ctx, rows, dim, x, x_dtype, weight, w_dtype, rstd, dy, dy_dtype, dx, dx_dtype,
                                 accumulate);)
}

}  // extern "C"
