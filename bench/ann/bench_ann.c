/* bench/ann/bench_ann.c - recall and speed of the IVF-PQ index (ivfpq/)
 * against FAISS IndexIVFPQ and hnswlib, single thread, same data and
 * parameters. Data: SIFT10K (.fvecs + .ivecs ground truth), BIGANN10K
 * (.bvecs), and a generated Gaussian mixture (seeded; its ground truth is
 * computed by brute force with sgemm and cached in ann_cache/ beside this
 * executable, i.e. under the build folder). Prints recall@1, recall@10 and
 * QPS for a sweep of nprobe (and rerank depth) / ef, build time and index
 * bytes (codes + centroids + codebooks; hnswlib: vectors + links).
 * Usage: bench_ann [--data DIR] [--gen N] [--only sift|bigann|gen] [--nq N] [--reps N]
 *                  [--engines sfh] [--nprobe LIST] [--rerank LIST] [--ef LIST]
 *                  [--seed S] [--self N]
 * (--reps: timed passes per row, the fastest reported; default 5. --engines:
 * s strata, f FAISS, h hnswlib. LISTs are comma-separated sweeps. --seed:
 * training seed of both IVF engines, default 1234. --self N: the first N
 * base vectors of SIFT10K / BIGANN10K are the queries, ground truth by
 * brute force; BIGANN10K's query file is base vectors 0..99, so --self 100
 * reproduces it and a larger N estimates the same recall with less
 * query-sampling noise.)
 */
#include <cblas.h>
#include <libgen.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>

#include "others.h"
#include "strata.h"

void openblas_set_num_threads(int num_threads);

enum { K = 10 };

/* Timed passes over the queries per row; the fastest is reported (100-query
 * sets finish in milliseconds, so one pass is mostly noise). */
static int g_reps = 5;
/* Engines to run (--engines: any of s, f, h) and the sweeps (--nprobe,
 * --rerank, --ef: comma lists). */
static const char *g_engines = "sfh";
static size_t g_np[16] = {1, 2, 4, 6, 8, 10, 12, 16, 32, 64}, g_nnp = 10;
static size_t g_rr[16] = {0, 16, 24, 32, 40, 48, 64, 128}, g_nrr = 8;
static size_t g_ef[16] = {10, 12, 16, 24, 32, 64, 128}, g_nef = 7;
/* Training seed of Strata and FAISS (--seed); queries from the base (--self,
 * 0 = the data set's query file). */
static uint64_t g_seed = 1234;
static size_t g_self = 0;

static size_t parse_list(const char *s, size_t *out)
{
    size_t n = 0;
    while (*s && n < 16) {
        char *e;
        out[n++] = strtoull(s, &e, 10);
        s = *e == ',' ? e + 1 : e + strlen(e);
    }
    return n;
}

typedef struct dset {
    const char *name;
    size_t n, nq, d, nlist, m;
    float *x, *q;
    int32_t *gt;      /* nq * K */
} dset;

static double now(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + 1e-9 * (double)ts.tv_nsec;
}

/* Read a TEXMEX file (.fvecs f32, .ivecs i32, .bvecs u8) into floats or ints. */
static void *read_vecs(const char *path, int kind, size_t *n, size_t *d)
{
    FILE *f = fopen(path, "rb");
    if (!f) return NULL;
    int32_t dim;
    if (fread(&dim, 4, 1, f) != 1 || dim <= 0) { fclose(f); return NULL; }
    fseek(f, 0, SEEK_END);
    long sz = ftell(f);
    fseek(f, 0, SEEK_SET);
    size_t es = kind == 'b' ? 1 : 4, rec = 4 + es * (size_t)dim, cnt = (size_t)sz / rec;
    void *out = malloc(cnt * (size_t)dim * 4);
    uint8_t *buf = malloc(rec);
    for (size_t i = 0; i < cnt; i++) {
        if (fread(buf, 1, rec, f) != rec) { free(out); out = NULL; break; }
        if (kind == 'b')
            for (int j = 0; j < dim; j++) ((float *)out)[i * (size_t)dim + (size_t)j] = buf[4 + j];
        else memcpy((char *)out + i * (size_t)dim * 4, buf + 4, (size_t)dim * 4);
    }
    free(buf);
    fclose(f);
    *n = cnt;
    *d = (size_t)dim;
    return out;
}

