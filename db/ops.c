/* db/ops.c - key-value operations on a table: put, get, del, len, first/last,
 * pop, range delete, retain, append, and the multimap forms.
 * Multimap entries are B-tree keys (u16 LE key length, key, value) with empty
 * B-tree values, ordered by the key comparator and then by value bytes.
 * Invariants: (1) every write first saves the positions of the table's open
 * cursors (db_table_touched) so they re-seek afterwards; (2) a failure after a
 * page was changed poisons the transaction; argument errors do not. */
#include <stdlib.h>
#include <string.h>

#include "db_int.h"

enum { MM_KEY_MAX = 16384 };

void db_table_touched(strata_table *t) {
    t->dirty = 1;
    for (strata_cursor *c = t->cursors; c; c = c->next) (void)db_cursor_save(c);
}

static int is_mm(const strata_table *t) { return (t->desc.flags & CAT_FLAG_MULTIMAP) != 0; }
static int is_ttl(const strata_table *t) { return (t->desc.flags & CAT_FLAG_TTL) != 0; }

static int slice_ok(strata_slice s) { return s.data || !s.len; }

/* Composite key into buf (>= MM_KEY_MAX bytes). */
static int mm_compose(strata_table *t, strata_slice key, strata_slice val, uint8_t *buf, size_t *len) {
    size_t max = bt_max_key(t->txn->db->p->ps);
    if (key.len > max || val.len > max) return STRATA_ETOOBIG;   /* first: the sum may not wrap */
    size_t need = 2 + key.len + val.len;
    if (key.len > 0xFFFF || need > max) return STRATA_ETOOBIG;
    le16_put(buf, (uint16_t)key.len);
    if (key.len) memcpy(buf + 2, key.data, key.len);
    if (val.len) memcpy(buf + 2 + key.len, val.data, val.len);
    *len = need;
    return STRATA_OK;
}

int db_mm_split(const uint8_t *k, size_t len, strata_slice *key, strata_slice *val) {
    if (len < 2 || le16_get(k) > len - 2) return STRATA_ECORRUPT;
    size_t kl = le16_get(k);
    key->data = k + 2; key->len = kl;
    val->data = k + 2 + kl; val->len = len - 2 - kl;
    return STRATA_OK;
}

/* The user-visible key of a tree key. */
static int user_key(const strata_table *t, bt_val k, strata_slice *key, strata_slice *val) {
    if (!is_mm(t)) { key->data = k.data; key->len = k.len; return STRATA_OK; }
    return db_mm_split(k.data, k.len, key, val);
}

/* The user view of an entry; *live = 0 for an expired TTL entry. */
static int entry_view(strata_table *t, bt_val k, bt_val v, strata_slice *uk, strata_slice *uv, int *live) {
    *live = 1;
    uv->data = v.data;
    uv->len = v.len;
    if (is_ttl(t)) {
        int rc = db_ttl_decode(t, &v, uv, NULL, live);
        if (rc) return rc;
    } else if (t->desc.flags & CAT_FLAG_COMPRESS) {
        int rc = db_decompress(t, v.data, v.len, uv);
        if (rc) return rc;
    }
    return user_key(t, k, uk, uv);
}

static int key_cmp(const strata_table *t, strata_slice a, strata_slice b) {
    if (is_mm(t)) return t->mm.cmp(t->mm.ctx, a.data, a.len, b.data, b.len);
    return t->tree.cmp(t->tree.cmp_ctx, a.data, a.len, b.data, b.len);
}

static int check_write(strata_table *t, strata_slice key, strata_slice val) {
    int rc = db_table_check(t, 1);
    if (rc) return rc;
    if (!slice_ok(key) || !slice_ok(val)) return STRATA_EINVAL;
    return db_key_check(t, key.data, key.len);
}

static int finish(strata_table *t, int rc) {
    db_txn_poison(t->txn, rc);
    return rc;
}

int strata_put(strata_table *t, strata_slice key, strata_slice val) {
    int rc = check_write(t, key, val);
    if (rc) return rc;
    if (is_mm(t)) {
        uint8_t buf[MM_KEY_MAX];
        size_t len;
        if ((rc = mm_compose(t, key, val, buf, &len))) return rc;
        db_table_touched(t);
        return finish(t, bt_put(&t->txn->cx, &t->tree, buf, len, NULL, 0, 0, NULL));
    }
    if (key.len > bt_max_key(t->txn->db->p->ps)) return STRATA_ETOOBIG;
    return finish(t, db_write(t, key, val, 0, STRATA_CHANGE_PUT));
}

