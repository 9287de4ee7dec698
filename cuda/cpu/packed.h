// Argument checks shared by the ops over packed batches (cu_seqlens offsets,
// see cuda/lorac.h): every entry point validates before it touches memory.
#pragma once

#include "common.h"

// cu_seqlens must start at 0, never decrease, end at T, and hold no
// sequence longer than max_seqlen.
static inline int check_packed(lorac_ctx *ctx, const char *fn, int32_t num_seqs,
                               const int32_t *cu_seqlens, int32_t max_seqlen, int32_t T) {
  LORAC_REQUIRE(ctx, num_seqs >= 1 && T >= 0 && cu_seqlens, "%s: need num_seqs >= 1, T >= 0 and cu_seqlens (got %d, %d)",
                fn, num_seqs, T);
  LORAC_REQUIRE(ctx, cu_seqlens[0] == 0, "%s: cu_seqlens[0] must be 0, got %d", fn, cu_seqlens[0]);
  for (int32_t s = 0; s < num_seqs; s++) {
    const int32_t len = cu_seqlens[s + 1] - cu_seqlens[s];
    LORAC_REQUIRE(ctx, len >= 0 && len <= max_seqlen,
                  "%s: sequence %d has length %d (cu_seqlens %d..%d), outside [0, max_seqlen = %d]", fn, s, len,
                  cu_seqlens[s], cu_seqlens[s + 1], max_seqlen);
  }
  LORAC_REQUIRE(ctx, cu_seqlens[num_seqs] == T, "%s: cu_seqlens[%d] = %d but T = %d: the offsets must end at T", fn,
                num_seqs, cu_seqlens[num_seqs], T);
  return LORAC_OK;
}

// Head counts and size every attention kernel supports.
static inline int check_heads(lorac_ctx *ctx, const char *fn, int32_t n_heads, int32_t n_kv_heads,
                              int32_t head_dim) {
  LORAC_REQUIRE(ctx, n_heads >= 1 && n_kv_heads >= 1 && n_heads % n_kv_heads == 0,
                "%s: n_heads (%d) must be a positive multiple of n_kv_heads (%d)", fn, n_heads, n_kv_heads);
  LORAC_REQUIRE(ctx, head_dim >= 8 && head_dim <= 128 && head_dim % 2 == 0,
                "%s: head_dim must be even and in 8..128, got %d", fn, head_dim);
  return LORAC_OK;
}
