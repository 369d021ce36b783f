/* btree/wtx.c - the page allocator of a write transaction and the persistent
 * free-page tree.
 *
 * Free tree: key (u64 BE txn T, u32 BE seq), value up to FT_MAX_EXTS extents
 * (u64 LE first page, u32 LE page count): pages freed by commit T.
 * Invariants:
 *  (1) an extent of entry T is reused only if T <= horizon, where horizon is the
 *      oldest snapshot any reader (or the last durable commit) still needs; so
 *      no live snapshot and no durable commit loses a page it can reach;
 *  (2) entries are taken lazily, smallest T first, by reading the *base* free
 *      tree, which is never modified before commit (its pages are freed as of
 *      this transaction, so they are not reused in it);
 *  (3) a page allocated and freed in this transaction goes straight back to the
 *      pool; a page of the base commit freed here is recorded under this txn;
 *  (4) at commit, taken entries are deleted and (freed + unused pool) written
 *      under this txn, repeated until the tree describes itself exactly; after
 *      a few rounds allocation comes from the end of the file only, which
 *      makes the lists monotone and the loop finite. */
#include <stdlib.h>
#include <string.h>

#include "strata.h"
#include "btree_int.h"

typedef struct ext { pgno_t pg; uint32_t n; } ext;
typedef struct ext_vec { ext *v; size_t n, cap; } ext_vec;

struct bt_wtx {
    pager    *p;
    dirty_map dm;
    uint64_t  txnid;
    uint64_t  page_count;        /* high-water mark including EOF allocations */
    uint64_t  horizon;
    pg_state  base;
    ext_vec   pool;              /* reusable now                              */
    ext_vec   freed;             /* base pages freed by this transaction      */
    uint8_t  *taken;             /* FT_KEY_LEN-byte keys consumed             */
    size_t    n_taken, cap_taken;
    int       scan_done;
    int       eof_only;
    uint32_t  own_chunks;        /* (txnid, seq) entries written so far       */
    uint32_t  epoch;             /* bumped by each savepoint                  */
    uint64_t  vhorizon;          /* entries flagged volatile: reusable up to here */
    int     (*is_vol)(void *ctx, pgno_t pg);   /* page unreachable from the durable commit */
    void     *vol_ctx;
    uint8_t   scan_key[FT_KEY_LEN];   /* last free-tree entry looked at */
    int       scan_started;
    uint32_t  own_vchunks;       /* (txnid, VOL | seq) entries written so far */
    int       low_first;         /* compaction: allocate the lowest free page */
    struct sup { pgno_t pg; uint32_t n, epoch; } *sup;   /* frozen pages replaced */
    size_t    n_sup, cap_sup;
};

struct bt_wsave {
    uint32_t  epoch;             /* pages with epoch >= this were made after */
    uint64_t  page_count;
    ext_vec   pool, freed;
    uint8_t  *taken;
    size_t    n_taken;
    int       scan_done;
    uint32_t  own_chunks, own_vchunks;
    uint8_t   scan_key[FT_KEY_LEN];
    int       scan_started;
};

static int vec_push(ext_vec *v, pgno_t pg, uint32_t n) {
    if (v->n && v->v[v->n - 1].pg + v->v[v->n - 1].n == pg) { v->v[v->n - 1].n += n; return STRATA_OK; }
    if (v->n == v->cap) {
        size_t nc = v->cap ? v->cap * 2 : 64;
        ext *nv = realloc(v->v, nc * sizeof *nv);
        if (!nv) return STRATA_ENOMEM;
        v->v = nv; v->cap = nc;
    }
    v->v[v->n++] = (ext){ pg, n };
    return STRATA_OK;
}

int bt_wtx_begin(pager *p, const pg_state *base, uint64_t txnid, uint64_t horizon, bt_wtx **out) {
    bt_wtx *w = calloc(1, sizeof *w);
    if (!w) return STRATA_ENOMEM;
    w->p = p;
    w->dm.arena = &p->arena;
    w->base = *base;
    w->txnid = txnid;
    w->page_count = base->page_count;
    w->horizon = horizon;
    *out = w;
    return STRATA_OK;
}

