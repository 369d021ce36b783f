/* bench/features/bench_features.c - cost of the application features, as
 * ratios measured in one run (issue: TTL, merge, HLC, CDC, group commit):
 *   merge (one call) vs get + put of the same counter update
 *   TTL put vs plain put
 *   batch writes with change capture vs without
 *   group commit with 2 and 8 writer threads vs one durable transaction per batch
 * Every phase checks its results; a wrong answer exits non-zero.
 * Usage: bench_features [-n N] [--dir DIR] */
#include <inttypes.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "strata.h"

#define TRY(x) do { int rc_ = (x); if (rc_) { \
    fprintf(stderr, "bench_features: %s:%d %s: %s\n", __FILE__, __LINE__, #x, strata_strerror(rc_)); exit(1); } } while (0)

static double now_s(void) {
    struct timespec t;
    clock_gettime(CLOCK_MONOTONIC, &t);
    return (double)t.tv_sec + (double)t.tv_nsec / 1e9;
}

static char g_dir[256];
static int g_seq;

static strata_db *fresh(void) {
    char path[320];
    snprintf(path, sizeof path, "%s/f%d.db", g_dir, g_seq++);
    unlink(path);
    strata_db *db;
    TRY(strata_open(path, STRATA_CREATE, &db));
    return db;
}

static strata_slice key_of(uint64_t *buf, uint64_t i) {
    *buf = i * 0x9E3779B97F4A7C15ull;
    return (strata_slice){ buf, 8 };
}

/* counters: n updates over n/10 keys */
static double run_counters(uint64_t n, int use_merge) {
    strata_db *db = fresh();
    strata_txn *w;
    strata_table *t;
    TRY(strata_begin_write(db, &w));
    TRY(strata_table_open(w, "c", STRATA_KEY_BYTES, STRATA_CREATE, &t));
    double t0 = now_s();
    uint64_t kb, one = 1;
    for (uint64_t i = 0; i < n; i++) {
        strata_slice k = key_of(&kb, i % (n / 10));
        if (use_merge) {
            TRY(strata_merge(t, k, (strata_slice){ &one, 8 }, STRATA_MERGE_ADD_U64));
        } else {
            strata_slice v;
            uint64_t cur = 0;
            int rc = strata_get(t, k, &v);
            if (rc == STRATA_OK) memcpy(&cur, v.data, 8);
            else if (rc != STRATA_NOTFOUND) TRY(rc);
            cur++;
            TRY(strata_put(t, k, (strata_slice){ &cur, 8 }));
        }
    }
    double dt = now_s() - t0;
    strata_slice v;
    uint64_t got;
    TRY(strata_get(t, key_of(&kb, 3), &v));
    memcpy(&got, v.data, 8);
    if (got != 10) { fprintf(stderr, "counter check failed: %" PRIu64 "\n", got); exit(1); }
    TRY(strata_commit(w));
    strata_close(db);
    return dt;
}

static double run_puts(uint64_t n, int ttl) {
    strata_db *db = fresh();
    strata_txn *w;
    strata_table *t;
    strata_table_spec spec = { STRATA_KEY_BYTES, NULL };
    char val[150];
    memset(val, 'v', sizeof val);
    TRY(strata_begin_write(db, &w));
    TRY(strata_table_open_ex(w, "t", &spec, STRATA_CREATE | (ttl ? STRATA_TTL : 0), &t));
    double t0 = now_s();
    uint64_t kb;
    for (uint64_t i = 0; i < n; i++) {
        strata_slice k = key_of(&kb, i), v = { val, sizeof val };
        if (ttl) TRY(strata_put_ttl(t, k, v, 3600000));
        else TRY(strata_put(t, k, v));
    }
    TRY(strata_commit(w));
    double dt = now_s() - t0;
    TRY(strata_begin_read(db, &w));
    TRY(strata_table_open_ex(w, "t", &spec, ttl ? STRATA_TTL : 0, &t));
    uint64_t len;
    TRY(strata_len(t, &len));
    if (len != n) { fprintf(stderr, "len check failed\n"); exit(1); }
    strata_abort(w);
    strata_close(db);
    return dt;
}

/* 100 durable transactions of n/100 puts each */
static double run_batches(uint64_t n, int cdc) {
    strata_db *db = fresh();
    strata_table_spec spec = { STRATA_KEY_BYTES, NULL };
    char val[150];
    memset(val, 'v', sizeof val);
    uint64_t kb;
    double t0 = now_s();
    for (int b = 0; b < 100; b++) {
        strata_txn *w;
        strata_table *t;
        TRY(strata_begin_write(db, &w));
        TRY(strata_table_open_ex(w, "t", &spec, STRATA_CREATE | (cdc ? STRATA_CDC : 0), &t));
        for (uint64_t i = 0; i < n / 100; i++)
            TRY(strata_put(t, key_of(&kb, (uint64_t)b * (n / 100) + i), (strata_slice){ val, sizeof val }));
        TRY(strata_commit(w));
    }
    double dt = now_s() - t0;
    if (cdc) {
        strata_txn *r;
        TRY(strata_begin_read(db, &r));
        strata_table *log;
        TRY(strata_table_open(r, "__cdc:log", STRATA_KEY_BYTES, 0, &log));
        uint64_t len;
        TRY(strata_len(log, &len));
        if (len != (n / 100) * 100) { fprintf(stderr, "cdc count check failed\n"); exit(1); }
        strata_abort(r);
    }
    strata_close(db);
    return dt;
}

/* n/10 JSON-like values of ~1 KiB into a plain or compressed table: write
 * time, read-back time, file size. */
static void run_compress(uint64_t n, unsigned flag, double *wt, double *rt, uint64_t *bytes) {
    strata_db *db = fresh();
    strata_table_spec spec = { STRATA_KEY_BYTES, NULL, 0 };
    char val[1200];
    uint64_t kb, count = n / 10;
    strata_txn *w;
    strata_table *t;
    double t0 = now_s();
    TRY(strata_begin_write(db, &w));
    TRY(strata_table_open_ex(w, "c", &spec, STRATA_CREATE | flag, &t));
    for (uint64_t i = 0; i < count; i++) {
        int len = 0;
        for (int f = 0; len < 1000; f++)
            len += snprintf(val + len, sizeof val - (size_t)len, "{\"id\":%llu,\"field\":%d,\"tag\":\"t%llu\"},",
                            (unsigned long long)i, f, (unsigned long long)((i * 7 + (uint64_t)f) % 50));
        TRY(strata_put(t, key_of(&kb, i), (strata_slice){ val, (size_t)len }));
    }
    TRY(strata_commit(w));
    *wt = now_s() - t0;
    t0 = now_s();
    TRY(strata_begin_read(db, &w));
    TRY(strata_table_open_ex(w, "c", &spec, flag, &t));
    uint64_t total = 0;
    for (uint64_t i = 0; i < count; i++) {
        strata_slice v;
        TRY(strata_get(t, key_of(&kb, i), &v));
        if (v.len < 1000 || ((const char *)v.data)[0] != '{') { fprintf(stderr, "compression check failed\n"); exit(1); }
        total += v.len;
    }
    strata_abort(w);
    *rt = now_s() - t0;
    strata_info in;
    TRY(strata_db_info(db, &in));
    *bytes = in.page_count * in.page_size;
    strata_close(db);
    (void)total;
}

typedef struct gc_arg { strata_db *db; int thread, batches, per; int grouped; } gc_arg;
typedef struct gc_batch { int thread, b, per; } gc_batch;

static int apply(void *ctx, strata_txn *txn) {
    gc_batch *g = ctx;
    strata_table *t;
    int rc = strata_table_open(txn, "g", STRATA_KEY_BYTES, STRATA_CREATE, &t);
    for (int i = 0; rc == STRATA_OK && i < g->per; i++) {
        uint64_t k = (uint64_t)g->thread << 40 | (uint64_t)g->b << 20 | (uint64_t)i;
        rc = strata_put(t, (strata_slice){ &k, 8 }, (strata_slice){ "value-of-a-small-batch", 22 });
    }
    return rc;
}

static void *gc_thread(void *p) {
    gc_arg *a = p;
    for (int b = 0; b < a->batches; b++) {
        gc_batch g = { a->thread, b, a->per };
        if (a->grouped) TRY(strata_group_commit(a->db, apply, &g));
        else {
            strata_txn *w;
            TRY(strata_begin_write(a->db, &w));
            TRY(apply(&g, w));
            TRY(strata_commit(w));
        }
    }
    return NULL;
}

static double run_group(int threads, int total_batches, int grouped) {
    strata_db *db = fresh();
    pthread_t th[8];
    gc_arg args[8];
    double t0 = now_s();
    for (int i = 0; i < threads; i++) {
        args[i] = (gc_arg){ db, i, total_batches / threads, 10, grouped };
        pthread_create(&th[i], NULL, gc_thread, &args[i]);
    }
    for (int i = 0; i < threads; i++) pthread_join(th[i], NULL);
    double dt = now_s() - t0;
    strata_txn *r;
    strata_table *t;
    TRY(strata_begin_read(db, &r));
    TRY(strata_table_open(r, "g", STRATA_KEY_BYTES, 0, &t));
    uint64_t len;
    TRY(strata_len(t, &len));
    if (len != (uint64_t)(total_batches / threads) * (uint64_t)threads * 10) {
        fprintf(stderr, "group commit count check failed\n");
        exit(1);
    }
    strata_abort(r);
    strata_close(db);
    return dt;
}

int main(int argc, char **argv) {
    uint64_t n = 200000;
    const char *dir = NULL;
    for (int i = 1; i < argc; i++) {
        if (!strcmp(argv[i], "-n") && i + 1 < argc) n = strtoull(argv[++i], NULL, 10);
        else if (!strcmp(argv[i], "--dir") && i + 1 < argc) dir = argv[++i];
        else { fprintf(stderr, "usage: bench_features [-n N] [--dir DIR]\n"); return 2; }
    }
    if (n < 1000) n = 1000;
    if (dir) snprintf(g_dir, sizeof g_dir, "%s", dir);
    else {
        snprintf(g_dir, sizeof g_dir, "/tmp/strata-bench-features-XXXXXX");
        if (!mkdtemp(g_dir)) { perror("mkdtemp"); return 1; }
    }
    printf("bench_features: n=%" PRIu64 ", dir %s\n\n", n, g_dir);
    printf("%-44s %12s %12s %8s\n", "phase", "feature ms", "baseline ms", "ratio");
    double a = run_counters(n, 1), b = run_counters(n, 0);
    printf("%-44s %12.1f %12.1f %8.2f\n", "merge add vs get+put (one txn)", a * 1e3, b * 1e3, a / b);
    a = run_puts(n, 1); b = run_puts(n, 0);
    printf("%-44s %12.1f %12.1f %8.2f\n", "TTL put vs plain put (one txn)", a * 1e3, b * 1e3, a / b);
    a = run_batches(n, 1); b = run_batches(n, 0);
    printf("%-44s %12.1f %12.1f %8.2f\n", "batch writes with CDC vs without (100 txns)", a * 1e3, b * 1e3, a / b);
    for (int th = 2; th <= 8; th += 6) {
        a = run_group(th, 400, 1); b = run_group(th, 400, 0);
        char label[64];
        snprintf(label, sizeof label, "group commit, %d threads vs txn per batch", th);
        printf("%-44s %12.1f %12.1f %8.2f\n", label, a * 1e3, b * 1e3, a / b);
    }
    double pw, pr, cw, cr;
    uint64_t pb, cb;
    run_compress(n, 0, &pw, &pr, &pb);
    printf("\n%-44s %12s %12s %12s\n", "values of ~1 KiB JSON", "write ms", "read ms", "size MiB");
    printf("%-44s %12.1f %12.1f %12.1f\n", "plain", pw * 1e3, pr * 1e3, (double)pb / 1048576.0);
    unsigned kinds[2] = { STRATA_COMPRESS_LZ4, STRATA_COMPRESS_ZSTD };
    const char *kname[2] = { "lz4", "zstd" };
    for (int i = 0; i < 2; i++) {
        run_compress(n, kinds[i], &cw, &cr, &cb);
        printf("%-44s %12.1f %12.1f %12.1f  (size %.2fx, write %.2fx, read %.2fx of plain)\n", kname[i], cw * 1e3,
               cr * 1e3, (double)cb / 1048576.0, (double)cb / (double)pb, cw / pw, cr / pr);
    }
    if (!dir) {
        char cmd[320];
        snprintf(cmd, sizeof cmd, "rm -rf '%s'", g_dir);
        if (system(cmd) != 0) fprintf(stderr, "could not remove %s\n", g_dir);
    }
    return 0;
}
