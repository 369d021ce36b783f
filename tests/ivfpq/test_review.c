/* tests/ivfpq/test_review.c - adversarial checks of the IVF-PQ index:
 * randomized insert / update / delete / retrain sequences with aborted
 * transactions, savepoint rollbacks and reopens, on every metric, at a tiny
 * block capacity (many splits, blocks emptied), with ids on a coarse grid of
 * vectors (many exact distance ties); after every step an exhaustive search
 * (nprobe = nlist, rerank of everything) must equal the brute force over the
 * present set, with and without an attribute filter, single and batched.
 * Also: huge k and nq * k overflow, a failed training in a read transaction
 * changing nothing, and damaged rows of every internal table (each row,
 * several bytes) giving STRATA_OK or STRATA_ECORRUPT, never a crash. */
#include "itest.h"
#include "db.h"
#include "ivfpq_int.h"

enum { DIM = 8, NLIST = 8, MAXID = 320, NTRAIN = 300 };

typedef struct mvec { int present; float v[DIM]; uint64_t attr; } mvec;

typedef struct model { mvec e[MAXID]; } model;

static void grid_vec(uint64_t *s, float *v)
{
    for (int d = 0; d < DIM; d++) v[d] = (float)((int)(it_next(s) % 5) - 2);
}

static int keep_attr(void *ctx, uint64_t id, uint64_t attr)
{
    (void)ctx; (void)id;
    return attr % 3 != 0;
}

static int reject_all(void *ctx, uint64_t id, uint64_t attr)
{
    (void)ctx; (void)id; (void)attr;
    return 0;
}

typedef struct bctx { const model *m; int filt; } bctx;

static int keep_model(void *ctx, uint64_t id)
{
    const bctx *b = ctx;
    return !b->filt || b->m->e[id].attr % 3 != 0;
}

/* Brute force over the model's present vectors. */
static size_t brute(const model *m, strata_metric met, const float *q, size_t k, int filt,
                    strata_hit *out)
{
    static float base[MAXID * DIM];
    static uint64_t ids[MAXID];
    size_t n = 0;
    for (uint64_t id = 0; id < MAXID; id++) {
        if (!m->e[id].present) continue;
        memcpy(base + n * DIM, m->e[id].v, sizeof m->e[id].v);
        ids[n++] = id;
    }
    if (n == 0) return 0;
    size_t got = 0;
    bctx b = {m, filt};
    cr_assert_eq(strata_vec_topk(met, q, base, n, DIM, ids, k < n ? k : n, keep_model, &b, out, &got),
                 STRATA_OK);
    return got;
}

/* Exhaustive searches of ix against the model: single queries with random k
 * (some larger than the index), with and without the filter, and one batch. */
