/*
** l_util.c — errors, argument and table-field checks, and class metatables
** shared by the parts of moonrl.core.  Nothing here depends on another file
** of the binding (array arguments are read by l_tensor.c).  Conversions never
** allocate on the C heap: scratch memory is userdata left on the Lua stack,
** so a raise frees everything.
*/
#include <math.h>
#include <string.h>

#include "l_util.h"

int mrlL_typeerror(lua_State *L, int arg, const char *expected) {
  const char *got;
  if (luaL_getmetafield(L, arg, "__name") == LUA_TSTRING)
    got = lua_tostring(L, -1);
  else if (lua_type(L, arg) == LUA_TLIGHTUSERDATA)
    got = "light userdata";
  else
    got = luaL_typename(L, arg);
  return luaL_argerror(L, arg,
                       lua_pushfstring(L, "%s expected, got %s", expected, got));
}

void *mrlL_checkself(lua_State *L, const char *tname) {
  void *p = lua_touserdata(L, 1);
  if (p != NULL && lua_getmetatable(L, 1)) {
    int same = lua_rawequal(L, -1, lua_upvalueindex(1));
    lua_pop(L, 1);
    if (same) return p;
  }
  mrlL_typeerror(L, 1, tname);
  return NULL;
}

void *mrlL_checkhandle(lua_State *L, int idx, const char *tname) {
  void *box = luaL_testudata(L, idx, tname);
  if (box == NULL) mrlL_typeerror(L, idx, tname);
  void *h = *(void **)box;
  if (h == NULL) luaL_error(L, "attempt to use a closed %s", tname);
  return h;
}

int mrlL_close(lua_State *L, const char *tname, void (*freefn)(void *)) {
  void **box = tname ? (void **)mrlL_checkself(L, tname) : (void **)lua_touserdata(L, 1);
  if (box != NULL && *box != NULL) {
    void *h = *box;
    *box = NULL;
    freefn(h);
  }
  return 0;
}

void *mrlL_testudata(lua_State *L, int idx, const char *tname) {
  return luaL_testudata(L, idx, tname);
}

float *mrlL_scratch(lua_State *L, size_t n) {
  if (n > (size_t)-1 / sizeof(float) - 1) luaL_error(L, "array too large");
  return (float *)lua_newuserdatauv(L, (n ? n : 1) * sizeof(float), 0);
}

void mrlL_checkfinite(lua_State *L, int arg, const float *x, size_t n) {
  size_t i = mrl_first_nonfinite(x, n);
  if (i < n)
    luaL_argerror(L, arg,
                  lua_pushfstring(L, "finite numbers expected, got %s at element %d",
                                  isnan(x[i]) ? "nan" : x[i] > 0 ? "inf" : "-inf",
                                  (int)(i + 1)));
}

lua_Integer mrlL_optintfield(lua_State *L, int idx, const char *k,
                             lua_Integer def, lua_Integer lo, lua_Integer hi) {
  int isint;
  lua_Integer v;
  int t = lua_getfield(L, idx, k);
  if (t == LUA_TNIL) {
    lua_pop(L, 1);
    return def;
  }
  v = lua_tointegerx(L, -1, &isint);
  if (!isint || t != LUA_TNUMBER)
    luaL_error(L, "bad field '%s' (integer expected, got %s)", k,
               t == LUA_TNUMBER ? "non-integer number" : lua_typename(L, t));
  if (v < lo || v > hi)
    luaL_error(L, "bad field '%s' (integer in [%I, %I] expected, got %I)", k,
               lo, hi, v);
  lua_pop(L, 1);
  return v;
}

double mrlL_optnumfield(lua_State *L, int idx, const char *k, double def) {
  int t = lua_getfield(L, idx, k);
  double v = def;
  if (t == LUA_TNUMBER) {
    v = lua_tonumber(L, -1);
    if (!isfinite(v)) luaL_error(L, "bad field '%s' (finite number expected, got %f)", k, v);
  } else if (t != LUA_TNIL) {
    luaL_error(L, "bad field '%s' (number expected, got %s)", k, lua_typename(L, t));
  }
  lua_pop(L, 1);
  return v;
}

int mrlL_optboolfield(lua_State *L, int idx, const char *k, int def) {
  int t = lua_getfield(L, idx, k);
  int v = def;
  if (t == LUA_TBOOLEAN)
    v = lua_toboolean(L, -1);
  else if (t != LUA_TNIL)
    luaL_error(L, "bad field '%s' (boolean expected, got %s)", k, lua_typename(L, t));
  lua_pop(L, 1);
  return v;
}

