/* test_gumbel.c — mrl_policy_gumbel_grad: the softmax relaxation's Jacobian
** against central differences (per row in double, and through a network),
** the exactness of the Gumbel-max sample, the documented noise stream,
** determinism by seed, limits of the temperature, and every error path. */
#include <float.h>
#include <math.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "gumbel_impl.h"
#include "moonrl.h"
#include "tap.h"

/* Test-local data generator (splitmix64); the library's rng is under test. */
static uint64_t tseed = 0x243f6a8885a308d3ull;
static double unif(void) {
  uint64_t z = (tseed += 0x9e3779b97f4a7c15ull);
  z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ull;
  z = (z ^ (z >> 27)) * 0x94d049bb133111ebull;
  z ^= z >> 31;
  return ((double)(z >> 11) + 0.5) * 0x1.0p-53;
}
static double gumbel(void) { return -log(-log(unif())); }
static double sym(void) { return 2.0 * unif() - 1.0; }

static mrl_policy *make_policy(int obs_dim, const int *hidden, int nhidden,
                               mrl_action_kind kind, int n, uint64_t seed) {
  mrl_policy_spec s;
  memset(&s, 0, sizeof s);
  s.obs_dim = obs_dim;
  s.hidden = hidden;
  s.nhidden = nhidden;
  s.activation = MRL_TANH;
  s.action_kind = kind;
  s.action_n = n;
  s.out_gain = 1.0;
  s.seed = seed;
  mrl_policy *p = NULL;
  if (mrl_policy_new(&p, &s) != MRL_OK) return NULL;
  return p;
}

/* The relaxed objective s·softmax((z+g)/τ) of one row, in double. */
static double row_relaxed(const float *z, const double *g, const float *s,
                          int k, double tau) {
  double y[16], d[16];
  gumbel_row(z, g, s, k, tau, y, d);
  double f = 0.0;
  for (int j = 0; j < k; j++) f += (double)s[j] * y[j];
  return f;
}

/* ∂/∂z_k = ∂/∂g_k (they enter as z + g), so differences in the double noise
** check the per-row Jacobian without float rounding in the way. */
static void test_row_jacobian(void) {
  const double taus[] = {0.1, 0.5, 1.0, 3.0};
  for (int ti = 0; ti < 4; ti++) {
    double tau = taus[ti];
    double worst = 0.0, ysum_err = 0.0;
    int argmax_ok = 1;
    for (int trial = 0; trial < 20; trial++) {
      int k = 2 + trial % 6;
      float z[16], s[16];
      double g[16], y[16], d[16];
      for (int j = 0; j < k; j++) {
        z[j] = (float)(1.5 * sym());
        s[j] = (float)(2.0 * sym());
        g[j] = gumbel();
      }
      int a = gumbel_row(z, g, s, k, tau, y, d);
      double sy = 0.0;
      for (int j = 0; j < k; j++) {
        sy += y[j];
        if ((double)z[j] + g[j] > (double)z[a] + g[a]) argmax_ok = 0;
      }
      if (fabs(sy - 1.0) > ysum_err) ysum_err = fabs(sy - 1.0);
      for (int j = 0; j < k; j++) {
        const double h = 1e-4 * tau;
        double gp[16], gm[16];
        memcpy(gp, g, sizeof g);
        memcpy(gm, g, sizeof g);
        gp[j] += h;
        gm[j] -= h;
        double fd = (row_relaxed(z, gp, s, k, tau) - row_relaxed(z, gm, s, k, tau)) / (2 * h);
        /* FD rounding is ~1e-11/τ absolute, hence the 1e-3 floor. */
        double e = fabs(fd - d[j]) / (1e-3 + fabs(d[j]));
        if (e > worst) worst = e;
      }
    }
    TAP_OK(worst < 1e-6, "row Jacobian d(s.y)/dz = y(s - s.y)/tau matches central differences, tau = %g (worst err %.2e)",
           tau, worst);
    TAP_OK(ysum_err < 1e-12 && argmax_ok, "tau = %g: y sums to 1 (err %.1e), the hard action is argmax(z + g)", tau, ysum_err);
  }
}

