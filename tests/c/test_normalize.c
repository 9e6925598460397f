/* test_normalize.c — running statistics (hand-computed merges, two batches
** = their union, the reduce variant over two threads standing for two
** processes, state round trip and hostile states), the reward normaliser,
** and normalisation inside collect (replayed by hand). */
#include <math.h>
#include <pthread.h>
#include <stdlib.h>

#include "counter_env.h"
#include "tap.h"

static void test_hand_values(void) {
  mrl_rms *s = NULL;
  TAP_OK(mrl_rms_new(&s, 0) == MRL_EINVAL, "dim 0 refused");
  TAP_OK(mrl_rms_new(&s, 2) == MRL_OK && mrl_rms_dim(s) == 2, "rms created");
  double m[2], v[2], c;
  mrl_rms_get_state(s, m, v, &c);
  TAP_OK(m[0] == 0 && m[1] == 0 && v[0] == 1 && v[1] == 1 && c == 1e-4,
         "starts at mean 0, var 1, count 1e-4");
  /* column 0: {1, 3}: mean 2, population var 1; column 1: {-2, -2}: 0 */
  float x[4] = {1, -2, 3, -2};
  TAP_OK(mrl_rms_update(s, x, 2) == MRL_OK, "update");
  mrl_rms_get_state(s, m, v, &c);
  double tot = 2.0001;
  double m0 = 2 * 2 / tot, v0 = (1e-4 + 2 + 4 * 1e-4 * 2 / tot) / tot;
  double m1 = -2 * 2 / tot, v1 = (1e-4 + 0 + 4 * 1e-4 * 2 / tot) / tot;
  TAP_OK(tap_close(m[0], m0, 1e-14, 0) && tap_close(v[0], v0, 1e-14, 0) &&
         tap_close(m[1], m1, 1e-14, 0) && tap_close(v[1], v1, 1e-14, 0) &&
         tap_close(c, tot, 1e-15, 0),
         "one merge by hand: mean %.9g %.9g var %.9g %.9g", m[0], m[1], v[0], v[1]);
  float y[4];
  TAP_OK(mrl_rms_apply(s, x, 2, 10, 1e-8, y) == MRL_OK, "apply");
  TAP_OK(tap_close(y[0], (1 - m0) / sqrt(v0 + 1e-8), 1e-6, 0) &&
         tap_close(y[2], (3 - m0) / sqrt(v0 + 1e-8), 1e-6, 0),
         "apply = (x - mean)/sqrt(var + eps)");
  /* column 1 has var ~1e-4: (-2 - m1)/0.01 ~ -0.02/… stays inside; clip 0.5 */
  TAP_OK(mrl_rms_apply(s, x, 2, 0.5, 1e-8, y) == MRL_OK && y[0] == -0.5f &&
         y[2] == 0.5f, "clip to +-clip_obs");
  float big[2] = {1e6f, 0};
  TAP_OK(mrl_rms_apply(s, big, 1, 10, 1e-8, big) == MRL_OK && big[0] == 10.0f,
         "in place and clipped");
  float bad[2] = {1, NAN};
  TAP_OK(mrl_rms_update(s, bad, 1) == MRL_ENONFINITE, "a NaN row is refused");
  mrl_rms_get_state(s, m, v, &c);
  TAP_OK(c == tot && tap_close(m[0], m0, 1e-14, 0), "...and nothing changed: %s",
         mrl_rms_error(s));
  TAP_OK(mrl_rms_update(s, x, 0) == MRL_EINVAL, "0 rows without a hook refused");
  TAP_OK(mrl_rms_apply(s, x, 1, 0, 1e-8, y) == MRL_EINVAL, "clip 0 refused");
  mrl_rms_free(s);
}

/* Deterministic pseudo-random rows. */
static void fill(float *x, int n, unsigned seed) {
  for (int i = 0; i < n; i++) {
    seed = seed * 1103515245u + 12345u;
    x[i] = (float)((seed >> 8) % 20000) / 1000.0f - 7.0f;
  }
}

static int same_stats(mrl_rms *a, mrl_rms *b, double rtol) {
  int d = mrl_rms_dim(a);
  double ma[8], va[8], ca, mb[8], vb[8], cb;
  mrl_rms_get_state(a, ma, va, &ca);
  mrl_rms_get_state(b, mb, vb, &cb);
  int ok = tap_close(ca, cb, rtol, 0);
  for (int j = 0; j < d; j++)
    ok = ok && tap_close(ma[j], mb[j], rtol, 1e-14) && tap_close(va[j], vb[j], rtol, 0);
  return ok;
}

