/*
** moonrl.h — the one public header of libmoonrl, the policy-gradient runtime.
**
** Conventions (see ../shared/STYLE.md):
**  - every name is prefixed mrl_; handles are opaque; functions return an int
**    status (MRL_OK = 0) and, for handle functions, keep a readable message on
**    the handle (mrl_*_error).  Free functions without a handle describe their
**    failure with mrl_status_string().
**  - batches are row-major float32 [batch][dim]; booleans are uint8_t (0/1).
**  - a discrete action is stored as a float holding its index (exact < 2^24),
**    so every action buffer is float [batch][action_width].
**  - the library never prints, never aborts, keeps no global mutable state;
**    each handle may be used by one thread at a time.
**  - this file must pass LuaJIT's ffi.cdef after `make build/moonrl_cdef.h`
**    strips the preprocessor lines: constants are enums, never macros, and
**    declarations use no C99 keywords that the FFI rejects (no restrict).
*/
#ifndef MOONRL_H
#define MOONRL_H

#include <stddef.h>
#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

/* Bumped whenever a declaration below changes; the FFI binding checks it. */
enum { MRL_ABI_VERSION = 4 };

/* ------------------------------------------------------------------ status */

typedef enum mrl_status {
  MRL_OK = 0,
  MRL_EINVAL = 1,     /* a bad argument: size, range, kind, NULL */
  MRL_ENOMEM = 2,     /* an allocation failed */
  MRL_ENONFINITE = 3, /* a NaN or Inf was found; nothing was changed */
  MRL_EIO = 4,        /* a file could not be read or written */
  MRL_EFORMAT = 5,    /* a file or buffer is malformed */
  MRL_ESTATE = 6,     /* the call is not valid in the object's current state */
  MRL_EENV = 7        /* an environment failed; its message is on the engine */
} mrl_status;

const char *mrl_status_string(int status);
int mrl_abi_version(void);

/* Limits that keep sizes sane and arithmetic free of overflow. */
enum {
  MRL_MAX_LAYERS = 16,      /* hidden layers of an MLP */
  MRL_MAX_WIDTH = 65536,    /* any layer width, obs_dim or action size */
  MRL_MAX_BATCH = 16777216, /* rows in one call */
  MRL_MAX_CONV = 8          /* Conv2d layers of a convolutional body */
};

/* ------------------------------------------------ distributed updates */
/* A cross-process reduction (e.g. MPI_Allreduce), so that several
** processes, each holding an equal share of a batch, take the update that
** one process would take over the whole batch.  The hook replaces
** data[0, n) and scalars[0, nscalars) by their SUMS over all processes (in
** place; data may be NULL when n = 0) and returns MRL_OK, or a status that
** refuses the update.  Every process must call it the same number of times
** with the same n and nscalars.  Callers weight what they pass by their
** local batch size and include that size among the scalars, so a mean over
** the union of the batches comes out exactly, and the sample count needed
** by a standard deviation is known.  NULL: a single process, and the
** results are exactly those without the hook. */
typedef int (*mrl_reduce_fn)(void *ud, float *data, size_t n, double *scalars,
                             int nscalars);

/* --------------------------------------------------------------------- rng */
/* xoshiro256** seeded through splitmix64; normals by the polar method
** (the spare is part of the state, so a saved state resumes exactly). */

typedef struct mrl_rng mrl_rng;

int mrl_rng_new(mrl_rng **out, uint64_t seed);
void mrl_rng_free(mrl_rng *rng);
void mrl_rng_seed(mrl_rng *rng, uint64_t seed);
uint64_t mrl_rng_u64(mrl_rng *rng);
double mrl_rng_uniform(mrl_rng *rng);               /* [0, 1) */
double mrl_rng_normal(mrl_rng *rng);                /* N(0, 1) */
int mrl_rng_categorical(mrl_rng *rng, const float *logits, int n); /* index */
/* Serialised state: MRL_RNG_STATE_BYTES bytes, little-endian. */
enum { MRL_RNG_STATE_BYTES = 48 };
void mrl_rng_get_state(const mrl_rng *rng, uint8_t *out);
int mrl_rng_set_state(mrl_rng *rng, const uint8_t *in);

/* ------------------------------------------------------------- networks */
/* A multilayer perceptron: Linear(in→h1), act, …, Linear(h_last→out).
** Parameters live in one contiguous float block in the flat order of
** ../shared/golden/README.md: per Linear, weight [out][in] row-major then bias.
** Gradients use the same layout, so optimisers are single loops. */

typedef enum mrl_activation { MRL_TANH = 0, MRL_RELU = 1 } mrl_activation;

typedef struct mrl_net mrl_net;

/* hidden may be NULL when nhidden == 0.  Parameters are initialised as
** Stable-Baselines3 does: orthogonal, gain √2 on hidden layers, out_gain on
** the output layer (1 for a value network), zero biases, from seed. */
int mrl_net_new(mrl_net **out, int in_dim, const int *hidden, int nhidden,
                int out_dim, mrl_activation act, double out_gain, uint64_t seed);
void mrl_net_free(mrl_net *net);

/* One Conv2d layer: out channels, a square kernel, stride, zero padding. */
typedef struct mrl_conv_layer {
  int out, kernel, stride, padding;
} mrl_conv_layer;

/* The options of mrl_net_new, and the defaults a binding starts from:
** hidden {64, 64}, tanh, out_dim 1, out_gain 1 (a value network), seed 0. */
typedef struct mrl_net_spec {
  int in_dim;
  const int *hidden;
  int nhidden;
  mrl_activation activation;
  int out_dim;
  double out_gain;
  uint64_t seed;
  /* Grid inputs, as in mrl_policy_spec: obs_shape {C, H, W} (in_dim 0 or
  ** C·H·W) and nconv Conv2d layers before the hidden layers. */
  int obs_shape[3];
  const mrl_conv_layer *conv;   /* [nconv], nullable when nconv == 0 */
  int nconv;
} mrl_net_spec;
mrl_net_spec mrl_net_spec_default(void);
/* mrl_net_new from a spec (the only way to a convolutional net); the
** check says what is wrong with a spec it refuses. */
int mrl_net_new_spec(mrl_net **out, const mrl_net_spec *spec);
int mrl_net_spec_check(const mrl_net_spec *spec, char *err, size_t errlen);
/* The grid shape and conv layers, as mrl_policy_obs_shape / _nconv / _conv. */
int mrl_net_obs_shape(const mrl_net *net, int shape[3]);
int mrl_net_nconv(const mrl_net *net);
int mrl_net_conv(const mrl_net *net, int i, mrl_conv_layer *out);
/* A separate network with the same shape, kernels and parameters (not the
** gradient or workspaces), e.g. for another thread to train. */
int mrl_net_clone(mrl_net **out, const mrl_net *src);
const char *mrl_net_error(const mrl_net *net);
int mrl_net_in_dim(const mrl_net *net);
int mrl_net_out_dim(const mrl_net *net);
int mrl_net_nhidden(const mrl_net *net);
int mrl_net_hidden(const mrl_net *net, int i);       /* width of hidden layer i */
mrl_activation mrl_net_activation(const mrl_net *net);
size_t mrl_net_nparams(const mrl_net *net);
/* Borrowed pointers into the handle, valid for its lifetime. */
float *mrl_net_params(mrl_net *net);
float *mrl_net_grad(mrl_net *net);
/* Copies in flat order; set refuses non-finite values (MRL_ENONFINITE). */
int mrl_net_get_params(const mrl_net *net, float *out, size_t n);
int mrl_net_set_params(mrl_net *net, const float *in, size_t n);
/* y[batch][out] = f(x[batch][in]).  Activations are kept for backward. */
int mrl_net_forward(mrl_net *net, const float *x, int batch, float *y);
/* After forward on the same batch: grad += dL/dθ for dy = dL/dy
** (accumulates; zero it with mrl_net_zero_grad); dx (nullable) = dL/dx. */
int mrl_net_backward(mrl_net *net, const float *dy, float *dx);
void mrl_net_zero_grad(mrl_net *net);
/* Forward-mode product: y = f(x), jy = (∂y/∂θ)·v for a tangent v[nparams]. */
int mrl_net_jvp(mrl_net *net, const float *x, int batch, const float *v,
                float *y, float *jy);
/* Value regression: loss = mean_n (V(s_n) − target_n)²; grad is set (not
** accumulated) to ∇loss; values (nullable) receives V(s_n). */
int mrl_net_value_loss(mrl_net *net, const float *obs, const float *targets,
                       int batch, double *loss, float *values);
