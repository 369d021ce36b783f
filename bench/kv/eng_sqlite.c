/* bench/kv/eng_sqlite.c - SQLite behind kv_ops.
 *
 * One WITHOUT ROWID table kv(k BLOB PRIMARY KEY, v BLOB), journal_mode=WAL,
 * synchronous=FULL for durable transactions and OFF for non-durable ones,
 * prepared statements throughout. The page cache gets the same budget as the
 * other engines' caches (kv_config.cache_bytes). A reader is a read-only
 * connection holding a read transaction (a WAL snapshot) until it is closed;
 * closed readers go back to a small pool, as an application keeps its
 * connections, so their page caches stay warm (LMDB's and Strata's map and
 * RocksDB's block cache are shared and stay warm too). Compaction: wal_checkpoint(TRUNCATE), VACUUM, checkpoint again.
 */
#include "bench_kv.h"

#include <pthread.h>
#include <sqlite3.h>
#include <stdio.h>
#include <stdlib.h>

enum { POOL_MAX = 4 };

struct kv_engine {
    sqlite3 *db;
    pthread_mutex_t pool_mu;
    kv_reader *pool[POOL_MAX];   /* idle reader connections (under pool_mu) */
    int n_pool;
    sqlite3_stmt *ins, *del, *begin, *commit, *rollback, *count;
    int sync_full;          /* synchronous=FULL currently set */
    int in_txn;             /* a write transaction is open    */
    long long cache_kib;
    char path[4096];
};

struct kv_reader {
    kv_engine *e;
    sqlite3 *db;
    sqlite3_stmt *get, *scan;
};

static int fail(sqlite3 *db, const char *what)
{
    fprintf(stderr, "sqlite: %s: %s\n", what, db ? sqlite3_errmsg(db) : "out of memory");
    return KV_ERR;
}

static int exec(sqlite3 *db, const char *sql)
{
    char *msg = NULL;
    if (sqlite3_exec(db, sql, NULL, NULL, &msg) != SQLITE_OK) {
        fprintf(stderr, "sqlite: %s: %s\n", sql, msg ? msg : sqlite3_errmsg(db));
        sqlite3_free(msg);
        return KV_ERR;
    }
    return KV_OK;
}

/* Run a statement that returns no rows (or whose rows are ignored). */
static int step_done(sqlite3 *db, sqlite3_stmt *st, const char *what)
{
    int rc;
    while ((rc = sqlite3_step(st)) == SQLITE_ROW)
        ;
    sqlite3_reset(st);
    return rc == SQLITE_DONE ? KV_OK : fail(db, what);
}

static int prep(sqlite3 *db, const char *sql, sqlite3_stmt **st)
{
    if (sqlite3_prepare_v3(db, sql, -1, SQLITE_PREPARE_PERSISTENT, st, NULL) != SQLITE_OK)
        return fail(db, sql);
    return KV_OK;
}

static int set_cache(sqlite3 *db, long long kib)
{
    char sql[64];
    snprintf(sql, sizeof sql, "PRAGMA cache_size=-%lld", kib);
    return exec(db, sql);
}

static void reader_destroy(kv_reader *r);

static void sq_close(kv_engine *e)
{
    if (!e)
        return;
    for (int i = 0; i < e->n_pool; i++)
        reader_destroy(e->pool[i]);
    pthread_mutex_destroy(&e->pool_mu);
    if (e->in_txn)
        step_done(e->db, e->rollback, "ROLLBACK");
    sqlite3_finalize(e->ins);
    sqlite3_finalize(e->del);
    sqlite3_finalize(e->begin);
    sqlite3_finalize(e->commit);
    sqlite3_finalize(e->rollback);
    sqlite3_finalize(e->count);
    sqlite3_close(e->db);
    free(e);
}

