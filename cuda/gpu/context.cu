// The CUDA build's context, memory, copies and conversions: one device, one
// stream per context; everything but the host copies is asynchronous on it.
#include <cstdarg>
#include <cstdio>
#include <new>

#include "common.cuh"

static thread_local std::string global_error;

int lorac_fail(lorac_ctx *ctx, int status, const char *fmt, ...) {
  char buf[1024];
  va_list args;
  va_start(args, fmt);
  vsnprintf(buf, sizeof buf, fmt, args);
  va_end(args);
  try {
    (ctx ? ctx->last_error : global_error) = buf;
  } catch (...) {
    // Out of host memory while reporting: the status still says what failed.
  }
  return status;
}

int lorac_cuda_fail(lorac_ctx *ctx, cudaError_t err, const char *func, const char *call) {
  int status = err == cudaErrorMemoryAllocation ? LORAC_ERR_MEMORY : LORAC_ERR_DEVICE;
  cudaGetLastError();  // clear a non-sticky error so the next launch check reports its own
  return lorac_fail(ctx, status, "%s: %s failed: %s (%s)", func, call, cudaGetErrorString(err),
                    cudaGetErrorName(err));
}

int lorac_enter(lorac_ctx *ctx, const char *func) {
  if (!ctx) return lorac_fail(nullptr, LORAC_ERR_ARGUMENT, "%s: ctx is NULL", func);
  cudaError_t err = cudaSetDevice(ctx->device);
  if (err != cudaSuccess) return lorac_cuda_fail(ctx, err, func, "cudaSetDevice");
  return LORAC_OK;
}

cudaError_t lorac_scratch_alloc(lorac_ctx *ctx, size_t bytes, void **ptr) {
  return ctx->stream_ordered_alloc ? cudaMallocAsync(ptr, bytes, ctx->stream) : cudaMalloc(ptr, bytes);
}

cudaError_t lorac_scratch_free(lorac_ctx *ctx, void *ptr) {
  return ctx->stream_ordered_alloc ? cudaFreeAsync(ptr, ctx->stream) : cudaFree(ptr);
}

// Why no GPU can be used, split into a missing driver and a missing device,
// so the user knows whether to install a driver or look for the card.
static int no_gpu(const char *func, cudaError_t err) {
  cudaGetLastError();
  if (err == cudaErrorNoDevice || err == cudaSuccess) {
    return lorac_fail(nullptr, LORAC_ERR_LIBRARY, "device: %s: the NVIDIA driver sees no CUDA GPU (%s)", func,
                      err == cudaSuccess ? "device count 0" : cudaGetErrorName(err));
  }
  if (err == cudaErrorInsufficientDriver || err == cudaErrorNotSupported || err == cudaErrorCompatNotSupportedOnDevice ||
      err == cudaErrorSystemDriverMismatch || err == cudaErrorInitializationError) {
    return lorac_fail(nullptr, LORAC_ERR_LIBRARY,
                      "driver: %s: no usable NVIDIA driver (libcuda.so.1 is missing or older than the CUDA %d.%d "
                      "runtime this library was built with): %s (%s)",
                      func, CUDART_VERSION / 1000, (CUDART_VERSION % 1000) / 10, cudaGetErrorString(err),
                      cudaGetErrorName(err));
  }
  return lorac_fail(nullptr, LORAC_ERR_DEVICE, "device: %s: cudaGetDeviceCount failed: %s (%s)", func,
                    cudaGetErrorString(err), cudaGetErrorName(err));
}

// Element-wise F32 <-> BF16 (or same-type copy) with the CPU build's rounding.
__global__ void convert_kernel(const void *src, int src_dtype, void *dst, int dst_dtype, int64_t n) {
  for (int64_t i = blockIdx.x * (int64_t)blockDim.x + threadIdx.x; i < n; i += (int64_t)gridDim.x * blockDim.x)
    store_f32(dst, dst_dtype, i, load_f32(src, src_dtype, i));
}

