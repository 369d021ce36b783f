/* btree/node.c - editing one slotted page: insert/remove a cell, compact,
 * rebuild from a list of cells, and the structural check of untrusted pages.
 * Invariants: (1) slots stay in key order (callers pass the right index);
 * (2) cells live in [upper, ps); the slot array ends at PG_HDR + 2n <= upper;
 * (3) node_validate accepts only pages whose every offset and length stays
 * inside the page and whose cells are disjoint, so readers may then index it
 * without further checks and removal may shift cells;
 * (4) removing a cell closes its hole, so a page written here has its cells
 * packed in [upper, ps) (pages of older writers may have holes: insert
 * compacts them when it needs the room). */
#include <stdlib.h>
#include <string.h>

#include "strata.h"
#include "btree_int.h"

void node_init(uint8_t *pg, unsigned type, uint64_t txnid, uint32_t ps) {
    memset(pg, 0, PG_HDR);
    pg[PG_OFF_TYPE] = (uint8_t)type;
    le16_put(pg + PG_OFF_N, 0);
    le32_put(pg + PG_OFF_UPPER, ps);
    le64_put(pg + PG_OFF_TXNID, txnid);
}

size_t node_used_bound(const uint8_t *pg, uint32_t ps) {
    return (size_t)(ps - pg_upper(pg)) + 2u * pg_n(pg);
}

size_t node_used(const uint8_t *pg) {
    unsigned n = pg_n(pg);
    size_t used = 2u * n;
    for (unsigned i = 0; i < n; i++) used += cell_size(pg, pg_cell(pg, i));
    return used;
}

static void compact(uint8_t *pg, uint32_t ps) {
    unsigned n = pg_n(pg);
    uint8_t *tmp = malloc(ps);
    if (!tmp) return;                 /* compaction is an optimization; callers re-check room */
    memcpy(tmp, pg, ps);
    uint32_t upper = ps;
    for (unsigned i = 0; i < n; i++) {
        const uint8_t *c = tmp + pg_slot(tmp, i);
        size_t len = cell_size(tmp, c);
        upper -= (uint32_t)len;
        memcpy(pg + upper, c, len);
        le16_put(pg + PG_HDR + 2 * i, (uint16_t)upper);
    }
    memset(pg + PG_HDR + 2 * n, 0, upper - (PG_HDR + 2 * n));
    le32_put(pg + PG_OFF_UPPER, upper);
    free(tmp);
}

int node_insert(uint8_t *pg, uint32_t ps, unsigned idx, const uint8_t *cell, size_t len) {
    unsigned n = pg_n(pg);
    uint32_t upper = pg_upper(pg), lower = PG_HDR + 2 * n;
    if (upper - lower < len + 2) {
        if (ps - PG_HDR - node_used(pg) < len + 2) return 1;
        compact(pg, ps);
        upper = pg_upper(pg);
        if (upper - lower < len + 2) return 1;
    }
    upper -= (uint32_t)len;
    memcpy(pg + upper, cell, len);
    uint8_t *slots = pg + PG_HDR;
    memmove(slots + 2 * (idx + 1), slots + 2 * idx, 2 * (n - idx));
    le16_put(slots + 2 * idx, (uint16_t)upper);
    le16_put(pg + PG_OFF_N, (uint16_t)(n + 1));
    le32_put(pg + PG_OFF_UPPER, upper);
    return 0;
}

void node_remove(uint8_t *pg, uint32_t ps, unsigned idx) {
    unsigned n = pg_n(pg);
    uint32_t off = pg_slot(pg, idx);
    uint32_t len = (uint32_t)cell_size(pg, pg + off);
    uint32_t upper = pg_upper(pg);
    uint8_t *slots = pg + PG_HDR;
    memmove(slots + 2 * idx, slots + 2 * (idx + 1), 2 * (n - idx - 1));
    n--;
    if (off > upper) {           /* close the hole: shift the lower cells up by len */
        memmove(pg + upper + len, pg + upper, off - upper);
        for (unsigned i = 0; i < n; i++) {
            uint32_t o = le16_get(slots + 2 * i);
            if (o < off) le16_put(slots + 2 * i, (uint16_t)(o + len));
        }
    }
    memset(pg + upper, 0, len);  /* no deleted bytes stay in the page */
    upper += len;
    le16_put(slots + 2 * n, 0);
    le16_put(pg + PG_OFF_N, (uint16_t)n);
    le32_put(pg + PG_OFF_UPPER, upper);
    (void)ps;
}

void node_build(uint8_t *pg, unsigned type, uint64_t txnid, uint32_t ps,
                const cellref *cells, unsigned n) {
    memset(pg, 0, ps);
    node_init(pg, type, txnid, ps);
    uint32_t upper = ps;
    for (unsigned i = 0; i < n; i++) {
        upper -= cells[i].len;
        memcpy(pg + upper, cells[i].p, cells[i].len);
        le16_put(pg + PG_HDR + 2 * i, (uint16_t)upper);
    }
    le16_put(pg + PG_OFF_N, (uint16_t)n);
    le32_put(pg + PG_OFF_UPPER, upper);
}

/* Whether two cells of a page (each already known to lie inside it) share a
 * byte: one bit per page byte, 64 at a time. */
static int cells_overlap(const uint8_t *pg, uint32_t ps, unsigned n) {
    uint64_t used[65536 / 64];
    memset(used, 0, ps / 8);
    for (unsigned i = 0; i < n; i++) {
        size_t o = pg_slot(pg, i), e = o + cell_size(pg, pg + o);
        while (o < e) {
            size_t b = o & 63, take = 64 - b < e - o ? 64 - b : e - o;
            uint64_t m = (take == 64 ? ~0ull : ((1ull << take) - 1)) << b;
            if (used[o >> 6] & m) return 1;
            used[o >> 6] |= m;
            o += take;
        }
    }
    return 0;
}

int node_validate(const uint8_t *pg, uint32_t ps) {
    unsigned type = pg_type(pg), n = pg_n(pg);
    uint32_t upper = pg_upper(pg), lower = PG_HDR + 2 * n;
    size_t max_key = bt_max_key(ps);
    if ((type != PT_LEAF && type != PT_BRANCH) || n == 0) return 1;
    if (lower > ps || upper < lower || upper > ps) return 1;
    for (unsigned i = 0; i < n; i++) {
        uint32_t off = pg_slot(pg, i);
        if (off < upper || off >= ps) return 1;
        const uint8_t *c = pg + off;
        size_t room = ps - off;
        if (type == PT_LEAF) {
            if (room < LC_HDR || lc_klen(c) > max_key || (lc_flags(c) & ~LF_OVERFLOW)) return 1;
            if ((lc_flags(c) & LF_OVERFLOW) && lc_vlen(c) == 0) return 1;
        } else {
            if (room < BC_HDR || bc_klen(c) > max_key || (i == 0 && bc_klen(c) != 0)) return 1;
        }
        if (cell_size(pg, c) > room) return 1;
    }
    /* no two cells share a byte: removal shifts cells (node_remove), which
     * is only in bounds on a page whose cells are disjoint */
    return ps <= 65536 ? cells_overlap(pg, ps, n) : 1;
}
