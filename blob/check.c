/* blob/check.c - statistics (strata_blob_stats_get, strata_blob_dedup_ratio),
 * garbage collection of pending blobs left by lost writers (strata_blob_gc)
 * and the consistency check of the blob tables (strata_blob_check).
 * The check recounts everything from the tables themselves and compares with
 * what is recorded: chunk reference counts (blob_int.h invariant 2), the
 * counters row (3), the per-blob index rows (4), the mirrored rows of
 * tags and edges (5) and the two rows of each embedding (6); the check
 * itself is in fsck.c. It reads only; O(rows of the blob tables). */
#include <stdio.h>
#include <stdlib.h>

#include "blob_int.h"

int strata_blob_stats_get(strata_txn *txn, strata_blob_stats *out) {
    uint64_t st[ST_COUNT];
    if (!txn || !out) return STRATA_EINVAL;
    int rc = blob_stats_load(txn, st);
    if (rc) return rc;
    out->n_blobs = st[ST_N_BLOBS];
    out->logical_bytes = st[ST_LOGICAL];
    out->n_chunks = st[ST_N_CHUNKS];
    out->stored_bytes = st[ST_STORED];
    out->n_pending = st[ST_N_PENDING];
    out->next_id = st[ST_NEXT_ID];
    return STRATA_OK;
}

int strata_blob_dedup_ratio(strata_txn *txn, double *ratio) {
    strata_blob_stats s;
    if (!ratio) return STRATA_EINVAL;
    int rc = strata_blob_stats_get(txn, &s);
    if (rc) return rc;
    *ratio = s.stored_bytes ? (double)s.logical_bytes / (double)s.stored_bytes : 1.0;
    return STRATA_OK;
}

/* Pending ids whose row carries another transaction's HLC. */
typedef struct stale { uint64_t hlc; uint64_t *v; size_t n; } stale;

static int stale_row(void *ctx, strata_slice k, strata_slice v) {
    stale *s = ctx;
    if (k.len != 8 || v.len != 8) return STRATA_ECORRUPT;
    if (le64_get(v.data) == s->hlc) return STRATA_OK;   /* a writer of this txn */
    uint64_t *p = realloc(s->v, (s->n + 1) * sizeof *p);
    if (!p) return STRATA_ENOMEM;
    s->v = p;
    s->v[s->n++] = le64_get(k.data);
    return STRATA_OK;
}

int strata_blob_gc(strata_txn *txn, uint64_t *n_removed) {
    strata_table *t;
    stale s = { 0, NULL, 0 };
    if (!txn) return STRATA_EINVAL;
    int rc = blob_txn_hlc(txn, &s.hlc);
    if (rc) return rc;
    rc = blob_tab(txn, BT_PENDING, 0, &t);
    if (rc == STRATA_NOTFOUND) rc = STRATA_OK;
    else if (rc == STRATA_OK) rc = blob_scan_prefix(t, NULL, 0, stale_row, &s);
    int wrote = 0;
    for (size_t i = 0; rc == STRATA_OK && i < s.n; i++) {
        uint8_t k[8];
        le64_put(k, s.v[i]);
        /* a pending row of a finished blob is damage: releasing its chunk
         * list would destroy the finished blob */
        rc = blob_exists(txn, s.v[i]);
        rc = rc == STRATA_OK ? STRATA_ECORRUPT : rc == STRATA_NOTFOUND ? STRATA_OK : rc;
        if (rc == STRATA_OK) rc = blob_chunks_release(txn, s.v[i]), wrote = 1;
        if (rc == STRATA_OK) rc = strata_del(t, blob_sl(k, 8));
        if (rc == STRATA_OK) rc = blob_stats_add(txn, ST_N_PENDING, (uint64_t)-1);
    }
    if (rc == STRATA_OK && n_removed) *n_removed = s.n;
    free(s.v);
    return wrote ? blob_fail(txn, rc) : rc;
}
