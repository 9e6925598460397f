/*
** l_norm.c — normalisation for the Lua 5.4 binding (a part, see l_module.h):
** moonrl.RunningMeanStd (core.rms) and moonrl.RewardNormalizer
** (core.reward_norm) over mrl_rms / mrl_retnorm, and
** core.rollout_set_norm, which makes a rollout's collect normalise.
** docs/CORE_API.md documents the API; the LuaJIT twin is
** bindings/luajit/moonrl/core/norm.lua.
*/
#include <math.h>

#include "l_module.h"
#include "l_reduce.h"
#include "l_tensor.h"

#define MRLL_RMS "moonrl.RunningMeanStd"
#define MRLL_RETNORM "moonrl.RewardNormalizer"
#define MRLL_ROLLOUT "moonrl.Rollout" /* vecenv_lua.c */

/* Class boxes: the C handle first (mrlL_checkhandle). */
typedef struct lrms {
  mrl_rms *h;
} lrms;
typedef struct lretnorm {
  mrl_retnorm *h;
} lretnorm;

#define checkrms(L) ((lrms *)mrlL_checkopen(L, MRLL_RMS))

#define checkretnorm(L) ((lretnorm *)mrlL_checkopen(L, MRLL_RETNORM))

/* An optional moonrl.Reducer argument (nil: none). */
static mrlL_reducer *optreducer(lua_State *L, int arg) {
  if (lua_isnoneornil(L, arg)) return NULL;
  mrlL_reducer *r = (mrlL_reducer *)luaL_testudata(L, arg, MRLL_REDUCER);
  if (!r) mrlL_typeerror(L, arg, MRLL_REDUCER " or nil");
  return r;
}

/* A number argument that must be finite and satisfy lo < x (or lo <= x). */
static double checkpos(lua_State *L, int arg, double def, int allow0) {
  double v = luaL_optnumber(L, arg, def);
  if (!isfinite(v) || v < 0 || (!allow0 && v == 0))
    luaL_argerror(L, arg, allow0 ? "finite number >= 0 expected"
                                 : "finite number > 0 expected");
  return v;
}

/* --------------------------------------------------------- RunningMeanStd */

/* core.rms(dim) */
static int l_rms(lua_State *L) {
  lua_Integer dim = luaL_checkinteger(L, 1);
  luaL_argcheck(L, dim >= 1 && dim <= MRL_MAX_WIDTH, 1, "dim in [1, 65536] expected");
  lrms *b = (lrms *)lua_newuserdatauv(L, sizeof(lrms), 0);
  b->h = NULL;
  luaL_setmetatable(L, MRLL_RMS);
  int st = mrl_rms_new(&b->h, (int)dim);
  if (st != MRL_OK) {
    b->h = NULL;
    return luaL_error(L, "cannot create rms: %s", mrl_status_string(st));
  }
  return 1;
}

/* __gc lets go of the handle (a rollout using it keeps its own
** reference); close() also makes such rollouts drop it (mrl_rms_close). */
static void freerms(void *h) { mrl_rms_free(h); }
static void closerms(void *h) { mrl_rms_close(h); }
static int rms_gc(lua_State *L) { return mrlL_close(L, NULL, freerms); }
static int rms_close(lua_State *L) { return mrlL_close(L, MRLL_RMS, closerms); }

static int rms_tostring(lua_State *L) {
  lrms *b = (lrms *)mrlL_checkself(L, MRLL_RMS);
  if (!b->h) lua_pushliteral(L, MRLL_RMS " (closed)");
  else lua_pushfstring(L, MRLL_RMS " (dim %d, count %f)", mrl_rms_dim(b->h),
                       mrl_rms_count(b->h));
  return 1;
}

static int rms_dim(lua_State *L) {
  lua_pushinteger(L, mrl_rms_dim(checkrms(L)->h));
  return 1;
}

static int rms_count(lua_State *L) {
  lua_pushnumber(L, mrl_rms_count(checkrms(L)->h));
  return 1;
}

