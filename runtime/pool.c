/*
** pool.c — parked helper threads (see pool.h).
**
** Costs per run are cache lines moving between cores (a round trip is
** ~300 ns on a 2-vCPU VM), so a run touches few of them: the owner writes the
** run line (fn, arg, ntasks, gen) once and the helpers read it once; each
** helper claims its own task on a slot line it wrote itself last run; the
** helper's finish bumps the done line, which the owner reads.  Nothing is
** reset per run: `done` counts every finished task ever, and a slot holds
** the generation of the run that last claimed its task.
**
** A task is open for run g while its slot is older than g (every slot is
** g − 1 when run g starts: pool_start closes the slots a run does not use),
** and is claimed by a CAS to g, so it runs once, and a helper late for a
** finished run (its g is no newer than any slot) can never claim a task of
** the next one.  fn and arg are read only after a claim.
**
** Reading a slot moves its line, so the helper's claim of its own task
** next run would wait for it to come back (~400 cycles on the critical
** path): a helper looks at other tasks only while the run is not over, and
** the owner, done with its own, gives the helpers a grace (half its own
** tasks' time + 1 µs) before it looks, except right after a run where it
** had to take a task (a helper the OS has descheduled is likely late
** again).
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

/* A task's slot, alone on its cache line: the generation of the run that
** last claimed the task. */
typedef struct {
  _Atomic uint32_t gen;
  char pad[64 - sizeof(uint32_t)];
} slot;

typedef struct {
  struct pool *p;
  int home;  /* this helper's own task is ntasks − nthreads + home */
} helper;

struct pool {
  /* the run line: written by the owner once per run, read by the helpers */
  _Alignas(64) _Atomic uint32_t gen;  /* bumped once per run (and to stop) */
  _Atomic uint32_t ntasks;
  void (*fn)(void *, int);
  void *arg;
  _Atomic uint32_t run_target;  /* `done` once this run is over */
  _Atomic int sleepers;  /* helpers that may be in the futex on gen */
  _Atomic int stop;
  /* the done line: bumped by whoever finishes a task, read by the owner */
  _Alignas(64) _Atomic uint32_t done;  /* tasks ever finished */
  _Atomic int owner_sleeping;          /* the owner may be in the futex on done */
  /* the owner's own */
  _Alignas(64) uint32_t target;  /* done once the current run is over */
  int nthreads;
  int stole;     /* the owner took a helper's task in the last run */
  pthread_t *threads;
  helper *helpers;  /* [nthreads] */
  slot *slots;      /* [nthreads + 1] */
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

/* Runs task k of run gen if it is still open; 0 when it was not (taken,
** or the run is over). */
static int run_task(pool *p, uint32_t gen, int k) {
  _Atomic uint32_t *s = &p->slots[k].gen;
  uint32_t cur = atomic_load_explicit(s, memory_order_relaxed);
  do {
    if ((int32_t)(gen - cur) <= 0) return 0;  /* claimed for gen or later */
  } while (!atomic_compare_exchange_weak(s, &cur, gen));
  p->fn(p->arg, k);
  atomic_fetch_add(&p->done, 1);
  if (atomic_load(&p->owner_sleeping) > 0) futex_wake(&p->done, 1);
  return 1;
}

/* A helper's part of run gen: its own task [lo, hi), then any task of
** the run still open, unless the run is over. */
static void claim(pool *p, uint32_t gen, int n, int lo, int hi) {
  for (int k = lo; k < hi; k++) run_task(p, gen, k);
  if (atomic_load_explicit(&p->done, memory_order_relaxed) ==
      atomic_load_explicit(&p->run_target, memory_order_relaxed))
    return;
  for (int k = 0; k < n; k++) run_task(p, gen, k);
}

static void *helper_main(void *arg) {
  helper *h = arg;
  pool *p = h->p;
  uint32_t seen = 0;  /* gen starts at 0 and moves only once all threads exist */
  for (;;) {
    seen = wait_change(&p->gen, seen, &p->sleepers);
    if (atomic_load_explicit(&p->stop, memory_order_relaxed)) break;
    int n = (int)atomic_load_explicit(&p->ntasks, memory_order_relaxed);
    int own = n - p->nthreads + h->home;
    if (own < 0) claim(p, seen, n, 0, 0);
    else claim(p, seen, n, own, own + 1);
  }
  return NULL;
}

pool *pool_new(int nthreads) {
  if (nthreads < 1) return NULL;
  pool *p = aligned_alloc(64, sizeof *p);
  if (!p) return NULL;
  *p = (pool){0};
  p->threads = calloc((size_t)nthreads, sizeof *p->threads);
  p->helpers = calloc((size_t)nthreads, sizeof *p->helpers);
  p->slots = aligned_alloc(64, ((size_t)nthreads + 1) * sizeof *p->slots);
  if (!p->threads || !p->helpers || !p->slots) {
    free(p->threads);
    free(p->helpers);
    free(p->slots);
    free(p);
    return NULL;
  }
  for (int k = 0; k <= nthreads; k++) atomic_init(&p->slots[k].gen, 0);
  for (int k = 0; k < nthreads; k++) {
    p->helpers[k].p = p;
    p->helpers[k].home = k;
    if (pthread_create(&p->threads[k], NULL, helper_main, &p->helpers[k]) != 0) {
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
  /* the slots this run leaves out are closed for it (see the top) */
  for (int k = ntasks; k <= p->nthreads; k++)
    atomic_store_explicit(&p->slots[k].gen, g, memory_order_relaxed);
  p->fn = fn;
  p->arg = arg;
  p->target += (uint32_t)ntasks;
  atomic_store_explicit(&p->run_target, p->target, memory_order_relaxed);
  atomic_store_explicit(&p->ntasks, (uint32_t)ntasks, memory_order_relaxed);
  atomic_store(&p->gen, g);  /* releases all of the above */
  if (atomic_load(&p->sleepers) > 0) futex_wake(&p->gen, INT_MAX);
}

void pool_finish(pool *p, int help) {
  if (help) {
    int n = (int)atomic_load_explicit(&p->ntasks, memory_order_relaxed);
    uint32_t gen = atomic_load_explicit(&p->gen, memory_order_relaxed);
    int64_t t0 = now_ns();
    for (int k = 0; k < n - p->nthreads; k++) run_task(p, gen, k);
    int64_t t1 = now_ns(), grace = p->stole ? 0 : (t1 - t0) / 2 + 1000;
    for (int i = 1;; i++) {  /* the grace (see the top) */
      if (atomic_load_explicit(&p->done, memory_order_acquire) == p->target) {
        p->stole = 0;
        return;
      }
      relax();
      if ((i & 63) == 0 && now_ns() - t1 > grace) break;
    }
    int took = 0;
    for (int k = 0; k < n; k++) took |= run_task(p, gen, k);
    p->stole = took;
  }
  uint32_t d;
  while ((d = atomic_load_explicit(&p->done, memory_order_acquire)) != p->target)
    wait_change(&p->done, d, &p->owner_sleeping);
}

int pool_done(pool *p) {
  return atomic_load_explicit(&p->done, memory_order_acquire) == p->target;
}

void pool_free(pool *p) {
  if (!p) return;
  atomic_store(&p->stop, 1);
  atomic_fetch_add(&p->gen, 1);
  futex_wake(&p->gen, INT_MAX);
  for (int k = 0; k < p->nthreads; k++) pthread_join(p->threads[k], NULL);
  free(p->threads);
  free(p->helpers);
  free(p->slots);
  free(p);
}
