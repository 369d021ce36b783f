/* ivfpq/pq.c - product quantizer: m subspaces of dsub = dim / m dimensions,
 * 256 codewords each, trained by k-means per subspace on residuals; encoding by
 * nearest codeword (sgemm per subspace); inner-product lookup tables.
 * Codebook layout in memory: codebooks[(j * 256 + c) * dsub + t] is element t of
 * codeword c of subspace j.
 * Invariants: (1) a code byte always names a codeword (256 per subspace), so
 * any byte string is a decodable code; (2) training is deterministic per seed.
 */
#include <stdlib.h>
#include <string.h>

#include "ivfpq_int.h"

/* Copy columns [j*dsub, (j+1)*dsub) of n rows into a contiguous n x dsub array. */
static void sub_extract(const float *x, size_t n, size_t dim, size_t j, size_t dsub, float *out)
{
    for (size_t i = 0; i < n; i++)
        memcpy(out + i * dsub, x + i * dim + j * dsub, dsub * sizeof *out);
}

int ivf_pq_train(const float *r, size_t n, size_t dim, size_t m, uint32_t iters, uint64_t seed,
                 float *codebooks, ivf_kmeans_out *st)
{
    if (n < IVF_KSUB) return STRATA_EINVAL;
    size_t dsub = dim / m;
    float *sub = malloc(n * dsub * sizeof *sub);
    if (!sub) return STRATA_ENOMEM;
    ivf_kmeans_out tot = {0};
    int rc = STRATA_OK;
    for (size_t j = 0; j < m && rc == STRATA_OK; j++) {
        ivf_kmeans_out o;
        sub_extract(r, n, dim, j, dsub, sub);
        rc = ivf_kmeans(sub, n, dsub, IVF_KSUB, iters, seed + 0x1000 * (j + 1),
                        codebooks + j * IVF_KSUB * dsub, &o);
        if (rc == STRATA_OK) {
            tot.n_repaired += o.n_repaired;
            tot.n_empty += o.n_empty;
            tot.n_distinct += o.n_distinct;
        }
    }
    free(sub);
    if (rc == STRATA_OK && st) *st = tot;
    return rc;
}

int ivf_pq_encode(const float *cb, size_t dim, size_t m, const float *r, size_t n,
                  uint8_t *codes)
{
    size_t dsub = dim / m, bs = n < 4096 ? n : 4096;
    float *sub = malloc(bs * dsub * sizeof *sub);
    uint32_t *as = malloc(bs * sizeof *as);
    int rc = STRATA_ENOMEM;
    if (!sub || !as) goto out;
    for (size_t i0 = 0; i0 < n; i0 += bs) {
        size_t nb = n - i0 < bs ? n - i0 : bs;
        for (size_t j = 0; j < m; j++) {
            sub_extract(r + i0 * dim, nb, dim, j, dsub, sub);
            rc = ivf_assign(sub, nb, dsub, cb + j * IVF_KSUB * dsub, IVF_KSUB, 0, as, NULL);
            if (rc != STRATA_OK) goto out;
            for (size_t i = 0; i < nb; i++) codes[(i0 + i) * m + j] = (uint8_t)as[i];
        }
    }
    rc = STRATA_OK;
out:
    free(sub); free(as);
    return rc;
}

void ivf_pq_dot_lut(const float *cb, size_t dim, size_t m, const float *q, float *lut)
{
    size_t dsub = dim / m;
    for (size_t j = 0; j < m; j++) {
        const float *qj = q + j * dsub;
        for (size_t c = 0; c < IVF_KSUB; c++) {
            const float *w = cb + (j * IVF_KSUB + c) * dsub;
            float s = 0;
            for (size_t t = 0; t < dsub; t++) s += qj[t] * w[t];
            lut[j * IVF_KSUB + c] = s;
        }
    }
}

void ivf_pq_transpose(const float *cb, size_t dim, size_t m, float *cbt)
{
    size_t dsub = dim / m;
    for (size_t j = 0; j < m; j++)
        for (size_t w = 0; w < IVF_KSUB; w++)
            for (size_t t = 0; t < dsub; t++)
                cbt[(j * dsub + t) * IVF_KSUB + w] = cb[(j * IVF_KSUB + w) * dsub + t];
}
