// RoPE with HF's rotate_half pairing (element i turns with element i + d/2)
// and the angle LlamaRotaryEmbedding uses: (float)position * inv_freq[i]
// rounded to fp32; cos and sin in fp64 rounded to fp32 and the rotation
// rounded step by step, as the CPU build does. The backward is the inverse
// rotation. One thread per rotated pair, so y may be x.
#include "common.cuh"

namespace {

__global__ void rope_kernel(int T, int n_heads, int head_dim, const int32_t *positions, const float *inv_freq,
                            const void *x, void *y, int dtype, float direction) {
  const int half = head_dim / 2;
  const int64_t pairs = (int64_t)T * n_heads * half;
  for (int64_t p = blockIdx.x * (int64_t)blockDim.x + threadIdx.x; p < pairs; p += (int64_t)gridDim.x * blockDim.x) {
    const int i = (int)(p % half);
    const int64_t th = p / half;  // token * n_heads + head
    const int t = (int)(th / n_heads);
    const float angle = __fmul_rn((float)positions[t], inv_freq[i]);
    double s, c;
    sincos((double)angle, &s, &c);
    const float cs = (float)c, sn = __fmul_rn(direction, (float)s);
    const int64_t at = th * head_dim + i;
    const float a = load_f32(x, dtype, at), b = load_f32(x, dtype, at + half);
    store_f32(y, dtype, at, __fadd_rn(__fmul_rn(a, cs), -__fmul_rn(b, sn)));
    store_f32(y, dtype, at + half, __fadd_rn(__fmul_rn(b, cs), __fmul_rn(a, sn)));
  }
}

int rope(lorac_ctx *ctx, const char *fn, int32_t T, int32_t n_heads, int32_t head_dim, const int32_t *positions,
         const float *inv_freq, const void *x, void *y, int32_t dtype, float direction) {
  LORAC_REQUIRE(ctx, T >= 0 && n_heads >= 1 && head_dim >= 2 && head_dim % 2 == 0,
                "%s: bad sizes T = %d, n_heads = %d, head_dim = %d (head_dim must be even)", fn, T, n_heads, head_dim);
  LORAC_REQUIRE(ctx, is_float_dtype(dtype), "%s: dtype must be F32 or BF16, got %d", fn, dtype);
  LORAC_REQUIRE(ctx, (positions && inv_freq && x && y) || T == 0,
                "%s: positions, inv_freq, x and y must not be NULL", fn);
  if (T == 0) return LORAC_OK;
  const int64_t pairs = (int64_t)T * n_heads * (head_dim / 2);
  rope_kernel<<<grid_for(pairs, 256), 256, 0, ctx->stream>>>(T, n_heads, head_dim, positions, inv_freq, x, y, dtype,
                                                             direction);
  LAUNCH_CHECK(ctx, rope_kernel);
  return LORAC_OK;
}

}  // namespace

extern "C" {

int lorac_rope_forward(lorac_ctx *ctx, int32_t T, int32_t n_heads, int32_t head_dim, const int32_t *positions,
                       const float *inv_freq, const void *x, void *y, int32_t dtype) {
  ENTER(ctx);
  return rope(ctx, "lorac_rope_forward", T, n_heads, head_dim, positions, inv_freq, x, y, dtype, 1.0f);
}

int lorac_rope_backward(lorac_ctx *ctx, int32_t T, int32_t n_heads, int32_t head_dim, const int32_t *positions,
                        const float *inv_freq, const void *dy, void *dx, int32_t dtype) {
  ENTER(ctx);
  return rope(ctx, "lorac_rope_backward", T, n_heads, head_dim, positions, inv_freq, dy, dx, dtype, -1.0f);
}

}  // extern "C"
