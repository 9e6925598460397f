/*
** test_bgtrain.c — the background trainer (mrl_bgtrain_*) driven by a game
** loop: act with the game's policy every frame, fill a batch, submit, keep
** acting while the update runs, publish when done.  Checked against a
** synchronous mrl_ppo_update on the same batch (bit for bit), for the
** game's policy staying untouched until publish, for failures, and for
** freeing while an update runs.  Also run under ThreadSanitizer (make tsan).
*/
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "moonrl.h"
#include "tap.h"

enum { OD = 6, NA = 4, T = 256, ROWS = T, MB = 64 };

typedef struct game {
  mrl_policy *p;
  mrl_net *v;
  mrl_optim *po, *vo;
} game;

static void game_new(game *g) {
  int hidden[2] = {64, 64};
  mrl_policy_spec spec = {.obs_dim = OD, .hidden = hidden, .nhidden = 2, .activation = MRL_TANH, .action_kind = MRL_DISCRETE, .action_n = NA, .low = NULL, .high = NULL, .init_log_std = 0.0, .out_gain = 0.01, .seed = 7};
  mrl_policy_new(&g->p, &spec);
  mrl_net_new(&g->v, OD, hidden, 2, 1, MRL_TANH, 1.0, 8);
  mrl_optim_new(&g->po, MRL_ADAM, mrl_policy_nparams(g->p), 0.9, 0.999, 1e-8);
  mrl_optim_new(&g->vo, MRL_ADAM, mrl_net_nparams(g->v), 0.9, 0.999, 1e-8);
}

static void game_clone(game *dst, const game *src) {
  mrl_policy_clone(&dst->p, src->p);
  mrl_net_clone(&dst->v, src->v);
  mrl_optim_clone(&dst->po, src->po);
  mrl_optim_clone(&dst->vo, src->vo);
}

static void game_free(game *g) {
  mrl_policy_free(g->p);
  mrl_net_free(g->v);
  mrl_optim_free(g->po);
  mrl_optim_free(g->vo);
}

/* A little world: a point chasing a target; the reward is the action's
** progress.  Episodes end (terminated) on reaching it, or are truncated at
** 50 frames. */
typedef struct world {
  float x, y, tx, ty;
  int t;
  uint64_t s;
} world;

static float wrand(world *w) {
  w->s = w->s * 6364136223846793005ull + 1442695040888963407ull;
  return (float)((w->s >> 40) * (1.0 / 16777216.0)) * 2.0f - 1.0f;
}

static void world_reset(world *w) {
  w->x = wrand(w); w->y = wrand(w); w->tx = wrand(w); w->ty = wrand(w);
  w->t = 0;
}

static void world_obs(const world *w, float *o) {
  o[0] = w->x; o[1] = w->y; o[2] = w->tx; o[3] = w->ty;
  o[4] = w->tx - w->x; o[5] = w->ty - w->y;
}

/* returns the reward; *term / *trunc; fin receives the last obs */
static float world_step(world *w, int a, uint8_t *term, uint8_t *trunc, float *fin) {
  static const float dx[NA] = {0.1f, -0.1f, 0, 0}, dy[NA] = {0, 0, 0.1f, -0.1f};
  float d0 = fabsf(w->tx - w->x) + fabsf(w->ty - w->y);
  w->x += dx[a]; w->y += dy[a]; w->t++;
  float d1 = fabsf(w->tx - w->x) + fabsf(w->ty - w->y);
  *term = d1 < 0.15f;
  *trunc = !*term && w->t >= 50;
  world_obs(w, fin);
  if (*term || *trunc) world_reset(w);
  return d0 - d1;
}

/* the batch the game fills */
typedef struct batch {
  float obs[ROWS * OD], act[ROWS], logp[ROWS], rew[ROWS], fin[ROWS * OD], boot[OD];
  uint8_t term[ROWS], trunc[ROWS];
  int n;
} batch;

static mrl_ppo_config config(void) {
  mrl_ppo_config c;
  memset(&c, 0, sizeof c);
  c.epochs = 4; c.minibatch_size = MB; c.lr = 3e-4; c.clip_eps = 0.2;
  c.ent_coef = 0.01; c.vf_coef = 0.5; c.max_grad_norm = 0.5;
  c.normalize_advantages = 1;
  return c;
}

