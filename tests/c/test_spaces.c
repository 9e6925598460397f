/* test_spaces.c — action spaces: the masked categorical and Bernoulli rows
** of dist.h (hand values, central differences, mask edge cases, draws that
** never pick a masked entry) and composite / masked policies through the
** public API (log π as the sum of its parts, gradients and the Fisher
** product against central differences, the errors). */
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "dist.h"
#include "moonrl.h"
#include "tap.h"

/* ------------------------------------------------- masked categorical */

static const float Z[5] = {0.3f, -1.2f, 2.0f, 0.0f, -0.4f};
static const float Z2[5] = {-0.5f, 0.7f, 1.1f, 0.2f, -1.0f};
static const float M[5] = {1, 0, 1, 1, 0};

typedef double (*row_fn)(const float *z, void *ctx);

/* ∂f/∂z_j by central differences on the float inputs (the rounded step). */
static double fd(row_fn f, float *z, int j, void *ctx) {
  const double h = 1e-3;
  float z0 = z[j], zp = (float)(z0 + h), zm = (float)(z0 - h);
  z[j] = zp;
  double fp = f(z, ctx);
  z[j] = zm;
  double fm = f(z, ctx);
  z[j] = z0;
  return (fp - fm) / ((double)zp - (double)zm);
}

static double m_logp(const float *z, void *ctx) { return dist_catm_logp(z, M, 5, *(int *)ctx); }
static double m_entropy(const float *z, void *ctx) { (void)ctx; return dist_catm_entropy(z, M, 5); }
static double m_kl(const float *z, void *ctx) { return dist_catm_kl((const float *)ctx, z, M, 5); }

static void test_masked_values(void) {
  const double lse = log(exp(0.3) + exp(2.0) + exp(0.0));
  TAP_OK(tap_close(dist_catm_logp(Z, M, 5, 2), 2.0 - lse, 1e-6, 1e-7),
         "masked logp renormalises over the valid entries");
  TAP_OK(dist_catm_logp(Z, M, 5, 1) == -INFINITY, "a masked action has log p = -inf");
  double h = 0.0, kl = 0.0;
  const int valid[3] = {0, 2, 3};
  const double lse2 = log(exp((double)Z2[0]) + exp((double)Z2[2]) + exp((double)Z2[3]));
  for (int i = 0; i < 3; i++) {
    int j = valid[i];
    double lp = Z[j] - lse, lq = Z2[j] - lse2;
    h -= exp(lp) * lp;
    kl += exp(lp) * (lp - lq);
  }
  TAP_OK(tap_close(dist_catm_entropy(Z, M, 5), h, 1e-6, 0), "masked entropy by hand");
  TAP_OK(tap_close(dist_catm_kl(Z, Z2, M, 5), kl, 1e-6, 0), "masked KL by hand");
  double lp[5], p[5];
  double hr = dist_catm_row(Z, M, 5, lp, p);
  TAP_OK(tap_close(hr, h, 1e-6, 0) && p[1] == 0.0 && p[4] == 0.0 && lp[4] == -INFINITY &&
             tap_close(p[0] + p[2] + p[3], 1.0, 0, 1e-14),
         "masked row: p 0 where masked, sums to 1");
  const float ones[5] = {1, 1, 1, 1, 1};
  TAP_OK(dist_catm_logp(Z, ones, 5, 2) == dist_cat_logp(Z, 5, 2) &&
             dist_catm_entropy(Z, ones, 5) == dist_cat_entropy(Z, 5),
         "an all-valid mask is the plain categorical, bit for bit");

  /* one valid action: probability 1 whatever the logits */
  const float one[5] = {0, 0, 0, 1, 0}, wild[5] = {90.f, -3.f, 55.f, -80.f, 7.f};
  TAP_OK(dist_catm_logp(wild, one, 5, 3) == 0.0 && dist_catm_entropy(wild, one, 5) == 0.0 &&
             dist_catm_kl(wild, Z, one, 5) == 0.0,
         "single valid action: logp 0, entropy 0, KL 0 exactly");
  TAP_OK(dist_catm_count(one, 5) == 1 && dist_catm_count(M, 5) == 3, "valid counts");
  TAP_OK(dist_catm_mode(wild, M, 5) == 0 && dist_catm_mode(Z, M, 5) == 2 &&
             dist_catm_mode(wild, one, 5) == 3,
         "the mode is the largest valid logit");
}

