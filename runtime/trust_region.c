/*
** trust_region.c — Fisher-vector products, conjugate gradient, the natural
** gradient step and TRPO (golden kinds fvp, cg, npg_step, trpo_step).
**
** F is never formed.  The analytic Fisher, the Hessian of mean_s KL(π_θ‖π_θ')
** at θ' = θ, factors through the network outputs:
**     F v = (1/N) Σ_n J_nᵀ M_n J_n v
** where J_n v comes from one forward-mode pass (mlp_jvp), M_n is the Fisher of
** the distribution in output space (dist.h), and J_nᵀ is one reverse pass over
** the whole batch.  For a Gaussian the log_std block of J is the identity.
** The empirical Fisher (1/N) Σ ∇_n ∇_nᵀ v takes the same two passes, with
** per-row weights ∇_n·v.
**
** CG keeps its vectors in double, and TRPO decides its line search in double,
** so that iterates and the accepted step follow a float64 reference.
*/
#include <math.h>
#include <string.h>

#include "dist.h"
#include "policy_impl.h"

/* ------------------------------------------------------------ reduction */
/* With a hook (mrl_policy_set_reduce), a vector and scalars that are means
** over this process's batch rows become means over every process's rows:
** weighted by the batch, summed by the hook, divided by the total.  Every
** process calls this at the same points, so every decision taken on the
** results (CG's stopping test, the line search) is the same everywhere. */

int mrl_policy_set_reduce(mrl_policy *p, mrl_reduce_fn reduce, void *ud) {
  if (!p) return MRL_EINVAL;
  p->reduce = reduce;
  p->reduce_ud = reduce ? ud : NULL;
  return MRL_OK;
}

static int tr_reduce(mrl_policy *p, float *data, size_t n, double *s, int ns,
                     int batch) {
  if (!p->reduce) return MRL_OK;
  double sc[8];
  sc[0] = batch;
  for (int i = 0; i < ns; i++) sc[i + 1] = s[i] * batch;
  for (size_t i = 0; i < n; i++) data[i] *= (float)batch;
  int rc = p->reduce(p->reduce_ud, data, n, sc, ns + 1);
  if (rc == MRL_OK && !(sc[0] >= 1.0)) rc = MRL_ESTATE;
  if (rc)
    return policy_fail(p, rc, "reduce: the reduction hook failed (%s)",
                       mrl_status_string(rc));
  for (size_t i = 0; i < n; i++) data[i] = (float)((double)data[i] / sc[0]);
  for (int i = 0; i < ns; i++) s[i] = sc[i + 1] / sc[0];
  return MRL_OK;
}

/* ------------------------------------------------------------ products */

/* The old kinds' rows, or the general path's (composite or masked). */
static double tr_row_logp(const mrl_policy *p, const float *out,
                          const float *ls, const float *m, const float *a) {
  if (m || p->kind == MRL_COMPOSITE) return space_row_logp(p, out, ls, m, a);
  return policy_row_logp(p, out, ls, a);
}

static void tr_row_dlogp_add(const mrl_policy *p, const float *out,
                             const float *ls, const float *m, const float *a,
                             double w, double *dout, double *dls) {
  if (m || p->kind == MRL_COMPOSITE)
    space_row_dlogp_add(p, out, ls, m, a, w, dout, dls);
  else
    policy_row_dlogp_add(p, out, ls, a, w, dout, dls);
}

