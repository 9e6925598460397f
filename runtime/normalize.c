/*
** normalize.c — running observation and reward normalisation with
** Stable-Baselines3's RunningMeanStd / VecNormalize semantics (golden kinds
** running_norm and reward_norm).
**
** Statistics are doubles: a long run merges millions of batches and float
** sums would drift.  A batch is folded in with the parallel-merge formula
** (Chan et al.), from its exact two-pass mean and population variance, so
** merging batches A then B equals merging A∪B up to rounding — which is what
** lets the distributed update below sum moments over processes.
*/
#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "moonrl.h"
#include "normalize_impl.h"

/* refs: the caller's reference plus one per rollout using the handle
** (mrl_rollout_set_norm), so a handle freed while a rollout uses it lives
** until the rollout lets go of it. */
struct mrl_rms {
  int refs;
  int closed;          /* mrl_rms_close: rollouts drop it */
  int dim;
  double count;
  double *mean, *var;  /* [dim] */
  double *scratch;     /* [2·dim + 2]: batch sums / deviations + scalars */
  uint8_t *pass;       /* [dim] 1 = apply copies the column, or NULL */
  char err[256];
};

struct mrl_retnorm {
  int refs;
  int closed;
  int num_envs;
  double *ret;         /* [num_envs] discounted returns */
  double *next;        /* [num_envs] scratch: the updated returns */
  mrl_rms *rms;        /* scalar statistics of ret */
  char err[256];
};

static void rms_seterr(mrl_rms *s, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));
static void rms_seterr(mrl_rms *s, const char *fmt, ...) {
  va_list ap;
  va_start(ap, fmt);
  vsnprintf(s->err, sizeof s->err, fmt, ap);
  va_end(ap);
}

void mrl_rms_free(mrl_rms *s) {
  if (!s || --s->refs > 0) return;
  free(s->mean);
  free(s->var);
  free(s->scratch);
  free(s->pass);
  free(s);
}

int mrl_rms_set_mask(mrl_rms *s, const uint8_t *mask) {
  if (!s) return MRL_EINVAL;
  if (!mask) {
    free(s->pass);
    s->pass = NULL;
    return MRL_OK;
  }
  if (!s->pass && !(s->pass = malloc((size_t)s->dim))) {
    rms_seterr(s, "rms set_mask: out of memory");
    return MRL_ENOMEM;
  }
  for (int j = 0; j < s->dim; j++) s->pass[j] = mask[j] == 0;
  return MRL_OK;
}

void mrl_rms_reset(mrl_rms *s) {
  if (!s) return;
  for (int j = 0; j < s->dim; j++) {
    s->mean[j] = 0.0;
    s->var[j] = 1.0;
  }
  s->count = 1e-4;
}

int mrl_rms_new(mrl_rms **out, int dim) {
  if (!out) return MRL_EINVAL;
  *out = NULL;
  if (dim < 1 || dim > MRL_MAX_WIDTH) return MRL_EINVAL;
  mrl_rms *s = calloc(1, sizeof *s);
  if (!s) return MRL_ENOMEM;
  s->refs = 1;
  s->dim = dim;
  s->mean = malloc((size_t)dim * sizeof(double));
  s->var = malloc((size_t)dim * sizeof(double));
  s->scratch = malloc((2 * (size_t)dim + 2) * sizeof(double));
  if (!s->mean || !s->var || !s->scratch) {
    mrl_rms_free(s);
    return MRL_ENOMEM;
  }
  mrl_rms_reset(s);
  *out = s;
  return MRL_OK;
}

const char *mrl_rms_error(const mrl_rms *s) { return s ? s->err : "NULL rms"; }
int mrl_rms_dim(const mrl_rms *s) { return s ? s->dim : 0; }
double mrl_rms_count(const mrl_rms *s) { return s ? s->count : 0.0; }

/* Folds a batch of n rows with mean bm and population variance bv in. */
static void rms_merge(mrl_rms *s, const double *bm, const double *bv, double n) {
  double tot = s->count + n;
  for (int j = 0; j < s->dim; j++) {
    double delta = bm[j] - s->mean[j];
    s->mean[j] += delta * n / tot;
    s->var[j] = (s->var[j] * s->count + bv[j] * n +
                 delta * delta * s->count * n / tot) / tot;
  }
  s->count = tot;
}

/* Rows are float (observations) or double (the reward normaliser's
** returns, kept exact): xf when not NULL, else xd. */
#define RMS_AT(xf, xd, k) ((xf) ? (double)(xf)[k] : (xd)[k])

