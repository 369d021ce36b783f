/* tests/fractal/test_review.c - adversarial tests of the fractal index:
 * seeded random insert / upsert (duplicate ids in a batch) / delete / delete
 * everything / train sequences with aborts, savepoint rollbacks (handle
 * closed around them) and reopens, for every metric and tiny configs
 * (max_leaf, min_leaf, fan-out, depth, buffer_cap 1 and = max_leaf, KEEP_RAW
 * off, shared codebook, retrain policy, mixed magnitudes); after every commit
 * the invariant check, the fan-out bound, no empty leaf, and searches against
 * brute force on the present set (exhaustive probes with rerank = all give
 * the exact top k; time windows; metadata filter; every present id exactly
 * once; the k best a prefix of all). Plus: damaged rows (every byte of every
 * small row of an index flipped in turn: a clear error or a clean answer,
 * never a crash or a hang, and the check misses only f64 rounding-sized sum
 * changes and unused codewords), "rerank = all" as UINT32_MAX, leaves emptied
 * by upserts or left as only children, the retrain policy's threshold, sums
 * after large members left, writes through a read transaction's handle, a
 * savepoint rollback while a handle is open (it reloads), and a second handle
 * on the same index in the same transaction (each reloads after the other's
 * writes). */
#include <criterion/criterion.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "db.h"
#include "fractal_int.h"
#include "ft_util.h"

static tdb g;
static void setup(void) { tdb_open(&g); }
static void teardown(void) { tdb_close(&g); }
TestSuite(fractal_review, .init = setup, .fini = teardown);

enum { NID = 240, DIM = 8, K = 6 };

typedef struct model { uint8_t live[NID]; float v[NID][DIM]; uint64_t ts[NID]; } model;

typedef struct rcfg {
    strata_metric metric;
    uint32_t pq_m, max_leaf, min_leaf, fanout, depth, bufcap, flags, growth, train_size;
} rcfg;

/* Exact top k (dist, id) of the present set (ts in [lo, hi], id % 3 != 0
 * when filt), ties by id, into h; returns how many. */
static size_t brute(const model *m, strata_metric mt, const float *q, size_t k, uint64_t lo,
                    uint64_t hi, int filt, strata_hit *h)
{
    size_t got = 0;
    for (uint64_t i = 0; i < NID; i++) {
        if (!m->live[i] || m->ts[i] < lo || m->ts[i] > hi || (filt && i % 3 == 0)) continue;
        float d;
        cr_assert_eq(strata_vec_distance(mt, q, m->v[i], DIM, &d), STRATA_OK);
        strata_hit x = { i, d };
        size_t pos = got < k ? got++ : k;
        if (pos == k) {
            if (!(d < h[k - 1].dist || (d == h[k - 1].dist && i < h[k - 1].id))) continue;
            pos = k - 1;
        }
        while (pos > 0 && (h[pos - 1].dist > d || (h[pos - 1].dist == d && h[pos - 1].id > i))) {
            h[pos] = h[pos - 1];
            pos--;
        }
        h[pos] = x;
    }
    return got;
}

static int not_div3(void *ctx, uint64_t id) { (void)ctx; return id % 3 != 0; }

/* Every internal node but a root at max_depth has at most max_fanout
 * children; with merging on (min_leaf > 0) no leaf but a root leaf is empty
 * (deletes and upserts merge emptied leaves, only children included). */
static void shape_ok(strata_fractal *f, const char *what)
{
    for (uint32_t i = 0; i < f->n_slots; i++) {
        const frac_node *n = frac_node_at(f, i);
        if (n && n->leaf)
            cr_assert(n->pop || !f->cfg.min_leaf || n->parent == FRAC_NONE,
                      "%s: leaf %u is empty", what, n->id);
        if (!n || n->leaf) continue;
        int capped_root = n->id == f->cfg.root && (uint32_t)n->level + 1 >= f->cfg.max_depth;
        cr_assert(capped_root || n->n_child <= f->cfg.max_fanout,
                  "%s: node %u (level %u) has %u children, max_fanout %u", what, n->id,
                  (unsigned)n->level, n->n_child, f->cfg.max_fanout);
    }
}

static int g_mag_mix;   /* scale some vectors by 1e3 or 1e-3 */

static void rand_vec(uint64_t *s, float *v, int region)
{
    double sc = 1;
    if (g_mag_mix) { uint64_t r = ft_rng(s) % 4; sc = r == 0 ? 1e3 : r == 1 ? 1e-3 : 1; }
    for (int j = 0; j < DIM; j++) v[j] = (float)(sc * ((region % 3) * 4 - 4 + (j == region % DIM) * 3 + ft_gauss(s)));
}

/* Add ids [lo, hi) (timestamp = id) with rand_vec vectors of cluster cl. */
static void add_range(strata_fractal *f, uint64_t *s, uint64_t lo, uint64_t hi, int cl)
{
    float v[DIM];
    for (uint64_t i = lo; i < hi; i++) {
        rand_vec(s, v, cl);
        cr_assert_eq(strata_fractal_add(f, i, v, DIM, i), STRATA_OK, "add %llu", (unsigned long long)i);
    }
}

