/* blob/lineage.c - causal lineage edges between finished blobs: link,
 * unlink, direct edges, and removal of a deleted blob's edges.
 * An edge "from names to as rel" is stored twice (docs/BLOBS.md
 * "blob:edges_out" / "blob:edges_in"): out-key (from BE, to BE, rel) with the
 * context as value, in-key (to BE, from BE, rel) with an empty value, so the
 * parents and the children of a blob are each one key range.
 * Invariants: (1) an out row exists iff its in row does; (2) both ends are
 * finished blobs and differ; (3) rel is 1..5 and the context <= 255 bytes. */
#include <stdlib.h>

#include "blob_int.h"

static void edge_key(uint8_t k[EDGE_KEY], uint64_t a, uint64_t b, unsigned rel) {
    be64_put(k, a);
    be64_put(k + 8, b);
    k[16] = (uint8_t)rel;
}

static int rel_ok(unsigned rel) { return rel >= STRATA_BLOB_DERIVED_FROM && rel <= STRATA_BLOB_SUPERSEDES; }

int strata_blob_link(strata_txn *txn, uint64_t from, uint64_t to, strata_blob_rel rel,
                     const char *context) {
    strata_table *out, *in;
    uint8_t k[EDGE_KEY];
    size_t cl = context ? strlen(context) : 0;
    if (!txn || !rel_ok(rel) || from == to || cl > STRATA_BLOB_MAX_CTX) return STRATA_EINVAL;
    int rc = blob_exists(txn, from);
    if (rc || (rc = blob_exists(txn, to))) return rc;
    if ((rc = blob_tab(txn, BT_EOUT, 1, &out)) || (rc = blob_tab(txn, BT_EIN, 1, &in))) return rc;
    edge_key(k, from, to, rel);
    if ((rc = strata_put(out, blob_sl(k, EDGE_KEY), blob_sl(context ? context : "", cl)))) return rc;
    edge_key(k, to, from, rel);
    return blob_fail(txn, strata_put(in, blob_sl(k, EDGE_KEY), blob_sl("", 0)));
}

int strata_blob_unlink(strata_txn *txn, uint64_t from, uint64_t to, strata_blob_rel rel) {
    strata_table *out, *in;
    uint8_t k[EDGE_KEY];
    if (!txn || !rel_ok(rel)) return STRATA_EINVAL;
    int rc = blob_tab(txn, BT_EOUT, 0, &out);
    if (rc || (rc = blob_tab(txn, BT_EIN, 0, &in))) return rc;
    edge_key(k, from, to, rel);
    if ((rc = strata_del(out, blob_sl(k, EDGE_KEY)))) return rc;
    edge_key(k, to, from, rel);
    rc = strata_del(in, blob_sl(k, EDGE_KEY));
    return blob_fail(txn, rc == STRATA_NOTFOUND ? STRATA_ECORRUPT : rc);
}

typedef struct edge_ctx {
    strata_txn *txn;
    int         in;          /* scanning blob:edges_in */
    unsigned    mask;
    int       (*fn)(void *ctx, const strata_blob_edge *e);
    void       *ctx;
} edge_ctx;

static int edge_row(void *ctx, strata_slice k, strata_slice v) {
    const edge_ctx *c = ctx;
    const uint8_t *p = k.data;
    if (k.len != EDGE_KEY || !rel_ok(p[16]) || v.len > STRATA_BLOB_MAX_CTX) return STRATA_ECORRUPT;
    if (c->mask && !(c->mask & STRATA_BLOB_REL_MASK(p[16]))) return STRATA_OK;
    strata_blob_edge e;
    e.rel = (strata_blob_rel)p[16];
    e.from = be64_get(p + (c->in ? 8 : 0));
    e.to = be64_get(p + (c->in ? 0 : 8));
    e.context = v;
    if (c->in) {   /* the context lives in the out row */
        strata_table *out;
        uint8_t ok[EDGE_KEY];
        int rc = blob_tab(c->txn, BT_EOUT, 0, &out);
        edge_key(ok, e.from, e.to, e.rel);
        if (rc == STRATA_OK) rc = strata_get(out, blob_sl(ok, EDGE_KEY), &e.context);
        if (rc) return rc == STRATA_NOTFOUND ? STRATA_ECORRUPT : rc;
    }
    return c->fn(c->ctx, &e);
}

/* Scan the edges of id in one direction; a missing table is no edges. */
static int scan_dir(edge_ctx *c, uint64_t id, int in) {
    strata_table *t;
    uint8_t pre[8];
    int rc = blob_tab(c->txn, in ? BT_EIN : BT_EOUT, 0, &t);
    if (rc) return rc == STRATA_NOTFOUND ? STRATA_OK : rc;
    be64_put(pre, id);
    c->in = in;
    return blob_scan_prefix(t, pre, 8, edge_row, c);
}

int strata_blob_edges(strata_txn *txn, uint64_t id, int dir, unsigned rel_mask,
                      int (*fn)(void *ctx, const strata_blob_edge *e), void *ctx) {
    if (!txn || !fn || dir < STRATA_BLOB_PARENTS || dir > STRATA_BLOB_BOTH) return STRATA_EINVAL;
    int rc = blob_exists(txn, id);
    if (rc) return rc;
    edge_ctx c = { txn, 0, rel_mask, fn, ctx };
    if ((dir & STRATA_BLOB_PARENTS) && (rc = scan_dir(&c, id, 0))) return rc;
    if (dir & STRATA_BLOB_CHILDREN) rc = scan_dir(&c, id, 1);
    return rc;
}

/* Collect the 17-byte keys under prefix id (copies, for deleting). */
typedef struct key_list { uint8_t *buf; size_t n; } key_list;

static int key_collect(void *ctx, strata_slice k, strata_slice v) {
    (void)v;
    key_list *l = ctx;
    if (k.len != EDGE_KEY) return STRATA_ECORRUPT;
    uint8_t *p = realloc(l->buf, (l->n + 1) * EDGE_KEY);
    if (!p) return STRATA_ENOMEM;
    memcpy(p + l->n * EDGE_KEY, k.data, EDGE_KEY);
    l->buf = p;
    l->n++;
    return STRATA_OK;
}

/* Delete every row of table `own` under id and the mirror row of each in
 * table `mirror`. */
static int remove_side(strata_txn *txn, uint64_t id, int own, int mirror) {
    strata_table *a, *b;
    uint8_t pre[8], mk[EDGE_KEY];
    key_list l = { NULL, 0 };
    int rc = blob_tab(txn, own, 0, &a);
    if (rc) return rc == STRATA_NOTFOUND ? STRATA_OK : rc;
    if ((rc = blob_tab(txn, mirror, 1, &b))) return rc;
    be64_put(pre, id);
    rc = blob_scan_prefix(a, pre, 8, key_collect, &l);
    for (size_t i = 0; rc == STRATA_OK && i < l.n; i++) {
        const uint8_t *k = l.buf + i * EDGE_KEY;
        edge_key(mk, be64_get(k + 8), id, k[16]);
        rc = strata_del(b, blob_sl(mk, EDGE_KEY));
        if (rc == STRATA_NOTFOUND) rc = STRATA_ECORRUPT;
        if (rc == STRATA_OK) rc = strata_del(a, blob_sl(k, EDGE_KEY));
    }
    free(l.buf);
    return rc;
}

int blob_edges_remove(strata_txn *txn, uint64_t id) {
    int rc = remove_side(txn, id, BT_EOUT, BT_EIN);
    return rc ? rc : remove_side(txn, id, BT_EIN, BT_EOUT);
}
