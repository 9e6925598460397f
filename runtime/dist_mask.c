/*
** dist_mask.c — the categorical distribution restricted to the valid
** entries of an invalid-action mask (see dist.h).  Every loop visits the
** valid entries only, so an invalid logit never reaches an exp, a sum or
** a derivative: p = 0 there without 0·(−∞) = NaN anywhere.
*/
#include "dist.h"

#include <math.h>

#define VALID(m, j) ((m)[j] != 0.0f)

int dist_catm_count(const float *m, int k) {
  int c = 0;
  for (int j = 0; j < k; j++) c += VALID(m, j);
  return c;
}

/* The largest valid logit (a valid entry exists). */
static double catm_max(const float *z, const float *m, int k) {
  double mx = -INFINITY;
  for (int j = 0; j < k; j++)
    if (VALID(m, j) && z[j] > mx) mx = z[j];
  return mx;
}

double dist_catm_logsumexp(const float *z, const float *m, int k) {
  const double mx = catm_max(z, m, k);
  double s = 0.0;
  for (int j = 0; j < k; j++)
    if (VALID(m, j)) s += exp((double)z[j] - mx);
  return mx + log(s);
}

double dist_catm_row(const float *z, const float *m, int k, double *lp,
                     double *p) {
  const double lse = dist_catm_logsumexp(z, m, k);
  double h = 0.0;
  for (int j = 0; j < k; j++) {
    if (!VALID(m, j)) {
      lp[j] = -INFINITY;
      p[j] = 0.0;
      continue;
    }
    lp[j] = (double)z[j] - lse;
    p[j] = exp(lp[j]);
    h -= p[j] * lp[j];
  }
  return h;
}

double dist_catm_logp(const float *z, const float *m, int k, int a) {
  if (!VALID(m, a)) return -INFINITY;
  return (double)z[a] - dist_catm_logsumexp(z, m, k);
}

double dist_catm_entropy(const float *z, const float *m, int k) {
  const double lse = dist_catm_logsumexp(z, m, k);
  double h = 0.0;
  for (int j = 0; j < k; j++) {
    if (!VALID(m, j)) continue;
    double lp = (double)z[j] - lse;
    h -= exp(lp) * lp;
  }
  return h;
}

double dist_catm_kl(const float *z_old, const float *z_new, const float *m,
                    int k) {
  const double lo = dist_catm_logsumexp(z_old, m, k);
  const double ln = dist_catm_logsumexp(z_new, m, k);
  double kl = 0.0;
  for (int j = 0; j < k; j++) {
    if (!VALID(m, j)) continue;
    double lpo = (double)z_old[j] - lo, lpn = (double)z_new[j] - ln;
    kl += exp(lpo) * (lpo - lpn);
  }
  return kl > 0.0 ? kl : 0.0;
}

int dist_catm_sample_logp(const float *z, const float *m, int k, double u,
                          double *logp, double *e) {
  enum { SMALL = 16 };
  if (k <= SMALL) {
    /* float exps and a float log, as dist_cat_sample_logp for few actions */
    float ef[SMALL], mf = -INFINITY, s = 0.0f;
    for (int j = 0; j < k; j++)
      if (VALID(m, j) && z[j] > mf) mf = z[j];
    for (int j = 0; j < k; j++) s += (ef[j] = VALID(m, j) ? expf(z[j] - mf) : 0.0f);
    const double t = u * (double)s;
    double c = 0.0;
    int pick = -1, last = -1;
    for (int j = 0; j < k; j++) {
      if (ef[j] > 0.0f) last = j; /* a masked entry has ef = 0: never taken */
      c += ef[j];
      if (t < c && ef[j] > 0.0f) {
        pick = j;
        break;
      }
    }
    if (pick < 0) pick = last;
    if (logp) *logp = (double)(z[pick] - mf) - (double)logf(s);
    return pick;
  }
  const double mx = catm_max(z, m, k);
  double s = 0.0;
  for (int j = 0; j < k; j++)
    if (VALID(m, j)) s += (e[j] = exp((double)z[j] - mx));
  const double t = u * s;
  double c = 0.0;
  int pick = -1, last = -1;
  for (int j = 0; j < k; j++) {
    if (!VALID(m, j)) continue;
    if (e[j] > 0.0) last = j;
    c += e[j];
    if (t < c && e[j] > 0.0) {
      pick = j;
      break;
    }
  }
  /* u past the rounded total: the last valid entry with mass (the largest
  ** valid logit has e = 1, so there is one) */
  if (pick < 0) pick = last;
  if (logp) *logp = (double)z[pick] - (mx + log(s));
  return pick;
}

int dist_catm_mode(const float *z, const float *m, int k) {
  int best = -1;
  for (int j = 0; j < k; j++)
    if (VALID(m, j) && (best < 0 || z[j] > z[best])) best = j;
  return best;
}

void dist_catm_dlogp_add(const float *z, const float *m, int k, int a,
                         double w, double *d) {
  const double lse = dist_catm_logsumexp(z, m, k);
  for (int j = 0; j < k; j++)
    if (VALID(m, j)) d[j] -= w * exp((double)z[j] - lse);
  d[a] += w;
}

void dist_catm_dentropy_add(const float *z, const float *m, int k, double w,
                            double *d) {
  const double lse = dist_catm_logsumexp(z, m, k);
  const double h = dist_catm_entropy(z, m, k);
  for (int j = 0; j < k; j++) {
    if (!VALID(m, j)) continue;
    double lp = (double)z[j] - lse;
    d[j] -= w * exp(lp) * (lp + h);
  }
}

void dist_catm_dkl_add(const float *z_old, const float *z_new, const float *m,
                       int k, double w, double *d) {
  const double lo = dist_catm_logsumexp(z_old, m, k);
  const double ln = dist_catm_logsumexp(z_new, m, k);
  for (int j = 0; j < k; j++)
    if (VALID(m, j))
      d[j] += w * (exp((double)z_new[j] - ln) - exp((double)z_old[j] - lo));
}

void dist_catm_fisher_add(const float *z, const float *m, int k,
                          const float *v, double w, double *out) {
  const double lse = dist_catm_logsumexp(z, m, k);
  double pv = 0.0;
  for (int j = 0; j < k; j++)
    if (VALID(m, j)) pv += exp((double)z[j] - lse) * (double)v[j];
  for (int j = 0; j < k; j++)
    if (VALID(m, j))
      out[j] += w * exp((double)z[j] - lse) * ((double)v[j] - pv);
}