/* Searches of the committed state against brute force. */
static void verify(const model *m, const rcfg *rc, uint64_t *s, const char *what)
{
    strata_txn *x = tr(&g);
    strata_fractal *f = NULL;
    cr_assert_eq(strata_fractal_open(x, "r", &f), STRATA_OK, "%s", what);
    cr_assert_eq(ft_check(x, "r"), STRATA_OK, "%s", what);
    shape_ok(f, what);
    uint64_t n_live = 0;
    for (int i = 0; i < NID; i++) n_live += m->live[i];
    strata_fractal_info info;
    cr_assert_eq(strata_fractal_info_get(f, &info), STRATA_OK);
    cr_assert_eq(info.n_vectors, n_live, "%s", what);
    if (info.codebook_gen == 0) {   /* search before codebooks: a clear error */
        float q[DIM] = {1};
        strata_hit h[1];
        size_t got;
        cr_assert_eq(strata_fractal_search(f, q, DIM, 1, NULL, h, &got), STRATA_EINVAL);
        strata_fractal_close(f);
        strata_abort(x);
        return;
    }
    int raw = (rc->flags & STRATA_FRACTAL_KEEP_RAW) != 0;
    strata_hit got_h[NID], want[NID];
    size_t got, n_want;
    for (int t = 0; t < 4; t++) {
        float q[DIM];
        rand_vec(s, q, (int)(ft_rng(s) % 6));
        uint64_t lo = 0, hi = UINT64_MAX;
        int win = t & 1, filt = t >= 2;
        if (win) {
            lo = ft_rng(s) % 30000;
            hi = lo + ft_rng(s) % 12000;
        }
        strata_fractal_params p = { .beam = 1u << 20, .n_probe = 1u << 20,
                                    .flags = win ? STRATA_FRACTAL_WINDOW : 0, .ts_min = lo,
                                    .ts_max = hi, .filter = filt ? not_div3 : NULL };
        if (raw) {
            p.rerank = t == 3 ? UINT32_MAX : NID;   /* "all", two spellings */
            cr_assert_eq(strata_fractal_search(f, q, DIM, K, &p, got_h, &got), STRATA_OK, "%s", what);
            n_want = brute(m, rc->metric, q, K, lo, hi, filt, want);
            cr_assert_eq(got, n_want, "%s t%d: %zu hits, %zu present", what, t, got, n_want);
            for (size_t i = 0; i < got; i++)
                cr_assert(got_h[i].id == want[i].id && got_h[i].dist == want[i].dist,
                          "%s t%d hit %zu: (%llu, %g) want (%llu, %g)", what, t, i,
                          (unsigned long long)got_h[i].id, got_h[i].dist,
                          (unsigned long long)want[i].id, want[i].dist);
        } else {
            p.rerank = 1;
            cr_assert_eq(strata_fractal_search(f, q, DIM, K, &p, got_h, &got), STRATA_EINVAL);
            p.rerank = 0;
        }
        /* every present id in the window and filter exactly once */
        cr_assert_eq(strata_fractal_search(f, q, DIM, NID, &p, got_h, &got), STRATA_OK, "%s", what);
        n_want = brute(m, rc->metric, q, NID, lo, hi, filt, want);
        cr_assert_eq(got, n_want, "%s t%d: %zu hits of %zu", what, t, got, n_want);
        /* the k best are a prefix of all (cuts and the 8-bit filter drop
         * nothing), with and without rerank */
        strata_hit few[K], all[NID];
        size_t n_few, n_all;
        strata_fractal_params p0 = p;
        p0.rerank = 0;
        cr_assert_eq(strata_fractal_search(f, q, DIM, NID, &p0, all, &n_all), STRATA_OK);
        cr_assert_eq(strata_fractal_search(f, q, DIM, K, &p0, few, &n_few), STRATA_OK);
        cr_assert_eq(n_all, got);
        cr_assert_eq(n_few, n_all < K ? n_all : K);
        for (size_t i = 0; i < n_few; i++)
            cr_assert(few[i].id == all[i].id && few[i].dist == all[i].dist,
                      "%s t%d: hit %zu of k = %d differs from the full list", what, t, i, K);
        cr_assert_eq(strata_fractal_search(f, q, DIM, K, &p, few, &n_few), STRATA_OK);
        cr_assert_eq(n_few, got < K ? got : K);
        for (size_t i = 0; i < n_few; i++)
            cr_assert(few[i].id == got_h[i].id && few[i].dist == got_h[i].dist,
                      "%s t%d: hit %zu of k = %d differs from the full list", what, t, i, K);
        uint8_t seen[NID] = {0};
        for (size_t i = 0; i < got; i++) {
            uint64_t id = got_h[i].id;
            cr_assert(id < NID && m->live[id] && !seen[id], "%s: id %llu", what, (unsigned long long)id);
            cr_assert(m->ts[id] >= lo && m->ts[id] <= hi && !(filt && id % 3 == 0));
            seen[id] = 1;
            if (i) cr_assert(got_h[i - 1].dist <= got_h[i].dist, "%s: hits out of order", what);
        }
    }
    strata_fractal_close(f);
    strata_abort(x);
}

