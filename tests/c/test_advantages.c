/* test_advantages.c — discounted returns and GAE: two golden cases copied
** from golden/core.json, naive O(T²) definitions, strides, aliasing, errors. */
#include <math.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "moonrl.h"
#include "tap.h"

/* golden/core.json "returns/g0.9-T12" */
static const float G_REW[12] = {0.13517725f, -0.34869733f, -0.40639104f, 0.68639527f,
                                -0.58746207f, -1.2820983f, 0.96582596f, 1.1030848f,
                                0.64735866f, -0.33093318f, -0.17937908f, 1.6686296f};
static const double G_RTG[12] = {0.502480940868, 0.408115212075, 0.840902824528,
                                 1.3858820717,   0.777207557442, 1.51629958605,
                                 3.1093309845,   2.38167224944,  1.4206527216,
                                 0.859215624,    1.32238756,     1.6686296};

/* golden/core.json "gae/mixed-g0.99-l0.95" */
static const float A_REW[12] = {0.72053408f, 1.4981405f, -1.0619104f, 2.4234087f,
                                -0.15070473f, 0.48353026f, 1.2463923f, 0.64060857f,
                                1.5491081f, 0.39275475f, 0.77950802f, -0.31866274f};
static const float A_VAL[12] = {0.13410711f, 1.0635935f, -0.56966919f, 0.66382942f,
                                1.5666913f, 1.2614236f, 0.073847777f, 0.86463367f,
                                0.47141597f, -1.5529573f, 0.40816294f, -1.4723394f};
static const float A_NEXT[12] = {1.0635935f, 0.0021467637f, 0.66382942f, 1.5666913f,
                                 1.2614236f, 0.073847777f, -0.6715236f, 0.47141597f,
                                 -1.5529573f, 0.40816294f, -1.4723394f, -0.67428256f};
static const uint8_t A_TERM[12] = {0, 1, 0, 0, 0, 0, 0, 0, 0, 0, 0, 1};
static const uint8_t A_TRUNC[12] = {0, 0, 0, 0, 0, 0, 1, 0, 0, 0, 0, 0};
static const double A_ADV[12] = {2.0480759885,   0.434547,       2.67503051882,
                                 2.66887889742,  -0.682322987328, -0.227258183231,
                                 0.507736159,    1.88775226056,  1.74914997369,
                                 2.34862899595,  -0.00123802727, 1.15367666};

/* The golden check: ‖got − exp‖₂ ≤ atol·√n + rtol·‖exp‖₂. */
static int golden_close(const float *got, const double *e, int n, double rtol, double atol) {
  double d2 = 0, e2 = 0;
  for (int i = 0; i < n; i++) {
    d2 += (got[i] - e[i]) * (got[i] - e[i]);
    e2 += e[i] * e[i];
  }
  return sqrt(d2) <= atol * sqrt((double)n) + rtol * sqrt(e2);
}

static uint64_t s = 0x2545F4914F6CDD1Dull;
static double unif(void) {
  s ^= s >> 12;
  s ^= s << 25;
  s ^= s >> 27;
  return (double)((s * 0x2545F4914F6CDD1Dull) >> 11) * 0x1.0p-53;
}