static void test_merge_equals_union(void) {
  enum { D = 3, NA = 7, NB = 12 };
  float x[(NA + NB) * D];
  fill(x, (NA + NB) * D, 7);
  mrl_rms *one = NULL, *two = NULL;
  mrl_rms_new(&one, D);
  mrl_rms_new(&two, D);
  mrl_rms_update(one, x, NA + NB);
  mrl_rms_update(two, x, NA);
  mrl_rms_update(two, x + NA * D, NB);
  TAP_OK(same_stats(one, two, 1e-12), "batch A then batch B = the batch A u B");
  mrl_rms_free(one);
  mrl_rms_free(two);
}

/* A fake two-process reduce: two threads meet at a barrier, and each gets
** the sum of both contributions. */
typedef struct fake_world {
  pthread_barrier_t bar;
  double buf[2][64];
  int calls[2];
} fake_world;

typedef struct fake_rank {
  fake_world *w;
  int rank;
  mrl_rms *s;
  const float *x;
  int rows, status;
} fake_rank;

static int fake_reduce(void *ud, float *data, size_t n, double *scalars,
                       int ns) {
  fake_rank *r = ud;
  fake_world *w = r->w;
  if (n != 0 || data || ns > 64) return MRL_EINVAL;
  memcpy(w->buf[r->rank], scalars, (size_t)ns * sizeof(double));
  w->calls[r->rank]++;
  pthread_barrier_wait(&w->bar);
  for (int i = 0; i < ns; i++) scalars[i] = w->buf[0][i] + w->buf[1][i];
  pthread_barrier_wait(&w->bar);
  return MRL_OK;
}

static void *fake_main(void *arg) {
  fake_rank *r = arg;
  r->status = mrl_rms_update_reduce(r->s, r->x, r->rows, fake_reduce, r);
  return NULL;
}

static void run_pair(fake_rank *a, fake_rank *b) {
  pthread_t ta, tb;
  pthread_create(&ta, NULL, fake_main, a);
  pthread_create(&tb, NULL, fake_main, b);
  pthread_join(ta, NULL);
  pthread_join(tb, NULL);
}

static void test_reduce(void) {
  enum { D = 4, NA = 5, NB = 9 };
  float x[(NA + NB) * D];
  fill(x, (NA + NB) * D, 99);
  fake_world w;
  memset(&w, 0, sizeof w);
  pthread_barrier_init(&w.bar, NULL, 2);
  mrl_rms *one = NULL, *ra = NULL, *rb = NULL;
  mrl_rms_new(&one, D);
  mrl_rms_new(&ra, D);
  mrl_rms_new(&rb, D);
  mrl_rms_update(one, x, NA + NB);
  fake_rank a = {&w, 0, ra, x, NA, -1}, b = {&w, 1, rb, x + NA * D, NB, -1};
  run_pair(&a, &b);
  TAP_OK(a.status == MRL_OK && b.status == MRL_OK, "reduce update on both ranks");
  TAP_OK(w.calls[0] == 2 && w.calls[1] == 2, "two reductions per update");
  TAP_OK(same_stats(ra, one, 1e-12) && same_stats(rb, one, 1e-12),
         "each rank = one process seeing the union batch");
  TAP_OK(same_stats(ra, rb, 0), "the ranks hold bit-identical statistics");
  /* a rank with no rows this time, and a rank with a NaN: both refuse */
  a.rows = 0;
  run_pair(&a, &b);
  mrl_rms_update(one, x + NA * D, NB);
  TAP_OK(a.status == MRL_OK && same_stats(ra, one, 1e-12), "0 rows on one rank");
  float nanx[D] = {1, 2, NAN, 4};
  a.x = nanx;
  a.rows = 1;
  run_pair(&a, &b);
  TAP_OK(a.status == MRL_ENONFINITE && b.status == MRL_ENONFINITE,
         "a NaN on one rank: every rank refuses");
  TAP_OK(same_stats(ra, one, 1e-12) && same_stats(rb, one, 1e-12),
         "...and nothing changed");
  pthread_barrier_destroy(&w.bar);
  mrl_rms_free(one);
  mrl_rms_free(ra);
  mrl_rms_free(rb);
}

