/* tests/blob/bt_util.c - see bt_util.h. */
#include "bt_util.h"

#include <criterion/criterion.h>
#include <openssl/evp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

void tdb_open(tdb *t) {
    memset(t, 0, sizeof *t);
    strcpy(t->dir, "/tmp/strata_blob_XXXXXX");
    cr_assert_not_null(mkdtemp(t->dir));
    snprintf(t->path, sizeof t->path, "%s/db.strata", t->dir);
    cr_assert_eq(strata_open(t->path, STRATA_CREATE, &t->db), STRATA_OK);
}

void tdb_reopen(tdb *t) {
    strata_close(t->db);
    t->db = NULL;
    cr_assert_eq(strata_open(t->path, 0, &t->db), STRATA_OK);
}

void tdb_close(tdb *t) {
    strata_close(t->db);
    t->db = NULL;
    unlink(t->path);
    rmdir(t->dir);
}

strata_txn *tw(tdb *t) {
    strata_txn *x = NULL;
    cr_assert_eq(strata_begin_write(t->db, &x), STRATA_OK);
    return x;
}

strata_txn *tr(tdb *t) {
    strata_txn *x = NULL;
    cr_assert_eq(strata_begin_read(t->db, &x), STRATA_OK);
    return x;
}

void tcommit(strata_txn *txn) { cr_assert_eq(strata_commit(txn), STRATA_OK); }

void fill_random(uint8_t *buf, size_t n, uint64_t seed) {
    uint64_t x = seed * 0x9E3779B97F4A7C15ull + 1;
    for (size_t i = 0; i < n; i++) {
        x ^= x >> 12; x ^= x << 25; x ^= x >> 27;
        buf[i] = (uint8_t)((x * 0x2545F4914F6CDD1Dull) >> 56);
    }
}

uint8_t *random_buf(size_t n, uint64_t seed) {
    uint8_t *p = malloc(n ? n : 1);
    cr_assert_not_null(p);
    fill_random(p, n, seed);
    return p;
}

void sha256_of(const void *p, size_t n, uint8_t out[32]) {
    unsigned int len = 0;
    cr_assert(EVP_Digest(p, n, out, &len, EVP_sha256(), NULL));
}

uint8_t *read_whole(strata_txn *txn, uint64_t id, size_t piece, size_t *len) {
    strata_blob_reader *r;
    uint64_t size;
    cr_assert_eq(strata_blob_reader_open(txn, id, STRATA_BLOB_VERIFY, &r), STRATA_OK);
    cr_assert_eq(strata_blob_tell(r, NULL, &size), STRATA_OK);
    uint8_t *buf = malloc(size + 1);
    cr_assert_not_null(buf);
    size_t got = 0, n;
    for (;;) {
        cr_assert_eq(strata_blob_read(r, buf + got, piece, &n), STRATA_OK);
        if (n == 0) break;
        got += n;
        cr_assert_leq(got, size);
    }
    strata_blob_reader_close(r);
    cr_assert_eq(got, size);
    *len = got;
    return buf;
}

static void report(void *ctx, const char *msg) {
    (void)ctx;
    fprintf(stderr, "check: %s\n", msg);
}

void assert_consistent(tdb *t) {
    strata_txn *r = tr(t);
    cr_assert_eq(strata_check(r, report, NULL), STRATA_OK, "strata_check");
    cr_assert_eq(strata_blob_check(r, 1, report, NULL), STRATA_OK, "strata_blob_check");
    strata_abort(r);
}

int id_collect(void *ctx, uint64_t id) {
    id_list *l = ctx;
    cr_assert_lt(l->n, 256);
    l->v[l->n++] = id;
    return 0;
}