int policy_fvp_core(mrl_policy *p, mrl_fisher fisher, const float *obs,
                    const float *masks, const float *actions, int batch,
                    const float *v, double damping, float *out,
                    int have_forward) {
  const int n = p->n, nls = p->nls;
  const int box = p->kind == MRL_BOX;
  const int gen = masks || p->kind == MRL_COMPOSITE;
  const double inv_n = 1.0 / batch;
  if (!have_forward) policy_forward(p, NULL, obs, batch, p->acts);
  const float *y = mlp_output(&p->shape, p->acts, batch);
  policy_body_jvp(p, v, obs, batch, p->jy);

  const float *ls = policy_log_std(p, NULL);
  const float *vls = nls ? v + p->nnet : NULL;
  double *dout = p->row, *dls = p->row + n, *dls_sum = p->row + 2 * n;
  for (int j = 0; j < p->nls; j++) dls_sum[j] = 0.0;

  for (int i = 0; i < batch; i++) {
    size_t off = (size_t)i * (size_t)n;
    const float *z = y + off, *jv = p->jy + off;
    const float *m = masks ? masks + off : NULL;
    for (int j = 0; j < n; j++) dout[j] = 0.0;
    if (fisher == MRL_FISHER_ANALYTIC) {
      if (gen)
        space_row_fisher_add(p, z, ls, m, jv, inv_n, dout);
      else if (box)
        dist_gauss_fisher_add(ls, n, jv, NULL, inv_n, dout, NULL);
      else
        dist_cat_fisher_add(z, n, jv, inv_n, dout);
    } else {
      /* ∇_n = Jᵀ d_n (plus d_ls on log_std); ∇_n·v = d_n·Jv + d_ls·v_ls */
      for (int j = 0; j < nls; j++) dls[j] = 0.0;
      tr_row_dlogp_add(p, z, ls, m, actions + (size_t)i * (size_t)p->width,
                       1.0, dout, dls);
      double dot = 0.0;
      for (int j = 0; j < n; j++) dot += dout[j] * (double)jv[j];
      for (int j = 0; j < nls; j++) dot += dls[j] * (double)vls[j];
      double w = dot * inv_n;
      for (int j = 0; j < n; j++) dout[j] *= w;
      for (int j = 0; j < nls; j++) dls_sum[j] += w * dls[j];
    }
    for (int j = 0; j < n; j++) p->dy[off + (size_t)j] = (float)dout[j];
  }
  /* The log_std block: M = 2·I for every state, so its mean is 2·v_ls. */
  if (fisher == MRL_FISHER_ANALYTIC)
    for (int j = 0; j < nls; j++) dls_sum[j] = 2.0 * (double)vls[j];
  for (int j = 0; j < nls; j++) dls_sum[j] += damping * (double)vls[j];
  policy_backward_set(p, NULL, obs, batch, p->acts, dls_sum, out);
  if (damping != 0.0)
    for (size_t i = 0; i < p->nnet; i++)
      out[i] = (float)((double)out[i] + damping * (double)v[i]);
  return MRL_OK;
}

/* Checks shared by fvp, cg and npg_step. */
static int tr_check(mrl_policy *p, mrl_fisher fisher, const float *obs,
                    const float *actions, int batch, double damping) {
  if (fisher != MRL_FISHER_ANALYTIC && fisher != MRL_FISHER_EMPIRICAL)
    return policy_fail(p, MRL_EINVAL,
                       "fisher: expected analytic (0) or empirical (1), got %d",
                       (int)fisher);
  if (!isfinite(damping) || damping < 0.0)
    return policy_fail(p, MRL_EINVAL,
                       "damping: expected a finite value >= 0, got %g",
                       damping);
  int rc = policy_check_batch(p, batch);
  if (!rc) rc = policy_check_obs(p, obs, batch);
  if (!rc && fisher == MRL_FISHER_EMPIRICAL)
    rc = policy_check_actions(p, actions, batch);
  if (!rc) rc = policy_reserve(p, batch);
  return rc;
}

/* Masks (nullable) and, when given, the actions they must allow. */
static int tr_check_masks(mrl_policy *p, const float *masks,
                          const float *actions, int batch) {
  if (!masks) return MRL_OK;
  int rc = space_check_masks(p, masks, batch);
  if (!rc && actions) rc = space_check_actions(p, actions, masks, batch);
  return rc;
}

static int tr_check_vec(mrl_policy *p, const float *v, const char *name) {
  int rc = policy_check_ptr(p, v, name);
  if (!rc) rc = policy_check_finite(p, name, v, p->nparams, 1);
  return rc;
}

