/* fractal/adc.c - the ADC kernels of the posting-list scan, over one block of
 * FRAC_BLK codes stored subspace-major (byte j of lane l at j * 64 + l):
 *  - f32 sums sum_j lut[j][code_l[j]] against the query table (m * 256
 *    floats): a scalar reference and an AVX-512 version that gathers one
 *    subspace of 16 lanes per instruction;
 *  - the 8-bit filter: u16 sums of a quantized table (frac_lut_quantize), a
 *    scalar reference and an AVX-512 VBMI version that looks up one subspace
 *    of all 64 lanes with two vpermt2b (a 256-byte table is four registers)
 *    and no gathers. The search uses the filter's lower bound only to skip
 *    codes that cannot enter the candidates; every code it keeps gets its f32
 *    sum, so the filter never changes a result.
 * The level follows the vector layer's choice (vec_kernels_get(), so
 * STRATA_SIMD=scalar forces the references). Compiled without global -m
 * flags: the SIMD functions carry target attributes.
 * Invariants: (1) every version reads only table entries named by code bytes,
 * so any code bytes are safe; (2) every f32 version sums in fpq_adc's order,
 * so the levels agree bit for bit (tested); (3) the u16 sums are exact
 * (m <= 257 keeps them below 2^16).
 */
#include <math.h>
#include <stddef.h>
#include <stdint.h>

#include "fractal_int.h"

#if defined(__x86_64__) && defined(__GNUC__)
#include <immintrin.h>
#define FRAC_HAVE_AVX512 1
#endif

float frac_adc_lane(const float *lut, const uint8_t *blk, uint32_t m, uint32_t lane)
{
    const uint8_t *c = blk + lane;
    float s0 = 0, s1 = 0, s2 = 0, s3 = 0;
    uint32_t j = 0;
    for (; j + 4 <= m; j += 4, lut += 4 * FPQ_KSUB) {   /* fpq_adc's order */
        s0 += lut[c[(size_t)j * FRAC_BLK]];
        s1 += lut[FPQ_KSUB + c[(size_t)(j + 1) * FRAC_BLK]];
        s2 += lut[2 * FPQ_KSUB + c[(size_t)(j + 2) * FRAC_BLK]];
        s3 += lut[3 * FPQ_KSUB + c[(size_t)(j + 3) * FRAC_BLK]];
    }
    for (; j < m; j++, lut += FPQ_KSUB) s0 += lut[c[(size_t)j * FRAC_BLK]];
    return (s0 + s1) + (s2 + s3);
}

static void u8_scalar(const uint8_t *q, const uint8_t *blk, uint32_t m, uint16_t *out)
{
    for (uint32_t l = 0; l < FRAC_BLK; l++) {
        uint32_t s = 0;
        for (uint32_t j = 0; j < m; j++) s += q[(size_t)j * FPQ_KSUB + blk[(size_t)j * FRAC_BLK + l]];
        out[l] = (uint16_t)s;
    }
}

#ifdef FRAC_HAVE_AVX512
__attribute__((target("avx512f,avx512bw,avx512dq,avx512vl")))
static void block_avx512(const float *lut, const uint8_t *blk, uint32_t m, float *out)
{
    for (uint32_t g = 0; g < FRAC_BLK; g += 16) {
        const uint8_t *c = blk + g;
        __m512 s0 = _mm512_setzero_ps(), s1 = s0, s2 = s0, s3 = s0;
#define FRAC_GATHER(jj) _mm512_i32gather_ps(_mm512_cvtepu8_epi32(_mm_loadu_si128( \
        (const __m128i *)(c + (size_t)(jj) * FRAC_BLK))), lut + (size_t)(jj) * FPQ_KSUB, 4)
        uint32_t j = 0;
        for (; j + 4 <= m; j += 4) {
            s0 = _mm512_add_ps(s0, FRAC_GATHER(j));
            s1 = _mm512_add_ps(s1, FRAC_GATHER(j + 1));
            s2 = _mm512_add_ps(s2, FRAC_GATHER(j + 2));
            s3 = _mm512_add_ps(s3, FRAC_GATHER(j + 3));
        }
        for (; j < m; j++) s0 = _mm512_add_ps(s0, FRAC_GATHER(j));
