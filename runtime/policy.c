/*
** policy.c — the mrl_policy handle: a network over observations, a
** distribution over its outputs (dist.h), and the losses whose gradients
** drive every trainer.
**
** Each loss works in two steps: per row, the derivative of the loss with
** respect to the network outputs (and log_std) is formed in double; then a
** single mlp_backward over the whole batch turns the output derivatives into
** parameter gradients.  Losses SET the grad buffer.
*/
#include <math.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "dist.h"
#include "errmsg.h"
#include "finite_row.h"
#include "mlp_packed.h"
#include "policy_impl.h"
#include "worker.h"

/* ------------------------------------------------------------ messages */

static void policy_vset(mrl_policy *p, const char *fmt, va_list ap) {
  vsnprintf(p->err, sizeof p->err, fmt, ap);
}

int policy_fail(mrl_policy *p, int status, const char *fmt, ...) {
  va_list ap;
  va_start(ap, fmt);
  policy_vset(p, fmt, ap);
  va_end(ap);
  return status;
}

void mrl_policy_set_error_(mrl_policy *p, const char *fmt, ...) {
  va_list ap;
  va_start(ap, fmt);
  policy_vset(p, fmt, ap);
  va_end(ap);
}

const char *mrl_policy_error(const mrl_policy *p) {
  return p ? p->err : "policy: NULL handle";
}

/* ------------------------------------------------------------ checks */

int policy_check_batch(mrl_policy *p, int batch) {
  if (batch < 1)
    return policy_fail(p, MRL_EINVAL, "batch: expected batch >= 1, got %d",
                       batch);
  if (batch > MRL_MAX_BATCH)
    return policy_fail(p, MRL_EINVAL, "batch: %d rows exceeds the limit %d",
                       batch, (int)MRL_MAX_BATCH);
  return MRL_OK;
}

int policy_check_ptr(mrl_policy *p, const void *ptr, const char *name) {
  if (!ptr) return policy_fail(p, MRL_EINVAL, "%s: NULL pointer", name);
  return MRL_OK;
}

int policy_check_finite(mrl_policy *p, const char *name, const float *x,
                        size_t n, int cols) {
  if (mrl_all_finite(x, n)) return MRL_OK;
  for (size_t i = 0; i < n; i++) {
    if (isfinite(x[i])) continue;
    const char *what = isnan(x[i]) ? "NaN" : "Inf";
    if (cols > 1)
      return policy_fail(p, MRL_ENONFINITE, "%s: %s at row %zu, column %zu",
                         name, what, i / (size_t)cols, i % (size_t)cols);
    return policy_fail(p, MRL_ENONFINITE, "%s: %s at index %zu", name, what,
                       i);
  }
  return MRL_OK;
}

int policy_check_obs(mrl_policy *p, const float *obs, int batch) {
  int rc = policy_check_ptr(p, obs, "obs");
  if (rc) return rc;
  return policy_check_finite(p, "obs", obs,
                             (size_t)batch * (size_t)policy_obs_dim(p),
                             policy_obs_dim(p));
}

int policy_check_actions(mrl_policy *p, const float *actions, int batch) {
  int rc = policy_check_ptr(p, actions, "actions");
  if (rc) return rc;
  if (p->kind == MRL_COMPOSITE)
    return space_check_actions(p, actions, NULL, batch);
  if (p->kind == MRL_BOX)
    return policy_check_finite(p, "actions", actions,
                               (size_t)batch * (size_t)p->n, p->n);
  for (int i = 0; i < batch; i++) {
    float a = actions[i];
    /* The comparisons are false for NaN, so it lands here too. */
    if (!(a >= 0.0f && a < (float)p->n && a == floorf(a)))
      return policy_fail(p, MRL_EINVAL,
                         "actions: row %d is %g, expected an integer in "
                         "[0, %d)",
                         i, (double)a, p->n);
  }
  return MRL_OK;
}

int policy_check_params(mrl_policy *p, const float *params, const char *name) {
  if (!params) return MRL_OK;
  return policy_check_finite(p, name, params, p->nparams, 1);
}

/* ------------------------------------------------------------ memory */

/* n·size bytes, or NULL on overflow or failure. */
static void *policy_alloc(size_t n, size_t size) {
  if (n == 0) n = 1;
  if (n > (size_t)-1 / size) return NULL;
  return malloc(n * size);
}