static void check_exact(strata_ivf *ix, const model *m, strata_metric met, uint64_t *s,
                        const char *what)
{
    static strata_hit got[8 * 200], want[200];
    static size_t n_got[8];
    float q[8 * DIM];
    strata_ivf_params p;
    strata_ivf_params_default(&p);
    p.nprobe = NLIST + 3;            /* > nlist: every list */
    p.rerank = 100000;
    size_t present = 0;
    for (uint64_t id = 0; id < MAXID; id++) present += (size_t)m->e[id].present;
    strata_ivf_info info;
    cr_assert_eq(strata_ivf_info_get(ix, &info), STRATA_OK);
    cr_assert_eq(info.n_vectors, present, "%s: n_vectors", what);
    for (int t = 0; t < 4; t++) {
        grid_vec(s, q);
        if (t == 3) memcpy(q, m->e[it_next(s) % MAXID].v, sizeof(float) * DIM);  /* exact hit */
        size_t k = 1 + (size_t)(it_next(s) % 200);
        int filt = t & 1;
        p.filter = filt ? keep_attr : NULL;
        p.int_lut = (uint32_t)(t >> 1 & 1);          /* quantized pre-filter too */
        p.mmr = t == 2 ? 0.5f : 0.0f;                /* every list either way */
        size_t ng = 0;
        cr_assert_eq(strata_ivf_search(ix, q, DIM, k, &p, got, &ng), STRATA_OK, "%s", what);
        size_t nw = brute(m, met, q, k, filt, want);
        cr_assert_eq(ng, nw, "%s: t %d k %zu count %zu want %zu", what, t, k, ng, nw);
        for (size_t i = 0; i < ng; i++) {
            cr_assert_eq(got[i].id, want[i].id, "%s: t %d hit %zu id %llu want %llu (%g vs %g)", what,
                         t, i, (unsigned long long)got[i].id, (unsigned long long)want[i].id,
                         (double)got[i].dist, (double)want[i].dist);
            cr_assert_eq(got[i].dist, want[i].dist, "%s: hit %zu dist", what, i);
        }
    }
    /* a filter rejecting everything; PQ estimates equal with and without
     * the u8 pre-filter at a small k (pruning active) */
    p.filter = reject_all;
    p.int_lut = 0;
    p.mmr = 0;
    size_t nr = 7;
    cr_assert_eq(strata_ivf_search(ix, q, DIM, 5, &p, got, &nr), STRATA_OK);
    cr_assert_eq(nr, 0);
    strata_ivf_params pa, pb;
    strata_ivf_params_default(&pa);
    pa.nprobe = NLIST;
    pb = pa;
    pb.int_lut = 1;
    size_t na = 0, nb = 0;
    static strata_hit ha[8], hb[8];
    cr_assert_eq(strata_ivf_search(ix, q, DIM, 8, &pa, ha, &na), STRATA_OK);
    cr_assert_eq(strata_ivf_search(ix, q, DIM, 8, &pb, hb, &nb), STRATA_OK);
    cr_assert_eq(na, nb);
    cr_assert_eq(na, present < 8 ? present : 8);
    for (size_t i = 0; i < na; i++) {
        cr_assert_eq(ha[i].id, hb[i].id, "%s: u8 pre-filter hit %zu", what, i);
        cr_assert_eq(ha[i].dist, hb[i].dist);
        if (i) cr_assert(ha[i - 1].dist < ha[i].dist || (ha[i - 1].dist == ha[i].dist && ha[i - 1].id < ha[i].id));
    }
    /* batch of 8 queries with k = 200 */
    for (int i = 0; i < 8; i++) grid_vec(s, q + i * DIM);
    p.filter = NULL;
    cr_assert_eq(strata_ivf_search_batch(ix, 8, q, DIM, 200, &p, got, n_got), STRATA_OK);
    for (int i = 0; i < 8; i++) {
        size_t nw = brute(m, met, q + i * DIM, 200, 0, want);
        cr_assert_eq(n_got[i], nw, "%s: batch %d", what, i);
        for (size_t j = 0; j < nw; j++) cr_assert_eq(got[i * 200 + j].id, want[j].id, "%s: batch", what);
    }
    /* stored vectors and attributes */
    for (uint64_t id = 0; id < MAXID; id += 7) {
        float v[DIM];
        uint64_t a;
        int rc = strata_ivf_get(ix, id, v, &a);
        if (!m->e[id].present) { cr_assert_eq(rc, STRATA_NOTFOUND, "%s: get %llu", what, (unsigned long long)id); continue; }
        cr_assert_eq(rc, STRATA_OK, "%s: get", what);
        cr_assert_eq(memcmp(v, m->e[id].v, sizeof v), 0);
        cr_assert_eq(a, m->e[id].attr);
    }
}

/* One random write step on ix and the model. */
static void random_step(strata_ivf *ix, model *m, uint64_t *s)
{
    unsigned op = (unsigned)(it_next(s) % 10);
    if (op < 5) {                                    /* batch insert / update */
        size_t n = 1 + (size_t)(it_next(s) % 12);
        uint64_t ids[12], attrs[12];
        float data[12 * DIM];
        size_t k = 0;
        for (size_t i = 0; i < n; i++) {
            uint64_t id = it_next(s) % MAXID;
            int dup = 0;
            for (size_t j = 0; j < k; j++) dup |= ids[j] == id;
            if (dup) continue;
            ids[k] = id;
            attrs[k] = it_next(s) % 10;
            grid_vec(s, data + k * DIM);
            k++;
        }
        cr_assert_eq(strata_ivf_insert_batch(ix, k, ids, data, DIM, attrs), STRATA_OK);
        for (size_t i = 0; i < k; i++) {
            m->e[ids[i]].present = 1;
            memcpy(m->e[ids[i]].v, data + i * DIM, sizeof(float) * DIM);
            m->e[ids[i]].attr = attrs[i];
        }
    } else if (op < 9) {                             /* delete */
        uint64_t id = it_next(s) % MAXID;
        int rc = strata_ivf_delete(ix, id);
        cr_assert_eq(rc, m->e[id].present ? STRATA_OK : STRATA_NOTFOUND);
        m->e[id].present = 0;
    } else {                                         /* bad input: changes nothing */
        float bad[DIM] = {0};
        bad[it_next(s) % DIM] = NAN;
        uint64_t ids[2] = {1, 1};
        float two[2 * DIM] = {0};
        cr_assert_eq(strata_ivf_insert(ix, 3, bad, DIM, 0), STRATA_EINVAL);
        cr_assert_eq(strata_ivf_insert_batch(ix, 2, ids, two, DIM, NULL), STRATA_EINVAL);
        cr_assert_eq(strata_ivf_insert(ix, 3, two, DIM - 1, 0), STRATA_EINVAL);
    }
}

