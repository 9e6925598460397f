/*
** test_ppo_job.c — the sliceable PPO engine (mrl_ppo_begin / step / end /
** abort): stepping one minibatch at a time gives the bits of one
** mrl_ppo_update call (clipped and adaptive KL, with and without the value
** helper thread, from another thread); abort restores networks and
** optimisers exactly; adaptive KL equals its building blocks
** (mrl_policy_kl_penalty_loss, Adam, mrl_kl_beta_update) by hand; a
** non-finite update is refused and restored.
*/
#include <math.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>

#include "moonrl.h"
#include "tap.h"

enum { OD = 4, T = 32, N = 4, ROWS = T * N };

typedef struct nets {
  mrl_policy *p;
  mrl_net *v;
  mrl_optim *po, *vo;
} nets;

static void make(nets *n, int hidden_w, int box) {
  int hidden[2] = {hidden_w, hidden_w};
  mrl_policy_spec spec = {.obs_dim = OD, .hidden = hidden, .nhidden = 2, .activation = MRL_TANH, .action_kind = box ? MRL_BOX : MRL_DISCRETE, .action_n = 2, .low = NULL, .high = NULL, .init_log_std = 0.0, .out_gain = 0.01, .seed = 3};
  mrl_policy_new(&n->p, &spec);
  mrl_net_new(&n->v, OD, hidden, 2, 1, MRL_TANH, 1.0, 4);
  mrl_optim_new(&n->po, MRL_ADAM, mrl_policy_nparams(n->p), 0.9, 0.999, 1e-5);
  mrl_optim_new(&n->vo, MRL_ADAM, mrl_net_nparams(n->v), 0.9, 0.999, 1e-5);
}

static void drop(nets *n) {
  mrl_policy_free(n->p);
  mrl_net_free(n->v);
  mrl_optim_free(n->po);
  mrl_optim_free(n->vo);
}

/* Rows acted by a fresh policy (not the ones updated: acting draws from
** a policy's generator), with made-up values, advantages, returns. */
static void rows(mrl_rollout *r, int box, uint64_t seed) {
  nets actor;
  make(&actor, 8, box);
  mrl_policy *p = actor.p;
  mrl_rng *g;
  mrl_rng_new(&g, seed);
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
  mrl_rng_free(g);
  drop(&actor);
}

static mrl_ppo_config config(int kl) {
  mrl_ppo_config c;
  memset(&c, 0, sizeof c);
  c.epochs = 3; c.minibatch_size = 24; c.lr = 1e-3; c.clip_eps = 0.2; c.clip_value = 0.2;
  c.ent_coef = 0.01; c.vf_coef = 0.5; c.max_grad_norm = 0.5; c.normalize_advantages = 1;
  if (kl) { c.kl_beta = 1.0; c.kl_target = 0.01; }
  return c;
}

static int same_state(nets *a, nets *b) {
  size_t np = mrl_policy_nparams(a->p), nv = mrl_net_nparams(a->v);
  return memcmp(mrl_policy_params(a->p), mrl_policy_params(b->p), np * 4) == 0 &&
         memcmp(mrl_net_params(a->v), mrl_net_params(b->v), nv * 4) == 0 &&
         memcmp(mrl_optim_moment(a->po, 0), mrl_optim_moment(b->po, 0), np * 4) == 0 &&
         memcmp(mrl_optim_moment(a->po, 1), mrl_optim_moment(b->po, 1), np * 4) == 0 &&
         memcmp(mrl_optim_moment(a->vo, 1), mrl_optim_moment(b->vo, 1), nv * 4) == 0 &&
         mrl_optim_steps(a->po) == mrl_optim_steps(b->po) &&
         mrl_optim_steps(a->vo) == mrl_optim_steps(b->vo);
}

static int same_report(const mrl_ppo_report *a, const mrl_ppo_report *b) {
  return a->policy_loss == b->policy_loss && a->value_loss == b->value_loss &&
         a->entropy == b->entropy && a->approx_kl == b->approx_kl &&
         a->clip_fraction == b->clip_fraction && a->grad_norm == b->grad_norm &&
         a->epochs_done == b->epochs_done && a->minibatches == b->minibatches &&
         a->stopped_early == b->stopped_early && a->kl_beta == b->kl_beta;
}