static void run(const rcfg *rc, uint64_t seed)
{
    char what[96];
    uint64_t s = seed;
    model *m = calloc(1, sizeof *m), *saved = malloc(sizeof *m), *at_sp = malloc(sizeof *m);
    cr_assert(m && saved && at_sp);
    strata_fractal_config c = ft_config(DIM, rc->metric, rc->pq_m, rc->max_leaf, rc->min_leaf,
                                        rc->fanout, rc->depth, rc->bufcap, rc->flags);
    c.retrain_growth = rc->growth;
    c.train_size = rc->train_size;
    strata_txn *x = tw(&g);
    cr_assert_eq(strata_fractal_create(x, "r", &c, NULL), STRATA_OK);
    cr_assert_eq(strata_commit(x), STRATA_OK);
    for (int round = 0; round < 24; round++) {
        snprintf(what, sizeof what, "metric %d seed %llu round %d", (int)rc->metric,
                 (unsigned long long)seed, round);
        int do_abort = ft_rng(&s) % 7 == 0;
        memcpy(saved, m, sizeof *m);
        strata_fractal *f = NULL;
        strata_savepoint *sp = NULL;
        x = tw(&g);
        cr_assert_eq(strata_fractal_open(x, "r", &f), STRATA_OK, "%s", what);
        int region = round / 4;
        int n_ops = 30 + (int)(ft_rng(&s) % 120);
        int sp_at = ft_rng(&s) % 3 == 0 ? (int)(ft_rng(&s) % (uint64_t)n_ops) : -1;
        int rb_at = sp_at >= 0 ? sp_at + (int)(ft_rng(&s) % (uint64_t)(n_ops - sp_at)) : -1;
        if (round == 23) n_ops = 0;
        for (int op = 0; op < n_ops; op++) {
            if (op == sp_at) {   /* the handle is closed around a savepoint and a rollback */
                strata_fractal_close(f);
                cr_assert_eq(strata_savepoint_create(x, &sp), STRATA_OK);
                memcpy(at_sp, m, sizeof *m);
                cr_assert_eq(strata_fractal_open(x, "r", &f), STRATA_OK);
            }
            uint64_t r = ft_rng(&s) % 20;
            int rv;
            if (r < 9) {   /* a batch of 1..4, ids may repeat: the last one wins */
                uint64_t ids[4], ts[4];
                float v[4][DIM];
                size_t nb = 1 + ft_rng(&s) % 4;
                for (size_t b = 0; b < nb; b++) {
                    ids[b] = b && ft_rng(&s) % 3 == 0 ? ids[b - 1] : ft_rng(&s) % NID;
                    if (ft_rng(&s) % 10 == 0 && b) memcpy(v[b], v[b - 1], sizeof v[b]);   /* equal vectors */
                    else rand_vec(&s, v[b], region);
                    ts[b] = (uint64_t)round * 1000 + (uint64_t)op * 10 + b;
                }
                rv = strata_fractal_add_batch(f, nb, ids, &v[0][0], DIM, ts);
                cr_assert_eq(rv, STRATA_OK, "%s op %d", what, op);
                for (size_t b = 0; b < nb; b++) {
                    m->live[ids[b]] = 1;
                    memcpy(m->v[ids[b]], v[b], sizeof v[b]);
                    m->ts[ids[b]] = ts[b];
                }
            } else if (r < 17) {
                uint64_t id = ft_rng(&s) % NID;
                rv = strata_fractal_delete(f, id);
                cr_assert_eq(rv, m->live[id] ? STRATA_OK : STRATA_NOTFOUND, "%s op %d rc %d", what, op, rv);
                m->live[id] = 0;
            } else if (r == 17 && round % 5 == 4) {   /* delete everything */
                for (uint64_t id = 0; id < NID; id++)
                    if (m->live[id]) cr_assert_eq(strata_fractal_delete(f, id), STRATA_OK, "%s", what);
                memset(m->live, 0, sizeof m->live);
            } else if (r == 18 || (round == 1 && op == 0)) {
                rv = strata_fractal_train(f, 64 + ft_rng(&s) % 200);
                int any = 0;
                for (int i = 0; i < NID; i++) any |= m->live[i];
                cr_assert_eq(rv, any ? STRATA_OK : STRATA_EINVAL, "%s op %d", what, op);
            } else {   /* a dimension mismatch changes nothing */
                float v[DIM + 1] = {0};
                uint64_t id = 1;
                cr_assert_eq(strata_fractal_add_batch(f, 1, &id, v, DIM + 1, NULL), STRATA_EINVAL);
            }
            if (op == rb_at) {
                strata_fractal_close(f);
                cr_assert_eq(strata_savepoint_rollback(x, sp), STRATA_OK);
                memcpy(m, at_sp, sizeof *m);
                cr_assert_eq(strata_fractal_open(x, "r", &f), STRATA_OK, "%s", what);
            }
        }
        strata_fractal_close(f);
        strata_savepoint_release(sp);
        if (do_abort) {
            strata_abort(x);
            memcpy(m, saved, sizeof *m);
        } else {
            cr_assert_eq(ft_check(x, "r"), STRATA_OK, "%s", what);
            cr_assert_eq(strata_commit(x), STRATA_OK);
        }
        if (round % 6 == 5) tdb_reopen(&g);
        if (!do_abort || round % 4 == 0) verify(m, rc, &s, what);
    }
    free(m); free(saved); free(at_sp);
}

Test(fractal_review, l2_raw_tiny_bufcap1)
{
    rcfg r = { STRATA_METRIC_L2, 4, 8, 2, 2, 5, 1, STRATA_FRACTAL_KEEP_RAW, 0, 40 };
    run(&r, 11);
}
Test(fractal_review, ip_raw_shared_bufcap_max_leaf_retrain)
{
    rcfg r = { STRATA_METRIC_IP, 4, 12, 3, 3, 3, 12, STRATA_FRACTAL_KEEP_RAW | STRATA_FRACTAL_SHARED_CODEBOOK, 50, 30 };
    run(&r, 12);
}
Test(fractal_review, cosine_raw_depth2)
{
    rcfg r = { STRATA_METRIC_COSINE, 2, 6, 2, 2, 2, 3, STRATA_FRACTAL_KEEP_RAW, 0, 0 };
    run(&r, 13);
}
Test(fractal_review, l2_noraw_bufcap1)
{
    rcfg r = { STRATA_METRIC_L2, 4, 10, 4, 3, 6, 1, 0, 0, 25 };
    run(&r, 14);
}
Test(fractal_review, ip_noraw_shared_retrain)
{
    rcfg r = { STRATA_METRIC_IP, 4, 16, 0, 4, 3, 16, STRATA_FRACTAL_SHARED_CODEBOOK, 100, 0 };
    run(&r, 15);
}
Test(fractal_review, cosine_noraw_retrain)
{
    rcfg r = { STRATA_METRIC_COSINE, 8, 8, 3, 2, 6, 4, 0, 30, 20 };
    run(&r, 16);
}
Test(fractal_review, mixed_magnitudes_l2_noraw_and_ip_raw)
{
    g_mag_mix = 1;   /* sums of 1e3 and 1e-3 vectors: f64 rounding, cancellations */
    rcfg a = { STRATA_METRIC_L2, 4, 9, 3, 3, 4, 3, 0, 0, 20 };
    run(&a, 18);
    tdb_close(&g);
    tdb_open(&g);
    rcfg b = { STRATA_METRIC_IP, 2, 7, 2, 2, 5, 2, STRATA_FRACTAL_KEEP_RAW, 40, 15 };
    run(&b, 19);
}
Test(fractal_review, l2_raw_shared_fanout2_deep)
{
    rcfg r = { STRATA_METRIC_L2, 2, 4, 1, 2, 8, 2, STRATA_FRACTAL_KEEP_RAW | STRATA_FRACTAL_SHARED_CODEBOOK, 0, 10 };
    run(&r, 17);
}

/* Upserts that move every member of a region away empty its leaves; those
 * removals merge like deletes, so no empty leaf is left behind. */
