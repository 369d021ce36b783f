/* db/savepoint.c - ephemeral savepoints inside a write transaction, and
 * persistent savepoints ("__savepoints": key u64 BE commit id, value the
 * 72-byte state of docs/FEATURES.md "History").
 * Ephemeral: the allocator freezes every dirty page (btree/wtx.c), and the
 * savepoint keeps the catalog and every open table's tree; rollback puts them
 * back. Persistent: the oldest one joins the writers' reuse horizon, so every
 * page of a saved commit stays intact; restore makes its catalog current again
 * in one commit and rebuilds the free list as "every page not reachable from
 * the new catalog or an older savepoint", keyed by the restoring transaction
 * so live readers keep their pages.
 * Invariants: (1) savepoints made after one that is rolled back to are dead;
 * (2) a restore never frees a page an older savepoint needs. */
#include <stdlib.h>
#include <string.h>

#include "db_int.h"

#define SP_MAGIC 0x53535031u

typedef struct sp_tab {
    strata_table *t;
    bt_tree       tree;
    cat_desc      desc;
    int           dropped, dirty;
} sp_tab;

struct strata_savepoint {
    uint32_t          magic;
    strata_txn       *txn;
    strata_savepoint *next;
    bt_wsave         *ws;
    bt_tree           catalog;
    uint32_t          cdc_seq;
    int64_t           hist_window;
    int               dead;
    size_t            n;
    sp_tab           *tabs;
};

static void sp_free(strata_savepoint *sp) {
    sp->magic = DEAD_MAGIC;
    bt_wsave_free(sp->ws);
    free(sp->tabs);
    free(sp);
}

void db_savepoints_free(strata_txn *txn) {
    while (txn->savepoints) {
        strata_savepoint *sp = txn->savepoints;
        txn->savepoints = sp->next;
        sp_free(sp);
    }
}

int strata_savepoint_create(strata_txn *txn, strata_savepoint **out) {
    int rc = db_txn_check(txn, 1);
    if (rc) return rc;
    if (!out) return STRATA_EINVAL;
    strata_savepoint *sp = calloc(1, sizeof *sp);
    if (!sp) return STRATA_ENOMEM;
    size_t n = 0;
    for (strata_table *t = txn->tables; t; t = t->next) n++;
    if (n && !(sp->tabs = calloc(n, sizeof *sp->tabs))) { free(sp); return STRATA_ENOMEM; }
    for (strata_table *t = txn->tables; t; t = t->next)
        sp->tabs[sp->n++] = (sp_tab){ t, t->tree, t->desc, t->dropped, t->dirty };
    if ((rc = bt_wtx_save(txn->w, &sp->ws))) { free(sp->tabs); free(sp); return rc; }
    sp->magic = SP_MAGIC;
    sp->txn = txn;
    sp->catalog = txn->catalog;
    sp->cdc_seq = txn->cdc_seq;
    sp->hist_window = txn->hist_window;
    sp->next = txn->savepoints;
    txn->savepoints = sp;
    *out = sp;
    return STRATA_OK;
}

static size_t sp_find(const strata_savepoint *sp, const strata_table *t) {
    size_t i;
    for (i = 0; i < sp->n && sp->tabs[i].t != t; i++) {}
    return i;
}

/* Whether d describes a table that a handle opened with descriptor a can work on. */
static int same_table(const cat_desc *a, const cat_desc *d) {
    return a->key_type == d->key_type && (a->flags & CAT_KIND_FLAGS) == (d->flags & CAT_KIND_FLAGS) &&
           a->dim == d->dim && !strcmp(a->cmp_name, d->cmp_name);
}

/* Whether a handle other than t of t's name is live. */
static int other_live(strata_txn *txn, const strata_table *t) {
    for (strata_table *o = txn->tables; o; o = o->next)
        if (o != t && !o->dropped && !strcmp(o->name, t->name)) return 1;
    return 0;
}

