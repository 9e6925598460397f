/*
** vecenv.c — a batch of environments behind mrl_env_ops, and the env
** contract, written once for every binding.
**
** The vecenv owns the contiguous row buffers the envs write into
** ([N][obs_dim] obs and final_obs, [N] rewards and flags), clips box actions
** into a scratch copy before they reach the envs (the caller's buffer keeps
** the unclipped sample, which is what the policy's log-prob refers to), and
** through the commits checks each row and reward once, counts episodes,
** applies the time limit, keeps final_obs, and keeps a ring of finished
** episodes.  With blocks > 1 the blocks run on a pool (pool.h): the caller
** and blocks − 1 parked helpers.  A commit touches only its copy's slots
** and its block's message, so blocks never share a write; the ring is
** filled after the join, in copy order.  No allocation happens after
** mrl_vecenv_new.
**
** What a commit reads and writes per step lives in the copy's own cache
** line (ve_copy), which only its block's thread touches in a step; what
** the owner reads after the join (the block's status, each copy's reward
** and flags: ve_slot) is packed per block on lines of the block's own,
** which the block only stores to.  So
** blocks on different cores never write one line (the packed [N] reward and
** flag arrays would make them do so at every step), a helper never waits
** on a line the owner read last step, and the owner gathers a helper's
** results in one cache miss per 7 copies.  The fields helpers read (the ops,
** desc, buffers, the command) sit apart from those the owner writes per
** step, and the command is rewritten only when it changes.
*/
#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "moonrl.h"
#include "finite_row.h"
#include "pool.h"

/* Finished episodes kept between drains; when full the oldest are dropped,
** so a caller that never drains costs a bounded amount of memory. */
enum { VE_RING_MIN = 1024 };

/* One copy's state kept by its commits, alone on its cache line. */
typedef struct {
  _Alignas(64) double ep_return;  /* running return of the current episode */
  int64_t ep_length;
  double end_return;              /* the episode that ended at this step */
  int64_t end_length;
  int res;                        /* its result's ve_slot */
} ve_copy;

/* What the owner reads after the join: per block, from a line of its own,
** the status of the block's op, then one copy's step result per slot. */
typedef union {
  int st;
  struct {
    float reward;
    uint8_t terminated, truncated, ended;
  } r;
} ve_slot;

/* A block's message (read only after a failure), on lines of its own. */
typedef struct {
  _Alignas(64) char err[512];  /* a commit's message, "" if none */
} ve_blk;

struct mrl_vecenv {
  mrl_env_ops ops;
  void *ud;
  mrl_env_desc desc;        /* low/high point into bounds below */
  float *bounds;            /* [2][action_n] copies, NULL when unbounded */
  int width;                /* action_width: 1 if discrete, else action_n */
  float *obs, *final_obs;   /* [N][obs_dim] */
  float *rewards;           /* [N] */
  uint8_t *terminated, *truncated;
  float *act_scratch;       /* [N][width], clipped box actions */
  mrl_action_part *parts;   /* [desc.nparts] a composite action's parts */
  float *masks;             /* [N][desc.mask_width], NULL without masks */
  uint64_t *seeds;          /* [N] */
  ve_copy *copies;          /* [N] */
  ve_slot *res;             /* per block: status, results (see mrl_vecenv_new) */
  int *res_base;            /* [blocks] each block's status slot */
  ve_blk *blk;              /* [blocks] */
  int blocks;               /* >= 1 */
  pool *pool;               /* blocks - 1 helpers, NULL for one block */
  /* the run in flight (written only when it changes) */
  int cmd;                  /* VE_RESET or VE_STEP */
  const void *cmd_arg;      /* seeds or actions */
  char name[96];
  /* the owner's own, written per step: apart from what helpers read */
  _Alignas(64) double *ring_return;  /* [ring_cap] */
  int64_t *ring_length;
  int ring_cap, ring_head, ring_count;  /* head: index of the oldest */
  int64_t total_steps;
  int started;              /* a successful reset happened since the last failure */
  char err[600];
};

enum { VE_RESET = 1, VE_STEP = 2 };

static void ve_seterr(mrl_vecenv *v, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));
static void ve_seterr(mrl_vecenv *v, const char *fmt, ...) {
  va_list ap;
  va_start(ap, fmt);
  vsnprintf(v->err, sizeof v->err, fmt, ap);
  va_end(ap);
}