Test(fractal_review, upserts_leave_no_empty_leaf)
{
    strata_txn *x = tw(&g);
    strata_fractal_config c = ft_config(DIM, STRATA_METRIC_L2, 4, 8, 2, 4, 4, 4, STRATA_FRACTAL_KEEP_RAW);
    strata_fractal *f = NULL;
    cr_assert_eq(strata_fractal_create(x, "u", &c, &f), STRATA_OK);
    uint64_t s = 5;
    float v[DIM];
    add_range(f, &s, 0, 40, 0);
    cr_assert_eq(strata_fractal_train(f, 0), STRATA_OK);
    strata_fractal_info a, b;
    cr_assert_eq(strata_fractal_info_get(f, &a), STRATA_OK);
    cr_assert_gt(a.n_leaves, 3);
    for (uint64_t i = 0; i < 40; i++) {   /* every vector moves far away */
        rand_vec(&s, v, 0);
        for (int j = 0; j < DIM; j++) v[j] += 100.0f;
        cr_assert_eq(strata_fractal_add(f, i, v, DIM, 100 + i), STRATA_OK);
    }
    cr_assert_eq(strata_fractal_info_get(f, &b), STRATA_OK);
    cr_assert_eq(b.n_vectors, 40);
    cr_assert_gt(b.smallest_leaf, 0, "%u leaves, an empty one among them", b.n_leaves);
    strata_fractal_close(f);
    cr_assert_eq(ft_check(x, "u"), STRATA_OK);
    strata_abort(x);
}

/* A savepoint rollback while a handle is open used to leave the handle's
 * node cache describing writes that no longer exist, and the next add
 * corrupted the index. The handle now compares db_txn_counter (which a
 * rollback bumps) with the value it loaded at and reloads: the rolled-back
 * vectors are gone from it, later adds work, and an index created after the
 * savepoint is EBADTXN. */
Test(fractal_review, savepoint_rollback_with_open_handle)
{
    strata_txn *x = tw(&g);
    strata_fractal_config c = ft_config(DIM, STRATA_METRIC_L2, 4, 8, 2, 4, 4, 4, STRATA_FRACTAL_KEEP_RAW);
    strata_fractal *f = NULL;
    cr_assert_eq(strata_fractal_create(x, "s", &c, &f), STRATA_OK);
    uint64_t s = 6;
    float v[DIM];
    add_range(f, &s, 0, 30, 0);
    strata_savepoint *sp = NULL;
    cr_assert_eq(strata_savepoint_create(x, &sp), STRATA_OK);
    add_range(f, &s, 30, 60, 1);
    cr_assert_eq(strata_fractal_delete(f, 3), STRATA_OK);
    cr_assert_eq(strata_savepoint_rollback(x, sp), STRATA_OK);
    /* the handle reloads: 0..29 are back as before, 30..59 are gone */
    strata_fractal_info info;
    cr_assert_eq(strata_fractal_info_get(f, &info), STRATA_OK);
    cr_assert_eq(info.n_vectors, 30);
    cr_assert_eq(strata_fractal_get(f, 3, NULL, 0, NULL), STRATA_OK);
    cr_assert_eq(strata_fractal_get(f, 45, NULL, 0, NULL), STRATA_NOTFOUND);
    add_range(f, &s, 60, 80, 2);
    cr_assert_eq(strata_fractal_info_get(f, &info), STRATA_OK);
    cr_assert_eq(info.n_vectors, 50);
    strata_savepoint_release(sp);
    cr_assert_eq(ft_check(x, "s"), STRATA_OK);
    /* an index created after the savepoint is gone after the rollback */
    cr_assert_eq(strata_savepoint_create(x, &sp), STRATA_OK);
    strata_fractal *f2 = NULL;
    cr_assert_eq(strata_fractal_create(x, "late", &c, &f2), STRATA_OK);
    rand_vec(&s, v, 0);
    cr_assert_eq(strata_fractal_add(f2, 1, v, DIM, 1), STRATA_OK);
    cr_assert_eq(strata_savepoint_rollback(x, sp), STRATA_OK);
    cr_assert_eq(strata_fractal_add(f2, 2, v, DIM, 2), STRATA_EBADTXN);
    strata_fractal_close(f2);
    strata_savepoint_release(sp);
    strata_fractal_close(f);
    cr_assert_eq(ft_check(x, "s"), STRATA_OK);
    cr_assert_eq(strata_commit(x), STRATA_OK);
}

/* The retrain policy needs growth: with a small retrain_growth the threshold
 * n_trained * (1 + growth / 100) is above n_trained (rounded up), so an upsert
 * or a delete and re-insert at the trained size does not retrain. */
Test(fractal_review, retrain_policy_needs_growth)
{
    strata_txn *x = tw(&g);
    strata_fractal_config c = ft_config(DIM, STRATA_METRIC_L2, 4, 16, 2, 4, 4, 4, STRATA_FRACTAL_KEEP_RAW);
    c.train_size = 30;
    c.retrain_growth = 1;   /* 1 %: next training at 31 (30.3 rounded up) */
    strata_fractal *f = NULL;
    cr_assert_eq(strata_fractal_create(x, "p", &c, &f), STRATA_OK);
    uint64_t s = 7;
    float v[DIM];
    strata_fractal_info info;
    add_range(f, &s, 0, 30, 0);
    cr_assert_eq(strata_fractal_info_get(f, &info), STRATA_OK);
    cr_assert_eq(info.codebook_gen, 1);   /* the auto-train at 30 */
    for (uint64_t i = 0; i < 5; i++) {    /* upserts: still 30 vectors */
        rand_vec(&s, v, 0);
        cr_assert_eq(strata_fractal_add(f, i, v, DIM, i), STRATA_OK);
    }
    cr_assert_eq(strata_fractal_delete(f, 7), STRATA_OK);
    cr_assert_eq(strata_fractal_add(f, 7, v, DIM, 7), STRATA_OK);
    cr_assert_eq(strata_fractal_info_get(f, &info), STRATA_OK);
    cr_assert_eq(info.codebook_gen, 1, "retrained %u times without growth", info.codebook_gen - 1);
    rand_vec(&s, v, 0);
    cr_assert_eq(strata_fractal_add(f, 30, v, DIM, 30), STRATA_OK);   /* 31: grown by 1 % */
    cr_assert_eq(strata_fractal_info_get(f, &info), STRATA_OK);
    cr_assert_eq(info.codebook_gen, 2);
    strata_fractal_close(f);
    cr_assert_eq(ft_check(x, "p"), STRATA_OK);
    strata_abort(x);
}

