/*
** vecenv_lua.c — moonrl.VecEnv: Gymnasium-style Lua envs behind mrl_env_ops,
** stepped in batches on a pool of worker threads; and moonrl.Rollout.
**
** The env contract (checks of rows and rewards, the time limit, episode
** counting, auto-reset and final_obs) and the threads are the runtime's
** (runtime/vecenv.c, runtime/pool.c); this file converts Lua values into
** the vecenv's rows.  Three ways to run the N env copies:
**  - threads = K > 1 (and N > 1): K workers, each owning a private lua_State
**    holding a contiguous block of copies (worker w is the vecenv's block
**    w, copies [w·N/K, (w+1)·N/K)), run at once on the vecenv's pool.
**    (K = min(threads, N); threads = 1 is the same as threads = 0.)
**  - threads = 0 or 1 (or N = 1): one private lua_State with every copy, stepped
**    in the calling thread.
**  - an inline env (source is a table in the caller's state): the copies
**    live in the caller's own state and run there, no private state.
** Env i is always seeded with seed + i, and copies never share state, so a
** trajectory does not depend on which thread or how many threads run it.
**
** The worker states (sandbox, budget, memory cap, env loading and the
** conversion of env calls) are env_worker.c's, shared with LuaJIT.
**
** Hot reload (VecEnv:reload): each worker state loads the file afresh and
** builds replacement copies; if any fails, nothing changes and the message
** is returned.  Otherwise each copy is swapped for its replacement at its
** next episode boundary (an auto-reset, or reset()), and then reset with
** seed + i + reloads·1000003 unless reset() gave seeds.

*/
#include <limits.h>
#include <math.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "env_worker.h"
#include "l_module.h"
#include "l_tensor.h"
#include "lualib.h"
#include "moonrl.h"
#include "vecenv_lua.h"

#define VL_VECENV "moonrl.VecEnv"
#define VL_ROLLOUT "moonrl.Rollout"

/* ------------------------------------------------------------ VecEnv */

typedef struct vl_box {
  mrl_vecenv *v;     /* NULL when closed: the slot views check */
  vl_pool *pool;     /* owned by v */
  uint64_t seed;
  int64_t resets;
  int has_reset;
} vl_box;

/* User values of a VecEnv: the spaces, then the views step() returns,
** made once (they are live views of the engine's buffers, so the same
** objects serve every step and stepping allocates nothing). */
enum { VL_UV_OSPACE = 1, VL_UV_ASPACE, VL_UV_OBS, VL_UV_REW, VL_UV_TERM,
       VL_UV_TRUNC, VL_UV_FINAL, VL_UV_MASKS, VL_NUV = VL_UV_MASKS };

static vl_box *vl_checkvec(lua_State *L) {
  vl_box *b = mrlL_checkself(L, VL_VECENV);
  if (!b->v) luaL_error(L, "attempt to use a closed " VL_VECENV);
  b->pool->callerL = L;
  return b;
}

static int vl_close_box(lua_State *L, vl_box *b) {
  if (b->v) {
    b->pool->callerL = L;
    mrl_vecenv_free(b->v);
    b->v = NULL;
    b->pool = NULL;
  }
  return 0;
}

static int vl_gc(lua_State *L) {
  vl_box *b = lua_touserdata(L, 1);
  return vl_close_box(L, b);
}

static int vl_close(lua_State *L) {
  vl_box *b = mrlL_checkself(L, VL_VECENV);
  return vl_close_box(L, b);
}

/* Raises the engine's message: an env failure is reported as the env said
** it ("env 'X' copy i: …"), anything else with the vecenv's prefix. */
static int vl_raise(lua_State *L, vl_box *b, int st, const char *what) {
  if (st == MRL_EENV) return luaL_error(L, "%s", b->pool->err);
  (void)what;  /* the vecenv's message already names the call */
  return luaL_error(L, "%s", mrl_vecenv_error(b->v));
}

