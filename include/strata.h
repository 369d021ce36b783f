/* strata.h - the one public header of Strata, an embedded multi-modal database.
 *
 * Everything that is API is declared here; nothing else is installed.
 * Conventions (see docs/ARCHITECTURE.md and the README):
 *  - every function that can fail returns an int error code, STRATA_OK (0) on
 *    success, a negative STRATA_E* value otherwise; strata_strerror() names it;
 *  - out-parameters are written only on success;
 *  - handles are opaque; destructors accept NULL;
 *  - a slice returned by a read points into the memory map and stays valid until
 *    its transaction ends (in a write transaction: until the next write in it);
 *  - thread-safety is stated per function: "any thread", "owner thread" (the one
 *    thread using the transaction at a time) or "exclusive" (no other call on
 *    the same handle may run concurrently).
 */
#ifndef STRATA_H
#define STRATA_H

#include <stddef.h>
#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

#if defined(STRATA_BUILDING) && defined(__GNUC__)
#define STRATA_API __attribute__((visibility("default")))
#else
#define STRATA_API
#endif

#define STRATA_VERSION_MAJOR 0
#define STRATA_VERSION_MINOR 1
#define STRATA_VERSION_PATCH 0
#define STRATA_VERSION_NUMBER \
    (STRATA_VERSION_MAJOR * 10000 + STRATA_VERSION_MINOR * 100 + STRATA_VERSION_PATCH)

/* Runtime version of the linked library; compare with STRATA_VERSION_NUMBER. Any thread. */
STRATA_API int strata_version_number(void);

/* ------------------------------------------------------------------------ */
/* Handles and slices                                                        */

typedef struct strata_db     strata_db;      /* an open database file            */
typedef struct strata_txn    strata_txn;     /* a read or write transaction      */
typedef struct strata_table  strata_table;   /* a table opened in one transaction;
                                                freed when that transaction ends */
typedef struct strata_cursor strata_cursor;  /* ditto; close it, or it is freed
                                                with its transaction             */
typedef struct strata_slice { const void *data; size_t len; } strata_slice;

/* ------------------------------------------------------------------------ */
/* Error codes: values are ABI, append only, never renumbered.               */

enum {
    STRATA_OK        = 0,
    STRATA_NOTFOUND  = -1,   /* key, table or position does not exist          */
    STRATA_EINVAL    = -2,   /* invalid argument (NULL handle, bad flag, ...)  */
    STRATA_ENOMEM    = -3,   /* out of memory                                  */
    STRATA_EIO       = -4,   /* the operating system reported an I/O error     */
    STRATA_ECORRUPT  = -5,   /* the file is damaged (checksum, structure)      */
    STRATA_EBADTXN   = -6,   /* transaction unusable: failed earlier or ended  */
    STRATA_EPANIC    = -7,   /* a commit failed half-way; reopen the database  */
    STRATA_EBUSY     = -8,   /* locked: writer busy (try) or file already open */
    STRATA_ETYPE     = -9,   /* table exists with another key or table type    */
    STRATA_EREADONLY = -10,  /* write in a read transaction or read-only db    */
    STRATA_ENOSPC    = -11,  /* disk full, or the map size is exhausted        */
    STRATA_EEXIST    = -12,  /* already exists                                 */
    STRATA_EVERSION  = -13,  /* file written by an unsupported format version  */
    STRATA_ETOOBIG   = -14,  /* key or value larger than the format allows     */
    STRATA_ENOCMP    = -15,  /* table needs a comparator that is not registered*/
};

/* A static, human-readable message for rc; never NULL. Any thread. */
STRATA_API const char *strata_strerror(int rc);

/* ------------------------------------------------------------------------ */
/* Opening and closing                                                       */

#define STRATA_CREATE   0x1u   /* create the file if it does not exist */
#define STRATA_RDONLY   0x2u   /* open read-only: write transactions get STRATA_EREADONLY */
#define STRATA_INMEMORY 0x4u   /* no file: the database lives in memory (path ignored) */

/* Checksum verification of pages on read. Every page is protected by the
 * xxh3-128 checksum its parent stores (a Merkle tree). */
#define STRATA_VERIFY_ONCE 0   /* default: verify each page the first time it is read */
#define STRATA_VERIFY_OFF  1   /* trust the file (fastest; corruption may go unseen) */
#define STRATA_VERIFY_FULL 2   /* verify on every read (slowest, paranoid)           */

typedef struct strata_options {
    uint32_t page_size;   /* bytes, power of two 4096..65536; 0 = 4096; used at create */
    uint64_t map_size;    /* address space reserved for the map; 0 = 1 TiB (64-bit)   */
    int      verify;      /* STRATA_VERIFY_*                                           */
    int      two_phase;   /* 1: commit with two fsyncs (data, then header)             */
} strata_options;

/* Open (or with STRATA_CREATE create) the database at path.
 * Returns: STRATA_OK, STRATA_EINVAL, STRATA_ENOMEM, STRATA_EIO, STRATA_NOTFOUND
 * (no file and no STRATA_CREATE), STRATA_ECORRUPT (not a Strata file, truncated,
 * damaged), STRATA_EVERSION, STRATA_EBUSY (already open by this or another process).
 * *out lives until strata_close(). Any thread. */
STRATA_API int  strata_open(const char *path, unsigned flags, strata_db **out);
/* As strata_open, with options (opts may be NULL for defaults). */
STRATA_API int  strata_open_ex(const char *path, unsigned flags, const strata_options *opts,
                               strata_db **out);
/* Close db. Pending non-durable commits are made durable first. NULL-safe.
 * All transactions must have ended. Exclusive. */
STRATA_API void strata_close(strata_db *db);

/* ------------------------------------------------------------------------ */
/* Transactions                                                              */

/* Begin a read transaction: a stable snapshot of the last commit.
 * Returns: STRATA_OK, STRATA_EINVAL, STRATA_ENOMEM, STRATA_EPANIC. Any thread. */
STRATA_API int  strata_begin_read(strata_db *db, strata_txn **out);
/* Begin the write transaction; waits while another one is open.
 * Returns: STRATA_OK, STRATA_EINVAL, STRATA_ENOMEM, STRATA_EREADONLY, STRATA_EPANIC. Any thread. */
STRATA_API int  strata_begin_write(strata_db *db, strata_txn **out);

#define STRATA_TXN_TRY 0x1u    /* do not wait for the writer lock: STRATA_EBUSY */
/* As strata_begin_write, with flags (STRATA_TXN_TRY). */
STRATA_API int  strata_begin_write_ex(strata_db *db, unsigned flags, strata_txn **out);

/* Commit: atomic, and durable (fsync'd) before it returns unless durability NONE
 * was set. Frees txn whether it succeeds or not. On a read transaction: ends it
 * and returns STRATA_OK.
 * Returns: STRATA_OK, STRATA_EINVAL, STRATA_EBADTXN (an earlier call in txn failed:
 * nothing is committed), STRATA_EIO / STRATA_ENOSPC (nothing committed; db usable),
 * STRATA_EPANIC (the header write or fsync failed: reopen). Owner thread. */
STRATA_API int  strata_commit(strata_txn *txn);
/* Abort: frees txn and leaves no trace. NULL-safe. Owner thread. */
STRATA_API void strata_abort(strata_txn *txn);

#define STRATA_DURABILITY_IMMEDIATE 0
#define STRATA_DURABILITY_NONE      1
/* Choose how the commit of a write transaction is made durable.
 * NONE: no fsync; a later IMMEDIATE commit (or strata_close) makes it durable;
 * a crash may lose it, never corrupt the file.
 * Returns: STRATA_OK, STRATA_EINVAL, STRATA_EREADONLY (read transaction). Owner thread. */
STRATA_API int  strata_txn_set_durability(strata_txn *txn, int durability);

/* The id of the commit a read transaction sees, or the id a write transaction
 * will commit as. Returns: STRATA_OK, STRATA_EINVAL. Owner thread. */
STRATA_API int  strata_txn_id(const strata_txn *txn, uint64_t *id);

/* ------------------------------------------------------------------------ */
/* Tables                                                                    */

/* Key types of a table; stored in the catalog and checked at every open. */
typedef enum {
    STRATA_KEY_BYTES  = 0,   /* memcmp order, shorter first on a common prefix   */
    STRATA_KEY_U64    = 1,   /* 8 bytes, little-endian, unsigned numeric order   */
    STRATA_KEY_I64    = 2,   /* 8 bytes, little-endian, signed numeric order     */
    STRATA_KEY_STR    = 3,   /* UTF-8 bytes (validated), byte order              */
    STRATA_KEY_CUSTOM = 4    /* a comparator registered by name (table_open_ex)  */
} strata_key_type;

/* Table flags */
/* STRATA_CREATE (above): create the table if missing (write transactions only). */
#define STRATA_MULTIMAP 0x100u   /* with table_open_ex: a sorted set of values per key */

/* Opening an existing table with another key type: STRATA_ETYPE.
 * Opening a missing table without STRATA_CREATE: STRATA_NOTFOUND.
 * Opening the same table twice in one transaction returns the same handle.
 * Table names are 1..255 bytes; names starting with "__" are reserved for
 * internal tables (indexes, change log): they can be opened in read
 * transactions for inspection, never created or written by users.
 * Returns: STRATA_OK, STRATA_NOTFOUND, STRATA_ETYPE, STRATA_EINVAL, STRATA_EREADONLY
 * (create in a read transaction), STRATA_ECORRUPT, STRATA_ENOMEM, STRATA_EBADTXN.
 * *out lives until the transaction ends. Owner thread. */
STRATA_API int  strata_table_open(strata_txn *txn, const char *name, strata_key_type kt,
                                  unsigned flags, strata_table **out);

/* User comparator: <0, 0, >0 as a sorts before, equal to, after b. Must be a
 * total order and stable across runs (it decides the on-disk order). */
typedef int (*strata_cmp_fn)(void *ctx, const void *a, size_t alen, const void *b, size_t blen);

/* Register comparator `name` (1..63 bytes) on db, before opening tables that use it.
 * Returns: STRATA_OK, STRATA_EINVAL, STRATA_EEXIST, STRATA_ENOMEM. Exclusive. */
STRATA_API int  strata_register_comparator(strata_db *db, const char *name, strata_cmp_fn fn,
                                           void *ctx);

typedef struct strata_table_spec {
    strata_key_type key_type;
    const char     *comparator;  /* name, for STRATA_KEY_CUSTOM; else NULL */
    uint32_t        vector_dim;  /* with STRATA_VECTOR: floats per value (1..65536) */
} strata_table_spec;

/* Table flag: a vector table. Keys are STRATA_KEY_U64 ids; every value is
 * exactly vector_dim little-endian f32 values (4 * dim bytes) that pass
 * strata_vec_validate (all finite, squared norm at most FLT_MAX / 8): any
 * other value is STRATA_EINVAL and nothing is written. The dimension is stored
 * in the catalog; opening with another dimension is STRATA_ETYPE. */
#define STRATA_VECTOR 0x800u

/* Table flags (at creation): store values compressed with LZ4 or zstd when
 * that saves space (a flag byte per value says which). Reads of a compressed
 * value return a decompressed copy owned by the transaction (valid until it
 * ends), not a pointer into the map. Not combinable with STRATA_MULTIMAP,
 * STRATA_TTL or STRATA_VECTOR. */
#define STRATA_COMPRESS_LZ4  0x1000u
#define STRATA_COMPRESS_ZSTD 0x2000u

/* As strata_table_open, for custom comparators and multimaps (flags STRATA_MULTIMAP).
 * Opening a multimap as a plain table or the reverse: STRATA_ETYPE. A custom table
 * whose comparator is not registered: STRATA_ENOCMP. Owner thread. */
STRATA_API int  strata_table_open_ex(strata_txn *txn, const char *name,
                                     const strata_table_spec *spec, unsigned flags,
                                     strata_table **out);

/* Delete a table and all its entries. Handles to it become unusable (EBADTXN).
 * Returns: STRATA_OK, STRATA_NOTFOUND, STRATA_EREADONLY, STRATA_EINVAL. Owner thread. */
STRATA_API int  strata_table_drop(strata_txn *txn, const char *name);
/* Rename a table. Returns: STRATA_OK, STRATA_NOTFOUND, STRATA_EEXIST (new name taken),
 * STRATA_EREADONLY, STRATA_EINVAL. Open handles to it become unusable. Owner thread. */
STRATA_API int  strata_table_rename(strata_txn *txn, const char *from, const char *to);

