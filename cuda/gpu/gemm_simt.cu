// The fp32 GEMM kernel of gemm_simt.cuh: 64x64 block tiles, k-slices of 16,
// 256 threads each computing 4x4 outputs spaced 16 apart (conflict-free
// shared-memory reads, coalesced stores), products and sums in fp32 (FMA).
//
// LoRA's gradients dA [r,K] and dB [N,r] are small outputs of long
// reductions (over all tokens): too few tiles to fill the GPU. Those split the
// reduction over gridDim.z; each split writes its partial tile to a workspace
// and a second kernel adds the partials in split order (deterministic, unlike
// atomics) before the epilogue.
#include <algorithm>

#include "gemm_simt.cuh"

namespace simt {

constexpr int BM = 64, BN = 64, BK = 16, THREADS = 256;
constexpr int kMinSplitDepth = 128;  // a split's share of the reduction is never shallower
constexpr int kMaxSplits = 64;

// partials == nullptr: C = epi(sum over all of K). Else split z sums
// k in [z * k_split, (z + 1) * k_split) into partials[z][M][N].
__global__ void __launch_bounds__(THREADS)
    gemm_kernel(int M, int N, int K, int k_split, Operand a, Operand b, Epilogue epi, float *partials) {
  __shared__ float As[BK][BM + 4];
  __shared__ float Bs[BK][BN + 4];
  const int tx = threadIdx.x % 16, ty = threadIdx.x / 16;
  const int m0 = blockIdx.y * BM, n0 = blockIdx.x * BN;
  const int k_begin = blockIdx.z * k_split, k_end = min(K, k_begin + k_split);
  float acc[4][4] = {};
  for (int k0 = k_begin; k0 < k_end; k0 += BK) {
#pragma unroll
    for (int i = 0; i < BM * BK / THREADS; i++) {
      const int idx = threadIdx.x + i * THREADS;
      // Neighbouring threads take neighbouring addresses of each operand's memory order.
      const int am = a.trans ? idx % BM : idx / BK, ak = a.trans ? idx / BM : idx % BK;
      const int bn = b.trans ? idx / BK : idx % BN, bk = b.trans ? idx % BK : idx / BN;
      const int m = m0 + am, n = n0 + bn;
      As[ak][am] = m < M && k0 + ak < k_end ? a.at(m, k0 + ak) : 0.0f;
      Bs[bk][bn] = n < N && k0 + bk < k_end ? b.at(k0 + bk, n) : 0.0f;
    }
    __syncthreads();
#pragma unroll
    for (int kk = 0; kk < BK; kk++) {
      float av[4], bv[4];
#pragma unroll
      for (int i = 0; i < 4; i++) av[i] = As[kk][ty + 16 * i], bv[i] = Bs[kk][tx + 16 * i];
#pragma unroll
      for (int i = 0; i < 4; i++)
#pragma unroll
        for (int j = 0; j < 4; j++) acc[i][j] = fmaf(av[i], bv[j], acc[i][j]);
    }
    __syncthreads();
  }
#pragma unroll
  for (int i = 0; i < 4; i++)
#pragma unroll
    for (int j = 0; j < 4; j++) {
      const int m = m0 + ty + 16 * i, n = n0 + tx + 16 * j;
      if (m >= M || n >= N) continue;
      if (partials)
        partials[((int64_t)blockIdx.z * M + m) * N + n] = acc[i][j];
      else
        epi(m, n, acc[i][j]);
    }
}

// C = epi(sum of the splits' partials), added in split order.
__global__ void reduce_splits_kernel(int M, int N, int splits, const float *partials, Epilogue epi) {
  const int64_t size = (int64_t)M * N;
  for (int64_t i = blockIdx.x * (int64_t)blockDim.x + threadIdx.x; i < size; i += (int64_t)gridDim.x * blockDim.x) {
    float sum = 0.0f;
    for (int z = 0; z < splits; z++) sum += partials[z * size + i];
    epi((int)(i / N), (int)(i % N), sum);
  }
}

cudaError_t gemm(lorac_ctx *ctx, int M, int N, int K, const Operand &a, const Operand &b, const Epilogue &epi) {
  if (M == 0 || N == 0) return cudaSuccess;
  const int tiles_n = (N + BN - 1) / BN, tiles_m = (M + BM - 1) / BM;
  const int64_t tiles = (int64_t)tiles_n * tiles_m;
  // Split the reduction only when the tiles leave SMs idle; aim at two blocks per SM.
  int64_t splits = 1;
  if (tiles < ctx->sm_count) splits = std::min<int64_t>({(2 * ctx->sm_count + tiles - 1) / tiles, K / kMinSplitDepth, kMaxSplits});
  if (splits <= 1) {
    gemm_kernel<<<dim3(tiles_n, tiles_m, 1), THREADS, 0, ctx->stream>>>(M, N, K, K, a, b, epi, nullptr);
    return cudaGetLastError();
  }
  const int k_split = (int)((K + splits - 1) / splits + BK - 1) / BK * BK;
  splits = (K + k_split - 1) / k_split;
  float *partials = nullptr;
  cudaError_t err = lorac_scratch_alloc(ctx, (size_t)splits * M * N * sizeof(float), (void **)&partials);
  if (err != cudaSuccess) return err;
  gemm_kernel<<<dim3(tiles_n, tiles_m, (unsigned)splits), THREADS, 0, ctx->stream>>>(M, N, K, k_split, a, b, epi,
                                                                                     partials);
  err = cudaGetLastError();
  if (err == cudaSuccess) {
    reduce_splits_kernel<<<grid_for((int64_t)M * N, 256), 256, 0, ctx->stream>>>(M, N, (int)splits, partials, epi);
    err = cudaGetLastError();
  }
  const cudaError_t free_err = lorac_scratch_free(ctx, partials);
  return err != cudaSuccess ? err : free_err;
}

}  // namespace simt
