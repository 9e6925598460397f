/*
** l_net.c — moonrl.Net: a plain MLP (value networks, critics).  Same life
** cycle as moonrl.Policy: created closed, then the handle is attached.
*/
#include <math.h>
#include <string.h>

#include "l_module.h"
#include "l_net.h"
#include "l_tensor.h"

typedef struct lnet {
  mrl_net *h;        /* NULL once closed */
  int in_dim, out_dim;
  size_t nparams;
  int last_batch;    /* rows of the last forward, for backward; 0 = none */
  double out_gain;
  lua_Integer seed;
} lnet;

static const char *const acts[] = {"tanh", "relu", NULL};

#define checknet(L) ((lnet *)mrlL_checkopen(L, MRLL_NET))

static int fail(lua_State *L, lnet *n, int st) {
  const char *msg = n->h ? mrl_net_error(n->h) : NULL;
  if (msg == NULL || *msg == '\0') msg = mrl_status_string(st);
  return luaL_error(L, "%s", msg);
}
#define CHECK(L, n, call)               \
  do {                                  \
    int st_ = (call);                   \
    if (st_ != MRL_OK) fail(L, n, st_); \
  } while (0)

static void freeh(void *h) { mrl_net_free(h); }
static int n_close(lua_State *L) { return mrlL_close(L, NULL, freeh); }
static int n_closemethod(lua_State *L) { return mrlL_close(L, MRLL_NET, freeh); }

static int n_tostring(lua_State *L) {
  lnet *n = (lnet *)mrlL_checkself(L, MRLL_NET);
  if (n->h == NULL) {
    lua_pushstring(L, MRLL_NET " (closed)");
    return 1;
  }
  lua_pushfstring(L, MRLL_NET " (%d -> %d, %d hidden layers, %s, %d params)", n->in_dim,
                  n->out_dim, mrl_net_nhidden(n->h), acts[mrl_net_activation(n->h)],
                  (int)n->nparams);
  return 1;
}

/* core.net{in_dim=, hidden=, activation=, out_dim=, out_gain=, seed=}, the
** absent ones from mrl_net_spec_default */
static int l_net(lua_State *L) {
  int hidden[MRL_MAX_LAYERS];
  mrl_net_spec s = mrl_net_spec_default();
  luaL_checktype(L, 1, LUA_TTABLE);
  mrl_conv_layer conv[MRL_MAX_CONV];
  const int grid = mrlL_checkgrid(L, 1, s.obs_shape, conv, &s.nconv);
  if (s.nconv > 0) s.conv = conv;
  lua_getfield(L, 1, "in_dim");
  if (lua_isnil(L, -1) && !grid)
    luaL_error(L, "bad field 'in_dim' (integer expected, got nil)");
  lua_pop(L, 1);
  mrlL_readopts(L, 1, MRL_OPTS_NET, &s);
  if (lua_getfield(L, 1, "hidden") != LUA_TNIL) {
    s.nhidden = mrlL_intarrayfield(L, 1, "hidden", hidden, MRL_MAX_LAYERS, 1, MRL_MAX_WIDTH);
    s.hidden = hidden;
  }
  lua_pop(L, 1);
  lua_Integer seed = mrlL_optintfield(L, 1, "seed", (lua_Integer)s.seed, LUA_MININTEGER,
                                      LUA_MAXINTEGER);
  lnet *n = (lnet *)lua_newuserdatauv(L, sizeof(lnet), 0);
  memset(n, 0, sizeof *n);
  luaL_setmetatable(L, MRLL_NET);
  s.seed = (uint64_t)seed;
  char err[256];
  if (mrl_net_spec_check(&s, err, sizeof err) != MRL_OK)
    return luaL_error(L, "cannot create net: %s", err);
  int st = mrl_net_new_spec(&n->h, &s);
  if (st != MRL_OK) {
    n->h = NULL;
    return luaL_error(L, "cannot create net: %s", mrl_status_string(st));
  }
  n->in_dim = mrl_net_in_dim(n->h);
  n->out_dim = s.out_dim;
  n->nparams = mrl_net_nparams(n->h);
  n->out_gain = s.out_gain;
  n->seed = seed;
  return 1;
}

static int n_in_dim(lua_State *L) {
  lua_pushinteger(L, checknet(L)->in_dim);
  return 1;
}
static int n_out_dim(lua_State *L) {
  lua_pushinteger(L, checknet(L)->out_dim);
  return 1;
}
static int n_nparams(lua_State *L) {
  lua_pushinteger(L, (lua_Integer)checknet(L)->nparams);
  return 1;
}

