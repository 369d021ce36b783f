/* query/similarity.c - the similarity signal's k nearest candidates, by one
 * of two sources (docs/QUERY.md "Similarity"):
 *   exact  embeddings live in the blob layer's vector tables (docs/BLOBS.md
 *          "Embeddings"): the index blob:embed maps id -> dim (u32 LE), the
 *          STRATA_VECTOR table blob:vec:<dim> holds id -> dim f32 LE.
 *          Every embedding (the knn plan, qsim_drive): strata_vec_table_topk
 *          over the query dimension's table. The candidates' embeddings
 *          (qsim_run) are gathered in batches of BATCH and ranked with
 *          strata_vec_topk; each batch's top k is merged into the running
 *          top k, so memory is O(BATCH*dim + k). Few candidates: one index
 *          lookup each, then the vector; many (>= 1/8 of the index): one pass
 *          over the vector table in id order, merged with the candidates
 *          (and, when the index holds other dimensions and they are not to
 *          be skipped, one pass over the index to find them).
 *   index  an IVF-PQ index (strata_query_set_ivf, searched with a filter
 *          that keeps candidates only) or a caller's function
 *          (strata_query_set_ann) proposes up to k candidate ids; their
 *          stored embeddings are re-ranked exactly. A missing IVF index falls
 *          back to the exact scan unless STRATA_QUERY_IVF_REQUIRED.
 * Both order hits by (distance, id), as strata_vec_topk and
 * strata_vec_table_topk do (same kernels: a distance is the same bits either
 * way).
 * Invariants: (1) an embedding of another dimension than the query is
 * STRATA_EINVAL unless STRATA_QUERY_VEC_SKIP_DIM; (2) only candidates of the
 * run get a distance (QC_DIST), at most k of them; (3) an index row naming
 * the query's dimension whose vector row is missing, a malformed index row
 * met, or a table under the name blob:vec:<dim> that is not a vector table
 * of that dimension is STRATA_ECORRUPT. */
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "blob.h"
#include "query_int.h"

enum { BATCH = 1024 };

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

/* Add blob id's vector (a row of the query dimension's vector table) to the
 * batch. */
static int add_vec(topk *t, uint64_t id, strata_slice v) {
    size_t dim = t->q->dim;
    float *dst = t->base + t->n * dim;
    if (v.len != 4 * dim) return STRATA_ECORRUPT;
#if defined(__BYTE_ORDER__) && __BYTE_ORDER__ == __ORDER_LITTLE_ENDIAN__
    memcpy(dst, v.data, 4 * dim);
#else
    for (size_t i = 0; i < dim; i++) {
        uint32_t bits = q_le32_get((const uint8_t *)v.data + 4 * i);
        memcpy(&dst[i], &bits, 4);
    }
#endif
    t->ids[t->n++] = id;
    t->n_seen++;
    return t->n == BATCH ? flush(t) : STRATA_OK;
}

/* Dimension in an index value (blob:embed), or 0 when malformed. */
static uint32_t index_dim(strata_slice v) {
    uint32_t d;
    return blob_embed_decode(v, &d) == STRATA_OK ? d : 0;
}

/* What an embedding of dimension d means for this query: STRATA_OK (the
 * query's), 1 (another, skipped), STRATA_EINVAL (another, not allowed),
 * STRATA_ECORRUPT (d = 0: a malformed index row). */
static int dim_verdict(const strata_query *q, uint32_t d) {
    if (d == 0) return STRATA_ECORRUPT;
    if (d != q->dim) return (q->vec_flags & STRATA_QUERY_VEC_SKIP_DIM) ? 1 : STRATA_EINVAL;
    return STRATA_OK;
}

/* Blob id's embedding into the batch, through the index (idx) and the
 * vector table. Returns STRATA_OK (added, or none / skipped) or an error. */
static int add_one(qrun *r, strata_table *idx, topk *t, uint64_t id) {
    uint8_t k[8];
    strata_slice v;
    strata_table *vt;
    for (int b = 0; b < 8; b++) k[b] = (uint8_t)(id >> (8 * b));
    int rc = strata_get(idx, q_sl(k, 8), &v);
    if (rc) return rc == STRATA_NOTFOUND ? STRATA_OK : rc;         /* no embedding */
    if ((rc = dim_verdict(r->q, index_dim(v)))) return rc == 1 ? STRATA_OK : rc;
    /* the index names the query's dimension: the vector must be there */
    rc = qrun_tab(r, QT_VEC, &vt);
    if (rc == STRATA_OK) rc = strata_get(vt, q_sl(k, 8), &v);
    if (rc) return rc == STRATA_NOTFOUND ? STRATA_ECORRUPT : rc;
    return add_vec(t, id, v);
}

/* Without STRATA_QUERY_VEC_SKIP_DIM, an embedding of another dimension among
 * the candidates (every blob with all) is STRATA_EINVAL. There is none when
 * the vector table holds as many rows as the index; otherwise one pass over
 * the index (merged with the candidates) finds it. */
