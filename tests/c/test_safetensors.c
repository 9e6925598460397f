/* test_safetensors.c — round trips, and hostile files refused cleanly. */
#include <stdlib.h>
#include <unistd.h>

#include "moonrl.h"
#include "tap.h"

static char dir[] = "/tmp/mrl_st_XXXXXX";

/* Builds a file from a header string and n data bytes of value 0x3f. */
static int open_raw(const char *header, size_t ndata, char *err, size_t errlen) {
  size_t hl = strlen(header);
  size_t len = 8 + hl + ndata;
  unsigned char *b = calloc(1, len);
  for (int k = 0; k < 8; k++) b[k] = (unsigned char)((uint64_t)hl >> (8 * k));
  memcpy(b + 8, header, hl);
  memset(b + 8 + hl, 0x3f, ndata);
  mrl_st_file *f = NULL;
  int st = mrl_st_open_memory(&f, b, len, err, errlen);
  mrl_st_close(f);
  free(b);
  return st;
}

static void roundtrip(void) {
  char path[256], err[256] = "";
  snprintf(path, sizeof path, "%s/a.safetensors", dir);
  float w[6] = {1, -2, 3.5f, 1e-30f, -0.0f, 7};
  float b[2] = {0.25f, -8};
  mrl_st_tensor t[2] = {
    {"policy.0.weight", w, 2, {2, 3}},
    {"policy.0.bias", b, 1, {2}},
  };
  const char *keys[] = {"arch", "quote\"d"};
  const char *vals[] = {"{\"obs\":4}", "line\nbreak"};
  int st = mrl_st_write(path, t, 2, keys, vals, 2, err, sizeof err);
  TAP_OK(st == MRL_OK, "write: %s", st ? err : "ok");
  mrl_st_file *f = NULL;
  st = mrl_st_open(&f, path, err, sizeof err);
  TAP_OK(st == MRL_OK && f, "open: %s", st ? err : "ok");
  if (!f) return;
  TAP_OK(mrl_st_count(f) == 2, "two tensors");
  int i = mrl_st_find(f, "policy.0.weight");
  TAP_OK(i >= 0 && mrl_st_ndim(f, i) == 2 && mrl_st_dim(f, i, 0) == 2 &&
         mrl_st_dim(f, i, 1) == 3 && !strcmp(mrl_st_dtype(f, i), "F32"),
         "weight shape [2,3] F32");
  float got[6];
  TAP_OK(mrl_st_read(f, i, got, 6) == MRL_OK && !memcmp(got, w, sizeof w),
         "weight values bit-exact");
  TAP_OK(mrl_st_read(f, i, got, 5) == MRL_EINVAL, "read with wrong count refused");
  TAP_OK(mrl_st_meta_get(f, "arch") && !strcmp(mrl_st_meta_get(f, "arch"), "{\"obs\":4}"),
         "metadata with quotes survives");
  TAP_OK(mrl_st_meta_get(f, "quote\"d") && !strcmp(mrl_st_meta_get(f, "quote\"d"), "line\nbreak"),
         "escaped key and value survive");
  TAP_OK(mrl_st_find(f, "nope") == -1 && mrl_st_meta_get(f, "nope") == NULL, "missing names");
  mrl_st_close(f);
  /* No temporary file is left beside the checkpoint. */
  char cmd[512];
  snprintf(cmd, sizeof cmd, "ls %s | grep -c tmp >/dev/null", dir);
  TAP_OK(system(cmd) != 0, "no temporary file left behind");
}

