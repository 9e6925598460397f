/*
** ppo.c — the PPO update loop and the critic fit, built only on the public
** API: minibatch gathering, shuffling, one global gradient norm over both
** networks, and an all-or-nothing guard against non-finite values.
*/
#include <math.h>
#include <sched.h>
#include <stdarg.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "moonrl.h"
#include "policy_impl.h"
#include "simd_clones.h"
#include "worker.h"

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

/* shards S > 1: idx[0, total) is filled so that minibatch k (mb rows from
** k·mb) takes positions σ[k·mb/S, …) of one permutation σ of a block's
** rows (drawn into sigma[total/S]) from each of the S contiguous blocks, in
** block order: what S processes holding one block each take (see
** mrl_ppo_config).  A short tail takes the same short run from every block. */
static void shuffle_shards(int *idx, int *sigma, int total, int shards, int mb,
                           mrl_rng *rng) {
  const int bn = total / shards, bmb = mb / shards;
  shuffle(sigma, bn, rng);
  for (int k = 0; k * bmb < bn; k++) {
    int first = k * bmb, len = bn - first < bmb ? bn - first : bmb;
    for (int s = 0; s < shards; s++)
      for (int i = 0; i < len; i++)
        idx[k * mb + s * len + i] = s * bn + sigma[first + i];
  }
}

/* The sum of a flag over the processes (reduce set), else the flag: every
** process then refuses together, instead of one leaving the others waiting
** in a reduction.  A failed reduction counts as set. */
static int any_process(mrl_reduce_fn reduce, void *ud, int flag) {
  if (!reduce) return flag;
  double s = flag ? 1.0 : 0.0;
  if (reduce(ud, NULL, 0, &s, 1) != MRL_OK) return 1;
  return s > 0.0;
}

/* data[n] and s[ns] (ns < 15), means over this process's `count` rows,
** become means over every process's rows: weighted by count, summed by the
** hook, divided by the total (returned in *total). */
static int reduce_mean(mrl_reduce_fn reduce, void *ud, float *data, size_t n,
                       double *s, int ns, int count, double *total) {
  double sc[16];
  sc[0] = count;
  for (int i = 0; i < ns; i++) sc[i + 1] = s[i] * count;
  for (size_t i = 0; i < n; i++) data[i] *= (float)count;
  int st = reduce(ud, data, n, sc, ns + 1);
  if (st) return st;
  if (!(sc[0] >= 1.0)) return MRL_ESTATE;
  for (size_t i = 0; i < n; i++) data[i] = (float)((double)data[i] / sc[0]);
  for (int i = 0; i < ns; i++) s[i] = sc[i + 1] / sc[0];
  if (total) *total = sc[0];
  return MRL_OK;
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
  if (c->shards < 0 || (c->shards > 1 && (total % c->shards || c->minibatch_size % c->shards)))
    return fail(err, errlen, MRL_EINVAL,
                "shards: expected 0, 1 or a divisor of the rollout size (%d) and of minibatch_size (%d), got %d",
                total, c->minibatch_size, c->shards);
  if (c->shards > 1 && c->reduce)
    return fail(err, errlen, MRL_EINVAL, "shards: not with a reduce hook (each process holds one shard)");
  return MRL_OK;
}

/* With a reduce hook, once per epoch (the advantages do not change within
** an update, only the order): the mean and 1/(sample std + 1e-8) of every
** minibatch k over all processes' minibatch k — what one process computes
** over their union — into ms[2k], ms[2k+1], in two reductions of 2·nmb
** and nmb scalars (two passes, as policy.c's mean/std), not two per
** minibatch.  sc holds 3·nmb doubles of scratch. */
static int epoch_adv_stats(const mrl_ppo_config *c, const float *adv,
                           const int *idx, int total, int mb, double *ms,
                           double *sc) {
  const int nmb = (total + mb - 1) / mb;
  double *cnt = sc + 2 * nmb;
  for (int k = 0; k < nmb; k++) {
    int first = k * mb, n = total - first < mb ? total - first : mb;
    double s = 0;
    for (int i = 0; i < n; i++) s += adv[idx[first + i]];
    sc[2 * k] = s;
    sc[2 * k + 1] = n;
  }
  int st = c->reduce(c->reduce_ud, NULL, 0, sc, 2 * nmb);
  if (st) return st;
  for (int k = 0; k < nmb; k++) {
    int first = k * mb, n = total - first < mb ? total - first : mb;
    double mean = sc[2 * k] / sc[2 * k + 1], q = 0;
    for (int i = 0; i < n; i++) {
      double d = (double)adv[idx[first + i]] - mean;
      q += d * d;
    }
    ms[2 * k] = mean;
    cnt[k] = sc[2 * k + 1];
    sc[k] = q;
  }
  st = c->reduce(c->reduce_ud, NULL, 0, sc, nmb);
  if (st) return st;
  for (int k = 0; k < nmb; k++) {
    /* a single sample in all: no std to normalise by (as n > 1 below) */
    if (cnt[k] < 2) { ms[2 * k] = 0; ms[2 * k + 1] = 1; continue; }
    ms[2 * k + 1] = 1.0 / (sqrt(sc[k] / (cnt[k] - 1)) + 1e-8);
  }
  return MRL_OK;
}

