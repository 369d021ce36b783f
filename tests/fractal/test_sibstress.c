/* tests/fractal/test_sibstress.c - randomized stress of the leaf splits'
 * sibling moves and the per-node sq: insert / upsert / delete / runs of
 * deletes / train over drifting, far-apart groups (optionally of very
 * different scales, zero vectors, duplicates) with small leaves, random
 * min_leaf, fan-out, depth, buffer_cap, metric, KEEP_RAW, shared codebook and
 * retrain policy; the full check every STRESS_CHK (250) operations, at every
 * commit and after reopens, some transactions aborted; at the end every id's
 * presence and time stamp, and (KEEP_RAW, L2) each sampled vector found by
 * an exhaustive search. The environment sets STRESS_SEED (first seed),
 * STRESS_N (seeds), STRESS_OPS (operations per seed), STRESS_V (print each
 * configuration): e.g. STRESS_N=3000 for a long run. */
#include <criterion/criterion.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "ft_util.h"

static tdb g;
static void setup(void) { tdb_open(&g); }
static void teardown(void) { tdb_close(&g); }
TestSuite(fractal_sibstress, .init = setup, .fini = teardown);

enum { MAXD = 16, N_IDS = 1500, NG = 12 };

typedef struct model { uint8_t live[N_IDS]; float v[N_IDS][MAXD]; uint64_t ts[N_IDS]; } model;

static uint64_t envu(const char *k, uint64_t d)
{
    const char *v = getenv(k);
    return v && *v ? strtoull(v, NULL, 10) : d;
}

