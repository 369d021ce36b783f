/* db/table.c - tables: open/create through the catalog, key types and
 * comparators, drop, rename, listing, statistics, and writing changed
 * descriptors back at commit.
 * Invariants: (1) a table's key type, kind (plain or multimap) and comparator
 * name never change after creation; (2) names starting with "__" are reserved
 * for internal tables; (3) one handle per (txn, name); a dropped or renamed
 * table's handle fails with STRATA_EBADTXN. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "db.h"
#include "db_int.h"

static int cmp_u64(void *ctx, const void *a, size_t al, const void *b, size_t bl) {
    if (al != 8 || bl != 8) return bt_cmp_bytes(ctx, a, al, b, bl);   /* damaged file: stay total */
    uint64_t x = le64_get(a), y = le64_get(b);
    return x < y ? -1 : x > y;
}

static int cmp_i64(void *ctx, const void *a, size_t al, const void *b, size_t bl) {
    if (al != 8 || bl != 8) return bt_cmp_bytes(ctx, a, al, b, bl);
    int64_t x = (int64_t)le64_get(a), y = (int64_t)le64_get(b);
    return x < y ? -1 : x > y;
}

/* Multimap composite keys compare by key (table comparator) then value bytes. */
static int cmp_mm(void *ctx, const void *a, size_t al, const void *b, size_t bl) {
    const mm_cmp_ctx *m = ctx;
    if (al < 2 || bl < 2) return bt_cmp_bytes(NULL, a, al, b, bl);
    size_t ka = le16_get(a), kb = le16_get(b);
    if (ka > al - 2 || kb > bl - 2) return bt_cmp_bytes(NULL, a, al, b, bl);
    const uint8_t *pa = a, *pb = b;
    int c = m->cmp(m->ctx, pa + 2, ka, pb + 2, kb);
    if (c) return c;
    return bt_cmp_bytes(NULL, pa + 2 + ka, al - 2 - ka, pb + 2 + kb, bl - 2 - kb);
}

int db_resolve_cmp(strata_db *db, const cat_desc *d, bt_cmp *cmp, void **ctx) {
    *ctx = NULL;
    switch (d->key_type) {
    case STRATA_KEY_BYTES: case STRATA_KEY_STR: *cmp = bt_cmp_bytes; return STRATA_OK;
    case STRATA_KEY_U64: *cmp = cmp_u64; return STRATA_OK;
    case STRATA_KEY_I64: *cmp = cmp_i64; return STRATA_OK;
    default: break;
    }
    int rc = STRATA_ENOCMP;
    pthread_mutex_lock(&db->mu);
    for (size_t i = 0; i < db->n_cmps; i++) {
        if (!strcmp(db->cmps[i].name, d->cmp_name)) {
            *cmp = db->cmps[i].fn;
            *ctx = db->cmps[i].ctx;
            rc = STRATA_OK;
        }
    }
    pthread_mutex_unlock(&db->mu);
    return rc;
}

int db_tree_cmp(strata_db *db, const cat_desc *d, mm_cmp_ctx *mm, bt_cmp *cmp, void **ctx) {
    int rc = db_resolve_cmp(db, d, cmp, ctx);
    if (rc || !(d->flags & CAT_FLAG_MULTIMAP)) return rc;
    mm->cmp = *cmp;
    mm->ctx = *ctx;
    *cmp = cmp_mm;
    *ctx = mm;
    return STRATA_OK;
}

