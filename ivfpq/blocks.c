/* ivfpq/blocks.c - read-modify-write of posting blocks in a write transaction:
 * find the block of (cluster, id), merge sorted new entries into it, split it
 * when it exceeds block_cap, remove one entry; and the raw-vector lookup by
 * (cluster, id) for strata_ivf_get.
 * Invariants (ivfpq_int.h (2)) hold after every exported call that returns
 * STRATA_OK: blocks of a cluster have disjoint increasing id ranges, keyed by
 * their first id. Block bytes are copied out before any write, so no slice
 * into the map is used after the tree changes.
 */
#include <stdlib.h>
#include <string.h>

#include "blocks.h"

void ivf_elist_free(ivf_elist *l)
{
    free(l->ids); free(l->attrs); free(l->codes); free(l->terms); free(l->raw);
    memset(l, 0, sizeof *l);
}

int ivf_elist_reserve(ivf_elist *l, uint32_t n, const ivf_blayout *lay)
{
    if (n <= l->cap) return STRATA_OK;
    uint64_t *ids = realloc(l->ids, n * sizeof *ids);
    if (ids) l->ids = ids;
    uint64_t *at = realloc(l->attrs, n * sizeof *at);
    if (at) l->attrs = at;
    uint8_t *co = realloc(l->codes, (size_t)n * lay->m);
    if (co) l->codes = co;
    float *te = realloc(l->terms, n * sizeof *te);
    if (te) l->terms = te;
    float *raw = NULL;
    if (lay->raw_dim && (raw = realloc(l->raw, (size_t)n * lay->raw_dim * sizeof *raw)))
        l->raw = raw;
    if (!ids || !at || !co || !te || (lay->raw_dim && !raw)) return STRATA_ENOMEM;
    l->cap = n;
    return STRATA_OK;
}

void ivf_elist_copy(ivf_elist *dst, uint32_t k, const ivf_elist *src, uint32_t j,
                    const ivf_blayout *lay)
{
    dst->ids[k] = src->ids[j];
    dst->attrs[k] = src->attrs[j];
    dst->terms[k] = src->terms[j];
    memcpy(dst->codes + (size_t)k * lay->m, src->codes + (size_t)j * lay->m, lay->m);
    if (lay->raw_dim)
        memcpy(dst->raw + (size_t)k * lay->raw_dim, src->raw + (size_t)j * lay->raw_dim,
               lay->raw_dim * sizeof *dst->raw);
}

static float f32_get(const uint8_t *p)
{
    uint32_t u = ivf_le32_get(p);
    float f;
    memcpy(&f, &u, 4);
    return f;
}

static void f32_put(uint8_t *p, float f)
{
    uint32_t u;
    memcpy(&u, &f, 4);
    ivf_le32_put(p, u);
}

/* Append the entries of a stored block view (codes transposed back to rows). */
static int elist_add_block(ivf_elist *l, const ivf_block *b, const ivf_blayout *lay)
{
    uint32_t m = lay->m;
    int rc = ivf_elist_reserve(l, l->n + b->n, lay);
    if (rc != STRATA_OK) return rc;
    for (uint32_t i = 0; i < b->n; i++) {
        uint32_t k = l->n + i;
        l->ids[k] = ivf_le64_get(b->ids + 8 * (size_t)i);
        l->attrs[k] = b->attrs ? ivf_le64_get(b->attrs + 8 * (size_t)i) : 0;
        l->terms[k] = b->terms ? f32_get(b->terms + 4 * (size_t)i) : 0.0f;
        for (uint32_t j = 0; j < m; j++) l->codes[(size_t)k * m + j] = b->codes[(size_t)j * b->n + i];
        if (lay->raw_dim)
            vec_f32_get(l->raw + (size_t)k * lay->raw_dim, b->raw + 4 * (size_t)i * lay->raw_dim,
                        lay->raw_dim);
        if (i > 0 && l->ids[k] <= l->ids[k - 1]) return STRATA_ECORRUPT;
    }
    l->n += b->n;
    return STRATA_OK;
}

