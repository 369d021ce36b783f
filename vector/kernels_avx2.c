/* vector/kernels_avx2.c - AVX2 + FMA kernels (table "avx2").
 *
 * Needs AVX2, FMA and POPCNT at run time (dispatch.c checks); the file is
 * compiled without global -m flags: every function carries a target
 * attribute, so nothing here runs unless the table is handed out.
 *
 * Invariants:
 *  (1) Per vector, one 8-lane accumulator walks the dimensions in 8-float
 *      chunks; the last partial chunk is read with vmaskmovps (masked-off lanes
 *      are not read, so no over-read past the vector).
 *  (2) Every vector's 8 lanes are reduced by the same tree: 128-bit halves,
 *      then (x0 + x1) + (x2 + x3). The 4-vector block and the single-vector path
 *      both do exactly this, so a batch result equals the single-pair result bit
 *      for bit (vector.h invariant (2)).
 *  (3) Blocks of 4 vectors keep 4 independent FMA chains in flight.
 */
#include "vector_int.h"

#if VEC_HAVE_X86
#include <immintrin.h>

#define T256 __attribute__((target("avx2,fma,popcnt")))
#define INLINE256 static inline __attribute__((always_inline, target("avx2,fma,popcnt")))

enum { W = 8, PREFETCH_AHEAD = 8192 };    /* floats per register; bytes ahead */

/* tail_bits + 8 - rem: rem leading all-ones lanes, then zero lanes. */
static const int32_t tail_bits[16] = { -1, -1, -1, -1, -1, -1, -1, -1, 0, 0, 0, 0, 0, 0, 0, 0 };

INLINE256 __m256i tail_mask(size_t rem)
{
    return _mm256_loadu_si256((const __m256i *)(tail_bits + W - rem));
}

/* See kernels_avx512.c: the prefetch address may lie past the array. */
INLINE256 void prefetch_ahead(const float *p)
{
    _mm_prefetch((const char *)((uintptr_t)p + PREFETCH_AHEAD), _MM_HINT_T0);
}

/* One cache line (16 floats) of each of the 4 streams of a block. Software
 * prefetch 8 KiB ahead measured ~10% faster than the hardware prefetcher alone
 * on 512 MB scans (the AVX-512 Xeon of docs/VECTORS.md). */
INLINE256 void prefetch4(const float *a, const float *b, const float *c, const float *d)
{
    prefetch_ahead(a);
    prefetch_ahead(b);
    prefetch_ahead(c);
    prefetch_ahead(d);
}

/* One accumulation step of metric m (compile-time constant after inlining). */
INLINE256 __m256 step(int m, __m256 acc, __m256 q, __m256 x)
{
    if (m == STRATA_METRIC_L2) {
        __m256 d = _mm256_sub_ps(x, q);
        return _mm256_fmadd_ps(d, d, acc);
    }
    if (m == STRATA_METRIC_IP) return _mm256_fmadd_ps(q, x, acc);
    __m256 d = _mm256_sub_ps(x, q);                                      /* L1 */
    return _mm256_add_ps(acc, _mm256_andnot_ps(_mm256_set1_ps(-0.0f), d));
}

INLINE256 __m128 fold4(__m256 a)
{
    return _mm_add_ps(_mm256_castps256_ps128(a), _mm256_extractf128_ps(a, 1));
}

INLINE256 float hsum(__m256 a)
{
    __m128 x = fold4(a);
    __m128 h = _mm_hadd_ps(x, x);
    return _mm_cvtss_f32(_mm_hadd_ps(h, h));
}

INLINE256 __m128 hsum4(__m256 a0, __m256 a1, __m256 a2, __m256 a3)
{
    __m128 h01 = _mm_hadd_ps(fold4(a0), fold4(a1));
    __m128 h23 = _mm_hadd_ps(fold4(a2), fold4(a3));
    return _mm_hadd_ps(h01, h23);
}

INLINE256 float one(int m, const float *q, const float *x, size_t dim)
{
    __m256 acc = _mm256_setzero_ps();
    size_t i = 0;
    for (; i + W <= dim; i += W)
        acc = step(m, acc, _mm256_loadu_ps(q + i), _mm256_loadu_ps(x + i));
    if (i < dim) {
        __m256i k = tail_mask(dim - i);
        acc = step(m, acc, _mm256_maskload_ps(q + i, k), _mm256_maskload_ps(x + i, k));
    }
    float s = hsum(acc);
    return m == STRATA_METRIC_IP ? -s : s;
}

