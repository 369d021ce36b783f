/* ivfpq/scan.c - asymmetric-distance scan of one posting block into a top-k
 * heap: scalar reference, AVX2 (8 lanes) and AVX-512 (16 lanes) gathers from
 * the float tables, and the quantized u8 table path. Also the per-query table
 * kernels: the inner-product tables from transposed codebooks, and the fused
 * table build + per-table minimum/maximum (one pass, run per probed cluster
 * for L2).
 * Early termination: after half of the subspaces, a partial sum plus the sum
 * of the remaining tables' minima is a lower bound of the final distance
 * (valid for every metric, since the minima may be negative); codes whose
 * bound exceeds the heap's worst are dropped without finishing their sums.
 * Invariants: (1) every path pushes exactly the entries the scalar float path
 * would keep with the same heap, so results do not depend on the level beyond
 * float summation order; (2) the level follows vec_kernels_get() (so
 * STRATA_SIMD=scalar forces the reference); (3) a block's bytes are only read
 * inside the view ivf_block_view() checked.
 */
#include <math.h>
#include <string.h>
#if defined(__x86_64__) || defined(__i386__)
#include <immintrin.h>
#define IVF_X86 1
#endif

#include "ivfpq_int.h"

static float heap_thr(const vec_topk *h) { return h->n < h->k ? INFINITY : h->hits[0].dist; }

/* Offer entry i with final distance d. */
static inline void offer(ivf_scan_ctx *s, const ivf_block *b, uint32_t i, float d, vec_topk *h)
{
    uint64_t id = ivf_le64_get(b->ids + 8 * (size_t)i);
    if (!vec_topk_accepts(h, d, id)) return;
    if (s->keep) {
        uint64_t attr = b->attrs ? ivf_le64_get(b->attrs + 8 * (size_t)i) : 0;
        if (!s->keep(s->keep_ctx, id, attr)) return;
    }
    vec_topk_push(h, id, d);
}

static float entry_sum(const ivf_scan_ctx *s, const ivf_block *b, uint32_t i, uint32_t j0,
                       float d)
{
    for (uint32_t j = j0; j < s->m; j++) d += s->lut[j * IVF_KSUB + b->codes[(size_t)j * b->n + i]];
    return d;
}

static void scan_scalar(ivf_scan_ctx *s, const ivf_block *b, uint32_t i0, vec_topk *h)
{
    uint32_t half = s->m / 2;
    for (uint32_t i = i0; i < b->n; i++) {
        float d = s->base;
        for (uint32_t j = 0; j < half; j++) d += s->lut[j * IVF_KSUB + b->codes[(size_t)j * b->n + i]];
        if (d + s->suffix_min[half] > heap_thr(h)) continue;
        offer(s, b, i, entry_sum(s, b, i, half, d), h);
    }
}

/* Quantized path: u8 tables give a bound within qslack of the float sum;
 * only entries whose bound can enter the heap get the exact float sum. */
static void scan_quant(ivf_scan_ctx *s, const ivf_block *b, vec_topk *h)
{
    const uint8_t *q = s->qlut;
    for (uint32_t i = 0; i < b->n; i++) {
        uint32_t sum = 0;
        for (uint32_t j = 0; j < s->m; j++) sum += q[j * IVF_KSUB + b->codes[(size_t)j * b->n + i]];
        float approx = s->base + s->qbias + s->qscale * (float)sum;
        if (approx - s->qslack > heap_thr(h)) continue;
        offer(s, b, i, entry_sum(s, b, i, 0, s->base), h);
    }
}

#ifdef IVF_X86
__attribute__((target("avx2,fma")))
static uint32_t scan_avx2(ivf_scan_ctx *s, const ivf_block *b, vec_topk *h)
{
    uint32_t half = s->m / 2, n = b->n, i = 0;
    float lanes[8];
    for (; i + 8 <= n; i += 8) {
        __m256 acc = _mm256_set1_ps(s->base);
        uint32_t j = 0;
        for (; j < half; j++) {
            __m128i c8 = _mm_loadl_epi64((const __m128i *)(b->codes + (size_t)j * n + i));
            acc = _mm256_add_ps(acc, _mm256_i32gather_ps(s->lut + j * IVF_KSUB,
                                                         _mm256_cvtepu8_epi32(c8), 4));
        }
        float thr = heap_thr(h);
        __m256 lb = _mm256_add_ps(acc, _mm256_set1_ps(s->suffix_min[half]));
        if (_mm256_movemask_ps(_mm256_cmp_ps(lb, _mm256_set1_ps(thr), _CMP_LE_OQ)) == 0) continue;
        for (; j < s->m; j++) {
            __m128i c8 = _mm_loadl_epi64((const __m128i *)(b->codes + (size_t)j * n + i));
            acc = _mm256_add_ps(acc, _mm256_i32gather_ps(s->lut + j * IVF_KSUB,
                                                         _mm256_cvtepu8_epi32(c8), 4));
        }
        int mask = _mm256_movemask_ps(_mm256_cmp_ps(acc, _mm256_set1_ps(thr), _CMP_LE_OQ));
        _mm256_storeu_ps(lanes, acc);
        while (mask) {
            int l = __builtin_ctz((unsigned)mask);
            mask &= mask - 1;
            offer(s, b, i + (uint32_t)l, lanes[l], h);
        }
    }
    return i;
}

