/* blob/writer.c - streaming blob writer and whole-buffer put.
 * States (functions in brackets):
 *   OPEN --[strata_blob_write]--> OPEN --[strata_blob_writer_finish]--> freed
 *   OPEN --[a failed write]--> FAILED --[finish or abort: undo]--> freed
 *   OPEN/FAILED --[strata_blob_writer_abort: undo]--> freed
 * Invariants: (1) the blob id and a blob:pending row exist from begin to
 * finish; chunks are referenced and chunk-list rows written as soon as they
 * are cut, so memory stays bounded by 2 * max chunk; (2) buf[start, fill) holds
 * the bytes received but not cut, always fewer than max after a write returns;
 * (3) cut points depend only on content (blob_chunker_cut), so any split of
 * the same bytes into writes yields the same chunks; (4) undo releases the
 * chunk list and the pending row, leaving counts as before begin;
 * (5) the whole-content hash `full` has seen exactly the content bytes
 * [0, hashed), in order, and emitted <= hashed <= size, except while a
 * one-chunk content's hash is deferred (see emit);
 * (6) counter changes collect in dst and are written (blob_stats_apply)
 * before each public call returns, so blob:stats is exact between calls;
 * (7) a savepoint rollback undoes rows and counters but not the writer's
 * memory, so before a streaming writer writes rows again (a write that
 * cuts a chunk, finish) and before undo it checks that txn still holds its
 * pending row and a chunk list ending at `emitted` (check_rows): otherwise
 * the writer fails (STRATA_EINVAL) instead of recording a blob with a hole,
 * and undo leaves alone what the rollback already removed. (An id handed
 * out again after a rollback to before begin is told apart only if the new
 * blob is finished or its chunk list differs.) The check reads rows only
 * when the transaction saw a rollback since the last check passed
 * (db_txn_counter, which rollbacks bump): nothing else removes a pending
 * writer's rows.
 * strata_blob_put is a writer that begins and finishes within one call: no
 * other operation can see it in between, so it writes no blob:pending row
 * (invariant 1 and the pending counter hold at every call boundary) and
 * writes the counters row once.
 * Hashing: a content that is one chunk is hashed once (its chunk hash is the
 * content hash); otherwise every chunk's hash and the whole-content hash run
 * over the same bytes in one pass (blob_sha_update2: two SHA-NI streams
 * interleaved, ~1.2x the speed of two passes); when the next chunk is to be
 * cut in the same call, the search for its cut runs inside that pass
 * (blob_sha_update2_scan, feed and drain), which hides most of the gear
 * scan behind the SHA instructions. For a large piece
 * (>= ASYNC_MIN bytes, nothing buffered) a helper thread may take the
 * whole-content hash, paired with chunks as this thread cuts and publishes
 * them, while this thread cuts, stores each chunk as soon as its hash is
 * known (so the chunk's page writes overlap the helper's hashing) and
 * hashes what nobody has claimed (feed_async, pipeline). Tasks are claimed,
 * so a helper starved of CPU delays nothing it has not claimed; before the
 * call returns it waits for the tasks the helper took. The helper touches
 * only `full`, the caller's buffer (read only) and the chunk slots it
 * claims. Whether a piece gets a helper is decided by the measured speed of
 * both ways (the governor, above write_any): on a loaded machine a helper
 * that is preempted holding a task makes the call slower, not faster. */
#include <pthread.h>
#include <sched.h>
#include <stdatomic.h>
#include <stdlib.h>
#include <time.h>

#include "blob_int.h"

#define WRITER_MAGIC 0x424c4257u   /* "BLBW" */

enum { W_OPEN = 0, W_FAILED = 1 };
/* Pieces at least this long are hashed with a helper thread: SHA-256 of
 * 256 KiB (~0.13 ms with SHA-NI) outweighs a thread start. */
enum { ASYNC_MIN = 256u << 10 };

struct strata_blob_writer {
    uint32_t      magic;
    int           state;            /* W_OPEN or W_FAILED                     */
    strata_txn   *txn;              /* the caller's write transaction          */
    uint64_t      id, hlc;
    uint64_t      size;             /* bytes received                          */
    uint64_t      emitted;          /* bytes cut into chunks                   */
    uint64_t      n_chunks;
    blob_chunker  ck;
    uint8_t      *buf;              /* 2 * max bytes, allocated on first need  */
    size_t        cap, start, fill;
    blob_sha      full;             /* SHA-256 of the whole content            */
    int           full_init;        /* full is initialised (needs freeing)     */
    uint64_t      hashed;           /* content bytes fed to full (inv. 5)      */
    int           single;           /* meta.sha is the only chunk's hash       */
    int           oneshot;          /* strata_blob_put: no pending row         */
    int           by_content;       /* opts->by_content: an equal blob is reused */
    int           gone;             /* a savepoint rollback undid begin (inv. 7) */
    uint64_t     *rollbacks;        /* blob_rollback_counter (streaming writers)        */
    uint64_t      rollbacks_seen;   /* its value when the rows were last as w left them */
    uint64_t      dst[ST_COUNT];    /* counter changes not yet written (inv. 6) */
    blob_meta     meta;             /* ct, ns, label point into strs           */
    char         *strs;
};

