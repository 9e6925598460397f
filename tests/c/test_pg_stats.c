/* test_pg_stats.c — statistical tests of the policy-gradient estimators
** against EXACT gradients.
**
** Two small problems with a linear softmax policy (obs one-hot, no hidden
** layer, logits_a(s) = W[a][s] + b[a]):
**   bandit  one state (obs = constant 1), K arms, Gaussian reward noise;
**   mdp     3 states, 2 actions, stochastic transitions, fixed horizon H.
** The true ∇J is computed in double by dynamic programming (forward state
** distributions d_t, backward Q_t) and checked against central differences
** of the exact J; per-step gradients ∇E[r_u] (also by differences of the
** exact E[r_u]) give the exact expectation of the batch-mean baseline.
**
** Each estimator is run on B batches of M episodes sampled with the public
** API (mrl_policy_act for actions, the test's own mrl_rng for the
** environment).  From the B estimates: mean, standard error per component,
** and the trace of the covariance of one batch estimate ("var").  An
** estimator is declared unbiased for a target when every component satisfies
** |mean − target| ≤ 4·SE (+1e-6 for float rounding): about 100 such
** comparisons are made, so a false alarm has probability < 1% for a given
** seed, and the seeds are fixed, so every run is the same run.
**
** Biased estimators are checked against their EXACT expectations where one
** exists in closed form:
**   batch-mean baseline, reinforce:    (1 − 1/M)·∇J
**   batch-mean baseline, reward_to_go: ∇J − Σ_u (u+1)·∇E[r_u] / (M·H)
**     (the episode's own returns are in b; the leave-one-out baseline, which
**     equals M/(M−1) times the batch-mean estimate, is unbiased)
**   is_per_decision (golden formula Π_{k≤t} ρ_k ∇_t G_t — the rewards after t
**     are not re-weighted, so it is NOT unbiased; is_full is) and
**   is_first_order: mixed-policy DP expectations (mixed_expectation).
** Per-parameter optimal baseline, weight clipping and self-normalisation are
** measured and reported (TAP comments), with loose or significance checks.
**
** MRL_TEST_QUICK=1 divides the batch counts by 4; the assertions hold at
** both sizes with these seeds (full size: ~2 s at -O2, ~9 s under ASan -O1). */
#include <math.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "moonrl.h"
#include "tap.h"

enum { MAXS = 3, MAXA = 4, MAXP = MAXA * MAXS + MAXA, MAXH = 16 };

/* ------------------------------------------------------------ problems */

typedef struct {
  int S, A;
  double P[MAXS][MAXA][MAXS]; /* P(s'|s,a) */
  double r[MAXS][MAXA];       /* mean reward */
  double d0[MAXS];
  double sigma;               /* N(0, σ²) reward noise */
} mdp;

static int np_of(const mdp *m) { return m->A * m->S + m->A; }

/* π(a|s) in double from a flat parameter vector (W [A][S], then b [A]). */
static void policy_probs(const mdp *m, const double *th, double pi[MAXS][MAXA]) {
  for (int s = 0; s < m->S; s++) {
    double z[MAXA], mx = -1e300, sum = 0.0;
    for (int a = 0; a < m->A; a++) {
      z[a] = th[a * m->S + s] + th[m->A * m->S + a];
      if (z[a] > mx) mx = z[a];
    }
    for (int a = 0; a < m->A; a++) sum += exp(z[a] - mx);
    for (int a = 0; a < m->A; a++) pi[s][a] = exp(z[a] - mx) / sum;
  }
}

/* er[t] = E[r_t] for t < H, by the forward recursion on d_t, when step t
** acts with the parameters ths[t] (a time-varying policy). */
static void expected_rewards_tv(const mdp *m, const double *const *ths, int H, double *er) {
  double pi[MAXS][MAXA], d[MAXS], nd[MAXS];
  memcpy(d, m->d0, sizeof d);
  for (int t = 0; t < H; t++) {
    policy_probs(m, ths[t], pi);
    er[t] = 0.0;
    for (int s = 0; s < m->S; s++) nd[s] = 0.0;
    for (int s = 0; s < m->S; s++)
      for (int a = 0; a < m->A; a++) {
        er[t] += d[s] * pi[s][a] * m->r[s][a];
        for (int s2 = 0; s2 < m->S; s2++) nd[s2] += d[s] * pi[s][a] * m->P[s][a][s2];
      }
    memcpy(d, nd, sizeof d);
  }
}

static void expected_rewards(const mdp *m, const double *th, int H, double *er) {
  const double *ths[MAXH];
  for (int t = 0; t < H; t++) ths[t] = th;
  expected_rewards_tv(m, ths, H, er);
}

/* The exact expectation of Σ_t w_t ∇_t G_t (γ = 1) when the data come from
** the behaviour β and w_t re-weights some of the actions to the target π:
** the weights turn the law of a_k into π for the steps they cover, so
**   E = Σ_t ∂/∂θ' E[Σ_{u≥t} r_u | steps < t act with `pre`, step t with
**       π_θ', steps > t with β]  at θ' = θ,
** with pre = π for is_per_decision (w_t = Π_{k≤t} ρ_k) and pre = β for
** is_first_order (w_t = ρ_t).  Central differences of exact DP values. */
static void mixed_expectation(const mdp *m, const double *th, const double *beh,
                              const double *pre, int H, double *out) {
  int np = np_of(m);
  const double h = 1e-5;
  double tp[MAXP], er[MAXH];
  const double *ths[MAXH];
  for (int k = 0; k < np; k++) out[k] = 0.0;
  for (int t = 0; t < H; t++) {
    for (int u = 0; u < H; u++) ths[u] = u < t ? pre : (u == t ? tp : beh);
    for (int k = 0; k < np; k++) {
      double f[2];
      for (int sgn = 0; sgn < 2; sgn++) {
        memcpy(tp, th, (size_t)np * sizeof(double));
        tp[k] += sgn ? -h : h;
        expected_rewards_tv(m, ths, H, er);
        f[sgn] = 0.0;
        for (int u = t; u < H; u++) f[sgn] += er[u];
      }
      out[k] += (f[0] - f[1]) / (2 * h);
    }
  }
}

