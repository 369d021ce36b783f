/* tests/blob/test_review.c - adversarial tests of the blob store: seeded
 * random sequences (put, streaming writes in odd pieces, delete, writer
 * abort, lost writers and gc, savepoint rollback, txn abort, reopen) checked
 * against a model that recomputes the distinct chunks itself; boundary sizes;
 * namespaces sharing chunks; lineage corner cases; embeddings of mixed
 * dimensions; many tags; misuse (read txns, writers across a savepoint
 * rollback, readers across writes and rollbacks); damaged rows and damaged
 * file bytes (STRATA_ECORRUPT, never a crash). Seeds are fixed and printed. */
#include <criterion/criterion.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "blob_int.h"   /* blob_chunker_*: the model cuts content itself */
#include "bt_util.h"

/* ---- model of the store ---- */

enum { MAXB = 512, N_OPTS = 5, POOL = 4 };

/* Small mode: contents up to 20000 bytes, chunk options 0..2. Big mode:
 * contents up to 3 MiB with the default sizes (16/64/256 KiB) and fixed
 * 64 KiB chunks (options 3..4), pieces large enough for the helper thread. */
static int g_big;
static size_t g_pool_len = 20000;

static const strata_blob_opts g_opts[N_OPTS] = {
    { .min_chunk = 64, .avg_chunk = 256, .max_chunk = 1024 },
    { .chunking = STRATA_BLOB_FIXED, .avg_chunk = 100 },
    { .ns = "other", .min_chunk = 128, .avg_chunk = 512, .max_chunk = 2048 },
    { .content_type = "application/octet-stream" },
    { .ns = "big", .chunking = STRATA_BLOB_FIXED, .avg_chunk = 65536 },
};

typedef struct mblob {
    uint64_t id;
    uint8_t *data;
    size_t   len, emitted;   /* emitted < len only for a lost (pending) writer */
    int      opt;
} mblob;

typedef struct mstate { uint8_t live[MAXB], pend[MAXB]; size_t n; } mstate;

typedef struct model {
    mblob  b[MAXB];
    mstate cur, done, sp;
    int    have_sp;
} model;

static uint64_t rnd(uint64_t *s) {
    *s ^= *s << 13;
    *s ^= *s >> 7;
    *s ^= *s << 17;
    return *s;
}

static int cmp_sha(const void *a, const void *b) { return memcmp(a, b, 36); }

/* Distinct chunks (count and bytes) of every live and pending blob, cut
 * here with the chunker and hashed with OpenSSL. */
static void model_chunks(const model *m, const mstate *s, uint64_t *n_chunks, uint64_t *bytes) {
    size_t cap = 4096, n = 0;
    uint8_t *v = malloc(cap * 36);
    cr_assert_not_null(v);
    for (size_t i = 0; i < s->n; i++) {
        if (!s->live[i] && !s->pend[i]) continue;
        const mblob *b = &m->b[i];
        blob_chunker c;
        cr_assert_eq(blob_chunker_init(&c, &g_opts[b->opt]), STRATA_OK);
        size_t end = s->live[i] ? b->len : b->emitted;
        for (size_t off = 0; off < end;) {
            size_t cut = blob_chunker_cut(&c, b->data + off, end - off);
            if (n == cap) { cap *= 2; v = realloc(v, cap * 36); cr_assert_not_null(v); }
            sha256_of(b->data + off, cut, v + n * 36);
            le32_put(v + n * 36 + 32, (uint32_t)cut);
            n++;
            off += cut;
        }
    }
    qsort(v, n, 36, cmp_sha);
    *n_chunks = *bytes = 0;
    for (size_t i = 0; i < n; i++) {
        if (i && !memcmp(v + i * 36, v + (i - 1) * 36, 36)) continue;
        (*n_chunks)++;
        *bytes += le32_get(v + i * 36 + 32);
    }
    free(v);
}

static void check_report(void *ctx, const char *msg) {
    fprintf(stderr, "seed %llu: check: %s\n", (unsigned long long)*(uint64_t *)ctx, msg);
}

/* Everything the store says against the model, in txn (read or write). */
static void model_check(strata_txn *txn, const model *m, const mstate *s, uint64_t seed) {
    strata_blob_stats st;
    uint64_t n_blobs = 0, logical = 0, n_pend = 0, n_chunks, bytes;
    cr_assert_eq(strata_blob_stats_get(txn, &st), STRATA_OK);
    for (size_t i = 0; i < s->n; i++) {
        const mblob *b = &m->b[i];
        if (s->pend[i]) n_pend++;
        if (!s->live[i]) {
            strata_blob_info info;
            cr_assert_eq(strata_blob_info_get(txn, b->id, &info), STRATA_NOTFOUND, "seed %llu id %llu",
                         (unsigned long long)seed, (unsigned long long)b->id);
            continue;
        }
        n_blobs++;
        logical += b->len;
        strata_blob_info info;
        uint8_t sha[32];
        cr_assert_eq(strata_blob_info_get(txn, b->id, &info), STRATA_OK, "seed %llu", (unsigned long long)seed);
        cr_assert_eq(info.size, b->len, "seed %llu id %llu", (unsigned long long)seed, (unsigned long long)b->id);
        sha256_of(b->data, b->len, sha);
        cr_assert_arr_eq(info.sha256, sha, 32);
        size_t len;
        uint8_t *back = read_whole(txn, b->id, 1 + (b->id * 37) % 1500, &len);
        cr_assert(len == b->len && memcmp(back, b->data, len) == 0, "seed %llu id %llu content",
                  (unsigned long long)seed, (unsigned long long)b->id);
        free(back);
    }
    model_chunks(m, s, &n_chunks, &bytes);
    cr_assert_eq(st.n_blobs, n_blobs, "seed %llu", (unsigned long long)seed);
    cr_assert_eq(st.logical_bytes, logical, "seed %llu", (unsigned long long)seed);
    cr_assert_eq(st.n_pending, n_pend, "seed %llu", (unsigned long long)seed);
    cr_assert_eq(st.n_chunks, n_chunks, "seed %llu: %llu chunks, model %llu", (unsigned long long)seed,
                 (unsigned long long)st.n_chunks, (unsigned long long)n_chunks);
    cr_assert_eq(st.stored_bytes, bytes, "seed %llu", (unsigned long long)seed);
    cr_assert_eq(strata_blob_check(txn, 1, check_report, &seed), STRATA_OK, "seed %llu", (unsigned long long)seed);
}

/* Content for a new blob: a piece of a pool buffer, often at a boundary
 * length, sometimes with one byte changed. Owned by the model slot. */
static uint8_t *make_content(uint8_t *pool[POOL], uint64_t *s, size_t *len) {
    static const size_t sizes[] = { 0, 1, 63, 64, 65, 99, 100, 101, 255, 256, 257, 1023, 1024, 1025,
                                    2047, 2048, 2049, 4000 };
    static const size_t big[] = { 0, 1, 16383, 16384, 16385, 65535, 65536, 65537, 262143, 262144,
                                  262145, 524288, 1u << 20, 3u << 20 };
    size_t n = rnd(s) % 3 ? (g_big ? big[rnd(s) % (sizeof big / sizeof *big)]
                                   : sizes[rnd(s) % (sizeof sizes / sizeof *sizes)])
                          : (size_t)(rnd(s) % g_pool_len);
    size_t step = g_big ? 65536 : 1000;
    size_t off = rnd(s) % 2 ? (size_t)(rnd(s) % 4) * step % (g_pool_len - n + 1)   /* repeats: dedup */
                            : (size_t)(rnd(s) % (g_pool_len - n + 1));
    uint8_t *p = malloc(n ? n : 1);
    cr_assert_not_null(p);
    memcpy(p, pool[rnd(s) % POOL] + off, n);
    if (n && rnd(s) % 4 == 0) p[rnd(s) % n] ^= 0x5a;
    *len = n;
    return p;
}

static void stream(strata_blob_writer *wr, const uint8_t *p, size_t n, uint64_t *s) {
    for (size_t off = 0; off < n;) {
        size_t k = 1 + (size_t)(rnd(s) % (rnd(s) % 2 ? 7 : g_big ? 700000 : 3000));
        if (k > n - off) k = n - off;
        cr_assert_eq(strata_blob_write(wr, p + off, k), STRATA_OK);
        off += k;
    }
}

