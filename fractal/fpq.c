/* fractal/fpq.c - the fractal index's use of ivfpq/'s product quantizer
 * (ivfpq/pq.c, ivfpq/scan.c): codebook ownership, training and encoding by
 * ivf_pq_train / ivf_pq_encode, query tables by ivf_dot_lut_t over the
 * transposed codebooks, plus decoding and the per-code anchor term that only
 * residual codes against per-leaf anchors need. Invariants: see fpq.h.
 */
#include <stdlib.h>
#include <string.h>

#include "fpq.h"
#include "ivfpq_int.h"
#include "strata.h"

_Static_assert(FPQ_KSUB == IVF_KSUB, "the fractal index uses ivfpq's codebook layout");

/* From this many vectors on, ivf_pq_encode (sgemm per subspace) encodes;
 * below, the direct loop of encode_one: for a cascade of buffer_cap (8 by
 * default) vectors, the sgemm calls and their 1 MiB distance blocks (one per
 * subspace) cost more than the distances themselves. */
enum { FPQ_ENCODE_BATCH = 256 };

int fpq_adopt(frac_pq *pq, float *cb, uint32_t dim, uint32_t m)
{
    float *cbt = malloc((size_t)FPQ_KSUB * dim * sizeof *cbt);
    if (!cbt) { free(cb); return STRATA_ENOMEM; }
    ivf_pq_transpose(cb, dim, m, cbt);
    fpq_free(pq);
    *pq = (frac_pq){ .dim = dim, .m = m, .dsub = dim / m, .cb = cb, .cbt = cbt };
    return STRATA_OK;
}

/* One codebook for every subspace: k-means on the n * m sub-vectors of x
 * pooled, copied to all m subspaces. */
static int train_shared(const float *x, size_t n, uint32_t dim, uint32_t m, uint32_t iters,
                        uint64_t seed, float *cb)
{
    size_t dsub = dim / m;
    /* x read as n * m rows of dsub: row i * m + j is subspace j of vector i */
    int rc = ivf_kmeans(x, n * m, dsub, FPQ_KSUB, iters, seed + 0x1000, cb, NULL);
    for (size_t j = 1; rc == STRATA_OK && j < m; j++)
        memcpy(cb + j * FPQ_KSUB * dsub, cb, FPQ_KSUB * dsub * sizeof *cb);
    return rc;
}

int fpq_train(frac_pq *pq, const float *x, size_t n, uint32_t dim, uint32_t m,
              uint32_t iters, uint64_t seed, int shared)
{
    if (!pq || !x || n == 0 || m == 0 || dim % m) return STRATA_EINVAL;
    size_t nt = n < FPQ_KSUB ? FPQ_KSUB : n;
    float *cb = malloc((size_t)FPQ_KSUB * dim * sizeof *cb);
    float *pad = n < FPQ_KSUB ? malloc(nt * dim * sizeof *pad) : NULL;
    int rc = STRATA_ENOMEM;
    if (!cb || (n < FPQ_KSUB && !pad)) goto out;
    for (size_t i = 0; pad && i < nt; i++)   /* ivf_kmeans needs n >= 256 */
        memcpy(pad + i * dim, x + (i % n) * dim, (size_t)dim * sizeof *pad);
    rc = shared ? train_shared(pad ? pad : x, nt, dim, m, iters, seed, cb)
                : ivf_pq_train(pad ? pad : x, nt, dim, m, iters, seed, cb, NULL);
    if (rc != STRATA_OK) goto out;
    rc = fpq_adopt(pq, cb, dim, m);
    cb = NULL;
out:
    free(cb); free(pad);
    return rc;
}

void fpq_free(frac_pq *pq)
{
    if (!pq) return;
    free(pq->cb);
    free(pq->cbt);
    pq->cb = pq->cbt = NULL;
}

/* Nearest codeword of each subspace of one vector, over the transposed
 * codebooks: d[c] = sum_t (x_t - cbt[t][c])^2 runs over 256 contiguous
 * codewords per t (vectorizable), then an argmin. */
static void encode_one(const frac_pq *pq, const float *x, uint8_t *code)
{
    float d[FPQ_KSUB];
    for (uint32_t j = 0; j < pq->m; j++) {
        const float *cbt = pq->cbt + (size_t)j * pq->dsub * FPQ_KSUB;
        const float *xj = x + (size_t)j * pq->dsub;
        for (uint32_t c = 0; c < FPQ_KSUB; c++) { float e = xj[0] - cbt[c]; d[c] = e * e; }
        for (uint32_t t = 1; t < pq->dsub; t++) {
            const float *row = cbt + (size_t)t * FPQ_KSUB;
            for (uint32_t c = 0; c < FPQ_KSUB; c++) { float e = xj[t] - row[c]; d[c] += e * e; }
        }
        uint32_t b = 0;
        for (uint32_t c = 1; c < FPQ_KSUB; c++)
            if (d[c] < d[b]) b = c;
        code[j] = (uint8_t)b;
    }
}

int fpq_encode(const frac_pq *pq, const float *x, size_t n, uint8_t *codes)
{
    if (n >= FPQ_ENCODE_BATCH) return ivf_pq_encode(pq->cb, pq->dim, pq->m, x, n, codes);
    for (size_t i = 0; i < n; i++) encode_one(pq, x + i * pq->dim, codes + i * pq->m);
    return STRATA_OK;
}

void fpq_decode(const frac_pq *pq, const uint8_t *code, float *x)
{
    for (uint32_t j = 0; j < pq->m; j++)
        memcpy(x + (size_t)j * pq->dsub,
               pq->cb + ((size_t)j * FPQ_KSUB + code[j]) * pq->dsub, pq->dsub * sizeof *x);
}

float fpq_term(const frac_pq *pq, const float *a, const uint8_t *code)
{
    double t = 0;
    for (uint32_t j = 0; j < pq->m; j++) {
        const float *c = pq->cb + ((size_t)j * FPQ_KSUB + code[j]) * pq->dsub;
        const float *aj = a + (size_t)j * pq->dsub;
        for (uint32_t i = 0; i < pq->dsub; i++) t += (double)c[i] * ((double)c[i] + 2.0 * aj[i]);
    }
    return (float)t;
}

int fpq_table(const frac_pq *pq, const float *q, float scale, float *lut)
{
    if (scale == 1.0f) { ivf_dot_lut_t(pq->cbt, pq->dim, pq->m, q, lut); return STRATA_OK; }
    /* <scale * q, c> = scale * <q, c> bit for bit when scale is -1 or a power
     * of two (every product and partial sum scales exactly): scale the query
     * (dim products), not the table (256 * m). */
    float *qs = malloc((size_t)pq->dim * sizeof *qs);
    if (!qs) return STRATA_ENOMEM;
    for (uint32_t t = 0; t < pq->dim; t++) qs[t] = scale * q[t];
    ivf_dot_lut_t(pq->cbt, pq->dim, pq->m, qs, lut);
    free(qs);
    return STRATA_OK;
}
