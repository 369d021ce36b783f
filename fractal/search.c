/* fractal/search.c - k-nearest-neighbour search. A beam search goes down the
 * tree level by level: the children of the nodes kept so far are ranked by
 * routing distance to their centroids, `beam` of them are kept on internal
 * levels and `n_probe` leaves on the last (more, up to 2 * n_probe, when
 * deletes thinned them: thin_extend). Each chosen leaf contributes ADC
 * distances over its posting list (frac_adc_batch) and exact distances over
 * its buffer into one candidate heap that remembers where each posting
 * member's raw vector lies in its list; an optional rerank recomputes the
 * best candidates exactly from those raw vectors (buffered ones: raw rows).
 * A time window skips whole subtrees whose time range misses it, then single
 * vectors outside it; the metadata filter is asked only about vectors that
 * would enter the result.
 * Invariants: (1) buffer and ADC distances are on one scale: squared L2, -dot
 * (IP), or 1 - dot of unit vectors (cosine, both sides normalized), so they
 * share one heap; (2) the search never writes.
 */
#include <stdlib.h>
#include <string.h>

#include "fractal_int.h"

typedef struct cand { float d; uint32_t id; } cand;

static int cand_cmp(const void *a, const void *b)
{
    const cand *p = a, *q = b;
    if (p->d != q->d) return p->d < q->d ? -1 : 1;
    return p->id < q->id ? -1 : p->id > q->id;
}

/* A candidate: its estimated distance, id and (posting members of a KEEP_RAW
 * index) its raw vector inside the posting list, valid for the read-only
 * search (the txn does not write meanwhile). */
typedef struct chit { float d; uint64_t id; const uint8_t *raw; } chit;

static int chit_worse(const chit *x, const chit *y)   /* x after y in the result */
{
    return x->d > y->d || (x->d == y->d && x->id > y->id);
}

static int chit_cmp(const void *a, const void *b)
{
    return chit_worse(a, b) ? 1 : chit_worse(b, a) ? -1 : 0;
}

/* A bounded max-heap of candidates, worst (d, id) at the root, as vec_topk
 * orders hits (ties go to the smaller id), but carrying the raw pointer. */
typedef struct cheap { chit *a; size_t n, k; } cheap;

static inline int cheap_accepts(const cheap *h, float d, uint64_t id)
{
    if (h->n < h->k) return 1;
    return d < h->a[0].d || (d == h->a[0].d && id < h->a[0].id);
}

static void cheap_push(cheap *h, chit c)
{
    size_t i;
    if (h->n < h->k) {   /* sift up */
        for (i = h->n++; i > 0 && chit_worse(&c, &h->a[(i - 1) / 2]); i = (i - 1) / 2)
            h->a[i] = h->a[(i - 1) / 2];
    } else {             /* replace the root, sift down */
        for (i = 0;;) {
            size_t l = 2 * i + 1, r = l + 1, w = i;
            const chit *wc = &c;
            if (l < h->n && chit_worse(&h->a[l], wc)) { w = l; wc = &h->a[l]; }
            if (r < h->n && chit_worse(&h->a[r], wc)) w = r;
            if (w == i) break;
            h->a[i] = h->a[w];
            i = w;
        }
    }
    h->a[i] = c;
}

typedef struct sctx {
    strata_fractal *f;
    const strata_fractal_params *p;
    const float *qw;       /* working query                        */
    float  *lut;           /* m * 256: -<q_j, c> (x2 for L2)       */
    float  *anchor;        /* dim: the scanned leaf's anchor       */
    float  *terms;         /* cap_terms: ADC sums, then the terms  */
    size_t  cap_terms;
    float   base;          /* 1 for cosine, else 0                 */
    cheap  *h;
} sctx;

static int in_window(const sctx *s, uint64_t lo, uint64_t hi)
{
    if (!(s->p->flags & STRATA_FRACTAL_WINDOW)) return 1;
    return lo <= s->p->ts_max && hi >= s->p->ts_min;
}

static void admit(sctx *s, uint64_t id, float d, const uint8_t *raw)
{
    if (s->p->filter && !s->p->filter(s->p->filter_ctx, id)) return;
    cheap_push(s->h, (chit){ d, id, raw });
}

