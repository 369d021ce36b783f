/* tests/query/test_ivf.c - the similarity signal through an IVF-PQ index
 * (strata_query_set_ivf by name, strata_query_set_ivf_handle with an open
 * handle): with every list probed and every candidate
 * re-ranked the index is exact, so each answer must equal the brute force;
 * the knn plan through the index; a missing index falls back to the exact
 * scan (or is STRATA_NOTFOUND when required); an index of another dimension
 * is STRATA_EINVAL. */
#include <criterion/criterion.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "qmodel.h"

static const strata_metric metrics[3] = { STRATA_METRIC_L2, STRATA_METRIC_IP, STRATA_METRIC_COSINE };
static const char *const names[3] = { "ivf-l2", "ivf-ip", "ivf-cos" };

/* One index per metric holding every live embedding under its blob id. */
static void build_indexes(qmodel *m) {
    strata_txn *w;
    cr_assert_eq(strata_begin_write(m->db, &w), STRATA_OK);
    for (int x = 0; x < 3; x++) qm_build_ivf(m, w, names[x], metrics[x]);
    cr_assert_eq(strata_commit(w), STRATA_OK);
}

Test(query_ivf, exhaustive_index_equals_brute_force, .timeout = 300) {
    qmodel m;
    qm_build(&m, 17, 420);
    build_indexes(&m);
    strata_txn *r;
    cr_assert_eq(strata_begin_read(m.db, &r), STRATA_OK);
    uint64_t rng = 5, hlc;
    cr_assert_eq(strata_txn_hlc(r, &hlc), STRATA_OK);
    static strata_query_result got[1000], want[1000];
    size_t knn = 0;
    for (int it = 0; it < 90; it++) {
        qparams p;
        int x = it % 3;
        unsigned sig = it < 30 ? 1 : 1 | (unsigned)(qm_rand(&rng) % 16);
        unsigned filt = it < 15 ? 0 : (unsigned)(qm_rand(&rng) % 128);
        qp_random(&m, &p, &rng, sig, filt, it % 2);
        p.metric = metrics[x];
        strata_query *q = qp_build(&p);
        strata_ivf *ix = NULL;
        if (it % 4 == 3) {   /* a handle opened by the caller */
            cr_assert_eq(strata_ivf_open(r, names[x], &ix), STRATA_OK);
            cr_assert_eq(strata_query_set_ivf_handle(q, ix, 4, 1000), STRATA_OK);
        } else
            cr_assert_eq(strata_query_set_ivf(q, names[x], 4, 1000, STRATA_QUERY_IVF_REQUIRED), STRATA_OK);
        size_t ng, nw;
        strata_query_explain ex;
        cr_assert_eq(strata_query_run(r, q, got, p.cap, &ng, &ex), STRATA_OK);
        qp_eval(&m, &p, hlc, want, &nw);
        char what[64];
        snprintf(what, sizeof what, "ivf it %d metric %d", it, (int)p.metric);
        qp_assert_same(got, ng, want, nw, what);
        if (ex.n_filtered) cr_assert_eq(ex.sim_source, 3, "%s", what);
        knn += ex.driver == STRATA_QUERY_DRIVE_SIMILARITY;
        strata_query_free(q);
        strata_ivf_close(ix);
    }
    cr_assert_gt(knn, 0, "the knn plan went through the index");
    strata_abort(r);
    qm_free(&m);
}

Test(query_ivf, missing_index_and_dimension) {
    qmodel m;
    qm_build(&m, 4, 60);
    strata_txn *w, *r;
    cr_assert_eq(strata_begin_write(m.db, &w), STRATA_OK);
    strata_ivf_config c = { 3, STRATA_METRIC_L2, 2, 1, 2, 0, 5, 0, 1 };
    cr_assert_eq(strata_ivf_create(w, "three", &c, NULL), STRATA_OK);
    cr_assert_eq(strata_commit(w), STRATA_OK);
    cr_assert_eq(strata_begin_read(m.db, &r), STRATA_OK);
    uint64_t rng = 8, hlc;
    cr_assert_eq(strata_txn_hlc(r, &hlc), STRATA_OK);
    strata_query_result got[64], want[64];
    for (int it = 0; it < 20; it++) {
        qparams p;
        size_t ng, nw;
        strata_query_explain ex;
        qp_random(&m, &p, &rng, 1 | (unsigned)(qm_rand(&rng) % 16), it ? (unsigned)(qm_rand(&rng) % 128) : 0, 0);
        p.cap = p.cap > 64 ? 64 : p.cap;
        strata_query *q = qp_build(&p);
        cr_assert_eq(strata_query_set_ivf(q, "no-such-index", 0, 0, 0), STRATA_OK);
        cr_assert_eq(strata_query_run(r, q, got, p.cap, &ng, &ex), STRATA_OK);
        qp_eval(&m, &p, hlc, want, &nw);
        qp_assert_same(got, ng, want, nw, "fallback");
        if (ex.n_filtered) cr_assert(ex.sim_fallback == 1 && ex.sim_source == 1);
        cr_assert_eq(strata_query_set_ivf(q, "no-such-index", 0, 0, STRATA_QUERY_IVF_REQUIRED), STRATA_OK);
        if (ex.n_filtered) cr_assert_eq(strata_query_run(r, q, got, p.cap, &ng, NULL), STRATA_NOTFOUND);
        strata_query_free(q);
    }
    float v4[4] = { 1, 0, 0, 0 };                    /* the index has dim 3, the store 4 */
    strata_query *q;
    size_t n;
    cr_assert_eq(strata_query_create(&q), STRATA_OK);
    cr_assert_eq(strata_query_set_vector(q, STRATA_METRIC_L2, v4, 4, 3, 1, 0), STRATA_OK);
    cr_assert_eq(strata_query_set_ivf(q, "three", 0, 0, 0), STRATA_OK);
    cr_assert_eq(strata_query_run(r, q, got, 4, &n, NULL), STRATA_EINVAL);
    cr_assert_eq(strata_query_set_ivf(q, "", 0, 0, 0), STRATA_EINVAL);
    cr_assert_eq(strata_query_set_ivf(q, "x", 0, 0, 0x8), STRATA_EINVAL);
    cr_assert_eq(strata_query_set_ivf(q, NULL, 0, 0, 0), STRATA_OK);   /* back to exact */
    cr_assert_eq(strata_query_run(r, q, got, 4, &n, NULL), STRATA_OK);
    strata_query_free(q);
    strata_abort(r);
    qm_free(&m);
}
