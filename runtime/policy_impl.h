/*
** policy_impl.h — internal: the mrl_policy struct and the helpers that
** policy.c shares with trust_region.c.  Nothing here is public.
**
** Layout of the one parameter block (and, identically, of grad):
**   [0, nnet)          network parameters in the flat order of mlp.h
**   [nnet, nparams)    log_std: nls floats, one slice per gaussian part in
**                      part order (n for a box policy, none when discrete)
*/
#ifndef MRL_POLICY_IMPL_H
#define MRL_POLICY_IMPL_H

#include <math.h>
#include <stddef.h>

#include "conv.h"
#include "mlp.h"
#include "moonrl.h"
#include "rng_impl.h"

/* One part of the action (moonrl.h, mrl_action_part) and its slices. */
typedef struct policy_part {
  int type;             /* mrl_part_type */
  int n;                /* outputs: categories, dimensions or bits */
  int out;              /* first output of the part */
  int act;              /* first float of the part in an action row */
  int ls;               /* first log_std (gaussian parts) */
} policy_part;

struct mrl_policy {
  mlp_shape shape;
  conv_body conv;       /* grid observations; conv.nlayers 0: none, the
                           MLP takes the rows (policy_body.c) */
  mrl_action_kind kind;
  int n;                /* net outputs: categories, Gaussian dimensions, or
                           the sum over the parts */
  int width;            /* floats per stored action: 1 or n, or the parts' */
  policy_part *parts;   /* [nparts], also the one part of a discrete or box
                           policy (the general path, masks, takes them) */
  int nparts;
  int nls;              /* log_std floats */
  int maskable;         /* every part categorical */
  size_t nnet;          /* network parameters */
  size_t nparams;       /* nnet, plus n log_std for a box policy */
  float *params, *grad; /* one block each, nparams floats */
  float *low, *high;    /* box bounds [n], NULL when unbounded */
  mrl_rng rng;          /* initialisation, then sampling */

  /* Batch workspaces, all sized for cap rows; they only grow. */
  int cap;
  float *acts;          /* forward activations at the params being used */
  float *acts2;         /* a second forward (θ_old for a KL, θ' in TRPO) */
  float *scratch;       /* mlp backward / jvp scratch */
  float *dy;            /* [cap][n] d loss / d outputs */
  float *jy;            /* [cap][n] J·v */
  double *row;          /* [4n] per-row derivatives in double */

  /* Trust-region vectors (nparams each), allocated on first use. */
  double *tr_x, *tr_r, *tr_p;
  float *tr_pf, *tr_apf, *tr_g, *tr_trial;

  /* A parked helper thread for updates (worker.h), made on first use. */
  struct worker *worker;
  /* Updates stay on the calling thread (no helper): a background
  ** trainer's copy, which must not take the game's core. */
  int solo;

  /* Cross-process reduction of the trust-region products (NULL: off). */
  mrl_reduce_fn reduce;
  void *reduce_ud;

  char err[256];
};