static void test_masked_derivatives(void) {
  float z[5];
  memcpy(z, Z, sizeof z);
  int a = 3;
  double d[5] = {0}, e[5] = {0}, k[5] = {0};
  dist_catm_dlogp_add(z, M, 5, a, 1.0, d);
  dist_catm_dentropy_add(z, M, 5, 1.0, e);
  dist_catm_dkl_add(Z2, z, M, 5, 1.0, k);
  double worst = 0.0;
  for (int j = 0; j < 5; j++) {
    if (!M[j]) continue;
    worst = fmax(worst, fabs(d[j] - fd(m_logp, z, j, &a)));
    worst = fmax(worst, fabs(e[j] - fd(m_entropy, z, j, NULL)));
    worst = fmax(worst, fabs(k[j] - fd(m_kl, z, j, (void *)Z2)));
  }
  TAP_OK(worst < 1e-5, "masked dlogp, dentropy, dkl match central differences (worst %.2e)",
         worst);
  TAP_OK(d[1] == 0 && d[4] == 0 && e[1] == 0 && e[4] == 0 && k[1] == 0 && k[4] == 0,
         "masked entries get no derivative (no NaN from 0 * -inf)");

  /* Fisher: the Jacobian of ∂KL(old‖new)/∂new at new = old, along v */
  const float v[5] = {0.4f, -0.3f, 1.0f, -0.7f, 2.0f};
  double fv[5] = {0};
  dist_catm_fisher_add(Z, M, 5, v, 1.0, fv);
  const double h = 1e-3;
  float zp[5], zm[5];
  for (int j = 0; j < 5; j++) {
    zp[j] = (float)(Z[j] + h * v[j]);
    zm[j] = (float)(Z[j] - h * v[j]);
  }
  double gp[5] = {0}, gm[5] = {0};
  dist_catm_dkl_add(Z, zp, M, 5, 1.0, gp);
  dist_catm_dkl_add(Z, zm, M, 5, 1.0, gm);
  worst = 0.0;
  for (int j = 0; j < 5; j++) worst = fmax(worst, fabs(fv[j] - (gp[j] - gm[j]) / (2 * h)));
  TAP_OK(worst < 1e-4 && fv[1] == 0 && fv[4] == 0,
         "masked Fisher product = the KL Hessian along v (worst %.2e)", worst);
}

static void test_masked_sampling(void) {
  /* the valid entries' logits far below the masked ones */
  const float z[4] = {100.f, -100.f, 100.f, -100.f};
  const float m[4] = {0, 1, 0, 1};
  int bad = 0, count[4] = {0};
  const double us[4] = {0.0, 0.5, 0.9999999999999999, nextafter(1.0, 0.0)};
  double e[4];
  for (int i = 0; i < 4; i++) bad += (dist_catm_sample_logp(z, m, 4, us[i], NULL, e) % 2) == 0;
  /* many uniform draws, a deterministic grid */
  for (int i = 0; i < 20000; i++) {
    double u = (i + 0.5) / 20000.0, lp;
    int a = dist_catm_sample_logp(z, m, 4, u, &lp, e);
    count[a]++;
    if (!m[a] || !(fabs(lp - log(0.5)) < 1e-6)) bad++; /* a float log for few actions */
  }
  TAP_OK(bad == 0 && count[0] == 0 && count[2] == 0,
         "masked entries with +100 logits never drawn, ties and u near 1 included");
  TAP_OK(abs(count[1] - count[3]) < 20, "the two valid entries split the draws (%d / %d)",
         count[1], count[3]);
  const float only[4] = {0, 0, 1, 0}, zz[4] = {50.f, 50.f, -50.f, 50.f};
  int all = 1;
  for (int i = 0; i < 1000; i++)
    all &= dist_catm_sample_logp(zz, only, 4, i / 1000.0, NULL, e) == 2;
  TAP_OK(all, "one valid action is always drawn");

  /* more than 16 actions: the double path */
  float zb[20], mb[20];
  double eb[20];
  for (int j = 0; j < 20; j++) {
    zb[j] = j % 3 ? 100.f : -100.f;
    mb[j] = j % 3 ? 0.f : 1.f;
  }
  int badb = 0, seen = 0;
  for (int i = 0; i < 5000; i++) {
    double lp;
    int a = dist_catm_sample_logp(zb, mb, 20, (i + 0.5) / 5000.0, &lp, eb);
    badb += !mb[a] || !(fabs(lp + log(7.0)) < 1e-12);
    seen |= 1 << (a / 3);
  }
  TAP_OK(badb == 0 && seen == 0x7f, "20 actions: only the 7 valid ones drawn, each p = 1/7");
}

/* ------------------------------------------------------------ bernoulli */

static double b_logp(const float *l, void *ctx) { return dist_bern_logp(l, (const float *)ctx, 4); }
static double b_entropy(const float *l, void *ctx) { (void)ctx; return dist_bern_entropy(l, 4); }
static double b_kl(const float *l, void *ctx) { return dist_bern_kl((const float *)ctx, l, 4); }

