/*
** bench_kernels.c — throughput of the MLP kernels, per kernel variant:
** forward at batch 1/64/512 and a training step (forward + backward + Adam)
** at minibatch 64/128/256 for 4-64-64-2 (tanh policy) and 4-64-64-1 (value),
** and 4-256-256-2 at batch 512 as a fraction of a measured FP32 FMA peak.
** FLOPs are the multiply-adds actually done: forward 2·Σ in·out per sample,
** backward 2·Σ in·out for the weight gradient plus the same for dx of every
** layer but the first.  Figures, never pass/fail.
*/
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include "kernels.h"
#include "mlp.h"
#include "moonrl.h"
#include "rng_impl.h"

static double now(void) {
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return ts.tv_sec + 1e-9 * ts.tv_nsec;
}

/* ------------------------------------------------------- FMA peak probe */
#include "fma_peak.h"

/* ---------------------------------------------------------- workloads */

typedef struct {
  mlp_shape s;
  float *p, *g, *x, *acts, *scratch, *dy;
  int batch, nsamples;
  mrl_optim *opt;
  float m[1], v[1];
  double fwd_flops, bwd_flops;  /* per sample */
} work;

static void work_init(work *w, const int *hidden, int nh, int out, int batch,
                      const char *kern) {
  memset(w, 0, sizeof *w);
  mlp_shape_init(&w->s, 4, hidden, nh, out, MRL_TANH);
  mlp_shape_set_kernels(&w->s, kern);
  w->batch = batch;
  w->nsamples = batch < 4096 ? 4096 : batch;
  size_t P = w->s.nparams;
  /* aligned as the library allocates them (mlp_alloc_floats) */
  w->p = mlp_alloc_floats(P);
  w->g = mlp_alloc_floats(P);
  w->x = mlp_alloc_floats((size_t)w->nsamples * 4);
  w->acts = mlp_alloc_floats(mlp_acts_floats(&w->s, batch));
  w->scratch = mlp_alloc_floats(mlp_scratch_floats(&w->s, batch));
  w->dy = mlp_alloc_floats((size_t)batch * out);
  mrl_rng r;
  rng_seed(&r, 1);
  mlp_init_params(&w->s, w->p, &r, sqrt(2.0), 0.01);
  for (int i = 0; i < w->nsamples * 4; i++) w->x[i] = (float)rng_normal(&r);
  for (int i = 0; i < batch * out; i++) w->dy[i] = (float)(1e-3 * rng_normal(&r));
  mrl_optim_new(&w->opt, MRL_ADAM, P, 0.9, 0.999, 1e-8);
  for (int l = 0; l < w->s.nlayers; l++) {
    double io = (double)w->s.dims[l] * w->s.dims[l + 1];
    w->fwd_flops += 2 * io;
    w->bwd_flops += l == 0 ? 2 * io : 4 * io;
  }
}

static void work_free(work *w) {
  free(w->p); free(w->g); free(w->x); free(w->acts); free(w->scratch); free(w->dy);
  mrl_optim_free(w->opt);
}

static void run_forward(work *w, long reps) {
  int rows = w->nsamples / w->batch;
  for (long i = 0; i < reps; i++) {
    const float *x = w->x + (size_t)(i % rows) * w->batch * 4;
    mlp_forward(&w->s, w->p, x, w->batch, w->acts);
  }
}

static void run_train(work *w, long reps) {
  int rows = w->nsamples / w->batch;
  for (long i = 0; i < reps; i++) {
    const float *x = w->x + (size_t)(i % rows) * w->batch * 4;
    mlp_forward(&w->s, w->p, x, w->batch, w->acts);
    memset(w->g, 0, w->s.nparams * 4);
    mlp_backward(&w->s, w->p, x, w->acts, w->batch, w->dy, w->g, w->scratch, NULL);
    mrl_optim_step(w->opt, w->p, w->g, 1e-5);
  }
}

/* seconds per call, repeated to ≥ 0.2 s */
static double timeit(void (*fn)(work *, long), work *w) {
  fn(w, 3);  /* warm caches and pages */
  long reps = 1;
  for (;;) {
    double t0 = now();
    fn(w, reps);
    double dt = now() - t0;
    if (dt >= 0.2) return dt / reps;
    reps = dt < 0.02 ? reps * 10 : reps * 2;
  }
}

