/*
** l_bgtrain.c — moonrl.BgTrain: PPO updates on a background thread
** (mrl_bgtrain_*, moonrl.h).  Conversion only: the batch's arrays are read
** into floats here and copied by mrl_bgtrain_submit; all state lives in C.
*/
#include <string.h>

#include "l_module.h"
#include "l_ppo.h"
#include "l_tensor.h"

#define MRLL_BGTRAIN "moonrl.BgTrain"
#define MRLL_ROLLOUT "moonrl.Rollout" /* vecenv_lua.c */

typedef struct lbg {
  mrl_bgtrain *h; /* NULL once closed */
  int obs_dim, action_n;
  mrl_action_kind kind;
} lbg;

static const char *const states[] = {"idle", "running", "done", "failed", NULL};

#define checkbg(L) ((lbg *)mrlL_checkopen(L, MRLL_BGTRAIN))

static void freeh(void *h) { mrl_bgtrain_free(h); } /* cancels a running update */
static int bg_close(lua_State *L) { return mrlL_close(L, NULL, freeh); }
static int bg_closemethod(lua_State *L) { return mrlL_close(L, MRLL_BGTRAIN, freeh); }

static int bg_tostring(lua_State *L) {
  lbg *b = (lbg *)mrlL_checkself(L, MRLL_BGTRAIN);
  if (b->h == NULL)
    lua_pushstring(L, MRLL_BGTRAIN " (closed)");
  else
    lua_pushfstring(L, MRLL_BGTRAIN " (%s, %d updates)", states[mrl_bgtrain_poll(b->h)],
                    (int)mrl_bgtrain_updates(b->h));
  return 1;
}

/* core.bgtrain(policy, value, policy_optim, value_optim) */
static int l_bgtrain(lua_State *L) {
  mrl_policy *p = mrlL_checkpolicy(L, 1);
  mrl_net *v = mrlL_checknet(L, 2);
  mrl_optim *po = mrlL_checkoptim(L, 3);
  mrl_optim *vo = mrlL_checkoptim(L, 4);
  lbg *b = (lbg *)lua_newuserdatauv(L, sizeof *b, 0);
  b->h = NULL;
  b->obs_dim = mrl_policy_obs_dim(p);
  b->action_n = mrl_policy_action_n(p);
  b->kind = mrl_policy_action_kind(p);
  luaL_setmetatable(L, MRLL_BGTRAIN);
  int st = mrl_bgtrain_new(&b->h, p, v, po, vo);
  if (st == MRL_EINVAL)
    return luaL_error(L, "bgtrain: the value net (%d -> %d) or an optimiser (%d, %d parameters) "
                      "does not fit the policy (obs_dim %d, %d parameters) or its net (%d)",
                      mrl_net_in_dim(v), mrl_net_out_dim(v), (int)mrl_optim_nparams(po),
                      (int)mrl_optim_nparams(vo), b->obs_dim, (int)mrl_policy_nparams(p),
                      (int)mrl_net_nparams(v));
  if (st != MRL_OK) return luaL_error(L, "bgtrain: %s", mrl_status_string(st));
  return 1;
}

/* Field k of the batch table (at index 2) pushed on the stack; its index,
** or 0 when absent and optional. */
static int field(lua_State *L, const char *k, int required) {
  if (lua_getfield(L, 2, k) == LUA_TNIL) {
    if (required) luaL_error(L, "bad field '%s' (array expected, got nil)", k);
    lua_pop(L, 1);
    return 0;
  }
  return lua_gettop(L);
}

/* 0/1 flags of n rows from the field at idx (booleans or numbers). */
static const uint8_t *flags(lua_State *L, int idx, int n) {
  const float *f = mrlL_checkvec(L, idx, n, NULL, 1);
  uint8_t *u = (uint8_t *)lua_newuserdatauv(L, (size_t)n, 0);
  mrl_flags_from_floats(f, (size_t)n, u);
  return u;
}

