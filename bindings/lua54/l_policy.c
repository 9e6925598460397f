/*
** l_policy.c — moonrl.Policy: a stochastic policy (categorical or diagonal
** Gaussian) over an MLP, with every loss and update of the runtime.
**
** The userdata is created closed (h == NULL) before the C handle exists, so
** a failure between the two leaves nothing to leak (liolib's model).  It also
** carries one observation row and one action row inline: policy:act(obs) for
** a single state given as a Lua table reads into them and allocates nothing.
*/
#include <math.h>
#include <string.h>

#include "l_module.h"
#include "l_policy.h"
#include "l_tensor.h"

typedef struct lpolicy {
  mrl_policy *h;           /* NULL once closed */
  int obs_dim, n, width, out_dim;
  mrl_action_kind kind;
  size_t nparams;
  double init_log_std, out_gain;
  lua_Integer seed;
  float *obs1, *act1;      /* inline rows for the single-state path */
  float *mask1;            /* [out_dim] its mask (act under a mask) */
} lpolicy;

static const char *const kinds[] = {"discrete", "box", NULL};
/* every action type core.policy takes: discrete, box, then the composite ones */
static const char *const types[] = {"discrete", "box", "multi_discrete", "multi_binary",
                                    "hybrid", NULL};
static const char *const part_types[] = {"discrete", "box", "multi_binary", NULL};
static const char *const acts[] = {"tanh", "relu", NULL};
static const char *const fishers[] = {"analytic", "empirical", NULL};

/* The action type's name; a composite one from its parts. */
static const char *typename_of(const lpolicy *p) {
  if (p->kind != MRL_COMPOSITE) return kinds[p->kind];
  if (mrl_policy_maskable(p->h)) return "multi_discrete";
  /* one part of bits; a lone gaussian part stays a hybrid (its log_std) */
  if (mrl_policy_nparts(p->h) == 1 && mrl_policy_part(p->h, 0).type == MRL_PART_BERNOULLI)
    return "multi_binary";
  return "hybrid";
}

static lpolicy *checkpolicy(lua_State *L) {
  lpolicy *p = (lpolicy *)mrlL_checkself(L, MRLL_POLICY);
  if (p->h == NULL) luaL_error(L, "attempt to use a closed %s", MRLL_POLICY);
  return p;
}

static int fail(lua_State *L, lpolicy *p, int st) {
  const char *msg = p->h ? mrl_policy_error(p->h) : NULL;
  if (msg == NULL || *msg == '\0') msg = mrl_status_string(st);
  return luaL_error(L, "%s", msg);
}
#define CHECK(L, p, call)                  \
  do {                                     \
    int st_ = (call);                      \
    if (st_ != MRL_OK) fail(L, p, st_);    \
  } while (0)

/* ---------------------------------------------------------------- life */

static int p_close(lua_State *L) {
  lpolicy *p = (lpolicy *)lua_touserdata(L, 1);
  if (p != NULL && p->h != NULL) {
    mrl_policy_free(p->h);
    p->h = NULL;
  }
  return 0;
}

static int p_closemethod(lua_State *L) {
  mrlL_checkself(L, MRLL_POLICY);
  return p_close(L);
}

static int p_tostring(lua_State *L) {
  lpolicy *p = (lpolicy *)mrlL_checkself(L, MRLL_POLICY);
  if (p->h == NULL) {
    lua_pushstring(L, MRLL_POLICY " (closed)");
    return 1;
  }
  luaL_Buffer b;
  luaL_buffinit(L, &b);
  int shape[3];
  if (mrl_policy_obs_shape(p->h, shape))
    lua_pushfstring(L, MRLL_POLICY " (obs %dx%dx%d", shape[0], shape[1], shape[2]);
  else
    lua_pushfstring(L, MRLL_POLICY " (obs %d", p->obs_dim);
  luaL_addvalue(&b);
  for (int i = 0; i < mrl_policy_nconv(p->h); i++) {
    mrl_conv_layer c;
    mrl_policy_conv(p->h, i, &c);
    lua_pushfstring(L, "%s%d k%d s%d p%d", i ? ", " : ", conv {", c.out, c.kernel,
                    c.stride, c.padding);
    luaL_addvalue(&b);
  }
  if (mrl_policy_nconv(p->h) > 0) luaL_addstring(&b, "}");
  lua_pushfstring(L, ", %s %d, hidden {", typename_of(p), p->n);
  luaL_addvalue(&b);
  for (int i = 0; i < mrl_policy_nhidden(p->h); i++) {
    lua_pushfstring(L, i ? ", %d" : "%d", mrl_policy_hidden(p->h, i));
    luaL_addvalue(&b);
  }
  lua_pushfstring(L, "}, %s, %d params)", acts[mrl_policy_activation(p->h)],
                  (int)p->nparams);
  luaL_addvalue(&b);
  luaL_pushresult(&b);
  return 1;
}

