/*
** policy_space.c — the general action path: composite actions (parts that
** are categorical, gaussian or bernoulli, each on its own slice of the
** output row and of the action row) and invalid-action masks.
**
** The discrete and box policies keep their own specialised loops in
** policy.c; a call reaches this file once, at its top, when the policy is
** composite or masks are given.  Everything here works on the rows of
** network outputs, whatever body produced them: the body's forward and
** backward (policy_forward, policy_backward_set) are the only links.
*/
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "dist.h"
#include "finite_row.h"
#include "mlp_packed.h"
#include "policy_impl.h"

static const char *const part_names[] = {"categorical", "gaussian",
                                         "bernoulli"};

/* ------------------------------------------------------------ layout */

static int space_layout(mrl_policy *p, const mrl_action_part *parts,
                        int nparts) {
  p->parts = malloc((size_t)nparts * sizeof *p->parts);
  if (!p->parts) return MRL_ENOMEM;
  p->nparts = nparts;
  int out = 0, act = 0, ls = 0, maskable = 1;
  for (int i = 0; i < nparts; i++) {
    policy_part *q = &p->parts[i];
    q->type = (int)parts[i].type;
    q->n = parts[i].n;
    q->out = out;
    q->act = act;
    q->ls = ls;
    out += q->n;
    act += q->type == MRL_PART_CATEGORICAL ? 1 : q->n;
    if (q->type == MRL_PART_GAUSSIAN) ls += q->n;
    if (q->type != MRL_PART_CATEGORICAL) maskable = 0;
  }
  p->n = out;
  p->width = act;
  p->nls = ls;
  p->maskable = maskable;
  return MRL_OK;
}

int space_init(mrl_policy *p, const mrl_policy_spec *spec) {
  p->kind = spec->action_kind;
  if (p->kind == MRL_COMPOSITE)
    return space_layout(p, spec->parts, spec->nparts);
  mrl_action_part one = {p->kind == MRL_BOX ? MRL_PART_GAUSSIAN
                                            : MRL_PART_CATEGORICAL,
                         spec->action_n};
  return space_layout(p, &one, 1);
}

int space_copy(mrl_policy *dst, const mrl_policy *src) {
  dst->parts = malloc((size_t)src->nparts * sizeof *dst->parts);
  if (!dst->parts) return MRL_ENOMEM;
  memcpy(dst->parts, src->parts, (size_t)src->nparts * sizeof *dst->parts);
  dst->nparts = src->nparts;
  dst->kind = src->kind;
  dst->n = src->n;
  dst->width = src->width;
  dst->nls = src->nls;
  dst->maskable = src->maskable;
  return MRL_OK;
}

/* ------------------------------------------------------------ checks */

/* 0 when a mask row is usable: every value 0 or 1 and a valid action in
** every part; else 1 + the column of a bad value, or −(1 + part) of an
** all-masked part. */
static int space_mask_row(const mrl_policy *p, const float *m) {
  for (int j = 0; j < p->n; j++)
    if (!(m[j] == 0.0f || m[j] == 1.0f)) return 1 + j;
  for (int k = 0; k < p->nparts; k++)
    if (!dist_catm_count(m + p->parts[k].out, p->parts[k].n)) return -(1 + k);
  return 0;
}

int space_check_masks(mrl_policy *p, const float *masks, int batch) {
  int rc = policy_check_ptr(p, masks, "masks");
  if (rc) return rc;
  if (!p->maskable)
    return policy_fail(p, MRL_EINVAL,
                       "masks: this policy's action has a part that is not "
                       "categorical; masks are for categorical parts only");
  for (int i = 0; i < batch; i++) {
    const float *m = masks + (size_t)i * (size_t)p->n;
    const int bad = space_mask_row(p, m);
    if (bad > 0)
      return policy_fail(p, MRL_EINVAL,
                         "masks: row %d, entry %d is %g, expected 0 "
                         "(invalid) or 1 (valid)",
                         i, bad, (double)m[bad - 1]);
    if (bad < 0) {
      const policy_part *q = &p->parts[-bad - 1];
      return policy_fail(p, MRL_EINVAL,
                         "masks: row %d masks every action of part %d "
                         "(entries %d to %d); at least one must be valid",
                         i, -bad, q->out + 1, q->out + q->n);
    }
  }
  return MRL_OK;
}

