/* bench/blob/bench_blob.c - blob store throughput against plain files and
 * SQLite BLOBs, and dedup on near-duplicate blobs.
 *
 *   bench_blob [-d DIR] [-q] [-s SIZES] [-n COUNT] [-D]
 *     DIR: where the files go (default /var/tmp); -q: quick (fewer and
 *     smaller runs); -s: only the sizes named (e.g. "1MiB,64MiB");
 *     -n: blobs per size; -D: skip the dedup runs
 *
 * For each size (4 KiB, 1 MiB, 64 MiB) the same distinct random blobs are
 *  - written durably, one transaction (one fsync) per blob: Strata
 *    strata_blob_put + commit; plain files write + fsync + close, and the
 *    same plus an fsync of the directory (files+dir: the new name is durable
 *    too, as a committed blob is: POSIX asks for it; ext4 without a journal
 *    already syncs a new file's directory in fsync, ext4_sync_parent);
 *    SQLite
 *    (WAL, synchronous=FULL) INSERT of a zeroblob filled with
 *    sqlite3_blob_write, one transaction each. The three writes of blob i run
 *    back to back (the order rotating with i), so all three see the same disk
 *    and machine load: on a shared machine, separate phases measured the
 *    load more than the engines. All files live in DIR;
 *  - read back streaming in 256 KiB pieces (warm cache for all three):
 *    strata_blob_reader, read(2), sqlite3_blob_read.
 * Ratios are printed against plain files (the goals: read >= 0.80 and write
 * time <= 1.5 x files) and against SQLite. Then 24 near-duplicates of an 8 MiB blob (a few
 * small inserts, deletes and overwrites each) are stored with CDC and with
 * fixed-size chunks: dedup ratio and MB/s. */
#include <fcntl.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#ifdef HAVE_SQLITE
#include <sqlite3.h>
#endif

#include "strata.h"

#define PIECE (256u << 10)

typedef struct run { const char *name; size_t size, count; } run;
typedef struct res { double w_s, r_s; } res;
enum { E_FILES = 0, E_FILES_DIR, E_STRATA, E_SQLITE, E_COUNT };

static char g_dir[512] = "/var/tmp";

static double now_s(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec * 1e-9;
}

static void die(const char *what, int rc) {
    fprintf(stderr, "bench_blob: %s failed: %d (%s)\n", what, rc, strata_strerror(rc));
    exit(1);
}

static void fill(uint8_t *p, size_t n, uint64_t seed) {
    uint64_t x = seed * 0x9E3779B97F4A7C15ull + 7;
    size_t i = 0;
    for (; i + 8 <= n; i += 8) {
        x ^= x >> 12; x ^= x << 25; x ^= x >> 27;
        uint64_t v = x * 0x2545F4914F6CDD1Dull;
        memcpy(p + i, &v, 8);
    }
    for (; i < n; i++) p[i] = (uint8_t)(i * 131 + seed);
}

static void path_of(char *out, size_t cap, const char *name) { snprintf(out, cap, "%s/%s", g_dir, name); }

/* ---- Strata ---- */
typedef struct sctx {
    strata_db *db;
    uint64_t  *ids;
    double     put_s, commit_s;   /* the write time split: put (CPU) and commit (I/O) */
    char       path[600];
} sctx;

static void strata_setup(sctx *c, const run *r) {
    int rc;
    path_of(c->path, sizeof c->path, "bench_blob.strata");
    unlink(c->path);
    if (!(c->ids = malloc(r->count * sizeof *c->ids))) die("malloc", STRATA_ENOMEM);
    if ((rc = strata_open(c->path, STRATA_CREATE, &c->db))) die("strata_open", rc);
}

static double strata_write1(sctx *c, const run *r, const uint8_t *data, size_t i) {
    strata_txn *t;
    int rc;
    double t0 = now_s();
    if ((rc = strata_begin_write(c->db, &t))) die("begin_write", rc);
    if ((rc = strata_blob_put(t, NULL, data, r->size, &c->ids[i]))) die("blob_put", rc);
    double t1 = now_s();
    if ((rc = strata_commit(t))) die("commit", rc);
    double t2 = now_s();
    c->put_s += t1 - t0;
    c->commit_s += t2 - t1;
    return t2 - t0;
}

