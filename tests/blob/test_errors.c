/* tests/blob/test_errors.c - bad input: reads past the end, a chunk whose
 * bytes do not match its hash, unknown ids, bad options, misuse of writers,
 * writes in read transactions; each gets a clear error and changes nothing. */
#include <criterion/criterion.h>
#include <stdlib.h>
#include <string.h>

#include "blob_int.h"   /* blob_writer_helper: static layer */
#include "bt_util.h"

Test(blob_errors, reading_past_the_end) {
    tdb t;
    tdb_open(&t);
    uint8_t src[10000], buf[20000];
    fill_random(src, sizeof src, 1);
    strata_txn *w = tw(&t);
    uint64_t id;
    cr_assert_eq(strata_blob_put(w, NULL, src, sizeof src, &id), STRATA_OK);
    tcommit(w);
    strata_txn *r = tr(&t);
    cr_assert_eq(strata_blob_read_at(r, id, 0, buf, sizeof src + 1, 0), STRATA_EINVAL);
    cr_assert_eq(strata_blob_read_at(r, id, sizeof src, buf, 1, 0), STRATA_EINVAL);
    cr_assert_eq(strata_blob_read_at(r, id, UINT64_MAX, buf, 1, 0), STRATA_EINVAL);
    cr_assert_eq(strata_blob_read_at(r, id, sizeof src, buf, 0, 0), STRATA_OK);
    cr_assert_eq(strata_blob_read_at(r, id, 9990, buf, 10, 0), STRATA_OK);
    cr_assert(memcmp(buf, src + 9990, 10) == 0);
    strata_blob_reader *rd;
    size_t n;
    cr_assert_eq(strata_blob_reader_open(r, id, 0, &rd), STRATA_OK);
    cr_assert_eq(strata_blob_seek(rd, sizeof src + 1), STRATA_EINVAL);
    cr_assert_eq(strata_blob_seek(rd, 9000), STRATA_OK);
    cr_assert_eq(strata_blob_read(rd, buf, sizeof buf, &n), STRATA_OK);
    cr_assert_eq(n, 1000);
    cr_assert_eq(strata_blob_read(rd, buf, sizeof buf, &n), STRATA_OK);
    cr_assert_eq(n, 0);
    strata_blob_reader_close(rd);
    strata_blob_reader_close(NULL);
    cr_assert_eq(strata_blob_reader_open(r, id, 0x80, &rd), STRATA_EINVAL);
    strata_abort(r);
    tdb_close(&t);
}

Test(blob_errors, chunk_not_matching_its_hash) {
    tdb t;
    tdb_open(&t);
    size_t n = 300000;
    uint8_t *src = random_buf(n, 2), *buf = malloc(n);
    strata_blob_opts o = { .chunking = STRATA_BLOB_FIXED, .avg_chunk = 100000 };
    strata_txn *w = tw(&t);
    uint64_t id;
    cr_assert_eq(strata_blob_put(w, &o, src, n, &id), STRATA_OK);
    tcommit(w);
    /* damage the second chunk's bytes behind the store's back, same length */
    uint8_t sha[33];   /* the data row's key: SHA-256, kind 0 */
    sha256_of(src + 100000, 100000, sha);
    sha[32] = 0;
    w = tw(&t);
    strata_table *ch;
    cr_assert_eq(strata_table_open(w, "blob:chunks", STRATA_KEY_BYTES, 0, &ch), STRATA_OK);
    uint8_t *bad = malloc(100000);
    memcpy(bad, src + 100000, 100000);
    bad[500] ^= 1;
    strata_slice key = { sha, 33 }, val = { bad, 100000 };
    cr_assert_eq(strata_put(ch, key, val), STRATA_OK);
    tcommit(w);
    strata_txn *r = tr(&t);
    cr_assert_eq(strata_blob_read_at(r, id, 0, buf, 100000, STRATA_BLOB_VERIFY), STRATA_OK);
    cr_assert_eq(strata_blob_read_at(r, id, 150000, buf, 10, STRATA_BLOB_VERIFY), STRATA_ECORRUPT);
    cr_assert_eq(strata_blob_read_at(r, id, 100000, buf, 1000, 0), STRATA_OK);   /* unverified read */
    cr_assert_eq(buf[500], src[100500] ^ 1);
    cr_assert_eq(strata_blob_verify(r, id), STRATA_ECORRUPT);
    cr_assert_eq(strata_blob_check(r, 0, NULL, NULL), STRATA_OK);          /* counts still agree */
    cr_assert_eq(strata_blob_check(r, 1, NULL, NULL), STRATA_ECORRUPT);    /* hashes do not */
    strata_abort(r);
    /* a chunk whose length is wrong is caught without verification */
    w = tw(&t);
    cr_assert_eq(strata_table_open(w, "blob:chunks", STRATA_KEY_BYTES, 0, &ch), STRATA_OK);
    val.len = 99999;
    cr_assert_eq(strata_put(ch, key, val), STRATA_OK);
    cr_assert_eq(strata_blob_read_at(w, id, 150000, buf, 10, 0), STRATA_ECORRUPT);
    strata_abort(w);
    free(bad);
    free(buf);
    free(src);
    tdb_close(&t);
}

