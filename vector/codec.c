/* vector/codec.c - little-endian byte codecs for stored vectors and codes.
 *
 * Invariants:
 *  (1) Bytes on disk are little-endian and fixed width whatever the host: an
 *      f32 is its IEEE-754 binary32 bit pattern in 4 bytes, a u64 code word 8
 *      bytes (docs/VECTORS.md). Nothing here casts bytes to structs.
 *  (2) The put/get pairs are exact inverses (NaN payloads included).
 */
#include <string.h>

#include "vector_int.h"

void vec_f32_put(uint8_t *p, const float *x, size_t n)
{
    for (size_t i = 0; i < n; i++) {
        uint32_t v;
        memcpy(&v, &x[i], 4);
        p[4 * i] = (uint8_t)v;
        p[4 * i + 1] = (uint8_t)(v >> 8);
        p[4 * i + 2] = (uint8_t)(v >> 16);
        p[4 * i + 3] = (uint8_t)(v >> 24);
    }
}

void vec_f32_get(float *x, const uint8_t *p, size_t n)
{
    for (size_t i = 0; i < n; i++) {
        const uint8_t *b = p + 4 * i;
        uint32_t v = (uint32_t)b[0] | (uint32_t)b[1] << 8 | (uint32_t)b[2] << 16 |
                     (uint32_t)b[3] << 24;
        memcpy(&x[i], &v, 4);
    }
}

void vec_u64_put(uint8_t *p, const uint64_t *w, size_t n)
{
    for (size_t i = 0; i < n; i++)
        for (int b = 0; b < 8; b++) p[8 * i + (size_t)b] = (uint8_t)(w[i] >> (8 * b));
}

void vec_u64_get(uint64_t *w, const uint8_t *p, size_t n)
{
    for (size_t i = 0; i < n; i++) {
        uint64_t v = 0;
        for (int b = 0; b < 8; b++) v |= (uint64_t)p[8 * i + (size_t)b] << (8 * b);
        w[i] = v;
    }
}