static void run_metric(strata_metric met)
{
    it_db d;
    it_db_open(&d);
    uint64_t s = it_seed() * 31 + (uint64_t)met;
    static float train[NTRAIN * DIM];
    for (size_t i = 0; i < NTRAIN; i++) grid_vec(&s, train + i * DIM);
    strata_ivf_config cfg = {.dim = DIM, .metric = met, .nlist = NLIST, .m = 4, .nprobe = 2,
                             .flags = STRATA_IVF_RAW | STRATA_IVF_ATTR, .iters = 5,
                             .block_cap = 1 + (uint32_t)met, .seed = 11};   /* 1, 2, 3 */
    strata_txn *w;
    strata_ivf *ix;
    cr_assert_eq(strata_begin_write(d.db, &w), STRATA_OK);
    cr_assert_eq(strata_ivf_create(w, "r", &cfg, &ix), STRATA_OK);
    cr_assert_eq(strata_ivf_train(ix, train, NTRAIN, DIM, NULL), STRATA_OK);
    strata_ivf_close(ix);
    cr_assert_eq(strata_commit(w), STRATA_OK);
    static model m, saved, sp_model;
    memset(&m, 0, sizeof m);
    char what[96];
    for (int round = 0; round < 40; round++) {
        snprintf(what, sizeof what, "metric %d round %d", (int)met, round);
        saved = m;
        cr_assert_eq(strata_begin_write(d.db, &w), STRATA_OK);
        cr_assert_eq(strata_ivf_open(w, "r", &ix), STRATA_OK);
        strata_savepoint *sp = NULL;
        for (int step = 0; step < 24; step++) {
            if (step == 8) { cr_assert_eq(strata_savepoint_create(w, &sp), STRATA_OK); sp_model = m; }
            random_step(ix, &m, &s);
            if (step == 16 && sp && it_next(&s) % 2) {
                cr_assert_eq(strata_savepoint_rollback(w, sp), STRATA_OK);
                m = sp_model;
                check_exact(ix, &m, met, &s, what);          /* the handle reloads */
            }
        }
        check_exact(ix, &m, met, &s, what);
        strata_savepoint_release(sp);
        strata_ivf_close(ix);
        if (round % 4 == 3) {
            strata_abort(w);
            m = saved;
        } else {
            cr_assert_eq(strata_commit(w), STRATA_OK);
        }
        if (round % 5 == 4) it_db_reopen(&d);
        strata_txn *r;
        cr_assert_eq(strata_begin_read(d.db, &r), STRATA_OK);
        cr_assert_eq(strata_ivf_open(r, "r", &ix), STRATA_OK);
        check_exact(ix, &m, met, &s, what);
        strata_ivf_close(ix);
        strata_abort(r);
    }
    /* empty it completely, then retrain and refill: still exact */
    cr_assert_eq(strata_begin_write(d.db, &w), STRATA_OK);
    cr_assert_eq(strata_ivf_open(w, "r", &ix), STRATA_OK);
    for (uint64_t id = 0; id < MAXID; id++)
        if (m.e[id].present) { cr_assert_eq(strata_ivf_delete(ix, id), STRATA_OK); m.e[id].present = 0; }
    strata_ivf_info info;
    cr_assert_eq(strata_ivf_info_get(ix, &info), STRATA_OK);
    cr_assert_eq(info.n_vectors, 0);
    cr_assert_eq(info.n_blocks, 0);
    check_exact(ix, &m, met, &s, "emptied");
    cr_assert_eq(strata_ivf_train(ix, train + DIM, NTRAIN - 1, DIM, NULL), STRATA_OK);
    for (int step = 0; step < 20; step++) random_step(ix, &m, &s);
    check_exact(ix, &m, met, &s, "retrained");
    strata_ivf_close(ix);
    cr_assert_eq(strata_commit(w), STRATA_OK);
    it_db_close(&d);
}

