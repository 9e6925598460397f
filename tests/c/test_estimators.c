/* test_estimators.c — mrl_pg_gradient against a straightforward double
** reimplementation of every formula in golden/README.md (kind pg_gradient).
**
** The reference gets the per-step scores ∇_t = ∇θ log π(a_t|s_t) one step at a
** time (grad_weighted_logp on a single step with weight 1) and then follows
** the README literally: explicit products of ratios, O(T²) reward sums, the
** optimal baseline per parameter.  Nothing of estimators.c's reductions
** (log-space weights, per-step weight folding, rescaling) is reused. */
#include <math.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "moonrl.h"
#include "tap.h"

/* ------------------------------------------------------------ test data */

static uint64_t rng_s = 0x9e3779b97f4a7c15ull;
static uint64_t next_u64(void) {
  uint64_t z = (rng_s += 0x9e3779b97f4a7c15ull);
  z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ull;
  z = (z ^ (z >> 27)) * 0x94d049bb133111ebull;
  return z ^ (z >> 31);
}
static double unif(void) { return (double)(next_u64() >> 11) * 0x1.0p-53; }
static double normal(void) {
  double u = unif(), v = unif();
  return sqrt(-2.0 * log(u + 1e-300)) * cos(6.283185307179586 * v);
}

typedef struct {
  mrl_policy *p;
  int D, aw, nep, M;
  size_t np;
  int *off;
  float *obs, *act, *rew, *blp, *val;
  double *lp;   /* log π(a_t|s_t) at the current params */
  double *S;    /* [M][np] per-step scores */
} data;

static void data_free(data *d) {
  free(d->off);
  free(d->obs);
  free(d->act);
  free(d->rew);
  free(d->blp);
  free(d->val);
  free(d->lp);
  free(d->S);
  memset(d, 0, sizeof *d);
}

/* Episodes of 1..maxT steps; behavior_logp = log π + N(0, noise²) so the
** ratios straddle 1.  zero_col zeroes obs[...][0] everywhere, which makes some
** scores identically 0 (the optimal baseline's 0/0 case) for a linear policy. */
static int make_data(data *d, mrl_policy *p, int nep, int maxT, double noise,
                     int zero_col) {
  memset(d, 0, sizeof *d);
  d->p = p;
  d->D = mrl_policy_obs_dim(p);
  d->aw = mrl_policy_action_width(p);
  d->np = mrl_policy_nparams(p);
  d->nep = nep;
  d->off = malloc((size_t)(nep + 1) * sizeof(int));
  d->off[0] = 0;
  for (int i = 0; i < nep; i++) d->off[i + 1] = d->off[i] + 1 + (int)(unif() * maxT) % maxT;
  int M = d->M = d->off[nep];
  d->obs = malloc((size_t)M * d->D * sizeof(float));
  d->act = malloc((size_t)M * d->aw * sizeof(float));
  d->rew = malloc((size_t)M * sizeof(float));
  d->blp = malloc((size_t)M * sizeof(float));
  d->val = malloc((size_t)M * sizeof(float));
  d->lp = malloc((size_t)M * sizeof(double));
  d->S = malloc((size_t)M * d->np * sizeof(double));
  for (int n = 0; n < M * d->D; n++) d->obs[n] = (float)normal();
  if (zero_col)
    for (int n = 0; n < M; n++) d->obs[(size_t)n * d->D] = 0.0f;
  for (int n = 0; n < M; n++) {
    if (mrl_policy_action_kind(p) == MRL_DISCRETE)
      d->act[n] = (float)(int)(unif() * mrl_policy_action_n(p));
    else
      for (int k = 0; k < d->aw; k++) d->act[(size_t)n * d->aw + k] = (float)normal();
    d->rew[n] = (float)(3.0 * unif() - 1.0);
    d->val[n] = (float)(2.0 * normal());
  }
  float *lpf = malloc((size_t)M * sizeof(float));
  int rc = mrl_policy_evaluate(p, NULL, d->obs, d->act, M, lpf, NULL);
  float one = 1.0f;
  for (int n = 0; n < M && rc == MRL_OK; n++) {
    d->lp[n] = lpf[n];
    d->blp[n] = (float)(lpf[n] + noise * normal());
    rc = mrl_policy_grad_weighted_logp(p, d->obs + (size_t)n * d->D,
                                       d->act + (size_t)n * d->aw, &one, 1, 1.0, NULL);
    const float *g = mrl_policy_grad(p);
    for (size_t k = 0; k < d->np; k++) d->S[(size_t)n * d->np + k] = g[k];
  }
  free(lpf);
  return rc;
}

