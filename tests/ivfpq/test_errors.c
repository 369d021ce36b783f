/* tests/ivfpq/test_errors.c - bad input gets a clear error code: dimension
 * mismatch, search or insert before training, nprobe 0, NaN and overflowing
 * vectors, rerank without raw vectors, too small or degenerate training
 * samples (warnings), damaged config / centroid / codebook rows and posting
 * blocks (STRATA_ECORRUPT), plus a fuzz-style loop feeding mutated records to
 * the decoders (only STRATA_OK or STRATA_ECORRUPT, never a crash). */
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
    /* random multi-byte damage of configs, rows and blocks */
    uint8_t blk[BLK_HDR + 10 * (8 + 8)];
    for (int it = 0; it < 20000; it++) {
        memcpy(buf, rec, CFG_SIZE);
        int nflip = 1 + (int)(it_next(&s) % 4);
        for (int f = 0; f < nflip; f++) buf[it_next(&s) % CFG_SIZE] = (uint8_t)it_next(&s);
        int rc = ivf_config_get(buf, (size_t)(it_next(&s) % (CFG_SIZE + 1)), &o);
        cr_assert(rc == STRATA_OK || rc == STRATA_ECORRUPT);
        if (rc == STRATA_OK) cr_assert_eq(ivf_config_check(&o), STRATA_OK);
        for (size_t i = 0; i < sizeof blk; i++) blk[i] = (uint8_t)it_next(&s);
        blk[0] = 1;
        if (it % 2) { blk[1] = 0; blk[2] = 10; blk[3] = 0; }
        ivf_block b;
        rc = ivf_block_view(blk, (size_t)(it_next(&s) % (sizeof blk + 1)), 8, 0, 16, 0, &b);
        cr_assert(rc == STRATA_OK || rc == STRATA_ECORRUPT);
        if (rc == STRATA_OK) cr_assert(b.n >= 1 && b.n <= 16);
    }
}