/* Exact L2 top-K by sgemm in blocks of queries. */
static int32_t *brute_gt(const float *x, size_t n, const float *q, size_t nq, size_t d)
{
    int32_t *gt = malloc(nq * K * sizeof *gt);
    float *xn = malloc(n * sizeof *xn);
    size_t qb = 64;
    float *dots = malloc(qb * n * sizeof *dots);
    for (size_t i = 0; i < n; i++) {
        float s = 0;
        for (size_t j = 0; j < d; j++) s += x[i * d + j] * x[i * d + j];
        xn[i] = s;
    }
    for (size_t q0 = 0; q0 < nq; q0 += qb) {
        size_t nb = nq - q0 < qb ? nq - q0 : qb;
        cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasTrans, (int)nb, (int)n, (int)d, 1.0f,
                    q + q0 * d, (int)d, x, (int)d, 0.0f, dots, (int)n);
        for (size_t i = 0; i < nb; i++) {
            float bd[K];
            int32_t bi[K];
            for (int j = 0; j < K; j++) { bd[j] = INFINITY; bi[j] = -1; }
            for (size_t r = 0; r < n; r++) {
                float v = xn[r] - 2 * dots[i * n + r];
                if (v >= bd[K - 1]) continue;
                int j = K - 1;
                while (j > 0 && bd[j - 1] > v) { bd[j] = bd[j - 1]; bi[j] = bi[j - 1]; j--; }
                bd[j] = v; bi[j] = (int32_t)r;
            }
            memcpy(gt + (q0 + i) * K, bi, sizeof bi);
        }
    }
    free(xn); free(dots);
    return gt;
}

static float gauss(uint64_t *s)
{
    uint64_t a = (*s += 0x9E3779B97F4A7C15ull), b;
    a = (a ^ (a >> 30)) * 0xBF58476D1CE4E5B9ull; a = (a ^ (a >> 27)) * 0x94D049BB133111EBull; a ^= a >> 31;
    b = (*s += 0x9E3779B97F4A7C15ull);
    b = (b ^ (b >> 30)) * 0xBF58476D1CE4E5B9ull; b = (b ^ (b >> 27)) * 0x94D049BB133111EBull; b ^= b >> 31;
    double u1 = ((double)(a >> 11) + 1) / 9007199254740993.0, u2 = (double)(b >> 11) / 9007199254740992.0;
    return (float)(sqrt(-2 * log(u1)) * cos(6.283185307179586 * u2));
}

/* Gaussian mixture: 500 centres (spread 10), per-centre spreads 1..4. */
static float *gen_mixture(size_t n, size_t d, uint64_t seed)
{
    size_t nc = 500;
    uint64_t s = 42;
    float *c = malloc(nc * d * sizeof *c), *x = malloc(n * d * sizeof *x);
    for (size_t i = 0; i < nc * d; i++) c[i] = 10 * gauss(&s);
    s = seed;
    for (size_t i = 0; i < n; i++) {
        size_t k = (size_t)((uint64_t)(gauss(&s) * 1e6) % nc);
        float sp = 1 + (float)(k % 7) * 0.5f;
        for (size_t j = 0; j < d; j++) x[i * d + j] = c[k * d + j] + sp * gauss(&s);
    }
    free(c);
    return x;
}

static int32_t *gen_gt_cached(const char *dir, const dset *s)
{
    char path[1024];
    snprintf(path, sizeof path, "%s/ann_cache", dir);
    mkdir(path, 0755);
    snprintf(path, sizeof path, "%s/ann_cache/gen_%zu_%zu_%zu.gt", dir, s->n, s->nq, s->d);
    int32_t *gt = malloc(s->nq * K * sizeof *gt);
    FILE *f = fopen(path, "rb");
    if (f && fread(gt, sizeof *gt, s->nq * K, f) == s->nq * K) { fclose(f); return gt; }
    if (f) fclose(f);
    free(gt);
    double t = now();
    gt = brute_gt(s->x, s->n, s->q, s->nq, s->d);
    fprintf(stderr, "ground truth by brute force: %.1f s, cached in %s\n", now() - t, path);
    if ((f = fopen(path, "wb"))) { fwrite(gt, sizeof *gt, s->nq * K, f); fclose(f); }
    return gt;
}

