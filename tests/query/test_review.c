/* tests/query/test_review.c - adversarial checks of the query layer against
 * the brute force of qmodel.c: blobs deleted after an IVF-PQ index was built
 * (the index still holds them: every plan, the knn plan included, must skip
 * them and still find k live neighbours), an index function returning
 * duplicates, non-candidates, deleted ids and ids without embedding, huge k
 * and cap, an empty store, contradictory filters, more random combinations
 * of signals, filters, weights and fusions on other seeds than test_brute. */
#include <criterion/criterion.h>
#include <float.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "qmodel.h"

enum { NRES = QM_MAXB + 8 };

static void build_ivf(qmodel *m, const char *name, strata_metric met) {
    strata_txn *w;
    cr_assert_eq(strata_begin_write(m->db, &w), STRATA_OK);
    qm_build_ivf(m, w, name, met);
    cr_assert_eq(strata_commit(w), STRATA_OK);
}

/* Blobs deleted after the index was built (their embeddings go with them;
 * the index keeps their ids). An exhaustive index search (every list, full
 * rerank) must still equal the brute force over the live blobs, in every
 * plan: the knn plan (no filter) too, which asks the index over every blob. */
Test(query_review, index_keeps_deleted_blobs) {
    static qmodel m;
    qm_build(&m, 23, 440);
    static const strata_metric mets[3] = { STRATA_METRIC_L2, STRATA_METRIC_IP, STRATA_METRIC_COSINE };
    static const char *const names[3] = { "d-l2", "d-ip", "d-cos" };
    for (int x = 0; x < 3; x++) build_ivf(&m, names[x], mets[x]);
    /* delete the blobs nearest to a few query vectors, so every top k meets them */
    uint64_t rng = 77;
    float qv[4][QM_DIM];
    strata_txn *w;
    cr_assert_eq(strata_begin_write(m.db, &w), STRATA_OK);
    for (int t = 0; t < 4; t++) {
        for (int d = 0; d < QM_DIM; d++) qv[t][d] = (float)((int)(qm_rand(&rng) % 5) - 2) * 0.5f;
        for (size_t i = 0; i < m.n; i++) {
            float dist;
            if (!m.b[i].id || !m.b[i].has_emb) continue;
            cr_assert_eq(strata_vec_distance(STRATA_METRIC_L2, qv[t], m.b[i].emb, QM_DIM, &dist), STRATA_OK);
            if (dist <= 0.5f) qm_del_blob(&m, w, i);
        }
    }
    cr_assert_eq(strata_commit(w), STRATA_OK);
    strata_txn *r;
    uint64_t hlc;
    cr_assert_eq(strata_begin_read(m.db, &r), STRATA_OK);
    cr_assert_eq(strata_txn_hlc(r, &hlc), STRATA_OK);
    static strata_query_result got[NRES], want[NRES];
    int knn = 0;
    for (int it = 0; it < 72; it++) {
        qparams p;
        int x = it % 3;
        unsigned sig = it < 24 ? 1 : 1 | (unsigned)(qm_rand(&rng) % 16);
        unsigned filt = it < 24 || it % 2 ? 0 : (unsigned)(qm_rand(&rng) % 128);
        qp_random(&m, &p, &rng, sig, filt, it % 2);
        p.metric = mets[x];
        memcpy(p.v, qv[it % 4], sizeof p.v);
        p.k = 1 + (size_t)(qm_rand(&rng) % 30);
        strata_query *q = qp_build(&p);
        strata_ivf *ix = NULL;
        if (it % 4 == 3) {
            cr_assert_eq(strata_ivf_open(r, names[x], &ix), STRATA_OK);
            cr_assert_eq(strata_query_set_ivf_handle(q, ix, 4, 100000), STRATA_OK);
        } else {
            cr_assert_eq(strata_query_set_ivf(q, names[x], 4, 100000, STRATA_QUERY_IVF_REQUIRED), STRATA_OK);
        }
        size_t ng, nw;
        strata_query_explain ex;
        cr_assert_eq(strata_query_run(r, q, got, p.cap, &ng, &ex), STRATA_OK);
        qp_eval(&m, &p, hlc, want, &nw);
        char what[96];
        snprintf(what, sizeof what, "deleted it %d metric %d driver %d k %zu", it, (int)p.metric, ex.driver, p.k);
        qp_assert_same(got, ng, want, nw, what);
        knn += ex.driver == STRATA_QUERY_DRIVE_SIMILARITY;
        strata_query_free(q);
        strata_ivf_close(ix);
    }
    cr_assert_gt(knn, 0);
    strata_abort(r);
    qm_free(&m);
}

