/* pager/pager.h - the pager as seen by the layers above: the file and its map,
 * the header and its two commit slots, verified page access, the dirty-page map
 * of a write transaction and the commit writer.
 * Layout constants here are normative in docs/ARCHITECTURE.md ("File header",
 * "Commit slot"); change both together.
 * Invariants:
 *  (1) a page reachable from the durable commit is never written (copy-on-write;
 *      the allocator above enforces it, pager_write_dirty trusts it);
 *  (2) the map never moves while the pager is open; pages below the page count
 *      of a snapshot stay mapped and unchanged while that snapshot is live;
 *  (3) once pager->panic is set every write path fails with STRATA_EPANIC. */
#ifndef STRATA_PAGER_H
#define STRATA_PAGER_H

#include <stdatomic.h>
#include <stddef.h>
#include <stdint.h>

#include "bytes.h"
#include "io.h"

/* ---- File header (page 0): docs/ARCHITECTURE.md "File header" ---- */
enum {
    HDR_OFF_MAGIC = 0,       /* 8 bytes: 89 53 54 52 0D 0A 1A 0A ("\x89STR\r\n\x1a\n") */
    HDR_OFF_VERSION = 8,     /* u32 format version                                  */
    HDR_OFF_PAGE_SIZE = 12,  /* u32                                                 */
    HDR_OFF_GOD = 16,        /* u8: bit0 primary slot, bit1 primary written with 2PC,
                                bit2 not closed cleanly (recovery check at open)     */
    HDR_OFF_SLOT0 = 64,
    HDR_OFF_SLOT1 = 192,
    HDR_WRITE_LEN = 512,     /* bytes of page 0 that are ever written (one sector)   */
    SLOT_SIZE = 128,
};
#define STRATA_MAGIC "\x89STR\r\n\x1a\n"
#define STRATA_FORMAT_VERSION 1u
enum { GOD_PRIMARY = 0x1, GOD_TWO_PHASE = 0x2,
       GOD_DIRTY = 0x4 };   /* set by every commit while open; cleared at clean close */

/* ---- Commit slot: docs/ARCHITECTURE.md "Commit slot" ---- */
enum {
    SLOT_OFF_TXNID = 0,      /* u64                                  */
    SLOT_OFF_CAT_ROOT = 8,   /* u64 catalog tree root (0 = empty)     */
    SLOT_OFF_CAT_CK = 16,    /* 16 bytes xxh3-128 of the root page    */
    SLOT_OFF_FREE_ROOT = 32, /* u64 free-page tree root               */
    SLOT_OFF_FREE_CK = 40,   /* 16 bytes                              */
    SLOT_OFF_PAGES = 56,     /* u64 page count (high-water mark)      */
    SLOT_OFF_HLC = 64,       /* u64 hybrid logical clock of the commit*/
    SLOT_OFF_VERSION = 72,   /* u32 format version                    */
    SLOT_OFF_PAGE_SIZE = 76, /* u32                                   */
    SLOT_OFF_RESERVED = 80,  /* 32 bytes, zero                        */
    SLOT_OFF_TXNID2 = 112,   /* u64, equal to SLOT_OFF_TXNID          */
    SLOT_OFF_CK = 120,       /* u64 xxh3-64 of slot bytes [0, 120)    */
};
_Static_assert(SLOT_OFF_CK + 8 == SLOT_SIZE, "slot ends with its checksum");
_Static_assert(HDR_OFF_SLOT1 + SLOT_SIZE <= HDR_WRITE_LEN, "slots fit the written sector");

/* The roots and counters of one commit (a snapshot). */
typedef struct pg_state {
    uint64_t txnid;
    pgno_t   cat_root;
    ck128    cat_ck;
    pgno_t   free_root;
    ck128    free_ck;
    uint64_t page_count;
    uint64_t hlc;
} pg_state;

typedef struct pager_opts {
    uint32_t page_size;      /* for a new file */
    uint64_t map_size;
    int      verify;         /* STRATA_VERIFY_* */
    int      two_phase;
    int      rdonly;
    int      create;         /* initialize a zero-length file */
} pager_opts;

