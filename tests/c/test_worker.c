/*
** test_worker.c — the parked helper thread (runtime/worker.h) and its use
** by mrl_ppo_update: calls run on another thread, one at a time, in order;
** a policy keeps one worker across updates; and updates with the helper
** give the same bits as without it (MRL_PPO_THREADS=1).
*/
#include <pthread.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "moonrl.h"
#include "policy_impl.h"
#include "tap.h"
#include "worker.h"

typedef struct job {
  int calls;
  pthread_t ran_on;
} job;

static void bump(void *arg) {
  job *j = arg;
  j->calls++;
  j->ran_on = pthread_self();
}

static void test_worker(void) {
  worker *w = worker_new();
  TAP_OK(w != NULL, "a worker starts");
  job j = {0};
  int in_order = 1;
  for (int i = 1; i <= 1000; i++) {
    worker_run(w, bump, &j);
    worker_wait(w);
    in_order &= j.calls == i;
  }
  TAP_OK(in_order, "1000 calls, each finished when worker_wait returns");
  TAP_OK(!pthread_equal(j.ran_on, pthread_self()), "the calls ran on the worker's thread");
  worker_free(w);
  worker_free(NULL);
  TAP_OK(1, "worker_free joins the thread; NULL is a no-op");
}

enum { OD = 4, T = 64, N = 4, ROWS = T * N, MB = 64 };

static void make(mrl_policy **p, mrl_net **v, mrl_optim **po, mrl_optim **vo) {
  int hidden[2] = {64, 64};
  mrl_policy_spec spec = {.obs_dim = OD, .hidden = hidden, .nhidden = 2, .activation = MRL_TANH, .action_kind = MRL_DISCRETE, .action_n = 2, .low = NULL, .high = NULL, .init_log_std = 0.0, .out_gain = 0.01, .seed = 3};
  mrl_policy_new(p, &spec);
  mrl_net_new(v, OD, hidden, 2, 1, MRL_TANH, 1.0, 4);
  mrl_optim_new(po, MRL_ADAM, mrl_policy_nparams(*p), 0.9, 0.999, 1e-5);
  mrl_optim_new(vo, MRL_ADAM, mrl_net_nparams(*v), 0.9, 0.999, 1e-5);
}

/* Rows from the policy itself, with made-up advantages and returns. */
static void rows(mrl_rollout *r, mrl_policy *p, mrl_rng *g) {
  float *obs = mrl_rollout_field_ptr(r, MRL_RO_OBS);
  float *val = mrl_rollout_field_ptr(r, MRL_RO_VALUES);
  float *adv = mrl_rollout_field_ptr(r, MRL_RO_ADVANTAGES);
  float *ret = mrl_rollout_field_ptr(r, MRL_RO_RETURNS);
  for (int i = 0; i < ROWS * OD; i++) obs[i] = (float)mrl_rng_normal(g);
  mrl_policy_act(p, obs, ROWS, 0, mrl_rollout_field_ptr(r, MRL_RO_ACTIONS),
                 mrl_rollout_field_ptr(r, MRL_RO_LOGP));
  for (int i = 0; i < ROWS; i++) {
    val[i] = (float)mrl_rng_normal(g);
    adv[i] = (float)mrl_rng_normal(g);
    ret[i] = val[i] + adv[i];
  }
}

static void test_ppo_helper(void) {
  mrl_rng *g;
  mrl_rng_new(&g, 5);
  mrl_rollout *r;
  mrl_rollout_new(&r, T, N, OD, 1);
  /* k = 0 runs alone, k = 1 with its helper, k = 2 acts to make the rows
  ** (an update draws its shuffles from the policy's own generator) */
  mrl_policy *p[3];
  mrl_net *v[3];
  mrl_optim *po[3], *vo[3];
  for (int k = 0; k < 3; k++) make(&p[k], &v[k], &po[k], &vo[k]);
  mrl_ppo_config c;
  memset(&c, 0, sizeof c);
  c.epochs = 2; c.minibatch_size = MB; c.lr = 3e-4; c.clip_eps = 0.2; c.clip_value = 0.2;
  c.ent_coef = 0.01; c.vf_coef = 0.5; c.max_grad_norm = 0.5; c.normalize_advantages = 1;
  char err[256];
  int ok = 1;
  struct worker *first = NULL;
  for (int u = 0; u < 3; u++) {
    rows(r, p[2], g);
    setenv("MRL_PPO_THREADS", "1", 1);
    ok &= mrl_ppo_update(p[0], v[0], po[0], vo[0], r, &c, NULL, err, sizeof err) == MRL_OK;
    unsetenv("MRL_PPO_THREADS");
    ok &= mrl_ppo_update(p[1], v[1], po[1], vo[1], r, &c, NULL, err, sizeof err) == MRL_OK;
    if (u == 0) first = p[1]->worker;
    ok &= p[1]->worker == first;
  }
  const int cores = sysconf(_SC_NPROCESSORS_ONLN) >= 2;
  TAP_OK(ok && p[0]->worker == NULL && (first != NULL) == cores,
         "three updates; the helper's worker made once and kept%s",
         cores ? "" : " (one core here: no helper)");
  TAP_OK(memcmp(mrl_policy_params(p[0]), mrl_policy_params(p[1]),
                mrl_policy_nparams(p[0]) * sizeof(float)) == 0 &&
             memcmp(mrl_net_params(v[0]), mrl_net_params(v[1]),
                    mrl_net_nparams(v[0]) * sizeof(float)) == 0,
         "with the helper thread: the same parameters, bit for bit");
  for (int k = 0; k < 3; k++) {
    mrl_policy_free(p[k]);
    mrl_net_free(v[k]);
    mrl_optim_free(po[k]);
    mrl_optim_free(vo[k]);
  }
  mrl_rollout_free(r);
  mrl_rng_free(g);
}

int main(void) {
  test_worker();
  test_ppo_helper();
  return tap_done();
}
