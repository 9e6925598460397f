/*
** env_worker.c — env worker states (see env_worker.h).
**
** Private states open base, package, table, string, math and also io, os
** and debug, which `moonrl.envs` needs to find and sandbox env files (the
** env scripts themselves run in its restricted environment); package.path
** is the caller's, package.cpath is empty so no C module loads in a worker
** (a trusted env, {trusted = true}, gets the caller's cpath and globals).
** A private state allocates through vl_alloc, which counts its bytes and,
** with a memory cap, refuses what would exceed it: Lua turns that into a
** memory error ("env '<id>' copy <i>: memory cap of N bytes exceeded"),
** never an abort.  The instruction budget is a count hook armed before
** every call of env code (loading included: each call of the file's chunk,
** Env.new, reset and step gets the budget; the whole load of a copy is
** also bounded, by the budget plus VL_LOAD_EXTRA for moonrl's own checks).
** Under LuaJIT env code compiles (vl_openlibs), except in a budgeted state
** (compiled code does not run count hooks) or a capped one (mrlW_open):
** those run with the JIT off.
**
** Every call into a private state is protected (a raise outside a pcall
** would panic the thread): a batch of env calls is one lua_pcall of a C
** function, and its error becomes "env '<id>' copy <i>: <message>".  The
** values an env returns are converted here into the vecenv's rows and
** committed (mrl_vecenv_commit_*), which checks them, counts the episodes
** and applies the time limit.
*/
#include "env_worker.h"

#include <limits.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#ifndef MRL_LUAJIT
int luaopen_moonrl_core(lua_State *L);
#endif

static char vl_budget_key;

/* ------------------------------------------------- internal (see mrlW_make) */

/* The ops of a pool (ud = the vl_pool; destroy frees it). */
static const mrl_env_ops mrlW_ops;

/* A pool of nworkers blocks over n copies, nothing loaded; NULL: no memory. */
static vl_pool *mrlW_pool_new(int n, int nworkers);
/* Closes the states (p->callerL must be set for inline envs), frees all. */
static void mrlW_pool_free(vl_pool *p);
/* Creates worker k's private state with its libraries (path: package.path;
** cpath: the trusted env's, or NULL).  0, or -1 with a message in err. */
static int mrlW_open(vl_pool *p, int k, const char *path, const char *cpath,
                     char *err, size_t errlen);
/* In W (protected, arg 1 a vl_loadargs *): loads worker a->w's copies. */
static int mrlW_load(lua_State *W);
/* In W (protected, arg 1 the vl_worker *): reusable box action tables. */
static int mrlW_make_acts(lua_State *W);
/* An env file's pool: opens each worker state (mrlW_open), loads its copies
** (mrlW_load with args), makes its box action tables.  0, or -1 with the
** message in msg (the caller frees p). */
static int mrlW_pool_load(vl_pool *p, const char *path, const char *cpath,
                          vl_loadargs *args, char *msg, size_t len);

/* ------------------------------------------------------- plain-data copy */

/* Copies the value at idx of `from` onto `to` (numbers, strings, booleans,
** nil and tables of those): how configs and spaces cross between states.
** Returns 0, or -1 with a message in err.  Raises in `to` only on memory
** errors, so `to` must be protected when it is not the caller's state. */
int mrlW_xcopy(lua_State *from, int idx, lua_State *to, int depth,
                    const char *where, char *err, size_t errlen) {
  idx = lua_absindex(from, idx);
  switch (lua_type(from, idx)) {
    case LUA_TNIL: lua_pushnil(to); return 0;
    case LUA_TBOOLEAN: lua_pushboolean(to, lua_toboolean(from, idx)); return 0;
    case LUA_TNUMBER:
      if (lua_isinteger(from, idx)) lua_pushinteger(to, lua_tointeger(from, idx));
      else lua_pushnumber(to, lua_tonumber(from, idx));
      return 0;
    case LUA_TSTRING: {
      size_t len;
      const char *s = lua_tolstring(from, idx, &len);
      lua_pushlstring(to, s, len);
      return 0;
    }
    case LUA_TTABLE: break;
    default:
      snprintf(err, errlen, "%s: a %s cannot be copied into a worker state "
               "(only numbers, strings, booleans and tables)", where,
               lua_typename(from, lua_type(from, idx)));
      return -1;
  }
  if (depth >= VL_MAXDEPTH) {
    snprintf(err, errlen, "%s: tables nested deeper than %d (a cycle?)", where,
             VL_MAXDEPTH);
    return -1;
  }
  /* Absolute indices throughout: from and to may be the same state. */
  lua_newtable(to);
  int tidx = lua_gettop(to);
  lua_pushnil(from);
  while (lua_next(from, idx)) {
    int vidx = lua_gettop(from);
    if (mrlW_xcopy(from, vidx - 1, to, depth + 1, where, err, errlen) != 0 ||
        mrlW_xcopy(from, vidx, to, depth + 1, where, err, errlen) != 0)
      return -1;  /* the caller raises, which discards both stacks' extras */
    lua_rawset(to, tidx);
    lua_pop(from, 1);
  }
  return 0;
}

/* -------------------------------------------------------- worker states */

/* In W (protected, arg 1 the {path, cpath} strings). */
static int vl_openlibs(lua_State *W) {
  /* (not LuaJIT's ffi or bit, nor jit but to start the compiler: nothing
  ** in a worker needs them) */
  static const luaL_Reg libs[] = {
    {"_G", luaopen_base},             {LUA_LOADLIBNAME, luaopen_package},
    {LUA_TABLIBNAME, luaopen_table},  {LUA_STRLIBNAME, luaopen_string},
    {LUA_MATHLIBNAME, luaopen_math},  {LUA_IOLIBNAME, luaopen_io},
    {LUA_OSLIBNAME, luaopen_os},      {LUA_DBLIBNAME, luaopen_debug},
    {NULL, NULL}};
  for (const luaL_Reg *l = libs; l->func; l++) {
#ifdef MRL_LUAJIT
    lua_pushcfunction(W, l->func);
    lua_pushstring(W, l->name);
    lua_call(W, 1, 0);
#else
    luaL_requiref(W, l->name, l->func, 1);
    lua_pop(W, 1);
#endif
  }
#ifdef MRL_LUAJIT
  /* The trace compiler starts only once the jit library is opened (its
  ** parameters and CPU flags are set there): without it a worker state
  ** interprets everything.  Env code is called from C, so each trace ends
  ** by returning to C, and a branch that goes either way at random (an rng
  ** draw at a reset) grows side traces of side traces until the machine
  ** code is full, flushed and compiled again, forever: at most 10 side
  ** traces a root keeps the set small (CartPole-v1 on a worker state: 2.4M
  ** steps/s interpreted, 1.9M with the default 100, 3.7M with 10).  The
  ** library itself is then dropped: env code has no business with it. */
  lua_pushcfunction(W, luaopen_jit);
  lua_pushstring(W, LUA_JITLIBNAME);
  lua_call(W, 1, 0);
  lua_getglobal(W, LUA_JITLIBNAME);
  lua_getfield(W, -1, "opt");
  lua_getfield(W, -1, "start");
  lua_pushliteral(W, "maxside=10");
  lua_call(W, 1, 0);
  lua_pop(W, 2);
  lua_pushnil(W);
  lua_setglobal(W, LUA_JITLIBNAME);
#endif
  const char *const *paths = lua_touserdata(W, 1);  /* path, cpath */
  lua_getglobal(W, "package");
  lua_pushstring(W, paths[0]);
  lua_setfield(W, -2, "path");
  if (paths[1]) lua_pushstring(W, paths[1]);  /* trusted: the caller's */
  else lua_pushliteral(W, "");
  lua_setfield(W, -2, "cpath");
#ifdef MRL_LUAJIT
  lua_getfield(W, -1, "loaded");
  lua_pushnil(W);
  lua_setfield(W, -2, LUA_JITLIBNAME);
  lua_getfield(W, -2, "preload");
  lua_pushnil(W);
  lua_setfield(W, -2, LUA_JITLIBNAME ".util");
  lua_pushnil(W);
  lua_setfield(W, -2, LUA_JITLIBNAME ".profile");
  lua_pop(W, 2);
#else
  /* moonrl.core is the module already linked into this process: a trusted
  ** env that requires it must not load a second copy of the runtime. */
  lua_getfield(W, -1, "preload");
  lua_pushcfunction(W, luaopen_moonrl_core);
  lua_setfield(W, -2, "moonrl.core");
  lua_pop(W, 1);
#endif
  lua_pop(W, 1);
  return 0;
}

