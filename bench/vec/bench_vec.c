/* bench/vec/bench_vec.c - vector-layer benchmark (run: tools/dev bench vec).
 *
 * Measures, single-threaded, on a seeded Gaussian-mixture data set of dim 128:
 *  1. memory bandwidth: a plain SIMD sum over the whole data buffer (best of
 *     runs: one stream, one stream with software prefetch, four streams);
 *  2. distance throughput of every kernel table this CPU offers, per metric, in
 *     GB/s of vector data (one-to-many kernel over the buffer), on the large set
 *     (streams from memory) and the 100k set (mostly cache-resident);
 *  3. exact top-k (k = 10) queries per second, one query at a time, on 100k and
 *     1M vectors, Strata (strata_vec_topk) against FAISS IndexFlatL2 / IndexFlatIP
 *     (when libfaiss is available), with the overlap of their answers. Each
 *     engine's time is the best of ROUNDS passes over the same queries (the
 *     machine may be shared).
 * Ends with two summary lines:
 *   bandwidth_fraction X   1M-vector L2 top-k scan bytes/s over the measured bandwidth
 *                          (the two measured alternately, best of ROUNDS each)
 *   faiss_ratio Y          Strata top-k time over FAISS's on the 1M vectors
 *                          (the worse of L2 and IP), or "n/a" without FAISS
 * Usage: bench_vec [n_large]   (default 1000000)
 */
#include <math.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "strata.h"
#include "vector.h"
#if HAVE_FAISS
#include "faiss_flat.h"
#endif

enum { DIM = 128, K = 10, N_SMALL = 100000, N_CENTERS = 256, REPS_BW = 5, REPS_KERNEL = 3,
       ROUNDS = 3,     /* top-k: best of ROUNDS passes over the queries, both engines */
       NQ_CTX = 64 };  /* queries generated; FAISS's batched context run uses all */
#define SEED 0x5EC7012ull

static const char *metric_name[VEC_N_METRICS] = { "L2", "IP", "COSINE", "L1" };

static double now(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + 1e-9 * (double)ts.tv_nsec;
}

/* ---- data: seeded Gaussian mixture ------------------------------------- */

static uint64_t rng_next(uint64_t *s)
{
    uint64_t z = (*s += 0x9E3779B97F4A7C15ull);
    z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ull;
    z = (z ^ (z >> 27)) * 0x94D049BB133111EBull;
    return z ^ (z >> 31);
}

static double rng_unit(uint64_t *s)   /* (0, 1] */
{
    return ((double)(rng_next(s) >> 11) + 1.0) / 9007199254740992.0;
}

/* Two standard normals (Box-Muller). */
static void rng_gauss2(uint64_t *s, float *a, float *b)
{
    double r = sqrt(-2.0 * log(rng_unit(s))), t = 6.283185307179586 * rng_unit(s);
    *a = (float)(r * cos(t));
    *b = (float)(r * sin(t));
}

/* n points: a random one of N_CENTERS centres N(0, 1) plus N(0, 0.25^2) noise. */
static void gen_mixture(float *x, size_t n, const float *centres, uint64_t seed)
{
    uint64_t s = seed;
    for (size_t j = 0; j < n; j++) {
        const float *c = centres + (rng_next(&s) % N_CENTERS) * DIM;
        for (size_t i = 0; i < DIM; i += 2) {
            float a, b;
            rng_gauss2(&s, &a, &b);
            x[j * DIM + i] = c[i] + 0.25f * a;
            x[j * DIM + i + 1] = c[i + 1] + 0.25f * b;
        }
    }
}

static float *alloc_floats(size_t n)
{
    float *p = aligned_alloc(64, ((n * sizeof(float) + 63) / 64) * 64);
    if (!p) {
        fprintf(stderr, "bench_vec: out of memory (%zu floats)\n", n);
        exit(1);
    }
    return p;
}

/* ---- memory bandwidth: plain sum ---------------------------------------- */

#if defined(__x86_64__)
#include <immintrin.h>
__attribute__((target("avx512f"))) static float sum_avx512(const float *x, size_t n)
{
    __m512 a0 = _mm512_setzero_ps(), a1 = a0, a2 = a0, a3 = a0;
    size_t i = 0;
    for (; i + 64 <= n; i += 64) {
        a0 = _mm512_add_ps(a0, _mm512_load_ps(x + i));
        a1 = _mm512_add_ps(a1, _mm512_load_ps(x + i + 16));
        a2 = _mm512_add_ps(a2, _mm512_load_ps(x + i + 32));
        a3 = _mm512_add_ps(a3, _mm512_load_ps(x + i + 48));
    }
    float s = _mm512_reduce_add_ps(_mm512_add_ps(_mm512_add_ps(a0, a1), _mm512_add_ps(a2, a3)));
    for (; i < n; i++) s += x[i];
    return s;
}

