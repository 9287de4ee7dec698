// RoPE with HF's rotate_half pairing (element i turns with element i + d/2)
// and the angle LlamaRotaryEmbedding uses: (float)position * inv_freq[i]
// rounded to fp32. The backward is the inverse rotation.
//
// cos / sin are tabulated once per call, by position when positions are
// short (packed sequences restart at 0) and by token otherwise (decoding).
#include <algorithm>
#include <cmath>
#include <vector>

#include "common.h"
#include "row_io.h"

namespace {

int rope(lorac_ctx *ctx, const char *fn, int32_t T, int32_t n_heads, int32_t head_dim, const int32_t *positions,
         const float *inv_freq, const void *x, void *y, int32_t dtype, float direction) {
  LORAC_REQUIRE(ctx, T >= 0 && n_heads >= 1 && head_dim >= 2 && head_dim % 2 == 0,
                "%s: bad sizes T = %d, n_heads = %d, head_dim = %d (head_dim must be even)", fn, T, n_heads, head_dim);
  LORAC_REQUIRE(ctx, is_float_dtype(dtype), "%s: dtype must be F32 or BF16, got %d", fn, dtype);
  LORAC_REQUIRE(ctx, (positions && inv_freq && x && y) || T == 0,
                "%s: positions, inv_freq, x and y must not be NULL", fn);
  int32_t max_pos = 0;
  for (int32_t t = 0; t < T; t++) {
    LORAC_REQUIRE(ctx, positions[t] >= 0, "%s: positions[%d] = %d is negative", fn, t, positions[t]);
    max_pos = std::max(max_pos, positions[t]);
  }
  const int half = head_dim / 2;
  const bool by_position = (int64_t)max_pos + 1 <= (int64_t)T;
  const int64_t entries = by_position ? (int64_t)max_pos + 1 : T;
  std::vector<float> cs((size_t)entries * half), sn((size_t)entries * half);
  const int nt = ctx_threads(ctx);
#pragma omp parallel for num_threads(nt) schedule(static)
  for (int64_t e = 0; e < entries; e++) {
    const float pos = (float)(by_position ? e : positions[e]);
    for (int i = 0; i < half; i++) {
      const float a = pos * inv_freq[i];
      cs[e * half + i] = (float)std::cos((double)a);
      sn[e * half + i] = direction * (float)std::sin((double)a);
    }
  }
  const int64_t width = (int64_t)n_heads * head_dim;
#pragma omp parallel num_threads(nt)
  {
    std::vector<float> row(width);
#pragma omp for schedule(static)
    for (int32_t t = 0; t < T; t++) {
      const int64_t e = by_position ? positions[t] : t;
      const float *c = cs.data() + e * half, *s = sn.data() + e * half;
      load_row(x, dtype, t * width, (int)width, row.data());
      for (int32_t h = 0; h < n_heads; h++) {
        float *v = row.data() + (int64_t)h * head_dim;
        for (int i = 0; i < half; i++) {
          const float a = v[i], b = v[i + half];
          v[i] = a * c[i] - b * s[i];
          v[i + half] = b * c[i] + a * s[i];
        }
      }
      store_row(y, dtype, t * width, (int)width, row.data());
    }
  }
  return LORAC_OK;
}

}  // namespace

extern "C" {

int lorac_rope_forward(lorac_ctx *ctx, int32_t T, int32_t n_heads, int32_t head_dim, const int32_t *positions,
                       const float *inv_freq, const void *x, void *y, int32_t dtype) {
  LORAC_TRY(ctx, return rope(ctx, "lorac_rope_forward", T, n_heads, head_dim, positions, inv_freq, x, y, dtype, 1.0f);)
}

int lorac_rope_backward(lorac_ctx *ctx, int32_t T, int32_t n_heads, int32_t head_dim, const int32_t *positions,
                        const float *inv_freq, const void *dy, void *dx, int32_t dtype) {
  LORAC_TRY(ctx,
            return rope(ctx, "lorac_rope_backward", T, n_heads, head_dim, positions, inv_freq, dy, dx, dtype, -1.0f);)
}

}  // extern "C"
