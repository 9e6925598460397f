/* test_dist.c — the row-wise distributions of dist.h: identities, closed
** forms, and every derivative against central differences. */
#include <math.h>
#include <stdlib.h>

#include "dist.h"
#include "tap.h"

/* Central differences over float inputs: the step actually taken is
** (float)(x ± h) − x, so the quotient uses the rounded step. */
typedef double (*row_fn)(const float *x, int k, void *ctx);

static double fd(row_fn f, float *x, int k, int j, double h, void *ctx) {
  float x0 = x[j];
  float xp = (float)(x0 + h), xm = (float)(x0 - h);
  x[j] = xp;
  double fp = f(x, k, ctx);
  x[j] = xm;
  double fm = f(x, k, ctx);
  x[j] = x0;
  return (fp - fm) / ((double)xp - (double)xm);
}

/* ---------------------------------------------------------- categorical */

static const float Z1[5] = {0.3f, -1.2f, 2.0f, 0.0f, -0.4f};
static const float Z2[5] = {-0.5f, 0.7f, 1.1f, 0.2f, -1.0f};

static double f_logp(const float *z, int k, void *ctx) {
  return dist_cat_logp(z, k, *(int *)ctx);
}
static double f_entropy(const float *z, int k, void *ctx) {
  (void)ctx;
  return dist_cat_entropy(z, k);
}
static double f_kl_new(const float *z, int k, void *ctx) {
  return dist_cat_kl((const float *)ctx, z, k);
}

static void test_categorical(void) {
  const int k = 5;
  double ls[5], s = 0.0;
  dist_cat_log_softmax(Z1, k, ls);
  for (int j = 0; j < k; j++) s += exp(ls[j]);
  TAP_OK(tap_close(s, 1.0, 0, 1e-14), "softmax sums to 1 (%.17g)", s);
  TAP_OK(tap_close(dist_cat_logp(Z1, k, 2), ls[2], 0, 1e-15),
         "logp agrees with log_softmax");

  /* Reference entropy and KL in plain double arithmetic. */
  double m = 2.0, se = 0.0;
  for (int j = 0; j < k; j++) se += exp(Z1[j] - m);
  double h = 0.0;
  for (int j = 0; j < k; j++) {
    double lp = Z1[j] - m - log(se);
    h -= exp(lp) * lp;
  }
  TAP_OK(tap_close(dist_cat_entropy(Z1, k), h, 1e-13, 0), "entropy = -Σ p log p");
  float flat[4] = {1.5f, 1.5f, 1.5f, 1.5f};
  TAP_OK(tap_close(dist_cat_entropy(flat, 4), log(4.0), 1e-14, 0),
         "uniform entropy = log K");
  TAP_OK(dist_cat_kl(Z1, Z1, k) == 0.0, "KL(p||p) = 0");
  TAP_OK(dist_cat_kl(Z1, Z2, k) > 0.0 && dist_cat_kl(Z2, Z1, k) > 0.0,
         "KL > 0 between different rows");
  double l2[5], kl = 0.0;
  dist_cat_log_softmax(Z2, k, l2);
  for (int j = 0; j < k; j++) kl += exp(ls[j]) * (ls[j] - l2[j]);
  TAP_OK(tap_close(dist_cat_kl(Z1, Z2, k), kl, 1e-13, 0),
         "KL(old||new) = Σ p_old (log p_old - log p_new)");
  /* Shift invariance: adding a constant to all logits changes nothing. */
  float zs[5];
  for (int j = 0; j < k; j++) zs[j] = Z1[j] + 100.0f;
  TAP_OK(tap_close(dist_cat_logp(zs, k, 1), dist_cat_logp(Z1, k, 1), 0, 1e-5),
         "logp is shift invariant");
  float big[3] = {1000.0f, 999.0f, -1000.0f};
  TAP_OK(isfinite(dist_cat_entropy(big, 3)) && isfinite(dist_cat_logp(big, 3, 2)),
         "large logits stay finite");
  TAP_OK(dist_cat_mode(Z1, k) == 2, "mode is the argmax");
  float tie[3] = {1.0f, 3.0f, 3.0f};
  TAP_OK(dist_cat_mode(tie, 3) == 1, "mode takes the lowest index on ties");
}