int policy_reserve(mrl_policy *p, int batch) {
  if (batch <= p->cap) return MRL_OK;
  size_t rows = (size_t)batch;
  /* aligned like the parameters: the kernels load these as whole vectors */
  float *acts = mlp_alloc_floats(policy_body_acts_floats(p, batch));
  float *acts2 = mlp_alloc_floats(policy_body_acts_floats(p, batch));
  float *scratch = mlp_alloc_floats(policy_body_scratch_floats(p, batch));
  float *dy = mlp_alloc_floats(rows * (size_t)p->n);
  float *jy = mlp_alloc_floats(rows * (size_t)p->n);
  if (!acts || !acts2 || !scratch || !dy || !jy) {
    free(acts);
    free(acts2);
    free(scratch);
    free(dy);
    free(jy);
    return policy_fail(p, MRL_ENOMEM,
                       "out of memory growing the workspace to %d rows",
                       batch);
  }
  free(p->acts);
  free(p->acts2);
  free(p->scratch);
  free(p->dy);
  free(p->jy);
  p->acts = acts;
  p->acts2 = acts2;
  p->scratch = scratch;
  p->dy = dy;
  p->jy = jy;
  p->cap = batch;
  return MRL_OK;
}

int policy_reserve_tr(mrl_policy *p) {
  if (p->tr_x) return MRL_OK;
  size_t n = p->nparams;
  double *x = policy_alloc(n, sizeof(double));
  double *r = policy_alloc(n, sizeof(double));
  double *pd = policy_alloc(n, sizeof(double));
  float *pf = policy_alloc(n, sizeof(float));
  float *apf = policy_alloc(n, sizeof(float));
  float *g = policy_alloc(n, sizeof(float));
  float *trial = policy_alloc(n, sizeof(float));
  if (!x || !r || !pd || !pf || !apf || !g || !trial) {
    free(x);
    free(r);
    free(pd);
    free(pf);
    free(apf);
    free(g);
    free(trial);
    return policy_fail(p, MRL_ENOMEM,
                       "out of memory for trust-region vectors (%zu params)",
                       n);
  }
  p->tr_x = x;
  p->tr_r = r;
  p->tr_p = pd;
  p->tr_pf = pf;
  p->tr_apf = apf;
  p->tr_g = g;
  p->tr_trial = trial;
  return MRL_OK;
}

/* ------------------------------------------------------------ lifecycle */

static float *policy_copy_bound(const float *src, int n) {
  float *b = policy_alloc((size_t)n, sizeof(float));
  if (b) memcpy(b, src, (size_t)n * sizeof(float));
  return b;
}

int mrl_policy_new(mrl_policy **out, const mrl_policy_spec *spec) {
  if (!out) return MRL_EINVAL;
  *out = NULL;
  if (mrl_policy_spec_check(spec, NULL, 0)) return MRL_EINVAL;

  mrl_policy *p = calloc(1, sizeof *p);
  if (!p) return MRL_ENOMEM;
  /* the parts give n, width and nls */
  int rc = space_init(p, spec);
  if (!rc)
    rc = policy_body_init(p, spec, p->n);
  if (rc) {
    mrl_policy_free(p);
    return rc;
  }
  p->nnet = p->conv.nparams + p->shape.nparams;
  p->nparams = p->nnet + (size_t)p->nls;

  rc = MRL_ENOMEM;
  p->params = mlp_alloc_floats(p->nparams);
  p->grad = mlp_alloc_floats(p->nparams);
  p->row = policy_alloc(4 * (size_t)p->n, sizeof(double));
  if (!p->params || !p->grad || !p->row) goto fail;
  if (p->kind == MRL_BOX && spec->low &&
      !(p->low = policy_copy_bound(spec->low, p->n)))
    goto fail;
  if (p->kind == MRL_BOX && spec->high &&
      !(p->high = policy_copy_bound(spec->high, p->n)))
    goto fail;
  /* One row of workspace up front: act at batch 1 then never allocates. */
  if (policy_reserve(p, 1)) goto fail;

  rng_seed(&p->rng, spec->seed);
  rc = policy_body_init_params(p, spec->out_gain);
  if (rc) goto fail;
  for (size_t i = p->nnet; i < p->nparams; i++)
    p->params[i] = (float)spec->init_log_std;
  p->err[0] = '\0';
  *out = p;
  return MRL_OK;

fail:
  mrl_policy_free(p);
  return rc;
}

int mrl_policy_clone(mrl_policy **out, const mrl_policy *src) {
  if (!out) return MRL_EINVAL;
  *out = NULL;
  if (!src) return MRL_EINVAL;
  mrl_policy *p = calloc(1, sizeof *p);
  if (!p) return MRL_ENOMEM;
  p->shape = src->shape;  /* the same kernel variant, so the same bits */
  p->conv = src->conv;
  if (space_copy(p, src)) {
    free(p);
    return MRL_ENOMEM;
  }
  p->nnet = src->nnet;
  p->nparams = src->nparams;
  p->rng = src->rng;
  p->params = mlp_alloc_floats(p->nparams);
  p->grad = mlp_alloc_floats(p->nparams);
  p->row = policy_alloc(4 * (size_t)p->n, sizeof(double));
  if (!p->params || !p->grad || !p->row ||
      (src->low && !(p->low = policy_copy_bound(src->low, p->n))) ||
      (src->high && !(p->high = policy_copy_bound(src->high, p->n))) ||
      policy_reserve(p, 1)) {
    mrl_policy_free(p);
    return MRL_ENOMEM;
  }
  memcpy(p->params, src->params, p->nparams * sizeof(float));
  *out = p;
  return MRL_OK;
}

