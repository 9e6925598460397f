/*
** l_train.c — the update routines that work on several handles at once:
** core.value_fit (a critic regression), core.bc_fit (behaviour cloning), core.pg_ascend (the score-function
** trainers' step) and
** the filling of a rollout one
** transition at a time (core.rollout_put / rollout_outcome /
** rollout_bootstrap / rollout_behaviour, the in-game agent's buffer);
** PPO is in l_ppo.c.  Both leave every object as it was
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

/* The options value_fit and bc_fit share, argument 5: {epochs=, minibatch=,
** lr=, rng = moonrl.Rng | seed = n}.  A generator made from seed is left on
** the stack and collected with the call. */
static mrl_rng *fitopts(lua_State *L, int *epochs, int *mb, double *lr) {
  lua_Integer seed = 0;
  mrl_rng *rng = NULL;
  if (!lua_isnil(L, 5)) {
    luaL_checktype(L, 5, LUA_TTABLE);
    *epochs = (int)mrlL_optintfield(L, 5, "epochs", *epochs, 1, 1000000);
    *mb = (int)mrlL_optintfield(L, 5, "minibatch", *mb, 1, MRL_MAX_BATCH);
    *lr = mrlL_optnumfield(L, 5, "lr", *lr);
    seed = mrlL_optintfield(L, 5, "seed", 0, LUA_MININTEGER, LUA_MAXINTEGER);
    if (lua_getfield(L, 5, "rng") != LUA_TNIL) {
      if (luaL_testudata(L, -1, MRLL_RNG) == NULL)
        luaL_error(L, "bad field 'rng' (%s expected, got %s)", MRLL_RNG, luaL_typename(L, -1));
      rng = mrlL_checkrng(L, lua_gettop(L));
    }
    lua_pop(L, 1); /* the Rng stays referenced by argument 5 */
  }
  return rng ? rng : mrlL_newrng(L, (uint64_t)seed);
}

/* core.value_fit(value, optim, obs, targets, [{epochs=, minibatch=, lr=,
** rng = moonrl.Rng | seed = n, reduce = moonrl.Reducer}]) → final_loss */
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
  mrl_rng *rng = fitopts(L, &epochs, &mb, &lr);
  mrlL_reducer *red = lua_isnil(L, 5) ? NULL : optreducer(L, 5, "reduce");
  err[0] = '\0';
  int st = mrl_value_fit_reduce(v, o, obs.data, tg, obs.rows, epochs, mb, lr, rng,
                                red ? red->fn : NULL, red ? red->ud : NULL, &loss,
                                err, sizeof err);
  if (st != MRL_OK) return luaL_error(L, "value_fit: %s", err[0] ? err : mrl_status_string(st));
  lua_pushnumber(L, loss);
  return 1;
}

/* core.bc_fit(policy, optim, obs, actions, [{epochs=, minibatch=, lr=,
** rng = moonrl.Rng | seed = n}]) → {last_epoch_nll, nll, accuracy}
** (behaviour cloning; accuracy only for a discrete policy) */
static int l_bc_fit(lua_State *L) {
  mrlL_mat obs;
  char err[256];
  lua_settop(L, 5);
  mrl_policy *p = mrlL_checkpolicy(L, 1);
  mrl_optim *o = mrlL_checkoptim(L, 2);
  mrlL_checkmat(L, 3, mrl_policy_obs_dim(p), -1, &obs);
  const float *act = mrlL_checkactions(L, 4, mrl_policy_action_kind(p),
                                       mrl_policy_action_n(p), obs.rows);
  int epochs = 10, mb = 64;
  double lr = 1e-3;
  mrl_rng *rng = fitopts(L, &epochs, &mb, &lr);
  mrl_bc_report r;
  err[0] = '\0';
  int st = mrl_policy_bc_fit(p, o, obs.data, act, obs.rows, epochs, mb, lr, rng, &r, err,
                             sizeof err);
  if (st != MRL_OK) return luaL_error(L, "bc_fit: %s", err[0] ? err : mrl_status_string(st));
  lua_createtable(L, 0, 3);
  lua_pushnumber(L, r.last_epoch_nll);
  lua_setfield(L, -2, "last_epoch_nll");
  lua_pushnumber(L, r.nll);
  lua_setfield(L, -2, "nll");
  if (mrl_policy_action_kind(p) == MRL_DISCRETE) {
    lua_pushnumber(L, r.accuracy);
    lua_setfield(L, -2, "accuracy");
  }
  return 1;
}

