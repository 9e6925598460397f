/*
** l_ppo.c — PPO for Lua: core.ppo_update (one call) and core.ppo_begin,
** which returns a moonrl.PpoJob stepped a piece at a time (runtime/ppo.c's
** mrl_ppo_begin / step / end / abort).  A job holds references to every
** object it works on, so none is collected while it lives; a failed step
** has already restored the networks and optimisers and returns nil and the
** message; collecting an unfinished job aborts it (restores).
*/
#include <math.h>
#include <string.h>

#include "l_module.h"
#include "l_ppo.h"
#include "l_reduce.h"
#include "l_tensor.h"

#define MRLL_ROLLOUT "moonrl.Rollout" /* vecenv_lua.c */
#define MRLL_PPOJOB "moonrl.PpoJob"

/* l_ppo.h.  The Rng and the Reducer stay referenced by the table during
** the call. */
void mrlL_ppo_config(lua_State *L, int idx, mrl_ppo_config *c, int bg) {
  *c = mrl_ppo_config_default();
  if (lua_isnoneornil(L, idx)) return;
  luaL_checktype(L, idx, LUA_TTABLE);
  mrlL_readopts(L, idx, MRL_OPTS_PPO_CONFIG, c);
  if (lua_getfield(L, idx, "reduce") != LUA_TNIL) {
    mrlL_reducer *r = (mrlL_reducer *)luaL_testudata(L, -1, MRLL_REDUCER);
    if (bg) luaL_error(L, "bad field 'reduce' (a reduce hook cannot run on the background thread)");
    if (r == NULL || r->fn == NULL)
      luaL_error(L, "bad field 'reduce' (%s expected, got %s)", MRLL_REDUCER,
                 luaL_typename(L, -1));
    c->reduce = r->fn;
    c->reduce_ud = r->ud;
  }
  lua_pop(L, 1);
  if (bg) return;
  mrlL_readopts(L, idx, MRL_OPTS_PPO_KL, c);
  if (lua_getfield(L, idx, "rng") != LUA_TNIL) {
    if (luaL_testudata(L, -1, MRLL_RNG) == NULL)
      luaL_error(L, "bad field 'rng' (%s expected, got %s)", MRLL_RNG, luaL_typename(L, -1));
    c->rng = mrlL_checkrng(L, lua_gettop(L));
  }
  lua_pop(L, 1);
}

static void setnum(lua_State *L, const char *k, double v) {
  lua_pushnumber(L, v);
  lua_setfield(L, -2, k);
}

void mrlL_ppo_report(lua_State *L, const mrl_ppo_report *r, int kl) {
  lua_createtable(L, 0, 12);
  setnum(L, "policy_loss", r->policy_loss);
  setnum(L, "value_loss", r->value_loss);
  setnum(L, "entropy", r->entropy);
  setnum(L, "approx_kl", r->approx_kl);
  setnum(L, "clip_fraction", r->clip_fraction);
  setnum(L, "explained_variance", r->explained_variance);
  setnum(L, "grad_norm", r->grad_norm);
  lua_pushinteger(L, r->epochs_done);
  lua_setfield(L, -2, "epochs_done");
  lua_pushinteger(L, r->minibatches);
  lua_setfield(L, -2, "minibatches");
  lua_pushboolean(L, r->stopped_early);
  lua_setfield(L, -2, "stopped_early");
  if (kl) setnum(L, "kl_beta", r->kl_beta);
}

typedef struct args {
  mrl_policy *p;
  mrl_net *v;
  mrl_optim *po, *vo;
  mrl_rollout *ro;
} args;

static void checkargs(lua_State *L, args *a) {
  a->p = mrlL_checkpolicy(L, 1);
  a->v = mrlL_checknet(L, 2);
  a->po = mrlL_checkoptim(L, 3);
  a->vo = mrlL_checkoptim(L, 4);
  a->ro = (mrl_rollout *)mrlL_checkhandle(L, 5, MRLL_ROLLOUT);
}

/* core.ppo_update(policy, value, policy_opt, value_opt, rollout, [config])
** → {policy_loss, value_loss, entropy, approx_kl, clip_fraction,
**    explained_variance, grad_norm, epochs_done, minibatches, stopped_early,
**    [kl_beta]} */
static int l_ppo_update(lua_State *L) {
  mrl_ppo_config c;
  mrl_ppo_report r;
  args a;
  char err[256];
  lua_settop(L, 6);
  checkargs(L, &a);
  mrlL_ppo_config(L, 6, &c, 0);
  err[0] = '\0';
  int st = mrl_ppo_update(a.p, a.v, a.po, a.vo, a.ro, &c, &r, err, sizeof err);
  if (st != MRL_OK) return luaL_error(L, "ppo_update: %s", err[0] ? err : mrl_status_string(st));
  mrlL_ppo_report(L, &r, c.kl_beta > 0);
  return 1;
}

/* ------------------------------------------------------------ PpoJob */

typedef struct jobbox {
  mrl_ppo_job *job;          /* first field, NULL once ended (see l_util.h) */
  int kl;
} jobbox;

static jobbox *checkjob(lua_State *L) {
  jobbox *b = (jobbox *)mrlL_checkself(L, MRLL_PPOJOB);
  if (b->job == NULL) luaL_error(L, "attempt to use a finished moonrl.PpoJob");
  return b;
}

/* The first of the job's objects (user value 1, a table {policy, value,
** popt, vopt, rollout, config}) that is closed, a closed one being freed
** memory: its index, or -1 when all are open. */
static int firstclosed(lua_State *L) {
  int closed = lua_getiuservalue(L, 1, 1) == LUA_TTABLE ? -1 : 0;
  for (int i = 0; closed < 0 && i < 5; i++) {
    lua_rawgeti(L, -1, i + 1);
    void **h = (void **)lua_touserdata(L, -1);
    if (h == NULL || *h == NULL) closed = i;
    lua_pop(L, 1);
  }
  lua_pop(L, 1);
  return closed;
}