static void test_categorical_grads(void) {
  const int k = 5;
  float z[5], zo[5];
  for (int j = 0; j < k; j++) z[j] = Z1[j], zo[j] = Z2[j];
  double worst = 0.0;
  for (int a = 0; a < k; a++) {
    double d[5] = {0};
    dist_cat_dlogp_add(z, k, a, 1.0, d);
    for (int j = 0; j < k; j++) {
      double e = fabs(d[j] - fd(f_logp, z, k, j, 1e-3, &a));
      if (e > worst) worst = e;
    }
  }
  TAP_OK(worst < 1e-5, "dlogp/dz matches central differences (err %.2g)", worst);

  double d[5] = {0}, err = 0.0;
  dist_cat_dentropy_add(z, k, 1.0, d);
  for (int j = 0; j < k; j++) {
    double e = fabs(d[j] - fd(f_entropy, z, k, j, 1e-3, NULL));
    if (e > err) err = e;
  }
  TAP_OK(err < 1e-5, "dH/dz matches central differences (err %.2g)", err);

  double dk[5] = {0};
  err = 0.0;
  dist_cat_dkl_add(zo, z, k, 1.0, dk);
  for (int j = 0; j < k; j++) {
    double e = fabs(dk[j] - fd(f_kl_new, z, k, j, 1e-3, zo));
    if (e > err) err = e;
  }
  TAP_OK(err < 1e-5, "dKL/dz_new matches central differences (err %.2g)", err);

  /* Weights scale and accumulate. */
  double d1[5] = {1, 1, 1, 1, 1}, d2[5] = {0};
  dist_cat_dlogp_add(z, k, 3, -2.5, d1);
  dist_cat_dlogp_add(z, k, 3, 1.0, d2);
  int ok = 1;
  for (int j = 0; j < k; j++) ok &= tap_close(d1[j], 1.0 - 2.5 * d2[j], 0, 1e-15);
  TAP_OK(ok, "gradient helpers add w times the derivative");

  /* Fisher = Hessian of KL(p_old||·) at p_old: columns by differencing dKL. */
  float v[5] = {0.4f, -1.0f, 0.25f, 0.9f, -0.3f};
  double fv[5] = {0};
  dist_cat_fisher_add(z, k, v, 1.0, fv);
  double hv = 1e-3, fdv[5] = {0}, fdm[5] = {0};
  float zp[5], zm[5];
  for (int j = 0; j < k; j++) {
    zp[j] = (float)(z[j] + hv * v[j]);
    zm[j] = (float)(z[j] - hv * v[j]);
  }
  dist_cat_dkl_add(z, zp, k, 1.0, fdv);
  dist_cat_dkl_add(z, zm, k, 1.0, fdm);
  err = 0.0;
  for (int j = 0; j < k; j++) {
    double e = fabs(fv[j] - (fdv[j] - fdm[j]) / (2 * hv));
    if (e > err) err = e;
  }
  TAP_OK(err < 1e-4, "Fisher (diag p - pp^T) v = Hessian of KL (err %.2g)", err);
  double sfv = 0.0;
  for (int j = 0; j < k; j++) sfv += fv[j];
  TAP_OK(fabs(sfv) < 1e-15, "Fisher kills the all-ones direction (%.2g)", sfv);
}

static void test_categorical_sampling(void) {
  const int k = 5, M = 200000;
  int count[5] = {0};
  /* A stratified grid of u reproduces the CDF to within 1/M per bin. */
  for (int i = 0; i < M; i++) count[dist_cat_sample(Z1, k, (i + 0.5) / M)]++;
  double ls[5];
  dist_cat_log_softmax(Z1, k, ls);
  int ok = 1;
  for (int j = 0; j < k; j++)
    ok &= fabs((double)count[j] / M - exp(ls[j])) <= 1.5 / M;
  TAP_OK(ok, "inverse-CDF frequencies equal softmax on a u grid");
  TAP_OK(dist_cat_sample(Z1, k, 0.0) == 0, "u = 0 takes the first category");
  TAP_OK(dist_cat_sample(Z1, k, 0.9999999999999999) == 4,
         "u -> 1 takes the last category");
  float dead[3] = {0.0f, -200.0f, -200.0f};
  TAP_OK(dist_cat_sample(dead, 3, 0.9999999999999999) == 0,
         "a category with zero mass is never drawn");
}