static int copy_opts(strata_blob_writer *w, const strata_blob_opts *o) {
    const char *ct = o && o->content_type ? o->content_type : "";
    const char *ns = o && o->ns ? o->ns : "";
    const char *lab = o && o->label ? o->label : "";
    size_t cl = strlen(ct), nl = strlen(ns), ll = strlen(lab);
    if (cl > STRATA_BLOB_MAX_META || nl > STRATA_BLOB_MAX_META || ll > STRATA_BLOB_MAX_LABEL)
        return STRATA_EINVAL;
    if (!(w->strs = malloc(cl + nl + ll + 1))) return STRATA_ENOMEM;
    memcpy(w->strs, ct, cl);
    memcpy(w->strs + cl, ns, nl);
    memcpy(w->strs + cl + nl, lab, ll);
    w->meta.ct = blob_sl(w->strs, cl);
    w->meta.ns = blob_sl(w->strs + cl, nl);
    w->meta.label = blob_sl(w->strs + cl + nl, ll);
    return STRATA_OK;
}

static void writer_free(strata_blob_writer *w) {
    if (!w) return;
    if (w->full_init) blob_sha_free(&w->full);
    free(w->buf);
    free(w->strs);
    w->magic = 0;
    free(w);
}

/* Allocate the id, count the blob as pending and write its pending row. A
 * one-shot writer only takes the id; its counters are written at finish. */
static int reserve(strata_blob_writer *w) {
    uint64_t st[ST_COUNT];
    uint8_t k[8], v[8];
    strata_table *t;
    int rc = blob_txn_hlc(w->txn, &w->hlc);
    if (rc || (rc = blob_stats_load(w->txn, st))) return rc;
    /* a damaged counter must not hand out a finished blob's id: the new
     * chunk list would merge into the old one */
    if ((rc = blob_exists(w->txn, st[ST_NEXT_ID])) != STRATA_NOTFOUND) return rc ? rc : STRATA_ECORRUPT;
    if (w->oneshot) {
        w->id = st[ST_NEXT_ID];
        w->dst[ST_NEXT_ID] = 1;
        return STRATA_OK;
    }
    w->id = st[ST_NEXT_ID]++;
    st[ST_N_PENDING]++;
    if ((rc = blob_tab(w->txn, BT_PENDING, 1, &t))) return rc;
    le64_put(k, w->id);
    le64_put(v, w->hlc);
    if ((rc = strata_put(t, blob_sl(k, 8), blob_sl(v, 8)))) return rc;
    return blob_stats_store(w->txn, st);
}

static int writer_begin(strata_txn *txn, const strata_blob_opts *opts, int oneshot,
                        strata_blob_writer **out) {
    if (!txn || !out) return STRATA_EINVAL;
    strata_blob_writer *w = calloc(1, sizeof *w);
    if (!w) return STRATA_ENOMEM;
    w->magic = WRITER_MAGIC;
    w->txn = txn;
    w->oneshot = oneshot;
    w->by_content = opts && opts->by_content;
    int rc = blob_chunker_init(&w->ck, opts);
    if (rc == STRATA_OK && !oneshot) {
        if ((w->rollbacks = blob_rollback_counter(txn))) w->rollbacks_seen = *w->rollbacks;
        else rc = STRATA_ENOMEM;
    }
    if (rc || (rc = copy_opts(w, opts))) goto out;
    w->meta.flags = w->ck.fixed ? META_FLAG_FIXED : 0;
    if ((rc = blob_sha_init(&w->full))) goto out;
    w->full_init = 1;
    if ((rc = reserve(w))) goto out;
    *out = w;
    w = NULL;
out:
    writer_free(w);
    return rc;
}

int strata_blob_writer_begin(strata_txn *txn, const strata_blob_opts *opts, strata_blob_writer **out) {
    return writer_begin(txn, opts, 0, out);
}

/* Invariant 7: STRATA_OK if txn still holds w's rows as w left them, else
 * STRATA_EINVAL (or a storage error), with w->gone set when w's pending row
 * is gone (the rollback undid begin: nothing of w is left to undo). */
static int check_rows(strata_blob_writer *w) {
    strata_table *t;
    strata_cursor *c;
    strata_slice k, v;
    uint8_t key[CLIST_KEY];
    uint64_t end = 0;
    if (w->oneshot) return STRATA_OK;   /* begins and finishes in one call */
    if (w->gone) return STRATA_EINVAL;
    if (*w->rollbacks == w->rollbacks_seen) return STRATA_OK;   /* no rollback since: rows as w left them */
    le64_put(key, w->id);
    int rc = blob_tab(w->txn, BT_PENDING, 0, &t);
    if (rc == STRATA_OK) rc = strata_get(t, blob_sl(key, 8), &v);
    if (rc == STRATA_NOTFOUND) w->gone = 1;
    if (rc) return rc == STRATA_NOTFOUND ? STRATA_EINVAL : rc;
    if ((rc = blob_exists(w->txn, w->id)) != STRATA_NOTFOUND)   /* finished already: not w's row */
        return rc ? rc : STRATA_EINVAL;
    rc = blob_tab(w->txn, BT_CLIST, 0, &t);
    if (rc == STRATA_OK && (rc = strata_cursor_open(t, &c)) == STRATA_OK) {
        be64_put(key, w->id);
        be64_put(key + 8, UINT64_MAX);
        rc = strata_cursor_seek_le(c, blob_sl(key, sizeof key));
        if (rc == STRATA_OK) rc = strata_cursor_get(c, &k, &v);
        if (rc == STRATA_OK && k.len == CLIST_KEY && be64_get(k.data) == w->id) {
            if (v.len != CLIST_VAL) rc = STRATA_ECORRUPT;
            else end = be64_get((const uint8_t *)k.data + 8) + le32_get((const uint8_t *)v.data + SHA_LEN);
        }
        strata_cursor_close(c);
    }
    if (rc && rc != STRATA_NOTFOUND) return rc;
    if (end != w->emitted) return STRATA_EINVAL;
    w->rollbacks_seen = *w->rollbacks;   /* a rollback to a savepoint taken after w's last write */
    return STRATA_OK;
}

