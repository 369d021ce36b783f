/* tests/db/test_storage4.c - review findings in the durability paths: online
 * backup racing compaction. */
#include <criterion/criterion.h>
#include <errno.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <unistd.h>

#include "strata.h"
#include "btree_int.h"
#include "catalog.h"
#include "pager.h"
#include "util.h"

#define OK(x) cr_assert_eq((x), STRATA_OK, "%s", #x)

/* strata_backup copies with pwrite (the pager uses pwritev): this hook runs a
 * compaction in the middle of the copy, deterministically. */
static strata_db *g_hook_db;
static uint64_t g_hook_after;
static int g_hook_ran;

ssize_t pwrite(int fd, const void *buf, size_t n, off_t off) {
    if (g_hook_db && off > 0 && !g_hook_ran) {
        g_hook_ran = 1;
        uint64_t before;
        cr_assert_eq(strata_compact(g_hook_db, &before, &g_hook_after), STRATA_OK);
    }
    return syscall(SYS_pwrite64, fd, buf, n, off);
}

/* Fail the first ftruncate that would shrink the file: strata_compact then
 * stops after its first round's commit, before it truncates. */
static int g_fail_shrink;

int ftruncate(int fd, off_t len) {
    struct stat st;
    if (g_fail_shrink && fstat(fd, &st) == 0 && len < st.st_size) {
        g_fail_shrink = 0;
        errno = EIO;
        return -1;
    }
    return (int)syscall(SYS_ftruncate, fd, len);
}

static void fill(strata_db *db, const char *name, int n, size_t vlen) {
    strata_txn *w;
    strata_table *t;
    char *v = malloc(vlen);
    cr_assert(v);
    OK(strata_begin_write(db, &w));
    OK(strata_table_open(w, name, STRATA_KEY_U64, STRATA_CREATE, &t));
    for (int i = 0; i < n; i++) {
        uint64_t kb;
        memset(v, 'a' + i % 26, vlen);
        OK(strata_put(t, U(&kb, (uint64_t)i), (strata_slice){ v, vlen }));
    }
    OK(strata_commit(w));
    free(v);
}

static void drop(strata_db *db, const char *name) {
    strata_txn *w;
    OK(strata_begin_write(db, &w));
    OK(strata_table_drop(w, name));
    OK(strata_commit(w));
}

/* Create an empty file named after the mkstemp pattern path (rewritten). */
static void make_temp(char *path) {
    int fd = mkstemp(path);
    cr_assert(fd >= 0);
    close(fd);
}

/* The backup's snapshot ends in free pages (a dropped table at the end of the
 * file, left there by a first compaction round whose truncation failed). A
 * compaction while the copy runs (both are "any thread") truncated them: they
 * are free in that snapshot, but the backup copies every page below its page
 * count from the map, so its pwrite from past the end of the file failed
 * (EFAULT: STRATA_EIO, and no backup; a plain read there is SIGBUS). */
Test(storage4, backup_while_compaction_truncates_the_file) {
    char path[] = "/tmp/strata-storage4-XXXXXX";
    make_temp(path);
    unlink(path);
    char out[64];
    snprintf(out, sizeof out, "%s.backup", path);
    strata_db *db;
    OK(strata_open(path, STRATA_CREATE, &db));
    fill(db, "keep", 50, 100);
    fill(db, "big", 100, 16384);
    drop(db, "big");
    fill(db, "small2", 3, 10);
    g_fail_shrink = 1;
    cr_assert_eq(strata_compact(db, NULL, NULL), STRATA_EIO);
    strata_info in;
    OK(strata_db_info(db, &in));
    g_hook_db = db;
    int rc = strata_backup(db, out);
    g_hook_db = NULL;
    cr_assert(g_hook_ran);
    cr_log_info("snapshot %llu pages, file %llu pages after the compaction in the copy",
                (unsigned long long)in.page_count, (unsigned long long)(g_hook_after / in.page_size));
    OK(rc);
    cr_assert_geq(g_hook_after, in.page_count * in.page_size, "the backup's pages stay in the file");
    uint64_t before, after;                       /* without the backup it shrinks */
    OK(strata_compact(db, &before, &after));
    cr_assert_lt(after, in.page_count * in.page_size / 4);
    strata_close(db);
    OK(strata_open(out, 0, &db));
    strata_txn *r;
    OK(strata_begin_read(db, &r));
    OK(strata_check(r, NULL, NULL));
    strata_table *t;
    OK(strata_table_open(r, "small2", STRATA_KEY_U64, 0, &t));
    uint64_t n;
    OK(strata_len(t, &n));
    cr_assert_eq(n, 3);
    strata_abort(r);
    strata_close(db);
    unlink(out);
    unlink(path);
}

