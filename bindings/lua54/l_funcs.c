/*
** l_funcs.c — the free functions of moonrl.core (returns, GAE, the adaptive
** KL coefficient) and the moonrl.Rng class.
*/
#include <math.h>
#include <string.h>

#include "l_funcs.h"
#include "l_module.h"
#include "l_reduce.h"
#include "l_tensor.h"

/* returns(rewards, gamma) → reward_to_go [T], discounted_return */
static int l_returns(lua_State *L) {
  lua_settop(L, 2); /* temporaries go above the arguments */
  int T;
  double R;
  const float *r = mrlL_checkvec(L, 1, -1, &T, 0);
  double gamma = luaL_checknumber(L, 2);
  if (!isfinite(gamma) || gamma < 0 || gamma > 1) luaL_argerror(L, 2, "number in [0, 1] expected");
  int shape[1] = {T};
  mrlL_tensor *g = mrlL_newtensor(L, 1, shape);
  int st = mrl_discounted_returns(r, T, 1, gamma, g->data, &R);
  if (st != MRL_OK) return luaL_error(L, "returns: %s", mrl_status_string(st));
  lua_pushnumber(L, R);
  return 2;
}

/* Flags (booleans or 0/1) as a uint8 scratch block. */
static const uint8_t *checkflags(lua_State *L, int arg, int T) {
  const float *f = mrlL_checkvec(L, arg, T, NULL, 1);
  uint8_t *u = (uint8_t *)lua_newuserdatauv(L, (size_t)T, 0);
  size_t bad = mrl_flags_from_floats(f, (size_t)T, u);
  if (bad < (size_t)T)
    luaL_argerror(L, arg, lua_pushfstring(L, "boolean or 0/1 expected at [%d]", (int)bad + 1));
  return u;
}

/* core.standardize(tensor, [reducer]) → tensor: (x − mean)/(std + 1e-8)
** in place, over every process's values with a moonrl.Reducer. */
static int l_standardize(lua_State *L) {
  mrlL_tensor *t = mrlL_checktensor(L, 1);
  float *x = mrlL_tensordata(L, t);
  mrlL_reducer *r = NULL;
  if (!lua_isnoneornil(L, 2)) {
    r = (mrlL_reducer *)luaL_testudata(L, 2, MRLL_REDUCER);
    if (r == NULL || r->fn == NULL) return luaL_argerror(L, 2, MRLL_REDUCER " or nil expected");
  }
  if (t->numel > MRL_MAX_BATCH) return luaL_argerror(L, 1, "too many elements");
  int st = mrl_standardize(x, (int)t->numel, r ? r->fn : NULL, r ? r->ud : NULL);
  if (st != MRL_OK) return luaL_error(L, "standardize: %s", mrl_status_string(st));
  lua_settop(L, 1);
  return 1;
}

/* gae(rewards, values, next_values, terminated, truncated, gamma, lambda)
** → advantages [T], returns [T] */
static int l_gae(lua_State *L) {
  lua_settop(L, 7); /* temporaries go above the arguments */
  int T;
  const float *r = mrlL_checkvec(L, 1, -1, &T, 0);
  const float *v = mrlL_checkvec(L, 2, T, NULL, 0);
  const float *nv = mrlL_checkvec(L, 3, T, NULL, 0);
  const uint8_t *term = checkflags(L, 4, T);
  const uint8_t *trunc = checkflags(L, 5, T);
  double gamma = luaL_checknumber(L, 6), lambda = luaL_checknumber(L, 7);
  if (!isfinite(gamma) || gamma < 0 || gamma > 1) luaL_argerror(L, 6, "number in [0, 1] expected");
  if (!isfinite(lambda) || lambda < 0 || lambda > 1) luaL_argerror(L, 7, "number in [0, 1] expected");
  int shape[1] = {T};
  mrlL_tensor *adv = mrlL_newtensor(L, 1, shape);
  mrlL_tensor *ret = mrlL_newtensor(L, 1, shape);
  int st = mrl_gae(r, v, nv, term, trunc, T, 1, gamma, lambda, adv->data, ret->data);
  if (st != MRL_OK) return luaL_error(L, "gae: %s", mrl_status_string(st));
  return 2;
}

