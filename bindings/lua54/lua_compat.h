/*
** lua_compat.h — the few Lua 5.2-5.4 API calls the env worker states use,
** for LuaJIT (Lua 5.1 API) too, as LPeg does: env_worker.c is compiled
** against Lua 5.4 into core.so and against LuaJIT's headers into
** libmoonrl_luajit.so (bindings/luajit/env_worker_ffi.c).
*/
#ifndef MRL_LUA_COMPAT_H
#define MRL_LUA_COMPAT_H

#include "lauxlib.h"
#include "lua.h"
#include "lualib.h"

#if LUA_VERSION_NUM == 501
#include "luajit.h"

#define MRL_LUAJIT 1
#define LUA_OK 0
typedef size_t lua_Unsigned;

static inline int mrlc_absindex(lua_State *L, int i) {
  return i > 0 || i <= LUA_REGISTRYINDEX ? i : lua_gettop(L) + i + 1;
}
static inline int mrlc_getfield(lua_State *L, int i, const char *k) {
  lua_getfield(L, i, k);
  return lua_type(L, -1);
}
static inline int mrlc_rawgeti(lua_State *L, int i, int n) {
  lua_rawgeti(L, i, n);
  return lua_type(L, -1);
}
static inline void mrlc_rawgetp(lua_State *L, int i, const void *p) {
  i = mrlc_absindex(L, i);
  lua_pushlightuserdata(L, (void *)p);
  lua_rawget(L, i);
}
static inline void mrlc_rawsetp(lua_State *L, int i, const void *p) {
  i = mrlc_absindex(L, i);
  lua_pushlightuserdata(L, (void *)p);
  lua_insert(L, -2);
  lua_rawset(L, i);
}
#define lua_absindex mrlc_absindex
#define lua_getfield mrlc_getfield
#define lua_rawgeti mrlc_rawgeti
#define lua_rawgetp mrlc_rawgetp
#define lua_rawsetp mrlc_rawsetp
#define lua_rawlen lua_objlen
#define lua_isinteger(L, i) 0
/* lua_rotate(L, i, 1): the top moves to i */
#define mrlc_rotate1(L, i) lua_insert(L, i)
#else
#define mrlc_rotate1(L, i) lua_rotate(L, i, 1)
#endif

/* A protected call of f with one light userdata argument (index 1); under
** LuaJIT through lua_cpcall, which makes the function object inside the
** protection (an allocation that may fail under a memory cap). */
static inline int mrlc_cpcall(lua_State *L, lua_CFunction f, void *ud) {
#if LUA_VERSION_NUM == 501
  return lua_cpcall(L, f, ud);
#else
  lua_pushcfunction(L, f);  /* light C functions allocate nothing */
  lua_pushlightuserdata(L, ud);
  return lua_pcall(L, 1, 0, 0);
#endif
}

#endif
