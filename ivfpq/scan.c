/* ivfpq/scan.c - asymmetric-distance scan of one posting block into a top-k
 * heap: scalar reference, AVX2 (8 lanes) and AVX-512 (16 lanes) gathers from
 * the float tables, and the quantized u8 table path.
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
