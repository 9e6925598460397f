/* test_vecenv.c — the vecenv over a counter env: validation, auto-reset
** and final_obs, episode statistics, clipping, error propagation. */
#include <math.h>

#include "counter_env.h"
#include "tap.h"

static mrl_vecenv *make(counter_env *e, mrl_action_kind kind, int an,
                        const float *low, const float *high) {
  mrl_env_desc d = {.num_envs = e->n, .obs_dim = 2, .action_kind = kind, .action_n = an, .low = low, .high = high};
  mrl_vecenv *v = NULL;
  int st = mrl_vecenv_new(&v, &ce_ops, e, &d);
  return st == MRL_OK ? v : NULL;
}

static void test_validation(void) {
  int destroyed = 0;
  counter_env *e = ce_new(2, 1);
  e->destroyed = &destroyed;
  mrl_env_desc d = {.num_envs = 2, .obs_dim = 0, .action_kind = MRL_DISCRETE, .action_n = 2};  /* obs_dim 0 */
  mrl_vecenv *v = (mrl_vecenv *)1;
  TAP_OK(mrl_vecenv_new(&v, &ce_ops, e, &d) == MRL_EINVAL && v == NULL,
         "obs_dim 0 is refused");
  TAP_OK(destroyed, "ud is destroyed when new fails");

  float lo[1] = {1}, hi[1] = {-1};
  mrl_env_desc bad[] = {
    {.num_envs = 0, .obs_dim = 2, .action_kind = MRL_DISCRETE, .action_n = 2},
    {.num_envs = 2, .obs_dim = 2, .action_kind = (mrl_action_kind)7, .action_n = 2},
    {.num_envs = 2, .obs_dim = 2, .action_kind = MRL_DISCRETE, .action_n = 0},
    {.num_envs = 2, .obs_dim = 2, .action_kind = MRL_BOX, .action_n = 1, .low = lo},
    {.num_envs = 2, .obs_dim = 2, .action_kind = MRL_BOX, .action_n = 1, .low = lo, .high = hi},
    {.num_envs = 2, .obs_dim = 2, .action_kind = MRL_DISCRETE, .action_n = 1, .low = hi, .high = lo},
  };
  int all = 1;
  for (size_t k = 0; k < sizeof bad / sizeof bad[0]; k++) {
    destroyed = 0;
    e = ce_new(2, 1);
    e->destroyed = &destroyed;
    all = all && mrl_vecenv_new(&v, &ce_ops, e, &bad[k]) == MRL_EINVAL && destroyed;
  }
  TAP_OK(all, "bad descs (num_envs, kind, action_n, half bounds, low>high, "
              "bounds on discrete) are refused and destroy ud");
  mrl_env_ops noreset = {NULL, ce_step, ce_error, NULL};
  e = ce_new(2, 1);
  d.obs_dim = 2;
  TAP_OK(mrl_vecenv_new(&v, &noreset, e, &d) == MRL_EINVAL, "ops without reset refused");
  free(e);
}

