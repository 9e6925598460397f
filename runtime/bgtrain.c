/*
** bgtrain.c — PPO updates on a background thread (see moonrl.h, "background
** training").  The trainer side (a policy, a value net, two optimisers, a
** rollout to train on) belongs to the job while it runs; the game thread
** touches it only before worker_run and after worker_done/worker_wait
** (worker.h's lock orders the two), and never shares its own networks.
**
** `state` is read and written by the owner thread only; the job writes
** `job_status`, `job_err` and `job_rep`, which the owner reads once the
** worker says the call has returned.
*/
#include <stdarg.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "moonrl.h"
#include "policy_impl.h"
#include "worker.h"

struct mrl_bgtrain {
  mrl_policy *p;
  mrl_net *v;
  mrl_optim *po, *vo;
  worker *w;
  /* the batch, copied in by submit */
  mrl_rollout *r;
  int steps, num_envs, od, aw;
  float *boot;        /* [N][od]: s_T when the thread bootstraps */
  int use_gae;
  double gamma, lambda;
  mrl_ppo_config cfg;
  /* owner side */
  mrl_bg_state state;
  int have_report;
  int64_t updates;
  mrl_ppo_report rep;
  char err[512];
  /* set by the owner to end a running update early (cancel, free) */
  atomic_int cancel;
  /* job side */
  int job_status;
  mrl_ppo_report job_rep;
  char job_err[480];
};

static int bg_fail(mrl_bgtrain *bg, int status, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));
static int bg_fail(mrl_bgtrain *bg, int status, const char *fmt, ...) {
  va_list ap;
  va_start(ap, fmt);
  vsnprintf(bg->err, sizeof bg->err, fmt, ap);
  va_end(ap);
  return status;
}

int mrl_bgtrain_new(mrl_bgtrain **out, const mrl_policy *p,
                    const mrl_net *value, const mrl_optim *popt,
                    const mrl_optim *vopt) {
  if (!out) return MRL_EINVAL;
  *out = NULL;
  if (!p || !value || !popt || !vopt) return MRL_EINVAL;
  if (mrl_net_in_dim(value) != mrl_policy_obs_dim(p) ||
      mrl_net_out_dim(value) != 1 ||
      mrl_optim_nparams(popt) != mrl_policy_nparams(p) ||
      mrl_optim_nparams(vopt) != mrl_net_nparams(value))
    return MRL_EINVAL;
  mrl_bgtrain *bg = calloc(1, sizeof *bg);
  if (!bg) return MRL_ENOMEM;
  int st = mrl_policy_clone(&bg->p, p);
  if (!st) st = mrl_net_clone(&bg->v, value);
  if (!st) st = mrl_optim_clone(&bg->po, popt);
  if (!st) st = mrl_optim_clone(&bg->vo, vopt);
  if (!st && !(bg->w = worker_new())) st = MRL_ENOMEM;
  if (st) {
    mrl_bgtrain_free(bg);
    return st;
  }
  /* the update runs on one thread: a value helper would take the core
  ** the game runs on (the result is the same bits either way) */
  bg->p->solo = 1;
  bg->od = mrl_policy_obs_dim(p);
  bg->aw = mrl_policy_action_width(p);
  *out = bg;
  return MRL_OK;
}

static void bg_free_batch(mrl_bgtrain *bg) {
  mrl_rollout_free(bg->r);
  free(bg->boot);
  bg->r = NULL;
  bg->boot = NULL;
  bg->steps = bg->num_envs = 0;
}

void mrl_bgtrain_free(mrl_bgtrain *bg) {
  if (!bg) return;
  if (bg->w) {
    atomic_store(&bg->cancel, 1);
    worker_wait(bg->w);
    worker_free(bg->w);
  }
  bg_free_batch(bg);
  mrl_policy_free(bg->p);
  mrl_net_free(bg->v);
  mrl_optim_free(bg->po);
  mrl_optim_free(bg->vo);
  free(bg);
}

const char *mrl_bgtrain_error(const mrl_bgtrain *bg) {
  return bg ? bg->err : "NULL bgtrain";
}

