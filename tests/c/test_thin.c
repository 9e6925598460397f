/* test_thin.c — the runtime helpers that keep the bindings thin: canonical
** safetensors files (sorted, duplicates refused), mrl_st_shape,
** mrl_write_file_atomic, mrl_optim_set_state, the vector loops
** (mrl_first_nonfinite, mrl_sum, mrl_norm2), mrl_tensor_str, and the
** constructors' and trainers' defaults and the policy spec's checks. */
#include <stdlib.h>
#include <unistd.h>

#include "moonrl.h"
#include "tap.h"

static char dir[] = "/tmp/mrl_thin_XXXXXX";

static size_t slurp(const char *path, char *buf, size_t cap) {
  FILE *f = fopen(path, "rb");
  if (!f) return 0;
  size_t n = fread(buf, 1, cap, f);
  fclose(f);
  return n;
}

static void st_canonical(void) {
  char p1[256], p2[256], err[256] = "";
  snprintf(p1, sizeof p1, "%s/a.st", dir);
  snprintf(p2, sizeof p2, "%s/b.st", dir);
  float a[2] = {1, 2}, b[3] = {3, 4, 5};
  mrl_st_tensor fwd[2] = {{"alpha", a, 1, {2}}, {"beta", b, 2, {1, 3}}};
  mrl_st_tensor rev[2] = {fwd[1], fwd[0]};
  const char *k1[] = {"x", "a"}, *v1[] = {"1", "2"};
  const char *k2[] = {"a", "x"}, *v2[] = {"2", "1"};
  TAP_OK(mrl_st_write(p1, fwd, 2, k1, v1, 2, err, sizeof err) == MRL_OK, "write 1: %s", err);
  TAP_OK(mrl_st_write(p2, rev, 2, k2, v2, 2, err, sizeof err) == MRL_OK, "write 2: %s", err);
  static char c1[4096], c2[4096];
  size_t n1 = slurp(p1, c1, sizeof c1), n2 = slurp(p2, c2, sizeof c2);
  TAP_OK(n1 > 0 && n1 == n2 && !memcmp(c1, c2, n1), "the caller's order does not show in the bytes");
  TAP_OK(strstr(c1 + 8, "\"__metadata__\":{\"a\":\"2\",\"x\":\"1\"},\"alpha\"") != NULL,
         "keys and names are written sorted");
  mrl_st_tensor dup[2] = {fwd[0], fwd[0]};
  int st = mrl_st_write(p1, dup, 2, NULL, NULL, 0, err, sizeof err);
  TAP_OK(st == MRL_EINVAL && strstr(err, "'alpha' given twice"), "duplicate name refused: %s", err);
  const char *kd[] = {"k", "k"}, *vd[] = {"1", "2"};
  st = mrl_st_write(p1, fwd, 2, kd, vd, 2, err, sizeof err);
  TAP_OK(st == MRL_EINVAL && strstr(err, "'k' given twice"), "duplicate key refused: %s", err);
  n2 = slurp(p1, c2, sizeof c2);
  TAP_OK(n2 == n1 && !memcmp(c1, c2, n1), "a refused write leaves the old file");
}

