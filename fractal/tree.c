/* fractal/tree.c - bookkeeping along the tree: sums, sums of squared norms,
 * populations, centroids and spreads up the path of a changed leaf, time ranges (leaves widen, internal
 * nodes are recomputed as unions of their children), and routing by centroid:
 * an insert goes to the nearest leaf found by a beam of FRAC_ROUTE_BEAM nodes
 * per internal level, not by the nearest child at each level (an internal
 * centroid is the mean of regions far apart, and greedy descent put 10 % of a
 * drifting stream outside its nearest leaf: docs/FRACTAL.md "Insert routing and
 * leaf ranking").
 * Invariants: (1) every change to a leaf's members goes through
 * frac_path_add(), so an ancestor's sums are always the sum of its
 * descendants' and its centroid is recomputed at once (routing never uses a
 * stale centroid, even inside one batch); (2) walks up the tree stop after
 * FRAC_DEPTH_LIMIT steps, whatever the parent fields say.
 */
#include <math.h>
#include <string.h>

#include "fractal_int.h"

double frac_sqnorm(const float *w, uint32_t dim)
{
    double s = 0;
    for (uint32_t i = 0; i < dim; i++) s += (double)w[i] * w[i];
    return s;
}

/* TwoSum of sq and x (s + e == sq + x exactly), e kept in sq_lo, then sq
 * the f64 nearest sq + sq_lo. Plain f64 additions keep the rounding of the
 * largest value sq held: a leaf that held a 1e12 member and fell to 30 in
 * steps each too small for the delete's cancellation test was off by 1e-5;
 * this way the error is about 2^-104 of that value. sq_lo is stored with sq
 * (without it a reopen between the 1e12 and the fall loses the same), and
 * every recomputation adds through here too. */
void frac_sq_add(frac_node *n, double x)
{
    double s = n->sq + x, bp = s - n->sq;
    double e = (n->sq - (s - bp)) + (x - bp);
    double lo = n->sq_lo + e, hi = s + lo;
    n->sq_lo = lo - (hi - s);
    n->sq = hi;
}

void frac_node_spread(const strata_fractal *f, frac_node *n)
{
    double s = n->pop ? n->sq / (double)n->pop - frac_sqnorm(n->cent, f->cfg.dim) : 0;
    n->spread = s > 0 ? (float)s : 0.0f;
}

void frac_node_cent(strata_fractal *f, frac_node *n)
{
    for (uint32_t i = 0; i < f->cfg.dim; i++)
        n->cent[i] = n->pop ? (float)(n->sum[i] / (double)n->pop) : 0.0f;
    frac_node_spread(f, n);
    n->dirty = 1;
}

void frac_path_add(strata_fractal *f, frac_node *n, const float *w, int sign, int dpop)
{
    uint32_t dim = f->cfg.dim;
    double sq = w ? frac_sqnorm(w, dim) : 0;
    for (uint32_t step = 0; n && step <= FRAC_DEPTH_LIMIT; step++) {
        if (w) {
            if (sign > 0) for (uint32_t i = 0; i < dim; i++) n->sum[i] += w[i];
            else          for (uint32_t i = 0; i < dim; i++) n->sum[i] -= w[i];
            frac_sq_add(n, sign > 0 ? sq : -sq);
        }
        if (sign > 0) n->pop += (uint64_t)dpop;
        else          n->pop -= (uint64_t)dpop;
        if (n->pop == 0) { memset(n->sum, 0, (size_t)dim * sizeof *n->sum); n->sq = n->sq_lo = 0; }
        frac_node_cent(f, n);
        n = n->parent == FRAC_NONE ? NULL : frac_node_at(f, n->parent);
    }
}

void frac_path_ts(strata_fractal *f, frac_node *n, uint64_t ts)
{
    for (uint32_t step = 0; n && step <= FRAC_DEPTH_LIMIT; step++) {
        if (ts < n->ts_min) { n->ts_min = ts; n->dirty = 1; }
        if (ts > n->ts_max) { n->ts_max = ts; n->dirty = 1; }
        n = n->parent == FRAC_NONE ? NULL : frac_node_at(f, n->parent);
    }
}