/* The allocator of private states: counts bytes, refuses growth beyond the
** pool's cap (Lua raises a memory error).  A shrink never fails, as Lua
** requires.  Only the thread running the state calls it. */
static void *vl_alloc(void *ud, void *ptr, size_t osize, size_t nsize) {
  vl_worker *w = ud;
  size_t old = ptr ? osize : 0;  /* without ptr, osize is a type tag */
  if (nsize == 0) {
    free(ptr);
    w->mem -= old;
    return NULL;
  }
  size_t cap = w->pool->mem_cap;
  if (cap && !w->uncapped && nsize > old &&
      (nsize - old > cap || w->mem + (nsize - old) > cap)) {
    w->mem_hit = 1;
    return NULL;
  }
  void *q = realloc(ptr, nsize);
  if (!q && nsize > old) return NULL;
  w->mem = w->mem - old + nsize;
  return q ? q : ptr;
}

/* Every call into a private state is protected, so this is unreachable;
** Lua aborts after it returns. */
static int vl_panic(lua_State *W) {
  const char *m = lua_tostring(W, -1);
  fprintf(stderr, "moonrl: unprotected error in an env worker state: %s\n", m ? m : "?");
  return 0;
}

/* The message of a failed pcall on top of W, popped into buf. */
void mrlW_errobj(lua_State *W, char *buf, size_t len) {
  const char *m = lua_type(W, -1) == LUA_TSTRING || lua_type(W, -1) == LUA_TNUMBER
                      ? lua_tostring(W, -1)
                      : NULL;
  if (m) snprintf(buf, len, "%s", m);
  else snprintf(buf, len, "(error object is a %s value)", luaL_typename(W, -1));
  lua_pop(W, 1);
}

static void vl_hook(lua_State *L, lua_Debug *ar) {
  (void)ar;
  lua_rawgetp(L, LUA_REGISTRYINDEX, &vl_budget_key);
  lua_Integer n = lua_tointeger(L, -1);
  lua_pop(L, 1);
  /* From now on fire at every instruction: a script that catches this
  ** error with pcall cannot buy itself another budget. */
  lua_sethook(L, vl_hook, LUA_MASKCOUNT, 1);
  /* Level 0 is the env code that ran out (a hook has no frame of its own). */
  lua_Debug where;
  /* lua_error, not luaL_error, which would prefix a second position. */
  if (lua_getstack(L, 0, &where) && lua_getinfo(L, "Sl", &where) &&
      where.currentline > 0)
    lua_pushfstring(L, "%s:%d: instruction budget of %d exceeded", where.short_src,
                    where.currentline, (int)n);  /* n <= INT_MAX */
  else
    lua_pushfstring(L, "instruction budget of %d exceeded", (int)n);
  lua_error(L);
}

/* guard(f, ...) for moonrl.envs in a worker state: pcall(f, ...) with the
** per-call budget; the hook that was set before (the load's overall bound)
** comes back afterwards, its count restarted. */
static int vl_guard(lua_State *W) {
  lua_Hook h = lua_gethook(W);
  int mask = lua_gethookmask(W), count = lua_gethookcount(W);
  lua_rawgetp(W, LUA_REGISTRYINDEX, &vl_budget_key);
  lua_Integer n = lua_tointeger(W, -1);
  lua_pop(W, 1);
  if (n > 0) lua_sethook(W, vl_hook, LUA_MASKCOUNT, (int)n);
  int st = lua_pcall(W, lua_gettop(W) - 1, LUA_MULTRET, 0);
  lua_sethook(W, h, mask, count);
  lua_pushboolean(W, st == LUA_OK);
  lua_insert(W, 1);
  return lua_gettop(W);
}

static void vl_free_dict(vl_pool *p) {
  for (int k = 0; k < p->ndict; k++) free(p->dict_names[k]);
  free(p->dict_names);
  free(p->dict_size);
  p->dict_names = NULL;
  p->dict_size = NULL;
  p->ndict = 0;
}

static int vl_strcmp_ptr(const void *a, const void *b) {
  return strcmp(*(char *const *)a, *(char *const *)b);
}

/* A dict observation space at os ({type = "dict", parts = {name = box}})
** into the pool: the names in byte order (moonrl.spaces' order), each part's
** size; obs_dim their sum. */
static void vl_read_dict(lua_State *W, vl_pool *p, int os) {
  vl_free_dict(p);
  lua_getfield(W, os, "parts");
  int parts = lua_gettop(W);
  if (!lua_istable(W, parts)) luaL_error(W, "observation_space.parts must be a table of boxes");
  int n = 0;
  lua_pushnil(W);
  while (lua_next(W, parts)) {
    if (lua_type(W, -2) != LUA_TSTRING)
      luaL_error(W, "observation_space.parts: names must be strings");
    n++;
    lua_pop(W, 1);
  }
  if (n < 1 || n > 4096) luaL_error(W, "observation_space.parts must hold 1 to 4096 boxes");
  p->dict_names = calloc((size_t)n, sizeof *p->dict_names);
  p->dict_size = calloc((size_t)n, sizeof *p->dict_size);
  if (!p->dict_names || !p->dict_size) luaL_error(W, "out of memory");
  lua_pushnil(W);
  while (lua_next(W, parts) && p->ndict < n) {
    size_t len;
    const char *name = lua_tolstring(W, -2, &len);
    char *copy = malloc(len + 1);
    if (!copy) luaL_error(W, "out of memory");
    memcpy(copy, name, len + 1);
    p->dict_names[p->ndict++] = copy;
    lua_pop(W, 1);
  }
  qsort(p->dict_names, (size_t)p->ndict, sizeof *p->dict_names, vl_strcmp_ptr);
  int64_t total = 0;
  for (int k = 0; k < p->ndict; k++) {
    lua_getfield(W, parts, p->dict_names[k]);
    lua_getfield(W, -1, "type");
    if (!lua_isstring(W, -1) || strcmp(lua_tostring(W, -1), "box") != 0)
      luaL_error(W, "observation_space.parts.%s must be a box", p->dict_names[k]);
    lua_getfield(W, -2, "shape");
    lua_Unsigned rank = lua_istable(W, -1) ? lua_rawlen(W, -1) : 0;
    if (rank < 1 || rank > 8)
      luaL_error(W, "observation_space.parts.%s.shape must be a list of 1 to 8 dimensions",
                 p->dict_names[k]);
    int64_t size = 1;
    for (lua_Unsigned j = 1; j <= rank; j++) {
      lua_rawgeti(W, -1, (lua_Integer)j);
      lua_Integer dj = lua_tointeger(W, -1);
      lua_pop(W, 1);
      if (dj < 1 || (size *= dj) > MRL_MAX_WIDTH)
        luaL_error(W, "observation_space.parts.%s.shape must hold integers >= 1",
                   p->dict_names[k]);
    }
    p->dict_size[k] = (int)size;
    if ((total += size) > MRL_MAX_WIDTH)
      luaL_error(W, "observation_space: more than %d numbers in all", (int)MRL_MAX_WIDTH);
    lua_pop(W, 3);
  }
  lua_settop(W, parts - 1);
  p->obs_dim = (int)total;
}

/* An integer field of the table at idx in [1, MRL_MAX_WIDTH], else an error
** naming it. */
static int vl_width_field(lua_State *W, int idx, const char *key, const char *name) {
  lua_getfield(W, idx, key);
  lua_Integer n = lua_tointeger(W, -1);
  lua_pop(W, 1);
  if (n < 1 || n > MRL_MAX_WIDTH)
    luaL_error(W, "%s must be an integer in [1, %d]", name, (int)MRL_MAX_WIDTH);
  return (int)n;
}