typedef struct strata_table_info {
    const char     *name;        /* NUL-terminated; valid during the callback only */
    strata_key_type key_type;
    unsigned        flags;       /* STRATA_MULTIMAP, ...                            */
    uint64_t        entries;
    const char     *comparator;  /* name for STRATA_KEY_CUSTOM, else NULL          */
    uint32_t        vector_dim;  /* STRATA_VECTOR tables: the dimension, else 0    */
} strata_table_info;
/* Call fn for every user table in name order (reserved "__" tables only when
 * include_internal). fn returns non-zero to stop; that value is returned.
 * Returns: STRATA_OK, STRATA_EINVAL, STRATA_ECORRUPT, or fn's value. Owner thread. */
STRATA_API int  strata_table_list(strata_txn *txn, int include_internal,
                                  int (*fn)(void *ctx, const strata_table_info *info),
                                  void *ctx);

typedef struct strata_table_stat {
    uint64_t entries;
    uint32_t height;          /* 0 for an empty table, 1 = a single leaf          */
    uint64_t branch_pages;
    uint64_t leaf_pages;
    uint64_t overflow_pages;
} strata_table_stat;
/* Walk the table and count its pages. O(pages). Owner thread. */
STRATA_API int  strata_table_stat_get(strata_table *t, strata_table_stat *out);

/* ------------------------------------------------------------------------ */
/* Key-value operations                                                      */

/* Insert or overwrite. On a multimap: add val to key's set (no-op if present).
 * Returns: STRATA_OK, STRATA_EINVAL (key of the wrong width for U64/I64, invalid
 * UTF-8 for STR), STRATA_ETOOBIG, STRATA_EREADONLY, STRATA_ENOSPC, STRATA_ENOMEM,
 * STRATA_ECORRUPT, STRATA_EBADTXN. Owner thread. */
STRATA_API int  strata_put(strata_table *t, strata_slice key, strata_slice val);
/* STRATA_OK with val pointing into the map (valid until the transaction ends,
 * or, in a write transaction, until its next write), or STRATA_NOTFOUND.
 * On a multimap: the first (smallest) value of key. Owner thread. */
STRATA_API int  strata_get(strata_table *t, strata_slice key, strata_slice *val);
/* STRATA_OK, or STRATA_NOTFOUND. On a multimap: removes every value of key. */
STRATA_API int  strata_del(strata_table *t, strata_slice key);
/* Number of entries, O(1) (on a multimap: number of key-value pairs). */
STRATA_API int  strata_len(strata_table *t, uint64_t *n);

/* First / last entry. STRATA_NOTFOUND if the table is empty. Slices as strata_get. */
STRATA_API int  strata_first(strata_table *t, strata_slice *key, strata_slice *val);
STRATA_API int  strata_last(strata_table *t, strata_slice *key, strata_slice *val);
/* Remove and return the first / last entry. The returned slices are copies owned
 * by the table handle, valid until its next write or the end of the transaction.
 * Returns: STRATA_OK, STRATA_NOTFOUND (empty), STRATA_EREADONLY, ... Owner thread. */
STRATA_API int  strata_pop_first(strata_table *t, strata_slice *key, strata_slice *val);
STRATA_API int  strata_pop_last(strata_table *t, strata_slice *key, strata_slice *val);

/* Range bounds: lo/hi may be NULL (unbounded); flags say whether each bound is
 * inclusive. */
#define STRATA_LO_EXCL 0x1u
#define STRATA_HI_INCL 0x2u   /* default range is [lo, hi) */
/* Delete every entry in the range; *n_deleted (may be NULL) gets the count. */
STRATA_API int  strata_del_range(strata_table *t, const strata_slice *lo, const strata_slice *hi,
                                 unsigned flags, uint64_t *n_deleted);
/* Keep only entries for which keep() returns non-zero; *n_removed may be NULL. */
STRATA_API int  strata_retain(strata_table *t,
                              int (*keep)(void *ctx, strata_slice key, strata_slice val),
                              void *ctx, uint64_t *n_removed);
/* Bulk load: append an entry whose key is greater than every key in the table
 * (LMDB's MDB_APPEND). Pages fill completely, so sorted loads are fast and dense.
 * Returns: STRATA_EINVAL if key is not greater than the last key; else as put. */
STRATA_API int  strata_append(strata_table *t, strata_slice key, strata_slice val);

/* Multimap: remove one value of key. STRATA_OK or STRATA_NOTFOUND. */
STRATA_API int  strata_mm_del(strata_table *t, strata_slice key, strata_slice val);
/* Multimap: number of values of key (0 if absent). */
STRATA_API int  strata_mm_count(strata_table *t, strata_slice key, uint64_t *n);

/* ------------------------------------------------------------------------ */
/* Cursors: positioned on an entry, or at the end (then get returns
 * STRATA_NOTFOUND). They see the transaction's own uncommitted writes. On a
 * multimap, entries are (key, value) pairs in key then value order.          */

STRATA_API int  strata_cursor_open(strata_table *t, strata_cursor **out);
STRATA_API int  strata_cursor_first(strata_cursor *c);                /* STRATA_NOTFOUND if empty   */
STRATA_API int  strata_cursor_last(strata_cursor *c);
STRATA_API int  strata_cursor_seek(strata_cursor *c, strata_slice key); /* first entry >= key      */
STRATA_API int  strata_cursor_next(strata_cursor *c);                 /* STRATA_NOTFOUND past last  */
STRATA_API int  strata_cursor_prev(strata_cursor *c);                 /* STRATA_NOTFOUND before first */
STRATA_API int  strata_cursor_get(strata_cursor *c, strata_slice *key, strata_slice *val);
STRATA_API void strata_cursor_close(strata_cursor *c);                /* NULL-safe */
/* Exact seek: position on key, or STRATA_NOTFOUND (cursor then at the end). */
STRATA_API int  strata_cursor_seek_exact(strata_cursor *c, strata_slice key);
/* Last entry <= key, for descending ranges. STRATA_NOTFOUND if none. */
STRATA_API int  strata_cursor_seek_le(strata_cursor *c, strata_slice key);
/* Restrict the cursor to a range (flags STRATA_LO_EXCL, STRATA_HI_INCL; NULL =
 * unbounded). first/last/seek/next/prev then stay inside it, both directions.
 * The bound keys are copied. Returns: STRATA_OK, STRATA_EINVAL, STRATA_ENOMEM. */
STRATA_API int  strata_cursor_set_range(strata_cursor *c, const strata_slice *lo,
                                        const strata_slice *hi, unsigned flags);

/* ------------------------------------------------------------------------ */
/* Inspection                                                                */

typedef struct strata_info {
    uint32_t page_size;
    uint64_t last_txn_id;       /* id of the last commit                         */
    uint64_t durable_txn_id;    /* id of the last durable (fsync'd) commit       */
    uint64_t file_size;         /* bytes                                          */
    uint64_t page_count;        /* pages in use by the file format (high water)   */
    uint64_t free_pages;        /* pages in the free list (reusable now or later) */
    uint64_t map_size;
    int      recovered;         /* 1 if open fell back to the previous commit     */
    int      read_only;
} strata_info;
/* Returns: STRATA_OK, STRATA_EINVAL, STRATA_ECORRUPT. Any thread. */
STRATA_API int  strata_db_info(strata_db *db, strata_info *out);

/* Integrity check of the snapshot txn sees: every tree's checksums, page types,
 * key order, entry counts, and every page reachable exactly once or free.
 * report (may be NULL) is called with one line per problem found.
 * Returns: STRATA_OK if clean, STRATA_ECORRUPT if anything is wrong. Owner thread. */
STRATA_API int  strata_check(strata_txn *txn,
                             void (*report)(void *ctx, const char *msg), void *ctx);

/* ------------------------------------------------------------------------ */
/* Clock and hybrid logical clock                                            */

/* Wall-clock milliseconds since the Unix epoch. Injectable so tests need not sleep. */
typedef uint64_t (*strata_clock_fn)(void *ctx);
/* Use fn as the clock for TTL expiry and the HLC (NULL: the system clock).
 * Returns: STRATA_OK, STRATA_EINVAL. Exclusive (no transaction may be open). */
STRATA_API int strata_set_clock(strata_db *db, strata_clock_fn fn, void *ctx);

/* HLC timestamps are (physical ms << 16) | logical counter: they order like
 * integers, never go backwards across commits or reopen even if the wall clock
 * steps back, and carry causality from remote timestamps (strata_hlc_receive). */
#define STRATA_HLC_PHYS_MS(h)  ((uint64_t)(h) >> 16)
#define STRATA_HLC_LOGICAL(h)  ((uint64_t)(h) & 0xFFFFu)
/* Read transaction: the HLC of the commit it sees (0 before the first commit).
 * Write transaction: the HLC its commit will carry. Owner thread. */
STRATA_API int strata_txn_hlc(const strata_txn *txn, uint64_t *hlc);
/* A fresh timestamp (send rule): greater than every earlier one of this open
 * db and than every committed transaction's HLC. Only commit HLCs are
 * durable: after a reopen with the wall clock stepped back, a value may be
 * smaller than one handed out (or received) before close without a commit
 * after it. Any thread. */
STRATA_API int strata_hlc_now(strata_db *db, uint64_t *hlc);
/* Receive rule: later local timestamps are greater than remote. A remote clock
 * ahead of the local one by more than the maximum drift is rejected with
 * STRATA_EINVAL and changes nothing. Any thread. */
STRATA_API int strata_hlc_receive(strata_db *db, uint64_t remote);
/* Maximum accepted drift of remote clocks in ms (default 60,000; 0 = no limit). */
STRATA_API int strata_hlc_set_max_drift(strata_db *db, uint64_t ms);

/* ------------------------------------------------------------------------ */
/* Merge operators: atomic read-modify-write of one value in a write
 * transaction, without a separate get and put. Numeric operands and values are
 * little-endian of the operator's width (8 bytes); a value or operand of the
 * wrong width is STRATA_EINVAL with nothing written. An absent key merges
 * into the operator's identity (0 for add, the operand for max/min, empty for
 * append and or).                                                           */

typedef enum {
    STRATA_MERGE_ADD_U64 = 1,     /* wrapping unsigned add                */
    STRATA_MERGE_ADD_I64 = 2,     /* wrapping signed add                  */
    STRATA_MERGE_SATADD_U64 = 3,  /* saturating at 0 .. UINT64_MAX        */
    STRATA_MERGE_SATADD_I64 = 4,  /* saturating at INT64_MIN .. INT64_MAX */
    STRATA_MERGE_ADD_F64 = 5,     /* IEEE double add (NaN operand: EINVAL)*/
    STRATA_MERGE_MAX_U64 = 6,
    STRATA_MERGE_MIN_U64 = 7,
    STRATA_MERGE_MAX_I64 = 8,
    STRATA_MERGE_MIN_I64 = 9,
    STRATA_MERGE_MAX_F64 = 10,
    STRATA_MERGE_MIN_F64 = 11,
    STRATA_MERGE_OR = 12,         /* bitwise or; value and operand of equal length */
    STRATA_MERGE_APPEND = 13      /* byte concatenation                    */
} strata_merge_op;

/* Merge operand into key's value with a built-in operator. Not on multimaps.
 * Returns: STRATA_OK, STRATA_EINVAL (unknown operator, wrong width), STRATA_ETOOBIG,
 * STRATA_EREADONLY, ... as strata_put. Owner thread. */
STRATA_API int strata_merge(strata_table *t, strata_slice key, strata_slice operand, strata_merge_op op);

/* A user merge operator: compute the new value from existing (NULL when the
 * key is absent) and operand into out (cap bytes); set *out_len. If *out_len >
 * cap, it is called again with a buffer of that size. Return 0, or non-zero to
 * refuse (the merge then fails with STRATA_EINVAL and writes nothing). */
typedef int (*strata_merge_fn)(void *ctx, const strata_slice *existing, strata_slice operand,
                               void *out, size_t cap, size_t *out_len);
STRATA_API int strata_merge_with(strata_table *t, strata_slice key, strata_slice operand,
                                 strata_merge_fn fn, void *ctx);

/* ------------------------------------------------------------------------ */
/* TTL tables: open with strata_table_open_ex(..., STRATA_TTL). An entry put
 * with a time-to-live is invisible to get, cursors and len from the moment it
 * expires (by the db clock); strata_purge_expired removes expired entries in
 * bounded steps. Entries put with strata_put live forever. Values are stored
 * with an 8-byte expiry prefix, which reads strip. Not combinable with
 * STRATA_MULTIMAP. strata_len is O(1 + expired entries not yet purged).        */

