/*
** ppo.c — the PPO update loop and the critic fit, built only on the public
** API: minibatch gathering, shuffling, one global gradient norm over both
** networks, and an all-or-nothing guard against non-finite values.
*/
#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "moonrl.h"

static int fail(char *err, size_t errlen, int status, const char *fmt, ...) {
  if (err && errlen) {
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(err, errlen, fmt, ap);
    va_end(ap);
  }
  return status;
}

/* Fisher–Yates with the caller's generator, so a seed fixes the order. */
static void shuffle(int *idx, int n, mrl_rng *rng) {
  for (int i = 0; i < n; i++) idx[i] = i;
  for (int i = n - 1; i > 0; i--) {
    int j = (int)(mrl_rng_uniform(rng) * (i + 1));
    if (j > i) j = i;
    int t = idx[i]; idx[i] = idx[j]; idx[j] = t;
  }
}

static void gather(float *dst, const float *src, const int *idx, int n,
                   int width) {
  for (int k = 0; k < n; k++)
    memcpy(dst + (size_t)k * width, src + (size_t)idx[k] * width,
           sizeof(float) * (size_t)width);
}

/* ----------------------------------------------------------- snapshots */
/* A copy of a network's parameters and its optimiser's moments, taken
** before an update so a refused update leaves no trace. */

typedef struct snapshot {
  float *params, *m, *v;
  size_t n;
  int64_t steps;
} snapshot;

static int snap_take(snapshot *s, const float *params, mrl_optim *o, size_t n) {
  s->n = n;
  s->params = malloc(sizeof(float) * n * 3);
  if (!s->params) return MRL_ENOMEM;
  s->m = s->params + n;
  s->v = s->m + n;
  memcpy(s->params, params, sizeof(float) * n);
  float *m = mrl_optim_moment(o, 0), *v = mrl_optim_moment(o, 1);
  if (m) memcpy(s->m, m, sizeof(float) * n);
  if (v) memcpy(s->v, v, sizeof(float) * n);
  s->steps = mrl_optim_steps(o);
  return MRL_OK;
}

static void snap_restore(const snapshot *s, float *params, mrl_optim *o) {
  memcpy(params, s->params, sizeof(float) * s->n);
  float *m = mrl_optim_moment(o, 0), *v = mrl_optim_moment(o, 1);
  if (m) memcpy(m, s->m, sizeof(float) * s->n);
  if (v) memcpy(v, s->v, sizeof(float) * s->n);
  mrl_optim_set_steps(o, s->steps);
}

static void snap_free(snapshot *s) { free(s->params); s->params = NULL; }

/* -------------------------------------------------------------- update */

typedef struct minibatch {
  float *obs, *actions, *logp, *adv, *ret, *oldv;
} minibatch;

static double explained_variance(const float *pred, const float *target,
                                 size_t n) {
  double mt = 0, md = 0;
  for (size_t i = 0; i < n; i++) { mt += target[i]; md += target[i] - pred[i]; }
  mt /= (double)n; md /= (double)n;
  double vt = 0, vd = 0;
  for (size_t i = 0; i < n; i++) {
    double t = target[i] - mt, d = target[i] - pred[i] - md;
    vt += t * t; vd += d * d;
  }
  return vt > 0 ? 1.0 - vd / vt : NAN;
}

static int check_config(const mrl_ppo_config *c, int total, char *err,
                        size_t errlen) {
  if (c->epochs < 1)
    return fail(err, errlen, MRL_EINVAL, "epochs: expected >= 1, got %d", c->epochs);
  if (c->minibatch_size < 1 || c->minibatch_size > total)
    return fail(err, errlen, MRL_EINVAL,
                "minibatch_size: expected 1..%d (the rollout size), got %d",
                total, c->minibatch_size);
  if (!(c->lr >= 0) || !isfinite(c->lr))
    return fail(err, errlen, MRL_EINVAL, "lr: expected a finite number >= 0");
  if (!(c->clip_eps > 0) || !isfinite(c->clip_eps))
    return fail(err, errlen, MRL_EINVAL, "clip_eps: expected a finite number > 0");
  if (!isfinite(c->ent_coef) || !isfinite(c->vf_coef) ||
      !isfinite(c->clip_value) || !isfinite(c->max_grad_norm) ||
      !isfinite(c->target_kl))
    return fail(err, errlen, MRL_EINVAL, "ppo config: coefficients must be finite");
  return MRL_OK;
}