/* blob:chunks keeps a data row and a reference record per chunk: removing
 * either behind the store's back, or changing a count, is corruption that
 * strata_blob_check reports (and unref refuses). */
Test(blob_errors, chunk_rows_out_of_step) {
    tdb t;
    tdb_open(&t);
    size_t n = 200000;
    uint8_t *src = random_buf(n, 3);
    strata_blob_opts o = { .chunking = STRATA_BLOB_FIXED, .avg_chunk = 100000 };
    strata_txn *w = tw(&t);
    uint64_t id;
    cr_assert_eq(strata_blob_put(w, &o, src, n, &id), STRATA_OK);
    tcommit(w);
    uint8_t k[33];
    sha256_of(src, 100000, k);
    for (int kind = 0; kind < 3; kind++) {
        strata_table *ch;
        w = tw(&t);
        cr_assert_eq(strata_table_open(w, "blob:chunks", STRATA_KEY_BYTES, 0, &ch), STRATA_OK);
        k[32] = kind == 0 ? 0 : 1;
        strata_slice key = { k, 33 };
        if (kind < 2) {
            cr_assert_eq(strata_del(ch, key), STRATA_OK);
        } else {   /* count 2 where one list names the chunk */
            uint8_t rv[16] = { 2, 0, 0, 0, 0, 0, 0, 0, 0xa0, 0x86, 0x01, 0, 0, 0, 0, 0 };
            strata_slice val = { rv, 16 };
            cr_assert_eq(strata_put(ch, key, val), STRATA_OK);
        }
        cr_assert_eq(strata_blob_check(w, 0, NULL, NULL), STRATA_ECORRUPT, "kind %d", kind);
        if (kind == 1) cr_assert_eq(strata_blob_delete(w, id), STRATA_ECORRUPT);
        strata_abort(w);
    }
    assert_consistent(&t);   /* every damage was aborted */
    free(src);
    tdb_close(&t);
}

/* A store that fails in the middle of a large piece (the 6th chunk's
 * reference record is damaged, so referencing it again is
 * STRATA_ECORRUPT) fails the put with or without the helper thread, and
 * the call is over when it returns: the content buffer is freed at once
 * (a helper still reading it would be a use after free under ASan). */
Test(blob_errors, failed_store_in_a_large_piece) {
    tdb t;
    tdb_open(&t);
    size_t n = 3u << 20;
    uint8_t *src = random_buf(n, 21);
    strata_txn *w = tw(&t);
    uint64_t id;
    cr_assert_eq(strata_blob_put(w, NULL, src, n, &id), STRATA_OK);
    tcommit(w);
    for (int helper = 0; helper < 2; helper++) {
        strata_table *cl, *ch;
        strata_cursor *c;
        strata_slice k, v;
        uint8_t lo[8], rk[33], rv[16] = { 1, 0, 0, 0, 0, 0, 0, 0, 1, 0, 0, 0, 0, 0, 0, 0 };
        w = tw(&t);
        for (int i = 0; i < 8; i++) lo[i] = (uint8_t)(id >> (56 - 8 * i));
        cr_assert_eq(strata_table_open(w, "blob:chunklist", STRATA_KEY_BYTES, 0, &cl), STRATA_OK);
        cr_assert_eq(strata_cursor_open(cl, &c), STRATA_OK);
        cr_assert_eq(strata_cursor_seek(c, (strata_slice){ lo, 8 }), STRATA_OK);
        for (int i = 0; i < 5; i++) cr_assert_eq(strata_cursor_next(c), STRATA_OK);
        cr_assert_eq(strata_cursor_get(c, &k, &v), STRATA_OK);
        cr_assert(k.len == 16 && memcmp(k.data, lo, 8) == 0 && v.len == 36);
        memcpy(rk, v.data, 32);
        strata_cursor_close(c);
        rk[32] = 1;   /* the reference record: length 1, not the chunk's */
        cr_assert_eq(strata_table_open(w, "blob:chunks", STRATA_KEY_BYTES, 0, &ch), STRATA_OK);
        cr_assert_eq(strata_put(ch, (strata_slice){ rk, 33 }, (strata_slice){ rv, 16 }), STRATA_OK);
        uint8_t *copy = malloc(n);
        cr_assert_not_null(copy);
        memcpy(copy, src, n);
        blob_writer_helper(helper);
        int rc = strata_blob_put(w, NULL, copy, n, NULL);
        free(copy);
        blob_writer_helper(-1);
        cr_assert_eq(rc, STRATA_ECORRUPT, "helper %d: %d", helper, rc);
        strata_abort(w);
    }
    assert_consistent(&t);   /* the damage was aborted */
    free(src);
    tdb_close(&t);
}