/* The PPO value loss with optional clipping around old_values
** (clip <= 0: unclipped): mean max((V−R)², (V_old+clip(V−V_old,±c)−R)²). */
int mrl_net_value_loss_clipped(mrl_net *net, const float *obs,
                               const float *targets, const float *old_values,
                               int batch, double clip, double *loss);

/* ------------------------------------------------------------- policies */

typedef enum mrl_action_kind {
  MRL_DISCRETE = 0, /* categorical over n logits */
  MRL_BOX = 1,      /* diagonal Gaussian, state-independent log_std[n] */
  MRL_COMPOSITE = 2 /* a list of parts (mrl_action_part), see below */
} mrl_action_kind;

/* One part of a composite action.  The parts own, in order, consecutive
** slices of the output layer (n outputs each) and of the stored action row
** (categorical: 1 float, the index; gaussian and bernoulli: n floats); a
** gaussian part has its own log_std[n], after the network parameters in
** part order.  log π, the entropy and the KL are sums over the parts.
** multi-discrete = several categorical parts, multi-binary = one bernoulli
** part of n bits, hybrid = categorical and gaussian parts. */
typedef enum mrl_part_type {
  MRL_PART_CATEGORICAL = 0, /* n logits, one action index in [0, n) */
  MRL_PART_GAUSSIAN = 1,    /* n means, n numbers, σ = exp(log_std) */
  MRL_PART_BERNOULLI = 2    /* n logits, n independent bits 0/1 */
} mrl_part_type;
typedef struct mrl_action_part {
  mrl_part_type type;
  int n;
} mrl_action_part;

typedef struct mrl_policy_spec {
  int obs_dim;
  const int *hidden;        /* widths, nullable when nhidden == 0 */
  int nhidden;
  mrl_activation activation;
  mrl_action_kind action_kind;
  int action_n;             /* categories, or Gaussian dimensions */
  const float *low, *high;  /* box bounds [action_n], nullable (unbounded) */
  double init_log_std;      /* box only; SB3 uses 0 */
  double out_gain;          /* output-layer gain; SB3 uses 0.01 */
  uint64_t seed;            /* initialisation and sampling */
  /* MRL_COMPOSITE only (action_n, low and high are then not used): */
  const mrl_action_part *parts;
  int nparts;
  /* Grid observations (optional; zeros: a flat obs_dim).  obs_shape
  ** {C, H, W}: a row holds C·H·W numbers, (c, y, x) at (c·H + y)·W + x;
  ** obs_dim is then 0 or C·H·W.  nconv Conv2d layers (PyTorch nn.Conv2d,
  ** each followed by the activation) map it to the hidden layers, after a
  ** flatten in the same C-major order.  Parameters: every conv weight
  ** [out][in][k][k] and bias [out], then the Linears, then log_std. */
  int obs_shape[3];
  const mrl_conv_layer *conv; /* [nconv], nullable when nconv == 0 */
  int nconv;
} mrl_policy_spec;

typedef struct mrl_policy mrl_policy;

/* SB3's MlpPolicy defaults (hidden {64, 64}, tanh, out_gain 0.01,
** init_log_std 0, seed 0), obs_dim and action_n left 0 for the caller:
** what a binding starts from before applying the options it was given. */
mrl_policy_spec mrl_policy_spec_default(void);
/* MRL_OK, or MRL_EINVAL with what is wrong in err (mrl_policy_new refuses
** the same specs, without a message). */
int mrl_policy_spec_check(const mrl_policy_spec *spec, char *err, size_t errlen);
int mrl_policy_new(mrl_policy **out, const mrl_policy_spec *spec);
void mrl_policy_free(mrl_policy *p);
/* A separate policy with the same shape, bounds, kernels, parameters and
** generator state (not the gradient, workspaces, helper thread or reduce
** hook): the same calls on both give the same bits. */
int mrl_policy_clone(mrl_policy **out, const mrl_policy *src);
const char *mrl_policy_error(const mrl_policy *p);
int mrl_policy_obs_dim(const mrl_policy *p);
mrl_action_kind mrl_policy_action_kind(const mrl_policy *p);
int mrl_policy_action_n(const mrl_policy *p);
int mrl_policy_action_width(const mrl_policy *p);  /* 1 if discrete, else n */
int mrl_policy_out_dim(const mrl_policy *p);       /* logits or mean width */
/* The parts of the action (one for a discrete or box policy); i out of
** range gives {0, 0}. */
int mrl_policy_nparts(const mrl_policy *p);
mrl_action_part mrl_policy_part(const mrl_policy *p, int i);
/* 1 when the policy takes invalid-action masks: every part categorical. */
int mrl_policy_maskable(const mrl_policy *p);
int mrl_policy_nhidden(const mrl_policy *p);
int mrl_policy_hidden(const mrl_policy *p, int i);
mrl_activation mrl_policy_activation(const mrl_policy *p);
/* The grid shape: 1 and shape[3] = {C, H, W} when the spec gave one, else
** 0 (shape untouched).  Conv layers: their count, and layer i (0 if out of
** range, *out untouched). */
int mrl_policy_obs_shape(const mrl_policy *p, int shape[3]);
int mrl_policy_nconv(const mrl_policy *p);
int mrl_policy_conv(const mrl_policy *p, int i, mrl_conv_layer *out);
/* Box bounds, NULL when unbounded; used to clip actions sent to an env. */
const float *mrl_policy_low(const mrl_policy *p);
const float *mrl_policy_high(const mrl_policy *p);
/* Flat vector: network parameters, then log_std for a box policy. */
size_t mrl_policy_nparams(const mrl_policy *p);
float *mrl_policy_params(mrl_policy *p);
float *mrl_policy_grad(mrl_policy *p);
int mrl_policy_get_params(const mrl_policy *p, float *out, size_t n);
int mrl_policy_set_params(mrl_policy *p, const float *in, size_t n);
mrl_rng *mrl_policy_rng(mrl_policy *p);            /* borrowed */

/* out[batch][out_dim] = logits or means, at params (NULL = current). */
int mrl_policy_forward(mrl_policy *p, const float *params, const float *obs,
                       int batch, float *out);
/* Sample (or take the mode when deterministic) actions[batch][width];
** logp (nullable) receives log π(a|s) (a discrete policy with up to 16
** actions computes it in float: it equals mrl_policy_evaluate's to float
** rounding).  The batch-1 path allocates nothing. */
int mrl_policy_act(mrl_policy *p, const float *obs, int batch,
                   int deterministic, float *actions, float *logp);
/* log π(a|s) and entropy per row at params (NULL = current); either output
** may be NULL. */
int mrl_policy_evaluate(mrl_policy *p, const float *params, const float *obs,
                        const float *actions, int batch, float *logp,
                        float *entropy);
/* Per-state KL(π_old ‖ π_new) (kl nullable) and its mean. */
int mrl_policy_kl(mrl_policy *p, const float *params_old,
                  const float *params_new, const float *obs, int batch,
                  float *kl, double *mean_kl);

/* Invalid-action masks: the *_masked calls below take masks[batch][out_dim]
** beside obs, 1 for a valid action, 0 for an invalid one (any other value is
** an error), for a maskable policy.  Every categorical part of every row
** needs a valid action (an all-masked part is MRL_EINVAL naming row and
** part).  A masked action has probability 0: it is never sampled, the
** log-probabilities renormalise over the valid ones, and the entropy and
** the KL sum over them.  masks NULL: the call without masks. */
int mrl_policy_act_masked(mrl_policy *p, const float *obs, const float *masks,
                          int batch, int deterministic, float *actions,
                          float *logp);
/* An action that its mask forbids is MRL_EINVAL. */
int mrl_policy_evaluate_masked(mrl_policy *p, const float *params,
                               const float *obs, const float *masks,
                               const float *actions, int batch, float *logp,
                               float *entropy);
int mrl_policy_kl_masked(mrl_policy *p, const float *params_old,
                         const float *params_new, const float *obs,
                         const float *masks, int batch, float *kl,
                         double *mean_kl);

/* Surrogate with stop-gradient weights: the policy's grad buffer is SET to
** ∇θ Σ_n w_n log π(a_n|s_n) · scale, the building block of every score-function
** estimator.  objective (nullable) receives Σ w_n log π · scale. */
int mrl_policy_grad_weighted_logp(mrl_policy *p, const float *obs,
                                  const float *actions, const float *weights,
                                  int batch, double scale, double *objective);
int mrl_policy_grad_weighted_logp_masked(mrl_policy *p, const float *obs,
                                         const float *masks,
                                         const float *actions,
                                         const float *weights, int batch,
                                         double scale, double *objective);