int mrl_ppo_update(mrl_policy *p, mrl_net *value, mrl_optim *popt,
                   mrl_optim *vopt, mrl_rollout *r, const mrl_ppo_config *c,
                   mrl_ppo_report *rep, char *err, size_t errlen) {
  if (!p || !value || !popt || !vopt || !r || !c)
    return fail(err, errlen, MRL_EINVAL, "ppo_update: NULL argument");
  const int total = mrl_rollout_steps(r) * mrl_rollout_num_envs(r);
  const int od = mrl_policy_obs_dim(p), aw = mrl_policy_action_width(p);
  const size_t np = mrl_policy_nparams(p), nv = mrl_net_nparams(value);
  int st = check_config(c, total, err, errlen);
  if (st) return st;
  if (mrl_net_in_dim(value) != od || mrl_net_out_dim(value) != 1)
    return fail(err, errlen, MRL_EINVAL,
                "value: expected a network %d → 1, got %d → %d", od,
                mrl_net_in_dim(value), mrl_net_out_dim(value));
  if (mrl_optim_nparams(popt) != np || mrl_optim_nparams(vopt) != nv)
    return fail(err, errlen, MRL_EINVAL,
                "optimisers: sized for %zu and %zu parameters, networks have %zu and %zu",
                mrl_optim_nparams(popt), mrl_optim_nparams(vopt), np, nv);

  const float *obs = mrl_rollout_field_ptr(r, MRL_RO_OBS);
  const float *act = mrl_rollout_field_ptr(r, MRL_RO_ACTIONS);
  const float *logp = mrl_rollout_field_ptr(r, MRL_RO_LOGP);
  const float *adv = mrl_rollout_field_ptr(r, MRL_RO_ADVANTAGES);
  const float *ret = mrl_rollout_field_ptr(r, MRL_RO_RETURNS);
  const float *val = mrl_rollout_field_ptr(r, MRL_RO_VALUES);
  if (!mrl_all_finite(adv, (size_t)total) || !mrl_all_finite(ret, (size_t)total))
    return fail(err, errlen, MRL_ENONFINITE,
                "rollout: non-finite advantages or returns (a NaN/Inf reward or value?); update refused");

  const int mb = c->minibatch_size;
  size_t per_mb = (size_t)mb * (size_t)(od + aw + 4);
  float *buf = malloc(sizeof(float) * per_mb);
  int *idx = malloc(sizeof(int) * (size_t)total);
  snapshot sp = {0}, sv = {0};
  if (!buf || !idx || snap_take(&sp, mrl_policy_params(p), popt, np) ||
      snap_take(&sv, mrl_net_params(value), vopt, nv)) {
    free(buf); free(idx); snap_free(&sp); snap_free(&sv);
    return fail(err, errlen, MRL_ENOMEM, "ppo_update: out of memory");
  }
  minibatch m = {buf, buf + (size_t)mb * od, NULL, NULL, NULL, NULL};
  m.logp = m.actions + (size_t)mb * aw;
  m.adv = m.logp + mb; m.ret = m.adv + mb; m.oldv = m.ret + mb;

  mrl_ppo_opts lopts = {c->clip_eps, c->ent_coef, c->normalize_advantages};
  mrl_ppo_report acc = {0};
  double kl_sum = 0, clip_sum = 0, pl_sum = 0, vl_sum = 0, ent_sum = 0, gn_sum = 0;
  int nmb = 0;
  mrl_rng *rng = mrl_policy_rng(p);
  float *pg = mrl_policy_grad(p), *vg = mrl_net_grad(value);
  st = MRL_OK;

  for (int epoch = 0; epoch < c->epochs && st == MRL_OK; epoch++) {
    shuffle(idx, total, rng);
    double epoch_kl = 0;
    int epoch_mb = 0;
    /* A short tail minibatch is dropped only if empty; CleanRL's sizes
    ** divide evenly, others keep every sample. */
    for (int start = 0; start < total; start += mb) {
      int n = total - start < mb ? total - start : mb;
      const int *ix = idx + start;
      gather(m.obs, obs, ix, n, od);
      gather(m.actions, act, ix, n, aw);
      gather(m.logp, logp, ix, n, 1);
      gather(m.adv, adv, ix, n, 1);
      gather(m.ret, ret, ix, n, 1);
      gather(m.oldv, val, ix, n, 1);
      /* A single-sample minibatch has no std to normalise by. */
      lopts.normalize_advantages = c->normalize_advantages && n > 1;
      mrl_ppo_stats ps;
      st = mrl_policy_ppo_loss(p, m.obs, m.actions, m.logp, m.adv, n, &lopts, &ps);
      if (st) { fail(err, errlen, st, "policy loss: %s", mrl_policy_error(p)); break; }
      double vloss;
      st = mrl_net_value_loss_clipped(value, m.obs, m.ret, m.oldv, n,
                                      c->clip_value, &vloss);
      if (st) { fail(err, errlen, st, "value loss: %s", mrl_net_error(value)); break; }
      /* CleanRL: loss = pg − ent·H + vf_coef·½·v_loss, one norm over all. */
      const float vscale = (float)(0.5 * c->vf_coef);
      for (size_t i = 0; i < nv; i++) vg[i] *= vscale;
      double nn_p = 0, nn_v = 0;
      for (size_t i = 0; i < np; i++) nn_p += (double)pg[i] * pg[i];
      for (size_t i = 0; i < nv; i++) nn_v += (double)vg[i] * vg[i];
      double gnorm = sqrt(nn_p + nn_v);
      if (!isfinite(gnorm) || !isfinite(ps.loss) || !isfinite(vloss)) {
        st = fail(err, errlen, MRL_ENONFINITE,
                  "ppo_update: non-finite %s in epoch %d; update refused, parameters restored",
                  !isfinite(ps.loss) ? "policy loss" : !isfinite(vloss) ? "value loss" : "gradient",
                  epoch + 1);
        break;
      }
      if (c->max_grad_norm > 0 && gnorm > c->max_grad_norm) {
        float s = (float)(c->max_grad_norm / (gnorm + 1e-6));
        for (size_t i = 0; i < np; i++) pg[i] *= s;
        for (size_t i = 0; i < nv; i++) vg[i] *= s;
      }
      st = mrl_optim_step(popt, mrl_policy_params(p), pg, c->lr);
      if (!st) st = mrl_optim_step(vopt, mrl_net_params(value), vg, c->lr);
      if (st) { fail(err, errlen, st, "optimiser: %s", mrl_optim_error(popt)); break; }
      kl_sum += ps.approx_kl; clip_sum += ps.clip_fraction;
      pl_sum += ps.policy_loss; vl_sum += vloss; ent_sum += ps.entropy;
      gn_sum += gnorm;
      epoch_kl += ps.approx_kl; epoch_mb++;
      nmb++;
    }
    if (st) break;
    acc.epochs_done = epoch + 1;
    /* SB3 stops once the KL passes 1.5·target; here the epoch's mean KL. */
    if (c->target_kl > 0 && epoch_mb && epoch_kl / epoch_mb > 1.5 * c->target_kl) {
      acc.stopped_early = 1;
      break;
    }
  }

  if (st) {
    snap_restore(&sp, mrl_policy_params(p), popt);
    snap_restore(&sv, mrl_net_params(value), vopt);
  } else if (nmb) {
    acc.minibatches = nmb;
    acc.approx_kl = kl_sum / nmb;
    acc.clip_fraction = clip_sum / nmb;
    acc.policy_loss = pl_sum / nmb;
    acc.value_loss = vl_sum / nmb;
    acc.entropy = ent_sum / nmb;
    acc.grad_norm = gn_sum / nmb;
    acc.explained_variance = explained_variance(val, ret, (size_t)total);
  }
  if (rep) *rep = acc;
  free(buf); free(idx); snap_free(&sp); snap_free(&sv);
  return st;
}

