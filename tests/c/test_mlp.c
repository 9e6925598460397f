/* test_mlp.c — MLP kernels against a plain double-precision reference:
** shapes, orthogonal init, forward, backward (central differences), dx,
** JVP (differences and the adjoint identity), the vectorised activations,
** and every SIMD variant against the portable one. */
#include <math.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include "kernels.h"
#include "mlp.h"
#include "rng_impl.h"
#include "tap.h"

/* ------------------------------------------------ double reference */

static void ref_forward(const mlp_shape *s, const double *p, const double *x,
                        int batch, double *y) {
  double h[2][512];
  int out = s->dims[s->nlayers];
  for (int b = 0; b < batch; b++) {
    const double *in = x + (size_t)b * s->dims[0];
    for (int l = 0; l < s->nlayers; l++) {
      int I = s->dims[l], O = s->dims[l + 1];
      double *z = h[l & 1];
      const double *W = p + s->woff[l], *bias = p + s->boff[l];
      for (int o = 0; o < O; o++) {
        double acc = bias[o];
        for (int i = 0; i < I; i++) acc += W[(size_t)o * I + i] * in[i];
        if (l < s->nlayers - 1)
          acc = s->act == MRL_TANH ? tanh(acc) : (acc > 0 ? acc : 0);
        z[o] = acc;
      }
      in = z;
    }
    memcpy(y + (size_t)b * out, in, (size_t)out * sizeof(double));
  }
}


/* ‖got − want‖₂ ≤ atol·√n + rtol·‖want‖₂, the golden-file criterion */
static int close_vec(const float *got, const double *want, size_t n,
                     double rtol, double atol, double *relerr) {
  double e = 0, w = 0;
  for (size_t i = 0; i < n; i++) {
    double d = got[i] - want[i];
    e += d * d;
    w += want[i] * want[i];
  }
  e = sqrt(e);
  w = sqrt(w);
  if (relerr) *relerr = e / (w > 0 ? w : 1);
  return isfinite(e) && e <= atol * sqrt((double)n) + rtol * w;
}

static void fill_normal(mrl_rng *r, float *v, size_t n, double sd) {
  for (size_t i = 0; i < n; i++) v[i] = (float)(sd * rng_normal(r));
}

/* ------------------------------------------------------------ shapes */

static void test_shape(void) {
  mlp_shape s;
  int h2[] = {64, 64};
  TAP_OK(mlp_shape_init(&s, 4, h2, 2, 2, MRL_TANH) == MRL_OK, "4-64-64-2 shape");
  TAP_OK(s.nparams == 4 * 64 + 64 + 64 * 64 + 64 + 64 * 2 + 2,
         "nparams %zu", s.nparams);
  TAP_OK(s.woff[1] == 320 && s.boff[1] == 320 + 4096 && s.boff[2] == 4608,
         "flat offsets follow nn.Sequential");
  TAP_OK(s.act_per_row == 130 && s.max_width == 64, "act_per_row and max_width");
  TAP_OK(mlp_acts_floats(&s, 10) == 1300 && mlp_scratch_floats(&s, 10) == 1280,
         "buffer sizes");
  TAP_OK(mlp_acts_floats(&s, 0) == 0 && mlp_scratch_floats(&s, MRL_MAX_BATCH + 1) == 0,
         "buffer sizes refuse a bad batch");
  TAP_OK(mlp_shape_init(&s, 3, NULL, 0, 2, MRL_RELU) == MRL_OK && s.nlayers == 1 &&
         s.nparams == 8, "nhidden = 0 is one Linear");
  int bad[] = {64, 0};
  int wide[] = {MRL_MAX_WIDTH + 1};
  int many[MRL_MAX_LAYERS + 1];
  for (int i = 0; i <= MRL_MAX_LAYERS; i++) many[i] = 2;
  TAP_OK(mlp_shape_init(&s, 4, bad, 2, 2, MRL_TANH) == MRL_EINVAL, "zero width refused");
  TAP_OK(mlp_shape_init(&s, 4, wide, 1, 2, MRL_TANH) == MRL_EINVAL, "width > max refused");
  TAP_OK(mlp_shape_init(&s, 0, h2, 2, 2, MRL_TANH) == MRL_EINVAL, "in = 0 refused");
  TAP_OK(mlp_shape_init(&s, 4, h2, 2, 0, MRL_TANH) == MRL_EINVAL, "out = 0 refused");
  TAP_OK(mlp_shape_init(&s, 4, many, MRL_MAX_LAYERS + 1, 2, MRL_TANH) == MRL_EINVAL,
         "too many layers refused");
  TAP_OK(mlp_shape_init(&s, 4, many, MRL_MAX_LAYERS, 2, MRL_TANH) == MRL_OK,
         "MRL_MAX_LAYERS hidden layers accepted");
  TAP_OK(mlp_shape_init(&s, 4, h2, -1, 2, MRL_TANH) == MRL_EINVAL, "nhidden < 0 refused");
  TAP_OK(mlp_shape_init(&s, 4, NULL, 2, 2, MRL_TANH) == MRL_EINVAL, "NULL hidden refused");
  TAP_OK(mlp_shape_init(&s, 4, h2, 2, 2, (mrl_activation)7) == MRL_EINVAL,
         "unknown activation refused");
  TAP_OK(mlp_shape_init(NULL, 4, h2, 2, 2, MRL_TANH) == MRL_EINVAL, "NULL shape refused");
  mlp_shape_init(&s, 4, h2, 2, 2, MRL_TANH);
  TAP_OK(mlp_shape_set_kernels(&s, "bogus") == MRL_EINVAL, "unknown variant refused");
  const char *env = getenv("MRL_KERNELS");
  char saved[32] = "";
  if (env) snprintf(saved, sizeof saved, "%s", env);
  setenv("MRL_KERNELS", "portable", 1);
  mlp_shape_init(&s, 4, h2, 2, 2, MRL_TANH);
  TAP_OK(strcmp(mlp_kernels_name(&s), "portable") == 0, "MRL_KERNELS=portable is honoured");
  setenv("MRL_KERNELS", "no-such-isa", 1);
  mlp_shape_init(&s, 4, h2, 2, 2, MRL_TANH);
  TAP_OK(strcmp(mlp_kernels_name(&s), mlp_kernels_find(NULL)->name) == 0,
         "an unknown MRL_KERNELS falls back to the best variant (%s)", mlp_kernels_name(&s));
  if (env) setenv("MRL_KERNELS", saved, 1);
  else unsetenv("MRL_KERNELS");
  TAP_OK(mlp_shape_set_kernels(&s, "portable") == MRL_OK &&
         strcmp(mlp_kernels_name(&s), "portable") == 0, "portable always available");
}

