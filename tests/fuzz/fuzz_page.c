/* tests/fuzz/fuzz_page.c - the input is one B-tree page image (padded or cut
 * to 4 KiB, the first two bytes choose the page size 4/8/16 KiB for longer
 * inputs). node_validate() must reject anything a reader could not index
 * safely: when it accepts, every accessor a cursor uses (slots, cells, keys,
 * inline values, branch children, binary searches) must stay inside the page,
 * which ASan checks because the page is an exact-size heap buffer. */
#include <string.h>

#include "strata.h"
#include "btree_int.h"
#include "fuzz_common.h"

static volatile uint64_t g_sink;

static void read_cells(const uint8_t *pg, uint32_t ps) {
    unsigned n = pg_n(pg);
    uint64_t acc = 0;
    for (unsigned i = 0; i < n; i++) {
        const uint8_t *c = pg_cell(pg, i);
        /* the cell's extent in 64-bit arithmetic, independent of page.h */
        uint64_t off = (uint64_t)(c - pg), end = off + (pg_type(pg) == PT_LEAF
            ? LC_HDR + (uint64_t)lc_klen(c) + ((lc_flags(c) & LF_OVERFLOW) ? OVREF_SIZE : (uint64_t)lc_vlen(c))
            : BC_HDR + (uint64_t)bc_klen(c));
        FUZZ_FAIL_IF(off < PG_HDR || end > ps, "node_validate accepted cell %u at %llu..%llu of a "
                     "%u-byte page", i, (unsigned long long)off, (unsigned long long)end, ps);
        if (pg_type(pg) == PT_LEAF) {
            const uint8_t *k = lc_key(c);
            for (size_t j = 0; j < lc_klen(c); j++) acc += k[j];
            if (!(lc_flags(c) & LF_OVERFLOW)) {
                const uint8_t *v = lc_val(c);
                for (size_t j = 0; j < lc_vlen(c); j++) acc += v[j];
            } else {
                acc += le64_get(lc_val(c)) + ck_get(lc_val(c) + 8).lo;
            }
        } else {
            acc += bc_child(c) + bc_ck(c).hi;
            const uint8_t *k = bc_key(c);
            for (size_t j = 0; j < bc_klen(c); j++) acc += k[j];
        }
    }
    acc += node_used(pg);
    g_sink = acc;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    uint32_t ps = 4096;
    if (size > 4096 + 2) ps = 4096u << (data[0] % 3);
    uint8_t *pg = calloc(1, ps);
    if (!pg) return 0;
    memcpy(pg, data, size < ps ? size : ps);
    if (node_validate(pg, ps) == 0) {
        read_cells(pg, ps);
        bt_tree t = { 1, { 0, 0 }, 0, bt_cmp_bytes, NULL };
        for (unsigned i = 0; i < pg_n(pg) && i < 8; i++) {   /* search for keys it holds */
            const uint8_t *c = pg_cell(pg, i);
            int exact;
            if (pg_type(pg) == PT_LEAF) g_sink += leaf_search(&t, pg, lc_key(c), lc_klen(c), &exact);
            else g_sink += branch_search(&t, pg, bc_key(c), bc_klen(c));
        }
        int exact;
        g_sink += pg_type(pg) == PT_LEAF ? leaf_search(&t, pg, "m", 1, &exact)
                                         : branch_search(&t, pg, "m", 1);
        /* a writer's edits of a valid page keep it indexable */
        node_remove(pg, ps, 0);
        if (node_validate(pg, ps) == 0) read_cells(pg, ps);
    }
    free(pg);
    return 0;
}
