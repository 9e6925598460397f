/* tap.h — a tiny TAP harness for the C unit tests (one header, no globals
** outside the test program itself). */
#ifndef MRL_TAP_H
#define MRL_TAP_H
#include <math.h>
#include <stdio.h>
#include <string.h>

static int tap_n, tap_failed;

#define TAP_OK(cond, ...) tap_ok_((cond) ? 1 : 0, __FILE__, __LINE__, __VA_ARGS__)

static void tap_ok_(int pass, const char *file, int line, const char *fmt, ...)
  __attribute__((format(printf, 4, 5)));

#include <stdarg.h>
static void tap_ok_(int pass, const char *file, int line, const char *fmt, ...) {
  va_list ap;
  tap_n++;
  if (!pass) tap_failed++;
  printf("%s %d - ", pass ? "ok" : "not ok", tap_n);
  va_start(ap, fmt);
  vprintf(fmt, ap);
  va_end(ap);
  printf("\n");
  if (!pass) printf("#   failed at %s:%d\n", file, line);
  fflush(stdout);
}

/* |a-b| <= atol + rtol*|b| */
static inline int tap_close(double a, double b, double rtol, double atol) {
  return isfinite(a) && fabs(a - b) <= atol + rtol * fabs(b);
}

static int tap_done(void) {
  printf("1..%d\n", tap_n);
  printf("%d passed, %d failed\n", tap_n - tap_failed, tap_failed);
  return tap_failed ? 1 : 0;
}
#endif
