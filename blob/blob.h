/* blob/blob.h - what the blob layer offers the layers above it (query/):
 * the public strata_blob_* API plus the names of its tables, so a composite
 * query can range-scan them directly, and the two readers of the embedding
 * layout. Layouts: docs/BLOBS.md. */
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

/* Open the vector table of dimension dim (create != 0 creates it). A table of
 * that name that is not a vector table of that dimension is STRATA_ECORRUPT;
 * a missing one STRATA_NOTFOUND; dim 0 or above STRATA_VEC_MAX_DIM is
 * STRATA_ECORRUPT (it comes from a damaged index row). (embed.c) */
int blob_vec_tab(strata_txn *txn, uint32_t dim, int create, strata_table **out);
/* Decode a blob:embed value: STRATA_OK with *dim (1..STRATA_VEC_MAX_DIM), or
 * STRATA_ECORRUPT. (embed.c) */
int blob_embed_decode(strata_slice v, uint32_t *dim);

#endif /* STRATA_BLOB_H */
