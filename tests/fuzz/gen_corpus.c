/* tests/fuzz/gen_corpus.c - writes the seed corpus checked in under
 * tests/fuzz/corpus/: small real database files (open/), single pages cut
 * from them (page/) and a few op scripts (ops/). Deterministic; each file is
 * < 64 KiB. Run: gen_corpus DIR (then copy DIR/{open,page,ops} over).
 * Not a test: the corpus is data, regenerated only when the format changes. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "strata.h"

void db_close_nosync(strata_db *db);

#define TRY(x) do { int rc_ = (x); if (rc_) { fprintf(stderr, "%s: %s\n", #x, strata_strerror(rc_)); exit(1); } } while (0)

static char g_dir[1024];

static void put_u64(strata_table *t, uint64_t k, const void *v, size_t vl) {
    uint8_t kb[8];
    for (int i = 0; i < 8; i++) kb[i] = (uint8_t)(k >> (8 * i));
    TRY(strata_put(t, (strata_slice){ kb, 8 }, (strata_slice){ v, vl }));
}

static void put_s(strata_table *t, const char *k, const void *v, size_t vl) {
    TRY(strata_put(t, (strata_slice){ k, strlen(k) }, (strata_slice){ v, vl }));
}

/* Build database `name` with recipe r; returns its path. */
static const char *make_db(const char *name, int r, uint32_t ps) {
    static char path[1200];
    snprintf(path, sizeof path, "%s/open/%s", g_dir, name);
    unlink(path);
    strata_options o = { .page_size = ps };
    strata_db *db;
    strata_txn *w;
    strata_table *a, *b;
    char v[3000];
    memset(v, 'x', sizeof v);
    TRY(strata_open_ex(path, STRATA_CREATE, &o, &db));
    if (r == 0) { strata_close(db); return path; }       /* empty */
    TRY(strata_begin_write(db, &w));
    TRY(strata_table_open(w, "bytes", STRATA_KEY_BYTES, STRATA_CREATE, &a));
    TRY(strata_table_open(w, "u64", STRATA_KEY_U64, STRATA_CREATE, &b));
    int n = r == 1 ? 120 : r == 4 ? 10 : 30;
    for (int i = 0; i < n; i++) {
        char k[16];
        snprintf(k, sizeof k, "k%04d", i * 7 % 1000);
        put_s(a, k, v, (size_t)(i % 40));
        put_u64(b, (uint64_t)i * 1000003u, k, strlen(k));
    }
    if (r != 4) put_s(a, "big", v, sizeof v);              /* overflow value */
    if (r == 2) {
        strata_table *m, *s;
        strata_table_spec spec = { STRATA_KEY_BYTES, NULL };
        TRY(strata_table_open_ex(w, "multi", &spec, STRATA_CREATE | STRATA_MULTIMAP, &m));
        for (int i = 0; i < 20; i++) put_s(m, i % 2 ? "odd" : "even", v, (size_t)(i + 1));
        TRY(strata_table_open(w, "str", STRATA_KEY_STR, STRATA_CREATE, &s));
        put_s(s, "h\xc3\xa9llo", "w", 1);
        TRY(strata_table_open(w, "i64", STRATA_KEY_I64, STRATA_CREATE, &s));
        put_u64(s, (uint64_t)-5, "neg", 3);
    }
    TRY(strata_commit(w));
    if (r == 2 || r == 3) {                              /* a second commit: two slots */
        TRY(strata_begin_write(db, &w));
        TRY(strata_table_open(w, "bytes", STRATA_KEY_BYTES, 0, &a));
        TRY(strata_del(a, (strata_slice){ "big", 3 }));
        put_s(a, "k0000", "changed", 7);
        if (r == 3) TRY(strata_txn_set_durability(w, STRATA_DURABILITY_NONE));
        TRY(strata_commit(w));
    }
    if (r == 3) {                                          /* unclean: recovery at open */
        strata_info in;
        TRY(strata_db_info(db, &in));
        db_close_nosync(db);
        if (truncate(path, (off_t)(in.page_count * ps)) != 0) exit(1);   /* drop the growth slack */
    } else {
        strata_close(db);
    }
    return path;
}

static void write_file(const char *sub, const char *name, const void *p, size_t n) {
    char path[1200];
    snprintf(path, sizeof path, "%s/%s/%s", g_dir, sub, name);
    FILE *f = fopen(path, "wb");
    if (!f || fwrite(p, 1, n, f) != n) { fprintf(stderr, "cannot write %s\n", path); exit(1); }
    fclose(f);
}

/* Cut every B-tree page (type 1 or 2) of a 4 KiB-page file into page/. */
static void cut_pages(const char *dbpath, const char *prefix) {
    FILE *f = fopen(dbpath, "rb");
    if (!f) exit(1);
    uint8_t pg[4096];
    for (int i = 0; fread(pg, 1, sizeof pg, f) == sizeof pg; i++) {
        if (i == 0 || (pg[0] != 1 && pg[0] != 2)) continue;
        char name[64];
        snprintf(name, sizeof name, "%s-p%02d", prefix, i);
        write_file("page", name, pg, sizeof pg);
    }
    fclose(f);
}

