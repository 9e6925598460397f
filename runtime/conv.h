/*
** conv.h — internal: a stack of Conv2d layers (PyTorch nn.Conv2d: square
** kernel, stride, zero padding, cross-correlation), each followed by the
** activation, ending in the C-major flatten that feeds an MLP.
**
** Parameters, per layer l: weight [F][Cin][k][k] row-major, then bias [F]
** (the order of parameters() in PyTorch).  The observation rows are
** [batch][C][H][W].  Inside, every layer's output is kept as [F][batch][P]
** (P = H'·W'): a layer is then one GEMM whose long axis is batch·P, which
** keeps the kernels' wide register tiles full however few filters there
** are.  The last layer's output is copied once more to [batch][F·P], the
** flatten of the README ((f·H' + y)·W' + x).
**
** Each pass processes the batch in chunks of rows whose im2col matrix
** [Cin·k·k][rows·P] stays in cache (conv_chunk_rows).
*/
#ifndef MRL_CONV_H
#define MRL_CONV_H

#include <stddef.h>

#include "kernels.h"
#include "moonrl.h"

typedef struct conv_layer {
  int cin, h, w;        /* input channels and size */
  int cout, ho, wo;     /* output */
  int k, stride, pad;
  size_t woff, boff;    /* in the conv parameter block */
} conv_layer;

typedef struct conv_body {
  int nlayers;                  /* 0: no conv body */
  int c, h, w;                  /* observation shape; c = 0: none given */
  conv_layer l[MRL_MAX_CONV];
  mrl_activation act;
  size_t nparams;
  int in_dim;                   /* C·H·W */
  int out_dim;                  /* F·H'·W' of the last layer (in_dim if none) */
} conv_body;

/* Validates and fills b (nlayers may be 0: just a shape, no layers);
** MRL_EINVAL with the reason in err (nullable). */
int conv_body_init(conv_body *b, const int shape[3],
                   const mrl_conv_layer *layers, int nlayers,
                   mrl_activation act, char *err, size_t errlen);
/* Orthogonal init of every weight viewed as [F][Cin·k·k] (SB3 initialises
** its CNN extractor so, gain √2), zero biases. */
int conv_init_params(const conv_body *b, float *params, mrl_rng *rng,
                     double gain);

/* Buffer sizes for 1 ≤ batch ≤ MRL_MAX_BATCH. */
size_t conv_acts_floats(const conv_body *b, int batch);
size_t conv_scratch_floats(const conv_body *b, int batch);

/* Fills acts; returns the flattened output [batch][out_dim] inside acts. */
const float *conv_forward(const conv_body *b, const mlp_kernels *k,
                          const float *params, const float *x, int batch,
                          float *acts);
/* The flattened output inside acts (after conv_forward). */
const float *conv_output(const conv_body *b, const float *acts, int batch);
/* grad += ∂L/∂θ (conv part) given dflat = ∂L/∂(flattened output)
** [batch][out_dim]; x and acts as in the forward pass. */
void conv_backward(const conv_body *b, const mlp_kernels *k,
                   const float *params, const float *x, const float *acts,
                   int batch, const float *dflat, float *grad,
                   float *scratch);
/* tflat [batch][out_dim] := (∂ flattened output/∂θ)·v (v: conv part). */
void conv_jvp(const conv_body *b, const mlp_kernels *k, const float *params,
              const float *v, const float *x, const float *acts, int batch,
              float *tflat, float *scratch);

/* Rows per chunk of a layer's im2col (≥ 1). */
int conv_chunk_rows(const conv_layer *L, int batch);

#endif