/* ------------------------------------------------------------- the job */

static int job_fail(mrl_bgtrain *bg, int status, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));
static int job_fail(mrl_bgtrain *bg, int status, const char *fmt, ...) {
  va_list ap;
  va_start(ap, fmt);
  vsnprintf(bg->job_err, sizeof bg->job_err, fmt, ap);
  va_end(ap);
  return status;
}

/* V(s_t), the bootstrap values and GAE with the trainer's critic (the
** rollout engine's, as an agent filling a rollout by hand gets them). */
static int job_gae(mrl_bgtrain *bg) {
  int st = mrl_rollout_bootstrap(bg->r, bg->v, bg->boot);
  if (!st) st = mrl_rollout_gae(bg->r, bg->gamma, bg->lambda);
  if (st)
    return job_fail(bg, st, "%s%s", mrl_rollout_error(bg->r),
                    st == MRL_ENONFINITE ? "; update refused" : "");
  return MRL_OK;
}

/* The one call the thread makes: the update as a job (mrl_ppo_begin,
** steps, end), checked for a cancel between minibatches. */
static int job_update(mrl_bgtrain *bg) {
  if (bg->use_gae) {
    int st = job_gae(bg);
    if (st) return st;
  }
  mrl_ppo_job *job;
  int st = mrl_ppo_begin(&job, bg->p, bg->v, bg->po, bg->vo, bg->r, &bg->cfg,
                         bg->job_err, sizeof bg->job_err);
  if (st) return st;
  /* a minibatch at a time, so a cancel is seen within one */
  for (int done = 0; !done;) {
    if (atomic_load_explicit(&bg->cancel, memory_order_relaxed)) {
      mrl_ppo_abort(job);
      return job_fail(bg, MRL_ESTATE, "cancelled; the trainer is as before the update");
    }
    if (mrl_ppo_step(job, 1, 0, &done)) break;  /* failed: end reports it */
  }
  return mrl_ppo_end(job, &bg->job_rep, bg->job_err, sizeof bg->job_err);
}

static void job_main(void *arg) {
  mrl_bgtrain *bg = arg;
  bg->job_err[0] = '\0';
  memset(&bg->job_rep, 0, sizeof bg->job_rep);
  bg->job_status = job_update(bg);
}

/* ------------------------------------------------------- owner calls */

/* running → done/failed once the thread has returned. */
static mrl_bg_state bg_refresh(mrl_bgtrain *bg) {
  if (bg->state != MRL_BG_RUNNING || !worker_done(bg->w)) return bg->state;
  worker_wait(bg->w);  /* returns at once; closes the run for the pool */
  if (bg->job_status) {
    bg->state = MRL_BG_FAILED;
    bg_fail(bg, bg->job_status, "background update: %s", bg->job_err);
  } else {
    bg->state = MRL_BG_DONE;
    bg->rep = bg->job_rep;
    bg->have_report = 1;
    bg->updates++;
    bg->err[0] = '\0';
  }
  return bg->state;
}

/* Buffers for T×N (kept while the size stays). */
static int bg_alloc(mrl_bgtrain *bg, int T, int N) {
  if (bg->r && bg->steps == T && bg->num_envs == N) return MRL_OK;
  bg_free_batch(bg);
  int st = mrl_rollout_new(&bg->r, T, N, bg->od, bg->aw);
  if (st) return st;
  bg->boot = malloc(sizeof(float) * (size_t)N * (size_t)bg->od);
  if (!bg->boot) {
    bg_free_batch(bg);
    return MRL_ENOMEM;
  }
  bg->steps = T;
  bg->num_envs = N;
  return MRL_OK;
}

/* Shared checks of both submit calls; then the thread is started by
** bg_start. */
static int bg_check(mrl_bgtrain *bg, const mrl_ppo_config *c) {
  if (bg_refresh(bg) == MRL_BG_RUNNING)
    return bg_fail(bg, MRL_ESTATE, "submit: an update is running (poll or wait first)");
  if (!c) return bg_fail(bg, MRL_EINVAL, "submit: NULL config");
  if (c->reduce)
    return bg_fail(bg, MRL_EINVAL, "submit: a reduce hook cannot run on the background thread");
  return MRL_OK;
}

