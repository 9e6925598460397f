/*
** value_fit.c — regression of a value network on fixed targets: epochs of
** shuffled minibatches of optimiser steps (the critic fit of TRPO, NPG and
** REINFORCE), all or nothing when a step turns non-finite.
*/
#include <math.h>
#include <stdlib.h>

#include "moonrl.h"
#include "train_util.h"

int mrl_value_fit(mrl_net *value, mrl_optim *opt, const float *obs,
                  const float *targets, int n, int epochs, int minibatch,
                  double lr, mrl_rng *rng, double *final_loss, char *err,
                  size_t errlen) {
  return mrl_value_fit_reduce(value, opt, obs, targets, n, epochs, minibatch,
                              lr, rng, NULL, NULL, final_loss, err, errlen);
}

int mrl_value_fit_reduce(mrl_net *value, mrl_optim *opt, const float *obs,
                         const float *targets, int n, int epochs,
                         int minibatch, double lr, mrl_rng *rng,
                         mrl_reduce_fn reduce, void *reduce_ud,
                         double *final_loss, char *err, size_t errlen) {
  if (!value || !opt || !obs || !targets || !rng)
    return mrl_errbuf_(err, errlen, MRL_EINVAL, "value_fit: NULL argument");
  int st = tu_check_fit(n, epochs, minibatch, lr, err, errlen);
  if (st) return st;
  const int od = mrl_net_in_dim(value);
  const size_t nv = mrl_net_nparams(value);
  if (mrl_net_out_dim(value) != 1 || mrl_optim_nparams(opt) != nv)
    return mrl_errbuf_(err, errlen, MRL_EINVAL, "value_fit: expected a 1-output network and a matching optimiser");
  if (tu_any_process(reduce, reduce_ud, !mrl_all_finite(targets, (size_t)n)))
    return mrl_errbuf_(err, errlen, MRL_ENONFINITE, "targets: non-finite value; fit refused");
  if (minibatch > n) minibatch = n;
  float *mo = malloc(sizeof(float) * (size_t)minibatch * (size_t)(od + 1));
  int *idx = malloc(sizeof(int) * (size_t)n);
  tu_snapshot s = {0};
  if (!mo || !idx || tu_snap_take(&s, mrl_net_params(value), opt, nv)) {
    free(mo); free(idx); tu_snap_free(&s);
    return mrl_errbuf_(err, errlen, MRL_ENOMEM, "value_fit: out of memory");
  }
  float *mt = mo + (size_t)minibatch * od;
  double loss = 0;
  st = MRL_OK;
  for (int e = 0; e < epochs && !st; e++) {
    tu_shuffle(idx, n, rng);
    for (int start = 0; start < n; start += minibatch) {
      int k = n - start < minibatch ? n - start : minibatch;
      tu_gather(mo, obs, idx + start, k, od);
      tu_gather(mt, targets, idx + start, k, 1);
      st = mrl_net_value_loss(value, mo, mt, k, &loss, NULL);
      if (st) { mrl_errbuf_(err, errlen, st, "value loss: %s", mrl_net_error(value)); break; }
      if (reduce &&
          (st = tu_reduce_mean(reduce, reduce_ud, mrl_net_grad(value), nv, &loss, 1, k, NULL))) {
        mrl_errbuf_(err, errlen, st, "value_fit: the reduce hook failed");
        break;
      }
      st = mrl_optim_step(opt, mrl_net_params(value), mrl_net_grad(value), lr);
      if (st) { mrl_errbuf_(err, errlen, st, "optimiser: %s", mrl_optim_error(opt)); break; }
    }
  }
  if (st) tu_snap_restore(&s, mrl_net_params(value), opt);
  else if (final_loss) *final_loss = loss;
  free(mo); free(idx); tu_snap_free(&s);
  return st;
}