static void ts_from_children(strata_fractal *f, frac_node *n)
{
    uint64_t lo = UINT64_MAX, hi = 0;
    for (uint32_t i = 0; i < n->n_child; i++) {
        const frac_node *c = frac_node_at(f, n->child[i]);
        if (!c) continue;
        if (c->ts_min < lo) lo = c->ts_min;
        if (c->ts_max > hi) hi = c->ts_max;
    }
    if (lo != n->ts_min || hi != n->ts_max) n->dirty = 1;
    n->ts_min = lo;
    n->ts_max = hi;
}

void frac_ts_refresh_up(strata_fractal *f, frac_node *n)
{
    n = n->parent == FRAC_NONE ? NULL : frac_node_at(f, n->parent);
    for (uint32_t step = 0; n && step <= FRAC_DEPTH_LIMIT; step++) {
        ts_from_children(f, n);
        n = n->parent == FRAC_NONE ? NULL : frac_node_at(f, n->parent);
    }
}

void frac_node_from_children(strata_fractal *f, frac_node *n)
{
    uint32_t dim = f->cfg.dim;
    memset(n->sum, 0, (size_t)dim * sizeof *n->sum);
    n->pop = 0;
    n->sq = n->sq_lo = 0;
    for (uint32_t i = 0; i < n->n_child; i++) {
        const frac_node *c = frac_node_at(f, n->child[i]);
        if (!c) continue;
        for (uint32_t j = 0; j < dim; j++) n->sum[j] += c->sum[j];
        frac_sq_add(n, c->sq);
        frac_sq_add(n, c->sq_lo);
        n->pop += c->pop;
    }
    frac_node_cent(f, n);
    ts_from_children(f, n);
}

float frac_route_dist(const strata_fractal *f, const frac_node *n, const float *w)
{
    return f->kt->dist[STRATA_METRIC_L2](w, n->cent, f->cfg.dim);
}

/* Keep the `keep` nearest of the nodes offered so far in best[0..*n), in
 * order (an insertion into a short sorted array). */
static void keep_nearest(frac_node **best, float *bd, uint32_t *n, uint32_t keep, frac_node *c, float d)
{
    uint32_t j;
    if (*n < keep) j = (*n)++;
    else if (d < bd[*n - 1]) j = *n - 1;
    else return;
    for (; j > 0 && bd[j - 1] > d; j--) { bd[j] = bd[j - 1]; best[j] = best[j - 1]; }
    bd[j] = d;
    best[j] = c;
}

frac_node *frac_route(strata_fractal *f, const float *w)
{
    frac_node *front[FRAC_ROUTE_BEAM], *next[FRAC_ROUTE_BEAM];
    float nd[FRAC_ROUTE_BEAM];
    uint32_t n_front = 1;
    front[0] = frac_node_at(f, f->cfg.root);
    for (uint32_t step = 0; front[0] && !front[0]->leaf; step++) {
        if (step > FRAC_DEPTH_LIMIT) return NULL;
        uint32_t n_next = 0;
        for (uint32_t a = 0; a < n_front; a++)
            for (uint32_t i = 0; i < front[a]->n_child; i++) {
                frac_node *c = frac_node_at(f, front[a]->child[i]);
                if (!c) continue;
                /* an empty subtree has no centroid: use it only if nothing
                 * else; a NaN distance (a damaged centroid) ranks last, as
                 * kept in place it would stop every nearer node offered
                 * after it in keep_nearest's insertion */
                float d = c->pop ? frac_route_dist(f, c, w) : 3.0e38f;
                if (d != d) d = INFINITY;
                keep_nearest(next, nd, &n_next, FRAC_ROUTE_BEAM, c, d);
            }
        if (n_next == 0) return NULL;
        memcpy(front, next, n_next * sizeof *front);
        n_front = n_next;
    }
    return front[0];   /* the nearest node of the last level: a leaf */
}
