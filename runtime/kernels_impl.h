/*
** kernels_impl.h — the kernel template, included once by each
** kernels_*.c after it defines:
**   KN_VW        floats per vector          KN_RB  rows per register tile
**   KN_NV        vectors per register tile  KN_TABLE, KN_NAME  the table
**   KN_FMA(a,b,c) a·b + c (fused where the target has it)
**   KN_HSUM(v)    sum of the lanes of v
**   KN_DIV(a,b)   a / b to ~1 ulp (optional; default the division)
**   KN_MIN9(a)    min(a, 9) keeping a NaN (optional)
** Written with GCC vector extensions so one source serves every width; the
** register tile acc[KN_RB][KN_NV] is fully unrolled so it lives in registers.
*/
#include <stdint.h>
#include <string.h>
#include "kernels.h"

typedef float kn_vf __attribute__((vector_size(KN_VW * 4)));
typedef int32_t kn_vi __attribute__((vector_size(KN_VW * 4)));
typedef uint32_t kn_vu __attribute__((vector_size(KN_VW * 4)));  /* bit work */

#ifndef KN_DIV
#define KN_DIV(a, b) ((a) / (b))
#endif

#define KN_NT (KN_NV * KN_VW)  /* columns of a register tile */
#define KN_KT 128              /* depth of a packed panel */

/* Lane j of a permutation for one level of kn_reduce: the groups of 2c
** lanes (one group per original vector) of a then b are halved, lo keeping
** the first c lanes of each group, hi the last c. */
#define KN_SRC(j, c, hi)                                                    \
  ((((j) / (c)) < KN_VW / (2 * (c)) ? 0 : KN_VW) +                           \
   (((j) / (c)) % (KN_VW / (2 * (c)))) * 2 * (c) + (j) % (c) + ((hi) ? (c) : 0))
#if KN_VW == 16
#define KN_MASK(c, h)                                                       \
  ((kn_vi){KN_SRC(0, c, h), KN_SRC(1, c, h), KN_SRC(2, c, h), KN_SRC(3, c, h), \
           KN_SRC(4, c, h), KN_SRC(5, c, h), KN_SRC(6, c, h), KN_SRC(7, c, h), \
           KN_SRC(8, c, h), KN_SRC(9, c, h), KN_SRC(10, c, h), KN_SRC(11, c, h), \
           KN_SRC(12, c, h), KN_SRC(13, c, h), KN_SRC(14, c, h), KN_SRC(15, c, h)})
#elif KN_VW == 8
#define KN_MASK(c, h)                                                       \
  ((kn_vi){KN_SRC(0, c, h), KN_SRC(1, c, h), KN_SRC(2, c, h), KN_SRC(3, c, h), \
           KN_SRC(4, c, h), KN_SRC(5, c, h), KN_SRC(6, c, h), KN_SRC(7, c, h)})
#elif KN_VW == 4
#define KN_MASK(c, h)                                                       \
  ((kn_vi){KN_SRC(0, c, h), KN_SRC(1, c, h), KN_SRC(2, c, h), KN_SRC(3, c, h)})
#else
#error "KN_VW must be 4, 8 or 16"
#endif
#define KN_LEVEL(c, cnt)                                                    \
  _Pragma("GCC unroll 8") for (int t = 0; t < (cnt) / 2; t++)               \
    v[t] = __builtin_shuffle(v[2 * t], v[2 * t + 1], KN_MASK(c, 0)) +       \
           __builtin_shuffle(v[2 * t], v[2 * t + 1], KN_MASK(c, 1));


static inline kn_vf kn_load(const float *p) {
  kn_vf v;
  memcpy(&v, p, sizeof v);
  return v;
}
static inline void kn_store(float *p, kn_vf v) { memcpy(p, &v, sizeof v); }
/* Lane by lane, which compiles to one broadcast; {0} + s would have to
** compute 0 + s (it maps −0 to +0) and costs a scalar add per use. */
static inline kn_vf kn_set1(float s) {
  kn_vf v;
  for (int i = 0; i < KN_VW; i++) v[i] = s;
  return v;
}
static inline kn_vi kn_set1i(int32_t s) { return (kn_vi){0} + s; }

/* One register tile: R rows of C, KN_NT columns (nw of them real), over a
** panel of kw rows ps floats apart.  Inlined with R constant so the loops unroll. */
static inline __attribute__((always_inline)) void
kn_tile(const int R, int kw, const float *A, ptrdiff_t sam, ptrdiff_t sak,
        const float *panel, ptrdiff_t ps, float *C, ptrdiff_t ldc, int nw,
        const float *bias, int load_c) {
  kn_vf acc[KN_RB][KN_NV];
  float tmp[KN_NT];
#pragma GCC unroll 8
  for (int r = 0; r < R; r++) {
    const float *src = load_c ? C + r * ldc : bias;
    if (!src) {
#pragma GCC unroll 8
      for (int v = 0; v < KN_NV; v++) acc[r][v] = kn_set1(0.0f);
    } else if (nw == KN_NT) {
#pragma GCC unroll 8
      for (int v = 0; v < KN_NV; v++) acc[r][v] = kn_load(src + v * KN_VW);
    } else {
      memset(tmp, 0, sizeof tmp);
      memcpy(tmp, src, (size_t)nw * sizeof(float));
#pragma GCC unroll 8
      for (int v = 0; v < KN_NV; v++) acc[r][v] = kn_load(tmp + v * KN_VW);
    }
  }
  for (int k = 0; k < kw; k++) {
    kn_vf b[KN_NV];
#pragma GCC unroll 8
    for (int v = 0; v < KN_NV; v++) b[v] = kn_load(panel + k * ps + v * KN_VW);
#pragma GCC unroll 8
    for (int r = 0; r < R; r++) {
      kn_vf a = kn_set1(A[r * sam + k * sak]);
#pragma GCC unroll 8
      for (int v = 0; v < KN_NV; v++) acc[r][v] = KN_FMA(a, b[v], acc[r][v]);
    }
  }
#pragma GCC unroll 8
  for (int r = 0; r < R; r++) {
    if (nw == KN_NT) {
#pragma GCC unroll 8
      for (int v = 0; v < KN_NV; v++) kn_store(C + r * ldc + v * KN_VW, acc[r][v]);
    } else {
#pragma GCC unroll 8
      for (int v = 0; v < KN_NV; v++) kn_store(tmp + v * KN_VW, acc[r][v]);
      memcpy(C + r * ldc, tmp, (size_t)nw * sizeof(float));
    }
  }
}

