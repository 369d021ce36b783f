/* tests/crash/test_crash_layers.c - crash safety of the upper layers: blobs
 * (streamed through the hashing helper thread, deleted, tagged, linked,
 * embedded), a fractal index (adds that split leaves, deletes that merge
 * them) and an IVF-PQ index (training, inserts, deletes), all in the same
 * transactions, through the fault-injecting backend (pager/io_fault.c) as in
 * test_crash.c: the workload is replayed from a fresh file once per crash
 * point (every write and every sync in turn fails for good, plus every
 * commit boundary), power loss is simulated in three modes (unsynced writes
 * dropped / a random subset kept / kept torn), and the reopened file must
 * show:
 *  (1) strata_check, strata_blob_check (every chunk re-hashed) and
 *      strata_fractal_check clean;
 *  (2) every layer's observable content (a digest of blob ids, sizes,
 *      content hashes, tags, edges, embeddings, the content index; the
 *      fractal index's vectors and timestamps; the IVF-PQ index's vectors
 *      and attributes) equal to exactly one commit state: the last
 *      acknowledged commit or the one in flight;
 *  (3) a new commit through all three layers succeeds and checks clean.
 * Seeds are fixed; a failure prints kind, point and mode. */
#include <criterion/criterion.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "strata.h"
#include "pager.h"

#include "crash_points.h"

/* blob/writer.c (blob_int.h clashes with pager.h's byte helpers): -1 measure,
 * 0 never, 1 always hash large pieces on the helper thread */
void blob_writer_helper(int mode);

#define OK(x) do { int rc_ = (x); cr_assert_eq(rc_, STRATA_OK, "%s -> %s", #x, strata_strerror(rc_)); } while (0)

enum { WL_COMMITS = 6, DIM = 8, N_FRAC_MAX = 400, N_IVF_MAX = 200, N_BLOB_MAX = 40 };
static char g_path[96];

static void setup(void) {
    const char *dir = access("/dev/shm", W_OK) == 0 ? "/dev/shm" : "/tmp";
    snprintf(g_path, sizeof g_path, "%s/strata-crash-layers-%d.db", dir, (int)getpid());
    unlink(g_path);
}
static void teardown(void) { unlink(g_path); }
TestSuite(crash_layers, .init = setup, .fini = teardown);

static void vec_of(uint64_t id, float v[DIM]) {
    for (int d = 0; d < DIM; d++)
        v[d] = (float)((id * 7 + (uint64_t)d * 13) % 17) + (float)(id % 5) * 3.0f + (float)d * 0.25f;
}

static void bytes_of(uint8_t *p, size_t n, uint64_t seed) {
    uint64_t s = seed * 0x9E3779B97F4A7C15ull + 7;
    for (size_t i = 0; i < n; i++) {
        s ^= s << 13;
        s ^= s >> 7;
        s ^= s << 17;
        p[i] = (uint8_t)(s >> 32);
    }
}

/* ------------------------------------------------------------------------ */
/* The workload                                                             */

#define TRYR(x) do { if ((rc = (x))) goto out; } while (0)

