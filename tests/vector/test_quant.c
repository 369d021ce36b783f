/* tests/vector/test_quant.c - quantizers (sq8, binary), their byte formats
 * (golden bytes, docs/VECTORS.md), validation, and the public distance calls'
 * argument checks.
 */
#include <criterion/criterion.h>
#include <float.h>
#include <math.h>
#include <string.h>

#include "vector.h"
#include "vtest.h"

Test(sq8, round_trip_within_bound)
{
    enum { N = 300, D = 37 };
    uint64_t seed = vtest_seed();
    vtest_rng r = { seed };
    static float x[N * D], y[N * D];
    static uint8_t codes[N * D];
    vtest_fill(&r, x, N * D, 10.0f);
    for (size_t j = 0; j < N; j++) x[j * D + 5] = 3.25f;        /* a constant dimension */
    for (size_t j = 0; j < N; j++) x[j * D + 6] = 1e4f + (float)j; /* offset, narrow range */
    float vmin[D], vmax[D];
    cr_assert_eq(strata_sq8_train(x, N, D, vmin, vmax), STRATA_OK, "train");
    cr_assert_eq(vmin[5], 3.25f, "constant dim min");
    cr_assert_eq(vmax[6], 1e4f + (float)(N - 1), "max");
    cr_assert_eq(strata_sq8_encode(vmin, vmax, D, x, N, codes), STRATA_OK, "encode");
    cr_assert_eq(strata_sq8_decode(vmin, vmax, D, codes, N, y), STRATA_OK, "decode");
    int saw0 = 0, saw255 = 0;
    for (size_t j = 0; j < N; j++)
        for (size_t i = 0; i < D; i++) {
            float s = vmax[i] - vmin[i];
            double bound = s / 510.0 + 4.0 * FLT_EPSILON * fmax(fabs(vmin[i]), fabs(vmax[i]));
            double err = fabs((double)y[j * D + i] - (double)x[j * D + i]);
            cr_assert(err <= bound, "seed=%llu row %zu dim %zu: x=%.9g decoded %.9g err %.3g > %.3g",
                      (unsigned long long)seed, j, i, (double)x[j * D + i], (double)y[j * D + i],
                      err, bound);
            saw0 |= codes[j * D + i] == 0;
            saw255 |= codes[j * D + i] == 255;
        }
    cr_assert(saw0 && saw255, "min and max map to 0 and 255");
    cr_assert_eq(y[5], 3.25f, "constant dimension decodes exactly");
}

Test(sq8, clamps_and_known_codes)
{
    const float vmin[3] = { 0, -1, 2 }, vmax[3] = { 255, 1, 2 };
    const float x[3] = { 100.4f, 5.0f, 7.0f };   /* in range; above max; constant dim */
    uint8_t c[3];
    cr_assert_eq(strata_sq8_encode(vmin, vmax, 3, x, 1, c), STRATA_OK, "encode");
    cr_assert(c[0] == 100 && c[1] == 255 && c[2] == 0, "codes %u %u %u", c[0], c[1], c[2]);
    const float below[3] = { -50, -7, 2 };
    cr_assert_eq(strata_sq8_encode(vmin, vmax, 3, below, 1, c), STRATA_OK, "encode");
    cr_assert(c[0] == 0 && c[1] == 0 && c[2] == 0, "clamped low");
    float y[3];
    const uint8_t mid[3] = { 51, 255, 9 };
    cr_assert_eq(strata_sq8_decode(vmin, vmax, 3, mid, 1, y), STRATA_OK, "decode");
    cr_assert(y[0] == 51.0f && y[1] == 1.0f && y[2] == 2.0f, "decoded %g %g %g", (double)y[0],
              (double)y[1], (double)y[2]);
}

