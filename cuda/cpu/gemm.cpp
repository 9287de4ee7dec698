// The CPU GEMMs: the NF4 GEMM Y = X·Wᵀ, its input gradient dX = dY·W, and the
// dense BLAS-like GEMM, all on one GotoBLAS-style driver:
//
//   for each nc-wide column block of C        (per thread: its own tile of C)
//     for each kc-deep slice of the reduction
//       pack B's kc x nc panel: NF4 dequantized / bf16 converted to f32 (or,
//       for bf16 products, rounded to bf16) once, then reused by every row of C
//       for each mc-tall row block: pack A's mc x kc block
//         for each mr x nr tile: micro-kernel (gemm_avx2.cpp, gemm_avx512.cpp,
//         gemm_amx.cpp, or the plain loop below)
//
// Accumulation is fp32; a bf16 C collects its sum in an fp32 workspace and is
// rounded once at the end. Products are of f32 operands, or of operands rounded
// to bf16 when both are bf16 or the context computes in bf16 (AMX or
// AVX512-BF16). The kernel path is picked at run time from the CPU and lowered
// by LORAC_CPU_ISA=portable|avx2|avx512|amx (read on every call, so tests can
// run each path).
#include <omp.h>

#include <algorithm>
#include <cstdlib>
#include <cstring>
#include <memory>
#include <new>
#include <vector>

#include "common.h"
#include "gemm_kernels.h"
#include "nf4_table.h"

extern "C" const char *lorac_cpu_isa(void);

// ---- operands -------------------------------------------------------------

// A GEMM input as element (x, k): x runs along C (rows of op(A), columns of
// op(B)), k along the reduction. Element (x, k) sits at flat index
// x * sx + k * sk; one of the two strides is 1.
struct Operand {
  const void *p;
  int dtype;  // LORAC_F32, LORAC_BF16 or LORAC_NF4
  int64_t sx, sk;
  const float *absmax;  // NF4: the scale of flat index i is absmax[i >> shift]
  int shift;
};

// `count` consecutive elements from flat index i0 as f32: a pointer into an
// f32 operand, else decoded into `out`.
static const float *load_run(const Operand &op, int64_t i0, int64_t count, float *out) {
  if (op.dtype == LORAC_F32) return (const float *)op.p + i0;
  const float *run = out;
  if (op.dtype == LORAC_BF16) {
    const uint16_t *s = (const uint16_t *)op.p + i0;
    for (int64_t t = 0; t < count; t++) out[t] = bf16_to_f32(s[t]);
    return run;
  }
  // NF4: two codes per byte, the even element in the high nibble.
  const uint8_t *w = (const uint8_t *)op.p;
  int64_t i = i0;
  const int64_t end = i0 + count;
  while (i < end) {
    const float s = op.absmax[i >> op.shift];
    const int64_t block_end = std::min(end, ((i >> op.shift) + 1) << op.shift);
    if (i & 1) {  // a run may start on the second code of a byte
      *out++ = kNf4Code[w[i >> 1] & 15] * s;
      i++;
    }
    for (; i + 1 < block_end; i += 2) {
      const uint8_t byte = w[i >> 1];
      *out++ = kNf4Code[byte >> 4] * s;
      *out++ = kNf4Code[byte & 15] * s;
    }
    if (i < block_end) {  // ... and end on the first
      *out++ = kNf4Code[w[i >> 1] >> 4] * s;
      i++;
    }
  }
  return run;
}

// ---- packing --------------------------------------------------------------

static inline int64_t round_up(int64_t v, int64_t to) { return (v + to - 1) / to * to; }

// The k elements one micro-kernel step takes: an element (f32), a pair (bf16
// pairs) or an AMX tile's 32.
static inline int64_t k_step(GemmPacking packing) {
  return packing == kPackF32 ? 1 : packing == kPackAmx ? 32 : 2;
}

// Panel length along k: a whole number of steps, padded with zeros.
static inline int64_t padded_k(GemmPacking packing, int64_t k) { return round_up(k, k_step(packing)); }