/* update(rows [, reducer]) → self */
static int rms_update(lua_State *L) {
  lua_settop(L, 3); /* temporaries go above the arguments */
  lrms *b = checkrms(L);
  mrlL_mat x;
  mrlL_checkmat(L, 2, mrl_rms_dim(b->h), -1, &x);
  mrlL_reducer *red = optreducer(L, 3);
  int st = mrl_rms_update_reduce(b->h, x.data, x.rows, red ? red->fn : NULL,
                                 red ? red->ud : NULL);
  if (st != MRL_OK) return luaL_error(L, "%s", mrl_rms_error(b->h));
  lua_settop(L, 1);
  return 1;
}

/* normalize(rows [, clip = 10 [, epsilon = 1e-8]]) → a new tensor, shaped
** as the rows ([D] or [N][D]) */
static int rms_normalize(lua_State *L) {
  lua_settop(L, 4);
  lrms *b = checkrms(L);
  int d = mrl_rms_dim(b->h);
  mrlL_mat x;
  mrlL_checkmat(L, 2, d, -1, &x);
  double clip = checkpos(L, 3, 10.0, 0), eps = checkpos(L, 4, 1e-8, 1);
  int shape[2] = {x.rows, d};
  mrlL_tensor *y = x.batched ? mrlL_newtensor(L, 2, shape) : mrlL_newtensor(L, 1, shape + 1);
  int st = mrl_rms_apply(b->h, x.data, x.rows, clip, eps, y->data);
  if (st != MRL_OK) return luaL_error(L, "%s", mrl_rms_error(b->h));
  return 1;
}

static void pushdoubles(lua_State *L, const double *x, int n) {
  lua_createtable(L, n, 0);
  for (int i = 0; i < n; i++) {
    lua_pushnumber(L, x[i]);
    lua_rawseti(L, -2, i + 1);
  }
}

/* Reads the array field k of the table at idx: n numbers into out. */
static void doublesfield(lua_State *L, int idx, const char *k, double *out,
                         int n) {
  if (lua_getfield(L, idx, k) != LUA_TTABLE)
    luaL_error(L, "bad field '%s' (table of %d numbers expected, got %s)", k, n,
               luaL_typename(L, -1));
  if ((int)luaL_len(L, -1) != n)
    luaL_error(L, "bad field '%s' (table of %d numbers expected, got %d)", k, n,
               (int)luaL_len(L, -1));
  for (int i = 0; i < n; i++) {
    int isnum = 0;
    lua_rawgeti(L, -1, i + 1);
    out[i] = lua_tonumberx(L, -1, &isnum);
    if (!isnum) luaL_error(L, "bad field '%s' (number expected at [%d])", k, i + 1);
    lua_pop(L, 1);
  }
  lua_pop(L, 1);
}

static double numfield(lua_State *L, int idx, const char *k) {
  int isnum = 0;
  lua_getfield(L, idx, k);
  double v = lua_tonumberx(L, -1, &isnum);
  if (!isnum) luaL_error(L, "bad field '%s' (number expected, got %s)", k,
                         luaL_typename(L, -1));
  lua_pop(L, 1);
  return v;
}

/* state() → {mean = {…}, var = {…}, count = c} */
static int rms_state(lua_State *L) {
  lrms *b = checkrms(L);
  int d = mrl_rms_dim(b->h);
  double *m = (double *)lua_newuserdatauv(L, 2 * (size_t)d * sizeof(double), 0);
  double count;
  mrl_rms_get_state(b->h, m, m + d, &count);
  lua_createtable(L, 0, 3);
  pushdoubles(L, m, d);
  lua_setfield(L, -2, "mean");
  pushdoubles(L, m + d, d);
  lua_setfield(L, -2, "var");
  lua_pushnumber(L, count);
  lua_setfield(L, -2, "count");
  return 1;
}