struct worker *policy_worker(mrl_policy *p) {
  if (p->solo) return NULL;
  if (!p->worker) p->worker = worker_new();
  return p->worker;
}

void mrl_policy_free(mrl_policy *p) {
  if (!p) return;
  worker_free(p->worker);
  free(p->parts);
  free(p->params);
  free(p->grad);
  free(p->low);
  free(p->high);
  free(p->acts);
  free(p->acts2);
  free(p->scratch);
  free(p->dy);
  free(p->jy);
  free(p->row);
  free(p->tr_x);
  free(p->tr_r);
  free(p->tr_p);
  free(p->tr_pf);
  free(p->tr_apf);
  free(p->tr_g);
  free(p->tr_trial);
  free(p);
}

/* ------------------------------------------------------------ accessors */

int mrl_policy_obs_dim(const mrl_policy *p) { return policy_obs_dim(p); }
mrl_action_kind mrl_policy_action_kind(const mrl_policy *p) { return p->kind; }
int mrl_policy_action_n(const mrl_policy *p) { return p->n; }
int mrl_policy_action_width(const mrl_policy *p) { return p->width; }
int mrl_policy_out_dim(const mrl_policy *p) { return p->n; }
int mrl_policy_nparts(const mrl_policy *p) { return p->nparts; }
mrl_action_part mrl_policy_part(const mrl_policy *p, int i) {
  mrl_action_part a = {MRL_PART_CATEGORICAL, 0};
  if (i < 0 || i >= p->nparts) return a;
  a.type = (mrl_part_type)p->parts[i].type;
  a.n = p->parts[i].n;
  return a;
}
int mrl_policy_maskable(const mrl_policy *p) { return p->maskable; }
int mrl_policy_nhidden(const mrl_policy *p) { return p->shape.nlayers - 1; }
int mrl_policy_hidden(const mrl_policy *p, int i) {
  if (i < 0 || i >= p->shape.nlayers - 1) return 0;
  return p->shape.dims[i + 1];
}
mrl_activation mrl_policy_activation(const mrl_policy *p) {
  return p->shape.act;
}
const float *mrl_policy_low(const mrl_policy *p) { return p->low; }
const float *mrl_policy_high(const mrl_policy *p) { return p->high; }
size_t mrl_policy_nparams(const mrl_policy *p) { return p->nparams; }
float *mrl_policy_params(mrl_policy *p) { return p->params; }
float *mrl_policy_grad(mrl_policy *p) { return p->grad; }
mrl_rng *mrl_policy_rng(mrl_policy *p) { return &p->rng; }

int mrl_policy_get_params(const mrl_policy *p, float *out, size_t n) {
  if (!p) return MRL_EINVAL;
  mrl_policy *mp = (mrl_policy *)p; /* only the message buffer is written */
  if (!out) return policy_fail(mp, MRL_EINVAL, "out: NULL pointer");
  if (n != p->nparams)
    return policy_fail(mp, MRL_EINVAL, "n: expected %zu parameters, got %zu",
                       p->nparams, n);
  memcpy(out, p->params, n * sizeof(float));
  return MRL_OK;
}

int mrl_policy_set_params(mrl_policy *p, const float *in, size_t n) {
  if (!p) return MRL_EINVAL;
  int rc = policy_check_ptr(p, in, "params");
  if (rc) return rc;
  if (n != p->nparams)
    return policy_fail(p, MRL_EINVAL, "n: expected %zu parameters, got %zu",
                       p->nparams, n);
  if ((rc = policy_check_finite(p, "params", in, n, 1))) return rc;
  memmove(p->params, in, n * sizeof(float));
  return MRL_OK;
}

/* ------------------------------------------------------------ row helpers */

const float *policy_forward(mrl_policy *p, const float *params,
                            const float *obs, int batch, float *acts) {
  policy_body_forward(p, params ? params : p->params, obs, batch, acts);
  return mlp_output(&p->shape, acts, batch);
}

const float *policy_log_std(const mrl_policy *p, const float *params) {
  if (!p->nls) return NULL;
  return (params ? params : p->params) + p->nnet;
}

double policy_row_logp(const mrl_policy *p, const float *out,
                       const float *log_std, const float *action) {
  if (p->kind == MRL_BOX) return dist_gauss_logp(out, log_std, action, p->n);
  return dist_cat_logp(out, p->n, (int)action[0]);
}