static void vl_make_views(lua_State *L, vl_box *b, int self);

static int vl_new(lua_State *L) {
  luaL_checktype(L, 1, LUA_TTABLE);
  lua_settop(L, 1);
  lua_getfield(L, 1, "source");  /* 2 */
  int inline_env = lua_istable(L, 2);
  if (!inline_env && !lua_isstring(L, 2))
    return luaL_error(L, "vecenv: field 'source' must be an env id, a path to "
                         "an env .lua file, or an env table");
  lua_getfield(L, 1, "config");  /* 3 */
  if (!lua_isnil(L, 3) && !lua_istable(L, 3))
    return luaL_error(L, "vecenv: field 'config' must be a table");
  int n = (int)mrlL_optintfield(L, 1, "num_envs", 1, 1, 65536);
  int threads = (int)mrlL_optintfield(L, 1, "threads", 0, 0, 256);
  lua_Integer seed = mrlL_optintfield(L, 1, "seed", 0, LUA_MININTEGER, LUA_MAXINTEGER);
  lua_Integer budget = mrlL_optintfield(L, 1, "budget", 0, 0, INT_MAX);
  lua_Integer memory = mrlL_optintfield(L, 1, "memory", 0, 0, LUA_MAXINTEGER);
  lua_getfield(L, 1, "trusted");
  int trusted = lua_toboolean(L, -1);
  lua_pop(L, 1);
  lua_getfield(L, 1, "masks");  /* false: ignore an env's action_mask */
  int no_masks = lua_isboolean(L, -1) && !lua_toboolean(L, -1);
  lua_pop(L, 1);
  lua_getfield(L, 1, "max_episode_steps");  /* 4 */
  lua_Integer max_steps = -1;               /* the env's own */
  if (lua_isboolean(L, 4) && !lua_toboolean(L, 4)) max_steps = 0;
  else if (!lua_isnil(L, 4)) max_steps = mrlL_optintfield(L, 1, "max_episode_steps", 0, 0, LUA_MAXINTEGER);
  lua_getfield(L, 1, "env_path");           /* 5 */
  if (!lua_isnil(L, 5) && !lua_isstring(L, 5))
    return luaL_error(L, "vecenv: field 'env_path' must be a string");
  const char *env_path = lua_tostring(L, 5);
  lua_getglobal(L, "package");              /* 6 */
  lua_getfield(L, 6, "path");               /* 7 */
  const char *path = lua_isstring(L, 7) ? lua_tostring(L, 7) : "./?.lua";
  if (inline_env) threads = 0;
  if (inline_env && memory > 0)
    return luaL_error(L, "vecenv: a memory cap needs an env file (an inline env "
                         "runs in the caller's own Lua state)");
  lua_getglobal(L, "package");              /* 8: the caller's cpath */
  lua_getfield(L, -1, "cpath");
  lua_replace(L, -2);
  const char *cpath = trusted && lua_isstring(L, -1) ? lua_tostring(L, -1) : NULL;

  vl_box *b = lua_newuserdatauv(L, sizeof *b, VL_NUV);  /* 9 */
  memset(b, 0, sizeof *b);
  luaL_setmetatable(L, VL_VECENV);
  int ud = lua_gettop(L);
  b->seed = (uint64_t)seed;
  mrlW_opts o = {n, threads, trusted, budget, max_steps, (size_t)memory, (uint64_t)seed,
                 env_path, path, cpath, no_masks};
  char msg[600];
  b->v = mrlW_make(L, 2, lua_istable(L, 3) ? 3 : 0, &o, &b->pool, msg, sizeof msg);
  if (!b->v) return luaL_error(L, "%s", msg);
  vl_pool *p = b->pool;
  lua_setiuservalue(L, ud, VL_UV_ASPACE);  /* the spaces, for action_space() etc. */
  lua_setiuservalue(L, ud, VL_UV_OSPACE);
  if (p->file) {
    /* what reload(true) compares with */
    struct stat sb;
    if (stat(p->file, &sb) == 0) {
      p->file_mtime = (int64_t)sb.st_mtim.tv_sec * 1000000000 + sb.st_mtim.tv_nsec;
      p->file_size = (int64_t)sb.st_size;
    }
  }
  vl_make_views(L, b, ud);
  lua_settop(L, ud);
  return 1;
}

