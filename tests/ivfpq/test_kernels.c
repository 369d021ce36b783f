/* tests/ivfpq/test_kernels.c - the per-query table kernels of ivfpq/scan.c at
 * every SIMD level (criterion runs each test in its own process, so
 * STRATA_SIMD set first picks the level; a level the CPU lacks falls back to
 * a lower one): the inner-product tables from transposed codebooks equal
 * ivf_pq_dot_lut bit for bit, the fused table build equals the scalar
 * expression bit for bit with exact per-table minima and maxima, and a NaN
 * entry is reported. */
#include <criterion/criterion.h>
#include <math.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "ivfpq_int.h"

static float rnd(uint64_t *s)
{
    *s = *s * 6364136223846793005ull + 1442695040888963407ull;
    return (float)((int64_t)(*s >> 33) - (1ll << 30)) / (float)(1 << 24);
}

static void check_level(const char *level)
{
    setenv("STRATA_SIMD", level, 1);
    const size_t shapes[][2] = {{128, 16}, {32, 8}, {96, 12}, {30, 10}, {7, 7}};
    uint64_t s = 99;
    for (size_t sh = 0; sh < sizeof shapes / sizeof shapes[0]; sh++) {
        size_t dim = shapes[sh][0], m = shapes[sh][1], ml = m * IVF_KSUB;
        float *cb = malloc(ml * (dim / m) * sizeof *cb), *cbt = malloc(ml * (dim / m) * sizeof *cbt);
        float *q = malloc(dim * sizeof *q), *ref = malloc(ml * sizeof *ref);
        float *got = malloc(ml * sizeof *got), *term = malloc(ml * sizeof *term);
        float *lut = malloc(ml * sizeof *lut), *lo = malloc(m * sizeof *lo), *hi = malloc(m * sizeof *hi);
        cr_assert(cb && cbt && q && ref && got && term && lut && lo && hi);
        for (size_t i = 0; i < ml * (dim / m); i++) cb[i] = rnd(&s);
        for (size_t i = 0; i < dim; i++) q[i] = rnd(&s);
        for (size_t i = 0; i < ml; i++) term[i] = 10 * rnd(&s);
        ivf_pq_dot_lut(cb, dim, m, q, ref);
        ivf_pq_transpose(cb, dim, m, cbt);
        ivf_dot_lut_t(cbt, dim, m, q, got);
        cr_assert_eq(memcmp(ref, got, ml * sizeof *ref), 0, "dot tables differ (%s, dim %zu)",
                     level, dim);
        for (int with_term = 0; with_term < 2; with_term++) {
            float a = with_term ? -2.0f : -1.0f;
            cr_assert_eq(ivf_lut_build(with_term ? term : NULL, ref, a, (uint32_t)m, lut, lo, hi), 0);
            for (size_t j = 0; j < m; j++) {
                float l = INFINITY, h = -INFINITY;
                for (size_t w = 0; w < IVF_KSUB; w++) {
                    size_t i = j * IVF_KSUB + w;
                    float v = with_term ? term[i] - 2.0f * ref[i] : -ref[i];
                    cr_assert_eq(lut[i], v, "entry %zu (%s)", i, level);
                    l = v < l ? v : l;
                    h = v > h ? v : h;
                }
                cr_assert_eq(lo[j], l, "minimum of table %zu (%s)", j, level);
                cr_assert_eq(hi[j], h, "maximum of table %zu (%s)", j, level);
            }
        }
        ref[m * IVF_KSUB - 3] = NAN;
        cr_assert_neq(ivf_lut_build(term, ref, -2.0f, (uint32_t)m, lut, lo, hi), 0, "NaN missed");
        cr_assert_neq(ivf_lut_build(NULL, ref, -1.0f, (uint32_t)m, lut, lo, hi), 0, "NaN missed");
        free(cb); free(cbt); free(q); free(ref); free(got); free(term); free(lut); free(lo); free(hi);
    }
}

Test(ivfpq_kernels, scalar) { check_level("scalar"); }
Test(ivfpq_kernels, avx2) { check_level("avx2"); }
Test(ivfpq_kernels, avx512) { check_level("avx512"); }
