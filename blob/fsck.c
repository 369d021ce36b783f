/* blob/fsck.c - strata_blob_check: recount the blob tables and compare.
 * Pass 1 walks every finished blob (blob:meta) and pending blob
 * (blob:pending) and its chunk list, counting references per chunk hash in a
 * hash map; pass 2 walks blob:chunks and compares each reference record's
 * count, the chunk's data row and its length (and, when asked, its SHA-256);
 * then the counters row, the table
 * sizes (so orphan rows show) and the mirrored tag and edge rows are checked;
 * last the embeddings both ways: every blob:embed row has its vector in the
 * vector table it names, and every row of every blob:vec:<dim> table has an
 * index row naming that dimension.
 * Read-only; memory O(distinct chunks). Invariants checked: blob_int.h (2)-(6). */
#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>

#include "blob_int.h"

typedef struct shamap { uint8_t *keys; uint64_t *counts; size_t cap, n; } shamap;

typedef struct ck {
    strata_txn   *txn;
    int           hash, bad, err;
    void        (*report)(void *ctx, const char *msg);
    void         *ctx;
    strata_table *t[BT_COUNT];   /* NULL when the table does not exist */
    shamap        refs;
    uint64_t      next_id;          /* from the counters: every id is below it */
    uint64_t      clist_rows, logical, n_blobs, n_pending;
    uint64_t      n_data, n_refs;   /* blob:chunks rows of each kind */
    uint64_t      stored;           /* sum of the reference records' lengths */
} ck;

