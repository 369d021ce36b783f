/* blob/embed.c - optional embeddings: one f32 vector per blob, kept in the
 * engine's vector tables, and exact similarity search over them
 * (docs/BLOBS.md "Embeddings").
 * Layout: the vector of blob id is the row id of the STRATA_VECTOR table
 * "blob:vec:<dim>" (one table per dimension in use, created by the first
 * embedding of that dimension); the index blob:embed maps id -> dim (u32 LE),
 * so a get, del or delete finds the table without looking in every one.
 * strata_blob_similar is strata_vec_table_topk over the query dimension's
 * table: values are read in place, nothing is allocated.
 * Invariants: (1) every stored vector passed strata_vec_validate (and the
 * vector table checks it again on put); (2) a blob has an index row iff it
 * has a vector row, in the table its index row names, and only while it is a
 * finished blob (delete removes both); (3) the result order is
 * strata_vec_table_topk's: distance, then smaller id; (4) a write that fails
 * after its first row was written leaves the transaction abort-only
 * (blob_fail), so the two rows never disagree in a commit. */
#include <stdio.h>
#include <stdlib.h>

#include "blob_int.h"

static void id_key(uint8_t k[8], uint64_t id) { le64_put(k, id); }

size_t blob_vec_name(char buf[BLOB_VEC_NAME_MAX], uint32_t dim) {
    int n = snprintf(buf, BLOB_VEC_NAME_MAX, BLOB_VEC_PREFIX "%u", (unsigned)dim);
    return n > 0 ? (size_t)n : 0;
}

uint32_t blob_vec_dim_of(const char *name) {
    size_t lp = sizeof BLOB_VEC_PREFIX - 1;
    if (strncmp(name, BLOB_VEC_PREFIX, lp)) return 0;
    const char *p = name + lp;
    uint64_t d = 0;
    if (*p < '1' || *p > '9') return 0;   /* no leading zero, not empty */
    for (; *p; p++) {
        if (*p < '0' || *p > '9') return 0;
        d = d * 10 + (uint64_t)(*p - '0');
        if (d > STRATA_VEC_MAX_DIM) return 0;
    }
    return (uint32_t)d;
}

int blob_vec_tab(strata_txn *txn, uint32_t dim, int create, strata_table **out) {
    char name[BLOB_VEC_NAME_MAX];
    strata_table_spec spec = { STRATA_KEY_U64, NULL, dim };
    if (dim == 0 || dim > STRATA_VEC_MAX_DIM) return STRATA_ECORRUPT;
    blob_vec_name(name, dim);
    int rc = strata_table_open_ex(txn, name, &spec, STRATA_VECTOR | (create ? STRATA_CREATE : 0u), out);
    /* the name states the dimension: anything else under it is damage */
    return rc == STRATA_ETYPE ? STRATA_ECORRUPT : rc;
}

int blob_embed_decode(strata_slice v, uint32_t *dim) {
    if (v.len != EMBED_VAL) return STRATA_ECORRUPT;   /* also a row of the old layout */
    uint32_t d = le32_get(v.data);
    if (d == 0 || d > STRATA_VEC_MAX_DIM) return STRATA_ECORRUPT;
    *dim = d;
    return STRATA_OK;
}

/* Blob id's index row: STRATA_OK with *dim, STRATA_NOTFOUND (no index table
 * or no row), STRATA_ECORRUPT. *idx gets the index table when it exists. */
static int index_get(strata_txn *txn, uint64_t id, int create, strata_table **idx, uint32_t *dim) {
    strata_slice v;
    uint8_t k[8];
    int rc = blob_tab(txn, BT_EMBED, create, idx);
    if (rc) return rc;
    id_key(k, id);
    if ((rc = strata_get(*idx, blob_sl(k, 8), &v))) return rc;
    return blob_embed_decode(v, dim);
}

/* The vector row of id in the table of dimension dim: STRATA_OK with *v,
 * STRATA_ECORRUPT when the index names a row that is not there. */
static int vec_get(strata_txn *txn, uint64_t id, uint32_t dim, strata_table **t, strata_slice *v) {
    uint8_t k[8];
    int rc = blob_vec_tab(txn, dim, 0, t);
    id_key(k, id);
    if (rc == STRATA_OK) rc = strata_get(*t, blob_sl(k, 8), v);
    if (rc == STRATA_OK && v->len != (size_t)dim * 4) rc = STRATA_ECORRUPT;
    return rc == STRATA_NOTFOUND ? STRATA_ECORRUPT : rc;
}

