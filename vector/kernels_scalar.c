/* vector/kernels_scalar.c - the portable reference kernels (table "scalar").
 *
 * Invariants:
 *  (1) Plain C17, no intrinsics: correct on every target; the SIMD tables are
 *      tested against these.
 *  (2) f32 sums use 8 interleaved partial sums (element i goes to lane i % 8)
 *      combined pairwise at the end, which bounds rounding error about as well
 *      as the SIMD kernels do and lets the compiler vectorize the loop.
 *  (3) Batch kernels call the single-pair kernels, so vector.h invariant (2)
 *      (batch == single, bit for bit) holds trivially.
 */
#include <math.h>

#include "vector_int.h"

enum { LANES = 8 };

static float lanes_sum(const float acc[LANES])
{
    return ((acc[0] + acc[4]) + (acc[2] + acc[6])) + ((acc[1] + acc[5]) + (acc[3] + acc[7]));
}

static float l2_scalar(const float *a, const float *b, size_t dim)
{
    float acc[LANES] = {0};
    for (size_t i = 0; i < dim; i++) {
        float d = a[i] - b[i];
        acc[i % LANES] += d * d;
    }
    return lanes_sum(acc);
}

static float dot_scalar(const float *a, const float *b, size_t dim)
{
    float acc[LANES] = {0};
    for (size_t i = 0; i < dim; i++) acc[i % LANES] += a[i] * b[i];
    return lanes_sum(acc);
}

static float ip_scalar(const float *a, const float *b, size_t dim)
{
    return -dot_scalar(a, b, dim);
}

static float cosine_scalar(const float *a, const float *b, size_t dim)
{
    float ab[LANES] = {0}, aa[LANES] = {0}, bb[LANES] = {0};
    for (size_t i = 0; i < dim; i++) {
        ab[i % LANES] += a[i] * b[i];
        aa[i % LANES] += a[i] * a[i];
        bb[i % LANES] += b[i] * b[i];
    }
    return vec_cosine_finish(lanes_sum(ab), lanes_sum(aa), lanes_sum(bb));
}

static float l1_scalar(const float *a, const float *b, size_t dim)
{
    float acc[LANES] = {0};
    for (size_t i = 0; i < dim; i++) acc[i % LANES] += fabsf(a[i] - b[i]);
    return lanes_sum(acc);
}

static void l2_batch_scalar(const float *q, const float *base, size_t n, size_t dim, float *out)
{
    for (size_t j = 0; j < n; j++) out[j] = l2_scalar(q, base + j * dim, dim);
}

static void ip_batch_scalar(const float *q, const float *base, size_t n, size_t dim, float *out)
{
    for (size_t j = 0; j < n; j++) out[j] = ip_scalar(q, base + j * dim, dim);
}

static void cosine_batch_scalar(const float *q, const float *base, size_t n, size_t dim,
                                float *out)
{
    for (size_t j = 0; j < n; j++) out[j] = cosine_scalar(q, base + j * dim, dim);
}

static void l1_batch_scalar(const float *q, const float *base, size_t n, size_t dim, float *out)
{
    for (size_t j = 0; j < n; j++) out[j] = l1_scalar(q, base + j * dim, dim);
}

static uint32_t l2_u8_scalar(const uint8_t *a, const uint8_t *b, size_t dim)
{
    uint32_t s = 0;
    for (size_t i = 0; i < dim; i++) {
        int d = (int)a[i] - (int)b[i];
        s += (uint32_t)(d * d);
    }
    return s;
}

static void l2_u8_batch_scalar(const uint8_t *q, const uint8_t *base, size_t n, size_t dim,
                               uint32_t *out)
{
    for (size_t j = 0; j < n; j++) out[j] = l2_u8_scalar(q, base + j * dim, dim);
}

static uint64_t hamming_scalar(const uint64_t *a, const uint64_t *b, size_t n_words)
{
    uint64_t s = 0;
    for (size_t i = 0; i < n_words; i++) s += vec_popcount64(a[i] ^ b[i]);
    return s;
}

static void hamming_batch_scalar(const uint64_t *q, const uint64_t *base, size_t n,
                                 size_t n_words, uint64_t *out)
{
    for (size_t j = 0; j < n; j++) out[j] = hamming_scalar(q, base + j * n_words, n_words);
}

const vec_kernels vec_kernels_scalar = {
    .name = "scalar",
    .level = VEC_LEVEL_SCALAR,
    .dist = {
        [STRATA_METRIC_L2] = l2_scalar, [STRATA_METRIC_IP] = ip_scalar,
        [STRATA_METRIC_COSINE] = cosine_scalar, [STRATA_METRIC_L1] = l1_scalar,
    },
    .dist_batch = {
        [STRATA_METRIC_L2] = l2_batch_scalar, [STRATA_METRIC_IP] = ip_batch_scalar,
        [STRATA_METRIC_COSINE] = cosine_batch_scalar, [STRATA_METRIC_L1] = l1_batch_scalar,
    },
    .l2_u8 = l2_u8_scalar,
    .l2_u8_batch = l2_u8_batch_scalar,
    .hamming = hamming_scalar,
    .hamming_batch = hamming_batch_scalar,
};
