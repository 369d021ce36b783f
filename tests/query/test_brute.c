/* tests/query/test_brute.c - strata_query_run against the brute-force
 * evaluation of qmodel.c: random stores (several seeds), every non-empty
 * combination of the four signals, both fusions, and for each a spread of
 * filter combinations (none, each alone, random mixes), result caps from 1
 * to more than the store. Also the index (ann) path with an exact and a lossy
 * index, and runs inside a write transaction that sees its own writes. */
#include <criterion/criterion.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "qmodel.h"

enum { NBLOBS = 240, NSEEDS = 8, NVARIANTS = 14, RCAP = 1000 };

static uint64_t txn_hlc(strata_txn *r) {
    uint64_t h = 0;
    cr_assert_eq(strata_txn_hlc(r, &h), STRATA_OK);
    return h;
}

/* Filter masks: none, each filter alone, then random mixes. */
static unsigned filter_variant(int v, uint64_t *rng) {
    static const unsigned alone[] = { 0, 1, 2, 4, 8, 16, 32, 64 };
    if (v < (int)(sizeof alone / sizeof alone[0])) return alone[v];
    return (unsigned)(qm_rand(rng) % 128);
}

static size_t g_runs, g_nonempty, g_drivers[STRATA_QUERY_NDRIVE], g_probes, g_meta;

static void check_one(const qmodel *m, strata_txn *r, const qparams *p, const char *what) {
    static strata_query_result got[RCAP], want[RCAP];
    size_t ng = 0, nw = 0;
    strata_query_explain ex;
    strata_query *q = qp_build(p);
    int rc = strata_query_run(r, q, got, p->cap, &ng, &ex);
    cr_assert_eq(rc, STRATA_OK, "%s: rc %d", what, rc);
    qp_eval(m, p, txn_hlc(r), want, &nw);
    qp_assert_same(got, ng, want, nw, what);
    cr_assert_eq(ex.n_results, ng);
    cr_assert_geq(ex.n_generated, ex.n_indexed);
    cr_assert_geq(ex.n_indexed, ex.n_filtered);
    g_runs++;
    g_nonempty += ng > 1;
    g_drivers[ex.driver]++;
    g_probes += ex.n_probes > 0;
    g_meta += ex.n_meta_loads > 0;
    strata_query_free(q);
}

Test(query_brute, every_signal_combination_and_filters, .timeout = 300) {
    for (uint64_t seed = 1; seed <= NSEEDS; seed++) {
        qmodel m;
        qm_build(&m, seed, NBLOBS);
        strata_txn *r;
        cr_assert_eq(strata_begin_read(m.db, &r), STRATA_OK);
        uint64_t rng = seed * 7919 + 1;
        for (unsigned sig = 1; sig < 16; sig++)
            for (int fusion = 0; fusion < 2; fusion++)
                for (int v = 0; v < NVARIANTS; v++) {
                    qparams p;
                    char what[96];
                    qp_random(&m, &p, &rng, sig, filter_variant(v, &rng), fusion);
                    snprintf(what, sizeof what, "seed %llu sig %u fusion %d variant %d",
                             (unsigned long long)seed, sig, fusion, v);
                    check_one(&m, r, &p, what);
                }
        strata_abort(r);
        qm_free(&m);
    }
    /* The random queries must not be vacuous: most answers hold several
     * results, and every plan was exercised. */
    cr_assert_geq(g_nonempty * 10, g_runs * 6, "%zu of %zu answers with 2+ results", g_nonempty, g_runs);
    for (int d = 0; d < STRATA_QUERY_NDRIVE; d++) cr_assert_gt(g_drivers[d], 0, "driver %d never chosen", d);
    cr_assert(g_probes > 0 && g_meta > 0, "point lookups and metadata reads were exercised");
}

/* An exact index over every embedding, honouring keep: must give the same
 * answer as the exact scan. The lossy one drops every other hit: those blobs
 * must then have no similarity score. */
typedef struct ann_ctx { const qmodel *m; int lossy; size_t calls, n_ret; uint64_t ret[64]; } ann_ctx;

static int hit_cmp(const void *a, const void *b) {
    const strata_hit *x = a, *y = b;
    if (x->dist != y->dist) return x->dist < y->dist ? -1 : 1;
    return (x->id > y->id) - (x->id < y->id);
}

