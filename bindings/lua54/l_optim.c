/*
** l_optim.c — moonrl.Optim (Adam, SGD with momentum), clip_grad_norm and axpy.
*/
#include <math.h>
#include <string.h>

#include "l_module.h"
#include "l_net.h"
#include "l_policy.h"
#include "l_tensor.h"

typedef struct loptim {
  mrl_optim *h; /* NULL once closed */
  mrl_optim_kind kind;
  size_t n;
} loptim;

static const char *const optkinds[] = {"adam", "sgd", NULL};

#define checkoptim(L) ((loptim *)mrlL_checkopen(L, MRLL_OPTIM))

static void freeh(void *h) { mrl_optim_free(h); }
static int o_close(lua_State *L) { return mrlL_close(L, NULL, freeh); }
static int o_closemethod(lua_State *L) { return mrlL_close(L, MRLL_OPTIM, freeh); }

static int o_tostring(lua_State *L) {
  loptim *o = (loptim *)mrlL_checkself(L, MRLL_OPTIM);
  if (o->h == NULL)
    lua_pushstring(L, MRLL_OPTIM " (closed)");
  else
    lua_pushfstring(L, MRLL_OPTIM " (%s, %d params, %d steps)", optkinds[o->kind], (int)o->n,
                    (int)mrl_optim_steps(o->h));
  return 1;
}

/* core.optim{kind="adam"|"sgd", n=, beta1=, beta2=, eps=}, the absent ones
** from mrl_optim_defaults */
static int l_optim(lua_State *L) {
  char err[128];
  luaL_checktype(L, 1, LUA_TTABLE);
  mrl_optim_kind kind = (mrl_optim_kind)mrlL_optenumfield(L, 1, "kind", "adam", optkinds);
  lua_getfield(L, 1, "n");
  if (lua_isnil(L, -1)) luaL_error(L, "bad field 'n' (integer expected, got nil)");
  lua_pop(L, 1);
  lua_Integer n = mrlL_optintfield(L, 1, "n", 1, 1, (lua_Integer)1 << 31);
  mrl_optim_hparams h = mrl_optim_defaults(kind);
  mrlL_readopts(L, 1, MRL_OPTS_OPTIM, &h);
  if (mrl_optim_check(kind, (size_t)n, h.beta1, h.beta2, h.eps, err, sizeof err) != MRL_OK)
    return luaL_error(L, "cannot create optimiser: %s", err);
  loptim *o = (loptim *)lua_newuserdatauv(L, sizeof(loptim), 0);
  memset(o, 0, sizeof *o);
  luaL_setmetatable(L, MRLL_OPTIM);
  int st = mrl_optim_new(&o->h, kind, (size_t)n, h.beta1, h.beta2, h.eps);
  if (st != MRL_OK) {
    o->h = NULL;
    return luaL_error(L, "cannot create optimiser: %s", mrl_status_string(st));
  }
  o->kind = kind;
  o->n = (size_t)n;
  return 1;
}

/* step(policy|net, lr) or step(params_tensor, grad, lr) → steps taken */
static int o_step(lua_State *L) {
  lua_settop(L, 4); /* temporaries go above the arguments */
  loptim *o = checkoptim(L);
  float *params, *grad;
  const float *g;
  size_t n;
  int lrarg;
  if (mrlL_policy_buffers(L, 2, &params, &grad, &n) ||
      mrlL_net_buffers(L, 2, &params, &grad, &n)) {
    g = grad;
    lrarg = 3;
  } else {
    mrlL_tensor *t = mrlL_totensor(L, 2);
    if (t == NULL) return mrlL_typeerror(L, 2, "moonrl.Policy, moonrl.Net or moonrl.Tensor");
    params = mrlL_tensordata(L, t);
    n = t->numel;
    if (n != o->n) luaL_argerror(L, 2, lua_pushfstring(L, "%d parameters expected, got %d",
                                                        (int)o->n, (int)n));
    g = mrlL_checkvec(L, 3, (int)n, NULL, 0);
    lrarg = 4;
  }
  if (n != o->n)
    luaL_argerror(L, 2, lua_pushfstring(L, "%d parameters expected, got %d", (int)o->n, (int)n));
  double lr = luaL_checknumber(L, lrarg); /* mrl_optim_step checks its range */
  int st = mrl_optim_step(o->h, params, g, lr);
  if (st != MRL_OK) {
    const char *msg = mrl_optim_error(o->h);
    return luaL_error(L, "%s", msg && *msg ? msg : mrl_status_string(st));
  }
  lua_pushinteger(L, (lua_Integer)mrl_optim_steps(o->h));
  return 1;
}

static int o_reset(lua_State *L) {
  mrl_optim_reset(checkoptim(L)->h);
  lua_settop(L, 1);
  return 1;
}

static int o_steps(lua_State *L) {
  lua_pushinteger(L, (lua_Integer)mrl_optim_steps(checkoptim(L)->h));
  return 1;
}

static int o_nparams(lua_State *L) {
  lua_pushinteger(L, (lua_Integer)checkoptim(L)->n);
  return 1;
}

static int o_kind(lua_State *L) {
  lua_pushstring(L, optkinds[checkoptim(L)->kind]);
  return 1;
}

/* core.clip_grad_norm(tensor, max_norm) → norm before clipping */
static int l_clip_grad_norm(lua_State *L) {
  mrlL_tensor *t = mrlL_checktensor(L, 1);
  double max = luaL_checknumber(L, 2), norm;
  if (!(max > 0) || !isfinite(max)) luaL_argerror(L, 2, "finite number > 0 expected");
  int st = mrl_clip_grad_norm(t->data, t->numel, max, &norm);
  if (st != MRL_OK)
    luaL_argerror(L, 1, lua_pushfstring(L, "finite values expected (%s)", mrl_status_string(st)));
  lua_pushnumber(L, norm);
  return 1;
}

/* core.axpy(y, a, x) → y: y += a·x in place (x a vector of y's size) */
static int l_axpy(lua_State *L) {
  mrlL_tensor *y = mrlL_checktensor(L, 1);
  double a = luaL_checknumber(L, 2);
  if (!isfinite(a)) luaL_argerror(L, 2, "finite number expected");
  if (y->numel > MRL_MAX_BATCH * 16.0) luaL_argerror(L, 1, "too many elements");
  const float *x = mrlL_checkvec(L, 3, (int)y->numel, NULL, 0);
  mrl_axpy(mrlL_tensordata(L, y), a, x, y->numel);
  lua_settop(L, 1);
  return 1;
}

static int l_all_finite(lua_State *L) {
  mrlL_tensor *t = mrlL_checktensor(L, 1);
  lua_pushboolean(L, mrl_all_finite(t->data, t->numel));
  return 1;
}

static const luaL_Reg methods[] = {
  {"step", o_step},       {"reset", o_reset}, {"steps", o_steps},
  {"nparams", o_nparams}, {"kind", o_kind},   {"close", o_closemethod},
  {NULL, NULL}};

static const luaL_Reg metas[] = {
  {"__gc", o_close}, {"__close", o_close}, {"__tostring", o_tostring}, {NULL, NULL}};

int mrlL_open_optim(lua_State *L) {
  static const luaL_Reg funcs[] = {
    {"optim", l_optim}, {"clip_grad_norm", l_clip_grad_norm},
    {"all_finite", l_all_finite}, {"axpy", l_axpy}, {NULL, NULL}};
  mrlL_newclass(L, MRLL_OPTIM, methods, metas, NULL);
  luaL_setfuncs(L, funcs, 0);
  return 0;
}