/* The same sum with the software prefetch the distance kernels use (8 KiB
 * ahead): on some machines it streams faster than the hardware prefetcher
 * alone, and the bandwidth reference must not be beaten by the kernels. */
__attribute__((target("avx512f"))) static float sum_avx512_prefetch(const float *x, size_t n)
{
    __m512 a0 = _mm512_setzero_ps(), a1 = a0, a2 = a0, a3 = a0;
    size_t i = 0;
    for (; i + 64 <= n; i += 64) {
        uintptr_t p = (uintptr_t)(x + i) + 8192;
        _mm_prefetch((const char *)p, _MM_HINT_T0);
        _mm_prefetch((const char *)(p + 64), _MM_HINT_T0);
        _mm_prefetch((const char *)(p + 128), _MM_HINT_T0);
        _mm_prefetch((const char *)(p + 192), _MM_HINT_T0);
        a0 = _mm512_add_ps(a0, _mm512_load_ps(x + i));
        a1 = _mm512_add_ps(a1, _mm512_load_ps(x + i + 16));
        a2 = _mm512_add_ps(a2, _mm512_load_ps(x + i + 32));
        a3 = _mm512_add_ps(a3, _mm512_load_ps(x + i + 48));
    }
    float s = _mm512_reduce_add_ps(_mm512_add_ps(_mm512_add_ps(a0, a1), _mm512_add_ps(a2, a3)));
    for (; i < n; i++) s += x[i];
    return s;
}

/* Sums x[0..4q) as 4 streams x, x + q, x + 2q, x + 3q read in lockstep;
 * q is a multiple of 16. */
__attribute__((target("avx512f"))) static float sum_avx512_4streams(const float *x, size_t q)
{
    __m512 a0 = _mm512_setzero_ps(), a1 = a0, a2 = a0, a3 = a0;
    for (size_t i = 0; i < q; i += 16) {
        a0 = _mm512_add_ps(a0, _mm512_load_ps(x + i));
        a1 = _mm512_add_ps(a1, _mm512_load_ps(x + q + i));
        a2 = _mm512_add_ps(a2, _mm512_load_ps(x + 2 * q + i));
        a3 = _mm512_add_ps(a3, _mm512_load_ps(x + 3 * q + i));
    }
    return _mm512_reduce_add_ps(_mm512_add_ps(_mm512_add_ps(a0, a1), _mm512_add_ps(a2, a3)));
}
#endif

/* Variant 0: one sequential stream; 1: the same with software prefetch;
 * 2: four interleaved streams (the buffer's quarters), the access pattern of
 * the 4-vector kernels, which some memory systems serve faster. */
static float sum_plain(const float *x, size_t n, int variant)
{
#if defined(__x86_64__)
    if (__builtin_cpu_supports("avx512f")) {
        if (variant == 1) return sum_avx512_prefetch(x, n);
        if (variant == 2) {
            size_t q = (n / 4) & ~(size_t)63;
            return sum_avx512_4streams(x, q) + sum_avx512(x + 4 * q, n - 4 * q);
        }
        return sum_avx512(x, n);
    }
#endif
    (void)variant;
    float a[8] = {0};
    size_t i = 0;
    for (; i + 8 <= n; i += 8)
        for (int l = 0; l < 8; l++) a[l] += x[i + (size_t)l];
    for (; i < n; i++) a[0] += x[i];
    return ((a[0] + a[1]) + (a[2] + a[3])) + ((a[4] + a[5]) + (a[6] + a[7]));
}

static volatile float g_sink;

/* Best of REPS_BW runs of each of the 3 sum variants, in bytes/s. */
static double bandwidth(const float *x, size_t n)
{
    double best = 1e30;
    for (int r = 0; r < 3 * REPS_BW; r++) {
        double t = now();
        g_sink = sum_plain(x, n, r % 3);
        t = now() - t;
        if (t < best) best = t;
    }
    return (double)n * sizeof(float) / best;
}

/* ---- kernel throughput -------------------------------------------------- */

