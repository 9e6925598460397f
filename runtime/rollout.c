/*
** rollout.c — the time-major rollout buffer and the collection loop.
**
** Every field is one contiguous block [steps][num_envs][…], so the rows of
** step t are exactly the batch the policy acts on: mrl_policy_act writes its
** actions and log-probs straight into the buffer, and GAE reads an env's
** column in place with stride num_envs.  All scratch is allocated at
** creation, but for the transposed weight copies a collect reads its
** networks through (mlp_packed.h), which grow on the first collect with
** larger networks and are reused after.
*/
#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "mlp_packed.h"
#include "moonrl.h"
#include "normalize_impl.h"

struct mrl_rollout {
  int steps, num_envs, obs_dim, width;
  float *obs;            /* [T][N][obs_dim] */
  float *actions;        /* [T][N][width] */
  float *f[6];           /* rewards, logp, values, next_values, advantages, returns: [T][N] */
  uint8_t *terminated, *truncated;  /* [T][N] */
  /* scratch for bootstrapping truncated envs */
  float *gather_obs;     /* [N][obs_dim] final observations of truncated envs */
  float *gather_val;     /* [N] */
  int *gather_idx;       /* [N] env index of each gathered row */
  float *wt;             /* [wt_cap] transposed policy then value weights */
  size_t wt_cap;
  uint8_t *dones;        /* [N] terminated or truncated (reward norm) */
  mrl_norm_opts norm;    /* normalisation (norm.obs/reward NULL: off) */
  float *final_obs;      /* [T][N][obs_dim] put_outcome's, made on first use */
  uint8_t *has_final;    /* [T][N] */
  float *masks;          /* [T][N][mask_width] invalid-action masks, or NULL */
  int mask_width;
  int collected;         /* the fields hold a complete rollout */
  int have_values;       /* it was collected with a value net */
  char err[512];
};

enum { RO_REWARDS, RO_LOGP, RO_VALUES, RO_NEXT_VALUES, RO_ADV, RO_RETURNS };

static void ro_seterr(mrl_rollout *r, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));
static void ro_seterr(mrl_rollout *r, const char *fmt, ...) {
  va_list ap;
  va_start(ap, fmt);
  vsnprintf(r->err, sizeof r->err, fmt, ap);
  va_end(ap);
}

void mrl_rollout_free(mrl_rollout *r) {
  if (!r) return;
  free(r->obs);
  free(r->actions);
  for (int k = 0; k < 6; k++) free(r->f[k]);
  free(r->terminated);
  free(r->truncated);
  free(r->gather_obs);
  free(r->gather_val);
  free(r->gather_idx);
  free(r->dones);
  mrl_rms_free(r->norm.obs);         /* the rollout's references */
  mrl_retnorm_free(r->norm.reward);
  free(r->final_obs);
  free(r->has_final);
  free(r->masks);
  free(r->wt);
  free(r);
}

int mrl_rollout_new(mrl_rollout **out, int steps, int num_envs, int obs_dim,
                    int action_width) {
  if (!out) return MRL_EINVAL;
  *out = NULL;
  if (steps < 1 || num_envs < 1 || obs_dim < 1 || obs_dim > MRL_MAX_WIDTH ||
      action_width < 1 || action_width > MRL_MAX_WIDTH ||
      num_envs > MRL_MAX_BATCH || steps > MRL_MAX_BATCH)
    return MRL_EINVAL;
  /* T·N rows must be a valid batch (the trainers evaluate them at once);
  ** with the widths below MRL_MAX_WIDTH the products fit in size_t. */
  size_t rows = (size_t)steps * (size_t)num_envs;
  if (rows > MRL_MAX_BATCH) return MRL_EINVAL;
  mrl_rollout *r = calloc(1, sizeof *r);
  if (!r) return MRL_ENOMEM;
  r->steps = steps;
  r->num_envs = num_envs;
  r->obs_dim = obs_dim;
  r->width = action_width;
  r->obs = calloc(rows * (size_t)obs_dim, sizeof(float));
  r->actions = calloc(rows * (size_t)action_width, sizeof(float));
  int ok = r->obs && r->actions;
  for (int k = 0; k < 6; k++) {
    r->f[k] = calloc(rows, sizeof(float));
    ok = ok && r->f[k];
  }
  r->terminated = calloc(rows, 1);
  r->truncated = calloc(rows, 1);
  r->gather_obs = calloc((size_t)num_envs * (size_t)obs_dim, sizeof(float));
  r->gather_val = calloc((size_t)num_envs, sizeof(float));
  r->gather_idx = calloc((size_t)num_envs, sizeof(int));
  r->dones = calloc((size_t)num_envs, 1);
  ok = ok && r->terminated && r->truncated && r->gather_obs && r->gather_val &&
       r->gather_idx && r->dones;
  if (!ok) {
    mrl_rollout_free(r);
    return MRL_ENOMEM;
  }
  *out = r;
  return MRL_OK;
}

