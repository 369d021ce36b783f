/* tests/db/test_corrupt.c - damaged files: a flipped byte in any page is found
 * (STRATA_ECORRUPT), never a crash or a silent wrong answer; truncated files,
 * wrong magic and unknown versions get their documented codes. */
#include <criterion/criterion.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "strata.h"

#define OK(x) cr_assert_eq((x), STRATA_OK, "%s -> %s", #x, strata_strerror(x))

static char g_src[64], g_dst[64];

static void setup(void) {
    snprintf(g_src, sizeof g_src, "/tmp/strata-corrupt-src-%d.db", (int)getpid());
    snprintf(g_dst, sizeof g_dst, "/tmp/strata-corrupt-dst-%d.db", (int)getpid());
    unlink(g_src);
    unlink(g_dst);
}
static void teardown(void) { unlink(g_src); unlink(g_dst); }
TestSuite(corrupt, .init = setup, .fini = teardown);

/* One commit into a fresh file: every page below the page count is in use. */
static uint64_t make_db(void) {
    strata_db *db;
    OK(strata_open(g_src, STRATA_CREATE, &db));
    strata_txn *w;
    OK(strata_begin_write(db, &w));
    strata_table *a, *b;
    OK(strata_table_open(w, "a", STRATA_KEY_U64, STRATA_CREATE, &a));
    OK(strata_table_open(w, "b", STRATA_KEY_BYTES, STRATA_CREATE, &b));
    char val[8192];
    for (uint64_t i = 0; i < 600; i++) {
        memset(val, (int)(i & 0xFF), sizeof val);
        OK(strata_put(a, (strata_slice){ &i, 8 }, (strata_slice){ val, 40 + i % 60 }));
    }
    for (int i = 0; i < 3; i++) {
        char k[8];
        snprintf(k, sizeof k, "big%d", i);
        memset(val, 'A' + i, sizeof val);
        OK(strata_put(b, (strata_slice){ k, strlen(k) }, (strata_slice){ val, sizeof val }));
    }
    OK(strata_commit(w));
    strata_info in;
    OK(strata_db_info(db, &in));
    strata_close(db);
    return in.page_count;
}

static void copy_file(const char *from, const char *to) {
    FILE *f = fopen(from, "rb"), *g = fopen(to, "wb");
    cr_assert(f && g);
    char buf[65536];
    size_t n;
    while ((n = fread(buf, 1, sizeof buf, f)) > 0) cr_assert_eq(fwrite(buf, 1, n, g), n);
    fclose(f);
    fclose(g);
}

static void flip(const char *path, long off) {
    FILE *f = fopen(path, "r+b");
    cr_assert_not_null(f);
    fseek(f, off, SEEK_SET);
    int c = fgetc(f);
    fseek(f, off, SEEK_SET);
    fputc(c ^ 0x5A, f);
    fclose(f);
}

/* Read everything; returns the first error, or STRATA_OK. */
static int read_all(strata_db *db) {
    strata_txn *r;
    int rc = strata_begin_read(db, &r);
    if (rc) return rc;
    const char *names[] = { "a", "b" };
    strata_key_type kts[] = { STRATA_KEY_U64, STRATA_KEY_BYTES };
    for (int i = 0; i < 2 && rc == STRATA_OK; i++) {
        strata_table *t;
        strata_cursor *c;
        if ((rc = strata_table_open(r, names[i], kts[i], 0, &t)) || (rc = strata_cursor_open(t, &c))) break;
        int m;
        for (m = strata_cursor_first(c); m == STRATA_OK; m = strata_cursor_next(c)) {
            strata_slice k, v;
            if ((m = strata_cursor_get(c, &k, &v))) break;
        }
        if (m != STRATA_NOTFOUND) rc = m;
    }
    if (rc == STRATA_OK) rc = strata_check(r, NULL, NULL);
    strata_abort(r);
    return rc;
}

Test(corrupt, flipped_byte_in_every_page_is_detected) {
    uint64_t pages = make_db();
    cr_assert_gt(pages, 10);
    long offs[] = { 0, 2, 9, 200, 4095 };
    int detected = 0, total = 0;
    for (uint64_t pg = 1; pg < pages; pg++) {
        for (size_t o = 0; o < sizeof offs / sizeof offs[0]; o++) {
            copy_file(g_src, g_dst);
            flip(g_dst, (long)pg * 4096 + offs[o]);
            strata_db *db;
            int rc = strata_open(g_dst, 0, &db);
            if (rc == STRATA_OK) {
                rc = read_all(db);
                strata_close(db);
            }
            total++;
            cr_assert_eq(rc, STRATA_ECORRUPT, "page %llu offset %ld: %s", (unsigned long long)pg,
                         offs[o], strata_strerror(rc));
            detected++;
        }
    }
    cr_assert_eq(detected, total);
}

Test(corrupt, header_damage) {
    make_db();
    strata_db *db;
    copy_file(g_src, g_dst);
    flip(g_dst, 3);                                  /* magic */
    cr_assert_eq(strata_open(g_dst, 0, &db), STRATA_ECORRUPT);
    copy_file(g_src, g_dst);
    flip(g_dst, 8);                                  /* format version */
    cr_assert_eq(strata_open(g_dst, 0, &db), STRATA_EVERSION);
    copy_file(g_src, g_dst);
    flip(g_dst, 12 + 1);                             /* page size */
    cr_assert_eq(strata_open(g_dst, 0, &db), STRATA_ECORRUPT);
    /* both commit slots damaged: nothing to fall back to */
    copy_file(g_src, g_dst);
    flip(g_dst, 64 + 5);
    flip(g_dst, 192 + 5);
    cr_assert_eq(strata_open(g_dst, 0, &db), STRATA_ECORRUPT);
    /* the newest slot damaged: the previous commit (here: the empty database) */
    copy_file(g_src, g_dst);
    FILE *f = fopen(g_dst, "rb");
    fseek(f, 16, SEEK_SET);
    int god = fgetc(f);
    fclose(f);
    flip(g_dst, (god & 1) ? 192 + 20 : 64 + 20);
    OK(strata_open(g_dst, 0, &db));
    strata_info in;
    OK(strata_db_info(db, &in));
    cr_assert_eq(in.recovered, 1);
    cr_assert_eq(in.last_txn_id, 1);
    strata_close(db);
}

