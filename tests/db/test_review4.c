/* tests/db/test_review4.c - review regressions in db/ features: change records
 * of writes that fail, the CDC prune age limit at the top of its range,
 * table handles after a savepoint rollback undoes a drop and re-create, and
 * a group commit whose batch sets its transaction non-durable. */
#include <criterion/criterion.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "strata.h"
#include "util.h"

#define OK(x) cr_assert_eq((x), STRATA_OK, "%s -> %s", #x, strata_strerror(x))

static char g_path[64];
static uint64_t g_now = 1700000000000ull;
static uint64_t fake_clock(void *ctx) { (void)ctx; return g_now; }

static void setup(void) {
    snprintf(g_path, sizeof g_path, "/tmp/strata-rev4-%d.db", (int)getpid());
    unlink(g_path);
    g_now = 1700000000000ull;
}
static void teardown(void) { unlink(g_path); }
TestSuite(rev4, .init = setup, .fini = teardown);

static strata_db *open_db(void) {
    strata_db *db;
    OK(strata_open(g_path, STRATA_CREATE, &db));
    OK(strata_set_clock(db, fake_clock, NULL));
    return db;
}

static int count_fn(void *ctx, const strata_change *c) { (void)c; (*(uint64_t *)ctx)++; return 0; }

static uint64_t cdc_count(strata_db *db) {
    strata_txn *r;
    uint64_t n = 0;
    OK(strata_begin_read(db, &r));
    OK(strata_cdc_read(r, NULL, 0, count_fn, &n, NULL));
    strata_abort(r);
    return n;
}

/* The largest key a plain table accepts. */
static size_t max_key(strata_db *db) {
    strata_txn *w;
    strata_table *t;
    OK(strata_begin_write(db, &w));
    OK(strata_table_open(w, "probe", STRATA_KEY_BYTES, STRATA_CREATE, &t));
    char *k = calloc(1, 65536);
    cr_assert(k);
    memset(k, 'k', 65535);
    size_t lo = 1, hi = 65535;                    /* lo fits, hi + 1 does not */
    while (lo < hi) {
        size_t mid = lo + (hi - lo + 1) / 2;
        int rc = strata_put(t, (strata_slice){ k, mid }, S("v"));
        cr_assert(rc == STRATA_OK || rc == STRATA_ETOOBIG, "rc=%d", rc);
        if (rc == STRATA_OK) lo = mid; else hi = mid - 1;
    }
    free(k);
    strata_abort(w);
    return lo;
}

/* A put or merge refused for its key length on a TTL table with change
 * capture wrote nothing, so no change may be recorded for it either. */
Test(rev4, ttl_cdc_too_big_key_leaves_no_change_record) {
    strata_db *db = open_db();
    size_t mk = max_key(db);
    char *k = malloc(mk);
    cr_assert(k);
    memset(k, 'a', mk);
    strata_slice key = { k, mk - 4 };             /* fits a plain table, not the TTL prefix */
    strata_txn *w;
    strata_table *t;
    strata_table_spec spec = { STRATA_KEY_BYTES, NULL, 0 };
    OK(strata_begin_write(db, &w));
    OK(strata_table_open_ex(w, "t", &spec, STRATA_CREATE | STRATA_TTL | STRATA_CDC, &t));
    cr_assert_eq(strata_put(t, key, S("v")), STRATA_ETOOBIG);
    uint64_t one = 1;
    uint64_t ob;
    cr_assert_eq(strata_merge(t, key, U(&ob, one), STRATA_MERGE_ADD_U64), STRATA_ETOOBIG);
    OK(strata_put(t, S("ok"), S("v")));           /* the transaction stays usable */
    OK(strata_commit(w));
    cr_assert_eq(cdc_count(db), 1, "a refused write left a change record");
    free(k);
    strata_close(db);
}

/* "older than max_age_ms": no record is older than UINT64_MAX ms. */
Test(rev4, cdc_prune_huge_age_prunes_nothing) {
    strata_db *db = open_db();
    strata_txn *w;
    strata_table *t;
    OK(strata_begin_write(db, &w));
    OK(strata_table_open(w, "c", STRATA_KEY_BYTES, STRATA_CREATE, &t));
    OK(strata_cdc_enable(w, "c", 1));
    OK(strata_put(t, S("a"), S("1")));
    OK(strata_put(t, S("b"), S("2")));
    OK(strata_commit(w));
    g_now += 1000;
    uint64_t n = 99;
    OK(strata_begin_write(db, &w));
    OK(strata_cdc_prune(w, UINT64_MAX, 0, &n));
    cr_assert_eq(n, 0, "pruned %llu records younger than the age limit", (unsigned long long)n);
    OK(strata_cdc_prune(w, UINT64_MAX - 1000, 0, &n));
    cr_assert_eq(n, 0);
    OK(strata_cdc_prune(w, 500, 0, &n));          /* a real limit still prunes */
    cr_assert_eq(n, 2);
    OK(strata_commit(w));
    strata_close(db);
}

