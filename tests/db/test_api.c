/* tests/db/test_api.c - the public API end to end: tables and key types,
 * transactions and isolation, cursors and ranges, multimaps, bulk operations,
 * the catalog, and every kind of bad input named in the storage-core issue. */
#include <criterion/criterion.h>
#include <math.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "strata.h"
#include "util.h"

#define OK(x) cr_assert_eq((x), STRATA_OK, "%s -> %s", #x, strata_strerror(x))

static char g_path[64];

static void setup(void) {
    snprintf(g_path, sizeof g_path, "/tmp/strata-api-%d.db", (int)getpid());
    unlink(g_path);
}
static void teardown(void) { unlink(g_path); }

TestSuite(api, .init = setup, .fini = teardown);


static strata_db *open_db(unsigned flags) {
    strata_db *db;
    int rc = strata_open(g_path, flags | STRATA_CREATE, &db);
    cr_assert_eq(rc, STRATA_OK, "open: %s", strata_strerror(rc));
    return db;
}

static strata_table *wtable(strata_txn *w, const char *name, strata_key_type kt) {
    strata_table *t;
    OK(strata_table_open(w, name, kt, STRATA_CREATE, &t));
    return t;
}

Test(api, put_get_del_len_and_reopen) {
    strata_db *db = open_db(0);
    strata_txn *w;
    OK(strata_begin_write(db, &w));
    strata_table *t = wtable(w, "kv", STRATA_KEY_BYTES);
    OK(strata_put(t, S("alpha"), S("1")));
    OK(strata_put(t, S("beta"), S("2")));
    OK(strata_put(t, S("alpha"), S("one")));               /* overwrite */
    strata_slice v;
    OK(strata_get(t, S("alpha"), &v));
    cr_assert(v.len == 3 && !memcmp(v.data, "one", 3));
    uint64_t n;
    OK(strata_len(t, &n));
    cr_assert_eq(n, 2);
    cr_assert_eq(strata_del(t, S("gamma")), STRATA_NOTFOUND);
    OK(strata_del(t, S("beta")));
    OK(strata_commit(w));
    strata_close(db);
    db = open_db(0);
    strata_txn *r;
    OK(strata_begin_read(db, &r));
    OK(strata_table_open(r, "kv", STRATA_KEY_BYTES, 0, &t));
    OK(strata_len(t, &n));
    cr_assert_eq(n, 1);
    OK(strata_get(t, S("alpha"), &v));
    cr_assert(v.len == 3 && !memcmp(v.data, "one", 3));
    cr_assert_eq(strata_get(t, S("beta"), &v), STRATA_NOTFOUND);
    strata_abort(r);
    strata_close(db);
}

Test(api, abort_leaves_no_trace) {
    strata_db *db = open_db(0);
    strata_txn *w;
    OK(strata_begin_write(db, &w));
    OK(strata_put(wtable(w, "kv", STRATA_KEY_BYTES), S("k"), S("v")));
    OK(strata_commit(w));
    strata_info before, after;
    OK(strata_db_info(db, &before));
    OK(strata_begin_write(db, &w));
    strata_table *t = wtable(w, "kv", STRATA_KEY_BYTES);
    for (int i = 0; i < 2000; i++) {
        char k[16];
        snprintf(k, sizeof k, "x%05d", i);
        OK(strata_put(t, S(k), S("some value that takes space")));
    }
    OK(strata_del(t, S("k")));
    wtable(w, "other", STRATA_KEY_U64);
    strata_abort(w);
    OK(strata_db_info(db, &after));
    cr_assert_eq(after.last_txn_id, before.last_txn_id);
    cr_assert_eq(after.page_count, before.page_count);
    strata_txn *r;
    OK(strata_begin_read(db, &r));
    OK(strata_table_open(r, "kv", STRATA_KEY_BYTES, 0, &t));
    uint64_t n;
    OK(strata_len(t, &n));
    cr_assert_eq(n, 1);
    cr_assert_eq(strata_table_open(r, "other", STRATA_KEY_U64, 0, &t), STRATA_NOTFOUND);
    strata_abort(r);
    strata_close(db);
}