#define STRATA_TTL 0x200u
/* ttl_ms <= 0: STRATA_EINVAL. Not a TTL table: STRATA_ETYPE. */
STRATA_API int strata_put_ttl(strata_table *t, strata_slice key, strata_slice val, int64_t ttl_ms);
/* Absolute expiry (ms since the epoch, by the db clock); at or before now: STRATA_EINVAL. */
STRATA_API int strata_put_expire_at(strata_table *t, strata_slice key, strata_slice val,
                                    uint64_t expire_at_ms);
/* Expiry of a live entry: ms since the epoch, or 0 for never. STRATA_NOTFOUND if absent
 * or expired. */
STRATA_API int strata_ttl_expiry(strata_table *t, strata_slice key, uint64_t *expire_at_ms);
/* Delete at most max (0 = no limit) expired entries, oldest expiry first;
 * *n_purged (may be NULL) gets the count. */
STRATA_API int strata_purge_expired(strata_table *t, uint64_t max, uint64_t *n_purged);

/* ------------------------------------------------------------------------ */
/* Change capture: on a table with STRATA_CDC (set at creation, or with
 * strata_cdc_enable) every put, delete and merge is appended, in the same
 * transaction, to one change log shared by the database. A change is visible
 * only once its transaction commits; an aborted transaction leaves none.
 * Not on multimaps.                                                         */

#define STRATA_CDC 0x400u

enum { STRATA_CHANGE_PUT = 1, STRATA_CHANGE_DEL = 2, STRATA_CHANGE_MERGE = 3 };

/* A position in the change log: changes are ordered by (txn_id, seq). {0,0}
 * is before the first change. */
typedef struct strata_cdc_pos { uint64_t txn_id; uint32_t seq; } strata_cdc_pos;

typedef struct strata_change {
    strata_cdc_pos pos;
    uint64_t       hlc;        /* HLC of the commit                       */
    int            op;         /* STRATA_CHANGE_*                          */
    strata_slice   table;      /* table name (not NUL-terminated)          */
    strata_slice   key;
    strata_slice   value;      /* the new value (put, merge); data NULL for a delete */
} strata_change;

/* Turn change capture on or off for an existing table (write transaction). */
STRATA_API int strata_cdc_enable(strata_txn *txn, const char *table, int on);
/* Call fn for up to max (0 = all) changes after `after` (NULL: from the start),
 * in commit order; *last (may be NULL) gets the position of the last change
 * delivered (unchanged if none). fn returns non-zero to stop (that value is
 * returned). The slices are valid until the transaction ends. Owner thread. */
STRATA_API int strata_cdc_read(strata_txn *txn, const strata_cdc_pos *after, uint64_t max,
                               int (*fn)(void *ctx, const strata_change *c), void *ctx,
                               strata_cdc_pos *last);
/* A named consumer's persisted position (write txn to set; any to get).
 * Registered consumers hold back pruning: nothing after their position is pruned. */
STRATA_API int strata_cdc_consumer_set(strata_txn *txn, const char *name, const strata_cdc_pos *pos);
STRATA_API int strata_cdc_consumer_get(strata_txn *txn, const char *name, strata_cdc_pos *pos);
STRATA_API int strata_cdc_consumer_drop(strata_txn *txn, const char *name);
/* Prune the oldest changes: those older than max_age_ms (by commit HLC; 0 = no
 * age limit) or beyond the newest max_count (0 = no count limit), but never one
 * a registered consumer has not read. *n_pruned may be NULL. Write transaction. */
STRATA_API int strata_cdc_prune(strata_txn *txn, uint64_t max_age_ms, uint64_t max_count,
                                uint64_t *n_pruned);

/* ------------------------------------------------------------------------ */
/* Group commit: many threads submit small write batches; one of them (the
 * leader) applies every waiting batch in one write transaction with one
 * fsync. A batch that fails does not take the others down: the group is
 * retried without it, so a batch function must be safe to run more than once
 * (it must derive its writes from txn and ctx only).                        */

/* Apply one batch in txn (a write transaction owned by the leader thread).
 * Return STRATA_OK, or an error to reject this batch alone. Do not commit or
 * abort txn. */
typedef int (*strata_batch_fn)(void *ctx, strata_txn *txn);
/* Submit a batch and wait until it is committed (durably) or rejected.
 * Returns: STRATA_OK; the batch function's error (its writes discarded, the
 * other batches unaffected); or the commit's error (STRATA_EIO, STRATA_EPANIC,
 * ...), which every batch of that group receives. Any thread. */
STRATA_API int strata_group_commit(strata_db *db, strata_batch_fn fn, void *ctx);

/* ------------------------------------------------------------------------ */
/* History and time travel: keep the last N commits readable. Retained commits
 * pin their pages until they leave the window.                              */

/* Retain the n commits before the newest (0 = off; the default). Takes effect
 * from this transaction's commit on; stored in the file. Write transaction. */
STRATA_API int strata_history_set(strata_txn *txn, uint32_t n);
/* Begin a read transaction on commit txn_id: the newest commit or a retained
 * one. STRATA_NOTFOUND if it is not retained. Any thread. */
STRATA_API int strata_begin_read_at(strata_db *db, uint64_t txn_id, strata_txn **out);
/* Begin a read transaction on the newest retained commit whose HLC <= hlc.
 * STRATA_NOTFOUND if every retained commit is newer. Any thread. */
STRATA_API int strata_begin_read_at_hlc(strata_db *db, uint64_t hlc, strata_txn **out);
/* Call fn for each readable commit, oldest first (the newest included). fn
 * returns non-zero to stop (that value is returned). Any thread. */
STRATA_API int strata_history_list(strata_db *db,
                                   int (*fn)(void *ctx, uint64_t txn_id, uint64_t hlc), void *ctx);
/* Write the changes from commit `from` to commit `to` (both readable, from <
 * to) to a file: every table's entries put, changed or deleted, tables created
 * and dropped, checksummed as a whole. Returns STRATA_OK, STRATA_NOTFOUND,
 * STRATA_EINVAL, STRATA_EIO. Any thread. */
STRATA_API int strata_history_export(strata_db *db, uint64_t from, uint64_t to, const char *path);
/* Apply an exported file in one write transaction of db (which should hold the
 * state of the export's `from` commit). A damaged file is rejected whole with
 * STRATA_ECORRUPT before anything is written. Any thread. */
STRATA_API int strata_history_apply(strata_db *db, const char *path);

/* ------------------------------------------------------------------------ */
/* Savepoints                                                                */

typedef struct strata_savepoint strata_savepoint;   /* ephemeral: lives in one write txn */

/* Remember the state of write transaction txn. Cheap: no page is copied until
 * it is written again. *out is freed by strata_savepoint_release or with txn.
 * Returns: STRATA_OK, STRATA_EREADONLY, STRATA_EBADTXN, STRATA_ENOMEM. Owner thread. */
STRATA_API int  strata_savepoint_create(strata_txn *txn, strata_savepoint **out);
/* Roll txn back to sp: every write since is undone (table handles and cursors
 * stay usable; cursors become unpositioned). sp stays valid; savepoints made
 * after it become invalid (STRATA_EINVAL). A poisoned transaction is healed if
 * sp predates the failure. Returns: STRATA_OK, STRATA_EINVAL, STRATA_ENOMEM. */
STRATA_API int  strata_savepoint_rollback(strata_txn *txn, strata_savepoint *sp);
/* Forget sp (NULL-safe). Owner thread. */
STRATA_API void strata_savepoint_release(strata_savepoint *sp);

/* Persistent savepoints: a committed state that survives close and reopen. It
 * pins the pages it needs until deleted. Restoring rewinds the whole database
 * to it in one commit (later persistent savepoints and retained history are
 * dropped; earlier savepoints stay). Any thread; each runs its own write txn. */
STRATA_API int  strata_psavepoint_create(strata_db *db, uint64_t *id);
STRATA_API int  strata_psavepoint_restore(strata_db *db, uint64_t id);
STRATA_API int  strata_psavepoint_delete(strata_db *db, uint64_t id);
/* Call fn for each persistent savepoint, oldest first. */
STRATA_API int  strata_psavepoint_list(strata_db *db,
                                       int (*fn)(void *ctx, uint64_t id, uint64_t hlc), void *ctx);

/* ------------------------------------------------------------------------ */
/* Compaction                                                                */

/* Move pages toward the start of the file so that it can shrink, then
 * truncate it. Runs a few durable write transactions of its own: safe against
 * a crash at any point (each step is an ordinary commit). Live readers and
 * retained commits keep their pages, which can limit the shrink.
 * *before and *after (may be NULL) get the file size in bytes.
 * Returns: STRATA_OK, STRATA_EREADONLY, STRATA_EIO, ... Any thread. */
STRATA_API int strata_compact(strata_db *db, uint64_t *before, uint64_t *after);

/* ------------------------------------------------------------------------ */
/* Backup and salvage                                                        */

/* Online backup: write the snapshot of a new read transaction to a new file at
 * path (which must not exist), fsync'd; writers go on meanwhile. The copy is a
 * complete database that passes strata_check.
 * Returns: STRATA_OK, STRATA_EEXIST, STRATA_EIO, STRATA_ENOSPC, ... Any thread. */
STRATA_API int strata_backup(strata_db *db, const char *path);

typedef struct strata_salvage_stats {
    uint64_t tables;           /* tables found                        */
    uint64_t entries;          /* entries copied                      */
    uint64_t lost_pages;       /* pages (subtrees) that could not be read */
    uint64_t lost_tables;      /* tables whose root could not be read  */
} strata_salvage_stats;
/* Copy every still-readable entry of the damaged database at src into a new
 * database at dst (which must not exist; same page size as src), skipping
 * unreadable subtrees, and report what was lost (report may be NULL; one line
 * per problem). A failure to write the copy (STRATA_ENOSPC, ...) is returned
 * and leaves no file at dst.
 * Returns: STRATA_OK (even if data was lost: see stats), STRATA_ECORRUPT if
 * neither commit slot of src is readable, STRATA_EEXIST, ... Exclusive. */
STRATA_API int strata_salvage(const char *src, const char *dst, strata_salvage_stats *stats,
                              void (*report)(void *ctx, const char *msg), void *ctx);

/* ------------------------------------------------------------------------ */
/* Vectors (vector/): types, metrics, distance kernels, quantization, top-k.  */
/* (section owned by the vector layer)                                        */
/* Vectors are arrays of dim IEEE-754 floats (f32), 1 <= dim <= STRATA_VEC_MAX_DIM.
 * Every distance is "smaller is nearer" (docs/VECTORS.md):
 *   L2     squared Euclidean distance, sum (a[i] - b[i])^2
 *   IP     negated inner product, -sum a[i] * b[i]
 *   COSINE 1 - cos(a, b), in [0, 2]; 1 if either vector is all zeros
 *   L1     sum |a[i] - b[i]|
 * Kernels (scalar, AVX2+FMA, AVX-512) are chosen once per process from cpuid;
 * STRATA_SIMD=scalar|avx2|avx512 in the environment forces a lower level.
 * Different kernels sum in different orders: each is within dim * 2^-24 (to
 * first order) of the sum S of the terms' magnitudes from the exact value,
 * whatever the data (the general bound for f32 sums; adversarial inputs
 * near dim 65536 reach ~2.4e-4 S), and on ordinary data far closer (tested:
 * within 1e-5 S for every dim 1..1100; docs/VECTORS.md "Tolerance"). One
 * kernel is deterministic, and the batch and single forms give identical
 * results. All functions here are pure: any thread.                          */

#define STRATA_VEC_MAX_DIM 65536u

typedef enum {
    STRATA_METRIC_L2     = 0,
    STRATA_METRIC_IP     = 1,
    STRATA_METRIC_COSINE = 2,
    STRATA_METRIC_L1     = 3
} strata_metric;

typedef struct strata_hit {
    uint64_t id;      /* the row's id (its index when no ids were given) */
    float    dist;    /* its distance under the metric, smaller is nearer */
} strata_hit;

/* Row filter for top-k: non-zero keeps row id. Called only for rows that
 * would enter the result, in no particular order; must not call back into
 * the search. */
typedef int (*strata_vec_filter_fn)(void *ctx, uint64_t id);

/* Check a vector before it is stored or used as a query: every element
 * finite, and the squared norm at most FLT_MAX/8 (so any L2 or dot product
 * of two valid vectors is finite, f32 rounding included).
 * @param[in] x    dim floats
 * Returns: STRATA_OK, STRATA_EINVAL (x NULL, dim 0 or > STRATA_VEC_MAX_DIM,
 * NaN, Inf or too large). Any thread. */
