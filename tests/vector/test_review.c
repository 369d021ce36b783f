/* tests/vector/test_review.c - regression tests for bugs found in review of the
 * vector layer: cosine of invalid inputs, sq8 with a span too small for
 * 255 / span to be finite, distances of valid vectors at the norm bound.
 */
#include <criterion/criterion.h>
#include <float.h>
#include <math.h>
#include <string.h>

#include "vector.h"

/* docs/VECTORS.md "Validation": a NaN or Inf in an input (or an overflowing
 * norm) always gives a non-finite distance, so the public calls return
 * STRATA_EINVAL. Cosine returned a finite 1 when the other vector was all
 * zeros, or when a squared norm overflowed to Inf. */
Test(review_cosine, invalid_input_is_not_finite_on_every_level)
{
    enum { DIM = 21 };   /* one full AVX-512 chunk and a tail; two AVX2 chunks */
    float zero[DIM] = { 0 }, ones[DIM], nan_x[DIM] = { 0 }, inf_x[DIM] = { 0 }, big[DIM];
    for (int i = 0; i < DIM; i++) { ones[i] = 1.0f; big[i] = 1e30f; }
    nan_x[DIM - 1] = NAN;   /* in the tail */
    inf_x[3] = INFINITY;
    const float *bad[3] = { nan_x, inf_x, big };
    const char *bad_name[3] = { "NaN", "Inf", "norm overflow" };
    const float *good[2] = { zero, ones };
    for (int l = 0; l < VEC_LEVEL_COUNT; l++) {
        const vec_kernels *kt = vec_kernels_for((vec_level)l);
        if (!kt) continue;
        for (int b = 0; b < 3; b++) {
            for (int g = 0; g < 2; g++) {
                float d1 = kt->dist[STRATA_METRIC_COSINE](good[g], bad[b], DIM);
                float d2 = kt->dist[STRATA_METRIC_COSINE](bad[b], good[g], DIM);
                cr_assert(!isfinite(d1) && !isfinite(d2), "%s: cosine(%s, %s) = %g, %g",
                          kt->name, g ? "ones" : "zeros", bad_name[b], (double)d1, (double)d2);
                float base[5 * DIM], out[5];
                for (int j = 0; j < 5; j++) memcpy(base + j * DIM, j == 2 ? bad[b] : ones, sizeof ones);
                kt->dist_batch[STRATA_METRIC_COSINE](good[g], base, 5, DIM, out);
                cr_assert(!isfinite(out[2]), "%s: batch cosine(%s, %s) = %g", kt->name,
                          g ? "ones" : "zeros", bad_name[b], (double)out[2]);
            }
        }
    }
    float d = 42.0f;
    cr_assert_eq(strata_vec_distance(STRATA_METRIC_COSINE, zero, nan_x, DIM, &d), STRATA_EINVAL,
                 "zero vs NaN");
    cr_assert_eq(strata_vec_distance(STRATA_METRIC_COSINE, ones, big, DIM, &d), STRATA_EINVAL,
                 "norm overflow: the true distance is 0, not 1");
    cr_assert_eq(d, 42.0f, "out untouched on error");
    /* the zero-vector rule still holds for valid vectors */
    cr_assert_eq(strata_vec_distance(STRATA_METRIC_COSINE, zero, ones, DIM, &d), STRATA_OK, "zero");
    cr_assert_eq(d, 1.0f, "1 if either vector is all zeros");
    cr_assert_eq(strata_vec_distance(STRATA_METRIC_COSINE, zero, zero, DIM, &d), STRATA_OK, "zeros");
    cr_assert_eq(d, 1.0f, "1 if both vectors are all zeros");
}

/* strata_vec_topk does not validate base rows; a NaN row must make it fail
 * rather than rank as a hit at distance 1. */
Test(review_cosine, topk_nan_row_is_einval)
{
    enum { DIM = 4, N = 3 };
    float q[DIM] = { 1, 0, 0, 0 };
    float base[N * DIM] = { 0, 1, 0, 0,  NAN, 0, 0, 0,  0, 0, 1, 0 };
    strata_hit out[N];
    size_t n_out = 0;
    cr_assert_eq(strata_vec_topk(STRATA_METRIC_COSINE, q, base, N, DIM, NULL, N, NULL, NULL, out,
                                 &n_out), STRATA_EINVAL, "NaN row with a non-zero query");
    float zq[DIM] = { 0 };
    cr_assert_eq(strata_vec_topk(STRATA_METRIC_COSINE, zq, base, N, DIM, NULL, N, NULL, NULL, out,
                                 &n_out), STRATA_EINVAL, "NaN row with a zero query");
}

