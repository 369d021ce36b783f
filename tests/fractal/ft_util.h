/* tests/fractal/ft_util.h - helpers of the fractal tests: a temporary
 * database, seeded random data (Gaussian mixtures), exact ground truth, and a
 * check wrapper that prints every reported problem. */
#ifndef FT_UTIL_H
#define FT_UTIL_H

#include <stddef.h>
#include <stdint.h>

#include "strata.h"

typedef struct tdb {
    char dir[64], path[128];
    strata_db *db;
} tdb;

void tdb_open(tdb *t);
void tdb_reopen(tdb *t);
void tdb_close(tdb *t);
strata_txn *tw(tdb *t);
strata_txn *tr(tdb *t);

uint64_t ft_rng(uint64_t *s);
double ft_unit(uint64_t *s);
double ft_gauss(uint64_t *s);
/* n points of dim from a mixture of n_centres Gaussians (centres in [-10,10],
 * spread sigma); label[i] (may be NULL) gets point i's centre. */
float *ft_mixture(size_t n, size_t dim, size_t n_centres, float sigma, uint64_t seed,
                  uint32_t *label);
/* Exact k nearest of q among the n rows of base (live[i] == 0 rows skipped;
 * live may be NULL) under metric m, ids = row indexes, into gt[k]. */
void ft_exact(strata_metric m, const float *q, const float *base, const uint8_t *live, size_t n,
              size_t dim, size_t k, uint64_t *gt);
/* |hits ∩ gt| / k. */
double ft_recall(const strata_hit *hits, size_t n_hits, const uint64_t *gt, size_t k);
/* strata_fractal_check with problems printed to stderr. */
int ft_check(strata_txn *txn, const char *name);
/* Check index `name` in write txn x, commit x, check it again in a read txn. */
void ft_commit_checked(tdb *t, strata_txn *x, const char *name);
/* A small config: dim, metric, pq_m, max_leaf, min_leaf, fanout, depth, bufcap. */
strata_fractal_config ft_config(uint32_t dim, strata_metric m, uint32_t pq_m, uint32_t max_leaf,
                                uint32_t min_leaf, uint32_t fanout, uint32_t depth,
                                uint32_t bufcap, uint32_t flags);
/* Create index `name` in write txn x with config c and train_size (0: no
 * automatic training); the open handle. */
strata_fractal *ft_create(strata_txn *x, const char *name, strata_fractal_config c,
                          uint32_t train_size);

#endif