static void test_autoreset_and_episodes(void) {
  int destroyed = 0;
  counter_env *e = ce_new(3, 1);
  e->destroyed = &destroyed;
  e->term_at[0] = 2;   /* env 0 terminates every 2 steps */
  e->term_at[1] = 0;   /* env 1 is cut by the time limit */
  e->term_at[2] = 3;   /* env 2: terminates at 3, before the limit */
  e->trunc_at = 3;
  mrl_vecenv *v = make(e, MRL_DISCRETE, 3, NULL, NULL);
  TAP_OK(v != NULL, "vecenv created");
  float act[3] = {0, 1, 2};
  TAP_OK(mrl_vecenv_step(v, act) == MRL_ESTATE, "step before reset: ESTATE");
  TAP_OK(strstr(mrl_vecenv_error(v), "reset") != NULL, "message asks for a reset: %s",
         mrl_vecenv_error(v));
  TAP_OK(mrl_vecenv_reset(v, 40) == MRL_OK, "reset");
  const float *obs = mrl_vecenv_obs(v);
  TAP_OK(obs[1] == 40 && obs[3] == 41 && obs[5] == 42 && obs[0] == 0,
         "env i is seeded with seed + i");
  mrl_vecenv_step(v, act);
  TAP_OK(obs[0] == 1 && obs[2] == 1 && obs[4] == 1, "counters advance");
  TAP_OK(mrl_vecenv_rewards(v)[2] == 3, "reward comes from the action");
  mrl_vecenv_step(v, act);
  const uint8_t *te = mrl_vecenv_terminated(v), *tr = mrl_vecenv_truncated(v);
  const float *fo = mrl_vecenv_final_obs(v);
  TAP_OK(te[0] == 1 && tr[0] == 0 && te[1] == 0 && te[2] == 0,
         "env 0 terminated at step 2");
  TAP_OK(obs[0] == 0 && obs[1] == 1040, "env 0 auto-reset: obs is the new episode's first");
  TAP_OK(fo[0] == 2 && fo[1] == 40, "env 0 final_obs is the true last obs");
  mrl_vecenv_step(v, act);
  TAP_OK(tr[1] == 1 && te[1] == 0, "env 1 truncated at the limit");
  TAP_OK(te[2] == 1 && tr[2] == 0, "env 2 terminated (terminated wins over the limit)");
  TAP_OK(fo[2] == 3 && fo[3] == 41 && obs[2] == 0, "env 1 final_obs, obs reset");
  TAP_OK(mrl_vecenv_total_steps(v) == 9, "total steps counts env steps (9)");
  double ret[8];
  int64_t len[8];
  int k = mrl_vecenv_drain_episodes(v, ret, len, 8);
  /* oldest first: env 0 (len 2, return 2), then env 1 (len 3, return 6),
  ** env 2 (len 3, return 9) */
  TAP_OK(k == 3, "3 finished episodes");
  TAP_OK(k == 3 && ret[0] == 2 && len[0] == 2 && ret[1] == 6 && len[1] == 3 &&
             ret[2] == 9 && len[2] == 3,
         "episode returns and lengths, oldest first");
  TAP_OK(mrl_vecenv_drain_episodes(v, ret, len, 8) == 0, "drain forgets");
  for (int s = 0; s < 6; s++) mrl_vecenv_step(v, act);
  k = mrl_vecenv_drain_episodes(v, ret, len, 2);
  TAP_OK(k == 2 && ret[0] == 2 && len[0] == 2, "drain with a small cap returns the oldest");
  k = mrl_vecenv_drain_episodes(v, ret, len, 8);
  TAP_OK(k == 5, "the rest remains (3+2+2 - 2 = 5): %d", k);
  mrl_vecenv_reset(v, 0);
  mrl_vecenv_step(v, act);
  TAP_OK(mrl_vecenv_drain_episodes(v, ret, len, 8) == 0,
         "reset abandons running episodes without reporting them");
  mrl_vecenv_free(v);
  TAP_OK(destroyed, "free destroys ud");
}

static void test_ring_overflow(void) {
  counter_env *e = ce_new(1, 1);
  e->term_at[0] = 1;  /* every step ends an episode */
  mrl_vecenv *v = make(e, MRL_DISCRETE, 2, NULL, NULL);
  mrl_vecenv_reset(v, 0);
  float a[1] = {1};
  for (int s = 0; s < 1500; s++) mrl_vecenv_step(v, a);
  static double ret[2000];
  static int64_t len[2000];
  int k = mrl_vecenv_drain_episodes(v, ret, len, 2000);
  TAP_OK(k == 1024, "ring keeps the newest 1024 episodes: %d", k);
  mrl_vecenv_free(v);
}