static int utf8_valid(const uint8_t *s, size_t n) {
    for (size_t i = 0; i < n;) {
        uint8_t c = s[i];
        size_t len;
        uint32_t cp;
        if (c < 0x80) { i++; continue; }
        else if ((c & 0xE0) == 0xC0) { len = 2; cp = c & 0x1F; }
        else if ((c & 0xF0) == 0xE0) { len = 3; cp = c & 0x0F; }
        else if ((c & 0xF8) == 0xF0) { len = 4; cp = c & 0x07; }
        else return 0;
        if (i + len > n) return 0;
        for (size_t k = 1; k < len; k++) {
            if ((s[i + k] & 0xC0) != 0x80) return 0;
            cp = cp << 6 | (s[i + k] & 0x3F);
        }
        if ((len == 2 && cp < 0x80) || (len == 3 && cp < 0x800) || (len == 4 && cp < 0x10000) ||
            cp > 0x10FFFF || (cp >= 0xD800 && cp <= 0xDFFF))
            return 0;
        i += len;
    }
    return 1;
}

int db_key_check(const strata_table *t, const void *key, size_t len) {
    if (!key && len) return STRATA_EINVAL;
    switch (t->desc.key_type) {
    case STRATA_KEY_U64: case STRATA_KEY_I64: return len == 8 ? STRATA_OK : STRATA_EINVAL;
    case STRATA_KEY_STR: return utf8_valid(key, len) ? STRATA_OK : STRATA_EINVAL;
    default: return STRATA_OK;
    }
}

static int name_check(const char *name, int internal) {
    if (!name) return STRATA_EINVAL;
    size_t len = strlen(name);
    if (len == 0 || len > CAT_NAME_MAX) return STRATA_EINVAL;
    if (!internal && name[0] == '_' && name[1] == '_') return STRATA_EINVAL;
    return STRATA_OK;
}

static int desc_put(strata_txn *txn, const char *name, const cat_desc *d) {
    uint8_t buf[CAT_DESC_FIXED + CAT_CMP_MAX];
    size_t len = cat_desc_encode(d, buf);
    return bt_put(&txn->cx, &txn->catalog, name, strlen(name), buf, len, 0, NULL);
}

unsigned db_desc_spec(const cat_desc *d, strata_table_spec *spec) {
    spec->key_type = (strata_key_type)d->key_type;
    spec->comparator = d->cmp_len ? d->cmp_name : NULL;
    spec->vector_dim = d->dim;
    return ((d->flags & CAT_FLAG_MULTIMAP) ? STRATA_MULTIMAP : 0u) | ((d->flags & CAT_FLAG_TTL) ? STRATA_TTL : 0u) |
           ((d->flags & CAT_FLAG_CDC) ? STRATA_CDC : 0u) | ((d->flags & CAT_FLAG_VECTOR) ? STRATA_VECTOR : 0u) |
           ((d->flags & CAT_FLAG_LZ4) ? STRATA_COMPRESS_LZ4 : 0u) |
           ((d->flags & CAT_FLAG_ZSTD) ? STRATA_COMPRESS_ZSTD : 0u);
}

int db_internal_open(strata_txn *txn, const char *name, int create, strata_table **out) {
    strata_table_spec spec = { STRATA_KEY_BYTES, NULL, 0 };
    return db_table_open(txn, name, &spec, create ? STRATA_CREATE : 0, 1, out);
}

int db_desc_get(strata_txn *txn, const char *name, cat_desc *d) {
    bt_val v;
    int rc = bt_get(&txn->cx, &txn->catalog, name, strlen(name), &v);
    if (rc) return rc;
    return cat_desc_decode(v.data, v.len, d);
}

static uint8_t flags_of(unsigned flags) {
    return (uint8_t)(((flags & STRATA_MULTIMAP) ? CAT_FLAG_MULTIMAP : 0) |
                     ((flags & STRATA_TTL) ? CAT_FLAG_TTL : 0) | ((flags & STRATA_CDC) ? CAT_FLAG_CDC : 0) |
                     ((flags & STRATA_VECTOR) ? CAT_FLAG_VECTOR : 0) |
                     ((flags & STRATA_COMPRESS_LZ4) ? CAT_FLAG_LZ4 : 0) |
                     ((flags & STRATA_COMPRESS_ZSTD) ? CAT_FLAG_ZSTD : 0));
}