static int other_dims(qrun *r, strata_table *idx, uint64_t n_idx, uint64_t n_vec, int all) {
    strata_cursor *c;
    strata_slice k, v;
    size_t i = 0;
    if ((r->q->vec_flags & STRATA_QUERY_VEC_SKIP_DIM) || n_idx == n_vec) return STRATA_OK;
    int rc = strata_cursor_open(idx, &c);
    if (rc) return rc;
    for (rc = strata_cursor_first(c); rc == STRATA_OK && (all || i < r->n); rc = strata_cursor_next(c)) {
        if ((rc = strata_cursor_get(c, &k, &v))) break;
        if (k.len != 8) { rc = STRATA_ECORRUPT; break; }
        uint64_t id = q_le64_get(k.data);
        while (!all && i < r->n && r->c[i].id < id) i++;
        if (!all && (i == r->n || r->c[i].id != id)) continue;
        if ((rc = dim_verdict(r->q, index_dim(v)))) break;
    }
    strata_cursor_close(c);
    /* counts that differ with every row of the query's dimension: damage */
    return rc == STRATA_NOTFOUND ? (all ? STRATA_ECORRUPT : STRATA_OK) : rc;
}

/* One pass over the vector table, merged with the candidates. */
static int scan_table(qrun *r, strata_table *vt, topk *t) {
    strata_cursor *c;
    strata_slice k, v;
    size_t i = 0;
    int rc = strata_cursor_open(vt, &c);
    if (rc) return rc;
    rc = strata_cursor_first(c);
    while (rc == STRATA_OK && i < r->n) {
        if ((rc = strata_cursor_get(c, &k, &v))) break;
        if (k.len != 8) { rc = STRATA_ECORRUPT; break; }
        uint64_t id = q_le64_get(k.data);
        while (i < r->n && r->c[i].id < id) i++;
        if (i == r->n) break;
        if (r->c[i].id == id && (rc = add_vec(t, id, v))) break;
        rc = strata_cursor_next(c);
    }
    strata_cursor_close(c);
    return rc == STRATA_NOTFOUND ? STRATA_OK : rc;
}