// Element (j, k) of a micro-panel of width w; `is_a`: the panel is A's (AMX lays A out by rows).
template <GemmPacking P, bool is_a>
static inline void put(void *panel, int w, int64_t k, int j, float v) {
  if (P == kPackF32)
    ((float *)panel)[k * w + j] = v;
  else if (P == kPackAmx && is_a)
    ((uint16_t *)panel)[((k >> 5) * w + j) * 32 + (k & 31)] = f32_to_bf16(v);
  else
    ((uint16_t *)panel)[((k >> 1) * w + j) * 2 + (k & 1)] = f32_to_bf16(v);
}

// Packs elements (x0..x0+xn, k0..k0+kn) into micro-panels of width w, zero
// padded to w and to the panel length; tmp holds max(kn, w) floats.
template <GemmPacking P, bool is_a>
static void pack(const Operand &op, int64_t x0, int64_t xn, int64_t k0, int64_t kn, int w, void *dst,
                 float *tmp) {
  const int64_t kp = padded_k(P, kn);
  const size_t elem = P == kPackF32 ? sizeof(float) : sizeof(uint16_t);
  for (int64_t s = 0; s < xn; s += w) {
    void *panel = (char *)dst + (size_t)(s / w) * w * kp * elem;
    const int ws = (int)std::min<int64_t>(w, xn - s);
#if defined(__x86_64__)
    if (P == kPackAmx && is_a && op.dtype != LORAC_NF4 && op.sk == 1) {
      const int64_t at = (x0 + s) * op.sx + k0;
      const bool bf16 = op.dtype == LORAC_BF16;
      const void *src = bf16 ? (const void *)((const uint16_t *)op.p + at) : (const float *)op.p + at;
      amx_pack_a(src, bf16, op.sx, ws, kn, kp, (uint16_t *)panel);
      continue;
    }
    if (P == kPackAmx && !is_a && op.dtype == LORAC_NF4 &&
        amx_pack_b_nf4((const uint8_t *)op.p, op.absmax, op.shift, op.sx, op.sk, x0 + s, ws, k0, kn,
                       (uint32_t *)panel))
      continue;
#endif
    if (op.sk == 1) {  // runs along k: one x at a time
      for (int j = 0; j < ws; j++) {
        const float *run = load_run(op, (x0 + s + j) * op.sx + k0, kn, tmp);
        for (int64_t k = 0; k < kn; k++) put<P, is_a>(panel, w, k, j, run[k]);
      }
    } else {  // runs along x: one k at a time
      for (int64_t k = 0; k < kn; k++) {
        const float *run = load_run(op, (x0 + s) * op.sx + (k0 + k) * op.sk, ws, tmp);
        for (int j = 0; j < ws; j++) put<P, is_a>(panel, w, k, j, run[j]);
      }
    }
    for (int64_t k = 0; k < kp; k++)
      for (int j = k < kn ? ws : 0; j < w; j++) put<P, is_a>(panel, w, k, j, 0.0f);
  }
}

// ---- the portable micro-kernel --------------------------------------------

// A plain loop the compiler vectorizes for whatever the baseline ISA is (SSE2
// on x86-64, NEON on aarch64).
static void kernel_portable(int64_t k, const void *a_, const void *b_, float *c, int64_t ldc, float alpha,
                            float beta, int m, int n) {
  constexpr int kMr = 4, kNr = 8;
  const float *a = (const float *)a_;
  const float *b = (const float *)b_;
  float acc[kMr * kNr] = {};
  for (int64_t p = 0; p < k; p++, a += kMr, b += kNr)
    for (int i = 0; i < kMr; i++)
      for (int j = 0; j < kNr; j++) acc[i * kNr + j] += a[i] * b[j];
  gemm_update_tile(acc, kNr, c, ldc, alpha, beta, m, n);
}

static const GemmKernel kPortable = {4, 8, 128, 256, 1024, kPackF32, kernel_portable};

// ---- dispatch -------------------------------------------------------------