static void run_random(uint64_t seed, int n_txns) {
    tdb t;
    model *m = calloc(1, sizeof *m);
    uint8_t *pool[POOL];
    uint64_t s = seed;
    cr_assert_not_null(m);
    g_pool_len = g_big ? 3u << 20 : 20000;
    for (int i = 0; i < POOL; i++) pool[i] = random_buf(g_pool_len, seed * 10 + (uint64_t)i);
    tdb_open(&t);
    for (int tx = 0; tx < n_txns; tx++) {
        strata_txn *w = tw(&t);
        strata_savepoint *sp = NULL;
        strata_blob_writer *lost = NULL;
        m->cur = m->done;
        m->have_sp = 0;
        if (rnd(&s) % 3 == 0) {   /* collect the lost writers of earlier txns */
            uint64_t n_rm = 0, want = 0;
            for (size_t i = 0; i < m->cur.n; i++) want += m->cur.pend[i];
            cr_assert_eq(strata_blob_gc(w, &n_rm), STRATA_OK);
            cr_assert_eq(n_rm, want, "seed %llu", (unsigned long long)seed);
            memset(m->cur.pend, 0, sizeof m->cur.pend);
        }
        int n_ops = 1 + (int)(rnd(&s) % 12);
        for (int op = 0; op < n_ops && m->cur.n < MAXB - 2; op++) {
            int kind = (int)(rnd(&s) % 13);
            size_t slot = m->cur.n;
            mblob *b = &m->b[slot];
            if (kind <= 2 || kind == 3 || kind == 4) {   /* put, stream, stream+abort */
                free(b->data);
                b->data = make_content(pool, &s, &b->len);
                b->opt = g_big ? 3 + (int)(rnd(&s) % 2) : (int)(rnd(&s) % 3);
                b->emitted = b->len;
                if (kind <= 2) {
                    cr_assert_eq(strata_blob_put(w, &g_opts[b->opt], b->data, b->len, &b->id), STRATA_OK);
                } else {
                    strata_blob_writer *wr;
                    cr_assert_eq(strata_blob_writer_begin(w, &g_opts[b->opt], &wr), STRATA_OK);
                    stream(wr, b->data, b->len, &s);
                    if (kind == 4) { strata_blob_writer_abort(wr); continue; }
                    cr_assert_eq(strata_blob_writer_finish(wr, &b->id), STRATA_OK);
                }
                m->cur.live[slot] = 1;
                m->cur.pend[slot] = 0;
                m->cur.n++;
            } else if (kind <= 6) {   /* delete a live blob */
                if (!m->cur.n) continue;
                size_t i = (size_t)(rnd(&s) % m->cur.n);
                if (!m->cur.live[i]) continue;
                cr_assert_eq(strata_blob_delete(w, m->b[i].id), STRATA_OK);
                m->cur.live[i] = 0;
                cr_assert_eq(strata_blob_delete(w, m->b[i].id), STRATA_NOTFOUND);
            } else if (kind == 7) {   /* savepoint: take one, or roll back to it */
                if (lost) continue;   /* writer_across_savepoint_rollback covers that */
                if (!sp) {
                    cr_assert_eq(strata_savepoint_create(w, &sp), STRATA_OK);
                    m->sp = m->cur;
                } else {
                    cr_assert_eq(strata_savepoint_rollback(w, sp), STRATA_OK);
                    m->cur = m->sp;
                }
            } else if (kind == 8) {   /* check inside the write txn */
                model_check(w, m, &m->cur, seed);
            } else if (kind >= 10) {   /* a tag, an edge or an embedding on live blobs */
                if (!m->cur.n) continue;
                size_t i = (size_t)(rnd(&s) % m->cur.n), j = (size_t)(rnd(&s) % m->cur.n);
                if (!m->cur.live[i] || !m->cur.live[j]) continue;
                char tag[8];
                float v[3] = { (float)i, (float)j, 1 };
                snprintf(tag, sizeof tag, "t%d", (int)(rnd(&s) % 5));
                if (kind == 10) cr_assert_eq(strata_blob_tag_add(w, m->b[i].id, tag), STRATA_OK);
                else if (kind == 12) cr_assert_eq(strata_blob_embed_set(w, m->b[i].id, v, 2 + (i & 1)), STRATA_OK);
                else cr_assert_eq(strata_blob_link(w, m->b[i].id, m->b[j].id,
                                                   (strata_blob_rel)(1 + rnd(&s) % 5), tag),
                                  i == j ? STRATA_EINVAL : STRATA_OK);
            } else if (!lost && !sp) {   /* a writer left open at commit: fixed chunks, whole ones cut */
                free(b->data);
                b->opt = 1;
                b->len = 100 * (1 + (size_t)(rnd(&s) % 20)) + (size_t)(rnd(&s) % 100);
                b->emitted = b->len / 100 * 100;
                b->data = malloc(b->len);
                memcpy(b->data, pool[0] + rnd(&s) % (g_pool_len - b->len), b->len);
                cr_assert_eq(strata_blob_writer_begin(w, &g_opts[1], &lost), STRATA_OK);
                stream(lost, b->data, b->len, &s);
                b->id = 0;
                m->cur.live[slot] = 0;
                m->cur.pend[slot] = 1;
                m->cur.n++;
            }
        }
        if (lost && rnd(&s) % 2) {   /* or abort it after all */
            strata_blob_writer_abort(lost);
            lost = NULL;
            for (size_t i = 0; i < m->cur.n; i++)
                if (m->cur.pend[i] && !m->done.pend[i]) m->cur.pend[i] = 0;
        }
        if (rnd(&s) % 5 == 0 && !lost) {
            strata_abort(w);
        } else {
            tcommit(w);
            m->done = m->cur;
        }
        strata_blob_writer_free(lost);
        if (rnd(&s) % 4 == 0) tdb_reopen(&t);
        strata_txn *r = tr(&t);
        model_check(r, m, &m->done, seed);
        strata_abort(r);
    }
    /* delete everything: the store is empty again, only the counters remain */
    strata_txn *w = tw(&t);
    for (size_t i = 0; i < m->done.n; i++)
        if (m->done.live[i]) cr_assert_eq(strata_blob_delete(w, m->b[i].id), STRATA_OK);
    cr_assert_eq(strata_blob_gc(w, NULL), STRATA_OK);
    tcommit(w);
    strata_txn *r = tr(&t);
    strata_blob_stats st;
    cr_assert_eq(strata_blob_stats_get(r, &st), STRATA_OK);
    cr_assert_eq(st.n_blobs + st.n_chunks + st.stored_bytes + st.logical_bytes + st.n_pending, 0,
                 "seed %llu", (unsigned long long)seed);
    /* and no row of any blob table is left behind */
    for (int i = 0; i < BT_COUNT; i++) {
        strata_table *tb;
        uint64_t n = 0;
        int rc = strata_table_open(r, blob_table_names[i], blob_table_keys[i], 0, &tb);
        if (rc == STRATA_NOTFOUND) continue;
        cr_assert_eq(rc, STRATA_OK);
        cr_assert_eq(strata_len(tb, &n), STRATA_OK);
        cr_assert_eq(n, i == BT_STATS ? 1u : 0u, "seed %llu: %llu rows in %s", (unsigned long long)seed,
                     (unsigned long long)n, blob_table_names[i]);
    }
    strata_abort(r);
    assert_consistent(&t);
    for (size_t i = 0; i < MAXB; i++) free(m->b[i].data);
    for (int i = 0; i < POOL; i++) free(pool[i]);
    free(m);
    tdb_close(&t);
}

Test(blob_review, random_sequences_keep_counts_exact, .timeout = 280) {
    for (uint64_t seed = 1; seed <= 10; seed++) run_random(seed, 40);
}

Test(blob_review, random_sequences_large_blobs, .timeout = 280) {
    g_big = 1;
    for (uint64_t seed = 101; seed <= 103; seed++) run_random(seed, 12);
}

/* ---- boundaries ---- */

Test(blob_review, sizes_at_chunk_boundaries) {
    tdb t;
    tdb_open(&t);
    uint8_t *src = random_buf(5000, 7), buf[8];
    static const size_t sizes[] = { 0, 1, 63, 64, 65, 99, 100, 101, 199, 200, 201, 255, 256, 257,
                                    1023, 1024, 1025, 2048, 2049 };
    for (int o = 0; o < 2; o++) {
        const strata_blob_opts *opt = &g_opts[o];   /* CDC 64/256/1024, fixed 100 */
        for (size_t i = 0; i < sizeof sizes / sizeof *sizes; i++) {
            size_t n = sizes[i];
            uint64_t id;
            strata_txn *w = tw(&t);
            cr_assert_eq(strata_blob_put(w, opt, src, n, &id), STRATA_OK);
            tcommit(w);
            strata_txn *r = tr(&t);
            strata_blob_info info;
            strata_blob_reader *rd;
            uint64_t pos, size;
            size_t got;
            cr_assert_eq(strata_blob_info_get(r, id, &info), STRATA_OK);
            cr_assert_eq(info.size, n);
            if (o == 1) cr_assert_eq(info.n_chunks, (n + 99) / 100, "n %zu", n);
            cr_assert_eq(strata_blob_verify(r, id), STRATA_OK);
            cr_assert_eq(strata_blob_reader_open(r, id, STRATA_BLOB_VERIFY, &rd), STRATA_OK);
            cr_assert_eq(strata_blob_seek(rd, n), STRATA_OK);                /* seek to the end */
            cr_assert_eq(strata_blob_read(rd, buf, sizeof buf, &got), STRATA_OK);
            cr_assert_eq(got, 0);
            cr_assert_eq(strata_blob_tell(rd, &pos, &size), STRATA_OK);
            cr_assert(pos == n && size == n);
            cr_assert_eq(strata_blob_seek(rd, n + 1), STRATA_EINVAL);        /* past the end */
            cr_assert_eq(strata_blob_tell(rd, &pos, NULL), STRATA_OK);
            cr_assert_eq(pos, n);                                            /* unchanged */
            if (n) {                                                         /* the last byte */
                cr_assert_eq(strata_blob_seek(rd, n - 1), STRATA_OK);
                cr_assert_eq(strata_blob_read(rd, buf, sizeof buf, &got), STRATA_OK);
                cr_assert(got == 1 && buf[0] == src[n - 1]);
            }
            strata_blob_reader_close(rd);
            /* every range that spans a chunk boundary, both ways of reading */
            for (size_t off = 0; off + 2 <= n && off < 1100; off += 97) {
                uint8_t two[2];
                cr_assert_eq(strata_blob_read_at(r, id, off, two, 2, STRATA_BLOB_VERIFY), STRATA_OK);
                cr_assert(two[0] == src[off] && two[1] == src[off + 1]);
            }
            cr_assert_eq(strata_blob_read_at(r, id, n, buf, 0, 0), STRATA_OK);
            cr_assert_eq(strata_blob_read_at(r, id, n, buf, 1, 0), STRATA_EINVAL);
            strata_abort(r);
        }
    }
    assert_consistent(&t);
    free(src);
    tdb_close(&t);
}

