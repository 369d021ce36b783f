/* ivfpq/scan.c - asymmetric-distance scan of one posting block into a top-k
 * candidate heap: scalar reference, AVX2 (8 lanes) and AVX-512 (16 lanes)
 * gathers from the float tables, the u8 pre-filter (AVX-512 VBMI byte
 * shuffles, or a scalar loop) followed by exact float sums of the survivors;
 * the candidate heap itself (entries carry their raw vector's address for
 * the rerank); u8 table quantization. Distance of an entry: base (per cluster) + its stored L2 term
 * (L2 only) + the table lookups of its code. Also the per-query table
 * kernels: the inner-product tables from transposed codebooks, and the fused
 * table build + per-table minimum/maximum (one pass per query).
 * Early termination: after half of the subspaces, a partial sum plus the sum
 * of the remaining tables' minima is a lower bound of the final distance
 * (valid for every metric, since the minima may be negative); codes whose
 * bound exceeds the heap's worst are dropped without finishing their sums.
 * Invariants: (1) every path pushes exactly the entries the scalar float path
 * would keep with the same heap, so results do not depend on the level beyond
 * float summation order; (2) the level follows vec_kernels_get() (so
 * STRATA_SIMD=scalar forces the reference); (3) a block's bytes are only read
 * inside the view ivf_block_view() checked (masked loads for block tails);
 * (4) the scalar heap is called only after vzeroupper (legacy-SSE code after
 * AVX-512 code with dirty upper halves pays a state transition per call).
 */
#include <float.h>
#include <math.h>
#include <string.h>
#if defined(__x86_64__) || defined(__i386__)
#include <immintrin.h>
#define IVF_X86 1
#endif

#include "ivfpq_int.h"

/* ---- candidate heap (same order as vec_topk: (dist, id), worst at root) ---- */

/* Order-preserving map of a float to u32 (dist is never NaN; -0 is made +0
 * first so that it ties with +0 as the float comparison does). */
static inline uint64_t heap_key(float d, uint32_t slot)
{
    uint32_t u;
    d += 0.0f;
    memcpy(&u, &d, 4);
    u = (u & 0x80000000u) ? ~u : u | 0x80000000u;
    return (uint64_t)u << 32 | slot;
}

static inline int worse(ivf_hkey a, ivf_hkey b)
{
    uint32_t da = (uint32_t)(a.key >> 32), db = (uint32_t)(b.key >> 32);
    return (da > db) | ((da == db) & (a.id > b.id));
}

static void sift_down(ivf_hkey *e, size_t n, size_t i)
{
    ivf_hkey x = e[i];
    for (;;) {
        size_t c = 2 * i + 1;
        if (c >= n) break;
        size_t r = c + 1 < n ? c + 1 : c;
        c += (size_t)worse(e[r], e[c]);                   /* branch-free pick */
        if (!worse(e[c], x)) break;
        e[i] = e[c];
        i = c;
    }
    e[i] = x;
}

void ivf_heap_init(ivf_heap *h, ivf_hkey *key, ivf_cand *side, size_t k)
{
    *h = (ivf_heap){.key = key, .side = side, .k = k, .n = 0, .thr = INFINITY};
}

void ivf_heap_push(ivf_heap *h, uint64_t id, float dist, const uint8_t *raw)
{
    if (!ivf_heap_accepts(h, dist, id)) return;
    ivf_hkey *e = h->key;
    if (h->n < h->k) {
        uint32_t slot = (uint32_t)h->n;
        h->side[slot] = (ivf_cand){.dist = dist, .id = id, .raw = raw};
        ivf_hkey x = {heap_key(dist, slot), id};
        size_t i = h->n++;
        while (i > 0) {                                   /* sift up */
            size_t p = (i - 1) / 2;
            if (!worse(x, e[p])) break;
            e[i] = e[p];
            i = p;
        }
        e[i] = x;
    } else {
        uint32_t slot = (uint32_t)e[0].key;               /* the evicted root's */
        h->side[slot] = (ivf_cand){.dist = dist, .id = id, .raw = raw};
        e[0] = (ivf_hkey){heap_key(dist, slot), id};
        sift_down(e, h->n, 0);
    }
    if (h->n == h->k) h->thr = h->side[(uint32_t)e[0].key].dist;
}