int strata_append(strata_table *t, strata_slice key, strata_slice val) {
    int rc = check_write(t, key, val);
    if (rc) return rc;
    if (is_mm(t) || (t->desc.flags & (CAT_FLAG_TTL | CAT_FLAG_CDC | CAT_FLAG_VECTOR))) return STRATA_EINVAL;
    if (key.len > bt_max_key(t->txn->db->p->ps)) return STRATA_ETOOBIG;
    strata_slice stored = val;                   /* compressed tables: flag byte first, as put */
    if ((t->desc.flags & CAT_FLAG_COMPRESS) && (rc = db_compress(t, val, &stored))) return rc;
    db_table_touched(t);
    return finish(t, bt_put(&t->txn->cx, &t->tree, key.data, key.len, stored.data, stored.len,
                            BT_APPEND, NULL));
}

/* Position c on the first entry of key (multimap) or key itself. */
static int seek_key(strata_table *t, bt_cursor *c, strata_slice key, int *found) {
    uint8_t buf[MM_KEY_MAX];
    size_t len;
    int exact, rc;
    *found = 0;
    if (!is_mm(t)) {
        rc = bt_cursor_seek(c, key.data, key.len, &exact);
        *found = rc == STRATA_OK && exact;
        return rc;
    }
    strata_slice none = { NULL, 0 };
    if ((rc = mm_compose(t, key, none, buf, &len))) return rc;
    rc = bt_cursor_seek(c, buf, len, &exact);
    if (rc) return rc;
    bt_val k;
    strata_slice uk, uv;
    if ((rc = bt_cursor_get(c, &k, NULL)) || (rc = db_mm_split(k.data, k.len, &uk, &uv))) return rc;
    *found = key_cmp(t, uk, key) == 0;
    return STRATA_OK;
}

int strata_get(strata_table *t, strata_slice key, strata_slice *val) {
    int rc = db_table_check(t, 0);
    if (rc) return rc;
    if (!val || !slice_ok(key)) return STRATA_EINVAL;
    if ((rc = db_key_check(t, key.data, key.len))) return rc;
    bt_ctx *cx = &t->txn->cx;
    if (!is_mm(t)) {
        bt_val v;
        if ((rc = bt_get(cx, &t->tree, key.data, key.len, &v))) return rc;
        if (is_ttl(t)) {
            int live;
            strata_slice uv;
            if ((rc = db_ttl_decode(t, &v, &uv, NULL, &live))) return rc;
            if (!live) return STRATA_NOTFOUND;
            *val = uv;
            return STRATA_OK;
        }
        if (t->desc.flags & CAT_FLAG_COMPRESS) return db_decompress(t, v.data, v.len, val);
        val->data = v.data;
        val->len = v.len;
        return STRATA_OK;
    }
    bt_cursor c;
    bt_cursor_init(&c, cx, &t->tree);
    int found;
    if ((rc = seek_key(t, &c, key, &found))) return rc;
    if (!found) return STRATA_NOTFOUND;
    bt_val k;
    strata_slice uk;
    if ((rc = bt_cursor_get(&c, &k, NULL))) return rc;
    return db_mm_split(k.data, k.len, &uk, val);
}

/* Delete every multimap value of key; *n counts them. */
static int mm_del_key(strata_table *t, strata_slice key, uint64_t *n) {
    bt_cursor c;
    bt_cursor_init(&c, &t->txn->cx, &t->tree);
    uint8_t buf[MM_KEY_MAX];
    *n = 0;
    for (;;) {
        int found, rc = seek_key(t, &c, key, &found);
        if (rc == STRATA_NOTFOUND || (rc == STRATA_OK && !found)) return STRATA_OK;
        if (rc) return rc;
        bt_val k;
        if ((rc = bt_cursor_get(&c, &k, NULL))) return rc;
        memcpy(buf, k.data, k.len);
        if ((rc = bt_del(&t->txn->cx, &t->tree, buf, k.len))) return rc;
        (*n)++;
    }
}

int strata_del(strata_table *t, strata_slice key) {
    strata_slice none = { NULL, 0 };
    int rc = check_write(t, key, none);
    if (rc) return rc;
    db_table_touched(t);
    if (is_mm(t)) {
        uint64_t n;
        rc = mm_del_key(t, key, &n);
        if (rc == STRATA_OK && n == 0) return STRATA_NOTFOUND;
        return finish(t, rc);
    }
    rc = db_delete(t, key);
    return rc == STRATA_NOTFOUND ? rc : finish(t, rc);
}

