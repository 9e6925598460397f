/*
** l_policy.h — what the other parts use of moonrl.Policy (l_policy.c).
*/
#ifndef MRL_L_POLICY_H
#define MRL_L_POLICY_H

#include "l_util.h"

/* If the value at idx is a Policy, sets its own parameter and gradient
** buffers and returns 1; 0 for anything else; raises if it is closed. */
int mrlL_policy_buffers(lua_State *L, int idx, float **params, float **grad,
                        size_t *n);

#endif
