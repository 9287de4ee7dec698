// LoRA forward and backward on the CPU, with PEFT's semantics:
//   XA = drop(X)·Aᵀ, Y += scale·XA·Bᵀ, drop(x_i) = keep_i ? x_i/(1-p) : 0,
// keep_i from lorac.h's counter-based hash of the element index row*K+col, so
// the backward recomputes the forward's mask instead of storing it.
//
// Without dropout, every product is a call of the blocked GEMM (gemm.cpp),
// which splits work over output rows and columns only, so results do not
// depend on the thread count. With dropout the masked X never exists in
// memory: the products that read it are written either as row dot products
// (k contiguous in both operands) or as row updates y += a·x (contiguous in
// the output), with fixed summation orders and inner loops the compiler
// vectorizes.
#include <omp.h>

#include <algorithm>
#include <stdexcept>
#include <vector>

#include "common.h"

namespace {

constexpr int kTile = 4;        // rows of X / dY handled together, sharing each load of A or B
constexpr int kChunk = 256;    // columns per block of row updates
constexpr int kTaskCols = 64;  // columns per task of the dA / dB accumulations

// C = alpha·op(A)·op(B) + beta·C through lorac_gemm; a failure (it has set the error) becomes an exception.
void gemm(lorac_ctx *ctx, bool ta, bool tb, int64_t M, int64_t N, int64_t K, float alpha, const void *A, int a_dtype,
          int64_t lda, const void *B, int b_dtype, int64_t ldb, float beta, void *C, int c_dtype, int64_t ldc) {
  if (lorac_gemm(ctx, ta, tb, (int32_t)M, (int32_t)N, (int32_t)K, alpha, A, a_dtype, (int32_t)lda, B, b_dtype,
                 (int32_t)ldb, beta, C, c_dtype, (int32_t)ldc) != LORAC_OK)
    throw std::runtime_error(lorac_last_error(ctx));
}

struct Dropout {
  uint64_t seed;
  uint64_t threshold;
  float keep_scale;  // 1/(1-p), as torch's dropout scales the kept elements
  bool active;
  Dropout(float p, uint64_t s)
      : seed(s), threshold(lorac_dropout_threshold(p)), keep_scale(1.0f / (1.0f - p)), active(p > 0.0f) {}
  // The factor element i is multiplied by: 0 or 1/(1-p) (1 without dropout).
  float factor(uint64_t i) const {
    if (!active) return 1.0f;
    return lorac_dropout_keep(seed, i, threshold) ? keep_scale : 0.0f;
  }
};

// Row `row` of a [*, cols] F32/BF16 matrix, columns [c0, c0+n), as f32 times the dropout factor.
void load_row(const void *p, int dtype, int64_t row, int64_t cols, int64_t c0, int64_t n, const Dropout &drop,
              float *out) {
  const int64_t base = row * cols + c0;
  if (dtype == LORAC_F32) {
    const float *src = (const float *)p + base;
    for (int64_t c = 0; c < n; c++) out[c] = src[c];
  } else {
    const uint16_t *src = (const uint16_t *)p + base;
    for (int64_t c = 0; c < n; c++) out[c] = bf16_to_f32(src[c]);
  }
  if (drop.active)
    for (int64_t c = 0; c < n; c++) out[c] *= drop.factor((uint64_t)(base + c));
}

// out[t] = Σ_k x[t][k]·a[k] for `rows` rows at once (rows <= kTile), in 8 interleaved
// partial sums per row combined in a fixed order.
void dots(const float *const *x, int rows, const float *a, int64_t n, float *out) {
  float acc[kTile][8] = {};
  int64_t k = 0;
  for (; k + 8 <= n; k += 8)
    for (int t = 0; t < rows; t++)
      for (int u = 0; u < 8; u++) acc[t][u] += x[t][k + u] * a[k + u];
  for (int t = 0; t < rows; t++) {
    float tail = 0.0f;
    for (int64_t i = k; i < n; i++) tail += x[t][i] * a[i];
    out[t] = ((acc[t][0] + acc[t][4]) + (acc[t][1] + acc[t][5])) + ((acc[t][2] + acc[t][6]) + (acc[t][3] + acc[t][7])) +
             tail;
  }
}

// dst[i] += v[i] for n elements of an F32/BF16 array from `offset`.
void add_to_row(void *dst, int dtype, int64_t offset, const float *v, int64_t n) {
  if (dtype == LORAC_F32) {
    float *d = (float *)dst + offset;
    for (int64_t i = 0; i < n; i++) d[i] += v[i];
  } else {
    uint16_t *d = (uint16_t *)dst + offset;
    for (int64_t i = 0; i < n; i++) d[i] = f32_to_bf16(bf16_to_f32(d[i]) + v[i]);
  }
}

// acc[t][0..n) = Σ_j coef[t][j]·src[j][0..n) for `rows` rows (src row j at src + j*stride):
// row updates over contiguous columns, each src row loaded once for all rows.
void combine_rows(const float *const *coef, int rows, int64_t r, const float *src, int64_t stride, int64_t n,
                  float *acc) {
  std::fill(acc, acc + rows * kChunk, 0.0f);
  for (int64_t j = 0; j < r; j++) {
    const float *s = src + j * stride;
    for (int t = 0; t < rows; t++) {
      const float c = coef[t][j];
      float *a = acc + t * kChunk;
      for (int64_t i = 0; i < n; i++) a[i] += c * s[i];
    }
  }
}

void lora_forward(lorac_ctx *ctx, int64_t M, int64_t N, int64_t K, int64_t r, const void *X, int x_dtype,
                  const float *A, const float *B, float scale, const Dropout &drop, float *XA, void *Y,
                  int y_dtype) {
  if (!drop.active) {
    gemm(ctx, false, true, M, r, K, 1.0f, X, x_dtype, K, A, LORAC_F32, K, 0.0f, XA, LORAC_F32, r);  // XA = X·Aᵀ
    gemm(ctx, false, true, M, N, r, scale, XA, LORAC_F32, r, B, LORAC_F32, r, 1.0f, Y, y_dtype, N);  // Y += s·XA·Bᵀ
    return;
  }
  const int threads = ctx_threads(ctx);
  // Bᵀ [r, N] scaled, so that Y rows are row updates: Y[m] += Σ_j XA[m, j]·scale·Bᵀ[j].
  std::vector<float> Bt((size_t)r * N);
  for (int64_t n = 0; n < N; n++)
    for (int64_t j = 0; j < r; j++) Bt[j * N + n] = scale * B[n * r + j];
  const int64_t per_thread = kTile * std::max<int64_t>(K, kChunk);
  std::vector<float> scratch((size_t)threads * per_thread);
  const int64_t tiles = (M + kTile - 1) / kTile;
#pragma omp parallel for num_threads(threads) schedule(dynamic, 1)
  for (int64_t tile = 0; tile < tiles; tile++) {
    const int64_t m0 = tile * kTile;
    const int rows = (int)std::min<int64_t>(kTile, M - m0);
    float *buf = scratch.data() + (size_t)omp_get_thread_num() * per_thread;
    const float *x[kTile];
    for (int t = 0; t < rows; t++) {
      load_row(X, x_dtype, m0 + t, K, 0, K, drop, buf + t * K);
      x[t] = buf + t * K;
    }
    const float *xa[kTile];
    float d[kTile];
    for (int t = 0; t < rows; t++) xa[t] = XA + (m0 + t) * r;
    for (int64_t j = 0; j < r; j++) {
      dots(x, rows, A + j * K, K, d);
      for (int t = 0; t < rows; t++) XA[(m0 + t) * r + j] = d[t];
    }
    // The X rows are done with: buf now holds Y increments, kChunk columns at a time.
    for (int64_t n0 = 0; n0 < N; n0 += kChunk) {
      const int64_t n = std::min<int64_t>(kChunk, N - n0);
      combine_rows(xa, rows, r, Bt.data() + n0, N, n, buf);
      for (int t = 0; t < rows; t++) add_to_row(Y, y_dtype, (m0 + t) * N + n0, buf + t * kChunk, n);
    }
  }
}

// store(col, j, Σ_m coef[m, j]·drop(src)[m, col]) for a [M, cols] source, one task per
// kTaskCols columns: the shape of both dB = scale·dYᵀ·XA and dA = Gᵀ·drop(X).
template <typename Store>
void accumulate_transposed(lorac_ctx *ctx, int64_t M, int64_t cols, int64_t r, const void *src, int src_dtype,
                           const Dropout &drop, const float *coef, Store store) {
  const int threads = ctx_threads(ctx);
  std::vector<float> scratch((size_t)threads * (r + 1) * kTaskCols);
  const int64_t chunks = (cols + kTaskCols - 1) / kTaskCols;
#pragma omp parallel for num_threads(threads) schedule(dynamic, 1)
  for (int64_t chunk = 0; chunk < chunks; chunk++) {
    const int64_t c0 = chunk * kTaskCols;
    const int64_t n = std::min<int64_t>(kTaskCols, cols - c0);
    float *acc = scratch.data() + (size_t)omp_get_thread_num() * (r + 1) * kTaskCols;
    float *v = acc + r * kTaskCols;
    std::fill(acc, acc + r * kTaskCols, 0.0f);
    for (int64_t m = 0; m < M; m++) {
      load_row(src, src_dtype, m, cols, c0, n, drop, v);
      for (int64_t j = 0; j < r; j++) {
        const float w = coef[m * r + j];
        float *a = acc + j * kTaskCols;
        for (int64_t c = 0; c < n; c++) a[c] += w * v[c];
      }
    }
    for (int64_t c = 0; c < n; c++)
      for (int64_t j = 0; j < r; j++) store(c0 + c, j, acc[j * kTaskCols + c]);
  }
}

void lora_backward(lorac_ctx *ctx, int64_t M, int64_t N, int64_t K, int64_t r, const void *X, int x_dtype,
                   const float *A, const float *B, float scale, const Dropout &drop, const float *XA,
                   const void *dY, int dy_dtype, float *dA, float *dB, void *dX, int dx_dtype) {
  if (!drop.active) {
    std::vector<float> G((size_t)M * r);
    gemm(ctx, false, false, M, r, N, scale, dY, dy_dtype, N, B, LORAC_F32, r, 0.0f, G.data(), LORAC_F32, r);  // s·dY·B
    gemm(ctx, true, false, N, r, M, scale, dY, dy_dtype, N, XA, LORAC_F32, r, 1.0f, dB, LORAC_F32, r);  // += s·dYᵀ·XA
    gemm(ctx, true, false, r, K, M, 1.0f, G.data(), LORAC_F32, r, X, x_dtype, K, 1.0f, dA, LORAC_F32, K);  // += Gᵀ·X
    if (dX) gemm(ctx, false, false, M, K, r, 1.0f, G.data(), LORAC_F32, r, A, LORAC_F32, K, 1.0f, dX, dx_dtype, K);
    return;
  }
  const int threads = ctx_threads(ctx);
  // Bᵀ [r, N], so that G = scale·dY·B is row dot products.
  std::vector<float> Bt((size_t)r * N);
  for (int64_t n = 0; n < N; n++)
    for (int64_t j = 0; j < r; j++) Bt[j * N + n] = B[n * r + j];
  std::vector<float> G((size_t)M * r);
  const int64_t rowbuf = std::max<int64_t>(N, kChunk);
  std::vector<float> scratch((size_t)threads * kTile * rowbuf);
  const Dropout none(0.0f, 0);
  const int64_t tiles = (M + kTile - 1) / kTile;
#pragma omp parallel for num_threads(threads) schedule(dynamic, 1)
  for (int64_t tile = 0; tile < tiles; tile++) {
    const int64_t m0 = tile * kTile;
    const int rows = (int)std::min<int64_t>(kTile, M - m0);
    float *buf = scratch.data() + (size_t)omp_get_thread_num() * kTile * rowbuf;
    const float *dy[kTile];
    for (int t = 0; t < rows; t++) {
      load_row(dY, dy_dtype, m0 + t, N, 0, N, none, buf + t * rowbuf);
      dy[t] = buf + t * rowbuf;
    }
    float d[kTile];
    for (int64_t j = 0; j < r; j++) {
      dots(dy, rows, Bt.data() + j * N, N, d);
      for (int t = 0; t < rows; t++) G[(m0 + t) * r + j] = scale * d[t];
    }
    if (!dX) continue;
    // dX rows += mask/(1-p)·(G·A), kChunk columns at a time, reusing buf.
    const float *g[kTile];
    for (int t = 0; t < rows; t++) g[t] = G.data() + (m0 + t) * r;
    for (int64_t k0 = 0; k0 < K; k0 += kChunk) {
      const int64_t n = std::min<int64_t>(kChunk, K - k0);
      combine_rows(g, rows, r, A + k0, K, n, buf);
      for (int t = 0; t < rows; t++) {
        float *v = buf + t * kChunk;
        if (drop.active)
          for (int64_t c = 0; c < n; c++) v[c] *= drop.factor((uint64_t)((m0 + t) * K + k0 + c));
        add_to_row(dX, dx_dtype, (m0 + t) * K + k0, v, n);
      }
    }
  }
  accumulate_transposed(ctx, M, N, r, dY, dy_dtype, none, XA,
                        [&](int64_t n, int64_t j, float v) { dB[n * r + j] += scale * v; });
  accumulate_transposed(ctx, M, K, r, X, x_dtype, drop, G.data(),
                        [&](int64_t k, int64_t j, float v) { dA[j * K + k] += v; });
}

}  // namespace

