/* tests/fractal/ft_util.c - see ft_util.h. */
#include "ft_util.h"

#include <criterion/criterion.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

void tdb_open(tdb *t)
{
    memset(t, 0, sizeof *t);
    strcpy(t->dir, "/tmp/strata_frac_XXXXXX");
    cr_assert_not_null(mkdtemp(t->dir));
    snprintf(t->path, sizeof t->path, "%s/db.strata", t->dir);
    cr_assert_eq(strata_open(t->path, STRATA_CREATE, &t->db), STRATA_OK);
}

void tdb_reopen(tdb *t)
{
    strata_close(t->db);
    t->db = NULL;
    cr_assert_eq(strata_open(t->path, 0, &t->db), STRATA_OK);
}

void tdb_close(tdb *t)
{
    strata_close(t->db);
    t->db = NULL;
    unlink(t->path);
    rmdir(t->dir);
}

strata_txn *tw(tdb *t)
{
    strata_txn *x = NULL;
    cr_assert_eq(strata_begin_write(t->db, &x), STRATA_OK);
    cr_assert_eq(strata_txn_set_durability(x, STRATA_DURABILITY_NONE), STRATA_OK);
    return x;
}

strata_txn *tr(tdb *t)
{
    strata_txn *x = NULL;
    cr_assert_eq(strata_begin_read(t->db, &x), STRATA_OK);
    return x;
}

uint64_t ft_rng(uint64_t *s)
{
    uint64_t z = (*s += 0x9E3779B97F4A7C15ull);
    z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ull;
    z = (z ^ (z >> 27)) * 0x94D049BB133111EBull;
    return z ^ (z >> 31);
}

double ft_unit(uint64_t *s) { return (double)(ft_rng(s) >> 11) / 9007199254740992.0; }

double ft_gauss(uint64_t *s)
{
    double u = ft_unit(s), v = ft_unit(s);
    if (u < 1e-300) u = 1e-300;
    return sqrt(-2.0 * log(u)) * cos(6.283185307179586 * v);
}

float *ft_mixture(size_t n, size_t dim, size_t n_centres, float sigma, uint64_t seed,
                  uint32_t *label)
{
    uint64_t s = seed;
    float *c = malloc(n_centres * dim * sizeof *c), *x = malloc(n * dim * sizeof *x);
    cr_assert(c && x);
    for (size_t i = 0; i < n_centres * dim; i++) c[i] = (float)(ft_unit(&s) * 20 - 10);
    for (size_t i = 0; i < n; i++) {
        size_t k = (size_t)(ft_rng(&s) % n_centres);
        if (label) label[i] = (uint32_t)k;
        for (size_t j = 0; j < dim; j++) x[i * dim + j] = c[k * dim + j] + (float)(sigma * ft_gauss(&s));
    }
    free(c);
    return x;
}

void ft_exact(strata_metric m, const float *q, const float *base, const uint8_t *live, size_t n,
              size_t dim, size_t k, uint64_t *gt)
{
    strata_hit *h = malloc(k * sizeof *h);
    size_t got = 0;
    cr_assert(h);
    for (size_t i = 0; i < n; i++) {
        if (live && !live[i]) continue;
        float d;
        cr_assert_eq(strata_vec_distance(m, q, base + i * dim, dim, &d), STRATA_OK);
        size_t pos = got < k ? got++ : k;
        if (pos == k && !(d < h[k - 1].dist)) continue;
        if (pos == k) pos = k - 1;
        while (pos > 0 && (h[pos - 1].dist > d)) { h[pos] = h[pos - 1]; pos--; }
        h[pos] = (strata_hit){ i, d };
    }
    for (size_t i = 0; i < k; i++) gt[i] = i < got ? h[i].id : UINT64_MAX;
    free(h);
}

double ft_recall(const strata_hit *hits, size_t n_hits, const uint64_t *gt, size_t k)
{
    size_t hit = 0;
    for (size_t i = 0; i < n_hits; i++)
        for (size_t j = 0; j < k; j++)
            if (hits[i].id == gt[j]) { hit++; break; }
    return (double)hit / (double)k;
}

static void print_report(void *ctx, const char *msg)
{
    (void)ctx;
    fprintf(stderr, "fractal check: %s\n", msg);
}

int ft_check(strata_txn *txn, const char *name)
{
    return strata_fractal_check(txn, name, print_report, NULL);
}

void ft_commit_checked(tdb *t, strata_txn *x, const char *name)
{
    cr_assert_eq(ft_check(x, name), STRATA_OK);
    cr_assert_eq(strata_commit(x), STRATA_OK);
    x = tr(t);
    cr_assert_eq(ft_check(x, name), STRATA_OK);
    strata_abort(x);
}

strata_fractal_config ft_config(uint32_t dim, strata_metric m, uint32_t pq_m, uint32_t max_leaf,
                                uint32_t min_leaf, uint32_t fanout, uint32_t depth,
                                uint32_t bufcap, uint32_t flags)
{
    strata_fractal_config c;
    strata_fractal_config_default(&c, dim, m);
    c.pq_m = pq_m; c.max_leaf = max_leaf; c.min_leaf = min_leaf; c.max_fanout = fanout;
    c.max_depth = depth; c.buffer_cap = bufcap; c.flags = flags; c.train_iters = 4;
    return c;
}

strata_fractal *ft_create(strata_txn *x, const char *name, strata_fractal_config c,
                          uint32_t train_size)
{
    strata_fractal *f = NULL;
    c.train_size = train_size;
    cr_assert_eq(strata_fractal_create(x, name, &c, &f), STRATA_OK, "create %s", name);
    return f;
}
