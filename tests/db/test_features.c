/* tests/db/test_features.c - hybrid logical clock, merge operators, TTL tables
 * and change capture, end to end through the public API, across reopen, with
 * an injected clock (no sleeps) and bad input. */
#include <criterion/criterion.h>
#include <math.h>
#include <pthread.h>
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
    snprintf(g_path, sizeof g_path, "/tmp/strata-feat-%d.db", (int)getpid());
    unlink(g_path);
    g_now = 1700000000000ull;
}
static void teardown(void) { unlink(g_path); }
TestSuite(feat, .init = setup, .fini = teardown);


static strata_db *open_db(void) {
    strata_db *db;
    OK(strata_open(g_path, STRATA_CREATE, &db));
    OK(strata_set_clock(db, fake_clock, NULL));
    return db;
}

static uint64_t commit_hlc(strata_db *db) {
    strata_txn *w;
    strata_table *t;
    uint64_t h;
    OK(strata_begin_write(db, &w));
    OK(strata_txn_hlc(w, &h));
    OK(strata_table_open(w, "x", STRATA_KEY_BYTES, STRATA_CREATE, &t));
    OK(strata_put(t, S("k"), S("v")));
    OK(strata_commit(w));
    return h;
}

Test(feat, hlc_monotonic_across_commits_reopen_and_clock_steps) {
    strata_db *db = open_db();
    uint64_t a = commit_hlc(db), b = commit_hlc(db);
    cr_assert_gt(b, a);
    cr_assert_eq(STRATA_HLC_PHYS_MS(a), g_now);
    g_now -= 5000;                                     /* wall clock steps back */
    uint64_t c = commit_hlc(db);
    cr_assert_gt(c, b);
    cr_assert_eq(STRATA_HLC_PHYS_MS(c), STRATA_HLC_PHYS_MS(b), "physical part must not go back");
    strata_close(db);
    db = open_db();
    strata_txn *r;
    uint64_t seen;
    OK(strata_begin_read(db, &r));
    OK(strata_txn_hlc(r, &seen));
    cr_assert_eq(seen, c, "a reader sees the HLC of the last commit");
    strata_abort(r);
    uint64_t d = commit_hlc(db);
    cr_assert_gt(d, c, "HLC went back after reopen");
    /* receive rule and drift limit */
    uint64_t remote = (g_now + 10000) << 16 | 7;
    OK(strata_hlc_receive(db, remote));
    uint64_t e = commit_hlc(db);
    cr_assert_gt(e, remote);
    OK(strata_hlc_set_max_drift(db, 60000));
    uint64_t absurd = (g_now + 3600000) << 16;
    cr_assert_eq(strata_hlc_receive(db, absurd), STRATA_EINVAL);
    uint64_t f;
    OK(strata_hlc_now(db, &f));
    cr_assert_gt(f, e);
    cr_assert_lt(f, absurd, "a rejected remote clock moved the HLC");
    strata_close(db);
}

static int concat_upper(void *ctx, const strata_slice *ex, strata_slice opd, void *out, size_t cap,
                        size_t *out_len) {
    int *calls = ctx;
    (*calls)++;
    size_t need = (ex ? ex->len : 0) + opd.len + 1000;     /* forces a second call */
    *out_len = need;
    if (need > cap) return 0;
    memset(out, '-', need);
    if (ex) memcpy(out, ex->data, ex->len);
    for (size_t i = 0; i < opd.len; i++)
        ((char *)out)[(ex ? ex->len : 0) + i] = (char)(((const char *)opd.data)[i] & ~0x20);
    return 0;
}

static int refuse(void *ctx, const strata_slice *ex, strata_slice opd, void *out, size_t cap, size_t *len) {
    (void)ctx; (void)ex; (void)opd; (void)out; (void)cap; (void)len;
    return 1;
}