/* ---- damaged rows: every error clear, never a crash or a hang ---- */

static const char *const sfx[] = { "config", "nodes", "cent", "sums", "edges", "buf", "post",
                                   "assign", "raw", "codebooks" };

static strata_table *itab(strata_txn *x, const char *suffix)
{
    char name[64];
    strata_table *t = NULL;
    strata_table_spec spec = { .key_type = (!strcmp(suffix, "edges") || !strcmp(suffix, "buf"))
                                               ? STRATA_KEY_BYTES : STRATA_KEY_U64 };
    snprintf(name, sizeof name, "__frac:d:%s", suffix);
    cr_assert_eq(db_internal_table_open(x, name, &spec, 0, &t), STRATA_OK);
    return t;
}

typedef struct row { uint8_t k[16]; size_t kl; uint8_t *v; size_t vl; } row;

static size_t rows_of(strata_txn *x, const char *suffix, row **out)
{
    strata_cursor *c = NULL;
    strata_slice k, v;
    size_t n = 0, cap = 0;
    row *r = NULL;
    cr_assert_eq(strata_cursor_open(itab(x, suffix), &c), STRATA_OK);
    for (int rc = strata_cursor_first(c); rc == STRATA_OK; rc = strata_cursor_next(c)) {
        cr_assert_eq(strata_cursor_get(c, &k, &v), STRATA_OK);
        if (n == cap) cr_assert_not_null(r = realloc(r, (cap = cap ? 2 * cap : 64) * sizeof *r));
        cr_assert_leq(k.len, sizeof r[n].k);
        memcpy(r[n].k, k.data, k.len);
        r[n].kl = k.len;
        r[n].vl = v.len;
        cr_assert_not_null(r[n].v = malloc(v.len ? v.len : 1));
        memcpy(r[n].v, v.data, v.len);
        n++;
    }
    strata_cursor_close(c);
    *out = r;
    return n;
}

static int rc_in(int rc, int a, int b, int c) { return rc == a || rc == b || rc == c; }

/* With the damage in place: open, check, and (if it opens) search, insert,
 * delete and train; each answers OK or a clear error. Returns check's rc. */
static int exercise(strata_txn *x, uint64_t *s)
{
    strata_fractal *f = NULL;
    int rc = strata_fractal_open(x, "d", &f);
    cr_assert(rc_in(rc, STRATA_OK, STRATA_ECORRUPT, STRATA_EVERSION), "open rc %d", rc);
    int chk = strata_fractal_check(x, "d", NULL, NULL);
    cr_assert(rc_in(chk, STRATA_OK, STRATA_ECORRUPT, STRATA_EVERSION), "check rc %d", chk);
    if (rc != STRATA_OK) return chk;
    float q[4];
    strata_hit h[8];
    size_t got;
    for (int j = 0; j < 4; j++) q[j] = (float)ft_gauss(s) * 3;
    strata_fractal_params p = { .beam = 64, .n_probe = 64,
                                .rerank = (f->cfg.flags & STRATA_FRACTAL_KEEP_RAW) ? 8 : 0 };
    rc = strata_fractal_search(f, q, 4, 8, &p, h, &got);
    cr_assert(rc_in(rc, STRATA_OK, STRATA_ECORRUPT, STRATA_ECORRUPT), "search rc %d", rc);
    p.flags = STRATA_FRACTAL_WINDOW; p.ts_min = 10; p.ts_max = 40; p.rerank = 0;
    rc = strata_fractal_search(f, q, 4, 8, &p, h, &got);
    cr_assert(rc_in(rc, STRATA_OK, STRATA_ECORRUPT, STRATA_ECORRUPT), "window search rc %d", rc);
    for (int i = 0; i < 6; i++) {   /* writes until the first error poisons the handle */
        uint64_t id = ft_rng(s) % 90;
        rc = i % 2 ? strata_fractal_delete(f, id) : strata_fractal_add(f, id, q, 4, 50 + (uint64_t)i);
        cr_assert(rc_in(rc, STRATA_OK, STRATA_ECORRUPT, STRATA_NOTFOUND) || rc == STRATA_EBADTXN,
                  "write rc %d", rc);
    }
    rc = strata_fractal_train(f, 0);
    cr_assert(rc_in(rc, STRATA_OK, STRATA_ECORRUPT, STRATA_EBADTXN) || rc == STRATA_EINVAL, "train rc %d", rc);
    strata_fractal_close(f);
    return chk;
}

