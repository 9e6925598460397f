/* test_rollout.c — collection over the counter env: the recorded rows,
** values and bootstrap values (terminated, truncated, running), GAE per
** column, error propagation, determinism. */
#include <math.h>

#include "counter_env.h"
#include "tap.h"

enum { T = 7, N = 3 };

static mrl_vecenv *make_env(counter_env **pe, int fail_at) {
  counter_env *e = ce_new(N, 1);
  e->term_at[0] = 3;   /* env 0 terminates every 3 steps */
  e->term_at[1] = 0;   /* env 1 is truncated every 4 */
  e->term_at[2] = 2;   /* env 2 terminates every 2 */
  e->trunc_at = 4;
  e->fail_at_step = fail_at;
  mrl_env_desc d = {.num_envs = N, .obs_dim = 2, .action_kind = MRL_DISCRETE, .action_n = 2};
  mrl_vecenv *v = NULL;
  if (mrl_vecenv_new(&v, &ce_ops, e, &d) != MRL_OK) return NULL;
  *pe = e;
  return v;
}

static mrl_policy *make_policy(int obs_dim, uint64_t seed) {
  int hidden[1] = {8};
  mrl_policy_spec s = {.obs_dim = obs_dim, .hidden = hidden, .nhidden = 1, .activation = MRL_TANH, .action_kind = MRL_DISCRETE, .action_n = 2, .low = NULL, .high = NULL, .init_log_std = 0.0, .out_gain = 0.01, .seed = seed};
  mrl_policy *p = NULL;
  return mrl_policy_new(&p, &s) == MRL_OK ? p : NULL;
}

static mrl_net *make_value(void) {
  int hidden[1] = {8};
  mrl_net *n = NULL;
  return mrl_net_new(&n, 2, hidden, 1, 1, MRL_TANH, 1.0, 9) == MRL_OK ? n : NULL;
}

static float value_of(mrl_net *net, float a, float b) {
  float x[2] = {a, b}, y;
  mrl_net_forward(net, x, 1, &y);
  return y;
}

