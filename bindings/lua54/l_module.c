/*
** l_module.c — luaopen_moonrl_core: checks the library's ABI and assembles
** moonrl.core from its parts (l_module.h), the only file that knows them all.
*/
#include "l_module.h"

#include "lauxlib.h"
#include "moonrl.h"
#include "vecenv_lua.h"

#define MRLL_VERSION "0.1.0"

/* In this order: a part may read what an earlier one put in the table
** (l_st.c keeps core.tensor for st_write). */
static const lua_CFunction parts[] = {
  mrlL_open_tensor, mrlL_open_policy, mrlL_open_net,   mrlL_open_optim,
  mrlL_open_funcs,  mrlL_open_train,  mrlL_open_ppo,  mrlL_open_st, mrlL_open_norm,    mrlL_open_bgtrain, mrl_lua_open_vecenv,
};

int luaopen_moonrl_core(lua_State *L) {
  if (mrl_abi_version() != MRL_ABI_VERSION)
    return luaL_error(L, "moonrl.core: libmoonrl ABI %d, compiled against %d",
                      mrl_abi_version(), (int)MRL_ABI_VERSION);
  lua_newtable(L);
  for (size_t i = 0; i < sizeof parts / sizeof parts[0]; i++) parts[i](L);
  lua_pushliteral(L, MRLL_VERSION);
  lua_setfield(L, -2, "version");
  lua_pushinteger(L, MRL_ABI_VERSION);
  lua_setfield(L, -2, "abi");
  lua_pushliteral(L, "lua54");
  lua_setfield(L, -2, "binding");
  return 1;
}
