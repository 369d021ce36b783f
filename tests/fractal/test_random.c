/* tests/fractal/test_random.c - seeded random insert / delete / upsert /
 * retrain / reopen sequences against an in-memory model, with the full
 * invariant check after every commit, some aborted transactions, and each
 * surviving vector found at distance 0 by an exhaustive search at the end.
 * The seed is printed on failure so a run can be replayed. */
#include <criterion/criterion.h>
#include <stdlib.h>
#include <string.h>

#include "ft_util.h"

static tdb g;
static void setup(void) { tdb_open(&g); }
static void teardown(void) { tdb_close(&g); }
TestSuite(fractal_random, .init = setup, .fini = teardown);

enum { N_IDS = 700, DIM = 8 };

typedef struct model { uint8_t live[N_IDS]; float v[N_IDS][DIM]; uint64_t ts[N_IDS]; } model;

static void rand_vec(uint64_t *s, float *v, int region)
{
    for (int j = 0; j < DIM; j++) v[j] = (float)(region * 3 + ft_gauss(s));
}

static void run(uint64_t seed, uint32_t flags, strata_metric metric)
{
    uint64_t s = seed;
    model *m = calloc(1, sizeof *m), *saved = malloc(sizeof *m);
    cr_assert(m && saved);
    strata_txn *x = tw(&g);
    strata_fractal_config c = ft_config(DIM, metric, 4, 24, 5, 4, 6, 6, flags);
    c.train_size = 150;
    cr_assert_eq(strata_fractal_create(x, "r", &c, NULL), STRATA_OK);
    cr_assert_eq(strata_commit(x), STRATA_OK);
    for (int round = 0; round < 30; round++) {
        int do_abort = ft_rng(&s) % 6 == 0;
        memcpy(saved, m, sizeof *m);
        strata_fractal *f = NULL;
        x = tw(&g);
        cr_assert_eq(strata_fractal_open(x, "r", &f), STRATA_OK, "seed %llu round %d", (unsigned long long)seed, round);
        int region = round / 6;   /* the data drifts to a new region every 6 rounds */
        int n_ops = 20 + (int)(ft_rng(&s) % 60);
        for (int op = 0; op < n_ops; op++) {
            uint64_t id = ft_rng(&s) % N_IDS, r = ft_rng(&s) % 10;
            int rc;
            if (r < 6) {                          /* insert or upsert */
                float v[DIM];
                rand_vec(&s, v, region);
                uint64_t ts = (uint64_t)round * 1000 + (uint64_t)op;
                rc = strata_fractal_add(f, id, v, DIM, ts);
                cr_assert_eq(rc, STRATA_OK, "seed %llu round %d op %d", (unsigned long long)seed, round, op);
                m->live[id] = 1;
                memcpy(m->v[id], v, sizeof v);
                m->ts[id] = ts;
            } else if (r < 9) {                   /* delete */
                rc = strata_fractal_delete(f, id);
                cr_assert_eq(rc, m->live[id] ? STRATA_OK : STRATA_NOTFOUND,
                             "seed %llu round %d op %d rc %d", (unsigned long long)seed, round, op, rc);
                m->live[id] = 0;
            } else if (ft_rng(&s) % 8 == 0) {     /* occasional retrain */
                rc = strata_fractal_train(f, 300);
                cr_assert(rc == STRATA_OK || rc == STRATA_EINVAL);   /* EINVAL: empty */
            }
        }
        strata_fractal_close(f);
        if (do_abort) {
            strata_abort(x);
            memcpy(m, saved, sizeof *m);
            continue;
        }
        cr_assert_eq(ft_check(x, "r"), STRATA_OK, "seed %llu round %d", (unsigned long long)seed, round);
        cr_assert_eq(strata_commit(x), STRATA_OK);
        if (round % 7 == 3) tdb_reopen(&g);
    }
    /* the final state equals the model */
    x = tr(&g);
    strata_fractal *f = NULL;
    cr_assert_eq(strata_fractal_open(x, "r", &f), STRATA_OK);
    cr_assert_eq(ft_check(x, "r"), STRATA_OK);
    strata_fractal_info info;
    cr_assert_eq(strata_fractal_info_get(f, &info), STRATA_OK);
    uint64_t n_live = 0;
    for (int i = 0; i < N_IDS; i++) n_live += m->live[i];
    cr_assert_eq(info.n_vectors, n_live);
    strata_fractal_params p = { .beam = 10000, .n_probe = 10000, .rerank = (flags & STRATA_FRACTAL_KEEP_RAW) ? 200 : 0 };
    for (int i = 0; i < N_IDS; i++) {
        uint64_t ts;
        int rc = strata_fractal_get(f, (uint64_t)i, NULL, DIM, &ts);
        cr_assert_eq(rc, m->live[i] ? STRATA_OK : STRATA_NOTFOUND, "id %d", i);
        if (!m->live[i]) continue;
        cr_assert_eq(ts, m->ts[i]);
        if (flags & STRATA_FRACTAL_KEEP_RAW) {
            float v[DIM];
            cr_assert_eq(strata_fractal_get(f, (uint64_t)i, v, DIM, NULL), STRATA_OK);
            cr_assert_eq(memcmp(v, m->v[i], sizeof v), 0);
            strata_hit h[5];
            size_t got;
            cr_assert_eq(strata_fractal_search(f, m->v[i], DIM, 5, &p, h, &got), STRATA_OK);
            int found = 0;
            for (size_t j = 0; j < got; j++) found |= h[j].id == (uint64_t)i && h[j].dist <= 1e-6f;
            cr_assert(found, "seed %llu: id %d not found by exhaustive search", (unsigned long long)seed, i);
        }
    }
    strata_fractal_close(f);
    strata_abort(x);
    free(m); free(saved);
}

Test(fractal_random, l2_raw_seed1) { run(1, STRATA_FRACTAL_KEEP_RAW, STRATA_METRIC_L2); }
Test(fractal_random, l2_raw_seed2) { run(2, STRATA_FRACTAL_KEEP_RAW, STRATA_METRIC_L2); }
Test(fractal_random, cosine_raw_seed3) { run(3, STRATA_FRACTAL_KEEP_RAW, STRATA_METRIC_COSINE); }
Test(fractal_random, l2_noraw_seed4) { run(4, 0, STRATA_METRIC_L2); }
Test(fractal_random, ip_noraw_seed5) { run(5, 0, STRATA_METRIC_IP); }
