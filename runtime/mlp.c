/*
** mlp.c — MLP shape, SB3-style orthogonal init, forward, backward and
** forward-mode (JVP) passes over caller-owned buffers.  The dense work goes
** through the kernel table of the shape (kernels.h); this file only chooses
** loop orientations and walks the layers.
*/
#include <math.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include "kernels.h"
#include "mlp.h"
#include "rng_impl.h"

/* ----------------------------------------------------------- variants */

const mlp_kernels *mlp_kernels_find(const char *name) {
  const mlp_kernels *best = &mlp_kernels_portable;
  int has2 = 0, has512 = 0;
#ifdef MLP_HAVE_X86_KERNELS
  __builtin_cpu_init();
  has2 = __builtin_cpu_supports("avx2") && __builtin_cpu_supports("fma");
  has512 = has2 && __builtin_cpu_supports("avx512f") &&
           __builtin_cpu_supports("avx512dq") &&
           __builtin_cpu_supports("avx512vl");
  if (has512) best = &mlp_kernels_avx512;
  else if (has2) best = &mlp_kernels_avx2;
#endif
  if (!name || !*name) return best;
  if (strcmp(name, "portable") == 0) return &mlp_kernels_portable;
#ifdef MLP_HAVE_X86_KERNELS
  if (strcmp(name, "avx2") == 0) return has2 ? &mlp_kernels_avx2 : NULL;
  if (strcmp(name, "avx512") == 0) return has512 ? &mlp_kernels_avx512 : NULL;
#endif
  (void)has2;
  (void)has512;
  return NULL;
}

int mlp_shape_set_kernels(mlp_shape *s, const char *name) {
  const mlp_kernels *k = mlp_kernels_find(name);
  if (!s || !k) return MRL_EINVAL;
  s->kern = k;
  return MRL_OK;
}

const char *mlp_kernels_name(const mlp_shape *s) {
  return s && s->kern ? s->kern->name : "none";
}

/* -------------------------------------------------------------- shape */

int mlp_shape_init(mlp_shape *s, int in, const int *hidden, int nhidden,
                   int out, mrl_activation act) {
  if (!s) return MRL_EINVAL;
  if (nhidden < 0 || nhidden > MRL_MAX_LAYERS) return MRL_EINVAL;
  if (nhidden > 0 && !hidden) return MRL_EINVAL;
  if (act != MRL_TANH && act != MRL_RELU) return MRL_EINVAL;
  if (in < 1 || in > MRL_MAX_WIDTH || out < 1 || out > MRL_MAX_WIDTH)
    return MRL_EINVAL;
  for (int i = 0; i < nhidden; i++)
    if (hidden[i] < 1 || hidden[i] > MRL_MAX_WIDTH) return MRL_EINVAL;

  mlp_shape t;
  memset(&t, 0, sizeof t);
  t.nlayers = nhidden + 1;
  t.act = act;
  t.dims[0] = in;
  for (int i = 0; i < nhidden; i++) t.dims[i + 1] = hidden[i];
  t.dims[t.nlayers] = out;
  size_t off = 0, per_row = 0;
  int maxw = 0;
  for (int l = 0; l <= t.nlayers; l++)
    if (t.dims[l] > maxw) maxw = t.dims[l];
  for (int l = 0; l < t.nlayers; l++) {
    size_t I = (size_t)t.dims[l], O = (size_t)t.dims[l + 1];
    /* guard every sum and product, so a 32-bit size_t fails cleanly */
    if (O > (SIZE_MAX - O) / I) return MRL_EINVAL;
    size_t w = O * I;
    if (off > SIZE_MAX - w - O) return MRL_EINVAL;
    t.woff[l] = off;
    t.boff[l] = off + w;
    off += w + O;
    per_row += O;
  }
  t.nparams = off;
  t.act_per_row = per_row;
  t.max_width = maxw;
  /* acts and scratch for the largest batch must be addressable too */
  if (per_row > SIZE_MAX / (size_t)MRL_MAX_BATCH / sizeof(float) ||
      (size_t)maxw > SIZE_MAX / 2 / (size_t)MRL_MAX_BATCH / sizeof(float))
    return MRL_EINVAL;
  t.kern = mlp_kernels_find(getenv("MRL_KERNELS"));
  if (!t.kern) t.kern = mlp_kernels_find(NULL);
  *s = t;
  return MRL_OK;
}

float *mlp_alloc_floats(size_t n) {
  if (n == 0 || n > (SIZE_MAX - 64) / sizeof(float)) return NULL;
  size_t bytes = (n * sizeof(float) + 63) / 64 * 64;  /* a multiple, as C11 asks */
  float *p = aligned_alloc(64, bytes);
  if (p) memset(p, 0, bytes);
  return p;
}

