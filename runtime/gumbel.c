/*
** gumbel.c — the straight-through Gumbel-softmax gradient estimator for a
** categorical policy whose reward is a known, differentiable function of the
** action: a per-action score vector s[n] (a contextual bandit whose reward
** for every arm is given).
**
** Forward: with g_k ~ Gumbel(0, 1) i.i.d., the hard action
** a = argmax_k(z_k + g_k) is an exact sample of softmax(z) (the Gumbel-max
** trick), so the objective reported is the true one, s_a.  Backward: the
** one-hot of a is replaced by its relaxation y = softmax((z + g)/τ), and the
** estimate is ∇θ (1/N) Σ_n s_n·y_n with g held fixed (reparameterised).
** Per row, with s̄ = Σ_j s_j y_j,
**
**     ∂(s·y)/∂z_k = y_k (s_k − s̄) / τ,
**
** and one mlp backward over the batch turns those into parameter gradients.
** This is the gradient of the relaxed objective E_g[s·y], not of E[s_a]:
** biased for every τ > 0 (the bias vanishes as τ → 0 while the variance grows
** like 1/τ; a large τ flattens y towards uniform and shrinks the gradient
** towards 0).  tests/c/test_pg_stats.c measures both against REINFORCE.
**
** Gumbel noise comes from the policy's generator: for each row in order,
** n uniforms u ∈ (0, 1) (52 random bits, offset by half a step so neither 0
** nor 1 occurs) and g = −log(−log u), which is always finite.
*/
#include <float.h>
#include <math.h>
#include <string.h>

#include "gumbel_impl.h"
#include "policy_impl.h"

/* A uniform strictly inside (0, 1): (k + ½)·2⁻⁵² for a 52-bit k is exact in
** a double and at most 1 − 2⁻⁵³, so −log(−log u) never meets log(0). */
static double gumbel_draw(mrl_rng *r) {
  double u = ((double)(rng_next(r) >> 12) + 0.5) * 0x1.0p-52;
  return -log(-log(u));
}

int gumbel_row(const float *z, const double *g, const float *s, int k,
               double tau, double *y, double *d) {
  int best = 0;
  double mx = (double)z[0] + g[0];
  for (int j = 1; j < k; j++) {
    double v = (double)z[j] + g[j];
    if (v > mx) {
      mx = v;
      best = j;
    }
  }
  /* Shift before dividing by τ: every exponent is ≤ 0 and a tiny τ sends
  ** the losers to exp(−inf) = 0 instead of overflowing. */
  double sum = 0.0;
  for (int j = 0; j < k; j++) {
    y[j] = exp(((double)z[j] + g[j] - mx) / tau);
    sum += y[j];
  }
  double sbar = 0.0;
  for (int j = 0; j < k; j++) {
    y[j] /= sum;
    sbar += (double)s[j] * y[j];
  }
  /* The product first, the division last: a loser with y_k = 0 gives 0/τ = 0,
  ** never 0·(1/τ) = 0·inf. */
  for (int j = 0; j < k; j++) d[j] = y[j] * ((double)s[j] - sbar) / tau;
  return best;
}

int gumbel_grad_core(mrl_policy *p, const float *obs, const float *scores,
                     int batch, double tau, const double *noise,
                     float *actions, double *objective, double *relaxed) {
  if (!p) return MRL_EINVAL;
  if (p->kind != MRL_DISCRETE)
    return policy_fail(p, MRL_EINVAL,
                       "gumbel_grad: needs a discrete (categorical) policy, "
                       "this one is a box (Gaussian) policy");
  int rc = policy_check_batch(p, batch);
  if (rc) return rc;
  if (!(tau > 0.0) || !isfinite(tau))
    return policy_fail(p, MRL_EINVAL,
                       "tau: expected a finite temperature > 0, got %g", tau);
  if ((rc = policy_check_obs(p, obs, batch))) return rc;
  if ((rc = policy_check_ptr(p, scores, "scores"))) return rc;
  const int n = p->n;
  const size_t cells = (size_t)batch * (size_t)n;
  if ((rc = policy_check_finite(p, "scores", scores, cells, n))) return rc;
  if ((rc = policy_reserve(p, batch))) return rc;

  const float *out = policy_forward(p, NULL, obs, batch, p->acts);
  double *g = p->row, *y = p->row + n, *d = p->row + 2 * n;
  const double inv_n = 1.0 / batch;
  double obj = 0.0, rel = 0.0;
  for (int i = 0; i < batch; i++) {
    const size_t off = (size_t)i * (size_t)n;
    const double *gi = g;
    if (noise) {
      gi = noise + off;
    } else {
      for (int j = 0; j < n; j++) g[j] = gumbel_draw(&p->rng);
    }
    const float *s = scores + off;
    int a = gumbel_row(out + off, gi, s, n, tau, y, d);
    obj += (double)s[a];
    for (int j = 0; j < n; j++) rel += (double)s[j] * y[j];
    if (actions) actions[i] = (float)a;
    float *dy = p->dy + off;
    for (int j = 0; j < n; j++) {
      double v = d[j] * inv_n;
      /* Refuse before the backward pass, so the grad buffer is untouched. */
      if (!(fabs(v) <= FLT_MAX))
        return policy_fail(p, MRL_ENONFINITE,
                           "gumbel_grad: the relaxed gradient is not finite "
                           "at row %d (tau = %g too small for these logits, "
                           "or non-finite logits)",
                           i, tau);
      dy[j] = (float)v;
    }
  }
  /* Non-finite logits (parameters set to huge values) end up here. */
  if (!isfinite(obj) || !isfinite(rel))
    return policy_fail(p, MRL_ENONFINITE,
                       "gumbel_grad: the objective is not finite");
  policy_backward_set(p, NULL, obs, batch, p->acts, NULL, p->grad);
  if (!mrl_all_finite(p->grad, p->nparams))
    return policy_check_finite(p, "grad", p->grad, p->nparams, 1);
  if (objective) *objective = obj * inv_n;
  if (relaxed) *relaxed = rel * inv_n;
  return MRL_OK;
}

int mrl_policy_gumbel_grad(mrl_policy *p, const float *obs,
                           const float *scores, int batch, double tau,
                           float *actions, double *objective) {
  return gumbel_grad_core(p, obs, scores, batch, tau, NULL, actions,
                          objective, NULL);
}
