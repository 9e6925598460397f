/* test_trust_region.c — Fisher-vector products against differences of the KL
** gradient and against explicitly formed per-sample gradients, CG against a
** direct solve, the natural-gradient step size, and TRPO's line search. */
#include <math.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "moonrl.h"
#include "tap.h"

static uint64_t test_state = 0x243F6A8885A308D3ULL;
static double urand(void) {
  test_state ^= test_state >> 12;
  test_state ^= test_state << 25;
  test_state ^= test_state >> 27;
  return (double)((test_state * 0x2545F4914F6CDD1DULL) >> 11) * 0x1.0p-53;
}
static void fill(float *x, size_t n, double lo, double hi) {
  for (size_t i = 0; i < n; i++) x[i] = (float)(lo + (hi - lo) * urand());
}

static mrl_policy *make(mrl_action_kind kind, int obs, const int *hidden,
                        int nh, int n, uint64_t seed) {
  mrl_policy_spec s = {0};
  s.obs_dim = obs;
  s.hidden = hidden;
  s.nhidden = nh;
  s.activation = MRL_TANH;
  s.action_kind = kind;
  s.action_n = n;
  s.init_log_std = -0.3;
  s.out_gain = 1.0;
  s.seed = seed;
  mrl_policy *p = NULL;
  mrl_policy_new(&p, &s);
  if (p) {
    float *w = mrl_policy_params(p);
    fill(w, mrl_policy_nparams(p), -0.7, 0.7);
  }
  return p;
}

static void fill_actions(mrl_policy *p, float *a, int batch) {
  int n = mrl_policy_action_n(p);
  if (mrl_policy_action_kind(p) == MRL_DISCRETE)
    for (int i = 0; i < batch; i++) a[i] = (float)(int)(urand() * n);
  else
    fill(a, (size_t)batch * n, -1.5, 1.5);
}

static double dot(const float *a, const float *b, size_t n) {
  double s = 0.0;
  for (size_t i = 0; i < n; i++) s += (double)a[i] * b[i];
  return s;
}
static double norm(const float *a, size_t n) { return sqrt(dot(a, a, n)); }
static double rel_err(const float *a, const float *b, size_t n) {
  double e = 0.0;
  for (size_t i = 0; i < n; i++) e += ((double)a[i] - b[i]) * ((double)a[i] - b[i]);
  return sqrt(e) / fmax(norm(b, n), 1e-30);
}

/* ∇θ mean_s KL(π_θ0 ‖ π_θ) at θ: kl_penalty_loss with zero advantages and
** β = 1 is exactly that gradient. */
static void kl_grad(mrl_policy *p, const float *theta0, const float *obs,
                    const float *act, int batch, float *g) {
  float *zero = calloc((size_t)batch, sizeof(float));
  double loss, mk;
  mrl_policy_kl_penalty_loss(p, theta0, obs, act, zero, zero, batch, 1.0, &loss, &mk);
  memcpy(g, mrl_policy_grad(p), sizeof(float) * mrl_policy_nparams(p));
  free(zero);
}

