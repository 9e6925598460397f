/* test_rng.c — the generator against an independent plain implementation,
** its distributions, state round trips and categorical sampling. */
#include <math.h>
#include <stdint.h>
#include <stdlib.h>
#include "moonrl.h"
#include "tap.h"

/* Reference: the published algorithms written out longhand. */
static uint64_t ref_sm_state;
static uint64_t ref_splitmix(void) {
  ref_sm_state = ref_sm_state + 0x9E3779B97F4A7C15ULL;
  uint64_t z = ref_sm_state;
  z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ULL;
  z = (z ^ (z >> 27)) * 0x94D049BB133111EBULL;
  return z ^ (z >> 31);
}
static uint64_t ref_x[4];
static uint64_t rotl(uint64_t v, unsigned k) { return (v << k) | (v >> (64u - k)); }
static uint64_t ref_xoshiro(void) {
  uint64_t out = rotl(ref_x[1] * 5u, 7) * 9u;
  uint64_t sh = ref_x[1] << 17;
  uint64_t a = ref_x[0], b = ref_x[1], c = ref_x[2], d = ref_x[3];
  c ^= a;
  d ^= b;
  b ^= c;
  a ^= d;
  c ^= sh;
  d = rotl(d, 45);
  ref_x[0] = a; ref_x[1] = b; ref_x[2] = c; ref_x[3] = d;
  return out;
}

static void test_streams(void) {
  ref_sm_state = 0;
  TAP_OK(ref_splitmix() == 0xE220A8397B1DCDAFULL,
         "reference splitmix64(seed 0) starts at the published 0xe220a8397b1dcdaf");
  uint64_t seeds[] = {0, 1, 42, 0xDEADBEEFCAFEF00DULL, UINT64_MAX};
  for (size_t si = 0; si < sizeof seeds / sizeof *seeds; si++) {
    ref_sm_state = seeds[si];
    for (int i = 0; i < 4; i++) ref_x[i] = ref_splitmix();
    mrl_rng *r = NULL;
    int rc = mrl_rng_new(&r, seeds[si]);
    TAP_OK(rc == MRL_OK && r, "rng_new(seed %llu)", (unsigned long long)seeds[si]);
    if (!r) continue;
    int same = 1;
    for (int i = 0; i < 1000; i++) same &= mrl_rng_u64(r) == ref_xoshiro();
    TAP_OK(same, "first 1000 u64 match the reference for seed %llu",
           (unsigned long long)seeds[si]);
    uint64_t want = ref_xoshiro();
    double u = mrl_rng_uniform(r);
    TAP_OK(u == (double)(want >> 11) / 9007199254740992.0,
           "uniform is the top 53 bits / 2^53");
    mrl_rng_free(r);
  }
  mrl_rng *a = NULL, *b = NULL;
  mrl_rng_new(&a, 7);
  mrl_rng_new(&b, 7);
  int same = 1;
  for (int i = 0; i < 100; i++) same &= mrl_rng_normal(a) == mrl_rng_normal(b);
  TAP_OK(same, "same seed, same normals");
  mrl_rng_seed(b, 8);
  TAP_OK(mrl_rng_u64(a) != mrl_rng_u64(b), "another seed, another stream");
  mrl_rng_seed(a, 8);
  mrl_rng_seed(b, 8);
  TAP_OK(mrl_rng_u64(a) == mrl_rng_u64(b), "reseeding restarts the stream");
  mrl_rng_free(a);
  mrl_rng_free(b);
  TAP_OK(mrl_rng_new(NULL, 1) == MRL_EINVAL, "rng_new(NULL) is EINVAL");
}

static void test_moments(void) {
  mrl_rng *r = NULL;
  mrl_rng_new(&r, 12345);
  const int N = 1000000;
  double s1 = 0, s2 = 0, s3 = 0, s4 = 0, umin = 1, umax = 0, us = 0;
  for (int i = 0; i < N; i++) {
    double z = mrl_rng_normal(r);
    s1 += z; s2 += z * z; s3 += z * z * z; s4 += z * z * z * z;
  }
  for (int i = 0; i < N; i++) {
    double u = mrl_rng_uniform(r);
    if (u < umin) umin = u;
    if (u > umax) umax = u;
    us += u;
  }
  double mean = s1 / N, var = s2 / N - mean * mean;
  /* standard errors: mean 1e-3, var 1.4e-3, skew 2.4e-3, kurt ~5e-3 */
  TAP_OK(fabs(mean) < 5e-3, "normal mean %.5f ≈ 0", mean);
  TAP_OK(fabs(var - 1) < 7e-3, "normal variance %.5f ≈ 1", var);
  TAP_OK(fabs(s3 / N) < 1.5e-2, "normal third moment %.5f ≈ 0", s3 / N);
  TAP_OK(fabs(s4 / N - 3) < 4e-2, "normal fourth moment %.4f ≈ 3", s4 / N);
  TAP_OK(umin >= 0 && umax < 1 && fabs(us / N - 0.5) < 2e-3,
         "uniform in [0,1) with mean %.5f", us / N);
  mrl_rng_free(r);
}

