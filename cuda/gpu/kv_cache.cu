// The KV cache of one layer for decoding: appending packed new keys and
// values, and attention of one new query per sequence over its cache.
// Cache layout [max_seqs, n_kv_heads, max_len, head_dim] (cuda/lorac.h).
// cu_seqlens and cache_lens live in device memory: positions past max_len are
// dropped on append, and a sequence whose cache_lens is outside 1..max_len
// gets a NaN output from decode attention.
#include "reduce.cuh"

namespace {

constexpr int kMaxHeadDim = 128;

// One block per (sequence, kv head): its new tokens' rows into the cache.
__global__ void kv_append_kernel(const int32_t *cu_seqlens, const int32_t *cache_lens, int max_len, int n_kv,
                                 int head_dim, const void *k, const void *v, int dtype, void *k_cache, void *v_cache,
                                 int cache_dtype) {
  const int s = blockIdx.x, g = blockIdx.y;
  const int t0 = cu_seqlens[s], n = cu_seqlens[s + 1] - t0, len = cache_lens[s];
  for (int64_t e = threadIdx.x; e < (int64_t)n * head_dim; e += blockDim.x) {
    const int j = (int)(e / head_dim), c = (int)(e % head_dim);
    const int64_t pos = (int64_t)len + j;
    if (len < 0 || pos >= max_len) continue;
    const int64_t src = ((int64_t)(t0 + j) * n_kv + g) * head_dim + c;
    const int64_t dst = (((int64_t)s * n_kv + g) * max_len + pos) * head_dim + c;
    store_f32(k_cache, cache_dtype, dst, load_f32(k, dtype, src));
    store_f32(v_cache, cache_dtype, dst, load_f32(v, dtype, src));
  }
}

// One warp per (query head, sequence): an online softmax over the cached
// keys, 32 at a time (one per lane); lane c owns output elements c, c+32, ...
__global__ void decode_kernel(const int32_t *cache_lens, int max_len, int n_heads, int n_kv, int head_dim, float scale,
                              const void *q, const void *k_cache, const void *v_cache, int cache_dtype, void *out,
                              int dtype) {
  __shared__ float qs[kMaxHeadDim];
  const int h = blockIdx.x, s = blockIdx.y, lane = threadIdx.x;
  const int g = h / (n_heads / n_kv), d = head_dim;
  const int len = cache_lens[s];
  const int64_t q_at = ((int64_t)s * n_heads + h) * d;
  if (len < 1 || len > max_len) {
    for (int c = lane; c < d; c += 32) store_f32(out, dtype, q_at + c, __int_as_float(0x7fc00000));
    return;
  }
  for (int c = lane; c < d; c += 32) qs[c] = __fmul_rn(load_f32(q, dtype, q_at + c), scale);
  __syncwarp();
  const int64_t base = ((int64_t)s * n_kv + g) * max_len * d;
  float m = -INFINITY, l = 0.0f, o[kMaxHeadDim / 32] = {};
  for (int u0 = 0; u0 < len; u0 += 32) {
    const int u = u0 + lane;
    float score = -INFINITY;
    if (u < len) {
      score = 0.0f;
      for (int c = 0; c < d; c++) score += qs[c] * load_f32(k_cache, cache_dtype, base + (int64_t)u * d + c);
    }
    const float mx = fmaxf(m, warp_max(score));  // finite: the first chunk holds key 0
    const float p = u < len ? expf(score - mx) : 0.0f;
    const float alpha = expf(m - mx);
    l = l * alpha + warp_sum(p);
    m = mx;
#pragma unroll
    for (int j = 0; j < kMaxHeadDim / 32; j++) o[j] *= alpha;
    const int count = min(32, len - u0);
    for (int uu = 0; uu < count; uu++) {
      const float pu = __shfl_sync(0xffffffffu, p, uu);
      const int64_t row = base + (int64_t)(u0 + uu) * d;
#pragma unroll
      for (int j = 0; j < kMaxHeadDim / 32; j++) {
        const int c = lane + 32 * j;
        if (c < d) o[j] += pu * load_f32(v_cache, cache_dtype, row + c);
      }
    }
  }
  const float inv = 1.0f / l;
#pragma unroll
  for (int j = 0; j < kMaxHeadDim / 32; j++) {
    const int c = lane + 32 * j;
    if (c < d) store_f32(out, dtype, q_at + c, o[j] * inv);
  }
}

int check_heads(lorac_ctx *ctx, const char *fn, int32_t n_heads, int32_t n_kv_heads, int32_t head_dim) {
  LORAC_REQUIRE(ctx, n_heads >= 1 && n_kv_heads >= 1 && n_heads % n_kv_heads == 0,
                "%s: n_heads (%d) must be a positive multiple of n_kv_heads (%d)", fn, n_heads, n_kv_heads);
  LORAC_REQUIRE(ctx, head_dim >= 8 && head_dim <= kMaxHeadDim && head_dim % 2 == 0,
                "%s: head_dim must be even and in 8..128, got %d", fn, head_dim);
  return LORAC_OK;
}

}  // namespace

