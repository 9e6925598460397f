/*
** test_rollout_put.c — filling a rollout one transition at a time (the
** in-game agent's buffer): put / put_outcome / bootstrap give V(s_t) and
** the bootstraps by hand (next step, 0 after termination, V(final_obs)
** after truncation, V(s_t) without one, V(next_obs) at the end), GAE runs
** on it, and mrl_rollout_behaviour measures how stale the log-probs are.
*/
#include <math.h>
#include <string.h>

#include "moonrl.h"
#include "tap.h"

enum { OD = 3, T = 6, N = 2 };

static float v1(mrl_net *v, const float *x) {
  float y;
  mrl_net_forward(v, x, 1, &y);
  return y;
}

int main(void) {
  int hidden[1] = {8};
  mrl_policy_spec spec = {.obs_dim = OD, .hidden = hidden, .nhidden = 1, .activation = MRL_TANH, .action_kind = MRL_DISCRETE, .action_n = 3, .low = NULL, .high = NULL, .init_log_std = 0.0, .out_gain = 1.0, .seed = 2};
  mrl_policy *p;
  mrl_net *v;
  mrl_rollout *r;
  mrl_policy_new(&p, &spec);
  mrl_net_new(&v, OD, hidden, 1, 1, MRL_TANH, 1.0, 4);
  mrl_rollout_new(&r, T, N, OD, 1);
  float obs[T][N][OD], fin[OD] = {0.5f, -0.5f, 2.0f}, next[N][OD];
  int ok = 1;
  for (int t = 0; t < T; t++)
    for (int i = 0; i < N; i++) {
      for (int k = 0; k < OD; k++) obs[t][i][k] = (float)(0.1 * t - 0.2 * i + 0.05 * k);
      float a, lp;
      mrl_policy_act(p, obs[t][i], 1, 0, &a, &lp);
      ok &= mrl_rollout_put(r, t, i, obs[t][i], &a, lp) == MRL_OK;
      /* env 0: terminated at t = 1, truncated with a final obs at t = 3;
      ** env 1: truncated without one at t = 2 */
      int term = i == 0 && t == 1, trunc = (i == 0 && t == 3) || (i == 1 && t == 2);
      ok &= mrl_rollout_put_outcome(r, t, i, 1.0 + t, term, trunc,
                                    i == 0 && t == 3 ? fin : NULL) == MRL_OK;
    }
  for (int i = 0; i < N; i++)
    for (int k = 0; k < OD; k++) next[i][k] = (float)(1 + i + k);
  TAP_OK(ok, "put and put_outcome fill %d steps of %d envs", T, N);
  TAP_OK(mrl_rollout_gae(r, 0.99, 0.95) == MRL_ESTATE, "GAE before bootstrap is refused");
  TAP_OK(mrl_rollout_bootstrap(r, v, &next[0][0]) == MRL_OK, "bootstrap");
  const float *val = mrl_rollout_field_ptr(r, MRL_RO_VALUES);
  const float *nv = mrl_rollout_field_ptr(r, MRL_RO_NEXT_VALUES);
  int vals_ok = 1, nv_ok = 1;
  for (int t = 0; t < T; t++)
    for (int i = 0; i < N; i++) {
      vals_ok &= fabsf(val[t * N + i] - v1(v, obs[t][i])) < 1e-6f;
      float want = t + 1 < T ? v1(v, obs[t + 1][i]) : v1(v, next[i]);
      if (i == 0 && t == 1) want = 0;
      if (i == 0 && t == 3) want = v1(v, fin);
      if (i == 1 && t == 2) want = v1(v, obs[t][i]);
      nv_ok &= fabsf(nv[t * N + i] - want) < 1e-6f;
    }
  TAP_OK(vals_ok, "values are V(s_t)");
  TAP_OK(nv_ok, "bootstraps: next state, 0 on termination, V(final_obs) or V(s_t) on truncation, V(next_obs) at the end");
  TAP_OK(mrl_rollout_gae(r, 0.99, 0.95) == MRL_OK, "GAE runs on a bootstrapped rollout");
  double ratio = 0, kl = 1;
  int st = mrl_rollout_behaviour(r, p, &ratio, &kl);
  TAP_OK(st == MRL_OK && fabs(ratio - 1) < 1e-5 && fabs(kl) < 1e-5,
         "behaviour: ratio %.7f and KL %.2g for unchanged parameters", ratio, kl);
  mrl_policy_params(p)[0] += 0.5f;
  mrl_policy_params(p)[5] -= 0.5f;
  mrl_rollout_behaviour(r, p, &ratio, &kl);
  /* by hand */
  float now[T * N];
  mrl_policy_evaluate(p, NULL, mrl_rollout_field_ptr(r, MRL_RO_OBS),
                      mrl_rollout_field_ptr(r, MRL_RO_ACTIONS), T * N, now, NULL);
  const float *mu = mrl_rollout_field_ptr(r, MRL_RO_LOGP);
  double rs = 0, ks = 0;
  for (int i = 0; i < T * N; i++) { rs += exp((double)now[i] - mu[i]); ks += mu[i] - (double)now[i]; }
  TAP_OK(fabs(ratio - 1) > 1e-4 && tap_close(ratio, rs / (T * N), 1e-12, 0) &&
             tap_close(kl, ks / (T * N), 1e-9, 1e-12),
         "behaviour after a change: mean ratio %.5f, mean log μ − log π %.5f", ratio, kl);
  float x[OD] = {0}, a = 0;
  TAP_OK(mrl_rollout_put(r, T, 0, x, &a, 0) == MRL_EINVAL && strstr(mrl_rollout_error(r), "outside"),
         "a step outside the rollout is refused: %s", mrl_rollout_error(r));
  TAP_OK(mrl_rollout_put_outcome(r, 0, N, 0, 0, 0, NULL) == MRL_EINVAL &&
             mrl_rollout_bootstrap(r, NULL, x) == MRL_EINVAL,
         "a bad env index and a NULL value net are refused");
  mrl_rollout_free(r);
  mrl_net_free(v);
  mrl_policy_free(p);
  return tap_done();
}