// Binds device_index, reads its properties, creates the stream and the
// reduction scratch; on failure names the call that failed.
static cudaError_t init_device(lorac_ctx *ctx, int device_index, const char **failed) {
  cudaError_t err;
#define STEP(call)                   \
  if ((err = (call)) != cudaSuccess) { \
    *failed = #call;                 \
    return err;                      \
  }
  cudaDeviceProp prop;
  int pools = 0;
  ctx->device = device_index;
  STEP(cudaSetDevice(device_index));
  STEP(cudaGetDeviceProperties(&prop, device_index));
  STEP(cudaDeviceGetAttribute(&pools, cudaDevAttrMemoryPoolsSupported, device_index));
  STEP(cudaStreamCreateWithFlags(&ctx->stream, cudaStreamNonBlocking));
  STEP(cudaMalloc((void **)&ctx->reduce_scratch, kReduceBlocks * sizeof(double)));
#undef STEP
  snprintf(ctx->gpu_name, sizeof ctx->gpu_name, "%s", prop.name);
  ctx->sm_count = prop.multiProcessorCount;
  ctx->cc_major = prop.major;
  ctx->cc_minor = prop.minor;
  ctx->stream_ordered_alloc = pools != 0;
  if (ctx->stream_ordered_alloc) {
    // Keep freed blocks in the pool: training allocates and frees the same sizes every step.
    cudaMemPool_t pool;
    uint64_t keep = UINT64_MAX;
    if (cudaDeviceGetDefaultMemPool(&pool, device_index) != cudaSuccess ||
        cudaMemPoolSetAttribute(pool, cudaMemPoolAttrReleaseThreshold, &keep) != cudaSuccess) {
      cudaGetLastError();  // only a missed optimisation: clear it for the next launch check
    }
  }
  return cudaSuccess;
}

