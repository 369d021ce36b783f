/* blob/index.c - the small index tables of finished blobs: namespaces
 * (blob:ns), the time index (blob:time), the content index (blob:sha) and
 * tags (blob:tags and its mirror blob:blobtags), with their listing and
 * lookup functions. docs/BLOBS.md has the keys.
 * Invariants: (1) every finished blob has exactly one blob:ns row and one
 * blob:time row, written by blob_index_add at writer finish, and, once
 * blob:sha exists, exactly one blob:sha row (a store recorded before the
 * content index existed has no blob:sha table until its first write that
 * needs one, which creates it with a row for every blob; lookups in such a
 * store scan blob:meta instead); (2) a tag row
 * (tag, id) exists iff its mirror (id, tag) does; (3) keys that must sort by
 * number hold big-endian integers, and variable-length names carry a length
 * byte first, so one name's rows form one contiguous key range. */
#include <stdlib.h>

#include "blob_int.h"

enum { LKEY_MAX = 1 + STRATA_BLOB_MAX_META + 8 };

size_t blob_lkey(uint8_t *k, strata_slice name, uint64_t id) {
    k[0] = (uint8_t)name.len;
    if (name.len) memcpy(k + 1, name.data, name.len);
    be64_put(k + 1 + name.len, id);
    return 1 + name.len + 8;
}

static void time_key(uint8_t k[16], uint64_t hlc, uint64_t id) {
    be64_put(k, hlc);
    be64_put(k + 8, id);
}

enum { SHA_KEY = SHA_LEN + 8 };

static void sha_key(uint8_t k[SHA_KEY], const uint8_t sha[SHA_LEN], uint64_t id) {
    memcpy(k, sha, SHA_LEN);
    be64_put(k + SHA_LEN, id);
}

/* The blob:sha keys of every finished blob, copied out of the map (the
 * puts that follow may move it). */
typedef struct sha_list { uint8_t *buf; size_t n, cap; } sha_list;

static int sha_collect(void *ctx, strata_slice k, strata_slice v) {
    sha_list *l = ctx;
    blob_meta m;
    if (k.len != 8 || blob_meta_decode(v, &m)) return STRATA_ECORRUPT;
    if (l->n == l->cap) {
        size_t cap = l->cap ? 2 * l->cap : 64;
        uint8_t *p = realloc(l->buf, cap * SHA_KEY);
        if (!p) return STRATA_ENOMEM;
        l->buf = p;
        l->cap = cap;
    }
    sha_key(l->buf + l->n++ * SHA_KEY, m.sha, le64_get(k.data));
    return STRATA_OK;
}

/* blob:sha for writing. In a store without it (recorded before the content
 * index existed) it is created here with a row for every finished blob;
 * failing half-way leaves txn abort-only, so a half-filled index is never
 * committed (invariant 1). */
static int sha_tab(strata_txn *txn, strata_table **t) {
    strata_table *mt;
    sha_list l = { NULL, 0, 0 };
    int rc = blob_tab(txn, BT_SHA, 0, t);
    if (rc != STRATA_NOTFOUND) return rc;
    rc = blob_tab(txn, BT_META, 0, &mt);
    if (rc == STRATA_OK) rc = blob_scan_prefix(mt, NULL, 0, sha_collect, &l);
    else if (rc == STRATA_NOTFOUND) rc = STRATA_OK;
    if (rc == STRATA_OK && (rc = blob_tab(txn, BT_SHA, 1, t)) == STRATA_OK)
        for (size_t i = 0; rc == STRATA_OK && i < l.n; i++)
            rc = blob_fail(txn, strata_put(*t, blob_sl(l.buf + i * SHA_KEY, SHA_KEY), blob_sl("", 0)));
    free(l.buf);
    return rc;
}

int blob_index_add(strata_txn *txn, uint64_t id, strata_slice ns, uint64_t hlc, const uint8_t sha[SHA_LEN]) {
    strata_table *t;
    uint8_t k[LKEY_MAX], tk[16], sk[SHA_KEY];
    int rc = blob_tab(txn, BT_NS, 1, &t);
    if (rc || (rc = strata_put(t, blob_sl(k, blob_lkey(k, ns, id)), blob_sl("", 0)))) return rc;
    if ((rc = blob_tab(txn, BT_TIME, 1, &t))) return rc;
    time_key(tk, hlc, id);
    if ((rc = strata_put(t, blob_sl(tk, 16), blob_sl("", 0))) || (rc = sha_tab(txn, &t))) return rc;
    sha_key(sk, sha, id);
    return strata_put(t, blob_sl(sk, SHA_KEY), blob_sl("", 0));
}