int strata_mm_del(strata_table *t, strata_slice key, strata_slice val) {
    int rc = check_write(t, key, val);
    if (rc) return rc;
    if (!is_mm(t)) return STRATA_ETYPE;
    uint8_t buf[MM_KEY_MAX];
    size_t len;
    if ((rc = mm_compose(t, key, val, buf, &len))) return rc == STRATA_ETOOBIG ? STRATA_NOTFOUND : rc;
    db_table_touched(t);
    rc = bt_del(&t->txn->cx, &t->tree, buf, len);
    return rc == STRATA_NOTFOUND ? rc : finish(t, rc);
}

int strata_mm_count(strata_table *t, strata_slice key, uint64_t *n) {
    int rc = db_table_check(t, 0);
    if (rc) return rc;
    if (!n || !slice_ok(key)) return STRATA_EINVAL;
    if (!is_mm(t)) return STRATA_ETYPE;
    bt_cursor c;
    bt_cursor_init(&c, &t->txn->cx, &t->tree);
    int found;
    uint64_t cnt = 0;
    rc = seek_key(t, &c, key, &found);
    while (rc == STRATA_OK && found) {
        cnt++;
        rc = bt_cursor_next(&c);
        if (rc == STRATA_OK) {
            bt_val k;
            strata_slice uk, uv;
            if ((rc = bt_cursor_get(&c, &k, NULL)) || (rc = db_mm_split(k.data, k.len, &uk, &uv))) break;
            found = key_cmp(t, uk, key) == 0;
        }
    }
    if (rc && rc != STRATA_NOTFOUND) return rc;
    *n = cnt;
    return STRATA_OK;
}

int strata_len(strata_table *t, uint64_t *n) {
    int rc = db_table_check(t, 0);
    if (rc) return rc;
    if (!n) return STRATA_EINVAL;
    uint64_t expired = 0;
    if (is_ttl(t) && (rc = db_ttl_expired_count(t, &expired))) return rc;
    *n = t->tree.count - (expired < t->tree.count ? expired : t->tree.count);
    return STRATA_OK;
}

/* Position c on the first (last) live entry going forward (backward). */
static int first_live(strata_table *t, bt_cursor *c, int rc, int back) {
    while (rc == STRATA_OK) {
        bt_val k, v;
        strata_slice uk, uv;
        int live;
        if ((rc = bt_cursor_get(c, &k, &v)) || (rc = entry_view(t, k, v, &uk, &uv, &live))) return rc;
        if (live) return STRATA_OK;
        rc = back ? bt_cursor_prev(c) : bt_cursor_next(c);
    }
    return rc;
}

/* The first (or last) live entry: its tree key k and user view uk/uv. */
static int edge_entry(strata_table *t, int last, bt_val *k, strata_slice *uk, strata_slice *uv) {
    bt_cursor c;
    bt_cursor_init(&c, &t->txn->cx, &t->tree);
    int rc = first_live(t, &c, last ? bt_cursor_last(&c) : bt_cursor_first(&c), last);
    bt_val v;
    int live;
    if (rc || (rc = bt_cursor_get(&c, k, &v))) return rc;
    return entry_view(t, *k, v, uk, uv, &live);
}

static int edge(strata_table *t, int last, strata_slice *key, strata_slice *val) {
    int rc = db_table_check(t, 0);
    if (rc) return rc;
    bt_val k;
    strata_slice uk, uv;
    if ((rc = edge_entry(t, last, &k, &uk, &uv))) return rc;
    if (key) *key = uk;
    if (val) *val = uv;
    return STRATA_OK;
}

int strata_first(strata_table *t, strata_slice *key, strata_slice *val) { return edge(t, 0, key, val); }
int strata_last(strata_table *t, strata_slice *key, strata_slice *val) { return edge(t, 1, key, val); }

