// Embedding gather: out[i, :] = table[ids[i], :] (the table is frozen, so
// there is no backward). ids live in device memory and are not checked on the
// host: a row whose id is outside [0, vocab) is filled with NaN instead.
#include <algorithm>

#include "common.cuh"

namespace {

__global__ void embedding_kernel(int n, const int32_t *ids, const void *table, int table_dtype, int vocab, int dim,
                                 void *out, int out_dtype) {
  for (int i = blockIdx.x; i < n; i += gridDim.x) {
    const int id = ids[i];
    const bool known = id >= 0 && id < vocab;
    for (int c = threadIdx.x; c < dim; c += blockDim.x) {
      const float v = known ? load_f32(table, table_dtype, (int64_t)id * dim + c) : __int_as_float(0x7fc00000);
      store_f32(out, out_dtype, (int64_t)i * dim + c, v);
    }
  }
}

}  // namespace

extern "C" int lorac_embedding(lorac_ctx *ctx, int32_t n, const int32_t *ids, const void *table, int32_t table_dtype,
                               int32_t vocab, int32_t dim, void *out, int32_t out_dtype) {
  const char *fn = "lorac_embedding";
  ENTER(ctx);
  LORAC_REQUIRE(ctx, n >= 0 && vocab >= 1 && dim >= 1, "%s: bad sizes n = %d, vocab = %d, dim = %d", fn, n, vocab,
                dim);
  LORAC_REQUIRE(ctx, is_float_dtype(table_dtype) && is_float_dtype(out_dtype),
                "%s: table and out dtypes must be F32 or BF16 (got %d, %d)", fn, table_dtype, out_dtype);
  LORAC_REQUIRE(ctx, (ids && table && out) || n == 0, "%s: ids, table and out must not be NULL", fn);
  if (n == 0) return LORAC_OK;
  embedding_kernel<<<(unsigned)std::min(n, 65535), 128, 0, ctx->stream>>>(n, ids, table, table_dtype, vocab, dim, out,
                                                                         out_dtype);
  LAUNCH_CHECK(ctx, embedding_kernel);
  return LORAC_OK;
}