/* Through the network: fixed noise, relaxed objective at θ ± h·e_k. */
static void test_network_fd(void) {
  const int hidden[] = {6};
  mrl_policy *p = make_policy(3, hidden, 1, MRL_DISCRETE, 4, 11);
  TAP_OK(p != NULL, "policy obs 3, hidden {6} tanh, 4 actions");
  if (!p) return;
  enum { B = 5, K = 4 };
  float obs[B * 3], scores[B * K], acts[B];
  double noise[B * K];
  for (int i = 0; i < B * 3; i++) obs[i] = (float)sym();
  for (int i = 0; i < B * K; i++) {
    scores[i] = (float)(3.0 * sym());
    noise[i] = gumbel();
  }
  const double tau = 0.7;
  double obj, rel;
  int rc = gumbel_grad_core(p, obs, scores, B, tau, noise, acts, &obj, &rel);
  TAP_OK(rc == MRL_OK, "gumbel_grad_core with fixed noise: %s", mrl_policy_error(p));
  size_t np = mrl_policy_nparams(p);
  float *g = malloc(np * sizeof(float));
  memcpy(g, mrl_policy_grad(p), np * sizeof(float));

  /* The hard actions and the reported objective. */
  float logits[B * K];
  mrl_policy_forward(p, NULL, obs, B, logits);
  int act_ok = 1;
  double want_obj = 0.0, want_rel = 0.0;
  for (int i = 0; i < B; i++) {
    double y[K], d[K];
    int a = gumbel_row(logits + i * K, noise + i * K, scores + i * K, K, tau, y, d);
    if (acts[i] != (float)a) act_ok = 0;
    want_obj += scores[i * K + a];
    for (int j = 0; j < K; j++) want_rel += scores[i * K + j] * y[j];
  }
  TAP_OK(act_ok, "actions = argmax(logits + g) per row");
  TAP_OK(fabs(obj - want_obj / B) < 1e-12, "objective = mean score of the hard sample (%.6f)", obj);
  TAP_OK(fabs(rel - want_rel / B) < 1e-12, "relaxed = mean s.softmax((z+g)/tau) (%.6f)", rel);

  float *th = mrl_policy_params(p);
  double num = 0.0, den = 0.0;
  for (size_t k = 0; k < np; k++) {
    const float h = 2e-3f;
    float t0 = th[k];
    double rp, rm;
    th[k] = t0 + h;
    gumbel_grad_core(p, obs, scores, B, tau, noise, NULL, NULL, &rp);
    th[k] = t0 - h;
    gumbel_grad_core(p, obs, scores, B, tau, noise, NULL, NULL, &rm);
    th[k] = t0;
    double hh = ((double)(t0 + h) - (double)(t0 - h));
    double fd = (rp - rm) / hh;
    num += (fd - g[k]) * (fd - g[k]);
    den += (double)g[k] * g[k];
  }
  double relerr = sqrt(num) / sqrt(den);
  TAP_OK(den > 0 && relerr < 2e-3, "grad = d relaxed/d theta over all %zu params (central differences, rel err %.2e)",
         np, relerr);
  free(g);
  mrl_policy_free(p);
}

/* The public path draws exactly the documented noise: per row n values
** g = −log(−log(((x >> 12) + ½)·2⁻⁵²)) with x = the next u64 of the rng. */
static void test_noise_stream(void) {
  mrl_policy *p = make_policy(2, NULL, 0, MRL_DISCRETE, 3, 5);
  if (!p) return;
  enum { B = 7, K = 3 };
  float obs[B * 2], scores[B * K], a1[B], a2[B];
  for (int i = 0; i < B * 2; i++) obs[i] = (float)sym();
  for (int i = 0; i < B * K; i++) scores[i] = (float)sym();
  uint8_t st[MRL_RNG_STATE_BYTES];
  mrl_rng_get_state(mrl_policy_rng(p), st);
  mrl_rng *copy = NULL;
  mrl_rng_new(&copy, 0);
  mrl_rng_set_state(copy, st);
  double noise[B * K];
  for (int i = 0; i < B * K; i++) {
    double u = ((double)(mrl_rng_u64(copy) >> 12) + 0.5) * 0x1.0p-52;
    noise[i] = -log(-log(u));
  }
  double o1, o2;
  int rc = mrl_policy_gumbel_grad(p, obs, scores, B, 0.5, a1, &o1);
  size_t np = mrl_policy_nparams(p);
  float *g1 = malloc(np * sizeof(float));
  memcpy(g1, mrl_policy_grad(p), np * sizeof(float));
  uint8_t after[MRL_RNG_STATE_BYTES], want_after[MRL_RNG_STATE_BYTES];
  mrl_rng_get_state(mrl_policy_rng(p), after);
  mrl_rng_get_state(copy, want_after);
  rc |= gumbel_grad_core(p, obs, scores, B, 0.5, noise, a2, &o2, NULL);
  TAP_OK(rc == MRL_OK && memcmp(a1, a2, sizeof a1) == 0 && o1 == o2 &&
             memcmp(g1, mrl_policy_grad(p), np * sizeof(float)) == 0,
         "public call = core with the documented noise, bit for bit");
  /* Generator words and the spare flag; a stale spare value with the flag
  ** clear is not state (set_state zeroes it). */
  TAP_OK(memcmp(after, want_after, 32) == 0 && memcmp(after + 40, want_after + 40, 8) == 0,
         "the call consumed exactly batch*n = %d draws", B * K);
  free(g1);
  mrl_rng_free(copy);
  mrl_policy_free(p);
}

