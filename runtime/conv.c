/*
** conv.c — the convolutional body (conv.h): im2col per chunk of rows, then
** the GEMM of the kernel table the caller passes (kernels.h), so a conv
** layer runs on the same portable / AVX2 / AVX-512 variant as the MLP.
*/
#include <stdint.h>
#include <stdio.h>
#include <string.h>

#include "conv.h"
#include "errmsg.h"
#include "mlp.h"
#include "simd_clones.h"

/* Floats of one chunk's im2col matrix: about 512 KB, so the matrix and the
** panels the GEMM reads from it stay in L2. */
enum { CONV_COL_TARGET = 131072 };

int conv_body_init(conv_body *b, const int shape[3],
                   const mrl_conv_layer *layers, int nlayers,
                   mrl_activation act, char *err, size_t errlen) {
  memset(b, 0, sizeof *b);
  if (!shape) return mrl_errbuf_(err, errlen, MRL_EINVAL, "obs_shape: missing");
  const int C = shape[0], H = shape[1], W = shape[2];
  if (C < 1 || H < 1 || W < 1)
    return mrl_errbuf_(err, errlen, MRL_EINVAL, "obs_shape {%d, %d, %d}: every size must be >= 1",
                    C, H, W);
  if ((int64_t)C * H * W > MRL_MAX_WIDTH)
    return mrl_errbuf_(err, errlen, MRL_EINVAL, "obs_shape {%d, %d, %d}: more than 65536 numbers",
                    C, H, W);
  if (nlayers < 0 || nlayers > MRL_MAX_CONV || (nlayers > 0 && !layers))
    return mrl_errbuf_(err, errlen, MRL_EINVAL, "conv: %d layers (0 to %d, layers given)",
                    nlayers, (int)MRL_MAX_CONV);
  if (act != MRL_TANH && act != MRL_RELU)
    return mrl_errbuf_(err, errlen, MRL_EINVAL, "unknown activation %d", (int)act);
  b->c = C;
  b->h = H;
  b->w = W;
  b->act = act;
  b->in_dim = C * H * W;
  int cin = C, h = H, w = W;
  size_t off = 0;
  for (int i = 0; i < nlayers; i++) {
    const mrl_conv_layer *s = &layers[i];
    conv_layer *L = &b->l[i];
    if (s->out < 1 || s->out > MRL_MAX_WIDTH)
      return mrl_errbuf_(err, errlen, MRL_EINVAL, "conv layer %d: out %d is not in [1, %d]",
                      i + 1, s->out, (int)MRL_MAX_WIDTH);
    if (s->kernel < 1 || s->stride < 1 || s->padding < 0)
      return mrl_errbuf_(err, errlen, MRL_EINVAL,
                      "conv layer %d: kernel %d and stride %d must be >= 1 "
                      "(padding >= 0)",
                      i + 1, s->kernel, s->stride);
    if (s->kernel > 1024 || s->stride > 1024 || s->padding > 1024)
      return mrl_errbuf_(err, errlen, MRL_EINVAL, "conv layer %d: kernel %d or padding %d over 1024",
                      i + 1, s->kernel, s->padding);
    if (h + 2 * s->padding < s->kernel || w + 2 * s->padding < s->kernel)
      return mrl_errbuf_(err, errlen, MRL_EINVAL,
                      "conv layer %d: kernel %d is larger than its padded "
                      "input (%d wide)",
                      i + 1, s->kernel,
                      (h < w ? h : w) + 2 * s->padding);
    int ho = (h + 2 * s->padding - s->kernel) / s->stride + 1;
    int wo = (w + 2 * s->padding - s->kernel) / s->stride + 1;
    int64_t kk = (int64_t)cin * s->kernel * s->kernel;
    if (kk > MRL_MAX_WIDTH)
      return mrl_errbuf_(err, errlen, MRL_EINVAL,
                      "conv layer %d: %d input channels x kernel %d^2 over 65536",
                      i + 1, cin, s->kernel);
    if ((int64_t)s->out * ho * wo > MRL_MAX_WIDTH)
      return mrl_errbuf_(err, errlen, MRL_EINVAL,
                      "conv layer %d: output %d x %d x %d over 65536 numbers",
                      i + 1, s->out, ho, wo);
    L->cin = cin;
    L->h = h;
    L->w = w;
    L->cout = s->out;
    L->ho = ho;
    L->wo = wo;
    L->k = s->kernel;
    L->stride = s->stride;
    L->pad = s->padding;
    L->woff = off;
    off += (size_t)s->out * (size_t)kk;
    L->boff = off;
    off += (size_t)s->out;
    cin = s->out;
    h = ho;
    w = wo;
  }
  b->nlayers = nlayers;
  b->nparams = off;
  b->out_dim = cin * h * w;
  return MRL_OK;
}

