/*
** test_rollout_masks.c — invalid-action masks kept by a rollout and used
** by the PPO update: set_mask_width / put_mask / copy, their checks, and
** an update whose loss is the masked loss of the policy (one epoch over
** the whole batch), not the unmasked one; a masked action gains no
** probability however the update pushes.
*/
#include <math.h>
#include <string.h>

#include "moonrl.h"
#include "tap.h"

enum { OD = 3, K = 4, T = 8, N = 4 };

/* Acts with masks in every state, puts the transitions (action 1 pays +1,
** anything else -1), bootstraps and runs GAE; *never stays 1 while no
** masked action is drawn. */
static int fill(mrl_policy *p, mrl_net *v, mrl_rollout *r, float obs[T][N][OD],
                const float *mask, int *never) {
  int ok = 1;
  for (int t = 0; t < T; t++)
    for (int i = 0; i < N; i++) {
      float a, lp;
      ok &= mrl_policy_act_masked(p, obs[t][i], mask, 1, 0, &a, &lp) == MRL_OK;
      *never &= mask[(int)a] == 1.0f;
      ok &= mrl_rollout_put(r, t, i, obs[t][i], &a, lp) == MRL_OK;
      ok &= mrl_rollout_put_mask(r, t, i, mask) == MRL_OK;
      ok &= mrl_rollout_put_outcome(r, t, i, a == 1.0f ? 1.0 : -1.0, t == T - 1, 0, NULL) == MRL_OK;
    }
  float next[N][OD] = {{0}};
  ok &= mrl_rollout_bootstrap(r, v, &next[0][0]) == MRL_OK;
  ok &= mrl_rollout_gae(r, 0.9, 0.9) == MRL_OK;
  return ok;
}

