/* tests/query/test_errors.c - bad input gets a clear error and changes
 * nothing: setters (k = 0, invalid vectors, negative or non-finite weights,
 * bad fusion, window, half-life, anchor, tags, namespace), runs (NULL
 * arguments, cap 0, no signal, all weights zero, unknown anchor, dimension
 * mismatch, a misbehaving index), and an empty store. */
#include <criterion/criterion.h>
#include <math.h>
#include <stdio.h>
#include <string.h>

#include "qmodel.h"

static strata_query *mk(void) {
    strata_query *q = NULL;
    cr_assert_eq(strata_query_create(&q), STRATA_OK);
    return q;
}

Test(query_errors, setters_reject_bad_input) {
    strata_query *q = mk();
    float v[4] = { 1, 2, 3, 4 }, bad[4] = { 1, NAN, 0, 0 }, inf[4] = { INFINITY, 0, 0, 0 };
    cr_assert_eq(strata_query_create(NULL), STRATA_EINVAL);
    cr_assert_eq(strata_query_set_vector(NULL, STRATA_METRIC_L2, v, 4, 1, 1, 0), STRATA_EINVAL);
    cr_assert_eq(strata_query_set_vector(q, STRATA_METRIC_L2, v, 4, 0, 1, 0), STRATA_EINVAL);   /* k = 0 */
    cr_assert_eq(strata_query_set_vector(q, STRATA_METRIC_L2, bad, 4, 1, 1, 0), STRATA_EINVAL);
    cr_assert_eq(strata_query_set_vector(q, STRATA_METRIC_L2, inf, 4, 1, 1, 0), STRATA_EINVAL);
    cr_assert_eq(strata_query_set_vector(q, STRATA_METRIC_L2, v, 0, 1, 1, 0), STRATA_EINVAL);
    cr_assert_eq(strata_query_set_vector(q, STRATA_METRIC_L2, NULL, 4, 1, 1, 0), STRATA_EINVAL);
    cr_assert_eq(strata_query_set_vector(q, (strata_metric)9, v, 4, 1, 1, 0), STRATA_EINVAL);
    cr_assert_eq(strata_query_set_vector(q, STRATA_METRIC_L2, v, 4, 1, 0, 0), STRATA_EINVAL);
    cr_assert_eq(strata_query_set_vector(q, STRATA_METRIC_L2, v, 4, 1, NAN, 0), STRATA_EINVAL);
    cr_assert_eq(strata_query_set_vector(q, STRATA_METRIC_L2, v, 4, 1, 1, 0x80), STRATA_EINVAL);
    cr_assert_eq(strata_query_set_weight(q, STRATA_QUERY_RECENCY, -0.5), STRATA_EINVAL);
    cr_assert_eq(strata_query_set_weight(q, STRATA_QUERY_RECENCY, NAN), STRATA_EINVAL);
    cr_assert_eq(strata_query_set_weight(q, STRATA_QUERY_RECENCY, INFINITY), STRATA_EINVAL);
    cr_assert_eq(strata_query_set_weight(q, (strata_query_signal)4, 1), STRATA_EINVAL);
    cr_assert_eq(strata_query_set_fusion(q, 7, 0), STRATA_EINVAL);
    cr_assert_eq(strata_query_set_fusion(q, STRATA_QUERY_FUSE_RRF, -1), STRATA_EINVAL);
    cr_assert_eq(strata_query_set_window(q, 10, 9), STRATA_EINVAL);
    cr_assert_eq(strata_query_set_recency(q, 0, 0), STRATA_EINVAL);
    cr_assert_eq(strata_query_set_anchor(q, 0, STRATA_BLOB_BOTH, 0, 2, 0), STRATA_EINVAL);
    cr_assert_eq(strata_query_set_anchor(q, 1, 0, 0, 2, 0), STRATA_EINVAL);
    cr_assert_eq(strata_query_set_anchor(q, 1, 4, 0, 2, 0), STRATA_EINVAL);
    cr_assert_eq(strata_query_set_anchor(q, 1, STRATA_BLOB_BOTH, 0, 0, 0), STRATA_EINVAL);
    cr_assert_eq(strata_query_set_anchor(q, 1, STRATA_BLOB_BOTH, 0, 1025, 0), STRATA_EINVAL);
    cr_assert_eq(strata_query_set_anchor(q, 1, STRATA_BLOB_BOTH, 0, 2, 0x10), STRATA_EINVAL);
    char long_tag[300];
    memset(long_tag, 'x', sizeof long_tag - 1);
    long_tag[sizeof long_tag - 1] = 0;
    cr_assert_eq(strata_query_require_tag(q, NULL), STRATA_EINVAL);
    cr_assert_eq(strata_query_require_tag(q, ""), STRATA_EINVAL);
    cr_assert_eq(strata_query_exclude_tag(q, long_tag), STRATA_EINVAL);
    cr_assert_eq(strata_query_set_namespace(q, long_tag), STRATA_EINVAL);
    for (int i = 0; i < (int)STRATA_QUERY_MAX_TAGS; i++) {
        char t[16];
        snprintf(t, sizeof t, "t%d", i);
        cr_assert_eq(strata_query_prefer_tag(q, t), STRATA_OK);
        cr_assert_eq(strata_query_prefer_tag(q, t), STRATA_OK);   /* twice: no-op */
    }
    cr_assert_eq(strata_query_prefer_tag(q, "one-too-many"), STRATA_EINVAL);
    strata_query_free(q);
    strata_query_free(NULL);
}