int conv_init_params(const conv_body *b, float *params, mrl_rng *rng,
                     double gain) {
  for (int i = 0; i < b->nlayers; i++) {
    const conv_layer *L = &b->l[i];
    int rc = mlp_orthogonal(params + L->woff, L->cout, L->cin * L->k * L->k,
                            rng, gain);
    if (rc) return rc;
    memset(params + L->boff, 0, (size_t)L->cout * sizeof(float));
  }
  return MRL_OK;
}

/* ------------------------------------------------------------ sizes */

static size_t layer_P(const conv_layer *L) {
  return (size_t)L->ho * (size_t)L->wo;
}
static size_t layer_K(const conv_layer *L) {
  return (size_t)L->cin * (size_t)L->k * (size_t)L->k;
}

int conv_chunk_rows(const conv_layer *L, int batch) {
  size_t per = (layer_K(L) + 1) * layer_P(L);
  size_t r = per ? CONV_COL_TARGET / per : 1;
  if (r < 1) r = 1;
  /* up to twice that if it makes rows·P a whole number of the GEMM's
  ** 64-column panels (no partial panel to copy and pad) */
  for (size_t t = 2 * r; t > r; t--)
    if ((t * layer_P(L)) % 64 == 0 && t <= (size_t)batch) {
      r = t;
      break;
    }
  return r > (size_t)batch ? batch : (int)r;
}

static size_t conv_col_floats(const conv_body *b, int batch);
static size_t conv_waug_floats(const conv_body *b);

size_t conv_acts_floats(const conv_body *b, int batch) {
  if (batch < 1 || batch > MRL_MAX_BATCH) return 0;
  size_t n = (size_t)b->out_dim;
  for (int i = 0; i < b->nlayers; i++)
    n += (size_t)b->l[i].cout * layer_P(&b->l[i]);
  /* then the forward's im2col chunk and [W | b] */
  return n * (size_t)batch + ((conv_col_floats(b, batch) + 15) & ~(size_t)15) +
         conv_waug_floats(b);
}

/* col, dcol: the largest chunk matrix (with its row of ones); d0, d1: the
** largest layer block; waug: the largest [W | b]. */
static size_t layer_col_floats(const conv_layer *L, int batch) {
  return (layer_K(L) + 1) * layer_P(L) * (size_t)conv_chunk_rows(L, batch) +
         16 + (size_t)(L->h + 2 * L->pad) * (size_t)(L->w + 2 * L->pad) + 16;
}

/* The input gradient of a stride-1 layer as a convolution of the output
** gradient: dx(c, y, x) = Σ_f Σ_ij w[f][c][i][j]·dz(f, y + p − i, x + p − j)
** is a Conv2d of dz (F channels, H'×W') with the kernel flipped and
** transposed, padding k − 1 − p, giving H×W.  An im2col of dz and one GEMM
** then replace the GEMM into a column matrix and its scatter (col2im). */
static int layer_transposable(const conv_layer *L) {
  return L->stride == 1 && L->pad <= L->k - 1;
}

static conv_layer transposed(const conv_layer *L) {
  conv_layer T = *L;
  T.cin = L->cout;
  T.h = L->ho;
  T.w = L->wo;
  T.cout = L->cin;
  T.ho = L->h;
  T.wo = L->w;
  T.pad = L->k - 1 - L->pad;
  return T;
}

