/*
** l_util.c — argument checking and conversion shared by the classes of
** moonrl.core.  Conversions never allocate on the C heap: table data goes
** into scratch userdata left on the Lua stack, so a raise frees everything.
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

void *mrlL_testudata(lua_State *L, int idx, const char *tname) {
  return luaL_testudata(L, idx, tname);
}

float *mrlL_scratch(lua_State *L, size_t n) {
  if (n > (size_t)-1 / sizeof(float) - 1) luaL_error(L, "array too large");
  return (float *)lua_newuserdatauv(L, (n ? n : 1) * sizeof(float), 0);
}

void mrlL_checkfinite(lua_State *L, int arg, const float *x, size_t n) {
  for (size_t i = 0; i < n; i++)
    if (!isfinite(x[i]))
      luaL_argerror(L, arg,
                    lua_pushfstring(L, "finite numbers expected, got %s at element %d",
                                    isnan(x[i]) ? "nan" : x[i] > 0 ? "inf" : "-inf",
                                    (int)(i + 1)));
}

/* Describes a tensor's shape into the buffer, e.g. "tensor [3][5]". */
static const char *shapestr(lua_State *L, const mrlL_tensor *t) {
  luaL_Buffer b;
  luaL_buffinit(L, &b);
  luaL_addstring(&b, "moonrl.Tensor ");
  for (int d = 0; d < t->ndim; d++) {
    lua_pushfstring(L, "[%d]", t->shape[d]);
    luaL_addvalue(&b);
  }
  luaL_pushresult(&b);
  return lua_tostring(L, -1);
}

/* Reads the number at the top of the stack into *out (popping it); returns
** 0 when it is not a number (booleans allowed when allow_bool). */
static int popnum(lua_State *L, float *out, int allow_bool) {
  lua_Number v;
  int t = lua_type(L, -1); /* numeric strings are not numbers here */
  if (t == LUA_TNUMBER)
    v = lua_tonumber(L, -1);
  else if (allow_bool && t == LUA_TBOOLEAN)
    v = lua_toboolean(L, -1) ? 1 : 0;
  else {
    lua_pop(L, 1);
    return 0;
  }
  lua_pop(L, 1);
  *out = (float)v;
  return 1;
}

static void badelem(lua_State *L, int arg, int i, int j) {
  const char *tn = luaL_typename(L, -1);
  if (j > 0)
    luaL_argerror(L, arg, lua_pushfstring(L, "number expected at [%d][%d], got %s",
                                          i, j, tn));
  luaL_argerror(L, arg, lua_pushfstring(L, "number expected at [%d], got %s", i, tn));
}

static void nonfinite(lua_State *L, int arg, int i, int j, float v) {
  const char *vs = isnan(v) ? "nan" : v > 0 ? "inf" : "-inf";
  if (j > 0)
    luaL_argerror(L, arg, lua_pushfstring(L, "finite number expected at [%d][%d], got %s",
                                          i, j, vs));
  luaL_argerror(L, arg, lua_pushfstring(L, "finite number expected at [%d], got %s", i, vs));
}