/* A composite action's parts: valid, and action_n their row width; the
** mask width, when there are masks, their categories (all categorical). */
static int parts_ok(const mrl_env_desc *d) {
  if (d->action_kind != MRL_COMPOSITE)
    return !d->parts && !d->nparts &&
           (!d->mask_width || (d->action_kind == MRL_DISCRETE && d->mask_width == d->action_n));
  if (!d->parts || d->nparts < 1 || d->nparts > MRL_MAX_WIDTH) return 0;
  int64_t width = 0, cats = 0, all_cat = 1;
  for (int k = 0; k < d->nparts; k++) {
    const mrl_action_part *q = &d->parts[k];
    if (q->n < 1 || q->n > MRL_MAX_WIDTH) return 0;
    if (q->type == MRL_PART_CATEGORICAL) {
      width += 1;
      cats += q->n;
    } else if (q->type == MRL_PART_GAUSSIAN || q->type == MRL_PART_BERNOULLI) {
      width += q->n;
      all_cat = 0;
    } else {
      return 0;
    }
  }
  if (width != d->action_n) return 0;
  return !d->mask_width || (all_cat && d->mask_width == cats);
}

static int desc_ok(const mrl_env_desc *d) {
  if (d->num_envs < 1 || d->num_envs > MRL_MAX_BATCH) return 0;
  if (d->obs_dim < 1 || d->obs_dim > MRL_MAX_WIDTH) return 0;
  if (d->action_kind != MRL_DISCRETE && d->action_kind != MRL_BOX &&
      d->action_kind != MRL_COMPOSITE)
    return 0;
  if (d->action_n < 1 || d->action_n > MRL_MAX_WIDTH) return 0;
  if (d->mask_width < 0 || d->mask_width > MRL_MAX_WIDTH || !parts_ok(d)) return 0;
  /* Both bounds or neither, and only for a box. */
  if ((d->low == NULL) != (d->high == NULL)) return 0;
  if (d->action_kind == MRL_DISCRETE && d->low) return 0;
  if (d->low)
    for (int j = 0; j < d->action_n; j++)
      if (isnan(d->low[j]) || isnan(d->high[j]) || d->low[j] > d->high[j])
        return 0;
  /* Rows × width must fit comfortably in size_t and in one batch. */
  if ((size_t)d->num_envs * (size_t)d->obs_dim > (size_t)MRL_MAX_BATCH * 64)
    return 0;
  if (d->blocks < 0 || d->blocks > d->num_envs || d->max_episode_steps < 0) return 0;
  return 1;
}

static void ve_release(mrl_vecenv *v) {
  free(v->bounds);
  free(v->obs);
  free(v->final_obs);
  free(v->rewards);
  free(v->terminated);
  free(v->truncated);
  free(v->act_scratch);
  free(v->parts);
  free(v->masks);
  free(v->seeds);
  free(v->copies);
  free(v->res);
  free(v->res_base);
  free(v->blk);
  free(v->ring_return);
  free(v->ring_length);
  pool_free(v->pool);
  free(v);
}

/* Zeroed, on its own cache lines (rows of blocks meet in one line at most). */
static void *ve_alloc(size_t bytes) {
  size_t k = (bytes + 63) / 64 * 64;
  void *q = aligned_alloc(64, k ? k : 64);
  if (q) memset(q, 0, k ? k : 64);
  return q;
}