/* ------------------------------------------------------------- init */

static void test_init(void) {
  struct { int in, nh, h[2], out; double og; } cases[] = {
    {8, 1, {5, 0}, 12, 1.0}, {5, 1, {8, 0}, 3, 0.01}, {4, 2, {64, 64}, 2, 0.01},
    {64, 0, {0, 0}, 64, 1.0}, {3, 1, {1, 0}, 1, 2.0}};
  for (size_t c = 0; c < sizeof cases / sizeof *cases; c++) {
    mlp_shape s;
    mlp_shape_init(&s, cases[c].in, cases[c].h, cases[c].nh, cases[c].out, MRL_TANH);
    float *p = malloc(s.nparams * sizeof(float)), *q = malloc(s.nparams * sizeof(float));
    mrl_rng r;
    rng_seed(&r, 77);
    memset(p, 0xff, s.nparams * sizeof(float));
    int rc = mlp_init_params(&s, p, &r, sqrt(2.0), cases[c].og);
    double worst = 0;
    int zero_bias = 1;
    for (int l = 0; l < s.nlayers; l++) {
      int I = s.dims[l], O = s.dims[l + 1];
      double g = l == s.nlayers - 1 ? cases[c].og : sqrt(2.0);
      const float *W = p + s.woff[l];
      int n = O <= I ? O : I;  /* Gram matrix over the shorter side */
      for (int a = 0; a < n; a++)
        for (int b = 0; b < n; b++) {
          double d = 0;
          if (O <= I)
            for (int i = 0; i < I; i++) d += (double)W[a * I + i] * W[b * I + i];
          else
            for (int o = 0; o < O; o++) d += (double)W[o * I + a] * W[o * I + b];
          double e = fabs(d - (a == b ? g * g : 0)) / (g * g);
          if (e > worst) worst = e;
        }
      for (int o = 0; o < O; o++) zero_bias &= p[s.boff[l] + o] == 0.0f;
    }
    TAP_OK(rc == MRL_OK && worst < 1e-5 && zero_bias,
           "init %d-…-%d: WWᵀ or WᵀW = gain²·I (max rel err %.2e), zero biases",
           cases[c].in, cases[c].out, worst);
    rng_seed(&r, 77);
    mlp_init_params(&s, q, &r, sqrt(2.0), cases[c].og);
    TAP_OK(memcmp(p, q, s.nparams * sizeof(float)) == 0, "init is deterministic by seed");
    rng_seed(&r, 78);
    mlp_init_params(&s, q, &r, sqrt(2.0), cases[c].og);
    TAP_OK(memcmp(p, q, s.nparams * sizeof(float)) != 0, "another seed, other weights");
    free(p);
    free(q);
  }
}

/* ------------------------------------------------------- activations */

