/*
** estimators.c — score-function policy-gradient estimators (golden kind
** pg_gradient), built only on the public policy API.
**
** Every estimator in the table of ../shared/golden/README.md is linear in the
** per-step scores ∇_t = ∇θ log π(a_t|s_t), so it reduces to one surrogate
** ĝ = Σ_n d_n ∇_n · scale with stop-gradient per-step weights d_n, which is
** exactly what mrl_policy_grad_weighted_logp computes in one batched pass:
**
**   reinforce        d_t = R_i − b                    (an episode constant)
**   reward_to_go     d_t = G_t − b_t
**   is_trajectory    d_t = w_i R_i,   w_i = min(Π_t ρ_t, c)  (episode constant)
**   is_per_decision  d_t = w_t G_t,   w_t = min(Π_{k≤t} ρ_k, c)
**   is_full          d_t = Σ_{t'≥t} γ^{t'−t} r_{t'} w_{t'},  w_{t'} = min(Π_{k≤t'} ρ_k, c)
**   is_first_order   d_t = w_t (G_t − b_t),  w_t = min(ρ_t, c)
**
** with scale = 1/N.  The one exception is the per-parameter optimal baseline,
** which needs each episode's score sum g_i separately (one pass per episode).
**
** Importance weights are handled as log weights in double: a product of ratios
** is a sum of log ratios, the clip is min(L, log c), and exp is taken last,
** after an optional common shift, so long episodes neither overflow nor
** underflow on the way.  The weights handed to the policy are float, so they
** are divided by their largest magnitude and that factor moves into the
** (double) scale: no float overflow, full relative precision.
**
** Self-normalisation (weighted importance sampling).  Each estimator has a
** natural population of importance weights, the ones that scale its terms:
** one per episode for is_trajectory, one per step for the per-step
** estimators (for is_full, the weight of each reward r_{t'}).  Ordinary IS
** divides by N; self-normalised IS divides by N·w̄, w̄ the mean weight of that
** population, i.e. it rescales the weights to average one.  For
** is_trajectory this is the textbook Σ_i w_i R_i g_i / Σ_i w_i; for the
** per-step estimators it is "the sum of the weights counted in episodes",
** (Σ_n w_n)·N/M over M steps.  It is a no-op for the on-policy estimators
** (all weights are 1).  Clipped weights are used in the normaliser as well.
**
** Stats: mean_ratio is the mean unclipped per-step ρ_t (1 for on-policy
** estimators without behavior_logp), ess = (Σw)²/Σw² over the population
** above (N or M for on-policy estimators), mean_return the mean discounted
** return R_i = Σ_t γ^t r_t.
**
** normalize_advantages (reinforce, reward_to_go, is_first_order): the
** advantages (the return minus the baseline) are standardised over the M
** steps, (a − mean)/(sample std + 1e-8), before any importance weight
** multiplies them — the normalize_advantages of the REINFORCE and
** off-policy trainers.
**
** Side effect: the policy's grad buffer is overwritten (it is the output
** channel of grad_weighted_logp); grad_out receives the result.
*/
#include <float.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "errmsg.h"
#include "moonrl.h"

static const char *est_name(mrl_estimator e) {
  switch (e) {
    case MRL_EST_REINFORCE: return "reinforce";
    case MRL_EST_REWARD_TO_GO: return "reward_to_go";
    case MRL_EST_IS_TRAJECTORY: return "is_trajectory";
    case MRL_EST_IS_PER_DECISION: return "is_per_decision";
    case MRL_EST_IS_FULL: return "is_full";
    case MRL_EST_IS_FIRST_ORDER: return "is_first_order";
  }
  return "?";
}

static const char *base_name(mrl_baseline b) {
  switch (b) {
    case MRL_BASELINE_NONE: return "none";
    case MRL_BASELINE_MEAN: return "mean";
    case MRL_BASELINE_OPTIMAL: return "optimal";
    case MRL_BASELINE_VALUE: return "value";
  }
  return "?";
}

static int is_importance(mrl_estimator e) {
  return e == MRL_EST_IS_TRAJECTORY || e == MRL_EST_IS_PER_DECISION ||
         e == MRL_EST_IS_FULL || e == MRL_EST_IS_FIRST_ORDER;
}

