// Causal grouped-query attention over packed sequences, flash-attention
// style: the forward streams key blocks through an online softmax and keeps
// only the log-sum-exp; the backward recomputes the probabilities block by
// block from q, k and that log-sum-exp.
//
// Query and key blocks of kBlock rows are aligned to each sequence's start,
// so every block left of the diagonal is fully visible and the diagonal block
// is the only one with a mask. Operands are packed to f32 once per task (k
// transposed, so every product is a row-major tile GEMM of tile_ops.h).
//
// Parallelism: the forward runs one task per (sequence, kv head, query
// block), largest first. The backward runs one task per (sequence, kv head),
// which owns the dk / dv rows of its kv head and the dq rows of its query
// heads, so no two threads ever write the same element. When that gives the
// threads too little to share, each query head of a group becomes its own
// task with private fp32 dk / dv partials, summed over the group at the end.
#include <omp.h>

#include <algorithm>
#include <cmath>
#include <vector>

#include "common.h"
#include "packed.h"
#include "row_io.h"
#include "tile_ops.h"

namespace {

constexpr int kBlock = 64;

struct Shape {
  const int32_t *cu;
  int32_t T, n_heads, n_kv, d, group;
  int32_t seq_start(int s) const { return cu[s]; }
  int32_t seq_len(int s) const { return cu[s + 1] - cu[s]; }
  // Element offset of token t, head h in a [T, heads, d] tensor.
  int64_t at(int64_t t, int h, int heads) const { return (t * heads + h) * (int64_t)d; }
};

// Packs keys [0, nk) of sequence s, kv head g: kt [d, nk] (transposed) and,
// when v_rows is not NULL, v [nk, d]; row is scratch of d floats.
void pack_kv(const Shape &sh, int s, int g, int nk, const void *k, const void *v, int dtype, float *kt,
             float *v_rows, float *row) {
  const int64_t t0 = sh.seq_start(s);
  for (int u = 0; u < nk; u++) {
    load_row(k, dtype, sh.at(t0 + u, g, sh.n_kv), sh.d, row);
    for (int c = 0; c < sh.d; c++) kt[(int64_t)c * nk + u] = row[c];
    if (v_rows) load_row(v, dtype, sh.at(t0 + u, g, sh.n_kv), sh.d, v_rows + (int64_t)u * sh.d);
  }
}

struct FwdTask {
  int s, g, qb;
};

// Forward of query block qb of sequence s for every query head of kv head g.
void forward_task(const tiles::TileOps &ops, const Shape &sh, const FwdTask &task, float scale, const void *q,
                  const void *k, const void *v, int dtype, void *out, float *lse, std::vector<float> &buf) {
  const int d = sh.d;
  const int64_t t0 = sh.seq_start(task.s);
  const int i0 = task.qb * kBlock;
  const int bq = std::min(kBlock, sh.seq_len(task.s) - i0);
  const int nk = i0 + bq;  // causal: keys up to the block's last query
  buf.resize((size_t)2 * nk * d + (size_t)bq * (2 * d + kBlock + 2) + d);
  float *kt = buf.data(), *vv = kt + (size_t)nk * d, *qs = vv + (size_t)nk * d;
  float *sc = qs + (size_t)bq * d, *o = sc + (size_t)bq * kBlock, *m = o + (size_t)bq * d, *l = m + bq;
  float *row = l + bq;
  pack_kv(sh, task.s, task.g, nk, k, v, dtype, kt, vv, row);
  for (int h = task.g * sh.group; h < (task.g + 1) * sh.group; h++) {
    for (int r = 0; r < bq; r++) load_row(q, dtype, sh.at(t0 + i0 + r, h, sh.n_heads), d, qs + r * d, scale);
    std::fill(o, o + (size_t)bq * d, 0.0f);
    std::fill(m, m + bq, -INFINITY);
    std::fill(l, l + bq, 0.0f);
    for (int j0 = 0; j0 < nk; j0 += kBlock) {
      const int bk = std::min(kBlock, nk - j0);
      ops.gemm_nn(bq, bk, d, qs, d, 1, kt + j0, nk, sc, kBlock, false);
      for (int r = 0; r < bq; r++) {
        float *p = sc + r * kBlock;
        const int valid = std::min(bk, i0 + r - j0 + 1);  // >= 1: blocks are aligned
        const float mx = std::max(m[r], ops.row_max(valid, p));
        const float alpha = std::exp(m[r] - mx);
        l[r] = l[r] * alpha + ops.exp_sub_sum(valid, p, mx);
        std::fill(p + valid, p + bk, 0.0f);
        if (alpha != 1.0f)
          for (int c = 0; c < d; c++) o[r * d + c] *= alpha;
        m[r] = mx;
      }
      ops.gemm_nn(bq, d, bk, sc, kBlock, 1, vv + (int64_t)j0 * d, d, o, d, true);
    }
    for (int r = 0; r < bq; r++) {
      store_row(out, dtype, sh.at(t0 + i0 + r, h, sh.n_heads), d, o + r * d, 1.0f / l[r]);
      if (lse) lse[(int64_t)h * sh.T + t0 + i0 + r] = m[r] + std::log(l[r]);
    }
  }
}

// One backward task: sequence s, kv head g, query heads [h_begin, h_end) of
// its group.
struct BwdTask {
  int s, g, h_begin, h_end;
};

// Backward of one task. With `partial` (fp32 [n_heads, T, 2, d]) the task's
// dk and dv go to the slab of head h_begin there, else straight into dk, dv.
void backward_task(const tiles::TileOps &ops, const Shape &sh, const BwdTask &task, float scale, const void *q,
                   const void *k, const void *v, const void *out, const void *dout, int dtype, const float *lse,
                   void *dq, void *dk, void *dv, float *partial, std::vector<float> &buf) {
  const int s = task.s, g = task.g;
  const int d = sh.d;
  const int64_t t0 = sh.seq_start(s);
  const int L = sh.seq_len(s);
  const size_t Ld = (size_t)L * d, Bd = (size_t)kBlock * d, BB = (size_t)kBlock * kBlock;
  buf.assign(5 * Ld + 3 * Bd + 2 * BB + 2 * kBlock + 2 * d, 0.0f);
  float *kf = buf.data(), *kt = kf + Ld, *vt = kt + Ld, *dk_acc = vt + Ld, *dv_acc = dk_acc + Ld;
  float *qs = dv_acc + Ld, *dos = qs + Bd, *dqs = dos + Bd, *p = dqs + Bd, *ds = p + BB;
  float *delta = ds + BB, *lse_r = delta + kBlock, *row = lse_r + kBlock, *orow = row + d;
  pack_kv(sh, s, g, L, v, nullptr, dtype, vt, nullptr, row);
  pack_kv(sh, s, g, L, k, nullptr, dtype, kt, nullptr, row);
  for (int u = 0; u < L; u++) load_row(k, dtype, sh.at(t0 + u, g, sh.n_kv), d, kf + (size_t)u * d);
  for (int h = task.h_begin; h < task.h_end; h++) {
    for (int i0 = 0; i0 < L; i0 += kBlock) {
      const int bq = std::min(kBlock, L - i0);
      for (int r = 0; r < bq; r++) {
        const int64_t at = sh.at(t0 + i0 + r, h, sh.n_heads);
        load_row(q, dtype, at, d, qs + r * d, scale);
        load_row(dout, dtype, at, d, dos + r * d);
        load_row(out, dtype, at, d, orow);
        float D = 0.0f;  // rowsum(dO * O): the softmax backward's correction
        for (int c = 0; c < d; c++) D += dos[r * d + c] * orow[c];
        delta[r] = D;
        lse_r[r] = lse[(int64_t)h * sh.T + t0 + i0 + r];
      }
      std::fill(dqs, dqs + (size_t)bq * d, 0.0f);
      for (int j0 = 0; j0 <= i0; j0 += kBlock) {
        const int bk = std::min(kBlock, L - j0);
        ops.gemm_nn(bq, bk, d, qs, d, 1, kt + j0, L, p, kBlock, false);
        ops.gemm_nn(bq, bk, d, dos, d, 1, vt + j0, L, ds, kBlock, false);
        for (int r = 0; r < bq; r++) {
          float *pr = p + r * kBlock, *dsr = ds + r * kBlock;
          const int valid = std::min(bk, i0 + r - j0 + 1);
          ops.exp_sub_sum(valid, pr, lse_r[r]);
          std::fill(pr + valid, pr + bk, 0.0f);
          for (int c = 0; c < bk; c++) dsr[c] = pr[c] * (dsr[c] - delta[r]);
        }
        // dV += P^T dO and dK += dS^T (scale q): A read transposed through its strides.
        ops.gemm_nn(bk, d, bq, p, 1, kBlock, dos, d, dv_acc + (size_t)j0 * d, d, true);
        ops.gemm_nn(bk, d, bq, ds, 1, kBlock, qs, d, dk_acc + (size_t)j0 * d, d, true);
        ops.gemm_nn(bq, d, bk, ds, kBlock, 1, kf + (size_t)j0 * d, d, dqs, d, true);
      }
      for (int r = 0; r < bq; r++) store_row(dq, dtype, sh.at(t0 + i0 + r, h, sh.n_heads), d, dqs + r * d, scale);
    }
  }
  for (int u = 0; u < L; u++) {
    if (partial) {
      float *slab = partial + (((size_t)task.h_begin * sh.T + t0 + u) * 2) * d;
      std::copy(dk_acc + (size_t)u * d, dk_acc + (size_t)(u + 1) * d, slab);
      std::copy(dv_acc + (size_t)u * d, dv_acc + (size_t)(u + 1) * d, slab + d);
    } else {
      store_row(dk, dtype, sh.at(t0 + u, g, sh.n_kv), d, dk_acc + (size_t)u * d);
      store_row(dv, dtype, sh.at(t0 + u, g, sh.n_kv), d, dv_acc + (size_t)u * d);
    }
  }
}

// dk, dv of every token and kv head: the sum of its query heads' partials.
void reduce_partials(const Shape &sh, const float *partial, int dtype, void *dk, void *dv, int threads) {
  const int d = sh.d;
#pragma omp parallel num_threads(threads)
  {
    std::vector<float> sum(2 * d);
#pragma omp for schedule(static)
    for (int64_t tg = 0; tg < (int64_t)sh.T * sh.n_kv; tg++) {
      const int64_t t = tg / sh.n_kv;
      const int g = (int)(tg % sh.n_kv);
      std::fill(sum.begin(), sum.end(), 0.0f);
      for (int h = g * sh.group; h < (g + 1) * sh.group; h++) {
        const float *slab = partial + ((size_t)h * sh.T + t) * 2 * d;
        for (int c = 0; c < 2 * d; c++) sum[c] += slab[c];
      }
      store_row(dk, dtype, sh.at(t, g, sh.n_kv), d, sum.data());
      store_row(dv, dtype, sh.at(t, g, sh.n_kv), d, sum.data() + d);
    }
  }
}

int check_common(lorac_ctx *ctx, const char *fn, int32_t num_seqs, const int32_t *cu_seqlens, int32_t max_seqlen,
                 int32_t T, int32_t n_heads, int32_t n_kv_heads, int32_t head_dim, int32_t dtype) {
  if (int st = check_packed(ctx, fn, num_seqs, cu_seqlens, max_seqlen, T)) return st;
  if (int st = check_heads(ctx, fn, n_heads, n_kv_heads, head_dim)) return st;
  LORAC_REQUIRE(ctx, is_float_dtype(dtype), "%s: dtype must be F32 or BF16, got %d", fn, dtype);
  return LORAC_OK;
}

int forward(lorac_ctx *ctx, int32_t num_seqs, const int32_t *cu_seqlens, int32_t max_seqlen, int32_t T,
            int32_t n_heads, int32_t n_kv_heads, int32_t head_dim, float scale, const void *q, const void *k,
            const void *v, int32_t dtype, void *out, float *lse) {
  const char *fn = "lorac_attention_forward";
  if (int st = check_common(ctx, fn, num_seqs, cu_seqlens, max_seqlen, T, n_heads, n_kv_heads, head_dim, dtype))
    return st;
  LORAC_REQUIRE(ctx, (q && k && v && out) || T == 0, "%s: q, k, v and out must not be NULL", fn);
  const Shape sh{cu_seqlens, T, n_heads, n_kv_heads, head_dim, n_heads / n_kv_heads};
  std::vector<FwdTask> tasks;
  for (int s = 0; s < num_seqs; s++)
    for (int qb = 0; qb * kBlock < sh.seq_len(s); qb++)
      for (int g = 0; g < n_kv_heads; g++) tasks.push_back({s, g, qb});
  // Later query blocks see more keys: start them first so threads finish together.
  std::stable_sort(tasks.begin(), tasks.end(), [](const FwdTask &a, const FwdTask &b) { return a.qb > b.qb; });
  const tiles::TileOps &ops = tiles::tile_ops();
#pragma omp parallel num_threads(ctx_threads(ctx))
  {
    std::vector<float> buf;
#pragma omp for schedule(dynamic, 1)
    for (size_t i = 0; i < tasks.size(); i++) forward_task(ops, sh, tasks[i], scale, q, k, v, dtype, out, lse, buf);
  }
  return LORAC_OK;
}

int backward(lorac_ctx *ctx, int32_t num_seqs, const int32_t *cu_seqlens, int32_t max_seqlen, int32_t T,
             int32_t n_heads, int32_t n_kv_heads, int32_t head_dim, float scale, const void *q, const void *k,
             const void *v, const void *out, const void *dout, int32_t dtype, const float *lse, void *dq, void *dk,
             void *dv) {
  const char *fn = "lorac_attention_backward";
  if (int st = check_common(ctx, fn, num_seqs, cu_seqlens, max_seqlen, T, n_heads, n_kv_heads, head_dim, dtype))
    return st;
  LORAC_REQUIRE(ctx, (q && k && v && out && dout && lse && dq && dk && dv) || T == 0,
                "%s: q, k, v, out, dout, lse, dq, dk and dv must not be NULL", fn);
  const Shape sh{cu_seqlens, T, n_heads, n_kv_heads, head_dim, n_heads / n_kv_heads};
  const int threads = ctx_threads(ctx);
  // Too few (sequence, kv head) tasks for the threads: split each group by query head.
  const bool split = sh.group > 1 && (int64_t)num_seqs * n_kv_heads < 2 * (int64_t)threads;
  std::vector<BwdTask> tasks;
  for (int s = 0; s < num_seqs; s++)
    for (int g = 0; g < n_kv_heads; g++) {
      if (!split) tasks.push_back({s, g, g * sh.group, (g + 1) * sh.group});
      for (int h = g * sh.group; split && h < (g + 1) * sh.group; h++) tasks.push_back({s, g, h, h + 1});
    }
  // Longest sequences first, so threads finish together.
  std::stable_sort(tasks.begin(), tasks.end(),
                   [&](const BwdTask &a, const BwdTask &b) { return sh.seq_len(a.s) > sh.seq_len(b.s); });
  std::vector<float> partial(split ? (size_t)n_heads * T * 2 * head_dim : 0);
  const tiles::TileOps &ops = tiles::tile_ops();
#pragma omp parallel num_threads(threads)
  {
    std::vector<float> buf;
#pragma omp for schedule(dynamic, 1)
    for (size_t i = 0; i < tasks.size(); i++)
      backward_task(ops, sh, tasks[i], scale, q, k, v, out, dout, dtype, lse, dq, dk, dv,
                    split ? partial.data() : nullptr, buf);
  }
  if (split) reduce_partials(sh, partial.data(), dtype, dk, dv, threads);
  return LORAC_OK;
}

}  // namespace

