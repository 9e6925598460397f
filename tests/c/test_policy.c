/* test_policy.c — the mrl_policy handle: layout against a naive reference
** network, sampling, every loss gradient against central differences,
** argument checking and the refusal of non-finite inputs. */
#include <math.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "dist.h"
#include "moonrl.h"
#include "policy_impl.h"
#include "tap.h"

/* ------------------------------------------------------------ helpers */

static uint64_t test_state = 0x9E3779B97F4A7C15ULL;
static double urand(void) { /* xorshift64*, test data only */
  test_state ^= test_state >> 12;
  test_state ^= test_state << 25;
  test_state ^= test_state >> 27;
  return (double)((test_state * 0x2545F4914F6CDD1DULL) >> 11) * 0x1.0p-53;
}
static float frand(double lo, double hi) { return (float)(lo + (hi - lo) * urand()); }

static mrl_policy *make(mrl_action_kind kind, int obs, const int *hidden,
                        int nh, int n, mrl_activation act, uint64_t seed) {
  mrl_policy_spec s = {0};
  s.obs_dim = obs;
  s.hidden = hidden;
  s.nhidden = nh;
  s.activation = act;
  s.action_kind = kind;
  s.action_n = n;
  s.init_log_std = -0.5;
  s.out_gain = 0.01;
  s.seed = seed;
  mrl_policy *p = NULL;
  if (mrl_policy_new(&p, &s) != MRL_OK) return NULL;
  return p;
}

/* Fills params with values of a useful size (the SB3 init puts the logits
** near 0, which would make every gradient test trivially small). */
static void randomize(mrl_policy *p, double scale) {
  float *w = mrl_policy_params(p);
  size_t n = mrl_policy_nparams(p);
  for (size_t i = 0; i < n; i++) w[i] = frand(-scale, scale);
}

static void fill(float *x, size_t n, double lo, double hi) {
  for (size_t i = 0; i < n; i++) x[i] = frand(lo, hi);
}

static void fill_actions(mrl_policy *p, float *a, int batch) {
  int n = mrl_policy_action_n(p);
  if (mrl_policy_action_kind(p) == MRL_DISCRETE)
    for (int i = 0; i < batch; i++) a[i] = (float)(int)(urand() * n);
  else
    fill(a, (size_t)batch * n, -1.5, 1.5);
}

/* Naive reference network in double, reading the documented flat layout. */
static void ref_forward(mrl_policy *p, const float *w, const float *x,
                        double *y) {
  int nl = mrl_policy_nhidden(p) + 1;
  int dims[MRL_MAX_LAYERS + 2];
  dims[0] = mrl_policy_obs_dim(p);
  for (int l = 1; l < nl; l++) dims[l] = mrl_policy_hidden(p, l - 1);
  dims[nl] = mrl_policy_out_dim(p);
  double a[256], b[256];
  for (int i = 0; i < dims[0]; i++) a[i] = x[i];
  size_t off = 0;
  for (int l = 0; l < nl; l++) {
    int in = dims[l], out = dims[l + 1];
    const float *W = w + off, *bias = w + off + (size_t)in * out;
    for (int o = 0; o < out; o++) {
      double s = bias[o];
      for (int i = 0; i < in; i++) s += (double)W[o * in + i] * a[i];
      if (l < nl - 1)
        s = mrl_policy_activation(p) == MRL_TANH ? tanh(s) : (s > 0 ? s : 0);
      b[o] = s;
    }
    off += (size_t)in * out + out;
    memcpy(a, b, sizeof(double) * out);
  }
  memcpy(y, a, sizeof(double) * dims[nl]);
}

/* Central differences of a scalar function of the params, against grad. */
typedef double (*loss_fn)(mrl_policy *p, void *ctx);

static double fd_check(mrl_policy *p, loss_fn f, void *ctx, const float *grad,
                       double h, double *rel) {
  size_t n = mrl_policy_nparams(p);
  float *w = mrl_policy_params(p);
  double num = 0.0, den = 0.0, worst = 0.0;
  for (size_t i = 0; i < n; i++) {
    float w0 = w[i];
    float wp = (float)(w0 + h), wm = (float)(w0 - h);
    w[i] = wp;
    double fp = f(p, ctx);
    w[i] = wm;
    double fm = f(p, ctx);
    w[i] = w0;
    double d = (fp - fm) / ((double)wp - (double)wm);
    double e = fabs(d - grad[i]);
    if (e > worst) worst = e;
    num += e * e;
    den += d * d;
  }
  *rel = sqrt(num / (den > 0 ? den : 1));
  return worst;
}

/* ------------------------------------------------------------ tests */