int mrlL_intarrayfield(lua_State *L, int idx, const char *k, int *out,
                       int max, int lo, int hi) {
  int t = lua_getfield(L, idx, k);
  if (t == LUA_TNIL) {
    lua_pop(L, 1);
    return 0;
  }
  if (t != LUA_TTABLE)
    luaL_error(L, "bad field '%s' (table of integers expected, got %s)", k,
               lua_typename(L, t));
  lua_Integer len = luaL_len(L, -1);
  if (len > max)
    luaL_error(L, "bad field '%s' (at most %d entries expected, got %d)", k,
               max, (int)len);
  for (int i = 1; i <= (int)len; i++) {
    int isint;
    lua_rawgeti(L, -1, i);
    lua_Integer v = lua_tointegerx(L, -1, &isint);
    if (!isint || lua_type(L, -1) != LUA_TNUMBER || v < lo || v > hi)
      luaL_error(L, "bad field '%s' (entry %d must be an integer in [%d, %d])",
                 k, i, lo, hi);
    out[i - 1] = (int)v;
    lua_pop(L, 1);
  }
  lua_pop(L, 1);
  return (int)len;
}

int mrlL_optenumfield(lua_State *L, int idx, const char *k, const char *def,
                      const char *const list[]) {
  int t = lua_getfield(L, idx, k);
  const char *s = def;
  if (t == LUA_TSTRING)
    s = lua_tostring(L, -1);
  else if (t != LUA_TNIL)
    luaL_error(L, "bad field '%s' (string expected, got %s)", k, lua_typename(L, t));
  for (int i = 0; list[i]; i++)
    if (strcmp(list[i], s) == 0) {
      lua_pop(L, 1);
      return i;
    }
  luaL_Buffer b;
  luaL_buffinit(L, &b);
  for (int i = 0; list[i]; i++) {
    if (i) luaL_addstring(&b, i == 1 && !list[2] ? " or " : ", ");
    luaL_addchar(&b, '\'');
    luaL_addstring(&b, list[i]);
    luaL_addchar(&b, '\'');
  }
  luaL_pushresult(&b);
  return luaL_error(L, "bad field '%s' (%s expected, got '%s')", k,
                    lua_tostring(L, -1), s);
}

int mrlL_floatsfield(lua_State *L, int idx, const char *k, float *out, int n) {
  int t = lua_getfield(L, idx, k);
  if (t == LUA_TNIL) {
    lua_pop(L, 1);
    return 0;
  }
  if (t == LUA_TNUMBER) {
    float v = (float)lua_tonumber(L, -1);
    for (int i = 0; i < n; i++) out[i] = v;
  } else if (t == LUA_TTABLE) {
    if (luaL_len(L, -1) != n)
      luaL_error(L, "bad field '%s' (%d numbers expected, got %d)", k, n,
                 (int)luaL_len(L, -1));
    for (int i = 1; i <= n; i++) {
      if (lua_rawgeti(L, -1, i) != LUA_TNUMBER)
        luaL_error(L, "bad field '%s' (number expected at [%d])", k, i);
      out[i - 1] = (float)lua_tonumber(L, -1);
      lua_pop(L, 1);
    }
  } else {
    luaL_error(L, "bad field '%s' (number or table expected, got %s)", k,
               lua_typename(L, t));
  }
  lua_pop(L, 1);
  return 1;
}

void mrlL_readopts(lua_State *L, int idx, mrl_opt_table which, void *dst) {
  for (const mrl_opt *o = mrl_opts(which); o && o->name; o++) {
    char *f = (char *)dst + o->offset;
    if (o->kind == MRL_OPT_NUM)
      *(double *)f = mrlL_optnumfield(L, idx, o->name, *(double *)f);
    else if (o->kind == MRL_OPT_BOOL)
      *(int *)f = mrlL_optboolfield(L, idx, o->name, *(int *)f);
    else if (o->kind == MRL_OPT_ENUM)
      *(int *)f = mrlL_optenumfield(L, idx, o->name, o->names[*(int *)f], o->names);
    else
      *(int *)f = (int)mrlL_optintfield(L, idx, o->name, *(int *)f, (lua_Integer)o->lo,
                                        (lua_Integer)o->hi);
  }
}

void mrlL_newclass(lua_State *L, const char *tname, const luaL_Reg *methods,
                   const luaL_Reg *metas, lua_CFunction index_fn) {
  luaL_newmetatable(L, tname); /* sets __name */
  int mt = lua_gettop(L);
  lua_newtable(L); /* methods */
  lua_pushvalue(L, mt);
  luaL_setfuncs(L, methods, 1);
  lua_pushvalue(L, mt); /* target */
  lua_pushvalue(L, mt); /* upvalue */
  luaL_setfuncs(L, metas, 1);
  lua_pop(L, 1);
  if (index_fn) {
    lua_pushvalue(L, mt);
    lua_pushvalue(L, -2);
    lua_pushcclosure(L, index_fn, 2);
  } else {
    lua_pushvalue(L, -1);
  }
  lua_setfield(L, mt, "__index");
  lua_setfield(L, mt, "__methods");
  lua_pop(L, 1);
}

