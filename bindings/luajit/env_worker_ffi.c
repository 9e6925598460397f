/*
** env_worker_ffi.c — libmoonrl_luajit.so: env worker states for the LuaJIT
** binding, called through the FFI by moonrl/core/vecenv.lua.
**
** The worker-state code is bindings/lua54/env_worker.c compiled against
** LuaJIT's headers (lua_compat.h): each worker is a LuaJIT state of the
** process's own LuaJIT (this library leaves the lua_* symbols undefined;
** luajit and LÖVE export them), with the sandbox, instruction budget (JIT
** off in budgeted states), memory cap (a counting allocator: LuaJIT's
** lua_newstate takes one on GC64 builds, which x64 builds are) and env
** loading of the Lua 5.4 workers.  The vecenv (libmoonrl.so, which this
** library links) runs the worker blocks on its own pool of threads, so
** no LuaJIT callback ever runs off the calling thread.
**
** Values cross between the caller's state and a worker as text: the
** config as "return {...}" made by the caller (loaded here in text mode),
** the spaces as the same made here (mrl_ljw_space).
*/
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "env_worker.h"

typedef struct mrl_ljw_spec {
  const char *source, *env_path, *path, *cpath, *cfg_text;
  int num_envs, threads, trusted;
  int64_t budget, memory, max_steps, seed;
} mrl_ljw_spec;

/* The ABI of this file, checked by core/vecenv.lua against its cdef. */
int mrl_ljw_abi(void) { return 1; }

static int ljw_fail(vl_pool *p, char *err, size_t errlen, const char *msg) {
  snprintf(err, errlen, "%s", msg);
  mrlW_pool_free(p);
  return 0;
}

vl_pool *mrl_ljw_new(const mrl_ljw_spec *s, char *err, size_t errlen) {
  int n = s->num_envs, threads = s->threads;
  int nthreads = (threads > 0 && n > 1) ? (threads < n ? threads : n) : 0;
  vl_pool *p = mrlW_pool_new(n, nthreads > 0 ? nthreads : 1);
  if (!p) {
    snprintf(err, errlen, "vecenv: out of memory");
    return NULL;
  }
  p->budget = (lua_Integer)s->budget;
  p->mem_cap = (size_t)s->memory;
  p->trusted = s->trusted;
  p->seed_base = (uint64_t)s->seed;
  p->max_steps = s->max_steps > 0 ? s->max_steps : 0;
  p->source = strdup(s->source);
  p->env_path = s->env_path ? strdup(s->env_path) : NULL;
  if (!p->source || (s->env_path && !p->env_path)) {
    ljw_fail(p, err, errlen, "vecenv: out of memory");
    return NULL;
  }
  snprintf(p->name, sizeof p->name, "%s", s->source);
  vl_loadargs args = {NULL, NULL, 0, s->env_path, (lua_Integer)s->max_steps, s->cfg_text};
  char msg[600];
  if (mrlW_pool_load(p, s->path, s->trusted ? s->cpath : NULL, &args, msg, sizeof msg) != 0) {
    ljw_fail(p, err, errlen, msg);
    return NULL;
  }
  return p;
}

void mrl_ljw_describe(const vl_pool *p, int *obs_dim, int *kind, int *action_n,
                      const float **bounds, int64_t *max_steps, const char **name,
                      int *workers) {
  *obs_dim = p->obs_dim;
  *kind = (int)p->kind;
  *action_n = p->action_n;
  *bounds = p->bounds;
  *max_steps = p->max_steps;
  *name = p->name;
  *workers = p->nworkers;
}

const mrl_env_ops *mrl_ljw_ops(void) { return &mrlW_ops; }

/* The message of the last env failure (set by the ops' error). */
const char *mrl_ljw_error(const vl_pool *p) { return p->err; }

/* Bytes held by the worker states; *cap: the cap per state (0: none). */
double mrl_ljw_memory(const vl_pool *p, double *cap) {
  size_t total = 0;
  for (int k = 0; k < p->nworkers; k++) total += p->w[k].mem;
  *cap = (double)p->mem_cap;
  return (double)total;
}

/* Before a vecenv owns it (mrl_vecenv_new destroys it through the ops). */
void mrl_ljw_free(vl_pool *p) { mrlW_pool_free(p); }

/* ------------------------------------------------------- spaces as text */

typedef struct buf { char *s; size_t n, cap; int bad; } buf;

