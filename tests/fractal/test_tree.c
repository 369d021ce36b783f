/* tests/fractal/test_tree.c - structure of the fractal tree: create/open and
 * config checks, leaf splits, internal splits with a balanced depth, the
 * max_depth bound, buffers and the cascade, deletes with merges and collapses,
 * upserts of buffered and encoded vectors, removals without raw vectors, and
 * every config knob having an effect. Invariants are checked after each step. */
#include <criterion/criterion.h>
#include <stdlib.h>
#include <string.h>

#include "ft_util.h"

static tdb g;
static void setup(void) { tdb_open(&g); }
static void teardown(void) { tdb_close(&g); }
TestSuite(fractal_tree, .init = setup, .fini = teardown);

static strata_fractal *make(strata_txn *x, const strata_fractal_config *c)
{
    strata_fractal *f = NULL;
    cr_assert_eq(strata_fractal_create(x, "t", c, &f), STRATA_OK);
    return f;
}

static void add_range(strata_fractal *f, const float *data, size_t dim, size_t lo, size_t hi)
{
    for (size_t i = lo; i < hi; i++)
        cr_assert_eq(strata_fractal_add(f, i, data + i * dim, dim, i), STRATA_OK, "i=%zu", i);
}

/* The documented defaults (include/strata.h), buffer_cap 8 among them: the
 * search scans buffered vectors exactly, so a small buffer keeps it fast;
 * max_leaf 512: a leaf holds a whole cluster of a few hundred vectors, so
 * 8 probed leaves cover more of a query's neighbours (docs/FRACTAL.md). */
Test(fractal_tree, config_defaults)
{
    strata_fractal_config c;
    strata_fractal_config_default(&c, 128, STRATA_METRIC_L2);
    cr_assert_eq(c.dim, 128);
    cr_assert_eq(c.pq_m, 32);
    cr_assert_eq(c.max_leaf, 512);
    cr_assert_eq(c.min_leaf, 64);
    cr_assert_eq(c.max_fanout, 32);
    cr_assert_eq(c.max_depth, 8);
    cr_assert_eq(c.buffer_cap, 8);
    cr_assert_eq(c.train_size, 0);
    cr_assert_eq(c.train_iters, 10);
    cr_assert_eq(c.flags, STRATA_FRACTAL_KEEP_RAW);
    cr_assert_eq(c.seed, 1);
    cr_assert_eq(c.retrain_growth, 0);
    strata_fractal_config_default(&c, 6, STRATA_METRIC_IP);
    cr_assert_eq(c.pq_m, 3);
    strata_fractal_config_default(&c, 7, STRATA_METRIC_COSINE);
    cr_assert_eq(c.pq_m, 7);
    strata_txn *x = tw(&g);
    strata_fractal_config_default(&c, 16, STRATA_METRIC_L2);
    cr_assert_eq(strata_fractal_create(x, "d", &c, NULL), STRATA_OK);   /* the defaults are valid */
    strata_abort(x);
}