static int failing_ann(void *ctx, strata_txn *txn, strata_metric m, const float *query, size_t dim, size_t k,
                       strata_query_keep_fn keep, void *keep_ctx, strata_hit *out, size_t *n_out) {
    (void)txn; (void)m; (void)query; (void)dim; (void)keep; (void)keep_ctx; (void)out;
    if (*(int *)ctx) { *n_out = k + 1; return STRATA_OK; }   /* claims more than k */
    return STRATA_EIO;
}

Test(query_errors, runs_reject_bad_input) {
    qmodel m;
    qm_build(&m, 3, 40);
    strata_txn *r;
    cr_assert_eq(strata_begin_read(m.db, &r), STRATA_OK);
    strata_query_result res[4];
    size_t n = 77;
    strata_query *q = mk();
    cr_assert_eq(strata_query_run(r, q, res, 4, &n, NULL), STRATA_EINVAL);            /* no signal */
    cr_assert_eq(strata_query_set_namespace(q, "work"), STRATA_OK);
    cr_assert_eq(strata_query_run(r, q, res, 4, &n, NULL), STRATA_EINVAL);            /* filters only */
    cr_assert_eq(strata_query_set_recency(q, 0, 1000), STRATA_OK);
    cr_assert_eq(strata_query_set_weight(q, STRATA_QUERY_RECENCY, 0), STRATA_OK);
    cr_assert_eq(strata_query_set_weight(q, STRATA_QUERY_LINEAGE, 5), STRATA_OK);   /* not set: ignored */
    cr_assert_eq(strata_query_run(r, q, res, 4, &n, NULL), STRATA_EINVAL);            /* weights all 0 */
    cr_assert_eq(strata_query_set_weight(q, STRATA_QUERY_RECENCY, 1), STRATA_OK);
    cr_assert_eq(strata_query_run(NULL, q, res, 4, &n, NULL), STRATA_EINVAL);
    cr_assert_eq(strata_query_run(r, NULL, res, 4, &n, NULL), STRATA_EINVAL);
    cr_assert_eq(strata_query_run(r, q, NULL, 4, &n, NULL), STRATA_EINVAL);
    cr_assert_eq(strata_query_run(r, q, res, 4, NULL, NULL), STRATA_EINVAL);
    cr_assert_eq(strata_query_run(r, q, res, 0, &n, NULL), STRATA_EINVAL);           /* cap 0 */
    cr_assert_eq(n, 77, "n_out untouched on error");
    cr_assert_eq(strata_query_run(r, q, res, 4, &n, NULL), STRATA_OK);
    cr_assert_leq(n, 4);

    cr_assert_eq(strata_query_set_anchor(q, 999999, STRATA_BLOB_BOTH, 0, 2, 0), STRATA_OK);
    n = 77;
    cr_assert_eq(strata_query_run(r, q, res, 4, &n, NULL), STRATA_NOTFOUND);          /* unknown anchor */
    cr_assert_eq(n, 77);
    strata_query_free(q);

    float v3[3] = { 1, 0, 0 };                                                         /* store has dim 4 */
    q = mk();
    cr_assert_eq(strata_query_set_vector(q, STRATA_METRIC_COSINE, v3, 3, 5, 1, 0), STRATA_OK);
    cr_assert_eq(strata_query_run(r, q, res, 4, &n, NULL), STRATA_EINVAL);            /* dimension mismatch */
    cr_assert_eq(strata_query_set_recency(q, 0, 1000), STRATA_OK);
    cr_assert_eq(strata_query_run(r, q, res, 4, &n, NULL), STRATA_EINVAL);            /* also on the full plan */
    cr_assert_eq(strata_query_set_vector(q, STRATA_METRIC_COSINE, v3, 3, 5, 1, STRATA_QUERY_VEC_SKIP_DIM),
                 STRATA_OK);
    cr_assert_eq(strata_query_run(r, q, res, 4, &n, NULL), STRATA_OK);
    for (size_t i = 0; i < n; i++) cr_assert(isnan(res[i].dist) && res[i].signal[STRATA_QUERY_SIMILARITY] == 0);
    int mode = 0;
    cr_assert_eq(strata_query_set_ann(q, failing_ann, &mode), STRATA_OK);
    cr_assert_eq(strata_query_run(r, q, res, 4, &n, NULL), STRATA_EIO);               /* index error passes */
    mode = 1;
    cr_assert_eq(strata_query_run(r, q, res, 4, &n, NULL), STRATA_EINVAL);            /* index overflowed */
    strata_query_free(q);

    /* A huge k is not an allocation: it is bounded by the rows there are. */
    float v4[4] = { 1, 0, 0, 0 };
    q = mk();
    cr_assert_eq(strata_query_set_vector(q, STRATA_METRIC_L2, v4, 4, (size_t)1 << 60, 1, 0), STRATA_OK);
    cr_assert_eq(strata_query_run(r, q, res, 4, &n, NULL), STRATA_OK);
    cr_assert_eq(n, 4);
    cr_assert_eq(strata_query_set_recency(q, 0, 1000), STRATA_OK);
    cr_assert_eq(strata_query_run(r, q, res, 4, &n, NULL), STRATA_OK);
    cr_assert_eq(n, 4);
    strata_query_free(q);
    strata_abort(r);
    qm_free(&m);
}

