// Shared by every CPU kernel file: the context, error reporting, bf16 <-> f32.
#pragma once

#include <cstdint>
#include <cstring>
#include <string>

#include "../lorac.h"

struct lorac_ctx {
  int num_threads;
  bool compute_bf16;  // lorac_set_compute_dtype(LORAC_BF16)
  int64_t live_allocations;
  std::string last_error;
};

// Records a failure on ctx (or the context-less slot) and returns status.
int lorac_fail(lorac_ctx *ctx, int status, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

// Guards every entry point: a C++ exception must never cross the C ABI.
#define LORAC_TRY(ctx, body)                                                   \
  try {                                                                        \
    body                                                                       \
  } catch (const std::bad_alloc &) {                                           \
    return lorac_fail(ctx, LORAC_ERR_MEMORY, "%s: out of host memory", __func__); \
  } catch (const std::exception &e) {                                          \
    return lorac_fail(ctx, LORAC_ERR_ARGUMENT, "%s: %s", __func__, e.what());  \
  }

#define LORAC_REQUIRE(ctx, cond, ...)                                          \
  do {                                                                         \
    if (!(cond)) return lorac_fail(ctx, LORAC_ERR_ARGUMENT, __VA_ARGS__);      \
  } while (0)

static inline float bf16_to_f32(uint16_t h) {
  uint32_t u = (uint32_t)h << 16;
  float f;
  std::memcpy(&f, &u, 4);
  return f;
}

// Round to nearest even, NaN kept quiet (as torch and CUDA's __float2bfloat16).
static inline uint16_t f32_to_bf16(float f) {
  uint32_t u;
  std::memcpy(&u, &f, 4);
  if ((u & 0x7fffffffu) > 0x7f800000u) return (uint16_t)((u >> 16) | 0x40);
  u += 0x7fffu + ((u >> 16) & 1u);
  return (uint16_t)(u >> 16);
}

// Element i of a F32 or BF16 array as f32.
static inline float load_f32(const void *p, int dtype, int64_t i) {
  return dtype == LORAC_F32 ? ((const float *)p)[i] : bf16_to_f32(((const uint16_t *)p)[i]);
}

static inline void store_f32(void *p, int dtype, int64_t i, float v) {
  if (dtype == LORAC_F32)
    ((float *)p)[i] = v;
  else
    ((uint16_t *)p)[i] = f32_to_bf16(v);
}

static inline bool is_float_dtype(int dtype) { return dtype == LORAC_F32 || dtype == LORAC_BF16; }

// The OpenMP thread count of a context.
static inline int ctx_threads(const lorac_ctx *ctx) { return ctx->num_threads; }