static void test_state(void) {
  mrl_rms *s = NULL, *t = NULL;
  mrl_rms_new(&s, 2);
  mrl_rms_new(&t, 2);
  float x[6] = {1, 2, 5, -1, 0.5f, 9};
  mrl_rms_update(s, x, 3);
  double m[2], v[2], c;
  mrl_rms_get_state(s, m, v, &c);
  TAP_OK(mrl_rms_set_state(t, m, v, c) == MRL_OK && same_stats(s, t, 0),
         "state round trip");
  double good[2] = {0, 1}, nanv[2] = {NAN, 1}, neg[2] = {1, -0.5},
         inf[2] = {INFINITY, 1};
  TAP_OK(mrl_rms_set_state(t, nanv, good, 1) == MRL_EINVAL, "NaN mean refused");
  TAP_OK(mrl_rms_set_state(t, inf, good, 1) == MRL_EINVAL, "Inf mean refused");
  TAP_OK(mrl_rms_set_state(t, good, neg, 1) == MRL_EINVAL, "var < 0 refused");
  TAP_OK(mrl_rms_set_state(t, good, nanv, 1) == MRL_EINVAL, "NaN var refused");
  TAP_OK(mrl_rms_set_state(t, good, good, 0) == MRL_EINVAL, "count 0 refused");
  TAP_OK(mrl_rms_set_state(t, good, good, -1) == MRL_EINVAL, "count < 0 refused");
  TAP_OK(mrl_rms_set_state(t, good, good, NAN) == MRL_EINVAL, "count NaN refused");
  TAP_OK(mrl_rms_set_state(t, good, good, INFINITY) == MRL_EINVAL, "count Inf refused");
  TAP_OK(mrl_rms_set_state(t, NULL, good, 1) == MRL_EINVAL, "NULL mean refused");
  TAP_OK(same_stats(s, t, 0), "refused states leave the statistics as they were");
  mrl_rms_reset(t);
  TAP_OK(mrl_rms_count(t) == 1e-4, "reset");
  mrl_rms_free(s);
  mrl_rms_free(t);
}

