/*
** vecenv_lua.c — moonrl.VecEnv: Gymnasium-style Lua envs behind mrl_env_ops,
** stepped in batches on a pool of worker threads; and moonrl.Rollout.
**
** The env contract (checks of rows and rewards, the time limit, episode
** counting, auto-reset and final_obs) and the threads are the runtime's
** (runtime/vecenv.c, runtime/pool.c); this file converts Lua values into
** the vecenv's rows.  Three ways to run the N env copies:
**  - threads = K > 1 (and N > 1): K workers, each owning a private lua_State
**    holding a contiguous block of copies (worker w is the vecenv's block
**    w, copies [w·N/K, (w+1)·N/K)), run at once on the vecenv's pool.
**    (K = min(threads, N); threads = 1 is the same as threads = 0.)
**  - threads = 0 or 1 (or N = 1): one private lua_State with every copy, stepped
**    in the calling thread.
**  - an inline env (source is a table in the caller's state): the copies
**    live in the caller's own state and run there, no private state.
** Env i is always seeded with seed + i, and copies never share state, so a
** trajectory does not depend on which thread or how many threads run it.
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
**
** Hot reload (VecEnv:reload): each worker state loads the file afresh and
** builds replacement copies; if any fails, nothing changes and the message
** is returned.  Otherwise each copy is swapped for its replacement at its
** next episode boundary (an auto-reset, or reset()), and then reset with
** seed + i + reloads·1000003 unless reset() gave seeds.
**
** Every call into a private state is protected (a raise outside a pcall
** would panic the thread): a batch of env calls is one lua_pcall of a C
** function, and its error becomes "env '<id>' copy <i>: <message>".
*/
#include <limits.h>
#include <math.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "l_module.h"
#include "l_tensor.h"
#include "lualib.h"
#include "moonrl.h"
#include "vecenv_lua.h"

#define VL_VECENV "moonrl.VecEnv"
#define VL_ROLLOUT "moonrl.Rollout"

enum { VL_RESET = 1, VL_STEP = 2 };
enum { VL_MAXDEPTH = 16 };

typedef struct vl_pool vl_pool;

typedef struct vl_worker {
  vl_pool *pool;
  lua_State *L;      /* private state; NULL for inline (the caller's) */
  int first, count;  /* env copies [first, first + count) */
  int envs_ref;      /* registry ref: array of the env objects */
  int acts_ref;      /* registry ref: reusable box action tables */
  int obs_ref;       /* registry ref: reusable obs tables for step_into and
                     ** reset_into, made on first use (0: not yet) */
  int cur;           /* copy being run, for the error message */
  /* the call being run on this block */
  int cmd;           /* VL_RESET or VL_STEP */
  mrl_vecenv *v;
  const uint64_t *seeds;
  const float *actions;
  int st;            /* a commit's status (the vecenv has the message) */
  /* memory of the private state (vl_alloc) */
  size_t mem;
  int mem_hit;       /* an allocation was refused since the flag was cleared */
  int cfg_ref;       /* registry ref: the config as given (copied per copy) */
  int pending_ref;   /* registry ref: replacement copies of the last reload */
  int new_ref;       /* a reload in progress */
  uint8_t *swap;     /* [count] 1 = swap at the next episode boundary */
  int nswap;
  char err[560];
} vl_worker;

struct vl_pool {
  int n, obs_dim, action_n, width;
  mrl_action_kind kind;
  int inline_env;
  int nworkers;            /* lua_States = the vecenv's blocks */
  int64_t max_steps;       /* time limit per episode, 0 = none (the vecenv's) */
  lua_Integer budget;      /* instructions per env call, 0 = none */
  size_t mem_cap;          /* bytes per private state, 0 = none */
  int trusted;             /* no sandbox: the host's globals and cpath */
  char *source;            /* env id or path (file envs) */
  char *env_path;          /* nullable */
  char *file;              /* the resolved file, for reload */
  int64_t file_mtime, file_size;
  uint64_t seed_base;      /* the make seed: reloaded copies reset from it */
  int reloads;
  vl_worker *w;
  float *bounds;           /* [2][action_n] box bounds, or NULL */
  float *term_f, *trunc_f; /* [n] float mirrors of the flags for Lua views */
  float *act_buf;          /* [n] discrete actions read from a Lua array */
  lua_State *callerL;      /* inline mode: the state of the current call */
  char name[96];           /* env id for messages */
  char err[600];
};

static char vl_budget_key;

/* Instructions a load may spend outside env calls (moonrl's own checks). */
enum { VL_LOAD_EXTRA = 1000000 };

/* ------------------------------------------------------- plain-data copy */

/* Copies the value at idx of `from` onto `to` (numbers, strings, booleans,
** nil and tables of those): how configs and spaces cross between states.
** Returns 0, or -1 with a message in err.  Raises in `to` only on memory
** errors, so `to` must be protected when it is not the caller's state. */
static int vl_xcopy(lua_State *from, int idx, lua_State *to, int depth,
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
    if (vl_xcopy(from, vidx - 1, to, depth + 1, where, err, errlen) != 0 ||
        vl_xcopy(from, vidx, to, depth + 1, where, err, errlen) != 0)
      return -1;  /* the caller raises, which discards both stacks' extras */
    lua_rawset(to, tidx);
    lua_pop(from, 1);
  }
  return 0;
}

/* -------------------------------------------------------- worker states */

