/* tests/query/test_embed.c - the similarity signal over the blob layer's
 * embedding layout (docs/BLOBS.md "Embeddings": index blob:embed id -> dim,
 * vectors in blob:vec:<dim>) on a store of mixed dimensions: the lookup
 * path (few candidates), the scan path (many) and the knn plan (no filter)
 * give the brute-force k nearest; an embedding of another dimension among
 * the candidates is STRATA_EINVAL unless skipped; damaged rows are
 * STRATA_ECORRUPT. */
#include <criterion/criterion.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "qmodel.h"

enum { NB = 40, N4 = 30, N3 = 4, K = 5 };

typedef struct estore {
    char       dir[64], path[96];
    strata_db *db;
    uint64_t   id[NB];
    float      v[NB][4];
} estore;

/* Blobs 0..29: dim 4; 30..33: dim 3; the rest none. Namespace "a" holds
 * blobs 0, 1, 2 and 30 (few candidates), "b" the others (many). */
static void build(estore *s) {
    snprintf(s->dir, sizeof s->dir, "/tmp/strata_qembed_XXXXXX");
    cr_assert_not_null(mkdtemp(s->dir));
    snprintf(s->path, sizeof s->path, "%s/db.strata", s->dir);
    cr_assert_eq(strata_open(s->path, STRATA_CREATE, &s->db), STRATA_OK);
    strata_txn *w;
    cr_assert_eq(strata_begin_write(s->db, &w), STRATA_OK);
    for (int i = 0; i < NB; i++) {
        strata_blob_opts o = { .ns = (i < 3 || i == 30) ? "a" : "b" };
        cr_assert_eq(strata_blob_put(w, &o, &i, sizeof i, &s->id[i]), STRATA_OK);
        for (int j = 0; j < 4; j++) s->v[i][j] = (float)((i * 5 + j * 7) % 13) - 6.0f;
        if (i < N4) cr_assert_eq(strata_blob_embed_set(w, s->id[i], s->v[i], 4), STRATA_OK);
        else if (i < N4 + N3) cr_assert_eq(strata_blob_embed_set(w, s->id[i], s->v[i], 3), STRATA_OK);
    }
    cr_assert_eq(strata_commit(w), STRATA_OK);
}

static void done(estore *s) {
    strata_close(s->db);
    unlink(s->path);
    rmdir(s->dir);
}

static strata_query *sim_query(const float *v, unsigned flags, const char *ns) {
    strata_query *q = NULL;
    cr_assert_eq(strata_query_create(&q), STRATA_OK);
    cr_assert_eq(strata_query_set_vector(q, STRATA_METRIC_L2, v, 4, K, 1.0, flags), STRATA_OK);
    if (ns) cr_assert_eq(strata_query_set_namespace(q, ns), STRATA_OK);
    return q;
}

/* The K nearest dim-4 embeddings among blobs lo..hi-1, by (distance, id),
 * against the answer: same ids in the same order, same distances. */
static void expect_nearest(const estore *s, const float *v, const strata_query_result *res, size_t n,
                           int lo, int hi) {
    int pick[NB], np = 0;
    float d[NB];
    for (int i = 0; i < NB; i++) {
        if (i < lo || i >= hi || i >= N4) continue;
        cr_assert_eq(strata_vec_distance(STRATA_METRIC_L2, v, s->v[i], 4, &d[i]), STRATA_OK);
        pick[np++] = i;
    }
    for (int a = 1; a < np; a++)     /* insertion sort by (distance, id) */
        for (int b = a; b > 0 && (d[pick[b]] < d[pick[b - 1]] ||
                                  (d[pick[b]] == d[pick[b - 1]] && pick[b] < pick[b - 1])); b--) {
            int t = pick[b]; pick[b] = pick[b - 1]; pick[b - 1] = t;
        }
    size_t want = np < K ? (size_t)np : K;
    cr_assert_eq(n, want, "the answers are the k nearest");
    for (size_t h = 0; h < want; h++) {
        cr_assert_eq(res[h].id, s->id[pick[h]], "hit %zu", h);
        cr_assert_eq(res[h].dist, d[pick[h]], "hit %zu", h);
    }
}

Test(query_embed, mixed_dimensions_on_every_path) {
    estore s;
    build(&s);
    strata_txn *r;
    cr_assert_eq(strata_begin_read(s.db, &r), STRATA_OK);
    strata_query_result res[NB];
    strata_query_explain ex;
    size_t n;
    float v[4] = { 1, -2, 0.5f, 3 };
    /* knn plan: another dimension exists in the store */
    strata_query *q = sim_query(v, 0, NULL);
    cr_assert_eq(strata_query_run(r, q, res, NB, &n, &ex), STRATA_EINVAL);
    strata_query_free(q);
    q = sim_query(v, STRATA_QUERY_VEC_SKIP_DIM, NULL);
    cr_assert_eq(strata_query_run(r, q, res, NB, &n, &ex), STRATA_OK);
    cr_assert_eq(ex.driver, STRATA_QUERY_DRIVE_SIMILARITY);
    cr_assert_eq(ex.n_sim_considered, N4);
    cr_assert_eq(n, K);
    expect_nearest(&s, v, res, n, 0, NB);
    strata_query_free(q);
    /* few candidates (lookup path): blob 30 (dim 3) is one of them */
    q = sim_query(v, 0, "a");
    cr_assert_eq(strata_query_run(r, q, res, NB, &n, &ex), STRATA_EINVAL);
    strata_query_free(q);
    q = sim_query(v, STRATA_QUERY_VEC_SKIP_DIM, "a");
    cr_assert_eq(strata_query_run(r, q, res, NB, &n, &ex), STRATA_OK);
    cr_assert_eq(n, 3);   /* blob 30 scores 0 in every signal: not an answer */
    cr_assert_eq(ex.n_sim_considered, 3);
    expect_nearest(&s, v, res, n, 0, 3);
    strata_query_free(q);
    /* many candidates (scan path): blobs 31..33 (dim 3) among them */
    q = sim_query(v, 0, "b");
    cr_assert_eq(strata_query_run(r, q, res, NB, &n, &ex), STRATA_EINVAL);
    strata_query_free(q);
    q = sim_query(v, STRATA_QUERY_VEC_SKIP_DIM, "b");
    cr_assert_eq(strata_query_run(r, q, res, NB, &n, &ex), STRATA_OK);
    cr_assert_eq(n, K);   /* only the k nearest score */
    cr_assert_eq(ex.n_sim_considered, N4 - 3);
    expect_nearest(&s, v, res, n, 3, NB);
    strata_query_free(q);
    strata_abort(r);
    done(&s);
}