Test(feat, merge_operators) {
    strata_db *db = open_db();
    strata_txn *w;
    strata_table *t;
    uint64_t k, v;
    OK(strata_begin_write(db, &w));
    OK(strata_table_open(w, "m", STRATA_KEY_U64, STRATA_CREATE, &t));
    for (int i = 0; i < 10; i++) OK(strata_merge(t, U(&k, 1), U(&v, 5), STRATA_MERGE_ADD_U64));
    strata_slice got;
    OK(strata_get(t, U(&k, 1), &got));
    cr_assert_eq(getu(got.data), 50);
    OK(strata_merge(t, U(&k, 2), U(&v, UINT64_MAX), STRATA_MERGE_ADD_U64));
    OK(strata_merge(t, U(&k, 2), U(&v, 2), STRATA_MERGE_ADD_U64));          /* wraps */
    OK(strata_get(t, U(&k, 2), &got));
    cr_assert_eq(getu(got.data), 1);
    OK(strata_merge(t, U(&k, 3), U(&v, UINT64_MAX - 1), STRATA_MERGE_SATADD_U64));
    OK(strata_merge(t, U(&k, 3), U(&v, 10), STRATA_MERGE_SATADD_U64));
    OK(strata_get(t, U(&k, 3), &got));
    cr_assert_eq(getu(got.data), UINT64_MAX);
    OK(strata_merge(t, U(&k, 4), U(&v, (uint64_t)INT64_MIN + 1), STRATA_MERGE_SATADD_I64));
    OK(strata_merge(t, U(&k, 4), U(&v, (uint64_t)(int64_t)-5), STRATA_MERGE_SATADD_I64));
    OK(strata_get(t, U(&k, 4), &got));
    cr_assert_eq((int64_t)getu(got.data), INT64_MIN);
    OK(strata_merge(t, U(&k, 5), U(&v, (uint64_t)(int64_t)-3), STRATA_MERGE_MAX_I64));  /* identity: operand */
    OK(strata_merge(t, U(&k, 5), U(&v, (uint64_t)(int64_t)-7), STRATA_MERGE_MAX_I64));
    OK(strata_get(t, U(&k, 5), &got));
    cr_assert_eq((int64_t)getu(got.data), -3);
    OK(strata_merge(t, U(&k, 6), U(&v, 9), STRATA_MERGE_MIN_U64));
    OK(strata_merge(t, U(&k, 6), U(&v, 4), STRATA_MERGE_MIN_U64));
    OK(strata_get(t, U(&k, 6), &got));
    cr_assert_eq(getu(got.data), 4);
    double d = 1.25;
    OK(strata_merge(t, U(&k, 7), (strata_slice){ &d, 8 }, STRATA_MERGE_ADD_F64));
    OK(strata_merge(t, U(&k, 7), (strata_slice){ &d, 8 }, STRATA_MERGE_ADD_F64));
    OK(strata_get(t, U(&k, 7), &got));
    double r;
    memcpy(&r, got.data, 8);
    cr_assert_float_eq(r, 2.5, 1e-12);
    double nan = NAN;
    cr_assert_eq(strata_merge(t, U(&k, 7), (strata_slice){ &nan, 8 }, STRATA_MERGE_ADD_F64), STRATA_EINVAL);
    OK(strata_merge(t, U(&k, 8), S("ab"), STRATA_MERGE_APPEND));
    OK(strata_merge(t, U(&k, 8), S("cd"), STRATA_MERGE_APPEND));
    OK(strata_get(t, U(&k, 8), &got));
    cr_assert(got.len == 4 && !memcmp(got.data, "abcd", 4));
    OK(strata_merge(t, U(&k, 9), (strata_slice){ "\x01\x10", 2 }, STRATA_MERGE_OR));
    OK(strata_merge(t, U(&k, 9), (strata_slice){ "\x02\x20", 2 }, STRATA_MERGE_OR));
    OK(strata_get(t, U(&k, 9), &got));
    cr_assert(got.len == 2 && !memcmp(got.data, "\x03\x30", 2));
    /* bad input: wrong widths, unknown operator; nothing written */
    cr_assert_eq(strata_merge(t, U(&k, 1), S("abc"), STRATA_MERGE_ADD_U64), STRATA_EINVAL);
    cr_assert_eq(strata_merge(t, U(&k, 8), U(&v, 1), STRATA_MERGE_ADD_U64), STRATA_EINVAL); /* value is 4 bytes */
    cr_assert_eq(strata_merge(t, U(&k, 9), S("abc"), STRATA_MERGE_OR), STRATA_EINVAL);
    cr_assert_eq(strata_merge(t, U(&k, 1), U(&v, 1), (strata_merge_op)99), STRATA_EINVAL);
    cr_assert_eq(strata_merge(t, U(&k, 1), U(&v, 1), (strata_merge_op)0), STRATA_EINVAL);
    OK(strata_get(t, U(&k, 1), &got));
    cr_assert_eq(getu(got.data), 50, "a refused merge changed the value");
    /* user operator, including a second call with a larger buffer, and refusal */
    int calls = 0;
    OK(strata_merge_with(t, U(&k, 10), S("xy"), concat_upper, &calls));
    OK(strata_merge_with(t, U(&k, 10), S("z"), concat_upper, &calls));
    OK(strata_get(t, U(&k, 10), &got));
    cr_assert_eq(got.len, 2 + 1000 + 1 + 1000);
    cr_assert(!memcmp(got.data, "XY", 2));
    cr_assert_eq(((const char *)got.data)[1002], 'Z');
    cr_assert_geq(calls, 4);
    cr_assert_eq(strata_merge_with(t, U(&k, 10), S("q"), refuse, NULL), STRATA_EINVAL);
    OK(strata_commit(w));                               /* refusals did not poison */
    strata_close(db);
    db = open_db();
    strata_txn *rt;
    OK(strata_begin_read(db, &rt));
    OK(strata_table_open(rt, "m", STRATA_KEY_U64, 0, &t));
    OK(strata_get(t, U(&k, 1), &got));
    cr_assert_eq(getu(got.data), 50);
    strata_abort(rt);
    strata_close(db);
}

