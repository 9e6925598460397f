/*
** optim.c — Adam and SGD (with optional momentum) over one flat float32
** parameter block, with PyTorch's exact update rules so a run can be compared
** step by step with torch.optim:
**
**   Adam:  m ← β1·m + (1−β1)·g            v ← β2·v + (1−β2)·g²
**          θ ← θ − (lr/(1−β1ᵗ)) · m / (√v/√(1−β2ᵗ) + eps)
**   SGD:   b ← μ·b + g  (b = g on the first step; plain g when μ = 0)
**          θ ← θ − lr·b
**
** A gradient with a NaN/Inf is refused before anything is touched, so the
** parameters and the moments stay as they were (DESIGN.md, "Truths").
*/
#include <math.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "moonrl.h"
#include "simd_clones.h"

struct mrl_optim {
  mrl_optim_kind kind;
  size_t n;
  double beta1, beta2, eps;
  int64_t t;          /* completed steps */
  float *m;           /* Adam first moment, or the SGD momentum buffer */
  float *v;           /* Adam second moment; NULL for SGD */
  char err[256];
};

static int optim_fail(mrl_optim *o, int status, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));
static int optim_fail(mrl_optim *o, int status, const char *fmt, ...) {
  va_list ap;
  va_start(ap, fmt);
  vsnprintf(o->err, sizeof o->err, fmt, ap);
  va_end(ap);
  return status;
}

int mrl_optim_new(mrl_optim **out, mrl_optim_kind kind, size_t nparams,
                  double beta1, double beta2, double eps) {
  if (!out) return MRL_EINVAL;
  *out = NULL;
  if (mrl_optim_check(kind, nparams, beta1, beta2, eps, NULL, 0)) return MRL_EINVAL;
  mrl_optim *o = calloc(1, sizeof *o);
  if (!o) return MRL_ENOMEM;
  o->kind = kind;
  o->n = nparams;
  o->beta1 = beta1;
  o->beta2 = kind == MRL_ADAM ? beta2 : 0.0;
  o->eps = kind == MRL_ADAM ? eps : 0.0;
  /* SGD without momentum keeps no state at all. */
  if (kind == MRL_ADAM || beta1 > 0) {
    o->m = calloc(nparams, sizeof(float));
    if (!o->m) goto nomem;
  }
  if (kind == MRL_ADAM) {
    o->v = calloc(nparams, sizeof(float));
    if (!o->v) goto nomem;
  }
  *out = o;
  return MRL_OK;
nomem:
  free(o->m);
  free(o);
  return MRL_ENOMEM;
}

int mrl_optim_clone(mrl_optim **out, const mrl_optim *src) {
  if (!out) return MRL_EINVAL;
  *out = NULL;
  if (!src) return MRL_EINVAL;
  int st = mrl_optim_new(out, src->kind, src->n, src->beta1, src->beta2, src->eps);
  if (st) return st;
  mrl_optim_copy(*out, src);
  return MRL_OK;
}

int mrl_optim_copy(mrl_optim *dst, const mrl_optim *src) {
  if (!dst || !src) return MRL_EINVAL;
  if (dst->kind != src->kind || dst->n != src->n || !dst->m != !src->m)
    return optim_fail(dst, MRL_EINVAL,
                      "copy: expected an optimiser of the same kind and size (%zu parameters), got %zu",
                      dst->n, src->n);
  dst->beta1 = src->beta1;
  dst->beta2 = src->beta2;
  dst->eps = src->eps;
  dst->t = src->t;
  if (src->m) memcpy(dst->m, src->m, src->n * sizeof(float));
  if (src->v) memcpy(dst->v, src->v, src->n * sizeof(float));
  return MRL_OK;
}

void mrl_optim_free(mrl_optim *o) {
  if (!o) return;
  free(o->m);
  free(o->v);
  free(o);
}

const char *mrl_optim_error(const mrl_optim *o) { return o ? o->err : ""; }
size_t mrl_optim_nparams(const mrl_optim *o) { return o ? o->n : 0; }
int64_t mrl_optim_steps(const mrl_optim *o) { return o ? o->t : 0; }

