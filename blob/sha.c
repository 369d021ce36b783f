/* blob/sha.c - SHA-256 for the blob layer.
 *  - blob_sha256: one-shot through OpenSSL libcrypto's EVP interface. Every
 *    check (readers with STRATA_BLOB_VERIFY, strata_blob_verify,
 *    strata_blob_check) uses it, so what the writer computed is verified by
 *    an independent implementation.
 *  - blob_sha: the writer's streaming hash. On x86-64 CPUs with the SHA
 *    extensions it runs its own SHA-NI kernel, which can advance two
 *    independent hashes in one instruction stream (blob_sha_update2): a
 *    chunk's hash and the whole content's hash over the same bytes cost
 *    about one pass instead of two, because one SHA-NI stream is bound by
 *    the latency of sha256rnds2, not by its throughput. Elsewhere it is an
 *    EVP context and update2 is two updates. blob_sha_update2_scan also
 *    advances the chunker's gear scan inside the same loop (the scalar
 *    ports are idle while the SHA instructions run).
 * Invariants: (1) both paths give the FIPS 180-4 SHA-256 of the bytes fed,
 * in order, however they are split into calls (tests/blob/test_sha.c
 * compares the kernel with OpenSSL on random splits and lengths);
 * (2) a libcrypto failure is reported as STRATA_ENOMEM (EVP fails only on
 * allocation for SHA-256); (3) the kernel is chosen once per process
 * (blob_sha_select changes it, for tests) and a context keeps the path it
 * was initialised with. */
#include <stdatomic.h>

#include <openssl/evp.h>

#include "blob_int.h"

#if defined(__x86_64__) && (defined(__GNUC__) || defined(__clang__))
#define BLOB_SHA_NI 1
#include <cpuid.h>
#include <immintrin.h>
#endif

int blob_sha256(const void *data, size_t len, uint8_t out[SHA_LEN]) {
    unsigned int n = 0;
    if (!EVP_Digest(data, len, out, &n, EVP_sha256(), NULL) || n != SHA_LEN) return STRATA_ENOMEM;
    return STRATA_OK;
}

/* -1: not decided yet; 0: OpenSSL; 1: SHA-NI kernel. */
static atomic_int g_kernel = -1;

#ifdef BLOB_SHA_NI
static int cpu_has_sha_ni(void) {
    unsigned a, b, c, d;
    if (!__get_cpuid(1, &a, &b, &c, &d) || !(c & bit_SSSE3) || !(c & bit_SSE4_1)) return 0;
    if (__get_cpuid_max(0, NULL) < 7) return 0;
    __cpuid_count(7, 0, a, b, c, d);
    return (b & (1u << 29)) != 0;   /* CPUID.7.0:EBX.SHA */
}
#else
static int cpu_has_sha_ni(void) { return 0; }
#endif

static int use_ni(void) {
    int k = atomic_load_explicit(&g_kernel, memory_order_relaxed);
    if (k < 0) {
        k = cpu_has_sha_ni();
        atomic_store_explicit(&g_kernel, k, memory_order_relaxed);   /* racing callers agree */
    }
    return k;
}

int blob_sha_select(int ni) {
    int k = ni && cpu_has_sha_ni();
    atomic_store_explicit(&g_kernel, k, memory_order_relaxed);
    return k;
}

const char *blob_sha_kernel(void) { return use_ni() ? "sha-ni" : "openssl"; }

#ifdef BLOB_SHA_NI
/* FIPS 180-4 4.2.2: the first 32 bits of the fractional parts of the cube
 * roots of the first 64 primes. */
