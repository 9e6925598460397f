/*
** l_tensor.c — moonrl.Tensor: a float32 array of up to 4 dimensions.
**
** An owning tensor keeps its floats inline, right after the header in the
** same userdata (as LPeg keeps patterns), so the GC sees its real size and
** there is nothing to free.  A view (a row t[i], view(), reshape(), or a
** policy's gradient buffer) points into another object's memory and keeps
** that object alive through its user value.
**
** The readers of array arguments (mrlL_checkmat / checkvec / checkactions)
** live here too: every class takes its arrays through them.
*/
#include <math.h>
#include <stdio.h>
#include <string.h>

#include "l_module.h"
#include "l_tensor.h"

/* Largest element count we accept: 2^28 floats (1 GiB) keeps byte sizes and
** int indices sane, is far above any batch, and far below a request that
** would take the host down. */
#define MAXNUMEL ((size_t)1 << 28)

static size_t checkshape(lua_State *L, int ndim, const int *shape) {
  size_t n = 1;
  if (ndim < 1 || ndim > MRLL_MAXDIM)
    luaL_error(L, "a tensor has 1 to %d dimensions, got %d", MRLL_MAXDIM, ndim);
  for (int d = 0; d < ndim; d++) {
    if (shape[d] < 0) luaL_error(L, "negative tensor dimension %d", shape[d]);
    n *= (size_t)shape[d];
    if (n > MAXNUMEL) luaL_error(L, "tensor too large");
  }
  return n;
}

/* The header of t (a new userdata), owned by nothing, and its class. */
static mrlL_tensor *setheader(lua_State *L, mrlL_tensor *t, float *data, int ndim,
                              const int *shape, size_t n) {
  memset(t, 0, sizeof *t);
  t->data = data;
  t->numel = n;
  t->ndim = ndim;
  for (int d = 0; d < MRLL_MAXDIM; d++) t->shape[d] = d < ndim ? shape[d] : 1;
  luaL_setmetatable(L, MRLL_TENSOR);
  return t;
}

mrlL_tensor *mrlL_newtensor(lua_State *L, int ndim, const int *shape) {
  size_t n = checkshape(L, ndim, shape);
  mrlL_tensor *t = (mrlL_tensor *)lua_newuserdatauv(
      L, sizeof(mrlL_tensor) + n * sizeof(float), 1);
  memset(t + 1, 0, n * sizeof(float));
  return setheader(L, t, (float *)(t + 1), ndim, shape, n);
}

mrlL_tensor *mrlL_pushview(lua_State *L, int owner_idx, void *const *slot,
                           const char *owner_name, float *data, int ndim,
                           const int *shape) {
  size_t n = checkshape(L, ndim, shape);
  owner_idx = lua_absindex(L, owner_idx);
  mrlL_tensor *t = setheader(L, (mrlL_tensor *)lua_newuserdatauv(L, sizeof(mrlL_tensor), 1),
                             data, ndim, shape, n);
  t->owner = slot;
  t->owner_name = owner_name;
  t->isview = 1;
  lua_pushvalue(L, owner_idx);
  lua_setiuservalue(L, -2, 1);
  return t;
}

mrlL_tensor *mrlL_pushfloats(lua_State *L, const float *x, int ndim,
                             const int *shape) {
  mrlL_tensor *t = mrlL_newtensor(L, ndim, shape);
  if (t->numel) memcpy(t->data, x, t->numel * sizeof(float));
  return t;
}

mrlL_tensor *mrlL_totensor(lua_State *L, int idx) {
  return (mrlL_tensor *)luaL_testudata(L, idx, MRLL_TENSOR);
}

float *mrlL_tensordata(lua_State *L, mrlL_tensor *t) {
  if (t->owner != NULL && *t->owner == NULL)
    luaL_error(L, "attempt to use a view of a closed %s", t->owner_name);
  return t->data;
}

mrlL_tensor *mrlL_checktensor(lua_State *L, int arg) {
  mrlL_tensor *t = mrlL_totensor(L, arg);
  if (t == NULL) mrlL_typeerror(L, arg, MRLL_TENSOR);
  mrlL_tensordata(L, t);
  return t;
}

/* ------------------------------------------------ arrays from arguments
** A matrix, vector or action argument is a tensor (used in place) or a Lua
** table (copied into scratch userdata left on the stack). */

