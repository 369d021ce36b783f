/* tests/ivfpq/test_write.c - writes by id inside transactions: insert, update,
 * delete; results identical after delete + re-insert and after reopen; an
 * aborted transaction changes nothing; a reader keeps its snapshot while a
 * writer changes the index; single inserts split blocks correctly; the
 * golden byte layout of a posting block (format 2). */
#include "itest.h"
#include "db.h"
#include "ivfpq_int.h"

enum { N = 10000, DIM = 16, NQ = 50, K = 10 };

static const strata_ivf_config CFG = {.dim = DIM, .metric = STRATA_METRIC_L2, .nlist = 32, .m = 4,
                                      .nprobe = 8, .flags = STRATA_IVF_RAW, .seed = 3};

static void search_all(strata_db *db, const float *q, strata_hit *res, size_t *n)
{
    strata_txn *r;
    strata_ivf *ix;
    cr_assert_eq(strata_begin_read(db, &r), STRATA_OK);
    cr_assert_eq(strata_ivf_open(r, "w", &ix), STRATA_OK);
    cr_assert_eq(strata_ivf_search_batch(ix, NQ, q, DIM, K, NULL, res, n), STRATA_OK);
    strata_ivf_close(ix);
    strata_abort(r);
}

static void same(const strata_hit *a, const size_t *na, const strata_hit *b, const size_t *nb)
{
    for (size_t i = 0; i < NQ; i++) {
        cr_assert_eq(na[i], nb[i]);
        for (size_t j = 0; j < na[i]; j++) {
            cr_assert_eq(a[i * K + j].id, b[i * K + j].id, "q %zu hit %zu", i, j);
            cr_assert_eq(a[i * K + j].dist, b[i * K + j].dist);
        }
    }
}

Test(ivfpq_write, delete_reinsert_reopen_identical)
{
    it_db d;
    it_db_open(&d);
    float *x = it_mixture(N, DIM, 40, it_seed()), *q = it_mixture(NQ, DIM, 40, it_seed() + 1);
    it_build(d.db, "w", &CFG, x, N, N, NULL);
    static strata_hit a[NQ * K], b[NQ * K];
    size_t na[NQ], nb[NQ];
    search_all(d.db, q, a, na);

    strata_txn *w;
    strata_ivf *ix;
    cr_assert_eq(strata_begin_write(d.db, &w), STRATA_OK);
    cr_assert_eq(strata_ivf_open(w, "w", &ix), STRATA_OK);
    for (uint64_t id = 0; id < N; id += 2) cr_assert_eq(strata_ivf_delete(ix, id), STRATA_OK);
    cr_assert_eq(strata_ivf_delete(ix, 0), STRATA_NOTFOUND);
    strata_ivf_info info;
    cr_assert_eq(strata_ivf_info_get(ix, &info), STRATA_OK);
    cr_assert_eq(info.n_vectors, N / 2);
    strata_ivf_close(ix);
    cr_assert_eq(strata_commit(w), STRATA_OK);
    search_all(d.db, q, b, nb);
    for (size_t i = 0; i < NQ; i++)
        for (size_t j = 0; j < nb[i]; j++) cr_assert_eq(b[i * K + j].id % 2, 1);

    cr_assert_eq(strata_begin_write(d.db, &w), STRATA_OK);
    cr_assert_eq(strata_ivf_open(w, "w", &ix), STRATA_OK);
    for (uint64_t id = N; id-- > 0;)                     /* one by one, descending */
        if (id % 2 == 0) cr_assert_eq(strata_ivf_insert(ix, id, x + id * DIM, DIM, 0), STRATA_OK);
    strata_ivf_close(ix);
    cr_assert_eq(strata_commit(w), STRATA_OK);
    search_all(d.db, q, b, nb);
    same(a, na, b, nb);
    it_db_reopen(&d);
    search_all(d.db, q, b, nb);
    same(a, na, b, nb);
    cr_assert_eq(strata_begin_read(d.db, &w), STRATA_OK);
    cr_assert_eq(strata_check(w, NULL, NULL), STRATA_OK);
    strata_abort(w);
    free(x); free(q);
    it_db_close(&d);
}