/* wt[c][(f·k + i)·k + j] = w[f][c][k − 1 − i][k − 1 − j] */
static void pack_flipped(const conv_layer *L, const float *w, float *wt) {
  const int k = L->k, F = L->cout, C = L->cin;
  for (int c = 0; c < C; c++)
    for (int f = 0; f < F; f++)
      for (int i = 0; i < k; i++)
        for (int j = 0; j < k; j++)
          wt[(((size_t)c * F + f) * k + i) * k + j] =
              w[(((size_t)f * C + c) * k + (k - 1 - i)) * k + (k - 1 - j)];
}

static size_t conv_col_floats(const conv_body *b, int batch) {
  size_t m = 1;
  for (int i = 0; i < b->nlayers; i++) {
    const conv_layer *L = &b->l[i];
    size_t c = layer_col_floats(L, batch);
    if (c > m) m = c;
    if (i > 0 && layer_transposable(L)) {
      conv_layer T = transposed(L);
      c = layer_col_floats(&T, batch);
      if (c > m) m = c;
    }
  }
  return m;
}

static size_t conv_waug_floats(const conv_body *b) {
  size_t m = 1;
  for (int i = 0; i < b->nlayers; i++) {
    size_t c = (size_t)b->l[i].cout * (layer_K(&b->l[i]) + 1);
    if (c > m) m = c;
  }
  return m;
}

static size_t conv_blk_floats(const conv_body *b, int batch) {
  size_t m = 1;
  for (int i = 0; i < b->nlayers; i++) {
    size_t c = (size_t)b->l[i].cout * layer_P(&b->l[i]);
    if (c > m) m = c;
  }
  return m * (size_t)batch;
}

size_t conv_scratch_floats(const conv_body *b, int batch) {
  if (batch < 1 || batch > MRL_MAX_BATCH) return 0;
  /* each part rounded to a cache line, so all start on one */
  size_t c = (conv_col_floats(b, batch) + 15) & ~(size_t)15;
  size_t d = (conv_blk_floats(b, batch) + 15) & ~(size_t)15;
  /* [W | b] in a forward or J·v; flipped weights and the weight
  ** gradient in their order in a backward */
  return 2 * c + 2 * d + 2 * conv_waug_floats(b);
}

/* ------------------------------------------------------------ im2col */

/* A layer's input: element (b, c, y, x) at base[c·sc + b·sb + y·W + x]. */
typedef struct conv_in {
  const float *base;
  ptrdiff_t sc, sb;
} conv_in;

static conv_in layer_input(const conv_body *b, int l, const float *x,
                           const float *acts, int batch) {
  const conv_layer *L = &b->l[l];
  conv_in in;
  ptrdiff_t hw = (ptrdiff_t)L->h * L->w;
  if (l == 0) {
    in.base = x;
    in.sc = hw;
    in.sb = (ptrdiff_t)L->cin * hw;
    return in;
  }
  size_t off = 0;
  for (int i = 0; i < l - 1; i++)
    off += (size_t)b->l[i].cout * layer_P(&b->l[i]) * (size_t)batch;
  in.base = acts + off;
  in.sc = (ptrdiff_t)batch * hw;
  in.sb = hw;
  return in;
}

/* Both go through a zero-padded copy of one input plane, (H + 2p) ×
** (W + 2p) floats and 16 more, kept after the chunk's matrix (and its
** 16 floats of slack): every window is then in bounds, no branch per row. */
static float *pad_plane(const conv_layer *L, float *col, int nb) {
  return col + (layer_K(L) + 1) * layer_P(L) * (size_t)nb + 16;
}

