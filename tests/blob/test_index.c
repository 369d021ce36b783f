/* tests/blob/test_index.c - tags, namespaces, the time index and
 * embeddings with similarity search, before and after reopen; the
 * embeddings' layout (index blob:embed + vector tables blob:vec:<dim>,
 * docs/BLOBS.md "Embeddings") and damage to it. */
#include <criterion/criterion.h>
#include <math.h>
#include <stdio.h>
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

/* ---- embeddings in vector tables (docs/BLOBS.md "Embeddings") ---- */

/* The vector table of dimension dim, which must exist as such. */
static strata_table *vtab(strata_txn *txn, uint32_t dim) {
    char name[32];
    strata_table *t;
    strata_table_spec spec = { STRATA_KEY_U64, NULL, dim };
    snprintf(name, sizeof name, "blob:vec:%u", (unsigned)dim);
    cr_assert_eq(strata_table_open_ex(txn, name, &spec, STRATA_VECTOR, &t), STRATA_OK, "%s", name);
    return t;
}

static uint64_t rows(strata_table *t) {
    uint64_t n = 99;
    cr_assert_eq(strata_len(t, &n), STRATA_OK);
    return n;
}

static strata_table *embed_index(strata_txn *txn) {
    strata_table *t;
    cr_assert_eq(strata_table_open(txn, "blob:embed", STRATA_KEY_U64, 0, &t), STRATA_OK);
    return t;
}

/* The index value of blob id: its dimension, or 0 without a row. */
static uint32_t index_dim(strata_txn *txn, uint64_t id) {
    uint8_t k[8];
    strata_slice v;
    for (int b = 0; b < 8; b++) k[b] = (uint8_t)(id >> (8 * b));
    int rc = strata_get(embed_index(txn), (strata_slice){ k, 8 }, &v);
    if (rc == STRATA_NOTFOUND) return 0;
    cr_assert_eq(rc, STRATA_OK);
    cr_assert_eq(v.len, 4, "index value is the dimension, u32 LE");
    const uint8_t *p = v.data;
    return (uint32_t)p[0] | (uint32_t)p[1] << 8 | (uint32_t)p[2] << 16 | (uint32_t)p[3] << 24;
}

static int has_row(strata_table *t, uint64_t id) {
    uint8_t k[8];
    strata_slice v;
    for (int b = 0; b < 8; b++) k[b] = (uint8_t)(id >> (8 * b));
    int rc = strata_get(t, (strata_slice){ k, 8 }, &v);
    cr_assert(rc == STRATA_OK || rc == STRATA_NOTFOUND);
    return rc == STRATA_OK;
}

typedef struct vinfo { uint32_t dims[8]; uint64_t rows[8]; size_t n; } vinfo;

static int list_vec(void *ctx, const strata_table_info *in) {
    vinfo *vi = ctx;
    if (strncmp(in->name, "blob:vec:", 9)) return 0;
    cr_assert(in->flags & STRATA_VECTOR, "%s is a vector table", in->name);
    cr_assert_eq(in->key_type, STRATA_KEY_U64);
    cr_assert_eq((unsigned long)strtoul(in->name + 9, NULL, 10), (unsigned long)in->vector_dim, "%s", in->name);
    cr_assert_lt(vi->n, 8);
    vi->dims[vi->n] = in->vector_dim;
    vi->rows[vi->n++] = in->entries;
    return 0;
}

Test(blob_index, embedding_layout_is_index_plus_vector_tables) {
    tdb t;
    tdb_open(&t);
    float v2[2] = { 1, 2 }, v3[3] = { 3, 4, 5 };
    strata_txn *w = tw(&t);
    uint64_t a = put_small(w, "", 1), b = put_small(w, "", 2), c = put_small(w, "", 3);
    cr_assert_eq(strata_blob_embed_set(w, a, v2, 2), STRATA_OK);
    cr_assert_eq(strata_blob_embed_set(w, b, v3, 3), STRATA_OK);
    cr_assert_eq(strata_blob_embed_set(w, c, v3, 3), STRATA_OK);
    tcommit(w);
    tdb_reopen(&t);
    strata_txn *r = tr(&t);
    vinfo vi = { .n = 0 };
    cr_assert_eq(strata_table_list(r, 0, list_vec, &vi), STRATA_OK);
    cr_assert(vi.n == 2 && vi.dims[0] == 2 && vi.rows[0] == 1 && vi.dims[1] == 3 && vi.rows[1] == 2);
    cr_assert_eq(rows(embed_index(r)), 3);
    cr_assert(index_dim(r, a) == 2 && index_dim(r, b) == 3 && index_dim(r, c) == 3);
    /* the vector row is the floats, nothing else */
    uint8_t k[8] = { (uint8_t)b };
    strata_slice v;
    cr_assert_eq(strata_get(vtab(r, 3), (strata_slice){ k, 8 }, &v), STRATA_OK);
    cr_assert(v.len == 12 && memcmp(v.data, v3, 12) == 0);
    strata_abort(r);
    assert_consistent(&t);
    tdb_close(&t);
}