/* A composite action space at as (type multi_discrete, multi_binary or
** hybrid) into p->parts; box parts' bounds into p->bounds when every one is
** bounded (columns of the other parts get their own range). */
static void vl_read_composite(lua_State *W, vl_pool *p, int as, const char *type) {
  int md = strcmp(type, "multi_discrete") == 0, mb = strcmp(type, "multi_binary") == 0;
  int list = 0, np = 1;
  if (!mb) {
    lua_getfield(W, as, md ? "nvec" : "parts");
    list = lua_gettop(W);
    np = lua_istable(W, list) ? (int)lua_rawlen(W, list) : 0;
    if (np < 1 || np > MRL_MAX_WIDTH)
      luaL_error(W, "action_space.%s must be a non-empty list", md ? "nvec" : "parts");
  }
  free(p->parts);
  free(p->bounds);
  p->bounds = NULL;
  if (!(p->parts = calloc((size_t)np, sizeof *p->parts))) luaL_error(W, "out of memory");
  p->nparts = np;
  int64_t width = 0;
  char name[64];
  for (int k = 0; k < np; k++) {
    mrl_action_part *q = &p->parts[k];
    if (mb) {
      q->type = MRL_PART_BERNOULLI;
      q->n = vl_width_field(W, as, "n", "action_space.n");
    } else if (md) {
      lua_rawgeti(W, list, k + 1);
      lua_Integer n = lua_tointeger(W, -1);
      lua_pop(W, 1);
      if (n < 1 || n > MRL_MAX_WIDTH)
        luaL_error(W, "action_space.nvec[%d] must be an integer in [1, %d]", k + 1,
                   (int)MRL_MAX_WIDTH);
      q->type = MRL_PART_CATEGORICAL;
      q->n = (int)n;
    } else {
      lua_rawgeti(W, list, k + 1);
      int part = lua_gettop(W);
      if (!lua_istable(W, part)) luaL_error(W, "action_space.parts[%d] must be a table", k + 1);
      lua_getfield(W, part, "type");
      const char *pt = lua_isstring(W, -1) ? lua_tostring(W, -1) : "";
      snprintf(name, sizeof name, "action_space.parts[%d]", k + 1);
      if (strcmp(pt, "discrete") == 0) {
        q->type = MRL_PART_CATEGORICAL;
        q->n = vl_width_field(W, part, "n", name);
      } else if (strcmp(pt, "box") == 0) {
        lua_getfield(W, part, "shape");
        if (!lua_istable(W, -1) || lua_rawlen(W, -1) != 1)
          luaL_error(W, "%s.shape must be {n} (a 1-D box)", name);
        q->type = MRL_PART_GAUSSIAN;
        lua_rawgeti(W, -1, 1);
        lua_Integer n = lua_tointeger(W, -1);
        lua_pop(W, 2);
        if (n < 1 || n > MRL_MAX_WIDTH)
          luaL_error(W, "%s.shape[1] must be an integer in [1, %d]", name, (int)MRL_MAX_WIDTH);
        q->n = (int)n;
      } else {
        luaL_error(W, "%s.type must be 'discrete' or 'box'", name);
      }
      lua_settop(W, part - 1);
    }
    width += q->type == MRL_PART_CATEGORICAL ? 1 : q->n;
    if (width > MRL_MAX_WIDTH) luaL_error(W, "action_space: more than %d action numbers",
                                          (int)MRL_MAX_WIDTH);
  }
  p->kind = MRL_COMPOSITE;
  p->action_n = p->width = (int)width;
  /* bounds of the box parts (all, or none) */
  if (md || mb) return;
  float *b = malloc(2 * (size_t)width * sizeof(float));
  if (!b) luaL_error(W, "out of memory");
  int col = 0, bounded = 1;
  for (int k = 0; k < np && bounded; k++) {
    const mrl_action_part *q = &p->parts[k];
    if (q->type == MRL_PART_CATEGORICAL) {
      b[col] = 0.0f;
      b[width + col] = (float)(q->n - 1);
      col++;
      continue;
    }
    lua_rawgeti(W, list, k + 1);
    for (int h = 0; h < 2 && bounded; h++) {
      int t = lua_getfield(W, -1, h ? "high" : "low");
      for (int j = 0; j < q->n && bounded; j++) {
        double x = NAN;
        if (t == LUA_TNUMBER) {
          x = lua_tonumber(W, -1);
        } else if (t == LUA_TTABLE) {
          lua_rawgeti(W, -1, j + 1);
          if (lua_isnumber(W, -1)) x = lua_tonumber(W, -1);
          lua_pop(W, 1);
        }
        if (isnan(x) || x < -3.4e38 || x > 3.4e38) bounded = 0;  /* ±inf: unbounded */
        else b[h * width + col + j] = (float)x;
      }
      lua_pop(W, 1);
    }
    lua_pop(W, 1);
    col += q->n;
  }
  if (bounded) p->bounds = b;
  else free(b);
}

/* Reads a box or discrete space at the top of W into the pool (the
** first copy's spaces define the batch). */
/* A box observation space at os: obs_dim the product of its shape (any
** rank: a grid {C, H, W} is read flat, C-major); dtype "uint8" (images of
** 0-255 bytes) is read as x/255, from an array of integers or a string of
** obs_dim bytes. */
static void vl_read_box_obs(lua_State *W, vl_pool *p, int os) {
  lua_getfield(W, os, "shape");
  lua_Unsigned rank = lua_istable(W, -1) ? lua_rawlen(W, -1) : 0;
  if (rank < 1 || rank > 8)
    luaL_error(W, "observation_space.shape must be a list of 1 to 8 dimensions");
  lua_Integer d = 1;
  for (lua_Unsigned k = 1; k <= rank; k++) {
    lua_rawgeti(W, -1, (lua_Integer)k);
    lua_Integer dk = lua_tointeger(W, -1);
    lua_pop(W, 1);
    if (dk < 1 || dk > MRL_MAX_WIDTH || (d *= dk) > MRL_MAX_WIDTH)
      luaL_error(W, "observation_space.shape must hold integers >= 1 whose product is at "
                    "most %d", (int)MRL_MAX_WIDTH);
  }
  p->obs_dim = (int)d;
  lua_getfield(W, os, "dtype");
  p->obs_bytes = lua_isstring(W, -1) && strcmp(lua_tostring(W, -1), "uint8") == 0;
  if (!p->obs_bytes && !lua_isnil(W, -1) &&
      !(lua_isstring(W, -1) && strcmp(lua_tostring(W, -1), "float32") == 0))
    luaL_error(W, "observation_space.dtype must be \"float32\" or \"uint8\"");
  lua_pop(W, 2);
}

static void vl_read_spaces(lua_State *W, vl_pool *p, int env) {
  lua_getfield(W, env, "observation_space");
  int os = lua_gettop(W);
  if (!lua_istable(W, os)) luaL_error(W, "the env has no observation_space table");
  lua_getfield(W, os, "type");
  const char *ot = lua_isstring(W, -1) ? lua_tostring(W, -1) : "";
  p->obs_bytes = 0;
  if (strcmp(ot, "dict") == 0) vl_read_dict(W, p, os);
  else if (strcmp(ot, "box") == 0) vl_read_box_obs(W, p, os);
  else luaL_error(W, "observation_space must be a box or a dict of boxes");
  lua_settop(W, os - 1);

  lua_getfield(W, env, "action_space");
  if (!lua_istable(W, -1)) luaL_error(W, "the env has no action_space table");
  int as = lua_gettop(W);
  lua_getfield(W, as, "type");
  const char *type = lua_isstring(W, -1) ? lua_tostring(W, -1) : "";
  if (strcmp(type, "discrete") == 0) {
    lua_getfield(W, as, "n");
    lua_Integer n = lua_tointeger(W, -1);
    if (n < 1 || n > MRL_MAX_WIDTH)
      luaL_error(W, "action_space.n must be an integer in [1, %d]", (int)MRL_MAX_WIDTH);
    p->kind = MRL_DISCRETE;
    p->action_n = (int)n;
    p->width = 1;
  } else if (strcmp(type, "box") == 0) {
    lua_getfield(W, as, "shape");
    lua_Integer n = 0;
    if (lua_istable(W, -1) && lua_rawlen(W, -1) == 1) {
      lua_rawgeti(W, -1, 1);
      n = lua_tointeger(W, -1);
      lua_pop(W, 1);
    } else if (lua_isinteger(W, -1)) {
      n = lua_tointeger(W, -1);
    }
    if (n < 1 || n > MRL_MAX_WIDTH)
      luaL_error(W, "action_space.shape must be {n} with n in [1, %d]", (int)MRL_MAX_WIDTH);
    p->kind = MRL_BOX;
    p->action_n = p->width = (int)n;
    float *b = malloc(2 * (size_t)n * sizeof(float));
    if (!b) luaL_error(W, "out of memory");
    free(p->bounds);
    p->bounds = b;
    int bounded = 1;
    const char *names[2] = {"low", "high"};
    for (int k = 0; k < 2 && bounded; k++) {
      int t = lua_getfield(W, as, names[k]);
      for (lua_Integer j = 0; j < n && bounded; j++) {
        double x;
        if (t == LUA_TNUMBER) {
          x = lua_tonumber(W, -1);
        } else if (t == LUA_TTABLE) {
          lua_rawgeti(W, -1, j + 1);
          x = lua_isnumber(W, -1) ? lua_tonumber(W, -1) : NAN;
          lua_pop(W, 1);
        } else {
          x = NAN;
        }
        if (isnan(x)) bounded = 0;
        else b[k * n + j] = (float)x;
      }
      lua_pop(W, 1);
    }
    if (!bounded) {
      free(p->bounds);
      p->bounds = NULL;
    }
  } else if (strcmp(type, "multi_discrete") == 0 || strcmp(type, "multi_binary") == 0 ||
             strcmp(type, "hybrid") == 0) {
    vl_read_composite(W, p, as, type);
  } else {
    luaL_error(W, "action_space.type must be 'discrete', 'box', 'multi_discrete', "
                  "'multi_binary' or 'hybrid'");
  }
  lua_settop(W, as - 1);
  /* masks from the env's action_mask(obs, out), for categorical actions */
  p->mask_width = 0;
  int has_mask = lua_getfield(W, env, "action_mask") == LUA_TFUNCTION;
  if (has_mask && !p->no_masks) {
    if (p->kind == MRL_DISCRETE) p->mask_width = p->action_n;
    for (int k = 0; p->kind == MRL_COMPOSITE && k < p->nparts; k++) {
      if (p->parts[k].type != MRL_PART_CATEGORICAL) {
        p->mask_width = 0;
        break;
      }
      p->mask_width += p->parts[k].n;
    }
  }
  lua_pop(W, 1);
}