Test(ivfpq_write, update_moves_vector)
{
    it_db d;
    it_db_open(&d);
    float *x = it_mixture(N, DIM, 40, it_seed());
    it_build(d.db, "w", &CFG, x, N, N, NULL);
    strata_txn *w;
    strata_ivf *ix;
    cr_assert_eq(strata_begin_write(d.db, &w), STRATA_OK);
    cr_assert_eq(strata_ivf_open(w, "w", &ix), STRATA_OK);
    cr_assert_eq(strata_ivf_insert(ix, 5, x + 7 * DIM, DIM, 0), STRATA_OK);   /* 5 := 7's vector */
    float v[DIM];
    cr_assert_eq(strata_ivf_get(ix, 5, v, NULL), STRATA_OK);
    cr_assert_eq(memcmp(v, x + 7 * DIM, sizeof v), 0);
    strata_hit h[2];
    size_t n;
    strata_ivf_params p;
    strata_ivf_params_default(&p);
    p.rerank = 20;
    cr_assert_eq(strata_ivf_search(ix, x + 7 * DIM, DIM, 2, &p, h, &n), STRATA_OK);
    cr_assert_eq(n, 2);
    cr_assert_eq(h[0].id, 5);   /* tie at distance 0 goes to the smaller id */
    cr_assert_eq(h[1].id, 7);
    cr_assert_eq(h[0].dist, 0.0f);
    strata_ivf_info info;
    cr_assert_eq(strata_ivf_info_get(ix, &info), STRATA_OK);
    cr_assert_eq(info.n_vectors, N);
    strata_ivf_close(ix);
    strata_abort(w);
    free(x);
    it_db_close(&d);
}

Test(ivfpq_write, abort_and_snapshot)
{
    it_db d;
    it_db_open(&d);
    float *x = it_mixture(N, DIM, 40, it_seed()), *q = it_mixture(NQ, DIM, 40, it_seed() + 1);
    it_build(d.db, "w", &CFG, x, N, N, NULL);
    static strata_hit a[NQ * K], b[NQ * K];
    size_t na[NQ], nb[NQ];
    search_all(d.db, q, a, na);

    strata_txn *r, *w;
    strata_ivf *rix, *wix;
    cr_assert_eq(strata_begin_read(d.db, &r), STRATA_OK);
    cr_assert_eq(strata_ivf_open(r, "w", &rix), STRATA_OK);
    for (int commit = 0; commit < 2; commit++) {
        cr_assert_eq(strata_begin_write(d.db, &w), STRATA_OK);
        cr_assert_eq(strata_ivf_open(w, "w", &wix), STRATA_OK);
        for (size_t i = 0; i < NQ; i++) {                 /* plant exact matches, drop hits */
            cr_assert_eq(strata_ivf_insert(wix, 1000000 + i, q + i * DIM, DIM, 0), STRATA_OK);
            for (size_t j = 0; j < 3; j++) {
                int rc = strata_ivf_delete(wix, a[i * K + j].id);
                cr_assert(rc == STRATA_OK || rc == STRATA_NOTFOUND);
            }
        }
        strata_ivf_close(wix);
        if (commit) cr_assert_eq(strata_commit(w), STRATA_OK);
        else strata_abort(w);
        if (!commit) { search_all(d.db, q, b, nb); same(a, na, b, nb); }
        cr_assert_eq(strata_ivf_search_batch(rix, NQ, q, DIM, K, NULL, b, nb), STRATA_OK);
        same(a, na, b, nb);                              /* the reader's snapshot */
    }
    strata_ivf_close(rix);
    strata_abort(r);
    search_all(d.db, q, b, nb);
    for (size_t i = 0; i < NQ; i++) {                    /* the planted vector is found */
        int found = 0;
        for (size_t j = 0; j < nb[i]; j++) found |= b[i * K + j].id == 1000000 + i;
        cr_assert(found, "query %zu", i);
    }
    free(x); free(q);
    it_db_close(&d);
}