typedef struct stepper {
  mrl_ppo_job *job;
  int per, calls, st;
} stepper;

static void *step_all(void *arg) {
  stepper *s = arg;
  int done = 0;
  while (!done && !s->st) {
    s->st = mrl_ppo_step(s->job, s->per, 0, &done);
    s->calls++;
  }
  return NULL;
}

/* per = minibatches per step; thread: step on another thread. */
static void sliced_equals_whole(int kl, int width, int per, int thread) {
  mrl_rollout *r;
  mrl_rollout_new(&r, T, N, OD, 1);
  nets a, b;
  make(&a, width, 0);
  make(&b, width, 0);
  mrl_ppo_config c = config(kl);
  char err[256];
  mrl_ppo_report ra, rb;
  int ok = 1, calls = 0;
  for (int u = 0; u < 2; u++) {
    rows(r, 0, 10 + u);
    ok &= mrl_ppo_update(a.p, a.v, a.po, a.vo, r, &c, &ra, err, sizeof err) == MRL_OK;
    mrl_ppo_job *j;
    ok &= mrl_ppo_begin(&j, b.p, b.v, b.po, b.vo, r, &c, err, sizeof err) == MRL_OK;
    stepper s = {j, per, 0, 0};
    if (thread) {
      pthread_t th;
      pthread_create(&th, NULL, step_all, &s);
      pthread_join(th, NULL);
    } else {
      step_all(&s);
    }
    calls += s.calls;
    ok &= s.st == MRL_OK;
    ok &= mrl_ppo_end(j, &rb, err, sizeof err) == MRL_OK;
    ok &= same_report(&ra, &rb);
    if (kl) c.kl_beta = ra.kl_beta;
  }
  const int nmb = 3 * ((ROWS + 23) / 24);
  TAP_OK(ok && same_state(&a, &b) && calls == 2 * ((nmb + per - 1) / per),
         "%s, hidden %d, %d minibatch%s per step%s: the bits of mrl_ppo_update (%d steps)",
         kl ? "adaptive KL" : "clipped", width, per, per > 1 ? "es" : "",
         thread ? ", on another thread" : "", calls);
  drop(&a);
  drop(&b);
  mrl_rollout_free(r);
}

static void abort_restores(int kl) {
  mrl_rollout *r;
  mrl_rollout_new(&r, T, N, OD, 2);
  nets a, b;
  make(&a, 16, 1);
  make(&b, 16, 1);
  mrl_ppo_config c = config(kl);
  char err[256];
  rows(r, 1, 3);
  /* a first update so the moments are not zero */
  mrl_ppo_update(a.p, a.v, a.po, a.vo, r, &c, NULL, err, sizeof err);
  mrl_ppo_update(b.p, b.v, b.po, b.vo, r, &c, NULL, err, sizeof err);
  mrl_ppo_job *j;
  int ok = mrl_ppo_begin(&j, a.p, a.v, a.po, a.vo, r, &c, err, sizeof err) == MRL_OK;
  int done = 0, epoch = 0, nmb = 0, fin = 0;
  ok &= mrl_ppo_step(j, 7, 0, &done) == MRL_OK && !done;
  mrl_ppo_job_progress(j, &epoch, &nmb, &fin);
  ok &= epoch == 2 && nmb == 7 && !fin;   /* 6 per epoch: the second begun */
  ok &= !same_state(&a, &b);
  mrl_ppo_abort(j);
  TAP_OK(ok && same_state(&a, &b), "%s: abort after 7 minibatches restores params, moments and step counts exactly",
         kl ? "adaptive KL" : "clipped");
  mrl_ppo_abort(NULL);
  drop(&a);
  drop(&b);
  mrl_rollout_free(r);
}

