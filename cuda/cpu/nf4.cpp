// NF4 in bitsandbytes' format on the CPU: blockwise absmax quantization to the
// 16-value normal-float code, its inverse, and the 8-bit double quantization
// of the absmax (compress_statistics) with its inverse.
//
// Quantization reproduces bitsandbytes 0.50.2 on the CPU bit for bit:
// - 4-bit codes come from its default (torch) path: full blocks scale by the
//   fp32 reciprocal 1/max(absmax, 1e-38), the partial last block divides by
//   max(absmax, 1e-38) and stores that clamped value; the code is
//   torch.bucketize against the fp32 midpoints, so an exact midpoint takes the
//   lower code; odd n pads with a 0.0 element (code 7) in the last low nibble.
// - The 8-bit codes of the double quantization come from libbitsandbytes_cpu's
//   quantize_cpu: v = x * (1/absmax2), a 16-bit bin
//   trunc(fma((v + 1) * 0.5, 65535, 0.5)), then its 65536-entry table from bin
//   to map entry (coarser than the map near 0); a block whose absmax2 is 0
//   gets code 0.
// - The offset is torch's fp32 absmax.mean() (see torch_sum_f32).

// bitsandbytes rounds every product and sum on its own: never fuse them into
// an FMA on targets that have one (the one fma below is bitsandbytes' own).
#pragma GCC optimize("fp-contract=off")

#include <algorithm>
#include <cmath>

#include "common.h"
#include "dynamic_map_table.h"
#include "nf4_table.h"