/* Small blocks: many splits, then every vector is still found by itself. */
Test(ivfpq_write, small_blocks_split)
{
    it_db d;
    it_db_open(&d);
    strata_ivf_config cfg = CFG;
    cfg.block_cap = 3;
    cfg.nlist = 4;
    cfg.nprobe = 4;
    float *x = it_mixture(2000, DIM, 10, it_seed());
    strata_txn *w;
    strata_ivf *ix;
    cr_assert_eq(strata_begin_write(d.db, &w), STRATA_OK);
    cr_assert_eq(strata_ivf_create(w, "w", &cfg, &ix), STRATA_OK);
    cr_assert_eq(strata_ivf_train(ix, x, 2000, DIM, NULL), STRATA_OK);
    uint64_t s = it_seed();
    for (size_t i = 0; i < 600; i++) {                   /* random id order */
        uint64_t id = (it_next(&s) % 1000000) << 10 | i;
        cr_assert_eq(strata_ivf_insert(ix, id, x + i * DIM, DIM, 0), STRATA_OK);
    }
    strata_ivf_params p;
    strata_ivf_params_default(&p);
    p.nprobe = 4;
    p.rerank = 5;
    s = it_seed();
    for (size_t i = 0; i < 600; i++) {
        uint64_t id = (it_next(&s) % 1000000) << 10 | i;
        strata_hit h[1];
        size_t n;
        cr_assert_eq(strata_ivf_search(ix, x + i * DIM, DIM, 1, &p, h, &n), STRATA_OK);
        cr_assert_eq(h[0].dist, 0.0f);
        float v[DIM];
        cr_assert_eq(strata_ivf_get(ix, id, v, NULL), STRATA_OK);
    }
    strata_ivf_info info;
    cr_assert_eq(strata_ivf_info_get(ix, &info), STRATA_OK);
    cr_assert_geq(info.n_blocks, 600 / 3);
    strata_ivf_close(ix);
    cr_assert_eq(strata_commit(w), STRATA_OK);
    free(x);
    it_db_close(&d);
}

/* Golden layout of a version-2 posting block (docs/IVFPQ.md "Posting
 * block"): dim 4, m 2, L2, raw vectors; three entries with ids 5, 6, 7 in
 * one cluster: header, ids at 16, terms at 40, codes at 52, two zero pad
 * bytes, raw rows at 60, 108 bytes in all. The terms equal the expansion
 * |q - (c + w)|^2 = |q - c|^2 + term - 2 q.w, checked through a search. */
