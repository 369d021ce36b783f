/* tests/blob/test_lineage.c - lineage edges: direct parents and children
 * with context, BFS ancestors/descendants with depth limits, cycles,
 * relation filters, shortest paths, unknown blobs, and edge removal when a
 * blob is deleted; before and after reopen. */
#include <criterion/criterion.h>
#include <stdlib.h>
#include <string.h>

#include "bt_util.h"

typedef struct seen { uint64_t id[64]; uint32_t depth[64]; size_t n; } seen;

static int on_node(void *ctx, uint64_t id, uint32_t depth) {
    seen *s = ctx;
    cr_assert_lt(s->n, 64);
    for (size_t i = 0; i < s->n; i++) cr_assert_neq(s->id[i], id, "id %llu twice", (unsigned long long)id);
    s->id[s->n] = id;
    s->depth[s->n++] = depth;
    return 0;
}

typedef struct edges { strata_blob_edge e[16]; char ctx[16][256]; size_t n; } edges;

static int on_edge(void *ctx, const strata_blob_edge *e) {
    edges *l = ctx;
    cr_assert_lt(l->n, 16);
    l->e[l->n] = *e;
    memcpy(l->ctx[l->n], e->context.data, e->context.len);
    l->ctx[l->n][e->context.len] = 0;
    l->n++;
    return 0;
}

/* b[1] <- b[2] <- b[3] <- b[4] (derived_from chain), b[5] derived from b[2],
 * b[6] supports b[4]. */
static void build(tdb *t, uint64_t b[8]) {
    strata_txn *w = tw(t);
    for (int i = 1; i < 8; i++) {
        uint8_t x[100];
        fill_random(x, sizeof x, (uint64_t)i);
        cr_assert_eq(strata_blob_put(w, NULL, x, sizeof x, &b[i]), STRATA_OK);
    }
    cr_assert_eq(strata_blob_link(w, b[2], b[1], STRATA_BLOB_DERIVED_FROM, "v2 of v1"), STRATA_OK);
    cr_assert_eq(strata_blob_link(w, b[3], b[2], STRATA_BLOB_DERIVED_FROM, NULL), STRATA_OK);
    cr_assert_eq(strata_blob_link(w, b[4], b[3], STRATA_BLOB_DERIVED_FROM, "edit"), STRATA_OK);
    cr_assert_eq(strata_blob_link(w, b[5], b[2], STRATA_BLOB_DERIVED_FROM, "fork"), STRATA_OK);
    cr_assert_eq(strata_blob_link(w, b[6], b[4], STRATA_BLOB_SUPPORTS, "evidence"), STRATA_OK);
    tcommit(w);
}

Test(blob_lineage, direct_edges_with_context) {
    tdb t;
    uint64_t b[8];
    tdb_open(&t);
    build(&t, b);
    tdb_reopen(&t);
    strata_txn *r = tr(&t);
    edges l = { .n = 0 };
    cr_assert_eq(strata_blob_edges(r, b[2], STRATA_BLOB_PARENTS, 0, on_edge, &l), STRATA_OK);
    cr_assert(l.n == 1 && l.e[0].from == b[2] && l.e[0].to == b[1]);
    cr_assert_eq(l.e[0].rel, STRATA_BLOB_DERIVED_FROM);
    cr_assert_str_eq(l.ctx[0], "v2 of v1");
    l.n = 0;
    cr_assert_eq(strata_blob_edges(r, b[2], STRATA_BLOB_CHILDREN, 0, on_edge, &l), STRATA_OK);
    cr_assert(l.n == 2 && l.e[0].from == b[3] && l.e[1].from == b[5] && l.e[1].to == b[2]);
    cr_assert_str_eq(l.ctx[1], "fork");
    l.n = 0;
    cr_assert_eq(strata_blob_edges(r, b[4], STRATA_BLOB_BOTH, 0, on_edge, &l), STRATA_OK);
    cr_assert_eq(l.n, 2);
    l.n = 0;
    cr_assert_eq(strata_blob_edges(r, b[4], STRATA_BLOB_BOTH, STRATA_BLOB_REL_MASK(STRATA_BLOB_SUPPORTS),
                                   on_edge, &l), STRATA_OK);
    cr_assert(l.n == 1 && l.e[0].from == b[6] && l.e[0].rel == STRATA_BLOB_SUPPORTS);
    cr_assert_str_eq(l.ctx[0], "evidence");
    strata_abort(r);
    tdb_close(&t);
}

