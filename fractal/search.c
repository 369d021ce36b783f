/* fractal/search.c - k-nearest-neighbour search. A beam search goes down the
 * tree level by level: the children of the nodes kept so far are ranked by
 * routing distance to their centroids, `beam` of them are kept on internal
 * levels and `n_probe` leaves on the last (more, up to 2 * n_probe, when
 * deletes thinned them: thin_extend); leaves rank by an estimate of the
 * distance to their nearest members, from centroid and spread (leaf_rank).
 * Each chosen leaf contributes ADC
 * distances over its posting list and exact distances over its buffer into
 * one candidate set that remembers where each posting member's raw vector
 * lies in its list; an optional rerank recomputes the best candidates
 * exactly from those raw vectors (buffered ones: raw rows).
 * The posting scan works a block of 64 codes at a time: with AVX-512 VBMI an
 * 8-bit table (frac_lut_quantize) gives every code a lower bound of its ADC
 * distance, and only codes whose bound can beat the current threshold get
 * their f32 ADC sum (frac_adc_lane); else the f32 sums of the whole block
 * (frac_adc_block). Either way every candidate carries the same f32 value.
 * The candidate set is a buffer of up to 4 k + 64 hits with a threshold (the
 * k-th best at the last compaction): a hit above it is dropped at once, a
 * full buffer is cut to its k best by a radix select (cset_cut).
 * A time window skips whole subtrees whose time range misses it, then single
 * vectors outside it; the metadata filter is asked only about vectors that
 * would enter the result.
 * Invariants: (1) buffer and ADC distances are on one scale: squared L2, -dot
 * (IP), or 1 - dot of unit vectors (cosine, both sides normalized), so they
 * share one candidate set; (2) the search never writes; (3) the candidates
 * kept are exactly the k best (d, id) offered, whatever the kernel level,
 * the filter and the order of offers.
 */
#include <math.h>
#include <stddef.h>
#include <stdlib.h>
#include <string.h>

#include "fractal_int.h"

/* Leaves are ranked by an estimate of the distance from q to their nearest
 * members: with D = |q - c|^2 and s the spread (the members' mean squared
 * distance to c), the mean of |q - x|^2 over the members is D + s, and the
 * nearest of them lie closer along q - c by about 2 z sqrt(D s / d) (their
 * component along it has variance s / d in d dimensions, z ~ 2 for the few
 * nearest of a leaf): D + LEAF_SPREAD_W s - LEAF_NEAR_W sqrt(D s), always > 0.
 * So a tight leaf at the same centroid distance as a wide one ranks first
 * when q is near both, the wide one when q is far. The weights are what
 * measured best on a clustered and a real set together (docs/FRACTAL.md
 * "Leaf ranking"); 0.35 is 2 z / sqrt(128). */
#define LEAF_SPREAD_W 0.75f
#define LEAF_NEAR_W   0.35f

static inline float leaf_rank(float d, float spread)
{
    /* in f64: D * s overflows f32 from about 1.8e19 each (coordinates in the
     * hundreds of millions), and an infinite product made every such leaf's
     * rank -inf or NaN, i.e. last, all alike */
    double r = d + LEAF_SPREAD_W * (double)spread - LEAF_NEAR_W * sqrt((double)d * spread);
    /* an infinite spread (a damaged sq) gives NaN: last */
    return r >= 0 ? (r < 3.0e38 ? (float)r : 3.0e38f) : 3.0e38f;
}

typedef struct cand { float d; uint32_t id; } cand;

static inline int cand_before(const cand *p, const cand *q)
{
    return p->d < q->d || (p->d == q->d && p->id < q->id);
}

/* Put the `top` nearest of cs[0..n) first, in order (Wirth's selection of
 * the top-th, then an insertion sort of the prefix: top is at most
 * 2 * n_probe or beam, n a few children per kept node). */