/* PPO's clipped surrogate with an entropy bonus (golden kind ppo_clip).
** grad buffer := ∇loss.  Advantages are normalised in a copy when asked. */
typedef struct mrl_ppo_opts {
  double clip_eps;
  double ent_coef;
  int normalize_advantages;
} mrl_ppo_opts;
mrl_ppo_opts mrl_ppo_opts_default(void);  /* clip_eps 0.2, ent_coef 0, normalised */
typedef struct mrl_ppo_stats {
  double loss, policy_loss, entropy, clip_fraction, approx_kl;
} mrl_ppo_stats;
int mrl_policy_ppo_loss(mrl_policy *p, const float *obs, const float *actions,
                        const float *old_logp, const float *advantages,
                        int batch, const mrl_ppo_opts *opts,
                        mrl_ppo_stats *stats);
int mrl_policy_ppo_loss_masked(mrl_policy *p, const float *obs,
                               const float *masks, const float *actions,
                               const float *old_logp, const float *advantages,
                               int batch, const mrl_ppo_opts *opts,
                               mrl_ppo_stats *stats);

/* Adaptive-KL PPO (golden kind kl_penalty):
** loss = −(mean ρA − β·mean KL(π_old‖π_θ)); grad buffer := ∇loss. */
int mrl_policy_kl_penalty_loss(mrl_policy *p, const float *params_old,
                               const float *obs, const float *actions,
                               const float *old_logp, const float *advantages,
                               int batch, double beta, double *loss,
                               double *mean_kl);
int mrl_policy_kl_penalty_loss_masked(mrl_policy *p, const float *params_old,
                                      const float *obs, const float *masks,
                                      const float *actions,
                                      const float *old_logp,
                                      const float *advantages, int batch,
                                      double beta, double *loss,
                                      double *mean_kl);
/* β/2 below target/1.5, 2β above 1.5·target, else β. */
double mrl_kl_beta_update(double beta, double mean_kl, double target_kl);

/* --------------------------------------------------- natural gradient */

typedef enum mrl_fisher { MRL_FISHER_ANALYTIC = 0, MRL_FISHER_EMPIRICAL = 1 } mrl_fisher;

/* out = (F + damping·I) v at the current params, over a batch of states
** (actions are used by the empirical Fisher only; nullable for analytic). */
int mrl_policy_fvp(mrl_policy *p, mrl_fisher fisher, const float *obs,
                   const float *actions, int batch, const float *v,
                   double damping, float *out);
int mrl_policy_fvp_masked(mrl_policy *p, mrl_fisher fisher, const float *obs,
                          const float *masks, const float *actions, int batch,
                          const float *v, double damping, float *out);
/* Conjugate gradient on (F + damping·I) x = g from x = 0 (golden kind cg).
** xAx (nullable) receives xᵀ(F + damping·I)x. */
int mrl_policy_cg(mrl_policy *p, mrl_fisher fisher, const float *obs,
                  const float *actions, int batch, const float *g,
                  double damping, int iters, float *x, double *xAx);
int mrl_policy_cg_masked(mrl_policy *p, mrl_fisher fisher, const float *obs,
                         const float *masks, const float *actions, int batch,
                         const float *g, double damping, int iters, float *x,
                         double *xAx);
/* step = sqrt(2·max_kl / xᵀAx)·x with x from cg (golden kind npg_step). */
int mrl_policy_npg_step(mrl_policy *p, mrl_fisher fisher, const float *obs,
                        const float *actions, int batch, const float *g,
                        double damping, int iters, double max_kl, float *step);
int mrl_policy_npg_step_masked(mrl_policy *p, mrl_fisher fisher,
                               const float *obs, const float *masks,
                               const float *actions, int batch, const float *g,
                               double damping, int iters, double max_kl,
                               float *step);

/* NPG's whole outer step: g = ∇θ mean A·log π (a mean over processes with
** the reduce hook of mrl_policy_set_reduce), step = npg_step(g), θ += step
** (actions are used by the empirical Fisher and the gradient).  report
** (nullable): the objective mean A·log π before the step, ‖g‖ and the
** batch's mean KL(π_old‖π_new) after it (this process's batch).  On failure
** θ is unchanged (the grad buffer is not). */
typedef struct mrl_npg_report {
  double objective, grad_norm, mean_kl;
} mrl_npg_report;
int mrl_policy_npg_update(mrl_policy *p, mrl_fisher fisher, const float *obs,
                          const float *actions, const float *advantages,
                          int batch, double damping, int iters, double max_kl,
                          mrl_npg_report *report);
int mrl_policy_npg_update_masked(mrl_policy *p, mrl_fisher fisher,
                                 const float *obs, const float *masks,
                                 const float *actions, const float *advantages,
                                 int batch, double damping, int iters,
                                 double max_kl, mrl_npg_report *report);

typedef struct mrl_trpo_opts {
  double max_kl, damping, backtrack_coef;
  int cg_iters, max_backtracks;
} mrl_trpo_opts;
/* max_kl 0.01, damping 0.1, backtrack_coef 0.8, cg_iters 10, max_backtracks 10 */
mrl_trpo_opts mrl_trpo_opts_default(void);
typedef struct mrl_trpo_result {
  int accepted_j;           /* −1 when no step was accepted */
  double mean_kl, improvement, surrogate_before;
} mrl_trpo_result;
/* Distributed trust-region steps: with a hook set (NULL: off), every
** Fisher-vector product (mrl_policy_fvp, inside CG, xᵀAx), TRPO's gradient
** and surrogate, and the line search's KL and surrogate are means over the
** union of all processes' batches (see mrl_reduce_fn), so every process
** takes the same step.  The gradient g given to cg/npg_step must already be
** the global one. */
int mrl_policy_set_reduce(mrl_policy *p, mrl_reduce_fn reduce, void *ud);

/* One TRPO step on the surrogate mean ρA (golden kind trpo_step); on
** acceptance the policy's params become θ'; otherwise they are unchanged. */
int mrl_policy_trpo_step(mrl_policy *p, const float *obs, const float *actions,
                         const float *old_logp, const float *advantages,
                         int batch, const mrl_trpo_opts *opts,
                         mrl_trpo_result *result);
/* The trust-region calls with masks (as the *_masked calls above): the
** Fisher, the surrogate and the line search's KL all use them. */
int mrl_policy_trpo_step_masked(mrl_policy *p, const float *obs,
                                const float *masks, const float *actions,
                                const float *old_logp,
                                const float *advantages, int batch,
                                const mrl_trpo_opts *opts,
                                mrl_trpo_result *result);

/* ------------------------------------------ policy-gradient estimators */

typedef enum mrl_estimator {
  MRL_EST_REINFORCE = 0,
  MRL_EST_REWARD_TO_GO = 1,
  MRL_EST_IS_TRAJECTORY = 2,
  MRL_EST_IS_PER_DECISION = 3,
  MRL_EST_IS_FULL = 4,
  MRL_EST_IS_FIRST_ORDER = 5
} mrl_estimator;

typedef enum mrl_baseline {
  MRL_BASELINE_NONE = 0,
  MRL_BASELINE_MEAN = 1,
  MRL_BASELINE_OPTIMAL = 2,
  MRL_BASELINE_VALUE = 3
} mrl_baseline;

typedef struct mrl_pg_opts {
  mrl_estimator estimator;
  mrl_baseline baseline;
  double gamma;
  double weight_clip;   /* <= 0: no clipping */
  int self_normalize;   /* weighted IS: divide by Σw instead of N */
  /* reinforce, reward_to_go, is_first_order: standardise the advantages
  ** (return − baseline) over the steps before weighting them */
  int normalize_advantages;
} mrl_pg_opts;

typedef struct mrl_pg_stats {
  double mean_ratio;    /* mean per-step ρ */
  double ess;           /* (Σw)²/Σw² of the weights that scaled the terms */
  double mean_return;
} mrl_pg_stats;

/* Episodes are concatenated: steps [ep_offsets[i], ep_offsets[i+1]) form
** episode i (nep + 1 offsets, ep_offsets[0] = 0).  behavior_logp is needed by
** the is_* estimators, values (V(s_t)) by baseline VALUE; others nullable.
** grad_out[nparams] := the ascent direction ĝ of golden kind pg_gradient. */
int mrl_pg_gradient(mrl_policy *p, const float *obs, const float *actions,
                    const float *rewards, const float *behavior_logp,
                    const float *values, const int *ep_offsets, int nep,
                    const mrl_pg_opts *opts, float *grad_out,
                    mrl_pg_stats *stats);