/* Write the collected counter changes. */
static int flush_stats(strata_blob_writer *w) {
    int rc = blob_stats_apply(w->txn, w->dst);
    if (rc == STRATA_OK) memset(w->dst, 0, sizeof w->dst);
    return rc;
}

/* Store one chunk of the content (bytes [emitted, emitted + n)) whose hash
 * is sha: reference it and append its list row. */
static int emit_hashed(strata_blob_writer *w, const uint8_t *p, size_t n, const uint8_t sha[SHA_LEN]) {
    uint8_t k[CLIST_KEY], v[CLIST_VAL];
    strata_table *t;
    int rc;
    if ((rc = blob_chunk_ref(w->txn, sha, p, n, w->dst))) return rc;
    if ((rc = blob_tab(w->txn, BT_CLIST, 1, &t))) return rc;
    be64_put(k, w->id);
    be64_put(k + 8, w->emitted);
    memcpy(v, sha, SHA_LEN);
    le32_put(v + SHA_LEN, (uint32_t)n);
    if ((rc = strata_put(t, blob_sl(k, sizeof k), blob_sl(v, sizeof v)))) return rc;
    w->emitted += n;
    w->n_chunks++;
    return STRATA_OK;
}

/* Hash and store one chunk; the bytes full has not seen yet are fed to it
 * in the same pass as the chunk's own hash (blob_sha_update2). last: no
 * content follows. A content that is a single chunk keeps its chunk hash as
 * the content hash and is not hashed a second time. scan (may be NULL): the
 * search for the next chunk's cut, advanced inside that pass. */
static int emit(strata_blob_writer *w, const uint8_t *p, size_t n, int last, blob_scan *scan) {
    uint8_t sha[SHA_LEN];
    int rc;
    if (w->n_chunks == 0 && last && w->hashed == 0) {
        if ((rc = blob_sha_oneshot(p, n, sha))) return rc;
        memcpy(w->meta.sha, sha, SHA_LEN);
        w->single = 1;
    } else if (w->hashed < w->emitted + n) {
        size_t skip = (size_t)(w->hashed - w->emitted);   /* hashed >= emitted (inv. 5) */
        blob_sha c;
        if ((rc = blob_sha_init(&c))) return rc;
        rc = scan ? blob_sha_update2_scan(&w->full, p + skip, n - skip, &c, p, n, &w->ck, scan)
                  : blob_sha_update2(&w->full, p + skip, n - skip, &c, p, n);
        if (rc) {
            blob_sha_free(&c);
            return rc;
        }
        if ((rc = blob_sha_final(&c, sha))) return rc;
        w->hashed = w->emitted + n;
    } else if ((rc = blob_sha_oneshot(p, n, sha))) {
        return rc;
    }
    return emit_hashed(w, p, n, sha);
}

/* Cut and emit chunks from buf while at least max bytes are buffered (all of
 * them when final). */
static int drain(strata_blob_writer *w, int final) {
    if (w->fill > w->start && (final || w->fill - w->start >= w->ck.max)) {
        blob_scan s;   /* the next chunk's cut, searched in this one's hashing pass (feed) */
        size_t cut = blob_chunker_cut(&w->ck, w->buf + w->start, w->fill - w->start);
        for (;;) {
            size_t left = w->fill - w->start - cut;
            int next = left > 0 && (final || left >= w->ck.max);
            if (next) blob_scan_begin(&w->ck, &s, w->buf + w->start + cut, left);
            int rc = emit(w, w->buf + w->start, cut, final && left == 0, next ? &s : NULL);
            if (rc) return rc;
            w->start += cut;
            if (!next) break;
            cut = blob_scan_finish(&w->ck, &s);
        }
    }
    if (w->start == w->fill) w->start = w->fill = 0;
    return STRATA_OK;
}

/* Feed bytes: cut directly from p while nothing is buffered and at least max
 * bytes (or, when final, any bytes) remain; buffer the rest. */