/* An index function that returns junk around the right answer: the ids it
 * is told to keep in an order of its own, each twice, plus non-candidates,
 * deleted ids, ids that never existed and blobs without an embedding. The
 * answer must equal the brute force (the function sees every candidate). */
typedef struct junk { const qmodel *m; int calls, clean; } junk;

static int junk_ann(void *ctx, strata_txn *txn, strata_metric met, const float *query, size_t dim,
                    size_t k, strata_query_keep_fn keep, void *keep_ctx, strata_hit *out, size_t *n_out) {
    junk *j = ctx;
    const qmodel *m = j->m;
    (void)txn;
    j->calls++;
    /* the k nearest kept blobs with an embedding, by brute force */
    static strata_hit all[QM_MAXB];
    size_t n = 0;
    for (size_t i = 0; i < m->n; i++) {
        if (!m->b[i].id || !m->b[i].has_emb || !keep(keep_ctx, m->b[i].id)) continue;
        cr_assert_eq(strata_vec_distance(met, query, m->b[i].emb, dim, &all[n].dist), STRATA_OK);
        all[n++].id = m->b[i].id;
    }
    for (size_t a = 1; a < n; a++)                       /* insertion sort by (dist, id) */
        for (size_t b = a; b > 0 && (all[b].dist < all[b - 1].dist ||
                                     (all[b].dist == all[b - 1].dist && all[b].id < all[b - 1].id)); b--) {
            strata_hit t = all[b]; all[b] = all[b - 1]; all[b - 1] = t;
        }
    size_t want = n < k ? n : k, o = 0;
    if (j->clean) {                                      /* the right answer, reversed */
        for (size_t i = want; i-- > 0;) out[o++] = all[i];
        *n_out = o;
        return STRATA_OK;
    }
    /* junk first, within the k slots: a deleted id, an unknown id, a blob
     * without embedding, then each answer twice (reverse order) */
    uint64_t extra[3] = { 0, 999999, 0 };
    for (size_t i = 0; i < m->n; i++) {
        if (!m->b[i].id) extra[0] = (uint64_t)i + 1;
        else if (!m->b[i].has_emb) extra[2] = m->b[i].id;
    }
    for (int e = 0; e < 3 && o < k; e++)
        if (extra[e]) out[o++] = (strata_hit){ extra[e], 0.0f };
    for (size_t i = want; i-- > 0 && o < k;) {
        out[o++] = all[i];
        if (o < k) out[o++] = all[i];
    }
    /* the junk took slots: append the rest only if room (otherwise the
     * contract "up to k hits" would be broken) */
    *n_out = o;
    return STRATA_OK;
}