/* A store without blob:sha: the first blob in id order whose record holds sha. */
typedef struct sha_scan { const uint8_t *sha; uint64_t id; } sha_scan;

static int sha_match(void *ctx, strata_slice k, strata_slice v) {
    sha_scan *s = ctx;
    blob_meta m;
    if (k.len != 8 || blob_meta_decode(v, &m)) return STRATA_ECORRUPT;
    if (memcmp(m.sha, s->sha, SHA_LEN)) return STRATA_OK;
    s->id = le64_get(k.data);
    return STRATA_EEXIST;   /* found: stops the scan */
}

int strata_blob_find(strata_txn *txn, const uint8_t sha256[32], uint64_t *id) {
    strata_table *t;
    strata_cursor *c;
    strata_slice k, v;
    if (!txn || !sha256 || !id) return STRATA_EINVAL;
    int rc = blob_tab(txn, BT_SHA, 0, &t);
    if (rc == STRATA_NOTFOUND) {
        sha_scan s = { sha256, 0 };
        if ((rc = blob_tab(txn, BT_META, 0, &t))) return rc;   /* NOTFOUND: no blob at all */
        rc = blob_scan_prefix(t, NULL, 0, sha_match, &s);
        if (rc == STRATA_EEXIST) *id = s.id;
        return rc == STRATA_EEXIST ? STRATA_OK : rc == STRATA_OK ? STRATA_NOTFOUND : rc;
    }
    if (rc || (rc = strata_cursor_open(t, &c))) return rc;
    rc = strata_cursor_seek(c, blob_sl(sha256, SHA_LEN));
    if (rc == STRATA_OK) rc = strata_cursor_get(c, &k, &v);
    if (rc == STRATA_OK && (k.len < SHA_LEN || memcmp(k.data, sha256, SHA_LEN))) rc = STRATA_NOTFOUND;
    else if (rc == STRATA_OK && k.len != SHA_KEY) rc = STRATA_ECORRUPT;
    if (rc == STRATA_OK) *id = be64_get((const uint8_t *)k.data + SHA_LEN);
    strata_cursor_close(c);
    return rc;
}

/* Blob id's tags, copied from the mirror table into a packed list of
 * (u8 len, bytes): the deletes that follow would invalidate the map slices. */
typedef struct tag_list { uint8_t *buf; size_t len; } tag_list;

static int tags_collect(void *ctx, strata_slice k, strata_slice v) {
    (void)v;
    tag_list *l = ctx;
    size_t tl = k.len - 8;
    if (k.len <= 8 || tl > STRATA_BLOB_MAX_META) return STRATA_ECORRUPT;
    uint8_t *p = realloc(l->buf, l->len + 1 + tl);
    if (!p) return STRATA_ENOMEM;
    p[l->len] = (uint8_t)tl;
    memcpy(p + l->len + 1, (const uint8_t *)k.data + 8, tl);
    l->buf = p;
    l->len += 1 + tl;
    return STRATA_OK;
}

static int tags_remove_all(strata_txn *txn, uint64_t id) {
    strata_table *bt, *tt;
    uint8_t pre[8], hi[8], k[LKEY_MAX];
    tag_list l = { NULL, 0 };
    int rc = blob_tab(txn, BT_BTAGS, 1, &bt);
    if (rc || (rc = blob_tab(txn, BT_TAGS, 1, &tt))) return rc;
    be64_put(pre, id);
    rc = blob_scan_prefix(bt, pre, 8, tags_collect, &l);
    for (size_t i = 0; rc == STRATA_OK && i < l.len; i += 1 + l.buf[i]) {
        rc = strata_del(tt, blob_sl(k, blob_lkey(k, blob_sl(l.buf + i + 1, l.buf[i]), id)));
        if (rc == STRATA_NOTFOUND) rc = STRATA_ECORRUPT;   /* mirror without its row */
    }
    free(l.buf);
    if (rc) return rc;
    be64_put(hi, id + 1);
    strata_slice lo = blob_sl(pre, 8), h = blob_sl(hi, 8);
    return strata_del_range(bt, &lo, &h, 0, NULL);
}