static int feed(strata_blob_writer *w, const uint8_t *p, size_t len, int final) {
    int rc;
    while (len > 0) {
        if (w->fill == w->start && (final || len >= w->ck.max)) {
            /* each chunk's hashing pass also searches the next chunk's cut,
             * when that one is to be cut now (the same cuts as one by one) */
            blob_scan s;
            size_t cut = blob_chunker_cut(&w->ck, p, len);
            for (;;) {
                size_t left = len - cut;
                int next = left > 0 && (final || left >= w->ck.max);
                if (next) blob_scan_begin(&w->ck, &s, p + cut, left);
                if ((rc = emit(w, p, cut, final && cut == len, next ? &s : NULL))) return rc;
                p += cut;
                len -= cut;
                if (!next) break;
                cut = blob_scan_finish(&w->ck, &s);
            }
            continue;
        }
        if (!w->buf) {
            w->cap = 2 * (size_t)w->ck.max;
            if (!(w->buf = malloc(w->cap))) return STRATA_ENOMEM;
        }
        if (w->fill == w->cap) {   /* compact: fewer than max bytes move */
            memmove(w->buf, w->buf + w->start, w->fill - w->start);
            w->fill -= w->start;
            w->start = 0;
        }
        size_t take = w->cap - w->fill < len ? w->cap - w->fill : len;
        memcpy(w->buf + w->fill, p, take);
        w->fill += take;
        p += take;
        len -= take;
        if ((rc = drain(w, final))) return rc;
    }
    return STRATA_OK;
}

/* A large piece's chunks, published by the cutting thread as it cuts them so
 * that both threads can hash them; done is set (release) once sha holds the
 * chunk's hash (or the job is bad). */
typedef struct pchunk { size_t off, n; uint8_t sha[SHA_LEN]; atomic_int done; } pchunk;

/* Work shared by the calling thread and a detached helper on one piece
 * p[0, len) with nothing buffered before it. The caller cuts the piece and
 * publishes chunks (n_pub, release). Tasks are claimed, never assigned: the
 * whole-content hash (full_taken; its owner feeds the piece to `full` in
 * order, each step paired with a claimed chunk's hash when one is
 * published, blob_sha_update2) and the chunks' hashes (next < n_pub, claimed
 * by compare-and-swap, two at a time by a thread without `full`). Whoever
 * claims a task does it, so a helper that gets no CPU costs nothing but its
 * start: the caller then does every task itself and waits only for tasks
 * the helper really claimed (busy, under mu; a finished chunk is signalled
 * on cv). The helper touches the caller's buffer and `full` only inside a
 * claimed task, so once every task is claimed and busy is 0 the caller may
 * return; the job is freed by whichever side drops the last reference. */
typedef struct hash_job {
    blob_sha       *full;         /* whole-content hash, the owner's           */
    const uint8_t  *p;
    size_t          len;
    pchunk         *ck;           /* [cap]; [0, n_pub) are published           */
    size_t          cap;
    atomic_size_t   n_pub, next;
    atomic_int      bad, full_taken, refs;
    pthread_mutex_t mu;
    pthread_cond_t  cv;           /* a chunk is done, or busy dropped to 0     */
    int             busy;         /* tasks the helper is doing (under mu)      */
    int             pinned;       /* the helper started off the caller's CPU:  */
    cpu_set_t       cpus;         /* it gets the process's CPUs back (these)   */
} hash_job;

/* Steps of the whole-content hash while no chunk is published yet. */
enum { FULL_STEP = 64u << 10 };

static void job_unref(hash_job *j) {
    if (atomic_fetch_sub(&j->refs, 1) != 1) return;
    pthread_mutex_destroy(&j->mu);
    pthread_cond_destroy(&j->cv);
    free(j->ck);
    free(j);
}

/* Claim the next published chunk: 1 and *i, or 0 if none is published. */
static int claim(hash_job *j, size_t *i) {
    size_t k = atomic_load(&j->next);
    while (k < atomic_load_explicit(&j->n_pub, memory_order_acquire))
        if (atomic_compare_exchange_weak(&j->next, &k, k + 1)) {
            *i = k;
            return 1;
        }
    return 0;
}

/* Mark chunk a (and b) done and wake a caller waiting for it. */
static void mark_done(hash_job *j, pchunk *a, pchunk *b) {
    atomic_store_explicit(&a->done, 1, memory_order_release);
    if (b) atomic_store_explicit(&b->done, 1, memory_order_release);
    pthread_mutex_lock(&j->mu);
    pthread_cond_broadcast(&j->cv);
    pthread_mutex_unlock(&j->mu);
}

/* Hash chunk a's bytes into a's slot, fed to `pair` (with pn bytes of pp) or
 * alongside chunk b (b != NULL) in the same pass; a (and b) are marked done
 * even on failure (then the job is bad), so nobody waits for them forever. */
static int hash_chunk(hash_job *j, pchunk *a, blob_sha *pair, const uint8_t *pp, size_t pn, pchunk *b) {
    blob_sha ca, cb;
    int rc = blob_sha_init(&ca);
    if (rc == STRATA_OK && b && (rc = blob_sha_init(&cb))) blob_sha_free(&ca);
    if (rc) goto out;
    if (b) rc = blob_sha_update2(&ca, j->p + a->off, a->n, &cb, j->p + b->off, b->n);
    else if (pair) rc = blob_sha_update2(pair, pp, pn, &ca, j->p + a->off, a->n);
    else rc = blob_sha_update(&ca, j->p + a->off, a->n);
    if (rc) {
        blob_sha_free(&ca);
        if (b) blob_sha_free(&cb);
        goto out;
    }
    rc = blob_sha_final(&ca, a->sha);
    if (b) {
        int rc2 = blob_sha_final(&cb, b->sha);
        if (rc == STRATA_OK) rc = rc2;
    }
out:
    if (rc) atomic_store(&j->bad, 1);
    mark_done(j, a, b);
    return rc;
}

