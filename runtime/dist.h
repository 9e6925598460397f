/*
** dist.h — internal: the action distributions a policy puts over its network
** outputs, one row at a time.  Pure functions over row pointers; every
** quantity is computed in double from the float32 network outputs, so sums
** over a batch lose nothing to float rounding.
**
** Categorical: z[k] are logits, p = softmax(z).
** Diagonal Gaussian: mu[k] is the network output, log_std[k] is a
** state-independent parameter vector, σ = exp(log_std).
**
** KL is always KL(old ‖ new).  Gradient helpers ADD w·(derivative) into
** caller-owned double rows so several terms of a loss can be summed before a
** single backward pass.  No function allocates; none needs scratch.
*/
#ifndef MRL_DIST_H
#define MRL_DIST_H

#include <math.h>

/* ------------------------------------------------------------ categorical */

/* log Σ_j exp(z_j), stabilised by the max. */
double dist_cat_logsumexp(const float *z, int k);
/* out[j] = log softmax(z)_j. */
void dist_cat_log_softmax(const float *z, int k, double *out);
/* One pass for a loss that needs them all: lp[j] = log softmax(z)_j and
** p[j] = softmax(z)_j (k exps, one log); returns the entropy. */
double dist_cat_row(const float *z, int k, double *lp, double *p);
double dist_cat_logp(const float *z, int k, int a);
double dist_cat_entropy(const float *z, int k);
double dist_cat_kl(const float *z_old, const float *z_new, int k);
/* Inverse-CDF draw for a uniform u in [0, 1); always returns a valid index. */
int dist_cat_sample(const float *z, int k, double u);
/* The same draw, with its log-probability (logp nullable) from one logsumexp. */
int dist_cat_sample_logp(const float *z, int k, double u, double *logp);
/* Two actions, the draw in two halves so the first can run before the
** logits exist: category 1 iff z1 − z0 ≥ dist_cat2_cut(u), the inverse CDF
** of dist_cat_sample (category 0 first) without an exp.  The cut is capped
** at 103.97, past which float e^−Δ is 0: a category without mass is never
** drawn, even at u = 0.  dist_cat2_draw also gives log p of the draw. */
static inline double dist_cat2_cut(double u) {
  const double t = log((1.0 - u) / u);  /* +inf at u = 0 */
  return t < 103.97 ? t : 103.97;
}
/* log(1 + e^−a) for a ≥ 0 within 2.6e-8: a rational fit of degree (5, 6)
** on [0, 17.5] minimising the absolute error (mpmath), by Estrin's scheme
** (plain products and sums: fma() is a libm call without -mfma);
** past 17.5 the value is below 2.6e-8 and taken as 0. */
static inline double dist_log1p_exp_neg(double a) {
  if (!(a < 17.5)) return 0.0;
  const double a2 = a * a, a4 = a2 * a2;
  const double p = (-7.65276268101227022e-7 * a + 5.7200931904569184828e-5) * a4 +
                   (-1.736898360143734781e-3 * a + 2.688595648269248519e-2) * a2 +
                   (-0.21297317541024580444 * a + 0.69314715955733734374);
  const double q = ((8.688605213083763745e-5 * a2 +
                     (3.4734359945367428369e-4 * a + 5.4678806378777925455e-3)) * a4 +
                    (3.6115322743876447784e-2 * a + 0.15717449533085134668) * a2) +
                   (0.41409023091765949038 * a + 1.0);
  return p / q;
}
static inline int dist_cat2_draw(const float *z, double cut, double *logp) {
  const double d = (double)z[1] - (double)z[0], a = fabs(d);
  const int pick = d >= cut;
  /* log σ(a) for the larger logit's category, log σ(−a) for the other;
  ** by arithmetic, not a branch: the draw is random, so a branch on it
  ** mispredicts half the time and throws away the next call's work */
  const int other = pick != (d > 0.0);
  if (logp) *logp = -dist_log1p_exp_neg(a) - a * (double)other;
  return pick;
}

/* argmax, the lowest index on ties. */
int dist_cat_mode(const float *z, int k);

/* d[j] += w·∂ log p_a/∂z_j = w·(1[j=a] − p_j) */
void dist_cat_dlogp_add(const float *z, int k, int a, double w, double *d);
/* d[j] += w·∂H/∂z_j = −w·p_j (log p_j + H) */
void dist_cat_dentropy_add(const float *z, int k, double w, double *d);
/* d[j] += w·∂KL(old‖new)/∂z_new_j = w·(p_new_j − p_old_j) */
void dist_cat_dkl_add(const float *z_old, const float *z_new, int k, double w,
                      double *d);
/* out[j] += w·(F v)_j with F = diag(p) − ppᵀ, the Hessian of KL(p‖·) at p
** with respect to the logits (and the Fisher of the softmax). */
void dist_cat_fisher_add(const float *z, int k, const float *v, double w,
                         double *out);

