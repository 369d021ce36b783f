/* query/similarity.c - the similarity signal's k nearest candidates, by one
 * of two sources (docs/QUERY.md "Similarity"):
 *   exact  the candidates' embeddings (blob:embed, value: dim u32 LE,
 *          reserved u32 = 0, dim f32 LE; docs/BLOBS.md) are gathered in
 *          batches of BATCH and ranked with strata_vec_topk; each batch's top
 *          k is merged into the running top k, so memory is O(BATCH*dim + k).
 *          Few candidates: one lookup each; many (>= 1/8 of the table): one
 *          pass over the table in id order, merged with the candidates.
 *   index  an IVF-PQ index (strata_query_set_ivf, searched with a filter
 *          that keeps candidates only) or a caller's function
 *          (strata_query_set_ann) proposes up to k candidate ids; their
 *          stored embeddings are re-ranked exactly. A missing IVF index falls
 *          back to the exact scan unless STRATA_QUERY_IVF_REQUIRED.
 * Both order hits by (distance, id), as strata_vec_topk does.
 * Invariants: (1) an embedding of another dimension than the query is
 * STRATA_EINVAL unless STRATA_QUERY_VEC_SKIP_DIM; (2) only candidates of the
 * run get a distance (QC_DIST), at most k of them. */
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "query_int.h"

enum { BATCH = 1024, EMBED_HDR = 8 };

typedef struct topk {
    const strata_query *q;
    float      *base;    /* BATCH * dim              */
    uint64_t   *ids;     /* BATCH                    */
    size_t      k;       /* min(q->k, rows possible) */
    size_t      n;       /* rows buffered            */
    strata_hit *best;    /* k, sorted                */
    strata_hit *tmp;     /* 2k: batch top k + merge  */
    size_t      n_best;
    uint64_t    n_seen;  /* embeddings compared      */
} topk;

static int hit_less(const strata_hit *a, const strata_hit *b) {
    return a->dist < b->dist || (a->dist == b->dist && a->id < b->id);
}

/* limit: the most rows that can be compared, so a huge k costs nothing. */
static int topk_init(topk *t, const strata_query *q, uint64_t limit) {
    memset(t, 0, sizeof *t);
    t->q = q;
    t->k = (uint64_t)q->k < limit ? q->k : (size_t)limit;
    if (t->k == 0) t->k = 1;
    if (t->k > SIZE_MAX / (2 * sizeof(strata_hit)) || q->dim > SIZE_MAX / (BATCH * sizeof(float)))
        return STRATA_ENOMEM;
    t->base = malloc(BATCH * q->dim * sizeof(float));
    t->ids = malloc(BATCH * sizeof(uint64_t));
    t->best = malloc(t->k * sizeof(strata_hit));
    t->tmp = malloc(2 * t->k * sizeof(strata_hit));
    return t->base && t->ids && t->best && t->tmp ? STRATA_OK : STRATA_ENOMEM;
}

static void topk_free(topk *t) {
    free(t->base);
    free(t->ids);
    free(t->best);
    free(t->tmp);
}

/* Top k of the buffered batch, merged into best. */
static int flush(topk *t) {
    const strata_query *q = t->q;
    size_t got = 0, kk = t->k < t->n ? t->k : t->n;
    if (t->n == 0) return STRATA_OK;
    int rc = strata_vec_topk(q->metric, q->vec, t->base, t->n, q->dim, t->ids, kk, NULL, NULL,
                             t->tmp, &got);
    if (rc) return rc;
    strata_hit *merged = t->tmp + t->k;
    size_t i = 0, j = 0, o = 0;
    while (o < t->k && (i < t->n_best || j < got)) {
        if (j >= got || (i < t->n_best && hit_less(&t->best[i], &t->tmp[j]))) merged[o++] = t->best[i++];
        else merged[o++] = t->tmp[j++];
    }
    memcpy(t->best, merged, o * sizeof *merged);
    t->n_best = o;
    t->n = 0;
    return STRATA_OK;
}

/* Decode embedding value v of blob id into dst (q->dim floats). Returns
 * STRATA_OK, 1 (another dimension, skipped), STRATA_EINVAL (another
 * dimension, not allowed), STRATA_ECORRUPT. */
