/* tests/fractal/test_sibling.c - placement and leaf choice under drift
 * (fractal/split.c, search.c): at a leaf split, members nearer to a sibling
 * leaf than to their half move into it, so fewer vectors sit outside their
 * nearest leaf; an insert's routing keeps a beam per level, so it lands in
 * its nearest leaf; the search ranks leaves by an estimate of the distance to
 * their nearest members from centroid and spread, so one probe finds the
 * leaf of the nearest vector where the nearer centroid is the wrong one; the
 * per-node sum of squared norms behind the spread is exact, stored and
 * checked. */
#include <criterion/criterion.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "db.h"
#include "fractal_int.h"
#include "ft_util.h"

static tdb g;
static void setup(void) { tdb_open(&g); }
static void teardown(void) { tdb_close(&g); }
TestSuite(fractal_sibling, .init = setup, .fini = teardown);

enum { DIM = 128, NC = 40, PER = 150, N = NC * PER, NQ = 60, K = 10 };

/* NC clusters of PER points (centres uniform in [0, 40]^DIM, sigma 0.5,
 * 1, 2 or 4 by cluster), stored cluster after cluster (the drift order),
 * then NQ queries from NQ / 3 clusters that are never inserted. */
static float *drift_set(void)
{
    uint64_t s = 5;
    size_t nc = NC + NQ / 3;
    float *c = malloc(nc * DIM * sizeof *c), *x = malloc((size_t)(N + NQ) * DIM * sizeof *x);
    cr_assert(c && x);
    for (size_t i = 0; i < nc * DIM; i++) c[i] = (float)(ft_unit(&s) * 40);
    for (size_t i = 0; i < (size_t)N + NQ; i++) {
        size_t k = i < N ? i / PER : NC + (i - N) % (NQ / 3);
        float sig = 0.5f * (float)(1u << (k % 4));
        for (size_t j = 0; j < DIM; j++) x[i * DIM + j] = c[k * DIM + j] + sig * (float)ft_gauss(&s);
    }
    free(c);
    return x;
}

/* An empty index for drift_set's vectors (max_leaf 64, codebooks from the
 * first tenth). */
static strata_fractal *create(strata_txn *x, const char *name)
{
    return ft_create(x, name, ft_config(DIM, STRATA_METRIC_L2, 32, 64, 8, 16, 6, 8,
                                        STRATA_FRACTAL_KEEP_RAW), N / 10);
}

static strata_fractal *build(strata_txn *x, const char *name, const float *data)
{
    strata_fractal *f = create(x, name);
    for (size_t i = 0; i < N; i++)
        cr_assert_eq(strata_fractal_add(f, i, data + i * DIM, DIM, i), STRATA_OK, "i=%zu", i);
    return f;
}

/* Is vector i outside its nearest leaf by centroid (every leaf compared)? */
static int outside(strata_fractal *f, const float *data, size_t i)
{
    uint32_t at, best = FRAC_NONE;
    uint8_t where;
    uint64_t ts;
    cr_assert_eq(frac_assign_lookup(f, i, &at, &where, &ts), STRATA_OK);
    float bd = 0;
    for (uint32_t id = 0; id < f->n_slots; id++) {
        const frac_node *n = frac_node_at(f, id);
        if (!n || !n->leaf || !n->pop) continue;
        float d = frac_route_dist(f, n, data + i * DIM);
        if (best == FRAC_NONE || d < bd) { bd = d; best = id; }
    }
    return best != at;
}

/* Share of the vectors whose leaf is not their nearest leaf by centroid. */
static double misplaced(strata_fractal *f, const float *data)
{
    size_t bad = 0;
    for (size_t i = 0; i < N; i++) bad += outside(f, data, i);
    return (double)bad / N;
}

/* Recall@10 of the far queries with every candidate of the probed leaves
 * reranked exactly: the share of true neighbours in the leaves chosen. */
