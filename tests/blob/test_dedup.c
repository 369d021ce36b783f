/* tests/blob/test_dedup.c - dedup of identical and edited content, freeing
 * chunks on delete (stats, strata_blob_check, strata_check), abort and
 * abandoned writers leaving no trace, and garbage collection. */
#include <criterion/criterion.h>
#include <stdlib.h>
#include <string.h>

#include "bt_util.h"

static strata_blob_stats stats(tdb *t) {
    strata_blob_stats s;
    strata_txn *r = tr(t);
    cr_assert_eq(strata_blob_stats_get(r, &s), STRATA_OK);
    strata_abort(r);
    return s;
}

Test(blob_dedup, same_content_stored_once) {
    tdb t;
    tdb_open(&t);
    size_t n = 1u << 20;
    uint8_t *src = random_buf(n, 10);
    strata_txn *w = tw(&t);
    uint64_t a, b;
    cr_assert_eq(strata_blob_put(w, NULL, src, n, &a), STRATA_OK);
    tcommit(w);
    strata_blob_stats s1 = stats(&t);
    cr_assert_eq(s1.stored_bytes, n);
    w = tw(&t);
    cr_assert_eq(strata_blob_put(w, NULL, src, n, &b), STRATA_OK);
    tcommit(w);
    cr_assert_neq(a, b);
    strata_blob_stats s2 = stats(&t);
    cr_assert_eq(s2.n_blobs, 2);
    cr_assert_eq(s2.n_chunks, s1.n_chunks);
    cr_assert_eq(s2.stored_bytes, n);
    cr_assert_eq(s2.logical_bytes, 2 * (uint64_t)n);
    double ratio;
    strata_txn *r = tr(&t);
    cr_assert_eq(strata_blob_dedup_ratio(r, &ratio), STRATA_OK);
    cr_assert_float_eq(ratio, 2.0, 1e-9);
    strata_abort(r);
    assert_consistent(&t);
    free(src);
    tdb_close(&t);
}

/* Insert 100 bytes in the middle of 4 MiB: CDC re-uses almost every chunk,
 * fixed-size chunking almost none after the edit. */
static uint64_t added_by_edit(int chunking) {
    tdb t;
    tdb_open(&t);
    size_t n = 4u << 20;
    uint8_t *src = random_buf(n, 11), *ed = malloc(n + 100);
    memcpy(ed, src, n / 2);
    fill_random(ed + n / 2, 100, 99);
    memcpy(ed + n / 2 + 100, src + n / 2, n - n / 2);
    strata_blob_opts o = { .chunking = chunking };
    strata_txn *w = tw(&t);
    uint64_t a, b;
    cr_assert_eq(strata_blob_put(w, &o, src, n, &a), STRATA_OK);
    tcommit(w);
    strata_blob_stats s1 = stats(&t);
    w = tw(&t);
    cr_assert_eq(strata_blob_put(w, &o, ed, n + 100, &b), STRATA_OK);
    tcommit(w);
    strata_blob_stats s2 = stats(&t);
    strata_txn *r = tr(&t);
    size_t len;
    uint8_t *back = read_whole(r, b, 1 << 16, &len);
    cr_assert(len == n + 100 && memcmp(back, ed, len) == 0);
    free(back);
    strata_abort(r);
    assert_consistent(&t);
    free(src);
    free(ed);
    tdb_close(&t);
    return s2.stored_bytes - s1.stored_bytes;
}

Test(blob_dedup, edited_copy_shares_most_chunks) {
    uint64_t cdc = added_by_edit(STRATA_BLOB_CDC);
    uint64_t fixed = added_by_edit(STRATA_BLOB_FIXED);
    /* at most the chunks around the edit: two max-size chunks plus the insert */
    cr_assert_leq(cdc, 2 * (256u << 10) + 100, "CDC stored %llu new bytes", (unsigned long long)cdc);
    cr_assert_geq(fixed, (2u << 20) - (64u << 10), "fixed stored only %llu new bytes", (unsigned long long)fixed);
    cr_assert_lt(cdc * 4, fixed);
}

Test(blob_dedup, delete_frees_chunks) {
    tdb t;
    tdb_open(&t);
    size_t n = 2u << 20;
    uint8_t *src = random_buf(n, 12);
    strata_blob_opts o = { .chunking = STRATA_BLOB_FIXED, .avg_chunk = 65536 };
    strata_txn *w = tw(&t);
    uint64_t a, b;
    cr_assert_eq(strata_blob_put(w, &o, src, n, &a), STRATA_OK);            /* 32 chunks */
    cr_assert_eq(strata_blob_put(w, &o, src, n / 2, &b), STRATA_OK);        /* its first 16 */
    tcommit(w);
    strata_blob_stats s = stats(&t);
    cr_assert_eq(s.n_chunks, 32);
    cr_assert_eq(s.stored_bytes, n);
    w = tw(&t);
    cr_assert_eq(strata_blob_delete(w, a), STRATA_OK);
    cr_assert_eq(strata_blob_delete(w, a), STRATA_NOTFOUND);
    tcommit(w);
    s = stats(&t);
    cr_assert_eq(s.n_blobs, 1);
    cr_assert_eq(s.n_chunks, 16);
    cr_assert_eq(s.stored_bytes, n / 2);
    cr_assert_eq(s.logical_bytes, n / 2);
    assert_consistent(&t);
    strata_txn *r = tr(&t);
    size_t len;
    uint8_t *back = read_whole(r, b, 100000, &len);
    cr_assert(len == n / 2 && memcmp(back, src, len) == 0);
    free(back);
    strata_abort(r);
    w = tw(&t);
    cr_assert_eq(strata_blob_delete(w, b), STRATA_OK);
    tcommit(w);
    tdb_reopen(&t);
    s = stats(&t);
    cr_assert_eq(s.n_blobs + s.n_chunks + s.stored_bytes + s.logical_bytes, 0);
    r = tr(&t);
    strata_table *ch;
    uint64_t cnt = 1;
    cr_assert_eq(strata_table_open(r, "blob:chunks", STRATA_KEY_BYTES, 0, &ch), STRATA_OK);
    cr_assert_eq(strata_len(ch, &cnt), STRATA_OK);
    cr_assert_eq(cnt, 0);
    strata_abort(r);
    assert_consistent(&t);
    free(src);
    tdb_close(&t);
}

