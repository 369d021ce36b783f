/* blob/writer.c - streaming blob writer and whole-buffer put.
 * States (functions in brackets):
 *   OPEN --[strata_blob_write]--> OPEN --[strata_blob_writer_finish]--> freed
 *   OPEN --[a failed write]--> FAILED --[finish or abort: undo]--> freed
 *   OPEN/FAILED --[strata_blob_writer_abort: undo]--> freed
 * Invariants: (1) the blob id and a blob:pending row exist from begin to
 * finish; chunks are referenced and chunk-list rows written as soon as they
 * are cut, so memory stays bounded by 2 * max chunk; (2) buf[start, fill) holds
 * the bytes received but not cut, always fewer than max after a write returns;
 * (3) cut points depend only on content (blob_chunker_cut), so any split of
 * the same bytes into writes yields the same chunks; (4) undo releases the
 * chunk list and the pending row, leaving counts as before begin. */
#include <stdlib.h>

#include <openssl/evp.h>

#include "blob_int.h"

#define WRITER_MAGIC 0x424c4257u   /* "BLBW" */

enum { W_OPEN = 0, W_FAILED = 1 };

struct strata_blob_writer {
    uint32_t      magic;
    int           state;            /* W_OPEN or W_FAILED                     */
    strata_txn   *txn;              /* the caller's write transaction          */
    uint64_t      id, hlc;
    uint64_t      size;             /* bytes received                          */
    uint64_t      emitted;          /* bytes cut into chunks                   */
    uint64_t      n_chunks;
    blob_chunker  ck;
    uint8_t      *buf;              /* 2 * max bytes, allocated on first need  */
    size_t        cap, start, fill;
    EVP_MD_CTX   *full;             /* SHA-256 of the whole content            */
    blob_meta     meta;             /* ct, ns, label point into strs           */
    char         *strs;
};

static int copy_opts(strata_blob_writer *w, const strata_blob_opts *o) {
    const char *ct = o && o->content_type ? o->content_type : "";
    const char *ns = o && o->ns ? o->ns : "";
    const char *lab = o && o->label ? o->label : "";
    size_t cl = strlen(ct), nl = strlen(ns), ll = strlen(lab);
    if (cl > STRATA_BLOB_MAX_META || nl > STRATA_BLOB_MAX_META || ll > STRATA_BLOB_MAX_LABEL)
        return STRATA_EINVAL;
    if (!(w->strs = malloc(cl + nl + ll + 1))) return STRATA_ENOMEM;
    memcpy(w->strs, ct, cl);
    memcpy(w->strs + cl, ns, nl);
    memcpy(w->strs + cl + nl, lab, ll);
    w->meta.ct = blob_sl(w->strs, cl);
    w->meta.ns = blob_sl(w->strs + cl, nl);
    w->meta.label = blob_sl(w->strs + cl + nl, ll);
    return STRATA_OK;
}

static void writer_free(strata_blob_writer *w) {
    if (!w) return;
    EVP_MD_CTX_free(w->full);
    free(w->buf);
    free(w->strs);
    w->magic = 0;
    free(w);
}

/* Allocate the id, count the blob as pending and write its pending row. */
static int reserve(strata_blob_writer *w) {
    uint64_t st[ST_COUNT];
    uint8_t k[8], v[8];
    strata_table *t;
    int rc = blob_txn_hlc(w->txn, &w->hlc);
    if (rc || (rc = blob_stats_load(w->txn, st))) return rc;
    w->id = st[ST_NEXT_ID]++;
    st[ST_N_PENDING]++;
    if ((rc = blob_tab(w->txn, BT_PENDING, 1, &t))) return rc;
    le64_put(k, w->id);
    le64_put(v, w->hlc);
    if ((rc = strata_put(t, blob_sl(k, 8), blob_sl(v, 8)))) return rc;
    return blob_stats_store(w->txn, st);
}

int strata_blob_writer_begin(strata_txn *txn, const strata_blob_opts *opts, strata_blob_writer **out) {
    if (!txn || !out) return STRATA_EINVAL;
    strata_blob_writer *w = calloc(1, sizeof *w);
    if (!w) return STRATA_ENOMEM;
    w->magic = WRITER_MAGIC;
    w->txn = txn;
    int rc = blob_chunker_init(&w->ck, opts);
    if (rc || (rc = copy_opts(w, opts))) goto out;
    w->meta.flags = w->ck.fixed ? META_FLAG_FIXED : 0;
    rc = STRATA_ENOMEM;
    if (!(w->full = EVP_MD_CTX_new()) || !EVP_DigestInit_ex(w->full, EVP_sha256(), NULL)) goto out;
    if ((rc = reserve(w))) goto out;
    *out = w;
    w = NULL;
out:
    writer_free(w);
    return rc;
}

/* Store one chunk of the content: reference it and append its list row. */
static int emit(strata_blob_writer *w, const uint8_t *p, size_t n) {
    uint8_t sha[SHA_LEN], k[CLIST_KEY], v[CLIST_VAL];
    strata_table *t;
    int rc = blob_sha256(p, n, sha);
    if (rc || (rc = blob_chunk_ref(w->txn, sha, p, n))) return rc;
    if ((rc = blob_tab(w->txn, BT_CLIST, 1, &t))) return rc;
    be64_put(k, w->id);
    be64_put(k + 8, w->emitted);
    memcpy(v, sha, SHA_LEN);
    le32_put(v + SHA_LEN, (uint32_t)n);
    if ((rc = strata_put(t, blob_sl(k, sizeof k), blob_sl(v, sizeof v)))) return rc;
    w->emitted += n;
    w->n_chunks++;
    return STRATA_OK;
}

/* Cut and emit chunks from buf while at least max bytes are buffered (all of
 * them when final). */
