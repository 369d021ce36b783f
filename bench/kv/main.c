/* bench/kv/main.c - the bench_kv driver: options, phases, checks, report.
 *
 * Runs redb's key-value benchmark (benches/lmdb_benchmark.rs) on each selected
 * engine in turn, each in a fresh directory under one run directory, and
 * prints one table per section (rows: phases; columns: engines) with the ratio
 * to LMDB, plus an optional CSV file.
 *
 * Invariants:
 *  (1) Every engine sees the same keys in the same order: bulk keys [0, n),
 *      then 1,000 individual, 100 x 1,000 batch and 1,000 no-sync keys.
 *  (2) Every read is checked: a point read must return the key's value; a range
 *      must return exactly the next entries of the sorted key set (keys and
 *      values); len() must be exact. Any mismatch fails the engine, which makes
 *      the program exit 1 after the remaining engines ran.
 *  (3) The raw fsync baseline is measured in each engine's directory just
 *      before that engine runs, so it shares the engine's conditions.
 *  (4) Only measured numbers are printed; a missing one prints as "error" (the
 *      engine failed) or "n/a" (the engine lacks the feature).
 */
#include "bench_kv.h"

#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/utsname.h>
#include <sys/wait.h>
#include <unistd.h>

enum { N_INDIVIDUAL = 1000, N_BATCHES = 100, BATCH_SIZE = 1000, N_NOSYNC = 1000,
       SCAN_LEN = 10, N_READ_THREADS = 2, FSYNC_REPS = 200, MAX_ENGINES = 8,
       MAX_ROUNDS = 15 };

/* Result rows, in report order. */
enum { R_BULK, R_INDIVIDUAL, R_BATCH, R_NOSYNC, R_LEN, R_READ1, R_READ2, R_RANGE1, R_RANGE2,
       R_READ_MT, R_REMOVE, R_SIZE_RAW, R_SIZE_COMPACT, R_FSYNC_P50, R_COMMIT_P50,
       R_COMMIT_P99, R_NOSYNC_P50, N_ROWS };
enum { SEC_TIME, SEC_SIZE, SEC_LAT };

typedef struct row_def {
    const char *name;
    int section;
    int no_ratio;     /* a property of the machine, not of the engine */
} row_def;

static const row_def g_rows[N_ROWS] = {
    [R_BULK] = {"bulk load", SEC_TIME, 0},
    [R_INDIVIDUAL] = {"individual writes", SEC_TIME, 0},
    [R_BATCH] = {"batch writes", SEC_TIME, 0},
    [R_NOSYNC] = {"nosync writes", SEC_TIME, 0},
    [R_LEN] = {"len()", SEC_TIME, 0},
    [R_READ1] = {"random reads", SEC_TIME, 0},
    [R_READ2] = {"random reads (2nd)", SEC_TIME, 0},
    [R_RANGE1] = {"random range reads", SEC_TIME, 0},
    [R_RANGE2] = {"random range reads (2nd)", SEC_TIME, 0},
    [R_READ_MT] = {"random reads (2 threads)", SEC_TIME, 0},
    [R_REMOVE] = {"removals", SEC_TIME, 0},
    [R_SIZE_RAW] = {"size uncompacted", SEC_SIZE, 0},
    [R_SIZE_COMPACT] = {"size compacted", SEC_SIZE, 0},
    [R_FSYNC_P50] = {"raw fsync p50", SEC_LAT, 1},
    [R_COMMIT_P50] = {"individual write p50", SEC_LAT, 0},
    [R_COMMIT_P99] = {"individual write p99", SEC_LAT, 0},
    [R_NOSYNC_P50] = {"nosync write p50", SEC_LAT, 0},
};

enum { CELL_NONE, CELL_OK, CELL_NA, CELL_ERR };
typedef struct cell {
    int state;
    double v;      /* ms or bytes */
} cell;

/* The workload, shared read-only by all engines once built. */
typedef struct sorted_key {
    uint8_t key[KV_KEY_LEN];
    uint32_t idx;
} sorted_key;

typedef struct workload {
    uint64_t seed, n, total;     /* total = n + every phase's inserts         */
    uint64_t n_ranges;
    uint32_t *perm;              /* a random permutation of [0, n)            */
    sorted_key *sorted;          /* all total keys in memcmp order            */
    uint32_t *rank;              /* rank[i] = position of bulk key i in sorted */
} workload;

typedef struct engine_run {
    const kv_ops *ops;
    cell cells[N_ROWS];                   /* this round; at the end: medians */
    double samples[N_ROWS][MAX_ROUNDS];   /* every round's value of each cell  */
    int n_samples[N_ROWS];
    int failed;
} engine_run;