static mrl_bg_batch as_bg(const batch *b) {
  mrl_bg_batch x;
  memset(&x, 0, sizeof x);
  x.steps = T; x.num_envs = 1;
  x.obs = b->obs; x.actions = b->act; x.logp = b->logp; x.rewards = b->rew;
  x.terminated = b->term; x.truncated = b->trunc;
  x.boot_obs = b->boot; x.final_obs = b->fin;
  x.gamma = 0.99; x.lambda = 0.95;
  return x;
}

/* One frame: observe, act with the game's policy, step the world. */
static void frame(world *w, mrl_policy *p, batch *b) {
  float o[OD], a, lp;
  world_obs(w, o);
  if (b->n == T) {  /* the obs after the last step bootstraps it */
    memcpy(b->boot, o, sizeof o);
    return;
  }
  mrl_policy_act(p, o, 1, 0, &a, &lp);
  int k = b->n++;
  memcpy(b->obs + k * OD, o, sizeof o);
  b->act[k] = a;
  b->logp[k] = lp;
  b->rew[k] = world_step(w, (int)a, &b->term[k], &b->trunc[k], b->fin + k * OD);
}

/* The synchronous reference, through the rollout engine as an agent
** filling a rollout by hand would: put, put_outcome, bootstrap with the
** reference critic, GAE, then mrl_ppo_update. */
static int fill_rollout(mrl_rollout *r, const batch *b) {
  for (int t = 0; t < T; t++) {
    if (mrl_rollout_put(r, t, 0, b->obs + t * OD, b->act + t, b->logp[t]) ||
        mrl_rollout_put_outcome(r, t, 0, b->rew[t], b->term[t], b->trunc[t],
                                b->trunc[t] ? b->fin + t * OD : NULL))
      return -1;
  }
  return 0;
}

static int reference_update(game *g, const batch *b, mrl_rollout *r) {
  if (fill_rollout(r, b)) return -1;
  if (mrl_rollout_bootstrap(r, g->v, b->boot) || mrl_rollout_gae(r, 0.99, 0.95)) return -1;
  mrl_ppo_config c = config();
  char err[256];
  return mrl_ppo_update(g->p, g->v, g->po, g->vo, r, &c, NULL, err, sizeof err);
}

static int same_policy(mrl_policy *a, mrl_policy *b) {
  return memcmp(mrl_policy_params(a), mrl_policy_params(b),
                mrl_policy_nparams(a) * sizeof(float)) == 0;
}
static int same_net(mrl_net *a, mrl_net *b) {
  return memcmp(mrl_net_params(a), mrl_net_params(b),
                mrl_net_nparams(a) * sizeof(float)) == 0;
}