void bt_wtx_free(bt_wtx *w) {
    if (!w) return;
    dirty_clear(&w->dm);
    free(w->pool.v);
    free(w->freed.v);
    free(w->taken);
    free(w->sup);
    free(w);
}

int bt_wtx_writable(const bt_wtx *w, const dpage *d) { return d->epoch == w->epoch; }

dirty_map *bt_wtx_dirty(bt_wtx *w) { return &w->dm; }
uint64_t bt_wtx_page_count(const bt_wtx *w) { return w->page_count; }
uint64_t bt_wtx_txnid(const bt_wtx *w) { return w->txnid; }
uint64_t bt_wtx_txnid_of(const bt_wtx *w) { return w->txnid; }

static bt_tree base_free_tree(const bt_wtx *w) {
    bt_tree t = { w->base.free_root, w->base.free_ck, 0, bt_cmp_bytes, NULL };
    return t;
}

/* Move the next reusable free-tree entry into the pool: a plain one with
 * T <= horizon (smallest first), then one flagged volatile (its pages were
 * never reachable from the durable commit) with T <= vhorizon. */
static int take_entry(bt_wtx *w) {
    bt_ctx rcx = { w->p, w->base.page_count, NULL };
    bt_tree ft = base_free_tree(w);
    bt_cursor c;
    bt_cursor_init(&c, &rcx, &ft);
    int rc, exact = 0;
    if (w->scan_started) {
        rc = bt_cursor_seek(&c, w->scan_key, FT_KEY_LEN, &exact);
        if (rc == STRATA_OK && exact) rc = bt_cursor_next(&c);
    } else {
        rc = bt_cursor_first(&c);
    }
    for (;;) {
        if (rc == STRATA_NOTFOUND) { w->scan_done = 1; return STRATA_OK; }
        if (rc) return rc;
        bt_val k, v;
        if ((rc = bt_cursor_get(&c, &k, &v))) return rc;
        if (k.len != FT_KEY_LEN || v.len % FT_EXT_LEN || v.len == 0) return CORRUPT(w->p, ft.root);
        uint64_t t = be64_get(k.data);
        int vol = (t & FT_VOL) != 0;
        t &= ~FT_VOL;
        if (!vol && t > w->horizon) {            /* plain range done: jump to the volatile one */
            uint8_t vk[FT_KEY_LEN] = { 0 };
            be64_put(vk, FT_VOL);
            memcpy(w->scan_key, vk, FT_KEY_LEN);
            w->scan_started = 1;
            rc = bt_cursor_seek(&c, vk, FT_KEY_LEN, &exact);
            continue;
        }
        if (vol && t > w->vhorizon) { w->scan_done = 1; return STRATA_OK; }
        memcpy(w->scan_key, k.data, FT_KEY_LEN);
        w->scan_started = 1;
        if (w->n_taken == w->cap_taken) {
            size_t nc = w->cap_taken ? w->cap_taken * 2 : 16;
            uint8_t *nt = realloc(w->taken, nc * FT_KEY_LEN);
            if (!nt) return STRATA_ENOMEM;
            w->taken = nt; w->cap_taken = nc;
        }
        for (size_t off = 0; off < v.len; off += FT_EXT_LEN) {
            pgno_t pg = le64_get(v.data + off);
            uint32_t n = le32_get(v.data + off + 8);
            if (pg == 0 || n == 0 || pg >= w->base.page_count || n > w->base.page_count - pg)
                return CORRUPT(w->p, ft.root);
            if ((rc = vec_push(&w->pool, pg, n))) return rc;
        }
        memcpy(w->taken + w->n_taken * FT_KEY_LEN, k.data, FT_KEY_LEN);
        w->n_taken++;
        return STRATA_OK;
    }
}

void bt_wtx_set_volatile(bt_wtx *w, int (*is_vol)(void *ctx, pgno_t pg), void *ctx, uint64_t vhorizon) {
    w->is_vol = is_vol;
    w->vol_ctx = ctx;
    w->vhorizon = vhorizon < w->horizon ? w->horizon : vhorizon;
}