/* panel[k][j] = src[j·sbn + k] for k < kw, j < nw, zero for nw ≤ j < NT:
** packing Wᵀ.  Whole VW×VW blocks are transposed in registers: log2 VW
** rounds of even/odd unzips (KN_MASK at c = 1), each a rotation by one bit
** of (vector index, lane), so after log2 VW rounds the two have swapped. */
static void kn_pack_t(float *panel, const float *src, ptrdiff_t sbn, int kw,
                      int nw) {
  const int kb = kw - kw % KN_VW, jb = nw - nw % KN_VW;
  for (int k0 = 0; k0 < kb; k0 += KN_VW)
    for (int j0 = 0; j0 < jb; j0 += KN_VW) {
      kn_vf v[KN_VW], o[KN_VW];
#pragma GCC unroll 16
      for (int r = 0; r < KN_VW; r++) v[r] = kn_load(src + (ptrdiff_t)(j0 + r) * sbn + k0);
#pragma GCC unroll 4
      for (int round = 1; round < KN_VW; round *= 2) {
#pragma GCC unroll 8
        for (int t = 0; t < KN_VW / 2; t++) {
          o[t] = __builtin_shuffle(v[2 * t], v[2 * t + 1], KN_MASK(1, 0));
          o[t + KN_VW / 2] = __builtin_shuffle(v[2 * t], v[2 * t + 1], KN_MASK(1, 1));
        }
#pragma GCC unroll 16
        for (int r = 0; r < KN_VW; r++) v[r] = o[r];
      }
#pragma GCC unroll 16
      for (int k = 0; k < KN_VW; k++) kn_store(panel + (k0 + k) * KN_NT + j0, v[k]);
    }
  for (int k = 0; k < kw; k++) {
    float *prow = panel + k * KN_NT;
    for (int j = k < kb ? jb : 0; j < nw; j++) prow[j] = src[(ptrdiff_t)j * sbn + k];
    for (int j = nw; j < KN_NT; j++) prow[j] = 0.0f;
  }
}

static void kn_gemm(int M, int N, int K, const float *A, ptrdiff_t sam,
                    ptrdiff_t sak, const float *B, ptrdiff_t sbk,
                    ptrdiff_t sbn, float *C, ptrdiff_t ldc, const float *bias,
                    int accumulate) {
  /* B is packed panel by panel into [k][KN_NT] with zero columns past N,
  ** so the tile loop runs over contiguous, tail-free rows; rows of B that
  ** are already that are read in place. */
  float panel[KN_KT * KN_NT] __attribute__((aligned(64)));
  for (int n0 = 0; n0 < N; n0 += KN_NT) {
    int nw = N - n0 < KN_NT ? N - n0 : KN_NT;
    for (int k0 = 0; k0 < K; k0 += KN_KT) {
      int kw = K - k0 < KN_KT ? K - k0 : KN_KT;
      const float *pan = panel;
      ptrdiff_t ps = KN_NT;
      if (sbn == 1 && nw == KN_NT) {
        /* whole contiguous rows of B: the tiles read them in place (a
        ** copy cost as much as the small products it fed) */
        pan = B + (ptrdiff_t)k0 * sbk + n0;
        ps = sbk;
      } else if (sbk == 1 && sbn != 1) {
        kn_pack_t(panel, B + k0 + (ptrdiff_t)n0 * sbn, sbn, kw, nw);
      } else {
        for (int k = 0; k < kw; k++) {
          const float *brow = B + (ptrdiff_t)(k0 + k) * sbk + (ptrdiff_t)n0 * sbn;
          float *prow = panel + k * KN_NT;
          for (int j = 0; j < nw; j++) prow[j] = brow[j * sbn];
          for (int j = nw; j < KN_NT; j++) prow[j] = 0.0f;
        }
      }
      int load_c = accumulate || k0 > 0;
      const float *bn = (!load_c && bias) ? bias + n0 : NULL;
      const float *Ak = A + (ptrdiff_t)k0 * sak;
      float *Cn = C + n0;
      int m = 0;
      for (; m + KN_RB <= M; m += KN_RB)
        kn_tile(KN_RB, kw, Ak + m * sam, sam, sak, pan, ps, Cn + m * ldc, ldc,
                nw, bn, load_c);
      /* the last M mod RB rows in one tile: a 1-row tile is a few long
      ** dependent FMA chains, so two or three of them in a row waited on
      ** latency (the output layer's weight gradient, M = 2) */
      if (KN_RB > 3 && M - m == 3)
        kn_tile(3, kw, Ak + m * sam, sam, sak, pan, ps, Cn + m * ldc, ldc, nw,
                bn, load_c);
      else if (KN_RB > 2 && M - m == 2)
        kn_tile(2, kw, Ak + m * sam, sam, sak, pan, ps, Cn + m * ldc, ldc, nw,
                bn, load_c);
      else
        for (; m < M; m++)
          kn_tile(1, kw, Ak + m * sam, sam, sak, pan, ps, Cn + m * ldc, ldc, nw,
                  bn, load_c);
    }
  }
}

/* Lane j of the result is the sum of the lanes of v[j] (v is clobbered):
** a transposing tree, VW − 1 pair steps instead of VW horizontal sums.
** The steps that take most of the shuffles stay inside 128-bit lanes (the
** pattern of shufps, one cycle on the in-lane shuffle units): two of them
** leave, per lane l of v[g], the partial sums of rows 4g..4g+3 over their
** lanes 4l..4l+3; then steps over whole 128-bit blocks add the blocks up.
** Rows come out in order, lane 4g + i holding row 4g + i.  (Cross-lane
** two-source permutes at every level were slower at batch 1.) */
#if KN_VW == 16
#define KN_LANES(F, c) F(0, c), F(1, c), F(2, c), F(3, c), F(4, c), F(5, c), \
  F(6, c), F(7, c), F(8, c), F(9, c), F(10, c), F(11, c), F(12, c), F(13, c), \
  F(14, c), F(15, c)