static void test_bernoulli(void) {
  TAP_OK(tap_close(dist_log_sigmoid(100.0), -exp(-100.0), 1e-12, 0) &&
             tap_close(dist_log_sigmoid(-100.0), -100.0 - exp(-100.0), 1e-15, 0) &&
             tap_close(dist_log_sigmoid(0.0), -log(2.0), 1e-15, 0),
         "log sigmoid keeps both sides at |x| = 100");
  const float l[4] = {0.5f, -2.0f, 100.0f, -100.0f}, a[4] = {1, 0, 0, 1};
  double want = -log1p(exp(-0.5)) - log1p(exp(-2.0)) + (-100.0 - exp(-100.0)) +
                (-100.0 - exp(-100.0));
  TAP_OK(tap_close(dist_bern_logp(l, a, 4), want, 1e-14, 0), "bernoulli logp by hand, |l| = 100");
  double h = 0.0;
  for (int j = 0; j < 2; j++) {
    double s = 1 / (1 + exp(-(double)l[j]));
    h -= s * log(s) + (1 - s) * log(1 - s);
  }
  h += 2 * (101.0 * exp(-100.0)); /* the two saturated bits, to first order */
  TAP_OK(tap_close(dist_bern_entropy(l, 4), h, 1e-12, 0), "bernoulli entropy by hand");
  const float lo[4] = {0.3f, -0.7f, 1.5f, 0.0f}, ln[4] = {-0.2f, 0.4f, 1.0f, 2.0f};
  double kl = 0.0;
  for (int j = 0; j < 4; j++) {
    double p = 1 / (1 + exp(-(double)lo[j])), q = 1 / (1 + exp(-(double)ln[j]));
    kl += p * log(p / q) + (1 - p) * log((1 - p) / (1 - q));
  }
  TAP_OK(tap_close(dist_bern_kl(lo, ln, 4), kl, 1e-12, 0) && dist_bern_kl(lo, lo, 4) == 0.0,
         "bernoulli KL by hand, 0 against itself");

  float x[4] = {0.3f, -0.7f, 1.5f, 0.0f};
  double d[4] = {0}, e[4] = {0}, k[4] = {0}, fv[4] = {0};
  dist_bern_dlogp_add(x, a, 4, 1.0, d);
  dist_bern_dentropy_add(x, 4, 1.0, e);
  dist_bern_dkl_add(ln, x, 4, 1.0, k);
  double worst = 0.0;
  for (int j = 0; j < 4; j++) {
    worst = fmax(worst, fabs(d[j] - fd(b_logp, x, j, (void *)a)));
    worst = fmax(worst, fabs(e[j] - fd(b_entropy, x, j, NULL)));
    worst = fmax(worst, fabs(k[j] - fd(b_kl, x, j, (void *)ln)));
  }
  TAP_OK(worst < 1e-5, "bernoulli derivatives match central differences (worst %.2e)", worst);
  const float v[4] = {1.0f, -0.5f, 0.25f, 2.0f};
  dist_bern_fisher_add(x, 4, v, 1.0, fv);
  worst = 0.0;
  for (int j = 0; j < 4; j++) {
    double s = 1 / (1 + exp(-(double)x[j]));
    worst = fmax(worst, fabs(fv[j] - s * (1 - s) * v[j]));
  }
  TAP_OK(worst < 1e-15, "bernoulli Fisher = σ(1−σ)·v");
  float bits[4];
  const double u[4] = {1e-30, 0.999999, 0.5, 0.5};
  const float sat[4] = {-100.f, 100.f, 0.1f, -0.1f};
  double lp = dist_bern_sample(sat, 4, u, bits);
  TAP_OK(bits[0] == 0 && bits[1] == 1 && bits[2] == 1 && bits[3] == 0 &&
             tap_close(lp, dist_bern_logp(sat, bits, 4), 1e-15, 0),
         "bernoulli draws: u < σ(l) is a 1, logp of the draw");
}

/* ----------------------------------------------------- policies */

enum { D = 3 };

/* A hybrid policy [categorical 3, gaussian 2, bernoulli 2], one hidden layer. */
static mrl_policy *make_hybrid(void) {
  static const int hidden[1] = {6};
  static const mrl_action_part parts[3] = {
      {MRL_PART_CATEGORICAL, 3}, {MRL_PART_GAUSSIAN, 2}, {MRL_PART_BERNOULLI, 2}};
  mrl_policy_spec s = mrl_policy_spec_default();
  s.obs_dim = D;
  s.hidden = hidden;
  s.nhidden = 1;
  s.action_kind = MRL_COMPOSITE;
  s.parts = parts;
  s.nparts = 3;
  s.out_gain = 1.0;
  s.init_log_std = -0.3;
  s.seed = 11;
  mrl_policy *p = NULL;
  return mrl_policy_new(&p, &s) == MRL_OK ? p : NULL;
}

static mrl_policy *make_md(int linear) {
  static const int hidden[1] = {5};
  static const mrl_action_part parts[2] = {{MRL_PART_CATEGORICAL, 4}, {MRL_PART_CATEGORICAL, 3}};
  mrl_policy_spec s = mrl_policy_spec_default();
  s.obs_dim = D;
  s.hidden = hidden;
  s.nhidden = linear ? 0 : 1;
  s.action_kind = MRL_COMPOSITE;
  s.parts = parts;
  s.nparts = 2;
  s.out_gain = 1.0;
  s.seed = 5;
  mrl_policy *p = NULL;
  return mrl_policy_new(&p, &s) == MRL_OK ? p : NULL;
}

static const float OBS[4 * D] = {0.1f, -0.5f, 0.9f, 1.2f, 0.3f, -0.7f,
                                 -0.4f, 0.8f, 0.2f, 0.6f, -1.1f, 0.05f};
/* hybrid rows: index, 2 gaussian values, 2 bits */
static const float HACT[4 * 5] = {2, 0.3f, -0.1f, 1, 0, 0, -1.2f, 0.4f, 0, 0,
                                  1, 0.0f, 0.9f, 1, 1, 2, 0.5f, 0.5f, 0, 1};

