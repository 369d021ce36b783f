/* db/backup.c - online backup and salvage.
 * Backup copies the pages of one read snapshot (pinned by its reader, so
 * writers cannot reuse them) into a new file with a fresh header whose slot 0
 * is that snapshot and whose god byte says "closed cleanly"; free pages are
 * copied too (their content is irrelevant: the free tree lists them).
 * Salvage walks every tree of the newest readable commit, tolerating damage:
 * a subtree whose page fails its checksum or structure check is counted lost
 * and skipped; everything else is re-inserted into a new database of the same
 * page size (so every key fits); a failed insert fails the salvage. A page
 * reached a second time is damage too (every page has one parent): counted
 * lost, not copied again, so shared subtrees cannot make the walk exponential.
 * Invariants: (1) neither touches the source file; (2) the destination is
 * created exclusively (never overwrites), written, fsync'd, and its directory
 * fsync'd (a backup that returned OK survives a power loss under its name). */
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "db_int.h"

static int write_all(int fd, const void *buf, size_t len, off_t off) {
    const uint8_t *p = buf;
    while (len > 0) {
        ssize_t w = pwrite(fd, p, len, off);
        if (w < 0) {
            if (errno == EINTR) continue;
            return errno == ENOSPC ? STRATA_ENOSPC : STRATA_EIO;
        }
        p += w; len -= (size_t)w; off += w;
    }
    return STRATA_OK;
}

int strata_backup(strata_db *db, const char *path) {
    if (!db || db->magic != DB_MAGIC || !path) return STRATA_EINVAL;
    strata_txn *r;
    int rc = strata_begin_read(db, &r);
    if (rc) return rc;
    int fd = open(path, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0644);
    if (fd < 0) { strata_abort(r); return errno == EEXIST ? STRATA_EEXIST : STRATA_EIO; }
    pager *p = db->p;
    uint8_t *hdr = calloc(1, p->ps);
    if (!hdr) { rc = STRATA_ENOMEM; goto out; }
    memcpy(hdr, p->map, HDR_OFF_SLOT0);                /* magic, version, page size */
    hdr[HDR_OFF_GOD] = 0;                              /* slot 0, closed cleanly */
    pager_slot_encode(hdr + HDR_OFF_SLOT0, &r->snap, p->ps);
    if ((rc = write_all(fd, hdr, p->ps, 0))) goto out;
    const size_t chunk = 256;                          /* pages per write */
    for (uint64_t pg = 1; pg < r->snap.page_count && rc == STRATA_OK; pg += chunk) {
        size_t n = r->snap.page_count - pg < chunk ? (size_t)(r->snap.page_count - pg) : chunk;
        rc = write_all(fd, pager_ptr(p, pg), n << p->ps_shift, (off_t)(pg << p->ps_shift));
    }
    if (rc == STRATA_OK && fdatasync(fd) != 0) rc = STRATA_EIO;
out:
    free(hdr);
    if (close(fd) != 0 && rc == STRATA_OK) rc = STRATA_EIO;
    if (rc == STRATA_OK) rc = io_sync_dir_of(path);    /* the new name, too */
    if (rc) unlink(path);
    strata_abort(r);
    return rc;
}

/* ---- salvage ---- */

typedef struct salv {
    bt_ctx               cx;
    strata_salvage_stats st;
    void               (*report)(void *, const char *);
    void                *rctx;
    strata_table        *out;
    uint8_t             *seen;       /* one bit per page of the snapshot */
} salv;

static void say(salv *s, const char *fmt, const char *name, uint64_t pg) {
    if (!s->report) return;
    char msg[400];
    snprintf(msg, sizeof msg, fmt, name, (unsigned long long)pg);
    s->report(s->rctx, msg);
}

/* Copy the readable entries under page pg into s->out (raw tree keys).
 * Damage in the source is counted; a failed insert into the copy is returned. */