/* Sets the message and returns status (printf-style). */
int policy_fail(mrl_policy *p, int status, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

/* Argument checks: each fills the message naming `name` and returns a status. */
int policy_check_batch(mrl_policy *p, int batch);
int policy_check_ptr(mrl_policy *p, const void *ptr, const char *name);
/* Every value finite; cols > 1 reports row and column, else the index. */
int policy_check_finite(mrl_policy *p, const char *name, const float *x,
                        size_t n, int cols);
int policy_check_obs(mrl_policy *p, const float *obs, int batch);
int policy_check_actions(mrl_policy *p, const float *actions, int batch);
/* A caller's parameter vector (NULL allowed: the current params). */
int policy_check_params(mrl_policy *p, const float *params, const char *name);

/* Shared with the general path (policy_space.c). */
int policy_begin(mrl_policy *p, const float *obs, int batch);
int policy_check_out(mrl_policy *p, const float *params, const float *y,
                     int batch);
int policy_check_grad(mrl_policy *p);
int policy_check_pg_inputs(mrl_policy *p, const float *obs,
                           const float *actions, const float *old_logp,
                           const float *advantages, int batch);
void policy_mean_std(const float *x, int n, double *mean, double *std);

/* PPO's clipped objective for one row: adds min(ρA, clip(ρ)A), the clip
** indicator and (ρ − 1) − log ρ to acc[0..2]; returns d min/d log π, with
** PyTorch's conventions (the clamp passes the gradient on its closed
** interval, a tie splits it between both sides). */
static inline double policy_ppo_row(double lr, double adv, double eps,
                                    double *acc) {
  const double rho = exp(lr);
  const double rho_c = rho < 1.0 - eps ? 1.0 - eps
                     : (rho > 1.0 + eps ? 1.0 + eps : rho);
  const double s1 = rho * adv, s2 = rho_c * adv;
  const double g1 = rho * adv;
  const double g2 = (rho >= 1.0 - eps && rho <= 1.0 + eps) ? rho * adv : 0.0;
  acc[0] += s1 < s2 ? s1 : s2;
  if (fabs(rho - 1.0) > eps) acc[1] += 1.0;
  acc[2] += (rho - 1.0) - lr;
  return s1 < s2 ? g1 : (s1 > s2 ? g2 : 0.5 * (g1 + g2));
}

/* ------------------------------------------------ the general path
** (policy_space.c): every action kind and masks, one part at a time.
** m (masks) is a row of n floats or NULL; ls the log_std block. */
int space_init(mrl_policy *p, const mrl_policy_spec *spec);
int space_copy(mrl_policy *dst, const mrl_policy *src);
int space_check_masks(mrl_policy *p, const float *masks, int batch);
/* Each part's action values; with masks, each index a valid one. */
int space_check_actions(mrl_policy *p, const float *actions,
                        const float *masks, int batch);
double space_row_logp(const mrl_policy *p, const float *out, const float *ls,
                      const float *m, const float *a);
double space_row_entropy(const mrl_policy *p, const float *out,
                         const float *ls, const float *m);
double space_row_kl(const mrl_policy *p, const float *out_old,
                    const float *ls_old, const float *out_new,
                    const float *ls_new, const float *m);
void space_row_dlogp_add(const mrl_policy *p, const float *out,
                         const float *ls, const float *m, const float *a,
                         double w, double *dout, double *dls);
/* The output-space Fisher of the network outputs (the log_std block is
** 2·I: the caller's). */
void space_row_fisher_add(const mrl_policy *p, const float *out,
                          const float *ls, const float *m, const float *jv,
                          double w, double *dout);
int space_act(mrl_policy *p, const float *wt, const float *obs,
              const float *masks, int batch, int deterministic,
              float *actions, float *logp);
int space_evaluate(mrl_policy *p, const float *params, const float *obs,
                   const float *masks, const float *actions, int batch,
                   float *logp, float *entropy);
int space_kl(mrl_policy *p, const float *params_old, const float *params_new,
             const float *obs, const float *masks, int batch, float *kl,
             double *mean_kl);
int space_grad_weighted_logp(mrl_policy *p, const float *obs,
                             const float *masks, const float *actions,
                             const float *weights, int batch, double scale,
                             double *objective);
int space_ppo_loss(mrl_policy *p, const float *obs, const float *masks,
                   const float *actions, const float *old_logp,
                   const float *advantages, int batch,
                   const mrl_ppo_opts *opts, mrl_ppo_stats *stats);
int space_kl_penalty_loss(mrl_policy *p, const float *params_old,
                          const float *obs, const float *masks,
                          const float *actions, const float *old_logp,
                          const float *advantages, int batch, double beta,
                          double *loss, double *mean_kl);

/* The policy's helper thread, started on the first call; NULL if the OS
** gives none (the caller then does the work itself). */
struct worker *policy_worker(mrl_policy *p);

/* Grows the batch workspaces to hold batch rows; MRL_ENOMEM keeps the old. */
int policy_reserve(mrl_policy *p, int batch);
int policy_reserve_tr(mrl_policy *p);

/* The body (policy_body.c): conv layers (if any), then the MLP.  Params
** are the whole network block; the rest as mlp.h's calls. */
int policy_body_init(mrl_policy *p, const mrl_policy_spec *spec, int out);
int policy_body_init_params(mrl_policy *p, double out_gain);
int policy_obs_dim(const mrl_policy *p);
size_t policy_body_acts_floats(const mrl_policy *p, int batch);
size_t policy_body_scratch_floats(const mrl_policy *p, int batch);
void policy_body_forward(mrl_policy *p, const float *params, const float *obs,
                         int batch, float *acts);
/* grad[0, nnet) += Jᵀ p->dy (uses p->scratch). */
void policy_body_backward(mrl_policy *p, const float *params,
                          const float *obs, const float *acts, int batch,
                          float *grad);
/* jy := J·v at the current params, after a forward of obs into p->acts. */
void policy_body_jvp(mrl_policy *p, const float *v, const float *obs,
                     int batch, float *jy);

/* Forward at params (NULL = current) into acts; returns the output block. */
const float *policy_forward(mrl_policy *p, const float *params,
                            const float *obs, int batch, float *acts);
/* log_std of a parameter vector (NULL = current); NULL for a discrete policy. */
const float *policy_log_std(const mrl_policy *p, const float *params);
/* log π(a|s) for one row of outputs. */
double policy_row_logp(const mrl_policy *p, const float *out,
                       const float *log_std, const float *action);
/* Adds w·∂ log π(a|s)/∂(outputs, log_std) into dout[n] and dls[n]. */
void policy_row_dlogp_add(const mrl_policy *p, const float *out,
                          const float *log_std, const float *action, double w,
                          double *dout, double *dls);
/* grad[0, nnet) := Jᵀ dy over the batch (at params, after policy_forward into
** acts); grad[nnet, nparams) := dls (box).  Zeroes the network part first. */
void policy_backward_set(mrl_policy *p, const float *params, const float *obs,
                         int batch, const float *acts, const double *dls,
                         float *grad);

/* PPO's clipped loss, shared by the discrete/box path (policy.c) and the
** composite one (policy_space.c): the option checks and the advantages'
** standardisation (*amean, *ascale: 0 and 1 without), then, from the sums
** (surrogate, clipped count, approx KL) and the entropy sum, the stats, the
** finiteness of the loss and of the gradient. */
int policy_ppo_setup(mrl_policy *p, const mrl_ppo_opts *opts, const float *advantages,
                     int batch, double *amean, double *ascale);
int policy_ppo_finish(mrl_policy *p, const mrl_ppo_opts *opts, const double acc[3],
                      double ent, int batch, mrl_ppo_stats *stats);

/* (F + damping·I)v at the current params into out[nparams] (float).  When
** have_forward, p->acts already holds the forward pass of obs at the current
** params.  Uses dy, jy, scratch and row; leaves grad and acts2 alone. */
int policy_fvp_core(mrl_policy *p, mrl_fisher fisher, const float *obs,
                    const float *masks, const float *actions, int batch,
                    const float *v, double damping, float *out,
                    int have_forward);

#endif
