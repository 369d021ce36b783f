/* bench/kv/eng_strata.c - Strata behind kv_ops, through the public API only.
 *
 * One STRATA_KEY_BYTES table "bench" in bench.strata, default options.
 * Durable transactions commit with STRATA_DURABILITY_IMMEDIATE, the others
 * with STRATA_DURABILITY_NONE. len() is strata_len (O(1)). Readers hold a read
 * transaction, the table handle and one cursor. Compaction is strata_compact
 * (in place: pages move toward the start and the file is truncated).
 */
#include "bench_kv.h"

#include <stdio.h>
#include <stdlib.h>
#include <strata.h>

#define TABLE "bench"

struct kv_engine {
    strata_db *db;
    strata_txn *wtxn;      /* the open write transaction, or NULL */
    strata_table *wt;      /* TABLE in wtxn                       */
};

struct kv_reader {
    strata_txn *txn;
    strata_table *t;
    strata_cursor *cur;
};

static int fail(const char *what, int rc)
{
    fprintf(stderr, "strata: %s: %s (%d)\n", what, strata_strerror(rc), rc);
    return KV_ERR;
}

static void st_close(kv_engine *e)
{
    if (!e)
        return;
    strata_abort(e->wtxn);
    strata_close(e->db);
    free(e);
}

static int st_open(const char *dir, const kv_config *cfg, kv_engine **out)
{
    (void)cfg;
    char path[4096];
    strata_txn *txn = NULL;
    strata_table *t = NULL;
    int rc;
    kv_engine *e = calloc(1, sizeof *e);
    if (!e)
        return fail("calloc", STRATA_ENOMEM);
    snprintf(path, sizeof path, "%s/bench.strata", dir);
    if ((rc = strata_open_ex(path, STRATA_CREATE, NULL, &e->db)) != STRATA_OK) {
        fail("strata_open_ex", rc);
        goto err;
    }
    if ((rc = strata_begin_write(e->db, &txn)) != STRATA_OK) {
        fail("strata_begin_write", rc);
        goto err;
    }
    if ((rc = strata_table_open(txn, TABLE, STRATA_KEY_BYTES, STRATA_CREATE, &t)) != STRATA_OK) {
        strata_abort(txn);
        fail("strata_table_open(CREATE)", rc);
        goto err;
    }
    if ((rc = strata_commit(txn)) != STRATA_OK) {
        fail("strata_commit", rc);
        goto err;
    }
    *out = e;
    return KV_OK;
err:
    st_close(e);
    return KV_ERR;
}

static int st_write_begin(kv_engine *e, int durable)
{
    int rc = strata_begin_write(e->db, &e->wtxn);
    if (rc != STRATA_OK) {
        e->wtxn = NULL;
        return fail("strata_begin_write", rc);
    }
    if (!durable && (rc = strata_txn_set_durability(e->wtxn, STRATA_DURABILITY_NONE)) != STRATA_OK)
        goto err;
    if ((rc = strata_table_open(e->wtxn, TABLE, STRATA_KEY_BYTES, 0, &e->wt)) != STRATA_OK)
        goto err;
    return KV_OK;
err:
    strata_abort(e->wtxn);
    e->wtxn = NULL;
    return fail("write_begin", rc);
}

static int st_put(kv_engine *e, const uint8_t *k, size_t klen, const uint8_t *v, size_t vlen)
{
    strata_slice key = {k, klen}, val = {v, vlen};
    int rc = strata_put(e->wt, key, val);
    return rc == STRATA_OK ? KV_OK : fail("strata_put", rc);
}

static int st_del(kv_engine *e, const uint8_t *k, size_t klen)
{
    strata_slice key = {k, klen};
    int rc = strata_del(e->wt, key);
    if (rc == STRATA_NOTFOUND)
        return KV_NOTFOUND;
    return rc == STRATA_OK ? KV_OK : fail("strata_del", rc);
}