/* ---- namespaces ---- */

static int count_edge(void *ctx, const strata_blob_edge *e) {
    (void)e;
    (*(int *)ctx)++;
    return 0;
}


static strata_blob_stats stats_of(tdb *t) {
    strata_blob_stats s;
    strata_txn *r = tr(t);
    cr_assert_eq(strata_blob_stats_get(r, &s), STRATA_OK);
    strata_abort(r);
    return s;
}

Test(blob_review, namespace_delete_keeps_shared_chunks) {
    tdb t;
    tdb_open(&t);
    size_t n = 50000;
    uint8_t *src = random_buf(n, 9);
    strata_blob_opts a = g_opts[0], b = g_opts[0];
    a.ns = "alpha";
    b.ns = "beta";
    uint64_t ida[3], idb;
    strata_txn *w = tw(&t);
    for (int i = 0; i < 3; i++) cr_assert_eq(strata_blob_put(w, &a, src, n - (size_t)i * 1000, &ida[i]), STRATA_OK);
    cr_assert_eq(strata_blob_put(w, &b, src, n, &idb), STRATA_OK);
    cr_assert_eq(strata_blob_link(w, idb, ida[0], STRATA_BLOB_DERIVED_FROM, "copy"), STRATA_OK);
    cr_assert_eq(strata_blob_tag_add(w, ida[1], "x"), STRATA_OK);
    tcommit(w);
    strata_blob_stats before = stats_of(&t);
    w = tw(&t);
    uint64_t nd = 0;
    cr_assert_eq(strata_blob_delete_ns(w, "alpha", &nd), STRATA_OK);
    cr_assert_eq(nd, 3);
    cr_assert_eq(strata_blob_delete_ns(w, "alpha", &nd), STRATA_OK);
    cr_assert_eq(nd, 0);
    cr_assert_eq(strata_blob_delete_ns(w, "nothing", &nd), STRATA_OK);
    cr_assert_eq(nd, 0);
    tcommit(w);
    strata_blob_stats after = stats_of(&t);
    cr_assert_eq(after.n_blobs, 1);
    cr_assert_eq(after.logical_bytes, n);
    cr_assert_lt(after.n_chunks, before.n_chunks + 1);
    strata_txn *r = tr(&t);
    size_t len;
    uint8_t *back = read_whole(r, idb, 4096, &len);
    cr_assert(len == n && memcmp(back, src, n) == 0);
    free(back);
    id_list l = { .n = 0 };
    cr_assert_eq(strata_blob_list_ns(r, "beta", id_collect, &l), STRATA_OK);
    cr_assert(l.n == 1 && l.v[0] == idb);
    l.n = 0;
    int n_e = 0;
    cr_assert_eq(strata_blob_edges(r, idb, STRATA_BLOB_BOTH, 0, count_edge, &n_e), STRATA_OK);
    cr_assert_eq(n_e, 0);   /* the edge to a deleted blob went with it */
    cr_assert_eq(strata_blob_list_by_tag(r, "x", id_collect, &l), STRATA_OK);
    cr_assert_eq(l.n, 0);
    strata_abort(r);
    assert_consistent(&t);
    free(src);
    tdb_close(&t);
}

/* ---- lineage ---- */

typedef struct trav { uint64_t id[64]; uint32_t d[64]; size_t n; } trav;

static int trav_collect(void *ctx, uint64_t id, uint32_t depth) {
    trav *t = ctx;
    cr_assert_lt(t->n, 64);
    t->id[t->n] = id;
    t->d[t->n++] = depth;
    return 0;
}

Test(blob_review, lineage_corners) {
    tdb t;
    tdb_open(&t);
    uint64_t id[6], path[8];
    size_t np;
    strata_txn *w = tw(&t);
    for (int i = 0; i < 6; i++) cr_assert_eq(strata_blob_put(w, NULL, &i, sizeof i, &id[i]), STRATA_OK);
    /* a cycle 0 -> 1 -> 2 -> 0, a tail 2 -> 3, and 4 alone; 5 is deleted later */
    cr_assert_eq(strata_blob_link(w, id[0], id[1], STRATA_BLOB_DERIVED_FROM, NULL), STRATA_OK);
    cr_assert_eq(strata_blob_link(w, id[1], id[2], STRATA_BLOB_SUPPORTS, "s"), STRATA_OK);
    cr_assert_eq(strata_blob_link(w, id[2], id[0], STRATA_BLOB_SUPERSEDES, ""), STRATA_OK);
    cr_assert_eq(strata_blob_link(w, id[2], id[3], STRATA_BLOB_CONTRADICTS, NULL), STRATA_OK);
    cr_assert_eq(strata_blob_link(w, id[5], id[0], STRATA_BLOB_SIMILAR_TO, NULL), STRATA_OK);
    cr_assert_eq(strata_blob_link(w, id[0], id[0], STRATA_BLOB_SIMILAR_TO, NULL), STRATA_EINVAL);   /* self */
    cr_assert_eq(strata_blob_link(w, id[0], id[1], (strata_blob_rel)0, NULL), STRATA_EINVAL);
    cr_assert_eq(strata_blob_link(w, id[0], id[1], (strata_blob_rel)6, NULL), STRATA_EINVAL);
    cr_assert_eq(strata_blob_link(w, id[0], 999, STRATA_BLOB_SUPPORTS, NULL), STRATA_NOTFOUND);
    cr_assert_eq(strata_blob_link(w, 999, id[0], STRATA_BLOB_SUPPORTS, NULL), STRATA_NOTFOUND);
    cr_assert_eq(strata_blob_delete(w, id[5]), STRATA_OK);
    cr_assert_eq(strata_blob_link(w, id[5], id[0], STRATA_BLOB_SUPPORTS, NULL), STRATA_NOTFOUND);  /* deleted */
    tcommit(w);
    strata_txn *r = tr(&t);
    trav tv = { .n = 0 };
    cr_assert_eq(strata_blob_traverse(r, id[0], STRATA_BLOB_PARENTS, 0, 0, trav_collect, &tv), STRATA_EINVAL);
    cr_assert_eq(strata_blob_traverse(r, id[0], STRATA_BLOB_PARENTS, 0, 1000, trav_collect, &tv), STRATA_OK);
    cr_assert_eq(tv.n, 3);   /* 1, 2, 3: the cycle back to 0 does not report the start */
    cr_assert(tv.id[0] == id[1] && tv.d[0] == 1 && tv.id[1] == id[2] && tv.d[1] == 2 && tv.id[2] == id[3] &&
              tv.d[2] == 3);
    tv.n = 0;
    cr_assert_eq(strata_blob_traverse(r, id[0], STRATA_BLOB_CHILDREN, 0, 1, trav_collect, &tv), STRATA_OK);
    cr_assert(tv.n == 1 && tv.id[0] == id[2]);   /* 5's edge went with it */
    tv.n = 0;
    cr_assert_eq(strata_blob_traverse(r, id[3], STRATA_BLOB_BOTH, STRATA_BLOB_REL_MASK(STRATA_BLOB_CONTRADICTS),
                                      5, trav_collect, &tv), STRATA_OK);
    cr_assert(tv.n == 1 && tv.id[0] == id[2]);
    tv.n = 0;
    cr_assert_eq(strata_blob_traverse(r, id[4], STRATA_BLOB_BOTH, 0, 5, trav_collect, &tv), STRATA_OK);
    cr_assert_eq(tv.n, 0);
    cr_assert_eq(strata_blob_traverse(r, id[5], STRATA_BLOB_BOTH, 0, 5, trav_collect, &tv), STRATA_NOTFOUND);
    /* paths */
    cr_assert_eq(strata_blob_path(r, id[1], id[1], STRATA_BLOB_PARENTS, 0, 0, path, 8, &np), STRATA_OK);
    cr_assert(np == 1 && path[0] == id[1]);
    cr_assert_eq(strata_blob_path(r, id[1], id[0], STRATA_BLOB_PARENTS, 0, 0, path, 8, &np), STRATA_NOTFOUND);
    cr_assert_eq(strata_blob_path(r, id[1], id[0], STRATA_BLOB_PARENTS, 0, 1, path, 8, &np), STRATA_NOTFOUND);
    cr_assert_eq(strata_blob_path(r, id[1], id[0], STRATA_BLOB_PARENTS, 0, 2, path, 8, &np), STRATA_OK);
    cr_assert(np == 3 && path[0] == id[1] && path[1] == id[2] && path[2] == id[0]);
    cr_assert_eq(strata_blob_path(r, id[1], id[0], STRATA_BLOB_CHILDREN, 0, 7, path, 8, &np), STRATA_OK);
    cr_assert(np == 2 && path[0] == id[1] && path[1] == id[0]);
    cr_assert_eq(strata_blob_path(r, id[3], id[4], STRATA_BLOB_BOTH, 0, 7, path, 8, &np), STRATA_NOTFOUND);
    cr_assert_eq(strata_blob_path(r, id[3], id[5], STRATA_BLOB_BOTH, 0, 7, path, 8, &np), STRATA_NOTFOUND);
    cr_assert_eq(strata_blob_path(r, id[3], id[0], STRATA_BLOB_BOTH, 0, 8, path, 8, &np), STRATA_EINVAL);
    cr_assert_eq(strata_blob_path(r, id[3], id[0], 0, 0, 2, path, 8, &np), STRATA_EINVAL);
    int n_e = 0;
    cr_assert_eq(strata_blob_edges(r, id[0], STRATA_BLOB_BOTH, 0, count_edge, &n_e), STRATA_OK);
    cr_assert_eq(n_e, 2);
    strata_abort(r);
    /* deleting a blob in a cycle leaves no dangling edge */
    w = tw(&t);
    cr_assert_eq(strata_blob_delete(w, id[2]), STRATA_OK);
    n_e = 0;
    cr_assert_eq(strata_blob_edges(w, id[0], STRATA_BLOB_BOTH, 0, count_edge, &n_e), STRATA_OK);
    cr_assert_eq(n_e, 1);
    n_e = 0;
    cr_assert_eq(strata_blob_edges(w, id[3], STRATA_BLOB_BOTH, 0, count_edge, &n_e), STRATA_OK);
    cr_assert_eq(n_e, 0);
    cr_assert_eq(strata_blob_unlink(w, id[1], id[2], STRATA_BLOB_SUPPORTS), STRATA_NOTFOUND);
    tcommit(w);
    assert_consistent(&t);
    tdb_close(&t);
}