/* The whole-content task: feed p[0, len) to full in order, pairing each step
 * with a published chunk when there is one. */
static void full_task(hash_job *j) {
    size_t pos = 0, i;
    while (pos < j->len && !atomic_load(&j->bad)) {
        if (claim(j, &i)) {
            size_t m = j->ck[i].n < j->len - pos ? j->ck[i].n : j->len - pos;
            (void)hash_chunk(j, &j->ck[i], j->full, j->p + pos, m, NULL);   /* sets bad */
            pos += m;
        } else {
            size_t m = FULL_STEP < j->len - pos ? FULL_STEP : j->len - pos;
            if (blob_sha_update(j->full, j->p + pos, m)) atomic_store(&j->bad, 1);
            pos += m;
        }
    }
}

/* Claim one published chunk and hash it, with a second one in the same pass
 * when there is one: 1 if a chunk was claimed. */
static int chunk_task(hash_job *j) {
    size_t a, b;
    if (!claim(j, &a)) return 0;
    int two = claim(j, &b);
    (void)hash_chunk(j, &j->ck[a], NULL, NULL, 0, two ? &j->ck[b] : NULL);   /* sets bad */
    return 1;
}

static void *hash_main(void *arg) {
    hash_job *j = arg;
    if (j->pinned)   /* started where it should; now the scheduler may move it again */
        (void)pthread_setaffinity_np(pthread_self(), sizeof j->cpus, &j->cpus);
    pthread_mutex_lock(&j->mu);
    j->busy++;
    pthread_mutex_unlock(&j->mu);
    if (!atomic_exchange(&j->full_taken, 1)) full_task(j);
    while (chunk_task(j)) {}
    pthread_mutex_lock(&j->mu);
    if (--j->busy == 0) pthread_cond_broadcast(&j->cv);
    pthread_mutex_unlock(&j->mu);
    job_unref(j);
    return NULL;
}

/* Wait until chunk c is done or the job is bad; c was claimed by the helper. */
static void wait_chunk(hash_job *j, pchunk *c) {
    pthread_mutex_lock(&j->mu);
    while (!atomic_load_explicit(&c->done, memory_order_acquire) && !atomic_load(&j->bad))
        pthread_cond_wait(&j->cv, &j->mu);
    pthread_mutex_unlock(&j->mu);
}

/* End of the caller's part: take every task nobody claimed (a failed call
 * just drops them), then wait for the helper's. Afterwards the helper can
 * claim nothing, so it touches neither the caller's buffer nor `full`. */
static void caller_finish(hash_job *j, int failed) {
    size_t i;
    if (failed) {
        atomic_store(&j->bad, 1);
        while (claim(j, &i)) {}
        (void)atomic_exchange(&j->full_taken, 1);
    } else {
        if (!atomic_exchange(&j->full_taken, 1)) full_task(j);
        while (chunk_task(j)) {}
    }
    pthread_mutex_lock(&j->mu);
    while (j->busy) pthread_cond_wait(&j->cv, &j->mu);
    pthread_mutex_unlock(&j->mu);
}

static hash_job *job_new(blob_sha *full, const uint8_t *p, size_t len, size_t cap) {
    hash_job *j = calloc(1, sizeof *j);
    if (!j) return NULL;
    if (!(j->ck = calloc(cap, sizeof *j->ck))) { free(j); return NULL; }
    if (pthread_mutex_init(&j->mu, NULL)) { free(j->ck); free(j); return NULL; }
    if (pthread_cond_init(&j->cv, NULL)) { pthread_mutex_destroy(&j->mu); free(j->ck); free(j); return NULL; }
    j->full = full;
    j->p = p;
    j->len = len;
    j->cap = cap;
    for (size_t i = 0; i < cap; i++) atomic_init(&j->ck[i].done, 0);
    atomic_init(&j->n_pub, 0);
    atomic_init(&j->next, 0);
    atomic_init(&j->bad, 0);
    atomic_init(&j->full_taken, 0);
    atomic_init(&j->refs, 2);
    return j;
}

/* Cut the next chunk of the piece at *pos and publish it; 0 when the rest
 * is not to be cut now (shorter than max and not final). */
static int cut_next(strata_blob_writer *w, hash_job *j, size_t *pos, int final) {
    size_t len = j->len, n = atomic_load_explicit(&j->n_pub, memory_order_relaxed);
    if (*pos >= len || (!final && len - *pos < w->ck.max)) return 0;
    size_t cut = blob_chunker_cut(&w->ck, j->p + *pos, len - *pos);
    j->ck[n].off = *pos;
    j->ck[n].n = cut;
    atomic_store_explicit(&j->n_pub, n + 1, memory_order_release);
    *pos += cut;
    return 1;
}

