/* tests/blob/test_helper_threads.c - the blob writer's hashing helper thread
 * (blob/writer.c feed_async) under ThreadSanitizer: the same contents put
 * and streamed with the helper forced on and forced off must give the same
 * chunk lists (hash and length of every chunk, in order), the same content hashes (checked against OpenSSL) and the
 * same bytes back, for pieces of one size class and of the other (GOV_BIG),
 * final and non-final pieces (the uncut tail goes through the buffer), CDC
 * and fixed-size chunks, and a writer aborted after helper-hashed pieces
 * must leave nothing behind.
 * A plain program (Criterion cannot start under TSan): registered as suite
 * 'unit' in every build and as suite 'tsan' in tools/dev's ThreadSanitizer
 * build. Exit status 0 = pass; a failed check prints its line. */
#include <openssl/evp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "blob_int.h"   /* blob_writer_helper: force the helper on or off */

#define CHECK(cond)                                                              \
    do {                                                                         \
        if (!(cond)) {                                                           \
            fprintf(stderr, "%s:%d: check failed: %s\n", __FILE__, __LINE__, #cond); \
            exit(1);                                                             \
        }                                                                        \
    } while (0)
#define OK(call) CHECK((call) == STRATA_OK)

static void fill(uint8_t *p, size_t n, uint64_t seed) {
    uint64_t s = seed * 0x9E3779B97F4A7C15ull + 1;
    for (size_t i = 0; i < n; i++) {
        s ^= s << 13;
        s ^= s >> 7;
        s ^= s << 17;
        p[i] = (uint8_t)(s >> 24);
    }
}

/* Blob id's content, read whole with chunk verification; compared with want. */
static void check_content(strata_txn *r, uint64_t id, const uint8_t *want, size_t n) {
    strata_blob_info in;
    uint8_t sha[32];
    unsigned int sl = 0;
    OK(strata_blob_info_get(r, id, &in));
    CHECK(in.size == n);
    CHECK(EVP_Digest(want, n, sha, &sl, EVP_sha256(), NULL) && sl == 32);
    CHECK(memcmp(in.sha256, sha, 32) == 0);
    OK(strata_blob_verify(r, id));
    uint8_t *got = malloc(n ? n : 1);
    CHECK(got != NULL);
    OK(strata_blob_read_at(r, id, 0, got, n, STRATA_BLOB_VERIFY));
    CHECK(memcmp(got, want, n) == 0);
    free(got);
}

/* The chunk list of blob id (docs/BLOBS.md "blob:chunklist": key id BE,
 * offset BE; value SHA-256, length u32 LE), as its values in offset order,
 * copied into a malloc'd buffer of *n rows of 36 bytes. */
static uint8_t *chunk_list(strata_txn *r, uint64_t id, size_t *n) {
    strata_table *t;
    strata_cursor *c;
    strata_slice k, v;
    uint8_t pre[8], *out = NULL;
    for (int i = 0; i < 8; i++) pre[i] = (uint8_t)(id >> (56 - 8 * i));
    *n = 0;
    OK(strata_table_open(r, "blob:chunklist", STRATA_KEY_BYTES, 0, &t));
    OK(strata_cursor_open(t, &c));
    for (int rc = strata_cursor_seek(c, (strata_slice){ pre, 8 }); rc == STRATA_OK; rc = strata_cursor_next(c)) {
        OK(strata_cursor_get(c, &k, &v));
        if (k.len != 16 || memcmp(k.data, pre, 8)) break;
        CHECK(v.len == 36);
        CHECK((out = realloc(out, (*n + 1) * 36)) != NULL);
        memcpy(out + *n * 36, v.data, 36);
        (*n)++;
    }
    strata_cursor_close(c);
    return out;
}

typedef struct sizes { size_t len, piece; int chunking; } sizes;

/* One blob written with the helper in mode `helper`: put (piece 0) or a
 * streaming writer fed in pieces of s->piece. Returns its id. */
static uint64_t write_one(strata_txn *w, const sizes *s, const uint8_t *p, int helper) {
    strata_blob_opts o = { .chunking = s->chunking, .avg_chunk = s->chunking ? 128u << 10 : 0 };
    uint64_t id = 0;
    blob_writer_helper(helper);
    if (!s->piece) {
        OK(strata_blob_put(w, &o, p, s->len, &id));
    } else {
        strata_blob_writer *wr;
        OK(strata_blob_writer_begin(w, &o, &wr));
        for (size_t off = 0; off < s->len; off += s->piece)
            OK(strata_blob_write(wr, p + off, s->len - off < s->piece ? s->len - off : s->piece));
        OK(strata_blob_writer_finish(wr, &id));
    }
    blob_writer_helper(-1);
    return id;
}

int main(void) {
    char dir[] = "/tmp/strata-helper-XXXXXX", path[64];
    CHECK(mkdtemp(dir) != NULL);
    snprintf(path, sizeof path, "%s/h.db", dir);
    strata_db *db;
    OK(strata_open(path, STRATA_CREATE, &db));
    static const sizes cases[] = {
        { 300u << 10, 0, STRATA_BLOB_CDC },             /* one piece just above ASYNC_MIN */
        { 3u << 20, 0, STRATA_BLOB_CDC },
        { 5u << 20, 0, STRATA_BLOB_FIXED },             /* the >= GOV_BIG class */
        { (3u << 20) + 12345, 700u << 10, STRATA_BLOB_CDC },   /* non-final pieces: tails buffered */
        { (6u << 20) + 1, 4u << 20, STRATA_BLOB_CDC },
    };
    for (size_t c = 0; c < sizeof cases / sizeof cases[0]; c++) {
        const sizes *s = &cases[c];
        uint8_t *p = malloc(s->len);
        CHECK(p != NULL);
        fill(p, s->len, 100 + c);
        strata_txn *w;
        OK(strata_begin_write(db, &w));
        uint64_t on = write_one(w, s, p, 1), off = write_one(w, s, p, 0);
        OK(strata_commit(w));
        strata_txn *r;
        OK(strata_begin_read(db, &r));
        check_content(r, on, p, s->len);
        check_content(r, off, p, s->len);
        size_t na, nb;   /* the same chunks, in the same order */
        uint8_t *la = chunk_list(r, on, &na), *lb = chunk_list(r, off, &nb);
        CHECK(na > 0 && na == nb && memcmp(la, lb, na * 36) == 0);
        free(la);
        free(lb);
        strata_abort(r);
        free(p);
    }
    /* a writer aborted after two helper-hashed pieces leaves the store as it was */
    strata_txn *w, *r;
    strata_blob_stats before, after;
    OK(strata_begin_read(db, &r));
    OK(strata_blob_stats_get(r, &before));
    strata_abort(r);
    uint8_t *p = malloc(2u << 20);
    CHECK(p != NULL);
    fill(p, 2u << 20, 7);
    OK(strata_begin_write(db, &w));
    strata_blob_writer *wr;
    blob_writer_helper(1);
    OK(strata_blob_writer_begin(w, NULL, &wr));
    OK(strata_blob_write(wr, p, 1u << 20));
    OK(strata_blob_write(wr, p + (1u << 20), 1u << 20));
    strata_blob_writer_abort(wr);
    blob_writer_helper(-1);
    OK(strata_commit(w));
    OK(strata_begin_read(db, &r));
    OK(strata_blob_stats_get(r, &after));
    CHECK(after.n_chunks == before.n_chunks && after.stored_bytes == before.stored_bytes &&
          after.n_blobs == before.n_blobs && after.n_pending == 0);
    OK(strata_blob_check(r, 1, NULL, NULL));
    strata_abort(r);
    free(p);
    strata_close(db);
    unlink(path);
    rmdir(dir);
    printf("blob helper threads: ok\n");
    return 0;
}