/* Gumbel-max is an exact sampler: hard-action frequencies match softmax. */
static void test_exact_sample(void) {
  mrl_policy *p = make_policy(1, NULL, 0, MRL_DISCRETE, 4, 9);
  if (!p) return;
  const float th[8] = {0.9f, -0.4f, 0.2f, -1.1f, 0.3f, 0.1f, -0.2f, 0.0f};
  mrl_policy_set_params(p, th, 8);
  enum { B = 40000, K = 4 };
  float *obs = malloc(B * sizeof(float)), *scores = malloc((size_t)B * K * sizeof(float));
  float *acts = malloc(B * sizeof(float));
  for (int i = 0; i < B; i++) obs[i] = 1.0f;
  for (int i = 0; i < B * K; i++) scores[i] = (float)(i % K);
  double obj;
  int rc = mrl_policy_gumbel_grad(p, obs, scores, B, 1.0, acts, &obj);
  double z[K], mx = -1e9, s = 0.0, pr[K], cnt[K] = {0};
  for (int k = 0; k < K; k++) {
    z[k] = (double)th[k] + th[K + k];
    if (z[k] > mx) mx = z[k];
  }
  for (int k = 0; k < K; k++) s += exp(z[k] - mx);
  for (int k = 0; k < K; k++) pr[k] = exp(z[k] - mx) / s;
  for (int i = 0; i < B; i++) cnt[(int)acts[i]] += 1.0;
  double worst = 0.0, mean_score = 0.0;
  for (int k = 0; k < K; k++) {
    double zs = fabs(cnt[k] / B - pr[k]) / sqrt(pr[k] * (1 - pr[k]) / B);
    if (zs > worst) worst = zs;
    mean_score += k * cnt[k] / B;
  }
  TAP_OK(rc == MRL_OK && worst < 4.5, "argmax(z + g) ~ softmax(z) over %d draws (worst |z-score| %.2f)", B, worst);
  TAP_OK(fabs(obj - mean_score) < 1e-9, "objective = mean hard score (%.4f)", obj);
  free(obs);
  free(scores);
  free(acts);
  mrl_policy_free(p);
}

static void test_determinism(void) {
  const int hidden[] = {4};
  mrl_policy *p = make_policy(2, hidden, 1, MRL_DISCRETE, 3, 21);
  mrl_policy *q = make_policy(2, hidden, 1, MRL_DISCRETE, 3, 21);
  if (!p || !q) return;
  enum { B = 9, K = 3 };
  float obs[B * 2], scores[B * K], ap[B], aq[B], a3[B];
  for (int i = 0; i < B * 2; i++) obs[i] = (float)sym();
  for (int i = 0; i < B * K; i++) scores[i] = (float)sym();
  double op, oq, o3;
  size_t np = mrl_policy_nparams(p);
  int rc = mrl_policy_gumbel_grad(p, obs, scores, B, 0.5, ap, &op);
  rc |= mrl_policy_gumbel_grad(q, obs, scores, B, 0.5, aq, &oq);
  TAP_OK(rc == MRL_OK && memcmp(ap, aq, sizeof ap) == 0 && op == oq &&
             memcmp(mrl_policy_grad(p), mrl_policy_grad(q), np * sizeof(float)) == 0,
         "same seed: same actions, objective and gradient, bit for bit");
  float *g1 = malloc(np * sizeof(float));
  memcpy(g1, mrl_policy_grad(p), np * sizeof(float));
  rc = mrl_policy_gumbel_grad(p, obs, scores, B, 0.5, a3, &o3);
  TAP_OK(rc == MRL_OK && memcmp(g1, mrl_policy_grad(p), np * sizeof(float)) != 0,
         "the next call draws fresh noise (different gradient)");
  mrl_rng_seed(mrl_policy_rng(p), 77);
  mrl_rng_seed(mrl_policy_rng(q), 77);
  rc = mrl_policy_gumbel_grad(p, obs, scores, B, 2.0, ap, &op);
  rc |= mrl_policy_gumbel_grad(q, obs, scores, B, 2.0, aq, &oq);
  TAP_OK(rc == MRL_OK && memcmp(ap, aq, sizeof ap) == 0 &&
             memcmp(mrl_policy_grad(p), mrl_policy_grad(q), np * sizeof(float)) == 0,
         "reseeding the policy rng replays the draw");
  rc = mrl_policy_gumbel_grad(p, obs, scores, B, 2.0, NULL, NULL);
  TAP_OK(rc == MRL_OK, "actions and objective may be NULL");
  free(g1);
  mrl_policy_free(p);
  mrl_policy_free(q);
}