static const kv_ops *const g_all_engines[] = {
#ifdef HAVE_STRATA
    &kv_strata_ops,
#endif
#ifdef HAVE_LMDB
    &kv_lmdb_ops,
#endif
#ifdef HAVE_SQLITE
    &kv_sqlite_ops,
#endif
#ifdef HAVE_ROCKSDB
    &kv_rocksdb_ops,
#endif
    NULL
};

static char g_rundir[4096];
static int g_keep;

/* ------------------------------------------------------------------------ */
/* Small helpers                                                             */

static void die(const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    fputs("bench_kv: ", stderr);
    vfprintf(stderr, fmt, ap);
    fputc('\n', stderr);
    va_end(ap);
    exit(2);
}

static void *xmalloc(size_t n)
{
    void *p = malloc(n ? n : 1);
    if (!p)
        die("out of memory (%zu bytes)", n);
    return p;
}

static void cleanup_rundir(void)
{
    if (g_rundir[0] && !g_keep)
        kv_rm_rf(g_rundir);
}

/* SIGINT/SIGTERM: remove the run directory (gigabytes at -n 5000000) and exit.
 * Only async-signal-safe calls: fork, execv, waitpid, _exit. */
static void on_signal(int sig)
{
    if (g_rundir[0] && !g_keep) {
        pid_t pid = fork();
        if (pid == 0) {
            char *const argv[] = {"rm", "-rf", "--", g_rundir, NULL};
            execv("/bin/rm", argv);
            _exit(127);
        }
        if (pid > 0)
            waitpid(pid, NULL, 0);
    }
    _exit(128 + sig);
}

static void set_cell(engine_run *er, int row, double v)
{
    er->cells[row].state = CELL_OK;
    er->cells[row].v = v;
    fprintf(stderr, "  %-8s %-26s %12.3f %s\n", er->ops->name, g_rows[row].name,
            g_rows[row].section == SEC_SIZE ? v / (1024.0 * 1024.0) : v,
            g_rows[row].section == SEC_SIZE ? "MiB" : "ms");
}

/* Report a failed check of engine `name`, e.g. a wrong value. */
static int check_fail(const char *name, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    fprintf(stderr, "bench_kv: %s: CHECK FAILED: ", name);
    vfprintf(stderr, fmt, ap);
    fputc('\n', stderr);
    va_end(ap);
    return KV_ERR;
}

static void hex24(const uint8_t *k, char out[2 * KV_KEY_LEN + 1])
{
    for (int i = 0; i < KV_KEY_LEN; i++)
        snprintf(out + 2 * i, 3, "%02x", k[i]);
}

/* ------------------------------------------------------------------------ */
/* Workload setup (not timed)                                                */

static int cmp_sorted(const void *a, const void *b)
{
    return memcmp(((const sorted_key *)a)->key, ((const sorted_key *)b)->key, KV_KEY_LEN);
}

static void workload_build(workload *w, uint64_t seed, uint64_t n)
{
    uint64_t rng = seed ^ UINT64_C(0x5851f42d4c957f2d);
    w->seed = seed;
    w->n = n;
    w->total = n + N_INDIVIDUAL + (uint64_t)N_BATCHES * BATCH_SIZE + N_NOSYNC;
    w->n_ranges = n / 2 ? n / 2 : 1;
    w->perm = xmalloc(n * sizeof *w->perm);
    for (uint64_t i = 0; i < n; i++)
        w->perm[i] = (uint32_t)i;
    for (uint64_t i = n; i > 1; i--) {        /* Fisher-Yates */
        uint64_t j = kv_rand_next(&rng) % i;
        uint32_t t = w->perm[i - 1];
        w->perm[i - 1] = w->perm[j];
        w->perm[j] = t;
    }
    w->sorted = xmalloc(w->total * sizeof *w->sorted);
    for (uint64_t i = 0; i < w->total; i++) {
        kv_key(seed, i, w->sorted[i].key);
        w->sorted[i].idx = (uint32_t)i;
    }
    qsort(w->sorted, w->total, sizeof *w->sorted, cmp_sorted);
    w->rank = xmalloc(n * sizeof *w->rank);
    for (uint64_t p = 0; p < w->total; p++)
        if (w->sorted[p].idx < n)
            w->rank[w->sorted[p].idx] = (uint32_t)p;
}

static void workload_free(workload *w)
{
    free(w->perm);
    free(w->sorted);
    free(w->rank);
}

/* ------------------------------------------------------------------------ */
/* Raw fsync baseline                                                        */

/* Median of FSYNC_REPS (4 KiB pwrite at offset 0 + fdatasync) in dir, in ms;
 * a negative value if the file could not be written. */