static int l_kl_beta_update(lua_State *L) {
  double beta = luaL_checknumber(L, 1), kl = luaL_checknumber(L, 2);
  double target = luaL_checknumber(L, 3);
  if (!isfinite(beta)) luaL_argerror(L, 1, "finite number expected");
  if (!isfinite(kl)) luaL_argerror(L, 2, "finite number expected");
  if (!isfinite(target) || target <= 0) luaL_argerror(L, 3, "finite number > 0 expected");
  lua_pushnumber(L, mrl_kl_beta_update(beta, kl, target));
  return 1;
}

/* ------------------------------------------------------------------ rng */

typedef struct lrng {
  mrl_rng *h;
} lrng;

#define checkrng(L) ((lrng *)mrlL_checkopen(L, MRLL_RNG))

static void freeh(void *h) { mrl_rng_free(h); }
static int r_close(lua_State *L) { return mrlL_close(L, NULL, freeh); }
static int r_closemethod(lua_State *L) { return mrlL_close(L, MRLL_RNG, freeh); }

static int r_tostring(lua_State *L) {
  lrng *r = (lrng *)mrlL_checkself(L, MRLL_RNG);
  lua_pushstring(L, r->h ? MRLL_RNG : MRLL_RNG " (closed)");
  return 1;
}

mrl_rng *mrlL_newrng(lua_State *L, uint64_t seed) {
  lrng *r = (lrng *)lua_newuserdatauv(L, sizeof(lrng), 0);
  r->h = NULL;
  luaL_setmetatable(L, MRLL_RNG);
  int st = mrl_rng_new(&r->h, seed);
  if (st != MRL_OK) {
    r->h = NULL;
    luaL_error(L, "cannot create rng: %s", mrl_status_string(st));
  }
  return r->h;
}

static int l_rng(lua_State *L) {
  mrlL_newrng(L, (uint64_t)luaL_optinteger(L, 1, 0));
  return 1;
}

static int r_uniform(lua_State *L) {
  lua_pushnumber(L, mrl_rng_uniform(checkrng(L)->h));
  return 1;
}

static int r_normal(lua_State *L) {
  lua_pushnumber(L, mrl_rng_normal(checkrng(L)->h));
  return 1;
}

static int r_categorical(lua_State *L) {
  lua_settop(L, 2); /* temporaries go above the arguments */
  lrng *r = checkrng(L);
  int n;
  const float *logits = mrlL_checkvec(L, 2, -1, &n, 0);
  lua_pushinteger(L, mrl_rng_categorical(r->h, logits, n));
  return 1;
}

static int r_seed(lua_State *L) {
  lrng *r = checkrng(L);
  mrl_rng_seed(r->h, (uint64_t)luaL_checkinteger(L, 2));
  lua_settop(L, 1);
  return 1;
}

static const luaL_Reg rng_methods[] = {
  {"uniform", r_uniform}, {"normal", r_normal}, {"categorical", r_categorical},
  {"seed", r_seed},       {"close", r_closemethod}, {NULL, NULL}};

static const luaL_Reg rng_metas[] = {
  {"__gc", r_close}, {"__close", r_close}, {"__tostring", r_tostring}, {NULL, NULL}};

int mrlL_open_funcs(lua_State *L) {
  static const luaL_Reg funcs[] = {
    {"returns", l_returns},
    {"gae", l_gae},
    {"kl_beta_update", l_kl_beta_update},
    {"standardize", l_standardize},
    {"rng", l_rng},
    {NULL, NULL}};
  mrlL_newclass(L, MRLL_RNG, rng_methods, rng_metas, NULL);
  luaL_setfuncs(L, funcs, 0);
  return 0;
}