/* Rolling back over a drop and re-create: the table is the one from before
 * the savepoint again, and opening it gives a handle that works on it. */
Test(rev4, savepoint_rollback_over_drop_and_recreate) {
    strata_db *db = open_db();
    strata_txn *w;
    strata_table *t, *h1, *h2;
    strata_table_spec mm = { STRATA_KEY_BYTES, NULL, 0 };
    OK(strata_begin_write(db, &w));
    OK(strata_table_open_ex(w, "m", &mm, STRATA_CREATE | STRATA_MULTIMAP, &t));
    OK(strata_put(t, S("k"), S("v1")));
    OK(strata_put(t, S("k"), S("v2")));
    OK(strata_commit(w));

    OK(strata_begin_write(db, &w));
    strata_savepoint *sp;
    OK(strata_savepoint_create(w, &sp));
    OK(strata_table_open_ex(w, "m", &mm, STRATA_MULTIMAP, &h1));
    OK(strata_table_drop(w, "m"));
    OK(strata_table_open(w, "m", STRATA_KEY_BYTES, STRATA_CREATE, &h2));
    OK(strata_put(h2, S("k"), S("plain")));
    OK(strata_savepoint_rollback(w, sp));
    /* h2 belonged to a table the rollback undid */
    strata_slice v;
    cr_assert_eq(strata_get(h2, S("k"), &v), STRATA_EBADTXN);
    OK(strata_table_open_ex(w, "m", &mm, STRATA_MULTIMAP, &t));
    uint64_t n;
    OK(strata_mm_count(t, S("k"), &n));
    cr_assert_eq(n, 2);
    OK(strata_put(t, S("k"), S("v3")));
    OK(strata_commit(w));

    strata_txn *r;
    OK(strata_begin_read(db, &r));
    OK(strata_table_open_ex(r, "m", &mm, STRATA_MULTIMAP, &t));
    OK(strata_mm_count(t, S("k"), &n));
    cr_assert_eq(n, 3);
    strata_abort(r);
    strata_close(db);
}

/* The same, with the same spec: two live handles of one name would each write
 * their own tree, and the commit would keep only one of them. */
Test(rev4, savepoint_rollback_keeps_one_handle_per_name) {
    strata_db *db = open_db();
    strata_txn *w;
    strata_table *t, *h2;
    OK(strata_begin_write(db, &w));
    OK(strata_table_open(w, "p", STRATA_KEY_BYTES, STRATA_CREATE, &t));
    OK(strata_put(t, S("a"), S("1")));
    OK(strata_commit(w));

    OK(strata_begin_write(db, &w));
    OK(strata_table_open(w, "p", STRATA_KEY_BYTES, 0, &t));
    strata_savepoint *sp;
    OK(strata_savepoint_create(w, &sp));
    OK(strata_table_drop(w, "p"));
    OK(strata_table_open(w, "p", STRATA_KEY_BYTES, STRATA_CREATE, &h2));
    OK(strata_savepoint_rollback(w, sp));
    OK(strata_put(t, S("b"), S("2")));            /* the handle from before sp works */
    strata_table *again;
    OK(strata_table_open(w, "p", STRATA_KEY_BYTES, 0, &again));
    cr_assert_eq(again, t, "a second live handle of p");
    cr_assert_eq(strata_put(h2, S("c"), S("3")), STRATA_EBADTXN);
    OK(strata_commit(w));

    strata_txn *r;
    strata_slice v;
    OK(strata_begin_read(db, &r));
    OK(strata_table_open(r, "p", STRATA_KEY_BYTES, 0, &t));
    OK(strata_get(t, S("a"), &v));
    OK(strata_get(t, S("b"), &v));
    strata_abort(r);
    strata_close(db);
}

/* strata_append is "as put": on a compressed table the value is stored with
 * its compression flag byte, so get returns it (short and compressible). */
Test(rev4, append_on_compressed_table_reads_back) {
    strata_db *db = open_db();
    static const unsigned kinds[] = { STRATA_COMPRESS_LZ4, STRATA_COMPRESS_ZSTD };
    char big[1000];
    memset(big, 'z', sizeof big);
    for (int i = 0; i < 2; i++) {
        char name[8];
        snprintf(name, sizeof name, "z%d", i);
        strata_txn *w;
        strata_table *t;
        strata_table_spec spec = { STRATA_KEY_BYTES, NULL, 0 };
        OK(strata_begin_write(db, &w));
        OK(strata_table_open_ex(w, name, &spec, STRATA_CREATE | kinds[i], &t));
        OK(strata_append(t, S("a"), S("hello")));
        OK(strata_append(t, S("b"), (strata_slice){ big, sizeof big }));
        OK(strata_commit(w));
        strata_txn *r;
        strata_slice v;
        OK(strata_begin_read(db, &r));
        OK(strata_table_open_ex(r, name, &spec, kinds[i], &t));
        OK(strata_get(t, S("a"), &v));
        cr_assert(v.len == 5 && !memcmp(v.data, "hello", 5));
        OK(strata_get(t, S("b"), &v));
        cr_assert(v.len == sizeof big && !memcmp(v.data, big, sizeof big));
        strata_abort(r);
    }
    strata_close(db);
}