/* col[r][(b − b0)·P + oy·W' + ox] = in(b, c, oy·s + i − p, ox·s + j − p)
** (0 outside), r = (c·k + i)·k + j, for the rows b0 … b0 + nb − 1; with
** ones, a last row r = Cin·k² of 1s (it multiplies the bias column of
** [W | b], so the GEMM adds the bias). */
MRL_SIMD_CLONES
static void im2col(const conv_layer *L, conv_in in, int b0, int nb,
                   float *col, int ones) {
  const int k = L->k, s = L->stride, Ho = L->ho, Wo = L->wo;
  const int H = L->h, W = L->w, pd = L->pad, Wp = W + 2 * pd;
  const size_t P = layer_P(L), ncol = P * (size_t)nb;
  float *plane = pad_plane(L, col, nb);
  memset(plane, 0, ((size_t)(H + 2 * pd) * Wp + 16) * sizeof(float));
  /* stride 1, rows of 8 to 16: every row but a plane's last is copied as
  ** 16 floats, the excess overwritten by the next row (rows at least 8
  ** long keep it inside this plane's run) */
  const int fast = s == 1 && Wo >= 8 && Wo <= 16;
  for (int bi = 0; bi < nb; bi++)
    for (int c = 0; c < L->cin; c++) {
      const float *src = in.base + c * in.sc + (ptrdiff_t)(b0 + bi) * in.sb;
      for (int y = 0; y < H; y++) {
        float *pr = plane + (size_t)(y + pd) * Wp + pd;
        const float *sr = src + (ptrdiff_t)y * W;
#pragma omp simd
        for (int x = 0; x < W; x++) pr[x] = sr[x];
      }
      for (int i = 0; i < k; i++)
        for (int j = 0; j < k; j++) {
          float *dst = col + ((size_t)(c * k + i) * k + j) * ncol + (size_t)bi * P;
          const float *sp = plane + (size_t)i * Wp + j;
          if (fast) {
            for (int oy = 0; oy < Ho - 1; oy++)
              memcpy(dst + (size_t)oy * Wo, sp + (size_t)oy * Wp, 16 * sizeof(float));
            float *dl = dst + (size_t)(Ho - 1) * Wo;
            const float *sl = sp + (size_t)(Ho - 1) * Wp;
#pragma omp simd
            for (int ox = 0; ox < Wo; ox++) dl[ox] = sl[ox];
          } else {
            for (int oy = 0; oy < Ho; oy++) {
              const float *sr = sp + (size_t)oy * s * Wp;
              float *dr = dst + (size_t)oy * Wo;
              for (int ox = 0; ox < Wo; ox++) dr[ox] = sr[(size_t)ox * s];
            }
          }
        }
    }
  if (ones) {
    float *row = col + layer_K(L) * ncol;
#pragma omp simd
    for (size_t q = 0; q < ncol; q++) row[q] = 1.0f;
  }
}

/* The adjoint of im2col: din(b, c, y, x) := Σ col[…] over the same indices
** (set, not added: a plane belongs to one chunk), din laid out
** [C][batch][H][W] (the inner layout: a layer > 0's input). */
MRL_SIMD_CLONES
static void col2im(const conv_layer *L, float *col, int b0, int nb,
                   int batch, float *din) {
  const int k = L->k, s = L->stride, Ho = L->ho, Wo = L->wo;
  const int H = L->h, W = L->w, pd = L->pad, Wp = W + 2 * pd;
  const size_t P = layer_P(L), ncol = P * (size_t)nb;
  const size_t np = (size_t)(H + 2 * pd) * Wp;
  float *plane = pad_plane(L, col, nb);
  for (int bi = 0; bi < nb; bi++)
    for (int c = 0; c < L->cin; c++) {
      memset(plane, 0, np * sizeof(float));
      for (int i = 0; i < k; i++)
        for (int j = 0; j < k; j++) {
          const float *sr = col + ((size_t)(c * k + i) * k + j) * ncol + (size_t)bi * P;
          float *dp = plane + (size_t)i * Wp + j;
          for (int oy = 0; oy < Ho; oy++) {
            float *dr = dp + (size_t)oy * s * Wp;
            const float *q = sr + (size_t)oy * Wo;
            if (s == 1) {
#pragma omp simd
              for (int ox = 0; ox < Wo; ox++) dr[ox] += q[ox];
            } else {
              for (int ox = 0; ox < Wo; ox++) dr[(size_t)ox * s] += q[ox];
            }
          }
        }
      float *dst = din + ((size_t)c * batch + (size_t)(b0 + bi)) * (size_t)H * W;
      for (int y = 0; y < H; y++) {
        float *dr = dst + (size_t)y * W;
        const float *pr = plane + (size_t)(y + pd) * Wp + pd;
#pragma omp simd
        for (int x = 0; x < W; x++) dr[x] = pr[x];
      }
    }
}