static int n_spec(lua_State *L) {
  lnet *n = checknet(L);
  int nh = mrl_net_nhidden(n->h);
  lua_createtable(L, 0, 6);
  lua_pushinteger(L, n->in_dim);
  lua_setfield(L, -2, "in_dim");
  lua_createtable(L, nh, 0);
  for (int i = 0; i < nh; i++) {
    lua_pushinteger(L, mrl_net_hidden(n->h, i));
    lua_rawseti(L, -2, i + 1);
  }
  lua_setfield(L, -2, "hidden");
  lua_pushstring(L, acts[mrl_net_activation(n->h)]);
  lua_setfield(L, -2, "activation");
  lua_pushinteger(L, n->out_dim);
  lua_setfield(L, -2, "out_dim");
  lua_pushnumber(L, n->out_gain);
  lua_setfield(L, -2, "out_gain");
  lua_pushinteger(L, n->seed);
  lua_setfield(L, -2, "seed");
  int shape[3];
  mrl_conv_layer conv[MRL_MAX_CONV];
  const int nc = mrl_net_nconv(n->h);
  for (int i = 0; i < nc; i++) mrl_net_conv(n->h, i, &conv[i]);
  mrlL_setgrid(L, mrl_net_obs_shape(n->h, shape) ? shape : NULL, conv, nc);
  return 1;
}

static int n_params(lua_State *L) {
  lnet *n = checknet(L);
  int shape[1] = {(int)n->nparams};
  mrlL_tensor *t = mrlL_newtensor(L, 1, shape);
  CHECK(L, n, mrl_net_get_params(n->h, t->data, n->nparams));
  return 1;
}

static int n_set_params(lua_State *L) {
  lua_settop(L, 2); /* temporaries go above the arguments */
  lnet *n = checknet(L);
  const float *v = mrlL_checkvec(L, 2, (int)n->nparams, NULL, 0);
  CHECK(L, n, mrl_net_set_params(n->h, v, n->nparams));
  lua_settop(L, 1);
  return 1;
}

static int n_grad(lua_State *L) {
  lnet *n = checknet(L);
  int shape[1] = {(int)n->nparams};
  mrlL_pushview(L, 1, (void *const *)&n->h, MRLL_NET, mrl_net_grad(n->h), 1, shape);
  return 1;
}

static int n_params_view(lua_State *L) {
  lnet *n = checknet(L);
  int shape[1] = {(int)n->nparams};
  mrlL_pushview(L, 1, (void *const *)&n->h, MRLL_NET, mrl_net_params(n->h), 1, shape);
  return 1;
}

static int n_zero_grad(lua_State *L) {
  mrl_net_zero_grad(checknet(L)->h);
  lua_settop(L, 1);
  return 1;
}

/* forward(x) → y: [N][out] for [N][in], [out] for one row */
static int n_forward(lua_State *L) {
  lua_settop(L, 2); /* temporaries go above the arguments */
  lnet *n = checknet(L);
  mrlL_mat x;
  mrlL_checkmat(L, 2, n->in_dim, -1, &x);
  int shape[2] = {x.rows, n->out_dim};
  mrlL_tensor *y = x.batched ? mrlL_newtensor(L, 2, shape) : mrlL_newtensor(L, 1, shape + 1);
  n->last_batch = 0;
  CHECK(L, n, mrl_net_forward(n->h, x.data, x.rows, y->data));
  n->last_batch = x.rows;
  return 1;
}

/* backward(dy, [want_dx]) → dx | nothing; grad accumulates */
static int n_backward(lua_State *L) {
  lua_settop(L, 3); /* temporaries go above the arguments */
  lnet *n = checknet(L);
  if (n->last_batch <= 0) return luaL_error(L, "backward needs a forward first");
  mrlL_mat dy;
  mrlL_checkmat(L, 2, n->out_dim, n->last_batch, &dy);
  if (lua_toboolean(L, 3)) {
    int shape[2] = {dy.rows, n->in_dim};
    mrlL_tensor *dx = dy.batched ? mrlL_newtensor(L, 2, shape)
                                 : mrlL_newtensor(L, 1, shape + 1);
    CHECK(L, n, mrl_net_backward(n->h, dy.data, dx->data));
    return 1;
  }
  CHECK(L, n, mrl_net_backward(n->h, dy.data, NULL));
  return 0;
}

