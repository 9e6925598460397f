/*
** npg_update.c — one natural-policy-gradient update, NPG's outer step:
** the policy gradient of mean A·log π, averaged over processes with the
** policy's reduce hook (mrl_policy_set_reduce), the natural step of KL
** max_kl along the Fisher's CG solution (mrl_policy_npg_step), and
** θ ← θ + step.  All or nothing: a failure leaves θ unchanged.
*/
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "moonrl.h"
#include "policy_impl.h"
#include "train_util.h"

int mrl_policy_npg_update(mrl_policy *p, mrl_fisher fisher, const float *obs,
                          const float *actions, const float *advantages,
                          int batch, double damping, int iters, double max_kl,
                          mrl_npg_report *rep) {
  return mrl_policy_npg_update_masked(p, fisher, obs, NULL, actions, advantages, batch, damping,
                                      iters, max_kl, rep);
}

int mrl_policy_npg_update_masked(mrl_policy *p, mrl_fisher fisher, const float *obs,
                                 const float *masks, const float *actions,
                                 const float *advantages, int batch, double damping, int iters,
                                 double max_kl, mrl_npg_report *rep) {
  if (!p) return MRL_EINVAL;
  if (!obs || !actions || !advantages || batch < 1 || batch > MRL_MAX_BATCH)
    return policy_fail(p, MRL_EINVAL, "npg_update: obs, actions and advantages of 1..%d rows expected",
                       MRL_MAX_BATCH);
  const size_t np = p->nparams;
  float *buf = malloc(sizeof(float) * np * 3);
  if (!buf) return policy_fail(p, MRL_ENOMEM, "npg_update: out of memory");
  float *g = buf, *step = g + np, *old = step + np;
  memcpy(old, p->params, sizeof(float) * np);
  /* g = ∇θ mean_n A_n log π(a_n|s_n) */
  double obj = 0;
  int st = mrl_policy_grad_weighted_logp_masked(p, obs, masks, actions, advantages, batch,
                                                1.0 / batch, &obj);
  if (!st) {
    memcpy(g, p->grad, sizeof(float) * np);
    if (p->reduce && tu_reduce_mean(p->reduce, p->reduce_ud, g, np, &obj, 1, batch, NULL))
      st = policy_fail(p, MRL_ESTATE, "npg_update: the reduction hook failed");
  }
  if (!st && (!isfinite(obj) || !mrl_all_finite(g, np)))
    st = policy_fail(p, MRL_ENONFINITE, "npg_update: non-finite gradient; update refused");
  if (!st)
    st = mrl_policy_npg_step_masked(p, fisher, obs, masks,
                                    fisher == MRL_FISHER_EMPIRICAL ? actions : NULL, batch, g,
                                    damping, iters, max_kl, step);
  if (!st) {
    for (size_t i = 0; i < np; i++) p->params[i] += step[i];
    if (!mrl_all_finite(p->params, np)) {
      memcpy(p->params, old, sizeof(float) * np);
      st = policy_fail(p, MRL_ENONFINITE, "npg_update: non-finite step; update refused");
    }
  }
  double kl = 0;
  if (!st && (st = mrl_policy_kl_masked(p, old, NULL, obs, masks, batch, NULL, &kl)))
    memcpy(p->params, old, sizeof(float) * np);
  if (!st && rep) {
    rep->objective = obj;
    double q = 0;
    for (size_t i = 0; i < np; i++) q += (double)g[i] * g[i];
    rep->grad_norm = sqrt(q);
    rep->mean_kl = kl;
  }
  free(buf);
  return st;
}