static int pool_take_low(ext_vec *pool, uint32_t n, pgno_t *pg) {
    size_t best = pool->n;
    for (size_t i = 0; i < pool->n; i++)
        if (pool->v[i].n >= n && (best == pool->n || pool->v[i].pg < pool->v[best].pg)) best = i;
    if (best == pool->n) return 0;
    ext *e = &pool->v[best];
    *pg = e->pg;
    e->pg += n;
    e->n -= n;
    if (e->n == 0) pool->v[best] = pool->v[--pool->n];
    return 1;
}

static int pool_take(ext_vec *pool, uint32_t n, pgno_t *pg) {
    for (size_t i = pool->n; i-- > 0;) {
        ext *e = &pool->v[i];
        if (e->n < n) continue;
        e->n -= n;
        *pg = e->pg + e->n;                 /* take from the end of the extent */
        if (e->n == 0) pool->v[i] = pool->v[--pool->n];
        return 1;
    }
    return 0;
}

static int alloc_pages(bt_wtx *w, uint32_t n, pgno_t *pg) {
    pgno_t at = 0;
    int found = 0;
    while (!w->eof_only && !(found = w->low_first ? pool_take_low(&w->pool, n, &at)
                                                  : pool_take(&w->pool, n, &at))) {
        if (w->scan_done || (n > 1 && w->pool.n > 64)) break;
        int rc = take_entry(w);
        if (rc) return rc;
    }
    if (!found) {
        at = w->page_count;
        w->page_count += n;
    }
    *pg = at;
    return STRATA_OK;
}

int bt_alloc_direct(bt_wtx *w, uint32_t n, pgno_t *pg) {
    pgno_t at;
    int rc = alloc_pages(w, n, &at);
    if (rc) return rc;
    /* an entry without a buffer: a free in this transaction makes the run
     * reusable at once, the commit writes nothing for it */
    if ((rc = dirty_put(&w->dm, at, n, NULL))) return rc;
    dirty_get(&w->dm, at)->epoch = w->epoch;
    *pg = at;
    return STRATA_OK;
}

int bt_alloc(bt_wtx *w, uint32_t n, pgno_t *pg, uint8_t **buf) {
    pgno_t at;
    int rc = alloc_pages(w, n, &at);
    if (rc) return rc;
    uint8_t *b = arena_alloc(w->dm.arena, n);   /* callers write every byte */
    if (!b) return STRATA_ENOMEM;
    if ((rc = dirty_put(&w->dm, at, n, b))) { arena_free(w->dm.arena, b, n); return rc; }
    dirty_get(&w->dm, at)->epoch = w->epoch;
    *pg = at;
    *buf = b;
    return STRATA_OK;
}

int bt_free(bt_wtx *w, pgno_t pg, uint32_t n) {
    dpage *d = dirty_get(&w->dm, pg);
    if (d && d->epoch != w->epoch) {             /* a savepoint still needs it */
        if (w->n_sup == w->cap_sup) {
            size_t nc = w->cap_sup ? w->cap_sup * 2 : 64;
            struct sup *ns = realloc(w->sup, nc * sizeof *ns);
            if (!ns) return STRATA_ENOMEM;
            w->sup = ns;
            w->cap_sup = nc;
        }
        w->sup[w->n_sup++] = (struct sup){ pg, n, w->epoch };
        return STRATA_OK;
    }
    if (d) {                                     /* made in this transaction */
        dirty_drop(&w->dm, d);
        return vec_push(&w->pool, pg, n);
    }
    return vec_push(&w->freed, pg, n);
}

static int cmp_ext(const void *a, const void *b) {
    pgno_t x = ((const ext *)a)->pg, y = ((const ext *)b)->pg;
    return x < y ? -1 : x > y;
}

