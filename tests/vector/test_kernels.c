/* tests/vector/test_kernels.c - every SIMD kernel table this CPU offers against
 * the scalar reference, for every dim 1..1100, on unaligned data.
 *
 * Tolerance (docs/VECTORS.md "Tolerance"): for f32 metrics a kernel differs from
 * the reference by at most REL_TOL * S, where S is the sum of the magnitudes of
 * the terms (L2: sum d^2; IP: sum |a b|; L1: sum |a - b|), computed in double.
 * Cosine (already normalized) gets COS_TOL absolute. Integer kernels (u8 L2,
 * Hamming) must match exactly. Within one table, batch == single bit for bit.
 */
#include <criterion/criterion.h>
#include <math.h>
#include <stdio.h>
#include <string.h>

#include "vector.h"
#include "vtest.h"

#define REL_TOL 1e-5
#define COS_TOL 2e-5
enum { MAX_DIM = 1100, N_VEC = 7 };   /* 7 = one block of 4, then 3 single vectors */

static const char *metric_name[VEC_N_METRICS] = { "L2", "IP", "COSINE", "L1" };

/* Scale S of the tolerance for metric m, in double. */
static double magnitude(int m, const float *a, const float *b, size_t dim)
{
    double s = 0.0;
    for (size_t i = 0; i < dim; i++) {
        double x = a[i], y = b[i];
        if (m == STRATA_METRIC_L2) s += (x - y) * (x - y);
        else if (m == STRATA_METRIC_IP) s += fabs(x * y);
        else s += fabs(x - y);
    }
    return s;
}

/* Exact double-precision value of metric m, to check the reference itself. */
static double exact(int m, const float *a, const float *b, size_t dim)
{
    double s = 0.0, aa = 0.0, bb = 0.0;
    for (size_t i = 0; i < dim; i++) {
        double x = a[i], y = b[i];
        if (m == STRATA_METRIC_L2) s += (x - y) * (x - y);
        else if (m == STRATA_METRIC_IP) s -= x * y;
        else if (m == STRATA_METRIC_L1) s += fabs(x - y);
        else { s += x * y; aa += x * x; bb += y * y; }
    }
    if (m == STRATA_METRIC_COSINE) return (aa == 0.0 || bb == 0.0) ? 1.0 : 1.0 - s / sqrt(aa * bb);
    return s;
}

static int close_enough(int m, double got, double want, double mag, double *err)
{
    double tol = m == STRATA_METRIC_COSINE ? COS_TOL : REL_TOL * mag + 1e-30;
    *err = fabs(got - want) / (m == STRATA_METRIC_COSINE ? 1.0 : (mag > 0 ? mag : 1.0));
    return fabs(got - want) <= tol;
}

/* q at buf + 1 and the base right after it: both start 4 bytes past a 64-byte
 * boundary, so no load is aligned. */
static float *unaligned_pool(vtest_rng *r, size_t n_floats, float **mem)
{
    *mem = aligned_alloc(64, (n_floats + 16) * sizeof(float));
    cr_assert(*mem != NULL, "out of memory");
    vtest_fill(r, *mem, n_floats + 16, 1.0f);
    return *mem + 1;
}