Test(ivfpq_review, random_ops_exact_l2) { run_metric(STRATA_METRIC_L2); }
Test(ivfpq_review, random_ops_exact_ip) { run_metric(STRATA_METRIC_IP); }
Test(ivfpq_review, random_ops_exact_cosine) { run_metric(STRATA_METRIC_COSINE); }

/* An unknown metric (L1 is not an IVF metric) is refused at create. */
Test(ivfpq_review, unknown_metric)
{
    it_db d;
    it_db_open(&d);
    strata_txn *w;
    strata_ivf *ix = NULL;
    strata_ivf_config cfg = {.dim = DIM, .metric = STRATA_METRIC_L1, .nlist = 4, .m = 4, .nprobe = 1};
    cr_assert_eq(strata_begin_write(d.db, &w), STRATA_OK);
    cr_assert_eq(strata_ivf_create(w, "l1", &cfg, &ix), STRATA_EINVAL);
    cfg.metric = (strata_metric)77;
    cr_assert_eq(strata_ivf_create(w, "l1", &cfg, &ix), STRATA_EINVAL);
    cr_assert_eq(strata_ivf_open(w, "l1", &ix), STRATA_NOTFOUND);
    strata_abort(w);
    it_db_close(&d);
}

static void build_small(it_db *d, size_t n)
{
    uint64_t s = 99;
    static float x[NTRAIN * DIM];
    for (size_t i = 0; i < NTRAIN * DIM; i++) x[i] = it_gauss(&s);
    strata_ivf_config cfg = {.dim = DIM, .metric = STRATA_METRIC_L2, .nlist = NLIST, .m = 4,
                             .nprobe = NLIST, .flags = STRATA_IVF_RAW, .iters = 5, .seed = 1};
    it_build(d->db, "h", &cfg, x, n, NTRAIN, NULL);
}

/* A huge k costs nothing: the hits are bounded by the vectors present (the
 * candidate buffers must not be sized k * sizeof, which wraps). nq * k that
 * does not fit a size_t is STRATA_EINVAL. */
Test(ivfpq_review, huge_k)
{
    it_db d;
    it_db_open(&d);
    build_small(&d, 50);
    strata_txn *r;
    strata_ivf *ix;
    cr_assert_eq(strata_begin_read(d.db, &r), STRATA_OK);
    cr_assert_eq(strata_ivf_open(r, "h", &ix), STRATA_OK);
    static strata_hit out[64];
    size_t n = 0, nb[2];
    float q[2 * DIM] = {0};
    const size_t huge[] = {SIZE_MAX, SIZE_MAX / 24 + 2, SIZE_MAX / 16 + 1, (size_t)1 << 40};
    for (size_t i = 0; i < sizeof huge / sizeof huge[0]; i++) {
        strata_ivf_params p;
        strata_ivf_params_default(&p);
        int rc = strata_ivf_search(ix, q, DIM, huge[i], &p, out, &n);
        cr_assert_eq(rc, STRATA_OK, "k %zu: rc %d", huge[i], rc);
        cr_assert_eq(n, 50, "k %zu", huge[i]);
        p.rerank = UINT32_MAX;
        rc = strata_ivf_search(ix, q, DIM, huge[i], &p, out, &n);
        cr_assert_eq(rc, STRATA_OK, "k %zu rerank: rc %d", huge[i], rc);
        cr_assert_eq(n, 50);
        for (size_t j = 1; j < n; j++) cr_assert_leq(out[j - 1].dist, out[j].dist);
    }
    cr_assert_eq(strata_ivf_search_batch(ix, 2, q, DIM, SIZE_MAX / 2, NULL, out, nb), STRATA_EINVAL);
    cr_assert_eq(strata_ivf_search_batch(ix, SIZE_MAX / 4, q, DIM, 1, NULL, out, nb), STRATA_EINVAL);
    /* rerank far above the index: exact */
    strata_ivf_params p;
    strata_ivf_params_default(&p);
    p.rerank = UINT32_MAX;
    cr_assert_eq(strata_ivf_search(ix, q, DIM, 10, &p, out, &n), STRATA_OK);
    cr_assert_eq(n, 10);
    strata_ivf_close(ix);
    strata_abort(r);
    it_db_close(&d);
}

/* A training that fails (read transaction) leaves the handle as it was: the
 * index is still untrained for that handle. */
