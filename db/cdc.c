/* db/cdc.c - change capture: one log table "__cdc:log" for the database, and
 * consumer positions in "__cdc:consumers".
 * Log key (12 bytes): u64 BE commit id, u32 BE sequence within the commit.
 * Log value: u8 version (1), u8 op, u16 LE table-name length N, u32 LE key
 * length K, u32 LE value length V (0xFFFFFFFF = no value), u64 LE commit HLC,
 * then N name bytes, K key bytes, V value bytes.
 * Consumer value (12 bytes): u64 LE commit id, u32 LE sequence (the last change
 * the consumer has read).
 * Invariants: (1) records are written in the transaction of the change, so they
 * commit or vanish with it; (2) keys increase with commit order; (3) pruning
 * never removes a record after the smallest consumer position. */
#include <stdlib.h>
#include <string.h>

#include "db_int.h"

enum { CDC_KEY_LEN = 12, CDC_HDR = 20, CDC_VERSION = 1 };
#define CDC_NO_VALUE 0xFFFFFFFFu

static int cdc_log(strata_txn *txn, strata_table **out) {
    if (txn->cdc_log && !txn->cdc_log->dropped) { *out = txn->cdc_log; return STRATA_OK; }
    int rc = db_internal_open(txn, CDC_LOG_NAME, txn->write, &txn->cdc_log);
    if (rc == STRATA_OK) *out = txn->cdc_log;
    return rc;
}

int db_cdc_record(strata_table *t, int op, strata_slice key, const strata_slice *val) {
    if (!(t->desc.flags & CAT_FLAG_CDC)) return STRATA_OK;
    strata_txn *txn = t->txn;
    strata_table *log;
    int rc = cdc_log(txn, &log);
    if (rc) return rc;
    size_t nlen = strlen(t->name), vlen = val ? val->len : 0;
    if (key.len > UINT32_MAX || vlen >= CDC_NO_VALUE) return STRATA_ETOOBIG;
    if ((rc = db_ensure_buf(&log->vbuf, &log->vbuf_cap, CDC_HDR + nlen + key.len + vlen))) return rc;
    uint8_t *b = log->vbuf;
    b[0] = CDC_VERSION;
    b[1] = (uint8_t)op;
    le16_put(b + 2, (uint16_t)nlen);
    le32_put(b + 4, (uint32_t)key.len);
    le32_put(b + 8, val ? (uint32_t)vlen : CDC_NO_VALUE);
    le64_put(b + 12, txn->hlc);
    memcpy(b + CDC_HDR, t->name, nlen);
    if (key.len) memcpy(b + CDC_HDR + nlen, key.data, key.len);
    if (vlen) memcpy(b + CDC_HDR + nlen + key.len, val->data, vlen);
    uint8_t k[CDC_KEY_LEN];
    be64_put(k, txn->snap.txnid + 1);
    be32_put(k + 8, txn->cdc_seq++);
    db_table_touched(log);
    return bt_put(&txn->cx, &log->tree, k, sizeof k, b, CDC_HDR + nlen + key.len + vlen, 0, NULL);
}

static int decode(const bt_val *k, const bt_val *v, strata_change *c) {
    if (k->len != CDC_KEY_LEN || v->len < CDC_HDR || v->data[0] != CDC_VERSION) return STRATA_ECORRUPT;
    const uint8_t *b = v->data;
    size_t nlen = le16_get(b + 2), klen = le32_get(b + 4), vlen = le32_get(b + 8);
    int has_val = vlen != CDC_NO_VALUE;
    if (!has_val) vlen = 0;
    if (CDC_HDR + nlen + klen + vlen != v->len) return STRATA_ECORRUPT;
    c->pos.txn_id = be64_get(k->data);
    c->pos.seq = be32_get(k->data + 8);
    c->op = b[1];
    c->hlc = le64_get(b + 12);
    c->table = (strata_slice){ b + CDC_HDR, nlen };
    c->key = (strata_slice){ b + CDC_HDR + nlen, klen };
    c->value = (strata_slice){ has_val ? b + CDC_HDR + nlen + klen : NULL, vlen };
    return STRATA_OK;
}

int strata_cdc_read(strata_txn *txn, const strata_cdc_pos *after, uint64_t max,
                    int (*fn)(void *ctx, const strata_change *c), void *ctx, strata_cdc_pos *last) {
    int rc = db_txn_check(txn, 0);
    if (rc) return rc;
    if (!fn) return STRATA_EINVAL;
    strata_table *log;
    if ((rc = cdc_log(txn, &log))) return rc == STRATA_NOTFOUND ? STRATA_OK : rc;
    bt_cursor c;
    bt_cursor_init(&c, &txn->cx, &log->tree);
    if (after) {
        uint8_t k[CDC_KEY_LEN];
        be64_put(k, after->txn_id);
        be32_put(k + 8, after->seq);
        int exact;
        rc = bt_cursor_seek(&c, k, sizeof k, &exact);
        if (rc == STRATA_OK && exact) rc = bt_cursor_next(&c);
    } else {
        rc = bt_cursor_first(&c);
    }
    for (uint64_t n = 0; rc == STRATA_OK && (!max || n < max); n++) {
        bt_val k, v;
        strata_change ch;
        if ((rc = bt_cursor_get(&c, &k, &v))) break;
        if (decode(&k, &v, &ch)) { rc = CORRUPT(txn->db->p, log->tree.root); break; }
        int r = fn(ctx, &ch);
        if (last) *last = ch.pos;
        if (r) return r;
        rc = bt_cursor_next(&c);
    }
    return rc == STRATA_NOTFOUND ? STRATA_OK : rc;
}

