/* vector/topk.c - bounded max-heap for exact top-k, and the exact scan.
 *
 * Invariants (vec_topk, between init and finish):
 *  (1) 0 <= n <= k and hits[0..n) is a max-heap under worse(): no child is
 *      worse than its parent, so hits[0] is the worst hit kept.
 *  (2) worse() is a strict total order on (dist, id) for non-NaN dist, so the
 *      kept set and its final order depend only on the multiset of pushes,
 *      never on their order (deterministic ties: the smaller id wins).
 *  (3) After finish, hits[0..n) ascend under worse() (nearest first).
 * The scan computes distances in blocks of SCAN_BLOCK rows with the table's
 * one-to-many kernel (so memory streams), then offers each row to the heap.
 */
#include <math.h>

#include "vector_int.h"

enum { SCAN_BLOCK = 256 };   /* rows per kernel call: 1 KiB of distances on the stack */

static int worse(const strata_hit *a, const strata_hit *b)
{
    return a->dist > b->dist || (a->dist == b->dist && a->id > b->id);
}

static void sift_down(strata_hit *h, size_t n, size_t i)
{
    strata_hit x = h[i];
    for (;;) {
        size_t c = 2 * i + 1;
        if (c >= n) break;
        if (c + 1 < n && worse(&h[c + 1], &h[c])) c++;
        if (!worse(&h[c], &x)) break;
        h[i] = h[c];
        i = c;
    }
    h[i] = x;
}

static void sift_up(strata_hit *h, size_t i)
{
    strata_hit x = h[i];
    while (i > 0) {
        size_t p = (i - 1) / 2;
        if (!worse(&x, &h[p])) break;
        h[i] = h[p];
        i = p;
    }
    h[i] = x;
}

void vec_topk_init(vec_topk *h, strata_hit *buf, size_t k)
{
    h->hits = buf;
    h->k = k;
    h->n = 0;
}

void vec_topk_push(vec_topk *h, uint64_t id, float dist)
{
    if (!vec_topk_accepts(h, dist, id)) return;
    strata_hit x = { .id = id, .dist = dist };
    if (h->n < h->k) {
        h->hits[h->n] = x;
        sift_up(h->hits, h->n++);
    } else {
        h->hits[0] = x;
        sift_down(h->hits, h->n, 0);
    }
}

size_t vec_topk_finish(vec_topk *h)
{
    /* Heapsort: move the worst to the end, shrink, repeat. */
    for (size_t end = h->n; end > 1; end--) {
        strata_hit t = h->hits[0];
        h->hits[0] = h->hits[end - 1];
        h->hits[end - 1] = t;
        sift_down(h->hits, end - 1, 0);
    }
    return h->n;
}

int vec_topk_scan(const vec_kernels *kt, strata_metric m, const float *query,
                  const float *base, size_t n, size_t dim, const uint64_t *ids,
                  strata_vec_filter_fn filter, void *ctx, vec_topk *h)
{
    float d[SCAN_BLOCK];
    vec_dist_batch_fn fn = kt->dist_batch[m];
    for (size_t j0 = 0; j0 < n; j0 += SCAN_BLOCK) {
        size_t nb = n - j0 < SCAN_BLOCK ? n - j0 : SCAN_BLOCK;
        fn(query, base + j0 * dim, nb, dim, d);
        for (size_t i = 0; i < nb; i++) {
            if (!isfinite(d[i])) return STRATA_EINVAL;
            uint64_t id = ids ? ids[j0 + i] : (uint64_t)(j0 + i);
            if (!vec_topk_accepts(h, d[i], id)) continue;
            if (filter && !filter(ctx, id)) continue;
            vec_topk_push(h, id, d[i]);
        }
    }
    return STRATA_OK;
}
