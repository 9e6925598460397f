/* test_policy_conv.c — policies with a convolutional body: spec checks and
** accessors, the flat parameter order (conv weights [F][in][k][k] and bias,
** then the Linears, then log_std) through a double reference of the whole
** network, ∇ Σ w·log π against central differences of that reference, the
** Fisher-vector product against the curvature of the KL, acting, cloning. */
#include <math.h>
#include <stdlib.h>
#include <string.h>
#include "moonrl.h"
#include "tap.h"

#define OBS_C 2
#define OBS_H 5
#define OBS_W 4
static const mrl_conv_layer LAYERS[2] = {{3, 3, 1, 1}, {4, 2, 2, 0}};
static const int HIDDEN[1] = {6};

/* ------------------------------------------------ double reference */

static double act_fn(mrl_activation a, double z) {
  return a == MRL_TANH ? tanh(z) : (z > 0 ? z : 0);
}

/* The network of the spec at params, one row: out[K]. */
static void ref_net(const mrl_policy_spec *s, const double *p, const double *x,
                    double *out) {
  double a[2][512];
  const double *in = x;
  int C = s->obs_shape[0], H = s->obs_shape[1], W = s->obs_shape[2];
  size_t off = 0;
  for (int l = 0; l < s->nconv; l++) {
    const mrl_conv_layer *L = &s->conv[l];
    int k = L->kernel, st = L->stride, pd = L->padding;
    int Ho = (H + 2 * pd - k) / st + 1, Wo = (W + 2 * pd - k) / st + 1;
    const double *w = p + off, *b = p + off + (size_t)L->out * C * k * k;
    double *o = a[l & 1];
    for (int f = 0; f < L->out; f++)
      for (int oy = 0; oy < Ho; oy++)
        for (int ox = 0; ox < Wo; ox++) {
          double z = b[f];
          for (int c = 0; c < C; c++)
            for (int i = 0; i < k; i++)
              for (int j = 0; j < k; j++) {
                int y = oy * st + i - pd, xx = ox * st + j - pd;
                if (y < 0 || y >= H || xx < 0 || xx >= W) continue;
                z += w[((f * C + c) * k + i) * k + j] * in[(c * H + y) * W + xx];
              }
          o[(f * Ho + oy) * Wo + ox] = act_fn(s->activation, z);
        }
    off += (size_t)L->out * C * k * k + L->out;
    in = o;
    C = L->out;
    H = Ho;
    W = Wo;
  }
  int I = C * H * W;
  double h[2][512];
  for (int l = 0; l <= s->nhidden; l++) {
    int O = l < s->nhidden ? s->hidden[l] : s->action_n;
    const double *w = p + off, *b = p + off + (size_t)O * I;
    double *o = l < s->nhidden ? h[l & 1] : out;
    for (int r = 0; r < O; r++) {
      double z = b[r];
      for (int c = 0; c < I; c++) z += w[(size_t)r * I + c] * in[c];
      o[r] = l < s->nhidden ? act_fn(s->activation, z) : z;
    }
    off += (size_t)O * I + O;
    in = o;
    I = O;
  }
}

/* Σ_n w_n log π(a_n|s_n) under the reference. */
static double ref_objective(const mrl_policy_spec *s, const double *p,
                            size_t nnet, const float *obs, const float *act,
                            const float *wts, int batch) {
  int d = s->obs_shape[0] * s->obs_shape[1] * s->obs_shape[2], K = s->action_n;
  double x[512], z[64], tot = 0;
  for (int n = 0; n < batch; n++) {
    for (int i = 0; i < d; i++) x[i] = obs[n * d + i];
    ref_net(s, p, x, z);
    double lp = 0;
    if (s->action_kind == MRL_DISCRETE) {
      double m = z[0], se = 0;
      for (int j = 1; j < K; j++) m = z[j] > m ? z[j] : m;
      for (int j = 0; j < K; j++) se += exp(z[j] - m);
      lp = z[(int)act[n]] - m - log(se);
    } else {
      for (int j = 0; j < K; j++) {
        double ls = p[nnet + j], u = (act[n * K + j] - z[j]) / exp(ls);
        lp += -0.5 * u * u - ls - 0.5 * log(2 * M_PI);
      }
    }
    tot += wts[n] * lp;
  }
  return tot;
}