STRATA_API int strata_vec_validate(const float *x, size_t dim);

/* Distance between a and b under metric m.
 * @param[out] out  the distance, written on success only
 * Returns: STRATA_OK, STRATA_EINVAL (NULL pointer, bad metric, dim 0 or too
 * large, or a non-finite result: an input held NaN/Inf or an overflowing
 * magnitude). Any thread. */
STRATA_API int strata_vec_distance(strata_metric m, const float *a, const float *b, size_t dim,
                                   float *out);

/* One-to-many: distances of q to the n vectors stored contiguously at base
 * (vector j at base + j*dim) into out[0..n). n may be 0.
 * Returns: as strata_vec_distance. On an error other than a NULL/range
 * argument, out[] holds unspecified values. Any thread. */
STRATA_API int strata_vec_distance_batch(strata_metric m, const float *q, const float *base,
                                         size_t n, size_t dim, float *out);

/* Exact k nearest neighbours of query among the n contiguous vectors at base.
 * @param[in]  ids     n ids, or NULL to use row indexes 0..n-1
 * @param[in]  filter  NULL, or keeps a row when it returns non-zero
 * @param[out] out     k hits, sorted nearest first; ties in dist go to the
 *                     smaller id, so results are deterministic
 * @param[out] n_out   hits written (< k only when the filter rejected rows)
 * Returns: STRATA_OK, STRATA_EINVAL (NULL pointer, bad metric, dim 0 or too
 * large, k == 0, k > n, or a non-finite distance: an input held NaN/Inf).
 * out[] is scratch during the call and unspecified on error. Any thread
 * (filter permitting). */
STRATA_API int strata_vec_topk(strata_metric m, const float *query, const float *base,
                               size_t n, size_t dim, const uint64_t *ids, size_t k,
                               strata_vec_filter_fn filter, void *ctx, strata_hit *out,
                               size_t *n_out);

/* Name of the kernel level in use: "scalar", "avx2" or "avx512". Static
 * string. Any thread. */
STRATA_API const char *strata_vec_kernel_name(void);

/* Scalar quantization (sq8): one byte per dimension, 4x smaller.
 * code[i] = round((x[i] - vmin[i]) * 255 / (vmax[i] - vmin[i])), clamped to
 * 0..255 (0 when vmax[i] == vmin[i]); decode: vmin[i] + code[i] * (vmax[i] -
 * vmin[i]) / 255. Byte layouts: docs/VECTORS.md.
 * Train: per-dimension min and max of n >= 1 vectors (dim floats each) into
 * vmin[dim], vmax[dim].
 * Returns: STRATA_OK, STRATA_EINVAL (NULL pointer, n == 0, bad dim, a vector
 * that fails strata_vec_validate). Any thread. */
STRATA_API int strata_sq8_train(const float *data, size_t n, size_t dim, float *vmin,
                                float *vmax);
/* Encode n vectors (dim floats each) into n*dim bytes at codes.
 * Returns: STRATA_OK, STRATA_EINVAL (NULL pointer, bad dim, vmin[i] > vmax[i]
 * or non-finite, an invalid vector). Any thread. */
STRATA_API int strata_sq8_encode(const float *vmin, const float *vmax, size_t dim,
                                 const float *x, size_t n, uint8_t *codes);
/* Decode n codes (dim bytes each) into n*dim floats at x.
 * Returns: STRATA_OK, STRATA_EINVAL (as encode). Any thread. */
STRATA_API int strata_sq8_decode(const float *vmin, const float *vmax, size_t dim,
                                 const uint8_t *codes, size_t n, float *x);
/* Squared L2 distance between two sq8 codes in code space (exact integer).
 * Returns: STRATA_OK, STRATA_EINVAL (NULL pointer, bad dim). Any thread. */
STRATA_API int strata_sq8_l2(const uint8_t *a, const uint8_t *b, size_t dim, uint32_t *out);

/* Binary quantization: 1 bit per dimension (x[i] > 0), 32x smaller, packed
 * into strata_bin_words(dim) u64 words, dimension i at bit i%64 of word i/64;
 * unused high bits of the last word are 0. */
STRATA_API size_t strata_bin_words(size_t dim);   /* (dim + 63) / 64; any thread */
/* Encode n vectors (dim floats each) into n*strata_bin_words(dim) words.
 * Returns: STRATA_OK, STRATA_EINVAL (NULL pointer, bad dim, an invalid
 * vector). Any thread. */
STRATA_API int strata_bin_encode(const float *x, size_t n, size_t dim, uint64_t *codes);
/* Hamming distance (differing bits) between two codes of n_words words.
 * Returns: STRATA_OK, STRATA_EINVAL (NULL pointer, n_words == 0). Any thread. */
STRATA_API int strata_bin_hamming(const uint64_t *a, const uint64_t *b, size_t n_words,
                                  uint64_t *out);

/* Exact top-k over a vector table (STRATA_VECTOR, u64 ids): a scan of every
 * row, values read in place. Ties go to the smaller id. filter as above.
 * @param[out] out k hits, nearest first; *n_out their number (k, or fewer when
 *             the filter rejects rows)
 * Returns: STRATA_OK, STRATA_EINVAL (NULL, k = 0, k > rows, query not finite,
 * dim not the table's, an unknown metric), STRATA_ECORRUPT, ... Owner thread. */
STRATA_API int strata_vec_table_topk(strata_table *t, strata_metric m, const float *query, size_t dim,
                                     size_t k, strata_vec_filter_fn filter, void *ctx,
                                     strata_hit *out, size_t *n_out);

/* ---- end of vector section ---- */

/* ------------------------------------------------------------------------ */
/* IVF-PQ index (ivfpq/): approximate nearest neighbours stored in ordinary
 * tables. (section owned by the ivfpq layer)                                */
/* An inverted-file index with product-quantized residuals. Every byte lives in
 * internal tables "__ivf:NAME:*" of the same file (layouts: docs/IVFPQ.md), so
 * the index is transactional and crash-safe with the data: writes need a
 * write transaction and become visible at its commit; an abort leaves the
 * index as it was; a read transaction searches its own snapshot. Vectors are
 * u64 ids with dim f32 values (checked with strata_vec_validate) and an
 * optional u64 attribute for filtering. Metrics: L2, IP, COSINE (cosine
 * vectors are normalized for the codes; raw vectors are kept as given).
 * A handle is opened in one transaction and must be closed (strata_ivf_close)
 * before that transaction ends; it caches the model (centroids, codebooks).
 * Thread-safety: owner thread of the handle's transaction, for every function
 * here except strata_ivf_params_default (any thread).                       */

typedef struct strata_ivf strata_ivf;   /* opaque */

#define STRATA_IVF_RAW  0x1u   /* config flag: keep raw vectors (rerank)        */
#define STRATA_IVF_ATTR 0x2u   /* config flag: keep a u64 attribute per vector  */

typedef struct strata_ivf_config {
    uint32_t      dim;        /* 1..STRATA_VEC_MAX_DIM                          */
    strata_metric metric;     /* STRATA_METRIC_L2, _IP or _COSINE               */
    uint32_t      nlist;      /* coarse clusters, >= 1                          */
    uint32_t      m;          /* PQ subspaces (dim % m == 0), 256 codewords each */
    uint32_t      nprobe;     /* default clusters probed by search, 1..nlist    */
    uint32_t      flags;      /* STRATA_IVF_RAW | STRATA_IVF_ATTR                */
    uint32_t      iters;      /* k-means iterations (0 = 25)                    */
    uint32_t      block_cap;  /* codes per posting block (0 = fill ~8 KiB)      */
    uint64_t      seed;       /* training seed (deterministic)                  */
} strata_ivf_config;

/* Create index `name` (1..200 bytes) in write transaction txn, untrained.
 * @param[out] out  an open handle (may be NULL: then only created)
 * Returns: STRATA_OK, STRATA_EINVAL (bad name or config), STRATA_EEXIST,
 * STRATA_EREADONLY, STRATA_ENOMEM, storage errors. */
STRATA_API int  strata_ivf_create(strata_txn *txn, const char *name, const strata_ivf_config *cfg,
                                  strata_ivf **out);
/* Open index `name` in txn (read or write). *out lives until strata_ivf_close,
 * which must come before txn ends. Several handles on one index in one
 * transaction see each other's writes: after a write through another handle,
 * a savepoint rollback in txn or a drop, a handle reloads its config and
 * model on its next call (STRATA_EBADTXN if the index no longer exists).
 * Returns: STRATA_OK, STRATA_NOTFOUND, STRATA_EINVAL, STRATA_ECORRUPT (a
 * damaged config, centroid or codebook row), STRATA_ENOMEM. */
STRATA_API int  strata_ivf_open(strata_txn *txn, const char *name, strata_ivf **out);
/* Free the handle (not the index). NULL-safe. */
STRATA_API void strata_ivf_close(strata_ivf *ix);
/* Delete index `name` and all its tables. Write transaction.
 * Returns: STRATA_OK, STRATA_NOTFOUND, STRATA_EINVAL, STRATA_EREADONLY. */
STRATA_API int  strata_ivf_drop(strata_txn *txn, const char *name);

/* Warnings of strata_ivf_train (a bit set; training still succeeded). */
#define STRATA_IVF_WARN_SMALL_SAMPLE 0x1u  /* n < 39 * nlist: centroids undertrained  */
#define STRATA_IVF_WARN_PQ_SAMPLE    0x2u  /* n < 39 * 256: codebooks undertrained     */
#define STRATA_IVF_WARN_EMPTY        0x4u  /* empty clusters had to be re-seeded        */
#define STRATA_IVF_WARN_DEGENERATE   0x8u  /* duplicate centroids or codewords remain   */

/* Train the coarse centroids (k-means) and the PQ codebooks (on residuals)
 * from n sample vectors (n * dim floats; dim must be the index's: else
 * STRATA_EINVAL), in a write transaction. The index
 * must be empty (no vectors); training again replaces the model.
 * @param[out] warnings  STRATA_IVF_WARN_* bits (may be NULL)
 * Returns: STRATA_OK, STRATA_EINVAL (n < nlist or n < 256, an invalid vector,
 * NULL data), STRATA_EEXIST (the index holds vectors), STRATA_EREADONLY,
 * STRATA_ENOMEM, storage errors. */
STRATA_API int  strata_ivf_train(strata_ivf *ix, const float *data, size_t n, size_t dim,
                                 unsigned *warnings);

/* Insert or replace n vectors (ids[i], data + i * dim, attrs[i]) in a write
 * transaction; dim must equal the index's (else STRATA_EINVAL). attrs may be NULL (attribute 0). Everything is checked before
 * anything is written.
 * Returns: STRATA_OK, STRATA_EINVAL (untrained index, invalid vector, an id
 * twice in the batch, attrs without STRATA_IVF_ATTR), STRATA_EREADONLY,
 * STRATA_ENOMEM, STRATA_ECORRUPT, storage errors. After any error but
 * STRATA_EINVAL the index may be half-updated: abort the transaction. */
STRATA_API int  strata_ivf_insert_batch(strata_ivf *ix, size_t n, const uint64_t *ids,
                                        const float *data, size_t dim, const uint64_t *attrs);
/* One vector: as strata_ivf_insert_batch with n = 1. */
STRATA_API int  strata_ivf_insert(strata_ivf *ix, uint64_t id, const float *v, size_t dim,
                                  uint64_t attr);
/* Remove vector id. Returns: STRATA_OK, STRATA_NOTFOUND, STRATA_EREADONLY, ... */
STRATA_API int  strata_ivf_delete(strata_ivf *ix, uint64_t id);
/* The attribute and (if kept, into v: dim floats, may be NULL) raw vector of id.
 * Returns: STRATA_OK, STRATA_NOTFOUND, STRATA_EINVAL (v given without raw
 * vectors), STRATA_ECORRUPT. */
STRATA_API int  strata_ivf_get(strata_ivf *ix, uint64_t id, float *v, uint64_t *attr);

/* Metadata predicate: non-zero keeps (id, attr). Called only for candidates
 * that would enter the result; must not call back into the index. */
typedef int (*strata_ivf_filter_fn)(void *ctx, uint64_t id, uint64_t attr);

#define STRATA_IVF_NPROBE_DEFAULT 0xFFFFFFFFu   /* use the stored default nprobe */

