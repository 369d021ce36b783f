/* blob/chunks.c - the deduplicated chunk store: blob:chunks holds each
 * distinct chunk once under its SHA-256 as two adjacent rows, the bytes
 * (key SHA-256 + CK_DATA) and the reference record (key SHA-256 + CK_REFS:
 * count and length), and the counters row the number and bytes of distinct
 * chunks. The two rows of a chunk share a leaf, so storing a new chunk
 * dirties one leaf chosen by its (random) hash, not one in each of two trees.
 * Invariants: (1) a chunk's data row exists iff its refs row exists, and the
 * refs count is >= 1 (docs/BLOBS.md "blob:chunks"); (2) the count equals the
 * number of blob:chunklist rows naming the chunk (pending blobs included);
 * (3) every change here happens in the caller's write transaction, so an
 * abort undoes it; (4) ref and unref do not write the counters row: they add
 * their change to the caller's delta array (blob_stats_apply writes it), so a
 * blob of many chunks updates blob:stats once, not once per chunk. */
#include <stdlib.h>

#include "blob_int.h"

void blob_ckey(uint8_t k[CHUNK_KEY], const uint8_t sha[SHA_LEN], uint8_t kind) {
    memcpy(k, sha, SHA_LEN);
    k[SHA_LEN] = kind;
}

int blob_chunk_ref(strata_txn *txn, const uint8_t sha[SHA_LEN], const void *data, size_t len,
                   uint64_t delta[ST_COUNT]) {
    strata_table *chunks;
    strata_slice v;
    uint8_t rk[CHUNK_KEY], dk[CHUNK_KEY], rv[REFS_VAL];
    int rc;
    if (len == 0 || len > STRATA_BLOB_MAX_CHUNK) return STRATA_EINVAL;
    if ((rc = blob_tab(txn, BT_CHUNKS, 1, &chunks))) return rc;
    blob_ckey(rk, sha, CK_REFS);
    rc = strata_get(chunks, blob_sl(rk, CHUNK_KEY), &v);
    if (rc == STRATA_OK) {
        if (v.len != REFS_VAL || le32_get((const uint8_t *)v.data + 8) != len) return STRATA_ECORRUPT;
        memcpy(rv, v.data, REFS_VAL);
        le64_put(rv, le64_get(rv) + 1);
        return strata_put(chunks, blob_sl(rk, CHUNK_KEY), blob_sl(rv, sizeof rv));
    }
    if (rc != STRATA_NOTFOUND) return rc;
    blob_ckey(dk, sha, CK_DATA);
    if ((rc = strata_put(chunks, blob_sl(dk, CHUNK_KEY), blob_sl(data, len)))) return rc;
    le64_put(rv, 1);
    le32_put(rv + 8, (uint32_t)len);
    le32_put(rv + 12, 0);
    if ((rc = strata_put(chunks, blob_sl(rk, CHUNK_KEY), blob_sl(rv, sizeof rv)))) return rc;
    delta[ST_N_CHUNKS] += 1;
    delta[ST_STORED] += len;
    return STRATA_OK;
}

int blob_chunk_unref(strata_txn *txn, const uint8_t sha[SHA_LEN], uint64_t delta[ST_COUNT]) {
    strata_table *chunks;
    strata_slice v;
    uint8_t rk[CHUNK_KEY], dk[CHUNK_KEY], rv[REFS_VAL];
    int rc;
    if ((rc = blob_tab(txn, BT_CHUNKS, 1, &chunks))) return rc;
    blob_ckey(rk, sha, CK_REFS);
    if ((rc = strata_get(chunks, blob_sl(rk, CHUNK_KEY), &v)))
        return rc == STRATA_NOTFOUND ? STRATA_ECORRUPT : rc;   /* a list names a missing chunk */
    if (v.len != REFS_VAL || le64_get(v.data) == 0) return STRATA_ECORRUPT;
    memcpy(rv, v.data, REFS_VAL);
    uint64_t count = le64_get(rv) - 1;
    if (count > 0) {
        le64_put(rv, count);
        return strata_put(chunks, blob_sl(rk, CHUNK_KEY), blob_sl(rv, sizeof rv));
    }
    uint32_t len = le32_get(rv + 8);
    if ((rc = strata_del(chunks, blob_sl(rk, CHUNK_KEY)))) return rc;
    blob_ckey(dk, sha, CK_DATA);
    if ((rc = strata_del(chunks, blob_sl(dk, CHUNK_KEY))))
        return rc == STRATA_NOTFOUND ? STRATA_ECORRUPT : rc;
    delta[ST_N_CHUNKS] -= 1;   /* two's complement: blob_stats_apply checks underflow */
    delta[ST_STORED] -= len;
    return STRATA_OK;
}

/* Collect the chunk hashes of blob id's list (copies: the unrefs below write). */
static int collect(strata_txn *txn, uint64_t id, uint8_t **shas, size_t *n) {
    strata_table *cl;
    strata_cursor *c = NULL;
    strata_slice k, v;
    uint8_t lo[8];
    size_t cap = 0;
    int rc = blob_tab(txn, BT_CLIST, 1, &cl);
    *shas = NULL;
    *n = 0;
    if (rc || (rc = strata_cursor_open(cl, &c))) return rc;
    be64_put(lo, id);
    for (rc = strata_cursor_seek(c, blob_sl(lo, 8)); rc == STRATA_OK; rc = strata_cursor_next(c)) {
        if ((rc = strata_cursor_get(c, &k, &v))) break;
        if (k.len != CLIST_KEY || memcmp(k.data, lo, 8)) break;
        if (v.len != CLIST_VAL) { rc = STRATA_ECORRUPT; break; }
        if (*n == cap) {
            size_t ncap = cap ? cap * 2 : 64;
            uint8_t *p = realloc(*shas, ncap * SHA_LEN);
            if (!p) { rc = STRATA_ENOMEM; break; }
            *shas = p;
            cap = ncap;
        }
        memcpy(*shas + *n * SHA_LEN, v.data, SHA_LEN);
        (*n)++;
    }
    strata_cursor_close(c);
    return rc == STRATA_NOTFOUND ? STRATA_OK : rc;
}

int blob_chunks_release(strata_txn *txn, uint64_t id) {
    uint8_t *shas, lo[8], hi[8];
    uint64_t delta[ST_COUNT] = { 0 };
    size_t n;
    int rc = collect(txn, id, &shas, &n);
    for (size_t i = 0; rc == STRATA_OK && i < n; i++)
        rc = blob_chunk_unref(txn, shas + i * SHA_LEN, delta);
    free(shas);
    if (rc || (rc = blob_stats_apply(txn, delta))) return rc;
    strata_table *cl;
    if ((rc = blob_tab(txn, BT_CLIST, 1, &cl))) return rc;
    be64_put(lo, id);
    be64_put(hi, id + 1);
    strata_slice l = blob_sl(lo, 8), h = blob_sl(hi, 8);
    return strata_del_range(cl, &l, &h, 0, NULL);
}
