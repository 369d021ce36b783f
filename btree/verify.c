/* btree/verify.c - recovery check of the newest commit after open: every page
 * written after the previous durable commit must match the checksum its parent
 * records. Only pages newer than `since` are descended into, and every child of
 * such a page is checksummed (an old page where a new one should be means the
 * write never landed), so the cost is O(pages of the last commit x fan-out).
 * Invariants: (1) read-only; (2) bounded depth; (3) marks verified pages, and
 * runs on a fresh bitmap (at open), so a page already marked was reached twice:
 * damage (every page has one parent), and without this check a crafted image
 * of shared subtrees would cost fan-out^depth. */
#include "strata.h"
#include "btree_int.h"
#include "catalog.h"

enum { KIND_TABLE = 0, KIND_CATALOG = 1 };

typedef struct vctx {
    pager   *p;
    uint64_t page_count, since;
} vctx;

static int walk(vctx *v, pgno_t pg, ck128 ck, int kind, int depth) {
    pager *p = v->p;
    if (depth >= BT_MAX_DEPTH || pg == 0 || pg >= v->page_count || pager_vbit_test(p, pg))
        return CORRUPT(p, pg);
    const uint8_t *page = pager_ptr(p, pg);
    if (!ck_eq(ck_compute(page, p->ps), ck) || node_validate(page, p->ps)) return CORRUPT(p, pg);
    pager_vbit_set(p, pg);
    if (pg_txnid(page) <= v->since) return STRATA_OK;
    unsigned n = pg_n(page);
    for (unsigned i = 0; i < n; i++) {
        const uint8_t *c = pg_cell(page, i);
        int rc = STRATA_OK;
        if (pg_type(page) == PT_BRANCH) {
            rc = walk(v, bc_child(c), bc_ck(c), kind, depth + 1);
        } else if (lc_flags(c) & LF_OVERFLOW) {
            const uint8_t *ptr;
            ck128 vck = ck_get(lc_val(c) + 8);
            size_t len = lc_vlen(c);
            pgno_t op = le64_get(lc_val(c));
            if (op == 0 || op >= v->page_count || pager_npages(p, len) > v->page_count - op)
                return CORRUPT(p, op);
            ptr = pager_ptr(p, op);
            if (!ck_eq(ck_compute(ptr, len), vck)) return CORRUPT(p, op);
            pager_vbit_set(p, op);
            if (kind == KIND_CATALOG) return CORRUPT(p, pg);   /* descriptors are small */
        } else if (kind == KIND_CATALOG) {
            cat_desc d;
            if (cat_desc_decode(lc_val(c), lc_vlen(c), &d)) return CORRUPT(p, pg);
            if (d.root) rc = walk(v, d.root, d.root_ck, KIND_TABLE, 0);
        }
        if (rc) return rc;
    }
    return STRATA_OK;
}

int bt_verify_since(pager *p, const pg_state *st, uint64_t since) {
    vctx v = { p, st->page_count, since };
    int rc = STRATA_OK;
    if (st->cat_root) rc = walk(&v, st->cat_root, st->cat_ck, KIND_CATALOG, 0);
    if (rc == STRATA_OK && st->free_root) rc = walk(&v, st->free_root, st->free_ck, KIND_TABLE, 0);
    return rc;
}