Test(ivfpq_review, failed_train_changes_nothing)
{
    it_db d;
    it_db_open(&d);
    strata_ivf_config cfg = {.dim = DIM, .metric = STRATA_METRIC_L2, .nlist = NLIST, .m = 4,
                             .nprobe = 2, .flags = STRATA_IVF_RAW, .iters = 5, .seed = 1};
    strata_txn *w, *r;
    strata_ivf *ix;
    cr_assert_eq(strata_begin_write(d.db, &w), STRATA_OK);
    cr_assert_eq(strata_ivf_create(w, "t", &cfg, NULL), STRATA_OK);
    cr_assert_eq(strata_commit(w), STRATA_OK);
    uint64_t s = 5;
    static float x[NTRAIN * DIM];
    for (size_t i = 0; i < NTRAIN * DIM; i++) x[i] = it_gauss(&s);
    cr_assert_eq(strata_begin_read(d.db, &r), STRATA_OK);
    cr_assert_eq(strata_ivf_open(r, "t", &ix), STRATA_OK);
    int rc = strata_ivf_train(ix, x, NTRAIN, DIM, NULL);
    cr_assert_eq(rc, STRATA_EREADONLY, "rc %d", rc);
    strata_ivf_info info;
    cr_assert_eq(strata_ivf_info_get(ix, &info), STRATA_OK);
    cr_assert_eq(info.trained, 0, "a failed training left the handle trained");
    strata_hit h[4];
    size_t n;
    cr_assert_eq(strata_ivf_search(ix, x, DIM, 4, NULL, h, &n), STRATA_EINVAL);   /* untrained */
    strata_ivf_close(ix);
    strata_abort(r);
    /* trained index: a failed retraining keeps the stored model in the handle */
    cr_assert_eq(strata_begin_write(d.db, &w), STRATA_OK);
    cr_assert_eq(strata_ivf_open(w, "t", &ix), STRATA_OK);
    cr_assert_eq(strata_ivf_train(ix, x, NTRAIN, DIM, NULL), STRATA_OK);
    strata_ivf_close(ix);
    cr_assert_eq(strata_commit(w), STRATA_OK);
    cr_assert_eq(strata_begin_read(d.db, &r), STRATA_OK);
    cr_assert_eq(strata_ivf_open(r, "t", &ix), STRATA_OK);
    cr_assert_eq(strata_ivf_train(ix, x + DIM, NTRAIN - 1, DIM, NULL), STRATA_EREADONLY);
    strata_ivf *fresh;
    strata_txn *r2;
    cr_assert_eq(strata_begin_read(d.db, &r2), STRATA_OK);
    cr_assert_eq(strata_ivf_open(r2, "t", &fresh), STRATA_OK);
    cr_assert(ix->centroids && fresh->centroids);
    cr_assert_eq(memcmp(ix->centroids, fresh->centroids, sizeof(float) * NLIST * DIM), 0,
                 "the handle kept a model that was never stored");
    strata_ivf_close(fresh);
    strata_abort(r2);
    strata_ivf_close(ix);
    strata_abort(r);
    it_db_close(&d);
}

/* Every row of every internal table, damaged at several bytes (and
 * truncated), in a write transaction that is then aborted: open, search
 * (float and quantized, with rerank), get, insert, delete and info return
 * STRATA_OK or STRATA_ECORRUPT (NOTFOUND where the id is absent), never crash. */
static int ok_rc(int rc) { return rc == STRATA_OK || rc == STRATA_ECORRUPT || rc == STRATA_NOTFOUND; }
static int g_abort_only;   /* cases where a half-done insert made the txn abort-only */

