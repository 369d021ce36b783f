/* fractal/fractal_int.h - private interface of the fractal index: the
 * in-memory handle, the byte formats of its tables (normative:
 * docs/FRACTAL.md), and the functions each file of the layer offers the others.
 *
 * The index is a balanced tree of clusters. Leaves (level 0) own a posting list
 * of PQ codes and a write buffer of working vectors; internal nodes route.
 * Every byte lives in the internal tables "__frac:NAME:*"; the handle caches the
 * node records, centroids and sums it read in its own transaction and writes
 * every node it changed back before the public call that changed it returns.
 *
 * Invariants (checked by frac_check(), i.e. strata_fractal_check()):
 *  (1) Every stored vector id has exactly one assignment row, naming a live
 *      leaf whose posting list or buffer (as the row says) holds the id once.
 *  (2) A leaf's pop = its buffer rows + posting entries; an internal node's pop
 *      is the sum of its children's. sums = the f64 sum of the members' working
 *      vectors (decoded PQ codes for encoded members when raw vectors are not
 *      kept), centroid = sums / pop rounded to f32 (zero when pop = 0).
 *  (3) parent/child links agree in the nodes and edges tables; every live node
 *      is reachable from the root exactly once; a child's level is its parent's
 *      minus one; leaves are at level 0, so every leaf has the same depth,
 *      which is at most max_depth levels.
 *  (4) ts_min..ts_max of a leaf covers the timestamps of its vectors; that of
 *      an internal node is exactly the union of its children's.
 *  (5) After any public call returns STRATA_OK, no leaf holds more than
 *      max_leaf vectors, and no leaf holds >= buffer_cap buffered vectors once
 *      codebooks exist.
 *  (6) Decoders never trust stored bytes: lengths, counts, ids, levels and check
 *      words are verified and a mismatch is STRATA_ECORRUPT.
 */
#ifndef STRATA_FRACTAL_INT_H
#define STRATA_FRACTAL_INT_H

#include <stddef.h>
#include <stdint.h>

#include "fpq.h"
#include "strata.h"
#include "vector.h"

#define FRAC_MAGIC        0x31435246u   /* "FRC1" little-endian */
#define FRAC_HANDLE_MAGIC 0x46524143u
#define FRAC_VERSION      5u    /* 5: sums rows end with the sum of squared norms
                                   and its rounding remainder;
                                   4: codes in blocks of FRAC_BLK, subspace-major;
                                   3: retrain policy in the config; 2: residual
                                   codes, anchor in posting lists */
#define FRAC_NAME_MAX     200u
#define FRAC_NONE         0xFFFFFFFFu   /* "no node" in parent fields  */
#define FRAC_MAX_NODES    (1u << 30)    /* sanity bound on node ids      */
#define FRAC_DEPTH_LIMIT  32u           /* max_depth may not exceed this */
#define FRAC_ROUTE_BEAM   32u           /* internal nodes an insert's routing keeps per level */
#define FRAC_RETRAIN_MAX  100000u       /* retrain_growth bound (percent) */

/* Config record: docs/FRACTAL.md "Config record" (normative). */
enum {
    CFG_OFF_MAGIC = 0, CFG_OFF_VERSION = 4, CFG_OFF_FLAGS = 6, CFG_OFF_DIM = 8,
    CFG_OFF_METRIC = 12, CFG_OFF_PQ_M = 16, CFG_OFF_MAX_LEAF = 20, CFG_OFF_MIN_LEAF = 24,
    CFG_OFF_FANOUT = 28, CFG_OFF_DEPTH = 32, CFG_OFF_BUFCAP = 36, CFG_OFF_TRAIN_SIZE = 40,
    CFG_OFF_ITERS = 44, CFG_OFF_ROOT = 48, CFG_OFF_NEXT_NODE = 52, CFG_OFF_NVEC = 56,
    CFG_OFF_SEED = 64, CFG_OFF_CB_GEN = 72, CFG_OFF_RETRAIN = 76, CFG_OFF_NTRAINED = 80,
    CFG_OFF_CHECK = 88, CFG_SIZE = 92
};
_Static_assert(CFG_OFF_CHECK + 4 == CFG_SIZE, "check word ends the config record");
enum { CFG_F_RAW = 0x1, CFG_F_SHARED_CB = 0x2, CFG_F_KNOWN = 0x3 };
_Static_assert(CFG_F_RAW == STRATA_FRACTAL_KEEP_RAW && CFG_F_SHARED_CB == STRATA_FRACTAL_SHARED_CODEBOOK,
               "config flags are the public ones");