/* gr[t][k] = ∂E[r_t]/∂θ_k by central differences of the exact E[r_t]. */
static void step_grads_fd(const mdp *m, const double *th, int H, double gr[MAXH][MAXP]) {
  int np = np_of(m);
  double t2[MAXP], ep[MAXH], em[MAXH];
  const double h = 1e-5;
  for (int k = 0; k < np; k++) {
    memcpy(t2, th, (size_t)np * sizeof(double));
    t2[k] = th[k] + h;
    expected_rewards(m, t2, H, ep);
    t2[k] = th[k] - h;
    expected_rewards(m, t2, H, em);
    for (int t = 0; t < H; t++) gr[t][k] = (ep[t] - em[t]) / (2 * h);
  }
}

/* ∇J_γ by dynamic programming: Σ_t γ^t Σ_s d_t(s) Σ_a π ∇log π · Q_t(s,a),
** with V[t][s] the value of the remaining H − t steps (V[H] = 0). */
static void grad_dp(const mdp *m, const double *th, int H, double gamma,
                    double *g, double V[MAXH + 1][MAXS]) {
  double pi[MAXS][MAXA], d[MAXH][MAXS], Q[MAXH][MAXS][MAXA];
  int np = np_of(m);
  policy_probs(m, th, pi);
  memcpy(d[0], m->d0, sizeof d[0]);
  for (int t = 0; t + 1 < H; t++)
    for (int s2 = 0; s2 < m->S; s2++) {
      d[t + 1][s2] = 0.0;
      for (int s = 0; s < m->S; s++)
        for (int a = 0; a < m->A; a++) d[t + 1][s2] += d[t][s] * pi[s][a] * m->P[s][a][s2];
    }
  for (int s = 0; s < m->S; s++) V[H][s] = 0.0;
  for (int t = H - 1; t >= 0; t--)
    for (int s = 0; s < m->S; s++) {
      V[t][s] = 0.0;
      for (int a = 0; a < m->A; a++) {
        double q = m->r[s][a];
        for (int s2 = 0; s2 < m->S; s2++) q += gamma * m->P[s][a][s2] * V[t + 1][s2];
        Q[t][s][a] = q;
        V[t][s] += pi[s][a] * q;
      }
    }
  for (int k = 0; k < np; k++) g[k] = 0.0;
  double gt = 1.0;
  for (int t = 0; t < H; t++, gt *= gamma)
    for (int s = 0; s < m->S; s++)
      for (int a = 0; a < m->A; a++) {
        double c = gt * d[t][s] * pi[s][a] * Q[t][s][a];
        for (int j = 0; j < m->A; j++) {
          double dz = (j == a) - pi[s][j];
          g[j * m->S + s] += c * dz;
          g[m->A * m->S + j] += c * dz;
        }
      }
}

/* ------------------------------------------------------------ sampling */

typedef struct {
  const mdp *m;
  int H, M;
  mrl_policy *target, *actor;  /* actor = target on-policy, else behaviour */
  mrl_rng *env;
  double V[MAXH + 1][MAXS];    /* exact values of the target (value baseline) */
  int *off, *state;
  float *obs, *act, *rew, *blp, *val;
  float *obs_t, *a_t, *lp_t;
} sampler;

static mrl_policy *linear_policy(const mdp *m, const double *th, uint64_t seed) {
  mrl_policy_spec s;
  memset(&s, 0, sizeof s);
  s.obs_dim = m->S;
  s.action_kind = MRL_DISCRETE;
  s.action_n = m->A;
  s.out_gain = 0.01;
  s.seed = seed;
  mrl_policy *p = NULL;
  if (mrl_policy_new(&p, &s) != MRL_OK) return NULL;
  float f[MAXP];
  for (int k = 0; k < np_of(m); k++) f[k] = (float)th[k];
  mrl_policy_set_params(p, f, (size_t)np_of(m));
  return p;
}

/* The policy's float parameters in double: the exact target is the gradient
** at exactly the parameters the library uses. */
static void params_of(mrl_policy *p, double *th) {
  const float *f = mrl_policy_params(p);
  for (size_t k = 0; k < mrl_policy_nparams(p); k++) th[k] = f[k];
}

static int sampler_init(sampler *sm, const mdp *m, int H, int M, mrl_policy *target,
                        mrl_policy *actor, uint64_t env_seed) {
  memset(sm, 0, sizeof *sm);
  sm->m = m;
  sm->H = H;
  sm->M = M;
  sm->target = target;
  sm->actor = actor;
  size_t n = (size_t)M * H;
  sm->off = malloc((size_t)(M + 1) * sizeof(int));
  sm->state = malloc((size_t)M * sizeof(int));
  sm->obs = calloc(n * m->S, sizeof(float));
  sm->act = malloc(n * sizeof(float));
  sm->rew = malloc(n * sizeof(float));
  sm->blp = malloc(n * sizeof(float));
  sm->val = malloc(n * sizeof(float));
  sm->obs_t = malloc((size_t)M * m->S * sizeof(float));
  sm->a_t = malloc((size_t)M * sizeof(float));
  sm->lp_t = malloc((size_t)M * sizeof(float));
  if (mrl_rng_new(&sm->env, env_seed) != MRL_OK || !sm->off || !sm->state || !sm->obs ||
      !sm->act || !sm->rew || !sm->blp || !sm->val || !sm->obs_t || !sm->a_t || !sm->lp_t)
    return 0;
  for (int i = 0; i <= M; i++) sm->off[i] = i * H;
  double th[MAXP], g[MAXP];
  params_of(target, th);
  grad_dp(m, th, H, 1.0, g, sm->V);
  return 1;
}

