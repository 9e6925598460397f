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
** The calls that build a vecenv or may run env code in the calling state
** are Lua C functions (luaopen_moonrl_ljw_inline), never reached through
** the FFI: a C function called by the FFI must not call back into the Lua
** state that called it.  A step of env files (mrl_ljw_step) runs code of
** the worker states only, so it is an FFI call, which compiled code makes
** directly.
** The FFI reads the rest (mrl_ljw_error, mrl_ljw_memory).
*/
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "env_worker.h"

/* The ABI of this file, checked by core/vecenv.lua against its cdef and
** the Lua C functions it uses. */
int mrl_ljw_abi(void) { return 5; }

/* The message of the last env failure (set by the ops' error). */
const char *mrl_ljw_error(const vl_pool *p) { return p->err; }

/* Bytes held by the worker states; *cap: the cap per state (0: none). */
double mrl_ljw_memory(const vl_pool *p, double *cap) {
  *cap = (double)p->mem_cap;
  return (double)mrlW_memory(p);
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

/* make(source, config|nil, num_envs, threads, budget, memory, trusted,
**      max_steps, env_path|nil, seed, package.path, cpath|nil, masks|nil)
** → inline, observation_space, action_space (copies), the env objects
** (inline envs; else nil); raises with the env's message. */
static int li_make(lua_State *L) {
  mrlW_opts o = {(int)luaL_checkinteger(L, 3), (int)luaL_checkinteger(L, 4),
                 lua_toboolean(L, 7), luaL_checkinteger(L, 5), luaL_checkinteger(L, 8),
                 (size_t)luaL_checknumber(L, 6), (uint64_t)(int64_t)luaL_checknumber(L, 10),
                 lua_tostring(L, 9), luaL_checkstring(L, 11), lua_tostring(L, 12),
                 lua_isboolean(L, 13) && !lua_toboolean(L, 13)};
  mrl_ljw_inline *li = calloc(1, sizeof *li);
  char msg[600];
  if (!li) return luaL_error(L, "vecenv: out of memory");
  li->v = mrlW_make(L, 1, lua_istable(L, 2) ? 2 : 0, &o, &li->p, msg, sizeof msg);
  if (!li->v) {
    free(li);
    return luaL_error(L, "%s", msg);
  }
  if (li->p->inline_env) lua_rawgeti(L, LUA_REGISTRYINDEX, li->p->w[0].envs_ref);
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
/* step(inline[, actions]): a Lua array of N discrete actions (arg 2) is
** read here into the pool's buffer, and the float flag mirrors are made
** here: the interpreted caller (the JIT is off around env code) would pay
** ~2 us per batch for those cdata loops.  → status, or LI_SLOW when arg 2
** is not such an array (the caller converts it and calls without it). */
enum { LI_SLOW = -1000 };
static int li_step(lua_State *L) {
  mrl_ljw_inline *li = li_check(L);
  vl_pool *p = li->p;
  const float *a = li->actions;
  if (lua_istable(L, 2) && !(a = mrlW_fast_actions(L, 2, p))) {
    lua_pushinteger(L, LI_SLOW);
    return 1;
  }
  int st = mrl_vecenv_step(li->v, a);
  if (st == MRL_OK) mrlW_flag_mirrors(p, li->v);
  lua_pushinteger(L, st);
  return 1;
}

/* The step of env files on worker states, through the FFI (see the top),
** the actions converted by the caller: → status. */
int mrl_ljw_step(mrl_ljw_inline *li, const float *actions) {
  if (!li->v || li->p->inline_env) return MRL_ESTATE;
  int st = mrl_vecenv_step(li->v, actions);
  if (st == MRL_OK) mrlW_flag_mirrors(li->p, li->v);
  return st;
}

/* The float flag mirrors li_step and li_collect keep (the binding's views): 0 terminated,
** 1 truncated. */
float *mrl_ljw_flags(vl_pool *p, int which) { return which ? p->trunc_f : p->term_f; }
static int li_collect(lua_State *L) {
  mrl_ljw_inline *li = li_check(L);
  int st = mrl_rollout_collect(li->r, li->v, li->pol, li->val);
  if (st == MRL_OK) mrlW_flag_mirrors(li->p, li->v);
  lua_pushinteger(L, st);
  return 1;
}

/* copy(v) → a copy of the plain data v (the spaces the vecenv methods
** return, so a caller editing one cannot change the engine's), as in 5.4 */
static int li_copy(lua_State *L) {
  char err[100];
  if (mrlW_xcopy(L, 1, L, 0, "space", err, sizeof err) != 0) return luaL_error(L, "%s", err);
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
                                 {"free", li_free},       {"copy", li_copy},
                                 {NULL, NULL}};
  lua_newtable(L);
  luaL_register(L, NULL, fns);
  return 1;
}