static void problem(ck *c, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static void problem(ck *c, const char *fmt, ...) {
    char msg[256];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(msg, sizeof msg, fmt, ap);
    va_end(ap);
    c->bad = 1;
    if (c->report) c->report(c->ctx, msg);
}

static size_t sha_slot(const uint8_t *sha, size_t cap) { return (size_t)le64_get(sha) & (cap - 1); }

/* Add n references to sha. */
static int shamap_add(shamap *m, const uint8_t *sha, uint64_t n) {
    if ((m->n + 1) * 2 > m->cap) {
        size_t ncap = m->cap ? m->cap * 2 : 256;
        uint8_t *k = calloc(ncap, SHA_LEN);
        uint64_t *v = calloc(ncap, sizeof *v);
        if (!k || !v) { free(k); free(v); return STRATA_ENOMEM; }
        for (size_t i = 0; i < m->cap; i++) {
            if (!m->counts[i]) continue;
            size_t j = sha_slot(m->keys + i * SHA_LEN, ncap);
            while (v[j]) j = (j + 1) & (ncap - 1);
            memcpy(k + j * SHA_LEN, m->keys + i * SHA_LEN, SHA_LEN);
            v[j] = m->counts[i];
        }
        free(m->keys);
        free(m->counts);
        m->keys = k;
        m->counts = v;
        m->cap = ncap;
    }
    size_t j = sha_slot(sha, m->cap);
    while (m->counts[j] && memcmp(m->keys + j * SHA_LEN, sha, SHA_LEN)) j = (j + 1) & (m->cap - 1);
    if (!m->counts[j]) { memcpy(m->keys + j * SHA_LEN, sha, SHA_LEN); m->n++; }
    m->counts[j] += n;
    return STRATA_OK;
}

static uint64_t shamap_get(const shamap *m, const uint8_t *sha) {
    if (!m->cap) return 0;
    size_t j = sha_slot(sha, m->cap);
    while (m->counts[j]) {
        if (!memcmp(m->keys + j * SHA_LEN, sha, SHA_LEN)) return m->counts[j];
        j = (j + 1) & (m->cap - 1);
    }
    return 0;
}

/* Count one blob's chunk list; *size and *n get its total length and rows. */
typedef struct list_walk { ck *c; uint64_t id, off, n; } list_walk;

static int list_row(void *ctx, strata_slice k, strata_slice v) {
    list_walk *w = ctx;
    if (k.len != CLIST_KEY || v.len != CLIST_VAL) { problem(w->c, "blob %llu: malformed chunk-list row",
                                                           (unsigned long long)w->id); return STRATA_OK; }
    if (be64_get((const uint8_t *)k.data + 8) != w->off)
        problem(w->c, "blob %llu: chunk at offset %llu, expected %llu", (unsigned long long)w->id,
                (unsigned long long)be64_get((const uint8_t *)k.data + 8), (unsigned long long)w->off);
    w->off += le32_get((const uint8_t *)v.data + SHA_LEN);
    w->n++;
    w->c->clist_rows++;
    return shamap_add(&w->c->refs, v.data, 1);
}

static int walk_list(ck *c, uint64_t id, uint64_t *size, uint64_t *n) {
    uint8_t pre[8];
    list_walk w = { c, id, 0, 0 };
    be64_put(pre, id);
    int rc = c->t[BT_CLIST] ? blob_scan_prefix(c->t[BT_CLIST], pre, 8, list_row, &w) : STRATA_OK;
    *size = w.off;
    *n = w.n;
    return rc;
}

static int has_key(ck *c, int which, const uint8_t *k, size_t len) {
    strata_slice v;
    if (!c->t[which]) return 0;
    int rc = strata_get(c->t[which], blob_sl(k, len), &v);
    if (rc && rc != STRATA_NOTFOUND) c->err = rc;
    return rc == STRATA_OK;
}

static int meta_row(void *ctx, strata_slice k, strata_slice v) {
    ck *c = ctx;
    blob_meta m;
    uint64_t size, n;
    uint8_t key[1 + STRATA_BLOB_MAX_META + 8], tk[16];
    if (k.len != 8) { problem(c, "blob:meta: malformed key"); return STRATA_OK; }
    uint64_t id = le64_get(k.data);
    if (id == 0 || id >= c->next_id)   /* the next writer would take it again */
        problem(c, "blob %llu: id not below the next id %llu", (unsigned long long)id,
                (unsigned long long)c->next_id);
    if (blob_meta_decode(v, &m)) { problem(c, "blob %llu: malformed record", (unsigned long long)id); return STRATA_OK; }
    c->n_blobs++;
    c->logical += m.size;
    if (!has_key(c, BT_NS, key, blob_lkey(key, m.ns, id)))
        problem(c, "blob %llu: no namespace row", (unsigned long long)id);
    be64_put(tk, m.hlc);
    be64_put(tk + 8, id);
    if (!has_key(c, BT_TIME, tk, 16)) problem(c, "blob %llu: no time row", (unsigned long long)id);
    uint8_t sk[SHA_LEN + 8];   /* blob:sha; a store from before the content index has no such table */
    memcpy(sk, m.sha, SHA_LEN);
    be64_put(sk + SHA_LEN, id);
    if (c->t[BT_SHA] && !has_key(c, BT_SHA, sk, sizeof sk))
        problem(c, "blob %llu: no content index row for its SHA-256", (unsigned long long)id);
    int rc = walk_list(c, id, &size, &n);
    if (rc) return rc;
    if (size != m.size || n != m.n_chunks)
        problem(c, "blob %llu: chunk list holds %llu bytes in %llu chunks, record says %llu in %llu",
                (unsigned long long)id, (unsigned long long)size, (unsigned long long)n,
                (unsigned long long)m.size, (unsigned long long)m.n_chunks);
    return c->err;
}

static int pending_row(void *ctx, strata_slice k, strata_slice v) {
    ck *c = ctx;
    uint64_t size, n;
    if (k.len != 8 || v.len != 8) { problem(c, "blob:pending: malformed row"); return STRATA_OK; }
    c->n_pending++;
    if (le64_get(k.data) == 0 || le64_get(k.data) >= c->next_id)
        problem(c, "pending blob %llu: id not below the next id %llu", (unsigned long long)le64_get(k.data),
                (unsigned long long)c->next_id);
    if (has_key(c, BT_META, k.data, 8))
        problem(c, "blob %llu: both pending and finished", (unsigned long long)le64_get(k.data));
    return c->err ? c->err : walk_list(c, le64_get(k.data), &size, &n);
}

/* One row of blob:chunks: data rows are counted (and found again from their
 * reference record); a reference record is compared with the chunk lists'
 * count and its data row. */
static int chunk_row(void *ctx, strata_slice k, strata_slice v) {
    ck *c = ctx;
    strata_slice data;
    uint8_t sha[SHA_LEN], dk[CHUNK_KEY];
    const uint8_t *key = k.data;
    if (k.len != CHUNK_KEY || key[SHA_LEN] > CK_REFS) { problem(c, "blob:chunks: malformed key"); return STRATA_OK; }
    if (key[SHA_LEN] == CK_DATA) { c->n_data++; return STRATA_OK; }
    c->n_refs++;
    if (v.len != REFS_VAL) { problem(c, "blob:chunks: malformed reference record"); return STRATA_OK; }
    uint64_t want = shamap_get(&c->refs, key), count = le64_get(v.data);
    uint32_t len = le32_get((const uint8_t *)v.data + 8);
    c->stored += len;
    if (count != want)
        problem(c, "chunk %02x%02x%02x%02x...: count %llu, %llu references", key[0], key[1], key[2], key[3],
                (unsigned long long)count, (unsigned long long)want);
    blob_ckey(dk, key, CK_DATA);
    int rc = strata_get(c->t[BT_CHUNKS], blob_sl(dk, CHUNK_KEY), &data);
    if (rc == STRATA_NOTFOUND) { problem(c, "chunk with a count but no bytes"); return STRATA_OK; }
    if (rc) return rc;
    if (data.len != len) problem(c, "chunk of %zu bytes recorded as %u", data.len, len);
    else if (c->hash && (rc = blob_sha256(data.data, data.len, sha)) == STRATA_OK && memcmp(sha, key, SHA_LEN))
        problem(c, "chunk whose SHA-256 does not match its key");
    return rc;
}

static uint64_t tlen(ck *c, int which) {
    uint64_t n = 0;
    if (c->t[which] && strata_len(c->t[which], &n)) c->err = STRATA_ECORRUPT;
    return n;
}

/* Mirrored rows: tags (tag, id) <-> (id, tag); edges out <-> in. */
static int tag_row(void *ctx, strata_slice k, strata_slice v) {
    (void)v;
    ck *c = ctx;
    const uint8_t *p = k.data;
    uint8_t mk[8 + STRATA_BLOB_MAX_META];
    if (k.len < 10 || (size_t)p[0] + 9 != k.len) { problem(c, "blob:tags: malformed key"); return STRATA_OK; }
    uint64_t id = be64_get(p + 1 + p[0]);
    be64_put(mk, id);
    memcpy(mk + 8, p + 1, p[0]);
    if (!has_key(c, BT_BTAGS, mk, 8 + (size_t)p[0])) problem(c, "tag row without its mirror");
    le64_put(mk, id);
    if (!has_key(c, BT_META, mk, 8))
        problem(c, "tag on unknown blob %llu", (unsigned long long)id);
    return c->err;
}

static int edge_row(void *ctx, strata_slice k, strata_slice v) {
    ck *c = ctx;
    const uint8_t *p = k.data;
    uint8_t mk[EDGE_KEY], ik[8];
    if (k.len != EDGE_KEY) { problem(c, "blob:edges_out: malformed key"); return STRATA_OK; }
    if (p[16] < STRATA_BLOB_DERIVED_FROM || p[16] > STRATA_BLOB_SUPERSEDES || !memcmp(p, p + 8, 8) ||
        v.len > STRATA_BLOB_MAX_CTX)
        problem(c, "edge %llu -> %llu: bad relation %u, self edge or context too long",
                (unsigned long long)be64_get(p), (unsigned long long)be64_get(p + 8), p[16]);
    memcpy(mk, p + 8, 8);
    memcpy(mk + 8, p, 8);
    mk[16] = p[16];
    if (!has_key(c, BT_EIN, mk, EDGE_KEY)) problem(c, "edge without its mirror");
    for (int side = 0; side < 2; side++) {
        le64_put(ik, be64_get(p + 8 * side));
        if (!has_key(c, BT_META, ik, 8))
            problem(c, "edge names unknown blob %llu", (unsigned long long)be64_get(p + 8 * side));
    }
    return c->err;
}

/* An index row (id -> dim): the blob exists, the value is a dimension and
 * the vector table of that dimension holds the blob's vector. */
static int embed_row(void *ctx, strata_slice k, strata_slice v) {
    ck *c = ctx;
    strata_table *t;
    strata_slice vv;
    uint32_t dim;
    if (k.len != 8 || !has_key(c, BT_META, k.data, 8)) problem(c, "embedding of an unknown blob");
    if (k.len != 8 || blob_embed_decode(v, &dim)) { problem(c, "malformed embedding index row"); return c->err; }
    unsigned long long id = (unsigned long long)le64_get(k.data);
    int rc = blob_vec_tab(c->txn, dim, 0, &t);
    if (rc == STRATA_NOTFOUND || rc == STRATA_ECORRUPT) {
        problem(c, "blob %llu: embedding of dimension %u, but " BLOB_VEC_PREFIX "%u is %s", id, dim, dim,
                rc == STRATA_NOTFOUND ? "missing" : "not a vector table of that dimension");
        return c->err;
    }
    if (rc == STRATA_OK) rc = strata_get(t, k, &vv);
    if (rc == STRATA_NOTFOUND) { problem(c, "blob %llu: embedding without its vector", id); return c->err; }
    return rc ? rc : c->err;
}

/* A row of a vector table: its id's index row names this dimension, and the
 * value is that many finite f32 (the engine checks on put; this checks the
 * stored bytes). */
typedef struct vec_walk { ck *c; uint32_t dim; } vec_walk;

static int vec_row(void *ctx, strata_slice k, strata_slice v) {
    vec_walk *w = ctx;
    strata_slice iv;
    uint32_t dim = 0;
    if (k.len != 8 || v.len != (size_t)w->dim * 4) {
        problem(w->c, BLOB_VEC_PREFIX "%u: malformed row", w->dim);
        return STRATA_OK;
    }
    for (uint32_t i = 0; i < w->dim; i++) {
        uint32_t bits = le32_get((const uint8_t *)v.data + 4 * i);
        float f;
        memcpy(&f, &bits, 4);
        if (!isfinite(f)) { problem(w->c, BLOB_VEC_PREFIX "%u: a vector that is not finite", w->dim); break; }
    }
    int rc = w->c->t[BT_EMBED] ? strata_get(w->c->t[BT_EMBED], k, &iv) : STRATA_NOTFOUND;
    if (rc && rc != STRATA_NOTFOUND) return rc;
    if (rc == STRATA_NOTFOUND || blob_embed_decode(iv, &dim) || dim != w->dim)
        problem(w->c, "blob %llu: vector in " BLOB_VEC_PREFIX "%u without an index row of that dimension",
                (unsigned long long)le64_get(k.data), w->dim);
    return STRATA_OK;
}

/* Names of the tables under BLOB_VEC_PREFIX (malloc'd, the caller frees). */
typedef struct vec_names { char **v; size_t n; int err; } vec_names;

static int vec_name_row(void *ctx, const strata_table_info *in) {
    vec_names *l = ctx;
    if (strncmp(in->name, BLOB_VEC_PREFIX, sizeof BLOB_VEC_PREFIX - 1)) return 0;
    char **p = realloc(l->v, (l->n + 1) * sizeof *p);
    if (!p) { l->err = STRATA_ENOMEM; return 1; }
    l->v = p;
    if (!(l->v[l->n] = strdup(in->name))) { l->err = STRATA_ENOMEM; return 1; }
    l->n++;
    return 0;
}

/* Every table named like a vector table: the name is a dimension, the table
 * a vector table of it, and each row is indexed (embed_row did the reverse). */
static int check_vec_tables(ck *c) {
    vec_names l = { NULL, 0, STRATA_OK };
    int rc = strata_table_list(c->txn, 0, vec_name_row, &l);
    if (rc == 1) rc = l.err;
    for (size_t i = 0; rc == STRATA_OK && i < l.n; i++) {
        strata_table *t;
        vec_walk w = { c, blob_vec_dim_of(l.v[i]) };
        if (!w.dim) { problem(c, "%s: not a dimension", l.v[i]); continue; }
        rc = blob_vec_tab(c->txn, w.dim, 0, &t);
        if (rc == STRATA_ECORRUPT) {
            problem(c, "%s: not a vector table of that dimension", l.v[i]);
            rc = STRATA_OK;
            continue;
        }
        if (rc == STRATA_OK) rc = blob_scan_prefix(t, NULL, 0, vec_row, &w);
    }
    for (size_t i = 0; i < l.n; i++) free(l.v[i]);
    free(l.v);
    return rc ? rc : c->err;
}

static void check_counts(ck *c) {
    uint64_t st[ST_COUNT];
    int rc = blob_stats_load(c->txn, st);
    if (rc) { c->err = rc; return; }
    uint64_t n_chunks = c->n_refs, stored = c->stored;
    for (size_t i = 0; i < c->refs.cap && c->t[BT_CHUNKS]; i++) {
        uint8_t rk[CHUNK_KEY];
        strata_slice v;
        if (!c->refs.counts[i]) continue;
        blob_ckey(rk, c->refs.keys + i * SHA_LEN, CK_REFS);
        if (strata_get(c->t[BT_CHUNKS], blob_sl(rk, CHUNK_KEY), &v)) {
            problem(c, "a chunk list names a chunk that is not stored");
            break;
        }
    }
    if (!c->t[BT_CHUNKS] && c->refs.n) problem(c, "a chunk list names a chunk that is not stored");
    if (n_chunks != c->refs.n) problem(c, "%llu chunks stored, %zu referenced",
                                       (unsigned long long)n_chunks, c->refs.n);
    if (c->n_data != c->n_refs) problem(c, "blob:chunks: %llu data rows, %llu reference records",
                                        (unsigned long long)c->n_data, (unsigned long long)c->n_refs);
    if (tlen(c, BT_CLIST) != c->clist_rows) problem(c, "chunk-list rows of no blob");
    if (tlen(c, BT_NS) != c->n_blobs || tlen(c, BT_TIME) != c->n_blobs)
        problem(c, "namespace or time rows of no blob");
    if (c->t[BT_SHA] && tlen(c, BT_SHA) != c->n_blobs) problem(c, "content index rows of no blob");
    if (tlen(c, BT_TAGS) != tlen(c, BT_BTAGS)) problem(c, "tag rows not mirrored");
    if (tlen(c, BT_EOUT) != tlen(c, BT_EIN)) problem(c, "edge rows not mirrored");
    if (st[ST_N_BLOBS] != c->n_blobs || st[ST_LOGICAL] != c->logical || st[ST_N_CHUNKS] != n_chunks ||
        st[ST_STORED] != stored || st[ST_N_PENDING] != c->n_pending)
        problem(c, "counters (blobs %llu, bytes %llu, chunks %llu, stored %llu, pending %llu) differ from"
                " the tables (%llu, %llu, %llu, %llu, %llu)", (unsigned long long)st[ST_N_BLOBS],
                (unsigned long long)st[ST_LOGICAL], (unsigned long long)st[ST_N_CHUNKS],
                (unsigned long long)st[ST_STORED], (unsigned long long)st[ST_N_PENDING],
                (unsigned long long)c->n_blobs, (unsigned long long)c->logical,
                (unsigned long long)n_chunks, (unsigned long long)stored, (unsigned long long)c->n_pending);
}

static int scan(ck *c, int which, int (*fn)(void *ctx, strata_slice k, strata_slice v)) {
    if (c->err || !c->t[which]) return c->err;
    int rc = blob_scan_prefix(c->t[which], NULL, 0, fn, c);
    return rc ? rc : c->err;
}

int strata_blob_check(strata_txn *txn, int hash, void (*report)(void *ctx, const char *msg), void *ctx) {
    ck c;
    if (!txn) return STRATA_EINVAL;
    memset(&c, 0, sizeof c);
    c.txn = txn;
    c.hash = hash;
    c.report = report;
    c.ctx = ctx;
    uint64_t st[ST_COUNT];
    /* a counters row that does not load is reported by check_counts */
    c.next_id = blob_stats_load(txn, st) == STRATA_OK ? st[ST_NEXT_ID] : UINT64_MAX;
    int rc = STRATA_OK;
    for (int i = 0; i < BT_COUNT && rc == STRATA_OK; i++) {
        rc = blob_tab(txn, i, 0, &c.t[i]);
        if (rc == STRATA_NOTFOUND) { c.t[i] = NULL; rc = STRATA_OK; }
    }
    if (rc == STRATA_OK) rc = scan(&c, BT_META, meta_row);
    if (rc == STRATA_OK) rc = scan(&c, BT_PENDING, pending_row);
    if (rc == STRATA_OK) rc = scan(&c, BT_CHUNKS, chunk_row);
    if (rc == STRATA_OK) rc = scan(&c, BT_TAGS, tag_row);
    if (rc == STRATA_OK) rc = scan(&c, BT_EOUT, edge_row);
    if (rc == STRATA_OK) rc = scan(&c, BT_EMBED, embed_row);
    if (rc == STRATA_OK) rc = check_vec_tables(&c);
    if (rc == STRATA_OK) check_counts(&c);
    if (rc == STRATA_OK) rc = c.err;
    free(c.refs.keys);
    free(c.refs.counts);
    if (rc) return rc;
    return c.bad ? STRATA_ECORRUPT : STRATA_OK;
}