static int ann(void *ctx, strata_txn *txn, strata_metric mt, const float *query, size_t dim, size_t k,
               strata_query_keep_fn keep, void *keep_ctx, strata_hit *out, size_t *n_out) {
    ann_ctx *a = ctx;
    (void)txn;
    a->calls++;
    cr_assert_eq(dim, QM_DIM);
    strata_hit *all = malloc(a->m->n * sizeof *all);
    size_t n = 0, o = 0;
    cr_assert_not_null(all);
    for (size_t i = 0; i < a->m->n; i++) {
        const mblob *b = &a->m->b[i];
        if (!b->id || !b->has_emb || !keep(keep_ctx, b->id)) continue;
        all[n].id = b->id;
        cr_assert_eq(strata_vec_distance(mt, query, b->emb, QM_DIM, &all[n].dist), STRATA_OK);
        n++;
    }
    qsort(all, n, sizeof *all, hit_cmp);
    for (size_t i = 0; i < n && o < k; i++)
        if (!a->lossy || i % 2 == 0) out[o++] = all[i];
    *n_out = o;
    a->n_ret = o;
    for (size_t i = 0; i < o && i < 64; i++) a->ret[i] = out[i].id;
    free(all);
    return STRATA_OK;
}

Test(query_brute, ann_source_exact_and_lossy) {
    qmodel m;
    qm_build(&m, 11, NBLOBS);
    strata_txn *r;
    cr_assert_eq(strata_begin_read(m.db, &r), STRATA_OK);
    uint64_t rng = 99;
    static strata_query_result got[RCAP], want[RCAP], lossy[RCAP];
    for (int it = 0; it < 60; it++) {
        qparams p;
        qp_random(&m, &p, &rng, 1 | (unsigned)(qm_rand(&rng) % 16), (unsigned)(qm_rand(&rng) % 128), it % 2);
        strata_query *q = qp_build(&p);
        ann_ctx a = { &m, 0, 0, 0, { 0 } };
        size_t ng = 0, nw = 0, nl = 0;
        strata_query_explain ex;
        cr_assert_eq(strata_query_set_ann(q, ann, &a), STRATA_OK);
        cr_assert_eq(strata_query_run(r, q, got, p.cap, &ng, &ex), STRATA_OK);
        cr_assert_eq(ex.sim_source, 2);
        cr_assert_eq(a.calls, ex.n_filtered ? 1u : 0u, "the index is asked once when there are candidates");
        qp_eval(&m, &p, txn_hlc(r), want, &nw);
        qp_assert_same(got, ng, want, nw, "exact ann");
        a.lossy = 1;
        cr_assert_eq(strata_query_run(r, q, lossy, RCAP, &nl, NULL), STRATA_OK);
        /* Exactly the blobs the lossy index returned get a distance. */
        size_t with_dist = 0;
        for (size_t i = 0; i < nl; i++) {
            int returned = 0;
            for (size_t j = 0; j < a.n_ret; j++) returned |= a.ret[j] == lossy[i].id;
            cr_assert_eq(!isnan(lossy[i].dist), returned, "id %llu", (unsigned long long)lossy[i].id);
            with_dist += returned;
        }
        cr_assert_leq(with_dist, p.k);
        strata_query_free(q);
    }
    strata_abort(r);
    qm_free(&m);
}

/* A run in a write transaction sees that transaction's own new blobs; a read
 * transaction begun before keeps its snapshot. */
Test(query_brute, snapshot_of_the_callers_transaction) {
    qmodel m;
    qm_build(&m, 5, 60);
    strata_txn *before, *w;
    cr_assert_eq(strata_begin_read(m.db, &before), STRATA_OK);
    cr_assert_eq(strata_begin_write(m.db, &w), STRATA_OK);
    uint64_t id;
    cr_assert_eq(strata_blob_put(w, NULL, "fresh", 5, &id), STRATA_OK);
    cr_assert_eq(strata_blob_tag_add(w, id, "unique-tag"), STRATA_OK);
    strata_query *q;
    strata_query_result res[4];
    size_t n = 99;
    cr_assert_eq(strata_query_create(&q), STRATA_OK);
    cr_assert_eq(strata_query_prefer_tag(q, "unique-tag"), STRATA_OK);
    cr_assert_eq(strata_query_require_tag(q, "unique-tag"), STRATA_OK);
    cr_assert_eq(strata_query_run(w, q, res, 4, &n, NULL), STRATA_OK);
    cr_assert(n == 1 && res[0].id == id && res[0].signal[STRATA_QUERY_TAGS] == 1.0);
    cr_assert_eq(strata_query_run(before, q, res, 4, &n, NULL), STRATA_OK);
    cr_assert_eq(n, 0);
    cr_assert_eq(strata_commit(w), STRATA_OK);
    cr_assert_eq(strata_query_run(before, q, res, 4, &n, NULL), STRATA_OK);
    cr_assert_eq(n, 0, "the old snapshot must not see the commit");
    strata_abort(before);
    strata_query_free(q);
    qm_free(&m);
}