static void put(buf *b, const char *s, size_t n) {
  if (b->bad) return;
  if (b->n + n + 1 > b->cap) {
    size_t cap = (b->cap ? b->cap * 2 : 256) + n;
    char *q = realloc(b->s, cap);
    if (!q) {
      b->bad = 1;
      return;
    }
    b->s = q;
    b->cap = cap;
  }
  memcpy(b->s + b->n, s, n);
  b->n += n;
  b->s[b->n] = '\0';
}
static void puts_(buf *b, const char *s) { put(b, s, strlen(s)); }

/* Plain data at idx of W as a Lua expression (text: strings as \ddd
** escapes, non-finite numbers as 1/0, -1/0, 0/0). */
static void dump(lua_State *W, int idx, buf *b, int depth) {
  char tmp[64];
  idx = lua_absindex(W, idx);
  switch (lua_type(W, idx)) {
    case LUA_TNUMBER: {
      double x = lua_tonumber(W, idx);
      if (x != x) puts_(b, "(0/0)");
      else if (isinf(x)) puts_(b, x > 0 ? "(1/0)" : "(-1/0)");
      else {
        snprintf(tmp, sizeof tmp, "%.17g", x);
        puts_(b, tmp);
      }
      return;
    }
    case LUA_TBOOLEAN: puts_(b, lua_toboolean(W, idx) ? "true" : "false"); return;
    case LUA_TSTRING: {
      size_t len;
      const char *s = lua_tolstring(W, idx, &len);
      puts_(b, "\"");
      for (size_t i = 0; i < len; i++) {
        unsigned char c = (unsigned char)s[i];
        if (c >= 32 && c < 127 && c != '"' && c != '\\') put(b, (const char *)&c, 1);
        else {
          snprintf(tmp, sizeof tmp, "\\%03u", c);
          puts_(b, tmp);
        }
      }
      puts_(b, "\"");
      return;
    }
    case LUA_TTABLE:
      if (depth < VL_MAXDEPTH) break;
      puts_(b, "nil");  /* too deep */
      return;
    default: puts_(b, "nil"); return;
  }
  puts_(b, "{");
  lua_pushnil(W);
  while (lua_next(W, idx)) {
    puts_(b, "[");
    dump(W, -2, b, depth + 1);
    puts_(b, "]=");
    dump(W, -1, b, depth + 1);
    puts_(b, ",");
    lua_pop(W, 1);
  }
  puts_(b, "}");
}

typedef struct space_arg { vl_worker *w; buf *b; const char *which; } space_arg;

static int dump_space(lua_State *W) {
  space_arg *a = lua_touserdata(W, 1);
  vl_worker *w = a->w;
  buf *b = a->b;
  const char *which = a->which;
  lua_rawgeti(W, LUA_REGISTRYINDEX, w->envs_ref);
  lua_rawgeti(W, -1, 1);
  lua_getfield(W, -1, which);
  puts_(b, "return ");
  dump(W, -1, b, 0);
  return 0;
}

/* observation_space (which 0) or action_space (1) of copy 0 as
** "return {...}", malloc'd (free with mrl_ljw_free_text); NULL: no memory. */
char *mrl_ljw_space(vl_pool *p, int which) {
  lua_State *W = p->w[0].L;
  buf b = {NULL, 0, 0, 0};
  space_arg a = {&p->w[0], &b, which ? "action_space" : "observation_space"};
  if (mrlc_cpcall(W, dump_space, &a) != LUA_OK) {
    lua_pop(W, 1);
    b.bad = 1;
  }
  if (b.bad) {
    free(b.s);
    return NULL;
  }
  return b.s;
}

void mrl_ljw_free_text(char *s) { free(s); }

/* ------------------------------------------------ inline envs, in the caller
** An inline env (a table) runs in the calling LuaJIT state on the same
** loading and stepping code as Lua 5.4's (mrlW_load, mrlW_ops with
** inline_env).  Every call that may run env code (make, reset, step,
** collect, free) comes through the Lua C functions below, never through
** the FFI: a C function reached by the FFI must not call back into the Lua
** state that called it.  Lua passes handles and seeds in an mrl_ljw_inline
** (a light userdata it casts with the FFI). */

typedef struct mrl_ljw_inline {
  vl_pool *p;
  mrl_vecenv *v;
  mrl_rollout *r;  /* collect's arguments */
  mrl_policy *pol;
  mrl_net *val;
  uint64_t seed;   /* reset's */
  const float *actions;  /* step's */
} mrl_ljw_inline;

