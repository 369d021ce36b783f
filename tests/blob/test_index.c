/* tests/blob/test_index.c - tags, namespaces, the time index and
 * embeddings with similarity search, before and after reopen. */
#include <criterion/criterion.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "bt_util.h"

static uint64_t put_small(strata_txn *w, const char *ns, uint64_t seed) {
    uint8_t buf[3000];
    uint64_t id;
    fill_random(buf, sizeof buf, seed);
    strata_blob_opts o = { .ns = ns, .content_type = "text/plain" };
    cr_assert_eq(strata_blob_put(w, &o, buf, sizeof buf, &id), STRATA_OK);
    return id;
}

static int tag_count(void *ctx, strata_slice tag) {
    (void)tag;
    (*(int *)ctx)++;
    return 0;
}

Test(blob_index, tags) {
    tdb t;
    tdb_open(&t);
    strata_txn *w = tw(&t);
    uint64_t a = put_small(w, "", 1), b = put_small(w, "", 2), c = put_small(w, "", 3);
    cr_assert_eq(strata_blob_tag_add(w, a, "red"), STRATA_OK);
    cr_assert_eq(strata_blob_tag_add(w, c, "red"), STRATA_OK);
    cr_assert_eq(strata_blob_tag_add(w, c, "red"), STRATA_OK);   /* idempotent */
    cr_assert_eq(strata_blob_tag_add(w, b, "blue"), STRATA_OK);
    cr_assert_eq(strata_blob_tag_add(w, c, "blue"), STRATA_OK);
    cr_assert_eq(strata_blob_tag_add(w, c, "re"), STRATA_OK);    /* a prefix of "red" */
    cr_assert_eq(strata_blob_tag_add(w, 999, "red"), STRATA_NOTFOUND);
    cr_assert_eq(strata_blob_tag_add(w, a, ""), STRATA_EINVAL);
    tcommit(w);
    tdb_reopen(&t);
    strata_txn *r = tr(&t);
    id_list l = { .n = 0 };
    cr_assert_eq(strata_blob_list_by_tag(r, "red", id_collect, &l), STRATA_OK);
    cr_assert(l.n == 2 && l.v[0] == a && l.v[1] == c);
    l.n = 0;
    cr_assert_eq(strata_blob_list_by_tag(r, "re", id_collect, &l), STRATA_OK);
    cr_assert(l.n == 1 && l.v[0] == c);
    int nt = 0;
    cr_assert_eq(strata_blob_tags_of(r, c, tag_count, &nt), STRATA_OK);
    cr_assert_eq(nt, 3);
    strata_abort(r);
    w = tw(&t);
    cr_assert_eq(strata_blob_tag_remove(w, a, "red"), STRATA_OK);
    cr_assert_eq(strata_blob_tag_remove(w, a, "red"), STRATA_NOTFOUND);
    cr_assert_eq(strata_blob_delete(w, c), STRATA_OK);
    tcommit(w);
    r = tr(&t);
    l.n = 0;
    cr_assert_eq(strata_blob_list_by_tag(r, "red", id_collect, &l), STRATA_OK);
    cr_assert_eq(l.n, 0);
    l.n = 0;
    cr_assert_eq(strata_blob_list_by_tag(r, "blue", id_collect, &l), STRATA_OK);
    cr_assert(l.n == 1 && l.v[0] == b);
    strata_abort(r);
    assert_consistent(&t);
    tdb_close(&t);
}

Test(blob_index, namespaces) {
    tdb t;
    tdb_open(&t);
    strata_txn *w = tw(&t);
    uint64_t x1 = put_small(w, "docs", 1), y1 = put_small(w, "img", 2);
    uint64_t x2 = put_small(w, "docs", 3), d = put_small(w, NULL, 4);
    uint64_t z = put_small(w, "doc", 5);
    tcommit(w);
    strata_txn *r = tr(&t);
    id_list l = { .n = 0 };
    cr_assert_eq(strata_blob_list_ns(r, "docs", id_collect, &l), STRATA_OK);
    cr_assert(l.n == 2 && l.v[0] == x1 && l.v[1] == x2);
    l.n = 0;
    cr_assert_eq(strata_blob_list_ns(r, "", id_collect, &l), STRATA_OK);
    cr_assert(l.n == 1 && l.v[0] == d);
    strata_abort(r);
    w = tw(&t);
    uint64_t n_del = 0;
    cr_assert_eq(strata_blob_delete_ns(w, "docs", &n_del), STRATA_OK);
    cr_assert_eq(n_del, 2);
    tcommit(w);
    tdb_reopen(&t);
    r = tr(&t);
    strata_blob_info info;
    cr_assert_eq(strata_blob_info_get(r, x1, &info), STRATA_NOTFOUND);
    cr_assert_eq(strata_blob_info_get(r, y1, &info), STRATA_OK);
    cr_assert_eq(strata_blob_info_get(r, z, &info), STRATA_OK);
    l.n = 0;
    cr_assert_eq(strata_blob_list_ns(r, "docs", id_collect, &l), STRATA_OK);
    cr_assert_eq(l.n, 0);
    strata_blob_stats s;
    cr_assert_eq(strata_blob_stats_get(r, &s), STRATA_OK);
    cr_assert_eq(s.n_blobs, 3);
    strata_abort(r);
    assert_consistent(&t);
    tdb_close(&t);
}