static void test_game_loop(void) {
  game g, ref, before;
  game_new(&g);
  game_clone(&ref, &g);
  mrl_bgtrain *bg = NULL;
  TAP_OK(mrl_bgtrain_new(&bg, g.p, g.v, g.po, g.vo) == MRL_OK && bg, "a trainer from the game's networks");
  TAP_OK(mrl_bgtrain_poll(bg) == MRL_BG_IDLE, "a new trainer is idle");
  mrl_ppo_report rep;
  TAP_OK(mrl_bgtrain_report(bg, &rep) == MRL_ESTATE, "no report before an update");
  TAP_OK(mrl_bgtrain_publish(bg, g.p, g.v) == MRL_ESTATE && *mrl_bgtrain_error(bg),
         "publish with nothing to publish: MRL_ESTATE (%s)", mrl_bgtrain_error(bg));
  mrl_rollout *r, *src;
  mrl_rollout_new(&r, T, 1, OD, 1);
  mrl_rollout_new(&src, T, 1, OD, 1);
  world w = {0};
  w.s = 11;
  world_reset(&w);
  static batch b, next;
  mrl_ppo_config c = config();
  int bits = 1, untouched = 1, frames_while_running = 0, refused_busy = 1, ends = 0;
  for (int u = 0; u < 3; u++) {
    b.n = 0;
    while (b.n < T) frame(&w, g.p, &b);
    frame(&w, g.p, &b);  /* the boot observation */
    for (int i = 0; i < T; i++) ends += b.term[i] + b.trunc[i];
    game_clone(&before, &g);
    mrl_bg_batch x = as_bg(&b);
    if (u == 1) {  /* the agent's way: a rollout filled by put/put_outcome */
      TAP_OK(fill_rollout(src, &b) == 0 &&
                 mrl_bgtrain_submit_rollout(bg, src, b.boot, 0.99, 0.95, &c) == MRL_OK,
             "update 2 submitted as a rollout filled by put/put_outcome");
    } else {
      TAP_OK(mrl_bgtrain_submit(bg, &x, &c) == MRL_OK, "update %d submitted as arrays", u + 1);
    }
    /* the batch is copied: the game may scribble over it at once */
    batch saved = b;
    memset(&b, 0xff, sizeof b);
    refused_busy &= mrl_bgtrain_poll(bg) != MRL_BG_RUNNING ||
                    mrl_bgtrain_submit(bg, &x, &c) == MRL_ESTATE;
    /* keep playing (the next batch fills) until the update is done */
    next.n = 0;
    while (mrl_bgtrain_poll(bg) == MRL_BG_RUNNING) {
      if (next.n < T) frame(&w, g.p, &next);
      frames_while_running++;
      untouched &= same_policy(g.p, before.p) && same_net(g.v, before.v);
    }
    untouched &= same_policy(g.p, before.p) && same_net(g.v, before.v);
    TAP_OK(mrl_bgtrain_poll(bg) == MRL_BG_DONE, "update %d done", u + 1);
    TAP_OK(reference_update(&ref, &saved, r) == MRL_OK, "reference update %d", u + 1);
    TAP_OK(mrl_bgtrain_publish(bg, g.p, g.v) == MRL_OK, "published");
    TAP_OK(mrl_bgtrain_poll(bg) == MRL_BG_IDLE, "idle after publish");
    bits &= same_policy(g.p, ref.p) && same_net(g.v, ref.v) && !same_policy(g.p, before.p);
    game_free(&before);
  }
  TAP_OK(ends > 0, "the batches hold episode ends (%d)", ends);
  TAP_OK(bits, "published parameters = a synchronous mrl_ppo_update, bit for bit, 3 updates in a row");
  TAP_OK(untouched, "the game's networks unchanged until publish (%d frames played while running)",
         frames_while_running);
  TAP_OK(refused_busy, "submit while running: MRL_ESTATE");
  int rst = mrl_bgtrain_report(bg, &rep);
  TAP_OK(rst == MRL_OK && rep.minibatches == 4 * T / MB &&
             rep.epochs_done == 4 && isfinite(rep.policy_loss) && isfinite(rep.value_loss),
         "the report of the finished update (%d minibatches)", rep.minibatches);
  TAP_OK(mrl_bgtrain_updates(bg) == 3, "3 updates counted");
  /* the trainer's optimisers carry the moments of 3 updates */
  mrl_optim *po = mrl_bgtrain_optim(bg, 0);
  TAP_OK(po && mrl_optim_steps(po) == mrl_optim_steps(ref.po) && mrl_optim_steps(po) == 3 * 4 * T / MB &&
             memcmp(mrl_optim_moment(po, 1), mrl_optim_moment(ref.po, 1),
                    mrl_optim_nparams(po) * sizeof(float)) == 0,
         "optimiser state lives on the trainer side (%lld steps)", (long long)mrl_optim_steps(po));

  /* sync-in (load/resume): the game's state replaces the trainer's */
  float *gp = mrl_policy_params(g.p);
  gp[0] += 0.25f;
  mrl_optim_reset(g.po);
  TAP_OK(mrl_bgtrain_sync_in(bg, g.p, g.v, g.po, NULL) == MRL_OK &&
             same_policy(mrl_bgtrain_policy(bg), g.p) &&
             mrl_optim_steps(mrl_bgtrain_optim(bg, 0)) == 0 &&
             mrl_optim_steps(mrl_bgtrain_optim(bg, 1)) == 3 * 4 * T / MB,
         "sync_in copies the game's parameters and the optimisers given");
  mrl_optim *sgd;
  mrl_optim_new(&sgd, MRL_SGD, mrl_policy_nparams(g.p), 0.9, 0, 0);
  TAP_OK(mrl_bgtrain_sync_in(bg, NULL, NULL, sgd, NULL) == MRL_EINVAL &&
             mrl_bgtrain_sync_out(bg, NULL, NULL, sgd, NULL) == MRL_EINVAL,
         "sync_in/out refuse an optimiser of another kind");
  /* sync_out (a checkpoint): the trainer's state into fresh objects */
  game out;
  game_new(&out);
  TAP_OK(mrl_bgtrain_sync_out(bg, out.p, out.v, out.po, out.vo) == MRL_OK &&
             same_policy(out.p, mrl_bgtrain_policy(bg)) && same_net(out.v, mrl_bgtrain_value(bg)) &&
             mrl_optim_steps(out.vo) == 3 * 4 * T / MB &&
             mrl_rng_u64(mrl_policy_rng(out.p)) == mrl_rng_u64(mrl_policy_rng(mrl_bgtrain_policy(bg))),
         "sync_out copies parameters, moments and the shuffling generator");
  game_free(&out);
  mrl_optim_free(sgd);
  mrl_ppo_config red = c;
  red.reduce = (mrl_reduce_fn)1;
  mrl_bg_batch x = as_bg(&next);
  TAP_OK(mrl_bgtrain_submit(bg, &x, &red) == MRL_EINVAL, "a reduce hook is refused: %s",
         mrl_bgtrain_error(bg));

  mrl_rollout *other;
  mrl_rollout_new(&other, T, 1, OD + 1, 1);
  TAP_OK(mrl_bgtrain_submit_rollout(bg, other, NULL, 0, 0, &c) == MRL_EINVAL,
         "a rollout of another obs_dim is refused: %s", mrl_bgtrain_error(bg));
  mrl_rollout_free(other);
  mrl_rollout_free(r);
  mrl_rollout_free(src);
  mrl_bgtrain_free(bg);
  game_free(&g);
  game_free(&ref);
}