typedef struct strata_ivf_params {
    uint32_t             nprobe;     /* 1..; > nlist means nlist; 0 is EINVAL;
                                        STRATA_IVF_NPROBE_DEFAULT: stored one    */
    uint32_t             rerank;     /* exact rerank of the best max(k, rerank)
                                        PQ candidates (needs STRATA_IVF_RAW); 0 off */
    uint32_t             int_lut;    /* 1: quantized u8 tables as a pre-filter   */
    float                mmr;        /* 0: nearest clusters; (0,1]: maximal
                                        marginal relevance, weight of diversity  */
    strata_ivf_filter_fn filter;     /* NULL, or the metadata predicate           */
    void                *filter_ctx;
} strata_ivf_params;

/* Defaults: nprobe STRATA_IVF_NPROBE_DEFAULT, no rerank, float tables, no MMR,
 * no filter. Any thread. */
STRATA_API void strata_ivf_params_default(strata_ivf_params *p);

/* k nearest (approximate) vectors to query (dim floats, dim = the index's). out (k hits) is sorted nearest
 * first by (dist, id); distances are exact after rerank, PQ estimates
 * otherwise (same scale as strata_vec_distance). *n_out < k when the index
 * (or the filter) has fewer. params may be NULL for defaults.
 * k and rerank above the index's size act as its size.
 * Returns: STRATA_OK, STRATA_EINVAL (untrained index, k == 0, nprobe 0,
 * invalid query, rerank without raw vectors, bad mmr), STRATA_ENOMEM,
 * STRATA_ECORRUPT (a damaged posting block). */
STRATA_API int  strata_ivf_search(strata_ivf *ix, const float *query, size_t dim, size_t k,
                                  const strata_ivf_params *params, strata_hit *out,
                                  size_t *n_out);
/* nq queries (nq * dim floats): out gets nq * k hits (query i at out + i * k)
 * and n_out[i] the count for query i. Returns: as strata_ivf_search (stops at
 * the first failing query); STRATA_EINVAL when nq * dim or nq * k overflows. */
STRATA_API int  strata_ivf_search_batch(strata_ivf *ix, size_t nq, const float *queries,
                                        size_t dim, size_t k, const strata_ivf_params *params,
                                        strata_hit *out, size_t *n_out);

typedef struct strata_ivf_info {
    strata_ivf_config config;
    int      trained;
    uint64_t n_vectors;
    uint64_t code_bytes;     /* posting-block bytes: ids, codes, attributes and
                                L2 terms; raw vectors not counted          */
    uint64_t model_bytes;    /* centroids and codebooks                       */
    uint64_t n_blocks;
} strata_ivf_info;
/* Describe the index; walks the posting lists (O(blocks)).
 * Returns: STRATA_OK, STRATA_EINVAL, STRATA_ECORRUPT. */
STRATA_API int  strata_ivf_info_get(strata_ivf *ix, strata_ivf_info *out);

/* ---- end of ivfpq section ---- */

/* ------------------------------------------------------------------------ */
/* Blob store (blob/): chunked blobs, SHA-256 dedup, tags, namespaces, time
 * index, causal lineage. (section owned by the blob layer)                  */
/* Large binary objects stored in ordinary tables of the same file (names
 * starting with "blob:", byte layouts in docs/BLOBS.md), written and read
 * inside the caller's transactions: a write needs a write transaction, and an
 * abort leaves no trace. Content is split into chunks (content-defined by a
 * gear rolling hash, FastCDC-style, or fixed-size); each distinct chunk is
 * stored once under its SHA-256 with a reference count, so storing the same
 * or a slightly edited content again costs little. A blob is a u64 id (from a
 * counter, never reused) with a size, content type, label, namespace, the HLC
 * of the transaction that created it (strata_txn_hlc) and the SHA-256 of its
 * whole content. Blob ids are never 0. Unless stated otherwise, functions
 * return STRATA_EINVAL for NULL handles or bad arguments, STRATA_EREADONLY
 * for a write in a read transaction, and pass on the storage errors of the
 * table functions (STRATA_ENOMEM, STRATA_ENOSPC, STRATA_ECORRUPT,
 * STRATA_EBADTXN, ...). A write that fails after some of its rows were
 * written (a delete that meets a damaged row half-way) leaves the
 * transaction abort-only, like a failed engine write: later calls return
 * STRATA_EBADTXN until strata_abort or a rollback to an earlier savepoint.
 * Thread-safety: owner thread of the transaction,
 * for every function here.                                                  */

#define STRATA_BLOB_MAX_META   255u   /* content type, namespace, tag: bytes  */
#define STRATA_BLOB_MAX_LABEL  4096u  /* label bytes                          */
#define STRATA_BLOB_MAX_CTX    255u   /* lineage edge context bytes           */
#define STRATA_BLOB_MAX_CHUNK  (16u << 20)  /* largest chunk size accepted    */

#define STRATA_BLOB_CDC   0   /* content-defined chunks (default)        */
#define STRATA_BLOB_FIXED 1   /* fixed-size chunks of avg_chunk bytes    */

typedef struct strata_blob_writer strata_blob_writer;   /* opaque */
typedef struct strata_blob_reader strata_blob_reader;   /* opaque */

/* Options of a new blob. Zero-initialise, then set what you need. Strings are
 * NUL-terminated and copied; NULL means empty. */
typedef struct strata_blob_opts {
    const char *content_type;  /* 0..STRATA_BLOB_MAX_META bytes, e.g. "image/png"  */
    const char *label;         /* 0..STRATA_BLOB_MAX_LABEL bytes, free text        */
    const char *ns;            /* namespace, 0..STRATA_BLOB_MAX_META bytes; "" is
                                  the default namespace                            */
    int         chunking;      /* STRATA_BLOB_CDC or STRATA_BLOB_FIXED             */
    uint32_t    min_chunk;     /* CDC: 0 = 16 KiB; 64 <= min < avg                 */
    uint32_t    avg_chunk;     /* CDC: power of two, 0 = 64 KiB; FIXED: the chunk
                                  size, 0 = 64 KiB; at most STRATA_BLOB_MAX_CHUNK  */
    uint32_t    max_chunk;     /* CDC: 0 = 256 KiB; avg < max <= STRATA_BLOB_MAX_CHUNK */
    int         by_content;    /* 1: content-addressed: when a finished blob has the
                                  same content (SHA-256), finish stores nothing and
                                  returns that blob's id (its metadata unchanged,
                                  the options' strings unused); 0: a new blob     */
} strata_blob_opts;

/* What a blob records. The slices point into the map: valid until the
 * transaction ends or, in a write transaction, until its next write. */
typedef struct strata_blob_info {
    uint64_t     id;
    uint64_t     size;           /* bytes of content                          */
    uint64_t     created_hlc;    /* HLC of the creating transaction            */
    uint64_t     n_chunks;       /* chunks in its chunk list                   */
    uint8_t      sha256[32];     /* SHA-256 of the whole content               */
    strata_slice content_type;
    strata_slice label;
    strata_slice ns;
} strata_blob_info;

/* Begin a streaming write of a new blob in write transaction txn.
 * @param[in]  opts  NULL for defaults
 * @param[out] out   the writer; feed it with strata_blob_write, then
 *                   strata_blob_writer_finish or strata_blob_writer_abort
 * Chunks are written into txn as they fill; the blob is invisible (to reads,
 * lists and lineage) until finish. Either finish or abort the writer before
 * txn ends: aborting txn removes everything; committing txn with an open
 * writer leaves a "pending" blob that no query sees and strata_blob_gc
 * removes (free such a handle with strata_blob_writer_free).
 * Returns: STRATA_OK, STRATA_EINVAL (bad opts: lengths, chunk sizes),
 * STRATA_EREADONLY, STRATA_ENOMEM, STRATA_ECORRUPT (the blob tables are
 * damaged, e.g. the next id names an existing blob), storage errors. */
STRATA_API int strata_blob_writer_begin(strata_txn *txn, const strata_blob_opts *opts,
                                        strata_blob_writer **out);
/* Append len bytes (any size, 0 allowed). On an error the writer is
 * unusable: only strata_blob_writer_abort is legal.
 * Returns: STRATA_OK, STRATA_EINVAL (NULL data with len > 0, writer finished
 * or failed, or a savepoint rollback undid part of what w wrote: abort it),
 * STRATA_ENOMEM, storage errors. */
STRATA_API int strata_blob_write(strata_blob_writer *w, const void *data, size_t len);
/* Cut the last chunk, record the blob and its indexes, and free w, also on
 * failure: then everything w wrote is removed again (if that fails too, txn
 * is poisoned by the storage error and can only be aborted).
 * @param[out] id  the new blob's id (may be NULL); with opts->by_content,
 *                 the id of the finished blob with the same content if there
 *                 is one (then w's rows are removed and nothing is recorded)
 * Returns: STRATA_OK, STRATA_EINVAL (w failed earlier, or a savepoint
 * rollback undid part of what it wrote), storage errors. */
STRATA_API int strata_blob_writer_finish(strata_blob_writer *w, uint64_t *id);
/* Undo everything w wrote in its transaction (which must still be open) and
 * free it: chunks and reference counts are as before strata_blob_writer_begin.
 * NULL-safe. */
STRATA_API void strata_blob_writer_abort(strata_blob_writer *w);
/* Free w without touching its transaction, for a writer whose transaction
 * has already ended (its pending blob, if committed, is for strata_blob_gc).
 * NULL-safe. Any thread. */
STRATA_API void strata_blob_writer_free(strata_blob_writer *w);

/* Find a blob by content: *id gets the smallest id of a finished blob whose
 * whole-content SHA-256 is sha256 (strata_blob_info.sha256), so a content
 * hash can stand for a blob id (see strata_blob_opts.by_content). One index
 * lookup; in a store written before the content index existed (2026-11-25),
 * a scan of the blob records until its first write.
 * Returns: STRATA_OK, STRATA_NOTFOUND (no such blob), STRATA_EINVAL (NULL
 * argument), STRATA_ECORRUPT (damaged index row; in a store without the
 * index, a damaged blob record), storage errors. */
STRATA_API int strata_blob_find(strata_txn *txn, const uint8_t sha256[32], uint64_t *id);

/* Store len bytes as one blob (a writer fed in one piece).
 * Returns: as strata_blob_writer_begin and _finish; on failure nothing of the
 * blob remains in txn. */
STRATA_API int strata_blob_put(strata_txn *txn, const strata_blob_opts *opts, const void *data,
                               size_t len, uint64_t *id);

/* The record of blob id. Returns: STRATA_OK, STRATA_NOTFOUND (no such blob,
 * or one still being written), STRATA_ECORRUPT (a malformed record). */
STRATA_API int strata_blob_info_get(strata_txn *txn, uint64_t id, strata_blob_info *out);

/* Delete blob id in write transaction txn: its chunk list (chunks whose count
 * drops to zero are freed), tags, namespace and time entries, embedding, and
 * every lineage edge from or to it.
 * Returns: STRATA_OK, STRATA_NOTFOUND, STRATA_EREADONLY, storage errors. */
STRATA_API int strata_blob_delete(strata_txn *txn, uint64_t id);

#define STRATA_BLOB_VERIFY 0x1u   /* reader: check each chunk's SHA-256 once read */

/* Open a streaming reader on blob id, positioned at offset 0. It reads
 * through txn (borrowing nothing across calls, so writes to other blobs in
 * the same write transaction are safe) and must be closed before txn ends.
 * Returns: STRATA_OK, STRATA_NOTFOUND, STRATA_EINVAL (unknown flag),
 * STRATA_ENOMEM, STRATA_ECORRUPT. */
STRATA_API int strata_blob_reader_open(strata_txn *txn, uint64_t id, unsigned flags,
                                       strata_blob_reader **out);
/* Read up to len bytes at the current position into buf and advance.
 * @param[out] n_read  bytes read: less than len only at the end, 0 at the end
 * Returns: STRATA_OK, STRATA_ECORRUPT (chunk missing, wrong length, or, with
 * STRATA_BLOB_VERIFY, wrong SHA-256), STRATA_NOTFOUND (the blob was deleted
 * meanwhile). */
STRATA_API int strata_blob_read(strata_blob_reader *r, void *buf, size_t len, size_t *n_read);
/* Move to offset (0..size; size is the end). Returns: STRATA_OK, STRATA_EINVAL
 * (offset past the end). */
STRATA_API int strata_blob_seek(strata_blob_reader *r, uint64_t offset);
/* Current position and blob size (either pointer may be NULL). */
STRATA_API int strata_blob_tell(const strata_blob_reader *r, uint64_t *offset, uint64_t *size);
/* Close r. NULL-safe. */
STRATA_API void strata_blob_reader_close(strata_blob_reader *r);
/* Read exactly len bytes at offset of blob id into buf.
 * Returns: STRATA_OK, STRATA_EINVAL (offset + len past the end),
 * STRATA_NOTFOUND, STRATA_ECORRUPT; flags as strata_blob_reader_open. */