int mrl_vecenv_new(mrl_vecenv **out, const mrl_env_ops *ops, void *ud,
                   const mrl_env_desc *desc) {
  if (out) *out = NULL;
  /* The vecenv owns ud from the start, so every failure destroys it. */
  if (!out || !ops || !desc || !ops->reset || !ops->step || !desc_ok(desc)) {
    if (ops && ops->destroy) ops->destroy(ud);
    return MRL_EINVAL;
  }
  mrl_vecenv *v = ve_alloc(sizeof *v);
  if (!v) {
    if (ops->destroy) ops->destroy(ud);
    return MRL_ENOMEM;
  }
  v->ops = *ops;
  v->ud = ud;
  v->desc = *desc;
  size_t n = (size_t)desc->num_envs, d = (size_t)desc->obs_dim;
  int an = desc->action_n;
  v->width = desc->action_kind == MRL_DISCRETE ? 1 : an;
  v->ring_cap = desc->num_envs * 4 > VE_RING_MIN ? desc->num_envs * 4 : VE_RING_MIN;
  v->obs = ve_alloc(n * d * sizeof(float));
  v->final_obs = ve_alloc(n * d * sizeof(float));
  v->rewards = calloc(n, sizeof(float));
  v->terminated = calloc(n, 1);
  v->truncated = calloc(n, 1);
  v->act_scratch = calloc(n * (size_t)v->width, sizeof(float));
  v->seeds = calloc(n, sizeof(uint64_t));
  v->copies = ve_alloc(n * sizeof(ve_copy));
  v->ring_return = calloc((size_t)v->ring_cap, sizeof(double));
  v->ring_length = calloc((size_t)v->ring_cap, sizeof(int64_t));
  v->blocks = desc->blocks > 1 ? desc->blocks : 1;
  v->desc.blocks = v->blocks;
  v->blk = ve_alloc((size_t)v->blocks * sizeof(ve_blk));
  /* each block's status and result slots from a line of their own (8 a line) */
  size_t nres = n + 8 * (size_t)v->blocks;
  v->res = ve_alloc(nres * sizeof(ve_slot));
  v->res_base = calloc((size_t)v->blocks, sizeof(int));
  snprintf(v->name, sizeof v->name, "%s", desc->name ? desc->name : "env");
  v->desc.name = v->name;
  int ok = v->obs && v->final_obs && v->rewards && v->terminated &&
           v->truncated && v->act_scratch && v->seeds && v->copies && v->res &&
           v->ring_return && v->ring_length && v->blk && v->res_base;
  if (ok) {
    int slot = 0;
    for (int k = 0; k < v->blocks; k++) {
      int first, count;
      mrl_vecenv_block(v, k, &first, &count);
      v->res_base[k] = slot++;
      for (int i = 0; i < count; i++) v->copies[first + i].res = slot++;
      slot = (slot + 7) / 8 * 8;
    }
  }
  if (ok && v->blocks > 1) ok = (v->pool = pool_new(v->blocks - 1)) != NULL;
  if (ok && desc->nparts) {
    ok = (v->parts = malloc((size_t)desc->nparts * sizeof *v->parts)) != NULL;
    if (ok) memcpy(v->parts, desc->parts, (size_t)desc->nparts * sizeof *v->parts);
    v->desc.parts = v->parts;
  }
  if (ok && desc->mask_width) {
    size_t total = n * (size_t)desc->mask_width;
    ok = (v->masks = malloc(total * sizeof(float))) != NULL;
    for (size_t i = 0; ok && i < total; i++) v->masks[i] = 1.0f;
  }
  if (ok && desc->low) {
    v->bounds = malloc(2 * (size_t)an * sizeof(float));
    if (v->bounds) {
      memcpy(v->bounds, desc->low, (size_t)an * sizeof(float));
      memcpy(v->bounds + an, desc->high, (size_t)an * sizeof(float));
      v->desc.low = v->bounds;
      v->desc.high = v->bounds + an;
    } else {
      ok = 0;
    }
  }
  if (!ok) {
    if (ops->destroy) ops->destroy(ud);
    ve_release(v);
    return MRL_ENOMEM;
  }
  *out = v;
  return MRL_OK;
}

void mrl_vecenv_free(mrl_vecenv *v) {
  if (!v) return;
  if (v->ops.destroy) v->ops.destroy(v->ud);
  ve_release(v);
}

const char *mrl_vecenv_error(const mrl_vecenv *v) {
  return v ? v->err : "NULL vecenv";
}

const mrl_env_desc *mrl_vecenv_desc(const mrl_vecenv *v) {
  return v ? &v->desc : NULL;
}

void mrl_vecenv_block(const mrl_vecenv *v, int block, int *first, int *count) {
  int64_t n = v->desc.num_envs, b = v->blocks;
  int lo = (int)(block * n / b), hi = (int)((block + 1) * n / b);
  *first = lo;
  *count = hi - lo;
}

float *mrl_vecenv_row(mrl_vecenv *v, int copy) {
  return v->obs + (size_t)copy * (size_t)v->desc.obs_dim;
}

static int ve_block_of(const mrl_vecenv *v, int copy) {
  /* the block whose range holds copy (see mrl_vecenv_block) */
  int64_t n = v->desc.num_envs, b = v->blocks;
  int k = (int)(((int64_t)copy * b + b - 1) / n);
  while (k > 0 && (int)(k * n / b) > copy) k--;
  while (k + 1 < b && (int)((k + 1) * n / b) <= copy) k++;
  return k;
}

