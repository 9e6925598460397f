/*
** kernels_avx2.c — the kernel template at 8 floats with FMA.  The target
** pragma makes the file correct whatever flags it is compiled with; the
** caller runs it only where __builtin_cpu_supports says so.
*/
#if defined(__x86_64__) || defined(__i386__)
#pragma GCC target("avx2,fma")
#include <immintrin.h>
#include <stdint.h>

#define KN_VW 8
#define KN_NV 2
#define KN_RB 4
#define KN_FMA(a, b, c) \
  ((kn_vf)_mm256_fmadd_ps((__m256)(a), (__m256)(b), (__m256)(c)))

static inline float kn_hsum8(__m256 v) {
  __m128 s = _mm_add_ps(_mm256_castps256_ps128(v), _mm256_extractf128_ps(v, 1));
  s = _mm_add_ps(s, _mm_movehl_ps(s, s));
  s = _mm_add_ss(s, _mm_movehdup_ps(s));
  return _mm_cvtss_f32(s);
}
#define KN_HSUM(v) kn_hsum8((__m256)(v))
/* min(9, a): minps returns its second operand if either is NaN */
#define KN_MIN9(a) ((kn_vf)_mm256_min_ps(_mm256_set1_ps(9.0f), (__m256)(a)))
/* the first n ≤ 8 lanes; vmaskmovps neither reads nor writes the others */
static inline __m256i kn_mask8(int n) {
  return _mm256_cmpgt_epi32(_mm256_set1_epi32(n),
                            _mm256_setr_epi32(0, 1, 2, 3, 4, 5, 6, 7));
}
#define KN_LOADN(p, n) ((kn_vf)_mm256_maskload_ps((p), kn_mask8(n)))
#define KN_STOREN(p, v, n) _mm256_maskstore_ps((p), kn_mask8(n), (__m256)(v))
#define KN_TABLE mlp_kernels_avx2
#define KN_NAME "avx2"
#include "kernels_impl.h"
#else
typedef int mlp_kernels_avx2_unused; /* ISO C wants a declaration */
#endif
