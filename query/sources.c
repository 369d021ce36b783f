/* query/sources.c - candidate lists read from the blob layer's indexes, each
 * one range scan in key order (docs/BLOBS.md "Tables"):
 *   a tag's blobs     blob:tags prefix (len, tag), ids in increasing order;
 *   a namespace       blob:ns prefix (len, ns), ids in increasing order;
 *   a time window     blob:time [(lo, 0), (hi, max)], HLC order;
 *   the newest blobs  blob:time backwards from the end.
 * A scan stops once it has read cap + 1 ids and then reports QSRC_OVER: the
 * planner uses this to compare the selectivity of filters without reading
 * more than the smallest list seen so far (plan.c).
 * Invariants: (1) a row whose key has the wrong length is STRATA_ECORRUPT;
 * (2) the cursor is closed on every path. */
#include <string.h>

#include "query_int.h"

/* Rows of table `which` from key lo (inclusive) while their first plen bytes
 * equal lo's; each row's trailing id BE (and, with hlc_first, its leading
 * HLC) go to out. key_len: the exact key length expected (0 = any >= plen+8). */
static int scan_prefix(strata_txn *txn, int which, const uint8_t *lo, size_t plen, size_t key_len,
                       size_t cap, qids *out) {
    strata_table *t;
    strata_cursor *c = NULL;
    strata_slice k, v;
    int rc = qtab_open(txn, which, &t);
    if (rc == STRATA_NOTFOUND) return STRATA_OK;
    if (rc || (rc = strata_cursor_open(t, &c))) return rc;
    rc = strata_cursor_seek(c, q_sl(lo, plen));
    while (rc == STRATA_OK) {
        if ((rc = strata_cursor_get(c, &k, &v))) break;
        const uint8_t *p = k.data;
        if (k.len < plen || memcmp(p, lo, plen)) { rc = STRATA_NOTFOUND; break; }
        if (k.len != (key_len ? key_len : plen + 8)) { rc = STRATA_ECORRUPT; break; }
        if ((rc = qids_push(out, q_be64_get(p + k.len - 8), 0))) break;
        if (out->n > cap) { rc = QSRC_OVER; break; }
        rc = strata_cursor_next(c);
    }
    strata_cursor_close(c);
    return rc == STRATA_NOTFOUND ? STRATA_OK : rc;
}

int qsrc_tag(strata_txn *txn, const char *tag, size_t cap, qids *out) {
    uint8_t k[1 + STRATA_BLOB_MAX_META + 8];
    size_t len = strlen(tag);
    size_t n = qkey_named(k, tag, len, 0);
    return scan_prefix(txn, QT_TAGS, k, n - 8, 0, cap, out);
}

int qsrc_ns(strata_txn *txn, const char *ns, size_t cap, qids *out) {
    uint8_t k[1 + STRATA_BLOB_MAX_META + 8];
    size_t len = strlen(ns);
    size_t n = qkey_named(k, ns, len, 0);
    return scan_prefix(txn, QT_NS, k, n - 8, 0, cap, out);
}

int qsrc_time(strata_txn *txn, uint64_t lo, uint64_t hi, size_t cap, qids *out) {
    strata_table *t;
    strata_cursor *c = NULL;
    strata_slice k, v;
    uint8_t from[16];
    int rc = qtab_open(txn, QT_TIME, &t);
    if (rc == STRATA_NOTFOUND) return STRATA_OK;
    if (rc || (rc = strata_cursor_open(t, &c))) return rc;
    q_be64_put(from, lo);
    q_be64_put(from + 8, 0);
    rc = strata_cursor_seek(c, q_sl(from, 16));
    while (rc == STRATA_OK) {
        if ((rc = strata_cursor_get(c, &k, &v))) break;
        if (k.len != 16) { rc = STRATA_ECORRUPT; break; }
        uint64_t hlc = q_be64_get(k.data);
        if (hlc > hi) { rc = STRATA_NOTFOUND; break; }
        if ((rc = qids_push(out, q_be64_get((const uint8_t *)k.data + 8), hlc))) break;
        if (out->n > cap) { rc = QSRC_OVER; break; }
        rc = strata_cursor_next(c);
    }
    strata_cursor_close(c);
    return rc == STRATA_NOTFOUND ? STRATA_OK : rc;
}

int qsrc_time_newest(strata_txn *txn, size_t want, uint64_t now_hlc, uint64_t half_life_ms,
                     qids *out) {
    strata_table *t;
    strata_cursor *c = NULL;
    strata_slice k, v;
    int rc = qtab_open(txn, QT_TIME, &t);
    if (rc == STRATA_NOTFOUND) return STRATA_OK;
    if (rc || (rc = strata_cursor_open(t, &c))) return rc;
    rc = strata_cursor_last(c);
    while (rc == STRATA_OK) {
        if ((rc = strata_cursor_get(c, &k, &v))) break;
        if (k.len != 16) { rc = STRATA_ECORRUPT; break; }
        uint64_t hlc = q_be64_get(k.data);
        /* Past `want` ids, keep going only while the score ties the last one
         * taken: those blobs rank equal and may win on id. */
        if (out->n >= want && qscore_recency(now_hlc, hlc, half_life_ms) <
                                  qscore_recency(now_hlc, out->aux[out->n - 1], half_life_ms)) {
            rc = STRATA_NOTFOUND;
            break;
        }
        if ((rc = qids_push(out, q_be64_get((const uint8_t *)k.data + 8), hlc))) break;
        rc = strata_cursor_prev(c);
    }
    strata_cursor_close(c);
    return rc == STRATA_NOTFOUND ? STRATA_OK : rc;
}
