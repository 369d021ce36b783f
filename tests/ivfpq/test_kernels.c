/* tests/ivfpq/test_kernels.c - the kernels of ivfpq/scan.c and kmeans.c at
 * every SIMD level (criterion runs each test in its own process, so
 * STRATA_SIMD set first picks the level; a level the CPU lacks falls back to
 * a lower one): the inner-product tables from transposed codebooks equal
 * ivf_pq_dot_lut bit for bit, the fused table build equals the scalar
 * expression bit for bit with exact per-table minima and maxima, and a NaN
 * entry is reported; the block scan keeps the same candidates with the same
 * distances with and without the u8 pre-filter (VBMI or scalar); and
 * ivf_assign picks the same (first) nearest centroid at every level. */
#include <criterion/criterion.h>
#include <math.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "ivfpq_int.h"

static float rnd(uint64_t *s)
{
    *s = *s * 6364136223846793005ull + 1442695040888963407ull;
    return (float)((int64_t)(*s >> 33) - (1ll << 30)) / (float)(1 << 24);
}

static void check_level(const char *level)
{
    setenv("STRATA_SIMD", level, 1);
    const size_t shapes[][2] = {{128, 16}, {32, 8}, {96, 12}, {30, 10}, {7, 7}};
    uint64_t s = 99;
    for (size_t sh = 0; sh < sizeof shapes / sizeof shapes[0]; sh++) {
        size_t dim = shapes[sh][0], m = shapes[sh][1], ml = m * IVF_KSUB;
        float *cb = malloc(ml * (dim / m) * sizeof *cb), *cbt = malloc(ml * (dim / m) * sizeof *cbt);
        float *q = malloc(dim * sizeof *q), *ref = malloc(ml * sizeof *ref);
        float *got = malloc(ml * sizeof *got), *term = malloc(ml * sizeof *term);
        float *lut = malloc(ml * sizeof *lut), *lo = malloc(m * sizeof *lo), *hi = malloc(m * sizeof *hi);
        cr_assert(cb && cbt && q && ref && got && term && lut && lo && hi);
        for (size_t i = 0; i < ml * (dim / m); i++) cb[i] = rnd(&s);
        for (size_t i = 0; i < dim; i++) q[i] = rnd(&s);
        for (size_t i = 0; i < ml; i++) term[i] = 10 * rnd(&s);
        ivf_pq_dot_lut(cb, dim, m, q, ref);
        ivf_pq_transpose(cb, dim, m, cbt);
        ivf_dot_lut_t(cbt, dim, m, q, got);
        cr_assert_eq(memcmp(ref, got, ml * sizeof *ref), 0, "dot tables differ (%s, dim %zu)",
                     level, dim);
        for (int with_term = 0; with_term < 2; with_term++) {
            float a = with_term ? -2.0f : -1.0f;
            cr_assert_eq(ivf_lut_build(with_term ? term : NULL, ref, a, (uint32_t)m, lut, lo, hi), 0);
            for (size_t j = 0; j < m; j++) {
                float l = INFINITY, h = -INFINITY;
                for (size_t w = 0; w < IVF_KSUB; w++) {
                    size_t i = j * IVF_KSUB + w;
                    float v = with_term ? term[i] - 2.0f * ref[i] : -ref[i];
                    cr_assert_eq(lut[i], v, "entry %zu (%s)", i, level);
                    l = v < l ? v : l;
                    h = v > h ? v : h;
                }
                cr_assert_eq(lo[j], l, "minimum of table %zu (%s)", j, level);
                cr_assert_eq(hi[j], h, "maximum of table %zu (%s)", j, level);
            }
        }
        ref[m * IVF_KSUB - 3] = NAN;
        cr_assert_neq(ivf_lut_build(term, ref, -2.0f, (uint32_t)m, lut, lo, hi), 0, "NaN missed");
        cr_assert_neq(ivf_lut_build(NULL, ref, -1.0f, (uint32_t)m, lut, lo, hi), 0, "NaN missed");
        free(cb); free(cbt); free(q); free(ref); free(got); free(term); free(lut); free(lo); free(hi);
    }
}