const char *mrl_rollout_error(const mrl_rollout *r) {
  return r ? r->err : "NULL rollout";
}
int mrl_rollout_steps(const mrl_rollout *r) { return r ? r->steps : 0; }
int mrl_rollout_num_envs(const mrl_rollout *r) { return r ? r->num_envs : 0; }
int mrl_rollout_obs_dim(const mrl_rollout *r) { return r ? r->obs_dim : 0; }
int mrl_rollout_action_width(const mrl_rollout *r) { return r ? r->width : 0; }

float *mrl_rollout_field_ptr(mrl_rollout *r, mrl_rollout_field f) {
  if (!r) return NULL;
  switch (f) {
    case MRL_RO_OBS: return r->obs;
    case MRL_RO_ACTIONS: return r->actions;
    case MRL_RO_REWARDS: return r->f[RO_REWARDS];
    case MRL_RO_LOGP: return r->f[RO_LOGP];
    case MRL_RO_VALUES: return r->f[RO_VALUES];
    case MRL_RO_NEXT_VALUES: return r->f[RO_NEXT_VALUES];
    case MRL_RO_ADVANTAGES: return r->f[RO_ADV];
    case MRL_RO_RETURNS: return r->f[RO_RETURNS];
  }
  return NULL;
}
uint8_t *mrl_rollout_terminated(mrl_rollout *r) { return r ? r->terminated : NULL; }
uint8_t *mrl_rollout_truncated(mrl_rollout *r) { return r ? r->truncated : NULL; }

int mrl_rollout_set_norm(mrl_rollout *r, const mrl_norm_opts *o) {
  if (!r) return MRL_EINVAL;
  if (!o || (!o->obs && !o->reward)) {
    mrl_rms_free(r->norm.obs);
    mrl_retnorm_free(r->norm.reward);
    memset(&r->norm, 0, sizeof r->norm);
    return MRL_OK;
  }
  if (o->obs && mrl_rms_dim(o->obs) != r->obs_dim) {
    ro_seterr(r, "set_norm: observation statistics of dim %d for obs_dim %d",
              mrl_rms_dim(o->obs), r->obs_dim);
    return MRL_EINVAL;
  }
  if (o->reward && mrl_retnorm_num_envs(o->reward) != r->num_envs) {
    ro_seterr(r, "set_norm: a reward normaliser of %d envs for %d",
              mrl_retnorm_num_envs(o->reward), r->num_envs);
    return MRL_EINVAL;
  }
  if ((o->obs && !(o->clip_obs > 0.0)) ||
      (o->reward && !(o->clip_reward > 0.0 && o->gamma >= 0.0 &&
                      o->gamma <= 1.0)) ||
      !(o->epsilon >= 0.0 && o->epsilon < 1.0)) {
    ro_seterr(r, "set_norm: clip_obs %g and clip_reward %g must be > 0, gamma "
              "%g in [0, 1], epsilon %g in [0, 1)", o->clip_obs, o->clip_reward,
              o->gamma, o->epsilon);
    return MRL_EINVAL;
  }
  /* take the new references before letting go of the old (the same
  ** handles may be given again) */
  rms_retain(o->obs);
  retnorm_retain(o->reward);
  mrl_rms_free(r->norm.obs);
  mrl_retnorm_free(r->norm.reward);
  r->norm = *o;
  r->norm.update = o->update != 0;
  return MRL_OK;
}