static void test_fvp(void) {
  int hid[1] = {6};
  for (int kind = 0; kind < 2; kind++) {
    const char *kn = kind ? "box" : "discrete";
    mrl_policy *p = make((mrl_action_kind)kind, 4, hid, 1, 3, 31 + kind);
    enum { B = 10 };
    float obs[B * 4], act[B * 3];
    fill(obs, B * 4, -1.5, 1.5);
    fill_actions(p, act, B);
    size_t n = mrl_policy_nparams(p);
    float *v = malloc(sizeof(float) * n), *u = malloc(sizeof(float) * n),
          *fv = malloc(sizeof(float) * n), *fu = malloc(sizeof(float) * n),
          *fd = malloc(sizeof(float) * n), *gp = malloc(sizeof(float) * n),
          *gm = malloc(sizeof(float) * n), *th0 = malloc(sizeof(float) * n),
          *fvd = malloc(sizeof(float) * n);
    fill(v, n, -1, 1);
    fill(u, n, -1, 1);
    memcpy(th0, mrl_policy_params(p), sizeof(float) * n);

    /* Analytic: F v = d/dh ∇KL(θ0 ‖ θ0 + h v) at h = 0. */
    int rc = mrl_policy_fvp(p, MRL_FISHER_ANALYTIC, obs, NULL, B, v, 0.0, fv);
    const double h = 1e-2;
    float *w = mrl_policy_params(p);
    for (size_t i = 0; i < n; i++) w[i] = (float)(th0[i] + h * v[i]);
    kl_grad(p, th0, obs, act, B, gp);
    for (size_t i = 0; i < n; i++) w[i] = (float)(th0[i] - h * v[i]);
    kl_grad(p, th0, obs, act, B, gm);
    memcpy(w, th0, sizeof(float) * n);
    for (size_t i = 0; i < n; i++) fd[i] = (float)((gp[i] - gm[i]) / (2 * h));
    double e = rel_err(fv, fd, n);
    TAP_OK(rc == MRL_OK && e < 2e-3,
           "%s analytic F v = differences of the KL gradient (rel %.2g)", kn, e);

    mrl_policy_fvp(p, MRL_FISHER_ANALYTIC, obs, NULL, B, u, 0.0, fu);
    double uFv = dot(u, fv, n), vFu = dot(v, fu, n);
    TAP_OK(fabs(uFv - vFu) < 1e-5 * (fabs(uFv) + 1) && dot(v, fv, n) > 0,
           "%s analytic F is symmetric and positive (%g, %g)", kn, uFv, vFu);
    rc = mrl_policy_fvp(p, MRL_FISHER_ANALYTIC, obs, NULL, B, v, 0.25, fvd);
    double de = 0.0;
    for (size_t i = 0; i < n; i++) de = fmax(de, fabs(fvd[i] - fv[i] - 0.25 * v[i]));
    TAP_OK(rc == MRL_OK && de < 1e-5, "%s damping adds damping*v", kn);
    TAP_OK(memcmp(w, th0, sizeof(float) * n) == 0, "%s fvp leaves params alone", kn);

    /* Empirical: (1/N) Σ g_n (g_n · v), each g_n formed by a one-row pass. */
    rc = mrl_policy_fvp(p, MRL_FISHER_EMPIRICAL, obs, act, B, v, 0.0, fv);
    double *ref = calloc(n, sizeof(double));
    int width = mrl_policy_action_width(p);
    for (int r = 0; r < B; r++) {
      float one = 1.0f;
      mrl_policy_grad_weighted_logp(p, obs + 4 * r, act + width * r, &one, 1, 1.0, NULL);
      const float *g = mrl_policy_grad(p);
      double gv = dot(g, v, n);
      for (size_t i = 0; i < n; i++) ref[i] += g[i] * gv / B;
    }
    for (size_t i = 0; i < n; i++) fd[i] = (float)ref[i];
    e = rel_err(fv, fd, n);
    TAP_OK(rc == MRL_OK && e < 1e-5,
           "%s empirical F v = mean of g (g.v) over rows (rel %.2g)", kn, e);
    free(ref);
    free(v);
    free(u);
    free(fv);
    free(fu);
    free(fd);
    free(gp);
    free(gm);
    free(th0);
    free(fvd);
    mrl_policy_free(p);
  }
}

/* Gaussian elimination with partial pivoting, in double, in place. */
static void solve(double *A, double *b, int n) {
  for (int c = 0; c < n; c++) {
    int piv = c;
    for (int r = c + 1; r < n; r++)
      if (fabs(A[r * n + c]) > fabs(A[piv * n + c])) piv = r;
    for (int k = 0; k < n; k++) {
      double t = A[c * n + k];
      A[c * n + k] = A[piv * n + k];
      A[piv * n + k] = t;
    }
    double t = b[c];
    b[c] = b[piv];
    b[piv] = t;
    for (int r = c + 1; r < n; r++) {
      double f = A[r * n + c] / A[c * n + c];
      for (int k = c; k < n; k++) A[r * n + k] -= f * A[c * n + k];
      b[r] -= f * b[c];
    }
  }
  for (int c = n - 1; c >= 0; c--) {
    double s = b[c];
    for (int k = c + 1; k < n; k++) s -= A[c * n + k] * b[k];
    b[c] = s / A[c * n + c];
  }
}

