/* tests/blob/test_content.c - content hashes as blob ids: the content index
 * blob:sha (docs/BLOBS.md "Tables"), strata_blob_find, content-addressed
 * puts and writers (strata_blob_opts.by_content), the index kept exact by
 * delete, abort and reopen, stores written before the index existed, and
 * damage to it. */
#include <criterion/criterion.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "bt_util.h"

static uint64_t put_bytes(strata_txn *w, const strata_blob_opts *o, const uint8_t *p, size_t n) {
    uint64_t id = 0;
    cr_assert_eq(strata_blob_put(w, o, p, n, &id), STRATA_OK);
    return id;
}

static void assert_found(strata_txn *txn, const uint8_t *p, size_t n, uint64_t want) {
    uint8_t sha[32];
    uint64_t id = 0;
    sha256_of(p, n, sha);
    cr_assert_eq(strata_blob_find(txn, sha, &id), STRATA_OK, "content of blob %llu not found",
                 (unsigned long long)want);
    cr_assert_eq(id, want);
}

static void assert_not_found(strata_txn *txn, const uint8_t *p, size_t n) {
    uint8_t sha[32];
    uint64_t id = 77;
    sha256_of(p, n, sha);
    cr_assert_eq(strata_blob_find(txn, sha, &id), STRATA_NOTFOUND);
    cr_assert_eq(id, 77, "a failed find wrote *id");
}

/* Sizes: one chunk, several CDC chunks (the two hashing paths of the writer). */
static const size_t k_sizes[3] = { 3000, 300000, 1u << 20 };

Test(blob_content, find_by_sha256_after_reopen) {
    tdb t;
    tdb_open(&t);
    uint8_t *p[3];
    uint64_t id[3];
    strata_txn *w = tw(&t);
    for (int i = 0; i < 3; i++) {
        p[i] = random_buf(k_sizes[i], 10 + (uint64_t)i);
        id[i] = put_bytes(w, NULL, p[i], k_sizes[i]);
        assert_found(w, p[i], k_sizes[i], id[i]);   /* visible in its own transaction */
    }
    tcommit(w);
    tdb_reopen(&t);
    strata_txn *r = tr(&t);
    for (int i = 0; i < 3; i++) assert_found(r, p[i], k_sizes[i], id[i]);
    uint8_t other[100];
    fill_random(other, sizeof other, 99);
    assert_not_found(r, other, sizeof other);
    /* a hash that is a prefix-neighbour of a stored one: the same first 31 bytes */
    strata_blob_info info;
    cr_assert_eq(strata_blob_info_get(r, id[1], &info), STRATA_OK);
    uint8_t near[32];
    memcpy(near, info.sha256, 32);
    near[31] ^= 1;
    uint64_t got = 0;
    cr_assert_eq(strata_blob_find(r, near, &got), STRATA_NOTFOUND);
    cr_assert_eq(strata_blob_find(r, NULL, &got), STRATA_EINVAL);
    cr_assert_eq(strata_blob_find(r, info.sha256, NULL), STRATA_EINVAL);
    cr_assert_eq(strata_blob_find(NULL, info.sha256, &got), STRATA_EINVAL);
    strata_abort(r);
    assert_consistent(&t);
    for (int i = 0; i < 3; i++) free(p[i]);
    tdb_close(&t);
}

Test(blob_content, empty_store_and_empty_blob) {
    tdb t;
    tdb_open(&t);
    strata_txn *r = tr(&t);
    assert_not_found(r, (const uint8_t *)"", 0);
    strata_abort(r);
    strata_txn *w = tw(&t);
    uint64_t id = put_bytes(w, NULL, (const uint8_t *)"", 0);
    assert_found(w, (const uint8_t *)"", 0, id);
    tcommit(w);
    assert_consistent(&t);
    tdb_close(&t);
}

/* Same content twice without by_content: two blobs, find names the smaller
 * id; deleting it leaves the other findable; deleting both leaves none. */