int strata_blob_embed_set(strata_txn *txn, uint64_t id, const float *v, size_t dim) {
    strata_table *idx, *old = NULL, *t;
    strata_slice ov;
    uint8_t k[8], dv[EMBED_VAL];
    uint32_t odim = 0;
    if (!txn || strata_vec_validate(v, dim) != STRATA_OK) return STRATA_EINVAL;
    int rc = blob_exists(txn, id);
    if (rc) return rc;
    /* everything that can be damage is found before the first write */
    rc = index_get(txn, id, 1, &idx, &odim);
    if (rc == STRATA_NOTFOUND) {          /* no embedding yet */
        odim = 0;
        rc = STRATA_OK;
    } else if (rc == STRATA_OK && odim != dim) {
        rc = vec_get(txn, id, odim, &old, &ov);   /* the row to delete must be there */
    }
    if (rc || (rc = blob_vec_tab(txn, (uint32_t)dim, 1, &t))) return rc;
    id_key(k, id);
    le32_put(dv, (uint32_t)dim);
#if defined(__BYTE_ORDER__) && __BYTE_ORDER__ == __ORDER_LITTLE_ENDIAN__
    rc = strata_put(t, blob_sl(k, 8), blob_sl(v, dim * 4));
#else
    uint8_t *val = malloc(dim * 4);
    if (!val) return STRATA_ENOMEM;
    for (size_t i = 0; i < dim; i++) {
        uint32_t bits;
        memcpy(&bits, &v[i], 4);
        le32_put(val + 4 * i, bits);
    }
    rc = strata_put(t, blob_sl(k, 8), blob_sl(val, dim * 4));
    free(val);
#endif
    if (rc) return rc;                                  /* nothing written yet */
    if (odim == dim) return STRATA_OK;                  /* same table: replaced in place */
    if (old && (rc = strata_del(old, blob_sl(k, 8)))) return blob_fail(txn, rc);
    return blob_fail(txn, strata_put(idx, blob_sl(k, 8), blob_sl(dv, EMBED_VAL)));
}

int strata_blob_embed_get(strata_txn *txn, uint64_t id, float *out, size_t cap, size_t *dim) {
    strata_table *idx, *t;
    strata_slice v;
    uint32_t d;
    if (!txn || !dim || (!out && cap)) return STRATA_EINVAL;
    int rc = blob_exists(txn, id);
    if (rc || (rc = index_get(txn, id, 0, &idx, &d))) return rc;
    *dim = d;
    if (cap < d) return STRATA_EINVAL;
    if ((rc = vec_get(txn, id, d, &t, &v))) return rc;
    for (size_t i = 0; i < d; i++) {
        uint32_t bits = le32_get((const uint8_t *)v.data + 4 * i);
        memcpy(&out[i], &bits, 4);
    }
    return STRATA_OK;
}

/* Delete both rows of id's embedding; STRATA_NOTFOUND if it has none. */
static int remove_rows(strata_txn *txn, uint64_t id) {
    strata_table *idx, *t;
    strata_slice v;
    uint8_t k[8];
    uint32_t d;
    int rc = index_get(txn, id, 0, &idx, &d);
    if (rc || (rc = vec_get(txn, id, d, &t, &v))) return rc;
    id_key(k, id);
    if ((rc = strata_del(t, blob_sl(k, 8)))) return rc;   /* the first write */
    return blob_fail(txn, strata_del(idx, blob_sl(k, 8)));
}

int strata_blob_embed_del(strata_txn *txn, uint64_t id) {
    if (!txn) return STRATA_EINVAL;
    int rc = blob_exists(txn, id);
    return rc ? rc : remove_rows(txn, id);
}

int blob_embed_remove(strata_txn *txn, uint64_t id) {
    int rc = remove_rows(txn, id);
    return rc == STRATA_NOTFOUND ? STRATA_OK : rc;
}

int strata_blob_similar(strata_txn *txn, strata_metric m, const float *query, size_t dim, size_t k,
                        strata_hit *out, size_t *n_out) {
    strata_table *t;
    uint64_t n;
    if (!txn || !out || !n_out || k == 0 || strata_vec_validate(query, dim) != STRATA_OK ||
        (unsigned)m > STRATA_METRIC_L1)
        return STRATA_EINVAL;
    int rc = blob_vec_tab(txn, (uint32_t)dim, 0, &t);
    if (rc == STRATA_NOTFOUND) { *n_out = 0; return STRATA_OK; }   /* no embedding of this dimension */
    if (rc || (rc = strata_len(t, &n))) return rc;
    if (n == 0) { *n_out = 0; return STRATA_OK; }
    /* strata_vec_table_topk wants k <= rows: fewer rows than k give them all */
    rc = strata_vec_table_topk(t, m, query, dim, k < n ? k : (size_t)n, NULL, NULL, out, n_out);
    /* the arguments were checked above, so EINVAL means a row of another
     * length than the table's dimension, or no longer a finite distance */
    return rc == STRATA_EINVAL ? STRATA_ECORRUPT : rc;
}