/* ---- embeddings and tags ---- */

Test(blob_review, embeddings_of_mixed_dimensions) {
    tdb t;
    tdb_open(&t);
    uint64_t id[4];
    float v4[4] = { 1, 0, 0, 0 }, v8[8] = { 1, 0, 0, 0, 0, 0, 0, 0 }, out[8], nan4[4] = { 1, 0, 0, 0 };
    nan4[2] = __builtin_nanf("");
    strata_hit hits[4];
    size_t n, dim = 0;
    strata_txn *w = tw(&t);
    for (int i = 0; i < 4; i++) cr_assert_eq(strata_blob_put(w, NULL, &i, sizeof i, &id[i]), STRATA_OK);
    cr_assert_eq(strata_blob_embed_set(w, id[0], v4, 4), STRATA_OK);
    cr_assert_eq(strata_blob_embed_set(w, id[1], v8, 8), STRATA_OK);
    v4[1] = 1;
    cr_assert_eq(strata_blob_embed_set(w, id[2], v4, 4), STRATA_OK);
    cr_assert_eq(strata_blob_embed_set(w, id[3], nan4, 4), STRATA_EINVAL);
    cr_assert_eq(strata_blob_embed_set(w, id[3], v4, 0), STRATA_EINVAL);
    cr_assert_eq(strata_blob_embed_set(w, 999, v4, 4), STRATA_NOTFOUND);
    cr_assert_eq(strata_blob_embed_get(w, id[1], out, 4, &dim), STRATA_EINVAL);   /* cap too small */
    cr_assert_eq(dim, 8);
    cr_assert_eq(strata_blob_embed_get(w, id[3], out, 8, &dim), STRATA_NOTFOUND);
    cr_assert_eq(strata_blob_similar(w, STRATA_METRIC_L2, v4, 4, 4, hits, &n), STRATA_OK);
    cr_assert_eq(n, 2);   /* the 8-dimensional one is skipped */
    cr_assert(hits[0].id == id[2] && hits[1].id == id[0]);
    cr_assert_eq(strata_blob_similar(w, STRATA_METRIC_L2, v8, 8, 4, hits, &n), STRATA_OK);
    cr_assert(n == 1 && hits[0].id == id[1]);
    cr_assert_eq(strata_blob_similar(w, STRATA_METRIC_L2, v8, 5, 4, hits, &n), STRATA_OK);
    cr_assert_eq(n, 0);
    cr_assert_eq(strata_blob_similar(w, (strata_metric)9, v8, 8, 4, hits, &n), STRATA_EINVAL);
    cr_assert_eq(strata_blob_similar(w, STRATA_METRIC_L2, v8, 8, 0, hits, &n), STRATA_EINVAL);
    /* set replaces, also with another dimension; delete removes it */
    cr_assert_eq(strata_blob_embed_set(w, id[1], v4, 4), STRATA_OK);
    cr_assert_eq(strata_blob_embed_get(w, id[1], out, 8, &dim), STRATA_OK);
    cr_assert(dim == 4 && out[1] == 1);
    cr_assert_eq(strata_blob_delete(w, id[1]), STRATA_OK);
    cr_assert_eq(strata_blob_similar(w, STRATA_METRIC_L2, v4, 4, 4, hits, &n), STRATA_OK);
    cr_assert_eq(n, 2);
    cr_assert_eq(strata_blob_embed_del(w, id[0]), STRATA_OK);
    cr_assert_eq(strata_blob_embed_del(w, id[0]), STRATA_NOTFOUND);
    tcommit(w);
    assert_consistent(&t);
    tdb_close(&t);
}

typedef struct tag_walk { char last[256]; size_t n, last_len; int ordered; } tag_walk;

static int tag_visit(void *ctx, strata_slice tag) {
    tag_walk *tw_ = ctx;
    size_t m = tag.len < tw_->last_len ? tag.len : tw_->last_len;
    int c = memcmp(tw_->last, tag.data, m);
    if (tw_->n && (c > 0 || (c == 0 && tag.len <= tw_->last_len))) tw_->ordered = 0;
    memcpy(tw_->last, tag.data, tag.len);
    tw_->last_len = tag.len;
    tw_->n++;
    return 0;
}

static int count_id(void *ctx, uint64_t id) {
    (void)id;
    (*(size_t *)ctx)++;
    return 0;
}

Test(blob_review, many_tags) {
    tdb t;
    tdb_open(&t);
    uint64_t a, b;
    char tag[256];
    strata_txn *w = tw(&t);
    cr_assert_eq(strata_blob_put(w, NULL, "a", 1, &a), STRATA_OK);
    cr_assert_eq(strata_blob_put(w, NULL, "b", 1, &b), STRATA_OK);
    for (int i = 0; i < 600; i++) {
        size_t len = (size_t)(1 + i % 255), d = (size_t)snprintf(tag, sizeof tag, "%d", i);
        if (len < d) len = d;
        memset(tag + d, 'x', len - d);   /* "<i>xxx...", 1..255 bytes, all distinct */
        tag[len] = 0;
        cr_assert_eq(strata_blob_tag_add(w, a, tag), STRATA_OK);
        if (i % 3 == 0) cr_assert_eq(strata_blob_tag_add(w, b, tag), STRATA_OK);
    }
    memset(tag, 'z', 255);
    tag[255] = 0;
    cr_assert_eq(strata_blob_tag_add(w, a, tag), STRATA_OK);   /* the longest */
    char big[300];
    memset(big, 'q', 299);
    big[299] = 0;
    cr_assert_eq(strata_blob_tag_add(w, a, big), STRATA_EINVAL);
    cr_assert_eq(strata_blob_tag_add(w, a, ""), STRATA_EINVAL);
    cr_assert_eq(strata_blob_tag_add(w, a, tag), STRATA_OK);   /* again: still one row */
    tcommit(w);
    strata_txn *r = tr(&t);
    tag_walk tk = { .ordered = 1 };
    cr_assert_eq(strata_blob_tags_of(r, a, tag_visit, &tk), STRATA_OK);
    cr_assert_eq(tk.n, 601);
    cr_assert(tk.ordered);
    size_t n = 0;
    cr_assert_eq(strata_blob_list_by_tag(r, tag, count_id, &n), STRATA_OK);
    cr_assert_eq(n, 1);
    strata_abort(r);
    w = tw(&t);
    cr_assert_eq(strata_blob_delete(w, a), STRATA_OK);
    tcommit(w);
    r = tr(&t);
    tk = (tag_walk){ .ordered = 1 };
    cr_assert_eq(strata_blob_tags_of(r, b, tag_visit, &tk), STRATA_OK);
    cr_assert_eq(tk.n, 200);
    n = 0;
    cr_assert_eq(strata_blob_list_by_tag(r, tag, count_id, &n), STRATA_OK);
    cr_assert_eq(n, 0);
    strata_abort(r);
    assert_consistent(&t);
    tdb_close(&t);
}