#elif KN_VW == 8
#define KN_LANES(F, c) F(0, c), F(1, c), F(2, c), F(3, c), F(4, c), F(5, c), \
  F(6, c), F(7, c)
#else
#define KN_LANES(F, c) F(0, c), F(1, c), F(2, c), F(3, c)
#endif
#define KN_SPI(j, sel) \
  ((((j) % 4) < 2 ? 0 : KN_VW) + 4 * ((j) / 4) + 2 * ((j) % 2) + (sel))
#define KN_SP(a, b, sel) \
  __builtin_shuffle((a), (b), (kn_vi){KN_LANES(KN_SPI, sel)})
#if KN_VW >= 8
/* dst block d ← block 2·(d mod B/2) + sel of a (d < B/2) or b, B = VW/4 */
#define KN_BKI(j, sel)                                                      \
  ((((j) / 4) < KN_VW / 8 ? 0 : KN_VW) +                                     \
   4 * (2 * (((j) / 4) % (KN_VW / 8)) + (sel)) + (j) % 4)
#define KN_BK(a, b, sel) \
  __builtin_shuffle((a), (b), (kn_vi){KN_LANES(KN_BKI, sel)})
#endif
static inline __attribute__((always_inline)) kn_vf kn_reduce(kn_vf *v) {
#pragma GCC unroll 8
  for (int t = 0; t < KN_VW / 2; t++)
    v[t] = KN_SP(v[2 * t], v[2 * t + 1], 0) + KN_SP(v[2 * t], v[2 * t + 1], 1);
#pragma GCC unroll 4
  for (int t = 0; t < KN_VW / 4; t++)
    v[t] = KN_SP(v[2 * t], v[2 * t + 1], 0) + KN_SP(v[2 * t], v[2 * t + 1], 1);
#if KN_VW >= 8
#pragma GCC unroll 2
  for (int n = KN_VW / 4; n > 1; n /= 2)
#pragma GCC unroll 2
    for (int t = 0; t < n / 2; t++)
      v[t] = KN_BK(v[2 * t], v[2 * t + 1], 0) + KN_BK(v[2 * t], v[2 * t + 1], 1);
#endif
  return v[0];
}

/* x[0..K) repeated across a vector, K = 2, 4 or 8 (< VW): loaded whole and
** shuffled, where scalar stores into a buffer read back as one vector
** would stall store forwarding on every row. */
#define KN_R16(K) 0 % (K), 1 % (K), 2 % (K), 3 % (K), 4 % (K), 5 % (K), 6 % (K), \
  7 % (K), 8 % (K), 9 % (K), 10 % (K), 11 % (K), 12 % (K), 13 % (K), 14 % (K), 15 % (K)
#if KN_VW == 16
#define KN_REP(K) KN_R16(K)
#elif KN_VW == 8
#define KN_REP(K) 0 % (K), 1 % (K), 2 % (K), 3 % (K), 4 % (K), 5 % (K), 6 % (K), 7 % (K)
#else
#define KN_REP(K) 0 % (K), 1 % (K), 2 % (K), 3 % (K)
#endif
static inline kn_vf kn_repeat(const float *x, int K) {
  typedef float kn_v2 __attribute__((vector_size(8)));
  typedef float kn_v4 __attribute__((vector_size(16)));
  typedef float kn_v8 __attribute__((vector_size(32)));
  if (K == 2) {
    kn_v2 q;
    memcpy(&q, x, sizeof q);
    return __builtin_shufflevector(q, q, KN_REP(2));
  }
#if KN_VW >= 8
  if (K == 4) {
    kn_v4 q;
    memcpy(&q, x, sizeof q);
    return __builtin_shufflevector(q, q, KN_REP(4));
  }
#endif
#if KN_VW >= 16
  if (K == 8) {
    kn_v8 q;
    memcpy(&q, x, sizeof q);
    return __builtin_shufflevector(q, q, KN_REP(8));
  }
#endif
  (void)sizeof(kn_v4);
  (void)sizeof(kn_v8);
  return kn_set1(x[0]);  /* not reached: K is 2, 4 or 8 */
}

/* Lane j: Σ_k xr[k]·w[j·K + k] over a block of VW rows of W, one
** accumulator per row so each x vector is loaded once for all of them, then
** one transposing reduction; kv whole vectors first, the zero-padded row
** tails in tb (if any) against xtail before them.  Inlined with kv constant
** (and K = kv·VW) for the usual widths: the loops unroll, the rows are
** immediate offsets of one pointer, and the VW accumulators stay in
** registers (a runtime j index, or K, had spilled them to the stack). */
static inline __attribute__((always_inline)) kn_vf
kn_dot_block(int kv, const float *xr, const float *w, ptrdiff_t K,
             const float *tb, kn_vf xtail) {
  kn_vf acc[KN_VW];
#pragma GCC unroll 16
  for (int j = 0; j < KN_VW; j++)
    acc[j] = tb ? xtail * kn_load(tb + j * KN_VW) : kn_set1(0.0f);
#pragma GCC unroll 4
  for (int k = 0; k < kv * KN_VW; k += KN_VW) {
    kn_vf xv = kn_load(xr + k);
#pragma GCC unroll 16
    for (int j = 0; j < KN_VW; j++)
      acc[j] = KN_FMA(xv, kn_load(w + (ptrdiff_t)j * K + k), acc[j]);
  }
  return kn_reduce(acc);
}

/* v[0..K) (K = 1, 2, 4 or 8 < VW) hold VW rows of K products each, row by
** row; afterwards lane j of v[0] is the sum of row j: the last log2 K
** levels of the transposing tree. */
static inline __attribute__((always_inline)) void kn_group_sums(kn_vf *v,
                                                                const int K) {
  switch (K) {
#if KN_VW >= 16
    case 8: KN_LEVEL(4, 8) KN_LEVEL(2, 4) KN_LEVEL(1, 2) break;
#endif
#if KN_VW >= 8
    case 4: KN_LEVEL(2, 4) KN_LEVEL(1, 2) break;
#endif
    case 2: KN_LEVEL(1, 2) break;
    default: break;
  }
}