/* Salvage created its output with the default 4 KiB pages. A key longer than
 * a 4 KiB page allows (987 bytes) but valid in the source's larger pages made
 * bt_put fail with STRATA_ETOOBIG, which salvage ignored: the entry was
 * neither copied nor counted lost, and salvage returned STRATA_OK. */
Test(storage4, salvage_keeps_the_page_size_and_every_entry) {
    char path[] = "/tmp/strata-storage4-XXXXXX";
    make_temp(path);
    unlink(path);
    char out[64];
    snprintf(out, sizeof out, "%s.salvaged", path);
    strata_options o = { .page_size = 16384 };
    strata_db *db;
    OK(strata_open_ex(path, STRATA_CREATE, &o, &db));
    strata_txn *w;
    strata_table *t;
    OK(strata_begin_write(db, &w));
    OK(strata_table_open(w, "k", STRATA_KEY_BYTES, STRATA_CREATE, &t));
    static char key[3000];
    for (int i = 0; i < 20; i++) {
        memset(key, 'a' + i, sizeof key);
        OK(strata_put(t, (strata_slice){ key, i % 2 ? sizeof key : 10 }, S("v")));
    }
    OK(strata_commit(w));
    strata_close(db);
    strata_salvage_stats st;
    OK(strata_salvage(path, out, &st, NULL, NULL));
    cr_assert_eq(st.tables, 1);
    cr_assert_eq(st.lost_pages, 0);
    cr_assert_eq(st.entries, 20, "entries copied: %llu of 20", (unsigned long long)st.entries);
    OK(strata_open(out, 0, &db));
    strata_info in;
    OK(strata_db_info(db, &in));
    cr_assert_eq(in.page_size, 16384);
    strata_txn *r;
    OK(strata_begin_read(db, &r));
    OK(strata_check(r, NULL, NULL));
    OK(strata_table_open(r, "k", STRATA_KEY_BYTES, 0, &t));
    uint64_t n;
    OK(strata_len(t, &n));
    cr_assert_eq(n, 20);
    strata_slice v;
    memset(key, 'b', sizeof key);
    OK(strata_get(t, (strata_slice){ key, sizeof key }, &v));
    strata_abort(r);
    strata_close(db);
    unlink(out);
    unlink(path);
}

/* A crafted image whose checksums are all valid (any bytes are allowed, and
 * xxh3 is no defence against a crafted file): table "t" is a chain of DEPTH
 * branch pages, each of whose FAN cells points to the next page, over one
 * leaf. Not closed cleanly, so open verifies the commit. The recovery walk
 * followed every cell: FAN^DEPTH visits, open never returned. A page reached
 * twice is damage (every page has one parent): STRATA_ECORRUPT at once. */
enum { DEPTH = 12, FAN = 60, PS = 4096 };

static void put_page(FILE *f, pgno_t pg, const uint8_t *buf) {
    cr_assert_eq(fseek(f, (long)(pg * PS), SEEK_SET), 0);
    cr_assert_eq(fwrite(buf, PS, 1, f), 1);
}

/* The end of a crafted image: a catalog leaf (page 1) naming table "t"
 * (u64 keys, root page 2 with checksum root_ck, `entries` entries) and the
 * header with slot 0 (txn 2, page_count pages, god byte god); closes f. */
