/* bench/fractal/bench_fractal.c - the drift scenario of docs/FRACTAL.md.
 * A data set (siftsmall by default, or a seeded Gaussian mixture) is ordered
 * by the cluster of a k-means on it, so new regions appear over time, and
 * inserted in ten slices. After each slice: recall@10 (exact ground truth on
 * the vectors present) and single-thread QPS of
 *   fractal      the fractal index, default config (buffer_cap 8), one
 *                shared codebook trained on the first tenth, never retrained
 *                (rerank 100, PQ only, and the high-recall setting hr =
 *                n_probe 16 + rerank 50); fractal32: the same with
 *                buffer_cap 32 (the default before 2026-11-24: more buffered
 *                vectors to scan exactly), hr only; fractal_ps: per-subspace
 *                codebooks, never retrained (PQ only); fractal_g:
 *                per-subspace codebooks retrained automatically
 *                (retrain_growth 100, PQ only);
 *   ivf_fixed    strata IVF-PQ trained on the first tenth (rerank / PQ only);
 *   ivf_retrain  strata IVF-PQ retrained on everything present (the ceiling);
 *   faiss_fixed  FAISS IndexIVFPQ trained on the first tenth (optional);
 *   hnsw         hnswlib built incrementally (optional).
 * The hr columns and hnswlib are measured in turn, three times each, best
 * QPS kept (the machine is shared: paired runs make their ratios fair).
 * Then insert throughput (fractal vs hnswlib) and the fractal's delete
 * throughput and recall after deleting a random half.
 * Usage: bench_fractal [DATA_DIR | --synthetic N]   (output: one table) */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "strata.h"
#ifdef HAVE_HNSWLIB
#include "ann_ext.h"
#elif defined(HAVE_FAISS)
#include "ann_ext.h"
#endif

enum { K = 10, NQ_MAX = 1000, DRIFT_K = 20 };

static double now(void)
{
    struct timespec t;
    clock_gettime(CLOCK_MONOTONIC, &t);
    return (double)t.tv_sec + 1e-9 * (double)t.tv_nsec;
}

static float *read_fvecs(const char *path, size_t *n, size_t *dim)
{
    FILE *fp = fopen(path, "rb");
    if (!fp) return NULL;
    int32_t d;
    if (fread(&d, 4, 1, fp) != 1 || d <= 0) { fclose(fp); return NULL; }
    fseek(fp, 0, SEEK_END);
    long sz = ftell(fp);
    fseek(fp, 0, SEEK_SET);
    size_t rec = 4 + 4 * (size_t)d, cnt = (size_t)sz / rec;
    float *x = malloc(cnt * (size_t)d * sizeof *x);
    for (size_t i = 0; x && i < cnt; i++)
        if (fread(&d, 4, 1, fp) != 1 || fread(x + i * (size_t)d, 4, (size_t)d, fp) != (size_t)d) {
            free(x); x = NULL;
        }
    fclose(fp);
    *n = cnt; *dim = (size_t)d;
    return x;
}

static uint64_t rng(uint64_t *s)
{
    uint64_t z = (*s += 0x9E3779B97F4A7C15ull);
    z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ull;
    z = (z ^ (z >> 27)) * 0x94D049BB133111EBull;
    return z ^ (z >> 31);
}

static float *mixture(size_t n, size_t dim, uint64_t seed)
{
    uint64_t s = seed;
    size_t nc = 200;
    float *c = malloc(nc * dim * sizeof *c), *x = malloc(n * dim * sizeof *x);
    for (size_t i = 0; i < nc * dim; i++) c[i] = (float)((double)(rng(&s) >> 11) / 9007199254740992.0 * 100);
    for (size_t i = 0; i < n; i++) {
        size_t k = rng(&s) % nc;
        double sig = 3 + (double)(k % 5) * 2;
        for (size_t j = 0; j < dim; j++) {
            double u = ((double)(rng(&s) >> 11) + 1) / 9007199254740993.0, v = (double)(rng(&s) >> 11) / 9007199254740992.0;
            x[i * dim + j] = c[k * dim + j] + (float)(sig * sqrt(-2 * log(u)) * cos(6.283185307179586 * v));
        }
    }
    free(c);
    return x;
}