static int copy_tree(salv *s, const char *name, pgno_t pg, ck128 ck, int depth) {
    const uint8_t *page;
    int again = pg < s->cx.page_count && (s->seen[pg >> 3] & (1u << (pg & 7)));
    if (depth >= BT_MAX_DEPTH || again || bt_page(&s->cx, pg, &ck, &page) != STRATA_OK) {
        s->st.lost_pages++;
        say(s, "%s: page %llu unreadable, its subtree is lost", name, pg);
        return STRATA_OK;
    }
    s->seen[pg >> 3] |= (uint8_t)(1u << (pg & 7));
    unsigned n = pg_n(page);
    for (unsigned i = 0; i < n; i++) {
        const uint8_t *c = pg_cell(page, i);
        int rc;
        if (pg_type(page) == PT_BRANCH) {
            if ((rc = copy_tree(s, name, bc_child(c), bc_ck(c), depth + 1))) return rc;
            continue;
        }
        bt_val v;
        if (bt_cell_value(&s->cx, c, &v) != STRATA_OK) {
            s->st.lost_pages++;
            say(s, "%s: a value in page %llu is unreadable", name, pg);
            continue;
        }
        strata_table *t = s->out;
        db_table_touched(t);
        if ((rc = bt_put(&t->txn->cx, &t->tree, lc_key(c), lc_klen(c), v.data, v.len, 0, NULL)))
            return rc;
        s->st.entries++;
    }
    return STRATA_OK;
}

int strata_salvage(const char *src, const char *dst, strata_salvage_stats *stats,
                   void (*report)(void *ctx, const char *msg), void *ctx) {
    if (!src || !dst) return STRATA_EINVAL;
    if (access(dst, F_OK) == 0) return STRATA_EEXIST;
    strata_db *in, *out;
    strata_options o = { .verify = STRATA_VERIFY_FULL };
    int rc = strata_open_ex(src, STRATA_RDONLY, &o, &in);
    if (rc) return rc;
    strata_options oo = { .page_size = in->p->ps };     /* every source key fits */
    if ((rc = strata_open_ex(dst, STRATA_CREATE, &oo, &out))) { strata_close(in); return rc; }
    strata_txn *r = NULL, *w = NULL;
    salv s = { .report = report, .rctx = ctx };
    if ((rc = strata_begin_read(in, &r)) || (rc = strata_begin_write(out, &w))) goto out;
    s.cx = r->cx;
    rc = STRATA_ENOMEM;
    if (!(s.seen = calloc(r->snap.page_count / 8 + 1, 1))) goto out;
    rc = STRATA_OK;
    bt_cursor c;
    bt_cursor_init(&c, &r->cx, &r->catalog);
    char name[CAT_NAME_MAX + 1];
    int crc;
    for (crc = bt_cursor_first(&c); crc == STRATA_OK; crc = bt_cursor_next(&c)) {
        bt_val k, v;
        cat_desc d;
        if (bt_cursor_get(&c, &k, &v) || k.len == 0 || k.len > CAT_NAME_MAX || cat_desc_decode(v.data, v.len, &d)) {
            s.st.lost_tables++;
            continue;
        }
        memcpy(name, k.data, k.len);
        name[k.len] = 0;
        s.st.tables++;
        /* recreate with the same kind; custom comparators order by bytes here */
        strata_table_spec spec;
        unsigned fl = STRATA_CREATE | db_desc_spec(&d, &spec);
        if (d.cmp_len) (void)strata_register_comparator(out, d.cmp_name, bt_cmp_bytes, NULL);
        if ((rc = db_table_open(w, name, &spec, fl, 1, &s.out))) goto out;
        if (d.root && (rc = copy_tree(&s, name, d.root, d.root_ck, 0))) goto out;
    }
    if (crc != STRATA_NOTFOUND) {
        s.st.lost_pages++;
        say(&s, "%s: catalog unreadable from page %llu on; later tables are lost", "catalog", r->catalog.root);
    }
    rc = strata_commit(w);
    w = NULL;
out:
    strata_abort(w);
    strata_abort(r);
    strata_close(out);
    strata_close(in);
    free(s.seen);
    if (rc) unlink(dst);                               /* created above: no half copy */
    if (rc == STRATA_OK && stats) *stats = s.st;
    return rc;
}