static double fsync_baseline(const char *dir)
{
    char path[4400];
    uint8_t buf[4096];
    double t[FSYNC_REPS];
    snprintf(path, sizeof path, "%s/fsync.probe", dir);
    int fd = open(path, O_RDWR | O_CREAT | O_TRUNC, 0644);
    if (fd < 0)
        return -1.0;
    memset(buf, 0xa5, sizeof buf);
    if (pwrite(fd, buf, sizeof buf, 0) != (ssize_t)sizeof buf || fsync(fd) != 0)
        goto err;
    for (int i = 0; i < FSYNC_REPS; i++) {
        buf[0] = (uint8_t)i;
        double t0 = kv_now_ms();
        if (pwrite(fd, buf, sizeof buf, 0) != (ssize_t)sizeof buf || fdatasync(fd) != 0)
            goto err;
        t[i] = kv_now_ms() - t0;
    }
    close(fd);
    unlink(path);
    return kv_quantile(t, FSYNC_REPS, 0.5);
err:
    fprintf(stderr, "bench_kv: fsync baseline: %s\n", strerror(errno));
    close(fd);
    unlink(path);
    return -1.0;
}

/* ------------------------------------------------------------------------ */
/* Write phases                                                              */

/* Insert keys [first, first + count) in one transaction. */
static int txn_insert(const kv_ops *ops, kv_engine *e, const workload *w, uint64_t first,
                      uint64_t count, int durable)
{
    uint8_t k[KV_KEY_LEN], v[KV_VAL_LEN];
    if (ops->write_begin(e, durable))
        return KV_ERR;
    for (uint64_t i = first; i < first + count; i++) {
        kv_key(w->seed, i, k);
        kv_value(k, v);
        if (ops->put(e, k, KV_KEY_LEN, v, KV_VAL_LEN))
            return KV_ERR;   /* the engine's close() aborts the open txn */
    }
    return ops->write_commit(e);
}

/* n_txn transactions of per_txn inserts from key `first`; per-transaction
 * latencies go to lat (n_txn entries) when it is not NULL. Returns total ms
 * through *ms. */
static int write_phase(const kv_ops *ops, kv_engine *e, const workload *w, uint64_t first,
                       int n_txn, int per_txn, int durable, double *lat, double *ms)
{
    double t0 = kv_now_ms();
    for (int i = 0; i < n_txn; i++) {
        double t1 = kv_now_ms();
        if (txn_insert(ops, e, w, first + (uint64_t)i * (uint64_t)per_txn, (uint64_t)per_txn,
                       durable))
            return KV_ERR;
        if (lat)
            lat[i] = kv_now_ms() - t1;
    }
    *ms = kv_now_ms() - t0;
    return KV_OK;
}

static int run_writes(engine_run *er, kv_engine *e, const workload *w)
{
    const kv_ops *ops = er->ops;
    double ms, lat[N_INDIVIDUAL], lat_ns[N_NOSYNC];
    uint64_t next = w->n;

    double t0 = kv_now_ms();
    if (txn_insert(ops, e, w, 0, w->n, 1))
        return KV_ERR;
    set_cell(er, R_BULK, kv_now_ms() - t0);

    if (write_phase(ops, e, w, next, N_INDIVIDUAL, 1, 1, lat, &ms))
        return KV_ERR;
    set_cell(er, R_INDIVIDUAL, ms);
    set_cell(er, R_COMMIT_P50, kv_quantile(lat, N_INDIVIDUAL, 0.5));
    set_cell(er, R_COMMIT_P99, kv_quantile(lat, N_INDIVIDUAL, 0.99));
    next += N_INDIVIDUAL;

    if (write_phase(ops, e, w, next, N_BATCHES, BATCH_SIZE, 1, NULL, &ms))
        return KV_ERR;
    set_cell(er, R_BATCH, ms);
    next += (uint64_t)N_BATCHES * BATCH_SIZE;

    if (write_phase(ops, e, w, next, N_NOSYNC, 1, 0, lat_ns, &ms))
        return KV_ERR;
    set_cell(er, R_NOSYNC, ms);
    set_cell(er, R_NOSYNC_P50, kv_quantile(lat_ns, N_NOSYNC, 0.5));
    return KV_OK;
}

/* ------------------------------------------------------------------------ */
/* Read phases                                                               */

static int check_len(engine_run *er, kv_engine *e, uint64_t want, int row)
{
    uint64_t got = 0;
    double t0 = kv_now_ms();
    if (er->ops->len(e, &got))
        return KV_ERR;
    double ms = kv_now_ms() - t0;
    if (got != want)
        return check_fail(er->ops->name, "len() = %llu, expected %llu", (unsigned long long)got,
                          (unsigned long long)want);
    if (row >= 0)
        set_cell(er, row, ms);
    return KV_OK;
}

