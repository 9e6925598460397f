/* test_net.c — the mrl_net handle: construction, argument checks and their
** messages, parameter round trips, forward/backward/jvp through the handle,
** workspace growth, and both value losses against central differences. */
#include <math.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include "moonrl.h"
#include "tap.h"

/* plain double forward of a 1-hidden-or-more tanh/relu MLP in flat order */
static void ref_forward(int nl, const int *dims, mrl_activation act,
                        const double *p, const double *x, int batch, double *y) {
  double h[2][256];
  for (int b = 0; b < batch; b++) {
    const double *in = x + (size_t)b * dims[0];
    size_t off = 0;
    for (int l = 0; l < nl; l++) {
      int I = dims[l], O = dims[l + 1];
      double *z = h[l & 1];
      for (int o = 0; o < O; o++) {
        double a = p[off + (size_t)O * I + o];
        for (int i = 0; i < I; i++) a += p[off + (size_t)o * I + i] * in[i];
        if (l < nl - 1) a = act == MRL_TANH ? tanh(a) : (a > 0 ? a : 0);
        z[o] = a;
      }
      off += (size_t)O * I + O;
      in = z;
    }
    memcpy(y + (size_t)b * dims[nl], in, (size_t)dims[nl] * sizeof(double));
  }
}

static uint64_t lcg = 88172645463325252ULL;
static double urand(void) {  /* test-local xorshift, independent of mrl_rng */
  lcg ^= lcg << 13; lcg ^= lcg >> 7; lcg ^= lcg << 17;
  return (double)(lcg >> 11) / 9007199254740992.0;
}

static int has(const char *msg, const char *word) { return msg && strstr(msg, word); }