static int sq_open(const char *dir, const kv_config *cfg, kv_engine **out)
{
    kv_engine *e = calloc(1, sizeof *e);
    if (!e)
        return fail(NULL, "calloc");
    pthread_mutex_init(&e->pool_mu, NULL);
    /* SQLite's recommended SQLITE_DEFAULT_MEMSTATUS=0, at run time: memory
     * statistics take a global mutex on every malloc, which serializes the
     * reader threads. Only possible before the library initializes (the first
     * open); later calls fail harmlessly with SQLITE_MISUSE. */
    sqlite3_config(SQLITE_CONFIG_MEMSTATUS, 0);
    snprintf(e->path, sizeof e->path, "%s/bench.sqlite", dir);
    e->cache_kib = (long long)(cfg->cache_bytes / 1024);
    if (sqlite3_open_v2(e->path, &e->db,
                        SQLITE_OPEN_READWRITE | SQLITE_OPEN_CREATE | SQLITE_OPEN_NOMUTEX,
                        NULL) != SQLITE_OK) {
        fail(e->db, "sqlite3_open_v2");
        goto err;
    }
    if (exec(e->db, "PRAGMA journal_mode=WAL") || exec(e->db, "PRAGMA synchronous=FULL") ||
        set_cache(e->db, e->cache_kib) ||
        exec(e->db, "CREATE TABLE kv(k BLOB PRIMARY KEY NOT NULL, v BLOB NOT NULL) "
                    "WITHOUT ROWID"))
        goto err;
    e->sync_full = 1;
    if (prep(e->db, "INSERT OR REPLACE INTO kv(k, v) VALUES(?1, ?2)", &e->ins) ||
        prep(e->db, "DELETE FROM kv WHERE k = ?1", &e->del) ||
        prep(e->db, "BEGIN", &e->begin) || prep(e->db, "COMMIT", &e->commit) ||
        prep(e->db, "ROLLBACK", &e->rollback) ||
        prep(e->db, "SELECT count(*) FROM kv", &e->count))
        goto err;
    *out = e;
    return KV_OK;
err:
    sq_close(e);
    return KV_ERR;
}

static int sq_write_begin(kv_engine *e, int durable)
{
    if (e->sync_full != durable) {
        if (exec(e->db, durable ? "PRAGMA synchronous=FULL" : "PRAGMA synchronous=OFF"))
            return KV_ERR;
        e->sync_full = durable;
    }
    if (step_done(e->db, e->begin, "BEGIN"))
        return KV_ERR;
    e->in_txn = 1;
    return KV_OK;
}

static int sq_put(kv_engine *e, const uint8_t *k, size_t klen, const uint8_t *v, size_t vlen)
{
    sqlite3_bind_blob(e->ins, 1, k, (int)klen, SQLITE_STATIC);
    sqlite3_bind_blob(e->ins, 2, v, (int)vlen, SQLITE_STATIC);
    return step_done(e->db, e->ins, "INSERT");
}

static int sq_del(kv_engine *e, const uint8_t *k, size_t klen)
{
    sqlite3_bind_blob(e->del, 1, k, (int)klen, SQLITE_STATIC);
    if (step_done(e->db, e->del, "DELETE"))
        return KV_ERR;
    return sqlite3_changes(e->db) == 0 ? KV_NOTFOUND : KV_OK;
}

static int sq_write_commit(kv_engine *e)
{
    if (step_done(e->db, e->commit, "COMMIT")) {
        step_done(e->db, e->rollback, "ROLLBACK");
        e->in_txn = 0;
        return KV_ERR;
    }
    e->in_txn = 0;
    return KV_OK;
}

static int sq_len(kv_engine *e, uint64_t *n)
{
    int rc = sqlite3_step(e->count);
    if (rc != SQLITE_ROW) {
        sqlite3_reset(e->count);
        return fail(e->db, "SELECT count(*)");
    }
    *n = (uint64_t)sqlite3_column_int64(e->count, 0);
    sqlite3_reset(e->count);
    return KV_OK;
}

static void reader_destroy(kv_reader *r)
{
    if (!r)
        return;
    sqlite3_finalize(r->get);
    sqlite3_finalize(r->scan);
    sqlite3_close(r->db);
    free(r);
}

static int reader_create(kv_engine *e, kv_reader **out)
{
    kv_reader *r = calloc(1, sizeof *r);
    if (!r)
        return fail(NULL, "calloc");
    r->e = e;
    if (sqlite3_open_v2(e->path, &r->db, SQLITE_OPEN_READONLY | SQLITE_OPEN_NOMUTEX, NULL) !=
        SQLITE_OK) {
        fail(r->db, "sqlite3_open_v2(READONLY)");
        goto err;
    }
    if (set_cache(r->db, e->cache_kib) ||
        prep(r->db, "SELECT v FROM kv WHERE k = ?1", &r->get) ||
        prep(r->db, "SELECT k, v FROM kv WHERE k >= ?1 ORDER BY k LIMIT ?2", &r->scan))
        goto err;
    *out = r;
    return KV_OK;
err:
    reader_destroy(r);
    return KV_ERR;
}

