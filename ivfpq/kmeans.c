/* ivfpq/kmeans.c - k-means for the coarse quantizer and the PQ codebooks.
 * Seeding: k-means++ (D^2 sampling) on a subsample of at most 32 points per
 * centroid. Then a fixed number of Lloyd iterations on at most 256 points per
 * centroid (the same cap as FAISS), the distance matrix from cblas_sgemm
 * (|x|^2 - 2 x.c + |c|^2), and empty clusters repaired by splitting a cluster
 * chosen with probability proportional to its size (minus one).
 * Invariants: (1) deterministic for (data, k, iters, seed) with one BLAS
 * thread; (2) every returned centroid is finite.
 */
#include <cblas.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>
#if defined(__x86_64__) || defined(__i386__)
#include <immintrin.h>
#define IVF_X86 1
#endif

#include "ivfpq_int.h"

enum { SEED_PER_CENTROID = 32, TRAIN_PER_CENTROID = 256 };

uint64_t ivf_rng_next(uint64_t *s)
{
    uint64_t z = (*s += 0x9E3779B97F4A7C15ull);
    z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ull;
    z = (z ^ (z >> 27)) * 0x94D049BB133111EBull;
    return z ^ (z >> 31);
}

static double rng_unit(uint64_t *s) { return (double)(ivf_rng_next(s) >> 11) / 9007199254740992.0; }

static void row_norms(const float *x, size_t n, size_t dim, float *out)
{
    for (size_t i = 0; i < n; i++) {
        const float *r = x + i * dim;
        float s = 0;
        for (size_t j = 0; j < dim; j++) s += r[j] * r[j];
        out[i] = s;
    }
}

/* The first j minimising v_j = ip ? -d[j] : cn[j] - 2 d[j] (0 if none is
 * below +inf); *best = v_j. The reference, and the AVX-512 version below
 * (same v_j bits: 2 d[j] is exact, then one rounding; per lane the first
 * minimum, then the smallest index among lanes holding the minimum), so
 * the choice is the same at every level. This loop, not the sgemm, was
 * most of the training time. */
static uint32_t argmin_scalar(const float *d, const float *cn, size_t k, int ip, float *best)
{
    float b = INFINITY;
    uint32_t bj = 0;
    for (size_t j = 0; j < k; j++) {
        float v = ip ? -d[j] : cn[j] - 2.0f * d[j];
        if (v < b) { b = v; bj = (uint32_t)j; }
    }
    *best = b;
    return bj;
}

#ifdef IVF_X86
/* Keep in (vb, vi) the lanes of (v, ix) that are smaller, or equal with a
 * smaller index. */
__attribute__((target("avx512f,avx512bw,avx512dq,avx512vl")))
static inline void lane_min(__m512 *vb, __m512i *vi, __m512 v, __m512i ix)
{
    __mmask16 take = _mm512_cmp_ps_mask(v, *vb, _CMP_LT_OQ) |
                     (_mm512_cmp_ps_mask(v, *vb, _CMP_EQ_OQ) & _mm512_cmplt_epu32_mask(ix, *vi));
    *vb = _mm512_mask_mov_ps(*vb, take, v);
    *vi = _mm512_mask_mov_epi32(*vi, take, ix);
}

/* Four independent (minimum, index) lane sets break the loop-carried
 * compare/blend chain; lanes start at (+inf, UINT32_MAX) so that a lane
 * never below +inf loses every tie. */