static int vl_openlibs(lua_State *W) {
  static const luaL_Reg libs[] = {
    {LUA_GNAME, luaopen_base},        {LUA_LOADLIBNAME, luaopen_package},
    {LUA_TABLIBNAME, luaopen_table},  {LUA_STRLIBNAME, luaopen_string},
    {LUA_MATHLIBNAME, luaopen_math},  {LUA_IOLIBNAME, luaopen_io},
    {LUA_OSLIBNAME, luaopen_os},      {LUA_DBLIBNAME, luaopen_debug},
    {NULL, NULL}};
  for (const luaL_Reg *l = libs; l->func; l++) {
    luaL_requiref(W, l->name, l->func, 1);
    lua_pop(W, 1);
  }
  lua_getglobal(W, "package");
  lua_pushvalue(W, 1);
  lua_setfield(W, -2, "path");
  if (lua_isstring(W, 2)) lua_pushvalue(W, 2);  /* trusted: the caller's */
  else lua_pushliteral(W, "");
  lua_setfield(W, -2, "cpath");
  /* moonrl.core is the module already linked into this process: a trusted
  ** env that requires it must not load a second copy of the runtime. */
  lua_getfield(W, -1, "preload");
  lua_pushcfunction(W, luaopen_moonrl_core);
  lua_setfield(W, -2, "moonrl.core");
  lua_pop(W, 2);
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
  if (cap && nsize > old && (nsize - old > cap || w->mem + (nsize - old) > cap)) {
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
static void vl_errobj(lua_State *W, char *buf, size_t len) {
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
    lua_pushfstring(L, "%s:%d: instruction budget of %I exceeded", where.short_src,
                    where.currentline, (LUAI_UACINT)n);
  else
    lua_pushfstring(L, "instruction budget of %I exceeded", (LUAI_UACINT)n);
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

/* Reads a 1-D box or discrete space at the top of W into the pool (the
** first copy's spaces define the batch). */
static void vl_read_spaces(lua_State *W, vl_pool *p, int env) {
  lua_getfield(W, env, "observation_space");
  if (!lua_istable(W, -1)) luaL_error(W, "the env has no observation_space table");
  lua_getfield(W, -1, "type");
  if (!lua_isstring(W, -1) || strcmp(lua_tostring(W, -1), "box") != 0)
    luaL_error(W, "observation_space must be a box");
  lua_getfield(W, -2, "shape");
  if (!lua_istable(W, -1) || lua_rawlen(W, -1) != 1)
    luaL_error(W, "observation_space.shape must be {dim}");
  lua_rawgeti(W, -1, 1);
  lua_Integer d = lua_tointeger(W, -1);
  if (d < 1 || d > MRL_MAX_WIDTH)
    luaL_error(W, "observation_space.shape[1] must be an integer in [1, %d]",
               (int)MRL_MAX_WIDTH);
  p->obs_dim = (int)d;
  lua_pop(W, 4);

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
  } else {
    luaL_error(W, "action_space.type must be 'discrete' or 'box'");
  }
  lua_settop(W, as - 1);
}

/* Arguments of vl_load, passed as a light userdata. */
typedef struct vl_loadargs {
  vl_worker *w;
  lua_State *from;       /* the caller's state */
  int cfg_idx;           /* config in `from` (0: none); inline envs get
                         ** source and config as arguments 2 and 3 */
  const char *env_path;  /* nullable */
  lua_Integer max_steps; /* -1: take the env's max_episode_steps */
} vl_loadargs;

/* In W (protected): pushes a new env object for `copy`:
** envs.load(source, a fresh copy of the config, opts) in a worker state. */
static void vl_load_copy(lua_State *W, vl_worker *w, int envs_mod, int copy) {
  vl_pool *p = w->pool;
  char err[256];
  lua_getfield(W, envs_mod, "load");
  lua_pushstring(W, p->source);
  if (w->cfg_ref != LUA_NOREF) {
    lua_rawgeti(W, LUA_REGISTRYINDEX, w->cfg_ref);
    if (vl_xcopy(W, lua_gettop(W), W, 0, "config", err, sizeof err) != 0)
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
static int vl_envs_module(lua_State *W, vl_pool *p) {
  lua_sethook(W, NULL, 0, 0);
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
static int vl_load(lua_State *W) {
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
      if (vl_xcopy(a->from, a->cfg_idx, W, 0, "config", err, sizeof err) != 0)
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
static int vl_reload_load(lua_State *W) {
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
static int vl_make_acts(lua_State *W) {
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

/* ------------------------------------------------------------- batches */

static void vl_read_obs(lua_State *W, vl_pool *p, int idx, float *row,
                        const char *what) {
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
  if (fast) {
    lua_pushvalue(W, obs_tab);
    lua_call(W, 3, 0);
    vl_read_obs(W, p, obs_tab, row, "reset_into");
    return mrl_vecenv_commit_reset(w->v, i, "reset_into");
  }
  lua_call(W, 2, 1);
  vl_read_obs(W, p, lua_gettop(W), row, "reset");
  lua_pop(W, 1);
  return mrl_vecenv_commit_reset(w->v, i, "reset");
}

/* In W (protected): the worker's reusable obs tables, one per copy, each
** obs_dim zeros (an env must not keep the table it is given). */
static void vl_make_obs_tables(lua_State *W, vl_worker *w) {
  lua_createtable(W, w->count, 0);
  for (int k = 0; k < w->count; k++) {
    lua_createtable(W, w->pool->obs_dim, 0);
    for (int j = 1; j <= w->pool->obs_dim; j++) {
      lua_pushnumber(W, 0);
      lua_rawseti(W, -2, j);
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
  if (w->cmd == VL_STEP && p->kind == MRL_BOX) {
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
    } else {
      lua_rawgeti(W, acts, k + 1);
      for (int j = 0; j < width; j++) {
        lua_pushnumber(W, (lua_Number)a[j]);
        lua_rawseti(W, -2, j + 1);
      }
    }
    const char *what = "step";
    int r;  /* stack index of the obs; reward, terminated, truncated follow */
    if (fast) {
      what = "step_into";
      lua_pushvalue(W, otab);
      lua_call(W, 3, 3);
      lua_pushvalue(W, otab);
      lua_rotate(W, otab + 1, 1);  /* obs (the table), reward, term, trunc */
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
    }
    lua_settop(W, base);
  }
  return 0;
}

/* The message of a failed call in worker w's state: names the env and the
** copy, and the memory cap when an allocation was refused. */
static void vl_fail_msg(vl_worker *w, lua_State *W, char *out, size_t len) {
  vl_pool *p = w->pool;
  char msg[400];
  vl_errobj(W, msg, sizeof msg);
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
  lua_pushcfunction(W, vl_batch);
  lua_pushlightuserdata(W, w);
  if (lua_pcall(W, 1, 0, 0) != LUA_OK) {
    vl_fail_msg(w, W, w->err, sizeof w->err);
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
static void vl_pool_free(vl_pool *p) {
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
    }
  }
  free(p->w);
  free(p->source);
  free(p->env_path);
  free(p->file);
  free(p->bounds);
  free(p->term_f);
  free(p->trunc_f);
  free(p->act_buf);
  free(p);
}

static void vl_ops_destroy(void *ud) { vl_pool_free(ud); }

static const mrl_env_ops vl_ops = {vl_ops_reset, vl_ops_step, vl_ops_error,
                                   vl_ops_destroy};

/* ------------------------------------------------------------ VecEnv */

typedef struct vl_box {
  mrl_vecenv *v;     /* NULL when closed: the slot views check */
  vl_pool *pool;     /* owned by v; before v exists, owned here (pending) */
  vl_pool *pending;
  uint64_t seed;
  int64_t resets;
  int has_reset;
} vl_box;

/* User values of a VecEnv: the spaces, then the views step() returns,
** made once (they are live views of the engine's buffers, so the same
** objects serve every step and stepping allocates nothing). */
enum { VL_UV_OSPACE = 1, VL_UV_ASPACE, VL_UV_OBS, VL_UV_REW, VL_UV_TERM,
       VL_UV_TRUNC, VL_UV_FINAL, VL_NUV = VL_UV_FINAL };

static vl_box *vl_checkvec(lua_State *L) {
  vl_box *b = mrlL_checkself(L, VL_VECENV);
  if (!b->v) luaL_error(L, "attempt to use a closed " VL_VECENV);
  b->pool->callerL = L;
  return b;
}

static int vl_close_box(lua_State *L, vl_box *b) {
  if (b->pending) {
    b->pending->callerL = L;
    vl_pool_free(b->pending);
    b->pending = NULL;
  }
  if (b->v) {
    b->pool->callerL = L;
    mrl_vecenv_free(b->v);
    b->v = NULL;
    b->pool = NULL;
  }
  return 0;
}

static int vl_gc(lua_State *L) {
  vl_box *b = lua_touserdata(L, 1);
  return vl_close_box(L, b);
}

static int vl_close(lua_State *L) {
  vl_box *b = mrlL_checkself(L, VL_VECENV);
  return vl_close_box(L, b);
}

/* Raises the engine's message: an env failure is reported as the env said
** it ("env 'X' copy i: …"), anything else with the vecenv's prefix. */
static int vl_raise(lua_State *L, vl_box *b, int st, const char *what) {
  if (st == MRL_EENV) return luaL_error(L, "%s", b->pool->err);
  (void)what;  /* the vecenv's message already names the call */
  return luaL_error(L, "%s", mrl_vecenv_error(b->v));
}

static void vl_make_views(lua_State *L, vl_box *b, int self);

/* The float views of the vecenv's flags (a Lua tensor is float) follow the
** last step. */
static void vl_flag_views(vl_box *b) {
  const uint8_t *te = mrl_vecenv_terminated(b->v), *tr = mrl_vecenv_truncated(b->v);
  for (int i = 0; i < b->pool->n; i++) {
    b->pool->term_f[i] = (float)te[i];
    b->pool->trunc_f[i] = (float)tr[i];
  }
}

static int vl_new(lua_State *L) {
  luaL_checktype(L, 1, LUA_TTABLE);
  lua_settop(L, 1);
  lua_getfield(L, 1, "source");  /* 2 */
  int inline_env = lua_istable(L, 2);
  if (!inline_env && !lua_isstring(L, 2))
    return luaL_error(L, "vecenv: field 'source' must be an env id, a path to "
                         "an env .lua file, or an env table");
  lua_getfield(L, 1, "config");  /* 3 */
  if (!lua_isnil(L, 3) && !lua_istable(L, 3))
    return luaL_error(L, "vecenv: field 'config' must be a table");
  int n = (int)mrlL_optintfield(L, 1, "num_envs", 1, 1, 65536);
  int threads = (int)mrlL_optintfield(L, 1, "threads", 0, 0, 256);
  lua_Integer seed = mrlL_optintfield(L, 1, "seed", 0, LUA_MININTEGER, LUA_MAXINTEGER);
  lua_Integer budget = mrlL_optintfield(L, 1, "budget", 0, 0, INT_MAX);
  lua_Integer memory = mrlL_optintfield(L, 1, "memory", 0, 0, LUA_MAXINTEGER);
  lua_getfield(L, 1, "trusted");
  int trusted = lua_toboolean(L, -1);
  lua_pop(L, 1);
  lua_getfield(L, 1, "max_episode_steps");  /* 4 */
  lua_Integer max_steps = -1;               /* the env's own */
  if (lua_isboolean(L, 4) && !lua_toboolean(L, 4)) max_steps = 0;
  else if (!lua_isnil(L, 4)) max_steps = mrlL_optintfield(L, 1, "max_episode_steps", 0, 0, LUA_MAXINTEGER);
  lua_getfield(L, 1, "env_path");           /* 5 */
  if (!lua_isnil(L, 5) && !lua_isstring(L, 5))
    return luaL_error(L, "vecenv: field 'env_path' must be a string");
  const char *env_path = lua_tostring(L, 5);
  lua_getglobal(L, "package");              /* 6 */
  lua_getfield(L, 6, "path");               /* 7 */
  const char *path = lua_isstring(L, 7) ? lua_tostring(L, 7) : "./?.lua";
  if (inline_env) threads = 0;
  if (inline_env && memory > 0)
    return luaL_error(L, "vecenv: a memory cap needs an env file (an inline env "
                         "runs in the caller's own Lua state)");
  lua_getglobal(L, "package");              /* 8: the caller's cpath */
  lua_getfield(L, -1, "cpath");
  lua_replace(L, -2);
  const char *cpath = trusted && lua_isstring(L, -1) ? lua_tostring(L, -1) : NULL;

  vl_box *b = lua_newuserdatauv(L, sizeof *b, VL_NUV);  /* 9 */
  memset(b, 0, sizeof *b);
  luaL_setmetatable(L, VL_VECENV);
  int ud = lua_gettop(L);
  b->seed = (uint64_t)seed;

  vl_pool *p = calloc(1, sizeof *p);
  if (!p) return luaL_error(L, "vecenv: out of memory");
  b->pending = p;  /* from here an error leaves p to __gc */
  p->n = n;
  p->inline_env = inline_env;
  p->budget = budget;
  p->mem_cap = (size_t)memory;
  p->trusted = trusted;
  p->seed_base = (uint64_t)seed;
  if (!inline_env) {
    p->source = strdup(lua_tostring(L, 2));
    p->env_path = env_path ? strdup(env_path) : NULL;
    if (!p->source || (env_path && !p->env_path)) return luaL_error(L, "vecenv: out of memory");
  }
  p->max_steps = max_steps > 0 ? (int64_t)max_steps : 0;
  p->callerL = L;
  snprintf(p->name, sizeof p->name, "%s", inline_env ? "inline" : lua_tostring(L, 2));
  int nthreads = (threads > 0 && n > 1) ? (threads < n ? threads : n) : 0;
  p->nworkers = nthreads > 0 ? nthreads : 1;
  p->w = calloc((size_t)p->nworkers, sizeof *p->w);
  p->term_f = calloc((size_t)n, sizeof(float));
  p->trunc_f = calloc((size_t)n, sizeof(float));
  p->act_buf = calloc((size_t)n, sizeof(float));
  if (!p->w || !p->term_f || !p->trunc_f || !p->act_buf)
    return luaL_error(L, "vecenv: out of memory");
  for (int k = 0; k < p->nworkers; k++) {
    vl_worker *w = &p->w[k];
    w->pool = p;
    w->first = (int)((int64_t)k * n / p->nworkers);
    w->count = (int)((int64_t)(k + 1) * n / p->nworkers) - w->first;
    w->envs_ref = w->acts_ref = LUA_NOREF;
    w->cfg_ref = w->pending_ref = w->new_ref = LUA_NOREF;
  }

  vl_loadargs args = {NULL, L, lua_istable(L, 3) ? 3 : 0, env_path, max_steps};
  for (int k = 0; k < p->nworkers; k++) {
    vl_worker *w = &p->w[k];
    lua_State *W = L;
    if (!inline_env) {
      W = w->L = lua_newstate(vl_alloc, w);
      if (!W && w->mem_hit)
        return luaL_error(L, "env '%s': memory cap of %d bytes is too small for a "
                             "Lua state", p->name,
                          (int)(p->mem_cap > INT_MAX ? INT_MAX : p->mem_cap));
      if (!W) return luaL_error(L, "vecenv: cannot create a Lua state");
      lua_atpanic(W, vl_panic);
      lua_pushcfunction(W, vl_openlibs);
      lua_pushstring(W, path);
      if (cpath) lua_pushstring(W, cpath);
      else lua_pushnil(W);
      if (lua_pcall(W, 2, 0, 0) != LUA_OK) {
        char msg[300];
        vl_errobj(W, msg, sizeof msg);
        if (w->mem_hit)
          return luaL_error(L, "env '%s': memory cap of %d bytes exceeded while "
                               "setting up its worker state (%s)", p->name,
                            (int)(p->mem_cap > INT_MAX ? INT_MAX : p->mem_cap), msg);
        return luaL_error(L, "vecenv: cannot set up a worker state: %s", msg);
      }
    }
    args.w = w;
    if (inline_env) {
      lua_pushcfunction(W, vl_load);
    } else {
      lua_pushstring(W, lua_tostring(L, 2));
      lua_pushcclosure(W, vl_load, 1);
    }
    lua_pushlightuserdata(W, &args);
    int nargs = 1;
    if (inline_env) {
      lua_pushvalue(L, 2);
      lua_pushvalue(L, 3);
      nargs = 3;
    }
    w->mem_hit = 0;
    if (lua_pcall(W, nargs, 0, 0) != LUA_OK) {
      char msg[600];
      vl_fail_msg(w, W, msg, sizeof msg);
      if (W != L) lua_sethook(W, NULL, 0, 0);
      return luaL_error(L, "%s", msg);
    }
  }
  if (p->file) {
    /* what reload(true) compares with */
    struct stat sb;
    if (stat(p->file, &sb) == 0) {
      p->file_mtime = (int64_t)sb.st_mtim.tv_sec * 1000000000 + sb.st_mtim.tv_nsec;
      p->file_size = (int64_t)sb.st_size;
    }
  }
  if (p->kind == MRL_BOX) {
    for (int k = 0; k < p->nworkers; k++) {
      lua_State *W = p->w[k].L ? p->w[k].L : L;
      lua_pushcfunction(W, vl_make_acts);
      lua_pushlightuserdata(W, &p->w[k]);
      if (lua_pcall(W, 1, 0, 0) != LUA_OK) {
        lua_pop(W, 1);
        return luaL_error(L, "vecenv: out of memory");
      }
    }
  }
  /* The spaces, copied into the caller's state for action_space() etc. */
  {
    vl_worker *w0 = &p->w[0];
    lua_State *W = w0->L ? w0->L : L;
    char err[200];
    const char *names[2] = {"observation_space", "action_space"};
    for (int k = 0; k < 2; k++) {
      lua_rawgeti(W, LUA_REGISTRYINDEX, w0->envs_ref);
      lua_rawgeti(W, -1, 1);
      lua_getfield(W, -1, names[k]);  /* tables, checked by vl_read_spaces */
      if (vl_xcopy(W, -1, L, 0, names[k], err, sizeof err) != 0)
        return luaL_error(L, "vecenv: %s", err);
      if (W == L) {
        lua_replace(L, -4);  /* the copy replaces the list; drop env, space */
        lua_pop(L, 2);
      } else {
        lua_pop(W, 3);
      }
      lua_setiuservalue(L, ud, VL_UV_OSPACE + k);
    }
  }
  /* The vecenv runs block k (worker k's copies) on its pool. */
  mrl_env_desc desc = {n, p->obs_dim, p->kind, p->action_n,
                       p->bounds, p->bounds ? p->bounds + p->action_n : NULL,
                       p->nworkers, p->max_steps, p->name};
  b->pending = NULL;  /* mrl_vecenv_new owns p now, even when it fails */
  int st = mrl_vecenv_new(&b->v, &vl_ops, p, &desc);
  if (st != MRL_OK)
    return luaL_error(L, "vecenv: %s (obs_dim %d, action_n %d)",
                      mrl_status_string(st), desc.obs_dim, desc.action_n);
  b->pool = p;
  vl_make_views(L, b, ud);
  lua_settop(L, ud);
  return 1;
}

static void vl_make_views(lua_State *L, vl_box *b, int self) {
  const mrl_env_desc *d = mrl_vecenv_desc(b->v);
  int shape[2] = {d->num_envs, d->obs_dim};
  void *const *slot = (void *const *)&b->v;
  float *bufs[5] = {(float *)mrl_vecenv_obs(b->v), (float *)mrl_vecenv_rewards(b->v),
                    b->pool->term_f, b->pool->trunc_f,
                    (float *)mrl_vecenv_final_obs(b->v)};
  for (int k = 0; k < 5; k++) {
    int ndim = (k == 0 || k == 4) ? 2 : 1;
    mrlL_pushview(L, self, slot, VL_VECENV, bufs[k], ndim, shape);
    lua_setiuservalue(L, self, VL_UV_OBS + k);
  }
}

/* An inline env's code runs in the caller's state in the middle of reset,
** step and collect: while it runs, the handles those calls use (the
** VecEnv's, and in collect the rollout's, policy's and value net's) read
** as closed to it, so a callback that closes or uses them gets an error
** or a no-op instead of freeing memory under the call.  Each box keeps its
** handle as its first field (l_util.h). */
typedef struct vl_hidden {
  void **slot[4];
  void *h[4];
  int n;
} vl_hidden;

static void vl_hide(vl_hidden *hd, void *box) {
  void **slot = box;
  hd->slot[hd->n] = slot;
  hd->h[hd->n++] = *slot;
  *slot = NULL;
}

static void vl_unhide(vl_hidden *hd) {
  while (hd->n > 0) {
    hd->n--;
    *hd->slot[hd->n] = hd->h[hd->n];
  }
}

/* Pushes the cached views from user value first to last. */
static void vl_push_views(lua_State *L, int self, int first, int last) {
  for (int k = first; k <= last; k++) lua_getiuservalue(L, self, k);
}

static int vl_reset(lua_State *L) {
  vl_box *b = vl_checkvec(L);
  uint64_t seed;
  if (lua_isnoneornil(L, 2)) {
    /* Fresh but reproducible episodes on every seedless reset. */
    seed = b->seed + (uint64_t)b->resets * (uint64_t)b->pool->n;
  } else {
    seed = (uint64_t)luaL_checkinteger(L, 2);
  }
  mrl_vecenv *v = b->v;
  vl_hidden hd = {0};
  if (b->pool->inline_env) vl_hide(&hd, b);
  int st = mrl_vecenv_reset(v, seed);
  vl_unhide(&hd);
  if (st != MRL_OK) return vl_raise(L, b, st, "reset");
  b->resets++;
  b->has_reset = 1;
  memset(b->pool->term_f, 0, (size_t)b->pool->n * sizeof(float));
  memset(b->pool->trunc_f, 0, (size_t)b->pool->n * sizeof(float));
  vl_push_views(L, 1, VL_UV_OBS, VL_UV_OBS);
  return 1;
}

/* The common case of a Lua array of N discrete actions, read into the
** pool's own buffer without a temporary; NULL for anything else (a tensor,
** a box action, a bad value), which mrlL_checkactions handles and
** reports. */
static const float *vl_fast_actions(lua_State *L, vl_pool *p) {
  if (p->kind != MRL_DISCRETE || lua_type(L, 2) != LUA_TTABLE ||
      lua_rawlen(L, 2) != (lua_Unsigned)p->n)
    return NULL;
  for (int i = 0; i < p->n; i++) {
    int isint;
    lua_rawgeti(L, 2, i + 1);
    lua_Integer k = lua_tointegerx(L, -1, &isint);
    lua_pop(L, 1);
    if (!isint || k < 0 || k >= p->action_n) return NULL;
    p->act_buf[i] = (float)k;
  }
  return p->act_buf;
}

static int vl_step(lua_State *L) {
  vl_box *b = vl_checkvec(L);
  if (!b->has_reset) return luaL_error(L, "step: call reset() first");
  vl_pool *p = b->pool;
  const float *a = vl_fast_actions(L, p);
  if (!a) a = mrlL_checkactions(L, 2, p->kind, p->action_n, p->n);
  mrl_vecenv *v = b->v;
  vl_hidden hd = {0};
  if (p->inline_env) vl_hide(&hd, b);
  int st = mrl_vecenv_step(v, a);
  vl_unhide(&hd);
  if (st != MRL_OK) return vl_raise(L, b, st, "step");
  vl_flag_views(b);
  vl_push_views(L, 1, VL_UV_OBS, VL_UV_TRUNC);
  return 4;
}

static int vl_final_obs(lua_State *L) {
  vl_checkvec(L);
  vl_push_views(L, 1, VL_UV_FINAL, VL_UV_FINAL);
  return 1;
}

static int vl_episodes(lua_State *L) {
  vl_box *b = vl_checkvec(L);
  double ret[64];
  int64_t len[64];
  int k, total = 0;
  lua_newtable(L);
  while ((k = mrl_vecenv_drain_episodes(b->v, ret, len, 64)) > 0) {
    for (int j = 0; j < k; j++) {
      lua_createtable(L, 0, 2);
      lua_pushnumber(L, ret[j]);
      lua_setfield(L, -2, "return");
      lua_pushinteger(L, (lua_Integer)len[j]);
      lua_setfield(L, -2, "length");
      lua_rawseti(L, -2, ++total);
    }
  }
  return 1;
}

static int vl_total_steps(lua_State *L) {
  vl_box *b = vl_checkvec(L);
  lua_pushinteger(L, (lua_Integer)mrl_vecenv_total_steps(b->v));
  return 1;
}

static int vl_num_envs(lua_State *L) {
  lua_pushinteger(L, vl_checkvec(L)->pool->n);
  return 1;
}

static int vl_obs_dim(lua_State *L) {
  lua_pushinteger(L, vl_checkvec(L)->pool->obs_dim);
  return 1;
}

static int vl_threads(lua_State *L) {
  vl_pool *p = vl_checkvec(L)->pool;
  lua_pushinteger(L, p->nworkers > 1 ? p->nworkers : 0);
  return 1;
}

static int vl_max_episode_steps(lua_State *L) {
  lua_pushinteger(L, (lua_Integer)vl_checkvec(L)->pool->max_steps);
  return 1;
}

static int vl_space(lua_State *L, int which) {
  vl_checkvec(L);
  lua_getiuservalue(L, 1, which);  /* VL_UV_OSPACE or VL_UV_ASPACE */
  /* A copy, so a caller editing it cannot desynchronise the engine. */
  char err[100];
  if (vl_xcopy(L, -1, L, 0, "space", err, sizeof err) != 0)
    return luaL_error(L, "%s", err);
  return 1;
}
static int vl_observation_space(lua_State *L) { return vl_space(L, 1); }
static int vl_action_space(lua_State *L) { return vl_space(L, 2); }

static int vl_tostring(lua_State *L) {
  vl_box *b = lua_touserdata(L, 1);
  if (!b->v) {
    lua_pushliteral(L, VL_VECENV " (closed)");
  } else {
    vl_pool *p = b->pool;
    lua_pushfstring(L, VL_VECENV " (%s, %d envs, %s)", p->name, p->n,
                    p->inline_env ? "inline"
                    : p->nworkers > 1 ? lua_pushfstring(L, "%d threads", p->nworkers)
                                  : "calling thread");
  }
  return 1;
}

/* env:reload([only_if_changed]) → true (reloaded: each copy switches at
** its next episode boundary) | false (only_if_changed and the file's mtime
** and size are as at the last load) | nil, message (the file failed to load
** or does not fit; the running code stays).  Runs in the calling thread
** between batches, when no worker touches its state. */
static int vl_reload(lua_State *L) {
  vl_box *b = vl_checkvec(L);
  vl_pool *p = b->pool;
  int if_changed = lua_toboolean(L, 2);
  if (p->inline_env)
    return luaL_error(L, "reload: an inline env (a Lua table) has no file to reload");
  struct stat sb;
  if (!p->file || stat(p->file, &sb) != 0) {
    lua_pushnil(L);
    lua_pushfstring(L, "reload: env file %s cannot be read", p->file ? p->file : p->source);
    return 2;
  }
  int64_t mt = (int64_t)sb.st_mtim.tv_sec * 1000000000 + sb.st_mtim.tv_nsec;
  if (if_changed && mt == p->file_mtime && (int64_t)sb.st_size == p->file_size) {
    lua_pushboolean(L, 0);
    return 1;
  }
  /* A failed load is not retried until the file changes again. */
  p->file_mtime = mt;
  p->file_size = (int64_t)sb.st_size;
  char msg[600];
  int failed = -1;
  for (int k = 0; k < p->nworkers && failed < 0; k++) {
    vl_worker *w = &p->w[k];
    if (!w->swap) {
      w->swap = calloc((size_t)w->count, 1);
      if (!w->swap) {
        snprintf(msg, sizeof msg, "reload: out of memory");
        failed = k;
        break;
      }
    }
    lua_State *W = w->L;
    w->new_ref = LUA_NOREF;
    w->mem_hit = 0;
    lua_pushcfunction(W, vl_reload_load);
    lua_pushlightuserdata(W, w);
    if (lua_pcall(W, 1, 0, 0) != LUA_OK) {
      vl_fail_msg(w, W, msg, sizeof msg);
      lua_sethook(W, NULL, 0, 0);
      failed = k;
    }
  }
  if (failed >= 0) {
    for (int k = 0; k < p->nworkers; k++) {
      vl_worker *w = &p->w[k];
      if (w->new_ref != LUA_NOREF) luaL_unref(w->L, LUA_REGISTRYINDEX, w->new_ref);
      w->new_ref = LUA_NOREF;
    }
    lua_pushnil(L);
    lua_pushstring(L, msg);
    return 2;
  }
  for (int k = 0; k < p->nworkers; k++) {
    vl_worker *w = &p->w[k];
    if (w->pending_ref != LUA_NOREF) luaL_unref(w->L, LUA_REGISTRYINDEX, w->pending_ref);
    w->pending_ref = w->new_ref;
    w->new_ref = LUA_NOREF;
    memset(w->swap, 1, (size_t)w->count);
    w->nswap = w->count;
  }
  p->reloads++;
  lua_pushboolean(L, 1);
  return 1;
}

/* env:memory() → bytes held by the private worker states (0 for an inline
** env), and the cap per state (0 = none). */
static int vl_memory(lua_State *L) {
  vl_pool *p = vl_checkvec(L)->pool;
  size_t total = 0;
  for (int k = 0; k < p->nworkers; k++)
    if (p->w[k].L) total += p->w[k].mem;
  lua_pushinteger(L, (lua_Integer)total);
  lua_pushinteger(L, (lua_Integer)p->mem_cap);
  return 2;
}

/* env:reloads() → how many reloads succeeded */
static int vl_reloads(lua_State *L) {
  lua_pushinteger(L, vl_checkvec(L)->pool->reloads);
  return 1;
}

/* ------------------------------------------------------------ Rollout */

typedef struct ro_box {
  mrl_rollout *r;  /* NULL when closed */
  int obs_dim, width;
} ro_box;

static ro_box *ro_check(lua_State *L, int idx) {
  ro_box *b = mrlL_testudata(L, idx, VL_ROLLOUT);
  if (!b) mrlL_typeerror(L, idx, VL_ROLLOUT);
  if (!b->r) luaL_error(L, "attempt to use a closed " VL_ROLLOUT);
  return b;
}

static int ro_new(lua_State *L) {
  luaL_checktype(L, 1, LUA_TTABLE);
  int steps = (int)mrlL_optintfield(L, 1, "steps", 0, 1, MRL_MAX_BATCH);
  int n = (int)mrlL_optintfield(L, 1, "num_envs", 0, 1, MRL_MAX_BATCH);
  int od = (int)mrlL_optintfield(L, 1, "obs_dim", 0, 1, MRL_MAX_WIDTH);
  int aw = (int)mrlL_optintfield(L, 1, "action_width", 1, 1, MRL_MAX_WIDTH);
  if (steps == 0 || n == 0 || od == 0)
    return luaL_error(L, "rollout: fields 'steps', 'num_envs' and 'obs_dim' are required");
  if ((int64_t)steps * n > MRL_MAX_BATCH)
    return luaL_error(L, "rollout: steps × num_envs = %I exceeds %d",
                      (LUAI_UACINT)((int64_t)steps * n), (int)MRL_MAX_BATCH);
  ro_box *b = lua_newuserdatauv(L, sizeof *b, 0);
  b->r = NULL;
  b->obs_dim = od;
  b->width = aw;
  luaL_setmetatable(L, VL_ROLLOUT);
  int st = mrl_rollout_new(&b->r, steps, n, od, aw);
  if (st != MRL_OK) return luaL_error(L, "rollout: %s", mrl_status_string(st));
  return 1;
}

static int ro_close(lua_State *L) {
  ro_box *b = luaL_checkudata(L, 1, VL_ROLLOUT);
  mrl_rollout_free(b->r);
  b->r = NULL;
  return 0;
}

static const char *const ro_names[] = {"obs", "actions", "rewards", "logp",
                                       "values", "next_values", "advantages",
                                       "returns", "terminated", "truncated",
                                       NULL};

/* Float fields are live views [T][N] (obs, actions: [T][N][dim]); the flags
** are uint8 in the buffer, so they come out as float 0/1 copies. */
static int ro_field(lua_State *L) {
  ro_box *b = ro_check(L, 1);
  int f = luaL_checkoption(L, 2, NULL, ro_names);
  mrl_rollout *r = b->r;
  int T = mrl_rollout_steps(r), n = mrl_rollout_num_envs(r);
  if (f >= 8) {
    const uint8_t *src = f == 8 ? mrl_rollout_terminated(r) : mrl_rollout_truncated(r);
    int shape[2] = {T, n};
    mrlL_tensor *t = mrlL_newtensor(L, 2, shape);
    for (size_t k = 0; k < t->numel; k++) t->data[k] = (float)src[k];
    return 1;
  }
  int shape[3] = {T, n, f == 0 ? b->obs_dim : b->width};
  int ndim = f <= 1 ? 3 : 2;
  mrlL_pushview(L, 1, (void *const *)&b->r, VL_ROLLOUT,
                mrl_rollout_field_ptr(r, (mrl_rollout_field)f), ndim, shape);
  return 1;
}

static int ro_gae(lua_State *L) {
  ro_box *b = ro_check(L, 1);
  double gamma = luaL_checknumber(L, 2), lambda = luaL_checknumber(L, 3);
  int st = mrl_rollout_gae(b->r, gamma, lambda);
  if (st != MRL_OK) return luaL_error(L, "%s", mrl_rollout_error(b->r));
  lua_settop(L, 1);
  return 1;
}

static int ro_steps(lua_State *L) {
  lua_pushinteger(L, mrl_rollout_steps(ro_check(L, 1)->r));
  return 1;
}

static int ro_num_envs(lua_State *L) {
  lua_pushinteger(L, mrl_rollout_num_envs(ro_check(L, 1)->r));
  return 1;
}

static int ro_tostring(lua_State *L) {
  ro_box *b = luaL_checkudata(L, 1, VL_ROLLOUT);
  if (!b->r) lua_pushliteral(L, VL_ROLLOUT " (closed)");
  else lua_pushfstring(L, VL_ROLLOUT " (%d steps × %d envs)",
                       mrl_rollout_steps(b->r), mrl_rollout_num_envs(b->r));
  return 1;
}

/* ------------------------------------------------------------ collect */

static int vl_collect(lua_State *L) {
  vl_box *b = vl_checkvec(L);
  ro_box *rb = ro_check(L, 2);
  mrl_policy *pol = mrlL_checkpolicy(L, 3);
  mrl_net *val = lua_isnoneornil(L, 4) ? NULL : mrlL_checknet(L, 4);
  if (!b->has_reset) return luaL_error(L, "collect: call reset() first");
  mrl_vecenv *v = b->v;
  mrl_rollout *r = rb->r;
  vl_hidden hd = {0};
  if (b->pool->inline_env) {
    vl_hide(&hd, b);
    vl_hide(&hd, rb);
    vl_hide(&hd, lua_touserdata(L, 3));
    if (val) vl_hide(&hd, lua_touserdata(L, 4));
  }
  int st = mrl_rollout_collect(r, v, pol, val);
  vl_unhide(&hd);
  if (st == MRL_EENV) return luaL_error(L, "%s", b->pool->err);
  if (st != MRL_OK) return luaL_error(L, "%s", mrl_rollout_error(rb->r));
  vl_flag_views(b);
  lua_settop(L, 2);
  return 1;
}

/* -------------------------------------------------------------- open */

int mrl_lua_open_vecenv(lua_State *L) {
  static const luaL_Reg vmethods[] = {
    {"reset", vl_reset},
    {"step", vl_step},
    {"final_obs", vl_final_obs},
    {"episodes", vl_episodes},
    {"total_steps", vl_total_steps},
    {"num_envs", vl_num_envs},
    {"obs_dim", vl_obs_dim},
    {"threads", vl_threads},
    {"max_episode_steps", vl_max_episode_steps},
    {"action_space", vl_action_space},
    {"observation_space", vl_observation_space},
    {"collect", vl_collect},
    {"reload", vl_reload},
    {"reloads", vl_reloads},
    {"memory", vl_memory},
    {"close", vl_close},
    {NULL, NULL}};
  static const luaL_Reg vmetas[] = {
    {"__gc", vl_gc}, {"__close", vl_gc}, {"__tostring", vl_tostring}, {NULL, NULL}};
  static const luaL_Reg rmethods[] = {
    {"field", ro_field}, {"gae", ro_gae}, {"steps", ro_steps},
    {"num_envs", ro_num_envs}, {"close", ro_close}, {NULL, NULL}};
  static const luaL_Reg rmetas[] = {
    {"__gc", ro_close}, {"__close", ro_close}, {"__tostring", ro_tostring},
    {NULL, NULL}};
  mrlL_newclass(L, VL_VECENV, vmethods, vmetas, NULL);
  mrlL_newclass(L, VL_ROLLOUT, rmethods, rmetas, NULL);
  lua_pushcfunction(L, vl_new);
  lua_setfield(L, -2, "vecenv");
  lua_pushcfunction(L, ro_new);
  lua_setfield(L, -2, "rollout");
  return 0;
}