static mrl_policy_spec conv_spec(mrl_action_kind kind, mrl_activation act) {
  mrl_policy_spec s = mrl_policy_spec_default();
  s.obs_shape[0] = OBS_C;
  s.obs_shape[1] = OBS_H;
  s.obs_shape[2] = OBS_W;
  s.conv = LAYERS;
  s.nconv = 2;
  s.hidden = HIDDEN;
  s.nhidden = 1;
  s.activation = act;
  s.action_kind = kind;
  s.action_n = 3;
  s.out_gain = 1.0;
  s.seed = 7;
  return s;
}

/* ------------------------------------------------ checks */

static void check_spec(void) {
  char err[200];
  mrl_policy_spec s = conv_spec(MRL_DISCRETE, MRL_TANH);
  TAP_OK(mrl_policy_spec_check(&s, err, sizeof err) == MRL_OK, "spec: a conv spec is valid");
  s.obs_dim = 41;
  TAP_OK(mrl_policy_spec_check(&s, err, sizeof err) == MRL_EINVAL && strstr(err, "obs_dim 41"),
         "spec: obs_dim other than C*H*W refused (%s)", err);
  s.obs_dim = 40;
  TAP_OK(mrl_policy_spec_check(&s, err, sizeof err) == MRL_OK, "spec: obs_dim = C*H*W accepted");
  mrl_conv_layer big[1] = {{2, 9, 1, 1}};
  s.conv = big;
  s.nconv = 1;
  TAP_OK(mrl_policy_spec_check(&s, err, sizeof err) == MRL_EINVAL && strstr(err, "kernel 9"),
         "spec: a kernel over the padded input refused (%s)", err);
  s.conv = NULL;
  TAP_OK(mrl_policy_spec_check(&s, err, sizeof err) == MRL_EINVAL, "spec: nconv without layers refused (%s)", err);
  mrl_policy *p = NULL;
  TAP_OK(mrl_policy_new(&p, &s) == MRL_EINVAL && !p, "spec: mrl_policy_new refuses it too");
}