static void test_hybrid_layout(void) {
  mrl_policy *p = make_hybrid();
  TAP_OK(p != NULL, "a hybrid policy is created");
  if (!p) return;
  mrl_action_part q = mrl_policy_part(p, 2);
  TAP_OK(mrl_policy_out_dim(p) == 7 && mrl_policy_action_width(p) == 5 &&
             mrl_policy_nparts(p) == 3 && q.type == MRL_PART_BERNOULLI && q.n == 2 &&
             !mrl_policy_maskable(p) &&
             mrl_policy_nparams(p) == (size_t)(6 * D + 6 + 7 * 6 + 7 + 2),
         "outputs 3+2+2, action width 1+2+2, one log_std per gaussian dimension");
  /* log π is the sum over the parts, at the forward outputs */
  float out[4 * 7], lp[4], ent[4];
  mrl_policy_forward(p, NULL, OBS, 4, out);
  int rc = mrl_policy_evaluate(p, NULL, OBS, HACT, 4, lp, ent);
  const float *ls = mrl_policy_params(p) + mrl_policy_nparams(p) - 2;
  double worst = 0.0, went = 0.0;
  for (int i = 0; i < 4; i++) {
    const float *z = out + 7 * i, *a = HACT + 5 * i;
    double want = dist_cat_logp(z, 3, (int)a[0]) + dist_gauss_logp(z + 3, ls, a + 1, 2) +
                  dist_bern_logp(z + 5, a + 3, 2);
    double h = dist_cat_entropy(z, 3) + dist_gauss_entropy(ls, 2) + dist_bern_entropy(z + 5, 2);
    worst = fmax(worst, fabs(lp[i] - want));
    went = fmax(went, fabs(ent[i] - h));
  }
  TAP_OK(rc == MRL_OK && worst < 1e-5 && went < 1e-5,
         "hybrid logp and entropy = the sums over the parts (%.1e, %.1e)", worst, went);

  /* act: a draw, then evaluate reproduces its logp; the bits are 0/1 */
  float acts[4 * 5], alp[4], elp[4];
  rc = mrl_policy_act(p, OBS, 4, 0, acts, alp);
  int ok = rc == MRL_OK && mrl_policy_evaluate(p, NULL, OBS, acts, 4, elp, NULL) == MRL_OK;
  for (int i = 0; ok && i < 4; i++) {
    const float *a = acts + 5 * i;
    ok = a[0] >= 0 && a[0] < 3 && a[0] == floorf(a[0]) && (a[3] == 0 || a[3] == 1) &&
         (a[4] == 0 || a[4] == 1) && fabsf(alp[i] - elp[i]) < 1e-4f;
  }
  TAP_OK(ok, "hybrid act: valid parts, logp equals evaluate's");
  rc = mrl_policy_act(p, OBS, 1, 1, acts, alp);
  /* (batch 1 and batch 4 forwards may differ in the last bits) */
  TAP_OK(rc == MRL_OK && fabsf(acts[1] - out[3]) < 1e-6f && fabsf(acts[2] - out[4]) < 1e-6f &&
             acts[3] == (out[5] > 0) && acts[4] == (out[6] > 0) &&
             acts[0] == (float)dist_cat_mode(out, 3),
         "hybrid deterministic act: mode, mean, l > 0");

  /* clone: the same draws */
  mrl_policy *c = NULL;
  float a1[4 * 5], a2[4 * 5];
  mrl_policy_clone(&c, p);
  mrl_policy_act(p, OBS, 4, 0, a1, NULL);
  mrl_policy_act(c, OBS, 4, 0, a2, NULL);
  TAP_OK(c && memcmp(a1, a2, sizeof a1) == 0 && mrl_policy_nparts(c) == 3,
         "a clone of a hybrid policy draws the same bits");
  mrl_policy_free(c);

  float badact[5] = {1, 0.f, 0.f, 0.5f, 0};
  rc = mrl_policy_evaluate(p, NULL, OBS, badact, 1, lp, NULL);
  TAP_OK(rc == MRL_EINVAL && strstr(mrl_policy_error(p), "bit"),
         "a bit that is not 0/1 is refused (%s)", mrl_policy_error(p));
  float mask[7] = {1, 1, 1, 1, 1, 1, 1};
  rc = mrl_policy_evaluate_masked(p, NULL, OBS, mask, HACT, 1, lp, NULL);
  TAP_OK(rc == MRL_EINVAL && strstr(mrl_policy_error(p), "categorical"),
         "masks for a hybrid action are refused (%s)", mrl_policy_error(p));
  mrl_policy_free(p);
}

/* ∇ by central differences of a scalar function of the parameters. */
typedef double (*param_fn)(mrl_policy *p, void *ctx);

static double fd_param(mrl_policy *p, size_t i, param_fn f, void *ctx) {
  float *th = mrl_policy_params(p);
  const double h = 1e-2;
  float x0 = th[i], xp = (float)(x0 + h), xm = (float)(x0 - h);
  th[i] = xp;
  double fp = f(p, ctx);
  th[i] = xm;
  double fm = f(p, ctx);
  th[i] = x0;
  return (fp - fm) / ((double)xp - (double)xm);
}

/* Max |grad − fd| / (1 + |fd|) over every parameter. */
static double check_grad(mrl_policy *p, const float *grad, param_fn f, void *ctx) {
  size_t n = mrl_policy_nparams(p);
  double worst = 0.0;
  for (size_t i = 0; i < n; i++) {
    double g = fd_param(p, i, f, ctx);
    worst = fmax(worst, fabs(grad[i] - g) / (1.0 + fabs(g)));
  }
  return worst;
}

typedef struct loss_ctx {
  const float *masks, *actions, *w, *old_logp, *adv, *params_old;
  int batch;
} loss_ctx;

static double f_wlogp(mrl_policy *p, void *v) {
  loss_ctx *c = v;
  double obj = 0.0;
  float lp[4];
  mrl_policy_evaluate_masked(p, NULL, OBS, c->masks, c->actions, c->batch, lp, NULL);
  for (int i = 0; i < c->batch; i++) obj += c->w[i] * (double)lp[i];
  return obj;
}