static float l2(const float *a, const float *b, size_t d)
{
    float s = 0;
    for (size_t i = 0; i < d; i++) { float t = a[i] - b[i]; s += t * t; }
    return s;
}

/* Order rows by the cluster of a small k-means: the drift. */
static uint32_t *drift_order(const float *x, size_t n, size_t dim)
{
    float *c = malloc(DRIFT_K * dim * sizeof *c);
    uint32_t *lab = malloc(n * sizeof *lab), *ord = malloc(n * sizeof *ord);
    double *acc = malloc(DRIFT_K * dim * sizeof *acc);
    size_t cnt[DRIFT_K];
    for (size_t k = 0; k < DRIFT_K; k++) memcpy(c + k * dim, x + (k * n / DRIFT_K) * dim, dim * sizeof *c);
    for (int it = 0; it < 10; it++) {
        memset(acc, 0, DRIFT_K * dim * sizeof *acc);
        memset(cnt, 0, sizeof cnt);
        for (size_t i = 0; i < n; i++) {
            uint32_t b = 0;
            float bd = l2(x + i * dim, c, dim);
            for (uint32_t k = 1; k < DRIFT_K; k++) {
                float d = l2(x + i * dim, c + k * dim, dim);
                if (d < bd) { bd = d; b = k; }
            }
            lab[i] = b; cnt[b]++;
            for (size_t j = 0; j < dim; j++) acc[b * dim + j] += x[i * dim + j];
        }
        for (size_t k = 0; k < DRIFT_K; k++)
            for (size_t j = 0; cnt[k] && j < dim; j++) c[k * dim + j] = (float)(acc[k * dim + j] / (double)cnt[k]);
    }
    size_t pos = 0;
    for (uint32_t k = 0; k < DRIFT_K; k++)
        for (size_t i = 0; i < n; i++) if (lab[i] == k) ord[pos++] = (uint32_t)i;
    free(c); free(lab); free(acc);
    return ord;
}

/* Exact top-K over the rows flagged present. */
static void ground_truth(const float *x, const uint8_t *present, size_t n, size_t dim, const float *q,
                         size_t nq, uint64_t *gt)
{
    for (size_t qi = 0; qi < nq; qi++) {
        float bd[K];
        uint64_t bi[K];
        size_t got = 0;
        for (size_t i = 0; i < n; i++) {
            if (!present[i]) continue;
            float d = l2(q + qi * dim, x + i * dim, dim);
            if (got == K && d >= bd[K - 1]) continue;
            size_t p = got < K ? got++ : K - 1;
            while (p > 0 && bd[p - 1] > d) { bd[p] = bd[p - 1]; bi[p] = bi[p - 1]; p--; }
            bd[p] = d; bi[p] = i;
        }
        for (size_t j = 0; j < K; j++) gt[qi * K + j] = j < got ? bi[j] : UINT64_MAX;
    }
}

static double recall_of(const uint64_t *ids, size_t n, const uint64_t *gt)
{
    size_t h = 0;
    for (size_t i = 0; i < n; i++)
        for (size_t j = 0; j < K; j++) if (ids[i] == gt[j]) { h++; break; }
    return (double)h / K;
}

typedef struct result { double recall, qps; } result;

/* The searchers: each fills ids (<= K) for one query. */
typedef size_t (*search_fn)(void *ctx, const float *q, uint64_t *ids);

static result measure(search_fn fn, void *ctx, const float *qs, size_t nq, size_t dim, const uint64_t *gt)
{
    uint64_t ids[K];
    double r = 0;
    for (size_t i = 0; i < nq; i++) r += recall_of(ids, fn(ctx, qs + i * dim, ids), gt + i * K);
    int reps = 0;
    double t0 = now(), t;
    do {
        for (size_t i = 0; i < nq; i++) fn(ctx, qs + i * dim, ids);
        reps++;
    } while ((t = now() - t0) < 0.3);
    return (result){ r / (double)nq, (double)(reps * nq) / t };
}

