/* tests/pager/test_pager.c - pager unit tests: golden encoding of the commit
 * slot, slot validation, the dirty-page map, header checks at open, and the
 * fault backend's countdowns. */
#include <criterion/criterion.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include "strata.h"
#include "pager.h"

Test(pager, slot_golden_roundtrip) {
    pg_state st = { .txnid = 0x0102030405060708ull, .cat_root = 7, .free_root = 9,
                    .page_count = 10, .hlc = 0x1122334455667788ull };
    st.cat_ck.lo = 0xAAu; st.cat_ck.hi = 0xBBu; st.free_ck.lo = 0xCCu; st.free_ck.hi = 0xDDu;
    uint8_t s[SLOT_SIZE];
    pager_slot_encode(s, &st, 4096);
    /* fixed offsets from docs/ARCHITECTURE.md "Commit slot" */
    const uint8_t txn_le[8] = { 8, 7, 6, 5, 4, 3, 2, 1 };
    cr_assert(memcmp(s + 0, txn_le, 8) == 0);
    cr_assert(memcmp(s + 112, txn_le, 8) == 0);
    cr_assert_eq(s[8], 7); cr_assert_eq(s[16], 0xAA); cr_assert_eq(s[24], 0xBB);
    cr_assert_eq(s[32], 9); cr_assert_eq(s[40], 0xCC); cr_assert_eq(s[48], 0xDD);
    cr_assert_eq(s[56], 10); cr_assert_eq(s[64], 0x88); cr_assert_eq(s[71], 0x11);
    cr_assert_eq(le32_get(s + 72), STRATA_FORMAT_VERSION);
    cr_assert_eq(le32_get(s + 76), 4096);
    for (int i = 80; i < 112; i++) cr_assert_eq(s[i], 0, "reserved byte %d", i);
    cr_assert_eq(le64_get(s + 120), ck64_compute(s, 120));
    pg_state back;
    cr_assert_eq(pager_slot_decode(s, 4096, &back), 0);
    cr_assert(memcmp(&back, &st, sizeof st) == 0);
}

Test(pager, slot_rejects_damage) {
    pg_state st = { .txnid = 5, .cat_root = 2, .page_count = 4 };
    uint8_t s[SLOT_SIZE], d[SLOT_SIZE];
    pager_slot_encode(s, &st, 4096);
    pg_state out;
    for (int i = 0; i < SLOT_SIZE; i++) {       /* every single-byte flip is caught */
        memcpy(d, s, sizeof d);
        d[i] ^= 0x40;
        cr_assert_neq(pager_slot_decode(d, 4096, &out), 0, "flip at %d accepted", i);
    }
    cr_assert_neq(pager_slot_decode(s, 8192, &out), 0, "page size mismatch accepted");
}

Test(pager, dirty_map_put_get_take) {
    dirty_map m = { 0 };
    enum { N = 5000 };
    for (pgno_t pg = 1; pg <= N; pg++) {
        uint8_t *b = malloc(8);
        cr_assert_not_null(b);
        b[0] = (uint8_t)pg;
        cr_assert_eq(dirty_put(&m, pg * 3, 1, b), STRATA_OK);
    }
    cr_assert_eq(m.n, N);
    for (pgno_t pg = 1; pg <= N; pg += 2) free(dirty_take(&m, pg * 3));
    for (pgno_t pg = 1; pg <= N; pg++) {
        dpage *d = dirty_get(&m, pg * 3);
        if (pg % 2) cr_assert_null(d, "page %llu still present", (unsigned long long)pg);
        else { cr_assert_not_null(d); cr_assert_eq(d->buf[0], (uint8_t)pg); }
    }
    cr_assert_null(dirty_get(&m, 1));
    dirty_clear(&m);
    cr_assert_eq(m.n, 0);
}

static char *tmpfile_path(void) {
    char *p = strdup("/tmp/strata-pager-XXXXXX");
    int fd = mkstemp(p);
    cr_assert(fd >= 0);
    close(fd);
    return p;
}

