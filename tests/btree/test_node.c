/* tests/btree/test_node.c - page editing against damaged input: node_validate
 * rejects a page whose cells overlap (removal shifts cells, which stays in
 * bounds only on disjoint cells), accepts one with holes, and removal on a page
 * with holes keeps every remaining cell inside the page with its bytes; an
 * overflow reference from a damaged leaf to a page past the file, inside a
 * write transaction, is STRATA_ECORRUPT (not a read past the end of the file). */
#include <criterion/criterion.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "strata.h"
#include "btree_int.h"
#include "io.h"

enum { PS = 4096 };

static void put_cell(uint8_t *pg, uint32_t off, uint8_t key, uint32_t vlen, uint8_t fill) {
    le16_put(pg + off + LC_OFF_KLEN, 1);
    le32_put(pg + off + LC_OFF_VLEN, vlen);
    pg[off + LC_OFF_FLAGS] = 0;
    pg[off + LC_HDR] = key;
    memset(pg + off + LC_HDR + 1, fill, vlen);
}

/* A leaf with cells at the given offsets (slot order = argument order). */
static uint8_t *leaf(const uint32_t *offs, const uint32_t *vlens, unsigned n) {
    uint8_t *pg = calloc(1, PS);
    cr_assert_not_null(pg);
    node_init(pg, PT_LEAF, 1, PS);
    uint32_t upper = PS;
    for (unsigned i = 0; i < n; i++) {
        put_cell(pg, offs[i], (uint8_t)('a' + i), vlens[i], (uint8_t)(0x10 + i));
        le16_put(pg + PG_HDR + 2 * i, (uint16_t)offs[i]);
        if (offs[i] < upper) upper = offs[i];
    }
    le16_put(pg + PG_OFF_N, (uint16_t)n);
    le32_put(pg + PG_OFF_UPPER, upper);
    return pg;
}

Test(node, overlapping_cells_are_rejected) {
    /* cell a fills [3000, 4096); cell b (100 bytes) sits inside a's value */
    uint32_t offs[] = { 3000, PS - 100 }, vlens[] = { PS - 3000 - LC_HDR - 1, 100 - LC_HDR - 1 };
    uint8_t *pg = leaf(offs, vlens, 2);
    cr_assert_neq(node_validate(pg, PS), 0, "a page with overlapping cells validated");
    /* two slots naming the same cell overlap too */
    uint32_t same[] = { 3000, 3000 }, v2[] = { 100, 100 };
    free(pg);
    pg = leaf(same, v2, 2);
    cr_assert_neq(node_validate(pg, PS), 0, "a page with a duplicated slot validated");
    free(pg);
}

Test(node, holes_are_valid_and_removal_keeps_cells_in_bounds) {
    /* three cells with holes between them, slots out of address order */
    uint32_t offs[] = { 3900, 2000, 3000 }, vlens[] = { 150, 300, 500 };
    uint8_t *pg = leaf(offs, vlens, 3);
    cr_assert_eq(node_validate(pg, PS), 0, "a page with holes was rejected");
    for (unsigned k = 3; k-- > 0;) {
        unsigned removed = k == 2 ? 1 : 0;   /* remove the middle, then the first, then the last */
        node_remove(pg, PS, removed);
        unsigned n = pg_n(pg);
        cr_assert_eq(n, k);
        if (n) cr_assert_eq(node_validate(pg, PS), 0, "invalid after a removal");
        for (unsigned i = 0; i < n; i++) {
            const uint8_t *c = pg_cell(pg, i);
            cr_assert_leq(pg_slot(pg, i) + cell_size(pg, c), PS, "cell past the page end");
            cr_assert_geq(pg_slot(pg, i), pg_upper(pg));
            /* the bytes moved with the cell */
            uint8_t key = lc_key(c)[0], fill = (uint8_t)(0x10 + (key - 'a'));
            for (uint32_t j = 0; j < lc_vlen(c); j++)
                cr_assert_eq(lc_val(c)[j], fill, "cell %c: value byte %u damaged by the shift",
                             key, (unsigned)j);
        }
    }
    free(pg);
}

Test(node, foreign_overflow_reference_past_the_file_is_corrupt) {
    char path[64];
    snprintf(path, sizeof path, "/tmp/strata-node-%d.db", (int)getpid());
    unlink(path);
    io_backend *io;
    pager *p;
    pager_opts o = { 0 };
    o.create = 1;
    cr_assert_eq(io_file_open(path, IO_OPEN_CREATE, &io), STRATA_OK);
    cr_assert_eq(pager_open(io, &o, &p), STRATA_OK);
    bt_wtx *w;
    cr_assert_eq(bt_wtx_begin(p, &p->durable, p->durable.txnid + 1, p->durable.txnid, &w), STRATA_OK);
    for (int i = 0; i < 64; i++) {                 /* pages past the end of the file */
        pgno_t pg;
        uint8_t *b;
        cr_assert_eq(bt_alloc(w, 1, &pg, &b), STRATA_OK);
        memset(b, 0, p->ps);
    }
    for (pgno_t pg = 40; pg < 45; pg++) cr_assert_eq(bt_free(w, pg, 1), STRATA_OK);
    cr_assert_lt(p->file_len / p->ps, 40, "the test needs page 40 past the file");
    /* a leaf cell, as a damaged committed leaf might hold, naming page 40 */
    uint8_t cell[64] = { 0 };
    le16_put(cell + LC_OFF_KLEN, 1);
    le32_put(cell + LC_OFF_VLEN, 20000);
    cell[LC_OFF_FLAGS] = LF_OVERFLOW;
    cell[LC_HDR] = 'k';
    le64_put(cell + LC_HDR + 1, 40);
    bt_ctx cx = { p, p->durable.page_count, w };
    bt_val v;
    cr_assert_eq(bt_cell_value(&cx, cell, &v), STRATA_ECORRUPT);
    bt_ctx rcx = { p, p->durable.page_count, NULL };
    cr_assert_eq(bt_cell_value(&rcx, cell, &v), STRATA_ECORRUPT);
    bt_wtx_free(w);
    pager_close(p);
    unlink(path);
}
