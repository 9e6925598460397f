/*
** dist_bern.c — independent Bernoulli bits over logits (see dist.h).
** Every quantity goes through log σ and σ in forms that stay exact on the
** small side: σ(−100) ≈ 3.7e-44 is kept, not rounded to 1 − 1.
*/
#include "dist.h"

#include <math.h>

double dist_log_sigmoid(double x) {
  /* −log(1 + e^−x) = min(x, 0) − log1p(e^−|x|) */
  return (x < 0.0 ? x : 0.0) - log1p(exp(-fabs(x)));
}

double dist_sigmoid(double x) {
  if (x >= 0.0) return 1.0 / (1.0 + exp(-x));
  const double e = exp(x);
  return e / (1.0 + e);
}

double dist_bern_logp(const float *l, const float *a, int n) {
  double s = 0.0;
  for (int j = 0; j < n; j++)
    s += dist_log_sigmoid(a[j] != 0.0f ? (double)l[j] : -(double)l[j]);
  return s;
}

double dist_bern_entropy(const float *l, int n) {
  double h = 0.0;
  for (int j = 0; j < n; j++) {
    const double x = l[j];
    h -= dist_sigmoid(x) * dist_log_sigmoid(x) +
         dist_sigmoid(-x) * dist_log_sigmoid(-x);
  }
  return h;
}

double dist_bern_kl(const float *l_old, const float *l_new, int n) {
  double kl = 0.0;
  for (int j = 0; j < n; j++) {
    const double o = l_old[j], w = l_new[j];
    kl += dist_sigmoid(o) * (dist_log_sigmoid(o) - dist_log_sigmoid(w)) +
          dist_sigmoid(-o) * (dist_log_sigmoid(-o) - dist_log_sigmoid(-w));
  }
  return kl > 0.0 ? kl : 0.0;
}

double dist_bern_sample(const float *l, int n, const double *u, float *a) {
  double lp = 0.0;
  for (int j = 0; j < n; j++) {
    const double x = l[j];
    const int bit = u[j] < dist_sigmoid(x);
    a[j] = (float)bit;
    lp += dist_log_sigmoid(bit ? x : -x);
  }
  return lp;
}

double dist_bern_mode(const float *l, int n, float *a) {
  double lp = 0.0;
  for (int j = 0; j < n; j++) {
    const double x = l[j];
    const int bit = x > 0.0;
    a[j] = (float)bit;
    lp += dist_log_sigmoid(bit ? x : -x);
  }
  return lp;
}

void dist_bern_dlogp_add(const float *l, const float *a, int n, double w,
                         double *d) {
  for (int j = 0; j < n; j++)
    d[j] += w * ((a[j] != 0.0f ? 1.0 : 0.0) - dist_sigmoid(l[j]));
}

void dist_bern_dentropy_add(const float *l, int n, double w, double *d) {
  for (int j = 0; j < n; j++) {
    const double x = l[j];
    d[j] -= w * dist_sigmoid(x) * dist_sigmoid(-x) * x;
  }
}

void dist_bern_dkl_add(const float *l_old, const float *l_new, int n,
                       double w, double *d) {
  for (int j = 0; j < n; j++)
    d[j] += w * (dist_sigmoid(l_new[j]) - dist_sigmoid(l_old[j]));
}

void dist_bern_fisher_add(const float *l, int n, const float *v, double w,
                          double *out) {
  for (int j = 0; j < n; j++) {
    const double x = l[j];
    out[j] += w * dist_sigmoid(x) * dist_sigmoid(-x) * (double)v[j];
  }
}
