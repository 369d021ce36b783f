/* bench/query/bench_query.c - latency of composite queries (query/) on a
 * blob store of N items (default 100,000) with dim-d embeddings, 2 of 50
 * tags each, 10 namespaces, a derived_from tree (each blob links to one of
 * the 1,000 before it) and 1,000 distinct commit times. Each row runs one
 * query shape R times (different vectors / anchors / tags per repetition) in
 * one read transaction and prints the median and p95 latency, the plan's
 * driver and candidate counts. Similarity is exact unless the row says IVF-PQ
 * (an index over the same embeddings, ids = blob ids). Public API only
 * (strata_dep).
 *
 *   bench_query [-n N] [-d DIM] [-r REPS] [-q]      (-q: N = 10,000, R = 5)
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "strata.h"

enum { NTAGS = 50, NNS = 10, PER_TXN = 100, MAXREPS = 200 };

typedef struct cfg { size_t n, dim, reps; } cfg;

static uint64_t g_clock = 1700000000000ull;
static uint64_t clock_fn(void *ctx) { (void)ctx; return g_clock; }

static uint64_t rnd(uint64_t *s) {
    uint64_t x = *s;
    x ^= x >> 12; x ^= x << 25; x ^= x >> 27;
    *s = x;
    return x * 0x2545F4914F6CDD1Dull;
}

static double now_ms(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec * 1e3 + (double)ts.tv_nsec / 1e6;
}

static void die(const char *what, int rc) {
    fprintf(stderr, "bench_query: %s: %s\n", what, strata_strerror(rc));
    exit(1);
}
#define CHECK(call) do { int rc_ = (call); if (rc_) die(#call, rc_); } while (0)

static void rand_vec(float *v, size_t dim, uint64_t *s) {
    for (size_t i = 0; i < dim; i++) v[i] = (float)((double)(rnd(s) >> 11) / 9007199254740992.0 - 0.5);
}

/* IVF-PQ index over every embedding (ids = blob ids): nlist ~ 4 sqrt(n),
 * m = dim / 4 subspaces (dim / 2 or 1 when 4 does not divide), raw vectors
 * kept for the optional rerank; trained on up to 20,000 of them. */
static void build_ivf(strata_db *db, const cfg *c, const float *all) {
    strata_txn *w;
    strata_ivf *ix;
    uint32_t nlist = 16;
    while ((uint64_t)nlist * nlist < 16 * (uint64_t)c->n) nlist *= 2;
    uint32_t m = c->dim % 4 == 0 ? (uint32_t)c->dim / 4 : c->dim % 2 == 0 ? (uint32_t)c->dim / 2 : 1;
    strata_ivf_config ic = { (uint32_t)c->dim, STRATA_METRIC_L2, nlist, m, 8, STRATA_IVF_RAW, 10, 0, 1 };
    uint64_t *ids = malloc(c->n * sizeof *ids);
    size_t n_train = c->n < 20000 ? c->n : 20000;
    if (!ids) die("malloc", STRATA_ENOMEM);
    for (size_t i = 0; i < c->n; i++) ids[i] = i + 1;
    double t0 = now_ms();
    CHECK(strata_begin_write(db, &w));
    CHECK(strata_txn_set_durability(w, STRATA_DURABILITY_NONE));
    CHECK(strata_ivf_create(w, "embeddings", &ic, &ix));
    CHECK(strata_ivf_train(ix, all, n_train, c->dim, NULL));
    CHECK(strata_ivf_insert_batch(ix, c->n, ids, all, c->dim, NULL));
    strata_ivf_close(ix);
    CHECK(strata_commit(w));
    fprintf(stderr, "IVF-PQ index (nlist %u, m %u, nprobe 8) built in %.1f s\n", nlist, m, (now_ms() - t0) / 1e3);
    free(ids);
}

