// SwiGLU, the Llama MLP's gate: out = silu(gate) * up, with its gradients,
// element by element in fp32 in the CPU build's order of operations.
#include "common.cuh"

namespace {

__device__ __forceinline__ float sigmoid(float g) { return 1.0f / (1.0f + expf(-g)); }

__global__ void swiglu_forward_kernel(int64_t n, const void *gate, const void *up, void *out, int dtype) {
  for (int64_t i = blockIdx.x * (int64_t)blockDim.x + threadIdx.x; i < n; i += (int64_t)gridDim.x * blockDim.x) {
    const float g = load_f32(gate, dtype, i), u = load_f32(up, dtype, i);
    store_f32(out, dtype, i, __fmul_rn(__fmul_rn(g, sigmoid(g)), u));
  }
}

// dgate may be gate and dup may be up: each element is read before it is written.
__global__ void swiglu_backward_kernel(int64_t n, const void *gate, const void *up, const void *dout, void *dgate,
                                       void *dup, int dtype) {
  for (int64_t i = blockIdx.x * (int64_t)blockDim.x + threadIdx.x; i < n; i += (int64_t)gridDim.x * blockDim.x) {
    const float g = load_f32(gate, dtype, i), u = load_f32(up, dtype, i), d = load_f32(dout, dtype, i);
    const float s = sigmoid(g);
    const float dg = __fmul_rn(__fmul_rn(__fmul_rn(d, u), s), __fadd_rn(1.0f, __fmul_rn(g, 1.0f - s)));
    store_f32(dgate, dtype, i, dg);
    store_f32(dup, dtype, i, __fmul_rn(__fmul_rn(d, g), s));  // dout * silu(gate)
  }
}

int check(lorac_ctx *ctx, const char *fn, int64_t n, int32_t dtype, bool pointers) {
  LORAC_REQUIRE(ctx, n >= 0, "%s: n must not be negative, got %lld", fn, (long long)n);
  LORAC_REQUIRE(ctx, is_float_dtype(dtype), "%s: dtype must be F32 or BF16, got %d", fn, dtype);
  LORAC_REQUIRE(ctx, pointers || n == 0, "%s: a tensor pointer is NULL", fn);
  return LORAC_OK;
}

}  // namespace

extern "C" {

int lorac_swiglu_forward(lorac_ctx *ctx, int64_t n, const void *gate, const void *up, void *out, int32_t dtype) {
  ENTER(ctx);
  if (int st = check(ctx, "lorac_swiglu_forward", n, dtype, gate && up && out)) return st;
  if (n == 0) return LORAC_OK;
  swiglu_forward_kernel<<<grid_for(n, 256), 256, 0, ctx->stream>>>(n, gate, up, out, dtype);
  LAUNCH_CHECK(ctx, swiglu_forward_kernel);
  return LORAC_OK;
}

int lorac_swiglu_backward(lorac_ctx *ctx, int64_t n, const void *gate, const void *up, const void *dout, void *dgate,
                          void *dup, int32_t dtype) {
  ENTER(ctx);
  if (int st = check(ctx, "lorac_swiglu_backward", n, dtype, gate && up && dout && dgate && dup)) return st;
  if (n == 0) return LORAC_OK;
  swiglu_backward_kernel<<<grid_for(n, 256), 256, 0, ctx->stream>>>(n, gate, up, dout, dgate, dup, dtype);
  LAUNCH_CHECK(ctx, swiglu_backward_kernel);
  return LORAC_OK;
}

}  // extern "C"