static void test_activations(const mlp_kernels *k) {
  enum { N = 250000 };
  float *y = malloc(N * sizeof(float));
  double *x = malloc(N * sizeof(double));
  for (int i = 0; i < 240000; i++) x[i] = -12.0 + i * 1e-4;
  for (int i = 240000; i < N; i++) x[i] = pow(10.0, -38.0 + (i - 240000) * 3.8e-3) *
                                          (i & 1 ? -1 : 1);
  for (int i = 0; i < N; i++) y[i] = (float)x[i];
  k->act_forward(MRL_TANH, y, N - 3);  /* odd length: exercises the tail */
  double worst = 0, at = 0;
  for (int i = 0; i < N - 3; i++) {
    double xf = (float)x[i], t = tanh(xf);
    double e = fabs(y[i] - t) / fabs(t);
    if (t == 0) e = y[i] == 0 ? 0 : 1;
    if (e > worst) { worst = e; at = xf; }
  }
  TAP_OK(worst < 4e-7, "%s tanh max relative error %.2e (at %g)", k->name, worst, at);
  float sp[] = {INFINITY, -INFINITY, NAN, -0.0f, 0.0f, 1e-40f, 20.0f, -9.5f};
  k->act_forward(MRL_TANH, sp, 8);
  TAP_OK(sp[0] == 1 && sp[1] == -1 && isnan(sp[2]) && sp[3] == 0 && signbit(sp[3]) &&
         sp[4] == 0 && !signbit(sp[4]) && sp[5] == 1e-40f && sp[6] == 1 && sp[7] == -1,
         "%s tanh at ±inf, NaN, ±0, denormal, saturation", k->name);
  float r[] = {-2, -0.0f, 0, 3.5f, NAN, -1e-30f, 1e-30f};
  k->act_forward(MRL_RELU, r, 7);
  TAP_OK(r[0] == 0 && r[1] == 0 && r[2] == 0 && r[3] == 3.5f && isnan(r[4]) &&
         r[5] == 0 && r[6] == 1e-30f, "%s relu keeps positives and NaN", k->name);
  float ty[] = {0.5f, -0.25f, 0.9f}, td[] = {2, 4, 1};
  k->act_backward(MRL_TANH, ty, td, 3);
  float ry[] = {0.0f, 1.0f, 2.0f}, rd[] = {2, 4, 1};
  k->act_backward(MRL_RELU, ry, rd, 3);
  TAP_OK(td[0] == 1.5f && td[1] == 3.75f && fabsf(td[2] - 0.19f) < 1e-6f &&
         rd[0] == 0 && rd[1] == 4 && rd[2] == 1, "%s activation derivatives", k->name);
  free(y);
  free(x);
}

