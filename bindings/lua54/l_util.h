/*
** l_util.h — shared pieces of the Lua 5.4 binding `moonrl.core`.
**
** Every class keeps one metatable in the registry under its public name
** (they appear in error messages).  Methods get that metatable as upvalue 1,
** so checking `self` is one lua_getmetatable + lua_rawequal instead of a
** registry lookup per call (luaL_checkudata), which matters on the hot path.
**
** Arrays cross the boundary in two forms: a moonrl.Tensor (used in place) or
** a Lua table (copied into a temporary userdata left on the stack, so the
** garbage collector frees it even when a later check raises: nothing on the
** C heap ever needs freeing before an error).
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

enum { MRLL_MAXDIM = 4 };

/* A float32 tensor.  `data` points at the inline storage that follows the
** struct (an owning tensor) or into someone else's memory (a view); a view
** keeps that owner alive in its user value.  A view of a policy's or a net's
** buffers also records where the owner keeps its C handle (`owner`), so a
** view outliving a close() raises instead of touching freed memory. */
typedef struct mrlL_tensor {
  float *data;
  void *const *owner;     /* NULL, or the owner's handle slot */
  const char *owner_name; /* the owner's class name, for the error */
  size_t numel;
  int isview;
  int ndim;
  int shape[MRLL_MAXDIM];
} mrlL_tensor;

/* A read-only [rows][cols] block of floats taken from an argument. */
typedef struct mrlL_mat {
  const float *data;
  int rows, cols;
  int batched; /* 0 when the argument was a single row (1-D) */
} mrlL_mat;

/* ---- l_util.c */

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

/* Reads a matrix with `cols` columns: a tensor [rows][cols] (or [cols] for
** one row) or a table of rows (or a flat table of cols numbers for one row).
** rows_want < 0: any number of rows ≥ 1.  Tables are copied into a scratch
** userdata pushed on the stack; tensors push nothing.  Checks finiteness. */
void mrlL_checkmat(lua_State *L, int arg, int cols, int rows_want,
                   mrlL_mat *m);
/* A vector of n floats (n_want < 0: any n ≥ 1): a tensor with n elements or a
** table of numbers.  Booleans become 0/1 when allow_bool.  Checks finiteness. */
const float *mrlL_checkvec(lua_State *L, int arg, int n_want, int *n,
                           int allow_bool);
/* Actions for `batch` rows of a policy with action kind/n: discrete ones are
** integers in [0, n) (a table of integers or a tensor of [batch] / [batch][1]),
** box ones [batch][n] (also a flat table of n numbers when batch is 1). */
const float *mrlL_checkactions(lua_State *L, int arg, mrl_action_kind kind,
                               int n, int batch);
/* Reads an optional integer/number/boolean/string field of the table at idx. */
lua_Integer mrlL_optintfield(lua_State *L, int idx, const char *k,
                             lua_Integer def, lua_Integer lo, lua_Integer hi);
double mrlL_optnumfield(lua_State *L, int idx, const char *k, double def);
int mrlL_optboolfield(lua_State *L, int idx, const char *k, int def);
/* Reads `k` as an array of ints (each in [lo, hi]) into out[max]; returns
** the count (0 if absent). */
int mrlL_intarrayfield(lua_State *L, int idx, const char *k, int *out,
                       int max, int lo, int hi);
/* An option string field mapped through a NULL-terminated list. */
int mrlL_optenumfield(lua_State *L, int idx, const char *k, const char *def,
                      const char *const list[]);
/* A float array field of length n (number → repeated); returns 1 if present. */
int mrlL_floatsfield(lua_State *L, int idx, const char *k, float *out, int n);

/* Every class box (Policy, Net, Optim, Rng, and vecenv_lua.c's VecEnv and
** Rollout) keeps its C handle as its FIRST field, NULL once closed, so any
** file of the binding can reach another class's handle: this returns it for
** the value at idx, raising if that is not a tname or is closed. */
void *mrlL_checkhandle(lua_State *L, int idx, const char *tname);
#define mrlL_checkpolicy(L, i) ((mrl_policy *)mrlL_checkhandle(L, i, MRLL_POLICY))
#define mrlL_checknet(L, i) ((mrl_net *)mrlL_checkhandle(L, i, MRLL_NET))
#define mrlL_checkoptim(L, i) ((mrl_optim *)mrlL_checkhandle(L, i, MRLL_OPTIM))
#define mrlL_checkrng(L, i) ((mrl_rng *)mrlL_checkhandle(L, i, MRLL_RNG))

/* Builds a class metatable: methods (with the metatable as upvalue), metas,
** __index = methods table unless index_fn is given, __name = tname. */
void mrlL_newclass(lua_State *L, const char *tname, const luaL_Reg *methods,
                   const luaL_Reg *metas, lua_CFunction index_fn);

/* ---- l_tensor.c */

mrlL_tensor *mrlL_newtensor(lua_State *L, int ndim, const int *shape);
mrlL_tensor *mrlL_totensor(lua_State *L, int idx); /* NULL if not a tensor */
mrlL_tensor *mrlL_checktensor(lua_State *L, int arg);
/* Pushes a view over memory owned by the userdata at owner_idx (whose handle
** slot is `slot`, NULL if always valid). */
mrlL_tensor *mrlL_pushview(lua_State *L, int owner_idx, void *const *slot,
                           const char *owner_name, float *data, int ndim,
                           const int *shape);
/* Raises if the tensor's owner was closed; returns its data. */
float *mrlL_tensordata(lua_State *L, mrlL_tensor *t);
/* Pushes a new tensor holding a copy of x. */
mrlL_tensor *mrlL_pushfloats(lua_State *L, const float *x, int ndim,
                             const int *shape);
int mrlL_open_tensor(lua_State *L);

/* ---- the other classes: each registers its metatable and adds its
** constructors to the module table at the top of the stack. */
int mrlL_open_policy(lua_State *L);
/* If the value at idx is a Policy (Net), sets its own parameter and gradient
** buffers and returns 1; 0 for anything else; raises if it is closed. */
int mrlL_policy_buffers(lua_State *L, int idx, float **params, float **grad,
                        size_t *n);
int mrlL_net_buffers(lua_State *L, int idx, float **params, float **grad,
                     size_t *n);
int mrlL_open_net(lua_State *L);
int mrlL_open_optim(lua_State *L);
int mrlL_open_funcs(lua_State *L);
int mrlL_open_train(lua_State *L);
/* Pushes a new moonrl.Rng seeded with seed and returns its handle. */
mrl_rng *mrlL_newrng(lua_State *L, uint64_t seed);

/* The module opener (also put in package.preload by the host). */
int luaopen_moonrl_core(lua_State *L);

#endif