static void finish_image(FILE *f, ck128 root_ck, uint64_t entries, pgno_t page_count, uint8_t god) {
    static uint8_t page[PS];
    cat_desc d = { .key_type = 1, .root = 2, .root_ck = root_ck, .count = entries };
    uint8_t dv[CAT_DESC_FIXED + CAT_CMP_MAX], cc[LC_HDR + 1 + sizeof dv];
    size_t dl = cat_desc_encode(&d, dv);
    le16_put(cc + LC_OFF_KLEN, 1);
    le32_put(cc + LC_OFF_VLEN, (uint32_t)dl);
    cc[LC_OFF_FLAGS] = 0;
    cc[LC_HDR] = 't';
    memcpy(cc + LC_HDR + 1, dv, dl);
    cellref c = { cc, (uint32_t)(LC_HDR + 1 + dl) };
    node_build(page, PT_LEAF, 2, PS, &c, 1);             /* the catalog */
    put_page(f, 1, page);
    pg_state st = { .txnid = 2, .cat_root = 1, .cat_ck = ck_compute(page, PS), .page_count = page_count };
    memset(page, 0, PS);
    memcpy(page + HDR_OFF_MAGIC, STRATA_MAGIC, 8);
    le32_put(page + HDR_OFF_VERSION, STRATA_FORMAT_VERSION);
    le32_put(page + HDR_OFF_PAGE_SIZE, PS);
    page[HDR_OFF_GOD] = god;                             /* slot 0 */
    pager_slot_encode(page + HDR_OFF_SLOT0, &st, PS);
    put_page(f, 0, page);
    cr_assert_eq(fclose(f), 0);
}

static void write_dag_image(const char *path, uint8_t god) {
    FILE *f = fopen(path, "wb");
    cr_assert(f);
    static uint8_t page[PS], cells[FAN][BC_HDR + 8];
    cellref refs[FAN];
    pgno_t leaf = 2 + DEPTH, count = leaf + 1;
    /* the leaf: one entry, u64 key 0 */
    uint8_t lc[LC_HDR + 8 + 1] = { 0 };
    le16_put(lc + LC_OFF_KLEN, 8);
    le32_put(lc + LC_OFF_VLEN, 1);
    lc[LC_HDR + 8] = 'x';
    cellref l = { lc, sizeof lc };
    node_build(page, PT_LEAF, 2, PS, &l, 1);
    put_page(f, leaf, page);
    ck128 ck = ck_compute(page, PS);
    for (pgno_t pg = leaf - 1; pg >= 2; pg--) {          /* branches, bottom up */
        for (unsigned i = 0; i < FAN; i++) {
            le64_put(cells[i] + BC_OFF_CHILD, pg + 1);
            ck_put(cells[i] + BC_OFF_CK, ck);
            le16_put(cells[i] + BC_OFF_KLEN, i ? 8 : 0);
            le64_put(cells[i] + BC_HDR, i);
            refs[i] = (cellref){ cells[i], i ? BC_HDR + 8 : BC_HDR };
        }
        node_build(page, PT_BRANCH, 2, PS, refs, FAN);
        put_page(f, pg, page);
        ck = ck_compute(page, PS);
    }
    finish_image(f, ck, 1, count, god);
}

Test(storage4, recovery_walk_of_a_shared_subtree_is_corrupt_not_a_hang) {
    char path[] = "/tmp/strata-storage4-XXXXXX";
    make_temp(path);
    write_dag_image(path, GOD_DIRTY);                    /* not closed cleanly */
    alarm(20);                                   /* a hang fails the test */
    strata_db *db = NULL;
    int rc = strata_open(path, 0, &db);
    alarm(0);
    cr_assert_eq(rc, STRATA_ECORRUPT, "open: %d", rc);
    unlink(path);
}

/* The same image closed cleanly: salvage copied the shared subtree once per
 * path to it (FAN^DEPTH times). A page reached twice now counts as lost. */
Test(storage4, salvage_of_a_shared_subtree_is_not_a_hang) {
    char path[] = "/tmp/strata-storage4-XXXXXX";
    make_temp(path);
    write_dag_image(path, 0);
    char out[64];
    snprintf(out, sizeof out, "%s.salvaged", path);
    strata_salvage_stats st;
    alarm(20);                                   /* a hang fails the test */
    OK(strata_salvage(path, out, &st, NULL, NULL));
    alarm(0);
    cr_assert_eq(st.tables, 1);
    cr_assert_eq(st.entries, 1);
    cr_assert_eq(st.lost_pages, (uint64_t)DEPTH * (FAN - 1), "lost %llu", (unsigned long long)st.lost_pages);
    strata_db *db;
    OK(strata_open(out, 0, &db));
    strata_txn *r;
    OK(strata_begin_read(db, &r));
    OK(strata_check(r, NULL, NULL));
    strata_abort(r);
    strata_close(db);
    unlink(out);
    unlink(path);
}

