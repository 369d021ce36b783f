/* vector/vector_int.h - private to vector/: the per-level kernel tables and
 * helpers shared by the kernel files.
 *
 * Invariants:
 *  (1) Each kernels_*.c file defines exactly one table; a table for an ISA the
 *      compiler cannot target is absent (its pointer is NULL), never a stub.
 *  (2) Code in a kernels_<isa>.c file that uses ISA-specific instructions is
 *      only reachable through its table, which dispatch.c hands out only after
 *      __builtin_cpu_supports() confirmed every feature the table needs.
 *  (3) vec_cosine_finish() is the one place cosine turns (dot, |q|^2, |x|^2)
 *      into a distance, so all levels share its rounding. A non-finite sum
 *      (NaN/Inf in an input, or a norm that overflowed) gives NaN, never a
 *      finite distance, so callers' result checks see it (docs/VECTORS.md
 *      "Validation"); the zero-vector rule applies to valid inputs only.
 */
#ifndef STRATA_VECTOR_INT_H
#define STRATA_VECTOR_INT_H

#include <math.h>

#include "vector.h"

#if defined(__x86_64__) && (defined(__GNUC__) || defined(__clang__))
#define VEC_HAVE_X86 1
#else
#define VEC_HAVE_X86 0
#endif

extern const vec_kernels vec_kernels_scalar;
#if VEC_HAVE_X86
extern const vec_kernels vec_kernels_avx2;
extern const vec_kernels vec_kernels_avx512;
#endif

/* 1 - dot / sqrt(qq * xx) in double, clamped to [0, 2]; 1 when a norm is 0;
 * NaN when a sum is not finite (a zero q times a NaN x still makes dot NaN). */
static inline float vec_cosine_finish(float dot, float qq, float xx)
{
    if (!isfinite(dot) || !isfinite(qq) || !isfinite(xx)) return NAN;
    if (qq <= 0.0f || xx <= 0.0f) return 1.0f;
    double c = (double)dot / sqrt((double)qq * (double)xx);
    double d = 1.0 - c;
    if (d < 0.0) d = 0.0;
    if (d > 2.0) d = 2.0;
    return (float)d;
}

/* Portable popcount (no POPCNT instruction needed). */
static inline unsigned vec_popcount64(uint64_t v)
{
    v = v - ((v >> 1) & 0x5555555555555555ull);
    v = (v & 0x3333333333333333ull) + ((v >> 2) & 0x3333333333333333ull);
    v = (v + (v >> 4)) & 0x0f0f0f0f0f0f0f0full;
    return (unsigned)((v * 0x0101010101010101ull) >> 56);
}

#endif /* STRATA_VECTOR_INT_H */
