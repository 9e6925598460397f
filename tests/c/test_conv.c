/* test_conv.c — the convolutional body (conv.c) against a plain double
** reference (PyTorch nn.Conv2d semantics), hand-computed values, central
** differences of the reference for the gradient and the J·v product, the
** adjoint identity, and every SIMD variant against the portable one. */
#include <math.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include "conv.h"
#include "kernels.h"
#include "mlp.h"
#include "rng_impl.h"
#include "tap.h"

/* ------------------------------------------------ double reference */

/* out [batch][out_dim] of the conv stack at parameters p (double). */
static void ref_forward(const conv_body *b, const double *p, const double *x,
                        int batch, double *out) {
  static double buf[2][1 << 16];
  for (int n = 0; n < batch; n++) {
    const double *in = x + (size_t)n * b->in_dim;
    for (int l = 0; l < b->nlayers; l++) {
      const conv_layer *L = &b->l[l];
      double *o = buf[l & 1];
      for (int f = 0; f < L->cout; f++)
        for (int oy = 0; oy < L->ho; oy++)
          for (int ox = 0; ox < L->wo; ox++) {
            double acc = p[L->boff + f];
            for (int c = 0; c < L->cin; c++)
              for (int i = 0; i < L->k; i++)
                for (int j = 0; j < L->k; j++) {
                  int y = oy * L->stride + i - L->pad;
                  int xx = ox * L->stride + j - L->pad;
                  if (y < 0 || y >= L->h || xx < 0 || xx >= L->w) continue;
                  acc += p[L->woff + ((size_t)(f * L->cin + c) * L->k + i) * L->k + j] *
                         in[((size_t)c * L->h + y) * L->w + xx];
                }
            o[((size_t)f * L->ho + oy) * L->wo + ox] =
                b->act == MRL_TANH ? tanh(acc) : (acc > 0 ? acc : 0);
          }
      in = o;
    }
    memcpy(out + (size_t)n * b->out_dim, in, (size_t)b->out_dim * sizeof(double));
  }
}

static double ref_dot(const conv_body *b, const double *p, const double *x,
                      int batch, const double *r) {
  double *o = malloc((size_t)batch * b->out_dim * sizeof(double));
  ref_forward(b, p, x, batch, o);
  double s = 0;
  for (size_t i = 0; i < (size_t)batch * b->out_dim; i++) s += r[i] * o[i];
  free(o);
  return s;
}

/* ‖got − want‖₂ ≤ atol·√n + rtol·‖want‖₂ */
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

static int same_vec(const float *a, const float *b, size_t n, double rtol,
                    double *relerr) {
  double e = 0, w = 0;
  for (size_t i = 0; i < n; i++) {
    e += ((double)a[i] - b[i]) * ((double)a[i] - b[i]);
    w += (double)b[i] * b[i];
  }
  *relerr = sqrt(e) / (w > 0 ? sqrt(w) : 1);
  return isfinite(e) && sqrt(e) <= rtol * sqrt(w) + 1e-7;
}

static void fill_normal(mrl_rng *r, float *v, size_t n, double sd) {
  for (size_t i = 0; i < n; i++) v[i] = (float)(sd * rng_normal(r));
}

/* ------------------------------------------------ one case */

typedef struct conv_case {
  const char *name;
  int shape[3];
  int nl;
  mrl_conv_layer l[3];
  mrl_activation act;
  int batch;
} conv_case;