static void sq_reader_close(kv_reader *r)
{
    if (!r)
        return;
    kv_engine *e = r->e;
    sqlite3_reset(r->get);
    sqlite3_reset(r->scan);
    if (!sqlite3_get_autocommit(r->db) && exec(r->db, "COMMIT")) {
        reader_destroy(r);
        return;
    }
    pthread_mutex_lock(&e->pool_mu);
    if (e->n_pool < POOL_MAX) {
        e->pool[e->n_pool++] = r;
        r = NULL;
    }
    pthread_mutex_unlock(&e->pool_mu);
    reader_destroy(r);
}

static int sq_reader_open(kv_engine *e, kv_reader **out)
{
    kv_reader *r = NULL;
    pthread_mutex_lock(&e->pool_mu);
    if (e->n_pool > 0)
        r = e->pool[--e->n_pool];
    pthread_mutex_unlock(&e->pool_mu);
    if (!r && reader_create(e, &r))
        return KV_ERR;
    /* BEGIN plus a first read pins the WAL snapshot until sq_reader_close. */
    if (exec(r->db, "BEGIN") || exec(r->db, "SELECT count(*) FROM sqlite_schema")) {
        reader_destroy(r);
        return KV_ERR;
    }
    *out = r;
    return KV_OK;
}

static int sq_get(kv_reader *r, const uint8_t *k, size_t klen, const uint8_t **v, size_t *vlen)
{
    sqlite3_reset(r->get);   /* the previous value stayed valid until now */
    sqlite3_bind_blob(r->get, 1, k, (int)klen, SQLITE_STATIC);
    int rc = sqlite3_step(r->get);
    if (rc == SQLITE_DONE)
        return KV_NOTFOUND;
    if (rc != SQLITE_ROW)
        return fail(r->db, "SELECT v");
    *v = sqlite3_column_blob(r->get, 0);
    *vlen = (size_t)sqlite3_column_bytes(r->get, 0);
    return KV_OK;
}

static int sq_scan(kv_reader *r, const uint8_t *k, size_t klen, unsigned n, kv_entry_fn fn,
                   void *ctx, unsigned *n_seen)
{
    unsigned i = 0;
    int rc;
    sqlite3_bind_blob(r->scan, 1, k, (int)klen, SQLITE_STATIC);
    sqlite3_bind_int(r->scan, 2, (int)n);
    while ((rc = sqlite3_step(r->scan)) == SQLITE_ROW) {
        const uint8_t *kk = sqlite3_column_blob(r->scan, 0);
        size_t kl = (size_t)sqlite3_column_bytes(r->scan, 0);
        const uint8_t *vv = sqlite3_column_blob(r->scan, 1);
        size_t vl = (size_t)sqlite3_column_bytes(r->scan, 1);
        int stop = fn(ctx, kk, kl, vv, vl);
        i++;
        if (stop) {
            sqlite3_reset(r->scan);
            return stop;
        }
    }
    sqlite3_reset(r->scan);
    if (rc != SQLITE_DONE)
        return fail(r->db, "SELECT k, v ... LIMIT");
    *n_seen = i;
    return KV_OK;
}

static int sq_compact(kv_engine *e, const char *dir, const char *tmpdir, uint64_t *bytes)
{
    (void)tmpdir;
    if (exec(e->db, "PRAGMA wal_checkpoint(TRUNCATE)") || exec(e->db, "VACUUM") ||
        exec(e->db, "PRAGMA wal_checkpoint(TRUNCATE)"))
        return KV_ERR;
    *bytes = kv_dir_bytes(dir);
    return KV_OK;
}

const kv_ops kv_sqlite_ops = {
    .name = "sqlite",
    .version = SQLITE_VERSION,
    .open = sq_open,
    .close = sq_close,
    .write_begin = sq_write_begin,
    .put = sq_put,
    .del = sq_del,
    .write_commit = sq_write_commit,
    .len = sq_len,
    .reader_open = sq_reader_open,
    .reader_close = sq_reader_close,
    .get = sq_get,
    .scan = sq_scan,
    .compact = sq_compact,
};
