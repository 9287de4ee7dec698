/*
 * lorac.h — the one C ABI of lorac's native kernel library.
 *
 * Built twice from this header: libcpukernels (g++, OpenMP, host memory) and
 * libcudakernels (nvcc, device memory, asynchronous on the context's stream).
 * Both export exactly these symbols; lib/backend/symbols.ts mirrors them.
 *
 * Conventions
 * - Every call but lorac_last_error returns 0 on success or a non-zero status;
 *   the message is then readable with lorac_last_error(ctx) (ctx may be NULL
 *   for failures of lorac_ctx_create / lorac_device_count).
 * - The library never aborts and never prints.
 * - Pointers are device pointers: plain host memory in the CPU build.
 * - Matrices are row-major and dense unless a leading dimension is given.
 * - dtype codes are enum lorac_dtype. "x_dtype" parameters accept F32 or BF16.
 * - Accumulation is fp32 everywhere; bf16 outputs round to nearest even.
 * - "accumulate" = 0 overwrites the output, 1 adds to what is there.
 */
#ifndef LORAC_H
#define LORAC_H

#include <stddef.h>
#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

#if defined(_WIN32)
#define LORAC_API __declspec(dllexport)
#else
#define LORAC_API __attribute__((visibility("default")))
#endif

#define LORAC_ABI_VERSION 2

enum lorac_dtype {
  LORAC_F32 = 0,
  LORAC_BF16 = 1,
  LORAC_NF4 = 2, /* two 4-bit codes per byte, first element in the high nibble */
  LORAC_U8 = 3,
  LORAC_I32 = 4,
};

enum lorac_status {
  LORAC_OK = 0,
  LORAC_ERR_ARGUMENT = 1, /* a bad size, dtype or null pointer */
  LORAC_ERR_MEMORY = 2,   /* an allocation failed */
  LORAC_ERR_DEVICE = 3,   /* the GPU, its driver or the runtime failed */
  LORAC_ERR_LIBRARY = 4,  /* no usable device for this build */
};

typedef struct lorac_ctx lorac_ctx;

/* ---- library, context, memory ------------------------------------------ */

/* The ABI version this library was built with (LORAC_ABI_VERSION). */
LORAC_API int lorac_abi_version(void);
/* Number of usable devices: 1 for the CPU build; for CUDA, a failure says
 * whether the driver or the device is missing. */
LORAC_API int lorac_device_count(int32_t *count_out);
/* Creates a context on device `device_index` (ignored by the CPU build).
 * `num_threads` <= 0 means all cores (CPU build only). */
LORAC_API int lorac_ctx_create(int32_t device_index, int32_t num_threads, lorac_ctx **ctx_out);
LORAC_API int lorac_ctx_destroy(lorac_ctx *ctx);
/* The message of the last failure on ctx (or of the last context-less failure
 * when ctx is NULL). Never NULL; "" when there was none. */
LORAC_API const char *lorac_last_error(lorac_ctx *ctx);
/* A one-line description of the device and the kernel path in use
 * (e.g. "cpu: AMD EPYC, 2 threads, avx2"). */
LORAC_API int lorac_device_name(lorac_ctx *ctx, char *buf, int32_t buf_len);
/* The dtype the NF4 GEMMs multiply in: LORAC_F32 (the CPU default) or
 * LORAC_BF16: both operands rounded to bf16 as bitsandbytes' bf16 compute
 * does, f32 sums, on AMX tiles or AVX512-BF16 where the CPU has either (f32
 * as by default on CPUs without). The GPU build multiplies in bf16 only and
 * refuses LORAC_F32. */
LORAC_API int lorac_set_compute_dtype(lorac_ctx *ctx, int32_t dtype);
/* Count of live allocations made through lorac_alloc on this context. */
LORAC_API int lorac_live_allocations(lorac_ctx *ctx, int64_t *count_out);

LORAC_API int lorac_alloc(lorac_ctx *ctx, int64_t bytes, void **ptr_out);
LORAC_API int lorac_free(lorac_ctx *ctx, void *ptr);
LORAC_API int lorac_memset(lorac_ctx *ctx, void *ptr, int32_t byte_value, int64_t bytes);
/* Host -> device, device -> host, device -> device. */
LORAC_API int lorac_copy_h2d(lorac_ctx *ctx, void *dst, const void *src, int64_t bytes);
LORAC_API int lorac_copy_d2h(lorac_ctx *ctx, void *dst, const void *src, int64_t bytes);
LORAC_API int lorac_copy_d2d(lorac_ctx *ctx, void *dst, const void *src, int64_t bytes);
/* Waits until all work queued on the context is done (no-op on the CPU). */
LORAC_API int lorac_sync(lorac_ctx *ctx);
/* Converts n elements between F32 and BF16 on the device (any direction). */
LORAC_API int lorac_convert(lorac_ctx *ctx, const void *src, int32_t src_dtype, void *dst,
                            int32_t dst_dtype, int64_t n);

