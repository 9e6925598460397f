/* test_mlp_packed.c — the forward pass over a transposed weight copy
** (mlp_packed.h) against the plain one, for every kernel variant the CPU
** runs, over shapes that hit each branch (batch 1–2 fallback, narrow
** output layers, widths off the vector size); and the policy and value
** network entry points against mrl_policy_act / mrl_net_forward. */
#include <math.h>
#include <stdlib.h>
#include <string.h>
#include "kernels.h"
#include "mlp_packed.h"
#include "rng_impl.h"
#include "tap.h"

static double max_rel_diff(const float *a, const float *b, size_t n) {
  double worst = 0;
  for (size_t i = 0; i < n; i++) {
    if (!isfinite(a[i]) || !isfinite(b[i])) return INFINITY;
    double d = fabs((double)a[i] - b[i]) / (1e-6 + fabs((double)b[i]));
    if (d > worst) worst = d;
  }
  return worst;
}

static void check_shape(const char *variant, int in, const int *hidden, int nh,
                        int out, mrl_activation act, int batch) {
  mlp_shape s;
  if (mlp_shape_init(&s, in, hidden, nh, out, act) ||
      mlp_shape_set_kernels(&s, variant)) {
    TAP_OK(0, "%s: shape %d→…→%d", variant, in, out);
    return;
  }
  mrl_rng rng;
  rng_seed(&rng, (uint64_t)(in * 1000 + out * 10 + batch));
  float *p = malloc(s.nparams * sizeof(float)), *wt = malloc(s.nparams * sizeof(float));
  float *x = malloc((size_t)batch * in * sizeof(float));
  size_t na = mlp_acts_floats(&s, batch);
  float *a1 = malloc(na * sizeof(float)), *a2 = malloc(na * sizeof(float));
  mlp_init_params(&s, p, &rng, sqrt(2.0), 1.0);
  for (size_t i = 0; i < s.nparams; i++) p[i] += (float)(0.01 * rng_normal(&rng));
  for (int i = 0; i < batch * in; i++) x[i] = (float)rng_normal(&rng);
  mlp_forward(&s, p, x, batch, a1);
  mlp_pack_wt(&s, p, wt);
  mlp_forward_wt(&s, p, wt, x, batch, a2);
  double d = max_rel_diff(mlp_output(&s, a2, batch), mlp_output(&s, a1, batch),
                          (size_t)batch * out);
  TAP_OK(d < 1e-4, "%s %d-%d-%d (%d hidden) b=%d %s: packed forward within %.2g",
         variant, in, nh ? hidden[0] : 0, out, nh, batch,
         act == MRL_TANH ? "tanh" : "relu", d);
  /* a NaN input row still comes out NaN */
  x[0] = NAN;
  mlp_forward_wt(&s, p, wt, x, batch, a2);
  TAP_OK(isnan(mlp_output(&s, a2, batch)[0]), "%s b=%d: NaN propagates", variant, batch);
  free(p); free(wt); free(x); free(a1); free(a2);
}

static void test_policy_and_net(void) {
  int hidden[2] = {64, 64};
  mrl_policy_spec spec = {.obs_dim = 4, .hidden = hidden, .nhidden = 2,
                          .activation = MRL_TANH, .action_kind = MRL_DISCRETE,
                          .action_n = 2, .out_gain = 0.01, .seed = 3};
  mrl_policy *pa, *pb;
  mrl_net *v;
  TAP_OK(!mrl_policy_new(&pa, &spec) && !mrl_policy_new(&pb, &spec) &&
         !mrl_net_new(&v, 4, hidden, 2, 1, MRL_TANH, 1.0, 4), "create");
  float obs[8 * 4], a1[8], a2[8], l1[8], l2[8], v1[8], v2[8];
  for (int i = 0; i < 32; i++) obs[i] = (float)((i % 11) * 0.1 - 0.5);
  float *wt = malloc(policy_wt_floats(pa) * sizeof(float));
  float *vwt = malloc(net_wt_floats(v) * sizeof(float));
  policy_pack_wt(pa, wt);
  net_pack_wt(v, vwt);
  /* same generator state in both: the same draws, so the same actions */
  int same = 1;
  double worst = 0;
  for (int rep = 0; rep < 50; rep++) {
    obs[0] = (float)(rep * 0.03);
    mrl_policy_act(pa, obs, 8, 0, a1, l1);
    policy_act_wt(pb, wt, obs, 8, a2, l2);
    for (int i = 0; i < 8; i++) {
      same &= a1[i] == a2[i];
      double d = fabs((double)l1[i] - l2[i]);
      if (d > worst) worst = d;
    }
  }
  TAP_OK(same, "policy_act_wt draws the same actions as mrl_policy_act");
  TAP_OK(worst < 1e-5, "and the same log-probs within %.2g", worst);
  mrl_net_forward(v, obs, 8, v1);
  net_forward_wt(v, vwt, obs, 8, v2);
  TAP_OK(max_rel_diff(v2, v1, 8) < 1e-5, "net_forward_wt matches mrl_net_forward");
  /* the checks are those of act: a NaN observation is refused, by name */
  obs[5] = NAN;
  TAP_OK(policy_act_wt(pb, wt, obs, 8, a2, l2) == MRL_ENONFINITE &&
             strstr(mrl_policy_error(pb), "obs") != NULL,
         "a NaN observation is refused: %s", mrl_policy_error(pb));
  TAP_OK(net_forward_wt(v, vwt, obs, 0, v2) == MRL_EINVAL, "batch 0 is refused");
  free(wt); free(vwt);
  mrl_policy_free(pa); mrl_policy_free(pb); mrl_net_free(v);
}

int main(void) {
  const char *variants[] = {"portable", "avx2", "avx512"};
  int h64[2] = {64, 64}, h37[2] = {37, 19}, h256[2] = {256, 256}, h8[1] = {8};
  for (int vi = 0; vi < 3; vi++) {
    if (!mlp_kernels_find(variants[vi])) continue;
    const char *v = variants[vi];
    int batches[] = {1, 2, 3, 4, 7, 16, 33};
    for (int b = 0; b < 7; b++) {
      check_shape(v, 4, h64, 2, 2, MRL_TANH, batches[b]);
      check_shape(v, 6, h37, 2, 3, MRL_RELU, batches[b]);
    }
    check_shape(v, 4, h64, 2, 1, MRL_TANH, 5);
    check_shape(v, 17, h256, 2, 9, MRL_TANH, 4);
    check_shape(v, 3, h8, 1, 64, MRL_RELU, 6);
    check_shape(v, 5, NULL, 0, 12, MRL_TANH, 4);
  }
  test_policy_and_net();
  return tap_done();
}