static void damage_all(uint32_t flags, strata_metric metric)
{
    uint64_t s = 99;
    strata_txn *x = tw(&g);
    strata_fractal_config c = ft_config(4, metric, 2, 8, 2, 3, 4, 4, flags);
    strata_fractal *f = NULL;
    cr_assert_eq(strata_fractal_create(x, "d", &c, &f), STRATA_OK);
    float v[4];
    for (uint64_t i = 0; i < 60; i++) {
        for (int j = 0; j < 4; j++) v[j] = (float)(ft_gauss(&s) + (i % 3) * 4);
        cr_assert_eq(strata_fractal_add(f, i, v, 4, i), STRATA_OK);
        if (i == 40) cr_assert_eq(strata_fractal_train(f, 0), STRATA_OK);
    }
    strata_fractal_close(f);
    cr_assert_eq(ft_check(x, "d"), STRATA_OK);
    cr_assert_eq(strata_commit(x), STRATA_OK);
    unsigned n_cases = 0, n_missed = 0;
    for (size_t t = 0; t < sizeof sfx / sizeof *sfx; t++) {
        if (!(flags & STRATA_FRACTAL_KEEP_RAW) && !strcmp(sfx[t], "raw")) continue;
        x = tr(&g);
        row *r = NULL;
        size_t n = rows_of(x, sfx[t], &r);
        strata_abort(x);
        cr_assert_gt(n, 0, "table %s is empty", sfx[t]);
        for (size_t i = 0; i < n; i++) {
            /* every byte of small rows, 12 random ones of large rows, and the key */
            size_t n_pos = r[i].vl <= 96 ? r[i].vl : 12;
            for (size_t j = 0; j <= n_pos; j++) {
                int in_key = j == n_pos;
                size_t pos = in_key ? ft_rng(&s) % r[i].kl
                                    : r[i].vl <= 96 ? j : ft_rng(&s) % r[i].vl;
                uint8_t flip = (uint8_t)(1u << (ft_rng(&s) % 8)) | (ft_rng(&s) % 2 ? 0x80 : 0);
                x = tw(&g);
                strata_table *tb = itab(x, sfx[t]);
                uint8_t k2[16];
                memcpy(k2, r[i].k, r[i].kl);
                if (in_key) {
                    k2[pos] ^= flip;
                    cr_assert_eq(strata_del(tb, (strata_slice){r[i].k, r[i].kl}), STRATA_OK);
                    cr_assert_eq(strata_put(tb, (strata_slice){k2, r[i].kl}, (strata_slice){r[i].v, r[i].vl}), STRATA_OK);
                } else {
                    r[i].v[pos] ^= flip;
                    cr_assert_eq(strata_put(tb, (strata_slice){k2, r[i].kl}, (strata_slice){r[i].v, r[i].vl}), STRATA_OK);
                    r[i].v[pos] ^= flip;
                }
                int chk = exercise(x, &s);
                n_cases++;
                if (chk == STRATA_OK) {
                    /* only f64 sums within the check's rounding tolerance and
                     * codewords no code uses may change unnoticed */
                    cr_assert(!strcmp(sfx[t], "sums") || !strcmp(sfx[t], "codebooks"),
                              "check missed: %s row %zu %s byte %zu ^ 0x%02x", sfx[t], i,
                              in_key ? "key" : "value", pos, flip);
                    n_missed++;
                    if (getenv("FT_DEBUG"))
                        fprintf(stderr, "undetected: %s row %zu %s byte %zu ^ 0x%02x\n", sfx[t], i,
                                in_key ? "key" : "value", pos, flip);
                }
                strata_abort(x);
            }
            free(r[i].v);
        }
        free(r);
    }
    fprintf(stderr, "damaged rows (flags %u metric %d): %u cases, %u not reported by check\n", flags,
            (int)metric, n_cases, n_missed);
    /* the index is unchanged by all that */
    x = tr(&g);
    cr_assert_eq(ft_check(x, "d"), STRATA_OK);
    strata_abort(x);
}

Test(fractal_review, damaged_rows_raw, .timeout = 120) { damage_all(STRATA_FRACTAL_KEEP_RAW, STRATA_METRIC_L2); }
Test(fractal_review, damaged_rows_no_raw_cosine, .timeout = 120) { damage_all(0, STRATA_METRIC_COSINE); }

/* A write through a handle of a read transaction is STRATA_EREADONLY (as
 * include/strata.h says), changes nothing, and the handle still searches. */
Test(fractal_review, writes_in_a_read_txn_are_ereadonly)
{
    strata_txn *x = tw(&g);
    strata_fractal_config c = ft_config(DIM, STRATA_METRIC_L2, 4, 8, 2, 4, 4, 4, STRATA_FRACTAL_KEEP_RAW);
    strata_fractal *f = NULL;
    cr_assert_eq(strata_fractal_create(x, "ro", &c, &f), STRATA_OK);
    uint64_t s = 8;
    float v[DIM];
    add_range(f, &s, 0, 30, 0);
    cr_assert_eq(strata_fractal_train(f, 0), STRATA_OK);
    strata_fractal_close(f);
    cr_assert_eq(strata_commit(x), STRATA_OK);
    x = tr(&g);
    rand_vec(&s, v, 0);
    cr_assert_eq(strata_fractal_open(x, "ro", &f), STRATA_OK);
    cr_assert_eq(strata_fractal_add(f, 100, v, DIM, 1), STRATA_EREADONLY);   /* new id */
    cr_assert_eq(strata_fractal_add(f, 3, v, DIM, 1), STRATA_EREADONLY);     /* upsert */
    cr_assert_eq(strata_fractal_delete(f, 4), STRATA_EREADONLY);
    cr_assert_eq(strata_fractal_delete(f, 1000), STRATA_NOTFOUND);
    strata_hit h[3];
    size_t got;
    strata_fractal_params p = { .beam = 100, .n_probe = 100, .rerank = 30 };
    cr_assert_eq(strata_fractal_search(f, v, DIM, 3, &p, h, &got), STRATA_OK);
    cr_assert_eq(got, 3);
    strata_fractal_info info;
    cr_assert_eq(strata_fractal_info_get(f, &info), STRATA_OK);
    cr_assert_eq(info.n_vectors, 30);
    strata_fractal_close(f);
    cr_assert_eq(ft_check(x, "ro"), STRATA_OK);
    strata_abort(x);
}

/* The check compares each buffered member with its raw row (KEEP_RAW) and
 * treats NaN sums as a mismatch. */
