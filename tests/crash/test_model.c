/* tests/crash/test_model.c - randomized model test (redb's fuzz-against-a-
 * BTreeMap idea): tens of thousands of seeded random operations on one table
 * are applied to Strata and to the sorted-array model of kvmodel.h, and every
 * read is compared byte for byte: get, len, cursors in both directions with
 * and without set_range bounds (every flag combination), seek / seek_le /
 * seek_exact, cursors that survive writes to their table, pop_first/last,
 * del_range; commits (IMMEDIATE and NONE), aborts, clean reopen (all commits
 * survive) and crash reopen via db_close_nosync (exactly the last durable
 * commit survives). strata_check runs after every reopen.
 * Key sizes 1..64, value sizes 0..3000 (up to 3/4 page now and then, so 16 KiB
 * pages get overflow values too), page sizes 4 KiB and 16 KiB.
 * Seeds are fixed; a failure prints seed and step. */
#include <criterion/criterion.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "strata.h"
#include "kvmodel.h"

void db_close_nosync(strata_db *db);

enum { KEYSPACE = 4000, VAL_MAX = 12288 };

typedef struct ctx {
    uint64_t      seed, rng;
    long          step, steps;
    uint32_t      ps;
    char          path[96];
    strata_db    *db;
    strata_txn   *w;          /* the open write transaction, or NULL */
    strata_table *t;          /* "t" in w */
    kv_model      work;       /* what w sees                          */
    kv_model      committed;  /* the last commit                      */
    kv_model      durable;    /* the last durable commit              */
    uint8_t       vbuf[VAL_MAX];
    size_t        max_keys;
    long          n_ops, n_reopen, n_crash, n_commit, n_abort, n_scan;
} ctx;

