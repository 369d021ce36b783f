/* tests/blob/test_rw.c - streaming writes in odd piece sizes, whole-buffer
 * put, ranged and streaming reads equal to the source, fixed-size chunking,
 * the empty blob, the blob record, and all of it after close and reopen. */
#include <criterion/criterion.h>
#include <stdlib.h>
#include <string.h>

#include "bt_util.h"
#include "blob_int.h"   /* blob_sha_select: static layer */

static const size_t pieces[] = { 1, 7, 4093, 65537, 300001, 13, 262144, 999, 131071, 2 };

/* Write src through a streaming writer in the piece sizes above. */
static uint64_t stream_put(strata_txn *txn, const strata_blob_opts *o, const uint8_t *src, size_t n) {
    strata_blob_writer *w;
    uint64_t id = 0;
    cr_assert_eq(strata_blob_writer_begin(txn, o, &w), STRATA_OK);
    for (size_t off = 0, i = 0; off < n; i++) {
        size_t p = pieces[i % (sizeof pieces / sizeof *pieces)];
        if (p > n - off) p = n - off;
        cr_assert_eq(strata_blob_write(w, src + off, p), STRATA_OK);
        off += p;
    }
    cr_assert_eq(strata_blob_write(w, src, 0), STRATA_OK);
    cr_assert_eq(strata_blob_writer_finish(w, &id), STRATA_OK);
    cr_assert_neq(id, 0);
    return id;
}

/* Every check of one blob's content against src. */
static void check_content(strata_txn *txn, uint64_t id, const uint8_t *src, size_t n) {
    strata_blob_info info;
    uint8_t sha[32];
    cr_assert_eq(strata_blob_info_get(txn, id, &info), STRATA_OK);
    cr_assert_eq(info.size, n);
    sha256_of(src, n, sha);
    cr_assert_arr_eq(info.sha256, sha, 32);
    cr_assert_eq(strata_blob_verify(txn, id), STRATA_OK);
    size_t pieces_to_try[] = { 1000, 65536, 1 << 20, 3 };
    for (size_t i = 0; i < 3 || (n < 100000 && i < 4); i++) {
        size_t len;
        uint8_t *back = read_whole(txn, id, pieces_to_try[i], &len);
        cr_assert_eq(len, n);
        cr_assert(memcmp(back, src, n) == 0, "content differs (piece %zu)", pieces_to_try[i]);
        free(back);
    }
    uint64_t seed = 12345;
    uint8_t *buf = malloc(n + 1);
    for (int i = 0; i < 200 && n > 0; i++) {
        seed = seed * 6364136223846793005ull + 1442695040888963407ull;
        size_t off = (size_t)(seed >> 20) % n;
        size_t len = (size_t)(seed >> 7) % (n - off + 1);
        if (i % 4 == 0 && len > 70000) len = 70000 - (size_t)(seed % 100);
        cr_assert_eq(strata_blob_read_at(txn, id, off, buf, len, i % 2 ? STRATA_BLOB_VERIFY : 0),
                     STRATA_OK, "off %zu len %zu", off, len);
        cr_assert(memcmp(buf, src + off, len) == 0, "range %zu+%zu differs", off, len);
    }
    free(buf);
}

Test(blob_rw, stream_odd_pieces_and_ranged_reads) {
    tdb t;
    tdb_open(&t);
    size_t n = 3u << 20;
    uint8_t *src = random_buf(n, 1);
    strata_blob_opts small = { .content_type = "application/x-test", .label = "small chunks",
                               .ns = "ns1", .min_chunk = 512, .avg_chunk = 2048, .max_chunk = 8192 };
    strata_txn *w = tw(&t);
    uint64_t hlc;
    cr_assert_eq(strata_txn_hlc(w, &hlc), STRATA_OK);
    uint64_t a = stream_put(w, NULL, src, n);
    uint64_t b = stream_put(w, &small, src + 5, n - 5);
    check_content(w, a, src, n);   /* readable inside the writing txn */
    tcommit(w);

    strata_txn *r = tr(&t);
    check_content(r, a, src, n);
    check_content(r, b, src + 5, n - 5);
    strata_blob_info info;
    cr_assert_eq(strata_blob_info_get(r, b, &info), STRATA_OK);
    cr_assert_eq(info.created_hlc, hlc);
    cr_assert_eq(info.content_type.len, strlen("application/x-test"));
    cr_assert(memcmp(info.content_type.data, "application/x-test", info.content_type.len) == 0);
    cr_assert(info.label.len == 12 && memcmp(info.label.data, "small chunks", 12) == 0);
    cr_assert(info.ns.len == 3 && memcmp(info.ns.data, "ns1", 3) == 0);
    cr_assert_gt(info.n_chunks, 3 * 1024 * 1024 / 8192, "small chunks: %llu", (unsigned long long)info.n_chunks);
    strata_abort(r);

    tdb_reopen(&t);
    r = tr(&t);
    check_content(r, a, src, n);
    check_content(r, b, src + 5, n - 5);
    strata_abort(r);
    assert_consistent(&t);
    free(src);
    tdb_close(&t);
}

