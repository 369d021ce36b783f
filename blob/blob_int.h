/* blob/blob_int.h - private declarations of the blob layer: table names,
 * record offsets, byte helpers and the functions shared between its files.
 * Normative byte tables: docs/BLOBS.md (each constant below cites its section).
 * Invariants of the whole layer:
 *  (1) everything is stored in ordinary tables through the public API, inside
 *      the caller's transaction; nothing is cached across calls except by the
 *      open writer and reader handles;
 *  (2) for every chunk, its refs count == number of chunk-list rows naming
 *      it, and its data row exists iff its refs row does;
 *  (3) the stats row equals what a full scan would count (blob_check)
 *      whenever a public call returns (calls collect counter deltas and
 *      write them once: blob_stats_apply);
 *  (4) a finished blob has a meta row, a namespace row, a time row and
 *      (where blob:sha exists, index.c) a content row; a blob being written
 *      by a streaming writer has a pending row instead of those (strata_blob_put, never observable half-written, has
 *      neither until it finishes);
 *  (5) lineage edges are stored twice (out and in) and only between finished
 *      blobs; deleting a blob removes both copies of each of its edges;
 *  (6) a blob's embedding is one index row (blob:embed, id -> dim) and one
 *      row of the vector table of that dimension (blob:vec:<dim>, id ->
 *      dim x f32), both or neither, and only for a finished blob. */
#ifndef STRATA_BLOB_INT_H
#define STRATA_BLOB_INT_H

#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include "blob.h"

/* An operation that failed (rc != 0) after some of its writes leaves txn
 * abort-only (db/db.h db_txn_fail), so nothing half-done can be committed;
 * returns rc. (tables.c) */
int blob_fail(strata_txn *txn, int rc);
/* db/db.h db_txn_counter "__blob:writers", which only savepoint rollbacks
 * change; NULL when out of memory. (tables.c) */
uint64_t *blob_rollback_counter(strata_txn *txn);

/* Tables, docs/BLOBS.md "Tables". Indexes into blob_table_names[]. */
enum {
    BT_META = 0,    /* u64 id -> meta record                          */
    BT_CLIST,       /* (id BE, offset BE) -> (sha256, len)            */
    BT_CHUNKS,      /* (sha256, 0) -> bytes; (sha256, 1) -> (count, len) */
    BT_STATS,       /* "stats" -> counters                            */
    BT_PENDING,     /* u64 id -> created HLC, while being written     */
    BT_TAGS,        /* (u8 len, tag, id BE) -> empty                  */
    BT_BTAGS,       /* (id BE, tag) -> empty                          */
    BT_NS,          /* (u8 len, ns, id BE) -> empty                   */
    BT_TIME,        /* (hlc BE, id BE) -> empty                       */
    BT_EMBED,       /* u64 id -> dim u32 (the vector: blob:vec:<dim>) */
    BT_EOUT,        /* (from BE, to BE, rel) -> context               */
    BT_EIN,         /* (to BE, from BE, rel) -> empty                 */
    BT_SHA,         /* (content sha256, id BE) -> empty               */
    BT_COUNT
};

/* docs/BLOBS.md "blob:meta". */
enum {
    META_OFF_VERSION = 0, META_OFF_FLAGS = 1, META_OFF_CT_LEN = 2, META_OFF_NS_LEN = 3,
    META_OFF_LABEL_LEN = 4, META_OFF_RESERVED = 6, META_OFF_SIZE = 8, META_OFF_HLC = 16,
    META_OFF_NCHUNKS = 24, META_OFF_SHA = 32, META_HDR = 64
};
_Static_assert(META_OFF_SHA + 32 == META_HDR, "meta header ends after the content hash");
#define META_VERSION 1u
#define META_FLAG_FIXED 0x1u

/* docs/BLOBS.md "blob:chunklist" and "blob:chunks": a chunk's two rows are
 * keyed by its SHA-256 and a kind byte (CK_DATA sorts first). */
enum { CLIST_KEY = 16, CLIST_VAL = 36, REFS_VAL = 16, SHA_LEN = 32, CHUNK_KEY = 33 };
enum { CK_DATA = 0, CK_REFS = 1 };
/* docs/BLOBS.md "blob:stats": six u64 LE counters. */
enum { ST_NEXT_ID = 0, ST_N_BLOBS, ST_LOGICAL, ST_N_CHUNKS, ST_STORED, ST_N_PENDING, ST_COUNT };
enum { EDGE_KEY = 17 };
/* docs/BLOBS.md "Embeddings": a blob:embed value is the dimension, u32 LE;
 * the vector itself is the row of the blob in the STRATA_VECTOR table
 * BLOB_VEC_PREFIX "<dim>" (decimal, no leading zero). */