int space_check_actions(mrl_policy *p, const float *actions,
                        const float *masks, int batch) {
  int rc = policy_check_ptr(p, actions, "actions");
  if (rc) return rc;
  for (int i = 0; i < batch; i++) {
    const float *a = actions + (size_t)i * (size_t)p->width;
    for (int k = 0; k < p->nparts; k++) {
      const policy_part *q = &p->parts[k];
      const float *x = a + q->act;
      if (q->type == MRL_PART_CATEGORICAL) {
        /* the comparisons are false for NaN, so it lands here too */
        if (!(x[0] >= 0.0f && x[0] < (float)q->n && x[0] == floorf(x[0])))
          return policy_fail(p, MRL_EINVAL,
                             "actions: row %d, part %d is %g, expected an "
                             "integer in [0, %d)",
                             i, k + 1, (double)x[0], q->n);
        if (masks && masks[(size_t)i * (size_t)p->n +
                           (size_t)(q->out + (int)x[0])] == 0.0f)
          return policy_fail(p, MRL_EINVAL,
                             "actions: row %d, part %d is %d, which its "
                             "mask forbids",
                             i, k + 1, (int)x[0]);
      } else if (q->type == MRL_PART_BERNOULLI) {
        for (int j = 0; j < q->n; j++)
          if (!(x[j] == 0.0f || x[j] == 1.0f))
            return policy_fail(p, MRL_EINVAL,
                               "actions: row %d, part %d, bit %d is %g, "
                               "expected 0 or 1",
                               i, k + 1, j, (double)x[j]);
      } else {
        for (int j = 0; j < q->n; j++)
          if (!isfinite(x[j]))
            return policy_fail(p, MRL_ENONFINITE,
                               "actions: row %d, part %d (%s), value %d is "
                               "%s",
                               i, k + 1, part_names[q->type], j,
                               isnan(x[j]) ? "NaN" : "Inf");
      }
    }
  }
  return MRL_OK;
}

/* The prologue of every general call: batch, obs, workspace, masks. */
static int space_begin(mrl_policy *p, const float *obs, const float *masks,
                       int batch) {
  int rc = policy_begin(p, obs, batch);
  if (!rc && masks) rc = space_check_masks(p, masks, batch);
  return rc;
}

/* ------------------------------------------------------------ rows */

double space_row_logp(const mrl_policy *p, const float *out, const float *ls,
                      const float *m, const float *a) {
  double s = 0.0;
  for (int k = 0; k < p->nparts; k++) {
    const policy_part *q = &p->parts[k];
    const float *z = out + q->out;
    switch (q->type) {
      case MRL_PART_CATEGORICAL:
        s += m ? dist_catm_logp(z, m + q->out, q->n, (int)a[q->act])
               : dist_cat_logp(z, q->n, (int)a[q->act]);
        break;
      case MRL_PART_GAUSSIAN:
        s += dist_gauss_logp(z, ls + q->ls, a + q->act, q->n);
        break;
      default:
        s += dist_bern_logp(z, a + q->act, q->n);
    }
  }
  return s;
}

double space_row_entropy(const mrl_policy *p, const float *out,
                         const float *ls, const float *m) {
  double s = 0.0;
  for (int k = 0; k < p->nparts; k++) {
    const policy_part *q = &p->parts[k];
    const float *z = out + q->out;
    switch (q->type) {
      case MRL_PART_CATEGORICAL:
        s += m ? dist_catm_entropy(z, m + q->out, q->n)
               : dist_cat_entropy(z, q->n);
        break;
      case MRL_PART_GAUSSIAN:
        s += dist_gauss_entropy(ls + q->ls, q->n);
        break;
      default:
        s += dist_bern_entropy(z, q->n);
    }
  }
  return s;
}

double space_row_kl(const mrl_policy *p, const float *out_old,
                    const float *ls_old, const float *out_new,
                    const float *ls_new, const float *m) {
  double s = 0.0;
  for (int k = 0; k < p->nparts; k++) {
    const policy_part *q = &p->parts[k];
    const float *zo = out_old + q->out, *zn = out_new + q->out;
    switch (q->type) {
      case MRL_PART_CATEGORICAL:
        s += m ? dist_catm_kl(zo, zn, m + q->out, q->n)
               : dist_cat_kl(zo, zn, q->n);
        break;
      case MRL_PART_GAUSSIAN:
        s += dist_gauss_kl(zo, ls_old + q->ls, zn, ls_new + q->ls, q->n);
        break;
      default:
        s += dist_bern_kl(zo, zn, q->n);
    }
  }
  return s;
}

