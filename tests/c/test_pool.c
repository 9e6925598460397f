/*
** test_pool.c — the runtime's thread pool (runtime/pool.h): every task of
** a run runs exactly once, whether there are fewer tasks than threads or
** one each (the owner's and every helper's); runs never overlap; helpers
** and the owner both take tasks, with and without the owner's help.  Also
** run under ThreadSanitizer (make tsan).
*/
#include <pthread.h>
#include <stdatomic.h>
#include <stdlib.h>
#include <string.h>

#include "pool.h"
#include "tap.h"

enum { MAX_TASKS = 12, RUNS = 3000 };

typedef struct run_state {
  _Atomic int count[MAX_TASKS];
  _Atomic int running;   /* tasks inside fn right now */
  _Atomic int overlap;   /* a task of a run saw one of another run */
  int run;               /* written by the owner between runs only */
  int seen_run[MAX_TASKS];
  pthread_t owner;
  _Atomic int by_owner, by_helper;
} run_state;

static void task(void *arg, int k) {
  run_state *s = arg;
  atomic_fetch_add(&s->running, 1);
  if (s->seen_run[k] != s->run - 1) atomic_store(&s->overlap, 1);
  s->seen_run[k] = s->run;
  atomic_fetch_add(&s->count[k], 1);
  if (pthread_equal(pthread_self(), s->owner)) atomic_fetch_add(&s->by_owner, 1);
  else atomic_fetch_add(&s->by_helper, 1);
  /* a little uneven work, so claims race */
  volatile double x = 0;
  for (int i = 0; i < (k * 37 + s->run) % 200; i++) x += i;
  atomic_fetch_sub(&s->running, 1);
}

static void check_pool(int nthreads) {
  const int max_tasks = nthreads + 1;
  pool *p = pool_new(nthreads);
  TAP_OK(p != NULL, "pool of %d threads for up to %d tasks", nthreads, max_tasks);
  if (!p) return;
  run_state *s = calloc(1, sizeof *s);
  s->owner = pthread_self();
  for (int k = 0; k < MAX_TASKS; k++) s->seen_run[k] = 0;
  int bad = 0, total = 0;
  for (int r = 1; r <= RUNS; r++) {
    int n = 1 + (r * 7) % max_tasks;  /* every size from 1 to max_tasks */
    s->run = r;
    for (int k = 0; k < MAX_TASKS; k++) {
      atomic_store(&s->count[k], 0);
      if (k >= n) s->seen_run[k] = r;  /* not in this run */
    }
    pool_start(p, task, s, n);
    pool_finish(p, r % 3 != 0);  /* the owner helps in most runs */
    if (atomic_load(&s->running) != 0) bad++;
    for (int k = 0; k < n; k++)
      if (atomic_load(&s->count[k]) != 1) bad++;
    total += n;
  }
  TAP_OK(bad == 0, "%d runs of 1..%d tasks on %d helpers: each task once, all done at finish",
         RUNS, max_tasks, nthreads);
  TAP_OK(atomic_load(&s->overlap) == 0, "no task of one run ran during another");
  TAP_OK(atomic_load(&s->by_owner) + atomic_load(&s->by_helper) == total,
         "every task ran on the owner or a helper (%d)", total);
  TAP_OK(atomic_load(&s->by_helper) > 0, "helpers took tasks (%d)", atomic_load(&s->by_helper));
  TAP_OK(pool_done(p), "pool_done after pool_finish");
  pool_free(p);
  free(s);
}

int main(void) {
  check_pool(1);   /* the vecenv of 2 threads, PPO's value helper */
  check_pool(2);
  check_pool(3);
  TAP_OK(pool_new(0) == NULL, "no pool without a thread");
  return tap_done();
}