static void test_returns(void) {
  float rtg[12];
  double R = 0;
  TAP_OK(mrl_discounted_returns(G_REW, 12, 1, 0.9, rtg, &R) == MRL_OK, "returns ok");
  TAP_OK(golden_close(rtg, G_RTG, 12, 1e-4, 1e-6), "golden reward_to_go");
  TAP_OK(tap_close(R, 0.502480940868, 1e-6, 1e-7), "golden discounted_return %.12f", R);

  /* Naive definition, long episode, γ close to 1, strided. */
  enum { T = 500, S = 3 };
  float *r = malloc(T * S * sizeof(float)), *out = malloc(T * S * sizeof(float));
  for (int i = 0; i < T * S; i++) {
    r[i] = (float)(unif() * 2 - 0.5);
    out[i] = -7.0f;
  }
  TAP_OK(mrl_discounted_returns(r + 1, T, S, 0.999, out + 1, &R) == MRL_OK, "strided returns ok");
  double worst = 0, R0 = 0;
  for (int t = 0; t < T; t++) {
    double g = 0;
    for (int u = t; u < T; u++) g += pow(0.999, u - t) * r[1 + u * S];
    if (t == 0) R0 = g;
    double e = fabs(out[1 + t * S] - g) / (fabs(g) + 1);
    if (e > worst) worst = e;
  }
  TAP_OK(worst < 1e-6, "strided reward-to-go equals Σ γ^(t'−t) r (rel err %.2g)", worst);
  TAP_OK(tap_close(R, R0, 1e-9, 1e-9), "R equals G_0 computed naively");
  int untouched = 1;
  for (int t = 0; t < T; t++)
    if (out[t * S] != -7.0f || out[t * S + 2] != -7.0f) untouched = 0;
  TAP_OK(untouched, "other columns are not written");

  /* In place: the output may be the input. */
  float buf[12];
  memcpy(buf, G_REW, sizeof buf);
  mrl_discounted_returns(buf, 12, 1, 0.9, buf, NULL);
  TAP_OK(golden_close(buf, G_RTG, 12, 1e-4, 1e-6), "in place matches golden");
  TAP_OK(mrl_discounted_returns(G_REW, 12, 1, 0.9, NULL, &R) == MRL_OK &&
             tap_close(R, 0.502480940868, 1e-6, 1e-7),
         "reward_to_go is optional");
  TAP_OK(mrl_discounted_returns(G_REW, 0, 1, 0.9, rtg, &R) == MRL_OK && R == 0.0,
         "an empty sequence returns 0");
  float one[1] = {2.5f};
  TAP_OK(mrl_discounted_returns(one, 1, 1, 0.0, rtg, &R) == MRL_OK && R == 2.5, "T=1, γ=0");

  TAP_OK(mrl_discounted_returns(G_REW, 12, 0, 0.9, rtg, &R) == MRL_EINVAL &&
             mrl_discounted_returns(G_REW, -1, 1, 0.9, rtg, &R) == MRL_EINVAL &&
             mrl_discounted_returns(G_REW, 12, 1, 1.01, rtg, &R) == MRL_EINVAL &&
             mrl_discounted_returns(G_REW, 12, 1, NAN, rtg, &R) == MRL_EINVAL &&
             mrl_discounted_returns(NULL, 12, 1, 0.9, rtg, &R) == MRL_EINVAL,
         "bad stride, T, gamma or NULL rewards: EINVAL");
  float bad[12];
  memcpy(bad, G_REW, sizeof bad);
  bad[7] = NAN;
  for (int i = 0; i < 12; i++) rtg[i] = 9.0f;
  R = 9.0;
  TAP_OK(mrl_discounted_returns(bad, 12, 1, 0.9, rtg, &R) == MRL_ENONFINITE && rtg[0] == 9.0f &&
             rtg[11] == 9.0f && R == 9.0,
         "a NaN reward: ENONFINITE, nothing written");
  free(r);
  free(out);
}

