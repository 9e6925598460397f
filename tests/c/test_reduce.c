/*
** test_reduce.c — the reduction hook (mrl_reduce_fn) without MPI: two
** threads play two processes, their hook sums through shared memory at a
** barrier.  Each runs mrl_ppo_update / mrl_value_fit_reduce / TRPO on its
** half of a batch; the result must equal one process's update over the
** whole batch (PPO with shards = 2, whose minibatch k is both halves'
** minibatch k).  Also: no hook is exactly the old path (shards = 1), and
** bad shards are refused.  tests/mpi.t runs the same over MPI.
*/
#include <pthread.h>
#include <stdlib.h>

#include "moonrl.h"
#include "tap.h"

enum { T = 16, N = 4, OD = 3, NA = 2, ROWS = T * N, MB = 16 };

typedef struct world {
  pthread_barrier_t bar;
  double *slot[2];
  size_t cap;
} world;

typedef struct proc {
  world *w;
  int rank;
  mrl_rollout *ro;
  mrl_policy *p;
  mrl_net *v;
  mrl_optim *po, *vo;
  int st_ppo, st_fit, st_trpo;
  mrl_trpo_result tr;
  double fit_loss;
} proc;

static int sum_hook(void *ud, float *data, size_t n, double *s, int ns) {
  proc *me = ud;
  world *w = me->w;
  size_t k = n + (size_t)ns;
  if (k > w->cap) return MRL_EINVAL;
  double *mine = w->slot[me->rank];
  for (size_t i = 0; i < n; i++) mine[i] = data[i];
  for (int i = 0; i < ns; i++) mine[n + (size_t)i] = s[i];
  pthread_barrier_wait(&w->bar);
  /* the same sum, in the same order, on both ranks */
  for (size_t i = 0; i < n; i++) data[i] = (float)(w->slot[0][i] + w->slot[1][i]);
  for (int i = 0; i < ns; i++) s[i] = w->slot[0][n + (size_t)i] + w->slot[1][n + (size_t)i];
  pthread_barrier_wait(&w->bar);
  return MRL_OK;
}

static void make_nets(mrl_policy **p, mrl_net **v, mrl_optim **po, mrl_optim **vo) {
  int hidden[1] = {8};
  mrl_policy_spec spec = {.obs_dim = OD, .hidden = hidden, .nhidden = 1, .activation = MRL_TANH, .action_kind = MRL_DISCRETE, .action_n = NA, .low = NULL, .high = NULL, .init_log_std = 0.0, .out_gain = 0.01, .seed = 7};
  mrl_policy_new(p, &spec);
  mrl_net_new(v, OD, hidden, 1, 1, MRL_TANH, 1.0, 8);
  mrl_optim_new(po, MRL_ADAM, mrl_policy_nparams(*p), 0.9, 0.999, 1e-8);
  mrl_optim_new(vo, MRL_ADAM, mrl_net_nparams(*v), 0.9, 0.999, 1e-8);
}

/* Synthetic rollout rows [first, first + rows) of one global stream. */
static void fill(mrl_rollout *r, mrl_policy *behave, int first, int rows, mrl_rng *g) {
  float *obs = mrl_rollout_field_ptr(r, MRL_RO_OBS) + (size_t)first * OD;
  float *act = mrl_rollout_field_ptr(r, MRL_RO_ACTIONS) + first;
  float *lp = mrl_rollout_field_ptr(r, MRL_RO_LOGP) + first;
  float *adv = mrl_rollout_field_ptr(r, MRL_RO_ADVANTAGES) + first;
  float *ret = mrl_rollout_field_ptr(r, MRL_RO_RETURNS) + first;
  float *val = mrl_rollout_field_ptr(r, MRL_RO_VALUES) + first;
  for (int i = 0; i < rows * OD; i++) obs[i] = (float)mrl_rng_normal(g);
  for (int i = 0; i < rows; i++) {
    act[i] = (float)(mrl_rng_uniform(g) < 0.5);
    adv[i] = (float)(2.0 * mrl_rng_normal(g) + 0.5);
    val[i] = (float)mrl_rng_normal(g);
    ret[i] = val[i] + (float)mrl_rng_normal(g);
  }
  mrl_policy_evaluate(behave, NULL, obs, act, rows, lp, NULL);
}

static mrl_ppo_config cfg(int mb) {
  mrl_ppo_config c;
  memset(&c, 0, sizeof c);
  c.epochs = 3; c.minibatch_size = mb; c.lr = 1e-3; c.clip_eps = 0.2;
  c.clip_value = 0.2; c.ent_coef = 0.01; c.vf_coef = 0.5; c.max_grad_norm = 0.5;
  c.normalize_advantages = 1;
  return c;
}

