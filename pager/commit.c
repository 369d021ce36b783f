/* pager/commit.c - writing a commit: dirty pages in page order with pwritev,
 * then (for a durable commit) the non-primary slot and the god byte, then
 * fdatasync (one per commit; two with the two-phase option).
 * Invariants: (1) nothing reachable from the durable slot is written here (the
 * allocator guarantees the dirty pages are free in it); (2) a failure before the
 * header write leaves the durable commit intact and the pager usable; a failure
 * of the header write or of a sync sets p->panic; (3) the file only grows
 * here, in steps, and shrinks only in pager_trim. */
#include <limits.h>
#include <stdlib.h>
#include <string.h>

#include "strata.h"
#include "pager.h"

enum { MAX_IOV = 1024 };
/* Written-through bytes per writeback hint. 256 KiB: a 1 MiB value's device
 * write then runs under the rest of its put, and its commit's fdatasync fell
 * from ~0.9 to ~0.45 ms (bench_blob, 1 MiB); 4 MiB left it all to the sync;
 * at 64 MiB 256 KiB..4 MiB measured the same; per 16-64 KiB chunk (a hint per
 * write) was 2x slower. */
#define WB_BATCH (256u << 10)

static int cmp_dpage(const void *a, const void *b) {
    pgno_t x = (*(const dpage *const *)a)->pg, y = (*(const dpage *const *)b)->pg;
    return x < y ? -1 : x > y;
}

static int ensure_len(pager *p, uint64_t page_count) {
    uint64_t need = page_count << p->ps_shift;
    if (need > p->map_size) return STRATA_ENOSPC;
    if (p->file_len >= need) return STRATA_OK;
    /* grow in steps (fewer size changes to sync), but keep the slack small:
     * at most 1/64 of the file and 8 MiB */
    uint64_t step = p->file_len / 64;
    if (step < 16ull * p->ps) step = 16ull * p->ps;
    if (step > (8ull << 20)) step = 8ull << 20;
    uint64_t len = need + step;
    len = (len + p->ps - 1) & ~(uint64_t)(p->ps - 1);
    if (len > p->map_size) len = need;
    int rc = p->io->ops->set_len(p->io, len);
    if (rc) return rc;
    p->file_len = len;
    return STRATA_OK;
}

static void mark_verified(pager *p, pgno_t pg) {
    atomic_fetch_or_explicit(&p->vbits[pg >> 3], (uint8_t)(1u << (pg & 7)), memory_order_release);
}

int pager_write_dirty(pager *p, const dirty_map *m, uint64_t page_count) {
    if (p->panic) return STRATA_EPANIC;
    if (p->rdonly) return STRATA_EREADONLY;
    p->wb_hi = 0;                      /* the commit's sync takes it from here */
    int rc = ensure_len(p, page_count);
    if (rc || m->n == 0) return rc;
    dpage **v = malloc(m->n * sizeof *v);
    struct iovec *iov = malloc(MAX_IOV * sizeof *iov);
    rc = STRATA_ENOMEM;
    if (!v || !iov) goto out;
    size_t n = 0;
    for (size_t i = 0; i < m->cap; i++)           /* runs written through: done */
        if (m->slots[i].pg && m->slots[i].buf) v[n++] = &m->slots[i];
    qsort(v, n, sizeof *v, cmp_dpage);
    rc = STRATA_OK;
    for (size_t i = 0; i < n && rc == STRATA_OK;) {
        pgno_t start = v[i]->pg, next = start;
        int ni = 0;
        while (i < n && v[i]->pg == next && ni < MAX_IOV) {
            iov[ni].iov_base = v[i]->buf;
            iov[ni].iov_len = (size_t)v[i]->npages << p->ps_shift;
            next += v[i]->npages;
            ni++; i++;
        }
        rc = p->io->ops->pwritev(p->io, iov, ni, start << p->ps_shift);
    }
    if (rc == STRATA_OK)
        for (size_t i = 0; i < n; i++) mark_verified(p, v[i]->pg);
out:
    free(v);
    free(iov);
    return rc;
}

