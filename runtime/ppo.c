/*
** ppo.c — the PPO update as a job that a caller steps: begin takes a
** snapshot and checks everything, each step runs minibatches (up to a
** count or a time budget) and keeps the epoch, the order and the position
** between calls, end reports, abort restores.  Both objectives live here:
** the clipped surrogate with CleanRL's value loss and one global gradient
** norm over both networks, and adaptive KL (−(mean ρA − β·KL), β adapted
** at the end).  mrl_ppo_update is begin + one step of everything + end.
** All-or-nothing: anything non-finite restores both networks and
** optimisers exactly.
*/
#include <math.h>
#include <sched.h>
#include <stdarg.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "moonrl.h"
#include "policy_impl.h"
#include "simd_clones.h"
#include "train_util.h"
#include "worker.h"

/* shards S > 1: idx[0, total) is filled so that minibatch k (mb rows from
** k·mb) takes positions σ[k·mb/S, …) of one permutation σ of a block's
** rows (drawn into sigma[total/S]) from each of the S contiguous blocks, in
** block order: what S processes holding one block each take (see
** mrl_ppo_config).  A short tail takes the same short run from every block. */
static void shuffle_shards(int *idx, int *sigma, int total, int shards, int mb,
                           mrl_rng *rng) {
  const int bn = total / shards, bmb = mb / shards;
  tu_shuffle(sigma, bn, rng);
  for (int k = 0; k * bmb < bn; k++) {
    int first = k * bmb, len = bn - first < bmb ? bn - first : bmb;
    for (int s = 0; s < shards; s++)
      for (int i = 0; i < len; i++)
        idx[k * mb + s * len + i] = s * bn + sigma[first + i];
  }
}

typedef struct minibatch {
  float *obs, *actions, *logp, *adv, *ret, *oldv;
  float *masks;  /* [mb][mw] when the rollout has masks, else NULL */
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
    return mrl_errbuf_(err, errlen, MRL_EINVAL, "epochs: expected >= 1, got %d", c->epochs);
  if (c->minibatch_size < 1 || c->minibatch_size > total)
    return mrl_errbuf_(err, errlen, MRL_EINVAL,
                "minibatch_size: expected 1..%d (the rollout size), got %d",
                total, c->minibatch_size);
  if (!(c->lr >= 0) || !isfinite(c->lr))
    return mrl_errbuf_(err, errlen, MRL_EINVAL, "lr: expected a finite number >= 0");
  if (!(c->clip_eps > 0) || !isfinite(c->clip_eps))
    return mrl_errbuf_(err, errlen, MRL_EINVAL, "clip_eps: expected a finite number > 0");
  if (!isfinite(c->ent_coef) || !isfinite(c->vf_coef) ||
      !isfinite(c->clip_value) || !isfinite(c->max_grad_norm) ||
      !isfinite(c->target_kl))
    return mrl_errbuf_(err, errlen, MRL_EINVAL, "ppo config: coefficients must be finite");
  if (c->shards < 0 || (c->shards > 1 && (total % c->shards || c->minibatch_size % c->shards)))
    return mrl_errbuf_(err, errlen, MRL_EINVAL,
                "shards: expected 0, 1 or a divisor of the rollout size (%d) and of minibatch_size (%d), got %d",
                total, c->minibatch_size, c->shards);
  if (c->shards > 1 && c->reduce)
    return mrl_errbuf_(err, errlen, MRL_EINVAL, "shards: not with a reduce hook (each process holds one shard)");
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
  int st = tu_reduce_mean(c->reduce, c->reduce_ud, rb, np + nv, s, 6, n, NULL);
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
  unsigned seen0;          /* posted when the helper started */
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
  unsigned seen = h->seen0;
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
  /* the quit task counts as done, so a later vh_sync returns at once */
  atomic_store(&h->done, atomic_load(&h->posted));
}