static double policy_row_entropy(const mrl_policy *p, const float *out,
                                 const float *log_std) {
  if (p->kind == MRL_BOX) return dist_gauss_entropy(log_std, p->n);
  return dist_cat_entropy(out, p->n);
}

static double policy_row_kl(const mrl_policy *p, const float *out_old,
                            const float *ls_old, const float *out_new,
                            const float *ls_new) {
  if (p->kind == MRL_BOX)
    return dist_gauss_kl(out_old, ls_old, out_new, ls_new, p->n);
  return dist_cat_kl(out_old, out_new, p->n);
}

void policy_row_dlogp_add(const mrl_policy *p, const float *out,
                          const float *log_std, const float *action, double w,
                          double *dout, double *dls) {
  if (p->kind == MRL_BOX)
    dist_gauss_dlogp_add(out, log_std, action, p->n, w, dout, dls);
  else
    dist_cat_dlogp_add(out, p->n, (int)action[0], w, dout);
}

static void policy_row_store(const mrl_policy *p, const double *d, float *dy) {
  for (int j = 0; j < p->n; j++) dy[j] = (float)d[j];
}

void policy_backward_set(mrl_policy *p, const float *params, const float *obs,
                         int batch, const float *acts, const double *dls,
                         float *grad) {
  memset(grad, 0, p->nnet * sizeof(float));
  policy_body_backward(p, params ? params : p->params, obs, acts, batch,
                       grad);
  for (int j = 0; j < p->nls; j++) grad[p->nnet + (size_t)j] = (float)dls[j];
}

/* The common prologue of a policy call over a batch of observations. */
int policy_begin(mrl_policy *p, const float *obs, int batch) {
  int rc = policy_check_batch(p, batch);
  if (!rc) rc = policy_check_obs(p, obs, batch);
  if (!rc) rc = policy_reserve(p, batch);
  return rc;
}

/* Outputs of the network (and log_std) must be finite: NaN or Inf here means
** a parameter vector went bad after it was set (written through the
** borrowed pointer, or an optimiser step that overflowed). */
int policy_check_out(mrl_policy *p, const float *params,
                            const float *y, int batch) {
  const float *ls = policy_log_std(p, params);
  if (mrl_all_finite(y, (size_t)batch * (size_t)p->n) &&
      (!ls || mrl_all_finite(ls, (size_t)p->nls)))
    return MRL_OK;
  return policy_fail(p, MRL_ENONFINITE,
                     "params: the policy's outputs are not finite (NaN or "
                     "Inf in the parameters?)");
}

int policy_check_grad(mrl_policy *p) {
  if (mrl_all_finite(p->grad, p->nparams)) return MRL_OK;
  return policy_check_finite(p, "grad", p->grad, p->nparams, 1);
}

/* ------------------------------------------------------------ evaluation */

int mrl_policy_forward(mrl_policy *p, const float *params, const float *obs,
                       int batch, float *out) {
  if (!p) return MRL_EINVAL;
  int rc = policy_check_ptr(p, out, "out");
  if (!rc) rc = policy_check_params(p, params, "params");
  if (!rc) rc = policy_begin(p, obs, batch);
  if (rc) return rc;
  const float *y = policy_forward(p, params, obs, batch, p->acts);
  memcpy(out, y, (size_t)batch * (size_t)p->n * sizeof(float));
  return policy_check_out(p, params, y, batch);
}

/* One observation, a few discrete actions: the call a game makes for every
** agent on every frame, without the general path's layers of checks (the
** same checks, inline; anything unusual returns -1 for the general path,
** which also writes the messages). */
static int policy_act1_discrete(mrl_policy *p, const float *obs,
                                int deterministic, float *action,
                                float *logp) {
  const int d = p->shape.dims[0], n = p->n;
  if (!obs || !action || d > 16 || n > 16 || p->conv.nlayers ||
      !finite_row(obs, (size_t)d))
    return -1;
  /* two actions: the uniform and its cut first, so they run in the shadow
  ** of the network (the general path, on a bad output, draws its own) */
  const mrl_rng rng = p->rng;
  const double cut = !deterministic && n == 2 ? dist_cat2_cut(rng_uniform(&p->rng)) : 0.0;
  const float *z = mlp_forward1(&p->shape, p->params, obs, p->acts);
  if (!finite_row(z, (size_t)n)) {
    p->rng = rng;
    return -1;
  }
  double lp = 0.0;
  int a;
  if (deterministic) {
    a = dist_cat_mode(z, n);
    if (logp) lp = dist_cat_logp(z, n, a);
  } else if (n == 2) {
    a = dist_cat2_draw(z, cut, logp ? &lp : NULL);
  } else {
    a = dist_cat_sample_logp(z, n, rng_uniform(&p->rng), logp ? &lp : NULL);
  }
  *action = (float)a;
  if (logp) *logp = (float)lp;
  return MRL_OK;
}