/* The same with invalid-action masks [M][out_dim] (see the *_masked policy
** calls): every log π and score uses them. */
int mrl_pg_gradient_masked(mrl_policy *p, const float *obs, const float *masks,
                           const float *actions, const float *rewards,
                           const float *behavior_logp, const float *values,
                           const int *ep_offsets, int nep,
                           const mrl_pg_opts *opts, float *grad_out,
                           mrl_pg_stats *stats);

/* ------------------------------------------ straight-through Gumbel-softmax */
/* For a discrete policy whose reward is a known function of the action:
** scores[batch][n] holds, per row, the score of every action (e.g. a
** contextual bandit's reward vector).  Per row, g ~ Gumbel(0, 1)^n from the
** policy's rng (n draws per row, in row order); the hard action
** a = argmax(logits + g) is an exact sample of π(·|s) and is written to
** actions (nullable, [batch], as float indices); objective (nullable)
** receives the mean score of the hard samples (1/N) Σ_n scores[n][a_n].
** The policy's grad buffer is SET to the straight-through estimate of
** ∇θ E[score_a]: ∇θ (1/N) Σ_n scores_n·softmax((logits_n + g_n)/tau), with g
** held fixed.  Like mrl_pg_gradient's grad_out it is an ASCENT direction
** (negate it for mrl_optim_step, which descends).  Biased for every tau > 0:
** small tau, small bias and large variance; large tau, the reverse.
** Errors (message on the handle): MRL_EINVAL for a box policy, tau not finite
** or <= 0, batch outside 1..MRL_MAX_BATCH, a NULL obs or scores;
** MRL_ENONFINITE for NaN/Inf in obs or scores, or a relaxed gradient that
** overflows (tau too small); the grad buffer is then unchanged. */
int mrl_policy_gumbel_grad(mrl_policy *p, const float *obs,
                           const float *scores, int batch, double tau,
                           float *actions, double *objective);

/* ---------------------------------------------------------- advantages */
/* Sequences may be strided: element t is at [t·stride] (stride ≥ 1), so a
** time-major rollout [T][num_envs] is processed one env column at a time. */

int mrl_discounted_returns(const float *rewards, int T, int stride,
                           double gamma, float *reward_to_go,
                           double *discounted_return);
/* δ_t = r_t + γ(1−term_t)·next_values_t − values_t;
** A_t = δ_t + γλ(1−term_t)(1−trunc_t)·A_{t+1}; returns = A + values. */
int mrl_gae(const float *rewards, const float *values,
            const float *next_values, const uint8_t *terminated,
            const uint8_t *truncated, int T, int stride, double gamma,
            double lambda, float *advantages, float *returns);
/* x := (x − mean)/(sample std + 1e-8) in place, the batch-wide advantage
** standardisation of SB3 and the TRPO/NPG/adaptive-KL trainers; with a
** reduce hook the mean and std are over every process's x.  Fewer than two
** values (in all): unchanged.  MRL_ENONFINITE (x unchanged) if they are
** not finite. */
int mrl_standardize(float *x, int n, mrl_reduce_fn reduce, void *ud);

/* -------------------------------------------------------- environments */
/* A batch of environments behind function pointers, so the runtime drives
** rollouts without knowing whether the envs are Lua scripts on worker
** threads, Lua tables in the caller's state, or a game's own C state.
** Rows are [num_envs][obs_dim] floats; actions [num_envs][action_width].
**
** The vecenv owns the env contract; the env side only converts.  The
** copies form desc.blocks contiguous blocks (block b holds copies
** [b·N/B, (b+1)·N/B), mrl_vecenv_block), each a private state of the env
** side: calls for one block never overlap, calls for different blocks run
** at once on the vecenv's threads (B − 1 helpers and the calling thread).
** For each copy of its block, in order, ops.reset writes the copy's first
** observation into mrl_vecenv_row(v, copy) and calls
** mrl_vecenv_commit_reset; ops.step writes the next observation there and
** passes reward and flags to mrl_vecenv_commit_step, which checks the row
** and reward (once), counts the episode, applies the time limit, keeps
** final_obs and says whether the episode ended, in which case the env side
** resets that copy at once (seed NULL: its generator continues) as above.
** A nonzero status from a commit is returned by the op as it is. */

typedef struct mrl_vecenv mrl_vecenv;

typedef struct mrl_env_ops {
  /* seeds[num_envs], indexed by copy (nullable: continue the generators). */
  int (*reset)(void *ud, mrl_vecenv *v, int block, const uint64_t *seeds);
  /* actions[num_envs][action_width], indexed by copy (clipped if bounded). */
  int (*step)(void *ud, mrl_vecenv *v, int block, const float *actions);
  /* The message of block's last failure (never NULL after one); it names
  ** the copy. */
  const char *(*error)(void *ud, int block);
  /* Called by mrl_vecenv_free (nullable). */
  void (*destroy)(void *ud);
} mrl_env_ops;

typedef struct mrl_env_desc {
  int num_envs, obs_dim;
  mrl_action_kind action_kind;
  int action_n;              /* categories, or box dimensions */
  const float *low, *high;   /* box bounds [action_n], nullable */
  int blocks;                /* 0 or 1: one, run in the calling thread */
  int64_t max_episode_steps; /* an episode this long is truncated; 0: none */
  const char *name;          /* for messages (copied), nullable */
  /* MRL_COMPOSITE actions: the parts (copied; mrl_action_part), action_n
  ** is then the action row's width (1 per categorical part, n per gaussian
  ** or bernoulli part) and low/high, when given, bound the gaussian
  ** columns (the others' entries are not read). */
  const mrl_action_part *parts;
  int nparts;
  /* Invalid-action masks (0: none): K = the categories of a discrete
  ** action, or of every part of a composite one, all categorical.  The env
  ** side writes each copy's mask after its reset and step (mask_row,
  ** commit_mask). */
  int mask_width;
} mrl_env_desc;


/* The vecenv copies ops and desc and owns ud from now on (destroy is called
** by mrl_vecenv_free, also when mrl_vecenv_new fails). */
int mrl_vecenv_new(mrl_vecenv **out, const mrl_env_ops *ops, void *ud,
                   const mrl_env_desc *desc);
void mrl_vecenv_free(mrl_vecenv *v);
const char *mrl_vecenv_error(const mrl_vecenv *v);
const mrl_env_desc *mrl_vecenv_desc(const mrl_vecenv *v);
/* Env i is seeded with seed + i. */
int mrl_vecenv_reset(mrl_vecenv *v, uint64_t seed);
/* Box actions are clipped to [low, high] on the way to the envs. */
int mrl_vecenv_step(mrl_vecenv *v, const float *actions);
/* Borrowed views, valid until the next reset/step: */
const float *mrl_vecenv_obs(const mrl_vecenv *v);        /* [N][obs_dim] */
const float *mrl_vecenv_rewards(const mrl_vecenv *v);    /* [N] */
const uint8_t *mrl_vecenv_terminated(const mrl_vecenv *v);
const uint8_t *mrl_vecenv_truncated(const mrl_vecenv *v);
const float *mrl_vecenv_final_obs(const mrl_vecenv *v);  /* [N][obs_dim] */
/* Finished episodes since the last drain: copies up to cap returns and
** lengths, oldest first, and forgets them; returns how many were copied. */
int mrl_vecenv_drain_episodes(mrl_vecenv *v, double *returns,
                              int64_t *lengths, int cap);
int64_t mrl_vecenv_total_steps(const mrl_vecenv *v);
/* For the env side, inside ops.reset/ops.step (see above).  what names the
** env's method that produced the values, for messages ("step", "reset"). */
void mrl_vecenv_block(const mrl_vecenv *v, int block, int *first, int *count);
float *mrl_vecenv_row(mrl_vecenv *v, int copy);
int mrl_vecenv_commit_reset(mrl_vecenv *v, int copy, const char *what);
/* reward as the env gave it; *ended: reset this copy now. */
int mrl_vecenv_commit_step(mrl_vecenv *v, int copy, const char *what,
                           double reward, int terminated, int truncated,
                           int *ended);
/* Masks: copy's row of mask_width floats to fill, then its check (every
** entry 0 or 1, a valid action in every categorical part). */
float *mrl_vecenv_mask_row(mrl_vecenv *v, int copy);
int mrl_vecenv_commit_mask(mrl_vecenv *v, int copy, const char *what);
/* The masks of the current observations [N][mask_width], NULL without. */
const float *mrl_vecenv_masks(const mrl_vecenv *v);
int mrl_vecenv_mask_width(const mrl_vecenv *v);