static void check_policy(mrl_action_kind kind, mrl_activation actf) {
  const char *name = kind == MRL_DISCRETE ? "categorical" : "gaussian";
  mrl_policy_spec s = conv_spec(kind, actf);
  mrl_policy *p = NULL;
  TAP_OK(mrl_policy_new(&p, &s) == MRL_OK, "%s: conv policy made", name);
  if (!p) return;
  const int d = OBS_C * OBS_H * OBS_W, K = 3, B = 5;
  /* conv1 2->3 k3: 54+3, conv2 3->4 k2 s2: 48+4 -> 4x2x2 = 16 -> 6 -> 3 */
  const size_t nconvp = 54 + 3 + 48 + 4, nnet = nconvp + 16 * 6 + 6 + 6 * 3 + 3;
  const size_t np = nnet + (kind == MRL_BOX ? 3 : 0);
  int shape[3] = {0};
  mrl_conv_layer l1 = {0};
  TAP_OK(mrl_policy_obs_dim(p) == d && mrl_policy_nparams(p) == np &&
             mrl_policy_obs_shape(p, shape) == 1 && shape[0] == OBS_C &&
             shape[1] == OBS_H && shape[2] == OBS_W && mrl_policy_nconv(p) == 2 &&
             mrl_policy_conv(p, 1, &l1) == 1 && l1.out == 4 && l1.kernel == 2 &&
             l1.stride == 2 && l1.padding == 0 && mrl_policy_conv(p, 2, &l1) == 0,
         "%s: obs_dim 40, %zu parameters, shape and layers read back", name, np);

  /* random parameters (so every part matters), obs, actions, weights */
  mrl_rng *r = mrl_policy_rng(p);
  float *prm = malloc(np * sizeof(float));
  for (size_t i = 0; i < np; i++) prm[i] = (float)(0.5 * mrl_rng_normal(r));
  TAP_OK(mrl_policy_set_params(p, prm, np) == MRL_OK, "%s: set params", name);
  float obs[5 * 40], act[5 * 3], w[5], out[5 * 3];
  for (int i = 0; i < B * d; i++) obs[i] = (float)mrl_rng_normal(r);
  for (int n = 0; n < B; n++) {
    w[n] = (float)(0.5 + n);
    if (kind == MRL_DISCRETE) act[n] = (float)(n % K);
    else for (int j = 0; j < K; j++) act[n * K + j] = (float)mrl_rng_normal(r);
  }
  double *pd = malloc(np * sizeof(double));
  for (size_t i = 0; i < np; i++) pd[i] = prm[i];

  /* forward = the reference network in this parameter order */
  TAP_OK(mrl_policy_forward(p, NULL, obs, B, out) == MRL_OK, "%s: forward", name);
  double e = 0, nrm = 0, x[40], z[3];
  for (int n = 0; n < B; n++) {
    for (int i = 0; i < d; i++) x[i] = obs[n * d + i];
    ref_net(&s, pd, x, z);
    for (int j = 0; j < K; j++) e += (out[n * K + j] - z[j]) * (out[n * K + j] - z[j]), nrm += z[j] * z[j];
  }
  TAP_OK(sqrt(e) <= 1e-5 * sqrt(nrm) + 1e-6, "%s: outputs = reference (err %.2g of %.2g)", name, sqrt(e),
         sqrt(nrm));

  /* gradient = central differences of the reference objective */
  double obj = 0;
  TAP_OK(mrl_policy_grad_weighted_logp(p, obs, act, w, B, 1.0, &obj) == MRL_OK, "%s: gradient", name);
  const float *g = mrl_policy_grad(p);
  double ge = 0, gn = 0;
  for (size_t i = 0; i < np; i++) {
    double s0 = pd[i], hh = 1e-6;
    pd[i] = s0 + hh;
    double up = ref_objective(&s, pd, nnet, obs, act, w, B);
    pd[i] = s0 - hh;
    double dn = ref_objective(&s, pd, nnet, obs, act, w, B);
    pd[i] = s0;
    double fd = (up - dn) / (2 * hh);
    ge += (g[i] - fd) * (g[i] - fd);
    gn += fd * fd;
  }
  double ref_obj = ref_objective(&s, pd, nnet, obs, act, w, B);
  TAP_OK(fabs(obj - ref_obj) <= 1e-5 * (fabs(ref_obj) + 1) && sqrt(ge) <= 1e-4 * sqrt(gn) + 1e-6,
         "%s: objective and gradient = reference (grad err %.2g of %.2g)", name, sqrt(ge), sqrt(gn));

  /* Fisher: vᵀFv = d²/dε² KL(θ ‖ θ + εv) at 0, ≈ 2 KL/ε²; uᵀFv = vᵀFu */
  float *v = malloc(np * sizeof(float)), *u = malloc(np * sizeof(float));
  float *fv = malloc(np * sizeof(float)), *fu = malloc(np * sizeof(float));
  float *th = malloc(np * sizeof(float));
  for (size_t i = 0; i < np; i++) v[i] = (float)mrl_rng_normal(r), u[i] = (float)mrl_rng_normal(r);
  int rc = mrl_policy_fvp(p, MRL_FISHER_ANALYTIC, obs, NULL, B, v, 0.0, fv);
  rc |= mrl_policy_fvp(p, MRL_FISHER_ANALYTIC, obs, NULL, B, u, 0.0, fu);
  double vfv = 0, ufv = 0, vfu = 0;
  for (size_t i = 0; i < np; i++) vfv += (double)v[i] * fv[i], ufv += (double)u[i] * fv[i], vfu += (double)v[i] * fu[i];
  const double eps = 1e-2;
  for (size_t i = 0; i < np; i++) th[i] = prm[i] + (float)(eps * v[i]);
  double kl = 0, kl2 = 0;
  rc |= mrl_policy_kl(p, prm, th, obs, B, NULL, &kl);
  for (size_t i = 0; i < np; i++) th[i] = prm[i] - (float)(eps * v[i]);
  rc |= mrl_policy_kl(p, prm, th, obs, B, NULL, &kl2);
  /* the symmetric sum cancels the cubic term */
  double curv = (kl + kl2) / (eps * eps);
  TAP_OK(rc == MRL_OK && fabs(vfv - curv) <= 0.03 * fabs(curv) && fabs(ufv - vfu) <= 1e-3 * (fabs(ufv) + 1),
         "%s: v'Fv = KL curvature (%g vs %g), u'Fv = v'Fu (%g, %g)", name, vfv, curv, ufv, vfu);

  /* acting at batch 1 and 5: deterministic = the mode of the outputs */
  float a1[3], lp1;
  rc = mrl_policy_act(p, obs, 1, 1, a1, &lp1);
  int okact = rc == MRL_OK;
  if (kind == MRL_DISCRETE) {
    int m = 0;
    for (int j = 1; j < K; j++) if (out[j] > out[m]) m = j;
    okact = okact && a1[0] == (float)m;
  } else {
    /* batch 1 runs the MLP's batch-1 kernels: equal up to rounding */
    for (int j = 0; j < K; j++) okact = okact && fabs(a1[j] - out[j]) <= 1e-5 * (1 + fabs(out[j]));
  }
  float ab[5 * 3], lpb[5];
  rc = mrl_policy_act(p, obs, B, 0, ab, lpb);
  okact = okact && rc == MRL_OK;
  TAP_OK(okact, "%s: act at batch 1 (the mode) and 5", name);

  /* a clone computes the same bits */
  mrl_policy *c = NULL;
  float out2[5 * 3];
  TAP_OK(mrl_policy_clone(&c, p) == MRL_OK && mrl_policy_nconv(c) == 2 &&
             mrl_policy_forward(c, NULL, obs, B, out2) == MRL_OK &&
             memcmp(out, out2, sizeof out) == 0,
         "%s: a clone has the same body and outputs", name);
  mrl_policy_free(c);
  /* bad obs still named */
  obs[7] = NAN;
  TAP_OK(mrl_policy_forward(p, NULL, obs, B, out) == MRL_ENONFINITE &&
             strstr(mrl_policy_error(p), "obs"),
         "%s: a NaN in a grid row is refused (%s)", name, mrl_policy_error(p));
  free(prm);
  free(pd);
  free(v);
  free(u);
  free(fv);
  free(fu);
  free(th);
  mrl_policy_free(p);
}