/* The parts of a composite action at table ai (type: its index in types):
** multi_discrete {nvec = {n1, n2, ...}}, multi_binary {n = }, hybrid
** {parts = {{type = "discrete", n = }, {type = "box", n = },
** {type = "multi_binary", n = }, ...}}.  The array lives in a userdata
** left on the stack. */
static mrl_action_part *checkparts(lua_State *L, int ai, int type, int *nparts) {
  const char *key = type == 2 ? "nvec" : type == 4 ? "parts" : NULL;
  lua_Integer len = 1;
  if (key) {
    if (lua_getfield(L, ai, key) != LUA_TTABLE)
      luaL_error(L, "bad field 'action.%s' (table expected, got %s)", key, luaL_typename(L, -1));
    len = luaL_len(L, -1);
    lua_pop(L, 1);
    if (len < 1 || len > MRL_MAX_WIDTH)
      luaL_error(L, "bad field 'action.%s' (1 to %d entries expected, got %d)", key,
                 (int)MRL_MAX_WIDTH, (int)len);
  }
  mrl_action_part *parts =
      (mrl_action_part *)lua_newuserdatauv(L, (size_t)len * sizeof *parts, 0);
  int top = lua_gettop(L);
  if (type == 3) { /* multi_binary: one part of n bits */
    lua_getfield(L, ai, "n");
    if (lua_isnil(L, -1)) luaL_error(L, "bad field 'action.n' (integer expected, got nil)");
    lua_pop(L, 1);
    parts[0].type = MRL_PART_BERNOULLI;
    parts[0].n = (int)mrlL_optintfield(L, ai, "n", 1, 1, MRL_MAX_WIDTH);
    *nparts = 1;
    return parts;
  }
  lua_getfield(L, ai, key);
  for (int i = 0; i < (int)len; i++) {
    int t = lua_rawgeti(L, -1, i + 1);
    if (type == 2) {
      int isint;
      lua_Integer n = lua_tointegerx(L, -1, &isint);
      if (t != LUA_TNUMBER || !isint || n < 1 || n > MRL_MAX_WIDTH)
        luaL_error(L, "bad field 'action.nvec' (entry %d: integer in [1, %d] expected)", i + 1,
                   (int)MRL_MAX_WIDTH);
      parts[i].type = MRL_PART_CATEGORICAL;
      parts[i].n = (int)n;
    } else {
      if (t != LUA_TTABLE)
        luaL_error(L, "bad field 'action.parts' (entry %d: table expected, got %s)", i + 1,
                   luaL_typename(L, -1));
      int pi = lua_gettop(L);
      lua_getfield(L, pi, "type");
      if (lua_isnil(L, -1))
        luaL_error(L, "bad field 'action.parts[%d].type' ('discrete', 'box' or 'multi_binary' "
                      "expected, got nil)", i + 1);
      lua_pop(L, 1);
      static const mrl_part_type pt[] = {MRL_PART_CATEGORICAL, MRL_PART_GAUSSIAN,
                                         MRL_PART_BERNOULLI};
      parts[i].type = pt[mrlL_optenumfield(L, pi, "type", "discrete", part_types)];
      lua_getfield(L, pi, "n");
      if (lua_isnil(L, -1))
        luaL_error(L, "bad field 'action.parts[%d].n' (integer expected, got nil)", i + 1);
      lua_pop(L, 1);
      parts[i].n = (int)mrlL_optintfield(L, pi, "n", 1, 1, MRL_MAX_WIDTH);
    }
    lua_pop(L, 1);
  }
  lua_settop(L, top);
  *nparts = (int)len;
  return parts;
}

/* core.policy{obs_dim=, hidden=, activation=, action={type=, n=, low=, high=},
**             init_log_std=, out_gain=, seed=, obs_shape=, conv=}:
** mrl_policy_spec_default's
** values where an option is absent, mrl_policy_spec_check's words when one
** is wrong */
static int l_policy(lua_State *L) {
  int hidden[MRL_MAX_LAYERS];
  char err[256];
  mrl_policy_spec spec = mrl_policy_spec_default();
  luaL_checktype(L, 1, LUA_TTABLE);
  mrl_conv_layer conv[MRL_MAX_CONV];
  const int grid = mrlL_checkgrid(L, 1, spec.obs_shape, conv, &spec.nconv);
  if (spec.nconv > 0) spec.conv = conv;
  lua_getfield(L, 1, "obs_dim");
  if (lua_isnil(L, -1) && !grid)
    luaL_error(L, "bad field 'obs_dim' (integer expected, got nil)");
  lua_pop(L, 1);
  spec.obs_dim = (int)mrlL_optintfield(L, 1, "obs_dim", 0, 1, MRL_MAX_WIDTH);
  if (lua_getfield(L, 1, "hidden") != LUA_TNIL) {
    spec.nhidden = mrlL_intarrayfield(L, 1, "hidden", hidden, MRL_MAX_LAYERS, 1,
                                      MRL_MAX_WIDTH);
    spec.hidden = hidden;
  }
  lua_pop(L, 1);
  spec.activation =
      (mrl_activation)mrlL_optenumfield(L, 1, "activation", acts[spec.activation], acts);
  spec.init_log_std = mrlL_optnumfield(L, 1, "init_log_std", spec.init_log_std);
  spec.out_gain = mrlL_optnumfield(L, 1, "out_gain", spec.out_gain);
  spec.seed = (uint64_t)mrlL_optintfield(L, 1, "seed", (lua_Integer)spec.seed, LUA_MININTEGER,
                                         LUA_MAXINTEGER);
  if (lua_getfield(L, 1, "action") != LUA_TTABLE)
    luaL_error(L, "bad field 'action' (table expected, got %s)", luaL_typename(L, -1));
  int ai = lua_gettop(L);
  lua_getfield(L, ai, "type");
  if (lua_isnil(L, -1)) luaL_error(L, "bad field 'action.type' ('discrete' or 'box' expected, got nil)");
  lua_pop(L, 1);
  int type = mrlL_optenumfield(L, ai, "type", "discrete", types);
  if (type >= 2) {
    spec.action_kind = MRL_COMPOSITE;
    spec.parts = checkparts(L, ai, type, &spec.nparts);
  } else {
    spec.action_kind = (mrl_action_kind)type;
    lua_getfield(L, ai, "n");
    if (lua_isnil(L, -1)) luaL_error(L, "bad field 'action.n' (integer expected, got nil)");
    lua_pop(L, 1);
    spec.action_n = (int)mrlL_optintfield(L, ai, "n", 1, 1, MRL_MAX_WIDTH);
  }
  float *bounds = NULL;
  if (spec.action_kind == MRL_BOX) {
    bounds = mrlL_scratch(L, 2 * (size_t)spec.action_n);
    int hl = mrlL_floatsfield(L, ai, "low", bounds, spec.action_n);
    int hh = mrlL_floatsfield(L, ai, "high", bounds + spec.action_n, spec.action_n);
    if (hl != hh) luaL_error(L, "bad field 'action' (give both low and high, or neither)");
    if (hl) {
      spec.low = bounds;
      spec.high = bounds + spec.action_n;
    }
  }
  if (mrl_policy_spec_check(&spec, err, sizeof err) != MRL_OK)
    luaL_error(L, "cannot create policy: %s", err);
  if (grid) spec.obs_dim = spec.obs_shape[0] * spec.obs_shape[1] * spec.obs_shape[2];
  int width = spec.action_kind == MRL_BOX ? spec.action_n : 1;
  int outd = spec.action_n;  /* the output layer: n, or the parts' sum */
  if (spec.action_kind == MRL_COMPOSITE) {
    width = outd = 0;
    for (int i = 0; i < spec.nparts; i++) {
      width += spec.parts[i].type == MRL_PART_CATEGORICAL ? 1 : spec.parts[i].n;
      outd += spec.parts[i].n;
    }
  }
  /* closed userdata first, handle second */
  lpolicy *p = (lpolicy *)lua_newuserdatauv(
      L, sizeof(lpolicy) + ((size_t)spec.obs_dim + (size_t)width + (size_t)outd) * sizeof(float),
      0);
  memset(p, 0, sizeof *p);
  luaL_setmetatable(L, MRLL_POLICY);
  p->obs1 = (float *)(p + 1);
  p->act1 = p->obs1 + spec.obs_dim;
  p->mask1 = p->act1 + width;
  int st = mrl_policy_new(&p->h, &spec);
  if (st != MRL_OK) {
    p->h = NULL;
    return luaL_error(L, "cannot create policy: %s", mrl_status_string(st));
  }
  p->obs_dim = spec.obs_dim;
  p->n = mrl_policy_out_dim(p->h);
  p->kind = spec.action_kind;
  p->width = mrl_policy_action_width(p->h);
  p->out_dim = mrl_policy_out_dim(p->h);
  p->nparams = mrl_policy_nparams(p->h);
  p->init_log_std = spec.init_log_std;
  p->out_gain = spec.out_gain;
  p->seed = (lua_Integer)spec.seed;
  return 1;
}