/* core.pg_ascend(policy, optim, ascent, {lr =, max_grad_norm = 0, scale = 1})
** → the norm before clipping: grad := −scale·ascent, clipped, one step */
static int l_pg_ascend(lua_State *L) {
  lua_settop(L, 4);
  mrl_policy *p = mrlL_checkpolicy(L, 1);
  mrl_optim *o = mrlL_checkoptim(L, 2);
  const float *g = mrlL_checkvec(L, 3, (int)mrl_policy_nparams(p), NULL, 0);
  luaL_checktype(L, 4, LUA_TTABLE);
  double lr = mrlL_optnumfield(L, 4, "lr", NAN);
  double max = mrlL_optnumfield(L, 4, "max_grad_norm", 0);
  double scale = mrlL_optnumfield(L, 4, "scale", 1);
  if (!(lr >= 0) || !isfinite(lr)) return luaL_error(L, "bad field 'lr' (finite number >= 0 expected)");
  double norm = 0;
  int st = mrl_policy_ascent_step(p, o, g, scale, lr, max, &norm);
  if (st != MRL_OK)
    return luaL_error(L, "pg_ascend: %s", st == MRL_ENONFINITE
                                             ? "non-finite gradient; step refused, parameters unchanged"
                                             : mrl_status_string(st));
  lua_pushnumber(L, norm);
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

/* ------------------------------------------------ a rollout step by step */

/* An action argument: a number (discrete, or a 1-wide box) or a vector of
** the rollout's action width. */
static const float *checkaction(lua_State *L, int arg, int width, float *one) {
  if (lua_type(L, arg) == LUA_TNUMBER && width == 1) {
    *one = (float)lua_tonumber(L, arg);
    if (!isfinite(*one)) luaL_argerror(L, arg, "finite number expected");
    return one;
  }
  return mrlL_checkvec(L, arg, width, NULL, 0);
}

static int ro_status(lua_State *L, mrl_rollout *ro, int st, const char *fname) {
  if (st != MRL_OK)
    return luaL_error(L, "%s: %s", fname, st == MRL_ENOMEM ? "out of memory" : mrl_rollout_error(ro));
  return 0;
}

/* core.rollout_put(rollout, t, env, obs, action, logp): step t (0-based) of
** env (0-based) as acted: observation, unclipped action, behaviour log-prob. */
static int l_rollout_put(lua_State *L) {
  lua_settop(L, 6);
  mrl_rollout *ro = (mrl_rollout *)mrlL_checkhandle(L, 1, MRLL_ROLLOUT);
  int t = (int)luaL_checkinteger(L, 2), env = (int)luaL_checkinteger(L, 3);
  const float *o = mrlL_checkvec(L, 4, mrl_rollout_obs_dim(ro), NULL, 0);
  float one;
  const float *a = checkaction(L, 5, mrl_rollout_action_width(ro), &one);
  double logp = luaL_checknumber(L, 6);
  return ro_status(L, ro, mrl_rollout_put(ro, t, env, o, a, logp), "rollout_put");
}

/* core.rollout_set_mask_width(rollout, k): invalid-action masks of k
** entries per step (all 1 until put), 0 for none. */
static int l_rollout_set_mask_width(lua_State *L) {
  mrl_rollout *ro = (mrl_rollout *)mrlL_checkhandle(L, 1, MRLL_ROLLOUT);
  int k = (int)luaL_checkinteger(L, 2);
  return ro_status(L, ro, mrl_rollout_set_mask_width(ro, k), "rollout_set_mask_width");
}

/* core.rollout_put_mask(rollout, t, env, mask): the mask step t of env was
** acted under (1 valid, 0 invalid). */
static int l_rollout_put_mask(lua_State *L) {
  lua_settop(L, 4);
  mrl_rollout *ro = (mrl_rollout *)mrlL_checkhandle(L, 1, MRLL_ROLLOUT);
  int t = (int)luaL_checkinteger(L, 2), env = (int)luaL_checkinteger(L, 3);
  int k = mrl_rollout_mask_width(ro);
  if (k == 0) return luaL_error(L, "rollout_put_mask: the rollout has no masks (rollout_set_mask_width first)");
  const float *m = mrlL_checkvec(L, 4, k, NULL, 0);
  return ro_status(L, ro, mrl_rollout_put_mask(ro, t, env, m), "rollout_put_mask");
}

/* core.rollout_outcome(rollout, t, env, reward, terminated, truncated,
** [final_obs]) */
static int l_rollout_outcome(lua_State *L) {
  lua_settop(L, 7);
  mrl_rollout *ro = (mrl_rollout *)mrlL_checkhandle(L, 1, MRLL_ROLLOUT);
  int t = (int)luaL_checkinteger(L, 2), env = (int)luaL_checkinteger(L, 3);
  double rew = luaL_checknumber(L, 4);
  if (!isfinite(rew)) return luaL_argerror(L, 4, "finite reward expected");
  const float *fin = lua_isnil(L, 7) ? NULL : mrlL_checkvec(L, 7, mrl_rollout_obs_dim(ro), NULL, 0);
  return ro_status(L, ro, mrl_rollout_put_outcome(ro, t, env, rew, lua_toboolean(L, 5),
                                                  lua_toboolean(L, 6), fin),
                   "rollout_outcome");
}

/* core.rollout_bootstrap(rollout, value, next_obs): values and bootstraps
** with the value net; next_obs [num_envs][obs_dim] (one row: flat). */
static int l_rollout_bootstrap(lua_State *L) {
  lua_settop(L, 3);
  mrl_rollout *ro = (mrl_rollout *)mrlL_checkhandle(L, 1, MRLL_ROLLOUT);
  mrl_net *v = mrlL_checknet(L, 2);
  mrlL_mat m;
  mrlL_checkmat(L, 3, mrl_rollout_obs_dim(ro), mrl_rollout_num_envs(ro), &m);
  return ro_status(L, ro, mrl_rollout_bootstrap(ro, v, m.data), "rollout_bootstrap");
}

/* core.rollout_behaviour(rollout, policy) → mean ratio π/μ, mean log μ − log π */
static int l_rollout_behaviour(lua_State *L) {
  mrl_rollout *ro = (mrl_rollout *)mrlL_checkhandle(L, 1, MRLL_ROLLOUT);
  mrl_policy *p = mrlL_checkpolicy(L, 2);
  double ratio = 0, kl = 0;
  ro_status(L, ro, mrl_rollout_behaviour(ro, p, &ratio, &kl), "rollout_behaviour");
  lua_pushnumber(L, ratio);
  lua_pushnumber(L, kl);
  return 2;
}

int mrlL_open_train(lua_State *L) {
  static const luaL_Reg funcs[] = {
    {"policy_set_reduce", l_policy_set_reduce}, {"value_fit", l_value_fit},
    {"bc_fit", l_bc_fit},                       {"pg_ascend", l_pg_ascend},
    {"rollout_put", l_rollout_put},             {"rollout_outcome", l_rollout_outcome},
    {"rollout_set_mask_width", l_rollout_set_mask_width},
    {"rollout_put_mask", l_rollout_put_mask},
    {"rollout_bootstrap", l_rollout_bootstrap}, {"rollout_behaviour", l_rollout_behaviour},
    {NULL, NULL}};
  luaL_setfuncs(L, funcs, 0);
  return 0;
}