/* Σ over rows of x (column sums into sum[dim]); 0 when a value is not finite. */
static int rms_sums(const mrl_rms *s, const float *xf, const double *xd,
                    int rows, double *sum) {
  int d = s->dim;
  memset(sum, 0, (size_t)d * sizeof(double));
  for (int r = 0; r < rows; r++) {
    size_t o = (size_t)r * (size_t)d;
    for (int j = 0; j < d; j++) sum[j] += RMS_AT(xf, xd, o + (size_t)j);
  }
  /* a NaN or Inf anywhere makes its column sum non-finite */
  for (int j = 0; j < d; j++)
    if (!isfinite(sum[j])) return 0;
  return 1;
}

/* Σ over rows of (x − mean)² into dev[dim]. */
static void rms_devs(const mrl_rms *s, const float *xf, const double *xd,
                     int rows, const double *mean, double *dev) {
  int d = s->dim;
  memset(dev, 0, (size_t)d * sizeof(double));
  for (int r = 0; r < rows; r++) {
    size_t o = (size_t)r * (size_t)d;
    for (int j = 0; j < d; j++) {
      double e = RMS_AT(xf, xd, o + (size_t)j) - mean[j];
      dev[j] += e * e;
    }
  }
}

static int rms_update(mrl_rms *s, const float *xf, const double *xd, int rows,
                      mrl_reduce_fn reduce, void *ud);

int mrl_rms_update(mrl_rms *s, const float *x, int rows) {
  return mrl_rms_update_reduce(s, x, rows, NULL, NULL);
}

int mrl_rms_update_reduce(mrl_rms *s, const float *x, int rows,
                          mrl_reduce_fn reduce, void *ud) {
  if (!s) return MRL_EINVAL;
  if (rows > 0 && !x) {
    rms_seterr(s, "rms update: %d rows at NULL", rows);
    return MRL_EINVAL;
  }
  return rms_update(s, x, NULL, rows, reduce, ud);
}

/* Two reductions: [n, bad, Σx] gives the union's mean, then Σ(x − mean)²
** around that mean gives its population variance.  Every process folds the
** same union moments into the same state, so the statistics stay equal. */
static int rms_update(mrl_rms *s, const float *xf, const double *xd, int rows,
                      mrl_reduce_fn reduce, void *ud) {
  if (rows < 0 || rows > MRL_MAX_BATCH || (rows == 0 && !reduce)) {
    rms_seterr(s, "rms update: %d rows (1 to %d expected; 0 only with a "
               "reduce hook)", rows, MRL_MAX_BATCH);
    return MRL_EINVAL;
  }
  int d = s->dim;
  double *sc = s->scratch, *sum = sc + 2;
  sc[0] = rows;
  sc[1] = rms_sums(s, xf, xd, rows, sum) ? 0.0 : 1.0;
  if (reduce) {
    int st = reduce(ud, NULL, 0, sc, d + 2);
    if (st != MRL_OK) {
      rms_seterr(s, "rms update: the reduce hook failed (%s)",
                 mrl_status_string(st));
      return st;
    }
  }
  if (sc[1] != 0.0) {
    rms_seterr(s, "rms update: the batch holds a NaN or Inf%s; the statistics "
               "are unchanged", reduce ? " (on some process)" : "");
    return MRL_ENONFINITE;
  }
  double n = sc[0];
  if (!(n >= 1.0)) {
    rms_seterr(s, "rms update: no rows on any process");
    return MRL_EINVAL;
  }
  double *mean = sum, *dev = sc + 2 + d;
  for (int j = 0; j < d; j++) mean[j] = sum[j] / n;
  rms_devs(s, xf, xd, rows, mean, dev);
  if (reduce) {
    int st = reduce(ud, NULL, 0, dev, d);
    if (st != MRL_OK) {
      rms_seterr(s, "rms update: the reduce hook failed (%s)",
                 mrl_status_string(st));
      return st;
    }
  }
  for (int j = 0; j < d; j++) dev[j] /= n;
  rms_merge(s, mean, dev, n);
  return MRL_OK;
}