Test(pager, open_initializes_and_rejects_bad_headers) {
    char *path = tmpfile_path();
    io_backend *io;
    pager *p;
    pager_opts o = { .create = 1 };
    cr_assert_eq(io_file_open(path, 0, &io), STRATA_OK);
    cr_assert_eq(pager_open(io, &o, &p), STRATA_OK);     /* empty file: initialized */
    cr_assert_eq(p->ps, 4096);
    cr_assert_eq(p->durable.txnid, 1);
    pager_close(p);
    /* wrong magic */
    FILE *f = fopen(path, "r+b");
    cr_assert_not_null(f);
    fputc('X', f);
    fclose(f);
    cr_assert_eq(io_file_open(path, 0, &io), STRATA_OK);
    cr_assert_eq(pager_open(io, &o, &p), STRATA_ECORRUPT);
    /* future format version */
    f = fopen(path, "r+b");
    fputc(0x89, f);
    fseek(f, HDR_OFF_VERSION, SEEK_SET);
    fputc(99, f);
    fclose(f);
    cr_assert_eq(io_file_open(path, 0, &io), STRATA_OK);
    cr_assert_eq(pager_open(io, &o, &p), STRATA_EVERSION);
    /* truncated below one sector */
    cr_assert_eq(truncate(path, 100), 0);
    cr_assert_eq(io_file_open(path, 0, &io), STRATA_OK);
    cr_assert_eq(pager_open(io, &o, &p), STRATA_ECORRUPT);
    unlink(path);
    free(path);
}

Test(pager, create_syncs_the_directory_and_opens_existing_files) {
    char dir[] = "/tmp/strata-dir-XXXXXX";
    cr_assert_not_null(mkdtemp(dir));
    char path[64], odd[80];
    snprintf(path, sizeof path, "%s/db", dir);
    snprintf(odd, sizeof odd, "%s//db2", dir);
    cr_assert_eq(io_sync_dir_of(path), STRATA_OK);
    cr_assert_eq(io_sync_dir_of(odd), STRATA_OK);          /* "dir//db2" -> "dir" */
    cr_assert_eq(io_sync_dir_of("/db"), STRATA_OK);         /* "/" */
    cr_assert_eq(io_sync_dir_of("relative-name"), STRATA_OK); /* "." */
    cr_assert_eq(io_sync_dir_of("/nonexistent-strata-dir/db"), STRATA_EIO);
    io_backend *io;
    cr_assert_eq(io_file_open("/nonexistent-strata-dir/db", IO_OPEN_CREATE, &io), STRATA_NOTFOUND);
    cr_assert_eq(io_file_open(path, 0, &io), STRATA_NOTFOUND);
    cr_assert_eq(io_file_open(path, IO_OPEN_CREATE, &io), STRATA_OK);   /* created */
    cr_assert_eq(io_write(io, "x", 1, 0), STRATA_OK);
    io_close(io);
    cr_assert_eq(io_file_open(path, IO_OPEN_CREATE, &io), STRATA_OK);   /* exists: opened, kept */
    uint64_t len = 0;
    cr_assert_eq(io->ops->get_len(io, &len), STRATA_OK);
    cr_assert_eq(len, 1);
    io_close(io);
    /* a dangling symlink: created through it, as a plain create would */
    char link[80], target[80];
    snprintf(link, sizeof link, "%s/link", dir);
    snprintf(target, sizeof target, "%s/target", dir);
    cr_assert_eq(symlink(target, link), 0);
    cr_assert_eq(io_file_open(link, IO_OPEN_CREATE, &io), STRATA_OK);
    io_close(io);
    cr_assert_eq(access(target, F_OK), 0, "the link's target was created");
    unlink(link);
    unlink(target);
    unlink(path);
    rmdir(dir);
}

/* A directory the caller may write and search but not read (mode 0733, a
 * drop box): creating a file there always worked, but the directory cannot be
 * opened to be fsync'd (EACCES). A database and a backup must still be
 * created there, not refused with STRATA_EIO and deleted. Run as an
 * unprivileged user (root reads every directory): in a child that drops to
 * nobody when the tests run as root. */
