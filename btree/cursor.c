/* btree/cursor.c - cursors over one tree: a stack of (page, index) from the root
 * to a leaf. A cursor reads pages through its bt_ctx, so in a write transaction
 * it sees dirty pages; any write to the tree invalidates it (db/ re-seeks).
 * Invariants: (1) depth == 0 means unpositioned; (2) when positioned, the top
 * of the stack is a leaf and its index is < n; (3) the stack never exceeds
 * BT_MAX_DEPTH (a deeper tree is reported corrupt). */
#include "strata.h"
#include "btree_int.h"

void bt_cursor_init(bt_cursor *c, bt_ctx *cx, const bt_tree *t) {
    c->cx = cx;
    c->t = t;
    c->depth = 0;
}

/* Push the child at index i of the top page, then descend to its leftmost
 * (dir = 0) or rightmost (dir = 1) leaf. */
static int descend(bt_cursor *c, pgno_t pg, ck128 ck, int dir) {
    for (;;) {
        if (c->depth >= BT_MAX_DEPTH) { c->depth = 0; return CORRUPT(c->cx->p, pg); }
        const uint8_t *page;
        int rc = bt_page(c->cx, pg, &ck, &page);
        if (rc) { c->depth = 0; return rc; }
        int idx = dir ? (int)pg_n(page) - 1 : 0;
        c->stk[c->depth].page = page;
        c->stk[c->depth].idx = idx;
        c->depth++;
        if (pg_type(page) == PT_LEAF) return STRATA_OK;
        const uint8_t *cell = pg_cell(page, (unsigned)idx);
        pg = bc_child(cell);
        ck = bc_ck(cell);
    }
}

int bt_cursor_first(bt_cursor *c) {
    c->depth = 0;
    if (!c->t->root) return STRATA_NOTFOUND;
    return descend(c, c->t->root, c->t->root_ck, 0);
}

int bt_cursor_last(bt_cursor *c) {
    c->depth = 0;
    if (!c->t->root) return STRATA_NOTFOUND;
    return descend(c, c->t->root, c->t->root_ck, 1);
}

/* Read-ahead: the cursor is on the last entry of its leaf in direction dir,
 * so ask for the first line of the sibling leaf under the same parent now,
 * hiding that miss behind the caller's work. Committed pages only (a dirty
 * page is found through the dirty map); a damaged child number is ignored
 * here and reported by bt_page() when the cursor gets there. */
static void prefetch_sibling(const bt_cursor *c, int dir) {
    if (c->depth < 2 || c->cx->w) return;
    const uint8_t *parent = c->stk[c->depth - 2].page;
    int pi = c->stk[c->depth - 2].idx + (dir ? -1 : 1);
    if (pi < 0 || pi >= (int)pg_n(parent)) return;
    pgno_t pg = bc_child(pg_cell(parent, (unsigned)pi));
    if (pg == 0 || pg >= c->cx->page_count) return;
    __builtin_prefetch(pager_ptr(c->cx->p, pg));
}

/* Move to the next (dir = 0) or previous (dir = 1) leaf entry. The inline
 * bt_cursor_next/prev handle steps that stay inside the leaf and do not land
 * on its last entry in that direction; everything else comes here. */
int bt_cursor_step(bt_cursor *c, int dir) {
    if (c->depth == 0) return STRATA_NOTFOUND;
    int d = c->depth - 1;
    int n = (int)pg_n(c->stk[d].page);
    int idx = c->stk[d].idx + (dir ? -1 : 1);
    if (idx >= 0 && idx < n) {
        c->stk[d].idx = idx;
        if (idx == (dir ? 0 : n - 1)) prefetch_sibling(c, dir);
        return STRATA_OK;
    }
    /* climb to the first ancestor with a sibling in that direction */
    for (d = c->depth - 2; d >= 0; d--) {
        int pn = (int)pg_n(c->stk[d].page);
        int pi = c->stk[d].idx + (dir ? -1 : 1);
        if (pi >= 0 && pi < pn) {
            c->stk[d].idx = pi;
            c->depth = d + 1;
            const uint8_t *cell = pg_cell(c->stk[d].page, (unsigned)pi);
            return descend(c, bc_child(cell), bc_ck(cell), dir);
        }
    }
    c->depth = 0;
    return STRATA_NOTFOUND;
}


int bt_cursor_seek(bt_cursor *c, const void *key, size_t klen, int *exact) {
    c->depth = 0;
    *exact = 0;
    if (!c->t->root) return STRATA_NOTFOUND;
    pgno_t pg = c->t->root;
    ck128 ck = c->t->root_ck;
    for (;;) {
        if (c->depth >= BT_MAX_DEPTH) { c->depth = 0; return CORRUPT(c->cx->p, pg); }
        const uint8_t *page;
        int rc = bt_page(c->cx, pg, &ck, &page);
        if (rc) { c->depth = 0; return rc; }
        c->stk[c->depth].page = page;
        c->depth++;
        if (pg_type(page) == PT_LEAF) {
            unsigned i = leaf_search(c->t, page, key, klen, exact);
            c->stk[c->depth - 1].idx = (int)i;
            if (i < pg_n(page)) return STRATA_OK;
            c->stk[c->depth - 1].idx = (int)i - 1;   /* past this leaf: step on */
            return bt_cursor_step(c, 0);
        }
        unsigned i = branch_search(c->t, page, key, klen);
        c->stk[c->depth - 1].idx = (int)i;
        const uint8_t *cell = pg_cell(page, i);
        pg = bc_child(cell);
        ck = bc_ck(cell);
    }
}