static double f_ppo(mrl_policy *p, void *v) {
  loss_ctx *c = v;
  mrl_ppo_opts o = mrl_ppo_opts_default();
  o.ent_coef = 0.05;
  mrl_ppo_stats s;
  float *g = malloc(mrl_policy_nparams(p) * sizeof(float));
  memcpy(g, mrl_policy_grad(p), mrl_policy_nparams(p) * sizeof(float));
  mrl_policy_ppo_loss_masked(p, OBS, c->masks, c->actions, c->old_logp, c->adv, c->batch, &o, &s);
  memcpy(mrl_policy_grad(p), g, mrl_policy_nparams(p) * sizeof(float));
  free(g);
  return s.loss;
}

static double f_klpen(mrl_policy *p, void *v) {
  loss_ctx *c = v;
  double loss = 0.0;
  float *g = malloc(mrl_policy_nparams(p) * sizeof(float));
  memcpy(g, mrl_policy_grad(p), mrl_policy_nparams(p) * sizeof(float));
  mrl_policy_kl_penalty_loss_masked(p, c->params_old, OBS, c->masks, c->actions, c->old_logp,
                                    c->adv, c->batch, 0.7, &loss, NULL);
  memcpy(mrl_policy_grad(p), g, mrl_policy_nparams(p) * sizeof(float));
  free(g);
  return loss;
}

static void test_policy_gradients(const char *what, mrl_policy *p, const float *masks,
                                  const float *actions) {
  const size_t n = mrl_policy_nparams(p);
  const float w[4] = {0.5f, -1.0f, 2.0f, 0.3f}, adv[4] = {1.0f, -0.5f, 0.8f, -1.2f};
  float old_logp[4], *grad = malloc(n * sizeof(float)), *old = malloc(n * sizeof(float));
  mrl_policy_evaluate_masked(p, NULL, OBS, masks, actions, 4, old_logp, NULL);
  for (int i = 0; i < 4; i++) old_logp[i] += 0.05f * (float)(i - 1); /* ρ near 1, unclipped */
  memcpy(old, mrl_policy_params(p), n * sizeof(float));
  for (size_t i = 0; i < n; i++) old[i] += 0.05f * (float)sin((double)i);
  loss_ctx c = {masks, actions, w, old_logp, adv, old, 4};

  double obj;
  int rc = mrl_policy_grad_weighted_logp_masked(p, OBS, masks, actions, w, 4, 1.0, &obj);
  memcpy(grad, mrl_policy_grad(p), n * sizeof(float));
  double e = check_grad(p, grad, f_wlogp, &c);
  TAP_OK(rc == MRL_OK && tap_close(obj, f_wlogp(p, &c), 1e-5, 1e-6) && e < 2e-3,
         "%s: ∇ Σ w log π matches central differences (%.1e)", what, e);

  mrl_ppo_opts o = mrl_ppo_opts_default();
  o.ent_coef = 0.05;
  mrl_ppo_stats s;
  rc = mrl_policy_ppo_loss_masked(p, OBS, masks, actions, old_logp, adv, 4, &o, &s);
  memcpy(grad, mrl_policy_grad(p), n * sizeof(float));
  e = check_grad(p, grad, f_ppo, &c);
  TAP_OK(rc == MRL_OK && e < 2e-3, "%s: PPO clip loss gradient (entropy bonus on) (%.1e)", what, e);

  double loss;
  rc = mrl_policy_kl_penalty_loss_masked(p, old, OBS, masks, actions, old_logp, adv, 4, 0.7,
                                         &loss, NULL);
  memcpy(grad, mrl_policy_grad(p), n * sizeof(float));
  e = check_grad(p, grad, f_klpen, &c);
  TAP_OK(rc == MRL_OK && e < 2e-3, "%s: KL-penalty loss gradient (%.1e)", what, e);

  /* Fisher product: the directional derivative of ∇ mean KL(θ_fixed‖θ) */
  float *v = malloc(n * sizeof(float)), *fv = malloc(n * sizeof(float));
  float *gp = malloc(n * sizeof(float)), *th0 = malloc(n * sizeof(float));
  for (size_t i = 0; i < n; i++) v[i] = (float)cos(0.7 * (double)i);
  rc = mrl_policy_fvp_masked(p, MRL_FISHER_ANALYTIC, OBS, masks, NULL, 4, v, 0.0, fv);
  memcpy(th0, mrl_policy_params(p), n * sizeof(float));
  const double h = 1e-2;
  float *th = mrl_policy_params(p);
  const float zero[4] = {0, 0, 0, 0};
  for (size_t i = 0; i < n; i++) th[i] = (float)(th0[i] + h * v[i]);
  mrl_policy_kl_penalty_loss_masked(p, th0, OBS, masks, actions, old_logp, zero, 4, 1.0, &loss,
                                    NULL);
  memcpy(gp, mrl_policy_grad(p), n * sizeof(float));
  for (size_t i = 0; i < n; i++) th[i] = (float)(th0[i] - h * v[i]);
  mrl_policy_kl_penalty_loss_masked(p, th0, OBS, masks, actions, old_logp, zero, 4, 1.0, &loss,
                                    NULL);
  memcpy(th, th0, n * sizeof(float));
  double worst = 0.0, scale = 0.0;
  for (size_t i = 0; i < n; i++) {
    double want = ((double)gp[i] - (double)mrl_policy_grad(p)[i]) / (2 * h);
    worst = fmax(worst, fabs(fv[i] - want));
    scale = fmax(scale, fabs(want));
  }
  TAP_OK(rc == MRL_OK && worst < 2e-3 * (1 + scale),
         "%s: Fisher-vector product = the KL Hessian along v (%.1e of %.1e)", what, worst, scale);
  free(v); free(fv); free(gp); free(th0);
  free(grad);
  free(old);
}