STRATA_API int strata_blob_read_at(strata_txn *txn, uint64_t id, uint64_t offset, void *buf,
                                   size_t len, unsigned flags);
/* Verify blob id end to end: every chunk's SHA-256 and length, the total size
 * and the SHA-256 of the whole content.
 * Returns: STRATA_OK, STRATA_NOTFOUND, STRATA_ECORRUPT (a mismatch). */
STRATA_API int strata_blob_verify(strata_txn *txn, uint64_t id);

/* Store statistics, kept up to date in the same transactions. */
typedef struct strata_blob_stats {
    uint64_t n_blobs;         /* finished blobs                                 */
    uint64_t logical_bytes;   /* sum of their sizes                             */
    uint64_t n_chunks;        /* distinct chunks stored                         */
    uint64_t stored_bytes;    /* sum of distinct chunk sizes                    */
    uint64_t n_pending;       /* blobs being written (or left by a lost writer) */
    uint64_t next_id;         /* the id the next blob will get                  */
} strata_blob_stats;
/* Returns: STRATA_OK (all zero, next_id 1, for a store never written),
 * STRATA_ECORRUPT. */
STRATA_API int strata_blob_stats_get(strata_txn *txn, strata_blob_stats *out);
/* Dedup ratio: logical bytes / stored bytes (1.0 when nothing is stored).
 * Returns: as strata_blob_stats_get. */
STRATA_API int strata_blob_dedup_ratio(strata_txn *txn, double *ratio);
/* Remove pending blobs left by writers of earlier transactions (never those
 * of writers open in txn). *n_removed may be NULL. Write transaction.
 * Returns: STRATA_OK, STRATA_EREADONLY, STRATA_ECORRUPT (a pending row names
 * a finished blob: nothing is removed for it), storage errors. */
STRATA_API int strata_blob_gc(strata_txn *txn, uint64_t *n_removed);
/* Consistency check of the blob tables: every reference count equals the
 * number of chunk-list rows naming the chunk, every chunk exists with its
 * recorded length, the statistics match, every blob has its namespace and
 * time entries and (where blob:sha exists) its content index entry, tags and
 * lineage edges are mirrored and name existing blobs.
 * With hash != 0, also every chunk's SHA-256. report (may be NULL) gets one
 * line per problem. Returns: STRATA_OK if clean, STRATA_ECORRUPT if not. */
STRATA_API int strata_blob_check(strata_txn *txn, int hash,
                                 void (*report)(void *ctx, const char *msg), void *ctx);

/* Blob-id callback of the listing functions: return non-zero to stop (that
 * value is then returned by the listing function). */
typedef int (*strata_blob_id_fn)(void *ctx, uint64_t id);

/* Tags: 1..STRATA_BLOB_MAX_META bytes each, any number per blob.
 * Add: STRATA_OK (also if already present), STRATA_NOTFOUND (no such blob).
 * Remove: STRATA_OK, STRATA_NOTFOUND (blob or tag absent). */
STRATA_API int strata_blob_tag_add(strata_txn *txn, uint64_t id, const char *tag);
STRATA_API int strata_blob_tag_remove(strata_txn *txn, uint64_t id, const char *tag);
/* Blobs carrying tag, in id order. */
STRATA_API int strata_blob_list_by_tag(strata_txn *txn, const char *tag, strata_blob_id_fn fn,
                                       void *ctx);
/* Tags of blob id in byte order; the slice is valid during the call only.
 * Returns: STRATA_OK, STRATA_NOTFOUND (no such blob), or fn's value. */
STRATA_API int strata_blob_tags_of(strata_txn *txn, uint64_t id,
                                   int (*fn)(void *ctx, strata_slice tag), void *ctx);

/* Blobs of namespace ns ("" = default) in id order. */
STRATA_API int strata_blob_list_ns(strata_txn *txn, const char *ns, strata_blob_id_fn fn,
                                   void *ctx);
/* Delete every blob of namespace ns; *n_deleted may be NULL. Write txn.
 * Returns: STRATA_OK, STRATA_EREADONLY, STRATA_ECORRUPT (a namespace row
 * without its blob), storage errors. */
STRATA_API int strata_blob_delete_ns(strata_txn *txn, const char *ns, uint64_t *n_deleted);

/* Blobs created with lo <= HLC <= hi, in (HLC, id) order. */
STRATA_API int strata_blob_list_time(strata_txn *txn, uint64_t hlc_lo, uint64_t hlc_hi,
                                     strata_blob_id_fn fn, void *ctx);

/* Embeddings: one optional f32 vector per blob (validated with
 * strata_vec_validate), kept in the vector table of its dimension
 * (docs/BLOBS.md "Embeddings"). Set replaces, also with another dimension;
 * NOTFOUND for an unknown blob; ECORRUPT for damaged embedding rows. */
STRATA_API int strata_blob_embed_set(strata_txn *txn, uint64_t id, const float *v, size_t dim);
/* Copy blob id's embedding into out (cap floats); *dim gets its dimension.
 * Returns: STRATA_OK, STRATA_NOTFOUND (no blob or no embedding), STRATA_EINVAL
 * (cap < dimension; *dim still gets it). */
STRATA_API int strata_blob_embed_get(strata_txn *txn, uint64_t id, float *out, size_t cap,
                                     size_t *dim);
/* Remove blob id's embedding. STRATA_OK or STRATA_NOTFOUND. */
STRATA_API int strata_blob_embed_del(strata_txn *txn, uint64_t id);
/* Exact k nearest blobs to query among the embeddings of dimension dim (others
 * are skipped), with strata_vec_table_topk on that dimension's vector table.
 * out (k hits) is sorted nearest first, ties by id; *n_out gets the number
 * found (< k when fewer blobs qualify: then all of them).
 * Returns: STRATA_OK, STRATA_EINVAL (bad metric, dim, k == 0, invalid query),
 * STRATA_ENOMEM, STRATA_ECORRUPT. */
STRATA_API int strata_blob_similar(strata_txn *txn, strata_metric m, const float *query,
                                   size_t dim, size_t k, strata_hit *out, size_t *n_out);

/* Causal lineage: directed edges "from names to, as relation kind". Both ends
 * must be existing (finished) blobs. from == to is rejected. */
typedef enum {
    STRATA_BLOB_DERIVED_FROM = 1,
    STRATA_BLOB_SIMILAR_TO   = 2,
    STRATA_BLOB_CONTRADICTS  = 3,
    STRATA_BLOB_SUPPORTS     = 4,
    STRATA_BLOB_SUPERSEDES   = 5
} strata_blob_rel;
#define STRATA_BLOB_REL_MASK(rel) (1u << (rel))   /* for rel_mask below; 0 = all */

/* Direction of a lineage query. */
#define STRATA_BLOB_PARENTS  1   /* follow edges out of a blob: the blobs it names   */
#define STRATA_BLOB_CHILDREN 2   /* follow edges into a blob: the blobs that name it */
#define STRATA_BLOB_BOTH     3

typedef struct strata_blob_edge {
    uint64_t        from, to;
    strata_blob_rel rel;
    strata_slice    context;    /* valid during the callback only */
} strata_blob_edge;

/* Add (or, for the same from, to and rel, replace the context of) an edge.
 * context may be NULL; at most STRATA_BLOB_MAX_CTX bytes.
 * Returns: STRATA_OK, STRATA_NOTFOUND (from or to unknown: nothing written),
 * STRATA_EINVAL (bad rel, from == to, context too long). */
STRATA_API int strata_blob_link(strata_txn *txn, uint64_t from, uint64_t to, strata_blob_rel rel,
                                const char *context);
/* Remove one edge. STRATA_OK or STRATA_NOTFOUND. */
STRATA_API int strata_blob_unlink(strata_txn *txn, uint64_t from, uint64_t to,
                                  strata_blob_rel rel);
/* Direct edges of id in direction dir (PARENTS, CHILDREN or BOTH), filtered
 * by rel_mask, in key order (out-edges before in-edges for BOTH).
 * Returns: STRATA_OK, STRATA_NOTFOUND (no such blob), or fn's value. */
STRATA_API int strata_blob_edges(strata_txn *txn, uint64_t id, int dir, unsigned rel_mask,
                                 int (*fn)(void *ctx, const strata_blob_edge *e), void *ctx);
/* Breadth-first traversal from id (not reported) in direction dir: ancestors
 * with PARENTS, descendants with CHILDREN. Each blob within max_depth edges
 * (>= 1) is reported once, with its depth, nearest first; cycles are safe.
 * Returns: STRATA_OK, STRATA_NOTFOUND (no such blob), STRATA_ENOMEM, or fn's value. */
STRATA_API int strata_blob_traverse(strata_txn *txn, uint64_t id, int dir, unsigned rel_mask,
                                    uint32_t max_depth,
                                    int (*fn)(void *ctx, uint64_t id, uint32_t depth),
                                    void *ctx);
/* Shortest path from `from` to `to` following edges in direction dir, of at
 * most max_depth edges. path (cap ids, cap >= max_depth + 1) gets from, ...,
 * to; *n_path its length (1 when from == to).
 * Returns: STRATA_OK, STRATA_NOTFOUND (no path within max_depth, or an
 * unknown blob), STRATA_EINVAL (cap too small, bad dir), STRATA_ENOMEM. */
STRATA_API int strata_blob_path(strata_txn *txn, uint64_t from, uint64_t to, int dir,
                                unsigned rel_mask, uint32_t max_depth, uint64_t *path,
                                size_t cap, size_t *n_path);

/* ---- end of blob section ---- */

/* ------------------------------------------------------------------------ */
/* Composite queries (query/): one ranked answer from similarity, recency,
 * lineage and tags over the blob store, with filters (namespace, time window,
 * required / excluded tags, lineage radius, a user predicate).
 * (section owned by the query layer; definitions in docs/QUERY.md)
 *
 * Build a query once with strata_query_create and the setters, then run it
 * with strata_query_run in any transaction: the answer is a snapshot of that
 * transaction. Filters decide which blobs are candidates; each *signal* gives
 * a candidate a score in [0, 1]:
 *   similarity  map(distance) for the k nearest candidates (exact scan, an
 *               IVF-PQ index via strata_query_set_ivf, or any index via
 *               strata_query_set_ann), 0 for the others;
 *               map: COSINE 1 - d/2; L2, L1 1 / (1 + d/scale);
 *               IP 1 / (1 + exp(d/scale)) (d = -dot)
 *   recency     0.5 ^ (age_ms / half_life_ms), age from the blob's created
 *               HLC to `now` (physical ms parts; a blob newer than now: 1)
 *   lineage     1 - hops / (max_hops + 1) within max_hops edges of the
 *               anchor (the anchor itself: hops 0, score 1), else 0
 *   tags        fraction of the preferred tags the blob carries
 * The fused score is the weighted mean of the active signals' scores
 * (STRATA_QUERY_FUSE_SUM), or weighted reciprocal rank fusion
 * (STRATA_QUERY_FUSE_RRF), both in [0, 1]. Results are the candidates with a
 * fused score > 0, best first, ties by smaller id; each carries its
 * per-signal scores and ranks so the ranking can be explained. Ranking never
 * reads blob content: only index tables, metadata records and embeddings.
 * Thread-safety: a query object is built by one thread; once built, several
 * threads may run it at once (each with its own transaction) as long as no
 * setter is called meanwhile (and it holds no borrowed IVF handle, which
 * ties it to one transaction; callbacks must then be thread-safe).          */

typedef struct strata_query strata_query;   /* opaque */

/* Signals; index of strata_query_result.signal[] and .rank[]. */
typedef enum {
    STRATA_QUERY_SIMILARITY = 0,
    STRATA_QUERY_RECENCY    = 1,
    STRATA_QUERY_LINEAGE    = 2,
    STRATA_QUERY_TAGS       = 3
} strata_query_signal;
#define STRATA_QUERY_NSIG 4

/* Fusion of the signals' scores. */
#define STRATA_QUERY_FUSE_SUM 0   /* sum w_s * S_s / sum w_s over active signals (default) */
#define STRATA_QUERY_FUSE_RRF 1   /* sum w_s / (c + rank_s) / sum w_s / (c + 1)             */

#define STRATA_QUERY_MAX_TAGS 64u            /* per list (required, excluded, preferred) */
#define STRATA_QUERY_NO_HOPS  UINT32_MAX     /* result not within the lineage radius      */

