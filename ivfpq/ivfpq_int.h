/* ivfpq/ivfpq_int.h - private interface of the IVF-PQ layer: the in-memory
 * handle, the byte formats of its tables (normative: docs/IVFPQ.md), k-means,
 * product quantization and the list-scan kernels.
 *
 * Invariants:
 *  (1) Every byte of an index lives in the internal tables "__ivf:NAME:*"; the
 *      handle only caches what it read in its own transaction (config,
 *      centroids, codebooks) plus tables derived from them.
 *  (2) In the lists table, the blocks of one cluster have disjoint, increasing
 *      id ranges; a block's key is (cluster u32 BE, first id u64 BE), its ids
 *      are strictly increasing and it holds 1..block_cap entries.
 *  (3) Every stored vector id has exactly one assignment row naming the
 *      cluster whose block holds it; its L2 term and (keep_raw) raw vector
 *      live in that block next to its code.
 *  (4) Decoders never trust stored bytes: lengths, counts, magic, versions and
 *      checksums are checked and a mismatch is STRATA_ECORRUPT.
 */
#ifndef STRATA_IVFPQ_INT_H
#define STRATA_IVFPQ_INT_H

#include <stddef.h>
#include <stdint.h>

#include "strata.h"
#include "vector.h"

#define IVF_MAGIC        0x31465649u   /* "IVF1" little-endian */
#define IVF_HANDLE_MAGIC 0x49564648u
#define IVF_VERSION      2u          /* config record and posting blocks */
#define IVF_KSUB         256u          /* codewords per subspace */
#define IVF_NAME_MAX     200u

/* Config record: docs/IVFPQ.md "Config record" (normative). */
enum {
    CFG_OFF_MAGIC = 0, CFG_OFF_VERSION = 4, CFG_OFF_FLAGS = 6, CFG_OFF_DIM = 8,
    CFG_OFF_METRIC = 12, CFG_OFF_NLIST = 16, CFG_OFF_M = 20, CFG_OFF_NPROBE = 24,
    CFG_OFF_BLOCKCAP = 28, CFG_OFF_STATE = 32, CFG_OFF_ITERS = 36, CFG_OFF_NVEC = 40,
    CFG_OFF_SEED = 48, CFG_OFF_RESERVED = 56, CFG_OFF_CHECK = 60, CFG_SIZE = 64
};
_Static_assert(CFG_OFF_CHECK + 4 == CFG_SIZE, "check word ends the config record");
enum { CFG_F_RAW = 0x1, CFG_F_ATTR = 0x2, CFG_F_KNOWN = 0x3 };
enum { IVF_STATE_EMPTY = 0, IVF_STATE_TRAINED = 1 };

/* Posting block: docs/IVFPQ.md "Posting block" (normative). */
enum { BLK_OFF_VERSION = 0, BLK_OFF_FLAGS = 1, BLK_OFF_N = 2, BLK_OFF_CLUSTER = 4,
       BLK_OFF_M = 8, BLK_OFF_DIM = 12, BLK_HDR = 16 };
enum { BLK_F_ATTR = 0x1, BLK_F_TERM = 0x2, BLK_F_RAW = 0x4 };
/* Largest posting block the config may imply (block_cap full entries). */
#define IVF_BLOCK_MAX_BYTES (256u << 20)
enum { LIST_KEY_LEN = 12, ASSIGN_VAL_LEN = 12 };

/* Decoded config. */
typedef struct ivf_config {
    uint32_t flags;      /* CFG_F_*                                  */
    uint32_t dim;
    uint32_t metric;     /* STRATA_METRIC_L2, IP or COSINE           */
    uint32_t nlist;
    uint32_t m;          /* PQ subspaces; dim % m == 0               */
    uint32_t nprobe;     /* default nprobe, 1..nlist                 */
    uint32_t block_cap;  /* max entries per posting block            */
    uint32_t state;      /* IVF_STATE_*                              */
    uint32_t iters;      /* k-means iterations used by train         */
    uint64_t n_vectors;
    uint64_t seed;
} ivf_config;

/* What a posting block of an index holds, from its config. */
typedef struct ivf_blayout {
    uint32_t m;
    uint32_t raw_dim;      /* dim when raw vectors are kept, else 0   */
    int      attr;         /* u64 attribute per entry                  */
    int      term;         /* f32 L2 term per entry (metric L2)        */
} ivf_blayout;