int blob_index_remove(strata_txn *txn, uint64_t id, const blob_meta *m) {
    strata_table *t;
    uint8_t k[LKEY_MAX], tk[16], sk[SHA_KEY];
    size_t kl = blob_lkey(k, m->ns, id);    /* copy before the first write */
    time_key(tk, m->hlc, id);
    sha_key(sk, m->sha, id);
    int rc = blob_tab(txn, BT_NS, 1, &t);
    if (rc || (rc = strata_del(t, blob_sl(k, kl))))
        return rc == STRATA_NOTFOUND ? STRATA_ECORRUPT : rc;
    if ((rc = blob_tab(txn, BT_TIME, 1, &t)) || (rc = strata_del(t, blob_sl(tk, 16))))
        return rc == STRATA_NOTFOUND ? STRATA_ECORRUPT : rc;
    if ((rc = sha_tab(txn, &t)) || (rc = strata_del(t, blob_sl(sk, SHA_KEY))))
        return rc == STRATA_NOTFOUND ? STRATA_ECORRUPT : rc;
    return tags_remove_all(txn, id);
}

static int name_ok(const char *s, size_t min, size_t *len) {
    if (!s) return 0;
    *len = strlen(s);
    return *len >= min && *len <= STRATA_BLOB_MAX_META;
}

int strata_blob_tag_add(strata_txn *txn, uint64_t id, const char *tag) {
    strata_table *t;
    uint8_t k[LKEY_MAX], mk[8 + STRATA_BLOB_MAX_META];
    size_t tl;
    if (!txn || !name_ok(tag, 1, &tl)) return STRATA_EINVAL;
    int rc = blob_exists(txn, id);
    if (rc) return rc;
    if ((rc = blob_tab(txn, BT_TAGS, 1, &t))) return rc;
    if ((rc = strata_put(t, blob_sl(k, blob_lkey(k, blob_sl(tag, tl), id)), blob_sl("", 0)))) return rc;
    if ((rc = blob_tab(txn, BT_BTAGS, 1, &t))) return blob_fail(txn, rc);
    be64_put(mk, id);
    memcpy(mk + 8, tag, tl);
    return blob_fail(txn, strata_put(t, blob_sl(mk, 8 + tl), blob_sl("", 0)));
}

int strata_blob_tag_remove(strata_txn *txn, uint64_t id, const char *tag) {
    strata_table *t;
    uint8_t k[LKEY_MAX], mk[8 + STRATA_BLOB_MAX_META];
    size_t tl;
    if (!txn || !name_ok(tag, 1, &tl)) return STRATA_EINVAL;
    int rc = blob_exists(txn, id);
    if (rc) return rc;
    if ((rc = blob_tab(txn, BT_TAGS, 0, &t))) return rc;
    if ((rc = strata_del(t, blob_sl(k, blob_lkey(k, blob_sl(tag, tl), id))))) return rc;
    if ((rc = blob_tab(txn, BT_BTAGS, 1, &t))) return blob_fail(txn, rc);
    be64_put(mk, id);
    memcpy(mk + 8, tag, tl);
    rc = strata_del(t, blob_sl(mk, 8 + tl));
    return blob_fail(txn, rc == STRATA_NOTFOUND ? STRATA_ECORRUPT : rc);
}

typedef struct id_ctx { strata_blob_id_fn fn; void *ctx; } id_ctx;

/* The id is the last 8 bytes (BE) of every index key. */
static int id_tail(void *ctx, strata_slice k, strata_slice v) {
    (void)v;
    const id_ctx *c = ctx;
    if (k.len < 8) return STRATA_ECORRUPT;
    return c->fn(c->ctx, be64_get((const uint8_t *)k.data + k.len - 8));
}

