/* btree/compact.c - relocation of a tree's pages below a cutoff, for
 * compaction. A page at or above the cutoff is copied (copy-on-write, so the
 * old one is freed as of this transaction) into a page the allocator hands out
 * lowest-first; its parent is updated, which copies the parent too. Overflow
 * runs above the cutoff move the same way.
 * Invariants: (1) contents never change, only page numbers; (2) the recursion
 * is bounded by BT_MAX_DEPTH, and each page is walked once (bt_seen: a page
 * or overflow-run page reached twice is STRATA_ECORRUPT). Callers: db/compact.c. */
#include <string.h>

#include "strata.h"
#include "btree_int.h"

static int reloc(bt_ctx *cx, bt_seen *seen, pgno_t *pg, ck128 *ck, pgno_t cutoff, int depth,
                 int *moved) {
    *moved = 0;
    if (depth >= BT_MAX_DEPTH || bt_seen_add(seen, *pg)) return CORRUPT(cx->p, *pg);
    const uint8_t *page;
    int rc = bt_page(cx, *pg, ck, &page);
    if (rc) return rc;
    pgno_t npg = *pg;
    uint8_t *buf = NULL;
    if (*pg >= cutoff) {
        if ((rc = bt_touch(cx, *pg, ck, &npg, &buf))) return rc;
        page = buf;
    }
    uint32_t ps = cx->p->ps;
    unsigned n = pg_n(page);
    for (unsigned i = 0; i < n; i++) {
        const uint8_t *cell = page + pg_slot(page, i);
        if (pg_type(page) == PT_BRANCH) {
            pgno_t child = bc_child(cell);
            ck128 cck = bc_ck(cell);
            int cm;
            if ((rc = reloc(cx, seen, &child, &cck, cutoff, depth + 1, &cm))) return rc;
            if (!cm) continue;
            if (!buf) {
                if ((rc = bt_touch(cx, *pg, ck, &npg, &buf))) return rc;
                page = buf;
            }
            le64_put(buf + pg_slot(buf, i) + BC_OFF_CHILD, child);
        } else if (lc_flags(cell) & LF_OVERFLOW) {
            pgno_t op = le64_get(lc_val(cell));
            uint32_t np = (uint32_t)pager_npages(cx->p, lc_vlen(cell));
            if (bt_seen_run(seen, op, np)) return CORRUPT(cx->p, *pg);   /* shared: moved, freed twice */
            if (op + np <= cutoff) continue;
            bt_val v;
            if ((rc = bt_cell_value(cx, cell, &v))) return rc;
            if (!buf) {
                if ((rc = bt_touch(cx, *pg, ck, &npg, &buf))) return rc;
                page = buf;
            }
            pgno_t nop;
            uint8_t *nb;
            if ((rc = bt_alloc(cx->w, np, &nop, &nb))) return rc;
            memcpy(nb, v.data, v.len);
            memset(nb + v.len, 0, ((size_t)np << cx->p->ps_shift) - v.len);
            if ((rc = bt_free(cx->w, op, np))) return rc;
            uint8_t *c = buf + pg_slot(buf, i);
            le64_put(c + LC_HDR + lc_klen(c), nop);
        }
        (void)ps;
    }
    *moved = npg != *pg;
    *pg = npg;
    return STRATA_OK;
}

int bt_relocate(bt_ctx *cx, bt_tree *t, pgno_t cutoff) {
    if (!t->root) return STRATA_OK;
    int moved;
    bt_seen seen;   /* a page reached twice: a crafted shared subtree, ECORRUPT */
    int rc = bt_seen_init(&seen, bt_wtx_page_count(cx->w));
    if (rc == STRATA_OK) rc = reloc(cx, &seen, &t->root, &t->root_ck, cutoff, 0, &moved);
    bt_seen_free(&seen);
    return rc;
}