Test(api, u64_i64_str_key_types) {
    strata_db *db = open_db(0);
    strata_txn *w;
    OK(strata_begin_write(db, &w));
    strata_table *u = wtable(w, "u", STRATA_KEY_U64), *i = wtable(w, "i", STRATA_KEY_I64);
    strata_table *s = wtable(w, "s", STRATA_KEY_STR);
    uint64_t b;
    uint64_t uv[] = { 256, 1, 0xFFFFFFFFFFFFFFFFull, 255, 65536 };
    for (int k = 0; k < 5; k++) OK(strata_put(u, U(&b, uv[k]), S("x")));
    int64_t iv[] = { 5, -1, -1000, 0, 1000, INT64_MIN };
    for (int k = 0; k < 6; k++) OK(strata_put(i, U(&b, (uint64_t)iv[k]), S("x")));
    cr_assert_eq(strata_put(u, S("short"), S("x")), STRATA_EINVAL);
    cr_assert_eq(strata_put(s, (strata_slice){ "\xff\xfe", 2 }, S("x")), STRATA_EINVAL);
    cr_assert_eq(strata_put(s, (strata_slice){ "\xed\xa0\x80", 3 }, S("x")), STRATA_EINVAL); /* surrogate */
    OK(strata_put(s, S("caf\xc3\xa9"), S("x")));
    strata_cursor *c;
    OK(strata_cursor_open(u, &c));
    uint64_t prev = 0;
    int cnt = 0;
    for (int rc = strata_cursor_first(c); rc == STRATA_OK; rc = strata_cursor_next(c), cnt++) {
        strata_slice k;
        OK(strata_cursor_get(c, &k, NULL));
        cr_assert(cnt == 0 || getu(k.data) > prev, "u64 order");
        prev = getu(k.data);
    }
    cr_assert_eq(cnt, 5);
    OK(strata_cursor_open(i, &c));
    int64_t iprev = INT64_MIN;
    cnt = 0;
    for (int rc = strata_cursor_first(c); rc == STRATA_OK; rc = strata_cursor_next(c), cnt++) {
        strata_slice k;
        OK(strata_cursor_get(c, &k, NULL));
        int64_t x = (int64_t)getu(k.data);
        cr_assert(cnt == 0 || x > iprev, "i64 order: %lld after %lld", (long long)x, (long long)iprev);
        iprev = x;
    }
    cr_assert_eq(cnt, 6);
    OK(strata_commit(w));
    strata_txn *r;
    OK(strata_begin_read(db, &r));
    strata_table *t;
    cr_assert_eq(strata_table_open(r, "u", STRATA_KEY_I64, 0, &t), STRATA_ETYPE);
    cr_assert_eq(strata_table_open(r, "missing", STRATA_KEY_U64, 0, &t), STRATA_NOTFOUND);
    cr_assert_eq(strata_table_open(r, "new", STRATA_KEY_U64, STRATA_CREATE, &t), STRATA_EREADONLY);
    OK(strata_table_open(r, "u", STRATA_KEY_U64, 0, &t));
    cr_assert_eq(strata_put(t, U(&b, 7), S("x")), STRATA_EREADONLY);
    cr_assert_eq(strata_del(t, U(&b, 1)), STRATA_EREADONLY);
    strata_abort(r);
    strata_close(db);
}

static int reverse_cmp(void *ctx, const void *a, size_t al, const void *b, size_t bl) {
    (void)ctx;
    size_t m = al < bl ? al : bl;
    int c = memcmp(a, b, m);
    if (!c) c = al < bl ? -1 : al > bl;
    return -c;
}

Test(api, custom_comparator_by_name) {
    strata_db *db = open_db(0);
    OK(strata_register_comparator(db, "reverse", reverse_cmp, NULL));
    cr_assert_eq(strata_register_comparator(db, "reverse", reverse_cmp, NULL), STRATA_EEXIST);
    strata_txn *w;
    OK(strata_begin_write(db, &w));
    strata_table_spec spec = { STRATA_KEY_CUSTOM, "reverse" };
    strata_table *t;
    OK(strata_table_open_ex(w, "rev", &spec, STRATA_CREATE, &t));
    OK(strata_put(t, S("a"), S("1")));
    OK(strata_put(t, S("c"), S("3")));
    OK(strata_put(t, S("b"), S("2")));
    strata_slice k;
    OK(strata_first(t, &k, NULL));
    cr_assert(k.len == 1 && *(const char *)k.data == 'c');
    OK(strata_commit(w));
    strata_close(db);
    db = open_db(0);                     /* not registered this time */
    strata_txn *r;
    OK(strata_begin_read(db, &r));
    cr_assert_eq(strata_table_open_ex(r, "rev", &spec, 0, &t), STRATA_ENOCMP);
    strata_abort(r);
    OK(strata_register_comparator(db, "reverse", reverse_cmp, NULL));
    OK(strata_begin_read(db, &r));
    OK(strata_table_open_ex(r, "rev", &spec, 0, &t));
    OK(strata_last(t, &k, NULL));
    cr_assert(k.len == 1 && *(const char *)k.data == 'a');
    strata_abort(r);
    strata_close(db);
}