/* every orientation and tail of the packed product against a naive loop */
static void test_gemm(const mlp_kernels *k) {
  mrl_rng r;
  rng_seed(&r, 5);
  int good = 1, ncase = 0;
  int sizes[][3] = {{1, 1, 1}, {5, 3, 2}, {4, 64, 64}, {7, 65, 129}, {13, 130, 3},
                    {2, 17, 300}, {33, 8, 31}, {9, 200, 130}};
  for (size_t c = 0; c < sizeof sizes / sizeof *sizes; c++)
    for (int mode = 0; mode < 3; mode++) {
      int M = sizes[c][0], N = sizes[c][1], K = sizes[c][2];
      float *A = malloc((size_t)M * K * 4), *B = malloc((size_t)K * N * 4),
            *C = malloc((size_t)M * (N + 3) * 4), *bias = malloc((size_t)N * 4);
      double *want = malloc((size_t)M * N * 8);
      fill_normal(&r, A, (size_t)M * K, 1);
      fill_normal(&r, B, (size_t)K * N, 1);
      fill_normal(&r, C, (size_t)M * (N + 3), 1);
      fill_normal(&r, bias, N, 1);
      int ldc = N + 3;
      /* mode 0: A row-major, B [K][N]; 1: A col-major, B [N][K]; 2: with C */
      ptrdiff_t sam = mode == 1 ? 1 : K, sak = mode == 1 ? M : 1;
      ptrdiff_t sbk = mode == 1 ? 1 : N, sbn = mode == 1 ? K : 1;
      for (int m = 0; m < M; m++)
        for (int n = 0; n < N; n++) {
          double acc = mode == 2 ? C[m * ldc + n] : mode == 1 ? bias[n] : 0;
          for (int kk = 0; kk < K; kk++)
            acc += (double)A[m * sam + kk * sak] * B[kk * sbk + n * sbn];
          want[m * N + n] = acc;
        }
      float guard = C[(M - 1) * ldc + N];
      k->gemm(M, N, K, A, sam, sak, B, sbk, sbn, C, ldc, mode == 1 ? bias : NULL,
              mode == 2);
      for (int m = 0; m < M; m++)
        for (int n = 0; n < N; n++) {
          double e = fabs(C[m * ldc + n] - want[m * N + n]);
          if (e > 1e-5 * (sqrt((double)K) + fabs(want[m * N + n]))) good = 0;
        }
      if (C[(M - 1) * ldc + N] != guard) good = 0;
      ncase++;
      free(A); free(B); free(C); free(bias); free(want);
    }
  TAP_OK(good, "%s gemm matches a naive product in %d cases", k->name, ncase);
  /* dot-product form: every row length class (tail only, 2/4/8, vectors
  ** plus tail) and block/remainder split of the outputs */
  int dsz[][3] = {{1, 64, 4}, {2, 40, 2}, {1, 33, 8}, {3, 20, 3}, {1, 64, 64},
                  {2, 35, 21}, {1, 17, 130}, {1, 5, 7}, {4, 16, 16}};
  good = 1;
  for (size_t c = 0; c < sizeof dsz / sizeof *dsz; c++) {
    int M = dsz[c][0], N = dsz[c][1], K = dsz[c][2];
    float *A = malloc((size_t)M * K * 4), *Wt = malloc((size_t)N * K * 4),
          *bb = malloc((size_t)N * 4), *Y = malloc((size_t)M * N * 4);
    fill_normal(&r, A, (size_t)M * K, 1);
    fill_normal(&r, Wt, (size_t)N * K, 1);
    fill_normal(&r, bb, N, 1);
    k->linear_dot(M, N, K, A, Wt, bb, Y);
    for (int m = 0; m < M; m++)
      for (int n = 0; n < N; n++) {
        double want = bb[n];
        for (int kk = 0; kk < K; kk++) want += (double)A[m * K + kk] * Wt[n * K + kk];
        if (fabs(Y[m * N + n] - want) > 1e-5 * (sqrt((double)K) + fabs(want))) good = 0;
      }
    free(A); free(Wt); free(bb); free(Y);
  }
  TAP_OK(good, "%s linear_dot matches a naive product in every row-length class", k->name);
  float x[] = {1, 2, 3, 4, 5, 6}, W[] = {1, 0, -1, 2, 2, 2}, b[] = {0.5f, -1}, y[4];
  k->linear_dot(2, 2, 3, x, W, b, y);
  TAP_OK(y[0] == -1.5f && y[1] == 11 && y[2] == -1.5f && y[3] == 29,
         "%s linear_dot on a small case", k->name);
}

/* the batch-1 kernel against a double reference and against linear_dot +
** act_forward of the same table: every short-row class (1, 2, 4, 8 and
** the others), whole vectors with and without a tail, narrow outputs and
** partial last blocks; W and x allocated to the float so an over-read
** shows under ASan; NaN stays in its row; nothing is written past y[N). */
static void test_linear1(const mlp_kernels *k) {
  static const int Ns[] = {1, 2, 3, 4, 5, 7, 8, 9, 15, 16, 17, 31, 33, 64, 65, 100};
  static const int Ks[] = {1, 2, 3, 4, 5, 6, 7, 8, 9, 12, 15, 16, 17, 24, 31, 32,
                           33, 48, 63, 64, 65, 130};
  mrl_rng r;
  rng_seed(&r, 9);
  int good = 1, same = 1, nan_ok = 1, ncase = 0;
  double worst = 0;
  for (size_t a = 0; a < sizeof Ns / sizeof *Ns; a++)
    for (size_t b = 0; b < sizeof Ks / sizeof *Ks; b++)
      for (int act = MLP_ACT_NONE; act <= MRL_RELU; act++) {
        int N = Ns[a], K = Ks[b];
        float *x = malloc((size_t)K * 4), *W = malloc((size_t)N * K * 4),
              *bias = malloc((size_t)N * 4), *y = malloc((size_t)(N + 1) * 4),
              *y2 = malloc((size_t)N * 4);
        fill_normal(&r, x, K, 1);
        fill_normal(&r, W, (size_t)N * K, 1.0 / sqrt((double)K));
        fill_normal(&r, bias, N, 0.5);
        y[N] = 12345.0f;
        k->linear1(N, K, x, W, bias, y, act);
        k->linear_dot(1, N, K, x, W, bias, y2);
        if (act != MLP_ACT_NONE) k->act_forward((mrl_activation)act, y2, (size_t)N);
        for (int n = 0; n < N; n++) {
          /* error relative to Σ|terms| (tanh and relu are 1-Lipschitz) */
          double z = bias[n], scale = fabs(bias[n]);
          for (int i = 0; i < K; i++) {
            z += (double)x[i] * W[(size_t)n * K + i];
            scale += fabs((double)x[i] * W[(size_t)n * K + i]);
          }
          double want = act == MRL_TANH ? tanh(z) : act == MRL_RELU ? (z > 0 ? z : 0) : z;
          double e = fabs(y[n] - want) / scale;
          if (e > worst) worst = e;
          if (!(e < 2e-6)) good = 0;
          if (!(fabs(y[n] - y2[n]) <= 4e-6 * scale)) same = 0;
        }
        if (y[N] != 12345.0f) good = 0;
        /* a NaN weight poisons its own output only, a NaN input all */
        if (act != MRL_RELU || K > 1) {
          int j = N / 2;
          W[(size_t)j * K + K - 1] = NAN;
          k->linear1(N, K, x, W, bias, y, act);
          for (int n = 0; n < N; n++)
            if (n == j ? !isnan(y[n]) : !isfinite(y[n])) nan_ok = 0;
          W[(size_t)j * K + K - 1] = 0.0f;
          x[K - 1] = NAN;
          k->linear1(N, K, x, W, bias, y, act);
          for (int n = 0; n < N; n++)
            if (!isnan(y[n])) nan_ok = 0;
        }
        ncase++;
        free(x); free(W); free(bias); free(y); free(y2);
      }
  TAP_OK(good, "%s linear1 = double reference in %d shapes × activations (worst %.1e),"
         " nothing past y[N)", k->name, ncase, worst);
  TAP_OK(same, "%s linear1 = linear_dot then act_forward", k->name);
  TAP_OK(nan_ok, "%s linear1: a NaN weight stays in its row, a NaN input reaches all",
         k->name);
}