Test(blob_rw, put_and_stream_cut_the_same_chunks) {
    tdb t;
    tdb_open(&t);
    size_t n = (2u << 20) + 777;
    uint8_t *src = random_buf(n, 2);
    strata_txn *w = tw(&t);
    uint64_t a, b;
    strata_blob_stats s1, s2;
    cr_assert_eq(strata_blob_put(w, NULL, src, n, &a), STRATA_OK);
    cr_assert_eq(strata_blob_stats_get(w, &s1), STRATA_OK);
    b = stream_put(w, NULL, src, n);
    cr_assert_eq(strata_blob_stats_get(w, &s2), STRATA_OK);
    cr_assert_eq(s1.n_chunks, s2.n_chunks, "the streamed copy added chunks");
    cr_assert_eq(s1.stored_bytes, s2.stored_bytes);
    cr_assert_eq(s2.logical_bytes, 2 * (uint64_t)n);
    strata_blob_info ia, ib;
    cr_assert_eq(strata_blob_info_get(w, a, &ia), STRATA_OK);
    cr_assert_eq(strata_blob_info_get(w, b, &ib), STRATA_OK);
    cr_assert_eq(ia.n_chunks, ib.n_chunks);
    cr_assert_arr_eq(ia.sha256, ib.sha256, 32);
    /* CDC: chunk sizes within [16 KiB, 256 KiB] on average near 64 KiB */
    cr_assert_geq(ia.n_chunks, n / (256u << 10));
    cr_assert_leq(ia.n_chunks, n / (16u << 10) + 1);
    tcommit(w);
    assert_consistent(&t);
    free(src);
    tdb_close(&t);
}

Test(blob_rw, fixed_chunks_and_empty_blob) {
    tdb t;
    tdb_open(&t);
    size_t n = 100000;
    uint8_t *src = random_buf(n, 3);
    strata_blob_opts fx = { .chunking = STRATA_BLOB_FIXED, .avg_chunk = 4096 };
    strata_txn *w = tw(&t);
    uint64_t a, e;
    cr_assert_eq(strata_blob_put(w, &fx, src, n, &a), STRATA_OK);
    cr_assert_eq(strata_blob_put(w, NULL, NULL, 0, &e), STRATA_OK);
    tcommit(w);
    tdb_reopen(&t);
    strata_txn *r = tr(&t);
    strata_blob_info info;
    cr_assert_eq(strata_blob_info_get(r, a, &info), STRATA_OK);
    cr_assert_eq(info.n_chunks, (n + 4095) / 4096);
    check_content(r, a, src, n);
    cr_assert_eq(strata_blob_info_get(r, e, &info), STRATA_OK);
    cr_assert_eq(info.size, 0);
    cr_assert_eq(info.n_chunks, 0);
    uint8_t sha[32];
    sha256_of("", 0, sha);
    cr_assert_arr_eq(info.sha256, sha, 32);
    cr_assert_eq(strata_blob_verify(r, e), STRATA_OK);
    strata_blob_reader *rd;
    size_t got = 99;
    uint8_t b;
    cr_assert_eq(strata_blob_reader_open(r, e, 0, &rd), STRATA_OK);
    cr_assert_eq(strata_blob_read(rd, &b, 1, &got), STRATA_OK);
    cr_assert_eq(got, 0);
    strata_blob_reader_close(rd);
    strata_abort(r);
    assert_consistent(&t);
    free(src);
    tdb_close(&t);
}