/* A non-finite batch: the failure is reported, nothing is published, the
** trainer keeps its state and can train again. */
static void test_failure(void) {
  game g;
  game_new(&g);
  mrl_bgtrain *bg;
  mrl_bgtrain_new(&bg, g.p, g.v, g.po, g.vo);
  world w = {0};
  w.s = 3;
  world_reset(&w);
  static batch b;
  b.n = 0;
  while (b.n < T) frame(&w, g.p, &b);
  frame(&w, g.p, &b);
  mrl_ppo_config c = config();
  float *keep = malloc(sizeof(float) * mrl_policy_nparams(g.p));
  memcpy(keep, mrl_policy_params(g.p), sizeof(float) * mrl_policy_nparams(g.p));

  batch bad = b;
  bad.rew[17] = NAN;
  mrl_bg_batch x = as_bg(&bad);
  TAP_OK(mrl_bgtrain_submit(bg, &x, &c) == MRL_OK, "a batch with a NaN reward is accepted");
  TAP_OK(mrl_bgtrain_wait(bg) == MRL_BG_FAILED && strstr(mrl_bgtrain_error(bg), "non-finite"),
         "its update fails: %s", mrl_bgtrain_error(bg));
  TAP_OK(mrl_bgtrain_publish(bg, g.p, g.v) == MRL_ESTATE &&
             memcmp(keep, mrl_policy_params(g.p), sizeof(float) * mrl_policy_nparams(g.p)) == 0,
         "nothing published: %s", mrl_bgtrain_error(bg));
  TAP_OK(same_policy(mrl_bgtrain_policy(bg), g.p) && mrl_optim_steps(mrl_bgtrain_optim(bg, 0)) == 0,
         "the trainer's state is as before");

  /* a NaN observation fails inside the update (restored by mrl_ppo_update) */
  bad = b;
  bad.obs[5 * OD + 2] = INFINITY;
  x = as_bg(&bad);
  x.boot_obs = NULL;
  static float val[ROWS], adv[ROWS], ret[ROWS];
  for (int i = 0; i < ROWS; i++) { val[i] = 0; adv[i] = (float)(i % 7) - 3; ret[i] = adv[i]; }
  x.values = val; x.advantages = adv; x.returns = ret;
  TAP_OK(mrl_bgtrain_submit(bg, &x, &c) == MRL_OK && mrl_bgtrain_wait(bg) == MRL_BG_FAILED,
         "an Inf observation: failed (%s)", mrl_bgtrain_error(bg));
  TAP_OK(same_policy(mrl_bgtrain_policy(bg), g.p) && mrl_optim_steps(mrl_bgtrain_optim(bg, 0)) == 0 &&
             mrl_bgtrain_updates(bg) == 0,
         "still as before, nothing counted");
  x.obs = b.obs;
  TAP_OK(mrl_bgtrain_submit(bg, &x, &c) == MRL_OK && mrl_bgtrain_wait(bg) == MRL_BG_DONE &&
             mrl_bgtrain_publish(bg, g.p, NULL) == MRL_OK &&
             memcmp(keep, mrl_policy_params(g.p), sizeof(float) * mrl_policy_nparams(g.p)) != 0,
         "after a failure the next good batch trains and publishes");
  x.boot_obs = NULL; x.values = NULL;
  TAP_OK(mrl_bgtrain_submit(bg, &x, &c) == MRL_EINVAL, "a batch without values nor boot_obs: %s",
         mrl_bgtrain_error(bg));
  free(keep);
  mrl_bgtrain_free(bg);
  game_free(&g);
}