/* ---- writers ---- */

Test(blob_review, two_writers_and_puts_interleaved) {
    tdb t;
    tdb_open(&t);
    size_t n = 30000;
    uint8_t *x = random_buf(n, 31), *y = random_buf(n, 32);
    memcpy(y + 10000, x + 10000, 10000);   /* shared middle */
    strata_blob_writer *wa, *wb, *wc;
    uint64_t ia, ib, ic;
    strata_txn *w = tw(&t);
    cr_assert_eq(strata_blob_writer_begin(w, &g_opts[0], &wa), STRATA_OK);
    cr_assert_eq(strata_blob_writer_begin(w, &g_opts[0], &wb), STRATA_OK);
    cr_assert_eq(strata_blob_writer_begin(w, &g_opts[0], &wc), STRATA_OK);   /* x again, aborted */
    for (size_t off = 0; off < n; off += 777) {
        size_t k = n - off < 777 ? n - off : 777;
        cr_assert_eq(strata_blob_write(wa, x + off, k), STRATA_OK);
        cr_assert_eq(strata_blob_write(wb, y + off, k), STRATA_OK);
        cr_assert_eq(strata_blob_write(wc, x + off, k), STRATA_OK);
        if (off == 777 * 10) cr_assert_eq(strata_blob_put(w, &g_opts[0], x, n, &ic), STRATA_OK);
    }
    strata_blob_stats s;
    cr_assert_eq(strata_blob_stats_get(w, &s), STRATA_OK);
    cr_assert_eq(s.n_pending, 3);
    strata_blob_writer_abort(wc);
    cr_assert_eq(strata_blob_stats_get(w, &s), STRATA_OK);
    cr_assert_eq(s.n_pending, 2);
    cr_assert_eq(strata_blob_check(w, 1, NULL, NULL), STRATA_OK);
    cr_assert_eq(strata_blob_writer_finish(wb, &ib), STRATA_OK);
    cr_assert_eq(strata_blob_writer_finish(wa, &ia), STRATA_OK);
    cr_assert(ia != ib && ib != ic && ia != ic);
    tcommit(w);
    strata_txn *r = tr(&t);
    size_t len;
    uint8_t *back = read_whole(r, ia, 1000, &len);
    cr_assert(len == n && !memcmp(back, x, n));
    free(back);
    back = read_whole(r, ib, 1000, &len);
    cr_assert(len == n && !memcmp(back, y, n));
    free(back);
    strata_abort(r);
    assert_consistent(&t);
    free(x);
    free(y);
    tdb_close(&t);
}

/* Writes in a read transaction fail without a crash and change nothing. */
Test(blob_review, read_txn_refuses_writes) {
    tdb t;
    tdb_open(&t);
    uint64_t a, b;
    float v[2] = { 1, 2 };
    strata_txn *w = tw(&t);
    cr_assert_eq(strata_blob_put(w, NULL, "a", 1, &a), STRATA_OK);
    cr_assert_eq(strata_blob_put(w, NULL, "b", 1, &b), STRATA_OK);
    cr_assert_eq(strata_blob_link(w, a, b, STRATA_BLOB_SUPPORTS, NULL), STRATA_OK);
    cr_assert_eq(strata_blob_tag_add(w, a, "t"), STRATA_OK);
    cr_assert_eq(strata_blob_embed_set(w, a, v, 2), STRATA_OK);
    tcommit(w);
    strata_txn *r = tr(&t);
    strata_blob_writer *wr = NULL;
    uint64_t n;
    cr_assert_eq(strata_blob_writer_begin(r, NULL, &wr), STRATA_EREADONLY);
    cr_assert_null(wr);
    cr_assert_eq(strata_blob_put(r, NULL, NULL, 0, &n), STRATA_EREADONLY);
    cr_assert_eq(strata_blob_link(r, b, a, STRATA_BLOB_SUPPORTS, NULL), STRATA_EREADONLY);
    cr_assert_eq(strata_blob_unlink(r, a, b, STRATA_BLOB_SUPPORTS), STRATA_EREADONLY);
    cr_assert_eq(strata_blob_tag_remove(r, a, "t"), STRATA_EREADONLY);
    cr_assert_eq(strata_blob_embed_set(r, a, v, 2), STRATA_EREADONLY);
    cr_assert_eq(strata_blob_embed_del(r, a), STRATA_EREADONLY);
    cr_assert_eq(strata_blob_delete_ns(r, "", &n), STRATA_EREADONLY);
    cr_assert_eq(strata_blob_check(r, 1, NULL, NULL), STRATA_OK);
    strata_abort(r);
    strata_blob_stats s = stats_of(&t);
    cr_assert_eq(s.n_blobs, 2);
    cr_assert_eq(s.next_id, 3);
    assert_consistent(&t);
    tdb_close(&t);
}

/* A savepoint rollback that undoes some of a streaming writer's chunks must
 * not let the writer finish into a blob whose chunk list misses them. */
Test(blob_review, writer_across_savepoint_rollback) {
    tdb t;
    tdb_open(&t);
    uint8_t *src = random_buf(3000, 41);
    strata_blob_writer *wr;
    strata_savepoint *sp;
    uint64_t id = 0;
    strata_txn *w = tw(&t);
    cr_assert_eq(strata_blob_writer_begin(w, &g_opts[1], &wr), STRATA_OK);   /* fixed 100 */
    cr_assert_eq(strata_blob_write(wr, src, 1000), STRATA_OK);
    cr_assert_eq(strata_savepoint_create(w, &sp), STRATA_OK);
    cr_assert_eq(strata_blob_write(wr, src + 1000, 1000), STRATA_OK);
    cr_assert_eq(strata_savepoint_rollback(w, sp), STRATA_OK);   /* chunks 10..19 are gone */
    int rc = strata_blob_write(wr, src + 2000, 1000);
    if (rc == STRATA_OK) rc = strata_blob_writer_finish(wr, &id);
    else strata_blob_writer_abort(wr);
    cr_assert_neq(rc, STRATA_OK, "the writer finished a blob with a hole");
    cr_assert_eq(strata_blob_check(w, 1, NULL, NULL), STRATA_OK);
    strata_blob_stats s;
    cr_assert_eq(strata_blob_stats_get(w, &s), STRATA_OK);
    cr_assert_eq(s.n_blobs + s.n_pending + s.n_chunks, 0);
    tcommit(w);
    assert_consistent(&t);
    free(src);
    tdb_close(&t);
}

/* A rollback to before a writer's begin: the id is handed out again, and
 * the old writer must neither finish nor, when aborted, touch the new blob. */
Test(blob_review, writer_begin_rolled_back) {
    tdb t;
    tdb_open(&t);
    uint8_t *src = random_buf(3000, 42), buf[3000];
    strata_blob_writer *wr, *wr2;
    strata_savepoint *sp;
    uint64_t id = 0, id2 = 0;
    strata_txn *w = tw(&t);
    cr_assert_eq(strata_savepoint_create(w, &sp), STRATA_OK);
    cr_assert_eq(strata_blob_writer_begin(w, &g_opts[1], &wr), STRATA_OK);
    cr_assert_eq(strata_blob_writer_begin(w, &g_opts[1], &wr2), STRATA_OK);
    cr_assert_eq(strata_blob_write(wr, src, 1000), STRATA_OK);
    cr_assert_eq(strata_blob_write(wr2, src, 50), STRATA_OK);
    cr_assert_eq(strata_savepoint_rollback(w, sp), STRATA_OK);
    cr_assert_eq(strata_blob_put(w, &g_opts[1], src + 1, 2500, &id2), STRATA_OK);   /* takes wr's id */
    cr_assert_eq(strata_blob_write(wr, src + 1000, 1000), STRATA_EINVAL);
    strata_blob_writer_abort(wr);
    cr_assert_eq(strata_blob_writer_finish(wr2, &id), STRATA_EINVAL);   /* nothing was cut: at finish */
    cr_assert_eq(strata_blob_read_at(w, id2, 0, buf, 2500, STRATA_BLOB_VERIFY), STRATA_OK);
    cr_assert(memcmp(buf, src + 1, 2500) == 0);
    cr_assert_eq(strata_blob_check(w, 1, NULL, NULL), STRATA_OK);
    strata_blob_stats s;
    cr_assert_eq(strata_blob_stats_get(w, &s), STRATA_OK);
    cr_assert(s.n_blobs == 1 && s.n_pending == 0 && s.n_chunks == 25, "%llu %llu %llu",
              (unsigned long long)s.n_blobs, (unsigned long long)s.n_pending, (unsigned long long)s.n_chunks);
    tcommit(w);
    assert_consistent(&t);
    free(src);
    tdb_close(&t);
}

