/*
** l_train.c — the update routines that work on several handles at once:
** core.ppo_update (policy, value net, two optimisers, a rollout) and
** core.value_fit (a critic regression).  Both leave every object as it was
** when they fail, so they raise with the runtime's message.
*/
#include <math.h>
#include <string.h>

#include "l_funcs.h"
#include "l_module.h"
#include "l_reduce.h"
#include "l_tensor.h"

#define MRLL_ROLLOUT "moonrl.Rollout" /* vecenv_lua.c */

/* Field k of the table at idx: a moonrl.Reducer, or nil (NULL). */
static mrlL_reducer *optreducer(lua_State *L, int idx, const char *k) {
  mrlL_reducer *r = NULL;
  if (lua_getfield(L, idx, k) != LUA_TNIL) {
    r = (mrlL_reducer *)luaL_testudata(L, -1, MRLL_REDUCER);
    if (r == NULL || r->fn == NULL)
      luaL_error(L, "bad field '%s' (%s expected, got %s)", k, MRLL_REDUCER,
                 luaL_typename(L, -1));
  }
  lua_pop(L, 1); /* the table keeps the reducer alive during the call */
  return r;
}

static void setnum(lua_State *L, const char *k, double v) {
  lua_pushnumber(L, v);
  lua_setfield(L, -2, k);
}

/* core.ppo_update(policy, value, policy_opt, value_opt, rollout, [config])
** → {policy_loss, value_loss, entropy, approx_kl, clip_fraction,
**    explained_variance, grad_norm, epochs_done, minibatches, stopped_early} */
static int l_ppo_update(lua_State *L) {
  mrl_ppo_config c;
  mrl_ppo_report r;
  memset(&c, 0, sizeof c);
  char err[256];
  lua_settop(L, 6);
  mrl_policy *p = mrlL_checkpolicy(L, 1);
  mrl_net *v = mrlL_checknet(L, 2);
  mrl_optim *po = mrlL_checkoptim(L, 3);
  mrl_optim *vo = mrlL_checkoptim(L, 4);
  mrl_rollout *ro = (mrl_rollout *)mrlL_checkhandle(L, 5, MRLL_ROLLOUT);
  /* Stable-Baselines3's defaults */
  c.epochs = 10;
  c.minibatch_size = 64;
  c.lr = 3e-4;
  c.clip_eps = 0.2;
  c.clip_value = 0;
  c.ent_coef = 0;
  c.vf_coef = 0.5;
  c.max_grad_norm = 0.5;
  c.target_kl = 0;
  c.normalize_advantages = 1;
  if (!lua_isnil(L, 6)) {
    luaL_checktype(L, 6, LUA_TTABLE);
    c.epochs = (int)mrlL_optintfield(L, 6, "epochs", c.epochs, 1, 1000000);
    c.minibatch_size = (int)mrlL_optintfield(L, 6, "minibatch_size", c.minibatch_size, 1,
                                             MRL_MAX_BATCH);
    c.lr = mrlL_optnumfield(L, 6, "lr", c.lr);
    c.clip_eps = mrlL_optnumfield(L, 6, "clip_eps", c.clip_eps);
    c.clip_value = mrlL_optnumfield(L, 6, "clip_value", c.clip_value);
    c.ent_coef = mrlL_optnumfield(L, 6, "ent_coef", c.ent_coef);
    c.vf_coef = mrlL_optnumfield(L, 6, "vf_coef", c.vf_coef);
    c.max_grad_norm = mrlL_optnumfield(L, 6, "max_grad_norm", c.max_grad_norm);
    c.target_kl = mrlL_optnumfield(L, 6, "target_kl", c.target_kl);
    c.normalize_advantages = mrlL_optboolfield(L, 6, "normalize_advantages", 1);
    c.shards = (int)mrlL_optintfield(L, 6, "shards", 0, 0, MRL_MAX_BATCH);
    mrlL_reducer *red = optreducer(L, 6, "reduce");
    if (red) { c.reduce = red->fn; c.reduce_ud = red->ud; }
  }
  err[0] = '\0';
  int st = mrl_ppo_update(p, v, po, vo, ro, &c, &r, err, sizeof err);
  if (st != MRL_OK) return luaL_error(L, "ppo_update: %s", err[0] ? err : mrl_status_string(st));
  lua_createtable(L, 0, 10);
  setnum(L, "policy_loss", r.policy_loss);
  setnum(L, "value_loss", r.value_loss);
  setnum(L, "entropy", r.entropy);
  setnum(L, "approx_kl", r.approx_kl);
  setnum(L, "clip_fraction", r.clip_fraction);
  setnum(L, "explained_variance", r.explained_variance);
  setnum(L, "grad_norm", r.grad_norm);
  lua_pushinteger(L, r.epochs_done);
  lua_setfield(L, -2, "epochs_done");
  lua_pushinteger(L, r.minibatches);
  lua_setfield(L, -2, "minibatches");
  lua_pushboolean(L, r.stopped_early);
  lua_setfield(L, -2, "stopped_early");
  return 1;
}

