/* bench/kv/eng_rocksdb.c - RocksDB (C API) behind kv_ops.
 *
 * Default options plus create_if_missing and an LRU block cache of
 * kv_config.cache_bytes (redb's benchmark gives RocksDB a 4 GiB block cache).
 * A transaction is one WriteBatch applied by rocksdb_write, with sync = 1 for
 * durable transactions (the WAL is fsync'd) and sync = 0 otherwise. A delete
 * cannot tell whether the key existed; the driver checks len() afterwards.
 * Readers hold a snapshot and one iterator; len() iterates (exact, not the
 * "rocksdb.estimate-num-keys" estimate). Compaction: CompactRange(all).
 */
#include "bench_kv.h"

#include <rocksdb/c.h>
#include <stdio.h>
#include <stdlib.h>

#ifndef KV_ROCKSDB_VERSION   /* set by meson from the pkg-config version */
#define KV_ROCKSDB_VERSION "unknown"
#endif

struct kv_engine {
    rocksdb_t *db;
    rocksdb_options_t *opts;
    rocksdb_block_based_table_options_t *bbto;
    rocksdb_cache_t *cache;
    rocksdb_writeoptions_t *wo_sync, *wo_nosync;
    rocksdb_readoptions_t *ro;
    rocksdb_writebatch_t *batch;   /* the open transaction's writes */
    int durable;
};

struct kv_reader {
    rocksdb_t *db;
    const rocksdb_snapshot_t *snap;
    rocksdb_readoptions_t *ro;
    rocksdb_iterator_t *it;
    rocksdb_pinnableslice_t *pin;  /* the last value returned by get */
};

static int fail(const char *what, char *err)
{
    fprintf(stderr, "rocksdb: %s: %s\n", what, err ? err : "failed");
    rocksdb_free(err);
    return KV_ERR;
}

static void rk_close(kv_engine *e)
{
    if (!e)
        return;
    if (e->db)
        rocksdb_close(e->db);
    if (e->batch)
        rocksdb_writebatch_destroy(e->batch);
    if (e->ro)
        rocksdb_readoptions_destroy(e->ro);
    if (e->wo_sync)
        rocksdb_writeoptions_destroy(e->wo_sync);
    if (e->wo_nosync)
        rocksdb_writeoptions_destroy(e->wo_nosync);
    if (e->opts)
        rocksdb_options_destroy(e->opts);
    if (e->bbto)
        rocksdb_block_based_options_destroy(e->bbto);
    if (e->cache)
        rocksdb_cache_destroy(e->cache);
    free(e);
}

static int rk_open(const char *dir, const kv_config *cfg, kv_engine **out)
{
    char *err = NULL;
    kv_engine *e = calloc(1, sizeof *e);
    if (!e)
        return fail("calloc", NULL);
    e->opts = rocksdb_options_create();
    e->bbto = rocksdb_block_based_options_create();
    e->cache = rocksdb_cache_create_lru((size_t)cfg->cache_bytes);
    e->wo_sync = rocksdb_writeoptions_create();
    e->wo_nosync = rocksdb_writeoptions_create();
    e->ro = rocksdb_readoptions_create();
    e->batch = rocksdb_writebatch_create();
    if (!e->opts || !e->bbto || !e->cache || !e->wo_sync || !e->wo_nosync || !e->ro ||
        !e->batch) {
        rk_close(e);
        return fail("create options", NULL);
    }
    rocksdb_options_set_create_if_missing(e->opts, 1);
    rocksdb_block_based_options_set_block_cache(e->bbto, e->cache);
    rocksdb_options_set_block_based_table_factory(e->opts, e->bbto);
    rocksdb_writeoptions_set_sync(e->wo_sync, 1);
    rocksdb_writeoptions_set_sync(e->wo_nosync, 0);
    e->db = rocksdb_open(e->opts, dir, &err);
    if (err) {
        e->db = NULL;
        rk_close(e);
        return fail("rocksdb_open", err);
    }
    *out = e;
    return KV_OK;
}

static int rk_write_begin(kv_engine *e, int durable)
{
    rocksdb_writebatch_clear(e->batch);
    e->durable = durable;
    return KV_OK;
}

static int rk_put(kv_engine *e, const uint8_t *k, size_t klen, const uint8_t *v, size_t vlen)
{
    rocksdb_writebatch_put(e->batch, (const char *)k, klen, (const char *)v, vlen);
    return KV_OK;
}