static void check_case(const conv_case *cc) {
  conv_body b;
  char err[200];
  int rc = conv_body_init(&b, cc->shape, cc->l, cc->nl, cc->act, err, sizeof err);
  TAP_OK(rc == MRL_OK, "%s: init (%s)", cc->name, rc ? err : "ok");
  if (rc) return;
  const int B = cc->batch;
  const size_t np = b.nparams, nx = (size_t)B * b.in_dim,
               ny = (size_t)B * b.out_dim;
  mrl_rng rng;
  rng_seed(&rng, 42);
  float *p = mlp_alloc_floats(np), *x = mlp_alloc_floats(nx);
  float *v = mlp_alloc_floats(np), *r = mlp_alloc_floats(ny);
  fill_normal(&rng, p, np, 0.4);
  fill_normal(&rng, x, nx, 1.0);
  fill_normal(&rng, v, np, 1.0);
  fill_normal(&rng, r, ny, 1.0);
  double *pd = malloc(np * sizeof(double)), *xd = malloc(nx * sizeof(double));
  double *rd = malloc(ny * sizeof(double)), *yd = malloc(ny * sizeof(double));
  for (size_t i = 0; i < np; i++) pd[i] = p[i];
  for (size_t i = 0; i < nx; i++) xd[i] = x[i];
  for (size_t i = 0; i < ny; i++) rd[i] = r[i];
  ref_forward(&b, pd, xd, B, yd);

  /* reference gradient and J·v by central differences (double) */
  double *gd = malloc(np * sizeof(double)), *jd = malloc(ny * sizeof(double));
  const double h = 1e-5;
  /* every parameter of a small stack, else 80 spread over all layers (the
  ** gradient is then compared on those only) */
  const size_t stride = np <= 400 ? 1 : np / 80;
  for (size_t i = 0; i < np; i++) gd[i] = NAN;
  for (size_t i = 0; i < np; i += stride) {
    double s = pd[i];
    pd[i] = s + h;
    double up = ref_dot(&b, pd, xd, B, rd);
    pd[i] = s - h;
    double dn = ref_dot(&b, pd, xd, B, rd);
    pd[i] = s;
    gd[i] = (up - dn) / (2 * h);
  }
  {
    double *yp = malloc(ny * sizeof(double)), *ym = malloc(ny * sizeof(double));
    double *pp = malloc(np * sizeof(double));
    for (size_t i = 0; i < np; i++) pp[i] = pd[i] + h * v[i];
    ref_forward(&b, pp, xd, B, yp);
    for (size_t i = 0; i < np; i++) pp[i] = pd[i] - h * v[i];
    ref_forward(&b, pp, xd, B, ym);
    for (size_t i = 0; i < ny; i++) jd[i] = (yp[i] - ym[i]) / (2 * h);
    free(yp);
    free(ym);
    free(pp);
  }

  const char *names[3] = {"portable", "avx2", "avx512"};
  float *y0 = NULL, *g0 = NULL, *j0 = NULL;
  for (int vi = 0; vi < 3; vi++) {
    const mlp_kernels *k = mlp_kernels_find(names[vi]);
    if (!k) continue;
    float *acts = mlp_alloc_floats(conv_acts_floats(&b, B));
    float *scr = mlp_alloc_floats(conv_scratch_floats(&b, B));
    float *g = mlp_alloc_floats(np), *jy = mlp_alloc_floats(ny);
    float *y = mlp_alloc_floats(ny);
    const float *out = conv_forward(&b, k, p, x, B, acts);
    memcpy(y, out, ny * sizeof(float));
    double re = 0;
    int ok = close_vec(y, yd, ny, 1e-5, 1e-6, &re);
    TAP_OK(ok,
           "%s %s: forward = reference (rel %.2g)", cc->name, names[vi], re);
    for (size_t i = 0; i < np; i++) g[i] = 0.5f;  /* accumulates */
    conv_backward(&b, k, p, x, acts, B, r, g, scr);
    for (size_t i = 0; i < np; i++) g[i] -= 0.5f;
    float *gs = malloc(np * sizeof(float));
    double *gds = malloc(np * sizeof(double));
    size_t ns = 0;
    for (size_t i = 0; i < np; i += stride) gs[ns] = g[i], gds[ns++] = gd[i];
    int gok = close_vec(gs, gds, ns, 1e-4, 1e-5, &re);
    free(gs);
    free(gds);
    TAP_OK(gok,
           "%s %s: gradient = central differences (rel %.2g)", cc->name,
           names[vi], re);
    conv_jvp(&b, k, p, v, x, acts, B, jy, scr);
    ok = close_vec(jy, jd, ny, 1e-4, 1e-5, &re);
    TAP_OK(ok,
           "%s %s: J.v = central differences (rel %.2g)", cc->name, names[vi],
           re);
    /* adjoint: <r, J v> = <Jᵀ r, v> */
    double a1 = 0, a2 = 0, sc = 0;
    for (size_t i = 0; i < ny; i++) a1 += (double)r[i] * jy[i], sc += fabs((double)r[i] * jy[i]);
    for (size_t i = 0; i < np; i++) a2 += (double)g[i] * v[i];
    TAP_OK(fabs(a1 - a2) <= 1e-4 * (sc + 1), "%s %s: <r, Jv> = <J'r, v> (%g vs %g)",
           cc->name, names[vi], a1, a2);
    if (!y0) {
      y0 = y;
      g0 = g;
      j0 = jy;
    } else {
      TAP_OK(same_vec(y, y0, ny, 1e-5, &re) && same_vec(g, g0, np, 1e-5, &re) &&
                 same_vec(jy, j0, ny, 1e-5, &re),
             "%s %s: forward, gradient and J.v = portable's", cc->name,
             names[vi]);
      free(y);
      free(g);
      free(jy);
    }
    free(acts);
    free(scr);
  }
  free(y0);
  free(g0);
  free(j0);
  free(p);
  free(x);
  free(v);
  free(r);
  free(pd);
  free(xd);
  free(rd);
  free(yd);
  free(gd);
  free(jd);
}

/* ------------------------------------------------ gemm_nt */