static double kernel_gbs(const vec_kernels *kt, int m, const float *q, const float *base,
                         size_t n, float *out)
{
    double best = 1e30;
    for (int r = 0; r < REPS_KERNEL; r++) {
        double t = now();
        kt->dist_batch[m](q, base, n, DIM, out);
        t = now() - t;
        if (t < best) best = t;
    }
    g_sink = out[n / 2];
    return (double)n * DIM * sizeof(float) / best / 1e9;
}

/* ---- exact top-k -------------------------------------------------------- */

typedef struct topk_run {
    double    secs;     /* total time for nq queries */
    uint64_t *ids;      /* nq * K answers            */
} topk_run;

static topk_run strata_topk(strata_metric m, const float *base, size_t n, const float *qs,
                            size_t nq, int rounds)
{
    topk_run r = { 1e30, malloc(nq * K * sizeof(uint64_t)) };
    strata_hit hits[K];
    for (int round = 0; round < rounds; round++) {
        double t = now();
        for (size_t i = 0; i < nq; i++) {
            size_t got = 0;
            int rc = strata_vec_topk(m, qs + i * DIM, base, n, DIM, NULL, K, NULL, NULL, hits,
                                     &got);
            if (rc != STRATA_OK || got != K) {
                fprintf(stderr, "bench_vec: strata_vec_topk failed: rc %d, %zu hits\n", rc, got);
                exit(1);
            }
            for (size_t h = 0; h < K; h++) r.ids[i * K + h] = hits[h].id;
        }
        t = now() - t;
        if (t < r.secs) r.secs = t;
    }
    return r;
}

#if HAVE_FAISS
/* One query per call (the same regime as strata_vec_topk), then NQ_CTX queries
 * in one call (FAISS switches to BLAS for >= 20 queries) for context. */
static topk_run faiss_topk(bfaiss *f, const float *qs, size_t nq, double *batch_secs)
{
    topk_run r = { 1e30, malloc(nq * K * sizeof(uint64_t)) };
    float d[K * NQ_CTX];
    int64_t lab[K * NQ_CTX];
    for (int round = 0; round < ROUNDS; round++) {
        double t = now();
        for (size_t i = 0; i < nq; i++) {
            if (bfaiss_search(f, 1, qs + i * DIM, K, d, lab) != 0) {
                fprintf(stderr, "bench_vec: faiss search failed\n");
                exit(1);
            }
            for (size_t h = 0; h < K; h++) r.ids[i * K + h] = (uint64_t)lab[h];
        }
        t = now() - t;
        if (t < r.secs) r.secs = t;
    }
    /* NQ_CTX queries in one call: FAISS uses BLAS sgemm from 20 queries on. */
    double t = now();
    if (bfaiss_search(f, NQ_CTX, qs, K, d, lab) != 0) exit(1);
    *batch_secs = (now() - t) * (double)nq / (double)NQ_CTX;
    return r;
}
#endif

/* Fraction of a's ids found in b's answer to the same query. */
static double overlap(const topk_run *a, const topk_run *b, size_t nq)
{
    size_t hit = 0;
    for (size_t i = 0; i < nq; i++)
        for (size_t x = 0; x < K; x++)
            for (size_t y = 0; y < K; y++)
                if (a->ids[i * K + x] == b->ids[i * K + y]) { hit++; break; }
    return (double)hit / (double)(nq * K);
}

typedef struct summary {
    double ratio;              /* worst Strata/FAISS time ratio on the large set, or < 0 */
} summary;

static void bench_topk(const float *base, size_t n, const float *qs, size_t nq, int large,
                       summary *sum)
{
    for (int m = STRATA_METRIC_L2; m <= STRATA_METRIC_IP; m++) {
        topk_run s = strata_topk((strata_metric)m, base, n, qs, nq, ROUNDS);
        printf("topk n=%-8zu %-3s strata   %9.1f QPS  %8.3f ms/query  %6.2f GB/s\n", n,
               metric_name[m], nq / s.secs, 1e3 * s.secs / nq,
               (double)n * DIM * 4 * nq / s.secs / 1e9);
#if HAVE_FAISS
        bfaiss *f = bfaiss_new(DIM, m == STRATA_METRIC_IP);
        if (!f || bfaiss_add(f, n, base) != 0) {
            fprintf(stderr, "bench_vec: faiss index build failed\n");
            exit(1);
        }
        double batch_secs = 0;
        topk_run fr = faiss_topk(f, qs, nq, &batch_secs);
        bfaiss_free(f);
        double ratio = s.secs / fr.secs;
        printf("topk n=%-8zu %-3s faiss    %9.1f QPS  %8.3f ms/query  strata/faiss time %.3f"
               "  answers agree %.4f\n", n, metric_name[m], nq / fr.secs, 1e3 * fr.secs / nq,
               ratio, overlap(&s, &fr, nq));
        printf("topk n=%-8zu %-3s faiss-batched-queries (BLAS, context only) %9.1f QPS\n", n,
               metric_name[m], nq / batch_secs);
        if (large && ratio > sum->ratio) sum->ratio = ratio;
        free(fr.ids);
#endif
        free(s.ids);
    }
}