__attribute__((target("avx512f,avx512bw,avx512dq,avx512vl")))
static uint32_t argmin_avx512(const float *d, const float *cn, size_t k, int ip, float *best)
{
    __m512 two = _mm512_set1_ps(2.0f), neg = _mm512_set1_ps(-0.0f), vb[4];
    __m512i vi[4], idx = _mm512_setr_epi32(0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15);
    for (int a = 0; a < 4; a++) {
        vb[a] = _mm512_set1_ps(INFINITY);
        vi[a] = _mm512_set1_epi32(-1);
    }
    size_t j = 0;
    for (; j + 64 <= k; j += 64)
        for (int a = 0; a < 4; a++) {
            size_t o = j + 16 * (size_t)a;
            __m512 dv = _mm512_loadu_ps(d + o);
            __m512 v = ip ? _mm512_xor_ps(dv, neg)
                          : _mm512_sub_ps(_mm512_loadu_ps(cn + o), _mm512_mul_ps(two, dv));
            __mmask16 lt = _mm512_cmp_ps_mask(v, vb[a], _CMP_LT_OQ);   /* strict: first */
            vb[a] = _mm512_mask_mov_ps(vb[a], lt, v);
            vi[a] = _mm512_mask_mov_epi32(vi[a], lt, _mm512_add_epi32(idx, _mm512_set1_epi32((int)o)));
        }
    lane_min(&vb[0], &vi[0], vb[1], vi[1]);
    lane_min(&vb[2], &vi[2], vb[3], vi[3]);
    lane_min(&vb[0], &vi[0], vb[2], vi[2]);
    float lanes[16];
    uint32_t li[16];
    _mm512_storeu_ps(lanes, vb[0]);
    _mm512_storeu_si512(li, vi[0]);
    float b = INFINITY;
    uint32_t bj = 0;
    for (int l = 0; l < 16; l++)
        if (lanes[l] < b || (lanes[l] == b && lanes[l] < INFINITY && li[l] < bj)) {
            b = lanes[l];
            bj = li[l];
        }
    for (; j < k; j++) {                      /* tail: later indices, strict < */
        float v = ip ? -d[j] : cn[j] - 2.0f * d[j];
        if (v < b) { b = v; bj = (uint32_t)j; }
    }
    *best = b;
    return bj;
}
#endif

static uint32_t argmin(const float *d, const float *cn, size_t k, int ip, float *best)
{
#ifdef IVF_X86
    if (vec_kernels_get()->level == VEC_LEVEL_AVX512) return argmin_avx512(d, cn, k, ip, best);
#endif
    return argmin_scalar(d, cn, k, ip, best);
}

int ivf_assign(const float *x, size_t n, size_t dim, const float *c, size_t k, int ip,
               uint32_t *assign, float *dist)
{
    size_t bs = (size_t)1 << 22;
    bs = bs / k < 1 ? 1 : bs / k;
    if (bs > 1024) bs = 1024;
    float *dots = malloc(bs * k * sizeof *dots);
    float *cn = malloc(k * sizeof *cn);
    float *xn = malloc(bs * sizeof *xn);
    int rc = STRATA_ENOMEM;
    if (!dots || !cn || !xn) goto out;
    row_norms(c, k, dim, cn);
    for (size_t i0 = 0; i0 < n; i0 += bs) {
        size_t nb = n - i0 < bs ? n - i0 : bs;
        cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasTrans, (int)nb, (int)k, (int)dim, 1.0f,
                    x + i0 * dim, (int)dim, c, (int)dim, 0.0f, dots, (int)k);
        row_norms(x + i0 * dim, nb, dim, xn);
        for (size_t i = 0; i < nb; i++) {
            float best;
            uint32_t bj = argmin(dots + i * k, cn, k, ip, &best);
            assign[i0 + i] = bj;
            if (dist) dist[i0 + i] = ip ? best : fmaxf(0.0f, best + xn[i]);
        }
    }
    rc = STRATA_OK;
out:
    free(dots); free(cn); free(xn);
    return rc;
}

