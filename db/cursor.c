/* db/cursor.c - public cursors: positioning, optional range bounds in both
 * directions, and surviving writes to their table.
 * When the table is written, every open cursor saves its current tree key and
 * becomes stale; its next call re-seeks to that key (or, if it was deleted, to
 * the entry after it), so a cursor sees the transaction's own writes.
 * Invariants: (1) a positioned cursor is inside its range; (2) a cursor is
 * freed by strata_cursor_close or with its table at transaction end. */
#include <stdlib.h>
#include <string.h>

#include "db_int.h"

static int cur_check(strata_cursor *c) {
    if (!c || c->magic != CUR_MAGIC) return STRATA_EINVAL;
    return db_table_check(c->t, 0);
}

static int is_mm(const strata_table *t) { return (t->desc.flags & CAT_FLAG_MULTIMAP) != 0; }

static int user_key(const strata_table *t, bt_val k, strata_slice *uk) {
    if (!is_mm(t)) { uk->data = k.data; uk->len = k.len; return STRATA_OK; }
    strata_slice uv;
    return db_mm_split(k.data, k.len, uk, &uv);
}

static int ucmp(const strata_table *t, strata_slice a, const uint8_t *b, size_t blen) {
    if (is_mm(t)) return t->mm.cmp(t->mm.ctx, a.data, a.len, b, blen);
    return t->tree.cmp(t->tree.cmp_ctx, a.data, a.len, b, blen);
}

/* Whether the entry under the cursor is live (TTL tables: not expired). */
static int live(strata_cursor *c) {
    if (!(c->t->desc.flags & CAT_FLAG_TTL)) return 1;
    bt_val k, v;
    strata_slice uv;
    int alive = 0;
    if (bt_cursor_get(&c->bc, &k, &v) || db_ttl_decode(c->t, &v, &uv, NULL, &alive)) return 0;
    return alive;
}

/* 0: inside the range; -1: before lo; 1: after hi. */
static int range_pos(strata_cursor *c) {
    bt_val k;
    strata_slice uk;
    if (bt_cursor_get(&c->bc, &k, NULL) || user_key(c->t, k, &uk)) return 1;
    if (c->has_lo) {
        int r = ucmp(c->t, uk, c->lo, c->lo_len);
        if (r < 0 || (r == 0 && (c->range_flags & STRATA_LO_EXCL))) return -1;
    }
    if (c->has_hi) {
        int r = ucmp(c->t, uk, c->hi, c->hi_len);
        if (r > 0 || (r == 0 && !(c->range_flags & STRATA_HI_INCL))) return 1;
    }
    return 0;
}

/* After a positioning step in direction dir (0 forward, 1 backward): skip
 * entries before the range going forward / after it going backward, stop at
 * the far bound. */
static int settle_filter(strata_cursor *c, int rc, int dir) {
    while (rc == STRATA_OK) {
        int pos = range_pos(c);
        if (pos == 0 && live(c)) return STRATA_OK;
        if ((pos > 0 && dir == 0) || (pos < 0 && dir == 1)) break;
        rc = dir ? bt_cursor_prev(&c->bc) : bt_cursor_next(&c->bc);
    }
    c->bc.depth = 0;
    return rc == STRATA_OK ? STRATA_NOTFOUND : rc;
}
static inline int settle(strata_cursor *c, int rc, int dir) {
    if (!c->has_lo && !c->has_hi && !(c->t->desc.flags & CAT_FLAG_TTL)) {
        if (rc != STRATA_OK) c->bc.depth = 0;
        return rc;                                  /* nothing to filter: the fast path */
    }
    return settle_filter(c, rc, dir);
}

int db_cursor_save(strata_cursor *c) {
    if (c->stale) return STRATA_OK;
    bt_val k;
    if (bt_cursor_get(&c->bc, &k, NULL) != STRATA_OK) { c->bc.depth = 0; return STRATA_OK; }
    if (k.len > c->saved_cap) {
        uint8_t *s = realloc(c->saved, k.len);
        if (!s) { c->bc.depth = 0; return STRATA_ENOMEM; }
        c->saved = s;
        c->saved_cap = k.len;
    }
    memcpy(c->saved, k.data, k.len);
    c->saved_len = k.len;
    c->stale = 1;
    c->bc.depth = 0;
    return STRATA_OK;
}

/* Re-seek a stale cursor. *exact says whether the saved entry still exists. */
static int restore(strata_cursor *c, int *exact) {
    *exact = 0;
    if (!c->stale) return STRATA_OK;
    c->stale = 0;
    return bt_cursor_seek(&c->bc, c->saved, c->saved_len, exact);
}

