/* tests/fuzz/fuzz_open.c - the input is a database file image. Both commit
 * slots get their xxh3-64 recomputed first, so the fuzzer gets past them into
 * slot selection, recovery, the catalog and the trees. The image is opened
 * read-only twice (default verification, then STRATA_VERIFY_OFF, which skips
 * page checksums and so exposes the structural checks); every table is listed,
 * iterated both ways (capped: a crafted tree may share subtrees) and looked
 * up, and strata_check runs. Any documented error code is fine; a crash, a
 * sanitizer report, a hang or an undocumented code is a bug. */
#include <fcntl.h>
#include <string.h>
#include <unistd.h>

#include "strata.h"
#include "fuzz_image.h"

enum { MAX_INPUT = 1 << 20, MAX_TABLES = 32, MAX_STEPS = 20000 };

static int allowed(int rc) {
    return rc == STRATA_OK || rc == STRATA_NOTFOUND || rc == STRATA_ECORRUPT ||
           rc == STRATA_EVERSION || rc == STRATA_ENOCMP || rc == STRATA_ETYPE ||
           rc == STRATA_ENOMEM;
}

typedef struct tlist {
    int n;
    char name[MAX_TABLES][256];
    strata_key_type kt[MAX_TABLES];
    unsigned flags[MAX_TABLES];
    char cmp[MAX_TABLES][64];
} tlist;

static int collect(void *ctx, const strata_table_info *in) {
    tlist *l = ctx;
    if (l->n == MAX_TABLES) return 1;
    snprintf(l->name[l->n], sizeof l->name[0], "%s", in->name);
    l->kt[l->n] = in->key_type;
    l->flags[l->n] = in->flags;
    snprintf(l->cmp[l->n], sizeof l->cmp[0], "%s", in->comparator ? in->comparator : "");
    l->n++;
    return 0;
}

static volatile uint8_t g_sink;

static void touch(strata_slice s) {
    const uint8_t *p = s.data;
    uint8_t acc = 0;
    for (size_t i = 0; i < s.len; i++) acc ^= p[i];
    g_sink = acc;
}

static void walk_table(strata_txn *r, const tlist *l, int i) {
    strata_table_spec spec = { l->kt[i], l->cmp[i][0] ? l->cmp[i] : NULL };
    strata_table *t;
    int rc = strata_table_open_ex(r, l->name[i], &spec, l->flags[i], &t);
    FUZZ_FAIL_IF(!allowed(rc) && rc != STRATA_EINVAL, "table_open: %s", strata_strerror(rc));
    if (rc) return;
    uint64_t n;
    FUZZ_FAIL_IF(strata_len(t, &n) != STRATA_OK, "len");
    strata_cursor *c;
    if (strata_cursor_open(t, &c)) return;
    int steps = 0;
    for (rc = strata_cursor_first(c); rc == STRATA_OK && steps < MAX_STEPS; rc = strata_cursor_next(c), steps++) {
        strata_slice k, v, g;
        rc = strata_cursor_get(c, &k, &v);
        if (rc) break;
        touch(k);
        touch(v);           /* a slice the library hands out must be readable in full */
        int grc = strata_get(t, k, &g);
        FUZZ_FAIL_IF(!allowed(grc) && grc != STRATA_EINVAL, "get: %s", strata_strerror(grc));
    }
    FUZZ_FAIL_IF(!allowed(rc), "forward scan: %s", strata_strerror(rc));
    steps = 0;
    for (rc = strata_cursor_last(c); rc == STRATA_OK && steps < MAX_STEPS; rc = strata_cursor_prev(c), steps++) {
        strata_slice k, v;
        if ((rc = strata_cursor_get(c, &k, &v))) break;
    }
    FUZZ_FAIL_IF(!allowed(rc), "backward scan: %s", strata_strerror(rc));
    strata_cursor_close(c);
}

static void open_and_read(const char *path, int verify) {
    strata_options o = { .verify = verify };
    strata_db *db;
    int rc = strata_open_ex(path, STRATA_RDONLY, &o, &db);
    FUZZ_FAIL_IF(!allowed(rc), "open: %s", strata_strerror(rc));
    if (rc) return;
    strata_info in;
    rc = strata_db_info(db, &in);
    FUZZ_FAIL_IF(!allowed(rc), "info: %s", strata_strerror(rc));
    strata_txn *r;
    rc = strata_begin_read(db, &r);
    FUZZ_FAIL_IF(rc != STRATA_OK, "begin_read: %s", strata_strerror(rc));
    static tlist l;
    l.n = 0;
    rc = strata_table_list(r, 1, collect, &l);
    FUZZ_FAIL_IF(!allowed(rc) && rc != 1, "table_list: %s", strata_strerror(rc));
    for (int i = 0; i < l.n; i++) walk_table(r, &l, i);
    rc = strata_check(r, NULL, NULL);
    FUZZ_FAIL_IF(rc != STRATA_OK && rc != STRATA_ECORRUPT && rc != STRATA_ENOMEM, "check: %s",
                 strata_strerror(rc));
    strata_abort(r);
    strata_close(db);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    if (size > MAX_INPUT) return 0;
    const char *path = fuzz_image_file(data, size, "open");
    if (!path) return 0;
    open_and_read(path, STRATA_VERIFY_ONCE);
    open_and_read(path, STRATA_VERIFY_OFF);
    unlink(path);
    return 0;
}