static void test_masked_policy(void) {
  mrl_policy *p = make_md(0);
  TAP_OK(p && mrl_policy_maskable(p) && mrl_policy_out_dim(p) == 7 &&
             mrl_policy_action_width(p) == 2,
         "multi-discrete [4, 3]: 7 outputs, 2 action floats, maskable");
  if (!p) return;
  const float masks[4 * 7] = {1, 0, 1, 1, 0, 1, 1, /**/ 0, 0, 0, 1, 1, 1, 1,
                              1, 1, 1, 1, 1, 0, 0, /**/ 0, 1, 1, 0, 1, 0, 1};
  const float acts[4 * 2] = {2, 2, 3, 0, 1, 0, 2, 0};
  float lp[4], ent[4], out[4 * 7];
  mrl_policy_forward(p, NULL, OBS, 4, out);
  int rc = mrl_policy_evaluate_masked(p, NULL, OBS, masks, acts, 4, lp, ent);
  double worst = 0.0;
  for (int i = 0; i < 4; i++) {
    const float *z = out + 7 * i, *m = masks + 7 * i;
    double want = dist_catm_logp(z, m, 4, (int)acts[2 * i]) +
                  dist_catm_logp(z + 4, m + 4, 3, (int)acts[2 * i + 1]);
    worst = fmax(worst, fabs(lp[i] - want));
  }
  TAP_OK(rc == MRL_OK && worst < 1e-6, "masked multi-discrete logp: the masked parts' sum");
  TAP_OK(lp[1] == (float)dist_catm_logp(out + 11, masks + 11, 3, 0) &&
             fabsf(ent[1] - (float)dist_catm_entropy(out + 11, masks + 11, 3)) < 1e-6f &&
             fabsf(ent[2] - (float)dist_cat_entropy(out + 14, 4)) < 1e-6f,
         "a part with one valid action adds 0 to logp and entropy");
  test_policy_gradients("masked multi-discrete", p, masks, acts);

  /* errors */
  float bad[7] = {0, 0, 0, 0, 1, 1, 1};
  rc = mrl_policy_evaluate_masked(p, NULL, OBS, bad, acts, 1, lp, NULL);
  TAP_OK(rc == MRL_EINVAL && strstr(mrl_policy_error(p), "row 0") &&
             strstr(mrl_policy_error(p), "part 1"),
         "an all-masked part is a clear error (%s)", mrl_policy_error(p));
  float a1[2];
  rc = mrl_policy_act_masked(p, OBS, bad, 1, 0, a1, NULL);
  TAP_OK(rc == MRL_EINVAL, "act refuses an all-masked part too");
  float half[7] = {1, 0.5f, 1, 1, 1, 1, 1};
  rc = mrl_policy_evaluate_masked(p, NULL, OBS, half, acts, 1, lp, NULL);
  TAP_OK(rc == MRL_EINVAL && strstr(mrl_policy_error(p), "0.5"),
         "a mask value other than 0/1 is refused (%s)", mrl_policy_error(p));
  const float forbid[2] = {1, 0};
  rc = mrl_policy_evaluate_masked(p, NULL, OBS, masks, forbid, 1, lp, NULL);
  TAP_OK(rc == MRL_EINVAL && strstr(mrl_policy_error(p), "forbids"),
         "evaluating a forbidden action is refused (%s)", mrl_policy_error(p));
  mrl_policy_free(p);
}

static void test_masked_draws(void) {
  /* a linear policy whose logits are its biases: +100 on the masked entries */
  mrl_policy *p = make_md(1);
  if (!p) return;
  float *th = mrl_policy_params(p);
  size_t nnet = mrl_policy_nparams(p);
  memset(th, 0, nnet * sizeof(float));
  const float bias[7] = {100, -100, 100, -100, 100, 100, -100};
  memcpy(th + 7 * D, bias, sizeof bias);
  enum { B = 5000 };
  float *obs = calloc((size_t)B * D, sizeof(float)), *m = malloc((size_t)B * 7 * sizeof(float));
  float *a = malloc((size_t)B * 2 * sizeof(float)), *lp = malloc(B * sizeof(float));
  const float row[7] = {0, 1, 0, 1, 0, 0, 1};
  for (int i = 0; i < B; i++) memcpy(m + 7 * i, row, sizeof row);
  int rc = mrl_policy_act_masked(p, obs, m, B, 0, a, lp);
  int bad = 0, c1 = 0;
  for (int i = 0; i < B; i++) {
    bad += !row[(int)a[2 * i]] || (int)a[2 * i + 1] != 2 || !(fabsf(lp[i] - logf(0.5f)) < 1e-5f);
    c1 += a[2 * i] == 1;
  }
  TAP_OK(rc == MRL_OK && bad == 0, "%d masked draws with +100 logits on the masked entries: "
         "none picks one", B);
  TAP_OK(c1 > B / 2 - 200 && c1 < B / 2 + 200, "the two valid entries share the draws (%d)", c1);
  rc = mrl_policy_act_masked(p, obs, m, 3, 1, a, lp);
  TAP_OK(rc == MRL_OK && a[0] == 1 && a[1] == 2, "deterministic: the best valid entry");
  free(obs); free(m); free(a); free(lp);
  mrl_policy_free(p);
}

