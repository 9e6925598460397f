/*
** kernels_avx512.c — the kernel template at 16 floats (AVX-512F); see
** kernels_avx2.c for why the target pragma.
*/
#if defined(__x86_64__) || defined(__i386__)
#pragma GCC target("avx512f,avx512dq,avx512vl,avx2,fma")
#include <immintrin.h>
#include <stdint.h>

#define KN_VW 16
#define KN_NV 4
#define KN_RB 4
#define KN_FMA(a, b, c) \
  ((kn_vf)_mm512_fmadd_ps((__m512)(a), (__m512)(b), (__m512)(c)))
#define KN_HSUM(v) _mm512_reduce_add_ps((__m512)(v))
/* a/b as a·r with r = 1/b from the 14-bit estimate and one Newton step
** (~2^-26 relative): several times the throughput of vdivps. */
static inline __m512 kn_div512(__m512 a, __m512 b) {
  __m512 r = _mm512_rcp14_ps(b);
  r = _mm512_mul_ps(r, _mm512_fnmadd_ps(b, r, _mm512_set1_ps(2.0f)));
  return _mm512_mul_ps(a, r);
}
#define KN_DIV(a, b) ((kn_vf)kn_div512((__m512)(a), (__m512)(b)))
/* min(9, a): minps returns its second operand if either is NaN */
#define KN_MIN9(a) ((kn_vf)_mm512_min_ps(_mm512_set1_ps(9.0f), (__m512)(a)))
#define KN_TABLE mlp_kernels_avx512
#define KN_NAME "avx512"
#include "kernels_impl.h"
#else
typedef int mlp_kernels_avx512_unused;
#endif
