/*
** body.c — a conv body then an MLP (body.h), the one home of their
** composition for policies and nets.
*/
#include "body.h"

static size_t round16(size_t n) { return (n + 15) & ~(size_t)15; }

size_t body_acts_floats(const mlp_shape *s, const conv_body *cb, int batch) {
  size_t n = mlp_acts_floats(s, batch);
  if (!cb->nlayers) return n;
  return round16(n) + conv_acts_floats(cb, batch);
}

size_t body_scratch_floats(const mlp_shape *s, const conv_body *cb,
                           int batch) {
  size_t n = mlp_scratch_floats(s, batch);
  if (!cb->nlayers) return n;
  return round16(n) + round16((size_t)batch * (size_t)cb->out_dim) +
         conv_scratch_floats(cb, batch);
}

/* The conv body's parts of acts and scratch at this batch size. */
static float *conv_acts(const mlp_shape *s, const float *acts, int batch) {
  return (float *)acts + round16(mlp_acts_floats(s, batch));
}
static float *conv_dflat(const mlp_shape *s, float *scratch, int batch) {
  return scratch + round16(mlp_scratch_floats(s, batch));
}
static float *conv_scratch(const mlp_shape *s, const conv_body *cb,
                           float *scratch, int batch) {
  return conv_dflat(s, scratch, batch) +
         round16((size_t)batch * (size_t)cb->out_dim);
}

void body_forward(const mlp_shape *s, const conv_body *cb, const float *params,
                  const float *x, int batch, float *acts) {
  if (!cb->nlayers) {
    mlp_forward(s, params, x, batch, acts);
    return;
  }
  const float *h = conv_forward(cb, s->kern, params, x, batch,
                                conv_acts(s, acts, batch));
  mlp_forward(s, params + cb->nparams, h, batch, acts);
}

void body_backward(const mlp_shape *s, const conv_body *cb,
                   const float *params, const float *x, const float *acts,
                   int batch, const float *dy, float *grad, float *scratch) {
  if (!cb->nlayers) {
    mlp_backward(s, params, x, acts, batch, dy, grad, scratch, NULL);
    return;
  }
  const size_t cn = cb->nparams;
  const float *cacts = conv_acts(s, acts, batch);
  float *dflat = conv_dflat(s, scratch, batch);
  mlp_backward(s, params + cn, conv_output(cb, cacts, batch), acts, batch, dy,
               grad + cn, scratch, dflat);
  conv_backward(cb, s->kern, params, x, cacts, batch, dflat, grad,
                conv_scratch(s, cb, scratch, batch));
}

void body_jvp(const mlp_shape *s, const conv_body *cb, const float *params,
              const float *v, const float *x, const float *acts, int batch,
              float *jy, float *scratch) {
  if (!cb->nlayers) {
    mlp_jvp(s, params, v, x, acts, batch, jy, scratch);
    return;
  }
  const size_t cn = cb->nparams;
  const float *cacts = conv_acts(s, acts, batch);
  float *tflat = conv_dflat(s, scratch, batch);
  conv_jvp(cb, s->kern, params, v, x, cacts, batch, tflat,
           conv_scratch(s, cb, scratch, batch));
  mlp_jvp_tx(s, params + cn, v + cn, conv_output(cb, cacts, batch), tflat,
             acts, batch, jy, scratch);
}
