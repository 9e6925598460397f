/*
** mpi.c — moonrl.mpi, the MPI glue of the `moonrl` host (MPI=1 builds):
** MPI start and end, the reduction hook of libmoonrl over MPI_Allreduce,
** and a small Lua module:
**
**   local mpi = require "moonrl.mpi"
**   mpi.active()          true once MPI_Init ran (launched by mpirun)
**   mpi.rank(), mpi.size()
**   mpi.allreduce(x, [op])   x: a moonrl.Tensor (in place, returned) or a
**                         table of numbers (a new table); op "sum" (default),
**                         "max" or "min"; tensors are reduced in double
**   mpi.bcast(x, [root])  a tensor (in place), a string or a table of
**                         numbers (returned) from root (0)
**   mpi.barrier()
**   mpi.abort(msg, [code])   prints "[rank r] msg" on stderr, MPI_Abort
**   mpi.reducer           the moonrl.Reducer for core.ppo_update{reduce=},
**                         core.value_fit{reduce=}, core.policy_set_reduce
**   mpi.comm_stats()      {seconds, calls, bytes} spent in reductions and
**                         broadcasts so far; mpi.reset_comm_stats()
**   mpi.wtime()
**   mpi.finalize()        MPI_Finalize now (every rank): a clean end
**
** Without MPI started (a plain run of an MPI build) it is rank 0 of 1 and
** every collective is the identity.  MPI is process-wide, so this file
** keeps process-wide state; libmoonrl itself stays free of it.
*/
#include <mpi.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "l_reduce.h"
#include "l_tensor.h"
#include "lauxlib.h"
#include "moonrl_mpi.h"

static int started, world_rank, world_size = 1;
static double *rbuf;            /* the hook's packing buffer */
static size_t rbuf_cap;
static double comm_seconds;
static long long comm_calls, comm_bytes;

/* --------------------------------------------------------------- start */

static int launched(void) {
  const char *force = getenv("MOONRL_MPI");
  if (force && *force) return atoi(force) != 0;
  static const char *const vars[] = {"OMPI_COMM_WORLD_SIZE", "PMI_SIZE",
                                     "PMIX_RANK", "PMI_RANK", "MPI_LOCALNRANKS",
                                     NULL};
  for (int i = 0; vars[i]; i++)
    if (getenv(vars[i])) return 1;
  return 0;
}

int host_mpi_init(int *argc, char ***argv) {
  if (!launched()) return 0;
  int provided = 0;
  if (MPI_Init_thread(argc, argv, MPI_THREAD_FUNNELED, &provided) != MPI_SUCCESS)
    return 1;
  started = 1;
  MPI_Comm_rank(MPI_COMM_WORLD, &world_rank);
  MPI_Comm_size(MPI_COMM_WORLD, &world_size);
  return 0;
}

int host_mpi_rank(void) { return world_rank; }
int host_mpi_size(void) { return world_size; }

void host_mpi_finish(int status) {
  free(rbuf);
  rbuf = NULL;
  rbuf_cap = 0;
  if (!started) return;
  if (status != 0 && world_size > 1) {
    fflush(stdout);
    fflush(stderr);
    MPI_Abort(MPI_COMM_WORLD, status);
  }
  started = 0;
  MPI_Finalize();
}

/* ------------------------------------------------------------ the hook */

static int reserve(size_t n) {
  if (n <= rbuf_cap) return 1;
  size_t cap = rbuf_cap ? rbuf_cap : 256;
  while (cap < n) cap *= 2;
  double *b = realloc(rbuf, cap * sizeof *b);
  if (!b) return 0;
  rbuf = b;
  rbuf_cap = cap;
  return 1;
}

/* MPI counts are ints: long vectors go in slices. */
static void allreduce_doubles(double *x, size_t n, MPI_Op op) {
  double t0 = MPI_Wtime();
  for (size_t off = 0; off < n;) {
    size_t k = n - off > (size_t)1 << 30 ? (size_t)1 << 30 : n - off;
    MPI_Allreduce(MPI_IN_PLACE, x + off, (int)k, MPI_DOUBLE, op, MPI_COMM_WORLD);
    off += k;
  }
  comm_seconds += MPI_Wtime() - t0;
  comm_calls++;
  comm_bytes += (long long)(n * sizeof(double));
}

/* mrl_reduce_fn: sums data and scalars over the ranks in one
** MPI_Allreduce of doubles (floats widened: sums of float gradients lose
** nothing before they are rounded back).  Every rank gets the same bits:
** each element is reduced by the same operations in the same order. */
static int mpi_reduce(void *ud, float *data, size_t n, double *scalars,
                      int nscalars) {
  (void)ud;
  if (!started || world_size < 2) return MRL_OK;
  size_t total = n + (size_t)(nscalars > 0 ? nscalars : 0);
  if (total == 0) return MRL_OK;
  if (!reserve(total)) return MRL_ENOMEM;
  for (size_t i = 0; i < n; i++) rbuf[i] = data[i];
  for (int i = 0; i < nscalars; i++) rbuf[n + (size_t)i] = scalars[i];
  allreduce_doubles(rbuf, total, MPI_SUM);
  for (size_t i = 0; i < n; i++) data[i] = (float)rbuf[i];
  for (int i = 0; i < nscalars; i++) scalars[i] = rbuf[n + (size_t)i];
  return MRL_OK;
}

