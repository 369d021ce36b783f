/* vector/kernels_avx512.c - AVX-512 kernels (table "avx512").
 *
 * Needs AVX-512 F/BW/DQ/VL and POPCNT at run time (dispatch.c checks); the
 * file is compiled without global -m flags: every function carries a target
 * attribute, so nothing here runs unless the table is handed out.
 *
 * Invariants:
 *  (1) Per vector, one 16-lane accumulator walks the dimensions in 16-float
 *      chunks; the last partial chunk is read with a masked load (the masked-off
 *      lanes are not read, so no over-read past the vector).
 *  (2) Every vector's 16 lanes are reduced by the same tree: 256-bit halves,
 *      then 128-bit halves, then (x0 + x1) + (x2 + x3). The 4-vector block and
 *      the single-vector path both do exactly this, so a batch result equals the
 *      single-pair result bit for bit (vector.h invariant (2)).
 *  (3) Blocks of 4 vectors keep 4 independent FMA chains in flight; the scan is
 *      bound by memory bandwidth, not by the FMA latency.
 */
#include "vector_int.h"

#if VEC_HAVE_X86
#include <immintrin.h>

#define T512 __attribute__((target("avx512f,avx512bw,avx512dq,avx512vl,popcnt")))
#define INLINE512 \
    static inline __attribute__((always_inline, target("avx512f,avx512bw,avx512dq,avx512vl,popcnt")))

enum { W = 16, PREFETCH_AHEAD = 8192 };   /* floats per register; bytes ahead */

INLINE512 __mmask16 tail_mask(size_t rem) { return (__mmask16)((1u << rem) - 1u); }

/* Prefetch hint PREFETCH_AHEAD bytes past p. Integer arithmetic: the address
 * may lie past the end of the array, which prefetching tolerates but C
 * pointer arithmetic does not. */
INLINE512 void prefetch_ahead(const float *p)
{
    _mm_prefetch((const char *)((uintptr_t)p + PREFETCH_AHEAD), _MM_HINT_T0);
}

/* One cache line (16 floats) of each of the 4 streams of a block. Software
 * prefetch 8 KiB ahead measured ~10% faster than the hardware prefetcher alone
 * on 512 MB scans (the AVX-512 Xeon of docs/VECTORS.md). */
INLINE512 void prefetch4(const float *a, const float *b, const float *c, const float *d)
{
    prefetch_ahead(a);
    prefetch_ahead(b);
    prefetch_ahead(c);
    prefetch_ahead(d);
}

/* One accumulation step of metric m (compile-time constant after inlining). */
INLINE512 __m512 step(int m, __m512 acc, __m512 q, __m512 x)
{
    if (m == STRATA_METRIC_L2) {
        __m512 d = _mm512_sub_ps(x, q);
        return _mm512_fmadd_ps(d, d, acc);
    }
    if (m == STRATA_METRIC_IP) return _mm512_fmadd_ps(q, x, acc);
    return _mm512_add_ps(acc, _mm512_abs_ps(_mm512_sub_ps(x, q)));    /* L1 */
}

/* Reduction tree of invariant (2), stopping at 4 partial sums per vector. */
INLINE512 __m128 fold4(__m512 a)
{
    __m256 y = _mm256_add_ps(_mm512_castps512_ps256(a), _mm512_extractf32x8_ps(a, 1));
    return _mm_add_ps(_mm256_castps256_ps128(y), _mm256_extractf128_ps(y, 1));
}

INLINE512 float hsum(__m512 a)
{
    __m128 x = fold4(a);
    __m128 h = _mm_hadd_ps(x, x);
    return _mm_cvtss_f32(_mm_hadd_ps(h, h));
}

/* Sums of 4 vectors' accumulators, lane j = vector j. */
INLINE512 __m128 hsum4(__m512 a0, __m512 a1, __m512 a2, __m512 a3)
{
    __m128 h01 = _mm_hadd_ps(fold4(a0), fold4(a1));
    __m128 h23 = _mm_hadd_ps(fold4(a2), fold4(a3));
    return _mm_hadd_ps(h01, h23);
}

INLINE512 float one(int m, const float *q, const float *x, size_t dim)
{
    __m512 acc = _mm512_setzero_ps();
    size_t i = 0;
    for (; i + W <= dim; i += W)
        acc = step(m, acc, _mm512_loadu_ps(q + i), _mm512_loadu_ps(x + i));
    if (i < dim) {
        __mmask16 k = tail_mask(dim - i);
        acc = step(m, acc, _mm512_maskz_loadu_ps(k, q + i), _mm512_maskz_loadu_ps(k, x + i));
    }
    float s = hsum(acc);
    return m == STRATA_METRIC_IP ? -s : s;
}