enum IsaLevel { kLevelPortable = 0, kLevelAvx2 = 1, kLevelAvx512 = 2, kLevelAmx = 3 };

static IsaLevel cpu_level() {
  const char *isa = lorac_cpu_isa();
#if defined(__x86_64__)
  const bool avx512 = !std::strcmp(isa, "avx512") || !std::strcmp(isa, "amx");
  // The AVX-512 file is also built with -mavx512dq.
  if (avx512 && __builtin_cpu_supports("avx512dq")) return !std::strcmp(isa, "amx") ? kLevelAmx : kLevelAvx512;
  if (avx512 || !std::strcmp(isa, "avx2")) return kLevelAvx2;
#endif
  (void)isa;
  return kLevelPortable;
}

// The CPU's level, lowered by LORAC_CPU_ISA; false (with *bad set) on an unknown value.
static bool chosen_level(IsaLevel *level, const char **bad) {
  *level = cpu_level();
  const char *env = std::getenv("LORAC_CPU_ISA");
  if (!env || !*env) return true;
  IsaLevel want;
  if (!std::strcmp(env, "portable"))
    want = kLevelPortable;
  else if (!std::strcmp(env, "avx2"))
    want = kLevelAvx2;
  else if (!std::strcmp(env, "avx512"))
    want = kLevelAvx512;
  else if (!std::strcmp(env, "amx"))
    want = kLevelAmx;
  else {
    *bad = env;
    return false;
  }
  *level = std::min(*level, want);
  return true;
}

// bf16 products: A and B both bf16 (bf16 products lose nothing the inputs had
// not already lost), or the context's bf16 compute dtype. Not by default for
// NF4: a code times its f32 absmax is not a bf16 number, and rounding it there
// moved results ~1e-3 off bitsandbytes' float32 compute (found on a CPU with
// avx512bf16: tests/oracle/lora_test.ts).
static const GemmKernel *pick_kernel(IsaLevel level, bool bf16_products) {
#if defined(__x86_64__)
  if (level == kLevelAmx && bf16_products) return gemm_kernel_amx_bf16();
  if (level >= kLevelAvx512)
    return bf16_products && __builtin_cpu_supports("avx512bf16") ? gemm_kernel_avx512_bf16()
                                                                 : gemm_kernel_avx512_f32();
  if (level == kLevelAvx2) return gemm_kernel_avx2_f32();
#endif
  (void)level;
  (void)bf16_products;
  return &kPortable;
}

// ---- the driver -----------------------------------------------------------

// C[M,N] = alpha * sum_k a(i,k) b(j,k) + beta * C, C f32 or bf16 with row stride ldc.
// bf16_products: multiply a and b rounded to bf16 where the CPU has a bf16 kernel.
struct Problem {
  int64_t M, N, K;
  float alpha, beta;
  Operand a, b;
  void *c;
  int c_dtype;
  int64_t ldc;
  bool bf16_products;
};

struct AlignedFree {
  void operator()(void *p) const { std::free(p); }
};
using Buffer = std::unique_ptr<char, AlignedFree>;

static Buffer alloc_floats(int64_t n) {
  void *p = std::aligned_alloc(64, (size_t)round_up(std::max<int64_t>(n, 1) * 4, 64));
  if (!p) throw std::bad_alloc();
  return Buffer((char *)p);
}

// A buffer of at least `n` floats in `buf` (holding `have`), replaced by a larger one when needed.
struct Grown {
  Buffer buf;
  int64_t have = 0;
  float *at_least(int64_t n) {
    if (n > have) buf = alloc_floats(n), have = n;
    return (float *)buf.get();
  }
};

// One thread's scratch: packed A block, packed B panel, a decode row, and the
// fp32 sums of a bf16 C.
struct Scratch {
  Grown a, b, tmp, ws;
};

// The block size at most `most` (a multiple of `align`) that cuts `total`
// into the fewest, most even pieces: K = 576 runs as 3 x 192, not 256 + 256 + 64.
static int64_t balanced(int64_t total, int64_t most, int64_t align) {
  const int64_t pieces = std::max<int64_t>(1, (total + most - 1) / most);
  return std::min(most, round_up((total + pieces - 1) / pieces, align));
}