/* Temperature limits: τ → 0 makes y one-hot (gradient exactly 0 without
** ties; an exact tie overflows and is refused); τ → ∞ shrinks it like 1/τ. */
static void test_tau_limits(void) {
  mrl_policy *p = make_policy(1, NULL, 0, MRL_DISCRETE, 3, 3);
  if (!p) return;
  size_t np = mrl_policy_nparams(p);
  float zero[6] = {0};
  mrl_policy_set_params(p, zero, 6);
  float obs[2] = {1.0f, 1.0f};
  float scores[6] = {1.0f, -1.0f, 0.5f, 2.0f, 0.0f, 1.0f};
  double noise[6] = {0.3, 0.1, -0.2, 0.4, 1.2, 0.0};
  int rc = gumbel_grad_core(p, obs, scores, 2, 1e-300, noise, NULL, NULL, NULL);
  int allzero = 1;
  for (size_t k = 0; k < np; k++)
    if (mrl_policy_grad(p)[k] != 0.0f) allzero = 0;
  TAP_OK(rc == MRL_OK && allzero, "tau = 1e-300 without ties: y is one-hot, the gradient is exactly 0");

  double tie[6] = {0.5, 0.5, -1.0, 0.4, 1.2, 0.0};
  for (size_t k = 0; k < np; k++) mrl_policy_grad(p)[k] = 7.0f;
  rc = gumbel_grad_core(p, obs, scores, 2, 1e-300, tie, NULL, NULL, NULL);
  int untouched = 1;
  for (size_t k = 0; k < np; k++)
    if (mrl_policy_grad(p)[k] != 7.0f) untouched = 0;
  TAP_OK(rc == MRL_ENONFINITE && strstr(mrl_policy_error(p), "tau") && untouched,
         "an exact tie at tau = 1e-300 overflows: MRL_ENONFINITE, grad unchanged (%s)", mrl_policy_error(p));

  /* Large τ: grad·τ tends to a limit, so grad(τ₁)/grad(τ₂) → τ₂/τ₁. */
  const float th[6] = {0.4f, -0.3f, 0.1f, 0.0f, 0.2f, -0.1f};
  mrl_policy_set_params(p, th, 6);
  gumbel_grad_core(p, obs, scores, 2, 1e4, noise, NULL, NULL, NULL);
  float *g1 = malloc(np * sizeof(float));
  memcpy(g1, mrl_policy_grad(p), np * sizeof(float));
  gumbel_grad_core(p, obs, scores, 2, 1e5, noise, NULL, NULL, NULL);
  double n1 = 0, n2 = 0;
  for (size_t k = 0; k < np; k++) {
    n1 += (double)g1[k] * g1[k];
    n2 += (double)mrl_policy_grad(p)[k] * mrl_policy_grad(p)[k];
  }
  double ratio = sqrt(n1 / n2);
  TAP_OK(fabs(ratio - 10.0) < 0.01, "large tau: |grad(1e4)| / |grad(1e5)| = %.5f ~ 10", ratio);
  free(g1);
  mrl_policy_free(p);
}

static int has(const mrl_policy *p, const char *what) {
  return strstr(mrl_policy_error(p), what) != NULL;
}