static void ve_blk_err(mrl_vecenv *v, int copy, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));
static void ve_blk_err(mrl_vecenv *v, int copy, const char *fmt, ...) {
  char *out = v->blk[ve_block_of(v, copy)].err;
  int k = snprintf(out, 512, "env '%s' copy %d: ", v->name, copy);
  va_list ap;
  va_start(ap, fmt);
  if (k > 0 && k < 512) vsnprintf(out + k, 512 - (size_t)k, fmt, ap);
  va_end(ap);
}

static const char *ve_what_value(double x) {
  return x != x ? "NaN" : isinf(x) ? (x > 0 ? "inf" : "-inf") : "a value beyond float32";
}

/* The one finiteness check of an observation row. */
static int ve_check_row(mrl_vecenv *v, int copy, const char *what) {
  size_t d = (size_t)v->desc.obs_dim;
  const float *row = v->obs + (size_t)copy * d;
  if (finite_row(row, d)) return MRL_OK;
  for (size_t j = 0; j < d; j++)
    if (!isfinite(row[j])) {
      ve_blk_err(v, copy, "%s returned non-finite obs[%zu] = %s", what ? what : "env",
                 j + 1, ve_what_value(row[j]));
      break;
    }
  return MRL_ENONFINITE;
}

int mrl_vecenv_commit_reset(mrl_vecenv *v, int copy, const char *what) {
  int st = ve_check_row(v, copy, what);
  if (st != MRL_OK) return st;
  v->copies[copy].ep_return = 0.0;
  v->copies[copy].ep_length = 0;
  return MRL_OK;
}

int mrl_vecenv_commit_step(mrl_vecenv *v, int copy, const char *what,
                           double reward, int terminated, int truncated,
                           int *ended) {
  *ended = 0;
  int st = ve_check_row(v, copy, what);
  if (st != MRL_OK) return st;
  float r = (float)reward;
  if (!isfinite(r)) {
    ve_blk_err(v, copy, "%s returned non-finite reward = %s", what ? what : "env",
               ve_what_value(reward));
    return MRL_ENONFINITE;
  }
  ve_copy *c = &v->copies[copy];
  int64_t len = ++c->ep_length;
  c->ep_return += (double)r;
  /* the time limit: a terminated episode stays terminated */
  if (!terminated && v->desc.max_episode_steps > 0 && len >= v->desc.max_episode_steps)
    truncated = 1;
  ve_slot *o = &v->res[c->res];
  o->r.reward = r;
  o->r.terminated = (uint8_t)(terminated != 0);
  o->r.truncated = (uint8_t)(truncated != 0);
  o->r.ended = (uint8_t)(terminated || truncated);
  if (terminated || truncated) {
    size_t d = (size_t)v->desc.obs_dim;
    memcpy(v->final_obs + (size_t)copy * d, v->obs + (size_t)copy * d, d * sizeof(float));
    c->end_return = c->ep_return;
    c->end_length = len;
    c->ep_return = 0.0;
    c->ep_length = 0;
    *ended = 1;
  }
  return MRL_OK;
}

static void ve_run_block(void *arg, int k) {
  mrl_vecenv *v = arg;
  v->blk[k].err[0] = '\0';
  int st = v->cmd == VE_RESET ? v->ops.reset(v->ud, v, k, (const uint64_t *)v->cmd_arg)
                              : v->ops.step(v->ud, v, k, (const float *)v->cmd_arg);
  v->res[v->res_base[k]].st = st;
}

/* Runs the command on every block; the lowest failing block (so the lowest
** failing copy) reports, whatever the thread timing. */
static int ve_run(mrl_vecenv *v, int cmd, const void *arg, const char *what) {
  /* unchanged (step after step), the line helpers read stays in their caches */
  if (v->cmd != cmd) v->cmd = cmd;
  if (v->cmd_arg != arg) v->cmd_arg = arg;
  if (v->pool) {
    pool_start(v->pool, ve_run_block, v, v->blocks);
    pool_finish(v->pool, 1);
  } else {
    ve_run_block(v, 0);
  }
  for (int k = 0; k < v->blocks; k++) {
    int st = v->res[v->res_base[k]].st;
    if (st == MRL_OK) continue;
    if (v->blk[k].err[0]) {  /* a commit's: it names the env and copy */
      ve_seterr(v, "%s", v->blk[k].err);
      return st;
    }
    const char *m = v->ops.error ? v->ops.error(v->ud, k) : NULL;
    ve_seterr(v, "%s: %s", what, m && *m ? m : "environment failed without a message");
    return st == MRL_ENOMEM ? st : MRL_EENV;
  }
  return MRL_OK;
}