Test(api, snapshot_isolation_and_page_reuse) {
    strata_db *db = open_db(0);
    strata_txn *w, *r;
    OK(strata_begin_write(db, &w));
    strata_table *t = wtable(w, "kv", STRATA_KEY_U64);
    uint64_t b;
    char val[100];
    for (uint64_t i = 0; i < 3000; i++) {
        snprintf(val, sizeof val, "v%llu-gen0", (unsigned long long)i);
        OK(strata_put(t, U(&b, i), S(val)));
    }
    OK(strata_commit(w));
    OK(strata_begin_read(db, &r));                  /* pins generation 0 */
    strata_table *rt;
    OK(strata_table_open(r, "kv", STRATA_KEY_U64, 0, &rt));
    for (int gen = 1; gen <= 30; gen++) {           /* writers rewrite everything */
        OK(strata_begin_write(db, &w));
        t = wtable(w, "kv", STRATA_KEY_U64);
        for (uint64_t i = 0; i < 3000; i += 3) {
            snprintf(val, sizeof val, "v%llu-gen%d", (unsigned long long)i, gen);
            OK(strata_put(t, U(&b, i), S(val)));
        }
        OK(strata_commit(w));
    }
    for (uint64_t i = 0; i < 3000; i++) {           /* the old snapshot is intact */
        strata_slice v;
        OK(strata_get(rt, U(&b, i), &v));
        snprintf(val, sizeof val, "v%llu-gen0", (unsigned long long)i);
        cr_assert(v.len == strlen(val) && !memcmp(v.data, val, v.len), "key %llu", (unsigned long long)i);
    }
    OK(strata_check(r, NULL, NULL));
    strata_abort(r);
    strata_info a, z;
    OK(strata_db_info(db, &a));
    for (int gen = 31; gen <= 80; gen++) {          /* no reader: pages are reused */
        OK(strata_begin_write(db, &w));
        t = wtable(w, "kv", STRATA_KEY_U64);
        for (uint64_t i = 0; i < 3000; i += 3) OK(strata_put(t, U(&b, i), S("steady-size-value")));
        OK(strata_commit(w));
    }
    OK(strata_db_info(db, &z));
    cr_assert(z.page_count <= a.page_count + 64, "file keeps growing: %llu -> %llu pages",
              (unsigned long long)a.page_count, (unsigned long long)z.page_count);
    OK(strata_begin_read(db, &r));
    OK(strata_check(r, NULL, NULL));
    strata_abort(r);
    strata_close(db);
}

typedef struct reader_arg { strata_db *db; int ok; } reader_arg;

static void *reader_thread(void *p) {
    reader_arg *a = p;
    for (int it = 0; it < 200; it++) {
        strata_txn *r;
        if (strata_begin_read(a->db, &r)) return NULL;
        strata_table *t;
        if (strata_table_open(r, "acct", STRATA_KEY_U64, 0, &t)) { strata_abort(r); return NULL; }
        strata_cursor *c;
        uint64_t sum = 0;
        if (strata_cursor_open(t, &c)) { strata_abort(r); return NULL; }
        for (int rc = strata_cursor_first(c); rc == STRATA_OK; rc = strata_cursor_next(c)) {
            strata_slice v;
            if (strata_cursor_get(c, NULL, &v) || v.len != 8) { strata_abort(r); return NULL; }
            sum += getu(v.data);
        }
        strata_abort(r);
        if (sum != 100 * 1000) return NULL;
    }
    a->ok = 1;
    return NULL;
}

Test(api, concurrent_readers_see_consistent_snapshots) {
    strata_db *db = open_db(0);
    strata_txn *w;
    uint64_t kb, vb;
    OK(strata_begin_write(db, &w));
    strata_table *t = wtable(w, "acct", STRATA_KEY_U64);
    for (uint64_t i = 0; i < 100; i++) OK(strata_put(t, U(&kb, i), U(&vb, 1000)));
    OK(strata_commit(w));
    pthread_t th[2];
    reader_arg args[2] = { { db, 0 }, { db, 0 } };
    for (int i = 0; i < 2; i++) pthread_create(&th[i], NULL, reader_thread, &args[i]);
    for (int it = 0; it < 150; it++) {              /* transfers keep the sum constant */
        OK(strata_begin_write(db, &w));
        OK(strata_txn_set_durability(w, it % 2 ? STRATA_DURABILITY_NONE : STRATA_DURABILITY_IMMEDIATE));
        t = wtable(w, "acct", STRATA_KEY_U64);
        uint64_t from = (uint64_t)(it * 7) % 100, to = (uint64_t)(it * 13 + 1) % 100;
        if (from == to) to = (to + 1) % 100;
        strata_slice v;
        OK(strata_get(t, U(&kb, from), &v));
        uint64_t fv = getu(v.data);
        OK(strata_get(t, U(&kb, to), &v));
        uint64_t tv = getu(v.data);
        uint64_t amt = fv > 10 ? 10 : fv;
        OK(strata_put(t, U(&kb, from), U(&vb, fv - amt)));
        OK(strata_put(t, U(&kb, to), U(&vb, tv + amt)));
        OK(strata_commit(w));
    }
    for (int i = 0; i < 2; i++) pthread_join(th[i], NULL);
    cr_assert(args[0].ok && args[1].ok, "a reader saw an inconsistent snapshot");
    strata_close(db);
}

