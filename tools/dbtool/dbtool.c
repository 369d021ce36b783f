/* tools/dbtool/dbtool.c - inspect a Strata database file (public API only).
 *   dbtool info FILE          page size, last commit, file size, used/free pages
 *   dbtool tables FILE        name, key type, entries, tree height, pages
 *   dbtool dump FILE TABLE    every key and value (printable, else hex)
 *   dbtool check FILE         full integrity walk; exit 1 and a report if damaged
 *   dbtool backup FILE DEST   consistent copy of the last commit into a new file
 *   dbtool compact FILE       move pages toward the start and shrink the file
 *   dbtool blobs FILE         blob store: blobs, bytes, chunks, dedup ratio
 *   dbtool salvage SRC DST    copy every readable entry of a damaged file into DST
 * Exit codes: 0 success, 1 the file is damaged or an operation failed, 2 usage.
 * Tables with a custom comparator are read with a byte-order stand-in: stats,
 * dumps (in stored order) and checksums do not need the real order; `check`
 * then reports key order as unchecked for those tables. */
#include <ctype.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "strata.h"

static const char *kt_name(strata_key_type kt) {
    switch (kt) {
    case STRATA_KEY_BYTES: return "bytes";
    case STRATA_KEY_U64: return "u64";
    case STRATA_KEY_I64: return "i64";
    case STRATA_KEY_STR: return "str";
    case STRATA_KEY_CUSTOM: return "custom";
    }
    return "?";
}

static int fail(const char *what, int rc) {
    fprintf(stderr, "dbtool: %s: %s\n", what, strata_strerror(rc));
    return 1;
}

static int bytes_order(void *ctx, const void *a, size_t al, const void *b, size_t bl) {
    (void)ctx;
    size_t m = al < bl ? al : bl;
    int c = m ? memcmp(a, b, m) : 0;
    return c ? c : (al < bl ? -1 : al > bl);
}

/* Register a stand-in for every custom comparator named in the catalog. */
static int stand_in(void *ctx, const strata_table_info *in) {
    if (in->comparator) (void)strata_register_comparator(ctx, in->comparator, bytes_order, NULL);
    return 0;
}

static int open_db(const char *path, strata_db **db) {
    int rc = strata_open(path, STRATA_RDONLY, db);
    if (rc) return fail(path, rc);
    strata_txn *r;
    if ((rc = strata_begin_read(*db, &r))) {
        strata_close(*db);
        return fail("begin read", rc);
    }
    rc = strata_table_list(r, 1, stand_in, *db);
    strata_abort(r);
    if (rc) strata_close(*db);
    return rc ? fail("list tables", rc) : 0;
}

static int cmd_info(const char *path) {
    strata_db *db;
    if (open_db(path, &db)) return 1;
    strata_info in;
    int rc = strata_db_info(db, &in);
    if (rc) { strata_close(db); return fail("info", rc); }
    printf("file:            %s\n", path);
    printf("page size:       %" PRIu32 "\n", in.page_size);
    printf("last commit:     %" PRIu64 " (durable %" PRIu64 ")\n", in.last_txn_id, in.durable_txn_id);
    printf("file size:       %" PRIu64 " bytes\n", in.file_size);
    printf("pages:           %" PRIu64 " (%" PRIu64 " used, %" PRIu64 " free)\n", in.page_count,
           in.page_count - 1 - in.free_pages, in.free_pages);
    printf("recovered:       %s\n", in.recovered ? "yes (fell back to the previous commit)" : "no");
    strata_close(db);
    return 0;
}

typedef struct tables_ctx { strata_txn *txn; int rc; } tables_ctx;

static int open_any(strata_txn *txn, const strata_table_info *in, strata_table **t) {
    strata_table_spec spec = { in->key_type, in->comparator, in->vector_dim };
    return strata_table_open_ex(txn, in->name, &spec, in->flags, t);
}

static int print_table(void *ctx, const strata_table_info *in) {
    tables_ctx *tc = ctx;
    strata_table *t;
    strata_table_stat st;
    int rc = open_any(tc->txn, in, &t);
    if (rc == STRATA_OK) rc = strata_table_stat_get(t, &st);
    if (rc) { tc->rc = rc; printf("%-30s error: %s\n", in->name, strata_strerror(rc)); return 0; }
    char kind[48];
    if (in->flags & STRATA_VECTOR) snprintf(kind, sizeof kind, "vector f32x%u", (unsigned)in->vector_dim);
    else snprintf(kind, sizeof kind, "%s%s%s", kt_name(in->key_type), (in->flags & STRATA_MULTIMAP) ? " multimap" : "",
                  (in->flags & STRATA_TTL) ? " ttl" : "");
    printf("%-30s %-16s %12" PRIu64 " %6" PRIu32 " %8" PRIu64 " %8" PRIu64 " %8" PRIu64 "\n", in->name,
           kind, st.entries, st.height, st.branch_pages, st.leaf_pages, st.overflow_pages);
    return 0;
}

