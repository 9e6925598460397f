/*
** l_funcs.h — what the other parts use of l_funcs.c (moonrl.Rng).
*/
#ifndef MRL_L_FUNCS_H
#define MRL_L_FUNCS_H

#include "l_util.h"

/* Pushes a new moonrl.Rng seeded with seed and returns its handle. */
mrl_rng *mrlL_newrng(lua_State *L, uint64_t seed);

#endif
