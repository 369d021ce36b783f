/* db/hlc.c - the database clock and hybrid logical clock.
 * An HLC value is (physical ms << 16) | logical. Invariants: (1) db->hlc_last
 * only grows (under db->mu); (2) every write transaction takes a fresh value at
 * begin, stored in its commit slot, so commit HLCs increase with commit ids and
 * survive reopen (open seeds hlc_last from the newest commit); (3) a remote
 * timestamp further ahead of the local clock than the max drift is refused. */
#include <time.h>

#include "db_int.h"

uint64_t db_now_ms(strata_db *db) {
    if (db->clock) return db->clock(db->clock_ctx);
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    return (uint64_t)ts.tv_sec * 1000u + (uint64_t)ts.tv_nsec / 1000000u;
}

uint64_t db_hlc_next_locked(strata_db *db) {
    uint64_t pt = db_now_ms(db), last = db->hlc_last;
    uint64_t h = pt > (last >> 16) ? pt << 16 : last + 1;   /* logical overflow carries */
    db->hlc_last = h;
    return h;
}

int strata_set_clock(strata_db *db, strata_clock_fn fn, void *ctx) {
    if (!db || db->magic != DB_MAGIC) return STRATA_EINVAL;
    pthread_mutex_lock(&db->mu);
    db->clock = fn;
    db->clock_ctx = ctx;
    pthread_mutex_unlock(&db->mu);
    return STRATA_OK;
}

int strata_txn_hlc(const strata_txn *txn, uint64_t *hlc) {
    if (!txn || txn->magic != TXN_MAGIC || !hlc) return STRATA_EINVAL;
    *hlc = txn->write ? txn->hlc : txn->snap.hlc;
    return STRATA_OK;
}

int strata_hlc_now(strata_db *db, uint64_t *hlc) {
    if (!db || db->magic != DB_MAGIC || !hlc) return STRATA_EINVAL;
    pthread_mutex_lock(&db->mu);
    *hlc = db_hlc_next_locked(db);
    pthread_mutex_unlock(&db->mu);
    return STRATA_OK;
}

int strata_hlc_receive(strata_db *db, uint64_t remote) {
    if (!db || db->magic != DB_MAGIC) return STRATA_EINVAL;
    int rc = STRATA_OK;
    pthread_mutex_lock(&db->mu);
    uint64_t now = db_now_ms(db), phys = remote >> 16;     /* no now + drift: it can wrap */
    if (db->hlc_max_drift && phys > now && phys - now > db->hlc_max_drift) rc = STRATA_EINVAL;
    else if (remote > db->hlc_last) db->hlc_last = remote;
    pthread_mutex_unlock(&db->mu);
    return rc;
}

int strata_hlc_set_max_drift(strata_db *db, uint64_t ms) {
    if (!db || db->magic != DB_MAGIC) return STRATA_EINVAL;
    pthread_mutex_lock(&db->mu);
    db->hlc_max_drift = ms;
    pthread_mutex_unlock(&db->mu);
    return STRATA_OK;
}