/* Checks the options and their combinations (README: the is_* estimators
** other than is_first_order take baseline none; optimal is reinforce only;
** value is for the per-step estimators and needs values). */
static int check_opts(mrl_policy *p, const mrl_pg_opts *o,
                      const float *behavior_logp, const float *values) {
  if ((unsigned)o->estimator > MRL_EST_IS_FIRST_ORDER) {
    mrl_policy_set_error_(p, "pg_gradient: unknown estimator %d", (int)o->estimator);
    return MRL_EINVAL;
  }
  if ((unsigned)o->baseline > MRL_BASELINE_VALUE) {
    mrl_policy_set_error_(p, "pg_gradient: unknown baseline %d", (int)o->baseline);
    return MRL_EINVAL;
  }
  const char *en = est_name(o->estimator), *bn = base_name(o->baseline);
  if (!(o->gamma >= 0 && o->gamma <= 1)) {
    mrl_policy_set_error_(p, "pg_gradient: gamma %g is not in [0, 1]", o->gamma);
    return MRL_EINVAL;
  }
  if (isnan(o->weight_clip)) {
    mrl_policy_set_error_(p, "pg_gradient: weight_clip is NaN");
    return MRL_EINVAL;
  }
  if (is_importance(o->estimator) && o->estimator != MRL_EST_IS_FIRST_ORDER &&
      o->baseline != MRL_BASELINE_NONE) {
    mrl_policy_set_error_(p, "pg_gradient: estimator '%s' takes baseline 'none' only, not '%s'",
                          en, bn);
    return MRL_EINVAL;
  }
  if (o->normalize_advantages &&
      (o->baseline == MRL_BASELINE_OPTIMAL ||
       (o->estimator != MRL_EST_REINFORCE && o->estimator != MRL_EST_REWARD_TO_GO &&
        o->estimator != MRL_EST_IS_FIRST_ORDER))) {
    mrl_policy_set_error_(p, "pg_gradient: normalize_advantages needs estimator 'reinforce', "
                          "'reward_to_go' or 'is_first_order' and a baseline other than 'optimal'");
    return MRL_EINVAL;
  }
  if (o->baseline == MRL_BASELINE_OPTIMAL && o->estimator != MRL_EST_REINFORCE) {
    mrl_policy_set_error_(p, "pg_gradient: baseline 'optimal' needs estimator 'reinforce', not '%s'",
                          en);
    return MRL_EINVAL;
  }
  if (o->baseline == MRL_BASELINE_VALUE) {
    if (o->estimator == MRL_EST_REINFORCE) {
      mrl_policy_set_error_(p, "pg_gradient: baseline 'value' needs a per-step estimator, not 'reinforce'");
      return MRL_EINVAL;
    }
    if (!values) {
      mrl_policy_set_error_(p, "pg_gradient: baseline 'value' needs values (V(s_t) per step)");
      return MRL_EINVAL;
    }
  }
  if (is_importance(o->estimator) && !behavior_logp) {
    mrl_policy_set_error_(p, "pg_gradient: estimator '%s' needs behavior_logp", en);
    return MRL_EINVAL;
  }
  return MRL_OK;
}

static int all_finite_f(const float *x, int n) {
  return mrl_all_finite(x, (size_t)n);
}

/* The per-parameter optimal baseline b_k = Σ_i g_ik² R_i / Σ_i g_ik² (0 where
** the denominator is 0), and ĝ_k = 1/N (Σ_i g_ik R_i − b_k Σ_i g_ik).  The four
** sums are accumulated in double over one score pass per episode, so no
** per-episode gradient is kept. */
static int optimal_reinforce(mrl_policy *p, const float *obs, const float *masks,
                             const float *actions, const int *off, int nep,
                             const double *R, float *grad_out) {
  size_t np = mrl_policy_nparams(p);
  size_t od = (size_t)mrl_policy_obs_dim(p), aw = (size_t)mrl_policy_action_width(p);
  size_t mw = (size_t)mrl_policy_out_dim(p);
  int maxT = 0;
  for (int i = 0; i < nep; i++)
    if (off[i + 1] - off[i] > maxT) maxT = off[i + 1] - off[i];
  double *acc = calloc(4 * np, sizeof(double));
  float *ones = malloc((size_t)(maxT > 0 ? maxT : 1) * sizeof(float));
  if (!acc || !ones) {
    free(acc);
    free(ones);
    mrl_policy_set_error_(p, "pg_gradient: out of memory");
    return MRL_ENOMEM;
  }
  for (int t = 0; t < maxT; t++) ones[t] = 1.0f;
  double *s_g = acc, *s_gr = acc + np, *s_g2 = acc + 2 * np, *s_g2r = acc + 3 * np;
  int rc = MRL_OK;
  for (int i = 0; i < nep && rc == MRL_OK; i++) {
    int T = off[i + 1] - off[i];
    if (T == 0) continue;  /* g_i = 0 contributes nothing */
    size_t o = (size_t)off[i];
    rc = mrl_policy_grad_weighted_logp_masked(p, obs + o * od, masks ? masks + o * mw : NULL,
                                              actions + o * aw, ones, T, 1.0, NULL);
    if (rc != MRL_OK) break;
    const float *g = mrl_policy_grad(p);
    double r = R[i];
    for (size_t k = 0; k < np; k++) {
      double gk = g[k], g2 = gk * gk;
      s_g[k] += gk;
      s_gr[k] += gk * r;
      s_g2[k] += g2;
      s_g2r[k] += g2 * r;
    }
  }
  if (rc == MRL_OK) {
    for (size_t k = 0; k < np; k++) {
      double b = s_g2[k] > 0 ? s_g2r[k] / s_g2[k] : 0.0;
      grad_out[k] = (float)((s_gr[k] - b * s_g[k]) / nep);
    }
  }
  free(acc);
  free(ones);
  return rc;
}

