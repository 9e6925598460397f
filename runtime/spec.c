/*
** spec.c — the constructors' defaults and checks (policy, net, optimiser)
** and the trainers' default options (PPO, TRPO), once, so every binding (and C caller) gets the same object for the same
** options and the same words when one is wrong.
*/
#include <math.h>
#include <stdint.h>
#include <stdio.h>

#include "conv.h"
#include "errmsg.h"
#include "moonrl.h"

mrl_ppo_config mrl_ppo_config_default(void) {
  mrl_ppo_config c = {0};
  c.epochs = 10;
  c.minibatch_size = 64;
  c.lr = 3e-4;
  c.clip_eps = 0.2;
  c.vf_coef = 0.5;
  c.max_grad_norm = 0.5;
  c.normalize_advantages = 1;
  return c;
}

mrl_ppo_opts mrl_ppo_opts_default(void) {
  mrl_ppo_opts o = {0.2, 0.0, 1};
  return o;
}

mrl_trpo_opts mrl_trpo_opts_default(void) {
  mrl_trpo_opts o = {0.01, 0.1, 0.8, 10, 10};
  return o;
}

/* SB3's MlpPolicy: two tanh layers of 64. */
static const int default_hidden[2] = {64, 64};

mrl_policy_spec mrl_policy_spec_default(void) {
  mrl_policy_spec s = {0};
  s.hidden = default_hidden;
  s.nhidden = 2;
  s.activation = MRL_TANH;
  s.action_kind = MRL_DISCRETE;
  s.init_log_std = 0.0;
  s.out_gain = 0.01;
  return s;
}

mrl_optim_hparams mrl_optim_defaults(mrl_optim_kind kind) {
  mrl_optim_hparams h = {kind == MRL_ADAM ? 0.9 : 0.0, 0.999, 1e-8};
  return h;
}

mrl_net_spec mrl_net_spec_default(void) {
  mrl_net_spec s = {0};
  s.hidden = default_hidden;
  s.nhidden = 2;
  s.activation = MRL_TANH;
  s.out_dim = 1;
  s.out_gain = 1.0;
  return s;
}


int mrl_optim_check(mrl_optim_kind kind, size_t nparams, double beta1, double beta2,
                    double eps, char *err, size_t errlen) {
  if (kind != MRL_ADAM && kind != MRL_SGD) return mrl_errbuf_(err, errlen, MRL_EINVAL, "unknown kind %d", (int)kind);
  /* Two moment vectors of nparams floats must be addressable. */
  if (nparams == 0 || nparams > SIZE_MAX / (2 * sizeof(float)))
    return mrl_errbuf_(err, errlen, MRL_EINVAL, "%zu parameters (at least 1)", nparams);
  if (!(beta1 >= 0 && beta1 < 1))
    return mrl_errbuf_(err, errlen, MRL_EINVAL, "%s %g is not in [0, 1)", kind == MRL_ADAM ? "beta1" : "momentum",
               beta1);
  if (kind == MRL_SGD) return MRL_OK;
  if (!(beta2 >= 0 && beta2 < 1)) return mrl_errbuf_(err, errlen, MRL_EINVAL, "beta2 %g is not in [0, 1)", beta2);
  if (!(eps >= 0) || !isfinite(eps)) return mrl_errbuf_(err, errlen, MRL_EINVAL, "eps %g is not finite and >= 0", eps);
  return MRL_OK;
}

/* A composite action's parts: known types, sizes, the total output width. */
static int policy_spec_check_parts(const mrl_action_part *parts, int nparts, char *err, size_t errlen) {
  static const char *const names[] = {"categorical", "gaussian", "bernoulli"};
  if (nparts < 1 || nparts > MRL_MAX_WIDTH || !parts)
    return mrl_errbuf_(err, errlen, MRL_EINVAL, "a composite action needs 1 to %d parts, got %d%s",
                       (int)MRL_MAX_WIDTH, nparts, nparts > 0 && !parts ? " and no array" : "");
  long total = 0;
  for (int i = 0; i < nparts; i++) {
    int t = (int)parts[i].type;
    if (t < MRL_PART_CATEGORICAL || t > MRL_PART_BERNOULLI)
      return mrl_errbuf_(err, errlen, MRL_EINVAL, "action part %d has unknown type %d", i + 1, t);
    if (parts[i].n < 1 || parts[i].n > MRL_MAX_WIDTH)
      return mrl_errbuf_(err, errlen, MRL_EINVAL, "action part %d (%s) has n %d, not in [1, %d]", i + 1, names[t],
                         parts[i].n, (int)MRL_MAX_WIDTH);
    total += parts[i].n;
  }
  if (total > MRL_MAX_WIDTH)
    return mrl_errbuf_(err, errlen, MRL_EINVAL, "the action parts need %ld outputs, more than %d", total,
                       (int)MRL_MAX_WIDTH);
  return MRL_OK;
}