/* ------------------------------------------------------------ reference */

static double clipw(double w, double c) { return c > 0 && w > c ? c : w; }

/* The README's table, literally.  ess/mean_ratio/mean_return as documented in
** estimators.c: the weight population is one per episode for is_trajectory,
** one per step for the other is_* estimators. */
static void reference(const data *d, const mrl_pg_opts *o, double *out,
                      mrl_pg_stats *st) {
  const int N = d->nep, M = d->M;
  const size_t np = d->np;
  const double gam = o->gamma, c = o->weight_clip;
  double *G = calloc((size_t)M, sizeof(double)), *R = calloc((size_t)N, sizeof(double));
  double *rho = calloc((size_t)M, sizeof(double));
  double *wpop = calloc((size_t)M, sizeof(double));
  int nw = 0;
  for (int n = 0; n < M; n++) rho[n] = exp(d->lp[n] - (double)d->blp[n]);
  for (int i = 0; i < N; i++)
    for (int t = d->off[i]; t < d->off[i + 1]; t++) {
      int t0 = d->off[i];
      R[i] += pow(gam, t - t0) * d->rew[t];
      for (int u = t; u < d->off[i + 1]; u++) G[t] += pow(gam, u - t) * d->rew[u];
    }
  double meanR = 0, meanG = 0;
  for (int i = 0; i < N; i++) meanR += R[i] / N;
  for (int n = 0; n < M; n++) meanG += G[n] / M;
  for (size_t k = 0; k < np; k++) out[k] = 0;

  if (o->estimator == MRL_EST_REINFORCE) {
    double *g = calloc((size_t)N * np, sizeof(double));
    for (int i = 0; i < N; i++)
      for (int t = d->off[i]; t < d->off[i + 1]; t++)
        for (size_t k = 0; k < np; k++) g[i * np + k] += d->S[t * np + k];
    for (size_t k = 0; k < np; k++) {
      double b = 0;
      if (o->baseline == MRL_BASELINE_MEAN) b = meanR;
      if (o->baseline == MRL_BASELINE_OPTIMAL) {
        double num = 0, den = 0;
        for (int i = 0; i < N; i++) {
          num += g[i * np + k] * g[i * np + k] * R[i];
          den += g[i * np + k] * g[i * np + k];
        }
        b = den != 0 ? num / den : 0;
      }
      for (int i = 0; i < N; i++) out[k] += g[i * np + k] * (R[i] - b) / N;
    }
    free(g);
  } else if (o->estimator == MRL_EST_IS_TRAJECTORY) {
    for (int i = 0; i < N; i++) {
      double w = 1;
      for (int t = d->off[i]; t < d->off[i + 1]; t++) w *= rho[t];
      w = clipw(w, c);
      wpop[nw++] = w;
      for (int t = d->off[i]; t < d->off[i + 1]; t++)
        for (size_t k = 0; k < np; k++) out[k] += w * d->S[t * np + k] * R[i] / N;
    }
  } else {
    for (int i = 0; i < N; i++)
      for (int t = d->off[i]; t < d->off[i + 1]; t++) {
        double coef = 0;
        double b = o->baseline == MRL_BASELINE_MEAN ? meanG
                 : o->baseline == MRL_BASELINE_VALUE ? d->val[t] : 0;
        double prod = 1;
        for (int u = d->off[i]; u <= t; u++) prod *= rho[u];
        switch (o->estimator) {
          case MRL_EST_REWARD_TO_GO: coef = G[t] - b; break;
          case MRL_EST_IS_PER_DECISION:
            coef = clipw(prod, c) * G[t];
            wpop[nw++] = clipw(prod, c);
            break;
          case MRL_EST_IS_FULL:
            for (int u = t; u < d->off[i + 1]; u++) {
              double pu = 1;
              for (int v = d->off[i]; v <= u; v++) pu *= rho[v];
              coef += pow(gam, u - t) * d->rew[u] * clipw(pu, c);
            }
            wpop[nw++] = clipw(prod, c);  /* the weight of r_t */
            break;
          case MRL_EST_IS_FIRST_ORDER:
            coef = clipw(rho[t], c) * (G[t] - b);
            wpop[nw++] = clipw(rho[t], c);
            break;
          default: break;
        }
        for (size_t k = 0; k < np; k++) out[k] += coef * d->S[t * np + k] / N;
      }
  }
  double sw = 0, sw2 = 0, sr = 0;
  for (int j = 0; j < nw; j++) {
    sw += wpop[j];
    sw2 += wpop[j] * wpop[j];
  }
  if (o->self_normalize && nw > 0)
    for (size_t k = 0; k < np; k++) out[k] *= nw / sw;  /* N → N·mean(w) */
  for (int n = 0; n < M; n++) sr += rho[n];
  st->mean_ratio = sr / M;
  st->ess = nw > 0 ? sw * sw / sw2 : (o->estimator == MRL_EST_REINFORCE ? N : M);
  st->mean_return = meanR;
  free(G);
  free(R);
  free(rho);
  free(wpop);
}