static strata_table *ttl_table(strata_txn *txn, unsigned extra) {
    strata_table_spec spec = { STRATA_KEY_STR, NULL };
    strata_table *t;
    OK(strata_table_open_ex(txn, "cache", &spec, STRATA_TTL | extra, &t));
    return t;
}

Test(feat, ttl_expiry_is_lazy_and_purge_is_bounded) {
    strata_db *db = open_db();
    strata_txn *w;
    OK(strata_begin_write(db, &w));
    strata_table *t = ttl_table(w, STRATA_CREATE);
    strata_table *plain;
    cr_assert_eq(strata_table_open(w, "cache", STRATA_KEY_STR, 0, &plain), STRATA_ETYPE);
    OK(strata_put(t, S("forever"), S("f")));
    for (int i = 0; i < 10; i++) {
        char k[16];
        snprintf(k, sizeof k, "k%02d", i);
        OK(strata_put_ttl(t, S(k), S("val"), 1000 * (i + 1)));   /* k00 expires first */
    }
    cr_assert_eq(strata_put_ttl(t, S("bad"), S("v"), 0), STRATA_EINVAL);
    cr_assert_eq(strata_put_ttl(t, S("bad"), S("v"), -5), STRATA_EINVAL);
    cr_assert_eq(strata_put_expire_at(t, S("bad"), S("v"), g_now), STRATA_EINVAL);
    OK(strata_put_expire_at(t, S("abs"), S("a"), g_now + 2500));
    OK(strata_commit(w));
    g_now += 3000;                                     /* k00, k01, k02 and abs expired */
    strata_txn *r;
    OK(strata_begin_read(db, &r));
    t = ttl_table(r, 0);
    strata_slice v;
    cr_assert_eq(strata_get(t, S("k00"), &v), STRATA_NOTFOUND);
    cr_assert_eq(strata_get(t, S("abs"), &v), STRATA_NOTFOUND);
    OK(strata_get(t, S("k03"), &v));
    cr_assert(v.len == 3 && !memcmp(v.data, "val", 3), "TTL prefix leaked into the value");
    OK(strata_get(t, S("forever"), &v));
    uint64_t n, exp;
    OK(strata_len(t, &n));
    cr_assert_eq(n, 8, "len %llu", (unsigned long long)n);  /* forever + k03..k09 */
    OK(strata_ttl_expiry(t, S("forever"), &exp));
    cr_assert_eq(exp, 0);
    OK(strata_ttl_expiry(t, S("k09"), &exp));
    cr_assert_eq(exp, g_now - 3000 + 10000);
    strata_cursor *c;
    OK(strata_cursor_open(t, &c));
    int cnt = 0;
    for (int rc = strata_cursor_first(c); rc == STRATA_OK; rc = strata_cursor_next(c), cnt++) {
        strata_slice k;
        OK(strata_cursor_get(c, &k, &v));
        cr_assert(!(k.len == 3 && !memcmp(k.data, "abs", 3)));
        cr_assert(!(k.len == 3 && !memcmp(k.data, "k00", 3)));
    }
    cr_assert_eq(cnt, 8);
    OK(strata_cursor_last(c));
    int back = 0;
    for (int rc = STRATA_OK; rc == STRATA_OK; rc = strata_cursor_prev(c)) back++;
    cr_assert_eq(back, 8);
    strata_abort(r);
    OK(strata_begin_write(db, &w));
    t = ttl_table(w, 0);
    uint64_t purged;
    OK(strata_purge_expired(t, 2, &purged));           /* bounded step */
    cr_assert_eq(purged, 2);
    OK(strata_purge_expired(t, 0, &purged));
    cr_assert_eq(purged, 2);
    OK(strata_purge_expired(t, 0, &purged));
    cr_assert_eq(purged, 0);
    OK(strata_put_ttl(t, S("k05"), S("refreshed"), 60000));   /* re-put moves its expiry */
    OK(strata_commit(w));
    strata_close(db);
    g_now += 7000;                                     /* everything but forever and k05 */
    db = open_db();
    OK(strata_begin_read(db, &r));
    t = ttl_table(r, 0);
    OK(strata_len(t, &n));
    cr_assert_eq(n, 2);
    OK(strata_get(t, S("k05"), &v));
    cr_assert(v.len == 9);
    OK(strata_check(r, NULL, NULL));
    strata_abort(r);
    OK(strata_begin_write(db, &w));
    OK(strata_table_rename(w, "cache", "cache2"));
    strata_table_spec spec = { STRATA_KEY_STR, NULL };
    OK(strata_table_open_ex(w, "cache2", &spec, STRATA_TTL, &t));
    OK(strata_purge_expired(t, 0, &purged));
    cr_assert_eq(purged, 6);                           /* k03, k04, k06..k09 via the renamed index */
    OK(strata_table_drop(w, "cache2"));
    OK(strata_commit(w));
    OK(strata_begin_read(db, &r));
    OK(strata_check(r, NULL, NULL));
    strata_abort(r);
    strata_close(db);
}

