/* db/volatile.c - page reuse across non-durable commits.
 * vset holds the pages written by commits that are not durable yet: none of
 * them is reachable from the last durable commit. When a later commit frees
 * such pages, the free tree records them in entries flagged FT_VOL, which a
 * writer may reuse as soon as no snapshot (reader, retained commit,
 * savepoint) can see them, without waiting for a durable commit (LMDB's
 * NOSYNC behaviour). Without this, a run of STRATA_DURABILITY_NONE commits
 * would grow the file until the next durable commit.
 * Invariants: (1) vset is in memory only, owned by the writer lock: after a
 * crash the durable commit is intact because vset pages were never part of
 * it; (2) a durable commit empties vset; (3) the free tree stays complete
 * for every snapshot (flagged entries are ordinary entries). */
#include <stdlib.h>

#include "db_int.h"

static size_t hslot(uint64_t pg, size_t cap) { return (size_t)((pg * 0x9E3779B97F4A7C15ull) >> 32) & (cap - 1); }

int db_vset_has(void *ctx, pgno_t pg) {
    const strata_db *db = ctx;
    if (!db->vset_cap) return 0;
    for (size_t i = hslot(pg, db->vset_cap);; i = (i + 1) & (db->vset_cap - 1)) {
        if (db->vset[i] == pg) return 1;
        if (db->vset[i] == 0) return 0;
    }
}

static int vset_add(strata_db *db, pgno_t pg) {
    if ((db->vset_n + 1) * 2 > db->vset_cap) {
        size_t nc = db->vset_cap ? db->vset_cap * 2 : 1024;
        pgno_t *nv = calloc(nc, sizeof *nv);
        if (!nv) return STRATA_ENOMEM;
        for (size_t i = 0; i < db->vset_cap; i++) {
            if (!db->vset[i]) continue;
            size_t j = hslot(db->vset[i], nc);
            while (nv[j]) j = (j + 1) & (nc - 1);
            nv[j] = db->vset[i];
        }
        free(db->vset);
        db->vset = nv;
        db->vset_cap = nc;
    }
    size_t i = hslot(pg, db->vset_cap);
    while (db->vset[i] && db->vset[i] != pg) i = (i + 1) & (db->vset_cap - 1);
    if (!db->vset[i]) { db->vset[i] = pg; db->vset_n++; }
    return STRATA_OK;
}

void db_vset_clear(strata_db *db) {
    free(db->vset);
    db->vset = NULL;
    db->vset_cap = db->vset_n = 0;
}

/* After a non-durable commit: remember every page it wrote. On ENOMEM the
 * page is simply treated as durable-reachable later (never reused early). */
void db_vset_add_dirty(strata_db *db, const dirty_map *dm) {
    for (size_t i = 0; i < dm->cap; i++) {
        const dpage *d = &dm->slots[i];
        for (uint32_t k = 0; d->pg && k < d->npages; k++)
            if (vset_add(db, d->pg + k)) return;
    }
}