/* A conv value net (mrl_net_new_spec): the same network as a policy's with
** one output; the value loss gradient and J·v against the reference. */
static void check_net(void) {
  mrl_policy_spec ps = conv_spec(MRL_DISCRETE, MRL_TANH);
  ps.action_n = 1;
  mrl_net_spec s = mrl_net_spec_default();
  memcpy(s.obs_shape, ps.obs_shape, sizeof s.obs_shape);
  s.conv = LAYERS;
  s.nconv = 2;
  s.hidden = HIDDEN;
  s.nhidden = 1;
  s.seed = 3;
  char err[200];
  mrl_net_spec bad = s;
  bad.in_dim = 39;
  TAP_OK(mrl_net_spec_check(&bad, err, sizeof err) == MRL_EINVAL && strstr(err, "in_dim 39"),
         "net: in_dim other than C*H*W refused (%s)", err);
  mrl_net *n = NULL;
  TAP_OK(mrl_net_spec_check(&s, err, sizeof err) == MRL_OK && mrl_net_new_spec(&n, &s) == MRL_OK,
         "net: conv value net made");
  if (!n) return;
  const size_t np = mrl_net_nparams(n);
  int shape[3];
  TAP_OK(mrl_net_in_dim(n) == 40 && np == 54 + 3 + 48 + 4 + 16 * 6 + 6 + 6 + 1 &&
             mrl_net_nconv(n) == 2 && mrl_net_obs_shape(n, shape) && shape[2] == OBS_W,
         "net: in_dim 40, %zu parameters, layers read back", np);
  mrl_rng *r = NULL;
  mrl_rng_new(&r, 11);
  float *prm = malloc(np * sizeof(float)), *v = malloc(np * sizeof(float));
  for (size_t i = 0; i < np; i++) prm[i] = (float)(0.5 * mrl_rng_normal(r)), v[i] = (float)mrl_rng_normal(r);
  mrl_net_set_params(n, prm, np);
  float obs[4 * 40], tgt[4], jy[4], y[4];
  for (int i = 0; i < 4 * 40; i++) obs[i] = (float)mrl_rng_normal(r);
  for (int i = 0; i < 4; i++) tgt[i] = (float)mrl_rng_normal(r);
  double *pd = malloc(np * sizeof(double)), x[40], z[1];
  for (size_t i = 0; i < np; i++) pd[i] = prm[i];
  double loss = 0;
  TAP_OK(mrl_net_value_loss(n, obs, tgt, 4, &loss, NULL) == MRL_OK, "net: value loss");
  const float *g = mrl_net_grad(n);
  double ge = 0, gn = 0;
  for (size_t i = 0; i < np; i++) {
    double fd = 0;
    for (int sgn = -1; sgn <= 1; sgn += 2) {
      pd[i] = prm[i] + sgn * 1e-6;
      double l = 0;
      for (int b = 0; b < 4; b++) {
        for (int j = 0; j < 40; j++) x[j] = obs[b * 40 + j];
        ref_net(&ps, pd, x, z);
        l += (z[0] - tgt[b]) * (z[0] - tgt[b]) / 4;
      }
      fd += sgn * l / 2e-6;
    }
    pd[i] = prm[i];
    ge += (g[i] - fd) * (g[i] - fd);
    gn += fd * fd;
  }
  TAP_OK(sqrt(ge) <= 1e-4 * sqrt(gn) + 1e-6, "net: value-loss gradient = reference (err %.2g of %.2g)",
         sqrt(ge), sqrt(gn));
  /* J·v by differences of the reference */
  TAP_OK(mrl_net_jvp(n, obs, 4, v, y, jy) == MRL_OK, "net: jvp");
  double je = 0, jn = 0;
  for (int b = 0; b < 4; b++) {
    for (int j = 0; j < 40; j++) x[j] = obs[b * 40 + j];
    double zp, zm;
    for (size_t i = 0; i < np; i++) pd[i] = prm[i] + 1e-6 * v[i];
    ref_net(&ps, pd, x, z);
    zp = z[0];
    for (size_t i = 0; i < np; i++) pd[i] = prm[i] - 1e-6 * v[i];
    ref_net(&ps, pd, x, z);
    zm = z[0];
    double fd = (zp - zm) / 2e-6;
    je += (jy[b] - fd) * (jy[b] - fd);
    jn += fd * fd;
  }
  TAP_OK(sqrt(je) <= 1e-4 * sqrt(jn) + 1e-6, "net: J.v = reference (err %.2g of %.2g)", sqrt(je), sqrt(jn));
  float dy[4] = {1, 1, 1, 1}, dx[4 * 40];
  mrl_net_forward(n, obs, 4, y);
  TAP_OK(mrl_net_backward(n, dy, dx) == MRL_EINVAL && strstr(mrl_net_error(n), "dx"),
         "net: dx of a conv net's input refused (%s)", mrl_net_error(n));
  mrl_net *c = NULL;
  float y2[4];
  TAP_OK(mrl_net_clone(&c, n) == MRL_OK && mrl_net_forward(c, obs, 4, y2) == MRL_OK &&
             memcmp(y, y2, sizeof y) == 0,
         "net: a clone computes the same bits");
  mrl_net_free(c);
  mrl_net_free(n);
  free(prm);
  free(v);
  free(pd);
  mrl_rng_free(r);
}

int main(void) {
  check_spec();
  check_net();
  check_policy(MRL_DISCRETE, MRL_TANH);
  check_policy(MRL_BOX, MRL_RELU);
  return tap_done();
}
