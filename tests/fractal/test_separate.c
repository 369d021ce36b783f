/* tests/fractal/test_separate.c - separation splits (fractal/split.c): a leaf
 * at or below max_leaf that holds two separate groups (a new region's vectors
 * routed into an old region's leaf) is split into them, with and without raw
 * vectors, and its codes are then anchored inside each group; a leaf holding
 * one group is not, even when its new vectors keep landing far from its
 * centroid (points arriving in order along a line: the cascade's trigger
 * fires, the 2-means test says "one group"); nearby groups that overlap stay
 * together. Invariants are checked after each case. */
#include <criterion/criterion.h>
#include <stdlib.h>
#include <string.h>

#include "fractal_int.h"
#include "ft_util.h"

static tdb g;
static void setup(void) { tdb_open(&g); }
static void teardown(void) { tdb_close(&g); }
TestSuite(fractal_separate, .init = setup, .fini = teardown);

enum { DIM = 16, NA = 120, NB = 60 };

/* NA points around 0, then NB points around `gap` in every coordinate
 * (sigma 1), into an index with max_leaf 256 (so no split for size) whose
 * codebooks train on the first 100. */
static strata_fractal *two_groups(strata_txn *x, float gap, uint32_t flags, float **data_out)
{
    uint64_t s = 77;
    float *data = malloc((NA + NB) * DIM * sizeof *data);
    cr_assert_not_null(data);
    for (size_t i = 0; i < NA + NB; i++)
        for (size_t j = 0; j < DIM; j++)
            data[i * DIM + j] = (i < NA ? 0.0f : gap) + (float)ft_gauss(&s);
    strata_fractal_config c = ft_config(DIM, STRATA_METRIC_L2, 4, 256, 16, 8, 6, 8, flags);
    c.train_size = 100;
    strata_fractal *f = NULL;
    cr_assert_eq(strata_fractal_create(x, "s", &c, &f), STRATA_OK);
    for (size_t i = 0; i < NA + NB; i++)
        cr_assert_eq(strata_fractal_add(f, i, data + i * DIM, DIM, i), STRATA_OK, "i=%zu", i);
    *data_out = data;
    return f;
}

static void separates(uint32_t flags)
{
    strata_txn *x = tw(&g);
    float *data;
    strata_fractal *f = two_groups(x, 30.0f, flags, &data);
    strata_fractal_info info;
    cr_assert_eq(strata_fractal_info_get(f, &info), STRATA_OK);
    cr_assert_eq(info.codebook_gen, 1);
    cr_assert_geq(info.n_leaves, 2, "180 vectors of two groups 30 apart in one leaf");
    /* each group's vectors in leaves of their own: no leaf holds both */
    for (uint64_t a = 0; a < NA; a += 7)
        for (uint64_t b = NA; b < NA + NB; b += 5) {
            uint32_t la, lb;
            uint8_t w;
            uint64_t ts;
            cr_assert_eq(frac_assign_lookup(f, a, &la, &w, &ts), STRATA_OK);
            cr_assert_eq(frac_assign_lookup(f, b, &lb, &w, &ts), STRATA_OK);
            cr_assert_neq(la, lb, "ids %llu and %llu share leaf %u", (unsigned long long)a,
                          (unsigned long long)b, la);
        }
    cr_assert_gt(f->sep_splits, 0);
    /* PQ only: the 10 nearest of a query at B's centre are B's */
    float q[DIM];
    for (size_t j = 0; j < DIM; j++) q[j] = 30.0f;
    strata_fractal_params p = { .beam = 8, .n_probe = 8 };
    strata_hit h[10];
    size_t got;
    cr_assert_eq(strata_fractal_search(f, q, DIM, 10, &p, h, &got), STRATA_OK);
    cr_assert_eq(got, 10);
    for (size_t i = 0; i < got; i++) cr_assert_geq(h[i].id, NA, "hit %zu is from group A", i);
    strata_fractal_close(f);
    ft_commit_checked(&g, x, "s");
    free(data);
}
Test(fractal_separate, separate_groups_in_one_leaf_split_raw) { separates(STRATA_FRACTAL_KEEP_RAW); }
Test(fractal_separate, separate_groups_in_one_leaf_split_no_raw) { separates(0); }

/* Groups 1 sigma apart overlap: one leaf, as before separation existed. */
Test(fractal_separate, overlapping_groups_stay_together)
{
    strata_txn *x = tw(&g);
    float *data;
    strata_fractal *f = two_groups(x, 1.0f, STRATA_FRACTAL_KEEP_RAW, &data);
    strata_fractal_info info;
    cr_assert_eq(strata_fractal_info_get(f, &info), STRATA_OK);
    cr_assert_eq(info.n_leaves, 1);
    cr_assert_eq(f->sep_splits, 0);
    strata_fractal_close(f);
    cr_assert_eq(ft_check(x, "s"), STRATA_OK);
    strata_abort(x);
    free(data);
}

/* One group arriving in order along a line (uniform on a segment, small
 * noise): every cascade's buffer lies at the growing end, beyond twice the
 * leaf's spread, so the check runs again and again, and each time the
 * 2-means test sees a unimodal cloud (a 1-d uniform halves as well one level
 * down). One leaf at the end. */
