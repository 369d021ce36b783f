/* db/check.c - strata_check: a full integrity walk of one snapshot.
 * Checks every page of every tree (catalog, each table, free tree): checksum
 * against the parent (always computed, whatever the verify mode), structure,
 * key order within and across pages, tree depth, entry counts against the
 * catalog; then that every page below the page count is used exactly once or
 * listed free exactly once.
 * Invariants: read-only; bounded depth; reports at most MAX_REPORTS lines. */
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "db_int.h"

enum { MAX_REPORTS = 100 };
enum { M_FREE = 1, M_USED = 2 };

typedef struct chk {
    pager    *p;
    uint64_t  page_count;
    uint8_t  *marks;
    unsigned  errors;
    void    (*report)(void *, const char *);
    void     *ctx;
} chk;

static void problem(chk *k, const char *fmt, ...) {
    k->errors++;
    if (!k->report || k->errors > MAX_REPORTS) return;
    char msg[512];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(msg, sizeof msg, fmt, ap);
    va_end(ap);
    k->report(k->ctx, msg);
}

static int mark(chk *k, pgno_t pg, uint64_t n, uint8_t how, const char *what) {
    if (pg == 0 || pg >= k->page_count || n > k->page_count - pg) {
        problem(k, "%s: page %llu (+%llu) outside the file (page count %llu)", what,
                (unsigned long long)pg, (unsigned long long)n, (unsigned long long)k->page_count);
        return 0;
    }
    for (uint64_t i = 0; i < n; i++) {
        if (k->marks[pg + i]) {
            problem(k, "%s: page %llu is %s already", what, (unsigned long long)(pg + i),
                    k->marks[pg + i] == M_FREE ? "listed free" : "used");
            return 0;
        }
        k->marks[pg + i] = how;
    }
    return 1;
}

typedef struct bound { const uint8_t *key; size_t len; int set; } bound;

static int walk(chk *k, const char *tname, bt_cmp cmp, void *cctx, pgno_t pg, ck128 ck,
                bound lo, bound hi, int depth, uint64_t *entries, int *leaf_depth) {
    pager *p = k->p;
    if (depth >= BT_MAX_DEPTH) { problem(k, "%s: tree deeper than %d", tname, BT_MAX_DEPTH); return 0; }
    if (!mark(k, pg, 1, M_USED, tname)) return 0;
    const uint8_t *page = pager_ptr(p, pg);
    if (!ck_eq(ck_compute(page, p->ps), ck)) {
        problem(k, "%s: page %llu checksum mismatch", tname, (unsigned long long)pg);
        return 0;
    }
    if (node_validate(page, p->ps)) {
        problem(k, "%s: page %llu malformed", tname, (unsigned long long)pg);
        return 0;
    }
    unsigned n = pg_n(page), type = pg_type(page);
    const uint8_t *prev = NULL;
    size_t prev_len = 0;
    for (unsigned i = 0; i < n; i++) {
        const uint8_t *c = pg_cell(page, i);
        const uint8_t *key = type == PT_LEAF ? lc_key(c) : bc_key(c);
        size_t klen = type == PT_LEAF ? lc_klen(c) : bc_klen(c);
        int has_key = type == PT_LEAF || i > 0;
        if (cmp && has_key) {
            if (prev && cmp(cctx, prev, prev_len, key, klen) >= 0)
                problem(k, "%s: page %llu keys out of order at slot %u", tname, (unsigned long long)pg, i);
            if (lo.set && cmp(cctx, key, klen, lo.key, lo.len) < 0)
                problem(k, "%s: page %llu key below its parent's bound", tname, (unsigned long long)pg);
            if (hi.set && cmp(cctx, key, klen, hi.key, hi.len) >= 0)
                problem(k, "%s: page %llu key above its parent's bound", tname, (unsigned long long)pg);
        }
        if (has_key) { prev = key; prev_len = klen; }
        if (type == PT_LEAF) {
            (*entries)++;
            if (lc_flags(c) & LF_OVERFLOW) {
                pgno_t op = le64_get(lc_val(c));
                size_t len = lc_vlen(c), np = pager_npages(p, len);
                if (mark(k, op, np, M_USED, tname) &&
                    !ck_eq(ck_compute(pager_ptr(p, op), len), ck_get(lc_val(c) + 8)))
                    problem(k, "%s: overflow value at page %llu checksum mismatch", tname,
                            (unsigned long long)op);
            }
            continue;
        }
        bound clo = i == 0 ? lo : (bound){ key, klen, 1 };
        bound chi = hi;
        if (i + 1 < n) {
            const uint8_t *nc = pg_cell(page, i + 1);
            chi = (bound){ bc_key(nc), bc_klen(nc), 1 };
        }
        walk(k, tname, cmp, cctx, bc_child(c), bc_ck(c), clo, chi, depth + 1, entries, leaf_depth);
    }
    if (type == PT_LEAF) {
        if (*leaf_depth < 0) *leaf_depth = depth;
        else if (*leaf_depth != depth) problem(k, "%s: leaves at different depths", tname);
    }
    return 1;
}