static const mrl_trpo_opts TOPTS = {0.01, 0.1, 0.8, 10, 10};

static void *run(void *arg) {
  proc *me = arg;
  char err[256];
  mrl_ppo_config c = cfg(MB);
  c.reduce = sum_hook;
  c.reduce_ud = me;
  mrl_ppo_report rep;
  me->st_ppo = mrl_ppo_update(me->p, me->v, me->po, me->vo, me->ro, &c, &rep, err, sizeof err);
  const float *obs = mrl_rollout_field_ptr(me->ro, MRL_RO_OBS);
  me->st_fit = mrl_value_fit_reduce(me->v, me->vo, obs, mrl_rollout_field_ptr(me->ro, MRL_RO_RETURNS),
                                    ROWS, 2, ROWS, 1e-3, mrl_policy_rng(me->p), sum_hook, me,
                                    &me->fit_loss, err, sizeof err);
  mrl_policy_set_reduce(me->p, sum_hook, me);
  me->st_trpo = mrl_policy_trpo_step(me->p, obs, mrl_rollout_field_ptr(me->ro, MRL_RO_ACTIONS),
                                     mrl_rollout_field_ptr(me->ro, MRL_RO_LOGP),
                                     mrl_rollout_field_ptr(me->ro, MRL_RO_ADVANTAGES), ROWS,
                                     &TOPTS, &me->tr);
  mrl_policy_set_reduce(me->p, NULL, NULL);
  return NULL;
}

static double maxdiff(const float *a, const float *b, size_t n) {
  double m = 0;
  for (size_t i = 0; i < n; i++) {
    double d = fabs((double)a[i] - b[i]);
    if (d > m) m = d;
  }
  return m;
}