#undef FRAC_GATHER
        _mm512_storeu_ps(out + g, _mm512_add_ps(_mm512_add_ps(s0, s1), _mm512_add_ps(s2, s3)));
    }
}

/* 64 lanes of one subspace per step: two vpermt2b look up bytes 0..127 and
 * 128..255 of the table, bit 7 of each code picks one; the bytes are summed
 * into 16-bit even and odd lanes and interleaved at the end. */
__attribute__((target("avx512f,avx512bw,avx512vbmi")))
static void u8_vbmi(const uint8_t *q, const uint8_t *blk, uint32_t m, uint16_t *out)
{
    const __m512i lo8 = _mm512_set1_epi16(0x00FF);
    __m512i even = _mm512_setzero_si512(), odd = even;
    for (uint32_t j = 0; j < m; j++) {
        const uint8_t *t = q + (size_t)j * FPQ_KSUB;
        __m512i idx = _mm512_loadu_si512((const void *)(blk + (size_t)j * FRAC_BLK));
        __m512i a = _mm512_permutex2var_epi8(_mm512_loadu_si512((const void *)t), idx,
                                             _mm512_loadu_si512((const void *)(t + 64)));
        __m512i b = _mm512_permutex2var_epi8(_mm512_loadu_si512((const void *)(t + 128)), idx,
                                             _mm512_loadu_si512((const void *)(t + 192)));
        __m512i v = _mm512_mask_blend_epi8(_mm512_movepi8_mask(idx), a, b);
        even = _mm512_add_epi16(even, _mm512_and_si512(v, lo8));
        odd = _mm512_add_epi16(odd, _mm512_srli_epi16(v, 8));
    }
    /* lane 2w is even[w], lane 2w + 1 is odd[w] */
    const __m512i lo_idx = _mm512_set_epi16(47, 15, 46, 14, 45, 13, 44, 12, 43, 11, 42, 10, 41, 9,
                                            40, 8, 39, 7, 38, 6, 37, 5, 36, 4, 35, 3, 34, 2, 33, 1,
                                            32, 0);
    const __m512i hi_idx = _mm512_add_epi16(lo_idx, _mm512_set1_epi16(16));
    _mm512_storeu_si512((void *)out, _mm512_permutex2var_epi16(even, lo_idx, odd));
    _mm512_storeu_si512((void *)(out + 32), _mm512_permutex2var_epi16(even, hi_idx, odd));
}

/* A read of libgcc's CPU model, filled once by its constructor: no state here. */
static int have_vbmi(void) { return __builtin_cpu_supports("avx512vbmi") != 0; }
#endif

void frac_adc_block(const vec_kernels *kt, const float *lut, const uint8_t *blk, uint32_t m,
                    float out[FRAC_BLK])
{
#ifdef FRAC_HAVE_AVX512
    if (kt->level >= VEC_LEVEL_AVX512) { block_avx512(lut, blk, m, out); return; }
#endif
    (void)kt;
    for (uint32_t l = 0; l < FRAC_BLK; l++) out[l] = frac_adc_lane(lut, blk, m, l);
}

int frac_adc_u8_fast(const vec_kernels *kt)
{
#ifdef FRAC_HAVE_AVX512
    return kt->level >= VEC_LEVEL_AVX512 && have_vbmi();
#else
    (void)kt;
    return 0;
#endif
}

void frac_adc_u8_block(const vec_kernels *kt, const uint8_t *q, const uint8_t *blk, uint32_t m,
                       uint16_t out[FRAC_BLK])
{
#ifdef FRAC_HAVE_AVX512
    if (frac_adc_u8_fast(kt)) { u8_vbmi(q, blk, m, out); return; }
#endif
    (void)kt;
    u8_scalar(q, blk, m, out);
}