static void test_collect(void) {
  counter_env *e;
  mrl_vecenv *v = make_env(&e, 0);
  mrl_policy *p = make_policy(2, 5);
  mrl_net *val = make_value();
  mrl_rollout *r = NULL;
  TAP_OK(v && p && val, "env, policy, value created");
  TAP_OK(mrl_rollout_new(&r, T, N, 2, 1) == MRL_OK, "rollout created");
  TAP_OK(mrl_rollout_steps(r) == T && mrl_rollout_num_envs(r) == N, "steps, num_envs");
  TAP_OK(mrl_rollout_collect(r, v, p, val) == MRL_ESTATE,
         "collect before the vecenv is reset fails");
  TAP_OK(strstr(mrl_rollout_error(r), "reset") != NULL, "...saying so: %s",
         mrl_rollout_error(r));
  TAP_OK(mrl_rollout_gae(r, 0.99, 0.95) == MRL_ESTATE, "gae without a rollout: ESTATE");
  e->steps_done = 0;
  mrl_vecenv_reset(v, 10);
  TAP_OK(mrl_rollout_collect(r, v, p, val) == MRL_OK, "collect: %s", mrl_rollout_error(r));

  const float *obs = mrl_rollout_field_ptr(r, MRL_RO_OBS);
  const float *act = mrl_rollout_field_ptr(r, MRL_RO_ACTIONS);
  const float *rew = mrl_rollout_field_ptr(r, MRL_RO_REWARDS);
  const float *logp = mrl_rollout_field_ptr(r, MRL_RO_LOGP);
  const float *vals = mrl_rollout_field_ptr(r, MRL_RO_VALUES);
  const float *nv = mrl_rollout_field_ptr(r, MRL_RO_NEXT_VALUES);
  const uint8_t *te = mrl_rollout_terminated(r), *tr = mrl_rollout_truncated(r);

  /* counters: env 0 cycles 0,1,2; env 1 cycles 0..3; env 2 cycles 0,1 */
  int rows_ok = 1, rew_ok = 1, act_ok = 1, flags_ok = 1;
  for (int t = 0; t < T; t++) {
    int c[N] = {t % 3, t % 4, t % 2};
    for (int i = 0; i < N; i++) {
      size_t k = (size_t)t * N + i;
      rows_ok = rows_ok && obs[2 * k] == (float)c[i];
      act_ok = act_ok && (act[k] == 0 || act[k] == 1);
      rew_ok = rew_ok && rew[k] == 1 + act[k];
    }
    flags_ok = flags_ok && te[t * N + 0] == (t % 3 == 2) && tr[t * N + 0] == 0 &&
               tr[t * N + 1] == (t % 4 == 3) && te[t * N + 1] == 0 &&
               te[t * N + 2] == (t % 2 == 1) && tr[t * N + 2] == 0;
  }
  TAP_OK(rows_ok, "obs rows are the observations acted on (time-major)");
  TAP_OK(act_ok, "discrete actions are indices");
  TAP_OK(rew_ok, "rewards recorded per step and env");
  TAP_OK(flags_ok, "terminated/truncated recorded");

  float lp[T * N];
  mrl_policy_evaluate(p, NULL, obs, act, T * N, lp, NULL);
  int lp_ok = 1;
  for (int k = 0; k < T * N; k++) lp_ok = lp_ok && tap_close(logp[k], lp[k], 1e-5, 1e-6);
  TAP_OK(lp_ok, "logp is log pi(a|s) of the recorded rows");

  int v_ok = 1;
  for (int k = 0; k < T * N; k++)
    v_ok = v_ok && tap_close(vals[k], value_of(val, obs[2 * k], obs[2 * k + 1]), 1e-5, 1e-6);
  TAP_OK(v_ok, "values[t] = V(obs[t])");

  int nv_live = 1, nv_term = 1, nv_trunc = 1;
  for (int t = 0; t < T; t++)
    for (int i = 0; i < N; i++) {
      size_t k = (size_t)t * N + i;
      if (te[k]) {
        nv_term = nv_term && nv[k] == 0;
      } else if (tr[k]) {
        /* the true final observation: counter 4, seed of that episode */
        uint64_t seed = 10 + i + 1000 * (uint64_t)(t / 4);
        float want = value_of(val, 4, (float)(seed % 10000));
        nv_trunc = nv_trunc && tap_close(nv[k], want, 1e-5, 1e-6);
      } else if (t < T - 1) {
        nv_live = nv_live && nv[k] == vals[k + N];
      }
    }
  TAP_OK(nv_term, "next_values = 0 after termination");
  TAP_OK(nv_trunc, "next_values = V(final_obs) after truncation (not V of the reset obs)");
  TAP_OK(nv_live, "next_values[t] = values[t+1] while running");
  const float *cur = mrl_vecenv_obs(v);
  size_t last = (size_t)(T - 1) * N;  /* env 0 is running at t = T-1 */
  TAP_OK(!te[last] && !tr[last] &&
             tap_close(nv[last], value_of(val, cur[0], cur[1]), 1e-5, 1e-6),
         "last step bootstraps from V of the current observation");

  TAP_OK(mrl_rollout_gae(r, 0.9, 0.8) == MRL_OK, "gae");
  const float *adv = mrl_rollout_field_ptr(r, MRL_RO_ADVANTAGES);
  const float *ret = mrl_rollout_field_ptr(r, MRL_RO_RETURNS);
  int gae_ok = 1;
  for (int i = 0; i < N; i++) {
    float cr[T], cv[T], cn[T], ca[T], crt[T];
    uint8_t ct[T], cu[T];
    for (int t = 0; t < T; t++) {
      size_t k = (size_t)t * N + i;
      cr[t] = rew[k]; cv[t] = vals[k]; cn[t] = nv[k]; ct[t] = te[k]; cu[t] = tr[k];
    }
    mrl_gae(cr, cv, cn, ct, cu, T, 1, 0.9, 0.8, ca, crt);
    for (int t = 0; t < T; t++)
      gae_ok = gae_ok && ca[t] == adv[t * N + i] && crt[t] == ret[t * N + i];
  }
  TAP_OK(gae_ok, "gae per env column equals mrl_gae on the contiguous column");
  /* hand check of one value: env 0 terminates at t = 2 */
  double d2 = rew[2 * N] - vals[2 * N];
  TAP_OK(tap_close(adv[2 * N], d2, 1e-6, 1e-6), "A at a terminal step = r - V");
  TAP_OK(mrl_rollout_gae(r, 1.5, 0.9) == MRL_EINVAL, "gamma > 1 refused");

  /* without a value net */
  TAP_OK(mrl_rollout_collect(r, v, p, NULL) == MRL_OK, "collect without a value");
  int zero = 1;
  for (int k = 0; k < T * N; k++) zero = zero && vals[k] == 0 && nv[k] == 0;
  TAP_OK(zero, "values and next_values are 0 without a value net");
  TAP_OK(obs[0] == (float)(7 % 3), "a second collect continues from the env's state");

  /* mismatches */
  mrl_policy *p3 = make_policy(3, 5);
  TAP_OK(mrl_rollout_collect(r, v, p3, NULL) == MRL_EINVAL, "policy obs_dim mismatch refused");
  TAP_OK(strstr(mrl_rollout_error(r), "obs_dim 3") != NULL, "message: %s", mrl_rollout_error(r));
  mrl_rollout *r2 = NULL;
  mrl_rollout_new(&r2, T, N + 1, 2, 1);
  TAP_OK(mrl_rollout_collect(r2, v, p, NULL) == MRL_EINVAL, "num_envs mismatch refused");
  mrl_net *bad = NULL;
  int hid[1] = {4};
  mrl_net_new(&bad, 2, hid, 1, 2, MRL_TANH, 1.0, 1);
  TAP_OK(mrl_rollout_collect(r, v, p, bad) == MRL_EINVAL, "value net with 2 outputs refused");
  mrl_net_free(bad);
  mrl_rollout_free(r2);
  mrl_policy_free(p3);
  mrl_rollout_free(r);
  mrl_net_free(val);
  mrl_policy_free(p);
  mrl_vecenv_free(v);
}