static int pop(strata_table *t, int last, strata_slice *key, strata_slice *val) {
    int rc = db_table_check(t, 1);
    if (rc) return rc;
    bt_val k;
    strata_slice uk, uv;
    for (;;) {
        if ((rc = edge_entry(t, last, &k, &uk, &uv))) return rc == STRATA_NOTFOUND ? rc : finish(t, rc);
        size_t need = k.len + uv.len;
        if ((rc = db_ensure_buf(&t->scratch, &t->scratch_cap, need))) return rc;
        memcpy(t->scratch, k.data, k.len);
        if (uv.len) memcpy(t->scratch + k.len, uv.data, uv.len);
        strata_slice tree_key = { t->scratch, k.len };
        if (is_mm(t)) {
            db_table_touched(t);
            rc = bt_del(&t->txn->cx, &t->tree, t->scratch, k.len);
        } else {
            rc = db_delete(t, tree_key);
        }
        /* TTL: the entry expired between the read and the delete (the clock
         * moved), which removed it as expired: pop the next live one */
        if (rc != STRATA_NOTFOUND || !is_ttl(t)) break;
    }
    if (rc) return finish(t, rc == STRATA_NOTFOUND ? STRATA_ECORRUPT : rc);
    bt_val sk = { t->scratch, k.len };
    strata_slice ok_key, ok_val = { t->scratch + k.len, uv.len };
    if ((rc = user_key(t, sk, &ok_key, &ok_val))) return rc;
    if (key) *key = ok_key;
    if (val) *val = ok_val;
    return STRATA_OK;
}

int strata_pop_first(strata_table *t, strata_slice *key, strata_slice *val) { return pop(t, 0, key, val); }
int strata_pop_last(strata_table *t, strata_slice *key, strata_slice *val) { return pop(t, 1, key, val); }

/* Remove entries in [lo, hi] (bounds per flags) for which keep() is 0 (or all
 * when keep is NULL); expired TTL entries are removed without asking. After
 * each delete the scan re-seeks at the deleted key. */
static int sweep(strata_table *t, const strata_slice *lo, const strata_slice *hi, unsigned flags,
                 int (*keep)(void *, strata_slice, strata_slice), void *ctx, uint64_t *n_out) {
    bt_ctx *cx = &t->txn->cx;
    bt_cursor c;
    bt_cursor_init(&c, cx, &t->tree);
    uint8_t *buf = malloc(bt_max_key(cx->p->ps) + 1);
    if (!buf) return STRATA_ENOMEM;
    uint64_t n = 0;
    int rc, found;
    if (lo) rc = seek_key(t, &c, *lo, &found);
    else rc = bt_cursor_first(&c);
    while (rc == STRATA_OK) {
        bt_val k, v;
        strata_slice uk, uv;
        int live;
        if ((rc = bt_cursor_get(&c, &k, &v)) || (rc = entry_view(t, k, v, &uk, &uv, &live))) break;
        if (lo && (flags & STRATA_LO_EXCL) && key_cmp(t, uk, *lo) == 0) { rc = bt_cursor_next(&c); continue; }
        if (hi) {
            int r = key_cmp(t, uk, *hi);
            if (r > 0 || (r == 0 && !(flags & STRATA_HI_INCL))) break;
        }
        if (live && keep && keep(ctx, uk, uv)) { rc = bt_cursor_next(&c); continue; }
        size_t klen = k.len;
        memcpy(buf, k.data, klen);
        if (is_mm(t)) {
            db_table_touched(t);
            rc = bt_del(cx, &t->tree, buf, klen);
        } else {
            rc = db_delete(t, (strata_slice){ buf, klen });
            /* expired (maybe between the read and the delete): removed */
            if (rc == STRATA_NOTFOUND && is_ttl(t)) { rc = STRATA_OK; live = 0; }
        }
        if (rc) { rc = finish(t, rc == STRATA_NOTFOUND ? STRATA_ECORRUPT : rc); break; }
        n += live;
        int exact;
        rc = bt_cursor_seek(&c, buf, klen, &exact);
    }
    free(buf);
    if (rc != STRATA_OK && rc != STRATA_NOTFOUND) return finish(t, rc);
    if (n_out) *n_out = n;
    return STRATA_OK;
}

int strata_del_range(strata_table *t, const strata_slice *lo, const strata_slice *hi,
                     unsigned flags, uint64_t *n_deleted) {
    int rc = db_table_check(t, 1);
    if (rc) return rc;
    if (flags & ~(STRATA_LO_EXCL | STRATA_HI_INCL)) return STRATA_EINVAL;
    if ((lo && (!slice_ok(*lo) || db_key_check(t, lo->data, lo->len))) ||
        (hi && (!slice_ok(*hi) || db_key_check(t, hi->data, hi->len))))
        return STRATA_EINVAL;
    return sweep(t, lo, hi, flags, NULL, NULL, n_deleted);
}

int strata_retain(strata_table *t, int (*keep)(void *ctx, strata_slice key, strata_slice val),
                  void *ctx, uint64_t *n_removed) {
    int rc = db_table_check(t, 1);
    if (rc) return rc;
    if (!keep) return STRATA_EINVAL;
    return sweep(t, NULL, NULL, 0, keep, ctx, n_removed);
}