size_t ivf_heap_finish(ivf_heap *h, ivf_cand *out)
{
    ivf_hkey *e = h->key;
    for (size_t end = h->n; end > 1; end--) {             /* heapsort */
        ivf_hkey t = e[0];
        e[0] = e[end - 1];
        e[end - 1] = t;
        sift_down(e, end - 1, 0);
    }
    for (size_t i = 0; i < h->n; i++) out[i] = h->side[(uint32_t)e[i].key];
    return h->n;
}

/* ---- block scan helpers ---- */

static float heap_thr(const ivf_heap *h) { return h->thr; }

static inline uint64_t le64(const uint8_t *p)
{
    uint64_t v;
    memcpy(&v, p, 8);                                      /* little-endian host */
    return v;
}

static float term_at(const ivf_block *b, uint32_t i)
{
    if (!b->terms) return 0.0f;
    float f;
    memcpy(&f, b->terms + 4 * (size_t)i, 4);              /* little-endian host */
    return f;
}

/* Offer entry i with final distance d. */
static inline void offer(ivf_scan_ctx *s, const ivf_block *b, uint32_t i, float d, ivf_heap *h)
{
    uint64_t id = le64(b->ids + 8 * (size_t)i);
    if (!isfinite(d)) { s->bad = 1; return; }            /* damaged term */
    if (!ivf_heap_accepts(h, d, id)) return;
    if (s->keep) {
        uint64_t attr = b->attrs ? le64(b->attrs + 8 * (size_t)i) : 0;
        if (!s->keep(s->keep_ctx, id, attr)) return;
    }
    ivf_heap_push(h, id, d, b->raw ? b->raw + 4 * (size_t)i * b->raw_dim : NULL);
}

static float entry_sum(const ivf_scan_ctx *s, const ivf_block *b, uint32_t i, uint32_t j0,
                       float d)
{
    for (uint32_t j = j0; j < s->m; j++) d += s->lut[j * IVF_KSUB + b->codes[(size_t)j * b->n + i]];
    return d;
}

static void scan_scalar(ivf_scan_ctx *s, const ivf_block *b, uint32_t i0, ivf_heap *h)
{
    uint32_t half = s->m / 2;
    for (uint32_t i = i0; i < b->n; i++) {
        float d = s->base + term_at(b, i);
        for (uint32_t j = 0; j < half; j++) d += s->lut[j * IVF_KSUB + b->codes[(size_t)j * b->n + i]];
        if (d + s->suffix_min[half] > heap_thr(h)) continue;
        offer(s, b, i, entry_sum(s, b, i, half, d), h);
    }
}

/* Quantized path: u8 tables give a bound within qslack of the float sum;
 * only entries whose bound can enter the heap get the exact float sum. */
static void scan_quant(ivf_scan_ctx *s, const ivf_block *b, ivf_heap *h)
{
    const uint8_t *q = s->qlut;
    for (uint32_t i = 0; i < b->n; i++) {
        uint32_t sum = 0;
        for (uint32_t j = 0; j < s->m; j++) sum += q[j * IVF_KSUB + b->codes[(size_t)j * b->n + i]];
        float t = term_at(b, i), d0 = s->base + t;
        float approx = d0 + s->qbias + s->qscale * (float)sum;
        float slack = s->qslack + s->qeps * (fabsf(s->base) + fabsf(t));
        if (approx - slack > heap_thr(h)) continue;
        offer(s, b, i, entry_sum(s, b, i, 0, d0), h);
    }
}

