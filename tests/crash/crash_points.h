/* tests/crash/crash_points.h - the crash-point driver shared by the crash
 * tests (test_crash.c, test_crash_layers.c). A workload is a fixed sequence
 * of commits; crash_every_point replays it from a fresh file once per crash
 * point through the fault-injecting backend (pager/io_fault.c): every write
 * and every sync in turn fails for good (STRATA_EIO, so the process "dies"
 * there), and every commit boundary is also a crash point without any
 * error. After each run the handle is dropped without writing
 * (db_close_nosync), power loss is simulated in three modes (io_fault_crash:
 * drop every unsynced write / keep a random subset / random subset with torn
 * pages), and the test's verify callback checks the reopened file. Seeds are
 * derived from the point, so a failure names one reproducible run.
 * Needs criterion, strata.h and pager.h before it. */
#ifndef STRATA_CRASH_POINTS_H
#define STRATA_CRASH_POINTS_H

#include <unistd.h>

int  db_open_backend(io_backend *io, unsigned flags, const strata_options *opts, strata_db **out);
void db_close_nosync(strata_db *db);

typedef struct crash_point {
    const char *what;       /* "write", "sync" or "boundary" */
    long        n;          /* the write, the sync or the number of commits before */
    int         mode;       /* io_fault_crash mode 0..2 */
    uint64_t    seed;
} crash_point;

typedef struct crash_workload {
    const char *path;
    int         commits;                                 /* commits 1..commits       */
    int       (*commit)(void *ctx, strata_db *db, int i); /* run commit i: its rc     */
    int       (*durable)(void *ctx, int i);              /* commit i is IMMEDIATE    */
    void      (*verify)(void *ctx, const crash_point *pt, int acked, int attempted);
    void       *ctx;
    uint64_t    seed_points, seed_boundaries;            /* bases of the run seeds   */
} crash_workload;

typedef struct crash_run {
    int  acked, attempted;  /* last acknowledged durable commit; last commit begun */
    long writes, syncs;     /* counted after open */
} crash_run;

/* One run: a fresh file, the fault kind (FAULT_WRITE / FAULT_SYNC, or -1 for
 * none) armed at its n-th call, commits 1..stop_after until one fails (then
 * only with STRATA_EIO or STRATA_EPANIC), then power loss in mode. */
static inline crash_run crash_run_workload(const crash_workload *wl, int kind, long n, int stop_after, int mode,
                                           uint64_t seed) {
    unlink(wl->path);
    io_backend *inner, *io;
    cr_assert_eq(io_file_open(wl->path, IO_OPEN_CREATE, &inner), STRATA_OK);
    cr_assert_eq(io_fault_wrap(inner, &io), STRATA_OK);
    strata_db *db;
    cr_assert_eq(db_open_backend(io, STRATA_CREATE, NULL, &db), STRATA_OK);   /* takes one reference */
    long w0 = io_fault_count(io, FAULT_WRITE), s0 = io_fault_count(io, FAULT_SYNC);
    if (kind >= 0) io_fault_arm(io, kind, n, STRATA_EIO, 1);
    crash_run r = { 0, 0, 0, 0 };
    for (int i = 1; i <= stop_after; i++) {
        r.attempted = i;
        int rc = wl->commit(wl->ctx, db, i);
        if (rc != STRATA_OK) {
            cr_assert(rc == STRATA_EIO || rc == STRATA_EPANIC, "commit %d: unexpected %s", i, strata_strerror(rc));
            break;
        }
        if (wl->durable(wl->ctx, i)) r.acked = i;
    }
    r.writes = io_fault_count(io, FAULT_WRITE) - w0;
    r.syncs = io_fault_count(io, FAULT_SYNC) - s0;
    db_close_nosync(db);
    cr_assert_eq(io_fault_crash(io, seed, mode), STRATA_OK);
    io_close(io);
    return r;
}

/* Every write and sync point of the whole workload, then every commit
 * boundary, each in the three power-loss modes, each checked by verify.
 * Returns the number of points; *full gets the counts of a fault-free run. */
static inline long crash_every_point(const crash_workload *wl, crash_run *full) {
    *full = crash_run_workload(wl, -1, 0, wl->commits, 0, 1);
    cr_assert_eq(full->attempted, wl->commits);
    cr_assert_gt(full->writes, 0);
    long points = 0;
    for (int kind = FAULT_WRITE; kind <= FAULT_SYNC; kind++) {
        long total = kind == FAULT_WRITE ? full->writes : full->syncs;
        for (long n = 0; n < total; n++)
            for (int mode = 0; mode < 3; mode++) {
                crash_point pt = { kind == FAULT_WRITE ? "write" : "sync", n, mode,
                                   wl->seed_points + (uint64_t)kind * 1000003u + (uint64_t)n * 7u + (uint64_t)mode };
                crash_run r = crash_run_workload(wl, kind, n, wl->commits, mode, pt.seed);
                cr_assert_leq(r.attempted, wl->commits);
                wl->verify(wl->ctx, &pt, r.acked, r.attempted);
                points++;
            }
    }
    for (int stop = 0; stop <= wl->commits; stop++)   /* crash between commits */
        for (int mode = 0; mode < 3; mode++) {
            crash_point pt = { "boundary", stop, mode, wl->seed_boundaries + (uint64_t)stop * 7u + (uint64_t)mode };
            crash_run r = crash_run_workload(wl, -1, 0, stop, mode, pt.seed);
            cr_assert_eq(r.attempted, stop);
            wl->verify(wl->ctx, &pt, r.acked, r.attempted);
            points++;
        }
    return points;
}

#endif
