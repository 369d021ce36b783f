/* tests/query/test_plan.c - the plan: which filter drives candidate
 * generation on a store built to make the choice clear, the explain counts,
 * the shortcut plans (k nearest, newest first), ranking without any blob
 * content (the chunk tables dropped), and the explain text. */
#include <criterion/criterion.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "qmodel.h"

enum { N = 300 };

typedef struct store { qmodel m; uint64_t id[N]; } store;

static uint64_t fake_clock(void *ctx) { return *(const uint64_t *)ctx; }

/* N blobs, one per transaction, 1 s apart: ns "small" for ids 10..14, "big"
 * otherwise; tag "common" on all, "rare" on 3; embeddings (i, 1, 0, 0) / N;
 * a chain of derived_from edges i -> i-1. */
static void build(store *s, uint64_t *clk) {
    qmodel *m = &s->m;
    memset(s, 0, sizeof *s);
    strcpy(m->dir, "/tmp/strata_qplan_XXXXXX");
    cr_assert_not_null(mkdtemp(m->dir));
    snprintf(m->path, sizeof m->path, "%s/db.strata", m->dir);
    cr_assert_eq(strata_open(m->path, STRATA_CREATE, &m->db), STRATA_OK);
    *clk = 1700000000000ull;
    cr_assert_eq(strata_set_clock(m->db, fake_clock, clk), STRATA_OK);
    for (int i = 0; i < N; i++) {
        strata_txn *w;
        strata_blob_opts o;
        memset(&o, 0, sizeof o);
        o.ns = i >= 10 && i < 15 ? "small" : "big";
        *clk += 1000;
        cr_assert_eq(strata_begin_write(m->db, &w), STRATA_OK);
        cr_assert_eq(strata_txn_set_durability(w, STRATA_DURABILITY_NONE), STRATA_OK);
        cr_assert_eq(strata_blob_put(w, &o, "content", 7, &s->id[i]), STRATA_OK);
        cr_assert_eq(strata_blob_tag_add(w, s->id[i], "common"), STRATA_OK);
        if (i % 100 == 7) cr_assert_eq(strata_blob_tag_add(w, s->id[i], "rare"), STRATA_OK);
        float v[QM_DIM] = { (float)i / N, 1, 0, 0 };
        cr_assert_eq(strata_blob_embed_set(w, s->id[i], v, QM_DIM), STRATA_OK);
        if (i) cr_assert_eq(strata_blob_link(w, s->id[i], s->id[i - 1], STRATA_BLOB_DERIVED_FROM, NULL), STRATA_OK);
        cr_assert_eq(strata_commit(w), STRATA_OK);
    }
}

static void done(store *s) { qm_free(&s->m); }

static strata_query *recency_query(void) {
    strata_query *q;
    cr_assert_eq(strata_query_create(&q), STRATA_OK);
    cr_assert_eq(strata_query_set_recency(q, 0, 60000), STRATA_OK);
    return q;
}

static void run(strata_txn *r, strata_query *q, strata_query_result *res, size_t cap, size_t *n,
                strata_query_explain *ex) {
    cr_assert_eq(strata_query_run(r, q, res, cap, n, ex), STRATA_OK);
    strata_query_free(q);
}

