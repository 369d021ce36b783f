/* tests/db/test_direct.c - large values written through at put time
 * (BT_DIRECT_MIN and up go straight from the caller's buffer to their free
 * pages; the commit only syncs them): read back inside the writing transaction,
 * after commit and reopen, after abort, after a savepoint rollback, overwritten
 * and deleted in the transaction that wrote them, and a power loss between the
 * put and the commit. Every case ends with strata_check, which also finds
 * leaked or doubly used pages. */
#include <criterion/criterion.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "strata.h"
#include "btree.h"
#include "io.h"
#include "util.h"

int  db_open_backend(io_backend *io, unsigned flags, const strata_options *opts, strata_db **out);
void db_close_nosync(strata_db *db);

#define OK(x) do { int rc_ = (x); cr_assert_eq(rc_, STRATA_OK, "%s -> %s", #x, strata_strerror(rc_)); } while (0)

static char g_path[96];
static void setup(void) {
    snprintf(g_path, sizeof g_path, "/tmp/strata-direct-%d.db", (int)getpid());
    unlink(g_path);
}
static void teardown(void) { unlink(g_path); }
TestSuite(direct, .init = setup, .fini = teardown, .timeout = 120);

static uint8_t *make_val(size_t n, uint64_t seed) {
    uint8_t *v = malloc(n ? n : 1);
    cr_assert_not_null(v);
    uint64_t x = seed * 0x9E3779B97F4A7C15ull + 1;
    for (size_t i = 0; i < n; i++) {
        x ^= x << 13; x ^= x >> 7; x ^= x << 17;
        v[i] = (uint8_t)x;
    }
    return v;
}

static void expect_val(strata_table *t, uint64_t k, size_t n, uint64_t seed) {
    uint64_t kb;
    strata_slice v;
    OK(strata_get(t, U(&kb, k), &v));
    cr_assert_eq(v.len, n, "key %llu: length %zu, expected %zu", (unsigned long long)k, v.len, n);
    uint8_t *want = make_val(n, seed);
    cr_assert(memcmp(v.data, want, n) == 0, "key %llu: wrong bytes", (unsigned long long)k);
    free(want);
}

static void put_val(strata_table *t, uint64_t k, size_t n, uint64_t seed) {
    uint64_t kb;
    uint8_t *v = make_val(n, seed);
    OK(strata_put(t, U(&kb, k), (strata_slice){ v, n }));
    /* the caller's buffer is not kept: clobber it before anything reads */
    memset(v, 0xEE, n);
    free(v);
}

/* A write transaction on table "big" (flags: STRATA_CREATE or 0). */
static strata_table *begin_big(strata_db *db, strata_txn **w, unsigned flags) {
    strata_table *t;
    OK(strata_begin_write(db, w));
    OK(strata_table_open(*w, "big", STRATA_KEY_U64, flags, &t));
    return t;
}

static void check_db(strata_db *db) {
    strata_txn *r;
    OK(strata_begin_read(db, &r));
    OK(strata_check(r, NULL, NULL));
    strata_abort(r);
}

static const size_t g_sizes[] = { BT_DIRECT_MIN - 1, BT_DIRECT_MIN, BT_DIRECT_MIN + 1,
                                  3 * BT_DIRECT_MIN + 4093, (1u << 20) + 3, 5u << 20 };
enum { N_SIZES = sizeof g_sizes / sizeof g_sizes[0] };

Test(direct, read_in_txn_after_commit_and_after_reopen) {
    strata_db *db;
    OK(strata_open(g_path, STRATA_CREATE, &db));
    strata_txn *w;
    strata_table *t;
    t = begin_big(db, &w, STRATA_CREATE);
    for (size_t i = 0; i < N_SIZES; i++) put_val(t, i, g_sizes[i], 100 + i);
    for (size_t i = 0; i < N_SIZES; i++) expect_val(t, i, g_sizes[i], 100 + i);   /* own writes */
    OK(strata_commit(w));
    check_db(db);
    strata_close(db);
    OK(strata_open(g_path, 0, &db));
    strata_txn *r;
    OK(strata_begin_read(db, &r));
    OK(strata_table_open(r, "big", STRATA_KEY_U64, 0, &t));
    for (size_t i = 0; i < N_SIZES; i++) expect_val(t, i, g_sizes[i], 100 + i);
    strata_abort(r);
    check_db(db);
    strata_close(db);
}

