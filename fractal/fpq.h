/* fractal/fpq.h - the one small PQ interface the fractal index uses: train
 * global codebooks, encode a vector to codes, decode, build the ADC table of a
 * query, and the distance from a table. Everything PQ-specific sits behind
 * these five calls so that ivfpq/'s quantizer can replace fpq.c without
 * touching the tree code.
 *
 * Codebook layout: cb[(j * FPQ_KSUB + c) * dsub + t] is element t of codeword c
 * of subspace j (the same layout as ivfpq/pq.c). Codes are m bytes per vector.
 * Invariants: (1) every code byte names a codeword, so any byte string decodes;
 * (2) training is deterministic for (data, m, iters, seed);
 * (3) for an L2 table, fpq_adc(code) is the squared L2 distance from the query
 *     to fpq_decode(code) up to f32 rounding; for an IP table it is -dot.
 */
#ifndef STRATA_FRACTAL_FPQ_H
#define STRATA_FRACTAL_FPQ_H

#include <stddef.h>
#include <stdint.h>

#include "vector.h"

#define FPQ_KSUB 256u

typedef struct frac_pq {
    uint32_t dim, m, dsub;
    float   *cb;             /* m * FPQ_KSUB * dsub, owned */
} frac_pq;

/* Train m codebooks on n >= 1 vectors x (n * dim). With fewer than FPQ_KSUB
 * distinct points, codewords repeat. Returns STRATA_OK, STRATA_EINVAL (dim % m,
 * n == 0), STRATA_ENOMEM. On success pq owns new codebooks (old ones freed). */
int  fpq_train(frac_pq *pq, const vec_kernels *kt, const float *x, size_t n, uint32_t dim,
               uint32_t m, uint32_t iters, uint64_t seed);
void fpq_free(frac_pq *pq);
/* Encode n vectors (n * dim) into n * m bytes. */
void fpq_encode(const frac_pq *pq, const vec_kernels *kt, const float *x, size_t n,
                uint8_t *codes);
void fpq_decode(const frac_pq *pq, const uint8_t *code, float *x);
/* |r|^2 + 2<a, r> for r = fpq_decode(code), in f64 rounded to f32: with it,
 * |q - (a + r)|^2 = |q - a|^2 - 2<q, r> + term, so one IP table of q serves
 * every anchor. */
float fpq_term(const frac_pq *pq, const float *a, const uint8_t *code);
/* ADC table of query q (m * FPQ_KSUB floats): squared L2 per subspace when ip
 * is 0, negated dot product when ip is 1. */
void fpq_table(const frac_pq *pq, const vec_kernels *kt, int ip, const float *q, float *lut);
static inline float fpq_adc(const float *lut, const uint8_t *code, uint32_t m)
{
    float s = 0;
    for (uint32_t j = 0; j < m; j++) s += lut[j * FPQ_KSUB + code[j]];
    return s;
}

#endif /* STRATA_FRACTAL_FPQ_H */
