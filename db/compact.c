/* db/compact.c - strata_compact: relocate, then shrink, in ordinary commits.
 * Each round takes every reusable free page, moves the pages of every tree
 * that sit at or above the ideal end of the file (used pages + 1) into the
 * lowest free pages, and commits durably; the pages it freed become reusable
 * in the next round, which drops the free pages at the end of the file from
 * the free list, lowers the page count, commits, and truncates the file.
 * Invariants: (1) every step is a normal copy-on-write commit, so a crash at
 * any point leaves the last committed state; (2) pages still needed by a live
 * reader or a retained commit are never dropped (the horizon rules apply), and
 * the file keeps every page below a live reader's page count (a backup copies
 * them all, free ones too, from the map: db_int.h invariant (2)). */
#include <stdlib.h>
#include <string.h>

#include "db_int.h"

/* One round: drop free pages at the end, relocate everything above the cutoff. */
static int round_relocate(strata_db *db, int *shrunk) {
    strata_txn *w;
    int rc = strata_begin_write(db, &w);
    if (rc) return rc;
    bt_wtx_low_first(w->w);
    if ((rc = bt_wtx_take_all(w->w))) goto fail;
    uint64_t before = bt_wtx_page_count(w->w);
    uint64_t after = bt_wtx_shrink(w->w);          /* free pages already at the end */
    *shrunk = after < before;
    uint64_t used = after - 1 - bt_wtx_pool_pages(w->w);
    pgno_t cutoff = used + 1;
    /* every table (internal ones included) through a handle, then the catalog */
    bt_cursor c;
    bt_cursor_init(&c, &w->cx, &w->catalog);
    char name[CAT_NAME_MAX + 1];
    int crc;
    for (crc = bt_cursor_first(&c); crc == STRATA_OK; crc = bt_cursor_next(&c)) {
        bt_val k, v;
        cat_desc d;
        if ((rc = bt_cursor_get(&c, &k, &v))) goto fail;
        if (k.len > CAT_NAME_MAX || cat_desc_decode(v.data, v.len, &d)) { rc = CORRUPT(db->p, w->catalog.root); goto fail; }
        memcpy(name, k.data, k.len);
        name[k.len] = 0;
        strata_table *t;
        strata_table_spec spec;
        unsigned fl = db_desc_spec(&d, &spec);
        rc = db_table_open(w, name, &spec, fl, 1, &t);
        if (rc == STRATA_ENOCMP) {                     /* relocation does not compare keys */
            t = NULL;
            bt_tree tr = { d.root, d.root_ck, d.count, bt_cmp_bytes, NULL };
            if ((rc = bt_relocate(&w->cx, &tr, cutoff))) goto fail;
            if (tr.root != d.root) { rc = STRATA_ENOCMP; goto fail; }   /* would need its handle */
            continue;
        }
        if (rc) goto fail;
        if ((rc = bt_relocate(&w->cx, &t->tree, cutoff))) goto fail;
        t->dirty = 1;            /* descriptors are rewritten at commit; the cursor stays valid */
    }
    if (crc != STRATA_NOTFOUND) { rc = crc; goto fail; }
    if ((rc = bt_relocate(&w->cx, &w->catalog, cutoff))) goto fail;
    return strata_commit(w);
fail:
    strata_abort(w);
    return rc;
}

int strata_compact(strata_db *db, uint64_t *before, uint64_t *after) {
    if (!db || db->magic != DB_MAGIC) return STRATA_EINVAL;
    if (db->rdonly) return STRATA_EREADONLY;
    uint64_t b;
    int rc = db->p->io->ops->get_len(db->p->io, &b);
    if (rc) return rc;
    uint64_t last = UINT64_MAX;
    int stalled = 0;              /* freed pages become reusable one round later */
    for (int round = 0; round < 10 && stalled < 2; round++) {
        int shrunk;
        if ((rc = round_relocate(db, &shrunk))) return rc;
        strata_txn *w;                                /* the writer lock guards the file length */
        if ((rc = strata_begin_write(db, &w))) return rc;
        uint64_t pc = w->snap.page_count, keep = pc;
        pthread_mutex_lock(&db->mu);
        for (size_t i = 0; i < db->n_readers; i++)
            if (db->readers[i].pages > keep) keep = db->readers[i].pages;
        pthread_mutex_unlock(&db->mu);
        rc = pager_shrink(db->p, keep);
        strata_abort(w);
        if (rc) return rc;
        stalled = pc >= last && !shrunk ? stalled + 1 : 0;
        if (pc < last) last = pc;
    }
    if (before) *before = b;
    if (after) rc = db->p->io->ops->get_len(db->p->io, after);
    return rc;
}
