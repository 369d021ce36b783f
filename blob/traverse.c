/* blob/traverse.c - breadth-first lineage queries: ancestors / descendants
 * with a depth limit (strata_blob_traverse) and the shortest path between
 * two blobs (strata_blob_path).
 * Each BFS level is a list of ids; expanding an id is one prefix scan of
 * blob:edges_out (parents) and/or blob:edges_in (children). A visited set
 * (idset.c) makes every id enter the frontier at most once, so cycles end,
 * and records the id it was reached from, from which the path is rebuilt.
 * Invariants: (1) ids are reported once, in order of depth, and within a
 * depth in the order they were reached; (2) the start is never reported. */
#include <stdlib.h>

#include "blob_int.h"

typedef struct ids { uint64_t *v; size_t n, cap; } ids;

static int ids_push(ids *a, uint64_t x) {
    if (a->n == a->cap) {
        size_t ncap = a->cap ? a->cap * 2 : 16;
        uint64_t *p = realloc(a->v, ncap * sizeof *p);
        if (!p) return STRATA_ENOMEM;
        a->v = p;
        a->cap = ncap;
    }
    a->v[a->n++] = x;
    return STRATA_OK;
}

typedef struct bfs {
    strata_txn *txn;
    unsigned    mask;
    uint32_t    depth;       /* depth of the ids being discovered */
    uint64_t    from;        /* the id being expanded */
    blob_idset  seen;
    ids         next;
    int       (*fn)(void *ctx, uint64_t id, uint32_t depth);   /* may be NULL */
    void       *ctx;
    uint64_t    target;      /* stop when reached (path); 0 = none */
    int         found;
} bfs;

/* One edge row under b->from: the neighbour is the second id of the key. */
static int bfs_row(void *ctx, strata_slice k, strata_slice v) {
    (void)v;
    bfs *b = ctx;
    const uint8_t *p = k.data;
    if (k.len != EDGE_KEY) return STRATA_ECORRUPT;
    if (b->mask && !(b->mask & STRATA_BLOB_REL_MASK(p[16]))) return STRATA_OK;
    uint64_t nb = be64_get(p + 8);
    int added = blob_idset_add(&b->seen, nb, b->from);
    if (added < 0) return added;
    if (!added) return STRATA_OK;
    int rc = ids_push(&b->next, nb);
    if (rc) return rc;
    if (nb == b->target) { b->found = 1; return 1; }
    return b->fn ? b->fn(b->ctx, nb, b->depth) : STRATA_OK;
}

static int expand(bfs *b, uint64_t id, int dir) {
    uint8_t pre[8];
    be64_put(pre, id);
    b->from = id;
    for (int side = 0; side < 2; side++) {
        if (!(dir & (side ? STRATA_BLOB_CHILDREN : STRATA_BLOB_PARENTS))) continue;
        strata_table *t;
        int rc = blob_tab(b->txn, side ? BT_EIN : BT_EOUT, 0, &t);
        if (rc == STRATA_NOTFOUND) continue;
        if (rc || (rc = blob_scan_prefix(t, pre, 8, bfs_row, b))) return rc;
    }
    return STRATA_OK;
}

/* Run the BFS from start up to max_depth levels; stops early on a non-zero
 * callback value (returned) or when the target is found (b->found). */
static int run(bfs *b, uint64_t start, int dir, uint32_t max_depth) {
    ids cur = { NULL, 0, 0 };
    int rc = blob_idset_add(&b->seen, start, 0);
    if (rc < 0) return rc;
    rc = ids_push(&cur, start);
    for (b->depth = 1; rc == STRATA_OK && b->depth <= max_depth && cur.n; b->depth++) {
        for (size_t i = 0; rc == STRATA_OK && i < cur.n; i++) rc = expand(b, cur.v[i], dir);
        ids t = cur;
        cur = b->next;
        b->next = t;
        b->next.n = 0;
    }
    free(cur.v);
    free(b->next.v);
    b->next.v = NULL;
    return rc;
}

int strata_blob_traverse(strata_txn *txn, uint64_t id, int dir, unsigned rel_mask, uint32_t max_depth,
                         int (*fn)(void *ctx, uint64_t id, uint32_t depth), void *ctx) {
    if (!txn || !fn || dir < STRATA_BLOB_PARENTS || dir > STRATA_BLOB_BOTH || max_depth == 0)
        return STRATA_EINVAL;
    int rc = blob_exists(txn, id);
    if (rc) return rc;
    bfs b;
    memset(&b, 0, sizeof b);
    b.txn = txn;
    b.mask = rel_mask;
    b.fn = fn;
    b.ctx = ctx;
    rc = run(&b, id, dir, max_depth);
    blob_idset_free(&b.seen);
    return rc;
}

int strata_blob_path(strata_txn *txn, uint64_t from, uint64_t to, int dir, unsigned rel_mask,
                     uint32_t max_depth, uint64_t *path, size_t cap, size_t *n_path) {
    if (!txn || !path || !n_path || dir < STRATA_BLOB_PARENTS || dir > STRATA_BLOB_BOTH ||
        cap < (size_t)max_depth + 1)
        return STRATA_EINVAL;
    int rc = blob_exists(txn, from);
    if (rc || (rc = blob_exists(txn, to))) return rc;
    if (from == to) { path[0] = from; *n_path = 1; return STRATA_OK; }
    bfs b;
    memset(&b, 0, sizeof b);
    b.txn = txn;
    b.mask = rel_mask;
    b.target = to;
    rc = run(&b, from, dir, max_depth);
    if (rc == 1 && b.found) {
        size_t n = 1;
        for (uint64_t x = to; x != from; x = blob_idset_parent(&b.seen, x)) n++;
        size_t i = n;
        for (uint64_t x = to;; x = blob_idset_parent(&b.seen, x)) {
            path[--i] = x;
            if (x == from) break;
        }
        *n_path = n;
        rc = STRATA_OK;
    } else if (rc == STRATA_OK) {
        rc = STRATA_NOTFOUND;
    }
    blob_idset_free(&b.seen);
    return rc;
}