/* Pushes t printed (mrl_tensor_str): shape only (show 0), or with its
** values (show 1), or as a view of a closed object (show -1). */
static const char *pushstr(lua_State *L, const mrlL_tensor *t, int show) {
  char buf[MRL_TENSOR_STR];
  return lua_pushstring(L, mrl_tensor_str(buf, sizeof buf, t->ndim, t->shape, t->data, show));
}
#define shapestr(L, t) pushstr(L, t, 0)

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

/* Methods use the metatable upvalue for a cheap self check. */
static mrlL_tensor *checkself(lua_State *L) {
  mrlL_tensor *t = (mrlL_tensor *)mrlL_checkself(L, MRLL_TENSOR);
  mrlL_tensordata(L, t);
  return t;
}

/* The object a view of t must keep alive: t's own base if t is a view. */
static void pushbase(lua_State *L, int idx, const mrlL_tensor *t) {
  if (t->isview)
    lua_getiuservalue(L, idx, 1);
  else
    lua_pushvalue(L, idx);
}

/* ------------------------------------------------------------ building */

/* Infers the shape of nested tables at idx by following first elements. */
static int infershape(lua_State *L, int idx, int *shape, int arg) {
  int ndim = 0;
  lua_pushvalue(L, idx);
  for (;;) {
    if (ndim == MRLL_MAXDIM)
      luaL_argerror(L, arg, lua_pushfstring(L, "tables nested deeper than %d levels", MRLL_MAXDIM));
    lua_Integer len = luaL_len(L, -1);
    if (len <= 0) luaL_argerror(L, arg, lua_pushfstring(L, "empty table at depth %d", ndim + 1));
    if (len > (lua_Integer)MAXNUMEL) luaL_argerror(L, arg, "tensor too large");
    shape[ndim++] = (int)len;
    int t = lua_rawgeti(L, -1, 1);
    lua_remove(L, -2);
    if (t == LUA_TNUMBER) break;
    if (t != LUA_TTABLE)
      luaL_argerror(L, arg, lua_pushfstring(L, "number or table expected at depth %d, got %s",
                                            ndim + 1, lua_typename(L, t)));
  }
  lua_pop(L, 1);
  return ndim;
}

/* Copies the table at the top of the stack (depth d) into *out. */
static void filltable(lua_State *L, int d, int ndim, const int *shape,
                      float **out, int arg) {
  lua_Integer len = luaL_len(L, -1);
  if (len != shape[d])
    luaL_argerror(L, arg, lua_pushfstring(L, "ragged table: %d elements at depth %d, expected %d",
                                          (int)len, d + 1, shape[d]));
  for (int i = 1; i <= shape[d]; i++) {
    int t = lua_rawgeti(L, -1, i);
    if (d + 1 < ndim) {
      if (t != LUA_TTABLE)
        luaL_argerror(L, arg, lua_pushfstring(L, "ragged table: table expected at depth %d, "
                                                 "got %s", d + 2, lua_typename(L, t)));
      filltable(L, d + 1, ndim, shape, out, arg);
    } else {
      if (t != LUA_TNUMBER)
        luaL_argerror(L, arg, lua_pushfstring(L, "ragged table: number expected at depth %d, "
                                                 "got %s", d + 1, lua_typename(L, t)));
      *(*out)++ = (float)lua_tonumber(L, -1);
    }
    lua_pop(L, 1);
  }
}

static int readdims(lua_State *L, int first, int last, int *shape) {
  int ndim = last - first + 1;
  if (ndim < 1 || ndim > MRLL_MAXDIM)
    luaL_error(L, "a tensor has 1 to %d dimensions, got %d", MRLL_MAXDIM, ndim);
  for (int i = 0; i < ndim; i++) {
    lua_Integer v = luaL_checkinteger(L, first + i);
    if (v < 0 || v > (lua_Integer)MAXNUMEL)
      luaL_argerror(L, first + i, "dimension out of range");
    shape[i] = (int)v;
  }
  return ndim;
}

