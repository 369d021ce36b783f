/* btree/btree.c - search, insert with split, delete with merge, drop and
 * checksum finalization of copy-on-write B+trees.
 * Invariants (see page.h for the page format):
 *  (1) a page of the last commit is never written: bt_touch() copies it to a
 *      new page first and frees the old one as of this transaction;
 *  (2) branch key[i] <= every key under child i < key[i+1];
 *  (3) after a delete, a page under a quarter full is merged with a sibling
 *      when the two fit in one page; empty pages are removed; a root branch
 *      with one child is replaced by that child;
 *  (4) the depth of a tree never exceeds BT_MAX_DEPTH; a deeper one is corrupt.
 * Callers: db/ only. */
#include <assert.h>
#include <stdlib.h>
#include <string.h>

#include "strata.h"
#include "btree_int.h"

static inline int cmp_bytes(const void *a, size_t alen, const void *b, size_t blen);

int bt_cmp_bytes(void *ctx, const void *a, size_t alen, const void *b, size_t blen) {
    (void)ctx;
    return cmp_bytes(a, alen, b, blen);
}

int bt_page(bt_ctx *cx, pgno_t pg, const ck128 *ck, const uint8_t **out) {
    if (cx->w) {
        dpage *d = dirty_get_buf(bt_wtx_dirty(cx->w), pg);
        if (d) { *out = d->buf; return STRATA_OK; }
    }
    pager *p = cx->p;
    if (pg == 0 || pg >= cx->page_count) return CORRUPT(p, pg);
    const uint8_t *ptr = pager_ptr(p, pg);
    if (p->verify == STRATA_VERIFY_FULL || !pager_vbit_test(p, pg)) {
        if (p->verify != STRATA_VERIFY_OFF && !ck_eq(ck_compute(ptr, p->ps), *ck))
            return CORRUPT(p, pg);
        if (node_validate(ptr, p->ps)) return CORRUPT(p, pg);
        pager_vbit_set(p, pg);
    }
    *out = ptr;
    return STRATA_OK;
}

int bt_cell_overflow(bt_ctx *cx, const uint8_t *c, bt_val *val) {
    pgno_t pg = le64_get(lc_val(c));
    ck128 ck = ck_get(lc_val(c) + 8);
    size_t len = lc_vlen(c);
    uint64_t page_count = cx->page_count;
    if (cx->w) {
        dpage *d = dirty_get(bt_wtx_dirty(cx->w), pg);
        if (d && d->buf) { val->data = d->buf; val->len = len; return STRATA_OK; }
        /* only this transaction's own write-through runs may lie past the
         * snapshot's page count; any other reference there is damage */
        if (d) page_count = bt_wtx_page_count(cx->w);
    }
    const uint8_t *ptr;
    int rc = pager_read(cx->p, page_count, pg, pager_npages(cx->p, len), len, &ck, &ptr);
    if (rc) return rc;
    val->data = ptr;
    val->len = len;
    return STRATA_OK;
}

static inline int cmp_bytes(const void *a, size_t alen, const void *b, size_t blen) {
    size_t m = alen < blen ? alen : blen;
#if defined(__BYTE_ORDER__) && __BYTE_ORDER__ == __ORDER_LITTLE_ENDIAN__
    if (m >= 8) {                       /* most keys differ in their first 8 bytes */
        uint64_t x, y;
        memcpy(&x, a, 8);
        memcpy(&y, b, 8);
        if (x != y) {
            x = __builtin_bswap64(x);   /* big-endian order == memcmp order */
            y = __builtin_bswap64(y);
            return x < y ? -1 : 1;
        }
    } else {                            /* short keys: truncated separators */
        const uint8_t *p = a, *q = b;
        for (size_t i = 0; i < m; i++)
            if (p[i] != q[i]) return p[i] < q[i] ? -1 : 1;
        return (alen > blen) - (alen < blen);
    }
#endif
    int c = memcmp(a, b, m);
    return c ? c : (alen > blen) - (alen < blen);
}