Test(sq8, bad_arguments)
{
    float x[4] = { 1, 2, 3, 4 }, vmin[2] = { 0, 0 }, vmax[2] = { 1, 1 }, y[4];
    uint8_t c[4];
    uint32_t d;
    cr_assert_eq(strata_sq8_train(NULL, 2, 2, vmin, vmax), STRATA_EINVAL, "NULL data");
    cr_assert_eq(strata_sq8_train(x, 0, 2, vmin, vmax), STRATA_EINVAL, "n 0");
    cr_assert_eq(strata_sq8_train(x, 2, 0, vmin, vmax), STRATA_EINVAL, "dim 0");
    x[3] = NAN;
    cr_assert_eq(strata_sq8_train(x, 2, 2, vmin, vmax), STRATA_EINVAL, "NaN");
    cr_assert_eq(strata_sq8_encode(vmin, vmax, 2, x, 2, c), STRATA_EINVAL, "NaN encode");
    x[3] = 4;
    float bad_max[2] = { 1, -1 };
    cr_assert_eq(strata_sq8_encode(vmin, bad_max, 2, x, 2, c), STRATA_EINVAL, "min > max");
    cr_assert_eq(strata_sq8_decode(vmin, bad_max, 2, c, 2, y), STRATA_EINVAL, "min > max");
    cr_assert_eq(strata_sq8_decode(NULL, vmax, 2, c, 2, y), STRATA_EINVAL, "NULL vmin");
    cr_assert_eq(strata_sq8_l2(c, NULL, 2, &d), STRATA_EINVAL, "NULL b");
    cr_assert_eq(strata_sq8_l2(c, c, 0, &d), STRATA_EINVAL, "dim 0");
    cr_assert_eq(strata_sq8_l2(c, c, 2, &d), STRATA_OK, "ok");
    cr_assert_eq(d, 0u, "self distance");
}

/* Golden bytes for a 2-dim parameter block: docs/VECTORS.md "sq8 parameter block". */
static const uint8_t sq8_golden[] = {
    0x02, 0x00, 0x00, 0x00,   /* dim = 2           */
    0x00, 0x00, 0x00, 0x00,   /* flags = 0         */
    0x00, 0x00, 0x80, 0xbf,   /* vmin[0] = -1.0f   */
    0x00, 0x00, 0x00, 0x00,   /* vmin[1] =  0.0f   */
    0x00, 0x00, 0x80, 0x3f,   /* vmax[0] =  1.0f   */
    0x00, 0x00, 0x20, 0x41,   /* vmax[1] = 10.0f   */
};

Test(sq8, params_golden_bytes)
{
    const float vmin[2] = { -1.0f, 0.0f }, vmax[2] = { 1.0f, 10.0f };
    cr_assert_eq(vec_sq8_params_size(2), sizeof sq8_golden, "size");
    uint8_t p[sizeof sq8_golden];
    vec_sq8_params_put(p, vmin, vmax, 2);
    cr_assert(memcmp(p, sq8_golden, sizeof p) == 0, "encoded bytes differ from the fixture");
    float a[2], b[2];
    cr_assert_eq(vec_sq8_params_get(sq8_golden, sizeof sq8_golden, 2, a, b), STRATA_OK, "decode");
    cr_assert(a[0] == -1.0f && a[1] == 0.0f && b[0] == 1.0f && b[1] == 10.0f, "decoded values");
}

Test(sq8, params_reject_corruption)
{
    uint8_t p[sizeof sq8_golden];
    float a[2], b[2];
    cr_assert_eq(vec_sq8_params_get(sq8_golden, sizeof sq8_golden - 1, 2, a, b), STRATA_ECORRUPT, "short");
    cr_assert_eq(vec_sq8_params_get(sq8_golden, sizeof sq8_golden, 3, a, b), STRATA_ECORRUPT, "dim mismatch");
    memcpy(p, sq8_golden, sizeof p);
    p[4] = 1;
    cr_assert_eq(vec_sq8_params_get(p, sizeof p, 2, a, b), STRATA_ECORRUPT, "flags");
    memcpy(p, sq8_golden, sizeof p);
    p[19] = 0xc1;                                 /* vmax[0] = -16 < vmin[0] */
    cr_assert_eq(vec_sq8_params_get(p, sizeof p, 2, a, b), STRATA_ECORRUPT, "min > max");
    memcpy(p, sq8_golden, sizeof p);
    p[14] = 0xc0; p[15] = 0x7f;                   /* vmin[1] = NaN */
    cr_assert_eq(vec_sq8_params_get(p, sizeof p, 2, a, b), STRATA_ECORRUPT, "NaN bound");
}