/* ----------------------------------------------------------- accessors */

static int p_obs_dim(lua_State *L) {
  lua_pushinteger(L, checkpolicy(L)->obs_dim);
  return 1;
}
static int p_action_kind(lua_State *L) {
  lua_pushstring(L, typename_of(checkpolicy(L)));
  return 1;
}
static int p_action_n(lua_State *L) {
  lua_pushinteger(L, checkpolicy(L)->n);
  return 1;
}
static int p_action_width(lua_State *L) {
  lua_pushinteger(L, checkpolicy(L)->width);
  return 1;
}
static int p_nparams(lua_State *L) {
  lua_pushinteger(L, (lua_Integer)checkpolicy(L)->nparams);
  return 1;
}

static void pushfloatarray(lua_State *L, const float *x, int n) {
  lua_createtable(L, n, 0);
  for (int i = 0; i < n; i++) {
    lua_pushnumber(L, x[i]);
    lua_rawseti(L, -2, i + 1);
  }
}

static int p_spec(lua_State *L) {
  lpolicy *p = checkpolicy(L);
  int nh = mrl_policy_nhidden(p->h);
  lua_createtable(L, 0, 7);
  lua_pushinteger(L, p->obs_dim);
  lua_setfield(L, -2, "obs_dim");
  lua_createtable(L, nh, 0);
  for (int i = 0; i < nh; i++) {
    lua_pushinteger(L, mrl_policy_hidden(p->h, i));
    lua_rawseti(L, -2, i + 1);
  }
  lua_setfield(L, -2, "hidden");
  lua_pushstring(L, acts[mrl_policy_activation(p->h)]);
  lua_setfield(L, -2, "activation");
  lua_createtable(L, 0, 4);
  const char *tn = typename_of(p);
  lua_pushstring(L, tn);
  lua_setfield(L, -2, "type");
  lua_pushinteger(L, p->n); /* the outputs, for a composite action too */
  lua_setfield(L, -2, "n");
  if (p->kind == MRL_COMPOSITE && strcmp(tn, "multi_binary") != 0) {
    int np = mrl_policy_nparts(p->h), md = strcmp(tn, "multi_discrete") == 0;
    lua_createtable(L, np, 0);
    for (int i = 0; i < np; i++) {
      mrl_action_part a = mrl_policy_part(p->h, i);
      if (md) {
        lua_pushinteger(L, a.n);
      } else {
        lua_createtable(L, 0, 2);
        lua_pushstring(L, a.type == MRL_PART_CATEGORICAL ? "discrete"
                          : a.type == MRL_PART_GAUSSIAN  ? "box" : "multi_binary");
        lua_setfield(L, -2, "type");
        lua_pushinteger(L, a.n);
        lua_setfield(L, -2, "n");
      }
      lua_rawseti(L, -2, i + 1);
    }
    lua_setfield(L, -2, md ? "nvec" : "parts");
  }
  if (p->kind == MRL_BOX && mrl_policy_low(p->h) != NULL) {
    pushfloatarray(L, mrl_policy_low(p->h), p->n);
    lua_setfield(L, -2, "low");
    pushfloatarray(L, mrl_policy_high(p->h), p->n);
    lua_setfield(L, -2, "high");
  }
  lua_setfield(L, -2, "action");
  lua_pushnumber(L, p->init_log_std);
  lua_setfield(L, -2, "init_log_std");
  lua_pushnumber(L, p->out_gain);
  lua_setfield(L, -2, "out_gain");
  lua_pushinteger(L, p->seed);
  lua_setfield(L, -2, "seed");
  int shape[3];
  mrl_conv_layer conv[MRL_MAX_CONV];
  const int nc = mrl_policy_nconv(p->h);
  for (int i = 0; i < nc; i++) mrl_policy_conv(p->h, i, &conv[i]);
  mrlL_setgrid(L, mrl_policy_obs_shape(p->h, shape) ? shape : NULL, conv, nc);
  return 1;
}

