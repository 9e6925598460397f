/*
** body.h — internal: what maps input rows to a network's output layer, for
** policies (policy_body.c) and nets (net.c) alike: an optional
** convolutional body (conv.h; cb->nlayers 0: none) then the MLP (mlp.h).
**
** Parameters: [0, cb->nparams) the conv layers, then the MLP's.  The acts
** block holds the MLP's activations, then (at a cache line) the conv
** body's; scratch the MLP's, then ∂/∂(flattened conv output) or its
** tangent, then the conv body's.  Without conv layers every call is the
** MLP's own, on the same buffers as before.
*/
#ifndef MRL_BODY_H
#define MRL_BODY_H

#include "conv.h"
#include "mlp.h"

size_t body_acts_floats(const mlp_shape *s, const conv_body *cb, int batch);
size_t body_scratch_floats(const mlp_shape *s, const conv_body *cb, int batch);
/* acts := the forward pass of x; the output is mlp_output(s, acts, batch). */
void body_forward(const mlp_shape *s, const conv_body *cb, const float *params,
                  const float *x, int batch, float *acts);
/* grad += Jᵀ dy (dy [batch][out]). */
void body_backward(const mlp_shape *s, const conv_body *cb,
                   const float *params, const float *x, const float *acts,
                   int batch, const float *dy, float *grad, float *scratch);
/* jy := J·v, after body_forward of x into acts. */
void body_jvp(const mlp_shape *s, const conv_body *cb, const float *params,
              const float *v, const float *x, const float *acts, int batch,
              float *jy, float *scratch);

#endif