static double sumsq(const float *x, size_t n);

/* With a reduce hook: both gradients (copied side by side into rb, one
** reduction) and the reported losses become means over every process's
** minibatch k, and the squared norms are taken again after it. */
static int reduce_minibatch(const mrl_ppo_config *c, float *rb, float *pg,
                            size_t np, float *vg, size_t nv, int n,
                            mrl_ppo_stats *ps, double *vloss, double *nn_p,
                            double *nn_v) {
  memcpy(rb, pg, sizeof(float) * np);
  memcpy(rb + np, vg, sizeof(float) * nv);
  double s[6] = {ps->loss, ps->policy_loss, ps->entropy, ps->clip_fraction,
                 ps->approx_kl, *vloss};
  int st = reduce_mean(c->reduce, c->reduce_ud, rb, np + nv, s, 6, n, NULL);
  if (st) return st;
  memcpy(pg, rb, sizeof(float) * np);
  memcpy(vg, rb + np, sizeof(float) * nv);
  ps->loss = s[0]; ps->policy_loss = s[1]; ps->entropy = s[2];
  ps->clip_fraction = s[3]; ps->approx_kl = s[4]; *vloss = s[5];
  *nn_p = sumsq(pg, np);
  *nn_v = sumsq(vg, nv);
  return MRL_OK;
}

/* Σ x² in double with 8 lanes in a fixed order: vectorisable (one serial
** chain of dependent adds cost more than the value network's backward
** pass) and the same bits on every run and thread count. */
MRL_SIMD_CLONES static double sumsq(const float *x, size_t n) {
  typedef float v4f __attribute__((vector_size(16)));
  typedef double v4d __attribute__((vector_size(32)));
  v4d a0 = {0, 0, 0, 0}, a1 = a0;
  size_t i = 0;
  for (; i + 8 <= n; i += 8) {
    v4f f0, f1;
    memcpy(&f0, x + i, sizeof f0);
    memcpy(&f1, x + i + 4, sizeof f1);
    v4d d0 = __builtin_convertvector(f0, v4d), d1 = __builtin_convertvector(f1, v4d);
    a0 += d0 * d0;
    a1 += d1 * d1;
  }
  double t = 0;
  for (; i < n; i++) t += (double)x[i] * x[i];
  return ((a0[0] + a1[0]) + (a0[1] + a1[1])) + ((a0[2] + a1[2]) + (a0[3] + a1[3])) + t;
}

MRL_SIMD_CLONES static void scale(float *x, size_t n, float s) {
#pragma omp simd
  for (size_t i = 0; i < n; i++) x[i] *= s;
}

/* --------------------------------------------------- the value helper */
/* Within a minibatch the value network's loss, gradient and Adam step do
** not depend on the policy's, except through the one global gradient
** norm.  So a helper thread (the policy's parked worker, worker.h) runs
** the value side while the caller runs the policy side: loss and Σg² on both, the
** caller combines the norm (nn_p + nn_v, always in that order, so the run
** is the same bits with or without the helper), then both take their Adam
** steps.  One task is out at a time: the caller posts it (a counter), and
** whoever claims it first runs it, so when the OS has descheduled the
** helper the caller does the work itself instead of waiting. */

enum { VH_LOSS = 1, VH_STEP = 2, VH_QUIT = 3 };