/* The weight-gradient product C += A·Bᵀ of every variant against a double
** sum: tiles and their row and column tails, depth tails, row strides past
** K, and the accumulation into C. */
static void check_gemm_nt(void) {
  static const int dims[][3] = {{1, 1, 1},   {4, 4, 16},  {5, 7, 33},
                                {16, 288, 400}, {3, 2, 5}, {9, 13, 70},
                                {17, 36, 129}};
  const char *names[3] = {"portable", "avx2", "avx512"};
  mrl_rng rng;
  rng_seed(&rng, 11);
  for (size_t d = 0; d < sizeof dims / sizeof dims[0]; d++) {
    const int M = dims[d][0], N = dims[d][1], K = dims[d][2];
    const int lda = K + 3, ldb = K + 1, ldc = N + 2;
    float *A = malloc((size_t)M * lda * sizeof(float));
    float *B = malloc((size_t)N * ldb * sizeof(float));
    float *C0 = malloc((size_t)M * ldc * sizeof(float));
    float *C = malloc((size_t)M * ldc * sizeof(float));
    double *want = malloc((size_t)M * N * sizeof(double));
    fill_normal(&rng, A, (size_t)M * lda, 1.0);
    fill_normal(&rng, B, (size_t)N * ldb, 1.0);
    fill_normal(&rng, C0, (size_t)M * ldc, 1.0);
    for (int m = 0; m < M; m++)
      for (int n = 0; n < N; n++) {
        double acc = C0[(size_t)m * ldc + n];
        for (int k = 0; k < K; k++)
          acc += (double)A[(size_t)m * lda + k] * B[(size_t)n * ldb + k];
        want[(size_t)m * N + n] = acc;
      }
    for (int vi = 0; vi < 3; vi++) {
      const mlp_kernels *k = mlp_kernels_find(names[vi]);
      if (!k) continue;
      memcpy(C, C0, (size_t)M * ldc * sizeof(float));
      k->gemm_nt(M, N, K, A, lda, B, ldb, C, ldc);
      double worst = 0;
      int pad_kept = 1;
      for (int m = 0; m < M; m++) {
        for (int n = 0; n < N; n++) {
          double w = want[(size_t)m * N + n];
          double e = fabs(C[(size_t)m * ldc + n] - w) / (sqrt((double)K) + fabs(w));
          if (!(e <= worst)) worst = e;
        }
        for (int n = N; n < ldc; n++)
          pad_kept &= C[(size_t)m * ldc + n] == C0[(size_t)m * ldc + n];
      }
      TAP_OK(worst < 1e-5 && pad_kept,
             "gemm_nt %dx%dx%d %s: C + A.B' = double sum (err %.2g), "
             "columns past N untouched", M, N, K, names[vi], worst);
    }
    free(A);
    free(B);
    free(C0);
    free(C);
    free(want);
  }
}

/* ------------------------------------------------ hand-computed values */

static void check_hand(void) {
  /* 1×3×3 input 1..9, one 2×2 filter {1, 2; 3, 4}, bias 0.5, stride 1, no
  ** padding: out = b + x00 + 2x01 + 3x10 + 4x11 per window; relu. */
  conv_body b;
  int shape[3] = {1, 3, 3};
  mrl_conv_layer l1 = {1, 2, 1, 0};
  TAP_OK(conv_body_init(&b, shape, &l1, 1, MRL_RELU, NULL, 0) == MRL_OK &&
             b.out_dim == 4 && b.nparams == 5,
         "hand: 1x3x3 -> 1x2x2, 5 parameters");
  const mlp_kernels *k = mlp_kernels_find("portable");
  float p[5] = {1, 2, 3, 4, 0.5f}, x[9] = {1, 2, 3, 4, 5, 6, 7, 8, 9};
  float *acts = mlp_alloc_floats(conv_acts_floats(&b, 1));
  const float *y = conv_forward(&b, k, p, x, 1, acts);
  /* (1+4+12+20)+.5 = 37.5, (2+6+15+24)+.5 = 47.5, 67.5, 77.5 */
  TAP_OK(y[0] == 37.5f && y[1] == 47.5f && y[2] == 67.5f && y[3] == 77.5f,
         "hand: 2x2 valid conv = {37.5, 47.5, 67.5, 77.5} (got %g %g %g %g)",
         y[0], y[1], y[2], y[3]);
  float g[5] = {0}, dy[4] = {1, 0, 0, 0};
  float *scr = mlp_alloc_floats(conv_scratch_floats(&b, 1));
  conv_backward(&b, k, p, x, acts, 1, dy, g, scr);
  TAP_OK(g[0] == 1 && g[1] == 2 && g[2] == 4 && g[3] == 5 && g[4] == 1,
         "hand: dW of the first window = its inputs {1,2,4,5}, db = 1");
  free(acts);
  free(scr);

  /* 1×2×3 (H ≠ W), a 3×3 filter of ones, stride 2, padding 1: outputs at
  ** (0,0) and (0,1) sum the windows rows -1..1 × cols -1..1 and 1..3:
  ** x = {1,2,3; 4,5,6}: (1+2+4+5) = 12, (2+3+5+6) = 16; tanh. */
  int shape2[3] = {1, 2, 3};
  mrl_conv_layer l2 = {1, 3, 2, 1};
  TAP_OK(conv_body_init(&b, shape2, &l2, 1, MRL_TANH, NULL, 0) == MRL_OK &&
             b.l[0].ho == 1 && b.l[0].wo == 2,
         "hand: 1x2x3, k3 s2 p1 -> 1x1x2");
  float p2[10] = {1, 1, 1, 1, 1, 1, 1, 1, 1, -15.0f};
  float x2[6] = {1, 2, 3, 4, 5, 6};
  acts = mlp_alloc_floats(conv_acts_floats(&b, 1));
  y = conv_forward(&b, k, p2, x2, 1, acts);
  TAP_OK(fabs(y[0] - tanh(-3.0)) < 1e-6 && fabs(y[1] - tanh(1.0)) < 1e-6,
         "hand: padded strided conv = {tanh(-3), tanh(1)} (got %g %g)", y[0],
         y[1]);
  free(acts);
}