/* ------------------------------------------------------- normalisation */
/* Running statistics with Stable-Baselines3's RunningMeanStd semantics
** (golden kinds running_norm, reward_norm): double mean/var [dim] and a
** count, starting at 0, 1 and 1e-4.  A batch of n rows with mean m and
** population variance v is merged as δ = m − mean, tot = count + n,
** mean += δ·n/tot, var = (var·count + v·n + δ²·count·n/tot)/tot. */

typedef struct mrl_rms mrl_rms;

int mrl_rms_new(mrl_rms **out, int dim);
void mrl_rms_free(mrl_rms *s);
/* The owner's explicit close: mrl_rms_free, and a rollout still using the
** handle (mrl_rollout_set_norm) drops it at its next collect. */
void mrl_rms_close(mrl_rms *s);
const char *mrl_rms_error(const mrl_rms *s);
int mrl_rms_dim(const mrl_rms *s);
double mrl_rms_count(const mrl_rms *s);
void mrl_rms_reset(mrl_rms *s);                       /* back to 0, 1, 1e-4 */
/* Merge the rows x[rows][dim]; a NaN or Inf refuses the whole batch
** (MRL_ENONFINITE, nothing changed). */
int mrl_rms_update(mrl_rms *s, const float *x, int rows);
/* The same over the union of every process's rows (rows may be 0 on some):
** counts, sums and squared deviations about the union's mean are summed
** through the hook (two calls, scalars only), so every process ends with
** the statistics one process seeing the union would have.  NULL reduce:
** mrl_rms_update. */
int mrl_rms_update_reduce(mrl_rms *s, const float *x, int rows,
                          mrl_reduce_fn reduce, void *ud);
/* y = clip((x − mean)/sqrt(var + eps), −clip, clip); y may be x.  Columns
** the mask leaves out are copied as they are. */
int mrl_rms_apply(mrl_rms *s, const float *x, int rows, double clip,
                  double eps, float *y);
/* Which columns apply normalises: mask[dim], 1 = normalise, 0 = pass
** through (a dict observation's parts each on its own); NULL: all.  The
** statistics of every column are kept either way. */
int mrl_rms_set_mask(mrl_rms *s, const uint8_t *mask);
/* State for checkpoints; mean/var are [dim] (either may be NULL on get).
** set refuses non-finite values, var < 0 and count <= 0 (MRL_EINVAL). */
int mrl_rms_get_state(const mrl_rms *s, double *mean, double *var,
                      double *count);
int mrl_rms_set_state(mrl_rms *s, const double *mean, const double *var,
                      double count);

/* VecNormalize's reward normalisation: a discounted return ret [num_envs]
** (0 at start) and scalar statistics of it.  One step: ret = ret·gamma + r;
** the statistics merge the batch of the num_envs returns; out = clip(r /
** sqrt(var + eps), ±clip); then ret = 0 where dones.  update = 0 (frozen,
** evaluation) only normalises.  reduce (nullable) merges the returns of
** every process, as mrl_rms_update_reduce. */
typedef struct mrl_retnorm mrl_retnorm;

int mrl_retnorm_new(mrl_retnorm **out, int num_envs);
void mrl_retnorm_free(mrl_retnorm *rn);
void mrl_retnorm_close(mrl_retnorm *rn);  /* as mrl_rms_close */
const char *mrl_retnorm_error(const mrl_retnorm *rn);
int mrl_retnorm_num_envs(const mrl_retnorm *rn);
mrl_rms *mrl_retnorm_rms(mrl_retnorm *rn);  /* borrowed, dim 1 */
int mrl_retnorm_step(mrl_retnorm *rn, const float *rewards,
                     const uint8_t *dones, double gamma, double clip,
                     double eps, int update, mrl_reduce_fn reduce, void *ud,
                     float *out);
/* The returns [num_envs]; set with ret NULL zeroes them (an env reset). */
int mrl_retnorm_get_ret(const mrl_retnorm *rn, double *ret, int n);
int mrl_retnorm_set_ret(mrl_retnorm *rn, const double *ret, int n);
/* State for checkpoints: the statistics of the returns and the returns
** [num_envs] (ret nullable on get; NULL on set zeroes them).  set is all or
** nothing: a value mrl_rms_set_state or set_ret refuses changes nothing. */
int mrl_retnorm_get_state(mrl_retnorm *rn, double *mean, double *var,
                          double *count, double *ret);
int mrl_retnorm_set_state(mrl_retnorm *rn, double mean, double var,
                          double count, const double *ret);

/* ------------------------------------------------------ rollout buffer */
/* Structs of arrays, time-major [steps][num_envs][…]: a whole rollout is
** one contiguous block per field, and the policy sees [num_envs][obs_dim]
** rows at each step. */

typedef struct mrl_rollout mrl_rollout;

int mrl_rollout_new(mrl_rollout **out, int steps, int num_envs, int obs_dim,
                    int action_width);
void mrl_rollout_free(mrl_rollout *r);
const char *mrl_rollout_error(const mrl_rollout *r);
int mrl_rollout_steps(const mrl_rollout *r);
int mrl_rollout_num_envs(const mrl_rollout *r);
int mrl_rollout_obs_dim(const mrl_rollout *r);
int mrl_rollout_action_width(const mrl_rollout *r);
/* Collect steps × num_envs transitions with the policy (sampling) and,
** when value is not NULL, record V(s_t) and the bootstrap values
** next_values (V(s_{t+1}); V of the true final observation on truncation). */
int mrl_rollout_collect(mrl_rollout *r, mrl_vecenv *env, mrl_policy *p,
                        mrl_net *value);
/* Normalisation inside collect, as Stable-Baselines3's VecNormalize in
** training mode.  obs: each step's raw observation batch is merged into the
** statistics (update = 1) and normalised; the policy and value net see, and
** the buffer stores, the normalised rows; truncated envs' final
** observations and the last observations are normalised with the
** statistics of that step.  reward: rewards are stored normalised as
** mrl_retnorm_step (dones = terminated or truncated).  update = 0 freezes
** both (evaluation).  reduce (nullable) merges the statistics over
** processes each step.  The rollout holds a reference to each handle:
** one freed while the rollout uses it stays alive (and in use) until the
** rollout lets go — another set_norm, or mrl_rollout_free; one closed
** (mrl_rms_close, mrl_retnorm_close) is dropped at the next collect, which
** then runs without it.  NULL opts, or both handles NULL: off. */
typedef struct mrl_norm_opts {
  mrl_rms *obs;            /* nullable; dim = obs_dim */
  mrl_retnorm *reward;     /* nullable; num_envs = the rollout's */
  int update;              /* 1: training, 0: frozen statistics */
  double clip_obs, clip_reward, epsilon, gamma;
  mrl_reduce_fn reduce;
  void *reduce_ud;
} mrl_norm_opts;
int mrl_rollout_set_norm(mrl_rollout *r, const mrl_norm_opts *opts);
/* GAE over the collected data (golden kind gae, per env column). */
int mrl_rollout_gae(mrl_rollout *r, double gamma, double lambda);

typedef enum mrl_rollout_field {
  MRL_RO_OBS = 0,          /* [T][N][obs_dim] */
  MRL_RO_ACTIONS = 1,      /* [T][N][action_width], unclipped */
  MRL_RO_REWARDS = 2,      /* [T][N] */
  MRL_RO_LOGP = 3,         /* behaviour log-probs at acting time */
  MRL_RO_VALUES = 4,
  MRL_RO_NEXT_VALUES = 5,
  MRL_RO_ADVANTAGES = 6,
  MRL_RO_RETURNS = 7
} mrl_rollout_field;
/* Borrowed pointer to a float field. */
float *mrl_rollout_field_ptr(mrl_rollout *r, mrl_rollout_field f);
uint8_t *mrl_rollout_terminated(mrl_rollout *r);   /* [T][N] */
uint8_t *mrl_rollout_truncated(mrl_rollout *r);    /* [T][N] */
/* Filling without a vecenv (an agent in a game loop): put step t of env
** the observation, unclipped action and behaviour log-prob at acting time,
** then its outcome (final_obs, nullable: the true last observation of a
** truncated episode).  When every step is put, bootstrap records V(s_t)
** and the bootstraps (V(s_{t+1}); 0 after termination; V(final_obs) after
** truncation, V(s_t) without one; V(next_obs[env]) after the last step)
** and makes the rollout ready for mrl_rollout_gae. */
int mrl_rollout_put(mrl_rollout *r, int t, int env, const float *obs,
                    const float *action, double logp);