static void recall(const dset *s, const int64_t *lab, double *r1, double *r10)
{
    size_t h1 = 0, h10 = 0;
    for (size_t i = 0; i < s->nq; i++) {
        h1 += lab[i * K] == s->gt[i * K];
        for (int a = 0; a < K; a++)
            for (int b = 0; b < K; b++)
                if (lab[i * K + a] == s->gt[i * K + b]) { h10++; break; }
    }
    *r1 = (double)h1 / (double)s->nq;
    *r10 = (double)h10 / (double)(s->nq * K);
}

static void row(const char *eng, const char *param, double r1, double r10, double qps)
{
    printf("| %-8s | %-22s | %6.3f | %6.3f | %9.0f |\n", eng, param, r1, r10, qps);
}

static void run_strata(const dset *s, const size_t *np, size_t nnp)
{
    strata_db *db;
    strata_txn *w;
    strata_ivf *ix;
    if (strata_open("mem", STRATA_INMEMORY | STRATA_CREATE, &db) != STRATA_OK) { puts("open failed"); return; }
    strata_ivf_config cfg = {.dim = (uint32_t)s->d, .metric = STRATA_METRIC_L2, .nlist = (uint32_t)s->nlist,
                             .m = (uint32_t)s->m, .nprobe = 8, .flags = STRATA_IVF_RAW, .seed = g_seed};
    uint64_t *ids = malloc(s->n * sizeof *ids);
    for (size_t i = 0; i < s->n; i++) ids[i] = i;
    double t0 = now();
    unsigned warn = 0;
    int rc = strata_begin_write(db, &w);
    if (!rc) rc = strata_ivf_create(w, "ann", &cfg, &ix);
    if (!rc) rc = strata_ivf_train(ix, s->x, s->n, s->d, &warn);
    double t1 = now();
    if (!rc) rc = strata_ivf_insert_batch(ix, s->n, ids, s->x, s->d, NULL);
    strata_ivf_info info = {0};
    if (!rc) rc = strata_ivf_info_get(ix, &info);
    strata_ivf_close(ix);
    if (!rc) rc = strata_commit(w);
    double t2 = now();
    if (rc) { printf("strata build failed: %s\n", strata_strerror(rc)); return; }
    printf("strata build: train %.2f s + add %.2f s = %.2f s; index %.2f MB (codes %.2f MB, model %.2f MB); warnings %#x\n",
           t1 - t0, t2 - t1, t2 - t0, (double)(info.code_bytes + info.model_bytes) / 1e6,
           (double)info.code_bytes / 1e6, (double)info.model_bytes / 1e6, warn);
    strata_txn *r;
    strata_begin_read(db, &r);
    strata_ivf_open(r, "ann", &ix);
    strata_hit *hits = malloc(s->nq * K * sizeof *hits);
    int64_t *lab = malloc(s->nq * K * sizeof *lab);
    for (size_t a = 0; a < nnp; a++)
        for (size_t b = 0; b < g_nrr; b++) {
            strata_ivf_params p;
            strata_ivf_params_default(&p);
            p.nprobe = (uint32_t)np[a];
            p.rerank = (uint32_t)g_rr[b];
            double best = INFINITY;
            for (int rep = 0; rep < g_reps; rep++) {
                double t = now();
                for (size_t i = 0; i < s->nq; i++) {
                    size_t n = 0;
                    strata_ivf_search(ix, s->q + i * s->d, s->d, K, &p, hits + i * K, &n);
                    for (size_t j = 0; j < K; j++)
                        lab[i * K + j] = j < n ? (int64_t)hits[i * K + j].id : -1;
                }
                if (now() - t < best) best = now() - t;
            }
            double qps = (double)s->nq / best, r1, r10;
            recall(s, lab, &r1, &r10);
            char par[64];
            snprintf(par, sizeof par, "nprobe=%zu rerank=%zu", np[a], g_rr[b]);
            row("strata", par, r1, r10, qps);
        }
    strata_ivf_close(ix);
    strata_abort(r);
    strata_close(db);
    free(ids); free(hits); free(lab);
}