Test(blob_index, replacing_with_another_dimension_leaves_one_row) {
    tdb t;
    tdb_open(&t);
    float v4[4] = { 1, 0, 0, 0 }, v8[8] = { 0, 1, 0, 0, 0, 0, 0, 2 }, w4[4] = { 0, 0, 7, 0 }, out[8];
    strata_hit hits[4];
    size_t n, dim;
    strata_txn *w = tw(&t);
    uint64_t a = put_small(w, "", 1), b = put_small(w, "", 2);
    cr_assert_eq(strata_blob_embed_set(w, a, v4, 4), STRATA_OK);
    cr_assert_eq(strata_blob_embed_set(w, b, v4, 4), STRATA_OK);
    tcommit(w);
    w = tw(&t);
    cr_assert_eq(strata_blob_embed_set(w, a, v8, 8), STRATA_OK);   /* 4 -> 8: the old row goes */
    cr_assert_eq(rows(vtab(w, 4)), 1);
    cr_assert(!has_row(vtab(w, 4), a) && has_row(vtab(w, 4), b));
    cr_assert_eq(rows(vtab(w, 8)), 1);
    cr_assert_eq(index_dim(w, a), 8);
    tcommit(w);
    tdb_reopen(&t);
    w = tw(&t);
    cr_assert_eq(strata_blob_embed_get(w, a, out, 8, &dim), STRATA_OK);
    cr_assert(dim == 8 && memcmp(out, v8, sizeof v8) == 0);
    cr_assert_eq(strata_blob_similar(w, STRATA_METRIC_L2, v4, 4, 4, hits, &n), STRATA_OK);
    cr_assert(n == 1 && hits[0].id == b);
    cr_assert_eq(strata_blob_similar(w, STRATA_METRIC_L2, v8, 8, 4, hits, &n), STRATA_OK);
    cr_assert(n == 1 && hits[0].id == a && hits[0].dist == 0);
    /* back to 4, then the same dimension again: replaced in place */
    cr_assert_eq(strata_blob_embed_set(w, a, v4, 4), STRATA_OK);
    cr_assert_eq(strata_blob_embed_set(w, a, w4, 4), STRATA_OK);
    cr_assert_eq(rows(vtab(w, 8)), 0);
    cr_assert_eq(rows(vtab(w, 4)), 2);
    cr_assert_eq(rows(embed_index(w)), 2);
    cr_assert_eq(index_dim(w, a), 4);
    cr_assert_eq(strata_blob_embed_get(w, a, out, 8, &dim), STRATA_OK);
    cr_assert(dim == 4 && memcmp(out, w4, sizeof w4) == 0);
    cr_assert_eq(strata_blob_similar(w, STRATA_METRIC_L2, v8, 8, 4, hits, &n), STRATA_OK);
    cr_assert_eq(n, 0);
    tcommit(w);
    assert_consistent(&t);
    tdb_close(&t);
}