Test(fractal_tree, create_open_and_bad_config)
{
    strata_txn *x = tw(&g);
    strata_fractal_config c = ft_config(8, STRATA_METRIC_L2, 4, 16, 2, 4, 4, 4, STRATA_FRACTAL_KEEP_RAW);
    strata_fractal_config bad = c;
    bad.pq_m = 3;   /* 8 % 3 != 0 */
    cr_assert_eq(strata_fractal_create(x, "t", &bad, NULL), STRATA_EINVAL);
    bad = c; bad.metric = STRATA_METRIC_L1;
    cr_assert_eq(strata_fractal_create(x, "t", &bad, NULL), STRATA_EINVAL);
    bad = c; bad.min_leaf = 8;   /* not < max_leaf / 2 */
    cr_assert_eq(strata_fractal_create(x, "t", &bad, NULL), STRATA_EINVAL);
    bad = c; bad.max_depth = 1;
    cr_assert_eq(strata_fractal_create(x, "t", &bad, NULL), STRATA_EINVAL);
    bad = c; bad.flags = 0x80;
    cr_assert_eq(strata_fractal_create(x, "t", &bad, NULL), STRATA_EINVAL);
    bad = c; bad.retrain_growth = 100001;
    cr_assert_eq(strata_fractal_create(x, "t", &bad, NULL), STRATA_EINVAL);
    cr_assert_eq(strata_fractal_create(x, "a:b", &c, NULL), STRATA_EINVAL);
    cr_assert_eq(strata_fractal_create(x, "", &c, NULL), STRATA_EINVAL);
    cr_assert_eq(strata_fractal_create(x, "t", &c, NULL), STRATA_OK);
    cr_assert_eq(strata_fractal_create(x, "t", &c, NULL), STRATA_EEXIST);
    cr_assert_eq(strata_commit(x), STRATA_OK);
    tdb_reopen(&g);
    x = tr(&g);
    strata_fractal *f = NULL;
    cr_assert_eq(strata_fractal_open(x, "nope", &f), STRATA_NOTFOUND);
    cr_assert_eq(strata_fractal_open(x, "t", &f), STRATA_OK);
    strata_fractal_info info;
    cr_assert_eq(strata_fractal_info_get(f, &info), STRATA_OK);
    cr_assert_eq(info.config.max_leaf, 16);
    cr_assert_eq(info.config.max_fanout, 4);
    cr_assert_eq(info.config.buffer_cap, 4);
    cr_assert_eq(info.n_leaves, 1);
    cr_assert_eq(info.depth, 1);
    float v[8] = {0};
    cr_assert_eq(strata_fractal_add(f, 1, v, 8, 0), STRATA_EREADONLY);   /* read txn: as strata.h says */
    strata_fractal_close(f);
    strata_abort(x);
}

Test(fractal_tree, splits_keep_leaves_small_and_depth_balanced)
{
    const size_t n = 3000, dim = 8;
    float *data = ft_mixture(n, dim, 20, 1.0f, 7, NULL);
    strata_txn *x = tw(&g);
    strata_fractal_config c = ft_config(dim, STRATA_METRIC_L2, 4, 32, 4, 4, 8, 8, STRATA_FRACTAL_KEEP_RAW);
    strata_fractal *f = make(x, &c);
    add_range(f, data, dim, 0, n);
    strata_fractal_info info;
    cr_assert_eq(strata_fractal_info_get(f, &info), STRATA_OK);
    cr_assert_eq(info.n_vectors, n);
    cr_assert_leq(info.largest_leaf, 32);
    cr_assert_geq(info.n_leaves, n / 32);
    cr_assert_geq(info.depth, 4, "fan-out 4 with ~%u leaves needs >= 4 levels", info.n_leaves);
    strata_fractal_close(f);
    cr_assert_eq(ft_check(x, "t"), STRATA_OK);   /* includes: all leaves at level 0 */
    cr_assert_eq(strata_commit(x), STRATA_OK);
    free(data);
}

Test(fractal_tree, max_depth_bounds_the_tree)
{
    const size_t n = 2000, dim = 4;
    float *data = ft_mixture(n, dim, 10, 1.0f, 8, NULL);
    strata_txn *x = tw(&g);
    strata_fractal_config c = ft_config(dim, STRATA_METRIC_L2, 2, 16, 2, 3, 3, 4, STRATA_FRACTAL_KEEP_RAW);
    strata_fractal *f = make(x, &c);
    add_range(f, data, dim, 0, n);
    strata_fractal_info info;
    cr_assert_eq(strata_fractal_info_get(f, &info), STRATA_OK);
    cr_assert_eq(info.depth, 3);
    cr_assert_leq(info.largest_leaf, 16);
    strata_fractal_close(f);
    cr_assert_eq(ft_check(x, "t"), STRATA_OK);
    strata_abort(x);
    free(data);
}

