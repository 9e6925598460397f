/*
** test_npg_update.c — the single C homes of two trainer steps that were
** Lua loops: mrl_standardize (batch advantage standardisation) against a
** hand computation, and mrl_policy_npg_update (NPG's outer step) against
** its building blocks (grad_weighted_logp, npg_step, θ + step) bit for bit.
*/
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "moonrl.h"
#include "tap.h"

enum { N = 64, OD = 3 };

static void test_standardize(void) {
  float x[5] = {1, 2, 3, 4, 10}, y[5];
  memcpy(y, x, sizeof x);
  double m = 4, q = 9 + 4 + 1 + 0 + 36, sd = sqrt(q / 4) + 1e-8;
  int ok = mrl_standardize(y, 5, NULL, NULL) == MRL_OK;
  for (int i = 0; i < 5; i++) ok &= y[i] == (float)((x[i] - m) / sd);
  TAP_OK(ok, "standardize: (x − mean)/(sample std + 1e-8) by hand");
  float one = 3;
  TAP_OK(mrl_standardize(&one, 1, NULL, NULL) == MRL_OK && one == 3, "one value is left alone");
  float bad[3] = {1, INFINITY, 2};
  TAP_OK(mrl_standardize(bad, 3, NULL, NULL) == MRL_ENONFINITE && bad[0] == 1 && bad[2] == 2,
         "non-finite values are refused, unchanged");
  TAP_OK(mrl_standardize(NULL, 2, NULL, NULL) == MRL_EINVAL && mrl_standardize(NULL, 0, NULL, NULL) == MRL_OK,
         "NULL with n > 0 refused; nothing to do for n = 0");
}

static mrl_policy *make(void) {
  int hidden[1] = {8};
  mrl_policy_spec spec = {.obs_dim = OD, .hidden = hidden, .nhidden = 1, .activation = MRL_TANH, .action_kind = MRL_DISCRETE, .action_n = 3, .low = NULL, .high = NULL, .init_log_std = 0.0, .out_gain = 1.0, .seed = 4};
  mrl_policy *p;
  mrl_policy_new(&p, &spec);
  return p;
}

static void test_npg(mrl_fisher fisher) {
  mrl_policy *p = make(), *q = make();
  mrl_rng *g;
  mrl_rng_new(&g, 2);
  float obs[N * OD], act[N], adv[N];
  for (int i = 0; i < N * OD; i++) obs[i] = (float)mrl_rng_normal(g);
  mrl_policy_act(q, obs, N, 0, act, NULL);
  for (int i = 0; i < N; i++) adv[i] = (float)mrl_rng_normal(g);
  mrl_npg_report r;
  int st = mrl_policy_npg_update(p, fisher, obs, act, adv, N, 0.1, 10, 0.01, &r);
  /* by hand on q */
  size_t np = mrl_policy_nparams(q);
  float *old = malloc(np * 4), *gr = malloc(np * 4), *step = malloc(np * 4);
  memcpy(old, mrl_policy_params(q), np * 4);
  double obj;
  mrl_policy_grad_weighted_logp(q, obs, act, adv, N, 1.0 / N, &obj);
  memcpy(gr, mrl_policy_grad(q), np * 4);
  mrl_policy_npg_step(q, fisher, obs, fisher == MRL_FISHER_EMPIRICAL ? act : NULL, N, gr, 0.1, 10, 0.01, step);
  float *qp = mrl_policy_params(q);
  double gn = 0;
  for (size_t i = 0; i < np; i++) { qp[i] += step[i]; gn += (double)gr[i] * gr[i]; }
  double kl;
  mrl_policy_kl(q, old, NULL, obs, N, NULL, &kl);
  TAP_OK(st == MRL_OK && memcmp(mrl_policy_params(p), qp, np * 4) == 0 && r.objective == obj &&
             r.grad_norm == sqrt(gn) && r.mean_kl == kl,
         "npg_update (%s Fisher) = gradient, npg_step and θ + step by hand, bit for bit",
         fisher == MRL_FISHER_EMPIRICAL ? "empirical" : "analytic");
  TAP_OK(r.mean_kl > 0.002 && r.mean_kl < 0.05, "the step's KL %.4f is near max_kl 0.01", r.mean_kl);
  memcpy(old, mrl_policy_params(p), np * 4);
  adv[3] = NAN;
  st = mrl_policy_npg_update(p, fisher, obs, act, adv, N, 0.1, 10, 0.01, &r);
  TAP_OK(st != MRL_OK && memcmp(old, mrl_policy_params(p), np * 4) == 0,
         "a NaN advantage is refused and θ unchanged: %s", mrl_policy_error(p));
  free(old); free(gr); free(step);
  mrl_policy_free(p); mrl_policy_free(q);
  mrl_rng_free(g);
}

int main(void) {
  test_standardize();
  test_npg(MRL_FISHER_ANALYTIC);
  test_npg(MRL_FISHER_EMPIRICAL);
  return tap_done();
}