static void test_gae(void) {
  float adv[12], ret[12];
  TAP_OK(mrl_gae(A_REW, A_VAL, A_NEXT, A_TERM, A_TRUNC, 12, 1, 0.99, 0.95, adv, ret) == MRL_OK,
         "gae ok");
  double eret[12];
  for (int i = 0; i < 12; i++) eret[i] = A_ADV[i] + A_VAL[i];
  TAP_OK(golden_close(adv, A_ADV, 12, 1e-4, 1e-6), "golden advantages");
  TAP_OK(golden_close(ret, eret, 12, 1e-4, 1e-6), "golden returns = A + V");

  /* Naive: A_t = Σ_{l≥0} (γλ)^l δ_{t+l}, stopping after a terminated or
  ** truncated step; strided layout [T][3] read from column 2. */
  enum { T = 200, S = 3 };
  float *r = malloc(T * S * sizeof(float)), *v = malloc(T * S * sizeof(float));
  float *nv = malloc(T * S * sizeof(float)), *a = malloc(T * S * sizeof(float));
  float *rt = malloc(T * S * sizeof(float));
  uint8_t *te = calloc(T * S, 1), *tr = calloc(T * S, 1);
  for (int i = 0; i < T * S; i++) {
    r[i] = (float)(unif() - 0.3);
    v[i] = (float)(2 * unif() - 1);
    nv[i] = (float)(2 * unif() - 1);
    te[i] = unif() < 0.05;
    tr[i] = !te[i] && unif() < 0.05;
  }
  const double g = 0.97, l = 0.9;
  TAP_OK(mrl_gae(r + 2, v + 2, nv + 2, te + 2, tr + 2, T, S, g, l, a + 2, rt + 2) == MRL_OK,
         "strided gae ok");
  double worst = 0;
  for (int t = 0; t < T; t++) {
    double acc = 0, f = 1;
    for (int u = t; u < T; u++) {
      int i = 2 + u * S;
      acc += f * (r[i] + g * (1 - te[i]) * nv[i] - v[i]);
      if (te[i] || tr[i]) break;
      f *= g * l;
    }
    double e1 = fabs(a[2 + t * S] - acc) / (fabs(acc) + 1);
    double e2 = fabs(rt[2 + t * S] - (acc + v[2 + t * S])) / (fabs(acc) + 1);
    if (e1 > worst) worst = e1;
    if (e2 > worst) worst = e2;
  }
  TAP_OK(worst < 1e-5, "strided gae equals the naive sum of δ (rel err %.2g)", worst);

  /* λ = 1, no flags, next_values = values shifted and V after the end = 0:
  ** A_t + V_t is the discounted reward-to-go. */
  float rr[50], vv[50], nn[50], aa[50], rtg[50];
  for (int t = 0; t < 50; t++) {
    rr[t] = (float)unif();
    vv[t] = (float)unif();
  }
  for (int t = 0; t < 50; t++) nn[t] = t + 1 < 50 ? vv[t + 1] : 0.0f;
  mrl_gae(rr, vv, nn, NULL, NULL, 50, 1, 0.95, 1.0, aa, NULL);
  mrl_discounted_returns(rr, 50, 1, 0.95, rtg, NULL);
  worst = 0;
  for (int t = 0; t < 50; t++) {
    double e = fabs((double)aa[t] + vv[t] - rtg[t]);
    if (e > worst) worst = e;
  }
  TAP_OK(worst < 1e-5, "λ=1: A + V = reward-to-go (err %.2g); NULL flags allowed", worst);

  /* λ = 0: A_t = δ_t. */
  mrl_gae(A_REW, A_VAL, A_NEXT, A_TERM, A_TRUNC, 12, 1, 0.9, 0.0, adv, NULL);
  worst = 0;
  for (int t = 0; t < 12; t++) {
    double d = A_REW[t] + 0.9 * (1 - A_TERM[t]) * A_NEXT[t] - A_VAL[t];
    if (fabs(adv[t] - d) > worst) worst = fabs(adv[t] - d);
  }
  TAP_OK(worst < 1e-6, "λ=0: A = δ");

  /* Aliasing: advantages written over values, returns over rewards. */
  float rw[12], vl[12];
  memcpy(rw, A_REW, sizeof rw);
  memcpy(vl, A_VAL, sizeof vl);
  mrl_gae(rw, vl, A_NEXT, A_TERM, A_TRUNC, 12, 1, 0.99, 0.95, vl, rw);
  TAP_OK(golden_close(vl, A_ADV, 12, 1e-4, 1e-6) && golden_close(rw, eret, 12, 1e-4, 1e-6),
         "in place (advantages over values, returns over rewards)");

  TAP_OK(mrl_gae(A_REW, A_VAL, A_NEXT, NULL, NULL, 12, 0, 0.99, 0.95, adv, ret) == MRL_EINVAL &&
             mrl_gae(A_REW, A_VAL, A_NEXT, NULL, NULL, 12, 1, 0.99, 1.5, adv, ret) == MRL_EINVAL &&
             mrl_gae(A_REW, A_VAL, A_NEXT, NULL, NULL, 12, 1, -0.1, 0.95, adv, ret) == MRL_EINVAL &&
             mrl_gae(A_REW, NULL, A_NEXT, NULL, NULL, 12, 1, 0.99, 0.95, adv, ret) == MRL_EINVAL &&
             mrl_gae(A_REW, A_VAL, NULL, NULL, NULL, 12, 1, 0.99, 0.95, adv, ret) == MRL_EINVAL &&
             mrl_gae(A_REW, A_VAL, A_NEXT, NULL, NULL, 12, 1, 0.99, 0.95, NULL, ret) == MRL_EINVAL,
         "bad stride, λ, γ or NULL arrays: EINVAL");
  float bad[12];
  memcpy(bad, A_NEXT, sizeof bad);
  bad[11] = INFINITY;
  for (int i = 0; i < 12; i++) adv[i] = 5.0f;
  TAP_OK(mrl_gae(A_REW, A_VAL, bad, NULL, NULL, 12, 1, 0.99, 0.95, adv, ret) == MRL_ENONFINITE &&
             adv[0] == 5.0f && adv[11] == 5.0f,
         "an infinite next value: ENONFINITE, nothing written");
  free(r);
  free(v);
  free(nv);
  free(a);
  free(rt);
  free(te);
  free(tr);
}

int main(void) {
  test_returns();
  test_gae();
  return tap_done();
}
