/* tests/fuzz/fuzz_layers.c - the input is a database file image holding the
 * upper layers' tables: a blob store (chunks, tags, namespaces, lineage,
 * embeddings, the content index), a fractal index "f" and an IVF-PQ index
 * "v" (seeds: gen_corpus "layers-4k"). Both commit slots get their checksums
 * fixed up; the image is opened read-only with page checksums off
 * (STRATA_VERIFY_OFF), so damaged rows reach the layers' decoders, and every
 * read-only entry point of those layers runs on it: the blob listings,
 * records, reader, verify, lineage traversals, similarity, content lookup
 * and the deep strata_blob_check; the fractal index's open, info, search
 * (with and without rerank and a time window) and check; the IVF index's
 * open and search. Any documented error code is fine; a crash, a sanitizer
 * report, a hang or an undocumented code is a bug. */
#include <fcntl.h>
#include <string.h>
#include <unistd.h>

#include "strata.h"
#include "fuzz_image.h"

enum { MAX_INPUT = 2 << 20, MAX_IDS = 8 };

/* Codes a read on a damaged file may return. EINVAL: a damaged config can
 * change an index's dimension, and the query then no longer fits. */
static int allowed(int rc) {
    return rc == STRATA_OK || rc == STRATA_NOTFOUND || rc == STRATA_ECORRUPT || rc == STRATA_EVERSION ||
           rc == STRATA_ENOCMP || rc == STRATA_ETYPE || rc == STRATA_ENOMEM || rc == STRATA_EINVAL;
}

