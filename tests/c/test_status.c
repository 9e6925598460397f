/* test_status.c — status strings, ABI version, mrl_all_finite and
** mrl_clip_grad_norm. */
#include <float.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "moonrl.h"
#include "tap.h"

static void test_strings(void) {
  static const int codes[] = {MRL_OK, MRL_EINVAL, MRL_ENOMEM, MRL_ENONFINITE,
                              MRL_EIO, MRL_EFORMAT, MRL_ESTATE, MRL_EENV};
  const char *seen[8];
  int distinct = 1;
  for (int i = 0; i < 8; i++) {
    seen[i] = mrl_status_string(codes[i]);
    for (int j = 0; j < i; j++)
      if (!seen[i] || strcmp(seen[i], seen[j]) == 0) distinct = 0;
  }
  TAP_OK(distinct, "every status has its own string");
  TAP_OK(strcmp(mrl_status_string(MRL_OK), "ok") == 0, "MRL_OK is \"ok\"");
  TAP_OK(strstr(mrl_status_string(MRL_ENONFINITE), "NaN") != NULL,
         "ENONFINITE mentions NaN: %s", mrl_status_string(MRL_ENONFINITE));
  TAP_OK(strstr(mrl_status_string(99), "unknown") != NULL &&
             strstr(mrl_status_string(-1), "unknown") != NULL,
         "out-of-range codes say unknown");
  TAP_OK(mrl_abi_version() == MRL_ABI_VERSION, "abi version %d", mrl_abi_version());
}

static void test_all_finite(void) {
  size_t n = 10007;  /* several blocks plus a ragged tail */
  float *x = malloc(n * sizeof(float));
  for (size_t i = 0; i < n; i++) x[i] = (float)i - 5000.0f;
  x[3] = FLT_MAX;
  x[4] = -FLT_MAX;
  x[5] = FLT_MIN / 4;  /* subnormal: finite */
  x[6] = -0.0f;
  TAP_OK(mrl_all_finite(x, n) == 1, "finite vector with extremes and subnormals");
  TAP_OK(mrl_all_finite(x, 0) == 1 && mrl_all_finite(NULL, 0) == 1, "empty is finite");
  static const size_t pos[] = {0, 1, 4095, 4096, 8191, 10000, 10006};
  const float bad[] = {NAN, INFINITY, -INFINITY};
  int ok = 1;
  for (size_t p = 0; p < sizeof pos / sizeof pos[0]; p++)
    for (int b = 0; b < 3; b++) {
      float keep = x[pos[p]];
      x[pos[p]] = bad[b];
      if (mrl_all_finite(x, n) != 0) ok = 0;
      /* a prefix that stops before the bad value is still finite */
      if (pos[p] > 0 && mrl_all_finite(x, pos[p]) != 1) ok = 0;
      x[pos[p]] = keep;
    }
  TAP_OK(ok, "NaN/+Inf/-Inf found at block edges, prefixes before them pass");
  free(x);
}

static void test_clip(void) {
  float g[5] = {3, 4, 0, 0, 0};
  double norm = 0;
  TAP_OK(mrl_clip_grad_norm(g, 5, 10.0, &norm) == MRL_OK && norm == 5.0 && g[0] == 3 &&
             g[1] == 4,
         "norm 5 under max 10: unchanged, norm reported");
  TAP_OK(mrl_clip_grad_norm(g, 5, 1.0, &norm) == MRL_OK && norm == 5.0,
         "clip to 1 reports the norm before");
  double after = sqrt((double)g[0] * g[0] + (double)g[1] * g[1]);
  TAP_OK(tap_close(after, 1.0, 1e-6, 0) && after <= 1.0 && tap_close(g[0] / g[1], 0.75, 1e-6, 0),
         "clipped norm is %.9f, direction kept", after);
  TAP_OK(mrl_clip_grad_norm(g, 5, 1.0, NULL) == MRL_OK, "norm pointer is optional");

  /* Double accumulation: 2^24 + 1 ones would stall a float running sum. */
  size_t n = (1u << 24) + 4;
  float *big = malloc(n * sizeof(float));
  for (size_t i = 0; i < n; i++) big[i] = 1.0f;
  TAP_OK(mrl_clip_grad_norm(big, n, 1e9, &norm) == MRL_OK && norm == sqrt((double)n),
         "norm of %zu ones is exact in double (%.17g)", n, norm);
  /* Values whose squares overflow float. */
  big[0] = 1e30f;
  big[1] = -1e30f;
  TAP_OK(mrl_clip_grad_norm(big, 2, 1.0, &norm) == MRL_OK &&
             tap_close(norm, sqrt(2.0) * 1e30, 1e-6, 0) && isfinite(big[0]) &&
             tap_close(big[0], sqrt(0.5), 1e-5, 0),
         "squares beyond FLT_MAX do not overflow (norm %g)", norm);
  free(big);

  float h[4] = {1, NAN, 2, 3};
  int rc = mrl_clip_grad_norm(h, 4, 1.0, &norm);
  TAP_OK(rc == MRL_ENONFINITE && h[0] == 1 && isnan(h[1]) && h[2] == 2 && h[3] == 3,
         "NaN: ENONFINITE and g unchanged");
  float k[3] = {1, INFINITY, 2};
  rc = mrl_clip_grad_norm(k, 3, 1.0, &norm);
  TAP_OK(rc == MRL_ENONFINITE && k[0] == 1 && k[2] == 2 && isinf(norm),
         "Inf: ENONFINITE, g unchanged, norm reported as inf");
  TAP_OK(mrl_clip_grad_norm(g, 5, 0.0, NULL) == MRL_EINVAL &&
             mrl_clip_grad_norm(g, 5, -1.0, NULL) == MRL_EINVAL &&
             mrl_clip_grad_norm(g, 5, NAN, NULL) == MRL_EINVAL &&
             mrl_clip_grad_norm(g, 5, INFINITY, NULL) == MRL_EINVAL &&
             mrl_clip_grad_norm(NULL, 5, 1.0, NULL) == MRL_EINVAL,
         "bad max_norm or NULL g is EINVAL");
  TAP_OK(mrl_clip_grad_norm(NULL, 0, 1.0, &norm) == MRL_OK && norm == 0.0,
         "empty vector has norm 0");
}

static void test_flags(void) {
  const float ok[4] = {0, 1, 1, 0}, odd[4] = {0, 0.5f, 2, 1};
  uint8_t u[4];
  TAP_OK(mrl_flags_from_floats(ok, 4, u) == 4 && u[0] == 0 && u[1] == 1 && u[2] == 1 && u[3] == 0,
         "flags: 0/1 read as such, n when all are 0 or 1");
  TAP_OK(mrl_flags_from_floats(odd, 4, u) == 1 && u[0] == 0 && u[1] == 1 && u[2] == 1 && u[3] == 1,
         "flags: any non-zero is set; the first value neither 0 nor 1 reported");
  float f[4] = {9, 9, 9, 9};
  const uint8_t bits[3] = {1, 0, 1};
  mrl_floats_from_flags(bits, 3, f);
  TAP_OK(f[0] == 1 && f[1] == 0 && f[2] == 1 && f[3] == 9, "flags back to floats, n of them");
  mrl_fill(f, 3, -2.5f);
  TAP_OK(f[0] == -2.5f && f[2] == -2.5f && f[3] == 9, "fill: n elements");
}

int main(void) {
  test_flags();
  test_strings();
  test_all_finite();
  test_clip();
  return tap_done();
}