/* In W (protected): pushes a new env object for `copy`:
** envs.load(source, a fresh copy of the config, opts) in a worker state. */
static void vl_load_copy(lua_State *W, vl_worker *w, int envs_mod, int copy) {
  vl_pool *p = w->pool;
  char err[256];
  lua_getfield(W, envs_mod, "load");
  lua_pushstring(W, p->source);
  if (w->cfg_ref != LUA_NOREF) {
    lua_rawgeti(W, LUA_REGISTRYINDEX, w->cfg_ref);
    if (mrlW_xcopy(W, lua_gettop(W), W, 0, "config", err, sizeof err) != 0)
      luaL_error(W, "%s", err);
    lua_remove(W, -2);
  } else {
    lua_pushnil(W);
  }
  lua_createtable(W, 0, 4);
  if (p->env_path) {
    lua_pushstring(W, p->env_path);
    lua_setfield(W, -2, "env_path");
  }
  /* one smoke test on a throwaway instance is enough for the batch */
  lua_pushboolean(W, copy == 0);
  lua_setfield(W, -2, "probe");
  if (p->trusted) {
    lua_pushboolean(W, 1);
    lua_setfield(W, -2, "trusted");
  }
  if (p->budget > 0) {
    lua_pushcfunction(W, vl_guard);
    lua_setfield(W, -2, "guard");
    lua_Integer n = p->budget + VL_LOAD_EXTRA;
    lua_sethook(W, vl_hook, LUA_MASKCOUNT, n > INT_MAX ? INT_MAX : (int)n);
  }
  lua_call(W, 3, 1);
  lua_sethook(W, NULL, 0, 0);
}

/* In W (protected): the moonrl.envs module of a worker state, pushed; the
** first call also points the string metatable at the sandbox's guarded
** string library (not for trusted envs). */
#ifdef MRL_LUAJIT
/* LuaJIT's pcall nests without the C stack, so a recursion through pcall
** that catches its own errors grows until the Lua stack is full, where the
** count hook cannot run: the budget would never stop it.  Budgeted LuaJIT
** workers get this pcall and xpcall instead (the sandbox copies them from
** the globals): at most VL_PCALL_DEPTH deep, as Lua 5.4's C stack bounds
** the same recursion (a catchable error), and never catching a stack
** overflow. */
enum { VL_PCALL_DEPTH = 200 };

static int vl_pcall_k(lua_State *W, int x) {
  vl_worker *w = lua_touserdata(W, lua_upvalueindex(1));
  int base = x ? 2 : 1;  /* xpcall(f, handler, ...) */
  luaL_checkany(W, 1);
  if (x) {
    luaL_checktype(W, 2, LUA_TFUNCTION);
    lua_pushvalue(W, 1);  /* f above the handler */
    lua_insert(W, 3);
    base = 3;
  }
  if (w->pdepth >= VL_PCALL_DEPTH)
    return luaL_error(W, "pcall nested more than %d deep", VL_PCALL_DEPTH);
  w->pdepth++;
  int st = lua_pcall(W, lua_gettop(W) - base, LUA_MULTRET, x ? 2 : 0);
  w->pdepth--;
  if (st != LUA_OK) {
    const char *m = lua_tostring(W, -1);
    if (st == LUA_ERRERR || (m && strstr(m, "stack overflow"))) return lua_error(W);
    lua_pushboolean(W, 0);
    lua_insert(W, -2);
    return 2;
  }
  lua_pushboolean(W, 1);
  lua_insert(W, base);
  return lua_gettop(W) - base + 1;
}
static int vl_pcall(lua_State *W) { return vl_pcall_k(W, 0); }
static int vl_xpcall(lua_State *W) { return vl_pcall_k(W, 1); }
#endif

static int vl_envs_module(lua_State *W, vl_pool *p) {
  lua_sethook(W, NULL, 0, 0);
#ifdef MRL_LUAJIT
  if (p->budget > 0) {
    /* the state's first load, before the sandbox copies the globals */
    lua_getglobal(W, "pcall");
    int plain = lua_tocfunction(W, -1) != vl_pcall;
    lua_pop(W, 1);
    if (plain) {
      vl_worker *w = NULL;
      for (int k = 0; k < p->nworkers; k++)
        if (p->w[k].L == W) w = &p->w[k];
      lua_pushlightuserdata(W, w);
      lua_pushcclosure(W, vl_pcall, 1);
      lua_setglobal(W, "pcall");
      lua_pushlightuserdata(W, w);
      lua_pushcclosure(W, vl_xpcall, 1);
      lua_setglobal(W, "xpcall");
    }
  }
#endif
  lua_getglobal(W, "require");
  lua_pushliteral(W, "moonrl.envs");
  lua_call(W, 1, 1);
  if (!p->trusted) {
    lua_getfield(W, -1, "harden_state");
    if (lua_isfunction(W, -1)) lua_call(W, 0, 0);
    else lua_pop(W, 1);
  }
  return lua_gettop(W);
}

/* In W (protected): creates the worker's copies and its action tables. */
static int mrlW_load(lua_State *W) {
  vl_loadargs *a = lua_touserdata(W, 1);
  vl_worker *w = a->w;
  vl_pool *p = w->pool;
  int is_inline = W == a->from;
  int src_idx = 2, cfg_idx = is_inline && !lua_isnil(W, 3) ? 3 : 0;
  char err[256];
  int envs_mod = 0;
  if (!is_inline) {
    if (p->budget > 0) {
      lua_pushinteger(W, p->budget);
      lua_rawsetp(W, LUA_REGISTRYINDEX, &vl_budget_key);
    }
    envs_mod = vl_envs_module(W, p);
    if (a->cfg_idx) {
      if (mrlW_xcopy(a->from, a->cfg_idx, W, 0, "config", err, sizeof err) != 0)
        luaL_error(W, "%s", err);
      w->cfg_ref = luaL_ref(W, LUA_REGISTRYINDEX);
    }
  }
  lua_createtable(W, w->count, 0);
  int list = lua_gettop(W);
  for (int k = 0; k < w->count; k++) {
    int copy = w->first + k;
    w->cur = copy;
    if (is_inline) {
      /* A class has its own `new`; an object reaches it through its
      ** metatable, and is used as it is. */
      lua_pushliteral(W, "new");
      lua_rawget(W, src_idx);
      if (lua_isfunction(W, -1)) {
        if (cfg_idx) lua_pushvalue(W, cfg_idx);
        else lua_pushnil(W);
        lua_call(W, 1, 1);
        if (!lua_istable(W, -1)) luaL_error(W, "Env.new must return the env object");
      } else {
        lua_pop(W, 1);
        if (p->n != 1)
          luaL_error(W, "an env object (a table without new) can back only "
                        "num_envs = 1; pass its class to get %d copies", p->n);
        lua_pushvalue(W, src_idx);
      }
    } else {
      vl_load_copy(W, w, envs_mod, copy);
    }
    int env = lua_gettop(W);
    if (copy == 0) {
      vl_read_spaces(W, p, env);
      lua_getfield(W, env, "id");
      const char *id = lua_tostring(W, -1);
      if (id) snprintf(p->name, sizeof p->name, "%s", id);
      lua_pop(W, 1);
      if (a->max_steps < 0) {
        lua_getfield(W, env, "max_episode_steps");
        lua_Integer m = lua_tointeger(W, -1);
        p->max_steps = m > 0 ? (int64_t)m : 0;
        lua_pop(W, 1);
      }
    }
    lua_rawseti(W, list, k + 1);
  }
  w->envs_ref = luaL_ref(W, LUA_REGISTRYINDEX);
  if (!is_inline && w == p->w) {
    /* the file itself, whose modification time reload(true) watches */
    lua_getfield(W, envs_mod, "resolve");
    lua_pushstring(W, p->source);
    lua_createtable(W, 0, 1);
    if (p->env_path) {
      lua_pushstring(W, p->env_path);
      lua_setfield(W, -2, "env_path");
    }
    lua_call(W, 2, 1);
    if (lua_isstring(W, -1)) {
      p->file = strdup(lua_tostring(W, -1));
      if (!p->file) luaL_error(W, "out of memory");
    }
    lua_pop(W, 1);
  }
  return 0;
}