static void exercise(strata_txn *w, const char *what)
{
    strata_ivf *ix = NULL;
    int rc = strata_ivf_open(w, "z", &ix);
    cr_assert(rc == STRATA_OK || rc == STRATA_ECORRUPT, "%s: open rc %d", what, rc);
    if (rc) return;
    static strata_hit h[200];
    size_t n;
    float q[DIM] = {0.5f, -1, 0, 0, 1, 0, 0, 0};
    strata_ivf_params p;
    strata_ivf_params_default(&p);
    p.nprobe = NLIST;
    for (int v = 0; v < 3; v++) {
        p.rerank = v == 2 ? 1000 : 0;
        p.int_lut = v == 1;
        rc = strata_ivf_search(ix, q, DIM, 100, &p, h, &n);
        cr_assert(rc == STRATA_OK || rc == STRATA_ECORRUPT, "%s: search rc %d", what, rc);
        if (rc == STRATA_OK) cr_assert_leq(n, 100);
    }
    strata_ivf_info info;
    rc = strata_ivf_info_get(ix, &info);
    cr_assert(rc == STRATA_OK || rc == STRATA_ECORRUPT, "%s: info rc %d", what, rc);
    float v[DIM];
    uint64_t a;
    for (uint64_t id = 0; id < 40; id += 13) {
        rc = strata_ivf_get(ix, id, v, &a);
        cr_assert(ok_rc(rc), "%s: get rc %d", what, rc);
    }
    rc = strata_ivf_insert(ix, 5, q, DIM, 0);        /* an update */
    cr_assert(ok_rc(rc), "%s: insert rc %d", what, rc);
    int wrc = rc;
    rc = strata_ivf_delete(ix, 20);
    /* an insert that met the damage after its first write leaves the
     * transaction abort-only: then the delete is EBADTXN */
    cr_assert(ok_rc(rc) || (wrc == STRATA_ECORRUPT && rc == STRATA_EBADTXN), "%s: delete rc %d", what, rc);
    if (rc == STRATA_EBADTXN) g_abort_only++;
    strata_ivf_close(ix);
}

Test(ivfpq_review, damaged_rows_every_table)
{
    it_db d;
    it_db_open(&d);
    uint64_t s = 3;
    static float x[NTRAIN * DIM];
    for (size_t i = 0; i < NTRAIN * DIM; i++) x[i] = it_gauss(&s);
    strata_ivf_config cfg = {.dim = DIM, .metric = STRATA_METRIC_L2, .nlist = NLIST, .m = 4,
                             .nprobe = 2, .flags = STRATA_IVF_RAW | STRATA_IVF_ATTR, .iters = 5,
                             .block_cap = 4, .seed = 1};
    it_build(d.db, "z", &cfg, x, 40, NTRAIN, NULL);
    static const char *const tabs[] = {"__ivf:z:config", "__ivf:z:centroids", "__ivf:z:codebooks",
                                       "__ivf:z:lists", "__ivf:z:assign"};
    size_t n_cases = 0;
    for (size_t ti = 0; ti < 5; ti++) {
        strata_table_spec spec = {.key_type = ti == 4 ? STRATA_KEY_U64 : STRATA_KEY_BYTES};
        /* the keys of the table */
        static uint8_t keys[64][16];
        size_t klen[64], nk = 0;
        strata_txn *r;
        strata_table *t;
        strata_slice k, v;
        cr_assert_eq(strata_begin_read(d.db, &r), STRATA_OK);
        cr_assert_eq(db_internal_table_open(r, tabs[ti], &spec, 0, &t), STRATA_OK);
        strata_cursor *c;
        cr_assert_eq(strata_cursor_open(t, &c), STRATA_OK);
        for (int rc = strata_cursor_first(c); rc == STRATA_OK && nk < 64; rc = strata_cursor_next(c)) {
            cr_assert_eq(strata_cursor_get(c, &k, &v), STRATA_OK);
            memcpy(keys[nk], k.data, k.len);
            klen[nk++] = k.len;
        }
        strata_cursor_close(c);
        strata_abort(r);
        cr_assert_gt(nk, 0, "%s", tabs[ti]);
        for (size_t ki = 0; ki < nk; ki++) {
            for (int dmg = 0; dmg < 6; dmg++) {
                strata_txn *w;
                cr_assert_eq(strata_begin_write(d.db, &w), STRATA_OK);
                cr_assert_eq(db_internal_table_open(w, tabs[ti], &spec, 0, &t), STRATA_OK);
                cr_assert_eq(strata_get(t, (strata_slice){keys[ki], klen[ki]}, &v), STRATA_OK);
                size_t len = v.len;
                uint8_t *buf = malloc(len + 1);
                memcpy(buf, v.data, len);
                if (dmg == 5) len--;                                     /* truncated */
                else if (dmg == 4) buf[it_next(&s) % len] = 0xFF;
                else buf[(len * (size_t)dmg) / 4 % len] ^= (uint8_t)(1u << (it_next(&s) % 8));
                cr_assert_eq(strata_put(t, (strata_slice){keys[ki], klen[ki]}, (strata_slice){buf, len}),
                             STRATA_OK);
                free(buf);
                char what[96];
                snprintf(what, sizeof what, "%s row %zu damage %d", tabs[ti], ki, dmg);
                exercise(w, what);
                strata_abort(w);
                n_cases++;
            }
        }
    }
    cr_assert_gt(n_cases, 30);
    cr_assert_gt(g_abort_only, 0);   /* some damage is met after an insert's first write */
    /* the aborts left the index intact */
    strata_txn *r;
    strata_ivf *ix;
    strata_ivf_info info;
    cr_assert_eq(strata_begin_read(d.db, &r), STRATA_OK);
    cr_assert_eq(strata_ivf_open(r, "z", &ix), STRATA_OK);
    cr_assert_eq(strata_ivf_info_get(ix, &info), STRATA_OK);
    cr_assert_eq(info.n_vectors, 40);
    strata_ivf_close(ix);
    strata_abort(r);
    it_db_close(&d);
}

