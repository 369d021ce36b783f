/* tests/blob/test_format.c - golden tests of the on-disk layouts in
 * docs/BLOBS.md: the meta record, chunk-list, refs, stats, index and edge
 * rows of a known blob, byte for byte, the gear table's pinned values, and
 * the chunker's cuts against the byte-at-a-time rule of docs/BLOBS.md. */
#include <criterion/criterion.h>
#include <string.h>

#include "bt_util.h"
#include "blob_int.h"   /* blob_gear, blob_chunker_*: static layer, hidden in the .so */

Test(blob_format, gear_table_is_pinned) {
    cr_assert_eq(blob_gear[0], 0x79392ac5ebafeb90ull);
    cr_assert_eq(blob_gear[255], 0x90ca0577a95e320full);
}

static strata_slice get(strata_txn *r, const char *table, strata_key_type kt, const void *k, size_t kl) {
    strata_table *t;
    strata_slice v, key = { k, kl };
    cr_assert_eq(strata_table_open(r, table, kt, 0, &t), STRATA_OK, "%s", table);
    cr_assert_eq(strata_get(t, key, &v), STRATA_OK, "%s", table);
    return v;
}

static uint64_t fixed_clock(void *ctx) { (void)ctx; return 0x0102030405ull; }

Test(blob_format, rows_byte_for_byte) {
    tdb t;
    tdb_open(&t);
    cr_assert_eq(strata_set_clock(t.db, fixed_clock, NULL), STRATA_OK);
    strata_blob_opts o = { .content_type = "t/x", .label = "L", .ns = "ns" };
    strata_txn *w = tw(&t);
    uint64_t id, hlc;
    cr_assert_eq(strata_txn_hlc(w, &hlc), STRATA_OK);
    cr_assert_eq(strata_blob_put(w, &o, "hello", 5, &id), STRATA_OK);
    cr_assert_eq(id, 1);
    uint64_t id2;
    cr_assert_eq(strata_blob_put(w, NULL, "x", 1, &id2), STRATA_OK);
    cr_assert_eq(strata_blob_tag_add(w, id, "tg"), STRATA_OK);
    cr_assert_eq(strata_blob_link(w, id2, id, STRATA_BLOB_SUPPORTS, "c"), STRATA_OK);
    tcommit(w);
    strata_txn *r = tr(&t);
    uint8_t sha[32], k8[8] = { 1, 0, 0, 0, 0, 0, 0, 0 };
    sha256_of("hello", 5, sha);
    /* blob:meta */
    uint8_t meta[64 + 6] = { 1, 0, 3, 2, 1, 0, 0, 0, 5, 0, 0, 0, 0, 0, 0, 0 };
    for (int i = 0; i < 8; i++) meta[16 + i] = (uint8_t)(hlc >> (8 * i));
    meta[24] = 1;
    memcpy(meta + 32, sha, 32);
    memcpy(meta + 64, "t/xnsL", 6);
    strata_slice v = get(r, "blob:meta", STRATA_KEY_U64, k8, 8);
    cr_assert_eq(v.len, sizeof meta);
    cr_assert_arr_eq(v.data, meta, sizeof meta);
    /* blob:chunklist: (id BE, offset BE) -> sha, u32 LE length */
    uint8_t ck[16] = { 0, 0, 0, 0, 0, 0, 0, 1 }, cv[36];
    memcpy(cv, sha, 32);
    memcpy(cv + 32, (uint8_t[4]){ 5, 0, 0, 0 }, 4);
    v = get(r, "blob:chunklist", STRATA_KEY_BYTES, ck, 16);
    cr_assert(v.len == 36 && memcmp(v.data, cv, 36) == 0);
    /* blob:chunks: (sha, 0) -> bytes; (sha, 1) -> count u64, length u32, 0 u32 */
    uint8_t rv[16] = { 1, 0, 0, 0, 0, 0, 0, 0, 5, 0, 0, 0, 0, 0, 0, 0 }, chk[33];
    memcpy(chk, sha, 32);
    chk[32] = 1;
    v = get(r, "blob:chunks", STRATA_KEY_BYTES, chk, 33);
    cr_assert(v.len == 16 && memcmp(v.data, rv, 16) == 0);
    chk[32] = 0;
    v = get(r, "blob:chunks", STRATA_KEY_BYTES, chk, 33);
    cr_assert(v.len == 5 && memcmp(v.data, "hello", 5) == 0);
    strata_table *gone;
    cr_assert_eq(strata_table_open(r, "blob:refs", STRATA_KEY_BYTES, 0, &gone), STRATA_NOTFOUND);
    /* blob:stats: next_id 3, 2 blobs, 6 bytes, 2 chunks, 6 stored, 0 pending */
    uint8_t sv[48] = { 3, [8] = 2, [16] = 6, [24] = 2, [32] = 6 };
    v = get(r, "blob:stats", STRATA_KEY_BYTES, "stats", 5);
    cr_assert(v.len == 48 && memcmp(v.data, sv, 48) == 0);
    /* index keys */
    uint8_t nsk[11] = { 2, 'n', 's', 0, 0, 0, 0, 0, 0, 0, 1 };
    cr_assert_eq(get(r, "blob:ns", STRATA_KEY_BYTES, nsk, 11).len, 0);
    uint8_t tk[16] = { 0 };
    for (int i = 0; i < 8; i++) tk[7 - i] = (uint8_t)(hlc >> (8 * i));
    tk[15] = 1;
    cr_assert_eq(get(r, "blob:time", STRATA_KEY_BYTES, tk, 16).len, 0);
    uint8_t tgk[11] = { 2, 't', 'g', 0, 0, 0, 0, 0, 0, 0, 1 }, btk[10] = { 0, 0, 0, 0, 0, 0, 0, 1, 't', 'g' };
    cr_assert_eq(get(r, "blob:tags", STRATA_KEY_BYTES, tgk, 11).len, 0);
    cr_assert_eq(get(r, "blob:blobtags", STRATA_KEY_BYTES, btk, 10).len, 0);
    /* edges: out (2, 1, 4) -> "c"; in (1, 2, 4) -> empty */
    uint8_t eo[17] = { 0, 0, 0, 0, 0, 0, 0, 2, 0, 0, 0, 0, 0, 0, 0, 1, 4 };
    uint8_t ei[17] = { 0, 0, 0, 0, 0, 0, 0, 1, 0, 0, 0, 0, 0, 0, 0, 2, 4 };
    v = get(r, "blob:edges_out", STRATA_KEY_BYTES, eo, 17);
    cr_assert(v.len == 1 && ((const char *)v.data)[0] == 'c');
    cr_assert_eq(get(r, "blob:edges_in", STRATA_KEY_BYTES, ei, 17).len, 0);
    strata_abort(r);
    tdb_close(&t);
}

