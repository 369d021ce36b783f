/* tests/ivfpq/itest.h - helpers shared by the IVF-PQ tests: a seeded Gaussian
 * mixture (splitmix64; STRATA_TEST_SEED=<n> replays a run, the seed is in
 * failure messages), a temporary database, index building, exact ground truth
 * (strata_vec_topk) and recall. OpenBLAS runs one thread for determinism. */
#ifndef STRATA_TESTS_ITEST_H
#define STRATA_TESTS_ITEST_H

#include <criterion/criterion.h>
#include <math.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "strata.h"

void openblas_set_num_threads(int num_threads);

static inline uint64_t it_seed(void)
{
    const char *s = getenv("STRATA_TEST_SEED");
    return s ? strtoull(s, NULL, 0) : 0x1F5EEDull;
}

static inline uint64_t it_next(uint64_t *s)
{
    uint64_t z = (*s += 0x9E3779B97F4A7C15ull);
    z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ull;
    z = (z ^ (z >> 27)) * 0x94D049BB133111EBull;
    return z ^ (z >> 31);
}

static inline float it_gauss(uint64_t *s)
{
    double u1 = ((double)(it_next(s) >> 11) + 1.0) / 9007199254740993.0;
    double u2 = (double)(it_next(s) >> 11) / 9007199254740992.0;
    return (float)(sqrt(-2.0 * log(u1)) * cos(6.283185307179586 * u2));
}

/* n points of dim from a mixture of nc centres (centre spread 4, point
 * spread 1 .. 2 varying by centre). */
static inline float *it_mixture(size_t n, size_t dim, size_t nc, uint64_t seed)
{
    uint64_t s = seed;
    float *c = malloc(nc * dim * sizeof *c), *x = malloc(n * dim * sizeof *x);
    cr_assert(c && x);
    for (size_t i = 0; i < nc * dim; i++) c[i] = 4.0f * it_gauss(&s);
    for (size_t i = 0; i < n; i++) {
        size_t k = (size_t)(it_next(&s) % nc);
        float sp = 1.0f + (float)(k % 5) * 0.25f;
        for (size_t d = 0; d < dim; d++) x[i * dim + d] = c[k * dim + d] + sp * it_gauss(&s);
    }
    free(c);
    return x;
}

typedef struct it_db { char dir[64], path[96]; strata_db *db; } it_db;

static inline void it_db_open(it_db *d)
{
    openblas_set_num_threads(1);
    snprintf(d->dir, sizeof d->dir, "/tmp/strata_ivf_XXXXXX");
    cr_assert(mkdtemp(d->dir));
    snprintf(d->path, sizeof d->path, "%s/t.db", d->dir);
    cr_assert_eq(strata_open(d->path, STRATA_CREATE, &d->db), STRATA_OK);
}

static inline void it_db_reopen(it_db *d)
{
    strata_close(d->db);
    cr_assert_eq(strata_open(d->path, 0, &d->db), STRATA_OK);
}

static inline void it_db_close(it_db *d)
{
    strata_close(d->db);
    unlink(d->path);
    rmdir(d->dir);
}

/* Create, train on the first n_train vectors and insert all n (ids = row). */
static inline void it_build(strata_db *db, const char *name, const strata_ivf_config *cfg,
                            const float *x, size_t n, size_t n_train, const uint64_t *attrs)
{
    strata_txn *w;
    strata_ivf *ix;
    cr_assert_eq(strata_begin_write(db, &w), STRATA_OK);
    cr_assert_eq(strata_ivf_create(w, name, cfg, &ix), STRATA_OK);
    unsigned warn = 0;
    cr_assert_eq(strata_ivf_train(ix, x, n_train, cfg->dim, &warn), STRATA_OK);
    uint64_t *ids = malloc(n * sizeof *ids);
    for (size_t i = 0; i < n; i++) ids[i] = i;
    cr_assert_eq(strata_ivf_insert_batch(ix, n, ids, x, cfg->dim, attrs), STRATA_OK);
    free(ids);
    strata_ivf_close(ix);
    cr_assert_eq(strata_commit(w), STRATA_OK);
}

/* Exact top-k ids of nq queries (nq * k). */
static inline uint64_t *it_truth(strata_metric m, const float *x, size_t n, size_t dim,
                                 const float *q, size_t nq, size_t k)
{
    uint64_t *gt = malloc(nq * k * sizeof *gt);
    strata_hit *h = malloc(k * sizeof *h);
    for (size_t i = 0; i < nq; i++) {
        size_t got;
        cr_assert_eq(strata_vec_topk(m, q + i * dim, x, n, dim, NULL, k, NULL, NULL, h, &got),
                     STRATA_OK);
        for (size_t j = 0; j < k; j++) gt[i * k + j] = h[j].id;
    }
    free(h);
    return gt;
}

/* Recall@k: fraction of the true top-k found in the returned top-k. */
static inline double it_recall(const uint64_t *gt, const strata_hit *res, const size_t *n_res,
                               size_t nq, size_t k)
{
    size_t hit = 0;
    for (size_t i = 0; i < nq; i++)
        for (size_t a = 0; a < n_res[i]; a++)
            for (size_t b = 0; b < k; b++)
                if (res[i * k + a].id == gt[i * k + b]) { hit++; break; }
    return (double)hit / (double)(nq * k);
}

#endif