void space_row_dlogp_add(const mrl_policy *p, const float *out,
                         const float *ls, const float *m, const float *a,
                         double w, double *dout, double *dls) {
  for (int k = 0; k < p->nparts; k++) {
    const policy_part *q = &p->parts[k];
    const float *z = out + q->out;
    double *d = dout + q->out;
    switch (q->type) {
      case MRL_PART_CATEGORICAL:
        if (m)
          dist_catm_dlogp_add(z, m + q->out, q->n, (int)a[q->act], w, d);
        else
          dist_cat_dlogp_add(z, q->n, (int)a[q->act], w, d);
        break;
      case MRL_PART_GAUSSIAN:
        dist_gauss_dlogp_add(z, ls + q->ls, a + q->act, q->n, w, d,
                             dls + q->ls);
        break;
      default:
        dist_bern_dlogp_add(z, a + q->act, q->n, w, d);
    }
  }
}

static void space_row_dentropy_add(const mrl_policy *p, const float *out,
                                   const float *m, double w, double *dout,
                                   double *dls) {
  for (int k = 0; k < p->nparts; k++) {
    const policy_part *q = &p->parts[k];
    const float *z = out + q->out;
    double *d = dout + q->out;
    switch (q->type) {
      case MRL_PART_CATEGORICAL:
        if (m)
          dist_catm_dentropy_add(z, m + q->out, q->n, w, d);
        else
          dist_cat_dentropy_add(z, q->n, w, d);
        break;
      case MRL_PART_GAUSSIAN:
        dist_gauss_dentropy_add(q->n, w, dls + q->ls);
        break;
      default:
        dist_bern_dentropy_add(z, q->n, w, d);
    }
  }
}

static void space_row_dkl_add(const mrl_policy *p, const float *out_old,
                              const float *ls_old, const float *out_new,
                              const float *ls_new, const float *m, double w,
                              double *dout, double *dls) {
  for (int k = 0; k < p->nparts; k++) {
    const policy_part *q = &p->parts[k];
    const float *zo = out_old + q->out, *zn = out_new + q->out;
    double *d = dout + q->out;
    switch (q->type) {
      case MRL_PART_CATEGORICAL:
        if (m)
          dist_catm_dkl_add(zo, zn, m + q->out, q->n, w, d);
        else
          dist_cat_dkl_add(zo, zn, q->n, w, d);
        break;
      case MRL_PART_GAUSSIAN:
        dist_gauss_dkl_add(zo, ls_old + q->ls, zn, ls_new + q->ls, q->n, w,
                           d, dls + q->ls);
        break;
      default:
        dist_bern_dkl_add(zo, zn, q->n, w, d);
    }
  }
}

void space_row_fisher_add(const mrl_policy *p, const float *out,
                          const float *ls, const float *m, const float *jv,
                          double w, double *dout) {
  for (int k = 0; k < p->nparts; k++) {
    const policy_part *q = &p->parts[k];
    const float *z = out + q->out, *v = jv + q->out;
    double *d = dout + q->out;
    switch (q->type) {
      case MRL_PART_CATEGORICAL:
        if (m)
          dist_catm_fisher_add(z, m + q->out, q->n, v, w, d);
        else
          dist_cat_fisher_add(z, q->n, v, w, d);
        break;
      case MRL_PART_GAUSSIAN:
        dist_gauss_fisher_add(ls + q->ls, q->n, v, NULL, w, d, NULL);
        break;
      default:
        dist_bern_fisher_add(z, q->n, v, w, d);
    }
  }
}