int main(void) {
  mrl_rng *g;
  mrl_rng_new(&g, 99);
  mrl_policy *behave;
  mrl_net *bv;
  mrl_optim *bpo, *bvo;
  make_nets(&behave, &bv, &bpo, &bvo);

  /* the whole batch: rank 0's rows, then rank 1's */
  mrl_rollout *whole;
  mrl_rollout_new(&whole, 2 * T, N, OD, 1);
  fill(whole, behave, 0, 2 * ROWS, g);

  world w;
  w.cap = 4096;
  w.slot[0] = calloc(w.cap, sizeof(double));
  w.slot[1] = calloc(w.cap, sizeof(double));
  pthread_barrier_init(&w.bar, NULL, 2);
  proc pr[2];
  memset(pr, 0, sizeof pr);
  static const mrl_rollout_field F[] = {MRL_RO_OBS, MRL_RO_ACTIONS, MRL_RO_LOGP,
                                        MRL_RO_ADVANTAGES, MRL_RO_RETURNS, MRL_RO_VALUES};
  for (int r = 0; r < 2; r++) {
    pr[r].w = &w;
    pr[r].rank = r;
    make_nets(&pr[r].p, &pr[r].v, &pr[r].po, &pr[r].vo);
    mrl_rollout_new(&pr[r].ro, T, N, OD, 1);
    for (int f = 0; f < 6; f++) {
      size_t width = F[f] == MRL_RO_OBS ? OD : 1;
      memcpy(mrl_rollout_field_ptr(pr[r].ro, F[f]),
             mrl_rollout_field_ptr(whole, F[f]) + (size_t)r * ROWS * width,
             sizeof(float) * ROWS * width);
    }
  }
  pthread_t th[2];
  for (int r = 0; r < 2; r++) pthread_create(&th[r], NULL, run, &pr[r]);
  for (int r = 0; r < 2; r++) pthread_join(th[r], NULL);
  TAP_OK(pr[0].st_ppo == MRL_OK && pr[1].st_ppo == MRL_OK, "ppo_update with a hook succeeds on both ranks");
  TAP_OK(pr[0].st_fit == MRL_OK && pr[1].st_fit == MRL_OK && pr[0].st_trpo == MRL_OK &&
         pr[1].st_trpo == MRL_OK, "value_fit_reduce and trpo_step with a hook succeed");

  /* the reference: one process, the whole batch, shards = 2 */
  mrl_policy *p;
  mrl_net *v;
  mrl_optim *po, *vo;
  make_nets(&p, &v, &po, &vo);
  char err[256];
  mrl_ppo_config c = cfg(2 * MB);
  c.shards = 2;
  mrl_ppo_report rep;
  TAP_OK(mrl_ppo_update(p, v, po, vo, whole, &c, &rep, err, sizeof err) == MRL_OK, "reference update (shards = 2)");
  double fit_loss = 0;
  const float *wobs = mrl_rollout_field_ptr(whole, MRL_RO_OBS);
  mrl_value_fit(v, vo, wobs, mrl_rollout_field_ptr(whole, MRL_RO_RETURNS), 2 * ROWS, 2, 2 * ROWS,
                1e-3, mrl_policy_rng(p), &fit_loss, err, sizeof err);
  mrl_trpo_result tr;
  mrl_policy_trpo_step(p, wobs, mrl_rollout_field_ptr(whole, MRL_RO_ACTIONS),
                       mrl_rollout_field_ptr(whole, MRL_RO_LOGP),
                       mrl_rollout_field_ptr(whole, MRL_RO_ADVANTAGES), 2 * ROWS, &TOPTS, &tr);
  size_t np = mrl_policy_nparams(p), nv = mrl_net_nparams(v);
  TAP_OK(memcmp(mrl_policy_params(pr[0].p), mrl_policy_params(pr[1].p), np * sizeof(float)) == 0 &&
         memcmp(mrl_net_params(pr[0].v), mrl_net_params(pr[1].v), nv * sizeof(float)) == 0,
         "both ranks hold bit-identical parameters");
  double dp = maxdiff(mrl_policy_params(pr[0].p), mrl_policy_params(p), np);
  double dv = maxdiff(mrl_net_params(pr[0].v), mrl_net_params(v), nv);
  TAP_OK(dp < 1e-5 && dv < 1e-5,
         "2 ranks × half batch = 1 process × whole batch (PPO, critic fit, TRPO): max |Δθ| %.3g, %.3g", dp, dv);
  TAP_OK(pr[0].tr.accepted_j == tr.accepted_j && tap_close(pr[0].tr.mean_kl, tr.mean_kl, 1e-4, 1e-9) &&
         tap_close(pr[0].fit_loss, fit_loss, 1e-4, 1e-7),
         "the same TRPO step (j = %d, kl %.6g vs %.6g) and critic loss", pr[0].tr.accepted_j,
         pr[0].tr.mean_kl, tr.mean_kl);

  /* shards = 1 is the plain path, bit for bit */
  mrl_policy *p1, *p2;
  mrl_net *v1, *v2;
  mrl_optim *po1, *vo1, *po2, *vo2;
  make_nets(&p1, &v1, &po1, &vo1);
  make_nets(&p2, &v2, &po2, &vo2);
  mrl_ppo_config c1 = cfg(2 * MB), c2 = cfg(2 * MB);
  c2.shards = 1;
  mrl_ppo_update(p1, v1, po1, vo1, whole, &c1, &rep, err, sizeof err);
  mrl_ppo_update(p2, v2, po2, vo2, whole, &c2, &rep, err, sizeof err);
  TAP_OK(memcmp(mrl_policy_params(p1), mrl_policy_params(p2), np * sizeof(float)) == 0,
         "shards = 1 and 0 give the same bits");
  c2.shards = 3;
  TAP_OK(mrl_ppo_update(p2, v2, po2, vo2, whole, &c2, &rep, err, sizeof err) == MRL_EINVAL &&
         strstr(err, "shards") != NULL, "shards that do not divide the sizes are refused: %s", err);
  c2.shards = 2;
  c2.reduce = sum_hook;
  TAP_OK(mrl_ppo_update(p2, v2, po2, vo2, whole, &c2, &rep, err, sizeof err) == MRL_EINVAL,
         "shards and a reduce hook together are refused");

  mrl_policy_free(p1); mrl_policy_free(p2); mrl_net_free(v1); mrl_net_free(v2);
  mrl_optim_free(po1); mrl_optim_free(vo1); mrl_optim_free(po2); mrl_optim_free(vo2);
  mrl_policy_free(p); mrl_net_free(v); mrl_optim_free(po); mrl_optim_free(vo);
  for (int r = 0; r < 2; r++) {
    mrl_policy_free(pr[r].p); mrl_net_free(pr[r].v); mrl_optim_free(pr[r].po);
    mrl_optim_free(pr[r].vo); mrl_rollout_free(pr[r].ro);
  }
  pthread_barrier_destroy(&w.bar);
  free(w.slot[0]); free(w.slot[1]);
  mrl_rollout_free(whole);
  mrl_policy_free(behave); mrl_net_free(bv); mrl_optim_free(bpo); mrl_optim_free(bvo);
  mrl_rng_free(g);
  return tap_done();
}
