/*
** pool.c — parked helper threads (see pool.h).
**
** A run is published by closing the ticket (the new generation in the
** high 32 bits, no task left in the low ones), storing fn, arg and ntasks,
** opening the ticket (task 0), then bumping `gen`, which the helpers
** watch.  A task is claimed by a CAS on the ticket that checks the
** generation, so a helper late for a finished run can never claim a task
** of the next one, and fn and arg are read only after a claim.
** `done` counts the finished tasks of the current run.
*/
#include "pool.h"

#include <limits.h>
#include <pthread.h>
#include <sched.h>
#include <stdatomic.h>
#include <stdint.h>
#include <stdlib.h>
#include <time.h>
#ifdef __linux__
#include <linux/futex.h>
#include <sys/syscall.h>
#include <unistd.h>
#endif

/* Spin up to POOL_SPIN_NS, then yield POOL_YIELDS times, then sleep.
** Measured on 2 cores (the vecenv): spinning without bound with a third
** busy thread was 10-30x slower than this. */
#ifndef POOL_SPIN_NS
#define POOL_SPIN_NS 50000
#endif
#ifndef POOL_YIELDS
#define POOL_YIELDS 20
#endif

struct pool {
  int nthreads;
  pthread_t *threads;
  void (*fn)(void *, int);
  void *arg;
  _Atomic uint32_t ntasks;
  _Atomic uint64_t ticket;    /* gen << 32 | next task */
  _Atomic uint32_t gen;       /* bumped once per run (and to stop) */
  _Atomic uint32_t done;      /* tasks of the current run finished */
  _Atomic int sleepers;       /* helpers that may be in the futex on gen */
  _Atomic int owner_sleeping; /* the owner may be in the futex on done */
  _Atomic int stop;
};

static inline void relax(void) {
#if defined(__x86_64__) || defined(__i386__)
  __builtin_ia32_pause();
#elif defined(__aarch64__)
  __asm__ __volatile__("yield");
#endif
}

#ifdef __linux__
static void futex_wait(_Atomic uint32_t *addr, uint32_t val) {
  syscall(SYS_futex, (uint32_t *)addr, FUTEX_WAIT_PRIVATE, val, NULL, NULL, 0);
}
static void futex_wake(_Atomic uint32_t *addr, int n) {
  syscall(SYS_futex, (uint32_t *)addr, FUTEX_WAKE_PRIVATE, n, NULL, NULL, 0);
}
#else
/* Elsewhere: a short sleep instead of a futex (correct, slower). */
static void futex_wait(_Atomic uint32_t *addr, uint32_t val) {
  struct timespec ts = {0, 20000};
  if (atomic_load(addr) == val) nanosleep(&ts, NULL);
}
static void futex_wake(_Atomic uint32_t *addr, int n) { (void)addr; (void)n; }
#endif

static int64_t now_ns(void) {
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return (int64_t)ts.tv_sec * 1000000000 + ts.tv_nsec;
}

/* Waits until *addr != val.  sleepers counts the threads that may be in
** the futex, so a waker skips the syscall when nobody sleeps; seq_cst
** (sleepers++ before the futex's own check of *addr, the store to *addr
** before the waker reads sleepers) makes a lost wake-up impossible. */
static uint32_t wait_change(_Atomic uint32_t *addr, uint32_t val, _Atomic int *sleepers) {
  uint32_t cur;
  int64_t start = now_ns();
  for (int i = 1;; i++) {
    if ((cur = atomic_load_explicit(addr, memory_order_acquire)) != val) return cur;
    relax();
    if ((i & 63) == 0 && now_ns() - start > POOL_SPIN_NS) break;
  }
  for (int i = 0; i < POOL_YIELDS; i++) {
    if ((cur = atomic_load_explicit(addr, memory_order_acquire)) != val) return cur;
    sched_yield();
  }
  for (;;) {
    atomic_fetch_add(sleepers, 1);
    futex_wait(addr, val);
    atomic_fetch_sub(sleepers, 1);
    if ((cur = atomic_load(addr)) != val) return cur;
  }
}

/* Claims and runs tasks of run `gen` until none is left. */
static void claim(pool *p, uint32_t gen) {
  for (;;) {
    uint64_t t = atomic_load(&p->ticket);
    if ((uint32_t)(t >> 32) != gen ||
        (uint32_t)t >= atomic_load_explicit(&p->ntasks, memory_order_relaxed))
      return;
    if (!atomic_compare_exchange_weak(&p->ticket, &t, t + 1)) continue;
    p->fn(p->arg, (int)(uint32_t)t);
    if (atomic_fetch_add(&p->done, 1) + 1 == atomic_load(&p->ntasks) &&
        atomic_load(&p->owner_sleeping) > 0)
      futex_wake(&p->done, 1);
  }
}

static void *helper_main(void *arg) {
  pool *p = arg;
  uint32_t seen = 0;  /* gen starts at 0 and moves only once all threads exist */
  for (;;) {
    seen = wait_change(&p->gen, seen, &p->sleepers);
    if (atomic_load(&p->stop)) break;
    claim(p, seen);
  }
  return NULL;
}

pool *pool_new(int nthreads) {
  if (nthreads < 1) return NULL;
  pool *p = calloc(1, sizeof *p);
  if (!p) return NULL;
  p->threads = calloc((size_t)nthreads, sizeof *p->threads);
  if (!p->threads) {
    free(p);
    return NULL;
  }
  for (int k = 0; k < nthreads; k++) {
    if (pthread_create(&p->threads[k], NULL, helper_main, p) != 0) {
      pool_free(p);
      return NULL;
    }
    p->nthreads = k + 1;
  }
  return p;
}

int pool_threads(const pool *p) { return p ? p->nthreads : 0; }

void pool_start(pool *p, void (*fn)(void *, int), void *arg, int ntasks) {
  uint32_t g = atomic_load_explicit(&p->gen, memory_order_relaxed) + 1;
  atomic_store(&p->ticket, (uint64_t)g << 32 | UINT32_MAX);  /* closed */
  p->fn = fn;
  p->arg = arg;
  atomic_store(&p->ntasks, (uint32_t)ntasks);
  atomic_store(&p->done, 0);
  atomic_store(&p->ticket, (uint64_t)g << 32);
  atomic_store(&p->gen, g);
  if (atomic_load(&p->sleepers) > 0) futex_wake(&p->gen, INT_MAX);
}

void pool_finish(pool *p, int help) {
  if (help) claim(p, atomic_load_explicit(&p->gen, memory_order_relaxed));
  uint32_t d;
  while ((d = atomic_load_explicit(&p->done, memory_order_acquire)) != atomic_load(&p->ntasks))
    wait_change(&p->done, d, &p->owner_sleeping);
}

int pool_done(pool *p) {
  return atomic_load_explicit(&p->done, memory_order_acquire) == atomic_load(&p->ntasks);
}

void pool_free(pool *p) {
  if (!p) return;
  atomic_store(&p->stop, 1);
  atomic_fetch_add(&p->gen, 1);
  futex_wake(&p->gen, INT_MAX);
  for (int k = 0; k < p->nthreads; k++) pthread_join(p->threads[k], NULL);
  free(p->threads);
  free(p);
}