Test(binary, encode_known_bits)
{
    float x[70];
    for (size_t i = 0; i < 70; i++) x[i] = (i % 3 == 0) ? 1.0f : -1.0f;
    x[1] = 0.0f;
    x[2] = -0.0f;
    x[69] = 2.0f;
    uint64_t c[2] = { 123, 456 };
    cr_assert_eq(strata_bin_words(70), 2, "words");
    cr_assert_eq(strata_bin_words(64), 1, "words");
    cr_assert_eq(strata_bin_encode(x, 1, 70, c), STRATA_OK, "encode");
    uint64_t w0 = 0, w1 = 0;
    for (size_t i = 0; i < 64; i++) w0 |= (uint64_t)(i % 3 == 0) << i;
    for (size_t i = 64; i < 70; i++) w1 |= (uint64_t)(i % 3 == 0 || i == 69) << (i - 64);
    cr_assert_eq(c[0], w0, "word 0 %016llx", (unsigned long long)c[0]);
    cr_assert_eq(c[1], w1, "word 1 %016llx (high bits must be 0)", (unsigned long long)c[1]);
    uint64_t d;
    uint64_t z[2] = { 0, 0 };
    cr_assert_eq(strata_bin_hamming(c, z, 2, &d), STRATA_OK, "hamming");
    cr_assert_eq(d, (uint64_t)(__builtin_popcountll(w0) + __builtin_popcountll(w1)), "popcount");
    cr_assert_eq(strata_bin_hamming(c, z, 0, &d), STRATA_EINVAL, "0 words");
    x[3] = INFINITY;
    cr_assert_eq(strata_bin_encode(x, 1, 70, c), STRATA_EINVAL, "Inf rejected");
}

Test(binary, hamming_matches_sign_disagreements)
{
    enum { D = 300, N = 50 };
    uint64_t seed = vtest_seed();
    vtest_rng r = { seed };
    static float x[N * D];
    vtest_fill(&r, x, N * D, 1.0f);
    size_t nw = strata_bin_words(D);
    uint64_t *c = malloc(N * nw * sizeof *c);
    cr_assert(c != NULL, "oom");
    cr_assert_eq(strata_bin_encode(x, N, D, c), STRATA_OK, "encode");
    for (size_t j = 1; j < N; j++) {
        uint64_t want = 0, got;
        for (size_t i = 0; i < D; i++) want += (x[i] > 0) != (x[j * D + i] > 0);
        cr_assert_eq(strata_bin_hamming(c, c + j * nw, nw, &got), STRATA_OK, "hamming");
        cr_assert_eq(got, want, "seed=%llu row %zu", (unsigned long long)seed, j);
    }
    free(c);
}

Test(codec, golden_little_endian)
{
    const float f[2] = { 1.0f, -2.5f };
    const uint8_t fb[8] = { 0x00, 0x00, 0x80, 0x3f, 0x00, 0x00, 0x20, 0xc0 };
    uint8_t p[16];
    vec_f32_put(p, f, 2);
    cr_assert(memcmp(p, fb, 8) == 0, "f32 bytes");
    float g[2];
    vec_f32_get(g, fb, 2);
    cr_assert(g[0] == 1.0f && g[1] == -2.5f, "f32 values");
    const uint64_t w[2] = { 0x0102030405060708ull, 0x8000000000000001ull };
    const uint8_t wb[16] = { 8, 7, 6, 5, 4, 3, 2, 1, 1, 0, 0, 0, 0, 0, 0, 0x80 };
    vec_u64_put(p, w, 2);
    cr_assert(memcmp(p, wb, 16) == 0, "u64 bytes");
    uint64_t v[2];
    vec_u64_get(v, wb, 2);
    cr_assert(v[0] == w[0] && v[1] == w[1], "u64 values");
}