/* ---- NF4 (bitsandbytes' format) ----------------------------------------- */

/* Quantizes n elements of w (F32 or BF16, the row-major [out, in] weight) in
 * blocks of `blocksize` (a power of two, 64..4096) to packed (ceil(n/2) bytes)
 * and absmax (ceil(n/blocksize) floats). */
LORAC_API int lorac_nf4_quantize(lorac_ctx *ctx, const void *w, int32_t w_dtype, int64_t n,
                                 int32_t blocksize, uint8_t *packed, float *absmax);
/* Dequantizes to out (F32 or BF16). */
LORAC_API int lorac_nf4_dequantize(lorac_ctx *ctx, const uint8_t *packed, const float *absmax,
                                   int64_t n, int32_t blocksize, void *out, int32_t out_dtype);
/* Double quantization of the absmax, as bitsandbytes' compress_statistics:
 * offset = mean(absmax); (absmax - offset) quantized blockwise to 8 bits with
 * the signed dynamic map in blocks of 256: qabsmax (nblocks bytes), absmax2
 * (ceil(nblocks/256) floats) and offset (one float, device memory). */
LORAC_API int lorac_nf4_double_quantize(lorac_ctx *ctx, const float *absmax, int64_t nblocks,
                                        uint8_t *qabsmax, float *absmax2, float *offset);
/* The inverse: absmax_out[i] = dynamic_map[qabsmax[i]] * absmax2[i/256] + offset. */
LORAC_API int lorac_nf4_double_dequantize(lorac_ctx *ctx, const uint8_t *qabsmax,
                                          const float *absmax2, const float *offset,
                                          int64_t nblocks, float *absmax_out);

/* ---- GEMM ---------------------------------------------------------------- */

/* Y[M,N] (+)= X[M,K] . W^T with W NF4 [N,K] (packed, absmax, blocksize).
 * K must be even; N*K must be a multiple of blocksize. */
LORAC_API int lorac_nf4_gemm(lorac_ctx *ctx, int32_t M, int32_t N, int32_t K, const void *X,
                             int32_t x_dtype, const uint8_t *W, const float *absmax,
                             int32_t blocksize, void *Y, int32_t y_dtype, int32_t accumulate);
/* The input gradient dX[M,K] (+)= dY[M,N] . W with W NF4 [N,K]. */
LORAC_API int lorac_nf4_gemm_dx(lorac_ctx *ctx, int32_t M, int32_t N, int32_t K, const void *dY,
                                int32_t dy_dtype, const uint8_t *W, const float *absmax,
                                int32_t blocksize, void *dX, int32_t dx_dtype,
                                int32_t accumulate);
/* Dense C[M,N] = alpha * op(A) . op(B) + beta * C, op(A) [M,K], op(B) [K,N];
 * trans_a / trans_b = 1 means A is stored [K,M] / B is stored [N,K].
 * Each operand F32 or BF16, with its leading dimension (row stride). */
LORAC_API int lorac_gemm(lorac_ctx *ctx, int32_t trans_a, int32_t trans_b, int32_t M, int32_t N,
                         int32_t K, float alpha, const void *A, int32_t a_dtype, int32_t lda,
                         const void *B, int32_t b_dtype, int32_t ldb, float beta, void *C,
                         int32_t c_dtype, int32_t ldc);

/* ---- LoRA (PEFT semantics) ---------------------------------------------- */

/* Y[M,N] += scale * (drop(X) . A^T) . B^T with A [r,K], B [N,r] in F32.
 * drop(X) zeroes X[i] (i = row * K + col) when lorac_dropout_keep(seed, i,
 * lorac_dropout_threshold(p)) is 0 and scales
 * the rest by 1/(1-p); p = 0 disables dropout. XA [M,r] (F32) receives
 * drop(X) . A^T, kept for the backward. */
LORAC_API int lorac_lora_forward(lorac_ctx *ctx, int32_t M, int32_t N, int32_t K, int32_t r,
                                 const void *X, int32_t x_dtype, const float *A, const float *B,
                                 float scale, float dropout_p, uint64_t seed, float *XA, void *Y,
                                 int32_t y_dtype);