/* set_state{mean = , var = , count = } → self (refuses hostile values) */
static int rms_set_state(lua_State *L) {
  lua_settop(L, 2);
  lrms *b = checkrms(L);
  luaL_checktype(L, 2, LUA_TTABLE);
  int d = mrl_rms_dim(b->h);
  double *m = (double *)lua_newuserdatauv(L, 2 * (size_t)d * sizeof(double), 0);
  doublesfield(L, 2, "mean", m, d);
  doublesfield(L, 2, "var", m + d, d);
  double count = numfield(L, 2, "count");
  if (mrl_rms_set_state(b->h, m, m + d, count) != MRL_OK)
    return luaL_error(L, "%s", mrl_rms_error(b->h));
  lua_settop(L, 1);
  return 1;
}

/* set_mask(mask | nil) → self: which columns normalize() standardises
** (1/true) and which it passes through (0/false), dim entries; nil: all. */
static int rms_set_mask(lua_State *L) {
  lua_settop(L, 2);
  lrms *b = checkrms(L);
  if (lua_isnil(L, 2)) {
    mrl_rms_set_mask(b->h, NULL);
    lua_settop(L, 1);
    return 1;
  }
  luaL_checktype(L, 2, LUA_TTABLE);
  int d = mrl_rms_dim(b->h);
  if (lua_rawlen(L, 2) != (lua_Unsigned)d)
    return luaL_argerror(L, 2, lua_pushfstring(L, "%d entries expected, got %d", d,
                                               (int)lua_rawlen(L, 2)));
  uint8_t *m = (uint8_t *)lua_newuserdatauv(L, (size_t)d, 0);
  for (int j = 0; j < d; j++) {
    int t = lua_rawgeti(L, 2, j + 1);
    if (t == LUA_TBOOLEAN) m[j] = (uint8_t)lua_toboolean(L, -1);
    else if (t == LUA_TNUMBER && (lua_tonumber(L, -1) == 0 || lua_tonumber(L, -1) == 1))
      m[j] = lua_tonumber(L, -1) != 0;
    else return luaL_argerror(L, 2, lua_pushfstring(L, "entry %d must be 0, 1 or a boolean", j + 1));
    lua_pop(L, 1);
  }
  if (mrl_rms_set_mask(b->h, m) != MRL_OK) return luaL_error(L, "%s", mrl_rms_error(b->h));
  lua_settop(L, 1);
  return 1;
}

static int rms_reset(lua_State *L) {
  mrl_rms_reset(checkrms(L)->h);
  lua_settop(L, 1);
  return 1;
}

static const luaL_Reg rms_methods[] = {
  {"dim", rms_dim},         {"count", rms_count},
  {"update", rms_update},   {"normalize", rms_normalize},
  {"state", rms_state},     {"set_state", rms_set_state},
  {"reset", rms_reset},     {"close", rms_close},
  {"set_mask", rms_set_mask},
  {NULL, NULL}};

static const luaL_Reg rms_metas[] = {
  {"__gc", rms_gc}, {"__close", rms_close}, {"__tostring", rms_tostring},
  {NULL, NULL}};

/* ------------------------------------------------------ RewardNormalizer */

/* core.reward_norm(num_envs) */
static int l_reward_norm(lua_State *L) {
  lua_Integer n = luaL_checkinteger(L, 1);
  luaL_argcheck(L, n >= 1 && n <= MRL_MAX_BATCH, 1, "num_envs >= 1 expected");
  lretnorm *b = (lretnorm *)lua_newuserdatauv(L, sizeof(lretnorm), 0);
  b->h = NULL;
  luaL_setmetatable(L, MRLL_RETNORM);
  int st = mrl_retnorm_new(&b->h, (int)n);
  if (st != MRL_OK) {
    b->h = NULL;
    return luaL_error(L, "cannot create reward_norm: %s", mrl_status_string(st));
  }
  return 1;
}

/* as rms_gc / rms_close */
static void freern(void *h) { mrl_retnorm_free(h); }
static void closern(void *h) { mrl_retnorm_close(h); }
static int rn_gc(lua_State *L) { return mrlL_close(L, NULL, freern); }
static int rn_close(lua_State *L) { return mrlL_close(L, MRLL_RETNORM, closern); }