enum { EMBED_VAL = 4, BLOB_VEC_NAME_MAX = 32 };
#define BLOB_VEC_PREFIX "blob:vec:"

#define BLOB_DEF_MIN (16u << 10)
#define BLOB_DEF_AVG (64u << 10)
#define BLOB_DEF_MAX (256u << 10)
#define BLOB_MIN_CHUNK 64u

/* ---- byte helpers ---- */
static inline void be64_put(uint8_t *p, uint64_t v) {
    for (int i = 7; i >= 0; i--) { p[i] = (uint8_t)v; v >>= 8; }
}
static inline uint64_t be64_get(const uint8_t *p) {
    uint64_t v = 0;
    for (int i = 0; i < 8; i++) v = v << 8 | p[i];
    return v;
}
static inline void le64_put(uint8_t *p, uint64_t v) {
    for (int i = 0; i < 8; i++) { p[i] = (uint8_t)v; v >>= 8; }
}
static inline uint64_t le64_get(const uint8_t *p) {
    uint64_t v = 0;
    for (int i = 7; i >= 0; i--) v = v << 8 | p[i];
    return v;
}
static inline void le32_put(uint8_t *p, uint32_t v) {
    for (int i = 0; i < 4; i++) { p[i] = (uint8_t)v; v >>= 8; }
}
static inline uint32_t le32_get(const uint8_t *p) {
    return (uint32_t)p[0] | (uint32_t)p[1] << 8 | (uint32_t)p[2] << 16 | (uint32_t)p[3] << 24;
}
static inline void le16_put(uint8_t *p, uint16_t v) { p[0] = (uint8_t)v; p[1] = (uint8_t)(v >> 8); }
static inline uint16_t le16_get(const uint8_t *p) { return (uint16_t)(p[0] | p[1] << 8); }
static inline strata_slice blob_sl(const void *p, size_t n) { strata_slice s = { p, n }; return s; }

#define BLOB_MUST __attribute__((warn_unused_result))

/* ---- tables.c ---- */
/* Open table `which` in txn. create != 0 creates it (write transactions);
 * otherwise a missing table is STRATA_NOTFOUND. */
BLOB_MUST int blob_tab(strata_txn *txn, int which, int create, strata_table **out);
/* Counters row; a missing row reads as zeros with next_id 1. */
BLOB_MUST int blob_stats_load(strata_txn *txn, uint64_t st[ST_COUNT]);
BLOB_MUST int blob_stats_store(strata_txn *txn, const uint64_t st[ST_COUNT]);
/* Add delta (two's complement) to counter idx. */
BLOB_MUST int blob_stats_add(strata_txn *txn, int idx, uint64_t delta);
/* Add every delta[i] (two's complement) to counter i in one load and store;
 * nothing is written when all are zero. STRATA_ECORRUPT if a counter would
 * go below zero. */
BLOB_MUST int blob_stats_apply(strata_txn *txn, const uint64_t delta[ST_COUNT]);
/* The HLC of txn; STRATA_EINVAL for a bad txn. */
BLOB_MUST int blob_txn_hlc(strata_txn *txn, uint64_t *hlc);
/* Prefix scan: call fn(ctx, key, val) for each entry of t whose key starts
 * with prefix, in key order; fn returns non-zero to stop (returned). */
BLOB_MUST int blob_scan_prefix(strata_table *t, const uint8_t *prefix, size_t plen,
                               int (*fn)(void *ctx, strata_slice k, strata_slice v), void *ctx);

/* ---- sha.c ---- */
/* One-shot SHA-256 through OpenSSL: what every check uses. */
BLOB_MUST int blob_sha256(const void *data, size_t len, uint8_t out[SHA_LEN]);
struct evp_md_ctx_st;
/* The writer's streaming SHA-256: the SHA-NI kernel where the CPU has it
 * (evp == NULL), else an OpenSSL context. Init, any number of updates, then
 * final (which also releases it) or free. */
