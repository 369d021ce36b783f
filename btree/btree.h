/* btree/btree.h - copy-on-write B+trees over the pager, as seen by db/.
 * A tree is a root page number plus the root's checksum; every read of a page
 * verifies it against the checksum its parent stores (once per open by default).
 * Writes happen inside a bt_wtx: pages of the last commit are never modified;
 * they are copied to new pages (dirty, in memory) and the old ones are freed as
 * of this transaction. bt_finalize() computes the checksums bottom-up at commit.
 * Thread-safety: a bt_ctx and the trees used through it belong to one thread;
 * readers of committed pages need no locks. */
#ifndef STRATA_BTREE_H
#define STRATA_BTREE_H

#include <stddef.h>
#include <stdint.h>

#include "pager.h"
#include "page.h"

typedef int (*bt_cmp)(void *ctx, const void *a, size_t alen, const void *b, size_t blen);
int bt_cmp_bytes(void *ctx, const void *a, size_t alen, const void *b, size_t blen);

typedef struct bt_tree {
    pgno_t   root;       /* 0 = empty tree                                     */
    ck128    root_ck;    /* checksum of the root page; stale while root is dirty */
    uint64_t count;      /* entries                                             */
    bt_cmp   cmp;
    void    *cmp_ctx;
} bt_tree;

typedef struct bt_wtx bt_wtx;

/* Where pages come from: the pager, a snapshot's page count, and for a writer
 * its dirty pages and allocator. */
typedef struct bt_ctx {
    pager   *p;
    uint64_t page_count;
    bt_wtx  *w;          /* NULL in a read transaction */
} bt_ctx;

/* A value found by a read: pointer into the map or a dirty page. */
typedef struct bt_val { const uint8_t *data; size_t len; } bt_val;

/* ---- reads (btree/btree.c) ---- */
int bt_get(bt_ctx *cx, const bt_tree *t, const void *key, size_t klen, bt_val *val);
/* Fetch a verified, structurally checked page (dirty pages are trusted). */
int bt_page(bt_ctx *cx, pgno_t pg, const ck128 *ck, const uint8_t **out);
/* Structural check of a page read from the file: 0 if sound (every offset and
 * length inside the page). */
int node_validate(const uint8_t *pg, uint32_t ps);
/* Resolve a leaf cell's value (inline or overflow run). */
int bt_cell_overflow(bt_ctx *cx, const uint8_t *cell, bt_val *val);
static inline int bt_cell_value(bt_ctx *cx, const uint8_t *cell, bt_val *val) {
    if (lc_flags(cell) & LF_OVERFLOW) return bt_cell_overflow(cx, cell, val);
    val->data = lc_val(cell);
    val->len = lc_vlen(cell);
    return STRATA_OK;
}

/* ---- writes ---- */
enum { BT_APPEND = 0x1 };
/* Values of at least this many bytes are written to their overflow pages at
 * put time, from the caller's buffer (pager_write_run), instead of being
 * copied into a dirty buffer that the commit writes. */
enum { BT_DIRECT_MIN = 16384 };   /* key must sort after every key: fill pages completely */
/* Insert or overwrite. *existed (may be NULL) says whether the key was present. */
int bt_put(bt_ctx *cx, bt_tree *t, const void *key, size_t klen, const void *val, size_t vlen,
           unsigned flags, int *existed);
/* Delete key: STRATA_OK or STRATA_NOTFOUND. */
int bt_del(bt_ctx *cx, bt_tree *t, const void *key, size_t klen);
/* Free every page of the tree; leaves it empty. */
int bt_drop(bt_ctx *cx, bt_tree *t);
/* Compute checksums of the dirty pages bottom-up; sets t->root_ck. */
int bt_finalize(bt_ctx *cx, bt_tree *t);

/* ---- cursors (btree/cursor.c) ---- */
typedef struct bt_cursor {
    bt_ctx        *cx;
    const bt_tree *t;
    int            depth;          /* levels on the stack; 0 = unpositioned */
    struct { const uint8_t *page; int idx; } stk[BT_MAX_DEPTH];
} bt_cursor;

void bt_cursor_init(bt_cursor *c, bt_ctx *cx, const bt_tree *t);
int  bt_cursor_first(bt_cursor *c);
int  bt_cursor_last(bt_cursor *c);
int  bt_cursor_seek(bt_cursor *c, const void *key, size_t klen, int *exact); /* first >= key */
/* Next / previous entry; the step inside a leaf is inline (the scan fast
 * path), leaving a leaf goes through bt_cursor_step (dir 0 next, 1 prev). */
int  bt_cursor_step(bt_cursor *c, int dir);
static inline int bt_cursor_next(bt_cursor *c) {
    if (c->depth > 0) {
        int d = c->depth - 1, idx = c->stk[d].idx + 1;
        if (idx < (int)pg_n(c->stk[d].page) - 1) { c->stk[d].idx = idx; return STRATA_OK; }
    }
    return bt_cursor_step(c, 0);
}
static inline int bt_cursor_prev(bt_cursor *c) {
    if (c->depth > 0) {
        int d = c->depth - 1, idx = c->stk[d].idx - 1;
        if (idx > 0) { c->stk[d].idx = idx; return STRATA_OK; }
    }
    return bt_cursor_step(c, 1);
}
/* Key and value at the cursor. STRATA_NOTFOUND when unpositioned. */
static inline int bt_cursor_get(bt_cursor *c, bt_val *key, bt_val *val) {
    if (c->depth == 0) return STRATA_NOTFOUND;
    const uint8_t *leaf = c->stk[c->depth - 1].page;
    const uint8_t *cell = pg_cell(leaf, (unsigned)c->stk[c->depth - 1].idx);
    if (key) { key->data = lc_key(cell); key->len = lc_klen(cell); }
    if (val) return bt_cell_value(c->cx, cell, val);
    return STRATA_OK;
}