Test(api, writer_lock_try_and_file_lock) {
    strata_db *db = open_db(0);
    strata_txn *w, *w2;
    OK(strata_begin_write(db, &w));
    cr_assert_eq(strata_begin_write_ex(db, STRATA_TXN_TRY, &w2), STRATA_EBUSY);
    strata_abort(w);
    OK(strata_begin_write_ex(db, STRATA_TXN_TRY, &w2));
    strata_abort(w2);
    strata_db *db2;
    cr_assert_eq(strata_open(g_path, 0, &db2), STRATA_EBUSY);
    cr_assert_eq(strata_open(g_path, STRATA_RDONLY, &db2), STRATA_EBUSY);
    strata_close(db);
    OK(strata_open(g_path, STRATA_RDONLY, &db2));
    cr_assert_eq(strata_begin_write(db2, &w), STRATA_EREADONLY);
    strata_close(db2);
}

Test(api, large_values_and_size_limits) {
    strata_db *db = open_db(0);
    strata_txn *w;
    OK(strata_begin_write(db, &w));
    strata_table *t = wtable(w, "blobs", STRATA_KEY_BYTES);
    size_t sizes[] = { 0, 1, 1000, 1021, 4096, 4097, 100000, 1 << 20 };
    uint8_t *buf = malloc(1 << 20);
    for (size_t i = 0; i < (1 << 20); i++) buf[i] = (uint8_t)(i * 31 + 7);
    for (int i = 0; i < 8; i++) {
        char k[8];
        snprintf(k, sizeof k, "b%d", i);
        OK(strata_put(t, S(k), (strata_slice){ buf, sizes[i] }));
    }
    char bigkey[2000];
    memset(bigkey, 'k', sizeof bigkey);
    cr_assert_eq(strata_put(t, (strata_slice){ bigkey, sizeof bigkey }, S("v")), STRATA_ETOOBIG);
    OK(strata_put(t, (strata_slice){ bigkey, 900 }, S("v")));    /* within the 4 KiB limit */
    OK(strata_commit(w));
    strata_close(db);
    db = open_db(0);
    strata_txn *r;
    OK(strata_begin_read(db, &r));
    OK(strata_table_open(r, "blobs", STRATA_KEY_BYTES, 0, &t));
    for (int i = 0; i < 8; i++) {
        char k[8];
        snprintf(k, sizeof k, "b%d", i);
        strata_slice v;
        OK(strata_get(t, S(k), &v));
        cr_assert_eq(v.len, sizes[i]);
        cr_assert(v.len == 0 || !memcmp(v.data, buf, v.len), "value %d differs", i);
    }
    OK(strata_check(r, NULL, NULL));
    strata_abort(r);
    free(buf);
    strata_close(db);
}

static int key_eq(strata_cursor *c, const char *want) {
    strata_slice k;
    if (strata_cursor_get(c, &k, NULL)) return 0;
    return k.len == strlen(want) && !memcmp(k.data, want, k.len);
}

Test(api, cursors_ranges_both_ways_and_own_writes) {
    strata_db *db = open_db(0);
    strata_txn *w;
    OK(strata_begin_write(db, &w));
    strata_table *t = wtable(w, "kv", STRATA_KEY_BYTES);
    const char *keys[] = { "b", "d", "f", "h", "j" };
    for (int i = 0; i < 5; i++) OK(strata_put(t, S(keys[i]), S("v")));
    strata_cursor *c;
    OK(strata_cursor_open(t, &c));
    OK(strata_cursor_seek(c, S("e")));
    cr_assert(key_eq(c, "f"));
    cr_assert_eq(strata_cursor_seek_exact(c, S("e")), STRATA_NOTFOUND);
    OK(strata_cursor_seek_exact(c, S("h")));
    OK(strata_cursor_seek_le(c, S("e")));
    cr_assert(key_eq(c, "d"));
    cr_assert_eq(strata_cursor_seek_le(c, S("a")), STRATA_NOTFOUND);
    cr_assert_eq(strata_cursor_seek(c, S("k")), STRATA_NOTFOUND);
    strata_slice lo = S("c"), hi = S("h");
    OK(strata_cursor_set_range(c, &lo, &hi, 0));          /* [c, h) */
    OK(strata_cursor_first(c));
    cr_assert(key_eq(c, "d"));
    OK(strata_cursor_next(c));
    cr_assert(key_eq(c, "f"));
    cr_assert_eq(strata_cursor_next(c), STRATA_NOTFOUND);
    OK(strata_cursor_last(c));
    cr_assert(key_eq(c, "f"));
    OK(strata_cursor_prev(c));
    cr_assert(key_eq(c, "d"));
    cr_assert_eq(strata_cursor_prev(c), STRATA_NOTFOUND);
    lo = S("d");
    OK(strata_cursor_set_range(c, &lo, &hi, STRATA_LO_EXCL | STRATA_HI_INCL));   /* (d, h] */
    OK(strata_cursor_first(c));
    cr_assert(key_eq(c, "f"));
    OK(strata_cursor_last(c));
    cr_assert(key_eq(c, "h"));
    OK(strata_cursor_set_range(c, NULL, NULL, 0));
    /* own writes: delete under the cursor, insert ahead of it */
    OK(strata_cursor_seek(c, S("d")));
    OK(strata_del(t, S("d")));
    OK(strata_put(t, S("e"), S("new")));
    strata_slice k, v;
    OK(strata_cursor_get(c, &k, &v));                     /* d is gone: the successor */
    cr_assert(k.len == 1 && *(const char *)k.data == 'e');
    OK(strata_cursor_next(c));
    cr_assert(key_eq(c, "f"));
    OK(strata_put(t, S("g"), S("new")));
    OK(strata_cursor_next(c));
    cr_assert(key_eq(c, "g"), "cursor missed its own insert");
    OK(strata_cursor_prev(c));
    cr_assert(key_eq(c, "f"));
    strata_cursor_close(c);
    OK(strata_commit(w));
    strata_close(db);
}