extern "C" {

int lorac_kv_cache_append(lorac_ctx *ctx, int32_t num_seqs, const int32_t *cu_seqlens, int32_t T,
                          const int32_t *cache_lens, int32_t max_len, int32_t n_kv_heads, int32_t head_dim,
                          const void *k, const void *v, int32_t dtype, void *k_cache, void *v_cache,
                          int32_t cache_dtype) {
  const char *fn = "lorac_kv_cache_append";
  ENTER(ctx);
  LORAC_REQUIRE(ctx, num_seqs >= 1 && T >= 0 && cu_seqlens,
                "%s: need num_seqs >= 1, T >= 0 and cu_seqlens (got %d, %d)", fn, num_seqs, T);
  LORAC_REQUIRE(ctx, n_kv_heads >= 1 && n_kv_heads <= 65535 && head_dim >= 1,
                "%s: bad sizes n_kv_heads = %d, head_dim = %d", fn, n_kv_heads, head_dim);
  LORAC_REQUIRE(ctx, is_float_dtype(dtype) && is_float_dtype(cache_dtype),
                "%s: dtype and cache_dtype must be F32 or BF16 (got %d, %d)", fn, dtype, cache_dtype);
  LORAC_REQUIRE(ctx, cache_lens && ((k && v && k_cache && v_cache) || T == 0),
                "%s: cache_lens, k, v, k_cache and v_cache must not be NULL", fn);
  if (T == 0) return LORAC_OK;
  kv_append_kernel<<<dim3(num_seqs, n_kv_heads), 128, 0, ctx->stream>>>(
      cu_seqlens, cache_lens, max_len, n_kv_heads, head_dim, k, v, dtype, k_cache, v_cache, cache_dtype);
  LAUNCH_CHECK(ctx, kv_append_kernel);
  return LORAC_OK;
}

int lorac_decode_attention(lorac_ctx *ctx, int32_t num_seqs, const int32_t *cache_lens, int32_t max_len,
                           int32_t n_heads, int32_t n_kv_heads, int32_t head_dim, float scale, const void *q,
                           const void *k_cache, const void *v_cache, int32_t cache_dtype, void *out, int32_t dtype) {
  const char *fn = "lorac_decode_attention";
  ENTER(ctx);
  LORAC_REQUIRE(ctx, num_seqs >= 0 && num_seqs <= 65535 && max_len >= 1,
                "%s: bad sizes num_seqs = %d (at most 65535), max_len = %d", fn, num_seqs, max_len);
  if (int st = check_heads(ctx, fn, n_heads, n_kv_heads, head_dim)) return st;
  LORAC_REQUIRE(ctx, is_float_dtype(dtype) && is_float_dtype(cache_dtype),
                "%s: dtype and cache_dtype must be F32 or BF16 (got %d, %d)", fn, dtype, cache_dtype);
  LORAC_REQUIRE(ctx, (cache_lens && q && k_cache && v_cache && out) || num_seqs == 0,
                "%s: cache_lens, q, k_cache, v_cache and out must not be NULL", fn);
  if (num_seqs == 0) return LORAC_OK;
  decode_kernel<<<dim3(n_heads, num_seqs), 32, 0, ctx->stream>>>(cache_lens, max_len, n_heads, n_kv_heads, head_dim,
                                                                  scale, q, k_cache, v_cache, cache_dtype, out, dtype);
  LAUNCH_CHECK(ctx, decode_kernel);
  return LORAC_OK;
}

}  // extern "C"
