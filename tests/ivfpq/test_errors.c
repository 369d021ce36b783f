/* tests/ivfpq/test_errors.c - bad input gets a clear error code: dimension
 * mismatch, search or insert before training, nprobe 0, NaN and overflowing
 * vectors, rerank without raw vectors, too small or degenerate training
 * samples (warnings), damaged config / centroid / codebook rows and posting
 * blocks and NaN stored terms (STRATA_ECORRUPT), drop removing every table,
 * plus a fuzz-style loop feeding mutated records to the decoders (only
 * STRATA_OK or STRATA_ECORRUPT, never a crash). */
#include <float.h>

#include "itest.h"
#include "db.h"
#include "ivfpq_int.h"

enum { N = 10000, DIM = 16 };

static const strata_ivf_config CFG = {.dim = DIM, .metric = STRATA_METRIC_L2, .nlist = 16, .m = 4,
                                      .nprobe = 4, .flags = STRATA_IVF_RAW, .seed = 1};

Test(ivfpq_errors, bad_input)
{
    it_db d;
    it_db_open(&d);
    float *x = it_mixture(N, DIM, 20, it_seed());
    strata_txn *w;
    strata_ivf *ix;
    strata_hit h[4];
    size_t n;
    cr_assert_eq(strata_begin_write(d.db, &w), STRATA_OK);
    strata_ivf_config bad = CFG;
    bad.m = 5;                                           /* 16 % 5 != 0 */
    cr_assert_eq(strata_ivf_create(w, "e", &bad, &ix), STRATA_EINVAL);
    bad = CFG; bad.nprobe = 0;
    cr_assert_eq(strata_ivf_create(w, "e", &bad, &ix), STRATA_EINVAL);
    bad = CFG; bad.metric = STRATA_METRIC_L1;
    cr_assert_eq(strata_ivf_create(w, "e", &bad, &ix), STRATA_EINVAL);
    cr_assert_eq(strata_ivf_create(w, "", &CFG, &ix), STRATA_EINVAL);
    cr_assert_eq(strata_ivf_open(w, "e", &ix), STRATA_NOTFOUND);
    cr_assert_eq(strata_ivf_create(w, "e", &CFG, &ix), STRATA_OK);
    strata_ivf *ix2;
    cr_assert_eq(strata_ivf_create(w, "e", &CFG, &ix2), STRATA_EEXIST);
    /* before training */
    cr_assert_eq(strata_ivf_search(ix, x, DIM, 4, NULL, h, &n), STRATA_EINVAL);
    cr_assert_eq(strata_ivf_insert(ix, 1, x, DIM, 0), STRATA_EINVAL);
    /* training input */
    cr_assert_eq(strata_ivf_train(ix, x, N, DIM + 1, NULL), STRATA_EINVAL);
    cr_assert_eq(strata_ivf_train(ix, x, 8, DIM, NULL), STRATA_EINVAL);    /* n < nlist */
    float keep = x[5 * DIM + 3];
    x[5 * DIM + 3] = NAN;
    cr_assert_eq(strata_ivf_train(ix, x, N, DIM, NULL), STRATA_EINVAL);
    x[5 * DIM + 3] = keep;
    unsigned warn = 99;
    cr_assert_eq(strata_ivf_train(ix, x, N, DIM, &warn), STRATA_OK);
    cr_assert_eq(warn, 0u);
    /* writes */
    float v[DIM];
    memcpy(v, x, sizeof v);
    cr_assert_eq(strata_ivf_insert(ix, 1, v, DIM - 1, 0), STRATA_EINVAL);
    cr_assert_eq(strata_ivf_insert(ix, 1, v, DIM, 9), STRATA_EINVAL);    /* no ATTR flag */
    v[0] = NAN;
    cr_assert_eq(strata_ivf_insert(ix, 1, v, DIM, 0), STRATA_EINVAL);
    v[0] = INFINITY;
    cr_assert_eq(strata_ivf_insert(ix, 1, v, DIM, 0), STRATA_EINVAL);
    for (size_t i = 0; i < DIM; i++) v[i] = FLT_MAX / 2;  /* finite, norm overflows */
    cr_assert_eq(strata_ivf_insert(ix, 1, v, DIM, 0), STRATA_EINVAL);
    uint64_t ids[2] = {4, 4};
    cr_assert_eq(strata_ivf_insert_batch(ix, 2, ids, x, DIM, NULL), STRATA_EINVAL);
    cr_assert_eq(strata_ivf_insert(ix, 1, x, DIM, 0), STRATA_OK);
    cr_assert_eq(strata_ivf_train(ix, x, N, DIM, NULL), STRATA_EEXIST);
    /* search input */
    strata_ivf_params p;
    strata_ivf_params_default(&p);
    p.nprobe = 0;
    cr_assert_eq(strata_ivf_search(ix, x, DIM, 1, &p, h, &n), STRATA_EINVAL);
    p.nprobe = 1000;                                     /* > nlist: all clusters */
    cr_assert_eq(strata_ivf_search(ix, x, DIM, 1, &p, h, &n), STRATA_OK);
    cr_assert_eq(h[0].id, 1);
    cr_assert_eq(strata_ivf_search(ix, x, DIM, 0, NULL, h, &n), STRATA_EINVAL);
    cr_assert_eq(strata_ivf_search(ix, x, DIM + 1, 1, NULL, h, &n), STRATA_EINVAL);
    memcpy(v, x, sizeof v);
    v[2] = NAN;
    cr_assert_eq(strata_ivf_search(ix, v, DIM, 1, NULL, h, &n), STRATA_EINVAL);
    cr_assert_eq(strata_ivf_search(ix, x, DIM, 4, NULL, h, &n), STRATA_OK);
    cr_assert_eq(n, 1);                                  /* one vector stored */
    strata_ivf_close(ix);
    strata_ivf_close(NULL);
    /* rerank needs raw vectors */
    bad = CFG; bad.flags = 0;
    cr_assert_eq(strata_ivf_create(w, "noraw", &bad, &ix), STRATA_OK);
    cr_assert_eq(strata_ivf_train(ix, x, N, DIM, NULL), STRATA_OK);
    p.nprobe = 2; p.rerank = 10;
    cr_assert_eq(strata_ivf_search(ix, x, DIM, 1, &p, h, &n), STRATA_EINVAL);
    strata_ivf_close(ix);
    cr_assert_eq(strata_ivf_drop(w, "noraw"), STRATA_OK);
    cr_assert_eq(strata_ivf_open(w, "noraw", &ix), STRATA_NOTFOUND);
    cr_assert_eq(strata_commit(w), STRATA_OK);
    free(x);
    it_db_close(&d);
}

