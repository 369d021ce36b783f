/* tests/db/test_cdc_crash.c - a change record and its data commit together or
 * not at all: a workload of durable commits on a CDC table is cut by a write
 * failure at every write point in turn, followed by a simulated power loss
 * (unsynced writes dropped, kept or torn); after reopen the data and the log
 * agree, hold whole transactions only, and include every acknowledged commit. */
#include <criterion/criterion.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

#include "db_int.h"

enum { COMMITS = 12, PER = 5 };

static char g_path[64];

static int run_workload(strata_db *db) {
    int acked = 0;
    strata_table_spec spec = { STRATA_KEY_BYTES, NULL };
    for (int c = 0; c < COMMITS; c++) {
        strata_txn *w;
        strata_table *t;
        if (strata_begin_write(db, &w)) break;
        int rc = strata_table_open_ex(w, "t", &spec, STRATA_CREATE | STRATA_CDC, &t);
        char k[16], v[600];
        memset(v, 'a' + c, sizeof v);
        for (int i = 0; rc == STRATA_OK && i < PER; i++) {
            snprintf(k, sizeof k, "c%02d-%d", c, i);
            rc = strata_put(t, (strata_slice){ k, strlen(k) }, (strata_slice){ v, 100 + (size_t)i * 100 });
        }
        if (rc) { strata_abort(w); break; }
        if (strata_commit(w) != STRATA_OK) break;
        acked++;
    }
    return acked;
}

static int count_changes(void *ctx, const strata_change *c) {
    (void)c;
    (*(uint64_t *)ctx)++;
    return 0;
}

Test(cdc_crash, change_log_and_data_commit_together) {
    snprintf(g_path, sizeof g_path, "/tmp/strata-cdccrash-%d.db", (int)getpid());
    long total_writes = -1, points = 0;
    for (long n = 0;; n++) {
        unlink(g_path);
        io_backend *in, *io;
        cr_assert_eq(io_file_open(g_path, IO_OPEN_CREATE, &in), STRATA_OK);
        cr_assert_eq(io_fault_wrap(in, &io), STRATA_OK);
        strata_db *db;
        cr_assert_eq(db_open_backend(io, STRATA_CREATE, NULL, &db), STRATA_OK);
        long base = io_fault_count(io, FAULT_WRITE);
        io_fault_arm(io, FAULT_WRITE, n, STRATA_EIO, 1);
        int acked = run_workload(db);
        if (total_writes < 0 && acked == COMMITS) total_writes = io_fault_count(io, FAULT_WRITE) - base;
        db_close_nosync(db);
        cr_assert_eq(io_fault_crash(io, (uint64_t)n * 7919 + 1, (int)(n % 3)), STRATA_OK);
        io_close(io);
        cr_assert_eq(strata_open(g_path, 0, &db), STRATA_OK, "n=%ld: reopen failed", n);
        strata_txn *r;
        cr_assert_eq(strata_begin_read(db, &r), STRATA_OK);
        strata_table *t;
        uint64_t data = 0, changes = 0;
        strata_table_spec spec = { STRATA_KEY_BYTES, NULL };
        int rc = strata_table_open_ex(r, "t", &spec, 0, &t);
        if (rc == STRATA_OK) cr_assert_eq(strata_len(t, &data), STRATA_OK);
        else cr_assert_eq(rc, STRATA_NOTFOUND);
        cr_assert_eq(strata_cdc_read(r, NULL, 0, count_changes, &changes, NULL), STRATA_OK);
        cr_assert_eq(data, changes, "n=%ld: %llu entries but %llu change records", n,
                     (unsigned long long)data, (unsigned long long)changes);
        cr_assert_eq(data % PER, 0, "n=%ld: a partial transaction is visible", n);
        cr_assert_geq(data, (uint64_t)acked * PER, "n=%ld: an acknowledged commit was lost", n);
        cr_assert_eq(strata_check(r, NULL, NULL), STRATA_OK, "n=%ld", n);
        strata_abort(r);
        strata_close(db);
        points++;
        if (acked == COMMITS) break;
    }
    unlink(g_path);
    cr_assert_gt(points, COMMITS, "too few crash points: %ld", points);
    printf("cdc crash points covered: %ld (workload writes: %ld)\n", points, total_writes);
    fflush(stdout);
}