Test(blob_lineage, bfs_depth_limits_and_cycles) {
    tdb t;
    uint64_t b[8];
    tdb_open(&t);
    build(&t, b);
    strata_txn *r = tr(&t);
    seen s = { .n = 0 };
    cr_assert_eq(strata_blob_traverse(r, b[4], STRATA_BLOB_PARENTS, 0, 2, on_node, &s), STRATA_OK);
    cr_assert(s.n == 2 && s.id[0] == b[3] && s.depth[0] == 1 && s.id[1] == b[2] && s.depth[1] == 2);
    s.n = 0;
    cr_assert_eq(strata_blob_traverse(r, b[4], STRATA_BLOB_PARENTS, 0, 10, on_node, &s), STRATA_OK);
    cr_assert(s.n == 3 && s.id[2] == b[1] && s.depth[2] == 3);
    s.n = 0;
    cr_assert_eq(strata_blob_traverse(r, b[1], STRATA_BLOB_CHILDREN, 0, 10, on_node, &s), STRATA_OK);
    cr_assert_eq(s.n, 5);   /* 2; 3, 5; 4; 6 */
    cr_assert(s.id[0] == b[2] && s.depth[1] == 2 && s.depth[2] == 2 && s.id[3] == b[4] && s.id[4] == b[6]);
    s.n = 0;
    cr_assert_eq(strata_blob_traverse(r, b[1], STRATA_BLOB_CHILDREN,
                                      STRATA_BLOB_REL_MASK(STRATA_BLOB_DERIVED_FROM), 10, on_node, &s), STRATA_OK);
    cr_assert_eq(s.n, 4);   /* the supports edge is filtered out */
    strata_abort(r);
    /* close a cycle: b[1] supersedes b[4] */
    strata_txn *w = tw(&t);
    cr_assert_eq(strata_blob_link(w, b[1], b[4], STRATA_BLOB_SUPERSEDES, "loop"), STRATA_OK);
    tcommit(w);
    tdb_reopen(&t);
    r = tr(&t);
    s.n = 0;
    cr_assert_eq(strata_blob_traverse(r, b[4], STRATA_BLOB_PARENTS, 0, 100, on_node, &s), STRATA_OK);
    cr_assert_eq(s.n, 3);   /* 3, 2, 1 - and not 4 again */
    s.n = 0;
    cr_assert_eq(strata_blob_traverse(r, b[7], STRATA_BLOB_BOTH, 0, 100, on_node, &s), STRATA_OK);
    cr_assert_eq(s.n, 0);   /* isolated */
    s.n = 0;
    cr_assert_eq(strata_blob_traverse(r, b[3], STRATA_BLOB_BOTH, 0, 100, on_node, &s), STRATA_OK);
    cr_assert_eq(s.n, 5);   /* everything connected but itself and b[7] */
    strata_abort(r);
    tdb_close(&t);
}

Test(blob_lineage, shortest_path) {
    tdb t;
    uint64_t b[8], path[16];
    size_t n = 0;
    tdb_open(&t);
    build(&t, b);
    strata_txn *r = tr(&t);
    cr_assert_eq(strata_blob_path(r, b[4], b[1], STRATA_BLOB_PARENTS, 0, 10, path, 16, &n), STRATA_OK);
    cr_assert(n == 4 && path[0] == b[4] && path[1] == b[3] && path[2] == b[2] && path[3] == b[1]);
    cr_assert_eq(strata_blob_path(r, b[4], b[1], STRATA_BLOB_PARENTS, 0, 2, path, 16, &n), STRATA_NOTFOUND);
    cr_assert_eq(strata_blob_path(r, b[1], b[4], STRATA_BLOB_PARENTS, 0, 10, path, 16, &n), STRATA_NOTFOUND);
    cr_assert_eq(strata_blob_path(r, b[6], b[5], STRATA_BLOB_BOTH, 0, 10, path, 16, &n), STRATA_OK);
    cr_assert(n == 5 && path[0] == b[6] && path[1] == b[4] && path[2] == b[3] && path[3] == b[2] && path[4] == b[5]);
    cr_assert_eq(strata_blob_path(r, b[5], b[5], STRATA_BLOB_BOTH, 0, 1, path, 2, &n), STRATA_OK);
    cr_assert(n == 1 && path[0] == b[5]);
    cr_assert_eq(strata_blob_path(r, b[6], b[5], STRATA_BLOB_BOTH, 0, 10, path, 4, &n), STRATA_EINVAL);
    cr_assert_eq(strata_blob_path(r, b[6], 777, STRATA_BLOB_BOTH, 0, 10, path, 16, &n), STRATA_NOTFOUND);
    strata_abort(r);
    /* a shortcut makes the path shorter */
    strata_txn *w = tw(&t);
    cr_assert_eq(strata_blob_link(w, b[4], b[1], STRATA_BLOB_SIMILAR_TO, NULL), STRATA_OK);
    tcommit(w);
    r = tr(&t);
    cr_assert_eq(strata_blob_path(r, b[4], b[1], STRATA_BLOB_PARENTS, 0, 10, path, 16, &n), STRATA_OK);
    cr_assert_eq(n, 2);
    cr_assert_eq(strata_blob_path(r, b[4], b[1], STRATA_BLOB_PARENTS,
                                  STRATA_BLOB_REL_MASK(STRATA_BLOB_DERIVED_FROM), 10, path, 16, &n), STRATA_OK);
    cr_assert_eq(n, 4);
    strata_abort(r);
    tdb_close(&t);
}