static int spec_matches(const cat_desc *d, const strata_table_spec *spec, uint8_t want, size_t cmp_len) {
    return d->key_type == spec->key_type && (d->flags & CAT_KIND_FLAGS) == (want & CAT_KIND_FLAGS) &&
           (!cmp_len || !strcmp(d->cmp_name, spec->comparator)) &&
           (!(want & CAT_FLAG_VECTOR) || d->dim == spec->vector_dim);
}

int db_table_open(strata_txn *txn, const char *name, const strata_table_spec *spec,
                  unsigned flags, int internal, strata_table **out) {
    int rc = db_txn_check(txn, 0);
    if (rc) return rc;
    if (!out || !spec || (rc = name_check(name, internal))) return rc ? rc : STRATA_EINVAL;
    if ((unsigned)spec->key_type > STRATA_KEY_CUSTOM ||
        (flags & ~(STRATA_CREATE | STRATA_MULTIMAP | STRATA_TTL | STRATA_CDC | STRATA_VECTOR |
                   STRATA_COMPRESS_LZ4 | STRATA_COMPRESS_ZSTD)))
        return STRATA_EINVAL;
    if ((flags & STRATA_COMPRESS_LZ4) && (flags & STRATA_COMPRESS_ZSTD)) return STRATA_EINVAL;
    if ((flags & (STRATA_COMPRESS_LZ4 | STRATA_COMPRESS_ZSTD)) &&
        (flags & (STRATA_MULTIMAP | STRATA_TTL | STRATA_VECTOR)))
        return STRATA_EINVAL;
    if ((flags & STRATA_MULTIMAP) && (flags & (STRATA_TTL | STRATA_CDC | STRATA_VECTOR))) return STRATA_EINVAL;
    if ((flags & STRATA_VECTOR) && (spec->key_type != STRATA_KEY_U64 || spec->vector_dim == 0 ||
                                    spec->vector_dim > CAT_VEC_MAX_DIM))
        return STRATA_EINVAL;
    if ((flags & STRATA_TTL) && strlen(name) + strlen(TTL_INDEX_PREFIX) > CAT_NAME_MAX)
        return STRATA_EINVAL;
    size_t cmp_len = spec->comparator ? strlen(spec->comparator) : 0;
    if ((spec->key_type == STRATA_KEY_CUSTOM) != (cmp_len > 0) || cmp_len > CAT_CMP_MAX)
        return STRATA_EINVAL;
    uint8_t want_flags = flags_of(flags);
    for (strata_table *t = txn->tables; t; t = t->next) {
        if (t->dropped || strcmp(t->name, name)) continue;
        if (!spec_matches(&t->desc, spec, want_flags, cmp_len)) return STRATA_ETYPE;
        *out = t;
        return STRATA_OK;
    }
    cat_desc d;
    rc = db_desc_get(txn, name, &d);
    if (rc == STRATA_NOTFOUND) {
        if (!(flags & STRATA_CREATE)) return STRATA_NOTFOUND;
        if (!txn->write) return STRATA_EREADONLY;
        memset(&d, 0, sizeof d);
        d.key_type = (uint8_t)spec->key_type;
        d.flags = want_flags;
        d.cmp_len = (uint8_t)cmp_len;
        d.dim = (flags & STRATA_VECTOR) ? spec->vector_dim : 0;
        if (cmp_len) memcpy(d.cmp_name, spec->comparator, cmp_len + 1);
        bt_cmp probe;
        void *probe_ctx;
        if ((rc = db_resolve_cmp(txn->db, &d, &probe, &probe_ctx))) return rc;
        if ((rc = desc_put(txn, name, &d))) { db_txn_poison(txn, rc); return rc; }
    } else if (rc) {
        return rc;
    } else if (!spec_matches(&d, spec, want_flags, cmp_len)) {
        return STRATA_ETYPE;
    }
    strata_table *t = calloc(1, sizeof *t);
    if (!t || !(t->name = strdup(name))) { free(t); return STRATA_ENOMEM; }
    t->magic = TBL_MAGIC;
    t->txn = txn;
    t->desc = d;
    t->tree.root = d.root;
    t->tree.root_ck = d.root_ck;
    t->tree.count = d.count;
    if ((rc = db_tree_cmp(txn->db, &d, &t->mm, &t->tree.cmp, &t->tree.cmp_ctx))) {
        free(t->name);
        free(t);
        return rc;
    }
    t->next = txn->tables;
    txn->tables = t;
    *out = t;
    return STRATA_OK;
}

