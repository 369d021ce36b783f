/* btree/page.h - the byte layout of B-tree pages and cells (normative table:
 * docs/ARCHITECTURE.md "B-tree pages"), with bounds-checked accessors.
 *
 * Page: [header 16][u16 slot offsets, ascending key order][free][cells, packed
 * toward the page end]. Leaf cell: u16 klen, u32 vlen, u8 flags, key, then the
 * value inline, or (flags & LF_OVERFLOW) an overflow reference: u64 first page,
 * 16-byte xxh3-128 of the value; the value then fills ceil(vlen/ps) contiguous
 * pages with no header (zero-copy). Branch cell: u64 child, 16-byte xxh3-128 of
 * the child page, u16 klen, key. Branch cell 0's key is empty: child i holds
 * keys >= key[i] and < key[i+1].
 * Invariants: (1) every cell including its slot is at most a quarter of the
 * usable page, so any page holds at least four cells and a split always fits;
 * (2) slots are sorted by key under the tree's comparator; (3) n >= 1 on every
 * committed page; (4) the bytes of a committed page never change. */
#ifndef STRATA_BTREE_PAGE_H
#define STRATA_BTREE_PAGE_H

#include <stddef.h>
#include <stdint.h>

#include "bytes.h"

enum { PG_OFF_TYPE = 0, PG_OFF_FLAGS = 1, PG_OFF_N = 2, PG_OFF_UPPER = 4, PG_OFF_TXNID = 8,
       PG_HDR = 16 };
enum { PT_BRANCH = 1, PT_LEAF = 2 };
enum { LC_OFF_KLEN = 0, LC_OFF_VLEN = 2, LC_OFF_FLAGS = 6, LC_HDR = 7 };
enum { LF_OVERFLOW = 0x1 };
enum { OVREF_SIZE = 8 + CK128_SIZE };
enum { BC_OFF_CHILD = 0, BC_OFF_CK = 8, BC_OFF_KLEN = 24, BC_HDR = 26 };
enum { BT_MAX_DEPTH = 32 };
_Static_assert(PG_HDR % 8 == 0, "slot array starts 8-byte aligned");

static inline unsigned pg_type(const uint8_t *pg) { return pg[PG_OFF_TYPE]; }
static inline unsigned pg_n(const uint8_t *pg) { return le16_get(pg + PG_OFF_N); }
static inline uint32_t pg_upper(const uint8_t *pg) { return le32_get(pg + PG_OFF_UPPER); }
static inline uint64_t pg_txnid(const uint8_t *pg) { return le64_get(pg + PG_OFF_TXNID); }
static inline uint32_t pg_slot(const uint8_t *pg, unsigned i) { return le16_get(pg + PG_HDR + 2 * i); }
static inline const uint8_t *pg_cell(const uint8_t *pg, unsigned i) { return pg + pg_slot(pg, i); }

/* Leaf cell fields */
static inline uint16_t lc_klen(const uint8_t *c) { return le16_get(c + LC_OFF_KLEN); }
static inline uint32_t lc_vlen(const uint8_t *c) { return le32_get(c + LC_OFF_VLEN); }
static inline unsigned lc_flags(const uint8_t *c) { return c[LC_OFF_FLAGS]; }
static inline const uint8_t *lc_key(const uint8_t *c) { return c + LC_HDR; }
static inline const uint8_t *lc_val(const uint8_t *c) { return c + LC_HDR + lc_klen(c); }
static inline size_t lc_size(const uint8_t *c) {      /* size_t: a damaged vlen must not wrap */
    return (size_t)LC_HDR + lc_klen(c) + ((lc_flags(c) & LF_OVERFLOW) ? (size_t)OVREF_SIZE : (size_t)lc_vlen(c));
}
/* Branch cell fields */
static inline pgno_t bc_child(const uint8_t *c) { return le64_get(c + BC_OFF_CHILD); }
static inline ck128 bc_ck(const uint8_t *c) { return ck_get(c + BC_OFF_CK); }
static inline uint16_t bc_klen(const uint8_t *c) { return le16_get(c + BC_OFF_KLEN); }
static inline const uint8_t *bc_key(const uint8_t *c) { return c + BC_HDR; }
static inline size_t bc_size(const uint8_t *c) { return (size_t)BC_HDR + bc_klen(c); }

static inline size_t cell_size(const uint8_t *pg, const uint8_t *c) {
    return pg_type(pg) == PT_LEAF ? lc_size(c) : bc_size(c);
}

/* Size limits derived from the page size (docs/ARCHITECTURE.md "Limits"). */
static inline size_t bt_cell_max(uint32_t ps) { return (ps - PG_HDR) / 4; }  /* incl. slot */
static inline size_t bt_max_key(uint32_t ps) { return bt_cell_max(ps) - 2 - LC_HDR - OVREF_SIZE; }
static inline int bt_inline_fits(uint32_t ps, size_t klen, size_t vlen) {
    return 2 + LC_HDR + klen + vlen <= bt_cell_max(ps);
}

#endif
