// Placeholder until the kernels of this file land.
#include "common.h"
extern "C" {
int lorac_nf4_quantize(lorac_ctx *ctx, const void *w, int32_t w_dtype, int64_t n, int32_t blocksize, uint8_t *packed, float *absmax) { return lorac_fail(ctx, LORAC_ERR_LIBRARY, "lorac_nf4_quantize: not implemented"); }
int lorac_nf4_dequantize(lorac_ctx *ctx, const uint8_t *packed, const float *absmax, int64_t n, int32_t blocksize, void *out, int32_t out_dtype) { return lorac_fail(ctx, LORAC_ERR_LIBRARY, "lorac_nf4_dequantize: not implemented"); }
int lorac_nf4_double_quantize(lorac_ctx *ctx, const float *absmax, int64_t nblocks, uint8_t *qabsmax, float *absmax2, float *offset) { return lorac_fail(ctx, LORAC_ERR_LIBRARY, "lorac_nf4_double_quantize: not implemented"); }
int lorac_nf4_double_dequantize(lorac_ctx *ctx, const uint8_t *qabsmax, const float *absmax2, const float *offset, int64_t nblocks, float *absmax_out) { return lorac_fail(ctx, LORAC_ERR_LIBRARY, "lorac_nf4_double_dequantize: not implemented"); }
}