#define EXPECT(call)                                                                  \
    do {                                                                              \
        int rc_ = (call);                                                             \
        FUZZ_FAIL_IF(!allowed(rc_), "%s: %d %s", #call, rc_, strata_strerror(rc_));    \
    } while (0)

static int count_id(void *ctx, uint64_t id) {
    (void)id;
    return ++*(int *)ctx > 1000;   /* stop a damaged listing that runs long */
}
static int count_tag(void *ctx, strata_slice tag) {
    (void)tag;
    return ++*(int *)ctx > 1000;
}
static int count_edge(void *ctx, const strata_blob_edge *e) {
    (void)e;
    return ++*(int *)ctx > 1000;
}
static int count_depth(void *ctx, uint64_t id, uint32_t depth) {
    (void)id;
    (void)depth;
    return ++*(int *)ctx > 1000;
}

static void blobs(strata_txn *r) {
    strata_blob_stats st;
    double ratio;
    int n = 0;
    EXPECT(strata_blob_stats_get(r, &st));
    EXPECT(strata_blob_dedup_ratio(r, &ratio));
    EXPECT(strata_blob_list_by_tag(r, "t", count_id, &n));
    EXPECT(strata_blob_list_ns(r, "", count_id, &n));
    EXPECT(strata_blob_list_ns(r, "docs", count_id, &n));
    EXPECT(strata_blob_list_time(r, 0, UINT64_MAX, count_id, &n));
    for (uint64_t id = 1; id <= MAX_IDS; id++) {
        strata_blob_info in;
        int rc = strata_blob_info_get(r, id, &in);
        FUZZ_FAIL_IF(!allowed(rc), "info_get: %s", strata_strerror(rc));
        if (rc == STRATA_OK) {
            uint64_t same;
            EXPECT(strata_blob_find(r, in.sha256, &same));
            uint8_t buf[4096];
            size_t len = in.size < sizeof buf ? (size_t)in.size : sizeof buf;
            EXPECT(strata_blob_read_at(r, id, in.size - len, buf, len, STRATA_BLOB_VERIFY));
            strata_blob_reader *rd;
            if (strata_blob_reader_open(r, id, 0, &rd) == STRATA_OK) {
                size_t got;
                for (int k = 0; k < 64; k++) {
                    int rrc = strata_blob_read(rd, buf, sizeof buf, &got);
                    FUZZ_FAIL_IF(!allowed(rrc), "blob_read: %s", strata_strerror(rrc));
                    if (rrc || got == 0) break;
                }
                EXPECT(strata_blob_seek(rd, in.size / 2));
                strata_blob_reader_close(rd);
            }
            EXPECT(strata_blob_verify(r, id));
        }
        EXPECT(strata_blob_tags_of(r, id, count_tag, &n));
        EXPECT(strata_blob_edges(r, id, STRATA_BLOB_BOTH, 0, count_edge, &n));
        EXPECT(strata_blob_traverse(r, id, STRATA_BLOB_BOTH, 0, 6, count_depth, &n));
        uint64_t path[16];
        size_t np;
        EXPECT(strata_blob_path(r, id, 1, STRATA_BLOB_BOTH, 0, 6, path, 16, &np));
        float e[8];
        size_t dim;
        EXPECT(strata_blob_embed_get(r, id, e, 8, &dim));
    }
    static const float q[4] = { 1, 0, 0, 0 };
    strata_hit hits[4];
    size_t nh;
    EXPECT(strata_blob_similar(r, STRATA_METRIC_L2, q, 4, 4, hits, &nh));
    int rc = strata_blob_check(r, 1, NULL, NULL);
    FUZZ_FAIL_IF(!allowed(rc), "blob_check: %s", strata_strerror(rc));
}

static void indexes(strata_txn *r) {
    float q[8] = { 0.5f, 1, 0, 2, 0.25f, 0, 1, 3 };
    strata_hit hits[10];
    size_t nh;
    strata_fractal *f;
    int rc = strata_fractal_open(r, "f", &f);
    FUZZ_FAIL_IF(!allowed(rc), "fractal_open: %s", strata_strerror(rc));
    if (rc == STRATA_OK) {
        strata_fractal_info in;
        EXPECT(strata_fractal_info_get(f, &in));
        EXPECT(strata_fractal_search(f, q, 8, 10, NULL, hits, &nh));
        strata_fractal_params p = { .beam = 4, .n_probe = 64, .rerank = 20 };
        EXPECT(strata_fractal_search(f, q, 8, 10, &p, hits, &nh));
        p.flags = STRATA_FRACTAL_WINDOW;
        p.ts_min = 1;
        p.ts_max = 50;
        EXPECT(strata_fractal_search(f, q, 8, 5, &p, hits, &nh));
        float v[8];
        EXPECT(strata_fractal_get(f, 7, v, 8, NULL));
        strata_fractal_close(f);
    }
    rc = strata_fractal_check(r, "f", NULL, NULL);
    FUZZ_FAIL_IF(!allowed(rc), "fractal_check: %s", strata_strerror(rc));
    strata_ivf *ix;
    rc = strata_ivf_open(r, "v", &ix);
    FUZZ_FAIL_IF(!allowed(rc), "ivf_open: %s", strata_strerror(rc));
    if (rc == STRATA_OK) {
        strata_ivf_params p;
        strata_ivf_params_default(&p);
        EXPECT(strata_ivf_search(ix, q, 8, 10, &p, hits, &nh));
        p.nprobe = 4;
        p.rerank = 20;
        EXPECT(strata_ivf_search(ix, q, 8, 10, &p, hits, &nh));
        float v[8];
        uint64_t attr;
        EXPECT(strata_ivf_get(ix, 3, v, &attr));
        strata_ivf_close(ix);
    }
}

static void open_and_read(const char *path) {
    strata_options o = { .verify = STRATA_VERIFY_OFF };
    strata_db *db;
    int rc = strata_open_ex(path, STRATA_RDONLY, &o, &db);
    FUZZ_FAIL_IF(!allowed(rc) && rc != STRATA_EINVAL, "open: %s", strata_strerror(rc));
    if (rc) return;
    strata_txn *r;
    rc = strata_begin_read(db, &r);
    FUZZ_FAIL_IF(rc != STRATA_OK, "begin_read: %s", strata_strerror(rc));
    blobs(r);
    indexes(r);
    strata_abort(r);
    strata_close(db);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    if (size > MAX_INPUT) return 0;
    const char *path = fuzz_image_file(data, size, "layers");
    if (!path) return 0;
    open_and_read(path);
    unlink(path);
    return 0;
}