Test(query_plan, most_selective_filter_drives) {
    store s;
    uint64_t clk;
    build(&s, &clk);
    strata_txn *r;
    strata_query_result res[N];
    strata_query_explain ex;
    size_t n;
    cr_assert_eq(strata_begin_read(s.m.db, &r), STRATA_OK);

    strata_query *q = recency_query();   /* ns "small" (5) beats tag "common" (300) */
    cr_assert_eq(strata_query_set_namespace(q, "small"), STRATA_OK);
    cr_assert_eq(strata_query_require_tag(q, "common"), STRATA_OK);
    run(r, q, res, N, &n, &ex);
    cr_assert_eq(ex.driver, STRATA_QUERY_DRIVE_NAMESPACE);
    cr_assert_str_eq(ex.driver_arg, "small");
    cr_assert_eq(ex.est[STRATA_QUERY_DRIVE_NAMESPACE], 5);
    cr_assert(ex.est_capped >> STRATA_QUERY_DRIVE_TAG & 1, "the tag scan must stop early");
    cr_assert_eq(ex.est[STRATA_QUERY_DRIVE_TAG], 6);   /* stopped at cap + 1 */
    cr_assert(ex.n_generated == 5 && n == 5);
    for (size_t i = 0; i < n; i++) cr_assert_eq(res[i].id, s.id[14 - i], "newest first");

    q = recency_query();                 /* tag "rare" (3) beats ns "big" (295) */
    cr_assert_eq(strata_query_set_namespace(q, "big"), STRATA_OK);
    cr_assert_eq(strata_query_require_tag(q, "rare"), STRATA_OK);
    run(r, q, res, N, &n, &ex);
    cr_assert_eq(ex.driver, STRATA_QUERY_DRIVE_TAG);
    cr_assert_str_eq(ex.driver_arg, "rare");
    cr_assert(n == 3 && res[0].id == s.id[207] && res[2].id == s.id[7]);

    uint64_t h[N];
    for (int i = 0; i < N; i++) {
        strata_blob_info info;
        cr_assert_eq(strata_blob_info_get(r, s.id[i], &info), STRATA_OK);
        h[i] = info.created_hlc;
    }
    q = recency_query();                 /* a window of 4 blobs beats ns "big" */
    cr_assert_eq(strata_query_set_namespace(q, "big"), STRATA_OK);
    cr_assert_eq(strata_query_set_window(q, h[100], h[103]), STRATA_OK);
    run(r, q, res, N, &n, &ex);
    cr_assert_eq(ex.driver, STRATA_QUERY_DRIVE_WINDOW);
    cr_assert(n == 4 && res[0].id == s.id[103] && res[3].id == s.id[100]);

    q = recency_query();                 /* lineage radius 2 (3 blobs with the anchor) */
    cr_assert_eq(strata_query_set_anchor(q, s.id[50], STRATA_BLOB_PARENTS, 0, 2, STRATA_QUERY_LINEAGE_FILTER),
                 STRATA_OK);
    cr_assert_eq(strata_query_require_tag(q, "common"), STRATA_OK);
    run(r, q, res, N, &n, &ex);
    cr_assert_eq(ex.driver, STRATA_QUERY_DRIVE_LINEAGE);
    cr_assert(n == 3 && res[0].id == s.id[50] && res[0].hops == 0 && res[2].hops == 2);
    cr_assert_eq(res[1].signal[STRATA_QUERY_LINEAGE], 1.0 - 1.0 / 3.0);
    strata_abort(r);
    done(&s);
}

Test(query_plan, shortcuts_and_full_scan) {
    store s;
    uint64_t clk;
    build(&s, &clk);
    strata_txn *r;
    strata_query_result res[N];
    strata_query_explain ex;
    size_t n;
    cr_assert_eq(strata_begin_read(s.m.db, &r), STRATA_OK);

    strata_query *q;                     /* similarity alone: the k nearest directly */
    float v[QM_DIM] = { 0.5f, 1, 0, 0 };
    cr_assert_eq(strata_query_create(&q), STRATA_OK);
    cr_assert_eq(strata_query_set_vector(q, STRATA_METRIC_L2, v, QM_DIM, 5, 1.0, 0), STRATA_OK);
    run(r, q, res, 10, &n, &ex);
    cr_assert_eq(ex.driver, STRATA_QUERY_DRIVE_SIMILARITY);
    cr_assert(ex.n_generated == 5 && n == 5 && ex.n_sim_considered == N);
    cr_assert_eq(res[0].id, s.id[150]);   /* (150/300, 1, 0, 0) is the query itself */
    cr_assert(res[0].dist == 0 && res[0].signal[STRATA_QUERY_SIMILARITY] == 1.0);

    q = recency_query();                 /* recency alone: newest first, stops early */
    run(r, q, res, 3, &n, &ex);
    cr_assert_eq(ex.driver, STRATA_QUERY_DRIVE_RECENCY);
    cr_assert(n == 3 && ex.n_generated == 3);
    cr_assert(res[0].id == s.id[N - 1] && res[0].signal[STRATA_QUERY_RECENCY] == 1.0);
    cr_assert_eq(res[1].signal[STRATA_QUERY_RECENCY], pow(0.5, 1000.0 / 60000.0));

    q = recency_query();                 /* two signals, no filter: every blob */
    cr_assert_eq(strata_query_prefer_tag(q, "rare"), STRATA_OK);
    cr_assert_eq(strata_query_set_weight(q, STRATA_QUERY_TAGS, 3), STRATA_OK);
    run(r, q, res, 4, &n, &ex);
    cr_assert_eq(ex.driver, STRATA_QUERY_DRIVE_ALL);
    cr_assert(ex.n_generated == N && ex.n_blobs == N && n == 4);
    cr_assert(res[0].id == s.id[207] && res[0].tags_matched == 1 && res[0].rank[STRATA_QUERY_TAGS] == 1);
    cr_assert_eq(res[3].id, s.id[N - 1]);   /* 3 rare ones first, then the newest */
    strata_abort(r);
    done(&s);
}