/* Point-read perm[from, to) with one reader; every value is checked. */
static int read_keys(const kv_ops *ops, kv_engine *e, const workload *w, uint64_t from,
                     uint64_t to)
{
    kv_reader *r = NULL;
    uint8_t k[KV_KEY_LEN];
    char hex[2 * KV_KEY_LEN + 1];
    int rc = ops->reader_open(e, &r);
    for (uint64_t j = from; rc == KV_OK && j < to; j++) {
        const uint8_t *v;
        size_t vlen;
        kv_key(w->seed, w->perm[j], k);
        rc = ops->get(r, k, KV_KEY_LEN, &v, &vlen);
        if (rc == KV_NOTFOUND || (rc == KV_OK && !kv_value_ok(k, KV_KEY_LEN, v, vlen))) {
            hex24(k, hex);
            rc = check_fail(ops->name, "key #%u (%s): %s", (unsigned)w->perm[j], hex,
                            rc == KV_NOTFOUND ? "missing" : "wrong value");
        }
    }
    ops->reader_close(r);
    return rc;
}

typedef struct thread_arg {
    const kv_ops *ops;
    kv_engine *e;
    const workload *w;
    uint64_t from, to;
    int rc;
} thread_arg;

static void *read_thread(void *p)
{
    thread_arg *a = p;
    a->rc = read_keys(a->ops, a->e, a->w, a->from, a->to);
    return NULL;
}

static int read_threads(engine_run *er, kv_engine *e, const workload *w)
{
    pthread_t th[N_READ_THREADS];
    thread_arg arg[N_READ_THREADS];
    int rc = KV_OK, started = 0;
    double t0 = kv_now_ms();
    for (int i = 0; i < N_READ_THREADS; i++) {
        arg[i] = (thread_arg){er->ops, e, w, w->n * (uint64_t)i / N_READ_THREADS,
                              w->n * (uint64_t)(i + 1) / N_READ_THREADS, KV_OK};
        if (pthread_create(&th[i], NULL, read_thread, &arg[i]) != 0) {
            rc = check_fail(er->ops->name, "pthread_create failed");
            break;
        }
        started++;
    }
    for (int i = 0; i < started; i++) {
        pthread_join(th[i], NULL);
        if (arg[i].rc)
            rc = KV_ERR;
    }
    if (rc == KV_OK)
        set_cell(er, R_READ_MT, kv_now_ms() - t0);
    return rc;
}

typedef struct scan_ctx {
    const workload *w;
    uint64_t pos;        /* position in w->sorted of the next expected entry */
    const char *name;
} scan_ctx;

static int scan_entry(void *p, const uint8_t *k, size_t klen, const uint8_t *v, size_t vlen)
{
    scan_ctx *c = p;
    char hex[2 * KV_KEY_LEN + 1];
    if (c->pos >= c->w->total || klen != KV_KEY_LEN ||
        memcmp(k, c->w->sorted[c->pos].key, KV_KEY_LEN) != 0) {
        hex24(c->w->sorted[c->pos < c->w->total ? c->pos : 0].key, hex);
        return check_fail(c->name, "range read: unexpected key at sorted position %llu "
                          "(expected %s)", (unsigned long long)c->pos, hex);
    }
    if (!kv_value_ok(k, klen, v, vlen)) {
        hex24(k, hex);
        return check_fail(c->name, "range read: wrong value for key %s", hex);
    }
    c->pos++;
    return KV_OK;
}

/* n_ranges scans of SCAN_LEN entries, each from a random existing bulk key. */
static int range_reads(const kv_ops *ops, kv_engine *e, const workload *w)
{
    kv_reader *r = NULL;
    uint8_t k[KV_KEY_LEN];
    int rc = ops->reader_open(e, &r);
    for (uint64_t j = 0; rc == KV_OK && j < w->n_ranges; j++) {
        uint32_t idx = w->perm[(j * 2 + 1) % w->n];
        uint64_t start = w->rank[idx];
        uint64_t want = w->total - start < SCAN_LEN ? w->total - start : SCAN_LEN;
        scan_ctx c = {w, start, ops->name};
        unsigned seen = 0;
        kv_key(w->seed, idx, k);
        rc = ops->scan(r, k, KV_KEY_LEN, SCAN_LEN, scan_entry, &c, &seen);
        if (rc == KV_OK && seen != want)
            rc = check_fail(ops->name, "range read from key #%u: %u entries, expected %llu",
                            (unsigned)idx, seen, (unsigned long long)want);
    }
    ops->reader_close(r);
    return rc;
}