/* Adaptive KL with one epoch of one whole-batch minibatch, no advantage
** normalisation and no norm clip is: the penalty loss at π_old = π_θ, one
** Adam step on each network, β from the batch's KL afterwards. */
static void kl_by_hand(void) {
  mrl_rollout *r;
  mrl_rollout_new(&r, T, N, OD, 2);
  nets a, b;
  make(&a, 16, 1);
  make(&b, 16, 1);
  rows(r, 1, 7);
  mrl_ppo_config c = config(1);
  c.epochs = 1; c.minibatch_size = ROWS; c.normalize_advantages = 0; c.max_grad_norm = 0;
  c.kl_beta = 0.5; c.kl_target = 1e-9;   /* far below any KL: β doubles */
  char err[256];
  mrl_ppo_report rep;
  int st = mrl_ppo_update(a.p, a.v, a.po, a.vo, r, &c, &rep, err, sizeof err);
  /* by hand, on b (the rows in rollout order: a permutation of one
  ** minibatch gives the same mean up to summation order) */
  size_t np = mrl_policy_nparams(b.p);
  float *old = malloc(np * 4);
  memcpy(old, mrl_policy_params(b.p), np * 4);
  const float *obs = mrl_rollout_field_ptr(r, MRL_RO_OBS);
  const float *act = mrl_rollout_field_ptr(r, MRL_RO_ACTIONS);
  double loss, mkl, vloss, kl_after;
  mrl_policy_kl_penalty_loss(b.p, old, obs, act, mrl_rollout_field_ptr(r, MRL_RO_LOGP),
                             mrl_rollout_field_ptr(r, MRL_RO_ADVANTAGES), ROWS, 0.5, &loss, &mkl);
  mrl_optim_step(b.po, mrl_policy_params(b.p), mrl_policy_grad(b.p), c.lr);
  mrl_net_value_loss(b.v, obs, mrl_rollout_field_ptr(r, MRL_RO_RETURNS), ROWS, &vloss, NULL);
  mrl_optim_step(b.vo, mrl_net_params(b.v), mrl_net_grad(b.v), c.lr);
  mrl_policy_kl(b.p, old, NULL, obs, ROWS, NULL, &kl_after);
  int close = 1;
  for (size_t i = 0; i < np; i++)
    close &= tap_close(mrl_policy_params(a.p)[i], mrl_policy_params(b.p)[i], 1e-4, 1e-6);
  for (size_t i = 0; i < mrl_net_nparams(a.v); i++)
    close &= tap_close(mrl_net_params(a.v)[i], mrl_net_params(b.v)[i], 1e-4, 1e-6);
  TAP_OK(st == MRL_OK && close, "adaptive KL: one step equals the penalty loss + Adam by hand");
  TAP_OK(tap_close(rep.policy_loss, loss, 1e-5, 1e-7) && tap_close(rep.value_loss, vloss, 1e-5, 1e-7),
         "adaptive KL: the reported losses are the minibatch's (%g vs %g)", rep.policy_loss, loss);
  TAP_OK(kl_after > 0 && tap_close(rep.approx_kl, kl_after, 1e-3, 1e-9) &&
             rep.kl_beta == 1.0 && rep.kl_beta == mrl_kl_beta_update(0.5, rep.approx_kl, 1e-9),
         "adaptive KL: β doubles when the batch KL (%g) is far above 1.5·target", rep.approx_kl);
  c.kl_target = 1e3;
  mrl_ppo_update(a.p, a.v, a.po, a.vo, r, &c, &rep, err, sizeof err);
  TAP_OK(rep.kl_beta == 0.25, "adaptive KL: β halves when the KL is far below target/1.5");
  c.kl_target = 0;
  TAP_OK(mrl_ppo_update(a.p, a.v, a.po, a.vo, r, &c, &rep, err, sizeof err) == MRL_EINVAL &&
             strstr(err, "kl_target") != NULL,
         "adaptive KL without a target is refused: %s", err);
  free(old);
  drop(&a);
  drop(&b);
  mrl_rollout_free(r);
}