Test(ivfpq_errors, training_warnings)
{
    it_db d;
    it_db_open(&d);
    float *x = it_mixture(N, DIM, 20, it_seed());
    strata_txn *w;
    strata_ivf *ix;
    cr_assert_eq(strata_begin_write(d.db, &w), STRATA_OK);
    strata_ivf_config c = CFG;
    c.nlist = 100;
    cr_assert_eq(strata_ivf_create(w, "a", &c, &ix), STRATA_OK);
    unsigned warn = 0;
    cr_assert_eq(strata_ivf_train(ix, x, 1000, DIM, &warn), STRATA_OK);  /* < 39 per list */
    cr_assert(warn & STRATA_IVF_WARN_SMALL_SAMPLE);
    cr_assert(warn & STRATA_IVF_WARN_PQ_SAMPLE);
    cr_assert_eq(strata_ivf_train(ix, x, 200, DIM, &warn), STRATA_EINVAL);  /* < 256 */
    strata_ivf_close(ix);
    /* degenerate: only 10 distinct points for 16 lists */
    float *y = malloc((size_t)N * DIM * sizeof *y);
    for (size_t i = 0; i < N; i++) memcpy(y + i * DIM, x + (i % 10) * DIM, DIM * sizeof *y);
    cr_assert_eq(strata_ivf_create(w, "b", &CFG, &ix), STRATA_OK);
    warn = 0;
    cr_assert_eq(strata_ivf_train(ix, y, N, DIM, &warn), STRATA_OK);
    cr_assert(warn & STRATA_IVF_WARN_DEGENERATE, "warn %#x", warn);
    strata_ivf_close(ix);
    strata_abort(w);
    free(x); free(y);
    it_db_close(&d);
}

