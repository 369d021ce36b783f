/* db/ttl.c - TTL tables: expiry-prefixed values, the expiry index
 * "__ttl:NAME" keyed (u64 BE expiry ms, key) with empty values, lazy filtering
 * and bounded purging.
 * Invariants: (1) an entry is live iff its expiry is 0 or > now (db clock);
 * (2) the index lists exactly the entries with a non-zero expiry; (3) purge
 * removes oldest expiries first and at most `max` per call. */
#include <stdlib.h>
#include <string.h>

#include "db_int.h"

static int is_ttl(const strata_table *t) { return (t->desc.flags & CAT_FLAG_TTL) != 0; }

int db_ttl_decode(strata_table *t, const bt_val *v, strata_slice *val, uint64_t *expiry, int *live) {
    if (v->len < TTL_PREFIX_LEN) return CORRUPT(t->txn->db->p, t->tree.root);
    uint64_t e = le64_get(v->data);
    val->data = v->data + TTL_PREFIX_LEN;
    val->len = v->len - TTL_PREFIX_LEN;
    if (expiry) *expiry = e;
    *live = e == 0 || e > db_now_ms(t->txn->db);
    return STRATA_OK;
}

int db_ttl_index(strata_table *t, strata_table **out) {
    if (t->ttl_index && !t->ttl_index->dropped) { *out = t->ttl_index; return STRATA_OK; }
    char name[CAT_NAME_MAX + 8];
    memcpy(name, TTL_INDEX_PREFIX, sizeof TTL_INDEX_PREFIX - 1);
    strcpy(name + sizeof TTL_INDEX_PREFIX - 1, t->name);
    int rc = db_internal_open(t->txn, name, t->txn->write, &t->ttl_index);
    if (rc) return rc;
    *out = t->ttl_index;
    return STRATA_OK;
}

int db_ttl_index_update(strata_table *t, strata_slice key, uint64_t old_exp, uint64_t new_exp) {
    if (old_exp == new_exp) return STRATA_OK;
    strata_table *ix;
    int rc = db_ttl_index(t, &ix);
    if (rc) return rc;
    uint8_t buf[TTL_PREFIX_LEN + 16384];
    if (key.len > sizeof buf - TTL_PREFIX_LEN) return STRATA_ETOOBIG;
    if (key.len) memcpy(buf + TTL_PREFIX_LEN, key.data, key.len);
    db_table_touched(ix);
    if (old_exp) {
        be64_put(buf, old_exp);
        rc = bt_del(&t->txn->cx, &ix->tree, buf, TTL_PREFIX_LEN + key.len);
        if (rc && rc != STRATA_NOTFOUND) return rc;
    }
    if (new_exp) {
        be64_put(buf, new_exp);
        return bt_put(&t->txn->cx, &ix->tree, buf, TTL_PREFIX_LEN + key.len, NULL, 0, 0, NULL);
    }
    return STRATA_OK;
}

int db_ttl_expired_count(strata_table *t, uint64_t *n) {
    *n = 0;
    strata_table *ix;
    int rc = db_ttl_index(t, &ix);
    if (rc == STRATA_NOTFOUND) return STRATA_OK;
    if (rc) return rc;
    uint64_t now = db_now_ms(t->txn->db);
    bt_cursor c;
    bt_cursor_init(&c, &t->txn->cx, &ix->tree);
    for (rc = bt_cursor_first(&c); rc == STRATA_OK; rc = bt_cursor_next(&c)) {
        bt_val k;
        if ((rc = bt_cursor_get(&c, &k, NULL))) return rc;
        if (k.len < TTL_PREFIX_LEN) return CORRUPT(t->txn->db->p, ix->tree.root);
        if (be64_get(k.data) > now) break;
        (*n)++;
    }
    return rc == STRATA_NOTFOUND ? STRATA_OK : rc;
}

static int ttl_put(strata_table *t, strata_slice key, strata_slice val, uint64_t at) {
    int rc = db_table_check(t, 1);
    if (rc) return rc;
    if (!is_ttl(t)) return STRATA_ETYPE;
    if ((!key.data && key.len) || (!val.data && val.len)) return STRATA_EINVAL;
    if ((rc = db_key_check(t, key.data, key.len))) return rc;
    if (key.len > bt_max_key(t->txn->db->p->ps) - TTL_PREFIX_LEN) return STRATA_ETOOBIG;  /* no wrap */
    rc = db_write(t, key, val, at, STRATA_CHANGE_PUT);
    db_txn_poison(t->txn, rc);
    return rc;
}