/* ----------------------------------------------------------- value fit */

int mrl_value_fit(mrl_net *value, mrl_optim *opt, const float *obs,
                  const float *targets, int n, int epochs, int minibatch,
                  double lr, mrl_rng *rng, double *final_loss, char *err,
                  size_t errlen) {
  if (!value || !opt || !obs || !targets || !rng)
    return fail(err, errlen, MRL_EINVAL, "value_fit: NULL argument");
  if (n < 1 || n > MRL_MAX_BATCH)
    return fail(err, errlen, MRL_EINVAL, "n: expected 1..%d, got %d", MRL_MAX_BATCH, n);
  if (epochs < 1 || minibatch < 1)
    return fail(err, errlen, MRL_EINVAL, "epochs and minibatch: expected >= 1");
  if (!(lr >= 0) || !isfinite(lr))
    return fail(err, errlen, MRL_EINVAL, "lr: expected a finite number >= 0");
  const int od = mrl_net_in_dim(value);
  const size_t nv = mrl_net_nparams(value);
  if (mrl_net_out_dim(value) != 1 || mrl_optim_nparams(opt) != nv)
    return fail(err, errlen, MRL_EINVAL, "value_fit: expected a 1-output network and a matching optimiser");
  if (!mrl_all_finite(targets, (size_t)n))
    return fail(err, errlen, MRL_ENONFINITE, "targets: non-finite value; fit refused");
  if (minibatch > n) minibatch = n;
  float *mo = malloc(sizeof(float) * (size_t)minibatch * (size_t)(od + 1));
  int *idx = malloc(sizeof(int) * (size_t)n);
  snapshot s = {0};
  if (!mo || !idx || snap_take(&s, mrl_net_params(value), opt, nv)) {
    free(mo); free(idx); snap_free(&s);
    return fail(err, errlen, MRL_ENOMEM, "value_fit: out of memory");
  }
  float *mt = mo + (size_t)minibatch * od;
  double loss = 0;
  int st = MRL_OK;
  for (int e = 0; e < epochs && !st; e++) {
    shuffle(idx, n, rng);
    for (int start = 0; start < n; start += minibatch) {
      int k = n - start < minibatch ? n - start : minibatch;
      gather(mo, obs, idx + start, k, od);
      gather(mt, targets, idx + start, k, 1);
      st = mrl_net_value_loss(value, mo, mt, k, &loss, NULL);
      if (st) { fail(err, errlen, st, "value loss: %s", mrl_net_error(value)); break; }
      st = mrl_optim_step(opt, mrl_net_params(value), mrl_net_grad(value), lr);
      if (st) { fail(err, errlen, st, "optimiser: %s", mrl_optim_error(opt)); break; }
    }
  }
  if (st) snap_restore(&s, mrl_net_params(value), opt);
  else if (final_loss) *final_loss = loss;
  free(mo); free(idx); snap_free(&s);
  return st;
}