/* ---------------------------------------------------------- Lua module */

static int active(void) { return started && world_size > 1; }

static MPI_Op checkop(lua_State *L, int idx) {
  static const char *const names[] = {"sum", "max", "min", NULL};
  static const MPI_Op ops[] = {MPI_SUM, MPI_MAX, MPI_MIN};
  return ops[luaL_checkoption(L, idx, "sum", names)];
}

static int m_active(lua_State *L) {
  lua_pushboolean(L, started);
  return 1;
}

static int m_rank(lua_State *L) {
  lua_pushinteger(L, world_rank);
  return 1;
}

static int m_size(lua_State *L) {
  lua_pushinteger(L, world_size);
  return 1;
}

static int m_wtime(lua_State *L) {
  lua_pushnumber(L, started ? MPI_Wtime() : 0.0);
  return 1;
}

/* A table of numbers → doubles in rbuf; returns the count. */
static size_t table_to_buf(lua_State *L, int idx) {
  size_t n = (size_t)lua_rawlen(L, idx);
  if (!reserve(n ? n : 1)) luaL_error(L, "mpi: out of memory");
  for (size_t i = 0; i < n; i++) {
    lua_rawgeti(L, idx, (lua_Integer)i + 1);
    int ok = 0;
    rbuf[i] = lua_tonumberx(L, -1, &ok);
    if (!ok) luaL_error(L, "bad argument #1 (number expected at [%d])", (int)i + 1);
    lua_pop(L, 1);
  }
  return n;
}

static void buf_to_table(lua_State *L, size_t n) {
  lua_createtable(L, (int)n, 0);
  for (size_t i = 0; i < n; i++) {
    lua_pushnumber(L, rbuf[i]);
    lua_rawseti(L, -2, (lua_Integer)i + 1);
  }
}

static int m_allreduce(lua_State *L) {
  MPI_Op op = checkop(L, 2);
  if (lua_istable(L, 1)) {
    size_t n = table_to_buf(L, 1);
    if (active() && n) allreduce_doubles(rbuf, n, op);
    buf_to_table(L, n);
    return 1;
  }
  mrlL_tensor *t = mrlL_checktensor(L, 1);
  size_t n = t->numel;
  float *d = mrlL_tensordata(L, t);
  if (active() && n) {
    if (!reserve(n)) return luaL_error(L, "mpi.allreduce: out of memory");
    for (size_t i = 0; i < n; i++) rbuf[i] = d[i];
    allreduce_doubles(rbuf, n, op);
    for (size_t i = 0; i < n; i++) d[i] = (float)rbuf[i];
  }
  lua_settop(L, 1);
  return 1;
}

static int m_bcast(lua_State *L) {
  int root = (int)luaL_optinteger(L, 2, 0);
  if (root < 0 || root >= world_size)
    return luaL_argerror(L, 2, "root: not a rank of this job");
  double t0 = active() ? MPI_Wtime() : 0;
  if (lua_type(L, 1) == LUA_TSTRING) {
    size_t len = 0;
    const char *s = lua_tolstring(L, 1, &len);
    if (!active()) { lua_settop(L, 1); return 1; }
    long long n = world_rank == root ? (long long)len : 0;
    MPI_Bcast(&n, 1, MPI_LONG_LONG, root, MPI_COMM_WORLD);
    if (n < 0 || n > 0x7fffffffLL) return luaL_error(L, "mpi.bcast: string too long");
    char *b = world_rank == root ? (char *)s : malloc((size_t)n + 1);
    if (!b) return luaL_error(L, "mpi.bcast: out of memory");
    MPI_Bcast(b, (int)n, MPI_CHAR, root, MPI_COMM_WORLD);
    lua_pushlstring(L, b, (size_t)n);
    if (b != s) free(b);
  } else if (lua_istable(L, 1)) {
    size_t n = table_to_buf(L, 1);
    if (active()) {
      long long cnt = (long long)n;
      MPI_Bcast(&cnt, 1, MPI_LONG_LONG, root, MPI_COMM_WORLD);
      if (!reserve((size_t)cnt ? (size_t)cnt : 1)) return luaL_error(L, "mpi: out of memory");
      n = (size_t)cnt;
      MPI_Bcast(rbuf, (int)n, MPI_DOUBLE, root, MPI_COMM_WORLD);
    }
    buf_to_table(L, n);
  } else {
    mrlL_tensor *t = mrlL_checktensor(L, 1);
    long long n = (long long)t->numel;
    float *d = mrlL_tensordata(L, t);
    if (active()) {
      /* every rank must hold the same size, or the job would hang or corrupt */
      long long mn[2] = {n, -n};
      MPI_Allreduce(MPI_IN_PLACE, mn, 2, MPI_LONG_LONG, MPI_MIN, MPI_COMM_WORLD);
      if (mn[0] != -mn[1])
        return luaL_error(L, "mpi.bcast: tensors of different sizes on different ranks");
      MPI_Bcast(d, (int)n, MPI_FLOAT, root, MPI_COMM_WORLD);
    }
    lua_settop(L, 1);
  }
  if (active()) {
    comm_seconds += MPI_Wtime() - t0;
    comm_calls++;
  }
  return 1;
}

