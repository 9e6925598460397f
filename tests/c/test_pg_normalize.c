/*
** test_pg_normalize.c — mrl_pg_gradient's normalize_advantages (the
** REINFORCE and off-policy trainers' standardised advantages, once in C):
** equal, up to float rounding, to grad_weighted_logp with the advantages
** standardised by hand (then importance-weighted for is_first_order); and
** refused for the estimators it does not apply to.  And the step that
** follows (mrl_policy_ascent_step, mrl_axpy): grad := −scale·ĝ, clipped,
** one optimiser step; a non-finite ĝ changes nothing.
*/
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "moonrl.h"
#include "tap.h"

enum { M = 40, OD = 3, NEP = 4 };

int main(void) {
  int hidden[1] = {8};
  mrl_policy_spec spec = {.obs_dim = OD, .hidden = hidden, .nhidden = 1, .activation = MRL_TANH, .action_kind = MRL_DISCRETE, .action_n = 3, .low = NULL, .high = NULL, .init_log_std = 0.0, .out_gain = 1.0, .seed = 4};
  mrl_policy *p;
  mrl_policy_new(&p, &spec);
  mrl_rng *g;
  mrl_rng_new(&g, 6);
  float obs[M * OD], act[M], rew[M], val[M], blogp[M], logp[M];
  int off[NEP + 1] = {0, 7, 19, 30, M};
  for (int i = 0; i < M * OD; i++) obs[i] = (float)mrl_rng_normal(g);
  mrl_policy_act(p, obs, M, 0, act, NULL);
  mrl_policy_evaluate(p, NULL, obs, act, M, logp, NULL);
  for (int i = 0; i < M; i++) {
    rew[i] = (float)mrl_rng_uniform(g);
    val[i] = (float)mrl_rng_normal(g);
    blogp[i] = logp[i] + (float)(0.3 * mrl_rng_normal(g));
  }
  const size_t np = mrl_policy_nparams(p);
  float *got = malloc(np * 4), *want = malloc(np * 4);
  const double gamma = 0.9;
  struct { mrl_estimator e; mrl_baseline b; const char *name; } cases[] = {
    {MRL_EST_REWARD_TO_GO, MRL_BASELINE_VALUE, "reward_to_go, value"},
    {MRL_EST_REINFORCE, MRL_BASELINE_MEAN, "reinforce, mean"},
    {MRL_EST_IS_FIRST_ORDER, MRL_BASELINE_VALUE, "is_first_order, value"},
  };
  for (int c = 0; c < 3; c++) {
    mrl_pg_opts o;
    memset(&o, 0, sizeof o);
    o.estimator = cases[c].e; o.baseline = cases[c].b; o.gamma = gamma;
    o.normalize_advantages = 1;
    int st = mrl_pg_gradient(p, obs, act, rew, blogp, val, off, NEP, &o, got, NULL);
    /* by hand */
    double G[M], R[NEP], a[M], s = 0, q = 0, sumR = 0;
    for (int i = 0; i < NEP; i++) {
      double acc = 0;
      for (int t = off[i + 1] - 1; t >= off[i]; t--) G[t] = acc = rew[t] + gamma * acc;
      R[i] = acc;
      sumR += acc;
    }
    for (int i = 0; i < NEP; i++)
      for (int t = off[i]; t < off[i + 1]; t++) {
        a[t] = cases[c].e == MRL_EST_REINFORCE ? R[i] - sumR / NEP : G[t] - val[t];
        s += a[t];
      }
    for (int t = 0; t < M; t++) q += (a[t] - s / M) * (a[t] - s / M);
    float w[M];
    for (int t = 0; t < M; t++) {
      double x = (a[t] - s / M) / (sqrt(q / (M - 1)) + 1e-8);
      if (cases[c].e == MRL_EST_IS_FIRST_ORDER) x *= exp((double)logp[t] - blogp[t]);
      w[t] = (float)x;
    }
    mrl_policy_grad_weighted_logp(p, obs, act, w, M, 1.0 / NEP, NULL);
    memcpy(want, mrl_policy_grad(p), np * 4);
    int close = st == MRL_OK;
    for (size_t k = 0; k < np; k++) close &= tap_close(got[k], want[k], 1e-4, 1e-6);
    TAP_OK(close, "normalize_advantages, %s: standardised by hand, then weighted", cases[c].name);
  }
  mrl_pg_opts o;
  memset(&o, 0, sizeof o);
  o.estimator = MRL_EST_IS_PER_DECISION; o.gamma = gamma; o.normalize_advantages = 1;
  TAP_OK(mrl_pg_gradient(p, obs, act, rew, blogp, NULL, off, NEP, &o, got, NULL) == MRL_EINVAL &&
             strstr(mrl_policy_error(p), "normalize_advantages"),
         "refused for is_per_decision: %s", mrl_policy_error(p));
  /* the step: SGD without momentum moves θ by lr·scale·ĝ (clipped) */
  mrl_optim *sgd;
  mrl_optim_new(&sgd, MRL_SGD, np, 0.0, 0.0, 0.0);
  float *before = malloc(np * 4), *y = malloc(np * 4);
  for (size_t k = 0; k < np; k++) { got[k] = (float)(k % 7) - 3.0f; y[k] = 0.5f; }
  mrl_axpy(y, 2.0, got, np);
  int axpy_ok = 1;
  for (size_t k = 0; k < np; k++) axpy_ok &= y[k] == (float)(0.5 + 2.0 * got[k]);
  TAP_OK(axpy_ok, "axpy: y + a·x, rounded once");
  memcpy(before, mrl_policy_params(p), np * 4);
  double norm = 0, want_norm = 0;
  for (size_t k = 0; k < np; k++) want_norm += 0.25 * got[k] * got[k];
  int st = mrl_policy_ascent_step(p, sgd, got, 0.5, 0.1, 0, &norm);
  int moved = st == MRL_OK && tap_close(norm, sqrt(want_norm), 1e-9, 0);
  for (size_t k = 0; k < np; k++)
    moved &= tap_close(mrl_policy_params(p)[k], before[k] + 0.1 * 0.5 * got[k], 1e-6, 1e-6);
  TAP_OK(moved, "ascent_step: θ += lr·scale·ĝ, norm %.4f before clipping", norm);
  memcpy(before, mrl_policy_params(p), np * 4);
  st = mrl_policy_ascent_step(p, sgd, got, 1.0, 0.1, 1.0, &norm);
  double step2 = 0;
  for (size_t k = 0; k < np; k++) {
    double dk = mrl_policy_params(p)[k] - before[k];
    step2 += dk * dk;
  }
  TAP_OK(st == MRL_OK && tap_close(sqrt(step2), 0.1, 1e-3, 0),
         "ascent_step: the norm clip bounds the step to lr·max_grad_norm (%.5f)", sqrt(step2));
  memcpy(before, mrl_policy_params(p), np * 4);
  got[2] = NAN;
  TAP_OK(mrl_policy_ascent_step(p, sgd, got, 1.0, 0.1, 1.0, &norm) == MRL_ENONFINITE &&
             memcmp(before, mrl_policy_params(p), np * 4) == 0,
         "ascent_step: a NaN in ĝ is refused, θ unchanged");
  mrl_optim_free(sgd);
  free(before); free(y);
  free(got); free(want);
  mrl_policy_free(p);
  mrl_rng_free(g);
  return tap_done();
}