/* wt: a transposed copy of the current weights (mlp_packed.h), or NULL */
static int policy_act_core(mrl_policy *p, const float *wt, const float *obs,
                           int batch, int deterministic, float *actions,
                           float *logp) {
  if (!p) return MRL_EINVAL;
  if (batch == 1 && !wt && p->kind == MRL_DISCRETE &&
      policy_act1_discrete(p, obs, deterministic, actions, logp) == MRL_OK)
    return MRL_OK;
  if (p->kind == MRL_COMPOSITE)
    return space_act(p, wt, obs, NULL, batch, deterministic, actions, logp);
  int rc = policy_check_ptr(p, actions, "actions");
  if (!rc) rc = policy_begin(p, obs, batch);
  if (rc) return rc;
  const int n = p->n;
  const float *y;
  if (wt) {
    mlp_forward_wt(&p->shape, p->params, wt, obs, batch, p->acts);
    y = mlp_output(&p->shape, p->acts, batch);
  } else {
    y = policy_forward(p, NULL, obs, batch, p->acts);
  }
  if ((rc = policy_check_out(p, NULL, y, batch))) return rc;
  if (p->kind == MRL_DISCRETE) {
    for (int i = 0; i < batch; i++) {
      const float *z = y + (size_t)i * (size_t)n;
      double lp;
      int a;
      if (deterministic) {
        a = dist_cat_mode(z, n);
        lp = logp ? dist_cat_logp(z, n, a) : 0.0;
      } else {
        a = dist_cat_sample_logp(z, n, rng_uniform(&p->rng), &lp);
      }
      actions[i] = (float)a;
      if (logp) logp[i] = (float)lp;
    }
    return MRL_OK;
  }
  const float *ls = p->params + p->nnet;
  double *eps = p->row;
  for (int i = 0; i < batch; i++) {
    const float *mu = y + (size_t)i * (size_t)n;
    float *a = actions + (size_t)i * (size_t)n;
    if (deterministic) {
      memcpy(a, mu, (size_t)n * sizeof(float));
    } else {
      for (int j = 0; j < n; j++) eps[j] = rng_normal(&p->rng);
      dist_gauss_sample(mu, ls, n, eps, a);
    }
    /* logp of the stored float action, so evaluate() reproduces it. */
    if (logp) logp[i] = (float)dist_gauss_logp(mu, ls, a, n);
  }
  return MRL_OK;
}

int mrl_policy_act(mrl_policy *p, const float *obs, int batch,
                   int deterministic, float *actions, float *logp) {
  return policy_act_core(p, NULL, obs, batch, deterministic, actions, logp);
}

int mrl_policy_act_masked(mrl_policy *p, const float *obs, const float *masks,
                          int batch, int deterministic, float *actions,
                          float *logp) {
  if (!masks) return mrl_policy_act(p, obs, batch, deterministic, actions, logp);
  if (!p) return MRL_EINVAL;
  return space_act(p, NULL, obs, masks, batch, deterministic, actions, logp);
}

size_t policy_wt_floats(const mrl_policy *p) { return p->shape.nparams; }

void policy_pack_wt(const mrl_policy *p, float *wt) {
  /* a conv body's MLP starts past its parameters: acting skips the copy */
  if (p->conv.nlayers) return;
  mlp_pack_wt(&p->shape, p->params, wt);
}

int policy_act_wt(mrl_policy *p, const float *wt, const float *obs, int batch,
                  float *actions, float *logp) {
  /* no transposed copy of a conv body's weights (policy_pack_wt) */
  return policy_act_core(p, p->conv.nlayers ? NULL : wt, obs, batch, 0,
                         actions, logp);
}

int mrl_policy_evaluate(mrl_policy *p, const float *params, const float *obs,
                        const float *actions, int batch, float *logp,
                        float *entropy) {
  if (!p) return MRL_EINVAL;
  if (p->kind == MRL_COMPOSITE)
    return space_evaluate(p, params, obs, NULL, actions, batch, logp, entropy);
  int rc = policy_check_params(p, params, "params");
  if (!rc) rc = policy_begin(p, obs, batch);
  if (!rc && logp) rc = policy_check_actions(p, actions, batch);
  if (rc) return rc;
  const float *y = policy_forward(p, params, obs, batch, p->acts);
  const float *ls = policy_log_std(p, params);
  if ((rc = policy_check_out(p, params, y, batch))) return rc;
  for (int i = 0; i < batch; i++) {
    const float *row = y + (size_t)i * (size_t)p->n;
    if (logp)
      logp[i] = (float)policy_row_logp(
          p, row, ls, actions + (size_t)i * (size_t)p->width);
    if (entropy) entropy[i] = (float)policy_row_entropy(p, row, ls);
  }
  return MRL_OK;
}