static int rn_tostring(lua_State *L) {
  lretnorm *b = (lretnorm *)mrlL_checkself(L, MRLL_RETNORM);
  if (!b->h) lua_pushliteral(L, MRLL_RETNORM " (closed)");
  else lua_pushfstring(L, MRLL_RETNORM " (%d envs)", mrl_retnorm_num_envs(b->h));
  return 1;
}

static int rn_num_envs(lua_State *L) {
  lua_pushinteger(L, mrl_retnorm_num_envs(checkretnorm(L)->h));
  return 1;
}

/* step(rewards, dones [, gamma = 0.99 [, clip = 10 [, epsilon = 1e-8
** [, update = true [, reducer]]]]]) → normalised rewards [N] */
static int rn_step(lua_State *L) {
  lua_settop(L, 8);
  lretnorm *b = checkretnorm(L);
  int n = mrl_retnorm_num_envs(b->h);
  const float *r = mrlL_checkvec(L, 2, n, NULL, 0);
  const float *df = mrlL_checkvec(L, 3, n, NULL, 1);
  double gamma = luaL_optnumber(L, 4, 0.99);
  luaL_argcheck(L, gamma >= 0 && gamma <= 1, 4, "number in [0, 1] expected");
  double clip = checkpos(L, 5, 10.0, 0), eps = checkpos(L, 6, 1e-8, 1);
  int update = lua_isnoneornil(L, 7) ? 1 : lua_toboolean(L, 7);
  mrlL_reducer *red = optreducer(L, 8);
  uint8_t *dones = (uint8_t *)lua_newuserdatauv(L, (size_t)n, 0);
  mrl_flags_from_floats(df, (size_t)n, dones);
  int shape[1] = {n};
  mrlL_tensor *out = mrlL_newtensor(L, 1, shape);
  int st = mrl_retnorm_step(b->h, r, dones, gamma, clip, eps, update,
                            red ? red->fn : NULL, red ? red->ud : NULL,
                            out->data);
  if (st != MRL_OK) return luaL_error(L, "%s", mrl_retnorm_error(b->h));
  return 1;
}

/* state() → {mean = m, var = v, count = c, ret = {…}} (scalars: the
** statistics of the discounted returns) */
static int rn_state(lua_State *L) {
  lretnorm *b = checkretnorm(L);
  int n = mrl_retnorm_num_envs(b->h);
  double *ret = (double *)lua_newuserdatauv(L, (size_t)n * sizeof(double), 0);
  double m, v, c;
  mrl_retnorm_get_state(b->h, &m, &v, &c, ret);
  lua_createtable(L, 0, 4);
  lua_pushnumber(L, m);
  lua_setfield(L, -2, "mean");
  lua_pushnumber(L, v);
  lua_setfield(L, -2, "var");
  lua_pushnumber(L, c);
  lua_setfield(L, -2, "count");
  pushdoubles(L, ret, n);
  lua_setfield(L, -2, "ret");
  return 1;
}

/* set_state{mean =, var =, count = [, ret = {…}]} → self; without ret the
** returns are zeroed */
static int rn_set_state(lua_State *L) {
  lua_settop(L, 2);
  lretnorm *b = checkretnorm(L);
  luaL_checktype(L, 2, LUA_TTABLE);
  int n = mrl_retnorm_num_envs(b->h);
  double m = numfield(L, 2, "mean"), v = numfield(L, 2, "var"),
         c = numfield(L, 2, "count");
  double *ret = NULL;
  int t = lua_getfield(L, 2, "ret");
  lua_pop(L, 1);
  if (t != LUA_TNIL) {
    ret = (double *)lua_newuserdatauv(L, (size_t)n * sizeof(double), 0);
    doublesfield(L, 2, "ret", ret, n);
  }
  if (mrl_retnorm_set_state(b->h, m, v, c, ret) != MRL_OK)
    return luaL_error(L, "%s", mrl_retnorm_error(b->h));
  lua_settop(L, 1);
  return 1;
}