INLINE256 void four(int m, const float *q, const float *x, size_t dim, float *out)
{
    const float *x1 = x + dim, *x2 = x + 2 * dim, *x3 = x + 3 * dim;
    __m256 a0 = _mm256_setzero_ps(), a1 = a0, a2 = a0, a3 = a0;
    size_t i = 0;
    for (; i + W <= dim; i += W) {
        if ((i & 15) == 0) prefetch4(x + i, x1 + i, x2 + i, x3 + i);
        __m256 qv = _mm256_loadu_ps(q + i);
        a0 = step(m, a0, qv, _mm256_loadu_ps(x + i));
        a1 = step(m, a1, qv, _mm256_loadu_ps(x1 + i));
        a2 = step(m, a2, qv, _mm256_loadu_ps(x2 + i));
        a3 = step(m, a3, qv, _mm256_loadu_ps(x3 + i));
    }
    if (i < dim) {
        __m256i k = tail_mask(dim - i);
        __m256 qv = _mm256_maskload_ps(q + i, k);
        a0 = step(m, a0, qv, _mm256_maskload_ps(x + i, k));
        a1 = step(m, a1, qv, _mm256_maskload_ps(x1 + i, k));
        a2 = step(m, a2, qv, _mm256_maskload_ps(x2 + i, k));
        a3 = step(m, a3, qv, _mm256_maskload_ps(x3 + i, k));
    }
    __m128 s = hsum4(a0, a1, a2, a3);
    if (m == STRATA_METRIC_IP) s = _mm_xor_ps(s, _mm_set1_ps(-0.0f));
    _mm_storeu_ps(out, s);
}

INLINE256 void batch(int m, const float *q, const float *base, size_t n, size_t dim, float *out)
{
    size_t j = 0;
    for (; j + 4 <= n; j += 4) four(m, q, base + j * dim, dim, out + j);
    for (; j < n; j++) out[j] = one(m, q, base + j * dim, dim);
}

T256 static float l2_256(const float *a, const float *b, size_t dim)
{
    return one(STRATA_METRIC_L2, a, b, dim);
}
T256 static float ip_256(const float *a, const float *b, size_t dim)
{
    return one(STRATA_METRIC_IP, a, b, dim);
}
T256 static float l1_256(const float *a, const float *b, size_t dim)
{
    return one(STRATA_METRIC_L1, a, b, dim);
}
T256 static void l2_batch_256(const float *q, const float *base, size_t n, size_t dim, float *out)
{
    batch(STRATA_METRIC_L2, q, base, n, dim, out);
}
T256 static void ip_batch_256(const float *q, const float *base, size_t n, size_t dim, float *out)
{
    batch(STRATA_METRIC_IP, q, base, n, dim, out);
}
T256 static void l1_batch_256(const float *q, const float *base, size_t n, size_t dim, float *out)
{
    batch(STRATA_METRIC_L1, q, base, n, dim, out);
}

/* Cosine: as in kernels_avx512.c, |q|^2 comes from norm2 in both forms. */
INLINE256 float norm2(const float *x, size_t dim)
{
    __m256 acc = _mm256_setzero_ps();
    size_t i = 0;
    for (; i + W <= dim; i += W) {
        __m256 v = _mm256_loadu_ps(x + i);
        acc = _mm256_fmadd_ps(v, v, acc);
    }
    if (i < dim) {
        __m256 v = _mm256_maskload_ps(x + i, tail_mask(dim - i));
        acc = _mm256_fmadd_ps(v, v, acc);
    }
    return hsum(acc);
}

INLINE256 float cos_one(const float *q, float qq, const float *x, size_t dim)
{
    __m256 d = _mm256_setzero_ps(), n = d;
    size_t i = 0;
    for (; i + W <= dim; i += W) {
        __m256 qv = _mm256_loadu_ps(q + i), xv = _mm256_loadu_ps(x + i);
        d = _mm256_fmadd_ps(qv, xv, d);
        n = _mm256_fmadd_ps(xv, xv, n);
    }
    if (i < dim) {
        __m256i k = tail_mask(dim - i);
        __m256 qv = _mm256_maskload_ps(q + i, k), xv = _mm256_maskload_ps(x + i, k);
        d = _mm256_fmadd_ps(qv, xv, d);
        n = _mm256_fmadd_ps(xv, xv, n);
    }
    return vec_cosine_finish(hsum(d), qq, hsum(n));
}

INLINE256 void cos_four(const float *q, float qq, const float *x, size_t dim, float *out)
{
    const float *xs[4] = { x, x + dim, x + 2 * dim, x + 3 * dim };
    __m256 d[4], n[4];
    for (int v = 0; v < 4; v++) d[v] = n[v] = _mm256_setzero_ps();
    size_t i = 0;
    for (; i + W <= dim; i += W) {
        if ((i & 15) == 0) prefetch4(xs[0] + i, xs[1] + i, xs[2] + i, xs[3] + i);
        __m256 qv = _mm256_loadu_ps(q + i);
        for (int v = 0; v < 4; v++) {
            __m256 xv = _mm256_loadu_ps(xs[v] + i);
            d[v] = _mm256_fmadd_ps(qv, xv, d[v]);
            n[v] = _mm256_fmadd_ps(xv, xv, n[v]);
        }
    }
    if (i < dim) {
        __m256i k = tail_mask(dim - i);
        __m256 qv = _mm256_maskload_ps(q + i, k);
        for (int v = 0; v < 4; v++) {
            __m256 xv = _mm256_maskload_ps(xs[v] + i, k);
            d[v] = _mm256_fmadd_ps(qv, xv, d[v]);
            n[v] = _mm256_fmadd_ps(xv, xv, n[v]);
        }
    }
    float ds[4], ns[4];
    _mm_storeu_ps(ds, hsum4(d[0], d[1], d[2], d[3]));
    _mm_storeu_ps(ns, hsum4(n[0], n[1], n[2], n[3]));
    for (int v = 0; v < 4; v++) out[v] = vec_cosine_finish(ds[v], qq, ns[v]);
}