static void refuses_nonfinite(int kl) {
  mrl_rollout *r;
  mrl_rollout_new(&r, T, N, OD, 1);
  nets a, b;
  make(&a, 16, 0);
  make(&b, 16, 0);
  rows(r, 0, 9);
  mrl_ppo_config c = config(kl);
  char err[256];
  mrl_ppo_job *j = (mrl_ppo_job *)&c;
  float *adv = mrl_rollout_field_ptr(r, MRL_RO_ADVANTAGES);
  float keep = adv[5];
  adv[5] = NAN;
  int st = mrl_ppo_begin(&j, a.p, a.v, a.po, a.vo, r, &c, err, sizeof err);
  TAP_OK(st == MRL_ENONFINITE && j == NULL && strstr(err, "non-finite"),
         "%s: non-finite advantages refused at begin: %s", kl ? "KL" : "clip", err);
  adv[5] = keep;
  int ok = mrl_ppo_begin(&j, a.p, a.v, a.po, a.vo, r, &c, err, sizeof err) == MRL_OK;
  int done = 0;
  ok &= mrl_ppo_step(j, 2, 0, &done) == MRL_OK && !done;
  mrl_policy_params(a.p)[0] = NAN;   /* behind the job's back */
  st = mrl_ppo_step(j, 1, 0, &done);
  const char *why = mrl_ppo_job_error(j);
  if (st != MRL_ENONFINITE) printf("# status %d\n", st);
  TAP_OK(ok && st == MRL_ENONFINITE && done && strstr(why, "update refused") && same_state(&a, &b),
         "%s: a parameter turned NaN mid-update: refused, everything restored (%s)",
         kl ? "KL" : "clip", why);
  TAP_OK(mrl_ppo_step(j, 1, 0, &done) == MRL_ENONFINITE &&
             mrl_ppo_end(j, NULL, err, sizeof err) == MRL_ENONFINITE && strstr(err, "update refused"),
         "%s: the failed job keeps its status through step and end", kl ? "KL" : "clip");
  drop(&a);
  drop(&b);
  mrl_rollout_free(r);
}

static void budget_and_args(void) {
  mrl_rollout *r;
  mrl_rollout_new(&r, T, N, OD, 1);
  nets a;
  make(&a, 16, 0);
  rows(r, 0, 1);
  mrl_ppo_config c = config(0);
  char err[256];
  mrl_ppo_job *j;
  mrl_ppo_begin(&j, a.p, a.v, a.po, a.vo, r, &c, err, sizeof err);
  int done = 0, nmb = 0;
  int st = mrl_ppo_step(j, 0, 1e-12, &done);
  mrl_ppo_job_progress(j, NULL, &nmb, NULL);
  TAP_OK(st == MRL_OK && nmb >= 1, "a tiny time budget still runs a minibatch (%d)", nmb);
  mrl_ppo_report rep;
  st = mrl_ppo_end(j, &rep, err, sizeof err);
  TAP_OK(st == MRL_OK && rep.minibatches == 3 * 6 && rep.epochs_done == 3,
         "end finishes the remaining minibatches (%d)", rep.minibatches);
  TAP_OK(mrl_ppo_step(NULL, 1, 0, &done) == MRL_EINVAL && done &&
             mrl_ppo_end(NULL, NULL, err, sizeof err) == MRL_EINVAL &&
             mrl_ppo_begin(NULL, a.p, a.v, a.po, a.vo, r, &c, err, sizeof err) == MRL_EINVAL,
         "NULL jobs and outputs are refused");
  c.minibatch_size = ROWS + 1;
  TAP_OK(mrl_ppo_begin(&j, a.p, a.v, a.po, a.vo, r, &c, err, sizeof err) == MRL_EINVAL && j == NULL,
         "a bad config is refused at begin: %s", err);
  drop(&a);
  mrl_rollout_free(r);
}

int main(void) {
  for (int kl = 0; kl < 2; kl++) {
    sliced_equals_whole(kl, 16, 1, 0);
    sliced_equals_whole(kl, 16, 4, 0);
    sliced_equals_whole(kl, 16, 1, 1);
  }
  sliced_equals_whole(0, 256, 1, 0);   /* big enough for the value helper */
  sliced_equals_whole(0, 256, 5, 1);
  abort_restores(0);
  abort_restores(1);
  kl_by_hand();
  refuses_nonfinite(0);
  refuses_nonfinite(1);
  budget_and_args();
  return tap_done();
}