Test(fractal_review, check_sees_bad_raw_rows_and_nan)
{
    strata_txn *x = tw(&g);
    strata_fractal_config c = ft_config(4, STRATA_METRIC_L2, 2, 8, 2, 3, 4, 4, STRATA_FRACTAL_KEEP_RAW);
    strata_fractal *f = NULL;
    cr_assert_eq(strata_fractal_create(x, "d", &c, &f), STRATA_OK);
    float v[4] = {1, 2, 3, 4};
    cr_assert_eq(strata_fractal_add(f, 7, v, 4, 1), STRATA_OK);   /* buffered, no codebooks */
    cr_assert_eq(strata_fractal_add(f, 8, v, 4, 1), STRATA_OK);
    strata_fractal_close(f);
    cr_assert_eq(ft_check(x, "d"), STRATA_OK);
    cr_assert_eq(strata_commit(x), STRATA_OK);
    uint8_t k[8], k9[8], raw[16], bufk[12];
    strata_slice val;
    frac_le64_put(k, 7);
    frac_le64_put(k9, 9);
    for (int t = 0; t < 3; t++) {
        x = tw(&g);
        if (t == 0) {   /* a raw row that is not the vector */
            cr_assert_eq(strata_get(itab(x, "raw"), (strata_slice){k, 8}, &val), STRATA_OK);
            memcpy(raw, val.data, 16);
            raw[3] ^= 0x40;
            cr_assert_eq(strata_put(itab(x, "raw"), (strata_slice){k, 8}, (strata_slice){raw, 16}), STRATA_OK);
        } else if (t == 1) {   /* the raw row of 7 under id 9 */
            cr_assert_eq(strata_get(itab(x, "raw"), (strata_slice){k, 8}, &val), STRATA_OK);
            memcpy(raw, val.data, 16);
            cr_assert_eq(strata_del(itab(x, "raw"), (strata_slice){k, 8}), STRATA_OK);
            cr_assert_eq(strata_put(itab(x, "raw"), (strata_slice){k9, 8}, (strata_slice){raw, 16}), STRATA_OK);
        } else {   /* a NaN in a buffered vector */
            uint8_t brow[24];
            frac_buf_key(bufk, 0, 7);
            cr_assert_eq(strata_get(itab(x, "buf"), (strata_slice){bufk, 12}, &val), STRATA_OK);
            cr_assert_eq(val.len, 24);
            memcpy(brow, val.data, 24);
            brow[8 + 3] = 0x7F; brow[8 + 2] = 0xC0;   /* component 0: quiet NaN */
            cr_assert_eq(strata_put(itab(x, "buf"), (strata_slice){bufk, 12}, (strata_slice){brow, 24}), STRATA_OK);
        }
        cr_assert_eq(strata_fractal_check(x, "d", NULL, NULL), STRATA_ECORRUPT, "case %d", t);
        strata_abort(x);
    }
}

/* Sums after a long history: leaves that held large vectors and keep small
 * ones still pass the check (f64 rounding of the removed vectors must not
 * look like corruption), in one leaf and in a tree, with and without raw
 * vectors. */
static void large_then_small(uint32_t max_leaf, uint32_t flags, int train)
{
    strata_txn *x = tw(&g);
    strata_fractal_config c = ft_config(4, STRATA_METRIC_L2, 2, max_leaf, 0, 3, 6, max_leaf > 8 ? 256 : 4, flags);
    strata_fractal *f = NULL;
    cr_assert_eq(strata_fractal_create(x, "m", &c, &f), STRATA_OK);
    uint64_t s = 9;
    float v[4];
    for (uint64_t i = 0; i < 200; i++) {
        for (int j = 0; j < 4; j++) v[j] = (float)(1e4 * (1 + ft_unit(&s)));
        cr_assert_eq(strata_fractal_add(f, i, v, 4, i), STRATA_OK);
        if (i % 50 == 0) {
            for (int j = 0; j < 4; j++) v[j] = (float)(1e-4 * (1 + ft_unit(&s)));
            cr_assert_eq(strata_fractal_add(f, 1000 + i, v, 4, 0), STRATA_OK);
        }
        if (train && i == 100) cr_assert_eq(strata_fractal_train(f, 0), STRATA_OK);
    }
    for (uint64_t i = 0; i < 200; i++) cr_assert_eq(strata_fractal_delete(f, i), STRATA_OK);
    strata_fractal_info info;
    cr_assert_eq(strata_fractal_info_get(f, &info), STRATA_OK);
    cr_assert_eq(info.n_vectors, 4);
    strata_fractal_close(f);
    cr_assert_eq(ft_check(x, "m"), STRATA_OK);
    strata_abort(x);
}

Test(fractal_review, sums_after_large_vectors_left_one_leaf) { large_then_small(256, STRATA_FRACTAL_KEEP_RAW, 0); }
Test(fractal_review, sums_after_large_vectors_left_tree) { large_then_small(8, STRATA_FRACTAL_KEEP_RAW, 1); }
Test(fractal_review, sums_after_large_vectors_left_tree_no_raw) { large_then_small(8, 0, 1); }

/* Zero vectors under cosine: stored (zero stays zero), searchable, and a zero
 * query answers without NaN distances or is refused. */
Test(fractal_review, cosine_zero_vectors)
{
    strata_txn *x = tw(&g);
    strata_fractal_config c = ft_config(4, STRATA_METRIC_COSINE, 2, 8, 2, 3, 4, 2, STRATA_FRACTAL_KEEP_RAW);
    strata_fractal *f = NULL;
    cr_assert_eq(strata_fractal_create(x, "z", &c, &f), STRATA_OK);
    uint64_t s = 10;
    float v[4], zero[4] = {0};
    for (uint64_t i = 0; i < 40; i++) {
        for (int j = 0; j < 4; j++) v[j] = (float)ft_gauss(&s);
        cr_assert_eq(strata_fractal_add(f, i, i % 7 ? v : zero, 4, i), STRATA_OK);
    }
    cr_assert_eq(strata_fractal_train(f, 0), STRATA_OK);
    cr_assert_eq(strata_fractal_add(f, 100, zero, 4, 1), STRATA_OK);   /* buffered */
    strata_hit h[50];
    size_t got;
    strata_fractal_params p = { .beam = 100, .n_probe = 100 };
    for (int rr = 0; rr < 2; rr++) {
        p.rerank = rr ? 50 : 0;
        int rc = strata_fractal_search(f, v, 4, 50, &p, h, &got);
        cr_assert_eq(rc, STRATA_OK);
        cr_assert_eq(got, 41);
        for (size_t i = 0; i < got; i++) {
            cr_assert(h[i].dist == h[i].dist, "NaN distance for id %llu", (unsigned long long)h[i].id);
            if (i) cr_assert_leq(h[i - 1].dist, h[i].dist);
        }
        rc = strata_fractal_search(f, zero, 4, 50, &p, h, &got);
        cr_assert(rc == STRATA_OK || rc == STRATA_EINVAL, "rc %d", rc);
        for (size_t i = 0; rc == STRATA_OK && i < got; i++)
            cr_assert(h[i].dist == h[i].dist, "zero query: NaN distance for id %llu", (unsigned long long)h[i].id);
    }
    strata_fractal_close(f);
    cr_assert_eq(ft_check(x, "z"), STRATA_OK);
    strata_abort(x);
}

