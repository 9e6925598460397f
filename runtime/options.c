/*
** options.c — the option tables of moonrl.h (mrl_opts): which named fields
** a binding reads into each option struct, with their ranges and enum
** names, written once for every binding; and the defaults of the option
** structs that have no constructor elsewhere (mrl_pg_opts, mrl_norm_opts).
*/
#include <stddef.h>

#include "moonrl.h"

#define INT(s, f, lo, hi) {#f, MRL_OPT_INT, (int)offsetof(s, f), lo, hi, NULL}
#define NUM(s, f) {#f, MRL_OPT_NUM, (int)offsetof(s, f), 0, 0, NULL}
#define BOOL(s, f) {#f, MRL_OPT_BOOL, (int)offsetof(s, f), 0, 0, NULL}
#define ENUM(s, f, names) {#f, MRL_OPT_ENUM, (int)offsetof(s, f), 0, 0, names}
#define END {NULL, 0, 0, 0, 0, NULL}

static const mrl_opt ppo_config[] = {
  INT(mrl_ppo_config, epochs, 1, 1000000),
  INT(mrl_ppo_config, minibatch_size, 1, MRL_MAX_BATCH),
  NUM(mrl_ppo_config, lr),
  NUM(mrl_ppo_config, clip_eps),
  NUM(mrl_ppo_config, clip_value),
  NUM(mrl_ppo_config, ent_coef),
  NUM(mrl_ppo_config, vf_coef),
  NUM(mrl_ppo_config, max_grad_norm),
  NUM(mrl_ppo_config, target_kl),
  BOOL(mrl_ppo_config, normalize_advantages),
  INT(mrl_ppo_config, shards, 0, MRL_MAX_BATCH),
  END};

static const mrl_opt ppo_kl[] = {NUM(mrl_ppo_config, kl_beta), NUM(mrl_ppo_config, kl_target),
                                 END};

static const mrl_opt ppo_loss[] = {
  NUM(mrl_ppo_opts, clip_eps), NUM(mrl_ppo_opts, ent_coef),
  BOOL(mrl_ppo_opts, normalize_advantages), END};

static const mrl_opt trpo[] = {
  NUM(mrl_trpo_opts, max_kl), NUM(mrl_trpo_opts, damping), NUM(mrl_trpo_opts, backtrack_coef),
  INT(mrl_trpo_opts, cg_iters, 1, 100000), INT(mrl_trpo_opts, max_backtracks, 1, 1000), END};

/* in the order of mrl_estimator and mrl_baseline */
static const char *const estimators[] = {"reinforce", "reward_to_go", "is_trajectory",
                                         "is_per_decision", "is_full", "is_first_order",
                                         NULL};
static const char *const baselines[] = {"none", "mean", "optimal", "value", NULL};

static const mrl_opt pg[] = {
  ENUM(mrl_pg_opts, estimator, estimators),
  ENUM(mrl_pg_opts, baseline, baselines),
  NUM(mrl_pg_opts, gamma),
  NUM(mrl_pg_opts, weight_clip),
  BOOL(mrl_pg_opts, self_normalize),
  BOOL(mrl_pg_opts, normalize_advantages),
  END};

static const mrl_opt norm[] = {
  BOOL(mrl_norm_opts, update), NUM(mrl_norm_opts, clip_obs), NUM(mrl_norm_opts, clip_reward),
  NUM(mrl_norm_opts, epsilon), NUM(mrl_norm_opts, gamma), END};

/* in the order of mrl_activation */
static const char *const activations[] = {"tanh", "relu", NULL};

static const mrl_opt net[] = {
  INT(mrl_net_spec, in_dim, 1, MRL_MAX_WIDTH), ENUM(mrl_net_spec, activation, activations),
  INT(mrl_net_spec, out_dim, 1, MRL_MAX_WIDTH), NUM(mrl_net_spec, out_gain), END};

static const mrl_opt optim[] = {NUM(mrl_optim_hparams, beta1), NUM(mrl_optim_hparams, beta2),
                                NUM(mrl_optim_hparams, eps), END};

const mrl_opt *mrl_opts(mrl_opt_table which) {
  static const mrl_opt *const tables[] = {ppo_config, ppo_kl, ppo_loss, trpo, pg, norm, optim, net};
  if ((int)which < 0 || (size_t)which >= sizeof tables / sizeof tables[0]) return NULL;
  return tables[which];
}

mrl_pg_opts mrl_pg_opts_default(void) {
  mrl_pg_opts o = {MRL_EST_REINFORCE, MRL_BASELINE_NONE, 0.99, 0.0, 0, 0};
  return o;
}

mrl_norm_opts mrl_norm_opts_default(void) {
  mrl_norm_opts o = {NULL, NULL, 1, 10.0, 10.0, 1e-8, 0.99, NULL, NULL};
  return o;
}
