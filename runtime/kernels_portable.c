/*
** kernels_portable.c — the kernel template at 16-byte vectors, built with
** the default flags: SSE2 on x86-64, and plain code the compiler splits on a
** target without vectors.  The reference the SIMD variants are tested
** against.
*/
#include <stdint.h>

#define KN_VW 4
#define KN_NV 4
#define KN_RB 2
#define KN_FMA(a, b, c) ((a) * (b) + (c))
#define KN_HSUM(v) ((v)[0] + (v)[1] + ((v)[2] + (v)[3]))
#define KN_TABLE mlp_kernels_portable
#define KN_NAME "portable"
#include "kernels_impl.h"