extern "C" {

int lorac_lora_forward(lorac_ctx *ctx, int32_t M, int32_t N, int32_t K, int32_t r, const void *X, int32_t x_dtype,
                       const float *A, const float *B, float scale, float dropout_p, uint64_t seed, float *XA,
                       void *Y, int32_t y_dtype) {
  LORAC_REQUIRE(ctx, ctx, "lorac_lora_forward: ctx is NULL");
  LORAC_REQUIRE(ctx, M >= 0 && N > 0 && K > 0 && r > 0,
                "lorac_lora_forward: sizes must be M >= 0 and N, K, r > 0 (got M=%d N=%d K=%d r=%d)", M, N, K, r);
  LORAC_REQUIRE(ctx, is_float_dtype(x_dtype) && is_float_dtype(y_dtype),
                "lorac_lora_forward: X and Y must be F32 or BF16 (got dtypes %d, %d)", x_dtype, y_dtype);
  LORAC_REQUIRE(ctx, dropout_p >= 0.0f && dropout_p < 1.0f, "lorac_lora_forward: dropout_p must be in [0, 1), got %g",
                (double)dropout_p);
  LORAC_REQUIRE(ctx, X && A && B && XA && Y, "lorac_lora_forward: X, A, B, XA or Y is NULL");
  LORAC_TRY(ctx, { lora_forward(ctx, M, N, K, r, X, x_dtype, A, B, scale, Dropout(dropout_p, seed), XA, Y, y_dtype); })
  return LORAC_OK;
}

int lorac_lora_backward(lorac_ctx *ctx, int32_t M, int32_t N, int32_t K, int32_t r, const void *X, int32_t x_dtype,
                        const float *A, const float *B, float scale, float dropout_p, uint64_t seed, const float *XA,
                        const void *dY, int32_t dy_dtype, float *dA, float *dB, void *dX, int32_t dx_dtype) {
  LORAC_REQUIRE(ctx, ctx, "lorac_lora_backward: ctx is NULL");
  LORAC_REQUIRE(ctx, M >= 0 && N > 0 && K > 0 && r > 0,
                "lorac_lora_backward: sizes must be M >= 0 and N, K, r > 0 (got M=%d N=%d K=%d r=%d)", M, N, K, r);
  LORAC_REQUIRE(ctx, is_float_dtype(x_dtype) && is_float_dtype(dy_dtype) && (!dX || is_float_dtype(dx_dtype)),
                "lorac_lora_backward: X, dY and dX must be F32 or BF16 (got dtypes %d, %d, %d)", x_dtype, dy_dtype,
                dx_dtype);
  LORAC_REQUIRE(ctx, dropout_p >= 0.0f && dropout_p < 1.0f,
                "lorac_lora_backward: dropout_p must be in [0, 1), got %g", (double)dropout_p);
  LORAC_REQUIRE(ctx, X && A && B && XA && dY && dA && dB, "lorac_lora_backward: X, A, B, XA, dY, dA or dB is NULL");
  LORAC_TRY(ctx, {
    lora_backward(ctx, M, N, K, r, X, x_dtype, A, B, scale, Dropout(dropout_p, seed), XA, dY, dy_dtype, dA, dB, dX,
                  dx_dtype);
  })
  return LORAC_OK;
}

}  // extern "C"