/* Node record: docs/FRACTAL.md "Node record" (normative). */
enum {
    NODE_OFF_VERSION = 0, NODE_OFF_KIND = 1, NODE_OFF_LEVEL = 2, NODE_OFF_PARENT = 4,
    NODE_OFF_NCHILD = 8, NODE_OFF_NBUF = 12, NODE_OFF_NCODES = 16, NODE_OFF_RESERVED = 20,
    NODE_OFF_POP = 24, NODE_OFF_TSMIN = 32, NODE_OFF_TSMAX = 40, NODE_OFF_CHECK = 48,
    NODE_SIZE = 52
};
_Static_assert(NODE_OFF_CHECK + 4 == NODE_SIZE, "check word ends the node record");
enum { NODE_LEAF = 0, NODE_INTERNAL = 1 };

/* Keys and fixed rows: docs/FRACTAL.md "Tables". */
enum { EDGE_KEY_LEN = 8, BUF_KEY_LEN = 12, ASSIGN_LEN = 16, POST_HDR = 8 };
enum { WHERE_BUF = 0, WHERE_POST = 1 };
enum { CB_HDR = 16 };
/* Posting-list codes are stored in blocks of FRAC_BLK vectors, subspace-major
 * (docs/FRACTAL.md "Posting list"): byte j of vector 64 b + l at
 * (b * m + j) * 64 + l, so one 64-byte load holds one subspace of 64 codes. */
enum { FRAC_BLK = 64 };
static inline uint32_t frac_post_blocks(uint32_t n) { return (n + FRAC_BLK - 1) / FRAC_BLK; }

/* The tables of one index, in the order of frac_table_suffix[]. */
enum { FT_CONFIG, FT_NODES, FT_CENT, FT_SUMS, FT_EDGES, FT_BUF, FT_POST, FT_ASSIGN, FT_RAW,
       FT_CB, FT_COUNT };

typedef struct frac_config {
    uint32_t flags;        /* CFG_F_*                                      */
    uint32_t dim, metric, pq_m;
    uint32_t max_leaf, min_leaf, max_fanout, max_depth, buffer_cap;
    uint32_t train_size, train_iters;
    uint32_t root, next_node;
    uint64_t n_vectors, seed;
    uint32_t cb_gen;       /* 0 = no codebooks yet; bumped by every train   */
    uint32_t retrain_growth;  /* auto-retrain at n_trained * (1 + this/100);
                                 0 = never                                  */
    uint64_t n_trained;    /* n_vectors when the codebooks were last trained */
} frac_config;

/* One cluster, cached from the nodes/cent/sums/edges tables. */
typedef struct frac_node {
    uint32_t  id;
    uint8_t   live;        /* 0: slot unused (never created or deleted)     */
    uint8_t   leaf;        /* 1: leaf (level 0)                             */
    uint8_t   dirty;       /* record, centroid or sums need writing back    */
    uint8_t   sep_check;   /* leaves: check for separate groups at the next
                              frac_split_leaf (split.c); not stored          */
    uint16_t  level;
    uint32_t  parent;      /* FRAC_NONE for the root                        */
    uint32_t  n_child, cap_child;
    uint32_t *child;       /* internal nodes: n_child ids                   */
    uint32_t  n_buf;       /* leaves: buffered vectors                      */
    uint32_t  n_codes;     /* leaves: posting entries                       */
    uint64_t  pop;
    uint64_t  ts_min, ts_max;   /* empty: UINT64_MAX, 0                      */
    double   *sum;         /* dim                                           */
    double    sq;          /* sum of the members' squared norms |w|^2      */
    double    sq_lo;       /* what sq's f64 roundings left out (frac_sq_add):
                              sq + sq_lo is the sum to about 2^-104 of the
                              largest value sq held; stored after sq        */
    float    *cent;        /* dim                                           */
    float     spread;      /* sq / pop - |cent|^2 (>= 0): the members' mean
                              squared distance to the centroid; not stored */
} frac_node;