int mrl_policy_evaluate_masked(mrl_policy *p, const float *params,
                               const float *obs, const float *masks,
                               const float *actions, int batch, float *logp,
                               float *entropy) {
  if (!p) return MRL_EINVAL;
  if (!masks && p->kind != MRL_COMPOSITE)
    return mrl_policy_evaluate(p, params, obs, actions, batch, logp, entropy);
  return space_evaluate(p, params, obs, masks, actions, batch, logp, entropy);
}

int mrl_policy_kl_masked(mrl_policy *p, const float *params_old,
                         const float *params_new, const float *obs,
                         const float *masks, int batch, float *kl,
                         double *mean_kl) {
  if (!p) return MRL_EINVAL;
  if (!masks && p->kind != MRL_COMPOSITE)
    return mrl_policy_kl(p, params_old, params_new, obs, batch, kl, mean_kl);
  return space_kl(p, params_old, params_new, obs, masks, batch, kl, mean_kl);
}

int mrl_policy_kl(mrl_policy *p, const float *params_old,
                  const float *params_new, const float *obs, int batch,
                  float *kl, double *mean_kl) {
  if (!p) return MRL_EINVAL;
  if (p->kind == MRL_COMPOSITE)
    return space_kl(p, params_old, params_new, obs, NULL, batch, kl, mean_kl);
  int rc = policy_check_params(p, params_old, "params_old");
  if (!rc) rc = policy_check_params(p, params_new, "params_new");
  if (!rc) rc = policy_begin(p, obs, batch);
  if (rc) return rc;
  const float *yo = policy_forward(p, params_old, obs, batch, p->acts2);
  const float *yn = policy_forward(p, params_new, obs, batch, p->acts);
  const float *lso = policy_log_std(p, params_old);
  const float *lsn = policy_log_std(p, params_new);
  double sum = 0.0;
  for (int i = 0; i < batch; i++) {
    size_t off = (size_t)i * (size_t)p->n;
    double k = policy_row_kl(p, yo + off, lso, yn + off, lsn);
    if (kl) kl[i] = (float)k;
    sum += k;
  }
  if (mean_kl) *mean_kl = sum / batch;
  if (!isfinite(sum))
    return policy_fail(p, MRL_ENONFINITE, "kl: the divergence is not finite");
  return MRL_OK;
}

/* ------------------------------------------------------------ losses */

int mrl_policy_grad_weighted_logp(mrl_policy *p, const float *obs,
                                  const float *actions, const float *weights,
                                  int batch, double scale, double *objective) {
  if (!p) return MRL_EINVAL;
  if (p->kind == MRL_COMPOSITE)
    return space_grad_weighted_logp(p, obs, NULL, actions, weights, batch,
                                    scale, objective);
  int rc = policy_begin(p, obs, batch);
  if (!rc) rc = policy_check_actions(p, actions, batch);
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
  for (int j = 0; j < n; j++) dls_sum[j] = 0.0;
  for (int i = 0; i < batch; i++) {
    const float *z = y + (size_t)i * (size_t)n;
    const float *a = actions + (size_t)i * (size_t)p->width;
    double w = (double)weights[i] * scale;
    obj += w * policy_row_logp(p, z, ls, a);
    for (int j = 0; j < n; j++) dout[j] = 0.0;
    policy_row_dlogp_add(p, z, ls, a, w, dout, dls_sum);
    policy_row_store(p, dout, p->dy + (size_t)i * (size_t)n);
  }
  policy_backward_set(p, NULL, obs, batch, p->acts, dls_sum, p->grad);
  if (objective) *objective = obj;
  if (!isfinite(obj))
    return policy_fail(p, MRL_ENONFINITE, "objective: not finite");
  return policy_check_grad(p);
}

int mrl_policy_grad_weighted_logp_masked(mrl_policy *p, const float *obs,
                                         const float *masks,
                                         const float *actions,
                                         const float *weights, int batch,
                                         double scale, double *objective) {
  if (!p) return MRL_EINVAL;
  if (!masks && p->kind != MRL_COMPOSITE)
    return mrl_policy_grad_weighted_logp(p, obs, actions, weights, batch,
                                         scale, objective);
  return space_grad_weighted_logp(p, obs, masks, actions, weights, batch,
                                  scale, objective);
}

/* Mean and sample (N−1) standard deviation, in double. */
void policy_mean_std(const float *x, int n, double *mean, double *std) {
  double m = 0.0, v = 0.0;
  for (int i = 0; i < n; i++) m += x[i];
  m /= n;
  for (int i = 0; i < n; i++) v += ((double)x[i] - m) * ((double)x[i] - m);
  *mean = m;
  *std = n > 1 ? sqrt(v / (n - 1)) : 0.0;
}

