/*
** l_reduce.h — a reduction hook as a Lua value (moonrl.Reducer): a full
** userdata holding an mrl_reduce_fn and its argument.  moonrl.core only
** consumes reducers (config.reduce of ppo_update and value_fit,
** core.policy_set_reduce); a distributed layer such as moonrl.mpi makes
** them, so the core module itself links no MPI.
*/
#ifndef MRLL_REDUCE_H
#define MRLL_REDUCE_H

#include "moonrl.h"

#define MRLL_REDUCER "moonrl.Reducer"

typedef struct mrlL_reducer {
  mrl_reduce_fn fn;
  void *ud;
} mrlL_reducer;

#endif