static void sampler_free(sampler *sm) {
  mrl_rng_free(sm->env);
  free(sm->off);
  free(sm->state);
  free(sm->obs);
  free(sm->act);
  free(sm->rew);
  free(sm->blp);
  free(sm->val);
  free(sm->obs_t);
  free(sm->a_t);
  free(sm->lp_t);
}

static int draw(mrl_rng *r, const double *p, int n) {
  double u = mrl_rng_uniform(r), c = 0.0;
  for (int i = 0; i < n; i++) {
    c += p[i];
    if (u < c) return i;
  }
  return n - 1;
}

/* M episodes of H steps, run side by side (one act call per step), stored
** episode-major: step t of episode i at row i·H + t. */
static int sample_batch(sampler *sm) {
  const mdp *m = sm->m;
  const int S = m->S, M = sm->M, H = sm->H;
  for (int i = 0; i < M; i++) sm->state[i] = draw(sm->env, m->d0, S);
  for (int t = 0; t < H; t++) {
    memset(sm->obs_t, 0, (size_t)M * S * sizeof(float));
    for (int i = 0; i < M; i++) sm->obs_t[i * S + sm->state[i]] = 1.0f;
    if (mrl_policy_act(sm->actor, sm->obs_t, M, 0, sm->a_t, sm->lp_t) != MRL_OK) return 0;
    for (int i = 0; i < M; i++) {
      size_t row = (size_t)i * H + t;
      int s = sm->state[i], a = (int)sm->a_t[i];
      memcpy(sm->obs + row * S, sm->obs_t + (size_t)i * S, (size_t)S * sizeof(float));
      sm->act[row] = (float)a;
      sm->blp[row] = sm->lp_t[i];
      sm->val[row] = (float)sm->V[t][s];
      double noise = m->sigma > 0 ? m->sigma * mrl_rng_normal(sm->env) : 0.0;
      sm->rew[row] = (float)(m->r[s][a] + noise);
      sm->state[i] = draw(sm->env, m->P[s][a], S);
    }
  }
  return 1;
}

static int estimate(sampler *sm, mrl_estimator e, mrl_baseline b, double clip,
                    int self_norm, double gamma, float *g) {
  mrl_pg_opts o;
  memset(&o, 0, sizeof o);
  o.estimator = e;
  o.baseline = b;
  o.gamma = gamma;
  o.weight_clip = clip;
  o.self_normalize = self_norm;
  int rc = mrl_pg_gradient(sm->target, sm->obs, sm->act, sm->rew, sm->blp, sm->val, sm->off,
                           sm->M, &o, g, NULL);
  if (rc != MRL_OK) printf("# pg_gradient failed: %s\n", mrl_policy_error(sm->target));
  return rc == MRL_OK;
}

/* ------------------------------------------------------------ statistics */

typedef struct {
  const char *name;
  int np;
  long n;
  double sum[MAXP], sq[MAXP];
  /* results of acc_finish */
  double mean[MAXP], se[MAXP];
  double var;         /* trace of the covariance of one batch estimate */
  double bias, maxz;  /* ‖mean − target‖ and max_k |mean_k − target_k|/SE_k */
  int within;         /* every component within 4·SE (+1e-6) of the target */
} acc;

static void acc_init(acc *a, const char *name, int np) {
  memset(a, 0, sizeof *a);
  a->name = name;
  a->np = np;
}

static void acc_add(acc *a, const float *g, double scale) {
  for (int k = 0; k < a->np; k++) {
    double v = scale * g[k];
    a->sum[k] += v;
    a->sq[k] += v * v;
  }
  a->n++;
}

static void acc_finish(acc *a, const double *target) {
  double n = (double)a->n, b2 = 0.0;
  a->var = 0.0;
  a->maxz = 0.0;
  a->within = 1;
  for (int k = 0; k < a->np; k++) {
    double mu = a->sum[k] / n;
    double v = (a->sq[k] - n * mu * mu) / (n - 1);
    if (v < 0) v = 0;
    a->mean[k] = mu;
    a->se[k] = sqrt(v / n);
    a->var += v;
    double dev = fabs(mu - target[k]);
    b2 += dev * dev;
    if (a->se[k] > 0 && dev / a->se[k] > a->maxz) a->maxz = dev / a->se[k];
    if (dev > 4.0 * a->se[k] + 1e-6) a->within = 0;
  }
  a->bias = sqrt(b2);
}

static double norm(const double *x, int n) {
  double s = 0.0;
  for (int k = 0; k < n; k++) s += x[k] * x[k];
  return sqrt(s);
}

static void print_row(const acc *a, double gnorm) {
  printf("#   %-34s |bias| %.5f (%.2f%% of |grad|)  max z %5.2f  var %.5f\n", a->name, a->bias,
         100.0 * a->bias / gnorm, a->maxz, a->var);
}

static int quick(void) {
  const char *q = getenv("MRL_TEST_QUICK");
  return q && q[0] == '1';
}

/* ------------------------------------------------------------ problems */

static mdp the_bandit(void) {
  mdp m;
  memset(&m, 0, sizeof m);
  m.S = 1;
  m.A = 4;
  const double r[4] = {1.0, 1.5, 0.5, 2.0};
  for (int a = 0; a < 4; a++) {
    m.r[0][a] = r[a];
    m.P[0][a][0] = 1.0;
  }
  m.d0[0] = 1.0;
  m.sigma = 1.0;
  return m;
}