static double coverage(strata_fractal *f, const float *data, uint32_t n_probe)
{
    strata_fractal_params p = { .n_probe = n_probe, .rerank = 100000 };
    strata_hit h[K];
    uint64_t gt[K];
    double r = 0;
    for (size_t q = 0; q < NQ; q++) {
        const float *qv = data + (size_t)(N + q) * DIM;
        size_t got;
        ft_exact(STRATA_METRIC_L2, qv, data, NULL, N, DIM, K, gt);
        cr_assert_eq(strata_fractal_search(f, qv, DIM, K, &p, h, &got), STRATA_OK);
        r += ft_recall(h, got, gt, K);
    }
    return r / NQ;
}

/* Without the move (a split keeping every member in one of its halves) 3.5 %
 * of these vectors sit outside their nearest leaf; with it 2.3 % (8.0 % and
 * 3.3 % when inserts descended greedily). */
Test(fractal_sibling, split_moves_members_to_nearer_siblings)
{
    float *data = drift_set();
    strata_txn *x = tw(&g);
    strata_fractal *f = build(x, "s", data);
    double mis = misplaced(f, data);
    cr_assert_lt(mis, 0.03, "%.3f of the vectors are not in their nearest leaf", mis);
    strata_fractal_close(f);
    ft_commit_checked(&g, x, "s");
    free(data);
}

/* An insert lands in its nearest leaf: routing keeps a beam of internal
 * nodes per level, because an internal node's centroid is the mean of
 * clusters far apart and the nearest one need not hold the nearest leaf.
 * Right after its insert (before later inserts move centroids), a vector
 * sits outside its nearest leaf after none of these inserts; descending to
 * the nearest child at each level, after 2.6 % of them. */
Test(fractal_sibling, inserts_land_in_their_nearest_leaf)
{
    float *data = drift_set();
    strata_txn *x = tw(&g);
    strata_fractal *f = create(x, "r");
    size_t bad = 0, deep = 0;
    for (size_t i = 0; i < N; i++) {
        cr_assert_eq(strata_fractal_add(f, i, data + i * DIM, DIM, i), STRATA_OK, "i=%zu", i);
        const frac_node *r = frac_node_at(f, f->cfg.root);
        if (!r || r->level < 2) continue;   /* one internal level: greedy is exact */
        deep++;
        bad += outside(f, data, i);
    }
    fprintf(stderr, "inserts outside their nearest leaf: %zu of %zu\n", bad, deep);
    cr_assert_gt(deep, N / 2);
    cr_assert_lt((double)bad / (double)deep, 0.01, "%zu of %zu inserts outside their nearest leaf", bad, deep);
    strata_fractal_close(f);
    ft_commit_checked(&g, x, "r");
    free(data);
}

/* Queries from clusters never inserted: their neighbours lie in the tight
 * clusters' leaves. With greedy insert routing and leaves ranked by
 * centroid distance alone, one probed leaf held 0.115 of them and two 0.503;
 * ranked by centroid and spread 0.398 and 0.638 (0.297 with greedy routing
 * and today's ranking). Since inserts route by a beam, each leaf holds its
 * own cluster and the ranking matters less here (centroid alone 0.417 and
 * 0.648, today's ranking 0.395 and 0.615); the ranking's own test is
 * one_probe_finds_the_leaf_of_the_nearest_member. */
Test(fractal_sibling, far_queries_reach_their_neighbours_leaves)
{
    float *data = drift_set();
    strata_txn *x = tw(&g);
    strata_fractal *f = build(x, "s", data);
    double c1 = coverage(f, data, 1), c2 = coverage(f, data, 2);
    fprintf(stderr, "far queries' coverage: one leaf %.3f, two %.3f\n", c1, c2);
    cr_assert_geq(c1, 0.30, "one leaf: %.3f", c1);
    cr_assert_geq(c2, 0.58, "two leaves: %.3f", c2);
    strata_fractal_close(f);
    strata_abort(x);
    free(data);
}

/* Clusters A (pc vectors around ca, sigma sa) and B (around cb, sigma sb),
 * inserted A first into a new index `name` (pq_m dim / 4, max_leaf 200: the
 * first split separates them and neither splits again); two leaves. *x_out
 * gets the vectors (ids 0..2 pc - 1), the caller frees it. */
