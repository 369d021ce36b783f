/* tests/ivfpq/test_flat.c - exact top-k over a vector table, checked against a
 * full sort of the same distances; bad input. */
#include <criterion/criterion.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "strata.h"

#define OK(x) cr_assert_eq((x), STRATA_OK, "%s -> %s", #x, strata_strerror(x))

typedef struct pair { float d; uint64_t id; } pair;
static int cmp_pair(const void *a, const void *b) {
    const pair *x = a, *y = b;
    if (x->d != y->d) return x->d < y->d ? -1 : 1;
    return x->id < y->id ? -1 : x->id > y->id;
}
static int even_only(void *ctx, uint64_t id) { (void)ctx; return id % 2 == 0; }

Test(flat, table_topk_matches_a_full_sort) {
    char path[64];
    snprintf(path, sizeof path, "/tmp/strata-flat-%d.db", (int)getpid());
    unlink(path);
    enum { N = 3000, D = 37 };
    static float data[N][D];
    uint64_t seed = 12345;
    for (int i = 0; i < N; i++)
        for (int j = 0; j < D; j++) {
            seed = seed * 6364136223846793005ull + 1442695040888963407ull;
            data[i][j] = (float)((seed >> 40) % 2000) / 1000.0f - 1.0f;
        }
    strata_db *db;
    OK(strata_open(path, STRATA_CREATE, &db));
    strata_txn *w;
    strata_table *t;
    strata_table_spec spec = { STRATA_KEY_U64, NULL, D };
    OK(strata_begin_write(db, &w));
    OK(strata_table_open_ex(w, "v", &spec, STRATA_CREATE | STRATA_VECTOR, &t));
    for (uint64_t i = 0; i < N; i++) OK(strata_put(t, (strata_slice){ &i, 8 }, (strata_slice){ data[i], sizeof data[i] }));
    OK(strata_commit(w));
    strata_txn *r;
    OK(strata_begin_read(db, &r));
    OK(strata_table_open_ex(r, "v", &spec, STRATA_VECTOR, &t));
    strata_metric ms[3] = { STRATA_METRIC_L2, STRATA_METRIC_IP, STRATA_METRIC_L1 };
    static pair all[N];
    for (int mi = 0; mi < 3; mi++) {
        const float *q = data[17];
        for (uint64_t i = 0; i < N; i++) {
            OK(strata_vec_distance(ms[mi], q, data[i], D, &all[i].d));
            all[i].id = i;
        }
        qsort(all, N, sizeof all[0], cmp_pair);
        strata_hit hits[25];
        size_t n;
        OK(strata_vec_table_topk(t, ms[mi], q, D, 25, NULL, NULL, hits, &n));
        cr_assert_eq(n, 25);
        for (int i = 0; i < 25; i++)
            cr_assert_eq(hits[i].id, all[i].id, "metric %d rank %d: %llu vs %llu", mi, i,
                         (unsigned long long)hits[i].id, (unsigned long long)all[i].id);
        OK(strata_vec_table_topk(t, ms[mi], q, D, 10, even_only, NULL, hits, &n));
        cr_assert_eq(n, 10);
        for (int i = 0; i < 10; i++) cr_assert_eq(hits[i].id % 2, 0);
    }
    strata_hit hits[4];
    size_t n;
    float bad[D];
    memcpy(bad, data[0], sizeof bad);
    cr_assert_eq(strata_vec_table_topk(t, STRATA_METRIC_L2, data[0], D, 0, NULL, NULL, hits, &n), STRATA_EINVAL);
    cr_assert_eq(strata_vec_table_topk(t, STRATA_METRIC_L2, data[0], D, N + 1, NULL, NULL, hits, &n), STRATA_EINVAL);
    cr_assert_eq(strata_vec_table_topk(t, STRATA_METRIC_L2, data[0], D - 1, 4, NULL, NULL, hits, &n), STRATA_EINVAL);
    bad[3] = 0.0f / 0.0f;
    cr_assert_eq(strata_vec_table_topk(t, STRATA_METRIC_L2, bad, D, 4, NULL, NULL, hits, &n), STRATA_EINVAL);
    cr_assert_eq(strata_vec_table_topk(t, STRATA_METRIC_L2, NULL, D, 4, NULL, NULL, hits, &n), STRATA_EINVAL);
    strata_abort(r);
    strata_close(db);
    unlink(path);
}
