// The KV cache of one layer for decoding: appending packed new keys and
// values, and attention of one new query per sequence over its cache.
// Cache layout [max_seqs, n_kv_heads, max_len, head_dim]: one slot per
// sequence, each kv head's positions contiguous (see cuda/lorac.h).
#include <algorithm>
#include <cmath>
#include <vector>

#include "common.h"
#include "packed.h"
#include "row_io.h"
#include "tile_ops.h"

namespace {

int append(lorac_ctx *ctx, int32_t num_seqs, const int32_t *cu_seqlens, int32_t T, const int32_t *cache_lens,
           int32_t max_len, int32_t n_kv_heads, int32_t head_dim, const void *k, const void *v, int32_t dtype,
           void *k_cache, void *v_cache, int32_t cache_dtype) {
  const char *fn = "lorac_kv_cache_append";
  if (int st = check_packed(ctx, fn, num_seqs, cu_seqlens, T, T)) return st;
  LORAC_REQUIRE(ctx, n_kv_heads >= 1 && head_dim >= 1, "%s: bad sizes n_kv_heads = %d, head_dim = %d", fn, n_kv_heads,
                head_dim);
  LORAC_REQUIRE(ctx, is_float_dtype(dtype) && is_float_dtype(cache_dtype),
                "%s: dtype and cache_dtype must be F32 or BF16 (got %d, %d)", fn, dtype, cache_dtype);
  LORAC_REQUIRE(ctx, cache_lens && ((k && v && k_cache && v_cache) || T == 0),
                "%s: cache_lens, k, v, k_cache and v_cache must not be NULL", fn);
  for (int32_t s = 0; s < num_seqs; s++) {
    const int32_t n = cu_seqlens[s + 1] - cu_seqlens[s];
    LORAC_REQUIRE(ctx, cache_lens[s] >= 0 && (int64_t)cache_lens[s] + n <= max_len,
                  "%s: sequence %d holds %d cached tokens and appends %d, beyond max_len = %d", fn, s, cache_lens[s], n,
                  max_len);
  }
#pragma omp parallel num_threads(ctx_threads(ctx))
  {
    std::vector<float> row(head_dim);
#pragma omp for collapse(2) schedule(static)
    for (int32_t s = 0; s < num_seqs; s++)
      for (int32_t g = 0; g < n_kv_heads; g++)
        for (int32_t t = cu_seqlens[s]; t < cu_seqlens[s + 1]; t++) {
          const int64_t src = ((int64_t)t * n_kv_heads + g) * head_dim;
          const int64_t pos = cache_lens[s] + (t - cu_seqlens[s]);
          const int64_t dst = (((int64_t)s * n_kv_heads + g) * max_len + pos) * head_dim;
          load_row(k, dtype, src, head_dim, row.data());
          store_row(k_cache, cache_dtype, dst, head_dim, row.data());
          load_row(v, dtype, src, head_dim, row.data());
          store_row(v_cache, cache_dtype, dst, head_dim, row.data());
        }
  }
  return LORAC_OK;
}

int decode(lorac_ctx *ctx, int32_t num_seqs, const int32_t *cache_lens, int32_t max_len, int32_t n_heads,
           int32_t n_kv_heads, int32_t head_dim, float scale, const void *q, const void *k_cache, const void *v_cache,
           int32_t cache_dtype, void *out, int32_t dtype) {
  const char *fn = "lorac_decode_attention";
  LORAC_REQUIRE(ctx, num_seqs >= 0 && max_len >= 1, "%s: bad sizes num_seqs = %d, max_len = %d", fn, num_seqs,
                max_len);
  if (int st = check_heads(ctx, fn, n_heads, n_kv_heads, head_dim)) return st;
  LORAC_REQUIRE(ctx, is_float_dtype(dtype) && is_float_dtype(cache_dtype),
                "%s: dtype and cache_dtype must be F32 or BF16 (got %d, %d)", fn, dtype, cache_dtype);
  LORAC_REQUIRE(ctx, (cache_lens && q && k_cache && v_cache && out) || num_seqs == 0,
                "%s: cache_lens, q, k_cache, v_cache and out must not be NULL", fn);
  for (int32_t s = 0; s < num_seqs; s++)
    LORAC_REQUIRE(ctx, cache_lens[s] >= 1 && cache_lens[s] <= max_len,
                  "%s: cache_lens[%d] = %d must be in 1..max_len = %d (append the new token first)", fn, s,
                  cache_lens[s], max_len);
  const int group = n_heads / n_kv_heads, d = head_dim;
  const tiles::TileOps &ops = tiles::tile_ops();
#pragma omp parallel num_threads(ctx_threads(ctx))
  {
    std::vector<float> kv((size_t)2 * max_len * d), qs((size_t)group * d), p((size_t)group * max_len),
        o((size_t)group * d);
#pragma omp for collapse(2) schedule(dynamic, 1)
    for (int32_t s = 0; s < num_seqs; s++)
      for (int32_t g = 0; g < n_kv_heads; g++) {
        const int len = cache_lens[s];
        const int64_t base = ((int64_t)s * n_kv_heads + g) * max_len * d;
        float *kf = kv.data(), *vf = kf + (size_t)len * d;
        load_row(k_cache, cache_dtype, base, len * d, kf);
        load_row(v_cache, cache_dtype, base, len * d, vf);
        for (int j = 0; j < group; j++)
          load_row(q, dtype, ((int64_t)s * n_heads + g * group + j) * d, d, qs.data() + (size_t)j * d, scale);
        // Scores of the group's queries against every cached key, then softmax . V.
        ops.gemm_nt(group, len, d, qs.data(), d, kf, d, p.data(), len, false);
        for (int j = 0; j < group; j++) {
          float *pj = p.data() + (size_t)j * len;
          const float sum = ops.exp_sub_sum(len, pj, ops.row_max(len, pj));
          for (int u = 0; u < len; u++) pj[u] /= sum;
        }
        ops.gemm_nn(group, d, len, p.data(), len, 1, vf, d, o.data(), d, false);
        for (int j = 0; j < group; j++)
          store_row(out, dtype, ((int64_t)s * n_heads + g * group + j) * d, d, o.data() + (size_t)j * d);
      }
  }
  return LORAC_OK;
}

}  // namespace

extern "C" {

int lorac_kv_cache_append(lorac_ctx *ctx, int32_t num_seqs, const int32_t *cu_seqlens, int32_t T,
                          const int32_t *cache_lens, int32_t max_len, int32_t n_kv_heads, int32_t head_dim,
                          const void *k, const void *v, int32_t dtype, void *k_cache, void *v_cache,
                          int32_t cache_dtype) {
  LORAC_TRY(ctx, return append(ctx, num_seqs, cu_seqlens, T, cache_lens, max_len, n_kv_heads, head_dim, k, v, dtype,
                               k_cache, v_cache, cache_dtype);)
}

int lorac_decode_attention(lorac_ctx *ctx, int32_t num_seqs, const int32_t *cache_lens, int32_t max_len,
                           int32_t n_heads, int32_t n_kv_heads, int32_t head_dim, float scale, const void *q,
                           const void *k_cache, const void *v_cache, int32_t cache_dtype, void *out, int32_t dtype) {
  LORAC_TRY(ctx, return decode(ctx, num_seqs, cache_lens, max_len, n_heads, n_kv_heads, head_dim, scale, q, k_cache,
                               v_cache, cache_dtype, out, dtype);)
}

}  // extern "C"
