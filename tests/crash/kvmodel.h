/* tests/crash/kvmodel.h - the reference model for randomized tests: a sorted
 * array of (key, value) entries, compared byte for byte with what Strata
 * returns. Values are not stored: a value is (length, seed) and its bytes are
 * regenerated on demand (kv_fill), so copying a whole model state (a commit, a
 * durable snapshot) is one memcpy. Used by tests/crash and tests/fuzz.
 * Invariants: (1) entries are sorted by memcmp order of keys (Strata's
 * STRATA_KEY_BYTES order) without duplicates; (2) everything is deterministic
 * in the seeds the caller passes (no time, no rand()). */
#ifndef STRATA_TESTS_KVMODEL_H
#define STRATA_TESTS_KVMODEL_H

#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

enum { KV_KEY_MAX = 64 };

typedef struct kv_ent {
    uint8_t  klen;
    uint8_t  key[KV_KEY_MAX];
    uint32_t vlen;
    uint64_t vseed;
} kv_ent;

typedef struct kv_model {
    kv_ent *e;
    size_t  n, cap;
} kv_model;

static inline uint64_t kv_mix(uint64_t *s) {
    uint64_t z = (*s += 0x9E3779B97F4A7C15ull);
    z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ull;
    z = (z ^ (z >> 27)) * 0x94D049BB133111EBull;
    return z ^ (z >> 31);
}

/* Uniform in [0, n); n > 0. */
static inline uint64_t kv_below(uint64_t *s, uint64_t n) { return kv_mix(s) % n; }

/* The value bytes of (vlen, vseed). */
static inline void kv_fill(uint8_t *out, uint32_t vlen, uint64_t vseed) {
    uint64_t s = vseed, w = 0;
    for (uint32_t i = 0; i < vlen; i++) {
        if ((i & 7) == 0) w = kv_mix(&s);
        out[i] = (uint8_t)(w >> (8 * (i & 7)));
    }
}

/* Does data[0..len) equal the value (vlen, vseed)? */
static inline int kv_val_eq(const void *data, size_t len, uint32_t vlen, uint64_t vseed) {
    if (len != vlen) return 0;
    const uint8_t *d = data;
    uint64_t s = vseed, w = 0;
    for (uint32_t i = 0; i < vlen; i++) {
        if ((i & 7) == 0) w = kv_mix(&s);
        if (d[i] != (uint8_t)(w >> (8 * (i & 7)))) return 0;
    }
    return 1;
}

static inline int kv_keycmp(const void *a, size_t al, const void *b, size_t bl) {
    size_t m = al < bl ? al : bl;
    int c = m ? memcmp(a, b, m) : 0;
    if (c) return c;
    return al < bl ? -1 : al > bl;
}

/* First index whose key is >= key; *exact says whether it is equal. */
static inline size_t kv_lower(const kv_model *m, const void *key, size_t klen, int *exact) {
    size_t lo = 0, hi = m->n;
    *exact = 0;
    while (lo < hi) {
        size_t mid = (lo + hi) / 2;
        int c = kv_keycmp(m->e[mid].key, m->e[mid].klen, key, klen);
        if (c < 0) lo = mid + 1;
        else if (c > 0) hi = mid;
        else { *exact = 1; return mid; }
    }
    return lo;
}

static inline const kv_ent *kv_find(const kv_model *m, const void *key, size_t klen) {
    int exact;
    size_t i = kv_lower(m, key, klen, &exact);
    return exact ? &m->e[i] : NULL;
}

/* Insert or overwrite. Returns 0, or -1 when out of memory. */
static inline int kv_put(kv_model *m, const void *key, size_t klen, uint32_t vlen, uint64_t vseed) {
    int exact;
    size_t i = kv_lower(m, key, klen, &exact);
    if (!exact) {
        if (m->n == m->cap) {
            size_t nc = m->cap ? m->cap * 2 : 64;
            kv_ent *ne = realloc(m->e, nc * sizeof *ne);
            if (!ne) return -1;
            m->e = ne;
            m->cap = nc;
        }
        memmove(&m->e[i + 1], &m->e[i], (m->n - i) * sizeof *m->e);
        m->n++;
        memset(&m->e[i], 0, sizeof m->e[i]);
        m->e[i].klen = (uint8_t)klen;
        if (klen) memcpy(m->e[i].key, key, klen);
    }
    m->e[i].vlen = vlen;
    m->e[i].vseed = vseed;
    return 0;
}

static inline void kv_remove_at(kv_model *m, size_t i) {
    memmove(&m->e[i], &m->e[i + 1], (m->n - i - 1) * sizeof *m->e);
    m->n--;
}

/* 1 if key was present and is now removed. */
static inline int kv_del(kv_model *m, const void *key, size_t klen) {
    int exact;
    size_t i = kv_lower(m, key, klen, &exact);
    if (!exact) return 0;
    kv_remove_at(m, i);
    return 1;
}

/* Copy src into dst (dst's storage is reused). Returns 0 or -1 (no memory). */
static inline int kv_copy(kv_model *dst, const kv_model *src) {
    if (dst->cap < src->n) {
        kv_ent *ne = realloc(dst->e, (src->n ? src->n : 1) * sizeof *ne);
        if (!ne) return -1;
        dst->e = ne;
        dst->cap = src->n ? src->n : 1;
    }
    if (src->n) memcpy(dst->e, src->e, src->n * sizeof *src->e);
    dst->n = src->n;
    return 0;
}

static inline void kv_free(kv_model *m) {
    free(m->e);
    m->e = NULL;
    m->n = m->cap = 0;
}

/* Index range [*from, *to) of entries inside the bounds: lo inclusive unless
 * lo_excl, hi exclusive unless hi_incl; a NULL bound is unbounded. */
static inline void kv_range(const kv_model *m, const uint8_t *lo, size_t lolen, int lo_excl,
                            const uint8_t *hi, size_t hilen, int hi_incl, size_t *from, size_t *to) {
    int exact;
    size_t a = 0, b = m->n;
    if (lo) {
        a = kv_lower(m, lo, lolen, &exact);
        if (exact && lo_excl) a++;
    }
    if (hi) {
        b = kv_lower(m, hi, hilen, &exact);
        if (exact && hi_incl) b++;
    }
    if (b < a) b = a;
    *from = a;
    *to = b;
}

#endif
