/* tests/vector/test_topk.c - the top-k heap and strata_vec_topk against a full
 * sort, ties, ids, filters, and bad arguments.
 */
#include <criterion/criterion.h>
#include <math.h>
#include <string.h>

#include "vector.h"
#include "vtest.h"

static int hit_cmp(const void *pa, const void *pb)
{
    const strata_hit *a = pa, *b = pb;
    if (a->dist != b->dist) return a->dist < b->dist ? -1 : 1;
    return a->id < b->id ? -1 : a->id > b->id;
}

/* Reference: every distance from the public batch call, sorted by (dist, id),
 * keeping rows the filter accepts. Returns the number kept. */
static size_t full_sort(strata_metric m, const float *q, const float *base, size_t n,
                        size_t dim, const uint64_t *ids, strata_vec_filter_fn filter, void *ctx,
                        strata_hit *all)
{
    float *d = malloc(n * sizeof *d);
    cr_assert(d != NULL, "out of memory");
    cr_assert_eq(strata_vec_distance_batch(m, q, base, n, dim, d), STRATA_OK, "batch");
    size_t kept = 0;
    for (size_t j = 0; j < n; j++) {
        uint64_t id = ids ? ids[j] : j;
        if (filter && !filter(ctx, id)) continue;
        all[kept++] = (strata_hit){ .id = id, .dist = d[j] };
    }
    free(d);
    qsort(all, kept, sizeof *all, hit_cmp);
    return kept;
}

static int keep_odd(void *ctx, uint64_t id)
{
    (*(size_t *)ctx)++;
    return (int)(id & 1);
}

static void check_against_sort(strata_metric m, size_t n, size_t dim, size_t k, int use_ids,
                               int use_filter, uint64_t seed)
{
    vtest_rng r = { seed };
    float *base = malloc(n * dim * sizeof *base), q[64];
    uint64_t *ids = malloc(n * sizeof *ids);
    strata_hit *all = malloc(n * sizeof *all), *out = malloc(k * sizeof *out);
    cr_assert(base && ids && all && out && dim <= 64, "setup");
    vtest_fill(&r, base, n * dim, 1.0f);
    vtest_fill(&r, q, dim, 1.0f);
    for (size_t j = 0; j < n; j++) ids[j] = vtest_next(&r) >> 1;   /* random, unique w.h.p. */
    size_t calls = 0, n_out = 0;
    strata_vec_filter_fn f = use_filter ? keep_odd : NULL;
    int rc = strata_vec_topk(m, q, base, n, dim, use_ids ? ids : NULL, k, f, &calls, out, &n_out);
    cr_assert_eq(rc, STRATA_OK, "seed=%llu rc=%d", (unsigned long long)seed, rc);
    size_t calls_topk = calls;
    size_t kept = full_sort(m, q, base, n, dim, use_ids ? ids : NULL, f, &calls, all);
    size_t want = kept < k ? kept : k;
    cr_assert_eq(n_out, want, "seed=%llu n_out=%zu want=%zu", (unsigned long long)seed, n_out, want);
    for (size_t i = 0; i < want; i++) {
        cr_assert(out[i].id == all[i].id && out[i].dist == all[i].dist,
                  "seed=%llu metric=%d n=%zu k=%zu rank %zu: got (%llu, %g) want (%llu, %g)",
                  (unsigned long long)seed, (int)m, n, k, i, (unsigned long long)out[i].id,
                  (double)out[i].dist, (unsigned long long)all[i].id, (double)all[i].dist);
    }
    if (use_filter) cr_assert(calls_topk <= n, "filter called at most once per row");
    free(base); free(ids); free(all); free(out);
}

Test(topk, matches_full_sort)
{
    uint64_t seed = vtest_seed();
    static const size_t ns[] = { 1, 3, 255, 256, 257, 1000, 3001 };
    static const size_t dims[] = { 1, 3, 16, 37, 64 };
    for (int m = 0; m < VEC_N_METRICS; m++)
        for (size_t a = 0; a < sizeof ns / sizeof ns[0]; a++)
            for (size_t b = 0; b < sizeof dims / sizeof dims[0]; b++) {
                size_t n = ns[a], ks[3] = { 1, n < 10 ? n : 10, n };
                for (int c = 0; c < 3; c++)
                    check_against_sort((strata_metric)m, n, dims[b], ks[c], (int)(a & 1),
                                       (int)(b & 1), seed + a * 100 + b);
            }
}

Test(topk, ties_go_to_smaller_id)
{
    /* 100 identical vectors with ids in descending order: the k smallest ids win. */
    enum { N = 100, D = 4, K = 7 };
    float base[N * D], q[D] = { 1, 2, 3, 4 };
    uint64_t ids[N];
    for (size_t j = 0; j < N; j++) {
        for (size_t i = 0; i < D; i++) base[j * D + i] = 0.5f;
        ids[j] = 1000 - j;
    }
    strata_hit out[K];
    size_t n_out;
    cr_assert_eq(strata_vec_topk(STRATA_METRIC_L2, q, base, N, D, ids, K, NULL, NULL, out,
                                 &n_out), STRATA_OK, "topk");
    cr_assert_eq(n_out, K, "n_out");
    for (size_t i = 0; i < K; i++)
        cr_assert_eq(out[i].id, 1000 - N + 1 + i, "rank %zu id %llu", i,
                     (unsigned long long)out[i].id);
}