/* In W (protected): the worker's replacement copies for a reload, from the
** file as it is now, into w->new_ref; the first must declare the spaces of
** the running copies. */
int mrlW_reload_load(lua_State *W) {
  vl_worker *w = lua_touserdata(W, 1);
  vl_pool *p = w->pool;
  int envs_mod = vl_envs_module(W, p);
  lua_createtable(W, w->count, 0);
  int list = lua_gettop(W);
  for (int k = 0; k < w->count; k++) {
    w->cur = w->first + k;
    vl_load_copy(W, w, envs_mod, w->first + k);
    if (k == 0) {
      lua_getfield(W, envs_mod, "same_spaces");
      lua_rawgeti(W, LUA_REGISTRYINDEX, w->envs_ref);
      lua_rawgeti(W, -1, 1);
      lua_remove(W, -2);
      lua_pushvalue(W, -3);
      lua_call(W, 2, 2);
      if (!lua_toboolean(W, -2))
        luaL_error(W, "the reloaded env does not fit the running batch: %s",
                   lua_isstring(W, -1) ? lua_tostring(W, -1) : "spaces differ");
      lua_pop(W, 2);
    }
    lua_rawseti(W, list, k + 1);
  }
  w->new_ref = luaL_ref(W, LUA_REGISTRYINDEX);
  return 0;
}

/* At an episode boundary in vl_batch: copy k takes its replacement from the
** last reload, if one waits (list and env are stack indices in W).  Returns
** 1 when it swapped.  Nothing here allocates, so it cannot fail. */
static int vl_swap(lua_State *W, vl_worker *w, int list, int env, int k) {
  if (w->nswap == 0 || !w->swap[k]) return 0;
  lua_rawgeti(W, LUA_REGISTRYINDEX, w->pending_ref);
  lua_rawgeti(W, -1, k + 1);
  lua_copy(W, -1, env);
  lua_rawseti(W, list, k + 1);
  lua_pop(W, 1);
  w->swap[k] = 0;
  if (--w->nswap == 0) {
    luaL_unref(W, LUA_REGISTRYINDEX, w->pending_ref);
    w->pending_ref = LUA_NOREF;
  }
  return 1;
}

/* In W (protected): the reusable action tables for a box env, one per copy
** (an env must not keep the table it is given; it is refilled next step). */
static int mrlW_make_acts(lua_State *W) {
  vl_worker *w = lua_touserdata(W, 1);
  lua_createtable(W, w->count, 0);
  for (int k = 0; k < w->count; k++) {
    lua_createtable(W, w->pool->width, 0);
    for (int j = 1; j <= w->pool->width; j++) {
      lua_pushnumber(W, 0);
      lua_rawseti(W, -2, j);
    }
    lua_rawseti(W, -2, k + 1);
  }
  w->acts_ref = luaL_ref(W, LUA_REGISTRYINDEX);
  return 0;
}

static int mrlW_pool_load(vl_pool *p, const char *path, const char *cpath,
                          vl_loadargs *args, char *msg, size_t len) {
  for (int k = 0; k < p->nworkers; k++) {
    vl_worker *w = &p->w[k];
    if (mrlW_open(p, k, path, cpath, msg, len) != 0) return -1;
    args->w = w;
    w->mem_hit = 0;
    int st = mrlc_cpcall(w->L, mrlW_load, args);
    if (st != LUA_OK) mrlW_fail_msg(w, w->L, msg, len);
    lua_sethook(w->L, NULL, 0, 0);
    if (st != LUA_OK) return -1;
    if (p->kind != MRL_DISCRETE && mrlc_cpcall(w->L, mrlW_make_acts, w) != LUA_OK) {
      lua_pop(w->L, 1);
      snprintf(msg, len, "vecenv: out of memory");
      return -1;
    }
  }
  return 0;
}

/* The pool of mrlW_make, loaded: "" or the message in msg. */
static void vl_load_pool(lua_State *L, int src, int cfg, const mrlW_opts *o, vl_pool *p,
                         char *msg, size_t len) {
  vl_loadargs args = {&p->w[0], L, cfg, o->env_path, o->max_steps};
  msg[0] = '\0';
  if (p->inline_env) {  /* one worker: the caller's own state */
    snprintf(p->name, sizeof p->name, "inline");
    lua_pushcfunction(L, mrlW_load);
    lua_pushlightuserdata(L, &args);
    lua_pushvalue(L, src);
    if (cfg) lua_pushvalue(L, cfg);
    else lua_pushnil(L);
    if (lua_pcall(L, 3, 0, 0) != LUA_OK) mrlW_fail_msg(&p->w[0], L, msg, len);
    else if (p->kind != MRL_DISCRETE && mrlc_cpcall(L, mrlW_make_acts, &p->w[0]) != LUA_OK)
      snprintf(msg, len, "vecenv: out of memory");
    return;
  }
  snprintf(p->name, sizeof p->name, "%s", lua_tostring(L, src));
  p->source = strdup(lua_tostring(L, src));
  p->env_path = o->env_path ? strdup(o->env_path) : NULL;
  if (!p->source || (o->env_path && !p->env_path)) snprintf(msg, len, "vecenv: out of memory");
  else mrlW_pool_load(p, o->path, o->cpath, &args, msg, len);
}

typedef struct vl_spaces_args {
  vl_pool *p;
  lua_State *W;  /* the state holding the loaded envs (L for an inline env) */
  char *msg;
  size_t len;
} vl_spaces_args;

/* In L (protected, arg 1 a vl_spaces_args *): pushes copies of the env's
** observation and action spaces (tables, checked by vl_read_spaces); on a
** failure pushes nothing and leaves the message in a->msg. */
static int vl_copy_spaces(lua_State *L) {
  vl_spaces_args *a = lua_touserdata(L, 1);
  lua_State *W = a->W;
  lua_settop(L, 0);
  for (int k = 0; k < 2; k++) {
    const char *name = k ? "action_space" : "observation_space";
    lua_rawgeti(W, LUA_REGISTRYINDEX, a->p->w[0].envs_ref);
    lua_rawgeti(W, -1, 1);
    lua_getfield(W, -1, name);
    if (mrlW_xcopy(W, -1, L, 0, name, a->msg, a->len) != 0) return 0;
    if (W == L) {
      lua_replace(L, -4);  /* the copy replaces the list; drop env, space */
      lua_pop(L, 2);
    } else {
      lua_pop(W, 3);
    }
  }
  return 2;
}