static double vec_close(const float *got, const double *exp_, size_t n,
                        double rtol, double atol, double *err) {
  double e2 = 0, x2 = 0;
  for (size_t k = 0; k < n; k++) {
    double diff = got[k] - exp_[k];
    e2 += diff * diff;
    x2 += exp_[k] * exp_[k];
  }
  *err = sqrt(e2);
  return sqrt(e2) <= atol * sqrt((double)n) + rtol * sqrt(x2);
}

static const char *EST[] = {"reinforce", "reward_to_go", "is_trajectory",
                            "is_per_decision", "is_full", "is_first_order"};
static const char *BASE[] = {"none", "mean", "optimal", "value"};

static void check_case(const data *d, const char *tag, mrl_pg_opts o) {
  float *got = malloc(d->np * sizeof(float));
  double *ref = malloc(d->np * sizeof(double));
  mrl_pg_stats st = {0}, rst;
  int rc = mrl_pg_gradient(d->p, d->obs, d->act, d->rew, d->blp, d->val, d->off,
                           d->nep, &o, got, &st);
  reference(d, &o, ref, &rst);
  double err = 0;
  int ok = rc == MRL_OK && vec_close(got, ref, d->np, 1e-4, 1e-6, &err);
  TAP_OK(ok, "%s: %s/%s clip=%g sn=%d matches the reference (err %.3g, rc %d)", tag,
         EST[o.estimator], BASE[o.baseline], o.weight_clip, o.self_normalize, err, rc);
  if (!ok && rc) printf("#   %s\n", mrl_policy_error(d->p));
  TAP_OK(rc == MRL_OK && tap_close(st.mean_ratio, rst.mean_ratio, 1e-5, 1e-9) &&
             tap_close(st.ess, rst.ess, 1e-6, 1e-9) &&
             tap_close(st.mean_return, rst.mean_return, 1e-6, 1e-9),
         "%s: %s stats (ratio %g/%g, ess %g/%g, return %g/%g)", tag, EST[o.estimator],
         st.mean_ratio, rst.mean_ratio, st.ess, rst.ess, st.mean_return, rst.mean_return);
  free(got);
  free(ref);
}

static void all_cases(const data *d, const char *tag) {
  static const struct { int e, b; } legal[] = {
      {0, 0}, {0, 1}, {0, 2}, {1, 0}, {1, 1}, {1, 3}, {2, 0}, {3, 0}, {4, 0},
      {5, 0}, {5, 1}, {5, 3}};
  for (size_t j = 0; j < sizeof legal / sizeof legal[0]; j++) {
    mrl_pg_opts o = {(mrl_estimator)legal[j].e, (mrl_baseline)legal[j].b, 0.95, 0, 0, 0};
    check_case(d, tag, o);
    if (legal[j].e >= MRL_EST_IS_TRAJECTORY) {
      o.weight_clip = 1.0;  /* ratios straddle 1: some weights are clipped */
      check_case(d, tag, o);
      o.weight_clip = 1.3;
      o.self_normalize = 1;
      check_case(d, tag, o);
      o.weight_clip = 0;
      check_case(d, tag, o);
    }
  }
  mrl_pg_opts o1 = {MRL_EST_REWARD_TO_GO, MRL_BASELINE_MEAN, 1.0, 0, 0, 0};
  check_case(d, tag, o1);
  mrl_pg_opts o0 = {MRL_EST_IS_FULL, MRL_BASELINE_NONE, 0.0, 0.8, 0, 0};
  check_case(d, tag, o0);
}