/* The caller's loop on a piece: cut, store the chunks in order as soon as
 * their hash is known, hash what nobody has claimed, and wait for the helper
 * only when the next chunk to store is the helper's. Cutting comes first
 * while fewer than two published chunks are unclaimed (it makes work for
 * the helper), then storing (so the page writes of the chunks run while the
 * helper hashes), then the rest of the cutting, then hashing. Returns the
 * first error; *pos is where the cutting stopped. */
static int pipeline(strata_blob_writer *w, hash_job *j, size_t *pos, int final) {
    size_t i = 0;   /* next chunk to store */
    int cutting = 1;
    for (;;) {
        size_t n = atomic_load_explicit(&j->n_pub, memory_order_relaxed);
        if (cutting && n - atomic_load(&j->next) < 2 && (cutting = cut_next(w, j, pos, final))) continue;
        if (atomic_load(&j->bad)) return STRATA_ENOMEM;   /* a hash failed: EVP allocation */
        if (i < n && atomic_load_explicit(&j->ck[i].done, memory_order_acquire)) {
            int rc = emit_hashed(w, j->p + j->ck[i].off, j->ck[i].n, j->ck[i].sha);
            if (rc) return rc;
            i++;
            continue;
        }
        if (cutting && (cutting = cut_next(w, j, pos, final))) continue;
        if (i == n) return STRATA_OK;
        if (!atomic_load(&j->full_taken) && !atomic_exchange(&j->full_taken, 1)) {
            full_task(j);   /* the helper has not started: pair it with the chunks here */
            continue;
        }
        if (chunk_task(j)) continue;
        wait_chunk(j, &j->ck[i]);
    }
}

/* Start the helper thread on a CPU other than this thread's. Linux puts a
 * new thread on its parent's CPU and moves it to an idle one only at a
 * load-balancing tick: measured on the 2-vCPU machine (HZ 250), a thread
 * created by a busy caller began running 3.3 ms later on average, so the
 * caller had done every task itself; allowed only on the other CPUs of the
 * process it begins in ~40 us (median), and once running it takes back all
 * of the process's CPUs (hash_main), so a helper preempted there can still
 * be moved. With one CPU allowed, or when a call fails, it starts as a
 * plain thread. */
static int start_helper(pthread_t *th, hash_job *j) {
    pthread_attr_t at;
    cpu_set_t      cs;
    int            self = sched_getcpu(), rc;
    if (pthread_attr_init(&at)) return pthread_create(th, NULL, hash_main, j);
    if (self >= 0 && self < CPU_SETSIZE && sched_getaffinity(0, sizeof cs, &cs) == 0 && CPU_ISSET(self, &cs) &&
        CPU_COUNT(&cs) > 1) {
        j->cpus = cs;
        CPU_CLR(self, &cs);
        j->pinned = pthread_attr_setaffinity_np(&at, sizeof cs, &cs) == 0;
    }
    rc = pthread_create(th, &at, hash_main, j);
    pthread_attr_destroy(&at);
    return rc;
}

/* Feed a large piece, nothing buffered (w->fill == w->start), with a helper
 * thread. full has seen the content before the piece (inv. 5: with nothing
 * buffered, hashed == size); from here on it is the job's until
 * caller_finish returns, and emit leaves it alone because hashed covers the
 * piece. This thread cuts the piece (the same cuts as feed's direct path)
 * and publishes each chunk while the helper hashes the whole piece paired
 * with published chunks; chunks are stored in order as their hashes come
 * in (pipeline), so their page writes overlap the helper's hashing; the
 * tail shorter than max (unless final) is fed as usual once the helper is
 * done with the piece. Without a helper the piece goes through feed (emit
 * pairs each chunk with the whole-content hash). */
static int feed_async(strata_blob_writer *w, const uint8_t *p, size_t len, int final) {
    if (w->hashed != w->size) return feed(w, p, len, final);   /* cannot happen */
    hash_job *j = job_new(&w->full, p, len, len / w->ck.min + 1);
    pthread_t th;
    if (!j || start_helper(&th, j) != 0) {   /* no helper: hash here */
        if (j) { atomic_store(&j->refs, 1); job_unref(j); }
        return feed(w, p, len, final);
    }
    pthread_detach(th);
    w->hashed += len;
    size_t pos = 0;
    int rc = pipeline(w, j, &pos, final);
    caller_finish(j, rc != STRATA_OK);
    if (rc == STRATA_OK && atomic_load(&j->bad)) rc = STRATA_ENOMEM;
    if (rc == STRATA_OK) rc = feed(w, p + pos, len - pos, final);
    job_unref(j);
    return rc;
}