typedef struct log_ctx { int n; int ops[64]; char keys[64][16]; uint64_t txn[64]; } log_ctx;

static int collect(void *ctx, const strata_change *c) {
    log_ctx *l = ctx;
    if (l->n >= 64) return 1;
    l->ops[l->n] = c->op;
    l->txn[l->n] = c->pos.txn_id;
    snprintf(l->keys[l->n], 16, "%.*s", (int)c->key.len, (const char *)c->key.data);
    l->n++;
    return 0;
}

Test(feat, change_capture_commits_with_its_data) {
    strata_db *db = open_db();
    strata_txn *w;
    strata_table *t, *quiet;
    strata_table_spec spec = { STRATA_KEY_BYTES, NULL };
    OK(strata_begin_write(db, &w));
    OK(strata_table_open_ex(w, "orders", &spec, STRATA_CREATE | STRATA_CDC, &t));
    OK(strata_table_open(w, "quiet", STRATA_KEY_BYTES, STRATA_CREATE, &quiet));
    OK(strata_put(t, S("a"), S("1")));
    OK(strata_put(t, S("b"), S("2")));
    OK(strata_put(quiet, S("q"), S("not captured")));
    OK(strata_commit(w));
    OK(strata_begin_write(db, &w));                    /* aborted: leaves nothing */
    OK(strata_table_open_ex(w, "orders", &spec, 0, &t));
    OK(strata_put(t, S("zz"), S("x")));
    strata_abort(w);
    OK(strata_begin_write(db, &w));
    OK(strata_table_open_ex(w, "orders", &spec, 0, &t));
    uint64_t one;
    OK(strata_del(t, S("a")));
    OK(strata_merge(t, S("n"), U(&one, 1), STRATA_MERGE_ADD_U64));
    OK(strata_cdc_enable(w, "quiet", 1));
    OK(strata_table_open(w, "quiet", STRATA_KEY_BYTES, 0, &quiet));
    OK(strata_put(quiet, S("q2"), S("captured")));
    OK(strata_commit(w));
    strata_close(db);
    db = open_db();
    strata_txn *r;
    OK(strata_begin_read(db, &r));
    log_ctx l = { 0 };
    strata_cdc_pos last;
    OK(strata_cdc_read(r, NULL, 0, collect, &l, &last));
    cr_assert_eq(l.n, 5);
    const char *keys[] = { "a", "b", "a", "n", "q2" };
    int ops[] = { STRATA_CHANGE_PUT, STRATA_CHANGE_PUT, STRATA_CHANGE_DEL, STRATA_CHANGE_MERGE, STRATA_CHANGE_PUT };
    for (int i = 0; i < 5; i++) {
        cr_assert_str_eq(l.keys[i], keys[i]);
        cr_assert_eq(l.ops[i], ops[i]);
    }
    cr_assert_lt(l.txn[1], l.txn[2], "commit order");
    /* resume after a position */
    strata_cdc_pos mid = { l.txn[1], 1 };
    log_ctx l2 = { 0 };
    OK(strata_cdc_read(r, &mid, 2, collect, &l2, NULL));
    cr_assert_eq(l2.n, 2);
    cr_assert_str_eq(l2.keys[0], "a");
    strata_abort(r);
    /* consumers and pruning */
    OK(strata_begin_write(db, &w));
    OK(strata_cdc_consumer_set(w, "indexer", &mid));
    uint64_t pruned;
    OK(strata_cdc_prune(w, 0, 1, &pruned));            /* keep 1, but indexer is at mid */
    cr_assert_eq(pruned, 2, "pruned %llu", (unsigned long long)pruned);
    OK(strata_commit(w));
    OK(strata_begin_read(db, &r));
    strata_cdc_pos got;
    OK(strata_cdc_consumer_get(r, "indexer", &got));
    cr_assert(got.txn_id == mid.txn_id && got.seq == mid.seq);
    log_ctx l3 = { 0 };
    OK(strata_cdc_read(r, NULL, 0, collect, &l3, NULL));
    cr_assert_eq(l3.n, 3, "the unread changes survive pruning");
    cr_assert_eq(strata_cdc_consumer_get(r, "nobody", &got), STRATA_NOTFOUND);
    strata_abort(r);
    OK(strata_begin_write(db, &w));
    OK(strata_cdc_consumer_drop(w, "indexer"));
    OK(strata_cdc_prune(w, 0, 1, &pruned));
    cr_assert_eq(pruned, 2);
    g_now += 100000;
    OK(strata_cdc_prune(w, 50000, 0, &pruned));        /* by age */
    cr_assert_eq(pruned, 1);
    OK(strata_commit(w));
    strata_close(db);
}

