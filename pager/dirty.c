/* pager/dirty.c - the dirty-page map of a write transaction: page number ->
 * malloc'd buffer (open addressing, linear probing, backward-shift delete).
 * Invariants: (1) cap is a power of two and n <= cap / 2; (2) slot.pg == 0 marks
 * an empty slot (page 0 is the header and is never dirty); (3) bit pg of bits is
 * set iff pg is a key (pages >= nbits are not), so most misses cost one bit test. */
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>

#include "strata.h"
#include "pager.h"

static size_t hash_pg(pgno_t pg, size_t cap) {
    uint64_t h = pg * 0x9E3779B97F4A7C15ull;
    return (size_t)(h >> 32) & (cap - 1);
}

static inline int bit_test(const dirty_map *m, pgno_t pg) {
    return pg < m->nbits && (m->bits[pg >> 3] & (1u << (pg & 7)));
}

dpage *dirty_get(const dirty_map *m, pgno_t pg) {
    if (!bit_test(m, pg)) return NULL;
    for (size_t i = hash_pg(pg, m->cap);; i = (i + 1) & (m->cap - 1)) {
        dpage *d = &m->slots[i];
        if (d->pg == pg) return d;
        if (d->pg == 0) return NULL;
    }
}

static int grow(dirty_map *m) {
    size_t nc = m->cap ? m->cap * 2 : 64;
    dpage *ns = calloc(nc, sizeof *ns);
    if (!ns) return STRATA_ENOMEM;
    for (size_t i = 0; i < m->cap; i++) {
        dpage *d = &m->slots[i];
        if (!d->pg) continue;
        size_t j = hash_pg(d->pg, nc);
        while (ns[j].pg) j = (j + 1) & (nc - 1);
        ns[j] = *d;
    }
    free(m->slots);
    m->slots = ns;
    m->cap = nc;
    return STRATA_OK;
}

int dirty_put(dirty_map *m, pgno_t pg, uint32_t npages, uint8_t *buf) {
    if ((m->n + 1) * 2 > m->cap) {
        int rc = grow(m);
        if (rc) return rc;
    }
    if (pg >= m->nbits) {
        uint64_t nb = m->nbits ? m->nbits : 4096;
        while (nb <= pg) nb *= 2;
        uint8_t *bits = realloc(m->bits, (size_t)(nb / 8));
        if (!bits) return STRATA_ENOMEM;
        memset(bits + m->nbits / 8, 0, (size_t)((nb - m->nbits) / 8));
        m->bits = bits;
        m->nbits = nb;
    }
    m->bits[pg >> 3] |= (uint8_t)(1u << (pg & 7));
    size_t i = hash_pg(pg, m->cap);
    while (m->slots[i].pg && m->slots[i].pg != pg) i = (i + 1) & (m->cap - 1);
    if (!m->slots[i].pg) m->n++;
    m->slots[i].pg = pg;
    m->slots[i].npages = npages;
    m->slots[i].epoch = 0;
    m->slots[i].buf = buf;
    return STRATA_OK;
}

/* Unlink entry d (found by dirty_get); returns its buffer. */
static uint8_t *remove_at(dirty_map *m, dpage *d) {
    pgno_t pg = d->pg;
    uint8_t *buf = d->buf;
    size_t i = (size_t)(d - m->slots), mask = m->cap - 1;
    m->bits[pg >> 3] &= (uint8_t)~(1u << (pg & 7));
    d->pg = 0;
    m->n--;
    /* backward-shift: pull later entries of the probe run into the hole */
    for (size_t j = (i + 1) & mask; m->slots[j].pg; j = (j + 1) & mask) {
        size_t home = hash_pg(m->slots[j].pg, m->cap);
        if (((j - home) & mask) >= ((j - i) & mask)) {
            m->slots[i] = m->slots[j];
            m->slots[j].pg = 0;
            i = j;
        }
    }
    return buf;
}

uint8_t *dirty_take(dirty_map *m, pgno_t pg) {
    dpage *d = dirty_get(m, pg);
    return d ? remove_at(m, d) : NULL;
}

void dirty_drop(dirty_map *m, dpage *d) {
    uint32_t npages = d->npages;
    arena_free(m->arena, remove_at(m, d), npages);
}

void dirty_clear(dirty_map *m) {
    for (size_t i = 0; i < m->cap; i++)
        if (m->slots[i].pg) arena_free(m->arena, m->slots[i].buf, m->slots[i].npages);
    if (m->arena) arena_reset(m->arena);
    free(m->slots);
    free(m->bits);
    m->slots = NULL;
    m->bits = NULL;
    m->cap = m->n = 0;
    m->nbits = 0;
}

/* ---- page arena ---- */

#if defined(__SANITIZE_ADDRESS__)
#define ARENA_PLAIN 1
#elif defined(__has_feature)
#if __has_feature(address_sanitizer)
#define ARENA_PLAIN 1
#endif
#endif
#ifndef ARENA_PLAIN
#define ARENA_PLAIN 0
#endif

enum { ARENA_CHUNK = 2u << 20, ARENA_KEEP = 32u << 20 };

static uint8_t *chunk_new(void) {
    void *c = mmap(NULL, ARENA_CHUNK, PROT_READ | PROT_WRITE,
                   MAP_PRIVATE | MAP_ANONYMOUS | MAP_POPULATE, -1, 0);
    return c == MAP_FAILED ? NULL : c;
}

uint8_t *arena_alloc(page_arena *a, uint32_t npages) {
    if (!a) return NULL;
    if (ARENA_PLAIN || npages != 1 || a->ps > ARENA_CHUNK) return malloc((size_t)npages * a->ps);
    if (a->free1) {
        uint8_t *b = a->free1;
        memcpy(&a->free1, b, sizeof(void *));
        return b;
    }
    if (a->cur < a->n_chunks && a->off + a->ps > ARENA_CHUNK) a->cur++, a->off = 0;
    if (a->cur == a->n_chunks) {
        if (a->n_chunks == a->cap_chunks) {
            size_t nc = a->cap_chunks ? a->cap_chunks * 2 : 16;
            uint8_t **v = realloc(a->chunks, nc * sizeof *v);
            if (!v) return NULL;
            a->chunks = v;
            a->cap_chunks = nc;
        }
        if (!(a->chunks[a->n_chunks] = chunk_new())) return NULL;
        a->n_chunks++;
        a->off = 0;
    }
    uint8_t *b = a->chunks[a->cur] + a->off;
    a->off += a->ps;
    return b;
}

void arena_free(page_arena *a, uint8_t *buf, uint32_t npages) {
    if (!buf) return;
    if (ARENA_PLAIN || npages != 1 || !a || a->ps > ARENA_CHUNK) { free(buf); return; }
    memcpy(buf, &a->free1, sizeof(void *));
    a->free1 = buf;
}

void arena_reset(page_arena *a) {
    size_t keep = ARENA_KEEP / ARENA_CHUNK;
    while (a->n_chunks > keep) munmap(a->chunks[--a->n_chunks], ARENA_CHUNK);
    a->cur = a->off = 0;
    a->free1 = NULL;
}

void arena_destroy(page_arena *a) {
    while (a->n_chunks) munmap(a->chunks[--a->n_chunks], ARENA_CHUNK);
    free(a->chunks);
    a->chunks = NULL;
    a->cap_chunks = a->cur = a->off = 0;
    a->free1 = NULL;
}