static void st_shape(void) {
  char path[256], err[256] = "";
  snprintf(path, sizeof path, "%s/s.st", dir);
  float x[24] = {0}, s = 7;
  mrl_st_tensor t[4] = {
    {"scalar", &s, 0, {0}},
    {"cube", x, 3, {2, 3, 4}},
    {"empty", x, 2, {0, 3}},
    {"wide", x, 2, {2, 12}},
  };
  TAP_OK(mrl_st_write(path, t, 4, NULL, NULL, 0, err, sizeof err) == MRL_OK, "write: %s", err);
  mrl_st_file *f = NULL;
  TAP_OK(mrl_st_open(&f, path, err, sizeof err) == MRL_OK, "open: %s", err);
  int nd = -1, sh[4] = {0};
  int i = mrl_st_find(f, "scalar");
  TAP_OK(mrl_st_shape(f, i, 4, 100, &nd, sh, err, sizeof err) == MRL_OK && nd == 1 && sh[0] == 1,
         "a scalar reads as a 1-element vector (nd %d, [%d])", nd, sh[0]);
  i = mrl_st_find(f, "cube");
  TAP_OK(mrl_st_shape(f, i, 4, 100, &nd, sh, err, sizeof err) == MRL_OK && nd == 3 &&
         sh[0] == 2 && sh[1] == 3 && sh[2] == 4, "shape [2][3][4]");
  int st = mrl_st_shape(f, i, 2, 100, &nd, sh, err, sizeof err);
  TAP_OK(st == MRL_EFORMAT && !strcmp(err, "tensor 'cube' has 3 dimensions (at most 2 supported)"),
         "too many dimensions: %s", err);
  st = mrl_st_shape(f, mrl_st_find(f, "empty"), 4, 100, &nd, sh, err, sizeof err);
  TAP_OK(st == MRL_EFORMAT && !strcmp(err, "tensor 'empty' is empty"), "empty: %s", err);
  st = mrl_st_shape(f, mrl_st_find(f, "wide"), 4, 10, &nd, sh, err, sizeof err);
  TAP_OK(st == MRL_EFORMAT && !strcmp(err, "tensor 'wide' has a bad dimension"), "too long: %s", err);
  TAP_OK(mrl_st_shape(f, 99, 4, 10, &nd, sh, err, sizeof err) == MRL_EINVAL, "bad index refused");
  mrl_st_close(f);
}

static void atomic(void) {
  char path[256], err[256] = "";
  snprintf(path, sizeof path, "%s/log.csv", dir);
  TAP_OK(mrl_write_file_atomic(path, "a,b\n1,2\n", 8, err, sizeof err) == MRL_OK, "write: %s", err);
  TAP_OK(mrl_write_file_atomic(path, "x\n", 2, err, sizeof err) == MRL_OK, "replace: %s", err);
  char buf[64];
  size_t n = slurp(path, buf, sizeof buf);
  TAP_OK(n == 2 && !memcmp(buf, "x\n", 2), "the file holds the new content only");
  TAP_OK(mrl_write_file_atomic(path, NULL, 0, err, sizeof err) == MRL_OK && slurp(path, buf, 64) == 0,
         "an empty file");
  char bad[300];
  snprintf(bad, sizeof bad, "%s/no/such/dir/f", dir);
  int st = mrl_write_file_atomic(bad, "x", 1, err, sizeof err);
  TAP_OK(st == MRL_EIO && strstr(err, "cannot create a temporary file"), "missing folder: %s", err);
  TAP_OK(mrl_write_file_atomic("", "x", 1, err, sizeof err) == MRL_EINVAL, "empty path refused");
  TAP_OK(mrl_write_file_atomic(path, NULL, 1, err, sizeof err) == MRL_EINVAL, "NULL data refused");
}

