/*
** rng_impl.h — internal: the generator core, inline so that a policy can
** embed an mrl_rng by value and draw without a call.
**
** xoshiro256** (Blackman & Vigna) seeded through splitmix64; uniforms from
** the top 53 bits; normals by the Marsaglia polar method, whose second value
** is kept in the state so a saved state resumes the stream exactly.
*/
#ifndef MRL_RNG_IMPL_H
#define MRL_RNG_IMPL_H

#include <math.h>
#include <stdint.h>
#include "moonrl.h"

struct mrl_rng {
  uint64_t s[4];
  double spare;     /* second normal of the last polar pair */
  int has_spare;
};

static inline uint64_t rng_splitmix64(uint64_t *x) {
  uint64_t z = (*x += 0x9E3779B97F4A7C15ULL);
  z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ULL;
  z = (z ^ (z >> 27)) * 0x94D049BB133111EBULL;
  return z ^ (z >> 31);
}

static inline void rng_seed(mrl_rng *r, uint64_t seed) {
  uint64_t x = seed;
  for (int i = 0; i < 4; i++) r->s[i] = rng_splitmix64(&x);
  /* splitmix64 never yields four zero words in a row, so the state is valid */
  r->spare = 0.0;
  r->has_spare = 0;
}

static inline uint64_t rng_rotl(uint64_t x, int k) {
  return (x << k) | (x >> (64 - k));
}

static inline uint64_t rng_next(mrl_rng *r) {
  uint64_t *s = r->s;
  uint64_t result = rng_rotl(s[1] * 5, 7) * 9;
  uint64_t t = s[1] << 17;
  s[2] ^= s[0];
  s[3] ^= s[1];
  s[1] ^= s[2];
  s[0] ^= s[3];
  s[2] ^= t;
  s[3] = rng_rotl(s[3], 45);
  return result;
}

/* [0, 1): 53 random bits scaled by 2^-53, exact in a double. */
static inline double rng_uniform(mrl_rng *r) {
  return (double)(rng_next(r) >> 11) * 0x1.0p-53;
}

static inline double rng_normal(mrl_rng *r) {
  if (r->has_spare) {
    r->has_spare = 0;
    return r->spare;
  }
  double u, v, s;
  do {
    u = 2.0 * rng_uniform(r) - 1.0;
    v = 2.0 * rng_uniform(r) - 1.0;
    s = u * u + v * v;
  } while (s >= 1.0 || s == 0.0);
  double f = sqrt(-2.0 * log(s) / s);
  r->spare = v * f;
  r->has_spare = 1;
  return u * f;
}

/* Index drawn from softmax(logits) by inverse CDF in double.  NaN and -inf
** entries have probability 0; if any entry is +inf the draw is uniform over
** the +inf entries.  Returns -1 when no entry is valid (or n < 1).  Draws
** exactly one uniform whenever the result is not -1. */
static inline int rng_categorical(mrl_rng *r, const float *logits, int n) {
  if (!logits || n < 1) return -1;
  double mx = -INFINITY;
  int ninf = 0, last = -1;
  for (int i = 0; i < n; i++) {
    double z = logits[i];
    if (z != z || z == -INFINITY) continue;
    last = i;
    if (z == INFINITY) ninf++;
    else if (z > mx) mx = z;
  }
  if (last < 0) return -1;
  double u = rng_uniform(r);
  if (ninf > 0) {
    int k = (int)(u * ninf);
    for (int i = 0; i < n; i++)
      if ((double)logits[i] == INFINITY && k-- == 0) return i;
    return last; /* unreachable */
  }
  double total = 0.0;
  for (int i = 0; i < n; i++) {
    double z = logits[i];
    if (z == z && z != -INFINITY) total += exp(z - mx);
  }
  double target = u * total, acc = 0.0;
  for (int i = 0; i < n; i++) {
    double z = logits[i];
    if (z != z || z == -INFINITY) continue;
    acc += exp(z - mx);
    if (target < acc) return i;
  }
  return last; /* rounding left target at the very top: the last valid one */
}

#endif