int db_internal_table_open(strata_txn *txn, const char *name, const strata_table_spec *spec,
                           unsigned flags, strata_table **out) {
    if (!name || name[0] != '_' || name[1] != '_') return STRATA_EINVAL;
    return db_table_open(txn, name, spec, flags, 1, out);
}

int strata_table_open_ex(strata_txn *txn, const char *name, const strata_table_spec *spec,
                         unsigned flags, strata_table **out) {
    /* reserved tables may be inspected (read transactions), never written by users */
    int inspect = txn && txn->magic == TXN_MAGIC && !txn->write && !(flags & STRATA_CREATE);
    return db_table_open(txn, name, spec, flags, inspect, out);
}

int strata_table_open(strata_txn *txn, const char *name, strata_key_type kt, unsigned flags,
                      strata_table **out) {
    if (flags & (STRATA_MULTIMAP | STRATA_TTL)) return STRATA_EINVAL;
    strata_table_spec spec = { kt, NULL };
    return strata_table_open_ex(txn, name, &spec, flags, out);
}

static void table_free(strata_table *t) {
    while (t->cursors) {
        strata_cursor *c = t->cursors;
        t->cursors = c->next;
        db_cursor_free(c);
    }
    t->magic = DEAD_MAGIC;
    free(t->name);
    free(t->scratch);
    free(t->vbuf);
    free(t->cbuf);
    db_compress_free(t);
    free(t);
}

void db_tables_free(strata_txn *txn) {
    while (txn->tables) {
        strata_table *t = txn->tables;
        txn->tables = t->next;
        table_free(t);
    }
}

int db_tables_commit(strata_txn *txn) {
    for (strata_table *t = txn->tables; t; t = t->next) {
        if (!t->dirty || t->dropped) continue;
        int rc = bt_finalize(&txn->cx, &t->tree);
        if (rc) return rc;
        t->desc.root = t->tree.root;
        t->desc.root_ck = t->tree.root_ck;
        t->desc.count = t->tree.count;
        if ((rc = desc_put(txn, t->name, &t->desc))) return rc;
        t->dirty = 0;
    }
    return STRATA_OK;
}

/* Mark open handles of name unusable. */
static void detach(strata_txn *txn, const char *name) {
    for (strata_table *t = txn->tables; t; t = t->next)
        if (!t->dropped && !strcmp(t->name, name)) t->dropped = 1;
}

