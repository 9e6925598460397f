/*
** gumbel_impl.h — internal: the straight-through Gumbel-softmax estimator
** with its noise made explicit, so tests can fix a draw and check the
** relaxation's Jacobian by finite differences.  Nothing here is public.
*/
#ifndef MRL_GUMBEL_IMPL_H
#define MRL_GUMBEL_IMPL_H

#include "moonrl.h"

/* One row: y[k] := softmax((z + g)/τ) and d[k] := ∂(Σ_j s_j y_j)/∂z_k
** = y_k (s_k − Σ_j s_j y_j)/τ, all in double; returns argmax(z + g) (the
** lowest index on ties).  y and d are caller rows of k doubles. */
int gumbel_row(const float *z, const double *g, const float *s, int k,
               double tau, double *y, double *d);

/* mrl_policy_gumbel_grad with the noise given: noise [batch][n] holds the
** Gumbel(0, 1) draws g (NULL: draw them from the policy's rng, exactly as the
** public function does).  relaxed (nullable) receives the relaxed objective
** (1/N) Σ_n s_n·y_soft_n whose gradient the grad buffer holds. */
int gumbel_grad_core(mrl_policy *p, const float *obs, const float *scores,
                     int batch, double tau, const double *noise,
                     float *actions, double *objective, double *relaxed);

#endif