static strata_fractal *two_clusters(strata_txn *t, const char *name, uint32_t dim, size_t pc,
                                    const float *ca, const float *cb, float sa, float sb,
                                    uint64_t *s, float **x_out)
{
    float *x = malloc(2 * pc * dim * sizeof *x);
    cr_assert(x);
    for (size_t i = 0; i < 2 * pc; i++)
        for (uint32_t j = 0; j < dim; j++)
            x[i * dim + j] = (i < pc ? ca[j] : cb[j]) + (i < pc ? sa : sb) * (float)ft_gauss(s);
    strata_fractal *f = ft_create(t, name, ft_config(dim, STRATA_METRIC_L2, dim / 4, 200, 16, 16,
                                                     6, 8, STRATA_FRACTAL_KEEP_RAW), (uint32_t)pc);
    for (size_t i = 0; i < 2 * pc; i++)
        cr_assert_eq(strata_fractal_add(f, i, x + i * dim, dim, i), STRATA_OK);
    strata_fractal_info info;
    cr_assert_eq(strata_fractal_info_get(f, &info), STRATA_OK);
    cr_assert_eq(info.n_leaves, 2, "leaves: %u", info.n_leaves);
    *x_out = x;
    return f;
}

/* Two leaves, a tight cluster A (sigma 0.5) and a wide one B (sigma 3), 40
 * apart in 128 dimensions, and queries around them at distances 0 to 200
 * from their midpoint. A query's nearest member lies in A or in B, not always
 * in the leaf whose centroid is nearer: near the two, A's members are closer
 * than its centroid distance says against B's (B's members are spread far
 * from its centroid); far from them, B's nearest members are closer (a wide
 * cloud reaches out towards the query). Counted over the queries where the
 * nearer centroid is the wrong leaf, one probed leaf finds the true nearest
 * vector in 128 of 148; ranked by centroid distance alone in 7, by
 * centroid distance plus half the spread (the ranking before) in 62. */
Test(fractal_sibling, one_probe_finds_the_leaf_of_the_nearest_member)
{
    enum { PC = 120, NQR = 400 };
    uint64_t s = 11;
    float ca[DIM], cb[DIM], *x;
    for (int j = 0; j < DIM; j++) { ca[j] = (float)(ft_unit(&s) * 10); cb[j] = ca[j]; }
    cb[0] += 40;
    strata_txn *t = tw(&g);
    strata_fractal *f = two_clusters(t, "p", DIM, PC, ca, cb, 0.5f, 3.0f, &s, &x);
    size_t hard = 0, found = 0;
    strata_fractal_params p = { .n_probe = 1, .rerank = 100000 };
    for (size_t q = 0; q < NQR; q++) {
        float qv[DIM], da = 0, db = 0;
        double r = 200.0 * (double)q / NQR, off = (ft_unit(&s) - 0.5) * 16, nu = 0;
        float u[DIM];
        for (int j = 0; j < DIM; j++) { u[j] = j ? (float)ft_gauss(&s) : 0.0f; nu += (double)u[j] * u[j]; }
        for (int j = 0; j < DIM; j++) {
            qv[j] = (ca[j] + cb[j]) / 2 + (float)(r * u[j] / sqrt(nu)) + (j ? 0.0f : (float)off);
            da += (qv[j] - ca[j]) * (qv[j] - ca[j]);
            db += (qv[j] - cb[j]) * (qv[j] - cb[j]);
        }
        uint64_t gt;
        ft_exact(STRATA_METRIC_L2, qv, x, NULL, 2 * PC, DIM, 1, &gt);
        int truth_b = gt >= PC;
        if ((db < da) == truth_b) continue;   /* the nearer centroid is right */
        hard++;
        strata_hit h;
        size_t got;
        cr_assert_eq(strata_fractal_search(f, qv, DIM, 1, &p, &h, &got), STRATA_OK);
        found += got == 1 && h.id == gt;
    }
    fprintf(stderr, "queries whose nearer centroid is the wrong leaf: %zu, one probe right in %zu\n",
            hard, found);
    cr_assert_geq(hard, NQR / 10, "%zu such queries", hard);
    cr_assert_geq((double)found, 0.8 * (double)hard, "right in %zu of %zu", found, hard);
    strata_fractal_close(f);
    ft_commit_checked(&g, t, "p");
    free(x);
}

