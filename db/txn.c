/* db/txn.c - read and write transactions: snapshots, the reader registry, the
 * single-writer lock and the commit sequence.
 * Commit sequence (docs/ARCHITECTURE.md "Commit protocol"):
 *   1. each changed table: finalize its tree's checksums, write its descriptor
 *      into the catalog;  2. finalize the catalog;  3. write the free-page tree
 *      (pages freed by this transaction, unused reusable pages);  4. write every
 *      dirty page (pwritev);  5. durable: write the non-primary slot and flip
 *      the god byte, one fdatasync;  6. publish the new state to new readers.
 * Failures in 1-4 abort the transaction and leave the database usable; a
 * failure in 5 panics the database (every later call: STRATA_EPANIC).
 * Invariants: (1) a reader sees exactly the commit that was current at its
 * begin; (2) one write transaction at a time; (3) commit and abort free txn. */
#include <stdlib.h>
#include <string.h>

#include "db.h"
#include "db_int.h"

void db_txn_fail(strata_txn *txn) {
    if (txn && txn->magic == TXN_MAGIC && txn->write) txn->poisoned = 1;
}

struct txn_counter {
    struct txn_counter *next;
    uint64_t            value;
    char                key[];
};

uint64_t *db_txn_counter(strata_txn *txn, const char *key) {
    if (!txn || txn->magic != TXN_MAGIC || !key) return NULL;
    for (struct txn_counter *c = txn->counters; c; c = c->next)
        if (strcmp(c->key, key) == 0) return &c->value;
    size_t n = strlen(key) + 1;
    struct txn_counter *c = malloc(sizeof *c + n);
    if (!c) return NULL;
    memcpy(c->key, key, n);
    c->value = 0;
    c->next = txn->counters;
    txn->counters = c;
    return &c->value;
}

static void counters_free(strata_txn *txn) {
    while (txn->counters) {
        struct txn_counter *c = txn->counters;
        txn->counters = c->next;
        free(c);
    }
}

void db_txn_counters_bump(strata_txn *txn) {
    for (struct txn_counter *c = txn->counters; c; c = c->next) c->value++;
}

void db_txn_poison(strata_txn *txn, int rc) {
    if (rc != STRATA_OK && rc != STRATA_NOTFOUND && rc != STRATA_EINVAL && rc != STRATA_ETOOBIG &&
        rc != STRATA_EREADONLY && rc != STRATA_ETYPE && rc != STRATA_EEXIST && rc != STRATA_ENOCMP)
        txn->poisoned = 1;
}

static int reader_add(strata_db *db, const pg_state *st) {
    if (db->n_readers == db->cap_readers) {
        size_t nc = db->cap_readers ? db->cap_readers * 2 : 16;
        db_reader *n = realloc(db->readers, nc * sizeof *n);
        if (!n) return STRATA_ENOMEM;
        db->readers = n;
        db->cap_readers = nc;
    }
    db->readers[db->n_readers++] = (db_reader){ st->txnid, st->page_count };
    return STRATA_OK;
}

static void reader_remove(strata_db *db, uint64_t id) {
    for (size_t i = 0; i < db->n_readers; i++) {
        if (db->readers[i].txnid == id) { db->readers[i] = db->readers[--db->n_readers]; return; }
    }
}

static strata_txn *txn_new(strata_db *db, int write) {
    strata_txn *txn = calloc(1, sizeof *txn);
    if (!txn) return NULL;
    txn->magic = TXN_MAGIC;
    txn->db = db;
    txn->write = write;
    txn->hist_window = -1;
    return txn;
}

static void txn_setup(strata_txn *txn) {
    txn->cx.p = txn->db->p;
    txn->cx.page_count = txn->snap.page_count;
    txn->cx.w = txn->w;
    txn->catalog = (bt_tree){ txn->snap.cat_root, txn->snap.cat_ck, 0, bt_cmp_bytes, NULL };
}

int db_begin_read_state(strata_db *db, const pg_state *st, strata_txn **out) {
    strata_txn *txn = txn_new(db, 0);
    if (!txn) return STRATA_ENOMEM;
    txn->snap = *st;
    int rc = reader_add(db, st);
    if (rc) { free(txn); return rc; }
    txn_setup(txn);
    *out = txn;
    return STRATA_OK;
}

int strata_begin_read(strata_db *db, strata_txn **out) {
    if (!db || db->magic != DB_MAGIC || !out) return STRATA_EINVAL;
    if (db->p->panic) return STRATA_EPANIC;
    strata_txn *txn = txn_new(db, 0);
    if (!txn) return STRATA_ENOMEM;
    pthread_mutex_lock(&db->mu);
    txn->snap = db->cur;
    int rc = reader_add(db, &txn->snap);
    pthread_mutex_unlock(&db->mu);
    if (rc) { free(txn); return rc; }
    txn_setup(txn);
    *out = txn;
    return STRATA_OK;
}