static void vl_make_views(lua_State *L, vl_box *b, int self) {
  const mrl_env_desc *d = mrl_vecenv_desc(b->v);
  int shape[2] = {d->num_envs, d->obs_dim};
  void *const *slot = (void *const *)&b->v;
  float *bufs[5] = {(float *)mrl_vecenv_obs(b->v), (float *)mrl_vecenv_rewards(b->v),
                    b->pool->term_f, b->pool->trunc_f,
                    (float *)mrl_vecenv_final_obs(b->v)};
  for (int k = 0; k < 5; k++) {
    int ndim = (k == 0 || k == 4) ? 2 : 1;
    mrlL_pushview(L, self, slot, VL_VECENV, bufs[k], ndim, shape);
    lua_setiuservalue(L, self, VL_UV_OBS + k);
  }
  if (d->mask_width) {  /* [N][K] the env's action masks, 1 = valid */
    int mshape[2] = {d->num_envs, d->mask_width};
    mrlL_pushview(L, self, slot, VL_VECENV, (float *)mrl_vecenv_masks(b->v), 2, mshape);
    lua_setiuservalue(L, self, VL_UV_MASKS);
  }
}

/* An inline env's code runs in the caller's state in the middle of reset,
** step and collect: while it runs, the handles those calls use (the
** VecEnv's, and in collect the rollout's, policy's and value net's) read
** as closed to it, so a callback that closes or uses them gets an error
** or a no-op instead of freeing memory under the call.  Each box keeps its
** handle as its first field (l_util.h). */
typedef struct vl_hidden {
  void **slot[4];
  void *h[4];
  int n;
} vl_hidden;

static void vl_hide(vl_hidden *hd, void *box) {
  void **slot = box;
  hd->slot[hd->n] = slot;
  hd->h[hd->n++] = *slot;
  *slot = NULL;
}

static void vl_unhide(vl_hidden *hd) {
  while (hd->n > 0) {
    hd->n--;
    *hd->slot[hd->n] = hd->h[hd->n];
  }
}

/* Pushes the cached views from user value first to last. */
static void vl_push_views(lua_State *L, int self, int first, int last) {
  for (int k = first; k <= last; k++) lua_getiuservalue(L, self, k);
}

static int vl_reset(lua_State *L) {
  vl_box *b = vl_checkvec(L);
  uint64_t seed;
  if (lua_isnoneornil(L, 2)) {
    /* Fresh but reproducible episodes on every seedless reset. */
    seed = b->seed + (uint64_t)b->resets * (uint64_t)b->pool->n;
  } else {
    seed = (uint64_t)luaL_checkinteger(L, 2);
  }
  mrl_vecenv *v = b->v;
  vl_hidden hd = {0};
  if (b->pool->inline_env) vl_hide(&hd, b);
  int st = mrl_vecenv_reset(v, seed);
  vl_unhide(&hd);
  if (st != MRL_OK) return vl_raise(L, b, st, "reset");
  b->resets++;
  b->has_reset = 1;
  memset(b->pool->term_f, 0, (size_t)b->pool->n * sizeof(float));
  memset(b->pool->trunc_f, 0, (size_t)b->pool->n * sizeof(float));
  vl_push_views(L, 1, VL_UV_OBS, VL_UV_OBS);
  return 1;
}