Test(fractal_tree, buffers_cascade_after_training_and_train_size_trains)
{
    const size_t n = 1200, dim = 8;
    float *data = ft_mixture(n, dim, 8, 1.0f, 9, NULL);
    strata_txn *x = tw(&g);
    strata_fractal_config c = ft_config(dim, STRATA_METRIC_L2, 4, 64, 8, 8, 6, 5, STRATA_FRACTAL_KEEP_RAW);
    c.train_size = 500;
    strata_fractal *f = make(x, &c);
    strata_fractal_info info;
    add_range(f, data, dim, 0, 499);
    cr_assert_eq(strata_fractal_info_get(f, &info), STRATA_OK);
    cr_assert_eq(info.codebook_gen, 0);
    cr_assert_eq(info.n_buffered, 499);   /* nothing encoded before codebooks */
    add_range(f, data, dim, 499, n);
    cr_assert_eq(strata_fractal_info_get(f, &info), STRATA_OK);
    cr_assert_eq(info.codebook_gen, 1);
    cr_assert_lt(info.n_buffered, (uint64_t)info.n_leaves * 5);   /* buffer_cap holds */
    cr_assert_gt(info.n_buffered, 0);
    strata_fractal_close(f);
    cr_assert_eq(ft_check(x, "t"), STRATA_OK);
    cr_assert_eq(strata_commit(x), STRATA_OK);
    free(data);
}

/* Delete everything, in a scattered order: leaves merge, nodes collapse, the
 * invariants hold after every step and the tree ends as one empty leaf. */
static void delete_all(uint32_t flags)
{
    const size_t n = 800, dim = 8;
    float *data = ft_mixture(n, dim, 12, 1.0f, 10, NULL);
    strata_txn *x = tw(&g);
    strata_fractal_config c = ft_config(dim, STRATA_METRIC_L2, 4, 24, 6, 3, 8, 4, flags);
    strata_fractal *f = make(x, &c);
    add_range(f, data, dim, 0, n);
    cr_assert_eq(strata_fractal_train(f, 0), STRATA_OK);
    strata_fractal_close(f);
    cr_assert_eq(ft_check(x, "t"), STRATA_OK);
    cr_assert_eq(strata_commit(x), STRATA_OK);
    for (size_t round = 0; round < 8; round++) {
        x = tw(&g);
        cr_assert_eq(strata_fractal_open(x, "t", &f), STRATA_OK);
        for (size_t i = round; i < n; i += 8)
            cr_assert_eq(strata_fractal_delete(f, (i * 37) % n), STRATA_OK, "i=%zu", i);
        cr_assert_eq(strata_fractal_delete(f, (round * 37) % n), STRATA_NOTFOUND);
        strata_fractal_close(f);
        cr_assert_eq(ft_check(x, "t"), STRATA_OK, "round %zu", round);
        cr_assert_eq(strata_commit(x), STRATA_OK);
    }
    x = tr(&g);
    cr_assert_eq(strata_fractal_open(x, "t", &f), STRATA_OK);
    strata_fractal_info info;
    cr_assert_eq(strata_fractal_info_get(f, &info), STRATA_OK);
    cr_assert_eq(info.n_vectors, 0);
    cr_assert_eq(info.n_leaves, 1);
    cr_assert_eq(info.n_internal, 0);
    strata_fractal_close(f);
    strata_abort(x);
    free(data);
}

Test(fractal_tree, delete_all_merges_and_collapses_raw) { delete_all(STRATA_FRACTAL_KEEP_RAW); }
/* Without raw vectors a removal subtracts the decoded code: sums stay exact. */
Test(fractal_tree, delete_all_merges_and_collapses_no_raw) { delete_all(0); }

/* Merges keep every vector reachable by search: after deleting most of one
 * region, every remaining vector is still found by an exhaustive search. */