/* ------------------------------------------------------------ passes */

static float *layer_out(const conv_body *b, float *acts, int l, int batch) {
  size_t off = 0;
  for (int i = 0; i < l; i++)
    off += (size_t)b->l[i].cout * layer_P(&b->l[i]) * (size_t)batch;
  return acts + off;
}

static float *flat_out(const conv_body *b, float *acts, int batch) {
  return layer_out(b, acts, b->nlayers, batch);
}

const float *conv_output(const conv_body *b, const float *acts, int batch) {
  return flat_out(b, (float *)acts, batch);
}

/* waug [F][K + 1] = [W | b] of a layer in the block p. */
static void pack_waug(const conv_layer *L, const float *p, float *waug) {
  const size_t K = layer_K(L);
  for (int f = 0; f < L->cout; f++) {
    memcpy(waug + (size_t)f * (K + 1), p + L->woff + (size_t)f * K,
           K * sizeof(float));
    waug[(size_t)f * (K + 1) + K] = p[L->boff + f];
  }
}

/* out[f][b0·P + n] (+)= Σ_r A[f][r]·col[r][n] over one chunk: r < K + 1
** with A = [W | b] (set), or r < K with A = W (accumulate). */
static void layer_gemm(const mlp_kernels *k, const conv_layer *L,
                       const float *A, int aug, const float *col, float *out,
                       int batch, int b0, int nb) {
  const int K = (int)layer_K(L) + (aug ? 1 : 0);
  const int N = (int)(layer_P(L) * (size_t)nb);
  k->gemm(L->cout, N, K, A, K, 1, col, N, 1, out + (size_t)b0 * layer_P(L),
          (ptrdiff_t)layer_P(L) * batch, NULL, !aug);
}

/* flat[b][f·P + q] = blk[f][b][q], or the reverse (to_flat = 0), for the
** rows b0 … b0 + nb − 1. */
static void flatten_rows(const conv_layer *L, float *blk, float *flat,
                         int batch, int b0, int nb, int to_flat) {
  const size_t P = layer_P(L), F = (size_t)L->cout;
  for (int b = b0; b < b0 + nb; b++)
    for (size_t f = 0; f < F; f++) {
      float *a = blk + (f * (size_t)batch + (size_t)b) * P;
      float *z = flat + ((size_t)b * F + f) * P;
      if (to_flat)
        memcpy(z, a, P * sizeof(float));
      else
        memcpy(a, z, P * sizeof(float));
    }
}

/* Applies the activation to one chunk's rows of a layer block. */
static void act_chunk(const mlp_kernels *k, mrl_activation act,
                      const conv_layer *L, float *out, int batch, int b0,
                      int nb) {
  const size_t P = layer_P(L);
  for (int f = 0; f < L->cout; f++)
    k->act_forward(act, out + ((size_t)f * batch + b0) * P, P * (size_t)nb);
}

const float *conv_forward(const conv_body *b, const mlp_kernels *k,
                          const float *params, const float *x, int batch,
                          float *acts) {
  float *flat = flat_out(b, acts, batch);
  float *col = flat + (size_t)batch * (size_t)b->out_dim;
  float *waug = col + ((conv_col_floats(b, batch) + 15) & ~(size_t)15);
  if (b->nlayers == 0) {
    memcpy(flat, x, (size_t)batch * (size_t)b->in_dim * sizeof(float));
    return flat;
  }
  for (int l = 0; l < b->nlayers; l++) {
    const conv_layer *L = &b->l[l];
    const conv_in in = layer_input(b, l, x, acts, batch);
    float *out = layer_out(b, acts, l, batch);
    const int rows = conv_chunk_rows(L, batch);
    pack_waug(L, params, waug);
    for (int b0 = 0; b0 < batch; b0 += rows) {
      const int nb = batch - b0 < rows ? batch - b0 : rows;
      im2col(L, in, b0, nb, col, 1);
      layer_gemm(k, L, waug, 1, col, out, batch, b0, nb);
      act_chunk(k, b->act, L, out, batch, b0, nb);
      /* the last layer's chunk flattened while it is still in cache */
      if (l == b->nlayers - 1) flatten_rows(L, out, flat, batch, b0, nb, 1);
    }
  }
  return flat;
}

