// Causal grouped-query attention over packed sequences on the GPU, flash-
// attention style in fp32: the forward streams key tiles through an online
// softmax and keeps only the log-sum-exp; the backward recomputes the
// probabilities from q, k and that log-sum-exp.
//
// One warp per query row (forward, dq) or key row (dk, dv), eight rows per
// block sharing tiles of 32 rows of the other side in shared memory, one lane
// per row of the tile: a lane computes its row's dot products over head_dim,
// and the warp sums p (or ds) times the tile into the outputs its lanes own
// (elements c, c+32, ... of head_dim). dk and dv are summed over the query
// heads of a group by the warp that owns the key row: no atomics, the same
// result on every run.
#include "reduce.cuh"

namespace {

constexpr int kRows = 8;              // rows per block, one warp each
constexpr int kTile = 32;             // rows per shared tile, one lane each
constexpr int kMaxD = 128;            // head_dim limit of cuda/lorac.h
constexpr int kStride = kMaxD + 1;    // odd: lane r reading tile row r, column c, hits bank (r + c) % 32
constexpr int kPer = kMaxD / 32;      // head_dim elements a lane owns
constexpr int kThreads = kRows * 32;

struct Heads {
  int T, n_heads, n_kv, d, group;
};

// Element offset of token t, head h in a [T, heads, d] tensor.
__device__ __forceinline__ int64_t at(int64_t t, int h, int heads, int d) { return (t * heads + h) * (int64_t)d; }

// tile[r][c] = x[token t0 + row0 + r, head h, c] * scale for row0 + r < rows, else 0.
__device__ void load_tile(float *tile, const void *x, int dtype, int64_t t0, int row0, int rows, int h, int heads,
                          int d, float scale) {
  for (int e = threadIdx.x; e < kTile * d; e += kThreads) {
    const int r = e / d, c = e % d;
    tile[r * kStride + c] = row0 + r < rows ? __fmul_rn(load_f32(x, dtype, at(t0 + row0 + r, h, heads, d) + c), scale)
                                            : 0.0f;
  }
}

// row[c] = x[token t, head h, c] * scale, by one warp.
__device__ __forceinline__ void load_row(float *row, const void *x, int dtype, int64_t t, int h, int heads, int d,
                                         float scale) {
  for (int c = threadIdx.x % 32; c < d; c += 32) row[c] = __fmul_rn(load_f32(x, dtype, at(t, h, heads, d) + c), scale);
}

__device__ __forceinline__ float dot(const float *a, const float *b, int d) {
  float s = 0.0f;
  for (int c = 0; c < d; c++) s += a[c] * b[c];
  return s;
}

// acc[j] += sum over tile rows r < count of w (of lane r) * tile[r][lane + 32 j].
__device__ __forceinline__ void add_rows(float *acc, float w, const float *tile, int count, int d) {
  const int lane = threadIdx.x % 32;
  for (int r = 0; r < count; r++) {
    const float wr = __shfl_sync(0xffffffffu, w, r);
#pragma unroll
    for (int j = 0; j < kPer; j++) {
      const int c = lane + 32 * j;
      if (c < d) acc[j] += wr * tile[r * kStride + c];
    }
  }
}

// Block (sequence, query rows i0.., query head h); keys up to the block's last row.
__global__ void __launch_bounds__(kThreads)
    forward_kernel(const int32_t *cu_seqlens, Heads hd, float scale, const void *q, const void *k, const void *v,
                   int dtype, void *out, float *lse) {
  __shared__ float ks[kTile * kStride], vs[kTile * kStride], qs[kRows][kMaxD];
  const int s = blockIdx.x, h = blockIdx.z, g = h / hd.group, d = hd.d;
  const int64_t t0 = cu_seqlens[s];
  const int L = cu_seqlens[s + 1] - (int)t0, i0 = blockIdx.y * kRows;
  if (i0 >= L) return;
  const int warp = threadIdx.x / 32, lane = threadIdx.x % 32, i = i0 + warp;
  const bool row = i < L;
  if (row) load_row(qs[warp], q, dtype, t0 + i, h, hd.n_heads, d, scale);
  const int nk = min(L, i0 + kRows);
  float m = -INFINITY, l = 0.0f, o[kPer] = {};
  // Key tiles start at multiples of 32 <= i0, so every row sees key j0 of every tile.
  for (int j0 = 0; j0 < nk; j0 += kTile) {
    __syncthreads();
    load_tile(ks, k, dtype, t0, j0, nk, g, hd.n_kv, d, 1.0f);
    load_tile(vs, v, dtype, t0, j0, nk, g, hd.n_kv, d, 1.0f);
    __syncthreads();
    if (!row) continue;
    const bool visible = j0 + lane <= i;
    const float score = visible ? dot(qs[warp], ks + lane * kStride, d) : -INFINITY;
    const float mx = fmaxf(m, warp_max(score));
    const float p = visible ? expf(score - mx) : 0.0f;
    const float alpha = expf(m - mx);
    l = l * alpha + warp_sum(p);
    m = mx;
#pragma unroll
    for (int j = 0; j < kPer; j++) o[j] *= alpha;
    add_rows(o, p, vs, min(kTile, i - j0 + 1), d);
  }
  if (!row) return;
  const float inv = 1.0f / l;
#pragma unroll
  for (int j = 0; j < kPer; j++) {
    const int c = lane + 32 * j;
    if (c < d) store_f32(out, dtype, at(t0 + i, h, hd.n_heads, d) + c, o[j] * inv);
  }
  if (lse && lane == 0) lse[(int64_t)h * hd.T + t0 + i] = m + logf(l);
}

// delta[h, t] = sum over c of dout . out: the softmax backward's correction. One warp per (t, h).
__global__ void delta_kernel(Heads hd, const void *out, const void *dout, int dtype, float *delta) {
  const int64_t r = (int64_t)blockIdx.x * kRows + threadIdx.x / 32;
  if (r >= (int64_t)hd.T * hd.n_heads) return;
  const int64_t t = r / hd.n_heads;
  const int h = (int)(r % hd.n_heads);
  float sum = 0.0f;
  for (int c = threadIdx.x % 32; c < hd.d; c += 32) {
    const int64_t e = at(t, h, hd.n_heads, hd.d) + c;
    sum += load_f32(dout, dtype, e) * load_f32(out, dtype, e);
  }
  sum = warp_sum(sum);
  if (threadIdx.x % 32 == 0) delta[(int64_t)h * hd.T + t] = sum;
}

// dq of query rows i0.. of head h: sum over visible keys u of ds * k[u], times scale.
__global__ void __launch_bounds__(kThreads)
    dq_kernel(const int32_t *cu_seqlens, Heads hd, float scale, const void *q, const void *k, const void *v,
              const void *dout, int dtype, const float *lse, const float *delta, void *dq) {
  __shared__ float ks[kTile * kStride], vs[kTile * kStride], qs[kRows][kMaxD], dos[kRows][kMaxD];
  const int s = blockIdx.x, h = blockIdx.z, g = h / hd.group, d = hd.d;
  const int64_t t0 = cu_seqlens[s];
  const int L = cu_seqlens[s + 1] - (int)t0, i0 = blockIdx.y * kRows;
  if (i0 >= L) return;
  const int warp = threadIdx.x / 32, lane = threadIdx.x % 32, i = i0 + warp;
  const bool row = i < L;
  float lse_i = 0.0f, delta_i = 0.0f;
  if (row) {
    load_row(qs[warp], q, dtype, t0 + i, h, hd.n_heads, d, scale);
    load_row(dos[warp], dout, dtype, t0 + i, h, hd.n_heads, d, 1.0f);
    lse_i = lse[(int64_t)h * hd.T + t0 + i];
    delta_i = delta[(int64_t)h * hd.T + t0 + i];
  }
  const int nk = min(L, i0 + kRows);
  float acc[kPer] = {};
  for (int j0 = 0; j0 < nk; j0 += kTile) {
    __syncthreads();
    load_tile(ks, k, dtype, t0, j0, nk, g, hd.n_kv, d, 1.0f);
    load_tile(vs, v, dtype, t0, j0, nk, g, hd.n_kv, d, 1.0f);
    __syncthreads();
    if (!row) continue;
    float ds = 0.0f;
    if (j0 + lane <= i) {
      const float p = expf(dot(qs[warp], ks + lane * kStride, d) - lse_i);
      ds = p * (dot(dos[warp], vs + lane * kStride, d) - delta_i);
    }
    add_rows(acc, ds, ks, min(kTile, i - j0 + 1), d);
  }
  if (!row) return;
#pragma unroll
  for (int j = 0; j < kPer; j++) {
    const int c = lane + 32 * j;
    if (c < d) store_f32(dq, dtype, at(t0 + i, h, hd.n_heads, d) + c, acc[j] * scale);
  }
}

// dk and dv of key rows u0.. of kv head g, summed over the group's query heads
// and the queries i >= u that see them.
__global__ void __launch_bounds__(kThreads)
    dkdv_kernel(const int32_t *cu_seqlens, Heads hd, float scale, const void *q, const void *k, const void *v,
                const void *dout, int dtype, const float *lse, const float *delta, void *dk, void *dv) {
  __shared__ float qt[kTile * kStride], dot_tile[kTile * kStride], kw[kRows][kMaxD], vw[kRows][kMaxD];
  __shared__ float lse_s[kTile], delta_s[kTile];
  const int s = blockIdx.x, g = blockIdx.z, d = hd.d;
  const int64_t t0 = cu_seqlens[s];
  const int L = cu_seqlens[s + 1] - (int)t0, u0 = blockIdx.y * kRows;
  if (u0 >= L) return;
  const int warp = threadIdx.x / 32, lane = threadIdx.x % 32, u = u0 + warp;
  const bool key = u < L;
  if (key) {
    load_row(kw[warp], k, dtype, t0 + u, g, hd.n_kv, d, 1.0f);
    load_row(vw[warp], v, dtype, t0 + u, g, hd.n_kv, d, 1.0f);
  }
  float dk_acc[kPer] = {}, dv_acc[kPer] = {};
  for (int h = g * hd.group; h < (g + 1) * hd.group; h++) {
    for (int i0 = u0; i0 < L; i0 += kTile) {  // earlier queries see none of these keys
      __syncthreads();
      load_tile(qt, q, dtype, t0, i0, L, h, hd.n_heads, d, scale);
      load_tile(dot_tile, dout, dtype, t0, i0, L, h, hd.n_heads, d, 1.0f);
      for (int r = threadIdx.x; r < kTile; r += kThreads) {
        const bool in = i0 + r < L;
        lse_s[r] = in ? lse[(int64_t)h * hd.T + t0 + i0 + r] : 0.0f;
        delta_s[r] = in ? delta[(int64_t)h * hd.T + t0 + i0 + r] : 0.0f;
      }
      __syncthreads();
      if (!key) continue;
      const int i = i0 + lane;
      float p = 0.0f, ds = 0.0f;
      if (i < L && i >= u) {
        p = expf(dot(qt + lane * kStride, kw[warp], d) - lse_s[lane]);
        ds = p * (dot(dot_tile + lane * kStride, vw[warp], d) - delta_s[lane]);
      }
      const int count = min(kTile, L - i0);
      add_rows(dv_acc, p, dot_tile, count, d);
      add_rows(dk_acc, ds, qt, count, d);
    }
  }
  if (!key) return;
#pragma unroll
  for (int j = 0; j < kPer; j++) {
    const int c = lane + 32 * j;
    if (c >= d) continue;
    store_f32(dk, dtype, at(t0 + u, g, hd.n_kv, d) + c, dk_acc[j]);
    store_f32(dv, dtype, at(t0 + u, g, hd.n_kv, d) + c, dv_acc[j]);
  }
}

// The checks both directions share; cu_seqlens itself is device memory and not read here.
int check_common(lorac_ctx *ctx, const char *fn, int32_t num_seqs, const int32_t *cu_seqlens, int32_t max_seqlen,
                 int32_t T, int32_t n_heads, int32_t n_kv_heads, int32_t head_dim, int32_t dtype) {
  LORAC_REQUIRE(ctx, num_seqs >= 1 && T >= 0 && cu_seqlens, "%s: need num_seqs >= 1, T >= 0 and cu_seqlens (got %d, %d)",
                fn, num_seqs, T);
  LORAC_REQUIRE(ctx, max_seqlen >= 0 && (int64_t)max_seqlen <= 65535LL * kRows,
                "%s: max_seqlen = %d must be in 0..%d", fn, max_seqlen, 65535 * kRows);
  LORAC_REQUIRE(ctx, n_heads >= 1 && n_kv_heads >= 1 && n_heads % n_kv_heads == 0 && n_heads <= 65535,
                "%s: n_heads (%d) must be a positive multiple of n_kv_heads (%d)", fn, n_heads, n_kv_heads);
  LORAC_REQUIRE(ctx, head_dim >= 8 && head_dim <= kMaxD && head_dim % 2 == 0,
                "%s: head_dim must be even and in 8..128, got %d", fn, head_dim);
  LORAC_REQUIRE(ctx, is_float_dtype(dtype), "%s: dtype must be F32 or BF16, got %d", fn, dtype);
  return LORAC_OK;
}

int64_t workspace_bytes(int32_t T, int32_t n_heads) { return (int64_t)n_heads * T * (int64_t)sizeof(float); }

}  // namespace