static void test_masked_categorical(void) {
  /* a plain discrete policy takes masks through the general path */
  static const int hidden[1] = {4};
  mrl_policy_spec s = mrl_policy_spec_default();
  s.obs_dim = D;
  s.hidden = hidden;
  s.nhidden = 1;
  s.action_n = 4;
  s.out_gain = 1.0;
  mrl_policy *p = NULL;
  mrl_policy_new(&p, &s);
  const float masks[4 * 4] = {1, 1, 1, 1, 1, 0, 1, 0, 0, 0, 1, 0, 0, 1, 1, 1};
  const float acts[4] = {3, 2, 2, 1};
  float lp[4], lp1[4], out[16];
  mrl_policy_forward(p, NULL, OBS, 4, out);
  mrl_policy_evaluate_masked(p, NULL, OBS, masks, acts, 4, lp, NULL);
  mrl_policy_evaluate(p, NULL, OBS, acts, 1, lp1, NULL);
  TAP_OK(lp[0] == lp1[0] && lp[2] == 0.0f &&
             fabsf(lp[1] - (float)dist_catm_logp(out + 4, masks + 4, 4, 2)) < 1e-7f,
         "masked discrete policy: an all-ones row equals the plain path, one valid is 0");
  test_policy_gradients("masked categorical", p, masks, acts);
  mrl_policy_free(p);
}

static void test_hybrid_gradients(void) {
  mrl_policy *p = make_hybrid();
  if (!p) return;
  test_policy_gradients("hybrid", p, NULL, HACT);
  mrl_policy_free(p);
}

/* The trainers' other entry points take a composite policy: the empirical
** Fisher is (1/N) Σ g_n g_nᵀ v with g_n = ∇ log π(a_n|s_n), REINFORCE is
** the weighted-logp gradient, TRPO keeps its step inside max_kl. */
static void test_hybrid_trainers(void) {
  mrl_policy *p = make_hybrid();
  if (!p) return;
  const size_t n = mrl_policy_nparams(p);
  float *v = malloc(n * sizeof(float)), *fv = malloc(n * sizeof(float));
  double *want = calloc(n, sizeof(double));
  for (size_t i = 0; i < n; i++) v[i] = (float)sin(0.3 * (double)i + 0.1);
  int rc = mrl_policy_fvp(p, MRL_FISHER_EMPIRICAL, OBS, HACT, 4, v, 0.0, fv);
  for (int r = 0; r < 4; r++) {
    const float one = 1.0f;
    mrl_policy_grad_weighted_logp(p, OBS + r * D, HACT + r * 5, &one, 1, 1.0, NULL);
    const float *g = mrl_policy_grad(p);
    double gv = 0.0;
    for (size_t i = 0; i < n; i++) gv += (double)g[i] * v[i];
    for (size_t i = 0; i < n; i++) want[i] += gv * g[i] / 4.0;
  }
  double worst = 0.0, scale = 0.0;
  for (size_t i = 0; i < n; i++) {
    worst = fmax(worst, fabs(fv[i] - want[i]));
    scale = fmax(scale, fabs(want[i]));
  }
  TAP_OK(rc == MRL_OK && worst < 1e-4 * (1 + scale),
         "hybrid empirical Fisher = mean g gᵀ v (%.1e of %.1e)", worst, scale);

  const float rewards[4] = {1.0f, 0.5f, -1.0f, 2.0f};
  const int offs[3] = {0, 2, 4};
  mrl_pg_opts o = mrl_pg_opts_default();
  o.estimator = MRL_EST_REINFORCE;
  o.gamma = 1.0;
  float *g = malloc(n * sizeof(float));
  rc = mrl_pg_gradient(p, OBS, HACT, rewards, NULL, NULL, offs, 2, &o, g, NULL);
  const float w[4] = {0.75f, 0.75f, 0.5f, 0.5f}; /* (R_i)/N per step of episode i */
  mrl_policy_grad_weighted_logp(p, OBS, HACT, w, 4, 1.0, NULL);
  worst = 0.0;
  for (size_t i = 0; i < n; i++) worst = fmax(worst, fabs(g[i] - mrl_policy_grad(p)[i]));
  TAP_OK(rc == MRL_OK && worst < 1e-6, "hybrid REINFORCE gradient (%.1e)", worst);

  float lp[4];
  const float adv[4] = {1.0f, -0.5f, 0.8f, -1.2f};
  mrl_policy_evaluate(p, NULL, OBS, HACT, 4, lp, NULL);
  mrl_trpo_opts to = mrl_trpo_opts_default();
  mrl_trpo_result tr;
  rc = mrl_policy_trpo_step(p, OBS, HACT, lp, adv, 4, &to, &tr);
  TAP_OK(rc == MRL_OK && tr.accepted_j >= 0 && tr.mean_kl <= to.max_kl && tr.improvement > 0,
         "hybrid TRPO step: accepted at j = %d, KL %.4g <= %.3g, improvement %.3g", tr.accepted_j,
         tr.mean_kl, to.max_kl, tr.improvement);
  free(v); free(fv); free(want); free(g);
  mrl_policy_free(p);
}