void mrlL_checkmat(lua_State *L, int arg, int cols, int rows_want,
                   mrlL_mat *m) {
  mrlL_tensor *t;
  arg = lua_absindex(L, arg);
  if ((t = mrlL_totensor(L, arg)) != NULL) {
    const float *d = mrlL_tensordata(L, t);
    int rows = -1, batched = 0;
    if (t->ndim == 1 && t->shape[0] == cols) {
      rows = 1;
    } else if (t->ndim == 2 && t->shape[1] == cols) {
      rows = t->shape[0];
      batched = 1;
    }
    if (rows < 0 || (rows_want >= 0 && rows != rows_want)) {
      if (rows_want >= 0)
        luaL_argerror(L, arg, lua_pushfstring(L, "moonrl.Tensor [%d][%d] expected, got %s",
                                              rows_want, cols, shapestr(L, t)));
      luaL_argerror(L, arg, lua_pushfstring(L, "moonrl.Tensor [%d] or [N][%d] expected, got %s",
                                            cols, cols, shapestr(L, t)));
    }
    if (rows == 0) luaL_argerror(L, arg, "at least one row expected, got an empty moonrl.Tensor");
    if (rows > MRL_MAX_BATCH) luaL_argerror(L, arg, "too many rows");
    mrlL_checkfinite(L, arg, d, t->numel);
    m->data = d;
    m->rows = rows;
    m->cols = cols;
    m->batched = batched;
    return;
  }
  if (lua_type(L, arg) != LUA_TTABLE) {
    const char *e = lua_pushfstring(L, "moonrl.Tensor or table of %d numbers", cols);
    mrlL_typeerror(L, arg, e);
  }
  int first = lua_rawgeti(L, arg, 1);
  lua_pop(L, 1);
  lua_Integer len = luaL_len(L, arg);
  if (first == LUA_TTABLE) { /* rows */
    if (len > MRL_MAX_BATCH)
      luaL_argerror(L, arg, "too many rows");
    if (rows_want >= 0 && len != rows_want)
      luaL_argerror(L, arg, lua_pushfstring(L, "%d rows expected, got %d",
                                            rows_want, (int)len));
    float *d = mrlL_scratch(L, (size_t)len * (size_t)cols);
    for (int i = 1; i <= (int)len; i++) {
      if (lua_rawgeti(L, arg, i) != LUA_TTABLE)
        luaL_argerror(L, arg, lua_pushfstring(L, "row %d: table of %d numbers expected, got %s",
                                              i, cols, luaL_typename(L, -1)));
      lua_Integer rl = luaL_len(L, -1);
      if (rl != cols)
        luaL_argerror(L, arg, lua_pushfstring(L, "row %d: %d numbers expected, got %d",
                                              i, cols, (int)rl));
      float *row = d + (size_t)(i - 1) * (size_t)cols;
      for (int j = 1; j <= cols; j++) {
        lua_rawgeti(L, -1, j);
        if (!popnum(L, &row[j - 1], 0)) {
          lua_rawgeti(L, -1, j);
          badelem(L, arg, i, j);
        }
        if (!isfinite(row[j - 1])) nonfinite(L, arg, i, j, row[j - 1]);
      }
      lua_pop(L, 1);
    }
    m->data = d;
    m->rows = (int)len;
    m->batched = 1;
  } else if (first == LUA_TNUMBER) { /* one row */
    if (len != cols || (rows_want >= 0 && rows_want != 1))
      luaL_argerror(L, arg,
                    rows_want > 1
                        ? lua_pushfstring(L, "%d rows of %d numbers expected, got a flat table",
                                          rows_want, cols)
                        : lua_pushfstring(L, "table of %d numbers expected, got %d",
                                          cols, (int)len));
    float *d = mrlL_scratch(L, (size_t)cols);
    for (int j = 1; j <= cols; j++) {
      lua_rawgeti(L, arg, j);
      if (!popnum(L, &d[j - 1], 0)) {
        lua_rawgeti(L, arg, j);
        badelem(L, arg, j, 0);
      }
      if (!isfinite(d[j - 1])) nonfinite(L, arg, j, 0, d[j - 1]);
    }
    m->data = d;
    m->rows = 1;
    m->batched = 0;
  } else {
    luaL_argerror(L, arg, lua_pushfstring(L, "table of %d numbers or of rows expected, "
                                             "got a table whose [1] is %s",
                                          cols, lua_typename(L, first)));
  }
  m->cols = cols;
}

