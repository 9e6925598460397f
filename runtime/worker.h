/*
** worker.h — internal: one helper thread that runs one function call at a
** time and sleeps between them.  A PPO update hands its value-network side
** to a second core; starting a thread for each update cost 35 µs (create
** and join on these machines), about 4 % of a CleanRL-config run, so the
** thread is kept, parked on a condition variable, by the object that
** updates (a policy) and joined when that object is freed.
**
** One owner drives it, from one thread at a time: worker_run, then
** worker_wait before the next worker_run or worker_free.
*/
#ifndef MRL_WORKER_H
#define MRL_WORKER_H

typedef struct worker worker;

/* A parked thread, or NULL (no memory, or the OS refused a thread). */
worker *worker_new(void);
/* Starts fn(arg) on the worker's thread; returns at once. */
void worker_run(worker *w, void (*fn)(void *), void *arg);
/* Returns once the call started by worker_run has returned. */
void worker_wait(worker *w);
/* 1 when the call started by worker_run has returned (or none was
** started), 0 while it runs; never waits for it.  worker_wait is still
** due before the next worker_run (it then returns at once). */
int worker_done(worker *w);
/* Stops and joins the thread (after worker_wait); NULL is a no-op. */
void worker_free(worker *w);

#endif