/* The rows a[r·lda + …n) as one block in buf (when it fits), else a: rows
** a whole layer block apart are 4 KB multiples apart at usual batches, all
** in one L1 set, and a GEMM reading them together would evict its own. */
static const float *rows_copy(const float *a, ptrdiff_t lda, int rows, int n,
                              float *buf, size_t cap) {
  if ((size_t)rows * (size_t)n > cap) return a;
  for (int r = 0; r < rows; r++)
    memcpy(buf + (size_t)r * n, a + r * lda, (size_t)n * sizeof(float));
  return buf;
}

/* Σ over a row of n floats (vector partial sums). */
static float row_sum(const float *a, size_t n) {
  float s = 0.0f;
#pragma omp simd reduction(+ : s)
  for (size_t i = 0; i < n; i++) s += a[i];
  return s;
}

void conv_backward(const conv_body *b, const mlp_kernels *k,
                   const float *params, const float *x, const float *acts,
                   int batch, const float *dflat, float *grad,
                   float *scratch) {
  if (b->nlayers == 0) return;
  const size_t ncol = (conv_col_floats(b, batch) + 15) & ~(size_t)15;
  const size_t nblk = (conv_blk_floats(b, batch) + 15) & ~(size_t)15;
  float *col = scratch, *dcol = scratch + ncol;
  float *dz = dcol + ncol, *dn = dz + nblk;
  const int last = b->nlayers - 1;
  /* dz: ∂L/∂(pre-activation output) of layer l, [F][batch][P] */
  flatten_rows(&b->l[last], dz, (float *)dflat, batch, 0, batch, 0);
  {
    const conv_layer *L = &b->l[last];
    k->act_backward(b->act, layer_out(b, (float *)acts, last, batch), dz,
                    (size_t)L->cout * layer_P(L) * (size_t)batch);
  }
  for (int l = last; l >= 0; l--) {
    const conv_layer *L = &b->l[l];
    const conv_in in = layer_input(b, l, x, acts, batch);
    const size_t P = layer_P(L), n = P * (size_t)batch;
    const int K = (int)layer_K(L);
    float *gW = grad + L->woff, *gb = grad + L->boff;
    for (int f = 0; f < L->cout; f++) gb[f] += row_sum(dz + (size_t)f * n, n);
    if (l > 0 && layer_transposable(L)) {
      /* One im2col of dz serves both products: dn = the flipped conv of
      ** dz, and since w(f, c, i, j)'s gradient is Σ_y x(c, y)·dz(f, y − i
      ** + p), the same rows (f, k−1−i, k−1−j) against the input block x
      ** (already [Cin][batch][H·W], no im2col of x) give it as
      ** R[c][(f, k−1−i, k−1−j)]. */
      const conv_layer T = transposed(L);
      const conv_in tz = {dz, (ptrdiff_t)n, (ptrdiff_t)P};
      const int KT = (int)layer_K(&T), HW = (int)layer_P(&T);
      const ptrdiff_t xs = (ptrdiff_t)HW * batch;
      float *wt = scratch + 2 * ncol + 2 * nblk;
      float *R = wt + conv_waug_floats(b);
      pack_flipped(L, params + L->woff, wt);
      memset(R, 0, (size_t)T.cout * (size_t)KT * sizeof(float));
      const int rt = conv_chunk_rows(&T, batch);
      for (int b0 = 0; b0 < batch; b0 += rt) {
        const int nb = batch - b0 < rt ? batch - b0 : rt;
        const int N = HW * nb;
        im2col(&T, tz, b0, nb, col, 0);
        k->gemm(T.cout, N, KT, wt, KT, 1, col, N, 1, dn + (size_t)b0 * HW, xs,
                NULL, 0);
        const float *xa = rows_copy(in.base + (size_t)b0 * HW, xs, T.cout,
                                    N, dcol, ncol);
        k->gemm_nt(T.cout, KT, N, xa, xa == dcol ? N : xs, col, N, R, KT);
      }
      const int kk = L->k, F = L->cout, C = L->cin;
      for (int f = 0; f < F; f++)
        for (int c = 0; c < C; c++)
          for (int i = 0; i < kk; i++)
            for (int j = 0; j < kk; j++)
              gW[(((size_t)f * C + c) * kk + i) * kk + j] +=
                  R[(size_t)c * KT + ((size_t)f * kk + (kk - 1 - i)) * kk + (kk - 1 - j)];
    } else {
      const int rows = conv_chunk_rows(L, batch);
      for (int b0 = 0; b0 < batch; b0 += rows) {
        const int nb = batch - b0 < rows ? batch - b0 : rows;
        const int N = (int)(P * (size_t)nb);
        const float *dzc = dz + (size_t)b0 * P;
        im2col(L, in, b0, nb, col, 0);
        /* gW[f][r] += Σ_n dz[f][n]·col[r][n] */
        k->gemm_nt(L->cout, K, N, dzc, (ptrdiff_t)n, col, N, gW, K);
        if (l == 0) continue;
        /* dcol[r][n] = Σ_f W[f][r]·dz[f][n] */
        k->gemm(K, N, L->cout, params + L->woff, 1, K, dzc, (ptrdiff_t)n, 1,
                dcol, N, NULL, 0);
        col2im(L, dcol, b0, nb, batch, dn);
      }
    }
    if (l == 0) break;
    const conv_layer *Lp = &b->l[l - 1];
    k->act_backward(b->act, layer_out(b, (float *)acts, l - 1, batch), dn,
                    (size_t)Lp->cout * layer_P(Lp) * (size_t)batch);
    float *t = dz;
    dz = dn;
    dn = t;
  }
}