/* A decoded view of a posting block: pointers into the stored value. */
typedef struct ivf_block {
    uint32_t       n;
    uint32_t       cluster;
    uint32_t       raw_dim;   /* floats per raw vector, 0 if none       */
    const uint8_t *ids;    /* n u64 LE                               */
    const uint8_t *attrs;  /* n u64 LE, or NULL                      */
    const uint8_t *terms;  /* n f32 LE, or NULL                      */
    const uint8_t *codes;  /* m * n bytes, subspace-major            */
    const uint8_t *raw;    /* n * raw_dim f32 LE (4-byte aligned
                              within the value), or NULL             */
} ivf_block;

/* A PQ candidate: its raw vector (inside its posting block, valid while
 * the transaction reads that snapshot) rides along for the rerank. */
typedef struct ivf_cand {
    float          dist;
    uint64_t       id;
    const uint8_t *raw;    /* raw_dim f32 LE, or NULL                */
} ivf_cand;

/* Heap entry: key = order-preserving bits of dist << 32 | slot, and the id
 * (the tie-break), so a comparison needs no other memory. */
typedef struct ivf_hkey {
    uint64_t key;
    uint64_t id;
} ivf_hkey;

/* Bounded max-heap of candidates, ordered like vec_topk: (dist, id)
 * lexicographically, the worst at the root (ties go to the smaller id).
 * The heap moves 16-byte keys with branch-free comparisons; the candidate
 * records stay in their slot of `side`. (Measured against a heap of the
 * 24-byte records and against a select-when-full pool: both slower.) */
typedef struct ivf_heap {
    ivf_hkey *key;        /* k entries, heap order                       */
    ivf_cand *side;       /* k candidate records, by slot               */
    size_t    k, n;
    float     thr;        /* the root's dist when n == k, else +inf      */
} ivf_heap;

/* Per-handle search scratch, allocated on the first search and reused (sizes
 * follow the config, which is fixed once the handle is open; probe and cand
 * grow with nprobe and the candidate depth). Freed by strata_ivf_close. */
typedef struct ivf_scratch {
    float      *q;        /* dim: query (normalized for cosine)        */
    float      *cd;       /* nlist: coarse distances                    */
    float      *qdot;     /* m*256: q_j . w                             */
    float      *lut;      /* m*256: the current table                   */
    float      *smin;     /* m+1: suffix sums of the table minima       */
    float      *lo, *hi;  /* m: per-table minimum and maximum           */
    uint8_t    *qlut;     /* m*256: quantized table                     */
    float      *raw;      /* dim: one raw vector (rerank, unaligned)    */
    strata_hit *probe;    /* probe_cap: chosen clusters                 */
    ivf_cand   *cand;     /* cand_cap: PQ candidates (heap slots)       */
    ivf_hkey   *ckey;     /* cand_cap: their heap keys                  */
    ivf_cand   *sorted;   /* cand_cap: the candidates, nearest first    */
    size_t      probe_cap, cand_cap;
} ivf_scratch;

/* The handle (strata_ivf). Valid while txn is open; owner thread of txn. */
struct strata_ivf {
    uint32_t      magic;           /* IVF_HANDLE_MAGIC while open         */
    strata_txn   *txn;
    uint64_t     *writes;          /* db_txn_counter(txn, "__ivf:NAME"): bumped
                                      by every handle's writes to the index
                                      and by savepoint rollbacks           */
    uint64_t      writes_seen;     /* its value when the cache was current  */
    int           stale;           /* a reload failed: retry at the next use */
    strata_table *t_config, *t_cent, *t_cb, *t_lists, *t_assign;
    ivf_config    cfg;
    ivf_blayout   lay;             /* block layout, from cfg              */
    float        *centroids;       /* nlist * dim, when trained           */
    float        *cnorm;           /* nlist squared norms                 */
    float        *codebooks;       /* m * 256 * dsub, when trained        */
    float        *cb_t;            /* m * dsub * 256: codebooks transposed
                                      per subspace (cb_t[j][t][w] = w_t),
                                      built lazily for the query tables   */
    ivf_scratch  *scratch;         /* search buffers, or NULL             */
    const vec_kernels *kt;
    char          name[IVF_NAME_MAX + 1];
};

/* ---- checksum and byte helpers (format.c) ---- */
uint32_t ivf_check32(const uint8_t *p, size_t len);
void     ivf_be32_put(uint8_t *p, uint32_t v);
uint32_t ivf_be32_get(const uint8_t *p);
void     ivf_be64_put(uint8_t *p, uint64_t v);
uint64_t ivf_be64_get(const uint8_t *p);
uint32_t ivf_le32_get(const uint8_t *p);
void     ivf_le32_put(uint8_t *p, uint32_t v);
uint64_t ivf_le64_get(const uint8_t *p);
void     ivf_le64_put(uint8_t *p, uint64_t v);

