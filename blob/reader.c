/* blob/reader.c - streaming reads: a reader with seek and read of any byte
 * range, one-shot strata_blob_read_at, and strata_blob_verify.
 * A read finds the chunk holding the position through the chunk list
 * (blob:chunklist, keyed (id BE, offset BE), so "the last row <= (id, pos)"
 * is the chunk) and copies from the chunk's bytes in the map; sequential
 * reads step the cursor instead of seeking. Nothing but copies of the chunk
 * list row is kept between calls, so a write elsewhere in the same write
 * transaction cannot leave the reader with a stale pointer.
 * Invariants: (1) pos <= size; (2) when `have`, [c_off, c_off + c_len) is
 * the chunk-list row the cursor is on; (3) with STRATA_BLOB_VERIFY no byte of
 * a chunk is returned before the chunk's SHA-256 was checked. */
#include <stdlib.h>

#include <openssl/evp.h>

#include "blob_int.h"

#define READER_MAGIC 0x424c4252u   /* "BLBR" */

struct strata_blob_reader {
    uint32_t       magic;
    unsigned       flags;
    strata_txn    *txn;
    uint64_t       id, size, pos;
    strata_table  *chunks;
    strata_cursor *cur;             /* on blob:chunklist                    */
    int            have, verified;  /* current chunk row known / hash checked */
    uint64_t       c_off;
    uint32_t       c_len;
    uint8_t        c_sha[SHA_LEN];
};

int strata_blob_reader_open(strata_txn *txn, uint64_t id, unsigned flags, strata_blob_reader **out) {
    blob_meta m;
    strata_table *cl;
    if (!txn || !out || (flags & ~STRATA_BLOB_VERIFY)) return STRATA_EINVAL;
    int rc = blob_meta_load(txn, id, &m);
    if (rc) return rc;
    strata_blob_reader *r = calloc(1, sizeof *r);
    if (!r) return STRATA_ENOMEM;
    r->magic = READER_MAGIC;
    r->flags = flags;
    r->txn = txn;
    r->id = id;
    r->size = m.size;
    if (m.size > 0) {
        if ((rc = blob_tab(txn, BT_CLIST, 0, &cl)) || (rc = blob_tab(txn, BT_CHUNKS, 0, &r->chunks)) ||
            (rc = strata_cursor_open(cl, &r->cur))) {
            free(r);
            return rc == STRATA_NOTFOUND ? STRATA_ECORRUPT : rc;
        }
    }
    *out = r;
    return STRATA_OK;
}

void strata_blob_reader_close(strata_blob_reader *r) {
    if (!r || r->magic != READER_MAGIC) return;
    strata_cursor_close(r->cur);
    r->magic = 0;
    free(r);
}

/* Take the chunk-list row under the cursor; it must start at or before pos
 * (want_off == UINT64_MAX) or exactly at want_off. */
static int take_row(strata_blob_reader *r, uint64_t want_off) {
    strata_slice k, v;
    int rc = strata_cursor_get(r->cur, &k, &v);
    if (rc) return rc;
    if (k.len != CLIST_KEY || be64_get(k.data) != r->id) return STRATA_NOTFOUND;
    if (v.len != CLIST_VAL) return STRATA_ECORRUPT;
    r->c_off = be64_get((const uint8_t *)k.data + 8);
    r->c_len = le32_get((const uint8_t *)v.data + SHA_LEN);
    memcpy(r->c_sha, v.data, SHA_LEN);
    r->verified = 0;
    r->have = 1;
    if (want_off != UINT64_MAX && r->c_off != want_off) return STRATA_ECORRUPT;
    if (r->c_len == 0 || r->pos < r->c_off || r->pos - r->c_off >= r->c_len) return STRATA_ECORRUPT;
    return STRATA_OK;
}

/* Position the current chunk on the one holding pos (pos < size). */
static int locate(strata_blob_reader *r) {
    uint8_t k[CLIST_KEY];
    int rc;
    if (r->have && r->pos >= r->c_off && r->pos - r->c_off < r->c_len) return STRATA_OK;
    if (r->have && r->pos == r->c_off + r->c_len) {
        r->have = 0;
        rc = strata_cursor_next(r->cur);
        if (rc != STRATA_NOTFOUND) return rc ? rc : take_row(r, r->pos);
        /* past the last row, or a savepoint rollback unpositioned the cursor:
         * seek (a list shorter than size fails take_row's range check) */
    }
    r->have = 0;
    be64_put(k, r->id);
    be64_put(k + 8, r->pos);
    rc = strata_cursor_seek_le(r->cur, blob_sl(k, sizeof k));
    return rc ? rc : take_row(r, UINT64_MAX);
}

