/*
** advantages.c — discounted returns and generalised advantage estimation
** (golden kinds `returns` and `gae`).
**
** Both are backward recurrences.  They accumulate in double: a float running
** sum over a long episode with γ close to 1 drifts by many ulps, and the
** golden vectors are float64.  Sequences may be strided (element t at
** [t·stride]) so a time-major [T][num_envs] rollout is read in place, one env
** column at a time; outputs use the same stride and may alias the inputs.
*/
#include <math.h>
#include <stddef.h>

#include "moonrl.h"

static int seq_ok(int T, int stride) {
  return T >= 0 && T <= MRL_MAX_BATCH && stride >= 1 && stride <= MRL_MAX_BATCH;
}

static int strided_finite(const float *x, int T, size_t stride) {
  for (int t = 0; t < T; t++)
    if (!isfinite(x[(size_t)t * stride])) return 0;
  return 1;
}

int mrl_discounted_returns(const float *rewards, int T, int stride,
                           double gamma, float *reward_to_go,
                           double *discounted_return) {
  if (!seq_ok(T, stride) || (T > 0 && !rewards) || !(gamma >= 0 && gamma <= 1))
    return MRL_EINVAL;
  size_t s = (size_t)stride;
  /* Checked first so that a refusal writes nothing. */
  if (!strided_finite(rewards, T, s)) return MRL_ENONFINITE;
  double g = 0.0;
  for (int t = T - 1; t >= 0; t--) {
    g = (double)rewards[(size_t)t * s] + gamma * g;
    if (reward_to_go) reward_to_go[(size_t)t * s] = (float)g;
  }
  if (discounted_return) *discounted_return = g;
  return MRL_OK;
}

int mrl_gae(const float *rewards, const float *values,
            const float *next_values, const uint8_t *terminated,
            const uint8_t *truncated, int T, int stride, double gamma,
            double lambda, float *advantages, float *returns) {
  if (!seq_ok(T, stride) || !(gamma >= 0 && gamma <= 1) ||
      !(lambda >= 0 && lambda <= 1))
    return MRL_EINVAL;
  if (T > 0 && (!rewards || !values || !next_values || !advantages))
    return MRL_EINVAL;
  size_t s = (size_t)stride;
  if (!strided_finite(rewards, T, s) || !strided_finite(values, T, s) ||
      !strided_finite(next_values, T, s))
    return MRL_ENONFINITE;
  /* NULL flag arrays mean "never": a plain infinite-horizon stream. */
  double a = 0.0;
  for (int t = T - 1; t >= 0; t--) {
    size_t i = (size_t)t * s;
    double live = (terminated && terminated[i]) ? 0.0 : 1.0;
    /* A truncated step still bootstraps from V(s_{t+1}) in δ, but the
    ** advantage must not flow back across the episode boundary. */
    double cont = (truncated && truncated[i]) ? 0.0 : live;
    double v = (double)values[i];
    double delta = (double)rewards[i] + gamma * live * (double)next_values[i] - v;
    a = delta + gamma * lambda * cont * a;
    advantages[i] = (float)a;
    if (returns) returns[i] = (float)(a + v);
  }
  return MRL_OK;
}

int mrl_standardize(float *x, int n, mrl_reduce_fn reduce, void *ud) {
  if (n < 0 || (n > 0 && !x)) return MRL_EINVAL;
  double s[2] = {0, n};
  for (int i = 0; i < n; i++) s[0] += x[i];
  if (reduce) {
    int st = reduce(ud, NULL, 0, s, 2);
    if (st) return st;
  }
  if (s[1] < 2) return MRL_OK;  /* no sample std of one value */
  double mean = s[0] / s[1], q = 0;
  for (int i = 0; i < n; i++) {
    double d = x[i] - mean;
    q += d * d;
  }
  if (reduce) {
    int st = reduce(ud, NULL, 0, &q, 1);
    if (st) return st;
  }
  double sd = sqrt(q / (s[1] - 1)) + 1e-8;
  if (!isfinite(mean) || !isfinite(sd)) return MRL_ENONFINITE;
  for (int i = 0; i < n; i++) x[i] = (float)((x[i] - mean) / sd);
  return MRL_OK;
}