mrl_vecenv *mrlW_make(lua_State *L, int src, int cfg, const mrlW_opts *o,
                      vl_pool **pool, char *msg, size_t len) {
  int inl = lua_istable(L, src), n = o->num_envs;
  int nthreads = (!inl && o->threads > 0 && n > 1) ? (o->threads < n ? o->threads : n) : 0;
  vl_pool *p = mrlW_pool_new(n, nthreads > 0 ? nthreads : 1);
  mrl_vecenv *v = NULL;
  src = lua_absindex(L, src);
  if (!p) {
    snprintf(msg, len, "vecenv: out of memory");
    return NULL;
  }
  p->inline_env = inl;
  p->no_masks = o->no_masks;
  p->callerL = L;
  p->budget = o->budget;
  p->mem_cap = o->memory;
  p->trusted = o->trusted;
  p->seed_base = o->seed;
  p->max_steps = o->max_steps > 0 ? o->max_steps : 0;
  vl_load_pool(L, src, cfg, o, p, msg, len);
  if (!msg[0]) {
    /* Protected: a memory error raised in L while copying must not leak p. */
    vl_spaces_args a = {p, inl ? L : p->w[0].L, msg, len};
    int top = lua_gettop(L);
    lua_pushcfunction(L, vl_copy_spaces);
    lua_pushlightuserdata(L, &a);
    if (lua_pcall(L, 1, LUA_MULTRET, 0) != LUA_OK) {
      snprintf(msg, len, "vecenv: out of memory");
      lua_settop(L, top);
    }
  }
  if (msg[0]) {
    mrlW_pool_free(p);
    return NULL;
  }
  /* The vecenv runs block k (worker k's copies) on its pool. */
  mrl_env_desc d = {n, p->obs_dim, p->kind, p->action_n, p->bounds,
                    p->bounds ? p->bounds + p->action_n : NULL, p->nworkers, p->max_steps,
                    p->name, p->parts, p->nparts, p->mask_width};
  int st = mrl_vecenv_new(&v, &mrlW_ops, p, &d);  /* owns p, also when it fails */
  if (st != MRL_OK) {
    snprintf(msg, len, "vecenv: %s (obs_dim %d, action_n %d)", mrl_status_string(st),
             d.obs_dim, d.action_n);
    return NULL;
  }
  *pool = p;
  return v;
}

/* ------------------------------------------------------------- batches */

/* A dict observation at idx: each part (a number for a one-number part, or
** an array) at its offset of the row. */
static void vl_read_dict_obs(lua_State *W, vl_pool *p, int idx, float *row,
                             const char *what) {
  if (lua_type(W, idx) != LUA_TTABLE)
    luaL_error(W, "%s returned obs of type %s (expected a table of named parts)", what,
               luaL_typename(W, idx));
  int off = 0;
  for (int k = 0; k < p->ndict; k++) {
    const char *name = p->dict_names[k];
    int n = p->dict_size[k];
    int t = lua_getfield(W, idx, name);
    if (t == LUA_TNUMBER && n == 1) {
      row[off] = (float)lua_tonumber(W, -1);
    } else if (t != LUA_TTABLE) {
      luaL_error(W, "%s returned obs part '%s' of type %s (expected %d numbers)", what, name,
                 lua_typename(W, t), n);
    } else {
      lua_Unsigned len = lua_rawlen(W, -1);
      if (len != (lua_Unsigned)n)
        luaL_error(W, "%s returned obs part '%s' of length %d (expected %d)", what, name,
                   (int)len, n);
      for (int j = 0; j < n; j++) {
        int tj = lua_rawgeti(W, -1, j + 1);
        if (tj != LUA_TNUMBER)
          luaL_error(W, "%s returned obs part '%s'[%d] of type %s (expected a number)", what,
                     name, j + 1, lua_typename(W, tj));
        row[off + j] = (float)lua_tonumber(W, -1);
        lua_pop(W, 1);
      }
    }
    lua_pop(W, 1);
    off += n;
  }
}

/* A uint8 observation: integers 0-255 in an array, or a string of
** obs_dim bytes (an image), each stored as x/255. */
static void vl_read_byte_obs(lua_State *W, vl_pool *p, int idx, float *row,
                             const char *what) {
  const int d = p->obs_dim;
  if (lua_type(W, idx) == LUA_TSTRING) {
    size_t len;
    const unsigned char *b = (const unsigned char *)lua_tolstring(W, idx, &len);
    if (len != (size_t)d)
      luaL_error(W, "%s returned obs as a string of %d bytes (expected %d)", what, (int)len, d);
    for (int j = 0; j < d; j++) row[j] = (float)b[j] * (1.0f / 255.0f);
    return;
  }
  if (lua_type(W, idx) != LUA_TTABLE)
    luaL_error(W, "%s returned obs of type %s (expected %d bytes: a string or an array of "
                  "integers 0-255)", what, luaL_typename(W, idx), d);
  if (lua_rawlen(W, idx) != (lua_Unsigned)d)
    luaL_error(W, "%s returned obs of length %d (expected %d)", what, (int)lua_rawlen(W, idx), d);
  for (int j = 0; j < d; j++) {
    int t = lua_rawgeti(W, idx, j + 1);
    double x = t == LUA_TNUMBER ? (double)lua_tonumber(W, -1) : -1.0;
    if (!(x >= 0.0 && x <= 255.0) || x != floor(x)) {
      if (t == LUA_TNUMBER)
        luaL_error(W, "%s returned obs[%d] = %f (expected an integer 0-255: the space is uint8)",
                   what, j + 1, (double)lua_tonumber(W, -1));
      luaL_error(W, "%s returned obs[%d] of type %s (expected an integer 0-255)", what, j + 1,
                 luaL_typename(W, -1));
    }
    row[j] = (float)x * (1.0f / 255.0f);
    lua_pop(W, 1);
  }
}

static void vl_read_obs(lua_State *W, vl_pool *p, int idx, float *row,
                        const char *what) {
  if (p->ndict) {
    vl_read_dict_obs(W, p, idx, row, what);
    return;
  }
  if (p->obs_bytes) {
    vl_read_byte_obs(W, p, idx, row, what);
    return;
  }
  if (lua_type(W, idx) != LUA_TTABLE)
    luaL_error(W, "%s returned obs of type %s (expected an array of %d numbers)",
               what, luaL_typename(W, idx), p->obs_dim);
  lua_Unsigned len = lua_rawlen(W, idx);
  if (len != (lua_Unsigned)p->obs_dim)
    luaL_error(W, "%s returned obs of length %d (expected %d)", what, (int)len,
               p->obs_dim);
  for (int j = 0; j < p->obs_dim; j++) {
    int t = lua_rawgeti(W, idx, j + 1);
    if (t != LUA_TNUMBER)
      luaL_error(W, "%s returned obs[%d] of type %s (expected a number)", what,
                 j + 1, lua_typename(W, t));
    row[j] = (float)lua_tonumber(W, -1);  /* checked by the vecenv's commit */
    lua_pop(W, 1);
  }
}

static inline void vl_arm(lua_State *W, vl_pool *p) {
  if (p->budget > 0) lua_sethook(W, vl_hook, LUA_MASKCOUNT, (int)p->budget);
}

/* env:action_mask(obs, out) for copy i (obs at index obs, out a reusable
** table) into its mask row, then checked by the vecenv. */
static int vl_read_mask(lua_State *W, vl_worker *w, int env, int obs, int i) {
  vl_pool *p = w->pool;
  const int k = p->mask_width;
  if (w->mask_ref == 0) {
    lua_createtable(W, k, 0);
    w->mask_ref = luaL_ref(W, LUA_REGISTRYINDEX);
  }
  vl_arm(W, p);
  lua_getfield(W, env, "action_mask");
  lua_pushvalue(W, env);
  lua_pushvalue(W, obs);
  lua_rawgeti(W, LUA_REGISTRYINDEX, w->mask_ref);
  lua_call(W, 3, 1);
  if (lua_type(W, -1) != LUA_TTABLE)
    luaL_error(W, "action_mask returned %s (expected an array of %d numbers, 1 = valid)",
               luaL_typename(W, -1), k);
  if (lua_rawlen(W, -1) != (lua_Unsigned)k)
    luaL_error(W, "action_mask returned %d numbers (expected %d, one per action)",
               (int)lua_rawlen(W, -1), k);
  float *row = mrl_vecenv_mask_row(w->v, i);
  for (int j = 0; j < k; j++) {
    int t = lua_rawgeti(W, -1, j + 1);
    if (t == LUA_TBOOLEAN) row[j] = (float)lua_toboolean(W, -1);
    else if (t == LUA_TNUMBER) row[j] = (float)lua_tonumber(W, -1);
    else luaL_error(W, "action_mask returned entry %d of type %s (expected 0 or 1)", j + 1,
                    lua_typename(W, t));
    lua_pop(W, 1);
  }
  lua_pop(W, 1);
  return mrl_vecenv_commit_mask(w->v, i, "action_mask");
}