/* The common case (the candidate does not enter the heap) stays inline. */
static inline void offer(sctx *s, uint64_t id, float d, const uint8_t *raw)
{
    if (cheap_accepts(s->h, d, id)) admit(s, id, d, raw);
}

/* ADC over a leaf's residual codes r against its anchor a:
 * L2: |q - a - r|^2 = |q - a|^2 - 2<q, r> + term  (lut = -2<q_j, c>);
 * IP and cosine: -<q, a + r> = -<q, a> - <q, r>   (lut = -<q_j, c>). */
static int scan_post(sctx *s, const frac_node *leaf)
{
    uint8_t k[8];
    strata_slice v;
    frac_post post;
    strata_fractal *f = s->f;
    uint32_t m = f->cfg.pq_m, dim = f->cfg.dim;
    frac_le64_put(k, leaf->id);
    int rc = strata_get(f->t[FT_POST], (strata_slice){k, 8}, &v);
    if (rc == STRATA_NOTFOUND) return leaf->n_codes ? FRAC_CORRUPT() : STRATA_OK;
    if (rc != STRATA_OK) return rc;
    int raw = (f->cfg.flags & CFG_F_RAW) != 0;
    if ((rc = frac_post_view(v.data, v.len, m, dim, raw, &post)) != STRATA_OK) return rc;
    int win = (s->p->flags & STRATA_FRACTAL_WINDOW) != 0;
    int l2 = f->cfg.metric == STRATA_METRIC_L2;
    if ((size_t)2 * post.n > s->cap_terms) {
        float *t = realloc(s->terms, (size_t)2 * post.n * sizeof *t);
        if (!t) return STRATA_ENOMEM;
        s->terms = t;
        s->cap_terms = (size_t)2 * post.n;
    }
    float *adc = s->terms, *terms = s->terms + post.n;
    if (l2) frac_f32_get(terms, post.terms, post.n);   /* one decode per list */
    frac_f32_get(s->anchor, post.anchor, dim);
    float base = s->base + (l2 ? f->kt->dist[STRATA_METRIC_L2](s->qw, s->anchor, dim)
                               : f->kt->dist[STRATA_METRIC_IP](s->qw, s->anchor, dim));
    frac_adc_batch(f->kt, s->lut, post.codes, post.n, m, adc);
    for (uint32_t i = 0; i < post.n; i++) {
        if (win) {
            uint64_t ts = frac_le64_get(post.ts + 8 * (size_t)i);
            if (ts < s->p->ts_min || ts > s->p->ts_max) continue;
        }
        float d = base + adc[i];
        if (l2) d += terms[i];
        if (s->h->n == s->h->k && d > s->h->a[0].d) continue;   /* before decoding the id */
        offer(s, frac_le64_get(post.ids + 8 * (size_t)i), d,
              post.raw ? post.raw + (size_t)4 * dim * i : NULL);
    }
    return STRATA_OK;
}

static int scan_buf(sctx *s, const frac_node *leaf)
{
    strata_fractal *f = s->f;
    uint32_t dim = f->cfg.dim;
    uint8_t lo[BUF_KEY_LEN], hi[BUF_KEY_LEN];
    frac_buf_key(lo, leaf->id, 0);
    frac_buf_key(hi, leaf->id + 1, 0);
    strata_slice slo = {lo, BUF_KEY_LEN}, shi = {hi, BUF_KEY_LEN}, k, v;
    strata_metric mt = f->cfg.metric == STRATA_METRIC_L2 ? STRATA_METRIC_L2 : STRATA_METRIC_IP;
    float *w = malloc((size_t)dim * sizeof *w);
    strata_cursor *c = NULL;
    int rc = w ? strata_cursor_open(f->t[FT_BUF], &c) : STRATA_ENOMEM;
    if (rc == STRATA_OK) rc = strata_cursor_set_range(c, &slo, &shi, 0);
    for (rc = rc ? rc : strata_cursor_first(c); rc == STRATA_OK; rc = strata_cursor_next(c)) {
        if ((rc = strata_cursor_get(c, &k, &v)) != STRATA_OK) break;
        if (k.len != BUF_KEY_LEN || v.len != 8 + (size_t)4 * dim) { rc = FRAC_CORRUPT(); break; }
        uint64_t ts = frac_le64_get(v.data);
        if ((s->p->flags & STRATA_FRACTAL_WINDOW) && (ts < s->p->ts_min || ts > s->p->ts_max))
            continue;
        frac_f32_get(w, (const uint8_t *)v.data + 8, dim);
        offer(s, frac_be64_get((const uint8_t *)k.data + 4), s->base + f->kt->dist[mt](s->qw, w, dim),
              NULL);
    }
    strata_cursor_close(c);
    free(w);
    return rc == STRATA_NOTFOUND ? STRATA_OK : rc;
}