/* Copy a deterministic random subset of min(n, cap) rows of x into *out. */
static int subsample(const float *x, size_t n, size_t dim, size_t cap, uint64_t *rng,
                     float **out, size_t *n_out)
{
    size_t m = n < cap ? n : cap;
    float *s = malloc(m * dim * sizeof *s);
    uint32_t *perm = n > cap ? malloc(n * sizeof *perm) : NULL;
    if (!s || (n > cap && !perm)) { free(s); free(perm); return STRATA_ENOMEM; }
    if (n <= cap) {
        memcpy(s, x, m * dim * sizeof *s);
    } else {
        for (size_t i = 0; i < n; i++) perm[i] = (uint32_t)i;
        for (size_t i = 0; i < m; i++) {             /* partial Fisher-Yates */
            size_t j = i + (size_t)(ivf_rng_next(rng) % (n - i));
            uint32_t t = perm[i]; perm[i] = perm[j]; perm[j] = t;
            memcpy(s + i * dim, x + (size_t)perm[i] * dim, dim * sizeof *s);
        }
    }
    free(perm);
    *out = s;
    *n_out = m;
    return STRATA_OK;
}

/* k-means++: D^2 sampling on the n points of x into c (k rows). */
static int seed_pp(const float *x, size_t n, size_t dim, size_t k, uint64_t *rng, float *c)
{
    const vec_kernels *kt = vec_kernels_get();
    float *d2 = malloc(n * sizeof *d2), *tmp = malloc(n * sizeof *tmp);
    if (!d2 || !tmp) { free(d2); free(tmp); return STRATA_ENOMEM; }
    size_t first = (size_t)(ivf_rng_next(rng) % n);
    memcpy(c, x + first * dim, dim * sizeof *c);
    kt->dist_batch[STRATA_METRIC_L2](c, x, n, dim, d2);
    for (size_t j = 1; j < k; j++) {
        double total = 0;
        for (size_t i = 0; i < n; i++) total += d2[i];
        size_t pick = (size_t)(ivf_rng_next(rng) % n);
        if (total > 0) {
            double r = rng_unit(rng) * total, acc = 0;
            for (size_t i = 0; i < n; i++) {
                acc += d2[i];
                if (acc >= r && d2[i] > 0) { pick = i; break; }
            }
        }
        memcpy(c + j * dim, x + pick * dim, dim * sizeof *c);
        kt->dist_batch[STRATA_METRIC_L2](c + j * dim, x, n, dim, tmp);
        for (size_t i = 0; i < n; i++) if (tmp[i] < d2[i]) d2[i] = tmp[i];
    }
    free(d2); free(tmp);
    return STRATA_OK;
}

/* Re-seed empty clusters by splitting others (FAISS's rule); returns the count. */
static uint32_t repair_empty(float *c, size_t k, size_t dim, size_t n, double *cnt,
                             uint64_t *rng)
{
    uint32_t fixed = 0;
    const float eps = 1.0f / 1024.0f;
    for (size_t ci = 0; ci < k; ci++) {
        if (cnt[ci] != 0) continue;
        if (n <= k) break;
        size_t cj = 0;
        for (;;) {                                 /* pick cj with p ~ (size - 1) */
            double p = (cnt[cj] - 1.0) / (double)(n - k);
            if (rng_unit(rng) < p) break;
            cj = (cj + 1) % k;
        }
        memcpy(c + ci * dim, c + cj * dim, dim * sizeof *c);
        for (size_t d = 0; d < dim; d++) {
            float s = (d % 2 == 0) ? 1.0f : -1.0f;
            c[ci * dim + d] *= 1.0f + s * eps;
            c[cj * dim + d] *= 1.0f - s * eps;
            if (c[ci * dim + d] == c[cj * dim + d]) c[ci * dim + d] += s * eps;
        }
        cnt[ci] = cnt[cj] / 2;
        cnt[cj] -= cnt[ci];
        fixed++;
    }
    return fixed;
}

typedef struct hidx { uint32_t h, i; } hidx;
static int hidx_cmp(const void *a, const void *b)
{
    const hidx *x = a, *y = b;
    if (x->h != y->h) return x->h < y->h ? -1 : 1;
    return x->i < y->i ? -1 : (x->i > y->i);
}