/* env:reset(seed or nil) on the env at `env`, obs into copy i's row, then
** committed; returns the commit's status.  An env with the optional fast
** path reset_into(seed, obs) fills the reusable table at obs_tab instead of
** returning a new one (same checks on what it wrote). */
static int vl_reset_one(lua_State *W, vl_worker *w, int env, const uint64_t *seed,
                        int i, int obs_tab) {
  vl_pool *p = w->pool;
  float *row = mrl_vecenv_row(w->v, i);
  vl_arm(W, p);  /* before the lookup: an __index function is env code too */
  int fast = lua_getfield(W, env, "reset_into") == LUA_TFUNCTION;
  if (!fast) {
    lua_pop(W, 1);
    lua_getfield(W, env, "reset");
  }
  lua_pushvalue(W, env);
  if (seed) lua_pushinteger(W, (lua_Integer)*seed);
  else lua_pushnil(W);
  int st;
  if (fast) {
    lua_pushvalue(W, obs_tab);
    lua_call(W, 3, 0);
    vl_read_obs(W, p, obs_tab, row, "reset_into");
    st = mrl_vecenv_commit_reset(w->v, i, "reset_into");
    if (st == MRL_OK && p->mask_width) st = vl_read_mask(W, w, env, obs_tab, i);
    return st;
  }
  lua_call(W, 2, 1);
  vl_read_obs(W, p, lua_gettop(W), row, "reset");
  st = mrl_vecenv_commit_reset(w->v, i, "reset");
  if (st == MRL_OK && p->mask_width) st = vl_read_mask(W, w, env, lua_gettop(W), i);
  lua_pop(W, 1);
  return st;
}

/* Copy k's reusable action table filled with a composite action row:
** integers for categorical indices and bernoulli bits, numbers for the
** gaussian parts, in the parts' order (a flat list, as the space says). */
static void vl_push_composite(lua_State *W, const vl_pool *p, int acts, int k,
                              const float *a) {
  lua_rawgeti(W, acts, k + 1);
  int col = 0;
  for (int q = 0; q < p->nparts; q++) {
    const mrl_action_part *part = &p->parts[q];
    int cols = part->type == MRL_PART_CATEGORICAL ? 1 : part->n;
    for (int j = 0; j < cols; j++, col++) {
      if (part->type == MRL_PART_GAUSSIAN) lua_pushnumber(W, (lua_Number)a[col]);
      else lua_pushinteger(W, (lua_Integer)a[col]);
      lua_rawseti(W, -2, col + 1);
    }
  }
}

/* In W (protected): the worker's reusable obs tables, one per copy, each
** obs_dim zeros (an env must not keep the table it is given). */
static void vl_zeros(lua_State *W, int n) {
  lua_createtable(W, n, 0);
  for (int j = 1; j <= n; j++) {
    lua_pushnumber(W, 0);
    lua_rawseti(W, -2, j);
  }
}

static void vl_make_obs_tables(lua_State *W, vl_worker *w) {
  const vl_pool *p = w->pool;
  lua_createtable(W, w->count, 0);
  for (int k = 0; k < w->count; k++) {
    if (p->ndict) {  /* a dict: a table of each part's zeros */
      lua_createtable(W, 0, p->ndict);
      for (int q = 0; q < p->ndict; q++) {
        vl_zeros(W, p->dict_size[q]);
        lua_setfield(W, -2, p->dict_names[q]);
      }
    } else {
      vl_zeros(W, p->obs_dim);
    }
    lua_rawseti(W, -2, k + 1);
  }
  w->obs_ref = luaL_ref(W, LUA_REGISTRYINDEX);
}

/* In W (protected): runs the block's call on the worker's copies; a
** commit's failure ends it with w->st set (the vecenv has the message). */
static int vl_batch(lua_State *W) {
  vl_worker *w = lua_touserdata(W, 1);
  vl_pool *p = w->pool;
  int width = p->width;
  lua_rawgeti(W, LUA_REGISTRYINDEX, w->envs_ref);
  int list = lua_gettop(W);
  int acts = 0;
  if (w->cmd == VL_STEP && p->kind != MRL_DISCRETE) {
    lua_rawgeti(W, LUA_REGISTRYINDEX, w->acts_ref);
    acts = lua_gettop(W);
  }
  if (w->obs_ref == 0) vl_make_obs_tables(W, w);
  lua_rawgeti(W, LUA_REGISTRYINDEX, w->obs_ref);
  int obsl = lua_gettop(W);
  int base = lua_gettop(W);
  for (int k = 0; k < w->count; k++) {
    int i = w->first + k;
    w->cur = i;
    lua_rawgeti(W, list, k + 1);
    int env = base + 1;
    lua_rawgeti(W, obsl, k + 1);  /* base + 2: this copy's obs table */
    int otab = base + 2;
    if (w->cmd == VL_RESET) {
      const uint64_t *sp = w->seeds ? &w->seeds[i] : NULL;
      uint64_t rs = p->seed_base + (uint64_t)i + (uint64_t)p->reloads * 1000003u;
      if (vl_swap(W, w, list, env, k) && !sp) sp = &rs;
      if ((w->st = vl_reset_one(W, w, env, sp, i, otab)) != MRL_OK) return 0;
      lua_settop(W, base);
      continue;
    }
    vl_arm(W, p);
    /* The optional fast path step_into(action, obs) → reward, terminated,
    ** truncated writes the observation into the copy's reusable table:
    ** no obs table (and no info table) is made per step. */
    int fast = lua_getfield(W, env, "step_into") == LUA_TFUNCTION;
    if (!fast) {
      lua_pop(W, 1);
      lua_getfield(W, env, "step");
    }
    lua_pushvalue(W, env);
    const float *a = w->actions + (size_t)i * width;
    if (p->kind == MRL_DISCRETE) {
      lua_pushinteger(W, (lua_Integer)a[0]);
    } else if (p->kind == MRL_BOX) {
      lua_rawgeti(W, acts, k + 1);
      for (int j = 0; j < width; j++) {
        lua_pushnumber(W, (lua_Number)a[j]);
        lua_rawseti(W, -2, j + 1);
      }
    } else {
      vl_push_composite(W, p, acts, k, a);
    }
    const char *what = "step";
    int r;  /* stack index of the obs; reward, terminated, truncated follow */
    if (fast) {
      what = "step_into";
      lua_pushvalue(W, otab);
      lua_call(W, 3, 3);
      lua_pushvalue(W, otab);
      mrlc_rotate1(W, otab + 1);  /* obs (the table), reward, term, trunc */
      r = otab + 1;
    } else {
      lua_call(W, 2, 4);
      r = otab + 1;  /* obs, reward, terminated, truncated */
    }
    vl_read_obs(W, p, r, mrl_vecenv_row(w->v, i), what);
    if (lua_type(W, r + 1) != LUA_TNUMBER)
      luaL_error(W, "%s returned reward of type %s (expected a number; step "
                    "must return obs, reward, terminated, truncated, info)",
                 what, luaL_typename(W, r + 1));
    if (lua_type(W, r + 2) != LUA_TBOOLEAN)
      luaL_error(W, "%s returned terminated of type %s (expected a boolean)",
                 what, luaL_typename(W, r + 2));
    if (lua_type(W, r + 3) != LUA_TBOOLEAN)
      luaL_error(W, "%s returned truncated of type %s (expected a boolean)",
                 what, luaL_typename(W, r + 3));
    int ended;
    w->st = mrl_vecenv_commit_step(w->v, i, what, lua_tonumber(W, r + 1),
                                   lua_toboolean(W, r + 2), lua_toboolean(W, r + 3),
                                   &ended);
    if (w->st != MRL_OK) return 0;
    if (ended) {
      lua_settop(W, otab);
      uint64_t rs = p->seed_base + (uint64_t)i + (uint64_t)p->reloads * 1000003u;
      w->st = vl_reset_one(W, w, env, vl_swap(W, w, list, env, k) ? &rs : NULL, i, otab);
      if (w->st != MRL_OK) return 0;
    } else if (p->mask_width && (w->st = vl_read_mask(W, w, env, r, i)) != MRL_OK) {
      return 0;
    }
    lua_settop(W, base);
  }
  return 0;
}

/* The message of a failed call in worker w's state: names the env and the
** copy, and the memory cap when an allocation was refused. */
void mrlW_fail_msg(vl_worker *w, lua_State *W, char *out, size_t len) {
  vl_pool *p = w->pool;
  char msg[400];
  mrlW_errobj(W, msg, sizeof msg);
  if (w->mem_hit && w->L)
    snprintf(out, len, "env '%s' copy %d: memory cap of %zu bytes exceeded (%s)",
             p->name, w->cur, p->mem_cap, msg);
  else
    snprintf(out, len, "env '%s' copy %d: %s", p->name, w->cur, msg);
}