static void test_clipping(void) {
  counter_env *e = ce_new(2, 2);
  float lo[2] = {-1, 0}, hi[2] = {1, 0.5f};
  mrl_vecenv *v = make(e, MRL_BOX, 2, lo, hi);
  lo[0] = -100;  /* the vecenv keeps its own copy of the bounds */
  mrl_vecenv_reset(v, 0);
  float act[4] = {-3, 0.25f, 2, 7};
  float keep[4];
  memcpy(keep, act, sizeof act);
  TAP_OK(mrl_vecenv_step(v, act) == MRL_OK, "box step");
  TAP_OK(e->last_actions[0] == -1 && e->last_actions[1] == 0.25f &&
             e->last_actions[2] == 1 && e->last_actions[3] == 0.5f,
         "box actions clipped to [low, high] per dimension");
  TAP_OK(memcmp(act, keep, sizeof act) == 0, "the caller's actions are untouched");
  TAP_OK(mrl_vecenv_desc(v)->low[0] == -1, "desc bounds are copies");
  act[1] = NAN;
  TAP_OK(mrl_vecenv_step(v, act) == MRL_ENONFINITE, "NaN action refused");
  mrl_vecenv_free(v);

  e = ce_new(2, 2);
  v = make(e, MRL_BOX, 2, NULL, NULL);
  mrl_vecenv_reset(v, 0);
  float big[4] = {-3, 9, 2, 7};
  mrl_vecenv_step(v, big);
  TAP_OK(e->last_actions[0] == -3 && e->last_actions[1] == 9, "unbounded box: no clipping");
  mrl_vecenv_free(v);

  e = ce_new(2, 1);
  v = make(e, MRL_DISCRETE, 2, NULL, NULL);
  mrl_vecenv_reset(v, 0);
  float bad[2] = {0, 2};
  TAP_OK(mrl_vecenv_step(v, bad) == MRL_EINVAL, "discrete action out of range refused");
  TAP_OK(strstr(mrl_vecenv_error(v), "env 1") != NULL, "message names the env: %s",
         mrl_vecenv_error(v));
  float frac[2] = {0.5f, 1};
  TAP_OK(mrl_vecenv_step(v, frac) == MRL_EINVAL, "fractional discrete action refused");
  TAP_OK(e->steps_done == 0, "refused actions never reach the envs");
  mrl_vecenv_free(v);
}

static void test_errors(void) {
  counter_env *e = ce_new(2, 1);
  e->fail_at_step = 2;
  e->nan_at_step = 3;  /* the third call to ops->step */
  mrl_vecenv *v = make(e, MRL_DISCRETE, 2, NULL, NULL);
  mrl_vecenv_reset(v, 0);
  float a[2] = {0, 1};
  TAP_OK(mrl_vecenv_step(v, a) == MRL_OK, "step 1 ok");
  TAP_OK(mrl_vecenv_step(v, a) == MRL_EENV, "ops failure -> MRL_EENV");
  TAP_OK(strcmp(mrl_vecenv_error(v), "step: counter env copy 1: boom at step 2") == 0,
         "ops message is prefixed: %s", mrl_vecenv_error(v));
  TAP_OK(mrl_vecenv_step(v, a) == MRL_ESTATE, "after a failure the batch needs a reset");
  TAP_OK(mrl_vecenv_reset(v, 0) == MRL_OK, "reset recovers");
  TAP_OK(mrl_vecenv_step(v, a) == MRL_ENONFINITE, "NaN observation detected");
  TAP_OK(strstr(mrl_vecenv_error(v), "step returned non-finite obs[2] = NaN") &&
             strstr(mrl_vecenv_error(v), "env 'env' copy 0"),
         "NaN message: %s", mrl_vecenv_error(v));
  TAP_OK(mrl_vecenv_reset(v, 0) == MRL_OK && mrl_vecenv_step(v, a) == MRL_OK,
         "usable again after reset");
  mrl_vecenv_free(v);
}

static void test_determinism(void) {
  float o1[2 * 4 * 50], o2[2 * 4 * 50];
  float *outs[2] = {o1, o2};
  for (int run = 0; run < 2; run++) {
    counter_env *e = ce_new(4, 1);
    for (int i = 0; i < 4; i++) e->term_at[i] = 3 + i;
    e->trunc_at = 5;
    mrl_vecenv *v = make(e, MRL_DISCRETE, 2, NULL, NULL);
    mrl_vecenv_reset(v, 123);
    for (int s = 0; s < 50; s++) {
      float a[4] = {(float)(s % 2), 1, 0, (float)((s / 3) % 2)};
      mrl_vecenv_step(v, a);
      memcpy(outs[run] + s * 8, mrl_vecenv_obs(v), 8 * sizeof(float));
    }
    mrl_vecenv_free(v);
  }
  TAP_OK(memcmp(o1, o2, sizeof o1) == 0, "same seed and actions: same observations");
}