/* Distinct centroids: sort by hash, compare rows exactly inside equal-hash runs. */
static uint32_t count_distinct(const float *c, size_t k, size_t dim)
{
    hidx *h = malloc(k * sizeof *h);
    if (!h) return (uint32_t)k;
    for (size_t i = 0; i < k; i++)
        h[i] = (hidx){ivf_check32((const uint8_t *)(c + i * dim), dim * 4), (uint32_t)i};
    qsort(h, k, sizeof *h, hidx_cmp);
    uint32_t distinct = 0;
    for (size_t i = 0; i < k; i++) {
        int dup = 0;
        for (size_t j = i; j-- > 0 && h[j].h == h[i].h && !dup;)
            dup = memcmp(c + (size_t)h[i].i * dim, c + (size_t)h[j].i * dim,
                         dim * sizeof *c) == 0;
        distinct += !dup;
    }
    free(h);
    return distinct;
}

/* One Lloyd update: centroids = means of their points; counts to cnt. */
static void update_means(const float *x, size_t n, size_t dim, size_t k, const uint32_t *as,
                         float *c, double *cnt, double *sum)
{
    memset(sum, 0, k * dim * sizeof *sum);
    memset(cnt, 0, k * sizeof *cnt);
    for (size_t i = 0; i < n; i++) {
        double *s = sum + (size_t)as[i] * dim;
        const float *r = x + i * dim;
        for (size_t d = 0; d < dim; d++) s[d] += r[d];
        cnt[as[i]] += 1;
    }
    for (size_t j = 0; j < k; j++) {
        if (cnt[j] == 0) continue;
        for (size_t d = 0; d < dim; d++) c[j * dim + d] = (float)(sum[j * dim + d] / cnt[j]);
    }
}

int ivf_kmeans(const float *x, size_t n, size_t dim, size_t k, uint32_t iters, uint64_t seed,
               float *centroids, ivf_kmeans_out *st)
{
    if (n < k || k == 0) return STRATA_EINVAL;
    uint64_t rng = seed ^ 0x6B6D65616E73ull;
    float *tx = NULL, *sx = NULL;
    size_t tn = 0, sn = 0;
    uint32_t *as = NULL;
    double *cnt = NULL, *sum = NULL;
    ivf_kmeans_out o = {0};
    int rc = subsample(x, n, dim, k * TRAIN_PER_CENTROID, &rng, &tx, &tn);
    if (rc != STRATA_OK) goto out;
    if ((rc = subsample(tx, tn, dim, k * SEED_PER_CENTROID, &rng, &sx, &sn)) != STRATA_OK)
        goto out;
    if ((rc = seed_pp(sx, sn, dim, k, &rng, centroids)) != STRATA_OK) goto out;
    rc = STRATA_ENOMEM;
    as = malloc(tn * sizeof *as);
    cnt = malloc(k * sizeof *cnt);
    sum = malloc(k * dim * sizeof *sum);
    if (!as || !cnt || !sum) goto out;
    for (uint32_t it = 0; it < iters; it++) {
        if ((rc = ivf_assign(tx, tn, dim, centroids, k, 0, as, NULL)) != STRATA_OK) goto out;
        update_means(tx, tn, dim, k, as, centroids, cnt, sum);
        o.n_repaired += repair_empty(centroids, k, dim, tn, cnt, &rng);
    }
    if ((rc = ivf_assign(tx, tn, dim, centroids, k, 0, as, NULL)) != STRATA_OK) goto out;
    memset(cnt, 0, k * sizeof *cnt);
    for (size_t i = 0; i < tn; i++) cnt[as[i]] += 1;
    for (size_t j = 0; j < k; j++) o.n_empty += cnt[j] == 0;
    o.n_distinct = count_distinct(centroids, k, dim);
    if (st) *st = o;
    rc = STRATA_OK;
out:
    free(tx); free(sx); free(as); free(cnt); free(sum);
    return rc;
}