static void one(uint64_t seed, int xt, int verbose)
{
    uint64_t s = seed * 7919 + 17;
    uint32_t dims[] = { 4, 8, 16 };
    uint32_t dim = dims[ft_rng(&s) % 3];
    uint32_t pq_m = dim / (1u << (ft_rng(&s) % 2 + 1));
    uint32_t max_leaf = xt ? 4 + (uint32_t)(ft_rng(&s) % 9) : 8 + (uint32_t)(ft_rng(&s) % 25);
    uint32_t min_leaf = (uint32_t)(ft_rng(&s) % 5);
    if (min_leaf >= max_leaf / 2) min_leaf = max_leaf / 2 - 1;
    uint32_t fanout = 3 + (uint32_t)(ft_rng(&s) % 6);
    uint32_t depth = 2 + (uint32_t)(ft_rng(&s) % 3);
    uint32_t bufcap = 1 + (uint32_t)(ft_rng(&s) % 8);
    if (bufcap > max_leaf) bufcap = max_leaf;
    uint32_t flags = ft_rng(&s) % 2 ? STRATA_FRACTAL_KEEP_RAW : 0;
    if (ft_rng(&s) % 4 == 0) flags |= STRATA_FRACTAL_SHARED_CODEBOOK;
    strata_metric metric = (strata_metric)(ft_rng(&s) % 3);
    int scalemix = xt ? 2 * (ft_rng(&s) % 2) : ft_rng(&s) % 3 == 0;
    strata_fractal_config c = ft_config(dim, metric, pq_m, max_leaf, min_leaf, fanout, depth, bufcap, flags);
    c.train_size = ft_rng(&s) % 5 == 0 ? 0 : 20 + (uint32_t)(ft_rng(&s) % 200);
    if (ft_rng(&s) % 3 == 0) c.retrain_growth = 50 + (uint32_t)(ft_rng(&s) % 100);
    char desc[256];
    snprintf(desc, sizeof desc, "seed %llu dim %u m %u leaf %u min %u fan %u depth %u buf %u flags %u metric %d train %u regrow %u scalemix %d",
             (unsigned long long)seed, dim, pq_m, max_leaf, min_leaf, fanout, depth, bufcap, flags,
             (int)metric, c.train_size, c.retrain_growth, scalemix);
    if (verbose) fprintf(stderr, "%s\n", desc);
    float cen[NG][MAXD], sig[NG], vel[NG][MAXD];
    for (int k = 0; k < NG; k++) {
        double sc = scalemix == 2 ? pow(10.0, (double)(ft_rng(&s) % 13) - 6.0)
                  : scalemix ? pow(10.0, (double)(ft_rng(&s) % 7) - 3.0) : 1.0;
        for (uint32_t j = 0; j < dim; j++) {
            cen[k][j] = (float)((ft_unit(&s) * 2 - 1) * 500 * sc);
            vel[k][j] = (float)((ft_unit(&s) * 2 - 1) * 0.5 * sc);
        }
        sig[k] = (float)(pow(10.0, ft_unit(&s) * 2 - 1) * sc);
        if (xt && ft_rng(&s) % 4 == 0) sig[k] = 0;   /* duplicates */
    }
    model *m = calloc(1, sizeof *m), *saved = malloc(sizeof *m);
    cr_assert(m && saved);
    strata_txn *x = tw(&g);
    cr_assert_eq(strata_fractal_create(x, "z", &c, NULL), STRATA_OK, "%s", desc);
    cr_assert_eq(strata_commit(x), STRATA_OK);
    uint64_t n_ops = envu("STRESS_OPS", 3000), op = 0;
    int round = 0;
    while (op < n_ops) {
        int do_abort = ft_rng(&s) % 8 == 0;
        memcpy(saved, m, sizeof *m);
        strata_fractal *f = NULL;
        x = tw(&g);
        cr_assert_eq(strata_fractal_open(x, "z", &f), STRATA_OK, "%s round %d", desc, round);
        int per = 50 + (int)(ft_rng(&s) % 400);
        for (int i = 0; i < per && op < n_ops; i++, op++) {
            int grp = (int)((op / 150 + (ft_rng(&s) % 4 == 0 ? ft_rng(&s) % 3 : 0)) % NG);
            for (uint32_t j = 0; j < dim; j++) cen[grp][j] += vel[grp][j];
            uint64_t r = ft_rng(&s) % 100, id = ft_rng(&s) % N_IDS;
            int rc;
            if (r < 60) {
                float v[MAXD];
                for (uint32_t j = 0; j < dim; j++) v[j] = cen[grp][j] + sig[grp] * (float)ft_gauss(&s);
                if (ft_rng(&s) % 50 == 0) memset(v, 0, sizeof v);   /* zero vectors */
                uint64_t ts = op;
                rc = strata_fractal_add(f, id, v, dim, ts);
                cr_assert_eq(rc, STRATA_OK, "%s op %llu rc %d", desc, (unsigned long long)op, rc);
                m->live[id] = 1;
                memcpy(m->v[id], v, sizeof v);
                m->ts[id] = ts;
            } else if (r < 97) {
                rc = strata_fractal_delete(f, id);
                cr_assert_eq(rc, m->live[id] ? STRATA_OK : STRATA_NOTFOUND, "%s op %llu rc %d", desc,
                             (unsigned long long)op, rc);
                m->live[id] = 0;
            } else if (r < 98) {
                rc = strata_fractal_train(f, 200);
                cr_assert(rc == STRATA_OK || rc == STRATA_EINVAL, "%s op %llu train rc %d", desc,
                          (unsigned long long)op, rc);
            } else {   /* delete a run of live ids: thins leaves, merges */
                for (uint64_t d = 0; d < 40; d++) {
                    uint64_t k = (id + d) % N_IDS;
                    if (!m->live[k]) continue;
                    cr_assert_eq(strata_fractal_delete(f, k), STRATA_OK, "%s op %llu", desc, (unsigned long long)op);
                    m->live[k] = 0;
                }
            }
            if (op % envu("STRESS_CHK", 250) == envu("STRESS_CHK", 250) - 1)
                cr_assert_eq(ft_check(x, "z"), STRATA_OK, "%s op %llu", desc, (unsigned long long)op);
        }
        strata_fractal_close(f);
        if (do_abort) {
            strata_abort(x);
            memcpy(m, saved, sizeof *m);
        } else {
            cr_assert_eq(ft_check(x, "z"), STRATA_OK, "%s round %d", desc, round);
            cr_assert_eq(strata_commit(x), STRATA_OK);
            if (round % 5 == 2) {
                tdb_reopen(&g);
                x = tr(&g);
                cr_assert_eq(ft_check(x, "z"), STRATA_OK, "%s round %d after reopen", desc, round);
                strata_abort(x);
            }
        }
        round++;
    }
    x = tr(&g);
    strata_fractal *f = NULL;
    cr_assert_eq(strata_fractal_open(x, "z", &f), STRATA_OK);
    cr_assert_eq(ft_check(x, "z"), STRATA_OK, "%s final", desc);
    strata_fractal_info info;
    cr_assert_eq(strata_fractal_info_get(f, &info), STRATA_OK);
    uint64_t n_live = 0;
    for (int i = 0; i < N_IDS; i++) n_live += m->live[i];
    cr_assert_eq(info.n_vectors, n_live, "%s", desc);
    for (int i = 0; i < N_IDS; i++) {
        uint64_t ts;
        int rc = strata_fractal_get(f, (uint64_t)i, NULL, dim, &ts);
        cr_assert_eq(rc, m->live[i] ? STRATA_OK : STRATA_NOTFOUND, "%s id %d", desc, i);
        if (m->live[i]) cr_assert_eq(ts, m->ts[i], "%s id %d", desc, i);
    }
    if (info.codebook_gen && (flags & STRATA_FRACTAL_KEEP_RAW) && n_live) {
        strata_fractal_params p = { .beam = 100000, .n_probe = 100000, .rerank = 100000 };
        strata_hit h[5];
        size_t got;
        for (int i = 0; i < N_IDS; i += 7) {
            if (!m->live[i] || metric != STRATA_METRIC_L2) continue;
            cr_assert_eq(strata_fractal_search(f, m->v[i], dim, 5, &p, h, &got), STRATA_OK);
            int found = 0;
            for (size_t j = 0; j < got; j++) found |= h[j].dist <= 1e-6f * (1 + fabsf(m->v[i][0]));
            cr_assert(found, "%s: id %d not found by exhaustive search", desc, i);
        }
    }
    if (info.codebook_gen && n_live) {   /* default params search */
        strata_hit h[10];
        size_t got;
        cr_assert_eq(strata_fractal_search(f, m->v[0], dim, 10, NULL, h, &got), STRATA_OK);
    }
    strata_fractal_close(f);
    strata_abort(x);
    x = tw(&g);
    cr_assert_eq(strata_fractal_drop(x, "z"), STRATA_OK);
    cr_assert_eq(strata_commit(x), STRATA_OK);
    free(m); free(saved);
}

/* Leaves of 8..32, groups of one scale or 1e-3..1e3. */
Test(fractal_sibstress, many_seeds)
{
    uint64_t first = envu("STRESS_SEED", 1), n = envu("STRESS_N", 12);
    for (uint64_t sd = first; sd < first + n; sd++) one(sd, 0, envu("STRESS_V", 0) != 0);
}

/* Leaves of 4..12, groups of one scale or 1e-6..1e6, some all duplicates. */
Test(fractal_sibstress, extreme_seeds)
{
    uint64_t first = envu("STRESS_SEED", 1), n = envu("STRESS_N", 12);
    for (uint64_t sd = first; sd < first + n; sd++) one(sd, 1, envu("STRESS_V", 0) != 0);
}

/* Seeds that found bugs: 116 (a cascade cancelling most of a leaf's sq), 299
 * (a retraining doing the same), 7285 (a leaf's sq falling far below a
 * past 1e12 in moderate steps), 8151 (the same across reopens). */
Test(fractal_sibstress, seeds_that_found_bugs)
{
    one(116, 0, 0);
    one(299, 0, 0);
    one(7285, 0, 0);
    one(8151, 0, 0);
}