static uint64_t fake_now = 1700000000000ull;
static uint64_t fake_clock(void *ctx) { (void)ctx; return fake_now; }

Test(blob_index, time_range_in_order) {
    tdb t;
    tdb_open(&t);
    cr_assert_eq(strata_set_clock(t.db, fake_clock, NULL), STRATA_OK);
    uint64_t ids[6], hlc[6];
    for (int i = 0; i < 6; i++) {
        fake_now += 1000;
        strata_txn *w = tw(&t);
        cr_assert_eq(strata_txn_hlc(w, &hlc[i]), STRATA_OK);
        ids[i] = put_small(w, "t", (uint64_t)i);
        tcommit(w);
    }
    for (int i = 1; i < 6; i++) cr_assert_gt(hlc[i], hlc[i - 1]);
    tdb_reopen(&t);
    strata_txn *r = tr(&t);
    id_list l = { .n = 0 };
    cr_assert_eq(strata_blob_list_time(r, hlc[1], hlc[4], id_collect, &l), STRATA_OK);
    cr_assert_eq(l.n, 4);
    for (int i = 0; i < 4; i++) cr_assert_eq(l.v[i], ids[i + 1]);
    l.n = 0;
    cr_assert_eq(strata_blob_list_time(r, hlc[5] + 1, UINT64_MAX, id_collect, &l), STRATA_OK);
    cr_assert_eq(l.n, 0);
    l.n = 0;
    cr_assert_eq(strata_blob_list_time(r, 0, UINT64_MAX, id_collect, &l), STRATA_OK);
    cr_assert_eq(l.n, 6);
    strata_blob_info info;
    cr_assert_eq(strata_blob_info_get(r, ids[3], &info), STRATA_OK);
    cr_assert_eq(info.created_hlc, hlc[3]);
    cr_assert_eq(STRATA_HLC_PHYS_MS(info.created_hlc), 1700000004000ull);
    cr_assert_eq(strata_blob_list_time(r, 5, 4, id_collect, &l), STRATA_EINVAL);
    strata_abort(r);
    tdb_close(&t);
}

Test(blob_index, embeddings_exact_topk) {
    enum { N = 300, D = 16 };
    tdb t;
    tdb_open(&t);
    static float vecs[N][D];
    uint64_t ids[N];
    strata_txn *w = tw(&t);
    for (int i = 0; i < N; i++) {
        uint8_t rnd[D];
        fill_random(rnd, D, (uint64_t)i + 100);
        for (int j = 0; j < D; j++) vecs[i][j] = (float)rnd[j] / 16.0f - 8.0f;
        ids[i] = put_small(w, "e", (uint64_t)i);
        cr_assert_eq(strata_blob_embed_set(w, ids[i], vecs[i], D), STRATA_OK);
    }
    float other[3] = { 1, 2, 3 }, bad[D] = { NAN };
    uint64_t odd = put_small(w, "e", 9999);
    cr_assert_eq(strata_blob_embed_set(w, odd, other, 3), STRATA_OK);    /* skipped: dim 3 */
    cr_assert_eq(strata_blob_embed_set(w, odd, bad, D), STRATA_EINVAL);
    cr_assert_eq(strata_blob_embed_set(w, 424242, other, 3), STRATA_NOTFOUND);
    cr_assert_eq(strata_blob_delete(w, ids[7]), STRATA_OK);              /* drops its vector */
    tcommit(w);
    tdb_reopen(&t);
    strata_txn *r = tr(&t);
    const float *q = vecs[7];
    strata_hit hits[10];
    size_t n = 0;
    cr_assert_eq(strata_blob_similar(r, STRATA_METRIC_L2, q, D, 10, hits, &n), STRATA_OK);
    cr_assert_eq(n, 10);
    /* brute force over the survivors */
    for (size_t h = 0; h < n; h++) {
        int rank = 0;
        for (int i = 0; i < N; i++) {
            if (i == 7) continue;
            float d;
            cr_assert_eq(strata_vec_distance(STRATA_METRIC_L2, q, vecs[i], D, &d), STRATA_OK);
            if (d < hits[h].dist || (d == hits[h].dist && ids[i] < hits[h].id)) rank++;
        }
        cr_assert_eq(rank, (int)h, "hit %zu has rank %d", h, rank);
        cr_assert_neq(hits[h].id, ids[7]);
    }
    float back[D];
    size_t dim;
    cr_assert_eq(strata_blob_embed_get(r, ids[3], back, D, &dim), STRATA_OK);
    cr_assert(dim == D && memcmp(back, vecs[3], sizeof back) == 0);
    cr_assert_eq(strata_blob_embed_get(r, ids[3], back, 2, &dim), STRATA_EINVAL);
    cr_assert_eq(dim, D);
    cr_assert_eq(strata_blob_similar(r, STRATA_METRIC_L2, other, 3, 5, hits, &n), STRATA_OK);
    cr_assert(n == 1 && hits[0].id == odd);
    strata_abort(r);
    w = tw(&t);
    cr_assert_eq(strata_blob_embed_del(w, odd), STRATA_OK);
    cr_assert_eq(strata_blob_embed_del(w, odd), STRATA_NOTFOUND);
    tcommit(w);
    assert_consistent(&t);
    tdb_close(&t);
}