static void test_cg(void) {
  for (int kind = 0; kind < 2; kind++) {
    const char *kn = kind ? "box" : "discrete";
    /* A linear policy: few parameters, so F can be formed column by column. */
    mrl_policy *p = make((mrl_action_kind)kind, 3, NULL, 0, 2, 41 + kind);
    enum { B = 15 };
    float obs[B * 3], act[B * 2];
    fill(obs, B * 3, -1.5, 1.5);
    fill_actions(p, act, B);
    int n = (int)mrl_policy_nparams(p);
    const double damp = 0.1;
    double *A = malloc(sizeof(double) * n * n), *b = malloc(sizeof(double) * n);
    float *e = calloc((size_t)n, sizeof(float)), *col = malloc(sizeof(float) * n),
          *g = malloc(sizeof(float) * n), *x = malloc(sizeof(float) * n),
          *step = malloc(sizeof(float) * n), *ax = malloc(sizeof(float) * n);
    for (int j = 0; j < n; j++) {
      e[j] = 1.0f;
      mrl_policy_fvp(p, MRL_FISHER_ANALYTIC, obs, NULL, B, e, damp, col);
      e[j] = 0.0f;
      for (int i = 0; i < n; i++) A[i * n + j] = col[i];
    }
    fill(g, (size_t)n, -1, 1);
    for (int i = 0; i < n; i++) b[i] = g[i];
    solve(A, b, n);
    double xAx = -1;
    int rc = mrl_policy_cg(p, MRL_FISHER_ANALYTIC, obs, NULL, B, g, damp, 3 * n, x, &xAx);
    for (int i = 0; i < n; i++) col[i] = (float)b[i];
    double err = rel_err(x, col, (size_t)n);
    TAP_OK(rc == MRL_OK && err < 1e-3,
           "%s CG solves (F + damping I) x = g like a direct solve (rel %.2g)", kn, err);
    mrl_policy_fvp(p, MRL_FISHER_ANALYTIC, obs, NULL, B, x, damp, ax);
    TAP_OK(fabs(xAx - dot(x, ax, (size_t)n)) < 1e-4 * fabs(xAx),
           "%s CG reports x^T A x", kn);

    rc = mrl_policy_cg(p, MRL_FISHER_ANALYTIC, obs, NULL, B, g, damp, 0, x, NULL);
    TAP_OK(rc == MRL_OK && norm(x, (size_t)n) == 0.0, "%s zero iterations: x = 0", kn);
    /* One iteration is the Cauchy step (gᵀg / gᵀAg) g. */
    rc = mrl_policy_cg(p, MRL_FISHER_ANALYTIC, obs, NULL, B, g, damp, 1, x, NULL);
    mrl_policy_fvp(p, MRL_FISHER_ANALYTIC, obs, NULL, B, g, damp, ax);
    double a = dot(g, g, (size_t)n) / dot(g, ax, (size_t)n), worst = 0;
    for (int i = 0; i < n; i++) worst = fmax(worst, fabs(x[i] - a * g[i]));
    TAP_OK(rc == MRL_OK && worst < 1e-6, "%s one CG iteration is the Cauchy step", kn);
    /* rᵀr is tested after each update: a tiny g still takes one step, then
    ** stops (here rᵀr starts below 1e-10). */
    float *tiny = malloc(sizeof(float) * n);
    for (int i = 0; i < n; i++) tiny[i] = 1e-7f * g[i];
    rc = mrl_policy_cg(p, MRL_FISHER_ANALYTIC, obs, NULL, B, tiny, damp, 5, x, NULL);
    worst = 0;
    for (int i = 0; i < n; i++) worst = fmax(worst, fabs(x[i] - a * tiny[i]));
    TAP_OK(rc == MRL_OK && dot(tiny, tiny, (size_t)n) < 1e-10 && norm(x, (size_t)n) > 0 &&
               worst < 1e-12,
           "%s a tiny g takes exactly one CG step (err %.2g)", kn, worst);
    free(tiny);
    float *zero = calloc((size_t)n, sizeof(float));
    rc = mrl_policy_npg_step(p, MRL_FISHER_ANALYTIC, obs, NULL, B, zero, damp, 10, 0.01, step);
    TAP_OK(rc == MRL_OK && norm(step, (size_t)n) == 0.0, "%s g = 0 gives a zero step", kn);
    free(zero);

    /* The natural step sits on the trust-region boundary: ½ sᵀAs = max_kl. */
    rc = mrl_policy_npg_step(p, MRL_FISHER_ANALYTIC, obs, NULL, B, g, damp, 3 * n, 0.02, step);
    mrl_policy_fvp(p, MRL_FISHER_ANALYTIC, obs, NULL, B, step, damp, ax);
    double q = 0.5 * dot(step, ax, (size_t)n);
    TAP_OK(rc == MRL_OK && fabs(q - 0.02) < 1e-4, "%s npg step: 1/2 s^T A s = max_kl (%g)",
           kn, q);
    rc = mrl_policy_npg_step(p, MRL_FISHER_EMPIRICAL, obs, act, B, g, damp, 3 * n, 0.02, step);
    mrl_policy_fvp(p, MRL_FISHER_EMPIRICAL, obs, act, B, step, damp, ax);
    q = 0.5 * dot(step, ax, (size_t)n);
    TAP_OK(rc == MRL_OK && fabs(q - 0.02) < 1e-4, "%s empirical npg step on the boundary",
           kn);
    free(A);
    free(b);
    free(e);
    free(col);
    free(g);
    free(x);
    free(step);
    free(ax);
    mrl_policy_free(p);
  }
}

