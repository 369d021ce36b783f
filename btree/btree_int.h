/* btree/btree_int.h - private to btree/: node (page) editing and COW helpers. */
#ifndef STRATA_BTREE_INT_H
#define STRATA_BTREE_INT_H

#include "btree.h"

typedef struct cellref { const uint8_t *p; uint32_t len; } cellref;

/* node.c */
void   node_init(uint8_t *pg, unsigned type, uint64_t txnid, uint32_t ps);
size_t node_used(const uint8_t *pg);                 /* cell bytes + slots */
/* The same from the header alone: exact on pages this code wrote (removal
 * closes holes), an over-estimate on a page with holes left by an older
 * writer. Used where over-estimating only skips an optional merge. */
size_t node_used_bound(const uint8_t *pg, uint32_t ps);
/* Insert a cell at slot idx; 0 on success, 1 when the page has no room. */
int    node_insert(uint8_t *pg, uint32_t ps, unsigned idx, const uint8_t *cell, size_t len);
void   node_remove(uint8_t *pg, uint32_t ps, unsigned idx);
/* Build pg from cells (which must not point into pg). */
void   node_build(uint8_t *pg, unsigned type, uint64_t txnid, uint32_t ps,
                  const cellref *cells, unsigned n);

/* The first line of every cell of a leaf, requested at once: a binary search
 * or a cursor walk would otherwise wait for one dependent cache miss per cell
 * (cells sit in insertion order, not key order). Bounded to small leaves. */
static inline void leaf_prefetch(const uint8_t *pg) {
    unsigned n = pg_n(pg);
    if (n <= 64)
        for (unsigned i = 0; i < n; i++) __builtin_prefetch(pg + pg_slot(pg, i));
}

/* Pages a whole-tree walk has reached (one bit each): a tree reaches each
 * page from one parent only, so a page reached twice is damage (a crafted
 * file whose branch cells share a child would otherwise be walked once per
 * path - exponentially often - and freed more than once). */
typedef struct bt_seen { uint8_t *bits; uint64_t n; } bt_seen;
int  bt_seen_init(bt_seen *s, uint64_t npages);     /* STRATA_OK or STRATA_ENOMEM */
/* 1 if pg was reached before (or is beyond the walk's pages), else marks it, 0. */
int  bt_seen_add(bt_seen *s, pgno_t pg);
/* The same for the n pages of an overflow run at pg: 1 if any was reached
 * before (by a tree page or another run) or lies beyond, else marks all, 0. */
int  bt_seen_run(bt_seen *s, pgno_t pg, uint64_t n);
void bt_seen_free(bt_seen *s);

/* btree.c */
unsigned leaf_search(const bt_tree *t, const uint8_t *pg, const void *key, size_t klen, int *exact);
unsigned branch_search(const bt_tree *t, const uint8_t *pg, const void *key, size_t klen);
/* Copy-on-write: make pg writable in this transaction. */
int    bt_touch(bt_ctx *cx, pgno_t pg, const ck128 *ck, pgno_t *npg, uint8_t **buf);

/* wtx.c */
uint64_t bt_wtx_txnid_of(const bt_wtx *w);
/* Whether a dirty page may be changed in place (made since the last savepoint). */
int bt_wtx_writable(const bt_wtx *w, const dpage *d);

#endif