// The cache blocks of one thread's tile of rows x cols x K.
struct Blocks {
  int64_t mc, kc, nc;
};

static Blocks blocks_for(const GemmKernel &kern, int64_t rows, int64_t cols, int64_t K) {
  return {balanced(rows, kern.mc, kern.mr), balanced(K, kern.kc, std::max<int64_t>(2, k_step(kern.packing))),
          balanced(cols, kern.nc, kern.nr)};
}

// c = bf16(sum + beta * c) for n elements, as f32_to_bf16 but branch-free so
// that it vectorizes: with a short K this pass is a noticeable part of the GEMM.
static void store_bf16(const float *sum, uint16_t *c, int64_t n, float beta) {
  for (int64_t j = 0; j < n; j++) {
    const float v = beta == 0.0f ? sum[j] : sum[j] + beta * bf16_to_f32(c[j]);
    uint32_t u;
    std::memcpy(&u, &v, sizeof u);
    const uint32_t rounded = (u + 0x7fffu + ((u >> 16) & 1u)) >> 16;
    const uint32_t quiet_nan = (u >> 16) | 0x40u;
    c[j] = (uint16_t)((u & 0x7fffffffu) > 0x7f800000u ? quiet_nan : rounded);
  }
}

// C = alpha * sum + beta * C over rows m0..m1, columns n0..n1.
template <GemmPacking P>
static void gemm_tile(const GemmKernel &kern, const Blocks &bl, const Problem &pr, int64_t m0, int64_t m1,
                      int64_t n0, int64_t n1, Scratch &s) {
  const bool direct = pr.c_dtype == LORAC_F32;
  const size_t elem = P == kPackF32 ? sizeof(float) : sizeof(uint16_t);
  float *ws = (float *)s.ws.buf.get();
  for (int64_t jc = n0; jc < n1; jc += bl.nc) {
    const int64_t nc = std::min<int64_t>(bl.nc, n1 - jc);
    for (int64_t pc = 0; pc < pr.K; pc += bl.kc) {
      const int64_t kc = std::min<int64_t>(bl.kc, pr.K - pc);
      const int64_t kp = padded_k(P, kc);
      const int64_t steps = kp / k_step(P);
      pack<P, false>(pr.b, jc, nc, pc, kc, kern.nr, s.b.buf.get(), (float *)s.tmp.buf.get());
      for (int64_t ic = m0; ic < m1; ic += bl.mc) {
        const int64_t mc = std::min<int64_t>(bl.mc, m1 - ic);
        pack<P, true>(pr.a, ic, mc, pc, kc, kern.mr, s.a.buf.get(), (float *)s.tmp.buf.get());
        for (int64_t jr = 0; jr < nc; jr += kern.nr) {
          const char *bp = s.b.buf.get() + (size_t)(jr * kp) * elem;
          for (int64_t ir = 0; ir < mc; ir += kern.mr) {
            const char *ap = s.a.buf.get() + (size_t)(ir * kp) * elem;
            const int m = (int)std::min<int64_t>(kern.mr, mc - ir), n = (int)std::min<int64_t>(kern.nr, nc - jr);
            if (direct)
              kern.run(steps, ap, bp, (float *)pr.c + (ic + ir) * pr.ldc + jc + jr, pr.ldc, pr.alpha,
                       pc == 0 ? pr.beta : 1.0f, m, n);
            else
              kern.run(steps, ap, bp, ws + (ic - m0 + ir) * nc + jr, nc, pr.alpha, pc == 0 ? 0.0f : 1.0f, m, n);
          }
        }
      }
    }
    if (direct) continue;
    for (int64_t i = m0; i < m1; i++) store_bf16(ws + (i - m0) * nc, (uint16_t *)pr.c + i * pr.ldc + jc, nc, pr.beta);
  }
}