/* One member of a leaf, gathered for a split, a merge or a check. */
typedef struct frac_member {
    uint64_t id, ts;
    uint8_t  where;        /* WHERE_BUF or WHERE_POST                        */
} frac_member;

/* A decoded posting list (pointers into a value, or into owned memory). */
typedef struct frac_post {
    uint32_t       n, m;
    const uint8_t *anchor; /* dim f32 LE: the codes are residuals against it */
    const uint8_t *ids;    /* n u64 LE */
    const uint8_t *ts;     /* n u64 LE */
    const uint8_t *terms;  /* n f32 LE: |r|^2 + 2<anchor, r> of decoded r  */
    const uint8_t *codes;  /* frac_post_blocks(n) * m * FRAC_BLK, blocked */
    const uint8_t *raw;    /* n * dim f32 LE: the raw vectors (KEEP_RAW), or NULL */
} frac_post;

/* The handle (strata_fractal). Valid while txn is open; owner thread of txn. */
struct strata_fractal {
    uint32_t      magic;          /* FRAC_HANDLE_MAGIC while open            */
    int           poisoned;       /* a write failed half-way: abort the txn  */
    strata_txn   *txn;
    uint64_t     *writes;         /* db_txn_counter(txn, "__frac:NAME"): bumped
                                     by every handle's writes to the index and
                                     by savepoint rollbacks                 */
    uint64_t      writes_seen;    /* its value when this cache was current  */
    strata_table *t[FT_COUNT];
    frac_config   cfg;
    uint32_t      n_slots;        /* nodes[] length (>= cfg.next_node)       */
    frac_node   **nodes;          /* by id; NULL or !live = no such node     */
    frac_pq       pq;             /* valid when cfg.cb_gen != 0              */
    const vec_kernels *kt;
    uint64_t      sep_tests, sep_splits; /* separation checks run / splits they made
                                     through this handle (split.c; for tests) */
    char          name[FRAC_NAME_MAX + 1];
};

/* ---- byte helpers and codecs (format.c) ---- */
uint32_t frac_check32(const uint8_t *p, size_t len);
void     frac_be32_put(uint8_t *p, uint32_t v);
uint32_t frac_be32_get(const uint8_t *p);
void     frac_be64_put(uint8_t *p, uint64_t v);
uint64_t frac_be64_get(const uint8_t *p);
void     frac_le16_put(uint8_t *p, uint16_t v);
uint16_t frac_le16_get(const uint8_t *p);
void     frac_le32_put(uint8_t *p, uint32_t v);
uint32_t frac_le32_get(const uint8_t *p);
void     frac_le64_put(uint8_t *p, uint64_t v);
uint64_t frac_le64_get(const uint8_t *p);
void     frac_f64_put(uint8_t *p, const double *x, size_t n);
void     frac_f64_get(double *x, const uint8_t *p, size_t n);
/* n little-endian f32 (as vec_f32_get; a plain copy on little-endian hosts). */
void     frac_f32_get(float *x, const uint8_t *p, size_t n);
void frac_config_put(uint8_t out[CFG_SIZE], const frac_config *c);
int  frac_config_get(const uint8_t *p, size_t len, frac_config *c);
/* Parameter rules shared by create (STRATA_EINVAL) and load (STRATA_ECORRUPT). */
int  frac_config_valid(const frac_config *c);
void frac_node_put(uint8_t out[NODE_SIZE], const frac_node *n);
int  frac_node_get(const uint8_t *p, size_t len, frac_node *n);
void frac_edge_key(uint8_t key[EDGE_KEY_LEN], uint32_t parent, uint32_t child);
void frac_buf_key(uint8_t key[BUF_KEY_LEN], uint32_t leaf, uint64_t id);
void frac_assign_put(uint8_t out[ASSIGN_LEN], uint32_t leaf, uint8_t where, uint64_t ts);
int  frac_assign_get(const uint8_t *p, size_t len, uint32_t *leaf, uint8_t *where,
                     uint64_t *ts);
