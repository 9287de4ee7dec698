// The GPU GEMMs: the NF4 GEMM Y = X·Wᵀ and its input gradient dX = dY·W
// (NF4 dequantized inside the tensor-core kernel, gemm_tc.cuh), and the dense
// GEMM: bf16 tensor cores when an operand is BF16, fp32 CUDA cores
// (gemm_simt.cuh) when both are F32. The CPU build (cuda/cpu/gemm.cpp) is the
// reference that `deno task gpu-check` compares against.
#include <algorithm>

#include "gemm_simt.cuh"
#include "gemm_tc.cuh"

namespace {

bool valid_blocksize(int blocksize) { return blocksize >= 64 && blocksize <= 4096 && (blocksize & (blocksize - 1)) == 0; }

int log2_of(int x) { return 31 - __builtin_clz((unsigned)x); }

// The checks both NF4 GEMMs share (the CPU build's, message for message);
// `in` / `out` are the dense operands, out has out_cols columns.
int check_nf4(lorac_ctx *ctx, const char *fn, int M, int N, int K, const void *in, int in_dtype, const uint8_t *W,
              const float *absmax, int blocksize, const void *out, int out_dtype, int out_cols) {
  LORAC_REQUIRE(ctx, M >= 0 && N >= 0 && K >= 0, "%s: sizes must be >= 0, got M=%d N=%d K=%d", fn, M, N, K);
  LORAC_REQUIRE(ctx, K % 2 == 0, "%s: K=%d must be even (NF4 packs two codes per byte along a row of W)", fn, K);
  LORAC_REQUIRE(ctx, valid_blocksize(blocksize), "%s: blocksize must be a power of two from 64 to 4096, got %d", fn,
                blocksize);
  LORAC_REQUIRE(ctx, (int64_t)N * K % blocksize == 0,
                "%s: N*K=%lld is not a multiple of blocksize %d: quantize W with a blocksize that divides it", fn,
                (long long)N * K, blocksize);
  LORAC_REQUIRE(ctx, is_float_dtype(in_dtype), "%s: the input dtype must be F32 (%d) or BF16 (%d), got %d", fn,
                LORAC_F32, LORAC_BF16, in_dtype);
  LORAC_REQUIRE(ctx, is_float_dtype(out_dtype), "%s: the output dtype must be F32 (%d) or BF16 (%d), got %d", fn,
                LORAC_F32, LORAC_BF16, out_dtype);
  LORAC_REQUIRE(ctx, (in && W && absmax) || (int64_t)M * N * K == 0, "%s: an input pointer is NULL", fn);
  LORAC_REQUIRE(ctx, out || (int64_t)M * out_cols == 0, "%s: the output pointer is NULL", fn);
  return LORAC_OK;
}

int check_dtype(lorac_ctx *ctx, const char *fn, const char *what, int dtype) {
  LORAC_REQUIRE(ctx, is_float_dtype(dtype), "%s: %s must be F32 (%d) or BF16 (%d), got %d", fn, what, LORAC_F32,
                LORAC_BF16, dtype);
  return LORAC_OK;
}

}  // namespace