static mdp the_mdp(void) {
  mdp m;
  memset(&m, 0, sizeof m);
  m.S = 3;
  m.A = 2;
  const double P[3][2][3] = {{{0.7, 0.3, 0.0}, {0.1, 0.2, 0.7}},
                             {{0.5, 0.5, 0.0}, {0.0, 0.3, 0.7}},
                             {{0.8, 0.0, 0.2}, {0.2, 0.2, 0.6}}};
  const double r[3][2] = {{0.0, 0.5}, {1.0, 0.0}, {0.2, 1.5}};
  for (int s = 0; s < 3; s++)
    for (int a = 0; a < 2; a++) {
      m.r[s][a] = r[s][a];
      for (int s2 = 0; s2 < 3; s2++) m.P[s][a][s2] = P[s][a][s2];  /* MAXA stride */
    }
  m.d0[0] = 0.6;
  m.d0[1] = 0.4;
  m.sigma = 0.0;
  return m;
}

/* Target and behaviour parameters (W [A][S] then b [A]). */
static const double BANDIT_TH[8] = {0.3, -0.2, 0.5, -0.4, 0.1, 0.0, -0.1, 0.05};
static const double MDP_TH[8] = {0.4, -0.3, 0.2, -0.2, 0.5, -0.6, 0.1, -0.1};
static const double MDP_BEH[8] = {-0.1, 0.3, 0.6, 0.3, 0.0, -0.9, -0.2, 0.2};

/* ------------------------------------------------------------ tests */

/* The DP gradient is the gradient: central differences of the exact J. */
static void test_exact_gradients(void) {
  mdp probs[2] = {the_bandit(), the_mdp()};
  const double *ths[2] = {BANDIT_TH, MDP_TH};
  const int Hs[2] = {1, 8};
  for (int i = 0; i < 2; i++) {
    const mdp *m = &probs[i];
    int np = np_of(m), H = Hs[i];
    for (int gi = 0; gi < 2; gi++) {
      double gamma = gi ? 0.9 : 1.0;
      double g[MAXP], V[MAXH + 1][MAXS], gr[MAXH][MAXP], fd[MAXP] = {0};
      grad_dp(m, ths[i], H, gamma, g, V);
      step_grads_fd(m, ths[i], H, gr);
      double gt = 1.0;
      for (int t = 0; t < H; t++, gt *= gamma)
        for (int k = 0; k < np; k++) fd[k] += gt * gr[t][k];
      double err = 0.0;
      for (int k = 0; k < np; k++)
        if (fabs(fd[k] - g[k]) > err) err = fabs(fd[k] - g[k]);
      TAP_OK(err < 1e-8 && norm(g, np) > 0.05,
             "%s, H = %d, gamma = %g: DP gradient = central differences of exact J (max err %.1e, |grad| %.4f)",
             i ? "MDP" : "bandit", H, gamma, err, norm(g, np));
    }
  }
}