/* Searches specialize the byte comparator (the common case) so the compiler
 * inlines it; other comparators are called through the table's pointer. */
static inline int tcmp(const bt_tree *t, const void *a, size_t al, const void *b, size_t bl) {
    return t->cmp == bt_cmp_bytes ? cmp_bytes(a, al, b, bl) : t->cmp(t->cmp_ctx, a, al, b, bl);
}

unsigned leaf_search(const bt_tree *t, const uint8_t *pg, const void *key, size_t klen, int *exact) {
    unsigned lo = 0, hi = pg_n(pg);
    *exact = 0;
    leaf_prefetch(pg);
    while (lo < hi) {
        unsigned mid = (lo + hi) / 2;
        const uint8_t *c = pg_cell(pg, mid);
        int r = tcmp(t, lc_key(c), lc_klen(c), key, klen);
        if (r < 0) lo = mid + 1;
        else if (r > 0) hi = mid;
        else { *exact = 1; return mid; }
    }
    return lo;
}

unsigned branch_search(const bt_tree *t, const uint8_t *pg, const void *key, size_t klen) {
    unsigned lo = 1, hi = pg_n(pg);       /* first i >= 1 with key[i] > key */
    while (lo < hi) {
        unsigned mid = (lo + hi) / 2;
        const uint8_t *c = pg_cell(pg, mid);
        if (tcmp(t, bc_key(c), bc_klen(c), key, klen) <= 0) lo = mid + 1;
        else hi = mid;
    }
    return lo - 1;
}

int bt_get(bt_ctx *cx, const bt_tree *t, const void *key, size_t klen, bt_val *val) {
    if (!t->root) return STRATA_NOTFOUND;
    pgno_t pg = t->root;
    ck128 ck = t->root_ck;
    const uint8_t *page;
    for (int d = 0;; d++) {
        if (d >= BT_MAX_DEPTH) return CORRUPT(cx->p, pg);
        int rc = bt_page(cx, pg, &ck, &page);
        if (rc) return rc;
        if (pg_type(page) == PT_LEAF) break;
        const uint8_t *c = pg_cell(page, branch_search(t, page, key, klen));
        pg = bc_child(c);
        ck = bc_ck(c);
    }
    int exact;
    unsigned i = leaf_search(t, page, key, klen, &exact);
    if (!exact) return STRATA_NOTFOUND;
    return bt_cell_value(cx, pg_cell(page, i), val);
}

/* ------------------------------------------------------------------------ */
/* Writes                                                                    */

typedef struct path {
    int      depth;                     /* levels: 0 = root .. depth-1 = leaf */
    pgno_t   pg[BT_MAX_DEPTH];
    uint8_t *buf[BT_MAX_DEPTH];
    unsigned idx[BT_MAX_DEPTH];         /* child index (branch) or slot (leaf) */
    int      exact;
    int      rightmost;                 /* the leaf is the tree's last one */
} path;

int bt_touch(bt_ctx *cx, pgno_t pg, const ck128 *ck, pgno_t *npg, uint8_t **buf) {
    bt_wtx *w = cx->w;
    dpage *d = dirty_get_buf(bt_wtx_dirty(w), pg);
    if (d && bt_wtx_writable(w, d)) { *npg = pg; *buf = d->buf; return STRATA_OK; }
    const uint8_t *src;
    int rc = STRATA_OK;
    if (d) src = d->buf;                         /* frozen by a savepoint: copy it */
    else if ((rc = bt_page(cx, pg, ck, &src))) return rc;
    pgno_t np;
    uint8_t *nb;
    if ((rc = bt_alloc(w, 1, &np, &nb))) return rc;
    memcpy(nb, src, cx->p->ps);
    le64_put(nb + PG_OFF_TXNID, bt_wtx_txnid_of(w));
    if ((rc = bt_free(w, pg, 1))) return rc;
    *npg = np;
    *buf = nb;
    return STRATA_OK;
}

