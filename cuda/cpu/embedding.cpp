// Embedding gather: out[i, :] = table[ids[i], :] (the table is frozen, so
// there is no backward).
#include "common.h"
#include "row_io.h"

#include <vector>

namespace {

int embedding(lorac_ctx *ctx, int32_t n, const int32_t *ids, const void *table, int32_t table_dtype, int32_t vocab,
              int32_t dim, void *out, int32_t out_dtype) {
  const char *fn = "lorac_embedding";
  LORAC_REQUIRE(ctx, n >= 0 && vocab >= 1 && dim >= 1, "%s: bad sizes n = %d, vocab = %d, dim = %d", fn, n, vocab,
                dim);
  LORAC_REQUIRE(ctx, is_float_dtype(table_dtype) && is_float_dtype(out_dtype),
                "%s: table and out dtypes must be F32 or BF16 (got %d, %d)", fn, table_dtype, out_dtype);
  LORAC_REQUIRE(ctx, (ids && table && out) || n == 0, "%s: ids, table and out must not be NULL", fn);
  for (int32_t i = 0; i < n; i++)
    LORAC_REQUIRE(ctx, ids[i] >= 0 && ids[i] < vocab, "%s: ids[%d] = %d is outside the vocabulary [0, %d)", fn, i,
                  ids[i], vocab);
#pragma omp parallel num_threads(ctx_threads(ctx))
  {
    std::vector<float> row(dim);
#pragma omp for schedule(static)
    for (int32_t i = 0; i < n; i++) {
      load_row(table, table_dtype, (int64_t)ids[i] * dim, dim, row.data());
      store_row(out, out_dtype, (int64_t)i * dim, dim, row.data());
    }
  }
  return LORAC_OK;
}

}  // namespace

extern "C" int lorac_embedding(lorac_ctx *ctx, int32_t n, const int32_t *ids, const void *table, int32_t table_dtype,
                               int32_t vocab, int32_t dim, void *out, int32_t out_dtype) {
  LORAC_TRY(ctx, return embedding(ctx, n, ids, table, table_dtype, vocab, dim, out, out_dtype);)
}
