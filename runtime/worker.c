/*
** worker.c — a parked helper thread (see worker.h).  Calls are counted:
** `posted` goes up when one is handed over, `done` when it has returned;
** the thread sleeps while they are equal.
*/
#include "worker.h"

#include <pthread.h>
#include <stdlib.h>

struct worker {
  pthread_t thread;
  pthread_mutex_t mu;
  pthread_cond_t wake;   /* the thread waits here for a call or quit */
  pthread_cond_t idle;   /* the owner waits here for a call to return */
  void (*fn)(void *);
  void *arg;
  unsigned posted, done;
  int quit;
};

static void *worker_main(void *arg) {
  worker *w = arg;
  pthread_mutex_lock(&w->mu);
  for (;;) {
    while (w->posted == w->done && !w->quit) pthread_cond_wait(&w->wake, &w->mu);
    if (w->posted == w->done) break;  /* quit, nothing pending */
    void (*fn)(void *) = w->fn;
    void *a = w->arg;
    pthread_mutex_unlock(&w->mu);
    fn(a);
    pthread_mutex_lock(&w->mu);
    w->done++;
    pthread_cond_signal(&w->idle);
  }
  pthread_mutex_unlock(&w->mu);
  return NULL;
}

worker *worker_new(void) {
  worker *w = calloc(1, sizeof *w);
  if (!w) return NULL;
  if (pthread_mutex_init(&w->mu, NULL)) goto no_mutex;
  if (pthread_cond_init(&w->wake, NULL)) goto no_wake;
  if (pthread_cond_init(&w->idle, NULL)) goto no_idle;
  if (pthread_create(&w->thread, NULL, worker_main, w) == 0) return w;
  pthread_cond_destroy(&w->idle);
no_idle:
  pthread_cond_destroy(&w->wake);
no_wake:
  pthread_mutex_destroy(&w->mu);
no_mutex:
  free(w);
  return NULL;
}

void worker_run(worker *w, void (*fn)(void *), void *arg) {
  pthread_mutex_lock(&w->mu);
  w->fn = fn;
  w->arg = arg;
  w->posted++;
  pthread_cond_signal(&w->wake);
  pthread_mutex_unlock(&w->mu);
}

void worker_wait(worker *w) {
  pthread_mutex_lock(&w->mu);
  while (w->done != w->posted) pthread_cond_wait(&w->idle, &w->mu);
  pthread_mutex_unlock(&w->mu);
}

void worker_free(worker *w) {
  if (!w) return;
  pthread_mutex_lock(&w->mu);
  w->quit = 1;
  pthread_cond_signal(&w->wake);
  pthread_mutex_unlock(&w->mu);
  pthread_join(w->thread, NULL);
  pthread_cond_destroy(&w->idle);
  pthread_cond_destroy(&w->wake);
  pthread_mutex_destroy(&w->mu);
  free(w);
}
