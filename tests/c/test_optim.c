/* test_optim.c — Adam and SGD against double-precision transcriptions of
** torch.optim's update rules, plus the refusal of non-finite gradients. */
#include <math.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "moonrl.h"
#include "tap.h"

static uint64_t s = 88172645463325252ull;
static double unif(void) {
  s ^= s << 13;
  s ^= s >> 7;
  s ^= s << 17;
  return (double)(s >> 11) * 0x1.0p-53;
}

#define N 1037  /* not a multiple of any vector width */

/* torch.optim.Adam (amsgrad off, no weight decay), in double. */
static void ref_adam(double *p, double *m, double *v, const float *g, int t,
                     double lr, double b1, double b2, double eps) {
  double bc1 = 1 - pow(b1, t), bc2 = 1 - pow(b2, t);
  for (int i = 0; i < N; i++) {
    m[i] = b1 * m[i] + (1 - b1) * g[i];
    v[i] = b2 * v[i] + (1 - b2) * (double)g[i] * g[i];
    p[i] -= lr / bc1 * m[i] / (sqrt(v[i]) / sqrt(bc2) + eps);
  }
}

/* Max-norm error relative to the max-norm of the reference: float storage
** of p, m, v rounds every step, so elementwise relative error near 0 is
** meaningless. */
static double max_rel(const float *a, const double *b, int n) {
  double e = 0, x = 0;
  for (int i = 0; i < n; i++) {
    double d = fabs(a[i] - b[i]);
    if (!(d <= e)) e = d;  /* NaN propagates */
    if (fabs(b[i]) > x) x = fabs(b[i]);
  }
  return e / x;
}