static int p_params(lua_State *L) {
  lpolicy *p = checkpolicy(L);
  int shape[1] = {(int)p->nparams};
  mrlL_tensor *t = mrlL_newtensor(L, 1, shape);
  CHECK(L, p, mrl_policy_get_params(p->h, t->data, p->nparams));
  return 1;
}

static int p_set_params(lua_State *L) {
  lua_settop(L, 2); /* temporaries go above the arguments */
  lpolicy *p = checkpolicy(L);
  const float *v = mrlL_checkvec(L, 2, (int)p->nparams, NULL, 0);
  CHECK(L, p, mrl_policy_set_params(p->h, v, p->nparams));
  lua_settop(L, 1);
  return 1;
}

/* Views over the handle's own buffers; they raise once the policy is closed. */
static int p_grad(lua_State *L) {
  lpolicy *p = checkpolicy(L);
  int shape[1] = {(int)p->nparams};
  mrlL_pushview(L, 1, (void *const *)&p->h, MRLL_POLICY, mrl_policy_grad(p->h), 1, shape);
  return 1;
}

static int p_params_view(lua_State *L) {
  lpolicy *p = checkpolicy(L);
  int shape[1] = {(int)p->nparams};
  mrlL_pushview(L, 1, (void *const *)&p->h, MRLL_POLICY, mrl_policy_params(p->h), 1, shape);
  return 1;
}

static int p_bounds(lua_State *L) {
  lpolicy *p = checkpolicy(L);
  if (p->kind != MRL_BOX || mrl_policy_low(p->h) == NULL) return 0;
  pushfloatarray(L, mrl_policy_low(p->h), p->n);
  pushfloatarray(L, mrl_policy_high(p->h), p->n);
  return 2;
}

/* Actions for rows states: a composite action's rows are width numbers. */
static const float *checkacts(lua_State *L, const lpolicy *p, int arg, int rows) {
  if (p->kind == MRL_COMPOSITE) return mrlL_checkactions(L, arg, MRL_BOX, p->width, rows);
  return mrlL_checkactions(L, arg, p->kind, p->n, rows);
}

/* Optional masks [rows][out_dim] at arg (1 valid, 0 invalid): NULL when
** absent or nil; the runtime checks the values. */
static const float *optmasks(lua_State *L, const lpolicy *p, int arg, int rows) {
  if (lua_isnoneornil(L, arg)) return NULL;
  mrlL_mat m;
  mrlL_checkmat(L, arg, p->out_dim, rows, &m);
  return m.data;
}

/* Optional parameter vector at arg: NULL when absent or nil. */
static const float *optparams(lua_State *L, lpolicy *p, int arg) {
  if (lua_isnoneornil(L, arg)) return NULL;
  return mrlL_checkvec(L, arg, (int)p->nparams, NULL, 0);
}

/* ------------------------------------------------------------- forward */

static int p_forward(lua_State *L) {
  lua_settop(L, 3); /* temporaries go above the arguments */
  lpolicy *p = checkpolicy(L);
  mrlL_mat obs;
  mrlL_checkmat(L, 2, p->obs_dim, -1, &obs);
  const float *params = optparams(L, p, 3);
  int shape[2] = {obs.rows, p->out_dim};
  mrlL_tensor *out = obs.batched ? mrlL_newtensor(L, 2, shape)
                                 : mrlL_newtensor(L, 1, shape + 1);
  CHECK(L, p, mrl_policy_forward(p->h, params, obs.data, obs.rows, out->data));
  return 1;
}

/* Pushes one action row as Lua values: an integer or an array. */
static void pushaction(lua_State *L, const lpolicy *p, const float *a) {
  if (p->kind == MRL_DISCRETE)
    lua_pushinteger(L, (lua_Integer)a[0]);
  else
    pushfloatarray(L, a, p->width);
}

/* A flat table of d numbers at idx into o (top: the arguments' count, the
** stack's height to come back to); -1 when it is anything else.  All of a
** chunk's elements are pushed, then read in place, then one settop: a pop
** per element was a quarter of this binding's time (LUA_MINSTACK
** guarantees 20 slots above the arguments, so 16 more fit). */
static int read_row(lua_State *L, int idx, int top, float *o, int d) {
  if (lua_type(L, idx) != LUA_TTABLE || lua_rawlen(L, idx) != (size_t)d) return -1;
  const int chunk = d < 16 ? d : 16;
  for (int j0 = 0; j0 < d; j0 += chunk) {
    const int m = d - j0 < chunk ? d - j0 : chunk;
    for (int j = 0; j < m; j++)
      if (lua_rawgeti(L, idx, j0 + j + 1) != LUA_TNUMBER) {
        lua_settop(L, top);
        return -1;
      }
    for (int j = 0; j < m; j++) o[j0 + j] = (float)lua_tonumber(L, top + 1 + j);
    lua_settop(L, top);
  }
  return 0;
}

/* The hot path: one state as a flat table, read straight into p->obs1. */
static int act_table(lua_State *L, lpolicy *p, int det) {
  float *o = p->obs1;
  float logp;
  const int d = p->obs_dim;
  if (read_row(L, 2, 3, o, d) != 0) return -1;
  for (int j = 0; j < d; j++)
    if (!isfinite(o[j]))
      return luaL_argerror(L, 2, lua_pushfstring(L, "finite number expected at [%d], got %s",
                                                 j + 1, isnan(o[j]) ? "nan" : "inf"));
  CHECK(L, p, mrl_policy_act(p->h, o, 1, det, p->act1, &logp));
  pushaction(L, p, p->act1);
  lua_pushnumber(L, logp);
  return 2;
}