static void check_level_f32(vec_level level)
{
    const vec_kernels *ref = vec_kernels_for(VEC_LEVEL_SCALAR);
    const vec_kernels *kt = vec_kernels_for(level);
    if (!kt) {
        cr_log_info("level %d not supported by this CPU: skipped", (int)level);
        return;
    }
    uint64_t seed = vtest_seed();
    vtest_rng r = { seed };
    float *mem;
    float *pool = unaligned_pool(&r, (N_VEC + 1) * MAX_DIM, &mem);
    float want[N_VEC], got[N_VEC];
    double worst[VEC_N_METRICS] = {0};
    for (size_t dim = 1; dim <= MAX_DIM; dim++) {
        vtest_fill(&r, pool, (N_VEC + 1) * dim, 1.0f);   /* fresh data per dim */
        const float *q = pool, *base = pool + dim;
        for (int m = 0; m < VEC_N_METRICS; m++) {
            ref->dist_batch[m](q, base, N_VEC, dim, want);
            kt->dist_batch[m](q, base, N_VEC, dim, got);
            for (size_t j = 0; j < N_VEC; j++) {
                const float *x = base + j * dim;
                double mag = magnitude(m, q, x, dim), err;
                cr_assert(close_enough(m, got[j], want[j], mag, &err),
                          "seed=%llu level=%s metric=%s dim=%zu vec=%zu: simd %.9g scalar %.9g",
                          (unsigned long long)seed, kt->name, metric_name[m], dim, j,
                          (double)got[j], (double)want[j]);
                if (err > worst[m]) worst[m] = err;
                cr_assert(close_enough(m, want[j], exact(m, q, x, dim), mag, &err),
                          "seed=%llu scalar reference off: metric=%s dim=%zu vec=%zu",
                          (unsigned long long)seed, metric_name[m], dim, j);
                float one = kt->dist[m](q, x, dim);
                cr_assert(memcmp(&one, &got[j], sizeof one) == 0,
                          "seed=%llu level=%s metric=%s dim=%zu vec=%zu: single %.9g != batch %.9g",
                          (unsigned long long)seed, kt->name, metric_name[m], dim, j,
                          (double)one, (double)got[j]);
            }
        }
    }
    for (int m = 0; m < VEC_N_METRICS; m++)
        cr_log_info("%s %s: worst relative difference %.3g", kt->name, metric_name[m], worst[m]);
    free(mem);
}

static void check_level_int(vec_level level)
{
    const vec_kernels *ref = vec_kernels_for(VEC_LEVEL_SCALAR);
    const vec_kernels *kt = vec_kernels_for(level);
    if (!kt) return;
    uint64_t seed = vtest_seed();
    vtest_rng r = { seed ^ 0xA5A5 };
    uint8_t *u8 = malloc((N_VEC + 1) * MAX_DIM + 1);
    cr_assert(u8 != NULL, "out of memory");
    uint32_t w8[N_VEC], g8[N_VEC];
    for (size_t dim = 1; dim <= MAX_DIM; dim++) {
        uint8_t *q = u8 + 1;                            /* odd address */
        for (size_t i = 0; i < (N_VEC + 1) * dim; i++) q[i] = (uint8_t)vtest_next(&r);
        if (dim % 7 == 0) {                             /* extremes: 255 - 0 */
            memset(q, 255, dim);
            memset(q + dim, 0, dim);
        }
        ref->l2_u8_batch(q, q + dim, N_VEC, dim, w8);
        kt->l2_u8_batch(q, q + dim, N_VEC, dim, g8);
        for (size_t j = 0; j < N_VEC; j++) {
            cr_assert_eq(g8[j], w8[j], "seed=%llu level=%s u8 dim=%zu vec=%zu: %u != %u",
                         (unsigned long long)seed, kt->name, dim, j, g8[j], w8[j]);
            cr_assert_eq(kt->l2_u8(q, q + dim * (j + 1), dim), g8[j], "single != batch");
        }
    }
    free(u8);
    enum { MAX_WORDS = 40 };
    uint64_t words[(N_VEC + 1) * MAX_WORDS], wh[N_VEC], gh[N_VEC];
    for (size_t nw = 1; nw <= MAX_WORDS; nw++) {
        for (size_t i = 0; i < (N_VEC + 1) * nw; i++) words[i] = vtest_next(&r);
        ref->hamming_batch(words, words + nw, N_VEC, nw, wh);
        kt->hamming_batch(words, words + nw, N_VEC, nw, gh);
        for (size_t j = 0; j < N_VEC; j++) {
            cr_assert_eq(gh[j], wh[j], "seed=%llu level=%s hamming words=%zu vec=%zu",
                         (unsigned long long)seed, kt->name, nw, j);
            cr_assert_eq(kt->hamming(words, words + nw * (j + 1), nw), gh[j], "single != batch");
        }
    }
}

Test(kernels, avx2_matches_scalar_f32) { check_level_f32(VEC_LEVEL_AVX2); }
Test(kernels, avx512_matches_scalar_f32) { check_level_f32(VEC_LEVEL_AVX512); }
Test(kernels, avx2_matches_scalar_int) { check_level_int(VEC_LEVEL_AVX2); }
Test(kernels, avx512_matches_scalar_int) { check_level_int(VEC_LEVEL_AVX512); }