size_t mlp_acts_floats(const mlp_shape *s, int batch) {
  if (!s || batch < 1 || batch > MRL_MAX_BATCH) return 0;
  return (size_t)batch * s->act_per_row;
}

size_t mlp_scratch_floats(const mlp_shape *s, int batch) {
  if (!s || batch < 1 || batch > MRL_MAX_BATCH) return 0;
  return 2 * (size_t)batch * (size_t)s->max_width;
}

/* Start of the activation block of layer l (1-based: output of Linear l−1). */
static size_t act_offset(const mlp_shape *s, int l, int batch) {
  size_t rows = 0;
  for (int j = 1; j < l; j++) rows += (size_t)s->dims[j];
  return rows * (size_t)batch;
}

const float *mlp_output(const mlp_shape *s, const float *acts, int batch) {
  return acts + act_offset(s, s->nlayers, batch);
}

float *mlp_output_mut(const mlp_shape *s, float *acts, int batch) {
  return acts + act_offset(s, s->nlayers, batch);
}

/* --------------------------------------------------------------- init */

/* Orthogonal init as torch.nn.init.orthogonal_ (what SB3 uses): a Gaussian
** matrix, transposed to be tall, QR-factorised, Q's columns sign-corrected so
** diag(R) > 0, transposed back, times gain.  Gram–Schmidt yields exactly the
** diag(R) > 0 factor; a second orthogonalisation pass keeps it accurate in
** double even for nearly dependent columns. */
int mlp_orthogonal(float *W, int O, int I, mrl_rng *rng, double gain) {
  size_t m = (size_t)(O >= I ? O : I), n = (size_t)(O >= I ? I : O);
  if (n > SIZE_MAX / sizeof(double) / m) return MRL_ENOMEM;
  double *q = malloc(m * n * sizeof(double));  /* column-major m×n */
  if (!q) return MRL_ENOMEM;
  for (size_t o = 0; o < (size_t)O; o++)
    for (size_t i = 0; i < (size_t)I; i++) {
      double g = rng_normal(rng);
      /* tall A = G (O ≥ I) or Gᵀ; element (r, c) at q[c·m + r] */
      if (O >= I) q[i * m + o] = g;
      else q[o * m + i] = g;
    }
  for (size_t c = 0; c < n; c++) {
    double *v = q + c * m;
    for (int pass = 0; pass < 2; pass++)
      for (size_t k = 0; k < c; k++) {
        const double *u = q + k * m;
        double d = 0.0;
        for (size_t r = 0; r < m; r++) d += u[r] * v[r];
        for (size_t r = 0; r < m; r++) v[r] -= d * u[r];
      }
    double nn = 0.0;
    for (size_t r = 0; r < m; r++) nn += v[r] * v[r];
    nn = sqrt(nn);
    double inv = nn > 0.0 ? 1.0 / nn : 0.0;  /* probability 0 of a zero column */
    for (size_t r = 0; r < m; r++) v[r] *= inv;
  }
  for (size_t o = 0; o < (size_t)O; o++)
    for (size_t i = 0; i < (size_t)I; i++) {
      double e = O >= I ? q[i * m + o] : q[o * m + i];
      W[o * (size_t)I + i] = (float)(gain * e);
    }
  free(q);
  return MRL_OK;
}

int mlp_init_params(const mlp_shape *s, float *params, mrl_rng *rng,
                    double hidden_gain, double out_gain) {
  if (!s || !params || !rng) return MRL_EINVAL;
  if (!isfinite(hidden_gain) || !isfinite(out_gain)) return MRL_EINVAL;
  for (int l = 0; l < s->nlayers; l++) {
    int I = s->dims[l], O = s->dims[l + 1];
    double gain = l == s->nlayers - 1 ? out_gain : hidden_gain;
    int rc = mlp_orthogonal(params + s->woff[l], O, I, rng, gain);
    if (rc != MRL_OK) return rc;
    memset(params + s->boff[l], 0, (size_t)O * sizeof(float));
  }
  return MRL_OK;
}

/* ------------------------------------------------------------- passes */

/* y[batch][O] = x[batch][I]·Wᵀ + b.  Packing Wᵀ costs O·I moves, repaid
** only over several rows and wide outputs; otherwise dot products over the
** contiguous rows of W win (batch 1, and the narrow output layer). */
static void linear(const mlp_kernels *k, int batch, int I, int O,
                   const float *x, const float *W, const float *b, float *y) {
  /* rows shorter than a vector make dot products all tail (the kernels
  ** special-case only I = 2, 4, 8): packing the few columns of another
  ** narrow-input layer is cheaper then */
  if ((batch < 4 && (I >= 16 || I == 2 || I == 4 || I == 8)) || O < 8)
    k->linear_dot(batch, O, I, x, W, b, y);
  else
    k->gemm(batch, O, I, x, I, 1, W, 1, I, y, O, b, 0);
}