int mrl_policy_fvp(mrl_policy *p, mrl_fisher fisher, const float *obs,
                   const float *actions, int batch, const float *v,
                   double damping, float *out) {
  if (!p) return MRL_EINVAL;
  int rc = tr_check(p, fisher, obs, actions, batch, damping);
  if (!rc) rc = tr_check_vec(p, v, "v");
  if (!rc) rc = policy_check_ptr(p, out, "out");
  if (rc) return rc;
  if (out == v)
    return policy_fail(p, MRL_EINVAL, "out: must not alias v");
  policy_fvp_core(p, fisher, obs, NULL, actions, batch, v, damping, out, 0);
  if ((rc = tr_reduce(p, out, p->nparams, NULL, 0, batch))) return rc;
  if (!mrl_all_finite(out, p->nparams))
    return policy_fail(p, MRL_ENONFINITE, "fvp: the product is not finite");
  return MRL_OK;
}

int mrl_policy_fvp_masked(mrl_policy *p, mrl_fisher fisher, const float *obs,
                          const float *masks, const float *actions, int batch,
                          const float *v, double damping, float *out) {
  if (!masks)
    return mrl_policy_fvp(p, fisher, obs, actions, batch, v, damping, out);
  if (!p) return MRL_EINVAL;
  int rc = tr_check(p, fisher, obs, actions, batch, damping);
  if (!rc)
    rc = tr_check_masks(p, masks,
                        fisher == MRL_FISHER_EMPIRICAL ? actions : NULL, batch);
  if (!rc) rc = tr_check_vec(p, v, "v");
  if (!rc) rc = policy_check_ptr(p, out, "out");
  if (rc) return rc;
  if (out == v)
    return policy_fail(p, MRL_EINVAL, "out: must not alias v");
  policy_fvp_core(p, fisher, obs, masks, actions, batch, v, damping, out, 0);
  if ((rc = tr_reduce(p, out, p->nparams, NULL, 0, batch))) return rc;
  if (!mrl_all_finite(out, p->nparams))
    return policy_fail(p, MRL_ENONFINITE, "fvp: the product is not finite");
  return MRL_OK;
}

/* ------------------------------------------------------------ CG */

static double tr_dot(const double *a, const double *b, size_t n) {
  double s = 0.0;
  for (size_t i = 0; i < n; i++) s += a[i] * b[i];
  return s;
}

/* A·x for a double x, through the float product; result in p->tr_apf. */
static double tr_xAx(mrl_policy *p, mrl_fisher fisher, const float *obs,
                     const float *masks, const float *actions, int batch,
                     const double *x, double damping) {
  size_t np = p->nparams;
  for (size_t i = 0; i < np; i++) p->tr_pf[i] = (float)x[i];
  policy_fvp_core(p, fisher, obs, masks, actions, batch, p->tr_pf, damping,
                  p->tr_apf, 1);
  if (tr_reduce(p, p->tr_apf, np, NULL, 0, batch)) return NAN;
  double s = 0.0;
  for (size_t i = 0; i < np; i++) s += x[i] * (double)p->tr_apf[i];
  return s;
}

