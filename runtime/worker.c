/*
** worker.c — a parked helper thread (see worker.h): a pool of one thread
** (pool.h) whose owner never helps, so every call runs on the helper.
*/
#include "worker.h"

#include <stdlib.h>

#include "pool.h"

struct worker {
  pool *p;
  void (*fn)(void *);  /* the call in flight (one at a time) */
  void *arg;
};

static void run_call(void *arg, int task) {
  (void)task;
  worker *w = arg;
  w->fn(w->arg);
}

worker *worker_new(void) {
  worker *w = calloc(1, sizeof *w);
  if (!w) return NULL;
  w->p = pool_new(1);
  if (!w->p) {
    free(w);
    return NULL;
  }
  return w;
}

void worker_run(worker *w, void (*fn)(void *), void *arg) {
  w->fn = fn;
  w->arg = arg;
  pool_start(w->p, run_call, w, 1);
}

void worker_wait(worker *w) { pool_finish(w->p, 0); }

int worker_done(worker *w) { return pool_done(w->p); }

void worker_free(worker *w) {
  if (!w) return;
  pool_free(w->p);
  free(w);
}