/* On-policy data (ratios exactly 1): each is_* estimator collapses to its
** on-policy counterpart. */
static void collapse(data *d, const char *tag) {
  for (int n = 0; n < d->M; n++) d->blp[n] = (float)d->lp[n];
  float *a = malloc(d->np * sizeof(float)), *b = malloc(d->np * sizeof(float));
  double *bd = malloc(d->np * sizeof(double));
  static const int pairs[][2] = {{2, 0}, {3, 1}, {4, 1}, {5, 1}};
  for (int j = 0; j < 4; j++) {
    mrl_pg_opts oi = {(mrl_estimator)pairs[j][0], MRL_BASELINE_NONE, 0.9, 0, 0, 0};
    mrl_pg_opts oo = {(mrl_estimator)pairs[j][1], MRL_BASELINE_NONE, 0.9, 0, 0, 0};
    int r1 = mrl_pg_gradient(d->p, d->obs, d->act, d->rew, d->blp, NULL, d->off, d->nep, &oi, a, NULL);
    int r2 = mrl_pg_gradient(d->p, d->obs, d->act, d->rew, NULL, NULL, d->off, d->nep, &oo, b, NULL);
    for (size_t k = 0; k < d->np; k++) bd[k] = b[k];
    double err;
    TAP_OK(r1 == 0 && r2 == 0 && vec_close(a, bd, d->np, 1e-5, 1e-7, &err),
           "%s: on-policy %s equals %s", tag, EST[pairs[j][0]], EST[pairs[j][1]]);
  }
  free(a);
  free(b);
  free(bd);
}

static mrl_policy *make_policy(int D, const int *hidden, int nh, mrl_action_kind kind,
                               int n, mrl_activation act) {
  mrl_policy_spec s = {.obs_dim = D, .hidden = hidden, .nhidden = nh, .activation = act, .action_kind = kind, .action_n = n, .low = NULL, .high = NULL, .init_log_std = -0.3, .out_gain = 1.0, .seed = 7};
  mrl_policy *p = NULL;
  if (mrl_policy_new(&p, &s) != MRL_OK) return NULL;
  size_t np = mrl_policy_nparams(p);
  float *v = malloc(np * sizeof(float));
  for (size_t k = 0; k < np; k++) v[k] = (float)(0.5 * normal());
  mrl_policy_set_params(p, v, np);
  free(v);
  return p;
}

static int err_has(mrl_policy *p, const char *needle) {
  const char *m = mrl_policy_error(p);
  return m && strstr(m, needle) != NULL;
}