int pager_write_run(pager *p, pgno_t pg, size_t n, const void *data, size_t len,
                    uint64_t page_count) {
    if (p->panic) return STRATA_EPANIC;
    if (p->rdonly) return STRATA_EREADONLY;
    size_t bytes = n << p->ps_shift;
    if (pg == 0 || len == 0 || len > bytes || bytes - len >= p->ps || pg + n > page_count)
        return STRATA_EINVAL;
    int rc = ensure_len(p, page_count);
    if (rc) return rc;
    static const uint8_t zeros[65536];
    struct iovec iov[2] = { { (void *)data, len }, { (void *)zeros, bytes - len } };
    if ((rc = p->io->ops->pwritev(p->io, iov, bytes > len ? 2 : 1, (uint64_t)pg << p->ps_shift)))
        return rc;
    for (size_t i = 0; i < n; i++) mark_verified(p, pg + i);
    pager_populate(p, pg, n);          /* written in small folios: map them now */
    /* let the device work while the caller goes on, in batches of at least
     * WB_BATCH bytes (many small writeback requests cost more than they hide) */
    uint64_t lo = (uint64_t)pg << p->ps_shift, hi = lo + bytes;
    if (p->wb_hi == 0) p->wb_lo = lo, p->wb_hi = hi;
    if (lo < p->wb_lo) p->wb_lo = lo;
    if (hi > p->wb_hi) p->wb_hi = hi;
    if (p->wb_hi - p->wb_lo >= WB_BATCH) {
        if (p->io->ops->start_writeback) p->io->ops->start_writeback(p->io, p->wb_lo, p->wb_hi - p->wb_lo);
        p->wb_hi = 0;
    }
    return STRATA_OK;
}

int pager_write_header(pager *p, const pg_state *st) {
    if (p->panic) return STRATA_EPANIC;
    if (p->rdonly) return STRATA_EREADONLY;
    int rc;
    if (p->two_phase && (rc = p->io->ops->sync(p->io))) goto fail;
    int np = 1 - p->primary;
    uint8_t img[HDR_WRITE_LEN];
    memcpy(img, p->hdr, sizeof img);
    pager_slot_encode(img + (np ? HDR_OFF_SLOT1 : HDR_OFF_SLOT0), st, p->ps);
    img[HDR_OFF_GOD] = (uint8_t)(np | (p->two_phase ? GOD_TWO_PHASE : 0) | GOD_DIRTY);
    if ((rc = io_write(p->io, img, sizeof img, 0))) goto fail;
    if ((rc = p->io->ops->sync(p->io))) goto fail;
    memcpy(p->hdr, img, sizeof img);
    p->other = p->durable;
    p->have_other = 1;
    p->durable = *st;
    p->primary = np;
    return STRATA_OK;
fail:
    p->panic = 1;
    return rc;
}

int pager_close_clean(pager *p, uint64_t page_count) {
    if (p->panic || p->rdonly) return STRATA_OK;
    uint64_t len = page_count << p->ps_shift;
    int rc = STRATA_OK;
    if (len < p->file_len && (rc = p->io->ops->set_len(p->io, len)) == STRATA_OK) p->file_len = len;
    if (rc) return rc;
    if (p->recovered && (p->hdr[HDR_OFF_GOD] & GOD_PRIMARY) != p->primary) {
        /* open fell back to the older slot and nothing was committed since:
         * make it the primary on disk and erase the newer slot that failed
         * verification, or a later clean open would trust it */
        uint8_t img[HDR_WRITE_LEN];
        memcpy(img, p->hdr, sizeof img);
        memset(img + (p->primary ? HDR_OFF_SLOT0 : HDR_OFF_SLOT1), 0, SLOT_SIZE);
        img[HDR_OFF_GOD] = (uint8_t)p->primary;
        if ((rc = p->io->ops->sync(p->io)) || (rc = io_write(p->io, img, sizeof img, 0)) ||
            (rc = p->io->ops->sync(p->io)))
            return rc;
        memcpy(p->hdr, img, sizeof img);
        return STRATA_OK;
    }
    if (!(p->hdr[HDR_OFF_GOD] & GOD_DIRTY)) return p->io->ops->sync(p->io);
    /* everything is durable: clear the dirty bit (one byte, atomic) */
    uint8_t god = (uint8_t)(p->hdr[HDR_OFF_GOD] & ~GOD_DIRTY);
    if ((rc = p->io->ops->sync(p->io)) || (rc = io_write(p->io, &god, 1, HDR_OFF_GOD)) ||
        (rc = p->io->ops->sync(p->io)))
        return rc;
    p->hdr[HDR_OFF_GOD] = god;
    return STRATA_OK;
}

int pager_shrink(pager *p, uint64_t page_count) {
    if (p->panic || p->rdonly) return STRATA_OK;
    uint64_t len = page_count << p->ps_shift;
    if (len >= p->file_len) return STRATA_OK;
    int rc = p->io->ops->set_len(p->io, len);
    if (rc == STRATA_OK) rc = p->io->ops->sync(p->io);
    if (rc == STRATA_OK) p->file_len = len;
    return rc;
}