static void test_construction(void) {
  mrl_net *n = NULL;
  int h[] = {64, 64}, z[] = {64, 0};
  TAP_OK(mrl_net_new(&n, 4, h, 2, 1, MRL_TANH, 1.0, 1) == MRL_OK && n, "new 4-64-64-1");
  TAP_OK(mrl_net_in_dim(n) == 4 && mrl_net_out_dim(n) == 1 && mrl_net_nhidden(n) == 2 &&
         mrl_net_hidden(n, 1) == 64 && mrl_net_hidden(n, 2) == 0 &&
         mrl_net_activation(n) == MRL_TANH && mrl_net_nparams(n) == 4545,
         "accessors describe the net");
  TAP_OK(mrl_net_params(n) && mrl_net_grad(n) && mrl_net_grad(n)[17] == 0,
         "params and a zero grad are exposed");
  mrl_net *m = NULL;
  mrl_net_new(&m, 4, h, 2, 1, MRL_TANH, 1.0, 1);
  TAP_OK(memcmp(mrl_net_params(n), mrl_net_params(m), 4545 * 4) == 0, "init is seeded");
  mrl_net_free(m);
  m = NULL;
  TAP_OK(mrl_net_new(&m, 4, z, 2, 1, MRL_TANH, 1.0, 1) == MRL_EINVAL && !m, "width 0 refused");
  TAP_OK(mrl_net_new(&m, 4, NULL, 2, 1, MRL_TANH, 1.0, 1) == MRL_EINVAL, "NULL hidden refused");
  TAP_OK(mrl_net_new(&m, 4, h, 2, 1, (mrl_activation)3, 1.0, 1) == MRL_EINVAL,
         "bad activation refused");
  TAP_OK(mrl_net_new(&m, 4, h, 2, 1, MRL_TANH, NAN, 1) == MRL_EINVAL, "NaN gain refused");
  TAP_OK(mrl_net_new(NULL, 4, h, 2, 1, MRL_TANH, 1.0, 1) == MRL_EINVAL, "NULL out refused");
  TAP_OK(mrl_net_new(&m, 3, NULL, 0, 2, MRL_RELU, 1.0, 1) == MRL_OK && mrl_net_nparams(m) == 8,
         "nhidden = 0 net");
  mrl_net_free(m);
  mrl_net_free(NULL);

  float x[8] = {0}, y[2], buf[4545];
  TAP_OK(mrl_net_forward(n, NULL, 1, y) == MRL_EINVAL && has(mrl_net_error(n), "x"),
         "forward NULL x: %s", mrl_net_error(n));
  TAP_OK(mrl_net_forward(n, x, 1, NULL) == MRL_EINVAL && has(mrl_net_error(n), "y"),
         "forward NULL y: %s", mrl_net_error(n));
  TAP_OK(mrl_net_forward(n, x, 0, y) == MRL_EINVAL && has(mrl_net_error(n), "batch"),
         "forward batch 0: %s", mrl_net_error(n));
  TAP_OK(mrl_net_forward(n, x, MRL_MAX_BATCH + 1, y) == MRL_EINVAL &&
         has(mrl_net_error(n), "batch"), "forward batch too large: %s", mrl_net_error(n));
  TAP_OK(mrl_net_forward(NULL, x, 1, y) == MRL_EINVAL, "forward NULL net");
  TAP_OK(mrl_net_backward(n, y, NULL) == MRL_ESTATE && has(mrl_net_error(n), "forward"),
         "backward before forward: %s", mrl_net_error(n));
  TAP_OK(mrl_net_backward(n, NULL, NULL) == MRL_EINVAL && has(mrl_net_error(n), "dy"),
         "backward NULL dy: %s", mrl_net_error(n));
  TAP_OK(mrl_net_get_params(n, buf, 12) == MRL_EINVAL && has(mrl_net_error(n), "n is 12"),
         "get_params wrong n: %s", mrl_net_error(n));
  TAP_OK(mrl_net_get_params(n, NULL, 4545) == MRL_EINVAL && has(mrl_net_error(n), "out"),
         "get_params NULL: %s", mrl_net_error(n));
  TAP_OK(mrl_net_get_params(n, buf, 4545) == MRL_OK && mrl_net_error(n)[0] == 0,
         "get_params; success clears the message");
  buf[100] = NAN;
  float keep = mrl_net_params(n)[0];
  buf[0] = keep + 1;
  TAP_OK(mrl_net_set_params(n, buf, 4545) == MRL_ENONFINITE &&
         mrl_net_params(n)[0] == keep && has(mrl_net_error(n), "100"),
         "set_params refuses NaN, params untouched: %s", mrl_net_error(n));
  buf[100] = INFINITY;
  TAP_OK(mrl_net_set_params(n, buf, 4545) == MRL_ENONFINITE, "set_params refuses Inf");
  buf[100] = 0.5f;
  TAP_OK(mrl_net_set_params(n, buf, 4544) == MRL_EINVAL && has(mrl_net_error(n), "n is"),
         "set_params wrong n: %s", mrl_net_error(n));
  TAP_OK(mrl_net_set_params(n, NULL, 4545) == MRL_EINVAL && has(mrl_net_error(n), "in"),
         "set_params NULL: %s", mrl_net_error(n));
  TAP_OK(mrl_net_set_params(n, buf, 4545) == MRL_OK && mrl_net_params(n)[0] == keep + 1 &&
         mrl_net_params(n)[100] == 0.5f, "set_params copies");
  float t[2] = {0}, v[4545] = {0};
  double loss;
  TAP_OK(mrl_net_jvp(n, x, 1, NULL, y, y) == MRL_EINVAL && has(mrl_net_error(n), "v"),
         "jvp NULL v: %s", mrl_net_error(n));
  TAP_OK(mrl_net_jvp(n, x, -3, v, y, y) == MRL_EINVAL && has(mrl_net_error(n), "batch"),
         "jvp bad batch: %s", mrl_net_error(n));
  TAP_OK(mrl_net_value_loss(n, x, NULL, 1, &loss, NULL) == MRL_EINVAL &&
         has(mrl_net_error(n), "targets"), "value_loss NULL targets: %s", mrl_net_error(n));
  TAP_OK(mrl_net_value_loss(n, x, t, 1, NULL, NULL) == MRL_EINVAL &&
         has(mrl_net_error(n), "loss"), "value_loss NULL loss: %s", mrl_net_error(n));
  TAP_OK(mrl_net_value_loss_clipped(n, x, t, NULL, 2, 0.2, &loss) == MRL_EINVAL &&
         has(mrl_net_error(n), "old_values"), "clipped NULL old_values: %s", mrl_net_error(n));
  TAP_OK(mrl_net_value_loss_clipped(n, x, t, t, 0, 0.2, &loss) == MRL_EINVAL &&
         has(mrl_net_error(n), "batch"), "clipped batch 0: %s", mrl_net_error(n));
  t[0] = NAN;
  TAP_OK(mrl_net_value_loss(n, x, t, 1, &loss, NULL) == MRL_ENONFINITE,
         "value_loss with a NaN target: %s", mrl_net_error(n));
  mrl_net *two = NULL;
  mrl_net_new(&two, 4, h, 2, 2, MRL_TANH, 1.0, 1);
  t[0] = 0;
  TAP_OK(mrl_net_value_loss(two, x, t, 1, &loss, NULL) == MRL_EINVAL &&
         has(mrl_net_error(two), "outputs"), "value_loss on 2 outputs: %s", mrl_net_error(two));
  mrl_net_free(two);
  mrl_net_free(n);
}

