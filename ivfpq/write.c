/* ivfpq/write.c - insert, update and delete of vectors by id, in the caller's
 * write transaction. A batch is checked whole (vectors, ids, flags) before
 * anything is written; then old versions of its ids are removed, the new
 * vectors are assigned (sgemm), encoded (residual PQ), sorted by (cluster, id)
 * and merged into the posting blocks cluster by cluster (each entry with its
 * L2 term and, kept raw, its raw vector), and the assignment and config rows
 * are written.
 * Invariants: ivfpq_int.h (2) and (3) after every call returning STRATA_OK;
 * the config's n_vectors equals the number of assignment rows.
 */
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "blocks.h"
#include "db.h"

typedef struct ent { uint64_t id, attr; uint32_t cluster, src; } ent;

static int ent_by_id(const void *a, const void *b)
{
    const ent *x = a, *y = b;
    return x->id < y->id ? -1 : x->id > y->id;
}

static int ent_by_cluster(const void *a, const void *b)
{
    const ent *x = a, *y = b;
    if (x->cluster != y->cluster) return x->cluster < y->cluster ? -1 : 1;
    return ent_by_id(a, b);
}

/* Cluster of an existing id from the assignment table (NOTFOUND if absent). */
static int assign_get(strata_ivf *ix, uint64_t id, uint32_t *cluster, uint64_t *attr)
{
    uint8_t key[8];
    strata_slice v;
    ivf_le64_put(key, id);
    int rc = strata_get(ix->t_assign, (strata_slice){key, 8}, &v);
    if (rc != STRATA_OK) return rc;
    if (v.len != ASSIGN_VAL_LEN) return STRATA_ECORRUPT;
    uint32_t c = ivf_le32_get(v.data);
    if (c >= ix->cfg.nlist) return STRATA_ECORRUPT;
    *cluster = c;
    if (attr) *attr = ivf_le64_get((const uint8_t *)v.data + 4);
    return STRATA_OK;
}

/* Remove id everywhere; STRATA_NOTFOUND if it is not in the index. */
static int remove_id(strata_ivf *ix, uint64_t id)
{
    uint32_t c;
    int rc = assign_get(ix, id, &c, NULL);
    if (rc != STRATA_OK) return rc;
    if ((rc = ivf_block_remove(ix, c, id)) != STRATA_OK) return rc;
    uint8_t key[8];
    ivf_le64_put(key, id);
    if ((rc = strata_del(ix->t_assign, (strata_slice){key, 8})) != STRATA_OK) return rc;
    ix->cfg.n_vectors--;
    return STRATA_OK;
}

/* The new entries of a batch: codes (n * m, by src), L2 terms (by src) and
 * the caller's vectors (raw rows, by src). */
typedef struct batch {
    const uint8_t *codes;
    const float   *terms;
    const float   *data;
} batch;

/* Entry k of dst := new entry e. */
static void elist_set_new(ivf_elist *dst, uint32_t k, const ent *e, const batch *bt,
                          const ivf_blayout *lay)
{
    dst->ids[k] = e->id;
    dst->attrs[k] = e->attr;
    dst->terms[k] = bt->terms[e->src];
    memcpy(dst->codes + (size_t)k * lay->m, bt->codes + (size_t)e->src * lay->m, lay->m);
    if (lay->raw_dim)
        memcpy(dst->raw + (size_t)k * lay->raw_dim, bt->data + (size_t)e->src * lay->raw_dim,
               lay->raw_dim * sizeof *dst->raw);
}

