/*
** l_net.h — what the other parts use of moonrl.Net (l_net.c).
*/
#ifndef MRL_L_NET_H
#define MRL_L_NET_H

#include "l_util.h"

/* As mrlL_policy_buffers, for a Net. */
int mrlL_net_buffers(lua_State *L, int idx, float **params, float **grad,
                     size_t *n);

#endif
