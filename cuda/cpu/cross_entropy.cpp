// The lm_head fused with cross-entropy, on the selected rows only: the
// logits z = H[rows] . W^T are made kVocabChunk columns at a time and folded
// into an online log-sum-exp, so the [rows, V] logits never exist. The
// gradient rides along in the same pass: acc = sum over v of exp(z_v - m) W_v,
// rescaled whenever the running max m moves, so at the end
// softmax(z) . W = acc / l and dH = grad_scale * (acc / l - W[target]).
//
// Threads split V; each keeps its own (m, l, acc) and the partial results
// are merged with the usual log-sum-exp rule.
#include <omp.h>

#include <algorithm>
#include <cmath>
#include <vector>

#include "common.h"
#include "row_io.h"
#include "tile_ops.h"

namespace {

constexpr int kVocabChunk = 64;

// Rows v0 .. v0 + vc - 1 of W as f32: W itself when it is F32, else converted into buf.
const float *w_rows(const void *W, int32_t w_dtype, int64_t v0, int vc, int D, float *buf) {
  if (w_dtype == LORAC_F32) return (const float *)W + v0 * D;
  load_row(W, w_dtype, v0 * D, vc * D, buf);
  return buf;
}

int check(lorac_ctx *ctx, const char *fn, int32_t n_rows, const int32_t *rows, int32_t T, int32_t D, int32_t V,
          const void *H, int32_t h_dtype, const void *W, int32_t w_dtype) {
  LORAC_REQUIRE(ctx, n_rows >= 0 && T >= 0 && D >= 1 && V >= 1, "%s: bad sizes n_rows = %d, T = %d, D = %d, V = %d",
                fn, n_rows, T, D, V);
  LORAC_REQUIRE(ctx, is_float_dtype(h_dtype) && is_float_dtype(w_dtype),
                "%s: H and W dtypes must be F32 or BF16 (got %d, %d)", fn, h_dtype, w_dtype);
  LORAC_REQUIRE(ctx, (rows && H && W) || n_rows == 0, "%s: rows, H and W must not be NULL", fn);
  for (int32_t k = 0; k < n_rows; k++)
    LORAC_REQUIRE(ctx, rows[k] >= 0 && rows[k] < T, "%s: rows[%d] = %d is outside H's %d rows", fn, k, rows[k], T);
  return LORAC_OK;
}

// The selected rows of H as f32 [n_rows, D].
std::vector<float> gather_rows(int32_t n_rows, const int32_t *rows, int32_t D, const void *H, int32_t h_dtype) {
  std::vector<float> hs((size_t)n_rows * D);
  for (int32_t k = 0; k < n_rows; k++) load_row(H, h_dtype, (int64_t)rows[k] * D, D, hs.data() + (size_t)k * D);
  return hs;
}

// One thread's share of the vocabulary, folded into running statistics per row.
struct Partial {
  std::vector<float> m, l, target_logit, acc;
};

void fold_vocab(const tiles::TileOps &ops, int64_t chunk_begin, int64_t chunk_end, int32_t R, int32_t D, int32_t V,
                const float *hs, const int32_t *targets, const void *W, int32_t w_dtype, bool grad, Partial &part) {
  part.m.assign(R, -INFINITY);
  part.l.assign(R, 0.0f);
  part.target_logit.assign(R, 0.0f);
  part.acc.assign(grad ? (size_t)R * D : 0, 0.0f);
  std::vector<float> wbuf(w_dtype == LORAC_F32 ? 0 : (size_t)kVocabChunk * D), z((size_t)R * kVocabChunk);
  for (int64_t c = chunk_begin; c < chunk_end; c++) {
    const int64_t v0 = c * kVocabChunk;
    const int vc = (int)std::min<int64_t>(kVocabChunk, V - v0);
    const float *wc = w_rows(W, w_dtype, v0, vc, D, wbuf.data());
    ops.gemm_nt(R, vc, D, hs, D, wc, D, z.data(), vc, false);
    for (int32_t r = 0; r < R; r++) {
      float *zr = z.data() + (size_t)r * vc;
      if (targets[r] >= v0 && targets[r] < v0 + vc) part.target_logit[r] = zr[targets[r] - v0];
      const float mx = std::max(part.m[r], ops.row_max(vc, zr));
      const float alpha = std::exp(part.m[r] - mx);
      part.l[r] = part.l[r] * alpha + ops.exp_sub_sum(vc, zr, mx);
      part.m[r] = mx;
      if (grad && alpha != 1.0f)
        for (int32_t i = 0; i < D; i++) part.acc[(size_t)r * D + i] *= alpha;
    }
    if (grad) ops.gemm_nn(R, D, vc, z.data(), vc, 1, wc, D, part.acc.data(), D, true);
  }
}

int cross_entropy(lorac_ctx *ctx, int32_t n_rows, const int32_t *rows, const int32_t *targets, int32_t T, int32_t D,
                  int32_t V, const void *H, int32_t h_dtype, const void *W, int32_t w_dtype, float grad_scale,
                  float *loss_sum, float *row_loss, void *dH, int32_t dh_dtype, int32_t accumulate) {
  const char *fn = "lorac_linear_cross_entropy";
  if (int st = check(ctx, fn, n_rows, rows, T, D, V, H, h_dtype, W, w_dtype)) return st;
  LORAC_REQUIRE(ctx, loss_sum, "%s: loss_sum must not be NULL", fn);
  LORAC_REQUIRE(ctx, targets || n_rows == 0, "%s: targets must not be NULL", fn);
  for (int32_t k = 0; k < n_rows; k++)
    LORAC_REQUIRE(ctx, targets[k] >= 0 && targets[k] < V, "%s: targets[%d] = %d is outside the vocabulary [0, %d)",
                  fn, k, targets[k], V);
  const bool grad = dH != nullptr;
  if (grad) {
    LORAC_REQUIRE(ctx, is_float_dtype(dh_dtype), "%s: dH dtype must be F32 or BF16, got %d", fn, dh_dtype);
    std::vector<char> seen(T, 0);
    for (int32_t k = 0; k < n_rows; k++) {
      LORAC_REQUIRE(ctx, !seen[rows[k]], "%s: row %d is selected twice; rows must be distinct when dH is given", fn,
                    rows[k]);
      seen[rows[k]] = 1;
    }
  }
  const std::vector<float> hs = gather_rows(n_rows, rows, D, H, h_dtype);
  const int64_t chunks = ((int64_t)V + kVocabChunk - 1) / kVocabChunk;
  const int nt = (int)std::max<int64_t>(1, std::min<int64_t>(ctx_threads(ctx), chunks));
  std::vector<Partial> parts(nt);
  const tiles::TileOps &ops = tiles::tile_ops();
  if (n_rows > 0) {
#pragma omp parallel num_threads(nt)
    {
      const int t = omp_get_thread_num(), n = omp_get_num_threads();
      fold_vocab(ops, chunks * t / n, chunks * (t + 1) / n, n_rows, D, V, hs.data(), targets, W, w_dtype, grad,
                 parts[t]);
    }
  }
  double total = 0.0;
#pragma omp parallel num_threads(ctx_threads(ctx)) reduction(+ : total)
  {
    std::vector<float> g(grad ? D : 0), wt(grad ? D : 0);
#pragma omp for schedule(static)
    for (int32_t r = 0; r < n_rows; r++) {
      float M = -INFINITY, zt = 0.0f;
      for (const Partial &p : parts)
        if (!p.m.empty()) M = std::max(M, p.m[r]);
      double L = 0.0;
      for (const Partial &p : parts)
        if (!p.m.empty()) L += (double)p.l[r] * std::exp((double)p.m[r] - M), zt += p.target_logit[r];
      const float loss = (float)(M + std::log(L) - zt);
      if (row_loss) row_loss[r] = loss;
      total += loss;
      if (!grad) continue;
      std::fill(g.begin(), g.end(), 0.0f);
      for (const Partial &p : parts) {
        if (p.m.empty()) continue;
        const float w = (float)(std::exp((double)p.m[r] - M) / L);
        for (int32_t i = 0; i < D; i++) g[i] += w * p.acc[(size_t)r * D + i];
      }
      load_row(W, w_dtype, (int64_t)targets[r] * D, D, wt.data());
      for (int32_t i = 0; i < D; i++) g[i] -= wt[i];
      store_row(dH, dh_dtype, (int64_t)rows[r] * D, D, g.data(), grad_scale, accumulate != 0);
    }
  }
  loss_sum[0] = (float)total;
  return LORAC_OK;
}

int logits(lorac_ctx *ctx, int32_t n_rows, const int32_t *rows, int32_t T, int32_t D, int32_t V, const void *H,
           int32_t h_dtype, const void *W, int32_t w_dtype, float *out) {
  const char *fn = "lorac_linear_logits";
  if (int st = check(ctx, fn, n_rows, rows, T, D, V, H, h_dtype, W, w_dtype)) return st;
  LORAC_REQUIRE(ctx, out || n_rows == 0, "%s: logits must not be NULL", fn);
  if (n_rows == 0) return LORAC_OK;
  const std::vector<float> hs = gather_rows(n_rows, rows, D, H, h_dtype);
  const int64_t chunks = ((int64_t)V + kVocabChunk - 1) / kVocabChunk;
  const tiles::TileOps &ops = tiles::tile_ops();
#pragma omp parallel num_threads(ctx_threads(ctx))
  {
    std::vector<float> wbuf(w_dtype == LORAC_F32 ? 0 : (size_t)kVocabChunk * D);
#pragma omp for schedule(static)
    for (int64_t c = 0; c < chunks; c++) {
      const int64_t v0 = c * kVocabChunk;
      const int vc = (int)std::min<int64_t>(kVocabChunk, V - v0);
      const float *wc = w_rows(W, w_dtype, v0, vc, D, wbuf.data());
      ops.gemm_nt(n_rows, vc, D, hs.data(), D, wc, D, out + v0, V, false);
    }
  }
  return LORAC_OK;
}

}  // namespace

extern "C" {

int lorac_linear_cross_entropy(lorac_ctx *ctx, int32_t n_rows, const int32_t *rows, const int32_t *targets, int32_t T,
                               int32_t D, int32_t V, const void *H, int32_t h_dtype, const void *W, int32_t w_dtype,
                               float grad_scale, float *loss_sum, float *row_loss, void *dH, int32_t dh_dtype,
                               int32_t accumulate) {
  LORAC_TRY(ctx, return cross_entropy(ctx, n_rows, rows, targets, T, D, V, H, h_dtype, W, w_dtype, grad_scale,
                                      loss_sum, row_loss, dH, dh_dtype, accumulate);)
}

int lorac_linear_logits(lorac_ctx *ctx, int32_t n_rows, const int32_t *rows, int32_t T, int32_t D, int32_t V,
                        const void *H, int32_t h_dtype, const void *W, int32_t w_dtype, float *logits_out) {
  LORAC_TRY(ctx, return logits(ctx, n_rows, rows, T, D, V, H, h_dtype, W, w_dtype, logits_out);)
}

}  // extern "C"