/* Descend to key's leaf, making every page on the way writable. */
static int descend_cow(bt_ctx *cx, bt_tree *t, const void *key, size_t klen, path *ph) {
    pgno_t np;
    uint8_t *buf;
    int rc = bt_touch(cx, t->root, &t->root_ck, &np, &buf);
    if (rc) return rc;
    t->root = np;
    ph->rightmost = 1;
    for (int d = 0;; d++) {
        if (d >= BT_MAX_DEPTH) return CORRUPT(cx->p, np);
        ph->pg[d] = np;
        ph->buf[d] = buf;
        ph->depth = d + 1;
        if (pg_type(buf) == PT_LEAF) {
            ph->idx[d] = leaf_search(t, buf, key, klen, &ph->exact);
            return STRATA_OK;
        }
        unsigned i = branch_search(t, buf, key, klen);
        ph->idx[d] = i;
        ph->rightmost &= i + 1 == pg_n(buf);
        uint8_t *c = buf + pg_slot(buf, i);
        ck128 ck = bc_ck(c);
        pgno_t child = bc_child(c);
        if ((rc = bt_touch(cx, child, &ck, &np, &buf))) return rc;
        le64_put(c + BC_OFF_CHILD, np);
    }
}

/* Length of the shortest prefix of r that sorts after l in byte order (l < r):
 * a separator that keeps branch pages small (suffix truncation). Keys of the
 * right page are >= r >= the prefix; keys of the left page are <= l < it. */
static size_t short_separator(const uint8_t *l, size_t llen, const uint8_t *r, size_t rlen) {
    size_t i = 0;
    while (i < llen && i < rlen && l[i] == r[i]) i++;
    return i < rlen ? i + 1 : rlen;
}

static size_t make_branch_cell(uint8_t *out, pgno_t child, const uint8_t *key, size_t klen) {
    le64_put(out + BC_OFF_CHILD, child);
    memset(out + BC_OFF_CK, 0, CK128_SIZE);            /* filled by bt_finalize */
    le16_put(out + BC_OFF_KLEN, (uint16_t)klen);
    if (klen) memcpy(out + BC_HDR, key, klen);
    return BC_HDR + klen;
}

static int insert_at(bt_ctx *cx, bt_tree *t, path *ph, int d, unsigned idx,
                     const uint8_t *cell, size_t len, int append);