Test(blob_content, duplicates_and_delete) {
    tdb t;
    tdb_open(&t);
    uint8_t *p = random_buf(200000, 5);
    strata_txn *w = tw(&t);
    uint64_t a = put_bytes(w, NULL, p, 200000);
    strata_blob_opts o = { .label = "copy", .ns = "other" };
    uint64_t b = put_bytes(w, &o, p, 200000);
    cr_assert_neq(a, b);
    assert_found(w, p, 200000, a);
    tcommit(w);
    w = tw(&t);
    cr_assert_eq(strata_blob_delete(w, a), STRATA_OK);
    assert_found(w, p, 200000, b);
    tcommit(w);
    assert_consistent(&t);
    w = tw(&t);
    cr_assert_eq(strata_blob_delete(w, b), STRATA_OK);
    assert_not_found(w, p, 200000);
    tcommit(w);
    assert_consistent(&t);
    free(p);
    tdb_close(&t);
}

/* by_content: a put of content already stored returns the stored blob's id
 * and stores nothing (counts, chunks, metadata unchanged); new content makes
 * a new blob; the same through a streaming writer fed in odd pieces. */
Test(blob_content, by_content_reuses_the_stored_blob) {
    tdb t;
    tdb_open(&t);
    uint8_t *p = random_buf(1u << 20, 6), *q = random_buf(5000, 7);
    strata_txn *w = tw(&t);
    strata_blob_opts first = { .label = "first", .content_type = "a/b" };
    uint64_t a = put_bytes(w, &first, p, 1u << 20);
    tcommit(w);
    strata_txn *r = tr(&t);
    strata_blob_stats before;
    cr_assert_eq(strata_blob_stats_get(r, &before), STRATA_OK);
    strata_abort(r);

    w = tw(&t);
    strata_blob_opts bc = { .by_content = 1, .label = "second", .ns = "x" };
    cr_assert_eq(put_bytes(w, &bc, p, 1u << 20), a);
    strata_blob_writer *wr;
    cr_assert_eq(strata_blob_writer_begin(w, &bc, &wr), STRATA_OK);
    for (size_t off = 0; off < (1u << 20);) {
        size_t n = (off * 7 + 12345) % 70000 + 1;
        if (n > (1u << 20) - off) n = (1u << 20) - off;
        cr_assert_eq(strata_blob_write(wr, p + off, n), STRATA_OK);
        off += n;
    }
    uint64_t via_writer = 0;
    cr_assert_eq(strata_blob_writer_finish(wr, &via_writer), STRATA_OK);
    cr_assert_eq(via_writer, a);
    uint64_t c = put_bytes(w, &bc, q, 5000);   /* new content: a new blob */
    cr_assert_neq(c, a);
    cr_assert_eq(put_bytes(w, &bc, q, 5000), c);
    tcommit(w);

    r = tr(&t);
    strata_blob_stats after;
    cr_assert_eq(strata_blob_stats_get(r, &after), STRATA_OK);
    cr_assert_eq(after.n_blobs, before.n_blobs + 1);
    cr_assert_eq(after.logical_bytes, before.logical_bytes + 5000);
    cr_assert_eq(after.n_pending, 0);
    strata_blob_info info;
    cr_assert_eq(strata_blob_info_get(r, a, &info), STRATA_OK);
    cr_assert(info.label.len == 5 && memcmp(info.label.data, "first", 5) == 0, "metadata changed");
    cr_assert(info.ns.len == 0);
    strata_abort(r);
    assert_consistent(&t);
    free(p);
    free(q);
    tdb_close(&t);
}

/* Aborted transactions leave no index row behind; a by_content put that
 * found its twin in an aborted transaction makes a blob of its own. */
