/* tests/fractal/test_corrupt.c - damaged index tables give clear errors,
 * never a crash or a loop: a cycle, a dangling child, a disowned child, a
 * damaged node record or config, a missing buffer row, an assignment naming
 * no leaf. Also golden bytes of the config and node records. */
#include <criterion/criterion.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "db.h"
#include "fractal_int.h"
#include "ft_util.h"

static tdb g;
static void setup(void) { tdb_open(&g); }
static void teardown(void) { tdb_close(&g); }
TestSuite(fractal_corrupt, .init = setup, .fini = teardown);

static strata_table *itab(strata_txn *x, const char *suffix)
{
    char name[64];
    strata_table *t = NULL;
    strata_table_spec spec = { .key_type = (!strcmp(suffix, "edges") || !strcmp(suffix, "buf"))
                                               ? STRATA_KEY_BYTES : STRATA_KEY_U64 };
    snprintf(name, sizeof name, "__frac:c:%s", suffix);
    cr_assert_eq(db_internal_table_open(x, name, &spec, 0, &t), STRATA_OK);
    return t;
}

/* A committed index of 400 vectors, fan-out 3: several internal levels. */
static void build(void)
{
    float *data = ft_mixture(400, 4, 6, 1.0f, 41, NULL);
    strata_txn *x = tw(&g);
    strata_fractal_config c = ft_config(4, STRATA_METRIC_L2, 2, 16, 2, 3, 8, 4, STRATA_FRACTAL_KEEP_RAW);
    strata_fractal *f = NULL;
    cr_assert_eq(strata_fractal_create(x, "c", &c, &f), STRATA_OK);
    for (uint64_t i = 0; i < 400; i++) cr_assert_eq(strata_fractal_add(f, i, data + i * 4, 4, i), STRATA_OK);
    cr_assert_eq(strata_fractal_train(f, 0), STRATA_OK);
    strata_fractal_close(f);
    cr_assert_eq(strata_commit(x), STRATA_OK);
    free(data);
}

static uint32_t root_of(strata_txn *x, frac_node *root_rec)
{
    strata_slice v;
    uint8_t k[8] = {0};
    cr_assert_eq(strata_get(itab(x, "config"), (strata_slice){k, 8}, &v), STRATA_OK);
    frac_config c;
    cr_assert_eq(frac_config_get(v.data, v.len, &c), STRATA_OK);
    frac_le64_put(k, c.root);
    cr_assert_eq(strata_get(itab(x, "nodes"), (strata_slice){k, 8}, &v), STRATA_OK);
    cr_assert_eq(frac_node_get(v.data, v.len, root_rec), STRATA_OK);
    return c.root;
}

static void expect_corrupt(strata_txn *x)
{
    strata_fractal *f = NULL;
    cr_assert_eq(strata_fractal_open(x, "c", &f), STRATA_ECORRUPT);
    cr_assert_eq(strata_fractal_check(x, "c", NULL, NULL), STRATA_ECORRUPT);
}

Test(fractal_corrupt, cycle_is_detected)
{
    build();
    strata_txn *x = tw(&g);
    frac_node r;
    uint32_t root = root_of(x, &r);
    /* find an internal child c of the root and make the root c's child too */
    strata_cursor *cur;
    strata_slice k, v;
    cr_assert_eq(strata_cursor_open(itab(x, "edges"), &cur), STRATA_OK);
    uint32_t child = FRAC_NONE;
    for (int rc = strata_cursor_first(cur); rc == STRATA_OK; rc = strata_cursor_next(cur)) {
        cr_assert_eq(strata_cursor_get(cur, &k, &v), STRATA_OK);
        if (frac_be32_get(k.data) == root) { child = frac_be32_get((const uint8_t *)k.data + 4); break; }
    }
    strata_cursor_close(cur);
    cr_assert_neq(child, FRAC_NONE);
    r.id = root; r.parent = child; r.level = 0; r.leaf = 1; r.n_child = r.n_child; r.pop = 0;
    r.n_buf = 0; r.n_codes = 0;
    uint8_t rec[NODE_SIZE], key[8], ek[EDGE_KEY_LEN];
    frac_node_put(rec, &r);   /* a valid-looking record: leaf under its own child */
    frac_le64_put(key, root);
    cr_assert_eq(strata_put(itab(x, "nodes"), (strata_slice){key, 8}, (strata_slice){rec, NODE_SIZE}), STRATA_OK);
    frac_edge_key(ek, child, root);
    cr_assert_eq(strata_put(itab(x, "edges"), (strata_slice){ek, 8}, (strata_slice){"", 0}), STRATA_OK);
    expect_corrupt(x);
    strata_abort(x);
}