/* jvp(x, v) → y, jy */
static int n_jvp(lua_State *L) {
  lua_settop(L, 3); /* temporaries go above the arguments */
  lnet *n = checknet(L);
  mrlL_mat x;
  mrlL_checkmat(L, 2, n->in_dim, -1, &x);
  const float *v = mrlL_checkvec(L, 3, (int)n->nparams, NULL, 0);
  int shape[2] = {x.rows, n->out_dim};
  mrlL_tensor *y = x.batched ? mrlL_newtensor(L, 2, shape) : mrlL_newtensor(L, 1, shape + 1);
  mrlL_tensor *jy = x.batched ? mrlL_newtensor(L, 2, shape) : mrlL_newtensor(L, 1, shape + 1);
  n->last_batch = 0;
  CHECK(L, n, mrl_net_jvp(n->h, x.data, x.rows, v, y->data, jy->data));
  n->last_batch = x.rows;
  return 2;
}

/* value_loss(obs, targets) → loss, values [N]; grad := ∇loss */
static int n_value_loss(lua_State *L) {
  lua_settop(L, 3); /* temporaries go above the arguments */
  lnet *n = checknet(L);
  mrlL_mat x;
  double loss;
  if (n->out_dim != 1) return luaL_error(L, "value_loss needs a net with out_dim = 1");
  mrlL_checkmat(L, 2, n->in_dim, -1, &x);
  const float *tg = mrlL_checkvec(L, 3, x.rows, NULL, 0);
  int shape[1] = {x.rows};
  n->last_batch = 0;
  mrlL_tensor *v = mrlL_newtensor(L, 1, shape);
  lua_pushnil(L);
  lua_insert(L, -2); /* leave room for the loss below the values */
  CHECK(L, n, mrl_net_value_loss(n->h, x.data, tg, x.rows, &loss, v->data));
  lua_pushnumber(L, loss);
  lua_replace(L, -3);
  return 2;
}

/* value_loss_clipped(obs, targets, old_values, clip) → loss */
static int n_value_loss_clipped(lua_State *L) {
  lua_settop(L, 5); /* temporaries go above the arguments */
  lnet *n = checknet(L);
  mrlL_mat x;
  double loss;
  if (n->out_dim != 1) return luaL_error(L, "value_loss_clipped needs a net with out_dim = 1");
  mrlL_checkmat(L, 2, n->in_dim, -1, &x);
  const float *tg = mrlL_checkvec(L, 3, x.rows, NULL, 0);
  const float *old = mrlL_checkvec(L, 4, x.rows, NULL, 0);
  double clip = luaL_checknumber(L, 5);
  if (!isfinite(clip)) luaL_argerror(L, 5, "finite number expected");
  n->last_batch = 0;
  CHECK(L, n, mrl_net_value_loss_clipped(n->h, x.data, tg, old, x.rows, clip, &loss));
  lua_pushnumber(L, loss);
  return 1;
}

static const luaL_Reg methods[] = {
  {"in_dim", n_in_dim},
  {"out_dim", n_out_dim},
  {"nparams", n_nparams},
  {"spec", n_spec},
  {"params", n_params},
  {"set_params", n_set_params},
  {"grad", n_grad},
  {"params_view", n_params_view},
  {"zero_grad", n_zero_grad},
  {"forward", n_forward},
  {"backward", n_backward},
  {"jvp", n_jvp},
  {"value_loss", n_value_loss},
  {"value_loss_clipped", n_value_loss_clipped},
  {"close", n_closemethod},
  {NULL, NULL}};

static const luaL_Reg metas[] = {
  {"__gc", n_close}, {"__close", n_close}, {"__tostring", n_tostring}, {NULL, NULL}};

int mrlL_open_net(lua_State *L) {
  mrlL_newclass(L, MRLL_NET, methods, metas, NULL);
  lua_pushcfunction(L, l_net);
  lua_setfield(L, -2, "net");
  return 0;
}

int mrlL_net_buffers(lua_State *L, int idx, float **params, float **grad,
                     size_t *n) {
  lnet *p = (lnet *)luaL_testudata(L, idx, MRLL_NET);
  if (p == NULL) return 0;
  if (p->h == NULL) luaL_error(L, "attempt to use a closed %s", MRLL_NET);
  *params = mrl_net_params(p->h);
  *grad = mrl_net_grad(p->h);
  *n = p->nparams;
  return 1;
}
