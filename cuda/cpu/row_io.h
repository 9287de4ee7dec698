// Moving rows of F32 / BF16 activations in and out of f32 working buffers,
// with the dtype test hoisted out of the element loop.
#pragma once

#include "common.h"

// dst[0..n) = elements offset .. offset + n - 1 of src (F32 or BF16), times scale.
static inline void load_row(const void *src, int dtype, int64_t offset, int n, float *dst,
                            float scale = 1.0f) {
  if (dtype == LORAC_F32) {
    const float *s = (const float *)src + offset;
    for (int i = 0; i < n; i++) dst[i] = s[i] * scale;
  } else {
    const uint16_t *s = (const uint16_t *)src + offset;
    for (int i = 0; i < n; i++) dst[i] = bf16_to_f32(s[i]) * scale;
  }
}

// Elements offset .. offset + n - 1 of dst (F32 or BF16) = src[0..n) times
// scale, or += when accumulate.
static inline void store_row(void *dst, int dtype, int64_t offset, int n, const float *src,
                             float scale = 1.0f, bool accumulate = false) {
  if (dtype == LORAC_F32) {
    float *d = (float *)dst + offset;
    if (accumulate)
      for (int i = 0; i < n; i++) d[i] += src[i] * scale;
    else
      for (int i = 0; i < n; i++) d[i] = src[i] * scale;
  } else {
    uint16_t *d = (uint16_t *)dst + offset;
    if (accumulate)
      for (int i = 0; i < n; i++) d[i] = f32_to_bf16(bf16_to_f32(d[i]) + src[i] * scale);
    else
      for (int i = 0; i < n; i++) d[i] = f32_to_bf16(src[i] * scale);
  }
}