/* The vecenv's own time limit, and blocks run on its threads. */
static void test_time_limit_and_blocks(void) {
  float o[2][3 * 4 * 2];
  double rets[2][16];
  int64_t lens[2][16];
  int ks[2];
  for (int run = 0; run < 2; run++) {
    counter_env *e = ce_new(4, 1);
    e->term_at[0] = 2;  /* terminated before the limit */
    mrl_env_desc d = {.num_envs = 4, .obs_dim = 2, .action_kind = MRL_DISCRETE, .action_n = 2, .blocks = run == 0 ? 1 : 3, .max_episode_steps = 3, .name = "ctr"};
    mrl_vecenv *v = NULL;
    TAP_OK(mrl_vecenv_new(&v, &ce_ops, e, &d) == MRL_OK, "vecenv with %d blocks", d.blocks);
    TAP_OK(strcmp(mrl_vecenv_desc(v)->name, "ctr") == 0, "desc name is a copy");
    int first, count, covered = 0, ok = 1;
    for (int b = 0; b < mrl_vecenv_desc(v)->blocks; b++) {
      mrl_vecenv_block(v, b, &first, &count);
      ok &= first == covered && count >= 1;
      covered += count;
    }
    TAP_OK(ok && covered == 4, "blocks partition the copies in order");
    mrl_vecenv_reset(v, 7);
    float a[4] = {0, 1, 0, 1};
    for (int s = 0; s < 3; s++) {
      TAP_OK(mrl_vecenv_step(v, a) == MRL_OK, "step %d", s);
      memcpy(o[run] + s * 8, mrl_vecenv_obs(v), 8 * sizeof(float));
    }
    const uint8_t *tr = mrl_vecenv_truncated(v), *te = mrl_vecenv_terminated(v);
    TAP_OK(tr[1] && tr[2] && tr[3] && !te[1] && !tr[0],
           "the limit of 3 truncates envs 1-3 at step 3");
    TAP_OK(mrl_vecenv_final_obs(v)[2] == 3, "final_obs holds the last row");
    ks[run] = mrl_vecenv_drain_episodes(v, rets[run], lens[run], 16);
    TAP_OK(ks[run] == 4 && lens[run][0] == 2 && lens[run][1] == 3 && rets[run][2] == 3,
           "episodes in copy order: %d", ks[run]);
    mrl_vecenv_free(v);
  }
  TAP_OK(memcmp(o[0], o[1], sizeof o[0]) == 0 && ks[0] == ks[1] &&
             memcmp(lens[0], lens[1], 4 * sizeof lens[0][0]) == 0 &&
             memcmp(rets[0], rets[1], 4 * sizeof rets[0][0]) == 0,
         "3 blocks on threads give the same rows and episodes as one");

  /* errors: the lowest failing copy reports, with threads too */
  counter_env *e = ce_new(4, 1);
  e->nan_at_step = 2;
  mrl_env_desc d = {.num_envs = 4, .obs_dim = 2, .action_kind = MRL_DISCRETE, .action_n = 2, .blocks = 2, .name = "ctr"};
  mrl_vecenv *v = NULL;
  mrl_vecenv_new(&v, &ce_ops, e, &d);
  mrl_vecenv_reset(v, 0);
  float a[4] = {0, 0, 0, 0};
  mrl_vecenv_step(v, a);
  TAP_OK(mrl_vecenv_step(v, a) == MRL_ENONFINITE &&
             strstr(mrl_vecenv_error(v), "env 'ctr' copy 0: step returned non-finite obs[2]"),
         "a NaN row from a threaded block: %s", mrl_vecenv_error(v));
  mrl_vecenv_free(v);
  mrl_env_desc bad = {.num_envs = 4, .obs_dim = 2, .action_kind = MRL_DISCRETE, .action_n = 2, .blocks = 5};
  e = ce_new(4, 1);
  TAP_OK(mrl_vecenv_new(&v, &ce_ops, e, &bad) == MRL_EINVAL, "more blocks than envs refused");
}