/* Degenerate samples: every vector equal, n == nlist == 256, dim 1 (m 1),
 * values at large magnitudes. Training succeeds (with warnings) and the
 * exhaustive search is still exact. */
Test(ivfpq_review, degenerate_training)
{
    it_db d;
    it_db_open(&d);
    static float x[512 * DIM];
    uint64_t s = 17;
    for (int shape = 0; shape < 4; shape++) {
        strata_ivf_config cfg = {.dim = shape == 2 ? 1 : DIM, .metric = (strata_metric)(shape % 3),
                                 .nlist = shape == 1 ? 256 : 4, .m = 1, .nprobe = 1,
                                 .flags = STRATA_IVF_RAW, .iters = 3, .block_cap = 2, .seed = 5};
        size_t dim = cfg.dim, n = 256;
        for (size_t i = 0; i < n * dim; i++) {
            if (shape == 0) x[i] = 1.5f;                                  /* all equal */
            else if (shape == 3) x[i] = (it_next(&s) % 2 ? 1 : -1) * 1e15f;  /* large */
            else x[i] = (float)(it_next(&s) % 3);
        }
        char name[16];
        snprintf(name, sizeof name, "g%d", shape);
        strata_txn *w;
        strata_ivf *ix;
        unsigned warn = 0;
        cr_assert_eq(strata_begin_write(d.db, &w), STRATA_OK);
        cr_assert_eq(strata_ivf_create(w, name, &cfg, &ix), STRATA_OK);
        int rc = strata_ivf_train(ix, x, n, dim, &warn);
        if (shape == 3 && rc == STRATA_EINVAL) {                         /* refused as too large */
            strata_ivf_close(ix);
            strata_abort(w);
            continue;
        }
        cr_assert_eq(rc, STRATA_OK, "shape %d rc %d", shape, rc);
        uint64_t ids[256];
        for (size_t i = 0; i < n; i++) ids[i] = 1000 - i;
        rc = strata_ivf_insert_batch(ix, n, ids, x, dim, NULL);
        cr_assert(rc == STRATA_OK || (shape == 3 && rc == STRATA_EINVAL), "shape %d insert rc %d", shape, rc);
        if (rc == STRATA_OK) {
            strata_ivf_params p;
            strata_ivf_params_default(&p);
            p.nprobe = cfg.nlist;
            p.rerank = 1000;
            static strata_hit got[256], want[256];
            size_t ng, nw;
            rc = strata_ivf_search(ix, x + 7 * dim, dim, 50, &p, got, &ng);
            cr_assert_eq(rc, STRATA_OK, "shape %d search rc %d", shape, rc);
            cr_assert_eq(strata_vec_topk(cfg.metric, x + 7 * dim, x, n, dim, ids, 50, NULL, NULL, want, &nw),
                         STRATA_OK);
            cr_assert_eq(ng, nw);
            for (size_t i = 0; i < ng; i++) cr_assert_eq(got[i].id, want[i].id, "shape %d hit %zu", shape, i);
        }
        strata_ivf_close(ix);
        cr_assert_eq(strata_commit(w), STRATA_OK);
    }
    it_db_close(&d);
}

/* A handle left open while its index is dropped and created again with
 * another shape (dim, nlist, m) reloads: its search buffers must follow the
 * new config (they were sized for the old one). Likewise after a savepoint
 * rollback brings the old shape back. */