/* On-policy estimators with baselines (reinforce / reward_to_go). */
static void test_on_policy(const char *label, const mdp *m, const double *th0, int H, int M,
                           int B, uint64_t seed) {
  int np = np_of(m);
  mrl_policy *p = linear_policy(m, th0, seed);
  sampler sm;
  if (!p || !sampler_init(&sm, m, H, M, p, p, seed + 1)) {
    TAP_OK(0, "%s: setup", label);
    return;
  }
  double th[MAXP], g[MAXP], V[MAXH + 1][MAXS], gr[MAXH][MAXP];
  params_of(p, th);
  grad_dp(m, th, H, 1.0, g, V);
  step_grads_fd(m, th, H, gr);
  /* Exact expectations of the batch-mean baselines (see test notes):
  ** reinforce:     E = (1 − 1/M)·∇J
  ** reward_to_go:  E = ∇J − 1/(MH)·Σ_u (u+1)·∇E[r_u]   (u from 0) */
  double e_rf_mean[MAXP], e_rtg_mean[MAXP];
  for (int k = 0; k < np; k++) {
    e_rf_mean[k] = (1.0 - 1.0 / M) * g[k];
    double s = 0.0;
    for (int u = 0; u < H; u++) s += (u + 1) * gr[u][k];
    e_rtg_mean[k] = g[k] - s / ((double)M * H);
  }
  enum { RF, RF_MEAN, RF_LOO, RF_OPT, RTG, RTG_MEAN, RTG_VALUE, NCFG };
  acc a[NCFG];
  acc_init(&a[RF], "reinforce / none", np);
  acc_init(&a[RF_MEAN], "reinforce / mean", np);
  acc_init(&a[RF_LOO], "reinforce / leave-one-out", np);
  acc_init(&a[RF_OPT], "reinforce / optimal", np);
  acc_init(&a[RTG], "reward_to_go / none", np);
  acc_init(&a[RTG_MEAN], "reward_to_go / mean", np);
  acc_init(&a[RTG_VALUE], "reward_to_go / value (exact V_t)", np);
  float est[MAXP];
  int ok = 1, rtg_is_rf = 1;
  float rf[MAXP];
  for (int b = 0; b < B && ok; b++) {
    ok = sample_batch(&sm);
    ok = ok && estimate(&sm, MRL_EST_REINFORCE, MRL_BASELINE_NONE, 0, 0, 1.0, est);
    acc_add(&a[RF], est, 1.0);
    memcpy(rf, est, sizeof rf);
    ok = ok && estimate(&sm, MRL_EST_REINFORCE, MRL_BASELINE_MEAN, 0, 0, 1.0, est);
    acc_add(&a[RF_MEAN], est, 1.0);
    /* Leave-one-out: b_i = mean_{j≠i} R_j turns (R_i − R̄) into
    ** M/(M−1)·(R_i − R̄), so it is the mean-baseline estimate scaled. */
    acc_add(&a[RF_LOO], est, (double)M / (M - 1));
    ok = ok && estimate(&sm, MRL_EST_REINFORCE, MRL_BASELINE_OPTIMAL, 0, 0, 1.0, est);
    acc_add(&a[RF_OPT], est, 1.0);
    ok = ok && estimate(&sm, MRL_EST_REWARD_TO_GO, MRL_BASELINE_NONE, 0, 0, 1.0, est);
    acc_add(&a[RTG], est, 1.0);
    if (H == 1)
      for (int k = 0; k < np; k++)
        if (fabsf(est[k] - rf[k]) > 1e-5f * (1.0f + fabsf(rf[k]))) rtg_is_rf = 0;
    ok = ok && estimate(&sm, MRL_EST_REWARD_TO_GO, MRL_BASELINE_MEAN, 0, 0, 1.0, est);
    acc_add(&a[RTG_MEAN], est, 1.0);
    ok = ok && estimate(&sm, MRL_EST_REWARD_TO_GO, MRL_BASELINE_VALUE, 0, 0, 1.0, est);
    acc_add(&a[RTG_VALUE], est, 1.0);
  }
  TAP_OK(ok, "%s: %d batches of %d episodes (H = %d) sampled and estimated", label, B, M, H);
  if (!ok) goto out;
  double gn = norm(g, np);
  printf("# %s: H = %d, M = %d episodes per batch, B = %d batches, |grad J| = %.5f\n", label, H,
         M, B, gn);
  for (int c = 0; c < NCFG; c++) {
    const double *tgt = g;
    acc_finish(&a[c], tgt);
    print_row(&a[c], gn);
  }
  if (H == 1) TAP_OK(rtg_is_rf, "%s: reward_to_go = reinforce at H = 1", label);

  /* Unbiased ones against ∇J. */
  const int unbiased[] = {RF, RF_LOO, RTG, RTG_VALUE};
  for (size_t i = 0; i < sizeof unbiased / sizeof unbiased[0]; i++) {
    acc *x = &a[unbiased[i]];
    TAP_OK(x->within, "%s: %s is unbiased: mean within 4 SE of the exact grad (max z %.2f)",
           label, x->name, x->maxz);
  }
  /* Batch-mean baselines against their exact (biased) expectations. */
  acc tmp = a[RF_MEAN];
  acc_finish(&tmp, e_rf_mean);
  TAP_OK(tmp.within, "%s: reinforce / mean has mean (1 - 1/M) grad J, bias -grad/M = %.5f in norm (max z %.2f vs that)",
         label, gn / M, tmp.maxz);
  tmp = a[RTG_MEAN];
  acc_finish(&tmp, e_rtg_mean);
  double eb[MAXP] = {0};
  for (int k = 0; k < np; k++) eb[k] = e_rtg_mean[k] - g[k];
  TAP_OK(tmp.within, "%s: reward_to_go / mean has mean grad J - sum_u (u+1) grad E[r_u]/(MH), exact bias %.5f in norm (max z %.2f vs that)",
         label, norm(eb, np), tmp.maxz);
  /* The optimal baseline from the same batch is biased O(1/M) too (each
  ** b_k uses the episode's own g_ik² R_i); bound it loosely: within 4 SE of
  ** ∇J plus 2|∇J|/M. */
  {
    acc *x = &a[RF_OPT];
    int w = 1;
    for (int k = 0; k < np; k++)
      if (fabs(x->mean[k] - g[k]) > 4 * x->se[k] + 2.0 * gn / M) w = 0;
    TAP_OK(w, "%s: reinforce / optimal: |bias| %.5f = %.2f |grad|/M (loose bound 2 |grad|/M per component)",
           label, x->bias, x->bias * M / gn);
  }
  /* Variance reduction. */
  TAP_OK(a[RF_MEAN].var < a[RF].var && a[RF_LOO].var < a[RF].var && a[RF_OPT].var < a[RF].var,
         "%s: baselines cut the variance: none %.4f > mean %.4f, leave-one-out %.4f, optimal %.4f",
         label, a[RF].var, a[RF_MEAN].var, a[RF_LOO].var, a[RF_OPT].var);
  TAP_OK(a[RTG_VALUE].var < a[RTG].var && a[RTG_MEAN].var < a[RTG].var,
         "%s: reward_to_go: none %.4f > mean %.4f, value %.4f", label, a[RTG].var,
         a[RTG_MEAN].var, a[RTG_VALUE].var);
  if (H > 1)
    TAP_OK(a[RTG].var < a[RF].var, "%s: reward-to-go (causality) %.4f < reinforce %.4f", label,
           a[RTG].var, a[RF].var);
out:
  sampler_free(&sm);
  mrl_policy_free(p);
}