static double strata_read_all(sctx *c, const run *r, uint8_t *buf) {
    strata_txn *t;
    int rc;
    double t0 = now_s();
    if ((rc = strata_begin_read(c->db, &t))) die("begin_read", rc);
    for (size_t i = 0; i < r->count; i++) {
        strata_blob_reader *rd;
        size_t n, total = 0;
        if ((rc = strata_blob_reader_open(t, c->ids[i], 0, &rd))) die("reader_open", rc);
        do {
            if ((rc = strata_blob_read(rd, buf, PIECE, &n))) die("blob_read", rc);
            total += n;
        } while (n);
        if (total != r->size) die("short read", STRATA_ECORRUPT);
        strata_blob_reader_close(rd);
    }
    strata_abort(t);
    double s = now_s() - t0;
    strata_close(c->db);
    unlink(c->path);
    free(c->ids);
    return s;
}

/* ---- plain files ---- */
static void file_name(char *path, size_t cap, size_t i) {
    char name[64];
    snprintf(name, sizeof name, "bench_blob_%zu.bin", i);
    path_of(path, cap, name);
}

/* dir_sync: also fsync the directory, which makes the new file's name
 * durable (what a commit gives a new blob); files and files+dir use
 * different names, so both create a new file. */
static double files_write1(const run *r, const uint8_t *data, size_t i, int dir_sync) {
    char path[600];
    double t0 = now_s();
    file_name(path, sizeof path, dir_sync ? i + r->count : i);
    int fd = open(path, O_CREAT | O_TRUNC | O_WRONLY, 0644);
    if (fd < 0) die("open", STRATA_EIO);
    for (size_t off = 0; off < r->size;) {
        ssize_t w = write(fd, data + off, r->size - off);
        if (w <= 0) die("write", STRATA_EIO);
        off += (size_t)w;
    }
    if (fsync(fd) || close(fd)) die("fsync", STRATA_EIO);
    if (dir_sync) {
        int dfd = open(g_dir, O_RDONLY | O_DIRECTORY);
        if (dfd < 0 || fsync(dfd) || close(dfd)) die("fsync dir", STRATA_EIO);
    }
    return now_s() - t0;
}

static double files_read_all(const run *r, uint8_t *buf) {
    char path[600];
    double t0 = now_s();
    for (size_t i = 0; i < r->count; i++) {
        file_name(path, sizeof path, i);
        int fd = open(path, O_RDONLY);
        size_t total = 0;
        ssize_t n;
        if (fd < 0) die("open", STRATA_EIO);
        while ((n = read(fd, buf, PIECE)) > 0) total += (size_t)n;
        close(fd);
        if (total != r->size) die("short file read", STRATA_EIO);
    }
    double s = now_s() - t0;
    for (size_t i = 0; i < 2 * r->count; i++) {
        file_name(path, sizeof path, i);
        unlink(path);
    }
    return s;
}

/* ---- SQLite ---- */
#ifdef HAVE_SQLITE
static void sq(sqlite3 *db, const char *sql) {
    char *err = NULL;
    if (sqlite3_exec(db, sql, NULL, NULL, &err) != SQLITE_OK) {
        fprintf(stderr, "bench_blob: sqlite: %s: %s\n", sql, err ? err : "?");
        exit(1);
    }
}

static void sqlite_write(sqlite3 *db, sqlite3_stmt *ins, const uint8_t *data, size_t size, int64_t id) {
    sqlite3_blob *b;
    sq(db, "BEGIN");
    sqlite3_bind_int64(ins, 1, id);
    sqlite3_bind_zeroblob64(ins, 2, size);
    if (sqlite3_step(ins) != SQLITE_DONE) die("sqlite insert", -1);
    sqlite3_reset(ins);
    if (sqlite3_blob_open(db, "main", "blobs", "data", id, 1, &b) != SQLITE_OK) die("sqlite blob_open", -1);
    for (size_t off = 0; off < size; off += PIECE) {
        size_t n = size - off < PIECE ? size - off : PIECE;
        if (sqlite3_blob_write(b, data + off, (int)n, (int)off) != SQLITE_OK) die("sqlite blob_write", -1);
    }
    sqlite3_blob_close(b);
    sq(db, "COMMIT");
}

typedef struct qctx { sqlite3 *db; sqlite3_stmt *ins; char path[600]; } qctx;

static void sqlite_setup(qctx *c) {
    path_of(c->path, sizeof c->path, "bench_blob.sqlite");
    unlink(c->path);
    if (sqlite3_open(c->path, &c->db) != SQLITE_OK) die("sqlite open", -1);
    sq(c->db, "PRAGMA journal_mode=WAL; PRAGMA synchronous=FULL;"
              "CREATE TABLE blobs(id INTEGER PRIMARY KEY, data BLOB)");
    if (sqlite3_prepare_v2(c->db, "INSERT INTO blobs VALUES(?, ?)", -1, &c->ins, NULL) != SQLITE_OK)
        die("sqlite prepare", -1);
}

