/* tests/crash/test_concurrency.c - snapshot isolation under load: one writer
 * moves money between N_ACCOUNTS accounts (the total never changes), adds and
 * removes padding rows with overflow values (so every commit frees pages that
 * readers may still see), while N_READERS threads repeatedly begin a read
 * transaction and check their snapshot: the balances sum to TOTAL, the number
 * of accounts is N_ACCOUNTS, len matches a full scan, every padding value is
 * intact, and the snapshot's txn id never goes backwards. Page reuse must wait
 * for every reader (invariant (2) of db/db_int.h); a violation shows up as a
 * wrong sum, a checksum error or a sanitizer report.
 * Bounded by iterations, not time. Registered as suite 'unit' and (built with
 * -fsanitize=thread by tools/dev) suite 'tsan'. Seeds are fixed.
 * Criterion cannot set up its arena under ThreadSanitizer ("Could not
 * initialize inheritable arena"), so the tsan build compiles this file with
 * -DSTRATA_TSAN_MAIN: a plain main() and abort-on-failure assertions. */
#ifdef STRATA_TSAN_MAIN
#include <stdio.h>
#include <stdlib.h>
#define CONC_CHECK(cond)                                                                 \
    do {                                                                                 \
        if (!(cond)) { fprintf(stderr, "%s:%d: %s\n", __FILE__, __LINE__, #cond); abort(); } \
    } while (0)
#define CONC_EQ(a, b, ...) CONC_CHECK((a) == (b))
#define CONC_GEQ(a, b, ...) CONC_CHECK((a) >= (b))
#define CONC_EMPTY(s, ...) CONC_CHECK((s)[0] == 0)
#define cr_assert_eq(...) CONC_EQ(__VA_ARGS__, "")
#define cr_assert_geq(...) CONC_GEQ(__VA_ARGS__, "")
#define cr_assert_str_empty(...) CONC_EMPTY(__VA_ARGS__, "")
#define TestSuite(...) extern int conc_no_suite
#define Test(suite, name) static void name(void)
#else
#include <criterion/criterion.h>
#endif
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "strata.h"
#include "kvmodel.h"

enum { N_ACCOUNTS = 64, N_READERS = 3, WRITER_COMMITS = 600, MAX_COMMITS = 6000, MIN_READS = 300,
       PAD_ROWS = 150, PAD_MAX = 5000 };
static const uint64_t TOTAL = 1000000;

static char g_path[96];
static atomic_int g_done;
static atomic_long g_reads;

static void setup(void);
static void teardown(void);

static void setup(void) {
    const char *dir = access("/dev/shm", W_OK) == 0 ? "/dev/shm" : "/tmp";
    snprintf(g_path, sizeof g_path, "%s/strata-conc-%d.db", dir, (int)getpid());
    unlink(g_path);
}
static void teardown(void) { unlink(g_path); }
TestSuite(concurrency, .init = setup, .fini = teardown, .timeout = 120);

static uint64_t get64(const void *p) {
    const uint8_t *b = p;
    uint64_t v = 0;
    for (int i = 7; i >= 0; i--) v = v << 8 | b[i];
    return v;
}
static void put64(uint8_t *b, uint64_t v) {
    for (int i = 0; i < 8; i++) b[i] = (uint8_t)(v >> (8 * i));
}

typedef struct reader_arg { strata_db *db; int id; char err[256]; } reader_arg;

#define READER_FAIL(a, ...) do { snprintf((a)->err, sizeof (a)->err, __VA_ARGS__); goto out; } while (0)

/* One snapshot: sum of accounts, their count, padding rows intact. */
static int check_snapshot(reader_arg *a, uint64_t *last_id) {
    strata_txn *r = NULL;
    int rc = strata_begin_read(a->db, &r);
    if (rc) READER_FAIL(a, "begin_read: %s", strata_strerror(rc));
    uint64_t id;
    if ((rc = strata_txn_id(r, &id))) READER_FAIL(a, "txn_id: %s", strata_strerror(rc));
    if (id < *last_id) READER_FAIL(a, "snapshot went back from %llu to %llu",
                                   (unsigned long long)*last_id, (unsigned long long)id);
    *last_id = id;
    strata_table *acc, *pad;
    if ((rc = strata_table_open(r, "accounts", STRATA_KEY_U64, 0, &acc)))
        READER_FAIL(a, "open accounts: %s", strata_strerror(rc));
    if ((rc = strata_table_open(r, "padding", STRATA_KEY_U64, 0, &pad)))
        READER_FAIL(a, "open padding: %s", strata_strerror(rc));
    strata_cursor *c;
    if ((rc = strata_cursor_open(acc, &c))) READER_FAIL(a, "cursor: %s", strata_strerror(rc));
    uint64_t sum = 0, n = 0, len;
    for (rc = strata_cursor_first(c); rc == STRATA_OK; rc = strata_cursor_next(c)) {
        strata_slice k, v;
        if ((rc = strata_cursor_get(c, &k, &v))) break;
        if (v.len != 8) READER_FAIL(a, "balance of %zu bytes", v.len);
        sum += get64(v.data);
        n++;
    }
    if (rc != STRATA_NOTFOUND) READER_FAIL(a, "scan: %s", strata_strerror(rc));
    if ((rc = strata_len(acc, &len))) READER_FAIL(a, "len: %s", strata_strerror(rc));
    if (sum != TOTAL || n != N_ACCOUNTS || len != n)
        READER_FAIL(a, "txn %llu: sum %llu (want %llu), %llu accounts, len %llu",
                    (unsigned long long)id, (unsigned long long)sum, (unsigned long long)TOTAL,
                    (unsigned long long)n, (unsigned long long)len);
    if ((rc = strata_cursor_open(pad, &c))) READER_FAIL(a, "cursor: %s", strata_strerror(rc));
    for (rc = strata_cursor_last(c); rc == STRATA_OK; rc = strata_cursor_prev(c)) {
        strata_slice k, v;
        if ((rc = strata_cursor_get(c, &k, &v))) break;
        uint64_t pk = get64(k.data);
        if (!kv_val_eq(v.data, v.len, (uint32_t)(pk % PAD_MAX), pk))
            READER_FAIL(a, "txn %llu: padding row %llu damaged", (unsigned long long)id,
                        (unsigned long long)pk);
    }
    if (rc != STRATA_NOTFOUND) READER_FAIL(a, "padding scan: %s", strata_strerror(rc));
    strata_abort(r);
    return 0;
out:
    strata_abort(r);
    return -1;
}

static void *reader(void *p) {
    reader_arg *a = p;
    uint64_t last = 0;
    while (!atomic_load(&g_done)) {
        if (check_snapshot(a, &last)) return NULL;
        atomic_fetch_add(&g_reads, 1);
    }
    (void)check_snapshot(a, &last);              /* and once more after the last commit */
    return NULL;
}

static void init_accounts(strata_db *db) {
    strata_txn *w;
    strata_table *acc, *pad;
    cr_assert_eq(strata_begin_write(db, &w), STRATA_OK);
    cr_assert_eq(strata_table_open(w, "accounts", STRATA_KEY_U64, STRATA_CREATE, &acc), STRATA_OK);
    cr_assert_eq(strata_table_open(w, "padding", STRATA_KEY_U64, STRATA_CREATE, &pad), STRATA_OK);
    for (uint64_t i = 0; i < N_ACCOUNTS; i++) {
        uint8_t k[8], v[8];
        put64(k, i);
        put64(v, TOTAL / N_ACCOUNTS + (i == 0 ? TOTAL % N_ACCOUNTS : 0));
        cr_assert_eq(strata_put(acc, (strata_slice){ k, 8 }, (strata_slice){ v, 8 }), STRATA_OK);
    }
    cr_assert_eq(strata_commit(w), STRATA_OK);
}

/* One writer commit: a few transfers, one padding row added, one removed. */
static void writer_commit(strata_db *db, uint64_t *rng, int i) {
    strata_txn *w;
    strata_table *acc, *pad;
    cr_assert_eq(strata_begin_write(db, &w), STRATA_OK);
    cr_assert_eq(strata_table_open(w, "accounts", STRATA_KEY_U64, 0, &acc), STRATA_OK);
    cr_assert_eq(strata_table_open(w, "padding", STRATA_KEY_U64, 0, &pad), STRATA_OK);
    for (int t = 0; t < 4; t++) {
        uint8_t ka[8], kb[8], va[8], vb[8];
        put64(ka, kv_below(rng, N_ACCOUNTS));
        put64(kb, kv_below(rng, N_ACCOUNTS));
        strata_slice x, y;
        cr_assert_eq(strata_get(acc, (strata_slice){ ka, 8 }, &x), STRATA_OK);
        uint64_t bal_a = get64(x.data);
        cr_assert_eq(strata_get(acc, (strata_slice){ kb, 8 }, &y), STRATA_OK);
        uint64_t bal_b = get64(y.data), amt = bal_a ? kv_below(rng, bal_a + 1) : 0;
        if (!memcmp(ka, kb, 8)) continue;
        put64(va, bal_a - amt);
        put64(vb, bal_b + amt);
        cr_assert_eq(strata_put(acc, (strata_slice){ ka, 8 }, (strata_slice){ va, 8 }), STRATA_OK);
        cr_assert_eq(strata_put(acc, (strata_slice){ kb, 8 }, (strata_slice){ vb, 8 }), STRATA_OK);
    }
    static uint8_t vbuf[PAD_MAX];
    uint8_t pk[8];
    uint64_t id = (uint64_t)i * 7919 + kv_below(rng, 7919);
    kv_fill(vbuf, (uint32_t)(id % PAD_MAX), id);
    put64(pk, id);
    cr_assert_eq(strata_put(pad, (strata_slice){ pk, 8 }, (strata_slice){ vbuf, id % PAD_MAX }), STRATA_OK);
    if (i > PAD_ROWS) {                          /* keep about PAD_ROWS rows */
        strata_slice k, v;
        int rc = kv_below(rng, 2) ? strata_pop_first(pad, &k, &v) : strata_pop_last(pad, &k, &v);
        cr_assert_eq(rc, STRATA_OK);
    }
    cr_assert_eq(strata_txn_set_durability(w, i % 10 ? STRATA_DURABILITY_NONE
                                                      : STRATA_DURABILITY_IMMEDIATE), STRATA_OK);
    cr_assert_eq(strata_commit(w), STRATA_OK);
}

Test(concurrency, readers_see_constant_total_while_writer_frees_pages) {
    strata_db *db;
    cr_assert_eq(strata_open(g_path, STRATA_CREATE, &db), STRATA_OK);
    init_accounts(db);
    atomic_store(&g_done, 0);
    atomic_store(&g_reads, 0);
    pthread_t th[N_READERS];
    reader_arg args[N_READERS];
    for (int i = 0; i < N_READERS; i++) {
        args[i] = (reader_arg){ db, i, "" };
        cr_assert_eq(pthread_create(&th[i], NULL, reader, &args[i]), 0);
    }
    uint64_t rng = 0xACC0;
    int commits = 0;                             /* until the readers have had their turn */
    while (commits < MAX_COMMITS && (commits < WRITER_COMMITS || atomic_load(&g_reads) < MIN_READS))
        writer_commit(db, &rng, ++commits);
    atomic_store(&g_done, 1);
    for (int i = 0; i < N_READERS; i++) pthread_join(th[i], NULL);
    for (int i = 0; i < N_READERS; i++) cr_assert_str_empty(args[i].err, "reader %d (seed 0xACC0): %s", i, args[i].err);
    strata_txn *r;
    cr_assert_eq(strata_begin_read(db, &r), STRATA_OK);
    cr_assert_eq(strata_check(r, NULL, NULL), STRATA_OK);
    strata_abort(r);
    strata_info in;
    cr_assert_eq(strata_db_info(db, &in), STRATA_OK);
    printf("concurrency: %d commits, %ld snapshot checks by %d readers, %llu pages, %llu free\n",
           commits, atomic_load(&g_reads), N_READERS, (unsigned long long)in.page_count,
           (unsigned long long)in.free_pages);
    fflush(stdout);
    cr_assert_geq(atomic_load(&g_reads), MIN_READS, "readers barely ran");
    strata_close(db);
}

#ifdef STRATA_TSAN_MAIN
int main(void) {
    setup();
    readers_see_constant_total_while_writer_frees_pages();
    teardown();
    return 0;
}
#endif