Test(direct, abort_leaves_nothing_and_space_is_reused) {
    strata_db *db;
    OK(strata_open(g_path, STRATA_CREATE, &db));
    strata_txn *w;
    strata_table *t;
    t = begin_big(db, &w, STRATA_CREATE);
    put_val(t, 1, 300000, 1);
    OK(strata_commit(w));
    strata_info before;
    OK(strata_db_info(db, &before));
    for (int round = 0; round < 3; round++) {
        t = begin_big(db, &w, 0);
        put_val(t, 2, 2u << 20, 7);
        put_val(t, 1, 400000, 8);
        expect_val(t, 2, 2u << 20, 7);
        strata_abort(w);
    }
    strata_info after;
    OK(strata_db_info(db, &after));
    cr_assert_eq(after.page_count, before.page_count, "aborted writes grew the page count");
    strata_txn *r;
    OK(strata_begin_read(db, &r));
    OK(strata_table_open(r, "big", STRATA_KEY_U64, 0, &t));
    uint64_t kb;
    strata_slice v;
    cr_assert_eq(strata_get(t, U(&kb, 2), &v), STRATA_NOTFOUND);
    expect_val(t, 1, 300000, 1);
    strata_abort(r);
    check_db(db);
    strata_close(db);
}

Test(direct, savepoint_rollback_undoes_only_later_puts) {
    strata_db *db;
    OK(strata_open(g_path, STRATA_CREATE, &db));
    strata_txn *w;
    strata_table *t;
    t = begin_big(db, &w, STRATA_CREATE);
    put_val(t, 1, 200000, 1);
    strata_savepoint *sp;
    OK(strata_savepoint_create(w, &sp));
    put_val(t, 2, 700000, 2);
    put_val(t, 1, 90000, 3);                    /* overwrite the earlier one */
    OK(strata_savepoint_rollback(w, sp));
    put_val(t, 3, 150000, 4);                   /* reuses the rolled-back space */
    expect_val(t, 1, 200000, 1);
    expect_val(t, 3, 150000, 4);
    uint64_t kb;
    strata_slice v;
    cr_assert_eq(strata_get(t, U(&kb, 2), &v), STRATA_NOTFOUND);
    strata_savepoint_release(sp);
    OK(strata_commit(w));
    check_db(db);
    strata_close(db);
}

Test(direct, overwrite_and_delete_in_the_writing_txn) {
    strata_db *db;
    OK(strata_open(g_path, STRATA_CREATE, &db));
    strata_txn *w;
    strata_table *t;
    t = begin_big(db, &w, STRATA_CREATE);
    for (int i = 0; i < 8; i++) put_val(t, 1, 100000 + (size_t)i * 50000, (uint64_t)i);
    put_val(t, 2, 1u << 20, 20);
    uint64_t kb;
    OK(strata_del(t, U(&kb, 2)));
    put_val(t, 3, 100, 30);                     /* a small value after them */
    expect_val(t, 1, 100000 + 7 * 50000, 7);
    OK(strata_commit(w));
    check_db(db);
    /* the freed runs come back: the next commits reuse them */
    strata_info a, b;
    OK(strata_db_info(db, &a));
    for (int i = 0; i < 4; i++) {
        t = begin_big(db, &w, 0);
        put_val(t, 1, 400000, 40 + (uint64_t)i);
        OK(strata_commit(w));
    }
    OK(strata_db_info(db, &b));
    cr_assert_leq(b.page_count, a.page_count + 2 * (400000 / 4096 + 2),
                  "freed runs not reused: %llu -> %llu pages", (unsigned long long)a.page_count,
                  (unsigned long long)b.page_count);
    check_db(db);
    strata_close(db);
}

/* A value overwritten many times in the transaction that wrote it: each
 * freed run is reusable at once, so the file holds about two copies, not one
 * per overwrite. */