int strata_savepoint_rollback(strata_txn *txn, strata_savepoint *sp) {
    if (!txn || txn->magic != TXN_MAGIC || !sp || sp->magic != SP_MAGIC || sp->txn != txn || sp->dead)
        return STRATA_EINVAL;
    if (txn->db->p->panic) return STRATA_EPANIC;
    int rc = bt_wtx_restore(txn->w, sp->ws);
    if (rc) return rc;
    txn->catalog = sp->catalog;
    txn->cdc_seq = sp->cdc_seq;
    txn->hist_window = sp->hist_window;
    txn->poisoned = 0;
    db_txn_counters_bump(txn);   /* cached copies of undone rows are stale */
    for (strata_table *t = txn->tables; t; t = t->next) {
        size_t i = sp_find(sp, t);
        if (i < sp->n) {
            t->tree.root = sp->tabs[i].tree.root;
            t->tree.root_ck = sp->tabs[i].tree.root_ck;
            t->tree.count = sp->tabs[i].tree.count;
            t->desc = sp->tabs[i].desc;
            t->dropped = sp->tabs[i].dropped;
            t->dirty = sp->tabs[i].dirty;
        }
        for (strata_cursor *c = t->cursors; c; c = c->next) { c->bc.depth = 0; c->stale = 0; }
    }
    /* opened after sp: reload from the catalog, once the handles from before
     * sp are back (one live handle per name), if the table is still the kind
     * the handle was opened as (a drop and re-create may be undone) */
    for (strata_table *t = txn->tables; t; t = t->next) {
        if (sp_find(sp, t) < sp->n) continue;
        cat_desc d;
        if (db_desc_get(txn, t->name, &d) == STRATA_OK && same_table(&t->desc, &d) && !other_live(txn, t)) {
            t->tree.root = d.root;
            t->tree.root_ck = d.root_ck;
            t->tree.count = d.count;
            t->desc = d;
            t->dirty = 0;
        } else {
            t->dropped = 1;                      /* created after sp, or replaced */
        }
    }
    for (strata_savepoint *o = txn->savepoints; o; o = o->next)
        if (bt_wsave_epoch(o->ws) > bt_wsave_epoch(sp->ws)) o->dead = 1;
    return STRATA_OK;
}

void strata_savepoint_release(strata_savepoint *sp) {
    if (!sp || sp->magic != SP_MAGIC) return;
    strata_txn *txn = sp->txn;
    for (strata_savepoint **pp = &txn->savepoints; *pp; pp = &(*pp)->next)
        if (*pp == sp) { *pp = sp->next; break; }
    sp_free(sp);
}

/* ---- persistent savepoints ---- */

static int sp_table(strata_txn *txn, int create, strata_table **out) {
    return db_internal_open(txn, SAVEPOINTS_NAME, create, out);
}

int db_savepoints_oldest(strata_txn *txn, uint64_t *oldest) {
    *oldest = 0;
    strata_table *t;
    int rc = sp_table(txn, 0, &t);
    if (rc) return rc == STRATA_NOTFOUND ? STRATA_OK : rc;
    bt_cursor c;
    bt_cursor_init(&c, &txn->cx, &t->tree);
    if ((rc = bt_cursor_first(&c))) return rc == STRATA_NOTFOUND ? STRATA_OK : rc;
    bt_val k;
    if ((rc = bt_cursor_get(&c, &k, NULL))) return rc;
    if (k.len != 8) return CORRUPT(txn->db->p, t->tree.root);
    *oldest = be64_get(k.data);
    return STRATA_OK;
}

int strata_psavepoint_create(strata_db *db, uint64_t *id) {
    if (!id) return STRATA_EINVAL;
    strata_txn *w;
    int rc = strata_begin_write(db, &w);
    if (rc) return rc;
    strata_table *t;
    if ((rc = sp_table(w, 1, &t)) == STRATA_OK) {
        uint8_t k[8], v[STATE_LEN];
        be64_put(k, w->snap.txnid);
        db_state_encode(v, &w->snap);
        db_table_touched(t);
        rc = bt_put(&w->cx, &t->tree, k, 8, v, sizeof v, 0, NULL);
    }
    if (rc) { strata_abort(w); return rc; }
    uint64_t saved = w->snap.txnid;
    w->sp_changed = 1;
    if ((rc = strata_commit(w)) == STRATA_OK) *id = saved;
    return rc;
}

