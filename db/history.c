/* db/history.c - retained commits (time travel) and incremental export.
 * Tables: "__meta" key "history" -> u32 LE window; "__history" key u64 BE
 * commit id -> 72-byte state: u64 txn id, u64 catalog root, 16B catalog
 * xxh3-128, u64 free root, 16B free xxh3-128, u64 page count, u64 HLC.
 * Invariants: (1) commit T records the state of T-1 (its base) when the window
 * is non-zero and keeps the newest `window` records; (2) db->hist_oldest is
 * the oldest recorded commit, and writers reuse no page freed after it, so
 * every recorded commit stays intact and readable.
 * Export file: "STRXPRT1", u64 from, u64 to, u64 HLC of `to`, records, then
 * u8 0xFF, u64 record count, 16B xxh3-128 of every byte before it. Records:
 * u8 kind (1 table, 2 put, 3 delete, 4 drop table), u16 LE name length, name;
 * table: u16 LE descriptor length, descriptor (catalog format, root zeroed);
 * put: u32 LE key length, key, u32 LE value length, value; delete: u32 LE key
 * length, key. Raw B-tree entries are exported, internal tables included, so
 * TTL indexes and change logs travel with their data. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "db_int.h"

enum { HIST_STATE_LEN = STATE_LEN };
enum { REC_TABLE = 1, REC_PUT = 2, REC_DEL = 3, REC_DROP = 4, REC_END = 0xFF };
#define EXPORT_MAGIC "STRXPRT1"

void db_state_encode(uint8_t *b, const pg_state *st) {
    le64_put(b, st->txnid);
    le64_put(b + 8, st->cat_root);
    ck_put(b + 16, st->cat_ck);
    le64_put(b + 32, st->free_root);
    ck_put(b + 40, st->free_ck);
    le64_put(b + 56, st->page_count);
    le64_put(b + 64, st->hlc);
}

int db_state_decode(const uint8_t *b, size_t len, pg_state *st) {
    if (len != HIST_STATE_LEN) return STRATA_ECORRUPT;
    st->txnid = le64_get(b);
    st->cat_root = le64_get(b + 8);
    st->cat_ck = ck_get(b + 16);
    st->free_root = le64_get(b + 32);
    st->free_ck = ck_get(b + 40);
    st->page_count = le64_get(b + 56);
    st->hlc = le64_get(b + 64);
    return STRATA_OK;
}

int strata_history_set(strata_txn *txn, uint32_t n) {
    int rc = db_txn_check(txn, 1);
    if (rc) return rc;
    strata_table *meta;
    if ((rc = db_internal_open(txn, META_NAME, 1, &meta))) return rc;
    uint8_t v[4];
    le32_put(v, n);
    db_table_touched(meta);
    if ((rc = bt_put(&txn->cx, &meta->tree, "history", 7, v, 4, 0, NULL))) { db_txn_poison(txn, rc); return rc; }
    txn->hist_window = n;
    return STRATA_OK;
}

static int first_key(strata_txn *txn, strata_table *t, uint64_t *id) {
    bt_cursor c;
    bt_cursor_init(&c, &txn->cx, &t->tree);
    int rc = bt_cursor_first(&c);
    if (rc) return rc;
    bt_val k;
    if ((rc = bt_cursor_get(&c, &k, NULL))) return rc;
    if (k.len != 8) return CORRUPT(txn->db->p, t->tree.root);
    *id = be64_get(k.data);
    return STRATA_OK;
}

int db_history_commit(strata_txn *txn, uint64_t *oldest) {
    strata_db *db = txn->db;
    uint64_t window = txn->hist_window >= 0 ? (uint64_t)txn->hist_window : db->hist_window;
    pthread_mutex_lock(&db->mu);
    uint64_t had = db->hist_oldest;
    pthread_mutex_unlock(&db->mu);
    *oldest = 0;
    if (txn->reset_free) return STRATA_OK;      /* savepoint restore: history starts over */
    if (window == 0 && had == 0) return STRATA_OK;
    strata_table *h;
    int rc = db_internal_open(txn, HISTORY_NAME, 1, &h);
    if (rc) return rc;
    db_table_touched(h);
    if (window) {
        uint8_t k[8], v[HIST_STATE_LEN];
        be64_put(k, txn->snap.txnid);
        db_state_encode(v, &txn->snap);
        if ((rc = bt_put(&txn->cx, &h->tree, k, 8, v, sizeof v, 0, NULL))) return rc;
    }
    while (h->tree.count > window) {
        uint64_t id;
        if ((rc = first_key(txn, h, &id))) return rc;
        uint8_t k[8];
        be64_put(k, id);
        if ((rc = bt_del(&txn->cx, &h->tree, k, 8))) return rc;
    }
    if (h->tree.count) return first_key(txn, h, oldest);
    return STRATA_OK;
}