Test(ivfpq_review, reload_with_other_shape)
{
    it_db d;
    it_db_open(&d);
    static float x[NTRAIN * 32];
    uint64_t s = 23;
    for (size_t i = 0; i < NTRAIN * 32; i++) x[i] = it_gauss(&s);
    strata_ivf_config small = {.dim = 4, .metric = STRATA_METRIC_L2, .nlist = 2, .m = 1, .nprobe = 1,
                               .flags = STRATA_IVF_RAW, .iters = 3, .seed = 1};
    strata_ivf_config big = {.dim = 32, .metric = STRATA_METRIC_L2, .nlist = 64, .m = 16, .nprobe = 64,
                             .flags = STRATA_IVF_RAW, .iters = 3, .seed = 1};
    it_build(d.db, "s", &small, x, 100, NTRAIN, NULL);
    strata_txn *w;
    strata_ivf *h1, *h2;
    strata_savepoint *sp;
    static strata_hit hits[300];
    size_t n;
    strata_ivf_params p;
    strata_ivf_params_default(&p);
    p.rerank = 300;
    p.nprobe = 64;                                  /* every list of either shape */
    cr_assert_eq(strata_begin_write(d.db, &w), STRATA_OK);
    cr_assert_eq(strata_ivf_open(w, "s", &h1), STRATA_OK);
    cr_assert_eq(strata_ivf_search(h1, x, 4, 3, &p, hits, &n), STRATA_OK);     /* small buffers */
    cr_assert_eq(n, 3);
    cr_assert_eq(strata_savepoint_create(w, &sp), STRATA_OK);
    cr_assert_eq(strata_ivf_drop(w, "s"), STRATA_OK);
    cr_assert_eq(strata_ivf_create(w, "s", &big, &h2), STRATA_OK);
    cr_assert_eq(strata_ivf_train(h2, x, NTRAIN, 32, NULL), STRATA_OK);
    uint64_t ids[200];
    for (uint64_t i = 0; i < 200; i++) ids[i] = i;
    cr_assert_eq(strata_ivf_insert_batch(h2, 200, ids, x, 32, NULL), STRATA_OK);
    cr_assert_eq(strata_ivf_search(h2, x, 32, 250, &p, hits, &n), STRATA_OK);    /* big buffers */
    cr_assert_eq(n, 200);
    int rc = strata_ivf_search(h1, x, 32, 250, &p, hits, &n);                  /* reloads: big */
    cr_assert_eq(rc, STRATA_OK, "rc %d", rc);
    cr_assert_eq(n, 200);
    cr_assert_eq(hits[0].id, 0);
    cr_assert_eq(strata_savepoint_rollback(w, sp), STRATA_OK);
    rc = strata_ivf_search(h2, x, 4, 3, &p, hits, &n);                         /* reloads: small */
    cr_assert_eq(rc, STRATA_OK, "rc %d", rc);
    cr_assert_eq(n, 3);
    cr_assert_eq(hits[0].id, 0);
    rc = strata_ivf_search(h1, x, 4, 300, &p, hits, &n);
    cr_assert_eq(rc, STRATA_OK, "rc %d", rc);
    cr_assert_eq(n, 100);
    strata_savepoint_release(sp);
    strata_ivf_close(h1);
    strata_ivf_close(h2);
    strata_abort(w);
    it_db_close(&d);
}

/* A large batch (many queries, k above the index size) equals the single
 * searches, query by query. */
Test(ivfpq_review, batch_large)
{
    it_db d;
    it_db_open(&d);
    build_small(&d, 120);
    enum { NQ = 1500, KB = 150 };
    float *q = it_mixture(NQ, DIM, 5, 7);
    strata_hit *all = malloc((size_t)NQ * KB * sizeof *all), one[KB];
    size_t *nall = malloc(NQ * sizeof *nall), n1;
    cr_assert(all && nall);
    strata_txn *r;
    strata_ivf *ix;
    strata_ivf_params p;
    strata_ivf_params_default(&p);
    p.nprobe = 3;
    p.rerank = 40;
    cr_assert_eq(strata_begin_read(d.db, &r), STRATA_OK);
    cr_assert_eq(strata_ivf_open(r, "h", &ix), STRATA_OK);
    cr_assert_eq(strata_ivf_search_batch(ix, NQ, q, DIM, KB, &p, all, nall), STRATA_OK);
    for (size_t i = 0; i < NQ; i += 7) {
        cr_assert_eq(strata_ivf_search(ix, q + i * DIM, DIM, KB, &p, one, &n1), STRATA_OK);
        cr_assert_eq(nall[i], n1, "query %zu", i);
        cr_assert_leq(n1, 120);
        for (size_t j = 0; j < n1; j++) {
            cr_assert_eq(all[i * KB + j].id, one[j].id, "query %zu hit %zu", i, j);
            cr_assert_eq(all[i * KB + j].dist, one[j].dist);
        }
    }
    strata_ivf_close(ix);
    strata_abort(r);
    free(all); free(nall); free(q);
    it_db_close(&d);
}