static strata_table *sums_table(strata_txn *x)
{
    strata_table *t = NULL;
    strata_table_spec spec = { .key_type = STRATA_KEY_U64 };
    cr_assert_eq(db_internal_table_open(x, "__frac:q:sums", &spec, 0, &t), STRATA_OK);
    return t;
}

/* Every node's sq is the sum of its members' |w|^2 (the check recomputes
 * it), a leaf's spread is their mean squared distance to its centroid, both
 * survive a reopen; a sums row with a wrong sq or a rounding remainder out
 * of range fails the check, one without them (format 4) fails the open; an
 * infinite sq fails the check, and a search still runs (the leaf's rank,
 * NaN from an infinite spread, is taken as the last). */
Test(fractal_sibling, sum_of_squared_norms_is_exact_and_checked)
{
    enum { D = 4 };
    strata_txn *x = tw(&g);
    strata_fractal *f = ft_create(x, "q", ft_config(D, STRATA_METRIC_L2, 2, 16, 2, 4, 6, 4, 0), 40);
    uint64_t s = 3;
    for (uint64_t i = 0; i < 200; i++) {
        float v[D];
        for (int j = 0; j < D; j++) v[j] = (float)(ft_gauss(&s) * (1 + (double)(i % 7)) + (double)(i % 3) * 20);
        cr_assert_eq(strata_fractal_add(f, i, v, D, i), STRATA_OK);
        if (i % 5 == 4) cr_assert_eq(strata_fractal_delete(f, i - 2), STRATA_OK);
    }
    strata_fractal_close(f);
    cr_assert_eq(ft_check(x, "q"), STRATA_OK);
    cr_assert_eq(strata_commit(x), STRATA_OK);
    x = tr(&g);
    cr_assert_eq(strata_fractal_open(x, "q", &f), STRATA_OK);
    uint32_t leaf_id = FRAC_NONE;
    for (uint32_t id = 0; id < f->n_slots; id++) {
        frac_node *n = frac_node_at(f, id);
        if (!n || !n->leaf || n->pop < 2) continue;
        size_t cnt;
        frac_member *mem;
        float *w;
        uint8_t *codes;
        cr_assert_eq(frac_leaf_gather(f, n, &cnt, &mem, &w, &codes), STRATA_OK);
        double sq = 0, sp = 0;
        for (size_t i = 0; i < cnt; i++)
            for (int j = 0; j < D; j++) {
                sq += (double)w[i * D + j] * w[i * D + j];
                double e = (double)w[i * D + j] - n->cent[j];
                sp += e * e;
            }
        sp /= (double)cnt;
        cr_assert_float_eq(n->sq, sq, 1e-9 * sq, "leaf %u", id);
        cr_assert_float_eq(n->spread, sp, 1e-3 * sp + 1e-3, "leaf %u: spread %f, members %f", id,
                           n->spread, sp);
        cr_assert_gt(n->spread, 0);
        leaf_id = id;
        free(mem); free(w); free(codes);
    }
    cr_assert_neq(leaf_id, FRAC_NONE);
    strata_fractal_close(f);
    strata_abort(x);
    uint8_t k[8], row[8 * (D + 2)];
    frac_le64_put(k, leaf_id);
    for (int t = 0; t < 5; t++) {   /* sq wrong, sq_lo NaN, sq_lo above an ulp, no sq, sq inf */
        x = tw(&g);
        strata_slice v;
        cr_assert_eq(strata_get(sums_table(x), (strata_slice){k, 8}, &v), STRATA_OK);
        cr_assert_eq(v.len, sizeof row);
        memcpy(row, v.data, sizeof row);
        double sq, lo;
        frac_f64_get(&sq, row + 8 * D, 1);
        lo = t == 1 ? NAN : sq * 0x1p-40;
        if (t == 0) sq = sq * 2 + 1;
        if (t == 4) sq = INFINITY;   /* an infinite spread: the leaf ranks last, nothing breaks */
        frac_f64_put(row + 8 * D, &sq, 1);
        if (t == 1 || t == 2) frac_f64_put(row + 8 * (D + 1), &lo, 1);
        size_t len = t != 3 ? sizeof row : 8 * D;
        cr_assert_eq(strata_put(sums_table(x), (strata_slice){k, 8}, (strata_slice){row, len}), STRATA_OK);
        if (t != 3) {
            cr_assert_eq(strata_fractal_check(x, "q", NULL, NULL), STRATA_ECORRUPT);
        }
        if (t == 4) {
            float q[D] = { 0 };
            strata_hit h[5];
            size_t got = 0;
            strata_fractal_params p = { .n_probe = 1 };
            cr_assert_eq(strata_fractal_open(x, "q", &f), STRATA_OK);
            cr_assert_eq(strata_fractal_search(f, q, D, 5, &p, h, &got), STRATA_OK);
            cr_assert_gt(got, 0);
            strata_fractal_close(f);
        } else if (t == 3) {
            cr_assert_eq(strata_fractal_open(x, "q", &f), STRATA_ECORRUPT);
        }
        strata_abort(x);
    }
}

