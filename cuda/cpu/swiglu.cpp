// SwiGLU, the Llama MLP's gate: out = silu(gate) * up, with its gradients.
// Elementwise, in chunks converted to f32 so any dtype mix stays simple.
#include <algorithm>
#include <cmath>

#include "common.h"
#include "row_io.h"

namespace {

constexpr int kChunk = 1024;

inline float sigmoid(float g) { return 1.0f / (1.0f + std::exp(-g)); }

int check(lorac_ctx *ctx, const char *fn, int64_t n, int32_t dtype, bool pointers) {
  LORAC_REQUIRE(ctx, n >= 0, "%s: n must not be negative, got %lld", fn, (long long)n);
  LORAC_REQUIRE(ctx, is_float_dtype(dtype), "%s: dtype must be F32 or BF16, got %d", fn, dtype);
  LORAC_REQUIRE(ctx, pointers || n == 0, "%s: a tensor pointer is NULL", fn);
  return LORAC_OK;
}

int forward(lorac_ctx *ctx, int64_t n, const void *gate, const void *up, void *out, int32_t dtype) {
  if (int st = check(ctx, "lorac_swiglu_forward", n, dtype, gate && up && out)) return st;
  const int64_t chunks = (n + kChunk - 1) / kChunk;
#pragma omp parallel for num_threads(ctx_threads(ctx)) schedule(static)
  for (int64_t c = 0; c < chunks; c++) {
    float g[kChunk], u[kChunk];
    const int len = (int)std::min<int64_t>(kChunk, n - c * kChunk);
    load_row(gate, dtype, c * kChunk, len, g);
    load_row(up, dtype, c * kChunk, len, u);
    for (int i = 0; i < len; i++) g[i] = g[i] * sigmoid(g[i]) * u[i];
    store_row(out, dtype, c * kChunk, len, g);
  }
  return LORAC_OK;
}

int backward(lorac_ctx *ctx, int64_t n, const void *gate, const void *up, const void *dout, void *dgate, void *dup,
             int32_t dtype) {
  if (int st = check(ctx, "lorac_swiglu_backward", n, dtype, gate && up && dout && dgate && dup)) return st;
  const int64_t chunks = (n + kChunk - 1) / kChunk;
#pragma omp parallel for num_threads(ctx_threads(ctx)) schedule(static)
  for (int64_t c = 0; c < chunks; c++) {
    float g[kChunk], u[kChunk], d[kChunk];
    const int len = (int)std::min<int64_t>(kChunk, n - c * kChunk);
    load_row(gate, dtype, c * kChunk, len, g);
    load_row(up, dtype, c * kChunk, len, u);
    load_row(dout, dtype, c * kChunk, len, d);
    for (int i = 0; i < len; i++) {
      const float s = sigmoid(g[i]);
      const float dg = d[i] * u[i] * s * (1.0f + g[i] * (1.0f - s));
      u[i] = d[i] * g[i] * s;  // dup = dout * silu(gate)
      g[i] = dg;
    }
    store_row(dgate, dtype, c * kChunk, len, g);
    store_row(dup, dtype, c * kChunk, len, u);
  }
  return LORAC_OK;
}

}  // namespace

extern "C" {

int lorac_swiglu_forward(lorac_ctx *ctx, int64_t n, const void *gate, const void *up, void *out, int32_t dtype) {
  LORAC_TRY(ctx, return forward(ctx, n, gate, up, out, dtype);)
}

int lorac_swiglu_backward(lorac_ctx *ctx, int64_t n, const void *gate, const void *up, const void *dout, void *dgate,
                          void *dup, int32_t dtype) {
  LORAC_TRY(ctx, return backward(ctx, n, gate, up, dout, dgate, dup, dtype);)
}

}  // extern "C"
