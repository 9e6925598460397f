/*
** finite_row.h — internal: every float of a short row finite, by bit tests
** inline (an observation or a row of logits on the batch-1 act path, where
** a call costs as much as the test).  A float is NaN or Inf exactly when
** its exponent bits are all ones.
*/
#ifndef MRL_FINITE_ROW_H
#define MRL_FINITE_ROW_H

#include <stddef.h>
#include <stdint.h>
#include <string.h>

static inline int finite_row(const float *x, size_t n) {
  uint32_t bad = 0;
  for (size_t i = 0; i < n; i++) {
    uint32_t u;
    memcpy(&u, &x[i], sizeof u);
    bad |= (uint32_t)((u & 0x7f800000u) == 0x7f800000u);
  }
  return !bad;
}

#endif