/* Two actions take their own path (one exp): the same inverse CDF, and the
** log-probability of the draw to float rounding, for either order of the
** logits, a tie, and a difference past exp's range. */
static void test_categorical_two(void) {
  const float rows[5][2] = {{0.3f, -1.2f}, {-0.7f, 2.1f}, {0.5f, 0.5f},
                            {0.0f, 120.0f}, {-150.0f, 0.0f}};
  const int M = 100000;
  int ok_freq = 1, ok_lp = 1, ok_edge = 1;
  double worst = 0;
  for (int r = 0; r < 5; r++) {
    const float *z = rows[r];
    double ls[2];
    dist_cat_log_softmax(z, 2, ls);
    int c0 = 0;
    for (int i = 0; i < M; i++) {
      double u = (i + 0.5) / M, lp;
      int a = dist_cat_sample_logp(z, 2, u, &lp);
      c0 += a == 0;
      double d = fabs(lp - ls[a]) / (1.0 + fabs(ls[a]));
      if (!(d <= worst)) worst = d;
    }
    ok_freq &= fabs((double)c0 / M - exp(ls[0])) <= 1.5 / M;
    /* mass as a float sees it (e^-120 is 0 there) */
    ok_edge &= dist_cat_sample(z, 2, 0.0) == ((float)exp(ls[0]) > 0 ? 0 : 1);
    ok_edge &= dist_cat_sample(z, 2, 0.9999999999999999) == ((float)exp(ls[1]) > 0 ? 1 : 0);
  }
  ok_lp = worst < 1e-6;
  TAP_OK(ok_freq, "two actions: inverse-CDF frequencies equal softmax");
  TAP_OK(ok_lp, "two actions: logp of the draw = log softmax to float rounding (%.2g)", worst);
  TAP_OK(ok_edge, "two actions: u = 0 and u -> 1 take the first and last category with mass");
}

/* The pieces of the two-action draw: log(1 + e^-a) from its rational fit,
** and the cut against which z1 - z0 decides. */
static void test_categorical_two_parts(void) {
  double worst = 0, at = 0;
  for (double a = 0; a < 40; a += 1.7e-4) {
    double e = fabs(dist_log1p_exp_neg(a) - log1p(exp(-a)));
    if (!(e <= worst)) { worst = e; at = a; }
  }
  TAP_OK(worst < 3e-8 && dist_log1p_exp_neg(1e300) == 0 && dist_log1p_exp_neg(0) > 0.6931471 &&
             dist_log1p_exp_neg(0) < 0.6931472,
         "log(1 + e^-a) within %.2g of libm (worst at a = %.3g), 0 far out", worst, at);
  int mono = 1;
  for (int i = 1; i < 1000; i++) mono &= dist_cat2_cut(i / 1000.0) < dist_cat2_cut((i - 1) / 1000.0);
  TAP_OK(dist_cat2_cut(0.0) == 103.97 && dist_cat2_cut(0.5) == 0.0 &&
             fabs(dist_cat2_cut(0.25) - log(3.0)) < 1e-15 && mono &&
             dist_cat2_cut(0.9999999999999999) > -40,
         "the cut is log((1-u)/u), capped at 103.97 for u = 0, decreasing in u");
}

/* ------------------------------------------------------------- gaussian */

static const float MU[3] = {0.2f, -1.0f, 0.5f};
static const float LS[3] = {-0.3f, 0.1f, 0.4f};
static const float A[3] = {0.6f, -0.2f, -0.7f};
static const float MU2[3] = {-0.1f, -0.6f, 0.9f};
static const float LS2[3] = {0.2f, -0.4f, 0.3f};

typedef struct gctx {
  const float *mu, *ls, *a, *mu_old, *ls_old;
} gctx;

static double f_glogp_mu(const float *mu, int k, void *c) {
  gctx *g = c;
  return dist_gauss_logp(mu, g->ls, g->a, k);
}
static double f_glogp_ls(const float *ls, int k, void *c) {
  gctx *g = c;
  return dist_gauss_logp(g->mu, ls, g->a, k);
}
static double f_gkl_mu(const float *mu, int k, void *c) {
  gctx *g = c;
  return dist_gauss_kl(g->mu_old, g->ls_old, mu, g->ls, k);
}
static double f_gkl_ls(const float *ls, int k, void *c) {
  gctx *g = c;
  return dist_gauss_kl(g->mu_old, g->ls_old, g->mu, ls, k);
}

static void test_gaussian(void) {
  const int k = 3;
  double ref = 0.0;
  for (int j = 0; j < k; j++) {
    double s = exp(LS[j]), u = ((double)A[j] - MU[j]) / s;
    ref += -0.5 * u * u - log(s) - 0.5 * log(2 * M_PI);
  }
  TAP_OK(tap_close(dist_gauss_logp(MU, LS, A, k), ref, 1e-13, 0),
         "gaussian logp formula");
  double h = 0.0;
  for (int j = 0; j < k; j++) h += LS[j] + 0.5 * log(2 * M_PI * M_E);
  TAP_OK(tap_close(dist_gauss_entropy(LS, k), h, 1e-13, 0),
         "gaussian entropy formula");
  TAP_OK(dist_gauss_kl(MU, LS, MU, LS, k) == 0.0, "gaussian KL(p||p) = 0");
  /* 1-D closed form: KL(N(0,1) || N(1, 2^2)) = log 2 + (1 + 1)/8 - 1/2 */
  float m0 = 0.0f, s0 = 0.0f, m1 = 1.0f, s1 = (float)log(2.0);
  double want = log(2.0) + 2.0 / 8.0 - 0.5;
  TAP_OK(tap_close(dist_gauss_kl(&m0, &s0, &m1, &s1, 1), want, 1e-7, 0),
         "gaussian KL closed form (%.10f vs %.10f)",
         dist_gauss_kl(&m0, &s0, &m1, &s1, 1), want);
  TAP_OK(dist_gauss_kl(MU, LS, MU2, LS2, k) > 0.0, "gaussian KL > 0");

  double eps[3] = {1.0, -0.5, 2.0};
  float a[3];
  dist_gauss_sample(MU, LS, k, eps, a);
  int ok = 1;
  for (int j = 0; j < k; j++)
    ok &= tap_close(a[j], MU[j] + exp(LS[j]) * eps[j], 1e-6, 1e-7);
  TAP_OK(ok, "sample = mu + sigma * eps");
}