/* Solves (F + damping·I)x = g into p->tr_x, from x = 0, as the golden README
** states it; stops after iters iterations or once rᵀr < 1e-10.  Leaves the
** forward pass of obs at the current params in p->acts.  xAx nullable. */
static int tr_cg(mrl_policy *p, mrl_fisher fisher, const float *obs,
                 const float *masks, const float *actions, int batch,
                 const float *g, double damping, int iters, double *xAx) {
  const size_t np = p->nparams;
  double *x = p->tr_x, *r = p->tr_r, *d = p->tr_p;
  float *df = p->tr_pf, *adf = p->tr_apf;
  for (size_t i = 0; i < np; i++) {
    x[i] = 0.0;
    r[i] = d[i] = (double)g[i];
  }
  double rr = tr_dot(r, r, np);
  policy_forward(p, NULL, obs, batch, p->acts);
  /* The residual test follows each update, as in the reference CG: a tiny
  ** but nonzero g still takes its first step. */
  for (int it = 0; it < iters; it++) {
    for (size_t i = 0; i < np; i++) df[i] = (float)d[i];
    policy_fvp_core(p, fisher, obs, masks, actions, batch, df, damping, adf, 1);
    int rc = tr_reduce(p, adf, np, NULL, 0, batch);
    if (rc) return rc;
    double dAd = 0.0;
    for (size_t i = 0; i < np; i++) dAd += d[i] * (double)adf[i];
    if (!isfinite(dAd))
      return policy_fail(p, MRL_ENONFINITE,
                         "cg: a Fisher-vector product is not finite");
    /* A singular direction (damping 0): x cannot improve along it. */
    if (!(dAd > 0.0)) break;
    double alpha = rr / dAd;
    for (size_t i = 0; i < np; i++) {
      x[i] += alpha * d[i];
      r[i] -= alpha * (double)adf[i];
    }
    double rr_new = tr_dot(r, r, np);
    double beta = rr_new / rr;
    for (size_t i = 0; i < np; i++) d[i] = r[i] + beta * d[i];
    rr = rr_new;
    if (rr < 1e-10) break;
  }
  for (size_t i = 0; i < np; i++)
    if (!isfinite(x[i]))
      return policy_fail(p, MRL_ENONFINITE, "cg: the solution is not finite");
  if (xAx) {
    *xAx = tr_xAx(p, fisher, obs, masks, actions, batch, x, damping);
    if (!isfinite(*xAx))
      return policy_fail(p, MRL_ENONFINITE, "cg: xᵀAx is not finite");
  }
  return MRL_OK;
}

static int tr_check_iters(mrl_policy *p, int iters) {
  if (iters < 0)
    return policy_fail(p, MRL_EINVAL, "iters: expected >= 0, got %d", iters);
  return MRL_OK;
}

int mrl_policy_cg(mrl_policy *p, mrl_fisher fisher, const float *obs,
                  const float *actions, int batch, const float *g,
                  double damping, int iters, float *x, double *xAx) {
  return mrl_policy_cg_masked(p, fisher, obs, NULL, actions, batch, g, damping,
                              iters, x, xAx);
}

int mrl_policy_cg_masked(mrl_policy *p, mrl_fisher fisher, const float *obs,
                         const float *masks, const float *actions, int batch,
                         const float *g, double damping, int iters, float *x,
                         double *xAx) {
  if (!p) return MRL_EINVAL;
  int rc = tr_check(p, fisher, obs, actions, batch, damping);
  if (!rc)
    rc = tr_check_masks(p, masks,
                        fisher == MRL_FISHER_EMPIRICAL ? actions : NULL, batch);
  if (!rc) rc = tr_check_vec(p, g, "g");
  if (!rc) rc = policy_check_ptr(p, x, "x");
  if (!rc) rc = tr_check_iters(p, iters);
  if (!rc) rc = policy_reserve_tr(p);
  if (!rc)
    rc = tr_cg(p, fisher, obs, masks, actions, batch, g, damping, iters, xAx);
  if (rc) return rc;
  for (size_t i = 0; i < p->nparams; i++) x[i] = (float)p->tr_x[i];
  return MRL_OK;
}

int mrl_policy_npg_step(mrl_policy *p, mrl_fisher fisher, const float *obs,
                        const float *actions, int batch, const float *g,
                        double damping, int iters, double max_kl,
                        float *step) {
  return mrl_policy_npg_step_masked(p, fisher, obs, NULL, actions, batch, g,
                                    damping, iters, max_kl, step);
}

