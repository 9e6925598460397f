/*
** kernels.h — internal: the dense kernels under mlp.c, one table per
** instruction set.  kernels_portable.c (generic vectors, any target),
** kernels_avx2.c and kernels_avx512.c instantiate the same template
** (kernels_impl.h); mlp_shape_init picks one per shape.
*/
#ifndef MRL_KERNELS_H
#define MRL_KERNELS_H

#include <stddef.h>
#include "moonrl.h"

enum { MLP_ACT_NONE = -1 };  /* linear1: no activation (the output layer) */

typedef struct mlp_kernels {
  const char *name;
  /* C[m][n] = init + Σ_k A(m,k)·B(k,n) for m < M, n < N, k < K, where
  ** A(m,k) = A[m·sam + k·sak], B(k,n) = B[k·sbk + n·sbn], C row stride ldc
  ** (n contiguous); init = C (accumulate), else bias[n] (bias non-NULL),
  ** else 0.  Needs M, N, K ≥ 1. */
  void (*gemm)(int M, int N, int K, const float *A, ptrdiff_t sam,
               ptrdiff_t sak, const float *B, ptrdiff_t sbk, ptrdiff_t sbn,
               float *C, ptrdiff_t ldc, const float *bias, int accumulate);
  /* C[m][n] += Σ_k A[m·lda + k]·B[n·ldb + k] (both rows contiguous in k:
  ** weight gradients over a batch, no packing).  Needs M, N, K ≥ 1. */
  void (*gemm_nt)(int M, int N, int K, const float *A, ptrdiff_t lda,
                  const float *B, ptrdiff_t ldb, float *C, ptrdiff_t ldc);
  /* y[m][n] = bias[n] + Σ_k x[m][k]·W[n][k]: dot products over contiguous
  ** rows, for batches too small to amortise packing Wᵀ. */
  void (*linear_dot)(int M, int N, int K, const float *x, const float *W,
                     const float *bias, float *y);
  /* Batch 1: y[n] = act(bias[n] + Σ_k x[k]·W[n][k]) for n < N, k < K, the
  ** activation (an mrl_activation, or MLP_ACT_NONE) applied in registers:
  ** the same values as linear_dot then act_forward, with less latency. */
  void (*linear1)(int N, int K, const float *x, const float *W,
                  const float *bias, float *y, int act);
  /* Batch 1, a hidden layer then a narrow output layer: linear1(N, K, x, W,
  ** bias, y, act) and then y2[j] = bias2[j] + Σ_n y[n]·W2[j][n], j < N2,
  ** each activated block of y folded into the outputs while in registers.
  ** Needs N % vw == 0 and N2 ≤ vw;
  ** the same values as the two calls up to rounding. */
  void (*linear1_out)(int N, int K, const float *x, const float *W,
                      const float *bias, float *y, int act, int N2,
                      const float *W2, const float *bias2, float *y2);
  /* Batch 1 through two hidden layers and a narrow output layer (most
  ** policies): linear1(H1, K, x, W1, b1, h1, act) then linear1_out(H2, H1,
  ** h1, W2, b2, h2, act, N2, W3, b3, y), the same values, one call.  w is
  ** {W1, b1, W2, b2, W3, b3}; acts is h1[H1] h2[H2] y[N2].  Needs
  ** H2 % vw == 0 and N2 ≤ vw. */
  void (*forward1_2h)(int K, int H1, int H2, int N2, const float *x,
                      const float *const *w, float *acts, int act);
  int vw;  /* floats per vector of this table */
  /* y[i] = act(y[i]) in place. */
  void (*act_forward)(mrl_activation act, float *y, size_t n);
  /* d[i] *= act'(z_i), written through the post-activation y[i]. */
  void (*act_backward)(mrl_activation act, const float *y, float *d, size_t n);
  /* out[n] += Σ_m A[m][n] (bias gradients). */
  void (*add_colsum)(int M, int N, const float *A, float *out);
} mlp_kernels;

extern const mlp_kernels mlp_kernels_portable;
#if defined(__x86_64__) || defined(__i386__)
#define MLP_HAVE_X86_KERNELS 1
extern const mlp_kernels mlp_kernels_avx2;
extern const mlp_kernels mlp_kernels_avx512;
#endif

/* The table named "portable" | "avx2" | "avx512" if this CPU runs it, else
** NULL; NULL or "" names the best one available. */
const mlp_kernels *mlp_kernels_find(const char *name);

#endif