static int table_drop(strata_txn *txn, const char *name, int internal) {
    int rc = db_txn_check(txn, 1);
    if (rc) return rc;
    if ((rc = name_check(name, internal))) return rc;
    cat_desc d;
    if ((rc = db_desc_get(txn, name, &d))) return rc;
    for (strata_table *t = txn->tables; t; t = t->next)
        if (!t->dropped && !strcmp(t->name, name)) d.root = t->tree.root, d.root_ck = t->tree.root_ck;
    bt_tree tree = { d.root, d.root_ck, d.count, bt_cmp_bytes, NULL };
    rc = bt_drop(&txn->cx, &tree);
    if (rc == STRATA_OK) rc = bt_del(&txn->cx, &txn->catalog, name, strlen(name));
    if (rc) { db_txn_poison(txn, rc); return rc; }
    detach(txn, name);
    if (d.flags & CAT_FLAG_TTL) {
        char idx[CAT_NAME_MAX + 8];
        snprintf(idx, sizeof idx, "%s%s", TTL_INDEX_PREFIX, name);
        if ((rc = db_desc_get(txn, idx, &d)) == STRATA_NOTFOUND) return STRATA_OK;
        for (strata_table *t = txn->tables; t; t = t->next)
            if (!t->dropped && !strcmp(t->name, idx)) d.root = t->tree.root, d.root_ck = t->tree.root_ck;
        tree = (bt_tree){ d.root, d.root_ck, d.count, bt_cmp_bytes, NULL };
        if (rc == STRATA_OK) rc = bt_drop(&txn->cx, &tree);
        if (rc == STRATA_OK) rc = bt_del(&txn->cx, &txn->catalog, idx, strlen(idx));
        if (rc) { db_txn_poison(txn, rc); return rc; }
        detach(txn, idx);
    }
    return STRATA_OK;
}

int strata_table_drop(strata_txn *txn, const char *name) { return table_drop(txn, name, 0); }

int db_internal_table_drop(strata_txn *txn, const char *name) {
    if (!name || name[0] != '_' || name[1] != '_') return STRATA_EINVAL;
    return table_drop(txn, name, 1);
}

static int rename_one(strata_txn *txn, const char *from, const char *to, cat_desc *out) {
    cat_desc d, other;
    int rc = db_desc_get(txn, from, &d);
    if (rc) return rc;
    if ((rc = db_desc_get(txn, to, &other)) != STRATA_NOTFOUND) return rc ? rc : STRATA_EEXIST;
    /* carry uncommitted changes of an open handle into the renamed descriptor */
    for (strata_table *t = txn->tables; t; t = t->next) {
        if (t->dropped || strcmp(t->name, from)) continue;
        if ((rc = bt_finalize(&txn->cx, &t->tree))) return rc;
        d.root = t->tree.root; d.root_ck = t->tree.root_ck; d.count = t->tree.count;
    }
    if ((rc = bt_del(&txn->cx, &txn->catalog, from, strlen(from))) || (rc = desc_put(txn, to, &d)))
        return rc;
    detach(txn, from);
    if (out) *out = d;
    return STRATA_OK;
}

int strata_table_rename(strata_txn *txn, const char *from, const char *to) {
    int rc = db_txn_check(txn, 1);
    if (rc) return rc;
    if ((rc = name_check(from, 0)) || (rc = name_check(to, 0))) return rc;
    cat_desc d, other;
    if ((rc = db_desc_get(txn, from, &d))) return rc;
    if ((rc = db_desc_get(txn, to, &other)) != STRATA_NOTFOUND) return rc ? rc : STRATA_EEXIST;
    char ifrom[CAT_NAME_MAX + 8], ito[CAT_NAME_MAX + 8];
    if (d.flags & CAT_FLAG_TTL) {
        if (strlen(to) + strlen(TTL_INDEX_PREFIX) > CAT_NAME_MAX) return STRATA_EINVAL;
        snprintf(ifrom, sizeof ifrom, "%s%s", TTL_INDEX_PREFIX, from);
        snprintf(ito, sizeof ito, "%s%s", TTL_INDEX_PREFIX, to);
    }
    rc = rename_one(txn, from, to, NULL);
    if (rc == STRATA_OK && (d.flags & CAT_FLAG_TTL)) {
        rc = rename_one(txn, ifrom, ito, NULL);
        if (rc == STRATA_NOTFOUND) rc = STRATA_OK;         /* no entry ever had a TTL */
    }
    if (rc) db_txn_poison(txn, rc);
    return rc;
}