Test(query_review, ann_duplicates_and_junk) {
    static qmodel m;
    qm_build(&m, 31, 260);
    strata_txn *r;
    uint64_t hlc, rng = 3;
    cr_assert_eq(strata_begin_read(m.db, &r), STRATA_OK);
    cr_assert_eq(strata_txn_hlc(r, &hlc), STRATA_OK);
    static strata_query_result got[NRES], want[NRES];
    junk j = { &m, 0, 0 };
    for (int it = 0; it < 60; it++) {
        j.clean = it % 2;
        qparams p;
        qp_random(&m, &p, &rng, 1 | (unsigned)(qm_rand(&rng) % 16), it % 3 ? (unsigned)(qm_rand(&rng) % 128) : 0,
                  it % 2);
        strata_query *q = qp_build(&p);
        cr_assert_eq(strata_query_set_ann(q, junk_ann, &j), STRATA_OK);
        size_t ng, nw;
        int rc = strata_query_run(r, q, got, p.cap, &ng, NULL);
        cr_assert_eq(rc, STRATA_OK, "it %d rc %d", it, rc);
        /* the junk pushes answers out of the k slots: the brute force with
         * the same effective k (each answer counted twice, 3 junk slots) */
        qp_eval(&m, &p, hlc, want, &nw);
        if (j.clean) qp_assert_same(got, ng, want, nw, "ann clean");
        /* all the function's answers must be real, and no more than k */
        size_t nd = 0;
        for (size_t i = 0; i < ng; i++) {
            cr_assert_neq(got[i].id, 999999);
            if (!isnan(got[i].dist)) {
                nd++;
                cr_assert(m.b[got[i].id - 1].id && m.b[got[i].id - 1].has_emb);
            }
        }
        cr_assert_leq(nd, p.k, "it %d", it);
        strata_query_free(q);
    }
    cr_assert_gt(j.calls, 0);
    strata_abort(r);
    qm_free(&m);
}

/* Huge k and cap cost nothing and change nothing: the answer equals the
 * brute force with k and cap at the number of blobs. */
Test(query_review, huge_k_and_cap) {
    static qmodel m;
    qm_build(&m, 41, 200);
    strata_txn *r;
    uint64_t hlc, rng = 9;
    cr_assert_eq(strata_begin_read(m.db, &r), STRATA_OK);
    cr_assert_eq(strata_txn_hlc(r, &hlc), STRATA_OK);
    static strata_query_result got[NRES], want[NRES];
    for (int it = 0; it < 40; it++) {
        qparams p;
        qp_random(&m, &p, &rng, 1 | (unsigned)(qm_rand(&rng) % 16), it % 2 ? (unsigned)(qm_rand(&rng) % 128) : 0,
                  it % 2);
        p.k = SIZE_MAX - (size_t)it;
        strata_query *q = qp_build(&p);
        size_t ng, nw;
        cr_assert_eq(strata_query_run(r, q, got, SIZE_MAX, &ng, NULL), STRATA_OK, "it %d", it);
        p.cap = NRES;
        qp_eval(&m, &p, hlc, want, &nw);
        qp_assert_same(got, ng, want, nw, "huge k");
        strata_query_free(q);
    }
    strata_abort(r);
    qm_free(&m);
}

static int reject_all(void *ctx, strata_txn *txn, const strata_blob_info *info) {
    (void)ctx; (void)txn; (void)info;
    return 0;
}

/* Empty inputs: an empty store answers nothing (an anchor is NOTFOUND);
 * contradictory filters, a predicate rejecting everything, an empty window
 * answer nothing; bad input is refused and changes nothing. */