/* Draws (or takes the mode of) one action row; returns its log π.  The
** generator is used in part order: one uniform per categorical part, n
** normals per gaussian part, n uniforms per bernoulli part.  u: 2n doubles
** of scratch. */
static double space_row_sample(mrl_policy *p, const float *out,
                               const float *ls, const float *m,
                               int deterministic, float *a, double *u) {
  double lp = 0.0;
  for (int k = 0; k < p->nparts; k++) {
    const policy_part *q = &p->parts[k];
    const float *z = out + q->out;
    float *x = a + q->act;
    double l = 0.0;
    switch (q->type) {
      case MRL_PART_CATEGORICAL: {
        int c;
        if (deterministic) {
          c = m ? dist_catm_mode(z, m + q->out, q->n) : dist_cat_mode(z, q->n);
          l = m ? dist_catm_logp(z, m + q->out, q->n, c)
                : dist_cat_logp(z, q->n, c);
        } else if (m) {
          c = dist_catm_sample_logp(z, m + q->out, q->n,
                                    rng_uniform(&p->rng), &l, u + p->n);
        } else {
          /* up to 16 actions log p in float, as the discrete policy's act */
          c = dist_cat_sample_logp(z, q->n, rng_uniform(&p->rng), &l);
        }
        x[0] = (float)c;
        break;
      }
      case MRL_PART_GAUSSIAN:
        if (deterministic) {
          memcpy(x, z, (size_t)q->n * sizeof(float));
        } else {
          for (int j = 0; j < q->n; j++) u[j] = rng_normal(&p->rng);
          dist_gauss_sample(z, ls + q->ls, q->n, u, x);
        }
        /* of the stored float action, so evaluate() reproduces it */
        l = dist_gauss_logp(z, ls + q->ls, x, q->n);
        break;
      default:
        if (deterministic) {
          l = dist_bern_mode(z, q->n, x);
        } else {
          for (int j = 0; j < q->n; j++) u[j] = rng_uniform(&p->rng);
          l = dist_bern_sample(z, q->n, u, x);
        }
    }
    lp += l;
  }
  return lp;
}

/* ------------------------------------------------------------ calls */

/* One observation, the call a game makes per agent and frame: the general
** path's checks inline; anything unusual returns -1 for the general path,
** which also writes the messages.  Nothing is drawn before every check. */
static int space_act1(mrl_policy *p, const float *obs, const float *m,
                      int deterministic, float *action, float *logp) {
  const int d = p->shape.dims[0];
  if (!obs || !action || p->conv.nlayers || d > 256 ||
      !finite_row(obs, (size_t)d) ||
      (m && (!p->maskable || space_mask_row(p, m))))
    return -1;
  const float *z = mlp_forward1(&p->shape, p->params, obs, p->acts);
  const float *ls = policy_log_std(p, NULL);
  if (!finite_row(z, (size_t)p->n) || (ls && !finite_row(ls, (size_t)p->nls)))
    return -1;
  double lp = space_row_sample(p, z, ls, m, deterministic, action, p->row);
  if (logp) *logp = (float)lp;
  return MRL_OK;
}

int space_act(mrl_policy *p, const float *wt, const float *obs,
              const float *masks, int batch, int deterministic,
              float *actions, float *logp) {
  if (batch == 1 && !wt &&
      space_act1(p, obs, masks, deterministic, actions, logp) == MRL_OK)
    return MRL_OK;
  int rc = policy_check_ptr(p, actions, "actions");
  if (!rc) rc = space_begin(p, obs, masks, batch);
  if (rc) return rc;
  const float *y;
  if (wt) {
    mlp_forward_wt(&p->shape, p->params, wt, obs, batch, p->acts);
    y = mlp_output(&p->shape, p->acts, batch);
  } else {
    y = policy_forward(p, NULL, obs, batch, p->acts);
  }
  if ((rc = policy_check_out(p, NULL, y, batch))) return rc;
  const float *ls = policy_log_std(p, NULL);
  const size_t n = (size_t)p->n;
  for (int i = 0; i < batch; i++) {
    double lp = space_row_sample(p, y + (size_t)i * n, ls,
                                 masks ? masks + (size_t)i * n : NULL,
                                 deterministic,
                                 actions + (size_t)i * (size_t)p->width,
                                 p->row);
    if (logp) logp[i] = (float)lp;
  }
  return MRL_OK;
}

int space_evaluate(mrl_policy *p, const float *params, const float *obs,
                   const float *masks, const float *actions, int batch,
                   float *logp, float *entropy) {
  int rc = policy_check_params(p, params, "params");
  if (!rc) rc = space_begin(p, obs, masks, batch);
  if (!rc && logp) rc = space_check_actions(p, actions, masks, batch);
  if (rc) return rc;
  const float *y = policy_forward(p, params, obs, batch, p->acts);
  const float *ls = policy_log_std(p, params);
  if ((rc = policy_check_out(p, params, y, batch))) return rc;
  const size_t n = (size_t)p->n;
  for (int i = 0; i < batch; i++) {
    const float *row = y + (size_t)i * n;
    const float *m = masks ? masks + (size_t)i * n : NULL;
    if (logp)
      logp[i] = (float)space_row_logp(p, row, ls, m,
                                      actions + (size_t)i * (size_t)p->width);
    if (entropy) entropy[i] = (float)space_row_entropy(p, row, ls, m);
  }
  return MRL_OK;
}

