/* tests/blob/test_format.c - golden tests of the on-disk layouts in
 * docs/BLOBS.md: the meta record, chunk-list, refs, stats, index and edge
 * rows of a known blob, byte for byte, and the gear table's pinned values. */
#include <criterion/criterion.h>
#include <string.h>

#include "bt_util.h"

extern const uint64_t blob_gear[256];   /* blob/gear.c (static layer, hidden in the .so) */

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
    /* blob:refs and blob:chunks */
    uint8_t rv[16] = { 1, 0, 0, 0, 0, 0, 0, 0, 5, 0, 0, 0, 0, 0, 0, 0 };
    v = get(r, "blob:refs", STRATA_KEY_BYTES, sha, 32);
    cr_assert(v.len == 16 && memcmp(v.data, rv, 16) == 0);
    v = get(r, "blob:chunks", STRATA_KEY_BYTES, sha, 32);
    cr_assert(v.len == 5 && memcmp(v.data, "hello", 5) == 0);
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