/* Without raw vectors a buffered member's contribution to the sums becomes
 * its decoded code at the cascade (-w, +code). A vector far outside the
 * codebooks' scale cascaded into a leaf that keeps its anchor decodes to a
 * code near that anchor, so the subtraction leaves a small remainder of
 * large sums and sq: their f64 rounding must not stay behind (the check's
 * tolerance is relative to the members present). At 3e5 this broke sq
 * (before it was added to with compensation), at 3e9 the sums. Fewer than
 * SEP_MIN of them: no separation split recomputes the leaf. */
Test(fractal_sibling, sq_exact_after_cascading_huge_vectors)
{
    enum { D = 8 };
    strata_txn *x = tw(&g);
    strata_fractal *f = ft_create(x, "h", ft_config(D, STRATA_METRIC_L2, 2, 32, 0, 4, 3, 4, 0), 64);
    uint64_t s = 11, id = 0;
    for (; id < 200; id++) {   /* small vectors: the codebooks' scale */
        float v[D];
        for (int j = 0; j < D; j++) v[j] = (float)(ft_gauss(&s) + (id % 4) * 5);
        cr_assert_eq(strata_fractal_add(f, id, v, D, id), STRATA_OK);
    }
    uint64_t first = id;
    for (int k = 0; k < 5; k++, id++) {   /* huge ones, into one leaf with codes */
        float v[D];
        for (int j = 0; j < D; j++) v[j] = (float)(3e9 + 1e7 * ft_gauss(&s));
        cr_assert_eq(strata_fractal_add(f, id, v, D, id), STRATA_OK);
        uint32_t at;
        uint8_t where;
        uint64_t ts;
        cr_assert_eq(frac_assign_lookup(f, first, &at, &where, &ts), STRATA_OK);
        if (where == WHERE_POST) break;
    }
    strata_fractal_close(f);
    ft_commit_checked(&g, x, "h");
}

/* The same at a retraining (without raw vectors each posting member's
 * contribution changes from its old decoded code to its new one): a member
 * whose old code was large and whose new code, from codebooks trained
 * without it, is small leaves a leaf of near-zero vectors with the rounding
 * of its sums and sq (at 30 it broke sq, at 3e6 the sums). */
Test(fractal_sibling, sq_exact_after_retraining_away_a_large_code)
{
    enum { D = 4, NA = 30, NB = 7 };
    strata_txn *x = tw(&g);
    strata_fractal *f = ft_create(x, "t", ft_config(D, STRATA_METRIC_L2, 2, 64, 0, 4, 3, 1, 0), 0);
    uint64_t s = 5;
    for (uint64_t id = 0; id < NA + NB; id++) {   /* tiny ones, then a few large */
        float v[D];
        for (int j = 0; j < D; j++)
            v[j] = id < NA ? (float)(1e-3 * ft_gauss(&s)) : (float)(3e6 + 1e5 * ft_gauss(&s));
        cr_assert_eq(strata_fractal_add(f, id, v, D, id), STRATA_OK);
    }
    cr_assert_eq(strata_fractal_train(f, 0), STRATA_OK);   /* codewords for both */
    for (uint64_t id = NA; id + 1 < NA + NB; id++) cr_assert_eq(strata_fractal_delete(f, id), STRATA_OK);
    cr_assert_eq(ft_check(x, "t"), STRATA_OK);
    cr_assert_eq(strata_fractal_train(f, 10), STRATA_OK);   /* a sample without the large one */
    strata_fractal_close(f);
    ft_commit_checked(&g, x, "t");
}

