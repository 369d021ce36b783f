/* db/db.h - what db/ offers the layers above it (ivfpq/, fractal/, blob/,
 * query/) beyond the public API: opening internal tables, whose names start
 * with the reserved "__" prefix (e.g. "__ivf:NAME:lists"), so that indexes can
 * keep their structures out of the user's namespace. Everything else those
 * layers need is in include/strata.h. */
#ifndef STRATA_DB_H
#define STRATA_DB_H

#include "strata.h"

/* As strata_table_open_ex, but names starting with "__" are allowed (and
 * required: a name without the prefix is STRATA_EINVAL). Owner thread. */
int db_internal_table_open(strata_txn *txn, const char *name, const strata_table_spec *spec,
                           unsigned flags, strata_table **out);

/* Drop internal table `name` ("__" prefix required, else STRATA_EINVAL): its
 * pages are freed and its catalog entry removed in write transaction txn, as
 * strata_table_drop. Returns STRATA_OK, STRATA_NOTFOUND, storage errors. */
int db_internal_table_drop(strata_txn *txn, const char *name);

/* Make write transaction txn abort-only: every later call on it except
 * strata_abort (and a rollback to a savepoint taken before) returns
 * STRATA_EBADTXN. For an operation of a layer above that failed after some
 * of its writes (a blob delete that met a damaged row half-way), so that the
 * half-done operation can never be committed: what the engine does for its
 * own multi-page writes. NULL-safe. */
void db_txn_fail(strata_txn *txn);

/* A counter named key (a NUL-terminated string, e.g. "__frac:NAME") that
 * lives as long as txn, starting at 0; the same key gives the same counter.
 * Every savepoint rollback in txn bumps every counter. For a layer above that
 * caches rows of txn in memory (an index handle's tree or model, a blob
 * writer's position): it notes the value when it fills the cache, bumps the
 * counter after its own writes (so other handles of the same key see them),
 * and reloads (or revalidates) when it finds a value it did not leave. NULL
 * when out of memory or txn is not live. The pointer is valid until txn
 * ends. */
uint64_t *db_txn_counter(strata_txn *txn, const char *key);

#endif