/* ---- readers ---- */

/* A reader stepping from chunk to chunk keeps working while other blobs are
 * written in the same transaction, and after a savepoint rollback that left
 * its blob in place (cursors are unpositioned then). */
Test(blob_review, reader_across_writes_and_rollback) {
    tdb t;
    tdb_open(&t);
    uint8_t *src = random_buf(5000, 51), buf[5000];
    uint64_t id, other;
    size_t got;
    strata_txn *w = tw(&t);
    cr_assert_eq(strata_blob_put(w, &g_opts[1], src, 5000, &id), STRATA_OK);
    strata_blob_reader *rd;
    cr_assert_eq(strata_blob_reader_open(w, id, STRATA_BLOB_VERIFY, &rd), STRATA_OK);
    cr_assert_eq(strata_blob_read(rd, buf, 100, &got), STRATA_OK);   /* exactly the first chunk */
    for (int i = 0; i < 50; i++)   /* many chunk-list rows around it */
        cr_assert_eq(strata_blob_put(w, &g_opts[1], src + i, 4000, &other), STRATA_OK);
    cr_assert_eq(strata_blob_read(rd, buf + 100, 1000, &got), STRATA_OK);
    cr_assert_eq(got, 1000);
    strata_savepoint *sp;
    cr_assert_eq(strata_savepoint_create(w, &sp), STRATA_OK);
    cr_assert_eq(strata_blob_put(w, &g_opts[1], src + 7, 3000, &other), STRATA_OK);
    cr_assert_eq(strata_savepoint_rollback(w, sp), STRATA_OK);
    cr_assert_eq(strata_blob_read(rd, buf + 1100, 3900, &got), STRATA_OK);   /* from a chunk start */
    cr_assert_eq(got, 3900);
    cr_assert(memcmp(buf, src, 5000) == 0);
    /* the blob deleted under the reader: an error, not a crash or stale bytes */
    cr_assert_eq(strata_blob_seek(rd, 0), STRATA_OK);
    cr_assert_eq(strata_blob_delete(w, id), STRATA_OK);
    int rc = strata_blob_read(rd, buf, 10, &got);
    cr_assert(rc == STRATA_NOTFOUND || rc == STRATA_ECORRUPT, "rc %d", rc);
    strata_blob_reader_close(rd);
    tcommit(w);
    assert_consistent(&t);
    free(src);
    tdb_close(&t);
}

/* ---- damage ---- */

static strata_table *tab(strata_txn *txn, const char *name, strata_key_type kt) {
    strata_table *t;
    cr_assert_eq(strata_table_open(txn, name, kt, STRATA_CREATE, &t), STRATA_OK, "%s", name);
    return t;
}

static int collect_edge(void *ctx, const strata_blob_edge *e) { (void)ctx; (void)e; return 0; }
static int collect_depth(void *ctx, uint64_t id, uint32_t d) { (void)ctx; (void)id; (void)d; return 0; }
static int collect_tag(void *ctx, strata_slice s) { (void)ctx; (void)s; return 0; }

/* Every read API on blob id in txn: no crash, and only expected codes. */
static void poke_all(strata_txn *txn, uint64_t id, int *saw_corrupt) {
    uint8_t buf[4096];
    strata_blob_info info;
    strata_blob_stats st;
    strata_hit hits[2];
    uint64_t path[4];
    size_t n;
    float q[2] = { 1, 1 }, out[8];
    int rcs[14], k = 0;
    rcs[k++] = strata_blob_info_get(txn, id, &info);
    rcs[k++] = strata_blob_read_at(txn, id, 0, buf, 1, 0);
    rcs[k++] = strata_blob_read_at(txn, id, 0, buf, 1, STRATA_BLOB_VERIFY);
    rcs[k++] = strata_blob_verify(txn, id);
    rcs[k++] = strata_blob_stats_get(txn, &st);
    rcs[k++] = strata_blob_edges(txn, id, STRATA_BLOB_BOTH, 0, collect_edge, NULL);
    rcs[k++] = strata_blob_traverse(txn, id, STRATA_BLOB_BOTH, 0, 3, collect_depth, NULL);
    rcs[k++] = strata_blob_path(txn, id, id + 1, STRATA_BLOB_BOTH, 0, 3, path, 4, &n);
    rcs[k++] = strata_blob_tags_of(txn, id, collect_tag, NULL);
    rcs[k++] = strata_blob_list_time(txn, 0, UINT64_MAX, count_id, &n);
    rcs[k++] = strata_blob_similar(txn, STRATA_METRIC_L2, q, 2, 2, hits, &n);
    rcs[k++] = strata_blob_embed_get(txn, id, out, 8, &n);
    rcs[k++] = strata_blob_check(txn, 1, NULL, NULL);
    n = 0;
    rcs[k++] = strata_blob_list_ns(txn, "", count_id, &n);
    for (int i = 0; i < k; i++) {
        cr_assert(rcs[i] == STRATA_OK || rcs[i] == STRATA_NOTFOUND || rcs[i] == STRATA_ECORRUPT,
                  "call %d: rc %d", i, rcs[i]);
        if (rcs[i] == STRATA_ECORRUPT) *saw_corrupt = 1;
    }
}

typedef struct damage { const char *table; strata_key_type kt; uint8_t key[40]; size_t klen; uint8_t val[80];
                        size_t vlen; int del; } damage;

Test(blob_review, damaged_rows_are_ecorrupt) {
    tdb t;
    tdb_open(&t);
    uint8_t *src = random_buf(1000, 61);
    uint64_t a, b;
    float v[2] = { 1, 0 };
    strata_txn *w = tw(&t);
    cr_assert_eq(strata_blob_put(w, &g_opts[1], src, 1000, &a), STRATA_OK);   /* id 1: 10 chunks */
    cr_assert_eq(strata_blob_put(w, &g_opts[1], src, 500, &b), STRATA_OK);    /* id 2 */
    cr_assert_eq(strata_blob_link(w, a, b, STRATA_BLOB_SUPPORTS, "ctx"), STRATA_OK);
    cr_assert_eq(strata_blob_tag_add(w, a, "t"), STRATA_OK);
    cr_assert_eq(strata_blob_embed_set(w, a, v, 2), STRATA_OK);
    tcommit(w);
    cr_assert(a == 1 && b == 2);
    damage d[] = {
        { "blob:meta", STRATA_KEY_U64, { 1 }, 8, { 1 }, 10, 0 },                       /* short record */
        { "blob:meta", STRATA_KEY_U64, { 1 }, 8, { 9 }, 64, 0 },                        /* bad version */
        { "blob:stats", STRATA_KEY_BYTES, "stats", 5, { 1 }, 7, 0 },                    /* short counters */
        { "blob:chunklist", STRATA_KEY_BYTES, { 0, 0, 0, 0, 0, 0, 0, 1, 0, 0, 0, 0, 0, 0, 0, 0 }, 16,
          { 0 }, 3, 0 },                                                                 /* short list row */
        { "blob:chunklist", STRATA_KEY_BYTES, { 0, 0, 0, 0, 0, 0, 0, 1, 0, 0, 0, 0, 0, 0, 0, 0 }, 16,
          { 0 }, 36, 0 },                                                                /* zero length */
        { "blob:chunklist", STRATA_KEY_BYTES, { 0, 0, 0, 0, 0, 0, 0, 1, 0, 0, 0, 0, 0, 0, 1, 44 }, 16,
          { 0 }, 0, 1 },                                                                 /* a hole (300) */
        { "blob:chunklist", STRATA_KEY_BYTES, { 0, 0, 0, 0, 0, 0, 0, 1, 0, 0, 0, 0, 0, 0, 0, 0 }, 16,
          { 0 }, 0, 1 },                                                                 /* no first chunk */
        { "blob:edges_out", STRATA_KEY_BYTES, { 0, 0, 0, 0, 0, 0, 0, 1, 0, 0, 0, 0, 0, 0, 0, 2, 4 }, 17,
          { 0 }, 0, 1 },                                                                 /* in row alone */
        { "blob:edges_in", STRATA_KEY_BYTES, { 0, 0, 0, 0, 0, 0, 0, 2, 0, 0, 0, 0, 0, 0, 0, 1, 9 }, 17,
          { 0 }, 0, 0 },                                                                 /* bad relation */
        { "blob:edges_out", STRATA_KEY_BYTES, { 0, 0, 0, 0, 0, 0, 0, 1, 0, 0, 0, 0, 0, 0, 0, 7, 4 }, 17,
          { 0 }, 0, 0 },                                                                 /* edge to nowhere */
        { "blob:embed", STRATA_KEY_U64, { 1 }, 8, { 3, 0, 0, 0 }, 4, 0 },                /* no such vector */
        { "blob:embed", STRATA_KEY_U64, { 1 }, 8, { 0, 0, 0, 0 }, 4, 0 },                /* dimension 0 */
        { "blob:embed", STRATA_KEY_U64, { 1 }, 8, { 2, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0x80, 0x3f }, 16, 0 },
                                                                                         /* old layout */
        { "blob:embed", STRATA_KEY_U64, { 1 }, 8, { 0 }, 0, 1 },                         /* vector alone */
        { "blob:time", STRATA_KEY_BYTES, { 1 }, 3, { 0 }, 0, 0 },                        /* short time key */
        { "blob:ns", STRATA_KEY_BYTES, { 0, 0, 0, 0, 0, 0, 0, 0, 9 }, 9, { 0 }, 0, 0 }, /* ns row, no blob */
        { "blob:blobtags", STRATA_KEY_BYTES, { 0, 0, 0, 0, 0, 0, 0, 1, 't' }, 9, { 0 }, 0, 1 }, /* mirror */
        { "blob:tags", STRATA_KEY_BYTES, { 1, 'u', 0, 0, 0, 0, 0, 0, 0, 3 }, 10, { 0 }, 0, 0 }, /* no blob */
        { "blob:pending", STRATA_KEY_U64, { 1 }, 8, { 0 }, 3, 0 },                      /* short pending */
    };
    for (size_t i = 0; i < sizeof d / sizeof *d; i++) {
        w = tw(&t);
        strata_table *tb = tab(w, d[i].table, d[i].kt);
        strata_slice k = { d[i].key, d[i].klen }, val = { d[i].val, d[i].vlen };
        if (d[i].del) cr_assert_eq(strata_del(tb, k), STRATA_OK, "damage %zu", i);
        else cr_assert_eq(strata_put(tb, k, val), STRATA_OK, "damage %zu", i);
        int saw = 0;
        poke_all(w, a, &saw);
        poke_all(w, b, &saw);
        cr_assert(saw, "damage %zu: nothing reported ECORRUPT", i);
        cr_assert_eq(strata_blob_check(w, 1, NULL, NULL), STRATA_ECORRUPT, "damage %zu", i);
        strata_abort(w);
    }
    assert_consistent(&t);
    free(src);
    tdb_close(&t);
}