int strata_begin_write_ex(strata_db *db, unsigned flags, strata_txn **out) {
    if (!db || db->magic != DB_MAGIC || !out || (flags & ~STRATA_TXN_TRY)) return STRATA_EINVAL;
    if (db->rdonly) return STRATA_EREADONLY;
    if (db->p->panic) return STRATA_EPANIC;
    strata_txn *txn = txn_new(db, 1);
    if (!txn) return STRATA_ENOMEM;
    pthread_mutex_lock(&db->mu);
    while (db->writer_active) {
        if (flags & STRATA_TXN_TRY) {
            pthread_mutex_unlock(&db->mu);
            free(txn);
            return STRATA_EBUSY;
        }
        pthread_cond_wait(&db->writer_cv, &db->mu);
    }
    db->writer_active = 1;
    txn->snap = db->cur;
    txn->hlc = db_hlc_next_locked(db);
    uint64_t vhorizon = txn->snap.txnid;          /* the oldest snapshot still in use */
    if (db->hist_oldest && db->hist_oldest < vhorizon) vhorizon = db->hist_oldest;
    if (db->sp_oldest && db->sp_oldest < vhorizon) vhorizon = db->sp_oldest;
    for (size_t i = 0; i < db->n_readers; i++)
        if (db->readers[i].txnid < vhorizon) vhorizon = db->readers[i].txnid;
    uint64_t horizon = db->durable_txnid < vhorizon ? db->durable_txnid : vhorizon;
    pthread_mutex_unlock(&db->mu);
    int rc = bt_wtx_begin(db->p, &txn->snap, txn->snap.txnid + 1, horizon, &txn->w);
    if (rc == STRATA_OK) bt_wtx_set_volatile(txn->w, db_vset_has, db, vhorizon);
    if (rc) {
        txn->magic = TXN_MAGIC;
        strata_abort(txn);
        return rc;
    }
    txn_setup(txn);
    *out = txn;
    return STRATA_OK;
}

int strata_begin_write(strata_db *db, strata_txn **out) {
    return strata_begin_write_ex(db, 0, out);
}

static void txn_end(strata_txn *txn) {
    strata_db *db = txn->db;
    db_savepoints_free(txn);
    db_tables_free(txn);
    db_arena_free(txn);
    counters_free(txn);
    if (txn->write) bt_wtx_free(txn->w);
    pthread_mutex_lock(&db->mu);
    if (txn->write) {
        db->writer_active = 0;
        pthread_cond_signal(&db->writer_cv);
    } else {
        reader_remove(db, txn->snap.txnid);
    }
    pthread_mutex_unlock(&db->mu);
    txn->magic = DEAD_MAGIC;
    free(txn);
}

void strata_abort(strata_txn *txn) {
    if (!txn || txn->magic != TXN_MAGIC) return;
    txn_end(txn);
}

int strata_txn_set_durability(strata_txn *txn, int durability) {
    if (!txn || txn->magic != TXN_MAGIC) return STRATA_EINVAL;
    if (durability != STRATA_DURABILITY_IMMEDIATE && durability != STRATA_DURABILITY_NONE)
        return STRATA_EINVAL;
    if (!txn->write) return STRATA_EREADONLY;
    txn->durability = durability;
    return STRATA_OK;
}

int strata_txn_id(const strata_txn *txn, uint64_t *id) {
    if (!txn || txn->magic != TXN_MAGIC || !id) return STRATA_EINVAL;
    *id = txn->write ? txn->snap.txnid + 1 : txn->snap.txnid;
    return STRATA_OK;
}

static int commit_write(strata_txn *txn) {
    strata_db *db = txn->db;
    pager *p = db->p;
    uint64_t oldest = 0, sp_oldest = 0;
    int rc = bt_wtx_release_superseded(txn->w);
    if (rc == STRATA_OK) rc = db_history_commit(txn, &oldest);
    if (rc == STRATA_OK && txn->sp_changed) rc = db_savepoints_oldest(txn, &sp_oldest);
    if (rc == STRATA_OK) rc = db_tables_commit(txn);
    if (rc == STRATA_OK) rc = bt_finalize(&txn->cx, &txn->catalog);
    bt_tree ft = { txn->snap.free_root, txn->snap.free_ck, 0, bt_cmp_bytes, NULL };
    if (txn->reset_free) ft.root = 0;
    if (rc == STRATA_OK) rc = bt_wtx_commit_freelist(txn->w, &ft);
    if (rc) return rc;
    pg_state st = txn->snap;
    st.txnid = txn->snap.txnid + 1;
    st.cat_root = txn->catalog.root;
    st.cat_ck = txn->catalog.root_ck;
    st.free_root = ft.root;
    st.free_ck = ft.root_ck;
    st.page_count = bt_wtx_page_count(txn->w);
    st.hlc = txn->hlc;
    if ((rc = pager_write_dirty(p, bt_wtx_dirty(txn->w), st.page_count))) return rc;
    if (txn->durability == STRATA_DURABILITY_IMMEDIATE) {
        if ((rc = pager_write_header(p, &st))) return STRATA_EPANIC;
    }
    if (txn->durability == STRATA_DURABILITY_IMMEDIATE) db_vset_clear(db);
    else db_vset_add_dirty(db, bt_wtx_dirty(txn->w));
    pthread_mutex_lock(&db->mu);
    db->cur = st;
    db->hist_oldest = oldest;
    if (txn->sp_changed) db->sp_oldest = sp_oldest;
    if (txn->hist_window >= 0) db->hist_window = (uint32_t)txn->hist_window;
    if (txn->durability == STRATA_DURABILITY_IMMEDIATE) db->durable_txnid = st.txnid;
    pthread_mutex_unlock(&db->mu);
    return STRATA_OK;
}

int strata_commit(strata_txn *txn) {
    if (!txn || txn->magic != TXN_MAGIC) return STRATA_EINVAL;
    int rc = STRATA_OK;
    if (txn->write) {
        if (txn->db->p->panic) rc = STRATA_EPANIC;
        else if (txn->poisoned) rc = STRATA_EBADTXN;
        else rc = commit_write(txn);
    }
    txn_end(txn);
    return rc;
}
