/*
** bench_conv.c — the convolutional encoder (conv.c) at batch 256 on 10×10
** grids: 4×10×10 → Conv2d(16, k3, s1, p1) → Conv2d(32, k3, s1, p1), relu,
** the body of a grid-game policy.  A training pass is forward + backward
** (weight gradients of both layers, the input gradient of the second); its
** GFLOP/s is reported as a fraction of the measured FP32 FMA peak of one
** core (the probe of bench_kernels.c).  FLOPs are the multiply-adds the
** layers need, 2·F·Cin·k²·H'·W' per sample and product: forward one per
** layer, backward two per layer but the first (its input needs no
** gradient).  Figures, never pass/fail.
*/
#define _POSIX_C_SOURCE 199309L
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include "conv.h"
#include "kernels.h"
#include "mlp.h"
#include "moonrl.h"
#include "rng_impl.h"

/* The thread's CPU time: on a quiet machine the wall time, on a shared one
** it leaves out the slices other processes take (peak and kernels alike). */
static double now(void) {
  struct timespec ts;
  clock_gettime(CLOCK_THREAD_CPUTIME_ID, &ts);
  return ts.tv_sec + 1e-9 * ts.tv_nsec;
}

#include "fma_peak.h"

typedef struct work {
  const conv_body *b;
  const mlp_kernels *k;
  float *p, *x, *acts, *scr, *g, *dflat;
  int batch;
} work;

static void run_forward(work *w) {
  conv_forward(w->b, w->k, w->p, w->x, w->batch, w->acts);
}

static void run_train(work *w) {
  conv_forward(w->b, w->k, w->p, w->x, w->batch, w->acts);
  conv_backward(w->b, w->k, w->p, w->x, w->acts, w->batch, w->dflat, w->g,
                w->scr);
}

/* Best of several timed repetitions (a loaded machine only slows runs). */
static double timeit(void (*f)(work *), work *w) {
  f(w);
  double best = 1e30;
  for (int r = 0; r < 7; r++) {
    int n = 0;
    double t0 = now(), dt;
    do {
      f(w);
      n++;
      dt = now() - t0;
    } while (dt < 0.05);
    if (dt / n < best) best = dt / n;
  }
  return best;
}

int main(void) {
  const char *what;
  const double peak = fma_peak(now, &what);
  printf("bench_conv: FP32 FMA peak (one core, %s probe): %.1f GFLOP/s\n",
         what, peak);
  const int shape[3] = {4, 10, 10}, batch = 256;
  const mrl_conv_layer layers[2] = {{16, 3, 1, 1}, {32, 3, 1, 1}};
  conv_body b;
  if (conv_body_init(&b, shape, layers, 2, MRL_RELU, NULL, 0)) return 1;
  double fwd = 0, bwd = 0;
  for (int l = 0; l < b.nlayers; l++) {
    const conv_layer *L = &b.l[l];
    double f = 2.0 * L->cout * L->cin * L->k * L->k * L->ho * L->wo * batch;
    fwd += f;
    bwd += l == 0 ? f : 2 * f;
  }
  mrl_rng rng;
  rng_seed(&rng, 1);
  work w = {&b, NULL, mlp_alloc_floats(b.nparams),
            mlp_alloc_floats((size_t)batch * b.in_dim),
            mlp_alloc_floats(conv_acts_floats(&b, batch)),
            mlp_alloc_floats(conv_scratch_floats(&b, batch)),
            mlp_alloc_floats(b.nparams),
            mlp_alloc_floats((size_t)batch * b.out_dim), batch};
  if (!w.p || !w.x || !w.acts || !w.scr || !w.g || !w.dflat) return 1;
  conv_init_params(&b, w.p, &rng, 1.4142);
  for (size_t i = 0; i < (size_t)batch * b.in_dim; i++)
    w.x[i] = (float)rng_uniform(&rng);
  for (size_t i = 0; i < (size_t)batch * b.out_dim; i++)
    w.dflat[i] = (float)rng_normal(&rng);
  const char *names[3] = {"portable", "avx2", "avx512"};
  double best_frac = 0;
  for (int v = 0; v < 3; v++) {
    w.k = mlp_kernels_find(names[v]);
    if (!w.k) continue;
    double tf = timeit(run_forward, &w), tt = timeit(run_train, &w);
    double gf = fwd / tf * 1e-9, gt = (fwd + bwd) / tt * 1e-9;
    printf("  %-8s forward  b256 %8.1f us  %6.1f GFLOP/s  %5.1f%% of peak\n",
           names[v], tf * 1e6, gf, peak > 0 ? 100 * gf / peak : 0);
    printf("  %-8s train    b256 %8.1f us  %6.1f GFLOP/s  %5.1f%% of peak\n",
           names[v], tt * 1e6, gt, peak > 0 ? 100 * gt / peak : 0);
    if (peak > 0 && gt / peak > best_frac) best_frac = gt / peak;
  }
  /* the variant mlp_shape_init picks, i.e. what a policy runs */
  w.k = mlp_kernels_find(NULL);
  double tt = timeit(run_train, &w);
  double frac = peak > 0 ? (fwd + bwd) / tt * 1e-9 / peak : 0;
  printf("conv_train_b256_gflops %.2f\n", (fwd + bwd) / tt * 1e-9);
  printf("conv_train_b256_peak_fraction %.3f\n", frac);
  (void)best_frac;
  return 0;
}