/* The filter's bound for one lane: see frac_filter_block. */
static inline int may_enter(float qs, float t, float base, float qlo, float qdelta, float qabs,
                            float thr)
{
    float lb = base + qlo + qdelta * qs + t;
    float slack = 1e-5f * (fabsf(base) + fabsf(t) + fabsf(qlo)) + 3e-5f * qabs;
    return lb - slack <= thr;
}

#ifdef FRAC_HAVE_AVX512
__attribute__((target("avx512f,avx512bw,avx512dq,avx512vl")))
static uint64_t filter_avx512(const uint16_t *qs, const float *terms, uint32_t lanes, float base,
                              float qlo, float qdelta, float qabs, float thr)
{
    const __m512 vb = _mm512_set1_ps(base), vlo = _mm512_set1_ps(qlo), vd = _mm512_set1_ps(qdelta);
    const __m512 c1 = _mm512_set1_ps(1e-5f), vthr = _mm512_set1_ps(thr);
    const __m512i absmask = _mm512_set1_epi32(0x7FFFFFFF);
    uint64_t mask = 0;
    for (uint32_t g = 0; g < lanes; g += 16) {
        __mmask16 live = lanes - g >= 16 ? (__mmask16)0xFFFF : (__mmask16)((1u << (lanes - g)) - 1);
        __m512 q = _mm512_cvtepi32_ps(_mm512_cvtepu16_epi32(_mm256_loadu_si256((const __m256i *)(qs + g))));
        __m512 t = terms ? _mm512_maskz_loadu_ps(live, terms + g) : _mm512_setzero_ps();
        /* the scalar formula, operation for operation */
        __m512 lb = _mm512_add_ps(_mm512_add_ps(_mm512_add_ps(vb, vlo), _mm512_mul_ps(vd, q)), t);
        __m512 at = _mm512_castsi512_ps(_mm512_and_si512(_mm512_castps_si512(t), absmask));
        __m512 slack = _mm512_add_ps(_mm512_mul_ps(c1, _mm512_add_ps(_mm512_add_ps(_mm512_set1_ps(fabsf(base)), at),
                                                                    _mm512_set1_ps(fabsf(qlo)))),
                                     _mm512_set1_ps(3e-5f * qabs));
        __mmask16 ok = _mm512_mask_cmp_ps_mask(live, _mm512_sub_ps(lb, slack), vthr, _CMP_LE_OQ);
        mask |= (uint64_t)ok << g;
    }
    return mask;
}
#endif

uint64_t frac_filter_block(const vec_kernels *kt, const uint16_t *qs, const float *terms,
                           uint32_t lanes, float base, float qlo, float qdelta, float qabs,
                           float thr)
{
#ifdef FRAC_HAVE_AVX512
    if (kt->level >= VEC_LEVEL_AVX512) return filter_avx512(qs, terms, lanes, base, qlo, qdelta, qabs, thr);
#endif
    (void)kt;
    uint64_t mask = 0;
    for (uint32_t l = 0; l < lanes; l++)
        if (may_enter((float)qs[l], terms ? terms[l] : 0.0f, base, qlo, qdelta, qabs, thr))
            mask |= 1ull << l;
    return mask;
}

/* The range [lo, hi] of one subspace's 256 entries. */
static void range_scalar(const float *t, float *lo_out, float *hi_out)
{
    float lo[8], hi[8];   /* eight independent chains */
    for (int k = 0; k < 8; k++) lo[k] = hi[k] = t[k];
    for (uint32_t c = 8; c < FPQ_KSUB; c += 8)
        for (int k = 0; k < 8; k++) {
            lo[k] = t[c + k] < lo[k] ? t[c + k] : lo[k];
            hi[k] = t[c + k] > hi[k] ? t[c + k] : hi[k];
        }
    for (int k = 1; k < 8; k++) {
        lo[0] = lo[k] < lo[0] ? lo[k] : lo[0];
        hi[0] = hi[k] > hi[0] ? hi[k] : hi[0];
    }
    *lo_out = lo[0];
    *hi_out = hi[0];
}