/* The cut rule of docs/BLOBS.md, one byte at a time. */
static size_t ref_cut(const blob_chunker *c, const uint8_t *p, size_t n) {
    if (n <= c->min) return n;
    size_t end = n < c->max ? n : c->max, mid = end < c->avg ? end : c->avg;
    uint64_t h = 0;
    for (size_t i = c->min; i < end; i++) {
        h = (h << 1) + blob_gear[p[i]];
        if (!(h & (i < mid ? c->mask_s : c->mask_l))) return i + 1;
    }
    return end;
}

Test(blob_format, chunker_cuts_match_the_byte_rule) {
    const strata_blob_opts opts[] = {
        { 0 },
        { .min_chunk = 64, .avg_chunk = 128, .max_chunk = 1024 },
        { .min_chunk = 64, .avg_chunk = 256, .max_chunk = 257 },
        { .min_chunk = 1000, .avg_chunk = 4096, .max_chunk = 5003 },
    };
    size_t n = 3u << 20;
    uint8_t *src = random_buf(n, 99);
    memset(src + (1u << 20), 0, 300000);   /* a long run of one byte value */
    for (size_t o = 0; o < sizeof opts / sizeof *opts; o++) {
        blob_chunker c;
        size_t cuts = 0;
        cr_assert_eq(blob_chunker_init(&c, &opts[o]), STRATA_OK);
        for (size_t pos = 0; pos < n; cuts++) {
            for (size_t left = 1; left <= 7 && left < n - pos; left += 3)   /* short tails too */
                cr_assert_eq(blob_chunker_cut(&c, src + pos, left), ref_cut(&c, src + pos, left));
            size_t a = blob_chunker_cut(&c, src + pos, n - pos), b = ref_cut(&c, src + pos, n - pos);
            cr_assert_eq(a, b, "opts %zu: cut at %zu: %zu, byte rule %zu", o, pos, a, b);
            pos += a;
        }
        cr_assert_gt(cuts, n / c.max);
    }
    free(src);
}