/* act(obs, det, masks): the masked draws, one row or a batch */
static int act_masked(lua_State *L) {
  lua_settop(L, 4); /* temporaries go above the arguments */
  lpolicy *p = checkpolicy(L);
  int det = lua_toboolean(L, 3);
  /* the game's call: one state and its mask as flat tables, no allocation */
  if (read_row(L, 2, 4, p->obs1, p->obs_dim) == 0 &&
      read_row(L, 4, 4, p->mask1, p->out_dim) == 0) {
    for (int j = 0; j < p->obs_dim; j++)
      if (!isfinite(p->obs1[j]))
        return luaL_argerror(L, 2, lua_pushfstring(L, "finite number expected at [%d], got %s",
                                                   j + 1, isnan(p->obs1[j]) ? "nan" : "inf"));
    float logp;
    CHECK(L, p, mrl_policy_act_masked(p->h, p->obs1, p->mask1, 1, det, p->act1, &logp));
    pushaction(L, p, p->act1);
    lua_pushnumber(L, logp);
    return 2;
  }
  mrlL_mat obs;
  mrlL_checkmat(L, 2, p->obs_dim, -1, &obs);
  const float *m = optmasks(L, p, 4, obs.rows);
  if (!obs.batched) {
    float logp;
    CHECK(L, p, mrl_policy_act_masked(p->h, obs.data, m, 1, det, p->act1, &logp));
    pushaction(L, p, p->act1);
    lua_pushnumber(L, logp);
    return 2;
  }
  int shape[2] = {obs.rows, p->width};
  mrlL_tensor *a = mrlL_newtensor(L, 2, shape);
  mrlL_tensor *lp = mrlL_newtensor(L, 1, shape);
  CHECK(L, p, mrl_policy_act_masked(p->h, obs.data, m, obs.rows, det, a->data, lp->data));
  return 2;
}

static int p_act(lua_State *L) {
  if (!lua_isnoneornil(L, 4)) return act_masked(L);
  lua_settop(L, 3); /* temporaries go above the arguments */
  lpolicy *p = checkpolicy(L);
  int det = lua_toboolean(L, 3);
  if (lua_type(L, 2) == LUA_TTABLE) {
    int r = act_table(L, p, det);
    if (r >= 0) return r;
    /* not a flat row: fall through to the general reader for batches or
    ** for the precise error message */
  }
  mrlL_mat obs;
  mrlL_checkmat(L, 2, p->obs_dim, -1, &obs);
  if (!obs.batched) {
    float logp;
    CHECK(L, p, mrl_policy_act(p->h, obs.data, 1, det, p->act1, &logp));
    pushaction(L, p, p->act1);
    lua_pushnumber(L, logp);
    return 2;
  }
  int shape[2] = {obs.rows, p->width};
  mrlL_tensor *a = mrlL_newtensor(L, 2, shape);
  mrlL_tensor *lp = mrlL_newtensor(L, 1, shape);
  CHECK(L, p, mrl_policy_act(p->h, obs.data, obs.rows, det, a->data, lp->data));
  return 2;
}

/* act_into(obs [N][D], actions_out (N·width floats), logp_out [N] | nil, det,
**          masks | nil) */
static int p_act_into(lua_State *L) {
  lua_settop(L, 6); /* temporaries go above the arguments */
  lpolicy *p = checkpolicy(L);
  mrlL_mat obs;
  mrlL_tensor *a, *lp = NULL;
  if (mrlL_totensor(L, 2) == NULL) mrlL_typeerror(L, 2, MRLL_TENSOR);
  mrlL_checkmat(L, 2, p->obs_dim, -1, &obs);
  a = mrlL_totensor(L, 3);
  if (a == NULL) mrlL_typeerror(L, 3, MRLL_TENSOR);
  if (a->numel != (size_t)obs.rows * (size_t)p->width)
    luaL_argerror(L, 3, lua_pushfstring(L, "%d elements expected, got %d",
                                        obs.rows * p->width, (int)a->numel));
  if (!lua_isnoneornil(L, 4)) {
    lp = mrlL_totensor(L, 4);
    if (lp == NULL) mrlL_typeerror(L, 4, MRLL_TENSOR " or nil");
    if (lp->numel != (size_t)obs.rows)
      luaL_argerror(L, 4, lua_pushfstring(L, "%d elements expected, got %d",
                                          obs.rows, (int)lp->numel));
  }
  const float *m = optmasks(L, p, 6, obs.rows);
  float *ad = mrlL_tensordata(L, a), *ld = lp ? mrlL_tensordata(L, lp) : NULL;
  CHECK(L, p, mrl_policy_act_masked(p->h, obs.data, m, obs.rows, lua_toboolean(L, 5), ad, ld));
  return 0;
}

/* evaluate(obs, actions, [params], [masks]) → logp, entropy */
static int p_evaluate(lua_State *L) {
  lua_settop(L, 5); /* temporaries go above the arguments */
  lpolicy *p = checkpolicy(L);
  mrlL_mat obs;
  mrlL_checkmat(L, 2, p->obs_dim, -1, &obs);
  const float *a = checkacts(L, p, 3, obs.rows);
  const float *params = optparams(L, p, 4);
  const float *m = optmasks(L, p, 5, obs.rows);
  int shape[1] = {obs.rows};
  if (!obs.batched) {
    float lp, ent;
    CHECK(L, p, mrl_policy_evaluate_masked(p->h, params, obs.data, m, a, 1, &lp, &ent));
    lua_pushnumber(L, lp);
    lua_pushnumber(L, ent);
    return 2;
  }
  mrlL_tensor *lp = mrlL_newtensor(L, 1, shape);
  mrlL_tensor *ent = mrlL_newtensor(L, 1, shape);
  CHECK(L, p, mrl_policy_evaluate_masked(p->h, params, obs.data, m, a, obs.rows, lp->data,
                                         ent->data));
  return 2;
}