/* Write entries [a, b) of l as one block of cluster c. */
static int block_write(strata_ivf *ix, uint32_t c, const ivf_elist *l, uint32_t a, uint32_t b,
                       uint8_t *buf)
{
    const ivf_blayout *lay = &ix->lay;
    uint32_t n = b - a, m = lay->m;
    size_t len = ivf_block_size(lay, n);
    memset(buf, 0, len);                                /* header and pad bytes */
    buf[BLK_OFF_VERSION] = (uint8_t)IVF_VERSION;
    buf[BLK_OFF_FLAGS] = (uint8_t)((lay->attr ? BLK_F_ATTR : 0) | (lay->term ? BLK_F_TERM : 0) |
                                   (lay->raw_dim ? BLK_F_RAW : 0));
    buf[BLK_OFF_N] = (uint8_t)n;
    buf[BLK_OFF_N + 1] = (uint8_t)(n >> 8);
    ivf_le32_put(buf + BLK_OFF_CLUSTER, c);
    ivf_le32_put(buf + BLK_OFF_M, m);
    ivf_le32_put(buf + BLK_OFF_DIM, lay->raw_dim);
    uint8_t *p = buf + BLK_HDR;
    for (uint32_t i = 0; i < n; i++) ivf_le64_put(p + 8 * (size_t)i, l->ids[a + i]);
    p += 8 * (size_t)n;
    if (lay->attr) {
        for (uint32_t i = 0; i < n; i++) ivf_le64_put(p + 8 * (size_t)i, l->attrs[a + i]);
        p += 8 * (size_t)n;
    }
    if (lay->term) {
        for (uint32_t i = 0; i < n; i++) f32_put(p + 4 * (size_t)i, l->terms[a + i]);
        p += 4 * (size_t)n;
    }
    for (uint32_t j = 0; j < m; j++)
        for (uint32_t i = 0; i < n; i++) p[(size_t)j * n + i] = l->codes[(size_t)(a + i) * m + j];
    if (lay->raw_dim)
        vec_f32_put(buf + ivf_block_raw_off(lay, n), l->raw + (size_t)a * lay->raw_dim,
                    (size_t)n * lay->raw_dim);
    uint8_t key[LIST_KEY_LEN];
    ivf_list_key(key, c, l->ids[a]);
    return strata_put(ix->t_lists, (strata_slice){key, LIST_KEY_LEN}, (strata_slice){buf, len});
}

/* Store l (sorted ids) as blocks of cluster c. append: fill blocks to the
 * cap and leave the remainder last (sequential loads stay dense); otherwise
 * split evenly. */
int ivf_blocks_store(strata_ivf *ix, uint32_t c, const ivf_elist *l, int append)
{
    uint32_t cap = ix->cfg.block_cap;
    if (l->n == 0) return STRATA_OK;
    uint32_t nb = (l->n + cap - 1) / cap;
    uint8_t *buf = malloc(ivf_block_size(&ix->lay, cap));
    if (!buf) return STRATA_ENOMEM;
    int rc = STRATA_OK;
    uint32_t a = 0;
    for (uint32_t k = 0; k < nb && rc == STRATA_OK; k++) {
        uint32_t len = append ? (l->n - a < cap ? l->n - a : cap)
                              : (l->n - a + (nb - k) - 1) / (nb - k);
        rc = block_write(ix, c, l, a, a + len, buf);
        a += len;
    }
    free(buf);
    return rc;
}

/* Locate the block of cluster c that should hold id: the last block with
 * first id <= id, else the cluster's first block. Fills *found (0: cluster
 * empty), the block's entries appended to l, its first id, and the first id
 * of the next block of c (*has_next). */