static void checkalive(lua_State *L) {
  static const char *const names[] = {MRLL_POLICY, MRLL_NET, MRLL_OPTIM, MRLL_OPTIM, MRLL_ROLLOUT};
  int i = firstclosed(L);
  if (i >= 0) luaL_error(L, "ppo job: its %s was closed while the update ran", names[i]);
}

/* core.ppo_begin(policy, value, policy_opt, value_opt, rollout, [config])
** → moonrl.PpoJob */
static int l_ppo_begin(lua_State *L) {
  mrl_ppo_config c;
  args a;
  char err[256];
  lua_settop(L, 6);
  checkargs(L, &a);
  mrlL_ppo_config(L, 6, &c, 0);
  jobbox *b = (jobbox *)lua_newuserdatauv(L, sizeof *b, 1);
  b->job = NULL;
  b->kl = c.kl_beta > 0;
  luaL_setmetatable(L, MRLL_PPOJOB);
  lua_createtable(L, 6, 0);
  for (int i = 1; i <= 6; i++) {
    lua_pushvalue(L, i);
    lua_rawseti(L, -2, i);
  }
  lua_setiuservalue(L, -2, 1);
  err[0] = '\0';
  int st = mrl_ppo_begin(&b->job, a.p, a.v, a.po, a.vo, a.ro, &c, err, sizeof err);
  if (st != MRL_OK) return luaL_error(L, "ppo_begin: %s", err[0] ? err : mrl_status_string(st));
  return 1;
}

/* job:step([max_minibatches], [max_seconds]) → done, or nil, message when
** the update failed (everything is restored; the job is then finished). */
static int l_job_step(lua_State *L) {
  jobbox *b = checkjob(L);
  lua_Integer k = luaL_optinteger(L, 2, 0);
  double secs = luaL_optnumber(L, 3, 0);
  if (k < 0 || k > 1000000000) return luaL_argerror(L, 2, "minibatches >= 0 expected");
  if (!(secs >= 0) || isinf(secs)) return luaL_argerror(L, 3, "seconds >= 0 expected");
  checkalive(L);
  int done = 0;
  int st = mrl_ppo_step(b->job, (int)k, secs, &done);
  if (st != MRL_OK) {
    lua_pushnil(L);
    lua_pushstring(L, mrl_ppo_job_error(b->job));
    mrl_ppo_abort(b->job);
    b->job = NULL;
    return 2;
  }
  lua_pushboolean(L, done);
  return 1;
}

/* job:finish() → report: runs what is left and ends the job; nil, message
** when that fails (restored). */
static int l_job_finish(lua_State *L) {
  jobbox *b = checkjob(L);
  checkalive(L);
  mrl_ppo_report r;
  char err[256];
  err[0] = '\0';
  int st = mrl_ppo_end(b->job, &r, err, sizeof err);
  b->job = NULL;
  if (st != MRL_OK) {
    lua_pushnil(L);
    lua_pushstring(L, err[0] ? err : mrl_status_string(st));
    return 2;
  }
  mrlL_ppo_report(L, &r, b->kl);
  return 1;
}

/* job:abort(): restores the networks and optimisers as they were at begin;
** a no-op on a finished job. */
static int l_job_abort(lua_State *L) {
  jobbox *b = (jobbox *)mrlL_checkself(L, MRLL_PPOJOB);
  if (b->job) {
    checkalive(L);
    mrl_ppo_abort(b->job);
    b->job = NULL;
  }
  return 0;
}

/* job:progress() → epoch (begun), minibatches (done), finished */
static int l_job_progress(lua_State *L) {
  jobbox *b = checkjob(L);
  int epoch, nmb, fin;
  mrl_ppo_job_progress(b->job, &epoch, &nmb, &fin);
  lua_pushinteger(L, epoch);
  lua_pushinteger(L, nmb);
  lua_pushboolean(L, fin);
  return 3;
}

static int l_job_gc(lua_State *L) {
  jobbox *b = (jobbox *)lua_touserdata(L, 1);
  if (b && b->job) {
    /* abort only while every object is open (a closed one is freed) */
    if (firstclosed(L) < 0) mrl_ppo_abort(b->job);
    else mrl_ppo_discard(b->job);
    b->job = NULL;
  }
  return 0;
}

static int l_job_tostring(lua_State *L) {
  jobbox *b = (jobbox *)mrlL_checkself(L, MRLL_PPOJOB);
  if (!b->job) {
    lua_pushliteral(L, "moonrl.PpoJob (finished)");
    return 1;
  }
  int epoch, nmb, fin;
  mrl_ppo_job_progress(b->job, &epoch, &nmb, &fin);
  lua_pushfstring(L, "moonrl.PpoJob (epoch %d, %d minibatches%s)", epoch, nmb,
                  fin ? ", finished" : "");
  return 1;
}

int mrlL_open_ppo(lua_State *L) {
  static const luaL_Reg methods[] = {
    {"step", l_job_step}, {"finish", l_job_finish}, {"abort", l_job_abort},
    {"progress", l_job_progress}, {NULL, NULL}};
  static const luaL_Reg metas[] = {
    {"__gc", l_job_gc}, {"__tostring", l_job_tostring}, {NULL, NULL}};
  mrlL_newclass(L, MRLL_PPOJOB, methods, metas, NULL);
  lua_pushcfunction(L, l_ppo_update);
  lua_setfield(L, -2, "ppo_update");
  lua_pushcfunction(L, l_ppo_begin);
  lua_setfield(L, -2, "ppo_begin");
  return 0;
}