/* kl(params_old|nil, params_new|nil, obs, [masks]) → kl [N], mean */
static int p_kl(lua_State *L) {
  lua_settop(L, 5); /* temporaries go above the arguments */
  lpolicy *p = checkpolicy(L);
  const float *po = optparams(L, p, 2);
  const float *pn = optparams(L, p, 3);
  mrlL_mat obs;
  mrlL_checkmat(L, 4, p->obs_dim, -1, &obs);
  const float *m = optmasks(L, p, 5, obs.rows);
  int shape[1] = {obs.rows};
  double mean;
  mrlL_tensor *kl = mrlL_newtensor(L, 1, shape);
  CHECK(L, p, mrl_policy_kl_masked(p->h, po, pn, obs.data, m, obs.rows, kl->data, &mean));
  lua_pushnumber(L, mean);
  return 2;
}

/* ---------------------------------------------------------------- losses */

/* grad_weighted_logp(obs, actions, weights, [scale], [masks]) → objective */
static int p_grad_weighted_logp(lua_State *L) {
  lua_settop(L, 6); /* temporaries go above the arguments */
  lpolicy *p = checkpolicy(L);
  mrlL_mat obs;
  double obj;
  mrlL_checkmat(L, 2, p->obs_dim, -1, &obs);
  const float *a = checkacts(L, p, 3, obs.rows);
  const float *w = mrlL_checkvec(L, 4, obs.rows, NULL, 0);
  double scale = luaL_optnumber(L, 5, 1.0);
  const float *m = optmasks(L, p, 6, obs.rows);
  CHECK(L, p, mrl_policy_grad_weighted_logp_masked(p->h, obs.data, m, a, w, obs.rows, scale,
                                                   &obj));
  lua_pushnumber(L, obj);
  return 1;
}

static void setnum(lua_State *L, const char *k, double v) {
  lua_pushnumber(L, v);
  lua_setfield(L, -2, k);
}

/* ppo_loss(obs, actions, old_logp, adv, {clip_eps, ent_coef,
** normalize_advantages}) → {loss, policy_loss, entropy, clip_fraction, approx_kl} */
/* The arguments ppo_loss and trpo_step share, (obs, actions, old_logp,
** adv, [opts]) at 2..6; opts read through the runtime's option table
** `which` into o, which holds the defaults. */
typedef struct surr {
  mrlL_mat obs;
  const float *a, *olp, *adv;
} surr;

static void surrargs(lua_State *L, const lpolicy *p, surr *s, mrl_opt_table which, void *o) {
  mrlL_checkmat(L, 2, p->obs_dim, -1, &s->obs);
  s->a = checkacts(L, p, 3, s->obs.rows);
  s->olp = mrlL_checkvec(L, 4, s->obs.rows, NULL, 0);
  s->adv = mrlL_checkvec(L, 5, s->obs.rows, NULL, 0);
  if (!lua_isnoneornil(L, 6)) {
    luaL_checktype(L, 6, LUA_TTABLE);
    mrlL_readopts(L, 6, which, o);
  }
}

/* ppo_loss(obs, actions, old_logp, adv, [opts], [masks]) → {loss, policy_loss,
** entropy, clip_fraction, approx_kl} */
static int p_ppo_loss(lua_State *L) {
  lua_settop(L, 7); /* temporaries go above the arguments */
  lpolicy *p = checkpolicy(L);
  surr a;
  mrl_ppo_opts o = mrl_ppo_opts_default();
  mrl_ppo_stats s;
  surrargs(L, p, &a, MRL_OPTS_PPO_LOSS, &o);
  const float *m = optmasks(L, p, 7, a.obs.rows);
  CHECK(L, p, mrl_policy_ppo_loss_masked(p->h, a.obs.data, m, a.a, a.olp, a.adv, a.obs.rows,
                                         &o, &s));
  lua_createtable(L, 0, 5);
  setnum(L, "loss", s.loss);
  setnum(L, "policy_loss", s.policy_loss);
  setnum(L, "entropy", s.entropy);
  setnum(L, "clip_fraction", s.clip_fraction);
  setnum(L, "approx_kl", s.approx_kl);
  return 1;
}

/* kl_penalty_loss(params_old, obs, actions, old_logp, adv, beta, [masks])
** → loss, mean_kl */
static int p_kl_penalty_loss(lua_State *L) {
  lua_settop(L, 8); /* temporaries go above the arguments */
  lpolicy *p = checkpolicy(L);
  mrlL_mat obs;
  double loss, mkl;
  const float *po = mrlL_checkvec(L, 2, (int)p->nparams, NULL, 0);
  mrlL_checkmat(L, 3, p->obs_dim, -1, &obs);
  const float *a = checkacts(L, p, 4, obs.rows);
  const float *olp = mrlL_checkvec(L, 5, obs.rows, NULL, 0);
  const float *adv = mrlL_checkvec(L, 6, obs.rows, NULL, 0);
  double beta = luaL_checknumber(L, 7);
  const float *m = optmasks(L, p, 8, obs.rows);
  CHECK(L, p, mrl_policy_kl_penalty_loss_masked(p->h, po, obs.data, m, a, olp, adv, obs.rows,
                                                beta, &loss, &mkl));
  lua_pushnumber(L, loss);
  lua_pushnumber(L, mkl);
  return 2;
}

/* ------------------------------------------------------ natural gradient */

/* Reads (obs, actions|nil) at arg, arg+1 and the fisher name at farg. */
static mrl_fisher fisherargs(lua_State *L, lpolicy *p, int arg, int farg,
                             mrlL_mat *obs, const float **a) {
  mrl_fisher f = (mrl_fisher)luaL_checkoption(L, farg, "analytic", fishers);
  mrlL_checkmat(L, arg, p->obs_dim, -1, obs);
  *a = NULL;
  if (!lua_isnoneornil(L, arg + 1))
    *a = checkacts(L, p, arg + 1, obs->rows);
  else if (f == MRL_FISHER_EMPIRICAL)
    luaL_argerror(L, arg + 1, "actions expected for the empirical Fisher");
  return f;
}

/* its range, like every scalar's, is the runtime's to check */
#define checkdamping(L, arg) luaL_checknumber(L, arg)