/* The seed of fuzz_layers: blobs with tags, namespaces, edges, embeddings
 * and a two-chunk content; a trained fractal index "f" with a few leaves and
 * buffered vectors; a trained IVF-PQ index "v" with raw vectors. */
static void make_layers_db(void) {
    char path[1200];
    snprintf(path, sizeof path, "%s/layers/layers-4k", g_dir);
    unlink(path);
    strata_db *db;
    strata_txn *w;
    TRY(strata_open(path, STRATA_CREATE, &db));
    TRY(strata_begin_write(db, &w));
    uint8_t buf[20000];
    for (size_t i = 0; i < sizeof buf; i++) buf[i] = (uint8_t)(i * 131 + i / 97);
    strata_blob_opts fixed = { .chunking = STRATA_BLOB_FIXED, .avg_chunk = 8192, .ns = "docs" };
    uint64_t a, b, c;
    TRY(strata_blob_put(w, NULL, buf, 3000, &a));
    TRY(strata_blob_put(w, &fixed, buf, sizeof buf, &b));
    TRY(strata_blob_put(w, NULL, buf + 100, 900, &c));
    TRY(strata_blob_tag_add(w, a, "t"));
    TRY(strata_blob_tag_add(w, b, "t"));
    TRY(strata_blob_link(w, b, a, STRATA_BLOB_DERIVED_FROM, "edit"));
    TRY(strata_blob_link(w, c, b, STRATA_BLOB_SUPPORTS, NULL));
    static const float e1[4] = { 1, 0, 0, 0 }, e2[4] = { 0, 1, 0, 0 };
    TRY(strata_blob_embed_set(w, a, e1, 4));
    TRY(strata_blob_embed_set(w, b, e2, 4));
    float v[8];
    strata_fractal_config fc;
    strata_fractal_config_default(&fc, 8, STRATA_METRIC_L2);
    fc.pq_m = 4;
    fc.max_leaf = 16;
    fc.min_leaf = 4;
    fc.max_fanout = 4;
    fc.buffer_cap = 4;
    fc.train_size = 40;
    strata_fractal *f;
    TRY(strata_fractal_create(w, "f", &fc, &f));
    for (uint64_t i = 0; i < 90; i++) {
        for (int d = 0; d < 8; d++) v[d] = (float)((i * 7 + (uint64_t)d * 13) % 17) + (float)(i % 3) * 5;
        TRY(strata_fractal_add(f, i, v, 8, i));
    }
    TRY(strata_fractal_delete(f, 5));
    strata_fractal_close(f);
    strata_ivf_config ic = { .dim = 8, .metric = STRATA_METRIC_L2, .nlist = 4, .m = 4, .nprobe = 2,
                             .flags = STRATA_IVF_RAW | STRATA_IVF_ATTR, .seed = 1 };
    strata_ivf *ix;
    TRY(strata_ivf_create(w, "v", &ic, &ix));
    static float data[256 * 8];   /* training needs >= 256 vectors */
    for (int i = 0; i < 256 * 8; i++) data[i] = (float)((i * 29) % 23) + (float)(i / 80);
    TRY(strata_ivf_train(ix, data, 256, 8, NULL));
    for (uint64_t i = 0; i < 60; i++) TRY(strata_ivf_insert(ix, i, data + i * 8, 8, i * 10));
    strata_ivf_close(ix);
    TRY(strata_commit(w));
    strata_close(db);
}

int main(int argc, char **argv) {
    if (argc != 2) { fprintf(stderr, "usage: gen_corpus DIR\n"); return 2; }
    snprintf(g_dir, sizeof g_dir, "%s", argv[1]);
    const char *subs[] = { "open", "page", "ops", "layers" };
    for (int i = 0; i < 4; i++) {
        char p[1200];
        snprintf(p, sizeof p, "%s/%s", g_dir, subs[i]);
        mkdir(g_dir, 0755);
        mkdir(p, 0755);
    }
    make_db("empty-4k", 0, 4096);
    cut_pages(make_db("two-tables-4k", 1, 4096), "two-tables");
    cut_pages(make_db("kinds-4k", 2, 4096), "kinds");
    make_db("unclean-4k", 3, 4096);
    make_db("small-8k", 4, 8192);
    /* op scripts: opcode, key len, key bytes, value len/13, value seed */
    static const uint8_t ops1[] = { 0, 0, 'a', 10, 1, 0, 0, 'b', 250, 2, 3, 0, 'a', 7, 4, 0, 'a', 0,
                                    2, 0, 'a', 5, 0, 6, 0, 0, 0, 'z', 2, 9, 0, 0, 'c', 3, 3 };
    static const uint8_t ops2[] = { 1, 1, 'k', '1', 200, 9, 1, 1, 'k', '2', 200, 8, 1, 1, 'k', '3',
                                    200, 7, 4, 0, 'k', 1, 8, 5, 1, 4, 0, 0, 0, 8 };
    uint8_t ops3[600];
    for (size_t i = 0; i < sizeof ops3; i++) ops3[i] = (uint8_t)((i * 37 + i / 7) & 0xFF);
    write_file("ops", "basic", ops1, sizeof ops1);
    write_file("ops", "overflow-commit", ops2, sizeof ops2);
    write_file("ops", "mixed", ops3, sizeof ops3);
    make_layers_db();
    printf("corpus written under %s\n", g_dir);
    return 0;
}