Test(blob_index, similarity_after_delete) {
    enum { N = 40, D = 5 };
    tdb t;
    tdb_open(&t);
    static float vecs[N][D];
    uint64_t ids[N];
    strata_txn *w = tw(&t);
    for (int i = 0; i < N; i++) {
        for (int j = 0; j < D; j++) vecs[i][j] = (float)((i * 7 + j * 3) % 11) - 5.0f;
        ids[i] = put_small(w, "d", (uint64_t)i);
        cr_assert_eq(strata_blob_embed_set(w, ids[i], vecs[i], D), STRATA_OK);
    }
    tcommit(w);
    const float *q = vecs[4];
    strata_hit hits[N];
    size_t n;
    w = tw(&t);
    cr_assert_eq(strata_blob_delete(w, ids[4]), STRATA_OK);   /* the query's own blob */
    cr_assert_eq(strata_blob_embed_del(w, ids[9]), STRATA_OK);
    cr_assert_eq(strata_blob_embed_get(w, ids[9], NULL, 0, &n), STRATA_NOTFOUND);
    cr_assert_eq(rows(vtab(w, D)), N - 2);
    cr_assert_eq(rows(embed_index(w)), N - 2);
    tcommit(w);
    tdb_reopen(&t);
    strata_txn *r = tr(&t);
    cr_assert_eq(strata_blob_similar(r, STRATA_METRIC_L2, q, D, N, hits, &n), STRATA_OK);
    cr_assert_eq(n, N - 2);
    for (size_t h = 0; h < n; h++) {
        cr_assert(hits[h].id != ids[4] && hits[h].id != ids[9]);
        if (h) cr_assert(hits[h - 1].dist < hits[h].dist ||
                         (hits[h - 1].dist == hits[h].dist && hits[h - 1].id < hits[h].id), "order at %zu", h);
        int i = (int)(hits[h].id - ids[0]);
        float d;
        cr_assert_eq(strata_vec_distance(STRATA_METRIC_L2, q, vecs[i], D, &d), STRATA_OK);
        cr_assert_eq(d, hits[h].dist);
    }
    strata_abort(r);
    assert_consistent(&t);
    tdb_close(&t);
}

Test(blob_index, k_larger_than_the_embeddings) {
    tdb t;
    tdb_open(&t);
    float v[3][4] = { { 0, 0, 0, 3 }, { 0, 0, 0, 1 }, { 0, 0, 0, 2 } }, u[2] = { 1, 1 }, q[4] = { 0 };
    uint64_t ids[3];
    strata_hit hits[1000];
    size_t n = 0;
    strata_txn *w = tw(&t);
    for (int i = 0; i < 3; i++) {
        ids[i] = put_small(w, "", (uint64_t)i);
        cr_assert_eq(strata_blob_embed_set(w, ids[i], v[i], 4), STRATA_OK);
    }
    uint64_t other = put_small(w, "", 9);
    cr_assert_eq(strata_blob_embed_set(w, other, u, 2), STRATA_OK);   /* another dimension: not counted */
    tcommit(w);
    strata_txn *r = tr(&t);
    size_t ks[] = { 1000, 4, 3, 2, 1 };
    for (size_t j = 0; j < sizeof ks / sizeof *ks; j++) {
        cr_assert_eq(strata_blob_similar(r, STRATA_METRIC_L2, q, 4, ks[j], hits, &n), STRATA_OK, "k %zu", ks[j]);
        cr_assert_eq(n, ks[j] < 3 ? ks[j] : 3, "k %zu", ks[j]);
        cr_assert_eq(hits[0].id, ids[1]);
        cr_assert_eq(hits[0].dist, 1.0f);
        if (n > 1) cr_assert(hits[1].id == ids[2] && hits[1].dist == 4.0f);
        if (n > 2) cr_assert(hits[2].id == ids[0] && hits[2].dist == 9.0f);
    }
    cr_assert_eq(strata_blob_similar(r, STRATA_METRIC_L2, u, 2, 1000, hits, &n), STRATA_OK);
    cr_assert(n == 1 && hits[0].id == other);
    strata_abort(r);
    tdb_close(&t);
}

/* Problems strata_blob_check reports, and whether one contains `want`. */
typedef struct reports { int n; const char *want; int seen; } reports;

static void on_report(void *ctx, const char *msg) {
    reports *rp = ctx;
    rp->n++;
    if (rp->want && strstr(msg, rp->want)) rp->seen = 1;
}

static void check_reports(strata_txn *txn, const char *want) {
    reports rp = { 0, want, 0 };
    cr_assert_eq(strata_blob_check(txn, 0, on_report, &rp), STRATA_ECORRUPT, "want \"%s\"", want);
    cr_assert(rp.n > 0 && rp.seen, "no report containing \"%s\" (%d reports)", want, rp.n);
}

