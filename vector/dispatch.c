/* vector/dispatch.c - picks the kernel table once per process.
 *
 * State: g_kernels is NULL until the first vec_kernels_get(), then points to
 * one immutable table for the life of the process.
 *   NULL --vec_kernels_get()--> &vec_kernels_{scalar,avx2,avx512}
 * Invariants:
 *  (1) A level is offered only if cpuid reports every feature its table uses
 *      (cpu_level()); STRATA_SIMD can lower the level, never raise it.
 *  (2) Racing first calls compute the same answer from the same inputs, so the
 *      relaxed-then-release publication below needs no lock: whichever store
 *      wins, every thread sees the same table.
 */
#include <stdatomic.h>
#include <stdlib.h>
#include <string.h>

#include "vector_int.h"

static _Atomic(const vec_kernels *) g_kernels;

/* Highest level this CPU (and build) supports. */
static vec_level cpu_level(void)
{
#if VEC_HAVE_X86
    __builtin_cpu_init();
    if (__builtin_cpu_supports("avx512f") && __builtin_cpu_supports("avx512bw") &&
        __builtin_cpu_supports("avx512dq") && __builtin_cpu_supports("avx512vl") &&
        __builtin_cpu_supports("popcnt"))
        return VEC_LEVEL_AVX512;
    if (__builtin_cpu_supports("avx2") && __builtin_cpu_supports("fma") &&
        __builtin_cpu_supports("popcnt"))
        return VEC_LEVEL_AVX2;
#endif
    return VEC_LEVEL_SCALAR;
}

/* The level STRATA_SIMD asks for, or VEC_LEVEL_COUNT when unset or unknown. */
static vec_level env_level(void)
{
    const char *s = getenv("STRATA_SIMD");
    if (!s) return VEC_LEVEL_COUNT;
    if (strcmp(s, "scalar") == 0) return VEC_LEVEL_SCALAR;
    if (strcmp(s, "avx2") == 0) return VEC_LEVEL_AVX2;
    if (strcmp(s, "avx512") == 0) return VEC_LEVEL_AVX512;
    return VEC_LEVEL_COUNT;
}

const vec_kernels *vec_kernels_for(vec_level level)
{
    if (level > cpu_level()) return NULL;
    switch (level) {
    case VEC_LEVEL_SCALAR: return &vec_kernels_scalar;
#if VEC_HAVE_X86
    case VEC_LEVEL_AVX2:   return &vec_kernels_avx2;
    case VEC_LEVEL_AVX512: return &vec_kernels_avx512;
#endif
    default:               return NULL;
    }
}

const vec_kernels *vec_kernels_get(void)
{
    const vec_kernels *k = atomic_load_explicit(&g_kernels, memory_order_acquire);
    if (k) return k;
    vec_level want = cpu_level();
    vec_level forced = env_level();
    if (forced < want) want = forced;
    k = vec_kernels_for(want);
    if (!k) k = &vec_kernels_scalar;
    atomic_store_explicit(&g_kernels, k, memory_order_release);
    return k;
}