typedef struct blob_sha {
    uint32_t               h[8];     /* kernel: chaining value                  */
    uint64_t               total;    /* kernel: bytes fed                       */
    uint8_t                buf[64];  /* kernel: the partial block               */
    size_t                 nbuf;
    struct evp_md_ctx_st  *evp;      /* OpenSSL path, else NULL                 */
} blob_sha;
BLOB_MUST int blob_sha_init(blob_sha *s);
BLOB_MUST int blob_sha_update(blob_sha *s, const void *data, size_t len);
/* Feed da[0, na) to a and db[0, nb) to b (two independent hashes): the blocks
 * both have run interleaved, about the cost of one. */
BLOB_MUST int blob_sha_update2(blob_sha *a, const void *da, size_t na, blob_sha *b, const void *db,
                               size_t nb);
BLOB_MUST int blob_sha_final(blob_sha *s, uint8_t out[SHA_LEN]);
void blob_sha_free(blob_sha *s);
/* One-shot with the writer's implementation. */
BLOB_MUST int blob_sha_oneshot(const void *data, size_t len, uint8_t out[SHA_LEN]);
/* Tests: use the kernel (ni != 0, if the CPU has it) or OpenSSL for contexts
 * initialised from now on; returns 1 if the kernel is in use. Not for
 * concurrent use with writers. */
int blob_sha_select(int ni);
/* "sha-ni" or "openssl". */
const char *blob_sha_kernel(void);

/* ---- writer.c ---- */
/* Tests: -1 (default) lets each large piece choose between hashing on the
 * calling thread alone or with a helper thread by the measured speed of
 * both; 0 never uses a helper, 1 always (if a thread can be started). */
void blob_writer_helper(int mode);

/* ---- chunker.c ---- */
extern const uint64_t blob_gear[256];
typedef struct blob_chunker {
    int      fixed;           /* 1: every chunk is avg bytes (the last shorter) */
    uint32_t min, avg, max;
    uint64_t mask_s, mask_l;  /* harder mask before avg, easier after       */
} blob_chunker;
/* Validate opts' chunk sizes and fill c. Returns STRATA_OK or STRATA_EINVAL. */
BLOB_MUST int blob_chunker_init(blob_chunker *c, const strata_blob_opts *opts);
/* Length of the first chunk of p[0..n): n if no boundary is found in the
 * first min(n, max) bytes and n <= max, else a value in [min, max] (or n when
 * n <= min). Only the first max bytes are looked at, so the answer for
 * n >= max does not depend on n: the cut points are the same however the
 * content is split into writes. */
size_t blob_chunker_cut(const blob_chunker *c, const uint8_t *p, size_t n);
/* The same search in steps, so that it can run inside the hashing loop
 * (blob_sha_update2_scan): begin, any number of windows/advance, finish.
 * Its cut is exactly blob_chunker_cut's. */
typedef struct blob_scan {
    const uint8_t *p;
    size_t         i;          /* next byte to look at                        */
    size_t         mid, end;   /* mask_s before mid, mask_l from mid; cut at end */
    uint64_t       h;          /* gear hash after byte i - 1                  */
    int            done;       /* cut is known                                */
    size_t         cut;
} blob_scan;
void blob_scan_begin(const blob_chunker *c, blob_scan *s, const uint8_t *p, size_t n);
/* Whole 64-byte windows left from s->i under one mask (*mask), scanning a
 * region's last bytes (< 64) itself; 0 when the cut is known. */
size_t blob_scan_windows(const blob_chunker *c, blob_scan *s, uint64_t *mask);
/* k windows from s->i were scanned with mask (<= blob_scan_windows): no hit
 * in any (hit 0, h the state after them), or the first hit is in the k-th
 * (hit 1, h the state at that window's start; the byte is found here). */
void blob_scan_advance(const blob_chunker *c, blob_scan *s, size_t k, uint64_t h, int hit, uint64_t mask);
/* Scan what is left; the cut. */
size_t blob_scan_finish(const blob_chunker *c, blob_scan *s);
/* (sha.c) blob_sha_update2, advancing scan s (begun with c) by one 64-byte
 * window per block pair in the same loop: the gear hash runs on the ports
 * the SHA instructions leave idle (~65% of its time hidden). The scan may
 * be left unfinished (blob_scan_finish does the rest). c == NULL: no scan
 * (this is blob_sha_update2). */