static void kn_linear_dot(int M, int N, int K, const float *x, const float *W,
                          const float *bias, float *y) {
  const int Kv = K - K % KN_VW, Kt = K - Kv;  /* whole vectors, then a tail */
  const int short_rows = K < KN_VW && (K == 2 || K == 4 || K == 8);
  /* row tails of a block of W, zero-padded to a vector each: never read
  ** past W, and the padding lanes meet zeros of the padded x tail */
  float tb[KN_VW * KN_VW] __attribute__((aligned(64)));
  if (Kt > 0 && !short_rows && N >= KN_VW)
    for (int j = 0; j < KN_VW; j++) kn_store(tb + j * KN_VW, kn_set1(0.0f));
  int m = 0;
  if (N < KN_VW && Kt == 0) {
    /* a narrow output layer over a batch: the roles swap, VW rows of x
    ** against one row of W per block, so the reduction tree is shared by
    ** VW rows instead of a horizontal sum per output */
    const kn_vf z = kn_set1(0.0f);
    for (; m + KN_VW <= M; m += KN_VW)
      for (int n = 0; n < N; n++) {
        const float *xb = x + (ptrdiff_t)m * K, *wr = W + (ptrdiff_t)n * K;
        kn_vf d;
        switch (Kv / KN_VW) {
          case 1: d = kn_dot_block(1, wr, xb, 1 * KN_VW, NULL, z); break;
          case 2: d = kn_dot_block(2, wr, xb, 2 * KN_VW, NULL, z); break;
          case 4: d = kn_dot_block(4, wr, xb, 4 * KN_VW, NULL, z); break;
          case 8: d = kn_dot_block(8, wr, xb, 8 * KN_VW, NULL, z); break;
          default: d = kn_dot_block(Kv / KN_VW, wr, xb, K, NULL, z); break;
        }
        d += kn_set1(bias[n]);
        for (int j = 0; j < KN_VW; j++) y[(ptrdiff_t)(m + j) * N + n] = d[j];
      }
  }
  for (; m < M; m++) {
    const float *xr = x + (ptrdiff_t)m * K;
    float *yr = y + (ptrdiff_t)m * N;
    int n = 0;
    if (short_rows) {
      /* short rows dividing a vector (observation layers): a block of VW
      ** rows is K contiguous vectors; multiply by x repeated and sum each
      ** group of K lanes with the last log2 K levels of the tree */
      const kn_vf xrep = kn_repeat(xr, K);
      for (; n + KN_VW <= N; n += KN_VW) {
        kn_vf v[8] = {0};  /* K is not a constant here: all 8 look read */
        const float *w = W + (ptrdiff_t)n * K;
        for (int q = 0; q < K; q++) v[q] = kn_load(w + q * KN_VW) * xrep;
        kn_group_sums(v, K);
        kn_store(yr + n, v[0] + kn_load(bias + n));
      }
    }
    /* blocks of VW outputs */
    if (n + KN_VW <= N && Kt == 0) {
      for (; n + KN_VW <= N; n += KN_VW) {
        const float *w = W + (ptrdiff_t)n * K;
        const kn_vf z = kn_set1(0.0f);
        kn_vf d;
        switch (Kv / KN_VW) {
          case 1: d = kn_dot_block(1, xr, w, 1 * KN_VW, NULL, z); break;
          case 2: d = kn_dot_block(2, xr, w, 2 * KN_VW, NULL, z); break;
          case 4: d = kn_dot_block(4, xr, w, 4 * KN_VW, NULL, z); break;
          case 8: d = kn_dot_block(8, xr, w, 8 * KN_VW, NULL, z); break;
          case 16: d = kn_dot_block(16, xr, w, 16 * KN_VW, NULL, z); break;
          default: d = kn_dot_block(Kv / KN_VW, xr, w, K, NULL, z); break;
        }
        kn_store(yr + n, d + kn_load(bias + n));
      }
    } else if (n + KN_VW <= N) {
      float xt[KN_VW] = {0};
      for (int t = 0; t < Kt; t++) xt[t] = xr[Kv + t];
      const kn_vf xtail = kn_load(xt);
      for (; n + KN_VW <= N; n += KN_VW) {
        const float *w = W + (ptrdiff_t)n * K;
        for (int j = 0; j < KN_VW; j++)
          for (int t = 0; t < Kt; t++) tb[j * KN_VW + t] = w[(ptrdiff_t)j * K + Kv + t];
        kn_vf d = kn_dot_block(Kv / KN_VW, xr, w, K, tb, xtail);
        kn_store(yr + n, d + kn_load(bias + n));
      }
    }
    /* the rest one output at a time (narrow layers, short rows) */
    for (; n < N; n++) {
      const float *w = W + (ptrdiff_t)n * K;
      float s = 0.0f;
      int k = 0;
      if (Kv > 0) {
        kn_vf a0 = kn_set1(0.0f), a1 = a0;
        for (; k + 2 * KN_VW <= K; k += 2 * KN_VW) {
          a0 = KN_FMA(kn_load(xr + k), kn_load(w + k), a0);
          a1 = KN_FMA(kn_load(xr + k + KN_VW), kn_load(w + k + KN_VW), a1);
        }
        if (k + KN_VW <= K) {
          a0 = KN_FMA(kn_load(xr + k), kn_load(w + k), a0);
          k += KN_VW;
        }
        s = KN_HSUM(a0 + a1);
      }
      for (; k < K; k++) s += xr[k] * w[k];
      yr[n] = bias[n] + s;
    }
  }
}

/* min(a, 9) for a ≥ 0 or NaN, keeping a NaN (x86 minps returns its second
** operand when either is NaN, so the targets pass KN_MIN9 as one min). */
#ifndef KN_MIN9
static inline kn_vf kn_min9(kn_vf a) {
  kn_vi big = a > kn_set1(9.0f);
  return (kn_vf)(((kn_vi)a & ~big) | ((kn_vi)kn_set1(9.0f) & big));
}
#define KN_MIN9(a) kn_min9(a)
#endif