static void test_trpo(void) {
  int hid[1] = {8};
  for (int kind = 0; kind < 2; kind++) {
    const char *kn = kind ? "box" : "discrete";
    mrl_policy *p = make((mrl_action_kind)kind, 3, hid, 1, 2, 51 + kind);
    enum { B = 20 };
    float obs[B * 3], act[B * 2], old[B], adv[B], lp[B];
    fill(obs, B * 3, -1.5, 1.5);
    fill_actions(p, act, B);
    fill(adv, B, -1, 1);
    mrl_policy_evaluate(p, NULL, obs, act, B, lp, NULL);
    for (int i = 0; i < B; i++) old[i] = lp[i] + (float)(0.1 * (urand() - 0.5));
    size_t n = mrl_policy_nparams(p);
    float *th0 = malloc(sizeof(float) * n);
    memcpy(th0, mrl_policy_params(p), sizeof(float) * n);

    mrl_trpo_opts o = {0.01, 0.1, 0.5, 10, 10};
    mrl_trpo_result r;
    int rc = mrl_policy_trpo_step(p, obs, act, old, adv, B, &o, &r);
    double mk = -1;
    mrl_policy_kl(p, th0, NULL, obs, B, NULL, &mk);
    mrl_policy_evaluate(p, NULL, obs, act, B, lp, NULL);
    double surr = 0.0;
    for (int i = 0; i < B; i++) surr += exp(lp[i] - (double)old[i]) * adv[i];
    surr /= B;
    TAP_OK(rc == MRL_OK && r.accepted_j >= 0 && r.mean_kl <= 0.01 && r.improvement > 0,
           "%s TRPO accepts a step (j = %d, kl = %g, improvement = %g)", kn,
           r.accepted_j, r.mean_kl, r.improvement);
    TAP_OK(fabs(mk - r.mean_kl) < 1e-7 && fabs(surr - r.surrogate_before - r.improvement) < 1e-6,
           "%s the new params have the reported KL and improvement", kn);

    /* The accepted θ' is θ + α^j·fullstep with fullstep the npg step at θ. */
    float *g = malloc(sizeof(float) * n), *step = malloc(sizeof(float) * n),
          *th1 = malloc(sizeof(float) * n);
    memcpy(th1, mrl_policy_params(p), sizeof(float) * n);
    mrl_policy_set_params(p, th0, n);
    float *w = malloc(sizeof(float) * B);
    mrl_policy_evaluate(p, NULL, obs, act, B, lp, NULL);
    for (int i = 0; i < B; i++) w[i] = (float)(exp(lp[i] - (double)old[i]) * adv[i]);
    mrl_policy_grad_weighted_logp(p, obs, act, w, B, 1.0 / B, NULL);
    memcpy(g, mrl_policy_grad(p), sizeof(float) * n);
    mrl_policy_npg_step(p, MRL_FISHER_ANALYTIC, obs, NULL, B, g, 0.1, 10, 0.01, step);
    /* (g here comes from float weights, so compare relative to the step) */
    double frac = pow(0.5, r.accepted_j), worst = 0.0, big = 0.0;
    for (size_t i = 0; i < n; i++) {
      worst = fmax(worst, fabs(th1[i] - (th0[i] + frac * step[i])));
      big = fmax(big, fabs(frac * step[i]));
    }
    TAP_OK(worst < 1e-3 * big, "%s theta' = theta + alpha^j * natural step (rel %.2g)", kn,
           worst / big);

    /* No backtracks allowed: nothing accepted, params untouched. */
    o.max_backtracks = 0;
    rc = mrl_policy_trpo_step(p, obs, act, old, adv, B, &o, &r);
    TAP_OK(rc == MRL_OK && r.accepted_j == -1 && r.mean_kl == 0 && r.improvement == 0 &&
               memcmp(mrl_policy_params(p), th0, sizeof(float) * n) == 0,
           "%s no accepted step leaves params unchanged", kn);
    /* No damping and an unconverged CG: the full step overshoots its
    ** trust region and the line search backtracks. */
    o.max_backtracks = 30;
    o.backtrack_coef = 0.5;
    o.max_kl = 0.5;
    o.damping = 0.0;
    rc = mrl_policy_trpo_step(p, obs, act, old, adv, B, &o, &r);
    mrl_policy_kl(p, th0, NULL, obs, B, NULL, &mk);
    TAP_OK(rc == MRL_OK && r.accepted_j >= 1 && r.mean_kl <= 0.5 && fabs(mk - r.mean_kl) < 1e-6,
           "%s line search backtracks (j = %d, kl = %g)", kn, r.accepted_j, r.mean_kl);
    mrl_policy_set_params(p, th0, n);

    /* Zero advantages: no ascent direction, no step. */
    float zero[B] = {0};
    o.max_kl = 0.01;
    o.damping = 0.1;
    rc = mrl_policy_trpo_step(p, obs, act, old, zero, B, &o, &r);
    TAP_OK(rc == MRL_OK && r.accepted_j == -1 &&
               memcmp(mrl_policy_params(p), th0, sizeof(float) * n) == 0,
           "%s zero advantages: no step", kn);

    /* Non-finite inputs are refused and change nothing. */
    adv[3] = NAN;
    rc = mrl_policy_trpo_step(p, obs, act, old, adv, B, &o, &r);
    TAP_OK(rc == MRL_ENONFINITE && strstr(mrl_policy_error(p), "advantages: NaN at index 3") &&
               memcmp(mrl_policy_params(p), th0, sizeof(float) * n) == 0,
           "%s TRPO refuses NaN advantages: %s", kn, mrl_policy_error(p));
    adv[3] = 0.5f;
    obs[4] = INFINITY;
    rc = mrl_policy_trpo_step(p, obs, act, old, adv, B, &o, &r);
    TAP_OK(rc == MRL_ENONFINITE && strstr(mrl_policy_error(p), "obs: Inf at row 1, column 1") &&
               memcmp(mrl_policy_params(p), th0, sizeof(float) * n) == 0,
           "%s TRPO refuses Inf obs: %s", kn, mrl_policy_error(p));
    obs[4] = 0.0f;
    o.backtrack_coef = 1.5;
    rc = mrl_policy_trpo_step(p, obs, act, old, adv, B, &o, &r);
    TAP_OK(rc == MRL_EINVAL && strstr(mrl_policy_error(p), "backtrack_coef"),
           "%s bad backtrack_coef refused", kn);
    free(th0);
    free(th1);
    free(g);
    free(step);
    free(w);
    mrl_policy_free(p);
  }
}