int mrl_policy_npg_step_masked(mrl_policy *p, mrl_fisher fisher,
                               const float *obs, const float *masks,
                               const float *actions, int batch, const float *g,
                               double damping, int iters, double max_kl,
                               float *step) {
  if (!p) return MRL_EINVAL;
  int rc = tr_check(p, fisher, obs, actions, batch, damping);
  if (!rc)
    rc = tr_check_masks(p, masks,
                        fisher == MRL_FISHER_EMPIRICAL ? actions : NULL, batch);
  if (!rc) rc = tr_check_vec(p, g, "g");
  if (!rc) rc = policy_check_ptr(p, step, "step");
  if (!rc) rc = tr_check_iters(p, iters);
  if (!rc && !(isfinite(max_kl) && max_kl > 0.0))
    rc = policy_fail(p, MRL_EINVAL, "max_kl: expected a finite value > 0");
  if (!rc) rc = policy_reserve_tr(p);
  double xAx = 0.0;
  if (!rc)
    rc = tr_cg(p, fisher, obs, masks, actions, batch, g, damping, iters, &xAx);
  if (rc) return rc;
  /* xᵀAx = 0 only when x = 0 (g = 0, or a singular F without damping):
  ** there is no direction to step along. */
  double scale = xAx > 0.0 ? sqrt(2.0 * max_kl / xAx) : 0.0;
  for (size_t i = 0; i < p->nparams; i++)
    step[i] = (float)(scale * p->tr_x[i]);
  return MRL_OK;
}

/* ------------------------------------------------------------ TRPO */

/* mean_n ρ_n A_n at the outputs y and log_std ls. */
static double tr_surrogate(const mrl_policy *p, const float *y,
                           const float *ls, const float *masks,
                           const float *actions, const float *old_logp,
                           const float *advantages, int batch) {
  double s = 0.0;
  for (int i = 0; i < batch; i++) {
    const size_t off = (size_t)i * (size_t)p->n;
    double lp = tr_row_logp(p, y + off, ls, masks ? masks + off : NULL,
                            actions + (size_t)i * (size_t)p->width);
    s += exp(lp - (double)old_logp[i]) * (double)advantages[i];
  }
  return s / batch;
}

static double tr_mean_kl(const mrl_policy *p, const float *y_old,
                         const float *ls_old, const float *y_new,
                         const float *ls_new, const float *masks, int batch) {
  double s = 0.0;
  for (int i = 0; i < batch; i++) {
    size_t off = (size_t)i * (size_t)p->n;
    s += masks ? space_row_kl(p, y_old + off, ls_old, y_new + off, ls_new,
                              masks + off)
       : p->kind == MRL_BOX
             ? dist_gauss_kl(y_old + off, ls_old, y_new + off, ls_new, p->n)
         : p->kind == MRL_DISCRETE
             ? dist_cat_kl(y_old + off, y_new + off, p->n)
             : space_row_kl(p, y_old + off, ls_old, y_new + off, ls_new, NULL);
  }
  return s / batch;
}

int mrl_policy_trpo_step(mrl_policy *p, const float *obs, const float *actions,
                         const float *old_logp, const float *advantages,
                         int batch, const mrl_trpo_opts *opts,
                         mrl_trpo_result *result) {
  return mrl_policy_trpo_step_masked(p, obs, NULL, actions, old_logp,
                                     advantages, batch, opts, result);
}