static int keep_even(void *ctx, strata_slice k, strata_slice v) {
    (void)ctx; (void)v;
    return getu(k.data) % 2 == 0;
}

Test(api, pop_range_delete_retain_append) {
    strata_db *db = open_db(0);
    strata_txn *w;
    OK(strata_begin_write(db, &w));
    strata_table *t = wtable(w, "n", STRATA_KEY_U64);
    uint64_t b, b2;
    for (uint64_t i = 0; i < 1000; i++) OK(strata_append(t, U(&b, i), U(&b2, i * 2)));
    cr_assert_eq(strata_append(t, U(&b, 500), S("x")), STRATA_EINVAL);
    cr_assert_eq(strata_append(t, U(&b, 999), S("x")), STRATA_EINVAL);
    strata_slice k, v;
    OK(strata_pop_first(t, &k, &v));
    cr_assert_eq(getu(k.data), 0);
    OK(strata_pop_last(t, &k, &v));
    cr_assert_eq(getu(k.data), 999);
    cr_assert_eq(getu(v.data), 1998);
    uint64_t n, lo_b, hi_b;
    strata_slice lo = U(&lo_b, 100), hi = U(&hi_b, 200);
    OK(strata_del_range(t, &lo, &hi, 0, &n));              /* [100, 200) */
    cr_assert_eq(n, 100);
    OK(strata_del_range(t, &lo, &hi, STRATA_HI_INCL, &n)); /* only 200 is left in [100, 200] */
    cr_assert_eq(n, 1);
    OK(strata_retain(t, keep_even, NULL, &n));
    OK(strata_len(t, &n));
    uint64_t want = 0;
    for (uint64_t x = 1; x <= 998; x++) want += x % 2 == 0 && (x < 100 || x > 200);
    cr_assert_eq(n, want, "len %llu, want %llu", (unsigned long long)n, (unsigned long long)want);
    strata_cursor *c;
    OK(strata_cursor_open(t, &c));
    uint64_t cnt = 0;
    for (int rc = strata_cursor_first(c); rc == STRATA_OK; rc = strata_cursor_next(c), cnt++) {
        OK(strata_cursor_get(c, &k, NULL));
        uint64_t x = getu(k.data);
        cr_assert(x % 2 == 0 && (x < 100 || x > 200) && x > 0 && x < 999);
    }
    cr_assert_eq(cnt, n);
    OK(strata_commit(w));
    strata_txn *r;
    OK(strata_begin_read(db, &r));
    OK(strata_check(r, NULL, NULL));
    strata_abort(r);
    strata_close(db);
}

Test(api, multimap_sets_per_key) {
    strata_db *db = open_db(0);
    strata_txn *w;
    OK(strata_begin_write(db, &w));
    strata_table_spec spec = { STRATA_KEY_STR, NULL };
    strata_table *t, *plain;
    OK(strata_table_open_ex(w, "mm", &spec, STRATA_CREATE | STRATA_MULTIMAP, &t));
    cr_assert_eq(strata_table_open(w, "mm", STRATA_KEY_STR, 0, &plain), STRATA_ETYPE);
    OK(strata_put(t, S("k"), S("c")));
    OK(strata_put(t, S("k"), S("a")));
    OK(strata_put(t, S("k"), S("b")));
    OK(strata_put(t, S("k"), S("a")));                    /* already present */
    OK(strata_put(t, S("j"), S("z")));
    OK(strata_put(t, S("l"), S("y")));
    uint64_t n;
    OK(strata_mm_count(t, S("k"), &n));
    cr_assert_eq(n, 3);
    OK(strata_len(t, &n));
    cr_assert_eq(n, 5);
    strata_slice v;
    OK(strata_get(t, S("k"), &v));
    cr_assert(v.len == 1 && *(const char *)v.data == 'a');
    OK(strata_mm_del(t, S("k"), S("a")));
    cr_assert_eq(strata_mm_del(t, S("k"), S("a")), STRATA_NOTFOUND);
    strata_cursor *c;
    OK(strata_cursor_open(t, &c));
    const char *want[][2] = { { "j", "z" }, { "k", "b" }, { "k", "c" }, { "l", "y" } };
    int i = 0;
    for (int rc = strata_cursor_first(c); rc == STRATA_OK; rc = strata_cursor_next(c), i++) {
        strata_slice k;
        OK(strata_cursor_get(c, &k, &v));
        cr_assert(k.len == 1 && *(const char *)k.data == want[i][0][0]);
        cr_assert(v.len == 1 && *(const char *)v.data == want[i][1][0]);
    }
    cr_assert_eq(i, 4);
    OK(strata_cursor_seek_le(c, S("k")));                 /* last value of k */
    strata_slice k;
    OK(strata_cursor_get(c, &k, &v));
    cr_assert(*(const char *)v.data == 'c');
    OK(strata_del(t, S("k")));                            /* every value of k */
    OK(strata_mm_count(t, S("k"), &n));
    cr_assert_eq(n, 0);
    OK(strata_commit(w));
    strata_close(db);
}