static int decode(const strata_query *q, strata_slice v, float *dst) {
    const uint8_t *p = v.data;
    if (v.len < EMBED_HDR || q_le32_get(p + 4) != 0) return STRATA_ECORRUPT;
    size_t d = q_le32_get(p);
    if (d == 0 || d > STRATA_VEC_MAX_DIM || v.len != EMBED_HDR + 4 * d) return STRATA_ECORRUPT;
    if (d != q->dim) return (q->vec_flags & STRATA_QUERY_VEC_SKIP_DIM) ? 1 : STRATA_EINVAL;
#if defined(__BYTE_ORDER__) && __BYTE_ORDER__ == __ORDER_LITTLE_ENDIAN__
    memcpy(dst, p + EMBED_HDR, 4 * d);
#else
    for (size_t i = 0; i < d; i++) {
        uint32_t bits = q_le32_get(p + EMBED_HDR + 4 * i);
        memcpy(&dst[i], &bits, 4);
    }
#endif
    return STRATA_OK;
}

/* Add blob id's embedding value to the batch. */
static int add_row(topk *t, uint64_t id, strata_slice v) {
    int rc = decode(t->q, v, t->base + t->n * t->q->dim);
    if (rc == 1) return STRATA_OK;
    if (rc) return rc;
    t->ids[t->n++] = id;
    t->n_seen++;
    return t->n == BATCH ? flush(t) : STRATA_OK;
}

/* One pass over blob:embed; with r->c (all = 0) only candidate ids count. */
static int scan_table(qrun *r, strata_table *tab, topk *t, int all) {
    strata_cursor *c;
    strata_slice k, v;
    size_t i = 0;
    int rc = strata_cursor_open(tab, &c);
    if (rc) return rc;
    rc = strata_cursor_first(c);
    while (rc == STRATA_OK && (all || i < r->n)) {
        if ((rc = strata_cursor_get(c, &k, &v))) break;
        if (k.len != 8) { rc = STRATA_ECORRUPT; break; }
        uint64_t id = q_le64_get(k.data);
        if (!all) {
            while (i < r->n && r->c[i].id < id) i++;
            if (i == r->n) break;
        }
        if ((all || r->c[i].id == id) && (rc = add_row(t, id, v))) break;
        rc = strata_cursor_next(c);
    }
    strata_cursor_close(c);
    return rc == STRATA_NOTFOUND ? STRATA_OK : rc;
}

/* One lookup per candidate. */
static int lookup_each(qrun *r, strata_table *tab, topk *t) {
    int rc = STRATA_OK;
    for (size_t i = 0; !rc && i < r->n; i++) {
        uint8_t k[8];
        strata_slice v;
        uint64_t id = r->c[i].id;
        for (int b = 0; b < 8; b++) k[b] = (uint8_t)(id >> (8 * b));
        rc = strata_get(tab, q_sl(k, 8), &v);
        if (rc == STRATA_NOTFOUND) { rc = STRATA_OK; continue; }
        if (!rc) rc = add_row(t, id, v);
    }
    return rc;
}

/* Mark the hits in t->best on the candidates. */
static void mark_hits(qrun *r, const topk *t) {
    for (size_t h = 0; h < t->n_best; h++) {
        long i = qrun_find(r, t->best[h].id);
        if (i < 0) continue;
        r->c[i].dist = t->best[h].dist;
        r->c[i].flags |= QC_DIST;
    }
    r->ex.n_sim_ranked = t->n_best;
    if (r->ex.sim_source == 1) r->ex.n_sim_considered = t->n_seen;
}

static int is_candidate(const qrun *r, uint64_t id) { return r->sim_all || qrun_find(r, id) >= 0; }

static int keep_candidate(void *ctx, uint64_t id) { return is_candidate(ctx, id); }

static int ivf_keep(void *ctx, uint64_t id, uint64_t attr) {
    (void)attr;
    return is_candidate(ctx, id);
}

/* Search the IVF index named by the query, filtered to the candidates.
 * STRATA_NOTFOUND: no such index (the caller may fall back). */
static int ivf_search(qrun *r, const topk *t, strata_hit *hits, size_t *n_hits) {
    const strata_query *q = r->q;
    strata_ivf *ix = q->ivf_h;
    strata_ivf_params p;
    int rc = ix ? STRATA_OK : strata_ivf_open(r->txn, q->ivf, &ix);
    if (rc) return rc;
    strata_ivf_params_default(&p);
    if (q->ivf_nprobe) p.nprobe = q->ivf_nprobe;
    p.rerank = q->ivf_rerank;
    p.filter = ivf_keep;
    p.filter_ctx = r;
    rc = strata_ivf_search(ix, q->vec, q->dim, t->k, &p, hits, n_hits);
    if (ix != q->ivf_h) strata_ivf_close(ix);
    return rc;
}

