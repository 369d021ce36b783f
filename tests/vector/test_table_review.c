/* tests/vector/test_table_review.c - regression tests from the vector-layer
 * review that need a database: vector tables (STRATA_VECTOR) and their exact
 * top-k. Links every layer (tests/vector/meson.build).
 */
#define _POSIX_C_SOURCE 200809L
#include <criterion/criterion.h>
#include <stdio.h>
#include <stdlib.h>
#include <unistd.h>

#include "strata.h"

#define OK(x) do { int rc_ = (x); cr_assert_eq(rc_, STRATA_OK, "%s: %s", #x, strata_strerror(rc_)); } while (0)

/* A vector table accepted any finite value, also one whose squared norm
 * overflows f32 (strata_vec_validate rejects it). Once stored, such a row made
 * every L2 top-k of the table fail with STRATA_EINVAL (its distance is Inf),
 * whatever the query: one put poisoned the table's search. */
Test(vector_table, put_rejects_what_validate_rejects)
{
    char dir[] = "/tmp/strata_vtab_XXXXXX", path[64];
    cr_assert_not_null(mkdtemp(dir));
    snprintf(path, sizeof path, "%s/v.strata", dir);
    strata_db *db;
    strata_txn *w;
    strata_table *t;
    OK(strata_open(path, STRATA_CREATE, &db));
    OK(strata_begin_write(db, &w));
    strata_table_spec spec = { STRATA_KEY_U64, NULL, 4 };
    OK(strata_table_open_ex(w, "v", &spec, STRATA_CREATE | STRATA_VECTOR, &t));
    float a[4] = { 1, 2, 3, 4 }, big[4] = { 1e30f, 1e30f, 0, 0 }, edge[4] = { 6e18f, 0, 0, 0 };
    uint64_t k1 = 1, k2 = 2, k3 = 3;
    OK(strata_put(t, (strata_slice){ &k1, 8 }, (strata_slice){ a, sizeof a }));
    cr_assert_eq(strata_vec_validate(big, 4), STRATA_EINVAL, "premise");
    cr_assert_eq(strata_put(t, (strata_slice){ &k2, 8 }, (strata_slice){ big, sizeof big }),
                 STRATA_EINVAL, "a vector strata_vec_validate rejects is not stored");
    OK(strata_vec_validate(edge, 4));
    OK(strata_put(t, (strata_slice){ &k3, 8 }, (strata_slice){ edge, sizeof edge }));
    strata_hit hits[2];
    size_t n = 0;
    float q[4] = { 1, 2, 3, 4.5f };
    OK(strata_vec_table_topk(t, STRATA_METRIC_L2, q, 4, 1, NULL, NULL, hits, &n));
    cr_assert(n == 1 && hits[0].id == 1, "nearest is row 1");
    OK(strata_vec_table_topk(t, STRATA_METRIC_COSINE, q, 4, 2, NULL, NULL, hits, &n));
    cr_assert(n == 2 && hits[0].id == 1 && hits[1].id == 3, "cosine order");
    strata_abort(w);
    strata_close(db);
    unlink(path);
    rmdir(dir);
}