/* The helper pays from a few thousand parameters per minibatch up, and
** only with a second core; MRL_PPO_THREADS=1 turns it off (it never
** changes the result, only the time). */
static int want_helper(mrl_policy *p, size_t np, size_t nv, int mb) {
  if (p->solo) return 0;
  const char *e = getenv("MRL_PPO_THREADS");
  if (e && atoi(e) == 1) return 0;
#ifdef _SC_NPROCESSORS_ONLN
  if (sysconf(_SC_NPROCESSORS_ONLN) < 2) return 0;
#endif
  return (double)(np < nv ? np : nv) * (double)mb >= 65536.0;
}

/* ------------------------------------------------------------ the job */
/* Everything an update needs between two steps lives here, so a caller
** may step it one minibatch per frame, or from another thread than the one
** that began it: the shuffled order, the epoch and the position in it, the
** minibatch buffers, the running sums and the snapshot an abort restores.
** The caller keeps the networks, optimisers and rollout alive and
** untouched (but for reading) until mrl_ppo_end or mrl_ppo_abort. */

struct mrl_ppo_job {
  mrl_policy *p;
  mrl_net *value;
  mrl_optim *popt, *vopt;
  mrl_ppo_config c;          /* a copy: the caller's may go away */
  mrl_rng *rng;
  int total, od, aw, mw, mb, shards, nmbe, kl_mode;
  size_t np, nv;
  const float *obs, *act, *logp, *adv, *ret, *val;
  const float *masks;        /* the rollout's [total][mw], or NULL */
  float *buf, *rbuf;         /* minibatch rows; the reduce hook's buffer */
  float *advn, *ent;         /* adaptive KL: normalised advantages, entropies */
  int *idx;                  /* the epoch's order (+ a block permutation) */
  double *mstat;             /* the reduce hook's per-epoch advantage stats */
  minibatch m;
  tu_snapshot sp, sv;        /* before the update (sp.params: π_old for KL) */
  vhelper h;
  /* where the update is */
  int epoch, pos, finished, status, restored;
  double epoch_kl;
  int epoch_mb, nmb;
  double kl_sum, clip_sum, pl_sum, vl_sum, ent_sum, gn_sum;
  mrl_ppo_report acc;
  char err[256];
};

static int job_fail(mrl_ppo_job *j, int st, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));
static int job_fail(mrl_ppo_job *j, int st, const char *fmt, ...) {
  va_list ap;
  va_start(ap, fmt);
  vsnprintf(j->err, sizeof j->err, fmt, ap);
  va_end(ap);
  return st;
}

static double now_seconds(void) {
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return (double)ts.tv_sec + 1e-9 * (double)ts.tv_nsec;
}

static void job_free(mrl_ppo_job *j) {
  free(j->buf); free(j->idx); free(j->mstat); free(j->advn);
  tu_snap_free(&j->sp); tu_snap_free(&j->sv);
  free(j);
}

static void job_restore(mrl_ppo_job *j) {
  if (j->restored) return;
  tu_snap_restore(&j->sp, mrl_policy_params(j->p), j->popt);
  tu_snap_restore(&j->sv, mrl_net_params(j->value), j->vopt);
  j->restored = 1;
}

/* Adaptive KL: the advantages normalised once over the whole batch (over
** every process's batch with a reduce hook). */
static int kl_normalize(mrl_ppo_job *j) {
  memcpy(j->advn, j->adv, sizeof(float) * (size_t)j->total);
  if (!j->c.normalize_advantages) return MRL_OK;
  int st = mrl_standardize(j->advn, j->total, j->c.reduce, j->c.reduce_ud);
  if (st) return job_fail(j, st, "ppo: the advantages' standardisation failed (%s)",
                          j->c.reduce ? "the reduce hook" : "not finite");
  return MRL_OK;
}