int main(int argc, char **argv)
{
    size_t n_large = argc > 1 ? (size_t)strtoull(argv[1], NULL, 10) : 1000000;
    if (n_large < N_SMALL) n_large = N_SMALL;
    size_t nq_large = 10, nq_small = 50;
    printf("bench_vec: dim %d, k %d, n %zu and %d, Gaussian mixture (%d centres, seed %#llx),"
           " single thread\n", DIM, K, n_large, N_SMALL, N_CENTERS, (unsigned long long)SEED);
    printf("kernel in use: %s\n", strata_vec_kernel_name());

    uint64_t s = SEED;
    float *centres = alloc_floats(N_CENTERS * DIM);
    for (size_t i = 0; i < N_CENTERS * DIM; i += 2) rng_gauss2(&s, &centres[i], &centres[i + 1]);
    float *base = alloc_floats(n_large * DIM), *qs = alloc_floats(NQ_CTX * DIM);
    float *out = alloc_floats(n_large);
    double t = now();
    gen_mixture(base, n_large, centres, SEED + 1);
    gen_mixture(qs, NQ_CTX, centres, SEED + 2);
    printf("generated %.0f MB in %.1f s\n", n_large * DIM * 4.0 / 1e6, now() - t);

    double bw = bandwidth(base, n_large * DIM);
    printf("memory bandwidth (plain sum over %.0f MB, best of %d): %.2f GB/s\n",
           n_large * DIM * 4.0 / 1e6, 3 * REPS_BW, bw / 1e9);

    for (int lv = 0; lv < VEC_LEVEL_COUNT; lv++) {
        const vec_kernels *kt = vec_kernels_for((vec_level)lv);
        if (!kt) continue;
        for (int m = 0; m < VEC_N_METRICS; m++) {
            double big = kernel_gbs(kt, m, qs, base, n_large, out);
            double small = kernel_gbs(kt, m, qs, base, N_SMALL, out);
            printf("kernel %-6s %-6s n=%zu: %6.2f GB/s (%.0f%% of bandwidth)   n=%d: %6.2f GB/s\n",
                   kt->name, metric_name[m], n_large, big, 100.0 * big * 1e9 / bw, N_SMALL, small);
        }
    }

#if HAVE_FAISS
    bfaiss_single_thread();
#endif
    summary sum = { -1 };
    bench_topk(base, N_SMALL, qs, nq_small, 0, &sum);
    bench_topk(base, n_large, qs, nq_large, 1, &sum);

    /* bandwidth_fraction: the 1M L2 top-k scan and the bandwidth reference are
     * measured alternately in the same time window, so a neighbour's load on a
     * shared machine hits both; best of each. */
    double bw_ref = 0, scan = 0;
    for (int r = 0; r < ROUNDS; r++) {
        double b = bandwidth(base, n_large * DIM);
        topk_run run = strata_topk(STRATA_METRIC_L2, base, n_large, qs, nq_large, 1);
        double sc = (double)n_large * DIM * 4 * nq_large / run.secs;
        free(run.ids);
        if (b > bw_ref) bw_ref = b;
        if (sc > scan) scan = sc;
    }
    printf("1M L2 top-k scan %.2f GB/s, bandwidth reference %.2f GB/s (interleaved, best of %d)\n",
           scan / 1e9, bw_ref / 1e9, ROUNDS);
    printf("bandwidth_fraction %.3f\n", scan / bw_ref);
    if (sum.ratio >= 0) printf("faiss_ratio %.3f\n", sum.ratio);
    else printf("faiss_ratio n/a (built without FAISS)\n");
    free(centres); free(base); free(qs); free(out);
    return 0;
}
