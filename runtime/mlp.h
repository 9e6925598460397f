/*
** mlp.h — internal: the shape of a multilayer perceptron and its kernels,
** written over explicit parameter blocks so one shape can be evaluated at
** several parameter vectors (θ_old and θ for a KL) without copies.
**
** Layouts (all float32, row-major):
**   params  per Linear l: W_l [dims[l+1]][dims[l]], then b_l [dims[l+1]]
**   x       [batch][dims[0]]
**   acts    per layer l = 1..nlayers a block [batch][dims[l]], post-activation
**           for hidden layers, the raw output for the last one.
** The caller owns every buffer; sizes come from the *_floats helpers.
*/
#ifndef MRL_MLP_H
#define MRL_MLP_H

#include "kernels.h"
#include "moonrl.h"

typedef struct mlp_shape {
  int nlayers;                    /* Linear layers = nhidden + 1 */
  int dims[MRL_MAX_LAYERS + 2];   /* dims[0] = in … dims[nlayers] = out */
  mrl_activation act;
  size_t nparams;
  size_t woff[MRL_MAX_LAYERS + 1];
  size_t boff[MRL_MAX_LAYERS + 1];
  size_t act_per_row;             /* Σ_{l≥1} dims[l] */
  int max_width;                  /* max over dims */
  const struct mlp_kernels *kern; /* kernel table chosen at init (kernels.h) */
} mlp_shape;

/* Validates and fills s; MRL_EINVAL on a bad size or activation.  The
** kernel variant is the best this CPU runs, or the one named by the
** environment variable MRL_KERNELS=portable|avx2|avx512 when supported. */
int mlp_shape_init(mlp_shape *s, int in, const int *hidden, int nhidden,
                   int out, mrl_activation act);
/* Forces a variant ("portable", "avx2", "avx512"); MRL_EINVAL (s unchanged)
** if unknown or unsupported here.  mlp_kernels_name says which one runs. */
int mlp_shape_set_kernels(mlp_shape *s, const char *name);
const char *mlp_kernels_name(const mlp_shape *s);

/* Orthogonal init (gain √2 hidden, out_gain last layer), zero biases. */
int mlp_init_params(const mlp_shape *s, float *params, mrl_rng *rng,
                    double hidden_gain, double out_gain);

/* n floats (n ≥ 1), zeroed, on a 64-byte boundary (a cache line, one
** AVX-512 vector): the layers of the usual widths then start on one too,
** and a batch-1 forward never splits a weight load over two lines (that
** cost a fifth of its time).  free() releases it; NULL on failure. */
float *mlp_alloc_floats(size_t n);

/* Buffer sizes for 1 ≤ batch ≤ MRL_MAX_BATCH (0 if batch is out of range).
** Scratch is 2·batch·max_width: enough for backward and jvp. */
size_t mlp_acts_floats(const mlp_shape *s, int batch);
size_t mlp_scratch_floats(const mlp_shape *s, int batch);

/* Fills acts; the output block is mlp_output(s, acts, batch). */
void mlp_forward(const mlp_shape *s, const float *params, const float *x,
                 int batch, float *acts);
const float *mlp_output(const mlp_shape *s, const float *acts, int batch);

/* mlp_forward at batch 1 (one observation: a policy acting), inline for
** the act path.  Every layer waits on the last, so each kernel applies the
** activation before its store, and the last hidden layer folds itself into
** a narrow output layer while still in registers; two hidden layers (most
** policies) go in one kernel call.  Returns the output. */
static inline const float *mlp_forward1(const mlp_shape *s, const float *params,
                                        const float *x, float *acts) {
  const mlp_kernels *k = s->kern;
  if (s->nlayers == 3 && s->dims[2] % k->vw == 0 && s->dims[3] <= k->vw) {
    const float *const w[6] = {params + s->woff[0], params + s->boff[0],
                               params + s->woff[1], params + s->boff[1],
                               params + s->woff[2], params + s->boff[2]};
    k->forward1_2h(s->dims[0], s->dims[1], s->dims[2], s->dims[3], x, w, acts,
                   (int)s->act);
    return acts + s->dims[1] + s->dims[2];
  }
  const float *in = x;
  float *out = acts;
  for (int l = 0; l < s->nlayers; l++) {
    const int I = s->dims[l], O = s->dims[l + 1];
    if (l == s->nlayers - 2 && O % k->vw == 0 && s->dims[l + 2] <= k->vw) {
      k->linear1_out(O, I, in, params + s->woff[l], params + s->boff[l], out,
                     (int)s->act, s->dims[l + 2], params + s->woff[l + 1],
                     params + s->boff[l + 1], out + O);
      return out + O;
    }
    k->linear1(O, I, in, params + s->woff[l], params + s->boff[l], out,
               l < s->nlayers - 1 ? (int)s->act : MLP_ACT_NONE);
    in = out;
    out += O;
  }
  return in;
}
float *mlp_output_mut(const mlp_shape *s, float *acts, int batch);

/* grad += ∂L/∂θ given dy = ∂L/∂y [batch][out]; dx (nullable) := ∂L/∂x.
** x and acts are those of the forward pass. */
void mlp_backward(const mlp_shape *s, const float *params, const float *x,
                  const float *acts, int batch, const float *dy, float *grad,
                  float *scratch, float *dx);

/* jy [batch][out] := (∂y/∂θ)·v, after mlp_forward on x into acts. */
void mlp_jvp(const mlp_shape *s, const float *params, const float *v,
             const float *x, const float *acts, int batch, float *jy,
             float *scratch);
/* The same with a tangent tx [batch][in] of the input x (NULL: none),
** as when x is itself the output of a layer below (a conv body). */
void mlp_jvp_tx(const mlp_shape *s, const float *params, const float *v,
                const float *x, const float *tx, const float *acts, int batch,
                float *jy, float *scratch);
/* W [O][I] := orthogonal init times gain (torch.nn.init.orthogonal_). */
int mlp_orthogonal(float *W, int O, int I, mrl_rng *rng, double gain);

#endif