/* Two handles on one index in one write transaction: each caches the tree,
 * so a write through one used to leave the other stale. Writes bump a
 * per-transaction counter of the index (db_txn_counter) and the other
 * handle reloads before its next call. A drop through the transaction
 * leaves open handles EBADTXN. */
Test(fractal_review, two_handles_in_one_txn)
{
    strata_txn *x = tw(&g);
    strata_fractal_config c = ft_config(DIM, STRATA_METRIC_L2, 4, 8, 2, 4, 4, 4, STRATA_FRACTAL_KEEP_RAW);
    strata_fractal *f1 = NULL, *f2 = NULL;
    cr_assert_eq(strata_fractal_create(x, "h", &c, &f1), STRATA_OK);
    cr_assert_eq(strata_fractal_open(x, "h", &f2), STRATA_OK);
    uint64_t s = 11;
    float v[DIM];
    for (uint64_t i = 0; i < 40; i++) {
        rand_vec(&s, v, 0);
        cr_assert_eq(strata_fractal_add(i % 2 ? f1 : f2, i, v, DIM, i), STRATA_OK);
    }
    cr_assert_eq(strata_fractal_delete(f1, 4), STRATA_OK);
    cr_assert_eq(strata_fractal_delete(f2, 4), STRATA_NOTFOUND);   /* f2 sees f1's delete */
    strata_fractal_info i1, i2;
    cr_assert_eq(strata_fractal_info_get(f1, &i1), STRATA_OK);
    cr_assert_eq(strata_fractal_info_get(f2, &i2), STRATA_OK);
    cr_assert_eq(i1.n_vectors, 39);
    cr_assert_eq(i2.n_vectors, 39);
    cr_assert_eq(i1.n_leaves, i2.n_leaves);
    strata_fractal_close(f1);
    cr_assert_eq(ft_check(x, "h"), STRATA_OK);
    cr_assert_eq(strata_fractal_drop(x, "h"), STRATA_OK);
    cr_assert_eq(strata_fractal_add(f2, 99, v, DIM, 99), STRATA_EBADTXN);
    strata_fractal_close(f2);
    cr_assert_eq(strata_commit(x), STRATA_OK);
}


/* "Rerank everything" spelled UINT32_MAX (and a k far above the index's
 * size) sizes nothing by itself: the exact top k, not STRATA_ENOMEM. */
Test(fractal_review, rerank_all_as_uint32_max)
{
    strata_txn *x = tw(&g);
    strata_fractal_config c = ft_config(DIM, STRATA_METRIC_L2, 4, 16, 2, 4, 4, 4, STRATA_FRACTAL_KEEP_RAW);
    strata_fractal *f = NULL;
    cr_assert_eq(strata_fractal_create(x, "a", &c, &f), STRATA_OK);
    model *m = calloc(1, sizeof *m);
    cr_assert_not_null(m);
    uint64_t s = 12;
    for (uint64_t i = 0; i < 100; i++) {
        rand_vec(&s, m->v[i], (int)(i % 3));
        m->live[i] = 1;
        cr_assert_eq(strata_fractal_add(f, i, m->v[i], DIM, i), STRATA_OK);
    }
    cr_assert_eq(strata_fractal_train(f, 0), STRATA_OK);
    strata_fractal_params p = { .beam = UINT32_MAX, .n_probe = UINT32_MAX, .rerank = UINT32_MAX };
    strata_hit h[K], want[K];
    size_t got;
    float q[DIM];
    rand_vec(&s, q, 1);
    cr_assert_eq(strata_fractal_search(f, q, DIM, K, &p, h, &got), STRATA_OK);
    cr_assert_eq(got, brute(m, STRATA_METRIC_L2, q, K, 0, UINT64_MAX, 0, want));
    for (size_t i = 0; i < got; i++)
        cr_assert(h[i].id == want[i].id && h[i].dist == want[i].dist, "hit %zu", i);
    strata_hit *big = malloc(100000 * sizeof *big);   /* k far above the 100 present */
    cr_assert_not_null(big);
    p.rerank = 0;
    cr_assert_eq(strata_fractal_search(f, q, DIM, 100000, &p, big, &got), STRATA_OK);
    cr_assert_eq(got, 100);
    free(big);
    free(m);
    strata_fractal_close(f);
    strata_abort(x);
}

/* Deletes alone (no upserts), fan-out 2 so that internal splits leave nodes
 * with one child: an emptied leaf that is an only child still goes away. */
Test(fractal_review, deletes_leave_no_empty_only_child)
{
    strata_txn *x = tw(&g);
    strata_fractal_config c = ft_config(DIM, STRATA_METRIC_L2, 4, 6, 2, 2, 6, 2, STRATA_FRACTAL_KEEP_RAW);
    strata_fractal *f = NULL;
    cr_assert_eq(strata_fractal_create(x, "o", &c, &f), STRATA_OK);
    uint64_t s = 13;
    float v[DIM];
    for (uint64_t i = 0; i < 150; i++) {
        rand_vec(&s, v, (int)(i % 5));
        cr_assert_eq(strata_fractal_add(f, i, v, DIM, i), STRATA_OK);
    }
    cr_assert_eq(strata_fractal_train(f, 0), STRATA_OK);
    for (uint64_t k = 0; k < 150; k++) {
        cr_assert_eq(strata_fractal_delete(f, (k * 61) % 150), STRATA_OK);
        char what[32];
        snprintf(what, sizeof what, "after %llu deletes", (unsigned long long)k + 1);
        shape_ok(f, what);
    }
    strata_fractal_close(f);
    cr_assert_eq(ft_check(x, "o"), STRATA_OK);
    strata_abort(x);
}