int mrl_ppo_begin(mrl_ppo_job **out, mrl_policy *p, mrl_net *value,
                  mrl_optim *popt, mrl_optim *vopt, mrl_rollout *r,
                  const mrl_ppo_config *c, char *err, size_t errlen) {
  if (out) *out = NULL;
  if (!out || !p || !value || !popt || !vopt || !r || !c)
    return mrl_errbuf_(err, errlen, MRL_EINVAL, "ppo: NULL argument");
  const int total = mrl_rollout_steps(r) * mrl_rollout_num_envs(r);
  const int od = mrl_policy_obs_dim(p), aw = mrl_policy_action_width(p);
  const size_t np = mrl_policy_nparams(p), nv = mrl_net_nparams(value);
  int st = check_config(c, total, err, errlen);
  if (st) return st;
  const int kl_mode = c->kl_beta > 0;
  if (kl_mode && (!isfinite(c->kl_beta) || !(c->kl_target > 0) || !isfinite(c->kl_target)))
    return mrl_errbuf_(err, errlen, MRL_EINVAL,
                   "kl_beta/kl_target: expected finite numbers > 0 for adaptive KL");
  if (kl_mode && c->shards > 1)
    return mrl_errbuf_(err, errlen, MRL_EINVAL, "shards: not with adaptive KL");
  if (mrl_net_in_dim(value) != od || mrl_net_out_dim(value) != 1)
    return mrl_errbuf_(err, errlen, MRL_EINVAL,
                   "value: expected a network %d → 1, got %d → %d", od,
                   mrl_net_in_dim(value), mrl_net_out_dim(value));
  if (mrl_optim_nparams(popt) != np || mrl_optim_nparams(vopt) != nv)
    return mrl_errbuf_(err, errlen, MRL_EINVAL,
                   "optimisers: sized for %zu and %zu parameters, networks have %zu and %zu",
                   mrl_optim_nparams(popt), mrl_optim_nparams(vopt), np, nv);
  /* masks: the policy acted with them, every loss renormalises over them */
  const int mw = mrl_rollout_mask_width(r);
  if (mw && (!mrl_policy_maskable(p) || mw != mrl_policy_out_dim(p)))
    return mrl_errbuf_(err, errlen, MRL_EINVAL,
                       "rollout: action masks of width %d, the policy takes %s", mw,
                       mrl_policy_maskable(p) ? "masks of its output width" : "no masks");
  const float *adv = mrl_rollout_field_ptr(r, MRL_RO_ADVANTAGES);
  const float *ret = mrl_rollout_field_ptr(r, MRL_RO_RETURNS);
  if (tu_any_process(c->reduce, c->reduce_ud,
                     !mrl_all_finite(adv, (size_t)total) || !mrl_all_finite(ret, (size_t)total)))
    return mrl_errbuf_(err, errlen, MRL_ENONFINITE,
                   "rollout: non-finite advantages or returns (a NaN/Inf reward or value?); update refused");

  mrl_ppo_job *j = calloc(1, sizeof *j);
  if (!j) return mrl_errbuf_(err, errlen, MRL_ENOMEM, "ppo: out of memory");
  j->p = p; j->value = value; j->popt = popt; j->vopt = vopt; j->c = *c;
  j->rng = c->rng ? c->rng : mrl_policy_rng(p);
  j->total = total; j->od = od; j->aw = aw; j->mw = mw; j->np = np; j->nv = nv;
  j->masks = mw ? mrl_rollout_masks(r) : NULL;
  j->mb = c->minibatch_size;
  j->shards = c->shards > 1 ? c->shards : 1;
  j->nmbe = (total + j->mb - 1) / j->mb;
  j->kl_mode = kl_mode;
  j->obs = mrl_rollout_field_ptr(r, MRL_RO_OBS);
  j->act = mrl_rollout_field_ptr(r, MRL_RO_ACTIONS);
  j->logp = mrl_rollout_field_ptr(r, MRL_RO_LOGP);
  j->adv = adv; j->ret = ret;
  j->val = mrl_rollout_field_ptr(r, MRL_RO_VALUES);
  const int mb = j->mb;
  /* the reduce hook's buffer: both gradients side by side */
  size_t per_mb = (size_t)mb * (size_t)(od + aw + mw + 4) + (c->reduce ? np + nv : 0);
  j->buf = malloc(sizeof(float) * per_mb);
  j->idx = malloc(sizeof(int) * ((size_t)total + (j->shards > 1 ? (size_t)(total / j->shards) : 0)));
  /* the reduce hook's per-epoch advantage statistics: 2 + 3 per minibatch */
  int want_mstat = c->reduce && c->normalize_advantages && !kl_mode;
  if (want_mstat) j->mstat = malloc(sizeof(double) * 5 * (size_t)j->nmbe);
  if (kl_mode) {
    j->advn = malloc(sizeof(float) * 2 * (size_t)total);
    j->ent = j->advn ? j->advn + total : NULL;
  }
  if (!j->buf || !j->idx || (want_mstat && !j->mstat) || (kl_mode && !j->advn) ||
      tu_snap_take(&j->sp, mrl_policy_params(p), popt, np) ||
      tu_snap_take(&j->sv, mrl_net_params(value), vopt, nv)) {
    job_free(j);
    return mrl_errbuf_(err, errlen, MRL_ENOMEM, "ppo: out of memory");
  }
  minibatch *m = &j->m;
  m->obs = j->buf;
  m->actions = m->obs + (size_t)mb * od;
  m->logp = m->actions + (size_t)mb * aw;
  m->adv = m->logp + mb; m->ret = m->adv + mb; m->oldv = m->ret + mb;
  m->masks = mw ? m->oldv + mb : NULL;
  j->rbuf = c->reduce ? m->oldv + mb + (size_t)mb * mw : NULL;
  if (kl_mode && (st = kl_normalize(j))) {
    mrl_errbuf_(err, errlen, st, "%s", j->err);
    job_free(j);
    return st;
  }
  vhelper *h = &j->h;
  h->value = value; h->vopt = vopt; h->m = m; h->c = &j->c; h->nv = nv;
  atomic_init(&h->posted, 0);
  atomic_init(&h->claimed, 0);
  atomic_init(&h->done, 0);
  j->acc.kl_beta = c->kl_beta;
  *out = j;
  return MRL_OK;
}