typedef struct fctx { strata_fractal *f; strata_fractal_params p; size_t dim; } fctx;
static size_t frac_fn(void *c, const float *q, uint64_t *ids)
{
    fctx *x = c;
    strata_hit h[K];
    size_t n = 0;
    if (strata_fractal_search(x->f, q, x->dim, K, &x->p, h, &n) != STRATA_OK) return 0;
    for (size_t i = 0; i < n; i++) ids[i] = h[i].id;
    return n;
}

typedef struct ictx { strata_ivf *ix; strata_ivf_params p; size_t dim; } ictx;
static size_t ivf_fn(void *c, const float *q, uint64_t *ids)
{
    ictx *x = c;
    strata_hit h[K];
    size_t n = 0;
    if (strata_ivf_search(x->ix, q, x->dim, K, &x->p, h, &n) != STRATA_OK) return 0;
    for (size_t i = 0; i < n; i++) ids[i] = h[i].id;
    return n;
}

#ifdef HAVE_HNSWLIB
static size_t hnsw_fn(void *c, const float *q, uint64_t *ids) { return hnsw_search(c, q, K, ids); }
#endif
#ifdef HAVE_FAISS
static size_t faiss_fn(void *c, const float *q, uint64_t *ids) { return faiss_ivfpq_search(c, q, K, ids); }
#endif