static void test_create(void) {
  int hid[2] = {8, 6};
  mrl_policy *p = make(MRL_BOX, 4, hid, 2, 2, MRL_TANH, 7);
  TAP_OK(p != NULL, "box policy created");
  if (!p) return;
  size_t nnet = (4 * 8 + 8) + (8 * 6 + 6) + (6 * 2 + 2);
  TAP_OK(mrl_policy_nparams(p) == nnet + 2, "nparams = network + log_std (%zu)",
         mrl_policy_nparams(p));
  TAP_OK(mrl_policy_obs_dim(p) == 4 && mrl_policy_action_n(p) == 2 &&
             mrl_policy_action_width(p) == 2 && mrl_policy_out_dim(p) == 2 &&
             mrl_policy_nhidden(p) == 2 && mrl_policy_hidden(p, 1) == 6 &&
             mrl_policy_action_kind(p) == MRL_BOX &&
             mrl_policy_activation(p) == MRL_TANH,
         "accessors report the spec");
  const float *w = mrl_policy_params(p);
  TAP_OK(w[nnet] == -0.5f && w[nnet + 1] == -0.5f, "log_std = init_log_std");
  int zero_bias = 1;
  for (int o = 0; o < 8; o++) zero_bias &= w[4 * 8 + o] == 0.0f;
  for (int o = 0; o < 2; o++) zero_bias &= w[nnet - 2 + o] == 0.0f;
  TAP_OK(zero_bias, "biases start at zero");
  /* Output gain 0.01: the output layer is tiny, hidden layers are not. */
  double out_norm = 0.0, h_norm = 0.0;
  for (int i = 0; i < 12; i++) out_norm += w[nnet - 14 + i] * w[nnet - 14 + i];
  for (int i = 0; i < 32; i++) h_norm += w[i] * w[i];
  TAP_OK(out_norm < 1e-3 && h_norm > 1.0, "orthogonal init with out_gain");
  TAP_OK(mrl_policy_low(p) == NULL && mrl_policy_high(p) == NULL,
         "unbounded box has no bounds");
  TAP_OK(mrl_policy_rng(p) == &p->rng, "rng is the embedded generator");

  mrl_policy *q = make(MRL_BOX, 4, hid, 2, 2, MRL_TANH, 7);
  TAP_OK(q && memcmp(mrl_policy_params(q), w, sizeof(float) * (nnet + 2)) == 0,
         "same seed, same parameters");
  mrl_policy_free(q);
  mrl_policy_free(p);

  float lo[2] = {-2, -1}, hi[2] = {2, 1};
  mrl_policy_spec s = {0};
  s.obs_dim = 3;
  s.action_kind = MRL_BOX;
  s.action_n = 2;
  s.low = lo;
  s.high = hi;
  s.out_gain = 1.0;
  TAP_OK(mrl_policy_new(&p, &s) == MRL_OK && mrl_policy_low(p)[0] == -2.0f &&
             mrl_policy_high(p)[1] == 1.0f && mrl_policy_low(p) != lo,
         "box bounds are copied");
  mrl_policy_free(p);

  s.obs_dim = 0;
  TAP_OK(mrl_policy_new(&p, &s) == MRL_EINVAL && p == NULL, "obs_dim 0 refused");
  s.obs_dim = 3;
  hi[1] = -5;
  TAP_OK(mrl_policy_new(&p, &s) == MRL_EINVAL, "low > high refused");
  hi[1] = 1;
  s.nhidden = 1;
  TAP_OK(mrl_policy_new(&p, &s) == MRL_EINVAL, "nhidden without widths refused");
  s.nhidden = 0;
  s.action_kind = (mrl_action_kind)7;
  TAP_OK(mrl_policy_new(&p, &s) == MRL_EINVAL, "unknown action kind refused");
  TAP_OK(mrl_policy_new(NULL, &s) == MRL_EINVAL && mrl_policy_new(&p, NULL) == MRL_EINVAL,
         "NULL arguments refused");
  mrl_policy_free(NULL);
}