int ivf_block_find(strata_ivf *ix, uint32_t c, uint64_t id, ivf_elist *l, int *found,
                   uint64_t *first, int *has_next, uint64_t *next_first)
{
    strata_cursor *cur = NULL;
    uint8_t key[LIST_KEY_LEN];
    strata_slice k, v;
    int rc = strata_cursor_open(ix->t_lists, &cur);
    if (rc != STRATA_OK) return rc;
    *found = 0;
    *has_next = 0;
    ivf_list_key(key, c, id);
    rc = strata_cursor_seek_le(cur, (strata_slice){key, LIST_KEY_LEN});
    if (rc == STRATA_OK && (rc = strata_cursor_get(cur, &k, &v)) == STRATA_OK &&
        (k.len != LIST_KEY_LEN || ivf_be32_get(k.data) != c)) rc = STRATA_NOTFOUND;
    if (rc == STRATA_NOTFOUND) {                      /* no block <= id: first of c */
        ivf_list_key(key, c, 0);
        rc = strata_cursor_seek(cur, (strata_slice){key, LIST_KEY_LEN});
        if (rc == STRATA_OK && (rc = strata_cursor_get(cur, &k, &v)) == STRATA_OK &&
            (k.len != LIST_KEY_LEN || ivf_be32_get(k.data) != c)) rc = STRATA_NOTFOUND;
    }
    if (rc == STRATA_NOTFOUND) { rc = STRATA_OK; goto out; }
    if (rc != STRATA_OK) goto out;
    ivf_block b;
    rc = ivf_block_view(v.data, v.len, &ix->lay, ix->cfg.block_cap, c, &b);
    if (rc == STRATA_OK && ivf_le64_get(b.ids) != ivf_be64_get((const uint8_t *)k.data + 4))
        rc = STRATA_ECORRUPT;
    if (rc != STRATA_OK || (rc = elist_add_block(l, &b, &ix->lay)) != STRATA_OK) goto out;
    *found = 1;
    *first = ivf_be64_get((const uint8_t *)k.data + 4);
    rc = strata_cursor_next(cur);
    if (rc == STRATA_OK && (rc = strata_cursor_get(cur, &k, &v)) == STRATA_OK &&
        k.len == LIST_KEY_LEN && ivf_be32_get(k.data) == c) {
        *has_next = 1;
        *next_first = ivf_be64_get((const uint8_t *)k.data + 4);
    }
    if (rc == STRATA_NOTFOUND) rc = STRATA_OK;
out:
    strata_cursor_close(cur);
    return rc;
}

int ivf_block_del_key(strata_ivf *ix, uint32_t c, uint64_t first)
{
    uint8_t key[LIST_KEY_LEN];
    ivf_list_key(key, c, first);
    int rc = strata_del(ix->t_lists, (strata_slice){key, LIST_KEY_LEN});
    return rc == STRATA_NOTFOUND ? STRATA_ECORRUPT : rc;
}

int ivf_block_remove(strata_ivf *ix, uint32_t c, uint64_t id)
{
    ivf_elist l = {0};
    int found, has_next;
    uint64_t first = 0, nf = 0;
    int rc = ivf_block_find(ix, c, id, &l, &found, &first, &has_next, &nf);
    if (rc != STRATA_OK) goto out;
    uint32_t i = 0;
    while (i < l.n && l.ids[i] != id) i++;
    if (!found || i == l.n) { rc = STRATA_ECORRUPT; goto out; }   /* invariant (3) */
    for (uint32_t j = i; j + 1 < l.n; j++) ivf_elist_copy(&l, j, &l, j + 1, &ix->lay);
    l.n--;
    if (i == 0 && (rc = ivf_block_del_key(ix, c, first)) != STRATA_OK) goto out;
    rc = ivf_blocks_store(ix, c, &l, 1);
out:
    ivf_elist_free(&l);
    return rc;
}

int ivf_block_raw_get(strata_ivf *ix, uint32_t c, uint64_t id, float *out)
{
    ivf_elist l = {0};
    int found, has_next;
    uint64_t first = 0, nf = 0;
    int rc = ivf_block_find(ix, c, id, &l, &found, &first, &has_next, &nf);
    if (rc == STRATA_OK) {
        uint32_t lo = 0, hi = l.n;                      /* first index with ids >= id */
        while (lo < hi) {
            uint32_t mid = lo + (hi - lo) / 2;
            if (l.ids[mid] < id) lo = mid + 1; else hi = mid;
        }
        if (!found || lo == l.n || l.ids[lo] != id || !l.raw) rc = STRATA_ECORRUPT;  /* (3) */
        else memcpy(out, l.raw + (size_t)lo * ix->lay.raw_dim, ix->lay.raw_dim * sizeof *out);
    }
    ivf_elist_free(&l);
    return rc;
}