#define CHECK(x) do { int rc_ = (x); if (rc_ != STRATA_OK) { \
    fprintf(stderr, "%s:%d: %s -> %s\n", __FILE__, __LINE__, #x, strata_strerror(rc_)); exit(1); } } while (0)

static strata_ivf_config ivf_cfg(size_t dim, size_t n)
{
    strata_ivf_config c = { .dim = (uint32_t)dim, .metric = STRATA_METRIC_L2,
                            .nlist = (uint32_t)(n >= 40000 ? 256 : 64), .m = (uint32_t)dim / 4,
                            .nprobe = 8, .flags = STRATA_IVF_RAW, .seed = 1 };
    return c;
}

/* A fresh IVF-PQ over rows ord[0..hi), trained on rows ord[0..train_hi). */
static strata_ivf *ivf_build(strata_db *db, const char *name, const float *x, const uint32_t *ord,
                             size_t dim, size_t train_hi, size_t lo, size_t hi, size_t n_total,
                             strata_txn **txn_out)
{
    strata_txn *t;
    strata_ivf *ix = NULL;
    CHECK(strata_begin_write(db, &t));
    CHECK(strata_txn_set_durability(t, STRATA_DURABILITY_NONE));
    if (lo == 0) {
        strata_ivf_config c = ivf_cfg(dim, n_total);
        strata_ivf_drop(t, name);
        CHECK(strata_ivf_create(t, name, &c, &ix));
        float *tr = malloc(train_hi * dim * sizeof *tr);
        for (size_t i = 0; i < train_hi; i++) memcpy(tr + i * dim, x + (size_t)ord[i] * dim, dim * 4);
        CHECK(strata_ivf_train(ix, tr, train_hi, dim, NULL));
        free(tr);
    } else {
        CHECK(strata_ivf_open(t, name, &ix));
    }
    float *buf = malloc((hi - lo) * dim * sizeof *buf);
    uint64_t *ids = malloc((hi - lo) * sizeof *ids);
    for (size_t i = lo; i < hi; i++) {
        ids[i - lo] = ord[i];
        memcpy(buf + (i - lo) * dim, x + (size_t)ord[i] * dim, dim * 4);
    }
    CHECK(strata_ivf_insert_batch(ix, hi - lo, ids, buf, dim, NULL));
    free(buf); free(ids);
    strata_ivf_close(ix);
    CHECK(strata_commit(t));
    CHECK(strata_begin_read(db, &t));
    CHECK(strata_ivf_open(t, name, &ix));
    *txn_out = t;
    return ix;
}

/* Insert rows ord[lo..hi) into fractal index `name` in batches of 1000, one
 * transaction; returns the seconds it took (commit included). */
static double frac_insert(strata_db *db, const char *name, const float *x, const uint32_t *ord,
                          size_t dim, size_t lo, size_t hi)
{
    strata_txn *t;
    strata_fractal *f;
    CHECK(strata_begin_write(db, &t));
    CHECK(strata_txn_set_durability(t, STRATA_DURABILITY_NONE));
    CHECK(strata_fractal_open(t, name, &f));
    float *buf = malloc(1000 * dim * sizeof *buf);
    uint64_t ids[1000], ts[1000];
    double t0 = now();
    for (size_t b = lo; b < hi; b += 1000) {
        size_t m = hi - b < 1000 ? hi - b : 1000;
        for (size_t j = 0; j < m; j++) {
            ids[j] = ord[b + j]; ts[j] = b + j;
            memcpy(buf + j * dim, x + (size_t)ord[b + j] * dim, dim * 4);
        }
        CHECK(strata_fractal_add_batch(f, m, ids, buf, dim, ts));
    }
    strata_fractal_close(f);
    CHECK(strata_commit(t));
    free(buf);
    return now() - t0;
}

/* recall/QPS of fractal index `name` with the given search parameters */
static result frac_measure(strata_db *db, const char *name, strata_fractal_params p, size_t dim,
                           const float *qs, size_t nq, const uint64_t *gt, uint32_t *gen)
{
    strata_txn *t;
    fctx fx = { .dim = dim, .p = p };
    CHECK(strata_begin_read(db, &t));
    CHECK(strata_fractal_open(t, name, &fx.f));
    result r = measure(frac_fn, &fx, qs, nq, dim, gt);
    if (gen) {
        strata_fractal_info info;
        CHECK(strata_fractal_info_get(fx.f, &info));
        *gen = info.codebook_gen;
    }
    strata_fractal_close(fx.f);
    strata_abort(t);
    return r;
}

/* The goal's comparison at equal QPS: the fractal index's best recall over
 * n_probe 2..16 among the settings at least as fast as the retrained
 * IVF-PQ (nprobe 8), with rerank 100 (eq[0]) and PQ only (eq[1]), as
 * "recall/n_probe" ("none" if no setting is as fast). Each setting is
 * measured right after IVF-PQ with the same rerank, best of two pairs, so
 * both see the same load. */
static void equal_qps(strata_db *db, ictx *ix, size_t dim, const float *qs, size_t nq,
                      const uint64_t *gt, char eq[2][32])
{
    static const uint32_t sweep[] = { 2, 3, 4, 6, 8, 10, 12, 16 };
    for (int mode = 0; mode < 2; mode++) {
        double best = -1;
        uint32_t best_np = 0;
        ix->p.rerank = mode ? 0 : 100;
        for (size_t i = 0; i < sizeof sweep / sizeof sweep[0]; i++) {
            strata_fractal_params p = { .n_probe = sweep[i], .rerank = mode ? 0 : 100 };
            result a = { 0, 0 }, b = { 0, 0 };
            for (int rep = 0; rep < 2; rep++) {
                result r1 = measure(ivf_fn, ix, qs, nq, dim, gt);
                result r2 = frac_measure(db, "f", p, dim, qs, nq, gt, NULL);
                if (r1.qps > a.qps) a = r1;
                if (r2.qps > b.qps) b = r2;
            }
            if (b.qps >= a.qps && b.recall > best) { best = b.recall; best_np = sweep[i]; }
        }
        if (best < 0) snprintf(eq[mode], sizeof eq[mode], "none");
        else snprintf(eq[mode], sizeof eq[mode], "%.3f/%u", best, best_np);
    }
}

int main(int argc, char **argv)
{
    size_t n = 0, dim = 0, nq = 0, qd = 0;
    float *x, *qs;
    const char *label = "siftsmall";
    if (argc > 2 && !strcmp(argv[1], "--synthetic")) {
        n = (size_t)atol(argv[2]); dim = 128; nq = 200; label = "synthetic mixture";
        float *all = mixture(n + nq, dim, 7);
        x = all; qs = all + n * dim;
    } else {
        char p1[512], p2[512];
        const char *dir = argc > 1 ? argv[1] : "/work/shared/data/siftsmall";
        snprintf(p1, sizeof p1, "%s/siftsmall_base.fvecs", dir);
        snprintf(p2, sizeof p2, "%s/siftsmall_query.fvecs", dir);
        x = read_fvecs(p1, &n, &dim);
        qs = read_fvecs(p2, &nq, &qd);
        if (!x || !qs || qd != dim) { fprintf(stderr, "cannot read %s\n", dir); return 1; }
    }
    if (nq > NQ_MAX) nq = NQ_MAX;
    uint32_t *ord = drift_order(x, n, dim);
    uint8_t *present = calloc(n, 1);
    uint64_t *gt = malloc(nq * K * sizeof *gt);
    char path[] = "/tmp/bench_fractal_XXXXXX";
    if (!mkdtemp(path)) return 1;
    char dbp[600];
    snprintf(dbp, sizeof dbp, "%s/db", path);
    strata_db *db;
    CHECK(strata_open(dbp, STRATA_CREATE, &db));
    /* f: the fractal index of the goals: one shared codebook (trained on the
     * pooled sub-vectors of the first tenth), never retrained.
     * fps: per-subspace codebooks from the first tenth, never retrained.
     * fg: per-subspace codebooks retrained by the policy (retrain_growth 100:
     * at 2x, 4x, 8x the vectors of the first training). */
    strata_fractal_config fc;
    strata_fractal_config_default(&fc, (uint32_t)dim, STRATA_METRIC_L2);
    fc.train_size = (uint32_t)(n / 10);
    strata_txn *t;
    CHECK(strata_begin_write(db, &t));
    strata_fractal_config c1 = fc;
    c1.flags |= STRATA_FRACTAL_SHARED_CODEBOOK;
    CHECK(strata_fractal_create(t, "f", &c1, NULL));
    CHECK(strata_fractal_create(t, "fps", &fc, NULL));
    strata_fractal_config c3 = fc;
    c3.retrain_growth = 100;
    CHECK(strata_fractal_create(t, "fg", &c3, NULL));
    strata_fractal_config c4 = c1;
    c4.buffer_cap = 32;
    CHECK(strata_fractal_create(t, "f32", &c4, NULL));
    CHECK(strata_commit(t));
#ifdef HAVE_HNSWLIB
    void *hn = hnsw_new((int)dim, n, 16, 200);
    double hnsw_ins = 0;
#endif
#ifdef HAVE_FAISS
    void *fa = faiss_ivfpq_new((int)dim, n >= 40000 ? 256 : 64, (int)dim / 4);
    faiss_ivfpq_set_nprobe(fa, 8);
#endif
    double frac_ins = 0, fps_ins = 0, fg_ins = 0, f32_ins = 0;
    printf("# drift stream: %s, n=%zu dim=%zu queries=%zu, kernel %s\n", label, n, dim, nq, strata_vec_kernel_name());
    printf("# recall@10 / QPS (single thread) after each tenth; rr = exact rerank of 100;\n"
           "# fractal: default config (buffer_cap %u), shared codebook, never retrained (beam 16, n_probe 8;\n"
           "# hr: n_probe 16, rerank 50); fractal32: the same with buffer_cap 32 (hr);\n"
           "# hr, fractal32 hr and hnsw: best of 3 paired runs;\n"
           "# fractal_ps: per-subspace codebooks, never retrained; fractal_g: retrain_growth 100 (gen = trainings)\n"
           "# eq_rr, eq_pq: the fractal's best recall/n_probe (2..16) at >= ivf_retrain's QPS, paired, rerank 100 / PQ only\n", fc.buffer_cap);
    printf("%-6s %-14s %-14s %-14s %-14s %-14s %-18s %-14s %-14s %-14s %-14s %-10s %-10s %-14s %-14s %s\n", "tenth",
           "fractal_rr", "fractal_pq", "fractal_hr", "fractal32_hr", "fractal_ps_pq", "fractal_g_pq(gen)",
           "ivf_fixed_rr", "ivf_fixed_pq", "ivf_retrain_rr", "ivf_retrain_pq", "eq_rr", "eq_pq", "faiss_fixed", "hnsw",
           "hr/hnsw hr32/hnsw");
    for (int tenth = 1; tenth <= 10; tenth++) {
        size_t lo = (size_t)(tenth - 1) * n / 10, hi = (size_t)tenth * n / 10;
        /* fractal: insert the slice in batches of 1000 in one transaction */
        frac_ins += frac_insert(db, "f", x, ord, dim, lo, hi);
        fps_ins += frac_insert(db, "fps", x, ord, dim, lo, hi);
        fg_ins += frac_insert(db, "fg", x, ord, dim, lo, hi);
        f32_ins += frac_insert(db, "f32", x, ord, dim, lo, hi);
        for (size_t i = lo; i < hi; i++) present[ord[i]] = 1;
        ground_truth(x, present, n, dim, qs, nq, gt);
        strata_fractal_params pr = { .n_probe = 8, .rerank = 100 };
        strata_fractal_params pp = { .n_probe = 8 };
        strata_fractal_params phr = { .n_probe = 16, .rerank = 50 };
        uint32_t g_gen = 0;
        result fr = frac_measure(db, "f", pr, dim, qs, nq, gt, NULL);
        result fp = frac_measure(db, "f", pp, dim, qs, nq, gt, NULL);
        result fpsp = frac_measure(db, "fps", pp, dim, qs, nq, gt, NULL);
        result fgp = frac_measure(db, "fg", pp, dim, qs, nq, gt, &g_gen);
        /* IVF-PQ trained on the first tenth, never retrained */
        ictx ix = { .dim = dim, .p = { .nprobe = 8, .rerank = 100 } };
        ix.ix = ivf_build(db, "fixed", x, ord, dim, n / 10, lo, hi, n, &t);
        result ir = measure(ivf_fn, &ix, qs, nq, dim, gt);
        ix.p.rerank = 0;
        result ip = measure(ivf_fn, &ix, qs, nq, dim, gt);
        strata_ivf_close(ix.ix);
        strata_abort(t);
        /* IVF-PQ retrained on everything present */
        ix.p.rerank = 100;
        ix.ix = ivf_build(db, "retrain", x, ord, dim, hi, 0, hi, n, &t);
        result rr = measure(ivf_fn, &ix, qs, nq, dim, gt);
        ix.p.rerank = 0;
        result rp = measure(ivf_fn, &ix, qs, nq, dim, gt);
        char eq[2][32];
        equal_qps(db, &ix, dim, qs, nq, gt, eq);
        strata_ivf_close(ix.ix);
        strata_abort(t);
        char fs[32] = "n/a", hs[32] = "n/a";
#ifdef HAVE_FAISS
        {
            float *sl = malloc((hi - lo) * dim * sizeof *sl);
            uint64_t *sid = malloc((hi - lo) * sizeof *sid);
            for (size_t i = lo; i < hi; i++) { sid[i - lo] = ord[i]; memcpy(sl + (i - lo) * dim, x + (size_t)ord[i] * dim, dim * 4); }
            if (tenth == 1) faiss_ivfpq_train(fa, hi - lo, sl);
            faiss_ivfpq_add(fa, hi - lo, sl, sid);
            free(sl); free(sid);
            result r = measure(faiss_fn, fa, qs, nq, dim, gt);
            snprintf(fs, sizeof fs, "%.3f/%.0f", r.recall, r.qps);
        }
#endif
        char ratio[48] = "n/a";
#ifdef HAVE_HNSWLIB
        double h0 = now();
        for (size_t i = lo; i < hi; i++) hnsw_add(hn, x + (size_t)ord[i] * dim, ord[i]);
        hnsw_ins += now() - h0;
        hnsw_set_ef(hn, 64);
        result hb = { 0, 0 };
#endif
        result fhr = { 0, 0 }, f32hr = { 0, 0 };
        for (int rep = 0; rep < 3; rep++) {   /* paired: the load changes by the second */
            result a = frac_measure(db, "f", phr, dim, qs, nq, gt, NULL);
            result b = frac_measure(db, "f32", phr, dim, qs, nq, gt, NULL);
            if (a.qps > fhr.qps) fhr = a;
            if (b.qps > f32hr.qps) f32hr = b;
#ifdef HAVE_HNSWLIB
            result r = measure(hnsw_fn, hn, qs, nq, dim, gt);
            if (r.qps > hb.qps) hb = r;
#endif
        }
#ifdef HAVE_HNSWLIB
        snprintf(hs, sizeof hs, "%.3f/%.0f", hb.recall, hb.qps);
        snprintf(ratio, sizeof ratio, "%.2fx %.2fx", fhr.qps / hb.qps, f32hr.qps / hb.qps);
#endif
        char gs[40];
        snprintf(gs, sizeof gs, "%.3f/%.0f(%u)", fgp.recall, fgp.qps, g_gen);
        printf("%-6d %.3f/%-8.0f %.3f/%-8.0f %.3f/%-8.0f %.3f/%-8.0f %.3f/%-8.0f %-18s %.3f/%-8.0f "
               "%.3f/%-8.0f %.3f/%-8.0f %.3f/%-8.0f %-10s %-10s %-14s %-14s %s\n",
               tenth, fr.recall, fr.qps, fp.recall, fp.qps, fhr.recall, fhr.qps, f32hr.recall,
               f32hr.qps, fpsp.recall, fpsp.qps, gs, ir.recall, ir.qps, ip.recall, ip.qps, rr.recall,
               rr.qps, rp.recall, rp.qps, eq[0], eq[1], fs, hs, ratio);
        fflush(stdout);
    }
    printf("# insert throughput (vectors/s, whole stream, one thread): fractal %.0f, fractal32 %.0f, "
           "fractal_ps %.0f, fractal_g %.0f", (double)n / frac_ins, (double)n / f32_ins,
           (double)n / fps_ins, (double)n / fg_ins);
#ifdef HAVE_HNSWLIB
    printf(", hnswlib (M=16, efC=200) %.0f; fractal/hnswlib %.2fx, fractal32/hnswlib %.2fx",
           (double)n / hnsw_ins, hnsw_ins / frac_ins, hnsw_ins / f32_ins);
    hnsw_free(hn);
#endif
    printf("\n");
#ifdef HAVE_FAISS
    faiss_ivfpq_free(fa);
#endif
    /* delete a random half of the fractal index */
    uint64_t s = 5;
    CHECK(strata_begin_write(db, &t));
    CHECK(strata_txn_set_durability(t, STRATA_DURABILITY_NONE));
    strata_fractal *f;
    CHECK(strata_fractal_open(t, "f", &f));
    size_t n_del = 0;
    double t0 = now();
    for (size_t i = 0; i < n; i++)
        if (rng(&s) & 1) { CHECK(strata_fractal_delete(f, i)); present[i] = 0; n_del++; }
    strata_fractal_close(f);
    CHECK(strata_commit(t));
    double del_s = now() - t0;
    ground_truth(x, present, n, dim, qs, nq, gt);
    CHECK(strata_begin_read(db, &t));
    int ck = strata_fractal_check(t, "f", NULL, NULL);
    fctx fx = { .dim = dim, .p = { .n_probe = 8, .rerank = 100 } };
    CHECK(strata_fractal_open(t, "f", &fx.f));
    result dr = measure(frac_fn, &fx, qs, nq, dim, gt);
    fx.p.rerank = 0;
    result dp = measure(frac_fn, &fx, qs, nq, dim, gt);
    strata_fractal_info info;
    CHECK(strata_fractal_info_get(fx.f, &info));
    strata_fractal_close(fx.f);
    strata_abort(t);
    printf("# delete throughput: %.0f deletes/s (%zu deleted); after: fractal_rr %.3f/%.0f, fractal_pq %.3f/%.0f; "
           "check %s; %u leaves, depth %u\n", (double)n_del / del_s, n_del, dr.recall, dr.qps,
           dp.recall, dp.qps, strata_strerror(ck), info.n_leaves, info.depth);
    strata_close(db);
    remove(dbp);
    remove(path);
    free(present); free(gt); free(ord);
    return 0;
}