/* Split page ph->buf[d] while inserting cell at idx; push the separator up. */
static int split(bt_ctx *cx, bt_tree *t, path *ph, int d, unsigned idx,
                 const uint8_t *cell, size_t len, int append) {
    uint32_t ps = cx->p->ps;
    uint8_t *page = ph->buf[d];
    unsigned type = pg_type(page), n = pg_n(page);
    int rc = STRATA_ENOMEM;
    uint8_t *tmp = malloc(ps);
    cellref *cells = malloc((n + 1) * sizeof *cells);
    uint8_t *sep = malloc(BC_HDR + bt_max_key(ps) + LC_HDR);
    if (!tmp || !cells || !sep) goto out;
    memcpy(tmp, page, ps);
    size_t total = 0;
    for (unsigned i = 0, j = 0; i <= n; i++) {
        if (i == idx) cells[i] = (cellref){ cell, (uint32_t)len };
        else { const uint8_t *c = tmp + pg_slot(tmp, j++); cells[i] = (cellref){ c, (uint32_t)cell_size(tmp, c) }; }
        total += cells[i].len + 2;
    }
    unsigned m;                                   /* cells [0, m) stay left */
    if (append && idx == n) {
        m = n;
    } else {
        size_t acc = 0;
        for (m = 0; m < n && acc + cells[m].len + 2 <= total / 2; m++) acc += cells[m].len + 2;
        if (m == 0) m = 1;
    }
    pgno_t rpg;
    uint8_t *rbuf;
    if ((rc = bt_alloc(cx->w, 1, &rpg, &rbuf))) goto out;
    uint64_t txnid = bt_wtx_txnid_of(cx->w);
    const uint8_t *sk;
    size_t sklen;
    uint8_t first[BC_HDR];
    if (type == PT_LEAF) {
        sk = lc_key(cells[m].p); sklen = lc_klen(cells[m].p);
        if (t->cmp == bt_cmp_bytes && m > 0)         /* byte order: the shortest separator */
            sklen = short_separator(lc_key(cells[m - 1].p), lc_klen(cells[m - 1].p), sk, sklen);
    } else {
        sk = bc_key(cells[m].p); sklen = bc_klen(cells[m].p);
        make_branch_cell(first, bc_child(cells[m].p), NULL, 0);
        memcpy(first + BC_OFF_CK, cells[m].p + BC_OFF_CK, CK128_SIZE);
    }
    size_t scell_len = make_branch_cell(sep, rpg, sk, sklen);
    node_build(page, type, txnid, ps, cells, m);
    if (type == PT_BRANCH) {
        cellref saved = cells[m];
        cells[m] = (cellref){ first, BC_HDR };
        node_build(rbuf, type, txnid, ps, cells + m, n + 1 - m);
        cells[m] = saved;
    } else {
        node_build(rbuf, type, txnid, ps, cells + m, n + 1 - m);
    }
    if (d == 0) {                                 /* new root */
        pgno_t root;
        uint8_t *rootbuf;
        if ((rc = bt_alloc(cx->w, 1, &root, &rootbuf))) goto out;
        uint8_t lcell[BC_HDR];
        make_branch_cell(lcell, ph->pg[0], NULL, 0);
        cellref rc2[2] = { { lcell, BC_HDR }, { sep, (uint32_t)scell_len } };
        node_build(rootbuf, PT_BRANCH, txnid, ps, rc2, 2);
        t->root = root;
        rc = STRATA_OK;
    } else {
        rc = insert_at(cx, t, ph, d - 1, ph->idx[d - 1] + 1, sep, scell_len, append);
    }
out:
    free(tmp);
    free(cells);
    free(sep);
    return rc;
}

static int insert_at(bt_ctx *cx, bt_tree *t, path *ph, int d, unsigned idx,
                     const uint8_t *cell, size_t len, int append) {
    if (node_insert(ph->buf[d], cx->p->ps, idx, cell, len) == 0) return STRATA_OK;
    return split(cx, t, ph, d, idx, cell, len, append);
}

static int free_value(bt_ctx *cx, const uint8_t *c) {
    if (!(lc_flags(c) & LF_OVERFLOW)) return STRATA_OK;
    return bt_free(cx->w, le64_get(lc_val(c)), (uint32_t)pager_npages(cx->p, lc_vlen(c)));
}

/* Build a leaf cell for (key, val) into out, storing big values in overflow pages. */
static int make_leaf_cell(bt_ctx *cx, uint8_t *out, size_t *len, const void *key, size_t klen,
                          const void *val, size_t vlen) {
    uint32_t ps = cx->p->ps;
    le16_put(out + LC_OFF_KLEN, (uint16_t)klen);
    le32_put(out + LC_OFF_VLEN, (uint32_t)vlen);
    if (klen) memcpy(out + LC_HDR, key, klen);
    if (bt_inline_fits(ps, klen, vlen)) {
        out[LC_OFF_FLAGS] = 0;
        if (vlen) memcpy(out + LC_HDR + klen, val, vlen);
        *len = LC_HDR + klen + vlen;
        return STRATA_OK;
    }
    out[LC_OFF_FLAGS] = LF_OVERFLOW;
    pgno_t pg;
    size_t np = pager_npages(cx->p, vlen);
    int rc;
    if (vlen >= BT_DIRECT_MIN) {
        /* large: written to its free pages now, from the caller's buffer (no
         * copy, no buffer held until commit; the commit's sync covers it) */
        if ((rc = bt_alloc_direct(cx->w, (uint32_t)np, &pg))) return rc;
        if ((rc = pager_write_run(cx->p, pg, np, val, vlen, bt_wtx_page_count(cx->w)))) return rc;
    } else {
        uint8_t *buf;
        if ((rc = bt_alloc(cx->w, (uint32_t)np, &pg, &buf))) return rc;
        memcpy(buf, val, vlen);
        memset(buf + vlen, 0, (np << cx->p->ps_shift) - vlen);   /* the unused tail is zero */
    }
    le64_put(out + LC_HDR + klen, pg);
    ck_put(out + LC_HDR + klen + 8, ck_compute(val, vlen));
    *len = LC_HDR + klen + OVREF_SIZE;
    return STRATA_OK;
}