static void run_faiss(const dset *s, const size_t *np, size_t nnp)
{
    double t0 = now();
    void *f = faiss_ivfpq_build(s->d, s->nlist, s->m, s->n, s->x, s->n, s->x, g_seed);
    printf("faiss build: %.2f s; index %.2f MB\n", now() - t0, (double)faiss_ivfpq_bytes(f) / 1e6);
    int64_t *lab = malloc(s->nq * K * sizeof *lab);
    for (size_t a = 0; a < nnp; a++) {
        double best = INFINITY;
        for (int rep = 0; rep < g_reps; rep++) {
            double t = now();
            for (size_t i = 0; i < s->nq; i++) faiss_ivfpq_search(f, np[a], s->q + i * s->d, K, lab + i * K);
            if (now() - t < best) best = now() - t;
        }
        double qps = (double)s->nq / best, r1, r10;
        recall(s, lab, &r1, &r10);
        char par[64];
        snprintf(par, sizeof par, "nprobe=%zu", np[a]);
        row("faiss", par, r1, r10, qps);
    }
    faiss_ivfpq_free(f);
    free(lab);
}

static void run_hnsw(const dset *s)
{
    double t0 = now();
    void *h = hnsw_build(s->d, s->n, s->x, 16, 200);
    printf("hnswlib build (M=16, efC=200): %.2f s; index %.2f MB\n", now() - t0, (double)hnsw_bytes(h) / 1e6);
    int64_t *lab = malloc(s->nq * K * sizeof *lab);
    const size_t *efs = g_ef;
    for (size_t a = 0; a < g_nef; a++) {
        double best = INFINITY;
        for (int rep = 0; rep < g_reps; rep++) {
            double t = now();
            for (size_t i = 0; i < s->nq; i++) hnsw_search(h, efs[a], s->q + i * s->d, K, lab + i * K);
            if (now() - t < best) best = now() - t;
        }
        double qps = (double)s->nq / best, r1, r10;
        recall(s, lab, &r1, &r10);
        char par[64];
        snprintf(par, sizeof par, "ef=%zu", efs[a]);
        row("hnswlib", par, r1, r10, qps);
    }
    hnsw_free(h);
    free(lab);
}

static void run_all(const dset *s)
{
    printf("\n## %s: n=%zu nq=%zu%s d=%zu nlist=%zu M=%zu seed=%llu (single thread, k=%d)\n", s->name,
           s->n, s->nq, g_self ? " (base rows 0..nq-1)" : "", s->d, s->nlist, s->m,
           (unsigned long long)g_seed, K);
    size_t np[16], nnp = 0;
    for (size_t i = 0; i < g_nnp; i++)
        if (g_np[i] <= s->nlist) np[nnp++] = g_np[i];
    if (strchr(g_engines, 's')) run_strata(s, np, nnp);
    if (strchr(g_engines, 'f')) run_faiss(s, np, nnp);
    if (strchr(g_engines, 'h')) run_hnsw(s);
    printf("| engine   | params                 | R@1    | R@10   | QPS       |\n");
}

static int load_texmex(dset *s, const char *dir, const char *base, const char *query,
                       const char *gtf, int kind)
{
    char p[1024];
    size_t n, d, nq, dq, ng, dg;
    snprintf(p, sizeof p, "%s/%s", dir, base);
    s->x = read_vecs(p, kind, &n, &d);
    snprintf(p, sizeof p, "%s/%s", dir, query);
    s->q = read_vecs(p, kind, &nq, &dq);
    if (!s->x || !s->q || d != dq) { fprintf(stderr, "cannot read %s\n", p); return -1; }
    s->n = n; s->nq = nq; s->d = d;
    if (g_self) {                      /* the first g_self base vectors as queries */
        if (g_self > n) g_self = n;
        free(s->q);
        s->q = malloc(g_self * d * sizeof *s->q);
        memcpy(s->q, s->x, g_self * d * sizeof *s->q);
        s->nq = g_self;
        s->gt = brute_gt(s->x, n, s->q, g_self, d);
        return 0;
    }
    snprintf(p, sizeof p, "%s/%s", dir, gtf);
    int32_t *g = read_vecs(p, 'i', &ng, &dg);
    if (g && ng == nq && dg >= K) {
        s->gt = malloc(nq * K * sizeof *s->gt);
        for (size_t i = 0; i < nq; i++) memcpy(s->gt + i * K, g + i * dg, K * sizeof *g);
    } else {
        s->gt = brute_gt(s->x, n, s->q, nq, d);
    }
    free(g);
    return 0;
}