Test(fractal_corrupt, dangling_and_disowned_children)
{
    build();
    strata_txn *x = tw(&g);
    frac_node r;
    uint32_t root = root_of(x, &r);
    uint8_t ek[EDGE_KEY_LEN];
    frac_edge_key(ek, root, 123456);   /* no such node */
    cr_assert_eq(strata_put(itab(x, "edges"), (strata_slice){ek, 8}, (strata_slice){"", 0}), STRATA_OK);
    expect_corrupt(x);
    strata_abort(x);
    x = tw(&g);
    root = root_of(x, &r);
    frac_edge_key(ek, root, root);      /* a self loop */
    cr_assert_eq(strata_put(itab(x, "edges"), (strata_slice){ek, 8}, (strata_slice){"", 0}), STRATA_OK);
    expect_corrupt(x);
    strata_abort(x);
}

Test(fractal_corrupt, damaged_records)
{
    build();
    strata_txn *x = tw(&g);
    frac_node r;
    uint32_t root = root_of(x, &r);
    uint8_t key[8], rec[NODE_SIZE];
    frac_le64_put(key, root);
    frac_node_put(rec, &r);
    rec[NODE_OFF_POP] ^= 1;   /* check word no longer matches */
    cr_assert_eq(strata_put(itab(x, "nodes"), (strata_slice){key, 8}, (strata_slice){rec, NODE_SIZE}), STRATA_OK);
    expect_corrupt(x);
    strata_abort(x);
    x = tw(&g);
    uint8_t k0[8] = {0}, cfg[CFG_SIZE];
    strata_slice v;
    cr_assert_eq(strata_get(itab(x, "config"), (strata_slice){k0, 8}, &v), STRATA_OK);
    memcpy(cfg, v.data, CFG_SIZE);
    cfg[CFG_OFF_DIM] ^= 0x40;
    cr_assert_eq(strata_put(itab(x, "config"), (strata_slice){k0, 8}, (strata_slice){cfg, CFG_SIZE}), STRATA_OK);
    expect_corrupt(x);
    strata_abort(x);
}

/* An index written by format version 2 (80-byte config record, posting lists
 * without raw vectors) is refused with STRATA_EVERSION by open, check and the
 * operations, not misread or reported as damaged. */
Test(fractal_corrupt, old_format_version_is_refused)
{
    build();
    strata_txn *x = tw(&g);
    uint8_t k0[8] = {0}, old[80];
    strata_slice v;
    cr_assert_eq(strata_get(itab(x, "config"), (strata_slice){k0, 8}, &v), STRATA_OK);
    memcpy(old, v.data, 76);
    frac_le16_put(old + CFG_OFF_VERSION, 2);
    frac_le32_put(old + 76, frac_check32(old, 76));
    cr_assert_eq(strata_put(itab(x, "config"), (strata_slice){k0, 8}, (strata_slice){old, 80}), STRATA_OK);
    strata_fractal *f = NULL;
    cr_assert_eq(strata_fractal_open(x, "c", &f), STRATA_EVERSION);
    cr_assert_null(f);
    cr_assert_eq(strata_fractal_check(x, "c", NULL, NULL), STRATA_EVERSION);
    strata_abort(x);
}