/* Overwrite one row of an internal table of index "c" with damaged bytes. */
static void damage(strata_db *db, const char *table, const void *key, size_t klen, size_t byte,
                   int trunc)
{
    strata_txn *w;
    strata_table *t;
    strata_slice v;
    strata_table_spec spec = {.key_type = STRATA_KEY_BYTES};
    cr_assert_eq(strata_begin_write(db, &w), STRATA_OK);
    cr_assert_eq(db_internal_table_open(w, table, &spec, 0, &t), STRATA_OK);
    cr_assert_eq(strata_get(t, (strata_slice){key, klen}, &v), STRATA_OK);
    uint8_t *buf = malloc(v.len);
    memcpy(buf, v.data, v.len);
    size_t len = trunc ? v.len - 1 : v.len;
    if (!trunc) buf[byte % v.len] ^= 0x10;
    cr_assert_eq(strata_put(t, (strata_slice){key, klen}, (strata_slice){buf, len}), STRATA_OK);
    free(buf);
    cr_assert_eq(strata_commit(w), STRATA_OK);
}

static int open_rc(strata_db *db)
{
    strata_txn *r;
    strata_ivf *ix = NULL;
    cr_assert_eq(strata_begin_read(db, &r), STRATA_OK);
    int rc = strata_ivf_open(r, "c", &ix);
    if (rc == STRATA_OK) {
        strata_hit h[5];
        size_t n;
        float q[DIM] = {0};
        strata_ivf_params p;
        strata_ivf_params_default(&p);
        p.nprobe = 16;
        rc = strata_ivf_search(ix, q, DIM, 5, &p, h, &n);
        strata_ivf_close(ix);
    }
    strata_abort(r);
    return rc;
}

Test(ivfpq_errors, damaged_rows)
{
    it_db d;
    it_db_open(&d);
    float *x = it_mixture(N, DIM, 20, it_seed());
    it_build(d.db, "c", &CFG, x, 2000, 2000, NULL);
    cr_assert_eq(open_rc(d.db), STRATA_OK);
    uint8_t k3[4] = {0, 0, 0, 3};
    damage(d.db, "__ivf:c:codebooks", k3, 4, 77, 0);     /* one flipped bit */
    cr_assert_eq(open_rc(d.db), STRATA_ECORRUPT);
    it_db_close(&d);
    it_db_open(&d);
    it_build(d.db, "c", &CFG, x, 2000, 2000, NULL);
    damage(d.db, "__ivf:c:centroids", k3, 4, 0, 1);      /* truncated */
    cr_assert_eq(open_rc(d.db), STRATA_ECORRUPT);
    it_db_close(&d);
    it_db_open(&d);
    it_build(d.db, "c", &CFG, x, 2000, 2000, NULL);
    damage(d.db, "__ivf:c:config", "config", 6, 20, 0);  /* m field */
    cr_assert_eq(open_rc(d.db), STRATA_ECORRUPT);
    it_db_close(&d);
    it_db_open(&d);
    it_build(d.db, "c", &CFG, x, 2000, 2000, NULL);
    strata_txn *r;                                        /* first posting block */
    strata_table *t;
    strata_slice k, v;
    strata_table_spec spec = {.key_type = STRATA_KEY_BYTES};
    cr_assert_eq(strata_begin_read(d.db, &r), STRATA_OK);
    cr_assert_eq(db_internal_table_open(r, "__ivf:c:lists", &spec, 0, &t), STRATA_OK);
    cr_assert_eq(strata_first(t, &k, &v), STRATA_OK);
    uint8_t key[LIST_KEY_LEN];
    memcpy(key, k.data, LIST_KEY_LEN);
    strata_abort(r);
    damage(d.db, "__ivf:c:lists", key, LIST_KEY_LEN, BLK_OFF_N, 0);   /* count */
    cr_assert_eq(open_rc(d.db), STRATA_ECORRUPT);
    it_db_close(&d);
    /* stored L2 terms made NaN: the scan reports them (a NaN passes every
     * bound check, so it always reaches the heap's finiteness check) */
    it_db_open(&d);
    it_build(d.db, "c", &CFG, x, 2000, 2000, NULL);
    {
        strata_txn *w;
        cr_assert_eq(strata_begin_write(d.db, &w), STRATA_OK);
        cr_assert_eq(db_internal_table_open(w, "__ivf:c:lists", &spec, 0, &t), STRATA_OK);
        cr_assert_eq(strata_get(t, (strata_slice){key, LIST_KEY_LEN}, &v), STRATA_OK);
        uint8_t *buf = malloc(v.len);
        memcpy(buf, v.data, v.len);
        uint32_t n = (uint32_t)buf[BLK_OFF_N] | (uint32_t)buf[BLK_OFF_N + 1] << 8;
        cr_assert_eq(buf[BLK_OFF_FLAGS], BLK_F_TERM | BLK_F_RAW);
        float nan = NAN;
        for (uint32_t i = 0; i < n; i++) memcpy(buf + BLK_HDR + 8 * (size_t)n + 4 * (size_t)i, &nan, 4);
        cr_assert_eq(strata_put(t, (strata_slice){key, LIST_KEY_LEN}, (strata_slice){buf, v.len}),
                     STRATA_OK);
        free(buf);
        cr_assert_eq(strata_commit(w), STRATA_OK);
    }
    cr_assert_eq(open_rc(d.db), STRATA_ECORRUPT);
    free(x);
    it_db_close(&d);
}