/* A blob record intact but its chunk list gone: reading it is corruption,
 * not "no such blob"; a namespace row of no blob stops delete_ns with
 * ECORRUPT (not NOTFOUND, and no loop). */
Test(blob_review, rows_missing_behind_a_record) {
    tdb t;
    tdb_open(&t);
    uint8_t *src = random_buf(1000, 61);
    uint64_t a, b;
    strata_txn *w = tw(&t);
    cr_assert_eq(strata_blob_put(w, &g_opts[1], src, 1000, &a), STRATA_OK);   /* id 1: 10 chunks */
    cr_assert_eq(strata_blob_put(w, &g_opts[1], src, 500, &b), STRATA_OK);    /* id 2 */
    tcommit(w);
    cr_assert(a == 1 && b == 2);
    w = tw(&t);
    strata_table *cl = tab(w, "blob:chunklist", STRATA_KEY_BYTES);
    uint8_t lo[8] = { 0, 0, 0, 0, 0, 0, 0, 2 }, hi[8] = { 0, 0, 0, 0, 0, 0, 0, 3 };
    strata_slice l = { lo, 8 }, h = { hi, 8 };
    cr_assert_eq(strata_del_range(cl, &l, &h, 0, NULL), STRATA_OK);
    uint8_t buf[10];
    cr_assert_eq(strata_blob_read_at(w, b, 0, buf, 10, 0), STRATA_ECORRUPT);
    cr_assert_eq(strata_blob_read_at(w, b, 250, buf, 10, 0), STRATA_ECORRUPT);
    cr_assert_eq(strata_blob_verify(w, b), STRATA_ECORRUPT);
    strata_abort(w);
    /* a namespace row of no blob: delete_ns stops with ECORRUPT, no loop */
    w = tw(&t);
    strata_table *ns = tab(w, "blob:ns", STRATA_KEY_BYTES);
    uint8_t nk[9] = { 0, 0, 0, 0, 0, 0, 0, 0, 0 };
    cr_assert_eq(strata_put(ns, (strata_slice){ nk, 9 }, (strata_slice){ "", 0 }), STRATA_OK);
    uint64_t nd;
    cr_assert_eq(strata_blob_delete_ns(w, "", &nd), STRATA_ECORRUPT);
    strata_abort(w);
    assert_consistent(&t);
    free(src);
    tdb_close(&t);
}

/* Chunk bytes damaged in the file itself (behind every API): reads and the
 * checks report it; nothing crashes. */
Test(blob_review, damaged_file_bytes) {
    tdb t;
    tdb_open(&t);
    size_t n = 200000;
    uint8_t *src = random_buf(n, 71);
    uint64_t id;
    strata_txn *w = tw(&t);
    strata_blob_opts o = { .chunking = STRATA_BLOB_FIXED, .avg_chunk = 50000 };
    cr_assert_eq(strata_blob_put(w, &o, src, n, &id), STRATA_OK);
    tcommit(w);
    strata_close(t.db);
    t.db = NULL;
    FILE *f = fopen(t.path, "r+b");
    cr_assert_not_null(f);
    fseek(f, 0, SEEK_END);
    long fl = ftell(f);
    uint8_t *file = malloc((size_t)fl);
    fseek(f, 0, SEEK_SET);
    cr_assert_eq(fread(file, 1, (size_t)fl, f), (size_t)fl);
    long at = -1;
    for (long i = 0; i + 64 <= fl; i++)
        if (!memcmp(file + i, src + 120000, 64)) { at = i; break; }
    cr_assert_geq(at, 0, "chunk bytes not found in the file");
    fseek(f, at + 10, SEEK_SET);
    uint8_t x = file[at + 10] ^ 0xff;
    cr_assert_eq(fwrite(&x, 1, 1, f), 1);
    fclose(f);
    free(file);
    cr_assert_eq(strata_open(t.path, 0, &t.db), STRATA_OK);
    strata_txn *r = tr(&t);
    uint8_t buf[100];
    cr_assert_eq(strata_blob_read_at(r, id, 0, buf, 100, 0), STRATA_OK);   /* other chunks are fine */
    int rc = strata_blob_read_at(r, id, 120000, buf, 100, STRATA_BLOB_VERIFY);
    cr_assert(rc == STRATA_ECORRUPT, "verified read of damaged bytes: %d", rc);
    cr_assert_eq(strata_blob_verify(r, id), STRATA_ECORRUPT);
    cr_assert_eq(strata_blob_check(r, 1, NULL, NULL), STRATA_ECORRUPT);
    strata_abort(r);
    free(src);
    tdb_close(&t);
}

/* Damage that the old code missed: a next-id counter that points at a
 * finished blob (a put must not merge into it, the check must say so), and
 * an edge mirrored on both sides but with a relation out of range or naming
 * its own blob. */
Test(blob_review, next_id_pointing_at_a_blob) {
    tdb t;
    tdb_open(&t);
    uint8_t *src = random_buf(1000, 81), buf[1000];
    uint64_t a, b, n;
    strata_txn *w = tw(&t);
    cr_assert_eq(strata_blob_put(w, &g_opts[1], src, 1000, &a), STRATA_OK);
    cr_assert_eq(strata_blob_put(w, &g_opts[1], src, 10, &b), STRATA_OK);
    tcommit(w);
    strata_blob_stats s = stats_of(&t);
    w = tw(&t);
    uint8_t st[48] = { 0 };
    uint64_t cnt[6] = { 1, s.n_blobs, s.logical_bytes, s.n_chunks, s.stored_bytes, s.n_pending };
    for (int i = 0; i < 6; i++) le64_put(st + 8 * i, cnt[i]);   /* next id 1: blob a's */
    cr_assert_eq(strata_put(tab(w, "blob:stats", STRATA_KEY_BYTES), (strata_slice){ "stats", 5 },
                            (strata_slice){ st, 48 }), STRATA_OK);
    cr_assert_eq(strata_blob_put(w, &g_opts[1], src + 1, 500, &n), STRATA_ECORRUPT);
    strata_blob_writer *wr = NULL;
    cr_assert_eq(strata_blob_writer_begin(w, NULL, &wr), STRATA_ECORRUPT);
    cr_assert_eq(strata_blob_read_at(w, a, 0, buf, 1000, STRATA_BLOB_VERIFY), STRATA_OK);
    cr_assert(memcmp(buf, src, 1000) == 0);
    cr_assert_eq(strata_blob_verify(w, a), STRATA_OK);
    cr_assert_eq(strata_blob_check(w, 1, NULL, NULL), STRATA_ECORRUPT);
    strata_abort(w);
    assert_consistent(&t);
    free(src);
    tdb_close(&t);
}