/* Commit i (1-based): blobs, fractal and IVF operations in one transaction. */
static int run_commit(strata_db *db, int i) {
    static uint8_t buf[700u << 10];
    strata_txn *w;
    strata_fractal *f = NULL;
    strata_ivf *ix = NULL;
    int rc = strata_begin_write(db, &w);
    if (rc) return rc;
    /* blobs: a small one, a large one streamed in pieces hashed by the helper */
    uint64_t a, b;
    bytes_of(buf, 5000, (uint64_t)i);
    TRYR(strata_blob_put(w, NULL, buf, 5000, &a));
    size_t big = (200u << 10) + (size_t)i * 37000;
    bytes_of(buf, big, 1000 + (uint64_t)i);
    strata_blob_writer *wr;
    blob_writer_helper(i % 2);   /* odd commits: every large piece on the helper */
    TRYR(strata_blob_writer_begin(w, NULL, &wr));
    for (size_t off = 0; off < big && rc == STRATA_OK; off += 300u << 10)
        rc = strata_blob_write(wr, buf + off, big - off < (300u << 10) ? big - off : 300u << 10);
    if (rc) {
        strata_blob_writer_abort(wr);
        goto out;
    }
    TRYR(strata_blob_writer_finish(wr, &b));
    blob_writer_helper(-1);
    TRYR(strata_blob_tag_add(w, b, i % 2 ? "odd" : "even"));
    TRYR(strata_blob_link(w, b, a, STRATA_BLOB_DERIVED_FROM, "ctx"));
    float e[4] = { (float)i, 1, 0, 0 };
    TRYR(strata_blob_embed_set(w, a, e, 4));
    if (i >= 3) TRYR(strata_blob_delete(w, 2 * (uint64_t)(i - 2)));   /* a blob of two commits ago */
    /* fractal: 40 adds a commit (leaves split), deletes from commit 4 on (merges) */
    strata_fractal_config fc;
    strata_fractal_config_default(&fc, DIM, STRATA_METRIC_L2);
    fc.pq_m = 4;
    fc.max_leaf = 24;
    fc.min_leaf = 6;
    fc.max_fanout = 4;
    fc.buffer_cap = 4;
    fc.train_size = 60;
    rc = strata_fractal_open(w, "f", &f);
    if (rc == STRATA_NOTFOUND) rc = strata_fractal_create(w, "f", &fc, &f);
    if (rc) goto out;
    float v[DIM];
    for (uint64_t k = 0; k < 40; k++) {
        uint64_t id = (uint64_t)(i - 1) * 40 + k;
        vec_of(id, v);
        TRYR(strata_fractal_add(f, id, v, DIM, id + 1));
    }
    if (i >= 4)
        for (uint64_t k = 0; k < 25; k++) TRYR(strata_fractal_delete(f, (uint64_t)(i - 4) * 40 + k));
    /* IVF-PQ: trained at commit 1, 20 inserts a commit, a few deletes */
    rc = strata_ivf_open(w, "v", &ix);
    if (rc == STRATA_NOTFOUND) {
        strata_ivf_config ic = { .dim = DIM, .metric = STRATA_METRIC_L2, .nlist = 4, .m = 4, .nprobe = 4,
                                 .flags = STRATA_IVF_RAW | STRATA_IVF_ATTR, .seed = 3 };
        static float train[256 * DIM];
        for (uint64_t k = 0; k < 256; k++) vec_of(1000 + k, train + k * DIM);
        if ((rc = strata_ivf_create(w, "v", &ic, &ix)) == STRATA_OK) rc = strata_ivf_train(ix, train, 256, DIM, NULL);
    }
    if (rc) goto out;
    for (uint64_t k = 0; k < 20; k++) {
        uint64_t id = (uint64_t)(i - 1) * 20 + k;
        vec_of(id * 3, v);
        TRYR(strata_ivf_insert(ix, id, v, DIM, id * 10));
    }
    if (i >= 2) TRYR(strata_ivf_delete(ix, (uint64_t)(i - 2) * 20 + 3));
out:
    blob_writer_helper(-1);
    strata_fractal_close(f);
    strata_ivf_close(ix);
    if (rc) {
        strata_abort(w);
        return rc;
    }
    return strata_commit(w);
}

/* ------------------------------------------------------------------------ */
/* The digest of everything the layers show (HLC times excluded: wall clock) */

typedef struct digest { uint64_t h; } digest;

static void mix(digest *d, uint64_t v) {
    d->h ^= v + 0x9E3779B97F4A7C15ull + (d->h << 6) + (d->h >> 2);
}

static int mix_tag(void *ctx, strata_slice t) {
    for (size_t i = 0; i < t.len; i++) mix(ctx, ((const uint8_t *)t.data)[i]);
    return 0;
}