/* ---- record codecs (format.c); *_get return STRATA_OK or STRATA_ECORRUPT ---- */
void ivf_config_put(uint8_t out[CFG_SIZE], const ivf_config *c);
int  ivf_config_get(const uint8_t *p, size_t len, ivf_config *c);
/* Check a config's parameters (also used for user input): STRATA_OK or
 * STRATA_EINVAL. */
int  ivf_config_check(const ivf_config *c);
/* A row of n floats followed by a u32 LE check word: 4n + 4 bytes. */
size_t ivf_row_size(size_t n);
void   ivf_row_put(uint8_t *out, const float *x, size_t n);
int    ivf_row_get(const uint8_t *p, size_t len, float *x, size_t n);
void ivf_list_key(uint8_t key[LIST_KEY_LEN], uint32_t cluster, uint64_t id);
ivf_blayout ivf_layout(const ivf_config *c);
/* Bytes of a block of n entries; offset of its raw vectors (4-aligned). */
size_t ivf_block_size(const ivf_blayout *l, uint32_t n);
size_t ivf_block_raw_off(const ivf_blayout *l, uint32_t n);
/* Decode a block stored under a key of cluster `cluster`. */
int  ivf_block_view(const uint8_t *p, size_t len, const ivf_blayout *l, uint32_t cap,
                    uint32_t cluster, ivf_block *b);

/* ---- k-means (kmeans.c) ---- */
typedef struct ivf_kmeans_out {
    uint32_t n_repaired;   /* empty clusters re-seeded over all iterations   */
    uint32_t n_empty;      /* clusters empty after the last assignment       */
    uint32_t n_distinct;   /* distinct centroids at the end                  */
} ivf_kmeans_out;
/* Train k centroids (k * dim, out) on n >= k points, k-means++ seeding on a
 * subsample, `iters` Lloyd iterations with sgemm distances, empty-cluster
 * repair by splitting a large cluster. Deterministic for a seed.
 * Returns STRATA_OK, STRATA_EINVAL (n < k), STRATA_ENOMEM. */
int ivf_kmeans(const float *x, size_t n, size_t dim, size_t k, uint32_t iters, uint64_t seed,
               float *centroids, ivf_kmeans_out *st);
/* Nearest of k centroids (L2, or largest dot when ip) for n points, with
 * sgemm; assign[n] gets the index, dist[n] (may be NULL) the distance.
 * Returns STRATA_OK, STRATA_ENOMEM. */
int ivf_assign(const float *x, size_t n, size_t dim, const float *c, size_t k, int ip,
               uint32_t *assign, float *dist);

/* ---- product quantizer (pq.c) ---- */
/* Train m codebooks (m * 256 * dsub floats) on n residuals. */
int ivf_pq_train(const float *r, size_t n, size_t dim, size_t m, uint32_t iters, uint64_t seed,
                 float *codebooks, ivf_kmeans_out *st);
/* Encode n residuals into n * m code bytes (row-major: vector i at i*m). */
int ivf_pq_encode(const float *cb, size_t dim, size_t m, const float *r, size_t n,
                  uint8_t *codes);
/* Inner-product tables: lut[j*256 + c] = q_j . cb_j[c] (m * 256 floats). */
void ivf_pq_dot_lut(const float *cb, size_t dim, size_t m, const float *q, float *lut);
/* Transpose codebooks (m * 256 * dsub) into cbt[j][t][w] (m * dsub * 256). */
void ivf_pq_transpose(const float *cb, size_t dim, size_t m, float *cbt);

/* ---- candidate heap (scan.c) ---- */
void   ivf_heap_init(ivf_heap *h, ivf_hkey *key, ivf_cand *side, size_t k);
static inline int ivf_heap_accepts(const ivf_heap *h, float dist, uint64_t id)
{
    if (dist < h->thr || h->n < h->k) return 1;
    return dist == h->thr && id < h->key[0].id;
}
void   ivf_heap_push(ivf_heap *h, uint64_t id, float dist, const uint8_t *raw);
/* Write the held candidates to out, nearest first; returns their count.
 * Push no more afterwards. */
size_t ivf_heap_finish(ivf_heap *h, ivf_cand *out);

/* ---- scan kernels (scan.c) ----
 * Scan one posting block with a float table lut[m][256] (one per query):
 * distance of entry i = base + term_i + sum_j lut[j][code_j(i)] (term_i = 0
 * without terms). Entries that could enter h (and pass the filter) are
 * pushed; a non-finite distance that would be offered sets `bad` instead.
 * suffix_min[j] = sum of the minimum of tables j..m-1 (suffix_min[m] = 0),
 * for early termination. */