Test(query_review, empty_and_contradictory) {
    static qmodel m;
    qm_build(&m, 5, 0);
    strata_txn *r;
    strata_query *q;
    strata_query_result out[8];
    size_t n = 99;
    float v[QM_DIM] = { 1, 0, 0, 0 };
    cr_assert_eq(strata_begin_read(m.db, &r), STRATA_OK);
    cr_assert_eq(strata_query_create(&q), STRATA_OK);
    cr_assert_eq(strata_query_set_vector(q, STRATA_METRIC_L2, v, QM_DIM, 5, 1, 0), STRATA_OK);
    cr_assert_eq(strata_query_run(r, q, out, 8, &n, NULL), STRATA_OK);
    cr_assert_eq(n, 0);
    cr_assert_eq(strata_query_set_recency(q, 0, 1000), STRATA_OK);
    cr_assert_eq(strata_query_prefer_tag(q, "red"), STRATA_OK);
    n = 99;
    cr_assert_eq(strata_query_run(r, q, out, 8, &n, NULL), STRATA_OK);
    cr_assert_eq(n, 0);
    cr_assert_eq(strata_query_set_anchor(q, 1, STRATA_BLOB_BOTH, 0, 3, 0), STRATA_OK);
    cr_assert_eq(strata_query_run(r, q, out, 8, &n, NULL), STRATA_NOTFOUND);
    strata_query_free(q);
    strata_abort(r);
    qm_free(&m);

    qm_build(&m, 6, 120);
    uint64_t hlc;
    cr_assert_eq(strata_begin_read(m.db, &r), STRATA_OK);
    cr_assert_eq(strata_txn_hlc(r, &hlc), STRATA_OK);
    cr_assert_eq(strata_query_create(&q), STRATA_OK);
    cr_assert_eq(strata_query_set_recency(q, 0, 1000), STRATA_OK);
    /* bad input changes nothing: the query still answers as before */
    size_t n0;
    static strata_query_result a[NRES], b[NRES];
    cr_assert_eq(strata_query_run(r, q, a, NRES, &n0, NULL), STRATA_OK);
    cr_assert_gt(n0, 0);
    cr_assert_eq(strata_query_set_window(q, 10, 9), STRATA_EINVAL);
    cr_assert_eq(strata_query_set_vector(q, STRATA_METRIC_L2, v, QM_DIM, 0, 1, 0), STRATA_EINVAL);
    cr_assert_eq(strata_query_set_vector(q, (strata_metric)9, v, QM_DIM, 1, 1, 0), STRATA_EINVAL);
    float bad[QM_DIM] = { NAN, 0, 0, 0 };
    cr_assert_eq(strata_query_set_vector(q, STRATA_METRIC_L2, bad, QM_DIM, 1, 1, 0), STRATA_EINVAL);
    bad[0] = INFINITY;
    cr_assert_eq(strata_query_set_vector(q, STRATA_METRIC_L2, bad, QM_DIM, 1, 1, 0), STRATA_EINVAL);
    cr_assert_eq(strata_query_set_vector(q, STRATA_METRIC_L2, v, QM_DIM, 1, 1, 0x80), STRATA_EINVAL);
    cr_assert_eq(strata_query_set_anchor(q, 1, STRATA_BLOB_BOTH, 0, 1025, 0), STRATA_EINVAL);
    cr_assert_eq(strata_query_set_anchor(q, 1, STRATA_BLOB_BOTH, 0, 0, 0), STRATA_EINVAL);
    cr_assert_eq(strata_query_set_anchor(q, 1, 0, 0, 2, 0), STRATA_EINVAL);
    cr_assert_eq(strata_query_set_anchor(q, 1, STRATA_BLOB_BOTH, 0, 2, 0x40), STRATA_EINVAL);
    cr_assert_eq(strata_query_set_weight(q, STRATA_QUERY_RECENCY, NAN), STRATA_EINVAL);
    cr_assert_eq(strata_query_set_weight(q, STRATA_QUERY_RECENCY, -1), STRATA_EINVAL);
    cr_assert_eq(strata_query_set_weight(q, (strata_query_signal)4, 1), STRATA_EINVAL);
    cr_assert_eq(strata_query_set_fusion(q, 2, 0), STRATA_EINVAL);
    cr_assert_eq(strata_query_set_fusion(q, STRATA_QUERY_FUSE_RRF, -1), STRATA_EINVAL);
    cr_assert_eq(strata_query_set_recency(q, 0, 0), STRATA_EINVAL);
    cr_assert_eq(strata_query_require_tag(NULL, "red"), STRATA_EINVAL);
    cr_assert_eq(strata_query_exclude_tag(NULL, "red"), STRATA_EINVAL);
    cr_assert_eq(strata_query_prefer_tag(NULL, "red"), STRATA_EINVAL);
    cr_assert_eq(strata_query_run(r, q, b, NRES, &n, NULL), STRATA_OK);
    cr_assert_eq(n, n0);
    cr_assert_eq(memcmp(a, b, n * sizeof *a), 0);
    cr_assert_eq(strata_query_run(r, q, b, 0, &n, NULL), STRATA_EINVAL);
    /* weight 0 for the only signal: EINVAL */
    cr_assert_eq(strata_query_set_weight(q, STRATA_QUERY_RECENCY, 0), STRATA_OK);
    cr_assert_eq(strata_query_run(r, q, b, NRES, &n, NULL), STRATA_EINVAL);
    cr_assert_eq(strata_query_set_weight(q, STRATA_QUERY_RECENCY, 1), STRATA_OK);
    /* required and excluded: the same tag */
    cr_assert_eq(strata_query_require_tag(q, "red"), STRATA_OK);
    cr_assert_eq(strata_query_exclude_tag(q, "red"), STRATA_OK);
    n = 99;
    cr_assert_eq(strata_query_run(r, q, b, NRES, &n, NULL), STRATA_OK);
    cr_assert_eq(n, 0);
    strata_query_free(q);
    /* a predicate rejecting everything; an empty window */
    cr_assert_eq(strata_query_create(&q), STRATA_OK);
    cr_assert_eq(strata_query_set_recency(q, 0, 1000), STRATA_OK);
    cr_assert_eq(strata_query_set_predicate(q, reject_all, NULL), STRATA_OK);
    n = 99;
    cr_assert_eq(strata_query_run(r, q, b, NRES, &n, NULL), STRATA_OK);
    cr_assert_eq(n, 0);
    cr_assert_eq(strata_query_set_predicate(q, NULL, NULL), STRATA_OK);
    cr_assert_eq(strata_query_set_window(q, 1, 2), STRATA_OK);
    n = 99;
    cr_assert_eq(strata_query_run(r, q, b, NRES, &n, NULL), STRATA_OK);
    cr_assert_eq(n, 0);
    cr_assert_eq(strata_query_set_window(q, hlc + 1, UINT64_MAX), STRATA_OK);   /* after every blob */
    n = 99;
    cr_assert_eq(strata_query_run(r, q, b, NRES, &n, NULL), STRATA_OK);
    cr_assert_eq(n, 0);
    strata_query_free(q);
    strata_abort(r);
    qm_free(&m);
}