/* tanh(x) = x·P(x²)/Q(x²) for |x| < 9, P and Q of degree 4 with P(0) =
** Q(0) = 1 (so tanh(x) = x for tiny x, denormals included), and 1 from
** |x| ≥ 9, where tanh rounds to 1 in float; the sign is x's, a NaN stays
** NaN.  The coefficients are a rational fit of tanh(√t)/√t on t ∈ [0, 81]
** minimising the largest relative error (2.2e-8, done for this file with
** mpmath); every coefficient is positive, so neither polynomial cancels,
** and in float the result is within 3.4e-7 of tanh.  Both polynomials go
** by Estrin's scheme (3 dependent steps each, side by side).  Against
** the exp-based form it replaced: 20 vector operations instead of 28, and
** no trip through the integer units, which at batch 1 lies twice on the
** path of every act. */
static inline __attribute__((always_inline)) kn_vf kn_tanh(kn_vf x) {
  const kn_vi signbit = kn_set1i(INT32_MIN);
  const kn_vi sign = (kn_vi)x & signbit;
  const kn_vf a = KN_MIN9((kn_vf)((kn_vi)x & ~signbit));
  const kn_vf t = a * a, t2 = t * t;
  const kn_vf p01 = KN_FMA(kn_set1(0.13383925781370784f), t, kn_set1(1.0f));
  const kn_vf p23 = KN_FMA(kn_set1(2.0660262643463126e-5f), t,
                           kn_set1(3.4989323796417569e-3f));
  const kn_vf q01 = KN_FMA(kn_set1(0.46717247254719525f), t, kn_set1(1.0f));
  const kn_vf q23 = KN_FMA(kn_set1(3.2909362138121097e-4f), t,
                           kn_set1(2.5889961283159956e-2f));
  const kn_vf p = KN_FMA(KN_FMA(kn_set1(1.3418535868277401e-8f), t2, p23), t2, p01);
  const kn_vf q = KN_FMA(KN_FMA(kn_set1(7.8041816054286787e-7f), t2, q23), t2, q01);
  kn_vf th = KN_DIV(a * p, q);  /* ≥ 0 */
  const kn_vi sat = (kn_vi)(a >= kn_set1(9.0f));  /* false for a NaN */
  th = (kn_vf)(((kn_vi)th & ~sat) | ((kn_vi)kn_set1(1.0f) & sat));
  return (kn_vf)((kn_vi)th | sign);
}

static inline kn_vf kn_relu(kn_vf x) {
  kn_vi neg = x < kn_set1(0.0f);  /* NaN is not negative: it passes through */
  return (kn_vf)((kn_vi)x & ~neg);
}

static void kn_act_forward(mrl_activation act, float *y, size_t n) {
  size_t i = 0;
  if (act == MRL_TANH) {
    for (; i + KN_VW <= n; i += KN_VW) kn_store(y + i, kn_tanh(kn_load(y + i)));
  } else {
    for (; i + KN_VW <= n; i += KN_VW) kn_store(y + i, kn_relu(kn_load(y + i)));
  }
  if (i < n) {
    float tmp[KN_VW] = {0};
    memcpy(tmp, y + i, (n - i) * sizeof(float));
    kn_vf v = kn_load(tmp);
    kn_store(tmp, act == MRL_TANH ? kn_tanh(v) : kn_relu(v));
    memcpy(y + i, tmp, (n - i) * sizeof(float));
  }
}

static void kn_act_backward(mrl_activation act, const float *y, float *d,
                            size_t n) {
  size_t i = 0;
  if (act == MRL_TANH) {
    for (; i + KN_VW <= n; i += KN_VW) {
      kn_vf t = kn_load(y + i);
      kn_store(d + i, kn_load(d + i) * (1.0f - t * t));
    }
    for (; i < n; i++) d[i] *= 1.0f - y[i] * y[i];
  } else {
    for (; i + KN_VW <= n; i += KN_VW) {
      kn_vi pos = kn_load(y + i) > kn_set1(0.0f);
      kn_store(d + i, (kn_vf)((kn_vi)kn_load(d + i) & pos));
    }
    for (; i < n; i++) d[i] = y[i] > 0.0f ? d[i] : 0.0f;
  }
}

static void kn_add_colsum(int M, int N, const float *A, float *out) {
  int n = 0;
  for (; n + KN_VW <= N; n += KN_VW) {
    kn_vf s0 = kn_load(out + n), s1 = kn_set1(0.0f);
    int m = 0;
    for (; m + 2 <= M; m += 2) {  /* two chains hide the add latency */
      s0 += kn_load(A + (ptrdiff_t)m * N + n);
      s1 += kn_load(A + (ptrdiff_t)(m + 1) * N + n);
    }
    if (m < M) s0 += kn_load(A + (ptrdiff_t)m * N + n);
    kn_store(out + n, s0 + s1);
  }
  for (; n < N; n++) {
    float s = out[n];
    for (int m = 0; m < M; m++) s += A[(ptrdiff_t)m * N + n];
    out[n] = s;
  }
}

/* C[m][n] += Σ_k A[m·lda + k]·B[n·ldb + k]: both operands run along k (a
** weight gradient, summed over a batch), so nothing is packed or
** transposed.  A tile pairs DX rows of A with DW rows of B, DX·DW = VW
** vector accumulators, one kn_reduce sums them all at once; per step DX + DW
** loads feed VW multiply-adds. */
#define KN_DX (KN_VW == 4 ? 2 : 4)
#define KN_DW (KN_VW / KN_DX)
static inline float kn_dot_nt(int K, int Kv, const float *a, const float *b) {
  kn_vf acc = kn_set1(0.0f);
  for (int k = 0; k < Kv; k += KN_VW)
    acc = KN_FMA(kn_load(a + k), kn_load(b + k), acc);
  float s = KN_HSUM(acc);
  for (int k = Kv; k < K; k++) s += a[k] * b[k];
  return s;
}

