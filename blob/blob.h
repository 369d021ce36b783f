/* blob/blob.h - what the blob layer offers the layers above it (query/):
 * the public strata_blob_* API plus the names of its tables, so a composite
 * query can range-scan them directly. Layouts: docs/BLOBS.md. */
#ifndef STRATA_BLOB_H
#define STRATA_BLOB_H

#include "strata.h"

/* Table names, indexed by the BT_* constants of blob_int.h; all start with
 * "blob:" (names starting with "__" are reserved for the engine itself). */
extern const char *const blob_table_names[];
/* Key type of each table, same index. Besides these, one STRATA_VECTOR
 * table per embedding dimension in use, "blob:vec:<dim>" (docs/BLOBS.md
 * "Embeddings"); blob:embed maps a blob id to that dimension. */
extern const strata_key_type blob_table_keys[];

#endif /* STRATA_BLOB_H */