Test(fractal_separate, one_group_arriving_along_a_line_is_not_split)
{
    const size_t n = 240;
    uint64_t s = 5;
    float *data = malloc(n * DIM * sizeof *data);
    for (size_t i = 0; i < n; i++)
        for (size_t j = 0; j < DIM; j++)
            data[i * DIM + j] = (j == 0 ? (float)i * 0.5f : 0.0f) + 0.05f * (float)ft_gauss(&s);
    strata_txn *x = tw(&g);
    strata_fractal_config c = ft_config(DIM, STRATA_METRIC_L2, 4, 256, 16, 8, 6, 8,
                                        STRATA_FRACTAL_KEEP_RAW);
    c.train_size = 48;
    strata_fractal *f = NULL;
    cr_assert_eq(strata_fractal_create(x, "l", &c, &f), STRATA_OK);
    for (size_t i = 0; i < n; i++)
        cr_assert_eq(strata_fractal_add(f, i, data + i * DIM, DIM, i), STRATA_OK);
    cr_assert_gt(f->sep_tests, 10, "the far-buffer trigger fired %llu times",
                 (unsigned long long)f->sep_tests);
    cr_assert_eq(f->sep_splits, 0);
    strata_fractal_info info;
    cr_assert_eq(strata_fractal_info_get(f, &info), STRATA_OK);
    cr_assert_eq(info.n_leaves, 1, "a line split into %u leaves", info.n_leaves);
    strata_fractal_close(f);
    cr_assert_eq(ft_check(x, "l"), STRATA_OK);
    strata_abort(x);
    free(data);
}

/* A leaf split can add more than one child to its parent (a half separated
 * again; a merged leaf above max_leaf split twice), and one internal 2-means
 * of max_fanout + k children can leave a side above max_fanout: the internal
 * split repeats, on both sides, until no node is above it. Built directly: a
 * root with 12+ leaf children, then max_fanout lowered to 2 and the root's
 * split run (the old single pass left nodes of 3 to 6 children). */
Test(fractal_separate, internal_split_repeats_until_within_max_fanout)
{
    enum { N = 400, D = 8 };
    uint64_t s = 9;
    float *data = malloc(N * D * sizeof *data);
    for (size_t i = 0; i < N * D; i++) data[i] = (float)(ft_gauss(&s) * 10);
    strata_txn *x = tw(&g);
    strata_fractal_config c = ft_config(D, STRATA_METRIC_L2, 4, 24, 8, 100, 16, 2, STRATA_FRACTAL_KEEP_RAW);
    strata_fractal *f = NULL;
    cr_assert_eq(strata_fractal_create(x, "fan", &c, &f), STRATA_OK);
    for (size_t i = 0; i < N; i++) cr_assert_eq(strata_fractal_add(f, i, data + i * D, D, i), STRATA_OK);
    frac_node *root = frac_node_at(f, f->cfg.root);
    cr_assert(root && !root->leaf);
    cr_assert_geq(root->n_child, 12, "%u leaves under the root", root->n_child);
    f->cfg.max_fanout = 2;
    cr_assert_eq(frac_split_internal(f, root), STRATA_OK);
    for (uint32_t k = 0; k < f->n_slots; k++) {
        const frac_node *n = frac_node_at(f, k);
        if (!n || n->leaf) continue;
        int capped_root = n->id == f->cfg.root && (uint32_t)n->level + 1 >= f->cfg.max_depth;
        cr_assert(capped_root || n->n_child <= 2, "node %u (level %u) has %u children", n->id,
                  (unsigned)n->level, n->n_child);
    }
    cr_assert_eq(frac_flush(f), STRATA_OK);   /* records as the API's calls write them */
    strata_fractal_close(f);
    cr_assert_eq(ft_check(x, "fan"), STRATA_OK);
    strata_abort(x);
    free(data);
}

/* The cascade's far-buffer mark compares the buffer's spread and the posting
 * members' about one centroid, the leaf's after the cascade (as before the
 * posting spread came from the sums). Without raw vectors, buffered vectors
 * far outside the codebooks' scale decode near the anchor, so the centroid
 * moves back towards the posting members when they are encoded; measuring
 * the posting members about the centroid before the cascade (pulled towards
 * the buffer) and the buffer about the one after missed the mark. Here a leaf
 * of 2 posting members near 0 takes 16 buffered vectors 30 away per
 * coordinate: the check must run. */
Test(fractal_separate, far_buffer_into_a_thin_list_without_raw_is_marked)
{
    enum { NA2 = 40, NB2 = 16 };
    uint64_t s = 31;
    float v[DIM];
    strata_txn *x = tw(&g);
    strata_fractal_config c = ft_config(DIM, STRATA_METRIC_L2, 4, 256, 0, 8, 6, NB2, 0);
    strata_fractal *f = NULL;
    cr_assert_eq(strata_fractal_create(x, "t", &c, &f), STRATA_OK);
    for (uint64_t i = 0; i < NA2; i++) {
        for (size_t j = 0; j < DIM; j++) v[j] = (float)ft_gauss(&s);
        cr_assert_eq(strata_fractal_add(f, i, v, DIM, i), STRATA_OK);
    }
    cr_assert_eq(strata_fractal_train(f, 0), STRATA_OK);
    for (uint64_t i = 2; i < NA2; i++) cr_assert_eq(strata_fractal_delete(f, i), STRATA_OK);
    frac_node *leaf = frac_node_at(f, f->cfg.root);
    cr_assert(leaf && leaf->leaf && leaf->n_codes == 2 && leaf->n_buf == 0, "one leaf of 2 codes");
    uint64_t tests0 = f->sep_tests;
    for (uint64_t i = 0; i < NB2; i++) {
        for (size_t j = 0; j < DIM; j++) v[j] = 30.0f + (float)ft_gauss(&s);
        cr_assert_eq(strata_fractal_add(f, 1000 + i, v, DIM, 1000 + i), STRATA_OK);
    }
    cr_assert_gt(f->sep_tests, tests0, "16 vectors 30 away cascaded into 2: not marked");
    strata_fractal_close(f);
    cr_assert_eq(ft_check(x, "t"), STRATA_OK);
    strata_abort(x);
}