/* linear1_out (a hidden layer and a narrow output layer fused) against
** linear1 twice: the hidden activations stored, the outputs within float
** rounding of Σ|terms|, nothing written past either, NaN propagated. */
static void test_linear1_out(const mlp_kernels *k) {
  const int VW = k->vw;
  const int Ns[] = {VW, 2 * VW, 4 * VW, 5 * VW};
  static const int Ks[] = {1, 2, 3, 4, 6, 8, 9, 16, 17, 32, 64, 65};
  mrl_rng r;
  rng_seed(&r, 11);
  int good = 1, nan_ok = 1, ncase = 0;
  double worst = 0;
  for (size_t a = 0; a < sizeof Ns / sizeof *Ns; a++)
    for (size_t b = 0; b < sizeof Ks / sizeof *Ks; b++)
      for (int N2 = 1; N2 <= VW; N2++)
        for (int act = MRL_TANH; act <= MRL_RELU; act++) {
          int N = Ns[a], K = Ks[b];
          float *x = malloc((size_t)K * 4), *W = malloc((size_t)N * K * 4),
                *bias = malloc((size_t)N * 4), *W2 = malloc((size_t)N2 * N * 4),
                *b2 = malloc((size_t)N2 * 4), *h = malloc((size_t)(N + 1) * 4),
                *o = malloc((size_t)(N2 + 1) * 4), *hr = malloc((size_t)N * 4),
                *orf = malloc((size_t)N2 * 4);
          fill_normal(&r, x, K, 1);
          fill_normal(&r, W, (size_t)N * K, 1.0 / sqrt((double)K));
          fill_normal(&r, bias, N, 0.5);
          fill_normal(&r, W2, (size_t)N2 * N, 1.0 / sqrt((double)N));
          fill_normal(&r, b2, N2, 0.5);
          h[N] = 12345.0f;
          o[N2] = 12345.0f;
          k->linear1_out(N, K, x, W, bias, h, act, N2, W2, b2, o);
          k->linear1(N, K, x, W, bias, hr, act);
          k->linear1(N2, N, hr, W2, b2, orf, MLP_ACT_NONE);
          for (int n = 0; n < N; n++) {
            /* short inputs take another path in linear1: not the same bits */
            double scale = fabs(bias[n]);
            for (int i = 0; i < K; i++) scale += fabs((double)x[i] * W[(size_t)n * K + i]);
            if (!(fabs((double)h[n] - hr[n]) <= 2e-6 * scale)) good = 0;
          }
          for (int j = 0; j < N2; j++) {
            double scale = fabs(b2[j]);
            for (int n = 0; n < N; n++) scale += fabs((double)hr[n] * W2[(size_t)j * N + n]);
            double e = fabs((double)o[j] - orf[j]) / scale;
            if (e > worst) worst = e;
            if (!(e < 2e-6)) good = 0;
          }
          if (h[N] != 12345.0f || o[N2] != 12345.0f) good = 0;
          /* a NaN in W2's row j reaches output j only; a NaN input all */
          int j = N2 / 2;
          W2[(size_t)j * N] = NAN;
          k->linear1_out(N, K, x, W, bias, h, act, N2, W2, b2, o);
          for (int q = 0; q < N2; q++)
            if (q == j ? !isnan(o[q]) : !isfinite(o[q])) nan_ok = 0;
          W2[(size_t)j * N] = 0.0f;
          x[0] = NAN;
          k->linear1_out(N, K, x, W, bias, h, act, N2, W2, b2, o);
          for (int q = 0; q < N2; q++)
            if (!isnan(o[q])) nan_ok = 0;
          ncase++;
          free(x); free(W); free(bias); free(W2); free(b2); free(h); free(o);
          free(hr); free(orf);
        }
  TAP_OK(good, "%s linear1_out = linear1 twice in %d cases (worst %.1e), nothing past "
         "either output", k->name, ncase, worst);
  TAP_OK(nan_ok, "%s linear1_out: a NaN weight stays in its output, a NaN input reaches all",
         k->name);
}

