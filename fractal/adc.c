/* fractal/adc.c - the ADC kernel of the posting-list scan: the sums
 * sum_j lut[j][code_i[j]] of n codes (m bytes each, vector-major as stored)
 * against one query table (m * 256 floats). A scalar reference with four
 * partial sums, and on x86-64 an AVX-512 version that gathers 16 table
 * entries per instruction; the level follows the vector layer's choice
 * (vec_kernels_get(), so STRATA_SIMD=scalar forces the reference). Compiled
 * without global -m flags: the AVX-512 function carries a target attribute.
 * Invariants: (1) both versions read only lut[j * 256 + code byte], so any
 * code bytes are safe; (2) they agree up to f32 summation order (tested).
 */
#include <stddef.h>
#include <stdint.h>

#include "fractal_int.h"

#if defined(__x86_64__) && defined(__GNUC__)
#include <immintrin.h>
#define FRAC_HAVE_AVX512 1
#endif

static void adc_scalar(const float *lut, const uint8_t *codes, size_t n, uint32_t m, float *out)
{
    for (size_t i = 0; i < n; i++) out[i] = fpq_adc(lut, codes + i * m, m);
}

#ifdef FRAC_HAVE_AVX512
__attribute__((target("avx512f,avx512bw,avx512dq,avx512vl")))
static void adc_avx512(const float *lut, const uint8_t *codes, size_t n, uint32_t m, float *out)
{
    const __m512i step = _mm512_setr_epi32(0, 256, 512, 768, 1024, 1280, 1536, 1792, 2048, 2304,
                                           2560, 2816, 3072, 3328, 3584, 3840);
    uint32_t m16 = m & ~15u;
    for (size_t i = 0; i < n; i++) {
        const uint8_t *c = codes + i * m;
        __m512 acc = _mm512_setzero_ps();
        for (uint32_t j = 0; j < m16; j += 16) {
            __m512i idx = _mm512_cvtepu8_epi32(_mm_loadu_si128((const __m128i *)(c + j)));
            idx = _mm512_add_epi32(idx, step);
            acc = _mm512_add_ps(acc, _mm512_i32gather_ps(idx, lut + (size_t)j * FPQ_KSUB, 4));
        }
        float s = _mm512_reduce_add_ps(acc);
        for (uint32_t j = m16; j < m; j++) s += lut[(size_t)j * FPQ_KSUB + c[j]];
        out[i] = s;
    }
}
#endif

void frac_adc_batch(const vec_kernels *kt, const float *lut, const uint8_t *codes, size_t n,
                    uint32_t m, float *out)
{
#ifdef FRAC_HAVE_AVX512
    if (kt->level >= VEC_LEVEL_AVX512 && m >= 16) { adc_avx512(lut, codes, n, m, out); return; }
#endif
    (void)kt;
    adc_scalar(lut, codes, n, m, out);
}
