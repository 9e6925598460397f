/* test_options.c — the option tables (mrl_opts): every entry lands inside
** its struct and on the field named, the ranges and enum names are the ones
** the bindings used to spell out, and the defaults of mrl_pg_opts and
** mrl_norm_opts. */
#include <stddef.h>
#include <string.h>

#include "moonrl.h"
#include "tap.h"

static const mrl_opt *find(mrl_opt_table t, const char *name) {
  for (const mrl_opt *o = mrl_opts(t); o && o->name; o++)
    if (strcmp(o->name, name) == 0) return o;
  return NULL;
}

static int count(mrl_opt_table t) {
  int n = 0;
  for (const mrl_opt *o = mrl_opts(t); o && o->name; o++) n++;
  return n;
}

/* Every entry of table t fits in a struct of size sz, with a field of the
** size its kind writes. */
static int inside(mrl_opt_table t, size_t sz) {
  for (const mrl_opt *o = mrl_opts(t); o && o->name; o++) {
    size_t w = o->kind == MRL_OPT_NUM ? sizeof(double) : sizeof(int);
    if (o->offset < 0 || (size_t)o->offset + w > sz) return 0;
  }
  return mrl_opts(t) != NULL;
}

int main(void) {
  TAP_OK(inside(MRL_OPTS_PPO_CONFIG, sizeof(mrl_ppo_config)) &&
             inside(MRL_OPTS_PPO_KL, sizeof(mrl_ppo_config)) &&
             inside(MRL_OPTS_PPO_LOSS, sizeof(mrl_ppo_opts)) &&
             inside(MRL_OPTS_TRPO, sizeof(mrl_trpo_opts)) &&
             inside(MRL_OPTS_PG, sizeof(mrl_pg_opts)) &&
             inside(MRL_OPTS_NORM, sizeof(mrl_norm_opts)) &&
             inside(MRL_OPTS_OPTIM, sizeof(mrl_optim_hparams)) &&
             inside(MRL_OPTS_NET, sizeof(mrl_net_spec)),
         "every entry lies inside its struct");
  TAP_OK(mrl_opts((mrl_opt_table)8) == NULL && mrl_opts((mrl_opt_table)-1) == NULL,
         "an unknown table is NULL");
  TAP_OK(count(MRL_OPTS_PPO_CONFIG) == 11 && count(MRL_OPTS_PPO_KL) == 2 &&
             count(MRL_OPTS_PPO_LOSS) == 3 && count(MRL_OPTS_TRPO) == 5 &&
             count(MRL_OPTS_PG) == 6 && count(MRL_OPTS_NORM) == 5 && count(MRL_OPTS_OPTIM) == 3 &&
             count(MRL_OPTS_NET) == 4,
         "the number of fields of each table");

  const mrl_opt *o = find(MRL_OPTS_PPO_CONFIG, "minibatch_size");
  TAP_OK(o && o->kind == MRL_OPT_INT && o->offset == (int)offsetof(mrl_ppo_config, minibatch_size) &&
             o->lo == 1 && o->hi == MRL_MAX_BATCH,
         "ppo minibatch_size: an int in [1, MRL_MAX_BATCH] at its field");
  o = find(MRL_OPTS_PPO_CONFIG, "normalize_advantages");
  TAP_OK(o && o->kind == MRL_OPT_BOOL &&
             o->offset == (int)offsetof(mrl_ppo_config, normalize_advantages),
         "ppo normalize_advantages: a boolean");
  TAP_OK(find(MRL_OPTS_PPO_CONFIG, "kl_beta") == NULL && find(MRL_OPTS_PPO_KL, "kl_beta") &&
             find(MRL_OPTS_PPO_KL, "kl_target")->offset == (int)offsetof(mrl_ppo_config, kl_target),
         "kl_beta and kl_target only in the KL table (the background trainer reads none)");
  o = find(MRL_OPTS_TRPO, "max_backtracks");
  TAP_OK(o && o->lo == 1 && o->hi == 1000 && find(MRL_OPTS_TRPO, "cg_iters")->hi == 100000,
         "trpo ranges");

  o = find(MRL_OPTS_PG, "baseline");
  TAP_OK(o && o->kind == MRL_OPT_ENUM && strcmp(o->names[MRL_BASELINE_OPTIMAL], "optimal") == 0 &&
             o->names[4] == NULL,
         "pg baseline names follow mrl_baseline");
  o = find(MRL_OPTS_NET, "activation");
  TAP_OK(o && o->kind == MRL_OPT_ENUM && strcmp(o->names[MRL_RELU], "relu") == 0 &&
             o->offset == (int)offsetof(mrl_net_spec, activation),
         "net activation names follow mrl_activation");
  o = find(MRL_OPTS_PG, "estimator");
  TAP_OK(o && strcmp(o->names[MRL_EST_IS_FIRST_ORDER], "is_first_order") == 0 &&
             o->names[6] == NULL,
         "pg estimator names follow mrl_estimator");

  /* a reader writes through the offsets: do as a binding does */
  mrl_pg_opts pg = mrl_pg_opts_default();
  TAP_OK(pg.estimator == MRL_EST_REINFORCE && pg.baseline == MRL_BASELINE_NONE &&
             pg.gamma == 0.99 && pg.weight_clip == 0 && !pg.self_normalize &&
             !pg.normalize_advantages,
         "mrl_pg_opts_default");
  *(double *)((char *)&pg + find(MRL_OPTS_PG, "gamma")->offset) = 0.5;
  *(int *)((char *)&pg + find(MRL_OPTS_PG, "self_normalize")->offset) = 1;
  TAP_OK(pg.gamma == 0.5 && pg.self_normalize == 1 && pg.weight_clip == 0,
         "writes through the offsets reach the named fields only");

  mrl_norm_opts no = mrl_norm_opts_default();
  TAP_OK(!no.obs && !no.reward && no.update == 1 && no.clip_obs == 10 && no.clip_reward == 10 &&
             no.epsilon == 1e-8 && no.gamma == 0.99 && !no.reduce,
         "mrl_norm_opts_default: VecNormalize's values, no handles");
  return tap_done();
}