static int m_barrier(lua_State *L) {
  (void)L;
  if (active()) MPI_Barrier(MPI_COMM_WORLD);
  return 0;
}

static int m_abort(lua_State *L) {
  const char *msg = luaL_optstring(L, 1, "aborted");
  int code = (int)luaL_optinteger(L, 2, 1);
  if (world_size > 1)
    fprintf(stderr, "[rank %d] %s\n", world_rank, msg);
  else
    fprintf(stderr, "%s\n", msg);
  fflush(stdout);
  fflush(stderr);
  if (started) MPI_Abort(MPI_COMM_WORLD, code ? code : 1);
  exit(code ? code : 1);
}

/* A clean end of the job (every rank calls it): the host then exits with
** its status without MPI_Abort, e.g. `moonrl train` reporting a target
** that was not reached. */
static int m_finalize(lua_State *L) {
  (void)L;
  if (started) {
    fflush(stdout);
    fflush(stderr);
    started = 0;
    MPI_Finalize();
  }
  return 0;
}

static int m_comm_stats(lua_State *L) {
  lua_createtable(L, 0, 3);
  lua_pushnumber(L, comm_seconds);
  lua_setfield(L, -2, "seconds");
  lua_pushinteger(L, (lua_Integer)comm_calls);
  lua_setfield(L, -2, "calls");
  lua_pushinteger(L, (lua_Integer)comm_bytes);
  lua_setfield(L, -2, "bytes");
  return 1;
}

static int m_reset_comm_stats(lua_State *L) {
  (void)L;
  comm_seconds = 0;
  comm_calls = comm_bytes = 0;
  return 0;
}

static int m_reducer_tostring(lua_State *L) {
  lua_pushfstring(L, "moonrl.Reducer (MPI, rank %d of %d)", world_rank, world_size);
  return 1;
}

static int luaopen_moonrl_mpi(lua_State *L) {
  static const luaL_Reg fns[] = {
      {"active", m_active},   {"rank", m_rank},       {"size", m_size},
      {"wtime", m_wtime},     {"allreduce", m_allreduce}, {"bcast", m_bcast},
      {"barrier", m_barrier}, {"abort", m_abort},     {"comm_stats", m_comm_stats},
      {"reset_comm_stats", m_reset_comm_stats},     {"finalize", m_finalize},
      {NULL, NULL}};
  luaL_newlib(L, fns);
  mrlL_reducer *r = (mrlL_reducer *)lua_newuserdatauv(L, sizeof *r, 0);
  r->fn = mpi_reduce;
  r->ud = NULL;
  if (luaL_newmetatable(L, MRLL_REDUCER)) {
    lua_pushcfunction(L, m_reducer_tostring);
    lua_setfield(L, -2, "__tostring");
  }
  lua_setmetatable(L, -2);
  lua_setfield(L, -2, "reducer");
  return 1;
}

/* os.exit from a script skips the host's end: finish MPI first (abort
** on a failure status), then the original os.exit (upvalue 1). */
static int m_os_exit(lua_State *L) {
  int status;
  if (lua_isboolean(L, 1)) status = lua_toboolean(L, 1) ? 0 : 1;
  else status = (int)luaL_optinteger(L, 1, 0);
  host_mpi_finish(status);
  lua_pushvalue(L, lua_upvalueindex(1));
  lua_insert(L, 1);
  lua_call(L, lua_gettop(L) - 1, 0);
  return 0;
}

void host_mpi_preload(lua_State *L) {
  if (started) {
    lua_getglobal(L, "os");
    lua_getfield(L, -1, "exit");
    lua_pushcclosure(L, m_os_exit, 1);
    lua_setfield(L, -2, "exit");
    lua_pop(L, 1);
  }
  lua_getglobal(L, "package");
  lua_getfield(L, -1, "preload");
  lua_pushcfunction(L, luaopen_moonrl_mpi);
  lua_setfield(L, -2, "moonrl.mpi");
  lua_pop(L, 2);
}