/* Off-policy: data from a behaviour policy, the target's exact gradient. */
static void test_off_policy(int H, int M, int B) {
  mdp m = the_mdp();
  int np = np_of(&m);
  mrl_policy *p = linear_policy(&m, MDP_TH, 31), *beh = linear_policy(&m, MDP_BEH, 32);
  sampler sm;
  if (!p || !beh || !sampler_init(&sm, &m, H, M, p, beh, 33)) {
    TAP_OK(0, "off-policy setup");
    return;
  }
  double th[MAXP], tb[MAXP], g[MAXP], V[MAXH + 1][MAXS], e_pd[MAXP], e_fo[MAXP];
  params_of(p, th);
  params_of(beh, tb);
  grad_dp(&m, th, H, 1.0, g, V);
  mixed_expectation(&m, th, tb, th, H, e_pd);
  mixed_expectation(&m, th, tb, tb, H, e_fo);
  enum { TRAJ, PD, FULL, FO, FO_VAL, TRAJ_CLIP, PD_CLIP, TRAJ_SN, NCFG };
  acc a[NCFG];
  acc_init(&a[TRAJ], "is_trajectory", np);
  acc_init(&a[PD], "is_per_decision", np);
  acc_init(&a[FULL], "is_full", np);
  acc_init(&a[FO], "is_first_order / none", np);
  acc_init(&a[FO_VAL], "is_first_order / value", np);
  acc_init(&a[TRAJ_CLIP], "is_trajectory, weight_clip 2", np);
  acc_init(&a[PD_CLIP], "is_per_decision, weight_clip 2", np);
  acc_init(&a[TRAJ_SN], "is_trajectory, self_normalize", np);
  float est[MAXP];
  int ok = 1;
  for (int b = 0; b < B && ok; b++) {
    ok = sample_batch(&sm);
    ok = ok && estimate(&sm, MRL_EST_IS_TRAJECTORY, MRL_BASELINE_NONE, 0, 0, 1.0, est);
    acc_add(&a[TRAJ], est, 1.0);
    ok = ok && estimate(&sm, MRL_EST_IS_PER_DECISION, MRL_BASELINE_NONE, 0, 0, 1.0, est);
    acc_add(&a[PD], est, 1.0);
    ok = ok && estimate(&sm, MRL_EST_IS_FULL, MRL_BASELINE_NONE, 0, 0, 1.0, est);
    acc_add(&a[FULL], est, 1.0);
    ok = ok && estimate(&sm, MRL_EST_IS_FIRST_ORDER, MRL_BASELINE_NONE, 0, 0, 1.0, est);
    acc_add(&a[FO], est, 1.0);
    ok = ok && estimate(&sm, MRL_EST_IS_FIRST_ORDER, MRL_BASELINE_VALUE, 0, 0, 1.0, est);
    acc_add(&a[FO_VAL], est, 1.0);
    ok = ok && estimate(&sm, MRL_EST_IS_TRAJECTORY, MRL_BASELINE_NONE, 2.0, 0, 1.0, est);
    acc_add(&a[TRAJ_CLIP], est, 1.0);
    ok = ok && estimate(&sm, MRL_EST_IS_PER_DECISION, MRL_BASELINE_NONE, 2.0, 0, 1.0, est);
    acc_add(&a[PD_CLIP], est, 1.0);
    ok = ok && estimate(&sm, MRL_EST_IS_TRAJECTORY, MRL_BASELINE_NONE, 0, 1, 1.0, est);
    acc_add(&a[TRAJ_SN], est, 1.0);
  }
  TAP_OK(ok, "off-policy MDP: %d batches of %d episodes (H = %d) from the behaviour policy", B, M, H);
  if (!ok) goto out;
  double gn = norm(g, np);
  printf("# off-policy MDP: H = %d, M = %d, B = %d, |grad J(target)| = %.5f\n", H, M, B, gn);
  for (int c = 0; c < NCFG; c++) {
    acc_finish(&a[c], g);
    print_row(&a[c], gn);
  }
  const int unbiased[] = {TRAJ, FULL};
  for (size_t i = 0; i < 2; i++)
    TAP_OK(a[unbiased[i]].within, "off-policy: %s is unbiased for the target's grad (max z %.2f)",
           a[unbiased[i]].name, a[unbiased[i]].maxz);
  /* is_per_decision as the contract defines it weights ∇_t G_t by Π_{k≤t} ρ_k
  ** only: the rewards after t keep the behaviour's later actions, so it is
  ** biased (is_full, which weights r_{t'} by Π_{k≤t'} ρ_k, is the unbiased
  ** per-decision estimator).  is_first_order also keeps β's state
  ** distribution.  Both match their exact expectations (mixed_expectation). */
  /* Clipping at 2 and self-normalisation are biased too; the clipped
  ** per-decision bias (~10%) is only reported: at MRL_TEST_QUICK sizes it is
  ** not significant. */
  const int biased[] = {PD, FO, FO_VAL, TRAJ_CLIP, TRAJ_SN};
  for (size_t i = 0; i < 5; i++)
    TAP_OK(!a[biased[i]].within && a[biased[i]].maxz > 6,
           "off-policy: %s is measurably biased: |bias| %.5f (%.1f%% of |grad|), max z %.1f",
           a[biased[i]].name, a[biased[i]].bias, 100 * a[biased[i]].bias / gn, a[biased[i]].maxz);
  double d_pd[MAXP], d_fo[MAXP];
  for (int k = 0; k < np; k++) {
    d_pd[k] = e_pd[k] - g[k];
    d_fo[k] = e_fo[k] - g[k];
  }
  const int vs_exact[] = {PD, FO, FO_VAL};
  const double *exact[] = {e_pd, e_fo, e_fo};
  for (size_t i = 0; i < 3; i++) {
    acc tmp = a[vs_exact[i]];
    acc_finish(&tmp, exact[i]);
    TAP_OK(tmp.within, "off-policy: %s matches its exact expectation (exact bias %.5f = %.1f%% of |grad|; max z %.2f vs that)",
           tmp.name, norm(i ? d_fo : d_pd, np), 100 * norm(i ? d_fo : d_pd, np) / gn, tmp.maxz);
  }
out:
  sampler_free(&sm);
  mrl_policy_free(p);
  mrl_policy_free(beh);
}

