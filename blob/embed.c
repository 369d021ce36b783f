/* blob/embed.c - optional embeddings: one f32 vector per blob in blob:embed
 * (docs/BLOBS.md "blob:embed") and exact similarity search over them with
 * the vector layer's public strata_vec_topk.
 * The search scans the table in batches of BATCH rows of the query's
 * dimension, takes each batch's top k and merges it into the running top k,
 * so memory is O(BATCH * dim + k) however many blobs there are.
 * Invariants: (1) every stored vector passed strata_vec_validate; (2) an
 * embedding row exists only for a finished blob (delete removes it); (3) the
 * result order is strata_vec_topk's: distance, then smaller id. */
#include <stdlib.h>

#include "blob_int.h"

enum { BATCH = 1024 };

static void id_key(uint8_t k[8], uint64_t id) { le64_put(k, id); }

int strata_blob_embed_set(strata_txn *txn, uint64_t id, const float *v, size_t dim) {
    strata_table *t;
    uint8_t k[8];
    if (!txn || strata_vec_validate(v, dim) != STRATA_OK) return STRATA_EINVAL;
    int rc = blob_exists(txn, id);
    if (rc) return rc;
    size_t len = EMBED_HDR + dim * 4;
    uint8_t *val = malloc(len);
    if (!val) return STRATA_ENOMEM;
    le32_put(val, (uint32_t)dim);
    le32_put(val + 4, 0);
    for (size_t i = 0; i < dim; i++) {
        uint32_t bits;
        memcpy(&bits, &v[i], 4);
        le32_put(val + EMBED_HDR + 4 * i, bits);
    }
    id_key(k, id);
    rc = blob_tab(txn, BT_EMBED, 1, &t);
    if (rc == STRATA_OK) rc = strata_put(t, blob_sl(k, 8), blob_sl(val, len));
    free(val);
    return rc;
}

/* Decode an embedding value: *dim and, if out, the floats. */
static int decode(strata_slice v, float *out, size_t *dim) {
    const uint8_t *p = v.data;
    if (v.len < EMBED_HDR || le32_get(p + 4) != 0) return STRATA_ECORRUPT;
    size_t d = le32_get(p);
    if (d == 0 || d > STRATA_VEC_MAX_DIM || v.len != EMBED_HDR + 4 * d) return STRATA_ECORRUPT;
    for (size_t i = 0; out && i < d; i++) {
        uint32_t bits = le32_get(p + EMBED_HDR + 4 * i);
        memcpy(&out[i], &bits, 4);
    }
    *dim = d;
    return STRATA_OK;
}

int strata_blob_embed_get(strata_txn *txn, uint64_t id, float *out, size_t cap, size_t *dim) {
    strata_table *t;
    strata_slice v;
    uint8_t k[8];
    size_t d;
    if (!txn || !dim || (!out && cap)) return STRATA_EINVAL;
    int rc = blob_exists(txn, id);
    if (rc || (rc = blob_tab(txn, BT_EMBED, 0, &t))) return rc;
    id_key(k, id);
    if ((rc = strata_get(t, blob_sl(k, 8), &v)) || (rc = decode(v, NULL, &d))) return rc;
    *dim = d;
    if (cap < d) return STRATA_EINVAL;
    return decode(v, out, &d);
}

int strata_blob_embed_del(strata_txn *txn, uint64_t id) {
    strata_table *t;
    uint8_t k[8];
    if (!txn) return STRATA_EINVAL;
    int rc = blob_exists(txn, id);
    if (rc || (rc = blob_tab(txn, BT_EMBED, 0, &t))) return rc;
    id_key(k, id);
    return strata_del(t, blob_sl(k, 8));
}

int blob_embed_remove(strata_txn *txn, uint64_t id) {
    strata_table *t;
    uint8_t k[8];
    int rc = blob_tab(txn, BT_EMBED, 0, &t);
    if (rc) return rc == STRATA_NOTFOUND ? STRATA_OK : rc;
    id_key(k, id);
    rc = strata_del(t, blob_sl(k, 8));
    return rc == STRATA_NOTFOUND ? STRATA_OK : rc;
}

typedef struct sim {
    strata_metric    m;
    const float     *q;
    size_t           dim, k, n_best, n;
    float           *base;     /* BATCH * dim */
    uint64_t        *ids;      /* BATCH       */
    strata_hit      *best;     /* k: running result */
    strata_hit      *tmp;      /* 2k: batch result, then merge buffer */
} sim;

static int hit_less(const strata_hit *a, const strata_hit *b) {
    return a->dist < b->dist || (a->dist == b->dist && a->id < b->id);
}

/* Top k of the buffered batch, merged into best. */
static int flush(sim *s) {
    size_t got = 0, kk = s->k < s->n ? s->k : s->n;
    if (s->n == 0) return STRATA_OK;
    int rc = strata_vec_topk(s->m, s->q, s->base, s->n, s->dim, s->ids, kk, NULL, NULL, s->tmp, &got);
    if (rc) return rc;
    strata_hit *merged = s->tmp + s->k;
    size_t i = 0, j = 0, o = 0;
    while (o < s->k && (i < s->n_best || j < got)) {
        if (j >= got || (i < s->n_best && hit_less(&s->best[i], &s->tmp[j]))) merged[o++] = s->best[i++];
        else merged[o++] = s->tmp[j++];
    }
    memcpy(s->best, merged, o * sizeof *merged);
    s->n_best = o;
    s->n = 0;
    return STRATA_OK;
}

static int sim_row(void *ctx, strata_slice k, strata_slice v) {
    sim *s = ctx;
    size_t d;
    if (k.len != 8) return STRATA_ECORRUPT;
    int rc = decode(v, NULL, &d);
    if (rc || d != s->dim) return rc;
    if ((rc = decode(v, s->base + s->n * s->dim, &d))) return rc;
    s->ids[s->n++] = le64_get(k.data);
    return s->n == BATCH ? flush(s) : STRATA_OK;
}

int strata_blob_similar(strata_txn *txn, strata_metric m, const float *query, size_t dim, size_t k,
                        strata_hit *out, size_t *n_out) {
    strata_table *t;
    if (!txn || !out || !n_out || k == 0 || strata_vec_validate(query, dim) != STRATA_OK ||
        (unsigned)m > STRATA_METRIC_L1)
        return STRATA_EINVAL;
    int rc = blob_tab(txn, BT_EMBED, 0, &t);
    if (rc == STRATA_NOTFOUND) { *n_out = 0; return STRATA_OK; }
    if (rc) return rc;
    if (k > SIZE_MAX / (2 * sizeof(strata_hit))) return STRATA_ENOMEM;
    sim s = { m, query, dim, k, 0, 0, NULL, NULL, NULL, NULL };
    s.base = malloc(BATCH * dim * sizeof(float));
    s.ids = malloc(BATCH * sizeof(uint64_t));
    s.best = malloc(k * sizeof(strata_hit));
    s.tmp = malloc(2 * k * sizeof(strata_hit));
    rc = STRATA_ENOMEM;
    if (s.base && s.ids && s.best && s.tmp) {
        rc = blob_scan_prefix(t, NULL, 0, sim_row, &s);
        if (rc == STRATA_OK) rc = flush(&s);
    }
    if (rc == STRATA_OK) {
        memcpy(out, s.best, s.n_best * sizeof *out);
        *n_out = s.n_best;
    }
    free(s.base);
    free(s.ids);
    free(s.best);
    free(s.tmp);
    return rc;
}
