/*
** policy_impl.h — internal: the mrl_policy struct and the helpers that
** policy.c shares with trust_region.c.  Nothing here is public.
**
** Layout of the one parameter block (and, identically, of grad):
**   [0, nnet)          network parameters in the flat order of mlp.h
**   [nnet, nparams)    log_std[n] for a box policy (absent when discrete)
*/
#ifndef MRL_POLICY_IMPL_H
#define MRL_POLICY_IMPL_H

#include <stddef.h>

#include "conv.h"
#include "mlp.h"
#include "moonrl.h"
#include "rng_impl.h"

struct mrl_policy {
  mlp_shape shape;
  conv_body conv;       /* grid observations; conv.nlayers 0: none, the
                           MLP takes the rows (policy_body.c) */
  mrl_action_kind kind;
  int n;                /* categories, or Gaussian dimensions (= net outputs) */
  int width;            /* floats per stored action: 1 or n */
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

/* (F + damping·I)v at the current params into out[nparams] (float).  When
** have_forward, p->acts already holds the forward pass of obs at the current
** params.  Uses dy, jy, scratch and row; leaves grad and acts2 alone. */
int policy_fvp_core(mrl_policy *p, mrl_fisher fisher, const float *obs,
                    const float *actions, int batch, const float *v,
                    double damping, float *out, int have_forward);

#endif
