/*
** errmsg.h — internal: lets runtime modules built on the public policy API
** (estimators.c) leave a readable message on a policy handle, where
** mrl_policy_error() will find it.  Implemented in policy.c.
*/
#ifndef MRL_ERRMSG_H
#define MRL_ERRMSG_H

#include "moonrl.h"

/* printf-style; truncates to the handle's buffer; p may not be NULL. */
void mrl_policy_set_error_(mrl_policy *p, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));

#endif
