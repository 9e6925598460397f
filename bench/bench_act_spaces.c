/*
** bench_act_spaces.c — mrl_policy_act for the action spaces of issue 15
** against plain categorical act of the same network (8-64-64-12 tanh):
** masked categorical (half of the 12 actions masked, a fresh mask per
** state) and multi-discrete {4, 4, 4}, with and without masks, at batch 1
** (a game's per-agent call) and batch 64 (a vectorised collect).
** Prints ns per state and the ratios that bench/run_all.lua reads:
**   masked_act_vs_categorical_act <ratio>
**   multidiscrete_act_vs_categorical_act <ratio>
** (batch 1, the larger of the two costs, is the figure).
*/
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <time.h>

#include "moonrl.h"

enum { D = 8, K = 12, B = 64 };

static double now(void) {
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return (double)ts.tv_sec + 1e-9 * (double)ts.tv_nsec;
}

static mrl_policy *make(int multi) {
  static const int hidden[2] = {64, 64};
  static const mrl_action_part parts[3] = {
      {MRL_PART_CATEGORICAL, 4}, {MRL_PART_CATEGORICAL, 4}, {MRL_PART_CATEGORICAL, 4}};
  mrl_policy_spec s = mrl_policy_spec_default();
  s.obs_dim = D;
  s.hidden = hidden;
  s.nhidden = 2;
  s.action_n = K;
  s.out_gain = 1.0;
  s.seed = 1;
  if (multi) {
    s.action_kind = MRL_COMPOSITE;
    s.parts = parts;
    s.nparts = 3;
  }
  mrl_policy *p = NULL;
  if (mrl_policy_new(&p, &s) != MRL_OK) {
    fprintf(stderr, "bench_act_spaces: cannot create the policy\n");
    exit(1);
  }
  return p;
}

/* ns per state of `rows`-row act calls over a ring of observations. */
static double time_act(mrl_policy *p, const float *obs, const float *masks, int rows,
                       long states) {
  float act[B * 3], logp[B];
  const int nobs = 256;
  long calls = states / rows;
  double t0 = now();
  for (long i = 0; i < calls; i++) {
    const int o = (int)(i % (nobs - B));
    const float *m = masks ? masks + (size_t)o * K : NULL;
    if (mrl_policy_act_masked(p, obs + (size_t)o * D, m, rows, 0, act, logp) != MRL_OK) {
      fprintf(stderr, "bench_act_spaces: %s\n", mrl_policy_error(p));
      exit(1);
    }
  }
  return (now() - t0) * 1e9 / (double)(calls * rows);
}

int main(int argc, char **argv) {
  long states = argc > 1 ? atol(argv[1]) : 400000;
  const int nobs = 256;
  float *obs = malloc(sizeof(float) * nobs * D), *masks = malloc(sizeof(float) * nobs * K);
  unsigned x = 12345;
  for (int i = 0; i < nobs * D; i++) {
    x = x * 1103515245u + 12345u;
    obs[i] = (float)((x >> 8) & 0xffff) / 32768.0f - 1.0f;
  }
  for (int i = 0; i < nobs; i++)
    for (int j = 0; j < K; j++) masks[i * K + j] = (float)(((i + j) % 2) || j % 4 == 0);
  mrl_policy *cat = make(0), *md = make(1);
  printf("bench_act_spaces: 8-64-64-12 tanh, ns per state (best of 5 interleaved rounds)\n");
  double r_mask = 0, r_md = 0;
  for (int bi = 0; bi < 2; bi++) {
    int rows = bi ? B : 1;
    /* rounds interleave the four, so a busy machine slows them alike */
    double c = 1e30, cm = 1e30, m = 1e30, mm = 1e30;
    for (int r = 0; r < 5; r++) {
      c = fmin(c, time_act(cat, obs, NULL, rows, states / 5));
      cm = fmin(cm, time_act(cat, obs, masks, rows, states / 5));
      m = fmin(m, time_act(md, obs, NULL, rows, states / 5));
      mm = fmin(mm, time_act(md, obs, masks, rows, states / 5));
    }
    printf("  batch %2d  categorical %7.1f  masked %7.1f (%.2fx)  multi-discrete %7.1f (%.2fx)"
           "  masked multi-discrete %7.1f (%.2fx)\n",
           rows, c, cm, cm / c, m, m / c, mm, mm / c);
    if (cm / c > r_mask) r_mask = cm / c;
    if (m / c > r_md) r_md = m / c;
  }
  printf("masked_act_vs_categorical_act %.3f\n", r_mask);
  printf("multidiscrete_act_vs_categorical_act %.3f\n", r_md);
  mrl_policy_free(cat);
  mrl_policy_free(md);
  free(obs);
  free(masks);
  return 0;
}