void mlp_forward(const mlp_shape *s, const float *params, const float *x,
                 int batch, float *acts) {
  const mlp_kernels *k = s->kern;
  const float *in = x;
  float *out = acts;
  if (batch == 1) {
    mlp_forward1(s, params, x, acts);
    return;
  }
  for (int l = 0; l < s->nlayers; l++) {
    int I = s->dims[l], O = s->dims[l + 1];
    linear(k, batch, I, O, in, params + s->woff[l], params + s->boff[l], out);
    if (l < s->nlayers - 1) k->act_forward(s->act, out, (size_t)batch * O);
    in = out;
    out += (size_t)batch * O;
  }
}

/* gW[O][I] += dzᵀ·x over the batch.  The kernel vectorises along its n
** axis; when I is narrow (the observation layer) and O is wide, computing
** gWᵀ (n = O) in stack-sized blocks and adding it transposed wastes far
** fewer padded lanes. */
static void weight_grad(const mlp_kernels *k, int batch, int I, int O,
                        const float *dz, const float *x, float *gW) {
  if (I >= 16 || O <= I) {
    k->gemm(O, I, batch, dz, 1, O, x, I, 1, gW, I, NULL, 1);
    return;
  }
  enum { TMP = 4096 };
  float tmp[TMP];
  int ob = O < TMP ? O : TMP;
  int ib = TMP / ob;
  for (int o0 = 0; o0 < O; o0 += ob) {
    int ow = O - o0 < ob ? O - o0 : ob;
    for (int i0 = 0; i0 < I; i0 += ib) {
      int iw = I - i0 < ib ? I - i0 : ib;
      k->gemm(iw, ow, batch, x + i0, 1, I, dz + o0, O, 1, tmp, ow, NULL, 0);
      for (int i = 0; i < iw; i++)
        for (int o = 0; o < ow; o++)
          gW[(size_t)(o0 + o) * I + i0 + i] += tmp[(size_t)i * ow + o];
    }
  }
}

void mlp_backward(const mlp_shape *s, const float *params, const float *x,
                  const float *acts, int batch, const float *dy, float *grad,
                  float *scratch, float *dx) {
  const mlp_kernels *k = s->kern;
  float *buf[2] = {scratch, scratch + (size_t)batch * s->max_width};
  const float *dz = dy;
  for (int l = s->nlayers - 1; l >= 0; l--) {
    int I = s->dims[l], O = s->dims[l + 1];
    const float *xin = l == 0 ? x : acts + act_offset(s, l, batch);
    weight_grad(k, batch, I, O, dz, xin, grad + s->woff[l]);
    k->add_colsum(batch, O, dz, grad + s->boff[l]);
    if (l == 0 && !dx) break;
    float *dst = l == 0 ? dx : (dz == buf[0] ? buf[1] : buf[0]);
    /* dx = dz·W: W's rows are already the contiguous n axis */
    k->gemm(batch, I, O, dz, O, 1, params + s->woff[l], I, 1, dst, I, NULL, 0);
    if (l > 0) k->act_backward(s->act, xin, dst, (size_t)batch * I);
    dz = dst;
  }
}

void mlp_jvp(const mlp_shape *s, const float *params, const float *v,
             const float *x, const float *acts, int batch, float *jy,
             float *scratch) {
  mlp_jvp_tx(s, params, v, x, NULL, acts, batch, jy, scratch);
}

void mlp_jvp_tx(const mlp_shape *s, const float *params, const float *v,
                const float *x, const float *tx, const float *acts, int batch,
                float *jy, float *scratch) {
  const mlp_kernels *k = s->kern;
  float *buf[2] = {scratch, scratch + (size_t)batch * s->max_width};
  const float *t = tx;  /* tangent of the layer input (NULL: 0) */
  for (int l = 0; l < s->nlayers; l++) {
    int I = s->dims[l], O = s->dims[l + 1];
    const float *xin = l == 0 ? x : acts + act_offset(s, l, batch);
    int last = l == s->nlayers - 1;
    float *dst = last ? jy : (t == buf[0] ? buf[1] : buf[0]);
    /* dz = x·dWᵀ + db + t·Wᵀ */
    linear(k, batch, I, O, xin, v + s->woff[l], v + s->boff[l], dst);
    if (t)
      k->gemm(batch, O, I, t, I, 1, params + s->woff[l], 1, I, dst, O, NULL, 1);
    if (!last)
      k->act_backward(s->act, acts + act_offset(s, l + 1, batch), dst,
                      (size_t)batch * O);
    t = dst;
  }
}