static void test_retnorm(void) {
  mrl_retnorm *rn = NULL;
  TAP_OK(mrl_retnorm_new(&rn, 0) == MRL_EINVAL, "0 envs refused");
  TAP_OK(mrl_retnorm_new(&rn, 2) == MRL_OK, "retnorm created");
  float r1[2] = {1, 3}, out[2];
  uint8_t d1[2] = {0, 1};
  TAP_OK(mrl_retnorm_step(rn, r1, d1, 0.5, 10, 1e-8, 1, NULL, NULL, out) == MRL_OK,
         "step 1");
  /* ret = {1, 3}: batch mean 2, var 1, n 2 → the hand values of test 1 */
  double tot = 2.0001, v = (1e-4 + 2 + 4 * 1e-4 * 2 / tot) / tot;
  TAP_OK(tap_close(out[0], 1 / sqrt(v + 1e-8), 1e-6, 0) &&
         tap_close(out[1], 3 / sqrt(v + 1e-8), 1e-6, 0),
         "normalised by the updated var: %g %g", out[0], out[1]);
  double ret[2];
  mrl_retnorm_get_ret(rn, ret, 2);
  TAP_OK(ret[0] == 1 && ret[1] == 0, "ret zeroed where done");
  float r2[2] = {2, 4};
  uint8_t d2[2] = {0, 0};
  mrl_retnorm_step(rn, r2, d2, 0.5, 10, 1e-8, 1, NULL, NULL, out);
  mrl_retnorm_get_ret(rn, ret, 2);
  TAP_OK(ret[0] == 2.5 && ret[1] == 4, "ret = ret*gamma + r");
  /* second batch {2.5, 4}: mean 3.25, var 0.5625 */
  double m = 4 / tot, delta = 3.25 - m, t2 = tot + 2;
  double v2 = (v * tot + 0.5625 * 2 + delta * delta * tot * 2 / t2) / t2;
  double rv;
  mrl_rms_get_state(mrl_retnorm_rms(rn), NULL, &rv, NULL);
  TAP_OK(tap_close(rv, v2, 1e-13, 0), "ret statistics by hand");
  TAP_OK(tap_close(out[1], 4 / sqrt(v2 + 1e-8), 1e-6, 0), "step 2 normalised");
  double count = mrl_rms_count(mrl_retnorm_rms(rn));
  mrl_retnorm_step(rn, r2, d2, 0.5, 0.1, 1e-8, 0, NULL, NULL, out);
  TAP_OK(mrl_rms_count(mrl_retnorm_rms(rn)) == count && out[0] == 0.1f,
         "frozen: statistics unchanged, clipped to clip_reward");
  float rn_bad[2] = {1, NAN};
  TAP_OK(mrl_retnorm_step(rn, rn_bad, d2, 0.5, 10, 1e-8, 1, NULL, NULL, out) ==
         MRL_ENONFINITE, "NaN reward refused");
  TAP_OK(mrl_retnorm_step(rn, r2, d2, 1.5, 10, 1e-8, 1, NULL, NULL, out) ==
         MRL_EINVAL, "gamma > 1 refused");
  double hostile[2] = {1, INFINITY};
  TAP_OK(mrl_retnorm_set_ret(rn, hostile, 2) == MRL_EINVAL &&
         mrl_retnorm_set_ret(rn, ret, 3) == MRL_EINVAL, "hostile ret refused");
  /* set_state is all or nothing */
  double m0, v0, c0, m1, v1, c1, q1[2], good[2] = {0.5, -0.5};
  mrl_retnorm_get_state(rn, &m0, &v0, &c0, NULL);
  TAP_OK(mrl_retnorm_set_state(rn, 1.0, 2.0, 3.0, hostile) == MRL_EINVAL &&
         mrl_retnorm_set_state(rn, 1.0, -2.0, 3.0, good) == MRL_EINVAL &&
         mrl_retnorm_get_state(rn, &m1, &v1, &c1, q1) == MRL_OK && m1 == m0 && v1 == v0 &&
         c1 == c0 && q1[0] == ret[0] && q1[1] == ret[1], "refused set_state changes nothing");
  TAP_OK(mrl_retnorm_set_state(rn, 1.0, 2.0, 3.0, good) == MRL_OK &&
         mrl_retnorm_get_state(rn, &m1, &v1, &c1, q1) == MRL_OK && m1 == 1.0 && v1 == 2.0 &&
         c1 == 3.0 && q1[0] == 0.5 && q1[1] == -0.5, "set_state then get_state");
  TAP_OK(mrl_retnorm_set_ret(rn, NULL, 2) == MRL_OK &&
         mrl_retnorm_get_ret(rn, ret, 2) == MRL_OK && ret[0] == 0 && ret[1] == 0,
         "set_ret NULL zeroes");
  mrl_retnorm_free(rn);
}

/* Collect with both normalisers, replayed by hand from the raw env. */
enum { T = 6, N = 3 };

static mrl_vecenv *make_env(void) {
  counter_env *e = ce_new(N, 1);
  e->term_at[0] = 3;
  e->term_at[2] = 2;
  e->trunc_at = 4;
  mrl_env_desc d = {.num_envs = N, .obs_dim = 2, .action_kind = MRL_DISCRETE, .action_n = 2};
  mrl_vecenv *v = NULL;
  if (mrl_vecenv_new(&v, &ce_ops, e, &d) != MRL_OK) return NULL;
  mrl_vecenv_reset(v, 10);
  return v;
}