typedef struct gc_arg { strata_db *db; int thread; int ok, rejected; } gc_arg;
typedef struct batch { int thread, i; } batch;

static int apply_batch(void *ctx, strata_txn *txn) {
    batch *b = ctx;
    strata_table *t;
    int rc = strata_table_open(txn, "g", STRATA_KEY_BYTES, STRATA_CREATE, &t);
    if (rc) return rc;
    char k[32];
    snprintf(k, sizeof k, "t%d-%03d", b->thread, b->i);
    if ((rc = strata_put(t, S(k), S("v")))) return rc;
    return b->i % 10 == 7 ? STRATA_EINVAL : STRATA_OK;   /* every tenth batch is rejected */
}

static void *gc_thread(void *p) {
    gc_arg *a = p;
    for (int i = 0; i < 40; i++) {
        batch b = { a->thread, i };
        int rc = strata_group_commit(a->db, apply_batch, &b);
        if (rc == STRATA_OK) a->ok++;
        else if (rc == STRATA_EINVAL) a->rejected++;
    }
    return NULL;
}

Test(feat, group_commit_isolates_failing_batches) {
    strata_db *db = open_db();
    pthread_t th[4];
    gc_arg args[4];
    for (int i = 0; i < 4; i++) {
        args[i] = (gc_arg){ db, i, 0, 0 };
        pthread_create(&th[i], NULL, gc_thread, &args[i]);
    }
    for (int i = 0; i < 4; i++) pthread_join(th[i], NULL);
    strata_txn *r;
    strata_table *t;
    OK(strata_begin_read(db, &r));
    OK(strata_table_open(r, "g", STRATA_KEY_BYTES, 0, &t));
    uint64_t n;
    OK(strata_len(t, &n));
    cr_assert_eq(n, 4 * 36, "len %llu", (unsigned long long)n);
    for (int th_i = 0; th_i < 4; th_i++) {
        cr_assert_eq(args[th_i].ok, 36);
        cr_assert_eq(args[th_i].rejected, 4);
        for (int i = 0; i < 40; i++) {
            char k[32];
            snprintf(k, sizeof k, "t%d-%03d", th_i, i);
            strata_slice v;
            int rc = strata_get(t, S(k), &v);
            cr_assert_eq(rc, i % 10 == 7 ? STRATA_NOTFOUND : STRATA_OK, "%s", k);
        }
    }
    strata_abort(r);
    strata_close(db);
}

