// y = alpha * a + beta * b: the residual add, a scale, a sum of gradients.
#include <algorithm>

#include "common.h"
#include "row_io.h"

namespace {

constexpr int kChunk = 1024;

int add_scaled(lorac_ctx *ctx, int64_t n, float alpha, const void *a, int32_t a_dtype, float beta, const void *b,
               int32_t b_dtype, void *y, int32_t y_dtype) {
  const char *fn = "lorac_add_scaled";
  const bool use_b = b != nullptr && beta != 0.0f;
  LORAC_REQUIRE(ctx, n >= 0, "%s: n must not be negative, got %lld", fn, (long long)n);
  LORAC_REQUIRE(ctx, is_float_dtype(a_dtype) && is_float_dtype(y_dtype) && (!use_b || is_float_dtype(b_dtype)),
                "%s: dtypes must be F32 or BF16 (got a %d, b %d, y %d)", fn, a_dtype, b_dtype, y_dtype);
  LORAC_REQUIRE(ctx, (a && y) || n == 0, "%s: a and y must not be NULL", fn);
  LORAC_REQUIRE(ctx, b || beta == 0.0f, "%s: b is NULL but beta = %g (pass beta = 0 or a tensor)", fn, beta);
  const int64_t chunks = (n + kChunk - 1) / kChunk;
#pragma omp parallel for num_threads(ctx_threads(ctx)) schedule(static)
  for (int64_t c = 0; c < chunks; c++) {
    float va[kChunk], vb[kChunk];
    const int len = (int)std::min<int64_t>(kChunk, n - c * kChunk);
    load_row(a, a_dtype, c * kChunk, len, va);
    if (use_b) {
      load_row(b, b_dtype, c * kChunk, len, vb);
      for (int i = 0; i < len; i++) va[i] = alpha * va[i] + beta * vb[i];
    } else {
      for (int i = 0; i < len; i++) va[i] *= alpha;
    }
    store_row(y, y_dtype, c * kChunk, len, va);
  }
  return LORAC_OK;
}

}  // namespace

extern "C" int lorac_add_scaled(lorac_ctx *ctx, int64_t n, float alpha, const void *a, int32_t a_dtype, float beta,
                                const void *b, int32_t b_dtype, void *y, int32_t y_dtype) {
  LORAC_TRY(ctx, return add_scaled(ctx, n, alpha, a, a_dtype, beta, b, b_dtype, y, y_dtype);)
}