static double sqlite_write1(qctx *c, const run *r, const uint8_t *data, size_t i) {
    double t0 = now_s();
    sqlite_write(c->db, c->ins, data, r->size, (int64_t)i + 1);
    return now_s() - t0;
}

static double sqlite_read_all(qctx *c, const run *r, uint8_t *buf) {
    char wal[640];
    sqlite3_finalize(c->ins);
    double t0 = now_s();
    sq(c->db, "BEGIN");
    for (size_t i = 0; i < r->count; i++) {
        sqlite3_blob *b;
        if (sqlite3_blob_open(c->db, "main", "blobs", "data", (int64_t)i + 1, 0, &b) != SQLITE_OK)
            die("sqlite blob_open", -1);
        size_t size = (size_t)sqlite3_blob_bytes(b);
        for (size_t off = 0; off < size; off += PIECE) {
            size_t n = size - off < PIECE ? size - off : PIECE;
            if (sqlite3_blob_read(b, buf, (int)n, (int)off) != SQLITE_OK) die("sqlite blob_read", -1);
        }
        sqlite3_blob_close(b);
        if (size != r->size) die("sqlite short read", -1);
    }
    sq(c->db, "COMMIT");
    double s = now_s() - t0;
    sqlite3_close(c->db);
    snprintf(wal, sizeof wal, "%s-wal", c->path);
    unlink(c->path);
    unlink(wal);
    return s;
}
#endif

static double mbps(size_t bytes, double s) { return s > 0 ? (double)bytes / (1 << 20) / s : 0; }

static void bench_size(const run *r) {
    uint8_t *data = malloc(r->size), *buf = malloc(PIECE);
    if (!data || !buf) die("malloc", STRATA_ENOMEM);
    size_t bytes = r->size * r->count;
    double w[E_COUNT] = { 0 };
    sctx sc = { 0 };
    strata_setup(&sc, r);
#ifdef HAVE_SQLITE
    qctx qc;
    sqlite_setup(&qc);
#endif
    for (size_t i = 0; i < r->count; i++) {
        fill(data, r->size, i + 1);   /* distinct blobs (no dedup), not timed */
        for (int k = 0; k < E_COUNT; k++) {
            switch ((k + (int)i) % E_COUNT) {   /* rotate who goes first */
            case E_FILES: w[E_FILES] += files_write1(r, data, i, 0); break;
            case E_FILES_DIR: w[E_FILES_DIR] += files_write1(r, data, i, 1); break;
            case E_STRATA: w[E_STRATA] += strata_write1(&sc, r, data, i); break;
            default:
#ifdef HAVE_SQLITE
                w[E_SQLITE] += sqlite_write1(&qc, r, data, i);
#endif
                break;
            }
        }
    }
    res f = { w[E_FILES], files_read_all(r, buf) };
    res s = { w[E_STRATA], strata_read_all(&sc, r, buf) };
#ifdef HAVE_SQLITE
    res q = { w[E_SQLITE], sqlite_read_all(&qc, r, buf) };
#endif
    printf("%-7s x%-5zu write MB/s: strata %8.1f  files %8.1f", r->name, r->count, mbps(bytes, s.w_s),
           mbps(bytes, f.w_s));
#ifdef HAVE_SQLITE
    printf("  sqlite %8.1f", mbps(bytes, q.w_s));
#else
    printf("  sqlite      n/a");
#endif
    printf("  files+dir %8.1f", mbps(bytes, w[E_FILES_DIR]));
    printf("  | write time strata/files %.2fx (goal <= 1.5), strata/files+dir %.2fx", s.w_s / f.w_s,
           s.w_s / w[E_FILES_DIR]);
#ifdef HAVE_SQLITE
    printf(", strata/sqlite %.2fx", s.w_s / q.w_s);
#endif
    printf("\n");
    printf("%-7s x%-5zu read  MB/s: strata %8.1f  files %8.1f", r->name, r->count, mbps(bytes, s.r_s),
           mbps(bytes, f.r_s));
#ifdef HAVE_SQLITE
    printf("  sqlite %8.1f", mbps(bytes, q.r_s));
#else
    printf("  sqlite      n/a");
#endif
    printf("  | read speed strata/files %.2f (goal >= 0.80)", f.r_s / s.r_s);
#ifdef HAVE_SQLITE
    printf(", strata/sqlite %.2f", q.r_s / s.r_s);
#endif
    printf("\n");
    printf("%-7s per blob: strata %.3f ms = put %.3f + commit %.3f; files %.3f ms, files+dir %.3f ms\n",
           r->name, s.w_s * 1e3 / (double)r->count, sc.put_s * 1e3 / (double)r->count,
           sc.commit_s * 1e3 / (double)r->count, f.w_s * 1e3 / (double)r->count,
           w[E_FILES_DIR] * 1e3 / (double)r->count);
    free(data);
    free(buf);
}