static void test_forward_layout(void) {
  int hid[2] = {7, 5};
  mrl_activation acts[2] = {MRL_TANH, MRL_RELU};
  for (int ai = 0; ai < 2; ai++) {
    mrl_policy *p = make(MRL_DISCRETE, 4, hid, 2, 3, acts[ai], 3);
    randomize(p, 0.8);
    float obs[6 * 4], out[6 * 3];
    fill(obs, 24, -2, 2);
    int rc = mrl_policy_forward(p, NULL, obs, 6, out);
    double err = 0.0;
    for (int i = 0; i < 6; i++) {
      double y[3];
      ref_forward(p, mrl_policy_params(p), obs + 4 * i, y);
      for (int j = 0; j < 3; j++) err = fmax(err, fabs(y[j] - out[3 * i + j]));
    }
    TAP_OK(rc == MRL_OK && err < 1e-5,
           "forward = reference network in the flat layout (%s, err %.2g)",
           ai ? "relu" : "tanh", err);
    /* At an explicit parameter vector, the handle's params are not used. */
    float *w2 = malloc(sizeof(float) * mrl_policy_nparams(p));
    for (size_t i = 0; i < mrl_policy_nparams(p); i++) w2[i] = frand(-1, 1);
    rc = mrl_policy_forward(p, w2, obs, 6, out);
    double y[3];
    ref_forward(p, w2, obs + 4 * 5, y);
    TAP_OK(rc == MRL_OK && fabs(y[2] - out[17]) < 1e-5,
           "forward at explicit params");
    free(w2);
    mrl_policy_free(p);
  }
  mrl_policy *lin = make(MRL_BOX, 3, NULL, 0, 2, MRL_TANH, 1);
  randomize(lin, 1.0);
  float obs[3] = {0.5f, -1.0f, 2.0f}, out[2];
  mrl_policy_forward(lin, NULL, obs, 1, out);
  double y[2];
  ref_forward(lin, mrl_policy_params(lin), obs, y);
  TAP_OK(fabs(y[0] - out[0]) < 1e-6 && fabs(y[1] - out[1]) < 1e-6,
         "a policy with no hidden layer is one Linear");
  mrl_policy_free(lin);
}

static void test_evaluate_kl(void) {
  int hid[1] = {8};
  for (int kind = 0; kind < 2; kind++) {
    mrl_policy *p = make((mrl_action_kind)kind, 5, hid, 1, 3, MRL_TANH, 11);
    randomize(p, 0.7);
    enum { B = 9 };
    float obs[B * 5], act[B * 3], lp[B], ent[B], out[B * 3];
    fill(obs, B * 5, -1, 1);
    fill_actions(p, act, B);
    int rc = mrl_policy_evaluate(p, NULL, obs, act, B, lp, ent);
    mrl_policy_forward(p, NULL, obs, B, out);
    const float *ls = mrl_policy_params(p) + (mrl_policy_nparams(p) - 3);
    double err = 0.0;
    for (int i = 0; i < B; i++) {
      double l = kind ? dist_gauss_logp(out + 3 * i, ls, act + 3 * i, 3)
                      : dist_cat_logp(out + 3 * i, 3, (int)act[i]);
      double h = kind ? dist_gauss_entropy(ls, 3) : dist_cat_entropy(out + 3 * i, 3);
      err = fmax(err, fabs(l - lp[i]) + fabs(h - ent[i]));
    }
    TAP_OK(rc == MRL_OK && err < 1e-6, "%s evaluate = dist on forward outputs",
           kind ? "box" : "discrete");
    TAP_OK(mrl_policy_evaluate(p, NULL, obs, NULL, B, NULL, ent) == MRL_OK,
           "entropy alone needs no actions");

    size_t np = mrl_policy_nparams(p);
    float *w2 = malloc(sizeof(float) * np), kl[B];
    memcpy(w2, mrl_policy_params(p), sizeof(float) * np);
    double mk = -1;
    rc = mrl_policy_kl(p, w2, NULL, obs, B, kl, &mk);
    TAP_OK(rc == MRL_OK && mk == 0.0 && kl[0] == 0.0, "KL(theta||theta) = 0");
    for (size_t i = 0; i < np; i++) w2[i] += frand(-0.2, 0.2);
    rc = mrl_policy_kl(p, mrl_policy_params(p), w2, obs, B, kl, &mk);
    double sum = 0.0, worst = 0.0;
    float o2[B * 3];
    mrl_policy_forward(p, w2, obs, B, o2);
    for (int i = 0; i < B; i++) {
      sum += kl[i];
      double k = kind ? dist_gauss_kl(out + 3 * i, ls, o2 + 3 * i, w2 + np - 3, 3)
                      : dist_cat_kl(out + 3 * i, o2 + 3 * i, 3);
      worst = fmax(worst, fabs(k - kl[i]));
    }
    TAP_OK(rc == MRL_OK && mk > 0 && fabs(sum / B - mk) < 1e-6 && worst < 1e-6,
           "KL(old||new) per state and its mean");
    free(w2);
    mrl_policy_free(p);
  }
}