int strata_psavepoint_delete(strata_db *db, uint64_t id) {
    strata_txn *w;
    int rc = strata_begin_write(db, &w);
    if (rc) return rc;
    strata_table *t;
    uint8_t k[8];
    be64_put(k, id);
    if ((rc = sp_table(w, 0, &t)) == STRATA_OK) {
        db_table_touched(t);
        rc = bt_del(&w->cx, &t->tree, k, 8);
    }
    if (rc) { strata_abort(w); return rc; }
    w->sp_changed = 1;
    return strata_commit(w);
}

int strata_psavepoint_list(strata_db *db, int (*fn)(void *ctx, uint64_t id, uint64_t hlc), void *ctx) {
    if (!fn) return STRATA_EINVAL;
    strata_txn *r;
    int rc = strata_begin_read(db, &r);
    if (rc) return rc;
    strata_table *t;
    if ((rc = sp_table(r, 0, &t)) == STRATA_OK) {
        bt_cursor c;
        bt_cursor_init(&c, &r->cx, &t->tree);
        for (rc = bt_cursor_first(&c); rc == STRATA_OK; rc = bt_cursor_next(&c)) {
            bt_val k, v;
            pg_state st;
            if ((rc = bt_cursor_get(&c, &k, &v)) || (rc = db_state_decode(v.data, v.len, &st))) break;
            int u = fn(ctx, st.txnid, st.hlc);
            if (u) { rc = u; break; }
        }
    }
    strata_abort(r);
    return rc == STRATA_NOTFOUND ? STRATA_OK : rc;
}

/* ---- restore ---- */

typedef struct marks { uint8_t *bits; uint64_t n; } marks;

static void mark(marks *m, pgno_t pg, uint64_t cnt) {
    for (uint64_t i = 0; i < cnt && pg + i < m->n; i++) m->bits[(pg + i) >> 3] |= (uint8_t)(1u << ((pg + i) & 7));
}

static int mark_tree(bt_ctx *cx, marks *m, pgno_t pg, ck128 ck, int depth) {
    if (!pg) return STRATA_OK;
    if (depth >= BT_MAX_DEPTH) return CORRUPT(cx->p, pg);
    const uint8_t *page;
    int rc = bt_page(cx, pg, &ck, &page);
    if (rc) return rc;
    mark(m, pg, 1);
    unsigned n = pg_n(page);
    for (unsigned i = 0; i < n && rc == STRATA_OK; i++) {
        const uint8_t *c = pg_cell(page, i);
        if (pg_type(page) == PT_BRANCH) rc = mark_tree(cx, m, bc_child(c), bc_ck(c), depth + 1);
        else if (lc_flags(c) & LF_OVERFLOW) mark(m, le64_get(lc_val(c)), pager_npages(cx->p, lc_vlen(c)));
    }
    return rc;
}

/* Mark the catalog at (root, ck) and every table in it; open handles of txn
 * (when given) override descriptors. */
static int mark_catalog(bt_ctx *cx, marks *m, pgno_t root, ck128 ck, strata_txn *txn) {
    int rc = mark_tree(cx, m, root, ck, 0);
    if (rc) return rc;
    bt_tree cat = { root, ck, 0, bt_cmp_bytes, NULL };
    bt_cursor c;
    bt_cursor_init(&c, cx, &cat);
    for (rc = bt_cursor_first(&c); rc == STRATA_OK; rc = bt_cursor_next(&c)) {
        bt_val k, v;
        cat_desc d;
        if ((rc = bt_cursor_get(&c, &k, &v))) return rc;
        if (cat_desc_decode(v.data, v.len, &d)) return CORRUPT(cx->p, root);
        pgno_t troot = d.root;
        ck128 tck = d.root_ck;
        for (strata_table *t = txn ? txn->tables : NULL; t; t = t->next)
            if (!t->dropped && strlen(t->name) == k.len && !memcmp(t->name, k.data, k.len))
                troot = t->tree.root, tck = t->tree.root_ck;
        if ((rc = mark_tree(cx, m, troot, tck, 0))) return rc;
    }
    return rc == STRATA_NOTFOUND ? STRATA_OK : rc;
}

