/* db/merge.c - merge operators: read-modify-write of one value inside the
 * write transaction (one read and one in-place or copy-on-write update).
 * Invariants: (1) numeric operators need 8-byte values and operands, else
 * STRATA_EINVAL before anything is written; (2) an absent (or expired) key
 * merges into the operator's identity; (3) a TTL entry keeps its expiry. */
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "db_int.h"

static double f64_get(const uint8_t *p) {
    uint64_t u = le64_get(p);
    double d;
    memcpy(&d, &u, sizeof d);
    return d;
}

static void f64_put(uint8_t *p, double d) {
    uint64_t u;
    memcpy(&u, &d, sizeof u);
    le64_put(p, u);
}

/* Numeric operators: out (8 bytes) from existing (NULL = absent) and operand. */
static int merge_num(strata_merge_op op, const uint8_t *ex, const uint8_t *opd, uint8_t *out) {
    uint64_t a = ex ? le64_get(ex) : 0, b = le64_get(opd), r;
    int64_t sa = (int64_t)a, sb = (int64_t)b;
    switch (op) {
    case STRATA_MERGE_ADD_U64: case STRATA_MERGE_ADD_I64: r = a + b; break;
    case STRATA_MERGE_SATADD_U64: r = a + b < a ? UINT64_MAX : a + b; break;
    case STRATA_MERGE_SATADD_I64: {
        int64_t s;
        if (__builtin_add_overflow(sa, sb, &s)) s = sb > 0 ? INT64_MAX : INT64_MIN;
        r = (uint64_t)s;
        break;
    }
    case STRATA_MERGE_MAX_U64: r = !ex || b > a ? b : a; break;
    case STRATA_MERGE_MIN_U64: r = !ex || b < a ? b : a; break;
    case STRATA_MERGE_MAX_I64: r = !ex || sb > sa ? b : a; break;
    case STRATA_MERGE_MIN_I64: r = !ex || sb < sa ? b : a; break;
    case STRATA_MERGE_ADD_F64: case STRATA_MERGE_MAX_F64: case STRATA_MERGE_MIN_F64: {
        double x = ex ? f64_get(ex) : 0.0, y = f64_get(opd), z;
        if (isnan(y) || (ex && isnan(x))) return STRATA_EINVAL;
        if (op == STRATA_MERGE_ADD_F64) z = x + y;
        else if (op == STRATA_MERGE_MAX_F64) z = !ex || y > x ? y : x;
        else z = !ex || y < x ? y : x;
        f64_put(out, z);
        return STRATA_OK;
    }
    default: return STRATA_EINVAL;
    }
    le64_put(out, r);
    return STRATA_OK;
}

/* Existing live value of key (found = 0 if absent or expired) and its expiry. */
static int existing(strata_table *t, strata_slice key, strata_slice *val, int *found, uint64_t *expiry) {
    bt_val v;
    *found = 0;
    *expiry = 0;
    int rc = bt_get(&t->txn->cx, &t->tree, key.data, key.len, &v);
    if (rc == STRATA_NOTFOUND) return STRATA_OK;
    if (rc) return rc;
    if (t->desc.flags & CAT_FLAG_TTL) {
        int live;
        if ((rc = db_ttl_decode(t, &v, val, expiry, &live))) return rc;
        if (!live) { *expiry = 0; return STRATA_OK; }
    } else if (t->desc.flags & CAT_FLAG_COMPRESS) {
        if ((rc = db_decompress(t, v.data, v.len, val))) return rc;
    } else {
        val->data = v.data;
        val->len = v.len;
    }
    *found = 1;
    return STRATA_OK;
}

static int check(strata_table *t, strata_slice key, strata_slice operand) {
    int rc = db_table_check(t, 1);
    if (rc) return rc;
    if ((!key.data && key.len) || (!operand.data && operand.len)) return STRATA_EINVAL;
    if (t->desc.flags & (CAT_FLAG_MULTIMAP | CAT_FLAG_VECTOR)) return STRATA_EINVAL;
    if ((rc = db_key_check(t, key.data, key.len))) return rc;
    if (operand.len > UINT32_MAX) return STRATA_ETOOBIG;    /* no value is larger: sums stay in range */
    return key.len > bt_max_key(t->txn->db->p->ps) ? STRATA_ETOOBIG : STRATA_OK;
}

int strata_merge(strata_table *t, strata_slice key, strata_slice operand, strata_merge_op op) {
    int rc = check(t, key, operand);
    if (rc) return rc;
    if (op < STRATA_MERGE_ADD_U64 || op > STRATA_MERGE_APPEND) return STRATA_EINVAL;
    strata_slice ex;
    int found;
    uint64_t expiry;
    if ((rc = existing(t, key, &ex, &found, &expiry))) return rc;
    uint8_t num[8];
    strata_slice out = { num, 8 };
    uint8_t *heap = NULL;
    if (op == STRATA_MERGE_APPEND || op == STRATA_MERGE_OR) {
        size_t len = op == STRATA_MERGE_APPEND ? (found ? ex.len : 0) + operand.len : operand.len;
        if (op == STRATA_MERGE_OR && found && ex.len != operand.len) return STRATA_EINVAL;
        if (len > UINT32_MAX) return STRATA_ETOOBIG;
        if (!(heap = malloc(len ? len : 1))) return STRATA_ENOMEM;
        size_t at = 0;
        if (op == STRATA_MERGE_APPEND && found && ex.len) { memcpy(heap, ex.data, ex.len); at = ex.len; }
        if (operand.len) memcpy(heap + at, operand.data, operand.len);
        if (op == STRATA_MERGE_OR && found)
            for (size_t i = 0; i < len; i++) heap[i] |= ((const uint8_t *)ex.data)[i];
        out.data = heap;
        out.len = len;
    } else {
        if (operand.len != 8 || (found && ex.len != 8)) return STRATA_EINVAL;
        if ((rc = merge_num(op, found ? ex.data : NULL, operand.data, num))) return rc;
    }
    rc = db_write(t, key, out, expiry, STRATA_CHANGE_MERGE);
    free(heap);
    db_txn_poison(t->txn, rc);
    return rc;
}

int strata_merge_with(strata_table *t, strata_slice key, strata_slice operand, strata_merge_fn fn,
                      void *ctx) {
    int rc = check(t, key, operand);
    if (rc) return rc;
    if (!fn) return STRATA_EINVAL;
    strata_slice ex;
    int found;
    uint64_t expiry;
    if ((rc = existing(t, key, &ex, &found, &expiry))) return rc;
    size_t cap = 64 + operand.len + (found ? ex.len : 0), len = 0;
    uint8_t *buf = NULL;
    for (int round = 0; round < 2; round++) {
        uint8_t *nb = realloc(buf, cap);
        if (!nb) { free(buf); return STRATA_ENOMEM; }
        buf = nb;
        if (fn(ctx, found ? &ex : NULL, operand, buf, cap, &len)) { free(buf); return STRATA_EINVAL; }
        if (len <= cap) break;
        if (round == 1) { free(buf); return STRATA_EINVAL; }   /* asked twice for more room */
        cap = len;
    }
    strata_slice out = { buf, len };
    rc = db_write(t, key, out, expiry, STRATA_CHANGE_MERGE);
    free(buf);
    db_txn_poison(t->txn, rc);
    return rc;
}