int mrl_rms_apply(mrl_rms *s, const float *x, int rows, double clip,
                  double eps, float *y) {
  if (!s) return MRL_EINVAL;
  if (rows < 0 || rows > MRL_MAX_BATCH || (rows > 0 && (!x || !y)) ||
      !(clip > 0.0) || !(eps >= 0.0) || !isfinite(eps)) {
    rms_seterr(s, "rms apply: bad arguments (rows %d, clip %g > 0, epsilon "
               "%g >= 0 expected)", rows, clip, eps);
    return MRL_EINVAL;
  }
  int d = s->dim;
  double *inv = s->scratch;  /* 1/sqrt(var + eps), per column */
  for (int j = 0; j < d; j++) {
    double sd = sqrt(s->var[j] + eps);
    if (!(sd > 0.0)) {
      rms_seterr(s, "rms apply: var[%d] + epsilon is 0", j);
      return MRL_EINVAL;
    }
    inv[j] = 1.0 / sd;
  }
  for (int r = 0; r < rows; r++) {
    const float *a = x + (size_t)r * (size_t)d;
    float *b = y + (size_t)r * (size_t)d;
    if (s->pass) {  /* y may be x: a passed column is never rewritten */
      for (int j = 0; j < d; j++) {
        if (s->pass[j]) continue;
        double v = (a[j] - s->mean[j]) * inv[j];
        b[j] = (float)(v > clip ? clip : v < -clip ? -clip : v);
      }
      if (b != a)
        for (int j = 0; j < d; j++)
          if (s->pass[j]) b[j] = a[j];
      continue;
    }
    for (int j = 0; j < d; j++) {
      double v = (a[j] - s->mean[j]) * inv[j];
      /* NaN stays NaN (the caller's finiteness check sees it) */
      b[j] = (float)(v > clip ? clip : v < -clip ? -clip : v);
    }
  }
  return MRL_OK;
}

int mrl_rms_get_state(const mrl_rms *s, double *mean, double *var,
                      double *count) {
  if (!s) return MRL_EINVAL;
  if (mean) memcpy(mean, s->mean, (size_t)s->dim * sizeof(double));
  if (var) memcpy(var, s->var, (size_t)s->dim * sizeof(double));
  if (count) *count = s->count;
  return MRL_OK;
}

int mrl_rms_set_state(mrl_rms *s, const double *mean, const double *var,
                      double count) {
  if (!s) return MRL_EINVAL;
  if (!mean || !var) {
    rms_seterr(s, "rms set_state: mean and var are required");
    return MRL_EINVAL;
  }
  if (!(count > 0.0) || !isfinite(count)) {
    rms_seterr(s, "rms set_state: count %g must be finite and > 0", count);
    return MRL_EINVAL;
  }
  for (int j = 0; j < s->dim; j++) {
    if (!isfinite(mean[j]) || !isfinite(var[j]) || var[j] < 0.0) {
      rms_seterr(s, "rms set_state: mean[%d] = %g, var[%d] = %g (finite, var "
                 ">= 0 expected)", j, mean[j], j, var[j]);
      return MRL_EINVAL;
    }
  }
  memcpy(s->mean, mean, (size_t)s->dim * sizeof(double));
  memcpy(s->var, var, (size_t)s->dim * sizeof(double));
  s->count = count;
  return MRL_OK;
}

void rms_retain(mrl_rms *s) {
  if (s) s->refs++;
}

int rms_closed(const mrl_rms *s) { return s && s->closed; }

void mrl_rms_close(mrl_rms *s) {
  if (!s) return;
  s->closed = 1;
  mrl_rms_free(s);
}

/* ------------------------------------------------- reward normaliser */

void retnorm_retain(mrl_retnorm *rn) {
  if (rn) rn->refs++;
}

int retnorm_closed(const mrl_retnorm *rn) { return rn && rn->closed; }

void mrl_retnorm_close(mrl_retnorm *rn) {
  if (!rn) return;
  rn->closed = 1;
  mrl_retnorm_free(rn);
}

static void rn_seterr(mrl_retnorm *rn, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));
static void rn_seterr(mrl_retnorm *rn, const char *fmt, ...) {
  va_list ap;
  va_start(ap, fmt);
  vsnprintf(rn->err, sizeof rn->err, fmt, ap);
  va_end(ap);
}

void mrl_retnorm_free(mrl_retnorm *rn) {
  if (!rn || --rn->refs > 0) return;
  free(rn->ret);
  free(rn->next);
  mrl_rms_free(rn->rms);
  free(rn);
}

int mrl_retnorm_new(mrl_retnorm **out, int num_envs) {
  if (!out) return MRL_EINVAL;
  *out = NULL;
  if (num_envs < 1 || num_envs > MRL_MAX_BATCH) return MRL_EINVAL;
  mrl_retnorm *rn = calloc(1, sizeof *rn);
  if (!rn) return MRL_ENOMEM;
  rn->refs = 1;
  rn->num_envs = num_envs;
  rn->ret = calloc((size_t)num_envs, sizeof(double));
  rn->next = calloc((size_t)num_envs, sizeof(double));
  int st = rn->ret && rn->next ? mrl_rms_new(&rn->rms, 1) : MRL_ENOMEM;
  if (st != MRL_OK) {
    mrl_retnorm_free(rn);
    return st;
  }
  *out = rn;
  return MRL_OK;
}