/* q = trunc(max(0, (t - lo) * inv - 0.002)) clamped to 255. (t - lo) * inv
 * is within 1e-4 of the true quotient (<= 256, a few ulps): less 0.002 it
 * never rounds above the true floor, so lo + d * q <= t. NaN never gets here. */
static void quant_scalar(const float *t, float lo, float inv, uint8_t *q)
{
    for (uint32_t c = 0; c < FPQ_KSUB; c++) {
        float v = (t[c] - lo) * inv - 0.002f;
        int iv = v > 0 ? (int)v : 0;
        q[c] = (uint8_t)(iv > 255 ? 255 : iv);
    }
}

#ifdef FRAC_HAVE_AVX512
__attribute__((target("avx512f,avx512bw,avx512dq,avx512vl")))
static void range_avx512(const float *t, float *lo_out, float *hi_out)
{
    __m512 lo = _mm512_loadu_ps(t), hi = lo;
    for (uint32_t c = 16; c < FPQ_KSUB; c += 16) {
        __m512 x = _mm512_loadu_ps(t + c);
        lo = _mm512_min_ps(x, lo);
        hi = _mm512_max_ps(x, hi);
    }
    *lo_out = _mm512_reduce_min_ps(lo);
    *hi_out = _mm512_reduce_max_ps(hi);
}

__attribute__((target("avx512f,avx512bw,avx512dq,avx512vl")))
static void quant_avx512(const float *t, float lo, float inv, uint8_t *q)
{
    const __m512 vlo = _mm512_set1_ps(lo), vinv = _mm512_set1_ps(inv), eps = _mm512_set1_ps(0.002f);
    const __m512 zero = _mm512_setzero_ps(), top = _mm512_set1_ps(255.0f);
    for (uint32_t c = 0; c < FPQ_KSUB; c += 16) {
        __m512 v = _mm512_sub_ps(_mm512_mul_ps(_mm512_sub_ps(_mm512_loadu_ps(t + c), vlo), vinv), eps);
        v = _mm512_min_ps(_mm512_max_ps(v, zero), top);
        _mm_storeu_si128((__m128i *)(q + c), _mm512_cvtepi32_epi8(_mm512_cvttps_epi32(v)));
    }
}
#endif

int frac_lut_quantize(const vec_kernels *kt, const float *lut, uint32_t m, uint8_t *q,
                      float *lo_sum, float *delta, float *abs_sum)
{
    if (m > 257) return 0;
    int simd = 0;
#ifdef FRAC_HAVE_AVX512
    simd = kt->level >= VEC_LEVEL_AVX512;
#endif
    (void)kt;
    float range = 0, los_j[257];
    double los = 0, abss = 0;
    for (uint32_t j = 0; j < m; j++) {
        float lo, hi;
#ifdef FRAC_HAVE_AVX512
        if (simd) range_avx512(lut + (size_t)j * FPQ_KSUB, &lo, &hi);
        else
#endif
            range_scalar(lut + (size_t)j * FPQ_KSUB, &lo, &hi);
        if (!isfinite(lo) || !isfinite(hi) || !isfinite(hi - lo)) return 0;
        range = hi - lo > range ? hi - lo : range;
        los += lo;
        los_j[j] = lo;
        abss += fabsf(lo) > fabsf(hi) ? fabsf(lo) : fabsf(hi);
    }
    /* a zero range (constant tables) makes every q 0: the bound is lo_sum */
    float d = range > 0 ? range / 255.0f : 1.0f, inv = 1.0f / d;
    for (uint32_t j = 0; j < m; j++) {
        const float *t = lut + (size_t)j * FPQ_KSUB;
#ifdef FRAC_HAVE_AVX512
        if (simd) { quant_avx512(t, los_j[j], inv, q + (size_t)j * FPQ_KSUB); continue; }
#endif
        quant_scalar(t, los_j[j], inv, q + (size_t)j * FPQ_KSUB);
    }
    *lo_sum = (float)los;
    *delta = d;
    *abs_sum = (float)abss;
    return 1;
}