static void test_gaussian_grads(void) {
  const int k = 3;
  float mu[3], ls[3];
  for (int j = 0; j < k; j++) mu[j] = MU[j], ls[j] = LS[j];
  gctx c = {mu, ls, A, MU2, LS2};
  double dmu[3] = {0}, dls[3] = {0}, err = 0.0;
  dist_gauss_dlogp_add(mu, ls, A, k, 1.0, dmu, dls);
  for (int j = 0; j < k; j++) {
    err = fmax(err, fabs(dmu[j] - fd(f_glogp_mu, mu, k, j, 1e-3, &c)));
    err = fmax(err, fabs(dls[j] - fd(f_glogp_ls, ls, k, j, 1e-3, &c)));
  }
  TAP_OK(err < 1e-5, "gaussian dlogp/d(mu, log_std) vs differences (err %.2g)",
         err);

  double kmu[3] = {0}, kls[3] = {0};
  err = 0.0;
  dist_gauss_dkl_add(MU2, LS2, mu, ls, k, 1.0, kmu, kls);
  for (int j = 0; j < k; j++) {
    err = fmax(err, fabs(kmu[j] - fd(f_gkl_mu, mu, k, j, 1e-3, &c)));
    err = fmax(err, fabs(kls[j] - fd(f_gkl_ls, ls, k, j, 1e-3, &c)));
  }
  TAP_OK(err < 1e-5, "gaussian dKL/d(mu_new, log_std_new) vs differences (err %.2g)",
         err);

  double hls[3] = {0};
  dist_gauss_dentropy_add(k, 0.5, hls);
  TAP_OK(hls[0] == 0.5 && hls[2] == 0.5, "dH/dlog_std = 1");

  /* Output-space Fisher against differences of dKL at new = old. */
  float vmu[3] = {0.3f, -0.8f, 0.5f}, vls[3] = {-0.2f, 0.6f, 0.1f};
  double fmu[3] = {0}, fls[3] = {0};
  dist_gauss_fisher_add(ls, k, vmu, vls, 1.0, fmu, fls);
  double hh = 1e-3, pmu[3] = {0}, pls[3] = {0}, qmu[3] = {0}, qls[3] = {0};
  float mp[3], lp[3], mm[3], lm[3];
  for (int j = 0; j < k; j++) {
    mp[j] = (float)(mu[j] + hh * vmu[j]);
    lp[j] = (float)(ls[j] + hh * vls[j]);
    mm[j] = (float)(mu[j] - hh * vmu[j]);
    lm[j] = (float)(ls[j] - hh * vls[j]);
  }
  dist_gauss_dkl_add(mu, ls, mp, lp, k, 1.0, pmu, pls);
  dist_gauss_dkl_add(mu, ls, mm, lm, k, 1.0, qmu, qls);
  err = 0.0;
  for (int j = 0; j < k; j++) {
    err = fmax(err, fabs(fmu[j] - (pmu[j] - qmu[j]) / (2 * hh)));
    err = fmax(err, fabs(fls[j] - (pls[j] - qls[j]) / (2 * hh)));
  }
  TAP_OK(err < 1e-3, "gaussian Fisher (1/sigma^2, 2) = Hessian of KL (err %.2g)",
         err);
  double only[3] = {0};
  dist_gauss_fisher_add(ls, k, vmu, NULL, 2.0, only, NULL);
  TAP_OK(tap_close(only[1], 2.0 * fmu[1], 1e-15, 0),
         "gaussian Fisher without a log_std block");
}

int main(void) {
  test_categorical();
  test_categorical_grads();
  test_categorical_sampling();
  test_categorical_two();
  test_categorical_two_parts();
  test_gaussian();
  test_gaussian_grads();
  return tap_done();
}