int space_kl(mrl_policy *p, const float *params_old, const float *params_new,
             const float *obs, const float *masks, int batch, float *kl,
             double *mean_kl) {
  int rc = policy_check_params(p, params_old, "params_old");
  if (!rc) rc = policy_check_params(p, params_new, "params_new");
  if (!rc) rc = space_begin(p, obs, masks, batch);
  if (rc) return rc;
  const float *yo = policy_forward(p, params_old, obs, batch, p->acts2);
  const float *yn = policy_forward(p, params_new, obs, batch, p->acts);
  const float *lso = policy_log_std(p, params_old);
  const float *lsn = policy_log_std(p, params_new);
  const size_t n = (size_t)p->n;
  double sum = 0.0;
  for (int i = 0; i < batch; i++) {
    size_t off = (size_t)i * n;
    double k = space_row_kl(p, yo + off, lso, yn + off, lsn,
                            masks ? masks + off : NULL);
    if (kl) kl[i] = (float)k;
    sum += k;
  }
  if (mean_kl) *mean_kl = sum / batch;
  if (!isfinite(sum))
    return policy_fail(p, MRL_ENONFINITE, "kl: the divergence is not finite");
  return MRL_OK;
}

static void space_store(int n, const double *d, float *dy) {
  for (int j = 0; j < n; j++) dy[j] = (float)d[j];
}

int space_grad_weighted_logp(mrl_policy *p, const float *obs,
                             const float *masks, const float *actions,
                             const float *weights, int batch, double scale,
                             double *objective) {
  int rc = space_begin(p, obs, masks, batch);
  if (!rc) rc = space_check_actions(p, actions, masks, batch);
  if (!rc) rc = policy_check_ptr(p, weights, "weights");
  if (!rc) rc = policy_check_finite(p, "weights", weights, (size_t)batch, 1);
  if (!rc && !isfinite(scale))
    rc = policy_fail(p, MRL_ENONFINITE, "scale: not finite");
  if (rc) return rc;
  const int n = p->n;
  const float *y = policy_forward(p, NULL, obs, batch, p->acts);
  const float *ls = policy_log_std(p, NULL);
  double *dout = p->row, *dls_sum = p->row + 2 * n;
  double obj = 0.0;
  for (int j = 0; j < p->nls; j++) dls_sum[j] = 0.0;
  for (int i = 0; i < batch; i++) {
    const size_t off = (size_t)i * (size_t)n;
    const float *a = actions + (size_t)i * (size_t)p->width;
    const float *m = masks ? masks + off : NULL;
    const double w = (double)weights[i] * scale;
    obj += w * space_row_logp(p, y + off, ls, m, a);
    for (int j = 0; j < n; j++) dout[j] = 0.0;
    space_row_dlogp_add(p, y + off, ls, m, a, w, dout, dls_sum);
    space_store(n, dout, p->dy + off);
  }
  policy_backward_set(p, NULL, obs, batch, p->acts, dls_sum, p->grad);
  if (objective) *objective = obj;
  if (!isfinite(obj))
    return policy_fail(p, MRL_ENONFINITE, "objective: not finite");
  return policy_check_grad(p);
}

/* The checks of a surrogate loss, masks and their actions included. */
static int space_check_pg(mrl_policy *p, const float *obs, const float *masks,
                          const float *actions, const float *old_logp,
                          const float *advantages, int batch) {
  int rc = policy_check_pg_inputs(p, obs, actions, old_logp, advantages,
                                  batch);
  if (!rc && masks) rc = space_check_masks(p, masks, batch);
  if (!rc && masks) rc = space_check_actions(p, actions, masks, batch);
  return rc;
}