/* From dY [M,N]: dB [N,r] += scale * dY^T . XA; dA [r,K] += (scale * dY . B)^T . drop(X);
 * and, when dX is not NULL, dX [M,K] += mask/(1-p) * ((scale * dY . B) . A). */
LORAC_API int lorac_lora_backward(lorac_ctx *ctx, int32_t M, int32_t N, int32_t K, int32_t r,
                                  const void *X, int32_t x_dtype, const float *A, const float *B,
                                  float scale, float dropout_p, uint64_t seed, const float *XA,
                                  const void *dY, int32_t dy_dtype, float *dA, float *dB,
                                  void *dX, int32_t dx_dtype);

/* ---- optimiser ------------------------------------------------------------ */

/* norm_out[0] = sqrt(sum of grads[i]^2) over n floats (device memory). */
LORAC_API int lorac_global_norm(lorac_ctx *ctx, const float *grads, int64_t n, float *norm_out);
/* One torch.optim.AdamW step over state = [params | grads | m | v] (4n floats).
 * step is 1-based. When max_norm > 0 the gradients are first scaled by
 * min(1, max_norm / (norm[0] + 1e-6)), norm being lorac_global_norm's output. */
LORAC_API int lorac_adamw_step(lorac_ctx *ctx, float *state, int64_t n, float lr, float beta1,
                               float beta2, float eps, float weight_decay, int32_t step,
                               const float *norm, float max_norm);

/* ---- transformer ops (issue 3) ------------------------------------------- */
/*
 * Packed batches. A batch holds num_seqs sequences of unequal lengths laid end
 * to end, T tokens in all, with no padding. cu_seqlens (int32, device memory,
 * num_seqs + 1 entries) holds the offsets: sequence s is tokens
 * cu_seqlens[s] .. cu_seqlens[s+1] - 1, cu_seqlens[0] = 0 and
 * cu_seqlens[num_seqs] = T. max_seqlen is the longest sequence (so the CUDA
 * build can size its grid without reading cu_seqlens back). positions (int32
 * [T]) restart at 0 for every sequence. Attention never crosses a boundary.
 *
 * Layouts. Activations are row-major [T, features]. q is [T, n_heads, head_dim]
 * (the q_proj output as it comes out: heads contiguous within a token's row),
 * k and v are [T, n_kv_heads, head_dim], and the attention output is
 * [T, n_heads, head_dim] (the o_proj input). Query head h reads kv head
 * h / (n_heads / n_kv_heads), as HF's repeat_kv. head_dim is even, 8..128.
 * The log-sum-exp of the attention forward is F32 [n_heads, T] (natural log).
 *
 * "dtype" parameters of these ops accept F32 or BF16 and apply to every
 * activation pointer of the call that has no dtype of its own. Math is fp32.
 */

/* out[i, :] = table[ids[i], :] for i < n, table [vocab, dim] (frozen: no
 * backward). ids must lie in [0, vocab): the CPU build returns
 * LORAC_ERR_ARGUMENT otherwise; the CUDA build cannot report it without a
 * sync and fills that row with NaN. */
LORAC_API int lorac_embedding(lorac_ctx *ctx, int32_t n, const int32_t *ids, const void *table,
                              int32_t table_dtype, int32_t vocab, int32_t dim, void *out,
                              int32_t out_dtype);

/* RMSNorm over the last dimension of x [rows, dim], as LlamaRMSNorm in fp32:
 * rstd[r] = 1 / sqrt(mean(x[r, :]^2) + eps), y[r, :] = x[r, :] * rstd[r] * weight.
 * rstd (F32 [rows]) is kept for the backward; it may be NULL for inference. */
LORAC_API int lorac_rmsnorm_forward(lorac_ctx *ctx, int32_t rows, int32_t dim, const void *x,
                                    int32_t x_dtype, const void *weight, int32_t w_dtype,
                                    float eps, void *y, int32_t y_dtype, float *rstd);
/* The input gradient (the weight is frozen), from the forward's rstd:
 * dx (+)= rstd * (weight * dy) - rstd^3 / dim * x * sum(weight * dy * x).
 * accumulate = 1 adds into dx (the residual stream's gradient). */
LORAC_API int lorac_rmsnorm_backward(lorac_ctx *ctx, int32_t rows, int32_t dim, const void *x,
                                     int32_t x_dtype, const void *weight, int32_t w_dtype,
                                     const float *rstd, const void *dy, int32_t dy_dtype, void *dx,
                                     int32_t dx_dtype, int32_t accumulate);