static int st_write_commit(kv_engine *e)
{
    int rc = strata_commit(e->wtxn);   /* consumes the txn even on failure */
    e->wtxn = NULL;
    e->wt = NULL;
    return rc == STRATA_OK ? KV_OK : fail("strata_commit", rc);
}

static int st_len(kv_engine *e, uint64_t *n)
{
    strata_txn *txn;
    strata_table *t;
    int rc = strata_begin_read(e->db, &txn);
    if (rc != STRATA_OK)
        return fail("strata_begin_read", rc);
    if ((rc = strata_table_open(txn, TABLE, STRATA_KEY_BYTES, 0, &t)) == STRATA_OK)
        rc = strata_len(t, n);
    strata_abort(txn);
    return rc == STRATA_OK ? KV_OK : fail("strata_len", rc);
}

static void st_reader_close(kv_reader *r)
{
    if (!r)
        return;
    strata_cursor_close(r->cur);
    strata_abort(r->txn);
    free(r);
}

static int st_reader_open(kv_engine *e, kv_reader **out)
{
    int rc;
    kv_reader *r = calloc(1, sizeof *r);
    if (!r)
        return fail("calloc", STRATA_ENOMEM);
    if ((rc = strata_begin_read(e->db, &r->txn)) != STRATA_OK) {
        r->txn = NULL;
        goto err;
    }
    if ((rc = strata_table_open(r->txn, TABLE, STRATA_KEY_BYTES, 0, &r->t)) != STRATA_OK)
        goto err;
    if ((rc = strata_cursor_open(r->t, &r->cur)) != STRATA_OK) {
        r->cur = NULL;
        goto err;
    }
    *out = r;
    return KV_OK;
err:
    st_reader_close(r);
    return fail("reader_open", rc);
}

static int st_get(kv_reader *r, const uint8_t *k, size_t klen, const uint8_t **v, size_t *vlen)
{
    strata_slice key = {k, klen}, val;
    int rc = strata_get(r->t, key, &val);
    if (rc == STRATA_NOTFOUND)
        return KV_NOTFOUND;
    if (rc != STRATA_OK)
        return fail("strata_get", rc);
    *v = val.data;
    *vlen = val.len;
    return KV_OK;
}

static int st_scan(kv_reader *r, const uint8_t *k, size_t klen, unsigned n, kv_entry_fn fn,
                   void *ctx, unsigned *n_seen)
{
    strata_slice key = {k, klen}, ek, ev;
    unsigned i = 0;
    int rc = strata_cursor_seek(r->cur, key);
    while (rc == STRATA_OK && i < n) {
        if ((rc = strata_cursor_get(r->cur, &ek, &ev)) != STRATA_OK)
            break;
        int stop = fn(ctx, ek.data, ek.len, ev.data, ev.len);
        i++;
        if (stop)
            return stop;
        if (i < n)
            rc = strata_cursor_next(r->cur);
    }
    if (rc != STRATA_OK && rc != STRATA_NOTFOUND)
        return fail("strata_cursor", rc);
    *n_seen = i;
    return KV_OK;
}

static int st_compact(kv_engine *e, const char *dir, const char *tmpdir, uint64_t *bytes) {
    (void)dir;
    (void)tmpdir;
    uint64_t before, after;
    int rc = strata_compact(e->db, &before, &after);
    if (rc != STRATA_OK) {
        fprintf(stderr, "strata: compact: %s\n", strata_strerror(rc));
        return -1;
    }
    *bytes = after;
    return 0;
}

const kv_ops kv_strata_ops = {
    .name = "strata",
    .version = KV_STR(STRATA_VERSION_MAJOR) "." KV_STR(STRATA_VERSION_MINOR) "." KV_STR(
        STRATA_VERSION_PATCH),
    .open = st_open,
    .close = st_close,
    .write_begin = st_write_begin,
    .put = st_put,
    .del = st_del,
    .write_commit = st_write_commit,
    .len = st_len,
    .reader_open = st_reader_open,
    .reader_close = st_reader_close,
    .get = st_get,
    .scan = st_scan,
    .compact = st_compact,
};