int mrl_rollout_put_outcome(mrl_rollout *r, int t, int env, double reward,
                            int terminated, int truncated,
                            const float *final_obs);
int mrl_rollout_bootstrap(mrl_rollout *r, mrl_net *value,
                          const float *next_obs);  /* [N][obs_dim] */
/* Invalid-action masks, [T][N][K] beside the other fields (K = the
** policy's out_dim, 1 valid / 0 invalid): made by collect from a vecenv
** that gives masks, or by set_mask_width (every entry 1) for put_mask;
** the update then uses them in every loss.  0 / NULL while there are none;
** a width of 0 drops them. */
int mrl_rollout_set_mask_width(mrl_rollout *r, int k);
int mrl_rollout_mask_width(const mrl_rollout *r);
float *mrl_rollout_masks(mrl_rollout *r);
/* Step t of env's mask (K floats, as the policy acted with it). */
int mrl_rollout_put_mask(mrl_rollout *r, int t, int env, const float *mask);
/* dst := src, two rollouts of the same sizes: every field, the flags,
** the final observations and whether GAE may run (dst's scratch is its
** own; MRL_EINVAL if the sizes differ). */
int mrl_rollout_copy(mrl_rollout *dst, const mrl_rollout *src);
/* How stale the behaviour log-probs μ are for the policy now: the means
** over the rollout of π(a|s)/μ(a|s) and of log μ − log π (1 and 0 when
** nothing changed since acting). */
int mrl_rollout_behaviour(mrl_rollout *r, mrl_policy *p, double *ratio,
                          double *kl);

/* ---------------------------------------------------------- optimisers */

typedef enum mrl_optim_kind { MRL_ADAM = 0, MRL_SGD = 1 } mrl_optim_kind;

typedef struct mrl_optim mrl_optim;

/* Adam (beta1, beta2, eps) or SGD (beta1 = momentum, others ignored). */
typedef struct mrl_optim_hparams { double beta1, beta2, eps; } mrl_optim_hparams;
/* torch's defaults, where a binding starts: Adam 0.9, 0.999, 1e-8; SGD no
** momentum. */
mrl_optim_hparams mrl_optim_defaults(mrl_optim_kind kind);
/* MRL_OK, or MRL_EINVAL with what is wrong in err (mrl_optim_new refuses
** the same, without a message). */
int mrl_optim_check(mrl_optim_kind kind, size_t nparams, double beta1,
                    double beta2, double eps, char *err, size_t errlen);
int mrl_optim_new(mrl_optim **out, mrl_optim_kind kind, size_t nparams,
                  double beta1, double beta2, double eps);
void mrl_optim_free(mrl_optim *o);
/* A separate optimiser with src's kind, hyperparameters, step count and
** moments.  copy: the same into an existing one of the same kind and size
** (MRL_EINVAL otherwise, dst unchanged). */
int mrl_optim_clone(mrl_optim **out, const mrl_optim *src);
int mrl_optim_copy(mrl_optim *dst, const mrl_optim *src);
const char *mrl_optim_error(const mrl_optim *o);
size_t mrl_optim_nparams(const mrl_optim *o);
/* Ascent-free convention: params −= lr · update(grad).  Refuses (and changes
** nothing) when grad has a NaN/Inf. */
int mrl_optim_step(mrl_optim *o, float *params, const float *grad, double lr);
void mrl_optim_reset(mrl_optim *o);
/* State for checkpoints: step count and the moment vectors. */
int64_t mrl_optim_steps(const mrl_optim *o);
float *mrl_optim_moment(mrl_optim *o, int which);  /* 0: m, 1: v (Adam) */
void mrl_optim_set_steps(mrl_optim *o, int64_t t);
/* Restores a saved state all or nothing: n must be the optimiser's size, m
** (v) given when it has that moment (mrl_optim_moment non-NULL; one it has
** not is ignored), every value finite, v >= 0, 0 <= steps < INT64_MAX.
** Otherwise MRL_EINVAL (MRL_ENONFINITE for a NaN/Inf) with what was wrong
** on the handle, and nothing changed. */
int mrl_optim_set_state(mrl_optim *o, int64_t steps, const float *m,
                        const float *v, size_t n);

/* Scales g so that ‖g‖₂ ≤ max_norm; *norm (nullable) gets the norm before.
** Returns MRL_ENONFINITE (g unchanged) if the norm is not finite. */
int mrl_clip_grad_norm(float *g, size_t n, double max_norm, double *norm);
/* 1 when every value is finite. */
int mrl_all_finite(const float *x, size_t n);
/* Seconds of a monotonic clock (CLOCK_MONOTONIC), for rates and time
** budgets; not an epoch time. */
double mrl_now(void);
/* The index of the first NaN/Inf, or n when there is none. */
size_t mrl_first_nonfinite(const float *x, size_t n);
/* Flags read by a binding as floats (booleans or 0/1): out[i] = x[i] != 0.
** Returns the index of the first value neither 0 nor 1, or n. */
size_t mrl_flags_from_floats(const float *x, size_t n, uint8_t *out);
/* The other way, for a binding's float views of flags: out[i] = flags[i]. */
void mrl_floats_from_flags(const uint8_t *flags, size_t n, float *out);
/* x[i] = v for the n elements (a tensor's fill, in every binding). */
void mrl_fill(float *x, size_t n, float v);
/* Σ x and ‖x‖₂, accumulated in double. */
double mrl_sum(const float *x, size_t n);
double mrl_norm2(const float *x, size_t n);
/* How a float tensor prints in every binding: "moonrl.Tensor [d1][d2]…",
** then with show > 0 " {x1, x2, …}" (the first 8 values, %.6g), with
** show < 0 " (view of a closed object)", with show = 0 nothing.  Truncated
** to len bytes (NUL included); returns buf.  MRL_TENSOR_STR: room for all. */
enum { MRL_TENSOR_STR = 256 };
const char *mrl_tensor_str(char *buf, size_t len, int ndim, const int *shape,
                           const float *data, int show);

/* --------------------------------------------------------- checkpoints */
/* safetensors: an 8-byte little-endian header length, a JSON header
** {"name": {"dtype": "F32", "shape": [...], "data_offsets": [b, e]}, …,
** "__metadata__": {"key": "string", …}}, then the raw little-endian data.
** Writes are atomic (temporary file, fsync, rename); the reader validates
** every offset, shape and dtype and refuses hostile or truncated files. */

enum { MRL_ST_MAX_DIMS = 8, MRL_ST_MAX_HEADER = 100000000 };

typedef struct mrl_st_tensor {
  const char *name;
  const float *data;          /* float32, written as dtype F32 */
  int ndim;
  int64_t shape[MRL_ST_MAX_DIMS];
} mrl_st_tensor;

/* metadata: nkeys pairs of NUL-terminated strings (keys[i] → values[i]).
** Tensors and keys are written sorted by name (strcmp), so the bytes do not
** depend on the caller's order; a name or key given twice is MRL_EINVAL. */
int mrl_st_write(const char *path, const mrl_st_tensor *tensors, int ntensors,
                 const char *const *keys, const char *const *values,
                 int nkeys, char *err, size_t errlen);

typedef struct mrl_st_file mrl_st_file;

int mrl_st_open(mrl_st_file **out, const char *path, char *err, size_t errlen);
/* The same from memory (the buffer is copied). */
int mrl_st_open_memory(mrl_st_file **out, const uint8_t *data, size_t len,
                       char *err, size_t errlen);
void mrl_st_close(mrl_st_file *f);
int mrl_st_count(const mrl_st_file *f);
const char *mrl_st_name(const mrl_st_file *f, int i);
const char *mrl_st_dtype(const mrl_st_file *f, int i);  /* "F32", "F64", … */
int mrl_st_ndim(const mrl_st_file *f, int i);
int64_t mrl_st_dim(const mrl_st_file *f, int i, int d);
int64_t mrl_st_numel(const mrl_st_file *f, int i);
int mrl_st_find(const mrl_st_file *f, const char *name); /* index or −1 */
/* The shape of tensor i for a reader of at most maxdim (<= MRL_ST_MAX_DIMS)
** dimensions of at most maxlen each: *ndim and shape[0..*ndim), a scalar
** read as a 1-element vector.  An empty tensor, more dimensions or a
** dimension outside [1, maxlen] is MRL_EFORMAT with "tensor '<name>' …" in
** err. */
int mrl_st_shape(const mrl_st_file *f, int i, int maxdim, int64_t maxlen,
                 int *ndim, int *shape, char *err, size_t errlen);
