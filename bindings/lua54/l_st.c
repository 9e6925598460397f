/*
** l_st.c — checkpoint plumbing for the Lua layer: safetensors files
** (core.st_write / core.st_read over mrl_st_*), the exact state of a
** generator and an optimiser (so a resumed run continues bit for bit), and
** a monotonic wall clock (core.now) for progress lines and timings.
**
** File errors are expected failures: they return nil, message.  Misuse
** (a wrong argument type, a non-string metadata value) raises.
*/
#include <string.h>

#include "l_module.h"
#include "l_tensor.h"

/* core.st_write(path, {name = tensor | table, …}, [{key = string, …}])
** → true | nil, message (mrl_st_write sorts the names).  Scratch lives in
** userdata on the stack, so a raise in the middle frees everything. */
static int l_st_write(lua_State *L) {
  const char *path = luaL_checkstring(L, 1);
  luaL_checktype(L, 2, LUA_TTABLE);
  if (!lua_isnoneornil(L, 3)) luaL_checktype(L, 3, LUA_TTABLE);
  lua_settop(L, 3);
  int nt = 0, nk = 0;
  lua_pushnil(L);
  while (lua_next(L, 2)) { nt++; lua_pop(L, 1); }
  if (!lua_isnil(L, 3)) {
    lua_pushnil(L);
    while (lua_next(L, 3)) { nk++; lua_pop(L, 1); }
  }
  /* stack: 4 = tensor descriptors, 5 and 6 = keys and values */
  mrl_st_tensor *ts = (mrl_st_tensor *)lua_newuserdatauv(L, sizeof *ts * (size_t)(nt + 1), 0);
  const char **keys = (const char **)lua_newuserdatauv(L, sizeof(char *) * (size_t)(nk + 1), 0);
  const char **vals = (const char **)lua_newuserdatauv(L, sizeof(char *) * (size_t)(nk + 1), 0);
  /* 7 = a table that keeps converted tensors alive */
  lua_newtable(L);
  int i = 0;
  lua_pushnil(L);
  while (lua_next(L, 2)) {
    if (lua_type(L, -2) != LUA_TSTRING)
      return luaL_argerror(L, 2, "tensor names must be strings");
    mrlL_tensor *t = mrlL_totensor(L, -1);
    if (t == NULL) {
      if (!lua_istable(L, -1))
        return luaL_argerror(L, 2, lua_pushfstring(L, "'%s': moonrl.Tensor or table expected, got %s",
                                                   lua_tostring(L, -2), luaL_typename(L, -1)));
      /* a (nested) Lua table: convert through core.tensor semantics */
      lua_getfield(L, LUA_REGISTRYINDEX, "moonrl.st.tensor");
      lua_pushvalue(L, -2);
      lua_call(L, 1, 1);
      t = mrlL_totensor(L, -1);
      lua_rawseti(L, 7, i + 1);
    }
    ts[i].name = lua_tostring(L, -2);
    ts[i].data = mrlL_tensordata(L, t);
    ts[i].ndim = t->ndim;
    for (int d = 0; d < t->ndim; d++) ts[i].shape[d] = t->shape[d];
    i++;
    lua_pop(L, 1);
  }
  int k = 0;
  if (nk) {
    lua_pushnil(L);
    while (lua_next(L, 3)) {
      if (lua_type(L, -2) != LUA_TSTRING || lua_type(L, -1) != LUA_TSTRING)
        return luaL_argerror(L, 3, "metadata must map strings to strings");
      keys[k] = lua_tostring(L, -2);
      vals[k] = lua_tostring(L, -1);
      k++;
      lua_pop(L, 1);
    }
  }
  char err[256];
  err[0] = '\0';
  int st = mrl_st_write(path, ts, nt, keys, vals, nk, err, sizeof err);
  if (st != MRL_OK) {
    lua_pushnil(L);
    lua_pushfstring(L, "%s", err[0] ? err : mrl_status_string(st));
    return 2;
  }
  lua_pushboolean(L, 1);
  return 1;
}