/* A maximum drift at the top of its range is "practically no limit": remote
 * timestamps near the local clock are accepted, not refused by a wrapped
 * now + drift. */
Test(rev4, hlc_receive_with_huge_max_drift) {
    strata_db *db = open_db();
    OK(strata_hlc_set_max_drift(db, UINT64_MAX));
    uint64_t remote = (g_now + 10) << 16;
    OK(strata_hlc_receive(db, remote));
    uint64_t h;
    OK(strata_hlc_now(db, &h));
    cr_assert_gt(h, remote);
    OK(strata_hlc_set_max_drift(db, 100));        /* a real limit still refuses */
    cr_assert_eq(strata_hlc_receive(db, (g_now + 1000) << 16), STRATA_EINVAL);
    OK(strata_hlc_receive(db, (g_now + 50) << 16));
    strata_close(db);
}

static int grow_fn(void *ctx, const strata_slice *ex, strata_slice opd, void *out, size_t cap, size_t *len) {
    (void)ctx; (void)ex; (void)opd; (void)out; (void)cap;
    *len = 1;
    return 0;
}

/* A value length no value can have (the slice cannot describe real memory,
 * so nothing may be read through it): STRATA_ETOOBIG from every table kind,
 * never a wrapped size computation followed by a huge copy. */
Test(rev4, huge_value_lengths_are_refused_not_wrapped) {
    strata_db *db = open_db();
    static const size_t lens[] = { SIZE_MAX, SIZE_MAX - 1, SIZE_MAX - 7, SIZE_MAX - 63 };
    strata_txn *w;
    strata_table *mm, *ttl, *lz, *zs, *plain;
    strata_table_spec spec = { STRATA_KEY_BYTES, NULL, 0 };
    OK(strata_begin_write(db, &w));
    OK(strata_table_open_ex(w, "mm", &spec, STRATA_CREATE | STRATA_MULTIMAP, &mm));
    OK(strata_table_open_ex(w, "ttl", &spec, STRATA_CREATE | STRATA_TTL, &ttl));
    OK(strata_table_open_ex(w, "lz", &spec, STRATA_CREATE | STRATA_COMPRESS_LZ4, &lz));
    OK(strata_table_open_ex(w, "zs", &spec, STRATA_CREATE | STRATA_COMPRESS_ZSTD, &zs));
    OK(strata_table_open(w, "plain", STRATA_KEY_BYTES, STRATA_CREATE, &plain));
    OK(strata_put(plain, S("k"), S("v")));
    static const char byte = 'x';
    for (size_t i = 0; i < sizeof lens / sizeof lens[0]; i++) {
        strata_slice v = { &byte, lens[i] };
        cr_assert_eq(strata_put(mm, S("k"), v), STRATA_ETOOBIG, "multimap len %zu", lens[i]);
        cr_assert_eq(strata_mm_del(mm, S("k"), v), STRATA_NOTFOUND, "multimap del len %zu", lens[i]);
        cr_assert_eq(strata_put(ttl, S("k"), v), STRATA_ETOOBIG, "ttl len %zu", lens[i]);
        cr_assert_eq(strata_put_ttl(ttl, S("k"), v, 1000), STRATA_ETOOBIG, "ttl len %zu", lens[i]);
        cr_assert_eq(strata_put(lz, S("k"), v), STRATA_ETOOBIG, "lz4 len %zu", lens[i]);
        cr_assert_eq(strata_put(zs, S("k"), v), STRATA_ETOOBIG, "zstd len %zu", lens[i]);
        cr_assert_eq(strata_merge(plain, S("k"), v, STRATA_MERGE_APPEND), STRATA_ETOOBIG, "append %zu", lens[i]);
        cr_assert_eq(strata_merge_with(plain, S("k"), v, grow_fn, NULL), STRATA_ETOOBIG, "merge_with %zu", lens[i]);
    }
    strata_slice v;
    OK(strata_get(plain, S("k"), &v));              /* nothing written, txn usable */
    cr_assert(v.len == 1 && !memcmp(v.data, "v", 1));
    OK(strata_commit(w));
    strata_close(db);
}