/* Helper governor. A helper thread pays off only when a core is free: on a
 * loaded machine it is preempted while it holds a task (often the
 * whole-content hash), and the call then waits a scheduler slice for it
 * (measured: median 1 MiB put 1.3 ms alone, 1.4-4 ms with a helper at load
 * 3 on 2 cores; 1.6 ms alone, 1.0 with it on an idle core; 64 MiB 105 ms
 * alone, 66 ms with it). So the writer measures both: g_gov keeps, per size
 * class (pieces below GOV_BIG, and from GOV_BIG on: a helper's start and
 * tail weigh differently), the time per KiB of the last GOV_KEEP large
 * pieces fed without (way 0) and with (way 1) a helper. Until both ways of
 * a class have GOV_KEEP samples the ways alternate (large pieces: the helper,
 * alone only every GOV_EXPLORE-th piece, want_helper; one slow first sample,
 * e.g. while another thread of the process spins, must not decide for
 * good); then each piece goes with a helper if that way's median is lower
 * by more than 1/8 (when a helper loses, it loses by a lot), and every
 * GOV_EXPLORE-th piece of the class the other way (every GOV_EXPLORE_FAR-th
 * when it is 1.5x slower or more: a probe of a helper on a loaded machine
 * costs that call up to a few ms), so the choice follows the load within a
 * few dozen calls. Medians, because a preempted call takes several times
 * the usual time. Shared by every writer of the process under one mutex,
 * taken twice per piece of >= ASYNC_MIN bytes. Only the speed depends on
 * this, never a result. mode (tests): -1 measure, 0 never, 1 always. */
enum { GOV_KEEP = 3, GOV_EXPLORE = 12, GOV_EXPLORE_FAR = 48 };
#define GOV_BIG ((size_t)4 << 20)
static struct {
    pthread_mutex_t mu;
    uint64_t        rate[2][2][GOV_KEEP];   /* [class][way]: ns per KiB, 0 = no sample */
    unsigned        next[2][2], turn[2];
    int             mode;
} g_gov = { PTHREAD_MUTEX_INITIALIZER, { { { 0 } } }, { { 0 } }, { 0 }, -1 };

void blob_writer_helper(int mode) {
    pthread_mutex_lock(&g_gov.mu);
    g_gov.mode = mode < 0 ? -1 : mode > 0;
    pthread_mutex_unlock(&g_gov.mu);
}

/* Median of a class's samples of way (under mu); *n gets their number. */
static uint64_t gov_median(int cls, int way, size_t *n) {
    uint64_t v[GOV_KEEP];
    *n = 0;
    for (size_t i = 0; i < GOV_KEEP; i++) {
        uint64_t r = g_gov.rate[cls][way][i];
        if (!r) continue;
        size_t k = (*n)++;
        for (; k > 0 && v[k - 1] > r; k--) v[k] = v[k - 1];
        v[k] = r;
    }
    return *n ? v[*n / 2] : 0;
}

static int want_helper(int cls) {
    pthread_mutex_lock(&g_gov.mu);
    int way = g_gov.mode;
    if (way < 0) {
        size_t ns, nd;
        uint64_t solo = gov_median(cls, 0, &ns), duo = gov_median(cls, 1, &nd);
        if (cls == 1 && ns < GOV_KEEP) {
            /* large pieces: the helper, and alone only every GOV_EXPLORE-th
             * until that way has its samples (a 64 MiB piece took 57-67 ms
             * with a helper and 90-105 ms alone even at load 5: long enough
             * for both threads to get their share; alternating from the
             * start spent half of a short run's pieces alone) */
            way = ++g_gov.turn[cls] % GOV_EXPLORE != 0;
        } else if (ns < GOV_KEEP || nd < GOV_KEEP) {
            way = nd <= ns;   /* warm-up: alternate, helper first */
        } else {
            way = duo + duo / 8 < solo;   /* a helper must win clearly: its tail is long */
            uint64_t lo = way ? duo : solo, hi = way ? solo : duo;
            unsigned every = hi >= lo + lo / 2 ? GOV_EXPLORE_FAR : GOV_EXPLORE;
            if (++g_gov.turn[cls] % every == 0) way = !way;
        }
    }
    pthread_mutex_unlock(&g_gov.mu);
    return way;
}

static uint64_t now_ns(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t)ts.tv_sec * 1000000000u + (uint64_t)ts.tv_nsec;
}

static void note_rate(int cls, int way, uint64_t ns, size_t len) {
    pthread_mutex_lock(&g_gov.mu);
    g_gov.rate[cls][way][g_gov.next[cls][way]++ % GOV_KEEP] = ns * 1024 / len + 1;
    pthread_mutex_unlock(&g_gov.mu);
}

static int write_any(strata_blob_writer *w, const void *data, size_t len, int final) {
    if (!w || w->magic != WRITER_MAGIC || w->state != W_OPEN || (!data && len)) return STRATA_EINVAL;
    if (len == 0) return STRATA_OK;
    /* only a write that cuts a chunk writes rows (invariant 7) */
    if (w->fill - w->start + len >= w->ck.max) {
        int rc = check_rows(w);
        if (rc) {
            w->state = W_FAILED;
            return rc;
        }
    }
    int rc, big = len >= ASYNC_MIN && w->fill == w->start && (final || len >= w->ck.max);
    if (big) {
        int cls = len >= GOV_BIG, helper = want_helper(cls);
        uint64_t t0 = now_ns();
        rc = helper ? feed_async(w, data, len, final) : feed(w, data, len, final);
        if (rc == STRATA_OK) note_rate(cls, helper, now_ns() - t0, len);
    } else {
        rc = feed(w, data, len, final);
    }
    if (rc == STRATA_OK) w->size += len;
    if (!w->oneshot) {   /* also after a failure: the chunks it stored are counted (inv. 6) */
        int frc = flush_stats(w);
        if (rc == STRATA_OK) rc = frc;
    }
    if (rc) w->state = W_FAILED;
    return rc;
}