int db_history_load(strata_db *db) {
    strata_txn *r;
    int rc = strata_begin_read(db, &r);
    if (rc) return rc;
    strata_table *t;
    bt_val v;
    if ((rc = db_internal_open(r, META_NAME, 0, &t)) == STRATA_OK &&
        (rc = bt_get(&r->cx, &t->tree, "history", 7, &v)) == STRATA_OK) {
        if (v.len != 4) rc = CORRUPT(db->p, t->tree.root);
        else db->hist_window = le32_get(v.data);
    }
    if (rc == STRATA_NOTFOUND) rc = STRATA_OK;
    uint64_t oldest = 0;
    if (rc == STRATA_OK && (rc = db_internal_open(r, HISTORY_NAME, 0, &t)) == STRATA_OK)
        rc = first_key(r, t, &oldest);
    if (rc == STRATA_NOTFOUND) rc = STRATA_OK;
    db->hist_oldest = oldest;
    if (rc == STRATA_OK) rc = db_savepoints_oldest(r, &db->sp_oldest);
    strata_abort(r);
    return rc;
}

/* Find a retained state in the current commit: by id (hlc == 0) or the newest
 * with HLC <= hlc. Called with db->mu held. */
static int find_state(strata_db *db, uint64_t id, uint64_t hlc, pg_state *out) {
    if ((!hlc && id == db->cur.txnid) || (hlc && db->cur.hlc <= hlc)) { *out = db->cur; return STRATA_OK; }
    strata_txn tmp = { .magic = TXN_MAGIC, .db = db, .snap = db->cur };
    tmp.cx = (bt_ctx){ db->p, db->cur.page_count, NULL };
    tmp.catalog = (bt_tree){ db->cur.cat_root, db->cur.cat_ck, 0, bt_cmp_bytes, NULL };
    strata_table *h;
    int rc = db_internal_open(&tmp, HISTORY_NAME, 0, &h);
    if (rc == STRATA_OK) {
        bt_cursor c;
        bt_cursor_init(&c, &tmp.cx, &h->tree);
        int found = 0;
        for (rc = bt_cursor_last(&c); rc == STRATA_OK; rc = bt_cursor_prev(&c)) {
            bt_val k, v;
            pg_state st;
            if ((rc = bt_cursor_get(&c, &k, &v)) || (rc = db_state_decode(v.data, v.len, &st))) break;
            if ((!hlc && st.txnid == id) || (hlc && st.hlc <= hlc)) { *out = st; found = 1; break; }
            if (!hlc && st.txnid < id) break;
        }
        if (found) rc = STRATA_OK;
        else if (rc == STRATA_OK || rc == STRATA_NOTFOUND) rc = STRATA_NOTFOUND;
    }
    db_tables_free(&tmp);
    return rc;
}

static int begin_at(strata_db *db, uint64_t id, uint64_t hlc, strata_txn **out) {
    if (!db || db->magic != DB_MAGIC || !out) return STRATA_EINVAL;
    if (db->p->panic) return STRATA_EPANIC;
    pthread_mutex_lock(&db->mu);
    pg_state st;
    int rc = find_state(db, id, hlc, &st);
    if (rc == STRATA_OK) rc = db_begin_read_state(db, &st, out);
    pthread_mutex_unlock(&db->mu);
    return rc;
}

int strata_begin_read_at(strata_db *db, uint64_t txn_id, strata_txn **out) {
    return begin_at(db, txn_id, 0, out);
}

int strata_begin_read_at_hlc(strata_db *db, uint64_t hlc, strata_txn **out) {
    if (!hlc) return STRATA_EINVAL;
    return begin_at(db, 0, hlc, out);
}

