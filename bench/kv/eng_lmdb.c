/* bench/kv/eng_lmdb.c - LMDB behind kv_ops.
 *
 * Default environment flags (durable commits: data fdatasync + O_DSYNC meta
 * write). Non-durable transactions switch MDB_NOSYNC on with mdb_env_set_flags
 * between transactions. The map is a 64 GiB reservation; without MDB_WRITEMAP
 * the file only grows as pages are written, so file sizes stay honest.
 * Compaction is mdb_env_copy2(MDB_CP_COMPACT) into a scratch directory.
 */
#include "bench_kv.h"

#include <errno.h>
#include <lmdb.h>
#include <stdio.h>
#include <stdlib.h>

struct kv_engine {
    MDB_env *env;
    MDB_dbi dbi;
    MDB_txn *wtxn;     /* the open write transaction, or NULL */
    int nosync;        /* MDB_NOSYNC currently set on env      */
};

struct kv_reader {
    MDB_txn *txn;
    MDB_cursor *cur;
    MDB_dbi dbi;
};

static int fail(const char *what, int rc)
{
    fprintf(stderr, "lmdb: %s: %s\n", what, mdb_strerror(rc));
    return KV_ERR;
}

static void lm_close(kv_engine *e)
{
    if (!e)
        return;
    if (e->wtxn)
        mdb_txn_abort(e->wtxn);
    if (e->env)
        mdb_env_close(e->env);
    free(e);
}

static int lm_open(const char *dir, const kv_config *cfg, kv_engine **out)
{
    (void)cfg;
    kv_engine *e = calloc(1, sizeof *e);
    MDB_txn *txn = NULL;
    int rc;
    if (!e)
        return fail("calloc", ENOMEM);
    if ((rc = mdb_env_create(&e->env)) != 0) {
        fail("mdb_env_create", rc);
        goto err;
    }
    if ((rc = mdb_env_set_mapsize(e->env, (size_t)64 << 30)) != 0) {
        fail("mdb_env_set_mapsize", rc);
        goto err;
    }
    if ((rc = mdb_env_open(e->env, dir, 0, 0644)) != 0) {
        fail("mdb_env_open", rc);
        goto err;
    }
    if ((rc = mdb_txn_begin(e->env, NULL, 0, &txn)) != 0) {
        fail("mdb_txn_begin", rc);
        goto err;
    }
    if ((rc = mdb_dbi_open(txn, NULL, 0, &e->dbi)) != 0) {
        mdb_txn_abort(txn);
        fail("mdb_dbi_open", rc);
        goto err;
    }
    if ((rc = mdb_txn_commit(txn)) != 0) {
        fail("mdb_txn_commit", rc);
        goto err;
    }
    *out = e;
    return KV_OK;
err:
    lm_close(e);
    return KV_ERR;
}

static int lm_write_begin(kv_engine *e, int durable)
{
    int rc;
    if (e->nosync != !durable) {
        if ((rc = mdb_env_set_flags(e->env, MDB_NOSYNC, !durable)) != 0)
            return fail("mdb_env_set_flags", rc);
        e->nosync = !durable;
    }
    if ((rc = mdb_txn_begin(e->env, NULL, 0, &e->wtxn)) != 0) {
        e->wtxn = NULL;
        return fail("mdb_txn_begin", rc);
    }
    return KV_OK;
}

static int lm_put(kv_engine *e, const uint8_t *k, size_t klen, const uint8_t *v, size_t vlen)
{
    MDB_val key = {klen, (void *)k}, val = {vlen, (void *)v};
    int rc = mdb_put(e->wtxn, e->dbi, &key, &val, 0);
    return rc == 0 ? KV_OK : fail("mdb_put", rc);
}

static int lm_del(kv_engine *e, const uint8_t *k, size_t klen)
{
    MDB_val key = {klen, (void *)k};
    int rc = mdb_del(e->wtxn, e->dbi, &key, NULL);
    if (rc == MDB_NOTFOUND)
        return KV_NOTFOUND;
    return rc == 0 ? KV_OK : fail("mdb_del", rc);
}

