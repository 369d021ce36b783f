/* tools/demo.c - the Strata demo (run by `tools/dev demo`): makes a database,
 * writes and reads typed tables, shows a reader's snapshot staying stable while
 * a writer commits, and checks every result it prints. Public API only. */
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "strata.h"

#define TRY(x) do { int rc_ = (x); if (rc_) { \
    fprintf(stderr, "demo: %s failed: %s\n", #x, strata_strerror(rc_)); exit(1); } } while (0)

static strata_slice s(const char *z) { strata_slice v = { z, strlen(z) }; return v; }
static strata_slice u64(uint64_t *buf, uint64_t v) {
    unsigned char *b = (unsigned char *)buf;
    for (int i = 0; i < 8; i++) b[i] = (unsigned char)(v >> (8 * i));
    strata_slice sl = { buf, 8 };
    return sl;
}

static uint64_t g_clock_offset;
static uint64_t demo_clock(void *ctx) {
    (void)ctx;
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    return (uint64_t)ts.tv_sec * 1000u + (uint64_t)ts.tv_nsec / 1000000u + g_clock_offset;
}

static int print_change(void *ctx, const strata_change *c) {
    (void)ctx;
    const char *op = c->op == STRATA_CHANGE_PUT ? "put" : c->op == STRATA_CHANGE_DEL ? "del" : "merge";
    uint64_t val = 0;
    if (c->value.len == 8) memcpy(&val, c->value.data, 8);
    printf("     commit %" PRIu64 ".%" PRIu32 " %-5s %.*s[%.*s] = %" PRIu64 "\n", c->pos.txn_id, c->pos.seq, op,
           (int)c->table.len, (const char *)c->table.data, (int)c->key.len, (const char *)c->key.data, val);
    return 0;
}

int main(int argc, char **argv) {
    if (argc != 2) { fprintf(stderr, "usage: strata-demo FILE\n"); return 2; }
    strata_db *db;
    TRY(strata_open(argv[1], STRATA_CREATE, &db));
    printf("Strata %d: opened %s\n\n", strata_version_number(), argv[1]);

    /* 1. typed tables in one atomic, durable transaction */
    strata_txn *w;
    strata_table *users, *by_name, *tags;
    TRY(strata_begin_write(db, &w));
    TRY(strata_table_open(w, "users", STRATA_KEY_U64, STRATA_CREATE, &users));
    TRY(strata_table_open(w, "users_by_name", STRATA_KEY_STR, STRATA_CREATE, &by_name));
    strata_table_spec mm = { STRATA_KEY_STR, NULL };
    TRY(strata_table_open_ex(w, "tags", &mm, STRATA_CREATE | STRATA_MULTIMAP, &tags));
    const char *names[] = { "ada", "grace", "edsger", "barbara", "ken" };
    uint64_t kb;
    for (uint64_t i = 0; i < 5; i++) {
        char rec[64];
        snprintf(rec, sizeof rec, "{\"id\":%" PRIu64 ",\"name\":\"%s\"}", i + 1, names[i]);
        TRY(strata_put(users, u64(&kb, i + 1), s(rec)));
        TRY(strata_put(by_name, s(names[i]), u64(&kb, i + 1)));
    }
    TRY(strata_put(tags, s("ada"), s("math")));
    TRY(strata_put(tags, s("ada"), s("engines")));
    TRY(strata_put(tags, s("grace"), s("compilers")));
    TRY(strata_put(tags, s("ada"), s("poetry")));
    TRY(strata_commit(w));
    printf("1. committed 5 users (u64 keys), a name index (str keys), and tags (multimap)\n");

    /* 2. reads: point lookups, ranges, multimap values */
    strata_txn *r;
    TRY(strata_begin_read(db, &r));
    TRY(strata_table_open(r, "users", STRATA_KEY_U64, 0, &users));
    TRY(strata_table_open(r, "users_by_name", STRATA_KEY_STR, 0, &by_name));
    TRY(strata_table_open_ex(r, "tags", &mm, STRATA_MULTIMAP, &tags));
    strata_slice v;
    TRY(strata_get(by_name, s("grace"), &v));
    uint64_t id = 0;
    memcpy(&id, v.data, 8);
    TRY(strata_get(users, u64(&kb, id), &v));
    printf("2. users_by_name[grace] = %" PRIu64 " -> users[%" PRIu64 "] = %.*s\n", id, id, (int)v.len,
           (const char *)v.data);
    strata_cursor *c;
    TRY(strata_cursor_open(users, &c));
    uint64_t lo, hi;
    strata_slice los = u64(&lo, 2), his = u64(&hi, 4);
    TRY(strata_cursor_set_range(c, &los, &his, STRATA_HI_INCL));
    printf("   users with id in [2, 4], descending:\n");
    for (int rc = strata_cursor_last(c); rc == STRATA_OK; rc = strata_cursor_prev(c)) {
        strata_slice k;
        TRY(strata_cursor_get(c, &k, &v));
        memcpy(&id, k.data, 8);
        printf("     %" PRIu64 ": %.*s\n", id, (int)v.len, (const char *)v.data);
    }
    uint64_t n;
    TRY(strata_mm_count(tags, s("ada"), &n));
    printf("   tags of ada (%" PRIu64 "):", n);
    strata_cursor *tc;
    TRY(strata_cursor_open(tags, &tc));
    for (int rc = strata_cursor_seek(tc, s("ada")); rc == STRATA_OK; rc = strata_cursor_next(tc)) {
        strata_slice k;
        TRY(strata_cursor_get(tc, &k, &v));
        if (k.len != 3 || memcmp(k.data, "ada", 3)) break;
        printf(" %.*s", (int)v.len, (const char *)v.data);
    }
    printf("\n");

    /* 3. snapshot isolation: r keeps its view while a writer commits */
    uint64_t before;
    TRY(strata_len(users, &before));
    TRY(strata_begin_write(db, &w));
    strata_table *wu;
    TRY(strata_table_open(w, "users", STRATA_KEY_U64, 0, &wu));
    for (uint64_t i = 6; i <= 1000; i++) TRY(strata_put(wu, u64(&kb, i), s("{\"generated\":true}")));
    TRY(strata_del(wu, u64(&kb, 3)));
    TRY(strata_commit(w));
    uint64_t after_in_old;
    TRY(strata_len(users, &after_in_old));
    int still = strata_get(users, u64(&kb, 3), &v);
    printf("3. a writer added 995 users and deleted user 3, then committed.\n"
           "   the open reader still sees %" PRIu64 " users (was %" PRIu64 "), user 3: %s\n",
           after_in_old, before, still == STRATA_OK ? "still there" : "gone");
    if (after_in_old != before || still != STRATA_OK) { fprintf(stderr, "demo: snapshot broken\n"); return 1; }
    strata_abort(r);
    TRY(strata_begin_read(db, &r));
    TRY(strata_table_open(r, "users", STRATA_KEY_U64, 0, &users));
    TRY(strata_len(users, &n));
    printf("   a new reader sees %" PRIu64 " users, user 3: %s\n", n,
           strata_get(users, u64(&kb, 3), &v) == STRATA_NOTFOUND ? "gone" : "present");
    strata_abort(r);

    /* 4. errors are codes with messages, never crashes */
    TRY(strata_begin_read(db, &r));
    TRY(strata_table_open(r, "users", STRATA_KEY_U64, 0, &users));
    int rc = strata_put(users, u64(&kb, 1), s("x"));
    printf("4. a write in a read transaction: %s\n", strata_strerror(rc));
    rc = strata_table_open(r, "users", STRATA_KEY_STR, 0, &users);
    printf("   opening users as a str table: %s\n", strata_strerror(rc));
    strata_abort(r);

    /* 5. a TTL cache, a counter updated by merge, a consumer tailing the change log */
    strata_table_spec bytes = { STRATA_KEY_STR, NULL };
    strata_table *cache, *counters;
    TRY(strata_begin_write(db, &w));
    TRY(strata_table_open_ex(w, "session_cache", &bytes, STRATA_CREATE | STRATA_TTL, &cache));
    TRY(strata_table_open_ex(w, "counters", &bytes, STRATA_CREATE | STRATA_CDC, &counters));
    TRY(strata_set_clock(db, demo_clock, NULL));   /* injectable clock: no sleeping */
    TRY(strata_put_ttl(cache, s("session:42"), s("token-abc"), 60 * 60 * 1000));
    TRY(strata_put_ttl(cache, s("session:43"), s("token-def"), 10 * 60 * 1000));
    uint64_t one;
    for (int i = 0; i < 3; i++) TRY(strata_merge(counters, s("page_views"), u64(&one, 1), STRATA_MERGE_ADD_U64));
    TRY(strata_commit(w));
    strata_cdc_pos pos = { 0, 0 };
    TRY(strata_begin_write(db, &w));
    TRY(strata_table_open_ex(w, "counters", &bytes, 0, &counters));
    TRY(strata_merge(counters, s("page_views"), u64(&one, 1), STRATA_MERGE_ADD_U64));
    TRY(strata_put(counters, s("signups"), u64(&one, 7)));
    TRY(strata_cdc_consumer_set(w, "demo-tailer", &pos));
    TRY(strata_commit(w));
    g_clock_offset = 30 * 60 * 1000;                /* thirty minutes later */
    TRY(strata_begin_read(db, &r));
    TRY(strata_table_open_ex(r, "session_cache", &bytes, STRATA_TTL, &cache));
    TRY(strata_table_open_ex(r, "counters", &bytes, 0, &counters));
    uint64_t hlc;
    TRY(strata_txn_hlc(r, &hlc));
    TRY(strata_len(cache, &n));
    int live42 = strata_get(cache, s("session:42"), &v) == STRATA_OK;
    int live43 = strata_get(cache, s("session:43"), &v) == STRATA_OK;
    printf("5. TTL cache, 30 minutes later: session:42 (ttl 1 h) %s, session:43 (ttl 10 min) %s, len %" PRIu64 "\n",
           live42 ? "live" : "expired", live43 ? "live" : "expired", n);
    if (!live42 || live43 || n != 1) { fprintf(stderr, "demo: TTL filtering broken\n"); return 1; }
    TRY(strata_get(counters, s("page_views"), &v));
    memcpy(&id, v.data, 8);
    printf("   counter page_views after 4 merges (no get/put): %" PRIu64 "\n", id);
    if (id != 4) { fprintf(stderr, "demo: merge broken\n"); return 1; }
    printf("   last commit HLC: %" PRIu64 " ms + logical %" PRIu64 "\n", STRATA_HLC_PHYS_MS(hlc),
           STRATA_HLC_LOGICAL(hlc));
    TRY(strata_cdc_consumer_get(r, "demo-tailer", &pos));
    printf("   change log, tailed by consumer demo-tailer from its saved position:\n");
    TRY(strata_cdc_read(r, &pos, 0, print_change, NULL, &pos));
    strata_abort(r);

    /* 6. blobs: two near-duplicate documents share chunks; tags and lineage */
    TRY(strata_begin_write(db, &w));
    size_t doc_len = 600 * 1024;
    unsigned char *doc = malloc(doc_len);
    if (!doc) return 1;
    uint64_t st = 42;
    for (size_t i = 0; i < doc_len; i++) { st = st * 6364136223846793005ull + 1442695040888963407ull; doc[i] = (unsigned char)(st >> 56); }
    strata_blob_opts bo = { .content_type = "application/octet-stream", .label = "report v1", .ns = "docs" };
    uint64_t v1, v2;
    TRY(strata_blob_put(w, &bo, doc, doc_len, &v1));
    memcpy(doc + 300000, "an edit in the middle", 21);       /* v2: a small edit */
    bo.label = "report v2";
    TRY(strata_blob_put(w, &bo, doc, doc_len, &v2));
    TRY(strata_blob_tag_add(w, v2, "final"));
    TRY(strata_blob_link(w, v2, v1, STRATA_BLOB_DERIVED_FROM, "edited section 3"));
    float e1[4] = { 1, 0, 0, 0 }, e2[4] = { 0.9f, 0.1f, 0, 0 }, e3[3] = { 0, 1, 0 };
    TRY(strata_blob_embed_set(w, v1, e1, 4));            /* vector table blob:vec:4 */
    TRY(strata_blob_embed_set(w, v2, e2, 4));
    TRY(strata_blob_embed_set(w, v2, e3, 3));            /* another dimension: moves to blob:vec:3 */
    TRY(strata_blob_embed_set(w, v2, e2, 4));            /* and back */
    TRY(strata_commit(w));
    free(doc);
    TRY(strata_begin_read(db, &r));
    strata_blob_stats bst;
    double ratio;
    TRY(strata_blob_stats_get(r, &bst));
    TRY(strata_blob_dedup_ratio(r, &ratio));
    printf("6. blobs: %" PRIu64 " blobs, %" PRIu64 " logical bytes stored as %" PRIu64 " bytes in %" PRIu64
           " chunks (dedup ratio %.2f); v2 derived from v1\n",
           bst.n_blobs, bst.logical_bytes, bst.stored_bytes, bst.n_chunks, ratio);
    if (ratio < 1.5) { fprintf(stderr, "demo: near-duplicate blobs did not share chunks\n"); return 1; }
    strata_hit bh[4];
    size_t nbh;
    TRY(strata_blob_similar(r, STRATA_METRIC_L2, e1, 4, 4, bh, &nbh));
    printf("   blob embeddings: nearest to v1's are %zu blobs, first %" PRIu64 " (%s)\n", nbh, bh[0].id,
           nbh == 2 && bh[0].id == v1 && bh[1].id == v2 ? "as expected" : "WRONG");
    if (nbh != 2 || bh[0].id != v1 || bh[1].id != v2) return 1;
    strata_blob_info bi;                                  /* a content hash stands for an id */
    uint64_t by_hash = 0;
    TRY(strata_blob_info_get(r, v2, &bi));
    TRY(strata_blob_find(r, bi.sha256, &by_hash));
    printf("   content hash %02x%02x%02x%02x... names blob %" PRIu64 " (%s)\n", bi.sha256[0], bi.sha256[1],
           bi.sha256[2], bi.sha256[3], by_hash, by_hash == v2 ? "as expected" : "WRONG");
    if (by_hash != v2) return 1;
    strata_abort(r);

    /* 7. vectors: a vector table, exact top-k, and an IVF-PQ index in the same file */
    enum { NV = 4000, DIM = 32, CLUSTERS = 20 };
    float *vecs = malloc(sizeof(float) * NV * DIM), centre[CLUSTERS][DIM];
    uint64_t *ids = malloc(sizeof(uint64_t) * NV);
    if (!vecs || !ids) return 1;
    uint64_t rs = 7;
    for (int ci = 0; ci < CLUSTERS; ci++)
        for (int j = 0; j < DIM; j++) { rs = rs * 6364136223846793005ull + 1442695040888963407ull; centre[ci][j] = (float)(rs >> 40) / 1.6e7f * 20.0f; }
    for (int i = 0; i < NV; i++) {
        ids[i] = (uint64_t)i;
        for (int j = 0; j < DIM; j++) {
            rs = rs * 6364136223846793005ull + 1442695040888963407ull;
            vecs[i * DIM + j] = centre[i % CLUSTERS][j] + (float)((rs >> 40) % 1000) / 1000.0f;
        }
    }
    strata_table_spec vspec = { STRATA_KEY_U64, NULL, DIM };
    strata_table *vt;
    strata_ivf *ix;
    strata_ivf_config icfg = { .dim = DIM, .metric = STRATA_METRIC_L2, .nlist = 32, .m = 8, .nprobe = 4,
                               .flags = STRATA_IVF_RAW, .seed = 1 };
    unsigned warn;
    TRY(strata_begin_write(db, &w));
    TRY(strata_table_open_ex(w, "embeddings", &vspec, STRATA_CREATE | STRATA_VECTOR, &vt));
    for (int i = 0; i < NV; i++) TRY(strata_put(vt, u64(&kb, ids[i]), (strata_slice){ vecs + i * DIM, DIM * sizeof(float) }));
    TRY(strata_ivf_create(w, "embeddings_ivf", &icfg, &ix));
    TRY(strata_ivf_train(ix, vecs, NV, DIM, &warn));
    TRY(strata_ivf_insert_batch(ix, NV, ids, vecs, DIM, NULL));
    strata_ivf_close(ix);
    TRY(strata_commit(w));
    TRY(strata_begin_read(db, &r));
    TRY(strata_table_open_ex(r, "embeddings", &vspec, STRATA_VECTOR, &vt));
    TRY(strata_ivf_open(r, "embeddings_ivf", &ix));
    const float *q = vecs + 123 * DIM;
    strata_hit exact[10], approx[10];
    size_t ne, na;
    TRY(strata_vec_table_topk(vt, STRATA_METRIC_L2, q, DIM, 10, NULL, NULL, exact, &ne));
    strata_ivf_params ip;
    strata_ivf_params_default(&ip);
    ip.rerank = 40;
    TRY(strata_ivf_search(ix, q, DIM, 10, &ip, approx, &na));
    int common = 0;
    for (size_t i = 0; i < na; i++)
        for (size_t j = 0; j < ne; j++) common += approx[i].id == exact[j].id;
    printf("7. %d vectors of %d dims (kernels: %s): nearest to #123 by exact scan: #%llu, #%llu, #%llu ...\n"
           "   IVF-PQ (32 lists, 8-byte codes, rerank 40) finds %d of the exact top 10\n",
           NV, DIM, strata_vec_kernel_name(), (unsigned long long)exact[0].id, (unsigned long long)exact[1].id,
           (unsigned long long)exact[2].id, common);
    if (exact[0].id != 123 || common < 8) { fprintf(stderr, "demo: vector search broken\n"); return 1; }
    strata_ivf_close(ix);
    strata_abort(r);
    free(vecs);
    free(ids);
    strata_close(db);
    printf("\nclosed; the file is ready for dbtool.\n");
    return 0;
}
