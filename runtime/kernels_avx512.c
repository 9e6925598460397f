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
/* a/b from the 14-bit estimate r = 1/b and one Newton step, as
** q = a·r + a·r·(1 − b·r) (~2^-26 relative): several times the throughput
** of vdivps, and a·r and 1 − b·r run side by side. */
static inline __m512 kn_div512(__m512 a, __m512 b) {
  __m512 r = _mm512_rcp14_ps(b);
  __m512 q = _mm512_mul_ps(a, r);
  __m512 e = _mm512_fnmadd_ps(b, r, _mm512_set1_ps(1.0f));
  return _mm512_fmadd_ps(q, e, q);
}
#define KN_DIV(a, b) ((kn_vf)kn_div512((__m512)(a), (__m512)(b)))
/* min(9, a): minps returns its second operand if either is NaN */
#define KN_MIN9(a) ((kn_vf)_mm512_min_ps(_mm512_set1_ps(9.0f), (__m512)(a)))
/* the first n ≤ 16 lanes; masked lanes are neither read nor written */
#define KN_LOADN(p, n) \
  ((kn_vf)_mm512_maskz_loadu_ps((__mmask16)((1u << (n)) - 1u), (p)))
#define KN_STOREN(p, v, n) \
  _mm512_mask_storeu_ps((p), (__mmask16)((1u << (n)) - 1u), (__m512)(v))
#define KN_TABLE mlp_kernels_avx512
#define KN_NAME "avx512"
#include "kernels_impl.h"
#else
typedef int mlp_kernels_avx512_unused;
#endif