Test(blob_review, mirrored_bad_edges_are_reported) {
    tdb t;
    tdb_open(&t);
    uint8_t *src = random_buf(1000, 81);
    uint64_t a, b;
    strata_txn *w = tw(&t);
    cr_assert_eq(strata_blob_put(w, &g_opts[1], src, 1000, &a), STRATA_OK);
    cr_assert_eq(strata_blob_put(w, &g_opts[1], src, 10, &b), STRATA_OK);
    tcommit(w);
    for (int kind = 0; kind < 2; kind++) {
        uint8_t ok[17] = { 0 }, ik[17] = { 0 };
        le64_put(ok, 0);
        ok[7] = (uint8_t)a;
        ok[15] = (uint8_t)(kind ? a : b);   /* kind 1: a self edge */
        ok[16] = kind ? 1 : 9;              /* kind 0: relation 9 */
        memcpy(ik, ok + 8, 8);
        memcpy(ik + 8, ok, 8);
        ik[16] = ok[16];
        w = tw(&t);
        cr_assert_eq(strata_put(tab(w, "blob:edges_out", STRATA_KEY_BYTES), (strata_slice){ ok, 17 },
                                (strata_slice){ "", 0 }), STRATA_OK);
        cr_assert_eq(strata_put(tab(w, "blob:edges_in", STRATA_KEY_BYTES), (strata_slice){ ik, 17 },
                                (strata_slice){ "", 0 }), STRATA_OK);
        cr_assert_eq(strata_blob_check(w, 0, NULL, NULL), STRATA_ECORRUPT, "kind %d", kind);
        strata_abort(w);
    }
    assert_consistent(&t);
    free(src);
    tdb_close(&t);
}

/* A pending row naming a finished blob (damage): gc must not release the
 * finished blob's chunks. */
Test(blob_review, gc_leaves_a_finished_blob_alone) {
    tdb t;
    tdb_open(&t);
    uint8_t *src = random_buf(1000, 91), buf[1000];
    uint64_t a, n_rm = 0;
    strata_txn *w = tw(&t);
    cr_assert_eq(strata_blob_put(w, &g_opts[1], src, 1000, &a), STRATA_OK);
    tcommit(w);
    w = tw(&t);
    uint8_t k[8], v[8] = { 1 };   /* an old HLC: stale for gc */
    le64_put(k, a);
    cr_assert_eq(strata_put(tab(w, "blob:pending", STRATA_KEY_U64), (strata_slice){ k, 8 }, (strata_slice){ v, 8 }),
                 STRATA_OK);
    tcommit(w);
    w = tw(&t);
    cr_assert_eq(strata_blob_gc(w, &n_rm), STRATA_ECORRUPT);
    cr_assert_eq(strata_blob_read_at(w, a, 0, buf, 1000, STRATA_BLOB_VERIFY), STRATA_OK);
    cr_assert(memcmp(buf, src, 1000) == 0);
    strata_abort(w);
    free(src);
    tdb_close(&t);
}

/* A streaming write that fails after it stored some chunks (here: the
 * fourth chunk's reference record is damaged, STRATA_ECORRUPT, which does
 * not poison the transaction) must still leave the counters exact: if the
 * transaction is committed with the failed writer (a lost writer), check
 * must be clean and gc must be able to release it. */
Test(blob_review, failed_write_keeps_counters_exact) {
    tdb t;
    tdb_open(&t);
    uint8_t *old = random_buf(1000, 95), *src = random_buf(1000, 96);
    memcpy(src + 300, old + 500, 100);   /* the new content's 4th chunk is old's 6th */
    uint64_t a, n_rm = 0;
    strata_txn *w = tw(&t);
    cr_assert_eq(strata_blob_put(w, &g_opts[1], old, 1000, &a), STRATA_OK);
    tcommit(w);
    uint8_t rk[33], good[16], bad[16];
    sha256_of(old + 500, 100, rk);
    rk[32] = 1;   /* the reference record */
    w = tw(&t);
    strata_table *ch = tab(w, "blob:chunks", STRATA_KEY_BYTES);
    strata_slice v;
    cr_assert_eq(strata_get(ch, (strata_slice){ rk, 33 }, &v), STRATA_OK);
    cr_assert_eq(v.len, 16);
    memcpy(good, v.data, 16);
    memcpy(bad, good, 16);
    bad[8] ^= 1;   /* recorded length 101 */
    cr_assert_eq(strata_put(ch, (strata_slice){ rk, 33 }, (strata_slice){ bad, 16 }), STRATA_OK);
    strata_blob_writer *wr;
    cr_assert_eq(strata_blob_writer_begin(w, &g_opts[1], &wr), STRATA_OK);
    cr_assert_eq(strata_blob_write(wr, src, 1000), STRATA_ECORRUPT);
    cr_assert_eq(strata_put(ch, (strata_slice){ rk, 33 }, (strata_slice){ good, 16 }), STRATA_OK);   /* repaired */
    cr_assert_eq(strata_blob_check(w, 1, NULL, NULL), STRATA_OK);
    tcommit(w);   /* the failed writer is lost */
    strata_blob_writer_free(wr);
    assert_consistent(&t);
    w = tw(&t);
    cr_assert_eq(strata_blob_gc(w, &n_rm), STRATA_OK);
    cr_assert_eq(n_rm, 1);
    tcommit(w);
    strata_blob_stats s = stats_of(&t);
    cr_assert(s.n_blobs == 1 && s.n_pending == 0 && s.n_chunks == 10 && s.stored_bytes == 1000);
    assert_consistent(&t);
    free(old);
    free(src);
    tdb_close(&t);
}

/* An operation that meets a damaged row half-way, after some of its writes,
 * leaves the transaction abort-only (commit: STRATA_EBADTXN), so the
 * half-done delete, tag removal or unlink is never committed; a savepoint
 * taken before it brings the transaction back. Fails without blob_fail. */
Test(blob_review, half_done_operation_cannot_commit) {
    tdb t;
    tdb_open(&t);
    uint8_t *src = random_buf(1000, 95);
    uint64_t a, b;
    strata_txn *w = tw(&t);
    cr_assert_eq(strata_blob_put(w, &g_opts[1], src, 1000, &a), STRATA_OK);
    cr_assert_eq(strata_blob_put(w, &g_opts[1], src, 600, &b), STRATA_OK);
    cr_assert_eq(strata_blob_link(w, a, b, STRATA_BLOB_DERIVED_FROM, "x"), STRATA_OK);
    cr_assert_eq(strata_blob_tag_add(w, a, "t"), STRATA_OK);
    tcommit(w);
    /* damage: blob a's edge is gone from edges_in, its tag from blobtags */
    w = tw(&t);
    uint8_t ek[17] = { 0 }, tk[9] = { 0 };
    ek[7] = (uint8_t)b; ek[15] = (uint8_t)a; ek[16] = STRATA_BLOB_DERIVED_FROM;
    tk[7] = (uint8_t)a; tk[8] = 't';
    cr_assert_eq(strata_del(tab(w, "blob:edges_in", STRATA_KEY_BYTES), (strata_slice){ ek, 17 }), STRATA_OK);
    cr_assert_eq(strata_del(tab(w, "blob:blobtags", STRATA_KEY_BYTES), (strata_slice){ tk, 9 }), STRATA_OK);
    tcommit(w);
    /* delete: the index rows and chunks go first, then the edge is damage */
    w = tw(&t);
    strata_savepoint *sp;
    cr_assert_eq(strata_savepoint_create(w, &sp), STRATA_OK);
    cr_assert_eq(strata_blob_delete(w, a), STRATA_ECORRUPT);
    cr_assert_eq(strata_commit(w), STRATA_EBADTXN);   /* commit consumes the txn, also on failure */
    /* the same with a rollback: usable again, and a's content intact */
    w = tw(&t);
    cr_assert_eq(strata_savepoint_create(w, &sp), STRATA_OK);
    cr_assert_eq(strata_blob_delete(w, a), STRATA_ECORRUPT);
    cr_assert_eq(strata_savepoint_rollback(w, sp), STRATA_OK);
    uint8_t buf[1000];
    cr_assert_eq(strata_blob_read_at(w, a, 0, buf, 1000, STRATA_BLOB_VERIFY), STRATA_OK);
    cr_assert(memcmp(buf, src, 1000) == 0);
    /* tag removal and unlink: the first row goes, the mirror is missing */
    cr_assert_eq(strata_blob_tag_remove(w, a, "t"), STRATA_ECORRUPT);
    cr_assert_eq(strata_commit(w), STRATA_EBADTXN);   /* commit consumes the txn, also on failure */
    w = tw(&t);
    cr_assert_eq(strata_blob_unlink(w, a, b, STRATA_BLOB_DERIVED_FROM), STRATA_ECORRUPT);
    cr_assert_eq(strata_commit(w), STRATA_EBADTXN);   /* commit consumes the txn, also on failure */
    /* a failure before any write leaves the transaction usable */
    w = tw(&t);
    cr_assert_eq(strata_blob_delete(w, 999), STRATA_NOTFOUND);
    cr_assert_eq(strata_blob_tag_remove(w, b, "nope"), STRATA_NOTFOUND);
    tcommit(w);
    /* nothing of the failed operations was committed */
    strata_txn *r = tr(&t);
    cr_assert_eq(strata_blob_read_at(r, a, 0, buf, 1000, STRATA_BLOB_VERIFY), STRATA_OK);
    id_list l = { .n = 0 };
    cr_assert_eq(strata_blob_list_by_tag(r, "t", id_collect, &l), STRATA_OK);
    cr_assert(l.n == 1 && l.v[0] == a);
    strata_abort(r);
    free(src);
    tdb_close(&t);
}