/* Posting lists of an index with raw vectors (KEEP_RAW) carry them too. */
size_t frac_post_size(uint32_t n, uint32_t m, uint32_t dim, int raw);
int  frac_post_view(const uint8_t *p, size_t len, uint32_t m, uint32_t dim, int raw,
                    frac_post *out);
/* Vector-major codes (n * m bytes) into the blocked layout (blk:
 * frac_post_blocks(n) * m * FRAC_BLK bytes, lanes past n zero), and back:
 * the m code bytes of vector i of a blocked array. */
void frac_codes_block(const uint8_t *vm, uint32_t n, uint32_t m, uint8_t *blk);
void frac_code_get(const uint8_t *blk, uint32_t m, uint32_t i, uint8_t *out);
/* Report a corruption (the breakpoint spot); returns STRATA_ECORRUPT. */
int  frac_corrupt_at(const char *file, int line);
#define FRAC_CORRUPT() frac_corrupt_at(__FILE__, __LINE__)

/* ---- tables and node cache (store.c) ---- */
/* "__frac:INDEX:SUFFIX" of table `which` (FT_*) into out (cap bytes). */
void frac_table_name(char *out, size_t cap, const char *index, int which);
int  frac_tables_open(strata_fractal *f, int create);
int  frac_config_save(strata_fractal *f);
/* Load every node, centroid, sum and edge and validate the tree shape. */
int  frac_nodes_load(strata_fractal *f);
int  frac_cb_load(strata_fractal *f);
int  frac_cb_save(strata_fractal *f);
void frac_cache_free(strata_fractal *f);
/* A new live node (id = cfg.next_node++), zeroed, dirty; record not yet written. */
int  frac_node_new(strata_fractal *f, int leaf, uint16_t level, frac_node **out);
/* Delete a node's rows and free its slot. Its edges must already be gone. */
int  frac_node_delete(strata_fractal *f, frac_node *n);
int  frac_edge_add(strata_fractal *f, frac_node *parent, frac_node *child);
int  frac_edge_del(strata_fractal *f, frac_node *parent, frac_node *child);
/* Write back every dirty node (record, centroid from sums, sums) and the config. */
int  frac_flush(strata_fractal *f);
static inline frac_node *frac_node_at(const strata_fractal *f, uint32_t id)
{
    return id < f->n_slots && f->nodes[id] && f->nodes[id]->live ? f->nodes[id] : NULL;
}

/* ---- per-vector rows (rows.c) ---- */
/* The working vector: x for L2 and IP, x / |x| for cosine (zero stays zero). */
void frac_working(const strata_fractal *f, const float *x, float *w);
int  frac_buf_put(strata_fractal *f, uint32_t leaf, uint64_t id, uint64_t ts, const float *w);
int  frac_buf_get(strata_fractal *f, uint32_t leaf, uint64_t id, uint64_t *ts, float *w);
int  frac_buf_del(strata_fractal *f, uint32_t leaf, uint64_t id);
/* Read a leaf's whole posting list into owned arrays (NULL when empty); its
 * anchor goes to anchor (dim floats; may be NULL; untouched when empty). */
int  frac_post_read(strata_fractal *f, uint32_t leaf, uint32_t *n, uint64_t **ids,
                    uint64_t **ts, uint8_t **codes, float *anchor);
/* The anchor of a leaf's posting list (dim floats); STRATA_NOTFOUND when it has none. */
int  frac_post_anchor(strata_fractal *f, uint32_t leaf, float *anchor);
/* Write a posting list of residual codes against anchor (ignored when n = 0:
 * the row is deleted); the per-code terms are computed here, and with
 * KEEP_RAW the raw vectors are copied in from the raw table (every id must
 * have its raw row). */
int  frac_post_write(strata_fractal *f, uint32_t leaf, uint32_t n, const uint64_t *ids,
                     const uint64_t *ts, const uint8_t *codes, const float *anchor);
