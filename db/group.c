/* db/group.c - group commit: submitters queue their batches; the first
 * submitter that finds no leader becomes one, takes the whole queue, applies
 * every batch in one write transaction and commits it with one fsync, then
 * wakes everyone. A batch that fails is dropped and the group replayed
 * without it.
 * Invariants: (1) every queued request is finished (done = 1, rc set) by
 * exactly one leader, whatever happens, so no submitter waits forever;
 * (2) a request's rc is its batch's error, or the group commit's result. */
#include <stdlib.h>

#include "db_int.h"

typedef struct gc_req {
    strata_batch_fn fn;
    void           *ctx;
    int             rc;
    int             done;
    int             failed;     /* its batch failed: left out of replays */
    struct gc_req  *next;
} gc_req;

/* Apply and commit the group; sets rc of every request. */
static void run_group(strata_db *db, gc_req *group) {
    for (;;) {
        strata_txn *txn;
        int rc = strata_begin_write(db, &txn);
        if (rc) {
            for (gc_req *r = group; r; r = r->next)
                if (!r->failed) r->rc = rc;
            return;
        }
        gc_req *bad = NULL;
        int any = 0;
        for (gc_req *r = group; r && !bad; r = r->next) {
            if (r->failed) continue;
            int brc = r->fn(r->ctx, txn);
            if (brc == STRATA_OK && txn->poisoned) brc = STRATA_EBADTXN;
            if (brc != STRATA_OK) { r->rc = brc; r->failed = 1; bad = r; }
            any = 1;
        }
        if (bad) { strata_abort(txn); continue; }      /* replay without it */
        if (!any) { strata_abort(txn); return; }
        /* every batch was promised a durable commit: a batch function that
         * set the shared txn to DURABILITY_NONE does not decide for the group */
        (void)strata_txn_set_durability(txn, STRATA_DURABILITY_IMMEDIATE);
        rc = strata_commit(txn);
        for (gc_req *r = group; r; r = r->next)
            if (!r->failed) r->rc = rc;
        return;
    }
}

int strata_group_commit(strata_db *db, strata_batch_fn fn, void *ctx) {
    if (!db || db->magic != DB_MAGIC || !fn) return STRATA_EINVAL;
    if (db->rdonly) return STRATA_EREADONLY;
    gc_req me = { fn, ctx, STRATA_OK, 0, 0, NULL };
    pthread_mutex_lock(&db->mu);
    if (db->gc_tail) db->gc_tail->next = &me;
    else db->gc_head = &me;
    db->gc_tail = &me;
    while (!me.done) {
        if (db->gc_leader) {
            pthread_cond_wait(&db->gc_cv, &db->mu);
            continue;
        }
        db->gc_leader = 1;
        gc_req *group = db->gc_head;
        db->gc_head = db->gc_tail = NULL;
        pthread_mutex_unlock(&db->mu);
        run_group(db, group);
        pthread_mutex_lock(&db->mu);
        for (gc_req *r = group; r;) {
            gc_req *next = r->next;           /* r may be freed by its owner once done */
            r->done = 1;
            r = next;
        }
        db->gc_leader = 0;
        pthread_cond_broadcast(&db->gc_cv);
    }
    pthread_mutex_unlock(&db->mu);
    return me.rc;
}