static int restore_in(strata_txn *w, uint64_t id) {
    strata_table *sps;
    bt_val v;
    pg_state s;
    uint8_t k[8];
    be64_put(k, id);
    int rc = sp_table(w, 0, &sps);
    if (rc || (rc = bt_get(&w->cx, &sps->tree, k, 8, &v)) || (rc = db_state_decode(v.data, v.len, &s)))
        return rc;
    bt_tree keep = sps->tree;                    /* the current savepoint list survives */
    db_tables_free(w);
    w->catalog = (bt_tree){ s.cat_root, s.cat_ck, 0, bt_cmp_bytes, NULL };
    rc = bt_del(&w->cx, &w->catalog, HISTORY_NAME, strlen(HISTORY_NAME));
    if (rc && rc != STRATA_NOTFOUND) return rc;
    if ((rc = sp_table(w, 1, &sps))) return rc;
    sps->tree.root = keep.root;
    sps->tree.root_ck = keep.root_ck;
    sps->tree.count = keep.count;
    db_table_touched(sps);
    /* savepoints newer than this one cannot survive the rewind */
    for (;;) {
        bt_cursor c;
        bt_cursor_init(&c, &w->cx, &sps->tree);
        if ((rc = bt_cursor_last(&c)) == STRATA_NOTFOUND) break;
        bt_val kk;
        if (rc || (rc = bt_cursor_get(&c, &kk, NULL))) return rc;
        if (kk.len != 8) return CORRUPT(w->db->p, sps->tree.root);
        if (be64_get(kk.data) <= id) break;
        uint8_t dk[8];
        memcpy(dk, kk.data, 8);
        if ((rc = bt_del(&w->cx, &sps->tree, dk, 8))) return rc;
    }
    strata_table *meta;
    rc = db_internal_open(w, META_NAME, 0, &meta);
    w->hist_window = 0;
    if (rc == STRATA_OK && bt_get(&w->cx, &meta->tree, "history", 7, &v) == STRATA_OK && v.len == 4)
        w->hist_window = le32_get(v.data);
    if (rc && rc != STRATA_NOTFOUND) return rc;
    /* reachable: the new catalog with its tables, and every remaining savepoint */
    uint64_t pc = bt_wtx_page_count(w->w);
    marks m = { calloc(pc / 8 + 1, 1), pc };
    if (!m.bits) return STRATA_ENOMEM;
    rc = mark_catalog(&w->cx, &m, w->catalog.root, w->catalog.root_ck, w);
    bt_cursor c;
    bt_cursor_init(&c, &w->cx, &sps->tree);
    int crc;
    for (crc = bt_cursor_first(&c); rc == STRATA_OK && crc == STRATA_OK; crc = bt_cursor_next(&c)) {
        bt_val kk, vv;
        pg_state o;
        if ((rc = bt_cursor_get(&c, &kk, &vv)) || (rc = db_state_decode(vv.data, vv.len, &o))) break;
        if (o.txnid != id) rc = mark_catalog(&w->cx, &m, o.cat_root, o.cat_ck, NULL);
    }
    if (rc == STRATA_OK && crc != STRATA_NOTFOUND && crc != STRATA_OK) rc = crc;
    if (rc == STRATA_OK) rc = bt_wtx_set_freed_except(w->w, m.bits, pc);
    free(m.bits);
    if (rc) return rc;
    w->reset_free = 1;
    w->sp_changed = 1;
    return STRATA_OK;
}

int strata_psavepoint_restore(strata_db *db, uint64_t id) {
    strata_txn *w;
    int rc = strata_begin_write(db, &w);
    if (rc) return rc;
    bt_wtx_no_reuse(w->w);                       /* the old free tree is being replaced */
    if ((rc = restore_in(w, id))) { strata_abort(w); return rc; }
    return strata_commit(w);
}