static const uint32_t K256[64] __attribute__((aligned(16))) = {
    0x428a2f98, 0x71374491, 0xb5c0fbcf, 0xe9b5dba5, 0x3956c25b, 0x59f111f1, 0x923f82a4, 0xab1c5ed5,
    0xd807aa98, 0x12835b01, 0x243185be, 0x550c7dc3, 0x72be5d74, 0x80deb1fe, 0x9bdc06a7, 0xc19bf174,
    0xe49b69c1, 0xefbe4786, 0x0fc19dc6, 0x240ca1cc, 0x2de92c6f, 0x4a7484aa, 0x5cb0a9dc, 0x76f988da,
    0x983e5152, 0xa831c66d, 0xb00327c8, 0xbf597fc7, 0xc6e00bf3, 0xd5a79147, 0x06ca6351, 0x14292967,
    0x27b70a85, 0x2e1b2138, 0x4d2c6dfc, 0x53380d13, 0x650a7354, 0x766a0abb, 0x81c2c92e, 0x92722c85,
    0xa2bfe8a1, 0xa81a664b, 0xc24b8b70, 0xc76c51a3, 0xd192e819, 0xd6990624, 0xf40e3585, 0x106aa070,
    0x19a4c116, 0x1e376c08, 0x2748774c, 0x34b0bcb5, 0x391c0cb3, 0x4ed8aa4a, 0x5b9cca4f, 0x682e6ff3,
    0x748f82ee, 0x78a5636f, 0x84c87814, 0x8cc70208, 0x90befffa, 0xa4506ceb, 0xbef9a3f7, 0xc67178f2,
};

#define NI __attribute__((target("sha,sse4.1,ssse3")))
#define NI_INLINE static inline __attribute__((always_inline, target("sha,sse4.1,ssse3")))

/* One lane: the state as the SHA instructions want it (ABEF, CDGH). */
typedef struct ni_lane { __m128i s0, s1, save0, save1, w0, w1, w2, w3; } ni_lane;

NI_INLINE void lane_load(ni_lane *l, const uint32_t h[8]) {
    __m128i t = _mm_shuffle_epi32(_mm_loadu_si128((const __m128i *)&h[0]), 0xB1);   /* CDAB */
    __m128i s1 = _mm_shuffle_epi32(_mm_loadu_si128((const __m128i *)&h[4]), 0x1B);  /* EFGH */
    l->s0 = _mm_alignr_epi8(t, s1, 8);         /* ABEF */
    l->s1 = _mm_blend_epi16(s1, t, 0xF0);      /* CDGH */
}

NI_INLINE void lane_store(const ni_lane *l, uint32_t h[8]) {
    __m128i t = _mm_shuffle_epi32(l->s0, 0x1B);        /* FEBA */
    __m128i s1 = _mm_shuffle_epi32(l->s1, 0xB1);       /* DCHG */
    _mm_storeu_si128((__m128i *)&h[0], _mm_blend_epi16(t, s1, 0xF0));   /* DCBA */
    _mm_storeu_si128((__m128i *)&h[4], _mm_alignr_epi8(s1, t, 8));      /* HGFE */
}

/* Start a block: save the state, load the 16 message words (big-endian). */
NI_INLINE void lane_begin(ni_lane *l, const uint8_t *p) {
    const __m128i bswap = _mm_set_epi64x(0x0c0d0e0f08090a0bll, 0x0405060700010203ll);
    l->save0 = l->s0;
    l->save1 = l->s1;
    l->w0 = _mm_shuffle_epi8(_mm_loadu_si128((const __m128i *)(p + 0)), bswap);
    l->w1 = _mm_shuffle_epi8(_mm_loadu_si128((const __m128i *)(p + 16)), bswap);
    l->w2 = _mm_shuffle_epi8(_mm_loadu_si128((const __m128i *)(p + 32)), bswap);
    l->w3 = _mm_shuffle_epi8(_mm_loadu_si128((const __m128i *)(p + 48)), bswap);
}

/* Rounds 4g .. 4g+3 with message words w (W[4g .. 4g+3]). */
NI_INLINE void lane_rounds(ni_lane *l, __m128i w, int g) {
    __m128i m = _mm_add_epi32(w, _mm_load_si128((const __m128i *)&K256[4 * g]));
    l->s1 = _mm_sha256rnds2_epu32(l->s1, l->s0, m);
    l->s0 = _mm_sha256rnds2_epu32(l->s0, l->s1, _mm_shuffle_epi32(m, 0x0E));
}