int mrl_policy_trpo_step_masked(mrl_policy *p, const float *obs,
                                const float *masks, const float *actions,
                                const float *old_logp,
                                const float *advantages, int batch,
                                const mrl_trpo_opts *opts,
                                mrl_trpo_result *result) {
  if (!p) return MRL_EINVAL;
  int rc = policy_check_ptr(p, opts, "opts");
  if (rc) return rc;
  if (!(isfinite(opts->max_kl) && opts->max_kl > 0.0))
    return policy_fail(p, MRL_EINVAL, "max_kl: expected a finite value > 0");
  if (!(opts->backtrack_coef > 0.0 && opts->backtrack_coef <= 1.0))
    return policy_fail(p, MRL_EINVAL, "backtrack_coef: expected (0, 1]");
  if (opts->max_backtracks < 0)
    return policy_fail(p, MRL_EINVAL, "max_backtracks: expected >= 0");
  if ((rc = tr_check_iters(p, opts->cg_iters))) return rc;
  if ((rc = tr_check(p, MRL_FISHER_ANALYTIC, obs, actions, batch,
                     opts->damping)))
    return rc;
  rc = policy_check_actions(p, actions, batch);
  if (!rc) rc = tr_check_masks(p, masks, actions, batch);
  if (!rc) rc = policy_check_ptr(p, old_logp, "old_logp");
  if (!rc) rc = policy_check_finite(p, "old_logp", old_logp, (size_t)batch, 1);
  if (!rc) rc = policy_check_ptr(p, advantages, "advantages");
  if (!rc)
    rc = policy_check_finite(p, "advantages", advantages, (size_t)batch, 1);
  if (!rc) rc = policy_reserve_tr(p);
  if (rc) return rc;

  const int n = p->n;
  const size_t np = p->nparams;
  const double inv_n = 1.0 / batch;
  mrl_trpo_result res = {-1, 0.0, 0.0, 0.0};

  /* g = ∇L(θ), with L = mean ρA; ∂L/∂logp_n = ρ_n A_n / N. */
  const float *y = policy_forward(p, NULL, obs, batch, p->acts);
  const float *ls = policy_log_std(p, NULL);
  double *dout = p->row, *dls_sum = p->row + 2 * n;
  double L0 = 0.0;
  for (int j = 0; j < p->nls; j++) dls_sum[j] = 0.0;
  for (int i = 0; i < batch; i++) {
    size_t off = (size_t)i * (size_t)n;
    const float *a = actions + (size_t)i * (size_t)p->width;
    const float *m = masks ? masks + off : NULL;
    double rho = exp(tr_row_logp(p, y + off, ls, m, a) - (double)old_logp[i]);
    double w = rho * (double)advantages[i] * inv_n;
    L0 += w;
    for (int j = 0; j < n; j++) dout[j] = 0.0;
    tr_row_dlogp_add(p, y + off, ls, m, a, w, dout, dls_sum);
    for (int j = 0; j < n; j++) p->dy[off + (size_t)j] = (float)dout[j];
  }
  policy_backward_set(p, NULL, obs, batch, p->acts, dls_sum, p->tr_g);
  if ((rc = tr_reduce(p, p->tr_g, np, &L0, 1, batch))) return rc;
  res.surrogate_before = L0;
  if (!isfinite(L0) || !mrl_all_finite(p->tr_g, np))
    return policy_fail(p, MRL_ENONFINITE,
                       "trpo: the surrogate or its gradient is not finite");

  double xAx = 0.0;
  rc = tr_cg(p, MRL_FISHER_ANALYTIC, obs, masks, actions, batch, p->tr_g,
             opts->damping, opts->cg_iters, &xAx);
  if (rc) return rc;
  if (xAx > 0.0) {
    /* p->acts still holds the outputs at θ (tr_cg reran the same forward). */
    const float *y0 = mlp_output(&p->shape, p->acts, batch);
    double scale = sqrt(2.0 * opts->max_kl / xAx);
    double *full = p->tr_x;
    for (size_t i = 0; i < np; i++) full[i] *= scale;
    float *trial = p->tr_trial;
    for (int j = 0; j < opts->max_backtracks; j++) {
      double frac = pow(opts->backtrack_coef, (double)j);
      for (size_t i = 0; i < np; i++)
        trial[i] = (float)((double)p->params[i] + frac * full[i]);
      if (!mrl_all_finite(trial, np)) continue;
      const float *y1 = policy_forward(p, trial, obs, batch, p->acts2);
      const float *ls1 = policy_log_std(p, trial);
      double kl = tr_mean_kl(p, y0, ls, y1, ls1, masks, batch);
      double L1 = tr_surrogate(p, y1, ls1, masks, actions, old_logp,
                               advantages, batch);
      double klL1[2] = {kl, L1};
      if ((rc = tr_reduce(p, NULL, 0, klL1, 2, batch))) return rc;
      kl = klL1[0];
      L1 = klL1[1];
      double imp = L1 - L0;
      if (kl <= opts->max_kl && imp > 0.0) {
        res.accepted_j = j;
        res.mean_kl = kl;
        res.improvement = imp;
        memcpy(p->params, trial, np * sizeof(float));
        break;
      }
    }
  }
  if (result) *result = res;
  return MRL_OK;
}