static void test_adam(void) {
  mrl_optim *o = NULL;
  TAP_OK(mrl_optim_new(&o, MRL_ADAM, N, 0.9, 0.999, 1e-8) == MRL_OK && o, "adam created");
  TAP_OK(mrl_optim_nparams(o) == N && mrl_optim_steps(o) == 0, "nparams and steps");
  float p[N], g[N];
  double rp[N], rm[N] = {0}, rv[N] = {0};
  for (int i = 0; i < N; i++) rp[i] = p[i] = (float)(2 * unif() - 1);

  /* First step: m̂/√v̂ = g/|g|, so every parameter moves by lr·sign(g)
  ** (up to eps). */
  for (int i = 0; i < N; i++) g[i] = (float)((unif() - 0.5) * (i % 7 + 1));
  float p0[N];
  memcpy(p0, p, sizeof p);
  TAP_OK(mrl_optim_step(o, p, g, 1e-3) == MRL_OK, "step 1");
  int ok = 1;
  for (int i = 0; i < N; i++)
    if (fabs((p0[i] - p[i]) - 1e-3 * (g[i] > 0 ? 1 : -1)) > 1e-7) ok = 0;
  TAP_OK(ok, "first Adam step moves each parameter by lr·sign(g)");
  ref_adam(rp, rm, rv, g, 1, 1e-3, 0.9, 0.999, 1e-8);

  for (int t = 2; t <= 60; t++) {
    for (int i = 0; i < N; i++) g[i] = (float)(sin(0.1 * t + i) + 0.3 * (unif() - 0.5));
    if (t == 30)
      for (int i = 0; i < N; i += 3) g[i] = 0.0f;  /* zero grads: v decays, no 0/0 */
    double lr = t < 40 ? 1e-2 : 3e-3;
    mrl_optim_step(o, p, g, lr);
    ref_adam(rp, rm, rv, g, t, lr, 0.9, 0.999, 1e-8);
  }
  TAP_OK(mrl_optim_steps(o) == 60, "60 steps counted");
  double ep = max_rel(p, rp, N);
  double em = max_rel(mrl_optim_moment(o, 0), rm, N);
  double ev = max_rel(mrl_optim_moment(o, 1), rv, N);
  TAP_OK(ep < 1e-5, "params match torch's rule after 60 steps (rel err %.2g)", ep);
  TAP_OK(em < 5e-6 && ev < 5e-6, "m and v match (rel err %.2g, %.2g)", em, ev);

  /* Refusal: nothing moves, not even the step count. */
  float pk[N], mk[N], vk[N];
  memcpy(pk, p, sizeof p);
  memcpy(mk, mrl_optim_moment(o, 0), sizeof mk);
  memcpy(vk, mrl_optim_moment(o, 1), sizeof vk);
  g[N - 1] = NAN;
  int rc = mrl_optim_step(o, p, g, 1e-3);
  TAP_OK(rc == MRL_ENONFINITE && strstr(mrl_optim_error(o), "NaN") != NULL,
         "NaN grad refused: %s", mrl_optim_error(o));
  TAP_OK(memcmp(pk, p, sizeof p) == 0 && memcmp(mk, mrl_optim_moment(o, 0), sizeof mk) == 0 &&
             memcmp(vk, mrl_optim_moment(o, 1), sizeof vk) == 0 && mrl_optim_steps(o) == 60,
         "params, moments and step count untouched");
  g[N - 1] = 0;
  g[0] = -INFINITY;
  TAP_OK(mrl_optim_step(o, p, g, 1e-3) == MRL_ENONFINITE && memcmp(pk, p, sizeof p) == 0,
         "-Inf grad refused too");
  g[0] = 0;
  TAP_OK(mrl_optim_step(o, p, g, NAN) == MRL_EINVAL && mrl_optim_step(o, p, g, -1) == MRL_EINVAL &&
             mrl_optim_step(o, NULL, g, 1) == MRL_EINVAL && memcmp(pk, p, sizeof p) == 0,
         "bad lr or NULL params: EINVAL (%s)", mrl_optim_error(o));

  /* Checkpoint resume: copy moments and step count into a fresh optimiser;
  ** both must then take bit-identical steps. */
  mrl_optim *o2 = NULL;
  mrl_optim_new(&o2, MRL_ADAM, N, 0.9, 0.999, 1e-8);
  memcpy(mrl_optim_moment(o2, 0), mrl_optim_moment(o, 0), N * sizeof(float));
  memcpy(mrl_optim_moment(o2, 1), mrl_optim_moment(o, 1), N * sizeof(float));
  mrl_optim_set_steps(o2, mrl_optim_steps(o));
  float q[N];
  memcpy(q, p, sizeof p);
  for (int i = 0; i < N; i++) g[i] = (float)(unif() - 0.5);
  mrl_optim_step(o, p, g, 1e-3);
  mrl_optim_step(o2, q, g, 1e-3);
  TAP_OK(memcmp(p, q, sizeof p) == 0 && mrl_optim_steps(o2) == 61, "restored state resumes exactly");
  TAP_OK(mrl_optim_moment(o, 2) == NULL && mrl_optim_moment(o, -1) == NULL, "no third moment");

  mrl_optim_reset(o);
  int zero = mrl_optim_steps(o) == 0;
  for (int i = 0; i < N; i++)
    if (mrl_optim_moment(o, 0)[i] != 0 || mrl_optim_moment(o, 1)[i] != 0) zero = 0;
  TAP_OK(zero, "reset zeroes moments and steps");
  mrl_optim_free(o);
  mrl_optim_free(o2);
}

static void test_sgd(void) {
  float p[N], g[N];
  double rp[N], rb[N] = {0};
  mrl_optim *o = NULL;
  TAP_OK(mrl_optim_new(&o, MRL_SGD, N, 0.0, 0, 0) == MRL_OK, "plain sgd created");
  TAP_OK(mrl_optim_moment(o, 0) == NULL, "plain sgd keeps no state");
  for (int i = 0; i < N; i++) {
    p[i] = (float)unif();
    g[i] = (float)(unif() - 0.5);
  }
  float p0[N];
  memcpy(p0, p, sizeof p);
  mrl_optim_step(o, p, g, 0.5);
  int ok = 1;
  for (int i = 0; i < N; i++)
    if (p[i] != p0[i] - 0.5f * g[i]) ok = 0;
  TAP_OK(ok, "plain sgd: p -= lr·g exactly");
  mrl_optim_free(o);

  TAP_OK(mrl_optim_new(&o, MRL_SGD, N, 0.9, 0, 0) == MRL_OK, "momentum sgd created");
  for (int i = 0; i < N; i++) rp[i] = p[i];
  for (int t = 1; t <= 25; t++) {
    for (int i = 0; i < N; i++) g[i] = (float)(cos(0.3 * t * (i % 11)) + unif() - 0.5);
    mrl_optim_step(o, p, g, 0.05);
    /* torch: buf = g on the first step, then buf = μ·buf + g; p -= lr·buf */
    for (int i = 0; i < N; i++) {
      rb[i] = t == 1 ? g[i] : 0.9 * rb[i] + g[i];
      rp[i] -= 0.05 * rb[i];
    }
  }
  double ep = max_rel(p, rp, N), eb = max_rel(mrl_optim_moment(o, 0), rb, N);
  TAP_OK(ep < 1e-5 && eb < 1e-5, "momentum sgd matches torch after 25 steps (%.2g, %.2g)", ep, eb);
  float pk[N];
  memcpy(pk, p, sizeof p);
  float bk = mrl_optim_moment(o, 0)[5];
  g[5] = NAN;
  TAP_OK(mrl_optim_step(o, p, g, 0.05) == MRL_ENONFINITE && memcmp(pk, p, sizeof p) == 0 &&
             mrl_optim_moment(o, 0)[5] == bk && mrl_optim_steps(o) == 25,
         "sgd refuses NaN, nothing changes");
  mrl_optim_free(o);
}