#ifdef IVF_X86
__attribute__((target("avx2,fma")))
static uint32_t scan_avx2(ivf_scan_ctx *s, const ivf_block *b, ivf_heap *h)
{
    uint32_t half = s->m / 2, n = b->n, i = 0;
    float lanes[8];
    for (; i + 8 <= n; i += 8) {
        __m256 acc = _mm256_set1_ps(s->base);
        if (b->terms) acc = _mm256_add_ps(acc, _mm256_loadu_ps((const float *)(const void *)(b->terms + 4 * (size_t)i)));
        uint32_t j = 0;
        for (; j < half; j++) {
            __m128i c8 = _mm_loadl_epi64((const __m128i *)(b->codes + (size_t)j * n + i));
            acc = _mm256_add_ps(acc, _mm256_i32gather_ps(s->lut + j * IVF_KSUB,
                                                         _mm256_cvtepu8_epi32(c8), 4));
        }
        float thr = heap_thr(h);
        __m256 lb = _mm256_add_ps(acc, _mm256_set1_ps(s->suffix_min[half]));
        if (_mm256_movemask_ps(_mm256_cmp_ps(lb, _mm256_set1_ps(thr), _CMP_NGT_UQ)) == 0) continue;
        for (; j < s->m; j++) {
            __m128i c8 = _mm_loadl_epi64((const __m128i *)(b->codes + (size_t)j * n + i));
            acc = _mm256_add_ps(acc, _mm256_i32gather_ps(s->lut + j * IVF_KSUB,
                                                         _mm256_cvtepu8_epi32(c8), 4));
        }
        int mask = _mm256_movemask_ps(_mm256_cmp_ps(acc, _mm256_set1_ps(thr), _CMP_NGT_UQ));
        if (!mask) continue;
        _mm256_storeu_ps(lanes, acc);
        _mm256_zeroupper();                               /* see scan16_avx512 */
        while (mask) {
            int l = __builtin_ctz((unsigned)mask);
            mask &= mask - 1;
            offer(s, b, i + (uint32_t)l, lanes[l], h);
        }
    }
    return i;
}

/* 16 entries from i (lanes outside `live` are not read: masked loads, so
 * the tail of a block needs no scalar loop and no read past the codes). */
__attribute__((target("avx512f,avx512bw,avx512dq,avx512vl")))
static inline void scan16_avx512(ivf_scan_ctx *s, const ivf_block *b, uint32_t i, __mmask16 live,
                                 ivf_heap *h)
{
    uint32_t half = s->m / 2, n = b->n, j = 0;
    float lanes[16];
    __m512 acc = _mm512_set1_ps(s->base);
    if (b->terms) acc = _mm512_add_ps(acc, _mm512_maskz_loadu_ps(live, b->terms + 4 * (size_t)i));
    for (; j < half; j++) {
        __m128i c8 = _mm_maskz_loadu_epi8(live, b->codes + (size_t)j * n + i);
        acc = _mm512_add_ps(acc, _mm512_i32gather_ps(_mm512_cvtepu8_epi32(c8),
                                                     s->lut + j * IVF_KSUB, 4));
    }
    float thr = heap_thr(h);
    __m512 lb = _mm512_add_ps(acc, _mm512_set1_ps(s->suffix_min[half]));
    if ((_mm512_cmp_ps_mask(lb, _mm512_set1_ps(thr), _CMP_NGT_UQ) & live) == 0) return;
    for (; j < s->m; j++) {
        __m128i c8 = _mm_maskz_loadu_epi8(live, b->codes + (size_t)j * n + i);
        acc = _mm512_add_ps(acc, _mm512_i32gather_ps(_mm512_cvtepu8_epi32(c8),
                                                     s->lut + j * IVF_KSUB, 4));
    }
    unsigned mask = _mm512_cmp_ps_mask(acc, _mm512_set1_ps(thr), _CMP_NGT_UQ) & live;
    if (!mask) return;
    _mm512_storeu_ps(lanes, acc);
    /* offer() and the heap are plain SSE code: calling them with dirty upper
     * register halves costs a state transition per call (measured: most of
     * the search time at rerank 48), and GCC does not always clear them. */
    _mm256_zeroupper();
    while (mask) {
        int l = __builtin_ctz(mask);
        mask &= mask - 1;
        offer(s, b, i + (uint32_t)l, lanes[l], h);
    }
}

