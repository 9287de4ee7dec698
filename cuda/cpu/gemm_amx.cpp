// The AMX GEMM micro-kernel: bf16 products with f32 sums on the tile unit of
// Sapphire Rapids and later Xeons, a 32 x 32 tile of C in four 16 x 16 f32
// tiles. Each k step of 32 loads two A tiles (16 rows x 32 k), two B tiles
// (16 k pairs x 16 columns) and issues four tdpbf16ps, ~8x the vdpbf16ps rate.
// Compiled with -mamx-tile -mamx-bf16; gemm.cpp calls it only where
// lorac_amx_usable() said the CPU has AMX-BF16 and Linux let us use its tiles.
#include "gemm_kernels.h"

#if defined(__x86_64__)
#include <cpuid.h>
#include <immintrin.h>
#include <sys/syscall.h>
#include <unistd.h>

#include <algorithm>

#include "nf4_table.h"

namespace {

constexpr int kMr = 32, kNr = 32;
constexpr int kTileBytes = 64;  // one tile row: 16 f32, or 32 bf16

// The tile configuration (palette 1): tiles 0-3 hold C, 4-5 A, 6-7 B, all 16 rows of 64 bytes.
struct alignas(64) TileConfig {
  uint8_t palette = 1, start_row = 0, reserved[14] = {};
  uint16_t colsb[16] = {};
  uint8_t rows[16] = {};
  TileConfig() {
    for (int t = 0; t < 8; t++) colsb[t] = kTileBytes, rows[t] = 16;
  }
};

// Tile registers belong to the thread: each OpenMP thread loads the
// configuration on its first call and keeps it.
thread_local bool configured = false;

// k counts steps of 32: A [k][32 rows][32] and B [k * 16 pairs][32][2] bf16.
void kernel_amx(int64_t k, const void *a_, const void *b_, float *c, int64_t ldc, float alpha, float beta, int m,
                int n) {
  if (!configured) {
    static const TileConfig config;
    _tile_loadconfig(&config);
    configured = true;
  }
  const char *a = (const char *)a_, *b = (const char *)b_;
  // A whole tile of C = 1 * sum + (0 or 1) * C, the NF4 GEMMs' case, sums straight into C's tiles.
  const bool direct = m == kMr && n == kNr && alpha == 1.0f && (beta == 0.0f || beta == 1.0f);
  const int64_t ldc_bytes = ldc * 4;
  if (direct && beta == 1.0f) {
    _tile_loadd(0, c, ldc_bytes);
    _tile_loadd(1, c + 16, ldc_bytes);
    _tile_loadd(2, c + 16 * ldc, ldc_bytes);
    _tile_loadd(3, c + 16 * ldc + 16, ldc_bytes);
  } else {
    _tile_zero(0);
    _tile_zero(1);
    _tile_zero(2);
    _tile_zero(3);
  }
  for (int64_t p = 0; p < k; p++) {
    _tile_loadd(4, a, kTileBytes);                // rows 0-15
    _tile_loadd(5, a + 16 * kTileBytes, kTileBytes);  // rows 16-31
    _tile_loadd(6, b, 2 * kTileBytes);            // columns 0-15 of 16 pair rows
    _tile_loadd(7, b + kTileBytes, 2 * kTileBytes);  // columns 16-31
    _tile_dpbf16ps(0, 4, 6);
    _tile_dpbf16ps(1, 4, 7);
    _tile_dpbf16ps(2, 5, 6);
    _tile_dpbf16ps(3, 5, 7);
    a += kMr * kTileBytes;
    b += 16 * 2 * kTileBytes;
  }
  if (direct) {
    _tile_stored(0, c, ldc_bytes);
    _tile_stored(1, c + 16, ldc_bytes);
    _tile_stored(2, c + 16 * ldc, ldc_bytes);
    _tile_stored(3, c + 16 * ldc + 16, ldc_bytes);
    return;
  }
  alignas(64) float acc[kMr * kNr];
  _tile_stored(0, acc, kNr * 4);
  _tile_stored(1, acc + 16, kNr * 4);
  _tile_stored(2, acc + 16 * kNr, kNr * 4);
  _tile_stored(3, acc + 16 * kNr + 16, kNr * 4);
  gemm_update_tile(acc, kNr, c, ldc, alpha, beta, m, n);
}

// 32 NF4 codes from the 32-aligned flat index i0 (inside one absmax block) as
// 16 pairs of bf16: element i0 + 2t in the low half of lane t, i0 + 2t + 1 in
// the high half, i.e. the 32 bf16 in memory order. The f32 values are exactly
// the portable decoder's (code * absmax); the rounding to bf16 is to nearest even.
inline __m512i nf4_bf16_pairs(const uint8_t *w, const float *absmax, int shift, int64_t i0) {
  const __m512 codes = _mm512_loadu_ps(kNf4Code);
  const __m512 scale = _mm512_set1_ps(absmax[i0 >> shift]);
  const __m512i bytes = _mm512_cvtepu8_epi32(_mm_loadu_si128((const __m128i *)(w + (i0 >> 1))));
  const __m512 even = _mm512_mul_ps(_mm512_permutexvar_ps(_mm512_srli_epi32(bytes, 4), codes), scale);
  const __m512 odd = _mm512_mul_ps(_mm512_permutexvar_ps(_mm512_and_si512(bytes, _mm512_set1_epi32(15)), codes), scale);
  const __m512i lo = _mm512_cvtepu16_epi32((__m256i)_mm512_cvtneps_pbh(even));
  const __m512i hi = _mm512_cvtepu16_epi32((__m256i)_mm512_cvtneps_pbh(odd));
  return _mm512_or_si512(lo, _mm512_slli_epi32(hi, 16));
}

// The A block (256 x 512 bf16, 256 KiB) stays in a 2 MiB L2; the B micro-panel
// (512 x 32 bf16, 32 KiB) in the 48 KiB L1.
const GemmKernel kAmx = {kMr, kNr, 256, 512, 2048, kPackAmx, kernel_amx};

}  // namespace