static int drain(strata_blob_writer *w, int final) {
    while (w->fill > w->start && (final || w->fill - w->start >= w->ck.max)) {
        size_t cut = blob_chunker_cut(&w->ck, w->buf + w->start, w->fill - w->start);
        int rc = emit(w, w->buf + w->start, cut);
        if (rc) return rc;
        w->start += cut;
    }
    if (w->start == w->fill) w->start = w->fill = 0;
    return STRATA_OK;
}

/* Feed bytes: cut directly from p while nothing is buffered and at least max
 * bytes (or, when final, any bytes) remain; buffer the rest. */
static int feed(strata_blob_writer *w, const uint8_t *p, size_t len, int final) {
    int rc;
    while (len > 0) {
        if (w->fill == w->start && (final || len >= w->ck.max)) {
            size_t cut = blob_chunker_cut(&w->ck, p, len);
            if ((rc = emit(w, p, cut))) return rc;
            p += cut;
            len -= cut;
            continue;
        }
        if (!w->buf) {
            w->cap = 2 * (size_t)w->ck.max;
            if (!(w->buf = malloc(w->cap))) return STRATA_ENOMEM;
        }
        if (w->fill == w->cap) {   /* compact: fewer than max bytes move */
            memmove(w->buf, w->buf + w->start, w->fill - w->start);
            w->fill -= w->start;
            w->start = 0;
        }
        size_t take = w->cap - w->fill < len ? w->cap - w->fill : len;
        memcpy(w->buf + w->fill, p, take);
        w->fill += take;
        p += take;
        len -= take;
        if ((rc = drain(w, final))) return rc;
    }
    return STRATA_OK;
}

static int write_any(strata_blob_writer *w, const void *data, size_t len, int final) {
    if (!w || w->magic != WRITER_MAGIC || w->state != W_OPEN || (!data && len)) return STRATA_EINVAL;
    if (len == 0) return STRATA_OK;
    int rc = STRATA_ENOMEM;
    if (EVP_DigestUpdate(w->full, data, len)) rc = feed(w, data, len, final);
    if (rc) w->state = W_FAILED;
    else w->size += len;
    return rc;
}

int strata_blob_write(strata_blob_writer *w, const void *data, size_t len) {
    return write_any(w, data, len, 0);
}

/* Remove everything w wrote: chunk list (and chunks), pending row, count. */
static int undo(strata_blob_writer *w) {
    strata_table *t;
    uint8_t k[8];
    int rc = blob_chunks_release(w->txn, w->id);
    if (rc || (rc = blob_tab(w->txn, BT_PENDING, 1, &t))) return rc;
    le64_put(k, w->id);
    if ((rc = strata_del(t, blob_sl(k, 8)))) return rc;
    return blob_stats_add(w->txn, ST_N_PENDING, (uint64_t)-1);
}

/* Write the meta row and indexes, drop the pending row, update counters. */
static int record(strata_blob_writer *w) {
    uint8_t k[8], *val = NULL;
    size_t vlen;
    unsigned int n = 0;
    strata_table *t;
    uint64_t st[ST_COUNT];
    if (!EVP_DigestFinal_ex(w->full, w->meta.sha, &n) || n != SHA_LEN) return STRATA_ENOMEM;
    w->meta.size = w->size;
    w->meta.hlc = w->hlc;
    w->meta.n_chunks = w->n_chunks;
    int rc = blob_meta_encode(&w->meta, &val, &vlen);
    if (rc || (rc = blob_tab(w->txn, BT_META, 1, &t))) goto out;
    le64_put(k, w->id);
    if ((rc = strata_put(t, blob_sl(k, 8), blob_sl(val, vlen)))) goto out;
    if ((rc = blob_index_add(w->txn, w->id, w->meta.ns, w->hlc))) goto out;
    if ((rc = blob_tab(w->txn, BT_PENDING, 1, &t)) || (rc = strata_del(t, blob_sl(k, 8)))) goto out;
    if ((rc = blob_stats_load(w->txn, st))) goto out;
    st[ST_N_PENDING]--;
    st[ST_N_BLOBS]++;
    st[ST_LOGICAL] += w->size;
    rc = blob_stats_store(w->txn, st);
out:
    free(val);
    return rc;
}

int strata_blob_writer_finish(strata_blob_writer *w, uint64_t *id) {
    if (!w || w->magic != WRITER_MAGIC) return STRATA_EINVAL;
    int rc = w->state == W_OPEN ? drain(w, 1) : STRATA_EINVAL;
    if (rc == STRATA_OK && w->emitted != w->size) rc = STRATA_EINVAL;   /* cannot happen */
    if (rc == STRATA_OK) rc = record(w);
    if (rc == STRATA_OK && id) *id = w->id;
    if (rc) (void)undo(w);   /* if this fails too, the txn is poisoned: it must abort */
    writer_free(w);
    return rc;
}

void strata_blob_writer_abort(strata_blob_writer *w) {
    if (!w || w->magic != WRITER_MAGIC) return;
    (void)undo(w);
    writer_free(w);
}

void strata_blob_writer_free(strata_blob_writer *w) {
    if (!w || w->magic != WRITER_MAGIC) return;
    writer_free(w);
}

int strata_blob_put(strata_txn *txn, const strata_blob_opts *opts, const void *data, size_t len,
                    uint64_t *id) {
    strata_blob_writer *w;
    if (!txn || (!data && len)) return STRATA_EINVAL;
    int rc = strata_blob_writer_begin(txn, opts, &w);
    if (rc) return rc;
    if ((rc = write_any(w, data, len, 1))) {
        strata_blob_writer_abort(w);
        return rc;
    }
    return strata_blob_writer_finish(w, id);
}