static int run_reads(engine_run *er, kv_engine *e, const workload *w)
{
    const kv_ops *ops = er->ops;
    double t0;
    if (check_len(er, e, w->total, R_LEN))
        return KV_ERR;
    for (int rep = 0; rep < 2; rep++) {
        t0 = kv_now_ms();
        if (read_keys(ops, e, w, 0, w->n))
            return KV_ERR;
        set_cell(er, rep ? R_READ2 : R_READ1, kv_now_ms() - t0);
    }
    for (int rep = 0; rep < 2; rep++) {
        t0 = kv_now_ms();
        if (range_reads(ops, e, w))
            return KV_ERR;
        set_cell(er, rep ? R_RANGE2 : R_RANGE1, kv_now_ms() - t0);
    }
    return read_threads(er, e, w);
}

/* ------------------------------------------------------------------------ */
/* Removals and sizes                                                        */

/* After removing bulk keys [0, n/2): check a sample of both halves. */
static int check_removed(const kv_ops *ops, kv_engine *e, const workload *w)
{
    kv_reader *r = NULL;
    uint8_t k[KV_KEY_LEN];
    uint64_t half = w->n / 2, step = half / 1000 ? half / 1000 : 1;
    int rc = ops->reader_open(e, &r);
    for (uint64_t i = 0; rc == KV_OK && i < w->n; i += step) {
        const uint8_t *v;
        size_t vlen;
        kv_key(w->seed, i, k);
        rc = ops->get(r, k, KV_KEY_LEN, &v, &vlen);
        if (rc == KV_ERR)
            break;
        if (i < half)
            rc = rc == KV_NOTFOUND ? KV_OK
                                   : check_fail(ops->name, "key #%llu still present after removal",
                                                (unsigned long long)i);
        else if (rc == KV_NOTFOUND || !kv_value_ok(k, KV_KEY_LEN, v, vlen))
            rc = check_fail(ops->name, "key #%llu missing or wrong after removals",
                            (unsigned long long)i);
    }
    ops->reader_close(r);
    return rc;
}

static int run_removals(engine_run *er, kv_engine *e, const workload *w)
{
    const kv_ops *ops = er->ops;
    uint8_t k[KV_KEY_LEN];
    uint64_t half = w->n / 2;
    double t0 = kv_now_ms();
    if (ops->write_begin(e, 1))
        return KV_ERR;
    for (uint64_t i = 0; i < half; i++) {
        kv_key(w->seed, i, k);
        int rc = ops->del(e, k, KV_KEY_LEN);
        if (rc == KV_NOTFOUND)
            return check_fail(ops->name, "remove key #%llu: not found", (unsigned long long)i);
        if (rc)
            return KV_ERR;
    }
    if (ops->write_commit(e))
        return KV_ERR;
    set_cell(er, R_REMOVE, kv_now_ms() - t0);
    if (check_len(er, e, w->total - half, -1) || check_removed(ops, e, w))
        return KV_ERR;
    return KV_OK;
}

static int run_sizes(engine_run *er, kv_engine *e, const char *dir, const char *tmpdir)
{
    uint64_t bytes = kv_dir_bytes(dir);
    if (bytes == UINT64_MAX)
        return check_fail(er->ops->name, "cannot measure %s", dir);
    set_cell(er, R_SIZE_RAW, (double)bytes);
    if (!er->ops->compact) {
        er->cells[R_SIZE_COMPACT].state = CELL_NA;
        return KV_OK;
    }
    if (er->ops->compact(e, dir, tmpdir, &bytes))
        return KV_ERR;
    if (bytes == UINT64_MAX)
        return check_fail(er->ops->name, "cannot measure the compacted copy");
    set_cell(er, R_SIZE_COMPACT, (double)bytes);
    return KV_OK;
}

/* ------------------------------------------------------------------------ */
/* One engine                                                                */

/* The phases of one engine, in order; stops at the first failure. */
static int run_phases(engine_run *er, const kv_config *cfg, const workload *w, const char *dir,
                      const char *tmpdir, kv_engine **e)
{
    double fsync_ms = fsync_baseline(dir);
    if (fsync_ms < 0.0)
        return KV_ERR;
    set_cell(er, R_FSYNC_P50, fsync_ms);
    if (er->ops->open(dir, cfg, e))
        return KV_ERR;
    if (run_writes(er, *e, w) || run_reads(er, *e, w) || run_removals(er, *e, w) ||
        run_sizes(er, *e, dir, tmpdir))
        return KV_ERR;
    return KV_OK;
}