/* The start of an epoch: a new order (and, with a reduce hook, the
** minibatches' global advantage statistics). */
static int epoch_begin(mrl_ppo_job *j) {
  if (j->shards > 1) shuffle_shards(j->idx, j->idx + j->total, j->total, j->shards, j->mb, j->rng);
  else tu_shuffle(j->idx, j->total, j->rng);
  j->epoch_kl = 0;
  j->epoch_mb = 0;
  if (j->mstat) {
    int st = epoch_adv_stats(&j->c, j->adv, j->idx, j->total, j->mb, j->mstat,
                             j->mstat + 2 * j->nmbe);
    if (st) return job_fail(j, st, "ppo_update: the reduce hook failed");
  }
  return MRL_OK;
}

static int helper_failed(mrl_ppo_job *j) {
  if (j->h.st_what == 1)
    return job_fail(j, j->h.st, "value loss: %s", mrl_net_error(j->value));
  return job_fail(j, j->h.st, "optimiser: %s", mrl_optim_error(j->vopt));
}

static void gather_rows(mrl_ppo_job *j, const int *ix, int n, const float *adv) {
  minibatch *m = &j->m;
  tu_gather(m->obs, j->obs, ix, n, j->od);
  tu_gather(m->actions, j->act, ix, n, j->aw);
  tu_gather(m->logp, j->logp, ix, n, 1);
  tu_gather(m->adv, adv, ix, n, 1);
  tu_gather(m->ret, j->ret, ix, n, 1);
  tu_gather(m->oldv, j->val, ix, n, 1);
  if (m->masks) tu_gather(m->masks, j->masks, ix, n, j->mw);
}