__attribute__((target("avx512f,avx512bw,avx512dq,avx512vl")))
static uint32_t scan_avx512(ivf_scan_ctx *s, const ivf_block *b, ivf_heap *h)
{
    uint32_t n = b->n, i = 0;
    for (; i + 16 <= n; i += 16) scan16_avx512(s, b, i, 0xFFFF, h);
    if (i < n) scan16_avx512(s, b, i, (__mmask16)((1u << (n - i)) - 1), h);
    return n;
}

/* Exact float sums (same order as every other path) of the lanes in
 * `live` of the 16 entries from i, then offers; no early termination. */
__attribute__((target("avx512f,avx512bw,avx512dq,avx512vl")))
static void exact16_avx512(ivf_scan_ctx *s, const ivf_block *b, uint32_t i, __mmask16 live,
                           ivf_heap *h)
{
    uint32_t n = b->n;
    float lanes[16];
    __m512 acc = _mm512_set1_ps(s->base);
    if (b->terms) acc = _mm512_add_ps(acc, _mm512_maskz_loadu_ps(live, b->terms + 4 * (size_t)i));
    for (uint32_t j = 0; j < s->m; j++) {
        __m128i c8 = _mm_maskz_loadu_epi8(live, b->codes + (size_t)j * n + i);
        acc = _mm512_add_ps(acc, _mm512_mask_i32gather_ps(_mm512_setzero_ps(), live,
                                                          _mm512_cvtepu8_epi32(c8),
                                                          s->lut + j * IVF_KSUB, 4));
    }
    unsigned mask = _mm512_cmp_ps_mask(acc, _mm512_set1_ps(heap_thr(h)), _CMP_NGT_UQ) & live;
    if (!mask) return;
    _mm512_storeu_ps(lanes, acc);
    _mm256_zeroupper();                                   /* see scan16_avx512 */
    while (mask) {
        int l = __builtin_ctz(mask);
        mask &= mask - 1;
        offer(s, b, i + (uint32_t)l, lanes[l], h);
    }
}

/* Survivors of a 16-entry group up to which scalar sums (16 loads each) beat
 * 16 masked gathers (measured on BIGANN10K, rerank 32). */
enum { SPARSE_LANES = 6 };

/* VBMI pre-filter: 64 entries per step; per subspace one masked load of 64
 * code bytes and two 128-byte table shuffles (vpermi2b) blended on the code's
 * top bit give 64 u8 lookups, summed in u16 (m <= 257). Entries whose
 * quantized distance minus the slack can enter the heap get the exact float
 * sum, so the kept set equals the float path's. */