static int mix_edge(void *ctx, const strata_blob_edge *e) {
    mix(ctx, e->from);
    mix(ctx, e->to);
    mix(ctx, (uint64_t)e->rel);
    return 0;
}

/* The digest of txn's content; *rc gets the first read error. */
static digest digest_of(strata_txn *r, int *rcp) {
    digest d = { 1 };
    int rc = STRATA_OK;
    strata_blob_stats st;
    if ((rc = strata_blob_stats_get(r, &st))) goto out;
    mix(&d, st.n_blobs);
    mix(&d, st.logical_bytes);
    mix(&d, st.n_chunks);
    mix(&d, st.stored_bytes);
    mix(&d, st.n_pending);
    for (uint64_t id = 1; id <= N_BLOB_MAX; id++) {
        strata_blob_info in;
        rc = strata_blob_info_get(r, id, &in);
        if (rc == STRATA_NOTFOUND) { rc = STRATA_OK; continue; }
        if (rc) goto out;
        mix(&d, id);
        mix(&d, in.size);
        for (int k = 0; k < 32; k++) mix(&d, in.sha256[k]);
        uint64_t same;
        if ((rc = strata_blob_find(r, in.sha256, &same))) goto out;
        mix(&d, same);
        if ((rc = strata_blob_tags_of(r, id, mix_tag, &d))) goto out;
        if ((rc = strata_blob_edges(r, id, STRATA_BLOB_BOTH, 0, mix_edge, &d))) goto out;
        float e[4];
        size_t dim;
        rc = strata_blob_embed_get(r, id, e, 4, &dim);
        if (rc == STRATA_OK) for (size_t k = 0; k < dim; k++) mix(&d, (uint64_t)(e[k] * 1000.0f));
        else if (rc != STRATA_NOTFOUND) goto out;
        rc = STRATA_OK;
    }
    strata_fractal *f;
    rc = strata_fractal_open(r, "f", &f);
    if (rc == STRATA_OK) {
        strata_fractal_info fi;
        if ((rc = strata_fractal_info_get(f, &fi)) == STRATA_OK) mix(&d, fi.n_vectors);
        for (uint64_t id = 0; rc == STRATA_OK && id < N_FRAC_MAX; id++) {
            float v[DIM];
            uint64_t ts;
            rc = strata_fractal_get(f, id, v, DIM, &ts);
            if (rc == STRATA_OK) {
                mix(&d, id);
                mix(&d, ts);
                for (int k = 0; k < DIM; k++) mix(&d, (uint64_t)(v[k] * 1000.0f));
            } else if (rc == STRATA_NOTFOUND) {
                rc = STRATA_OK;
            }
        }
        strata_fractal_close(f);
    } else if (rc == STRATA_NOTFOUND) {
        rc = STRATA_OK;
    }
    if (rc) goto out;
    strata_ivf *ix;
    rc = strata_ivf_open(r, "v", &ix);
    if (rc == STRATA_OK) {
        for (uint64_t id = 0; rc == STRATA_OK && id < N_IVF_MAX; id++) {
            float v[DIM];
            uint64_t attr;
            rc = strata_ivf_get(ix, id, v, &attr);
            if (rc == STRATA_OK) {
                mix(&d, id);
                mix(&d, attr);
                for (int k = 0; k < DIM; k++) mix(&d, (uint64_t)(v[k] * 1000.0f));
            } else if (rc == STRATA_NOTFOUND) {
                rc = STRATA_OK;
            }
        }
        strata_ivf_close(ix);
    } else if (rc == STRATA_NOTFOUND) {
        rc = STRATA_OK;
    }
out:
    *rcp = rc;
    return d;
}

static digest g_states[WL_COMMITS + 1];