int strata_history_list(strata_db *db, int (*fn)(void *ctx, uint64_t txn_id, uint64_t hlc), void *ctx) {
    if (!db || db->magic != DB_MAGIC || !fn) return STRATA_EINVAL;
    strata_txn *r;
    int rc = strata_begin_read(db, &r);
    if (rc) return rc;
    strata_table *h;
    rc = db_internal_open(r, HISTORY_NAME, 0, &h);
    if (rc == STRATA_OK) {
        bt_cursor c;
        bt_cursor_init(&c, &r->cx, &h->tree);
        for (rc = bt_cursor_first(&c); rc == STRATA_OK; rc = bt_cursor_next(&c)) {
            bt_val k, v;
            pg_state st;
            if ((rc = bt_cursor_get(&c, &k, &v)) || (rc = db_state_decode(v.data, v.len, &st))) break;
            int u = fn(ctx, st.txnid, st.hlc);
            if (u) { strata_abort(r); return u; }
        }
    }
    if (rc == STRATA_OK || rc == STRATA_NOTFOUND) rc = fn(ctx, r->snap.txnid, r->snap.hlc);
    strata_abort(r);
    return rc;
}

/* ---- export ---- */

typedef struct outbuf { uint8_t *b; size_t n, cap; uint64_t records; int rc; } outbuf;

static void out_put(outbuf *o, const void *p, size_t n) {
    if (o->rc) return;
    if (o->n + n > o->cap) {
        size_t nc = o->cap ? o->cap : 65536;
        while (nc < o->n + n) nc *= 2;
        uint8_t *nb = realloc(o->b, nc);
        if (!nb) { o->rc = STRATA_ENOMEM; return; }
        o->b = nb; o->cap = nc;
    }
    if (n) memcpy(o->b + o->n, p, n);
    o->n += n;
}
static void out_u8(outbuf *o, uint8_t v) { out_put(o, &v, 1); }
static void out_u16(outbuf *o, size_t v) { uint8_t b[2]; le16_put(b, (uint16_t)v); out_put(o, b, 2); }
static void out_u32(outbuf *o, size_t v) { uint8_t b[4]; le32_put(b, (uint32_t)v); out_put(o, b, 4); }
static void out_u64(outbuf *o, uint64_t v) { uint8_t b[8]; le64_put(b, v); out_put(o, b, 8); }
static void out_rec(outbuf *o, int kind, const void *name, size_t nlen) {
    out_u8(o, (uint8_t)kind);
    out_u16(o, nlen);
    out_put(o, name, nlen);
    o->records++;
}

static int get_desc(strata_txn *txn, const void *name, size_t nlen, cat_desc *d, int *found) {
    bt_val v;
    int rc = bt_get(&txn->cx, &txn->catalog, name, nlen, &v);
    *found = rc == STRATA_OK;
    if (rc == STRATA_NOTFOUND) return STRATA_OK;
    if (rc) return rc;
    return cat_desc_decode(v.data, v.len, d);
}

/* Merge-join two versions of one table, emitting puts and deletes. */
static int diff_table(strata_txn *a, strata_txn *b, const void *name, size_t nlen, const cat_desc *da,
                      const cat_desc *db_, outbuf *o) {
    if (da && da->root == db_->root && ck_eq(da->root_ck, db_->root_ck)) return STRATA_OK;
    mm_cmp_ctx mm;
    bt_tree ta = { 0 }, tb = { db_->root, db_->root_ck, db_->count, NULL, NULL };
    int rc = db_tree_cmp(b->db, db_, &mm, &tb.cmp, &tb.cmp_ctx);
    if (rc) return rc;
    if (da) ta = (bt_tree){ da->root, da->root_ck, da->count, tb.cmp, tb.cmp_ctx };
    bt_cursor ca, cb;
    bt_cursor_init(&ca, &a->cx, &ta);
    bt_cursor_init(&cb, &b->cx, &tb);
    int ra = bt_cursor_first(&ca), rb = bt_cursor_first(&cb);
    while ((ra == STRATA_OK || rb == STRATA_OK) && !o->rc) {
        bt_val ka = { 0 }, va = { 0 }, kb = { 0 }, vb = { 0 };
        if (ra == STRATA_OK && (rc = bt_cursor_get(&ca, &ka, &va))) return rc;
        if (rb == STRATA_OK && (rc = bt_cursor_get(&cb, &kb, &vb))) return rc;
        int c = ra != STRATA_OK ? 1 : rb != STRATA_OK ? -1 : tb.cmp(tb.cmp_ctx, ka.data, ka.len, kb.data, kb.len);
        if (c < 0) {                                   /* only in a: deleted */
            out_rec(o, REC_DEL, name, nlen);
            out_u32(o, ka.len); out_put(o, ka.data, ka.len);
            ra = bt_cursor_next(&ca);
        } else if (c > 0 || va.len != vb.len || (vb.len && memcmp(va.data, vb.data, vb.len))) {
            out_rec(o, REC_PUT, name, nlen);
            out_u32(o, kb.len); out_put(o, kb.data, kb.len);
            out_u32(o, vb.len); out_put(o, vb.data, vb.len);
            if (c == 0) ra = bt_cursor_next(&ca);
            rb = bt_cursor_next(&cb);
        } else {
            ra = bt_cursor_next(&ca);
            rb = bt_cursor_next(&cb);
        }
    }
    if (ra != STRATA_OK && ra != STRATA_NOTFOUND) return ra;
    if (rb != STRATA_OK && rb != STRATA_NOTFOUND) return rb;
    return o->rc;
}