int bt_put(bt_ctx *cx, bt_tree *t, const void *key, size_t klen, const void *val, size_t vlen,
           unsigned flags, int *existed) {
    uint32_t ps = cx->p->ps;
    if (klen > bt_max_key(ps)) return STRATA_ETOOBIG;
    if (vlen > UINT32_MAX - ps) return STRATA_ETOOBIG;
    uint8_t cell[16384];
    _Static_assert(sizeof cell >= (65536 - PG_HDR) / 4, "cell buffer holds a quarter page");
    size_t len;
    int rc;
    if (!t->root) {                               /* first entry: a root leaf */
        pgno_t pg;
        uint8_t *buf;
        if ((rc = make_leaf_cell(cx, cell, &len, key, klen, val, vlen))) return rc;
        if ((rc = bt_alloc(cx->w, 1, &pg, &buf))) return rc;
        cellref c = { cell, (uint32_t)len };
        node_build(buf, PT_LEAF, bt_wtx_txnid_of(cx->w), ps, &c, 1);
        t->root = pg;
        t->count = 1;
        if (existed) *existed = 0;
        return STRATA_OK;
    }
    path ph;
    if ((rc = descend_cow(cx, t, key, klen, &ph))) return rc;
    int d = ph.depth - 1;
    uint8_t *leaf = ph.buf[d];
    unsigned idx = ph.idx[d];
    if ((flags & BT_APPEND) && (ph.exact || idx != pg_n(leaf))) return STRATA_EINVAL;
    if (ph.exact) {
        uint8_t *old = leaf + pg_slot(leaf, idx);
        if (!(lc_flags(old) & LF_OVERFLOW) && lc_vlen(old) == vlen && bt_inline_fits(ps, klen, vlen)) {
            if (vlen) memmove(old + LC_HDR + klen, val, vlen);   /* same size: in place */
            if (existed) *existed = 1;
            return STRATA_OK;
        }
    }
    /* build the new cell first: val may point into the old one */
    if ((rc = make_leaf_cell(cx, cell, &len, key, klen, val, vlen))) return rc;
    if (ph.exact) {
        if ((rc = free_value(cx, pg_cell(leaf, idx)))) return rc;
        node_remove(leaf, ps, idx);
    }
    int append = (flags & BT_APPEND) || (ph.rightmost && idx == pg_n(leaf) && !ph.exact);
    if ((rc = insert_at(cx, t, &ph, d, idx, cell, len, append))) return rc;
    if (!ph.exact) t->count++;
    if (existed) *existed = ph.exact;
    return STRATA_OK;
}

/* Remove child idx of a branch; a new cell 0 gives up its key (invariant:
 * cell 0's key is empty, the parent's bound stands for it). */
static void branch_remove(uint8_t *pg, uint32_t ps, unsigned idx) {
    node_remove(pg, ps, idx);
    if (idx != 0 || pg_n(pg) == 0 || bc_klen(pg_cell(pg, 0)) == 0) return;
    uint8_t first[BC_HDR];
    memcpy(first, pg_cell(pg, 0), BC_HDR);
    le16_put(first + BC_OFF_KLEN, 0);
    node_remove(pg, ps, 0);
    int full = node_insert(pg, ps, 0, first, BC_HDR);   /* smaller than what left: fits */
    (void)full;
    assert(full == 0);
}