static void test_act(void) {
  int hid[1] = {16};
  mrl_policy *p = make(MRL_DISCRETE, 4, hid, 1, 3, MRL_TANH, 5);
  randomize(p, 0.6);
  enum { M = 30000 };
  float *obs = malloc(sizeof(float) * 4 * M), *a = malloc(sizeof(float) * M),
        *lp = malloc(sizeof(float) * M), *lp2 = malloc(sizeof(float) * M);
  float o1[4] = {0.3f, -0.2f, 0.8f, 0.1f};
  for (int i = 0; i < M; i++) memcpy(obs + 4 * i, o1, sizeof o1);
  int rc = mrl_policy_act(p, obs, M, 0, a, lp);
  float z[3];
  mrl_policy_forward(p, NULL, o1, 1, z);
  double ls[3];
  dist_cat_log_softmax(z, 3, ls);
  int count[3] = {0};
  for (int i = 0; i < M; i++) count[(int)a[i]]++;
  int ok = rc == MRL_OK;
  for (int j = 0; j < 3; j++) {
    double pj = exp(ls[j]), sd = sqrt(pj * (1 - pj) / M);
    ok &= fabs((double)count[j] / M - pj) < 5 * sd;
  }
  TAP_OK(ok, "sampled frequencies match softmax (%d %d %d; p = %.3f %.3f %.3f)",
         count[0], count[1], count[2], exp(ls[0]), exp(ls[1]), exp(ls[2]));
  mrl_policy_evaluate(p, NULL, obs, a, M, lp2, NULL);
  /* act samples in float (its logp is stored as a float anyway), evaluate
  ** works in double: they agree to float rounding, not bit for bit */
  double worst = 0;
  for (int i = 0; i < M; i++) {
    double d = fabs((double)lp[i] - lp2[i]) / (1.0 + fabs((double)lp2[i]));
    if (!(d <= worst)) worst = d;
  }
  TAP_OK(worst < 1e-6, "act's logp = evaluate's logp to float rounding (%.2g)", worst);
  rc = mrl_policy_act(p, obs, 3, 1, a, NULL);
  TAP_OK(rc == MRL_OK && a[0] == (float)dist_cat_mode(z, 3) && a[2] == a[0],
         "deterministic act takes the mode");

  /* Batch 1 runs in the preallocated workspace. */
  float *acts0 = p->acts, *scratch0 = p->scratch;
  mrl_policy *q = make(MRL_DISCRETE, 4, hid, 1, 3, MRL_TANH, 5);
  float b1;
  rc = mrl_policy_act(q, o1, 1, 0, &b1, NULL);
  TAP_OK(rc == MRL_OK && q->cap == 1, "a new policy acts at batch 1 without growing");
  for (int i = 0; i < 100; i++) mrl_policy_act(p, o1, 1, 0, &b1, NULL);
  TAP_OK(p->acts == acts0 && p->scratch == scratch0,
         "act at batch 1 reuses its workspace");
  mrl_policy_free(q);

  /* Two actions at batch 1 take their own path (the uniform's cut drawn
  ** before the network, no branch on the draw): the same draws, one row at
  ** a time, as one batch, and a refused call leaves the stream alone. */
  {
    int h2[2] = {64, 64};
    enum { R = 2000 };
    mrl_policy *s1 = make(MRL_DISCRETE, 4, h2, 2, 2, MRL_TANH, 7);
    mrl_policy *s2 = make(MRL_DISCRETE, 4, h2, 2, 2, MRL_TANH, 7);
    randomize(s1, 0.3);
    memcpy(mrl_policy_params(s2), mrl_policy_params(s1),
           sizeof(float) * mrl_policy_nparams(s1));
    float *ob = malloc(sizeof(float) * 4 * R), ar[R], lr[R], ab[R], lb[R];
    fill(ob, 4 * (size_t)R, -2, 2);
    /* a NaN in the weights: the batch-1 call fails and must not draw */
    float *w1 = mrl_policy_params(s1), keep = w1[3];
    w1[3] = NAN;
    int refused = mrl_policy_act(s1, ob, 1, 0, ar, lr) == MRL_ENONFINITE;
    w1[3] = keep;
    int ok1 = 1;
    for (int i = 0; i < R; i++)
      ok1 &= mrl_policy_act(s1, ob + 4 * i, 1, 0, ar + i, lr + i) == MRL_OK;
    ok1 &= mrl_policy_act(s2, ob, R, 0, ab, lb) == MRL_OK;
    int same = 1, both = 0;
    double wl = 0;
    for (int i = 0; i < R; i++) {
      same &= ar[i] == ab[i];
      both |= 1 << (int)ar[i];
      double d = fabs((double)lr[i] - lb[i]);
      if (!(d <= wl)) wl = d;
    }
    TAP_OK(refused && ok1 && same && both == 3 && wl < 1e-6,
           "two actions: batch-1 draws = one batch's (logp within %.1g), a refused "
           "call draws nothing", wl);
    free(ob);
    mrl_policy_free(s1);
    mrl_policy_free(s2);
  }

  /* Two handles with one seed draw the same stream. */
  mrl_policy *r1 = make(MRL_DISCRETE, 4, hid, 1, 3, MRL_TANH, 99);
  mrl_policy *r2 = make(MRL_DISCRETE, 4, hid, 1, 3, MRL_TANH, 99);
  float x1[50], x2[50];
  mrl_policy_act(r1, obs, 50, 0, x1, NULL);
  mrl_policy_act(r2, obs, 50, 0, x2, NULL);
  TAP_OK(memcmp(x1, x2, sizeof x1) == 0, "same seed, same actions");
  mrl_policy_free(r1);
  mrl_policy_free(r2);

  /* Box: unclipped Gaussian samples around the mean. */
  mrl_policy *g = make(MRL_BOX, 4, hid, 1, 2, MRL_TANH, 8);
  randomize(g, 0.5);
  float *ga = malloc(sizeof(float) * 2 * M);
  rc = mrl_policy_act(g, obs, M, 0, ga, lp);
  float mu[2];
  mrl_policy_forward(g, NULL, o1, 1, mu);
  const float *lsd = mrl_policy_params(g) + mrl_policy_nparams(g) - 2;
  ok = rc == MRL_OK;
  for (int j = 0; j < 2; j++) {
    double m = 0, v = 0, sd = exp(lsd[j]);
    for (int i = 0; i < M; i++) m += ga[2 * i + j];
    m /= M;
    for (int i = 0; i < M; i++) v += (ga[2 * i + j] - m) * (ga[2 * i + j] - m);
    v = sqrt(v / (M - 1));
    ok &= fabs(m - mu[j]) < 5 * sd / sqrt(M) && fabs(v / sd - 1) < 0.03;
  }
  TAP_OK(ok, "box samples have the policy's mean and std");
  mrl_policy_evaluate(g, NULL, obs, ga, M, lp2, NULL);
  TAP_OK(memcmp(lp, lp2, sizeof(float) * M) == 0, "box act's logp = evaluate's");
  rc = mrl_policy_act(g, o1, 1, 1, ga, lp);
  TAP_OK(rc == MRL_OK && ga[0] == mu[0] && ga[1] == mu[1], "box mode is the mean");
  mrl_policy_free(g);
  free(obs);
  free(a);
  free(lp);
  free(lp2);
  free(ga);
  mrl_policy_free(p);
}