Test(kernels, hamming_known_values)
{
    const vec_kernels *kt = vec_kernels_get();
    uint64_t a[3] = { 0, ~0ull, 0x0F0F0F0F0F0F0F0Full };
    uint64_t b[3] = { 0, 0, 0xF0F0F0F0F0F0F0F0ull };
    cr_assert_eq(kt->hamming(a, b, 1), 0, "equal words");
    cr_assert_eq(kt->hamming(a, b, 2), 64, "one full word");
    cr_assert_eq(kt->hamming(a, b, 3), 128, "complementary nibbles");
}

Test(kernels, known_distances)
{
    const float a[5] = { 1, 2, 3, 4, 5 }, b[5] = { 2, 0, 3, 8, 5 };
    const float z[5] = { 0 };
    for (int lv = 0; lv < VEC_LEVEL_COUNT; lv++) {
        const vec_kernels *kt = vec_kernels_for((vec_level)lv);
        if (!kt) continue;
        cr_assert_eq(kt->dist[STRATA_METRIC_L2](a, b, 5), 21.0f, "%s L2", kt->name);
        cr_assert_eq(kt->dist[STRATA_METRIC_IP](a, b, 5), -68.0f, "%s IP", kt->name);
        cr_assert_eq(kt->dist[STRATA_METRIC_L1](a, b, 5), 7.0f, "%s L1", kt->name);
        cr_assert_eq(kt->dist[STRATA_METRIC_COSINE](a, a, 5), 0.0f, "%s cos self", kt->name);
        cr_assert_eq(kt->dist[STRATA_METRIC_COSINE](a, z, 5), 1.0f, "%s cos zero", kt->name);
        float na[5];
        for (int i = 0; i < 5; i++) na[i] = -a[i];
        cr_assert_eq(kt->dist[STRATA_METRIC_COSINE](a, na, 5), 2.0f, "%s cos opposite", kt->name);
        uint8_t p[3] = { 0, 255, 10 }, q[3] = { 255, 0, 13 };
        cr_assert_eq(kt->l2_u8(p, q, 3), 2u * 255u * 255u + 9u, "%s u8", kt->name);
    }
}

Test(kernels, dispatch_picks_best_level)
{
    unsetenv("STRATA_SIMD");
    const vec_kernels *best = NULL;
    for (int lv = 0; lv < VEC_LEVEL_COUNT; lv++)
        if (vec_kernels_for((vec_level)lv)) best = vec_kernels_for((vec_level)lv);
    cr_assert(vec_kernels_get() == best, "got %s, best is %s", vec_kernels_get()->name,
              best->name);
    cr_assert_str_eq(strata_vec_kernel_name(), best->name, "public name");
    cr_assert(vec_kernels_for(VEC_LEVEL_COUNT) == NULL, "no table past the last level");
}

/* Criterion runs each test in a fresh process, so the choice is not made yet. */
Test(kernels, env_forces_scalar)
{
    setenv("STRATA_SIMD", "scalar", 1);
    cr_assert_str_eq(strata_vec_kernel_name(), "scalar", "STRATA_SIMD=scalar");
}

Test(kernels, env_never_exceeds_cpu)
{
    setenv("STRATA_SIMD", "avx512", 1);
    const vec_kernels *k = vec_kernels_get();
    cr_assert(vec_kernels_for(k->level) == k, "%s must be supported", k->name);
    if (!vec_kernels_for(VEC_LEVEL_AVX512))
        cr_assert_neq(k->level, VEC_LEVEL_AVX512, "forced above the CPU");
}

Test(kernels, env_avx2)
{
    setenv("STRATA_SIMD", "avx2", 1);
    const vec_kernels *k = vec_kernels_get();
    vec_level want = vec_kernels_for(VEC_LEVEL_AVX2) ? VEC_LEVEL_AVX2 : VEC_LEVEL_SCALAR;
    cr_assert_eq(k->level, want, "STRATA_SIMD=avx2 gave %s", k->name);
}

Test(kernels, env_unknown_ignored)
{
    setenv("STRATA_SIMD", "sse9", 1);
    const vec_kernels *best = NULL;
    for (int lv = 0; lv < VEC_LEVEL_COUNT; lv++)
        if (vec_kernels_for((vec_level)lv)) best = vec_kernels_for((vec_level)lv);
    cr_assert(vec_kernels_get() == best, "unknown value must be ignored");
}