/* List the ids under a (u8 len, name) prefix of table which. */
static int list_named(strata_txn *txn, int which, const char *name, size_t min,
                      strata_blob_id_fn fn, void *ctx) {
    strata_table *t;
    uint8_t pre[1 + STRATA_BLOB_MAX_META];
    size_t nl;
    if (!txn || !fn || !name_ok(name ? name : "", min, &nl)) return STRATA_EINVAL;
    int rc = blob_tab(txn, which, 0, &t);
    if (rc) return rc == STRATA_NOTFOUND ? STRATA_OK : rc;
    pre[0] = (uint8_t)nl;
    memcpy(pre + 1, name ? name : "", nl);
    id_ctx c = { fn, ctx };
    return blob_scan_prefix(t, pre, 1 + nl, id_tail, &c);
}

int strata_blob_list_by_tag(strata_txn *txn, const char *tag, strata_blob_id_fn fn, void *ctx) {
    if (!tag) return STRATA_EINVAL;
    return list_named(txn, BT_TAGS, tag, 1, fn, ctx);
}

int strata_blob_list_ns(strata_txn *txn, const char *ns, strata_blob_id_fn fn, void *ctx) {
    return list_named(txn, BT_NS, ns, 0, fn, ctx);
}

typedef struct tag_ctx { int (*fn)(void *ctx, strata_slice tag); void *ctx; } tag_ctx;

static int tag_tail(void *ctx, strata_slice k, strata_slice v) {
    (void)v;
    const tag_ctx *c = ctx;
    if (k.len <= 8) return STRATA_ECORRUPT;
    return c->fn(c->ctx, blob_sl((const uint8_t *)k.data + 8, k.len - 8));
}

int strata_blob_tags_of(strata_txn *txn, uint64_t id, int (*fn)(void *ctx, strata_slice tag),
                        void *ctx) {
    strata_table *t;
    uint8_t pre[8];
    if (!txn || !fn) return STRATA_EINVAL;
    int rc = blob_exists(txn, id);
    if (rc) return rc;
    rc = blob_tab(txn, BT_BTAGS, 0, &t);
    if (rc) return rc == STRATA_NOTFOUND ? STRATA_OK : rc;
    be64_put(pre, id);
    tag_ctx c = { fn, ctx };
    return blob_scan_prefix(t, pre, 8, tag_tail, &c);
}

static int first_id(void *ctx, uint64_t id) {
    *(uint64_t *)ctx = id;
    return 1;
}

int strata_blob_delete_ns(strata_txn *txn, const char *ns, uint64_t *n_deleted) {
    uint64_t n = 0;
    for (;;) {
        uint64_t id = 0;
        int rc = strata_blob_list_ns(txn, ns, first_id, &id);
        if (rc != 0 && rc != 1) return n ? blob_fail(txn, rc) : rc;
        if (rc == 0) break;
        if ((rc = strata_blob_delete(txn, id)))   /* listed but no record: a damaged row */
            return n ? blob_fail(txn, rc == STRATA_NOTFOUND ? STRATA_ECORRUPT : rc)
                     : rc == STRATA_NOTFOUND ? STRATA_ECORRUPT : rc;
        n++;
    }
    if (n_deleted) *n_deleted = n;
    return STRATA_OK;
}

int strata_blob_list_time(strata_txn *txn, uint64_t hlc_lo, uint64_t hlc_hi, strata_blob_id_fn fn,
                          void *ctx) {
    strata_table *t;
    strata_cursor *c;
    strata_slice k, v;
    uint8_t lo[8];
    if (!txn || !fn || hlc_lo > hlc_hi) return STRATA_EINVAL;
    int rc = blob_tab(txn, BT_TIME, 0, &t);
    if (rc) return rc == STRATA_NOTFOUND ? STRATA_OK : rc;
    if ((rc = strata_cursor_open(t, &c))) return rc;
    be64_put(lo, hlc_lo);
    for (rc = strata_cursor_seek(c, blob_sl(lo, 8)); rc == STRATA_OK; rc = strata_cursor_next(c)) {
        if ((rc = strata_cursor_get(c, &k, &v))) break;
        if (k.len != 16) { rc = STRATA_ECORRUPT; break; }
        if (be64_get(k.data) > hlc_hi) break;
        if ((rc = fn(ctx, be64_get((const uint8_t *)k.data + 8)))) { strata_cursor_close(c); return rc; }
    }
    strata_cursor_close(c);
    return rc == STRATA_NOTFOUND ? STRATA_OK : rc;
}