int mrl_net_spec_check(const mrl_net_spec *s, char *err, size_t errlen) {
  if (!s) return mrl_errbuf_(err, errlen, MRL_EINVAL, "no spec");
  int in = s->in_dim;
  if (s->obs_shape[0] || s->obs_shape[1] || s->obs_shape[2] || s->nconv) {
    conv_body b;
    int rc = conv_body_init(&b, s->obs_shape, s->conv, s->nconv, s->activation, err, errlen);
    if (rc) return rc;
    if (in != 0 && in != b.in_dim)
      return mrl_errbuf_(err, errlen, MRL_EINVAL, "in_dim %d differs from C*H*W = %d of obs_shape", in, b.in_dim);
    in = b.out_dim;
  }
  if (in < 1 || in > MRL_MAX_WIDTH)
    return mrl_errbuf_(err, errlen, MRL_EINVAL, "in_dim %d is not in [1, %d]", in, (int)MRL_MAX_WIDTH);
  if (s->nhidden < 0 || s->nhidden > MRL_MAX_LAYERS || (s->nhidden > 0 && !s->hidden))
    return mrl_errbuf_(err, errlen, MRL_EINVAL, "%d hidden layers (0 to %d, widths given)", s->nhidden,
                       (int)MRL_MAX_LAYERS);
  for (int i = 0; i < s->nhidden; i++)
    if (s->hidden[i] < 1 || s->hidden[i] > MRL_MAX_WIDTH)
      return mrl_errbuf_(err, errlen, MRL_EINVAL, "hidden layer %d has width %d (1 to %d)", i + 1, s->hidden[i],
                         (int)MRL_MAX_WIDTH);
  if (s->activation != MRL_TANH && s->activation != MRL_RELU)
    return mrl_errbuf_(err, errlen, MRL_EINVAL, "unknown activation %d", (int)s->activation);
  if (s->out_dim < 1 || s->out_dim > MRL_MAX_WIDTH)
    return mrl_errbuf_(err, errlen, MRL_EINVAL, "out_dim %d is not in [1, %d]", s->out_dim, (int)MRL_MAX_WIDTH);
  if (!isfinite(s->out_gain)) return mrl_errbuf_(err, errlen, MRL_EINVAL, "out_gain is not finite");
  return MRL_OK;
}

int mrl_policy_spec_check(const mrl_policy_spec *s, char *err, size_t errlen) {
  if (!s) return mrl_errbuf_(err, errlen, MRL_EINVAL, "no spec");
  if (s->obs_shape[0] || s->obs_shape[1] || s->obs_shape[2] || s->nconv) {
    conv_body b;
    int rc = conv_body_init(&b, s->obs_shape, s->conv, s->nconv, s->activation, err, errlen);
    if (rc) return rc;
    if (s->obs_dim != 0 && s->obs_dim != b.in_dim)
      return mrl_errbuf_(err, errlen, MRL_EINVAL, "obs_dim %d differs from C*H*W = %d of obs_shape", s->obs_dim,
                         b.in_dim);
  } else if (s->obs_dim < 1 || s->obs_dim > MRL_MAX_WIDTH)
    return mrl_errbuf_(err, errlen, MRL_EINVAL, "obs_dim %d is not in [1, %d]", s->obs_dim, (int)MRL_MAX_WIDTH);
  if (s->nhidden < 0 || s->nhidden > MRL_MAX_LAYERS || (s->nhidden > 0 && !s->hidden))
    return mrl_errbuf_(err, errlen, MRL_EINVAL, "%d hidden layers (0 to %d, widths given)", s->nhidden,
               (int)MRL_MAX_LAYERS);
  for (int i = 0; i < s->nhidden; i++)
    if (s->hidden[i] < 1 || s->hidden[i] > MRL_MAX_WIDTH)
      return mrl_errbuf_(err, errlen, MRL_EINVAL, "hidden layer %d has width %d (1 to %d)", i + 1, s->hidden[i],
                 (int)MRL_MAX_WIDTH);
  if (s->activation != MRL_TANH && s->activation != MRL_RELU)
    return mrl_errbuf_(err, errlen, MRL_EINVAL, "unknown activation %d", (int)s->activation);
  if (s->action_kind == MRL_COMPOSITE) {
    int rc = policy_spec_check_parts(s->parts, s->nparts, err, errlen);
    if (rc) return rc;
  } else if (s->action_kind != MRL_DISCRETE && s->action_kind != MRL_BOX) {
    return mrl_errbuf_(err, errlen, MRL_EINVAL, "unknown action kind %d", (int)s->action_kind);
  } else if (s->action_n < 1 || s->action_n > MRL_MAX_WIDTH) {
    return mrl_errbuf_(err, errlen, MRL_EINVAL, "action n %d is not in [1, %d]", s->action_n, (int)MRL_MAX_WIDTH);
  }
  if (!isfinite(s->out_gain)) return mrl_errbuf_(err, errlen, MRL_EINVAL, "out_gain is not finite");
  if (s->action_kind == MRL_DISCRETE) return MRL_OK;
  if (!isfinite(s->init_log_std)) return mrl_errbuf_(err, errlen, MRL_EINVAL, "init_log_std is not finite");
  if (s->action_kind != MRL_BOX) return MRL_OK;
  /* one-sided bounds are allowed; NaN never */
  for (int i = 0; i < s->action_n; i++)
    if ((s->low && isnan(s->low[i])) || (s->high && isnan(s->high[i])) ||
        (s->low && s->high && s->low[i] > s->high[i]))
      return mrl_errbuf_(err, errlen, MRL_EINVAL, "action bounds: low[%d] <= high[%d] expected, got %g and %g",
                 i + 1, i + 1, s->low ? (double)s->low[i] : -INFINITY,
                 s->high ? (double)s->high[i] : INFINITY);
  return MRL_OK;
}
