/* pager/header.c - encoding of the file header and commit slots, and opening:
 * reading the header, picking the newest valid slot, mapping the file.
 * Invariants: (1) a slot is valid only if its checksum matches, both txnid
 * copies agree, its version and page size match the header's and its page
 * count fits the file; (2) the chosen slot is the god byte's primary when
 * valid and newer than the other, else the other (recorded in p->recovered). */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>

#include "strata.h"
#include "pager.h"

void pager_slot_encode(uint8_t *s, const pg_state *st, uint32_t ps) {
    memset(s, 0, SLOT_SIZE);
    le64_put(s + SLOT_OFF_TXNID, st->txnid);
    le64_put(s + SLOT_OFF_CAT_ROOT, st->cat_root);
    ck_put(s + SLOT_OFF_CAT_CK, st->cat_ck);
    le64_put(s + SLOT_OFF_FREE_ROOT, st->free_root);
    ck_put(s + SLOT_OFF_FREE_CK, st->free_ck);
    le64_put(s + SLOT_OFF_PAGES, st->page_count);
    le64_put(s + SLOT_OFF_HLC, st->hlc);
    le32_put(s + SLOT_OFF_VERSION, STRATA_FORMAT_VERSION);
    le32_put(s + SLOT_OFF_PAGE_SIZE, ps);
    le64_put(s + SLOT_OFF_TXNID2, st->txnid);
    le64_put(s + SLOT_OFF_CK, ck64_compute(s, SLOT_OFF_CK));
}

int pager_slot_decode(const uint8_t *s, uint32_t ps, pg_state *st) {
    if (le64_get(s + SLOT_OFF_CK) != ck64_compute(s, SLOT_OFF_CK)) return -1;
    if (le64_get(s + SLOT_OFF_TXNID) != le64_get(s + SLOT_OFF_TXNID2)) return -1;
    if (le32_get(s + SLOT_OFF_VERSION) != STRATA_FORMAT_VERSION) return -1;
    if (le32_get(s + SLOT_OFF_PAGE_SIZE) != ps) return -1;
    for (int i = SLOT_OFF_RESERVED; i < SLOT_OFF_TXNID2; i++)
        if (s[i]) return -1;
    st->txnid = le64_get(s + SLOT_OFF_TXNID);
    st->cat_root = le64_get(s + SLOT_OFF_CAT_ROOT);
    st->cat_ck = ck_get(s + SLOT_OFF_CAT_CK);
    st->free_root = le64_get(s + SLOT_OFF_FREE_ROOT);
    st->free_ck = ck_get(s + SLOT_OFF_FREE_CK);
    st->page_count = le64_get(s + SLOT_OFF_PAGES);
    st->hlc = le64_get(s + SLOT_OFF_HLC);
    if (st->page_count < 1 || st->txnid == 0) return -1;
    if (st->cat_root >= st->page_count || st->free_root >= st->page_count) return -1;
    return 0;
}

int pager_corrupt_at(const pager *p, pgno_t pg, const char *file, int line) {
    if (p && p->log_fn) {
        char msg[256];
        snprintf(msg, sizeof msg, "corruption detected at page %llu (%s:%d)",
                 (unsigned long long)pg, file, line);
        p->log_fn(p->log_ctx, msg);
    }
    return STRATA_ECORRUPT;
}

static int init_file(pager *p, uint32_t ps) {
    uint8_t *page = calloc(1, ps);
    if (!page) return STRATA_ENOMEM;
    memcpy(page + HDR_OFF_MAGIC, STRATA_MAGIC, 8);
    le32_put(page + HDR_OFF_VERSION, STRATA_FORMAT_VERSION);
    le32_put(page + HDR_OFF_PAGE_SIZE, ps);
    page[HDR_OFF_GOD] = 0;
    pg_state st = { .txnid = 1, .page_count = 1 };
    pager_slot_encode(page + HDR_OFF_SLOT0, &st, ps);
    int rc = io_write(p->io, page, ps, 0);
    if (rc == STRATA_OK) rc = p->io->ops->sync(p->io);
    free(page);
    if (rc == STRATA_OK) p->file_len = ps;
    return rc;
}

static int valid_page_size(uint32_t ps) {
    return ps >= 4096 && ps <= 65536 && (ps & (ps - 1)) == 0;
}

