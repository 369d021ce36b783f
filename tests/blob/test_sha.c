/* tests/blob/test_sha.c - the writer's SHA-256 (blob/sha.c) against OpenSSL:
 * the SHA-NI kernel (when the CPU has it) and the OpenSSL path, one-shot and
 * streaming, on every length around the block and padding boundaries, on
 * unaligned input, split into random pieces, and two hashes advanced
 * together by blob_sha_update2 with unequal, unaligned pieces; then whole
 * blobs written with each path, checked with strata_blob_verify (OpenSSL). */
#include <criterion/criterion.h>
#include <stdlib.h>
#include <string.h>

#include "bt_util.h"
#include "blob_int.h"   /* blob_sha_*: static layer, hidden in the .so */

static uint64_t g_seed;
static size_t rnd(size_t n) {   /* [0, n) */
    g_seed = g_seed * 6364136223846793005ull + 1442695040888963407ull;
    return n ? (size_t)(g_seed >> 33) % n : 0;
}

/* Feed p[0, n) in random pieces of at most maxp bytes. */
static void hash_pieces(const uint8_t *p, size_t n, size_t maxp, uint8_t out[32]) {
    blob_sha s;
    cr_assert_eq(blob_sha_init(&s), STRATA_OK);
    for (size_t off = 0; off < n;) {
        size_t k = 1 + rnd(maxp);
        if (k > n - off) k = n - off;
        cr_assert_eq(blob_sha_update(&s, p + off, k), STRATA_OK);
        off += k;
    }
    cr_assert_eq(blob_sha_final(&s, out), STRATA_OK);
}

static void check_kernel(int ni) {
    int on = blob_sha_select(ni);
    cr_assert(on == 0 || ni, "the kernel is used only when asked for");
    cr_assert_str_eq(blob_sha_kernel(), on ? "sha-ni" : "openssl");
    uint8_t *src = random_buf(300000, 5);
    uint8_t want[32], got[32];
    g_seed = 99;
    for (size_t n = 0; n < 300; n++) {   /* every padding case, offsets 0..7 */
        size_t off = n % 8;
        sha256_of(src + off, n, want);
        cr_assert_eq(blob_sha_oneshot(src + off, n, got), STRATA_OK);
        cr_assert_arr_eq(got, want, 32, "oneshot n=%zu kernel %d", n, on);
        hash_pieces(src + off, n, 70, got);
        cr_assert_arr_eq(got, want, 32, "pieces n=%zu kernel %d", n, on);
    }
    for (int it = 0; it < 50; it++) {
        size_t n = rnd(300000 - 8), off = rnd(8);
        sha256_of(src + off, n, want);
        hash_pieces(src + off, n, it % 2 ? 100000 : 1000, got);
        cr_assert_arr_eq(got, want, 32, "pieces n=%zu kernel %d", n, on);
    }
    /* two hashes together: random unequal pieces, either side may be empty */
    for (int it = 0; it < 300; it++) {
        size_t na = rnd(it < 150 ? 5000 : 200000), nb = rnd(it < 150 ? 5000 : 90000);
        const uint8_t *pa = src + rnd(9), *pb = src + 100000 + rnd(9);
        blob_sha a, b;
        uint8_t wa[32], wb[32], ga[32], gb[32];
        cr_assert_eq(blob_sha_init(&a), STRATA_OK);
        cr_assert_eq(blob_sha_init(&b), STRATA_OK);
        for (size_t oa = 0, ob = 0; oa < na || ob < nb;) {
            size_t ka = rnd(it % 3 ? 700 : 70000), kb = rnd(it % 3 ? 700 : 70000);
            if (ka > na - oa) ka = na - oa;
            if (kb > nb - ob) kb = nb - ob;
            cr_assert_eq(blob_sha_update2(&a, pa + oa, ka, &b, pb + ob, kb), STRATA_OK);
            oa += ka;
            ob += kb;
        }
        cr_assert_eq(blob_sha_final(&a, ga), STRATA_OK);
        cr_assert_eq(blob_sha_final(&b, gb), STRATA_OK);
        sha256_of(pa, na, wa);
        sha256_of(pb, nb, wb);
        cr_assert_arr_eq(ga, wa, 32, "update2 a: na=%zu nb=%zu kernel %d", na, nb, on);
        cr_assert_arr_eq(gb, wb, 32, "update2 b: na=%zu nb=%zu kernel %d", na, nb, on);
    }
    free(src);
}

Test(blob_sha, kernel_matches_openssl) {
    check_kernel(1);
    blob_sha_select(1);
}

Test(blob_sha, openssl_path_matches_openssl) {
    check_kernel(0);
    blob_sha_select(1);
}

/* Blobs written with each implementation: the same chunks, and the content
 * and chunk hashes OpenSSL recomputes (strata_blob_verify, a deep check). */
Test(blob_sha, blobs_agree_across_kernels) {
    static const size_t sizes[] = { 100, 262144, 262145, 1048579, 3u << 20 };
    tdb t;
    tdb_open(&t);
    uint8_t *src = random_buf(3u << 20, 31);
    strata_txn *w = tw(&t);
    for (size_t i = 0; i < sizeof sizes / sizeof *sizes; i++) {
        strata_blob_info info[2];
        strata_blob_stats s0, s1;
        uint64_t id[2];
        for (int k = 0; k < 2; k++) {
            blob_sha_select(k == 0);
            cr_assert_eq(strata_blob_put(w, NULL, src, sizes[i], &id[k]), STRATA_OK);
            cr_assert_eq(strata_blob_stats_get(w, k ? &s1 : &s0), STRATA_OK);
            cr_assert_eq(strata_blob_info_get(w, id[k], &info[k]), STRATA_OK);
            cr_assert_eq(strata_blob_verify(w, id[k]), STRATA_OK);
        }
        cr_assert_arr_eq(info[0].sha256, info[1].sha256, 32, "size %zu", sizes[i]);
        cr_assert_eq(s1.n_chunks, s0.n_chunks, "size %zu: the second copy added chunks", sizes[i]);
    }
    blob_sha_select(1);
    tcommit(w);
    assert_consistent(&t);
    free(src);
    tdb_close(&t);
}
