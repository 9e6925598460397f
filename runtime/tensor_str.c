/*
** tensor_str.c — how a float tensor prints, once for every binding
** (moonrl.Tensor's __tostring and the shapes in argument errors).
*/
#include <stdio.h>

#include "moonrl.h"

const char *mrl_tensor_str(char *buf, size_t len, int ndim, const int *shape,
                           const float *data, int show) {
  size_t n = 0, numel = 1;
  if (!buf || len == 0) return buf;
  buf[0] = '\0';
#define PUT(...)                                                    \
  do {                                                              \
    if (n < len) {                                                  \
      int k = snprintf(buf + n, len - n, __VA_ARGS__);              \
      if (k > 0) n += (size_t)k;                                    \
    }                                                               \
  } while (0)
  PUT("moonrl.Tensor ");
  for (int d = 0; d < ndim; d++) {
    PUT("[%d]", shape[d]);
    numel *= (size_t)(shape[d] > 0 ? shape[d] : 0);
  }
  if (show < 0) PUT(" (view of a closed object)");
  if (show > 0 && data) {
    size_t shown = numel < 8 ? numel : 8;
    PUT(" {");
    for (size_t i = 0; i < shown; i++) PUT("%s%.6g", i ? ", " : "", (double)data[i]);
    PUT("%s}", shown < numel ? ", …" : "");
  }
#undef PUT
  return buf;
}