/* reset_returns() → self: ret = 0 (the envs were reset) */
static int rn_reset_returns(lua_State *L) {
  lretnorm *b = checkretnorm(L);
  mrl_retnorm_set_ret(b->h, NULL, mrl_retnorm_num_envs(b->h));
  lua_settop(L, 1);
  return 1;
}

static const luaL_Reg rn_methods[] = {
  {"num_envs", rn_num_envs},   {"step", rn_step},
  {"state", rn_state},         {"set_state", rn_set_state},
  {"reset_returns", rn_reset_returns}, {"close", rn_close},
  {NULL, NULL}};

static const luaL_Reg rn_metas[] = {
  {"__gc", rn_gc}, {"__close", rn_close}, {"__tostring", rn_tostring},
  {NULL, NULL}};

/* ----------------------------------------------------- rollout_set_norm */

/* core.rollout_set_norm(rollout, opts | nil): opts = {obs = rms | nil,
** reward = reward_norm | nil, update = true, clip_obs = 10,
** clip_reward = 10, epsilon = 1e-8, gamma = 0.99, reduce = reducer | nil} */
static int l_rollout_set_norm(lua_State *L) {
  lua_settop(L, 2);
  mrl_rollout *ro = (mrl_rollout *)mrlL_checkhandle(L, 1, MRLL_ROLLOUT);
  mrl_norm_opts o = mrl_norm_opts_default(); /* nil: no handles, off */
  if (!lua_isnil(L, 2)) {
    luaL_checktype(L, 2, LUA_TTABLE);
    if (lua_getfield(L, 2, "obs") != LUA_TNIL) o.obs = (mrl_rms *)mrlL_checkhandle(L, -1, MRLL_RMS);
    lua_pop(L, 1);
    if (lua_getfield(L, 2, "reward") != LUA_TNIL)
      o.reward = (mrl_retnorm *)mrlL_checkhandle(L, -1, MRLL_RETNORM);
    lua_pop(L, 1);
    if (lua_getfield(L, 2, "reduce") != LUA_TNIL) {
      mrlL_reducer *red = (mrlL_reducer *)luaL_testudata(L, -1, MRLL_REDUCER);
      if (!red) return luaL_error(L, "bad field 'reduce' (" MRLL_REDUCER " expected)");
      o.reduce = red->fn;
      o.reduce_ud = red->ud;
    }
    lua_pop(L, 1);
    mrlL_readopts(L, 2, MRL_OPTS_NORM, &o);
  }
  if (mrl_rollout_set_norm(ro, &o) != MRL_OK)
    return luaL_error(L, "%s", mrl_rollout_error(ro));
  /* the rollout keeps the reducer alive (a weak-keyed registry table); it
  ** holds references to the handles itself */
  if (luaL_getsubtable(L, LUA_REGISTRYINDEX, "moonrl.rollout_reducers") == 0) {
    lua_pushliteral(L, "k");
    lua_setfield(L, -2, "__mode");
    lua_pushvalue(L, -1);
    lua_setmetatable(L, -2);
  }
  lua_pushvalue(L, 1);
  if (o.reduce) lua_getfield(L, 2, "reduce");
  else lua_pushnil(L);
  lua_rawset(L, -3);
  return 0;
}

int mrlL_open_norm(lua_State *L) {
  static const luaL_Reg funcs[] = {
    {"rms", l_rms},
    {"reward_norm", l_reward_norm},
    {"rollout_set_norm", l_rollout_set_norm},
    {NULL, NULL}};
  mrlL_newclass(L, MRLL_RMS, rms_methods, rms_metas, NULL);
  mrlL_newclass(L, MRLL_RETNORM, rn_methods, rn_metas, NULL);
  luaL_setfuncs(L, funcs, 0);
  return 0;
}