static void kn_gemm_nt(int M, int N, int K, const float *A, ptrdiff_t lda,
                       const float *B, ptrdiff_t ldb, float *C,
                       ptrdiff_t ldc) {
  const int Kv = K - K % KN_VW;
  int n = 0;
  for (; n + KN_DW <= N; n += KN_DW) {
    const float *Bn = B + (ptrdiff_t)n * ldb;
    int m = 0;
    for (; m + KN_DX <= M; m += KN_DX) {
      const float *Am = A + (ptrdiff_t)m * lda;
      kn_vf acc[KN_VW];
#pragma GCC unroll 16
      for (int j = 0; j < KN_VW; j++) acc[j] = kn_set1(0.0f);
      for (int k = 0; k < Kv; k += KN_VW) {
        kn_vf a[KN_DX], b[KN_DW];
#pragma GCC unroll 4
        for (int x = 0; x < KN_DX; x++) a[x] = kn_load(Am + x * lda + k);
#pragma GCC unroll 4
        for (int w = 0; w < KN_DW; w++) b[w] = kn_load(Bn + w * ldb + k);
#pragma GCC unroll 4
        for (int x = 0; x < KN_DX; x++)
#pragma GCC unroll 4
          for (int w = 0; w < KN_DW; w++)
            acc[x * KN_DW + w] = KN_FMA(a[x], b[w], acc[x * KN_DW + w]);
      }
      float t[KN_VW];
      kn_store(t, kn_reduce(acc));
      for (int x = 0; x < KN_DX; x++)
        for (int w = 0; w < KN_DW; w++) {
          float v = t[x * KN_DW + w];
          for (int k = Kv; k < K; k++) v += Am[x * lda + k] * Bn[w * ldb + k];
          C[(ptrdiff_t)(m + x) * ldc + n + w] += v;
        }
    }
    for (; m < M; m++)
      for (int w = 0; w < KN_DW; w++)
        C[(ptrdiff_t)m * ldc + n + w] +=
            kn_dot_nt(K, Kv, A + (ptrdiff_t)m * lda, Bn + w * ldb);
  }
  for (; n < N; n++)
    for (int m = 0; m < M; m++)
      C[(ptrdiff_t)m * ldc + n] +=
          kn_dot_nt(K, Kv, A + (ptrdiff_t)m * lda, B + (ptrdiff_t)n * ldb);
}

/* ------------------------------------------------------------ batch 1 */

/* The first n ≤ VW floats at p, zeros after them; the targets pass a masked
** load (which never touches the lanes past n). */
#ifndef KN_LOADN
static inline kn_vf kn_loadn(const float *p, int n) {
  float t[KN_VW] = {0};
  memcpy(t, p, (size_t)n * sizeof(float));
  return kn_load(t);
}
#define KN_LOADN(p, n) kn_loadn((p), (n))
#endif
#ifndef KN_STOREN
static inline void kn_storen(float *p, kn_vf v, int n) {
  float t[KN_VW];
  kn_store(t, v);
  memcpy(p, t, (size_t)n * sizeof(float));
}
#define KN_STOREN(p, v, n) kn_storen((p), (v), (n))
#endif

/* One level c of a transposing sum tree: a blend keeps the lanes of a
** whose bit c is clear and those of b where it is set, so
**   blend(a, b) + swap_c(blend(b, a))
** holds a's lanes folded in pairs c apart where bit c is clear, b's where
** it is set: one single-source permute and two blends per pair, and a
** vector without a partner folds with one permute (used for partial
** blocks; whole blocks measured faster through kn_reduce). */
#define KN_BLI(i, c) (((i) & (c)) ? (i) + KN_VW : (i))
#define KN_SWI(i, c) ((i) ^ (c))
#define KN_BLEND(a, b, c) __builtin_shuffle((a), (b), (kn_vi){KN_LANES(KN_BLI, c)})
#define KN_SWAP(a, c) __builtin_shuffle((a), (kn_vi){KN_LANES(KN_SWI, c)})
/* level c over the L live vectors of v: v[j] and v[j + c] pair up, a
** vector without a partner folds onto itself */
#define KN_TLEVEL(c)                                                   \
  if ((c) < KN_VW) {                                                    \
    _Pragma("GCC unroll 8") for (int j = 0; j < (c); j++) {             \
      if (j + (c) < L)                                                  \
        v[j] = KN_BLEND(v[j], v[j + (c)], c) +                          \
               KN_SWAP(KN_BLEND(v[j + (c)], v[j], c), c);               \
      else if (j < L)                                                   \
        v[j] = v[j] + KN_SWAP(v[j], c);                                 \
    }                                                                   \
    if (L > (c)) L = (c);                                               \
  }

/* Lane j of the result is bias[j] + the sum of the lanes of v[j], j < R
** (R ≤ VW constant after inlining; the other lanes are unspecified).  For
** fewer than VW rows (the last rows of a layer, a narrow output layer):
** rows j and j + c meet at level c, so lane j ends up holding row j, and a
** row without a partner costs one fold per level; the bias joins the last
** level beside its permute rather than after it. */
static inline __attribute__((always_inline)) kn_vf
kn_tree(kn_vf *v, const int R, kn_vf bias) {
  /* a whole block: the two-source permutes of kn_reduce measured faster */
  if (R == KN_VW) return kn_reduce(v) + bias;
  int L = R;
  KN_TLEVEL(8) KN_TLEVEL(4) KN_TLEVEL(2)
  if (L > 1)
    return (KN_BLEND(v[0], v[1], 1) + bias) + KN_SWAP(KN_BLEND(v[1], v[0], 1), 1);
  return (v[0] + bias) + KN_SWAP(v[0], 1);
}

/* Lane j: bias[j] + Σ_k x[k]·w[j·K + k] for the first r ≤ R rows of a block
** (lanes r.. are unspecified).  KV > 0: K = KV·VW, known when inlined, so
** the loops unroll into straight code; else kv whole vectors and a tail of
** kt.  (Two interleaved chains per row measured no faster: the layer is
** bound by its loads and shuffles, not FMA latency.) */
static inline __attribute__((always_inline)) kn_vf
kn_rows1(const int R, int r, const int KV, int kv, int kt, const float *x,
         kn_vf xt, const float *w, ptrdiff_t K, kn_vf bias) {
  kn_vf v[KN_VW];
  if (KV > 0) {
    K = KV * KN_VW;  /* a constant: the rows become offsets of one pointer */
#pragma GCC unroll 16
    for (int j = 0; j < R; j++) {
      if (j >= r) {
        v[j] = kn_set1(0.0f);
        continue;
      }
      const float *wr = w + j * K;
      kn_vf s = kn_load(x) * kn_load(wr);
#pragma GCC unroll 8
      for (int q = 1; q < KV; q++)
        s = KN_FMA(kn_load(x + q * KN_VW), kn_load(wr + q * KN_VW), s);
      v[j] = s;
    }
  } else {
#pragma GCC unroll 16
    for (int j = 0; j < R; j++)
      v[j] = j < r && kt ? xt * KN_LOADN(w + j * K + kv * KN_VW, kt) : kn_set1(0.0f);
    for (int q = 0; q < kv; q++) {
      const kn_vf xq = kn_load(x + q * KN_VW);
#pragma GCC unroll 16
      for (int j = 0; j < R; j++)
        if (j < r) v[j] = KN_FMA(xq, kn_load(w + j * K + q * KN_VW), v[j]);
    }
  }
  return kn_tree(v, R, bias);
}

