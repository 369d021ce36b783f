/* tests/fractal/test_residual.c - residual PQ codes against per-leaf anchors:
 * the ADC distance of every encoded hit equals the exact distance to what its
 * code decodes to (anchor + decoded residual) under L2, IP and cosine; train
 * anchors every posting list at its leaf's centroid; a damaged per-code term
 * is reported by the check; and on a drifting stream with codebooks trained
 * on the first tenth only, PQ-only recall of the probed search stays close to
 * an exhaustive PQ-only scan (test_recall.c holds the threshold the direct,
 * non-residual coding failed: 0.535 there, 0.85 with residuals). */
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
TestSuite(fractal_residual, .init = setup, .fini = teardown);

static strata_fractal *build(strata_txn *x, strata_metric m, const float *data, size_t n,
                             size_t dim, uint32_t flags)
{
    strata_fractal *f = NULL;
    strata_fractal_config c = ft_config((uint32_t)dim, m, (uint32_t)dim / 2, 40, 6, 6, 6, 8, flags);
    c.train_iters = 4;
    cr_assert_eq(strata_fractal_create(x, "r", &c, &f), STRATA_OK);
    for (size_t i = 0; i < n / 2; i++)
        cr_assert_eq(strata_fractal_add(f, i, data + i * dim, dim, i), STRATA_OK);
    cr_assert_eq(strata_fractal_train(f, 0), STRATA_OK);
    for (size_t i = n / 2; i < n; i++)   /* more splits and cascades after training */
        cr_assert_eq(strata_fractal_add(f, i, data + i * dim, dim, i), STRATA_OK);
    return f;
}

/* The working vector id's code stands for: anchor + decoded residual. */
static int decoded(strata_fractal *f, uint64_t id, float *w)
{
    uint32_t leaf, n = 0, dim = f->cfg.dim, m = f->cfg.pq_m;
    uint8_t where;
    uint64_t ts, *ids = NULL, *tss = NULL;
    uint8_t *codes = NULL;
    float *a = malloc(dim * sizeof *a);
    cr_assert_eq(frac_assign_lookup(f, id, &leaf, &where, &ts), STRATA_OK);
    if (where != WHERE_POST) { free(a); return 0; }
    cr_assert_eq(frac_post_read(f, leaf, &n, &ids, &tss, &codes, a), STRATA_OK);
    uint32_t i = 0;
    while (i < n && ids[i] != id) i++;
    cr_assert_lt(i, n);
    frac_decode_res(f, a, codes + (size_t)i * m, w);
    free(ids); free(tss); free(codes); free(a);
    return 1;
}

static void adc_exact(strata_metric m, uint32_t flags)
{
    const size_t n = 800, dim = 16;
    float *data = ft_mixture(n, dim, 8, 1.5f, 61, NULL);
    for (size_t i = 0; i < n * dim; i++) data[i] += 40.0f;   /* far from the origin */
    strata_txn *x = tw(&g);
    strata_fractal *f = build(x, m, data, n, dim, flags);
    strata_fractal_params p = { .beam = 64, .n_probe = 64 };
    strata_hit h[30];
    float w[16], q[16];
    size_t got, checked = 0;
    for (size_t qi = 0; qi < 20; qi++) {
        const float *qr = data + (qi * 37 % n) * dim;
        for (size_t j = 0; j < dim; j++) q[j] = qr[j] + 0.3f * (float)((qi + j) % 3);
        cr_assert_eq(strata_fractal_search(f, q, dim, 30, &p, h, &got), STRATA_OK);
        cr_assert_eq(got, 30);
        float qw[16];
        frac_working(f, q, qw);
        for (size_t i = 0; i < got; i++) {
            if (!decoded(f, h[i].id, w)) continue;   /* buffered: exact anyway */
            float exact;
            strata_metric dm = m == STRATA_METRIC_COSINE ? STRATA_METRIC_IP : m;
            cr_assert_eq(strata_vec_distance(dm, qw, w, dim, &exact), STRATA_OK);
            if (m == STRATA_METRIC_COSINE) exact += 1.0f;
            float tol = 1e-4f * (fabsf(exact) + 1.0f) + (m == STRATA_METRIC_L2 ? 2e-6f * 1600 * dim : 0);
            cr_assert_leq(fabsf(h[i].dist - exact), tol, "hit %zu: ADC %g, decoded %g", i,
                          h[i].dist, exact);
            checked++;
        }
    }
    cr_assert_gt(checked, 200);
    strata_fractal_close(f);
    cr_assert_eq(ft_check(x, "r"), STRATA_OK);
    strata_abort(x);
    free(data);
}
Test(fractal_residual, l2_adc_is_distance_to_anchor_plus_code) { adc_exact(STRATA_METRIC_L2, 0); }
Test(fractal_residual, ip_adc_is_distance_to_anchor_plus_code) { adc_exact(STRATA_METRIC_IP, 0); }
Test(fractal_residual, cosine_adc_is_distance_to_anchor_plus_code)
{
    adc_exact(STRATA_METRIC_COSINE, STRATA_FRACTAL_KEEP_RAW);
}