/* Buffers of dirty pages (pager/dirty.c): single pages are carved from big
 * pre-faulted chunks that the next write transaction reuses, so a transaction
 * that dirties many pages takes neither a malloc nor a page fault per page;
 * runs of several pages use malloc. Writer thread only. Under AddressSanitizer
 * every buffer is a plain malloc, so its checks still see each page. */
typedef struct page_arena {
    uint8_t **chunks;            /* ARENA_CHUNK bytes each                      */
    size_t    n_chunks, cap_chunks;
    size_t    cur, off;          /* carving position: chunk cur, byte off       */
    void     *free1;             /* freed single pages, linked through byte 0   */
    uint32_t  ps;
} page_arena;

typedef struct pager {
    io_backend    *io;
    const uint8_t *map;          /* read-only view of the whole reserved range  */
    size_t         map_size;
    uint32_t       ps;           /* page size                                   */
    unsigned       ps_shift;
    uint64_t       file_len;     /* bytes; grows only (writer thread)           */
    int            rdonly, verify, two_phase;
    uint8_t        hdr[HDR_WRITE_LEN]; /* image of the header sector on disk    */
    int            primary;      /* slot index holding `durable`                */
    pg_state       durable;      /* the state in the primary slot               */
    int            have_other;   /* the other slot holds a valid older commit   */
    pg_state       other;
    int            recovered;    /* open used the older slot                     */
    int            need_verify;  /* the chosen slot is not the god byte's: verify it */
    int            panic;        /* a header write or sync failed               */
    uint64_t       wb_lo, wb_hi; /* byte range of write-through runs not yet
                                    handed to start_writeback (wb_hi 0: none)  */
    page_arena     arena;        /* dirty-page buffers (writer thread)          */
    _Atomic(uint8_t) *vbits;     /* one bit per page: verified since open       */
    size_t         vbits_len;
    void         (*log_fn)(void *ctx, const char *msg);
    void          *log_ctx;
} pager;

/* Open the pager on io (ownership of io moves in, even on failure). A zero-length
 * file is initialized (unless read-only). Picks the newest valid commit slot. */
int  pager_open(io_backend *io, const pager_opts *o, pager **out);
void pager_close(pager *p);      /* NULL-safe; does not write */
/* The primary slot failed verification by the layer above: use the other one.
 * Returns STRATA_ECORRUPT when there is no valid older commit. */
int  pager_fallback(pager *p);

/* Report corruption: logs where, returns STRATA_ECORRUPT. The breakpoint spot. */
int  pager_corrupt_at(const pager *p, pgno_t pg, const char *file, int line);
#define CORRUPT(p, pg) pager_corrupt_at((p), (pg), __FILE__, __LINE__)

/* Pointer to npages pages at pg within a snapshot of page_count pages, with the
 * checksum check that the pager's verify mode asks for (len bytes from pg are
 * summed; expect may be NULL to skip the check). */
int  pager_read(pager *p, uint64_t page_count, pgno_t pg, size_t npages, size_t len,
                const ck128 *expect, const uint8_t **out);
/* Enter npages at pg into the page tables in one call (MADV_POPULATE_READ)
 * before a large run is read: the map is MADV_RANDOM (no fault-around), so
 * otherwise every page or small folio costs a fault. A hint, for runs of at
 * least POPULATE_MIN pages; a no-op where unsupported. */
enum { POPULATE_MIN = 4 };
void pager_populate(const pager *p, pgno_t pg, size_t npages);
static inline const uint8_t *pager_ptr(const pager *p, pgno_t pg) {
    return p->map + ((size_t)pg << p->ps_shift);
}
/* Verified-page bits: set once a page's checksum (and, above, its structure) has
 * been checked since open, or when this process wrote it. */
static inline int pager_vbit_test(const pager *p, pgno_t pg) {
    return atomic_load_explicit(&p->vbits[pg >> 3], memory_order_acquire) & (1u << (pg & 7));
}
static inline void pager_vbit_set(pager *p, pgno_t pg) {
    atomic_fetch_or_explicit(&p->vbits[pg >> 3], (uint8_t)(1u << (pg & 7)), memory_order_release);
}
static inline size_t pager_npages(const pager *p, size_t len) {
    return (len + p->ps - 1) >> p->ps_shift;
}

