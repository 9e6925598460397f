/*
** policy_body.c — what maps a policy's observation rows to its output
** layer: the MLP (mlp.h), after an optional convolutional body (conv.h)
** for grid observations, composed in body.c.  A policy without conv layers
** calls the MLP exactly as before; with them, the parameter block is
**   [0, conv.nparams)          conv weights and biases (conv.h order)
**   [conv.nparams, nnet)       the Linears (mlp.h order)
*/
#include <math.h>
#include <string.h>

#include "body.h"
#include "policy_impl.h"

int policy_body_init(mrl_policy *p, const mrl_policy_spec *spec, int out) {
  int in = spec->obs_dim;
  if (spec->obs_shape[0] || spec->obs_shape[1] || spec->obs_shape[2] ||
      spec->nconv) {
    int rc = conv_body_init(&p->conv, spec->obs_shape, spec->conv,
                            spec->nconv, spec->activation, NULL, 0);
    if (rc) return rc;
    in = p->conv.out_dim;
  }
  return mlp_shape_init(&p->shape, in, spec->hidden, spec->nhidden, out,
                        spec->activation);
}

int policy_body_init_params(mrl_policy *p, double out_gain) {
  if (p->conv.nlayers) {
    int rc = conv_init_params(&p->conv, p->params, &p->rng, sqrt(2.0));
    if (rc) return rc;
  }
  return mlp_init_params(&p->shape, p->params + p->conv.nparams, &p->rng,
                         sqrt(2.0), out_gain);
}

int policy_obs_dim(const mrl_policy *p) {
  return p->conv.nlayers ? p->conv.in_dim : p->shape.dims[0];
}

size_t policy_body_acts_floats(const mrl_policy *p, int batch) {
  return body_acts_floats(&p->shape, &p->conv, batch);
}

size_t policy_body_scratch_floats(const mrl_policy *p, int batch) {
  return body_scratch_floats(&p->shape, &p->conv, batch);
}

void policy_body_forward(mrl_policy *p, const float *params, const float *obs,
                         int batch, float *acts) {
  body_forward(&p->shape, &p->conv, params, obs, batch, acts);
}

void policy_body_backward(mrl_policy *p, const float *params,
                          const float *obs, const float *acts, int batch,
                          float *grad) {
  body_backward(&p->shape, &p->conv, params, obs, acts, batch, p->dy, grad,
                p->scratch);
}

void policy_body_jvp(mrl_policy *p, const float *v, const float *obs,
                     int batch, float *jy) {
  body_jvp(&p->shape, &p->conv, p->params, v, obs, p->acts, batch, jy,
           p->scratch);
}

/* ------------------------------------------------------------ accessors */

int mrl_policy_obs_shape(const mrl_policy *p, int shape[3]) {
  if (!p || !p->conv.c) return 0;
  if (shape) {
    shape[0] = p->conv.c;
    shape[1] = p->conv.h;
    shape[2] = p->conv.w;
  }
  return 1;
}

int mrl_policy_nconv(const mrl_policy *p) { return p ? p->conv.nlayers : 0; }

int mrl_policy_conv(const mrl_policy *p, int i, mrl_conv_layer *out) {
  if (!p || !out || i < 0 || i >= p->conv.nlayers) return 0;
  const conv_layer *L = &p->conv.l[i];
  out->out = L->cout;
  out->kernel = L->k;
  out->stride = L->stride;
  out->padding = L->pad;
  return 1;
}
