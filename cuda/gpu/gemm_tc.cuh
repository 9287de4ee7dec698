// The tensor-core GEMM: C[M,N] = alpha * op(A)[M,K] . op(B)[K,N] + beta * C,
// in bf16 with fp32 accumulation (WMMA 16x16x16), as DESIGN.md fixes for
// the GPU. Operands are F32, BF16 or NF4 in memory and become bf16 on their
// way into shared memory: F32 rounds to nearest even, NF4 is dequantized
// (code * absmax in fp32, then rounded) — so the NF4 GEMM never writes a
// dequantized weight to global memory.
//
// Block tile BM x BN, k-slices of BK = 32; each warp owns a (BM / WARPS_M) x
// (BN / WARPS_N) piece of C as 16x16 accumulator fragments. The next k-slice
// is loaded into registers while the tensor cores work on the current one in
// shared memory. Tiles keep each operand's memory order (k-contiguous or
// outer-contiguous), so every global read is a run of 8 consecutive elements.
// Edges (any M, N, K) load zeros and skip stores.
#pragma once

#include <mma.h>

#include <type_traits>

#include "epilogue.cuh"
#include "nf4_codes.cuh"

namespace tc {

constexpr int BK = 32;
constexpr int kPad = 8;  // bf16 elements of padding per smem row: spreads rows over banks

// One operand as stored: a row-major S [rows, cols] with leading dimension ld,
// of F32, BF16 or NF4 (two codes per byte, first in the high nibble, the
// scale of flat element i = r * ld + c being absmax[i >> block_shift]).
struct Operand {
  const void *p;
  int dtype;
  int64_t ld;
  int rows, cols;
  bool vec;  // runs of 8 may be read with vector loads (base and ld aligned for it)
  const float *absmax;
  int block_shift;
};

// Eight consecutive elements of one stored row, as read from memory.
struct Chunk {
  uint4 lo, hi;
  int mode;  // kBits32: 8 floats in lo, hi; kBits16: 8 bf16 in lo; kNf4: codes in lo.x, absmax in lo.y
};
constexpr int kBits32 = 0, kBits16 = 1, kNf4 = 2;

__device__ __forceinline__ float nf4_value(const Operand &op, const float *code, int64_t i) {
  const uint8_t byte = ((const uint8_t *)op.p)[i >> 1];
  return code[(i & 1) ? byte & 15 : byte >> 4] * op.absmax[i >> op.block_shift];
}

// Elements (r, c .. c+7) of S one by one, those outside S as 0: the edges
// and unaligned operands. Not inlined: it is cold, and inlining it into every
// unrolled fetch multiplies the compile time.
__device__ __noinline__ Chunk fetch_each(const Operand &op, const float *code, int r, int c) {
  const int64_t off = (int64_t)r * op.ld + c;
  float v[8];
#pragma unroll
  for (int j = 0; j < 8; j++) {
    v[j] = 0.0f;
    if (r < op.rows && c + j < op.cols) {
      v[j] = op.dtype == LORAC_NF4 ? nf4_value(op, code, off + j) : load_f32(op.p, op.dtype, off + j);
    }
  }
  Chunk ch;
  ch.lo = make_uint4(__float_as_uint(v[0]), __float_as_uint(v[1]), __float_as_uint(v[2]), __float_as_uint(v[3]));
  ch.hi = make_uint4(__float_as_uint(v[4]), __float_as_uint(v[5]), __float_as_uint(v[6]), __float_as_uint(v[7]));
  ch.mode = kBits32;
  return ch;
}

// Elements (r, c .. c+7) of S; those outside S read as 0.
__device__ __forceinline__ Chunk fetch(const Operand &op, const float *code, int r, int c) {
  if (!op.vec || r >= op.rows || c + 8 > op.cols) return fetch_each(op, code, r, c);
  Chunk ch;
  const int64_t off = (int64_t)r * op.ld + c;
  if (op.dtype == LORAC_BF16) {
    ch.lo = *(const uint4 *)((const uint16_t *)op.p + off);
    ch.mode = kBits16;
  } else if (op.dtype == LORAC_F32) {
    ch.lo = *(const uint4 *)((const float *)op.p + off);
    ch.hi = *(const uint4 *)((const float *)op.p + off + 4);
    ch.mode = kBits32;
  } else {
    // NF4: off is a multiple of 8, so the 8 codes are 4 aligned bytes in one absmax block.
    ch.lo.x = *(const uint32_t *)((const uint8_t *)op.p + (off >> 1));
    ch.lo.y = __float_as_uint(op.absmax[off >> op.block_shift]);
    ch.mode = kNf4;
  }
  return ch;
}

// Two floats as bf16 (round to nearest even), a in the low half.
__device__ __forceinline__ uint32_t pack_bf16x2(float a, float b) {
  const __nv_bfloat162 h = __floats2bfloat162_rn(a, b);
  return (uint32_t)__bfloat16_as_ushort(h.x) | (uint32_t)__bfloat16_as_ushort(h.y) << 16;
}

// The chunk as 8 bf16 (element 0 in the low half of .x).
__device__ __forceinline__ uint4 to_bf16(const Chunk &ch, const float *code) {
  if (ch.mode == kBits16) return ch.lo;
  float v[8];
  if (ch.mode == kNf4) {
    const float scale = __uint_as_float(ch.lo.y);
#pragma unroll
    for (int j = 0; j < 4; j++) {  // byte j holds elements 2j (high nibble) and 2j+1
      const uint32_t byte = (ch.lo.x >> (8 * j)) & 0xffu;
      v[2 * j] = code[byte >> 4] * scale;
      v[2 * j + 1] = code[byte & 15] * scale;
    }
  } else {
    v[0] = __uint_as_float(ch.lo.x), v[1] = __uint_as_float(ch.lo.y);
    v[2] = __uint_as_float(ch.lo.z), v[3] = __uint_as_float(ch.lo.w);
    v[4] = __uint_as_float(ch.hi.x), v[5] = __uint_as_float(ch.hi.y);
    v[6] = __uint_as_float(ch.hi.z), v[7] = __uint_as_float(ch.hi.w);
  }
  return make_uint4(pack_bf16x2(v[0], v[1]), pack_bf16x2(v[2], v[3]), pack_bf16x2(v[4], v[5]),
                    pack_bf16x2(v[6], v[7]));
}

// One operand's tile of a k-slice: OUTER rows of C's side (M for A, N for B)
// by BK. K_CONTIG: stored as [OUTER][BK] (k runs along memory), else [BK][OUTER].
template <int OUTER, bool K_CONTIG, int THREADS>
struct Tile {
  static constexpr int ROWS = K_CONTIG ? OUTER : BK;
  static constexpr int COLS = K_CONTIG ? BK : OUTER;
  static constexpr int LD = COLS + kPad;
  static constexpr int ELEMS = ROWS * LD;
  static constexpr int CHUNKS_PER_ROW = COLS / 8;
  static constexpr int PER_THREAD = ROWS * CHUNKS_PER_ROW / THREADS;
  static_assert(ROWS * CHUNKS_PER_ROW % THREADS == 0, "a tile must split evenly over the threads");