int strata_cursor_open(strata_table *t, strata_cursor **out) {
    int rc = db_table_check(t, 0);
    if (rc) return rc;
    if (!out) return STRATA_EINVAL;
    strata_cursor *c = calloc(1, sizeof *c);
    if (!c) return STRATA_ENOMEM;
    c->magic = CUR_MAGIC;
    c->t = t;
    bt_cursor_init(&c->bc, &t->txn->cx, &t->tree);
    c->next = t->cursors;
    t->cursors = c;
    *out = c;
    return STRATA_OK;
}

void db_cursor_free(strata_cursor *c) {
    c->magic = DEAD_MAGIC;
    free(c->saved);
    free(c->lo);
    free(c->hi);
    free(c);
}

void strata_cursor_close(strata_cursor *c) {
    if (!c || c->magic != CUR_MAGIC) return;
    for (strata_cursor **pp = &c->t->cursors; *pp; pp = &(*pp)->next) {
        if (*pp == c) { *pp = c->next; break; }
    }
    db_cursor_free(c);
}

/* Seek the tree to the first entry whose user key is >= key (or > key). */
static int seek_user(strata_cursor *c, const uint8_t *key, size_t len, int *exact) {
    if (!is_mm(c->t)) return bt_cursor_seek(&c->bc, key, len, exact);
    uint8_t buf[16384];
    if (len > sizeof buf - 2) return STRATA_ETOOBIG;          /* not len + 2: it can wrap */
    le16_put(buf, (uint16_t)len);
    if (len) memcpy(buf + 2, key, len);
    int rc = bt_cursor_seek(&c->bc, buf, len + 2, exact);
    if (rc == STRATA_OK) {
        bt_val k;
        strata_slice uk;
        if ((rc = bt_cursor_get(&c->bc, &k, NULL)) == STRATA_OK && (rc = user_key(c->t, k, &uk)) == STRATA_OK)
            *exact = ucmp(c->t, uk, key, len) == 0;
    }
    return rc;
}

int strata_cursor_first(strata_cursor *c) {
    int rc = cur_check(c);
    if (rc) return rc;
    c->stale = 0;
    int exact;
    if (c->has_lo) rc = seek_user(c, c->lo, c->lo_len, &exact);
    else rc = bt_cursor_first(&c->bc);
    return settle(c, rc, 0);
}

/* Position on the last entry whose user key is <= key (incl) or < key. */
static int seek_before(strata_cursor *c, const uint8_t *key, size_t len, int incl) {
    int exact;
    int rc = seek_user(c, key, len, &exact);
    if (rc == STRATA_NOTFOUND) return bt_cursor_last(&c->bc);
    if (rc) return rc;
    if (incl && exact && is_mm(c->t)) {
        /* the last value of key: walk forward while the key matches */
        for (;;) {
            rc = bt_cursor_next(&c->bc);
            if (rc == STRATA_NOTFOUND) return bt_cursor_last(&c->bc);
            if (rc) return rc;
            bt_val k;
            strata_slice uk;
            if ((rc = bt_cursor_get(&c->bc, &k, NULL)) || (rc = user_key(c->t, k, &uk))) return rc;
            if (ucmp(c->t, uk, key, len) != 0) return bt_cursor_prev(&c->bc);
        }
    }
    if (incl && exact) return STRATA_OK;
    return bt_cursor_prev(&c->bc);
}

int strata_cursor_last(strata_cursor *c) {
    int rc = cur_check(c);
    if (rc) return rc;
    c->stale = 0;
    if (c->has_hi) rc = seek_before(c, c->hi, c->hi_len, (c->range_flags & STRATA_HI_INCL) != 0);
    else rc = bt_cursor_last(&c->bc);
    return settle(c, rc, 1);
}

static int key_arg(strata_cursor *c, strata_slice key) {
    if (!key.data && key.len) return STRATA_EINVAL;
    return db_key_check(c->t, key.data, key.len);
}

int strata_cursor_seek(strata_cursor *c, strata_slice key) {
    int rc = cur_check(c);
    if (rc || (rc = key_arg(c, key))) return rc;
    c->stale = 0;
    int exact;
    rc = seek_user(c, key.data, key.len, &exact);
    return settle(c, rc, 0);
}

int strata_cursor_seek_exact(strata_cursor *c, strata_slice key) {
    int rc = cur_check(c);
    if (rc || (rc = key_arg(c, key))) return rc;
    c->stale = 0;
    int exact;
    rc = seek_user(c, key.data, key.len, &exact);
    if (rc == STRATA_OK && (!exact || range_pos(c) != 0 || !live(c))) rc = STRATA_NOTFOUND;
    if (rc) c->bc.depth = 0;
    return rc;
}