/* A shape given as a table {d1, d2, …} at idx. */
static int tableshape(lua_State *L, int idx, int *shape) {
  lua_Integer len = luaL_len(L, idx);
  if (len < 1 || len > MRLL_MAXDIM)
    luaL_argerror(L, idx, lua_pushfstring(L, "shape of 1 to %d dimensions expected", MRLL_MAXDIM));
  for (int i = 1; i <= (int)len; i++) {
    int isint;
    lua_rawgeti(L, idx, i);
    lua_Integer v = lua_tointegerx(L, -1, &isint);
    if (!isint || v < 0 || v > (lua_Integer)MAXNUMEL)
      luaL_argerror(L, idx, "shape entries must be non-negative integers");
    shape[i - 1] = (int)v;
    lua_pop(L, 1);
  }
  return (int)len;
}

/* core.tensor(nested_table) | core.tensor(shape_table, fill) | core.tensor(t) */
static int l_tensor(lua_State *L) {
  int shape[MRLL_MAXDIM];
  mrlL_tensor *src = mrlL_totensor(L, 1);
  if (src != NULL) {
    mrlL_pushfloats(L, mrlL_tensordata(L, src), src->ndim, src->shape);
    return 1;
  }
  if (lua_type(L, 1) != LUA_TTABLE) return mrlL_typeerror(L, 1, "table or moonrl.Tensor");
  if (!lua_isnoneornil(L, 2)) {
    lua_Number fill = luaL_checknumber(L, 2);
    int ndim = tableshape(L, 1, shape);
    mrlL_tensor *t = mrlL_newtensor(L, ndim, shape);
    mrl_fill(t->data, t->numel, (float)fill);
    return 1;
  }
  int ndim = infershape(L, 1, shape, 1);
  size_t n = checkshape(L, ndim, shape);
  /* fill a scratch block first so a ragged table raises before the tensor
  ** exists; the tensor is then built from it */
  float *buf = mrlL_scratch(L, n);
  float *p = buf;
  lua_pushvalue(L, 1);
  filltable(L, 0, ndim, shape, &p, 1);
  lua_pop(L, 1);
  mrlL_pushfloats(L, buf, ndim, shape);
  return 1;
}

/* A shape given from argument first on: d1, d2, … or a table {d1, d2, …}. */
static int shapeargs(lua_State *L, int first, int *shape) {
  if (lua_type(L, first) == LUA_TTABLE) return tableshape(L, first, shape);
  return readdims(L, first, lua_gettop(L), shape);
}

/* core.zeros(d1, d2, …) or core.zeros({d1, d2, …}) */
static int l_zeros(lua_State *L) {
  int shape[MRLL_MAXDIM];
  int ndim = shapeargs(L, 1, shape);
  mrlL_newtensor(L, ndim, shape);
  return 1;
}

/* ------------------------------------------------------------- methods */

static int t_shape(lua_State *L) {
  mrlL_tensor *t = checkself(L);
  lua_createtable(L, t->ndim, 0);
  for (int d = 0; d < t->ndim; d++) {
    lua_pushinteger(L, t->shape[d]);
    lua_rawseti(L, -2, d + 1);
  }
  return 1;
}

static int t_dim(lua_State *L) {
  lua_pushinteger(L, checkself(L)->ndim);
  return 1;
}

static int t_numel(lua_State *L) {
  lua_pushinteger(L, (lua_Integer)checkself(L)->numel);
  return 1;
}

static int t_len(lua_State *L) {
  lua_pushinteger(L, checkself(L)->shape[0]);
  return 1;
}

/* Offset of the element addressed by the integers at first..first+n-1. */
static size_t elemoffset(lua_State *L, const mrlL_tensor *t, int first, int n) {
  size_t off = 0;
  if (n != t->ndim)
    luaL_error(L, "%d indices expected for a %d-D tensor, got %d", t->ndim,
               t->ndim, n);
  for (int d = 0; d < t->ndim; d++) {
    lua_Integer i = luaL_checkinteger(L, first + d);
    if (i < 1 || i > t->shape[d])
      luaL_argerror(L, first + d, lua_pushfstring(L, "index %I out of range [1, %d]",
                                                 i, t->shape[d]));
    off = off * (size_t)t->shape[d] + (size_t)(i - 1);
  }
  return off;
}

static int t_get(lua_State *L) {
  mrlL_tensor *t = checkself(L);
  lua_pushnumber(L, t->data[elemoffset(L, t, 2, lua_gettop(L) - 1)]);
  return 1;
}