/* After (re)training, every posting list is anchored at its leaf's centroid,
 * and a damaged per-code term is a check failure. */
Test(fractal_residual, train_anchors_at_centroids_and_check_sees_bad_terms)
{
    const size_t n = 600, dim = 8;
    float *data = ft_mixture(n, dim, 6, 1.0f, 62, NULL);
    strata_txn *x = tw(&g);
    strata_fractal *f = build(x, STRATA_METRIC_L2, data, n, dim, STRATA_FRACTAL_KEEP_RAW);
    cr_assert_eq(strata_fractal_train(f, 0), STRATA_OK);
    float a[8];
    uint32_t with_codes = 0, victim = FRAC_NONE;
    for (uint32_t i = 0; i < f->n_slots; i++) {
        const frac_node *l = frac_node_at(f, i);
        if (!l || !l->leaf || !l->n_codes) continue;
        uint32_t np;
        uint64_t *ids, *ts;
        uint8_t *codes;
        cr_assert_eq(frac_post_read(f, i, &np, &ids, &ts, &codes, a), STRATA_OK);
        cr_assert_eq(memcmp(a, l->cent, sizeof a), 0, "leaf %u: anchor is not its centroid", i);
        free(ids); free(ts); free(codes);
        with_codes++;
        victim = i;
    }
    cr_assert_gt(with_codes, 3);
    strata_fractal_close(f);
    cr_assert_eq(ft_check(x, "r"), STRATA_OK);
    /* damage one term */
    strata_table *t = NULL;
    strata_table_spec spec = { .key_type = STRATA_KEY_U64 };
    cr_assert_eq(db_internal_table_open(x, "__frac:r:post", &spec, 0, &t), STRATA_OK);
    uint8_t k[8];
    strata_slice v;
    frac_le64_put(k, victim);
    cr_assert_eq(strata_get(t, (strata_slice){k, 8}, &v), STRATA_OK);
    uint8_t *copy = malloc(v.len);
    memcpy(copy, v.data, v.len);
    uint32_t np = frac_le32_get(copy);
    size_t term0 = POST_HDR + 4 * dim + 16 * (size_t)np;
    copy[term0 + 3] ^= 0x40;
    cr_assert_eq(strata_put(t, (strata_slice){k, 8}, (strata_slice){copy, v.len}), STRATA_OK);
    free(copy);
    cr_assert_eq(strata_fractal_check(x, "r", NULL, NULL), STRATA_ECORRUPT);
    strata_abort(x);
    free(data);
}

typedef struct lab { uint32_t label, i; } lab;
static int lab_cmp(const void *a, const void *b)
{
    const lab *p = a, *q = b;
    return p->label != q->label ? (p->label < q->label ? -1 : 1) : (p->i < q->i ? -1 : p->i > q->i);
}

/* Drift: regions arrive one after another, codebooks are trained on the first
 * tenth only. PQ-only recall of the probed search must stay within a few
 * points of an exhaustive PQ-only scan, under L2 and IP (0.69 / 0.72 here,
 * pq_m = dim / 4). */
