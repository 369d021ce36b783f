/* tests/fuzz/fuzz_ops.c - the input drives a sequence of operations on an
 * in-memory database (STRATA_INMEMORY) and on the sorted-array model of
 * tests/crash/kvmodel.h; every read must agree with the model.
 * Input: one opcode byte, then operands: key = 1 length byte (1..8) + bytes
 * (short keys collide often); value = 1 length byte (x 13: 0..3315, so
 * overflow values happen) + a seed byte. Missing bytes read as zero. */
#include <string.h>

#include "strata.h"
#include "kvmodel.h"
#include "fuzz_common.h"

typedef struct in { const uint8_t *p; size_t n, i; } in;

static uint8_t byte(in *s) { return s->i < s->n ? s->p[s->i++] : 0; }

static size_t key(in *s, uint8_t *k) {
    size_t len = 1 + byte(s) % 8;
    for (size_t i = 0; i < len; i++) k[i] = byte(s);
    return len;
}


static void check_entry(strata_slice k, strata_slice v, const kv_ent *e, size_t at) {
    FUZZ_FAIL_IF(kv_keycmp(k.data, k.len, e->key, e->klen) != 0, "key mismatch near byte %zu", at);
    FUZZ_FAIL_IF(!kv_val_eq(v.data, v.len, e->vlen, e->vseed), "value mismatch near byte %zu", at);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    if (size > 4096) return 0;
    in s = { data, size, 0 };
    strata_db *db;
    if (strata_open(NULL, STRATA_INMEMORY, &db)) return 0;
    kv_model work = { 0 }, committed = { 0 };
    strata_txn *w = NULL;
    strata_table *t = NULL;
    static uint8_t vbuf[3400];
    uint8_t k[8], k2[8];
    while (s.i < s.n) {
        uint8_t op = byte(&s);
        if (!w) {
            FUZZ_FAIL_IF(strata_begin_write(db, &w) != STRATA_OK, "begin");
            FUZZ_FAIL_IF(strata_table_open(w, "t", STRATA_KEY_BYTES, STRATA_CREATE, &t), "table");
            FUZZ_FAIL_IF(kv_copy(&work, &committed), "oom");
        }
        size_t kl, kl2, a, b;
        int rc, exact;
        strata_slice kk, vv;
        switch (op % 10) {
        case 0: case 1: {                                  /* put */
            kl = key(&s, k);
            uint32_t vl = (uint32_t)byte(&s) * 13;
            uint64_t vs = byte(&s) + 1;
            kv_fill(vbuf, vl, vs);
            rc = strata_put(t, (strata_slice){ k, kl }, (strata_slice){ vbuf, vl });
            FUZZ_FAIL_IF(rc != STRATA_OK, "put: %s", strata_strerror(rc));
            FUZZ_FAIL_IF(kv_put(&work, k, kl, vl, vs), "oom");
            break;
        }
        case 2:                                            /* del */
            kl = key(&s, k);
            rc = strata_del(t, (strata_slice){ k, kl });
            FUZZ_FAIL_IF(rc != (kv_del(&work, k, kl) ? STRATA_OK : STRATA_NOTFOUND), "del: %s",
                         strata_strerror(rc));
            break;
        case 3: {                                          /* get */
            kl = key(&s, k);
            const kv_ent *e = kv_find(&work, k, kl);
            rc = strata_get(t, (strata_slice){ k, kl }, &vv);
            FUZZ_FAIL_IF(rc != (e ? STRATA_OK : STRATA_NOTFOUND), "get: %s", strata_strerror(rc));
            if (e) check_entry((strata_slice){ k, kl }, vv, e, s.i);
            break;
        }
        case 4: {                                          /* seek + walk */
            kl = key(&s, k);
            int dir = byte(&s) & 1;
            strata_cursor *c;
            FUZZ_FAIL_IF(strata_cursor_open(t, &c), "cursor");
            size_t g = kv_lower(&work, k, kl, &exact);
            long idx;
            if (dir) { rc = strata_cursor_seek_le(c, (strata_slice){ k, kl }); idx = exact ? (long)g : (long)g - 1; }
            else { rc = strata_cursor_seek(c, (strata_slice){ k, kl }); idx = g < work.n ? (long)g : -1; }
            for (int st = 0; st < 16; st++) {
                FUZZ_FAIL_IF(rc != (idx >= 0 ? STRATA_OK : STRATA_NOTFOUND), "cursor: %s", strata_strerror(rc));
                if (idx < 0) break;
                FUZZ_FAIL_IF(strata_cursor_get(c, &kk, &vv), "cursor_get");
                check_entry(kk, vv, &work.e[idx], s.i);
                if (dir) { rc = strata_cursor_prev(c); idx--; }
                else { rc = strata_cursor_next(c); idx = (size_t)idx + 1 < work.n ? idx + 1 : -1; }
            }
            strata_cursor_close(c);
            break;
        }
        case 5: {                                          /* pop first / last */
            int last = byte(&s) & 1;
            rc = last ? strata_pop_last(t, &kk, &vv) : strata_pop_first(t, &kk, &vv);
            FUZZ_FAIL_IF(rc != (work.n ? STRATA_OK : STRATA_NOTFOUND), "pop: %s", strata_strerror(rc));
            if (work.n) {
                size_t at = last ? work.n - 1 : 0;
                check_entry(kk, vv, &work.e[at], s.i);
                kv_remove_at(&work, at);
            }
            break;
        }
        case 6: {                                          /* del_range */
            kl = key(&s, k);
            kl2 = key(&s, k2);
            unsigned fl = byte(&s) & 3;
            uint64_t nd;
            kv_range(&work, k, kl, fl & STRATA_LO_EXCL, k2, kl2, (fl & STRATA_HI_INCL) != 0, &a, &b);
            rc = strata_del_range(t, &(strata_slice){ k, kl }, &(strata_slice){ k2, kl2 }, fl, &nd);
            FUZZ_FAIL_IF(rc != STRATA_OK || nd != b - a, "del_range: %s, %llu vs %zu",
                         strata_strerror(rc), (unsigned long long)nd, b - a);
            for (size_t x = a; x < b; x++) kv_remove_at(&work, a);
            break;
        }
        case 7: case 8:                                    /* commit */
            FUZZ_FAIL_IF(strata_txn_set_durability(w, op & 1 ? STRATA_DURABILITY_NONE
                                                             : STRATA_DURABILITY_IMMEDIATE), "dur");
            rc = strata_commit(w);
            FUZZ_FAIL_IF(rc != STRATA_OK, "commit: %s", strata_strerror(rc));
            w = NULL;
            FUZZ_FAIL_IF(kv_copy(&committed, &work), "oom");
            break;
        default:                                           /* abort */
            strata_abort(w);
            w = NULL;
            break;
        }
    }
    strata_abort(w);
    /* the committed state, read back in full */
    strata_txn *r;
    FUZZ_FAIL_IF(strata_begin_read(db, &r), "begin_read");
    {
        int rc = strata_table_open(r, "t", STRATA_KEY_BYTES, 0, &t);
        FUZZ_FAIL_IF(rc != STRATA_OK && !(rc == STRATA_NOTFOUND && committed.n == 0), "reopen table");
        if (rc == STRATA_OK) {
            strata_cursor *c;
            FUZZ_FAIL_IF(strata_cursor_open(t, &c), "cursor");
            size_t i = 0;
            for (rc = strata_cursor_first(c); rc == STRATA_OK; rc = strata_cursor_next(c), i++) {
                strata_slice kk, vv;
                FUZZ_FAIL_IF(i >= committed.n || strata_cursor_get(c, &kk, &vv), "extra entry");
                check_entry(kk, vv, &committed.e[i], s.n);
            }
            FUZZ_FAIL_IF(rc != STRATA_NOTFOUND || i != committed.n, "final scan");
        }
        FUZZ_FAIL_IF(strata_check(r, NULL, NULL) != STRATA_OK, "check");
    }
    strata_abort(r);
    strata_close(db);
    kv_free(&work);
    kv_free(&committed);
    return 0;
}