Test(query_errors, empty_store) {
    qmodel m;
    qm_build(&m, 1, 0);
    strata_txn *r;
    cr_assert_eq(strata_begin_read(m.db, &r), STRATA_OK);
    float v[4] = { 1, 0, 0, 0 };
    strata_query_result res[4];
    size_t n = 77;
    strata_query_explain ex;
    strata_query *q = mk();
    cr_assert_eq(strata_query_set_vector(q, STRATA_METRIC_L2, v, 4, 3, 1, 0), STRATA_OK);
    cr_assert_eq(strata_query_run(r, q, res, 4, &n, &ex), STRATA_OK);
    cr_assert(n == 0 && ex.n_blobs == 0);
    cr_assert_eq(strata_query_set_recency(q, 0, 1000), STRATA_OK);
    cr_assert_eq(strata_query_prefer_tag(q, "x"), STRATA_OK);
    cr_assert_eq(strata_query_set_namespace(q, ""), STRATA_OK);
    cr_assert_eq(strata_query_run(r, q, res, 4, &n, &ex), STRATA_OK);
    cr_assert_eq(n, 0);
    cr_assert_eq(strata_query_set_anchor(q, 1, STRATA_BLOB_BOTH, 0, 2, 0), STRATA_OK);
    cr_assert_eq(strata_query_run(r, q, res, 4, &n, &ex), STRATA_NOTFOUND);
    strata_query_free(q);
    strata_abort(r);
    qm_free(&m);
}
