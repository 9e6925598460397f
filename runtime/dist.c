/*
** dist.c — categorical and diagonal-Gaussian distributions over network
** outputs (see dist.h).  Everything runs in double: the outputs are float32,
** but log-probabilities feed ratios exp(logp − old_logp) whose errors the
** float rounding of a logsumexp would dominate.
*/
#include "dist.h"

#include <math.h>
#include <stddef.h>

/* log √(2π) and ½ log(2πe) */
#define DIST_HALF_LOG_2PI 0.91893853320467274178
#define DIST_HALF_LOG_2PIE 1.41893853320467274178

/* ------------------------------------------------------------ categorical */

double dist_cat_logsumexp(const float *z, int k) {
  double m = z[0], s = 0.0;
  for (int j = 1; j < k; j++)
    if (z[j] > m) m = z[j];
  for (int j = 0; j < k; j++) s += exp((double)z[j] - m);
  return m + log(s);
}

void dist_cat_log_softmax(const float *z, int k, double *out) {
  double lse = dist_cat_logsumexp(z, k);
  for (int j = 0; j < k; j++) out[j] = (double)z[j] - lse;
}

double dist_cat_row(const float *z, int k, double *lp, double *p) {
  double m = z[0], s = 0.0;
  for (int j = 1; j < k; j++)
    if (z[j] > m) m = z[j];
  for (int j = 0; j < k; j++) s += (p[j] = exp((double)z[j] - m));
  const double lse = m + log(s), inv = 1.0 / s;
  double h = 0.0;
  for (int j = 0; j < k; j++) {
    lp[j] = (double)z[j] - lse;
    p[j] *= inv;
    h -= p[j] * lp[j];
  }
  return h;
}

double dist_cat_logp(const float *z, int k, int a) {
  return (double)z[a] - dist_cat_logsumexp(z, k);
}

double dist_cat_entropy(const float *z, int k) {
  double lse = dist_cat_logsumexp(z, k), h = 0.0;
  for (int j = 0; j < k; j++) {
    double lp = (double)z[j] - lse;
    h -= exp(lp) * lp;
  }
  return h;
}

double dist_cat_kl(const float *z_old, const float *z_new, int k) {
  double lo = dist_cat_logsumexp(z_old, k), ln = dist_cat_logsumexp(z_new, k);
  double kl = 0.0;
  for (int j = 0; j < k; j++) {
    double lpo = (double)z_old[j] - lo, lpn = (double)z_new[j] - ln;
    kl += exp(lpo) * (lpo - lpn);
  }
  /* Rounding can leave a tiny negative value when the rows are equal. */
  return kl > 0.0 ? kl : 0.0;
}

int dist_cat_sample_logp(const float *z, int k, double u, double *logp) {
  /* The few actions of most policies: two by a cut on z1 − z0 (dist.h, no
  ** exp), up to SMALL by float exps kept for the walk and a float log — the
  ** caller stores a float log-probability, and a sample depends on the
  ** last bits only when u lands on a boundary.  The double functions cost
  ** most of a batch-1 act beside the network. */
  enum { SMALL = 16 };
  if (k == 2) return dist_cat2_draw(z, dist_cat2_cut(u), logp);
  if (k <= SMALL) {
    float e[SMALL], m = z[0], s = 0.0f;
    for (int j = 1; j < k; j++)
      if (z[j] > m) m = z[j];
    for (int j = 0; j < k; j++) s += (e[j] = expf(z[j] - m));
    /* u·s against the running sum: the inverse CDF without dividing */
    const double t = u * (double)s;
    double c = 0.0;
    int pick = -1, last = 0;
    for (int j = 0; j < k; j++) {
      if (e[j] > 0.0f) last = j;
      c += e[j];
      if (t < c && e[j] > 0.0f) {
        pick = j;
        break;
      }
    }
    /* u fell past the rounded total: take the last category with mass. */
    if (pick < 0) pick = last;
    if (logp) *logp = (double)(z[pick] - m) - (double)logf(s);
    return pick;
  }
  double m = z[0], s = 0.0;
  for (int j = 1; j < k; j++)
    if (z[j] > m) m = z[j];
  for (int j = 0; j < k; j++) s += exp((double)z[j] - m);
  const double t = u * s;
  double c = 0.0;
  int pick = -1, last = 0;
  for (int j = 0; j < k; j++) {
    double ej = exp((double)z[j] - m);
    if (ej > 0.0) last = j;
    c += ej;
    if (t < c && ej > 0.0) {
      pick = j;
      break;
    }
  }
  if (pick < 0) pick = last;
  if (logp) *logp = (double)z[pick] - (m + log(s));
  return pick;
}