static int export_diff(strata_txn *a, strata_txn *b, outbuf *o) {
    bt_cursor c;
    int rc;
    /* tables in b: created or changed */
    bt_cursor_init(&c, &b->cx, &b->catalog);
    for (rc = bt_cursor_first(&c); rc == STRATA_OK; rc = bt_cursor_next(&c)) {
        bt_val k, v;
        cat_desc dbd, dad;
        int found;
        if ((rc = bt_cursor_get(&c, &k, &v)) || (rc = cat_desc_decode(v.data, v.len, &dbd))) return rc;
        if (k.len == strlen(HISTORY_NAME) && !memcmp(k.data, HISTORY_NAME, k.len)) continue;
        if ((rc = get_desc(a, k.data, k.len, &dad, &found))) return rc;
        cat_desc def = dbd;
        def.root = 0;
        memset(&def.root_ck, 0, sizeof def.root_ck);
        def.count = 0;
        uint8_t buf[CAT_DESC_FIXED + CAT_CMP_MAX];
        size_t dl = cat_desc_encode(&def, buf);
        out_rec(o, REC_TABLE, k.data, k.len);
        out_u16(o, dl);
        out_put(o, buf, dl);
        if ((rc = diff_table(a, b, k.data, k.len, found ? &dad : NULL, &dbd, o))) return rc;
    }
    if (rc != STRATA_NOTFOUND) return rc;
    /* tables only in a: dropped */
    bt_cursor_init(&c, &a->cx, &a->catalog);
    for (rc = bt_cursor_first(&c); rc == STRATA_OK; rc = bt_cursor_next(&c)) {
        bt_val k;
        cat_desc d;
        int found;
        if ((rc = bt_cursor_get(&c, &k, NULL)) || (rc = get_desc(b, k.data, k.len, &d, &found))) return rc;
        if (!found) out_rec(o, REC_DROP, k.data, k.len);
    }
    return rc == STRATA_NOTFOUND ? o->rc : rc;
}

int strata_history_export(strata_db *db, uint64_t from, uint64_t to, const char *path) {
    if (!db || db->magic != DB_MAGIC || !path || from >= to) return STRATA_EINVAL;
    strata_txn *a = NULL, *b = NULL;
    outbuf o = { 0 };
    int rc = strata_begin_read_at(db, from, &a);
    if (rc == STRATA_OK) rc = strata_begin_read_at(db, to, &b);
    if (rc) goto out;
    out_put(&o, EXPORT_MAGIC, 8);
    out_u64(&o, from);
    out_u64(&o, to);
    out_u64(&o, b->snap.hlc);
    if ((rc = export_diff(a, b, &o))) goto out;
    out_u8(&o, REC_END);
    out_u64(&o, o.records);
    uint8_t ck[CK128_SIZE];
    if (o.rc) { rc = o.rc; goto out; }
    ck_put(ck, ck_compute(o.b, o.n));
    out_put(&o, ck, sizeof ck);
    if ((rc = o.rc)) goto out;
    FILE *f = fopen(path, "wb");
    if (!f) { rc = STRATA_EIO; goto out; }
    if (fwrite(o.b, 1, o.n, f) != o.n) rc = STRATA_EIO;
    if (fclose(f) != 0) rc = STRATA_EIO;
out:
    strata_abort(a);
    strata_abort(b);
    free(o.b);
    return rc;
}

/* ---- apply ---- */

typedef struct inbuf { const uint8_t *p, *end; } inbuf;

static int in_take(inbuf *in, size_t n, const uint8_t **out) {
    if ((size_t)(in->end - in->p) < n) return STRATA_ECORRUPT;
    *out = in->p;
    in->p += n;
    return STRATA_OK;
}

static int in_len(inbuf *in, size_t width, size_t *v) {
    const uint8_t *b;
    int rc = in_take(in, width, &b);
    if (rc) return rc;
    *v = width == 2 ? le16_get(b) : le32_get(b);
    return STRATA_OK;
}

