/*
** pool.h — internal: the runtime's one pool of parked helper threads and
** its one wait protocol.  The owner publishes a run of `ntasks` calls
** fn(arg, 0 … ntasks-1); each thread runs its own task, then claims any
** task left; the owner may run tasks too (help), so a helper the OS has
** not scheduled yet costs about one task's time (and a short grace, see
** pool.c).  Waiting spins briefly
** (the gap between two runs of a rollout is one forward pass), then
** yields, then sleeps on a futex, so a parked pool costs no CPU.
**
** Users: a vecenv's worker blocks (one Lua state per task), and PPO's value
** helper (worker.h, a pool of one thread whose owner never helps).
**
** One owner drives it, from one thread at a time: pool_start, then
** pool_finish before the next pool_start or pool_free.
*/
#ifndef MRL_POOL_H
#define MRL_POOL_H

typedef struct pool pool;

/* nthreads (>= 1) parked helper threads, or NULL (no memory, no thread). */
pool *pool_new(int nthreads);
int pool_threads(const pool *p);
/* Publishes fn(arg, k) for k in [0, ntasks), 1 <= ntasks <= threads + 1;
** returns at once.  Helper h's own task is ntasks − threads + h, the
** owner's are those below (each thread keeps its tasks' data in its cache
** run after run); a task not taken yet is run by whoever is free. */
void pool_start(pool *p, void (*fn)(void *arg, int task), void *arg, int ntasks);
/* Returns once every task of the run has returned; with help, the calling
** thread claims and runs tasks too. */
void pool_finish(pool *p, int help);
/* 1 when every task of the last run has returned (or none was started);
** never waits.  pool_finish is still due before the next pool_start. */
int pool_done(pool *p);
/* Stops and joins the threads (after pool_finish); NULL is a no-op. */
void pool_free(pool *p);

#endif