static int checkiters(lua_State *L, int arg) {
  lua_Integer it = luaL_checkinteger(L, arg);
  if (it < 1 || it > 100000) luaL_argerror(L, arg, "integer in [1, 100000] expected");
  return (int)it;
}

/* fvp(obs, actions|nil, v, damping, fisher, [masks]) → (F + damping·I) v */
static int p_fvp(lua_State *L) {
  lua_settop(L, 7); /* temporaries go above the arguments */
  lpolicy *p = checkpolicy(L);
  mrlL_mat obs;
  const float *a;
  mrl_fisher f = fisherargs(L, p, 2, 6, &obs, &a);
  const float *v = mrlL_checkvec(L, 4, (int)p->nparams, NULL, 0);
  double damping = checkdamping(L, 5);
  int shape[1] = {(int)p->nparams};
  const float *m = optmasks(L, p, 7, obs.rows);
  mrlL_tensor *out = mrlL_newtensor(L, 1, shape);
  CHECK(L, p, mrl_policy_fvp_masked(p->h, f, obs.data, m, a, obs.rows, v, damping, out->data));
  return 1;
}

/* cg(obs, actions|nil, g, damping, iters, fisher, [masks]) → x, xAx */
static int p_cg(lua_State *L) {
  lua_settop(L, 8); /* temporaries go above the arguments */
  lpolicy *p = checkpolicy(L);
  mrlL_mat obs;
  const float *a;
  double xAx;
  mrl_fisher f = fisherargs(L, p, 2, 7, &obs, &a);
  const float *g = mrlL_checkvec(L, 4, (int)p->nparams, NULL, 0);
  double damping = checkdamping(L, 5);
  int iters = checkiters(L, 6);
  int shape[1] = {(int)p->nparams};
  const float *m = optmasks(L, p, 8, obs.rows);
  mrlL_tensor *x = mrlL_newtensor(L, 1, shape);
  CHECK(L, p, mrl_policy_cg_masked(p->h, f, obs.data, m, a, obs.rows, g, damping, iters,
                                   x->data, &xAx));
  lua_pushnumber(L, xAx);
  return 2;
}

/* npg_step(obs, actions|nil, g, damping, iters, max_kl, fisher, [masks]) → step */
static int p_npg_step(lua_State *L) {
  lua_settop(L, 9); /* temporaries go above the arguments */
  lpolicy *p = checkpolicy(L);
  mrlL_mat obs;
  const float *a;
  mrl_fisher f = fisherargs(L, p, 2, 8, &obs, &a);
  const float *g = mrlL_checkvec(L, 4, (int)p->nparams, NULL, 0);
  double damping = checkdamping(L, 5);
  int iters = checkiters(L, 6);
  double max_kl = luaL_checknumber(L, 7);
  int shape[1] = {(int)p->nparams};
  const float *m = optmasks(L, p, 9, obs.rows);
  mrlL_tensor *s = mrlL_newtensor(L, 1, shape);
  CHECK(L, p, mrl_policy_npg_step_masked(p->h, f, obs.data, m, a, obs.rows, g, damping, iters,
                                         max_kl, s->data));
  return 1;
}

/* npg_update(obs, actions, adv, damping, iters, max_kl, fisher, [masks])
** → {objective, grad_norm, mean_kl}: NPG's outer step, θ updated */
static int p_npg_update(lua_State *L) {
  lua_settop(L, 9); /* temporaries go above the arguments */
  lpolicy *p = checkpolicy(L);
  mrlL_mat obs;
  const float *a;
  mrl_fisher f = fisherargs(L, p, 2, 8, &obs, &a);
  if (a == NULL) luaL_argerror(L, 3, "actions expected");
  const float *adv = mrlL_checkvec(L, 4, obs.rows, NULL, 0);
  double damping = checkdamping(L, 5);
  int iters = checkiters(L, 6);
  double max_kl = luaL_checknumber(L, 7);
  if (!isfinite(max_kl) || max_kl <= 0) luaL_argerror(L, 7, "finite number > 0 expected");
  const float *m = optmasks(L, p, 9, obs.rows);
  mrl_npg_report r;
  CHECK(L, p, mrl_policy_npg_update_masked(p->h, f, obs.data, m, a, adv, obs.rows, damping,
                                           iters, max_kl, &r));
  lua_createtable(L, 0, 3);
  lua_pushnumber(L, r.objective);
  lua_setfield(L, -2, "objective");
  lua_pushnumber(L, r.grad_norm);
  lua_setfield(L, -2, "grad_norm");
  lua_pushnumber(L, r.mean_kl);
  lua_setfield(L, -2, "mean_kl");
  return 1;
}

/* trpo_step(obs, actions, old_logp, adv, {max_kl, damping, cg_iters,
** backtrack_coef, max_backtracks}, [masks]) → {accepted, accepted_j, mean_kl,
** improvement, surrogate_before} */
static int p_trpo_step(lua_State *L) {
  lua_settop(L, 7); /* temporaries go above the arguments */
  lpolicy *p = checkpolicy(L);
  surr a;
  mrl_trpo_opts o = mrl_trpo_opts_default();
  mrl_trpo_result r;
  surrargs(L, p, &a, MRL_OPTS_TRPO, &o);
  const float *m = optmasks(L, p, 7, a.obs.rows);
  CHECK(L, p, mrl_policy_trpo_step_masked(p->h, a.obs.data, m, a.a, a.olp, a.adv, a.obs.rows,
                                          &o, &r));
  lua_createtable(L, 0, 5);
  lua_pushboolean(L, r.accepted_j >= 0);
  lua_setfield(L, -2, "accepted");
  lua_pushinteger(L, r.accepted_j);
  lua_setfield(L, -2, "accepted_j");
  setnum(L, "mean_kl", r.mean_kl);
  setnum(L, "improvement", r.improvement);
  setnum(L, "surrogate_before", r.surrogate_before);
  return 1;
}

/* ------------------------------------------------------------ estimators */

