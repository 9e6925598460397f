/*
** status.c — status strings, the ABI version, and the whole-vector loops
** every update path (and the bindings' tensors) use: finiteness, sum, norm
** and gradient-norm clipping.
*/
#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdint.h>
#include <string.h>
#include <time.h>

#include "errmsg.h"
#include "finite_row.h"
#include "moonrl.h"
#include "simd_clones.h"

int mrl_errbuf_(char *err, size_t errlen, int status, const char *fmt, ...) {
  if (err && errlen) {
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(err, errlen, fmt, ap);
    va_end(ap);
  }
  return status;
}

double mrl_now(void) {
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return (double)ts.tv_sec + 1e-9 * (double)ts.tv_nsec;
}

const char *mrl_status_string(int status) {
  switch (status) {
    case MRL_OK: return "ok";
    case MRL_EINVAL: return "invalid argument";
    case MRL_ENOMEM: return "out of memory";
    case MRL_ENONFINITE: return "non-finite value (NaN or Inf)";
    case MRL_EIO: return "input/output error";
    case MRL_EFORMAT: return "malformed file or buffer";
    case MRL_ESTATE: return "call not valid in the current state";
    case MRL_EENV: return "environment error";
    default: return "unknown status";
  }
}

int mrl_abi_version(void) { return MRL_ABI_VERSION; }

/* A float is NaN or Inf exactly when its exponent bits are all ones.  Testing
** the bits (an integer OR-reduction) vectorises, where isfinite() with an
** early exit would not; blocks keep an early exit for long vectors. */
MRL_SIMD_CLONES static uint32_t any_nonfinite(const float *x, size_t n) {
  uint32_t bad = 0;
#pragma omp simd reduction(| : bad)
  for (size_t i = 0; i < n; i++) {
    uint32_t u;
    memcpy(&u, &x[i], sizeof u);
    bad |= (uint32_t)((u & 0x7f800000u) == 0x7f800000u);
  }
  return bad;
}

int mrl_all_finite(const float *x, size_t n) {
  enum { BLOCK = 4096 };
  if (n == 0) return 1;
  if (!x) return 0;
  if (n <= 16) return finite_row(x, n);  /* no call through the clones */
  for (size_t start = 0; start < n; start += BLOCK) {
    size_t len = n - start < BLOCK ? n - start : BLOCK;
    if (any_nonfinite(x + start, len)) return 0;
  }
  return 1;
}

/* Bindings use it to name the element an argument check refuses. */
size_t mrl_first_nonfinite(const float *x, size_t n) {
  if (!x || mrl_all_finite(x, n)) return x ? n : 0;
  size_t i = 0;
  while (i < n && isfinite(x[i])) i++;
  return i;
}

size_t mrl_flags_from_floats(const float *x, size_t n, uint8_t *out) {
  size_t bad = n;
  for (size_t i = 0; i < n; i++) {
    out[i] = x[i] != 0.0f;
    if (bad == n && x[i] != 0.0f && x[i] != 1.0f) bad = i;
  }
  return bad;
}

void mrl_floats_from_flags(const uint8_t *flags, size_t n, float *out) {
  for (size_t i = 0; i < n; i++) out[i] = (float)flags[i];
}

void mrl_fill(float *x, size_t n, float v) {
  for (size_t i = 0; i < n; i++) x[i] = v;
}

double mrl_sum(const float *x, size_t n) {
  double s = 0.0;
  if (!x) return 0.0;
#pragma omp simd reduction(+ : s)
  for (size_t i = 0; i < n; i++) s += (double)x[i];
  return s;
}

/* Accumulated in double: a float sum of squares loses digits on long
** vectors and overflows above ~1.8e19. */
double mrl_norm2(const float *x, size_t n) {
  double ss = 0.0;
  if (!x) return 0.0;
#pragma omp simd reduction(+ : ss)
  for (size_t i = 0; i < n; i++) ss += (double)x[i] * (double)x[i];
  return sqrt(ss);
}

/* The scale follows PyTorch's clip_grad_norm_ (max_norm / (norm + 1e-6),
** applied only when < 1). */
int mrl_clip_grad_norm(float *g, size_t n, double max_norm, double *norm) {
  if ((!g && n > 0) || !(max_norm > 0) || !isfinite(max_norm))
    return MRL_EINVAL;
  double total = mrl_norm2(g, n);
  if (norm) *norm = total;
  if (!isfinite(total)) return MRL_ENONFINITE;
  double coef = max_norm / (total + 1e-6);
  if (coef < 1.0) {
    float c = (float)coef;
#pragma omp simd
    for (size_t i = 0; i < n; i++) g[i] *= c;
  }
  return MRL_OK;
}
