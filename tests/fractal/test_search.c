/* tests/fractal/test_search.c - search semantics: bad input, buffer and PQ
 * distances on one scale (cosine, IP, L2), rerank giving exact distances,
 * time windows (including new data in old subtrees), the metadata filter,
 * n_probe having an effect, searching a committed snapshot, and the k best
 * hits being exactly the first k of all (ties by smaller id). */
#include <criterion/criterion.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "ft_util.h"

static tdb g;
static void setup(void) { tdb_open(&g); }
static void teardown(void) { tdb_close(&g); }
TestSuite(fractal_search, .init = setup, .fini = teardown);

static strata_fractal *build(strata_txn *x, strata_metric m, const float *data, size_t n,
                             size_t dim, uint32_t flags, int train)
{
    strata_fractal *f = NULL;
    strata_fractal_config c;
    strata_fractal_config_default(&c, (uint32_t)dim, m);
    c.pq_m = (uint32_t)dim / 2; c.max_leaf = 48; c.min_leaf = 4; c.max_fanout = 6;
    c.buffer_cap = 8; c.flags = flags; c.train_iters = 4;
    cr_assert_eq(strata_fractal_create(x, "s", &c, &f), STRATA_OK);
    for (size_t i = 0; i < n; i++)
        cr_assert_eq(strata_fractal_add(f, i, data + i * dim, dim, 1000 + i), STRATA_OK);
    if (train) cr_assert_eq(strata_fractal_train(f, 0), STRATA_OK);
    return f;
}

Test(fractal_search, bad_input_is_rejected)
{
    const size_t dim = 8;
    float *data = ft_mixture(300, dim, 4, 1.0f, 21, NULL);
    strata_txn *x = tw(&g);
    strata_fractal *f = build(x, STRATA_METRIC_L2, data, 300, dim, 0, 0);
    strata_hit h[5];
    size_t got;
    cr_assert_eq(strata_fractal_search(f, data, dim, 5, NULL, h, &got), STRATA_EINVAL);   /* untrained */
    cr_assert_eq(strata_fractal_train(f, 0), STRATA_OK);
    cr_assert_eq(strata_fractal_search(f, data, dim, 5, NULL, h, &got), STRATA_OK);
    cr_assert_eq(strata_fractal_search(f, data, dim + 1, 5, NULL, h, &got), STRATA_EINVAL);
    cr_assert_eq(strata_fractal_search(f, data, dim, 0, NULL, h, &got), STRATA_EINVAL);
    strata_fractal_params p = { .rerank = 10 };
    cr_assert_eq(strata_fractal_search(f, data, dim, 5, &p, h, &got), STRATA_EINVAL);   /* no raw */
    p = (strata_fractal_params){ .flags = STRATA_FRACTAL_WINDOW, .ts_min = 5, .ts_max = 4 };
    cr_assert_eq(strata_fractal_search(f, data, dim, 5, &p, h, &got), STRATA_EINVAL);
    float nan_q[8] = {0, 0, 0, NAN, 0, 0, 0, 0};
    cr_assert_eq(strata_fractal_search(f, nan_q, dim, 5, NULL, h, &got), STRATA_EINVAL);
    cr_assert_eq(strata_fractal_add(f, 1, nan_q, dim, 0), STRATA_EINVAL);
    cr_assert_eq(strata_fractal_add(f, 1, data, dim - 1, 0), STRATA_EINVAL);
    cr_assert_eq(strata_fractal_get(f, 1, nan_q, dim, NULL), STRATA_EINVAL);   /* no raw kept */
    cr_assert_eq(strata_fractal_search(NULL, data, dim, 5, NULL, h, &got), STRATA_EINVAL);
    strata_fractal_close(f);
    cr_assert_eq(ft_check(x, "s"), STRATA_OK);
    strata_abort(x);
    free(data);
}

/* Vectors of very different norms; under cosine, a freshly buffered vector
 * pointing exactly at the query must rank first with distance ~0 next to
 * encoded ones, and every distance must be close to the exact 1 - cos. */