/* obs_shape = {C, H, W} and conv = {{out=, kernel=, stride=, padding=}, ...}
** (stride 1 and padding 0 when absent) of the table at idx: the shape in
** shape[3], the layers in conv[MRL_MAX_CONV] and their count in *nconv;
** returns 1 if obs_shape was given (core.policy and core.net). */
int mrlL_checkgrid(lua_State *L, int idx, int shape[3], mrl_conv_layer *conv,
                   int *nconv) {
  static const char *const keys[] = {"out", "kernel", "stride", "padding", NULL};
  int has = lua_getfield(L, idx, "obs_shape") != LUA_TNIL;
  lua_pop(L, 1);
  if (has && mrlL_intarrayfield(L, idx, "obs_shape", shape, 3, 1,
                                MRL_MAX_WIDTH) != 3)
    luaL_error(L, "bad field 'obs_shape' ({C, H, W} expected)");
  if (lua_getfield(L, idx, "conv") == LUA_TNIL) {
    lua_pop(L, 1);
    return has;
  }
  if (!has) luaL_error(L, "bad field 'conv' (needs obs_shape = {C, H, W})");
  if (!lua_istable(L, -1))
    luaL_error(L, "bad field 'conv' (table expected, got %s)", luaL_typename(L, -1));
  int n = (int)lua_rawlen(L, -1);
  if (n > MRL_MAX_CONV)
    luaL_error(L, "bad field 'conv' (%d layers, at most %d)", n, (int)MRL_MAX_CONV);
  for (int i = 0; i < n; i++) {
    if (lua_rawgeti(L, -1, i + 1) != LUA_TTABLE)
      luaL_error(L, "bad field 'conv[%d]' (table expected, got %s)", i + 1,
                 luaL_typename(L, -1));
    int li = lua_gettop(L);
    lua_pushnil(L);
    while (lua_next(L, li)) {
      int known = 0;
      for (int k = 0; keys[k]; k++)
        known |= lua_type(L, -2) == LUA_TSTRING && strcmp(lua_tostring(L, -2), keys[k]) == 0;
      if (!known)
        luaL_error(L, "bad field 'conv[%d]' (unknown key %s; out, kernel, stride, padding)",
                   i + 1, lua_type(L, -2) == LUA_TSTRING ? lua_tostring(L, -2) : "(not a string)");
      lua_pop(L, 1);
    }
    for (int k = 0; k < 2; k++) {
      lua_getfield(L, li, keys[k]);
      if (lua_isnil(L, -1)) luaL_error(L, "bad field 'conv[%d].%s' (integer expected, got nil)", i + 1, keys[k]);
      lua_pop(L, 1);
    }
    conv[i].out = (int)mrlL_optintfield(L, li, "out", 1, 1, MRL_MAX_WIDTH);
    conv[i].kernel = (int)mrlL_optintfield(L, li, "kernel", 1, 1, 1024);
    conv[i].stride = (int)mrlL_optintfield(L, li, "stride", 1, 1, 1024);
    conv[i].padding = (int)mrlL_optintfield(L, li, "padding", 0, 0, 1024);
    lua_pop(L, 1);
  }
  lua_pop(L, 1);
  *nconv = n;
  return has;
}

void mrlL_setgrid(lua_State *L, const int *shape, const mrl_conv_layer *conv,
                  int nconv) {
  if (shape) {
    lua_createtable(L, 3, 0);
    for (int i = 0; i < 3; i++) {
      lua_pushinteger(L, shape[i]);
      lua_rawseti(L, -2, i + 1);
    }
    lua_setfield(L, -2, "obs_shape");
  }
  if (nconv < 1) return;
  lua_createtable(L, nconv, 0);
  for (int i = 0; i < nconv; i++) {
    lua_createtable(L, 0, 4);
    lua_pushinteger(L, conv[i].out);
    lua_setfield(L, -2, "out");
    lua_pushinteger(L, conv[i].kernel);
    lua_setfield(L, -2, "kernel");
    lua_pushinteger(L, conv[i].stride);
    lua_setfield(L, -2, "stride");
    lua_pushinteger(L, conv[i].padding);
    lua_setfield(L, -2, "padding");
    lua_rawseti(L, -2, i + 1);
  }
  lua_setfield(L, -2, "conv");
}