/* RoPE with HF's rotate_half pairing on x [T, n_heads, head_dim]: with
 * half = head_dim / 2 and, for i < half, the angle a = (float)positions[t] *
 * inv_freq[i] rounded to fp32 (as LlamaRotaryEmbedding computes it), and its
 * cos and sin to fp32 accuracy (angles reach 1e5 radians: no fast intrinsics):
 *   y[i] = x[i] cos a - x[i + half] sin a,  y[i + half] = x[i + half] cos a + x[i] sin a.
 * inv_freq (F32 [half]) comes from the model config (lib/backend/rope_freqs.ts).
 * y may be x (in place). */
LORAC_API int lorac_rope_forward(lorac_ctx *ctx, int32_t T, int32_t n_heads, int32_t head_dim,
                                 const int32_t *positions, const float *inv_freq, const void *x,
                                 void *y, int32_t dtype);
/* The gradient of lorac_rope_forward: the inverse rotation (angle -a) of dy.
 * dx may be dy (in place). */
LORAC_API int lorac_rope_backward(lorac_ctx *ctx, int32_t T, int32_t n_heads, int32_t head_dim,
                                  const int32_t *positions, const float *inv_freq, const void *dy,
                                  void *dx, int32_t dtype);

/* Causal attention with grouped-query heads over a packed batch:
 * out[t, h] = sum over keys u of t's sequence with u <= t of
 * softmax_u(scale * q[t, h] . k[u, g]) v[u, g], g = h / (n_heads / n_kv_heads).
 * lse (F32 [n_heads, T]) receives the log-sum-exp of the scaled scores of
 * each row, kept for the backward; it may be NULL for inference. */
LORAC_API int lorac_attention_forward(lorac_ctx *ctx, int32_t num_seqs, const int32_t *cu_seqlens,
                                      int32_t max_seqlen, int32_t T, int32_t n_heads,
                                      int32_t n_kv_heads, int32_t head_dim, float scale,
                                      const void *q, const void *k, const void *v, int32_t dtype,
                                      void *out, float *lse);
/* Bytes of device scratch lorac_attention_backward needs for these sizes
 * (each build answers for itself; 0 is a valid answer). */
LORAC_API int lorac_attention_backward_workspace(lorac_ctx *ctx, int32_t num_seqs,
                                                 int32_t max_seqlen, int32_t T, int32_t n_heads,
                                                 int32_t n_kv_heads, int32_t head_dim,
                                                 int64_t *bytes_out);
/* The gradients of lorac_attention_forward from dout (the layout of out),
 * recomputing the probabilities from q, k and lse (flash-attention style):
 * dq [T, n_heads, head_dim], dk and dv [T, n_kv_heads, head_dim] are
 * overwritten; the query heads of a group sum into their shared kv head.
 * workspace holds at least lorac_attention_backward_workspace's bytes. */
LORAC_API int lorac_attention_backward(lorac_ctx *ctx, int32_t num_seqs, const int32_t *cu_seqlens,
                                       int32_t max_seqlen, int32_t T, int32_t n_heads,
                                       int32_t n_kv_heads, int32_t head_dim, float scale,
                                       const void *q, const void *k, const void *v,
                                       const void *out, const void *dout, int32_t dtype,
                                       const float *lse, void *dq, void *dk, void *dv,
                                       void *workspace, int64_t workspace_bytes);

/* SwiGLU on n elements: out = silu(gate) * up, silu(g) = g / (1 + exp(-g)). */
LORAC_API int lorac_swiglu_forward(lorac_ctx *ctx, int64_t n, const void *gate, const void *up,
                                   void *out, int32_t dtype);
/* Its gradients: dgate = dout * up * s * (1 + gate * (1 - s)), s = sigmoid(gate);
 * dup = dout * silu(gate). dgate may be gate and dup may be up (in place). */
LORAC_API int lorac_swiglu_backward(lorac_ctx *ctx, int64_t n, const void *gate, const void *up,
                                    const void *dout, void *dgate, void *dup, int32_t dtype);

/* y = alpha * a + beta * b over n elements (the residual add, a scale, a
 * gradient sum). b may be NULL when beta = 0; y may be a or b. */
LORAC_API int lorac_add_scaled(lorac_ctx *ctx, int64_t n, float alpha, const void *a,
                               int32_t a_dtype, float beta, const void *b, int32_t b_dtype,
                               void *y, int32_t y_dtype);