static int bg_check_gae(mrl_bgtrain *bg, double gamma, double lambda) {
  if (!(gamma >= 0 && gamma <= 1 && lambda >= 0 && lambda <= 1))
    return bg_fail(bg, MRL_EINVAL, "submit: gamma %g and lambda %g must lie in [0, 1]",
                   gamma, lambda);
  return MRL_OK;
}

static void bg_start(mrl_bgtrain *bg, const float *boot, double gamma,
                     double lambda, const mrl_ppo_config *c) {
  bg->use_gae = boot != NULL;
  if (boot) memcpy(bg->boot, boot, sizeof(float) * (size_t)bg->num_envs * (size_t)bg->od);
  bg->gamma = gamma;
  bg->lambda = lambda;
  bg->cfg = *c;
  atomic_store(&bg->cancel, 0);
  bg->state = MRL_BG_RUNNING;
  bg->err[0] = '\0';
  worker_run(bg->w, job_main, bg);
}

static void copy_f(float *dst, const float *src, size_t n) {
  memcpy(dst, src, n * sizeof(float));
}

int mrl_bgtrain_submit(mrl_bgtrain *bg, const mrl_bg_batch *b,
                       const mrl_ppo_config *c) {
  if (!bg) return MRL_EINVAL;
  int st = bg_check(bg, c);
  if (st) return st;
  if (!b) return bg_fail(bg, MRL_EINVAL, "submit: NULL batch");
  const int T = b->steps, N = b->num_envs;
  if (T < 1 || N < 1 || T > MRL_MAX_BATCH || N > MRL_MAX_BATCH ||
      (double)T * N > MRL_MAX_BATCH)
    return bg_fail(bg, MRL_EINVAL, "submit: steps %d × num_envs %d: expected 1..%d rows",
                   T, N, MRL_MAX_BATCH);
  const int gae = b->boot_obs != NULL;
  if (!b->obs || !b->actions || !b->logp)
    return bg_fail(bg, MRL_EINVAL, "submit: obs, actions and logp are required");
  if (gae && (!b->rewards || !b->terminated || !b->truncated))
    return bg_fail(bg, MRL_EINVAL, "submit: rewards, terminated and truncated are required with boot_obs");
  if (!gae && (!b->values || !b->advantages || !b->returns))
    return bg_fail(bg, MRL_EINVAL, "submit: values, advantages and returns are required without boot_obs");
  if (gae && (st = bg_check_gae(bg, b->gamma, b->lambda))) return st;
  if ((st = bg_alloc(bg, T, N)))
    return bg_fail(bg, st, "submit: out of memory for %d × %d transitions", T, N);

  mrl_rollout *r = bg->r;
  const size_t rows = (size_t)T * (size_t)N, od = (size_t)bg->od;
  copy_f(mrl_rollout_field_ptr(r, MRL_RO_OBS), b->obs, rows * od);
  copy_f(mrl_rollout_field_ptr(r, MRL_RO_ACTIONS), b->actions, rows * (size_t)bg->aw);
  copy_f(mrl_rollout_field_ptr(r, MRL_RO_LOGP), b->logp, rows);
  if (gae) {
    copy_f(mrl_rollout_field_ptr(r, MRL_RO_REWARDS), b->rewards, rows);
    memcpy(mrl_rollout_terminated(r), b->terminated, rows);
    memcpy(mrl_rollout_truncated(r), b->truncated, rows);
    /* a truncated step's final observation (or none: V(s_t) then) */
    for (size_t k = 0; k < rows; k++)
      if (b->truncated[k] && !b->terminated[k] &&
          (st = mrl_rollout_put_outcome(r, (int)(k / (size_t)N), (int)(k % (size_t)N),
                                        b->rewards[k], 0, 1,
                                        b->final_obs ? b->final_obs + k * od : NULL)))
        return bg_fail(bg, st, "submit: %s", mrl_rollout_error(r));
  } else {
    copy_f(mrl_rollout_field_ptr(r, MRL_RO_VALUES), b->values, rows);
    copy_f(mrl_rollout_field_ptr(r, MRL_RO_ADVANTAGES), b->advantages, rows);
    copy_f(mrl_rollout_field_ptr(r, MRL_RO_RETURNS), b->returns, rows);
  }
  bg_start(bg, gae ? b->boot_obs : NULL, b->gamma, b->lambda, c);
  return MRL_OK;
}