static int vl_step(lua_State *L) {
  vl_box *b = vl_checkvec(L);
  if (!b->has_reset) return luaL_error(L, "step: call reset() first");
  vl_pool *p = b->pool;
  const float *a = mrlW_fast_actions(L, 2, p);
  if (!a) a = mrlL_checkactions(L, 2, p->kind, p->action_n, p->n);
  mrl_vecenv *v = b->v;
  vl_hidden hd = {0};
  if (p->inline_env) vl_hide(&hd, b);
  int st = mrl_vecenv_step(v, a);
  vl_unhide(&hd);
  if (st != MRL_OK) return vl_raise(L, b, st, "step");
  mrlW_flag_mirrors(b->pool, b->v);
  vl_push_views(L, 1, VL_UV_OBS, VL_UV_TRUNC);
  return 4;
}

/* The envs' action masks for the current observations ([N][K] view, 1 =
** valid), nil when the env gives none. */
static int vl_masks(lua_State *L) {
  vl_checkvec(L);
  lua_getiuservalue(L, 1, VL_UV_MASKS);
  return 1;
}

static int vl_final_obs(lua_State *L) {
  vl_checkvec(L);
  vl_push_views(L, 1, VL_UV_FINAL, VL_UV_FINAL);
  return 1;
}

static int vl_episodes(lua_State *L) {
  vl_box *b = vl_checkvec(L);
  double ret[64];
  int64_t len[64];
  int k, total = 0;
  lua_newtable(L);
  while ((k = mrl_vecenv_drain_episodes(b->v, ret, len, 64)) > 0) {
    for (int j = 0; j < k; j++) {
      lua_createtable(L, 0, 2);
      lua_pushnumber(L, ret[j]);
      lua_setfield(L, -2, "return");
      lua_pushinteger(L, (lua_Integer)len[j]);
      lua_setfield(L, -2, "length");
      lua_rawseti(L, -2, ++total);
    }
  }
  return 1;
}

static int vl_total_steps(lua_State *L) {
  vl_box *b = vl_checkvec(L);
  lua_pushinteger(L, (lua_Integer)mrl_vecenv_total_steps(b->v));
  return 1;
}

static int vl_num_envs(lua_State *L) {
  lua_pushinteger(L, vl_checkvec(L)->pool->n);
  return 1;
}

static int vl_obs_dim(lua_State *L) {
  lua_pushinteger(L, vl_checkvec(L)->pool->obs_dim);
  return 1;
}

static int vl_threads(lua_State *L) {
  vl_pool *p = vl_checkvec(L)->pool;
  lua_pushinteger(L, p->nworkers > 1 ? p->nworkers : 0);
  return 1;
}

static int vl_max_episode_steps(lua_State *L) {
  lua_pushinteger(L, (lua_Integer)vl_checkvec(L)->pool->max_steps);
  return 1;
}

static int vl_space(lua_State *L, int which) {
  vl_checkvec(L);
  lua_getiuservalue(L, 1, which);  /* VL_UV_OSPACE or VL_UV_ASPACE */
  /* A copy, so a caller editing it cannot desynchronise the engine. */
  char err[100];
  if (mrlW_xcopy(L, -1, L, 0, "space", err, sizeof err) != 0)
    return luaL_error(L, "%s", err);
  return 1;
}
static int vl_observation_space(lua_State *L) { return vl_space(L, 1); }
static int vl_action_space(lua_State *L) { return vl_space(L, 2); }

static int vl_tostring(lua_State *L) {
  vl_box *b = lua_touserdata(L, 1);
  if (!b->v) {
    lua_pushliteral(L, VL_VECENV " (closed)");
  } else {
    vl_pool *p = b->pool;
    lua_pushfstring(L, VL_VECENV " (%s, %d envs, %s)", p->name, p->n,
                    p->inline_env ? "inline"
                    : p->nworkers > 1 ? lua_pushfstring(L, "%d threads", p->nworkers)
                                  : "calling thread");
  }
  return 1;
}

