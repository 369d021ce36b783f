/* db/db.c - opening and closing a database, recovery after an unclean
 * shutdown, comparators, and db-level information.
 * Invariants: (1) after open, cur == the newest commit that verifies: the
 * primary slot if every page written since the older slot matches its
 * checksum, else the older slot (p->recovered); (2) close makes any non-durable
 * commit durable and trims the file to its page count. */
#include <stdlib.h>
#include <string.h>

#include "db_int.h"


static int db_recover(pager *p) {
    if (!pager_unclean(p) || (!p->have_other && p->recovered)) return STRATA_OK;
    uint64_t since = p->have_other ? p->other.txnid : 0;
    int rc = bt_verify_since(p, &p->durable, since);
    if (rc == STRATA_ECORRUPT) {
        if ((rc = pager_fallback(p))) return rc;
        memset((void *)p->vbits, 0, p->vbits_len);   /* bits set by the failed walk */
    }
    return rc;
}

int db_open_backend(io_backend *io, unsigned flags, const strata_options *opts, strata_db **out) {
    strata_options defaults = { 0 };
    if (!opts) opts = &defaults;
    if (opts->verify < STRATA_VERIFY_ONCE || opts->verify > STRATA_VERIFY_FULL) {
        io_close(io);
        return STRATA_EINVAL;
    }
    pager_opts po = { opts->page_size, opts->map_size, opts->verify, opts->two_phase,
                      (flags & STRATA_RDONLY) != 0, (flags & (STRATA_CREATE | STRATA_INMEMORY)) != 0 };
    strata_db *db = calloc(1, sizeof *db);
    if (!db) { io_close(io); return STRATA_ENOMEM; }
    int rc = pager_open(io, &po, &db->p);
    if (rc) { free(db); return rc; }
    if ((rc = db_recover(db->p))) { pager_close(db->p); free(db); return rc; }
    db->cur = db->p->durable;
    db->durable_txnid = db->cur.txnid;
    db->hlc_last = db->cur.hlc;
    db->hlc_max_drift = 60000;
    db->rdonly = (flags & STRATA_RDONLY) != 0;
    pthread_mutex_init(&db->mu, NULL);
    pthread_cond_init(&db->writer_cv, NULL);
    pthread_cond_init(&db->gc_cv, NULL);
    db->magic = DB_MAGIC;
    if ((rc = db_history_load(db))) { db_close_nosync(db); return rc; }
    *out = db;
    return STRATA_OK;
}

int strata_open_ex(const char *path, unsigned flags, const strata_options *opts, strata_db **out) {
    if (!out || (flags & ~(STRATA_CREATE | STRATA_RDONLY | STRATA_INMEMORY))) return STRATA_EINVAL;
    if ((flags & STRATA_INMEMORY) && (flags & STRATA_RDONLY)) return STRATA_EINVAL;
    if (opts && opts->page_size && (opts->page_size < 4096 || opts->page_size > 65536 ||
                                    (opts->page_size & (opts->page_size - 1))))
        return STRATA_EINVAL;
    io_backend *io;
    int rc;
    if (flags & STRATA_INMEMORY) {
        rc = io_mem_open(&io);
    } else {
        if (!path || !*path) return STRATA_EINVAL;
        int iof = ((flags & STRATA_CREATE) ? IO_OPEN_CREATE : 0) |
                  ((flags & STRATA_RDONLY) ? IO_OPEN_RDONLY : 0);
        rc = io_file_open(path, iof, &io);
    }
    if (rc) return rc;
    return db_open_backend(io, flags, opts, out);
}

int strata_open(const char *path, unsigned flags, strata_db **out) {
    return strata_open_ex(path, flags, NULL, out);
}

void db_close_nosync(strata_db *db) {
    if (!db || db->magic != DB_MAGIC) return;
    db->magic = DEAD_MAGIC;
    pager_close(db->p);
    pthread_mutex_destroy(&db->mu);
    pthread_cond_destroy(&db->writer_cv);
    pthread_cond_destroy(&db->gc_cv);
    free(db->readers);
    free(db->cmps);
    free(db->vset);
    free(db);
}

void strata_close(strata_db *db) {
    if (!db || db->magic != DB_MAGIC) return;
    pager *p = db->p;
    if (!db->rdonly && !p->panic) {
        if (db->cur.txnid != p->durable.txnid) (void)pager_write_header(p, &db->cur);
        if (!p->panic) (void)pager_close_clean(p, db->cur.page_count);
    }
    db_close_nosync(db);
}

int strata_register_comparator(strata_db *db, const char *name, strata_cmp_fn fn, void *ctx) {
    if (!db || db->magic != DB_MAGIC || !name || !fn) return STRATA_EINVAL;
    size_t len = strlen(name);
    if (len == 0 || len > CAT_CMP_MAX) return STRATA_EINVAL;
    pthread_mutex_lock(&db->mu);
    int rc = STRATA_OK;
    for (size_t i = 0; i < db->n_cmps; i++)
        if (!strcmp(db->cmps[i].name, name)) rc = STRATA_EEXIST;
    if (rc == STRATA_OK) {
        cmp_entry *n = realloc(db->cmps, (db->n_cmps + 1) * sizeof *n);
        if (!n) rc = STRATA_ENOMEM;
        else {
            db->cmps = n;
            memcpy(n[db->n_cmps].name, name, len + 1);
            n[db->n_cmps].fn = fn;
            n[db->n_cmps].ctx = ctx;
            db->n_cmps++;
        }
    }
    pthread_mutex_unlock(&db->mu);
    return rc;
}

int strata_db_info(strata_db *db, strata_info *out) {
    if (!db || db->magic != DB_MAGIC || !out) return STRATA_EINVAL;
    strata_txn *txn;
    int rc = strata_begin_read(db, &txn);
    if (rc) return rc;
    strata_info in = { 0 };
    in.page_size = db->p->ps;
    in.last_txn_id = txn->snap.txnid;
    in.page_count = txn->snap.page_count;
    bt_tree ft = { txn->snap.free_root, txn->snap.free_ck, 0, bt_cmp_bytes, NULL };
    rc = bt_free_pages(&txn->cx, &ft, &in.free_pages);
    pthread_mutex_lock(&db->mu);
    in.durable_txn_id = db->durable_txnid;
    pthread_mutex_unlock(&db->mu);
    if (rc == STRATA_OK) rc = db->p->io->ops->get_len(db->p->io, &in.file_size);
    in.map_size = db->p->map_size;
    in.recovered = db->p->recovered;
    in.read_only = db->rdonly;
    strata_abort(txn);
    if (rc == STRATA_OK) *out = in;
    return rc;
}