int mrl_bgtrain_submit_rollout(mrl_bgtrain *bg, mrl_rollout *r,
                               const float *boot_obs, double gamma,
                               double lambda, const mrl_ppo_config *c) {
  if (!bg) return MRL_EINVAL;
  int st = bg_check(bg, c);
  if (st) return st;
  if (!r) return bg_fail(bg, MRL_EINVAL, "submit: NULL rollout");
  if (boot_obs && (st = bg_check_gae(bg, gamma, lambda))) return st;
  const int T = mrl_rollout_steps(r), N = mrl_rollout_num_envs(r);
  if ((st = bg_alloc(bg, T, N)))
    return bg_fail(bg, st, "submit: out of memory for %d × %d transitions", T, N);
  if ((st = mrl_rollout_copy(bg->r, r)))
    return bg_fail(bg, st, "submit: the rollout (%d steps × %d envs, obs_dim %d) does not fit the policy: %s",
                   T, N, bg->od, mrl_rollout_error(bg->r));
  bg_start(bg, boot_obs, gamma, lambda, c);
  return MRL_OK;
}

mrl_bg_state mrl_bgtrain_poll(mrl_bgtrain *bg) {
  return bg ? bg_refresh(bg) : MRL_BG_IDLE;
}

mrl_bg_state mrl_bgtrain_cancel(mrl_bgtrain *bg) {
  if (!bg) return MRL_BG_IDLE;
  if (bg_refresh(bg) == MRL_BG_RUNNING) {
    atomic_store(&bg->cancel, 1);
    worker_wait(bg->w);
  }
  return bg_refresh(bg);
}

mrl_bg_state mrl_bgtrain_wait(mrl_bgtrain *bg) {
  if (!bg) return MRL_BG_IDLE;
  if (bg->state == MRL_BG_RUNNING) worker_wait(bg->w);
  return bg_refresh(bg);
}

int mrl_bgtrain_publish(mrl_bgtrain *bg, mrl_policy *p, mrl_net *value) {
  if (!bg) return MRL_EINVAL;
  mrl_bg_state s = bg_refresh(bg);
  if (s != MRL_BG_DONE)
    return bg_fail(bg, MRL_ESTATE, "publish: nothing to publish (%s)",
                   s == MRL_BG_RUNNING ? "the update is running"
                   : s == MRL_BG_FAILED ? "the update failed"
                                        : "no update has finished since the last publish");
  if (!p && !value) return bg_fail(bg, MRL_EINVAL, "publish: no policy and no value net");
  if (p && mrl_policy_nparams(p) != mrl_policy_nparams(bg->p))
    return bg_fail(bg, MRL_EINVAL, "publish: the policy has %zu parameters, the trainer's %zu",
                   mrl_policy_nparams(p), mrl_policy_nparams(bg->p));
  if (value && mrl_net_nparams(value) != mrl_net_nparams(bg->v))
    return bg_fail(bg, MRL_EINVAL, "publish: the value net has %zu parameters, the trainer's %zu",
                   mrl_net_nparams(value), mrl_net_nparams(bg->v));
  if (p) copy_f(mrl_policy_params(p), mrl_policy_params(bg->p), mrl_policy_nparams(p));
  if (value) copy_f(mrl_net_params(value), mrl_net_params(bg->v), mrl_net_nparams(value));
  bg->state = MRL_BG_IDLE;
  return MRL_OK;
}