const GemmKernel *gemm_kernel_amx_bf16() { return &kAmx; }

void amx_pack_a(const void *src, bool bf16, int64_t ld, int rows, int64_t kn, int64_t kp, uint16_t *panel) {
  for (int64_t c = 0; c < kp / 32; c++) {
    const int64_t left = std::max<int64_t>(0, std::min<int64_t>(32, kn - 32 * c));
    const __mmask32 m = (__mmask32)((1ull << left) - 1);
    const __mmask16 m0 = (__mmask16)m, m1 = (__mmask16)(m >> 16);
    for (int j = 0; j < kMr; j++) {
      __m512i out = _mm512_setzero_si512();
      if (j < rows && bf16) {
        out = _mm512_maskz_loadu_epi16(m, (const uint16_t *)src + j * ld + 32 * c);
      } else if (j < rows) {
        const float *row = (const float *)src + j * ld + 32 * c;
        out = (__m512i)_mm512_cvtne2ps_pbh(_mm512_maskz_loadu_ps(m1, row + 16), _mm512_maskz_loadu_ps(m0, row));
      }
      _mm512_store_si512(panel + (c * kMr + j) * 32, out);
    }
  }
}

bool amx_pack_b_nf4(const uint8_t *w, const float *absmax, int shift, int64_t sx, int64_t sk, int64_t x0, int xn,
                    int64_t k0, int64_t kn, uint32_t *panel) {
  if (xn != kNr || kn % 32 || k0 % 32 || (sx * x0) % 32 || (sk == 1 ? sx : sk) % 32) return false;
  if (sk == 1) {  // rows of W along k: each column's 16 pairs of a chunk go to 16 panel rows
    for (int j = 0; j < kNr; j++)
      for (int64_t c = 0; c < kn / 32; c++) {
        alignas(64) uint32_t pairs[16];
        _mm512_store_si512(pairs, nf4_bf16_pairs(w, absmax, shift, (x0 + j) * sx + k0 + 32 * c));
        for (int t = 0; t < 16; t++) panel[(16 * c + t) * kNr + j] = pairs[t];
      }
    return true;
  }
  if (sx != 1) return false;
  // Columns of W along x: k and k + 1 are two rows of W, interleaved element by element.
  const __m512i first = _mm512_set_epi16(47, 15, 46, 14, 45, 13, 44, 12, 43, 11, 42, 10, 41, 9, 40, 8, 39, 7, 38, 6,
                                         37, 5, 36, 4, 35, 3, 34, 2, 33, 1, 32, 0);
  const __m512i second = _mm512_add_epi16(first, _mm512_set1_epi16(16));
  for (int64_t p = 0; p < kn / 2; p++) {
    const __m512i a = nf4_bf16_pairs(w, absmax, shift, x0 + (k0 + 2 * p) * sk);
    const __m512i b = nf4_bf16_pairs(w, absmax, shift, x0 + (k0 + 2 * p + 1) * sk);
    _mm512_store_si512(panel + p * kNr, _mm512_permutex2var_epi16(a, first, b));
    _mm512_store_si512(panel + p * kNr + 16, _mm512_permutex2var_epi16(a, second, b));
  }
  return true;
}

bool lorac_amx_usable() {
  static const bool usable = [] {
    unsigned eax, ebx, ecx, edx;
    if (!__get_cpuid_count(7, 0, &eax, &ebx, &ecx, &edx)) return false;
    const bool tile = (edx >> 24) & 1, bf16 = (edx >> 22) & 1;
    // Linux hands out the 8 KiB of tile state only on request (ARCH_REQ_XCOMP_PERM, XFEATURE_XTILEDATA).
    return tile && bf16 && syscall(SYS_arch_prctl, 0x1023, 18) == 0;
  }();
  return usable;
}

#else
bool lorac_amx_usable() { return false; }
#endif  // __x86_64__