/* Merge page at child index a with its right neighbour a+1 under parent, if
 * they fit in one page. Returns 1 if merged. */
static int try_merge(bt_ctx *cx, uint8_t *parent, unsigned a, int *merged) {
    uint32_t ps = cx->p->ps;
    *merged = 0;
    uint8_t *pc[2];
    pgno_t pgs[2];
    uint8_t *bufs[2];
    for (int k = 0; k < 2; k++) {
        pc[k] = parent + pg_slot(parent, a + (unsigned)k);
        ck128 ck = bc_ck(pc[k]);
        int rc = bt_touch(cx, bc_child(pc[k]), &ck, &pgs[k], &bufs[k]);
        if (rc) return rc;
        le64_put(pc[k] + BC_OFF_CHILD, pgs[k]);
    }
    unsigned type = pg_type(bufs[0]);
    const uint8_t *sep = bc_key(pc[1]);
    size_t seplen = bc_klen(pc[1]);
    size_t need = node_used(bufs[0]) + node_used(bufs[1]) + (type == PT_BRANCH ? seplen : 0);
    if (need > ps - PG_HDR || pg_type(bufs[1]) != type) return STRATA_OK;
    unsigned nl = pg_n(bufs[0]), nr = pg_n(bufs[1]);
    cellref *cells = malloc((nl + nr) * sizeof *cells);
    uint8_t *tmp = malloc(ps);
    uint8_t *first = malloc(BC_HDR + seplen);
    int rc = STRATA_ENOMEM;
    if (!cells || !tmp || !first) goto out;
    memcpy(tmp, bufs[0], ps);
    for (unsigned i = 0; i < nl; i++) {
        const uint8_t *c = tmp + pg_slot(tmp, i);
        cells[i] = (cellref){ c, (uint32_t)cell_size(tmp, c) };
    }
    for (unsigned i = 0; i < nr; i++) {
        const uint8_t *c = pg_cell(bufs[1], i);
        cells[nl + i] = (cellref){ c, (uint32_t)cell_size(bufs[1], c) };
    }
    if (type == PT_BRANCH) {                      /* right's first child takes the separator */
        size_t l = make_branch_cell(first, bc_child(cells[nl].p), sep, seplen);
        memcpy(first + BC_OFF_CK, cells[nl].p + BC_OFF_CK, CK128_SIZE);
        cells[nl] = (cellref){ first, (uint32_t)l };
    }
    node_build(bufs[0], type, bt_wtx_txnid_of(cx->w), ps, cells, nl + nr);
    if ((rc = bt_free(cx->w, pgs[1], 1))) goto out;
    branch_remove(parent, ps, a + 1);
    *merged = 1;
out:
    free(cells);
    free(tmp);
    free(first);
    return rc;
}