int main(int argc, char **argv)
{
    const char *data = "../shared/data", *only = NULL;
    size_t gen_n = 200000, gen_nq = 1000;
    for (int i = 1; i < argc; i++) {
        if (!strcmp(argv[i], "--data") && i + 1 < argc) data = argv[++i];
        else if (!strcmp(argv[i], "--gen") && i + 1 < argc) gen_n = strtoull(argv[++i], NULL, 0);
        else if (!strcmp(argv[i], "--only") && i + 1 < argc) only = argv[++i];
        else if (!strcmp(argv[i], "--nq") && i + 1 < argc) gen_nq = strtoull(argv[++i], NULL, 0);
        else if (!strcmp(argv[i], "--reps") && i + 1 < argc) g_reps = atoi(argv[++i]) > 0 ? atoi(argv[i]) : 1;
        else if (!strcmp(argv[i], "--engines") && i + 1 < argc) g_engines = argv[++i];
        else if (!strcmp(argv[i], "--nprobe") && i + 1 < argc) g_nnp = parse_list(argv[++i], g_np);
        else if (!strcmp(argv[i], "--rerank") && i + 1 < argc) g_nrr = parse_list(argv[++i], g_rr);
        else if (!strcmp(argv[i], "--ef") && i + 1 < argc) g_nef = parse_list(argv[++i], g_ef);
        else if (!strcmp(argv[i], "--seed") && i + 1 < argc) g_seed = strtoull(argv[++i], NULL, 0);
        else if (!strcmp(argv[i], "--self") && i + 1 < argc) g_self = strtoull(argv[++i], NULL, 0);
        else {
            fprintf(stderr, "usage: %s [--data DIR] [--gen N] [--nq N] [--reps N] [--only sift|bigann|gen]\n"
                            "          [--engines sfh] [--nprobe a,b,..] [--rerank a,b,..] [--ef a,b,..]\n"
                            "          [--seed S] [--self N]\n", argv[0]);
            return 2;
        }
    }
    openblas_set_num_threads(1);
    printf("strata %s, kernels %s\n", "bench_ann", strata_vec_kernel_name());
    char sd[1024];
    if (!only || !strcmp(only, "sift")) {
        dset s = {.name = "SIFT10K", .nlist = 100, .m = 16};
        snprintf(sd, sizeof sd, "%s/siftsmall", data);
        if (load_texmex(&s, sd, "siftsmall_base.fvecs", "siftsmall_query.fvecs",
                        "siftsmall_groundtruth.ivecs", 'f') == 0) run_all(&s);
    }
    if (!only || !strcmp(only, "bigann")) {
        dset s = {.name = "BIGANN10K (uint8)", .nlist = 100, .m = 16};
        snprintf(sd, sizeof sd, "%s/bigann10k", data);
        if (load_texmex(&s, sd, "bigann10k_base.bvecs", "bigann10k_query.bvecs",
                        "bigann10k_groundtruth.ivecs", 'b') == 0)
            run_all(&s);
    }
    if (!only || !strcmp(only, "gen")) {
        char *exe = strdup(argv[0]);
        dset s = {.name = "generated Gaussian mixture", .n = gen_n, .nq = gen_nq, .d = 128,
                  .nlist = gen_n >= 1000000 ? 1024 : 512, .m = 16};
        s.x = gen_mixture(s.n, s.d, 1);
        s.q = gen_mixture(s.nq, s.d, 2);
        s.gt = gen_gt_cached(dirname(exe), &s);
        run_all(&s);
        free(exe);
    }
    return 0;
}