int strata_cdc_enable(strata_txn *txn, const char *name, int on) {
    int rc = db_txn_check(txn, 1);
    if (rc) return rc;
    if ((rc = name_check(name, 0))) return rc;
    cat_desc d;
    if ((rc = db_desc_get(txn, name, &d))) return rc;
    if (d.flags & CAT_FLAG_MULTIMAP) return STRATA_EINVAL;
    uint8_t f = (uint8_t)(on ? d.flags | CAT_FLAG_CDC : d.flags & ~CAT_FLAG_CDC);
    for (strata_table *t = txn->tables; t; t = t->next) {
        if (t->dropped || strcmp(t->name, name)) continue;
        t->desc.flags = f;
        t->dirty = 1;                                      /* rewritten at commit */
    }
    d.flags = f;
    if ((rc = desc_put(txn, name, &d))) db_txn_poison(txn, rc);
    return rc;
}

int strata_table_list(strata_txn *txn, int include_internal,
                      int (*fn)(void *ctx, const strata_table_info *info), void *ctx) {
    int rc = db_txn_check(txn, 0);
    if (rc) return rc;
    if (!fn) return STRATA_EINVAL;
    /* descriptors of tables changed in this txn are written at commit; list
     * their live counts from the open handles */
    bt_cursor c;
    bt_cursor_init(&c, &txn->cx, &txn->catalog);
    char name[CAT_NAME_MAX + 1];
    for (rc = bt_cursor_first(&c); rc == STRATA_OK; rc = bt_cursor_next(&c)) {
        bt_val k, v;
        if ((rc = bt_cursor_get(&c, &k, &v))) break;
        cat_desc d;
        if (k.len == 0 || k.len > CAT_NAME_MAX || cat_desc_decode(v.data, v.len, &d))
            return CORRUPT(txn->db->p, txn->catalog.root);
        memcpy(name, k.data, k.len);
        name[k.len] = 0;
        if (!include_internal && name[0] == '_' && name[1] == '_') continue;
        for (strata_table *t = txn->tables; t; t = t->next)
            if (!t->dropped && !strcmp(t->name, name)) d.count = t->tree.count;
        strata_table_spec spec;
        unsigned fl = db_desc_spec(&d, &spec);
        strata_table_info info = { name, spec.key_type, fl, d.count, spec.comparator, d.dim };
        int r = fn(ctx, &info);
        if (r) return r;
    }
    return rc == STRATA_NOTFOUND ? STRATA_OK : rc;
}

static int stat_rec(bt_ctx *cx, pgno_t pg, ck128 ck, uint32_t depth, strata_table_stat *st) {
    if (depth >= BT_MAX_DEPTH) return CORRUPT(cx->p, pg);
    const uint8_t *page;
    int rc = bt_page(cx, pg, &ck, &page);
    if (rc) return rc;
    if (depth + 1 > st->height) st->height = depth + 1;
    unsigned n = pg_n(page);
    if (pg_type(page) == PT_LEAF) {
        st->leaf_pages++;
        for (unsigned i = 0; i < n; i++) {
            const uint8_t *c = pg_cell(page, i);
            if (lc_flags(c) & LF_OVERFLOW) st->overflow_pages += pager_npages(cx->p, lc_vlen(c));
        }
        return STRATA_OK;
    }
    st->branch_pages++;
    for (unsigned i = 0; i < n && rc == STRATA_OK; i++) {
        const uint8_t *c = pg_cell(page, i);
        rc = stat_rec(cx, bc_child(c), bc_ck(c), depth + 1, st);
    }
    return rc;
}

int strata_table_stat_get(strata_table *t, strata_table_stat *out) {
    int rc = db_table_check(t, 0);
    if (rc) return rc;
    if (!out) return STRATA_EINVAL;
    strata_table_stat st = { 0 };
    st.entries = t->tree.count;
    if (t->tree.root) rc = stat_rec(&t->txn->cx, t->tree.root, t->tree.root_ck, 0, &st);
    if (rc == STRATA_OK) *out = st;
    return rc;
}