typedef struct names { char buf[8][32]; int n; } names;

static int collect(void *ctx, const strata_table_info *in) {
    names *nm = ctx;
    if (nm->n < 8) snprintf(nm->buf[nm->n++], 32, "%s:%llu", in->name, (unsigned long long)in->entries);
    return 0;
}

Test(api, catalog_drop_rename_list) {
    strata_db *db = open_db(0);
    strata_txn *w;
    OK(strata_begin_write(db, &w));
    strata_table *a = wtable(w, "a", STRATA_KEY_BYTES);
    wtable(w, "b", STRATA_KEY_BYTES);
    OK(strata_put(a, S("x"), S("1")));
    OK(strata_put(a, S("y"), S("2")));
    cr_assert_eq(strata_table_rename(w, "a", "b"), STRATA_EEXIST);
    OK(strata_table_rename(w, "a", "c"));
    cr_assert_eq(strata_put(a, S("z"), S("3")), STRATA_EBADTXN, "stale handle after rename");
    OK(strata_table_drop(w, "b"));
    cr_assert_eq(strata_table_drop(w, "b"), STRATA_NOTFOUND);
    cr_assert_eq(strata_table_open(w, "__internal", STRATA_KEY_BYTES, STRATA_CREATE, &a), STRATA_EINVAL);
    OK(strata_commit(w));
    strata_txn *r;
    OK(strata_begin_read(db, &r));
    names nm = { .n = 0 };
    OK(strata_table_list(r, 0, collect, &nm));
    cr_assert_eq(nm.n, 1);
    cr_assert_str_eq(nm.buf[0], "c:2");
    OK(strata_check(r, NULL, NULL));
    strata_abort(r);
    strata_close(db);
}

Test(api, durability_none_then_close) {
    strata_db *db = open_db(0);
    for (int i = 0; i < 20; i++) {
        strata_txn *w;
        OK(strata_begin_write(db, &w));
        OK(strata_txn_set_durability(w, STRATA_DURABILITY_NONE));
        char k[16];
        snprintf(k, sizeof k, "k%02d", i);
        OK(strata_put(wtable(w, "kv", STRATA_KEY_BYTES), S(k), S("v")));
        OK(strata_commit(w));
    }
    strata_info in;
    OK(strata_db_info(db, &in));
    cr_assert(in.durable_txn_id < in.last_txn_id, "NONE commits must not fsync the header");
    strata_close(db);                                      /* makes them durable */
    db = open_db(0);
    strata_txn *r;
    OK(strata_begin_read(db, &r));
    strata_table *t;
    OK(strata_table_open(r, "kv", STRATA_KEY_BYTES, 0, &t));
    uint64_t n;
    OK(strata_len(t, &n));
    cr_assert_eq(n, 20);
    strata_abort(r);
    strata_close(db);
}

Test(api, bad_handles_and_arguments) {
    cr_assert_eq(strata_open(NULL, STRATA_CREATE, NULL), STRATA_EINVAL);
    strata_db *db;
    cr_assert_eq(strata_open("/nonexistent-dir/x.db", STRATA_CREATE, &db), STRATA_NOTFOUND);
    cr_assert_eq(strata_open(g_path, 0, &db), STRATA_NOTFOUND);
    cr_assert_eq(strata_open(g_path, 0x80, &db), STRATA_EINVAL);
    strata_options o = { .page_size = 3000 };
    cr_assert_eq(strata_open_ex(g_path, STRATA_CREATE, &o, &db), STRATA_EINVAL);
    strata_txn *t;
    cr_assert_eq(strata_begin_read(NULL, &t), STRATA_EINVAL);
    cr_assert_eq(strata_commit(NULL), STRATA_EINVAL);
    strata_abort(NULL);
    strata_close(NULL);
    strata_cursor_close(NULL);
    cr_assert_eq(strata_put(NULL, S("k"), S("v")), STRATA_EINVAL);
    cr_assert_eq(strata_get(NULL, S("k"), NULL), STRATA_EINVAL);
    for (int rc = 0; rc >= -20; rc--) cr_assert_not_null(strata_strerror(rc));
    cr_assert_str_eq(strata_strerror(12345), "unknown error code");
    db = open_db(0);
    strata_txn *w;
    OK(strata_begin_write(db, &w));
    strata_table *tb = wtable(w, "kv", STRATA_KEY_BYTES);
    cr_assert_eq(strata_put(tb, (strata_slice){ NULL, 5 }, S("v")), STRATA_EINVAL);
    cr_assert_eq(strata_txn_set_durability(w, 7), STRATA_EINVAL);
    cr_assert_eq(strata_table_open(w, "", STRATA_KEY_BYTES, STRATA_CREATE, &tb), STRATA_EINVAL);
    cr_assert_eq(strata_table_open(w, "x", (strata_key_type)9, STRATA_CREATE, &tb), STRATA_EINVAL);
    strata_abort(w);
    strata_close(db);
}