/* Residual coding against a leaf's anchor: codes of x - anchor (n vectors),
 * and the working vector a code stands for (anchor + decoded residual). */
int  frac_encode_res(const strata_fractal *f, const float *anchor, const float *x, size_t n,
                     uint8_t *codes);
void frac_decode_res(const strata_fractal *f, const float *anchor, const uint8_t *code, float *w);
int  frac_assign_set(strata_fractal *f, uint64_t id, uint32_t leaf, uint8_t where, uint64_t ts);
/* STRATA_NOTFOUND if id is not in the index. */
int  frac_assign_lookup(strata_fractal *f, uint64_t id, uint32_t *leaf, uint8_t *where,
                        uint64_t *ts);
int  frac_raw_get(strata_fractal *f, uint64_t id, float *x);
/* The buffered members of a leaf with their working vectors (n = n_buf,
 * else STRATA_ECORRUPT). Caller frees. */
int  frac_buf_gather(strata_fractal *f, const frac_node *leaf, size_t *n, frac_member **mem,
                     float **w);
/* All members of a leaf with their working vectors (w: n * dim floats;
 * codes: n * m bytes for posting members, or NULL). Caller frees. */
int  frac_leaf_gather(strata_fractal *f, const frac_node *leaf, size_t *n, frac_member **mem,
                      float **w, uint8_t **codes);

/* ---- tree maintenance (tree.c) ---- */
/* Add (sign +1) or remove (-1) w to the sums of n and all its ancestors; pop
 * changes by sign * dpop. */
void frac_path_add(strata_fractal *f, frac_node *n, const float *w, int sign, int dpop);
/* Widen the time range of n and its ancestors to include ts. */
void frac_path_ts(strata_fractal *f, frac_node *n, uint64_t ts);
/* Recompute the time range of n's ancestors as unions of their children. */
void frac_ts_refresh_up(strata_fractal *f, frac_node *n);
/* The centroid (sums / pop) and spread of n from its sums, sq and pop; marks n dirty. */
void frac_node_cent(strata_fractal *f, frac_node *n);
/* The spread alone, from sq, pop and the centroid. */
void frac_node_spread(const strata_fractal *f, frac_node *n);
/* sq += x, compensated (sq_lo): sq stays the sum of its terms to f64
 * rounding of its present value, however far below its past values. */
void frac_sq_add(frac_node *n, double x);
/* |w|^2 in f64, the term of a member in its nodes' sq. */
double frac_sqnorm(const float *w, uint32_t dim);
/* Recompute n's sums, pop and time range from its children (internal nodes). */
void frac_node_from_children(strata_fractal *f, frac_node *n);
/* Squared L2 distance of w to n's centroid (the routing distance). */
float frac_route_dist(const strata_fractal *f, const frac_node *n, const float *w);
/* The nearest leaf by centroid, by a beam descent (FRAC_ROUTE_BEAM); NULL
 * on a damaged tree. */
frac_node *frac_route(strata_fractal *f, const float *w);
void frac_child_remove(frac_node *p, uint32_t id);
int  frac_child_append(frac_node *p, uint32_t id);

/* ---- split, merge, cascade (split.c, merge.c, cascade.c) ---- */
/* Split leaf (a no-op unless it is above max_leaf or marked by sep_check)
 * until no descendant leaf exceeds max_leaf, and (sep_check) a
 * leaf holding separate groups into them; then fix fan-outs up. */
int  frac_split_leaf(strata_fractal *f, frac_node *leaf);
/* Split internal node n if it exceeds max_fanout (recursing upwards). */
int  frac_split_internal(strata_fractal *f, frac_node *n);
/* Merge an underfull leaf into its nearest sibling and collapse upwards. */
int  frac_merge_leaf(strata_fractal *f, frac_node *leaf);
/* PQ-encode the buffer of leaf into its posting list. Needs codebooks. */
int  frac_cascade(strata_fractal *f, frac_node *leaf);
/* 2-means of n points (dim) weighted by wt (may be NULL): side[i] = 0/1. Both
 * sides are non-empty when n >= 2. */
int  frac_two_means(const float *x, const double *wt, size_t n, size_t dim, uint64_t seed,
                    uint8_t *side);