/* docs/VECTORS.md "sq8": |decode(encode(x)) - x| <= s / 510 plus a few roundings.
 * With a normal but small span (s < 255 / FLT_MAX ~ 7.5e-37) 255 / s is Inf:
 * every x above vmin encoded as 255, and x == vmin computed 0 * Inf = NaN and
 * converted it to an integer (undefined behaviour). */
Test(review_sq8, tiny_span_round_trip)
{
    enum { DIM = 3 };
    const float vmin[DIM] = { 0.0f, -1e-37f, 2e-38f };
    const float vmax[DIM] = { 1e-37f, 1e-37f, 4e-37f };
    const float x[4][DIM] = {
        { 5e-38f, 0.0f, 2e-37f },
        { 0.0f, -1e-37f, 2e-38f },     /* exactly vmin */
        { 1e-37f, 1e-37f, 4e-37f },    /* exactly vmax */
        { 2.5e-38f, 3e-38f, 1e-37f },
    };
    uint8_t codes[4 * DIM];
    float back[4 * DIM];
    cr_assert_eq(strata_sq8_encode(vmin, vmax, DIM, &x[0][0], 4, codes), STRATA_OK, "encode");
    cr_assert_eq(strata_sq8_decode(vmin, vmax, DIM, codes, 4, back), STRATA_OK, "decode");
    for (int j = 0; j < 4; j++) {
        for (int i = 0; i < DIM; i++) {
            double s = (double)vmax[i] - (double)vmin[i];
            double err = fabs((double)back[j * DIM + i] - (double)x[j][i]);
            cr_assert(err <= s / 510 * 1.01, "x[%d][%d] = %g: code %u decodes to %g (error %g > %g)",
                      j, i, (double)x[j][i], codes[j * DIM + i], (double)back[j * DIM + i], err,
                      s / 510);
        }
    }
    cr_assert_eq(codes[1 * DIM + 0], 0, "vmin encodes as 0");
    cr_assert_eq(codes[2 * DIM + 0], 255, "vmax encodes as 255");
}

/* vector.h: "any L2 or dot product of two valid vectors is finite". With the
 * bound on the squared norm at FLT_MAX / 4 (now FLT_MAX / 8), a and -a at the bound have |a - b|^2 = FLT_MAX
 * in exact arithmetic, and f32 rounding of the partial sums took it to Inf
 * (dim 23, 81, 82 on every level): strata_vec_distance said STRATA_EINVAL for
 * two vectors strata_vec_validate accepts. */
Test(review_validate, extremes_at_the_bound_give_finite_distances)
{
    static float a[STRATA_VEC_MAX_DIM], b[STRATA_VEC_MAX_DIM];
    for (size_t dim = 1; dim <= STRATA_VEC_MAX_DIM; dim = dim < 300 ? dim + 1 : dim * 4 + 3) {
        /* the largest x with [x, x, ...] valid: binary search on the bit
         * patterns of positive floats (ordered as the floats are) */
        uint32_t lo = 0, hi = 0x7F7FFFFFu;   /* 0 is valid, FLT_MAX is not */
        while (hi - lo > 1) {
            uint32_t mid = lo + (hi - lo) / 2;
            float y;
            memcpy(&y, &mid, sizeof y);
            for (size_t i = 0; i < dim; i++) a[i] = y;
            if (strata_vec_validate(a, dim) == STRATA_OK) lo = mid;
            else hi = mid;
        }
        float x;
        memcpy(&x, &lo, sizeof x);
        for (size_t i = 0; i < dim; i++) { a[i] = x; b[i] = -x; }
        cr_assert_eq(strata_vec_validate(a, dim), STRATA_OK, "dim %zu", dim);
        cr_assert_eq(strata_vec_validate(b, dim), STRATA_OK, "dim %zu", dim);
        for (int l = 0; l < VEC_LEVEL_COUNT; l++) {
            const vec_kernels *kt = vec_kernels_for((vec_level)l);
            if (!kt) continue;
            for (int m = 0; m < VEC_N_METRICS; m++) {
                float d = kt->dist[m](a, b, dim), s = kt->dist[m](a, a, dim);
                cr_assert(isfinite(d) && isfinite(s), "%s dim %zu metric %d x %g: %g %g",
                          kt->name, dim, m, (double)x, (double)d, (double)s);
            }
        }
    }
}
