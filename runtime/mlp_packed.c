/*
** mlp_packed.c — the forward pass over a transposed weight copy (see
** mlp_packed.h).  Measured on a 64×64 layer (AVX-512): transposing it
** costs ~300 ns, about what the product itself costs for 8 rows, so with
** the copy made once per rollout a 4-row step costs 150 ns instead of 460.
*/
#include "mlp_packed.h"

#include "kernels.h"

void mlp_pack_wt(const mlp_shape *s, const float *params, float *wt) {
  for (int l = 0; l < s->nlayers; l++) {
    const int I = s->dims[l], O = s->dims[l + 1];
    const float *W = params + s->woff[l];
    float *T = wt + s->woff[l];
    for (int o = 0; o < O; o++)
      for (int i = 0; i < I; i++) T[(size_t)i * O + o] = W[(size_t)o * I + i];
  }
}

void mlp_forward_wt(const mlp_shape *s, const float *params, const float *wt,
                    const float *x, int batch, float *acts) {
  /* one or two rows: dot products over W's own rows are as fast */
  if (batch < 3) {
    mlp_forward(s, params, x, batch, acts);
    return;
  }
  const mlp_kernels *k = s->kern;
  const float *in = x;
  float *out = acts;
  for (int l = 0; l < s->nlayers; l++) {
    const int I = s->dims[l], O = s->dims[l + 1];
    const float *b = params + s->boff[l];
    if (O < 8)  /* a narrow output layer: dot products (as mlp.c) */
      k->linear_dot(batch, O, I, in, params + s->woff[l], b, out);
    else        /* rows of Wᵀ are the contiguous n axis: read in place */
      k->gemm(batch, O, I, in, I, 1, wt + s->woff[l], O, 1, out, O, b, 0);
    if (l < s->nlayers - 1) k->act_forward(s->act, out, (size_t)batch * O);
    in = out;
    out += (size_t)batch * O;
  }
}