/* One minibatch of the clipped objective at j->pos: the policy's side
** here, the value network's on the helper (or here), one global norm. */
static int clip_minibatch(mrl_ppo_job *j) {
  const mrl_ppo_config *c = &j->c;
  const int start = j->pos, n = j->total - start < j->mb ? j->total - start : j->mb;
  vhelper *h = &j->h;
  minibatch *m = &j->m;
  /* the helper's previous step is done before its inputs change */
  vh_sync(h);
  if (h->st) return helper_failed(j);
  gather_rows(j, j->idx + start, n, j->adv);
  h->n = n;
  vh_post(h, VH_LOSS);
  mrl_ppo_opts lopts = {c->clip_eps, c->ent_coef, c->normalize_advantages};
  /* A single-sample minibatch has no std to normalise by. */
  lopts.normalize_advantages = c->normalize_advantages && n > 1;
  if (j->mstat) {
    /* the global statistics of this minibatch, from epoch_adv_stats */
    const double am = j->mstat[2 * (start / j->mb)], ai = j->mstat[2 * (start / j->mb) + 1];
    for (int i = 0; i < n; i++) m->adv[i] = (float)(((double)m->adv[i] - am) * ai);
    lopts.normalize_advantages = 0;
  }
  float *pg = mrl_policy_grad(j->p);
  mrl_ppo_stats ps;
  int st = mrl_policy_ppo_loss_masked(j->p, m->obs, m->masks, m->actions, m->logp, m->adv,
                                      n, &lopts, &ps);
  double nn_p = st ? 0 : sumsq(pg, j->np);
  vh_sync(h);
  if (st) return job_fail(j, st, "policy loss: %s", mrl_policy_error(j->p));
  if (h->st) return helper_failed(j);
  double vloss = h->vloss;
  if (c->reduce) {
    st = reduce_minibatch(c, j->rbuf, pg, j->np, mrl_net_grad(j->value), j->nv, n, &ps,
                          &vloss, &nn_p, &h->nn_v);
    if (st) return job_fail(j, st, "ppo_update: the reduce hook failed");
  }
  /* CleanRL: loss = pg − ent·H + vf_coef·½·v_loss, one norm over all. */
  double gnorm = sqrt(nn_p + h->nn_v);
  if (!isfinite(gnorm) || !isfinite(ps.loss) || !isfinite(vloss))
    return job_fail(j, MRL_ENONFINITE,
                    "ppo_update: non-finite %s in epoch %d; update refused, parameters restored",
                    !isfinite(ps.loss) ? "policy loss" : !isfinite(vloss) ? "value loss" : "gradient",
                    j->epoch + 1);
  h->clip_scale = 1.0f;
  if (c->max_grad_norm > 0 && gnorm > c->max_grad_norm) {
    h->clip_scale = (float)(c->max_grad_norm / (gnorm + 1e-6));
    scale(pg, j->np, h->clip_scale);
  }
  vh_post(h, VH_STEP);
  st = mrl_optim_step(j->popt, mrl_policy_params(j->p), pg, c->lr);
  if (st) return job_fail(j, st, "optimiser: %s", mrl_optim_error(j->popt));
  j->kl_sum += ps.approx_kl; j->clip_sum += ps.clip_fraction;
  j->pl_sum += ps.policy_loss; j->vl_sum += vloss; j->ent_sum += ps.entropy;
  j->gn_sum += gnorm;
  j->epoch_kl += ps.approx_kl; j->epoch_mb++;
  j->nmb++;
  return MRL_OK;
}