static void report(const char *what, int batch, double sec, double flops_per_sample,
                   double peak) {
  double sps = batch / sec, gf = flops_per_sample * batch / sec * 1e-9;
  char b[16];
  snprintf(b, sizeof b, "b=%d", batch);
  printf("  %-9s %-6s %8.2f M samples/s %8.2f GFLOP/s %10.0f ns/call", what, b,
         sps * 1e-6, gf, sec * 1e9);
  if (peak > 0) printf("  %5.1f%% of peak", 100 * gf / peak);
  printf("\n");
}

/* plain C reference: one sample at a time, scalar tanhf, W as stored */
static void naive_forward(const mlp_shape *s, const float *p, const float *x,
                          int batch, float *y) {
  float h[2][256];
  for (int b = 0; b < batch; b++) {
    const float *in = x + (size_t)b * s->dims[0];
    for (int l = 0; l < s->nlayers; l++) {
      int I = s->dims[l], O = s->dims[l + 1];
      const float *W = p + s->woff[l], *bias = p + s->boff[l];
      float *z = l == s->nlayers - 1 ? y + (size_t)b * O : h[l & 1];
      for (int o = 0; o < O; o++) {
        float a = bias[o];
        for (int i = 0; i < I; i++) a += W[o * I + i] * in[i];
        z[o] = l == s->nlayers - 1 ? a : tanhf(a);
      }
      in = z;
    }
  }
}
static void run_naive(work *w, long reps) {
  int rows = w->nsamples / w->batch;
  for (long i = 0; i < reps; i++)
    naive_forward(&w->s, w->p, w->x + (size_t)(i % rows) * w->batch * 4, w->batch,
                  w->acts);
}

int main(void) {
  const char *peak_what;
  double peak = fma_peak(now, &peak_what);
  printf("bench_kernels: FP32 FMA peak (one core, %s probe): %.1f GFLOP/s"
         " (every %% of peak below is of this figure)\n",
         peak_what, peak);
  printf("default kernel variant: %s (MRL_KERNELS=%s)\n",
         mlp_kernels_find(getenv("MRL_KERNELS")) ? mlp_kernels_find(getenv("MRL_KERNELS"))->name
                                                 : mlp_kernels_find(NULL)->name,
         getenv("MRL_KERNELS") ? getenv("MRL_KERNELS") : "unset");
  int h64[] = {64, 64}, h256[] = {256, 256};
  const char *vars[] = {"avx512", "avx2", "portable"};
  for (int vi = 0; vi < 3; vi++) {
    if (!mlp_kernels_find(vars[vi])) continue;
    printf("\nkernels: %s\n", vars[vi]);
    for (int net = 0; net < 2; net++) {
      int out = net == 0 ? 2 : 1;
      printf(" 4-64-64-%d tanh (%s)\n", out, net == 0 ? "policy" : "value");
      int fb[] = {1, 64, 512}, tb[] = {64, 128, 256};
      for (int i = 0; i < 3; i++) {
        work w;
        work_init(&w, h64, 2, out, fb[i], vars[vi]);
        report("forward", fb[i], timeit(run_forward, &w), w.fwd_flops, 0);
        work_free(&w);
      }
      for (int i = 0; i < 3; i++) {
        work w;
        work_init(&w, h64, 2, out, tb[i], vars[vi]);
        report("train", tb[i], timeit(run_train, &w), w.fwd_flops + w.bwd_flops, 0);
        work_free(&w);
      }
    }
    printf(" 4-256-256-2 tanh\n");
    work w;
    work_init(&w, h256, 2, 2, 512, vars[vi]);
    report("forward", 512, timeit(run_forward, &w), w.fwd_flops, peak);
    report("train", 512, timeit(run_train, &w), w.fwd_flops + w.bwd_flops, peak);
    work_free(&w);
  }
  printf("\nplain C reference (scalar loops, tanhf, no packing)\n");
  int nb[] = {1, 64};
  for (int i = 0; i < 2; i++) {
    work w;
    work_init(&w, h64, 2, 2, nb[i], "portable");
    report("forward", nb[i], timeit(run_naive, &w), w.fwd_flops, 0);
    work_free(&w);
  }
  printf("(train = forward + backward + mrl_optim_step Adam, grad zeroed each step)\n");
  return 0;
}