Test(query_embed, no_other_dimension_among_the_candidates) {
    estore s;
    build(&s);
    strata_txn *w;
    cr_assert_eq(strata_begin_write(s.db, &w), STRATA_OK);
    for (int i = N4; i < N4 + N3; i++) cr_assert_eq(strata_blob_embed_del(w, s.id[i]), STRATA_OK);
    strata_query_result res[NB];
    strata_query_explain ex;
    size_t n;
    float v[4] = { -3, 0, 2, 1 };
    strata_query *q = sim_query(v, 0, NULL);    /* now every embedding has dim 4 */
    cr_assert_eq(strata_query_run(w, q, res, NB, &n, &ex), STRATA_OK);
    cr_assert(n == K && ex.n_sim_considered == N4);
    expect_nearest(&s, v, res, n, 0, NB);
    strata_query_free(q);
    q = sim_query(v, 0, "a");
    cr_assert_eq(strata_query_run(w, q, res, NB, &n, &ex), STRATA_OK);
    expect_nearest(&s, v, res, n, 0, 3);
    strata_query_free(q);
    q = sim_query(v, 0, "b");
    cr_assert_eq(strata_query_run(w, q, res, NB, &n, &ex), STRATA_OK);
    expect_nearest(&s, v, res, n, 3, NB);
    strata_query_free(q);
    strata_abort(w);
    done(&s);
}

static void del_key(strata_table *t, uint64_t id) {
    uint8_t k[8];
    for (int b = 0; b < 8; b++) k[b] = (uint8_t)(id >> (8 * b));
    cr_assert_eq(strata_del(t, (strata_slice){ k, 8 }), STRATA_OK);
}

Test(query_embed, damaged_rows_are_ecorrupt) {
    estore s;
    build(&s);
    strata_query_result res[NB];
    size_t n;
    float v[4] = { 0, 0, 0, 1 };
    strata_table *t;
    strata_table_spec s4 = { STRATA_KEY_U64, NULL, 4 };
    strata_query *qa = sim_query(v, STRATA_QUERY_VEC_SKIP_DIM, "a");
    strata_query *qb = sim_query(v, STRATA_QUERY_VEC_SKIP_DIM, "b");
    strata_query *qall = sim_query(v, STRATA_QUERY_VEC_SKIP_DIM, NULL);
    /* the index names dim 4, the vector is gone: lookup path */
    strata_txn *w;
    cr_assert_eq(strata_begin_write(s.db, &w), STRATA_OK);
    cr_assert_eq(strata_table_open_ex(w, "blob:vec:4", &s4, STRATA_VECTOR, &t), STRATA_OK);
    del_key(t, s.id[1]);
    cr_assert_eq(strata_query_run(w, qa, res, NB, &n, NULL), STRATA_ECORRUPT);
    strata_abort(w);
    /* a malformed index row of a candidate */
    cr_assert_eq(strata_begin_write(s.db, &w), STRATA_OK);
    cr_assert_eq(strata_table_open(w, "blob:embed", STRATA_KEY_U64, 0, &t), STRATA_OK);
    uint8_t k[8] = { (uint8_t)s.id[2] }, bad[8] = { 4 };
    cr_assert_eq(strata_put(t, (strata_slice){ k, 8 }, (strata_slice){ bad, 8 }), STRATA_OK);
    cr_assert_eq(strata_query_run(w, qa, res, NB, &n, NULL), STRATA_ECORRUPT);
    strata_abort(w);
    /* a plain table under the vector table's name: every path */
    cr_assert_eq(strata_begin_write(s.db, &w), STRATA_OK);
    cr_assert_eq(strata_table_drop(w, "blob:vec:4"), STRATA_OK);
    cr_assert_eq(strata_table_open(w, "blob:vec:4", STRATA_KEY_U64, STRATA_CREATE, &t), STRATA_OK);
    cr_assert_eq(strata_query_run(w, qa, res, NB, &n, NULL), STRATA_ECORRUPT);
    cr_assert_eq(strata_query_run(w, qb, res, NB, &n, NULL), STRATA_ECORRUPT);
    cr_assert_eq(strata_query_run(w, qall, res, NB, &n, NULL), STRATA_ECORRUPT);
    strata_abort(w);
    /* undamaged, the same queries run */
    strata_txn *r;
    cr_assert_eq(strata_begin_read(s.db, &r), STRATA_OK);
    cr_assert_eq(strata_query_run(r, qa, res, NB, &n, NULL), STRATA_OK);
    cr_assert_eq(strata_query_run(r, qb, res, NB, &n, NULL), STRATA_OK);
    cr_assert_eq(strata_query_run(r, qall, res, NB, &n, NULL), STRATA_OK);
    strata_abort(r);
    strata_query_free(qa);
    strata_query_free(qb);
    strata_query_free(qall);
    done(&s);
}