Test(direct, overwrites_in_one_txn_reuse_their_pages) {
    strata_db *db;
    OK(strata_open(g_path, STRATA_CREATE, &db));
    strata_txn *w;
    strata_table *t;
    t = begin_big(db, &w, STRATA_CREATE);
    OK(strata_commit(w));
    strata_info a, b;
    OK(strata_db_info(db, &a));
    t = begin_big(db, &w, 0);
    enum { VLEN = 200000, ROUNDS = 40 };
    for (int i = 0; i < ROUNDS; i++) put_val(t, 1, VLEN, 50 + (uint64_t)i);
    expect_val(t, 1, VLEN, 50 + ROUNDS - 1);
    OK(strata_commit(w));
    OK(strata_db_info(db, &b));
    uint64_t run = (VLEN + 4095) / 4096;
    cr_assert_leq(b.page_count, a.page_count + 3 * run + 16,
                  "%d overwrites grew the file by %llu pages (one copy: %llu)", ROUNDS,
                  (unsigned long long)(b.page_count - a.page_count), (unsigned long long)run);
    check_db(db);
    strata_close(db);
}

/* A database on the fault-injecting backend with key 1 = a vlen-byte value
 * (seed 1) committed, and a write transaction open on table "big". */
static strata_db *faulty_with_one_commit(io_backend **io, size_t vlen, strata_txn **w,
                                         strata_table **t) {
    io_backend *inner;
    strata_db *db;
    OK(io_file_open(g_path, IO_OPEN_CREATE, &inner));
    OK(io_fault_wrap(inner, io));
    OK(db_open_backend(*io, STRATA_CREATE, NULL, &db));
    *t = begin_big(db, w, STRATA_CREATE);
    put_val(*t, 1, vlen, 1);
    OK(strata_commit(*w));
    *t = begin_big(db, w, 0);
    return db;
}

/* Power loss after the value's pages were written but before the commit: the
 * reopened database is the previous commit, checked clean; power loss after
 * the commit returned: the value is there. */
Test(direct, power_loss_before_and_after_commit) {
    for (int committed = 0; committed < 2; committed++) {
        for (int mode = 0; mode < 3; mode++) {
            unlink(g_path);
            io_backend *io;
            strata_txn *w;
            strata_table *t;
            strata_db *db = faulty_with_one_commit(&io, 250000, &w, &t);
            put_val(t, 1, 600000, 2);
            put_val(t, 2, 3u << 20, 3);
            if (committed) OK(strata_commit(w));
            else strata_abort(w);            /* nothing reaches the header */
            db_close_nosync(db);
            OK(io_fault_crash(io, 99 + (uint64_t)mode, mode));
            io_close(io);
            OK(strata_open(g_path, 0, &db));
            strata_txn *r;
            OK(strata_begin_read(db, &r));
            OK(strata_check(r, NULL, NULL));
            OK(strata_table_open(r, "big", STRATA_KEY_U64, 0, &t));
            uint64_t kb;
            strata_slice v;
            if (committed) {
                expect_val(t, 1, 600000, 2);
                expect_val(t, 2, 3u << 20, 3);
            } else {
                expect_val(t, 1, 250000, 1);
                cr_assert_eq(strata_get(t, U(&kb, 2), &v), STRATA_NOTFOUND);
            }
            strata_abort(r);
            strata_close(db);
        }
    }
}

/* A failed write-through fails the put with the I/O error; the transaction
 * can only abort, and the database keeps its last commit. */
Test(direct, failed_write_fails_the_put_cleanly) {
    io_backend *io;
    strata_txn *w;
    strata_table *t;
    strata_db *db = faulty_with_one_commit(&io, 100000, &w, &t);
    io_fault_arm(io, FAULT_WRITE, 0, STRATA_EIO, 0);
    uint64_t kb;
    uint8_t *v = make_val(200000, 5);
    int rc = strata_put(t, U(&kb, 2), (strata_slice){ v, 200000 });
    free(v);
    io_fault_disarm(io);
    cr_assert_eq(rc, STRATA_EIO, "put: %s", strata_strerror(rc));
    cr_assert_neq(strata_commit(w), STRATA_OK, "a poisoned transaction committed");
    strata_txn *r;
    OK(strata_begin_read(db, &r));
    OK(strata_table_open(r, "big", STRATA_KEY_U64, 0, &t));
    expect_val(t, 1, 100000, 1);
    strata_slice sv;
    cr_assert_eq(strata_get(t, U(&kb, 2), &sv), STRATA_NOTFOUND);
    OK(strata_check(r, NULL, NULL));
    strata_abort(r);
    strata_close(db);
    io_close(io);
}