Test(blob_rw, seek_then_stream) {
    tdb t;
    tdb_open(&t);
    size_t n = 1u << 20;
    uint8_t *src = random_buf(n, 4), buf[5000];
    strata_blob_opts o = { .min_chunk = 256, .avg_chunk = 1024, .max_chunk = 4096 };
    strata_txn *w = tw(&t);
    uint64_t id;
    cr_assert_eq(strata_blob_put(w, &o, src, n, &id), STRATA_OK);
    tcommit(w);
    strata_txn *r = tr(&t);
    strata_blob_reader *rd;
    cr_assert_eq(strata_blob_reader_open(r, id, STRATA_BLOB_VERIFY, &rd), STRATA_OK);
    uint64_t offs[] = { 0, n - 1, 123456, 4096, 4095, 999999, n - 5000, 1 };
    for (size_t i = 0; i < sizeof offs / sizeof *offs; i++) {
        size_t got, want = n - offs[i] < sizeof buf ? n - offs[i] : sizeof buf;
        uint64_t pos;
        cr_assert_eq(strata_blob_seek(rd, offs[i]), STRATA_OK);
        cr_assert_eq(strata_blob_read(rd, buf, sizeof buf, &got), STRATA_OK);
        cr_assert_eq(got, want);
        cr_assert(memcmp(buf, src + offs[i], got) == 0, "at %llu", (unsigned long long)offs[i]);
        cr_assert_eq(strata_blob_tell(rd, &pos, NULL), STRATA_OK);
        cr_assert_eq(pos, offs[i] + got);
    }
    strata_blob_reader_close(rd);
    strata_abort(r);
    free(src);
    tdb_close(&t);
}

/* Write src as one blob through a streaming writer in the given piece sizes
 * (cycled); pieces >= 256 KiB take the writer's two-thread hashing path. */
static uint64_t stream_sizes(strata_txn *txn, const strata_blob_opts *o, const uint8_t *src, size_t n,
                             const size_t *sz, size_t n_sz) {
    strata_blob_writer *w;
    uint64_t id = 0;
    cr_assert_eq(strata_blob_writer_begin(txn, o, &w), STRATA_OK);
    for (size_t off = 0, i = 0; off < n; i++) {
        size_t p = sz[i % n_sz];
        if (p > n - off) p = n - off;
        cr_assert_eq(strata_blob_write(w, src + off, p), STRATA_OK);
        off += p;
    }
    cr_assert_eq(strata_blob_writer_finish(w, &id), STRATA_OK);
    return id;
}

/* The hash of chunk-list row (id, 0). */
static void first_chunk_sha(strata_txn *txn, uint64_t id, uint8_t out[32]) {
    strata_table *cl;
    strata_slice v;
    uint8_t k[16] = { 0 };
    for (int i = 0; i < 8; i++) k[i] = (uint8_t)(id >> (56 - 8 * i));
    cr_assert_eq(strata_table_open(txn, "blob:chunklist", STRATA_KEY_BYTES, 0, &cl), STRATA_OK);
    cr_assert_eq(strata_get(cl, (strata_slice){ k, 16 }, &v), STRATA_OK);
    cr_assert_eq(v.len, 36);
    memcpy(out, v.data, 32);
}

/* Every way the writer hashes (one chunk hashed once, small pieces hashed
 * chunk by chunk, large pieces on two threads with and without buffered
 * bytes, or on the calling thread alone), with the SHA-NI kernel and with
 * OpenSSL, gives the SHA-256 of the content and the same chunks as put. */