/* Flags of strata_query_set_vector. */
#define STRATA_QUERY_VEC_SKIP_DIM 0x1u   /* skip embeddings of another dimension
                                            (default: such an embedding among the
                                            candidates is STRATA_EINVAL)          */
/* Flags of strata_query_set_anchor. */
#define STRATA_QUERY_LINEAGE_FILTER 0x1u /* only blobs within max_hops are candidates */
#define STRATA_QUERY_EXCLUDE_ANCHOR 0x2u /* the anchor itself is never a candidate    */

/* Create an empty query (no filter, no signal; every weight 1; FUSE_SUM).
 * Returns: STRATA_OK, STRATA_EINVAL (out NULL), STRATA_ENOMEM.
 * *out lives until strata_query_free. Any thread. */
STRATA_API int  strata_query_create(strata_query **out);
/* Free q and everything it copied. NULL-safe. Exclusive on q. */
STRATA_API void strata_query_free(strata_query *q);

/* Similarity signal: the k nearest candidates to v (dim floats, copied) under
 * metric m. scale > 0 divides L2, L1 and IP distances in the map above (1 is
 * a good default for normalised embeddings; ignored for COSINE).
 * Returns: STRATA_OK, STRATA_EINVAL (q NULL, bad metric, k == 0, v invalid
 * per strata_vec_validate, scale not finite or <= 0, unknown flag),
 * STRATA_ENOMEM. Exclusive on q. */
STRATA_API int  strata_query_set_vector(strata_query *q, strata_metric m, const float *v,
                                        size_t dim, size_t k, double scale, unsigned flags);

/* An approximate nearest-neighbour source (an index) for the similarity
 * signal: write up to k hits nearest to query into out, nearest first, with
 * *n_out their number. keep(keep_ctx, id) is non-zero for the ids that are
 * candidates of this run and have an embedding: an index should skip the
 * others, or it spends its k slots on ids the run ignores (e.g. blobs
 * deleted since they were indexed); k is already bounded by the number of
 * candidates. Return STRATA_OK or an error, which
 * the run returns. The query re-ranks the returned candidates by their exact
 * distance to the stored embeddings, so the index's own distances only choose
 * which ids are considered. Called once per run, on the running thread. */
typedef int (*strata_query_keep_fn)(void *keep_ctx, uint64_t id);
typedef int (*strata_query_ann_fn)(void *ctx, strata_txn *txn, strata_metric m,
                                   const float *query, size_t dim, size_t k,
                                   strata_query_keep_fn keep, void *keep_ctx,
                                   strata_hit *out, size_t *n_out);
/* Use fn as the similarity source instead of the exact scan (fn NULL: back to
 * the exact scan); replaces an index chosen with strata_query_set_ivf.
 * Returns: STRATA_OK, STRATA_EINVAL (q NULL). Exclusive on q. */
STRATA_API int  strata_query_set_ann(strata_query *q, strata_query_ann_fn fn, void *ctx);

#define STRATA_QUERY_IVF_REQUIRED 0x1u   /* a missing index is STRATA_NOTFOUND
                                            (default: fall back to the exact scan,
                                            reported in the explain)             */
/* Use the IVF-PQ index `name` (strata_ivf_*, 1..200 bytes, copied) as the
 * similarity source: it must hold the blobs' embeddings under their blob ids
 * and should use the query's metric (its metric picks the ids, the query's
 * ranks them). Each run opens it in the run's transaction and searches it
 * with nprobe (0: the index's default) and rerank (0: none; needs
 * STRATA_IVF_RAW), filtered to the candidates; the hits are re-ranked
 * exactly as with strata_query_set_ann. name NULL: back to the exact scan.
 * Replaces a function set with strata_query_set_ann.
 * Returns: STRATA_OK, STRATA_EINVAL (q NULL, bad name length, unknown flag),
 * STRATA_ENOMEM. At run time an index of another dimension is STRATA_EINVAL.
 * Exclusive on q. */
STRATA_API int  strata_query_set_ivf(strata_query *q, const char *name, uint32_t nprobe,
                                     uint32_t rerank, unsigned flags);
/* As strata_query_set_ivf with an index handle the caller opened
 * (strata_ivf_open) in the transaction the query will run in: runs skip
 * opening the index and loading its model, which dominates a small query.
 * The handle is borrowed: it must stay open while q runs with it, and q may
 * then only run in that handle's transaction. ix NULL: back to the exact
 * scan. Returns: STRATA_OK, STRATA_EINVAL (q NULL). Exclusive on q. */
STRATA_API int  strata_query_set_ivf_handle(strata_query *q, strata_ivf *ix, uint32_t nprobe,
                                            uint32_t rerank);

/* Time window filter: only blobs created with hlc_lo <= created HLC <= hlc_hi.
 * Returns: STRATA_OK, STRATA_EINVAL (q NULL, hlc_lo > hlc_hi). Exclusive on q. */
STRATA_API int  strata_query_set_window(strata_query *q, uint64_t hlc_lo, uint64_t hlc_hi);
/* Recency signal with half-life half_life_ms (> 0), ages measured at now_hlc
 * (0: the HLC of the run's transaction, strata_txn_hlc).
 * Returns: STRATA_OK, STRATA_EINVAL (q NULL, half_life_ms == 0). Exclusive on q. */
STRATA_API int  strata_query_set_recency(strata_query *q, uint64_t now_hlc, uint64_t half_life_ms);

/* Lineage signal: hops from anchor along edges in direction dir
 * (STRATA_BLOB_PARENTS, _CHILDREN or _BOTH) whose relation is in rel_mask
 * (0 = all), up to max_hops (1..1024); flags STRATA_QUERY_LINEAGE_FILTER,
 * STRATA_QUERY_EXCLUDE_ANCHOR. An anchor that is not a blob of the run's
 * snapshot makes the run return STRATA_NOTFOUND.
 * Returns: STRATA_OK, STRATA_EINVAL (q NULL, anchor 0, bad dir, max_hops out
 * of range, unknown flag). Exclusive on q. */
STRATA_API int  strata_query_set_anchor(strata_query *q, uint64_t anchor, int dir,
                                        unsigned rel_mask, uint32_t max_hops, unsigned flags);

/* Tags (1..STRATA_BLOB_MAX_META bytes, copied; adding one twice is a no-op):
 * a required tag must be carried, an excluded one must not be; preferred tags
 * make the tags signal. Returns: STRATA_OK, STRATA_EINVAL (q or tag NULL, bad
 * length, more than STRATA_QUERY_MAX_TAGS in the list), STRATA_ENOMEM.
 * Exclusive on q. */
STRATA_API int  strata_query_require_tag(strata_query *q, const char *tag);
STRATA_API int  strata_query_exclude_tag(strata_query *q, const char *tag);
STRATA_API int  strata_query_prefer_tag(strata_query *q, const char *tag);

/* Namespace filter: only blobs of namespace ns ("" = the default namespace;
 * NULL removes the filter). Returns: STRATA_OK, STRATA_EINVAL (q NULL, longer
 * than STRATA_BLOB_MAX_META). Exclusive on q. */
STRATA_API int  strata_query_set_namespace(strata_query *q, const char *ns);

/* Metadata filter: keep a candidate when fn returns non-zero for its record
 * (the slices of info are valid during the call only). It runs after the
 * index filters, only on their survivors, in id order, on the running thread;
 * it may read through txn but must not write. fn NULL removes the filter.
 * Returns: STRATA_OK, STRATA_EINVAL (q NULL). Exclusive on q. */
typedef int (*strata_query_pred_fn)(void *ctx, strata_txn *txn, const strata_blob_info *info);
STRATA_API int  strata_query_set_predicate(strata_query *q, strata_query_pred_fn fn, void *ctx);

/* Weight of signal s in the fusion (default 1). A signal contributes only
 * when it is set (vector, recency, anchor, preferred tags); at run time the
 * weights of the set signals must not all be zero.
 * Returns: STRATA_OK, STRATA_EINVAL (q NULL, unknown signal, w negative or
 * not finite). Exclusive on q. */
STRATA_API int  strata_query_set_weight(strata_query *q, strata_query_signal s, double w);
/* Fusion: STRATA_QUERY_FUSE_SUM or STRATA_QUERY_FUSE_RRF with constant c > 0
 * (0 = 60). Returns: STRATA_OK, STRATA_EINVAL. Exclusive on q. */
STRATA_API int  strata_query_set_fusion(strata_query *q, int fusion, double c);

/* One ranked answer. */
typedef struct strata_query_result {
    uint64_t id;
    double   score;                        /* fused, in (0, 1]                     */
    double   signal[STRATA_QUERY_NSIG];    /* per-signal score in [0, 1]; 0 when
                                              the signal is not set               */
    uint32_t rank[STRATA_QUERY_NSIG];      /* 1 + candidates with a greater score
                                              in that signal; 0 when its score is 0 */
    float    dist;                         /* distance to the query vector; NaN
                                              when not among the k nearest        */
    uint32_t hops;                         /* lineage hops, or STRATA_QUERY_NO_HOPS */
    uint32_t tags_matched;                 /* preferred tags carried              */
    uint64_t created_hlc;                  /* the blob's created HLC              */
} strata_query_result;

/* How candidates were generated (strata_query_explain.driver). */
typedef enum {
    STRATA_QUERY_DRIVE_ALL        = 0,   /* every blob, from the time index       */
    STRATA_QUERY_DRIVE_TAG        = 1,   /* a required tag's index rows           */
    STRATA_QUERY_DRIVE_NAMESPACE  = 2,   /* the namespace index rows              */
    STRATA_QUERY_DRIVE_WINDOW     = 3,   /* the time index range of the window    */
    STRATA_QUERY_DRIVE_LINEAGE    = 4,   /* the breadth-first walk from the anchor */
    STRATA_QUERY_DRIVE_SIMILARITY = 5,   /* the k nearest of all embeddings (no
                                            filter, similarity the only signal
                                            set)                                 */
    STRATA_QUERY_DRIVE_RECENCY    = 6,   /* newest first from the time index (no
                                            filter, recency the only signal set):
                                            stops after the answer               */
    STRATA_QUERY_DRIVE_SUPPORT    = 7    /* only lineage and/or preferred tags set,
                                            all weighted: the blobs that can score
                                            > 0 (lineage radius, preferred tags'
                                            index rows)                           */
} strata_query_driver;
#define STRATA_QUERY_NDRIVE 8
#define STRATA_QUERY_EST_UNSET UINT64_MAX   /* filter not in the query */

/* The plan a run chose and what each step kept. Plain data. */
typedef struct strata_query_explain {
    int      driver;                       /* strata_query_driver                    */
    char     driver_arg[STRATA_BLOB_MAX_META + 1];  /* its tag or namespace, NUL-terminated */
    uint64_t n_blobs;                      /* finished blobs in the snapshot         */
    uint64_t est[STRATA_QUERY_NDRIVE];     /* rows each filter index produced while
                                              choosing the driver (tags: the least);
                                              _EST_UNSET if absent                   */
    uint32_t est_capped;                   /* bit d: est[d] stopped early, the index
                                              has more rows than est[d] - 1          */
    uint64_t n_generated;                  /* candidates from the driver             */
    uint64_t n_indexed;                    /* after the other index filters          */
    uint64_t n_filtered;                   /* after the predicate                    */
    uint64_t n_probes;                     /* point lookups made by the filters      */
    uint64_t n_meta_loads;                 /* metadata records read                  */
    int      sim_source;                   /* 0 none, 1 exact scan, 2 ann function,
                                              3 IVF index                            */
    uint64_t n_sim_considered;             /* embeddings compared (exact) or index
                                              hits (ann)                             */
    uint64_t n_sim_ranked;                 /* candidates given a similarity score    */
    uint64_t n_reached;                    /* blobs within the lineage radius        */
    uint64_t n_scored;                     /* candidates with a fused score > 0      */
    uint64_t n_results;
    int      fusion;                       /* STRATA_QUERY_FUSE_*                    */
    double   weight[STRATA_QUERY_NSIG];    /* effective weights (0 when not set)     */
    int      sim_fallback;                 /* 1: the chosen IVF index does not exist:
                                              the exact scan ran instead             */
} strata_query_explain;

