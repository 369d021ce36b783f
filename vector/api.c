/* vector/api.c - the public strata_vec_*, strata_sq8_* and strata_bin_*
 * functions (include/strata.h, vector section).
 *
 * Invariants:
 *  (1) Every public entry checks its arguments (NULL, metric, dim range, sizes
 *      that would overflow size_t) before touching memory, and returns
 *      STRATA_EINVAL for bad ones; nothing here aborts on input.
 *  (2) Distances handed back are finite: a non-finite kernel result means an
 *      input was not a valid vector, reported as STRATA_EINVAL.
 *  (3) Scalar out-parameters are written on success only.
 */
#include <math.h>

#include "vector_int.h"

static int dim_ok(size_t dim)
{
    return dim >= 1 && dim <= STRATA_VEC_MAX_DIM;
}

static int metric_ok(strata_metric m)
{
    return (unsigned)m < VEC_N_METRICS;
}

/* n items of `width` bytes each fit in size_t. */
static int count_ok(size_t n, size_t width)
{
    return width == 0 || n <= SIZE_MAX / width;
}

STRATA_API int strata_vec_validate(const float *x, size_t dim)
{
    return vec_validate(x, dim);
}

STRATA_API int strata_vec_distance(strata_metric m, const float *a, const float *b, size_t dim,
                                   float *out)
{
    if (!a || !b || !out || !metric_ok(m) || !dim_ok(dim)) return STRATA_EINVAL;
    float d = vec_kernels_get()->dist[m](a, b, dim);
    if (!isfinite(d)) return STRATA_EINVAL;
    *out = d;
    return STRATA_OK;
}

STRATA_API int strata_vec_distance_batch(strata_metric m, const float *q, const float *base,
                                         size_t n, size_t dim, float *out)
{
    if (!q || (n && (!base || !out)) || !metric_ok(m) || !dim_ok(dim) ||
        !count_ok(n, dim * sizeof(float)))
        return STRATA_EINVAL;
    vec_kernels_get()->dist_batch[m](q, base, n, dim, out);
    for (size_t j = 0; j < n; j++)
        if (!isfinite(out[j])) return STRATA_EINVAL;
    return STRATA_OK;
}

STRATA_API int strata_vec_topk(strata_metric m, const float *query, const float *base,
                               size_t n, size_t dim, const uint64_t *ids, size_t k,
                               strata_vec_filter_fn filter, void *ctx, strata_hit *out,
                               size_t *n_out)
{
    if (!query || !base || !out || !n_out || !metric_ok(m) || !dim_ok(dim) || k == 0 ||
        k > n || !count_ok(n, dim * sizeof(float)))
        return STRATA_EINVAL;
    int rc = vec_validate(query, dim);
    if (rc != STRATA_OK) return rc;
    vec_topk h;
    vec_topk_init(&h, out, k);
    rc = vec_topk_scan(vec_kernels_get(), m, query, base, n, dim, ids, filter, ctx, &h);
    if (rc != STRATA_OK) return rc;
    *n_out = vec_topk_finish(&h);
    return STRATA_OK;
}

STRATA_API const char *strata_vec_kernel_name(void)
{
    return vec_kernels_get()->name;
}

STRATA_API int strata_sq8_train(const float *data, size_t n, size_t dim, float *vmin,
                                float *vmax)
{
    if (!data || n == 0 || !vmin || !vmax || !dim_ok(dim) || !count_ok(n, dim * sizeof(float)))
        return STRATA_EINVAL;
    for (size_t j = 0; j < n; j++)
        if (vec_validate(data + j * dim, dim) != STRATA_OK) return STRATA_EINVAL;
    vec_sq8_train(data, n, dim, vmin, vmax);
    return STRATA_OK;
}

/* Bounds usable by encode/decode: finite, ordered, finite span. */
static int sq8_bounds_ok(const float *vmin, const float *vmax, size_t dim)
{
    if (!vmin || !vmax || !dim_ok(dim)) return 0;
    for (size_t i = 0; i < dim; i++) {
        if (!isfinite(vmin[i]) || !isfinite(vmax[i]) || vmin[i] > vmax[i] ||
            !isfinite(vmax[i] - vmin[i]))
            return 0;
    }
    return 1;
}

STRATA_API int strata_sq8_encode(const float *vmin, const float *vmax, size_t dim,
                                 const float *x, size_t n, uint8_t *codes)
{
    if ((n && (!x || !codes)) || !sq8_bounds_ok(vmin, vmax, dim) ||
        !count_ok(n, dim * sizeof(float)))
        return STRATA_EINVAL;
    for (size_t j = 0; j < n; j++)
        if (vec_validate(x + j * dim, dim) != STRATA_OK) return STRATA_EINVAL;
    for (size_t j = 0; j < n; j++) vec_sq8_encode(vmin, vmax, dim, x + j * dim, codes + j * dim);
    return STRATA_OK;
}

STRATA_API int strata_sq8_decode(const float *vmin, const float *vmax, size_t dim,
                                 const uint8_t *codes, size_t n, float *x)
{
    if ((n && (!x || !codes)) || !sq8_bounds_ok(vmin, vmax, dim) ||
        !count_ok(n, dim * sizeof(float)))
        return STRATA_EINVAL;
    for (size_t j = 0; j < n; j++) vec_sq8_decode(vmin, vmax, dim, codes + j * dim, x + j * dim);
    return STRATA_OK;
}

STRATA_API int strata_sq8_l2(const uint8_t *a, const uint8_t *b, size_t dim, uint32_t *out)
{
    if (!a || !b || !out || !dim_ok(dim)) return STRATA_EINVAL;
    *out = vec_kernels_get()->l2_u8(a, b, dim);
    return STRATA_OK;
}

STRATA_API size_t strata_bin_words(size_t dim)
{
    return vec_bin_words(dim);
}

STRATA_API int strata_bin_encode(const float *x, size_t n, size_t dim, uint64_t *codes)
{
    if ((n && (!x || !codes)) || !dim_ok(dim) || !count_ok(n, dim * sizeof(float)))
        return STRATA_EINVAL;
    for (size_t j = 0; j < n; j++)
        if (vec_validate(x + j * dim, dim) != STRATA_OK) return STRATA_EINVAL;
    size_t nw = vec_bin_words(dim);
    for (size_t j = 0; j < n; j++) vec_bin_encode(x + j * dim, dim, codes + j * nw);
    return STRATA_OK;
}

STRATA_API int strata_bin_hamming(const uint64_t *a, const uint64_t *b, size_t n_words,
                                  uint64_t *out)
{
    if (!a || !b || !out || n_words == 0 || n_words > SIZE_MAX / sizeof(uint64_t))
        return STRATA_EINVAL;
    *out = vec_kernels_get()->hamming(a, b, n_words);
    return STRATA_OK;
}
