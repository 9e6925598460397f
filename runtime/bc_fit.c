/*
** bc_fit.c — behaviour cloning: epochs of shuffled minibatches minimising
** −mean log π(a|s) over demonstrations (the score-function gradient with
** unit weights, i.e. maximum likelihood), then the fit on the whole set.
** All or nothing: a non-finite step restores the policy and optimiser.
*/
#include <math.h>
#include <stdlib.h>

#include "moonrl.h"
#include "train_util.h"

int mrl_policy_bc_fit(mrl_policy *p, mrl_optim *opt, const float *obs,
                      const float *actions, int n, int epochs, int minibatch,
                      double lr, mrl_rng *rng, mrl_bc_report *rep, char *err,
                      size_t errlen) {
  if (!p || !opt || !obs || !actions || !rng)
    return mrl_errbuf_(err, errlen, MRL_EINVAL, "bc_fit: NULL argument");
  int st = tu_check_fit(n, epochs, minibatch, lr, err, errlen);
  if (st) return st;
  const size_t np = mrl_policy_nparams(p);
  if (mrl_optim_nparams(opt) != np)
    return mrl_errbuf_(err, errlen, MRL_EINVAL, "bc_fit: the optimiser is sized for %zu parameters, the policy has %zu",
                   mrl_optim_nparams(opt), np);
  if (!mrl_all_finite(obs, (size_t)n * (size_t)mrl_policy_obs_dim(p)) ||
      !mrl_all_finite(actions, (size_t)n * (size_t)mrl_policy_action_width(p)))
    return mrl_errbuf_(err, errlen, MRL_ENONFINITE, "bc_fit: non-finite demonstrations");
  if (minibatch > n) minibatch = n;
  const int od = mrl_policy_obs_dim(p), aw = mrl_policy_action_width(p);
  float *buf = malloc(sizeof(float) * ((size_t)minibatch * (size_t)(od + aw + 1) + (size_t)n));
  int *idx = malloc(sizeof(int) * (size_t)n);
  tu_snapshot s = {0};
  if (!buf || !idx || tu_snap_take(&s, mrl_policy_params(p), opt, np)) {
    free(buf); free(idx); tu_snap_free(&s);
    return mrl_errbuf_(err, errlen, MRL_ENOMEM, "bc_fit: out of memory");
  }
  float *mo = buf, *ma = mo + (size_t)minibatch * od, *ones = ma + (size_t)minibatch * aw;
  float *logp = ones + minibatch;
  for (int i = 0; i < minibatch; i++) ones[i] = 1.0f;
  double last = 0;
  st = MRL_OK;
  for (int e = 0; e < epochs && !st; e++) {
    tu_shuffle(idx, n, rng);
    double sum = 0;
    for (int start = 0; start < n; start += minibatch) {
      int k = n - start < minibatch ? n - start : minibatch;
      tu_gather(mo, obs, idx + start, k, od);
      tu_gather(ma, actions, idx + start, k, aw);
      /* scale −1/k: grad := ∇(−mean log π), which the optimiser descends */
      double objective = 0;
      st = mrl_policy_grad_weighted_logp(p, mo, ma, ones, k, -1.0 / k, &objective);
      if (st) { mrl_errbuf_(err, errlen, st, "bc_fit: %s", mrl_policy_error(p)); break; }
      if (!isfinite(objective)) {
        st = mrl_errbuf_(err, errlen, MRL_ENONFINITE, "bc_fit: non-finite loss in epoch %d; fit refused, parameters restored", e + 1);
        break;
      }
      st = mrl_optim_step(opt, mrl_policy_params(p), mrl_policy_grad(p), lr);
      if (st) { mrl_errbuf_(err, errlen, st, "optimiser: %s", mrl_optim_error(opt)); break; }
      sum += objective * k;
    }
    last = sum / n;
  }
  mrl_bc_report r = {last, NAN, NAN};
  if (!st) {
    /* the fit on the whole set: −mean log π, and for a discrete policy how
    ** often the mode is the demonstrated action */
    st = mrl_policy_evaluate(p, NULL, obs, actions, n, logp, NULL);
    if (st) mrl_errbuf_(err, errlen, st, "bc_fit: %s", mrl_policy_error(p));
    double nll = 0;
    for (int i = 0; !st && i < n; i++) nll -= logp[i];
    r.nll = nll / n;
    if (!st && mrl_policy_action_kind(p) == MRL_DISCRETE) {
      int correct = 0;
      for (int start = 0; !st && start < n; start += minibatch) {
        int k = n - start < minibatch ? n - start : minibatch;
        st = mrl_policy_act(p, obs + (size_t)start * od, k, 1, ma, NULL);
        if (st) { mrl_errbuf_(err, errlen, st, "bc_fit: %s", mrl_policy_error(p)); break; }
        for (int i = 0; i < k; i++) correct += ma[i] == actions[start + i];
      }
      r.accuracy = (double)correct / n;
    }
  }
  if (st) tu_snap_restore(&s, mrl_policy_params(p), opt);
  else if (rep) *rep = r;
  free(buf); free(idx); tu_snap_free(&s);
  return st;
}