typedef struct vhelper {
  mrl_net *value;
  mrl_optim *vopt;
  const minibatch *m;
  const mrl_ppo_config *c;
  size_t nv;
  /* the task (written by the caller before bumping posted) */
  _Atomic int cmd;
  int n;
  float clip_scale;        /* VH_STEP: 1 or the norm clip factor */
  /* results (written by the runner before bumping done) */
  int st;                  /* first failure of the value side, sticky */
  int st_what;             /* 1: value loss, 2: optimiser */
  double vloss, nn_v;
  _Atomic unsigned posted, claimed, done;
  worker *w;
  int running;
} vhelper;

static inline void vh_relax(int i) {
  if (i < 2000) {
#if defined(__x86_64__) || defined(__i386__)
    __builtin_ia32_pause();
#endif
  } else {
    sched_yield();
  }
}

/* The value side of one minibatch: loss and gradient (scaled by
** vf_coef/2, CleanRL's weighting), then Σg². */
static void value_loss_part(vhelper *h) {
  double vloss = 0;
  int st = mrl_net_value_loss_clipped(h->value, h->m->obs, h->m->ret,
                                      h->m->oldv, h->n, h->c->clip_value,
                                      &vloss);
  h->vloss = vloss;
  h->nn_v = 0;
  if (st) { h->st = st; h->st_what = 1; return; }
  float *vg = mrl_net_grad(h->value);
  scale(vg, h->nv, (float)(0.5 * h->c->vf_coef));
  h->nn_v = sumsq(vg, h->nv);
}

static void value_step_part(vhelper *h) {
  if (h->clip_scale != 1.0f) scale(mrl_net_grad(h->value), h->nv, h->clip_scale);
  int st = mrl_optim_step(h->vopt, mrl_net_params(h->value),
                          mrl_net_grad(h->value), h->c->lr);
  if (st && !h->st) { h->st = st; h->st_what = 2; }
}

/* Runs task k if nobody has claimed it yet. */
static void vh_try(vhelper *h, unsigned k) {
  unsigned prev = k - 1;
  if (!atomic_compare_exchange_strong(&h->claimed, &prev, k)) return;
  if (h->cmd == VH_LOSS) value_loss_part(h);
  else if (h->cmd == VH_STEP) value_step_part(h);
  atomic_store_explicit(&h->done, k, memory_order_release);
}

static void vh_main(void *arg) {
  vhelper *h = arg;
  unsigned seen = 0;
  for (;;) {
    unsigned k;
    for (int i = 0; (k = atomic_load_explicit(&h->posted, memory_order_acquire)) == seen; i++)
      vh_relax(i);
    seen = k;
    if (h->cmd == VH_QUIT) break;
    vh_try(h, k);
  }
}

/* The posted task is done: claimed here if the helper has not started it. */
static void vh_sync(vhelper *h) {
  unsigned k = atomic_load(&h->posted);
  vh_try(h, k);
  for (int i = 0; atomic_load_explicit(&h->done, memory_order_acquire) != k; i++)
    vh_relax(i);
}

/* Posts a task (the previous one must be done); without a helper it runs
** at the next vh_sync. */
static void vh_post(vhelper *h, int cmd) {
  atomic_store_explicit(&h->cmd, cmd, memory_order_relaxed);
  atomic_fetch_add_explicit(&h->posted, 1, memory_order_release);
}

static void vh_stop(vhelper *h) {
  vh_sync(h);
  if (!h->running) return;
  /* claimed = posted + 1 first, so the quit task is never run */
  atomic_store(&h->claimed, atomic_load(&h->posted) + 1);
  vh_post(h, VH_QUIT);
  worker_wait(h->w);
  h->running = 0;
}