static digest digest_db(strata_db *db) {
    strata_txn *r;
    int rc;
    OK(strata_begin_read(db, &r));
    digest d = digest_of(r, &rc);
    strata_abort(r);
    OK(rc);
    return d;
}

/* Every state's digest, from the workload against an in-memory database. */
static void build_states(void) {
    static int built;
    if (built) return;
    strata_db *db;
    OK(strata_open(NULL, STRATA_INMEMORY, &db));
    g_states[0] = digest_db(db);
    for (int i = 1; i <= WL_COMMITS; i++) {
        OK(run_commit(db, i));
        g_states[i] = digest_db(db);
        for (int k = 0; k < i; k++) cr_assert_neq(g_states[i].h, g_states[k].h, "states %d and %d alike", i, k);
    }
    strata_close(db);
    built = 1;
}

/* ------------------------------------------------------------------------ */
/* One run and its check                                                    */

typedef crash_point point;

static void report_line(void *ctx, const char *msg) {
    const point *pt = ctx;
    fprintf(stderr, "  check (%s %ld mode %d): %s\n", pt->what, pt->n, pt->mode, msg);
}

static void checks(strata_db *db, const point *pt) {
    strata_txn *r;
    OK(strata_begin_read(db, &r));
    int rc = strata_check(r, report_line, (void *)pt);
    cr_assert_eq(rc, STRATA_OK, "%s %ld mode %d: strata_check -> %s", pt->what, pt->n, pt->mode, strata_strerror(rc));
    rc = strata_blob_check(r, 1, report_line, (void *)pt);
    cr_assert_eq(rc, STRATA_OK, "%s %ld mode %d: blob check -> %s", pt->what, pt->n, pt->mode, strata_strerror(rc));
    rc = strata_fractal_check(r, "f", report_line, (void *)pt);
    cr_assert(rc == STRATA_OK || rc == STRATA_NOTFOUND, "%s %ld mode %d: fractal check -> %s", pt->what, pt->n,
              pt->mode, strata_strerror(rc));
    strata_abort(r);
}

static void verify_reopen(const point *pt, int acked, int attempted) {
    strata_db *db;
    int rc = strata_open(g_path, 0, &db);
    cr_assert_eq(rc, STRATA_OK, "%s %ld mode %d: reopen -> %s", pt->what, pt->n, pt->mode, strata_strerror(rc));
    checks(db, pt);
    digest d = digest_db(db);
    int found = -1;
    for (int k = acked; k <= attempted && found < 0; k++)
        if (d.h == g_states[k].h) found = k;
    cr_assert_geq(found, 0, "%s %ld mode %d: content matches no commit in [%d, %d]", pt->what, pt->n, pt->mode,
                  acked, attempted);
    /* (3) the next commit of the workload (or a repeat of the last) goes through */
    OK(run_commit(db, found < WL_COMMITS ? found + 1 : 1));
    checks(db, pt);
    strata_close(db);
}

static int wl_commit(void *ctx, strata_db *db, int i) {
    (void)ctx;
    return run_commit(db, i);
}

static int wl_durable(void *ctx, int i) {   /* every commit is IMMEDIATE */
    (void)ctx;
    (void)i;
    return 1;
}

static void wl_verify(void *ctx, const crash_point *pt, int acked, int attempted) {
    (void)ctx;
    verify_reopen(pt, acked, attempted);
}

Test(crash_layers, every_write_and_sync_point) {
    build_states();
    crash_workload wl = { g_path, WL_COMMITS, wl_commit, wl_durable, wl_verify, NULL, 0x1A7E0000ull, 0xB1D0000ull };
    crash_run full;
    long points = crash_every_point(&wl, &full);
    printf("crash_layers: %ld crash points (%ld writes, %ld syncs, %d boundaries; x3 modes)\n", points,
           full.writes, full.syncs, WL_COMMITS + 1);
    fflush(stdout);
    cr_assert_geq(points, 3 * (full.writes + full.syncs));
}