static int cmd_tables(const char *path) {
    strata_db *db;
    if (open_db(path, &db)) return 1;
    strata_txn *r;
    int rc = strata_begin_read(db, &r);
    if (rc) { strata_close(db); return fail("begin read", rc); }
    printf("%-30s %-16s %12s %6s %8s %8s %8s\n", "table", "key type", "entries", "height", "branch",
           "leaf", "overflow");
    tables_ctx tc = { r, 0 };
    rc = strata_table_list(r, 1, print_table, &tc);
    strata_abort(r);
    strata_close(db);
    if (rc) return fail("list tables", rc);
    return tc.rc ? 1 : 0;
}

static void print_bytes(const strata_slice *s) {
    const unsigned char *p = s->data;
    int printable = 1;
    for (size_t i = 0; i < s->len; i++)
        if (!isprint(p[i])) { printable = 0; break; }
    if (printable) {
        printf("\"%.*s\"", (int)s->len, (const char *)p);
        return;
    }
    printf("0x");
    size_t n = s->len > 256 ? 256 : s->len;
    for (size_t i = 0; i < n; i++) printf("%02x", p[i]);
    if (n < s->len) printf("... (%zu bytes)", s->len);
}

static void print_key(strata_key_type kt, const strata_slice *k) {
    const unsigned char *p = k->data;
    if ((kt == STRATA_KEY_U64 || kt == STRATA_KEY_I64) && k->len == 8) {
        uint64_t v = 0;
        for (int i = 7; i >= 0; i--) v = v << 8 | p[i];
        if (kt == STRATA_KEY_U64) printf("%" PRIu64, v);
        else printf("%" PRId64, (int64_t)v);
        return;
    }
    print_bytes(k);
}

typedef struct find_ctx {
    const char        *name;
    strata_table_info  info;     /* name and comparator point into this struct */
    char               cmp[64];
    int                found;
} find_ctx;

static int find_table(void *ctx, const strata_table_info *in) {
    find_ctx *f = ctx;
    if (strcmp(in->name, f->name)) return 0;
    f->info = *in;
    f->info.name = f->name;        /* in's strings live only during the callback */
    if (in->comparator) {
        snprintf(f->cmp, sizeof f->cmp, "%s", in->comparator);
        f->info.comparator = f->cmp;
    }
    f->found = 1;
    return 1;
}

static int cmd_dump(const char *path, const char *name) {
    strata_db *db;
    if (open_db(path, &db)) return 1;
    strata_txn *r;
    int rc = strata_begin_read(db, &r);
    if (rc) { strata_close(db); return fail("begin read", rc); }
    find_ctx f = { name, { 0 }, { 0 }, 0 };
    rc = strata_table_list(r, 1, find_table, &f);
    strata_table *t = NULL;
    strata_cursor *c = NULL;
    if (rc == 1) rc = STRATA_OK;
    if (rc == STRATA_OK && !f.found) rc = STRATA_NOTFOUND;
    if (rc == STRATA_OK) rc = open_any(r, &f.info, &t);
    if (rc == STRATA_OK) rc = strata_cursor_open(t, &c);
    uint64_t n = 0;
    int m = rc ? rc : strata_cursor_first(c);
    for (; rc == STRATA_OK && m == STRATA_OK; m = strata_cursor_next(c)) {
        strata_slice k, v;
        if ((rc = strata_cursor_get(c, &k, &v))) break;
        print_key(f.info.key_type, &k);
        printf(" => ");
        print_bytes(&v);
        printf("\n");
        n++;
    }
    if (rc == STRATA_OK && m != STRATA_NOTFOUND) rc = m;   /* a damaged page ended the walk */
    strata_abort(r);
    strata_close(db);
    if (rc) return fail(name, rc);
    fprintf(stderr, "%" PRIu64 " entries\n", n);
    return 0;
}

static void report_line(void *ctx, const char *msg) {
    (void)ctx;
    printf("  problem: %s\n", msg);
}

static int cmd_blobs(const char *path) {
    strata_db *db;
    if (open_db(path, &db)) return 1;
    strata_txn *r = NULL;
    int rc = strata_begin_read(db, &r);
    strata_blob_stats st;
    double ratio = 1.0;
    if (rc == STRATA_OK) rc = strata_blob_stats_get(r, &st);
    if (rc == STRATA_OK) rc = strata_blob_dedup_ratio(r, &ratio);
    if (r) strata_abort(r);
    strata_close(db);
    if (rc) return fail("blobs", rc);
    printf("blobs:           %" PRIu64 " (%" PRIu64 " pending)\n", st.n_blobs, st.n_pending);
    printf("logical bytes:   %" PRIu64 "\n", st.logical_bytes);
    printf("chunks:          %" PRIu64 " (%" PRIu64 " bytes stored)\n", st.n_chunks, st.stored_bytes);
    printf("dedup ratio:     %.2f\n", ratio);
    printf("next blob id:    %" PRIu64 "\n", st.next_id);
    return 0;
}