/* The helper pays from a few thousand parameters per minibatch up, and
** only with a second core; MRL_PPO_THREADS=1 turns it off (it never
** changes the result, only the time). */
static int want_helper(size_t np, size_t nv, int mb) {
  const char *e = getenv("MRL_PPO_THREADS");
  if (e && atoi(e) == 1) return 0;
#ifdef _SC_NPROCESSORS_ONLN
  if (sysconf(_SC_NPROCESSORS_ONLN) < 2) return 0;
#endif
  return (double)(np < nv ? np : nv) * (double)mb >= 65536.0;
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
  if (any_process(c->reduce, c->reduce_ud,
                  !mrl_all_finite(adv, (size_t)total) || !mrl_all_finite(ret, (size_t)total)))
    return fail(err, errlen, MRL_ENONFINITE,
                "rollout: non-finite advantages or returns (a NaN/Inf reward or value?); update refused");

  const int mb = c->minibatch_size;
  const int shards = c->shards > 1 ? c->shards : 1;
  /* the reduce hook's buffer: both gradients side by side */
  size_t per_mb = (size_t)mb * (size_t)(od + aw + 4) + (c->reduce ? np + nv : 0);
  float *buf = malloc(sizeof(float) * per_mb);
  int *idx = malloc(sizeof(int) * ((size_t)total + (shards > 1 ? (size_t)(total / shards) : 0)));
  /* the reduce hook's per-epoch advantage statistics: 2 + 3 per minibatch */
  const int nmbe = (total + mb - 1) / mb;
  double *mstat = c->reduce && c->normalize_advantages
                      ? malloc(sizeof(double) * 5 * (size_t)nmbe) : NULL;
  snapshot sp = {0}, sv = {0};
  if (!buf || !idx || (c->reduce && c->normalize_advantages && !mstat) ||
      snap_take(&sp, mrl_policy_params(p), popt, np) ||
      snap_take(&sv, mrl_net_params(value), vopt, nv)) {
    free(buf); free(idx); free(mstat); snap_free(&sp); snap_free(&sv);
    return fail(err, errlen, MRL_ENOMEM, "ppo_update: out of memory");
  }
  minibatch m = {buf, buf + (size_t)mb * od, NULL, NULL, NULL, NULL};
  m.logp = m.actions + (size_t)mb * aw;
  m.adv = m.logp + mb; m.ret = m.adv + mb; m.oldv = m.ret + mb;
  float *rbuf = c->reduce ? m.oldv + mb : NULL;

  vhelper h;
  memset(&h, 0, sizeof h);
  h.value = value; h.vopt = vopt; h.m = &m; h.c = c; h.nv = nv;
  atomic_init(&h.posted, 0);
  atomic_init(&h.claimed, 0);
  atomic_init(&h.done, 0);
  if (want_helper(np, nv, mb) && (h.w = policy_worker(p)) != NULL) {
    worker_run(h.w, vh_main, &h);
    h.running = 1;  /* no thread is no failure: the caller runs both sides */
  }

  mrl_ppo_opts lopts = {c->clip_eps, c->ent_coef, c->normalize_advantages};
  mrl_ppo_report acc = {0};
  double kl_sum = 0, clip_sum = 0, pl_sum = 0, vl_sum = 0, ent_sum = 0, gn_sum = 0;
  int nmb = 0;
  mrl_rng *rng = mrl_policy_rng(p);
  float *pg = mrl_policy_grad(p);
  st = MRL_OK;

  for (int epoch = 0; epoch < c->epochs && st == MRL_OK; epoch++) {
    if (shards > 1) shuffle_shards(idx, idx + total, total, shards, mb, rng);
    else shuffle(idx, total, rng);
    if (mstat && (st = epoch_adv_stats(c, adv, idx, total, mb, mstat, mstat + 2 * nmbe))) {
      fail(err, errlen, st, "ppo_update: the reduce hook failed");
      break;
    }
    double epoch_kl = 0;
    int epoch_mb = 0;
    /* A short tail minibatch is dropped only if empty; CleanRL's sizes
    ** divide evenly, others keep every sample. */
    for (int start = 0; start < total; start += mb) {
      int n = total - start < mb ? total - start : mb;
      const int *ix = idx + start;
      /* the helper's previous step is done before its inputs change */
      vh_sync(&h);
      if (h.st) break;
      gather(m.obs, obs, ix, n, od);
      gather(m.actions, act, ix, n, aw);
      gather(m.logp, logp, ix, n, 1);
      gather(m.adv, adv, ix, n, 1);
      gather(m.ret, ret, ix, n, 1);
      gather(m.oldv, val, ix, n, 1);
      h.n = n;
      vh_post(&h, VH_LOSS);
      /* A single-sample minibatch has no std to normalise by. */
      lopts.normalize_advantages = c->normalize_advantages && n > 1;
      if (mstat) {
        /* the global statistics of this minibatch, from epoch_adv_stats */
        const double am = mstat[2 * (start / mb)], ai = mstat[2 * (start / mb) + 1];
        for (int i = 0; i < n; i++) m.adv[i] = (float)(((double)m.adv[i] - am) * ai);
        lopts.normalize_advantages = 0;
      }
      mrl_ppo_stats ps;
      st = mrl_policy_ppo_loss(p, m.obs, m.actions, m.logp, m.adv, n, &lopts, &ps);
      double nn_p = st ? 0 : sumsq(pg, np);
      vh_sync(&h);
      if (st) { fail(err, errlen, st, "policy loss: %s", mrl_policy_error(p)); break; }
      if (h.st) break;
      double vloss = h.vloss;
      if (c->reduce) {
        st = reduce_minibatch(c, rbuf, pg, np, mrl_net_grad(value), nv, n, &ps,
                              &vloss, &nn_p, &h.nn_v);
        if (st) { fail(err, errlen, st, "ppo_update: the reduce hook failed"); break; }
      }
      /* CleanRL: loss = pg − ent·H + vf_coef·½·v_loss, one norm over all. */
      double gnorm = sqrt(nn_p + h.nn_v);
      if (!isfinite(gnorm) || !isfinite(ps.loss) || !isfinite(vloss)) {
        st = fail(err, errlen, MRL_ENONFINITE,
                  "ppo_update: non-finite %s in epoch %d; update refused, parameters restored",
                  !isfinite(ps.loss) ? "policy loss" : !isfinite(vloss) ? "value loss" : "gradient",
                  epoch + 1);
        break;
      }
      h.clip_scale = 1.0f;
      if (c->max_grad_norm > 0 && gnorm > c->max_grad_norm) {
        h.clip_scale = (float)(c->max_grad_norm / (gnorm + 1e-6));
        scale(pg, np, h.clip_scale);
      }
      vh_post(&h, VH_STEP);
      st = mrl_optim_step(popt, mrl_policy_params(p), pg, c->lr);
      if (st) { fail(err, errlen, st, "optimiser: %s", mrl_optim_error(popt)); break; }
      kl_sum += ps.approx_kl; clip_sum += ps.clip_fraction;
      pl_sum += ps.policy_loss; vl_sum += vloss; ent_sum += ps.entropy;
      gn_sum += gnorm;
      epoch_kl += ps.approx_kl; epoch_mb++;
      nmb++;
    }
    vh_sync(&h);
    if (!st && h.st) {
      st = h.st;
      if (h.st_what == 1) fail(err, errlen, st, "value loss: %s", mrl_net_error(value));
      else fail(err, errlen, st, "optimiser: %s", mrl_optim_error(vopt));
    }
    if (st) break;
    acc.epochs_done = epoch + 1;
    /* SB3 stops once the KL passes 1.5·target; here the epoch's mean KL. */
    if (c->target_kl > 0 && epoch_mb && epoch_kl / epoch_mb > 1.5 * c->target_kl) {
      acc.stopped_early = 1;
      break;
    }
  }
  vh_stop(&h);

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
  free(buf); free(idx); free(mstat); snap_free(&sp); snap_free(&sv);
  return st;
}