/* Variance of the importance-sampled estimators as the horizon grows. */
static void test_horizon(int M, int B) {
  mdp m = the_mdp();
  int np = np_of(&m);
  const int Hs[] = {1, 2, 4, 8, 16};
  double vt[5], vp[5], vf[5], vfull[5], gns[5], zt[5], zfull[5], xpd[5], xfo[5];
  double bpd[5], bfo[5];
  int same_h1 = 1, ok = 1, unb = 1, exact_ok = 1;
  for (int hi = 0; hi < 5 && ok; hi++) {
    int H = Hs[hi];
    mrl_policy *p = linear_policy(&m, MDP_TH, 41), *beh = linear_policy(&m, MDP_BEH, 42 + hi);
    sampler sm;
    if (!p || !beh || !sampler_init(&sm, &m, H, M, p, beh, 1000 + hi)) {
      ok = 0;
      break;
    }
    double th[MAXP], tb[MAXP], g[MAXP], V[MAXH + 1][MAXS], e_pd[MAXP], e_fo[MAXP];
    params_of(p, th);
    params_of(beh, tb);
    grad_dp(&m, th, H, 1.0, g, V);
    mixed_expectation(&m, th, tb, th, H, e_pd);
    mixed_expectation(&m, th, tb, tb, H, e_fo);
    acc at, ap, af, afull;
    acc_init(&at, "traj", np);
    acc_init(&ap, "pd", np);
    acc_init(&af, "fo", np);
    acc_init(&afull, "full", np);
    float e1[MAXP], e2[MAXP], e3[MAXP];
    for (int b = 0; b < B && ok; b++) {
      ok = sample_batch(&sm);
      ok = ok && estimate(&sm, MRL_EST_IS_TRAJECTORY, MRL_BASELINE_NONE, 0, 0, 1.0, e1);
      ok = ok && estimate(&sm, MRL_EST_IS_PER_DECISION, MRL_BASELINE_NONE, 0, 0, 1.0, e2);
      ok = ok && estimate(&sm, MRL_EST_IS_FIRST_ORDER, MRL_BASELINE_NONE, 0, 0, 1.0, e3);
      acc_add(&at, e1, 1.0);
      acc_add(&ap, e2, 1.0);
      acc_add(&af, e3, 1.0);
      if (H == 1)
        for (int k = 0; k < np; k++)
          if (fabsf(e1[k] - e2[k]) > 1e-5f * (1 + fabsf(e1[k])) ||
              fabsf(e1[k] - e3[k]) > 1e-5f * (1 + fabsf(e1[k])))
            same_h1 = 0;
      ok = ok && estimate(&sm, MRL_EST_IS_FULL, MRL_BASELINE_NONE, 0, 0, 1.0, e1);
      acc_add(&afull, e1, 1.0);
    }
    acc_finish(&at, g);
    acc_finish(&ap, g);
    acc_finish(&af, g);
    acc_finish(&afull, g);
    vt[hi] = at.var;
    vp[hi] = ap.var;
    vf[hi] = af.var;
    vfull[hi] = afull.var;
    zt[hi] = at.maxz;
    zfull[hi] = afull.maxz;
    /* At H = 16 the weights are products of 16 ratios: so heavy-tailed
    ** that the sample SE itself is unreliable; H = 16 is reported only. */
    if (H <= 8) unb = unb && at.within && afull.within;
    gns[hi] = norm(g, np);
    double d1[MAXP], d2[MAXP];
    for (int k = 0; k < np; k++) {
      d1[k] = e_pd[k] - g[k];
      d2[k] = e_fo[k] - g[k];
    }
    bpd[hi] = norm(d1, np);
    bfo[hi] = norm(d2, np);
    acc_finish(&ap, e_pd);
    acc_finish(&af, e_fo);
    xpd[hi] = ap.maxz;
    xfo[hi] = af.maxz;
    if (H <= 8) exact_ok = exact_ok && ap.within && af.within;
    sampler_free(&sm);
    mrl_policy_free(p);
    mrl_policy_free(beh);
  }
  TAP_OK(ok, "horizon sweep: %d batches of %d episodes per H", B, M);
  if (!ok) return;
  printf("# variance (trace of covariance of one batch estimate, M = %d episodes) vs horizon\n", M);
  printf("# H  var_traj  var_pd  var_fo\n");
  for (int hi = 0; hi < 5; hi++)
    printf("# %2d  %.4g  %.4g  %.4g\n", Hs[hi], vt[hi], vp[hi], vf[hi]);
  printf("# the same runs: is_full variance; |grad J|; exact bias |E[g] - grad J| of is_per_decision and\n"
         "# is_first_order; max z of is_trajectory and is_full vs grad J, of pd and fo vs their exact E[g]\n");
  printf("# H  var_full  |grad|  bias_pd  bias_fo  z_traj  z_full  z_pd  z_fo\n");
  for (int hi = 0; hi < 5; hi++)
    printf("# %2d  %.4g  %.4f  %.4f  %.4f  %.2f  %.2f  %.2f  %.2f\n", Hs[hi], vfull[hi], gns[hi],
           bpd[hi], bfo[hi], zt[hi], zfull[hi], xpd[hi], xfo[hi]);
  TAP_OK(unb, "H <= 8: is_trajectory and is_full within 4 SE of grad J");
  TAP_OK(exact_ok, "H <= 8: is_per_decision and is_first_order within 4 SE of their exact expectations");
  TAP_OK(same_h1, "H = 1: is_trajectory = is_per_decision = is_first_order");
  TAP_OK(vp[3] <= vt[3] && vp[4] <= vt[4], "per-decision <= trajectory at H = 8 (%.4g <= %.4g) and 16 (%.4g <= %.4g)",
         vp[3], vt[3], vp[4], vt[4]);
}

