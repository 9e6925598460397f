/*
** l_module.h — the parts of the Lua 5.4 binding `moonrl.core` and the module
** opener that assembles them (l_module.c).
**
** Each part l_X.c defines mrlL_open_X: it registers its metatables and adds
** its functions to the module table at the top of the stack, pushing
** nothing.  Parts depend on l_util (and l_tensor, and the small headers of
** the parts they use: l_policy.h, l_net.h, l_funcs.h), never on l_module.c;
** a new part declares its opener here and is added to the list in
** l_module.c.
*/
#ifndef MRL_L_MODULE_H
#define MRL_L_MODULE_H

#include "lua.h"

int mrlL_open_tensor(lua_State *L); /* l_tensor.c: tensor, zeros */
int mrlL_open_policy(lua_State *L); /* l_policy.c: policy */
int mrlL_open_net(lua_State *L);    /* l_net.c: net */
int mrlL_open_optim(lua_State *L);  /* l_optim.c: optim, clip_grad_norm, all_finite */
int mrlL_open_funcs(lua_State *L);  /* l_funcs.c: returns, gae, kl_beta_update, rng */
int mrlL_open_train(lua_State *L);  /* l_train.c: value_fit, policy_set_reduce, rollout_put/outcome/bootstrap/behaviour */
int mrlL_open_ppo(lua_State *L);    /* l_ppo.c: ppo_update, ppo_begin (moonrl.PpoJob) */
int mrlL_open_bgtrain(lua_State *L); /* l_bgtrain.c: bgtrain (moonrl.BgTrain) */
int mrlL_open_st(lua_State *L);     /* l_st.c: st_write/st_read, rng/optim state, now */
int mrlL_open_norm(lua_State *L);   /* l_norm.c: rms, reward_norm, rollout_set_norm */

/* The module opener (also put in package.preload by the host, and by
** vecenv_lua.c into its worker states). */
int luaopen_moonrl_core(lua_State *L);

#endif