/* ----------------------------------------------------------- value fit */

int mrl_value_fit(mrl_net *value, mrl_optim *opt, const float *obs,
                  const float *targets, int n, int epochs, int minibatch,
                  double lr, mrl_rng *rng, double *final_loss, char *err,
                  size_t errlen) {
  return mrl_value_fit_reduce(value, opt, obs, targets, n, epochs, minibatch,
                              lr, rng, NULL, NULL, final_loss, err, errlen);
}

int mrl_value_fit_reduce(mrl_net *value, mrl_optim *opt, const float *obs,
                         const float *targets, int n, int epochs,
                         int minibatch, double lr, mrl_rng *rng,
                         mrl_reduce_fn reduce, void *reduce_ud,
                         double *final_loss, char *err, size_t errlen) {
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
  if (any_process(reduce, reduce_ud, !mrl_all_finite(targets, (size_t)n)))
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
      if (reduce &&
          (st = reduce_mean(reduce, reduce_ud, mrl_net_grad(value), nv, &loss, 1, k, NULL))) {
        fail(err, errlen, st, "value_fit: the reduce hook failed");
        break;
      }
      st = mrl_optim_step(opt, mrl_net_params(value), mrl_net_grad(value), lr);
      if (st) { fail(err, errlen, st, "optimiser: %s", mrl_optim_error(opt)); break; }
    }
  }
  if (st) snap_restore(&s, mrl_net_params(value), opt);
  else if (final_loss) *final_loss = loss;
  free(mo); free(idx); snap_free(&s);
  return st;
}
