/* tests/fractal/test_recall.c - recall on 12,000 vectors inserted in an order
 * that drifts (grouped by mixture component, so new regions appear over
 * time), with codebooks trained automatically on the first tenth and never
 * retrained; then after deleting a random half. Thresholds can fail: they are
 * set a few points under what the index reaches. */
#include <criterion/criterion.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "ft_util.h"

static tdb g;
static void setup(void) { tdb_open(&g); }
static void teardown(void) { tdb_close(&g); }
TestSuite(fractal_recall, .init = setup, .fini = teardown);

enum { N = 12000, DIM = 32, NQ = 100, K = 10, CENTRES = 60 };

static double measure(strata_fractal *f, const float *data, const float *qs, const uint8_t *live,
                      uint32_t rerank)
{
    strata_fractal_params p = { .beam = 6, .n_probe = 12, .rerank = rerank };
    double r = 0;
    uint64_t gt[K];
    strata_hit h[K];
    size_t got;
    for (size_t i = 0; i < NQ; i++) {
        ft_exact(STRATA_METRIC_L2, qs + i * DIM, data, live, N, DIM, K, gt);
        cr_assert_eq(strata_fractal_search(f, qs + i * DIM, DIM, K, &p, h, &got), STRATA_OK);
        r += ft_recall(h, got, gt, K);
    }
    return r / NQ;
}

typedef struct lab { uint32_t label; uint32_t i; } lab;
static int lab_cmp(const void *a, const void *b)
{
    const lab *x = a, *y = b;
    return x->label != y->label ? (x->label < y->label ? -1 : 1) : (x->i < y->i ? -1 : x->i > y->i);
}

Test(fractal_recall, drift_stream_then_delete_half, .timeout = 300)
{
    uint32_t *label = malloc((N + NQ) * sizeof *label);
    float *all = ft_mixture(N + NQ, DIM, CENTRES, 2.0f, 31, label);
    float *data = all, *qs = all + (size_t)N * DIM;
    lab *order = malloc(N * sizeof *order);
    for (uint32_t i = 0; i < N; i++) order[i] = (lab){ label[i], i };
    qsort(order, N, sizeof *order, lab_cmp);   /* drift: one region after another */
    strata_txn *x = tw(&g);
    strata_fractal_config c = ft_config(DIM, STRATA_METRIC_L2, 16, 128, 16, 16, 6, 16,
                                        STRATA_FRACTAL_KEEP_RAW);
    c.train_size = N / 10;
    strata_fractal *f = NULL;
    cr_assert_eq(strata_fractal_create(x, "rc", &c, &f), STRATA_OK);
    for (size_t b = 0; b < N; b += 500) {
        uint64_t ids[500];
        float *vs = malloc(500 * DIM * sizeof *vs);
        for (size_t j = 0; j < 500; j++) {
            ids[j] = order[b + j].i;
            memcpy(vs + j * DIM, data + (size_t)ids[j] * DIM, DIM * sizeof *vs);
        }
        cr_assert_eq(strata_fractal_add_batch(f, 500, ids, vs, DIM, ids), STRATA_OK);
        free(vs);
    }
    strata_fractal_info info;
    cr_assert_eq(strata_fractal_info_get(f, &info), STRATA_OK);
    cr_assert_eq(info.codebook_gen, 1, "trained once, on the first tenth");
    strata_fractal_close(f);
    cr_assert_eq(ft_check(x, "rc"), STRATA_OK);
    cr_assert_eq(strata_commit(x), STRATA_OK);

    x = tr(&g);
    cr_assert_eq(strata_fractal_open(x, "rc", &f), STRATA_OK);
    double r_rr = measure(f, data, qs, NULL, 100), r_pq = measure(f, data, qs, NULL, 0);
    strata_fractal_close(f);
    strata_abort(x);
    fprintf(stderr, "fractal recall@10 after drift: rerank %.3f, PQ only %.3f\n", r_rr, r_pq);
    cr_assert_geq(r_rr, 0.95, "recall with rerank %.3f", r_rr);
    /* residual codes: 0.85; the direct (non-residual) coding reached 0.535 */
    cr_assert_geq(r_pq, 0.78, "recall without rerank %.3f", r_pq);

    uint8_t *live = malloc(N);
    uint64_t s = 99;
    x = tw(&g);
    cr_assert_eq(strata_fractal_open(x, "rc", &f), STRATA_OK);
    for (uint32_t i = 0; i < N; i++) {
        live[i] = ft_rng(&s) & 1;
        if (!live[i]) cr_assert_eq(strata_fractal_delete(f, i), STRATA_OK);
    }
    double r_rr2 = measure(f, data, qs, live, 100);
    strata_fractal_close(f);
    cr_assert_eq(ft_check(x, "rc"), STRATA_OK);
    cr_assert_eq(strata_commit(x), STRATA_OK);
    fprintf(stderr, "fractal recall@10 after deleting half: rerank %.3f\n", r_rr2);
    cr_assert_geq(r_rr2, r_rr - 0.02, "recall fell after deletes: %.3f -> %.3f", r_rr, r_rr2);
    free(all); free(label); free(order); free(live);
}
