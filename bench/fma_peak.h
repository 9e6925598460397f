/*
** bench/fma_peak.h — the FP32 FMA peak of one core, the yardstick of the
** "% of peak" figures of bench_kernels and bench_conv: 12 independent FMA
** chains at the widest width this CPU has, timed by the caller's clock (wall
** or thread CPU time).  Header-only: each bench is one C file.
*/
#ifndef MRL_BENCH_FMA_PEAK_H
#define MRL_BENCH_FMA_PEAK_H

#if defined(__x86_64__)
#include <immintrin.h>
/* 12 independent FMA chains hide the 4-cycle latency on 2 FMA pipes. */
__attribute__((target("avx512f"), noinline)) static double peak512(long iters) {
  __m512 a[12], m = _mm512_set1_ps(0.999999f), c = _mm512_set1_ps(1e-7f);
  for (int i = 0; i < 12; i++) a[i] = _mm512_set1_ps((float)i);
  for (long n = 0; n < iters; n++)
    for (int i = 0; i < 12; i++) a[i] = _mm512_fmadd_ps(a[i], m, c);
  float s = 0, t[16];
  for (int i = 0; i < 12; i++) {
    _mm512_storeu_ps(t, a[i]);
    s += t[0];
  }
  return s;
}
__attribute__((target("avx2,fma"), noinline)) static double peak256(long iters) {
  __m256 a[12], m = _mm256_set1_ps(0.999999f), c = _mm256_set1_ps(1e-7f);
  for (int i = 0; i < 12; i++) a[i] = _mm256_set1_ps((float)i);
  for (long n = 0; n < iters; n++)
    for (int i = 0; i < 12; i++) a[i] = _mm256_fmadd_ps(a[i], m, c);
  float s = 0, t[8];
  for (int i = 0; i < 12; i++) {
    _mm256_storeu_ps(t, a[i]);
    s += t[0];
  }
  return s;
}
#endif

/* GFLOP/s of one core at the widest FMA this CPU has (0 if none). */
static double fma_peak(double (*now)(void), const char **what) {
  *what = "none";
#if defined(__x86_64__)
  double (*f)(long) = NULL;
  double lanes = 0;
  if (__builtin_cpu_supports("avx512f")) { f = peak512; lanes = 16; *what = "AVX-512 FMA"; }
  else if (__builtin_cpu_supports("avx2") && __builtin_cpu_supports("fma")) {
    f = peak256; lanes = 8; *what = "AVX2 FMA";
  }
  if (!f) return 0;
  long iters = 1 << 20;
  volatile double sink = 0;
  for (;;) {
    double t0 = now();
    sink += f(iters);
    double dt = now() - t0;
    if (dt > 0.2) return 12.0 * lanes * 2.0 * iters / dt * 1e-9;
    iters *= 2;
  }
#else
  return 0;
#endif
}

#endif
