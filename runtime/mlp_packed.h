/*
** mlp_packed.h — internal: inference at parameters that stay fixed for a
** while (a rollout), from a transposed copy of the weights.  The forward
** kernels multiply by Wᵀ; a batch of a few rows cannot repay transposing a
** layer on every call, so a collect transposes once and every step reads
** the copy in place.  The copy is the caller's and goes stale the moment
** the parameters change: it is for one collect, never kept across calls.
**
** Layout of wt: per Linear l, Wᵀ [dims[l]][dims[l+1]] at the offset woff[l]
** of the parameter block (the bias slots are unused), shape->nparams floats.
*/
#ifndef MRL_MLP_PACKED_H
#define MRL_MLP_PACKED_H

#include "mlp.h"

void mlp_pack_wt(const mlp_shape *s, const float *params, float *wt);
/* As mlp_forward, with the same results up to rounding. */
void mlp_forward_wt(const mlp_shape *s, const float *params, const float *wt,
                    const float *x, int batch, float *acts);

/* The policy and value network over such a copy (policy.c, net.c); the
** checks and results are those of mrl_policy_act and mrl_net_forward. */
size_t policy_wt_floats(const mrl_policy *p);
void policy_pack_wt(const mrl_policy *p, float *wt);
int policy_act_wt(mrl_policy *p, const float *wt, const float *obs, int batch,
                  float *actions, float *logp);
size_t net_wt_floats(const mrl_net *net);
void net_pack_wt(const mrl_net *net, float *wt);
int net_forward_wt(mrl_net *net, const float *wt, const float *x, int batch,
                   float *y);

#endif