/* The same image closed cleanly: dropping the table walked the shared subtree
 * once per path (and would have freed its pages again and again), and so did
 * compaction's relocation. Both now see the second visit: STRATA_ECORRUPT at
 * once, and the database is left as it was. */
Test(storage4, drop_and_compact_of_a_shared_subtree_are_corrupt_not_a_hang) {
    char path[] = "/tmp/strata-storage4-XXXXXX";
    make_temp(path);
    write_dag_image(path, 0);
    strata_db *db;
    OK(strata_open(path, 0, &db));
    strata_txn *w;
    OK(strata_begin_write(db, &w));
    alarm(20);                                   /* a hang fails the test */
    int rc = strata_table_drop(w, "t");
    alarm(0);
    cr_assert_eq(rc, STRATA_ECORRUPT, "drop: %d", rc);
    strata_abort(w);
    uint64_t before, after;
    alarm(20);
    rc = strata_compact(db, &before, &after);
    alarm(0);
    cr_assert_eq(rc, STRATA_ECORRUPT, "compact: %d", rc);
    strata_txn *r;                               /* the table is still there */
    OK(strata_begin_read(db, &r));
    strata_table *t;
    OK(strata_table_open(r, "t", STRATA_KEY_U64, 0, &t));
    strata_abort(r);
    strata_close(db);
    unlink(path);
}

/* A crafted image (valid checksums): table "t" is one leaf whose two cells
 * (u64 keys 0 and 1) both point to the same two-page overflow run (pages 3
 * and 4). Dropping the table freed the run twice: the free list then held
 * pages 3 and 4 twice, and two later allocations could get the same page. A
 * run reached twice is damage like a page reached twice: STRATA_ECORRUPT. */
static void write_shared_run_image(const char *path) {
    FILE *f = fopen(path, "wb");
    cr_assert(f);
    static uint8_t page[PS], run[2 * PS];
    enum { VLEN = PS + 100 };
    memset(run, 'v', VLEN);
    put_page(f, 3, run);
    put_page(f, 4, run + PS);
    ck128 vck = ck_compute(run, VLEN);
    uint8_t lc[2][LC_HDR + 8 + OVREF_SIZE];
    cellref refs[2];
    for (int i = 0; i < 2; i++) {
        memset(lc[i], 0, sizeof lc[i]);
        le16_put(lc[i] + LC_OFF_KLEN, 8);
        le32_put(lc[i] + LC_OFF_VLEN, VLEN);
        lc[i][LC_OFF_FLAGS] = LF_OVERFLOW;
        le64_put(lc[i] + LC_HDR, (uint64_t)i);        /* u64 keys are big-endian: 0 < 1 either way */
        le64_put(lc[i] + LC_HDR + 8, 3);
        ck_put(lc[i] + LC_HDR + 16, vck);
        refs[i] = (cellref){ lc[i], sizeof lc[i] };
    }
    node_build(page, PT_LEAF, 2, PS, refs, 2);
    put_page(f, 2, page);
    ck128 ck = ck_compute(page, PS);
    finish_image(f, ck, 2, 5, 0);
}

Test(storage4, drop_of_a_shared_overflow_run_is_corrupt_not_a_double_free) {
    char path[] = "/tmp/strata-storage4-XXXXXX";
    make_temp(path);
    write_shared_run_image(path);
    strata_db *db;
    OK(strata_open(path, 0, &db));
    strata_txn *r;                               /* the image reads back: both values */
    OK(strata_begin_read(db, &r));
    strata_table *t;
    OK(strata_table_open(r, "t", STRATA_KEY_U64, 0, &t));
    uint64_t n;
    OK(strata_len(t, &n));
    cr_assert_eq(n, 2);
    strata_abort(r);
    strata_txn *w;
    OK(strata_begin_write(db, &w));
    int rc = strata_table_drop(w, "t");
    cr_assert_eq(rc, STRATA_ECORRUPT, "drop: %d", rc);
    strata_abort(w);
    strata_close(db);
    unlink(path);
}