/* Read the header sector, check magic/version/page size, choose the slot. */
static int load_header(pager *p) {
    if (p->file_len < HDR_WRITE_LEN) return CORRUPT(p, 0);
    int rc = p->io->ops->pread(p->io, p->hdr, HDR_WRITE_LEN, 0);
    if (rc) return rc;
    if (memcmp(p->hdr + HDR_OFF_MAGIC, STRATA_MAGIC, 8) != 0) return CORRUPT(p, 0);
    if (le32_get(p->hdr + HDR_OFF_VERSION) != STRATA_FORMAT_VERSION) return STRATA_EVERSION;
    uint32_t ps = le32_get(p->hdr + HDR_OFF_PAGE_SIZE);
    if (!valid_page_size(ps) || p->file_len < ps) return CORRUPT(p, 0);
    p->ps = ps;
    p->arena.ps = ps;
    p->ps_shift = (unsigned)__builtin_ctz(ps);
    pg_state s[2];
    int ok[2];
    for (int i = 0; i < 2; i++) {
        ok[i] = pager_slot_decode(p->hdr + (i ? HDR_OFF_SLOT1 : HDR_OFF_SLOT0), ps, &s[i]) == 0 &&
                s[i].page_count <= p->file_len / ps;
    }
    int prim = p->hdr[HDR_OFF_GOD] & GOD_PRIMARY, oth = 1 - prim;
    if (ok[prim] && (!ok[oth] || s[prim].txnid > s[oth].txnid)) {
        p->primary = prim;
    } else if (ok[prim]) {
        /* both valid, the other newer: either the god byte's flip landed on a
         * stale slot, or a new slot landed without its god byte (a torn
         * sector). Use the newer one only if its pages verify. */
        p->primary = oth;
        p->need_verify = 1;
        p->recovered = 1;
    } else if (ok[oth]) {
        p->primary = oth;
        p->recovered = 1;
    } else {
        return CORRUPT(p, 0);
    }
    p->durable = s[p->primary];
    p->have_other = ok[1 - p->primary] && s[1 - p->primary].txnid < p->durable.txnid;
    if (p->have_other) p->other = s[1 - p->primary];
    return STRATA_OK;
}

int pager_fallback(pager *p) {
    if (!p->have_other) return CORRUPT(p, 0);
    p->primary = 1 - p->primary;
    p->durable = p->other;
    p->have_other = 0;
    p->recovered = 1;
    return STRATA_OK;
}

int pager_open(io_backend *io, const pager_opts *o, pager **out) {
    int rc = STRATA_ENOMEM;
    pager *p = calloc(1, sizeof *p);
    if (!p) { io_close(io); return rc; }
    p->io = io;
    p->rdonly = o->rdonly;
    p->verify = o->verify;
    p->two_phase = o->two_phase;
    if ((rc = io->ops->get_len(io, &p->file_len))) goto out;
    if (p->file_len == 0) {
        uint32_t ps = o->page_size ? o->page_size : 4096;
        rc = STRATA_EINVAL;
        if (!valid_page_size(ps)) goto out;
        rc = STRATA_ECORRUPT;
        if (p->rdonly || !o->create) goto out;
        if ((rc = init_file(p, ps))) goto out;
    }
    if ((rc = load_header(p))) goto out;
    uint64_t want = o->map_size ? o->map_size : (sizeof(size_t) >= 8 ? (1ull << 40) : (1ull << 30));
    if (want < p->file_len * 2) want = p->file_len * 2;
    want = (want + p->ps - 1) & ~(uint64_t)(p->ps - 1);
    p->map_size = (size_t)want;
    /* The default reservation shrinks when the address space is tight (32-bit,
     * sanitizers, ulimit -v); an explicit map size is honoured or fails. */
    while ((rc = io->ops->map(io, p->map_size, &p->map)) == STRATA_ENOMEM && !o->map_size &&
           p->map_size / 4 >= p->file_len * 2 && p->map_size / 4 >= (64u << 20))
        p->map_size /= 4;
    if (rc) goto out;
    p->vbits_len = (p->map_size >> p->ps_shift) / 8 + 1;
    void *vb = mmap(NULL, p->vbits_len, PROT_READ | PROT_WRITE,
                    MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE, -1, 0);
    rc = STRATA_ENOMEM;
    if (vb == MAP_FAILED) goto out;
    p->vbits = vb;
    *out = p;
    p = NULL;
    rc = STRATA_OK;
out:
    pager_close(p);
    return rc;
}

void pager_close(pager *p) {
    if (!p) return;
    if (p->vbits) munmap((void *)p->vbits, p->vbits_len);
    if (p->map) p->io->ops->unmap(p->io, p->map, p->map_size);
    arena_destroy(&p->arena);
    io_close(p->io);
    free(p);
}

void pager_populate(const pager *p, pgno_t pg, size_t npages) {
#ifdef MADV_POPULATE_READ
    if (npages >= POPULATE_MIN)
        (void)madvise((void *)pager_ptr(p, pg), npages << p->ps_shift, MADV_POPULATE_READ);
#else
    (void)p; (void)pg; (void)npages;
#endif
}

int pager_read(pager *p, uint64_t page_count, pgno_t pg, size_t npages, size_t len,
               const ck128 *expect, const uint8_t **out) {
    if (pg == 0 || pg >= page_count || npages > page_count - pg) return CORRUPT(p, pg);
    const uint8_t *ptr = pager_ptr(p, pg);
    if (expect && p->verify != STRATA_VERIFY_OFF) {
        _Atomic(uint8_t) *b = &p->vbits[pg >> 3];
        uint8_t bit = (uint8_t)(1u << (pg & 7));
        if (p->verify == STRATA_VERIFY_FULL ||
            !(atomic_load_explicit(b, memory_order_acquire) & bit)) {
            pager_populate(p, pg, npages);
            if (!ck_eq(ck_compute(ptr, len), *expect)) return CORRUPT(p, pg);
            atomic_fetch_or_explicit(b, bit, memory_order_release);
        }
    }
    *out = ptr;
    return STRATA_OK;
}