extern "C" {

int lorac_attention_forward(lorac_ctx *ctx, int32_t num_seqs, const int32_t *cu_seqlens, int32_t max_seqlen,
                            int32_t T, int32_t n_heads, int32_t n_kv_heads, int32_t head_dim, float scale,
                            const void *q, const void *k, const void *v, int32_t dtype, void *out, float *lse) {
  LORAC_TRY(ctx, return forward(ctx, num_seqs, cu_seqlens, max_seqlen, T, n_heads, n_kv_heads, head_dim, scale, q,
                                k, v, dtype, out, lse);)
}

int lorac_attention_backward_workspace(lorac_ctx *ctx, int32_t num_seqs, int32_t max_seqlen, int32_t T,
                                       int32_t n_heads, int32_t n_kv_heads, int32_t head_dim, int64_t *bytes_out) {
  (void)num_seqs, (void)max_seqlen, (void)T, (void)n_heads, (void)n_kv_heads, (void)head_dim;
  LORAC_REQUIRE(ctx, bytes_out, "lorac_attention_backward_workspace: bytes_out is NULL");
  *bytes_out = 0;  // each CPU thread keeps its own scratch
  return LORAC_OK;
}

int lorac_attention_backward(lorac_ctx *ctx, int32_t num_seqs, const int32_t *cu_seqlens, int32_t max_seqlen,
                             int32_t T, int32_t n_heads, int32_t n_kv_heads, int32_t head_dim, float scale,
                             const void *q, const void *k, const void *v, const void *out, const void *dout,
                             int32_t dtype, const float *lse, void *dq, void *dk, void *dv, void *workspace,
                             int64_t workspace_bytes) {
  (void)workspace, (void)workspace_bytes;
  LORAC_TRY(ctx, return backward(ctx, num_seqs, cu_seqlens, max_seqlen, T, n_heads, n_kv_heads, head_dim, scale, q,
                                 k, v, out, dout, dtype, lse, dq, dk, dv);)
}

}  // extern "C"