Test(ivfpq_kernels, scalar) { check_level("scalar"); }
Test(ivfpq_kernels, avx2) { check_level("avx2"); }
Test(ivfpq_kernels, avx512) { check_level("avx512"); }

/* The block scan at every path keeps exactly the same candidates with the
 * same bits: float gathers (no u8 tables), the u8 pre-filter (VBMI shuffles
 * at AVX-512 with VBMI, else the scalar quantized loop), for block lengths
 * around the 16- and 64-entry steps, with and without L2 terms, with tied
 * distances (repeated codes), and tables whose range is tiny next to their
 * magnitude (the slack must cover float rounding, not only quantization). */
static size_t scan_once(const ivf_block *b, const float *lut, uint32_t m, float base, int quant,
                        size_t k, ivf_cand *out)
{
    float lo[64], hi[64], smin[65], qmax = 0;
    uint8_t *q = malloc((size_t)m * IVF_KSUB);
    ivf_hkey *key = malloc(k * sizeof *key);
    ivf_cand *side = malloc(k * sizeof *side);
    cr_assert(q && key && side && m <= 64);
    smin[m] = 0;
    for (uint32_t j = m; j-- > 0;) {
        lo[j] = INFINITY; hi[j] = -INFINITY;
        for (uint32_t w = 0; w < IVF_KSUB; w++) {
            float v = lut[j * IVF_KSUB + w];
            lo[j] = v < lo[j] ? v : lo[j];
            hi[j] = v > hi[j] ? v : hi[j];
        }
        smin[j] = smin[j + 1] + lo[j];
        qmax = hi[j] - lo[j] > qmax ? hi[j] - lo[j] : qmax;
    }
    ivf_scan_ctx sc = {.lut = lut, .suffix_min = smin, .m = m, .base = base};
    if (quant) cr_assert_eq(ivf_qlut_setup(&sc, lut, lo, hi, m, qmax, q), STRATA_OK);
    ivf_heap h;
    ivf_heap_init(&h, key, side, k);
    ivf_scan_block(&sc, b, &h);
    cr_assert_eq(sc.bad, 0);
    size_t n = ivf_heap_finish(&h, out);
    free(q); free(key); free(side);
    return n;
}