/* core.value_fit(value, optim, obs, targets, [{epochs=, minibatch=, lr=,
** rng = moonrl.Rng | seed = n}]) → final_loss */
static int l_value_fit(lua_State *L) {
  mrlL_mat obs;
  char err[256];
  double loss = 0;
  lua_settop(L, 5);
  mrl_net *v = mrlL_checknet(L, 1);
  mrl_optim *o = mrlL_checkoptim(L, 2);
  int in = mrl_net_in_dim(v);
  if (mrl_net_out_dim(v) != 1) return luaL_argerror(L, 1, "a net with out_dim = 1 expected");
  mrlL_checkmat(L, 3, in, -1, &obs);
  const float *tg = mrlL_checkvec(L, 4, obs.rows, NULL, 0);
  int epochs = 5, mb = 64;
  double lr = 1e-3;
  mrl_rng *rng = NULL;
  mrlL_reducer *red = NULL;
  lua_Integer seed = 0;
  if (!lua_isnil(L, 5)) {
    luaL_checktype(L, 5, LUA_TTABLE);
    epochs = (int)mrlL_optintfield(L, 5, "epochs", epochs, 1, 1000000);
    mb = (int)mrlL_optintfield(L, 5, "minibatch", mb, 1, MRL_MAX_BATCH);
    lr = mrlL_optnumfield(L, 5, "lr", lr);
    seed = mrlL_optintfield(L, 5, "seed", 0, LUA_MININTEGER, LUA_MAXINTEGER);
    if (lua_getfield(L, 5, "rng") != LUA_TNIL) {
      if (luaL_testudata(L, -1, MRLL_RNG) == NULL)
        return luaL_error(L, "bad field 'rng' (%s expected, got %s)", MRLL_RNG,
                          luaL_typename(L, -1));
      rng = mrlL_checkrng(L, lua_gettop(L));
    }
    lua_pop(L, 1); /* the Rng stays referenced by argument 5 */
    red = optreducer(L, 5, "reduce");
  }
  if (rng == NULL) rng = mrlL_newrng(L, (uint64_t)seed); /* collected with the call */
  err[0] = '\0';
  int st = mrl_value_fit_reduce(v, o, obs.data, tg, obs.rows, epochs, mb, lr, rng,
                                red ? red->fn : NULL, red ? red->ud : NULL, &loss,
                                err, sizeof err);
  if (st != MRL_OK) return luaL_error(L, "value_fit: %s", err[0] ? err : mrl_status_string(st));
  lua_pushnumber(L, loss);
  return 1;
}

/* core.policy_set_reduce(policy, reducer | nil): trust-region products,
** TRPO's gradient and line search become means over all processes (see
** mrl_policy_set_reduce); nil turns it off.  The policy keeps the reducer
** alive (a weak-keyed registry table). */
static int l_policy_set_reduce(lua_State *L) {
  lua_settop(L, 2);
  mrl_policy *p = mrlL_checkpolicy(L, 1);
  mrlL_reducer *r = NULL;
  if (!lua_isnil(L, 2)) {
    r = (mrlL_reducer *)luaL_testudata(L, 2, MRLL_REDUCER);
    if (r == NULL || r->fn == NULL)
      return luaL_argerror(L, 2, MRLL_REDUCER " or nil expected");
  }
  if (luaL_getsubtable(L, LUA_REGISTRYINDEX, "moonrl.policy_reducers") == 0) {
    lua_pushliteral(L, "k");
    lua_setfield(L, -2, "__mode");
    lua_pushvalue(L, -1);
    lua_setmetatable(L, -2);
  }
  lua_pushvalue(L, 1);
  lua_pushvalue(L, 2);
  lua_rawset(L, -3);
  mrl_policy_set_reduce(p, r ? r->fn : NULL, r ? r->ud : NULL);
  return 0;
}

int mrlL_open_train(lua_State *L) {
  lua_pushcfunction(L, l_policy_set_reduce);
  lua_setfield(L, -2, "policy_set_reduce");
  lua_pushcfunction(L, l_ppo_update);
  lua_setfield(L, -2, "ppo_update");
  lua_pushcfunction(L, l_value_fit);
  lua_setfield(L, -2, "value_fit");
  return 0;
}