/* Walk every record; with txn NULL only validates. */
static int apply_records(inbuf in, strata_txn *txn) {
    int rc;
    const uint8_t *b;
    char name[CAT_NAME_MAX + 1];
    strata_table *t = NULL;
    for (;;) {
        if ((rc = in_take(&in, 1, &b))) return rc;
        int kind = b[0];
        if (kind == REC_END) return STRATA_OK;
        size_t nlen, klen, vlen = 0;
        const uint8_t *np, *kp, *vp = NULL;
        if ((rc = in_len(&in, 2, &nlen)) || nlen == 0 || nlen > CAT_NAME_MAX || (rc = in_take(&in, nlen, &np)))
            return rc ? rc : STRATA_ECORRUPT;
        memcpy(name, np, nlen);
        name[nlen] = 0;
        if (memchr(name, 0, nlen)) return STRATA_ECORRUPT;
        if (kind == REC_TABLE) {
            size_t dl;
            cat_desc d;
            if ((rc = in_len(&in, 2, &dl)) || (rc = in_take(&in, dl, &kp)) || (rc = cat_desc_decode(kp, dl, &d)))
                return rc;
            if (!txn) continue;
            strata_table_spec spec;
            unsigned fl = STRATA_CREATE | db_desc_spec(&d, &spec);
            if ((rc = db_table_open(txn, name, &spec, fl, 1, &t))) return rc;
        } else if (kind == REC_PUT || kind == REC_DEL) {
            if ((rc = in_len(&in, 4, &klen)) || (rc = in_take(&in, klen, &kp))) return rc;
            if (kind == REC_PUT && ((rc = in_len(&in, 4, &vlen)) || (rc = in_take(&in, vlen, &vp)))) return rc;
            if (!txn) continue;
            if (!t || strcmp(t->name, name)) return STRATA_ECORRUPT;   /* a table record comes first */
            db_table_touched(t);
            if (kind == REC_PUT) rc = bt_put(&txn->cx, &t->tree, kp, klen, vp, vlen, 0, NULL);
            else if ((rc = bt_del(&txn->cx, &t->tree, kp, klen)) == STRATA_NOTFOUND) rc = STRATA_OK;
            if (rc) return rc;
        } else if (kind == REC_DROP) {
            if (!txn) continue;
            if ((rc = strata_table_drop(txn, name)) && rc != STRATA_NOTFOUND && rc != STRATA_EINVAL) return rc;
            if (rc == STRATA_EINVAL) {                   /* internal tables: drop their contents */
                strata_table *it;
                if (db_internal_open(txn, name, 0, &it) == STRATA_OK) {
                    db_table_touched(it);
                    if ((rc = bt_drop(&txn->cx, &it->tree))) return rc;
                }
            }
            t = NULL;
        } else {
            return STRATA_ECORRUPT;
        }
    }
}

int strata_history_apply(strata_db *db, const char *path) {
    if (!db || db->magic != DB_MAGIC || !path) return STRATA_EINVAL;
    FILE *f = fopen(path, "rb");
    if (!f) return STRATA_NOTFOUND;
    uint8_t *buf = NULL;
    size_t n = 0, cap = 0;
    int rc = STRATA_OK;
    for (;;) {
        if (n == cap && db_ensure_buf(&buf, &cap, cap ? cap * 2 : 65536)) { rc = STRATA_ENOMEM; break; }
        size_t r = fread(buf + n, 1, cap - n, f);
        n += r;
        if (r == 0) break;
    }
    if (ferror(f)) rc = STRATA_EIO;
    fclose(f);
    if (rc == STRATA_OK && (n < 8 + 24 + 1 + 8 + CK128_SIZE || memcmp(buf, EXPORT_MAGIC, 8) ||
                            !ck_eq(ck_compute(buf, n - CK128_SIZE), ck_get(buf + n - CK128_SIZE))))
        rc = STRATA_ECORRUPT;
    inbuf in = { buf + 32, buf + n - CK128_SIZE };
    if (rc == STRATA_OK) rc = apply_records(in, NULL);            /* validate all first */
    strata_txn *w = NULL;
    if (rc == STRATA_OK) rc = strata_begin_write(db, &w);
    if (rc == STRATA_OK) {
        rc = apply_records(in, w);
        if (rc == STRATA_OK) rc = strata_commit(w);
        else strata_abort(w);
    }
    free(buf);
    return rc;
}