/* Runs the block's call in worker w's state (or L for an inline env):
** MRL_OK, a commit's status, or MRL_EENV with the message in w->err. */
static int vl_run_worker(vl_worker *w, lua_State *W) {
  w->st = MRL_OK;
  w->mem_hit = 0;
  int st = MRL_OK;
  if (mrlc_cpcall(W, vl_batch, w) != LUA_OK) {
    mrlW_fail_msg(w, W, w->err, sizeof w->err);
    st = MRL_EENV;
  } else {
    st = w->st;
  }
  /* a budget error leaves the hook firing at every instruction */
  if (w->L && w->pool->budget > 0) lua_sethook(W, NULL, 0, 0);
  return st;
}

/* Runs block k's call, on whichever thread the vecenv gives it. */
static int vl_run_block(vl_pool *p, mrl_vecenv *v, int k) {
  vl_worker *w = &p->w[k];
  w->v = v;
  if (!p->inline_env) return vl_run_worker(w, w->L);
  lua_State *L = p->callerL;
  /* The caller's own hook (a REPL's interrupt, a profiler) comes back
  ** after the batch. */
  lua_Hook h = lua_gethook(L);
  int mask = lua_gethookmask(L), count = lua_gethookcount(L);
  if (p->budget > 0) {
    lua_pushinteger(L, p->budget);
    lua_rawsetp(L, LUA_REGISTRYINDEX, &vl_budget_key);
  }
  int st = vl_run_worker(w, L);
  if (p->budget > 0) lua_sethook(L, h, mask, count);
  return st;
}

/* --------------------------------------------------------------- ops */

static int vl_ops_reset(void *ud, mrl_vecenv *v, int block, const uint64_t *seeds) {
  vl_pool *p = ud;
  p->w[block].cmd = VL_RESET;
  p->w[block].seeds = seeds;
  return vl_run_block(p, v, block);
}

static int vl_ops_step(void *ud, mrl_vecenv *v, int block, const float *actions) {
  vl_pool *p = ud;
  p->w[block].cmd = VL_STEP;
  p->w[block].actions = actions;
  return vl_run_block(p, v, block);
}

/* Called by the vecenv for the lowest failing block only, after the join. */
static const char *vl_ops_error(void *ud, int block) {
  vl_pool *p = ud;
  snprintf(p->err, sizeof p->err, "%s", p->w[block].err);
  return p->err;
}

/* Closes the private states, drops the inline env references (p->callerL
** must be set for that), frees everything. */
static void mrlW_pool_free(vl_pool *p) {
  if (!p) return;
  for (int k = 0; p->w && k < p->nworkers; k++) {
    vl_worker *w = &p->w[k];
    free(w->swap);
    if (w->L) {
      lua_close(w->L);
    } else if (p->inline_env && p->callerL) {
      luaL_unref(p->callerL, LUA_REGISTRYINDEX, w->envs_ref);
      luaL_unref(p->callerL, LUA_REGISTRYINDEX, w->acts_ref);
      if (w->obs_ref != 0) luaL_unref(p->callerL, LUA_REGISTRYINDEX, w->obs_ref);
      if (w->mask_ref != 0) luaL_unref(p->callerL, LUA_REGISTRYINDEX, w->mask_ref);
    }
  }
  free(p->w);
  free(p->source);
  free(p->env_path);
  free(p->file);
  free(p->bounds);
  free(p->parts);
  vl_free_dict(p);
  free(p->term_f);
  free(p->trunc_f);
  free(p->act_buf);
  free(p);
}

static void vl_ops_destroy(void *ud) { mrlW_pool_free(ud); }

static const mrl_env_ops mrlW_ops = {vl_ops_reset, vl_ops_step, vl_ops_error,
                                   vl_ops_destroy};


static vl_pool *mrlW_pool_new(int n, int nworkers) {
  vl_pool *p = calloc(1, sizeof *p);
  if (!p) return NULL;
  p->n = n;
  p->nworkers = nworkers;
  p->w = calloc((size_t)nworkers, sizeof *p->w);
  p->term_f = calloc((size_t)n, sizeof(float));
  p->trunc_f = calloc((size_t)n, sizeof(float));
  p->act_buf = calloc((size_t)n, sizeof(float));
  if (!p->w || !p->term_f || !p->trunc_f || !p->act_buf) {
    mrlW_pool_free(p);
    return NULL;
  }
  for (int k = 0; k < nworkers; k++) {
    vl_worker *w = &p->w[k];
    w->pool = p;
    w->first = (int)((int64_t)k * n / nworkers);
    w->count = (int)((int64_t)(k + 1) * n / nworkers) - w->first;
    w->envs_ref = w->acts_ref = LUA_NOREF;
    w->cfg_ref = w->pending_ref = w->new_ref = LUA_NOREF;
  }
  return p;
}

static int mrlW_open(vl_pool *p, int k, const char *path, const char *cpath,
                     char *err, size_t errlen) {
  vl_worker *w = &p->w[k];
  int cap = (int)(p->mem_cap > INT_MAX ? INT_MAX : p->mem_cap);
#ifdef MRL_LUAJIT
  /* LuaJIT 2.1's lua_newstate crashes when an allocation fails half-way:
  ** the cap is checked once the state exists instead. */
  w->uncapped = 1;
#endif
  lua_State *W = w->L = lua_newstate(vl_alloc, w);
  w->uncapped = 0;
  if (W && p->mem_cap && w->mem > p->mem_cap) {
    snprintf(err, errlen, "env '%s': memory cap of %d bytes exceeded while setting "
             "up its worker state (a Lua state takes %zu bytes)", p->name, cap, w->mem);
    return -1;  /* mrlW_pool_free closes it */
  }
  if (!W && w->mem_hit) {
    snprintf(err, errlen, "env '%s': memory cap of %d bytes is too small for a "
             "Lua state", p->name, cap);
    return -1;
  }
  if (!W) {
    snprintf(err, errlen, "vecenv: cannot create a Lua state");
    return -1;
  }
  lua_atpanic(W, vl_panic);
  const char *paths[2] = {path, cpath};
  if (mrlc_cpcall(W, vl_openlibs, (void *)paths) != LUA_OK) {
    char msg[300];
    mrlW_errobj(W, msg, sizeof msg);
    if (w->mem_hit)
      snprintf(err, errlen, "env '%s': memory cap of %d bytes exceeded while "
               "setting up its worker state (%s)", p->name, cap, msg);
    else
      snprintf(err, errlen, "vecenv: cannot set up a worker state: %s", msg);
    return -1;
  }
#ifdef MRL_LUAJIT
  /* Compiled traces run no count hooks: a budget binds only with the JIT
  ** off.  And LuaJIT's compiler does not survive an allocation refused in
  ** the middle of a trace (a crash, with a hog that catches its memory
  ** errors): a capped state runs interpreted too.  (After vl_openlibs,
  ** whose jit library turns the JIT on.) */
  if (p->budget > 0 || p->mem_cap > 0)
    luaJIT_setmode(W, 0, LUAJIT_MODE_ENGINE | LUAJIT_MODE_OFF);
#endif
  return 0;
}

/* ------------------------------------------- shared by both bindings */

const float *mrlW_fast_actions(lua_State *L, int idx, vl_pool *p) {
  if (p->kind != MRL_DISCRETE || lua_type(L, idx) != LUA_TTABLE ||
      lua_rawlen(L, idx) != (size_t)p->n)
    return NULL;
  for (int i = 0; i < p->n; i++) {
    int t = lua_rawgeti(L, idx, i + 1);
    lua_Number k = lua_tonumber(L, -1);
    lua_pop(L, 1);
    /* k in range first, so the int conversion tests integrality */
    if (t != LUA_TNUMBER || !(k >= 0 && k < p->action_n) || k != (lua_Number)(int)k) return NULL;
    p->act_buf[i] = (float)k;
  }
  return p->act_buf;
}

void mrlW_flag_mirrors(vl_pool *p, const mrl_vecenv *v) {
  const uint8_t *te = mrl_vecenv_terminated(v), *tr = mrl_vecenv_truncated(v);
  for (int i = 0; i < p->n; i++) {
    p->term_f[i] = (float)te[i];
    p->trunc_f[i] = (float)tr[i];
  }
}

size_t mrlW_memory(const vl_pool *p) {
  size_t total = 0;
  for (int k = 0; k < p->nworkers; k++)
    if (p->w[k].L) total += p->w[k].mem;
  return total;
}