int main(void) {
  int hidden[1] = {8};
  mrl_policy_spec spec = mrl_policy_spec_default();
  spec.obs_dim = OD;
  spec.hidden = hidden;
  spec.nhidden = 1;
  spec.action_kind = MRL_DISCRETE;
  spec.action_n = K;
  spec.out_gain = 1.0;
  spec.seed = 3;
  mrl_policy *p;
  mrl_net *v;
  mrl_rollout *r, *r2;
  TAP_OK(mrl_policy_new(&p, &spec) == MRL_OK && mrl_policy_maskable(p),
         "a categorical policy takes masks");
  mrl_net_new(&v, OD, hidden, 1, 1, MRL_TANH, 1.0, 4);
  mrl_rollout_new(&r, T, N, OD, 1);
  mrl_rollout_new(&r2, T, N, OD, 1);

  TAP_OK(mrl_rollout_mask_width(r) == 0 && mrl_rollout_masks(r) == NULL, "no masks at first");
  float mask[K] = {1, 1, 0, 0}, bad[K] = {1, 0.5f, 0, 0};
  TAP_OK(mrl_rollout_put_mask(r, 0, 0, mask) == MRL_EINVAL &&
             strstr(mrl_rollout_error(r), "set_mask_width first"),
         "put_mask without masks: %s", mrl_rollout_error(r));
  TAP_OK(mrl_rollout_set_mask_width(r, K) == MRL_OK && mrl_rollout_mask_width(r) == K,
         "set_mask_width(%d)", K);
  int ones = 1;
  for (int i = 0; i < T * N * K; i++) ones &= mrl_rollout_masks(r)[i] == 1.0f;
  TAP_OK(ones, "a new mask block allows every action");
  TAP_OK(mrl_rollout_put_mask(r, 0, 0, bad) == MRL_EINVAL &&
             strstr(mrl_rollout_error(r), "entry 2 of the mask is 0.5"),
         "a mask entry other than 0/1: %s", mrl_rollout_error(r));
  TAP_OK(mrl_rollout_put_mask(r, T, 0, mask) == MRL_EINVAL, "a step outside the rollout");
  TAP_OK(mrl_rollout_set_mask_width(r, -1) == MRL_EINVAL, "a negative width");

  /* every state: actions 2 and 3 invalid; the behaviour acted with masks */
  float obs[T][N][OD];
  for (int t = 0; t < T; t++)
    for (int i = 0; i < N; i++)
      for (int k = 0; k < OD; k++) obs[t][i][k] = (float)(0.3 * sin(1.0 + t + 2.0 * i + k));
  int never = 1, ok = fill(p, v, r, obs, mask, &never);
  TAP_OK(ok && never, "filled with masked actions (never 2 or 3)");

  TAP_OK(mrl_rollout_copy(r2, r) == MRL_OK && mrl_rollout_mask_width(r2) == K &&
             memcmp(mrl_rollout_masks(r2), mrl_rollout_masks(r),
                    sizeof(float) * T * N * K) == 0,
         "copy takes the masks");

  /* the update's loss is the masked loss over the whole batch (one epoch,
  ** one minibatch, no normalisation: the order does not matter) */
  const float *ro = mrl_rollout_field_ptr(r, MRL_RO_OBS);
  const float *ra = mrl_rollout_field_ptr(r, MRL_RO_ACTIONS);
  const float *rl = mrl_rollout_field_ptr(r, MRL_RO_LOGP);
  const float *radv = mrl_rollout_field_ptr(r, MRL_RO_ADVANTAGES);
  mrl_ppo_opts lo = {0.2, 0.0, 0};
  mrl_ppo_stats want_m, want_u;
  mrl_policy_ppo_loss_masked(p, ro, mrl_rollout_masks(r), ra, rl, radv, T * N, &lo, &want_m);
  mrl_policy_ppo_loss(p, ro, ra, rl, radv, T * N, &lo, &want_u);
  mrl_optim *po, *vo;
  mrl_optim_new(&po, MRL_ADAM, mrl_policy_nparams(p), 0.9, 0.999, 1e-8);
  mrl_optim_new(&vo, MRL_ADAM, mrl_net_nparams(v), 0.9, 0.999, 1e-8);
  mrl_ppo_config c = mrl_ppo_config_default();
  c.epochs = 1;
  c.minibatch_size = T * N;
  c.normalize_advantages = 0;
  c.ent_coef = 0.0;
  c.lr = 0.05;
  mrl_ppo_report rep;
  char err[256] = "";
  int st = mrl_ppo_update(p, v, po, vo, r, &c, &rep, err, sizeof err);
  TAP_OK(st == MRL_OK, "the update runs on a masked rollout (%s)", err);
  TAP_OK(tap_close(rep.policy_loss, want_m.policy_loss, 1e-6, 1e-7) &&
             fabs(want_m.policy_loss - want_u.policy_loss) > 1e-4,
         "its loss %.7f is the masked one %.7f, not the unmasked %.7f", rep.policy_loss,
         want_m.policy_loss, want_u.policy_loss);

  /* collect and update again: masked actions keep probability 0 while
  ** the valid one that pays takes over */
  for (int k = 0; k < 30 && st == MRL_OK; k++) {
    if (!fill(p, v, r, obs, mask, &never)) st = MRL_EINVAL;
    if (st == MRL_OK) st = mrl_ppo_update(p, v, po, vo, r, &c, &rep, err, sizeof err);
  }
  int masked_never = 1, learnt = 1;
  for (int t = 0; t < T && st == MRL_OK; t++)
    for (int a = 0; a < 200; a++) {
      float act, lp;
      mrl_policy_act_masked(p, obs[t][0], mask, 1, 0, &act, &lp);
      masked_never &= act == 0.0f || act == 1.0f;
    }
  float lp1[1], act1 = 1.0f;
  mrl_policy_evaluate_masked(p, NULL, obs[0][0], mask, &act1, 1, lp1, NULL);
  learnt = lp1[0] > logf(0.9f);
  TAP_OK(st == MRL_OK && never && masked_never && learnt,
         "after 31 collects and updates: masked actions never drawn, π(1 | s, mask) = %.3f", exp(lp1[0]));

  /* a mask width the policy does not take */
  mrl_rollout_set_mask_width(r, K + 1);
  st = mrl_ppo_update(p, v, po, vo, r, &c, &rep, err, sizeof err);
  TAP_OK(st == MRL_EINVAL && strstr(err, "masks of width 5"), "%s", err);
  TAP_OK(mrl_rollout_set_mask_width(r, 0) == MRL_OK && mrl_rollout_masks(r) == NULL,
         "width 0 drops the masks");

  mrl_optim_free(po);
  mrl_optim_free(vo);
  mrl_rollout_free(r);
  mrl_rollout_free(r2);
  mrl_net_free(v);
  mrl_policy_free(p);
  return tap_done();
}