typedef struct pick { uint64_t keep; int calls; } pick;

static int keep_one(void *ctx, strata_txn *txn, const strata_blob_info *info) {
    pick *p = ctx;
    (void)txn;
    p->calls++;
    return info->id == p->keep && info->size == 7;
}

Test(query_plan, predicate_runs_on_survivors_only) {
    store s;
    uint64_t clk;
    build(&s, &clk);
    strata_txn *r;
    strata_query_result res[N];
    strata_query_explain ex;
    size_t n;
    cr_assert_eq(strata_begin_read(s.m.db, &r), STRATA_OK);
    pick pk = { s.id[107], 0 };
    strata_query *q = recency_query();
    cr_assert_eq(strata_query_require_tag(q, "rare"), STRATA_OK);
    cr_assert_eq(strata_query_set_predicate(q, keep_one, &pk), STRATA_OK);
    run(r, q, res, N, &n, &ex);
    cr_assert_eq(pk.calls, 3, "predicate called for the 3 survivors only, got %d", pk.calls);
    cr_assert(ex.n_indexed == 3 && ex.n_filtered == 1);
    cr_assert(n == 1 && res[0].id == s.id[107]);
    strata_abort(r);
    done(&s);
}

/* Ranking reads no content: with the chunk tables gone, every query over a
 * random store still gives the brute-force answer. */
Test(query_plan, no_blob_content_is_read) {
    qmodel m;
    qm_build(&m, 21, 150);
    strata_txn *w;
    cr_assert_eq(strata_begin_write(m.db, &w), STRATA_OK);
    cr_assert_eq(strata_table_drop(w, "blob:chunks"), STRATA_OK);
    cr_assert_eq(strata_table_drop(w, "blob:chunklist"), STRATA_OK);
    uint8_t buf[1];
    cr_assert_neq(strata_blob_read_at(w, m.b[0].id ? m.b[0].id : m.b[1].id, 0, buf, 1, 0), STRATA_OK,
                  "content must be unreadable now");
    uint64_t rng = 3, hlc = 0;
    cr_assert_eq(strata_txn_hlc(w, &hlc), STRATA_OK);
    static strata_query_result got[1000], want[1000];
    for (int it = 0; it < 40; it++) {
        qparams p;
        size_t ng, nw;
        qp_random(&m, &p, &rng, 15, (unsigned)(qm_rand(&rng) % 128), it % 2);
        strata_query *q = qp_build(&p);
        cr_assert_eq(strata_query_run(w, q, got, p.cap, &ng, NULL), STRATA_OK);
        qp_eval(&m, &p, hlc, want, &nw);
        qp_assert_same(got, ng, want, nw, "without content");
        strata_query_free(q);
    }
    strata_abort(w);
    qm_free(&m);
}

Test(query_plan, explain_text) {
    store s;
    uint64_t clk;
    build(&s, &clk);
    strata_txn *r;
    strata_query_result res[3];
    strata_query_explain ex;
    size_t n;
    char buf[2048], small[16];
    cr_assert_eq(strata_begin_read(s.m.db, &r), STRATA_OK);
    strata_query *q = recency_query();
    cr_assert_eq(strata_query_set_namespace(q, "small"), STRATA_OK);
    run(r, q, res, 3, &n, &ex);
    size_t len = strata_query_explain_format(&ex, res, n, buf, sizeof buf);
    cr_assert(len > 0 && len < sizeof buf && strlen(buf) == len);
    cr_assert_not_null(strstr(buf, "namespace \"small\""), "%s", buf);
    cr_assert_not_null(strstr(buf, "#3 id"), "%s", buf);
    cr_assert_not_null(strstr(buf, "recency"), "%s", buf);
    size_t len2 = strata_query_explain_format(&ex, res, n, small, sizeof small);
    cr_assert(len2 == len && strlen(small) == sizeof small - 1 && memcmp(small, buf, sizeof small - 1) == 0);
    cr_assert_eq(strata_query_explain_format(&ex, NULL, 0, NULL, 0), strata_query_explain_format(&ex, NULL, 0, buf, sizeof buf));
    strata_abort(r);
    done(&s);
}
