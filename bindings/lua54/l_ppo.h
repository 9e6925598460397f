/*
** l_ppo.h — what moonrl.BgTrain (l_bgtrain.c) uses of l_ppo.c: the one
** reader of PPO config tables and the one writer of report tables.
*/
#ifndef MRL_L_PPO_H
#define MRL_L_PPO_H

#include "l_util.h"

/* The config table at idx (none/nil: mrl_ppo_config_default) into c; the
** runtime checks the values.  bg: for the background trainer, where kl_beta,
** kl_target and rng are not read and a reduce hook is refused. */
void mrlL_ppo_config(lua_State *L, int idx, mrl_ppo_config *c, int bg);

/* Pushes the report table of core.ppo_update ([kl_beta] when kl). */
void mrlL_ppo_report(lua_State *L, const mrl_ppo_report *r, int kl);

#endif
