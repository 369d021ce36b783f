/* db/db_int.h - private to db/: the structures behind the public handles.
 *
 * Locking: db->mu guards cur, readers, writer_active and the comparator list
 * during registration; everything in a strata_txn belongs to its owner thread.
 * States of the write lock: idle --strata_begin_write--> held
 * --strata_commit/strata_abort--> idle. A panicked db refuses new transactions.
 * Invariants:
 *  (1) cur is the last commit (durable or not); p->durable the last durable one;
 *  (2) readers[] holds the snapshot txn id and page count of every live read
 *      transaction; a writer may reuse pages freed by T only if T <= every
 *      entry's txn id and T <= the durable txn id; the file is never truncated
 *      below any entry's page count (strata_backup copies every page of its
 *      snapshot, free ones included, from the map);
 *  (3) a table handle is unique per (txn, name); a cursor belongs to one table;
 *  (4) handles carry a magic word, checked at every API entry. */
#ifndef STRATA_DB_INT_H
#define STRATA_DB_INT_H

#include <pthread.h>

#include "strata.h"
#include "btree.h"
#include "catalog.h"

#define DB_MAGIC   0x53444231u
#define TXN_MAGIC  0x53545831u
#define TBL_MAGIC  0x53544231u
#define CUR_MAGIC  0x53435231u
#define DEAD_MAGIC 0xDEADDEADu

typedef struct db_reader {
    uint64_t txnid;                  /* the snapshot's txn id              */
    uint64_t pages;                  /* and its page count                 */
} db_reader;

typedef struct cmp_entry {
    char          name[CAT_CMP_MAX + 1];
    strata_cmp_fn fn;
    void         *ctx;
} cmp_entry;

struct strata_db {
    uint32_t        magic;
    pager          *p;
    pthread_mutex_t mu;
    pthread_cond_t  writer_cv;
    int             writer_active;
    pg_state        cur;
    uint64_t        durable_txnid;   /* mirror of p->durable.txnid, under mu */
    db_reader      *readers;
    size_t          n_readers, cap_readers;
    cmp_entry      *cmps;
    size_t          n_cmps;
    int             rdonly;
    strata_clock_fn clock;           /* NULL: system clock; set while no txn is open */
    void           *clock_ctx;
    uint64_t        hlc_last;        /* under mu: the largest HLC handed out */
    uint64_t        hlc_max_drift;   /* ms; 0 = unlimited */
    uint64_t        hist_oldest;     /* under mu: oldest retained commit, 0 = none */
    uint64_t        sp_oldest;       /* under mu: oldest persistent savepoint, 0 = none */
    uint32_t        hist_window;     /* commits retained before the newest (writer) */
    struct gc_req  *gc_head, *gc_tail;   /* group commit queue, under mu */
    pgno_t         *vset;            /* writer: pages of not-yet-durable commits (set) */
    size_t          vset_n, vset_cap;
    int             gc_leader;           /* a leader is committing a group */
    pthread_cond_t  gc_cv;
};

typedef struct strata_table strata_table;
typedef struct strata_cursor strata_cursor;

struct strata_txn {
    uint32_t       magic;
    strata_db     *db;
    int            write;
    int            poisoned;     /* a write failed: only abort is legal */
    int            durability;
    pg_state       snap;         /* read: the snapshot; write: the base commit */
    bt_ctx         cx;
    bt_wtx        *w;
    bt_tree        catalog;
    strata_table  *tables;
    uint64_t       hlc;          /* write: the HLC this commit will carry */
    uint32_t       cdc_seq;      /* next change sequence number in this txn */
    strata_table  *cdc_log;      /* the change log, opened on first change */
    int64_t        hist_window;  /* set by strata_history_set in this txn, or -1 */
    struct strata_savepoint *savepoints;   /* ephemeral savepoints of this txn */
    int            sp_changed;   /* persistent savepoints changed: recompute oldest */
    int            reset_free;   /* savepoint restore: the free tree is rebuilt */
    struct arena_blk *arena;     /* decompressed values, freed at the end */
    struct txn_counter *counters;   /* db_txn_counter, freed at the end */
};

/* Multimap composite key: u16 LE key length, key, value. */
typedef struct mm_cmp_ctx { bt_cmp cmp; void *ctx; } mm_cmp_ctx;

struct strata_table {
    uint32_t       magic;
    strata_txn    *txn;
    strata_table  *next;
    char          *name;
    cat_desc       desc;
    bt_tree        tree;
    mm_cmp_ctx     mm;           /* multimap: the key comparator */
    int            dirty;
    int            dropped;
    uint8_t       *scratch;      /* pop results, composite keys */
    size_t         scratch_cap;
    strata_cursor *cursors;
    strata_table  *ttl_index;    /* TTL tables: the expiry index, opened lazily */
    uint8_t       *vbuf;         /* TTL and merge: the value being written */
    size_t         vbuf_cap;
    uint8_t       *cbuf;         /* compressed tables: the value being written */
    size_t         cbuf_cap;
    void          *zc, *zd;      /* zstd tables: compression contexts, made lazily */
};

/* Internal table names (reserved "__" prefix). */
#define TTL_INDEX_PREFIX "__ttl:"
#define CDC_LOG_NAME     "__cdc:log"
#define CDC_CONS_NAME    "__cdc:consumers"
#define HISTORY_NAME     "__history"
#define META_NAME        "__meta"
#define SAVEPOINTS_NAME  "__savepoints"
enum { STATE_LEN = 72 };
enum { TTL_PREFIX_LEN = 8 };