const char *mrl_retnorm_error(const mrl_retnorm *rn) {
  return rn ? rn->err : "NULL retnorm";
}
int mrl_retnorm_num_envs(const mrl_retnorm *rn) { return rn ? rn->num_envs : 0; }
mrl_rms *mrl_retnorm_rms(mrl_retnorm *rn) { return rn ? rn->rms : NULL; }

int mrl_retnorm_get_ret(const mrl_retnorm *rn, double *ret, int n) {
  if (!rn || !ret || n != rn->num_envs) return MRL_EINVAL;
  memcpy(ret, rn->ret, (size_t)n * sizeof(double));
  return MRL_OK;
}

int mrl_retnorm_set_ret(mrl_retnorm *rn, const double *ret, int n) {
  if (!rn) return MRL_EINVAL;
  if (n != rn->num_envs) {
    rn_seterr(rn, "retnorm set_ret: %d values for %d envs", n, rn->num_envs);
    return MRL_EINVAL;
  }
  if (!ret) {
    memset(rn->ret, 0, (size_t)n * sizeof(double));
    return MRL_OK;
  }
  for (int i = 0; i < n; i++) {
    if (!isfinite(ret[i])) {
      rn_seterr(rn, "retnorm set_ret: ret[%d] is not finite", i);
      return MRL_EINVAL;
    }
  }
  memcpy(rn->ret, ret, (size_t)n * sizeof(double));
  return MRL_OK;
}

int mrl_retnorm_get_state(mrl_retnorm *rn, double *mean, double *var,
                          double *count, double *ret) {
  if (!rn) return MRL_EINVAL;
  mrl_rms_get_state(rn->rms, mean, var, count);
  if (ret) memcpy(ret, rn->ret, (size_t)rn->num_envs * sizeof(double));
  return MRL_OK;
}

int mrl_retnorm_set_state(mrl_retnorm *rn, double mean, double var,
                          double count, const double *ret) {
  if (!rn) return MRL_EINVAL;
  for (int i = 0; ret && i < rn->num_envs; i++) {
    if (!isfinite(ret[i])) {
      rn_seterr(rn, "retnorm set_state: ret[%d] is not finite", i);
      return MRL_EINVAL;
    }
  }
  if (mrl_rms_set_state(rn->rms, &mean, &var, count) != MRL_OK) {
    rn_seterr(rn, "%s", mrl_rms_error(rn->rms));
    return MRL_EINVAL;
  }
  return mrl_retnorm_set_ret(rn, ret, rn->num_envs);
}

int mrl_retnorm_step(mrl_retnorm *rn, const float *rewards,
                     const uint8_t *dones, double gamma, double clip,
                     double eps, int update, mrl_reduce_fn reduce, void *ud,
                     float *out) {
  if (!rn) return MRL_EINVAL;
  int n = rn->num_envs;
  if (!rewards || !dones || !out || !(gamma >= 0.0 && gamma <= 1.0) ||
      !(clip > 0.0) || !(eps >= 0.0) || !isfinite(eps)) {
    rn_seterr(rn, "retnorm step: bad arguments (gamma %g in [0, 1], clip %g "
              "> 0, epsilon %g >= 0 expected)", gamma, clip, eps);
    return MRL_EINVAL;
  }
  for (int i = 0; i < n; i++) {
    if (!isfinite(rewards[i])) {
      rn_seterr(rn, "retnorm step: reward %d is not finite", i);
      return MRL_ENONFINITE;
    }
  }
  if (update) {
    for (int i = 0; i < n; i++) rn->next[i] = rn->ret[i] * gamma + rewards[i];
    int st = rms_update(rn->rms, NULL, rn->next, n, reduce, ud);
    if (st != MRL_OK) {
      rn_seterr(rn, "retnorm step: %s", mrl_rms_error(rn->rms));
      return st;
    }
    for (int i = 0; i < n; i++) rn->ret[i] = dones[i] ? 0.0 : rn->next[i];
  }
  double inv = 1.0 / sqrt(rn->rms->var[0] + eps);
  if (!isfinite(inv)) {
    rn_seterr(rn, "retnorm step: var + epsilon is 0");
    return MRL_EINVAL;
  }
  for (int i = 0; i < n; i++) {
    double v = rewards[i] * inv;
    out[i] = (float)(v > clip ? clip : v < -clip ? -clip : v);
  }
  return MRL_OK;
}