static void load(strata_db *db, const cfg *c) {
    uint64_t s = 42;
    float *all = malloc(c->n * c->dim * sizeof *all);
    char tag[16], ns[16];
    if (!all) die("malloc", STRATA_ENOMEM);
    double t0 = now_ms();
    for (size_t i = 0; i < c->n;) {
        strata_txn *w;
        g_clock += 1000;
        CHECK(strata_begin_write(db, &w));
        CHECK(strata_txn_set_durability(w, STRATA_DURABILITY_NONE));
        for (size_t j = 0; j < PER_TXN && i < c->n; j++, i++) {
            strata_blob_opts o;
            uint64_t id, content[4] = { i, rnd(&s), rnd(&s), rnd(&s) };
            memset(&o, 0, sizeof o);
            snprintf(ns, sizeof ns, "ns%zu", i % NNS);
            o.ns = ns;
            CHECK(strata_blob_put(w, &o, content, sizeof content, &id));
            for (int t = 0; t < 2; t++) {
                snprintf(tag, sizeof tag, "tag%u", (unsigned)(rnd(&s) % NTAGS));
                CHECK(strata_blob_tag_add(w, id, tag));
            }
            if (id != i + 1) die("blob ids are not 1..n", STRATA_EINVAL);
            float *v = all + i * c->dim;
            rand_vec(v, c->dim, &s);
            CHECK(strata_blob_embed_set(w, id, v, c->dim));
            if (id > 1) {
                uint64_t back = 1 + rnd(&s) % (id - 1 < 1000 ? id - 1 : 1000);
                CHECK(strata_blob_link(w, id, id - back, STRATA_BLOB_DERIVED_FROM, NULL));
            }
        }
        CHECK(strata_commit(w));
    }
    fprintf(stderr, "loaded %zu blobs (dim %zu) in %.1f s\n", c->n, c->dim, (now_ms() - t0) / 1e3);
    build_ivf(db, c, all);
    free(all);
}

/* Query shapes: bit flags of what each row sets. */
enum { S_VEC = 1, S_REC = 2, S_LIN = 4, S_TAGS = 8, F_NS = 16, F_REQ = 32, F_WIN = 64, F_EXC = 128,
       F_LINF = 256, X_IVF = 512, X_IVFH = 1024, X_RRF = 0x1000 };

static strata_ivf *g_ix;   /* the index opened once in the bench's read transaction */

typedef struct shape { const char *name; unsigned what; } shape;

static const shape shapes[] = {
    { "similarity alone (k=10, exact)", S_VEC },
    { "recency alone", S_REC },
    { "lineage alone (3 hops, both dirs)", S_LIN },
    { "tags alone (2 preferred)", S_TAGS },
    { "filter: namespace (+recency)", S_REC | F_NS },
    { "filter: required tag (+recency)", S_REC | F_REQ },
    { "filter: time window 1% (+recency)", S_REC | F_WIN },
    { "all 4 signals, no filter", S_VEC | S_REC | S_LIN | S_TAGS },
    { "all 4 signals + ns, tag, window, excl", S_VEC | S_REC | S_LIN | S_TAGS | F_NS | F_REQ | F_WIN | F_EXC },
    { "all 4 signals + lineage filter", S_VEC | S_REC | S_LIN | S_TAGS | F_LINF },
    { "all 4 signals, RRF fusion", S_VEC | S_REC | S_LIN | S_TAGS | X_RRF },
    { "similarity via IVF-PQ by name (opens it)", S_VEC | X_IVF },
    { "similarity via IVF-PQ open handle", S_VEC | X_IVFH },
    { "all 4 signals via IVF-PQ handle", S_VEC | S_REC | S_LIN | S_TAGS | X_IVFH },
    { "all 4 signals via IVF-PQ handle + ns", S_VEC | S_REC | S_LIN | S_TAGS | F_NS | X_IVFH },
};

static strata_query *make(unsigned what, const cfg *c, uint64_t *s, float *v) {
    strata_query *q;
    char t[16];
    CHECK(strata_query_create(&q));
    if (what & S_VEC) {
        rand_vec(v, c->dim, s);
        CHECK(strata_query_set_vector(q, STRATA_METRIC_L2, v, c->dim, 10, 1.0, 0));
    }
    if (what & S_REC) CHECK(strata_query_set_recency(q, 0, 3600 * 1000));
    if (what & S_LIN)
        CHECK(strata_query_set_anchor(q, 1 + rnd(s) % c->n, STRATA_BLOB_BOTH, 0, 3,
                                      (what & F_LINF) ? STRATA_QUERY_LINEAGE_FILTER : 0));
    if (what & S_TAGS)
        for (int i = 0; i < 2; i++) {
            snprintf(t, sizeof t, "tag%u", (unsigned)(rnd(s) % NTAGS));
            CHECK(strata_query_prefer_tag(q, t));
        }
    if (what & F_NS) {
        snprintf(t, sizeof t, "ns%u", (unsigned)(rnd(s) % NNS));
        CHECK(strata_query_set_namespace(q, t));
    }
    if (what & F_REQ) {
        snprintf(t, sizeof t, "tag%u", (unsigned)(rnd(s) % NTAGS));
        CHECK(strata_query_require_tag(q, t));
    }
    if (what & F_EXC) {
        snprintf(t, sizeof t, "tag%u", (unsigned)(rnd(s) % NTAGS));
        CHECK(strata_query_exclude_tag(q, t));
    }
    if (what & F_WIN) {
        uint64_t span = (uint64_t)(c->n / PER_TXN) * 1000, lo = g_clock - span + rnd(s) % (span - span / 100);
        CHECK(strata_query_set_window(q, lo << 16, (lo + span / 100) << 16));
    }
    if (what & X_RRF) CHECK(strata_query_set_fusion(q, STRATA_QUERY_FUSE_RRF, 0));
    if (what & X_IVF) CHECK(strata_query_set_ivf(q, "embeddings", 0, 0, STRATA_QUERY_IVF_REQUIRED));
    if (what & X_IVFH) CHECK(strata_query_set_ivf_handle(q, g_ix, 0, 0));
    return q;
}