static int lm_write_commit(kv_engine *e)
{
    int rc = mdb_txn_commit(e->wtxn);   /* frees the txn even on failure */
    e->wtxn = NULL;
    return rc == 0 ? KV_OK : fail("mdb_txn_commit", rc);
}

static int lm_len(kv_engine *e, uint64_t *n)
{
    MDB_txn *txn;
    MDB_stat st;
    int rc = mdb_txn_begin(e->env, NULL, MDB_RDONLY, &txn);
    if (rc != 0)
        return fail("mdb_txn_begin(RDONLY)", rc);
    rc = mdb_stat(txn, e->dbi, &st);
    mdb_txn_abort(txn);
    if (rc != 0)
        return fail("mdb_stat", rc);
    *n = st.ms_entries;
    return KV_OK;
}

static void lm_reader_close(kv_reader *r)
{
    if (!r)
        return;
    if (r->cur)
        mdb_cursor_close(r->cur);
    if (r->txn)
        mdb_txn_abort(r->txn);
    free(r);
}

static int lm_reader_open(kv_engine *e, kv_reader **out)
{
    kv_reader *r = calloc(1, sizeof *r);
    int rc;
    if (!r)
        return fail("calloc", ENOMEM);
    r->dbi = e->dbi;
    if ((rc = mdb_txn_begin(e->env, NULL, MDB_RDONLY, &r->txn)) != 0) {
        r->txn = NULL;
        lm_reader_close(r);
        return fail("mdb_txn_begin(RDONLY)", rc);
    }
    if ((rc = mdb_cursor_open(r->txn, r->dbi, &r->cur)) != 0) {
        r->cur = NULL;
        lm_reader_close(r);
        return fail("mdb_cursor_open", rc);
    }
    *out = r;
    return KV_OK;
}

static int lm_get(kv_reader *r, const uint8_t *k, size_t klen, const uint8_t **v, size_t *vlen)
{
    MDB_val key = {klen, (void *)k}, val;
    int rc = mdb_get(r->txn, r->dbi, &key, &val);
    if (rc == MDB_NOTFOUND)
        return KV_NOTFOUND;
    if (rc != 0)
        return fail("mdb_get", rc);
    *v = val.mv_data;
    *vlen = val.mv_size;
    return KV_OK;
}

static int lm_scan(kv_reader *r, const uint8_t *k, size_t klen, unsigned n, kv_entry_fn fn,
                   void *ctx, unsigned *n_seen)
{
    MDB_val key = {klen, (void *)k}, val;
    unsigned i = 0;
    int rc = mdb_cursor_get(r->cur, &key, &val, MDB_SET_RANGE);
    while (rc == 0 && i < n) {
        int stop = fn(ctx, key.mv_data, key.mv_size, val.mv_data, val.mv_size);
        i++;
        if (stop)
            return stop;
        if (i < n)
            rc = mdb_cursor_get(r->cur, &key, &val, MDB_NEXT);
    }
    if (rc != 0 && rc != MDB_NOTFOUND)
        return fail("mdb_cursor_get", rc);
    *n_seen = i;
    return KV_OK;
}

static int lm_compact(kv_engine *e, const char *dir, const char *tmpdir, uint64_t *bytes)
{
    (void)dir;
    int rc = mdb_env_copy2(e->env, tmpdir, MDB_CP_COMPACT);
    if (rc != 0)
        return fail("mdb_env_copy2(MDB_CP_COMPACT)", rc);
    *bytes = kv_dir_bytes(tmpdir);
    return KV_OK;
}

const kv_ops kv_lmdb_ops = {
    .name = "lmdb",
    .version = KV_STR(MDB_VERSION_MAJOR) "." KV_STR(MDB_VERSION_MINOR) "." KV_STR(MDB_VERSION_PATCH),
    .open = lm_open,
    .close = lm_close,
    .write_begin = lm_write_begin,
    .put = lm_put,
    .del = lm_del,
    .write_commit = lm_write_commit,
    .len = lm_len,
    .reader_open = lm_reader_open,
    .reader_close = lm_reader_close,
    .get = lm_get,
    .scan = lm_scan,
    .compact = lm_compact,
};