Test(blob_lineage, delete_removes_edges_both_ways) {
    tdb t;
    uint64_t b[8];
    tdb_open(&t);
    build(&t, b);
    strata_txn *w = tw(&t);
    cr_assert_eq(strata_blob_delete(w, b[2]), STRATA_OK);
    edges l = { .n = 0 };
    cr_assert_eq(strata_blob_edges(w, b[1], STRATA_BLOB_CHILDREN, 0, on_edge, &l), STRATA_OK);
    cr_assert_eq(l.n, 0);
    cr_assert_eq(strata_blob_edges(w, b[3], STRATA_BLOB_PARENTS, 0, on_edge, &l), STRATA_OK);
    cr_assert_eq(l.n, 0);
    cr_assert_eq(strata_blob_edges(w, b[2], STRATA_BLOB_BOTH, 0, on_edge, &l), STRATA_NOTFOUND);
    tcommit(w);
    assert_consistent(&t);
    tdb_reopen(&t);
    strata_txn *r = tr(&t);
    seen s = { .n = 0 };
    cr_assert_eq(strata_blob_traverse(r, b[4], STRATA_BLOB_PARENTS, 0, 10, on_node, &s), STRATA_OK);
    cr_assert(s.n == 1 && s.id[0] == b[3]);
    strata_table *out;
    uint64_t cnt;
    cr_assert_eq(strata_table_open(r, "blob:edges_out", STRATA_KEY_BYTES, 0, &out), STRATA_OK);
    cr_assert_eq(strata_len(out, &cnt), STRATA_OK);
    cr_assert_eq(cnt, 2);   /* 4->3 and 6->4 remain */
    strata_abort(r);
    w = tw(&t);
    cr_assert_eq(strata_blob_unlink(w, b[6], b[4], STRATA_BLOB_SUPPORTS), STRATA_OK);
    cr_assert_eq(strata_blob_unlink(w, b[6], b[4], STRATA_BLOB_SUPPORTS), STRATA_NOTFOUND);
    tcommit(w);
    assert_consistent(&t);
    tdb_close(&t);
}

Test(blob_lineage, bad_edges_rejected) {
    tdb t;
    uint64_t b[8];
    char longctx[300];
    memset(longctx, 'x', sizeof longctx - 1);
    longctx[sizeof longctx - 1] = 0;
    tdb_open(&t);
    build(&t, b);
    strata_txn *w = tw(&t);
    cr_assert_eq(strata_blob_link(w, b[1], 9999, STRATA_BLOB_SUPPORTS, NULL), STRATA_NOTFOUND);
    cr_assert_eq(strata_blob_link(w, 9999, b[1], STRATA_BLOB_SUPPORTS, NULL), STRATA_NOTFOUND);
    cr_assert_eq(strata_blob_link(w, b[1], b[1], STRATA_BLOB_SUPPORTS, NULL), STRATA_EINVAL);
    cr_assert_eq(strata_blob_link(w, b[1], b[2], (strata_blob_rel)0, NULL), STRATA_EINVAL);
    cr_assert_eq(strata_blob_link(w, b[1], b[2], (strata_blob_rel)6, NULL), STRATA_EINVAL);
    cr_assert_eq(strata_blob_link(w, b[1], b[2], STRATA_BLOB_CONTRADICTS, longctx), STRATA_EINVAL);
    longctx[255] = 0;
    cr_assert_eq(strata_blob_link(w, b[1], b[2], STRATA_BLOB_CONTRADICTS, longctx), STRATA_OK);
    seen s = { .n = 0 };
    cr_assert_eq(strata_blob_traverse(w, b[1], STRATA_BLOB_PARENTS, 0, 0, on_node, &s), STRATA_EINVAL);
    cr_assert_eq(strata_blob_traverse(w, 9999, STRATA_BLOB_PARENTS, 0, 3, on_node, &s), STRATA_NOTFOUND);
    tcommit(w);
    assert_consistent(&t);
    tdb_close(&t);
}