static int dbl_cmp(const void *a, const void *b) {
    double x = *(const double *)a, y = *(const double *)b;
    return (x > y) - (x < y);
}

static const char *const drv[] = { "all", "tag", "namespace", "window", "lineage", "knn", "newest", "support" };

static void row(strata_txn *r, const shape *sh, const cfg *c) {
    double lat[MAXREPS];
    strata_query_result res[10];
    strata_query_explain ex;
    uint64_t s = 7, cand = 0;
    float *v = malloc(c->dim * sizeof *v);
    if (!v) die("malloc", STRATA_ENOMEM);
    for (size_t i = 0; i < c->reps; i++) {
        strata_query *q = make(sh->what, c, &s, v);
        size_t n;
        double t0 = now_ms();
        CHECK(strata_query_run(r, q, res, 10, &n, &ex));
        lat[i] = now_ms() - t0;
        cand += ex.n_filtered;
        strata_query_free(q);
    }
    qsort(lat, c->reps, sizeof *lat, dbl_cmp);
    printf("| %-40s | %8.2f | %8.2f | %-9s | %9.0f |\n", sh->name, lat[c->reps / 2],
           lat[(c->reps * 95) / 100 < c->reps ? (c->reps * 95) / 100 : c->reps - 1], drv[ex.driver],
           (double)cand / (double)c->reps);
    free(v);
}

int main(int argc, char **argv) {
    cfg c = { 100000, 64, 20 };
    int opt;
    while ((opt = getopt(argc, argv, "n:d:r:q")) != -1) {
        if (opt == 'n') c.n = (size_t)strtoull(optarg, NULL, 10);
        else if (opt == 'd') c.dim = (size_t)strtoull(optarg, NULL, 10);
        else if (opt == 'r') c.reps = (size_t)strtoull(optarg, NULL, 10);
        else if (opt == 'q') { c.n = 10000; c.reps = 5; }
        else { fprintf(stderr, "usage: bench_query [-n N] [-d DIM] [-r REPS] [-q]\n"); return 2; }
    }
    if (c.n < 1000 || c.dim == 0 || c.reps == 0 || c.reps > MAXREPS) {
        fprintf(stderr, "bench_query: need n >= 1000, dim >= 1, 1 <= reps <= %d\n", MAXREPS);
        return 2;
    }
    char dir[] = "/tmp/strata_bq_XXXXXX", path[64];
    if (!mkdtemp(dir)) { perror("mkdtemp"); return 1; }
    snprintf(path, sizeof path, "%s/db.strata", dir);
    strata_db *db;
    CHECK(strata_open(path, STRATA_CREATE, &db));
    CHECK(strata_set_clock(db, clock_fn, NULL));
    load(db, &c);
    strata_txn *r;
    CHECK(strata_begin_read(db, &r));
    CHECK(strata_ivf_open(r, "embeddings", &g_ix));
    printf("composite query latency: %zu blobs, dim %zu, 10 results, %zu runs per row (ms)\n\n", c.n, c.dim,
           c.reps);
    printf("| %-40s | %8s | %8s | %-9s | %9s |\n", "query", "median", "p95", "driver", "cands");
    printf("|------------------------------------------|----------|----------|-----------|-----------|\n");
    for (size_t i = 0; i < sizeof shapes / sizeof shapes[0]; i++) row(r, &shapes[i], &c);
    strata_ivf_close(g_ix);
    strata_abort(r);
    strata_close(db);
    unlink(path);
    rmdir(dir);
    return 0;
}