int strata_cursor_seek_le(strata_cursor *c, strata_slice key) {
    int rc = cur_check(c);
    if (rc || (rc = key_arg(c, key))) return rc;
    c->stale = 0;
    rc = seek_before(c, key.data, key.len, 1);
    return settle(c, rc, 1);
}

int strata_cursor_next(strata_cursor *c) {
    int rc = cur_check(c);
    if (rc) return rc;
    int exact, was_stale = c->stale;
    if ((rc = restore(c, &exact))) { c->bc.depth = 0; return rc; }
    if (!was_stale || exact) {
        if (c->bc.depth == 0) return STRATA_NOTFOUND;
        rc = bt_cursor_next(&c->bc);
    }
    return settle(c, rc, 0);
}

int strata_cursor_prev(strata_cursor *c) {
    int rc = cur_check(c);
    if (rc) return rc;
    int exact, was_stale = c->stale;
    rc = restore(c, &exact);
    if (was_stale && rc == STRATA_NOTFOUND) rc = bt_cursor_last(&c->bc);
    else if (rc == STRATA_OK) {
        if (!was_stale && c->bc.depth == 0) return STRATA_NOTFOUND;
        rc = bt_cursor_prev(&c->bc);
    }
    return settle(c, rc, 1);
}

int strata_cursor_get(strata_cursor *c, strata_slice *key, strata_slice *val) {
    int rc = cur_check(c);
    if (rc) return rc;
    int exact;
    if ((rc = restore(c, &exact))) { c->bc.depth = 0; return rc; }
    if (c->bc.depth && (c->has_lo || c->has_hi || (c->t->desc.flags & CAT_FLAG_TTL)) &&
        (range_pos(c) != 0 || !live(c)))
        c->bc.depth = 0;
    bt_val k, v;
    if ((rc = bt_cursor_get(&c->bc, &k, &v))) return rc;
    strata_slice uk, uv = { v.data, v.len };
    int alive;
    if ((c->t->desc.flags & CAT_FLAG_TTL) && (rc = db_ttl_decode(c->t, &v, &uv, NULL, &alive))) return rc;
    if ((c->t->desc.flags & CAT_FLAG_COMPRESS) && (rc = db_decompress(c->t, v.data, v.len, &uv))) return rc;
    if (is_mm(c->t)) {
        if ((rc = db_mm_split(k.data, k.len, &uk, &uv))) return rc;
    } else {
        uk.data = k.data;
        uk.len = k.len;
    }
    /* field by field: a whole-struct copy of a just-built temporary makes the
     * compiler load 16 bytes over two 8-byte stores, a store-forwarding stall
     * on the scan fast path */
    if (key) { key->data = uk.data; key->len = uk.len; }
    if (val) { val->data = uv.data; val->len = uv.len; }
    return STRATA_OK;
}

/* A malloc'd copy of bound s into *dst (NULL for no bound). */
static int copy_bound(uint8_t **dst, const strata_slice *s) {
    *dst = NULL;
    if (!s) return STRATA_OK;
    if (!(*dst = malloc(s->len ? s->len : 1))) return STRATA_ENOMEM;
    if (s->len) memcpy(*dst, s->data, s->len);
    return STRATA_OK;
}

int strata_cursor_set_range(strata_cursor *c, const strata_slice *lo, const strata_slice *hi,
                            unsigned flags) {
    int rc = cur_check(c);
    if (rc) return rc;
    if (flags & ~(STRATA_LO_EXCL | STRATA_HI_INCL)) return STRATA_EINVAL;
    if ((lo && key_arg(c, *lo)) || (hi && key_arg(c, *hi))) return STRATA_EINVAL;
    uint8_t *nlo, *nhi = NULL;   /* copied first: on ENOMEM the old range stays as it was */
    if ((rc = copy_bound(&nlo, lo)) || (rc = copy_bound(&nhi, hi))) {
        free(nlo);
        return rc;
    }
    free(c->lo);
    free(c->hi);
    c->lo = nlo;
    c->hi = nhi;
    c->lo_len = lo ? lo->len : 0;
    c->hi_len = hi ? hi->len : 0;
    c->has_lo = lo != NULL;
    c->has_hi = hi != NULL;
    c->range_flags = flags;
    c->bc.depth = 0;
    c->stale = 0;
    return STRATA_OK;
}