/* The cut searched inside a hashing pass (blob_sha_update2_scan: the scan
 * of the next chunk runs in the loop hashing this one) is the byte rule's,
 * and both hashes are OpenSSL's, for hashing passes of any length and
 * offset (so the scan stops part-way, at region ends and at hits), with
 * the SHA-NI kernel and with OpenSSL. */
Test(blob_format, cut_searched_while_hashing) {
    const strata_blob_opts opts[] = {
        { 0 },
        { .min_chunk = 64, .avg_chunk = 128, .max_chunk = 1024 },
        { .min_chunk = 100, .avg_chunk = 512, .max_chunk = 4099 },
        { .min_chunk = 1000, .avg_chunk = 4096, .max_chunk = 5003 },
    };
    size_t n = 2u << 20;
    uint8_t *src = random_buf(n, 123);
    memset(src + 700000, 0, 100000);   /* a long run of one byte value */
    uint64_t x = 42;
    for (int ni = 1; ni >= 0; ni--) {
        blob_sha_select(ni);
        for (size_t o = 0; o < sizeof opts / sizeof *opts; o++) {
            blob_chunker c;
            cr_assert_eq(blob_chunker_init(&c, &opts[o]), STRATA_OK);
            for (int t = 0; t < 300; t++) {
                x = x * 6364136223846793005ull + 1442695040888963407ull;
                size_t at = (size_t)(x >> 20) % (n - 1), left = n - at;
                size_t hl = 1 + (size_t)(x >> 5) % (2 * c.max);   /* bytes hashed in the pass */
                size_t skip = (size_t)(x >> 40) % 64;             /* the other stream's offset */
                if (hl + skip > at) hl = at > skip + 1 ? at - skip : 0;
                if (hl == 0) continue;
                const uint8_t *hp = src + at - hl - skip;
                blob_scan s;
                blob_sha a, b;
                uint8_t ha[32], hb[32], ra[32], rb[32];
                blob_scan_begin(&c, &s, src + at, left);
                cr_assert_eq(blob_sha_init(&a), STRATA_OK);
                cr_assert_eq(blob_sha_init(&b), STRATA_OK);
                cr_assert_eq(blob_sha_update(&a, hp, skip), STRATA_OK);   /* a partial block */
                cr_assert_eq(blob_sha_update2_scan(&a, hp + skip, hl, &b, hp + skip, hl, &c, &s), STRATA_OK);
                cr_assert_eq(blob_sha_final(&a, ha), STRATA_OK);
                cr_assert_eq(blob_sha_final(&b, hb), STRATA_OK);
                cr_assert_eq(blob_sha256(hp, skip + hl, ra), STRATA_OK);
                cr_assert_eq(blob_sha256(hp + skip, hl, rb), STRATA_OK);
                cr_assert_arr_eq(ha, ra, 32, "ni %d opts %zu try %d", ni, o, t);
                cr_assert_arr_eq(hb, rb, 32, "ni %d opts %zu try %d", ni, o, t);
                size_t got = blob_scan_finish(&c, &s), want = ref_cut(&c, src + at, left);
                cr_assert_eq(got, want, "ni %d opts %zu at %zu hashed %zu: cut %zu, byte rule %zu", ni, o, at,
                             hl, got, want);
            }
        }
    }
    blob_sha_select(1);
    free(src);
}