/* One minibatch of adaptive KL: −(mean ρA − β·KL(π_old‖π_θ)) on the
** policy (its own gradient norm clip), the plain squared error on the
** value network (the critic fit in the same minibatches). */
static int kl_minibatch(mrl_ppo_job *j) {
  const mrl_ppo_config *c = &j->c;
  const int start = j->pos, n = j->total - start < j->mb ? j->total - start : j->mb;
  minibatch *m = &j->m;
  gather_rows(j, j->idx + start, n, j->advn);
  double loss = 0, mkl = 0, vloss = 0, gnorm = 0;
  float *pg = mrl_policy_grad(j->p), *vg = mrl_net_grad(j->value);
  int st = mrl_policy_kl_penalty_loss_masked(j->p, j->sp.params, m->obs, m->masks, m->actions,
                                             m->logp, m->adv, n, j->acc.kl_beta, &loss, &mkl);
  if (st) return job_fail(j, st, "policy loss: %s", mrl_policy_error(j->p));
  if (c->reduce && (st = tu_reduce_mean(c->reduce, c->reduce_ud, pg, j->np, &loss, 1, n, NULL)))
    return job_fail(j, st, "ppo: the reduce hook failed");
  gnorm = sqrt(sumsq(pg, j->np));
  if (!isfinite(loss) || !isfinite(gnorm))
    return job_fail(j, MRL_ENONFINITE,
                    "ppo: non-finite %s in epoch %d; update refused, parameters restored",
                    !isfinite(loss) ? "policy loss" : "gradient", j->epoch + 1);
  if (c->max_grad_norm > 0) mrl_clip_grad_norm(pg, j->np, c->max_grad_norm, NULL);
  st = mrl_optim_step(j->popt, mrl_policy_params(j->p), pg, c->lr);
  if (st) return job_fail(j, st, "optimiser: %s", mrl_optim_error(j->popt));
  st = mrl_net_value_loss(j->value, m->obs, m->ret, n, &vloss, NULL);
  if (st) return job_fail(j, st, "value loss: %s", mrl_net_error(j->value));
  if (c->reduce && (st = tu_reduce_mean(c->reduce, c->reduce_ud, vg, j->nv, &vloss, 1, n, NULL)))
    return job_fail(j, st, "ppo: the reduce hook failed");
  if (!isfinite(vloss))
    return job_fail(j, MRL_ENONFINITE,
                    "ppo: non-finite value loss in epoch %d; update refused, parameters restored",
                    j->epoch + 1);
  st = mrl_optim_step(j->vopt, mrl_net_params(j->value), vg, c->lr);
  if (st) return job_fail(j, st, "optimiser: %s", mrl_optim_error(j->vopt));
  j->pl_sum += loss; j->vl_sum += vloss; j->gn_sum += gnorm;
  j->nmb++;
  return MRL_OK;
}

/* Adaptive KL, after the last epoch: the mean KL(π_old‖π_θ) and entropy
** over the batch (over all processes), then β's update. */
static int kl_finish(mrl_ppo_job *j) {
  double s[2] = {0, 0};
  int st = mrl_policy_kl_masked(j->p, j->sp.params, NULL, j->obs, j->masks, j->total, NULL, &s[0]);
  if (!st) st = mrl_policy_evaluate_masked(j->p, NULL, j->obs, j->masks, j->act, j->total, NULL,
                                           j->ent);
  if (st) return job_fail(j, st, "ppo: %s", mrl_policy_error(j->p));
  for (int i = 0; i < j->total; i++) s[1] += j->ent[i];
  s[1] /= j->total;
  if (j->c.reduce && (st = tu_reduce_mean(j->c.reduce, j->c.reduce_ud, NULL, 0, s, 2, j->total, NULL)))
    return job_fail(j, st, "ppo: the reduce hook failed");
  if (!isfinite(s[0]))
    return job_fail(j, MRL_ENONFINITE, "ppo: non-finite KL after the update; update refused, parameters restored");
  j->acc.approx_kl = s[0];
  j->acc.entropy = s[1];
  j->acc.kl_beta = mrl_kl_beta_update(j->acc.kl_beta, s[0], j->c.kl_target);
  return MRL_OK;
}

/* The end of an epoch: the value side done, the early stop (clip only). */
static int epoch_end(mrl_ppo_job *j) {
  if (!j->kl_mode) {
    vh_sync(&j->h);
    if (j->h.st) return helper_failed(j);
  }
  j->acc.epochs_done = j->epoch + 1;
  j->epoch++;
  j->pos = 0;
  /* SB3 stops once the KL passes 1.5·target; here the epoch's mean KL. */
  if (!j->kl_mode && j->c.target_kl > 0 && j->epoch_mb &&
      j->epoch_kl / j->epoch_mb > 1.5 * j->c.target_kl) {
    j->acc.stopped_early = 1;
    j->finished = 1;
  }
  if (j->epoch >= j->c.epochs) j->finished = 1;
  if (j->finished && j->kl_mode) return kl_finish(j);
  return MRL_OK;
}

