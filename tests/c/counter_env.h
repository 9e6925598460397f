/* counter_env.h — a tiny deterministic C env behind mrl_env_ops, shared by
** test_vecenv.c and test_rollout.c.
**
** Env i keeps a counter c (0 after reset) and a seed s.  obs = {c, s mod 10000}.
** reward = 1 + the action (discrete index, or action[0] for a box).
** Env i terminates when c reaches term_at[i] (0 = never) and is truncated
** when c reaches trunc_at (0 = never, terminated wins).  fail_at_step > 0
** makes the step with that global number fail; nan_at_step puts a NaN in
** env 0's obs.  The time limit of a vecenv (desc.max_episode_steps) is the
** vecenv's own, on top of trunc_at.  The last actions received are kept for the clipping test. */
#ifndef COUNTER_ENV_H
#define COUNTER_ENV_H
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "moonrl.h"

enum { CE_MAX = 16, CE_WIDTH = 2 };

typedef struct counter_env {
  int n, width;
  int counter[CE_MAX];
  uint64_t seed[CE_MAX];
  int term_at[CE_MAX];
  int trunc_at;
  int steps_done;        /* global step calls */
  int fail_at_step, nan_at_step;
  float last_actions[CE_MAX * CE_WIDTH];
  int *destroyed;        /* set to 1 by destroy */
  char err[128];
} counter_env;

static void ce_obs(counter_env *e, int i, float *row) {
  row[0] = (float)e->counter[i];
  row[1] = (float)(e->seed[i] % 10000);
}

static int ce_reset(void *ud, mrl_vecenv *v, int block, const uint64_t *seeds) {
  counter_env *e = ud;
  int first, count;
  mrl_vecenv_block(v, block, &first, &count);
  for (int i = first; i < first + count; i++) {
    if (seeds) e->seed[i] = seeds[i];
    e->counter[i] = 0;
    ce_obs(e, i, mrl_vecenv_row(v, i));
    int st = mrl_vecenv_commit_reset(v, i, "reset");
    if (st != MRL_OK) return st;
  }
  return MRL_OK;
}

static int ce_step(void *ud, mrl_vecenv *v, int block, const float *actions) {
  counter_env *e = ud;
  int first, count;
  mrl_vecenv_block(v, block, &first, &count);
  if (block == 0) e->steps_done++;
  if (block == 0 && e->steps_done == e->fail_at_step) {
    snprintf(e->err, sizeof e->err, "counter env copy 1: boom at step %d",
             e->steps_done);
    return MRL_EENV;
  }
  memcpy(e->last_actions + first * e->width, actions + first * e->width,
         (size_t)count * e->width * sizeof(float));
  for (int i = first; i < first + count; i++) {
    float *row = mrl_vecenv_row(v, i);
    e->counter[i]++;
    int term = e->term_at[i] > 0 && e->counter[i] >= e->term_at[i];
    int trunc = !term && e->trunc_at > 0 && e->counter[i] >= e->trunc_at;
    ce_obs(e, i, row);
    if (i == 0 && e->steps_done == e->nan_at_step) row[1] = 0.0f / 0.0f;
    int ended;
    int st = mrl_vecenv_commit_step(v, i, "step", 1.0 + actions[i * e->width], term,
                                    trunc, &ended);
    if (st != MRL_OK) return st;
    if (ended) {
      /* A new episode: the generator "continues" (seed + 1000). */
      e->seed[i] += 1000;
      e->counter[i] = 0;
      ce_obs(e, i, row);
      if ((st = mrl_vecenv_commit_reset(v, i, "reset")) != MRL_OK) return st;
    }
  }
  return MRL_OK;
}

static const char *ce_error(void *ud, int block) {
  (void)block;
  return ((counter_env *)ud)->err;
}

static void ce_destroy(void *ud) {
  counter_env *e = ud;
  if (e->destroyed) *e->destroyed = 1;
  free(e);
}

static const mrl_env_ops ce_ops = {ce_reset, ce_step, ce_error, ce_destroy};

static counter_env *ce_new(int n, int width) {
  counter_env *e = calloc(1, sizeof *e);
  if (e) {
    e->n = n;
    e->width = width;
  }
  return e;
}
#endif