/* The step's raw observations obs_t (rows) merged into the statistics in
** training mode, then normalised in place. */
static int ro_norm_obs(mrl_rollout *r, float *obs, int rows, int update,
                       int t) {
  mrl_norm_opts *o = &r->norm;
  if (!o->obs) return MRL_OK;
  int st = update ? mrl_rms_update_reduce(o->obs, obs, rows, o->reduce,
                                          o->reduce_ud)
                  : MRL_OK;
  if (st == MRL_OK)
    st = mrl_rms_apply(o->obs, obs, rows, o->clip_obs, o->epsilon, obs);
  if (st != MRL_OK)
    ro_seterr(r, "collect: observation normalisation at step %d: %s", t,
              mrl_rms_error(o->obs));
  return st;
}

/* V over the truncated envs' final observations only, written into
** next_values row nv; terminated envs get 0, the others are left for the
** next step's values. */
static int ro_bootstrap_ended(mrl_rollout *r, mrl_vecenv *env, mrl_net *value,
                              float *nv, const uint8_t *term,
                              const uint8_t *trunc) {
  int n = r->num_envs, k = 0;
  size_t d = (size_t)r->obs_dim;
  const float *fin = mrl_vecenv_final_obs(env);
  for (int i = 0; i < n; i++) {
    if (term[i]) {
      nv[i] = 0.0f;
    } else if (trunc[i]) {
      if (value) {
        memcpy(r->gather_obs + (size_t)k * d, fin + (size_t)i * d,
               d * sizeof(float));
        r->gather_idx[k++] = i;
      } else {
        nv[i] = 0.0f;
      }
    }
  }
  if (k == 0) return MRL_OK;
  /* normalised with the step's statistics, never merged into them */
  int st = ro_norm_obs(r, r->gather_obs, k, 0, -1);
  if (st != MRL_OK) return st;
  st = mrl_net_forward(value, r->gather_obs, k, r->gather_val);
  if (st != MRL_OK) {
    ro_seterr(r, "collect: value forward on final observations: %s",
              mrl_net_error(value));
    return st;
  }
  for (int j = 0; j < k; j++) nv[r->gather_idx[j]] = r->gather_val[j];
  return MRL_OK;
}

/* next_values row nv for the envs that did not end: V(s_{t+1}) from vals. */
static void ro_fill_live(int n, float *nv, const float *vals,
                         const uint8_t *term, const uint8_t *trunc) {
  for (int i = 0; i < n; i++)
    if (!term[i] && !trunc[i]) nv[i] = vals[i];
}

static const char *ro_kind_name(mrl_action_kind k) {
  return k == MRL_DISCRETE ? "discrete" : k == MRL_BOX ? "box" : "composite";
}

/* The policy's actions are the env's: the same kind and size, and for a
** composite action the same parts in the same order. */
static int ro_policy_fits(const mrl_policy *p, const mrl_env_desc *d) {
  if (mrl_policy_action_kind(p) != d->action_kind) return 0;
  if (d->action_kind != MRL_COMPOSITE) return mrl_policy_action_n(p) == d->action_n;
  if (mrl_policy_nparts(p) != d->nparts) return 0;
  for (int k = 0; k < d->nparts; k++) {
    mrl_action_part q = mrl_policy_part(p, k);
    if (q.type != d->parts[k].type || q.n != d->parts[k].n) return 0;
  }
  return 1;
}