static void run_engine(engine_run *er, const kv_config *cfg, const workload *w)
{
    char dir[4200], tmpdir[4300];
    kv_engine *e = NULL;
    snprintf(dir, sizeof dir, "%s/%s", g_rundir, er->ops->name);
    snprintf(tmpdir, sizeof tmpdir, "%s/%s.compact", g_rundir, er->ops->name);
    if (mkdir(dir, 0755) != 0 || mkdir(tmpdir, 0755) != 0) {
        fprintf(stderr, "bench_kv: mkdir %s: %s\n", dir, strerror(errno));
        er->failed = 1;
    } else if (run_phases(er, cfg, w, dir, tmpdir, &e)) {
        er->failed = 1;
    }
    er->ops->close(e);
    if (er->failed) {
        fprintf(stderr, "bench_kv: %s FAILED; its remaining results are missing\n",
                er->ops->name);
        for (int i = 0; i < N_ROWS; i++)
            if (er->cells[i].state == CELL_NONE)
                er->cells[i].state = CELL_ERR;
    }
    if (!g_keep) {
        kv_rm_rf(dir);
        kv_rm_rf(tmpdir);
    }
}

/* ------------------------------------------------------------------------ */
/* Report                                                                    */

static void fmt_value(const cell *c, int section, char *buf, size_t n)
{
    if (c->state == CELL_NA) {
        snprintf(buf, n, "n/a");
    } else if (c->state != CELL_OK) {
        snprintf(buf, n, "error");
    } else if (section == SEC_SIZE) {
        snprintf(buf, n, "%.1f MiB", c->v / (1024.0 * 1024.0));
    } else {
        double v = c->v;
        snprintf(buf, n, v < 1.0 ? "%.3f" : v < 100.0 ? "%.1f" : "%.0f", v);
    }
}

/* Ratio of c to the LMDB cell of the same row, or 0 when there is none. */
static double ratio_to(const cell *c, const cell *base, int row)
{
    if (!base || g_rows[row].no_ratio || c->state != CELL_OK || base->state != CELL_OK || base->v <= 0.0)
        return 0.0;
    return c->v / base->v;
}

static void print_section(const engine_run *runs, int n_runs, int lmdb, int section,
                          const char *title)
{
    char val[64], cellbuf[96];
    printf("\n%-28s", title);
    for (int j = 0; j < n_runs; j++)
        printf("%22s", runs[j].ops->name);
    printf("\n");
    for (int i = 0; i < N_ROWS; i++) {
        if (g_rows[i].section != section)
            continue;
        printf("%-28s", g_rows[i].name);
        for (int j = 0; j < n_runs; j++) {
            const cell *c = &runs[j].cells[i];
            double r = ratio_to(c, lmdb >= 0 ? &runs[lmdb].cells[i] : NULL, i);
            fmt_value(c, section, val, sizeof val);
            if (r > 0.0)
                snprintf(cellbuf, sizeof cellbuf, "%s (%.2fx)", val, r);
            else
                snprintf(cellbuf, sizeof cellbuf, "%s", val);
            printf("%22s", cellbuf);
        }
        printf("\n");
    }
}

static int write_csv(const char *path, const engine_run *runs, int n_runs, int lmdb)
{
    static const char *const sec_name[] = {"time", "size", "latency"};
    FILE *f = fopen(path, "w");
    if (!f) {
        fprintf(stderr, "bench_kv: cannot write %s: %s\n", path, strerror(errno));
        return -1;
    }
    fprintf(f, "section,metric,engine,value,unit,ratio_to_lmdb\n");
    for (int i = 0; i < N_ROWS; i++) {
        int sec = g_rows[i].section;
        for (int j = 0; j < n_runs; j++) {
            const cell *c = &runs[j].cells[i];
            double r = ratio_to(c, lmdb >= 0 ? &runs[lmdb].cells[i] : NULL, i);
            fprintf(f, "%s,%s,%s,", sec_name[sec], g_rows[i].name, runs[j].ops->name);
            if (c->state == CELL_OK)
                fprintf(f, sec == SEC_SIZE ? "%.0f" : "%.6f", c->v);
            else
                fprintf(f, "%s", c->state == CELL_NA ? "n/a" : "error");
            fprintf(f, ",%s,", sec == SEC_SIZE ? "bytes" : "ms");
            if (r > 0.0)
                fprintf(f, "%.4f", r);
            fprintf(f, "\n");
        }
    }
    if (fclose(f) != 0) {
        fprintf(stderr, "bench_kv: writing %s: %s\n", path, strerror(errno));
        return -1;
    }
    return 0;
}

/* ------------------------------------------------------------------------ */
/* Machine description and options                                           */

/* The 1-minute load average, or "?". */
static void load_avg(char out[32])
{
    char line[128];
    FILE *f = fopen("/proc/loadavg", "r");
    snprintf(out, 32, "?");
    if (f && fgets(line, sizeof line, f))
        snprintf(out, 32, "%.*s", (int)strcspn(line, " \n"), line);
    if (f)
        fclose(f);
}