void mrl_optim_set_steps(mrl_optim *o, int64_t t) {
  if (o) o->t = t < 0 ? 0 : t;
}

/* Every check comes before the first write, so a refused state leaves the
** optimiser as it was (a checkpoint restores all of it or none). */
int mrl_optim_set_state(mrl_optim *o, int64_t steps, const float *m,
                        const float *v, size_t n) {
  if (!o) return MRL_EINVAL;
  if (n != o->n)
    return optim_fail(o, MRL_EINVAL, "set_state: %zu parameters expected, got %zu", o->n, n);
  if (steps < 0 || steps == INT64_MAX)
    return optim_fail(o, MRL_EINVAL, "set_state: step count %lld out of range",
                      (long long)steps);
  const char *names[2] = {"m", "v"};
  const float *src[2] = {m, v}, *have[2] = {o->m, o->v};
  for (int w = 0; w < 2; w++) {
    if (!have[w]) continue;  /* one it does not keep (SGD: v) is ignored */
    if (!src[w])
      return optim_fail(o, MRL_EINVAL, "set_state: moment %s (%zu numbers) missing", names[w], n);
    size_t bad = mrl_first_nonfinite(src[w], n);
    if (bad < n)
      return optim_fail(o, MRL_ENONFINITE, "set_state: moment %s has a NaN or Inf at element %zu",
                        names[w], bad + 1);
  }
  for (size_t i = 0; o->v && i < n; i++)
    if (v[i] < 0)
      return optim_fail(o, MRL_EINVAL,
                        "set_state: moment v is a mean of squares, got %g at element %zu",
                        (double)v[i], i + 1);
  if (o->m) memcpy(o->m, m, n * sizeof(float));
  if (o->v) memcpy(o->v, v, n * sizeof(float));
  o->t = steps;
  o->err[0] = '\0';
  return MRL_OK;
}

float *mrl_optim_moment(mrl_optim *o, int which) {
  if (!o) return NULL;
  if (which == 0) return o->m;
  if (which == 1) return o->v;
  return NULL;
}

void mrl_optim_reset(mrl_optim *o) {
  if (!o) return;
  o->t = 0;
  o->err[0] = '\0';
  if (o->m) memset(o->m, 0, o->n * sizeof(float));
  if (o->v) memset(o->v, 0, o->n * sizeof(float));
}

/* The kernels: float32 arrays, loop-invariant scalars hoisted by the caller,
** no branches in the body, so `omp simd` gives packed sqrt/div/fma. */
MRL_SIMD_CLONES static void adam_kernel(size_t n, float *restrict p, const float *restrict g,
                        float *restrict m, float *restrict v, float b1,
                        float a1, float b2, float a2, float step,
                        float inv_sqrt_bc2, float eps) {
#pragma omp simd
  for (size_t i = 0; i < n; i++) {
    float gi = g[i];
    float mi = b1 * m[i] + a1 * gi;
    float vi = b2 * v[i] + a2 * gi * gi;
    m[i] = mi;
    v[i] = vi;
    p[i] -= step * mi / (sqrtf(vi) * inv_sqrt_bc2 + eps);
  }
}

MRL_SIMD_CLONES static void sgd_momentum_kernel(size_t n, float *restrict p,
                                const float *restrict g, float *restrict b,
                                float mu, float lr) {
#pragma omp simd
  for (size_t i = 0; i < n; i++) {
    float bi = mu * b[i] + g[i];
    b[i] = bi;
    p[i] -= lr * bi;
  }
}

MRL_SIMD_CLONES static void sgd_kernel(size_t n, float *restrict p, const float *restrict g,
                       float lr) {
#pragma omp simd
  for (size_t i = 0; i < n; i++) p[i] -= lr * g[i];
}