/* Run q in txn (read or write; the answer is a snapshot of it).
 * @param[out] out    up to cap results, best first
 * @param[out] n_out  number written (< cap when fewer candidates score > 0)
 * @param[out] ex     the plan and its counts (may be NULL)
 * Returns: STRATA_OK; STRATA_EINVAL (NULL argument, cap == 0, no signal set,
 * the weights of the set signals all zero, an embedding of another dimension
 * among the candidates without STRATA_QUERY_VEC_SKIP_DIM, an ann function
 * reporting more than k hits); STRATA_NOTFOUND (the anchor is not a blob);
 * STRATA_ENOMEM; STRATA_ECORRUPT (a malformed index row or record);
 * storage errors; the ann function's error. Outputs are written on success
 * only. Owner thread of txn (q read-only meanwhile). */
STRATA_API int  strata_query_run(strata_txn *txn, const strata_query *q, strata_query_result *out,
                                 size_t cap, size_t *n_out, strata_query_explain *ex);

/* Describe ex (and the results res[0..n), may be NULL/0) as text in buf (cap
 * bytes, always NUL-terminated when cap > 0), like snprintf: returns the
 * length the whole text needs. Any thread. */
STRATA_API size_t strata_query_explain_format(const strata_query_explain *ex,
                                              const strata_query_result *res, size_t n,
                                              char *buf, size_t cap);

/* ---- end of query section ---- */

/* ------------------------------------------------------------------------ */
/* Fractal index (fractal/): a self-organizing cluster tree for approximate
 * nearest neighbours that keeps its recall while the data drifts.
 * (section owned by the fractal layer)                                      */
/* A balanced tree of clusters: leaves own a posting list of PQ codes (global
 * codebooks, trained once and retrainable) and a write buffer of raw vectors;
 * internal nodes route by centroid. Inserts go to the nearest leaf's buffer; a
 * full buffer is PQ-encoded into the posting list; a leaf above max_leaf
 * splits by 2-means, an internal node above max_fanout splits too (a new root
 * grows on top, so all leaves keep one depth); a leaf below min_leaf after a
 * delete merges into its nearest sibling. Every byte lives in internal tables
 * "__frac:NAME:*" (layouts: docs/FRACTAL.md) and changes inside the write
 * transaction: an abort leaves the index as it was. Vectors are u64 ids with
 * dim f32 values (strata_vec_validate) and a u64 timestamp for time-window
 * search. Metrics: L2, IP, COSINE (cosine vectors are normalized for routing,
 * buffers and codes; raw vectors are kept as given).
 * A handle is opened in one transaction and must be closed
 * (strata_fractal_close) before that transaction ends. Every mutating call
 * writes all it changed before it returns. After a mutating call fails with
 * anything but STRATA_EINVAL, STRATA_NOTFOUND or STRATA_EREADONLY, the index
 * may be half-updated: abort the transaction (the handle refuses further
 * calls with STRATA_EBADTXN).
 * Thread-safety: owner thread of the handle's transaction, for every function
 * here except strata_fractal_config_default (any thread).                   */

typedef struct strata_fractal strata_fractal;   /* opaque */

#define STRATA_FRACTAL_KEEP_RAW 0x1u   /* config flag: keep raw vectors (rerank,
                                          exact splits and sums)               */
#define STRATA_FRACTAL_SHARED_CODEBOOK 0x2u /* config flag: train one PQ codebook
                                          on the sub-vectors of every subspace
                                          pooled (pq_m times the training
                                          points) and use it for all subspaces:
                                          codes of regions the training sample
                                          did not cover stay accurate (drift);
                                          fits data whose subspaces look alike
                                          (SIFT, rotated embeddings)           */

typedef struct strata_fractal_config {
    uint32_t      dim;         /* 1..STRATA_VEC_MAX_DIM                           */
    strata_metric metric;      /* STRATA_METRIC_L2, _IP or _COSINE                */
    uint32_t      pq_m;        /* PQ subspaces, dim % pq_m == 0, 256 codewords each */
    uint32_t      max_leaf;    /* a leaf above this many vectors splits (4..2^20) */
    uint32_t      min_leaf;    /* a leaf below this after a delete merges
                                  (< max_leaf / 2; 0: never merge)                */
    uint32_t      max_fanout;  /* an internal node above this many children splits
                                  (2..4096)                                       */
    uint32_t      max_depth;   /* levels, leaves included (2..32); the root does
                                  not split at this depth (its fan-out grows)     */
    uint32_t      buffer_cap;  /* buffered raw vectors per leaf before the cascade
                                  PQ-encodes them (1..max_leaf); searches scan
                                  buffered vectors exactly, one row each, so a
                                  larger cap inserts faster and searches slower */
    uint32_t      train_size;  /* train the codebooks automatically when this many
                                  vectors are present; 0: only strata_fractal_train */
    uint32_t      train_iters; /* k-means iterations of codebook training (1..1000) */
    uint32_t      flags;       /* STRATA_FRACTAL_KEEP_RAW, _SHARED_CODEBOOK        */
    uint64_t      seed;        /* training seed (deterministic)                   */
    uint32_t      retrain_growth; /* retrain the codebooks automatically (as
                                  strata_fractal_train(f, 0)) whenever the index
                                  holds this many percent more vectors than at the
                                  last training, e.g. 100: at 2x, 4x, 8x ...;
                                  0 (default): never retrain automatically
                                  (0..100000)                                     */
} strata_fractal_config;

/* Defaults for dim and metric: pq_m = dim/4 (dim/2, dim when not divisible),
 * max_leaf 512, min_leaf 64, max_fanout 32, max_depth 8, buffer_cap 8,
 * train_size 0, train_iters 10, flags KEEP_RAW, seed 1, retrain_growth 0.
 * Any thread. */
STRATA_API void strata_fractal_config_default(strata_fractal_config *cfg, uint32_t dim,
                                              strata_metric metric);

/* Create index `name` (1..200 bytes, no ':') in write transaction txn.
 * @param[out] out  an open handle (may be NULL: then only created)
 * Returns: STRATA_OK, STRATA_EINVAL (bad name or config), STRATA_EEXIST,
 * STRATA_EREADONLY, STRATA_ENOMEM, storage errors. */
STRATA_API int  strata_fractal_create(strata_txn *txn, const char *name,
                                      const strata_fractal_config *cfg, strata_fractal **out);
/* Open index `name` in txn (read or write); loads and validates the tree.
 * *out lives until strata_fractal_close, which must come before txn ends.
 * Several handles on one index in one transaction see each other's writes:
 * after a write through another handle, a savepoint rollback in txn or a
 * drop, a handle reloads the tree on its next call (STRATA_EBADTXN if the
 * index no longer exists).
 * Returns: STRATA_OK, STRATA_NOTFOUND, STRATA_EINVAL, STRATA_EVERSION,
 * STRATA_ECORRUPT (damaged record, a cycle, a dangling or disowned child, a
 * tree deeper than max_depth), STRATA_ENOMEM. */
STRATA_API int  strata_fractal_open(strata_txn *txn, const char *name, strata_fractal **out);
/* Free the handle (not the index). NULL-safe. */
STRATA_API void strata_fractal_close(strata_fractal *f);
/* Delete index `name` and all its tables. Write transaction; no handle on it
 * may be open. Returns: STRATA_OK, STRATA_NOTFOUND, STRATA_EINVAL, STRATA_EREADONLY. */
STRATA_API int  strata_fractal_drop(strata_txn *txn, const char *name);

/* Insert or replace (upsert) n vectors (ids[i], data + i * dim, ts[i]); ts may
 * be NULL (timestamp 0). dim must be the index's. Everything is validated
 * before anything is written. An id given twice: the last one wins.
 * Returns: STRATA_OK, STRATA_EINVAL (dim mismatch, invalid vector, NULL
 * arrays), STRATA_EREADONLY, STRATA_ENOMEM, STRATA_ECORRUPT, STRATA_EBADTXN,
 * storage errors. */
STRATA_API int  strata_fractal_add_batch(strata_fractal *f, size_t n, const uint64_t *ids,
                                         const float *data, size_t dim, const uint64_t *ts);
/* One vector: as strata_fractal_add_batch with n = 1. */
STRATA_API int  strata_fractal_add(strata_fractal *f, uint64_t id, const float *v, size_t dim,
                                   uint64_t ts);
/* Remove vector id (merging its leaf if it falls below min_leaf).
 * Returns: STRATA_OK, STRATA_NOTFOUND, STRATA_EREADONLY, STRATA_ECORRUPT, ... */
STRATA_API int  strata_fractal_delete(strata_fractal *f, uint64_t id);
/* (Re)train the global PQ codebooks from at most max_sample (0: 16384)
 * vectors of the index (an evenly strided sample of every leaf, as residuals
 * against the leaf centroids), re-anchor and re-encode every posting list
 * with the new codebooks (from raw vectors when kept, else from the old
 * decoded codes) and cascade full buffers. Callable any number of times on a
 * trained index; info's codebook_gen counts the trainings. Returns: STRATA_OK, STRATA_EINVAL (empty index), STRATA_EREADONLY,
 * STRATA_ENOMEM, storage errors. */
STRATA_API int  strata_fractal_train(strata_fractal *f, size_t max_sample);
/* The raw vector (dim floats into v) and timestamp of id; v or ts may be NULL.
 * Returns: STRATA_OK, STRATA_NOTFOUND, STRATA_EINVAL (v without KEEP_RAW, or a
 * dim mismatch), STRATA_ECORRUPT. */
STRATA_API int  strata_fractal_get(strata_fractal *f, uint64_t id, float *v, size_t dim,
                                   uint64_t *ts);

#define STRATA_FRACTAL_WINDOW 0x1u   /* search flag: only ts_min <= ts <= ts_max */

typedef struct strata_fractal_params {
    uint32_t             beam;      /* nodes kept per internal level (0 = 16)       */
    uint32_t             n_probe;   /* leaves scanned at least (0 = 8); up to twice as
                                       many while deletes have thinned the leaves      */
    uint32_t             rerank;    /* exact rerank of the best max(k, rerank)
                                       candidates with raw vectors (needs KEEP_RAW);
                                       0: off                                      */
    unsigned             flags;     /* STRATA_FRACTAL_WINDOW                        */
    uint64_t             ts_min, ts_max;  /* the window, inclusive                  */
    strata_vec_filter_fn filter;    /* NULL, or keeps id when non-zero; called only
                                       for candidates that would enter the result */
    void                *filter_ctx;
} strata_fractal_params;

/* k nearest (approximate) vectors to query (dim floats). out (k hits) sorted
 * nearest first by (dist, id); distances are exact after rerank, else PQ
 * estimates for encoded vectors and exact for buffered ones, on the scale of
 * strata_vec_distance (cosine: 1 - cos). *n_out < k when fewer qualify.
 * params may be NULL for defaults.
 * Returns: STRATA_OK, STRATA_EINVAL (no codebooks yet: train first; dim
 * mismatch, k == 0, invalid query, rerank without KEEP_RAW, ts_min > ts_max),
 * STRATA_ENOMEM, STRATA_ECORRUPT. */
STRATA_API int  strata_fractal_search(strata_fractal *f, const float *query, size_t dim,
                                      size_t k, const strata_fractal_params *params,
                                      strata_hit *out, size_t *n_out);

typedef struct strata_fractal_info {
    strata_fractal_config config;
    uint64_t n_vectors;
    uint32_t n_leaves, n_internal;
    uint32_t depth;            /* levels, leaves included                        */
    uint64_t n_buffered;       /* vectors in write buffers                       */
    uint32_t codebook_gen;     /* 0: untrained; +1 per training                  */
    uint64_t largest_leaf, smallest_leaf;
} strata_fractal_info;
/* Describe the index from its cached tree (O(nodes)).
 * Returns: STRATA_OK, STRATA_EINVAL. */
STRATA_API int  strata_fractal_info_get(strata_fractal *f, strata_fractal_info *out);

/* Check every invariant of index `name` in the snapshot txn sees: each id in
 * exactly one leaf (posting list or buffer) matching its assignment row;
 * populations, f64 sums, centroids and time ranges matching the vectors
 * present; parent/child links agreeing; the tree acyclic, level-consistent and
 * within max_depth; no leaf above max_leaf and no full buffer once trained.
 * report (may be NULL) gets one line per problem.
 * Returns: STRATA_OK if clean, STRATA_ECORRUPT if anything is wrong,
 * STRATA_NOTFOUND, STRATA_EVERSION (written by another format version),
 * STRATA_EINVAL, STRATA_ENOMEM. */
STRATA_API int  strata_fractal_check(strata_txn *txn, const char *name,
                                     void (*report)(void *ctx, const char *msg), void *ctx);

/* ---- end of fractal section ---- */

#ifdef __cplusplus
}
#endif
#endif /* STRATA_H */