/* freed + pool, sorted and coalesced, into out. */
static int gather(const bt_wtx *w, ext_vec *out) {
    out->n = 0;
    size_t n = w->freed.n + w->pool.n;
    if (n > out->cap) {
        ext *nv = realloc(out->v, n * sizeof *nv);
        if (!nv) return STRATA_ENOMEM;
        out->v = nv; out->cap = n;
    }
    if (n == 0) return STRATA_OK;
    if (w->freed.n) memcpy(out->v, w->freed.v, w->freed.n * sizeof(ext));
    if (w->pool.n) memcpy(out->v + w->freed.n, w->pool.v, w->pool.n * sizeof(ext));
    qsort(out->v, n, sizeof(ext), cmp_ext);
    size_t k = 0;
    for (size_t i = 1; i < n; i++) {
        if (out->v[k].pg + out->v[k].n == out->v[i].pg) out->v[k].n += out->v[i].n;
        else out->v[++k] = out->v[i];
    }
    out->n = k + 1;
    return STRATA_OK;
}

/* Write extents as chunks (txnid | flag, seq); delete chunks left from an
 * earlier round beyond the new count. */
static int put_chunks(bt_ctx *cx, bt_wtx *w, bt_tree *ft, const ext_vec *all, uint64_t flag, uint32_t *own) {
    uint8_t key[FT_KEY_LEN], val[FT_MAX_EXTS * FT_EXT_LEN];
    be64_put(key, w->txnid | flag);
    uint32_t chunks = (uint32_t)((all->n + FT_MAX_EXTS - 1) / FT_MAX_EXTS);
    int rc;
    for (uint32_t s = 0; s < chunks; s++) {
        size_t from = (size_t)s * FT_MAX_EXTS, cnt = all->n - from;
        if (cnt > FT_MAX_EXTS) cnt = FT_MAX_EXTS;
        for (size_t i = 0; i < cnt; i++) {
            le64_put(val + i * FT_EXT_LEN, all->v[from + i].pg);
            le32_put(val + i * FT_EXT_LEN + 8, all->v[from + i].n);
        }
        be32_put(key + 8, s);
        if ((rc = bt_put(cx, ft, key, FT_KEY_LEN, val, cnt * FT_EXT_LEN, 0, NULL))) return rc;
    }
    for (uint32_t s = chunks; s < *own; s++) {
        be32_put(key + 8, s);
        rc = bt_del(cx, ft, key, FT_KEY_LEN);
        if (rc && rc != STRATA_NOTFOUND) return rc;
    }
    if (chunks > *own) *own = chunks;
    return STRATA_OK;
}

/* Pages unreachable from the durable commit go to chunks flagged volatile. */
static int write_chunks(bt_ctx *cx, bt_wtx *w, bt_tree *ft, const ext_vec *all) {
    ext_vec plain = { 0 }, vol = { 0 };
    int rc = STRATA_OK;
    for (size_t i = 0; i < all->n && rc == STRATA_OK; i++) {
        for (uint32_t k = 0; k < all->v[i].n && rc == STRATA_OK; k++) {
            pgno_t pg = all->v[i].pg + k;
            rc = vec_push(w->is_vol && w->is_vol(w->vol_ctx, pg) ? &vol : &plain, pg, 1);
        }
    }
    if (rc == STRATA_OK) rc = put_chunks(cx, w, ft, &plain, 0, &w->own_chunks);
    if (rc == STRATA_OK) rc = put_chunks(cx, w, ft, &vol, FT_VOL, &w->own_vchunks);
    free(plain.v);
    free(vol.v);
    return rc;
}

/* Element-wise (ext has padding, which memcmp would read). */
static int ext_eq(const ext_vec *a, const ext_vec *b) {
    if (a->n != b->n) return 0;
    for (size_t i = 0; i < a->n; i++)
        if (a->v[i].pg != b->v[i].pg || a->v[i].n != b->v[i].n) return 0;
    return 1;
}

int bt_wtx_commit_freelist(bt_wtx *w, bt_tree *ft) {
    bt_ctx cx = { w->p, w->page_count, w };
    ext_vec prev = { 0 }, cur = { 0 };
    int rc = STRATA_OK, have_prev = 0;
    for (int iter = 0; rc == STRATA_OK; iter++) {
        if (iter >= 3) w->eof_only = 1;
        if (iter > 64) { rc = STRATA_EPANIC; break; }    /* cannot happen: see (4) */
        for (size_t i = 0; i < w->n_taken && rc == STRATA_OK; i++) {
            rc = bt_del(&cx, ft, w->taken + i * FT_KEY_LEN, FT_KEY_LEN);
            if (rc == STRATA_NOTFOUND) rc = STRATA_OK;
        }
        if (rc || (rc = gather(w, &cur))) break;
        if (have_prev && ext_eq(&cur, &prev)) break;
        if ((rc = write_chunks(&cx, w, ft, &cur))) break;
        ext_vec t = prev; prev = cur; cur = t;
        have_prev = 1;
    }
    free(prev.v);
    free(cur.v);
    if (rc == STRATA_OK) rc = bt_finalize(&cx, ft);
    return rc;
}