BLOB_MUST int blob_sha_update2_scan(blob_sha *a, const void *da, size_t na, blob_sha *b, const void *db,
                                    size_t nb, const blob_chunker *c, blob_scan *s);

/* ---- chunks.c ---- */
/* The key of a chunk's data (CK_DATA) or reference row (CK_REFS). */
void blob_ckey(uint8_t k[CHUNK_KEY], const uint8_t sha[SHA_LEN], uint8_t kind);
/* Reference chunk (sha, data, len): insert it with count 1, or count + 1.
 * A new chunk adds 1 to delta[ST_N_CHUNKS] and len to delta[ST_STORED]; the
 * caller writes the counters with blob_stats_apply. */
BLOB_MUST int blob_chunk_ref(strata_txn *txn, const uint8_t sha[SHA_LEN], const void *data,
                             size_t len, uint64_t delta[ST_COUNT]);
/* Drop one reference; the chunk is deleted when its count reaches zero (and
 * its number and length subtracted from delta, as blob_chunk_ref). */
BLOB_MUST int blob_chunk_unref(strata_txn *txn, const uint8_t sha[SHA_LEN], uint64_t delta[ST_COUNT]);
/* Release every chunk-list row of blob id (unref each chunk, delete rows,
 * update the counters once). */
BLOB_MUST int blob_chunks_release(strata_txn *txn, uint64_t id);

/* ---- meta.c ---- */
typedef struct blob_meta {
    uint8_t        flags;
    uint64_t       size, hlc, n_chunks;
    uint8_t        sha[SHA_LEN];
    strata_slice   ct, ns, label;   /* point into the value */
} blob_meta;
/* Decode a meta value; STRATA_ECORRUPT when malformed. */
BLOB_MUST int blob_meta_decode(strata_slice v, blob_meta *m);
/* Encode m into a malloc'd buffer. */
BLOB_MUST int blob_meta_encode(const blob_meta *m, uint8_t **out, size_t *len);
/* Load blob id's meta. STRATA_NOTFOUND if no finished blob has that id. */
BLOB_MUST int blob_meta_load(strata_txn *txn, uint64_t id, blob_meta *m);
/* STRATA_OK if a finished blob id exists, else STRATA_NOTFOUND (or an error). */
BLOB_MUST int blob_exists(strata_txn *txn, uint64_t id);

/* ---- index.c ---- */
/* Write blob id's namespace, time and content (blob:sha) rows. */
BLOB_MUST int blob_index_add(strata_txn *txn, uint64_t id, strata_slice ns, uint64_t hlc,
                             const uint8_t sha[SHA_LEN]);
/* Remove blob id's namespace, time, content and tag rows. */
BLOB_MUST int blob_index_remove(strata_txn *txn, uint64_t id, const blob_meta *m);
/* Key helper: u8 len, bytes, id BE into k (>= 1 + 255 + 8 bytes); returns its length. */
size_t blob_lkey(uint8_t *k, strata_slice name, uint64_t id);

/* ---- embed.c / lineage.c ---- */
/* Remove blob id's embedding (index row and vector row) if it has one.
 * STRATA_ECORRUPT when the index row is malformed or its vector row is
 * missing. */
BLOB_MUST int blob_embed_remove(strata_txn *txn, uint64_t id);
/* Name of the vector table of dimension dim into buf; its length. */
size_t blob_vec_name(char buf[BLOB_VEC_NAME_MAX], uint32_t dim);
/* The dimension a table name names (BLOB_VEC_PREFIX, then 1..STRATA_VEC_MAX_DIM
 * in decimal without a leading zero), or 0 when it is no such name. */
uint32_t blob_vec_dim_of(const char *name);
/* blob_vec_tab and blob_embed_decode: blob.h (query/ reads embeddings too). */
BLOB_MUST int blob_edges_remove(strata_txn *txn, uint64_t id);

/* ---- idset.c: an open-addressing set of u64 ids with a parent per id ---- */
typedef struct blob_idset {
    uint64_t *keys, *parent;
    size_t    cap, n;
} blob_idset;
/* Insert id (not 0) with its parent; 1 if inserted, 0 if present, <0 error. */
int blob_idset_add(blob_idset *s, uint64_t id, uint64_t parent);
/* Parent of id, or 0 if absent. */
uint64_t blob_idset_parent(const blob_idset *s, uint64_t id);
void blob_idset_free(blob_idset *s);

#endif /* STRATA_BLOB_INT_H */