/* ---- Dirty pages of a write transaction (pager/dirty.c) ---- */
typedef struct dpage {
    pgno_t   pg;         /* 0 marks an empty slot */
    uint32_t npages;
    uint32_t epoch;      /* savepoint epoch that created it (btree/wtx.c) */
    uint8_t *buf;        /* npages * ps bytes (page_arena), or NULL: a run
                            already written through (pager_write_run) */
} dpage;

typedef struct dirty_map {
    page_arena *arena;   /* where buffers come from and go back to */
    dpage   *slots;
    size_t   cap;        /* power of two */
    size_t   n;
    uint8_t *bits;       /* one bit per page number: set iff the page is a key;
                            answers most lookups of clean pages without probing */
    uint64_t nbits;
} dirty_map;

dpage *dirty_get(const dirty_map *m, pgno_t pg);
/* As dirty_get, but only an entry with a buffer: entries with buf == NULL are
 * runs written through at put time (pager_write_run), read through the map. */
static inline dpage *dirty_get_buf(const dirty_map *m, pgno_t pg) {
    dpage *d = dirty_get(m, pg);
    return d && d->buf ? d : NULL;
}
int    dirty_put(dirty_map *m, pgno_t pg, uint32_t npages, uint8_t *buf);
/* Remove pg; returns its buffer (the caller frees it) or NULL. */
uint8_t *dirty_take(dirty_map *m, pgno_t pg);
/* Remove entry d (from dirty_get) and give its buffer back to m->arena. */
void   dirty_drop(dirty_map *m, dpage *d);
void   dirty_clear(dirty_map *m);   /* frees every buffer; resets the arena */

/* A buffer of npages pages (contents undefined), or NULL. */
uint8_t *arena_alloc(page_arena *a, uint32_t npages);
void     arena_free(page_arena *a, uint8_t *buf, uint32_t npages);   /* NULL-safe */
/* Every single-page buffer is dead: start carving from the first chunk again,
 * keeping at most ARENA_KEEP bytes of chunks. */
void     arena_reset(page_arena *a);
void     arena_destroy(page_arena *a);

/* ---- Commit writer (pager/commit.c) ---- */
/* Write every dirty page (growing the file as needed). Failure here leaves the
 * durable state untouched: the commit fails cleanly. */
int  pager_write_dirty(pager *p, const dirty_map *m, uint64_t page_count);
/* Write-through of one large value during a write transaction: the n pages at
 * pg (free in every live snapshot and in the durable commit, as for dirty
 * pages) get data[0, len) and zeros up to the page end, now, straight from the
 * caller's buffer; the file first grows to page_count pages. The commit's
 * fdatasync makes them durable with the rest; a crash or abort before it
 * leaves only garbage in free pages. The pages count as verified. */
int  pager_write_run(pager *p, pgno_t pg, size_t n, const void *data, size_t len,
                     uint64_t page_count);
/* Make st the durable commit: (2PC: sync,) write the non-primary slot and flip
 * the god byte, sync. A failure sets panic. */
int  pager_write_header(pager *p, const pg_state *st);
/* After a durable commit whose page count is lower: truncate the file to it. */
int  pager_shrink(pager *p, uint64_t page_count);
/* Clean close: trim the file to page_count pages and clear the dirty bit. */
int  pager_close_clean(pager *p, uint64_t page_count);
/* Whether the file was not closed cleanly (the recovery check is needed). */
static inline int pager_unclean(const pager *p) {
    return (p->hdr[HDR_OFF_GOD] & GOD_DIRTY) != 0 || p->need_verify;
}

/* Slot encoding (pager/header.c), exposed for golden tests and dbtool. */
void pager_slot_encode(uint8_t *slot, const pg_state *st, uint32_t ps);
int  pager_slot_decode(const uint8_t *slot, uint32_t ps, pg_state *st); /* 0 if valid */

#endif