/* forward, backward, dx, jvp through the handle vs the double reference */
static void test_passes(void) {
  int h[] = {9, 7}, dims[] = {3, 9, 7, 2};
  mrl_net *n = NULL;
  mrl_net_new(&n, 3, h, 2, 2, MRL_TANH, 0.7, 4);
  size_t P = mrl_net_nparams(n);
  float *p = mrl_net_params(n);
  for (size_t i = 0; i < P; i++) p[i] += (float)(0.1 * (urand() - 0.5));
  double *pd = malloc(P * 8);
  for (size_t i = 0; i < P; i++) pd[i] = p[i];
  int B[] = {1, 300, 5};  /* grows, then shrinks: the workspace is reused */
  for (int bi = 0; bi < 3; bi++) {
    int batch = B[bi];
    float *x = malloc(batch * 3 * 4), *y = malloc(batch * 2 * 4), *dy = malloc(batch * 2 * 4),
          *dx = malloc(batch * 3 * 4), *jy = malloc(batch * 2 * 4), *vv = malloc(P * 4),
          *yj = malloc(batch * 2 * 4);
    double *xd = malloc(batch * 3 * 8), *yd = malloc(batch * 2 * 8), *y2 = malloc(batch * 2 * 8);
    for (int i = 0; i < batch * 3; i++) xd[i] = x[i] = (float)(2 * urand() - 1);
    for (int i = 0; i < batch * 2; i++) dy[i] = (float)(2 * urand() - 1);
    for (size_t i = 0; i < P; i++) vv[i] = (float)(2 * urand() - 1);
    TAP_OK(mrl_net_forward(n, x, batch, y) == MRL_OK, "forward b=%d", batch);
    ref_forward(3, dims, MRL_TANH, pd, xd, batch, yd);
    double e = 0;
    for (int i = 0; i < batch * 2; i++) e = fmax(e, fabs(y[i] - yd[i]));
    TAP_OK(e < 1e-5, "forward b=%d matches the reference (max err %.1e)", batch, e);
    mrl_net_zero_grad(n);
    TAP_OK(mrl_net_backward(n, dy, dx) == MRL_OK, "backward b=%d", batch);
    const float *g = mrl_net_grad(n);
    double h = 1e-5, worst = 0, gn = 0;
    for (size_t i = 0; i < P; i++) {
      double keep = pd[i], lp = 0, lm = 0;
      pd[i] = keep + h;
      ref_forward(3, dims, MRL_TANH, pd, xd, batch, yd);
      for (int k = 0; k < batch * 2; k++) lp += dy[k] * yd[k];
      pd[i] = keep - h;
      ref_forward(3, dims, MRL_TANH, pd, xd, batch, yd);
      for (int k = 0; k < batch * 2; k++) lm += dy[k] * yd[k];
      pd[i] = keep;
      double fd = (lp - lm) / (2 * h);
      worst = fmax(worst, fabs(fd - g[i]));
      gn = fmax(gn, fabs(fd));
    }
    TAP_OK(worst <= 1e-5 * gn + 1e-6, "b=%d grad = central differences (max err %.1e of %.1e)",
           batch, worst, gn);
    worst = 0;
    for (int i = 0; i < batch * 3 && i < 60; i++) {
      double keep = xd[i], lp = 0, lm = 0;
      xd[i] = keep + h;
      ref_forward(3, dims, MRL_TANH, pd, xd, batch, yd);
      for (int k = 0; k < batch * 2; k++) lp += dy[k] * yd[k];
      xd[i] = keep - h;
      ref_forward(3, dims, MRL_TANH, pd, xd, batch, yd);
      for (int k = 0; k < batch * 2; k++) lm += dy[k] * yd[k];
      xd[i] = keep;
      worst = fmax(worst, fabs((lp - lm) / (2 * h) - dx[i]));
    }
    TAP_OK(worst < 1e-5, "b=%d dx = central differences (max err %.1e)", batch, worst);
    TAP_OK(mrl_net_jvp(n, x, batch, vv, yj, jy) == MRL_OK, "jvp b=%d", batch);
    for (size_t i = 0; i < P; i++) pd[i] = p[i] + h * vv[i];
    ref_forward(3, dims, MRL_TANH, pd, xd, batch, yd);
    for (size_t i = 0; i < P; i++) pd[i] = p[i] - h * vv[i];
    ref_forward(3, dims, MRL_TANH, pd, xd, batch, y2);
    for (size_t i = 0; i < P; i++) pd[i] = p[i];
    worst = 0;
    int same = 1;
    for (int i = 0; i < batch * 2; i++) {
      worst = fmax(worst, fabs((yd[i] - y2[i]) / (2 * h) - jy[i]));
      same &= yj[i] == y[i];
    }
    TAP_OK(worst < 1e-4 && same, "b=%d jvp = central differences (max err %.1e), y = forward",
           batch, worst);
    free(x); free(y); free(dy); free(dx); free(jy); free(vv); free(yj);
    free(xd); free(yd); free(y2);
  }
  free(pd);
  mrl_net_free(n);
}