/* ------------------------------------------------------------ gradients */

typedef struct lctx {
  const float *obs, *act, *w, *old_logp, *adv, *params_old;
  int batch;
  mrl_ppo_opts opts;
  double beta;
} lctx;

static double l_weighted(mrl_policy *p, void *c) {
  lctx *x = c;
  float lp[64];
  mrl_policy_evaluate(p, NULL, x->obs, x->act, x->batch, lp, NULL);
  double s = 0.0;
  /* In double from the float logp: the float rounding of logp is ~1e-7,
  ** below the resolution the comparison needs. */
  for (int i = 0; i < x->batch; i++) s += (double)x->w[i] * lp[i];
  return 0.7 * s;
}

static double l_ppo(mrl_policy *p, void *c) {
  lctx *x = c;
  mrl_ppo_stats st;
  float *g = malloc(sizeof(float) * mrl_policy_nparams(p));
  memcpy(g, mrl_policy_grad(p), sizeof(float) * mrl_policy_nparams(p));
  mrl_policy_ppo_loss(p, x->obs, x->act, x->old_logp, x->adv, x->batch,
                      &x->opts, &st);
  memcpy(mrl_policy_grad(p), g, sizeof(float) * mrl_policy_nparams(p));
  free(g);
  return st.loss;
}

static double l_klpen(mrl_policy *p, void *c) {
  lctx *x = c;
  double loss, mk;
  float *g = malloc(sizeof(float) * mrl_policy_nparams(p));
  memcpy(g, mrl_policy_grad(p), sizeof(float) * mrl_policy_nparams(p));
  mrl_policy_kl_penalty_loss(p, x->params_old, x->obs, x->act, x->old_logp,
                             x->adv, x->batch, x->beta, &loss, &mk);
  memcpy(mrl_policy_grad(p), g, sizeof(float) * mrl_policy_nparams(p));
  free(g);
  return loss;
}