/* env:reload([only_if_changed]) → true (reloaded: each copy switches at
** its next episode boundary) | false (only_if_changed and the file's mtime
** and size are as at the last load) | nil, message (the file failed to load
** or does not fit; the running code stays).  Runs in the calling thread
** between batches, when no worker touches its state. */
static int vl_reload(lua_State *L) {
  vl_box *b = vl_checkvec(L);
  vl_pool *p = b->pool;
  int if_changed = lua_toboolean(L, 2);
  if (p->inline_env)
    return luaL_error(L, "reload: an inline env (a Lua table) has no file to reload");
  struct stat sb;
  if (!p->file || stat(p->file, &sb) != 0) {
    lua_pushnil(L);
    lua_pushfstring(L, "reload: env file %s cannot be read", p->file ? p->file : p->source);
    return 2;
  }
  int64_t mt = (int64_t)sb.st_mtim.tv_sec * 1000000000 + sb.st_mtim.tv_nsec;
  if (if_changed && mt == p->file_mtime && (int64_t)sb.st_size == p->file_size) {
    lua_pushboolean(L, 0);
    return 1;
  }
  /* A failed load is not retried until the file changes again. */
  p->file_mtime = mt;
  p->file_size = (int64_t)sb.st_size;
  char msg[600];
  int failed = -1;
  for (int k = 0; k < p->nworkers && failed < 0; k++) {
    vl_worker *w = &p->w[k];
    if (!w->swap) {
      w->swap = calloc((size_t)w->count, 1);
      if (!w->swap) {
        snprintf(msg, sizeof msg, "reload: out of memory");
        failed = k;
        break;
      }
    }
    lua_State *W = w->L;
    w->new_ref = LUA_NOREF;
    w->mem_hit = 0;
    lua_pushcfunction(W, mrlW_reload_load);
    lua_pushlightuserdata(W, w);
    if (lua_pcall(W, 1, 0, 0) != LUA_OK) {
      mrlW_fail_msg(w, W, msg, sizeof msg);
      lua_sethook(W, NULL, 0, 0);
      failed = k;
    }
  }
  if (failed >= 0) {
    for (int k = 0; k < p->nworkers; k++) {
      vl_worker *w = &p->w[k];
      if (w->new_ref != LUA_NOREF) luaL_unref(w->L, LUA_REGISTRYINDEX, w->new_ref);
      w->new_ref = LUA_NOREF;
    }
    lua_pushnil(L);
    lua_pushstring(L, msg);
    return 2;
  }
  for (int k = 0; k < p->nworkers; k++) {
    vl_worker *w = &p->w[k];
    if (w->pending_ref != LUA_NOREF) luaL_unref(w->L, LUA_REGISTRYINDEX, w->pending_ref);
    w->pending_ref = w->new_ref;
    w->new_ref = LUA_NOREF;
    memset(w->swap, 1, (size_t)w->count);
    w->nswap = w->count;
  }
  p->reloads++;
  lua_pushboolean(L, 1);
  return 1;
}

/* env:memory() → bytes held by the private worker states (0 for an inline
** env), and the cap per state (0 = none). */
static int vl_memory(lua_State *L) {
  vl_pool *p = vl_checkvec(L)->pool;
  lua_pushinteger(L, (lua_Integer)mrlW_memory(p));
  lua_pushinteger(L, (lua_Integer)p->mem_cap);
  return 2;
}

/* env:reloads() → how many reloads succeeded */
static int vl_reloads(lua_State *L) {
  lua_pushinteger(L, vl_checkvec(L)->pool->reloads);
  return 1;
}

/* ------------------------------------------------------------ Rollout */

typedef struct ro_box {
  mrl_rollout *r;  /* NULL when closed */
  int obs_dim, width;
} ro_box;

static ro_box *ro_check(lua_State *L, int idx) {
  ro_box *b = mrlL_testudata(L, idx, VL_ROLLOUT);
  if (!b) mrlL_typeerror(L, idx, VL_ROLLOUT);
  if (!b->r) luaL_error(L, "attempt to use a closed " VL_ROLLOUT);
  return b;
}