/* ----------------------------------------------- masked categorical */
/* m[k]: 1 valid, 0 invalid (dist_mask.c).  At least one entry must be
** valid (callers check).  Invalid entries have p = 0 and log p = −∞; they
** take no part in the normaliser, the entropy, the KL or the derivatives
** (whose invalid entries stay untouched).  With one valid action its
** log-probability and the entropy are exactly 0. */
int dist_catm_count(const float *m, int k);
double dist_catm_logsumexp(const float *z, const float *m, int k);
/* lp[j], p[j] for every j (−∞ and 0 when invalid); returns the entropy. */
double dist_catm_row(const float *z, const float *m, int k, double *lp,
                     double *p);
double dist_catm_logp(const float *z, const float *m, int k, int a);
double dist_catm_entropy(const float *z, const float *m, int k);
double dist_catm_kl(const float *z_old, const float *z_new, const float *m,
                    int k);
/* Inverse CDF over the valid entries only: an invalid one is never drawn,
** whatever u or the logits (also at float ties).  e: k doubles of scratch
** (the exps, computed once).  Up to 16 actions, in float with a float log,
** as dist_cat_sample_logp. */
int dist_catm_sample_logp(const float *z, const float *m, int k, double u,
                          double *logp, double *e);
/* argmax over the valid entries, the lowest index on ties. */
int dist_catm_mode(const float *z, const float *m, int k);
void dist_catm_dlogp_add(const float *z, const float *m, int k, int a,
                         double w, double *d);
void dist_catm_dentropy_add(const float *z, const float *m, int k, double w,
                            double *d);
void dist_catm_dkl_add(const float *z_old, const float *z_new, const float *m,
                       int k, double w, double *d);
void dist_catm_fisher_add(const float *z, const float *m, int k,
                          const float *v, double w, double *out);

/* -------------------------------------------------------------- bernoulli */
/* n independent bits with logits l (dist_bern.c); a bit is 0 or 1.
** log σ(x) = −log(1 + e^−x) in a form that neither overflows nor loses the
** small side: |logits| reach 100. */
double dist_log_sigmoid(double x);
double dist_sigmoid(double x);
double dist_bern_logp(const float *l, const float *a, int n);
double dist_bern_entropy(const float *l, int n);
double dist_bern_kl(const float *l_old, const float *l_new, int n);
/* a[j] = 1 iff u[j] < σ(l_j); returns log p(a). */
double dist_bern_sample(const float *l, int n, const double *u, float *a);
/* a[j] = 1 iff l_j > 0; returns log p(a). */
double dist_bern_mode(const float *l, int n, float *a);
/* d[j] += w·(a_j − σ(l_j)) */
void dist_bern_dlogp_add(const float *l, const float *a, int n, double w,
                         double *d);
/* d[j] += w·∂H/∂l_j = −w·σ(l)σ(−l)·l */
void dist_bern_dentropy_add(const float *l, int n, double w, double *d);
/* d[j] += w·(σ(l_new) − σ(l_old)) */
void dist_bern_dkl_add(const float *l_old, const float *l_new, int n,
                       double w, double *d);
/* out[j] += w·σ(l)σ(−l)·v_j, the Fisher (and KL Hessian) in the logits */
void dist_bern_fisher_add(const float *l, int n, const float *v, double w,
                          double *out);

/* --------------------------------------------------------------- gaussian */

double dist_gauss_logp(const float *mu, const float *log_std, const float *a,
                       int k);
/* Σ_k log σ_k + ½ log(2πe); the same for every state. */
double dist_gauss_entropy(const float *log_std, int k);
double dist_gauss_kl(const float *mu_old, const float *ls_old,
                     const float *mu_new, const float *ls_new, int k);
/* a = mu + σ·eps */
void dist_gauss_sample(const float *mu, const float *log_std, int k,
                       const double *eps, float *a);

/* dmu += w·∂ log p/∂mu, dls += w·∂ log p/∂log_std */
void dist_gauss_dlogp_add(const float *mu, const float *log_std,
                          const float *a, int k, double w, double *dmu,
                          double *dls);
/* dls += w·∂H/∂log_std (= w; the entropy does not depend on mu) */
void dist_gauss_dentropy_add(int k, double w, double *dls);
/* Derivatives of KL(old‖new) with respect to mu_new and ls_new. */
void dist_gauss_dkl_add(const float *mu_old, const float *ls_old,
                        const float *mu_new, const float *ls_new, int k,
                        double w, double *dmu, double *dls);
/* Output-space Fisher (the Hessian of the KL at new = old): out_mu +=
** w·v_mu/σ², and, when v_ls is not NULL, out_ls += w·2·v_ls.  Mean and
** log_std are uncorrelated at that point, so the blocks are separate. */
void dist_gauss_fisher_add(const float *log_std, int k, const float *v_mu,
                           const float *v_ls, double w, double *out_mu,
                           double *out_ls);

#endif