int mrl_ppo_step(mrl_ppo_job *j, int max_minibatches, double max_seconds,
                 int *done) {
  if (done) *done = 1;
  if (!j) return MRL_EINVAL;
  if (j->status) return j->status;
  if (j->finished) return MRL_OK;
  vhelper *h = &j->h;
  /* the helper runs for this step only: between steps (a game's frames)
  ** it must not spin on a core */
  if (!j->kl_mode && want_helper(j->p, j->np, j->nv, j->mb) &&
      (h->w = policy_worker(j->p)) != NULL) {
    h->seen0 = atomic_load(&h->posted);
    worker_run(h->w, vh_main, h);
    h->running = 1;  /* no thread is no failure: the caller runs both sides */
  }
  const double t0 = max_seconds > 0 ? now_seconds() : 0;
  int st = MRL_OK, count = 0;
  /* A short tail minibatch is dropped only if empty; CleanRL's sizes
  ** divide evenly, others keep every sample. */
  while (!j->finished) {
    if (j->pos == 0 && (st = epoch_begin(j))) break;
    st = j->kl_mode ? kl_minibatch(j) : clip_minibatch(j);
    if (st) break;
    j->pos += j->mb;
    count++;
    if (j->pos >= j->total && (st = epoch_end(j))) break;
    if (max_minibatches > 0 && count >= max_minibatches) break;
    if (max_seconds > 0 && now_seconds() - t0 >= max_seconds) break;
  }
  vh_stop(h);
  if (!st && h->st) st = helper_failed(j);
  if (st) {
    j->status = st;
    job_restore(j);
    if (!strstr(j->err, "update refused")) {
      size_t k = strlen(j->err);
      snprintf(j->err + k, sizeof j->err - k, "; update refused, parameters restored");
    }
  }
  if (done) *done = j->finished || st;
  return st;
}

const char *mrl_ppo_job_error(const mrl_ppo_job *j) {
  return j ? j->err : "NULL job";
}

void mrl_ppo_job_progress(const mrl_ppo_job *j, int *epoch, int *minibatches,
                          int *finished) {
  if (epoch) *epoch = j ? j->epoch + (j->pos > 0) : 0;
  if (minibatches) *minibatches = j ? j->nmb : 0;
  if (finished) *finished = j ? j->finished : 0;
}

int mrl_ppo_end(mrl_ppo_job *j, mrl_ppo_report *rep, char *err,
                size_t errlen) {
  if (!j) return mrl_errbuf_(err, errlen, MRL_EINVAL, "ppo: NULL job");
  int st = j->status;
  if (!st && !j->finished) st = mrl_ppo_step(j, 0, 0, NULL);
  mrl_ppo_report acc = j->acc;
  if (st) {
    mrl_errbuf_(err, errlen, st, "%s", j->err);
  } else if (j->nmb) {
    const int nmb = j->nmb;
    acc.minibatches = nmb;
    acc.policy_loss = j->pl_sum / nmb;
    acc.value_loss = j->vl_sum / nmb;
    acc.grad_norm = j->gn_sum / nmb;
    if (!j->kl_mode) {
      acc.approx_kl = j->kl_sum / nmb;
      acc.clip_fraction = j->clip_sum / nmb;
      acc.entropy = j->ent_sum / nmb;
    }
    acc.explained_variance = explained_variance(j->val, j->ret, (size_t)j->total);
  }
  if (rep) *rep = acc;
  job_free(j);
  return st;
}

void mrl_ppo_abort(mrl_ppo_job *j) {
  if (!j) return;
  job_restore(j);
  job_free(j);
}

void mrl_ppo_discard(mrl_ppo_job *j) {
  if (j) job_free(j);
}

int mrl_ppo_update(mrl_policy *p, mrl_net *value, mrl_optim *popt,
                   mrl_optim *vopt, mrl_rollout *r, const mrl_ppo_config *c,
                   mrl_ppo_report *rep, char *err, size_t errlen) {
  mrl_ppo_job *j;
  int st = mrl_ppo_begin(&j, p, value, popt, vopt, r, c, err, errlen);
  if (st) {
    if (rep) memset(rep, 0, sizeof *rep);
    return st;
  }
  return mrl_ppo_end(j, rep, err, errlen);
}
