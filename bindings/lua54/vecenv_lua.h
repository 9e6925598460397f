/*
** vecenv_lua.h — moonrl.VecEnv and moonrl.Rollout for the Lua 5.4 binding:
** Lua env scripts on a pool of worker threads (each with its own lua_State)
** behind mrl_env_ops, and the rollout buffer.
*/
#ifndef MRL_VECENV_LUA_H
#define MRL_VECENV_LUA_H

#include "lua.h"

/* Registers the two metatables and adds `vecenv` and `rollout` to the table
** at the top of the stack (the moonrl.core module table); pushes nothing. */
int mrl_lua_open_vecenv(lua_State *L);

#endif