void conv_jvp(const conv_body *b, const mlp_kernels *k, const float *params,
              const float *v, const float *x, const float *acts, int batch,
              float *tflat, float *scratch) {
  if (b->nlayers == 0) {
    memset(tflat, 0, (size_t)batch * (size_t)b->in_dim * sizeof(float));
    return;
  }
  const size_t ncol = (conv_col_floats(b, batch) + 15) & ~(size_t)15;
  const size_t nblk = (conv_blk_floats(b, batch) + 15) & ~(size_t)15;
  float *col = scratch;
  float *tin = scratch + 2 * ncol, *tout = tin + nblk, *waug = tout + nblk;
  for (int l = 0; l < b->nlayers; l++) {
    const conv_layer *L = &b->l[l];
    const conv_in in = layer_input(b, l, x, acts, batch);
    /* the input tangent, laid out as a layer > 0's input */
    const conv_in tn = {tin, (ptrdiff_t)batch * L->h * L->w,
                        (ptrdiff_t)L->h * L->w};
    const int rows = conv_chunk_rows(L, batch);
    pack_waug(L, v, waug);
    for (int b0 = 0; b0 < batch; b0 += rows) {
      const int nb = batch - b0 < rows ? batch - b0 : rows;
      /* dz = dW * x + db + W * t */
      im2col(L, in, b0, nb, col, 1);
      layer_gemm(k, L, waug, 1, col, tout, batch, b0, nb);
      if (l > 0) {
        im2col(L, tn, b0, nb, col, 0);
        layer_gemm(k, L, params + L->woff, 0, col, tout, batch, b0, nb);
      }
    }
    k->act_backward(b->act, layer_out(b, (float *)acts, l, batch), tout,
                    (size_t)L->cout * layer_P(L) * (size_t)batch);
    float *t = tin;
    tin = tout;
    tout = t;
  }
  flatten_rows(&b->l[b->nlayers - 1], tin, tflat, batch, 0, batch, 1);
}
