// The lm_head fused with cross-entropy, on the selected rows only. The
// selected rows of H are gathered once; the vocabulary is then walked in
// chunks: each chunk's logits Z = Hsel . W_chunk^T (lorac_gemm: bf16 tensor
// cores when W is BF16) are folded into a running log-sum-exp per row and
// dropped, so the [n_rows, V] logits never exist. For dH a second walk turns
// each chunk into P = softmax - onehot and adds grad_scale * P . W_chunk into
// an fp32 [n_rows, D] gradient, scattered into dH at the end.
//
// rows and targets live in device memory and are not checked on the host: a
// row outside [0, T) or a target outside [0, V) gives that row a NaN loss, and
// such a row's gradient is not written.
#include <algorithm>
#include <cmath>
#include <string>

#include "reduce.cuh"

namespace {

constexpr int kThreads = 256;
constexpr int64_t kChunkElems = 1 << 22;  // logits of one chunk: 16 MB of fp32 at most

int dtype_size(int dtype) { return dtype == LORAC_F32 ? 4 : 2; }

// Hsel[k, :] = H[rows[k], :] in H's dtype (bits copied); NaN for a row outside [0, T).
__global__ void gather_kernel(int n_rows, const int32_t *rows, int T, int D, const void *H, int dtype, void *Hsel) {
  for (int k = blockIdx.x; k < n_rows; k += gridDim.x) {
    const int r = rows[k];
    const bool ok = r >= 0 && r < T;
    for (int c = threadIdx.x; c < D; c += blockDim.x) {
      const int64_t dst = (int64_t)k * D + c, src = (int64_t)r * D + c;
      if (dtype == LORAC_F32)
        ((float *)Hsel)[dst] = ok ? ((const float *)H)[src] : __int_as_float(0x7fc00000);
      else
        ((uint16_t *)Hsel)[dst] = ok ? ((const uint16_t *)H)[src] : (uint16_t)0x7fc0;
    }
  }
}

// Per row: m = -inf, l = 0, the target's logit NaN until its chunk is seen.
__global__ void init_stats_kernel(int n_rows, float *m, float *l, float *zt) {
  for (int k = blockIdx.x * blockDim.x + threadIdx.x; k < n_rows; k += gridDim.x * blockDim.x) {
    m[k] = -INFINITY;
    l[k] = 0.0f;
    zt[k] = __int_as_float(0x7fc00000);
  }
}

// Folds the logits Z [n_rows, vc] of vocabulary v0.. into (m, l) and picks the target's logit. One block per row.
__global__ void fold_kernel(int n_rows, const float *Z, int vc, int v0, const int32_t *targets, float *m, float *l,
                            float *zt) {
  __shared__ float scratch[32];
  for (int k = blockIdx.x; k < n_rows; k += gridDim.x) {
    const float *z = Z + (int64_t)k * vc;
    float mx = -INFINITY;
    for (int j = threadIdx.x; j < vc; j += kThreads) mx = fmaxf(mx, z[j]);
    mx = fmaxf(m[k], block_max(mx, scratch));
    float sum = 0.0f;
    for (int j = threadIdx.x; j < vc; j += kThreads) sum += expf(z[j] - mx);
    sum = block_sum(sum, scratch);
    if (threadIdx.x == 0) {
      l[k] = l[k] * expf(m[k] - mx) + sum;
      m[k] = mx;
      const int t = targets[k];
      if (t >= v0 && t < v0 + vc) zt[k] = z[t - v0];
    }
  }
}

// loss_k = m + log(l) - z_target (kept as lse in m for the gradient pass);
// loss_sum = the sum in fp64, in a fixed order. One block.
__global__ void finish_kernel(int n_rows, float *m, const float *l, const float *zt, float *row_loss, float *loss_sum) {
  __shared__ double part[kThreads];
  double total = 0.0;
  for (int k = threadIdx.x; k < n_rows; k += kThreads) {
    const double lse = (double)m[k] + log((double)l[k]);
    const float loss = (float)(lse - zt[k]);
    if (row_loss) row_loss[k] = loss;
    total += loss;
    m[k] = (float)lse;
  }
  part[threadIdx.x] = total;
  __syncthreads();
  for (int half = kThreads / 2; half > 0; half /= 2) {
    if ((int)threadIdx.x < half) part[threadIdx.x] += part[threadIdx.x + half];
    __syncthreads();
  }
  if (threadIdx.x == 0) loss_sum[0] = (float)part[0];
}

// Z [n_rows, vc] becomes softmax - onehot(target) over vocabulary v0.., from the rows' lse.
__global__ void probs_kernel(int n_rows, float *Z, int vc, int v0, const int32_t *targets, const float *lse) {
  const int64_t size = (int64_t)n_rows * vc;
  for (int64_t e = blockIdx.x * (int64_t)blockDim.x + threadIdx.x; e < size; e += (int64_t)gridDim.x * blockDim.x) {
    const int k = (int)(e / vc), j = (int)(e % vc);
    Z[e] = expf(Z[e] - lse[k]) - (targets[k] == v0 + j ? 1.0f : 0.0f);
  }
}

// dH[rows[k], :] (+)= G[k, :]; rows outside [0, T) are skipped.
__global__ void scatter_kernel(int n_rows, const int32_t *rows, int T, int D, const float *G, void *dH, int dh_dtype,
                               int accumulate) {
  for (int k = blockIdx.x; k < n_rows; k += gridDim.x) {
    const int r = rows[k];
    if (r < 0 || r >= T) continue;
    for (int c = threadIdx.x; c < D; c += blockDim.x) {
      const int64_t dst = (int64_t)r * D + c;
      const float g = G[(int64_t)k * D + c];
      store_f32(dH, dh_dtype, dst, accumulate ? __fadd_rn(load_f32(dH, dh_dtype, dst), g) : g);
    }
  }
}

int check(lorac_ctx *ctx, const char *fn, int32_t n_rows, const int32_t *rows, int32_t T, int32_t D, int32_t V,
          const void *H, int32_t h_dtype, const void *W, int32_t w_dtype) {
  LORAC_REQUIRE(ctx, n_rows >= 0 && T >= 0 && D >= 1 && V >= 1, "%s: bad sizes n_rows = %d, T = %d, D = %d, V = %d",
                fn, n_rows, T, D, V);
  LORAC_REQUIRE(ctx, is_float_dtype(h_dtype) && is_float_dtype(w_dtype),
                "%s: H and W dtypes must be F32 or BF16 (got %d, %d)", fn, h_dtype, w_dtype);
  LORAC_REQUIRE(ctx, (rows && H && W) || n_rows == 0, "%s: rows, H and W must not be NULL", fn);
  return LORAC_OK;
}

// Re-labels a failure of a nested lorac_gemm call as this op's.
int nested(lorac_ctx *ctx, const char *fn, int status) {
  if (status == LORAC_OK) return status;
  const std::string inner = ctx->last_error;
  return lorac_fail(ctx, status, "%s: %s", fn, inner.c_str());
}

// Scratch of one call, freed in stream order however the call ends.
struct Scratch {
  lorac_ctx *ctx;
  void *ptrs[4] = {};
  int count = 0;
  cudaError_t get(size_t bytes, void **out) {
    cudaError_t err = lorac_scratch_alloc(ctx, bytes, out);
    if (err == cudaSuccess) ptrs[count++] = *out;
    return err;
  }
  ~Scratch() {
    for (int i = 0; i < count; i++) lorac_scratch_free(ctx, ptrs[i]);
  }
};

const void *w_chunk(const void *W, int w_dtype, int64_t v0, int D) {
  return (const char *)W + v0 * D * dtype_size(w_dtype);
}

int cross_entropy(lorac_ctx *ctx, int32_t n_rows, const int32_t *rows, const int32_t *targets, int32_t T, int32_t D,
                  int32_t V, const void *H, int32_t h_dtype, const void *W, int32_t w_dtype, float grad_scale,
                  float *loss_sum, float *row_loss, void *dH, int32_t dh_dtype, int32_t accumulate) {
  const char *fn = "lorac_linear_cross_entropy";
  if (int st = check(ctx, fn, n_rows, rows, T, D, V, H, h_dtype, W, w_dtype)) return st;
  LORAC_REQUIRE(ctx, loss_sum, "%s: loss_sum must not be NULL", fn);
  LORAC_REQUIRE(ctx, targets || n_rows == 0, "%s: targets must not be NULL", fn);
  const bool grad = dH != nullptr;
  LORAC_REQUIRE(ctx, !grad || is_float_dtype(dh_dtype), "%s: dH dtype must be F32 or BF16, got %d", fn, dh_dtype);
  if (n_rows == 0) {
    CUDA_TRY(ctx, cudaMemsetAsync(loss_sum, 0, sizeof(float), ctx->stream));
    return LORAC_OK;
  }
  const int vc_max = (int)std::min<int64_t>(V, std::max<int64_t>(256, kChunkElems / n_rows));
  Scratch scratch{ctx};
  void *Hsel;
  float *Z, *stats, *G = nullptr;
  CUDA_CHECK(ctx, scratch.get((size_t)n_rows * D * dtype_size(h_dtype), &Hsel), "allocating the gathered rows");
  CUDA_CHECK(ctx, scratch.get((size_t)n_rows * vc_max * sizeof(float), (void **)&Z), "allocating a chunk of logits");
  CUDA_CHECK(ctx, scratch.get((size_t)3 * n_rows * sizeof(float), (void **)&stats), "allocating the row statistics");
  float *m = stats, *l = stats + n_rows, *zt = stats + 2 * n_rows;
  const unsigned row_blocks = (unsigned)std::min(n_rows, 65535);
  gather_kernel<<<row_blocks, 128, 0, ctx->stream>>>(n_rows, rows, T, D, H, h_dtype, Hsel);
  LAUNCH_CHECK(ctx, gather_kernel);
  init_stats_kernel<<<grid_for(n_rows, 256), 256, 0, ctx->stream>>>(n_rows, m, l, zt);
  LAUNCH_CHECK(ctx, init_stats_kernel);
  for (int v0 = 0; v0 < V; v0 += vc_max) {
    const int vc = std::min(vc_max, V - v0);
    if (int st = nested(ctx, fn,
                        lorac_gemm(ctx, 0, 1, n_rows, vc, D, 1.0f, Hsel, h_dtype, D, w_chunk(W, w_dtype, v0, D),
                                   w_dtype, D, 0.0f, Z, LORAC_F32, vc)))
      return st;
    fold_kernel<<<row_blocks, kThreads, 0, ctx->stream>>>(n_rows, Z, vc, v0, targets, m, l, zt);
    LAUNCH_CHECK(ctx, fold_kernel);
  }
  finish_kernel<<<1, kThreads, 0, ctx->stream>>>(n_rows, m, l, zt, row_loss, loss_sum);
  LAUNCH_CHECK(ctx, finish_kernel);
  if (!grad) return LORAC_OK;
  CUDA_CHECK(ctx, scratch.get((size_t)n_rows * D * sizeof(float), (void **)&G), "allocating the row gradients");
  for (int v0 = 0; v0 < V; v0 += vc_max) {
    const int vc = std::min(vc_max, V - v0);
    const void *wc = w_chunk(W, w_dtype, v0, D);
    if (int st = nested(ctx, fn,
                        lorac_gemm(ctx, 0, 1, n_rows, vc, D, 1.0f, Hsel, h_dtype, D, wc, w_dtype, D, 0.0f, Z,
                                   LORAC_F32, vc)))
      return st;
    probs_kernel<<<grid_for((int64_t)n_rows * vc, 256), 256, 0, ctx->stream>>>(n_rows, Z, vc, v0, targets, m);
    LAUNCH_CHECK(ctx, probs_kernel);
    if (int st = nested(ctx, fn,
                        lorac_gemm(ctx, 0, 0, n_rows, D, vc, grad_scale, Z, LORAC_F32, vc, wc, w_dtype, D,
                                   v0 == 0 ? 0.0f : 1.0f, G, LORAC_F32, D)))
      return st;
  }
  scatter_kernel<<<row_blocks, 128, 0, ctx->stream>>>(n_rows, rows, T, D, G, dH, dh_dtype, accumulate);
  LAUNCH_CHECK(ctx, scatter_kernel);
  return LORAC_OK;
}

int logits(lorac_ctx *ctx, int32_t n_rows, const int32_t *rows, int32_t T, int32_t D, int32_t V, const void *H,
           int32_t h_dtype, const void *W, int32_t w_dtype, float *out) {
  const char *fn = "lorac_linear_logits";
  if (int st = check(ctx, fn, n_rows, rows, T, D, V, H, h_dtype, W, w_dtype)) return st;
  LORAC_REQUIRE(ctx, out || n_rows == 0, "%s: logits must not be NULL", fn);
  if (n_rows == 0) return LORAC_OK;
  Scratch scratch{ctx};
  void *Hsel;
  CUDA_CHECK(ctx, scratch.get((size_t)n_rows * D * dtype_size(h_dtype), &Hsel), "allocating the gathered rows");
  gather_kernel<<<(unsigned)std::min(n_rows, 65535), 128, 0, ctx->stream>>>(n_rows, rows, T, D, H, h_dtype, Hsel);
  LAUNCH_CHECK(ctx, gather_kernel);
  return nested(ctx, fn, lorac_gemm(ctx, 0, 1, n_rows, V, D, 1.0f, Hsel, h_dtype, D, W, w_dtype, D, 0.0f, out,
                                    LORAC_F32, V));
}

}  // namespace

extern "C" {

int lorac_linear_cross_entropy(lorac_ctx *ctx, int32_t n_rows, const int32_t *rows, const int32_t *targets, int32_t T,
                               int32_t D, int32_t V, const void *H, int32_t h_dtype, const void *W, int32_t w_dtype,
                               float grad_scale, float *loss_sum, float *row_loss, void *dH, int32_t dh_dtype,
                               int32_t accumulate) {
  ENTER(ctx);
  return cross_entropy(ctx, n_rows, rows, targets, T, D, V, H, h_dtype, W, w_dtype, grad_scale, loss_sum, row_loss,
                       dH, dh_dtype, accumulate);
}

int lorac_linear_logits(lorac_ctx *ctx, int32_t n_rows, const int32_t *rows, int32_t T, int32_t D, int32_t V,
                        const void *H, int32_t h_dtype, const void *W, int32_t w_dtype, float *logits_out) {
  ENTER(ctx);
  return logits(ctx, n_rows, rows, T, D, V, H, h_dtype, W, w_dtype, logits_out);
}

}  // extern "C"