static int count_commits(void *ctx, uint64_t id, uint64_t hlc) {
    (void)id; (void)hlc;
    (*(int *)ctx)++;
    return 0;
}

static void put_kv(strata_db *db, const char *k, const char *v, const char *del) {
    strata_txn *w;
    strata_table *t;
    OK(strata_begin_write(db, &w));
    OK(strata_table_open(w, "h", STRATA_KEY_BYTES, STRATA_CREATE, &t));
    if (k) OK(strata_put(t, S(k), S(v)));
    if (del) OK(strata_del(t, S(del)));
    OK(strata_commit(w));
}

Test(feat, history_time_travel_and_export) {
    strata_db *db = open_db();
    strata_txn *w;
    OK(strata_begin_write(db, &w));
    OK(strata_history_set(w, 3));
    OK(strata_commit(w));
    uint64_t ids[6];
    for (int i = 0; i < 6; i++) {
        char k[8], v[8];
        snprintf(k, sizeof k, "k%d", i);
        snprintf(v, sizeof v, "v%d", i);
        g_now += 1000;
        put_kv(db, k, v, i == 5 ? "k0" : NULL);
        strata_info in;
        OK(strata_db_info(db, &in));
        ids[i] = in.last_txn_id;
    }
    int n = 0;
    OK(strata_history_list(db, count_commits, &n));
    cr_assert_eq(n, 4, "3 retained + the newest, got %d", n);
    strata_txn *r;
    strata_table *t;
    strata_slice v;
    OK(strata_begin_read_at(db, ids[3], &r));          /* k0..k3 */
    OK(strata_table_open(r, "h", STRATA_KEY_BYTES, 0, &t));
    uint64_t len;
    OK(strata_len(t, &len));
    cr_assert_eq(len, 4);
    cr_assert_eq(strata_get(t, S("k4"), &v), STRATA_NOTFOUND);
    /* churn: the retained snapshot must survive page reuse */
    for (int i = 0; i < 30; i++) put_kv(db, "churn", "x", NULL);
    OK(strata_get(t, S("k3"), &v));
    cr_assert(v.len == 2 && !memcmp(v.data, "v3", 2));
    strata_abort(r);
    cr_assert_eq(strata_begin_read_at(db, ids[0], &r), STRATA_NOTFOUND, "fell out of the window");
    strata_close(db);
    /* export between two retained commits, apply to another database */
    db = open_db();
    OK(strata_begin_write(db, &w));
    OK(strata_history_set(w, 10));
    OK(strata_commit(w));
    put_kv(db, "a", "1", NULL);
    put_kv(db, "b", "2", NULL);
    strata_info in;
    OK(strata_db_info(db, &in));
    uint64_t from = in.last_txn_id;
    OK(strata_begin_read_at_hlc(db, STRATA_HLC_PHYS_MS(0) + ((g_now + 1) << 16), &r));
    strata_abort(r);
    put_kv(db, "c", "3", "a");
    put_kv(db, "b", "22", NULL);
    OK(strata_db_info(db, &in));
    uint64_t to = in.last_txn_id;
    char xpath[80];
    snprintf(xpath, sizeof xpath, "%s.export", g_path);
    OK(strata_history_export(db, from, to, xpath));
    /* a second database at the `from` state */
    char p2[80];
    snprintf(p2, sizeof p2, "%s.replica", g_path);
    unlink(p2);
    strata_db *db2;
    OK(strata_open(p2, STRATA_CREATE, &db2));
    OK(strata_begin_write(db2, &w));
    OK(strata_table_open(w, "h", STRATA_KEY_BYTES, STRATA_CREATE, &t));
    OK(strata_put(t, S("a"), S("1")));
    OK(strata_put(t, S("b"), S("2")));
    OK(strata_commit(w));
    OK(strata_history_apply(db2, xpath));
    OK(strata_begin_read(db2, &r));
    OK(strata_table_open(r, "h", STRATA_KEY_BYTES, 0, &t));
    cr_assert_eq(strata_get(t, S("a"), &v), STRATA_NOTFOUND);
    OK(strata_get(t, S("b"), &v));
    cr_assert(v.len == 2 && !memcmp(v.data, "22", 2));
    OK(strata_get(t, S("c"), &v));
    OK(strata_check(r, NULL, NULL));
    strata_abort(r);
    /* a damaged export is rejected whole */
    FILE *f = fopen(xpath, "r+b");
    fseek(f, 40, SEEK_SET);
    int ch = fgetc(f);
    fseek(f, 40, SEEK_SET);
    fputc(ch ^ 1, f);
    fclose(f);
    strata_info before, after;
    OK(strata_db_info(db2, &before));
    cr_assert_eq(strata_history_apply(db2, xpath), STRATA_ECORRUPT);
    OK(strata_db_info(db2, &after));
    cr_assert_eq(after.last_txn_id, before.last_txn_id, "a damaged export changed the database");
    strata_close(db2);
    unlink(p2);
    unlink(xpath);
    strata_close(db);
}