namespace {

// ---- the 4-bit code ----------------------------------------------------------

struct Nf4Midpoints {
  float m[15];
  Nf4Midpoints() {
    for (int i = 0; i < 15; i++) m[i] = (kNf4Code[i] + kNf4Code[i + 1]) / 2.0f;
  }
};
const Nf4Midpoints kNf4Mid;

// torch.bucketize(v, midpoints): the number of midpoints below v; NaN gives 15.
inline uint8_t nf4_code_of(float v) {
  int q = 0;
  for (int i = 0; i < 15; i++) q += !(v <= kNf4Mid.m[i]);
  return (uint8_t)q;
}

inline float to_f32(float x) { return x; }
inline float to_f32(uint16_t x) { return bf16_to_f32(x); }
inline void from_f32(float v, float *out) { *out = v; }
inline void from_f32(float v, uint16_t *out) { *out = f32_to_bf16(v); }

// torch.clamp: NaN passes through.
inline float clamp1(float v) { return v < -1.0f ? -1.0f : (v > 1.0f ? 1.0f : v); }

// The 1e-38 floor bitsandbytes puts under absmax (a float32 subnormal).
constexpr float kAbsmaxFloor = 1e-38f;

inline uint32_t abs_bits(float x) {
  uint32_t u;
  std::memcpy(&u, &x, 4);
  return u & 0x7fffffffu;
}
inline uint32_t abs_bits(uint16_t x) { return ((uint32_t)x << 16) & 0x7fffffffu; }
inline float from_bits(uint32_t u) {
  float f;
  std::memcpy(&f, &u, 4);
  return f;
}

constexpr int64_t kMaxBlock = 4096;

// Quantizes one block of `len` elements from `start` (even, so the block owns
// its bytes). Written as separate simple loops so that each vectorizes.
template <typename T>
void nf4_quantize_block(const T *w, int64_t start, int64_t len, bool partial, uint8_t *packed, float *absmax_out) {
  // max |x| on the bit patterns: a NaN's exceed every number's, so NaN wins as in torch.max.
  uint32_t max_bits = 0;
  for (int64_t i = 0; i < len; i++) max_bits = std::max(max_bits, abs_bits(w[start + i]));
  const float amax = from_bits(max_bits);
  const float floored = std::isnan(amax) ? amax : std::max(amax, kAbsmaxFloor);
  const float inv = 1.0f / floored;
  *absmax_out = partial ? floored : amax;
  float v[kMaxBlock + 1];
  if (partial)
    for (int64_t i = 0; i < len; i++) v[i] = to_f32(w[start + i]) / floored;
  else
    for (int64_t i = 0; i < len; i++) v[i] = to_f32(w[start + i]) * inv;
  const int64_t padded = len + (len & 1);
  if (len & 1) v[len] = 0.0f;  // the pad element of an odd n
  uint8_t q[kMaxBlock + 1];
  for (int64_t i = 0; i < padded; i++) q[i] = nf4_code_of(clamp1(v[i]));
  for (int64_t i = 0; i < padded / 2; i++) packed[start / 2 + i] = (uint8_t)(q[2 * i] << 4 | q[2 * i + 1]);
}

template <typename T>
void nf4_quantize(lorac_ctx *ctx, const T *w, int64_t n, int64_t blocksize, uint8_t *packed,
                  float *absmax) {
  int64_t nblocks = (n + blocksize - 1) / blocksize;
#pragma omp parallel for num_threads(ctx_threads(ctx)) schedule(static)
  for (int64_t b = 0; b < nblocks; b++) {
    int64_t start = b * blocksize;
    int64_t end = std::min(n, start + blocksize);
    nf4_quantize_block(w, start, end - start, end - start < blocksize, packed, absmax + b);
  }
}

template <typename T>
void nf4_dequantize(lorac_ctx *ctx, const uint8_t *packed, const float *absmax, int64_t n,
                    int64_t blocksize, T *out) {
  int64_t nblocks = (n + blocksize - 1) / blocksize;
#pragma omp parallel for num_threads(ctx_threads(ctx)) schedule(static)
  for (int64_t b = 0; b < nblocks; b++) {
    int64_t start = b * blocksize;
    int64_t end = std::min(n, start + blocksize);
    const float scale = absmax[b];
    for (int64_t i = start; i + 1 < end; i += 2) {
      const uint8_t byte = packed[i >> 1];
      from_f32(kNf4Code[byte >> 4] * scale, out + i);
      from_f32(kNf4Code[byte & 15] * scale, out + i + 1);
    }
    if ((end - start) & 1) from_f32(kNf4Code[packed[(end - 1) >> 1] >> 4] * scale, out + end - 1);
  }
}

// ---- the 8-bit signed dynamic map of the double quantization -----------------


struct DynamicMap {
  float code[256];
  // libbitsandbytes_cpu's lookup table: for each of 65536 bins of [-1, 1], the
  // first map entry whose upper midpoint is not below the bin's value.
  uint8_t bin_code[65536];
  DynamicMap() {
    for (int i = 0; i < 127; i++) {
      code[i] = -kDynamicPositive[126 - i];
      code[128 + i] = kDynamicPositive[i];
    }
    code[127] = 0.0f;
    code[255] = 1.0f;
    float mid[255];
    for (int i = 0; i < 255; i++) mid[i] = 0.5f * (code[i] + code[i + 1]);
    int q = 0;
    for (int bin = 0; bin < 65536; bin++) {
      const float value = (2.0f * (float)bin) / 65535.0f - 1.0f;
      while (q < 255 && mid[q] < value) q++;
      bin_code[bin] = (uint8_t)q;
    }
  }
};
const DynamicMap kDynamic;

constexpr int64_t kDoubleBlock = 256;

// libbitsandbytes_cpu's code of v in [-1, 1]: its bin trunc(fma((v + 1)·0.5, 65535, 0.5)),
// then the table. NaN converts to bin 0 there.
inline uint8_t dynamic_code_of(float v) {
  if (std::isnan(v)) return kDynamic.bin_code[0];
  return kDynamic.bin_code[(int)std::fma((v + 1.0f) * 0.5f, 65535.0f, 0.5f)];
}

// ---- torch's float sum, for absmax.mean() ------------------------------------

// torch sums a contiguous fp32 vector (aten/src/ATen/native/cpu/SumKernel.cpp,
// one thread, the AVX2 build's 8-lane vectors) in cascades: rows of 4 vectors
// accumulate into 4 levels of partial sums, so only sums of similar magnitude
// meet. Reproducing its order reproduces its rounding, and so bitsandbytes'
// offset. (torch splits inputs of 32768+ elements across its threads, and its
// AVX-512 build uses 16 lanes; there the offset may differ in the last bit.)
struct Lanes {
  float v[8] = {};
  Lanes &operator+=(const Lanes &o) {
    for (int i = 0; i < 8; i++) v[i] += o.v[i];
    return *this;
  }
};
inline void add_to(float &acc, float x) { acc += x; }
inline void add_to(Lanes &acc, const Lanes &x) { acc += x; }

int64_t ceil_log2(int64_t x) { return x <= 2 ? 1 : 64 - __builtin_clzll((uint64_t)(x - 1)); }

// torch's multi_row_sum with nrows = 4: load(i, k) is column k of row i.
template <typename Acc, typename Load>
void multi_row_sum(int64_t size, Load load, Acc out[4]) {
  constexpr int64_t levels = 4;
  const int64_t power = std::max<int64_t>(4, ceil_log2(size) / levels);
  const int64_t step = int64_t(1) << power;
  const int64_t mask = step - 1;
  Acc acc[levels][4] = {};
  int64_t i = 0;
  while (i + step <= size) {
    for (int64_t j = 0; j < step; j++, i++)
      for (int k = 0; k < 4; k++) add_to(acc[0][k], load(i, k));
    for (int64_t j = 1; j < levels; j++) {
      for (int k = 0; k < 4; k++) {
        add_to(acc[j][k], acc[j - 1][k]);
        acc[j - 1][k] = Acc();
      }
      if ((i & (mask << (j * power))) != 0) break;
    }
  }
  for (; i < size; i++)
    for (int k = 0; k < 4; k++) add_to(acc[0][k], load(i, k));
  for (int64_t j = 1; j < levels; j++)
    for (int k = 0; k < 4; k++) add_to(acc[0][k], acc[j][k]);
  for (int k = 0; k < 4; k++) out[k] = acc[0][k];
}

// torch's row_sum: 4 interleaved partial sums, the tail, then the partials.
template <typename Acc, typename Load>
Acc row_sum(int64_t size, Load load) {
  Acc partial[4];
  multi_row_sum<Acc>(size / 4, [&](int64_t i, int k) { return load(i * 4 + k); }, partial);
  for (int64_t i = size / 4 * 4; i < size; i++) add_to(partial[0], load(i));
  for (int k = 1; k < 4; k++) add_to(partial[0], partial[k]);
  return partial[0];
}

float torch_sum_f32(const float *x, int64_t n) {
  if (n < 8) return row_sum<float>(n, [&](int64_t i) { return x[i]; });
  int64_t nvec = n / 8;
  Lanes lanes = row_sum<Lanes>(nvec, [&](int64_t i) {
    Lanes l;
    for (int k = 0; k < 8; k++) l.v[k] = x[i * 8 + k];
    return l;
  });
  float total = 0.0f;
  for (int64_t i = nvec * 8; i < n; i++) total += x[i];
  for (int k = 0; k < 8; k++) total += lanes.v[k];
  return total;
}

void double_quantize(lorac_ctx *ctx, const float *absmax, int64_t nblocks, uint8_t *qabsmax, float *absmax2,
                     float *offset) {
  const float mean = torch_sum_f32(absmax, nblocks) / (float)nblocks;
  const int64_t nblocks2 = (nblocks + kDoubleBlock - 1) / kDoubleBlock;
#pragma omp parallel for num_threads(ctx_threads(ctx)) schedule(static)
  for (int64_t b = 0; b < nblocks2; b++) {
    const int64_t start = b * kDoubleBlock;
    const int64_t end = std::min(nblocks, start + kDoubleBlock);
    float amax = 0.0f;  // bitsandbytes' max skips NaN
    for (int64_t i = start; i < end; i++) amax = std::max(amax, std::fabs(absmax[i] - mean));
    absmax2[b] = amax;
    const float inv = 1.0f / amax;
    for (int64_t i = start; i < end; i++)
      qabsmax[i] = amax == 0.0f ? 0 : dynamic_code_of(clamp1((absmax[i] - mean) * inv));
  }
  *offset = mean;
}

void double_dequantize(lorac_ctx *ctx, const uint8_t *qabsmax, const float *absmax2, float offset,
                       int64_t nblocks, float *absmax_out) {
#pragma omp parallel for num_threads(ctx_threads(ctx)) schedule(static)
  for (int64_t i = 0; i < nblocks; i++) {
    const float scaled = kDynamic.code[qabsmax[i]] * absmax2[i / kDoubleBlock];
    absmax_out[i] = scaled + offset;
  }
}

}  // namespace