__attribute__((target("avx512f,avx512bw,avx512dq,avx512vl")))
static uint32_t scan_avx512(ivf_scan_ctx *s, const ivf_block *b, vec_topk *h)
{
    uint32_t half = s->m / 2, n = b->n, i = 0;
    float lanes[16];
    for (; i + 16 <= n; i += 16) {
        __m512 acc = _mm512_set1_ps(s->base);
        uint32_t j = 0;
        for (; j < half; j++) {
            __m128i c8 = _mm_loadu_si128((const __m128i *)(b->codes + (size_t)j * n + i));
            acc = _mm512_add_ps(acc, _mm512_i32gather_ps(_mm512_cvtepu8_epi32(c8),
                                                         s->lut + j * IVF_KSUB, 4));
        }
        float thr = heap_thr(h);
        __m512 lb = _mm512_add_ps(acc, _mm512_set1_ps(s->suffix_min[half]));
        if (_mm512_cmp_ps_mask(lb, _mm512_set1_ps(thr), _CMP_LE_OQ) == 0) continue;
        for (; j < s->m; j++) {
            __m128i c8 = _mm_loadu_si128((const __m128i *)(b->codes + (size_t)j * n + i));
            acc = _mm512_add_ps(acc, _mm512_i32gather_ps(_mm512_cvtepu8_epi32(c8),
                                                         s->lut + j * IVF_KSUB, 4));
        }
        unsigned mask = _mm512_cmp_ps_mask(acc, _mm512_set1_ps(thr), _CMP_LE_OQ);
        _mm512_storeu_ps(lanes, acc);
        while (mask) {
            int l = __builtin_ctz(mask);
            mask &= mask - 1;
            offer(s, b, i + (uint32_t)l, lanes[l], h);
        }
    }
    return i;
}
#endif

/* ---- table kernels ---- */

/* Products summed per codeword in the order of ivf_pq_dot_lut (0 + q_0 w_0 +
 * q_1 w_1 ...); ISO C mode does not contract a*b+c, so every level gives the
 * same bits. Vectorized over the 256 codewords. */
static inline __attribute__((always_inline)) void
dot_lut_body(const float *restrict cbt, size_t dsub, size_t m, const float *restrict q,
             float *restrict lut)
{
    for (size_t j = 0; j < m; j++) {
        float *restrict l = lut + j * IVF_KSUB;
        const float *qj = q + j * dsub, *w = cbt + j * dsub * IVF_KSUB;
        float q0 = qj[0];
        for (size_t c = 0; c < IVF_KSUB; c++) l[c] = 0.0f + q0 * w[c];
        for (size_t t = 1; t < dsub; t++) {
            float qt = qj[t];
            const float *restrict wt = w + t * IVF_KSUB;
            for (size_t c = 0; c < IVF_KSUB; c++) l[c] += qt * wt[c];
        }
    }
}

static void dot_lut_scalar(const float *cbt, size_t dsub, size_t m, const float *q, float *lut)
{
    dot_lut_body(cbt, dsub, m, q, lut);
}

/* Scalar fused build: four independent minimum/maximum chains. */
static int lut_build_scalar(const float *term, const float *qdot, float a, uint32_t m,
                            float *lut, float *lo, float *hi)
{
    int nan = 0;
    for (uint32_t j = 0; j < m; j++) {
        size_t o = (size_t)j * IVF_KSUB;
        float l4[4] = {INFINITY, INFINITY, INFINITY, INFINITY};
        float h4[4] = {-INFINITY, -INFINITY, -INFINITY, -INFINITY};
        for (uint32_t w = 0; w < IVF_KSUB; w++) {
            float v = a * qdot[o + w];
            if (term) v = term[o + w] + v;
            lut[o + w] = v;
            nan |= v != v;
            l4[w & 3] = v < l4[w & 3] ? v : l4[w & 3];
            h4[w & 3] = v > h4[w & 3] ? v : h4[w & 3];
        }
        float l01 = l4[0] < l4[1] ? l4[0] : l4[1], l23 = l4[2] < l4[3] ? l4[2] : l4[3];
        float h01 = h4[0] > h4[1] ? h4[0] : h4[1], h23 = h4[2] > h4[3] ? h4[2] : h4[3];
        lo[j] = l01 < l23 ? l01 : l23;
        hi[j] = h01 > h23 ? h01 : h23;
    }
    return nan;
}

#ifdef IVF_X86
__attribute__((target("avx2,fma")))
static void dot_lut_avx2(const float *cbt, size_t dsub, size_t m, const float *q, float *lut)
{
    dot_lut_body(cbt, dsub, m, q, lut);
}