static void print_machine(const char *load_start)
{
    char load_end[32];
    char line[512], model[256] = "unknown";
    struct utsname u;
    FILE *f = fopen("/proc/cpuinfo", "r");
    while (f && fgets(line, sizeof line, f)) {
        char *colon = strchr(line, ':');
        if (strncmp(line, "model name", 10) == 0 && colon) {
            snprintf(model, sizeof model, "%s", colon + 2);
            model[strcspn(model, "\n")] = '\0';
            break;
        }
    }
    if (f)
        fclose(f);
    printf("machine: %ld cores, %s", sysconf(_SC_NPROCESSORS_ONLN), model);
    if (uname(&u) == 0)
        printf(", %s %s %s", u.sysname, u.release, u.machine);
    printf("\n");
    /* Other jobs on the machine skew timings: show the load around the run. */
    load_avg(load_end);
    printf("load average (1 min): %s at the start, %s at the end\n", load_start, load_end);
}

static void usage(FILE *out)
{
    fprintf(out,
            "usage: bench_kv [-n N] [--engines LIST] [--dir DIR] [--csv PATH] [--seed S]\n"
            "                [--cache-mib M] [--rounds R] [--keep]\n"
            "  -n N            elements of the bulk load (default 1000000)\n"
            "  --engines LIST  comma-separated, in run order (default: all built:");
    for (int i = 0; g_all_engines[i]; i++)
        fprintf(out, "%s%s", i ? "," : " ", g_all_engines[i]->name);
    fprintf(out, ")\n"
            "  --dir DIR       parent of the run directory (default $TMPDIR or /tmp)\n"
            "  --csv PATH      also write the results as CSV\n"
            "  --seed S        workload seed (default 3, as redb)\n"
            "  --cache-mib M   cache budget for SQLite and RocksDB (default 4096, as redb)\n"
            "  --rounds R      run the engine sequence R times (1..15, default 1) and\n"
            "                  report each cell's median; engines alternate within a round\n"
            "  --keep          keep the databases instead of deleting them\n");
}

static const kv_ops *find_engine(const char *name, size_t len)
{
    for (int i = 0; g_all_engines[i]; i++)
        if (strlen(g_all_engines[i]->name) == len && memcmp(g_all_engines[i]->name, name, len) == 0)
            return g_all_engines[i];
    return NULL;
}

static int parse_engines(const char *list, engine_run *runs)
{
    int n = 0;
    const char *p = list;
    while (*p) {
        size_t len = strcspn(p, ",");
        const kv_ops *ops = find_engine(p, len);
        if (!ops)
            die("engine '%.*s' is not built in (see --help)", (int)len, p);
        if (n == MAX_ENGINES)
            die("too many engines");
        runs[n++].ops = ops;
        p += len + (p[len] == ',');
    }
    return n;
}

static uint64_t parse_u64(const char *s, const char *what)
{
    char *end;
    errno = 0;
    unsigned long long v = strtoull(s, &end, 10);
    if (errno || end == s || *end)
        die("bad %s '%s'", what, s);
    return (uint64_t)v;
}

typedef struct opts {
    uint64_t n, seed, cache_mib, rounds;
    const char *engines, *dir, *csv;
} opts;

static void parse_args(int argc, char **argv, opts *o)
{
    for (int i = 1; i < argc; i++) {
        const char *a = argv[i];
        const char *next = i + 1 < argc ? argv[i + 1] : NULL;
        int takes = 1;
        if (!strcmp(a, "-h") || !strcmp(a, "--help")) {
            usage(stdout);
            exit(0);
        } else if (!strcmp(a, "--keep")) {
            g_keep = 1;
            takes = 0;
        } else if (!next) {
            usage(stderr);
            die("missing value after %s", a);
        } else if (!strcmp(a, "-n")) {
            o->n = parse_u64(next, "-n");
        } else if (!strcmp(a, "--seed")) {
            o->seed = parse_u64(next, "--seed");
        } else if (!strcmp(a, "--cache-mib")) {
            o->cache_mib = parse_u64(next, "--cache-mib");
        } else if (!strcmp(a, "--engines")) {
            o->engines = next;
        } else if (!strcmp(a, "--dir")) {
            o->dir = next;
        } else if (!strcmp(a, "--csv")) {
            o->csv = next;
        } else if (!strcmp(a, "--rounds")) {
            o->rounds = parse_u64(next, "--rounds");
        } else {
            usage(stderr);
            die("unknown option %s", a);
        }
        i += takes;
    }
    if (o->n < 2 || o->n > UINT32_MAX - 200000u)
        die("-n must be in [2, %u]", UINT32_MAX - 200000u);
    if (o->rounds < 1 || o->rounds > MAX_ROUNDS)
        die("--rounds must be in [1, %d]", MAX_ROUNDS);
}