static void test_new_validation(void) {
  mrl_rollout *r = (mrl_rollout *)1;
  TAP_OK(mrl_rollout_new(&r, 0, 1, 1, 1) == MRL_EINVAL && r == NULL, "steps 0 refused");
  TAP_OK(mrl_rollout_new(&r, 1, 1, 0, 1) == MRL_EINVAL, "obs_dim 0 refused");
  TAP_OK(mrl_rollout_new(&r, 1, 1, 1, 0) == MRL_EINVAL, "action_width 0 refused");
  TAP_OK(mrl_rollout_new(&r, 65536, 65536, 1, 1) == MRL_EINVAL, "steps*num_envs over MRL_MAX_BATCH refused");
}

static void test_error_propagation(void) {
  counter_env *e;
  mrl_vecenv *v = make_env(&e, 5);
  mrl_policy *p = make_policy(2, 5);
  mrl_rollout *r = NULL;
  mrl_rollout_new(&r, T, N, 2, 1);
  mrl_vecenv_reset(v, 0);
  TAP_OK(mrl_rollout_collect(r, v, p, NULL) == MRL_EENV, "env failure -> MRL_EENV");
  TAP_OK(strstr(mrl_rollout_error(r), "step 4") &&
             strstr(mrl_rollout_error(r), "counter env copy 1: boom at step 5"),
         "message names the step and carries the env's: %s", mrl_rollout_error(r));
  TAP_OK(mrl_rollout_gae(r, 0.99, 0.95) == MRL_ESTATE, "a failed collect leaves no rollout for gae");
  mrl_vecenv_reset(v, 0);
  TAP_OK(mrl_rollout_collect(r, v, p, NULL) == MRL_OK, "collect works again after a reset");
  mrl_rollout_free(r);
  mrl_policy_free(p);
  mrl_vecenv_free(v);
}

static void test_determinism(void) {
  float *bufs[2][3];
  for (int run = 0; run < 2; run++) {
    counter_env *e;
    mrl_vecenv *v = make_env(&e, 0);
    mrl_policy *p = make_policy(2, 77);
    mrl_net *val = make_value();
    mrl_rollout *r = NULL;
    mrl_rollout_new(&r, T, N, 2, 1);
    mrl_vecenv_reset(v, 3);
    mrl_rollout_collect(r, v, p, val);
    mrl_rollout_gae(r, 0.99, 0.95);
    mrl_rollout_field f[3] = {MRL_RO_ACTIONS, MRL_RO_LOGP, MRL_RO_ADVANTAGES};
    for (int k = 0; k < 3; k++) {
      bufs[run][k] = malloc(T * N * sizeof(float));
      memcpy(bufs[run][k], mrl_rollout_field_ptr(r, f[k]), T * N * sizeof(float));
    }
    mrl_rollout_free(r);
    mrl_net_free(val);
    mrl_policy_free(p);
    mrl_vecenv_free(v);
  }
  int same = 1;
  for (int k = 0; k < 3; k++) {
    same = same && memcmp(bufs[0][k], bufs[1][k], T * N * sizeof(float)) == 0;
    free(bufs[0][k]);
    free(bufs[1][k]);
  }
  TAP_OK(same, "same seeds: identical actions, logp and advantages, bit for bit");
}

int main(void) {
  test_new_validation();
  test_collect();
  test_error_propagation();
  test_determinism();
  return tap_done();
}
