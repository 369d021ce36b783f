/* blob/tables.c - the blob layer's tables: names, key types, opening them in
 * a transaction, the counters row and a prefix scan used by every index.
 * Invariants: (1) tables are created lazily by the first write that needs
 * them, so a read on a store never written sees STRATA_NOTFOUND, which the
 * callers turn into "nothing there"; (2) the counters row is the only row of
 * blob:stats, key "stats", docs/BLOBS.md "blob:stats"; (3) an operation
 * that fails half-way leaves its transaction abort-only (blob_fail). */
#include "blob_int.h"
#include "db.h"

const char *const blob_table_names[BT_COUNT] = {
    [BT_META] = "blob:meta",         [BT_CLIST] = "blob:chunklist",
    [BT_CHUNKS] = "blob:chunks",
    [BT_STATS] = "blob:stats",       [BT_PENDING] = "blob:pending",
    [BT_TAGS] = "blob:tags",         [BT_BTAGS] = "blob:blobtags",
    [BT_NS] = "blob:ns",             [BT_TIME] = "blob:time",
    [BT_EMBED] = "blob:embed",       [BT_EOUT] = "blob:edges_out",
    [BT_EIN] = "blob:edges_in",      [BT_SHA] = "blob:sha",
};

const strata_key_type blob_table_keys[BT_COUNT] = {
    [BT_META] = STRATA_KEY_U64,      [BT_CLIST] = STRATA_KEY_BYTES,
    [BT_CHUNKS] = STRATA_KEY_BYTES,
    [BT_STATS] = STRATA_KEY_BYTES,   [BT_PENDING] = STRATA_KEY_U64,
    [BT_TAGS] = STRATA_KEY_BYTES,    [BT_BTAGS] = STRATA_KEY_BYTES,
    [BT_NS] = STRATA_KEY_BYTES,      [BT_TIME] = STRATA_KEY_BYTES,
    [BT_EMBED] = STRATA_KEY_U64,     [BT_EOUT] = STRATA_KEY_BYTES,
    [BT_EIN] = STRATA_KEY_BYTES,     [BT_SHA] = STRATA_KEY_BYTES,
};

static const char stats_key[] = "stats";

uint64_t *blob_rollback_counter(strata_txn *txn) {
    return db_txn_counter(txn, "__blob:writers");
}

int blob_fail(strata_txn *txn, int rc) {
    if (rc) db_txn_fail(txn);
    return rc;
}

int blob_tab(strata_txn *txn, int which, int create, strata_table **out) {
    if (which < 0 || which >= BT_COUNT) return STRATA_EINVAL;
    return strata_table_open(txn, blob_table_names[which], blob_table_keys[which],
                             create ? STRATA_CREATE : 0u, out);
}

int blob_stats_load(strata_txn *txn, uint64_t st[ST_COUNT]) {
    memset(st, 0, sizeof(uint64_t) * ST_COUNT);
    st[ST_NEXT_ID] = 1;
    strata_table *t;
    strata_slice v;
    int rc = blob_tab(txn, BT_STATS, 0, &t);
    if (rc == STRATA_NOTFOUND) return STRATA_OK;
    if (rc) return rc;
    rc = strata_get(t, blob_sl(stats_key, sizeof stats_key - 1), &v);
    if (rc == STRATA_NOTFOUND) return STRATA_OK;
    if (rc) return rc;
    if (v.len != 8 * ST_COUNT) return STRATA_ECORRUPT;
    for (int i = 0; i < ST_COUNT; i++) st[i] = le64_get((const uint8_t *)v.data + 8 * i);
    if (st[ST_NEXT_ID] == 0) return STRATA_ECORRUPT;
    return STRATA_OK;
}

int blob_stats_store(strata_txn *txn, const uint64_t st[ST_COUNT]) {
    uint8_t buf[8 * ST_COUNT];
    strata_table *t;
    int rc = blob_tab(txn, BT_STATS, 1, &t);
    if (rc) return rc;
    for (int i = 0; i < ST_COUNT; i++) le64_put(buf + 8 * i, st[i]);
    return strata_put(t, blob_sl(stats_key, sizeof stats_key - 1), blob_sl(buf, sizeof buf));
}

int blob_stats_add(strata_txn *txn, int idx, uint64_t delta) {
    uint64_t st[ST_COUNT];
    int rc = blob_stats_load(txn, st);
    if (rc) return rc;
    st[idx] += delta;
    return blob_stats_store(txn, st);
}

int blob_stats_apply(strata_txn *txn, const uint64_t delta[ST_COUNT]) {
    uint64_t st[ST_COUNT];
    int any = 0;
    for (int i = 0; i < ST_COUNT; i++) any |= delta[i] != 0;
    if (!any) return STRATA_OK;
    int rc = blob_stats_load(txn, st);
    if (rc) return rc;
    for (int i = 0; i < ST_COUNT; i++) {
        /* a decrement below zero means the counters disagree with the rows */
        if ((int64_t)delta[i] < 0 && st[i] < (uint64_t)0 - delta[i]) return STRATA_ECORRUPT;
        st[i] += delta[i];
    }
    return blob_stats_store(txn, st);
}

int blob_txn_hlc(strata_txn *txn, uint64_t *hlc) {
    return strata_txn_hlc(txn, hlc);
}

int blob_scan_prefix(strata_table *t, const uint8_t *prefix, size_t plen,
                     int (*fn)(void *ctx, strata_slice k, strata_slice v), void *ctx) {
    strata_cursor *c;
    strata_slice k, v;
    int rc = strata_cursor_open(t, &c);
    if (rc) return rc;
    rc = plen ? strata_cursor_seek(c, blob_sl(prefix, plen)) : strata_cursor_first(c);
    while (rc == STRATA_OK) {
        if ((rc = strata_cursor_get(c, &k, &v))) break;
        if (plen && (k.len < plen || memcmp(k.data, prefix, plen))) { rc = STRATA_NOTFOUND; break; }
        if ((rc = fn(ctx, k, v))) { strata_cursor_close(c); return rc; }   /* fn's value */
        rc = strata_cursor_next(c);
    }
    strata_cursor_close(c);
    return rc == STRATA_NOTFOUND ? STRATA_OK : rc;
}