static int ro_new(lua_State *L) {
  luaL_checktype(L, 1, LUA_TTABLE);
  int steps = (int)mrlL_optintfield(L, 1, "steps", 0, 1, MRL_MAX_BATCH);
  int n = (int)mrlL_optintfield(L, 1, "num_envs", 0, 1, MRL_MAX_BATCH);
  int od = (int)mrlL_optintfield(L, 1, "obs_dim", 0, 1, MRL_MAX_WIDTH);
  int aw = (int)mrlL_optintfield(L, 1, "action_width", 1, 1, MRL_MAX_WIDTH);
  if (steps == 0 || n == 0 || od == 0)
    return luaL_error(L, "rollout: fields 'steps', 'num_envs' and 'obs_dim' are required");
  if ((int64_t)steps * n > MRL_MAX_BATCH)
    return luaL_error(L, "rollout: steps × num_envs = %I exceeds %d",
                      (LUAI_UACINT)((int64_t)steps * n), (int)MRL_MAX_BATCH);
  ro_box *b = lua_newuserdatauv(L, sizeof *b, 0);
  b->r = NULL;
  b->obs_dim = od;
  b->width = aw;
  luaL_setmetatable(L, VL_ROLLOUT);
  int st = mrl_rollout_new(&b->r, steps, n, od, aw);
  if (st != MRL_OK) return luaL_error(L, "rollout: %s", mrl_status_string(st));
  return 1;
}

static int ro_close(lua_State *L) {
  ro_box *b = luaL_checkudata(L, 1, VL_ROLLOUT);
  mrl_rollout_free(b->r);
  b->r = NULL;
  return 0;
}

static const char *const ro_names[] = {"obs", "actions", "rewards", "logp",
                                       "values", "next_values", "advantages",
                                       "returns", "terminated", "truncated",
                                       NULL};

/* Float fields are live views [T][N] (obs, actions: [T][N][dim]); the flags
** are uint8 in the buffer, so they come out as float 0/1 copies. */
static int ro_field(lua_State *L) {
  ro_box *b = ro_check(L, 1);
  int f = luaL_checkoption(L, 2, NULL, ro_names);
  mrl_rollout *r = b->r;
  int T = mrl_rollout_steps(r), n = mrl_rollout_num_envs(r);
  if (f >= 8) {
    const uint8_t *src = f == 8 ? mrl_rollout_terminated(r) : mrl_rollout_truncated(r);
    int shape[2] = {T, n};
    mrlL_tensor *t = mrlL_newtensor(L, 2, shape);
    mrl_floats_from_flags(src, t->numel, t->data);
    return 1;
  }
  int shape[3] = {T, n, f == 0 ? b->obs_dim : b->width};
  int ndim = f <= 1 ? 3 : 2;
  mrlL_pushview(L, 1, (void *const *)&b->r, VL_ROLLOUT,
                mrl_rollout_field_ptr(r, (mrl_rollout_field)f), ndim, shape);
  return 1;
}

/* The invalid-action masks [T][N][K] the actions were drawn under (a live
** view), nil when the rollout has none. */
static int ro_masks(lua_State *L) {
  ro_box *b = ro_check(L, 1);
  int k = mrl_rollout_mask_width(b->r);
  if (k == 0) return 0;
  int shape[3] = {mrl_rollout_steps(b->r), mrl_rollout_num_envs(b->r), k};
  mrlL_pushview(L, 1, (void *const *)&b->r, VL_ROLLOUT, mrl_rollout_masks(b->r), 3, shape);
  return 1;
}

static int ro_gae(lua_State *L) {
  ro_box *b = ro_check(L, 1);
  double gamma = luaL_checknumber(L, 2), lambda = luaL_checknumber(L, 3);
  int st = mrl_rollout_gae(b->r, gamma, lambda);
  if (st != MRL_OK) return luaL_error(L, "%s", mrl_rollout_error(b->r));
  lua_settop(L, 1);
  return 1;
}