extern "C" {

int lorac_abi_version(void) { return LORAC_ABI_VERSION; }

int lorac_device_count(int32_t *count_out) {
  if (!count_out) return lorac_fail(nullptr, LORAC_ERR_ARGUMENT, "lorac_device_count: count_out is NULL");
  *count_out = 0;
  int count = 0;
  cudaError_t err = cudaGetDeviceCount(&count);
  if (err != cudaSuccess || count == 0) return no_gpu("lorac_device_count", err);
  *count_out = count;
  return LORAC_OK;
}

int lorac_ctx_create(int32_t device_index, int32_t num_threads, lorac_ctx **ctx_out) {
  (void)num_threads;
  if (!ctx_out) return lorac_fail(nullptr, LORAC_ERR_ARGUMENT, "lorac_ctx_create: ctx_out is NULL");
  *ctx_out = nullptr;
  int count = 0;
  cudaError_t err = cudaGetDeviceCount(&count);
  if (err != cudaSuccess || count == 0) return no_gpu("lorac_ctx_create", err);
  if (device_index < 0 || device_index >= count) {
    return lorac_fail(nullptr, LORAC_ERR_ARGUMENT, "lorac_ctx_create: device %d does not exist (%d GPUs: 0..%d)",
                      device_index, count, count - 1);
  }
  lorac_ctx *ctx = new (std::nothrow) lorac_ctx();
  if (!ctx) return lorac_fail(nullptr, LORAC_ERR_MEMORY, "lorac_ctx_create: out of host memory");
  const char *failed = "";
  err = init_device(ctx, device_index, &failed);
  if (err != cudaSuccess) {
    int status = lorac_cuda_fail(nullptr, err, "lorac_ctx_create", failed);
    if (ctx->stream) cudaStreamDestroy(ctx->stream);
    delete ctx;
    return status;
  }
  *ctx_out = ctx;
  return LORAC_OK;
}

int lorac_ctx_destroy(lorac_ctx *ctx) {
  if (!ctx) return LORAC_OK;
  cudaSetDevice(ctx->device);
  cudaStreamSynchronize(ctx->stream);
  cudaFree(ctx->reduce_scratch);
  cudaStreamDestroy(ctx->stream);
  delete ctx;
  return LORAC_OK;
}

const char *lorac_last_error(lorac_ctx *ctx) { return ctx ? ctx->last_error.c_str() : global_error.c_str(); }

int lorac_device_name(lorac_ctx *ctx, char *buf, int32_t buf_len) {
  ENTER(ctx);
  LORAC_REQUIRE(ctx, buf && buf_len > 0, "lorac_device_name: empty buffer");
  snprintf(buf, (size_t)buf_len, "cuda: %s, %d SMs, sm_%d%d, bf16 tensor cores (wmma) with fp32 accumulation",
           ctx->gpu_name, ctx->sm_count, ctx->cc_major, ctx->cc_minor);
  return LORAC_OK;
}

int lorac_set_compute_dtype(lorac_ctx *ctx, int32_t dtype) {
  ENTER(ctx);
  LORAC_REQUIRE(ctx, dtype == LORAC_BF16,
                "lorac_set_compute_dtype: the GPU build multiplies NF4 weights in bf16 (%d) only, got %d", LORAC_BF16,
                dtype);
  return LORAC_OK;
}

int lorac_live_allocations(lorac_ctx *ctx, int64_t *count_out) {
  ENTER(ctx);
  LORAC_REQUIRE(ctx, count_out, "lorac_live_allocations: count_out is NULL");
  *count_out = ctx->live_allocations;
  return LORAC_OK;
}

int lorac_alloc(lorac_ctx *ctx, int64_t bytes, void **ptr_out) {
  ENTER(ctx);
  LORAC_REQUIRE(ctx, ptr_out && bytes >= 0, "lorac_alloc: bad size %lld", (long long)bytes);
  // Never a zero-size request: callers get a real, unique pointer.
  size_t size = ((size_t)(bytes > 0 ? bytes : 1) + 255) & ~(size_t)255;
  void *p = nullptr;
  cudaError_t err = lorac_scratch_alloc(ctx, size, &p);
  if (err == cudaErrorMemoryAllocation) {
    cudaGetLastError();  // not sticky: clear it so the next launch check does not see it
    return lorac_fail(ctx, LORAC_ERR_MEMORY, "lorac_alloc: cannot allocate %lld bytes of GPU memory on %s",
                      (long long)bytes, ctx->gpu_name);
  }
  if (err != cudaSuccess) return lorac_cuda_fail(ctx, err, "lorac_alloc", "cudaMallocAsync");
  ctx->live_allocations++;
  *ptr_out = p;
  return LORAC_OK;
}

int lorac_free(lorac_ctx *ctx, void *ptr) {
  ENTER(ctx);
  if (!ptr) return LORAC_OK;
  CUDA_CHECK(ctx, lorac_scratch_free(ctx, ptr), "cudaFreeAsync");
  ctx->live_allocations--;
  return LORAC_OK;
}

int lorac_memset(lorac_ctx *ctx, void *ptr, int32_t byte_value, int64_t bytes) {
  ENTER(ctx);
  LORAC_REQUIRE(ctx, ptr && bytes >= 0, "lorac_memset: bad pointer or size");
  CUDA_TRY(ctx, cudaMemsetAsync(ptr, byte_value, (size_t)bytes, ctx->stream));
  return LORAC_OK;
}

// Host copies wait for the stream: the host buffer belongs to the caller
// (a JavaScript ArrayBuffer) only for the duration of the call.
int lorac_copy_h2d(lorac_ctx *ctx, void *dst, const void *src, int64_t bytes) {
  ENTER(ctx);
  LORAC_REQUIRE(ctx, dst && src && bytes >= 0, "lorac_copy_h2d: bad pointer or size");
  CUDA_TRY(ctx, cudaMemcpyAsync(dst, src, (size_t)bytes, cudaMemcpyHostToDevice, ctx->stream));
  CUDA_TRY(ctx, cudaStreamSynchronize(ctx->stream));
  return LORAC_OK;
}

int lorac_copy_d2h(lorac_ctx *ctx, void *dst, const void *src, int64_t bytes) {
  ENTER(ctx);
  LORAC_REQUIRE(ctx, dst && src && bytes >= 0, "lorac_copy_d2h: bad pointer or size");
  CUDA_TRY(ctx, cudaMemcpyAsync(dst, src, (size_t)bytes, cudaMemcpyDeviceToHost, ctx->stream));
  CUDA_TRY(ctx, cudaStreamSynchronize(ctx->stream));
  return LORAC_OK;
}

int lorac_copy_d2d(lorac_ctx *ctx, void *dst, const void *src, int64_t bytes) {
  ENTER(ctx);
  LORAC_REQUIRE(ctx, dst && src && bytes >= 0, "lorac_copy_d2d: bad pointer or size");
  CUDA_TRY(ctx, cudaMemcpyAsync(dst, src, (size_t)bytes, cudaMemcpyDeviceToDevice, ctx->stream));
  return LORAC_OK;
}

int lorac_sync(lorac_ctx *ctx) {
  ENTER(ctx);
  CUDA_TRY(ctx, cudaStreamSynchronize(ctx->stream));
  return LORAC_OK;
}

int lorac_convert(lorac_ctx *ctx, const void *src, int32_t src_dtype, void *dst, int32_t dst_dtype, int64_t n) {
  ENTER(ctx);
  LORAC_REQUIRE(ctx, src && dst && n >= 0, "lorac_convert: bad pointer or size");
  LORAC_REQUIRE(ctx, is_float_dtype(src_dtype) && is_float_dtype(dst_dtype),
                "lorac_convert: dtypes must be F32 or BF16 (got %d -> %d)", src_dtype, dst_dtype);
  if (n == 0) return LORAC_OK;
  convert_kernel<<<grid_for(n, 256), 256, 0, ctx->stream>>>(src, src_dtype, dst, dst_dtype, n);
  LAUNCH_CHECK(ctx, convert_kernel);
  return LORAC_OK;
}

}  // extern "C"