/* ------------------------------------------------ bad specs */

static void check_errors(void) {
  conv_body b;
  char err[200];
  int shape[3] = {1, 4, 4};
  mrl_conv_layer big = {2, 7, 1, 1};
  TAP_OK(conv_body_init(&b, shape, &big, 1, MRL_TANH, err, sizeof err) == MRL_EINVAL &&
             strstr(err, "kernel 7"),
         "error: kernel larger than the padded input (%s)", err);
  mrl_conv_layer zs = {2, 3, 0, 1};
  TAP_OK(conv_body_init(&b, shape, &zs, 1, MRL_TANH, err, sizeof err) == MRL_EINVAL &&
             strstr(err, "stride 0"),
         "error: stride 0 (%s)", err);
  int bad[3] = {1, 0, 4};
  TAP_OK(conv_body_init(&b, bad, &zs, 1, MRL_TANH, err, sizeof err) == MRL_EINVAL &&
             strstr(err, "obs_shape"),
         "error: a zero size in obs_shape (%s)", err);
  mrl_conv_layer neg = {2, 3, 1, -1};
  TAP_OK(conv_body_init(&b, shape, &neg, 1, MRL_TANH, err, sizeof err) == MRL_EINVAL,
         "error: negative padding (%s)", err);
}

int main(void) {
  check_hand();
  check_errors();
  check_gemm_nt();
  const conv_case cases[] = {
      {"k3s1p1 4x10x10 ->8 ->16 relu", {4, 10, 10}, 2,
       {{8, 3, 1, 1}, {16, 3, 1, 1}}, MRL_RELU, 5},
      {"k2s2p0 3x6x9 tanh", {3, 6, 9}, 1, {{5, 2, 2, 0}}, MRL_TANH, 3},
      {"k3s2p2 then k1 2x7x5 tanh", {2, 7, 5}, 2, {{4, 3, 2, 2}, {3, 1, 1, 0}},
       MRL_TANH, 4},
      {"k4s3p1 k2s1p1 k3s1p0 1x11x8", {1, 11, 8}, 3,
       {{6, 4, 3, 1}, {5, 2, 1, 1}, {2, 3, 1, 0}}, MRL_TANH, 2},
      {"k5s1p3 H!=W 2x3x12 relu", {2, 3, 12}, 1, {{7, 5, 1, 3}}, MRL_RELU, 6},
      /* many rows: several chunks per layer */
      {"chunks 3x10x10 ->32 ->32 tanh b5", {3, 10, 10}, 2,
       {{32, 3, 1, 1}, {32, 3, 1, 1}}, MRL_TANH, 5},
      /* the bench's grid encoder at batch 24 (several chunks, the
      ** weight-gradient rows copied out of the batch block) */
      {"grid 4x10x10 ->16 ->32 tanh b24", {4, 10, 10}, 2,
       {{16, 3, 1, 1}, {32, 3, 1, 1}}, MRL_TANH, 24},
      /* 1x1 kernels into one channel over a long batch: the input block's
      ** chunk is larger than the scratch matrix, read in place */
      {"k1 fan-in 1x4x4 ->8 ->1 tanh b4096", {1, 4, 4}, 2,
       {{8, 1, 1, 0}, {1, 1, 1, 0}}, MRL_TANH, 4096},
  };
  for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++)
    check_case(&cases[i]);
  return tap_done();
}