static void test_errors(void) {
  mrl_policy *p = make(MRL_DISCRETE, 3, NULL, 0, 2, 5);
  size_t n = mrl_policy_nparams(p);
  float obs[6] = {0}, act[2] = {0, 1}, *v = calloc(n, sizeof(float)),
        *out = malloc(sizeof(float) * n);
  int rc = mrl_policy_fvp(p, MRL_FISHER_EMPIRICAL, obs, NULL, 2, v, 0.0, out);
  TAP_OK(rc == MRL_EINVAL && strstr(mrl_policy_error(p), "actions: NULL"),
         "empirical Fisher needs actions: %s", mrl_policy_error(p));
  rc = mrl_policy_fvp(p, (mrl_fisher)5, obs, act, 2, v, 0.0, out);
  TAP_OK(rc == MRL_EINVAL && strstr(mrl_policy_error(p), "fisher:"), "unknown fisher");
  rc = mrl_policy_fvp(p, MRL_FISHER_ANALYTIC, obs, NULL, 2, v, -1.0, out);
  TAP_OK(rc == MRL_EINVAL && strstr(mrl_policy_error(p), "damping:"), "negative damping");
  v[2] = NAN;
  rc = mrl_policy_fvp(p, MRL_FISHER_ANALYTIC, obs, NULL, 2, v, 0.0, out);
  TAP_OK(rc == MRL_ENONFINITE && strstr(mrl_policy_error(p), "v: NaN at index 2"),
         "NaN v: %s", mrl_policy_error(p));
  rc = mrl_policy_cg(p, MRL_FISHER_ANALYTIC, obs, NULL, 2, v, 0.0, 5, out, NULL);
  TAP_OK(rc == MRL_ENONFINITE && strstr(mrl_policy_error(p), "g: NaN at index 2"), "NaN g");
  v[2] = 0;
  rc = mrl_policy_cg(p, MRL_FISHER_ANALYTIC, obs, NULL, 2, v, 0.0, -1, out, NULL);
  TAP_OK(rc == MRL_EINVAL && strstr(mrl_policy_error(p), "iters"), "negative iters");
  rc = mrl_policy_npg_step(p, MRL_FISHER_ANALYTIC, obs, NULL, 2, v, 0.0, 5, 0.0, out);
  TAP_OK(rc == MRL_EINVAL && strstr(mrl_policy_error(p), "max_kl"), "max_kl 0 refused");
  rc = mrl_policy_cg(p, MRL_FISHER_ANALYTIC, obs, NULL, 0, v, 0.0, 5, out, NULL);
  TAP_OK(rc == MRL_EINVAL && strstr(mrl_policy_error(p), "batch"), "cg batch 0");
  TAP_OK(mrl_policy_trpo_step(p, obs, act, act, act, 2, NULL, NULL) == MRL_EINVAL &&
             strstr(mrl_policy_error(p), "opts: NULL"),
         "trpo needs opts");
  /* Damping 0 and g in the null space of a singular F: CG stops, no NaN. */
  memset(v, 0, sizeof(float) * n);
  v[n - 1] = 1.0f; /* the output bias direction common to all logits */
  v[n - 2] = 1.0f;
  rc = mrl_policy_cg(p, MRL_FISHER_ANALYTIC, obs, NULL, 2, v, 0.0, 5, out, NULL);
  TAP_OK(rc == MRL_OK && isfinite(out[0]), "CG on a singular direction stays finite");
  free(v);
  free(out);
  mrl_policy_free(p);
}

int main(void) {
  test_fvp();
  test_cg();
  test_trpo();
  test_errors();
  return tap_done();
}