Test(pager, create_in_a_directory_that_cannot_be_read) {
    char dir[] = "/tmp/strata-wodir-XXXXXX";
    cr_assert_not_null(mkdtemp(dir));
    cr_assert_eq(chmod(dir, 0733), 0);
    char path[64], bak[64];
    snprintf(path, sizeof path, "%s/db", dir);
    snprintf(bak, sizeof bak, "%s/db.bak", dir);
    pid_t pid = fork();
    cr_assert_geq(pid, 0);
    if (pid == 0) {
        if (geteuid() == 0 && (setgid(65534) != 0 || setuid(65534) != 0)) _exit(10);
        if (io_sync_dir_of(path) != STRATA_OK) _exit(1);
        io_backend *io;
        if (io_file_open(path, IO_OPEN_CREATE, &io) != STRATA_OK) _exit(2);
        io_close(io);
        strata_db *db;
        unlink(path);
        if (strata_open(path, STRATA_CREATE, &db) != STRATA_OK) _exit(3);
        int rc = strata_backup(db, bak);
        strata_close(db);
        if (rc != STRATA_OK) _exit(4);
        if (access(path, F_OK) != 0 || access(bak, F_OK) != 0) _exit(5);
        _exit(0);
    }
    int st = 0;
    cr_assert_eq(waitpid(pid, &st, 0), pid);
    unlink(path);
    unlink(bak);
    rmdir(dir);
    cr_assert(WIFEXITED(st), "child died");
    cr_assert_eq(WEXITSTATUS(st), 0, "step %d failed (1 sync, 2 io_file_open, 3 strata_open, "
                 "4 strata_backup, 5 a file missing, 10 setuid)", WEXITSTATUS(st));
}

Test(pager, file_lock_is_exclusive) {
    char *path = tmpfile_path();
    io_backend *a, *b;
    cr_assert_eq(io_file_open(path, 0, &a), STRATA_OK);
    cr_assert_eq(io_file_open(path, 0, &b), STRATA_EBUSY);
    cr_assert_eq(io_file_open(path, IO_OPEN_RDONLY, &b), STRATA_EBUSY);
    io_close(a);
    cr_assert_eq(io_file_open(path, 0, &b), STRATA_OK);
    io_close(b);
    unlink(path);
    free(path);
}

Test(pager, fault_countdown_fails_nth_write) {
    char *path = tmpfile_path();
    io_backend *in, *io;
    cr_assert_eq(io_file_open(path, 0, &in), STRATA_OK);
    cr_assert_eq(io_fault_wrap(in, &io), STRATA_OK);
    io_fault_arm(io, FAULT_WRITE, 2, STRATA_ENOSPC, 0);
    char buf[16] = "0123456789abcdef";
    cr_assert_eq(io_write(io, buf, 16, 0), STRATA_OK);
    cr_assert_eq(io_write(io, buf, 16, 16), STRATA_OK);
    cr_assert_eq(io_write(io, buf, 16, 32), STRATA_ENOSPC);
    cr_assert_eq(io_write(io, buf, 16, 48), STRATA_OK, "one-shot fault fired twice");
    cr_assert_eq(io_fault_count(io, FAULT_WRITE), 4);
    /* power loss: unsynced writes vanish */
    cr_assert_eq(io->ops->sync(io), STRATA_OK);
    cr_assert_eq(io_write(io, "XXXX", 4, 0), STRATA_OK);
    cr_assert_eq(io_fault_crash(io, 1, 0), STRATA_OK);
    char back[4];
    cr_assert_eq(io->ops->pread(io, back, 4, 0), STRATA_OK);
    cr_assert(memcmp(back, "0123", 4) == 0, "unsynced write survived a crash");
    io_close(io);
    io_close(io);     /* two references: database and test */
    unlink(path);
    free(path);
}
