// Measures this machine's peak fp32 FMA (and bf16 dot-product, where the CPU
// has AVX512-BF16) throughput in GFLOP/s: independent FMA chains in registers,
// no memory traffic, on one thread and on all threads, by the wall clock and
// per CPU-second of one core. Prints one JSON line.
//
// Built and run by bench/gemm_vs_torch.ts:
//   g++ -O2 -fopenmp bench/peak_flops.cpp -o build/peak_flops && build/peak_flops
#include <immintrin.h>
#include <omp.h>

#include <time.h>

#include <algorithm>
#include <chrono>
#include <cstdio>

// Chains: enough independent accumulators to cover FMA latency x pipes
// (5 x 2 on Zen 1, 4 x 2 on Intel cores).
constexpr int kChains = 12;
// About 6 GFLOP per thread per measurement: a few tenths of a second.
constexpr double kFlopsPerRun = 6e9;

__attribute__((target("avx2,fma"))) static float fma_avx2(long iters) {
  __m256 acc[kChains];
  for (int i = 0; i < kChains; i++) acc[i] = _mm256_set1_ps(0.001f * i);
  const __m256 a = _mm256_set1_ps(0.9999f), b = _mm256_set1_ps(1e-7f);
  for (long it = 0; it < iters; it++) {
#pragma GCC unroll 12
    for (int i = 0; i < kChains; i++) acc[i] = _mm256_fmadd_ps(acc[i], a, b);
  }
  __m256 s = acc[0];
  for (int i = 1; i < kChains; i++) s = _mm256_add_ps(s, acc[i]);
  return _mm256_cvtss_f32(s);
}

constexpr int kChains512 = 24;

__attribute__((target("avx512f"))) static float fma_avx512(long iters) {
  __m512 acc[kChains512];
  for (int i = 0; i < kChains512; i++) acc[i] = _mm512_set1_ps(0.001f * i);
  const __m512 a = _mm512_set1_ps(0.9999f), b = _mm512_set1_ps(1e-7f);
  for (long it = 0; it < iters; it++) {
#pragma GCC unroll 24
    for (int i = 0; i < kChains512; i++) acc[i] = _mm512_fmadd_ps(acc[i], a, b);
  }
  __m512 s = acc[0];
  for (int i = 1; i < kChains512; i++) s = _mm512_add_ps(s, acc[i]);
  return _mm512_cvtss_f32(s);
}

// vdpbf16ps: 32 bf16 products summed pairwise into 16 fp32 lanes = 64 flops.
__attribute__((target("avx512f,avx512bf16"))) static float dot_bf16(long iters) {
  __m512 acc[kChains512];
  for (int i = 0; i < kChains512; i++) acc[i] = _mm512_set1_ps(0.001f * i);
  const __m512bh a = (__m512bh)_mm512_set1_epi16(0x3f80), b = (__m512bh)_mm512_set1_epi16(0x3380);
  for (long it = 0; it < iters; it++) {
#pragma GCC unroll 24
    for (int i = 0; i < kChains512; i++) acc[i] = _mm512_dpbf16_ps(acc[i], a, b);
  }
  __m512 s = acc[0];
  for (int i = 1; i < kChains512; i++) s = _mm512_add_ps(s, acc[i]);
  return _mm512_cvtss_f32(s);
}

static volatile float g_sink;

static double thread_cpu_seconds() {
  timespec t;
  clock_gettime(CLOCK_THREAD_CPUTIME_ID, &t);
  return t.tv_sec + t.tv_nsec * 1e-9;
}

// Best GFLOP/s of `kernel` (flops_per_iter per call iteration) on `threads`
// threads: `all` by the wall clock over all threads, `core` per second of
// CPU time one thread got (what a core does while it runs: robust to other
// processes on the machine).
struct Rate {
  double all, core;
};

template <class Kernel>
static Rate measure(Kernel kernel, double flops_per_iter, int threads) {
  const long iters = (long)(kFlopsPerRun / flops_per_iter);
  kernel(iters / 100);  // wake the cores up to their running clock
  Rate best = {0, 0};
  for (int rep = 0; rep < 3; rep++) {
    double core = 0;
    auto t0 = std::chrono::steady_clock::now();
#pragma omp parallel num_threads(threads) reduction(max : core)
    {
      double c0 = thread_cpu_seconds();
      float r = kernel(iters);
      core = flops_per_iter * iters / (thread_cpu_seconds() - c0) / 1e9;
      if (r == 12345.f) g_sink = r;  // keeps the loop from being optimized away
    }
    double s = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
    best.all = std::max(best.all, flops_per_iter * iters * threads / s / 1e9);
    best.core = std::max(best.core, core);
  }
  return best;
}

int main() {
  const int threads = omp_get_num_procs();
  Rate f1 = {0, 0}, fn = {0, 0}, b1, bn;
  const char *isa = "none";
  if (__builtin_cpu_supports("avx512f")) {
    isa = "avx512";
    f1 = measure(fma_avx512, kChains512 * 32.0, 1);
    fn = measure(fma_avx512, kChains512 * 32.0, threads);
  } else if (__builtin_cpu_supports("avx2") && __builtin_cpu_supports("fma")) {
    isa = "avx2";
    f1 = measure(fma_avx2, kChains * 16.0, 1);
    fn = measure(fma_avx2, kChains * 16.0, threads);
  }
  if (__builtin_cpu_supports("avx512bf16")) {
    b1 = measure(dot_bf16, kChains512 * 64.0, 1);
    bn = measure(dot_bf16, kChains512 * 64.0, threads);
  } else {
    // No bf16 arithmetic: bf16 GEMMs run on the fp32 FMA units.
    b1 = f1;
    bn = fn;
  }
  printf("{\"isa\":\"%s\",\"threads\":%d,\"fp32_gflops_1t\":%.1f,\"fp32_gflops\":%.1f,\"fp32_gflops_core\":%.1f,"
         "\"bf16_native\":%s,\"bf16_gflops_1t\":%.1f,\"bf16_gflops\":%.1f,\"bf16_gflops_core\":%.1f}\n",
         isa, threads, f1.all, fn.all, std::max(f1.core, fn.core),
         __builtin_cpu_supports("avx512bf16") ? "true" : "false", b1.all, bn.all, std::max(b1.core, bn.core));
  return 0;
}