/* forward1_2h (two hidden layers and the output in one call) against its
** two halves: the same code inlined, so the same bits, and nothing written
** past the output. */
static void test_forward1_2h(const mlp_kernels *k) {
  const int VW = k->vw;
  static const int Ks[] = {1, 2, 3, 4, 8, 17, 64};
  const int H1s[] = {5, VW, 3 * VW, 4 * VW}, H2s[] = {VW, 2 * VW, 4 * VW};
  const int N2s[] = {1, 2, 3, VW};
  mrl_rng r;
  rng_seed(&r, 12);
  int same = 1, ncase = 0;
  for (size_t a = 0; a < sizeof Ks / sizeof *Ks; a++)
    for (int b = 0; b < 4; b++)
      for (int c = 0; c < 3; c++)
        for (int d = 0; d < 4; d++)
          for (int act = MRL_TANH; act <= MRL_RELU; act++) {
            const int K = Ks[a], H1 = H1s[b], H2 = H2s[c], N2 = N2s[d];
            const size_t np = (size_t)H1 * K + H1 + (size_t)H2 * H1 + H2 + (size_t)N2 * H2 + N2;
            float *p = malloc(np * 4), *x = malloc((size_t)K * 4);
            float *acts = malloc((size_t)(H1 + H2 + N2 + 1) * 4);
            float *ref = malloc((size_t)(H1 + H2 + N2) * 4);
            fill_normal(&r, p, np, 0.4);
            fill_normal(&r, x, K, 1);
            const float *w[6];
            w[0] = p;
            w[1] = w[0] + (size_t)H1 * K;
            w[2] = w[1] + H1;
            w[3] = w[2] + (size_t)H2 * H1;
            w[4] = w[3] + H2;
            w[5] = w[4] + (size_t)N2 * H2;
            acts[H1 + H2 + N2] = 12345.0f;
            k->forward1_2h(K, H1, H2, N2, x, w, acts, act);
            k->linear1(H1, K, x, w[0], w[1], ref, act);
            k->linear1_out(H2, H1, ref, w[2], w[3], ref + H1, act, N2, w[4], w[5],
                           ref + H1 + H2);
            same &= memcmp(acts, ref, (size_t)(H1 + H2 + N2) * 4) == 0 &&
                    acts[H1 + H2 + N2] == 12345.0f;
            ncase++;
            free(p); free(x); free(acts); free(ref);
          }
  TAP_OK(same, "%s forward1_2h = linear1 then linear1_out, bit for bit, in %d shapes",
         k->name, ncase);
}

/* ------------------------------------------------------- differentiation */

typedef struct {
  int in, nh, h[3], out;
  mrl_activation act;
} netcase;

typedef struct {
  mlp_shape s;
  int batch;
  float *p, *x, *acts, *scratch, *dy, *grad, *dx, *v, *jy;
  double *pd, *xd;
} fixture;

static void fixture_init(fixture *f, const netcase *c, int batch, uint64_t seed) {
  memset(f, 0, sizeof *f);
  mlp_shape_init(&f->s, c->in, c->h, c->nh, c->out, c->act);
  mlp_shape_set_kernels(&f->s, "portable");
  f->batch = batch;
  size_t P = f->s.nparams, X = (size_t)batch * c->in, Y = (size_t)batch * c->out;
  f->p = malloc(P * 4); f->grad = malloc(P * 4); f->v = malloc(P * 4);
  f->x = malloc(X * 4); f->dx = malloc(X * 4);
  f->dy = malloc(Y * 4); f->jy = malloc(Y * 4);
  f->acts = malloc(mlp_acts_floats(&f->s, batch) * 4);
  f->scratch = malloc(mlp_scratch_floats(&f->s, batch) * 4);
  f->pd = malloc(P * 8); f->xd = malloc(X * 8);
  mrl_rng r;
  rng_seed(&r, seed);
  mlp_init_params(&f->s, f->p, &r, sqrt(2.0), 0.5);
  for (int l = 0; l < f->s.nlayers; l++)  /* nonzero biases, to test them */
    fill_normal(&r, f->p + f->s.boff[l], f->s.dims[l + 1], 0.3);
  fill_normal(&r, f->x, X, 1);
  fill_normal(&r, f->dy, Y, 1);
  fill_normal(&r, f->v, P, 1);
  for (size_t i = 0; i < P; i++) f->pd[i] = f->p[i];
  for (size_t i = 0; i < X; i++) f->xd[i] = f->x[i];
}