/* The trust-region calls and the estimators with masks. */
static void test_masked_trainers(void) {
  mrl_policy *p = make_md(0);
  if (!p) return;
  const size_t n = mrl_policy_nparams(p);
  const float masks[4 * 7] = {1, 0, 1, 1, 0, 1, 1, /**/ 0, 0, 0, 1, 1, 1, 1,
                              1, 1, 1, 1, 1, 0, 0, /**/ 0, 1, 1, 0, 1, 0, 1};
  const float acts[4 * 2] = {2, 2, 3, 0, 1, 0, 2, 0};
  float *g = malloc(n * sizeof(float)), *x = malloc(n * sizeof(float));
  float *ax = malloc(n * sizeof(float));
  for (size_t i = 0; i < n; i++) g[i] = (float)cos(0.37 * (double)i);
  double xAx;
  int rc = mrl_policy_cg_masked(p, MRL_FISHER_ANALYTIC, OBS, masks, NULL, 4, g, 0.1, 200, x,
                                &xAx);
  mrl_policy_fvp_masked(p, MRL_FISHER_ANALYTIC, OBS, masks, NULL, 4, x, 0.1, ax);
  double worst = 0.0;
  for (size_t i = 0; i < n; i++) worst = fmax(worst, fabs(ax[i] - g[i]));
  TAP_OK(rc == MRL_OK && worst < 1e-2, "masked CG solves (F + 0.1 I) x = g (residual %.1e)",
         worst);

  const float rewards[4] = {1.0f, 0.5f, -1.0f, 2.0f};
  const int offs[3] = {0, 2, 4};
  mrl_pg_opts o = mrl_pg_opts_default();
  o.gamma = 1.0;
  rc = mrl_pg_gradient_masked(p, OBS, masks, acts, rewards, NULL, NULL, offs, 2, &o, g, NULL);
  const float w[4] = {0.75f, 0.75f, 0.5f, 0.5f};
  mrl_policy_grad_weighted_logp_masked(p, OBS, masks, acts, w, 4, 1.0, NULL);
  worst = 0.0;
  for (size_t i = 0; i < n; i++) worst = fmax(worst, fabs(g[i] - mrl_policy_grad(p)[i]));
  TAP_OK(rc == MRL_OK && worst < 1e-6, "masked REINFORCE gradient (%.1e)", worst);

  float lp[4];
  const float adv[4] = {1.0f, -0.5f, 0.8f, -1.2f};
  mrl_policy_evaluate_masked(p, NULL, OBS, masks, acts, 4, lp, NULL);
  mrl_trpo_opts to = mrl_trpo_opts_default();
  mrl_trpo_result tr;
  float *before = malloc(n * sizeof(float));
  memcpy(before, mrl_policy_params(p), n * sizeof(float));
  rc = mrl_policy_trpo_step_masked(p, OBS, masks, acts, lp, adv, 4, &to, &tr);
  double kl = -1;
  mrl_policy_kl_masked(p, before, NULL, OBS, masks, 4, NULL, &kl);
  TAP_OK(rc == MRL_OK && tr.accepted_j >= 0 && fabs(kl - tr.mean_kl) < 1e-9 &&
             kl <= to.max_kl,
         "masked TRPO step: accepted at j = %d, its masked KL %.4g <= %.3g", tr.accepted_j, kl,
         to.max_kl);
  mrl_npg_report nr;
  rc = mrl_policy_npg_update_masked(p, MRL_FISHER_ANALYTIC, OBS, masks, acts, adv, 4, 0.1, 10,
                                    0.01, &nr);
  TAP_OK(rc == MRL_OK && nr.mean_kl > 0 && nr.mean_kl < 0.03,
         "masked NPG update: mean KL %.4g near max_kl 0.01", nr.mean_kl);
  const float forbid[2] = {1, 0};
  rc = mrl_policy_trpo_step_masked(p, OBS, masks, forbid, lp, adv, 1, &to, &tr);
  TAP_OK(rc == MRL_EINVAL && strstr(mrl_policy_error(p), "forbids"),
         "TRPO refuses an action its mask forbids");
  free(g); free(x); free(ax); free(before);
  mrl_policy_free(p);
}

static void test_spec_errors(void) {
  char err[256];
  mrl_policy_spec s = mrl_policy_spec_default();
  s.obs_dim = 2;
  s.action_kind = MRL_COMPOSITE;
  TAP_OK(mrl_policy_spec_check(&s, err, sizeof err) == MRL_EINVAL && strstr(err, "parts"),
         "a composite spec without parts is refused (%s)", err);
  mrl_action_part bad[2] = {{MRL_PART_CATEGORICAL, 3}, {(mrl_part_type)7, 2}};
  s.parts = bad;
  s.nparts = 2;
  TAP_OK(mrl_policy_spec_check(&s, err, sizeof err) == MRL_EINVAL && strstr(err, "part 2"),
         "an unknown part type is refused (%s)", err);
  bad[1].type = MRL_PART_GAUSSIAN;
  bad[1].n = 0;
  TAP_OK(mrl_policy_spec_check(&s, err, sizeof err) == MRL_EINVAL && strstr(err, "gaussian"),
         "a part of size 0 is refused (%s)", err);
  mrl_policy *p = NULL;
  TAP_OK(mrl_policy_new(&p, &s) == MRL_EINVAL && p == NULL, "mrl_policy_new refuses it too");
}

int main(void) {
  test_masked_values();
  test_masked_derivatives();
  test_masked_sampling();
  test_bernoulli();
  test_hybrid_layout();
  test_hybrid_gradients();
  test_hybrid_trainers();
  test_masked_policy();
  test_masked_draws();
  test_masked_trainers();
  test_masked_categorical();
  test_spec_errors();
  return tap_done();
}