Test(topk, heap_incremental_any_order)
{
    /* The kept set and order must not depend on push order (invariant (2)). */
    enum { N = 500, K = 20 };
    strata_hit in[N], a_buf[K], b_buf[K];
    vtest_rng r = { vtest_seed() };
    for (size_t j = 0; j < N; j++)
        in[j] = (strata_hit){ .id = j, .dist = (float)(vtest_next(&r) % 50) };   /* many ties */
    vec_topk a, b;
    vec_topk_init(&a, a_buf, K);
    vec_topk_init(&b, b_buf, K);
    for (size_t j = 0; j < N; j++) vec_topk_push(&a, in[j].id, in[j].dist);
    for (size_t j = N; j-- > 0;) vec_topk_push(&b, in[j].id, in[j].dist);
    cr_assert_eq(vec_topk_finish(&a), K, "a count");
    cr_assert_eq(vec_topk_finish(&b), K, "b count");
    qsort(in, N, sizeof in[0], hit_cmp);
    for (size_t i = 0; i < K; i++) {
        cr_assert(a_buf[i].id == in[i].id && a_buf[i].dist == in[i].dist, "a rank %zu", i);
        cr_assert(b_buf[i].id == in[i].id && b_buf[i].dist == in[i].dist, "b rank %zu", i);
    }
}

Test(topk, heap_fewer_than_k)
{
    strata_hit buf[10];
    vec_topk h;
    vec_topk_init(&h, buf, 10);
    cr_assert_eq(vec_topk_finish(&h), 0, "empty heap");
    vec_topk_init(&h, buf, 10);
    vec_topk_push(&h, 5, 2.0f);
    vec_topk_push(&h, 9, -1.0f);
    vec_topk_push(&h, 1, 2.0f);
    cr_assert_eq(vec_topk_finish(&h), 3, "three pushed");
    cr_assert(buf[0].id == 9 && buf[1].id == 1 && buf[2].id == 5, "order %llu %llu %llu",
              (unsigned long long)buf[0].id, (unsigned long long)buf[1].id,
              (unsigned long long)buf[2].id);
}

static int reject_all(void *ctx, uint64_t id)
{
    (void)ctx; (void)id;
    return 0;
}

Test(topk, filter_rejecting_everything)
{
    float base[8 * 2] = { 0 }, q[2] = { 1, 1 };
    strata_hit out[3];
    size_t n_out = 99;
    cr_assert_eq(strata_vec_topk(STRATA_METRIC_L1, q, base, 8, 2, NULL, 3, reject_all, NULL, out,
                                 &n_out), STRATA_OK, "topk");
    cr_assert_eq(n_out, 0, "nothing passes the filter");
}

Test(topk, bad_arguments)
{
    float base[4 * 2] = { 0 }, q[2] = { 1, 1 };
    strata_hit out[4];
    size_t n_out = 77;
    cr_assert_eq(strata_vec_topk(STRATA_METRIC_L2, NULL, base, 4, 2, NULL, 1, NULL, NULL, out, &n_out), STRATA_EINVAL, "NULL query");
    cr_assert_eq(strata_vec_topk(STRATA_METRIC_L2, q, NULL, 4, 2, NULL, 1, NULL, NULL, out, &n_out), STRATA_EINVAL, "NULL base");
    cr_assert_eq(strata_vec_topk(STRATA_METRIC_L2, q, base, 4, 2, NULL, 1, NULL, NULL, NULL, &n_out), STRATA_EINVAL, "NULL out");
    cr_assert_eq(strata_vec_topk(STRATA_METRIC_L2, q, base, 4, 2, NULL, 1, NULL, NULL, out, NULL), STRATA_EINVAL, "NULL n_out");
    cr_assert_eq(strata_vec_topk(STRATA_METRIC_L2, q, base, 4, 0, NULL, 1, NULL, NULL, out, &n_out), STRATA_EINVAL, "dim 0");
    cr_assert_eq(strata_vec_topk(STRATA_METRIC_L2, q, base, 4, STRATA_VEC_MAX_DIM + 1, NULL, 1, NULL, NULL, out, &n_out), STRATA_EINVAL, "dim too large");
    cr_assert_eq(strata_vec_topk(STRATA_METRIC_L2, q, base, 4, 2, NULL, 0, NULL, NULL, out, &n_out), STRATA_EINVAL, "k 0");
    cr_assert_eq(strata_vec_topk(STRATA_METRIC_L2, q, base, 4, 2, NULL, 5, NULL, NULL, out, &n_out), STRATA_EINVAL, "k > n");
    cr_assert_eq(strata_vec_topk(STRATA_METRIC_L2, q, base, 0, 2, NULL, 1, NULL, NULL, out, &n_out), STRATA_EINVAL, "n 0");
    cr_assert_eq(strata_vec_topk((strata_metric)4, q, base, 4, 2, NULL, 1, NULL, NULL, out, &n_out), STRATA_EINVAL, "metric");
    q[1] = NAN;
    cr_assert_eq(strata_vec_topk(STRATA_METRIC_L2, q, base, 4, 2, NULL, 1, NULL, NULL, out, &n_out), STRATA_EINVAL, "NaN query");
    q[1] = 1;
    for (int m = 0; m < VEC_N_METRICS; m++) {
        base[5] = NAN;
        cr_assert_eq(strata_vec_topk((strata_metric)m, q, base, 4, 2, NULL, 1, NULL, NULL, out, &n_out), STRATA_EINVAL, "NaN row, metric %d", m);
        base[5] = INFINITY;
        cr_assert_eq(strata_vec_topk((strata_metric)m, q, base, 4, 2, NULL, 1, NULL, NULL, out, &n_out), STRATA_EINVAL, "Inf row, metric %d", m);
        base[5] = 0;
    }
    cr_assert_eq(n_out, 77, "n_out untouched on error");
}