static void optim_state(void) {
  mrl_optim *o = NULL;
  TAP_OK(mrl_optim_new(&o, MRL_ADAM, 3, 0.9, 0.999, 1e-8) == MRL_OK, "adam");
  float m[3] = {0.1f, -0.2f, 0.3f}, v[3] = {0.01f, 0.02f, 0.03f};
  TAP_OK(mrl_optim_set_state(o, 5, m, v, 3) == MRL_OK, "set");
  TAP_OK(mrl_optim_steps(o) == 5 && !memcmp(mrl_optim_moment(o, 0), m, sizeof m) &&
         !memcmp(mrl_optim_moment(o, 1), v, sizeof v), "state restored exactly");
  float bad[3] = {0.1f, NAN, 0.3f}, neg[3] = {0.01f, 0.02f, -1e-9f};
  struct { int st; int64_t steps; const float *m, *v; size_t n; const char *want; } cases[] = {
    {MRL_EINVAL, 7, m, v, 2, "3 parameters expected, got 2"},
    {MRL_EINVAL, -1, m, v, 3, "step count -1 out of range"},
    {MRL_EINVAL, INT64_MAX, m, v, 3, "out of range"},
    {MRL_EINVAL, 7, m, NULL, 3, "moment v (3 numbers) missing"},
    {MRL_ENONFINITE, 7, bad, v, 3, "moment m has a NaN or Inf at element 2"},
    {MRL_EINVAL, 7, m, neg, 3, "moment v is a mean of squares"},
  };
  for (size_t c = 0; c < sizeof cases / sizeof cases[0]; c++) {
    int st = mrl_optim_set_state(o, cases[c].steps, cases[c].m, cases[c].v, cases[c].n);
    TAP_OK(st == cases[c].st && strstr(mrl_optim_error(o), cases[c].want) &&
           mrl_optim_steps(o) == 5 && mrl_optim_moment(o, 0)[1] == m[1] &&
           mrl_optim_moment(o, 1)[2] == v[2],
           "refused, nothing changed: %s", mrl_optim_error(o));
  }
  mrl_optim_free(o);
  TAP_OK(mrl_optim_new(&o, MRL_SGD, 3, 0.0, 0, 0) == MRL_OK, "plain sgd");
  TAP_OK(mrl_optim_set_state(o, 2, m, v, 3) == MRL_OK && mrl_optim_steps(o) == 2,
         "moments it does not keep are ignored");
  mrl_optim_free(o);
  TAP_OK(mrl_optim_set_state(NULL, 0, NULL, NULL, 0) == MRL_EINVAL, "NULL optimiser");
}

static void loops(void) {
  float x[40];
  for (int i = 0; i < 40; i++) x[i] = (float)(i % 5) - 2.0f;  /* sums to 0 */
  TAP_OK(mrl_sum(x, 40) == 0.0 && mrl_sum(x, 3) == -3.0, "sum");
  float y[2] = {3, 4};
  TAP_OK(mrl_norm2(y, 2) == 5.0 && mrl_norm2(y, 0) == 0.0, "norm2");
  float big[2] = {3e30f, 4e30f};
  TAP_OK(tap_close(mrl_norm2(big, 2), 5e30, 1e-6, 0), "norm2 in double does not overflow");
  TAP_OK(mrl_first_nonfinite(x, 40) == 40, "all finite: n");
  x[33] = INFINITY;
  x[37] = NAN;
  TAP_OK(mrl_first_nonfinite(x, 40) == 33, "first non-finite");
  TAP_OK(mrl_first_nonfinite(x, 33) == 33 && mrl_first_nonfinite(NULL, 0) == 0, "bounds");
  float g[2] = {30, 40};
  double norm = 0;
  TAP_OK(mrl_clip_grad_norm(g, 2, 5, &norm) == MRL_OK && norm == 50.0 &&
         tap_close(g[0], 3, 1e-6, 0), "clip_grad_norm goes through norm2");
  double t0 = mrl_now(), t1 = mrl_now();
  TAP_OK(t0 > 0 && t1 >= t0, "mrl_now is a monotonic clock in seconds");
}