static void print_report(const opts *o, const workload *w, const engine_run *runs, int n_runs,
                         int lmdb, const char *load_start)
{
    printf("bench_kv: n = %llu, key %d B, value %d B, seed %llu, cache %llu MiB, dir %s\n",
           (unsigned long long)o->n, KV_KEY_LEN, KV_VAL_LEN, (unsigned long long)o->seed,
           (unsigned long long)o->cache_mib, o->dir);
    print_machine(load_start);
    printf("engines:");
    for (int j = 0; j < n_runs; j++)
        printf("%s %s %s", j ? "," : "", runs[j].ops->name, runs[j].ops->version);
    printf("\n");
    printf("phases: %d individual writes, %d x %d batch writes, %d nosync writes, "
           "%llu ranges of %d, %d read threads\n", N_INDIVIDUAL, N_BATCHES, BATCH_SIZE, N_NOSYNC,
           (unsigned long long)w->n_ranges, SCAN_LEN, N_READ_THREADS);
    if (o->rounds > 1)
        printf("rounds: %llu (engines alternate within each round, each in a fresh directory); "
               "every cell is the median of its rounds\n", (unsigned long long)o->rounds);
    print_section(runs, n_runs, lmdb, SEC_TIME, "time (ms)");
    print_section(runs, n_runs, lmdb, SEC_SIZE, "file size");
    print_section(runs, n_runs, lmdb, SEC_LAT, "commit latency (ms)");
    printf("\nraw fsync p50 = median of %d (4 KiB pwrite at offset 0 + fdatasync) in the "
           "engine's directory,\njust before it runs; individual write = whole "
           "transaction (begin, 1 insert, durable commit)\n", FSYNC_REPS);
    if (lmdb >= 0)
        printf("\n(x.xx) = ratio to lmdb; lower is better\n");
}

/* ------------------------------------------------------------------------ */
/* main                                                                      */

int main(int argc, char **argv)
{
    opts o = {1000000, 3, 4096, 1, NULL, NULL, NULL};
    engine_run runs[MAX_ENGINES];
    workload w;
    int n_runs = 0, lmdb = -1, failed = 0;
    char load_start[32];
    memset(runs, 0, sizeof runs);
    parse_args(argc, argv, &o);
    if (o.engines) {
        n_runs = parse_engines(o.engines, runs);
    } else {
        for (int i = 0; g_all_engines[i]; i++)
            runs[n_runs++].ops = g_all_engines[i];
    }
    if (n_runs == 0)
        die("no engine selected");
    if (!o.dir)
        o.dir = getenv("TMPDIR") && *getenv("TMPDIR") ? getenv("TMPDIR") : "/tmp";
    snprintf(g_rundir, sizeof g_rundir, "%s/bench_kv.XXXXXX", o.dir);
    if (!mkdtemp(g_rundir)) {
        g_rundir[0] = '\0';
        die("cannot create a directory under %s: %s", o.dir, strerror(errno));
    }
    atexit(cleanup_rundir);
    signal(SIGINT, on_signal);
    signal(SIGTERM, on_signal);

    kv_config cfg = {o.n, o.cache_mib << 20};
    fprintf(stderr, "bench_kv: building the workload (n = %llu)...\n", (unsigned long long)o.n);
    workload_build(&w, o.seed, o.n);
    load_avg(load_start);

    for (uint64_t r = 0; r < o.rounds; r++) {
        for (int j = 0; j < n_runs; j++) {
            if (runs[j].failed)
                continue;
            fprintf(stderr, "bench_kv: round %llu of %llu: running %s in %s/%s\n",
                    (unsigned long long)r + 1, (unsigned long long)o.rounds, runs[j].ops->name,
                    g_rundir, runs[j].ops->name);
            for (int i = 0; i < N_ROWS; i++)
                runs[j].cells[i].state = CELL_NONE;
            run_engine(&runs[j], &cfg, &w);
            failed |= runs[j].failed;
            if (!strcmp(runs[j].ops->name, "lmdb"))
                lmdb = j;
            for (int i = 0; i < N_ROWS && !runs[j].failed; i++)
                if (runs[j].cells[i].state == CELL_OK)
                    runs[j].samples[i][runs[j].n_samples[i]++] = runs[j].cells[i].v;
        }
    }
    for (int j = 0; j < n_runs; j++)      /* every cell: the median of its rounds */
        for (int i = 0; i < N_ROWS && !runs[j].failed; i++)
            if (runs[j].cells[i].state == CELL_OK && runs[j].n_samples[i] > 1)
                runs[j].cells[i].v = kv_quantile(runs[j].samples[i], (size_t)runs[j].n_samples[i], 0.5);

    print_report(&o, &w, runs, n_runs, lmdb, load_start);
    if (o.csv && write_csv(o.csv, runs, n_runs, lmdb))
        failed = 1;
    workload_free(&w);
    return failed ? 1 : 0;
}