/* A large member's |w|^2 can absorb a small member's entirely (1e12 + 1e-6
 * rounds to 1e12), so removing it leaves sq exactly 0 while a member remains
 * with a nonzero norm: that too is a cancellation (the sums do not show it
 * when the two members use different dimensions). */
Test(fractal_sibling, sq_zero_after_removing_a_member_that_absorbed_the_rest)
{
    enum { D = 2 };
    strata_txn *x = tw(&g);
    strata_fractal *f = ft_create(x, "z", ft_config(D, STRATA_METRIC_L2, 1, 16, 0, 4, 3, 4, 0), 0);
    const float small[D] = { 0, 1e-3f }, large[D] = { 1e6f, 0 };
    cr_assert_eq(strata_fractal_add(f, 1, small, D, 1), STRATA_OK);
    cr_assert_eq(strata_fractal_add(f, 2, large, D, 2), STRATA_OK);
    cr_assert_eq(strata_fractal_delete(f, 2), STRATA_OK);
    strata_fractal_close(f);
    ft_commit_checked(&g, x, "z");
}

/* A leaf's sq falls far below its past values in steps each too small for
 * the delete's cancellation test (1e12 -> 3e9 -> 3e5 -> 30, about 300x
 * each): the f64 rounding of the 1e12 must not stay in the 30, also with a
 * commit and a reopen between the large value and the fall (what sq's
 * rounding left out must survive the sums row). */
static void gradual_fall(const char *name, int reopen)
{
    enum { D = 4, NT = 30 };
    strata_txn *x = tw(&g);
    /* no codebooks: every member buffered, no cascade */
    strata_fractal *f = ft_create(x, name, ft_config(D, STRATA_METRIC_L2, 2, 128, 0, 4, 3, 4, 0), 0);
    uint64_t s = 7, id = 0;
    const double scale[] = { 0.5, 50, 5000 };   /* |w|^2 about 1, 1e4, 1e8 */
    for (int t = 0; t < 3; t++)
        for (int i = 0; i < NT; i++, id++) {
            float v[D];
            for (int j = 0; j < D; j++) v[j] = (float)(scale[t] * (1 + 0.3 * ft_unit(&s)));
            cr_assert_eq(strata_fractal_add(f, id, v, D, id), STRATA_OK);
        }
    const float huge[D] = { 5.3e5f, 4.9e5f, 5.1e5f, 4.7e5f };   /* |w|^2 about 1e12 */
    cr_assert_eq(strata_fractal_add(f, id, huge, D, id), STRATA_OK);
    if (reopen) {
        strata_fractal_close(f);
        cr_assert_eq(strata_commit(x), STRATA_OK);
        tdb_reopen(&g);
        x = tw(&g);
        cr_assert_eq(strata_fractal_open(x, name, &f), STRATA_OK);
    }
    cr_assert_eq(strata_fractal_delete(f, id), STRATA_OK);
    for (uint64_t k = 3 * NT; k-- > NT;) cr_assert_eq(strata_fractal_delete(f, k), STRATA_OK);
    strata_fractal_close(f);
    ft_commit_checked(&g, x, name);
}

Test(fractal_sibling, sq_exact_after_a_gradual_fall) { gradual_fall("g", 0); }
Test(fractal_sibling, sq_exact_after_a_gradual_fall_across_a_reopen) { gradual_fall("r", 1); }

/* A node whose centroid row holds a NaN (damage the open does not look at)
 * has no routing distance: the beam takes it as the farthest, like the
 * search's leaf ranking. Kept in its sorted place it would stop every
 * nearer node offered after it from moving ahead of it, and an insert
 * would go to the first child offered before it, not its nearest leaf. */