Test(corrupt, truncated_file) {
    uint64_t pages = make_db();
    long sizes[] = { 0, 1, 100, 511, 4095, 4096, 8192, (long)(pages - 1) * 4096 };
    for (size_t i = 0; i < sizeof sizes / sizeof sizes[0]; i++) {
        copy_file(g_src, g_dst);
        cr_assert_eq(truncate(g_dst, sizes[i]), 0);
        strata_db *db;
        int rc = strata_open(g_dst, 0, &db);
        if (sizes[i] == 0) {                          /* an empty file is not a database */
            cr_assert_eq(rc, STRATA_ECORRUPT, "size 0: %s", strata_strerror(rc));
            continue;
        }
        if (rc == STRATA_OK) {                        /* fell back to the empty first commit */
            strata_info in;
            OK(strata_db_info(db, &in));
            cr_assert_eq(in.recovered, 1, "size %ld opened without recovery", sizes[i]);
            cr_assert_eq(in.last_txn_id, 1);
            strata_close(db);
        } else {
            cr_assert_eq(rc, STRATA_ECORRUPT, "size %ld: %s", sizes[i], strata_strerror(rc));
        }
    }
}

Test(corrupt, garbage_file) {
    FILE *f = fopen(g_dst, "wb");
    for (int i = 0; i < 20000; i++) fputc((i * 7919) & 0xFF, f);
    fclose(f);
    strata_db *db;
    cr_assert_eq(strata_open(g_dst, 0, &db), STRATA_ECORRUPT);
}

static void report_count(void *ctx, const char *msg) { (void)msg; (*(int *)ctx)++; }

Test(corrupt, salvage_recovers_every_readable_entry) {
    uint64_t pages = make_db();
    /* find a leaf of table a by flipping pages until a read of "a" fails */
    uint64_t victim = 0;
    for (uint64_t pg = pages - 1; pg >= 1 && !victim; pg--) {
        copy_file(g_src, g_dst);
        flip(g_dst, (long)pg * 4096 + 4095);
        strata_db *db;
        if (strata_open(g_dst, 0, &db)) continue;
        strata_txn *r;
        strata_table *t;
        OK(strata_begin_read(db, &r));
        int rc = strata_table_open(r, "a", STRATA_KEY_U64, 0, &t);
        if (rc == STRATA_OK) {
            uint64_t k = 599;
            strata_slice v;
            rc = strata_get(t, (strata_slice){ &k, 8 }, &v);      /* the last leaf of a */
        }
        strata_abort(r);
        strata_close(db);
        if (rc == STRATA_ECORRUPT) victim = pg;
    }
    cr_assert_neq(victim, 0, "no leaf of table a found");
    char out[80];
    snprintf(out, sizeof out, "%s.salvaged", g_dst);
    unlink(out);
    strata_salvage_stats st;
    int reports = 0;
    OK(strata_salvage(g_dst, out, &st, report_count, &reports));
    cr_assert_eq(st.tables, 2);
    cr_assert_eq(st.lost_pages, 1);
    cr_assert_geq(reports, 1);
    cr_assert(st.entries < 603 && st.entries > 500, "entries %llu", (unsigned long long)st.entries);
    strata_db *db;
    OK(strata_open(out, 0, &db));
    strata_txn *r;
    strata_table *t;
    OK(strata_begin_read(db, &r));
    OK(strata_check(r, NULL, NULL));
    OK(strata_table_open(r, "b", STRATA_KEY_BYTES, 0, &t));
    strata_slice v;
    OK(strata_get(t, (strata_slice){ "big1", 4 }, &v));
    cr_assert_eq(v.len, 8192);
    strata_abort(r);
    strata_close(db);
    cr_assert_eq(strata_salvage(g_dst, out, &st, NULL, NULL), STRATA_EEXIST);
    unlink(out);
}

Test(corrupt, online_backup_is_consistent_while_writing) {
    make_db();
    strata_db *db;
    OK(strata_open(g_src, 0, &db));
    char out[80];
    snprintf(out, sizeof out, "%s.backup", g_dst);
    unlink(out);
    strata_txn *w;
    strata_table *t;
    OK(strata_begin_write(db, &w));                       /* a writer in progress */
    OK(strata_table_open(w, "a", STRATA_KEY_U64, 0, &t));
    uint64_t k = 100000;
    OK(strata_put(t, (strata_slice){ &k, 8 }, (strata_slice){ "new", 3 }));
    OK(strata_backup(db, out));
    OK(strata_commit(w));
    cr_assert_eq(strata_backup(db, out), STRATA_EEXIST);
    strata_close(db);
    OK(strata_open(out, 0, &db));
    strata_txn *r;
    OK(strata_begin_read(db, &r));
    OK(strata_check(r, NULL, NULL));
    OK(strata_table_open(r, "a", STRATA_KEY_U64, 0, &t));
    uint64_t n;
    OK(strata_len(t, &n));
    cr_assert_eq(n, 600, "the backup holds the snapshot, not the later commit");
    strata_abort(r);
    strata_close(db);
    unlink(out);
}