/* Near-duplicates: base content plus, per variant, a few random small edits. */
static size_t make_variant(uint8_t *out, const uint8_t *base, size_t n, uint64_t seed) {
    size_t len = n;
    memcpy(out, base, n);
    uint64_t x = seed * 0x9E3779B97F4A7C15ull + 3;
    for (int e = 0; e < 4; e++) {
        x = x * 6364136223846793005ull + 1442695040888963407ull;
        size_t pos = (size_t)(x >> 24) % (len - 4096), k = 1 + (size_t)(x >> 8) % 200;
        switch (e % 3) {
        case 0: memmove(out + pos + k, out + pos, len - pos); fill(out + pos, k, x); len += k; break;
        case 1: memmove(out + pos, out + pos + k, len - pos - k); len -= k; break;
        default: fill(out + pos, k, x); break;
        }
    }
    return len;
}

static void bench_dedup(size_t base_len, int n_var, int chunking, const char *name) {
    char path[600];
    strata_db *db;
    strata_txn *t;
    uint8_t *base = malloc(base_len), *v = malloc(base_len + 1024);
    size_t logical = 0;
    double ratio, secs = 0;
    int rc;
    strata_blob_opts o = { .chunking = chunking };
    fill(base, base_len, 4242);
    path_of(path, sizeof path, "bench_blob_dedup.strata");
    unlink(path);
    if ((rc = strata_open(path, STRATA_CREATE, &db))) die("strata_open", rc);
    for (int i = 0; i <= n_var; i++) {
        size_t len = i ? make_variant(v, base, base_len, (uint64_t)i) : base_len;
        double t0 = now_s();
        if ((rc = strata_begin_write(db, &t))) die("begin_write", rc);
        if ((rc = strata_blob_put(t, &o, i ? v : base, len, NULL))) die("blob_put", rc);
        if ((rc = strata_commit(t))) die("commit", rc);
        secs += now_s() - t0;
        logical += len;
    }
    if ((rc = strata_begin_read(db, &t)) || (rc = strata_blob_dedup_ratio(t, &ratio))) die("dedup_ratio", rc);
    strata_blob_stats st;
    if ((rc = strata_blob_stats_get(t, &st))) die("stats", rc);
    strata_abort(t);
    printf("dedup %-5s: %d near-duplicates of %zu MiB: ratio %.2f (logical %.1f MiB, stored %.1f MiB, "
           "%llu chunks), %.1f MB/s, %.1f ms\n", name, n_var + 1, base_len >> 20, ratio,
           (double)logical / (1 << 20), (double)st.stored_bytes / (1 << 20),
           (unsigned long long)st.n_chunks, mbps(logical, secs), secs * 1e3);
    strata_close(db);
    unlink(path);
    free(base);
    free(v);
}

int main(int argc, char **argv) {
    int quick = 0, opt, no_dedup = 0;
    const char *only = NULL;
    long count = 0;
    while ((opt = getopt(argc, argv, "d:qs:n:D")) != -1) {
        if (opt == 'd') snprintf(g_dir, sizeof g_dir, "%s", optarg);
        else if (opt == 'q') quick = 1;
        else if (opt == 's') only = optarg;
        else if (opt == 'n' && (count = atol(optarg)) > 0) continue;
        else if (opt == 'D') no_dedup = 1;
        else {
            fprintf(stderr, "usage: bench_blob [-d DIR] [-q] [-s SIZE[,SIZE]] [-n COUNT] [-D]\n"
                            "  -s: only these sizes (4KiB, 1MiB, 64MiB)  -n: blobs per size  -D: no dedup runs\n");
            return 2;
        }
    }
    run runs[] = {
        { "4KiB", 4096, quick ? 100 : 1000 },
        { "1MiB", 1u << 20, quick ? 8 : 64 },
        { "64MiB", 64u << 20, quick ? 1 : 4 },
    };
    printf("bench_blob: dir %s, durable writes (one fsync per blob), reads in %u KiB pieces, "
           "SIMD %s\n", g_dir, PIECE >> 10, strata_vec_kernel_name());
    for (size_t i = 0; i < sizeof runs / sizeof *runs; i++) {
        if (only && !strstr(only, runs[i].name)) continue;
        if (count) runs[i].count = (size_t)count;
        bench_size(&runs[i]);
    }
    if (no_dedup) return 0;
    bench_dedup(quick ? 2u << 20 : 8u << 20, 23, STRATA_BLOB_CDC, "cdc");
    bench_dedup(quick ? 2u << 20 : 8u << 20, 23, STRATA_BLOB_FIXED, "fixed");
    return 0;
}