int policy_check_pg_inputs(mrl_policy *p, const float *obs,
                           const float *actions, const float *old_logp,
                           const float *advantages, int batch) {
  int rc = policy_begin(p, obs, batch);
  if (!rc) rc = policy_check_actions(p, actions, batch);
  if (!rc) rc = policy_check_ptr(p, old_logp, "old_logp");
  if (!rc) rc = policy_check_finite(p, "old_logp", old_logp, (size_t)batch, 1);
  if (!rc) rc = policy_check_ptr(p, advantages, "advantages");
  if (!rc)
    rc = policy_check_finite(p, "advantages", advantages, (size_t)batch, 1);
  return rc;
}

int policy_ppo_setup(mrl_policy *p, const mrl_ppo_opts *opts, const float *advantages,
                     int batch, double *amean, double *ascale) {
  if (!(opts->clip_eps >= 0.0) || !isfinite(opts->clip_eps))
    return policy_fail(p, MRL_EINVAL, "clip_eps: expected a finite value >= 0");
  if (!isfinite(opts->ent_coef))
    return policy_fail(p, MRL_EINVAL, "ent_coef: not finite");
  *amean = 0.0;
  *ascale = 1.0;
  if (opts->normalize_advantages) {
    double sd;
    policy_mean_std(advantages, batch, amean, &sd);
    *ascale = 1.0 / (sd + 1e-8);
  }
  return MRL_OK;
}

int policy_ppo_finish(mrl_policy *p, const mrl_ppo_opts *opts, const double acc[3],
                      double ent, int batch, mrl_ppo_stats *stats) {
  const double inv_n = 1.0 / batch;
  mrl_ppo_stats st;
  st.policy_loss = -acc[0] * inv_n;
  st.entropy = ent * inv_n;
  st.loss = st.policy_loss - opts->ent_coef * st.entropy;
  st.clip_fraction = acc[1] * inv_n;
  st.approx_kl = acc[2] * inv_n;
  if (stats) *stats = st;
  if (!isfinite(st.loss) || !isfinite(st.approx_kl))
    return policy_fail(p, MRL_ENONFINITE, "loss: not finite");
  return policy_check_grad(p);
}

int mrl_policy_ppo_loss(mrl_policy *p, const float *obs, const float *actions,
                        const float *old_logp, const float *advantages,
                        int batch, const mrl_ppo_opts *opts,
                        mrl_ppo_stats *stats) {
  if (!p) return MRL_EINVAL;
  if (p->kind == MRL_COMPOSITE)
    return space_ppo_loss(p, obs, NULL, actions, old_logp, advantages, batch,
                          opts, stats);
  int rc = policy_check_ptr(p, opts, "opts");
  if (!rc) rc = policy_check_pg_inputs(p, obs, actions, old_logp, advantages,
                                       batch);
  if (rc) return rc;
  double amean, ascale;
  if ((rc = policy_ppo_setup(p, opts, advantages, batch, &amean, &ascale))) return rc;

  const int n = p->n;
  const double eps = opts->clip_eps, inv_n = 1.0 / batch;

  const float *y = policy_forward(p, NULL, obs, batch, p->acts);
  const float *ls = policy_log_std(p, NULL);
  double *dout = p->row, *dls_sum = p->row + 2 * n;
  double ent = 0.0, acc[3] = {0.0, 0.0, 0.0}; /* surrogate, clipped, approx kl */
  for (int j = 0; j < n; j++) dls_sum[j] = 0.0;
  /* discrete: log-probabilities, probabilities and entropy of a row in one
  ** pass, shared by the ratio, the entropy and both derivatives */
  double *lp = p->row + n, *pr = p->row + 3 * n;
  const int disc = p->kind == MRL_DISCRETE;
  for (int i = 0; i < batch; i++) {
    const float *z = y + (size_t)i * (size_t)n;
    const float *a = actions + (size_t)i * (size_t)p->width;
    double adv = ((double)advantages[i] - amean) * ascale;
    double h = disc ? dist_cat_row(z, n, lp, pr) : policy_row_entropy(p, z, ls);
    double lr = (disc ? lp[(int)a[0]] : policy_row_logp(p, z, ls, a)) -
                (double)old_logp[i];
    double g = policy_ppo_row(lr, adv, eps, acc);
    ent += h;

    const double wg = -g * inv_n, we = -opts->ent_coef * inv_n;
    if (disc) {
      /* w·(1[j=a] − p_j) − w_H·p_j(log p_j + H), as dist_cat_dlogp_add and
      ** dist_cat_dentropy_add, from the row computed above */
      float *dy = p->dy + (size_t)i * (size_t)n;
      const int ai = (int)a[0];
      for (int j = 0; j < n; j++)
        dy[j] = (float)(-wg * pr[j] + (j == ai ? wg : 0.0) -
                        we * pr[j] * (lp[j] + h));
      continue;
    }
    for (int j = 0; j < n; j++) dout[j] = 0.0;
    policy_row_dlogp_add(p, z, ls, a, wg, dout, dls_sum);
    if (opts->ent_coef != 0.0) dist_gauss_dentropy_add(n, we, dls_sum);
    policy_row_store(p, dout, p->dy + (size_t)i * (size_t)n);
  }
  policy_backward_set(p, NULL, obs, batch, p->acts, dls_sum, p->grad);

  return policy_ppo_finish(p, opts, acc, ent, batch, stats);
}