static void test_new_errors(void) {
  mrl_optim *o = (mrl_optim *)1;
  TAP_OK(mrl_optim_new(&o, MRL_ADAM, 0, 0.9, 0.999, 1e-8) == MRL_EINVAL && o == NULL,
         "nparams 0 refused, *out cleared");
  TAP_OK(mrl_optim_new(&o, MRL_ADAM, 10, 1.0, 0.999, 1e-8) == MRL_EINVAL &&
             mrl_optim_new(&o, MRL_ADAM, 10, 0.9, 1.0, 1e-8) == MRL_EINVAL &&
             mrl_optim_new(&o, MRL_ADAM, 10, -0.1, 0.999, 1e-8) == MRL_EINVAL &&
             mrl_optim_new(&o, MRL_ADAM, 10, 0.9, 0.999, -1) == MRL_EINVAL &&
             mrl_optim_new(&o, MRL_ADAM, 10, NAN, 0.999, 1e-8) == MRL_EINVAL &&
             mrl_optim_new(&o, MRL_SGD, 10, 1.5, 0, 0) == MRL_EINVAL &&
             mrl_optim_new(&o, (mrl_optim_kind)7, 10, 0.9, 0.999, 1e-8) == MRL_EINVAL &&
             mrl_optim_new(NULL, MRL_SGD, 10, 0, 0, 0) == MRL_EINVAL,
         "bad betas, eps, kind or out pointer are refused");
  TAP_OK(mrl_optim_new(&o, MRL_ADAM, SIZE_MAX / 2, 0.9, 0.999, 1e-8) != MRL_OK && o == NULL,
         "an absurd size fails cleanly");
  mrl_optim_free(NULL);
  TAP_OK(1, "free(NULL) is a no-op");
}

/* A finite learning rate that would overflow the parameters is refused,
** and nothing — parameters, moments, step count — changes. */
static void test_overflowing_step(void) {
  const mrl_optim_kind kinds[3] = {MRL_ADAM, MRL_SGD, MRL_SGD};
  const double momentum[3] = {0.9, 0.0, 0.9};
  for (int k = 0; k < 3; k++) {
    mrl_optim *o = NULL;
    mrl_optim_new(&o, kinds[k], 4, momentum[k], 0.999, 1e-8);
    float p[4] = {1, -2, 3, 0.5f}, g[4] = {0.1f, -0.2f, 3e30f, 0};
    mrl_optim_step(o, p, g, 1e-3);
    float before[4];
    memcpy(before, p, sizeof p);
    int64_t t = mrl_optim_steps(o);
    int st = mrl_optim_step(o, p, g, 1e300);
    TAP_OK(st == MRL_ENONFINITE && !memcmp(p, before, sizeof p) && mrl_optim_steps(o) == t,
           "%s: lr 1e300 refused, parameters and step count unchanged (%s)",
           k == 0 ? "adam" : k == 1 ? "sgd" : "sgd+momentum", mrl_optim_error(o));
    TAP_OK(mrl_optim_step(o, p, g, 1e-3) == MRL_OK && mrl_all_finite(p, 4),
           "a sane step afterwards works");
    mrl_optim_free(o);
  }
}

int main(void) {
  test_adam();
  test_sgd();
  test_new_errors();
  test_overflowing_step();
  return tap_done();
}