#define CHECK(c, cond)                                                                          \
    do {                                                                                        \
        cr_assert((cond), "seed %#llx ps %u step %ld: %s", (unsigned long long)(c)->seed,       \
                  (c)->ps, (c)->step, #cond);                                                   \
    } while (0)
#define CHECK_RC(c, rc, want)                                                                   \
    cr_assert_eq((rc), (want), "seed %#llx ps %u step %ld: %s at line %d: %s (want %s)",         \
                 (unsigned long long)(c)->seed, (c)->ps, (c)->step, #rc, __LINE__,             \
                 strata_strerror(rc), strata_strerror(want))

static uint64_t rnd(ctx *c, uint64_t n) { return kv_below(&c->rng, n); }

/* Key bytes of key id: length 1..64, content from the id. */
static size_t key_of(uint64_t id, uint8_t *k) {
    uint64_t s = id * 0x9E3779B97F4A7C15ull + 12345;
    size_t len = 1 + (size_t)(kv_mix(&s) % KV_KEY_MAX);
    if (id % 3 == 0) len = 1 + id % 4;           /* many short keys: shared prefixes, clashes */
    uint64_t w = 0;
    for (size_t i = 0; i < len; i++) {
        if ((i & 7) == 0) w = kv_mix(&s);
        k[i] = (uint8_t)(w >> (8 * (i & 7)));
    }
    if (id % 5 == 0) k[0] = 'a';                 /* common first byte */
    return len;
}

static uint32_t pick_vlen(ctx *c) {
    uint64_t r = rnd(c, 100);
    if (r < 8) return 0;
    if (r < 60) return (uint32_t)rnd(c, 64);
    if (r < 95) return (uint32_t)rnd(c, 3001);
    return (uint32_t)rnd(c, c->ps * 3 / 4 + 1);  /* overflow values for 16 KiB pages too */
}

/* ------------------------------------------------------------------------ */
/* Opening, transactions                                                     */

static void db_open(ctx *c) {
    strata_options o = { .page_size = c->ps };
    int rc = strata_open_ex(c->path, STRATA_CREATE, &o, &c->db);
    CHECK_RC(c, rc, STRATA_OK);
}

static void check_db(ctx *c);

static void begin(ctx *c) {
    if (c->w) return;
    int rc = strata_begin_write(c->db, &c->w);
    CHECK_RC(c, rc, STRATA_OK);
    rc = strata_table_open(c->w, "t", STRATA_KEY_BYTES, STRATA_CREATE, &c->t);
    CHECK_RC(c, rc, STRATA_OK);
    CHECK(c, kv_copy(&c->work, &c->committed) == 0);
}

static void commit(ctx *c, int durability) {
    if (!c->w) return;
    int rc = strata_txn_set_durability(c->w, durability);
    CHECK_RC(c, rc, STRATA_OK);
    rc = strata_commit(c->w);
    CHECK_RC(c, rc, STRATA_OK);
    c->w = NULL;
    CHECK(c, kv_copy(&c->committed, &c->work) == 0);
    if (c->work.n > c->max_keys) c->max_keys = c->work.n;
    if (c->n_commit % 8 == 0) check_db(c);       /* catch damage where it is made */
    if (durability == STRATA_DURABILITY_IMMEDIATE) CHECK(c, kv_copy(&c->durable, &c->work) == 0);
    c->n_commit++;
}

static void abort_w(ctx *c) {
    if (!c->w) return;
    strata_abort(c->w);
    c->w = NULL;
    c->n_abort++;
}

/* Clean close (every commit survives) or crash (only the durable one does). */
static void reopen(ctx *c, int crash) {
    abort_w(c);
    if (crash) {
        db_close_nosync(c->db);
        CHECK(c, kv_copy(&c->committed, &c->durable) == 0);
        c->n_crash++;
    } else {
        strata_close(c->db);
        CHECK(c, kv_copy(&c->durable, &c->committed) == 0);
        c->n_reopen++;
    }
    db_open(c);
    check_db(c);
}

/* ------------------------------------------------------------------------ */
/* Comparisons                                                               */

static void expect_entry(ctx *c, strata_slice k, strata_slice v, const kv_ent *e) {
    CHECK(c, kv_keycmp(k.data, k.len, e->key, e->klen) == 0);
    CHECK(c, kv_val_eq(v.data, v.len, e->vlen, e->vseed));
}

static void expect_at(ctx *c, strata_cursor *cur, int rc, const kv_model *m, long idx) {
    if (idx < 0) { CHECK_RC(c, rc, STRATA_NOTFOUND); return; }
    CHECK_RC(c, rc, STRATA_OK);
    strata_slice k, v;
    rc = strata_cursor_get(cur, &k, &v);
    CHECK_RC(c, rc, STRATA_OK);
    expect_entry(c, k, v, &m->e[idx]);
}

/* Full read-only comparison of table t with m (scan both ways, len, gets). */
static void compare_full(ctx *c, strata_table *t, const kv_model *m) {
    uint64_t n;
    int rc = strata_len(t, &n);
    CHECK_RC(c, rc, STRATA_OK);
    CHECK(c, n == m->n);
    strata_cursor *cur;
    CHECK_RC(c, strata_cursor_open(t, &cur), STRATA_OK);
    long i = 0;
    for (rc = strata_cursor_first(cur); rc == STRATA_OK; rc = strata_cursor_next(cur), i++) {
        CHECK(c, (size_t)i < m->n);
        expect_at(c, cur, rc, m, i);
    }
    CHECK_RC(c, rc, STRATA_NOTFOUND);
    CHECK(c, (size_t)i == m->n);
    i = (long)m->n - 1;
    for (rc = strata_cursor_last(cur); rc == STRATA_OK; rc = strata_cursor_prev(cur), i--) {
        CHECK(c, i >= 0);
        expect_at(c, cur, rc, m, i);
    }
    CHECK_RC(c, rc, STRATA_NOTFOUND);
    CHECK(c, i == -1);
    strata_cursor_close(cur);
}

static void report(void *ctxp, const char *msg) {
    const ctx *c = ctxp;
    fprintf(stderr, "seed %#llx ps %u step %ld: check: %s\n", (unsigned long long)c->seed, c->ps,
            c->step, msg);
}

/* After a reopen: strata_check and a full comparison with the committed model. */
static void check_db(ctx *c) {
    strata_txn *r;
    CHECK_RC(c, strata_begin_read(c->db, &r), STRATA_OK);
    int rc = strata_check(r, report, c);
    CHECK_RC(c, rc, STRATA_OK);
    strata_table *t;
    rc = strata_table_open(r, "t", STRATA_KEY_BYTES, 0, &t);
    if (rc == STRATA_NOTFOUND) CHECK(c, c->committed.n == 0);
    else {
        CHECK_RC(c, rc, STRATA_OK);
        compare_full(c, t, &c->committed);
    }
    strata_abort(r);
}

/* ------------------------------------------------------------------------ */
/* Operations                                                                */

static void op_put(ctx *c, int overwrite) {
    uint8_t k[KV_KEY_MAX];
    size_t kl;
    if (overwrite && c->work.n) {
        const kv_ent *e = &c->work.e[rnd(c, c->work.n)];
        kl = e->klen;
        memcpy(k, e->key, kl);
    } else {
        kl = key_of(rnd(c, KEYSPACE), k);
    }
    uint32_t vl = pick_vlen(c);
    uint64_t vs = kv_mix(&c->rng);
    kv_fill(c->vbuf, vl, vs);
    int rc = strata_put(c->t, (strata_slice){ k, kl }, (strata_slice){ c->vbuf, vl });
    CHECK_RC(c, rc, STRATA_OK);
    CHECK(c, kv_put(&c->work, k, kl, vl, vs) == 0);
}

static void op_del(ctx *c) {
    uint8_t k[KV_KEY_MAX];
    size_t kl;
    if (c->work.n && rnd(c, 3)) {
        const kv_ent *e = &c->work.e[rnd(c, c->work.n)];
        kl = e->klen;
        memcpy(k, e->key, kl);
    } else {
        kl = key_of(rnd(c, KEYSPACE), k);
    }
    int had = kv_del(&c->work, k, kl);
    int rc = strata_del(c->t, (strata_slice){ k, kl });
    CHECK_RC(c, rc, had ? STRATA_OK : STRATA_NOTFOUND);
}

static void op_get(ctx *c, strata_table *t, const kv_model *m) {
    uint8_t k[KV_KEY_MAX];
    size_t kl = key_of(rnd(c, KEYSPACE), k);
    const kv_ent *e = kv_find(m, k, kl);
    strata_slice v;
    int rc = strata_get(t, (strata_slice){ k, kl }, &v);
    CHECK_RC(c, rc, e ? STRATA_OK : STRATA_NOTFOUND);
    if (e) CHECK(c, kv_val_eq(v.data, v.len, e->vlen, e->vseed));
}

/* A random key: an existing one, a neighbour-ish one, or any. */
static size_t probe_key(ctx *c, const kv_model *m, uint8_t *k) {
    if (m->n && rnd(c, 2)) {
        const kv_ent *e = &m->e[rnd(c, m->n)];
        memcpy(k, e->key, e->klen);
        size_t kl = e->klen;
        if (rnd(c, 3) == 0 && kl < KV_KEY_MAX) k[kl++] = 0;         /* just after it */
        return kl;
    }
    return key_of(rnd(c, KEYSPACE), k);
}

/* Random cursor positioning and a walk, in a random range, against m. */
static void op_scan(ctx *c, strata_table *t, const kv_model *m) {
    strata_cursor *cur;
    CHECK_RC(c, strata_cursor_open(t, &cur), STRATA_OK);
    uint8_t lo[KV_KEY_MAX], hi[KV_KEY_MAX], key[KV_KEY_MAX];
    size_t ll = 0, hl = 0;
    int has_lo = rnd(c, 2), has_hi = rnd(c, 2);
    unsigned flags = (unsigned)rnd(c, 4);
    if (has_lo) ll = probe_key(c, m, lo);
    if (has_hi) hl = probe_key(c, m, hi);
    size_t a = 0, b = m->n;
    if (has_lo || has_hi || rnd(c, 2)) {
        strata_slice sl = { lo, ll }, sh = { hi, hl };
        int rc = strata_cursor_set_range(cur, has_lo ? &sl : NULL, has_hi ? &sh : NULL, flags);
        CHECK_RC(c, rc, STRATA_OK);
        kv_range(m, has_lo ? lo : NULL, ll, (flags & STRATA_LO_EXCL) != 0, has_hi ? hi : NULL, hl,
                 (flags & STRATA_HI_INCL) != 0, &a, &b);
    }
    long idx;
    int rc, exact;
    size_t kl;
    switch (rnd(c, 5)) {
    case 0: rc = strata_cursor_first(cur); idx = a < b ? (long)a : -1; break;
    case 1: rc = strata_cursor_last(cur); idx = a < b ? (long)b - 1 : -1; break;
    case 2:                                         /* first >= key, inside the range */
        kl = probe_key(c, m, key);
        rc = strata_cursor_seek(cur, (strata_slice){ key, kl });
        idx = (long)kv_lower(m, key, kl, &exact);
        if ((size_t)idx < a) idx = (long)a;
        if ((size_t)idx >= b) idx = -1;
        break;
    case 3: {                                       /* last <= key, inside the range */
        kl = probe_key(c, m, key);
        rc = strata_cursor_seek_le(cur, (strata_slice){ key, kl });
        size_t g = kv_lower(m, key, kl, &exact);
        idx = exact ? (long)g : (long)g - 1;
        if (idx >= (long)b) idx = (long)b - 1;
        if (idx < (long)a) idx = -1;
        break;
    }
    default:
        kl = probe_key(c, m, key);
        rc = strata_cursor_seek_exact(cur, (strata_slice){ key, kl });
        idx = (long)kv_lower(m, key, kl, &exact);
        if (!exact || (size_t)idx < a || (size_t)idx >= b) idx = -1;
        break;
    }
    expect_at(c, cur, rc, m, idx);
    int steps = rnd(c, 8) == 0 ? (int)m->n + 2 : (int)rnd(c, 24);
    for (int s = 0; s < steps && idx >= 0; s++) {
        if (rnd(c, 2)) {
            rc = strata_cursor_next(cur);
            idx = (size_t)idx + 1 < b ? idx + 1 : -1;
        } else {
            rc = strata_cursor_prev(cur);
            idx = (size_t)idx > a ? idx - 1 : -1;
        }
        expect_at(c, cur, rc, m, idx);
    }
    strata_cursor_close(cur);
    c->n_scan++;
}

/* A cursor positioned on an entry survives a write to its table: next goes to
 * the first key > the saved key, prev to the last key < it. */
static void op_cursor_write(ctx *c) {
    if (!c->work.n) return;
    strata_cursor *cur;
    CHECK_RC(c, strata_cursor_open(c->t, &cur), STRATA_OK);
    size_t i = rnd(c, c->work.n);
    uint8_t saved[KV_KEY_MAX];
    size_t sl = c->work.e[i].klen;
    memcpy(saved, c->work.e[i].key, sl);
    int rc = strata_cursor_seek_exact(cur, (strata_slice){ saved, sl });
    expect_at(c, cur, rc, &c->work, (long)i);
    if (rnd(c, 2)) op_put(c, rnd(c, 2));
    else op_del(c);
    int exact;
    size_t g = kv_lower(&c->work, saved, sl, &exact);
    long idx;
    if (rnd(c, 2)) {
        rc = strata_cursor_next(cur);
        idx = exact ? (long)g + 1 : (long)g;
        if ((size_t)idx >= c->work.n) idx = -1;
    } else {
        rc = strata_cursor_prev(cur);
        idx = (long)g - 1;
    }
    expect_at(c, cur, rc, &c->work, idx);
    strata_cursor_close(cur);
}

static void op_pop(ctx *c) {
    int last = (int)rnd(c, 2);
    strata_slice k, v;
    int rc = last ? strata_pop_last(c->t, &k, &v) : strata_pop_first(c->t, &k, &v);
    if (!c->work.n) { CHECK_RC(c, rc, STRATA_NOTFOUND); return; }
    CHECK_RC(c, rc, STRATA_OK);
    size_t i = last ? c->work.n - 1 : 0;
    expect_entry(c, k, v, &c->work.e[i]);
    kv_remove_at(&c->work, i);
}

static void op_del_range(ctx *c) {
    uint8_t lo[KV_KEY_MAX], hi[KV_KEY_MAX];
    size_t ll = probe_key(c, &c->work, lo), hl = probe_key(c, &c->work, hi);
    int has_lo = rnd(c, 4) != 0, has_hi = rnd(c, 4) != 0;
    if (has_lo && has_hi && kv_keycmp(lo, ll, hi, hl) > 0) {   /* keep ranges narrow-ish */
        uint8_t t[KV_KEY_MAX];
        memcpy(t, lo, ll); memcpy(lo, hi, hl); memcpy(hi, t, ll);
        size_t x = ll; ll = hl; hl = x;
    }
    unsigned flags = (unsigned)rnd(c, 4);
    size_t a, b;
    kv_range(&c->work, has_lo ? lo : NULL, ll, (flags & STRATA_LO_EXCL) != 0, has_hi ? hi : NULL, hl,
             (flags & STRATA_HI_INCL) != 0, &a, &b);
    if (b - a > 40 && rnd(c, 3)) return;             /* rarely wipe big ranges */
    uint64_t nd = 0;
    strata_slice sl = { lo, ll }, sh = { hi, hl };
    int rc = strata_del_range(c->t, has_lo ? &sl : NULL, has_hi ? &sh : NULL, flags, &nd);
    CHECK_RC(c, rc, STRATA_OK);
    CHECK(c, nd == b - a);
    for (size_t n = b - a; n > 0; n--) kv_remove_at(&c->work, a);
}

/* Read transaction: compare a few reads with the committed model. */
static void op_read_txn(ctx *c) {
    strata_txn *r;
    CHECK_RC(c, strata_begin_read(c->db, &r), STRATA_OK);
    strata_table *t;
    int rc = strata_table_open(r, "t", STRATA_KEY_BYTES, 0, &t);
    if (rc == STRATA_NOTFOUND) {
        CHECK(c, c->committed.n == 0);
    } else {
        CHECK_RC(c, rc, STRATA_OK);
        uint64_t n;
        CHECK_RC(c, strata_len(t, &n), STRATA_OK);
        CHECK(c, n == c->committed.n);
        for (int i = 0; i < 4; i++) op_get(c, t, &c->committed);
        op_scan(c, t, &c->committed);
    }
    strata_abort(r);
}

/* Phases alternate between growing the table (mostly puts) and shrinking it
 * (deletes, pops, range deletes), so splits, merges and root collapses all
 * happen, at every tree height the key space allows. */
static void step(ctx *c) {
    int shrink = (c->step / (c->steps / 6 + 1)) % 2;
    uint64_t r = rnd(c, 1000);
    c->n_ops++;
    if (r < 990) begin(c);
    if (r < 600) {                                   /* writes: phase-dependent mix */
        uint64_t w = rnd(c, 100);
        if (w < (shrink ? 20u : 70u)) op_put(c, 0);
        else if (w < (shrink ? 35u : 85u)) op_put(c, 1);
        else if (w < (shrink ? 80u : 95u)) op_del(c);
        else if (w < 97 || !shrink) op_cursor_write(c);
        else op_del_range(c);
    }
    else if (r < 720) op_get(c, c->t, &c->work);
    else if (r < 820) op_scan(c, c->t, &c->work);
    else if (r < 850) op_cursor_write(c);
    else if (r < 870) shrink ? op_pop(c) : op_get(c, c->t, &c->work);
    else if (r < 925) op_read_txn(c);
    else if (r < 955) commit(c, STRATA_DURABILITY_IMMEDIATE);
    else if (r < 975) commit(c, STRATA_DURABILITY_NONE);
    else if (r < 988) abort_w(c);
    else if (r < 990) {
        uint64_t n;
        CHECK_RC(c, strata_len(c->t, &n), STRATA_OK);
        CHECK(c, n == c->work.n);
    } else if (r < 996) reopen(c, 0);
    else reopen(c, 1);
}

static void run_seed(uint64_t seed, uint32_t ps, long steps) {
    ctx *c = calloc(1, sizeof *c);
    cr_assert_not_null(c);
    c->seed = seed;
    c->rng = seed;
    c->ps = ps;
    c->steps = steps;
    const char *dir = access("/dev/shm", W_OK) == 0 ? "/dev/shm" : "/tmp";
    snprintf(c->path, sizeof c->path, "%s/strata-model-%d-%llx.db", dir, (int)getpid(),
             (unsigned long long)seed);
    unlink(c->path);
    db_open(c);
    for (c->step = 0; c->step < steps; c->step++) step(c);
    commit(c, STRATA_DURABILITY_IMMEDIATE);
    reopen(c, 0);
    strata_info in;
    CHECK_RC(c, strata_db_info(c->db, &in), STRATA_OK);
    CHECK(c, in.page_size == ps);
    printf("model seed %#llx ps %u: %ld ops, %ld commits, %ld aborts, %ld scans, %ld reopens, "
           "%ld crash reopens, max %zu keys, final %zu keys, %llu pages\n",
           (unsigned long long)seed, ps, c->n_ops, c->n_commit, c->n_abort, c->n_scan, c->n_reopen,
           c->n_crash, c->max_keys, c->committed.n, (unsigned long long)in.page_count);
    fflush(stdout);
    CHECK(c, c->n_reopen > 0 && c->n_crash > 0 && c->n_commit > 0);
    strata_close(c->db);
    unlink(c->path);
    kv_free(&c->work);
    kv_free(&c->committed);
    kv_free(&c->durable);
    free(c);
}

TestSuite(model, .timeout = 120);

/* Regression (core bug, see docs/RELIABILITY.md): when the first child of a
 * branch becomes empty, rebalance() unlinks it with node_remove(parent, 0),
 * and the old cell 1 - with its separator key - becomes cell 0. Branch cell
 * 0 must have an empty key (page.h), so node_validate() rejects the committed
 * page: after reopen the table reads STRATA_ECORRUPT. Leaves here hold four
 * ~1 KiB inline cells, so the emptied leaf cannot merge with its full
 * neighbour first. */
Test(model, emptied_first_leaf_keeps_branch_valid) {
    char path[96];
    snprintf(path, sizeof path, "/tmp/strata-model-first-%d.db", (int)getpid());
    unlink(path);
    strata_db *db;
    strata_txn *w;
    strata_table *t;
    uint8_t val[1000];
    memset(val, 'v', sizeof val);
    cr_assert_eq(strata_open(path, STRATA_CREATE, &db), STRATA_OK);
    cr_assert_eq(strata_begin_write(db, &w), STRATA_OK);
    cr_assert_eq(strata_table_open(w, "t", STRATA_KEY_BYTES, STRATA_CREATE, &t), STRATA_OK);
    for (int i = 0; i < 12; i++) {                   /* sequential: leaves fill completely */
        char k[3] = { 'k', (char)('a' + i), 0 };
        cr_assert_eq(strata_put(t, (strata_slice){ k, 2 }, (strata_slice){ val, sizeof val }), STRATA_OK);
    }
    cr_assert_eq(strata_commit(w), STRATA_OK);
    cr_assert_eq(strata_begin_write(db, &w), STRATA_OK);
    cr_assert_eq(strata_table_open(w, "t", STRATA_KEY_BYTES, 0, &t), STRATA_OK);
    for (int i = 0; i < 4; i++) {                    /* empty the first leaf */
        char k[3] = { 'k', (char)('a' + i), 0 };
        cr_assert_eq(strata_del(t, (strata_slice){ k, 2 }), STRATA_OK);
    }
    cr_assert_eq(strata_commit(w), STRATA_OK);
    strata_txn *r;
    cr_assert_eq(strata_begin_read(db, &r), STRATA_OK);
    int rc = strata_check(r, NULL, NULL);
    strata_abort(r);
    cr_assert_eq(rc, STRATA_OK, "BUG btree.c rebalance(): branch cell 0 kept a key: check -> %s",
                 strata_strerror(rc));
    strata_close(db);
    cr_assert_eq(strata_open(path, 0, &db), STRATA_OK);
    cr_assert_eq(strata_begin_read(db, &r), STRATA_OK);
    cr_assert_eq(strata_table_open(r, "t", STRATA_KEY_BYTES, 0, &t), STRATA_OK);
    uint64_t n = 0;
    strata_cursor *cur;
    cr_assert_eq(strata_cursor_open(t, &cur), STRATA_OK);
    for (rc = strata_cursor_first(cur); rc == STRATA_OK; rc = strata_cursor_next(cur)) n++;
    cr_assert_eq(rc, STRATA_NOTFOUND, "after reopen: %s", strata_strerror(rc));
    cr_assert_eq(n, 8);
    strata_abort(r);
    strata_close(db);
    unlink(path);
}

Test(model, random_ops_4k_pages) {
    run_seed(0x4B1D0001ull, 4096, 40000);
    run_seed(0x4B1D0002ull, 4096, 40000);
}

Test(model, random_ops_16k_pages) {
    run_seed(0x16C0DE01ull, 16384, 40000);
}

Test(model, random_ops_many_small_txns) {
    run_seed(0x5A11A5E5ull, 4096, 20000);
}
