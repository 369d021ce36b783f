/* bench/kv/bench_kv.h - the engine interface and workload helpers of bench_kv.
 *
 * bench_kv runs redb's key-value benchmark (benches/lmdb_benchmark.rs: 24-byte
 * random keys, 150-byte values) on Strata and its peers, one engine after
 * another in one process. main.c drives the phases; each eng_*.c adapts one
 * engine to kv_ops; workload.c generates and checks the data.
 *
 * Invariants:
 *  (1) Key i is a pure function of (seed, i); its first 8 bytes are a bijection
 *      of i, so keys are unique by construction.
 *  (2) The value of a key is a pure function of the key bytes, so every read,
 *      point or range, can be checked without remembering what was written.
 *  (3) Engines never print on success; on failure they print one line naming
 *      the engine, the call and the engine's own error text, and return KV_ERR.
 */
#ifndef BENCH_KV_H
#define BENCH_KV_H

#include <stddef.h>
#include <stdint.h>

enum { KV_KEY_LEN = 24, KV_VAL_LEN = 150 };

/* Engine return codes. */
enum { KV_OK = 0, KV_NOTFOUND = 1, KV_ERR = -1 };

typedef struct kv_config {
    uint64_t n;           /* elements of the bulk load                     */
    uint64_t cache_bytes; /* page/block cache budget for engines with one  */
} kv_config;

typedef struct kv_engine kv_engine;   /* one open database (engine-private) */
typedef struct kv_reader kv_reader;   /* one read snapshot, used by one thread */

/* Called by scan for each entry in key order; non-zero stops the scan and is
 * returned by it. Slices are valid during the call only. */
typedef int (*kv_entry_fn)(void *ctx, const uint8_t *k, size_t klen, const uint8_t *v,
                           size_t vlen);

/* One engine. Write calls are made by the driver thread only, one write
 * transaction at a time; a reader is used by the thread that opened it. */
typedef struct kv_ops {
    const char *name;
    const char *version;   /* of the headers it was built with */
    /* Create a fresh database in the empty directory dir. */
    int (*open)(const char *dir, const kv_config *cfg, kv_engine **out);
    void (*close)(kv_engine *e);                       /* NULL-safe */
    /* Begin a write transaction; durable = 0: its commit need not reach disk
     * (no fsync), durable = 1: commit returns after the data is durable. */
    int (*write_begin)(kv_engine *e, int durable);
    int (*put)(kv_engine *e, const uint8_t *k, size_t klen, const uint8_t *v, size_t vlen);
    /* KV_OK, KV_NOTFOUND (only if the engine can tell cheaply), KV_ERR. */
    int (*del)(kv_engine *e, const uint8_t *k, size_t klen);
    int (*write_commit)(kv_engine *e);
    /* Exact number of entries in the latest commit. */
    int (*len)(kv_engine *e, uint64_t *n);
    int (*reader_open)(kv_engine *e, kv_reader **out);
    void (*reader_close)(kv_reader *r);                /* NULL-safe */
    /* KV_OK with *v valid until the next call on r, KV_NOTFOUND, or KV_ERR. */
    int (*get)(kv_reader *r, const uint8_t *k, size_t klen, const uint8_t **v, size_t *vlen);
    /* Visit up to n entries starting at the first key >= k; *n_seen gets the count. */
    int (*scan)(kv_reader *r, const uint8_t *k, size_t klen, unsigned n, kv_entry_fn fn,
                void *ctx, unsigned *n_seen);
    /* Compact into the smallest form the engine offers and set *bytes to the
     * resulting size on disk. NULL when the engine has no compaction. tmpdir is
     * an empty directory the engine may use for a compacted copy. */
    int (*compact)(kv_engine *e, const char *dir, const char *tmpdir, uint64_t *bytes);
} kv_ops;

#ifdef HAVE_STRATA
extern const kv_ops kv_strata_ops;
#endif
#ifdef HAVE_LMDB
extern const kv_ops kv_lmdb_ops;
#endif
#ifdef HAVE_SQLITE
extern const kv_ops kv_sqlite_ops;
#endif
#ifdef HAVE_ROCKSDB
extern const kv_ops kv_rocksdb_ops;
#endif

/* workload.c */
void kv_key(uint64_t seed, uint64_t i, uint8_t key[KV_KEY_LEN]);
void kv_value(const uint8_t key[KV_KEY_LEN], uint8_t val[KV_VAL_LEN]);
/* 1 if v is the value of key k (both lengths checked), else 0. */
int kv_value_ok(const uint8_t *k, size_t klen, const uint8_t *v, size_t vlen);
uint64_t kv_rand_next(uint64_t *state);     /* splitmix64 step */
double kv_now_ms(void);                     /* monotonic clock */
/* Total st_size of the regular files under path (recursive); UINT64_MAX on error. */
uint64_t kv_dir_bytes(const char *path);
/* Remove path and everything under it; 0 or -1. */
int kv_rm_rf(const char *path);
/* Median (q = 0.5) or another quantile of v[0..n), which it sorts. */
double kv_quantile(double *v, size_t n, double q);

#define KV_STR_(x) #x
#define KV_STR(x) KV_STR_(x)

#endif /* BENCH_KV_H */