static inline __attribute__((always_inline)) kn_vf kn_act1(int act, kn_vf v) {
  return act == MRL_TANH ? kn_tanh(v) : act == MRL_RELU ? kn_relu(v) : v;
}

/* The layer as blocks of VW rows of W; the last r < VW rows in a tree of
** the next power of two, so a narrow output layer (2 logits, 1 value) is
** a few folds instead of a whole VW-row tree. */
static inline __attribute__((always_inline)) void
kn_lin1_rows(const int KV, int N, int K, const float *x, const float *W,
             const float *bias, float *y, int act) {
  if (KV > 0) K = KV * KN_VW;  /* the callers' promise, now a constant */
  const int kv = KV > 0 ? KV : K / KN_VW, kt = KV > 0 ? 0 : K % KN_VW;
  const kn_vf xt = kt ? KN_LOADN(x + kv * KN_VW, kt) : kn_set1(0.0f);
  int n = 0;
  for (; n + KN_VW <= N; n += KN_VW) {
    kn_vf d = kn_rows1(KN_VW, KN_VW, KV, kv, kt, x, xt, W + (ptrdiff_t)n * K, K,
                       kn_load(bias + n));
    kn_store(y + n, kn_act1(act, d));
  }
  if (n < N) {
    const int r = N - n;
    const float *w = W + (ptrdiff_t)n * K;
    const kn_vf b = KN_LOADN(bias + n, r);
    kn_vf d;
    if (r == 1) d = kn_rows1(1, 1, KV, kv, kt, x, xt, w, K, b);
    else if (r == 2) d = kn_rows1(2, 2, KV, kv, kt, x, xt, w, K, b);
#if KN_VW > 4
    else if (r <= 4) d = kn_rows1(4, r, KV, kv, kt, x, xt, w, K, b);
#endif
#if KN_VW > 8
    else if (r <= 8) d = kn_rows1(8, r, KV, kv, kt, x, xt, w, K, b);
#endif
    else d = kn_rows1(KN_VW, r, KV, kv, kt, x, xt, w, K, b);
    KN_STOREN(y + n, kn_act1(act, d), r);
  }
}

/* x[0..K) repeated across a vector as kn_repeat, built from one broadcast
** per element: the caller has usually just written x as K scalar stores
** (an observation), and one wide load of several fresh scalar stores
** cannot take them from the store buffer; it waits for them to retire. */
static inline __attribute__((always_inline)) kn_vf
kn_repeat_scalars(const float *x, const int K) {
  kn_vf r = kn_set1(x[0]);
#pragma GCC unroll 8
  for (int k = 1; k < K; k++) {
    kn_vi m;
    for (int j = 0; j < KN_VW; j++) m[j] = j % K == k ? -1 : 0;
    r = (kn_vf)(((kn_vi)r & ~m) | ((kn_vi)kn_set1(x[k]) & m));
  }
  return r;
}

/* kn_group_sums for one observation, where latency counts: K = 2 or 4
** sums by the in-lane shuffles of kn_reduce (one cycle each, against three
** for the cross-lane permutes), which leave lane 4i + m holding a row out of
** order, then one permute back to row order. */
#define KN_GS4I(j, c) (4 * ((j) % (KN_VW / 4)) + (j) / (KN_VW / 4))
#define KN_GS2I(j, c)                                   \
  ((j) < KN_VW / 2 ? 4 * ((j) / 2) + (j) % 2            \
                   : 4 * (((j) - KN_VW / 2) / 2) + 2 + (j) % 2)
static inline __attribute__((always_inline)) void kn_group_sums1(kn_vf *v,
                                                                 const int K) {
#if KN_VW >= 8
  if (K == 4) {
    v[0] = KN_SP(v[0], v[1], 0) + KN_SP(v[0], v[1], 1);
    v[1] = KN_SP(v[2], v[3], 0) + KN_SP(v[2], v[3], 1);
    v[0] = KN_SP(v[0], v[1], 0) + KN_SP(v[0], v[1], 1);
    v[0] = __builtin_shuffle(v[0], (kn_vi){KN_LANES(KN_GS4I, 0)});
    return;
  }
  if (K == 2) {
    v[0] = KN_SP(v[0], v[1], 0) + KN_SP(v[0], v[1], 1);
    v[0] = __builtin_shuffle(v[0], (kn_vi){KN_LANES(KN_GS2I, 0)});
    return;
  }
#endif
  kn_group_sums(v, K);
}

/* Rows of K = 1, 2, 4 or 8 < VW floats: a block of VW rows is K whole
** vectors of W; times x repeated, each group of K lanes summed by the last
** log2 K levels of the transposing tree (observation layers). */
static inline __attribute__((always_inline)) void
kn_lin1_short(const int K, int N, const float *x, const float *W,
              const float *bias, float *y, int act) {
  const kn_vf xrep = kn_repeat_scalars(x, K);
  int n = 0;
  /* whole blocks: no lane counts to test, so the loop is straight code */
#pragma GCC unroll 4
  for (; n + KN_VW <= N; n += KN_VW) {
    const float *w = W + (ptrdiff_t)n * K;
    kn_vf v[8];
#pragma GCC unroll 8
    for (int q = 0; q < K; q++) v[q] = kn_load(w + q * KN_VW) * xrep;
    kn_group_sums1(v, K);
    kn_store(y + n, kn_act1(act, v[0] + kn_load(bias + n)));
  }
  if (n < N) {
    const int r = N - n;
    const float *w = W + (ptrdiff_t)n * K;
    kn_vf v[8];
#pragma GCC unroll 8
    for (int q = 0; q < K; q++) {
      int m = r * K - q * KN_VW;  /* floats of this vector inside W */
      v[q] = m >= KN_VW ? kn_load(w + q * KN_VW) * xrep
             : m > 0    ? KN_LOADN(w + q * KN_VW, m) * xrep
                        : kn_set1(0.0f);
    }
    kn_group_sums1(v, K);
    KN_STOREN(y + n, kn_act1(act, v[0] + KN_LOADN(bias + n, r)), r);
  }
}