/* One lookup per candidate. */
static int lookup_each(qrun *r, strata_table *idx, topk *t) {
    int rc = STRATA_OK;
    for (size_t i = 0; !rc && i < r->n; i++) rc = add_one(r, idx, t, r->c[i].id);
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

/* The index's keep test: a candidate of the run that has an embedding. An
 * index may hold ids whose blob (and so embedding) is gone; offering them
 * would take slots of its k from live blobs (the knn plan, where every id
 * would be a candidate, most of all). A lookup error is kept in r and
 * returned after the search. */
static int keep_candidate(void *ctx, uint64_t id) {
    qrun *r = ctx;
    strata_table *idx;
    strata_slice v;
    uint8_t k[8];
    if (r->keep_rc || !is_candidate(r, id)) return 0;
    int rc = qrun_tab(r, QT_EMBED, &idx);
    for (int b = 0; b < 8; b++) k[b] = (uint8_t)(id >> (8 * b));
    if (rc == STRATA_OK) rc = strata_get(idx, q_sl(k, 8), &v);
    if (rc == STRATA_OK) return 1;
    if (rc != STRATA_NOTFOUND) r->keep_rc = rc;
    return 0;
}

static int ivf_keep(void *ctx, uint64_t id, uint64_t attr) {
    (void)attr;
    return keep_candidate(ctx, id);
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

static int hit_id_cmp(const void *a, const void *b) {
    const strata_hit *x = a, *y = b;
    return (x->id > y->id) - (x->id < y->id);
}

/* Ask the index (function or IVF), then re-rank its candidate hits exactly. */
static int ann_run(qrun *r, strata_table *idx, topk *t) {
    const strata_query *q = r->q;
    strata_hit *hits = malloc(t->k * sizeof *hits);
    size_t n_hits = 0;
    int rc;
    if (!hits) return STRATA_ENOMEM;
    if (q->ivf || q->ivf_h) rc = ivf_search(r, t, hits, &n_hits);
    else rc = q->ann(q->ann_ctx, r->txn, q->metric, q->vec, q->dim, t->k, keep_candidate, r, hits, &n_hits);
    if (!rc && r->keep_rc) rc = r->keep_rc;
    if (!rc && n_hits > t->k) rc = STRATA_EINVAL;   /* the index claims more than out[k) */
    if (rc) { free(hits); return rc; }
    r->ex.n_sim_considered = n_hits;
    /* by id, so a duplicate is the previous hit (the order does not matter:
     * the batch is ranked by (distance, id) from the stored embeddings) */
    qsort(hits, n_hits, sizeof *hits, hit_id_cmp);
    for (size_t h = 0; !rc && h < n_hits; h++) {
        uint64_t id = hits[h].id;
        if ((h && hits[h - 1].id == id) || !is_candidate(r, id) || !idx) continue;   /* ignored */
        rc = add_one(r, idx, t, id);                          /* no embedding: ignored */
    }
    free(hits);
    return rc ? rc : flush(t);
}

/* The vector table of the query's dimension and its rows (0 and NULL when
 * there is none). */
static int vec_table(qrun *r, strata_table **vt, uint64_t *n_vec) {
    *vt = NULL;
    *n_vec = 0;
    int rc = qrun_tab(r, QT_VEC, vt);
    if (rc == STRATA_NOTFOUND) { *vt = NULL; return STRATA_OK; }
    return rc ? rc : strata_len(*vt, n_vec);
}

/* The exact k nearest candidates. */
static int exact_run(qrun *r, strata_table *idx, topk *t) {
    uint64_t n_idx = 0, n_vec = 0;
    strata_table *vt;
    int rc = strata_len(idx, &n_idx);
    if (rc) return rc;
    if ((uint64_t)r->n * 8 >= n_idx) {   /* many candidates: one pass over the table */
        if ((rc = vec_table(r, &vt, &n_vec)) || (rc = other_dims(r, idx, n_idx, n_vec, 0))) return rc;
        if (vt) rc = scan_table(r, vt, t);
    } else {
        rc = lookup_each(r, idx, t);
    }
    return rc ? rc : flush(t);
}

int qsim_run(qrun *r) {
    const strata_query *q = r->q;
    topk t;
    strata_table *idx = NULL;
    int indexed = q->ann || q->ivf || q->ivf_h;
    r->ex.sim_source = (q->ivf || q->ivf_h) ? 3 : q->ann ? 2 : 1;
    int rc = qrun_tab(r, QT_EMBED, &idx);
    if (rc == STRATA_NOTFOUND) { rc = STRATA_OK; idx = NULL; }
    if (rc) return rc;
    if ((!idx && !indexed) || r->n == 0) return STRATA_OK;
    if ((rc = topk_init(&t, q, r->n)) == STRATA_OK) {
        if (indexed) rc = ann_run(r, idx, &t);
        if (rc == STRATA_NOTFOUND && q->ivf && !(q->ivf_flags & STRATA_QUERY_IVF_REQUIRED)) {
            r->ex.sim_source = 1;          /* no such index: the exact scan */
            r->ex.sim_fallback = 1;
            rc = idx ? exact_run(r, idx, &t) : STRATA_OK;
        } else if (!indexed) rc = exact_run(r, idx, &t);
        if (!rc) mark_hits(r, &t);
    }
    topk_free(&t);
    return rc;
}

/* Exact k nearest of every embedding of the query's dimension: the vector
 * table's own top-k (values read in place), into t->best. */
static int all_topk(qrun *r, strata_table *vt, uint64_t n_vec, topk *t) {
    const strata_query *q = r->q;
    if (!vt || n_vec == 0) return STRATA_OK;
    size_t kk = (uint64_t)t->k < n_vec ? t->k : (size_t)n_vec;
    int rc = strata_vec_table_topk(vt, q->metric, q->vec, q->dim, kk, NULL, NULL, t->best, &t->n_best);
    t->n_seen = n_vec;
    /* query and k are valid: EINVAL is a row of another length than the table's */
    return rc == STRATA_EINVAL ? STRATA_ECORRUPT : rc;
}

int qsim_drive(qrun *r) {
    const strata_query *q = r->q;
    topk t;
    strata_table *idx = NULL, *vt = NULL;
    uint64_t n_idx = 0, n_vec = 0;
    int indexed = q->ann || q->ivf || q->ivf_h;
    memset(&t, 0, sizeof t);
    r->ex.sim_source = (q->ivf || q->ivf_h) ? 3 : q->ann ? 2 : 1;
    int rc = qrun_tab(r, QT_EMBED, &idx);
    if (rc == STRATA_NOTFOUND) return STRATA_OK;   /* no embedding: nothing scores */
    if (rc || (rc = strata_len(idx, &n_idx)) || n_idx == 0 || (rc = topk_init(&t, q, n_idx))) goto out;
    if ((rc = vec_table(r, &vt, &n_vec))) goto out;
    r->sim_all = 1;
    if (indexed) rc = ann_run(r, idx, &t);
    if (indexed && rc == STRATA_NOTFOUND && q->ivf && !(q->ivf_flags & STRATA_QUERY_IVF_REQUIRED)) {
        r->ex.sim_source = 1;                       /* no such index: the exact scan */
        r->ex.sim_fallback = 1;
        indexed = 0;
        rc = STRATA_OK;
    }
    /* the index path judges only the ids it returns (add_one), as before */
    if (!rc && !indexed && (rc = other_dims(r, idx, n_idx, n_vec, 1)) == STRATA_OK)
        rc = all_topk(r, vt, n_vec, &t);
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