// Splits C into tm x tn thread tiles: the grid with the least work on its
// busiest thread, counting tile padding and (about 8 MACs an element) packing.
static void thread_grid(const GemmKernel &kern, int64_t M, int64_t N, int threads, int *tm, int *tn) {
  double best = 0;
  for (int r = 1; r <= threads; r++) {
    if (threads % r) continue;
    const int64_t mt = round_up((M + r - 1) / r, kern.mr);
    const int64_t nt = round_up((N + threads / r - 1) / (threads / r), kern.nr);
    const double cost = (double)mt * nt + 8.0 * (nt + mt * ((nt + kern.nc - 1) / kern.nc));
    if (r == 1 || cost < best) best = cost, *tm = r, *tn = threads / r;
  }
}

// C = beta * C for the empty reductions (K == 0 or alpha == 0).
static void scale_c(const Problem &pr) {
  for (int64_t i = 0; i < pr.M; i++)
    for (int64_t j = 0; j < pr.N; j++) {
      const int64_t at = i * pr.ldc + j;
      store_f32(pr.c, pr.c_dtype, at, pr.beta == 0.0f ? 0.0f : pr.beta * load_f32(pr.c, pr.c_dtype, at));
    }
}

static void run_gemm(lorac_ctx *ctx, IsaLevel level, const Problem &pr) {
  if (pr.M == 0 || pr.N == 0) return;
  if (pr.K == 0 || pr.alpha == 0.0f) return scale_c(pr);
  const GemmKernel &kern = *pick_kernel(level, pr.bf16_products);
  // Small products are not worth waking a second thread.
  const int threads = 2.0 * pr.M * pr.N * pr.K < 2e6 ? 1 : std::max(1, ctx_threads(ctx));
  int tm = 1, tn = 1;
  thread_grid(kern, pr.M, pr.N, threads, &tm, &tn);
  const int64_t rows = round_up((pr.M + tm - 1) / tm, kern.mr);
  const int64_t cols = round_up((pr.N + tn - 1) / tn, kern.nr);
  const Blocks bl = blocks_for(kern, std::min(rows, pr.M), std::min(cols, pr.N), pr.K);
  // Grown here, not inside the parallel region, so a failure is a clean error. The calling
  // thread keeps them between calls: mapping and faulting in megabytes of fresh pages on
  // every call cost more than a small GEMM.
  static thread_local std::vector<Scratch> kept;
  if ((int)kept.size() < threads) kept.resize(threads);
  Scratch *scratch = kept.data();  // the calling thread's: a worker naming `kept` would get its own
  for (int t = 0; t < threads; t++) {
    scratch[t].a.at_least(round_up(bl.mc, kern.mr) * padded_k(kern.packing, bl.kc));
    scratch[t].b.at_least(round_up(bl.nc, kern.nr) * padded_k(kern.packing, bl.kc));
    scratch[t].tmp.at_least(std::max<int64_t>({bl.kc, kern.mr, kern.nr}));
    if (pr.c_dtype != LORAC_F32) scratch[t].ws.at_least(rows * bl.nc);
  }
  // One tile per thread; the loop covers every tile even if OpenMP grants fewer threads.
#pragma omp parallel num_threads(threads)
  for (int t = omp_get_thread_num(); t < threads; t += omp_get_num_threads()) {
    const int64_t m0 = std::min<int64_t>(pr.M, t / tn * rows), m1 = std::min<int64_t>(pr.M, m0 + rows);
    const int64_t n0 = std::min<int64_t>(pr.N, t % tn * cols), n1 = std::min<int64_t>(pr.N, n0 + cols);
    if (m0 < m1 && n0 < n1) {
      if (kern.packing == kPackF32)
        gemm_tile<kPackF32>(kern, bl, pr, m0, m1, n0, n1, scratch[t]);
      else if (kern.packing == kPackBf16Pairs)
        gemm_tile<kPackBf16Pairs>(kern, bl, pr, m0, m1, n0, n1, scratch[t]);
      else
        gemm_tile<kPackAmx>(kern, bl, pr, m0, m1, n0, n1, scratch[t]);
    }
  }
}

