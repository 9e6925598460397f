/*
** simd_clones.h — internal: MRL_SIMD_CLONES before a loop-only function
** has GCC compile it for AVX-512, AVX2 and the portable baseline and pick
** one per machine at load time (an ifunc), so streaming loops over whole
** parameter vectors (Adam, norms, finiteness) use the widest registers
** without -march.  The clones do the same IEEE operations in the same
** order — ISO C mode leaves multiply-adds uncontracted — so every variant
** gives the same bits.  Not under the sanitizers: their runtime is not
** up yet when the ifunc resolvers run at load time.
*/
#ifndef MRL_SIMD_CLONES_H
#define MRL_SIMD_CLONES_H

#if defined(__GNUC__) && !defined(__clang__) && defined(__x86_64__) && \
    defined(__linux__) && !defined(__SANITIZE_ADDRESS__) && \
    !defined(__SANITIZE_THREAD__)
#define MRL_SIMD_CLONES \
  __attribute__((target_clones("avx512f", "avx2", "default")))
#else
#define MRL_SIMD_CLONES
#endif

#endif