Test(blob_dedup, abort_leaves_no_trace) {
    tdb t;
    tdb_open(&t);
    size_t n = 600000;
    uint8_t *src = random_buf(n, 13);
    strata_txn *w = tw(&t);
    uint64_t a;
    cr_assert_eq(strata_blob_put(w, NULL, src, n, &a), STRATA_OK);
    cr_assert_eq(strata_blob_tag_add(w, a, "x"), STRATA_OK);
    strata_abort(w);
    strata_txn *r = tr(&t);
    strata_blob_info info;
    strata_blob_stats s;
    cr_assert_eq(strata_blob_info_get(r, a, &info), STRATA_NOTFOUND);
    cr_assert_eq(strata_blob_stats_get(r, &s), STRATA_OK);
    cr_assert_eq(s.n_blobs + s.n_chunks + s.n_pending, 0);
    cr_assert_eq(s.next_id, 1);
    strata_table *tb;
    cr_assert_eq(strata_table_open(r, "blob:chunks", STRATA_KEY_BYTES, 0, &tb), STRATA_NOTFOUND);
    strata_abort(r);
    assert_consistent(&t);
    free(src);
    tdb_close(&t);
}

Test(blob_dedup, aborted_writer_leaves_nothing) {
    tdb t;
    tdb_open(&t);
    size_t n = 1u << 20;
    uint8_t *src = random_buf(n, 14), *other = random_buf(200000, 15);
    strata_txn *w = tw(&t);
    uint64_t keep, shared;
    cr_assert_eq(strata_blob_put(w, NULL, other, 200000, &keep), STRATA_OK);
    cr_assert_eq(strata_blob_put(w, NULL, src, n / 2, &shared), STRATA_OK);
    tcommit(w);
    strata_blob_stats before = stats(&t);
    w = tw(&t);
    strata_blob_writer *wr;
    cr_assert_eq(strata_blob_writer_begin(w, NULL, &wr), STRATA_OK);
    cr_assert_eq(strata_blob_write(wr, src, n), STRATA_OK);   /* shares chunks with `shared` */
    strata_blob_writer_abort(wr);
    strata_blob_writer_abort(NULL);
    tcommit(w);
    strata_blob_stats after = stats(&t);
    cr_assert_eq(after.n_chunks, before.n_chunks);
    cr_assert_eq(after.stored_bytes, before.stored_bytes);
    cr_assert_eq(after.n_pending, 0);
    cr_assert_eq(after.n_blobs, 2);
    assert_consistent(&t);
    strata_txn *r = tr(&t);
    size_t len;
    uint8_t *back = read_whole(r, shared, 4096, &len);
    cr_assert(len == n / 2 && memcmp(back, src, len) == 0);
    free(back);
    strata_abort(r);
    free(src);
    free(other);
    tdb_close(&t);
}

Test(blob_dedup, lost_writer_is_pending_until_gc) {
    tdb t;
    tdb_open(&t);
    size_t n = 700000;
    uint8_t *src = random_buf(n, 16);
    strata_txn *w = tw(&t);
    strata_blob_writer *wr;
    cr_assert_eq(strata_blob_writer_begin(w, NULL, &wr), STRATA_OK);
    cr_assert_eq(strata_blob_write(wr, src, n), STRATA_OK);
    uint64_t n_rm = 99;
    cr_assert_eq(strata_blob_gc(w, &n_rm), STRATA_OK);   /* never this txn's writers */
    cr_assert_eq(n_rm, 0);
    tcommit(w);   /* the writer is lost: committed without finish or abort */
    strata_blob_writer_free(wr);
    strata_blob_stats s = stats(&t);
    cr_assert_eq(s.n_pending, 1);
    cr_assert_eq(s.n_blobs, 0);
    cr_assert_gt(s.n_chunks, 0);
    strata_txn *r = tr(&t);
    id_list l = { .n = 0 };
    cr_assert_eq(strata_blob_list_ns(r, "", id_collect, &l), STRATA_OK);
    cr_assert_eq(l.n, 0);
    cr_assert_eq(strata_blob_check(r, 1, NULL, NULL), STRATA_OK);
    strata_abort(r);
    w = tw(&t);
    cr_assert_eq(strata_blob_gc(w, &n_rm), STRATA_OK);
    cr_assert_eq(n_rm, 1);
    tcommit(w);
    s = stats(&t);
    cr_assert_eq(s.n_pending + s.n_chunks + s.stored_bytes, 0);
    assert_consistent(&t);
    free(src);
    tdb_close(&t);
}