Test(blob_content, abort_leaves_no_row) {
    tdb t;
    tdb_open(&t);
    uint8_t *p = random_buf(70000, 8);
    strata_txn *w = tw(&t);
    (void)put_bytes(w, NULL, p, 70000);
    strata_abort(w);
    strata_txn *r = tr(&t);
    assert_not_found(r, p, 70000);
    strata_abort(r);
    w = tw(&t);
    strata_blob_opts bc = { .by_content = 1 };
    uint64_t id = put_bytes(w, &bc, p, 70000);
    assert_found(w, p, 70000, id);
    tcommit(w);
    assert_consistent(&t);
    free(p);
    tdb_close(&t);
}

static void count_report(void *ctx, const char *msg) {
    (void)msg;
    (*(int *)ctx)++;
}

static int blob_check_problems(tdb *t) {
    int n = 0;
    strata_txn *r = tr(t);
    int rc = strata_blob_check(r, 0, count_report, &n);
    strata_abort(r);
    cr_assert(rc == STRATA_OK || rc == STRATA_ECORRUPT);
    cr_assert_eq(rc == STRATA_ECORRUPT, n > 0);
    return n;
}

static uint64_t sha_rows(strata_txn *r) {
    strata_table *st;
    uint64_t rows = 0;
    cr_assert_eq(strata_table_open(r, "blob:sha", STRATA_KEY_BYTES, 0, &st), STRATA_OK);
    cr_assert_eq(strata_len(st, &rows), STRATA_OK);
    return rows;
}

/* A store written before the content index existed has no blob:sha table
 * (made here by dropping it): find scans the records; the first write that
 * records or deletes a blob builds the index for every blob. */
Test(blob_content, store_from_before_the_index) {
    tdb t;
    tdb_open(&t);
    uint8_t *p[3];
    uint64_t id[3];
    strata_txn *w = tw(&t);
    for (int i = 0; i < 3; i++) {
        p[i] = random_buf(k_sizes[i], 20 + (uint64_t)i);
        id[i] = put_bytes(w, NULL, p[i], k_sizes[i]);
    }
    cr_assert_eq(strata_table_drop(w, "blob:sha"), STRATA_OK);
    tcommit(w);
    cr_assert_eq(blob_check_problems(&t), 0, "a store without the index is consistent");
    strata_txn *r = tr(&t);
    for (int i = 0; i < 3; i++) assert_found(r, p[i], k_sizes[i], id[i]);   /* by scan */
    assert_not_found(r, (const uint8_t *)"zz", 2);
    strata_abort(r);
    w = tw(&t);
    cr_assert_eq(strata_blob_delete(w, id[0]), STRATA_OK);   /* builds the index, then drops a row */
    tcommit(w);
    r = tr(&t);
    cr_assert_eq(sha_rows(r), 2);
    assert_not_found(r, p[0], k_sizes[0]);
    for (int i = 1; i < 3; i++) assert_found(r, p[i], k_sizes[i], id[i]);
    strata_abort(r);
    assert_consistent(&t);

    /* the same through a put */
    w = tw(&t);
    cr_assert_eq(strata_table_drop(w, "blob:sha"), STRATA_OK);
    tcommit(w);
    w = tw(&t);
    uint64_t n = put_bytes(w, NULL, p[0], k_sizes[0]);
    tcommit(w);
    r = tr(&t);
    cr_assert_eq(sha_rows(r), 3);
    assert_found(r, p[0], k_sizes[0], n);
    strata_abort(r);
    assert_consistent(&t);
    for (int i = 0; i < 3; i++) free(p[i]);
    tdb_close(&t);
}

/* Damage: a missing row, a row of no blob and a malformed key are found by
 * strata_blob_check; find reports the malformed key as ECORRUPT. */
