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

#endif
