/*
** test_bc_fit.c — behaviour cloning (mrl_policy_bc_fit): the reported
** whole-set nll is −mean log π by hand, it falls with training, the mode
** follows the expert, the same seed gives the same bits, and bad input is
** refused with the policy and optimiser untouched.
*/
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "moonrl.h"
#include "tap.h"

enum { N = 300, OD = 2 };

static void make(mrl_policy **p, mrl_optim **o) {
  int hidden[1] = {16};
  mrl_policy_spec spec = {.obs_dim = OD, .hidden = hidden, .nhidden = 1, .activation = MRL_TANH, .action_kind = MRL_DISCRETE, .action_n = 2, .low = NULL, .high = NULL, .init_log_std = 0.0, .out_gain = 0.01, .seed = 5};
  mrl_policy_new(p, &spec);
  mrl_optim_new(o, MRL_ADAM, mrl_policy_nparams(*p), 0.9, 0.999, 1e-8);
}

int main(void) {
  static float obs[N * OD], act[N];
  mrl_rng *g, *r1, *r2;
  mrl_rng_new(&g, 1);
  for (int i = 0; i < N; i++) {
    obs[2 * i] = (float)mrl_rng_normal(g);
    obs[2 * i + 1] = (float)mrl_rng_normal(g);
    act[i] = obs[2 * i] + 0.5f * obs[2 * i + 1] > 0 ? 1.0f : 0.0f;
  }
  mrl_policy *p, *q;
  mrl_optim *o, *oq;
  make(&p, &o);
  make(&q, &oq);
  mrl_rng_new(&r1, 3);
  mrl_rng_new(&r2, 3);
  char err[256];
  mrl_bc_report a, b;
  int st = mrl_policy_bc_fit(p, o, obs, act, N, 1, 50, 1e-2, r1, &a, err, sizeof err);
  float logp[N];
  mrl_policy_evaluate(p, NULL, obs, act, N, logp, NULL);
  double nll = 0;
  for (int i = 0; i < N; i++) nll -= logp[i];
  TAP_OK(st == MRL_OK && tap_close(a.nll, nll / N, 1e-9, 1e-12) && a.nll < log(2.0) + 1e-3,
         "one epoch: nll %.4f is −mean log π by hand", a.nll);
  st = mrl_policy_bc_fit(p, o, obs, act, N, 30, 50, 1e-2, r1, &b, err, sizeof err);
  TAP_OK(st == MRL_OK && b.nll < a.nll && b.accuracy > 0.95 && isfinite(b.last_epoch_nll),
         "thirty more: nll %.4f, accuracy %.3f", b.nll, b.accuracy);
  mrl_policy_bc_fit(q, oq, obs, act, N, 1, 50, 1e-2, r2, &a, err, sizeof err);
  mrl_policy_bc_fit(q, oq, obs, act, N, 30, 50, 1e-2, r2, &a, err, sizeof err);
  TAP_OK(memcmp(mrl_policy_params(p), mrl_policy_params(q), mrl_policy_nparams(p) * 4) == 0,
         "the same seed gives the same bits");
  float keep = obs[7];
  obs[7] = NAN;
  int64_t steps = mrl_optim_steps(o);
  st = mrl_policy_bc_fit(p, o, obs, act, N, 1, 50, 1e-2, r1, &a, err, sizeof err);
  TAP_OK(st == MRL_ENONFINITE && mrl_optim_steps(o) == steps &&
             memcmp(mrl_policy_params(p), mrl_policy_params(q), mrl_policy_nparams(p) * 4) == 0,
         "non-finite demonstrations refused, nothing changed: %s", err);
  obs[7] = keep;
  TAP_OK(mrl_policy_bc_fit(p, o, obs, act, 0, 1, 50, 1e-2, r1, &a, err, sizeof err) == MRL_EINVAL &&
             mrl_policy_bc_fit(p, oq, obs, act, N, 0, 50, 1e-2, r1, &a, err, sizeof err) == MRL_EINVAL,
         "bad sizes refused: %s", err);
  mrl_policy_free(p); mrl_policy_free(q);
  mrl_optim_free(o); mrl_optim_free(oq);
  mrl_rng_free(g); mrl_rng_free(r1); mrl_rng_free(r2);
  return tap_done();
}
