/* fractal/fpq.c - a minimal product quantizer behind fpq.h, TO BE FOLDED INTO
 * ivfpq/pq.c: ivfpq's quantizer (ivf_pq_train / ivf_pq_encode / ivf_pq_dot_lut,
 * OpenBLAS k-means) was not linkable when this layer was written (no
 * ivfpq/meson.build). Same codebook layout as ivfpq, so swapping the bodies of
 * these functions for calls to ivf_pq_* changes no stored byte.
 *
 * Training: per subspace, FPQ_KSUB codewords seeded from distinct sample
 * points (a seeded shuffle), then `iters` Lloyd iterations; an empty codeword
 * is re-seeded from the point farthest from its codeword. Encoding picks the
 * nearest codeword with the one-to-many L2 kernel of vector/.
 * Invariants: see fpq.h.
 */
#include <stdlib.h>
#include <string.h>

#include "fpq.h"
#include "strata.h"

static uint64_t rng_next(uint64_t *s)
{
    uint64_t z = (*s += 0x9E3779B97F4A7C15ull);
    z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ull;
    z = (z ^ (z >> 27)) * 0x94D049BB133111EBull;
    return z ^ (z >> 31);
}

static uint32_t nearest(const vec_kernels *kt, const float *q, const float *cb, size_t dsub,
                        float *d, float *best_d)
{
    kt->dist_batch[STRATA_METRIC_L2](q, cb, FPQ_KSUB, dsub, d);
    uint32_t b = 0;
    for (uint32_t c = 1; c < FPQ_KSUB; c++)
        if (d[c] < d[b]) b = c;
    if (best_d) *best_d = d[b];
    return b;
}

/* Lloyd iterations for one subspace: sub is n x dsub, cb is FPQ_KSUB x dsub. */
static int lloyd(const vec_kernels *kt, const float *sub, size_t n, size_t dsub, uint32_t iters,
                 float *cb)
{
    double *acc = calloc((size_t)FPQ_KSUB * dsub, sizeof *acc);
    size_t *cnt = calloc(FPQ_KSUB, sizeof *cnt);
    float *d = malloc(FPQ_KSUB * sizeof *d);
    if (!acc || !cnt || !d) { free(acc); free(cnt); free(d); return STRATA_ENOMEM; }
    for (uint32_t it = 0; it < iters; it++) {
        memset(acc, 0, (size_t)FPQ_KSUB * dsub * sizeof *acc);
        memset(cnt, 0, FPQ_KSUB * sizeof *cnt);
        size_t far_i = 0;
        float far_d = -1;
        for (size_t i = 0; i < n; i++) {
            float bd;
            uint32_t b = nearest(kt, sub + i * dsub, cb, dsub, d, &bd);
            cnt[b]++;
            for (size_t t = 0; t < dsub; t++) acc[b * dsub + t] += sub[i * dsub + t];
            if (bd > far_d) { far_d = bd; far_i = i; }
        }
        for (uint32_t c = 0; c < FPQ_KSUB; c++) {
            if (cnt[c]) {
                for (size_t t = 0; t < dsub; t++)
                    cb[c * dsub + t] = (float)(acc[c * dsub + t] / (double)cnt[c]);
            } else if (far_d > 0) {   /* repair: move an empty codeword to an outlier */
                memcpy(cb + c * dsub, sub + far_i * dsub, dsub * sizeof *cb);
                far_d = 0;
            }
        }
    }
    free(acc); free(cnt); free(d);
    return STRATA_OK;
}

int fpq_train(frac_pq *pq, const vec_kernels *kt, const float *x, size_t n, uint32_t dim,
              uint32_t m, uint32_t iters, uint64_t seed)
{
    if (!pq || !x || n == 0 || m == 0 || dim % m) return STRATA_EINVAL;
    size_t dsub = dim / m;
    float *cb = malloc((size_t)m * FPQ_KSUB * dsub * sizeof *cb);
    float *sub = malloc(n * dsub * sizeof *sub);
    size_t *perm = malloc(n * sizeof *perm);
    int rc = STRATA_ENOMEM;
    if (!cb || !sub || !perm) goto out;
    uint64_t s = seed ^ 0x5151F00Dull;
    for (size_t i = 0; i < n; i++) perm[i] = i;
    for (size_t i = n - 1; i > 0; i--) {
        size_t j = (size_t)(rng_next(&s) % (i + 1));
        size_t t = perm[i]; perm[i] = perm[j]; perm[j] = t;
    }
    for (uint32_t j = 0; j < m; j++) {
        for (size_t i = 0; i < n; i++)
            memcpy(sub + i * dsub, x + i * dim + (size_t)j * dsub, dsub * sizeof *sub);
        float *cbj = cb + (size_t)j * FPQ_KSUB * dsub;
        for (uint32_t c = 0; c < FPQ_KSUB; c++)
            memcpy(cbj + c * dsub, sub + perm[c % n] * dsub, dsub * sizeof *cb);
        if ((rc = lloyd(kt, sub, n, dsub, iters, cbj)) != STRATA_OK) goto out;
    }
    free(pq->cb);
    pq->cb = cb; cb = NULL;
    pq->dim = dim; pq->m = m; pq->dsub = (uint32_t)dsub;
    rc = STRATA_OK;
out:
    free(cb); free(sub); free(perm);
    return rc;
}

void fpq_free(frac_pq *pq)
{
    if (!pq) return;
    free(pq->cb);
    pq->cb = NULL;
}

void fpq_encode(const frac_pq *pq, const vec_kernels *kt, const float *x, size_t n,
                uint8_t *codes)
{
    float d[FPQ_KSUB];
    for (size_t i = 0; i < n; i++)
        for (uint32_t j = 0; j < pq->m; j++)
            codes[i * pq->m + j] = (uint8_t)nearest(kt, x + i * pq->dim + (size_t)j * pq->dsub,
                                                    pq->cb + (size_t)j * FPQ_KSUB * pq->dsub,
                                                    pq->dsub, d, NULL);
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

void fpq_table(const frac_pq *pq, const vec_kernels *kt, int ip, const float *q, float *lut)
{
    strata_metric mt = ip ? STRATA_METRIC_IP : STRATA_METRIC_L2;
    for (uint32_t j = 0; j < pq->m; j++)
        kt->dist_batch[mt](q + (size_t)j * pq->dsub, pq->cb + (size_t)j * FPQ_KSUB * pq->dsub,
                           FPQ_KSUB, pq->dsub, lut + (size_t)j * FPQ_KSUB);
}
