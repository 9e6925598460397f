/*
** host.h — the pieces of the `moonrl` executable shared by main.c and repl.c.
*/
#ifndef MRL_HOST_H
#define MRL_HOST_H

#include "lua.h"

/* Runs the function at the top of the stack (with narg arguments below it
** popped too) under a traceback handler; SIGINT interrupts it.  Leaves
** nres results (LUA_MULTRET allowed) or the error message. */
int host_docall(lua_State *L, int narg, int nres);
/* Prints the error message at the top of the stack to stderr (if status is
** not LUA_OK) and pops it; returns status. */
int host_report(lua_State *L, int status);
/* The interactive loop; returns when input ends. */
void host_repl(lua_State *L);

extern const char *host_progname;

#endif