static void test_state(void) {
  mrl_rng *r = NULL, *q = NULL;
  mrl_rng_new(&r, 99);
  mrl_rng_new(&q, 1);
  (void)mrl_rng_normal(r);  /* leaves a spare in the state */
  uint8_t st[MRL_RNG_STATE_BYTES];
  mrl_rng_get_state(r, st);
  TAP_OK(st[40] == 1 && st[41] == 0, "has_spare serialised as a little-endian 1");
  double want[5];
  for (int i = 0; i < 5; i++) want[i] = mrl_rng_normal(r);
  TAP_OK(mrl_rng_set_state(q, st) == MRL_OK, "set_state accepts a saved state");
  int same = 1;
  for (int i = 0; i < 5; i++) same &= mrl_rng_normal(q) == want[i];
  TAP_OK(same, "a restored state resumes the normals exactly, spare included");
  mrl_rng_seed(q, 5);
  mrl_rng_get_state(q, st);
  uint64_t s0 = 0;
  for (int i = 0; i < 8; i++) s0 |= (uint64_t)st[i] << (8 * i);
  ref_sm_state = 5;
  TAP_OK(s0 == ref_splitmix(), "state word 0 is little-endian s[0]");
  uint8_t zero[MRL_RNG_STATE_BYTES] = {0};
  TAP_OK(mrl_rng_set_state(q, zero) == MRL_EFORMAT, "all-zero state refused");
  st[40] = 2;
  TAP_OK(mrl_rng_set_state(q, st) == MRL_EFORMAT, "bad spare flag refused");
  TAP_OK(mrl_rng_set_state(q, NULL) == MRL_EINVAL, "NULL state is EINVAL");
  mrl_rng_free(r);
  mrl_rng_free(q);
}

static void freq_test(mrl_rng *r, const float *z, int n, const double *p,
                      const char *what) {
  enum { N = 200000 };
  int count[8] = {0}, bad = 0;
  for (int i = 0; i < N; i++) {
    int k = mrl_rng_categorical(r, z, n);
    if (k < 0 || k >= n) bad++;
    else count[k]++;
  }
  int good = !bad;
  double worst = 0;
  for (int k = 0; k < n; k++) {
    double f = (double)count[k] / N, sd = sqrt(p[k] * (1 - p[k]) / N);
    if (p[k] == 0) good &= count[k] == 0;
    else if (fabs(f - p[k]) > 5 * sd) good = 0;
    if (fabs(f - p[k]) > worst) worst = fabs(f - p[k]);
  }
  TAP_OK(good, "categorical frequencies, %s (max |f-p| %.4f)", what, worst);
}

static void test_categorical(void) {
  mrl_rng *r = NULL;
  mrl_rng_new(&r, 2024);
  float z1[] = {0.0f, (float)log(2.0), (float)log(5.0), -INFINITY};
  double p1[] = {1 / 8.0, 2 / 8.0, 5 / 8.0, 0};
  freq_test(r, z1, 4, p1, "softmax with a -inf entry");
  float z2[] = {1e30f, 1e30f - 0.0f, -1e30f};
  double p2[] = {0.5, 0.5, 0};
  freq_test(r, z2, 3, p2, "huge logits");
  float z3[] = {NAN, 3.0f, 3.0f};
  double p3[] = {0, 0.5, 0.5};
  freq_test(r, z3, 3, p3, "NaN has probability 0");
  float z4[] = {5.0f, INFINITY, 1.0f, INFINITY};
  double p4[] = {0, 0.5, 0, 0.5};
  freq_test(r, z4, 4, p4, "+inf entries share the mass");
  float z5[] = {-INFINITY, NAN, -INFINITY};
  TAP_OK(mrl_rng_categorical(r, z5, 3) == -1, "all invalid logits give -1");
  TAP_OK(mrl_rng_categorical(r, z1, 0) == -1, "n = 0 gives -1");
  TAP_OK(mrl_rng_categorical(r, NULL, 3) == -1, "NULL logits give -1");
  float z6[] = {-200.0f, 0.0f};
  int zeros = 0;
  for (int i = 0; i < 10000; i++) zeros += mrl_rng_categorical(r, z6, 2) == 0;
  TAP_OK(zeros == 0, "exp(-200) relative mass is never drawn in 1e4 draws");
  mrl_rng_free(r);
}

int main(void) {
  test_streams();
  test_moments();
  test_state();
  test_categorical();
  return tap_done();
}