/* Leaves to keep from the ranked candidates cs[0..n_c): n_probe, or more
 * when those hold fewer than n_probe * max_leaf / 2 vectors (leaves thinned by
 * deletes cover the same region with fewer vectors, so the same number of
 * them would find fewer neighbours): then the next ones in rank order until
 * they do, at most 2 * n_probe leaves. */
static uint32_t thin_extend(const strata_fractal *f, const cand *cs, size_t n_c, uint32_t n_probe)
{
    uint64_t want = (uint64_t)n_probe * (f->cfg.max_leaf / 2), have = 0;
    uint64_t cap = (uint64_t)n_probe * 2;
    uint64_t i = 0;
    for (; i < n_c && i < cap; i++) {
        if (i >= n_probe && have >= want) break;
        have += frac_node_at(f, cs[i].id)->pop;
    }
    return (uint32_t)(i > n_probe ? i : n_probe);
}

/* Choose the leaves to scan: ids into *out (n_probe, up to 2 * n_probe of
 * thinned leaves). */
static int pick_leaves(sctx *s, uint32_t beam, uint32_t n_probe, uint32_t **out, uint32_t *n_out)
{
    strata_fractal *f = s->f;
    uint32_t cap = 64, n_front = 1;
    uint32_t *front = malloc(cap * sizeof *front);
    cand *cs = NULL;
    if (!front) return STRATA_ENOMEM;
    front[0] = f->cfg.root;
    const frac_node *r = frac_node_at(f, f->cfg.root);
    if (!r || !in_window(s, r->ts_min, r->ts_max)) n_front = 0;
    for (uint32_t step = 0; n_front && step <= FRAC_DEPTH_LIMIT; step++) {
        const frac_node *first = frac_node_at(f, front[0]);
        if (!first || first->leaf) break;
        size_t n_c = 0, cap_c = 0;
        for (uint32_t i = 0; i < n_front; i++) cap_c += frac_node_at(f, front[i])->n_child;
        cand *nc = realloc(cs, (cap_c ? cap_c : 1) * sizeof *nc);
        if (!nc) { free(cs); free(front); return STRATA_ENOMEM; }
        cs = nc;
        int last = first->level == 1;
        for (uint32_t i = 0; i < n_front; i++) {
            const frac_node *n = frac_node_at(f, front[i]);
            for (uint32_t j = 0; j < n->n_child; j++) {
                const frac_node *c = frac_node_at(f, n->child[j]);
                if (!c || c->pop == 0 || !in_window(s, c->ts_min, c->ts_max)) continue;
                cs[n_c++] = (cand){ frac_route_dist(f, c, s->qw), c->id };
            }
        }
        qsort(cs, n_c, sizeof *cs, cand_cmp);
        uint32_t keep = last ? n_probe : beam;
        if (last) keep = thin_extend(f, cs, n_c, n_probe);
        n_front = (uint32_t)(n_c < keep ? n_c : keep);
        if (n_front > cap) {   /* more than 64 kept */
            uint32_t *nf = realloc(front, n_front * sizeof *nf);
            if (!nf) { free(cs); free(front); return STRATA_ENOMEM; }
            front = nf; cap = n_front;
        }
        for (uint32_t i = 0; i < n_front; i++) front[i] = cs[i].id;
    }
    free(cs);
    *out = front;
    *n_out = n_front;
    return STRATA_OK;
}