static void hostile(void) {
  char err[256];
  struct { const char *header; size_t ndata; const char *what; } cases[] = {
    {"{}", 0, NULL},
    {"{\"a\":{\"dtype\":\"F32\",\"shape\":[2],\"data_offsets\":[0,8]}}", 8, NULL},
    {"{\"a\":{\"dtype\":\"F32\",\"shape\":[2],\"data_offsets\":[0,8]}}", 4, "offsets past the data"},
    {"{\"a\":{\"dtype\":\"F32\",\"shape\":[3],\"data_offsets\":[0,8]}}", 8, "shape/bytes mismatch"},
    {"{\"a\":{\"dtype\":\"I64\",\"shape\":[1],\"data_offsets\":[0,8]}}", 8, "unsupported dtype"},
    {"{\"a\":{\"dtype\":\"F32\",\"shape\":[2],\"data_offsets\":[4,0]}}", 8, "reversed offsets"},
    {"{\"a\":{\"dtype\":\"F32\",\"shape\":[2],\"data_offsets\":[0,8]},"
     "\"b\":{\"dtype\":\"F32\",\"shape\":[2],\"data_offsets\":[4,12]}}", 12, "overlap"},
    {"{\"a\":{\"dtype\":\"F32\",\"shape\":[2],\"data_offsets\":[0,8]},"
     "\"a\":{\"dtype\":\"F32\",\"shape\":[0],\"data_offsets\":[8,8]}}", 8, "duplicate name"},
    {"{\"a\":{\"dtype\":\"F32\",\"shape\":[4611686018427387904,4],\"data_offsets\":[0,8]}}", 8, "shape overflow"},
    {"{\"a\":{\"dtype\":\"F32\",\"shape\":[99999999999999999999],\"data_offsets\":[0,8]}}", 8, "huge integer"},
    {"{\"a\":{\"dtype\":\"F32\",\"shape\":[-1],\"data_offsets\":[0,8]}}", 8, "negative dim"},
    {"{\"a\":{\"dtype\":\"F32\",\"shape\":[1,1,1,1,1,1,1,1,1],\"data_offsets\":[0,4]}}", 4, "too many dims"},
    {"{\"a\":{\"dtype\":\"F32\"}}", 0, "missing fields"},
    {"{\"a\":[1,2]}", 0, "tensor entry not an object"},
    {"{\"a\":{\"dtype\":\"F32\",\"shape\":[1],\"data_offsets\":[0,4]}", 4, "unterminated object"},
    {"{\"a\":{\"dtype\":\"F32\",\"shape\":[1],\"data_offsets\":[0,4]}}xx", 4, "trailing garbage"},
    {"{\"__metadata__\":{\"k\":1}}", 0, "non-string metadata"},
    {"{\"a\\q\":{}}", 0, "bad escape"},
    {"[]", 0, "not an object"},
  };
  for (size_t k = 0; k < sizeof cases / sizeof cases[0]; k++) {
    int st = open_raw(cases[k].header, cases[k].ndata, err, sizeof err);
    if (!cases[k].what)
      TAP_OK(st == MRL_OK, "valid header %zu accepted (%s)", k, st ? err : "ok");
    else
      TAP_OK(st == MRL_EFORMAT, "%s refused: %s", cases[k].what, st ? err : "ACCEPTED");
  }
  /* Truncations of a valid file at every length all fail cleanly. */
  char path[256];
  snprintf(path, sizeof path, "%s/t.safetensors", dir);
  float w[4] = {1, 2, 3, 4};
  mrl_st_tensor t = {"w", w, 1, {4}};
  mrl_st_write(path, &t, 1, NULL, NULL, 0, err, sizeof err);
  FILE *fp = fopen(path, "rb");
  unsigned char buf[512];
  size_t n = fread(buf, 1, sizeof buf, fp);
  fclose(fp);
  int bad = 0;
  for (size_t len = 0; len < n; len++) {
    mrl_st_file *f = NULL;
    if (mrl_st_open_memory(&f, buf, len, err, sizeof err) == MRL_OK) bad++;
    mrl_st_close(f);
  }
  TAP_OK(bad == 0, "all %zu truncations refused", n);
  /* Header length larger than the file. */
  buf[0] = 0xff; buf[1] = 0xff; buf[7] = 0x7f;
  mrl_st_file *f = NULL;
  TAP_OK(mrl_st_open_memory(&f, buf, n, err, sizeof err) == MRL_EFORMAT,
         "absurd header length refused: %s", err);
  TAP_OK(mrl_st_open(&f, "/nonexistent/x.safetensors", err, sizeof err) == MRL_EIO,
         "missing file is MRL_EIO: %s", err);
}

static void half_precision(void) {
  char err[256];
  /* F16 1.0 = 0x3c00, -2.0 = 0xc000; BF16 1.0 = 0x3f80. */
  const char *h = "{\"h\":{\"dtype\":\"F16\",\"shape\":[2],\"data_offsets\":[0,4]},"
                  "\"b\":{\"dtype\":\"BF16\",\"shape\":[1],\"data_offsets\":[4,6]}}";
  size_t hl = strlen(h);
  unsigned char b[512] = {0};
  for (int k = 0; k < 8; k++) b[k] = (unsigned char)((uint64_t)hl >> (8 * k));
  memcpy(b + 8, h, hl);
  unsigned char data[6] = {0x00, 0x3c, 0x00, 0xc0, 0x80, 0x3f};
  memcpy(b + 8 + hl, data, 6);
  mrl_st_file *f = NULL;
  int st = mrl_st_open_memory(&f, b, 8 + hl + 6, err, sizeof err);
  float v[2] = {0}, w[1] = {0};
  if (!st) {
    mrl_st_read(f, mrl_st_find(f, "h"), v, 2);
    mrl_st_read(f, mrl_st_find(f, "b"), w, 1);
  }
  TAP_OK(!st && v[0] == 1.0f && v[1] == -2.0f && w[0] == 1.0f, "F16/BF16 convert");
  mrl_st_close(f);
}

int main(void) {
  if (!mkdtemp(dir)) return 1;
  roundtrip();
  hostile();
  half_precision();
  char cmd[300];
  snprintf(cmd, sizeof cmd, "rm -rf %s", dir);
  if (system(cmd)) {}
  return tap_done();
}