T256 static float cosine_256(const float *a, const float *b, size_t dim)
{
    return cos_one(a, norm2(a, dim), b, dim);
}

T256 static void cosine_batch_256(const float *q, const float *base, size_t n, size_t dim,
                                  float *out)
{
    float qq = norm2(q, dim);
    size_t j = 0;
    for (; j + 4 <= n; j += 4) cos_four(q, qq, base + j * dim, dim, out + j);
    for (; j < n; j++) out[j] = cos_one(q, qq, base + j * dim, dim);
}

/* u8 L2: widen 16 bytes to 16-bit lanes, subtract, vpmaddwd squares and adds
 * pairs into 32-bit lanes; the tail (< 16 bytes) is exact scalar code. */
T256 static uint32_t l2_u8_256(const uint8_t *a, const uint8_t *b, size_t dim)
{
    __m256i acc = _mm256_setzero_si256();
    size_t i = 0;
    for (; i + 16 <= dim; i += 16) {
        __m256i va = _mm256_cvtepu8_epi16(_mm_loadu_si128((const __m128i *)(a + i)));
        __m256i vb = _mm256_cvtepu8_epi16(_mm_loadu_si128((const __m128i *)(b + i)));
        __m256i d = _mm256_sub_epi16(va, vb);
        acc = _mm256_add_epi32(acc, _mm256_madd_epi16(d, d));
    }
    uint32_t lanes[8];
    _mm256_storeu_si256((__m256i *)lanes, acc);
    uint32_t s = 0;
    for (int l = 0; l < 8; l++) s += lanes[l];
    for (; i < dim; i++) {
        int d = (int)a[i] - (int)b[i];
        s += (uint32_t)(d * d);
    }
    return s;
}

T256 static void l2_u8_batch_256(const uint8_t *q, const uint8_t *base, size_t n, size_t dim,
                                 uint32_t *out)
{
    for (size_t j = 0; j < n; j++) out[j] = l2_u8_256(q, base + j * dim, dim);
}

T256 static uint64_t hamming_256(const uint64_t *a, const uint64_t *b, size_t n_words)
{
    uint64_t s0 = 0, s1 = 0, s2 = 0, s3 = 0;
    size_t i = 0;
    for (; i + 4 <= n_words; i += 4) {
        s0 += (uint64_t)__builtin_popcountll(a[i] ^ b[i]);
        s1 += (uint64_t)__builtin_popcountll(a[i + 1] ^ b[i + 1]);
        s2 += (uint64_t)__builtin_popcountll(a[i + 2] ^ b[i + 2]);
        s3 += (uint64_t)__builtin_popcountll(a[i + 3] ^ b[i + 3]);
    }
    for (; i < n_words; i++) s0 += (uint64_t)__builtin_popcountll(a[i] ^ b[i]);
    return (s0 + s1) + (s2 + s3);
}

T256 static void hamming_batch_256(const uint64_t *q, const uint64_t *base, size_t n,
                                   size_t n_words, uint64_t *out)
{
    for (size_t j = 0; j < n; j++) out[j] = hamming_256(q, base + j * n_words, n_words);
}

const vec_kernels vec_kernels_avx2 = {
    .name = "avx2",
    .level = VEC_LEVEL_AVX2,
    .dist = {
        [STRATA_METRIC_L2] = l2_256, [STRATA_METRIC_IP] = ip_256,
        [STRATA_METRIC_COSINE] = cosine_256, [STRATA_METRIC_L1] = l1_256,
    },
    .dist_batch = {
        [STRATA_METRIC_L2] = l2_batch_256, [STRATA_METRIC_IP] = ip_batch_256,
        [STRATA_METRIC_COSINE] = cosine_batch_256, [STRATA_METRIC_L1] = l1_batch_256,
    },
    .l2_u8 = l2_u8_256,
    .l2_u8_batch = l2_u8_batch_256,
    .hamming = hamming_256,
    .hamming_batch = hamming_batch_256,
};

#else
typedef int vec_kernels_avx2_absent;   /* ISO C: no empty translation unit */
#endif /* VEC_HAVE_X86 */