static void walk_tree(chk *k, const char *tname, bt_cmp cmp, void *cctx, pgno_t root, ck128 ck,
                      uint64_t *entries) {
    bound none = { NULL, 0, 0 };
    int leaf_depth = -1;
    *entries = 0;
    if (root) walk(k, tname, cmp, cctx, root, ck, none, none, 0, entries, &leaf_depth);
}

static int check_tables(chk *k, strata_txn *txn) {
    bt_cursor c;
    bt_cursor_init(&c, &txn->cx, &txn->catalog);
    char name[CAT_NAME_MAX + 1];
    int rc;
    for (rc = bt_cursor_first(&c); rc == STRATA_OK; rc = bt_cursor_next(&c)) {
        bt_val key, val;
        if ((rc = bt_cursor_get(&c, &key, &val))) break;
        cat_desc d;
        if (key.len == 0 || key.len > CAT_NAME_MAX || cat_desc_decode(val.data, val.len, &d)) {
            problem(k, "catalog: bad descriptor");
            continue;
        }
        memcpy(name, key.data, key.len);
        name[key.len] = 0;
        mm_cmp_ctx mm;
        bt_cmp cmp;
        void *cctx;
        if (db_tree_cmp(txn->db, &d, &mm, &cmp, &cctx)) cmp = NULL;   /* order unchecked */
        uint64_t entries;
        walk_tree(k, name, cmp, cctx, d.root, d.root_ck, &entries);
        if (entries != d.count)
            problem(k, "%s: catalog says %llu entries, tree holds %llu", name,
                    (unsigned long long)d.count, (unsigned long long)entries);
    }
    return rc == STRATA_NOTFOUND ? STRATA_OK : rc;
}

static int check_free(chk *k, strata_txn *txn) {
    bt_tree ft = { txn->snap.free_root, txn->snap.free_ck, 0, bt_cmp_bytes, NULL };
    uint64_t entries;
    walk_tree(k, "free-tree", bt_cmp_bytes, NULL, ft.root, ft.root_ck, &entries);
    bt_cursor c;
    bt_cursor_init(&c, &txn->cx, &ft);
    int rc;
    for (rc = bt_cursor_first(&c); rc == STRATA_OK; rc = bt_cursor_next(&c)) {
        bt_val key, val;
        if ((rc = bt_cursor_get(&c, &key, &val))) break;
        if (key.len != FT_KEY_LEN || val.len % FT_EXT_LEN || (be64_get(key.data) & ~FT_VOL) > txn->snap.txnid) {
            problem(k, "free-tree: malformed entry");
            continue;
        }
        for (size_t off = 0; off < val.len; off += FT_EXT_LEN)
            mark(k, le64_get(val.data + off), le32_get(val.data + off + 8), M_FREE, "free-tree");
    }
    return rc == STRATA_NOTFOUND ? STRATA_OK : rc;
}

int db_check(strata_txn *txn, void (*report)(void *, const char *), void *ctx) {
    chk k = { txn->db->p, txn->snap.page_count, NULL, 0, report, ctx };
    if (txn->write) k.page_count = bt_wtx_page_count(txn->w);
    k.marks = calloc(k.page_count ? k.page_count : 1, 1);
    if (!k.marks) return STRATA_ENOMEM;
    uint64_t n;
    walk_tree(&k, "catalog", bt_cmp_bytes, NULL, txn->snap.cat_root, txn->snap.cat_ck, &n);
    int rc = check_tables(&k, txn);
    if (rc == STRATA_OK) rc = check_free(&k, txn);
    if (rc == STRATA_OK) {
        uint64_t lost = 0, first = 0;
        for (uint64_t pg = 1; pg < k.page_count; pg++)
            if (!k.marks[pg] && !lost++) first = pg;
        if (lost)
            problem(&k, "%llu pages neither used nor free (first: %llu)", (unsigned long long)lost,
                    (unsigned long long)first);
    }
    free(k.marks);
    if (rc == STRATA_ECORRUPT) k.errors++;
    else if (rc) return rc;
    return k.errors ? STRATA_ECORRUPT : STRATA_OK;
}

int strata_check(strata_txn *txn, void (*report)(void *ctx, const char *msg), void *ctx) {
    int rc = db_txn_check(txn, 0);
    if (rc) return rc;
    if (txn->write) return STRATA_EINVAL;    /* checks a committed snapshot */
    return db_check(txn, report, ctx);
}