/* Drop removes every table of the index from the catalog; the name can be
 * created again, empty, and other indexes are untouched. */
Test(ivfpq_errors, drop_removes_tables)
{
    it_db d;
    it_db_open(&d);
    float *x = it_mixture(N, DIM, 20, it_seed());
    it_build(d.db, "c", &CFG, x, 2000, 2000, NULL);
    it_build(d.db, "keep", &CFG, x, 1000, 1000, NULL);
    static const char *const tabs[] = {"__ivf:c:config", "__ivf:c:centroids", "__ivf:c:codebooks",
                                       "__ivf:c:lists", "__ivf:c:assign"};
    strata_table_spec spec = {.key_type = STRATA_KEY_BYTES};
    strata_txn *w;
    strata_table *t;
    strata_ivf *ix;
    cr_assert_eq(strata_begin_write(d.db, &w), STRATA_OK);
    cr_assert_eq(strata_ivf_drop(w, "nope"), STRATA_NOTFOUND);
    cr_assert_eq(strata_ivf_drop(w, ""), STRATA_EINVAL);
    cr_assert_eq(strata_ivf_drop(w, "c"), STRATA_OK);
    cr_assert_eq(strata_ivf_drop(w, "c"), STRATA_NOTFOUND);
    cr_assert_eq(strata_commit(w), STRATA_OK);
    it_db_reopen(&d);
    strata_txn *r;
    cr_assert_eq(strata_begin_read(d.db, &r), STRATA_OK);
    for (size_t i = 0; i < sizeof tabs / sizeof tabs[0]; i++) {
        spec.key_type = strstr(tabs[i], "assign") ? STRATA_KEY_U64 : STRATA_KEY_BYTES;
        cr_assert_eq(db_internal_table_open(r, tabs[i], &spec, 0, &t), STRATA_NOTFOUND, "%s", tabs[i]);
    }
    cr_assert_eq(strata_ivf_open(r, "c", &ix), STRATA_NOTFOUND);
    cr_assert_eq(strata_ivf_open(r, "keep", &ix), STRATA_OK);
    strata_ivf_info info;
    cr_assert_eq(strata_ivf_info_get(ix, &info), STRATA_OK);
    cr_assert_eq(info.n_vectors, 1000);
    strata_ivf_close(ix);
    strata_abort(r);
    /* re-create under the same name: a fresh, empty index */
    cr_assert_eq(strata_begin_write(d.db, &w), STRATA_OK);
    cr_assert_eq(strata_ivf_create(w, "c", &CFG, &ix), STRATA_OK);
    cr_assert_eq(strata_ivf_info_get(ix, &info), STRATA_OK);
    cr_assert_eq(info.n_vectors, 0);
    cr_assert_eq(info.n_blocks, 0);
    cr_assert_eq(info.trained, 0);
    strata_ivf_close(ix);
    /* drop in a transaction that aborts: the index survives */
    cr_assert_eq(strata_commit(w), STRATA_OK);
    cr_assert_eq(strata_begin_write(d.db, &w), STRATA_OK);
    cr_assert_eq(strata_ivf_drop(w, "keep"), STRATA_OK);
    strata_abort(w);
    cr_assert_eq(strata_begin_read(d.db, &r), STRATA_OK);
    cr_assert_eq(strata_ivf_open(r, "keep", &ix), STRATA_OK);
    strata_ivf_close(ix);
    strata_abort(r);
    free(x);
    it_db_close(&d);
}