/* Four consecutive vectors x, x + dim, x + 2*dim, x + 3*dim. */
INLINE512 void four(int m, const float *q, const float *x, size_t dim, float *out)
{
    const float *x1 = x + dim, *x2 = x + 2 * dim, *x3 = x + 3 * dim;
    __m512 a0 = _mm512_setzero_ps(), a1 = a0, a2 = a0, a3 = a0;
    size_t i = 0;
    for (; i + W <= dim; i += W) {
        if ((i & 15) == 0) prefetch4(x + i, x1 + i, x2 + i, x3 + i);
        __m512 qv = _mm512_loadu_ps(q + i);
        a0 = step(m, a0, qv, _mm512_loadu_ps(x + i));
        a1 = step(m, a1, qv, _mm512_loadu_ps(x1 + i));
        a2 = step(m, a2, qv, _mm512_loadu_ps(x2 + i));
        a3 = step(m, a3, qv, _mm512_loadu_ps(x3 + i));
    }
    if (i < dim) {
        __mmask16 k = tail_mask(dim - i);
        __m512 qv = _mm512_maskz_loadu_ps(k, q + i);
        a0 = step(m, a0, qv, _mm512_maskz_loadu_ps(k, x + i));
        a1 = step(m, a1, qv, _mm512_maskz_loadu_ps(k, x1 + i));
        a2 = step(m, a2, qv, _mm512_maskz_loadu_ps(k, x2 + i));
        a3 = step(m, a3, qv, _mm512_maskz_loadu_ps(k, x3 + i));
    }
    __m128 s = hsum4(a0, a1, a2, a3);
    if (m == STRATA_METRIC_IP) s = _mm_xor_ps(s, _mm_set1_ps(-0.0f));
    _mm_storeu_ps(out, s);
}

INLINE512 void batch(int m, const float *q, const float *base, size_t n, size_t dim, float *out)
{
    size_t j = 0;
    for (; j + 4 <= n; j += 4) four(m, q, base + j * dim, dim, out + j);
    for (; j < n; j++) out[j] = one(m, q, base + j * dim, dim);
}

T512 static float l2_512(const float *a, const float *b, size_t dim)
{
    return one(STRATA_METRIC_L2, a, b, dim);
}
T512 static float ip_512(const float *a, const float *b, size_t dim)
{
    return one(STRATA_METRIC_IP, a, b, dim);
}
T512 static float l1_512(const float *a, const float *b, size_t dim)
{
    return one(STRATA_METRIC_L1, a, b, dim);
}
T512 static void l2_batch_512(const float *q, const float *base, size_t n, size_t dim, float *out)
{
    batch(STRATA_METRIC_L2, q, base, n, dim, out);
}
T512 static void ip_batch_512(const float *q, const float *base, size_t n, size_t dim, float *out)
{
    batch(STRATA_METRIC_IP, q, base, n, dim, out);
}
T512 static void l1_batch_512(const float *q, const float *base, size_t n, size_t dim, float *out)
{
    batch(STRATA_METRIC_L1, q, base, n, dim, out);
}

/* Cosine: per vector the dot with q and its own squared norm; |q|^2 is
 * computed once per batch by the same loop (norm2), so it is the same value
 * the single-pair kernel gets. */
INLINE512 float norm2(const float *x, size_t dim)
{
    __m512 acc = _mm512_setzero_ps();
    size_t i = 0;
    for (; i + W <= dim; i += W) {
        __m512 v = _mm512_loadu_ps(x + i);
        acc = _mm512_fmadd_ps(v, v, acc);
    }
    if (i < dim) {
        __m512 v = _mm512_maskz_loadu_ps(tail_mask(dim - i), x + i);
        acc = _mm512_fmadd_ps(v, v, acc);
    }
    return hsum(acc);
}

INLINE512 float cos_one(const float *q, float qq, const float *x, size_t dim)
{
    __m512 d = _mm512_setzero_ps(), n = d;
    size_t i = 0;
    for (; i + W <= dim; i += W) {
        __m512 qv = _mm512_loadu_ps(q + i), xv = _mm512_loadu_ps(x + i);
        d = _mm512_fmadd_ps(qv, xv, d);
        n = _mm512_fmadd_ps(xv, xv, n);
    }
    if (i < dim) {
        __mmask16 k = tail_mask(dim - i);
        __m512 qv = _mm512_maskz_loadu_ps(k, q + i), xv = _mm512_maskz_loadu_ps(k, x + i);
        d = _mm512_fmadd_ps(qv, xv, d);
        n = _mm512_fmadd_ps(xv, xv, n);
    }
    return vec_cosine_finish(hsum(d), qq, hsum(n));
}