Test(fractal_sibling, route_passes_a_nan_centroid)
{
    enum { D = 8, NP = 400 };
    float *data = ft_mixture(NP, D, 12, 0.5f, 5, NULL);
    strata_txn *x = tw(&g);
    strata_fractal *f = ft_create(x, "nan", ft_config(D, STRATA_METRIC_L2, 4, 24, 4, 64, 6, 8,
                                                      STRATA_FRACTAL_KEEP_RAW), 0);
    for (size_t i = 0; i < NP; i++) cr_assert_eq(strata_fractal_add(f, i, data + i * D, D, i), STRATA_OK);
    const frac_node *root = frac_node_at(f, f->cfg.root);
    cr_assert(root && !root->leaf && root->level == 1 && root->n_child >= 3,
              "one internal level of 3+ leaves");
    uint32_t bad = root->child[1], target = root->child[root->n_child - 1];
    float q[D];
    memcpy(q, frac_node_at(f, target)->cent, sizeof q);
    cr_assert_eq(frac_route(f, q), frac_node_at(f, target));
    strata_fractal_close(f);
    cr_assert_eq(strata_commit(x), STRATA_OK);

    x = tw(&g);
    strata_table *t = NULL;
    strata_table_spec spec = { .key_type = STRATA_KEY_U64 };
    cr_assert_eq(db_internal_table_open(x, "__frac:nan:cent", &spec, 0, &t), STRATA_OK);
    uint8_t k[8], row[4 * D];
    strata_slice v;
    frac_le64_put(k, bad);
    cr_assert_eq(strata_get(t, (strata_slice){k, 8}, &v), STRATA_OK);
    cr_assert_eq(v.len, sizeof row);
    memcpy(row, v.data, sizeof row);
    float nan_f = NAN;
    memcpy(row, &nan_f, 4);   /* coordinate 0, f32 little-endian on the hosts tested */
    cr_assert_eq(strata_put(t, (strata_slice){k, 8}, (strata_slice){row, sizeof row}), STRATA_OK);
    cr_assert_eq(strata_fractal_open(x, "nan", &f), STRATA_OK);
    cr_assert(isnan(frac_node_at(f, bad)->cent[0]));
    const frac_node *got = frac_route(f, q);
    cr_assert(got && got->leaf);
    cr_assert_eq(got->id, target, "routed to leaf %u, not %u (the NaN is %u)", got->id, target, bad);
    strata_fractal_close(f);
    strata_abort(x);
    free(data);
}

/* Leaf ranking at large magnitudes: two clusters of 16-d vectors with
 * coordinates in the billions (spread ~1e20, squared centroid distances
 * 1e20 to 1e22, all finite in f32). The rank's D * s must not overflow f32
 * (above 3.4e38 it is infinite, the rank -inf or NaN, and every leaf ranked
 * last alike): one probed leaf is the query's own cluster's. */
Test(fractal_sibling, leaf_rank_at_large_magnitudes)
{
    enum { D = 16, PC = 120 };
    uint64_t s = 3;
    float ca[D], cb[D], *x;
    for (int j = 0; j < D; j++) { ca[j] = 0; cb[j] = 0; }
    cb[0] = 1e11f;
    strata_txn *t = tw(&g);
    strata_fractal *f = two_clusters(t, "big", D, PC, ca, cb, 3e9f, 3e9f, &s, &x);
    strata_fractal_params p = { .n_probe = 1, .rerank = 1000 };
    for (int side = 0; side < 2; side++) {
        float q[D];
        memcpy(q, side ? cb : ca, sizeof q);
        q[1] += 3e10f;   /* D ~ 1e21 to its own cluster, D * s ~ 1e41 */
        strata_hit h[5];
        size_t got = 0;
        cr_assert_eq(strata_fractal_search(f, q, D, 5, &p, h, &got), STRATA_OK);
        cr_assert_eq(got, 5);
        for (size_t i = 0; i < got; i++)
            cr_assert_eq(h[i].id >= PC, side, "query at cluster %c: hit %zu is id %llu", "AB"[side], i,
                         (unsigned long long)h[i].id);
    }
    strata_fractal_close(f);
    ft_commit_checked(&g, t, "big");
    free(x);
}