Test(api, in_memory_database) {
    strata_db *db;
    OK(strata_open(NULL, STRATA_INMEMORY, &db));
    strata_txn *w;
    OK(strata_begin_write(db, &w));
    OK(strata_put(wtable(w, "kv", STRATA_KEY_BYTES), S("k"), S("v")));
    OK(strata_commit(w));
    strata_txn *r;
    OK(strata_begin_read(db, &r));
    strata_table *t;
    OK(strata_table_open(r, "kv", STRATA_KEY_BYTES, 0, &t));
    strata_slice v;
    OK(strata_get(t, S("k"), &v));
    strata_abort(r);
    strata_close(db);
    struct stat st;
    cr_assert_neq(stat(g_path, &st), 0, "in-memory database touched the disk");
}

Test(api, vector_tables_check_dimension_and_values) {
    strata_db *db = open_db(0);
    strata_txn *w;
    strata_table *t, *t2;
    strata_table_spec spec = { STRATA_KEY_U64, NULL, 4 };
    OK(strata_begin_write(db, &w));
    OK(strata_table_open_ex(w, "emb", &spec, STRATA_CREATE | STRATA_VECTOR, &t));
    strata_table_spec wrong = { STRATA_KEY_U64, NULL, 8 };
    cr_assert_eq(strata_table_open_ex(w, "emb", &wrong, STRATA_VECTOR, &t2), STRATA_ETYPE);
    strata_table_spec bad_key = { STRATA_KEY_BYTES, NULL, 4 };
    cr_assert_eq(strata_table_open_ex(w, "e2", &bad_key, STRATA_CREATE | STRATA_VECTOR, &t2), STRATA_EINVAL);
    uint64_t kb;
    float v[4] = { 1, 2, 3, 4 }, v3[3] = { 1, 2, 3 };
    OK(strata_put(t, U(&kb, 1), (strata_slice){ v, sizeof v }));
    cr_assert_eq(strata_put(t, U(&kb, 2), (strata_slice){ v3, sizeof v3 }), STRATA_EINVAL);
    v[2] = NAN;
    cr_assert_eq(strata_put(t, U(&kb, 3), (strata_slice){ v, sizeof v }), STRATA_EINVAL);
    v[2] = INFINITY;
    cr_assert_eq(strata_put(t, U(&kb, 3), (strata_slice){ v, sizeof v }), STRATA_EINVAL);
    uint64_t n;
    OK(strata_len(t, &n));
    cr_assert_eq(n, 1, "a rejected vector was stored");
    OK(strata_commit(w));
    strata_close(db);
    db = open_db(0);
    strata_txn *r;
    OK(strata_begin_read(db, &r));
    OK(strata_table_open_ex(r, "emb", &spec, STRATA_VECTOR, &t));
    strata_slice got;
    OK(strata_get(t, U(&kb, 1), &got));
    cr_assert_eq(got.len, 16);
    strata_abort(r);
    strata_close(db);
}

Test(api, compaction_shrinks_the_file_and_keeps_data) {
    strata_db *db = open_db(0);
    strata_txn *w;
    strata_table *t;
    uint64_t kb;
    char val[300];
    memset(val, 'q', sizeof val);
    OK(strata_begin_write(db, &w));
    t = wtable(w, "big", STRATA_KEY_U64);
    for (uint64_t i = 0; i < 20000; i++) OK(strata_put(t, U(&kb, i), (strata_slice){ val, sizeof val }));
    OK(strata_put(t, U(&kb, 999999), (strata_slice){ val, 5000 > sizeof val ? sizeof val : 5000 }));
    OK(strata_commit(w));
    OK(strata_begin_write(db, &w));
    t = wtable(w, "big", STRATA_KEY_U64);
    for (uint64_t i = 0; i < 20000; i++)
        if (i % 10) OK(strata_del(t, U(&kb, i)));
    OK(strata_commit(w));
    uint64_t before, after;
    OK(strata_compact(db, &before, &after));
    cr_assert_lt(after * 3, before, "compaction: %llu -> %llu bytes", (unsigned long long)before,
                 (unsigned long long)after);
    strata_txn *r;
    OK(strata_begin_read(db, &r));
    OK(strata_check(r, NULL, NULL));
    OK(strata_table_open(r, "big", STRATA_KEY_U64, 0, &t));
    uint64_t n;
    OK(strata_len(t, &n));
    cr_assert_eq(n, 2001);
    for (uint64_t i = 0; i < 20000; i += 10) {
        strata_slice v;
        OK(strata_get(t, U(&kb, i), &v));
        cr_assert_eq(v.len, sizeof val);
    }
    strata_abort(r);
    strata_close(db);
    db = open_db(0);                                   /* and it reopens cleanly */
    OK(strata_begin_read(db, &r));
    OK(strata_check(r, NULL, NULL));
    strata_abort(r);
    strata_close(db);
}

