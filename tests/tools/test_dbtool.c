/* tests/tools/test_dbtool.c - tools/dbtool/dbtool on damaged files: it must
 * report the damage and exit 1 (its header: "0 success, 1 the file is damaged
 * or an operation failed"), never print a partial result and exit 0. The
 * dbtool binary comes from the DBTOOL environment variable (tests/tools/meson.build).
 */
#define _POSIX_C_SOURCE 200809L
#include <criterion/criterion.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include "strata.h"

enum { N_ROWS = 600, VAL_LEN = 40, PAGE = 4096 };

#define TRY(x) do { int rc_ = (x); cr_assert_eq(rc_, STRATA_OK, "%s: %s", #x, strata_strerror(rc_)); } while (0)

/* A u64 table spanning several leaf pages. */
static void make_db(const char *path)
{
    strata_db *db;
    strata_txn *w;
    strata_table *t;
    TRY(strata_open(path, STRATA_CREATE, &db));
    TRY(strata_begin_write(db, &w));
    TRY(strata_table_open(w, "rows", STRATA_KEY_U64, STRATA_CREATE, &t));
    for (uint64_t i = 0; i < N_ROWS; i++) {
        uint8_t k[8], v[VAL_LEN];
        for (int b = 0; b < 8; b++) k[b] = (uint8_t)(i >> (8 * b));
        memset(v, 'a' + (int)(i % 26), sizeof v);
        TRY(strata_put(t, (strata_slice){ k, 8 }, (strata_slice){ v, sizeof v }));
    }
    TRY(strata_commit(w));
    strata_close(db);
}

static unsigned char *slurp(const char *path, size_t *len)
{
    FILE *f = fopen(path, "rb");
    cr_assert_not_null(f, "open %s", path);
    struct stat st;
    cr_assert_eq(fstat(fileno(f), &st), 0, "stat");
    unsigned char *b = malloc((size_t)st.st_size);
    cr_assert_not_null(b, "out of memory");
    cr_assert_eq(fread(b, 1, (size_t)st.st_size, f), (size_t)st.st_size, "read");
    fclose(f);
    *len = (size_t)st.st_size;
    return b;
}

static void spit(const char *path, const unsigned char *b, size_t len)
{
    FILE *f = fopen(path, "wb");
    cr_assert_not_null(f, "create %s", path);
    cr_assert_eq(fwrite(b, 1, len, f), len, "write");
    cr_assert_eq(fclose(f), 0, "close");
}

/* Run "dbtool dump FILE rows"; returns its exit status, *lines the number of
 * entries it printed on stdout. */
static int run_dump(const char *dbtool, const char *file, size_t *lines)
{
    char cmd[1024];
    snprintf(cmd, sizeof cmd, "'%s' dump '%s' rows 2>/dev/null", dbtool, file);
    FILE *p = popen(cmd, "r");
    cr_assert_not_null(p, "popen");
    size_t n = 0;
    int c;
    while ((c = getc(p)) != EOF) n += c == '\n';
    int st = pclose(p);
    cr_assert(st != -1 && WIFEXITED(st), "dbtool did not exit normally (status %d)", st);
    *lines = n;
    return WEXITSTATUS(st);
}

/* A damaged leaf in the middle of the table: the cursor fails part-way. */
Test(dbtool, dump_of_damaged_table_exits_1)
{
    const char *dbtool = getenv("DBTOOL");
    cr_assert_not_null(dbtool, "DBTOOL not set");
    char dir[] = "/tmp/strata_dbtool_XXXXXX", good[64], bad[64];
    cr_assert_not_null(mkdtemp(dir));
    snprintf(good, sizeof good, "%s/good.strata", dir);
    snprintf(bad, sizeof bad, "%s/bad.strata", dir);
    make_db(good);
    size_t lines, len;
    cr_assert_eq(run_dump(dbtool, good, &lines), 0, "intact file");
    cr_assert_eq(lines, N_ROWS, "intact file: %zu entries printed", lines);
    unsigned char *orig = slurp(good, &len);
    size_t n_failed = 0;
    for (size_t pg = 2; pg < len / PAGE; pg++) {   /* pages 0, 1: the commit slots */
        orig[pg * PAGE + PAGE / 2] ^= 0x55;
        spit(bad, orig, len);
        orig[pg * PAGE + PAGE / 2] ^= 0x55;
        int st = run_dump(dbtool, bad, &lines);
        cr_assert(st == 1 || (st == 0 && lines == N_ROWS),
                  "page %zu damaged: exit %d after %zu of %d entries", pg, st, lines, N_ROWS);
        n_failed += st == 1;
    }
    cr_assert_gt(n_failed, 1, "damaging the table's pages never made dump fail");
    free(orig);
    unlink(good);
    unlink(bad);
    rmdir(dir);
}