extern "C" {

int lorac_nf4_quantize(lorac_ctx *ctx, const void *w, int32_t w_dtype, int64_t n, int32_t blocksize,
                       uint8_t *packed, float *absmax) {
  LORAC_REQUIRE(ctx, ctx, "lorac_nf4_quantize: ctx is NULL");
  LORAC_REQUIRE(ctx, n >= 0, "lorac_nf4_quantize: n = %lld is negative", (long long)n);
  LORAC_REQUIRE(ctx, blocksize >= 64 && blocksize <= 4096 && (blocksize & (blocksize - 1)) == 0,
                "lorac_nf4_quantize: blocksize must be a power of two from 64 to 4096, got %d", blocksize);
  LORAC_REQUIRE(ctx, is_float_dtype(w_dtype), "lorac_nf4_quantize: w_dtype must be F32 or BF16, got %d",
                w_dtype);
  LORAC_REQUIRE(ctx, n == 0 || (w && packed && absmax), "lorac_nf4_quantize: w, packed or absmax is NULL");
  LORAC_TRY(ctx, {
    if (w_dtype == LORAC_F32)
      nf4_quantize(ctx, (const float *)w, n, blocksize, packed, absmax);
    else
      nf4_quantize(ctx, (const uint16_t *)w, n, blocksize, packed, absmax);
  })
  return LORAC_OK;
}

int lorac_nf4_dequantize(lorac_ctx *ctx, const uint8_t *packed, const float *absmax, int64_t n,
                         int32_t blocksize, void *out, int32_t out_dtype) {
  LORAC_REQUIRE(ctx, ctx, "lorac_nf4_dequantize: ctx is NULL");
  LORAC_REQUIRE(ctx, n >= 0, "lorac_nf4_dequantize: n = %lld is negative", (long long)n);
  LORAC_REQUIRE(ctx, blocksize >= 64 && blocksize <= 4096 && (blocksize & (blocksize - 1)) == 0,
                "lorac_nf4_dequantize: blocksize must be a power of two from 64 to 4096, got %d", blocksize);
  LORAC_REQUIRE(ctx, is_float_dtype(out_dtype), "lorac_nf4_dequantize: out_dtype must be F32 or BF16, got %d",
                out_dtype);
  LORAC_REQUIRE(ctx, n == 0 || (packed && absmax && out), "lorac_nf4_dequantize: packed, absmax or out is NULL");
  LORAC_TRY(ctx, {
    if (out_dtype == LORAC_F32)
      nf4_dequantize(ctx, packed, absmax, n, blocksize, (float *)out);
    else
      nf4_dequantize(ctx, packed, absmax, n, blocksize, (uint16_t *)out);
  })
  return LORAC_OK;
}

int lorac_nf4_double_quantize(lorac_ctx *ctx, const float *absmax, int64_t nblocks, uint8_t *qabsmax,
                              float *absmax2, float *offset) {
  LORAC_REQUIRE(ctx, ctx, "lorac_nf4_double_quantize: ctx is NULL");
  LORAC_REQUIRE(ctx, nblocks > 0, "lorac_nf4_double_quantize: nblocks = %lld must be positive",
                (long long)nblocks);
  LORAC_REQUIRE(ctx, absmax && qabsmax && absmax2 && offset,
                "lorac_nf4_double_quantize: absmax, qabsmax, absmax2 or offset is NULL");
  LORAC_TRY(ctx, { double_quantize(ctx, absmax, nblocks, qabsmax, absmax2, offset); })
  return LORAC_OK;
}

int lorac_nf4_double_dequantize(lorac_ctx *ctx, const uint8_t *qabsmax, const float *absmax2,
                                const float *offset, int64_t nblocks, float *absmax_out) {
  LORAC_REQUIRE(ctx, ctx, "lorac_nf4_double_dequantize: ctx is NULL");
  LORAC_REQUIRE(ctx, nblocks >= 0, "lorac_nf4_double_dequantize: nblocks = %lld is negative",
                (long long)nblocks);
  LORAC_REQUIRE(ctx, nblocks == 0 || (qabsmax && absmax2 && offset && absmax_out),
                "lorac_nf4_double_dequantize: qabsmax, absmax2, offset or absmax_out is NULL");
  LORAC_TRY(ctx, {
    if (nblocks > 0) double_dequantize(ctx, qabsmax, absmax2, *offset, nblocks, absmax_out);
  })
  return LORAC_OK;
}

}  // extern "C"