static void test_gradients(void) {
  int hid[1] = {6};
  for (int kind = 0; kind < 2; kind++) {
    const char *kn = kind ? "box" : "discrete";
    mrl_policy *p = make((mrl_action_kind)kind, 3, hid, 1, 3, MRL_TANH, 21);
    randomize(p, 0.8);
    enum { B = 12 };
    float obs[B * 3], act[B * 3], w[B], old[B], adv[B], lp[B];
    fill(obs, B * 3, -1.5, 1.5);
    fill_actions(p, act, B);
    fill(w, B, -2, 2);
    fill(adv, B, -1.5, 1.5);
    size_t np = mrl_policy_nparams(p);
    float *grad = malloc(sizeof(float) * np);
    lctx c = {obs, act, w, old, adv, NULL, B, {0.2, 0.01, 1}, 1.5};
    double rel, worst;

    /* Stale values in grad must not leak in: losses SET it. */
    for (size_t i = 0; i < np; i++) mrl_policy_grad(p)[i] = 123.0f;
    double obj;
    int rc = mrl_policy_grad_weighted_logp(p, obs, act, w, B, 0.7, &obj);
    memcpy(grad, mrl_policy_grad(p), sizeof(float) * np);
    TAP_OK(rc == MRL_OK && fabs(obj - l_weighted(p, &c)) < 1e-5,
           "%s weighted objective", kn);
    worst = fd_check(p, l_weighted, &c, grad, 2e-3, &rel);
    TAP_OK(rel < 2e-3 && worst < 2e-3,
           "%s grad_weighted_logp vs central differences (rel %.2g, max %.2g)",
           kn, rel, worst);

    /* PPO: ratios e^δ placed away from the clip edges 1 ± 0.2, both signs of
    ** advantage, so every branch of the min is exercised. */
    mrl_policy_evaluate(p, NULL, obs, act, B, lp, NULL);
    const double deltas[6] = {0.5, -0.5, 0.05, -0.05, 0.35, -0.3};
    for (int i = 0; i < B; i++) old[i] = (float)(lp[i] - deltas[i % 6]);
    mrl_ppo_stats st;
    rc = mrl_policy_ppo_loss(p, obs, act, old, adv, B, &c.opts, &st);
    memcpy(grad, mrl_policy_grad(p), sizeof(float) * np);
    worst = fd_check(p, l_ppo, &c, grad, 1e-3, &rel);
    TAP_OK(rc == MRL_OK && rel < 2e-3 && worst < 2e-3,
           "%s ppo_loss grad vs central differences (rel %.2g, max %.2g)", kn,
           rel, worst);
    TAP_OK(fabs(st.clip_fraction - 8.0 / 12.0) < 1e-12,
           "%s clip_fraction counts |rho-1| > eps (%g)", kn, st.clip_fraction);
    double akl = 0.0;
    for (int i = 0; i < B; i++) {
      double d = lp[i] - (double)old[i];
      akl += exp(d) - 1 - d;
    }
    TAP_OK(fabs(st.approx_kl - akl / B) < 1e-6 &&
               fabs(st.loss - (st.policy_loss - 0.01 * st.entropy)) < 1e-12,
           "%s approx_kl and loss = policy_loss - ent_coef*entropy", kn);
    c.opts.normalize_advantages = 0;
    c.opts.ent_coef = 0.05;
    mrl_policy_ppo_loss(p, obs, act, old, adv, B, &c.opts, &st);
    memcpy(grad, mrl_policy_grad(p), sizeof(float) * np);
    worst = fd_check(p, l_ppo, &c, grad, 1e-3, &rel);
    TAP_OK(rel < 2e-3 && worst < 2e-3,
           "%s ppo_loss (raw advantages, entropy bonus) vs differences (rel %.2g)",
           kn, rel);

    /* Adaptive-KL loss around a perturbed θ_old. */
    float *wold = malloc(sizeof(float) * np);
    for (size_t i = 0; i < np; i++) wold[i] = mrl_policy_params(p)[i] + frand(-0.3, 0.3);
    c.params_old = wold;
    double loss, mk;
    rc = mrl_policy_kl_penalty_loss(p, wold, obs, act, old, adv, B, 1.5, &loss, &mk);
    memcpy(grad, mrl_policy_grad(p), sizeof(float) * np);
    worst = fd_check(p, l_klpen, &c, grad, 1e-3, &rel);
    TAP_OK(rc == MRL_OK && mk > 0 && rel < 2e-3 && worst < 2e-3,
           "%s kl_penalty_loss grad vs central differences (rel %.2g, max %.2g)",
           kn, rel, worst);
    double mk2;
    mrl_policy_kl(p, wold, NULL, obs, B, NULL, &mk2);
    double surr = 0.0;
    for (int i = 0; i < B; i++) surr += exp(lp[i] - (double)old[i]) * adv[i];
    TAP_OK(fabs(mk - mk2) < 1e-9 && fabs(loss - (-(surr / B - 1.5 * mk))) < 1e-5,
           "%s kl_penalty loss = -(mean rho A - beta KL)", kn);
    free(wold);
    free(grad);
    mrl_policy_free(p);
  }
  TAP_OK(mrl_kl_beta_update(1.0, 0.001, 0.01) == 0.5 &&
             mrl_kl_beta_update(1.0, 0.016, 0.01) == 2.0 &&
             mrl_kl_beta_update(1.0, 0.01, 0.01) == 1.0 &&
             mrl_kl_beta_update(3.0, 0.015, 0.01) == 3.0,
         "beta update halves, doubles or keeps");
}

