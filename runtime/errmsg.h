/*
** errmsg.h — internal: lets runtime modules built on the public policy API
** (estimators.c) leave a readable message on a policy handle, where
** mrl_policy_error() will find it (implemented in policy.c), and fill the
** caller-buffer messages of handle-less calls.
*/
#ifndef MRL_ERRMSG_H
#define MRL_ERRMSG_H

#include "moonrl.h"

/* printf-style; truncates to the handle's buffer; p may not be NULL. */
void mrl_policy_set_error_(mrl_policy *p, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));

/* Formats a message into a caller's buffer (err may be NULL or errlen 0:
** nothing is written) and returns status, so a failure is one line:
** `return mrl_errbuf_(err, errlen, MRL_EINVAL, "n: …", n);`.  In status.c. */
int mrl_errbuf_(char *err, size_t errlen, int status, const char *fmt, ...)
    __attribute__((format(printf, 4, 5)));

#endif