Test(validate, rejects_bad_vectors)
{
    float x[4] = { 1, 2, 3, 4 };
    cr_assert_eq(strata_vec_validate(x, 4), STRATA_OK, "finite");
    cr_assert_eq(strata_vec_validate(NULL, 4), STRATA_EINVAL, "NULL");
    cr_assert_eq(strata_vec_validate(x, 0), STRATA_EINVAL, "dim 0");
    cr_assert_eq(strata_vec_validate(x, STRATA_VEC_MAX_DIM + 1), STRATA_EINVAL, "dim too big");
    x[2] = NAN;
    cr_assert_eq(strata_vec_validate(x, 4), STRATA_EINVAL, "NaN");
    x[2] = -INFINITY;
    cr_assert_eq(strata_vec_validate(x, 4), STRATA_EINVAL, "-Inf");
    x[2] = 7e18f;                                  /* 4.9e37 > FLT_MAX / 8 */
    cr_assert_eq(strata_vec_validate(x, 4), STRATA_EINVAL, "norm overflow");
    x[2] = 6e18f;                                  /* 3.6e37 <= FLT_MAX / 8 */
    cr_assert_eq(strata_vec_validate(x, 4), STRATA_OK, "large but valid");
    float y[4] = { -6e18f, 0, 0, 0 }, d;
    x[0] = x[1] = x[3] = 0;
    cr_assert_eq(strata_vec_validate(y, 4), STRATA_OK, "large but valid");
    cr_assert_eq(strata_vec_distance(STRATA_METRIC_L2, x, y, 4, &d), STRATA_OK,
                 "L2 of two valid extremes is finite");
    cr_assert(isfinite(d), "finite");
}

Test(distance, public_calls)
{
    const float a[3] = { 1, 0, 0 }, b[6] = { 0, 1, 0, 2, 0, 0 };
    float d = -1, out[2];
    cr_assert_eq(strata_vec_distance(STRATA_METRIC_COSINE, a, b, 3, &d), STRATA_OK, "cos");
    cr_assert_eq(d, 1.0f, "orthogonal");
    cr_assert_eq(strata_vec_distance_batch(STRATA_METRIC_IP, a, b, 2, 3, out), STRATA_OK, "batch");
    cr_assert(out[0] == 0.0f && out[1] == -2.0f, "ip %g %g", (double)out[0], (double)out[1]);
    cr_assert_eq(strata_vec_distance_batch(STRATA_METRIC_IP, a, NULL, 0, 3, NULL), STRATA_OK, "n 0");
    d = 42;
    cr_assert_eq(strata_vec_distance(STRATA_METRIC_L2, NULL, b, 3, &d), STRATA_EINVAL, "NULL a");
    cr_assert_eq(strata_vec_distance(STRATA_METRIC_L2, a, b, 3, NULL), STRATA_EINVAL, "NULL out");
    cr_assert_eq(strata_vec_distance(STRATA_METRIC_L2, a, b, 0, &d), STRATA_EINVAL, "dim 0");
    cr_assert_eq(strata_vec_distance((strata_metric)-1, a, b, 3, &d), STRATA_EINVAL, "metric");
    cr_assert_eq(strata_vec_distance_batch(STRATA_METRIC_L2, a, NULL, 2, 3, out), STRATA_EINVAL, "NULL base");
    const float nan3[3] = { 0, NAN, 0 };
    for (int m = 0; m < VEC_N_METRICS; m++) {
        cr_assert_eq(strata_vec_distance((strata_metric)m, a, nan3, 3, &d), STRATA_EINVAL, "NaN m=%d", m);
        cr_assert_eq(strata_vec_distance_batch((strata_metric)m, nan3, b, 2, 3, out), STRATA_EINVAL, "NaN batch m=%d", m);
    }
    cr_assert_eq(d, 42.0f, "out untouched on error");
}