static void test_errors(void) {
  float obs[4] = {1, 1, 1, 1}, scores[8] = {0, 1, 0, 1, 0, 1, 0, 1}, act[4];
  double obj;
  TAP_OK(mrl_policy_gumbel_grad(NULL, obs, scores, 4, 1.0, act, &obj) == MRL_EINVAL, "NULL policy: MRL_EINVAL");

  mrl_policy *box = make_policy(1, NULL, 0, MRL_BOX, 2, 1);
  if (box) {
    int rc = mrl_policy_gumbel_grad(box, obs, scores, 4, 1.0, act, &obj);
    TAP_OK(rc == MRL_EINVAL && has(box, "discrete"), "box policy refused: %s", mrl_policy_error(box));
    mrl_policy_free(box);
  }

  mrl_policy *p = make_policy(1, NULL, 0, MRL_DISCRETE, 2, 1);
  if (!p) return;
  size_t np = mrl_policy_nparams(p);
  float *grad = mrl_policy_grad(p);
  uint8_t st0[MRL_RNG_STATE_BYTES], st1[MRL_RNG_STATE_BYTES];
  struct {
    const char *what;
    const float *obs, *scores;
    int batch;
    double tau;
    int want;
    const char *msg;
  } cases[] = {
      {"tau = 0", obs, scores, 4, 0.0, MRL_EINVAL, "tau"},
      {"tau < 0", obs, scores, 4, -0.5, MRL_EINVAL, "tau"},
      {"tau NaN", obs, scores, 4, NAN, MRL_EINVAL, "tau"},
      {"tau Inf", obs, scores, 4, INFINITY, MRL_EINVAL, "tau"},
      {"batch 0", obs, scores, 0, 1.0, MRL_EINVAL, "batch"},
      {"batch -3", obs, scores, -3, 1.0, MRL_EINVAL, "batch"},
      {"batch above MRL_MAX_BATCH", obs, scores, MRL_MAX_BATCH + 1, 1.0, MRL_EINVAL, "batch"},
      {"obs NULL", NULL, scores, 4, 1.0, MRL_EINVAL, "obs"},
      {"scores NULL", obs, NULL, 4, 1.0, MRL_EINVAL, "scores"},
  };
  for (size_t c = 0; c < sizeof cases / sizeof cases[0]; c++) {
    for (size_t k = 0; k < np; k++) grad[k] = 7.0f;
    mrl_rng_get_state(mrl_policy_rng(p), st0);
    int rc = mrl_policy_gumbel_grad(p, cases[c].obs, cases[c].scores, cases[c].batch, cases[c].tau, act, &obj);
    mrl_rng_get_state(mrl_policy_rng(p), st1);
    int untouched = memcmp(st0, st1, sizeof st0) == 0;
    for (size_t k = 0; k < np; k++)
      if (grad[k] != 7.0f) untouched = 0;
    TAP_OK(rc == cases[c].want && has(p, cases[c].msg) && untouched,
           "%s: status %d, grad and rng untouched (%s)", cases[c].what, rc, mrl_policy_error(p));
  }
  float bad_scores[8] = {0, 1, 0, 1, 0, NAN, 0, 1};
  for (size_t k = 0; k < np; k++) grad[k] = 7.0f;
  int rc = mrl_policy_gumbel_grad(p, obs, bad_scores, 4, 1.0, act, &obj);
  TAP_OK(rc == MRL_ENONFINITE && has(p, "scores") && has(p, "row 2") && grad[0] == 7.0f,
         "NaN score: MRL_ENONFINITE naming the cell (%s)", mrl_policy_error(p));
  bad_scores[5] = -INFINITY;
  rc = mrl_policy_gumbel_grad(p, obs, bad_scores, 4, 1.0, act, &obj);
  TAP_OK(rc == MRL_ENONFINITE && has(p, "Inf"), "-Inf score: MRL_ENONFINITE (%s)", mrl_policy_error(p));
  float bad_obs[4] = {1, INFINITY, 1, 1};
  rc = mrl_policy_gumbel_grad(p, bad_obs, scores, 4, 1.0, act, &obj);
  TAP_OK(rc == MRL_ENONFINITE && has(p, "obs") && grad[0] == 7.0f, "Inf obs: MRL_ENONFINITE (%s)", mrl_policy_error(p));
  rc = mrl_policy_gumbel_grad(p, obs, scores, 4, 1.0, act, &obj);
  TAP_OK(rc == MRL_OK, "a valid call after the errors succeeds");
  mrl_policy_free(p);
}

int main(void) {
  test_row_jacobian();
  test_network_fd();
  test_noise_stream();
  test_exact_sample();
  test_determinism();
  test_tau_limits();
  test_errors();
  return tap_done();
}
