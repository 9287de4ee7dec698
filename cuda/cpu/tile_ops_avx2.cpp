// AVX2 + FMA versions of the tile kernels of tile_ops.h (compiled with
// -mavx2 -mfma; tile_ops() calls them only on CPUs that have both).
//
// gemm_nn keeps a 6 x 16 tile of C in 12 ymm registers: per step of k it
// loads 16 floats of a B row, broadcasts 6 floats of A and issues 12 FMAs.
// gemm_nt keeps 4 x 3 dot products in 12 registers, 8 lanes of k per step,
// and sums the lanes once at the end. Ragged edges use masked loads and
// stores, so no tile reads or writes outside its operands.
#if defined(__x86_64__)
#include <immintrin.h>

#include <cmath>

#include "tile_ops.h"

namespace tiles {
namespace {

// Lanes [0, count) set, count in 0..8.
inline __m256i lane_mask(int count) {
  const __m256i lanes = _mm256_setr_epi32(0, 1, 2, 3, 4, 5, 6, 7);
  return _mm256_cmpgt_epi32(_mm256_set1_epi32(count), lanes);
}

// One MR x (8 * NV) tile of C = A . B; the last of the NV vectors is masked
// by `tail` when MASKED.
template <int MR, int NV, bool MASKED>
inline void tile_nn(int k, const float *a, int64_t rsa, int64_t csa, const float *b, int64_t ldb,
                    float *c, int64_t ldc, bool accumulate, __m256i tail) {
  __m256 acc[MR][NV];
  #pragma GCC unroll 8
  for (int i = 0; i < MR; i++)
    #pragma GCC unroll 8
    for (int v = 0; v < NV; v++) acc[i][v] = _mm256_setzero_ps();
  for (int p = 0; p < k; p++) {
    const float *bp = b + p * ldb;
    __m256 bv[NV];
    #pragma GCC unroll 8
    for (int v = 0; v < NV; v++)
      bv[v] = (MASKED && v == NV - 1) ? _mm256_maskload_ps(bp + 8 * v, tail) : _mm256_loadu_ps(bp + 8 * v);
    const float *ap = a + p * csa;
    #pragma GCC unroll 8
    for (int i = 0; i < MR; i++) {
      const __m256 ai = _mm256_broadcast_ss(ap + i * rsa);
      #pragma GCC unroll 8
      for (int v = 0; v < NV; v++) acc[i][v] = _mm256_fmadd_ps(ai, bv[v], acc[i][v]);
    }
  }
  #pragma GCC unroll 8
  for (int i = 0; i < MR; i++)
    #pragma GCC unroll 8
    for (int v = 0; v < NV; v++) {
      float *ci = c + i * ldc + 8 * v;
      const bool masked = MASKED && v == NV - 1;
      __m256 r = acc[i][v];
      if (accumulate) r = _mm256_add_ps(r, masked ? _mm256_maskload_ps(ci, tail) : _mm256_loadu_ps(ci));
      if (masked)
        _mm256_maskstore_ps(ci, tail, r);
      else
        _mm256_storeu_ps(ci, r);
    }
}

template <int NV, bool MASKED>
inline void rows_nn(int m, int k, const float *a, int64_t rsa, int64_t csa, const float *b, int64_t ldb,
                    float *c, int64_t ldc, bool accumulate, __m256i tail) {
  int i = 0;
  for (; i + 6 <= m; i += 6)
    tile_nn<6, NV, MASKED>(k, a + i * rsa, rsa, csa, b, ldb, c + i * ldc, ldc, accumulate, tail);
  const float *ai = a + i * rsa;
  float *ci = c + i * ldc;
  switch (m - i) {
    case 5: tile_nn<5, NV, MASKED>(k, ai, rsa, csa, b, ldb, ci, ldc, accumulate, tail); break;
    case 4: tile_nn<4, NV, MASKED>(k, ai, rsa, csa, b, ldb, ci, ldc, accumulate, tail); break;
    case 3: tile_nn<3, NV, MASKED>(k, ai, rsa, csa, b, ldb, ci, ldc, accumulate, tail); break;
    case 2: tile_nn<2, NV, MASKED>(k, ai, rsa, csa, b, ldb, ci, ldc, accumulate, tail); break;
    case 1: tile_nn<1, NV, MASKED>(k, ai, rsa, csa, b, ldb, ci, ldc, accumulate, tail); break;
    default: break;
  }
}

void gemm_nn(int m, int n, int k, const float *a, int64_t rsa, int64_t csa, const float *b,
             int64_t ldb, float *c, int64_t ldc, bool accumulate) {
  // Column panels outermost: a k x 16 panel of B stays in L1 across all rows.
  int j = 0;
  const __m256i all = _mm256_set1_epi32(-1);
  for (; j + 16 <= n; j += 16) rows_nn<2, false>(m, k, a, rsa, csa, b + j, ldb, c + j, ldc, accumulate, all);
  const int rest = n - j;
  if (rest > 8)
    rows_nn<2, true>(m, k, a, rsa, csa, b + j, ldb, c + j, ldc, accumulate, lane_mask(rest - 8));
  else if (rest == 8)
    rows_nn<1, false>(m, k, a, rsa, csa, b + j, ldb, c + j, ldc, accumulate, all);
  else if (rest > 0)
    rows_nn<1, true>(m, k, a, rsa, csa, b + j, ldb, c + j, ldc, accumulate, lane_mask(rest));
}

inline float hsum(__m256 v) {
  __m128 s = _mm_add_ps(_mm256_castps256_ps128(v), _mm256_extractf128_ps(v, 1));
  s = _mm_add_ps(s, _mm_movehl_ps(s, s));
  s = _mm_add_ss(s, _mm_movehdup_ps(s));
  return _mm_cvtss_f32(s);
}

// One MR x NR block of dot products over k.
template <int MR, int NR>
inline void tile_nt(int k, const float *a, int64_t lda, const float *b, int64_t ldb, float *c, int64_t ldc,
                    bool accumulate) {
  __m256 acc[MR][NR];
  #pragma GCC unroll 8
  for (int i = 0; i < MR; i++)
    #pragma GCC unroll 8
    for (int j = 0; j < NR; j++) acc[i][j] = _mm256_setzero_ps();
  int p = 0;
  for (; p + 8 <= k; p += 8) {
    __m256 bv[NR];
    #pragma GCC unroll 8
    for (int j = 0; j < NR; j++) bv[j] = _mm256_loadu_ps(b + j * ldb + p);
    #pragma GCC unroll 8
    for (int i = 0; i < MR; i++) {
      const __m256 av = _mm256_loadu_ps(a + i * lda + p);
      #pragma GCC unroll 8
      for (int j = 0; j < NR; j++) acc[i][j] = _mm256_fmadd_ps(av, bv[j], acc[i][j]);
    }
  }
  if (p < k) {
    const __m256i tail = lane_mask(k - p);
    __m256 bv[NR];
    #pragma GCC unroll 8
    for (int j = 0; j < NR; j++) bv[j] = _mm256_maskload_ps(b + j * ldb + p, tail);
    #pragma GCC unroll 8
    for (int i = 0; i < MR; i++) {
      const __m256 av = _mm256_maskload_ps(a + i * lda + p, tail);
      #pragma GCC unroll 8
      for (int j = 0; j < NR; j++) acc[i][j] = _mm256_fmadd_ps(av, bv[j], acc[i][j]);
    }
  }
  #pragma GCC unroll 8
  for (int i = 0; i < MR; i++)
    #pragma GCC unroll 8
    for (int j = 0; j < NR; j++) {
      const float dot = hsum(acc[i][j]);
      c[i * ldc + j] = accumulate ? c[i * ldc + j] + dot : dot;
    }
}

template <int MR>
inline void cols_nt(int n, int k, const float *a, int64_t lda, const float *b, int64_t ldb, float *c,
                    int64_t ldc, bool accumulate) {
  int j = 0;
  for (; j + 3 <= n; j += 3) tile_nt<MR, 3>(k, a, lda, b + j * ldb, ldb, c + j, ldc, accumulate);
  if (n - j == 2) tile_nt<MR, 2>(k, a, lda, b + j * ldb, ldb, c + j, ldc, accumulate);
  if (n - j == 1) tile_nt<MR, 1>(k, a, lda, b + j * ldb, ldb, c + j, ldc, accumulate);
}

void gemm_nt(int m, int n, int k, const float *a, int64_t lda, const float *b, int64_t ldb,
             float *c, int64_t ldc, bool accumulate) {
  int i = 0;
  for (; i + 4 <= m; i += 4) cols_nt<4>(n, k, a + i * lda, lda, b, ldb, c + i * ldc, ldc, accumulate);
  const float *ai = a + i * lda;
  float *ci = c + i * ldc;
  switch (m - i) {
    case 3: cols_nt<3>(n, k, ai, lda, b, ldb, ci, ldc, accumulate); break;
    case 2: cols_nt<2>(n, k, ai, lda, b, ldb, ci, ldc, accumulate); break;
    case 1: cols_nt<1>(n, k, ai, lda, b, ldb, ci, ldc, accumulate); break;
    default: break;
  }
}

float row_max(int n, const float *x) {
  __m256 m = _mm256_set1_ps(-INFINITY);
  int i = 0;
  for (; i + 8 <= n; i += 8) m = _mm256_max_ps(m, _mm256_loadu_ps(x + i));
  __m128 h = _mm_max_ps(_mm256_castps256_ps128(m), _mm256_extractf128_ps(m, 1));
  h = _mm_max_ps(h, _mm_movehl_ps(h, h));
  h = _mm_max_ss(h, _mm_movehdup_ps(h));
  float r = _mm_cvtss_f32(h);
  for (; i < n; i++) r = x[i] > r ? x[i] : r;
  return r;
}

// exp(x) to about 2 ulp (Cephes' expf polynomial on x - n ln 2); 0 below
// -87.3. n = round(x log2 e) comes from adding 1.5 * 2^23 + 127: the sum's low
// mantissa bits are then n + 127, which shifted into place give 2^n.
inline __m256 exp256(__m256 x) {
  const __m256 underflow = _mm256_cmp_ps(x, _mm256_set1_ps(-87.3365f), _CMP_LT_OQ);
  x = _mm256_min_ps(x, _mm256_set1_ps(88.0f));
  x = _mm256_max_ps(x, _mm256_set1_ps(-87.3365f));
  const __m256 magic = _mm256_set1_ps(12582912.0f + 127.0f);
  const __m256 t = _mm256_fmadd_ps(x, _mm256_set1_ps(1.44269504088896341f), magic);
  const __m256 n = _mm256_sub_ps(t, magic);
  __m256 r = _mm256_fnmadd_ps(n, _mm256_set1_ps(0.693359375f), x);
  r = _mm256_fnmadd_ps(n, _mm256_set1_ps(-2.12194440e-4f), r);
  __m256 y = _mm256_set1_ps(1.9875691500e-4f);
  y = _mm256_fmadd_ps(y, r, _mm256_set1_ps(1.3981999507e-3f));
  y = _mm256_fmadd_ps(y, r, _mm256_set1_ps(8.3334519073e-3f));
  y = _mm256_fmadd_ps(y, r, _mm256_set1_ps(4.1665795894e-2f));
  y = _mm256_fmadd_ps(y, r, _mm256_set1_ps(1.6666665459e-1f));
  y = _mm256_fmadd_ps(y, r, _mm256_set1_ps(5.0000001201e-1f));
  y = _mm256_fmadd_ps(y, _mm256_mul_ps(r, r), _mm256_add_ps(r, _mm256_set1_ps(1.0f)));
  const __m256 pow2n = _mm256_castsi256_ps(_mm256_slli_epi32(_mm256_castps_si256(t), 23));
  return _mm256_andnot_ps(underflow, _mm256_mul_ps(y, pow2n));
}

float exp_sub_sum(int n, float *x, float shift) {
  const __m256 s = _mm256_set1_ps(shift);
  __m256 sum = _mm256_setzero_ps();
  int i = 0;
  for (; i + 8 <= n; i += 8) {
    const __m256 y = exp256(_mm256_sub_ps(_mm256_loadu_ps(x + i), s));
    _mm256_storeu_ps(x + i, y);
    sum = _mm256_add_ps(sum, y);
  }
  if (i < n) {
    const __m256i tail = lane_mask(n - i);
    const __m256 y = exp256(_mm256_sub_ps(_mm256_maskload_ps(x + i, tail), s));
    _mm256_maskstore_ps(x + i, tail, y);
    sum = _mm256_add_ps(sum, _mm256_and_ps(y, _mm256_castsi256_ps(tail)));
  }
  return hsum(sum);
}

}  // namespace

const TileOps &tile_ops_avx2() {
  static const TileOps ops = {"avx2", gemm_nn, gemm_nt, row_max, exp_sub_sum};
  return ops;
}

}  // namespace tiles
#endif  // __x86_64__