static void test_collect(void) {
  mrl_vecenv *plain = make_env(), *env = make_env();
  int hidden[1] = {8};
  mrl_policy_spec ps = {.obs_dim = 2, .hidden = hidden, .nhidden = 1, .activation = MRL_TANH, .action_kind = MRL_DISCRETE, .action_n = 2, .low = NULL, .high = NULL, .init_log_std = 0.0, .out_gain = 0.01, .seed = 3};
  mrl_policy *p = NULL;
  mrl_net *val = NULL;
  mrl_policy_new(&p, &ps);
  mrl_net_new(&val, 2, hidden, 1, 1, MRL_TANH, 1.0, 9);
  mrl_rollout *r0 = NULL, *r = NULL;
  mrl_rollout_new(&r0, T, N, 2, 1);
  mrl_rollout_new(&r, T, N, 2, 1);
  mrl_rms *obs = NULL, *obs2 = NULL;
  mrl_retnorm *rew = NULL, *rew2 = NULL;
  mrl_rms_new(&obs, 2);
  mrl_rms_new(&obs2, 2);
  mrl_retnorm_new(&rew, N);
  mrl_retnorm_new(&rew2, N);
  mrl_norm_opts o = {obs, rew, 1, 5.0, 10.0, 1e-8, 0.9, NULL, NULL};
  mrl_rms *wrong = NULL;
  mrl_rms_new(&wrong, 3);
  mrl_norm_opts bad = o;
  bad.obs = wrong;
  TAP_OK(mrl_rollout_set_norm(r, &bad) == MRL_EINVAL, "set_norm: dim mismatch refused");
  bad = o;
  bad.clip_obs = 0;
  TAP_OK(mrl_rollout_set_norm(r, &bad) == MRL_EINVAL, "set_norm: clip 0 refused");
  TAP_OK(mrl_rollout_set_norm(r, &o) == MRL_OK, "set_norm");
  /* the raw observations and dones, from a plain collect of the same env */
  TAP_OK(mrl_rollout_collect(r0, plain, p, NULL) == MRL_OK, "plain collect");
  TAP_OK(mrl_rollout_collect(r, env, p, val) == MRL_OK, "normalised collect: %s",
         mrl_rollout_error(r));
  const float *raw = mrl_rollout_field_ptr(r0, MRL_RO_OBS);
  const float *nobs = mrl_rollout_field_ptr(r, MRL_RO_OBS);
  const float *act = mrl_rollout_field_ptr(r, MRL_RO_ACTIONS);
  const float *rw = mrl_rollout_field_ptr(r, MRL_RO_REWARDS);
  const float *vals = mrl_rollout_field_ptr(r, MRL_RO_VALUES);
  const uint8_t *te = mrl_rollout_terminated(r), *tr = mrl_rollout_truncated(r);
  int obs_ok = 1, rew_ok = 1, val_ok = 1;
  for (int t = 0; t < T; t++) {
    float row[N * 2], vv[N], rr[N], want[N];
    uint8_t dn[N];
    memcpy(row, raw + t * N * 2, sizeof row);
    mrl_rms_update(obs2, row, N);
    mrl_rms_apply(obs2, row, N, 5.0, 1e-8, row);
    obs_ok = obs_ok && memcmp(row, nobs + t * N * 2, sizeof row) == 0;
    mrl_net_forward(val, row, N, vv);
    for (int i = 0; i < N; i++) {
      val_ok = val_ok && tap_close(vals[t * N + i], vv[i], 1e-5, 1e-6);
      rr[i] = 1 + act[t * N + i];
      dn[i] = te[t * N + i] || tr[t * N + i];
    }
    mrl_retnorm_step(rew2, rr, dn, 0.9, 10, 1e-8, 1, NULL, NULL, want);
    rew_ok = rew_ok && memcmp(want, rw + t * N, sizeof want) == 0;
  }
  TAP_OK(obs_ok, "stored obs = each step's raw batch merged then normalised");
  TAP_OK(val_ok, "values are V of the normalised obs");
  TAP_OK(rew_ok, "stored rewards = reward_norm of the raw rewards");
  TAP_OK(same_stats(obs, obs2, 0) && mrl_rms_count(obs) > T * N - 1,
         "the statistics hold every step's batch");
  /* frozen: statistics unchanged */
  o.update = 0;
  mrl_rollout_set_norm(r, &o);
  double c = mrl_rms_count(obs), rc = mrl_rms_count(mrl_retnorm_rms(rew));
  TAP_OK(mrl_rollout_collect(r, env, p, val) == MRL_OK &&
         mrl_rms_count(obs) == c && mrl_rms_count(mrl_retnorm_rms(rew)) == rc,
         "frozen collect leaves the statistics alone");
  /* the rollout holds references: handles freed while it uses them live on
  ** (ASan checks) until it lets go */
  mrl_rms *tmp_obs = NULL;
  mrl_retnorm *tmp_rew = NULL;
  mrl_rms_new(&tmp_obs, 2);
  mrl_retnorm_new(&tmp_rew, N);
  mrl_norm_opts t = {tmp_obs, tmp_rew, 1, 5.0, 10.0, 1e-8, 0.9, NULL, NULL};
  TAP_OK(mrl_rollout_set_norm(r, &t) == MRL_OK && mrl_rollout_set_norm(r, &t) == MRL_OK,
         "set_norm twice with the same handles");
  mrl_rms_free(tmp_obs);
  mrl_retnorm_free(tmp_rew);
  TAP_OK(mrl_rollout_collect(r, env, p, val) == MRL_OK,
         "collect with handles the caller freed (the rollout's references)");
  TAP_OK(mrl_rollout_set_norm(r, NULL) == MRL_OK &&
         mrl_rollout_collect(r, env, p, val) == MRL_OK &&
         mrl_rms_count(obs) == c, "set_norm NULL: off");
  /* closed by the owner (mrl_rms_close / mrl_retnorm_close): the rollout
  ** drops them at its next collect, which stores raw values */
  mrl_rms *cl_obs = NULL;
  mrl_retnorm *cl_rew = NULL;
  mrl_rms_new(&cl_obs, 2);
  mrl_retnorm_new(&cl_rew, N);
  mrl_norm_opts co = {cl_obs, cl_rew, 1, 1e-3, 1e-3, 1e-8, 0.9, NULL, NULL};
  float big[2] = {0, 0};
  for (int pass = 0; pass < 2; pass++) {
    TAP_OK((pass || mrl_rollout_set_norm(r, &co) == MRL_OK) &&
           mrl_rollout_collect(r, env, p, val) == MRL_OK, "collect %d: %s", pass,
           mrl_rollout_error(r));
    const float *ob = mrl_rollout_field_ptr(r, MRL_RO_OBS);
    const float *rw2 = mrl_rollout_field_ptr(r, MRL_RO_REWARDS);
    for (int i = 0; i < T * N; i++) {
      big[pass] = fmaxf(big[pass], fmaxf(fabsf(ob[2 * i]), fabsf(ob[2 * i + 1])));
      big[pass] = fmaxf(big[pass], fabsf(rw2[i]));
    }
    if (pass == 0) {
      mrl_rms_close(cl_obs);
      mrl_retnorm_close(cl_rew);
    }
  }
  TAP_OK(big[0] <= 1e-3f && big[1] >= 1.0f,
         "closed normalisers are dropped at the next collect (%g, then %g)", big[0], big[1]);
  mrl_rms_free(wrong);
  mrl_rms_free(obs);
  mrl_rms_free(obs2);
  mrl_retnorm_free(rew);
  mrl_retnorm_free(rew2);
  mrl_rollout_free(r0);
  mrl_rollout_free(r);
  mrl_policy_free(p);
  mrl_net_free(val);
  mrl_vecenv_free(plain);
  mrl_vecenv_free(env);
}