/* Rounds 4g .. 4g+3 for g >= 4: the next four message words from the last 16
 * (w0 = W[4g-16 ..], w3 = W[4g-4 ..]), then the rounds; the window slides. */
NI_INLINE void lane_step(ni_lane *l, int g) {
    __m128i x = _mm_sha256msg1_epu32(l->w0, l->w1);
    x = _mm_add_epi32(x, _mm_alignr_epi8(l->w3, l->w2, 4));
    __m128i w = _mm_sha256msg2_epu32(x, l->w3);
    lane_rounds(l, w, g);
    l->w0 = l->w1;
    l->w1 = l->w2;
    l->w2 = l->w3;
    l->w3 = w;
}

NI_INLINE void lane_end(ni_lane *l) {
    l->s0 = _mm_add_epi32(l->s0, l->save0);
    l->s1 = _mm_add_epi32(l->s1, l->save1);
}

/* n blocks of one stream. */
NI static void ni_blocks(uint32_t h[8], const uint8_t *p, size_t n) {
    ni_lane a;
    lane_load(&a, h);
    for (; n > 0; n--, p += 64) {
        lane_begin(&a, p);
        lane_rounds(&a, a.w0, 0);
        lane_rounds(&a, a.w1, 1);
        lane_rounds(&a, a.w2, 2);
        lane_rounds(&a, a.w3, 3);
#pragma GCC unroll 12
        for (int g = 4; g < 16; g++) lane_step(&a, g);
        lane_end(&a);
    }
    lane_store(&a, h);
}

/* n blocks of each of two independent streams, interleaved round by round so
 * one stream's sha256rnds2 runs while the other's waits for its result. */
NI static void ni_blocks2(uint32_t ha[8], const uint8_t *pa, uint32_t hb[8], const uint8_t *pb, size_t n) {
    ni_lane a, b;
    lane_load(&a, ha);
    lane_load(&b, hb);
    for (; n > 0; n--, pa += 64, pb += 64) {
        lane_begin(&a, pa);
        lane_begin(&b, pb);
        lane_rounds(&a, a.w0, 0);
        lane_rounds(&b, b.w0, 0);
        lane_rounds(&a, a.w1, 1);
        lane_rounds(&b, b.w1, 1);
        lane_rounds(&a, a.w2, 2);
        lane_rounds(&b, b.w2, 2);
        lane_rounds(&a, a.w3, 3);
        lane_rounds(&b, b.w3, 3);
#pragma GCC unroll 12
        for (int g = 4; g < 16; g++) {
            lane_step(&a, g);
            lane_step(&b, g);
        }
        lane_end(&a);
        lane_end(&b);
    }
    lane_store(&a, ha);
    lane_store(&b, hb);
}

/* Four bytes of the gear scan (blob/chunker.c gear_scan's step): *miss
 * stays 1 while none of the four hashes has (h & mask) == 0. */
NI_INLINE void gear4(const uint8_t *p, uint64_t *hp, uint64_t mask, int *miss) {
    uint64_t h = *hp;
    uint64_t g0 = blob_gear[p[0]], g1 = blob_gear[p[1]], g2 = blob_gear[p[2]], g3 = blob_gear[p[3]];
    uint64_t t2 = (g0 << 1) + g1, t3 = (t2 << 1) + g2, t4 = (t3 << 1) + g3;
    uint64_t h1 = (h << 1) + g0, h2 = (h << 2) + t2, h3 = (h << 3) + t3, h4 = (h << 4) + t4;
    *miss &= ((h1 & mask) != 0) & ((h2 & mask) != 0) & ((h3 & mask) != 0) & ((h4 & mask) != 0);
    *hp = h4;
}

/* ni_blocks2 that also runs the gear scan over one 64-byte window of gp
 * per block pair, four bytes between consecutive rounds so that the
 * out-of-order core overlaps them (in separate loops, or a window per
 * block in one piece, they barely overlap: ~3% saved; this way ~65% of the
 * scan is hidden). Stops after the block whose window has a hit: returns
 * the blocks done, *hit = 1 and *gh = the state at that window's start;
 * else all n, *hit = 0, *gh the state after the last window. */