int strata_blob_write(strata_blob_writer *w, const void *data, size_t len) {
    return write_any(w, data, len, 0);
}

/* Remove everything w wrote: chunk list (and chunks), pending row, count.
 * The collected counter changes are written first, so the release below
 * subtracts from counters that include every chunk w added. */
static int undo(strata_blob_writer *w) {
    strata_table *t;
    uint8_t k[8];
    (void)check_rows(w);   /* sets gone: then nothing of w is left (inv. 7) */
    if (w->gone) return STRATA_OK;
    int rc = flush_stats(w);
    if (rc || (rc = blob_chunks_release(w->txn, w->id))) return rc;
    if (w->oneshot) return STRATA_OK;
    if ((rc = blob_tab(w->txn, BT_PENDING, 1, &t))) return rc;
    le64_put(k, w->id);
    if ((rc = strata_del(t, blob_sl(k, 8)))) return rc;
    return blob_stats_add(w->txn, ST_N_PENDING, (uint64_t)-1);
}

/* Put the whole content's SHA-256 into w->meta.sha (all content emitted). */
static int content_hash(strata_blob_writer *w) {
    if (w->single) return w->n_chunks == 1 && w->emitted == w->size ? STRATA_OK : STRATA_EINVAL;   /* cannot happen */
    if (w->hashed != w->size) return STRATA_EINVAL;   /* cannot happen */
    return blob_sha_final(&w->full, w->meta.sha);
}

/* Write the meta row and indexes, drop the pending row, update counters
 * (w->meta.sha is the content hash). A failure after the meta row was
 * written (e.g. the content index's backfill meeting a damaged record)
 * leaves a half-recorded blob that undo does not remove: the txn must abort. */
static int record(strata_blob_writer *w) {
    uint8_t k[8], *val = NULL;
    size_t vlen;
    strata_table *t;
    int rc;
    w->meta.size = w->size;
    w->meta.hlc = w->hlc;
    w->meta.n_chunks = w->n_chunks;
    rc = blob_meta_encode(&w->meta, &val, &vlen);
    if (rc || (rc = blob_tab(w->txn, BT_META, 1, &t))) goto out;
    le64_put(k, w->id);
    if ((rc = strata_put(t, blob_sl(k, 8), blob_sl(val, vlen)))) goto out;
    if ((rc = blob_index_add(w->txn, w->id, w->meta.ns, w->hlc, w->meta.sha))) goto half;
    if (!w->oneshot) {
        if ((rc = blob_tab(w->txn, BT_PENDING, 1, &t)) || (rc = strata_del(t, blob_sl(k, 8)))) goto half;
        w->dst[ST_N_PENDING] -= 1;
    }
    w->dst[ST_N_BLOBS] += 1;
    w->dst[ST_LOGICAL] += w->size;
    rc = flush_stats(w);
half:
    (void)blob_fail(w->txn, rc);
out:
    free(val);
    return rc;
}

int strata_blob_writer_finish(strata_blob_writer *w, uint64_t *id) {
    if (!w || w->magic != WRITER_MAGIC) return STRATA_EINVAL;
    int rc = w->state == W_OPEN ? check_rows(w) : STRATA_EINVAL;
    if (rc == STRATA_OK) rc = drain(w, 1);
    if (rc == STRATA_OK && w->emitted != w->size) rc = STRATA_EINVAL;   /* cannot happen */
    if (rc == STRATA_OK) rc = content_hash(w);
    uint64_t same = 0;   /* by_content: the finished blob with this content */
    if (rc == STRATA_OK && w->by_content) {
        rc = strata_blob_find(w->txn, w->meta.sha, &same);
        if (rc == STRATA_NOTFOUND) {
            rc = STRATA_OK;
            same = 0;
        }
    }
    if (rc == STRATA_OK && !same) rc = record(w);
    int urc;
    if ((rc || same) && (urc = undo(w))) {   /* same: w's chunks and pending row go again */
        (void)blob_fail(w->txn, urc);       /* half-recorded or half-undone: the txn must abort */
        if (rc == STRATA_OK) rc = urc;
    }
    if (rc == STRATA_OK && id) *id = same ? same : w->id;
    writer_free(w);
    return rc;
}

void strata_blob_writer_abort(strata_blob_writer *w) {
    if (!w || w->magic != WRITER_MAGIC) return;
    (void)blob_fail(w->txn, undo(w));   /* chunks half-released: the txn must abort */
    writer_free(w);
}

void strata_blob_writer_free(strata_blob_writer *w) {
    if (!w || w->magic != WRITER_MAGIC) return;
    writer_free(w);
}

int strata_blob_put(strata_txn *txn, const strata_blob_opts *opts, const void *data, size_t len,
                    uint64_t *id) {
    strata_blob_writer *w;
    if (!txn || (!data && len)) return STRATA_EINVAL;
    int rc = writer_begin(txn, opts, 1, &w);
    if (rc) return rc;
    if ((rc = write_any(w, data, len, 1))) {
        strata_blob_writer_abort(w);
        return rc;
    }
    return strata_blob_writer_finish(w, id);
}
