/*
** normalize_impl.h — internal: a rollout using a normaliser holds a
** reference to it (normalize.c), released by mrl_rms_free /
** mrl_retnorm_free, so freeing a handle the rollout still uses is safe.
*/
#ifndef MRL_NORMALIZE_IMPL_H
#define MRL_NORMALIZE_IMPL_H

#include "moonrl.h"

void rms_retain(mrl_rms *s);
void retnorm_retain(mrl_retnorm *rn);
/* closed by the owner (mrl_rms_close / mrl_retnorm_close): a rollout drops
** it at its next collect */
int rms_closed(const mrl_rms *s);
int retnorm_closed(const mrl_retnorm *rn);

#endif