/* bg:submit(batch, [config]): batch is a moonrl.Rollout after gae(), or
** {rollout =, boot_obs =, [gamma], [lambda]} (a rollout filled by
** core.rollout_put/rollout_outcome, bootstrapped on the thread), or
** {obs =, actions =, logp =, rewards =, terminated =, truncated =,
**  boot_obs =, [final_obs =], [gamma = 0.99], [lambda = 0.95],
**  [num_envs = 1]} (the trainer computes values and GAE with its critic),
** or the same with values =, advantages =, returns = instead of boot_obs. */
static int bg_submit(lua_State *L) {
  lbg *b = checkbg(L);
  lua_settop(L, 3);
  mrl_ppo_config c;
  mrlL_ppo_config(L, 3, &c, 1);
  int st;
  mrl_rollout *ro = (mrl_rollout *)mrlL_testudata(L, 2, MRLL_ROLLOUT);
  if (ro != NULL) {
    ro = (mrl_rollout *)mrlL_checkhandle(L, 2, MRLL_ROLLOUT);
    st = mrl_bgtrain_submit_rollout(b->h, ro, NULL, 0, 0, &c);
  } else if (lua_istable(L, 2) && lua_getfield(L, 2, "rollout") != LUA_TNIL) {
    /* {rollout =, boot_obs =, [gamma], [lambda]}: bootstrapped on the thread */
    ro = (mrl_rollout *)mrlL_checkhandle(L, lua_gettop(L), MRLL_ROLLOUT);
    mrlL_mat m;
    mrlL_checkmat(L, field(L, "boot_obs", 1), b->obs_dim, mrl_rollout_num_envs(ro), &m);
    st = mrl_bgtrain_submit_rollout(b->h, ro, m.data, mrlL_optnumfield(L, 2, "gamma", 0.99),
                                    mrlL_optnumfield(L, 2, "lambda", 0.95), &c);
  } else {
    if (!lua_istable(L, 2)) return mrlL_typeerror(L, 2, "moonrl.Rollout or batch table");
    mrl_bg_batch x;
    memset(&x, 0, sizeof x);
    x.num_envs = (int)mrlL_optintfield(L, 2, "num_envs", 1, 1, MRL_MAX_BATCH);
    mrlL_mat obs;
    mrlL_checkmat(L, field(L, "obs", 1), b->obs_dim, -1, &obs);
    if (obs.rows % x.num_envs)
      return luaL_error(L, "bad field 'obs' (%d rows is not a multiple of num_envs %d)",
                        obs.rows, x.num_envs);
    const int rows = obs.rows;
    x.steps = rows / x.num_envs;
    x.obs = obs.data;
    x.actions = mrlL_checkactions(L, field(L, "actions", 1), b->kind, b->action_n, rows);
    x.logp = mrlL_checkvec(L, field(L, "logp", 1), rows, NULL, 0);
    int boot = field(L, "boot_obs", 0);
    if (boot) {
      mrlL_mat m;
      mrlL_checkmat(L, boot, b->obs_dim, x.num_envs, &m);
      x.boot_obs = m.data;
      x.rewards = mrlL_checkvec(L, field(L, "rewards", 1), rows, NULL, 0);
      x.terminated = flags(L, field(L, "terminated", 1), rows);
      x.truncated = flags(L, field(L, "truncated", 1), rows);
      int fin = field(L, "final_obs", 0);
      if (fin) {
        mrlL_checkmat(L, fin, b->obs_dim, rows, &m);
        x.final_obs = m.data;
      }
      x.gamma = mrlL_optnumfield(L, 2, "gamma", 0.99);
      x.lambda = mrlL_optnumfield(L, 2, "lambda", 0.95);
    } else {
      x.values = mrlL_checkvec(L, field(L, "values", 1), rows, NULL, 0);
      x.advantages = mrlL_checkvec(L, field(L, "advantages", 1), rows, NULL, 0);
      x.returns = mrlL_checkvec(L, field(L, "returns", 1), rows, NULL, 0);
    }
    st = mrl_bgtrain_submit(b->h, &x, &c);
  }
  if (st != MRL_OK) return luaL_error(L, "%s", mrl_bgtrain_error(b->h));
  return 0;
}