static inline __attribute__((always_inline)) void
kn_linear1_in(int N, int K, const float *x, const float *W, const float *bias,
              float *y, int act) {
  if (K < KN_VW && (K == 1 || K == 2 || K == 4 || K == 8)) {
    switch (K) {
      case 1: kn_lin1_short(1, N, x, W, bias, y, act); return;
      case 2: kn_lin1_short(2, N, x, W, bias, y, act); return;
#if KN_VW >= 8
      case 4: kn_lin1_short(4, N, x, W, bias, y, act); return;
#endif
#if KN_VW >= 16
      case 8: kn_lin1_short(8, N, x, W, bias, y, act); return;
#endif
      default: break;
    }
  }
  if (K % KN_VW == 0) {
    switch (K / KN_VW) {
      case 1: kn_lin1_rows(1, N, K, x, W, bias, y, act); return;
      case 2: kn_lin1_rows(2, N, K, x, W, bias, y, act); return;
      case 4: kn_lin1_rows(4, N, K, x, W, bias, y, act); return;
      default: break;
    }
  }
  kn_lin1_rows(0, N, K, x, W, bias, y, act);
}

/* The hidden layer in whole blocks of VW rows (KV as kn_rows1), each block
** activated, stored, and folded into R2 ≥ N2 output accumulators (lane
** partial sums: acc[j] += h_block · W2[j][block]); one tree at the end.
** The output layer then costs two FMAs per block in the shadow of the
** hidden layer's, instead of a reload of y and a pass of its own. */
static inline __attribute__((always_inline)) void
kn_lin1_out(const int KV, const int R2, int N, int K, const float *x,
            const float *W, const float *bias, float *y, int act, int N2,
            const float *W2, const float *bias2, float *y2) {
  if (KV > 0) K = KV * KN_VW;  /* the callers' promise, now a constant */
  const int kv = KV > 0 ? KV : K / KN_VW, kt = KV > 0 ? 0 : K % KN_VW;
  const kn_vf xt = kt ? KN_LOADN(x + kv * KN_VW, kt) : kn_set1(0.0f);
  kn_vf acc[KN_VW];
#pragma GCC unroll 16
  for (int j = 0; j < R2; j++) acc[j] = kn_set1(0.0f);
  for (int n = 0; n < N; n += KN_VW) {
    kn_vf d = kn_rows1(KN_VW, KN_VW, KV, kv, kt, x, xt, W + (ptrdiff_t)n * K,
                       K, kn_load(bias + n));
    d = kn_act1(act, d);
    kn_store(y + n, d);
#pragma GCC unroll 16
    for (int j = 0; j < R2; j++)
      if (j < N2) acc[j] = KN_FMA(d, kn_load(W2 + (ptrdiff_t)j * N + n), acc[j]);
  }
  kn_vf out = kn_tree(acc, R2, KN_LOADN(bias2, N2));
  KN_STOREN(y2, out, N2);
}

#define KN_OUT_R2(KV)                                                       \
  do {                                                                      \
    if (N2 == 1) kn_lin1_out(KV, 1, N, K, x, W, bias, y, act, N2, W2, bias2, y2); \
    else if (N2 == 2) kn_lin1_out(KV, 2, N, K, x, W, bias, y, act, N2, W2, bias2, y2); \
    else if (N2 <= 4) kn_lin1_out(KV, 4, N, K, x, W, bias, y, act, N2, W2, bias2, y2); \
    else if (N2 <= 8) kn_lin1_out(KV, KN_VW < 8 ? KN_VW : 8, N, K, x, W, bias, y, act, N2, W2, bias2, y2); \
    else kn_lin1_out(KV, KN_VW, N, K, x, W, bias, y, act, N2, W2, bias2, y2); \
  } while (0)

static inline __attribute__((always_inline)) void
kn_linear1_out_in(int N, int K, const float *x, const float *W,
                  const float *bias, float *y, int act, int N2,
                  const float *W2, const float *bias2, float *y2) {
  /* the caller guarantees 1 ≤ N2 ≤ VW; said here so the compiler knows no
  ** branch below touches more than a vector */
  if (N2 > KN_VW) N2 = KN_VW;
  if (K % KN_VW == 0 && K / KN_VW == 4) KN_OUT_R2(4);
  else if (K % KN_VW == 0 && K / KN_VW == 2) KN_OUT_R2(2);
  else if (K % KN_VW == 0 && K / KN_VW == 1) KN_OUT_R2(1);
  else KN_OUT_R2(0);
}

static void kn_linear1(int N, int K, const float *x, const float *W,
                       const float *bias, float *y, int act) {
  kn_linear1_in(N, K, x, W, bias, y, act);
}

static void kn_linear1_out(int N, int K, const float *x, const float *W,
                           const float *bias, float *y, int act, int N2,
                           const float *W2, const float *bias2, float *y2) {
  kn_linear1_out_in(N, K, x, W, bias, y, act, N2, W2, bias2, y2);
}

/* Both in one call: the second layer's loads and the first layer's tail
** then share one instruction window, with no call between them. */
static void kn_forward1_2h(int K, int H1, int H2, int N2, const float *x,
                           const float *const *w, float *acts, int act) {
  kn_linear1_in(H1, K, x, w[0], w[1], acts, act);
  kn_linear1_out_in(H2, H1, acts, w[2], w[3], acts + H1, act, N2, w[4], w[5],
                    acts + H1 + H2);
}

const mlp_kernels KN_TABLE = {.name = KN_NAME,
                              .gemm = kn_gemm,
                              .gemm_nt = kn_gemm_nt,
                              .linear_dot = kn_linear_dot,
                              .linear1 = kn_linear1,
                              .linear1_out = kn_linear1_out,
                              .forward1_2h = kn_forward1_2h,
                              .vw = KN_VW,
                              .act_forward = kn_act_forward,
                              .act_backward = kn_act_backward,
                              .add_colsum = kn_add_colsum};
