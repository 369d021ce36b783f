/* tests/ivfpq/test_kmeans.c - convergence of the k-means in ivfpq/kmeans.c
 * (the coarse quantizer and every PQ subspace): the default budget of 25
 * Lloyd iterations reaches the objective of many more, and training is
 * deterministic for a seed and differs across seeds. Checked for the
 * BIGANN10K nprobe-1 comparison with FAISS (bench/README.md, ANN section),
 * where Strata's coarse objective is lower than FAISS's at every seed. */
#include <criterion/criterion.h>
#include <math.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "ivfpq_int.h"

void openblas_set_num_threads(int num_threads);

static uint64_t next(uint64_t *s)
{
    uint64_t z = (*s += 0x9E3779B97F4A7C15ull);
    z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ull;
    z = (z ^ (z >> 27)) * 0x94D049BB133111EBull;
    return z ^ (z >> 31);
}

static float gauss(uint64_t *s)
{
    double u1 = ((double)(next(s) >> 11) + 1.0) / 9007199254740993.0;
    double u2 = (double)(next(s) >> 11) / 9007199254740992.0;
    return (float)(sqrt(-2.0 * log(u1)) * cos(6.283185307179586 * u2));
}

/* n points around nc centres (centre spread cs, point spread 1); label[i] is
 * the centre of point i. */
static float *mixture(size_t n, size_t dim, size_t nc, float cs, uint64_t seed, uint32_t *label)
{
    uint64_t s = seed;
    float *c = malloc(nc * dim * sizeof *c), *x = malloc(n * dim * sizeof *x);
    cr_assert(c && x);
    for (size_t i = 0; i < nc * dim; i++) c[i] = cs * gauss(&s);
    for (size_t i = 0; i < n; i++) {
        size_t k = (size_t)(next(&s) % nc);
        label[i] = (uint32_t)k;
        for (size_t d = 0; d < dim; d++) x[i * dim + d] = c[k * dim + d] + gauss(&s);
    }
    free(c);
    return x;
}

/* Mean squared distance of the points to their nearest centroid. */
static double objective(const float *x, size_t n, size_t dim, const float *c, size_t k)
{
    uint32_t *as = malloc(n * sizeof *as);
    float *dist = malloc(n * sizeof *dist);
    cr_assert(as && dist);
    cr_assert_eq(ivf_assign(x, n, dim, c, k, 0, as, dist), STRATA_OK);
    double o = 0;
    for (size_t i = 0; i < n; i++) o += dist[i];
    free(as); free(dist);
    return o / (double)n;
}

/* Overlapping clusters (the coarse-quantizer case, k > clusters): the
 * default 25 iterations reach an objective within 0.5% of 200 iterations
 * from the same seeding, and the result depends only on the seed. */
Test(ivfpq_kmeans, converged_and_deterministic)
{
    openblas_set_num_threads(1);
    enum { N = 6000, DIM = 32, NC = 30, K = 60 };
    uint32_t *label = malloc(N * sizeof *label);
    float *c25 = malloc(K * DIM * sizeof *c25), *c200 = malloc(K * DIM * sizeof *c200);
    float *again = malloc(K * DIM * sizeof *again);
    cr_assert(label && c25 && c200 && again);
    float *x = mixture(N, DIM, NC, 1.5f, 11, label);
    for (uint64_t seed = 1; seed <= 3; seed++) {
        cr_assert_eq(ivf_kmeans(x, N, DIM, K, 25, seed, c25, NULL), STRATA_OK);
        cr_assert_eq(ivf_kmeans(x, N, DIM, K, 200, seed, c200, NULL), STRATA_OK);
        double o25 = objective(x, N, DIM, c25, K), o200 = objective(x, N, DIM, c200, K);
        cr_assert_leq(o200, o25 * (1 + 1e-6), "seed %llu: more iterations got worse",
                      (unsigned long long)seed);
        cr_assert_lt(o25, o200 * 1.005, "seed %llu: 25 iterations %.4f vs 200 %.4f",
                     (unsigned long long)seed, o25, o200);
        cr_assert_eq(ivf_kmeans(x, N, DIM, K, 25, seed, again, NULL), STRATA_OK);
        cr_assert_eq(memcmp(c25, again, K * DIM * sizeof *c25), 0, "seed %llu", (unsigned long long)seed);
    }
    cr_assert_eq(ivf_kmeans(x, N, DIM, K, 25, 4, again, NULL), STRATA_OK);
    cr_assert_neq(memcmp(c25, again, K * DIM * sizeof *c25), 0, "another seed, other centroids");
    free(x); free(label); free(c25); free(c200); free(again);
}