static void check_scan_paths(const char *level)
{
    setenv("STRATA_SIMD", level, 1);
    uint64_t s = 7;
    const uint32_t ns[] = {1, 15, 16, 17, 63, 64, 65, 130, 300};
    for (int variant = 0; variant < 5; variant++) {
        uint32_t m = variant & 1 ? 8 : 16;
        int terms = variant < 2, tiny = variant == 3, band = variant == 4;
        for (size_t t = 0; t < sizeof ns / sizeof ns[0]; t++) {
            uint32_t n = ns[t];
            float *lut = malloc((size_t)m * IVF_KSUB * sizeof *lut);
            uint8_t *ids = malloc(8 * (size_t)n), *codes = malloc((size_t)m * n);
            uint8_t *tb = malloc(4 * (size_t)n);
            cr_assert(lut && ids && codes && tb);
            for (size_t i = 0; i < (size_t)m * IVF_KSUB; i++)
                lut[i] = tiny ? 1e5f + rnd(&s) * 1e-2f : rnd(&s) * 100.0f;
            /* band: each table spans 0..2550 (one u8 step = 10) but codes
             * 1..254 fall in [1000, 1010): quantized sums cannot order
             * them, so only a correct slack keeps the float path's set */
            for (uint32_t j = 0; band && j < m; j++)
                for (uint32_t w = 0; w < IVF_KSUB; w++)
                    lut[j * IVF_KSUB + w] = w == 0 ? 0.0f : w == 255 ? 2550.0f
                                                   : 1005.0f + rnd(&s) * (5.0f / 64.0f);
            for (uint32_t i = 0; i < n; i++) {
                uint64_t id = 1000 + (uint64_t)i * 3;
                memcpy(ids + 8 * (size_t)i, &id, 8);
                float tv = terms ? rnd(&s) * 50.0f : 0.0f;
                if (i % 7 == 3) tv = 0.0f;
                memcpy(tb + 4 * (size_t)i, &tv, 4);
                for (uint32_t j = 0; j < m; j++) {            /* every 5th repeats entry 0 */
                    uint8_t c = (uint8_t)(rnd(&s) * 1000.0f);
                    if (band) c = (uint8_t)(1 + c % 254);
                    codes[(size_t)j * n + i] = i % 5 == 4 ? codes[(size_t)j * n] : c;
                }
            }
            ivf_block b = {.n = n, .ids = ids, .terms = terms ? tb : NULL, .codes = codes};
            for (size_t k = 1; k <= 64; k *= 4) {
                ivf_cand a[64], q[64];
                size_t na = scan_once(&b, lut, m, 5.0f, 0, k, a);
                size_t nq = scan_once(&b, lut, m, 5.0f, 1, k, q);
                cr_assert_eq(na, nq, "%s n %u k %zu variant %d", level, n, k, variant);
                cr_assert_eq(na, k < n ? k : n);
                for (size_t i = 0; i < na; i++) {
                    cr_assert_eq(a[i].id, q[i].id, "%s n %u k %zu rank %zu", level, n, k, i);
                    cr_assert_eq(a[i].dist, q[i].dist);
                    if (i) cr_assert(a[i - 1].dist < a[i].dist ||
                                     (a[i - 1].dist == a[i].dist && a[i - 1].id < a[i].id));
                }
            }
            free(lut); free(ids); free(codes); free(tb);
        }
    }
}

Test(ivfpq_kernels, scan_paths_scalar) { check_scan_paths("scalar"); }
Test(ivfpq_kernels, scan_paths_avx2) { check_scan_paths("avx2"); }
Test(ivfpq_kernels, scan_paths_avx512) { check_scan_paths("avx512"); }

/* ivf_assign picks, at every level, the first centroid of least distance
 * (ties to the smaller index). dim 1 makes each sgemm product a single
 * rounding, so the reference below computes the same distances bit for
 * bit; repeated centroids make exact ties; k = 300 leaves a tail after the
 * 64-wide steps; IP and L2. */
static void check_assign(const char *level)
{
    setenv("STRATA_SIMD", level, 1);
    enum { NP = 500, KC = 300 };
    float x[NP], c[KC];
    uint32_t got[NP];
    uint64_t s = 11;
    for (size_t j = 0; j < KC; j++) c[j] = j % 3 == 2 ? c[j - 1] : rnd(&s);   /* ties */
    for (size_t i = 0; i < NP; i++) x[i] = rnd(&s);
    x[0] = 0.0f;                                         /* every distance ties */
    for (int ip = 0; ip < 2; ip++) {
        cr_assert_eq(ivf_assign(x, NP, 1, c, KC, ip, got, NULL), STRATA_OK);
        for (size_t i = 0; i < NP; i++) {
            float b = INFINITY;
            uint32_t bj = 0;
            for (size_t j = 0; j < KC; j++) {
                float d = x[i] * c[j], v = ip ? -d : (0.0f + c[j] * c[j]) - 2.0f * d;
                if (v < b) { b = v; bj = (uint32_t)j; }
            }
            cr_assert_eq(got[i], bj, "%s ip %d point %zu", level, ip, i);
        }
    }
}

Test(ivfpq_kernels, assign_scalar) { check_assign("scalar"); }
Test(ivfpq_kernels, assign_avx2) { check_assign("avx2"); }
Test(ivfpq_kernels, assign_avx512) { check_assign("avx512"); }