static void specs(void) {
  mrl_policy_spec s = mrl_policy_spec_default();
  TAP_OK(s.nhidden == 2 && s.hidden[0] == 64 && s.hidden[1] == 64 && s.activation == MRL_TANH &&
         s.out_gain == 0.01 && s.init_log_std == 0 && s.seed == 0 && s.obs_dim == 0,
         "policy defaults: SB3's MlpPolicy");
  mrl_net_spec n = mrl_net_spec_default();
  TAP_OK(n.nhidden == 2 && n.hidden[0] == 64 && n.hidden[1] == 64 && n.activation == MRL_TANH &&
         n.out_dim == 1 && n.out_gain == 1.0 && n.seed == 0, "net defaults: a value network");
  mrl_ppo_config c = mrl_ppo_config_default();
  TAP_OK(c.epochs == 10 && c.minibatch_size == 64 && c.lr == 3e-4 && c.clip_eps == 0.2 &&
         c.vf_coef == 0.5 && c.max_grad_norm == 0.5 && c.normalize_advantages == 1 &&
         c.clip_value == 0 && c.ent_coef == 0 && c.target_kl == 0 && c.shards == 0 &&
         c.kl_beta == 0 && c.reduce == NULL && c.rng == NULL, "PPO defaults: SB3's");
  mrl_ppo_opts po = mrl_ppo_opts_default();
  mrl_trpo_opts to = mrl_trpo_opts_default();
  TAP_OK(po.clip_eps == 0.2 && po.ent_coef == 0 && po.normalize_advantages == 1 &&
         to.max_kl == 0.01 && to.damping == 0.1 && to.backtrack_coef == 0.8 &&
         to.cg_iters == 10 && to.max_backtracks == 10, "ppo_loss and trpo_step defaults");
  char err[256] = "";
  TAP_OK(mrl_policy_spec_check(&s, err, sizeof err) == MRL_EINVAL && strstr(err, "obs_dim 0"),
         "obs_dim is the caller's: %s", err);
  s.obs_dim = 3;
  s.action_n = 2;
  TAP_OK(mrl_policy_spec_check(&s, err, sizeof err) == MRL_OK, "defaults + dims are a valid spec");
  mrl_policy *p = NULL;
  TAP_OK(mrl_policy_new(&p, &s) == MRL_OK && mrl_policy_nparams(p) == 4546, "and build a policy");
  /* scalar ranges are the runtime's (the bindings pass numbers through) */
  float obs[3] = {0.1f, 0.2f, 0.3f}, act[1] = {1}, olp[1] = {-0.7f}, adv[1] = {1};
  double loss, mkl;
  TAP_OK(mrl_policy_kl_penalty_loss(p, mrl_policy_params(p), obs, act, olp, adv, 1, -1, &loss,
                                    &mkl) == MRL_EINVAL &&
         strstr(mrl_policy_error(p), "beta: expected a finite value >= 0"),
         "kl_penalty beta < 0: %s", mrl_policy_error(p));
  TAP_OK(mrl_policy_kl_penalty_loss(p, mrl_policy_params(p), obs, act, olp, adv, 1, 0.5, &loss,
                                    &mkl) == MRL_OK && mkl == 0, "beta 0.5 at params_old: KL 0");
  mrl_policy_free(p);
  float lo[2] = {0, 1}, hi[2] = {1, 0};
  s.action_kind = MRL_BOX;
  s.low = lo;
  s.high = hi;
  TAP_OK(mrl_policy_spec_check(&s, err, sizeof err) == MRL_EINVAL &&
         !strcmp(err, "action bounds: low[2] <= high[2] expected, got 1 and 0"), "bounds: %s", err);
  p = (mrl_policy *)&s;  /* must be reset to NULL on failure */
  TAP_OK(mrl_policy_new(&p, &s) == MRL_EINVAL && p == NULL, "mrl_policy_new refuses it too");
  s.high = NULL;
  TAP_OK(mrl_policy_spec_check(&s, err, sizeof err) == MRL_OK, "one-sided bounds are allowed");
  lo[0] = NAN;
  TAP_OK(mrl_policy_spec_check(&s, err, sizeof err) == MRL_EINVAL, "a NaN bound is refused");
  s.low = NULL;
  s.init_log_std = INFINITY;
  TAP_OK(mrl_policy_spec_check(&s, err, sizeof err) == MRL_EINVAL && strstr(err, "init_log_std"),
         "init_log_std: %s", err);
  s.init_log_std = 0;
  int wide[1] = {0};
  s.hidden = wide;
  s.nhidden = 1;
  TAP_OK(mrl_policy_spec_check(&s, err, sizeof err) == MRL_EINVAL && strstr(err, "width 0"),
         "a zero-width layer: %s", err);
  TAP_OK(mrl_policy_spec_check(NULL, err, sizeof err) == MRL_EINVAL, "NULL spec");

  mrl_optim_hparams a = mrl_optim_defaults(MRL_ADAM), g = mrl_optim_defaults(MRL_SGD);
  TAP_OK(a.beta1 == 0.9 && a.beta2 == 0.999 && a.eps == 1e-8 && g.beta1 == 0,
         "optimiser defaults: torch's Adam, SGD without momentum");
  TAP_OK(mrl_optim_check(MRL_ADAM, 10, a.beta1, a.beta2, a.eps, err, sizeof err) == MRL_OK,
         "the defaults pass");
  struct { mrl_optim_kind k; size_t n; double b1, b2, eps; const char *want; } bad[] = {
    {MRL_ADAM, 0, 0.9, 0.999, 1e-8, "0 parameters"},
    {MRL_ADAM, 4, 1.0, 0.999, 1e-8, "beta1 1 is not in [0, 1)"},
    {MRL_ADAM, 4, 0.9, -0.1, 1e-8, "beta2 -0.1"},
    {MRL_ADAM, 4, 0.9, 0.999, INFINITY, "eps inf"},
    {MRL_SGD, 4, -0.5, 0, 0, "momentum -0.5"},
    {(mrl_optim_kind)7, 4, 0, 0, 0, "unknown kind 7"},
  };
  for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
    mrl_optim *o = (mrl_optim *)&s;
    int st = mrl_optim_check(bad[i].k, bad[i].n, bad[i].b1, bad[i].b2, bad[i].eps, err, sizeof err);
    TAP_OK(st == MRL_EINVAL && strstr(err, bad[i].want) &&
           mrl_optim_new(&o, bad[i].k, bad[i].n, bad[i].b1, bad[i].b2, bad[i].eps) == MRL_EINVAL &&
           o == NULL, "refused (and by mrl_optim_new): %s", err);
  }
  TAP_OK(mrl_optim_check(MRL_SGD, 4, 0.5, -1, NAN, err, sizeof err) == MRL_OK,
         "SGD ignores beta2 and eps");
}