/* A store with blob a (dim 4) and b (dim 2) embedded, committed. */
static void two_embedded(tdb *t, uint64_t *a, uint64_t *b) {
    float v4[4] = { 1, 2, 3, 4 }, v2[2] = { 5, 6 };
    tdb_open(t);
    strata_txn *w = tw(t);
    *a = put_small(w, "", 1);
    *b = put_small(w, "", 2);
    cr_assert_eq(strata_blob_embed_set(w, *a, v4, 4), STRATA_OK);
    cr_assert_eq(strata_blob_embed_set(w, *b, v2, 2), STRATA_OK);
    tcommit(w);
}

static void put_index(strata_txn *txn, uint64_t id, const void *val, size_t len) {
    uint8_t k[8];
    for (int b = 0; b < 8; b++) k[b] = (uint8_t)(id >> (8 * b));
    cr_assert_eq(strata_put(embed_index(txn), (strata_slice){ k, 8 }, (strata_slice){ val, len }), STRATA_OK);
}

static void del_row(strata_table *tb, uint64_t id) {
    uint8_t k[8];
    for (int b = 0; b < 8; b++) k[b] = (uint8_t)(id >> (8 * b));
    cr_assert_eq(strata_del(tb, (strata_slice){ k, 8 }), STRATA_OK);
}

/* Every read and write of blob id's embedding on a damaged index row:
 * ECORRUPT, no crash, and a failed get/del/set writes nothing. */
static void all_ecorrupt(strata_txn *w, uint64_t id, size_t cap) {
    float out[8], v3[3] = { 1, 1, 1 };
    size_t dim;
    cr_assert_eq(strata_blob_embed_get(w, id, out, cap, &dim), STRATA_ECORRUPT);
    cr_assert_eq(strata_blob_embed_del(w, id), STRATA_ECORRUPT);
    cr_assert_eq(strata_blob_embed_set(w, id, v3, 3), STRATA_ECORRUPT);
}

Test(blob_index, damaged_index_rows_are_ecorrupt) {
    tdb t;
    uint64_t a, b;
    two_embedded(&t, &a, &b);
    uint8_t old_layout[16] = { 2, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0x80, 0x3f, 0, 0, 0, 0 };  /* dim 2, 1.0, 0.0 */
    uint8_t dim0[4] = { 0 }, huge[4] = { 1, 0, 1, 0 } /* 65537 */, dim8[4] = { 8, 0, 0, 0 };
    struct { const void *val; size_t len; const char *report; } d[] = {
        { old_layout, 16, "malformed embedding index row" },
        { dim0, 4, "malformed embedding index row" },
        { huge, 4, "malformed embedding index row" },
        { dim0, 3, "malformed embedding index row" },
        { dim8, 4, "blob:vec:8 is missing" },      /* names a table that does not exist */
    };
    for (size_t i = 0; i < sizeof d / sizeof *d; i++) {
        strata_txn *w = tw(&t);
        put_index(w, a, d[i].val, d[i].len);
        all_ecorrupt(w, a, 8);
        cr_assert_eq(strata_blob_delete(w, a), STRATA_ECORRUPT, "damage %zu", i);
        cr_assert_eq(strata_commit(w), STRATA_EBADTXN, "damage %zu: a half-done delete cannot commit", i);
        w = tw(&t);
        put_index(w, a, d[i].val, d[i].len);
        check_reports(w, d[i].report);
        strata_abort(w);
    }
    /* the index says 2 but the vector sits in the dimension-4 table */
    strata_txn *w = tw(&t);
    uint8_t dim2[4] = { 2, 0, 0, 0 };
    put_index(w, a, dim2, 4);
    all_ecorrupt(w, a, 8);
    check_reports(w, "embedding without its vector");
    strata_abort(w);
    /* an index row of no blob */
    w = tw(&t);
    put_index(w, 77, dim2, 4);
    check_reports(w, "embedding of an unknown blob");
    strata_abort(w);
    assert_consistent(&t);   /* every damage was aborted */
    tdb_close(&t);
}

