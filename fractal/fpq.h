/* fractal/fpq.h - the PQ seam of the fractal index. Training, encoding and
 * the query tables are ivfpq/'s quantizer (ivf_pq_train / ivf_pq_encode /
 * ivf_dot_lut_t from ivfpq/ivfpq_int.h: k-means++ seeding, sgemm Lloyd
 * iterations); this header adds only what the fractal layer needs on top of
 * it: the codebooks it owns, decoding, the per-code L2 term of a residual code
 * against an anchor, and the ADC sum.
 *
 * Codebook layout (ivfpq's): cb[(j * FPQ_KSUB + c) * dsub + t] is element t of
 * codeword c of subspace j. Codes are m bytes per vector.
 * Invariants: (1) every code byte names a codeword, so any byte string decodes;
 * (2) training is deterministic for (data, m, iters, seed) with one BLAS
 * thread; (3) cbt is the transpose of cb whenever cb is set.
 */
#ifndef STRATA_FRACTAL_FPQ_H
#define STRATA_FRACTAL_FPQ_H

#include <stddef.h>
#include <stdint.h>

#define FPQ_KSUB 256u

typedef struct frac_pq {
    uint32_t dim, m, dsub;
    float   *cb;             /* m * FPQ_KSUB * dsub, owned                      */
    float   *cbt;            /* m * dsub * FPQ_KSUB: cb transposed per subspace
                                (ivf_pq_transpose), for the query tables; owned */
} frac_pq;

/* Train m codebooks on n >= 1 vectors x (n * dim): one per subspace with
 * ivf_pq_train, or, when shared, one codebook trained by ivf_kmeans on all
 * n * m sub-vectors pooled and copied to every subspace (m times the
 * training points: it generalizes to regions the sample did not cover). With
 * fewer than FPQ_KSUB points the sample is repeated cyclically up to
 * FPQ_KSUB rows (codewords then repeat). Returns STRATA_OK, STRATA_EINVAL
 * (dim % m, n == 0), STRATA_ENOMEM. On success pq owns new codebooks (the
 * old ones are freed). */
int  fpq_train(frac_pq *pq, const float *x, size_t n, uint32_t dim, uint32_t m,
               uint32_t iters, uint64_t seed, int shared);
/* Take ownership of codebooks cb (m * FPQ_KSUB * dim/m floats, malloc'd) and
 * build the transpose. On STRATA_ENOMEM cb is freed and pq is unchanged. */
int  fpq_adopt(frac_pq *pq, float *cb, uint32_t dim, uint32_t m);
void fpq_free(frac_pq *pq);
/* Encode n vectors (n * dim) into n * m bytes (nearest codeword per subspace).
 * Returns STRATA_OK, STRATA_ENOMEM. */
int  fpq_encode(const frac_pq *pq, const float *x, size_t n, uint8_t *codes);
void fpq_decode(const frac_pq *pq, const uint8_t *code, float *x);
/* |r|^2 + 2<a, r> for r = fpq_decode(code), in f64 rounded to f32: with it,
 * |q - (a + r)|^2 = |q - a|^2 - 2<q, r> + term, so one IP table of q serves
 * every anchor. */
float fpq_term(const frac_pq *pq, const float *a, const uint8_t *code);
/* Query table lut[j * FPQ_KSUB + c] = scale * <q_j, codeword c of j>
 * (m * FPQ_KSUB floats); scale must be 1, -1 or a power of two (then exact).
 * Returns STRATA_OK, STRATA_ENOMEM. */
int  fpq_table(const frac_pq *pq, const float *q, float scale, float *lut);
/* sum_j lut[j][code[j]], four independent partial sums (the latency of one
 * chain of m dependent adds was the scan's bottleneck). */
static inline float fpq_adc(const float *lut, const uint8_t *code, uint32_t m)
{
    float s0 = 0, s1 = 0, s2 = 0, s3 = 0;
    uint32_t j = 0;
    for (; j + 4 <= m; j += 4, lut += 4 * FPQ_KSUB) {
        s0 += lut[code[j]];
        s1 += lut[FPQ_KSUB + code[j + 1]];
        s2 += lut[2 * FPQ_KSUB + code[j + 2]];
        s3 += lut[3 * FPQ_KSUB + code[j + 3]];
    }
    for (; j < m; j++, lut += FPQ_KSUB) s0 += lut[code[j]];
    return (s0 + s1) + (s2 + s3);
}

#endif /* STRATA_FRACTAL_FPQ_H */