/* ---- write transaction: allocator and free-page tree (btree/wtx.c) ---- */
/* Begin: base is the last commit (its free tree feeds the allocator); pages
 * freed by transactions <= horizon may be reused. */
int  bt_wtx_begin(pager *p, const pg_state *base, uint64_t txnid, uint64_t horizon,
                  bt_wtx **out);
void bt_wtx_free(bt_wtx *w);          /* NULL-safe; drops dirty pages */
dirty_map *bt_wtx_dirty(bt_wtx *w);
uint64_t bt_wtx_page_count(const bt_wtx *w);
uint64_t bt_wtx_txnid(const bt_wtx *w);
/* Allocate n contiguous pages; *buf is an uninitialized dirty buffer for them:
 * the caller writes every byte (pages are checksummed and written whole). */
int  bt_alloc(bt_wtx *w, uint32_t n, pgno_t *pg, uint8_t **buf);
/* Allocate n pages that the caller writes through the pager at once
 * (pager_write_run): a dirty-map entry without a buffer, so the commit writes
 * nothing for them and freeing them in the same transaction makes them
 * reusable at once (a value overwritten many times in one transaction does
 * not grow the file). */
int  bt_alloc_direct(bt_wtx *w, uint32_t n, pgno_t *pg);
/* Free n pages at pg: reused at once if allocated by this transaction,
 * otherwise recorded as freed by it. */
int  bt_free(bt_wtx *w, pgno_t pg, uint32_t n);
/* Write the free-page tree for this commit into *free_tree (whose root is the
 * base's) and finalize it. Call after every other tree is finalized. */
int  bt_wtx_commit_freelist(bt_wtx *w, bt_tree *free_tree);
/* Savepoints inside a write transaction. Saving freezes every dirty page (a
 * later write copies it again instead of changing it); restoring drops the
 * pages made since and puts the allocator back. */
typedef struct bt_wsave bt_wsave;
int  bt_wtx_save(bt_wtx *w, bt_wsave **out);
/* Back to s (which stays valid); savepoints made after s become invalid. */
int  bt_wtx_restore(bt_wtx *w, const bt_wsave *s);
void bt_wsave_free(bt_wsave *s);
uint32_t bt_wsave_epoch(const bt_wsave *s);
/* Free the copies superseded since savepoints were made (call at commit). */
int  bt_wtx_release_superseded(bt_wtx *w);
/* Non-durable commits: is_vol says whether a page was allocated by a commit
 * that is not durable yet (so the durable commit cannot reach it); freed such
 * pages are written in entries keyed with FT_VOL, which may be reused once no
 * snapshot older than vhorizon needs them, without waiting for durability. */
void bt_wtx_set_volatile(bt_wtx *w, int (*is_vol)(void *ctx, pgno_t pg), void *ctx, uint64_t vhorizon);
/* Compaction (btree/compact.c): take every reusable free entry now, allocate
 * lowest pages first, and copy every page of t at or above cutoff (and the
 * paths to them) below it. */
int  bt_wtx_take_all(bt_wtx *w);
void bt_wtx_low_first(bt_wtx *w);
int  bt_relocate(bt_ctx *cx, bt_tree *t, pgno_t cutoff);
/* Drop reusable pages at the end of the file from the pool, lowering the
 * page count; returns the new page count. */
uint64_t bt_wtx_shrink(bt_wtx *w);
/* Pages in the pool (reusable now). */
uint64_t bt_wtx_pool_pages(const bt_wtx *w);
/* Savepoint restore: take nothing from the base free tree ... */
void bt_wtx_no_reuse(bt_wtx *w);
/* ... and make the freed list every page below the page count that is neither
 * marked in used (a bitmap) nor dirty nor in the pool. */
int  bt_wtx_set_freed_except(bt_wtx *w, const uint8_t *used, uint64_t n);
/* Count pages listed in a free tree (for info); O(free tree). */
int  bt_free_pages(bt_ctx *cx, const bt_tree *free_tree, uint64_t *n);

/* Decode one free-tree entry (exposed for the checker): key 12 bytes
 * (u64 BE txn, u32 BE seq), value n * 12 bytes (u64 LE page, u32 LE count). */
enum { FT_KEY_LEN = 12, FT_EXT_LEN = 12, FT_MAX_EXTS = 48 };
/* Top bit of the key's txn id: every page of the entry is volatile. Such
 * entries sort after all plain ones, so each kind is one contiguous range. */
#define FT_VOL (1ull << 63)

/* ---- recovery (btree/verify.c) ---- */
/* Verify every page written after txn `since` reachable from st's trees:
 * checksums of every child of such a page, descending only into new ones.
 * Catalog descriptors in new catalog leaves lead into their tables' trees.
 * STRATA_OK or STRATA_ECORRUPT. */
int  bt_verify_since(pager *p, const pg_state *st, uint64_t since);

#endif