int mrl_rollout_collect(mrl_rollout *r, mrl_vecenv *env, mrl_policy *p,
                        mrl_net *value) {
  if (!r) return MRL_EINVAL;
  r->collected = 0;
  if (rms_closed(r->norm.obs)) {  /* its owner closed it: collect without */
    mrl_rms_free(r->norm.obs);
    r->norm.obs = NULL;
  }
  if (retnorm_closed(r->norm.reward)) {
    mrl_retnorm_free(r->norm.reward);
    r->norm.reward = NULL;
  }
  if (!env || !p) {
    ro_seterr(r, "collect: %s is NULL", env ? "policy" : "vecenv");
    return MRL_EINVAL;
  }
  const mrl_env_desc *d = mrl_vecenv_desc(env);
  int n = r->num_envs;
  if (d->num_envs != n || d->obs_dim != r->obs_dim) {
    ro_seterr(r, "collect: the vecenv has %d envs of obs_dim %d, the rollout "
              "%d envs of obs_dim %d", d->num_envs, d->obs_dim, n, r->obs_dim);
    return MRL_EINVAL;
  }
  if (mrl_policy_obs_dim(p) != r->obs_dim ||
      mrl_policy_action_width(p) != r->width || !ro_policy_fits(p, d)) {
    ro_seterr(r, "collect: the policy (obs_dim %d, %s %d) does not fit the "
              "env (obs_dim %d, %s %d) or the rollout (action width %d)",
              mrl_policy_obs_dim(p),
              ro_kind_name(mrl_policy_action_kind(p)), mrl_policy_action_n(p), d->obs_dim,
              ro_kind_name(d->action_kind), d->action_n,
              r->width);
    return MRL_EINVAL;
  }
  /* An env that gives action masks: the policy acts with them and the
  ** rollout keeps them for the update's losses. */
  const int mw = mrl_vecenv_mask_width(env);
  if (mw && (!mrl_policy_maskable(p) || mw != mrl_policy_out_dim(p))) {
    ro_seterr(r, "collect: the env gives action masks of width %d, the policy takes %s",
              mw, mrl_policy_maskable(p) ? "masks of its output width" : "no masks");
    return MRL_EINVAL;
  }
  if (mw != r->mask_width) {
    int st = mrl_rollout_set_mask_width(r, mw);
    if (st != MRL_OK) return st;
  }
  if (value && (mrl_net_in_dim(value) != r->obs_dim ||
                mrl_net_out_dim(value) != 1)) {
    ro_seterr(r, "collect: the value net maps %d -> %d, expected %d -> 1",
              mrl_net_in_dim(value), mrl_net_out_dim(value), r->obs_dim);
    return MRL_EINVAL;
  }
  size_t od = (size_t)r->obs_dim, w = (size_t)r->width, row = (size_t)n;
  /* The parameters stay fixed through a collect: transpose the weights once
  ** (a few rows per step never repay it per call; one or two rows do not
  ** use it at all).  An env that changes them mid-collect is not seen. */
  const float *pwt = NULL, *vwt = NULL;
  if (n >= 3) {
    size_t np = policy_wt_floats(p), nv = value ? net_wt_floats(value) : 0;
    if (np + nv > r->wt_cap) {
      float *g = mlp_alloc_floats(np + nv);
      if (!g) {
        ro_seterr(r, "collect: out of memory for a weight copy");
        return MRL_ENOMEM;
      }
      free(r->wt);
      r->wt = g;
      r->wt_cap = np + nv;
    }
    policy_pack_wt(p, r->wt);
    pwt = r->wt;
    if (value) {
      net_pack_wt(value, r->wt + np);
      vwt = r->wt + np;
    }
  }
  float *values = r->f[RO_VALUES], *next_values = r->f[RO_NEXT_VALUES];
  if (!value) {
    memset(values, 0, (size_t)r->steps * row * sizeof(float));
    memset(next_values, 0, (size_t)r->steps * row * sizeof(float));
  }
  for (int t = 0; t < r->steps; t++) {
    float *obs_t = r->obs + (size_t)t * row * od;
    float *act_t = r->actions + (size_t)t * row * w;
    float *val_t = values + (size_t)t * row;
    uint8_t *term_t = r->terminated + (size_t)t * row;
    uint8_t *trunc_t = r->truncated + (size_t)t * row;
    memcpy(obs_t, mrl_vecenv_obs(env), row * od * sizeof(float));
    int st = ro_norm_obs(r, obs_t, n, r->norm.update, t);
    if (st != MRL_OK) return st;
    float *logp_t = r->f[RO_LOGP] + (size_t)t * row;
    if (mw) {
      float *mask_t = r->masks + (size_t)t * row * (size_t)mw;
      memcpy(mask_t, mrl_vecenv_masks(env), row * (size_t)mw * sizeof(float));
      st = mrl_policy_act_masked(p, obs_t, mask_t, n, 0, act_t, logp_t);
    } else {
      st = pwt ? policy_act_wt(p, pwt, obs_t, n, act_t, logp_t)
               : mrl_policy_act(p, obs_t, n, 0, act_t, logp_t);
    }
    if (st != MRL_OK) {
      ro_seterr(r, "collect: policy act at step %d: %s", t, mrl_policy_error(p));
      return st;
    }
    if (value) {
      st = vwt ? net_forward_wt(value, vwt, obs_t, n, val_t)
               : mrl_net_forward(value, obs_t, n, val_t);
      if (st != MRL_OK) {
        ro_seterr(r, "collect: value forward at step %d: %s", t,
                  mrl_net_error(value));
        return st;
      }
      /* V(s_t) is the bootstrap of step t−1 for the envs that went on. */
      if (t > 0)
        ro_fill_live(n, next_values + (size_t)(t - 1) * row, val_t,
                     term_t - row, trunc_t - row);
    }
    st = mrl_vecenv_step(env, act_t);
    if (st != MRL_OK) {
      ro_seterr(r, "collect: step %d: %s", t, mrl_vecenv_error(env));
      return st;
    }
    float *rew_t = r->f[RO_REWARDS] + (size_t)t * row;
    memcpy(term_t, mrl_vecenv_terminated(env), row);
    memcpy(trunc_t, mrl_vecenv_truncated(env), row);
    if (r->norm.reward) {
      mrl_norm_opts *o = &r->norm;
      for (int i = 0; i < n; i++) r->dones[i] = term_t[i] || trunc_t[i];
      st = mrl_retnorm_step(o->reward, mrl_vecenv_rewards(env), r->dones,
                            o->gamma, o->clip_reward, o->epsilon, o->update,
                            o->reduce, o->reduce_ud, rew_t);
      if (st != MRL_OK) {
        ro_seterr(r, "collect: reward normalisation at step %d: %s", t,
                  mrl_retnorm_error(o->reward));
        return st;
      }
    } else {
      memcpy(rew_t, mrl_vecenv_rewards(env), row * sizeof(float));
    }
    if (value) {
      st = ro_bootstrap_ended(r, env, value, next_values + (size_t)t * row,
                              term_t, trunc_t);
      if (st != MRL_OK) return st;
    }
  }
  if (value) {
    /* The envs still running after the last step bootstrap from V of the
    ** observation the next rollout will start from. */
    const float *last_obs = mrl_vecenv_obs(env);
    if (r->norm.obs) {
      memcpy(r->gather_obs, last_obs, row * od * sizeof(float));
      int st = ro_norm_obs(r, r->gather_obs, n, 0, r->steps);
      if (st != MRL_OK) return st;
      last_obs = r->gather_obs;
    }
    int st = mrl_net_forward(value, last_obs, n, r->gather_val);
    if (st != MRL_OK) {
      ro_seterr(r, "collect: value forward on the last observations: %s",
                mrl_net_error(value));
      return st;
    }
    size_t last = (size_t)(r->steps - 1) * row;
    ro_fill_live(n, next_values + last, r->gather_val, r->terminated + last,
                 r->truncated + last);
  }
  r->collected = 1;
  r->have_values = value != NULL;
  r->err[0] = '\0';
  return MRL_OK;
}