__attribute__((target("avx512f,avx512bw,avx512dq,avx512vl,avx512vbmi")))
static void scan_vbmi(ivf_scan_ctx *s, const ivf_block *b, ivf_heap *h)
{
    uint32_t n = b->n, m = s->m;
    __m512 vbias = _mm512_set1_ps(s->base + s->qbias), vunit = _mm512_set1_ps(s->qscale);
    __m512 vsl = _mm512_set1_ps(s->qslack + s->qeps * fabsf(s->base)), veps = _mm512_set1_ps(s->qeps);
    for (uint32_t i = 0; i < n; i += 64) {
        uint32_t cnt = n - i < 64 ? n - i : 64;
        __mmask64 live = cnt == 64 ? ~(__mmask64)0 : (((__mmask64)1 << cnt) - 1);
        __m512i s0 = _mm512_setzero_si512(), s1 = _mm512_setzero_si512();
        for (uint32_t j = 0; j < m; j++) {
            const uint8_t *t = s->qlut + (size_t)j * IVF_KSUB;
            __m512i c = _mm512_maskz_loadu_epi8(live, b->codes + (size_t)j * n + i);
            __m512i r01 = _mm512_permutex2var_epi8(_mm512_loadu_si512(t), c, _mm512_loadu_si512(t + 64));
            __m512i r23 = _mm512_permutex2var_epi8(_mm512_loadu_si512(t + 128), c,
                                                   _mm512_loadu_si512(t + 192));
            __m512i r = _mm512_mask_blend_epi8(_mm512_movepi8_mask(c), r01, r23);
            s0 = _mm512_add_epi16(s0, _mm512_cvtepu8_epi16(_mm512_castsi512_si256(r)));
            s1 = _mm512_add_epi16(s1, _mm512_cvtepu8_epi16(_mm512_extracti64x4_epi64(r, 1)));
        }
        __m512 thr = _mm512_set1_ps(heap_thr(h));
        __mmask16 pass[4];
        for (uint32_t g = 0; g < 4; g++) {
            __m512i sg = g < 2 ? s0 : s1;
            __m256i h16 = (g & 1) ? _mm512_extracti64x4_epi64(sg, 1) : _mm512_castsi512_si256(sg);
            __m512 sum = _mm512_cvtepi32_ps(_mm512_cvtepu16_epi32(h16));
            __mmask16 lv = (__mmask16)(live >> (16 * g));
            __m512 term = b->terms ? _mm512_maskz_loadu_ps(lv, b->terms + 4 * (size_t)(i + 16 * g))
                                   : _mm512_setzero_ps();
            __m512 approx = _mm512_add_ps(_mm512_add_ps(vbias, term), _mm512_mul_ps(vunit, sum));
            __m512 slack = _mm512_add_ps(vsl, _mm512_mul_ps(veps, _mm512_abs_ps(term)));
            pass[g] = _mm512_cmp_ps_mask(_mm512_sub_ps(approx, slack), thr, _CMP_NGT_UQ) & lv;
        }
        for (uint32_t g = 0; g < 4; g++) {          /* thr only falls: stale is safe */
            if (!pass[g]) continue;
            if (__builtin_popcount(pass[g]) > SPARSE_LANES) {
                exact16_avx512(s, b, i + 16 * g, pass[g], h);
                continue;
            }
            _mm256_zeroupper();                       /* see scan16_avx512 */
            for (unsigned mk = pass[g]; mk; mk &= mk - 1) {   /* same sums, scalar */
                uint32_t e = i + 16 * g + (uint32_t)__builtin_ctz(mk);
                offer(s, b, e, entry_sum(s, b, e, 0, s->base + term_at(b, e)), h);
            }
        }
    }
}

__attribute__((target("avx512f,avx512bw,avx512dq,avx512vl")))
static void qlut_build_avx512(const float *lut, const float *lo, uint32_t m, float inv, uint8_t *q)
{
    __m512 vinv = _mm512_set1_ps(inv);
    for (uint32_t j = 0; j < m; j++) {
        __m512 vlo = _mm512_set1_ps(lo[j]);
        for (uint32_t w = 0; w < IVF_KSUB; w += 16) {
            size_t o = (size_t)j * IVF_KSUB + w;
            __m512 v = _mm512_mul_ps(_mm512_sub_ps(_mm512_loadu_ps(lut + o), vlo), vinv);
            __m512i r = _mm512_cvt_roundps_epi32(v, _MM_FROUND_TO_NEAREST_INT | _MM_FROUND_NO_EXC);
            r = _mm512_min_epi32(_mm512_max_epi32(r, _mm512_setzero_si512()), _mm512_set1_epi32(255));
            _mm_storeu_si128((__m128i *)(void *)(q + o), _mm512_cvtepi32_epi8(r));
        }
    }
}
#endif

int ivf_scan_fast(uint32_t m)
{
#ifdef IVF_X86
    static int vbmi = -1;                    /* benign race: same value */
    if (vbmi < 0) vbmi = __builtin_cpu_supports("avx512vbmi") ? 1 : 0;
    return m <= 257 && vbmi && vec_kernels_get()->level == VEC_LEVEL_AVX512;
#else
    (void)m;
    return 0;
#endif
}