/* how a tensor prints, in every binding */
static void tensor_str(void) {
  char b[MRL_TENSOR_STR];
  int sh[2] = {2, 5};
  float x[10] = {1, 2.5f, -3, 1e-7f, 0, 0, 0, 0, 9, 10};
  TAP_OK(!strcmp(mrl_tensor_str(b, sizeof b, 2, sh, x, 0), "moonrl.Tensor [2][5]"), "shape: %s", b);
  TAP_OK(!strcmp(mrl_tensor_str(b, sizeof b, 2, sh, x, 1),
                 "moonrl.Tensor [2][5] {1, 2.5, -3, 1e-07, 0, 0, 0, 0, …}"), "values: %s", b);
  TAP_OK(!strcmp(mrl_tensor_str(b, sizeof b, 1, sh, x, 1), "moonrl.Tensor [2] {1, 2.5}"),
         "all values: %s", b);
  TAP_OK(!strcmp(mrl_tensor_str(b, sizeof b, 1, sh, NULL, -1),
                 "moonrl.Tensor [2] (view of a closed object)"), "closed: %s", b);
  TAP_OK(!strcmp(mrl_tensor_str(b, 12, 2, sh, x, 1), "moonrl.Tens"), "truncated: %s", b);
}

int main(void) {
  if (!mkdtemp(dir)) return 1;
  tensor_str();
  st_canonical();
  st_shape();
  atomic();
  optim_state();
  loops();
  specs();
  char cmd[300];
  snprintf(cmd, sizeof cmd, "rm -rf %s", dir);
  if (system(cmd)) {}
  return tap_done();
}