/* Merge the sorted entries e[0..n) (all of cluster c) into its blocks. */
static int merge_cluster(strata_ivf *ix, uint32_t c, const ent *e, size_t n, const batch *bt)
{
    const ivf_blayout *lay = &ix->lay;
    size_t pos = 0;
    int rc = STRATA_OK;
    while (pos < n && rc == STRATA_OK) {
        ivf_elist old = {0}, mg = {0};
        int found, has_next;
        uint64_t first = 0, nf = 0;
        rc = ivf_block_find(ix, c, e[pos].id, &old, &found, &first, &has_next, &nf);
        size_t q = pos;
        while (q < n && (!has_next || e[q].id < nf)) q++;
        if (rc == STRATA_OK) rc = ivf_elist_reserve(&mg, old.n + (uint32_t)(q - pos), lay);
        int append = !found || e[pos].id > old.ids[old.n - 1];
        for (uint32_t i = 0; rc == STRATA_OK && (i < old.n || pos < q);) {   /* merge */
            int take_old = pos == q || (i < old.n && old.ids[i] < e[pos].id);
            uint32_t k = mg.n++;
            if (take_old) ivf_elist_copy(&mg, k, &old, i++, lay);
            else elist_set_new(&mg, k, &e[pos++], bt, lay);
        }
        if (rc == STRATA_OK && found) rc = ivf_block_del_key(ix, c, first);
        if (rc == STRATA_OK) rc = ivf_blocks_store(ix, c, &mg, append);
        ivf_elist_free(&old);
        ivf_elist_free(&mg);
    }
    return rc;
}

/* Check the whole batch; on success *es holds it sorted by id. */
static int batch_check(strata_ivf *ix, size_t n, const uint64_t *ids, const float *data,
                       size_t dim, const uint64_t *attrs, ent **es)
{
    if (!ids || !data || dim != ix->cfg.dim) return STRATA_EINVAL;
    if (ix->cfg.state != IVF_STATE_TRAINED) return STRATA_EINVAL;
    if (attrs && !(ix->cfg.flags & CFG_F_ATTR)) return STRATA_EINVAL;
    if (n > UINT32_MAX) return STRATA_EINVAL;
    for (size_t i = 0; i < n; i++)
        if (vec_validate(data + i * ix->cfg.dim, ix->cfg.dim) != STRATA_OK) return STRATA_EINVAL;
    ent *e = malloc(n * sizeof *e);
    if (!e) return STRATA_ENOMEM;
    for (size_t i = 0; i < n; i++)
        e[i] = (ent){ids[i], attrs ? attrs[i] : 0, 0, (uint32_t)i};
    qsort(e, n, sizeof *e, ent_by_id);
    for (size_t i = 1; i < n; i++)
        if (e[i].id == e[i - 1].id) { free(e); return STRATA_EINVAL; }
    *es = e;
    return STRATA_OK;
}

/* Assign and encode: clusters into e[].cluster, codes (n * m, by src), L2
 * terms (n, by src; 0 for IP and cosine). */
static int batch_encode(strata_ivf *ix, size_t n, const float *data, ent *e, uint8_t *codes,
                        float *terms)
{
    const ivf_config *c = &ix->cfg;
    float *x = malloc(n * c->dim * sizeof *x);
    uint32_t *as = malloc(n * sizeof *as);
    int rc = STRATA_ENOMEM;
    if (!x || !as) goto out;
    memcpy(x, data, n * c->dim * sizeof *x);
    if (c->metric == STRATA_METRIC_COSINE)
        for (size_t i = 0; i < n; i++) ivf_normalize(x + i * c->dim, c->dim);
    rc = ivf_assign(x, n, c->dim, ix->centroids, c->nlist, c->metric == STRATA_METRIC_IP, as, NULL);
    if (rc != STRATA_OK) goto out;
    for (size_t i = 0; i < n; i++) {
        const float *ce = ix->centroids + (size_t)as[i] * c->dim;
        for (uint32_t d = 0; d < c->dim; d++) x[i * c->dim + d] -= ce[d];
    }
    for (size_t i = 0; i < n; i++) e[i].cluster = as[e[i].src];
    if ((rc = ivf_pq_encode(ix->codebooks, c->dim, c->m, x, n, codes)) != STRATA_OK) goto out;
    for (size_t i = 0; i < n; i++) {
        terms[i] = ix->lay.term ? ivf_l2_term(ix, as[i], codes + i * c->m) : 0.0f;
        if (!isfinite(terms[i])) { rc = STRATA_EINVAL; goto out; }   /* overflow */
    }
out:
    free(x); free(as);
    return rc;
}