static void fixture_free(fixture *f) {
  free(f->p); free(f->grad); free(f->v); free(f->x); free(f->dx); free(f->dy);
  free(f->jy); free(f->acts); free(f->scratch); free(f->pd); free(f->xd);
}

/* runs forward, backward (grad from 0, dx) and jvp with the shape's kernels */
static void fixture_run(fixture *f) {
  mlp_forward(&f->s, f->p, f->x, f->batch, f->acts);
  memset(f->grad, 0, f->s.nparams * 4);
  mlp_backward(&f->s, f->p, f->x, f->acts, f->batch, f->dy, f->grad, f->scratch, f->dx);
  mlp_jvp(&f->s, f->p, f->v, f->x, f->acts, f->batch, f->jy, f->scratch);
}

/* L = Σ dy ⊙ y in double */
static double ref_loss(const fixture *f, const double *p, const double *x, double *ybuf) {
  ref_forward(&f->s, p, x, f->batch, ybuf);
  size_t Y = (size_t)f->batch * f->s.dims[f->s.nlayers];
  double s = 0;
  for (size_t i = 0; i < Y; i++) s += f->dy[i] * ybuf[i];
  return s;
}

/* at most `limit` indices of n, spread by a stride, always including 0 and n−1 */
static size_t pick(size_t j, size_t n, size_t limit) {
  if (n <= limit) return j;
  return j == limit - 1 ? n - 1 : j * (n / limit);
}

/* Central differences of ref_loss in up to `limit` entries of v (the
** parameters or the input, n of them, spread by pick) into fd, beside the
** analytic derivatives of the same entries into gsel; returns how many. */
static size_t central_diffs(fixture *f, double *v, size_t n, size_t limit,
                            const float *analytic, double *ybuf, double *fd,
                            float *gsel) {
  const double h = 1e-5;
  size_t m = n < limit ? n : limit;
  for (size_t j = 0; j < m; j++) {
    size_t i = pick(j, n, limit);
    double keep = v[i];
    v[i] = keep + h;
    double lp = ref_loss(f, f->pd, f->xd, ybuf);
    v[i] = keep - h;
    double lm = ref_loss(f, f->pd, f->xd, ybuf);
    v[i] = keep;
    fd[j] = (lp - lm) / (2 * h);
    gsel[j] = analytic[i];
  }
  return m;
}

