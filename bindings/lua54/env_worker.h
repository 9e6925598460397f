/*
** env_worker.h — the env worker states of a VecEnv: private Lua states
** (sandbox, instruction budget, memory cap), env script loading and the
** conversion of env calls into the vecenv's rows (env_worker.c), behind
** mrl_env_ops.  Written once, compiled twice: into the Lua 5.4 module
** (vecenv_lua.c builds moonrl.VecEnv on it) and, against LuaJIT's headers,
** into libmoonrl_luajit.so (bindings/luajit/env_worker_ffi.c, loaded by
** bindings/luajit/moonrl/core/vecenv.lua).
*/
#ifndef MRL_ENV_WORKER_H
#define MRL_ENV_WORKER_H

#include <stddef.h>
#include <stdint.h>

#include "lua_compat.h"
#include "moonrl.h"

enum { VL_RESET = 1, VL_STEP = 2 };
enum { VL_MAXDEPTH = 16 };

typedef struct vl_pool vl_pool;

typedef struct vl_worker {
  vl_pool *pool;
  lua_State *L;      /* private state; NULL for inline (the caller's) */
  int first, count;  /* env copies [first, first + count) */
  int envs_ref;      /* registry ref: array of the env objects */
  int acts_ref;      /* registry ref: reusable box action tables */
  int mask_ref;      /* registry ref: the reusable table action_mask fills */
  int obs_ref;       /* registry ref: reusable obs tables for step_into and
                     ** reset_into, made on first use (0: not yet) */
  int cur;           /* copy being run, for the error message */
  /* the call being run on this block */
  int cmd;           /* VL_RESET or VL_STEP */
  mrl_vecenv *v;
  const uint64_t *seeds;
  const float *actions;
  int st;            /* a commit's status (the vecenv has the message) */
  /* memory of the private state (vl_alloc) */
  size_t mem;
  int mem_hit;       /* an allocation was refused since the flag was cleared */
  int cfg_ref;       /* registry ref: the config as given (copied per copy) */
  int pending_ref;   /* registry ref: replacement copies of the last reload */
  int new_ref;       /* a reload in progress */
  uint8_t *swap;     /* [count] 1 = swap at the next episode boundary */
  int nswap;
  int pdepth;        /* LuaJIT: pcalls of env code in flight (vl_pcall) */
  int uncapped;      /* LuaJIT: inside lua_newstate (see mrlW_open) */
  char err[560];
} vl_worker;

struct vl_pool {
  int n, obs_dim, action_n, width;
  mrl_action_kind kind;
  int inline_env;
  int nworkers;            /* lua_States = the vecenv's blocks */
  int64_t max_steps;       /* time limit per episode, 0 = none (the vecenv's) */
  lua_Integer budget;      /* instructions per env call, 0 = none */
  size_t mem_cap;          /* bytes per private state, 0 = none */
  int trusted;             /* no sandbox: the host's globals and cpath */
  char *source;            /* env id or path (file envs) */
  char *env_path;          /* nullable */
  char *file;              /* the resolved file, for reload */
  int64_t file_mtime, file_size;
  uint64_t seed_base;      /* the make seed: reloaded copies reset from it */
  int reloads;
  vl_worker *w;
  float *bounds;           /* [2][action_n] box bounds, or NULL */
  mrl_action_part *parts;  /* [nparts] a composite action's (kind MRL_COMPOSITE) */
  int nparts;
  int mask_width;          /* the env's action_mask entries per copy, 0: no masks */
  /* a dict observation: its parts in byte order of their names, each part's
  ** numbers at a fixed offset of the flat row (ndict 0: a box) */
  int ndict;
  char **dict_names;
  int *dict_size;
  int obs_bytes;           /* a uint8 box: 0-255 read as x/255 (images) */
  int no_masks;            /* the caller asked for none (masks = false) */
  float *term_f, *trunc_f; /* [n] float mirrors of the flags for Lua views */
  float *act_buf;          /* [n] discrete actions read from a Lua array */
  lua_State *callerL;      /* inline mode: the state of the current call */
  char name[96];           /* env id for messages */
  char err[600];
};

/* Instructions a load may spend outside env calls (moonrl's own checks). */
enum { VL_LOAD_EXTRA = 1000000 };

/* Arguments of vl_load, passed as a light userdata. */
typedef struct vl_loadargs {
  vl_worker *w;
  lua_State *from;       /* the caller's state */
  int cfg_idx;           /* config in `from` (0: none); inline envs get
                         ** source and config as arguments 2 and 3 */
  const char *env_path;  /* nullable */
  lua_Integer max_steps; /* -1: take the env's max_episode_steps */
} vl_loadargs;

/* In W (protected, arg 1 the vl_worker *): reload's replacement copies. */
int mrlW_reload_load(lua_State *W);
/* A vecenv's options, as the bindings read them. */
typedef struct mrlW_opts {
  int num_envs, threads, trusted;
  lua_Integer budget, max_steps;  /* max_steps -1: the env's own */
  size_t memory;
  uint64_t seed;
  const char *env_path, *path, *cpath;  /* nullable, but path */
  int no_masks;  /* ignore an env's action_mask method */
} mrlW_opts;
/* Makes the vecenv of the source at index src of L (an env id or file, on
** worker states; an inline env table, in L itself) with the config at cfg
** (0: none), pushes copies of its observation_space and action_space onto
** L, and returns it (it owns its pool, *pool); NULL with the message in
** msg. */
mrl_vecenv *mrlW_make(lua_State *L, int src, int cfg, const mrlW_opts *o,
                      vl_pool **pool, char *msg, size_t len);
/* Copies plain data (numbers, strings, booleans, tables of those) at idx
** of `from` onto `to`; 0, or -1 with a message in err. */
int mrlW_xcopy(lua_State *from, int idx, lua_State *to, int depth,
               const char *where, char *err, size_t errlen);
/* The message of a failed call on top of W (popped), naming env and copy. */
void mrlW_fail_msg(vl_worker *w, lua_State *W, char *out, size_t len);
void mrlW_errobj(lua_State *W, char *buf, size_t len);
/* Step input, the common case: a Lua array at idx of L holding the N
** discrete actions, read into p->act_buf; NULL for anything else (a
** tensor, box actions, a bad value), which the binding converts and
** reports. */
const float *mrlW_fast_actions(lua_State *L, int idx, vl_pool *p);
/* p->term_f / trunc_f (the float views of a binding) := the flags of the
** last step of v. */
void mrlW_flag_mirrors(vl_pool *p, const mrl_vecenv *v);
/* Bytes held by the worker states (0 for an inline env). */
size_t mrlW_memory(const vl_pool *p);

#endif