/* Converts F32/F64/F16/BF16 to float32; n must equal the element count. */
int mrl_st_read(const mrl_st_file *f, int i, float *out, size_t n);
int mrl_st_meta_count(const mrl_st_file *f);
const char *mrl_st_meta_key(const mrl_st_file *f, int i);
const char *mrl_st_meta_get(const mrl_st_file *f, const char *key); /* or NULL */

/* Replaces path with len bytes of data as the checkpoint writer does: a
** temporary file next to it, fsync, rename, fsync of the folder, so a crash
** leaves the old file or the new one.  MRL_EIO with "<path>: …" in err. */
int mrl_write_file_atomic(const char *path, const void *data, size_t len,
                          char *err, size_t errlen);

/* ---------------------------------------------------------- PPO update */
/* One PPO update over a collected rollout (after mrl_rollout_gae): epochs
** of shuffled minibatches, the clipped surrogate with entropy bonus on the
** policy, CleanRL's value loss ½·mean max((V−R)², (V_clip−R)²) scaled by
** vf_coef on the value network, one global gradient norm over both
** networks, Adam on each.  If anything turns non-finite the update is
** refused and both networks and both optimisers are restored exactly. */

typedef struct mrl_ppo_config {
  int epochs;
  int minibatch_size;
  double lr;                 /* both networks */
  double clip_eps;
  double clip_value;         /* <= 0: unclipped value loss */
  double ent_coef, vf_coef;
  double max_grad_norm;      /* <= 0: no clipping */
  double target_kl;          /* <= 0: never stop early */
  int normalize_advantages;  /* per minibatch, as SB3 and CleanRL do */
  /* Distributed updates (nullable/zero: off).  With reduce, every
  ** minibatch's advantage statistics, gradients (weighted by minibatch
  ** size) and reported losses are summed over the processes before the
  ** global gradient norm and the optimiser steps, and the early-stop KL is
  ** the global one; minibatch_size is per process.  Each process shuffles
  ** its own indices with its policy's generator, which must be in the same
  ** state on every process, so minibatch k of process r is r's share of one
  ** global minibatch k. */
  mrl_reduce_fn reduce;
  void *reduce_ud;
  /* shards S > 1 (no reduce): one process replays exactly what S processes
  ** with a reduce hook do, each holding one of S equal contiguous blocks of
  ** the rollout: one permutation of a block's positions is drawn, and
  ** minibatch k takes the same positions from every block
  ** (minibatch_size / S rows each; both sizes must divide by S). */
  int shards;
  /* Adaptive KL (kl_beta > 0; golden kind kl_penalty) instead of the clip:
  ** the policy minimises −(mean ρA − β·mean KL(π_old‖π_θ)) with its own
  ** gradient-norm clip (max_grad_norm), advantages normalised once over the
  ** whole batch; the value network fits the returns (mean squared error) in
  ** the same minibatches; at the end β becomes mrl_kl_beta_update(β, the
  ** batch's mean KL, kl_target), reported in mrl_ppo_report.kl_beta.
  ** clip_eps, clip_value, ent_coef, vf_coef and target_kl are not used. */
  double kl_beta;
  double kl_target;
  /* The minibatch order's generator (NULL: the policy's own).  A job that
  ** runs beside acting (an in-game agent) takes its own, so the order does
  ** not depend on how many actions were sampled in between. */
  mrl_rng *rng;
} mrl_ppo_config;

/* SB3's defaults (epochs 10, minibatch_size 64, lr 3e-4, clip_eps 0.2,
** vf_coef 0.5, max_grad_norm 0.5, normalize_advantages; the rest 0/NULL). */
mrl_ppo_config mrl_ppo_config_default(void);

typedef struct mrl_ppo_report {
  double policy_loss, value_loss, entropy, approx_kl, clip_fraction;
  double explained_variance, grad_norm;
  int epochs_done, minibatches;
  int stopped_early;         /* 1 when target_kl ended the epochs */
  double kl_beta;            /* adaptive KL: β after the update */
} mrl_ppo_report;

/* err (nullable) receives a readable message on failure.  With two or more
** cores and networks big enough to pay for it, the value network's side
** runs on a helper thread that the policy keeps, asleep, between updates
** (MRL_PPO_THREADS=1 turns it off; the result is the same bits either way);
** mrl_policy_free stops it. */
int mrl_ppo_update(mrl_policy *p, mrl_net *value, mrl_optim *policy_opt,
                   mrl_optim *value_opt, mrl_rollout *r,
                   const mrl_ppo_config *c, mrl_ppo_report *report,
                   char *err, size_t errlen);

/* The same update as a job stepped a piece at a time (a game runs one
** minibatch per frame; a background trainer runs it on its own thread):
** begin checks the arguments, snapshots both networks and optimisers and
** owns every buffer the update needs; step runs minibatches until
** max_minibatches (<= 0: no limit) or max_seconds (<= 0: no limit; at
** least one minibatch always runs) and sets *done (nullable) when the
** update has finished or failed; end finishes what is left, fills the
** report and frees the job; abort restores the networks and optimisers
** exactly as they were at begin and frees the job.  Stepping in pieces
** gives the same bits as one call.  A failed step (non-finite loss or
** gradient, a failed hook) has already restored everything: it returns
** the status and mrl_ppo_job_error says why; end then returns it too.
** Between begin and end/abort the caller leaves the networks, optimisers
** and rollout alone; one thread at a time may step a job (any thread).
** With a reduce hook every process must step the same minibatches. */
typedef struct mrl_ppo_job mrl_ppo_job;
int mrl_ppo_begin(mrl_ppo_job **out, mrl_policy *p, mrl_net *value,
                  mrl_optim *policy_opt, mrl_optim *value_opt,
                  mrl_rollout *r, const mrl_ppo_config *c, char *err,
                  size_t errlen);
int mrl_ppo_step(mrl_ppo_job *job, int max_minibatches, double max_seconds,
                 int *done);
int mrl_ppo_end(mrl_ppo_job *job, mrl_ppo_report *report, char *err,
                size_t errlen);
void mrl_ppo_abort(mrl_ppo_job *job);
/* Frees the job without touching the networks or optimisers (they keep
** what the steps so far did): for when they are already gone. */
void mrl_ppo_discard(mrl_ppo_job *job);
const char *mrl_ppo_job_error(const mrl_ppo_job *job);
/* Where the job is: epochs begun so far, minibatches done, finished. */
void mrl_ppo_job_progress(const mrl_ppo_job *job, int *epoch,
                          int *minibatches, int *finished);

/* Behaviour cloning: epochs of shuffled minibatches of optimiser steps on
** −mean log π(a|s) over n demonstrations (unit-weight score-function
** gradient: maximum likelihood), with rng's order.  The report: the last
** epoch's mean −log π over its minibatches, −mean log π over all n after
** training, and (discrete policies; NaN otherwise) the fraction of states
** whose mode is the demonstrated action.  Restores the policy and the
** optimiser if a step turns non-finite. */
typedef struct mrl_bc_report {
  double last_epoch_nll, nll, accuracy;
} mrl_bc_report;
int mrl_policy_bc_fit(mrl_policy *p, mrl_optim *opt, const float *obs,
                      const float *actions, int n, int epochs, int minibatch,
                      double lr, mrl_rng *rng, mrl_bc_report *report,
                      char *err, size_t errlen);

/* The step of the score-function trainers: the policy's grad buffer :=
** −scale·ascent (an ascent direction such as mrl_pg_gradient's), its norm
** clipped to max_grad_norm (<= 0: not clipped), one optimiser step with lr;
** *norm (nullable) gets the norm before clipping.  A non-finite ascent or
** norm is refused (MRL_ENONFINITE) and the parameters are unchanged. */
int mrl_policy_ascent_step(mrl_policy *p, mrl_optim *o, const float *ascent,
                           double scale, double lr, double max_grad_norm,
                           double *norm);
/* y += a·x (in double, rounded once): summing ascent directions. */
void mrl_axpy(float *y, double a, const float *x, size_t n);

/* Regression of a value network on targets: epochs of shuffled minibatches
** of Adam/SGD steps (the critic fit of TRPO/NPG/REINFORCE).  Restores the
** network and optimiser if a step turns non-finite. */
int mrl_value_fit(mrl_net *value, mrl_optim *opt, const float *obs,
                  const float *targets, int n, int epochs, int minibatch,
                  double lr, mrl_rng *rng, double *final_loss, char *err,
                  size_t errlen);