typedef int (*ivf_keep_fn)(void *ctx, uint64_t id, uint64_t attr);
typedef struct ivf_scan_ctx {
    const float *lut;
    const float *suffix_min;
    const uint8_t *qlut;       /* quantized u8 tables, or NULL               */
    float        qscale;       /* u8 table unit                              */
    float        qbias;        /* sum of per-table minima                    */
    float        qslack;       /* bound of |float sum - quantized sum|
                                  without base and term: m * qscale plus
                                  qeps * sum_j max |table j|               */
    float        qeps;         /* float rounding per unit of magnitude      */
    uint32_t     m;
    float        base;
    ivf_keep_fn  keep;
    void        *keep_ctx;
    uint64_t     n_scanned;    /* statistics                                 */
    int          bad;          /* a non-finite distance reached the heap     */
} ivf_scan_ctx;
void ivf_scan_block(ivf_scan_ctx *s, const ivf_block *b, ivf_heap *h);
/* Non-zero if scans with m subspaces use the AVX-512 VBMI byte-shuffle
 * pre-filter (u8 tables looked up 64 entries per shuffle, exact float sums
 * only for entries whose quantized bound can enter the heap): then the
 * search builds the u8 tables for every query, since the results equal the
 * float path's. Follows vec_kernels_get() (STRATA_SIMD) and the CPU. */
int  ivf_scan_fast(uint32_t m);
/* u8 tables: q[j][w] = min(255, round((lut[j][w] - lo[j]) * inv)). */
void ivf_qlut_build(const float *lut, const float *lo, uint32_t m, float inv, uint8_t *q);
/* Quantize the tables lut (per-table minima lo, maxima hi, largest range
 * qmax) into q and set sc's qlut, qscale, qbias, qslack and qeps.
 * Returns STRATA_OK, or STRATA_ECORRUPT if the slack is not finite. */
int  ivf_qlut_setup(ivf_scan_ctx *sc, const float *lut, const float *lo, const float *hi,
                    uint32_t m, float qmax, uint8_t *q);
/* The same tables as ivf_pq_dot_lut (bit for bit: the same products summed in
 * the same order) from transposed codebooks, vectorized over codewords. */
void ivf_dot_lut_t(const float *cbt, size_t dim, size_t m, const float *q, float *lut);
/* One pass per query table: lut[i] = term[i] + a * qdot[i] (term may be NULL:
 * a * qdot[i]) for m tables of 256, and lo[j] / hi[j] = the minimum / maximum
 * of table j. Equal to the scalar expression at every level (a * qdot is
 * exact for a = -1, -2). Returns non-zero if an entry is NaN. */
int ivf_lut_build(const float *term, const float *qdot, float a, uint32_t m, float *lut,
                  float *lo, float *hi);

/* ---- storage (store.c) ---- */
int ivf_tables_open(strata_ivf *ix, int create);
int ivf_config_load(strata_ivf *ix);
int ivf_config_save(strata_ivf *ix);
int ivf_model_load(strata_ivf *ix);
int ivf_model_save(strata_ivf *ix);
void ivf_model_free(strata_ivf *ix);
/* Build the derived search tables of the model (transposed codebooks)
 * unless present. */
int ivf_search_tables_build(strata_ivf *ix);
/* L2 term of one entry of cluster c with row-major code (m bytes):
 * sum_j |w_j|^2 + 2 c_j . w_j, so that |q - (c + w)|^2 = |q - c|^2 + term -
 * 2 sum_j q_j . w_j. */
float ivf_l2_term(const strata_ivf *ix, uint32_t c, const uint8_t *code);

/* ---- search (search.c) ---- */
void ivf_scratch_free(ivf_scratch *b);   /* NULL-safe */

/* ---- helpers ---- */
/* STRATA_OK for an open handle (reloading config and model first when a
 * savepoint rollback in its transaction may have undone them: EBADTXN if the
 * index itself was undone), else STRATA_EINVAL. */
int ivf_handle_check(strata_ivf *ix);
/* ix wrote to its index (or tried to): other handles on it reload. */
void ivf_wrote(strata_ivf *ix);
/* Normalize x (dim) in place; a zero vector stays zero. */
void ivf_normalize(float *x, size_t dim);
uint64_t ivf_rng_next(uint64_t *s);

#endif /* STRATA_IVFPQ_INT_H */