NI static size_t ni_blocks2_gear(uint32_t ha[8], const uint8_t *pa, uint32_t hb[8], const uint8_t *pb,
                                 size_t n, const uint8_t *gp, uint64_t *gh, uint64_t mask, int *hit) {
    ni_lane a, b;
    uint64_t h = *gh;
    size_t done = 0;
    *hit = 0;
    lane_load(&a, ha);
    lane_load(&b, hb);
    while (done < n) {
        uint64_t h0 = h;
        int miss = 1;
        __builtin_prefetch(gp + 1024);   /* the scan's stream: see chunker.c GEAR_PREFETCH */
        lane_begin(&a, pa);
        lane_begin(&b, pb);
        lane_rounds(&a, a.w0, 0); lane_rounds(&b, b.w0, 0); gear4(gp, &h, mask, &miss); gear4(gp + 4, &h, mask, &miss);
        lane_rounds(&a, a.w1, 1); lane_rounds(&b, b.w1, 1); gear4(gp + 8, &h, mask, &miss); gear4(gp + 12, &h, mask, &miss);
        lane_rounds(&a, a.w2, 2); lane_rounds(&b, b.w2, 2); gear4(gp + 16, &h, mask, &miss); gear4(gp + 20, &h, mask, &miss);
        lane_rounds(&a, a.w3, 3); lane_rounds(&b, b.w3, 3); gear4(gp + 24, &h, mask, &miss); gear4(gp + 28, &h, mask, &miss);
#pragma GCC unroll 12
        for (int g = 4; g < 16; g++) {
            lane_step(&a, g);
            lane_step(&b, g);
            if (g < 12) gear4(gp + 32 + 4 * (g - 4), &h, mask, &miss);
        }
        lane_end(&a);
        lane_end(&b);
        done++;
        pa += 64;
        pb += 64;
        gp += 64;
        if (!miss) {
            *hit = 1;
            h = h0;
            break;
        }
    }
    *gh = h;
    lane_store(&a, ha);
    lane_store(&b, hb);
    return done;
}
#else
static void ni_blocks(uint32_t h[8], const uint8_t *p, size_t n) { (void)h; (void)p; (void)n; }
static void ni_blocks2(uint32_t ha[8], const uint8_t *pa, uint32_t hb[8], const uint8_t *pb, size_t n) {
    (void)ha; (void)pa; (void)hb; (void)pb; (void)n;
}
static size_t ni_blocks2_gear(uint32_t ha[8], const uint8_t *pa, uint32_t hb[8], const uint8_t *pb,
                              size_t n, const uint8_t *gp, uint64_t *gh, uint64_t mask, int *hit) {
    (void)ha; (void)pa; (void)hb; (void)pb; (void)n; (void)gp; (void)gh; (void)mask;
    *hit = 0;
    return 0;
}
#endif

int blob_sha_init(blob_sha *s) {
    static const uint32_t iv[8] = { 0x6a09e667, 0xbb67ae85, 0x3c6ef372, 0xa54ff53a,
                                    0x510e527f, 0x9b05688c, 0x1f83d9ab, 0x5be0cd19 };
    memset(s, 0, sizeof *s);
    if (use_ni()) {
        memcpy(s->h, iv, sizeof iv);
        return STRATA_OK;
    }
    if (!(s->evp = EVP_MD_CTX_new()) || !EVP_DigestInit_ex(s->evp, EVP_sha256(), NULL)) {
        blob_sha_free(s);
        return STRATA_ENOMEM;
    }
    return STRATA_OK;
}

void blob_sha_free(blob_sha *s) {
    EVP_MD_CTX_free(s->evp);
    s->evp = NULL;
}

/* Kernel path: top up the partial block from *p; returns with s->nbuf == 0
 * or *n == 0. */
static void top_up(blob_sha *s, const uint8_t **p, size_t *n) {
    if (s->nbuf == 0 || *n == 0) return;
    size_t take = 64 - s->nbuf < *n ? 64 - s->nbuf : *n;
    memcpy(s->buf + s->nbuf, *p, take);
    s->nbuf += take;
    s->total += take;
    *p += take;
    *n -= take;
    if (s->nbuf == 64) {
        ni_blocks(s->h, s->buf, 1);
        s->nbuf = 0;
    }
}