extern "C" {

int lorac_nf4_gemm(lorac_ctx *ctx, int32_t M, int32_t N, int32_t K, const void *X, int32_t x_dtype, const uint8_t *W,
                   const float *absmax, int32_t blocksize, void *Y, int32_t y_dtype, int32_t accumulate) {
  ENTER(ctx);
  int status = check_nf4(ctx, "lorac_nf4_gemm", M, N, K, X, x_dtype, W, absmax, blocksize, Y, y_dtype, N);
  if (status != LORAC_OK || M == 0 || N == 0) return status;
  // Y[M,N] = X[M,K] . W^T: W [N,K] is op(B) stored k-contiguous.
  CUDA_CHECK(ctx,
             (tc::launch<true, true>(ctx->stream, ctx->sm_count, M, N, K, tc::dense(X, x_dtype, K, M, K),
                                     tc::nf4(W, absmax, log2_of(blocksize), N, K),
                                     plain_epilogue(Y, y_dtype, N, 1.0f, accumulate ? 1.0f : 0.0f))),
             "launching the NF4 GEMM kernel");
  return LORAC_OK;
}

int lorac_nf4_gemm_dx(lorac_ctx *ctx, int32_t M, int32_t N, int32_t K, const void *dY, int32_t dy_dtype,
                      const uint8_t *W, const float *absmax, int32_t blocksize, void *dX, int32_t dx_dtype,
                      int32_t accumulate) {
  ENTER(ctx);
  int status = check_nf4(ctx, "lorac_nf4_gemm_dx", M, N, K, dY, dy_dtype, W, absmax, blocksize, dX, dx_dtype, K);
  if (status != LORAC_OK || M == 0 || K == 0) return status;
  // dX[M,K] = dY[M,N] . W: a GEMM over N, with W [N,K] as op(B) stored [inner][outer].
  CUDA_CHECK(ctx,
             (tc::launch<true, false>(ctx->stream, ctx->sm_count, M, K, N, tc::dense(dY, dy_dtype, N, M, N),
                                      tc::nf4(W, absmax, log2_of(blocksize), N, K),
                                      plain_epilogue(dX, dx_dtype, K, 1.0f, accumulate ? 1.0f : 0.0f))),
             "launching the NF4 GEMM kernel");
  return LORAC_OK;
}

int lorac_gemm(lorac_ctx *ctx, int32_t trans_a, int32_t trans_b, int32_t M, int32_t N, int32_t K, float alpha,
               const void *A, int32_t a_dtype, int32_t lda, const void *B, int32_t b_dtype, int32_t ldb, float beta,
               void *C, int32_t c_dtype, int32_t ldc) {
  ENTER(ctx);
  const char *fn = "lorac_gemm";
  LORAC_REQUIRE(ctx, M >= 0 && N >= 0 && K >= 0, "%s: sizes must be >= 0, got M=%d N=%d K=%d", fn, M, N, K);
  if (int st = check_dtype(ctx, fn, "a_dtype", a_dtype)) return st;
  if (int st = check_dtype(ctx, fn, "b_dtype", b_dtype)) return st;
  if (int st = check_dtype(ctx, fn, "c_dtype", c_dtype)) return st;
  // Stored shapes: A [M,K] or [K,M] when trans_a; B [K,N] or [N,K] when trans_b.
  const int a_rows = trans_a ? K : M, a_cols = trans_a ? M : K;
  const int b_rows = trans_b ? N : K, b_cols = trans_b ? K : N;
  LORAC_REQUIRE(ctx, lda >= std::max(1, a_cols), "%s: lda=%d is less than the %d columns of A as stored%s", fn, lda,
                a_cols, trans_a ? " (trans_a: A is [K, M])" : "");
  LORAC_REQUIRE(ctx, ldb >= std::max(1, b_cols), "%s: ldb=%d is less than the %d columns of B as stored%s", fn, ldb,
                b_cols, trans_b ? " (trans_b: B is [N, K])" : "");
  LORAC_REQUIRE(ctx, ldc >= std::max(1, N), "%s: ldc=%d is less than N=%d", fn, ldc, N);
  LORAC_REQUIRE(ctx, (A && B) || (int64_t)M * N * K == 0, "%s: A or B is NULL", fn);
  LORAC_REQUIRE(ctx, C || (int64_t)M * N == 0, "%s: C is NULL", fn);
  if (M == 0 || N == 0) return LORAC_OK;
  const Epilogue epi = plain_epilogue(C, c_dtype, ldc, alpha, beta);
  if (a_dtype == LORAC_F32 && b_dtype == LORAC_F32) {
    CUDA_CHECK(ctx,
               simt::gemm(ctx, M, N, K, simt::dense(A, a_dtype, lda, trans_a),
                          simt::dense(B, b_dtype, ldb, trans_b), epi),
               "launching the fp32 GEMM kernel");
    return LORAC_OK;
  }
  const tc::Operand a = tc::dense(A, a_dtype, lda, a_rows, a_cols);
  const tc::Operand b = tc::dense(B, b_dtype, ldb, b_rows, b_cols);
  // op(A) is k-contiguous unless transposed; op(B) is k-contiguous when transposed.
  cudaError_t err;
  if (!trans_a && trans_b)
    err = tc::launch<true, true>(ctx->stream, ctx->sm_count, M, N, K, a, b, epi);
  else if (!trans_a)
    err = tc::launch<true, false>(ctx->stream, ctx->sm_count, M, N, K, a, b, epi);
  else if (trans_b)
    err = tc::launch<false, true>(ctx->stream, ctx->sm_count, M, N, K, a, b, epi);
  else
    err = tc::launch<false, false>(ctx->stream, ctx->sm_count, M, N, K, a, b, epi);
  CUDA_CHECK(ctx, err, "launching the bf16 tensor-core GEMM kernel");
  return LORAC_OK;
}

}  // extern "C"