Test(api, compressed_tables_roundtrip) {
    strata_db *db = open_db(0);
    unsigned kinds[2] = { STRATA_COMPRESS_LZ4, STRATA_COMPRESS_ZSTD };
    const char *tnames[2] = { "lz4", "zstd" };
    char val[5000];
    for (size_t i = 0; i < sizeof val; i++) val[i] = (char)('a' + (i / 7) % 5);   /* compressible */
    strata_table_spec spec = { STRATA_KEY_U64, NULL, 0 };
    strata_txn *w;
    strata_table *t;
    uint64_t kb;
    OK(strata_begin_write(db, &w));
    for (int k = 0; k < 2; k++) {
        OK(strata_table_open_ex(w, tnames[k], &spec, STRATA_CREATE | kinds[k], &t));
        for (uint64_t i = 0; i < 200; i++) OK(strata_put(t, U(&kb, i), (strata_slice){ val, 100 + i * 20 }));
        OK(strata_put(t, U(&kb, 1000), S("short")));        /* stored raw: too small */
        OK(strata_merge(t, U(&kb, 1000), S("+more"), STRATA_MERGE_APPEND));
    }
    strata_table *bad;
    cr_assert_eq(strata_table_open_ex(w, "x", &spec, STRATA_CREATE | STRATA_TTL | STRATA_COMPRESS_LZ4, &bad),
                 STRATA_EINVAL);
    OK(strata_commit(w));
    strata_close(db);
    db = open_db(0);
    strata_txn *r;
    OK(strata_begin_read(db, &r));
    for (int k = 0; k < 2; k++) {
        OK(strata_table_open_ex(r, tnames[k], &spec, kinds[k], &t));
        strata_table_stat st;
        OK(strata_table_stat_get(t, &st));
        cr_assert_eq(st.overflow_pages, 0, "%s: values were not compressed", tnames[k]);
        strata_cursor *c;
        OK(strata_cursor_open(t, &c));
        uint64_t i = 0;
        for (int rc = strata_cursor_first(c); rc == STRATA_OK && i < 200; rc = strata_cursor_next(c), i++) {
            strata_slice key, v;
            OK(strata_cursor_get(c, &key, &v));
            cr_assert_eq(v.len, 100 + i * 20);
            cr_assert(!memcmp(v.data, val, v.len), "%s: value %llu differs", tnames[k], (unsigned long long)i);
        }
        strata_slice v;
        OK(strata_get(t, U(&kb, 1000), &v));
        cr_assert(v.len == 10 && !memcmp(v.data, "short+more", 10));
    }
    OK(strata_check(r, NULL, NULL));
    strata_abort(r);
    strata_close(db);
}

Test(api, compaction_and_salvage_keep_compressed_tables) {
    strata_db *db = open_db(0);
    strata_table_spec spec = { STRATA_KEY_U64, NULL, 0 };
    strata_txn *w;
    strata_table *t;
    uint64_t kb;
    char val[2000];
    for (size_t i = 0; i < sizeof val; i++) val[i] = (char)('a' + (i / 11) % 7);
    OK(strata_begin_write(db, &w));
    OK(strata_table_open_ex(w, "z", &spec, STRATA_CREATE | STRATA_COMPRESS_ZSTD, &t));
    for (uint64_t i = 0; i < 3000; i++) OK(strata_put(t, U(&kb, i), (strata_slice){ val, sizeof val }));
    OK(strata_commit(w));
    OK(strata_begin_write(db, &w));
    OK(strata_table_open_ex(w, "z", &spec, STRATA_COMPRESS_ZSTD, &t));
    for (uint64_t i = 0; i < 3000; i += 2) OK(strata_del(t, U(&kb, i)));
    OK(strata_commit(w));
    uint64_t before, after;
    OK(strata_compact(db, &before, &after));
    strata_close(db);
    char out[80];
    snprintf(out, sizeof out, "%s.salvaged", g_path);
    unlink(out);
    strata_salvage_stats st;
    OK(strata_salvage(g_path, out, &st, NULL, NULL));
    cr_assert_eq(st.entries, 1500);
    const char *paths[2] = { g_path, out };
    for (int p = 0; p < 2; p++) {
        OK(strata_open(paths[p], 0, &db));
        strata_txn *r;
        OK(strata_begin_read(db, &r));
        OK(strata_check(r, NULL, NULL));
        OK(strata_table_open_ex(r, "z", &spec, STRATA_COMPRESS_ZSTD, &t));
        strata_slice v;
        OK(strata_get(t, U(&kb, 1), &v));
        cr_assert(v.len == sizeof val && !memcmp(v.data, val, v.len), "%s: value differs", paths[p]);
        strata_abort(r);
        strata_close(db);
    }
    unlink(out);
}