Test(blob_content, damage_is_reported) {
    tdb t;
    tdb_open(&t);
    uint8_t *p = random_buf(4000, 9);
    strata_txn *w = tw(&t);
    uint64_t id = put_bytes(w, NULL, p, 4000);
    tcommit(w);
    uint8_t key[40];
    sha256_of(p, 4000, key);
    for (int i = 0; i < 8; i++) key[32 + i] = (uint8_t)(id >> (56 - 8 * i));
    strata_table *st;

    w = tw(&t);   /* missing row */
    cr_assert_eq(strata_table_open(w, "blob:sha", STRATA_KEY_BYTES, 0, &st), STRATA_OK);
    cr_assert_eq(strata_del(st, (strata_slice){ key, 40 }), STRATA_OK);
    tcommit(w);
    cr_assert_gt(blob_check_problems(&t), 0);

    w = tw(&t);   /* the row back plus one of no blob */
    cr_assert_eq(strata_table_open(w, "blob:sha", STRATA_KEY_BYTES, 0, &st), STRATA_OK);
    cr_assert_eq(strata_put(st, (strata_slice){ key, 40 }, (strata_slice){ "", 0 }), STRATA_OK);
    uint8_t stray[40];
    memcpy(stray, key, 40);
    stray[39] ^= 0x40;
    cr_assert_eq(strata_put(st, (strata_slice){ stray, 40 }, (strata_slice){ "", 0 }), STRATA_OK);
    tcommit(w);
    cr_assert_gt(blob_check_problems(&t), 0);

    w = tw(&t);   /* malformed: the blob's row is 35 bytes long */
    cr_assert_eq(strata_table_open(w, "blob:sha", STRATA_KEY_BYTES, 0, &st), STRATA_OK);
    cr_assert_eq(strata_del(st, (strata_slice){ stray, 40 }), STRATA_OK);
    cr_assert_eq(strata_del(st, (strata_slice){ key, 40 }), STRATA_OK);
    cr_assert_eq(strata_put(st, (strata_slice){ key, 35 }, (strata_slice){ "", 0 }), STRATA_OK);
    uint64_t got = 0;
    cr_assert_eq(strata_blob_find(w, key, &got), STRATA_ECORRUPT);
    strata_abort(w);
    free(p);
    tdb_close(&t);
}

/* A store from before the index whose blob:meta holds a malformed record:
 * building the index fails (STRATA_ECORRUPT) after the new blob's meta,
 * namespace and time rows were written, so the put must leave nothing of
 * the blob it could commit: the transaction is abort-only. */
Test(blob_content, failed_backfill_leaves_no_half_recorded_blob) {
    tdb t;
    tdb_open(&t);
    uint8_t *p = random_buf(3000, 30), *q = random_buf(4000, 31);
    strata_txn *w = tw(&t);
    uint64_t a = put_bytes(w, NULL, p, 3000);
    cr_assert_eq(strata_table_drop(w, "blob:sha"), STRATA_OK);
    strata_table *mt;
    cr_assert_eq(strata_table_open(w, "blob:meta", STRATA_KEY_U64, 0, &mt), STRATA_OK);
    uint8_t k[8];
    for (int i = 0; i < 8; i++) k[i] = (uint8_t)(a >> (8 * i));
    cr_assert_eq(strata_put(mt, (strata_slice){ k, 8 }, (strata_slice){ "bad", 3 }), STRATA_OK);
    tcommit(w);

    w = tw(&t);
    uint64_t id = 0;
    cr_assert_eq(strata_blob_put(w, NULL, q, 4000, &id), STRATA_ECORRUPT);
    cr_assert_eq(strata_commit(w), STRATA_EBADTXN, "a half-recorded blob was committed");
    strata_txn *r = tr(&t);
    strata_blob_stats st;
    cr_assert_eq(strata_blob_stats_get(r, &st), STRATA_OK);
    cr_assert_eq(st.n_blobs, 1);
    id_list ids = { .n = 0 };
    cr_assert_eq(strata_blob_list_time(r, 0, UINT64_MAX, id_collect, &ids), STRATA_OK);
    cr_assert_eq(ids.n, 1, "a time row of a blob that was never recorded");
    strata_abort(r);
    free(p);
    free(q);
    tdb_close(&t);
}