static void one_scale(strata_metric m)
{
    const size_t n = 600, dim = 16;
    float *data = ft_mixture(n + 1, dim, 6, 2.0f, 22, NULL);
    for (size_t i = 0; i < n; i++) {
        float s = (float)(1 + (i % 7) * 5);   /* norms vary by 30x */
        for (size_t j = 0; j < dim; j++) data[i * dim + j] *= s;
    }
    strata_txn *x = tw(&g);
    strata_fractal *f = build(x, m, data, n, dim, 0, 1);
    float *q = data + 17 * dim, *v = data + n * dim;
    for (size_t j = 0; j < dim; j++) v[j] = q[j] * (m == STRATA_METRIC_COSINE ? 9.0f : 1.0f);
    cr_assert_eq(strata_fractal_add(f, 99999, v, dim, 7), STRATA_OK);   /* buffered */
    strata_fractal_params p = { .beam = 64, .n_probe = 64 };
    strata_hit h[10];
    size_t got;
    cr_assert_eq(strata_fractal_search(f, q, dim, 10, &p, h, &got), STRATA_OK);
    cr_assert_eq(got, 10);
    for (size_t i = 1; i < got; i++) cr_assert_leq(h[i - 1].dist, h[i].dist);
    if (m == STRATA_METRIC_L2) {   /* exact (buffer) 0 beats every PQ estimate */
        cr_assert_eq(h[0].id, 99999);
        cr_assert_eq(h[0].dist, 0.0f);
    } else if (m == STRATA_METRIC_COSINE) {
        cr_assert(h[0].id == 99999 || h[1].id == 99999, "buffered exact match not on top");
        for (size_t i = 0; i < got; i++) {
            float exact;
            const float *row = h[i].id == 99999 ? v : data + h[i].id * dim;
            cr_assert_eq(strata_vec_distance(m, q, row, dim, &exact), STRATA_OK);
            cr_assert_leq(fabsf(h[i].dist - exact), 0.05f, "hit %zu: %g vs exact %g", i, h[i].dist, exact);
        }
    } else {   /* IP: -dot on both sides, so the largest dot wins, buffered or not */
        for (size_t i = 0; i < got; i++) {
            float exact;
            const float *row = h[i].id == 99999 ? v : data + h[i].id * dim;
            cr_assert_eq(strata_vec_distance(m, q, row, dim, &exact), STRATA_OK);
            cr_assert_leq(fabsf(h[i].dist - exact), 0.1f * fabsf(exact) + 1.0f);
        }
    }
    strata_fractal_close(f);
    cr_assert_eq(ft_check(x, "s"), STRATA_OK);
    strata_abort(x);
    free(data);
}
Test(fractal_search, cosine_buffer_and_pq_share_a_scale) { one_scale(STRATA_METRIC_COSINE); }
Test(fractal_search, l2_buffer_and_pq_share_a_scale) { one_scale(STRATA_METRIC_L2); }
Test(fractal_search, ip_buffer_and_pq_share_a_scale) { one_scale(STRATA_METRIC_IP); }

Test(fractal_search, rerank_gives_exact_distances)
{
    const size_t n = 500, dim = 8;
    float *data = ft_mixture(n, dim, 5, 1.0f, 23, NULL);
    strata_txn *x = tw(&g);
    strata_fractal *f = build(x, STRATA_METRIC_L2, data, n, dim, STRATA_FRACTAL_KEEP_RAW, 1);
    strata_fractal_params p = { .beam = 8, .n_probe = 8, .rerank = 40 };
    strata_hit h[10];
    size_t got;
    cr_assert_eq(strata_fractal_search(f, data + 3 * dim, dim, 10, &p, h, &got), STRATA_OK);
    cr_assert_eq(h[0].id, 3);
    cr_assert_eq(h[0].dist, 0.0f);
    for (size_t i = 0; i < got; i++) {
        float exact;
        cr_assert_eq(strata_vec_distance(STRATA_METRIC_L2, data + 3 * dim, data + h[i].id * dim, dim, &exact), STRATA_OK);
        cr_assert_eq(h[i].dist, exact);
        if (i) cr_assert_leq(h[i - 1].dist, h[i].dist);
    }
    strata_fractal_close(f);
    strata_abort(x);
    free(data);
}

/* The candidate set keeps exactly the k best (distance, id) offered: with
 * every leaf probed, the PQ-only hits for k are the first k of the hits for
 * k = all (a total order by distance, ties by smaller id), for k small
 * enough that the set is cut many times and k large enough that it is
 * never cut; duplicate vectors (equal distances) included, among them 41
 * copies of the first query (more equal distances than the select sorts
 * directly). Also with rerank. */
Test(fractal_search, k_best_are_a_prefix_of_all)
{
    const size_t n = 600, dim = 8;
    float *data = ft_mixture(n, dim, 6, 1.0f, 29, NULL);
    for (size_t i = 0; i < 40; i++) memcpy(data + (500 + i) * dim, data + i * dim, dim * sizeof *data);
    for (size_t i = 560; i < n; i++) memcpy(data + i * dim, data, dim * sizeof *data);   /* 41 ties */
    strata_txn *x = tw(&g);
    strata_fractal *f = build(x, STRATA_METRIC_L2, data, n, dim, STRATA_FRACTAL_KEEP_RAW, 1);
    strata_hit *all = malloc(n * sizeof *all), *part = malloc(n * sizeof *part);
    const size_t ks[] = { 1, 3, 10, 37, 200 };
    for (int rr = 0; rr < 2; rr++)
        for (size_t qi = 0; qi < 20; qi++) {
            strata_fractal_params p = { .beam = 64, .n_probe = 64, .rerank = rr ? 600 : 0 };
            const float *q = data + (qi * 29 % n) * dim;
            size_t n_all, got;
            cr_assert_eq(strata_fractal_search(f, q, dim, n, &p, all, &n_all), STRATA_OK);
            cr_assert_eq(n_all, n, "every vector once");
            for (size_t i = 1; i < n_all; i++)
                cr_assert(all[i - 1].dist < all[i].dist ||
                          (all[i - 1].dist == all[i].dist && all[i - 1].id < all[i].id));
            for (size_t ki = 0; ki < sizeof ks / sizeof ks[0]; ki++) {
                p.rerank = rr ? (uint32_t)n : 0;
                cr_assert_eq(strata_fractal_search(f, q, dim, ks[ki], &p, part, &got), STRATA_OK);
                cr_assert_eq(got, ks[ki]);
                for (size_t i = 0; i < got; i++)
                    cr_assert(part[i].id == all[i].id && part[i].dist == all[i].dist,
                              "rerank %d q %zu k %zu hit %zu", rr, qi, ks[ki], i);
            }
        }
    free(all); free(part);
    strata_fractal_close(f);
    strata_abort(x);
    free(data);
}