/* both value losses: value, gradient vs differences of the double loss */
static double ref_vloss(const double *p, const double *x, const float *t,
                        const float *old, int batch, double clip, const int *dims) {
  double v[64];
  ref_forward(3, dims, MRL_RELU, p, x, batch, v);
  double s = 0;
  for (int i = 0; i < batch; i++) {
    double l = (v[i] - t[i]) * (v[i] - t[i]);
    if (clip > 0) {
      double d = v[i] - old[i];
      d = d < -clip ? -clip : d > clip ? clip : d;
      double lc = (old[i] + d - t[i]) * (old[i] + d - t[i]);
      if (lc > l) l = lc;
    }
    s += l;
  }
  return s / batch;
}

static void test_value_loss(void) {
  int h[] = {8, 6}, dims[] = {4, 8, 6, 1};
  enum { B = 24 };
  mrl_net *n = NULL;
  mrl_net_new(&n, 4, h, 2, 1, MRL_RELU, 1.0, 9);
  size_t P = mrl_net_nparams(n);
  float x[B * 4], t[B], old[B], vals[B];
  double xd[B * 4], vd[B], *pd = malloc(P * 8);
  for (int i = 0; i < B * 4; i++) xd[i] = x[i] = (float)(2 * urand() - 1);
  /* random biases: with zero ones, a row whose first layer is all off puts
  ** the next pre-activations exactly on the ReLU kink */
  float *p = mrl_net_params(n);
  for (size_t i = 40; i < 40 + 48 + 6; i++) p[i] += (float)(0.2 * (urand() - 0.5));
  for (size_t i = 0; i < P; i++) pd[i] = p[i];
  ref_forward(3, dims, MRL_RELU, pd, xd, B, vd);
  for (int i = 0; i < B; i++) {
    t[i] = (float)(vd[i] + 2 * urand() - 1);
    old[i] = (float)(vd[i] + 0.6 * urand() - 0.3);  /* some inside, some outside ±0.1 */
  }
  double clips[] = {0.0, 0.1, -1.0};
  for (int c = 0; c < 4; c++) {
    double loss = -1, clip = c < 3 ? clips[c] : 0;
    mrl_net_grad(n)[0] = 123;  /* must be overwritten, not accumulated */
    int rc = c == 3 ? mrl_net_value_loss(n, x, t, B, &loss, vals)
                    : mrl_net_value_loss_clipped(n, x, t, old, B, clip, &loss);
    double want = ref_vloss(pd, xd, t, old, B, clip, dims);
    TAP_OK(rc == MRL_OK && fabs(loss - want) <= 1e-5 * want,
           "%s clip %.1f: loss %.6f = %.6f", c == 3 ? "value_loss" : "clipped", clip, loss, want);
    const float *g = mrl_net_grad(n);
    double worst = 0, gn = 0, hh = 1e-6;
    for (size_t i = 0; i < P; i++) {
      double keep = pd[i];
      pd[i] = keep + hh;
      double lp = ref_vloss(pd, xd, t, old, B, clip, dims);
      pd[i] = keep - hh;
      double lm = ref_vloss(pd, xd, t, old, B, clip, dims);
      pd[i] = keep;
      double fd = (lp - lm) / (2 * hh);
      worst = fmax(worst, fabs(fd - g[i]));
      gn = fmax(gn, fabs(fd));
    }
    TAP_OK(worst <= 1e-4 * gn + 1e-6, "%s clip %.1f: grad := central differences (max err %.1e of %.1e)",
           c == 3 ? "value_loss" : "clipped", clip, worst, gn);
  }
  double e = 0;
  for (int i = 0; i < B; i++) e = fmax(e, fabs(vals[i] - vd[i]));
  TAP_OK(e < 1e-5, "value_loss returns V(s) (max err %.1e)", e);
  free(pd);
  mrl_net_free(n);
}

int main(void) {
  test_construction();
  test_passes();
  test_value_loss();
  return tap_done();
}