  Chunk chunk[PER_THREAD];

  // Reads the tile at (outer0, k0) into registers.
  __device__ __forceinline__ void fetch(const Operand &op, const float *code, int outer0, int k0) {
#pragma unroll
    for (int i = 0; i < PER_THREAD; i++) {
      const int idx = threadIdx.x + i * THREADS;
      const int r = idx / CHUNKS_PER_ROW, c = idx % CHUNKS_PER_ROW * 8;
      chunk[i] = K_CONTIG ? tc::fetch(op, code, outer0 + r, k0 + c) : tc::fetch(op, code, k0 + r, outer0 + c);
    }
  }

  // Writes the registers to shared memory as bf16.
  __device__ __forceinline__ void store(__nv_bfloat16 *smem, const float *code) const {
#pragma unroll
    for (int i = 0; i < PER_THREAD; i++) {
      const int idx = threadIdx.x + i * THREADS;
      const int r = idx / CHUNKS_PER_ROW, c = idx % CHUNKS_PER_ROW * 8;
      *(uint4 *)(smem + r * LD + c) = to_bf16(chunk[i], code);
    }
  }
};

template <int BM, int BN, int WARPS_M, int WARPS_N, bool A_K_CONTIG, bool B_K_CONTIG>
__global__ void __launch_bounds__(WARPS_M *WARPS_N * 32)
    gemm_kernel(int M, int N, int K, Operand a, Operand b, Epilogue epi, Nf4Codes codes) {
  using namespace nvcuda;
  constexpr int THREADS = WARPS_M * WARPS_N * 32;
  constexpr int WTM = BM / WARPS_M, WTN = BN / WARPS_N;  // one warp's piece of C
  constexpr int FM = WTM / 16, FN = WTN / 16;
  using TileA = Tile<BM, A_K_CONTIG, THREADS>;
  using TileB = Tile<BN, B_K_CONTIG, THREADS>;
  // op(A) k-contiguous is a row-major 16x16 fragment; op(B) k-contiguous ([N][K]) a column-major one.
  using LayoutA = std::conditional_t<A_K_CONTIG, wmma::row_major, wmma::col_major>;
  using LayoutB = std::conditional_t<B_K_CONTIG, wmma::col_major, wmma::row_major>;

  __shared__ __align__(128) __nv_bfloat16 As[TileA::ELEMS];
  __shared__ __align__(128) __nv_bfloat16 Bs[TileB::ELEMS];
  __shared__ __align__(128) float scratch[WARPS_M * WARPS_N][16 * 16];
  __shared__ float code[16];

  if (threadIdx.x == 0) {
#pragma unroll
    for (int i = 0; i < 16; i++) code[i] = codes.code[i];  // constant indices: no local copy of the argument
  }
  __syncthreads();

  const int warp = threadIdx.x / 32, lane = threadIdx.x % 32;
  const int wm = warp / WARPS_N, wn = warp % WARPS_N;
  const int m0 = blockIdx.y * BM, n0 = blockIdx.x * BN;

  wmma::fragment<wmma::accumulator, 16, 16, 16, float> acc[FM][FN];
#pragma unroll
  for (int i = 0; i < FM; i++)
#pragma unroll
    for (int j = 0; j < FN; j++) wmma::fill_fragment(acc[i][j], 0.0f);

  TileA ta;
  TileB tb;
  ta.fetch(a, code, m0, 0);
  tb.fetch(b, code, n0, 0);
  for (int k0 = 0; k0 < K; k0 += BK) {
    ta.store(As, code);
    tb.store(Bs, code);
    __syncthreads();
    if (k0 + BK < K) {  // the next slice travels while the tensor cores run
      ta.fetch(a, code, m0, k0 + BK);
      tb.fetch(b, code, n0, k0 + BK);
    }
#pragma unroll
    for (int kk = 0; kk < BK; kk += 16) {
      wmma::fragment<wmma::matrix_a, 16, 16, 16, __nv_bfloat16, LayoutA> fa[FM];
      wmma::fragment<wmma::matrix_b, 16, 16, 16, __nv_bfloat16, LayoutB> fb[FN];
#pragma unroll
      for (int i = 0; i < FM; i++) {
        const int m = wm * WTM + i * 16;
        wmma::load_matrix_sync(fa[i], A_K_CONTIG ? As + m * TileA::LD + kk : As + kk * TileA::LD + m, TileA::LD);
      }
#pragma unroll
      for (int j = 0; j < FN; j++) {
        const int n = wn * WTN + j * 16;
        wmma::load_matrix_sync(fb[j], B_K_CONTIG ? Bs + n * TileB::LD + kk : Bs + kk * TileB::LD + n, TileB::LD);
      }
#pragma unroll
      for (int i = 0; i < FM; i++)
#pragma unroll
        for (int j = 0; j < FN; j++) wmma::mma_sync(acc[i][j], fa[i], fb[j], acc[i][j]);
    }
    __syncthreads();
  }

  // Each warp passes its fragments through its own 16x16 scratch to the epilogue.
  float *tile = scratch[warp];
#pragma unroll
  for (int i = 0; i < FM; i++)
#pragma unroll
    for (int j = 0; j < FN; j++) {
      wmma::store_matrix_sync(tile, acc[i][j], 16, wmma::mem_row_major);
      __syncwarp();
      for (int e = lane; e < 256; e += 32) {
        const int m = m0 + wm * WTM + i * 16 + e / 16, n = n0 + wn * WTN + j * 16 + e % 16;
        if (m < M && n < N) epi(m, n, tile[e]);
      }
      __syncwarp();
    }
}

// Launches the GEMM with the tile size that fills the GPU best.
template <bool A_K_CONTIG, bool B_K_CONTIG>
cudaError_t launch(cudaStream_t stream, int sm_count, int M, int N, int K, const Operand &a, const Operand &b,
                   const Epilogue &epi) {
  const Nf4Codes codes = nf4_codes();
  const int64_t big_tiles = (int64_t)((M + 127) / 128) * ((N + 127) / 128);
  if (big_tiles >= sm_count) {
    dim3 grid((N + 127) / 128, (M + 127) / 128);
    gemm_kernel<128, 128, 2, 4, A_K_CONTIG, B_K_CONTIG><<<grid, 256, 0, stream>>>(M, N, K, a, b, epi, codes);
  } else {
    dim3 grid((N + 63) / 64, (M + 63) / 64);
    gemm_kernel<64, 64, 2, 2, A_K_CONTIG, B_K_CONTIG><<<grid, 128, 0, stream>>>(M, N, K, a, b, epi, codes);
  }
  return cudaGetLastError();
}

// Whether runs of 8 elements of S may use vector loads: 16-byte aligned
// for F32 / BF16, 4-byte aligned codes for NF4.
static inline bool vector_ok(const void *p, int dtype, int64_t ld) {
  const uintptr_t addr = (uintptr_t)p;
  if (dtype == LORAC_F32) return addr % 16 == 0 && ld % 4 == 0;
  if (dtype == LORAC_BF16) return addr % 16 == 0 && ld % 8 == 0;
  return addr % 4 == 0 && ld % 8 == 0;
}

// A dense F32 / BF16 operand S [rows, cols] with leading dimension ld.
static inline Operand dense(const void *p, int dtype, int64_t ld, int rows, int cols) {
  return Operand{p, dtype, ld, rows, cols, vector_ok(p, dtype, ld), nullptr, 0};
}

// An NF4 weight W [rows, cols] (row-major, ld = cols) with its absmax.
static inline Operand nf4(const uint8_t *w, const float *absmax, int block_shift, int rows, int cols) {
  return Operand{w, LORAC_NF4, cols, rows, cols, vector_ok(w, LORAC_NF4, cols), absmax, block_shift};
}

}  // namespace tc