__attribute__((target("avx512f,avx512bw,avx512dq,avx512vl")))
static void dot_lut_avx512(const float *cbt, size_t dsub, size_t m, const float *q, float *lut)
{
    dot_lut_body(cbt, dsub, m, q, lut);
}

/* mul then add (not fma): the same rounding as the scalar expression. */
__attribute__((target("avx2,fma")))
static int lut_build_avx2(const float *term, const float *qdot, float a, uint32_t m, float *lut,
                          float *lo, float *hi)
{
    __m256 va = _mm256_set1_ps(a), bad = _mm256_setzero_ps();
    for (uint32_t j = 0; j < m; j++) {
        size_t o = (size_t)j * IVF_KSUB;
        __m256 vl = _mm256_set1_ps(INFINITY), vh = _mm256_set1_ps(-INFINITY);
        for (uint32_t w = 0; w < IVF_KSUB; w += 8) {
            __m256 v = _mm256_mul_ps(va, _mm256_loadu_ps(qdot + o + w));
            if (term) v = _mm256_add_ps(_mm256_loadu_ps(term + o + w), v);
            _mm256_storeu_ps(lut + o + w, v);
            bad = _mm256_or_ps(bad, _mm256_cmp_ps(v, v, _CMP_UNORD_Q));
            vl = _mm256_min_ps(vl, v);
            vh = _mm256_max_ps(vh, v);
        }
        __m128 l = _mm_min_ps(_mm256_castps256_ps128(vl), _mm256_extractf128_ps(vl, 1));
        __m128 h = _mm_max_ps(_mm256_castps256_ps128(vh), _mm256_extractf128_ps(vh, 1));
        l = _mm_min_ps(l, _mm_movehl_ps(l, l));
        h = _mm_max_ps(h, _mm_movehl_ps(h, h));
        l = _mm_min_ss(l, _mm_shuffle_ps(l, l, 1));
        h = _mm_max_ss(h, _mm_shuffle_ps(h, h, 1));
        lo[j] = _mm_cvtss_f32(l);
        hi[j] = _mm_cvtss_f32(h);
    }
    return _mm256_movemask_ps(bad) != 0;
}

__attribute__((target("avx512f,avx512bw,avx512dq,avx512vl")))
static int lut_build_avx512(const float *term, const float *qdot, float a, uint32_t m,
                            float *lut, float *lo, float *hi)
{
    __m512 va = _mm512_set1_ps(a);
    __mmask16 bad = 0;
    for (uint32_t j = 0; j < m; j++) {
        size_t o = (size_t)j * IVF_KSUB;
        __m512 vl = _mm512_set1_ps(INFINITY), vh = _mm512_set1_ps(-INFINITY);
        for (uint32_t w = 0; w < IVF_KSUB; w += 16) {
            __m512 v = _mm512_mul_ps(va, _mm512_loadu_ps(qdot + o + w));
            if (term) v = _mm512_add_ps(_mm512_loadu_ps(term + o + w), v);
            _mm512_storeu_ps(lut + o + w, v);
            bad |= _mm512_cmp_ps_mask(v, v, _CMP_UNORD_Q);
            vl = _mm512_min_ps(vl, v);
            vh = _mm512_max_ps(vh, v);
        }
        lo[j] = _mm512_reduce_min_ps(vl);
        hi[j] = _mm512_reduce_max_ps(vh);
    }
    return bad != 0;
}
#endif

void ivf_dot_lut_t(const float *cbt, size_t dim, size_t m, const float *q, float *lut)
{
    size_t dsub = dim / m;
#ifdef IVF_X86
    vec_level lv = vec_kernels_get()->level;
    if (lv == VEC_LEVEL_AVX512) { dot_lut_avx512(cbt, dsub, m, q, lut); return; }
    if (lv == VEC_LEVEL_AVX2) { dot_lut_avx2(cbt, dsub, m, q, lut); return; }
#endif
    dot_lut_scalar(cbt, dsub, m, q, lut);
}

int ivf_lut_build(const float *term, const float *qdot, float a, uint32_t m, float *lut,
                  float *lo, float *hi)
{
#ifdef IVF_X86
    vec_level lv = vec_kernels_get()->level;
    if (lv == VEC_LEVEL_AVX512) return lut_build_avx512(term, qdot, a, m, lut, lo, hi);
    if (lv == VEC_LEVEL_AVX2) return lut_build_avx2(term, qdot, a, m, lut, lo, hi);
#endif
    return lut_build_scalar(term, qdot, a, m, lut, lo, hi);
}

/* ---- block scan ---- */

void ivf_scan_block(ivf_scan_ctx *s, const ivf_block *b, vec_topk *h)
{
    s->n_scanned += b->n;
    if (s->qlut) { scan_quant(s, b, h); return; }
    uint32_t done = 0;
#ifdef IVF_X86
    vec_level lv = vec_kernels_get()->level;
    if (lv == VEC_LEVEL_AVX512) done = scan_avx512(s, b, h);
    else if (lv == VEC_LEVEL_AVX2) done = scan_avx2(s, b, h);
#endif
    scan_scalar(s, b, done, h);
}