void ivf_qlut_build(const float *lut, const float *lo, uint32_t m, float inv, uint8_t *q)
{
#ifdef IVF_X86
    if (vec_kernels_get()->level == VEC_LEVEL_AVX512) { qlut_build_avx512(lut, lo, m, inv, q); return; }
#endif
    for (uint32_t j = 0; j < m; j++)
        for (uint32_t w = 0; w < IVF_KSUB; w++) {
            float v = rintf((lut[j * IVF_KSUB + w] - lo[j]) * inv);
            q[j * IVF_KSUB + w] = (uint8_t)(v >= 255 ? 255 : v > 0 ? v : 0);   /* NaN: 0 */
        }
}

int ivf_qlut_setup(ivf_scan_ctx *sc, const float *lut, const float *lo, const float *hi,
                   uint32_t m, float qmax, uint8_t *q)
{
    float unit = qmax > 0 ? qmax / 255.0f : 1.0f, bias = 0, mag = 0;
    if (!(1.0f / unit < INFINITY)) unit = 1.0f;      /* tiny ranges: one step covers them */
    for (uint32_t j = 0; j < m; j++) {
        bias += lo[j];
        mag += fmaxf(fabsf(lo[j]), fabsf(hi[j]));
    }
    ivf_qlut_build(lut, lo, m, 1.0f / unit, q);
    sc->qlut = q;
    sc->qscale = unit;
    sc->qbias = bias;
    /* Rounding of each u8 entry is at most unit/2, so m * unit is twice the
     * bound. The float sums (exact path: m + 2 terms; quantized: a few
     * more) of terms of magnitude <= |base| + |term| + mag each err by at
     * most ~(m + 4) * FLT_EPSILON / 2 times that magnitude; qeps is 8x it. */
    sc->qeps = 4.0f * (float)(m + 4) * FLT_EPSILON;
    sc->qslack = (float)m * unit + sc->qeps * mag;
    return isfinite(sc->qslack) && isfinite(bias) ? STRATA_OK : STRATA_ECORRUPT;
}

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

/* The 256 sums of a subspace stay in 16 registers over its dsub steps
 * (the generic body reloads and stores them per step); mul then add, in
 * the same order, so the bits equal the reference. */
__attribute__((target("avx512f,avx512bw,avx512dq,avx512vl")))
static void dot_lut_avx512(const float *cbt, size_t dsub, size_t m, const float *q, float *lut)
{
    for (size_t j = 0; j < m; j++) {
        const float *qj = q + j * dsub, *w = cbt + j * dsub * IVF_KSUB;
        __m512 acc[16];
        __m512 q0 = _mm512_set1_ps(qj[0]);
        for (int b = 0; b < 16; b++)
            acc[b] = _mm512_add_ps(_mm512_setzero_ps(), _mm512_mul_ps(q0, _mm512_loadu_ps(w + 16 * b)));
        for (size_t t = 1; t < dsub; t++) {
            __m512 qt = _mm512_set1_ps(qj[t]);
            const float *wt = w + t * IVF_KSUB;
            for (int b = 0; b < 16; b++)
                acc[b] = _mm512_add_ps(acc[b], _mm512_mul_ps(qt, _mm512_loadu_ps(wt + 16 * b)));
        }
        for (int b = 0; b < 16; b++) _mm512_storeu_ps(lut + j * IVF_KSUB + 16 * b, acc[b]);
    }
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

void ivf_scan_block(ivf_scan_ctx *s, const ivf_block *b, ivf_heap *h)
{
    s->n_scanned += b->n;
#ifdef IVF_X86
    if (s->qlut && ivf_scan_fast(s->m)) { scan_vbmi(s, b, h); return; }
#endif
    if (s->qlut) { scan_quant(s, b, h); return; }
    uint32_t done = 0;
#ifdef IVF_X86
    vec_level lv = vec_kernels_get()->level;
    if (lv == VEC_LEVEL_AVX512) done = scan_avx512(s, b, h);
    else if (lv == VEC_LEVEL_AVX2) done = scan_avx2(s, b, h);
#endif
    scan_scalar(s, b, done, h);
}