static void cand_top(cand *cs, size_t n, size_t top)
{
    if (top > n) top = n;
    if (top == 0) return;
    ptrdiff_t l = 0, r = (ptrdiff_t)n - 1, t = (ptrdiff_t)top - 1;
    while (l < r) {
        cand x = cs[t];
        ptrdiff_t i = l, j = r;
        do {
            while (cand_before(&cs[i], &x)) i++;
            while (cand_before(&x, &cs[j])) j--;
            if (i <= j) { cand y = cs[i]; cs[i] = cs[j]; cs[j] = y; i++; j--; }
        } while (i <= j);
        if (j < t) l = i;
        if (t < i) r = j;
    }
    for (size_t i = 1; i < top; i++) {
        cand x = cs[i];
        size_t j = i;
        for (; j > 0 && cand_before(&x, &cs[j - 1]); j--) cs[j] = cs[j - 1];
        cs[j] = x;
    }
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

/* The candidate set: a[0..n) unordered, n < cap = 4 k + 64. Once cut, every
 * hit kept is at least as good as (thr, thr_id), the k-th best offered so
 * far, so anything worse can never be among the k best. */
typedef struct cset {
    chit *a; uint32_t *keys; size_t n, k, cap; int cut; float thr; uint64_t thr_id;
} cset;   /* keys: 2 * cap scratch */

static inline int cset_accepts(const cset *h, float d, uint64_t id)
{
    return !h->cut || d < h->thr || (d == h->thr && id < h->thr_id);
}

/* An unsigned key in the order of the float (-0 taken as +0 first, as <
 * does; distances are never NaN). */
static inline uint32_t fkey(float d)
{
    uint32_t u;
    d += 0.0f;
    memcpy(&u, &d, sizeof u);
    return u ^ ((uint32_t)((int32_t)u >> 31) | 0x80000000u);
}

/* Keep the k best (d, id) of a[0..n), n > k: a radix select of the k-th
 * distance (a byte at a time, each pass over the keys of the bucket chosen
 * so far, no data-dependent branches but the bucket walk; once 16 or fewer
 * are left, an insertion sort of them), a branch-free compaction of
 * everything at or below it, and, when several hits share that distance,
 * the smallest ids among them. */
static void cset_cut(cset *h)
{
    chit *a = h->a;
    uint32_t *keys = h->keys, *bucket = h->keys + h->cap, prefix = 0, mask = 0;
    size_t n = h->n, rank = h->k;   /* the rank-th smallest among keys matching prefix */
    for (size_t i = 0; i < n; i++) keys[i] = fkey(a[i].d);
    const uint32_t *from = keys;    /* the keys still matching prefix: n_from of them */
    size_t n_from = n;
    for (int shift = 24; shift >= 0; shift -= 8) {
        uint32_t cnt[256] = {0};
        for (size_t i = 0; i < n_from; i++) cnt[(from[i] >> shift) & 255]++;
        uint32_t b = 0;
        while (cnt[b] < rank) rank -= cnt[b++];
        prefix |= b << shift;
        mask |= 255u << shift;
        size_t w = 0;   /* the bucket's keys, for the next byte */
        for (size_t i = 0; i < n_from; i++) {
            bucket[w] = from[i];
            w += (from[i] & mask) == prefix;
        }
        from = bucket;
        n_from = w;
        if (n_from <= 16) {   /* few left: sort them, read the rank-th */
            for (size_t i = 1; i < n_from; i++) {
                uint32_t x = bucket[i];
                size_t j = i;
                for (; j > 0 && bucket[j - 1] > x; j--) bucket[j] = bucket[j - 1];
                bucket[j] = x;
            }
            prefix = bucket[rank - 1];
            size_t below = 0;
            while (bucket[below] < prefix) below++;
            rank -= below;   /* now the rank among keys equal to prefix */
            break;
        }
    }
    size_t w = 0, n_eq = 0;
    for (size_t i = 0; i < n; i++) {   /* keys[w] = keys[i] keeps keys aligned with a */
        chit c = a[i];
        uint32_t key = keys[i];
        a[w] = c;
        keys[w] = key;
        w += key <= prefix;
        n_eq += key == prefix;
    }
    if (n_eq > rank) {   /* ties at the k-th distance: keep the rank smallest ids */
        for (size_t drop = n_eq - rank; drop; drop--) {
            size_t worst = SIZE_MAX;
            for (size_t i = 0; i < w; i++)
                if (keys[i] == prefix && (worst == SIZE_MAX || a[i].id > a[worst].id)) worst = i;
            a[worst] = a[w - 1];
            keys[worst] = keys[w - 1];
            w--;
        }
    }
    h->n = w;   /* == k */
    h->cut = 1;
    h->thr_id = 0;
    for (size_t i = 0; i < w; i++)
        if (keys[i] == prefix && a[i].id >= h->thr_id) { h->thr = a[i].d; h->thr_id = a[i].id; }
}

static void cset_push(cset *h, chit c)
{
    h->a[h->n++] = c;
    if (h->n == h->cap) cset_cut(h);
}

typedef struct sctx {
    strata_fractal *f;
    const strata_fractal_params *p;
    const float *qw;       /* working query                        */
    float  *lut;           /* m * 256: -<q_j, c> (x2 for L2)       */
    float  *anchor;        /* dim: the scanned leaf's anchor       */
    float  *terms;         /* cap_terms: the L2 terms of a list    */
    size_t  cap_terms;
    float   base;          /* 1 for cosine, else 0                 */
    cset   *h;
    uint8_t *lutq;         /* m * 256 quantized table, or NULL: no filter */
    strata_cursor *bufc;   /* on the buffer table, opened by the first scan_buf */
    float  *bufw;          /* dim: a buffered vector not 4-byte aligned   */
    float   qlo, qdelta, qabs; /* frac_lut_quantize's lo_sum, delta, abs_sum */
} sctx;

static int in_window(const sctx *s, uint64_t lo, uint64_t hi)
{
    if (!(s->p->flags & STRATA_FRACTAL_WINDOW)) return 1;
    return lo <= s->p->ts_max && hi >= s->p->ts_min;
}

static void admit(sctx *s, uint64_t id, float d, const uint8_t *raw)
{
    if (s->p->filter && !s->p->filter(s->p->filter_ctx, id)) return;
    cset_push(s->h, (chit){ d, id, raw });
}

/* The common case (the candidate does not enter the set) stays inline. */
static inline void offer(sctx *s, uint64_t id, float d, const uint8_t *raw)
{
    if (cset_accepts(s->h, d, id)) admit(s, id, d, raw);
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

/* ADC over a leaf's residual codes r against its anchor a:
 * L2: |q - a - r|^2 = |q - a|^2 - 2<q, r> + term  (lut = -2<q_j, c>);
 * IP and cosine: -<q, a + r> = -<q, a> - <q, r>   (lut = -<q_j, c>).
 * One expression for every path, so a code's distance is the same float
 * whether the filter ran or not. */
static inline float post_dist(float base, float adc, const float *terms, uint32_t i)
{
    float d = base + adc;
    if (terms) d += terms[i];
    return d;
}

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
    if (post.n > s->cap_terms) {
        float *t = realloc(s->terms, (size_t)post.n * sizeof *t);
        if (!t) return STRATA_ENOMEM;
        s->terms = t;
        s->cap_terms = post.n;
    }
    const float *terms = NULL, *anchor = s->anchor;
    if (l2 && raw_in_place(post.terms)) terms = (const float *)(const void *)post.terms;
    else if (l2) { frac_f32_get(s->terms, post.terms, post.n); terms = s->terms; }  /* one decode per list */
    if (raw_in_place(post.anchor)) anchor = (const float *)(const void *)post.anchor;
    else frac_f32_get(s->anchor, post.anchor, dim);
    float base = s->base + (l2 ? f->kt->dist[STRATA_METRIC_L2](s->qw, anchor, dim)
                               : f->kt->dist[STRATA_METRIC_IP](s->qw, anchor, dim));
    float adc[FRAC_BLK];
    uint16_t qs[FRAC_BLK];
    for (uint32_t b = 0, nb = frac_post_blocks(post.n); b < nb; b++) {
        const uint8_t *blk = post.codes + (size_t)b * m * FRAC_BLK;
        uint32_t i0 = b * FRAC_BLK, lanes = post.n - i0 < FRAC_BLK ? post.n - i0 : FRAC_BLK;
        int filt = s->lutq && s->h->cut;
        uint64_t live = lanes == FRAC_BLK ? ~0ull : (1ull << lanes) - 1;
        if (filt) {
            frac_adc_u8_block(f->kt, s->lutq, blk, m, qs);
            live = frac_filter_block(f->kt, qs, terms ? terms + i0 : NULL, lanes, base, s->qlo,
                                     s->qdelta, s->qabs, s->h->thr);
        } else {
            frac_adc_block(f->kt, s->lut, blk, m, adc);
        }
        for (; live; live &= live - 1) {
            uint32_t l = (uint32_t)__builtin_ctzll(live), i = i0 + l;
            if (win) {
                uint64_t ts = frac_le64_get(post.ts + 8 * (size_t)i);
                if (ts < s->p->ts_min || ts > s->p->ts_max) continue;
            }
            float d = post_dist(base, filt ? frac_adc_lane(s->lut, blk, m, l) : adc[l], terms, i);
            if (s->h->cut && d > s->h->thr) continue;   /* before decoding the id */
            offer(s, frac_le64_get(post.ids + 8 * (size_t)i), d,
                  post.raw ? post.raw + (size_t)4 * dim * i : NULL);
        }
    }
    return STRATA_OK;
}

/* Exact distances over a leaf's buffer rows; one cursor serves every leaf
 * of the search (a range per leaf). */
static int scan_buf(sctx *s, const frac_node *leaf)
{
    strata_fractal *f = s->f;
    uint32_t dim = f->cfg.dim;
    uint8_t lo[BUF_KEY_LEN], hi[BUF_KEY_LEN];
    frac_buf_key(lo, leaf->id, 0);
    frac_buf_key(hi, leaf->id + 1, 0);
    strata_slice slo = {lo, BUF_KEY_LEN}, shi = {hi, BUF_KEY_LEN}, k, v;
    strata_metric mt = f->cfg.metric == STRATA_METRIC_L2 ? STRATA_METRIC_L2 : STRATA_METRIC_IP;
    int rc = STRATA_OK;
    if (!s->bufw && !(s->bufw = malloc((size_t)dim * sizeof *s->bufw))) return STRATA_ENOMEM;
    if (!s->bufc) rc = strata_cursor_open(f->t[FT_BUF], &s->bufc);
    if (rc == STRATA_OK) rc = strata_cursor_set_range(s->bufc, &slo, &shi, 0);
    for (rc = rc ? rc : strata_cursor_first(s->bufc); rc == STRATA_OK; rc = strata_cursor_next(s->bufc)) {
        if ((rc = strata_cursor_get(s->bufc, &k, &v)) != STRATA_OK) break;
        if (k.len != BUF_KEY_LEN || v.len != 8 + (size_t)4 * dim) { rc = FRAC_CORRUPT(); break; }
        uint64_t ts = frac_le64_get(v.data);
        if ((s->p->flags & STRATA_FRACTAL_WINDOW) && (ts < s->p->ts_min || ts > s->p->ts_max))
            continue;
        const uint8_t *x = (const uint8_t *)v.data + 8;
        const float *wv = s->bufw;
        if (raw_in_place(x)) wv = (const float *)(const void *)x;
        else frac_f32_get(s->bufw, x, dim);
        offer(s, frac_be64_get((const uint8_t *)k.data + 4), s->base + f->kt->dist[mt](s->qw, wv, dim),
              NULL);
    }
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
        /* a pass of its own: the square roots overlap instead of each
         * waiting for its distance */
        for (size_t i = 0; last && i < n_c; i++) cs[i].d = leaf_rank(cs[i].d, frac_node_at(f, cs[i].id)->spread);
        uint32_t keep = last ? n_probe : beam;
        /* thin_extend looks at up to 2 * n_probe leaves in rank order */
        cand_top(cs, n_c, last ? (size_t)2 * n_probe : beam);
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
    size_t vlen = (size_t)4 * dim;
    for (size_t i = 0; i < n_c && i < 4; i++)   /* the raw vectors lie all over the map */
        for (size_t o = 0; c[i].raw && o < vlen; o += 64) __builtin_prefetch(c[i].raw + o);
    for (size_t i = 0; i < n_c && rc == STRATA_OK; i++) {
        if (i + 4 < n_c && c[i + 4].raw)
            for (size_t o = 0; o < vlen; o += 64) __builtin_prefetch(c[i + 4].raw + o);
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
    uint32_t beam = p->beam ? p->beam : 16, n_probe = p->n_probe ? p->n_probe : 8;
    size_t kk = p->rerank && p->rerank > k ? p->rerank : k;
    /* never more candidates than vectors: "rerank all" (UINT32_MAX) or a k
     * above the index's size must not size the buffers (4 kk + 64 hits) */
    if (kk > f->cfg.n_vectors) kk = f->cfg.n_vectors ? (size_t)f->cfg.n_vectors : 1;
    float *qw = malloc((size_t)2 * dim * sizeof *qw), *lut = malloc((size_t)m * FPQ_KSUB * sizeof *lut);
    size_t cap = 4 * kk + 64;
    chit *hits = malloc(cap * sizeof *hits);
    uint32_t *keys = malloc(2 * cap * sizeof *keys);
    uint32_t *leaves = NULL, n_leaves = 0;
    uint8_t *lutq = NULL;
    int rc = STRATA_ENOMEM;
    if (!qw || !lut || !hits || !keys) goto out;
    frac_working(f, q, qw);
    rc = fpq_table(&f->pq, qw, f->cfg.metric == STRATA_METRIC_L2 ? -2.0f : -1.0f, lut);
    if (rc != STRATA_OK) goto out;
    cset h = { .a = hits, .keys = keys, .k = kk, .cap = cap };
    sctx s = { .f = f, .p = p, .qw = qw, .lut = lut, .anchor = qw + dim,
               .base = f->cfg.metric == STRATA_METRIC_COSINE ? 1.0f : 0.0f, .h = &h };
    if (frac_adc_u8_fast(f->kt)) {   /* the 8-bit filter pays only where it is fast */
        if (!(lutq = malloc((size_t)m * FPQ_KSUB))) { rc = STRATA_ENOMEM; goto out; }
        if (frac_lut_quantize(f->kt, lut, m, lutq, &s.qlo, &s.qdelta, &s.qabs)) s.lutq = lutq;
    }
    if ((rc = pick_leaves(&s, beam, n_probe, &leaves, &n_leaves)) != STRATA_OK) goto out;
    for (uint32_t i = 0; i < n_leaves && rc == STRATA_OK; i++) {
        const frac_node *leaf = frac_node_at(f, leaves[i]);
        rc = scan_post(&s, leaf);
        if (rc == STRATA_OK && leaf->n_buf) rc = scan_buf(&s, leaf);
        if (!h.cut && h.n > kk) cset_cut(&h);   /* a threshold for the next leaves' filter */
    }
    free(s.terms);
    free(s.bufw);
    strata_cursor_close(s.bufc);
    if (rc != STRATA_OK) goto out;
    if (h.n > kk) cset_cut(&h);
    size_t n_c = h.n;
    if (p->rerank) {
        rc = rerank(f, q, hits, n_c, k, out, n_out);   /* needs no order */
    } else {
        qsort(hits, n_c, sizeof *hits, chit_cmp);
        *n_out = n_c < k ? n_c : k;
        for (size_t i = 0; i < *n_out; i++) out[i] = (strata_hit){ .id = hits[i].id, .dist = hits[i].d };
    }
out:
    free(qw); free(lut); free(hits); free(keys); free(leaves); free(lutq);
    return rc;
}