static int rows_put(strata_ivf *ix, const ent *e, size_t n)
{
    int rc = STRATA_OK;
    for (size_t i = 0; i < n && rc == STRATA_OK; i++) {
        uint8_t key[8], val[ASSIGN_VAL_LEN];
        ivf_le64_put(key, e[i].id);
        ivf_le32_put(val, e[i].cluster);
        ivf_le64_put(val + 4, e[i].attr);
        rc = strata_put(ix->t_assign, (strata_slice){key, 8}, (strata_slice){val, sizeof val});
    }
    return rc;
}

int strata_ivf_insert_batch(strata_ivf *ix, size_t n, const uint64_t *ids, const float *data,
                            size_t dim, const uint64_t *attrs)
{
    int rc = ivf_handle_check(ix);
    if (rc != STRATA_OK || n == 0) return rc;
    ent *e = NULL;
    uint8_t *codes = NULL;
    float *terms = NULL;
    int writing = 0;
    if ((rc = batch_check(ix, n, ids, data, dim, attrs, &e)) != STRATA_OK) return rc;
    rc = STRATA_ENOMEM;
    if (!(codes = malloc(n * ix->cfg.m)) || !(terms = malloc(n * sizeof *terms))) goto out;
    if ((rc = batch_encode(ix, n, data, e, codes, terms)) != STRATA_OK) goto out;
    writing = 1;   /* from here a failure may leave rows half-written */
    batch bt = {codes, terms, data};
    for (size_t i = 0; i < n; i++) {                      /* updates: drop old versions */
        rc = remove_id(ix, e[i].id);
        if (rc == STRATA_NOTFOUND) rc = STRATA_OK;
        if (rc != STRATA_OK) goto out;
    }
    qsort(e, n, sizeof *e, ent_by_cluster);
    for (size_t a = 0, b; a < n; a = b) {
        for (b = a + 1; b < n && e[b].cluster == e[a].cluster; b++) {}
        if ((rc = merge_cluster(ix, e[a].cluster, e + a, b - a, &bt)) != STRATA_OK) goto out;
    }
    if ((rc = rows_put(ix, e, n)) != STRATA_OK) goto out;
    ix->cfg.n_vectors += n;
    rc = ivf_config_save(ix);
out:
    ivf_wrote(ix);
    /* half-written rows must never be committed (EREADONLY: nothing was) */
    if (rc != STRATA_OK && writing && rc != STRATA_EREADONLY) db_txn_fail(ix->txn);
    free(e); free(codes); free(terms);
    return rc;
}

int strata_ivf_insert(strata_ivf *ix, uint64_t id, const float *v, size_t dim, uint64_t attr)
{
    int rc = ivf_handle_check(ix);
    if (rc != STRATA_OK) return rc;
    const uint64_t *ap = (ix->cfg.flags & CFG_F_ATTR) ? &attr : NULL;
    if (!ap && attr != 0) return STRATA_EINVAL;
    return strata_ivf_insert_batch(ix, 1, &id, v, dim, ap);
}

int strata_ivf_delete(strata_ivf *ix, uint64_t id)
{
    int rc = ivf_handle_check(ix);
    if (rc != STRATA_OK) return rc;
    if (ix->cfg.state != IVF_STATE_TRAINED) return STRATA_NOTFOUND;
    rc = remove_id(ix, id);
    ivf_wrote(ix);
    if (rc == STRATA_OK) rc = ivf_config_save(ix);
    else if (rc == STRATA_NOTFOUND || rc == STRATA_EREADONLY) return rc;   /* nothing written */
    if (rc != STRATA_OK) db_txn_fail(ix->txn);   /* half-removed: abort-only */
    return rc;
}

int strata_ivf_get(strata_ivf *ix, uint64_t id, float *v, uint64_t *attr)
{
    int rc = ivf_handle_check(ix);
    if (rc != STRATA_OK) return rc;
    if (v && !ix->lay.raw_dim) return STRATA_EINVAL;
    uint32_t c;
    uint64_t a;
    if ((rc = assign_get(ix, id, &c, &a)) != STRATA_OK) return rc;
    if (v && (rc = ivf_block_raw_get(ix, c, id, v)) != STRATA_OK) return rc;
    if (attr) *attr = a;
    return STRATA_OK;
}
