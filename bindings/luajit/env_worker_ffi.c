/*
** env_worker_ffi.c — libmoonrl_luajit.so: the env worker code of the LuaJIT
** binding (moonrl/core/vecenv.lua).
**
** The worker-state code is bindings/lua54/env_worker.c compiled against
** LuaJIT's headers (lua_compat.h): each worker is a LuaJIT state of the
** process's own LuaJIT (this library leaves the lua_* symbols undefined;
** luajit and LÖVE export them), with the sandbox, instruction budget (JIT
** off in budgeted states), memory cap (a counting allocator: LuaJIT's
** lua_newstate takes one on GC64 builds, which x64 builds are) and env
** loading of the Lua 5.4 workers.  The vecenv (libmoonrl.so, which this
** library links) runs the worker blocks on its own pool of threads, so
** no LuaJIT callback ever runs off the calling thread.  An inline env runs
** in the calling state on the same code.
**
** The calls that build a vecenv or may run env code are Lua C functions
** (luaopen_moonrl_ljw_inline), never reached through the FFI: a C function
** called by the FFI must not call back into the Lua state that called it.
** The FFI reads the rest (mrl_ljw_error, mrl_ljw_memory).
*/
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "env_worker.h"

/* The ABI of this file, checked by core/vecenv.lua against its cdef. */
int mrl_ljw_abi(void) { return 2; }

/* The message of the last env failure (set by the ops' error). */
const char *mrl_ljw_error(const vl_pool *p) { return p->err; }

/* Bytes held by the worker states; *cap: the cap per state (0: none). */
double mrl_ljw_memory(const vl_pool *p, double *cap) {
  size_t total = 0;
  for (int k = 0; k < p->nworkers; k++) total += p->w[k].mem;
  *cap = (double)p->mem_cap;
  return (double)total;
}

/* ------------------------------------------------------ the Lua C side
** Lua passes handles, seeds and actions in an mrl_ljw_inline (a light
** userdata it casts with the FFI). */

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
  if (!li || !li->v) luaL_error(L, "moonrl: a closed vecenv");
  li->p->callerL = L;
  return li;
}

/* The pool of source (arg 1: an env id or file, on worker states; or an
** inline env table, in L), loaded: "" or the message in msg. */
static void li_load(lua_State *L, vl_pool *p, lua_Integer max_steps, char *msg, size_t len) {
  const char *env_path = lua_tostring(L, 9);
  vl_loadargs args = {&p->w[0], L, lua_istable(L, 2) ? 2 : 0, env_path, max_steps, NULL};
  msg[0] = '\0';
  if (p->inline_env) {
    snprintf(p->name, sizeof p->name, "inline");
    lua_pushcfunction(L, mrlW_load);
    lua_pushlightuserdata(L, &args);
    lua_pushvalue(L, 1);
    lua_pushvalue(L, 2);
    if (lua_pcall(L, 3, 0, 0) != LUA_OK) mrlW_fail_msg(&p->w[0], L, msg, len);
    else if (p->kind == MRL_BOX && mrlc_cpcall(L, mrlW_make_acts, &p->w[0]) != LUA_OK)
      snprintf(msg, len, "vecenv: out of memory");
    return;
  }
  snprintf(p->name, sizeof p->name, "%s", lua_tostring(L, 1));
  p->source = strdup(lua_tostring(L, 1));
  p->env_path = env_path ? strdup(env_path) : NULL;
  if (!p->source || (env_path && !p->env_path)) snprintf(msg, len, "vecenv: out of memory");
  else mrlW_pool_load(p, luaL_checkstring(L, 11), lua_tostring(L, 12), &args, msg, len);
}

/* make(source, config|nil, num_envs, threads, budget, memory, trusted,
**      max_steps, env_path|nil, seed, package.path, cpath|nil)
** → inline, observation_space, action_space (copies), the env objects
** (inline envs; else nil); raises with the env's message. */
static int li_make(lua_State *L) {
  int inl = lua_istable(L, 1);
  int n = (int)luaL_checkinteger(L, 3), threads = (int)luaL_checkinteger(L, 4);
  int nthreads = (!inl && threads > 0 && n > 1) ? (threads < n ? threads : n) : 0;
  mrl_ljw_inline *li = calloc(1, sizeof *li);
  vl_pool *p = li ? mrlW_pool_new(n, nthreads > 0 ? nthreads : 1) : NULL;
  if (!p) {
    free(li);
    return luaL_error(L, "vecenv: out of memory");
  }
  p->inline_env = inl;
  p->callerL = L;
  p->budget = luaL_checkinteger(L, 5);
  p->mem_cap = (size_t)luaL_checknumber(L, 6);
  p->trusted = lua_toboolean(L, 7);
  lua_Integer max_steps = luaL_checkinteger(L, 8);
  p->max_steps = max_steps > 0 ? max_steps : 0;
  p->seed_base = (uint64_t)(int64_t)luaL_checknumber(L, 10);
  char msg[600];
  li_load(L, p, max_steps, msg, sizeof msg);
  lua_State *W = inl ? L : p->w[0].L;
  for (int k = 0; !msg[0] && k < 2; k++) {  /* the spaces, copied */
    const char *name = k ? "action_space" : "observation_space";
    lua_rawgeti(W, LUA_REGISTRYINDEX, p->w[0].envs_ref);
    lua_rawgeti(W, -1, 1);
    lua_getfield(W, -1, name);
    if (mrlW_xcopy(W, -1, L, 0, name, msg, sizeof msg) != 0) break;
    if (W == L) {
      lua_replace(L, -4);  /* the copy replaces the list; drop env, space */
      lua_pop(L, 2);
    } else {
      lua_pop(W, 3);
    }
  }
  if (msg[0]) {
    mrlW_pool_free(p);
    free(li);
    return luaL_error(L, "%s", msg);
  }
  mrl_env_desc d = {n, p->obs_dim, p->kind, p->action_n, p->bounds,
                    p->bounds ? p->bounds + p->action_n : NULL, p->nworkers, p->max_steps,
                    p->name};
  int st;
  li->p = p;
  if ((st = mrl_vecenv_new(&li->v, &mrlW_ops, p, &d)) != MRL_OK) {  /* p freed */
    free(li);
    return luaL_error(L, "vecenv: %s (obs_dim %d, action_n %d)", mrl_status_string(st),
                      d.obs_dim, d.action_n);
  }
  if (inl) lua_rawgeti(L, LUA_REGISTRYINDEX, p->w[0].envs_ref);  /* the env objects */
  else lua_pushnil(L);
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

/* free(inline): the vecenv and its pool (worker states, env references) */
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