/* Fused lm_head + cross-entropy on selected rows only. H is [T, D], W (the
 * output or tied embedding matrix) is [V, D]; for k < n_rows,
 * z = H[rows[k], :] . W^T and loss_k = logsumexp(z) - z[targets[k]].
 * loss_sum[0] (F32, device memory) = sum of loss_k; row_loss (F32 [n_rows])
 * receives each loss_k unless NULL (-loss_k is the log-probability of the
 * target: label scoring). When dH is not NULL its rows rows[k] receive
 * (accumulate = 1: are added) grad_scale * (softmax(z) - onehot(targets[k])) . W;
 * no other row of dH is touched, and rows must then be distinct. Computed in
 * chunks of V with an online log-sum-exp: the [n_rows, V] logits never exist.
 * rows must lie in [0, T) and targets in [0, V) (checked by the CPU build). */
LORAC_API int lorac_linear_cross_entropy(lorac_ctx *ctx, int32_t n_rows, const int32_t *rows,
                                         const int32_t *targets, int32_t T, int32_t D, int32_t V,
                                         const void *H, int32_t h_dtype, const void *W,
                                         int32_t w_dtype, float grad_scale, float *loss_sum,
                                         float *row_loss, void *dH, int32_t dh_dtype,
                                         int32_t accumulate);
/* The logits of selected rows for inference: logits[k, :] = H[rows[k], :] . W^T,
 * F32 [n_rows, V]. */
LORAC_API int lorac_linear_logits(lorac_ctx *ctx, int32_t n_rows, const int32_t *rows, int32_t T,
                                  int32_t D, int32_t V, const void *H, int32_t h_dtype,
                                  const void *W, int32_t w_dtype, float *logits);

/* KV cache of one layer: k_cache and v_cache are [max_seqs, n_kv_heads,
 * max_len, head_dim] in cache_dtype; slot s holds sequence s of the batch.
 * Appends the packed new tokens k, v [T, n_kv_heads, head_dim] (a prompt or
 * one token per sequence) of sequence s at cache positions cache_lens[s] ..
 * cache_lens[s] + n_s - 1 (n_s = cu_seqlens[s+1] - cu_seqlens[s]);
 * cache_lens (int32 [num_seqs], device memory) is the length before the
 * append, and the caller advances it. cache_lens[s] + n_s must not exceed
 * max_len (checked by the CPU build; the CUDA build drops what lies past it). */
LORAC_API int lorac_kv_cache_append(lorac_ctx *ctx, int32_t num_seqs, const int32_t *cu_seqlens,
                                    int32_t T, const int32_t *cache_lens, int32_t max_len,
                                    int32_t n_kv_heads, int32_t head_dim, const void *k,
                                    const void *v, int32_t dtype, void *k_cache, void *v_cache,
                                    int32_t cache_dtype);
/* Decode attention: one new query per sequence, q [num_seqs, n_heads,
 * head_dim], over the first cache_lens[s] >= 1 cached positions of slot s
 * (the new token's k and v already appended); out has the layout of q.
 * No mask is needed: every cached position precedes the query. */
LORAC_API int lorac_decode_attention(lorac_ctx *ctx, int32_t num_seqs, const int32_t *cache_lens,
                                     int32_t max_len, int32_t n_heads, int32_t n_kv_heads,
                                     int32_t head_dim, float scale, const void *q,
                                     const void *k_cache, const void *v_cache,
                                     int32_t cache_dtype, void *out, int32_t dtype);

#ifdef __cplusplus
}
#endif

/* The dropout mask: a counter-based hash, so the backward recomputes the
 * forward's mask and the CPU and GPU builds agree bit for bit. */
#if defined(__CUDACC__)
#define LORAC_HD __host__ __device__ __forceinline__
#else
#define LORAC_HD static inline
#endif
LORAC_HD uint32_t lorac_hash(uint64_t seed, uint64_t i) {
  uint64_t z = seed + 0x9E3779B97F4A7C15ull * (i + 1);
  z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ull;
  z = (z ^ (z >> 27)) * 0x94D049BB133111EBull;
  z ^= z >> 31;
  return (uint32_t)(z >> 32);
}
/* The hash value below which an element is dropped: p * 2^32. */
LORAC_HD uint64_t lorac_dropout_threshold(float p) {
  return (uint64_t)((double)p * 4294967296.0);
}
/* 1 when element i is kept (its hash is at or above the threshold). */
LORAC_HD int lorac_dropout_keep(uint64_t seed, uint64_t i, uint64_t threshold) {
  return (uint64_t)lorac_hash(seed, i) >= threshold;
}

#endif /* LORAC_H */