/* An open file boxed in a userdata whose __gc closes it, so a raise (a
** memory error, a hostile shape) while building the result leaks nothing. */
#define MRLL_STFILE "moonrl.StFile"

static int stfile_gc(lua_State *L) {
  mrl_st_file **box = (mrl_st_file **)lua_touserdata(L, 1);
  if (box && *box) {
    mrl_st_close(*box);
    *box = NULL;
  }
  return 0;
}

/* core.st_read(path) → {name = tensor}, {key = string} | nil, message */
static int l_st_read(lua_State *L) {
  const char *path = luaL_checkstring(L, 1);
  lua_settop(L, 1);
  char err[256];
  err[0] = '\0';
  mrl_st_file **box = (mrl_st_file **)lua_newuserdatauv(L, sizeof *box, 0); /* 2 */
  *box = NULL;
  luaL_setmetatable(L, MRLL_STFILE);
  int st = mrl_st_open(box, path, err, sizeof err);
  if (st != MRL_OK) {
    *box = NULL;
    lua_pushnil(L);
    lua_pushfstring(L, "%s", err[0] ? err : mrl_status_string(st));
    return 2;
  }
  mrl_st_file *f = *box;
  int n = mrl_st_count(f);
  lua_createtable(L, 0, n > 0 ? n : 0); /* 3 */
  for (int i = 0; i < n; i++) {
    const char *name = mrl_st_name(f, i);
    int nd, shape[MRLL_MAXDIM];
    if (mrl_st_shape(f, i, MRLL_MAXDIM, MRL_MAX_BATCH, &nd, shape, err, sizeof err)) {
      lua_pushnil(L);
      lua_pushfstring(L, "%s: %s", path, err);
      return 2;
    }
    mrlL_tensor *t = mrlL_newtensor(L, nd, shape);
    st = mrl_st_read(f, i, t->data, t->numel);
    if (st != MRL_OK) {
      lua_pushnil(L);
      lua_pushfstring(L, "%s: tensor '%s': dtype %s cannot be read (%s)", path, name,
                      mrl_st_dtype(f, i), mrl_status_string(st));
      return 2;
    }
    lua_setfield(L, 3, name);
  }
  int nm = mrl_st_meta_count(f);
  lua_createtable(L, 0, nm > 0 ? nm : 0);
  for (int i = 0; i < nm; i++) {
    const char *key = mrl_st_meta_key(f, i);
    const char *val = mrl_st_meta_get(f, key);
    lua_pushstring(L, val ? val : "");
    lua_setfield(L, -2, key);
  }
  mrl_st_close(f);
  *box = NULL;
  return 2;
}

/* core.now() → mrl_now(): seconds of a monotonic clock */
static int l_now(lua_State *L) {
  lua_pushnumber(L, mrl_now());
  return 1;
}

/* The generator of a Policy (its sampling and minibatch shuffling) or an Rng. */
static mrl_rng *checkgen(lua_State *L, int idx) {
  if (mrlL_testudata(L, idx, MRLL_POLICY))
    return mrl_policy_rng(mrlL_checkpolicy(L, idx));
  if (mrlL_testudata(L, idx, MRLL_RNG)) return mrlL_checkrng(L, idx);
  mrlL_typeerror(L, idx, "moonrl.Policy or moonrl.Rng");
  return NULL;
}

/* core.rng_state(policy | rng) → a string of MRL_RNG_STATE_BYTES bytes */
static int l_rng_state(lua_State *L) {
  uint8_t buf[MRL_RNG_STATE_BYTES];
  mrl_rng_get_state(checkgen(L, 1), buf);
  lua_pushlstring(L, (const char *)buf, sizeof buf);
  return 1;
}

/* core.set_rng_state(policy | rng, state_string) */
static int l_set_rng_state(lua_State *L) {
  mrl_rng *g = checkgen(L, 1);
  size_t len;
  const char *s = luaL_checklstring(L, 2, &len);
  if (len != MRL_RNG_STATE_BYTES)
    return luaL_argerror(L, 2, lua_pushfstring(L, "a state of %d bytes expected, got %d",
                                               (int)MRL_RNG_STATE_BYTES, (int)len));
  if (mrl_rng_set_state(g, (const uint8_t *)s) != MRL_OK)
    return luaL_argerror(L, 2, "invalid generator state");
  return 0;
}