int mrl_policy_ppo_loss_masked(mrl_policy *p, const float *obs,
                               const float *masks, const float *actions,
                               const float *old_logp, const float *advantages,
                               int batch, const mrl_ppo_opts *opts,
                               mrl_ppo_stats *stats) {
  if (!p) return MRL_EINVAL;
  if (!masks && p->kind != MRL_COMPOSITE)
    return mrl_policy_ppo_loss(p, obs, actions, old_logp, advantages, batch,
                               opts, stats);
  return space_ppo_loss(p, obs, masks, actions, old_logp, advantages, batch,
                        opts, stats);
}

int mrl_policy_kl_penalty_loss_masked(mrl_policy *p, const float *params_old,
                                      const float *obs, const float *masks,
                                      const float *actions,
                                      const float *old_logp,
                                      const float *advantages, int batch,
                                      double beta, double *loss,
                                      double *mean_kl) {
  if (!p) return MRL_EINVAL;
  if (!masks && p->kind != MRL_COMPOSITE)
    return mrl_policy_kl_penalty_loss(p, params_old, obs, actions, old_logp,
                                      advantages, batch, beta, loss, mean_kl);
  return space_kl_penalty_loss(p, params_old, obs, masks, actions, old_logp,
                               advantages, batch, beta, loss, mean_kl);
}

int mrl_policy_kl_penalty_loss(mrl_policy *p, const float *params_old,
                               const float *obs, const float *actions,
                               const float *old_logp, const float *advantages,
                               int batch, double beta, double *loss,
                               double *mean_kl) {
  if (!p) return MRL_EINVAL;
  if (p->kind == MRL_COMPOSITE)
    return space_kl_penalty_loss(p, params_old, obs, NULL, actions, old_logp,
                                 advantages, batch, beta, loss, mean_kl);
  int rc = policy_check_params(p, params_old, "params_old");
  if (!rc) rc = policy_check_pg_inputs(p, obs, actions, old_logp, advantages,
                                       batch);
  if (rc) return rc;
  if (!isfinite(beta) || beta < 0)
    return policy_fail(p, MRL_EINVAL, "beta: expected a finite value >= 0, got %g", beta);

  const int n = p->n;
  const double inv_n = 1.0 / batch;
  const float *yo = policy_forward(p, params_old, obs, batch, p->acts2);
  const float *y = policy_forward(p, NULL, obs, batch, p->acts);
  const float *lso = policy_log_std(p, params_old);
  const float *ls = policy_log_std(p, NULL);
  double *dout = p->row, *dls_sum = p->row + 2 * n;
  double surr = 0.0, kl = 0.0;
  for (int j = 0; j < n; j++) dls_sum[j] = 0.0;
  for (int i = 0; i < batch; i++) {
    size_t off = (size_t)i * (size_t)n;
    const float *a = actions + (size_t)i * (size_t)p->width;
    double adv = advantages[i];
    double rho = exp(policy_row_logp(p, y + off, ls, a) - (double)old_logp[i]);
    surr += rho * adv;
    kl += policy_row_kl(p, yo + off, lso, y + off, ls);

    for (int j = 0; j < n; j++) dout[j] = 0.0;
    policy_row_dlogp_add(p, y + off, ls, a, -rho * adv * inv_n, dout,
                         dls_sum);
    if (p->kind == MRL_BOX)
      dist_gauss_dkl_add(yo + off, lso, y + off, ls, n, beta * inv_n, dout,
                         dls_sum);
    else
      dist_cat_dkl_add(yo + off, y + off, n, beta * inv_n, dout);
    policy_row_store(p, dout, p->dy + off);
  }
  policy_backward_set(p, NULL, obs, batch, p->acts, dls_sum, p->grad);

  double l = -(surr * inv_n - beta * kl * inv_n);
  if (loss) *loss = l;
  if (mean_kl) *mean_kl = kl * inv_n;
  if (!isfinite(l)) return policy_fail(p, MRL_ENONFINITE, "loss: not finite");
  return policy_check_grad(p);
}

double mrl_kl_beta_update(double beta, double mean_kl, double target_kl) {
  if (mean_kl < target_kl / 1.5) return beta / 2.0;
  if (mean_kl > target_kl * 1.5) return beta * 2.0;
  return beta;
}