int space_ppo_loss(mrl_policy *p, const float *obs, const float *masks,
                   const float *actions, const float *old_logp,
                   const float *advantages, int batch,
                   const mrl_ppo_opts *opts, mrl_ppo_stats *stats) {
  int rc = policy_check_ptr(p, opts, "opts");
  if (!rc) rc = space_check_pg(p, obs, masks, actions, old_logp, advantages,
                               batch);
  if (rc) return rc;
  double amean, ascale;
  if ((rc = policy_ppo_setup(p, opts, advantages, batch, &amean, &ascale))) return rc;

  const int n = p->n;
  const double eps = opts->clip_eps, inv_n = 1.0 / batch;
  const float *y = policy_forward(p, NULL, obs, batch, p->acts);
  const float *ls = policy_log_std(p, NULL);
  double *dout = p->row, *dls_sum = p->row + 2 * n;
  double ent = 0.0, acc[3] = {0.0, 0.0, 0.0};
  for (int j = 0; j < p->nls; j++) dls_sum[j] = 0.0;
  const double we = -opts->ent_coef * inv_n;
  for (int i = 0; i < batch; i++) {
    const size_t off = (size_t)i * (size_t)n;
    const float *z = y + off, *m = masks ? masks + off : NULL;
    const float *a = actions + (size_t)i * (size_t)p->width;
    const double adv = ((double)advantages[i] - amean) * ascale;
    const double lr = space_row_logp(p, z, ls, m, a) - (double)old_logp[i];
    const double g = policy_ppo_row(lr, adv, eps, acc);
    ent += space_row_entropy(p, z, ls, m);
    for (int j = 0; j < n; j++) dout[j] = 0.0;
    space_row_dlogp_add(p, z, ls, m, a, -g * inv_n, dout, dls_sum);
    if (opts->ent_coef != 0.0)
      space_row_dentropy_add(p, z, m, we, dout, dls_sum);
    space_store(n, dout, p->dy + off);
  }
  policy_backward_set(p, NULL, obs, batch, p->acts, dls_sum, p->grad);

  return policy_ppo_finish(p, opts, acc, ent, batch, stats);
}

int space_kl_penalty_loss(mrl_policy *p, const float *params_old,
                          const float *obs, const float *masks,
                          const float *actions, const float *old_logp,
                          const float *advantages, int batch, double beta,
                          double *loss, double *mean_kl) {
  int rc = policy_check_params(p, params_old, "params_old");
  if (!rc) rc = space_check_pg(p, obs, masks, actions, old_logp, advantages,
                               batch);
  if (rc) return rc;
  if (!isfinite(beta) || beta < 0)
    return policy_fail(p, MRL_EINVAL,
                       "beta: expected a finite value >= 0, got %g", beta);

  const int n = p->n;
  const double inv_n = 1.0 / batch;
  const float *yo = policy_forward(p, params_old, obs, batch, p->acts2);
  const float *y = policy_forward(p, NULL, obs, batch, p->acts);
  const float *lso = policy_log_std(p, params_old);
  const float *ls = policy_log_std(p, NULL);
  double *dout = p->row, *dls_sum = p->row + 2 * n;
  double surr = 0.0, kl = 0.0;
  for (int j = 0; j < p->nls; j++) dls_sum[j] = 0.0;
  for (int i = 0; i < batch; i++) {
    const size_t off = (size_t)i * (size_t)n;
    const float *m = masks ? masks + off : NULL;
    const float *a = actions + (size_t)i * (size_t)p->width;
    const double adv = advantages[i];
    const double rho =
        exp(space_row_logp(p, y + off, ls, m, a) - (double)old_logp[i]);
    surr += rho * adv;
    kl += space_row_kl(p, yo + off, lso, y + off, ls, m);
    for (int j = 0; j < n; j++) dout[j] = 0.0;
    space_row_dlogp_add(p, y + off, ls, m, a, -rho * adv * inv_n, dout,
                        dls_sum);
    space_row_dkl_add(p, yo + off, lso, y + off, ls, m, beta * inv_n, dout,
                      dls_sum);
    space_store(n, dout, p->dy + off);
  }
  policy_backward_set(p, NULL, obs, batch, p->acts, dls_sum, p->grad);

  const double l = -(surr * inv_n - beta * kl * inv_n);
  if (loss) *loss = l;
  if (mean_kl) *mean_kl = kl * inv_n;
  if (!isfinite(l)) return policy_fail(p, MRL_ENONFINITE, "loss: not finite");
  return policy_check_grad(p);
}