Test(fractal_tree, merged_vectors_stay_searchable)
{
    const size_t n = 600, dim = 8;
    uint32_t *lab = malloc(n * sizeof *lab);
    float *data = ft_mixture(n, dim, 6, 0.5f, 11, lab);
    strata_txn *x = tw(&g);
    strata_fractal_config c = ft_config(dim, STRATA_METRIC_L2, 4, 20, 8, 4, 8, 4, STRATA_FRACTAL_KEEP_RAW);
    strata_fractal *f = make(x, &c);
    add_range(f, data, dim, 0, n);
    cr_assert_eq(strata_fractal_train(f, 0), STRATA_OK);
    uint8_t *live = malloc(n);
    for (size_t i = 0; i < n; i++) {
        live[i] = !(lab[i] < 3 && i % 5 != 0);
        if (!live[i]) cr_assert_eq(strata_fractal_delete(f, i), STRATA_OK);
    }
    strata_fractal_params p = { .beam = 1000, .n_probe = 1000, .rerank = 1 };
    strata_hit h[1];
    size_t got;
    for (size_t i = 0; i < n; i++) {
        if (!live[i]) continue;
        cr_assert_eq(strata_fractal_search(f, data + i * dim, dim, 1, &p, h, &got), STRATA_OK);
        cr_assert_eq(got, 1);
        cr_assert_eq(h[0].dist, 0.0f, "id %zu not found (got %llu)", i, (unsigned long long)h[0].id);
    }
    strata_fractal_close(f);
    cr_assert_eq(ft_check(x, "t"), STRATA_OK);
    strata_abort(x);
    free(data); free(lab); free(live);
}

/* An upsert of a buffered vector and of an encoded vector replaces it: one
 * hit, at the new position, and the old one is gone for good. */
Test(fractal_tree, upsert_replaces_buffered_and_encoded)
{
    const size_t n = 400, dim = 8;
    float *data = ft_mixture(n, dim, 4, 1.0f, 12, NULL);
    strata_txn *x = tw(&g);
    strata_fractal_config c = ft_config(dim, STRATA_METRIC_L2, 4, 64, 4, 8, 6, 8, STRATA_FRACTAL_KEEP_RAW);
    strata_fractal *f = make(x, &c);
    add_range(f, data, dim, 0, n);
    cr_assert_eq(strata_fractal_train(f, 0), STRATA_OK);
    float far[8] = {100, 100, 100, 100, 100, 100, 100, 100};
    cr_assert_eq(strata_fractal_add(f, 5000, data, dim, 1), STRATA_OK);   /* buffered */
    cr_assert_eq(strata_fractal_add(f, 5000, far, dim, 2), STRATA_OK);    /* upsert   */
    cr_assert_eq(strata_fractal_add(f, 3, far, dim, 3), STRATA_OK);       /* was encoded */
    strata_fractal_params p = { .beam = 100, .n_probe = 100 };
    strata_hit h[4];
    size_t got;
    cr_assert_eq(strata_fractal_search(f, far, dim, 4, &p, h, &got), STRATA_OK);
    cr_assert_eq(got, 4);
    cr_assert(h[0].id == 3 || h[0].id == 5000);
    cr_assert(h[1].id == 3 || h[1].id == 5000);
    cr_assert_neq(h[0].id, h[1].id);
    cr_assert_eq(strata_fractal_search(f, data, dim, 2, &p, h, &got), STRATA_OK);
    cr_assert_eq(h[0].id, 0);   /* not the stale copy of 5000 */
    cr_assert_neq(h[1].id, 5000);
    uint64_t ts;
    float v[8];
    cr_assert_eq(strata_fractal_get(f, 5000, v, dim, &ts), STRATA_OK);
    cr_assert_eq(ts, 2);
    cr_assert_eq(memcmp(v, far, sizeof far), 0);
    strata_fractal_close(f);
    cr_assert_eq(ft_check(x, "t"), STRATA_OK);
    cr_assert_eq(strata_commit(x), STRATA_OK);
    free(data);
}

/* min_leaf 0 never merges; a positive min_leaf does. */
Test(fractal_tree, min_leaf_knob_controls_merging)
{
    const size_t n = 500, dim = 4;
    float *data = ft_mixture(n, dim, 5, 1.0f, 13, NULL);
    for (int with_merge = 0; with_merge < 2; with_merge++) {
        strata_txn *x = tw(&g);
        strata_fractal_config c = ft_config(dim, STRATA_METRIC_L2, 2, 20, with_merge ? 6 : 0, 8, 6, 4,
                                            STRATA_FRACTAL_KEEP_RAW);
        strata_fractal *f = make(x, &c);
        add_range(f, data, dim, 0, n);
        strata_fractal_info a, b;
        cr_assert_eq(strata_fractal_info_get(f, &a), STRATA_OK);
        for (size_t i = 0; i < n; i++)
            if (i % 10) cr_assert_eq(strata_fractal_delete(f, i), STRATA_OK);
        cr_assert_eq(strata_fractal_info_get(f, &b), STRATA_OK);
        if (with_merge) cr_assert_lt(b.n_leaves, a.n_leaves);
        else cr_assert_eq(b.n_leaves, a.n_leaves);
        strata_fractal_close(f);
        cr_assert_eq(ft_check(x, "t"), STRATA_OK);
        strata_abort(x);
    }
    free(data);
}

