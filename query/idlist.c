/* query/idlist.c - the small containers of a run: growable id lists with a
 * payload, the id -> hops map of the lineage walk, and the candidate array.
 * Invariants: (1) qhops keeps its load factor <= 1/2 and never stores id 0
 * (the empty slot); (2) the candidate array stays sorted by id because it is
 * only filled from sorted lists (qrun_add is called in increasing id order)
 * and qrun_compact keeps the order. */
#include <stdlib.h>
#include <string.h>

#include "query_int.h"

int qids_push(qids *l, uint64_t id, uint64_t aux) {
    if (l->n == l->cap) {
        size_t ncap = l->cap ? l->cap * 2 : 64;
        uint64_t *a = realloc(l->id, ncap * sizeof *a);
        if (!a) return STRATA_ENOMEM;
        l->id = a;
        uint64_t *b = realloc(l->aux, ncap * sizeof *b);
        if (!b) return STRATA_ENOMEM;
        l->aux = b;
        l->cap = ncap;
    }
    l->id[l->n] = id;
    l->aux[l->n++] = aux;
    return STRATA_OK;
}

void qids_free(qids *l) {
    free(l->id);
    free(l->aux);
    memset(l, 0, sizeof *l);
}

typedef struct pair { uint64_t id, aux; } pair;

static int pair_cmp(const void *a, const void *b) {
    const pair *x = a, *y = b;
    return (x->id > y->id) - (x->id < y->id);
}

void qids_sort(qids *l) {
    int sorted = 1;
    for (size_t i = 1; i < l->n && sorted; i++) sorted = l->id[i - 1] < l->id[i];
    if (sorted) return;
    pair *p = malloc(l->n * sizeof *p);
    if (p) {
        for (size_t i = 0; i < l->n; i++) p[i] = (pair){ l->id[i], l->aux[i] };
        qsort(p, l->n, sizeof *p, pair_cmp);
        for (size_t i = 0; i < l->n; i++) { l->id[i] = p[i].id; l->aux[i] = p[i].aux; }
        free(p);
        return;
    }
    /* Out of memory for the scratch array: insertion sort in place (correct,
     * slow; only reached under memory pressure). */
    for (size_t i = 1; i < l->n; i++) {
        uint64_t id = l->id[i], aux = l->aux[i];
        size_t j = i;
        for (; j > 0 && l->id[j - 1] > id; j--) { l->id[j] = l->id[j - 1]; l->aux[j] = l->aux[j - 1]; }
        l->id[j] = id;
        l->aux[j] = aux;
    }
}

long qids_find(const qids *l, uint64_t id) {
    size_t lo = 0, hi = l->n;
    while (lo < hi) {
        size_t mid = lo + (hi - lo) / 2;
        if (l->id[mid] < id) lo = mid + 1;
        else hi = mid;
    }
    return lo < l->n && l->id[lo] == id ? (long)lo : -1;
}

static size_t slot_of(uint64_t id, size_t cap) {
    uint64_t h = id * 0x9E3779B97F4A7C15ull;
    return (size_t)(h ^ (h >> 29)) & (cap - 1);
}

static int hops_grow(qhops *h) {
    size_t ncap = h->cap ? h->cap * 2 : 64;
    uint64_t *k = calloc(ncap, sizeof *k);
    uint32_t *v = malloc(ncap * sizeof *v);
    if (!k || !v) { free(k); free(v); return STRATA_ENOMEM; }
    for (size_t i = 0; i < h->cap; i++) {
        if (!h->keys[i]) continue;
        size_t s = slot_of(h->keys[i], ncap);
        while (k[s]) s = (s + 1) & (ncap - 1);
        k[s] = h->keys[i];
        v[s] = h->hops[i];
    }
    free(h->keys);
    free(h->hops);
    h->keys = k;
    h->hops = v;
    h->cap = ncap;
    return STRATA_OK;
}

int qhops_put(qhops *h, uint64_t id, uint32_t hops) {
    if (id == 0) return STRATA_EINVAL;
    if (2 * (h->n + 1) > h->cap) {
        int rc = hops_grow(h);
        if (rc) return rc;
    }
    size_t s = slot_of(id, h->cap);
    while (h->keys[s] && h->keys[s] != id) s = (s + 1) & (h->cap - 1);
    if (!h->keys[s]) { h->keys[s] = id; h->n++; h->hops[s] = hops; }
    else if (hops < h->hops[s]) h->hops[s] = hops;
    return STRATA_OK;
}

uint32_t qhops_get(const qhops *h, uint64_t id) {
    if (!h->cap || id == 0) return STRATA_QUERY_NO_HOPS;
    size_t s = slot_of(id, h->cap);
    while (h->keys[s]) {
        if (h->keys[s] == id) return h->hops[s];
        s = (s + 1) & (h->cap - 1);
    }
    return STRATA_QUERY_NO_HOPS;
}

void qhops_free(qhops *h) {
    free(h->keys);
    free(h->hops);
    memset(h, 0, sizeof *h);
}

int qrun_add(qrun *r, uint64_t id, uint64_t hlc, int has_hlc) {
    if (r->n == r->cap) {
        size_t ncap = r->cap ? r->cap * 2 : 256;
        qcand *c = realloc(r->c, ncap * sizeof *c);
        if (!c) return STRATA_ENOMEM;
        r->c = c;
        r->cap = ncap;
    }
    qcand *c = &r->c[r->n++];
    memset(c, 0, sizeof *c);
    c->id = id;
    c->hlc = hlc;
    c->flags = has_hlc ? QC_HLC : 0;
    c->hops = STRATA_QUERY_NO_HOPS;
    return STRATA_OK;
}

void qrun_compact(qrun *r) {
    size_t o = 0;
    for (size_t i = 0; i < r->n; i++)
        if (!(r->c[i].flags & QC_DEAD)) r->c[o++] = r->c[i];
    r->n = o;
}

long qrun_find(const qrun *r, uint64_t id) {
    size_t lo = 0, hi = r->n;
    while (lo < hi) {
        size_t mid = lo + (hi - lo) / 2;
        if (r->c[mid].id < id) lo = mid + 1;
        else hi = mid;
    }
    return lo < r->n && r->c[lo].id == id ? (long)lo : -1;
}