static int name_ok(const char *name) { return name && *name && strlen(name) <= 255; }

int strata_cdc_consumer_set(strata_txn *txn, const char *name, const strata_cdc_pos *pos) {
    int rc = db_txn_check(txn, 1);
    if (rc) return rc;
    if (!name_ok(name) || !pos) return STRATA_EINVAL;
    strata_table *t;
    if ((rc = db_internal_open(txn, CDC_CONS_NAME, txn->write, &t))) return rc;
    uint8_t v[12];
    le64_put(v, pos->txn_id);
    le32_put(v + 8, pos->seq);
    db_table_touched(t);
    rc = bt_put(&txn->cx, &t->tree, name, strlen(name), v, sizeof v, 0, NULL);
    db_txn_poison(txn, rc);
    return rc;
}

int strata_cdc_consumer_get(strata_txn *txn, const char *name, strata_cdc_pos *pos) {
    int rc = db_txn_check(txn, 0);
    if (rc) return rc;
    if (!name_ok(name) || !pos) return STRATA_EINVAL;
    strata_table *t;
    if ((rc = db_internal_open(txn, CDC_CONS_NAME, txn->write, &t))) return rc;
    bt_val v;
    if ((rc = bt_get(&txn->cx, &t->tree, name, strlen(name), &v))) return rc;
    if (v.len != 12) return CORRUPT(txn->db->p, t->tree.root);
    pos->txn_id = le64_get(v.data);
    pos->seq = le32_get(v.data + 8);
    return STRATA_OK;
}

int strata_cdc_consumer_drop(strata_txn *txn, const char *name) {
    int rc = db_txn_check(txn, 1);
    if (rc) return rc;
    if (!name_ok(name)) return STRATA_EINVAL;
    strata_table *t;
    if ((rc = db_internal_open(txn, CDC_CONS_NAME, txn->write, &t))) return rc;
    db_table_touched(t);
    rc = bt_del(&txn->cx, &t->tree, name, strlen(name));
    if (rc != STRATA_NOTFOUND) db_txn_poison(txn, rc);
    return rc;
}

/* The smallest consumer position; *any = 0 when no consumer is registered. */
static int min_consumer(strata_txn *txn, uint8_t key[CDC_KEY_LEN], int *any) {
    *any = 0;
    strata_table *t;
    int rc = db_internal_open(txn, CDC_CONS_NAME, txn->write, &t);
    if (rc) return rc;
    bt_cursor c;
    bt_cursor_init(&c, &txn->cx, &t->tree);
    for (rc = bt_cursor_first(&c); rc == STRATA_OK; rc = bt_cursor_next(&c)) {
        bt_val k, v;
        if ((rc = bt_cursor_get(&c, &k, &v))) return rc;
        if (v.len != 12) return CORRUPT(txn->db->p, t->tree.root);
        uint8_t p[CDC_KEY_LEN];
        be64_put(p, le64_get(v.data));
        be32_put(p + 8, le32_get(v.data + 8));
        if (!*any || memcmp(p, key, CDC_KEY_LEN) < 0) memcpy(key, p, CDC_KEY_LEN);
        *any = 1;
    }
    return rc == STRATA_NOTFOUND ? STRATA_OK : rc;
}

int strata_cdc_prune(strata_txn *txn, uint64_t max_age_ms, uint64_t max_count, uint64_t *n_pruned) {
    int rc = db_txn_check(txn, 1);
    if (rc) return rc;
    strata_table *log;
    uint64_t n = 0;
    uint8_t floor[CDC_KEY_LEN];
    int any;
    if ((rc = cdc_log(txn, &log)) || (rc = min_consumer(txn, floor, &any))) goto out;
    uint64_t now = db_now_ms(txn->db);
    for (;;) {
        bt_cursor c;
        bt_cursor_init(&c, &txn->cx, &log->tree);
        if ((rc = bt_cursor_first(&c))) break;
        bt_val k, v;
        strata_change ch;
        if ((rc = bt_cursor_get(&c, &k, &v))) break;
        if (decode(&k, &v, &ch)) { rc = CORRUPT(txn->db->p, log->tree.root); break; }
        int over_count = max_count && log->tree.count > max_count;
        uint64_t phys = STRATA_HLC_PHYS_MS(ch.hlc);      /* no phys + age: it can wrap */
        int too_old = max_age_ms && phys < now && now - phys > max_age_ms;
        if (!over_count && !too_old) break;
        if (any && memcmp(k.data, floor, CDC_KEY_LEN) > 0) break;   /* unread by a consumer */
        uint8_t key[CDC_KEY_LEN];
        memcpy(key, k.data, CDC_KEY_LEN);
        db_table_touched(log);
        if ((rc = bt_del(&txn->cx, &log->tree, key, CDC_KEY_LEN))) break;
        n++;
    }
out:
    if (rc == STRATA_NOTFOUND) rc = STRATA_OK;
    if (rc) { db_txn_poison(txn, rc); return rc; }
    if (n_pruned) *n_pruned = n;
    return STRATA_OK;
}