int bt_free_pages(bt_ctx *cx, const bt_tree *ft, uint64_t *n) {
    bt_cursor c;
    bt_cursor_init(&c, cx, ft);
    uint64_t total = 0;
    int rc = bt_cursor_first(&c);
    while (rc == STRATA_OK) {
        bt_val k, v;
        if ((rc = bt_cursor_get(&c, &k, &v))) break;
        for (size_t off = 0; off + FT_EXT_LEN <= v.len; off += FT_EXT_LEN) total += le32_get(v.data + off + 8);
        rc = bt_cursor_next(&c);
    }
    if (rc != STRATA_NOTFOUND) return rc;
    *n = total;
    return STRATA_OK;
}

/* ---- savepoints ---- */

static int vec_copy(ext_vec *dst, const ext_vec *src) {
    dst->n = dst->cap = 0;
    dst->v = NULL;
    if (!src->n) return STRATA_OK;
    if (!(dst->v = malloc(src->n * sizeof(ext)))) return STRATA_ENOMEM;
    memcpy(dst->v, src->v, src->n * sizeof(ext));
    dst->n = dst->cap = src->n;
    return STRATA_OK;
}

void bt_wsave_free(bt_wsave *s) {
    if (!s) return;
    free(s->pool.v);
    free(s->freed.v);
    free(s->taken);
    free(s);
}

uint32_t bt_wsave_epoch(const bt_wsave *s) { return s->epoch; }

int bt_wtx_save(bt_wtx *w, bt_wsave **out) {
    bt_wsave *s = calloc(1, sizeof *s);
    if (!s) return STRATA_ENOMEM;
    if (vec_copy(&s->pool, &w->pool) || vec_copy(&s->freed, &w->freed) ||
        (w->n_taken && !(s->taken = malloc(w->n_taken * FT_KEY_LEN)))) {
        bt_wsave_free(s);
        return STRATA_ENOMEM;
    }
    if (w->n_taken) memcpy(s->taken, w->taken, w->n_taken * FT_KEY_LEN);
    s->n_taken = w->n_taken;
    s->page_count = w->page_count;
    s->scan_done = w->scan_done;
    s->own_chunks = w->own_chunks;
    s->own_vchunks = w->own_vchunks;
    memcpy(s->scan_key, w->scan_key, FT_KEY_LEN);
    s->scan_started = w->scan_started;
    s->epoch = ++w->epoch;                       /* every page made so far is frozen */
    *out = s;
    return STRATA_OK;
}

int bt_wtx_restore(bt_wtx *w, const bt_wsave *s) {
    /* drop pages made after the savepoint */
    size_t n = 0;
    pgno_t *drop = malloc((w->dm.n ? w->dm.n : 1) * sizeof *drop);
    ext_vec pool, freed;
    if (!drop) return STRATA_ENOMEM;
    if (vec_copy(&pool, &s->pool) || vec_copy(&freed, &s->freed) ||
        (s->n_taken && s->n_taken > w->cap_taken)) {
        free(drop);
        free(pool.v);
        return STRATA_ENOMEM;
    }
    for (size_t i = 0; i < w->dm.cap; i++)
        if (w->dm.slots[i].pg && w->dm.slots[i].epoch >= s->epoch) drop[n++] = w->dm.slots[i].pg;
    for (size_t i = 0; i < n; i++) dirty_drop(&w->dm, dirty_get(&w->dm, drop[i]));
    free(drop);
    /* copies superseded after it are live again */
    size_t k = 0;
    for (size_t i = 0; i < w->n_sup; i++)
        if (w->sup[i].epoch < s->epoch) w->sup[k++] = w->sup[i];
    w->n_sup = k;
    free(w->pool.v);
    free(w->freed.v);
    w->pool = pool;
    w->freed = freed;
    if (s->n_taken) memcpy(w->taken, s->taken, s->n_taken * FT_KEY_LEN);
    w->n_taken = s->n_taken;
    w->page_count = s->page_count;
    w->scan_done = s->scan_done;
    w->own_chunks = s->own_chunks;
    w->own_vchunks = s->own_vchunks;
    memcpy(w->scan_key, s->scan_key, FT_KEY_LEN);
    w->scan_started = s->scan_started;
    w->epoch = s->epoch;
    return STRATA_OK;
}

