/*
** pg_step.c — the step of the score-function trainers (REINFORCE and the
** off-policy IS trainer): an ascent direction ĝ (mrl_pg_gradient's, or a
** weighted sum of several with mrl_axpy) becomes the policy's descent
** gradient −scale·ĝ, its norm is clipped, and the optimiser steps.
*/
#include <math.h>

#include "moonrl.h"

void mrl_axpy(float *y, double a, const float *x, size_t n) {
  for (size_t i = 0; i < n; i++) y[i] = (float)((double)y[i] + a * (double)x[i]);
}

int mrl_policy_ascent_step(mrl_policy *p, mrl_optim *o, const float *ascent,
                           double scale, double lr, double max_grad_norm,
                           double *norm) {
  if (!p || !o || !ascent) return MRL_EINVAL;
  const size_t np = mrl_policy_nparams(p);
  if (mrl_optim_nparams(o) != np || !isfinite(scale) || !(lr >= 0) || !isfinite(lr) ||
      !isfinite(max_grad_norm))
    return MRL_EINVAL;
  if (!mrl_all_finite(ascent, np)) return MRL_ENONFINITE;
  float *g = mrl_policy_grad(p);
  for (size_t i = 0; i < np; i++) g[i] = (float)(-scale * (double)ascent[i]);
  double n = 0;
  int st = max_grad_norm > 0 ? mrl_clip_grad_norm(g, np, max_grad_norm, &n) : MRL_OK;
  if (!st && !(max_grad_norm > 0)) {
    n = mrl_norm2(g, np);
    if (!isfinite(n)) st = MRL_ENONFINITE;
  }
  if (!st) st = mrl_optim_step(o, mrl_policy_params(p), g, lr);
  if (!st && norm) *norm = n;
  return st;
}
