/*
** l_util.h — errors, argument and table-field checks and class metatables
** for the Lua 5.4 binding `moonrl.core` (l_util.c, which depends on no other
** file of the binding).
**
** Every class keeps one metatable in the registry under its public name
** (they appear in error messages).  Methods get that metatable as upvalue 1,
** so checking `self` is one lua_getmetatable + lua_rawequal instead of a
** registry lookup per call (luaL_checkudata), which matters on the hot path.
*/
#ifndef MRL_L_UTIL_H
#define MRL_L_UTIL_H

#include <stddef.h>

#include "lauxlib.h"
#include "lua.h"
#include "moonrl.h"

#define MRLL_TENSOR "moonrl.Tensor"
#define MRLL_POLICY "moonrl.Policy"
#define MRLL_NET "moonrl.Net"
#define MRLL_OPTIM "moonrl.Optim"
#define MRLL_RNG "moonrl.Rng"

/* Raises "bad argument #arg to 'f' (<expected> expected, got <type>)". */
int mrlL_typeerror(lua_State *L, int arg, const char *expected);
/* Checks that `self` at index 1 has the metatable at upvalue 1 and returns
** the block; tname is used for the error. */
void *mrlL_checkself(lua_State *L, const char *tname);
/* 1 if the value at idx is a userdata whose metatable is the registry's tname. */
void *mrlL_testudata(lua_State *L, int idx, const char *tname);
/* A float scratch block of n floats as a new userdata on the stack. */
float *mrlL_scratch(lua_State *L, size_t n);
/* Raises on the first non-finite value, naming the argument. */
void mrlL_checkfinite(lua_State *L, int arg, const float *x, size_t n);

/* Reads an optional integer/number/boolean/string field of the table at idx. */
lua_Integer mrlL_optintfield(lua_State *L, int idx, const char *k,
                             lua_Integer def, lua_Integer lo, lua_Integer hi);
double mrlL_optnumfield(lua_State *L, int idx, const char *k, double def);
int mrlL_optboolfield(lua_State *L, int idx, const char *k, int def);
/* Reads `k` as an array of ints (each in [lo, hi]) into out[max]; returns
** the count (0 if absent). */
int mrlL_intarrayfield(lua_State *L, int idx, const char *k, int *out,
                       int max, int lo, int hi);
/* obs_shape = {C, H, W} and conv = {{out=, kernel=, stride=, padding=}, ...}
** of the table at idx (stride 1, padding 0 when absent; unknown keys
** refused) into shape[3], conv[MRL_MAX_CONV] and *nconv; 1 if obs_shape
** was given. */
int mrlL_checkgrid(lua_State *L, int idx, int shape[3], mrl_conv_layer *conv,
                   int *nconv);
/* The table on top gets obs_shape (shape non-NULL) and conv (nconv > 0),
** as mrlL_checkgrid reads them. */
void mrlL_setgrid(lua_State *L, const int *shape, const mrl_conv_layer *conv,
                  int nconv);
/* An option string field mapped through a NULL-terminated list. */
int mrlL_optenumfield(lua_State *L, int idx, const char *k, const char *def,
                      const char *const list[]);
/* A float array field of length n (number → repeated); returns 1 if present. */
int mrlL_floatsfield(lua_State *L, int idx, const char *k, float *out, int n);
/* Reads the fields of the runtime's option table `which` (mrl_opts) that
** the table at idx holds into the struct at dst, which holds the defaults. */
void mrlL_readopts(lua_State *L, int idx, mrl_opt_table which, void *dst);

/* Every class box (Policy, Net, Optim, Rng, and vecenv_lua.c's VecEnv and
** Rollout) keeps its C handle as its FIRST field, NULL once closed, so any
** file of the binding can reach another class's handle: this returns it for
** the value at idx, raising if that is not a tname or is closed. */
void *mrlL_checkhandle(lua_State *L, int idx, const char *tname);
/* close() (tname given: self checked) and __gc / __close (tname NULL) of
** such a class: freefn (a wrapper of the runtime's *_free) runs once on
** the handle, which becomes NULL.  Returns 0. */
int mrlL_close(lua_State *L, const char *tname, void (*freefn)(void *));
/* The box of `self` (mrlL_checkself), raising "attempt to use a closed
** <tname>" when its handle is NULL. */
static inline void *mrlL_checkopen(lua_State *L, const char *tname) {
  void **box = (void **)mrlL_checkself(L, tname);
  if (*box == NULL) luaL_error(L, "attempt to use a closed %s", tname);
  return box;
}
#define mrlL_checkpolicy(L, i) ((mrl_policy *)mrlL_checkhandle(L, i, MRLL_POLICY))
#define mrlL_checknet(L, i) ((mrl_net *)mrlL_checkhandle(L, i, MRLL_NET))
#define mrlL_checkoptim(L, i) ((mrl_optim *)mrlL_checkhandle(L, i, MRLL_OPTIM))
#define mrlL_checkrng(L, i) ((mrl_rng *)mrlL_checkhandle(L, i, MRLL_RNG))

/* Builds a class metatable: methods (with the metatable as upvalue), metas,
** __index = methods table unless index_fn is given, __name = tname. */
void mrlL_newclass(lua_State *L, const char *tname, const luaL_Reg *methods,
                   const luaL_Reg *metas, lua_CFunction index_fn);

#endif
