// Shared by every CUDA kernel file: the context, error reporting, bf16 <-> f32,
// element access for F32 / BF16 arrays.
#pragma once

#include <cuda_bf16.h>
#include <cuda_runtime.h>

#include <cstdint>
#include <string>

#include "../lorac.h"

struct lorac_ctx {
  int device;
  cudaStream_t stream;
  bool stream_ordered_alloc;  // cudaMallocAsync available on this device
  int sm_count;
  int cc_major, cc_minor;
  char gpu_name[256];
  int64_t live_allocations;
  double *reduce_scratch;  // kReduceBlocks partial sums for lorac_global_norm
  std::string last_error;
};

// Partial sums of lorac_global_norm's first pass (one per CUDA block).
constexpr int kReduceBlocks = 1024;

// Records a failure on ctx (or the context-less slot) and returns status.
int lorac_fail(lorac_ctx *ctx, int status, const char *fmt, ...) __attribute__((format(printf, 3, 4)));

// Records a failed CUDA runtime call: "<func>: <call> failed: <message> (<error name>)".
int lorac_cuda_fail(lorac_ctx *ctx, cudaError_t err, const char *func, const char *call);

// Makes ctx's device current for this thread; every entry point starts here.
int lorac_enter(lorac_ctx *ctx, const char *func);

// Device memory for a kernel's workspace, in stream order on ctx's stream
// (from the pool where the device has one); not counted as a live allocation.
cudaError_t lorac_scratch_alloc(lorac_ctx *ctx, size_t bytes, void **ptr);
cudaError_t lorac_scratch_free(lorac_ctx *ctx, void *ptr);

#define LORAC_REQUIRE(ctx, cond, ...)                                     \
  do {                                                                    \
    if (!(cond)) return lorac_fail(ctx, LORAC_ERR_ARGUMENT, __VA_ARGS__); \
  } while (0)

// Checks a cudaError_t; on failure records "<func>: <what> failed: ..." and
// returns from the caller.
#define CUDA_CHECK(ctx, expr, what)                                                \
  do {                                                                            \
    cudaError_t err_ = (expr);                                                    \
    if (err_ != cudaSuccess) return lorac_cuda_fail(ctx, err_, __func__, what);   \
  } while (0)

// Runs a CUDA runtime call, named in the message by its own text.
#define CUDA_TRY(ctx, call) CUDA_CHECK(ctx, call, #call)

// After every kernel launch: a bad configuration shows up here, at once.
#define LAUNCH_CHECK(ctx, kernel) CUDA_CHECK(ctx, cudaGetLastError(), "launching " #kernel)

#define ENTER(ctx)                                       \
  do {                                                   \
    int status_ = lorac_enter(ctx, __func__);            \
    if (status_ != LORAC_OK) return status_;             \
  } while (0)

static inline bool is_float_dtype(int dtype) { return dtype == LORAC_F32 || dtype == LORAC_BF16; }

// Blocks for a grid-stride loop over n elements: enough to fill the GPU, never 0.
static inline unsigned grid_for(int64_t n, int threads) {
  int64_t blocks = (n + threads - 1) / threads;
  if (blocks > 65535) blocks = 65535;
  return (unsigned)(blocks > 0 ? blocks : 1);
}

__device__ __forceinline__ float bf16_bits_to_f32(uint16_t h) { return __uint_as_float((uint32_t)h << 16); }

// Round to nearest even with NaN kept quiet: the same bits as the CPU build's f32_to_bf16.
__device__ __forceinline__ uint16_t f32_to_bf16_bits(float f) {
  uint32_t u = __float_as_uint(f);
  if ((u & 0x7fffffffu) > 0x7f800000u) return (uint16_t)((u >> 16) | 0x40);
  u += 0x7fffu + ((u >> 16) & 1u);
  return (uint16_t)(u >> 16);
}

// Element i of a F32 or BF16 array as f32.
__device__ __forceinline__ float load_f32(const void *p, int dtype, int64_t i) {
  return dtype == LORAC_F32 ? ((const float *)p)[i] : bf16_bits_to_f32(((const uint16_t *)p)[i]);
}

__device__ __forceinline__ void store_f32(void *p, int dtype, int64_t i, float v) {
  if (dtype == LORAC_F32)
    ((float *)p)[i] = v;
  else
    ((uint16_t *)p)[i] = f32_to_bf16_bits(v);
}