static void error_cases(data *d) {
  float *g = malloc(d->np * sizeof(float));
  mrl_policy *p = d->p;
#define CALL(o, blp, val, off, nep) \
  mrl_pg_gradient(p, d->obs, d->act, d->rew, blp, val, off, nep, &(o), g, NULL)
  for (int e = MRL_EST_IS_TRAJECTORY; e <= MRL_EST_IS_FULL; e++)
    for (int b = MRL_BASELINE_MEAN; b <= MRL_BASELINE_VALUE; b++) {
      mrl_pg_opts o = {(mrl_estimator)e, (mrl_baseline)b, 0.9, 0, 0, 0};
      TAP_OK(CALL(o, d->blp, d->val, d->off, d->nep) == MRL_EINVAL &&
                 err_has(p, "baseline 'none' only"),
             "%s with baseline %s is refused: %s", EST[e], BASE[b], mrl_policy_error(p));
    }
  for (int e = MRL_EST_REWARD_TO_GO; e <= MRL_EST_IS_FIRST_ORDER; e++) {
    mrl_pg_opts o = {(mrl_estimator)e, MRL_BASELINE_OPTIMAL, 0.9, 0, 0, 0};
    TAP_OK(CALL(o, d->blp, d->val, d->off, d->nep) == MRL_EINVAL &&
               (err_has(p, "'optimal' needs estimator 'reinforce'") || err_has(p, "'none' only")),
           "optimal baseline with %s is refused: %s", EST[e], mrl_policy_error(p));
  }
  mrl_pg_opts ov = {MRL_EST_REWARD_TO_GO, MRL_BASELINE_VALUE, 0.9, 0, 0, 0};
  TAP_OK(CALL(ov, d->blp, NULL, d->off, d->nep) == MRL_EINVAL && err_has(p, "needs values"),
         "value baseline without values is refused: %s", mrl_policy_error(p));
  ov.estimator = MRL_EST_IS_FIRST_ORDER;
  TAP_OK(CALL(ov, d->blp, NULL, d->off, d->nep) == MRL_EINVAL && err_has(p, "needs values"),
         "is_first_order/value without values is refused");
  ov.estimator = MRL_EST_REINFORCE;
  TAP_OK(CALL(ov, d->blp, d->val, d->off, d->nep) == MRL_EINVAL && err_has(p, "per-step"),
         "reinforce with the value baseline is refused: %s", mrl_policy_error(p));
  for (int e = MRL_EST_IS_TRAJECTORY; e <= MRL_EST_IS_FIRST_ORDER; e++) {
    mrl_pg_opts o = {(mrl_estimator)e, MRL_BASELINE_NONE, 0.9, 0, 0, 0};
    TAP_OK(CALL(o, NULL, NULL, d->off, d->nep) == MRL_EINVAL && err_has(p, "behavior_logp"),
           "%s without behavior_logp is refused", EST[e]);
  }
  mrl_pg_opts o = {MRL_EST_REWARD_TO_GO, MRL_BASELINE_NONE, 1.5, 0, 0, 0};
  TAP_OK(CALL(o, NULL, NULL, d->off, d->nep) == MRL_EINVAL && err_has(p, "gamma"),
         "gamma 1.5 is refused: %s", mrl_policy_error(p));
  o.gamma = 0.9;
  o.estimator = (mrl_estimator)9;
  TAP_OK(CALL(o, NULL, NULL, d->off, d->nep) == MRL_EINVAL && err_has(p, "unknown estimator"),
         "an unknown estimator is refused");
  o.estimator = MRL_EST_REWARD_TO_GO;
  o.baseline = (mrl_baseline)-1;
  TAP_OK(CALL(o, NULL, NULL, d->off, d->nep) == MRL_EINVAL && err_has(p, "unknown baseline"),
         "an unknown baseline is refused");
  o.baseline = MRL_BASELINE_NONE;
  o.weight_clip = NAN;
  TAP_OK(CALL(o, NULL, NULL, d->off, d->nep) == MRL_EINVAL && err_has(p, "weight_clip"),
         "a NaN weight_clip is refused");
  o.weight_clip = 0;
  TAP_OK(CALL(o, NULL, NULL, d->off, 0) == MRL_EINVAL && err_has(p, "nep"),
         "nep = 0 is refused: %s", mrl_policy_error(p));
  int bad_off[3] = {0, 3, 2};
  TAP_OK(CALL(o, NULL, NULL, bad_off, 2) == MRL_EINVAL && err_has(p, "ep_offsets"),
         "decreasing offsets are refused: %s", mrl_policy_error(p));
  int bad0[2] = {1, 2};
  TAP_OK(CALL(o, NULL, NULL, bad0, 1) == MRL_EINVAL && err_has(p, "must start at 0, got 1"),
         "offsets not starting at 0 are refused");
  int empty[3] = {0, 0, 0};
  TAP_OK(CALL(o, NULL, NULL, empty, 2) == MRL_EINVAL && err_has(p, "got 0 after 0"),
         "episodes without steps are refused: %s", mrl_policy_error(p));
  int hole[4] = {0, 1, 1, 2};
  TAP_OK(CALL(o, NULL, NULL, hole, 3) == MRL_EINVAL && err_has(p, "increase strictly"),
         "an empty episode between others is refused: %s", mrl_policy_error(p));
  TAP_OK(mrl_pg_gradient(p, d->obs, d->act, d->rew, NULL, NULL, d->off, d->nep, NULL, g,
                         NULL) == MRL_EINVAL && err_has(p, "NULL"),
         "NULL opts is refused");
  TAP_OK(mrl_pg_gradient(NULL, d->obs, d->act, d->rew, NULL, NULL, d->off, d->nep, &o, g,
                         NULL) == MRL_EINVAL,
         "NULL policy is refused");

  /* Non-finite inputs: refused before any work, grad_out untouched. */
  for (size_t k = 0; k < d->np; k++) g[k] = 42.0f;
  float keep = d->rew[1];
  d->rew[1] = NAN;
  TAP_OK(CALL(o, NULL, NULL, d->off, d->nep) == MRL_ENONFINITE && err_has(p, "rewards") &&
             g[0] == 42.0f,
         "a NaN reward is refused, grad_out untouched: %s", mrl_policy_error(p));
  d->rew[1] = keep;
  keep = d->blp[0];
  d->blp[0] = -INFINITY;
  o.estimator = MRL_EST_IS_PER_DECISION;
  TAP_OK(CALL(o, d->blp, NULL, d->off, d->nep) == MRL_ENONFINITE &&
             err_has(p, "behavior_logp") && g[0] == 42.0f,
         "an infinite behavior_logp is refused");
  d->blp[0] = keep;
  keep = d->val[2];
  d->val[2] = INFINITY;
  mrl_pg_opts ofv = {MRL_EST_IS_FIRST_ORDER, MRL_BASELINE_VALUE, 0.9, 0, 0, 0};
  TAP_OK(CALL(ofv, d->blp, d->val, d->off, d->nep) == MRL_ENONFINITE && err_has(p, "values"),
         "an infinite value is refused");
  d->val[2] = keep;

  /* A trajectory weight of e^2000 overflows double: refused unless clipped
  ** (the clip is applied in log space) or self-normalised. */
  float *blp2 = malloc((size_t)d->M * sizeof(float));
  for (int n = 0; n < d->M; n++) blp2[n] = (float)(d->lp[n] - 200.0);
  mrl_pg_opts ot = {MRL_EST_IS_TRAJECTORY, MRL_BASELINE_NONE, 0.9, 0, 0, 0};
  int rc = CALL(ot, blp2, NULL, d->off, d->nep);
  int longest = 0;
  for (int i = 0; i < d->nep; i++)
    if (d->off[i + 1] - d->off[i] > longest) longest = d->off[i + 1] - d->off[i];
  if (longest >= 4)
    TAP_OK(rc == MRL_ENONFINITE && err_has(p, "overflow"),
           "an overflowing importance weight is refused: %s", mrl_policy_error(p));
  ot.weight_clip = 2.0;
  mrl_pg_stats st;
  rc = mrl_pg_gradient(p, d->obs, d->act, d->rew, blp2, NULL, d->off, d->nep, &ot, g, &st);
  TAP_OK(rc == MRL_OK && mrl_all_finite(g, d->np) && tap_close(st.ess, d->nep, 1e-9, 0),
         "with weight_clip 2 every weight is 2: finite, ESS = N (%g)", st.ess);
  ot.weight_clip = 0;
  ot.self_normalize = 1;
  rc = mrl_pg_gradient(p, d->obs, d->act, d->rew, blp2, NULL, d->off, d->nep, &ot, g, &st);
  TAP_OK(rc == MRL_OK && mrl_all_finite(g, d->np) && st.ess >= 1 && st.ess <= d->nep,
         "self-normalised huge weights stay finite (ESS %g)", st.ess);
  free(blp2);
#undef CALL
  free(g);
}