int strata_put_ttl(strata_table *t, strata_slice key, strata_slice val, int64_t ttl_ms) {
    if (!t || t->magic != TBL_MAGIC) return STRATA_EINVAL;
    if (ttl_ms <= 0) return STRATA_EINVAL;
    uint64_t now = db_now_ms(t->txn->db);
    uint64_t at = (uint64_t)ttl_ms > UINT64_MAX - now ? UINT64_MAX : now + (uint64_t)ttl_ms;
    return ttl_put(t, key, val, at);
}

int strata_put_expire_at(strata_table *t, strata_slice key, strata_slice val, uint64_t at) {
    if (!t || t->magic != TBL_MAGIC) return STRATA_EINVAL;
    if (at <= db_now_ms(t->txn->db)) return STRATA_EINVAL;
    return ttl_put(t, key, val, at);
}

int strata_ttl_expiry(strata_table *t, strata_slice key, uint64_t *expire_at_ms) {
    int rc = db_table_check(t, 0);
    if (rc) return rc;
    if (!expire_at_ms || (!key.data && key.len)) return STRATA_EINVAL;
    if (!is_ttl(t)) return STRATA_ETYPE;
    bt_val v;
    if ((rc = bt_get(&t->txn->cx, &t->tree, key.data, key.len, &v))) return rc;
    strata_slice uv;
    uint64_t e;
    int live;
    if ((rc = db_ttl_decode(t, &v, &uv, &e, &live))) return rc;
    if (!live) return STRATA_NOTFOUND;
    *expire_at_ms = e;
    return STRATA_OK;
}

int strata_purge_expired(strata_table *t, uint64_t max, uint64_t *n_purged) {
    int rc = db_table_check(t, 1);
    if (rc) return rc;
    if (!is_ttl(t)) return STRATA_ETYPE;
    strata_table *ix;
    uint64_t n = 0;
    if ((rc = db_ttl_index(t, &ix))) goto out;
    bt_ctx *cx = &t->txn->cx;
    uint64_t now = db_now_ms(t->txn->db);
    uint8_t buf[TTL_PREFIX_LEN + 16384];
    while (!max || n < max) {
        bt_cursor c;
        bt_cursor_init(&c, cx, &ix->tree);
        if ((rc = bt_cursor_first(&c))) break;
        bt_val k;
        if ((rc = bt_cursor_get(&c, &k, NULL))) break;
        if (k.len < TTL_PREFIX_LEN || k.len > sizeof buf) { rc = CORRUPT(cx->p, ix->tree.root); break; }
        uint64_t exp = be64_get(k.data);
        if (exp > now) break;
        size_t klen = k.len;
        memcpy(buf, k.data, klen);
        strata_slice ukey = { buf + TTL_PREFIX_LEN, klen - TTL_PREFIX_LEN };
        bt_val v;
        rc = bt_get(cx, &t->tree, ukey.data, ukey.len, &v);
        if (rc == STRATA_OK && v.len >= TTL_PREFIX_LEN && le64_get(v.data) == exp) {
            db_table_touched(t);
            rc = bt_del(cx, &t->tree, ukey.data, ukey.len);
            if (rc == STRATA_OK && (t->desc.flags & CAT_FLAG_CDC))
                rc = db_cdc_record(t, STRATA_CHANGE_DEL, ukey, NULL);
        } else if (rc == STRATA_NOTFOUND || rc == STRATA_OK) {
            rc = STRATA_OK;                      /* stale index entry: drop it */
        }
        if (rc) break;
        db_table_touched(ix);
        if ((rc = bt_del(cx, &ix->tree, buf, klen))) break;
        n++;
    }
out:
    if (rc == STRATA_NOTFOUND) rc = STRATA_OK;
    if (rc) { db_txn_poison(t->txn, rc); return rc; }
    if (n_purged) *n_purged = n;
    return STRATA_OK;
}