/* The same with a reduction hook (NULL: exactly mrl_value_fit): each
** minibatch gradient and loss become means over all processes' minibatches
** before the step.  rng must be in the same state on every process. */
int mrl_value_fit_reduce(mrl_net *value, mrl_optim *opt, const float *obs,
                         const float *targets, int n, int epochs,
                         int minibatch, double lr, mrl_rng *rng,
                         mrl_reduce_fn reduce, void *reduce_ud,
                         double *final_loss, char *err, size_t errlen);

/* ------------------------------------------------- background training */
/* A PPO update off the game thread.  The trainer owns private copies of a
** policy, a value network and both optimisers (moments and the shuffling
** generator live there), and one thread.  The game keeps acting with its
** own policy, which the trainer never touches: no lock on the act path.
**
**   submit   copies a collected batch in and starts the update (returns
**            at once; the batch's buffers may be reused immediately)
**   poll     idle / running / done / failed, never blocks
**   publish  when done: copies the trained parameters into the game's
**            networks (O(nparams) memcpy), at a frame boundary the game picks
**
** The batch's behaviour log-probabilities are those the game's (possibly
** lagging) parameters gave at acting time, so PPO's ratio π_θ/μ corrects
** the lag.  One thread drives the handle (all calls from the game thread). */

typedef struct mrl_bgtrain mrl_bgtrain;

typedef enum mrl_bg_state {
  MRL_BG_IDLE = 0,     /* nothing pending (new, or published) */
  MRL_BG_RUNNING = 1,  /* an update is on the thread */
  MRL_BG_DONE = 2,     /* it finished; publish takes its parameters */
  MRL_BG_FAILED = 3    /* it was refused (message in mrl_bgtrain_error);
                       ** the trainer's state is as before it */
} mrl_bg_state;

/* steps × num_envs transitions, time-major [T][N][…] as mrl_rollout.
** Either boot_obs is set and the thread computes V(s_t), the bootstraps
** and GAE with the TRAINER's critic, as mrl_rollout_bootstrap and
** mrl_rollout_gae do (final_obs rows are read for truncated steps only;
** final_obs NULL: V(s_t) then) — or boot_obs is NULL and values,
** advantages and returns are given (e.g. from mrl_rollout_gae). */
typedef struct mrl_bg_batch {
  int steps, num_envs;
  const float *obs;                 /* [T][N][obs_dim] */
  const float *actions;             /* [T][N][action_width] */
  const float *logp;                /* behaviour log π(a|s) at acting time */
  const float *rewards;             /* [T][N] (boot_obs mode) */
  const uint8_t *terminated, *truncated;
  const float *boot_obs;            /* [N][obs_dim], or NULL */
  const float *final_obs;           /* [T][N][obs_dim], nullable */
  double gamma, lambda;
  const float *values, *advantages, *returns;  /* when boot_obs is NULL */
} mrl_bg_batch;

/* Copies p, value and the optimisers (parameters, generator, moments). */
int mrl_bgtrain_new(mrl_bgtrain **out, const mrl_policy *p,
                    const mrl_net *value, const mrl_optim *policy_opt,
                    const mrl_optim *value_opt);
/* Cancels a running update (as mrl_bgtrain_cancel), joins the thread. */
void mrl_bgtrain_free(mrl_bgtrain *bg);
const char *mrl_bgtrain_error(const mrl_bgtrain *bg);
/* MRL_ESTATE while running; c->reduce must be NULL (no collective calls
** from the thread).  A result not yet published is kept: training
** continues from the trainer's parameters, and publish takes the latest. */
int mrl_bgtrain_submit(mrl_bgtrain *bg, const mrl_bg_batch *b,
                       const mrl_ppo_config *c);
/* The same from a rollout (copied, mrl_rollout_copy): boot_obs NULL, one
** ready for the update (after mrl_rollout_gae); else one filled by
** collect or put/put_outcome, and the thread runs mrl_rollout_bootstrap
** with boot_obs and mrl_rollout_gae with the trainer's critic. */
int mrl_bgtrain_submit_rollout(mrl_bgtrain *bg, mrl_rollout *r,
                               const float *boot_obs, double gamma,
                               double lambda, const mrl_ppo_config *c);
mrl_bg_state mrl_bgtrain_poll(mrl_bgtrain *bg);
mrl_bg_state mrl_bgtrain_wait(mrl_bgtrain *bg);
/* Ends a running update early (within a minibatch) and waits for it: the
** trainer is left as before it and the state is failed ("cancelled");
** a finished update is left alone.  Returns the state. */
mrl_bg_state mrl_bgtrain_cancel(mrl_bgtrain *bg);
/* Only when done (MRL_ESTATE otherwise, nothing copied): the trained
** parameters into p and value (nullable), which must have the trainer's
** sizes; the state becomes idle. */
int mrl_bgtrain_publish(mrl_bgtrain *bg, mrl_policy *p, mrl_net *value);
/* Not while running (MRL_ESTATE).  sync_in (load/resume): p's parameters
** and generator, value's parameters and the optimisers' state, each
** nullable, into the trainer; the state becomes idle (an unpublished
** result is dropped).  sync_out (checkpoints): the same from the trainer
** into the given objects (a trainer checkpoint: its moments and shuffling
** generator).  Sizes and optimiser kinds must match (MRL_EINVAL, nothing
** copied). */
int mrl_bgtrain_sync_in(mrl_bgtrain *bg, const mrl_policy *p,
                        const mrl_net *value, const mrl_optim *policy_opt,
                        const mrl_optim *value_opt);
int mrl_bgtrain_sync_out(mrl_bgtrain *bg, mrl_policy *p, mrl_net *value,
                         mrl_optim *policy_opt, mrl_optim *value_opt);
/* The report of the last update that succeeded (MRL_ESTATE if none yet or
** while running); updates: how many have succeeded. */
int mrl_bgtrain_report(mrl_bgtrain *bg, mrl_ppo_report *out);
int64_t mrl_bgtrain_updates(const mrl_bgtrain *bg);
/* The trainer's own objects, borrowed, NULL while running. */
mrl_policy *mrl_bgtrain_policy(mrl_bgtrain *bg);
mrl_net *mrl_bgtrain_value(mrl_bgtrain *bg);
mrl_optim *mrl_bgtrain_optim(mrl_bgtrain *bg, int which);  /* 0 policy, 1 value */

/* ------------------------------------------------------ option tables
** The options a binding reads from a table of named fields into one of the
** option structs: each field's name, kind, place in the struct, range and
** (enums) names are written here once, so the bindings hold one generic
** reader and no list of fields.  The defaults are the struct's own
** (mrl_ppo_config_default, …): a reader overwrites only the fields given.
** A table ends with an entry whose name is NULL (options.c). */
typedef enum mrl_opt_kind {
  MRL_OPT_INT = 0,   /* int, in [lo, hi] */
  MRL_OPT_NUM = 1,   /* double, finite */
  MRL_OPT_BOOL = 2,  /* int 0/1 */
  MRL_OPT_ENUM = 3   /* an enum (int) given by its name in names */
} mrl_opt_kind;
typedef struct mrl_opt {
  const char *name;
  int kind;                  /* mrl_opt_kind */
  int offset;                /* byte offset of the field in the struct */
  double lo, hi;             /* MRL_OPT_INT */
  const char *const *names;  /* MRL_OPT_ENUM: NULL-terminated, by value */
} mrl_opt;
typedef enum mrl_opt_table {
  MRL_OPTS_PPO_CONFIG = 0,  /* mrl_ppo_config without kl_beta, kl_target */
  MRL_OPTS_PPO_KL = 1,      /* mrl_ppo_config: kl_beta, kl_target */
  MRL_OPTS_PPO_LOSS = 2,    /* mrl_ppo_opts */
  MRL_OPTS_TRPO = 3,        /* mrl_trpo_opts */
  MRL_OPTS_PG = 4,          /* mrl_pg_opts */
  MRL_OPTS_NORM = 5,        /* mrl_norm_opts: update, clips, epsilon, gamma */
  MRL_OPTS_OPTIM = 6,       /* mrl_optim_hparams */
  MRL_OPTS_NET = 7          /* mrl_net_spec: in_dim, activation, out_dim, out_gain */
} mrl_opt_table;
/* The table, or NULL for an unknown one. */
const mrl_opt *mrl_opts(mrl_opt_table which);
/* reinforce, no baseline, gamma 0.99, no clipping or normalisation */
mrl_pg_opts mrl_pg_opts_default(void);
/* no handles; update on, clip_obs = clip_reward = 10, epsilon 1e-8,
** gamma 0.99 (Stable-Baselines3's VecNormalize) */
mrl_norm_opts mrl_norm_opts_default(void);

#ifdef __cplusplus
}
#endif

#endif