Test(blob_rw, hashing_paths_agree) {
    static const size_t sizes[] = { 1, 100, 16383, 65536, 262143, 262144, 262145, 1048579,
                                    5u << 20 };
    static const size_t big_first[] = { 300000, 5, 262144 }, small[] = { 4096, 70001 };
    strata_blob_opts modes[] = {
        { 0 },
        { .chunking = STRATA_BLOB_FIXED, .avg_chunk = 4096 },
        { .min_chunk = 64, .avg_chunk = 256, .max_chunk = 1024 },
    };
    tdb t;
    tdb_open(&t);
    uint8_t *src = random_buf(5u << 20, 77);
    for (size_t m = 0; m < 4 * sizeof modes / sizeof *modes; m++) {
        blob_sha_select(m % 2 == 0);   /* the kernel (if the CPU has it), then OpenSSL */
        blob_writer_helper(m / 2 % 2 == 0);   /* large pieces with a helper thread, then without */
        strata_txn *w = tw(&t);
        for (size_t i = 0; i < sizeof sizes / sizeof *sizes; i++) {
            size_t n = sizes[i];
            uint8_t sha[32], c0[32];
            uint64_t ids[3];
            strata_blob_info info[3];
            strata_blob_stats s0, s1;
            sha256_of(src, n, sha);
            cr_assert_eq(strata_blob_put(w, &modes[m / 4], src, n, &ids[0]), STRATA_OK);
            cr_assert_eq(strata_blob_stats_get(w, &s0), STRATA_OK);
            ids[1] = stream_sizes(w, &modes[m / 4], src, n, big_first, 3);
            ids[2] = stream_sizes(w, &modes[m / 4], src, n, small, 2);
            cr_assert_eq(strata_blob_stats_get(w, &s1), STRATA_OK);
            cr_assert_eq(s1.n_chunks, s0.n_chunks, "mode %zu size %zu: copies added chunks", m, n);
            cr_assert_eq(s1.stored_bytes, s0.stored_bytes);
            for (int k = 0; k < 3; k++) {
                cr_assert_eq(strata_blob_info_get(w, ids[k], &info[k]), STRATA_OK);
                cr_assert_arr_eq(info[k].sha256, sha, 32, "mode %zu size %zu writer %d", m, n, k);
                cr_assert_eq(info[k].n_chunks, info[0].n_chunks);
                cr_assert_eq(strata_blob_verify(w, ids[k]), STRATA_OK);
            }
            if (info[0].n_chunks == 1) {   /* one chunk: its hash is the content's */
                first_chunk_sha(w, ids[0], c0);
                cr_assert_arr_eq(c0, sha, 32);
            }
            size_t len;
            uint8_t *back = read_whole(w, ids[2], 65536, &len);
            cr_assert_eq(len, n);
            cr_assert(memcmp(back, src, n) == 0);
            free(back);
        }
        tcommit(w);
        assert_consistent(&t);
    }
    blob_writer_helper(-1);
    free(src);
    tdb_close(&t);
}

/* strata_blob_put writes no pending row and keeps every counter exact; a
 * streaming writer is pending (row and counter) between its calls. */
Test(blob_rw, put_has_no_pending_state) {
    tdb t;
    tdb_open(&t);
    uint8_t *src = random_buf(1u << 20, 5);
    strata_txn *w = tw(&t);
    strata_table *pt;
    strata_blob_stats s;
    uint64_t a, b, c;
    cr_assert_eq(strata_blob_put(w, NULL, src, 4096, &a), STRATA_OK);
    cr_assert_eq(strata_blob_put(w, NULL, src, 1u << 20, &b), STRATA_OK);
    cr_assert_eq(a, 1);
    cr_assert_eq(b, 2);
    cr_assert_eq(strata_table_open(w, "blob:pending", STRATA_KEY_U64, 0, &pt), STRATA_NOTFOUND);
    cr_assert_eq(strata_blob_stats_get(w, &s), STRATA_OK);
    cr_assert_eq(s.n_blobs, 2);
    cr_assert_eq(s.n_pending, 0);
    cr_assert_eq(s.next_id, 3);
    cr_assert_eq(s.logical_bytes, 4096 + (1u << 20));
    cr_assert_eq(strata_blob_check(w, 1, NULL, NULL), STRATA_OK);
    strata_blob_writer *sw;
    cr_assert_eq(strata_blob_writer_begin(w, NULL, &sw), STRATA_OK);
    cr_assert_eq(strata_blob_write(sw, src + 1, 600000), STRATA_OK);
    cr_assert_eq(strata_blob_stats_get(w, &s), STRATA_OK);
    cr_assert_eq(s.n_pending, 1);
    cr_assert_eq(s.next_id, 4);
    cr_assert_eq(strata_blob_check(w, 1, NULL, NULL), STRATA_OK);   /* counters exact mid-write */
    cr_assert_eq(strata_blob_writer_finish(sw, &c), STRATA_OK);
    cr_assert_eq(c, 3);
    /* a failed put (bad options) takes no id */
    strata_blob_opts bad = { .chunking = 7 };
    cr_assert_eq(strata_blob_put(w, &bad, src, 10, NULL), STRATA_EINVAL);
    cr_assert_eq(strata_blob_delete(w, b), STRATA_OK);
    cr_assert_eq(strata_blob_stats_get(w, &s), STRATA_OK);
    cr_assert_eq(s.next_id, 4);
    cr_assert_eq(s.n_blobs, 2);
    cr_assert_eq(s.n_pending, 0);
    tcommit(w);
    assert_consistent(&t);
    free(src);
    tdb_close(&t);
}