/* set_mask: the masked-out columns pass through as they are (in place
** and into another buffer), the others as without a mask; NULL: all. */
static void test_mask(void) {
  mrl_rms *s;
  mrl_rms_new(&s, 3);
  const float x[6] = {1, 2, 3, 3, 6, 9};
  mrl_rms_update(s, x, 2);
  float all[6], some[6], inplace[6];
  mrl_rms_apply(s, x, 2, 10.0, 1e-8, all);
  const uint8_t mask[3] = {1, 0, 1};
  int st = mrl_rms_set_mask(s, mask);
  mrl_rms_apply(s, x, 2, 10.0, 1e-8, some);
  memcpy(inplace, x, sizeof inplace);
  mrl_rms_apply(s, inplace, 2, 10.0, 1e-8, inplace);
  int ok = st == MRL_OK;
  for (int r = 0; r < 2; r++)
    for (int j = 0; j < 3; j++) {
      float want = j == 1 ? x[r * 3 + j] : all[r * 3 + j];
      ok &= some[r * 3 + j] == want && inplace[r * 3 + j] == want;
    }
  TAP_OK(ok, "set_mask: column 2 passes through (in place too), 1 and 3 normalised as before");
  mrl_rms_set_mask(s, NULL);
  mrl_rms_apply(s, x, 2, 10.0, 1e-8, some);
  TAP_OK(memcmp(some, all, sizeof all) == 0, "set_mask(NULL): every column again");
  mrl_rms_free(s);
}

int main(void) {
  test_mask();
  test_hand_values();
  test_merge_equals_union();
  test_reduce();
  test_state();
  test_retnorm();
  test_collect();
  return tap_done();
}