/* Freeing while the update runs waits for it and joins the thread. */
static void test_free_running(void) {
  game g;
  game_new(&g);
  world w = {0};
  w.s = 5;
  world_reset(&w);
  static batch b;
  b.n = 0;
  while (b.n < T) frame(&w, g.p, &b);
  frame(&w, g.p, &b);
  mrl_ppo_config c = config();
  int ok = 1;
  for (int k = 0; k < 5; k++) {
    mrl_bgtrain *bg;
    ok &= mrl_bgtrain_new(&bg, g.p, g.v, g.po, g.vo) == MRL_OK;
    mrl_bg_batch x = as_bg(&b);
    ok &= mrl_bgtrain_submit(bg, &x, &c) == MRL_OK;
    ok &= mrl_bgtrain_policy(bg) == NULL || mrl_bgtrain_poll(bg) != MRL_BG_RUNNING;
    mrl_bgtrain_free(bg);
  }
  mrl_bgtrain_free(NULL);
  TAP_OK(ok, "free while an update runs: cancels, waits and joins (5 times); free(NULL) is a no-op");
  /* cancel: a long update ended early leaves the trainer as before it */
  mrl_bgtrain *cb;
  mrl_bgtrain_new(&cb, g.p, g.v, g.po, g.vo);
  mrl_ppo_config longc = c;
  longc.epochs = 1000;
  mrl_bg_batch x = as_bg(&b);
  mrl_bg_state s0 = mrl_bgtrain_submit(cb, &x, &longc) == MRL_OK ? mrl_bgtrain_poll(cb) : MRL_BG_IDLE;
  mrl_bg_state s1 = mrl_bgtrain_cancel(cb);
  TAP_OK(s0 == MRL_BG_RUNNING && s1 == MRL_BG_FAILED && strstr(mrl_bgtrain_error(cb), "cancelled") &&
             same_policy(mrl_bgtrain_policy(cb), g.p) && same_net(mrl_bgtrain_value(cb), g.v) &&
             mrl_optim_steps(mrl_bgtrain_optim(cb, 0)) == 0,
         "cancel ends a 1000-epoch update; the trainer is as before it (%s)", mrl_bgtrain_error(cb));
  TAP_OK(mrl_bgtrain_cancel(cb) == MRL_BG_FAILED && mrl_bgtrain_submit(cb, &x, &c) == MRL_OK &&
             mrl_bgtrain_wait(cb) == MRL_BG_DONE && mrl_bgtrain_cancel(cb) == MRL_BG_DONE,
         "cancel when nothing runs changes nothing; the next update trains");
  mrl_bgtrain_free(cb);
  mrl_bgtrain *bg = NULL;
  mrl_net *other;
  mrl_net_new(&other, OD + 1, NULL, 0, 1, MRL_TANH, 1.0, 1);
  TAP_OK(mrl_bgtrain_new(&bg, g.p, other, g.po, g.vo) == MRL_EINVAL && bg == NULL,
         "new refuses a value net that does not fit the policy");
  mrl_net_free(other);
  game_free(&g);
}

int main(void) {
  test_game_loop();
  test_failure();
  test_free_running();
  return tap_done();
}
