/*
** train_util.h — the small pieces every update loop shares (ppo.c,
** value_fit.c): the seeded shuffle, row gathers, cross-process
** means and the parameter/optimiser snapshot that makes a refused update
** leave no trace.  Internal; static inline so each file takes what it uses.
*/
#ifndef MRL_TRAIN_UTIL_H
#define MRL_TRAIN_UTIL_H

#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "errmsg.h"
#include "moonrl.h"

/* The sizes every minibatch fit takes (value_fit.c, bc_fit.c): MRL_OK, or
** MRL_EINVAL with the message in err. */
static inline int tu_check_fit(int n, int epochs, int minibatch, double lr,
                               char *err, size_t errlen) {
  if (n < 1 || n > MRL_MAX_BATCH)
    return mrl_errbuf_(err, errlen, MRL_EINVAL, "n: expected 1..%d, got %d", MRL_MAX_BATCH, n);
  if (epochs < 1 || minibatch < 1)
    return mrl_errbuf_(err, errlen, MRL_EINVAL, "epochs and minibatch: expected >= 1");
  if (!(lr >= 0) || !isfinite(lr))
    return mrl_errbuf_(err, errlen, MRL_EINVAL, "lr: expected a finite number >= 0");
  return MRL_OK;
}

/* Fisher–Yates with the caller's generator, so a seed fixes the order. */
static inline void tu_shuffle(int *idx, int n, mrl_rng *rng) {
  for (int i = 0; i < n; i++) idx[i] = i;
  for (int i = n - 1; i > 0; i--) {
    int j = (int)(mrl_rng_uniform(rng) * (i + 1));
    if (j > i) j = i;
    int t = idx[i]; idx[i] = idx[j]; idx[j] = t;
  }
}

static inline void tu_gather(float *dst, const float *src, const int *idx,
                             int n, int width) {
  for (int k = 0; k < n; k++)
    memcpy(dst + (size_t)k * width, src + (size_t)idx[k] * width,
           sizeof(float) * (size_t)width);
}

/* The sum of a flag over the processes (reduce set), else the flag: every
** process then refuses together, instead of one leaving the others waiting
** in a reduction.  A failed reduction counts as set. */
static inline int tu_any_process(mrl_reduce_fn reduce, void *ud, int flag) {
  if (!reduce) return flag;
  double s = flag ? 1.0 : 0.0;
  if (reduce(ud, NULL, 0, &s, 1) != MRL_OK) return 1;
  return s > 0.0;
}

/* data[n] and s[ns] (ns < 15), means over this process's `count` rows,
** become means over every process's rows: weighted by count, summed by the
** hook, divided by the total (returned in *total). */
static inline int tu_reduce_mean(mrl_reduce_fn reduce, void *ud, float *data,
                                 size_t n, double *s, int ns, int count,
                                 double *total) {
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

/* A copy of a network's parameters and its optimiser's moments, taken
** before an update so a refused update leaves no trace. */
typedef struct tu_snapshot {
  float *params, *m, *v;
  size_t n;
  int64_t steps;
} tu_snapshot;

static inline int tu_snap_take(tu_snapshot *s, const float *params,
                               mrl_optim *o, size_t n) {
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

static inline void tu_snap_restore(const tu_snapshot *s, float *params,
                                   mrl_optim *o) {
  memcpy(params, s->params, sizeof(float) * s->n);
  float *m = mrl_optim_moment(o, 0), *v = mrl_optim_moment(o, 1);
  if (m) memcpy(m, s->m, sizeof(float) * s->n);
  if (v) memcpy(v, s->v, sizeof(float) * s->n);
  mrl_optim_set_steps(o, s->steps);
}

static inline void tu_snap_free(tu_snapshot *s) {
  free(s->params);
  s->params = NULL;
}

#endif
