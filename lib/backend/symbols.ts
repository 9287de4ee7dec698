/**
 * The FFI symbol table of the native kernel library, declared once for both
 * builds (libcpukernels and libcudakernels export exactly these symbols).
 * Each entry carries its C prototype from cuda/lorac.h. `i64` / `u64`
 * parameters take a bigint.
 *
 * @module
 */

/** Every symbol of cuda/lorac.h with its Deno FFI signature. */
export const symbols = {
  /** int lorac_abi_version(void); */
  lorac_abi_version: { parameters: [], result: "i32" },
  /** int lorac_device_count(int32_t *count_out); */
  lorac_device_count: { parameters: ["buffer"], result: "i32" },
  /** int lorac_ctx_create(int32_t device_index, int32_t num_threads, lorac_ctx **ctx_out); */
  lorac_ctx_create: { parameters: ["i32", "i32", "buffer"], result: "i32" },
  /** int lorac_ctx_destroy(lorac_ctx *ctx); */
  lorac_ctx_destroy: { parameters: ["pointer"], result: "i32" },
  /** const char *lorac_last_error(lorac_ctx *ctx); */
  lorac_last_error: { parameters: ["pointer"], result: "pointer" },
  /** int lorac_device_name(lorac_ctx *ctx, char *buf, int32_t buf_len); */
  lorac_device_name: { parameters: ["pointer", "buffer", "i32"], result: "i32" },
  /** int lorac_set_compute_dtype(lorac_ctx *ctx, int32_t dtype); */
  lorac_set_compute_dtype: { parameters: ["pointer", "i32"], result: "i32" },
  /** int lorac_live_allocations(lorac_ctx *ctx, int64_t *count_out); */
  lorac_live_allocations: { parameters: ["pointer", "buffer"], result: "i32" },
  /** int lorac_alloc(lorac_ctx *ctx, int64_t bytes, void **ptr_out); */
  lorac_alloc: { parameters: ["pointer", "i64", "buffer"], result: "i32" },
  /** int lorac_free(lorac_ctx *ctx, void *ptr); */
  lorac_free: { parameters: ["pointer", "pointer"], result: "i32" },
  /** int lorac_memset(lorac_ctx *ctx, void *ptr, int32_t byte_value, int64_t bytes); */
  lorac_memset: { parameters: ["pointer", "pointer", "i32", "i64"], result: "i32" },
  /** int lorac_copy_h2d(lorac_ctx *ctx, void *dst, const void *src, int64_t bytes); */
  lorac_copy_h2d: { parameters: ["pointer", "pointer", "buffer", "i64"], result: "i32" },
  /** int lorac_copy_d2h(lorac_ctx *ctx, void *dst, const void *src, int64_t bytes); */
  lorac_copy_d2h: { parameters: ["pointer", "buffer", "pointer", "i64"], result: "i32" },
  /** int lorac_copy_d2d(lorac_ctx *ctx, void *dst, const void *src, int64_t bytes); */
  lorac_copy_d2d: { parameters: ["pointer", "pointer", "pointer", "i64"], result: "i32" },
  /** int lorac_sync(lorac_ctx *ctx); */
  lorac_sync: { parameters: ["pointer"], result: "i32" },
  /** int lorac_convert(lorac_ctx *ctx, const void *src, int32_t src_dtype, void *dst, int32_t dst_dtype, int64_t n); */
  lorac_convert: {
    parameters: ["pointer", "pointer", "i32", "pointer", "i32", "i64"],
    result: "i32",
  },
  /** int lorac_nf4_quantize(lorac_ctx *ctx, const void *w, int32_t w_dtype, int64_t n, int32_t blocksize, uint8_t *packed, float *absmax); */
  lorac_nf4_quantize: {
    parameters: ["pointer", "pointer", "i32", "i64", "i32", "pointer", "pointer"],
    result: "i32",
  },
  /** int lorac_nf4_dequantize(lorac_ctx *ctx, const uint8_t *packed, const float *absmax, int64_t n, int32_t blocksize, void *out, int32_t out_dtype); */
  lorac_nf4_dequantize: {
    parameters: ["pointer", "pointer", "pointer", "i64", "i32", "pointer", "i32"],
    result: "i32",
  },
  /** int lorac_nf4_double_quantize(lorac_ctx *ctx, const float *absmax, int64_t nblocks, uint8_t *qabsmax, float *absmax2, float *offset); */
  lorac_nf4_double_quantize: {
    parameters: ["pointer", "pointer", "i64", "pointer", "pointer", "pointer"],
    result: "i32",
  },
  /** int lorac_nf4_double_dequantize(lorac_ctx *ctx, const uint8_t *qabsmax, const float *absmax2, const float *offset, int64_t nblocks, float *absmax_out); */
  lorac_nf4_double_dequantize: {
    parameters: ["pointer", "pointer", "pointer", "pointer", "i64", "pointer"],
    result: "i32",
  },
  /** int lorac_nf4_gemm(lorac_ctx *ctx, int32_t M, int32_t N, int32_t K, const void *X, int32_t x_dtype, const uint8_t *W, const float *absmax, int32_t blocksize, void *Y, int32_t y_dtype, int32_t accumulate); */
  lorac_nf4_gemm: {
    parameters: [
      "pointer",
      "i32",
      "i32",
      "i32",
      "pointer",
      "i32",
      "pointer",
      "pointer",
      "i32",
      "pointer",
      "i32",
      "i32",
    ],
    result: "i32",
  },
  /** int lorac_nf4_gemm_dx(lorac_ctx *ctx, int32_t M, int32_t N, int32_t K, const void *dY, int32_t dy_dtype, const uint8_t *W, const float *absmax, int32_t blocksize, void *dX, int32_t dx_dtype, int32_t accumulate); */
  lorac_nf4_gemm_dx: {
    parameters: [
      "pointer",
      "i32",
      "i32",
      "i32",
      "pointer",
      "i32",
      "pointer",
      "pointer",
      "i32",
      "pointer",
      "i32",
      "i32",
    ],
    result: "i32",
  },
  /** int lorac_gemm(lorac_ctx *ctx, int32_t trans_a, int32_t trans_b, int32_t M, int32_t N, int32_t K, float alpha, const void *A, int32_t a_dtype, int32_t lda, const void *B, int32_t b_dtype, int32_t ldb, float beta, void *C, int32_t c_dtype, int32_t ldc); */
  lorac_gemm: {
    parameters: [
      "pointer",
      "i32",
      "i32",
      "i32",
      "i32",
      "i32",
      "f32",
      "pointer",
      "i32",
      "i32",
      "pointer",
      "i32",
      "i32",
      "f32",
      "pointer",
      "i32",
      "i32",
    ],
    result: "i32",
  },
  /** int lorac_lora_forward(lorac_ctx *ctx, int32_t M, int32_t N, int32_t K, int32_t r, const void *X, int32_t x_dtype, const float *A, const float *B, float scale, float dropout_p, uint64_t seed, float *XA, void *Y, int32_t y_dtype); */
  lorac_lora_forward: {
    parameters: [
      "pointer",
      "i32",
      "i32",
      "i32",
      "i32",
      "pointer",
      "i32",
      "pointer",
      "pointer",
      "f32",
      "f32",
      "u64",
      "pointer",
      "pointer",
      "i32",
    ],
    result: "i32",
  },
  /** int lorac_lora_backward(lorac_ctx *ctx, int32_t M, int32_t N, int32_t K, int32_t r, const void *X, int32_t x_dtype, const float *A, const float *B, float scale, float dropout_p, uint64_t seed, const float *XA, const void *dY, int32_t dy_dtype, float *dA, float *dB, void *dX, int32_t dx_dtype); */
  lorac_lora_backward: {
    parameters: [
      "pointer",
      "i32",
      "i32",
      "i32",
      "i32",
      "pointer",
      "i32",
      "pointer",
      "pointer",
      "f32",
      "f32",
      "u64",
      "pointer",
      "pointer",
      "i32",
      "pointer",
      "pointer",
      "pointer",
      "i32",
    ],
    result: "i32",
  },
  /** int lorac_global_norm(lorac_ctx *ctx, const float *grads, int64_t n, float *norm_out); */
  lorac_global_norm: { parameters: ["pointer", "pointer", "i64", "pointer"], result: "i32" },
  /** int lorac_adamw_step(lorac_ctx *ctx, float *state, int64_t n, float lr, float beta1, float beta2, float eps, float weight_decay, int32_t step, const float *norm, float max_norm); */
  lorac_adamw_step: {
    parameters: [
      "pointer",
      "pointer",
      "i64",
      "f32",
      "f32",
      "f32",
      "f32",
      "f32",
      "i32",
      "pointer",
      "f32",
    ],
    result: "i32",
  },
  // ---- transformer ops (issue 3) ----
  /** int lorac_embedding(lorac_ctx *ctx, int32_t n, const int32_t *ids, const void *table, int32_t table_dtype, int32_t vocab, int32_t dim, void *out, int32_t out_dtype); */
  lorac_embedding: {
    parameters: [
      "pointer",
      "i32",
      "pointer",
      "pointer",
      "i32",
      "i32",
      "i32",
      "pointer",
      "i32",
    ],
    result: "i32",
  },
  /** int lorac_rmsnorm_forward(lorac_ctx *ctx, int32_t rows, int32_t dim, const void *x, int32_t x_dtype, const void *weight, int32_t w_dtype, float eps, void *y, int32_t y_dtype, float *rstd); */
  lorac_rmsnorm_forward: {
    parameters: [
      "pointer",
      "i32",
      "i32",
      "pointer",
      "i32",
      "pointer",
      "i32",
      "f32",
      "pointer",
      "i32",
      "pointer",
    ],
    result: "i32",
  },
  /** int lorac_rmsnorm_backward(lorac_ctx *ctx, int32_t rows, int32_t dim, const void *x, int32_t x_dtype, const void *weight, int32_t w_dtype, const float *rstd, const void *dy, int32_t dy_dtype, void *dx, int32_t dx_dtype, int32_t accumulate); */
  lorac_rmsnorm_backward: {
    parameters: [
      "pointer",
      "i32",
      "i32",
      "pointer",
      "i32",
      "pointer",
      "i32",
      "pointer",
      "pointer",
      "i32",
      "pointer",
      "i32",
      "i32",
    ],
    result: "i32",
  },
  /** int lorac_rope_forward(lorac_ctx *ctx, int32_t T, int32_t n_heads, int32_t head_dim, const int32_t *positions, const float *inv_freq, const void *x, void *y, int32_t dtype); */
  lorac_rope_forward: {
    parameters: [
      "pointer",
      "i32",
      "i32",
      "i32",
      "pointer",
      "pointer",
      "pointer",
      "pointer",
      "i32",
    ],
    result: "i32",
  },
  /** int lorac_rope_backward(lorac_ctx *ctx, int32_t T, int32_t n_heads, int32_t head_dim, const int32_t *positions, const float *inv_freq, const void *dy, void *dx, int32_t dtype); */
  lorac_rope_backward: {
    parameters: [
      "pointer",
      "i32",
      "i32",
      "i32",
      "pointer",
      "pointer",
      "pointer",
      "pointer",
      "i32",
    ],
    result: "i32",
  },
  /** int lorac_attention_forward(lorac_ctx *ctx, int32_t num_seqs, const int32_t *cu_seqlens, int32_t max_seqlen, int32_t T, int32_t n_heads, int32_t n_kv_heads, int32_t head_dim, float scale, const void *q, const void *k, const void *v, int32_t dtype, void *out, float *lse); */
  lorac_attention_forward: {
    parameters: [
      "pointer",
      "i32",
      "pointer",
      "i32",
      "i32",
      "i32",
      "i32",
      "i32",
      "f32",
      "pointer",
      "pointer",
      "pointer",
      "i32",
      "pointer",
      "pointer",
    ],
    result: "i32",
  },
  /** int lorac_attention_backward_workspace(lorac_ctx *ctx, int32_t num_seqs, int32_t max_seqlen, int32_t T, int32_t n_heads, int32_t n_kv_heads, int32_t head_dim, int64_t *bytes_out); */
  lorac_attention_backward_workspace: {
    parameters: [
      "pointer",
      "i32",
      "i32",
      "i32",
      "i32",
      "i32",
      "i32",
      "buffer",
    ],
    result: "i32",
  },
  /** int lorac_attention_backward(lorac_ctx *ctx, int32_t num_seqs, const int32_t *cu_seqlens, int32_t max_seqlen, int32_t T, int32_t n_heads, int32_t n_kv_heads, int32_t head_dim, float scale, const void *q, const void *k, const void *v, const void *out, const void *dout, int32_t dtype, const float *lse, void *dq, void *dk, void *dv, void *workspace, int64_t workspace_bytes); */
  lorac_attention_backward: {
    parameters: [
      "pointer",
      "i32",
      "pointer",
      "i32",
      "i32",
      "i32",
      "i32",
      "i32",
      "f32",
      "pointer",
      "pointer",
      "pointer",
      "pointer",
      "pointer",
      "i32",
      "pointer",
      "pointer",
      "pointer",
      "pointer",
      "pointer",
      "i64",
    ],
    result: "i32",
  },
  /** int lorac_swiglu_forward(lorac_ctx *ctx, int64_t n, const void *gate, const void *up, void *out, int32_t dtype); */
  lorac_swiglu_forward: {
    parameters: [
      "pointer",
      "i64",
      "pointer",
      "pointer",
      "pointer",
      "i32",
    ],
    result: "i32",
  },
  /** int lorac_swiglu_backward(lorac_ctx *ctx, int64_t n, const void *gate, const void *up, const void *dout, void *dgate, void *dup, int32_t dtype); */
  lorac_swiglu_backward: {
    parameters: [
      "pointer",
      "i64",
      "pointer",
      "pointer",
      "pointer",
      "pointer",
      "pointer",
      "i32",
    ],
    result: "i32",
  },
  /** int lorac_add_scaled(lorac_ctx *ctx, int64_t n, float alpha, const void *a, int32_t a_dtype, float beta, const void *b, int32_t b_dtype, void *y, int32_t y_dtype); */
  lorac_add_scaled: {
    parameters: [
      "pointer",
      "i64",
      "f32",
      "pointer",
      "i32",
      "f32",
      "pointer",
      "i32",
      "pointer",
      "i32",
    ],
    result: "i32",
  },
  /** int lorac_linear_cross_entropy(lorac_ctx *ctx, int32_t n_rows, const int32_t *rows, const int32_t *targets, int32_t T, int32_t D, int32_t V, const void *H, int32_t h_dtype, const void *W, int32_t w_dtype, float grad_scale, float *loss_sum, float *row_loss, void *dH, int32_t dh_dtype, int32_t accumulate); */
  lorac_linear_cross_entropy: {
    parameters: [
      "pointer",
      "i32",
      "pointer",
      "pointer",
      "i32",
      "i32",
      "i32",
      "pointer",
      "i32",
      "pointer",
      "i32",
      "f32",
      "pointer",
      "pointer",
      "pointer",
      "i32",
      "i32",
    ],
    result: "i32",
  },
  /** int lorac_linear_logits(lorac_ctx *ctx, int32_t n_rows, const int32_t *rows, int32_t T, int32_t D, int32_t V, const void *H, int32_t h_dtype, const void *W, int32_t w_dtype, float *logits); */
  lorac_linear_logits: {
    parameters: [
      "pointer",
      "i32",
      "pointer",
      "i32",
      "i32",
      "i32",
      "pointer",
      "i32",
      "pointer",
      "i32",
      "pointer",
    ],
    result: "i32",
  },
  /** int lorac_kv_cache_append(lorac_ctx *ctx, int32_t num_seqs, const int32_t *cu_seqlens, int32_t T, const int32_t *cache_lens, int32_t max_len, int32_t n_kv_heads, int32_t head_dim, const void *k, const void *v, int32_t dtype, void *k_cache, void *v_cache, int32_t cache_dtype); */
  lorac_kv_cache_append: {
    parameters: [
      "pointer",
      "i32",
      "pointer",
      "i32",
      "pointer",
      "i32",
      "i32",
      "i32",
      "pointer",
      "pointer",
      "i32",
      "pointer",
      "pointer",
      "i32",
    ],
    result: "i32",
  },
  /** int lorac_decode_attention(lorac_ctx *ctx, int32_t num_seqs, const int32_t *cache_lens, int32_t max_len, int32_t n_heads, int32_t n_kv_heads, int32_t head_dim, float scale, const void *q, const void *k_cache, const void *v_cache, int32_t cache_dtype, void *out, int32_t dtype); */
  lorac_decode_attention: {
    parameters: [
      "pointer",
      "i32",
      "pointer",
      "i32",
      "i32",
      "i32",
      "i32",
      "f32",
      "pointer",
      "pointer",
      "pointer",
      "i32",
      "pointer",
      "i32",
    ],
    result: "i32",
  },
} as const satisfies Deno.ForeignLibraryInterface;

/** The library handle type both builds share. */
export type KernelLibrary = Deno.DynamicLibrary<typeof symbols>;