struct strata_cursor {
    uint32_t       magic;
    strata_table  *t;
    strata_cursor *next;
    bt_cursor      bc;
    int            stale;        /* the table changed: re-seek to saved key */
    uint8_t       *saved;
    size_t         saved_len, saved_cap;
    uint8_t       *lo, *hi;      /* range bounds (copies) or NULL */
    size_t         lo_len, hi_len;
    int            has_lo, has_hi;
    unsigned       range_flags;
};

/* db.c (also used by tests) */
int  db_open_backend(io_backend *io, unsigned flags, const strata_options *opts, strata_db **out);
void db_close_nosync(strata_db *db);     /* no writes at all: a simulated crash */
/* Handle checks on every API call (inline: they sit on the read fast path).
 * A transaction: magic, database panic, poison, and write access if asked. */
static inline int db_txn_check(strata_txn *txn, int need_write) {
    if (!txn || txn->magic != TXN_MAGIC) return STRATA_EINVAL;
    if (txn->db->p->panic) return STRATA_EPANIC;
    if (txn->poisoned) return STRATA_EBADTXN;
    if (need_write && !txn->write) return STRATA_EREADONLY;
    return STRATA_OK;
}
/* A table: magic, its transaction, and not dropped. */
static inline int db_table_check(strata_table *t, int need_write) {
    if (!t || t->magic != TBL_MAGIC) return STRATA_EINVAL;
    int rc = db_txn_check(t->txn, need_write);
    if (rc) return rc;
    return t->dropped ? STRATA_EBADTXN : STRATA_OK;
}
/* txn.c */
void db_txn_poison(strata_txn *txn, int rc);
/* A savepoint rollback: bump every db_txn_counter of txn. */
void db_txn_counters_bump(strata_txn *txn);
/* table.c */
int  db_desc_get(strata_txn *txn, const char *name, cat_desc *d);
/* The spec and the public table flags (STRATA_MULTIMAP, _TTL, _CDC, _VECTOR,
 * _COMPRESS_*) that open a table like the one described by d. */
unsigned db_desc_spec(const cat_desc *d, strata_table_spec *spec);
/* Open (create in a write transaction) the internal bytes-keyed table name. */
int  db_internal_open(strata_txn *txn, const char *name, int create, strata_table **out);
int  db_table_open(strata_txn *txn, const char *name, const strata_table_spec *spec,
                   unsigned flags, int internal, strata_table **out);
void db_tables_free(strata_txn *txn);
int  db_tables_commit(strata_txn *txn);
int  db_key_check(const strata_table *t, const void *key, size_t len);
int  db_resolve_cmp(strata_db *db, const cat_desc *d, bt_cmp *cmp, void **ctx);
/* The B-tree comparator of a table (multimaps wrap the key comparator in mm). */
int  db_tree_cmp(strata_db *db, const cat_desc *d, mm_cmp_ctx *mm, bt_cmp *cmp, void **ctx);
/* ops.c */
void db_table_touched(strata_table *t);                /* before a write: save cursors */
int  db_mm_key(strata_table *t, strata_slice key, strata_slice val, const uint8_t **out, size_t *len);
int  db_mm_split(const uint8_t *ck, size_t len, strata_slice *key, strata_slice *val);
/* write.c: the single path for writes, keeping TTL indexes and change capture */
int  db_write(strata_table *t, strata_slice key, strata_slice val, uint64_t expiry, int op);
int  db_delete(strata_table *t, strata_slice key);      /* STRATA_OK or STRATA_NOTFOUND */
int  db_ensure_buf(uint8_t **buf, size_t *cap, size_t need);
/* volatile.c: page reuse across non-durable commits (under the writer lock) */
int  db_vset_has(void *db, pgno_t pg);
void db_vset_clear(strata_db *db);
void db_vset_add_dirty(strata_db *db, const dirty_map *dm);
/* compress.c */
int  db_compress(strata_table *t, strata_slice val, strata_slice *stored);
/* The user value of a stored value of a compressed table (copy owned by txn). */
int  db_decompress(strata_table *t, const uint8_t *data, size_t len, strata_slice *out);
void db_arena_free(strata_txn *txn);
void db_compress_free(strata_table *t);
/* ttl.c */
uint64_t db_now_ms(strata_db *db);
/* A TTL entry's expiry and user value; *live = 0 when expired. */
int  db_ttl_decode(strata_table *t, const bt_val *v, strata_slice *val, uint64_t *expiry, int *live);
int  db_ttl_index(strata_table *t, strata_table **out);
int  db_ttl_index_update(strata_table *t, strata_slice key, uint64_t old_exp, uint64_t new_exp);
int  db_ttl_expired_count(strata_table *t, uint64_t *n);
/* cdc.c */
int  db_cdc_record(strata_table *t, int op, strata_slice key, const strata_slice *val);
/* savepoint.c */
void db_savepoints_free(strata_txn *txn);
int  db_savepoints_oldest(strata_txn *txn, uint64_t *oldest);
/* history.c */
void db_state_encode(uint8_t *b, const pg_state *st);
int  db_state_decode(const uint8_t *b, size_t len, pg_state *st);
int  db_history_commit(strata_txn *txn, uint64_t *oldest);   /* record the base commit */
int  db_history_load(strata_db *db);   /* at open: window and oldest retained */
int  db_begin_read_state(strata_db *db, const pg_state *st, strata_txn **out);  /* mu held */
/* hlc.c */
uint64_t db_hlc_next_locked(strata_db *db);
/* cursor.c */
void db_cursor_free(strata_cursor *c);
int  db_cursor_save(strata_cursor *c);
/* check.c */
int  db_check(strata_txn *txn, void (*report)(void *ctx, const char *msg), void *ctx);

#endif