int mrl_rollout_gae(mrl_rollout *r, double gamma, double lambda) {
  if (!r) return MRL_EINVAL;
  if (!r->collected) {
    ro_seterr(r, "gae: no complete rollout has been collected");
    return MRL_ESTATE;
  }
  for (int i = 0; i < r->num_envs; i++) {
    int st = mrl_gae(r->f[RO_REWARDS] + i, r->f[RO_VALUES] + i,
                     r->f[RO_NEXT_VALUES] + i, r->terminated + i,
                     r->truncated + i, r->steps, r->num_envs, gamma, lambda,
                     r->f[RO_ADV] + i, r->f[RO_RETURNS] + i);
    if (st != MRL_OK) {
      ro_seterr(r, st == MRL_EINVAL
                       ? "gae: gamma %g and lambda %g must lie in [0, 1]"
                       : "gae: non-finite reward or value (gamma %g, lambda %g)",
                gamma, lambda);
      return st;
    }
  }
  return MRL_OK;
}

/* ------------------------------------------------------------- masks */

int mrl_rollout_set_mask_width(mrl_rollout *r, int k) {
  if (!r) return MRL_EINVAL;
  if (k < 0 || k > MRL_MAX_WIDTH) {
    ro_seterr(r, "set_mask_width: width %d outside [0, %d]", k, (int)MRL_MAX_WIDTH);
    return MRL_EINVAL;
  }
  if (k == r->mask_width) return MRL_OK;
  free(r->masks);
  r->masks = NULL;
  r->mask_width = 0;
  if (k == 0) return MRL_OK;
  size_t total = (size_t)r->steps * (size_t)r->num_envs * (size_t)k;
  if (!(r->masks = malloc(total * sizeof(float)))) {
    ro_seterr(r, "set_mask_width: out of memory for %zu mask entries", total);
    return MRL_ENOMEM;
  }
  for (size_t i = 0; i < total; i++) r->masks[i] = 1.0f;
  r->mask_width = k;
  return MRL_OK;
}