int mrl_pg_gradient(mrl_policy *p, const float *obs, const float *actions,
                    const float *rewards, const float *behavior_logp,
                    const float *values, const int *ep_offsets, int nep,
                    const mrl_pg_opts *opts, float *grad_out,
                    mrl_pg_stats *stats) {
  return mrl_pg_gradient_masked(p, obs, NULL, actions, rewards, behavior_logp, values, ep_offsets,
                                nep, opts, grad_out, stats);
}

int mrl_pg_gradient_masked(mrl_policy *p, const float *obs, const float *masks,
                           const float *actions, const float *rewards,
                           const float *behavior_logp, const float *values,
                           const int *ep_offsets, int nep, const mrl_pg_opts *opts,
                           float *grad_out, mrl_pg_stats *stats) {
  if (!p) return MRL_EINVAL;
  if (!opts || !obs || !actions || !rewards || !ep_offsets || !grad_out) {
    mrl_policy_set_error_(p, "pg_gradient: opts, obs, actions, rewards, ep_offsets and grad_out must not be NULL");
    return MRL_EINVAL;
  }
  if (nep < 1 || nep > MRL_MAX_BATCH) {
    mrl_policy_set_error_(p, "pg_gradient: nep = %d episodes; need 1..%d", nep, (int)MRL_MAX_BATCH);
    return MRL_EINVAL;
  }
  int rc = check_opts(p, opts, behavior_logp, values);
  if (rc != MRL_OK) return rc;
  /* Offsets are checked here once, so bindings only convert them: every
  ** episode holds at least one step. */
  if (ep_offsets[0] != 0) {
    mrl_policy_set_error_(p, "pg_gradient: ep_offsets must start at 0, got %d", ep_offsets[0]);
    return MRL_EINVAL;
  }
  for (int i = 0; i < nep; i++) {
    if (ep_offsets[i + 1] <= ep_offsets[i]) {
      mrl_policy_set_error_(p, "pg_gradient: ep_offsets must increase strictly (an episode "
                            "holds steps), got %d after %d", ep_offsets[i + 1], ep_offsets[i]);
      return MRL_EINVAL;
    }
    if (ep_offsets[i + 1] > MRL_MAX_BATCH) {
      mrl_policy_set_error_(p, "pg_gradient: ep_offsets value %d is above %d",
                            ep_offsets[i + 1], (int)MRL_MAX_BATCH);
      return MRL_EINVAL;
    }
  }
  const int M = ep_offsets[nep];
  const mrl_estimator est = opts->estimator;
  const mrl_baseline base = opts->baseline;
  const int importance = is_importance(est);
  if (!all_finite_f(rewards, M)) {
    mrl_policy_set_error_(p, "pg_gradient: rewards hold a NaN or Inf");
    return MRL_ENONFINITE;
  }
  if (behavior_logp && !all_finite_f(behavior_logp, M)) {
    mrl_policy_set_error_(p, "pg_gradient: behavior_logp holds a NaN or Inf");
    return MRL_ENONFINITE;
  }
  if (base == MRL_BASELINE_VALUE && !all_finite_f(values, M)) {
    mrl_policy_set_error_(p, "pg_gradient: values hold a NaN or Inf");
    return MRL_ENONFINITE;
  }
  const size_t np = mrl_policy_nparams(p);
  const double gamma = opts->gamma;
  const int clip = opts->weight_clip > 0;
  const double log_clip = clip ? log(opts->weight_clip) : 0.0;
  const int want_ratio = behavior_logp && (importance || stats);

  /* G[M] reward-to-go, d[M] step weights, lw[M] log importance weights
  ** (per step, or per episode in the first nep slots for is_trajectory),
  ** R[nep] returns; logp[M] and wf[M] floats. */
  double *dbuf = malloc(((size_t)3 * M + (size_t)nep) * sizeof(double));
  float *fbuf = malloc((size_t)2 * M * sizeof(float));
  if (!dbuf || !fbuf) {
    free(dbuf);
    free(fbuf);
    mrl_policy_set_error_(p, "pg_gradient: out of memory");
    return MRL_ENOMEM;
  }
  double *G = dbuf, *d = dbuf + M, *lw = dbuf + 2 * (size_t)M, *R = dbuf + 3 * (size_t)M;
  float *logp = fbuf, *wf = fbuf + M;

  /* Returns: backward recurrences in double, G_t = r_t + γ G_{t+1}, R = G_0. */
  double sum_R = 0.0;
  for (int i = 0; i < nep; i++) {
    double g = 0.0;
    for (int t = ep_offsets[i + 1] - 1; t >= ep_offsets[i]; t--) {
      g = (double)rewards[t] + gamma * g;
      G[t] = g;
    }
    R[i] = g;
    sum_R += g;
  }

  double mean_ratio = 1.0;
  if (want_ratio) {
    rc = mrl_policy_evaluate_masked(p, NULL, obs, masks, actions, M, logp, NULL);
    if (rc != MRL_OK) goto done;  /* the policy has said why */
    double s = 0.0;
    for (int n = 0; n < M; n++) s += exp((double)logp[n] - (double)behavior_logp[n]);
    mean_ratio = s / M;
  }

  if (base == MRL_BASELINE_OPTIMAL) {
    rc = optimal_reinforce(p, obs, masks, actions, ep_offsets, nep, R, grad_out);
    if (rc != MRL_OK) goto done;
    if (stats) {
      stats->mean_ratio = mean_ratio;
      stats->ess = nep;
      stats->mean_return = sum_R / nep;
    }
    goto check;
  }

  /* Log importance weights, clipped in log space: min(w, c) = exp(min(L, log c)).
  ** nw is the size of the weight population (see the header comment). */
  int nw = 0;
  if (est == MRL_EST_IS_TRAJECTORY) {
    nw = nep;
    for (int i = 0; i < nep; i++) {
      double L = 0.0;
      for (int t = ep_offsets[i]; t < ep_offsets[i + 1]; t++)
        L += (double)logp[t] - (double)behavior_logp[t];
      lw[i] = clip && L > log_clip ? log_clip : L;
    }
  } else if (est == MRL_EST_IS_PER_DECISION || est == MRL_EST_IS_FULL) {
    nw = M;
    for (int i = 0; i < nep; i++) {
      double L = 0.0;
      for (int t = ep_offsets[i]; t < ep_offsets[i + 1]; t++) {
        L += (double)logp[t] - (double)behavior_logp[t];
        lw[t] = clip && L > log_clip ? log_clip : L;
      }
    }
  } else if (est == MRL_EST_IS_FIRST_ORDER) {
    nw = M;
    for (int t = 0; t < M; t++) {
      double l = (double)logp[t] - (double)behavior_logp[t];
      lw[t] = clip && l > log_clip ? log_clip : l;
    }
  }

  /* A common shift of the log weights cancels in a self-normalised estimate
  ** and in the ESS; subtracting the max keeps every exp in (0, 1]. */
  double shift = 0.0;
  if (nw > 0 && opts->self_normalize) {
    shift = lw[0];
    for (int j = 1; j < nw; j++)
      if (lw[j] > shift) shift = lw[j];
  }
  double sw = 0.0, sw2 = 0.0;
  for (int j = 0; j < nw; j++) {
    lw[j] = exp(lw[j] - shift);  /* from here on lw holds the weights */
    sw += lw[j];
    sw2 += lw[j] * lw[j];
  }
  double *w = lw;

  /* Baseline constants for the per-step estimators and reinforce. */
  double bmean = 0.0;
  if (base == MRL_BASELINE_MEAN) {
    if (est == MRL_EST_REINFORCE) {
      bmean = sum_R / nep;
    } else {
      for (int t = 0; t < M; t++) bmean += G[t];
      bmean /= M;
    }
  }

  if (opts->normalize_advantages) {
    /* d := the standardised advantages, then (is_first_order) weighted */
    double s = 0.0;
    for (int i = 0; i < nep; i++)
      for (int t = ep_offsets[i]; t < ep_offsets[i + 1]; t++) {
        double b = base == MRL_BASELINE_VALUE ? (double)values[t] : bmean;
        d[t] = (est == MRL_EST_REINFORCE ? R[i] : G[t]) - b;
        s += d[t];
      }
    if (M > 1) {
      double mean = s / M, q = 0.0;
      for (int t = 0; t < M; t++) q += (d[t] - mean) * (d[t] - mean);
      double sd = sqrt(q / (M - 1)) + 1e-8;
      for (int t = 0; t < M; t++) d[t] = (d[t] - mean) / sd;
    }
    if (est == MRL_EST_IS_FIRST_ORDER)
      for (int t = 0; t < M; t++) d[t] *= w[t];
  }
  for (int i = 0; i < nep && !opts->normalize_advantages; i++) {
    int t0 = ep_offsets[i], t1 = ep_offsets[i + 1];
    switch (est) {
      case MRL_EST_REINFORCE:
        for (int t = t0; t < t1; t++) d[t] = R[i] - bmean;
        break;
      case MRL_EST_REWARD_TO_GO:
      case MRL_EST_IS_FIRST_ORDER:
        for (int t = t0; t < t1; t++) {
          double b = base == MRL_BASELINE_VALUE ? (double)values[t] : bmean;
          double a = G[t] - b;
          d[t] = est == MRL_EST_IS_FIRST_ORDER ? w[t] * a : a;
        }
        break;
      case MRL_EST_IS_TRAJECTORY:
        for (int t = t0; t < t1; t++) d[t] = w[i] * R[i];
        break;
      case MRL_EST_IS_PER_DECISION:
        for (int t = t0; t < t1; t++) d[t] = w[t] * G[t];
        break;
      case MRL_EST_IS_FULL: {
        /* d_t = w_t r_t + γ d_{t+1}: each reward carries its own weight. */
        double acc = 0.0;
        for (int t = t1 - 1; t >= t0; t--) {
          acc = w[t] * (double)rewards[t] + gamma * acc;
          d[t] = acc;
        }
        break;
      }
    }
  }

  /* Normaliser: N, or N·w̄ = sw·N/nw when self-normalising. */
  double denom = nep;
  if (nw > 0 && opts->self_normalize) denom = sw * (double)nep / (double)nw;

  double dmax = 0.0;
  int finite = 1;
  for (int t = 0; t < M; t++) {
    if (!isfinite(d[t])) finite = 0;  /* inf·0 = NaN escapes a max */
    else if (fabs(d[t]) > dmax) dmax = fabs(d[t]);
  }
  if (!finite || !(denom > 0) || !isfinite(denom)) {
    mrl_policy_set_error_(p, "pg_gradient: an importance weight overflowed (log ratio sum too large); use weight_clip or self_normalize");
    rc = MRL_ENONFINITE;
    goto done;
  }
  if (dmax == 0.0) {
    /* Every term is zero: so is the gradient (and no policy pass is needed). */
    memset(grad_out, 0, np * sizeof(float));
  } else {
    for (int t = 0; t < M; t++) wf[t] = (float)(d[t] / dmax);
    rc = mrl_policy_grad_weighted_logp_masked(p, obs, masks, actions, wf, M, dmax / denom, NULL);
    if (rc != MRL_OK) goto done;
    memcpy(grad_out, mrl_policy_grad(p), np * sizeof(float));
  }
  if (stats) {
    stats->mean_ratio = mean_ratio;
    if (nw > 0)
      stats->ess = sw2 > 0 ? sw * sw / sw2 : 0.0;
    else
      stats->ess = est == MRL_EST_REINFORCE ? nep : M;
    stats->mean_return = sum_R / nep;
  }

check:
  if (!mrl_all_finite(grad_out, np)) {
    mrl_policy_set_error_(p, "pg_gradient: the gradient has a NaN or Inf");
    rc = MRL_ENONFINITE;
  }
done:
  free(dbuf);
  free(fbuf);
  return rc;
}