/* Count catalog tables whose name starts with ctx's prefix. */
typedef struct prefix_count { const char *prefix; int n; } prefix_count;
static int count_prefix(void *ctx, const strata_table_info *info)
{
    prefix_count *p = ctx;
    if (!strncmp(info->name, p->prefix, strlen(p->prefix))) p->n++;
    return 0;
}

static int frac_tables(strata_txn *x, const char *prefix)
{
    prefix_count pc = { prefix, 0 };
    cr_assert_eq(strata_table_list(x, 1, count_prefix, &pc), STRATA_OK);
    return pc.n;
}

Test(fractal_tree, abort_leaves_index_unchanged_and_drop)
{
    const size_t dim = 4;
    float *data = ft_mixture(100, dim, 3, 1.0f, 14, NULL);
    strata_txn *x = tw(&g);
    strata_fractal_config c = ft_config(dim, STRATA_METRIC_L2, 2, 16, 2, 4, 6, 4, STRATA_FRACTAL_KEEP_RAW);
    strata_fractal *f = make(x, &c);
    add_range(f, data, dim, 0, 50);
    strata_fractal_close(f);
    cr_assert_eq(strata_commit(x), STRATA_OK);
    x = tw(&g);
    cr_assert_eq(strata_fractal_open(x, "t", &f), STRATA_OK);
    add_range(f, data, dim, 50, 100);
    strata_fractal_close(f);
    strata_abort(x);
    x = tw(&g);
    cr_assert_eq(strata_fractal_open(x, "t", &f), STRATA_OK);
    strata_fractal_info info;
    cr_assert_eq(strata_fractal_info_get(f, &info), STRATA_OK);
    cr_assert_eq(info.n_vectors, 50);
    strata_fractal_close(f);
    cr_assert_eq(ft_check(x, "t"), STRATA_OK);
    cr_assert_eq(frac_tables(x, "__frac:t:"), 10);
    cr_assert_eq(strata_fractal_drop(x, "t"), STRATA_OK);
    cr_assert_eq(frac_tables(x, "__frac:t:"), 0);   /* tables gone, not just emptied */
    cr_assert_eq(strata_fractal_open(x, "t", &f), STRATA_NOTFOUND);
    cr_assert_eq(strata_fractal_drop(x, "t"), STRATA_NOTFOUND);
    cr_assert_eq(strata_commit(x), STRATA_OK);
    x = tw(&g);   /* still gone after the commit; the name is free again */
    cr_assert_eq(frac_tables(x, "__frac:t:"), 0);
    cr_assert_eq(strata_fractal_open(x, "t", &f), STRATA_NOTFOUND);
    strata_fractal_config c2 = ft_config(8, STRATA_METRIC_IP, 4, 16, 2, 4, 6, 4, 0);
    cr_assert_eq(strata_fractal_create(x, "t", &c2, &f), STRATA_OK);
    cr_assert_eq(strata_fractal_info_get(f, &info), STRATA_OK);
    cr_assert(info.n_vectors == 0 && info.config.dim == 8 && info.n_leaves == 1);
    strata_fractal_close(f);
    cr_assert_eq(strata_commit(x), STRATA_OK);
    x = tw(&g);
    cr_assert_eq(strata_fractal_open(x, "t", &f), STRATA_OK);
    strata_fractal_close(f);
    cr_assert_eq(ft_check(x, "t"), STRATA_OK);
    cr_assert_eq(frac_tables(x, "__frac:t:"), 10);
    strata_abort(x);
    free(data);
}