/* Straight-through Gumbel-softmax vs the score function on the bandit
** (deterministic per-arm scores, so both see the same objective). */
static void test_gumbel_vs_score(int M, int B) {
  mdp m = the_bandit();
  m.sigma = 0.0;
  int np = np_of(&m), K = m.A;
  const double taus[] = {0.1, 0.5, 1.0, 2.0, 5.0};
  mrl_policy *p = linear_policy(&m, BANDIT_TH, 51);
  sampler sm;
  if (!p || !sampler_init(&sm, &m, 1, M, p, p, 52)) {
    TAP_OK(0, "gumbel setup");
    return;
  }
  double th[MAXP], g[MAXP], V[MAXH + 1][MAXS];
  params_of(p, th);
  grad_dp(&m, th, 1, 1.0, g, V);
  double gn = norm(g, np);
  float *obs = malloc((size_t)M * sizeof(float)), *scores = malloc((size_t)M * K * sizeof(float));
  for (int i = 0; i < M; i++) {
    obs[i] = 1.0f;
    for (int k = 0; k < K; k++) scores[i * K + k] = (float)m.r[0][k];
  }
  acc sf;
  acc_init(&sf, "score function (reinforce)", np);
  float est[MAXP];
  int ok = 1;
  for (int b = 0; b < B && ok; b++) {
    ok = sample_batch(&sm) && estimate(&sm, MRL_EST_REINFORCE, MRL_BASELINE_NONE, 0, 0, 1.0, est);
    acc_add(&sf, est, 1.0);
  }
  acc_finish(&sf, g);
  acc gs[5];
  double objm[5];
  for (int ti = 0; ti < 5 && ok; ti++) {
    acc_init(&gs[ti], "gumbel", np);
    double os = 0.0;
    for (int b = 0; b < B && ok; b++) {
      double obj;
      ok = mrl_policy_gumbel_grad(p, obs, scores, M, taus[ti], NULL, &obj) == MRL_OK;
      acc_add(&gs[ti], mrl_policy_grad(p), 1.0);
      os += obj;
    }
    objm[ti] = os / B;
    acc_finish(&gs[ti], g);
  }
  TAP_OK(ok, "bandit: score function and Gumbel-softmax, %d batches of %d", B, M);
  if (ok) {
    double J = 0.0, pi[MAXS][MAXA];
    policy_probs(&m, th, pi);
    for (int k = 0; k < K; k++) J += pi[0][k] * m.r[0][k];
    printf("# bandit, %d arms, scores (1, 1.5, 0.5, 2), M = %d rows per batch, B = %d batches\n", K, M, B);
    printf("# exact J = %.5f, |grad J| = %.5f\n", J, gn);
    printf("# estimator     |bias|    rel_bias  max_z   var(trace, per batch)  mean hard score\n");
    printf("# score-fn      %.5f   %.4f    %5.2f   %.5f\n", sf.bias, sf.bias / gn, sf.maxz, sf.var);
    printf("# tau  |bias|    rel_bias  max_z   var     mean_hard_score\n");
    for (int ti = 0; ti < 5; ti++)
      printf("# %-4g %.5f   %.4f    %6.1f  %.5f  %.5f\n", taus[ti], gs[ti].bias, gs[ti].bias / gn,
             gs[ti].maxz, gs[ti].var, objm[ti]);
    TAP_OK(sf.within, "score function is unbiased (max z %.2f)", sf.maxz);
    int sample_ok = 1;
    for (int ti = 0; ti < 5; ti++)
      if (fabs(objm[ti] - J) > 4 * sqrt(1.0 / (B * M))) sample_ok = 0;
    TAP_OK(sample_ok, "the hard Gumbel-max samples are exact: mean score = J within 4 SE at every tau");
    /* What the table shows, asserted: the bias grows with τ (significant
    ** from τ = 0.5 on, below 5% of |∇J| at τ = 0.1), the variance falls
    ** with τ, and every τ here has less variance than the score function. */
    int grows = 1, falls = 1, below_sf = 1;
    for (int ti = 1; ti < 5; ti++) {
      if (!(gs[ti].bias > gs[ti - 1].bias && gs[ti].maxz > 6)) grows = 0;
      if (!(gs[ti].var < gs[ti - 1].var)) falls = 0;
    }
    for (int ti = 0; ti < 5; ti++)
      if (!(gs[ti].var < sf.var)) below_sf = 0;
    TAP_OK(grows && gs[0].bias < 0.05 * gn,
           "Gumbel bias grows with tau: %.4f %.4f %.4f %.4f %.4f (tau 0.1 .. 5)", gs[0].bias,
           gs[1].bias, gs[2].bias, gs[3].bias, gs[4].bias);
    TAP_OK(falls && below_sf, "Gumbel variance falls with tau (%.3g .. %.3g), below the score function's %.3g",
           gs[0].var, gs[4].var, sf.var);
    /* Mean squared error of one batch estimate: bias² + var.  The best τ is
    ** interior: small τ pays in variance, large τ in bias. */
    int best = 0;
    double mse[5];
    for (int ti = 0; ti < 5; ti++) {
      mse[ti] = gs[ti].bias * gs[ti].bias + gs[ti].var;
      if (mse[ti] < mse[best]) best = ti;
    }
    printf("# mse per batch (bias^2 + var): score-fn %.5f; tau 0.1 %.5f, 0.5 %.5f, 1 %.5f, 2 %.5f, 5 %.5f\n",
           sf.bias * sf.bias + sf.var, mse[0], mse[1], mse[2], mse[3], mse[4]);
    TAP_OK(best > 0 && best < 4, "the MSE-best tau is interior (tau = %g)", taus[best]);
  }
  free(obs);
  free(scores);
  sampler_free(&sm);
  mrl_policy_free(p);
}

int main(void) {
  int div = quick() ? 4 : 1;
  if (div > 1) printf("# MRL_TEST_QUICK=1: batch counts divided by %d\n", div);
  test_exact_gradients();
  mdp bandit = the_bandit(), m = the_mdp();
  test_on_policy("bandit", &bandit, BANDIT_TH, 1, 8, 16000 / div, 101);
  test_on_policy("MDP", &m, MDP_TH, 4, 8, 16000 / div, 201);
  test_off_policy(4, 8, 16000 / div);
  test_horizon(8, 8000 / div);
  test_gumbel_vs_score(8, 16000 / div);
  return tap_done();
}