/* More random queries than test_brute (other seeds, larger k, every
 * combination of signals and filters), in a write transaction after
 * deletions, against the brute force. */
Test(query_review, random_against_model) {
    static qmodel m;
    static strata_query_result got[NRES], want[NRES];
    for (uint64_t seed = 101; seed < 104; seed++) {
        qm_build(&m, seed, 300);
        strata_txn *w;
        uint64_t rng = seed, hlc;
        cr_assert_eq(strata_begin_write(m.db, &w), STRATA_OK);
        for (int d = 0; d < 20; d++) {
            size_t i = (size_t)(qm_rand(&rng) % m.n);
            if (m.b[i].id) qm_del_blob(&m, w, i);
        }
        cr_assert_eq(strata_txn_hlc(w, &hlc), STRATA_OK);
        for (unsigned sig = 1; sig < 16; sig++)
            for (unsigned f = 0; f < 128; f += 9) {
                qparams p;
                qp_random(&m, &p, &rng, sig, f, (int)(sig + f) % 2);
                if (p.vec && f % 2) p.k = 100 + (size_t)(qm_rand(&rng) % 400);
                strata_query *q = qp_build(&p);
                size_t ng, nw;
                strata_query_explain ex;
                int rc = strata_query_run(w, q, got, p.cap, &ng, &ex);
                if (p.lin && !m.b[p.anchor - 1].id) {
                    cr_assert_eq(rc, STRATA_NOTFOUND);         /* the anchor was deleted */
                    strata_query_free(q);
                    continue;
                }
                cr_assert_eq(rc, STRATA_OK, "seed %llu sig %u f %u", (unsigned long long)seed, sig, f);
                qp_eval(&m, &p, hlc, want, &nw);
                char what[96];
                snprintf(what, sizeof what, "seed %llu sig %u f %u driver %d", (unsigned long long)seed, sig, f,
                         ex.driver);
                qp_assert_same(got, ng, want, nw, what);
                strata_query_free(q);
            }
        strata_abort(w);
        qm_free(&m);
    }
}