int bt_wtx_release_superseded(bt_wtx *w) {
    for (size_t i = 0; i < w->n_sup; i++) {
        dpage *d = dirty_get(&w->dm, w->sup[i].pg);
        if (!d) continue;
        dirty_drop(&w->dm, d);
        int rc = vec_push(&w->pool, w->sup[i].pg, w->sup[i].n);
        if (rc) return rc;
    }
    w->n_sup = 0;
    for (size_t i = 0; i < w->dm.cap; i++)       /* no savepoint remains: all writable */
        if (w->dm.slots[i].pg) w->dm.slots[i].epoch = w->epoch;
    return STRATA_OK;
}

void bt_wtx_no_reuse(bt_wtx *w) { w->scan_done = 1; }

int bt_wtx_set_freed_except(bt_wtx *w, const uint8_t *used, uint64_t n) {
    uint8_t *busy = calloc(n / 8 + 1, 1);
    if (!busy) return STRATA_ENOMEM;
    memcpy(busy, used, n / 8 + 1);
    for (size_t i = 0; i < w->dm.cap; i++) {
        dpage *d = &w->dm.slots[i];
        for (uint64_t k = 0; d->pg && k < d->npages && d->pg + k < n; k++)
            busy[(d->pg + k) >> 3] |= (uint8_t)(1u << ((d->pg + k) & 7));
    }
    for (size_t i = 0; i < w->pool.n; i++)
        for (uint64_t k = 0; k < w->pool.v[i].n && w->pool.v[i].pg + k < n; k++)
            busy[(w->pool.v[i].pg + k) >> 3] |= (uint8_t)(1u << ((w->pool.v[i].pg + k) & 7));
    w->freed.n = 0;
    int rc = STRATA_OK;
    for (pgno_t pg = 1; pg < n && rc == STRATA_OK; pg++)
        if (!(busy[pg >> 3] & (1u << (pg & 7)))) rc = vec_push(&w->freed, pg, 1);
    free(busy);
    return rc;
}

/* ---- compaction support ---- */

int bt_wtx_take_all(bt_wtx *w) {
    while (!w->scan_done) {
        int rc = take_entry(w);
        if (rc) return rc;
    }
    return STRATA_OK;
}

void bt_wtx_low_first(bt_wtx *w) { w->low_first = 1; }

uint64_t bt_wtx_pool_pages(const bt_wtx *w) {
    uint64_t n = 0;
    for (size_t i = 0; i < w->pool.n; i++) n += w->pool.v[i].n;
    return n;
}

uint64_t bt_wtx_shrink(bt_wtx *w) {
    if (w->pool.n) qsort(w->pool.v, w->pool.n, sizeof(ext), cmp_ext);
    size_t k = 0;                                /* coalesce */
    for (size_t i = 1; i < w->pool.n; i++) {
        if (w->pool.v[k].pg + w->pool.v[k].n == w->pool.v[i].pg) w->pool.v[k].n += w->pool.v[i].n;
        else w->pool.v[++k] = w->pool.v[i];
    }
    if (w->pool.n) w->pool.n = k + 1;
    while (w->pool.n && w->pool.v[w->pool.n - 1].pg + w->pool.v[w->pool.n - 1].n == w->page_count) {
        w->page_count = w->pool.v[w->pool.n - 1].pg;
        w->pool.n--;
    }
    return w->page_count;
}

