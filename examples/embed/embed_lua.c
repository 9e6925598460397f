/*
** embed_lua.c — a C program that embeds Lua 5.4 and moonrl, loads an
** environment script and trains a policy on it: what a C or C++ engine with
** a Lua scripting layer does to run moonrl in-process.
**
**   embed_lua [ENV_SCRIPT] [STEPS] [SEED]     (defaults: envs/CartPole-v1.lua 8192 1)
**
** The steps:
**  1. luaL_newstate + luaL_openlibs: an ordinary Lua state of the host;
**  2. package.preload["moonrl.core"] = luaopen_moonrl_core: the C module is
**     linked into this program (bindings/lua54 and libmoonrl.a), so nothing
**     is loaded from disk but the Lua scripts;
**  3. package.path gets <root>/scripts, where moonrl's Lua layer lives
**     (<root> is $MOONRL_ROOT, else the source tree this was built from);
**  4. a chunk calls rl.make(env_script) and rl.ppo{…}:learn(steps) under
**     lua_pcall with a traceback handler, so a failing script is an error
**     message, never a crash of the host.
** It prints one line: embed_lua: env=… steps=… episodes=… first_mean=… mean_return=…
*/
#include <lauxlib.h>
#include <lua.h>
#include <lualib.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#ifndef MRL_SOURCE_ROOT
#define MRL_SOURCE_ROOT "."
#endif

/* The entry point of the moonrl.core C module (bindings/lua54). */
int luaopen_moonrl_core(lua_State *L);

/* What the host asks the scripts to do: train on the env, report returns. */
static const char *const TRAIN_CHUNK =
    "local env_path, steps, seed = ...\n"
    "local rl = require 'moonrl'\n"
    "local env = rl.make(env_path, {num_envs = 4, threads = 2, seed = seed})\n"
    "local agent = rl.ppo{env = env, n_steps = 256, batch_size = 64, epochs = 10,\n"
    "                     seed = seed, progress = false}\n"
    "local first\n"
    "agent:learn(steps, {on_update = function(s)\n"
    "  if first == nil and s.mean_return then first = s.mean_return end\n"
    "end})\n"
    "local st = agent:episode_stats()\n"
    "local result = {steps = agent.steps_done, episodes = st.episodes,\n"
    "                first_mean = first or 0, mean_return = st.mean_return or 0}\n"
    "agent:close(); env:close()\n"
    "return result\n";

static int traceback(lua_State *L) {
  const char *msg = lua_tostring(L, 1);
  luaL_traceback(L, L, msg ? msg : "(error object is not a string)", 1);
  return 1;
}

static double field(lua_State *L, int t, const char *name) {
  lua_getfield(L, t, name);
  double v = lua_tonumber(L, -1);
  lua_pop(L, 1);
  return v;
}

int main(int argc, char **argv) {
  const char *root = getenv("MOONRL_ROOT");
  if (root == NULL || root[0] == '\0') root = MRL_SOURCE_ROOT;
  char default_env[4096];
  snprintf(default_env, sizeof default_env, "%s/envs/CartPole-v1.lua", root);
  const char *env_path = argc > 1 ? argv[1] : default_env;
  long steps = argc > 2 ? strtol(argv[2], NULL, 10) : 8192;
  long seed = argc > 3 ? strtol(argv[3], NULL, 10) : 1;
  if (steps <= 0) {
    fprintf(stderr, "usage: embed_lua [ENV_SCRIPT] [STEPS > 0] [SEED]\n");
    return 2;
  }

  lua_State *L = luaL_newstate();
  if (L == NULL) {
    fprintf(stderr, "embed_lua: cannot create a Lua state\n");
    return 1;
  }
  luaL_openlibs(L);

  /* moonrl.core from this binary; moonrl's scripts from <root>/scripts */
  lua_getglobal(L, "package");
  lua_getfield(L, -1, "preload");
  lua_pushcfunction(L, luaopen_moonrl_core);
  lua_setfield(L, -2, "moonrl.core");
  lua_pop(L, 1);
  lua_getfield(L, -1, "path");
  lua_pushfstring(L, "%s/scripts/?.lua;%s/scripts/?/init.lua;%s", root, root,
                  lua_tostring(L, -1));
  lua_setfield(L, -3, "path");
  lua_pop(L, 2);

  int status = 1;
  lua_pushcfunction(L, traceback);
  int handler = lua_gettop(L);
  if (luaL_loadbuffer(L, TRAIN_CHUNK, strlen(TRAIN_CHUNK), "=train") != LUA_OK) {
    fprintf(stderr, "embed_lua: %s\n", lua_tostring(L, -1));
  } else {
    lua_pushstring(L, env_path);
    lua_pushinteger(L, steps);
    lua_pushinteger(L, seed);
    if (lua_pcall(L, 3, 1, handler) != LUA_OK) {
      fprintf(stderr, "embed_lua: %s\n", lua_tostring(L, -1));
    } else {
      int t = lua_gettop(L);
      printf("embed_lua: env=%s steps=%.0f episodes=%.0f first_mean=%.2f mean_return=%.2f\n",
             env_path, field(L, t, "steps"), field(L, t, "episodes"),
             field(L, t, "first_mean"), field(L, t, "mean_return"));
      status = 0;
    }
  }
  lua_close(L);
  return status;
}