Test(ivfpq_write, golden_block_layout)
{
    it_db d;
    it_db_open(&d);
    float *x = it_mixture(1000, 4, 3, it_seed());
    strata_ivf_config cfg = {.dim = 4, .metric = STRATA_METRIC_L2, .nlist = 1, .m = 2, .nprobe = 1,
                             .flags = STRATA_IVF_RAW, .seed = 5};
    strata_txn *w;
    strata_ivf *ix;
    cr_assert_eq(strata_begin_write(d.db, &w), STRATA_OK);
    cr_assert_eq(strata_ivf_create(w, "g", &cfg, &ix), STRATA_OK);
    cr_assert_eq(strata_ivf_train(ix, x, 1000, 4, NULL), STRATA_OK);
    uint64_t ids[3] = {7, 5, 6};
    cr_assert_eq(strata_ivf_insert_batch(ix, 3, ids, x, 4, NULL), STRATA_OK);
    strata_ivf_close(ix);
    cr_assert_eq(strata_commit(w), STRATA_OK);
    strata_txn *r;
    strata_table *t;
    strata_slice k, v;
    strata_table_spec spec = {.key_type = STRATA_KEY_BYTES};
    cr_assert_eq(strata_begin_read(d.db, &r), STRATA_OK);
    cr_assert_eq(db_internal_table_open(r, "__ivf:g:lists", &spec, 0, &t), STRATA_OK);
    cr_assert_eq(strata_first(t, &k, &v), STRATA_OK);
    static const uint8_t key[12] = {0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 5};
    cr_assert_eq(k.len, 12);
    cr_assert_eq(memcmp(k.data, key, 12), 0);
    static const uint8_t hdr[16] = {2, 6, 3, 0, 0, 0, 0, 0, 2, 0, 0, 0, 4, 0, 0, 0};
    const uint8_t *p = v.data;
    cr_assert_eq(v.len, 108);
    cr_assert_eq(memcmp(p, hdr, 16), 0);
    for (uint64_t i = 0; i < 3; i++) {
        uint64_t id;
        memcpy(&id, p + 16 + 8 * i, 8);
        cr_assert_eq(id, 5 + i);
        float raw[4];
        memcpy(raw, p + 60 + 16 * i, 16);                   /* id 5+i was row (i+1) % 3 */
        cr_assert_eq(memcmp(raw, x + 4 * ((i + 1) % 3), 16), 0, "raw row of id %llu",
                     (unsigned long long)(5 + i));
    }
    cr_assert(p[58] == 0 && p[59] == 0, "pad bytes");
    uint64_t rows;
    cr_assert_eq(strata_len(t, &rows), STRATA_OK);
    cr_assert_eq(rows, 1);                                     /* one block */
    /* each stored term is ivf_l2_term of its code (codes subspace-major at
     * 52: byte j * 3 + i), and the PQ-only distance equals the exact L2
     * distance to the reconstruction c + w (up to float rounding) */
    cr_assert_eq(strata_ivf_open(r, "g", &ix), STRATA_OK);
    strata_hit h[3];
    size_t n;
    float q[4] = {0.5f, -1.0f, 2.0f, 0.25f};
    cr_assert_eq(strata_ivf_search(ix, q, 4, 3, NULL, h, &n), STRATA_OK);
    cr_assert_eq(n, 3);
    for (size_t i = 0; i < 3; i++) {
        size_t e = h[i].id - 5;
        uint8_t code[2] = {p[52 + e], p[52 + 3 + e]};
        float term;
        memcpy(&term, p + 40 + 4 * e, 4);
        cr_assert_eq(term, ivf_l2_term(ix, 0, code), "entry %zu", e);
        float exact = 0;
        for (int j = 0; j < 4; j++) {
            float rec = ix->centroids[j] + ix->codebooks[((size_t)(j / 2) * 256 + code[j / 2]) * 2 + (size_t)(j % 2)];
            exact += (q[j] - rec) * (q[j] - rec);
        }
        cr_assert(fabsf(h[i].dist - exact) <= 1e-4f * (1.0f + exact), "dist %g exact %g",
                  (double)h[i].dist, (double)exact);
    }
    strata_ivf_close(ix);
    strata_abort(r);
    free(x);
    it_db_close(&d);
}

/* A savepoint rollback under an open handle: the handle reloads its config
 * and model, so a training and inserts undone by the rollback are gone from
 * it too (inserting after a rolled-back training must not encode with the
 * undone centroids: NOTTRAINED-style EINVAL until trained again), and an
 * index created after the savepoint is gone (EBADTXN). */
static void report_line(void *ctx, const char *msg)
{
    (void)ctx;
    fprintf(stderr, "check: %s\n", msg);
}

