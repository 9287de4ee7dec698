// The CPU build's context, memory, copies and conversions: host memory, OpenMP.
#include <omp.h>

#include <cstdarg>
#include <cstdio>
#include <cstdlib>
#include <fstream>

#if defined(__GLIBC__)
#include <malloc.h>
#endif

#include "common.h"
#include "gemm_kernels.h"

static thread_local std::string global_error;

int lorac_fail(lorac_ctx *ctx, int status, const char *fmt, ...) {
  char buf[1024];
  va_list args;
  va_start(args, fmt);
  vsnprintf(buf, sizeof buf, fmt, args);
  va_end(args);
  (ctx ? ctx->last_error : global_error) = buf;
  return status;
}

extern "C" {

int lorac_abi_version(void) { return LORAC_ABI_VERSION; }

int lorac_device_count(int32_t *count_out) {
  if (!count_out) return lorac_fail(nullptr, LORAC_ERR_ARGUMENT, "lorac_device_count: count_out is NULL");
  *count_out = 1;
  return LORAC_OK;
}

int lorac_ctx_create(int32_t device_index, int32_t num_threads, lorac_ctx **ctx_out) {
  (void)device_index;
#if defined(__GLIBC__)
  // glibc raises its mmap threshold to the largest block freed so far (up to
  // 32 MiB), after which our tensors and GEMM scratch come from the brk heap,
  // which they fragment and keep: scoring 200 arxiv5 texts peaked at 1.8-2.3
  // GiB instead of 0.7 and ran 1.5x slower. A fixed threshold keeps every
  // block over 128 KiB in its own mapping, returned whole on free.
  static const bool fixed = mallopt(M_MMAP_THRESHOLD, 128 * 1024) == 1;
  (void)fixed;
#endif
  if (!ctx_out) return lorac_fail(nullptr, LORAC_ERR_ARGUMENT, "lorac_ctx_create: ctx_out is NULL");
  lorac_ctx *ctx = new (std::nothrow) lorac_ctx();
  if (!ctx) return lorac_fail(nullptr, LORAC_ERR_MEMORY, "lorac_ctx_create: out of host memory");
  ctx->num_threads = num_threads > 0 ? num_threads : omp_get_num_procs();
  ctx->live_allocations = 0;
  *ctx_out = ctx;
  return LORAC_OK;
}

int lorac_set_compute_dtype(lorac_ctx *ctx, int32_t dtype) {
  if (!ctx) return lorac_fail(nullptr, LORAC_ERR_ARGUMENT, "lorac_set_compute_dtype: ctx is NULL");
  LORAC_REQUIRE(ctx, dtype == LORAC_F32 || dtype == LORAC_BF16,
                "lorac_set_compute_dtype: dtype must be F32 (%d) or BF16 (%d), got %d", LORAC_F32, LORAC_BF16, dtype);
  ctx->compute_bf16 = dtype == LORAC_BF16;
  return LORAC_OK;
}

int lorac_ctx_destroy(lorac_ctx *ctx) {
  delete ctx;
  return LORAC_OK;
}

const char *lorac_last_error(lorac_ctx *ctx) {
  return ctx ? ctx->last_error.c_str() : global_error.c_str();
}

static std::string cpu_model_name() {
  std::ifstream cpuinfo("/proc/cpuinfo");
  std::string line;
  while (std::getline(cpuinfo, line)) {
    if (line.rfind("model name", 0) == 0) {
      size_t colon = line.find(':');
      if (colon != std::string::npos) return line.substr(colon + 2);
    }
  }
  return "unknown CPU";
}

// The widest kernel path this CPU can run; gemm dispatch uses the same test.
// "amx" adds the tile unit for bf16 products to the AVX-512 paths.
const char *lorac_cpu_isa(void) {
#if defined(__x86_64__)
  if (__builtin_cpu_supports("avx512f") && __builtin_cpu_supports("avx512bw") &&
      __builtin_cpu_supports("avx512vl"))
    return lorac_amx_usable() ? "amx" : "avx512";
  if (__builtin_cpu_supports("avx2") && __builtin_cpu_supports("fma")) return "avx2";
#endif
  return "portable";
}

int lorac_device_name(lorac_ctx *ctx, char *buf, int32_t buf_len) {
  LORAC_REQUIRE(ctx, buf && buf_len > 0, "lorac_device_name: empty buffer");
  snprintf(buf, (size_t)buf_len, "cpu: %s, %d threads, %s", cpu_model_name().c_str(),
           ctx->num_threads, lorac_cpu_isa());
  return LORAC_OK;
}

int lorac_live_allocations(lorac_ctx *ctx, int64_t *count_out) {
  LORAC_REQUIRE(ctx, count_out, "lorac_live_allocations: count_out is NULL");
  *count_out = ctx->live_allocations;
  return LORAC_OK;
}

int lorac_alloc(lorac_ctx *ctx, int64_t bytes, void **ptr_out) {
  LORAC_REQUIRE(ctx, ptr_out && bytes >= 0, "lorac_alloc: bad size %lld", (long long)bytes);
  // 64-byte alignment for full-width vector loads; never a zero-size request.
  size_t size = ((size_t)(bytes > 0 ? bytes : 1) + 63) & ~(size_t)63;
  void *p = std::aligned_alloc(64, size);
  if (!p) return lorac_fail(ctx, LORAC_ERR_MEMORY, "lorac_alloc: cannot allocate %lld bytes of host memory", (long long)bytes);
  ctx->live_allocations++;
  *ptr_out = p;
  return LORAC_OK;
}

int lorac_free(lorac_ctx *ctx, void *ptr) {
  if (!ptr) return LORAC_OK;
  std::free(ptr);
  ctx->live_allocations--;
  return LORAC_OK;
}

int lorac_memset(lorac_ctx *ctx, void *ptr, int32_t byte_value, int64_t bytes) {
  LORAC_REQUIRE(ctx, ptr && bytes >= 0, "lorac_memset: bad pointer or size");
  std::memset(ptr, byte_value, (size_t)bytes);
  return LORAC_OK;
}

static int copy(lorac_ctx *ctx, void *dst, const void *src, int64_t bytes, const char *name) {
  LORAC_REQUIRE(ctx, dst && src && bytes >= 0, "%s: bad pointer or size", name);
  std::memcpy(dst, src, (size_t)bytes);
  return LORAC_OK;
}

int lorac_copy_h2d(lorac_ctx *ctx, void *dst, const void *src, int64_t bytes) {
  return copy(ctx, dst, src, bytes, "lorac_copy_h2d");
}
int lorac_copy_d2h(lorac_ctx *ctx, void *dst, const void *src, int64_t bytes) {
  return copy(ctx, dst, src, bytes, "lorac_copy_d2h");
}
int lorac_copy_d2d(lorac_ctx *ctx, void *dst, const void *src, int64_t bytes) {
  return copy(ctx, dst, src, bytes, "lorac_copy_d2d");
}

int lorac_sync(lorac_ctx *ctx) {
  (void)ctx;
  return LORAC_OK;
}

int lorac_convert(lorac_ctx *ctx, const void *src, int32_t src_dtype, void *dst, int32_t dst_dtype,
                  int64_t n) {
  LORAC_REQUIRE(ctx, src && dst && n >= 0, "lorac_convert: bad pointer or size");
  LORAC_REQUIRE(ctx, is_float_dtype(src_dtype) && is_float_dtype(dst_dtype),
                "lorac_convert: dtypes must be F32 or BF16 (got %d -> %d)", src_dtype, dst_dtype);
#pragma omp parallel for num_threads(ctx_threads(ctx)) schedule(static)
  for (int64_t i = 0; i < n; i++) store_f32(dst, dst_dtype, i, load_f32(src, src_dtype, i));
  return LORAC_OK;
}

}  // extern "C"
