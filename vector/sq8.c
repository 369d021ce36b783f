/* vector/sq8.c - scalar quantizer: one byte per dimension (docs/VECTORS.md "sq8").
 *
 * Invariants:
 *  (1) For dimension i with span s = vmax[i] - vmin[i] > 0:
 *        code = round_half_up(clamp((x - vmin[i]) * (255 / s), 0, 255)),
 *        decode(code) = vmin[i] + code * (s / 255);
 *      when 255 / s overflows (s < 255 / FLT_MAX), encode uses
 *      (x - vmin[i]) / s * 255 instead, so the bound (2) still holds;
 *      with s == 0 every code is 0 and decodes to vmin[i].
 *  (2) For x in [vmin[i], vmax[i]]: |decode(encode(x)) - x| <= s / 510 plus a
 *      few float roundings of max(|vmin[i]|, |vmax[i]|) (tests/vector checks it).
 *  (3) The parameter block is little-endian and fixed width (vector.h);
 *      decoding it rejects anything encode could not have written.
 */
#include <math.h>
#include <string.h>

#include "vector_int.h"

void vec_sq8_train(const float *data, size_t n, size_t dim, float *vmin, float *vmax)
{
    memcpy(vmin, data, dim * sizeof *vmin);
    memcpy(vmax, data, dim * sizeof *vmax);
    for (size_t j = 1; j < n; j++) {
        const float *x = data + j * dim;
        for (size_t i = 0; i < dim; i++) {
            if (x[i] < vmin[i]) vmin[i] = x[i];
            if (x[i] > vmax[i]) vmax[i] = x[i];
        }
    }
}

void vec_sq8_encode(const float *vmin, const float *vmax, size_t dim, const float *x,
                    uint8_t *code)
{
    for (size_t i = 0; i < dim; i++) {
        float s = vmax[i] - vmin[i];
        if (!(s > 0.0f)) {
            code[i] = 0;
            continue;
        }
        float scale = 255.0f / s;
        /* s < 255 / FLT_MAX makes scale Inf: divide first then (0 * Inf is NaN) */
        float t = isfinite(scale) ? (x[i] - vmin[i]) * scale : (x[i] - vmin[i]) / s * 255.0f;
        if (t < 0.0f) t = 0.0f;
        if (t > 255.0f) t = 255.0f;
        code[i] = (uint8_t)(t + 0.5f);
    }
}

void vec_sq8_decode(const float *vmin, const float *vmax, size_t dim, const uint8_t *code,
                    float *x)
{
    for (size_t i = 0; i < dim; i++) {
        float s = vmax[i] - vmin[i];
        x[i] = s > 0.0f ? vmin[i] + (float)code[i] * (s / 255.0f) : vmin[i];
    }
}

size_t vec_sq8_params_size(size_t dim)
{
    return VEC_SQ8_OFF_MIN + 8 * dim;
}

static void le32_put(uint8_t *p, uint32_t v)
{
    p[0] = (uint8_t)v; p[1] = (uint8_t)(v >> 8); p[2] = (uint8_t)(v >> 16); p[3] = (uint8_t)(v >> 24);
}

static uint32_t le32_get(const uint8_t *p)
{
    return (uint32_t)p[0] | (uint32_t)p[1] << 8 | (uint32_t)p[2] << 16 | (uint32_t)p[3] << 24;
}

void vec_sq8_params_put(uint8_t *p, const float *vmin, const float *vmax, uint32_t dim)
{
    le32_put(p + VEC_SQ8_OFF_DIM, dim);
    le32_put(p + VEC_SQ8_OFF_FLAGS, 0);
    vec_f32_put(p + VEC_SQ8_OFF_MIN, vmin, dim);
    vec_f32_put(p + VEC_SQ8_OFF_MIN + 4 * (size_t)dim, vmax, dim);
}

int vec_sq8_params_get(const uint8_t *p, size_t len, uint32_t dim, float *vmin, float *vmax)
{
    if (dim == 0 || dim > STRATA_VEC_MAX_DIM || len != vec_sq8_params_size(dim))
        return STRATA_ECORRUPT;
    if (le32_get(p + VEC_SQ8_OFF_DIM) != dim || le32_get(p + VEC_SQ8_OFF_FLAGS) != 0)
        return STRATA_ECORRUPT;
    vec_f32_get(vmin, p + VEC_SQ8_OFF_MIN, dim);
    vec_f32_get(vmax, p + VEC_SQ8_OFF_MIN + 4 * (size_t)dim, dim);
    for (size_t i = 0; i < dim; i++) {
        if (!isfinite(vmin[i]) || !isfinite(vmax[i]) || vmin[i] > vmax[i] ||
            !isfinite(vmax[i] - vmin[i]))
            return STRATA_ECORRUPT;
    }
    return STRATA_OK;
}