const float *mrlL_checkvec(lua_State *L, int arg, int n_want, int *n,
                           int allow_bool) {
  mrlL_tensor *t;
  arg = lua_absindex(L, arg);
  if ((t = mrlL_totensor(L, arg)) != NULL) {
    const float *d = mrlL_tensordata(L, t);
    if ((n_want >= 0 && t->numel != (size_t)n_want) || t->numel == 0 ||
        t->numel > MRL_MAX_BATCH)
      luaL_argerror(L, arg, n_want >= 0
                                ? lua_pushfstring(L, "moonrl.Tensor of %d elements expected, got %s",
                                                  n_want, shapestr(L, t))
                                : lua_pushfstring(L, "non-empty moonrl.Tensor expected, got %s",
                                                  shapestr(L, t)));
    mrlL_checkfinite(L, arg, d, t->numel);
    if (n) *n = (int)t->numel;
    return d;
  }
  if (lua_type(L, arg) != LUA_TTABLE) {
    if (n_want >= 0)
      mrlL_typeerror(L, arg, lua_pushfstring(L, "moonrl.Tensor or table of %d numbers", n_want));
    mrlL_typeerror(L, arg, "moonrl.Tensor or table of numbers");
  }
  lua_Integer len = luaL_len(L, arg);
  if ((n_want >= 0 && len != n_want) || len <= 0 || len > MRL_MAX_BATCH)
    luaL_argerror(L, arg, n_want >= 0
                              ? lua_pushfstring(L, "table of %d numbers expected, got %d",
                                                n_want, (int)len)
                              : lua_pushfstring(L, "non-empty table of numbers expected, got %d",
                                                (int)len));
  float *d = mrlL_scratch(L, (size_t)len);
  for (int i = 1; i <= (int)len; i++) {
    lua_rawgeti(L, arg, i);
    if (!popnum(L, &d[i - 1], allow_bool)) {
      lua_rawgeti(L, arg, i);
      badelem(L, arg, i, 0);
    }
    if (!isfinite(d[i - 1])) nonfinite(L, arg, i, 0, d[i - 1]);
  }
  if (n) *n = (int)len;
  return d;
}

const float *mrlL_checkactions(lua_State *L, int arg, mrl_action_kind kind,
                               int n, int batch) {
  arg = lua_absindex(L, arg);
  if (kind == MRL_DISCRETE) {
    const float *a;
    if (batch == 1 && lua_type(L, arg) == LUA_TNUMBER) {
      float *d = mrlL_scratch(L, 1);
      d[0] = (float)lua_tonumber(L, arg);
      a = d;
    } else {
      a = mrlL_checkvec(L, arg, batch, NULL, 0);
    }
    for (int i = 0; i < batch; i++) {
      float v = a[i];
      if (v != floorf(v) || v < 0 || v >= (float)n)
        luaL_argerror(L, arg, lua_pushfstring(L, "action at [%d] must be an integer in "
                                                 "[0, %d), got %f",
                                              i + 1, n, (double)v));
    }
    return a;
  }
  if (n == 1 && lua_type(L, arg) == LUA_TTABLE) {
    /* {a0, a1, …} is also accepted for a one-dimensional box */
    int first = lua_rawgeti(L, arg, 1);
    lua_pop(L, 1);
    if (first == LUA_TNUMBER) return mrlL_checkvec(L, arg, batch, NULL, 0);
  }
  if (n == 1 && batch == 1 && lua_type(L, arg) == LUA_TNUMBER) {
    float *d = mrlL_scratch(L, 1);
    d[0] = (float)lua_tonumber(L, arg);
    mrlL_checkfinite(L, arg, d, 1);
    return d;
  }
  mrlL_tensor *t = mrlL_totensor(L, arg);
  if (t != NULL && n == 1 && t->ndim == 1 && t->shape[0] == batch) {
    const float *d = mrlL_tensordata(L, t);
    mrlL_checkfinite(L, arg, d, t->numel);
    return d;
  }
  mrlL_mat m;
  mrlL_checkmat(L, arg, n, batch, &m);
  return m.data;
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