static void check_case(const netcase *c, int batch) {
  fixture f;
  fixture_init(&f, c, batch, 1000 + (uint64_t)batch);
  fixture_run(&f);
  size_t P = f.s.nparams, X = (size_t)batch * c->in, Y = (size_t)batch * c->out;
  double *y = malloc(Y * 8), *y2 = malloc(Y * 8), *fd = malloc((P + X) * 8), *want = malloc(Y * 8);
  float *gsel = malloc((P + X) * 4);
  char name[96];
  snprintf(name, sizeof name, "%d-%s%d-%d %s b=%d", c->in, c->nh ? "" : "(none)",
           c->nh ? c->h[0] : 0, c->out, c->act == MRL_TANH ? "tanh" : "relu", batch);
  double rel;

  ref_forward(&f.s, f.pd, f.xd, batch, want);
  TAP_OK(close_vec(mlp_output(&f.s, f.acts, batch), want, Y, 2e-6, 1e-7, &rel),
         "%s: forward = double reference (rel %.1e)", name, rel);

  const double h = 1e-5;
  size_t np = central_diffs(&f, f.pd, P, 400, f.grad, y, fd, gsel);
  TAP_OK(close_vec(gsel, fd, np, 1e-5, 1e-6, &rel),
         "%s: backward = central differences over %zu params (rel %.1e)", name, np, rel);

  size_t nx = central_diffs(&f, f.xd, X, 300, f.dx, y, fd, gsel);
  TAP_OK(close_vec(gsel, fd, nx, 1e-5, 1e-6, &rel),
         "%s: dx = central differences (rel %.1e)", name, rel);

  double *pp = malloc(P * 8);
  for (size_t i = 0; i < P; i++) pp[i] = f.pd[i] + h * f.v[i];
  ref_forward(&f.s, pp, f.xd, batch, y);
  for (size_t i = 0; i < P; i++) pp[i] = f.pd[i] - h * f.v[i];
  ref_forward(&f.s, pp, f.xd, batch, y2);
  for (size_t i = 0; i < Y; i++) want[i] = (y[i] - y2[i]) / (2 * h);
  TAP_OK(close_vec(f.jy, want, Y, 1e-5, 1e-6, &rel),
         "%s: jvp = central differences (rel %.1e)", name, rel);

  /* ⟨J v, u⟩ = ⟨v, Jᵀu⟩ with u = dy: both sides from the float kernels */
  double lhs = 0, rhs = 0, scale = 0;
  for (size_t i = 0; i < Y; i++) lhs += (double)f.jy[i] * f.dy[i];
  for (size_t i = 0; i < P; i++) {
    rhs += (double)f.v[i] * f.grad[i];
    scale += fabs((double)f.v[i] * f.grad[i]);
  }
  TAP_OK(fabs(lhs - rhs) <= 1e-5 * scale + 1e-6, "%s: <jvp(v),u> %.6g = <v,backward(u)> %.6g",
         name, lhs, rhs);

  /* backward accumulates into grad */
  float *g1 = malloc(P * 4);
  memcpy(g1, f.grad, P * 4);
  mlp_backward(&f.s, f.p, f.x, f.acts, batch, f.dy, f.grad, f.scratch, NULL);
  int acc = 1;
  for (size_t i = 0; i < P; i++) acc &= fabsf(f.grad[i] - 2 * g1[i]) <= 1e-5f * (1 + fabsf(g1[i]));
  TAP_OK(acc, "%s: backward accumulates (dx NULL)", name);

  /* each SIMD variant against portable */
  const char *vars[] = {"avx2", "avx512"};
  for (int vi = 0; vi < 2; vi++) {
    if (!mlp_kernels_find(vars[vi])) continue;
    fixture g;
    fixture_init(&g, c, batch, 1000 + (uint64_t)batch);
    mlp_shape_set_kernels(&g.s, vars[vi]);
    fixture_run(&g);
    double *pd = malloc(P * 8), *od = malloc(Y * 8), *xd = malloc(X * 8), *jd = malloc(Y * 8);
    const float *o1 = mlp_output(&f.s, f.acts, batch);
    for (size_t i = 0; i < P; i++) pd[i] = g1[i];
    for (size_t i = 0; i < Y; i++) { od[i] = o1[i]; jd[i] = f.jy[i]; }
    fixture_run(&f);  /* fresh portable dx (the accumulation test reused grad) */
    for (size_t i = 0; i < X; i++) xd[i] = f.dx[i];
    double r1, r2, r3, r4;
    int same = close_vec(mlp_output(&g.s, g.acts, batch), od, Y, 1e-5, 1e-7, &r1) &
               close_vec(g.grad, pd, P, 1e-5, 1e-7, &r2) &
               close_vec(g.dx, xd, X, 1e-5, 1e-7, &r3) &
               close_vec(g.jy, jd, Y, 1e-5, 1e-7, &r4);
    TAP_OK(same, "%s: %s = portable (rel y %.0e, grad %.0e, dx %.0e, jy %.0e)", name,
           vars[vi], r1, r2, r3, r4);
    free(pd); free(od); free(xd); free(jd);
    fixture_free(&g);
  }
  free(g1); free(pp); free(y); free(y2); free(fd); free(want); free(gsel);
  fixture_free(&f);
}

int main(void) {
  test_shape();
  test_init();
  const char *vars[] = {"portable", "avx2", "avx512"};
  for (int i = 0; i < 3; i++) {
    const mlp_kernels *k = mlp_kernels_find(vars[i]);
    if (!k) {
      printf("# %s kernels not supported here, skipped\n", vars[i]);
      continue;
    }
    test_activations(k);
    test_gemm(k);
    test_linear1(k);
    test_linear1_out(k);
    test_forward1_2h(k);
  }
  netcase cases[] = {
    {3, 1, {5}, 2, MRL_TANH},     {4, 0, {0}, 3, MRL_TANH},
    {2, 2, {7, 6}, 3, MRL_RELU},  {6, 3, {20, 17, 9}, 4, MRL_TANH},
    {4, 2, {64, 64}, 2, MRL_TANH}, {5, 1, {33}, 1, MRL_RELU},
    {17, 1, {12}, 19, MRL_TANH},  {4, 0, {0}, 1, MRL_RELU},
    {2, 1, {64}, 3, MRL_TANH},    {8, 2, {32, 16}, 2, MRL_RELU},
    {130, 1, {150}, 70, MRL_TANH}};
  int batches[] = {1, 3, 8, 37};
  for (size_t c = 0; c < sizeof cases / sizeof *cases; c++)
    for (int b = 0; b < 4; b++) check_case(&cases[c], batches[b]);
  printf("# default kernels here: %s\n", mlp_kernels_find(NULL)->name);
  return tap_done();
}