static int rk_del(kv_engine *e, const uint8_t *k, size_t klen)
{
    rocksdb_writebatch_delete(e->batch, (const char *)k, klen);
    return KV_OK;
}

static int rk_write_commit(kv_engine *e)
{
    char *err = NULL;
    rocksdb_write(e->db, e->durable ? e->wo_sync : e->wo_nosync, e->batch, &err);
    rocksdb_writebatch_clear(e->batch);
    return err ? fail("rocksdb_write", err) : KV_OK;
}

static int rk_len(kv_engine *e, uint64_t *n)
{
    char *err = NULL;
    uint64_t count = 0;
    rocksdb_iterator_t *it = rocksdb_create_iterator(e->db, e->ro);
    for (rocksdb_iter_seek_to_first(it); rocksdb_iter_valid(it); rocksdb_iter_next(it))
        count++;
    rocksdb_iter_get_error(it, &err);
    rocksdb_iter_destroy(it);
    if (err)
        return fail("iterate", err);
    *n = count;
    return KV_OK;
}

static void rk_reader_close(kv_reader *r)
{
    if (!r)
        return;
    if (r->pin)
        rocksdb_pinnableslice_destroy(r->pin);
    if (r->it)
        rocksdb_iter_destroy(r->it);
    if (r->ro)
        rocksdb_readoptions_destroy(r->ro);
    if (r->snap)
        rocksdb_release_snapshot(r->db, r->snap);
    free(r);
}

static int rk_reader_open(kv_engine *e, kv_reader **out)
{
    kv_reader *r = calloc(1, sizeof *r);
    if (!r)
        return fail("calloc", NULL);
    r->db = e->db;
    r->snap = rocksdb_create_snapshot(e->db);
    r->ro = rocksdb_readoptions_create();
    if (!r->snap || !r->ro) {
        rk_reader_close(r);
        return fail("snapshot", NULL);
    }
    rocksdb_readoptions_set_snapshot(r->ro, r->snap);
    r->it = rocksdb_create_iterator(e->db, r->ro);
    if (!r->it) {
        rk_reader_close(r);
        return fail("rocksdb_create_iterator", NULL);
    }
    *out = r;
    return KV_OK;
}

static int rk_get(kv_reader *r, const uint8_t *k, size_t klen, const uint8_t **v, size_t *vlen)
{
    char *err = NULL;
    if (r->pin) {
        rocksdb_pinnableslice_destroy(r->pin);
        r->pin = NULL;
    }
    r->pin = rocksdb_get_pinned(r->db, r->ro, (const char *)k, klen, &err);
    if (err)
        return fail("rocksdb_get_pinned", err);
    if (!r->pin)
        return KV_NOTFOUND;
    *v = (const uint8_t *)rocksdb_pinnableslice_value(r->pin, vlen);
    return KV_OK;
}

static int rk_scan(kv_reader *r, const uint8_t *k, size_t klen, unsigned n, kv_entry_fn fn,
                   void *ctx, unsigned *n_seen)
{
    char *err = NULL;
    unsigned i = 0;
    for (rocksdb_iter_seek(r->it, (const char *)k, klen); i < n && rocksdb_iter_valid(r->it);
         rocksdb_iter_next(r->it)) {
        size_t kl, vl;
        const char *kk = rocksdb_iter_key(r->it, &kl);
        const char *vv = rocksdb_iter_value(r->it, &vl);
        int stop = fn(ctx, (const uint8_t *)kk, kl, (const uint8_t *)vv, vl);
        i++;
        if (stop)
            return stop;
        if (i == n)
            break;   /* do not step past the last entry we need */
    }
    rocksdb_iter_get_error(r->it, &err);
    if (err)
        return fail("iterator", err);
    *n_seen = i;
    return KV_OK;
}

static int rk_compact(kv_engine *e, const char *dir, const char *tmpdir, uint64_t *bytes)
{
    (void)tmpdir;
    rocksdb_compact_range(e->db, NULL, 0, NULL, 0);
    *bytes = kv_dir_bytes(dir);
    return KV_OK;
}

const kv_ops kv_rocksdb_ops = {
    .name = "rocksdb",
    .version = KV_ROCKSDB_VERSION,
    .open = rk_open,
    .close = rk_close,
    .write_begin = rk_write_begin,
    .put = rk_put,
    .del = rk_del,
    .write_commit = rk_write_commit,
    .len = rk_len,
    .reader_open = rk_reader_open,
    .reader_close = rk_reader_close,
    .get = rk_get,
    .scan = rk_scan,
    .compact = rk_compact,
};