int mrl_rollout_mask_width(const mrl_rollout *r) { return r ? r->mask_width : 0; }
float *mrl_rollout_masks(mrl_rollout *r) { return r ? r->masks : NULL; }

static int ro_check_slot(mrl_rollout *r, int t, int env, const char *what);

int mrl_rollout_put_mask(mrl_rollout *r, int t, int env, const float *mask) {
  if (!r) return MRL_EINVAL;
  int st = ro_check_slot(r, t, env, "put_mask");
  if (st) return st;
  if (!r->masks || !mask) {
    ro_seterr(r, "put_mask: %s", mask ? "the rollout has no masks (set_mask_width first)"
                                      : "NULL mask");
    return MRL_EINVAL;
  }
  size_t k = (size_t)r->mask_width;
  for (size_t j = 0; j < k; j++)
    if (mask[j] != 0.0f && mask[j] != 1.0f) {
      ro_seterr(r, "put_mask: entry %zu of the mask is %g (expected 0 or 1)", j + 1,
                (double)mask[j]);
      return MRL_EINVAL;
    }
  memcpy(r->masks + ((size_t)t * (size_t)r->num_envs + (size_t)env) * k, mask,
         k * sizeof(float));
  return MRL_OK;
}

/* ------------------------------------------------ filling step by step */
int mrl_rollout_copy(mrl_rollout *dst, const mrl_rollout *src) {
  if (!dst || !src) return MRL_EINVAL;
  if (dst->steps != src->steps || dst->num_envs != src->num_envs ||
      dst->obs_dim != src->obs_dim || dst->width != src->width) {
    ro_seterr(dst, "copy: the rollouts differ in size");
    return MRL_EINVAL;
  }
  size_t rows = (size_t)src->steps * (size_t)src->num_envs, d = (size_t)src->obs_dim;
  if (src->has_final && !dst->final_obs) {
    dst->final_obs = calloc(rows * d, sizeof(float));
    dst->has_final = calloc(rows, 1);
    if (!dst->final_obs || !dst->has_final) {
      free(dst->final_obs); free(dst->has_final);
      dst->final_obs = NULL; dst->has_final = NULL;
      ro_seterr(dst, "copy: out of memory for final observations");
      return MRL_ENOMEM;
    }
  }
  if (dst->mask_width != src->mask_width) {
    int st = mrl_rollout_set_mask_width(dst, src->mask_width);
    if (st) return st;
  }
  if (src->masks)
    memcpy(dst->masks, src->masks, sizeof(float) * rows * (size_t)src->mask_width);
  memcpy(dst->obs, src->obs, sizeof(float) * rows * d);
  memcpy(dst->actions, src->actions, sizeof(float) * rows * (size_t)src->width);
  for (int k = 0; k < 6; k++) memcpy(dst->f[k], src->f[k], sizeof(float) * rows);
  memcpy(dst->terminated, src->terminated, rows);
  memcpy(dst->truncated, src->truncated, rows);
  if (src->has_final) {
    memcpy(dst->final_obs, src->final_obs, sizeof(float) * rows * d);
    memcpy(dst->has_final, src->has_final, rows);
  } else if (dst->has_final) {
    memset(dst->has_final, 0, rows);
  }
  dst->collected = src->collected;
  dst->have_values = src->have_values;
  dst->err[0] = '\0';
  return MRL_OK;
}

