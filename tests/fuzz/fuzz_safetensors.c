/*
** fuzz_safetensors.c — libFuzzer target for the safetensors reader
** (runtime/safetensors.c): any byte string given to mrl_st_open_memory must
** either fail with a status and a message, or open a file whose every
** tensor reads in bounds and whose accessors stay consistent.  Built with
** -fsanitize=fuzzer,address,undefined by tests/fuzz.t and `make fuzz`;
** seeds in tests/fuzz/corpus/, tokens in tests/fuzz/safetensors.dict.
*/
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "moonrl.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
  char err[256];
  err[0] = 0;
  mrl_st_file *f = NULL;
  int st = mrl_st_open_memory(&f, data, size, err, sizeof err);
  if (st != MRL_OK) {
    /* a failure always says why, and leaves no handle */
    if (f != NULL || err[0] == 0 || memchr(err, 0, sizeof err) == NULL) abort();
    return 0;
  }
  int n = mrl_st_count(f);
  if (n < 0) abort();
  for (int i = 0; i < n; i++) {
    const char *name = mrl_st_name(f, i);
    const char *dtype = mrl_st_dtype(f, i);
    if (!name || !dtype || mrl_st_find(f, name) != i) abort();
    int nd = mrl_st_ndim(f, i);
    if (nd < 0 || nd > MRL_ST_MAX_DIMS) abort();
    int64_t prod = 1;
    for (int d = 0; d < nd; d++) {
      int64_t dim = mrl_st_dim(f, i, d);
      if (dim < 0) abort();
      prod *= dim;  /* the reader checked that this cannot overflow */
    }
    int64_t numel = mrl_st_numel(f, i);
    if (numel != prod || numel < 0 || (size_t)numel > size) abort();
    float *out = malloc((size_t)numel * sizeof(float) + 1);
    if (!out) continue;
    if (mrl_st_read(f, i, out, (size_t)numel) != MRL_OK) abort();
    /* a wrong count is refused */
    if (mrl_st_read(f, i, out, (size_t)numel + 1) == MRL_OK) abort();
    free(out);
  }
  if (mrl_st_name(f, n) != NULL || mrl_st_ndim(f, -1) != -1) abort();
  int nm = mrl_st_meta_count(f);
  for (int i = 0; i < nm; i++) {
    const char *k = mrl_st_meta_key(f, i);
    if (!k || !mrl_st_meta_get(f, k)) abort();
  }
  mrl_st_close(f);
  return 0;
}