/* The bytes of the current chunk, checked for length (and hash). */
static int chunk_bytes(strata_blob_reader *r, const uint8_t **p) {
    strata_slice v;
    uint8_t sha[SHA_LEN], k[CHUNK_KEY];
    blob_ckey(k, r->c_sha, CK_DATA);
    int rc = strata_get(r->chunks, blob_sl(k, CHUNK_KEY), &v);
    if (rc) return rc == STRATA_NOTFOUND ? STRATA_ECORRUPT : rc;
    if (v.len != r->c_len) return STRATA_ECORRUPT;
    if ((r->flags & STRATA_BLOB_VERIFY) && !r->verified) {
        if ((rc = blob_sha256(v.data, v.len, sha))) return rc;
        if (memcmp(sha, r->c_sha, SHA_LEN)) return STRATA_ECORRUPT;
        r->verified = 1;
    }
    *p = v.data;
    return STRATA_OK;
}

/* locate found no chunk-list row of the blob at pos: NOTFOUND if the blob
 * was deleted meanwhile, else its list is damaged. */
static int gone(const strata_blob_reader *r) {
    int rc = blob_exists(r->txn, r->id);
    return rc == STRATA_OK ? STRATA_ECORRUPT : rc;
}

int strata_blob_read(strata_blob_reader *r, void *buf, size_t len, size_t *n_read) {
    if (!r || r->magic != READER_MAGIC || (!buf && len) || !n_read) return STRATA_EINVAL;
    size_t done = 0;
    while (done < len && r->pos < r->size) {
        const uint8_t *p;
        int rc = locate(r);
        if (rc == STRATA_OK) rc = chunk_bytes(r, &p);
        if (rc == STRATA_NOTFOUND) rc = gone(r);
        if (rc) return rc;
        uint64_t in = r->pos - r->c_off, avail = r->c_len - in;
        if (avail > r->size - r->pos) return STRATA_ECORRUPT;   /* chunk runs past the end */
        size_t n = avail < len - done ? (size_t)avail : len - done;
        memcpy((uint8_t *)buf + done, p + in, n);
        done += n;
        r->pos += n;
    }
    *n_read = done;
    return STRATA_OK;
}

int strata_blob_seek(strata_blob_reader *r, uint64_t offset) {
    if (!r || r->magic != READER_MAGIC || offset > r->size) return STRATA_EINVAL;
    r->pos = offset;
    return STRATA_OK;
}

int strata_blob_tell(const strata_blob_reader *r, uint64_t *offset, uint64_t *size) {
    if (!r || r->magic != READER_MAGIC) return STRATA_EINVAL;
    if (offset) *offset = r->pos;
    if (size) *size = r->size;
    return STRATA_OK;
}

int strata_blob_read_at(strata_txn *txn, uint64_t id, uint64_t offset, void *buf, size_t len,
                        unsigned flags) {
    strata_blob_reader *r;
    size_t n = 0;
    if (!buf && len) return STRATA_EINVAL;
    int rc = strata_blob_reader_open(txn, id, flags, &r);
    if (rc) return rc;
    if (offset > r->size || len > r->size - offset) rc = STRATA_EINVAL;
    if (rc == STRATA_OK) rc = strata_blob_seek(r, offset);
    if (rc == STRATA_OK) rc = strata_blob_read(r, buf, len, &n);
    if (rc == STRATA_OK && n != len) rc = STRATA_ECORRUPT;
    strata_blob_reader_close(r);
    return rc;
}

/* Hash every chunk of r's blob in order into full; checks as a verifying read. */
static int verify_all(strata_blob_reader *r, EVP_MD_CTX *full, uint64_t *n_chunks) {
    while (r->pos < r->size) {
        const uint8_t *p;
        int rc = locate(r);
        if (rc == STRATA_OK) rc = chunk_bytes(r, &p);
        if (rc) return rc == STRATA_NOTFOUND ? STRATA_ECORRUPT : rc;
        if (r->c_off != r->pos || r->c_len > r->size - r->pos) return STRATA_ECORRUPT;
        if (!EVP_DigestUpdate(full, p, r->c_len)) return STRATA_ENOMEM;
        r->pos += r->c_len;
        (*n_chunks)++;
    }
    return STRATA_OK;
}

int strata_blob_verify(strata_txn *txn, uint64_t id) {
    blob_meta m;
    strata_blob_reader *r = NULL;
    uint8_t sha[SHA_LEN];
    unsigned int n = 0;
    uint64_t n_chunks = 0;
    EVP_MD_CTX *full = NULL;
    int rc = blob_meta_load(txn, id, &m);
    if (rc) return rc;
    uint64_t want = m.n_chunks;
    memcpy(sha, m.sha, SHA_LEN);
    if ((rc = strata_blob_reader_open(txn, id, STRATA_BLOB_VERIFY, &r))) return rc;
    rc = STRATA_ENOMEM;
    if (!(full = EVP_MD_CTX_new()) || !EVP_DigestInit_ex(full, EVP_sha256(), NULL)) goto out;
    if ((rc = verify_all(r, full, &n_chunks))) goto out;
    rc = STRATA_ENOMEM;
    uint8_t got[SHA_LEN];
    if (!EVP_DigestFinal_ex(full, got, &n) || n != SHA_LEN) goto out;
    rc = (n_chunks == want && !memcmp(got, sha, SHA_LEN)) ? STRATA_OK : STRATA_ECORRUPT;
out:
    EVP_MD_CTX_free(full);
    strata_blob_reader_close(r);
    return rc;
}