static int t_set(lua_State *L) {
  mrlL_tensor *t = checkself(L);
  int top = lua_gettop(L);
  lua_Number v = luaL_checknumber(L, top);
  t->data[elemoffset(L, t, 2, top - 2)] = (float)v;
  lua_settop(L, 1);
  return 1;
}

/* Pushes t[i] (i 1-based on the first dimension). */
static void pushrow(lua_State *L, int idx, mrlL_tensor *t, lua_Integer i) {
  if (i < 1 || i > t->shape[0])
    luaL_error(L, "index %I out of range [1, %d] of %s", i, t->shape[0], MRLL_TENSOR);
  if (t->ndim == 1) {
    lua_pushnumber(L, t->data[i - 1]);
    return;
  }
  size_t rowlen = t->numel / (size_t)t->shape[0];
  pushbase(L, idx, t);
  mrlL_pushview(L, -1, t->owner, t->owner_name, t->data + (size_t)(i - 1) * rowlen,
                t->ndim - 1, t->shape + 1);
  lua_remove(L, -2);
}

/* __index: integers address rows, anything else looks up a method. */
static int t_index(lua_State *L) {
  int isint;
  lua_Integer i = lua_tointegerx(L, 2, &isint);
  if (isint && lua_type(L, 2) == LUA_TNUMBER) {
    mrlL_tensor *t = (mrlL_tensor *)lua_touserdata(L, 1);
    mrlL_tensordata(L, t);
    pushrow(L, 1, t, i);
    return 1;
  }
  lua_pushvalue(L, 2);
  lua_rawget(L, lua_upvalueindex(2));
  return 1;
}

/* Copies n floats from the value at idx (a number fills, a tensor or a flat
** or nested table of numel n copies) into dst. */
static void assign(lua_State *L, int idx, float *dst, size_t n, int arg) {
  mrlL_tensor *s;
  if (lua_type(L, idx) == LUA_TNUMBER) {
    float v = (float)lua_tonumber(L, idx);
    mrl_fill(dst, n, v);
  } else if ((s = mrlL_totensor(L, idx)) != NULL) {
    const float *sd = mrlL_tensordata(L, s);
    if (s->numel != n)
      luaL_argerror(L, arg, lua_pushfstring(L, "%d elements expected, got %d",
                                            (int)n, (int)s->numel));
    memmove(dst, sd, n * sizeof(float));
  } else if (lua_type(L, idx) == LUA_TTABLE) {
    int shape[MRLL_MAXDIM];
    int ndim = infershape(L, idx, shape, arg);
    size_t m = checkshape(L, ndim, shape);
    if (m != n)
      luaL_argerror(L, arg, lua_pushfstring(L, "%d elements expected, got %d",
                                            (int)n, (int)m));
    float *buf = mrlL_scratch(L, m), *p = buf;
    lua_pushvalue(L, idx);
    filltable(L, 0, ndim, shape, &p, arg);
    lua_pop(L, 1);
    memcpy(dst, buf, n * sizeof(float));
    lua_pop(L, 1);
  } else {
    mrlL_typeerror(L, arg, "number, table or moonrl.Tensor");
  }
}

static int t_newindex(lua_State *L) {
  mrlL_tensor *t = (mrlL_tensor *)lua_touserdata(L, 1);
  int isint;
  lua_Integer i = lua_tointegerx(L, 2, &isint);
  mrlL_tensordata(L, t);
  if (!isint || lua_type(L, 2) != LUA_TNUMBER)
    return luaL_error(L, "%s fields cannot be assigned (index with an integer)", MRLL_TENSOR);
  if (i < 1 || i > t->shape[0])
    return luaL_error(L, "index %I out of range [1, %d] of %s", i, t->shape[0], MRLL_TENSOR);
  size_t rowlen = t->numel / (size_t)t->shape[0];
  if (t->ndim == 1 && lua_type(L, 3) != LUA_TNUMBER)
    return luaL_error(L, "number expected to assign to a 1-D %s, got %s", MRLL_TENSOR,
                      luaL_typename(L, 3));
  assign(L, 3, t->data + (size_t)(i - 1) * rowlen, rowlen, 3);
  return 0;
}

static void pushtable(lua_State *L, const float **p, int d, const mrlL_tensor *t) {
  lua_createtable(L, t->shape[d], 0);
  for (int i = 1; i <= t->shape[d]; i++) {
    if (d + 1 == t->ndim)
      lua_pushnumber(L, *(*p)++);
    else
      pushtable(L, p, d + 1, t);
    lua_rawseti(L, -2, i);
  }
}