/* Every fractal index (tables "__frac:NAME:config") gets its invariant check. */
typedef struct frac_ctx { strata_txn *txn; int rc; } frac_ctx;

static int check_fractal(void *ctx, const strata_table_info *in) {
    frac_ctx *fc = ctx;
    const char *pre = "__frac:", *suf = ":config";
    size_t n = strlen(in->name), lp = strlen(pre), ls = strlen(suf);
    if (n <= lp + ls || strncmp(in->name, pre, lp) || strcmp(in->name + n - ls, suf)) return 0;
    char name[256];
    snprintf(name, sizeof name, "%.*s", (int)(n - lp - ls), in->name + lp);
    int rc = strata_fractal_check(fc->txn, name, report_line, NULL);
    if (rc) { printf("  fractal index %s: %s\n", name, strata_strerror(rc)); fc->rc = rc; }
    return 0;
}

static int cmd_check(const char *path) {
    strata_db *db;
    int rc = strata_open(path, STRATA_RDONLY, &db);
    if (rc) { printf("%s: cannot open: %s\n", path, strata_strerror(rc)); return 1; }
    strata_txn *r;
    if ((rc = strata_begin_read(db, &r))) { strata_close(db); return fail("begin read", rc); }
    rc = strata_check(r, report_line, NULL);
    int brc = strata_blob_check(r, 1, report_line, NULL);       /* blob tables, chunk hashes */
    if (rc == STRATA_OK && brc != STRATA_OK) rc = brc;
    frac_ctx fc = { r, STRATA_OK };
    int lrc = strata_table_list(r, 1, check_fractal, &fc);
    if (rc == STRATA_OK && lrc != STRATA_OK) rc = lrc;
    if (rc == STRATA_OK && fc.rc != STRATA_OK) rc = fc.rc;
    strata_abort(r);
    strata_close(db);
    if (rc == STRATA_OK) { printf("%s: ok\n", path); return 0; }
    printf("%s: DAMAGED (%s)\n", path, strata_strerror(rc));
    return 1;
}

static int cmd_backup(const char *path, const char *dest) {
    strata_db *db;
    int rc = strata_open(path, STRATA_RDONLY, &db);
    if (rc) return fail(path, rc);
    rc = strata_backup(db, dest);
    strata_close(db);
    if (rc) return fail(dest, rc);
    printf("%s: backup written\n", dest);
    return 0;
}

static int cmd_compact(const char *path) {
    strata_db *db;
    int rc = strata_open(path, 0, &db);
    if (rc) return fail(path, rc);
    uint64_t before, after;
    rc = strata_compact(db, &before, &after);
    strata_close(db);
    if (rc) return fail("compact", rc);
    printf("%s: %" PRIu64 " -> %" PRIu64 " bytes\n", path, before, after);
    return 0;
}

static int cmd_salvage(const char *src, const char *dst) {
    strata_salvage_stats st;
    int rc = strata_salvage(src, dst, &st, report_line, NULL);
    if (rc) return fail(src, rc);
    printf("salvaged %" PRIu64 " entries of %" PRIu64 " tables into %s; lost: %" PRIu64
           " unreadable pages, %" PRIu64 " tables\n", st.entries, st.tables, dst, st.lost_pages, st.lost_tables);
    return st.lost_pages || st.lost_tables ? 1 : 0;
}

int main(int argc, char **argv) {
    if (argc >= 3 && !strcmp(argv[1], "info")) return cmd_info(argv[2]);
    if (argc >= 3 && !strcmp(argv[1], "tables")) return cmd_tables(argv[2]);
    if (argc >= 4 && !strcmp(argv[1], "dump")) return cmd_dump(argv[2], argv[3]);
    if (argc >= 3 && !strcmp(argv[1], "check")) return cmd_check(argv[2]);
    if (argc >= 4 && !strcmp(argv[1], "backup")) return cmd_backup(argv[2], argv[3]);
    if (argc >= 4 && !strcmp(argv[1], "salvage")) return cmd_salvage(argv[2], argv[3]);
    if (argc >= 3 && !strcmp(argv[1], "compact")) return cmd_compact(argv[2]);
    if (argc >= 3 && !strcmp(argv[1], "blobs")) return cmd_blobs(argv[2]);
    fprintf(stderr, "usage: dbtool info|tables|check FILE\n       dbtool dump FILE TABLE\n"
                    "       dbtool backup FILE DEST\n       dbtool salvage SRC DST\n"
                    "       dbtool compact FILE\n       dbtool blobs FILE\n");
    return 2;
}