Test(fractal_corrupt, missing_rows_are_reported_not_crashed_on)
{
    build();
    strata_txn *x = tw(&g);
    /* a vector whose buffer row vanished, another whose assignment names no leaf */
    strata_table *buf = itab(x, "buf"), *as = itab(x, "assign");
    strata_slice k, v;
    cr_assert_eq(strata_first(buf, &k, &v), STRATA_OK);
    uint8_t bk[BUF_KEY_LEN];
    memcpy(bk, k.data, BUF_KEY_LEN);
    cr_assert_eq(strata_del(buf, (strata_slice){bk, BUF_KEY_LEN}), STRATA_OK);
    cr_assert_eq(strata_fractal_check(x, "c", NULL, NULL), STRATA_ECORRUPT);
    uint8_t ak[8], av[ASSIGN_LEN];
    frac_le64_put(ak, frac_be64_get(bk + 4));
    frac_assign_put(av, 999999, WHERE_BUF, 0);
    cr_assert_eq(strata_put(as, (strata_slice){ak, 8}, (strata_slice){av, ASSIGN_LEN}), STRATA_OK);
    strata_fractal *f = NULL;
    int rc = strata_fractal_open(x, "c", &f);
    if (rc == STRATA_OK) {   /* the shape is fine; the rows are not */
        cr_assert_eq(strata_fractal_delete(f, frac_be64_get(bk + 4)), STRATA_ECORRUPT);
        float q[4] = {0};
        strata_hit h[3];
        size_t got;
        rc = strata_fractal_search(f, q, 4, 3, NULL, h, &got);
        cr_assert(rc == STRATA_OK || rc == STRATA_ECORRUPT || rc == STRATA_EBADTXN);
        strata_fractal_close(f);
    } else {
        cr_assert_eq(rc, STRATA_ECORRUPT);
    }
    strata_abort(x);
}

/* Golden layout of posting-list codes (docs/FRACTAL.md "Posting list"):
 * byte j of vector 64 b + l at (b * m + j) * 64 + l, lanes past n zero, and
 * the list's size for n = 65, m = 2, dim = 4 with and without raw vectors. */
Test(fractal_corrupt, golden_posting_codes)
{
    enum { N = 65, M = 2 };
    uint8_t vm[N * M], blk[2 * M * FRAC_BLK], back[M];
    for (int i = 0; i < N * M; i++) vm[i] = (uint8_t)(i * 7 + 1);
    frac_codes_block(vm, N, M, blk);
    cr_assert_eq(blk[0], vm[0]);                      /* vector 0, subspace 0 */
    cr_assert_eq(blk[64], vm[1]);                     /* vector 0, subspace 1 */
    cr_assert_eq(blk[63], vm[63 * M]);                /* vector 63, subspace 0 */
    cr_assert_eq(blk[2 * 64], vm[64 * M]);            /* vector 64: block 1, lane 0 */
    cr_assert_eq(blk[3 * 64], vm[64 * M + 1]);
    for (int l = 1; l < FRAC_BLK; l++) cr_assert_eq(blk[2 * 64 + l] | blk[3 * 64 + l], 0);
    for (uint32_t i = 0; i < N; i++) {
        frac_code_get(blk, M, i, back);
        cr_assert_eq(memcmp(back, vm + i * M, M), 0, "vector %u", i);
    }
    cr_assert_eq(frac_post_size(N, M, 4, 0), 8 + 16 + 65 * 20 + 2 * M * 64);
    cr_assert_eq(frac_post_size(N, M, 4, 1), 8 + 16 + 65 * (20 + 16) + 2 * M * 64);
    cr_assert_eq(frac_post_size(64, M, 4, 0), 8 + 16 + 64 * 20 + 1 * M * 64);
}