static int bg_poll(lua_State *L) {
  lua_pushstring(L, states[mrl_bgtrain_poll(checkbg(L)->h)]);
  return 1;
}

static int bg_wait(lua_State *L) {
  lua_pushstring(L, states[mrl_bgtrain_wait(checkbg(L)->h)]);
  return 1;
}

static int bg_cancel(lua_State *L) {
  lua_pushstring(L, states[mrl_bgtrain_cancel(checkbg(L)->h)]);
  return 1;
}

/* bg:publish(policy, [value]) */
static int bg_publish(lua_State *L) {
  lbg *b = checkbg(L);
  mrl_policy *p = lua_isnoneornil(L, 2) ? NULL : mrlL_checkpolicy(L, 2);
  mrl_net *v = lua_isnoneornil(L, 3) ? NULL : mrlL_checknet(L, 3);
  if (mrl_bgtrain_publish(b->h, p, v) != MRL_OK)
    return luaL_error(L, "%s", mrl_bgtrain_error(b->h));
  return 0;
}

/* bg:sync_in / sync_out(policy, value, policy_optim, value_optim), each nil-able */
static int bg_sync(lua_State *L, int out) {
  lbg *b = checkbg(L);
  lua_settop(L, 5);
  mrl_policy *p = lua_isnil(L, 2) ? NULL : mrlL_checkpolicy(L, 2);
  mrl_net *v = lua_isnil(L, 3) ? NULL : mrlL_checknet(L, 3);
  mrl_optim *po = lua_isnil(L, 4) ? NULL : mrlL_checkoptim(L, 4);
  mrl_optim *vo = lua_isnil(L, 5) ? NULL : mrlL_checkoptim(L, 5);
  int st = out ? mrl_bgtrain_sync_out(b->h, p, v, po, vo)
               : mrl_bgtrain_sync_in(b->h, p, v, po, vo);
  if (st != MRL_OK) return luaL_error(L, "%s", mrl_bgtrain_error(b->h));
  return 0;
}
static int bg_sync_in(lua_State *L) { return bg_sync(L, 0); }
static int bg_sync_out(lua_State *L) { return bg_sync(L, 1); }

/* bg:report() → the table of core.ppo_update for the last update that
** succeeded, or nil (none yet, or running) */
static int bg_report(lua_State *L) {
  mrl_ppo_report r;
  if (mrl_bgtrain_report(checkbg(L)->h, &r) != MRL_OK) return 0;
  mrlL_ppo_report(L, &r, 0);
  return 1;
}

static int bg_updates(lua_State *L) {
  lua_pushinteger(L, (lua_Integer)mrl_bgtrain_updates(checkbg(L)->h));
  return 1;
}

static int bg_error(lua_State *L) {
  lua_pushstring(L, mrl_bgtrain_error(checkbg(L)->h));
  return 1;
}

static const luaL_Reg methods[] = {
  {"submit", bg_submit},   {"poll", bg_poll},         {"wait", bg_wait},
  {"cancel", bg_cancel},
  {"publish", bg_publish}, {"sync_in", bg_sync_in},   {"sync_out", bg_sync_out},
  {"report", bg_report},   {"updates", bg_updates},   {"error", bg_error},
  {"close", bg_closemethod}, {NULL, NULL}};

static const luaL_Reg metas[] = {
  {"__gc", bg_close}, {"__close", bg_close}, {"__tostring", bg_tostring}, {NULL, NULL}};

int mrlL_open_bgtrain(lua_State *L) {
  mrlL_newclass(L, MRLL_BGTRAIN, methods, metas, NULL);
  lua_pushcfunction(L, l_bgtrain);
  lua_setfield(L, -2, "bgtrain");
  return 0;
}