/* Kernel path, s->nbuf == 0 or n == 0: whole blocks, then keep the tail. */
static void rest(blob_sha *s, const uint8_t *p, size_t n) {
    top_up(s, &p, &n);
    if (n == 0) return;
    size_t nb = n / 64;
    if (nb) ni_blocks(s->h, p, nb);
    memcpy(s->buf, p + nb * 64, n - nb * 64);
    s->nbuf = n - nb * 64;
    s->total += n;
}

int blob_sha_update(blob_sha *s, const void *data, size_t len) {
    if (s->evp) return EVP_DigestUpdate(s->evp, data, len) ? STRATA_OK : STRATA_ENOMEM;
    rest(s, data, len);
    return STRATA_OK;
}

int blob_sha_update2_scan(blob_sha *a, const void *da, size_t na, blob_sha *b, const void *db, size_t nb,
                          const blob_chunker *c, blob_scan *s) {
    if (a->evp || b->evp) {                      /* OpenSSL path; the scan waits */
        int rc = blob_sha_update(a, da, na);
        return rc ? rc : blob_sha_update(b, db, nb);
    }
    const uint8_t *pa = da, *pb = db;
    top_up(a, &pa, &na);
    top_up(b, &pb, &nb);
    size_t n = 0;
    if (a->nbuf == 0 && b->nbuf == 0) n = (na < nb ? na : nb) / 64;   /* blocks both have */
    while (n) {
        uint64_t mask = 0;
        size_t k = c ? blob_scan_windows(c, s, &mask) : 0, did;
        if (k == 0) {
            ni_blocks2(a->h, pa, b->h, pb, n);
            did = n;
        } else {
            uint64_t h = s->h;
            int hit;
            did = ni_blocks2_gear(a->h, pa, b->h, pb, k < n ? k : n, s->p + s->i, &h, mask, &hit);
            blob_scan_advance(c, s, did, h, hit, mask);
        }
        pa += did * 64;
        pb += did * 64;
        na -= did * 64;
        nb -= did * 64;
        a->total += did * 64;
        b->total += did * 64;
        n -= did;
    }
    rest(a, pa, na);
    rest(b, pb, nb);
    return STRATA_OK;
}

int blob_sha_update2(blob_sha *a, const void *da, size_t na, blob_sha *b, const void *db, size_t nb) {
    return blob_sha_update2_scan(a, da, na, b, db, nb, NULL, NULL);
}

int blob_sha_final(blob_sha *s, uint8_t out[SHA_LEN]) {
    if (s->evp) {
        unsigned int n = 0;
        int ok = EVP_DigestFinal_ex(s->evp, out, &n) && n == SHA_LEN;
        blob_sha_free(s);
        return ok ? STRATA_OK : STRATA_ENOMEM;
    }
    uint8_t pad[128] = { 0x80 };
    uint64_t bits = s->total * 8;
    size_t padlen = (s->nbuf < 56 ? 56 : 120) - s->nbuf;
    for (int i = 0; i < 8; i++) pad[padlen + (size_t)i] = (uint8_t)(bits >> (56 - 8 * i));
    rest(s, pad, padlen + 8);
    for (int i = 0; i < 8; i++) {
        out[4 * i] = (uint8_t)(s->h[i] >> 24);
        out[4 * i + 1] = (uint8_t)(s->h[i] >> 16);
        out[4 * i + 2] = (uint8_t)(s->h[i] >> 8);
        out[4 * i + 3] = (uint8_t)s->h[i];
    }
    return STRATA_OK;
}

int blob_sha_oneshot(const void *data, size_t len, uint8_t out[SHA_LEN]) {
    blob_sha s;
    int rc = blob_sha_init(&s);
    if (rc == STRATA_OK) rc = blob_sha_update(&s, data, len);
    if (rc == STRATA_OK) return blob_sha_final(&s, out);
    blob_sha_free(&s);
    return rc;
}