int dist_cat_sample(const float *z, int k, double u) {
  return dist_cat_sample_logp(z, k, u, NULL);
}

int dist_cat_mode(const float *z, int k) {
  int best = 0;
  for (int j = 1; j < k; j++)
    if (z[j] > z[best]) best = j;
  return best;
}

void dist_cat_dlogp_add(const float *z, int k, int a, double w, double *d) {
  double lse = dist_cat_logsumexp(z, k);
  for (int j = 0; j < k; j++) d[j] -= w * exp((double)z[j] - lse);
  d[a] += w;
}

void dist_cat_dentropy_add(const float *z, int k, double w, double *d) {
  double lse = dist_cat_logsumexp(z, k), h = dist_cat_entropy(z, k);
  for (int j = 0; j < k; j++) {
    double lp = (double)z[j] - lse;
    d[j] -= w * exp(lp) * (lp + h);
  }
}

void dist_cat_dkl_add(const float *z_old, const float *z_new, int k, double w,
                      double *d) {
  double lo = dist_cat_logsumexp(z_old, k), ln = dist_cat_logsumexp(z_new, k);
  for (int j = 0; j < k; j++)
    d[j] += w * (exp((double)z_new[j] - ln) - exp((double)z_old[j] - lo));
}

void dist_cat_fisher_add(const float *z, int k, const float *v, double w,
                         double *out) {
  double lse = dist_cat_logsumexp(z, k), pv = 0.0;
  for (int j = 0; j < k; j++) pv += exp((double)z[j] - lse) * (double)v[j];
  for (int j = 0; j < k; j++)
    out[j] += w * exp((double)z[j] - lse) * ((double)v[j] - pv);
}

/* --------------------------------------------------------------- gaussian */

double dist_gauss_logp(const float *mu, const float *log_std, const float *a,
                       int k) {
  double s = 0.0;
  for (int j = 0; j < k; j++) {
    double ls = log_std[j];
    double u = ((double)a[j] - (double)mu[j]) * exp(-ls);
    s += -0.5 * u * u - ls - DIST_HALF_LOG_2PI;
  }
  return s;
}

double dist_gauss_entropy(const float *log_std, int k) {
  double s = 0.0;
  for (int j = 0; j < k; j++) s += (double)log_std[j] + DIST_HALF_LOG_2PIE;
  return s;
}

double dist_gauss_kl(const float *mu_old, const float *ls_old,
                     const float *mu_new, const float *ls_new, int k) {
  double s = 0.0;
  for (int j = 0; j < k; j++) {
    double lo = ls_old[j], ln = ls_new[j];
    double dm = (double)mu_old[j] - (double)mu_new[j];
    /* (σ_o² + Δμ²)/(2σ_n²) with the ratio formed in log space */
    s += ln - lo + 0.5 * (exp(2.0 * (lo - ln)) + dm * dm * exp(-2.0 * ln)) -
         0.5;
  }
  return s > 0.0 ? s : 0.0;
}

void dist_gauss_sample(const float *mu, const float *log_std, int k,
                       const double *eps, float *a) {
  for (int j = 0; j < k; j++)
    a[j] = (float)((double)mu[j] + exp((double)log_std[j]) * eps[j]);
}

void dist_gauss_dlogp_add(const float *mu, const float *log_std,
                          const float *a, int k, double w, double *dmu,
                          double *dls) {
  for (int j = 0; j < k; j++) {
    double ls = log_std[j], inv = exp(-ls);
    double u = ((double)a[j] - (double)mu[j]) * inv;
    dmu[j] += w * u * inv;
    dls[j] += w * (u * u - 1.0);
  }
}

void dist_gauss_dentropy_add(int k, double w, double *dls) {
  for (int j = 0; j < k; j++) dls[j] += w;
}

void dist_gauss_dkl_add(const float *mu_old, const float *ls_old,
                        const float *mu_new, const float *ls_new, int k,
                        double w, double *dmu, double *dls) {
  for (int j = 0; j < k; j++) {
    double lo = ls_old[j], ln = ls_new[j];
    double dm = (double)mu_new[j] - (double)mu_old[j];
    double inv2 = exp(-2.0 * ln);
    dmu[j] += w * dm * inv2;
    dls[j] += w * (1.0 - exp(2.0 * (lo - ln)) - dm * dm * inv2);
  }
}

void dist_gauss_fisher_add(const float *log_std, int k, const float *v_mu,
                           const float *v_ls, double w, double *out_mu,
                           double *out_ls) {
  for (int j = 0; j < k; j++)
    out_mu[j] += w * (double)v_mu[j] * exp(-2.0 * (double)log_std[j]);
  if (v_ls)
    for (int j = 0; j < k; j++) out_ls[j] += w * 2.0 * (double)v_ls[j];
}