/* core.optim_state(optim) → {steps = n, m = tensor | nil, v = tensor | nil}
** (copies of the moment vectors; SGD without momentum has none) */
static int l_optim_state(lua_State *L) {
  mrl_optim *o = mrlL_checkoptim(L, 1);
  size_t n = mrl_optim_nparams(o);
  if (n > (size_t)MRL_MAX_BATCH * 16) return luaL_error(L, "optim_state: optimiser too large");
  int shape[1] = {(int)n};
  lua_createtable(L, 0, 3);
  lua_pushinteger(L, (lua_Integer)mrl_optim_steps(o));
  lua_setfield(L, -2, "steps");
  const char *names[2] = {"m", "v"};
  for (int w = 0; w < 2; w++) {
    const float *m = mrl_optim_moment(o, w);
    if (m == NULL) continue;
    mrlL_pushfloats(L, m, 1, shape);
    lua_setfield(L, -2, names[w]);
  }
  return 1;
}

/* core.set_optim_state(optim, {steps =, m =, v =}): all or nothing, the
** checks are mrl_optim_set_state's. */
static int l_set_optim_state(lua_State *L) {
  lua_settop(L, 2);
  mrl_optim *o = mrlL_checkoptim(L, 1);
  luaL_checktype(L, 2, LUA_TTABLE);
  size_t n = mrl_optim_nparams(o);
  lua_Integer steps = mrlL_optintfield(L, 2, "steps", -1, 0, LUA_MAXINTEGER);
  if (steps < 0) return luaL_error(L, "bad field 'steps' (integer >= 0 expected)");
  const float *src[2] = {NULL, NULL};
  for (int w = 0; w < 2; w++)
    if (lua_getfield(L, 2, w ? "v" : "m") != LUA_TNIL)
      src[w] = mrlL_checkvec(L, lua_gettop(L), (int)n, NULL, 0);
  if (mrl_optim_set_state(o, (int64_t)steps, src[0], src[1], n) != MRL_OK)
    return luaL_error(L, "%s", mrl_optim_error(o));
  return 0;
}

/* core.write_file_atomic(path, data) → true | nil, message
** (mrl_write_file_atomic: plain Lua can rename but not fsync) */
static int l_write_file_atomic(lua_State *L) {
  size_t plen, len;
  const char *path = luaL_checklstring(L, 1, &plen);
  const char *data = luaL_checklstring(L, 2, &len);
  if (plen == 0 || strlen(path) != plen)
    return luaL_argerror(L, 1, "a non-empty path without NUL bytes expected");
  char err[512];
  if (mrl_write_file_atomic(path, data, len, err, sizeof err) != MRL_OK) {
    lua_pushnil(L);
    lua_pushstring(L, err);
    return 2;
  }
  lua_pushboolean(L, 1);
  return 1;
}

int mrlL_open_st(lua_State *L) {
  static const luaL_Reg funcs[] = {
    {"st_write", l_st_write},         {"st_read", l_st_read},
    {"now", l_now},                   {"rng_state", l_rng_state},
    {"set_rng_state", l_set_rng_state}, {"optim_state", l_optim_state},
    {"set_optim_state", l_set_optim_state},
    {"write_file_atomic", l_write_file_atomic}, {NULL, NULL}};
  luaL_setfuncs(L, funcs, 0);
  luaL_newmetatable(L, MRLL_STFILE);
  lua_pushcfunction(L, stfile_gc);
  lua_setfield(L, -2, "__gc");
  lua_pop(L, 1);
  /* st_write converts tables with the module's own tensor constructor */
  lua_getfield(L, -1, "tensor");
  lua_setfield(L, LUA_REGISTRYINDEX, "moonrl.st.tensor");
  return 0;
}