Test(feat, ephemeral_savepoints) {
    strata_db *db = open_db();
    strata_txn *w;
    strata_table *t, *t2;
    uint64_t kb, n;
    OK(strata_begin_write(db, &w));
    OK(strata_table_open(w, "s", STRATA_KEY_U64, STRATA_CREATE, &t));
    for (uint64_t i = 0; i < 2000; i++) OK(strata_put(t, U(&kb, i), S("before")));
    strata_savepoint *sp, *sp2;
    OK(strata_savepoint_create(w, &sp));
    for (uint64_t i = 0; i < 2000; i += 2) OK(strata_del(t, U(&kb, i)));
    for (uint64_t i = 5000; i < 6000; i++) OK(strata_put(t, U(&kb, i), S("after")));
    OK(strata_table_open(w, "created_after", STRATA_KEY_U64, STRATA_CREATE, &t2));
    OK(strata_put(t2, U(&kb, 1), S("x")));
    OK(strata_savepoint_create(w, &sp2));
    OK(strata_put(t, U(&kb, 9999), S("late")));
    OK(strata_savepoint_rollback(w, sp));
    cr_assert_eq(strata_savepoint_rollback(w, sp2), STRATA_EINVAL, "a later savepoint survived");
    OK(strata_len(t, &n));
    cr_assert_eq(n, 2000);
    strata_slice v;
    OK(strata_get(t, U(&kb, 4), &v));
    cr_assert(v.len == 6 && !memcmp(v.data, "before", 6));
    cr_assert_eq(strata_get(t, U(&kb, 5500), &v), STRATA_NOTFOUND);
    cr_assert_eq(strata_put(t2, U(&kb, 2), S("x")), STRATA_EBADTXN, "table created after sp survived");
    OK(strata_put(t, U(&kb, 7), S("again")));            /* sp stays valid: write, roll back again */
    OK(strata_savepoint_rollback(w, sp));
    OK(strata_get(t, U(&kb, 7), &v));
    cr_assert(v.len == 6);
    OK(strata_put(t, U(&kb, 3000), S("kept")));
    strata_savepoint_release(sp);
    OK(strata_commit(w));
    strata_txn *r;
    OK(strata_begin_read(db, &r));
    OK(strata_check(r, NULL, NULL));
    OK(strata_table_open(r, "s", STRATA_KEY_U64, 0, &t));
    OK(strata_len(t, &n));
    cr_assert_eq(n, 2001);
    cr_assert_eq(strata_table_open(r, "created_after", STRATA_KEY_U64, 0, &t2), STRATA_NOTFOUND);
    strata_abort(r);
    strata_close(db);
}

