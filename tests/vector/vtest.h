/* tests/vector/vtest.h - helpers shared by the vector-layer tests: a seeded
 * generator (splitmix64; the seed is printed in every failure message and can
 * be replaced with STRATA_TEST_SEED=<n> to replay a run) and float buffers.
 */
#ifndef STRATA_TESTS_VTEST_H
#define STRATA_TESTS_VTEST_H

#include <stdint.h>
#include <stdlib.h>

#define VTEST_DEFAULT_SEED 0x5EEDF00Dull

static inline uint64_t vtest_seed(void)
{
    const char *s = getenv("STRATA_TEST_SEED");
    return s ? strtoull(s, NULL, 0) : VTEST_DEFAULT_SEED;
}

typedef struct vtest_rng { uint64_t s; } vtest_rng;

static inline uint64_t vtest_next(vtest_rng *r)
{
    uint64_t z = (r->s += 0x9E3779B97F4A7C15ull);
    z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ull;
    z = (z ^ (z >> 27)) * 0x94D049BB133111EBull;
    return z ^ (z >> 31);
}

/* Uniform in [-1, 1). */
static inline float vtest_unit(vtest_rng *r)
{
    return (float)((double)(vtest_next(r) >> 40) / (double)(1ull << 23) - 1.0);
}

static inline void vtest_fill(vtest_rng *r, float *x, size_t n, float scale)
{
    for (size_t i = 0; i < n; i++) x[i] = scale * vtest_unit(r);
}

#endif /* STRATA_TESTS_VTEST_H */
