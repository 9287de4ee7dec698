// NF4 in bitsandbytes' format on the GPU: blockwise absmax quantization to the
// 16-value normal-float code, its inverse, and the 8-bit double quantization
// of the absmax (compress_statistics) with its inverse.
//
// Every result is bit for bit the CPU build's (cuda/cpu/nf4.cpp, which
// documents how each step reproduces bitsandbytes 0.50.2): the same fp32
// operations in the same order, products and sums rounded separately
// (__fmul_rn / __fadd_rn keep nvcc from fusing them into an FMA), and the
// offset summed in torch's order by one warp (absmax_mean_kernel).
#include "common.cuh"
#include "dynamic_map.cuh"
#include "nf4_codes.cuh"

namespace {

constexpr int kDoubleBlock = 256;     // bitsandbytes' blocksize for the absmax codes
constexpr float kAbsmaxFloor = 1e-38f;  // bitsandbytes' floor under absmax
constexpr int kWarpsPerBlock = 8;

// torch.bucketize(v, midpoints): the number of midpoints below v; NaN gives 15.
__device__ __forceinline__ uint32_t nf4_code_of(const Nf4Codes &t, float v) {
  uint32_t q = 0;
#pragma unroll
  for (int i = 0; i < 15; i++) q += !(v <= t.mid[i]);
  return q;
}

// torch.clamp to [-1, 1]: NaN passes through.
__device__ __forceinline__ float clamp1(float v) { return v < -1.0f ? -1.0f : (v > 1.0f ? 1.0f : v); }

__device__ __forceinline__ float warp_max(float v) {
  for (int o = 16; o > 0; o >>= 1) {
    float other = __shfl_xor_sync(0xffffffffu, v, o);
    v = (other > v || isnan(other)) ? other : v;  // NaN wins, as torch.max
  }
  return v;
}

// One warp per NF4 block: the block's absmax, then one packed byte per pair.
__global__ void nf4_quantize_kernel(const void *w, int w_dtype, int64_t n, int blocksize, uint8_t *packed,
                                    float *absmax, Nf4Codes t) {
  const int lane = threadIdx.x % 32;
  const int64_t b = (int64_t)blockIdx.x * kWarpsPerBlock + threadIdx.x / 32;
  const int64_t start = b * blocksize;
  if (start >= n) return;
  const int64_t end = min(n, start + blocksize);
  const bool partial = end - start < blocksize;
  float amax = 0.0f;
  for (int64_t i = start + lane; i < end; i += 32) {
    float a = fabsf(load_f32(w, w_dtype, i));
    if (a > amax || isnan(a)) amax = a;
  }
  amax = warp_max(amax);
  const float floored = isnan(amax) ? amax : fmaxf(amax, kAbsmaxFloor);
  const float inv = 1.0f / floored;
  if (lane == 0) absmax[b] = partial ? floored : amax;
  for (int64_t i = start + 2 * lane; i < end; i += 64) {
    float x0 = load_f32(w, w_dtype, i);
    float v0 = partial ? x0 / floored : __fmul_rn(x0, inv);
    float v1 = 0.0f;  // the pad element of an odd n
    if (i + 1 < end) {
      float x1 = load_f32(w, w_dtype, i + 1);
      v1 = partial ? x1 / floored : __fmul_rn(x1, inv);
    }
    packed[i >> 1] = (uint8_t)(nf4_code_of(t, clamp1(v0)) << 4 | nf4_code_of(t, clamp1(v1)));
  }
}

// One thread per packed byte (two elements).
__global__ void nf4_dequantize_kernel(const uint8_t *packed, const float *absmax, int64_t n, int block_shift,
                                      void *out, int out_dtype, Nf4Codes t) {
  __shared__ float code[16];
  if (threadIdx.x == 0) {
#pragma unroll
    for (int i = 0; i < 16; i++) code[i] = t.code[i];  // constant indices: no local copy of the argument
  }
  __syncthreads();
  const int64_t nbytes = (n + 1) / 2;
  for (int64_t j = blockIdx.x * (int64_t)blockDim.x + threadIdx.x; j < nbytes; j += (int64_t)gridDim.x * blockDim.x) {
    const uint8_t byte = packed[j];
    const int64_t i = 2 * j;
    // Both elements of a byte share a block: blocks hold an even number of elements.
    const float scale = absmax[i >> block_shift];
    store_f32(out, out_dtype, i, __fmul_rn(code[byte >> 4], scale));
    if (i + 1 < n) store_f32(out, out_dtype, i + 1, __fmul_rn(code[byte & 15], scale));
  }
}

// ---- torch's fp32 sum of the absmax (the double quantization's offset) --------

__device__ __forceinline__ int64_t ceil_log2(int64_t x) { return x <= 2 ? 1 : 64 - __clzll((long long)(x - 1)); }

// One chain of torch's multi_row_sum (4 rows, 4 cascade levels): the sum of
// load(0..size-1) with partial sums of similar magnitude added first.
template <typename Load>
__device__ float cascade_chain(int64_t size, Load load) {
  constexpr int levels = 4;
  const int64_t power = max((int64_t)4, ceil_log2(size) / levels);
  const int64_t step = (int64_t)1 << power;
  const int64_t mask = step - 1;
  float acc[levels] = {0.0f, 0.0f, 0.0f, 0.0f};
  int64_t i = 0;
  while (i + step <= size) {
#pragma unroll 8
    for (int64_t j = 0; j < step; j++, i++) acc[0] = __fadd_rn(acc[0], load(i));
    for (int j = 1; j < levels; j++) {
      acc[j] = __fadd_rn(acc[j], acc[j - 1]);
      acc[j - 1] = 0.0f;
      if ((i & (mask << (j * power))) != 0) break;
    }
  }
  for (; i < size; i++) acc[0] = __fadd_rn(acc[0], load(i));
  for (int j = 1; j < levels; j++) acc[0] = __fadd_rn(acc[0], acc[j]);
  return acc[0];
}

// mean(x) as torch's single-threaded AVX2 sum computes it (see torch_sum_f32
// in cuda/cpu/nf4.cpp): 8-lane vectors in 4 interleaved rows are 32
// independent cascade chains, one per lane of this one warp; lane 0 then adds
// the tails and the partials in torch's order.
__global__ void absmax_mean_kernel(const float *x, int64_t n, float *mean_out) {
  const int t = threadIdx.x;
  __shared__ float part[32];
  if (n < 8) {
    if (t != 0) return;
    float p[4];
    for (int k = 0; k < 4; k++) p[k] = cascade_chain(n / 4, [&](int64_t i) { return x[i * 4 + k]; });
    for (int64_t i = n / 4 * 4; i < n; i++) p[0] = __fadd_rn(p[0], x[i]);
    for (int k = 1; k < 4; k++) p[0] = __fadd_rn(p[0], p[k]);
    *mean_out = p[0] / (float)n;
    return;
  }
  const int64_t nvec = n / 8;
  const int64_t rows = nvec / 4;
  part[t] = cascade_chain(rows, [&](int64_t i) { return x[i * 32 + t]; });  // lane t = row k * 8 + lane l
  __syncwarp();
  if (t != 0) return;
  float lanes[8];
  for (int l = 0; l < 8; l++) {
    float p0 = part[l];
    for (int64_t i = rows * 4; i < nvec; i++) p0 = __fadd_rn(p0, x[i * 8 + l]);
    for (int k = 1; k < 4; k++) p0 = __fadd_rn(p0, part[k * 8 + l]);
    lanes[l] = p0;
  }
  float total = 0.0f;
  for (int64_t i = nvec * 8; i < n; i++) total = __fadd_rn(total, x[i]);
  for (int l = 0; l < 8; l++) total = __fadd_rn(total, lanes[l]);
  *mean_out = total / (float)n;
}

// libbitsandbytes_cpu's lookup: v in [-1, 1] (or NaN) -> one of 65536 bins ->
// the first map entry whose upper midpoint is not below the bin's value.
__device__ __forceinline__ uint8_t dynamic_code_of(const float *mid, float v) {
  if (isnan(v)) return 0;
  const int bin = (int)fmaf(__fmul_rn(__fadd_rn(v, 1.0f), 0.5f), 65535.0f, 0.5f);
  const float value = __fadd_rn(__fmul_rn(2.0f, (float)bin) / 65535.0f, -1.0f);
  int lo = 0, hi = 255;  // std::lower_bound over mid[0..255)
  while (lo < hi) {
    int m = (lo + hi) / 2;
    if (mid[m] < value)
      lo = m + 1;
    else
      hi = m;
  }
  return (uint8_t)lo;
}

// Copies the map argument to shared memory (constant indices: no local copy).
__device__ __forceinline__ void load_map(const DynamicMap &map, float *code) {
  if (threadIdx.x == 0) {
#pragma unroll
    for (int i = 0; i < 256; i++) code[i] = map.code[i];
  }
  __syncthreads();
}

// One warp per block of 256 absmax values: their absmax2, then their codes.
__global__ void double_quantize_kernel(const float *absmax, int64_t nblocks, const float *offset, uint8_t *qabsmax,
                                       float *absmax2, DynamicMap map) {
  __shared__ float code[256], mid[255];
  load_map(map, code);
  for (int i = threadIdx.x; i < 255; i += blockDim.x) mid[i] = __fmul_rn(0.5f, __fadd_rn(code[i], code[i + 1]));
  __syncthreads();
  const int lane = threadIdx.x % 32;
  const int64_t b = (int64_t)blockIdx.x * kWarpsPerBlock + threadIdx.x / 32;
  const int64_t start = b * kDoubleBlock;
  if (start >= nblocks) return;
  const int64_t end = min(nblocks, start + (int64_t)kDoubleBlock);
  const float mean = *offset;
  float amax = 0.0f;  // bitsandbytes' max skips NaN: a NaN never replaces amax
  for (int64_t i = start + lane; i < end; i += 32) amax = fmaxf(amax, fabsf(__fadd_rn(absmax[i], -mean)));
  for (int o = 16; o > 0; o >>= 1) amax = fmaxf(amax, __shfl_xor_sync(0xffffffffu, amax, o));
  if (lane == 0) absmax2[b] = amax;
  const float inv = 1.0f / amax;
  for (int64_t i = start + lane; i < end; i += 32)
    qabsmax[i] = amax == 0.0f ? 0 : dynamic_code_of(mid, clamp1(__fmul_rn(__fadd_rn(absmax[i], -mean), inv)));
}

__global__ void double_dequantize_kernel(const uint8_t *qabsmax, const float *absmax2, const float *offset,
                                         int64_t nblocks, float *absmax_out, DynamicMap map) {
  __shared__ float code[256];
  load_map(map, code);
  const float off = *offset;
  for (int64_t i = blockIdx.x * (int64_t)blockDim.x + threadIdx.x; i < nblocks; i += (int64_t)gridDim.x * blockDim.x)
    absmax_out[i] = __fadd_rn(__fmul_rn(code[qabsmax[i]], absmax2[i / kDoubleBlock]), off);
}

bool valid_blocksize(int blocksize) { return blocksize >= 64 && blocksize <= 4096 && (blocksize & (blocksize - 1)) == 0; }

int log2_of(int x) { return 31 - __builtin_clz((unsigned)x); }

// CUDA blocks for one warp per item.
int64_t warp_blocks(int64_t items) { return (items + kWarpsPerBlock - 1) / kWarpsPerBlock; }

}  // namespace