/* The largest |x|.  Non-negative floats order as their bit patterns, so an
** integer max over the bits without the sign vectorises where a float max
** (with its NaN rules) does not; 16 lanes keep independent chains. */
MRL_SIMD_CLONES static double max_abs(const float *restrict x, size_t n) {
  const uint32_t *restrict u = (const uint32_t *)(const void *)x;
  uint32_t lane[16] = {0}, m = 0;
  size_t i = 0;
  for (; i + 16 <= n; i += 16)
    for (int j = 0; j < 16; j++) {
      uint32_t a = u[i + j] & 0x7fffffffu;
      lane[j] = a > lane[j] ? a : lane[j];
    }
  for (; i < n; i++) {
    uint32_t a = u[i] & 0x7fffffffu;
    m = a > m ? a : m;
  }
  for (int j = 0; j < 16; j++) m = lane[j] > m ? lane[j] : m;
  float f;
  memcpy(&f, &m, sizeof f);
  return f;
}

/* A bound on max|Δθ| of this step, or INFINITY when none is known.  Adam:
** m_t² ≤ (1−β1)²/((1−β2)(1−β1²/β2)) · v_t by Cauchy–Schwarz over the two
** moving averages (when β1² < β2), so |m̂/√v̂| ≤ √bc2/bc1 · that root — no
** pass over the data.  SGD: the gradient (and momentum) scaled by lr. */
static double step_bound(const mrl_optim *o, const float *grad, double lr,
                         double bc1, double bc2) {
  if (o->kind == MRL_ADAM) {
    double b1 = o->beta1, b2 = o->beta2;
    if (!(b1 * b1 < b2) || b2 >= 1) return INFINITY;
    double c = (1 - b1) / sqrt((1 - b2) * (1 - b1 * b1 / b2));
    return lr * sqrt(bc2) / bc1 * c;
  }
  double g = max_abs(grad, o->n);
  if (o->m) return lr * (o->beta1 * max_abs(o->m, o->n) + g);
  return lr * g;
}

int mrl_optim_step(mrl_optim *o, float *params, const float *grad, double lr) {
  if (!o) return MRL_EINVAL;
  if (!params || !grad)
    return optim_fail(o, MRL_EINVAL, "optim step: params and grad must not be NULL");
  if (!isfinite(lr) || lr < 0)
    return optim_fail(o, MRL_EINVAL, "optim step: learning rate %g must be finite and >= 0", lr);
  if (!mrl_all_finite(grad, o->n))
    return optim_fail(o, MRL_ENONFINITE,
                      "optim step refused: the gradient has a NaN or Inf; parameters unchanged");
  if (o->t == INT64_MAX)
    return optim_fail(o, MRL_ESTATE, "optim step: step counter overflow");
  int64_t t = o->t + 1;
  /* Bias corrections in double (β2ᵗ is close to 1 for many steps). */
  double bc1 = 1.0 - pow(o->beta1, (double)t);
  double bc2 = 1.0 - pow(o->beta2, (double)t);
  /* A finite but absurd step (a learning rate of 1e300, say) would overflow
  ** the parameters; refuse it up front so they stay as they were.  Sane
  ** parameters are far below 1e37, so only the step needs bounding. */
  if (!(step_bound(o, grad, lr, bc1, bc2) < 1e37))
    return optim_fail(o, MRL_ENONFINITE,
                      "optim step refused: learning rate %g would overflow the parameters; parameters unchanged",
                      lr);
  if (o->kind == MRL_ADAM) {
    /* Folded into two scalars so the loop does no pow/sqrt of its own. */
    double step = lr / bc1;
    double inv_sqrt_bc2 = 1.0 / sqrt(bc2);
    /* 1−β is formed in double, as torch does: 1 − 0.999f in float is off
    ** by 1.3e-5 relative, which biases v for good. */
    adam_kernel(o->n, params, grad, o->m, o->v, (float)o->beta1,
                (float)(1.0 - o->beta1), (float)o->beta2,
                (float)(1.0 - o->beta2), (float)step, (float)inv_sqrt_bc2,
                (float)o->eps);
  } else if (o->m) {
    sgd_momentum_kernel(o->n, params, grad, o->m, (float)o->beta1, (float)lr);
  } else {
    sgd_kernel(o->n, params, grad, (float)lr);
  }
  o->t = t;
  return MRL_OK;
}