static void drift(strata_metric m)
{
    enum { N = 8000, DIM = 32, NQ = 100, K = 10 };
    uint32_t *label = malloc((N + NQ) * sizeof *label);
    float *all = ft_mixture(N + NQ, DIM, 40, 2.0f, 63, label);
    float *data = all, *qs = all + (size_t)N * DIM;
    lab *order = malloc(N * sizeof *order);
    for (uint32_t i = 0; i < N; i++) order[i] = (lab){ label[i], i };
    qsort(order, N, sizeof *order, lab_cmp);
    strata_txn *x = tw(&g);
    strata_fractal_config c = ft_config(DIM, m, 8, 128, 16, 16, 6, 16, STRATA_FRACTAL_KEEP_RAW);
    c.train_size = N / 10;
    strata_fractal *f = NULL;
    cr_assert_eq(strata_fractal_create(x, "d", &c, &f), STRATA_OK);
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
    strata_fractal_params probed = { .beam = 6, .n_probe = 12 };
    strata_fractal_params all_leaves = { .beam = 100000, .n_probe = 100000 };
    double r_probe = 0, r_all = 0;
    uint64_t gt[K];
    strata_hit h[K];
    size_t got;
    for (size_t i = 0; i < NQ; i++) {
        ft_exact(m, qs + i * DIM, data, NULL, N, DIM, K, gt);
        cr_assert_eq(strata_fractal_search(f, qs + i * DIM, DIM, K, &probed, h, &got), STRATA_OK);
        r_probe += ft_recall(h, got, gt, K);
        cr_assert_eq(strata_fractal_search(f, qs + i * DIM, DIM, K, &all_leaves, h, &got), STRATA_OK);
        r_all += ft_recall(h, got, gt, K);
    }
    r_probe /= NQ; r_all /= NQ;
    fprintf(stderr, "drift %s PQ-only recall@10: probed %.3f, all leaves %.3f\n",
            m == STRATA_METRIC_L2 ? "L2" : "IP", r_probe, r_all);
    cr_assert_geq(r_all, 0.62, "exhaustive PQ-only recall %.3f", r_all);
    cr_assert_geq(r_probe, r_all - 0.05, "probed %.3f vs exhaustive %.3f", r_probe, r_all);
    strata_fractal_close(f);
    cr_assert_eq(ft_check(x, "d"), STRATA_OK);
    strata_abort(x);
    free(all); free(label); free(order);
}
Test(fractal_residual, l2_drift_pq_only_recall, .timeout = 300) { drift(STRATA_METRIC_L2); }
Test(fractal_residual, ip_drift_pq_only_recall, .timeout = 300) { drift(STRATA_METRIC_IP); }

/* Leaves thinned by deletes (min_leaf 0: no merges) cover their region with
 * fewer vectors; the search then scans more than n_probe of them (up to
 * 2 * n_probe) until they hold n_probe * max_leaf / 2 vectors. */
Test(fractal_residual, thinned_leaves_are_probed_further)
{
    const size_t n = 3000, dim = 8;
    float *data = ft_mixture(n, dim, 20, 1.0f, 64, NULL);
    strata_txn *x = tw(&g);
    strata_fractal *f = NULL;
    strata_fractal_config c = ft_config(dim, STRATA_METRIC_L2, 4, 64, 0, 8, 6, 8, STRATA_FRACTAL_KEEP_RAW);
    cr_assert_eq(strata_fractal_create(x, "t", &c, &f), STRATA_OK);
    for (size_t i = 0; i < n; i++) cr_assert_eq(strata_fractal_add(f, i, data + i * dim, dim, i), STRATA_OK);
    cr_assert_eq(strata_fractal_train(f, 0), STRATA_OK);
    strata_fractal_params p = { .beam = 64, .n_probe = 1 };
    strata_hit h[200];
    size_t got_full, got_thin;
    cr_assert_eq(strata_fractal_search(f, data, dim, 200, &p, h, &got_full), STRATA_OK);
    cr_assert_leq(got_full, 64, "full leaves: one leaf scanned");
    for (size_t i = 0; i < n; i++)
        if (i % 4) cr_assert_eq(strata_fractal_delete(f, i), STRATA_OK);
    cr_assert_eq(strata_fractal_search(f, data, dim, 200, &p, h, &got_thin), STRATA_OK);
    uint32_t leaves[2], n_leaves = 0;
    for (size_t i = 0; i < got_thin; i++) {
        uint32_t leaf, j = 0;
        uint8_t where;
        uint64_t ts;
        cr_assert_eq(frac_assign_lookup(f, h[i].id, &leaf, &where, &ts), STRATA_OK);
        while (j < n_leaves && leaves[j] != leaf) j++;
        cr_assert_lt(j, 2, "at most 2 * n_probe leaves");
        if (j == n_leaves) leaves[n_leaves++] = leaf;
    }
    cr_assert_eq(n_leaves, 2, "a thinned leaf is not enough: the next one is scanned too");
    strata_fractal_close(f);
    cr_assert_eq(ft_check(x, "t"), STRATA_OK);
    strata_abort(x);
    free(data);
}