/* Key lengths near SIZE_MAX: a TTL put and a multimap cursor seek refuse them
 * (STRATA_ETOOBIG) instead of wrapping key + prefix and copying. */
Test(rev4, huge_key_lengths_are_refused_not_wrapped) {
    strata_db *db = open_db();
    strata_txn *w;
    strata_table *mm, *ttl;
    strata_cursor *c;
    strata_table_spec spec = { STRATA_KEY_BYTES, NULL, 0 };
    OK(strata_begin_write(db, &w));
    OK(strata_table_open_ex(w, "mm", &spec, STRATA_CREATE | STRATA_MULTIMAP, &mm));
    OK(strata_table_open_ex(w, "ttl", &spec, STRATA_CREATE | STRATA_TTL, &ttl));
    OK(strata_put(mm, S("k"), S("v")));
    OK(strata_cursor_open(mm, &c));
    static const char byte = 'x';
    static const size_t lens[] = { SIZE_MAX, SIZE_MAX - 1, SIZE_MAX - 7 };
    for (size_t i = 0; i < sizeof lens / sizeof lens[0]; i++) {
        strata_slice k = { &byte, lens[i] };
        cr_assert_eq(strata_put_ttl(ttl, k, S("v"), 1000), STRATA_ETOOBIG, "ttl key %zu", lens[i]);
        cr_assert_eq(strata_put(ttl, k, S("v")), STRATA_ETOOBIG, "ttl key %zu", lens[i]);
        cr_assert_eq(strata_cursor_seek(c, k), STRATA_ETOOBIG, "mm seek %zu", lens[i]);
    }
    OK(strata_cursor_first(c));
    OK(strata_commit(w));
    strata_close(db);
}

/* A clock that moves one ms per reading: an entry can expire between two
 * readings inside one call. That is an ordinary expiry, never corruption. */
static uint64_t g_tick;
static uint64_t tick_clock(void *ctx) { (void)ctx; return g_tick++; }

Test(rev4, ttl_entry_expiring_inside_pop_or_del_range_is_not_corruption) {
    strata_db *db;
    OK(strata_open(g_path, STRATA_CREATE, &db));
    OK(strata_set_clock(db, tick_clock, NULL));
    strata_table_spec spec = { STRATA_KEY_BYTES, NULL, 0 };
    for (int kind = 0; kind < 2; kind++) {
        for (uint64_t d = 1; d <= 8; d++) {
            g_tick = 1000000;
            strata_txn *w;
            strata_table *t;
            OK(strata_begin_write(db, &w));
            OK(strata_table_open_ex(w, "q", &spec, STRATA_CREATE | STRATA_TTL | STRATA_CDC, &t));
            OK(strata_put_expire_at(t, S("a"), S("1"), g_tick + d));
            OK(strata_put(t, S("b"), S("2")));     /* never expires */
            int rc;
            strata_slice k, v;
            uint64_t n;
            if (kind == 0) {
                rc = strata_pop_first(t, &k, &v);
                cr_assert_eq(rc, STRATA_OK, "pop d=%llu: %s", (unsigned long long)d, strata_strerror(rc));
                cr_assert(k.len == 1 && (*(const char *)k.data == 'a' || *(const char *)k.data == 'b'));
            } else {
                rc = strata_del_range(t, NULL, NULL, 0, &n);
                cr_assert_eq(rc, STRATA_OK, "del_range d=%llu: %s", (unsigned long long)d, strata_strerror(rc));
                OK(strata_len(t, &n));
                cr_assert_eq(n, 0);
            }
            OK(strata_table_drop(w, "q"));
            OK(strata_commit(w));
        }
    }
    strata_close(db);
}

/* A batch function that sets the group's shared transaction to
 * DURABILITY_NONE must not make the group's commit non-durable: every
 * submitter is told its batch is committed durably. */
static int nondurable_batch(void *ctx, strata_txn *txn) {
    (void)ctx;
    strata_table *t;
    int rc = strata_table_open(txn, "g", STRATA_KEY_BYTES, STRATA_CREATE, &t);
    if (rc == STRATA_OK) rc = strata_put(t, (strata_slice){ "k", 1 }, (strata_slice){ "v", 1 });
    if (rc == STRATA_OK) rc = strata_txn_set_durability(txn, STRATA_DURABILITY_NONE);
    return rc;
}

Test(rev4, group_commit_stays_durable_when_a_batch_sets_none) {
    strata_db *db = open_db();
    OK(strata_group_commit(db, nondurable_batch, NULL));
    strata_info in;
    OK(strata_db_info(db, &in));
    cr_assert_eq(in.durable_txn_id, in.last_txn_id, "group committed non-durably (durable %llu, last %llu)",
                 (unsigned long long)in.durable_txn_id, (unsigned long long)in.last_txn_id);
    strata_close(db);
}
