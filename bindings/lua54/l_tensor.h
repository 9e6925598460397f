/*
** l_tensor.h — moonrl.Tensor for the other parts of the Lua 5.4 binding
** (l_tensor.c): making tensors and views, and reading array arguments.
**
** Arrays cross the boundary in two forms: a moonrl.Tensor (used in place) or
** a Lua table (copied into a temporary userdata left on the stack, so the
** garbage collector frees it even when a later check raises: nothing on the
** C heap ever needs freeing before an error).
*/
#ifndef MRL_L_TENSOR_H
#define MRL_L_TENSOR_H

#include "l_util.h"

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

#endif