static int count_sp(void *ctx, uint64_t id, uint64_t hlc) {
    (void)id; (void)hlc;
    (*(int *)ctx)++;
    return 0;
}

Test(feat, persistent_savepoints_survive_reopen_and_restore) {
    strata_db *db = open_db();
    put_kv(db, "a", "1", NULL);
    uint64_t sp1;
    OK(strata_psavepoint_create(db, &sp1));
    for (int i = 0; i < 40; i++) {                      /* churn: pinned pages must survive */
        char k[16];
        snprintf(k, sizeof k, "x%02d", i);
        put_kv(db, k, "y", NULL);
    }
    put_kv(db, "a", "2", NULL);
    uint64_t sp2;
    OK(strata_psavepoint_create(db, &sp2));
    put_kv(db, "b", "3", "a");
    strata_close(db);
    db = open_db();
    int n = 0;
    OK(strata_psavepoint_list(db, count_sp, &n));
    cr_assert_eq(n, 2);
    OK(strata_psavepoint_restore(db, sp1));
    strata_txn *r;
    strata_table *t;
    strata_slice v;
    OK(strata_begin_read(db, &r));
    OK(strata_check(r, NULL, NULL));
    OK(strata_table_open(r, "h", STRATA_KEY_BYTES, 0, &t));
    OK(strata_get(t, S("a"), &v));
    cr_assert(v.len == 1 && *(const char *)v.data == '1');
    cr_assert_eq(strata_get(t, S("x05"), &v), STRATA_NOTFOUND);
    cr_assert_eq(strata_get(t, S("b"), &v), STRATA_NOTFOUND);
    uint64_t len;
    OK(strata_len(t, &len));
    cr_assert_eq(len, 1);
    strata_abort(r);
    n = 0;
    OK(strata_psavepoint_list(db, count_sp, &n));
    cr_assert_eq(n, 1, "the later savepoint must be gone after the rewind");
    for (int i = 0; i < 20; i++) put_kv(db, "z", "w", NULL);   /* reuse the freed pages */
    OK(strata_begin_read(db, &r));
    OK(strata_check(r, NULL, NULL));
    strata_abort(r);
    OK(strata_psavepoint_delete(db, sp1));
    n = 0;
    OK(strata_psavepoint_list(db, count_sp, &n));
    cr_assert_eq(n, 0);
    cr_assert_eq(strata_psavepoint_restore(db, sp1), STRATA_NOTFOUND);
    strata_close(db);
}