/* mrl_optim_copy would accept it: the same size and moments kept. */
static int optim_fits(mrl_optim *a, const mrl_optim *b) {
  mrl_optim *mb = (mrl_optim *)b;  /* only read */
  return mrl_optim_nparams(a) == mrl_optim_nparams(b) &&
         !mrl_optim_moment(a, 0) == !mrl_optim_moment(mb, 0) &&
         !mrl_optim_moment(a, 1) == !mrl_optim_moment(mb, 1);
}

/* Copies src's state into dst (policy, net, optimisers; each pair
** nullable); checks every size and kind before copying anything. */
static int bg_copy(mrl_bgtrain *bg, const char *fn, mrl_policy *pd,
                   const mrl_policy *ps, mrl_net *vd, const mrl_net *vs,
                   mrl_optim *pod, const mrl_optim *pos, mrl_optim *vod,
                   const mrl_optim *vos) {
  if (bg_refresh(bg) == MRL_BG_RUNNING)
    return bg_fail(bg, MRL_ESTATE, "%s: an update is running (wait first)", fn);
  if ((ps && mrl_policy_nparams(pd) != mrl_policy_nparams(ps)) ||
      (vs && mrl_net_nparams(vd) != mrl_net_nparams(vs)))
    return bg_fail(bg, MRL_EINVAL, "%s: network sizes differ from the trainer's", fn);
  if ((pos && !optim_fits(pod, pos)) || (vos && !optim_fits(vod, vos)))
    return bg_fail(bg, MRL_EINVAL, "%s: an optimiser's kind or size differs from the trainer's", fn);
  if (pos) mrl_optim_copy(pod, pos);
  if (vos) mrl_optim_copy(vod, vos);
  if (ps) {
    copy_f(pd->params, ps->params, ps->nparams);
    pd->rng = ps->rng;
  }
  if (vs) mrl_net_get_params(vs, mrl_net_params(vd), mrl_net_nparams(vs));
  return MRL_OK;
}

int mrl_bgtrain_sync_in(mrl_bgtrain *bg, const mrl_policy *p,
                        const mrl_net *value, const mrl_optim *popt,
                        const mrl_optim *vopt) {
  if (!bg) return MRL_EINVAL;
  int st = bg_copy(bg, "sync_in", bg->p, p, bg->v, value, bg->po, popt, bg->vo, vopt);
  if (!st) bg->state = MRL_BG_IDLE;
  return st;
}

int mrl_bgtrain_sync_out(mrl_bgtrain *bg, mrl_policy *p, mrl_net *value,
                         mrl_optim *popt, mrl_optim *vopt) {
  if (!bg) return MRL_EINVAL;
  return bg_copy(bg, "sync_out", p, p ? bg->p : NULL, value, value ? bg->v : NULL,
                 popt, popt ? bg->po : NULL, vopt, vopt ? bg->vo : NULL);
}

int mrl_bgtrain_report(mrl_bgtrain *bg, mrl_ppo_report *out) {
  if (!bg || !out) return MRL_EINVAL;
  if (bg_refresh(bg) == MRL_BG_RUNNING)
    return bg_fail(bg, MRL_ESTATE, "report: the update is running");
  if (!bg->have_report) return bg_fail(bg, MRL_ESTATE, "report: no update has finished");
  *out = bg->rep;
  return MRL_OK;
}

int64_t mrl_bgtrain_updates(const mrl_bgtrain *bg) { return bg ? bg->updates : 0; }

mrl_policy *mrl_bgtrain_policy(mrl_bgtrain *bg) {
  return bg && bg_refresh(bg) != MRL_BG_RUNNING ? bg->p : NULL;
}
mrl_net *mrl_bgtrain_value(mrl_bgtrain *bg) {
  return bg && bg_refresh(bg) != MRL_BG_RUNNING ? bg->v : NULL;
}
mrl_optim *mrl_bgtrain_optim(mrl_bgtrain *bg, int which) {
  if (!bg || bg_refresh(bg) == MRL_BG_RUNNING) return NULL;
  return which == 0 ? bg->po : which == 1 ? bg->vo : NULL;
}