/* Golden bytes: the config and node records of docs/FRACTAL.md. */
Test(fractal_corrupt, golden_records)
{
    frac_config c = { .flags = 1, .dim = 128, .metric = 2, .pq_m = 32, .max_leaf = 256,
                      .min_leaf = 32, .max_fanout = 32, .max_depth = 8, .buffer_cap = 32,
                      .train_size = 1000, .train_iters = 10, .root = 7, .next_node = 9,
                      .n_vectors = 0x0102030405ull, .seed = 42, .cb_gen = 3,
                      .retrain_growth = 150, .n_trained = 0x0A0B0C0Dull };
    uint8_t b[CFG_SIZE];
    frac_config_put(b, &c);
    static const uint8_t want_head[] = {
        0x46, 0x52, 0x43, 0x31, 0x05, 0x00, 0x01, 0x00, 0x80, 0x00, 0x00, 0x00,  /* FRC1 v5 raw dim */
        0x02, 0x00, 0x00, 0x00, 0x20, 0x00, 0x00, 0x00, 0x00, 0x01, 0x00, 0x00,  /* cosine m leaf */
    };
    cr_assert_eq(memcmp(b, want_head, sizeof want_head), 0);
    static const uint8_t want_tail[] = {   /* offset 72: cb_gen, retrain_growth, n_trained */
        0x03, 0x00, 0x00, 0x00, 0x96, 0x00, 0x00, 0x00,
        0x0D, 0x0C, 0x0B, 0x0A, 0x00, 0x00, 0x00, 0x00,
    };
    cr_assert_eq(CFG_SIZE, 92);
    cr_assert_eq(memcmp(b + CFG_OFF_CB_GEN, want_tail, sizeof want_tail), 0);
    cr_assert_eq(frac_le32_get(b + CFG_OFF_ROOT), 7);
    cr_assert_eq(frac_le64_get(b + CFG_OFF_NVEC), 0x0102030405ull);
    cr_assert_eq(frac_le32_get(b + CFG_OFF_CHECK), frac_check32(b, CFG_OFF_CHECK));
    cr_assert_eq(frac_check32((const uint8_t *)"a", 1), 0xE40C292Cu);   /* FNV-1a("a") */
    frac_config d;
    cr_assert_eq(frac_config_get(b, CFG_SIZE, &d), STRATA_OK);
    cr_assert(d.flags == c.flags && d.dim == c.dim && d.metric == c.metric && d.pq_m == c.pq_m &&
              d.max_leaf == c.max_leaf && d.min_leaf == c.min_leaf && d.max_fanout == c.max_fanout &&
              d.max_depth == c.max_depth && d.buffer_cap == c.buffer_cap &&
              d.train_size == c.train_size && d.train_iters == c.train_iters && d.root == c.root &&
              d.next_node == c.next_node && d.n_vectors == c.n_vectors && d.seed == c.seed &&
              d.cb_gen == c.cb_gen && d.retrain_growth == c.retrain_growth &&
              d.n_trained == c.n_trained);
    /* a version-2 record (80 bytes, no retrain policy) is another version */
    uint8_t old[80];
    memcpy(old, b, 80);
    frac_le16_put(old + CFG_OFF_VERSION, 2);
    frac_le32_put(old + 76, frac_check32(old, 76));
    cr_assert_eq(frac_config_get(old, sizeof old, &d), STRATA_EVERSION);
    /* version-3 and -4 records (same layout; codes vector-major, sums rows
     * without the sum of squared norms) are other versions */
    for (uint16_t ver = 3; ver <= 4; ver++) {
        uint8_t v3[CFG_SIZE];
        memcpy(v3, b, CFG_SIZE);
        frac_le16_put(v3 + CFG_OFF_VERSION, ver);
        frac_le32_put(v3 + CFG_OFF_CHECK, frac_check32(v3, CFG_OFF_CHECK));
        cr_assert_eq(frac_config_get(v3, CFG_SIZE, &d), STRATA_EVERSION, "version %u", ver);
    }
    cr_assert_eq(frac_config_get(b, CFG_SIZE - 1, &d), STRATA_ECORRUPT);
    b[CFG_OFF_RETRAIN + 3] = 0x7F;   /* retrain_growth out of range, check word fixed */
    frac_le32_put(b + CFG_OFF_CHECK, frac_check32(b, CFG_OFF_CHECK));
    cr_assert_eq(frac_config_get(b, CFG_SIZE, &d), STRATA_ECORRUPT);
    frac_node n = { .leaf = 0, .level = 2, .parent = FRAC_NONE, .n_child = 5, .pop = 77,
                    .ts_min = 3, .ts_max = 9 }, m;
    uint8_t r[NODE_SIZE];
    frac_node_put(r, &n);
    static const uint8_t want_node[] = { 0x05, 0x01, 0x02, 0x00, 0xFF, 0xFF, 0xFF, 0xFF,
                                         0x05, 0x00, 0x00, 0x00 };
    cr_assert_eq(memcmp(r, want_node, sizeof want_node), 0);
    cr_assert_eq(r[NODE_OFF_POP], 77);
    cr_assert_eq(frac_node_get(r, NODE_SIZE, &m), STRATA_OK);
    cr_assert_eq(m.pop, 77);
    cr_assert_eq(m.ts_max, 9);
    cr_assert_eq(frac_node_get(r, NODE_SIZE - 1, &m), STRATA_ECORRUPT);
}