Test(blob_index, damaged_vector_rows_are_ecorrupt) {
    tdb t;
    uint64_t a, b;
    two_embedded(&t, &a, &b);
    float out[8], q4[4] = { 1, 2, 3, 4 };
    strata_hit hits[4];
    size_t dim, n;
    /* the vector row is gone, its index row is not */
    strata_txn *w = tw(&t);
    del_row(vtab(w, 4), a);
    all_ecorrupt(w, a, 8);
    cr_assert_eq(strata_blob_similar(w, STRATA_METRIC_L2, q4, 4, 4, hits, &n), STRATA_OK);
    cr_assert_eq(n, 0);
    check_reports(w, "embedding without its vector");
    cr_assert_eq(strata_blob_delete(w, a), STRATA_ECORRUPT);
    strata_abort(w);
    /* the index row is gone, the vector row is not: an orphan vector */
    w = tw(&t);
    del_row(embed_index(w), b);
    cr_assert_eq(strata_blob_embed_get(w, b, out, 8, &dim), STRATA_NOTFOUND);
    check_reports(w, "blob:vec:2 without an index row");
    strata_abort(w);
    /* a vector row of a blob that has no embedding of that dimension */
    w = tw(&t);
    uint8_t k[8] = { (uint8_t)b };
    float z[4] = { 0 };
    cr_assert_eq(strata_put(vtab(w, 4), (strata_slice){ k, 8 }, (strata_slice){ z, 16 }), STRATA_OK);
    check_reports(w, "blob:vec:4 without an index row");
    strata_abort(w);
    assert_consistent(&t);
    tdb_close(&t);
}

Test(blob_index, vector_table_of_another_dimension) {
    tdb t;
    uint64_t a, b;
    two_embedded(&t, &a, &b);
    float v3[3] = { 1, 2, 3 }, out[8];
    strata_hit hits[4];
    size_t n, dim;
    strata_table *tb;
    /* "blob:vec:3" holding vectors of 5 floats: the name is the dimension */
    strata_txn *w = tw(&t);
    strata_table_spec s5 = { STRATA_KEY_U64, NULL, 5 };
    cr_assert_eq(strata_table_open_ex(w, "blob:vec:3", &s5, STRATA_CREATE | STRATA_VECTOR, &tb), STRATA_OK);
    cr_assert_eq(strata_blob_embed_set(w, a, v3, 3), STRATA_ECORRUPT);
    cr_assert_eq(strata_blob_similar(w, STRATA_METRIC_L2, v3, 3, 4, hits, &n), STRATA_ECORRUPT);
    cr_assert_eq(strata_blob_embed_get(w, a, out, 8, &dim), STRATA_OK);   /* a's own is untouched */
    cr_assert_eq(dim, 4);
    check_reports(w, "blob:vec:3: not a vector table of that dimension");
    strata_abort(w);
    /* a plain table under a vector table's name */
    w = tw(&t);
    cr_assert_eq(strata_table_open(w, "blob:vec:3", STRATA_KEY_U64, STRATA_CREATE, &tb), STRATA_OK);
    cr_assert_eq(strata_blob_embed_set(w, b, v3, 3), STRATA_ECORRUPT);
    cr_assert_eq(strata_blob_similar(w, STRATA_METRIC_L2, v3, 3, 4, hits, &n), STRATA_ECORRUPT);
    check_reports(w, "blob:vec:3: not a vector table of that dimension");
    strata_abort(w);
    /* an index row naming 2 while blob:vec:2 is damaged the same way */
    w = tw(&t);
    cr_assert_eq(strata_table_drop(w, "blob:vec:2"), STRATA_OK);
    cr_assert_eq(strata_table_open(w, "blob:vec:2", STRATA_KEY_U64, STRATA_CREATE, &tb), STRATA_OK);
    cr_assert_eq(strata_blob_embed_get(w, b, out, 8, &dim), STRATA_ECORRUPT);
    check_reports(w, "blob:vec:2 is not a vector table of that dimension");
    strata_abort(w);
    /* names that are no dimension */
    w = tw(&t);
    strata_table_spec s4 = { STRATA_KEY_U64, NULL, 4 };
    cr_assert_eq(strata_table_open_ex(w, "blob:vec:04", &s4, STRATA_CREATE | STRATA_VECTOR, &tb), STRATA_OK);
    check_reports(w, "blob:vec:04: not a dimension");
    strata_abort(w);
    assert_consistent(&t);
    tdb_close(&t);
}