int mrl_vecenv_reset(mrl_vecenv *v, uint64_t seed) {
  if (!v) return MRL_EINVAL;
  int n = v->desc.num_envs;
  for (int i = 0; i < n; i++) v->seeds[i] = seed + (uint64_t)i;
  v->started = 0;
  int st = ve_run(v, VE_RESET, v->seeds, "reset");
  if (st != MRL_OK) return st;
  /* A reset abandons the running episodes; they are not reported. */
  memset(v->rewards, 0, (size_t)n * sizeof(float));
  memset(v->terminated, 0, (size_t)n);
  memset(v->truncated, 0, (size_t)n);
  v->started = 1;
  v->err[0] = '\0';
  return MRL_OK;
}

static void ve_push_episode(mrl_vecenv *v, double ret, int64_t len) {
  int slot;
  if (v->ring_count < v->ring_cap) {
    slot = (v->ring_head + v->ring_count) % v->ring_cap;
    v->ring_count++;
  } else {
    slot = v->ring_head;  /* overwrite the oldest */
    v->ring_head = (v->ring_head + 1) % v->ring_cap;
  }
  v->ring_return[slot] = ret;
  v->ring_length[slot] = len;
}

/* A composite action row, column by column: a categorical part's index
** exact and in range, a bernoulli part's bits 0 or 1, a gaussian part's
** numbers not NaN and clipped to their bounds (into act_scratch). */
static int ve_check_composite(mrl_vecenv *v, const float *actions, const float **send) {
  const int n = v->desc.num_envs, w = v->width;
  const float *lo = v->desc.low, *hi = v->desc.high;
  for (int i = 0; i < n; i++) {
    const float *a = actions + (size_t)i * w;
    float *c = v->act_scratch + (size_t)i * w;
    int col = 0;
    for (int k = 0; k < v->desc.nparts; k++) {
      const mrl_action_part *q = &v->parts[k];
      if (q->type == MRL_PART_CATEGORICAL) {
        float x = a[col];
        if (!(x >= 0 && x < (float)q->n) || x != floorf(x)) {
          ve_seterr(v, "step: action %g of part %d of env %d is not an index in [0, %d)",
                    (double)x, k + 1, i, q->n);
          return MRL_EINVAL;
        }
        c[col++] = x;
        continue;
      }
      for (int j = 0; j < q->n; j++, col++) {
        float x = a[col];
        if (q->type == MRL_PART_BERNOULLI && x != 0.0f && x != 1.0f) {
          ve_seterr(v, "step: bit %d of part %d of env %d is %g (expected 0 or 1)", j + 1,
                    k + 1, i, (double)x);
          return isnan(x) ? MRL_ENONFINITE : MRL_EINVAL;
        }
        if (isnan(x)) {
          ve_seterr(v, "step: action of env %d is NaN (part %d)", i, k + 1);
          return MRL_ENONFINITE;
        }
        if (lo && q->type == MRL_PART_GAUSSIAN) x = x < lo[col] ? lo[col] : x > hi[col] ? hi[col] : x;
        c[col] = x;
      }
    }
  }
  *send = v->act_scratch;
  return MRL_OK;
}

int mrl_vecenv_step(mrl_vecenv *v, const float *actions) {
  if (!v) return MRL_EINVAL;
  if (!actions) {
    ve_seterr(v, "step: actions is NULL");
    return MRL_EINVAL;
  }
  if (!v->started) {
    ve_seterr(v, "step: the envs need a reset first%s",
              v->err[0] ? " (the last call failed)" : "");
    return MRL_ESTATE;
  }
  int n = v->desc.num_envs, an = v->desc.action_n;
  const float *send = actions;
  if (v->desc.action_kind == MRL_DISCRETE) {
    /* A discrete action must be an exact index: anything else is a bug in
    ** the caller, and an env would silently misread it. */
    for (int i = 0; i < n; i++) {
      float a = actions[i];
      if (!(a >= 0 && a < (float)an) || a != floorf(a)) {
        ve_seterr(v, "step: action %g of env %d is not an index in [0, %d)",
                  (double)a, i, an);
        return MRL_EINVAL;
      }
    }
  } else if (v->desc.action_kind == MRL_COMPOSITE) {
    int st = ve_check_composite(v, actions, &send);
    if (st != MRL_OK) return st;
  } else {
    size_t total = (size_t)n * (size_t)an;
    for (size_t k = 0; k < total; k++)
      if (isnan(actions[k])) {
        ve_seterr(v, "step: action of env %zu is NaN", k / (size_t)an);
        return MRL_ENONFINITE;
      }
    if (v->desc.low) {
      const float *lo = v->desc.low, *hi = v->desc.high;
      for (int i = 0; i < n; i++) {
        const float *a = actions + (size_t)i * an;
        float *c = v->act_scratch + (size_t)i * an;
        for (int j = 0; j < an; j++)
          c[j] = a[j] < lo[j] ? lo[j] : a[j] > hi[j] ? hi[j] : a[j];
      }
      send = v->act_scratch;
    }
  }
  int st = ve_run(v, VE_STEP, send, "step");
  if (st != MRL_OK) {
    /* Some envs may have stepped and others not: only a reset can bring
    ** the batch back to a known state. */
    v->started = 0;
    return st;
  }
  /* in copy order; slots as laid out by mrl_vecenv_new (the copies' own
  ** lines are read only where an episode ended) */
  for (int k = 0; k < v->blocks; k++) {
    int first, count;
    mrl_vecenv_block(v, k, &first, &count);
    const ve_slot *o = &v->res[v->res_base[k] + 1];
    for (int i = first; i < first + count; i++, o++) {
      v->rewards[i] = o->r.reward;
      v->terminated[i] = o->r.terminated;
      v->truncated[i] = o->r.truncated;
      if (o->r.ended) ve_push_episode(v, v->copies[i].end_return, v->copies[i].end_length);
    }
  }
  v->total_steps += n;
  return MRL_OK;
}