static mrl_ljw_inline *li_check(lua_State *L) {
  mrl_ljw_inline *li = lua_touserdata(L, 1);
  if (!li || !li->v) luaL_error(L, "moonrl: a closed inline vecenv");
  li->p->callerL = L;
  return li;
}

/* make(env, config|nil, num_envs, budget, max_steps) → inline,
** observation_space, action_space (copies), the env objects;
** raises with the env's message.  The vecenv then owns the pool. */
static int li_make(lua_State *L) {
  int n = (int)luaL_checkinteger(L, 3);
  mrl_ljw_inline *li = calloc(1, sizeof *li);
  vl_pool *p = li ? mrlW_pool_new(n, 1) : NULL;
  if (!p) {
    free(li);
    return luaL_error(L, "vecenv: out of memory");
  }
  p->inline_env = 1;
  p->callerL = L;
  p->budget = luaL_checkinteger(L, 4);
  lua_Integer max_steps = luaL_checkinteger(L, 5);
  p->max_steps = max_steps > 0 ? max_steps : 0;
  snprintf(p->name, sizeof p->name, "inline");
  vl_loadargs args = {&p->w[0], L, 0, NULL, max_steps, NULL};
  char msg[600];
  lua_pushcfunction(L, mrlW_load);
  lua_pushlightuserdata(L, &args);
  lua_pushvalue(L, 1);
  lua_pushvalue(L, 2);
  int st = lua_pcall(L, 3, 0, 0);
  if (st != LUA_OK) mrlW_fail_msg(&p->w[0], L, msg, sizeof msg);
  else if (p->kind == MRL_BOX && mrlc_cpcall(L, mrlW_make_acts, &p->w[0]) != LUA_OK)
    snprintf(msg, sizeof msg, "vecenv: out of memory");
  else msg[0] = '\0';
  for (int k = 0; !msg[0] && k < 2; k++) {  /* the spaces, copied */
    lua_rawgeti(L, LUA_REGISTRYINDEX, p->w[0].envs_ref);
    lua_rawgeti(L, -1, 1);
    lua_getfield(L, -1, k ? "action_space" : "observation_space");
    if (mrlW_xcopy(L, -1, L, 0, k ? "action_space" : "observation_space", msg, sizeof msg) != 0)
      break;
    lua_replace(L, -4);
    lua_pop(L, 2);
  }
  mrl_env_desc d = {n, p->obs_dim, p->kind, p->action_n, p->bounds,
                    p->bounds ? p->bounds + p->action_n : NULL, 1, p->max_steps, p->name};
  if (msg[0]) {
    mrlW_pool_free(p);
    free(li);
    return luaL_error(L, "%s", msg);
  }
  li->p = p;
  if ((st = mrl_vecenv_new(&li->v, &mrlW_ops, p, &d)) != MRL_OK) {  /* p freed */
    free(li);
    return luaL_error(L, "vecenv: %s (obs_dim %d, action_n %d)", mrl_status_string(st),
                      d.obs_dim, d.action_n);
  }
  lua_rawgeti(L, LUA_REGISTRYINDEX, p->w[0].envs_ref);  /* the env objects */
  lua_pushlightuserdata(L, li);
  lua_insert(L, -4);
  return 4;
}

/* reset(inline) / step(inline) / collect(inline) → status */
static int li_reset(lua_State *L) {
  mrl_ljw_inline *li = li_check(L);
  lua_pushinteger(L, mrl_vecenv_reset(li->v, li->seed));
  return 1;
}
static int li_step(lua_State *L) {
  mrl_ljw_inline *li = li_check(L);
  lua_pushinteger(L, mrl_vecenv_step(li->v, li->actions));
  return 1;
}
static int li_collect(lua_State *L) {
  mrl_ljw_inline *li = li_check(L);
  lua_pushinteger(L, mrl_rollout_collect(li->r, li->v, li->pol, li->val));
  return 1;
}

/* free(inline): the vecenv and its pool (the env references) */
static int li_free(lua_State *L) {
  mrl_ljw_inline *li = li_check(L);
  mrl_vecenv_free(li->v);
  li->v = NULL;
  free(li);
  return 0;
}

int luaopen_moonrl_ljw_inline(lua_State *L) {
  static const luaL_Reg fns[] = {{"make", li_make},       {"reset", li_reset},
                                 {"step", li_step},       {"collect", li_collect},
                                 {"free", li_free},       {NULL, NULL}};
  lua_newtable(L);
  luaL_register(L, NULL, fns);
  return 1;
}