/* Restore the fill invariants upward from the leaf of ph. */
static int rebalance(bt_ctx *cx, bt_tree *t, path *ph) {
    uint32_t ps = cx->p->ps;
    for (int d = ph->depth - 1; d > 0; d--) {
        uint8_t *buf = ph->buf[d], *parent = ph->buf[d - 1];
        unsigned pi = ph->idx[d - 1];
        if (pg_n(buf) == 0) {                     /* empty: unlink it */
            int rc = bt_free(cx->w, ph->pg[d], 1);
            if (rc) return rc;
            branch_remove(parent, ps, pi);
            continue;
        }
        if (node_used_bound(buf, ps) >= (ps - PG_HDR) / 4 || pg_n(parent) < 2) break;
        int merged;
        int rc = try_merge(cx, parent, pi > 0 ? pi - 1 : pi, &merged);
        if (rc) return rc;
        if (!merged) break;
    }
    for (;;) {                                    /* shrink the root */
        dpage *rd = dirty_get_buf(bt_wtx_dirty(cx->w), t->root);
        if (!rd) return CORRUPT(cx->p, t->root);
        uint8_t *root = rd->buf;
        if (pg_n(root) == 0) {
            int rc = bt_free(cx->w, t->root, 1);
            t->root = 0;
            return rc;
        }
        if (pg_type(root) != PT_BRANCH || pg_n(root) != 1) return STRATA_OK;
        const uint8_t *c = pg_cell(root, 0);
        pgno_t old = t->root;
        t->root = bc_child(c);
        t->root_ck = bc_ck(c);
        int rc = bt_free(cx->w, old, 1);
        if (rc) return rc;
        if (!dirty_get_buf(bt_wtx_dirty(cx->w), t->root)) return STRATA_OK;
    }
}

/* Read-only descent recording the path; then, only if the key exists, make
 * the path writable top-down (one search per level, no copy for a miss). */
static int descend_find_cow(bt_ctx *cx, bt_tree *t, const void *key, size_t klen, path *ph) {
    pgno_t pg = t->root;
    ck128 ck = t->root_ck;
    uint8_t *own[BT_MAX_DEPTH];                  /* writable dirty page at a level, or NULL */
    for (int d = 0;; d++) {
        if (d >= BT_MAX_DEPTH) return CORRUPT(cx->p, pg);
        const uint8_t *page;
        dpage *dp = dirty_get_buf(bt_wtx_dirty(cx->w), pg);
        own[d] = dp && bt_wtx_writable(cx->w, dp) ? dp->buf : NULL;
        if (dp) page = dp->buf;
        else {
            int rc = bt_page(cx, pg, &ck, &page);
            if (rc) return rc;
        }
        ph->pg[d] = pg;
        ph->depth = d + 1;
        if (pg_type(page) == PT_LEAF) {
            ph->idx[d] = leaf_search(t, page, key, klen, &ph->exact);
            break;
        }
        unsigned i = branch_search(t, page, key, klen);
        ph->idx[d] = i;
        const uint8_t *c = pg_cell(page, i);
        pg = bc_child(c);
        ck = bc_ck(c);
    }
    if (!ph->exact) return STRATA_NOTFOUND;
    /* make the path writable top-down; pages already writable stay where they are */
    pgno_t np = t->root;
    uint8_t *buf = own[0];
    int rc;
    if (!buf) {
        if ((rc = bt_touch(cx, t->root, &t->root_ck, &np, &buf))) return rc;
        t->root = np;
    }
    for (int d = 0;; d++) {
        ph->pg[d] = np;
        ph->buf[d] = buf;
        if (d + 1 == ph->depth) return STRATA_OK;
        uint8_t *c = buf + pg_slot(buf, ph->idx[d]);
        if (own[d + 1]) {                        /* the child is writable: no copy, no pointer change */
            np = bc_child(c);
            buf = own[d + 1];
            continue;
        }
        ck128 cck = bc_ck(c);
        if ((rc = bt_touch(cx, bc_child(c), &cck, &np, &buf))) return rc;
        le64_put(c + BC_OFF_CHILD, np);
    }
}

int bt_del(bt_ctx *cx, bt_tree *t, const void *key, size_t klen) {
    if (!t->root) return STRATA_NOTFOUND;
    path ph;
    int rc = descend_find_cow(cx, t, key, klen, &ph);
    if (rc) return rc;
    uint8_t *leaf = ph.buf[ph.depth - 1];
    if ((rc = free_value(cx, pg_cell(leaf, ph.idx[ph.depth - 1])))) return rc;
    node_remove(leaf, cx->p->ps, ph.idx[ph.depth - 1]);
    t->count--;
    return rebalance(cx, t, &ph);
}