extern "C" {

int lorac_nf4_quantize(lorac_ctx *ctx, const void *w, int32_t w_dtype, int64_t n, int32_t blocksize, uint8_t *packed,
                       float *absmax) {
  ENTER(ctx);
  LORAC_REQUIRE(ctx, n >= 0, "lorac_nf4_quantize: n = %lld is negative", (long long)n);
  LORAC_REQUIRE(ctx, valid_blocksize(blocksize),
                "lorac_nf4_quantize: blocksize must be a power of two from 64 to 4096, got %d", blocksize);
  LORAC_REQUIRE(ctx, is_float_dtype(w_dtype), "lorac_nf4_quantize: w_dtype must be F32 or BF16, got %d", w_dtype);
  LORAC_REQUIRE(ctx, n == 0 || (w && packed && absmax), "lorac_nf4_quantize: w, packed or absmax is NULL");
  if (n == 0) return LORAC_OK;
  const int64_t nblocks = (n + blocksize - 1) / blocksize;
  LORAC_REQUIRE(ctx, warp_blocks(nblocks) <= 0x7fffffffu, "lorac_nf4_quantize: n = %lld is too large", (long long)n);
  nf4_quantize_kernel<<<(unsigned)warp_blocks(nblocks), 32 * kWarpsPerBlock, 0, ctx->stream>>>(w, w_dtype, n, blocksize, packed,
                                                                                      absmax, nf4_codes());
  LAUNCH_CHECK(ctx, nf4_quantize_kernel);
  return LORAC_OK;
}

int lorac_nf4_dequantize(lorac_ctx *ctx, const uint8_t *packed, const float *absmax, int64_t n, int32_t blocksize,
                         void *out, int32_t out_dtype) {
  ENTER(ctx);
  LORAC_REQUIRE(ctx, n >= 0, "lorac_nf4_dequantize: n = %lld is negative", (long long)n);
  LORAC_REQUIRE(ctx, valid_blocksize(blocksize),
                "lorac_nf4_dequantize: blocksize must be a power of two from 64 to 4096, got %d", blocksize);
  LORAC_REQUIRE(ctx, is_float_dtype(out_dtype), "lorac_nf4_dequantize: out_dtype must be F32 or BF16, got %d",
                out_dtype);
  LORAC_REQUIRE(ctx, n == 0 || (packed && absmax && out), "lorac_nf4_dequantize: packed, absmax or out is NULL");
  if (n == 0) return LORAC_OK;
  nf4_dequantize_kernel<<<grid_for((n + 1) / 2, 256), 256, 0, ctx->stream>>>(packed, absmax, n, log2_of(blocksize),
                                                                              out, out_dtype, nf4_codes());
  LAUNCH_CHECK(ctx, nf4_dequantize_kernel);
  return LORAC_OK;
}

int lorac_nf4_double_quantize(lorac_ctx *ctx, const float *absmax, int64_t nblocks, uint8_t *qabsmax, float *absmax2,
                              float *offset) {
  ENTER(ctx);
  LORAC_REQUIRE(ctx, nblocks > 0, "lorac_nf4_double_quantize: nblocks = %lld must be positive", (long long)nblocks);
  LORAC_REQUIRE(ctx, absmax && qabsmax && absmax2 && offset,
                "lorac_nf4_double_quantize: absmax, qabsmax, absmax2 or offset is NULL");
  absmax_mean_kernel<<<1, 32, 0, ctx->stream>>>(absmax, nblocks, offset);
  LAUNCH_CHECK(ctx, absmax_mean_kernel);
  const int64_t nblocks2 = (nblocks + kDoubleBlock - 1) / kDoubleBlock;
  double_quantize_kernel<<<(unsigned)warp_blocks(nblocks2), 32 * kWarpsPerBlock, 0, ctx->stream>>>(absmax, nblocks, offset,
                                                                                         qabsmax, absmax2, dynamic_map());
  LAUNCH_CHECK(ctx, double_quantize_kernel);
  return LORAC_OK;
}

int lorac_nf4_double_dequantize(lorac_ctx *ctx, const uint8_t *qabsmax, const float *absmax2, const float *offset,
                                int64_t nblocks, float *absmax_out) {
  ENTER(ctx);
  LORAC_REQUIRE(ctx, nblocks >= 0, "lorac_nf4_double_dequantize: nblocks = %lld is negative", (long long)nblocks);
  LORAC_REQUIRE(ctx, nblocks == 0 || (qabsmax && absmax2 && offset && absmax_out),
                "lorac_nf4_double_dequantize: qabsmax, absmax2, offset or absmax_out is NULL");
  if (nblocks == 0) return LORAC_OK;
  double_dequantize_kernel<<<grid_for(nblocks, 256), 256, 0, ctx->stream>>>(qabsmax, absmax2, offset, nblocks,
                                                                             absmax_out, dynamic_map());
  LAUNCH_CHECK(ctx, double_dequantize_kernel);
  return LORAC_OK;
}

}  // extern "C"