/* ------------------------------------------------------------ errors */

static int has(const mrl_policy *p, const char *s) {
  return strstr(mrl_policy_error(p), s) != NULL;
}

static void test_errors(void) {
  int hid[1] = {4};
  mrl_policy *p = make(MRL_DISCRETE, 3, hid, 1, 3, MRL_TANH, 2);
  size_t np = mrl_policy_nparams(p);
  float *w = malloc(sizeof(float) * np), *before = malloc(sizeof(float) * np);
  memcpy(before, mrl_policy_params(p), sizeof(float) * np);
  for (size_t i = 0; i < np; i++) w[i] = 0.5f;
  w[3] = NAN;
  int rc = mrl_policy_set_params(p, w, np);
  TAP_OK(rc == MRL_ENONFINITE && has(p, "params: NaN at index 3"),
         "set_params refuses NaN: %s", mrl_policy_error(p));
  TAP_OK(memcmp(before, mrl_policy_params(p), sizeof(float) * np) == 0,
         "params unchanged after a refused set");
  w[3] = INFINITY;
  rc = mrl_policy_set_params(p, w, np);
  TAP_OK(rc == MRL_ENONFINITE && has(p, "Inf at index 3"), "set_params refuses Inf");
  rc = mrl_policy_set_params(p, w, np - 1);
  TAP_OK(rc == MRL_EINVAL && has(p, "n: expected"), "set_params checks n: %s",
         mrl_policy_error(p));
  rc = mrl_policy_get_params(p, w, np + 1);
  TAP_OK(rc == MRL_EINVAL && has(p, "n: expected"), "get_params checks n");
  rc = mrl_policy_get_params(p, w, np);
  TAP_OK(rc == MRL_OK && memcmp(w, before, sizeof(float) * np) == 0,
         "get_params copies the flat vector");

  float obs[6] = {0.1f, 0.2f, 0.3f, 0.4f, 0.5f, 0.6f}, out[6], a[2] = {0, 2}, lp[2];
  rc = mrl_policy_forward(p, NULL, obs, 0, out);
  TAP_OK(rc == MRL_EINVAL && has(p, "batch: expected batch >= 1"),
         "batch 0: %s", mrl_policy_error(p));
  rc = mrl_policy_forward(p, NULL, obs, MRL_MAX_BATCH + 1, out);
  TAP_OK(rc == MRL_EINVAL && has(p, "batch:"), "batch above the limit");
  rc = mrl_policy_evaluate(p, NULL, NULL, a, 2, lp, NULL);
  TAP_OK(rc == MRL_EINVAL && has(p, "obs: NULL"), "NULL obs: %s",
         mrl_policy_error(p));
  rc = mrl_policy_forward(p, NULL, obs, 2, NULL);
  TAP_OK(rc == MRL_EINVAL && has(p, "out: NULL"), "NULL out");
  obs[5] = NAN;
  rc = mrl_policy_act(p, obs, 2, 0, a, lp);
  TAP_OK(rc == MRL_ENONFINITE && has(p, "obs: NaN at row 1, column 2"),
         "NaN obs: %s", mrl_policy_error(p));
  obs[5] = 0.6f;
  a[1] = 3;
  rc = mrl_policy_evaluate(p, NULL, obs, a, 2, lp, NULL);
  TAP_OK(rc == MRL_EINVAL && has(p, "actions: row 1 is 3"),
         "action out of range: %s", mrl_policy_error(p));
  a[1] = 1.5f;
  rc = mrl_policy_evaluate(p, NULL, obs, a, 2, lp, NULL);
  TAP_OK(rc == MRL_EINVAL && has(p, "actions: row 1 is 1.5"), "non-integer action");
  a[1] = -1;
  TAP_OK(mrl_policy_evaluate(p, NULL, obs, a, 2, lp, NULL) == MRL_EINVAL,
         "negative action");
  a[1] = NAN;
  TAP_OK(mrl_policy_evaluate(p, NULL, obs, a, 2, lp, NULL) == MRL_EINVAL,
         "NaN action index");
  a[1] = 1;
  rc = mrl_policy_evaluate(p, w, obs, a, 2, lp, NULL);
  TAP_OK(rc == MRL_OK, "evaluate at explicit params");
  w[0] = NAN;
  rc = mrl_policy_kl(p, w, NULL, obs, 2, NULL, NULL);
  TAP_OK(rc == MRL_ENONFINITE && has(p, "params_old: NaN at index 0"),
         "KL refuses NaN params_old: %s", mrl_policy_error(p));

  float adv[2] = {1, NAN}, old[2] = {-1, -1}, wt[2] = {1, 1};
  mrl_ppo_opts o = {0.2, 0.0, 0};
  mrl_ppo_stats st;
  rc = mrl_policy_ppo_loss(p, obs, a, old, adv, 2, &o, &st);
  TAP_OK(rc == MRL_ENONFINITE && has(p, "advantages: NaN at index 1"),
         "ppo refuses NaN advantages: %s", mrl_policy_error(p));
  adv[1] = 1;
  old[0] = INFINITY;
  rc = mrl_policy_ppo_loss(p, obs, a, old, adv, 2, &o, &st);
  TAP_OK(rc == MRL_ENONFINITE && has(p, "old_logp: Inf"), "ppo refuses Inf old_logp");
  old[0] = -1;
  TAP_OK(mrl_policy_ppo_loss(p, obs, a, old, adv, 2, NULL, &st) == MRL_EINVAL &&
             has(p, "opts: NULL"),
         "ppo needs opts");
  o.clip_eps = -1;
  TAP_OK(mrl_policy_ppo_loss(p, obs, a, old, adv, 2, &o, &st) == MRL_EINVAL &&
             has(p, "clip_eps"),
         "negative clip_eps refused");
  o.clip_eps = 0.2;
  TAP_OK(mrl_policy_ppo_loss(p, obs, a, old, adv, 1, &o, &st) == MRL_OK,
         "ppo at batch 1 with raw advantages");
  o.normalize_advantages = 1;
  TAP_OK(mrl_policy_ppo_loss(p, obs, a, old, adv, 1, &o, &st) == MRL_OK &&
             isfinite(st.loss),
         "ppo at batch 1 with normalisation stays finite");
  wt[0] = NAN;
  TAP_OK(mrl_policy_grad_weighted_logp(p, obs, a, wt, 2, 1.0, NULL) == MRL_ENONFINITE &&
             has(p, "weights: NaN"),
         "weighted logp refuses NaN weights");
  TAP_OK(mrl_policy_kl_penalty_loss(p, NULL, obs, a, old, adv, 2, NAN, NULL, NULL) ==
             MRL_EINVAL && has(p, "beta"),
         "kl_penalty refuses a NaN beta");
  TAP_OK(memcmp(before, mrl_policy_params(p), sizeof(float) * np) == 0,
         "no refused call touched the params");

  /* A NaN written straight into the params is caught by the losses. */
  mrl_policy_params(p)[1] = NAN;
  rc = mrl_policy_ppo_loss(p, obs, a, old, adv, 2, &o, &st);
  TAP_OK(rc == MRL_ENONFINITE, "ppo reports a non-finite loss: %s",
         mrl_policy_error(p));
  float o3[3];
  TAP_OK(mrl_policy_act(p, obs, 2, 0, a, lp) == MRL_ENONFINITE &&
             mrl_policy_forward(p, NULL, obs, 1, o3) == MRL_ENONFINITE &&
             mrl_policy_evaluate(p, NULL, obs, a, 2, lp, NULL) == MRL_ENONFINITE &&
             has(p, "outputs are not finite"),
         "act, forward and evaluate report NaN params: %s", mrl_policy_error(p));
  mrl_policy_params(p)[1] = before[1];

  /* Box: non-finite actions are ENONFINITE. */
  mrl_policy *g = make(MRL_BOX, 3, hid, 1, 2, MRL_TANH, 2);
  float ga[4] = {0, 1, INFINITY, 0};
  rc = mrl_policy_evaluate(g, NULL, obs, ga, 2, lp, NULL);
  TAP_OK(rc == MRL_ENONFINITE && has(g, "actions: Inf at row 1, column 0"),
         "box refuses Inf actions: %s", mrl_policy_error(g));
  TAP_OK(strcmp(mrl_policy_error(NULL), "") != 0, "error on a NULL handle");
  mrl_policy_free(g);

  /* Growing the workspace then using a small batch again. */
  enum { BIG = 5000 };
  float *bo = malloc(sizeof(float) * 3 * BIG), *ba = malloc(sizeof(float) * BIG),
        *bl = malloc(sizeof(float) * BIG);
  fill(bo, 3 * BIG, -1, 1);
  rc = mrl_policy_act(p, bo, BIG, 0, ba, bl);
  int rc2 = mrl_policy_evaluate(p, NULL, bo, ba, 2, lp, NULL);
  TAP_OK(rc == MRL_OK && rc2 == MRL_OK && p->cap >= BIG &&
             fabs(lp[1] - bl[1]) < 1e-6,
         "workspace grows to a large batch and serves small ones");
  free(bo);
  free(ba);
  free(bl);
  free(w);
  free(before);
  mrl_policy_free(p);
}

int main(void) {
  test_create();
  test_forward_layout();
  test_evaluate_kl();
  test_act();
  test_gradients();
  test_errors();
  return tap_done();
}