Test(ivfpq_write, savepoint_rollback_with_open_handle)
{
    it_db d;
    it_db_open(&d);
    enum { M = 2000 };
    float *x = it_mixture(M, DIM, 40, it_seed());
    strata_txn *w;
    strata_ivf *ix, *late;
    strata_ivf_info info;
    strata_savepoint *sp;
    cr_assert_eq(strata_begin_write(d.db, &w), STRATA_OK);
    cr_assert_eq(strata_ivf_create(w, "s", &CFG, &ix), STRATA_OK);
    cr_assert_eq(strata_savepoint_create(w, &sp), STRATA_OK);
    cr_assert_eq(strata_ivf_train(ix, x, M, DIM, NULL), STRATA_OK);
    for (uint64_t id = 0; id < 100; id++) cr_assert_eq(strata_ivf_insert(ix, id, x + id * DIM, DIM, 0), STRATA_OK);
    cr_assert_eq(strata_savepoint_rollback(w, sp), STRATA_OK);
    cr_assert_eq(strata_ivf_info_get(ix, &info), STRATA_OK);
    cr_assert_eq(info.trained, 0);
    cr_assert_eq(info.n_vectors, 0);
    cr_assert_neq(strata_ivf_insert(ix, 1, x, DIM, 0), STRATA_OK);   /* not trained any more */
    cr_assert_eq(strata_ivf_train(ix, x, M, DIM, NULL), STRATA_OK);
    for (uint64_t id = 0; id < 50; id++) cr_assert_eq(strata_ivf_insert(ix, id, x + id * DIM, DIM, 0), STRATA_OK);
    strata_savepoint_release(sp);
    cr_assert_eq(strata_savepoint_create(w, &sp), STRATA_OK);
    for (uint64_t id = 50; id < 80; id++) cr_assert_eq(strata_ivf_insert(ix, id, x + id * DIM, DIM, 0), STRATA_OK);
    cr_assert_eq(strata_ivf_delete(ix, 7), STRATA_OK);
    cr_assert_eq(strata_ivf_create(w, "late", &CFG, &late), STRATA_OK);
    cr_assert_eq(strata_savepoint_rollback(w, sp), STRATA_OK);
    cr_assert_eq(strata_ivf_info_get(ix, &info), STRATA_OK);
    cr_assert_eq(info.n_vectors, 50);
    cr_assert_eq(strata_ivf_get(ix, 7, NULL, NULL), STRATA_OK);
    cr_assert_eq(strata_ivf_get(ix, 60, NULL, NULL), STRATA_NOTFOUND);
    { int lrc = strata_ivf_info_get(late, &info); cr_assert_eq(lrc, STRATA_EBADTXN, "rc %d", lrc); }
    strata_ivf_close(late);
    strata_savepoint_release(sp);
    strata_ivf_close(ix);
    cr_assert_eq(strata_commit(w), STRATA_OK);
    cr_assert_eq(strata_begin_read(d.db, &w), STRATA_OK);
    cr_assert_eq(strata_check(w, report_line, NULL), STRATA_OK);
    cr_assert_eq(strata_ivf_open(w, "s", &ix), STRATA_OK);
    cr_assert_eq(strata_ivf_info_get(ix, &info), STRATA_OK);
    cr_assert_eq(info.n_vectors, 50);
    strata_ivf_close(ix);
    strata_abort(w);
    free(x);
    it_db_close(&d);
}

/* Two handles on one index in one transaction: each caches the config
 * (counters) and the model; a write through one makes the other reload
 * before its next call (db_txn_counter), so neither acts on a stale cache;
 * a drop leaves open handles EBADTXN. */
Test(ivfpq_write, two_handles_in_one_txn)
{
    it_db d;
    it_db_open(&d);
    enum { M = 2000 };
    float *x = it_mixture(M, DIM, 40, it_seed());
    strata_txn *w;
    strata_ivf *a, *b;
    strata_ivf_info ia, ib;
    cr_assert_eq(strata_begin_write(d.db, &w), STRATA_OK);
    cr_assert_eq(strata_ivf_create(w, "h", &CFG, &a), STRATA_OK);
    cr_assert_eq(strata_ivf_open(w, "h", &b), STRATA_OK);
    cr_assert_eq(strata_ivf_train(a, x, M, DIM, NULL), STRATA_OK);
    for (uint64_t id = 0; id < 200; id++)   /* b must see a's training */
        cr_assert_eq(strata_ivf_insert(id % 2 ? a : b, id, x + id * DIM, DIM, 0), STRATA_OK);
    cr_assert_eq(strata_ivf_delete(a, 10), STRATA_OK);
    cr_assert_eq(strata_ivf_delete(b, 10), STRATA_NOTFOUND);
    cr_assert_eq(strata_ivf_info_get(a, &ia), STRATA_OK);
    cr_assert_eq(strata_ivf_info_get(b, &ib), STRATA_OK);
    cr_assert_eq(ia.n_vectors, 199);
    cr_assert_eq(ib.n_vectors, 199);
    strata_hit h[K];
    size_t n;
    strata_ivf_params p = {.nprobe = CFG.nlist, .rerank = 200};
    cr_assert_eq(strata_ivf_search(b, x + 11 * DIM, DIM, K, &p, h, &n), STRATA_OK);
    cr_assert(n > 0 && h[0].id == 11);
    strata_ivf_close(a);
    cr_assert_eq(strata_ivf_drop(w, "h"), STRATA_OK);
    cr_assert_eq(strata_ivf_insert(b, 500, x, DIM, 0), STRATA_EBADTXN);
    strata_ivf_close(b);
    cr_assert_eq(strata_commit(w), STRATA_OK);
    free(x);
    it_db_close(&d);
}