static int t_totable(lua_State *L) {
  mrlL_tensor *t = checkself(L);
  const float *p = t->data;
  luaL_checkstack(L, 2 * t->ndim + 4, "totable");
  pushtable(L, &p, 0, t);
  return 1;
}

static int t_fill(lua_State *L) {
  mrlL_tensor *t = checkself(L);
  float v = (float)luaL_checknumber(L, 2);
  mrl_fill(t->data, t->numel, v);
  lua_settop(L, 1);
  return 1;
}

static int t_copy(lua_State *L) {
  mrlL_tensor *t = checkself(L);
  luaL_checkany(L, 2);
  assign(L, 2, t->data, t->numel, 2);
  lua_settop(L, 1);
  return 1;
}

static int t_view(lua_State *L) {
  mrlL_tensor *t = checkself(L);
  lua_Integer first = luaL_checkinteger(L, 2);
  lua_Integer count = luaL_optinteger(L, 3, t->shape[0] - first + 1);
  if (first < 1 || first > t->shape[0] + 1)
    luaL_argerror(L, 2, lua_pushfstring(L, "row %I out of range [1, %d]", first, t->shape[0]));
  if (count < 0 || first - 1 + count > t->shape[0])
    luaL_argerror(L, 3, lua_pushfstring(L, "count %I out of range [0, %d]", count,
                                        (int)(t->shape[0] - first + 1)));
  int shape[MRLL_MAXDIM];
  memcpy(shape, t->shape, sizeof shape);
  shape[0] = (int)count;
  size_t rowlen = t->shape[0] ? t->numel / (size_t)t->shape[0] : 0;
  pushbase(L, 1, t);
  mrlL_pushview(L, -1, t->owner, t->owner_name, t->data + (size_t)(first - 1) * rowlen,
                t->ndim, shape);
  return 1;
}

static int t_reshape(lua_State *L) {
  mrlL_tensor *t = checkself(L);
  int shape[MRLL_MAXDIM];
  int ndim = shapeargs(L, 2, shape);
  size_t n = checkshape(L, ndim, shape);
  if (n != t->numel)
    return luaL_error(L, "cannot reshape %d elements into %d", (int)t->numel, (int)n);
  pushbase(L, 1, t);
  mrlL_pushview(L, -1, t->owner, t->owner_name, t->data, ndim, shape);
  return 1;
}

static int t_clone(lua_State *L) {
  mrlL_tensor *t = checkself(L);
  mrlL_pushfloats(L, t->data, t->ndim, t->shape);
  return 1;
}

static int t_sum(lua_State *L) {
  mrlL_tensor *t = checkself(L);
  lua_pushnumber(L, mrl_sum(t->data, t->numel));
  return 1;
}

static int t_norm(lua_State *L) {
  mrlL_tensor *t = checkself(L);
  lua_pushnumber(L, mrl_norm2(t->data, t->numel));
  return 1;
}

static int t_tostring(lua_State *L) {
  mrlL_tensor *t = (mrlL_tensor *)mrlL_checkself(L, MRLL_TENSOR);
  pushstr(L, t, t->owner != NULL && *t->owner == NULL ? -1 : 1);
  return 1;
}

static const luaL_Reg methods[] = {
  {"shape", t_shape},     {"dim", t_dim},         {"numel", t_numel},
  {"get", t_get},         {"set", t_set},         {"totable", t_totable},
  {"fill", t_fill},       {"copy", t_copy},       {"view", t_view},
  {"reshape", t_reshape}, {"clone", t_clone},     {"sum", t_sum},
  {"norm", t_norm},       {NULL, NULL}};

static const luaL_Reg metas[] = {
  {"__len", t_len}, {"__newindex", t_newindex}, {"__tostring", t_tostring},
  {NULL, NULL}};

int mrlL_open_tensor(lua_State *L) {
  mrlL_newclass(L, MRLL_TENSOR, methods, metas, t_index);
  lua_pushcfunction(L, l_tensor);
  lua_setfield(L, -2, "tensor");
  lua_pushcfunction(L, l_zeros);
  lua_setfield(L, -2, "zeros");
  return 0;
}