/* An agent in a game loop owns no vecenv: it puts each transition as it
** happens, then bootstraps the full rollout with the critic of the time. */

static int ro_check_slot(mrl_rollout *r, int t, int env, const char *what) {
  if (t < 0 || t >= r->steps || env < 0 || env >= r->num_envs) {
    ro_seterr(r, "%s: step %d of env %d outside the rollout (%d steps, %d envs)",
              what, t, env, r->steps, r->num_envs);
    return MRL_EINVAL;
  }
  return MRL_OK;
}

int mrl_rollout_put(mrl_rollout *r, int t, int env, const float *obs,
                    const float *action, double logp) {
  if (!r) return MRL_EINVAL;
  int st = ro_check_slot(r, t, env, "put");
  if (st) return st;
  if (!obs || !action) {
    ro_seterr(r, "put: NULL %s", obs ? "action" : "observation");
    return MRL_EINVAL;
  }
  size_t k = (size_t)t * (size_t)r->num_envs + (size_t)env;
  memcpy(r->obs + k * (size_t)r->obs_dim, obs, sizeof(float) * (size_t)r->obs_dim);
  memcpy(r->actions + k * (size_t)r->width, action, sizeof(float) * (size_t)r->width);
  r->f[RO_LOGP][k] = (float)logp;
  r->collected = 0;
  return MRL_OK;
}

int mrl_rollout_put_outcome(mrl_rollout *r, int t, int env, double reward,
                            int terminated, int truncated,
                            const float *final_obs) {
  if (!r) return MRL_EINVAL;
  int st = ro_check_slot(r, t, env, "put_outcome");
  if (st) return st;
  size_t k = (size_t)t * (size_t)r->num_envs + (size_t)env;
  size_t rows = (size_t)r->steps * (size_t)r->num_envs, d = (size_t)r->obs_dim;
  if (final_obs && !r->final_obs) {
    r->final_obs = calloc(rows * d, sizeof(float));
    r->has_final = calloc(rows, 1);
    if (!r->final_obs || !r->has_final) {
      free(r->final_obs); free(r->has_final);
      r->final_obs = NULL; r->has_final = NULL;
      ro_seterr(r, "put_outcome: out of memory for final observations");
      return MRL_ENOMEM;
    }
  }
  r->f[RO_REWARDS][k] = (float)reward;
  r->terminated[k] = terminated != 0;
  r->truncated[k] = truncated != 0;
  if (r->has_final) {
    r->has_final[k] = final_obs != NULL;
    if (final_obs) memcpy(r->final_obs + k * d, final_obs, sizeof(float) * d);
  }
  r->collected = 0;
  return MRL_OK;
}