INLINE512 void cos_four(const float *q, float qq, const float *x, size_t dim, float *out)
{
    const float *xs[4] = { x, x + dim, x + 2 * dim, x + 3 * dim };
    __m512 d[4], n[4];
    for (int v = 0; v < 4; v++) d[v] = n[v] = _mm512_setzero_ps();
    size_t i = 0;
    for (; i + W <= dim; i += W) {
        if ((i & 15) == 0) prefetch4(xs[0] + i, xs[1] + i, xs[2] + i, xs[3] + i);
        __m512 qv = _mm512_loadu_ps(q + i);
        for (int v = 0; v < 4; v++) {
            __m512 xv = _mm512_loadu_ps(xs[v] + i);
            d[v] = _mm512_fmadd_ps(qv, xv, d[v]);
            n[v] = _mm512_fmadd_ps(xv, xv, n[v]);
        }
    }
    if (i < dim) {
        __mmask16 k = tail_mask(dim - i);
        __m512 qv = _mm512_maskz_loadu_ps(k, q + i);
        for (int v = 0; v < 4; v++) {
            __m512 xv = _mm512_maskz_loadu_ps(k, xs[v] + i);
            d[v] = _mm512_fmadd_ps(qv, xv, d[v]);
            n[v] = _mm512_fmadd_ps(xv, xv, n[v]);
        }
    }
    float ds[4], ns[4];
    _mm_storeu_ps(ds, hsum4(d[0], d[1], d[2], d[3]));
    _mm_storeu_ps(ns, hsum4(n[0], n[1], n[2], n[3]));
    for (int v = 0; v < 4; v++) out[v] = vec_cosine_finish(ds[v], qq, ns[v]);
}

T512 static float cosine_512(const float *a, const float *b, size_t dim)
{
    return cos_one(a, norm2(a, dim), b, dim);
}

T512 static void cosine_batch_512(const float *q, const float *base, size_t n, size_t dim,
                                  float *out)
{
    float qq = norm2(q, dim);
    size_t j = 0;
    for (; j + 4 <= n; j += 4) cos_four(q, qq, base + j * dim, dim, out + j);
    for (; j < n; j++) out[j] = cos_one(q, qq, base + j * dim, dim);
}

/* u8 L2: widen 32 bytes to 16-bit lanes, subtract, and let vpmaddwd square and
 * add pairs into 32-bit lanes (each lane stays below 2^31 for dim <= 65536). */
T512 static uint32_t l2_u8_512(const uint8_t *a, const uint8_t *b, size_t dim)
{
    __m512i acc = _mm512_setzero_si512();
    size_t i = 0;
    for (; i + 32 <= dim; i += 32) {
        __m512i va = _mm512_cvtepu8_epi16(_mm256_loadu_si256((const __m256i *)(a + i)));
        __m512i vb = _mm512_cvtepu8_epi16(_mm256_loadu_si256((const __m256i *)(b + i)));
        __m512i d = _mm512_sub_epi16(va, vb);
        acc = _mm512_add_epi32(acc, _mm512_madd_epi16(d, d));
    }
    if (i < dim) {
        __mmask32 k = (__mmask32)((1ull << (dim - i)) - 1u);
        __m512i va = _mm512_cvtepu8_epi16(_mm256_maskz_loadu_epi8(k, a + i));
        __m512i vb = _mm512_cvtepu8_epi16(_mm256_maskz_loadu_epi8(k, b + i));
        __m512i d = _mm512_sub_epi16(va, vb);
        acc = _mm512_add_epi32(acc, _mm512_madd_epi16(d, d));
    }
    uint32_t lanes[16];
    _mm512_storeu_si512(lanes, acc);
    uint32_t s = 0;
    for (int l = 0; l < 16; l++) s += lanes[l];
    return s;
}

T512 static void l2_u8_batch_512(const uint8_t *q, const uint8_t *base, size_t n, size_t dim,
                                 uint32_t *out)
{
    for (size_t j = 0; j < n; j++) out[j] = l2_u8_512(q, base + j * dim, dim);
}

T512 static uint64_t hamming_512(const uint64_t *a, const uint64_t *b, size_t n_words)
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

T512 static void hamming_batch_512(const uint64_t *q, const uint64_t *base, size_t n,
                                   size_t n_words, uint64_t *out)
{
    for (size_t j = 0; j < n; j++) out[j] = hamming_512(q, base + j * n_words, n_words);
}

const vec_kernels vec_kernels_avx512 = {
    .name = "avx512",
    .level = VEC_LEVEL_AVX512,
    .dist = {
        [STRATA_METRIC_L2] = l2_512, [STRATA_METRIC_IP] = ip_512,
        [STRATA_METRIC_COSINE] = cosine_512, [STRATA_METRIC_L1] = l1_512,
    },
    .dist_batch = {
        [STRATA_METRIC_L2] = l2_batch_512, [STRATA_METRIC_IP] = ip_batch_512,
        [STRATA_METRIC_COSINE] = cosine_batch_512, [STRATA_METRIC_L1] = l1_batch_512,
    },
    .l2_u8 = l2_u8_512,
    .l2_u8_batch = l2_u8_batch_512,
    .hamming = hamming_512,
    .hamming_batch = hamming_batch_512,
};

#else
typedef int vec_kernels_avx512_absent;   /* ISO C: no empty translation unit */
#endif /* VEC_HAVE_X86 */