Test(blob_errors, unknown_ids) {
    tdb t;
    tdb_open(&t);
    strata_txn *r = tr(&t);   /* a store never written */
    strata_blob_info info;
    strata_blob_reader *rd;
    uint8_t b;
    cr_assert_eq(strata_blob_info_get(r, 1, &info), STRATA_NOTFOUND);
    cr_assert_eq(strata_blob_reader_open(r, 1, 0, &rd), STRATA_NOTFOUND);
    cr_assert_eq(strata_blob_read_at(r, 1, 0, &b, 1, 0), STRATA_NOTFOUND);
    cr_assert_eq(strata_blob_verify(r, 1), STRATA_NOTFOUND);
    id_list l = { .n = 0 };
    cr_assert_eq(strata_blob_list_by_tag(r, "x", id_collect, &l), STRATA_OK);
    cr_assert_eq(strata_blob_list_time(r, 0, UINT64_MAX, id_collect, &l), STRATA_OK);
    cr_assert_eq(l.n, 0);
    cr_assert_eq(strata_blob_check(r, 1, NULL, NULL), STRATA_OK);
    strata_abort(r);
    strata_txn *w = tw(&t);
    uint64_t id;
    cr_assert_eq(strata_blob_put(w, NULL, "abc", 3, &id), STRATA_OK);
    cr_assert_eq(strata_blob_delete(w, id + 1), STRATA_NOTFOUND);
    cr_assert_eq(strata_blob_delete(w, 0), STRATA_NOTFOUND);
    cr_assert_eq(strata_blob_tag_add(w, id + 1, "t"), STRATA_NOTFOUND);
    cr_assert_eq(strata_blob_info_get(w, 0, &info), STRATA_NOTFOUND);
    tcommit(w);
    assert_consistent(&t);
    tdb_close(&t);
}

Test(blob_errors, bad_options_and_misuse) {
    tdb t;
    tdb_open(&t);
    char big[5000];
    memset(big, 'a', sizeof big - 1);
    big[sizeof big - 1] = 0;
    strata_blob_writer *wr;
    strata_txn *w = tw(&t);
    uint64_t id;
    strata_blob_opts o1 = { .avg_chunk = 3000 };                          /* not a power of two */
    strata_blob_opts o2 = { .min_chunk = 8192, .avg_chunk = 4096 };       /* min >= avg */
    strata_blob_opts o3 = { .max_chunk = 32u << 20 };                     /* too large */
    strata_blob_opts o4 = { .chunking = 7 };
    strata_blob_opts o5 = { .label = big };
    strata_blob_opts o6 = { .content_type = big + 4000 };                 /* 999 bytes */
    strata_blob_opts o7 = { .chunking = STRATA_BLOB_FIXED, .avg_chunk = 10 };
    const strata_blob_opts *bad[] = { &o1, &o2, &o3, &o4, &o5, &o6, &o7 };
    for (size_t i = 0; i < sizeof bad / sizeof *bad; i++)
        cr_assert_eq(strata_blob_put(w, bad[i], "x", 1, &id), STRATA_EINVAL, "opts %zu", i);
    cr_assert_eq(strata_blob_put(w, NULL, NULL, 5, &id), STRATA_EINVAL);
    cr_assert_eq(strata_blob_put(NULL, NULL, "x", 1, &id), STRATA_EINVAL);
    cr_assert_eq(strata_blob_writer_begin(w, NULL, &wr), STRATA_OK);
    cr_assert_eq(strata_blob_write(wr, NULL, 3), STRATA_EINVAL);
    cr_assert_eq(strata_blob_write(wr, "abc", 3), STRATA_OK);
    cr_assert_eq(strata_blob_writer_finish(wr, &id), STRATA_OK);
    cr_assert_eq(strata_blob_write(NULL, "abc", 3), STRATA_EINVAL);
    cr_assert_eq(strata_blob_writer_finish(NULL, &id), STRATA_EINVAL);
    tcommit(w);
    strata_blob_stats s;
    strata_txn *r = tr(&t);
    cr_assert_eq(strata_blob_stats_get(r, &s), STRATA_OK);
    cr_assert_eq(s.n_blobs, 1);
    cr_assert_eq(s.n_pending, 0);
    /* writes in a read transaction */
    cr_assert_eq(strata_blob_put(r, NULL, "abc", 3, &id), STRATA_EREADONLY);
    strata_abort(r);
    r = tr(&t);
    cr_assert_eq(strata_blob_delete(r, id), STRATA_EREADONLY);
    strata_abort(r);
    r = tr(&t);
    cr_assert_eq(strata_blob_tag_add(r, id, "t"), STRATA_EREADONLY);
    strata_abort(r);
    assert_consistent(&t);
    tdb_close(&t);
}