int mrl_rollout_bootstrap(mrl_rollout *r, mrl_net *value,
                          const float *next_obs) {
  if (!r) return MRL_EINVAL;
  if (!value || !next_obs) {
    ro_seterr(r, "bootstrap: NULL %s", value ? "next observations" : "value net");
    return MRL_EINVAL;
  }
  if (mrl_net_in_dim(value) != r->obs_dim || mrl_net_out_dim(value) != 1) {
    ro_seterr(r, "bootstrap: the value net maps %d -> %d, expected %d -> 1",
              mrl_net_in_dim(value), mrl_net_out_dim(value), r->obs_dim);
    return MRL_EINVAL;
  }
  const int n = r->num_envs, T = r->steps;
  const size_t d = (size_t)r->obs_dim, row = (size_t)n;
  float *vals = r->f[RO_VALUES], *nv = r->f[RO_NEXT_VALUES];
  int st = mrl_net_forward(value, r->obs, T * n, vals);
  if (!st) st = mrl_net_forward(value, next_obs, n, r->gather_val);
  if (st) {
    ro_seterr(r, "bootstrap: value forward: %s", mrl_net_error(value));
    return st;
  }
  if (T > 1) memcpy(nv, vals + row, sizeof(float) * row * (size_t)(T - 1));
  memcpy(nv + row * (size_t)(T - 1), r->gather_val, sizeof(float) * row);
  for (int t = 0; t < T; t++) {
    size_t base = (size_t)t * row;
    int k = 0;
    for (int i = 0; i < n; i++) {
      size_t x = base + (size_t)i;
      if (r->terminated[x]) {
        nv[x] = 0.0f;
      } else if (r->truncated[x]) {
        if (r->has_final && r->has_final[x]) {
          memcpy(r->gather_obs + (size_t)k * d, r->final_obs + x * d, sizeof(float) * d);
          r->gather_idx[k++] = i;
        } else {
          nv[x] = vals[x];  /* no final observation: V(s_t) */
        }
      }
    }
    if (k && (st = mrl_net_forward(value, r->gather_obs, k, r->gather_val))) {
      ro_seterr(r, "bootstrap: value forward on final observations: %s",
                mrl_net_error(value));
      return st;
    }
    for (int j = 0; j < k; j++) nv[base + (size_t)r->gather_idx[j]] = r->gather_val[j];
  }
  r->collected = 1;
  r->have_values = 1;
  r->err[0] = '\0';
  return MRL_OK;
}

int mrl_rollout_behaviour(mrl_rollout *r, mrl_policy *p, double *ratio,
                          double *kl) {
  if (!r || !p) return MRL_EINVAL;
  const int rows = r->steps * r->num_envs;
  if (mrl_policy_obs_dim(p) != r->obs_dim || mrl_policy_action_width(p) != r->width) {
    ro_seterr(r, "behaviour: the policy does not fit the rollout");
    return MRL_EINVAL;
  }
  float *now = malloc(sizeof(float) * (size_t)rows);
  if (!now) {
    ro_seterr(r, "behaviour: out of memory");
    return MRL_ENOMEM;
  }
  int st = mrl_policy_evaluate_masked(p, NULL, r->obs, r->masks, r->actions, rows, now, NULL);
  if (st) {
    ro_seterr(r, "behaviour: %s", mrl_policy_error(p));
    free(now);
    return st;
  }
  double rs = 0, ks = 0;
  const float *mu = r->f[RO_LOGP];
  for (int i = 0; i < rows; i++) {
    double dl = (double)now[i] - (double)mu[i];
    rs += exp(dl);
    ks -= dl;
  }
  free(now);
  if (ratio) *ratio = rs / rows;
  if (kl) *kl = ks / rows;
  return MRL_OK;
}