/* Stored f32 can be read where they lie: a little-endian host and a 4-byte
 * aligned address (the build has -fno-strict-aliasing; the map is untyped). */
static int raw_in_place(const uint8_t *p)
{
#if defined(__BYTE_ORDER__) && __BYTE_ORDER__ == __ORDER_LITTLE_ENDIAN__
    return ((uintptr_t)p & 3) == 0;
#else
    (void)p;
    return 0;
#endif
}

/* Exact distances of the candidates: from the raw vector the posting list
 * holds (KEEP_RAW), else (buffered members) from the raw table. */
static int rerank(strata_fractal *f, const float *q, const chit *c, size_t n_c, size_t k,
                  strata_hit *out, size_t *n_out)
{
    uint32_t dim = f->cfg.dim;
    float *x = malloc((size_t)dim * sizeof *x);
    if (!x) return STRATA_ENOMEM;
    vec_topk h;
    vec_topk_init(&h, out, k);
    int rc = STRATA_OK;
    for (size_t i = 0; i < n_c && rc == STRATA_OK; i++) {
        const float *v = x;
        if (c[i].raw && raw_in_place(c[i].raw)) v = (const float *)(const void *)c[i].raw;
        else if (c[i].raw) frac_f32_get(x, c[i].raw, dim);
        else if ((rc = frac_raw_get(f, c[i].id, x)) != STRATA_OK) break;
        float d = f->kt->dist[f->cfg.metric](q, v, dim);
        if (vec_topk_accepts(&h, d, c[i].id)) vec_topk_push(&h, c[i].id, d);
    }
    free(x);
    if (rc == STRATA_OK) *n_out = vec_topk_finish(&h);
    return rc;
}

int frac_search(strata_fractal *f, const float *q, size_t k,
                const strata_fractal_params *p, strata_hit *out, size_t *n_out)
{
    uint32_t dim = f->cfg.dim, m = f->cfg.pq_m;
    uint32_t beam = p->beam ? p->beam : 4, n_probe = p->n_probe ? p->n_probe : 8;
    size_t kk = p->rerank && p->rerank > k ? p->rerank : k;
    float *qw = malloc((size_t)2 * dim * sizeof *qw), *lut = malloc((size_t)m * FPQ_KSUB * sizeof *lut);
    chit *hits = malloc(kk * sizeof *hits);
    uint32_t *leaves = NULL, n_leaves = 0;
    int rc = STRATA_ENOMEM;
    if (!qw || !lut || !hits) goto out;
    frac_working(f, q, qw);
    rc = fpq_table(&f->pq, qw, f->cfg.metric == STRATA_METRIC_L2 ? -2.0f : -1.0f, lut);
    if (rc != STRATA_OK) goto out;
    cheap h = { hits, 0, kk };
    sctx s = { .f = f, .p = p, .qw = qw, .lut = lut, .anchor = qw + dim,
               .base = f->cfg.metric == STRATA_METRIC_COSINE ? 1.0f : 0.0f, .h = &h };
    if ((rc = pick_leaves(&s, beam, n_probe, &leaves, &n_leaves)) != STRATA_OK) goto out;
    for (uint32_t i = 0; i < n_leaves && rc == STRATA_OK; i++) {
        const frac_node *leaf = frac_node_at(f, leaves[i]);
        rc = scan_post(&s, leaf);
        if (rc == STRATA_OK && leaf->n_buf) rc = scan_buf(&s, leaf);
    }
    free(s.terms);
    if (rc != STRATA_OK) goto out;
    size_t n_c = h.n;
    if (p->rerank) {
        rc = rerank(f, q, hits, n_c, k, out, n_out);   /* needs no order */
    } else {
        qsort(hits, n_c, sizeof *hits, chit_cmp);
        *n_out = n_c < k ? n_c : k;
        for (size_t i = 0; i < *n_out; i++) out[i] = (strata_hit){ .id = hits[i].id, .dist = hits[i].d };
    }
out:
    free(qw); free(lut); free(hits); free(leaves);
    return rc;
}