// ---- argument checks --------------------------------------------------------

static int check_dtype(lorac_ctx *ctx, const char *fn, const char *what, int dtype) {
  LORAC_REQUIRE(ctx, is_float_dtype(dtype), "%s: %s must be F32 (%d) or BF16 (%d), got %d", fn, what, LORAC_F32,
                LORAC_BF16, dtype);
  return LORAC_OK;
}

static int check_level(lorac_ctx *ctx, const char *fn, IsaLevel *level) {
  const char *bad = nullptr;
  LORAC_REQUIRE(ctx, chosen_level(level, &bad), "%s: LORAC_CPU_ISA=%s is not one of portable, avx2, avx512, amx",
                fn, bad);
  return LORAC_OK;
}

// The checks both NF4 GEMMs share; `in` / `out` are the dense operands, out
// has out_cols columns.
static int check_nf4(lorac_ctx *ctx, const char *fn, int32_t M, int32_t N, int32_t K, const void *in,
                     int32_t in_dtype, const uint8_t *W, const float *absmax, int32_t blocksize, void *out,
                     int32_t out_dtype, int32_t out_cols) {
  if (!ctx) return lorac_fail(nullptr, LORAC_ERR_ARGUMENT, "%s: ctx is NULL", fn);
  LORAC_REQUIRE(ctx, M >= 0 && N >= 0 && K >= 0, "%s: sizes must be >= 0, got M=%d N=%d K=%d", fn, M, N, K);
  LORAC_REQUIRE(ctx, K % 2 == 0, "%s: K=%d must be even (NF4 packs two codes per byte along a row of W)", fn, K);
  LORAC_REQUIRE(ctx, blocksize >= 64 && blocksize <= 4096 && (blocksize & (blocksize - 1)) == 0,
                "%s: blocksize must be a power of two from 64 to 4096, got %d", fn, blocksize);
  LORAC_REQUIRE(ctx, (int64_t)N * K % blocksize == 0,
                "%s: N*K=%lld is not a multiple of blocksize %d: quantize W with a blocksize that divides it", fn,
                (long long)N * K, blocksize);
  if (int st = check_dtype(ctx, fn, "the input dtype", in_dtype)) return st;
  if (int st = check_dtype(ctx, fn, "the output dtype", out_dtype)) return st;
  const bool empty = (int64_t)M * N * K == 0;
  LORAC_REQUIRE(ctx, (in && W && absmax) || empty, "%s: an input pointer is NULL", fn);
  LORAC_REQUIRE(ctx, out || (int64_t)M * out_cols == 0, "%s: the output pointer is NULL", fn);
  return LORAC_OK;
}

static Operand dense(const void *p, int dtype, int64_t sx, int64_t sk) { return {p, dtype, sx, sk, nullptr, 0}; }

static Operand nf4(const uint8_t *W, const float *absmax, int32_t blocksize, int64_t sx, int64_t sk) {
  return {W, LORAC_NF4, sx, sk, absmax, __builtin_ctz((unsigned)blocksize)};
}