static int ro_steps(lua_State *L) {
  lua_pushinteger(L, mrl_rollout_steps(ro_check(L, 1)->r));
  return 1;
}

static int ro_num_envs(lua_State *L) {
  lua_pushinteger(L, mrl_rollout_num_envs(ro_check(L, 1)->r));
  return 1;
}

static int ro_tostring(lua_State *L) {
  ro_box *b = luaL_checkudata(L, 1, VL_ROLLOUT);
  if (!b->r) lua_pushliteral(L, VL_ROLLOUT " (closed)");
  else lua_pushfstring(L, VL_ROLLOUT " (%d steps × %d envs)",
                       mrl_rollout_steps(b->r), mrl_rollout_num_envs(b->r));
  return 1;
}

/* ------------------------------------------------------------ collect */

static int vl_collect(lua_State *L) {
  vl_box *b = vl_checkvec(L);
  ro_box *rb = ro_check(L, 2);
  mrl_policy *pol = mrlL_checkpolicy(L, 3);
  mrl_net *val = lua_isnoneornil(L, 4) ? NULL : mrlL_checknet(L, 4);
  if (!b->has_reset) return luaL_error(L, "collect: call reset() first");
  mrl_vecenv *v = b->v;
  mrl_rollout *r = rb->r;
  vl_hidden hd = {0};
  if (b->pool->inline_env) {
    vl_hide(&hd, b);
    vl_hide(&hd, rb);
    vl_hide(&hd, lua_touserdata(L, 3));
    if (val) vl_hide(&hd, lua_touserdata(L, 4));
  }
  int st = mrl_rollout_collect(r, v, pol, val);
  vl_unhide(&hd);
  if (st == MRL_EENV) return luaL_error(L, "%s", b->pool->err);
  if (st != MRL_OK) return luaL_error(L, "%s", mrl_rollout_error(rb->r));
  mrlW_flag_mirrors(b->pool, b->v);
  lua_settop(L, 2);
  return 1;
}

/* -------------------------------------------------------------- open */

int mrl_lua_open_vecenv(lua_State *L) {
  static const luaL_Reg vmethods[] = {
    {"reset", vl_reset},
    {"step", vl_step},
    {"final_obs", vl_final_obs},
    {"masks", vl_masks},
    {"episodes", vl_episodes},
    {"total_steps", vl_total_steps},
    {"num_envs", vl_num_envs},
    {"obs_dim", vl_obs_dim},
    {"threads", vl_threads},
    {"max_episode_steps", vl_max_episode_steps},
    {"action_space", vl_action_space},
    {"observation_space", vl_observation_space},
    {"collect", vl_collect},
    {"reload", vl_reload},
    {"reloads", vl_reloads},
    {"memory", vl_memory},
    {"close", vl_close},
    {NULL, NULL}};
  static const luaL_Reg vmetas[] = {
    {"__gc", vl_gc}, {"__close", vl_gc}, {"__tostring", vl_tostring}, {NULL, NULL}};
  static const luaL_Reg rmethods[] = {
    {"field", ro_field}, {"masks", ro_masks}, {"gae", ro_gae}, {"steps", ro_steps},
    {"num_envs", ro_num_envs}, {"close", ro_close}, {NULL, NULL}};
  static const luaL_Reg rmetas[] = {
    {"__gc", ro_close}, {"__close", ro_close}, {"__tostring", ro_tostring},
    {NULL, NULL}};
  mrlL_newclass(L, VL_VECENV, vmethods, vmetas, NULL);
  mrlL_newclass(L, VL_ROLLOUT, rmethods, rmetas, NULL);
  lua_pushcfunction(L, vl_new);
  lua_setfield(L, -2, "vecenv");
  lua_pushcfunction(L, ro_new);
  lua_setfield(L, -2, "rollout");
  return 0;
}