static int keep_even(void *ctx, uint64_t id) { (void)ctx; return id % 2 == 0; }

Test(fractal_search, filter_and_time_window)
{
    const size_t n = 600, dim = 8;
    float *data = ft_mixture(n, dim, 5, 1.0f, 24, NULL);
    strata_txn *x = tw(&g);
    strata_fractal *f = build(x, STRATA_METRIC_L2, data, n, dim, STRATA_FRACTAL_KEEP_RAW, 1);
    strata_fractal_params p = { .beam = 100, .n_probe = 100, .filter = keep_even };
    strata_hit h[20];
    size_t got;
    cr_assert_eq(strata_fractal_search(f, data, dim, 20, &p, h, &got), STRATA_OK);
    cr_assert_eq(got, 20);
    for (size_t i = 0; i < got; i++) cr_assert_eq(h[i].id % 2, 0);
    /* new data, much later, lands in old subtrees: the window must find it */
    for (size_t i = 0; i < 30; i++)
        cr_assert_eq(strata_fractal_add(f, 10000 + i, data + (i * 19 % n) * dim, dim, 50000 + i), STRATA_OK);
    p = (strata_fractal_params){ .beam = 100, .n_probe = 100, .flags = STRATA_FRACTAL_WINDOW,
                                 .ts_min = 50000, .ts_max = 50029 };
    for (size_t i = 0; i < 30; i++) {
        cr_assert_eq(strata_fractal_search(f, data + (i * 19 % n) * dim, dim, 1, &p, h, &got), STRATA_OK);
        cr_assert_eq(got, 1);
        cr_assert_eq(h[0].id, 10000 + i);
    }
    p.ts_min = 1100; p.ts_max = 1199;   /* ids 100..199 */
    cr_assert_eq(strata_fractal_search(f, data, dim, 20, &p, h, &got), STRATA_OK);
    cr_assert_eq(got, 20);
    for (size_t i = 0; i < got; i++) cr_assert(h[i].id >= 100 && h[i].id < 200);
    p.ts_min = 90000; p.ts_max = 90001;
    cr_assert_eq(strata_fractal_search(f, data, dim, 5, &p, h, &got), STRATA_OK);
    cr_assert_eq(got, 0);
    strata_fractal_close(f);
    cr_assert_eq(ft_check(x, "s"), STRATA_OK);
    strata_abort(x);
    free(data);
}

Test(fractal_search, n_probe_and_beam_change_what_is_scanned)
{
    const size_t n = 2000, dim = 8, nq = 40, k = 10;
    float *data = ft_mixture(n + nq, dim, 30, 1.5f, 25, NULL);
    strata_txn *x = tw(&g);
    strata_fractal *f = build(x, STRATA_METRIC_L2, data, n, dim, STRATA_FRACTAL_KEEP_RAW, 1);
    double r_small = 0, r_big = 0;
    uint64_t gt[10];
    strata_hit h[10];
    size_t got;
    for (size_t i = 0; i < nq; i++) {
        const float *q = data + (n + i) * dim;
        ft_exact(STRATA_METRIC_L2, q, data, NULL, n, dim, k, gt);
        strata_fractal_params a = { .beam = 1, .n_probe = 1, .rerank = 50 };
        strata_fractal_params b = { .beam = 16, .n_probe = 16, .rerank = 50 };
        cr_assert_eq(strata_fractal_search(f, q, dim, k, &a, h, &got), STRATA_OK);
        r_small += ft_recall(h, got, gt, k);
        cr_assert_eq(strata_fractal_search(f, q, dim, k, &b, h, &got), STRATA_OK);
        r_big += ft_recall(h, got, gt, k);
    }
    cr_assert_gt(r_big, r_small, "more probes must find more (%g vs %g)", r_big / nq, r_small / nq);
    cr_assert_geq(r_big / nq, 0.9);
    strata_fractal_close(f);
    cr_assert_eq(strata_commit(x), STRATA_OK);
    x = tr(&g);   /* a read transaction searches the committed snapshot */
    cr_assert_eq(strata_fractal_open(x, "s", &f), STRATA_OK);
    cr_assert_eq(strata_fractal_search(f, data + 5 * dim, dim, 1, NULL, h, &got), STRATA_OK);
    cr_assert_eq(got, 1);
    cr_assert_eq(h[0].id, 5);
    strata_fractal_close(f);
    strata_abort(x);
    free(data);
}
