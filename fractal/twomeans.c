/* fractal/twomeans.c - the 2-means that splits a cluster in two: seeds at the
 * point farthest from the (weighted) mean and the point farthest from that,
 * a few Lloyd iterations, then a balance guard: when the smaller side holds
 * fewer than 1/8 of the points, split at the median of the projection on the
 * line through the two centres instead, so one outlier cannot make a split
 * that leaves a leaf above max_leaf.
 * frac_two_means_ex can skip the guard (a separation split keeps a small
 * group on its own side) and reports the split's ratio: the sum of squared
 * distances to the side means over the sum to the common mean.
 * Invariants: for n >= 2 both sides are non-empty; deterministic (no RNG use
 * beyond ties broken by index).
 */
#include <stdlib.h>
#include <string.h>

#include "fractal_int.h"

enum { TWO_MEANS_ITERS = 8 };

static double d2(const float *a, const double *c, size_t dim)
{
    double s = 0;
    for (size_t i = 0; i < dim; i++) { double t = a[i] - c[i]; s += t * t; }
    return s;
}

static size_t farthest(const float *x, size_t n, size_t dim, const double *c)
{
    size_t b = 0;
    double bd = -1;
    for (size_t i = 0; i < n; i++) {
        double d = d2(x + i * dim, c, dim);
        if (d > bd) { bd = d; b = i; }
    }
    return b;
}

typedef struct proj { double v; size_t i; } proj;
static int proj_cmp(const void *a, const void *b)
{
    const proj *p = a, *q = b;
    if (p->v != q->v) return p->v < q->v ? -1 : 1;
    return p->i < q->i ? -1 : p->i > q->i;
}

static int median_split(const float *x, size_t n, size_t dim, const double *c0, const double *c1,
                        uint8_t *side)
{
    proj *p = malloc(n * sizeof *p);
    if (!p) return STRATA_ENOMEM;
    for (size_t i = 0; i < n; i++) {
        double v = 0;
        for (size_t j = 0; j < dim; j++) v += x[i * dim + j] * (c1[j] - c0[j]);
        p[i] = (proj){ v, i };
    }
    qsort(p, n, sizeof *p, proj_cmp);
    for (size_t r = 0; r < n; r++) side[p[r].i] = r >= n / 2;
    free(p);
    return STRATA_OK;
}

/* (weighted) sum of squared distances of the points to their side's mean
 * (all on one side when side is NULL) */
static int sse(const float *x, const double *wt, size_t n, size_t dim, const uint8_t *side,
               double *out)
{
    double *m = calloc(2 * dim, sizeof *m), tw[2] = { 0, 0 }, s = 0;
    if (!m) return STRATA_ENOMEM;
    for (size_t i = 0; i < n; i++) {
        int k = side ? side[i] : 0;
        double w = wt ? wt[i] : 1.0;
        tw[k] += w;
        for (size_t j = 0; j < dim; j++) m[k * dim + j] += w * x[i * dim + j];
    }
    for (int k = 0; k < 2; k++)
        for (size_t j = 0; j < dim; j++) m[k * dim + j] /= tw[k] > 0 ? tw[k] : 1;
    for (size_t i = 0; i < n; i++)
        s += (wt ? wt[i] : 1.0) * d2(x + i * dim, m + (side ? side[i] : 0) * dim, dim);
    free(m);
    *out = s;
    return STRATA_OK;
}

int frac_two_means(const float *x, const double *wt, size_t n, size_t dim, uint64_t seed,
                   uint8_t *side)
{
    return frac_two_means_ex(x, wt, n, dim, seed, 1, side, NULL);
}

int frac_two_means_ex(const float *x, const double *wt, size_t n, size_t dim, uint64_t seed,
                      int guard, uint8_t *side, double *ratio)
{
    (void)seed;
    memset(side, 0, n);
    if (ratio) *ratio = 1.0;
    if (n < 2) return STRATA_OK;
    double *c = calloc(3 * dim, sizeof *c), *c0 = c + dim, *c1 = c + 2 * dim;
    if (!c) return STRATA_ENOMEM;
    double tw = 0;
    for (size_t i = 0; i < n; i++) {
        double w = wt ? wt[i] : 1.0;
        tw += w;
        for (size_t j = 0; j < dim; j++) c[j] += w * x[i * dim + j];
    }
    for (size_t j = 0; j < dim; j++) c[j] /= tw > 0 ? tw : 1;
    size_t a = farthest(x, n, dim, c);
    for (size_t j = 0; j < dim; j++) c0[j] = x[a * dim + j];
    size_t b = farthest(x, n, dim, c0);
    for (size_t j = 0; j < dim; j++) c1[j] = x[b * dim + j];
    for (int it = 0; it < TWO_MEANS_ITERS; it++) {
        for (size_t i = 0; i < n; i++) side[i] = d2(x + i * dim, c1, dim) < d2(x + i * dim, c0, dim);
        double w0 = 0, w1 = 0;
        memset(c, 0, dim * sizeof *c);   /* reuse c as the side-1 accumulator */
        double *acc0 = c0;
        double *tmp = calloc(dim, sizeof *tmp);
        if (!tmp) { free(c); return STRATA_ENOMEM; }
        for (size_t i = 0; i < n; i++) {
            double w = wt ? wt[i] : 1.0;
            double *dst = side[i] ? c : tmp;
            for (size_t j = 0; j < dim; j++) dst[j] += w * x[i * dim + j];
            if (side[i]) w1 += w; else w0 += w;
        }
        if (w0 <= 0 || w1 <= 0) { free(tmp); break; }
        for (size_t j = 0; j < dim; j++) { acc0[j] = tmp[j] / w0; c1[j] = c[j] / w1; }
        free(tmp);
    }
    size_t n1 = 0;
    for (size_t i = 0; i < n; i++) n1 += side[i];
    size_t small = n1 < n - n1 ? n1 : n - n1, need = n / 8 ? n / 8 : 1;
    int rc = STRATA_OK;
    if (small < need && (guard || small == 0)) {
        int same = 1;
        for (size_t j = 0; j < dim && same; j++) same = c0[j] == c1[j];
        if (same) for (size_t i = 0; i < n; i++) side[i] = (uint8_t)(i & 1);   /* identical points */
        else rc = median_split(x, n, dim, c0, c1, side);
    }
    free(c);
    if (rc == STRATA_OK && ratio) {
        double before, after;
        if ((rc = sse(x, wt, n, dim, NULL, &before)) == STRATA_OK &&
            (rc = sse(x, wt, n, dim, side, &after)) == STRATA_OK)
            *ratio = before > 0 ? after / before : 1.0;
    }
    return rc;
}