/* Composite actions: each part's columns checked (an index, bits, a
** Gaussian number clipped to its bounds) before the envs see the row. */
static void test_composite(void) {
  const mrl_action_part parts[3] = {{MRL_PART_CATEGORICAL, 3}, {MRL_PART_GAUSSIAN, 1},
                                    {MRL_PART_BERNOULLI, 2}};
  float lo[4] = {0, -1, 0, 0}, hi[4] = {2, 1, 1, 1};
  counter_env *e = ce_new(2, 4);
  mrl_env_desc d = {.num_envs = 2, .obs_dim = 2, .action_kind = MRL_COMPOSITE, .action_n = 4,
                    .low = lo, .high = hi, .parts = parts, .nparts = 3};
  mrl_vecenv *v = NULL;
  TAP_OK(mrl_vecenv_new(&v, &ce_ops, e, &d) == MRL_OK, "a composite vecenv (categorical 3, gaussian 1, bits 2)");
  mrl_vecenv_reset(v, 0);
  float good[8] = {2, 5.0f, 1, 0, 0, -3.0f, 0, 1};
  TAP_OK(mrl_vecenv_step(v, good) == MRL_OK && e->last_actions[1] == 1.0f &&
             e->last_actions[5] == -1.0f && e->last_actions[0] == 2.0f,
         "a good row reaches the env, the gaussian column clipped");
  float bad_index[8] = {3, 0, 1, 0, 0, 0, 0, 1};
  TAP_OK(mrl_vecenv_step(v, bad_index) == MRL_EINVAL &&
             strstr(mrl_vecenv_error(v), "action 3 of part 1 of env 0 is not an index in [0, 3)"),
         "%s", mrl_vecenv_error(v));
  mrl_vecenv_reset(v, 0);
  float bad_bit[8] = {0, 0, 1, 0, 0, 0, 0.5f, 1};
  TAP_OK(mrl_vecenv_step(v, bad_bit) == MRL_EINVAL &&
             strstr(mrl_vecenv_error(v), "bit 1 of part 3 of env 1 is 0.5"),
         "%s", mrl_vecenv_error(v));
  mrl_vecenv_free(v);
  /* parts that do not add up to action_n, and masks over a gaussian part */
  mrl_env_desc wrong = d;
  wrong.action_n = 5;
  TAP_OK(mrl_vecenv_new(&v, &ce_ops, ce_new(2, 5), &wrong) == MRL_EINVAL, "a width other than the parts' is refused");
  wrong = d;
  wrong.mask_width = 6;
  TAP_OK(mrl_vecenv_new(&v, &ce_ops, ce_new(2, 4), &wrong) == MRL_EINVAL, "masks over a gaussian part are refused");
}

/* Masks: all valid until the env side writes them; commit_mask checks 0/1
** and a valid action in every categorical part, naming env and copy. */
static void test_masks(void) {
  const mrl_action_part parts[2] = {{MRL_PART_CATEGORICAL, 2}, {MRL_PART_CATEGORICAL, 3}};
  counter_env *e = ce_new(2, 2);
  mrl_env_desc d = {.num_envs = 2, .obs_dim = 2, .action_kind = MRL_COMPOSITE, .action_n = 2,
                    .parts = parts, .nparts = 2, .mask_width = 5, .name = "m"};
  mrl_vecenv *v = NULL;
  TAP_OK(mrl_vecenv_new(&v, &ce_ops, e, &d) == MRL_OK && mrl_vecenv_mask_width(v) == 5,
         "a vecenv with masks of 5");
  const float *m = mrl_vecenv_masks(v);
  int ones = 1;
  for (int j = 0; j < 10; j++) ones &= m[j] == 1.0f;
  TAP_OK(ones, "every action valid before the env writes a mask");
  float *row = mrl_vecenv_mask_row(v, 1);
  const float ok_row[5] = {0, 1, 1, 0, 0}, half[5] = {1, 0.5f, 1, 1, 1}, none[5] = {1, 1, 0, 0, 0};
  memcpy(row, ok_row, sizeof ok_row);
  TAP_OK(mrl_vecenv_commit_mask(v, 1, "action_mask") == MRL_OK && m[5] == 0.0f && m[6] == 1.0f,
         "a good mask lands in copy 1's row");
  memcpy(row, half, sizeof half);
  mrl_vecenv_commit_mask(v, 1, "action_mask");
  memcpy(row, none, sizeof none);
  TAP_OK(mrl_vecenv_commit_mask(v, 1, "action_mask") == MRL_EINVAL, "a part without a valid action is refused");
  mrl_env_desc plain = {.num_envs = 1, .obs_dim = 2, .action_kind = MRL_DISCRETE, .action_n = 2};
  mrl_vecenv *w = NULL;
  mrl_vecenv_new(&w, &ce_ops, ce_new(1, 1), &plain);
  TAP_OK(mrl_vecenv_masks(w) == NULL && mrl_vecenv_mask_width(w) == 0 &&
             mrl_vecenv_mask_row(w, 0) == NULL,
         "no masks unless the desc asks");
  mrl_vecenv_free(w);
  mrl_vecenv_free(v);
}

int main(void) {
  test_composite();
  test_masks();
  test_validation();
  test_autoreset_and_episodes();
  test_ring_overflow();
  test_clipping();
  test_errors();
  test_determinism();
  test_time_limit_and_blocks();
  return tap_done();
}
