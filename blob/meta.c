/* blob/meta.c - the blob record (blob:meta, docs/BLOBS.md "blob:meta"):
 * encoding, lookup, strata_blob_info_get and strata_blob_delete.
 * Invariants: (1) a meta row exists exactly for finished blobs; (2) its
 * reserved bytes are zero and its lengths add up to the value length, else
 * the record is STRATA_ECORRUPT; (3) delete removes every row that names the
 * blob (chunk list, tags, namespace, time, embedding, both edge copies) and
 * updates the counters in the same transaction. */
#include <stdlib.h>

#include "blob_int.h"

int blob_meta_decode(strata_slice v, blob_meta *m) {
    const uint8_t *p = v.data;
    if (v.len < META_HDR || p[META_OFF_VERSION] != META_VERSION) return STRATA_ECORRUPT;
    if ((p[META_OFF_FLAGS] & ~META_FLAG_FIXED) || le16_get(p + META_OFF_RESERVED)) return STRATA_ECORRUPT;
    size_t ct = p[META_OFF_CT_LEN], ns = p[META_OFF_NS_LEN], lab = le16_get(p + META_OFF_LABEL_LEN);
    if (lab > STRATA_BLOB_MAX_LABEL || v.len != META_HDR + ct + ns + lab) return STRATA_ECORRUPT;
    m->flags = p[META_OFF_FLAGS];
    m->size = le64_get(p + META_OFF_SIZE);
    m->hlc = le64_get(p + META_OFF_HLC);
    m->n_chunks = le64_get(p + META_OFF_NCHUNKS);
    memcpy(m->sha, p + META_OFF_SHA, SHA_LEN);
    m->ct = blob_sl(p + META_HDR, ct);
    m->ns = blob_sl(p + META_HDR + ct, ns);
    m->label = blob_sl(p + META_HDR + ct + ns, lab);
    return STRATA_OK;
}

int blob_meta_encode(const blob_meta *m, uint8_t **out, size_t *len) {
    if (m->ct.len > STRATA_BLOB_MAX_META || m->ns.len > STRATA_BLOB_MAX_META ||
        m->label.len > STRATA_BLOB_MAX_LABEL)
        return STRATA_EINVAL;
    size_t n = META_HDR + m->ct.len + m->ns.len + m->label.len;
    uint8_t *p = calloc(1, n);
    if (!p) return STRATA_ENOMEM;
    p[META_OFF_VERSION] = META_VERSION;
    p[META_OFF_FLAGS] = m->flags;
    p[META_OFF_CT_LEN] = (uint8_t)m->ct.len;
    p[META_OFF_NS_LEN] = (uint8_t)m->ns.len;
    le16_put(p + META_OFF_LABEL_LEN, (uint16_t)m->label.len);
    le64_put(p + META_OFF_SIZE, m->size);
    le64_put(p + META_OFF_HLC, m->hlc);
    le64_put(p + META_OFF_NCHUNKS, m->n_chunks);
    memcpy(p + META_OFF_SHA, m->sha, SHA_LEN);
    if (m->ct.len) memcpy(p + META_HDR, m->ct.data, m->ct.len);
    if (m->ns.len) memcpy(p + META_HDR + m->ct.len, m->ns.data, m->ns.len);
    if (m->label.len) memcpy(p + META_HDR + m->ct.len + m->ns.len, m->label.data, m->label.len);
    *out = p;
    *len = n;
    return STRATA_OK;
}

int blob_meta_load(strata_txn *txn, uint64_t id, blob_meta *m) {
    strata_table *t;
    strata_slice v;
    uint8_t k[8];
    if (id == 0) return STRATA_NOTFOUND;
    int rc = blob_tab(txn, BT_META, 0, &t);
    if (rc) return rc;
    le64_put(k, id);
    if ((rc = strata_get(t, blob_sl(k, 8), &v))) return rc;
    return blob_meta_decode(v, m);
}

int blob_exists(strata_txn *txn, uint64_t id) {
    blob_meta m;
    return blob_meta_load(txn, id, &m);
}

int strata_blob_info_get(strata_txn *txn, uint64_t id, strata_blob_info *out) {
    blob_meta m;
    if (!txn || !out) return STRATA_EINVAL;
    int rc = blob_meta_load(txn, id, &m);
    if (rc) return rc;
    out->id = id;
    out->size = m.size;
    out->created_hlc = m.hlc;
    out->n_chunks = m.n_chunks;
    memcpy(out->sha256, m.sha, SHA_LEN);
    out->content_type = m.ct;
    out->label = m.label;
    out->ns = m.ns;
    return STRATA_OK;
}

int strata_blob_delete(strata_txn *txn, uint64_t id) {
    blob_meta m;
    strata_table *t;
    uint8_t k[8];
    if (!txn) return STRATA_EINVAL;
    int rc = blob_meta_load(txn, id, &m);
    if (rc) return rc;
    /* m's slices point into the map: index removal uses them before any write
     * to blob:meta, and blob_index_remove copies what it needs first. */
    if ((rc = blob_index_remove(txn, id, &m))) return blob_fail(txn, rc);
    if ((rc = blob_chunks_release(txn, id))) return blob_fail(txn, rc);
    if ((rc = blob_embed_remove(txn, id))) return blob_fail(txn, rc);
    if ((rc = blob_edges_remove(txn, id))) return blob_fail(txn, rc);
    if ((rc = blob_tab(txn, BT_META, 1, &t))) return blob_fail(txn, rc);
    le64_put(k, id);
    if ((rc = strata_del(t, blob_sl(k, 8)))) return blob_fail(txn, rc);
    uint64_t st[ST_COUNT];
    if ((rc = blob_stats_load(txn, st))) return blob_fail(txn, rc);
    if (st[ST_N_BLOBS] == 0 || st[ST_LOGICAL] < m.size) return blob_fail(txn, STRATA_ECORRUPT);
    st[ST_N_BLOBS] -= 1;
    st[ST_LOGICAL] -= m.size;
    return blob_fail(txn, blob_stats_store(txn, st));
}