/* Mutated records into the decoders: never a crash; a single flipped bit in
 * a checksummed record is always caught. */
Test(ivfpq_errors, decoder_fuzz)
{
    ivf_config c = {.flags = CFG_F_RAW, .dim = 64, .metric = 1, .nlist = 100, .m = 8, .nprobe = 4,
                    .block_cap = 100, .state = 1, .iters = 25, .n_vectors = 12345, .seed = 9};
    uint8_t rec[CFG_SIZE], buf[CFG_SIZE];
    ivf_config_put(rec, &c);
    ivf_config o;
    cr_assert_eq(ivf_config_get(rec, CFG_SIZE, &o), STRATA_OK);
    /* field by field: the struct has padding, whose bytes memcmp would read */
    cr_assert(o.flags == c.flags && o.dim == c.dim && o.metric == c.metric && o.nlist == c.nlist &&
              o.m == c.m && o.nprobe == c.nprobe && o.block_cap == c.block_cap && o.state == c.state &&
              o.iters == c.iters && o.n_vectors == c.n_vectors && o.seed == c.seed);
    for (size_t bit = 0; bit < CFG_SIZE * 8; bit++) {
        memcpy(buf, rec, CFG_SIZE);
        buf[bit / 8] ^= (uint8_t)(1u << (bit % 8));
        cr_assert_eq(ivf_config_get(buf, CFG_SIZE, &o), STRATA_ECORRUPT, "bit %zu", bit);
    }
    for (size_t len = 0; len < CFG_SIZE; len++)
        cr_assert_eq(ivf_config_get(rec, len, &o), STRATA_ECORRUPT);
    float row[40], back[40];
    uint8_t rb[4 * 40 + 4], rm[4 * 40 + 4];
    uint64_t s = it_seed();
    for (int i = 0; i < 40; i++) row[i] = it_gauss(&s);
    ivf_row_put(rb, row, 40);
    cr_assert_eq(ivf_row_get(rb, sizeof rb, back, 40), STRATA_OK);
    cr_assert_eq(memcmp(row, back, sizeof row), 0);
    for (size_t bit = 0; bit < sizeof rb * 8; bit++) {
        memcpy(rm, rb, sizeof rb);
        rm[bit / 8] ^= (uint8_t)(1u << (bit % 8));
        cr_assert_eq(ivf_row_get(rm, sizeof rm, back, 40), STRATA_ECORRUPT, "bit %zu", bit);
    }
    /* random multi-byte damage of configs, rows and blocks (layout: m 8,
     * L2 terms, raw vectors of dim 3, so pad bytes precede the raw part) */
    ivf_blayout lay = {.m = 8, .raw_dim = 3, .attr = 0, .term = 1};
    uint8_t blk[BLK_HDR + 10 * (8 + 4 + 8) + 3 + 10 * 12];
    for (int it = 0; it < 20000; it++) {
        memcpy(buf, rec, CFG_SIZE);
        int nflip = 1 + (int)(it_next(&s) % 4);
        for (int f = 0; f < nflip; f++) buf[it_next(&s) % CFG_SIZE] = (uint8_t)it_next(&s);
        int rc = ivf_config_get(buf, (size_t)(it_next(&s) % (CFG_SIZE + 1)), &o);
        cr_assert(rc == STRATA_OK || rc == STRATA_ECORRUPT);
        if (rc == STRATA_OK) cr_assert_eq(ivf_config_check(&o), STRATA_OK);
        for (size_t i = 0; i < sizeof blk; i++) blk[i] = (uint8_t)it_next(&s);
        blk[0] = IVF_VERSION;
        uint32_t bn = 1 + (uint32_t)(it_next(&s) % 10);
        if (it % 2) {                               /* a plausible header */
            memset(blk, 0, BLK_HDR);
            blk[0] = IVF_VERSION; blk[1] = BLK_F_TERM | BLK_F_RAW; blk[2] = (uint8_t)bn;
            ivf_le32_put(blk + BLK_OFF_M, 8);
            ivf_le32_put(blk + BLK_OFF_DIM, 3);
            size_t pad = ivf_block_raw_off(&lay, bn) - (BLK_HDR + (size_t)bn * 20);
            if (it % 4 == 1) memset(blk + BLK_HDR + (size_t)bn * 20, 0, pad);
        }
        ivf_block b;
        size_t len = it % 3 == 0 ? ivf_block_size(&lay, bn) : (size_t)(it_next(&s) % (sizeof blk + 1));
        rc = ivf_block_view(blk, len, &lay, 16, 0, &b);
        cr_assert(rc == STRATA_OK || rc == STRATA_ECORRUPT);
        if (rc == STRATA_OK) {
            cr_assert(b.n >= 1 && b.n <= 16 && ivf_block_size(&lay, b.n) == len);
            cr_assert(b.raw + 12 * (size_t)b.n == blk + len);      /* inside the value */
            cr_assert(((size_t)(b.raw - blk) & 3) == 0);
        }
    }
    /* a valid block decodes; each header byte and each pad byte is checked */
    memset(blk, 0, sizeof blk);
    blk[0] = IVF_VERSION; blk[1] = BLK_F_TERM | BLK_F_RAW; blk[2] = 5;
    ivf_le32_put(blk + BLK_OFF_M, 8);
    ivf_le32_put(blk + BLK_OFF_DIM, 3);
    size_t len5 = ivf_block_size(&lay, 5), raw5 = ivf_block_raw_off(&lay, 5);
    cr_assert_eq(raw5, BLK_HDR + 5 * 20 + 0);         /* 5 * 8 code bytes: no pad */
    ivf_block b;
    cr_assert_eq(ivf_block_view(blk, len5, &lay, 16, 0, &b), STRATA_OK);
    cr_assert_eq(b.n, 5);
    for (size_t i = 0; i < BLK_HDR; i++) {
        if (i == BLK_OFF_N) continue;               /* n is a size: its own checks */
        blk[i] ^= 0x40;
        cr_assert_eq(ivf_block_view(blk, len5, &lay, 16, 0, &b), STRATA_ECORRUPT, "byte %zu", i);
        blk[i] ^= 0x40;
    }
    ivf_blayout odd = {.m = 3, .raw_dim = 2, .attr = 1, .term = 0};
    blk[1] = BLK_F_ATTR | BLK_F_RAW; blk[2] = 5;      /* 15 code bytes: one pad byte */
    ivf_le32_put(blk + BLK_OFF_M, 3);
    ivf_le32_put(blk + BLK_OFF_DIM, 2);
    size_t ro = ivf_block_raw_off(&odd, 5);
    cr_assert_eq(ro, BLK_HDR + 5 * 16 + 15 + 1);
    cr_assert_eq(ivf_block_view(blk, ivf_block_size(&odd, 5), &odd, 16, 0, &b), STRATA_OK);
    blk[ro - 1] = 1;
    cr_assert_eq(ivf_block_view(blk, ivf_block_size(&odd, 5), &odd, 16, 0, &b), STRATA_ECORRUPT);
}