/* The same with the balance guard optional (guard 0: the 2-means sides as
 * they are, whatever their sizes, unless one is empty) and, in *ratio (may be
 * NULL), the split's sum of squared distances to the side means over the sum
 * to the common mean (1 for n < 2 or identical points). */
int  frac_two_means_ex(const float *x, const double *wt, size_t n, size_t dim, uint64_t seed,
                       int guard, uint8_t *side, double *ratio);

/* ---- ADC kernels (adc.c) ---- */
/* The f32 ADC sums of the FRAC_BLK lanes of one block of codes (blk: m *
 * FRAC_BLK bytes) against lut (m * 256), at kt's level. Every level sums in
 * fpq_adc's order (four partial sums by j mod 4, tail into the first,
 * (s0 + s1) + (s2 + s3)), so out[l] equals frac_adc_lane(.., l) bit for bit. */
void  frac_adc_block(const vec_kernels *kt, const float *lut, const uint8_t *blk, uint32_t m,
                     float out[FRAC_BLK]);
float frac_adc_lane(const float *lut, const uint8_t *blk, uint32_t m, uint32_t lane);
/* The 8-bit filter of the scan. A quantized table q[j * 256 + c] <=
 * (lut[j][c] - lo_j) / delta (the floor, or one less at an f32 rounding
 * edge; at most 255) with delta = the largest per-subspace range / 255 and
 * *lo_sum = sum_j lo_j, so for every code sum_j lut[j][c_j] >= *lo_sum +
 * delta * Q (Q = sum_j q[j][c_j]) up to f32 rounding (the search allows for
 * it); *abs_sum = sum_j max_c |lut[j][c]|. Returns 0 (no filter) when m >
 * 257 (Q could overflow 16 bits) or the table is not finite. The SIMD and
 * scalar versions do the same f32 operations: the same bytes (tested). */
int   frac_lut_quantize(const vec_kernels *kt, const float *lut, uint32_t m, uint8_t *q,
                        float *lo_sum, float *delta, float *abs_sum);
/* 1 if frac_adc_u8_block has a fast kernel at kt's level (AVX-512 VBMI). */
int   frac_adc_u8_fast(const vec_kernels *kt);
/* Q of the FRAC_BLK lanes of one block against a quantized table (exact
 * integer sums at every level). */
void  frac_adc_u8_block(const vec_kernels *kt, const uint8_t *q, const uint8_t *blk, uint32_t m,
                        uint16_t out[FRAC_BLK]);
/* Bit l (l < lanes) set when lane l may still enter the candidates: its
 * lower bound base + qlo + qdelta * qs[l] + terms[l] (terms may be NULL: 0),
 * less a slack for f32 rounding (1e-5 of |base| + |term| + |qlo|, plus
 * 3e-5 of qabs; f32 sums of m <= 257 terms err by far less), is <= thr. */
uint64_t frac_filter_block(const vec_kernels *kt, const uint16_t *qs, const float *terms,
                           uint32_t lanes, float base, float qlo, float qdelta, float qabs,
                           float thr);

/* ---- operations (insert.c, delete.c, train.c, search.c, check.c) ---- */
int  frac_insert_one(strata_fractal *f, uint64_t id, const float *x, uint64_t ts);
int  frac_delete_one(strata_fractal *f, uint64_t id, int allow_merge);
/* Did subtracting w from the sums (and sq) of n and its ancestors cancel all
 * but a small remainder of one of them (delete.c)? Then frac_resum: the
 * leaf's sums from its members, its ancestors' from their children. */
int  frac_cancelled(strata_fractal *f, const frac_node *n, const float *w);
int  frac_resum(strata_fractal *f, frac_node *leaf);
int  frac_train(strata_fractal *f, size_t max_sample);
int  frac_check(strata_fractal *f, void (*report)(void *ctx, const char *msg), void *ctx);
int  frac_search(strata_fractal *f, const float *q, size_t k,
                 const strata_fractal_params *p, strata_hit *out, size_t *n_out);

#endif /* STRATA_FRACTAL_INT_H */
