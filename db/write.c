/* db/write.c - the one path for writing and deleting entries of plain and TTL
 * tables, so that the expiry index and change capture stay in step with the
 * data in the same transaction.
 * Invariants: (1) a TTL table's value is an 8-byte LE expiry (0 = never) then
 * the user value, and its index holds (u64 BE expiry, key) for every entry with
 * a non-zero expiry; (2) a change record is written in the same transaction as
 * the change it describes; (3) tables without TTL or CDC pay nothing extra. */
#include <float.h>
#include <stdlib.h>
#include <string.h>

#include "db_int.h"

int db_ensure_buf(uint8_t **buf, size_t *cap, size_t need) {
    if (need <= *cap && *buf) return STRATA_OK;
    uint8_t *n = realloc(*buf, need ? need : 1);
    if (!n) return STRATA_ENOMEM;
    *buf = n;
    *cap = need;
    return STRATA_OK;
}

/* A vector table's value: exactly dim finite little-endian f32 values with a
 * squared norm (summed in double) of at most FLT_MAX / 8: strata_vec_validate's
 * rule (vector/validate.c), restated because db/ does not depend on vector/.
 * Without the bound, one stored row made every L2 top-k of the table fail. */
static int vector_ok(const strata_table *t, strata_slice val) {
    if (val.len != (size_t)t->desc.dim * 4) return 0;
    const uint8_t *p = val.data;
    double s = 0.0;
    for (size_t i = 0; i < val.len; i += 4) {
        uint32_t u = le32_get(p + i);
        if ((u & 0x7F800000u) == 0x7F800000u) return 0;   /* Inf or NaN */
        float x;
        memcpy(&x, &u, sizeof x);
        s += (double)x * (double)x;
    }
    return s <= (double)FLT_MAX / 8.0;
}

int db_write(strata_table *t, strata_slice key, strata_slice val, uint64_t expiry, int op) {
    bt_ctx *cx = &t->txn->cx;
    int rc;
    /* the stored value (TTL: expiry prefix; compressed: at most a flag byte
     * more) must fit bt_put's limit: refused before any size sum or change record */
    size_t extra = (t->desc.flags & CAT_FLAG_TTL) ? TTL_PREFIX_LEN : (t->desc.flags & CAT_FLAG_COMPRESS) ? 1 : 0;
    if (val.len > UINT32_MAX - cx->p->ps - extra) return STRATA_ETOOBIG;
    if ((t->desc.flags & CAT_FLAG_VECTOR) && !vector_ok(t, val)) return STRATA_EINVAL;
    if (t->desc.flags & CAT_FLAG_COMPRESS) {
        if ((t->desc.flags & CAT_FLAG_CDC) && (rc = db_cdc_record(t, op, key, &val))) return rc;
        strata_slice stored;
        if ((rc = db_compress(t, val, &stored))) return rc;
        db_table_touched(t);
        return bt_put(cx, &t->tree, key.data, key.len, stored.data, stored.len, 0, NULL);
    }
    if (!(t->desc.flags & (CAT_FLAG_TTL | CAT_FLAG_CDC))) {
        db_table_touched(t);
        return bt_put(cx, &t->tree, key.data, key.len, val.data, val.len, 0, NULL);
    }
    /* refused before the change record: ETOOBIG leaves the txn usable */
    if ((t->desc.flags & CAT_FLAG_TTL) && key.len > bt_max_key(cx->p->ps) - TTL_PREFIX_LEN)
        return STRATA_ETOOBIG;
    if (t->desc.flags & CAT_FLAG_CDC) {          /* first: val may point into a page we change */
        if ((rc = db_cdc_record(t, op, key, &val))) return rc;
    }
    strata_slice stored = val;
    if (t->desc.flags & CAT_FLAG_TTL) {
        uint64_t old_exp = 0;
        bt_val old;
        rc = bt_get(cx, &t->tree, key.data, key.len, &old);
        if (rc == STRATA_OK) {
            if (old.len < TTL_PREFIX_LEN) return CORRUPT(cx->p, t->tree.root);
            old_exp = le64_get(old.data);
        } else if (rc != STRATA_NOTFOUND) {
            return rc;
        }
        if ((rc = db_ensure_buf(&t->vbuf, &t->vbuf_cap, TTL_PREFIX_LEN + val.len))) return rc;
        le64_put(t->vbuf, expiry);
        if (val.len) memmove(t->vbuf + TTL_PREFIX_LEN, val.data, val.len);
        stored.data = t->vbuf;
        stored.len = TTL_PREFIX_LEN + val.len;
        if ((rc = db_ttl_index_update(t, key, old_exp, expiry))) return rc;
    }
    db_table_touched(t);
    return bt_put(cx, &t->tree, key.data, key.len, stored.data, stored.len, 0, NULL);
}

int db_delete(strata_table *t, strata_slice key) {
    bt_ctx *cx = &t->txn->cx;
    int rc;
    if (!(t->desc.flags & (CAT_FLAG_TTL | CAT_FLAG_CDC))) {
        db_table_touched(t);
        return bt_del(cx, &t->tree, key.data, key.len);
    }
    bt_val old;
    if ((rc = bt_get(cx, &t->tree, key.data, key.len, &old))) return rc;
    int live = 1;
    if (t->desc.flags & CAT_FLAG_TTL) {
        strata_slice uv;
        uint64_t exp;
        if ((rc = db_ttl_decode(t, &old, &uv, &exp, &live))) return rc;
        if ((rc = db_ttl_index_update(t, key, exp, 0))) return rc;
    }
    if (live && (t->desc.flags & CAT_FLAG_CDC) && (rc = db_cdc_record(t, STRATA_CHANGE_DEL, key, NULL)))
        return rc;
    db_table_touched(t);
    if ((rc = bt_del(cx, &t->tree, key.data, key.len))) return rc;
    return live ? STRATA_OK : STRATA_NOTFOUND;     /* an expired entry was already gone */
}