extern "C" {

int lorac_nf4_gemm(lorac_ctx *ctx, int32_t M, int32_t N, int32_t K, const void *X, int32_t x_dtype,
                   const uint8_t *W, const float *absmax, int32_t blocksize, void *Y, int32_t y_dtype,
                   int32_t accumulate) {
  const char *fn = "lorac_nf4_gemm";
  if (int st = check_nf4(ctx, fn, M, N, K, X, x_dtype, W, absmax, blocksize, Y, y_dtype, N)) return st;
  IsaLevel level;
  if (int st = check_level(ctx, fn, &level)) return st;
  // Y[i][n] = sum_k X[i][k] W[n][k]: a(i, k) = X[i*K + k], b(n, k) = W[n*K + k].
  const Problem pr = {M, N, K, 1.0f, accumulate ? 1.0f : 0.0f, dense(X, x_dtype, K, 1),
                      nf4(W, absmax, blocksize, K, 1), Y, y_dtype, N, ctx->compute_bf16};
  LORAC_TRY(ctx, run_gemm(ctx, level, pr); return LORAC_OK;)
}

int lorac_nf4_gemm_dx(lorac_ctx *ctx, int32_t M, int32_t N, int32_t K, const void *dY, int32_t dy_dtype,
                      const uint8_t *W, const float *absmax, int32_t blocksize, void *dX, int32_t dx_dtype,
                      int32_t accumulate) {
  const char *fn = "lorac_nf4_gemm_dx";
  if (int st = check_nf4(ctx, fn, M, N, K, dY, dy_dtype, W, absmax, blocksize, dX, dx_dtype, K)) return st;
  IsaLevel level;
  if (int st = check_level(ctx, fn, &level)) return st;
  // dX[i][k] = sum_n dY[i][n] W[n][k]: a(i, n) = dY[i*N + n], b(k, n) = W[n*K + k].
  const Problem pr = {M, K, N, 1.0f, accumulate ? 1.0f : 0.0f, dense(dY, dy_dtype, N, 1),
                      nf4(W, absmax, blocksize, 1, K), dX, dx_dtype, K, ctx->compute_bf16};
  LORAC_TRY(ctx, run_gemm(ctx, level, pr); return LORAC_OK;)
}

int lorac_gemm(lorac_ctx *ctx, int32_t trans_a, int32_t trans_b, int32_t M, int32_t N, int32_t K, float alpha,
               const void *A, int32_t a_dtype, int32_t lda, const void *B, int32_t b_dtype, int32_t ldb, float beta,
               void *C, int32_t c_dtype, int32_t ldc) {
  const char *fn = "lorac_gemm";
  if (!ctx) return lorac_fail(nullptr, LORAC_ERR_ARGUMENT, "%s: ctx is NULL", fn);
  LORAC_REQUIRE(ctx, M >= 0 && N >= 0 && K >= 0, "%s: sizes must be >= 0, got M=%d N=%d K=%d", fn, M, N, K);
  if (int st = check_dtype(ctx, fn, "a_dtype", a_dtype)) return st;
  if (int st = check_dtype(ctx, fn, "b_dtype", b_dtype)) return st;
  if (int st = check_dtype(ctx, fn, "c_dtype", c_dtype)) return st;
  const int32_t a_cols = trans_a ? M : K, b_cols = trans_b ? K : N;
  LORAC_REQUIRE(ctx, lda >= std::max(1, a_cols), "%s: lda=%d is less than the %d columns of A as stored%s", fn,
                lda, a_cols, trans_a ? " (trans_a: A is [K, M])" : "");
  LORAC_REQUIRE(ctx, ldb >= std::max(1, b_cols), "%s: ldb=%d is less than the %d columns of B as stored%s", fn,
                ldb, b_cols, trans_b ? " (trans_b: B is [N, K])" : "");
  LORAC_REQUIRE(ctx, ldc >= std::max(1, N), "%s: ldc=%d is less than N=%d", fn, ldc, N);
  LORAC_REQUIRE(ctx, (A && B) || (int64_t)M * N * K == 0, "%s: A or B is NULL", fn);
  LORAC_REQUIRE(ctx, C || (int64_t)M * N == 0, "%s: C is NULL", fn);
  IsaLevel level;
  if (int st = check_level(ctx, fn, &level)) return st;
  // a(i, k) = op(A)[i][k]; b(j, k) = op(B)[k][j].
  const Problem pr = {M, N, K, alpha, beta,
                      trans_a ? dense(A, a_dtype, 1, lda) : dense(A, a_dtype, lda, 1),
                      trans_b ? dense(B, b_dtype, ldb, 1) : dense(B, b_dtype, 1, ldb),
                      C, c_dtype, ldc, a_dtype == LORAC_BF16 && b_dtype == LORAC_BF16};
  LORAC_TRY(ctx, run_gemm(ctx, level, pr); return LORAC_OK;)
}

}  // extern "C"
