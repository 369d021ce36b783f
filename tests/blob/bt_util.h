/* tests/blob/bt_util.h - helpers shared by the blob tests: a database in a
 * fresh temporary directory, reopen, seeded data, and asserting wrappers. */
#ifndef BT_UTIL_H
#define BT_UTIL_H

#include <stddef.h>
#include <stdint.h>

#include "strata.h"

typedef struct tdb {
    char       dir[64];
    char       path[96];
    strata_db *db;
} tdb;

void tdb_open(tdb *t);            /* create; asserts */
void tdb_reopen(tdb *t);          /* close and open again; asserts */
void tdb_close(tdb *t);           /* close and remove the files */
strata_txn *tw(tdb *t);           /* begin a write txn; asserts */
strata_txn *tr(tdb *t);           /* begin a read txn; asserts */
void tcommit(strata_txn *txn);    /* commit; asserts */

/* Deterministic pseudo-random bytes (xorshift64*) from seed. */
void fill_random(uint8_t *buf, size_t n, uint64_t seed);
uint8_t *random_buf(size_t n, uint64_t seed);   /* malloc'd; asserts */
void sha256_of(const void *p, size_t n, uint8_t out[32]);
/* Read blob id whole (malloc'd) through a reader in pieces of `piece` bytes. */
uint8_t *read_whole(strata_txn *txn, uint64_t id, size_t piece, size_t *len);
/* strata_check and strata_blob_check (with hashes) are clean on a read txn. */
void assert_consistent(tdb *t);
/* Collect ids from a listing function into ids[] (cap 256). */
typedef struct id_list { uint64_t v[256]; size_t n; } id_list;
int id_collect(void *ctx, uint64_t id);

#endif