int bt_seen_init(bt_seen *s, uint64_t npages) {
    s->n = npages;
    s->bits = calloc((size_t)(npages / 8 + 1), 1);
    return s->bits ? STRATA_OK : STRATA_ENOMEM;
}

int bt_seen_add(bt_seen *s, pgno_t pg) {
    if (pg >= s->n) return 1;
    uint8_t m = (uint8_t)(1u << (pg & 7));
    if (s->bits[pg >> 3] & m) return 1;
    s->bits[pg >> 3] |= m;
    return 0;
}

int bt_seen_run(bt_seen *s, pgno_t pg, uint64_t n) {
    if (pg >= s->n || n > s->n - pg) return 1;
    for (uint64_t i = 0; i < n; i++) {
        uint8_t m = (uint8_t)(1u << ((pg + i) & 7));
        if (s->bits[(pg + i) >> 3] & m) return 1;
    }
    for (uint64_t i = 0; i < n; i++) s->bits[(pg + i) >> 3] |= (uint8_t)(1u << ((pg + i) & 7));
    return 0;
}

void bt_seen_free(bt_seen *s) {
    free(s->bits);
    s->bits = NULL;
}

static int drop_rec(bt_ctx *cx, bt_seen *seen, pgno_t pg, ck128 ck, int depth) {
    if (depth >= BT_MAX_DEPTH || bt_seen_add(seen, pg)) return CORRUPT(cx->p, pg);
    const uint8_t *page;
    int rc = bt_page(cx, pg, &ck, &page);
    if (rc) return rc;
    unsigned n = pg_n(page);
    for (unsigned i = 0; i < n && rc == STRATA_OK; i++) {
        const uint8_t *c = pg_cell(page, i);
        if (pg_type(page) == PT_BRANCH) rc = drop_rec(cx, seen, bc_child(c), bc_ck(c), depth + 1);
        else if ((lc_flags(c) & LF_OVERFLOW) &&
                 bt_seen_run(seen, le64_get(lc_val(c)), pager_npages(cx->p, lc_vlen(c))))
            rc = CORRUPT(cx->p, pg);    /* a run shared by two cells: freed twice */
        else rc = free_value(cx, c);
    }
    return rc ? rc : bt_free(cx->w, pg, 1);
}

int bt_drop(bt_ctx *cx, bt_tree *t) {
    if (!t->root) return STRATA_OK;
    bt_seen seen;
    int rc = bt_seen_init(&seen, bt_wtx_page_count(cx->w));
    if (rc == STRATA_OK) rc = drop_rec(cx, &seen, t->root, t->root_ck, 0);
    bt_seen_free(&seen);
    if (rc == STRATA_OK) { t->root = 0; t->count = 0; }
    return rc;
}

static int fin_rec(bt_ctx *cx, uint8_t *buf, ck128 *out, int depth) {
    if (depth >= BT_MAX_DEPTH) return CORRUPT(cx->p, 0);
    if (pg_type(buf) == PT_BRANCH) {
        unsigned n = pg_n(buf);
        for (unsigned i = 0; i < n; i++) {
            uint8_t *c = buf + pg_slot(buf, i);
            dpage *d = dirty_get_buf(bt_wtx_dirty(cx->w), bc_child(c));
            if (!d) continue;
            ck128 ck;
            int rc = fin_rec(cx, d->buf, &ck, depth + 1);
            if (rc) return rc;
            ck_put(c + BC_OFF_CK, ck);
        }
    }
    *out = ck_compute(buf, cx->p->ps);
    return STRATA_OK;
}

int bt_finalize(bt_ctx *cx, bt_tree *t) {
    if (!t->root) { memset(&t->root_ck, 0, sizeof t->root_ck); return STRATA_OK; }
    dpage *d = dirty_get_buf(bt_wtx_dirty(cx->w), t->root);
    if (!d) return STRATA_OK;
    return fin_rec(cx, d->buf, &t->root_ck, 0);
}