extern "C" {

int lorac_attention_forward(lorac_ctx *ctx, int32_t num_seqs, const int32_t *cu_seqlens, int32_t max_seqlen,
                            int32_t T, int32_t n_heads, int32_t n_kv_heads, int32_t head_dim, float scale,
                            const void *q, const void *k, const void *v, int32_t dtype, void *out, float *lse) {
  const char *fn = "lorac_attention_forward";
  ENTER(ctx);
  if (int st = check_common(ctx, fn, num_seqs, cu_seqlens, max_seqlen, T, n_heads, n_kv_heads, head_dim, dtype))
    return st;
  LORAC_REQUIRE(ctx, (q && k && v && out) || T == 0, "%s: q, k, v and out must not be NULL", fn);
  if (T == 0 || max_seqlen == 0) return LORAC_OK;
  const Heads hd{T, n_heads, n_kv_heads, head_dim, n_heads / n_kv_heads};
  const dim3 grid(num_seqs, (max_seqlen + kRows - 1) / kRows, n_heads);
  forward_kernel<<<grid, kThreads, 0, ctx->stream>>>(cu_seqlens, hd, scale, q, k, v, dtype, out, lse);
  LAUNCH_CHECK(ctx, forward_kernel);
  return LORAC_OK;
}

int lorac_attention_backward_workspace(lorac_ctx *ctx, int32_t num_seqs, int32_t max_seqlen, int32_t T,
                                       int32_t n_heads, int32_t n_kv_heads, int32_t head_dim, int64_t *bytes_out) {
  (void)num_seqs, (void)max_seqlen, (void)n_kv_heads, (void)head_dim;
  ENTER(ctx);
  LORAC_REQUIRE(ctx, bytes_out, "lorac_attention_backward_workspace: bytes_out is NULL");
  LORAC_REQUIRE(ctx, T >= 0 && n_heads >= 0, "lorac_attention_backward_workspace: bad sizes T = %d, n_heads = %d", T,
                n_heads);
  *bytes_out = workspace_bytes(T, n_heads);  // delta [n_heads, T]
  return LORAC_OK;
}

int lorac_attention_backward(lorac_ctx *ctx, int32_t num_seqs, const int32_t *cu_seqlens, int32_t max_seqlen,
                             int32_t T, int32_t n_heads, int32_t n_kv_heads, int32_t head_dim, float scale,
                             const void *q, const void *k, const void *v, const void *out, const void *dout,
                             int32_t dtype, const float *lse, void *dq, void *dk, void *dv, void *workspace,
                             int64_t workspace_bytes_given) {
  const char *fn = "lorac_attention_backward";
  ENTER(ctx);
  if (int st = check_common(ctx, fn, num_seqs, cu_seqlens, max_seqlen, T, n_heads, n_kv_heads, head_dim, dtype))
    return st;
  LORAC_REQUIRE(ctx, (q && k && v && out && dout && lse && dq && dk && dv) || T == 0,
                "%s: q, k, v, out, dout, lse, dq, dk and dv must not be NULL", fn);
  const int64_t need = workspace_bytes(T, n_heads);
  LORAC_REQUIRE(ctx, workspace_bytes_given >= need && (workspace || need == 0),
                "%s: the workspace holds %lld bytes, %lld needed (ask lorac_attention_backward_workspace)", fn,
                (long long)workspace_bytes_given, (long long)need);
  if (T == 0 || max_seqlen == 0) return LORAC_OK;
  const Heads hd{T, n_heads, n_kv_heads, head_dim, n_heads / n_kv_heads};
  float *delta = (float *)workspace;
  const int64_t rows = (int64_t)T * n_heads;
  delta_kernel<<<(unsigned)((rows + kRows - 1) / kRows), kThreads, 0, ctx->stream>>>(hd, out, dout, dtype, delta);
  LAUNCH_CHECK(ctx, delta_kernel);
  const unsigned blocks_y = (max_seqlen + kRows - 1) / kRows;
  dq_kernel<<<dim3(num_seqs, blocks_y, n_heads), kThreads, 0, ctx->stream>>>(cu_seqlens, hd, scale, q, k, v, dout,
                                                                             dtype, lse, delta, dq);
  LAUNCH_CHECK(ctx, dq_kernel);
  dkdv_kernel<<<dim3(num_seqs, blocks_y, n_kv_heads), kThreads, 0, ctx->stream>>>(cu_seqlens, hd, scale, q, k, v,
                                                                                  dout, dtype, lse, delta, dk, dv);
  LAUNCH_CHECK(ctx, dkdv_kernel);
  return LORAC_OK;
}

}  // extern "C"
