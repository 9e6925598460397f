/*
** rng.c — the public handle around the inline generator of rng_impl.h.
*/
#include <stdlib.h>
#include <string.h>
#include "rng_impl.h"

int mrl_rng_new(mrl_rng **out, uint64_t seed) {
  if (!out) return MRL_EINVAL;
  *out = NULL;
  mrl_rng *r = malloc(sizeof *r);
  if (!r) return MRL_ENOMEM;
  rng_seed(r, seed);
  *out = r;
  return MRL_OK;
}

void mrl_rng_free(mrl_rng *rng) { free(rng); }

void mrl_rng_seed(mrl_rng *rng, uint64_t seed) {
  if (rng) rng_seed(rng, seed);
}

uint64_t mrl_rng_u64(mrl_rng *rng) { return rng ? rng_next(rng) : 0; }

double mrl_rng_uniform(mrl_rng *rng) { return rng ? rng_uniform(rng) : 0.0; }

double mrl_rng_normal(mrl_rng *rng) { return rng ? rng_normal(rng) : 0.0; }

int mrl_rng_categorical(mrl_rng *rng, const float *logits, int n) {
  return rng ? rng_categorical(rng, logits, n) : -1;
}

static void put_u64(uint8_t *p, uint64_t v) {
  for (int i = 0; i < 8; i++) p[i] = (uint8_t)(v >> (8 * i));
}

static uint64_t get_u64(const uint8_t *p) {
  uint64_t v = 0;
  for (int i = 0; i < 8; i++) v |= (uint64_t)p[i] << (8 * i);
  return v;
}

/* Layout: s[0..3] (32 bytes), spare as IEEE-754 bits (8), has_spare as a
** u64 0/1 (8); all little-endian. */
void mrl_rng_get_state(const mrl_rng *rng, uint8_t *out) {
  if (!rng || !out) return;
  for (int i = 0; i < 4; i++) put_u64(out + 8 * i, rng->s[i]);
  uint64_t bits;
  memcpy(&bits, &rng->spare, sizeof bits);
  put_u64(out + 32, bits);
  put_u64(out + 40, rng->has_spare ? 1u : 0u);
}

int mrl_rng_set_state(mrl_rng *rng, const uint8_t *in) {
  if (!rng || !in) return MRL_EINVAL;
  uint64_t s[4], flag = get_u64(in + 40), bits = get_u64(in + 32);
  for (int i = 0; i < 4; i++) s[i] = get_u64(in + 8 * i);
  if ((s[0] | s[1] | s[2] | s[3]) == 0) return MRL_EFORMAT; /* stuck at 0 */
  if (flag > 1) return MRL_EFORMAT;
  double spare;
  memcpy(&spare, &bits, sizeof spare);
  if (flag && !isfinite(spare)) return MRL_EFORMAT;
  memcpy(rng->s, s, sizeof s);
  rng->spare = flag ? spare : 0.0;
  rng->has_spare = (int)flag;
  return MRL_OK;
}