/* pg_gradient(obs, actions, rewards, behavior_logp|nil, values|nil,
**             ep_offsets, opts, [masks]) → grad [nparams], {mean_ratio, ess,
**             mean_return} */
static int p_pg_gradient(lua_State *L) {
  lua_settop(L, 9); /* temporaries go above the arguments */
  lpolicy *p = checkpolicy(L);
  mrlL_mat obs;
  mrl_pg_opts o = mrl_pg_opts_default();
  mrl_pg_stats s;
  const float *blp = NULL, *vals = NULL;
  mrlL_checkmat(L, 2, p->obs_dim, -1, &obs);
  int T = obs.rows;
  const float *a = checkacts(L, p, 3, T);
  const float *r = mrlL_checkvec(L, 4, T, NULL, 0);
  if (!lua_isnoneornil(L, 5)) blp = mrlL_checkvec(L, 5, T, NULL, 0);
  if (!lua_isnoneornil(L, 6)) vals = mrlL_checkvec(L, 6, T, NULL, 0);
  /* offsets: episode starts (0-based), the final T optional; the runtime
  ** checks their order */
  luaL_checktype(L, 7, LUA_TTABLE);
  lua_Integer len = luaL_len(L, 7);
  if (len < 1 || len > T + 1)
    luaL_argerror(L, 7, lua_pushfstring(L, "1 to %d offsets expected, got %d", T + 1, (int)len));
  int *off = (int *)lua_newuserdatauv(L, ((size_t)len + 1) * sizeof(int), 0);
  for (int i = 0; i < (int)len; i++) {
    int isint;
    lua_rawgeti(L, 7, i + 1);
    lua_Integer v = lua_tointegerx(L, -1, &isint);
    lua_pop(L, 1);
    if (!isint || v < 0 || v > T)
      luaL_argerror(L, 7, lua_pushfstring(L, "offset [%d]: integer in [0, %d] expected", i + 1, T));
    off[i] = (int)v;
  }
  int nep = (int)len;
  if (len > 1 && off[len - 1] == T)
    nep--;
  else
    off[len] = T;
  luaL_checktype(L, 8, LUA_TTABLE);
  mrlL_readopts(L, 8, MRL_OPTS_PG, &o);
  const float *m = optmasks(L, p, 9, T);
  int shape[1] = {(int)p->nparams};
  mrlL_tensor *g = mrlL_newtensor(L, 1, shape);
  CHECK(L, p, mrl_pg_gradient_masked(p->h, obs.data, m, a, r, blp, vals, off, nep, &o, g->data,
                                     &s));
  lua_createtable(L, 0, 3);
  setnum(L, "mean_ratio", s.mean_ratio);
  setnum(L, "ess", s.ess);
  setnum(L, "mean_return", s.mean_return);
  return 2;
}

/* gumbel_grad(obs, scores [N][n], tau) → actions, objective: the
** straight-through Gumbel-softmax ascent direction into grad (discrete only).
** One row gives an integer action; a batch an actions tensor [N]. */
static int p_gumbel_grad(lua_State *L) {
  lua_settop(L, 4); /* temporaries go above the arguments */
  lpolicy *p = checkpolicy(L);
  mrlL_mat obs, sc;
  double obj;
  if (p->kind != MRL_DISCRETE) return luaL_error(L, "gumbel_grad needs a discrete policy");
  mrlL_checkmat(L, 2, p->obs_dim, -1, &obs);
  mrlL_checkmat(L, 3, p->n, obs.rows, &sc);
  double tau = luaL_checknumber(L, 4);
  int shape[1] = {obs.rows};
  mrlL_tensor *a = mrlL_newtensor(L, 1, shape);
  CHECK(L, p, mrl_policy_gumbel_grad(p->h, obs.data, sc.data, obs.rows, tau, a->data, &obj));
  if (!obs.batched) lua_pushinteger(L, (lua_Integer)a->data[0]);
  else lua_pushvalue(L, -1);
  lua_pushnumber(L, obj);
  return 2;
}

static const luaL_Reg methods[] = {
  {"gumbel_grad", p_gumbel_grad},
  {"obs_dim", p_obs_dim},
  {"action_kind", p_action_kind},
  {"action_n", p_action_n},
  {"action_width", p_action_width},
  {"nparams", p_nparams},
  {"spec", p_spec},
  {"bounds", p_bounds},
  {"params", p_params},
  {"set_params", p_set_params},
  {"grad", p_grad},
  {"params_view", p_params_view},
  {"forward", p_forward},
  {"act", p_act},
  {"act_into", p_act_into},
  {"evaluate", p_evaluate},
  {"kl", p_kl},
  {"grad_weighted_logp", p_grad_weighted_logp},
  {"ppo_loss", p_ppo_loss},
  {"kl_penalty_loss", p_kl_penalty_loss},
  {"fvp", p_fvp},
  {"cg", p_cg},
  {"npg_step", p_npg_step},
  {"npg_update", p_npg_update},
  {"trpo_step", p_trpo_step},
  {"pg_gradient", p_pg_gradient},
  {"close", p_closemethod},
  {NULL, NULL}};

static const luaL_Reg metas[] = {
  {"__gc", p_close}, {"__close", p_close}, {"__tostring", p_tostring}, {NULL, NULL}};

int mrlL_open_policy(lua_State *L) {
  mrlL_newclass(L, MRLL_POLICY, methods, metas, NULL);
  lua_pushcfunction(L, l_policy);
  lua_setfield(L, -2, "policy");
  return 0;
}

int mrlL_policy_buffers(lua_State *L, int idx, float **params, float **grad,
                        size_t *n) {
  lpolicy *p = (lpolicy *)luaL_testudata(L, idx, MRLL_POLICY);
  if (p == NULL) return 0;
  if (p->h == NULL) luaL_error(L, "attempt to use a closed %s", MRLL_POLICY);
  *params = mrl_policy_params(p->h);
  *grad = mrl_policy_grad(p->h);
  *n = p->nparams;
  return 1;
}
