/* bench_cartpole_c.c — the C limit for bench/bench_rollout.lua: Gymnasium's
** CartPole-v1 dynamics in plain C (same constants and euler step as
** envs/CartPole-v1.lua), random actions, auto-reset, 500-step time limit.
**
**   1. the bare dynamics loop (no moonrl at all): the ceiling for any engine;
**   2. the same envs behind mrl_env_ops, collected by mrl_rollout_collect
**      with a 4-64-64-2 policy and a 4-64-64-1 value net (num_envs 8):
**      the ceiling of collection when the env costs nothing.
** Prints one "name: N steps/s" line per figure; bench_rollout.lua reads
** the first.  Each figure runs for at least 0.5 s. */
#include <math.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "moonrl.h"

static double now(void) {
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return (double)ts.tv_sec + 1e-9 * (double)ts.tv_nsec;
}

typedef struct cp {
  double s[4];
  int t;
  uint64_t rng;
} cp;

static uint64_t xs(uint64_t *x) {  /* xorshift64*, enough for a benchmark */
  *x ^= *x >> 12;
  *x ^= *x << 25;
  *x ^= *x >> 27;
  return *x * 2685821657736338717ull;
}
static double unif(uint64_t *x) { return (double)(xs(x) >> 11) * (1.0 / 9007199254740992.0); }

static void cp_reset(cp *e) {
  for (int j = 0; j < 4; j++) e->s[j] = -0.05 + 0.1 * unif(&e->rng);
  e->t = 0;
}

/* One step; returns 1 terminated, 2 truncated, 0 running. */
static int cp_step(cp *e, int action) {
  const double g = 9.8, mc = 1.0, mp = 0.1, tm = mp + mc, len = 0.5;
  const double pml = mp * len, force_mag = 10.0, tau = 0.02;
  const double th_lim = 12 * 2 * M_PI / 360, x_lim = 2.4;
  double x = e->s[0], xd = e->s[1], th = e->s[2], thd = e->s[3];
  double force = action == 1 ? force_mag : -force_mag;
  double c = cos(th), s = sin(th);
  double temp = (force + pml * thd * thd * s) / tm;
  double thacc = (g * s - c * temp) / (len * (4.0 / 3.0 - mp * c * c / tm));
  double xacc = temp - pml * thacc * c / tm;
  x += tau * xd;
  xd += tau * xacc;
  th += tau * thd;
  thd += tau * thacc;
  e->s[0] = x; e->s[1] = xd; e->s[2] = th; e->s[3] = thd;
  e->t++;
  if (x < -x_lim || x > x_lim || th < -th_lim || th > th_lim) return 1;
  return e->t >= 500 ? 2 : 0;
}

/* ---- the same envs behind mrl_env_ops */
enum { NE = 8 };
typedef struct cpvec { cp e[NE]; } cpvec;

static void cp_obs(const cp *e, float *row) {
  for (int j = 0; j < 4; j++) row[j] = (float)e->s[j];
}
static int v_reset(void *ud, mrl_vecenv *v, int block, const uint64_t *seeds) {
  cpvec *c = ud;
  (void)block;  /* one block */
  for (int i = 0; i < NE; i++) {
    if (seeds) c->e[i].rng = seeds[i] * 0x9E3779B97F4A7C15ull + 1;
    cp_reset(&c->e[i]);
    cp_obs(&c->e[i], mrl_vecenv_row(v, i));
    mrl_vecenv_commit_reset(v, i, "reset");
  }
  return MRL_OK;
}
static int v_step(void *ud, mrl_vecenv *v, int block, const float *a) {
  cpvec *c = ud;
  (void)block;
  for (int i = 0; i < NE; i++) {
    int r = cp_step(&c->e[i], (int)a[i]), ended;
    float *row = mrl_vecenv_row(v, i);
    cp_obs(&c->e[i], row);
    int st = mrl_vecenv_commit_step(v, i, "step", 1.0, r == 1, r == 2, &ended);
    if (st != MRL_OK) return st;
    if (ended) {
      cp_reset(&c->e[i]);
      cp_obs(&c->e[i], row);
      if ((st = mrl_vecenv_commit_reset(v, i, "reset")) != MRL_OK) return st;
    }
  }
  return MRL_OK;
}
static const char *v_error(void *ud, int block) { (void)ud; (void)block; return ""; }
static void v_destroy(void *ud) { free(ud); }

int main(void) {
  /* 1. bare dynamics */
  cp envs[NE];
  uint64_t arng = 99;
  for (int i = 0; i < NE; i++) {
    envs[i].rng = 12345 + (uint64_t)i;
    cp_reset(&envs[i]);
  }
  long long steps = 0;
  double sink = 0, t0 = now(), el;
  do {
    for (int k = 0; k < 10000; k++)
      for (int i = 0; i < NE; i++) {
        if (cp_step(&envs[i], (int)(xs(&arng) >> 63))) cp_reset(&envs[i]);
        steps++;
      }
    el = now() - t0;
  } while (el < 0.5);
  for (int i = 0; i < NE; i++) sink += envs[i].s[0];
  printf("cartpole_c: %.0f steps/s (bare dynamics, %d envs, random actions; checksum %g)\n",
         (double)steps / el, NE, sink);

  /* 2. collection in C: vecenv + policy + value */
  cpvec *ud = calloc(1, sizeof *ud);
  mrl_env_desc d = {.num_envs = NE, .obs_dim = 4, .action_kind = MRL_DISCRETE, .action_n = 2};
  mrl_env_ops ops = {v_reset, v_step, v_error, v_destroy};
  mrl_vecenv *v = NULL;
  int hidden[2] = {64, 64};
  mrl_policy_spec spec = {.obs_dim = 4, .hidden = hidden, .nhidden = 2, .activation = MRL_TANH, .action_kind = MRL_DISCRETE, .action_n = 2, .low = NULL, .high = NULL, .init_log_std = 0.0, .out_gain = 0.01, .seed = 1};
  mrl_policy *p = NULL;
  mrl_net *val = NULL;
  mrl_rollout *r = NULL;
  if (!ud || mrl_vecenv_new(&v, &ops, ud, &d) != MRL_OK ||
      mrl_policy_new(&p, &spec) != MRL_OK ||
      mrl_net_new(&val, 4, hidden, 2, 1, MRL_TANH, 1.0, 2) != MRL_OK ||
      mrl_rollout_new(&r, 256, NE, 4, 1) != MRL_OK) {
    fprintf(stderr, "bench_cartpole_c: setup failed\n");
    return 1;
  }
  mrl_vecenv_reset(v, 1);
  steps = 0;
  t0 = now();
  do {
    if (mrl_rollout_collect(r, v, p, val) != MRL_OK) {
      fprintf(stderr, "bench_cartpole_c: %s\n", mrl_rollout_error(r));
      return 1;
    }
    steps += 256 * NE;
    el = now() - t0;
  } while (el < 0.5);
  printf("collect_c: %.0f steps/s (C CartPole, 4-64-64-2 policy + value, %d envs, rollout 256)\n",
         (double)steps / el, NE);
  mrl_rollout_free(r);
  mrl_net_free(val);
  mrl_policy_free(p);
  mrl_vecenv_free(v);
  return 0;
}