const float *mrl_vecenv_obs(const mrl_vecenv *v) { return v ? v->obs : NULL; }
const float *mrl_vecenv_rewards(const mrl_vecenv *v) {
  return v ? v->rewards : NULL;
}
const uint8_t *mrl_vecenv_terminated(const mrl_vecenv *v) {
  return v ? v->terminated : NULL;
}
const uint8_t *mrl_vecenv_truncated(const mrl_vecenv *v) {
  return v ? v->truncated : NULL;
}
const float *mrl_vecenv_final_obs(const mrl_vecenv *v) {
  return v ? v->final_obs : NULL;
}

int mrl_vecenv_drain_episodes(mrl_vecenv *v, double *returns,
                              int64_t *lengths, int cap) {
  if (!v || cap <= 0) return 0;
  int k = v->ring_count < cap ? v->ring_count : cap;
  for (int j = 0; j < k; j++) {
    int slot = (v->ring_head + j) % v->ring_cap;
    if (returns) returns[j] = v->ring_return[slot];
    if (lengths) lengths[j] = v->ring_length[slot];
  }
  v->ring_head = (v->ring_head + k) % v->ring_cap;
  v->ring_count -= k;
  return k;
}

int64_t mrl_vecenv_total_steps(const mrl_vecenv *v) {
  return v ? v->total_steps : 0;
}

/* ------------------------------------------------------------- masks */

float *mrl_vecenv_mask_row(mrl_vecenv *v, int copy) {
  return v && v->masks ? v->masks + (size_t)copy * (size_t)v->desc.mask_width : NULL;
}

int mrl_vecenv_commit_mask(mrl_vecenv *v, int copy, const char *what) {
  const float *m = mrl_vecenv_mask_row(v, copy);
  if (!m) return MRL_EINVAL;
  const int k = v->desc.mask_width;
  for (int j = 0; j < k; j++)
    if (m[j] != 0.0f && m[j] != 1.0f) {
      ve_blk_err(v, copy, "%s returned mask entry %d = %g (expected 0 or 1)", what, j + 1,
                 (double)m[j]);
      return MRL_EINVAL;
    }
  /* each categorical part needs a valid action */
  int nparts = v->desc.action_kind == MRL_COMPOSITE ? v->desc.nparts : 1, col = 0;
  for (int q = 0; q < nparts; q++) {
    int nq = v->desc.action_kind == MRL_COMPOSITE ? v->parts[q].n : k, any = 0;
    for (int j = 0; j < nq; j++) any |= m[col + j] != 0.0f;
    if (!any) {
      if (nparts > 1)
        ve_blk_err(v, copy, "%s returned a mask with no valid action in part %d", what, q + 1);
      else
        ve_blk_err(v, copy, "%s returned a mask with no valid action", what);
      return MRL_EINVAL;
    }
    col += nq;
  }
  return MRL_OK;
}

const float *mrl_vecenv_masks(const mrl_vecenv *v) { return v ? v->masks : NULL; }
int mrl_vecenv_mask_width(const mrl_vecenv *v) { return v ? v->desc.mask_width : 0; }
