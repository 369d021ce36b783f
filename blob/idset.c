/* blob/idset.c - a growable open-addressing hash set of blob ids, each with
 * the id it was reached from: the visited set of the lineage traversals.
 * Invariants: (1) key 0 marks an empty slot (blob ids are never 0); (2) the
 * table is at most half full, so probes are short and always end; (3) cap is
 * zero or a power of two. */
#include <stdlib.h>

#include "blob_int.h"

static size_t slot_of(uint64_t id, size_t cap) {
    return (size_t)((id * 0x9E3779B97F4A7C15ull) >> 17) & (cap - 1);
}

static int grow(blob_idset *s) {
    size_t ncap = s->cap ? s->cap * 2 : 64;
    uint64_t *k = calloc(ncap, sizeof *k), *p = calloc(ncap, sizeof *p);
    if (!k || !p) { free(k); free(p); return STRATA_ENOMEM; }
    for (size_t i = 0; i < s->cap; i++) {
        if (!s->keys[i]) continue;
        size_t j = slot_of(s->keys[i], ncap);
        while (k[j]) j = (j + 1) & (ncap - 1);
        k[j] = s->keys[i];
        p[j] = s->parent[i];
    }
    free(s->keys);
    free(s->parent);
    s->keys = k;
    s->parent = p;
    s->cap = ncap;
    return STRATA_OK;
}

int blob_idset_add(blob_idset *s, uint64_t id, uint64_t parent) {
    if (id == 0) return STRATA_EINVAL;
    if ((s->n + 1) * 2 > s->cap) {
        int rc = grow(s);
        if (rc) return rc;
    }
    size_t j = slot_of(id, s->cap);
    while (s->keys[j]) {
        if (s->keys[j] == id) return 0;
        j = (j + 1) & (s->cap - 1);
    }
    s->keys[j] = id;
    s->parent[j] = parent;
    s->n++;
    return 1;
}

uint64_t blob_idset_parent(const blob_idset *s, uint64_t id) {
    if (!s->cap || id == 0) return 0;
    size_t j = slot_of(id, s->cap);
    while (s->keys[j]) {
        if (s->keys[j] == id) return s->parent[j];
        j = (j + 1) & (s->cap - 1);
    }
    return 0;
}

void blob_idset_free(blob_idset *s) {
    free(s->keys);
    free(s->parent);
    memset(s, 0, sizeof *s);
}