/* The knn plan (similarity alone, no filter) reads the vector table's rows
 * in place (strata_vec_table_topk); small rows are inline B-tree values at
 * any address. With the scalar kernels (plain float loads) a row must not be
 * read at an unaligned address (UBSan: "load of misaligned address"; run
 * with UBSAN_OPTIONS=halt_on_error=1 to make it fatal). Answers equal the
 * brute force for every metric. */
Test(query_review, knn_scalar_kernels) {
    cr_assert_eq(setenv("STRATA_SIMD", "scalar", 1), 0);   /* before the first kernel use */
    static qmodel m;
    qm_build(&m, 12, 150);
    strata_txn *r;
    uint64_t hlc, rng = 4;
    cr_assert_eq(strata_begin_read(m.db, &r), STRATA_OK);
    cr_assert_eq(strata_txn_hlc(r, &hlc), STRATA_OK);
    static strata_query_result got[NRES], want[NRES];
    for (int it = 0; it < 24; it++) {
        qparams p;
        qp_random(&m, &p, &rng, 1, 0, it % 2);
        p.metric = (strata_metric)(it % 4);
        strata_query *q = qp_build(&p);
        size_t ng, nw;
        strata_query_explain ex;
        cr_assert_eq(strata_query_run(r, q, got, p.cap, &ng, &ex), STRATA_OK);
        cr_assert_eq(ex.driver, STRATA_QUERY_DRIVE_SIMILARITY);
        qp_eval(&m, &p, hlc, want, &nw);
        qp_assert_same(got, ng, want, nw, "knn scalar");
        strata_query_free(q);
    }
    strata_abort(r);
    qm_free(&m);
}

/* The fused score does not depend on the weights' scale: weights near
 * DBL_MAX (finite, so valid) must give the answer of the same weights
 * scaled down, not an empty one (their sum overflows). */
Test(query_review, huge_weights) {
    static qmodel m;
    qm_build(&m, 14, 150);
    strata_txn *r;
    uint64_t rng = 6;
    cr_assert_eq(strata_begin_read(m.db, &r), STRATA_OK);
    static strata_query_result a[NRES], b[NRES];
    for (int it = 0; it < 24; it++) {
        qparams p;
        qp_random(&m, &p, &rng, 2 | 8 | (unsigned)(qm_rand(&rng) % 16), 0, it % 2);
        p.c = it % 4 < 2 ? 0 : 1e-300;
        for (int s = 0; s < STRATA_QUERY_NSIG; s++) p.w[s] = 1.0;
        p.cap = NRES;
        strata_query *q = qp_build(&p);
        size_t na, nb;
        cr_assert_eq(strata_query_run(r, q, a, p.cap, &na, NULL), STRATA_OK);
        for (int s = 0; s < STRATA_QUERY_NSIG; s++)
            cr_assert_eq(strata_query_set_weight(q, (strata_query_signal)s, DBL_MAX), STRATA_OK);
        cr_assert_eq(strata_query_run(r, q, b, p.cap, &nb, NULL), STRATA_OK);
        cr_assert_gt(na, 0);
        qp_assert_same(b, nb, a, na, "weights DBL_MAX vs 1");
        strata_query_free(q);
    }
    strata_abort(r);
    qm_free(&m);
}