int main(void) {
  data d;
  struct {
    const char *tag;
    int D, nh, hidden[2];
    mrl_action_kind kind;
    int n;
    mrl_activation act;
    int zero_col;
  } cfg[] = {
      {"cat3-lin", 4, 0, {0, 0}, MRL_DISCRETE, 3, MRL_TANH, 1},
#ifndef MRL_TEST_FAKE_POLICY
      {"cat4-h8-tanh", 3, 1, {8, 0}, MRL_DISCRETE, 4, MRL_TANH, 0},
      {"gauss2-h6x5-relu", 3, 2, {6, 5}, MRL_BOX, 2, MRL_RELU, 0},
      {"gauss1-lin", 2, 0, {0, 0}, MRL_BOX, 1, MRL_TANH, 0},
#endif
  };
  for (size_t c = 0; c < sizeof cfg / sizeof cfg[0]; c++) {
    mrl_policy *p = make_policy(cfg[c].D, cfg[c].hidden, cfg[c].nh, cfg[c].kind, cfg[c].n,
                                cfg[c].act);
    TAP_OK(p != NULL, "%s: policy created", cfg[c].tag);
    if (!p) continue;
    TAP_OK(make_data(&d, p, 6, 9, 0.25, cfg[c].zero_col) == MRL_OK, "%s: data", cfg[c].tag);
    all_cases(&d, cfg[c].tag);
    collapse(&d, cfg[c].tag);
    if (c == 0) {
      data_free(&d);
      make_data(&d, p, 5, 7, 0.25, 0);
      error_cases(&d);
    }
    data_free(&d);
    mrl_policy_free(p);
  }
  return tap_done();
}