/* Ask the index (function or IVF), then re-rank its candidate hits exactly. */
static int ann_run(qrun *r, strata_table *tab, topk *t) {
    const strata_query *q = r->q;
    strata_hit *hits = malloc(t->k * sizeof *hits);
    size_t n_hits = 0;
    int rc;
    if (!hits) return STRATA_ENOMEM;
    if (q->ivf || q->ivf_h) rc = ivf_search(r, t, hits, &n_hits);
    else rc = q->ann(q->ann_ctx, r->txn, q->metric, q->vec, q->dim, t->k, keep_candidate, r, hits, &n_hits);
    if (!rc && n_hits > t->k) rc = STRATA_EINVAL;   /* the index claims more than out[k) */
    if (rc) { free(hits); return rc; }
    r->ex.n_sim_considered = n_hits;
    for (size_t h = 0; !rc && h < n_hits; h++) {
        uint8_t k[8];
        strata_slice v;
        uint64_t id = hits[h].id;
        int dup = 0;
        for (size_t g = 0; g < h; g++) dup |= hits[g].id == id;
        if (dup || !is_candidate(r, id) || !tab) continue;   /* not a candidate: ignored */
        for (int b = 0; b < 8; b++) k[b] = (uint8_t)(id >> (8 * b));
        rc = strata_get(tab, q_sl(k, 8), &v);
        if (rc == STRATA_NOTFOUND) { rc = STRATA_OK; continue; }   /* no embedding */
        if (!rc) rc = add_row(t, id, v);
    }
    free(hits);
    return rc ? rc : flush(t);
}

/* The exact k nearest candidates. */
static int exact_run(qrun *r, strata_table *tab, topk *t) {
    uint64_t n_tab = 0;
    int rc = strata_len(tab, &n_tab);
    if (!rc) rc = (uint64_t)r->n * 8 >= n_tab ? scan_table(r, tab, t, 0) : lookup_each(r, tab, t);
    return rc ? rc : flush(t);
}

int qsim_run(qrun *r) {
    const strata_query *q = r->q;
    topk t;
    strata_table *tab = NULL;
    int indexed = q->ann || q->ivf || q->ivf_h;
    r->ex.sim_source = (q->ivf || q->ivf_h) ? 3 : q->ann ? 2 : 1;
    int rc = qrun_tab(r, QT_EMBED, &tab);
    if (rc == STRATA_NOTFOUND) { rc = STRATA_OK; tab = NULL; }
    if (rc) return rc;
    if ((!tab && !indexed) || r->n == 0) return STRATA_OK;
    if ((rc = topk_init(&t, q, r->n)) == STRATA_OK) {
        if (indexed) rc = ann_run(r, tab, &t);
        if (rc == STRATA_NOTFOUND && q->ivf && !(q->ivf_flags & STRATA_QUERY_IVF_REQUIRED)) {
            r->ex.sim_source = 1;          /* no such index: the exact scan */
            r->ex.sim_fallback = 1;
            rc = tab ? exact_run(r, tab, &t) : STRATA_OK;
        } else if (!indexed) rc = exact_run(r, tab, &t);
        if (!rc) mark_hits(r, &t);
    }
    topk_free(&t);
    return rc;
}

static int hit_id_cmp(const void *a, const void *b) {
    const strata_hit *x = a, *y = b;
    return (x->id > y->id) - (x->id < y->id);
}

int qsim_drive(qrun *r) {
    const strata_query *q = r->q;
    topk t;
    strata_table *tab = NULL;
    uint64_t n_tab = 0;
    int indexed = q->ann || q->ivf || q->ivf_h;
    memset(&t, 0, sizeof t);
    r->ex.sim_source = (q->ivf || q->ivf_h) ? 3 : q->ann ? 2 : 1;
    int rc = qrun_tab(r, QT_EMBED, &tab);
    if (rc == STRATA_NOTFOUND) return STRATA_OK;   /* no embedding: nothing scores */
    if (rc || (rc = strata_len(tab, &n_tab)) || n_tab == 0 || (rc = topk_init(&t, q, n_tab))) goto out;
    r->sim_all = 1;
    if (indexed) rc = ann_run(r, tab, &t);
    if (indexed && rc == STRATA_NOTFOUND && q->ivf && !(q->ivf_flags & STRATA_QUERY_IVF_REQUIRED)) {
        r->ex.sim_source = 1;                       /* no such index: the exact scan */
        r->ex.sim_fallback = 1;
        indexed = 0;
        rc = STRATA_OK;
    }
    if (!rc && !indexed && (rc = scan_table(r, tab, &t, 1)) == STRATA_OK) rc = flush(&t);
    r->sim_all = 0;
    if (rc) goto out;
    qsort(t.best, t.n_best, sizeof *t.best, hit_id_cmp);
    for (size_t h = 0; !rc && h < t.n_best; h++) rc = qrun_add(r, t.best[h].id, 0, 0);
    if (!rc) mark_hits(r, &t);
    r->ex.n_generated = r->n;
out:
    topk_free(&t);
    return rc;
}
