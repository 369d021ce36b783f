/* vector/vector.h - the vector layer's interface for the layers above it
 * (ivfpq/, fractal/, db/). No storage here: distance kernels, the f32
 * validation rule, the scalar (u8) and binary quantizers, their on-disk byte
 * formats, and a bounded top-k heap. Depends on libc only.
 *
 * Invariants:
 *  (1) The kernel table is chosen once per process (vec_kernels_get()) and never
 *      changes afterwards; every table for a level the CPU lacks is unavailable
 *      (vec_kernels_for() returns NULL), so no code path runs an instruction the
 *      CPU does not have.
 *  (2) For one table, a batch kernel writes, for vector j, exactly (bit for bit)
 *      what the single-pair kernel returns for that pair: the per-vector
 *      summation order does not depend on n or on j.
 *  (3) Distances are "smaller is nearer" for every metric (IP gives -dot,
 *      cosine 1 - cos); see docs/VECTORS.md.
 *  (4) Integer kernels (u8 L2, Hamming) are exact, so all tables agree on them.
 *  (5) Kernels do not validate: callers validate vectors once (vec_validate())
 *      when they enter the system; the public wrappers check their results.
 */
#ifndef STRATA_VECTOR_H
#define STRATA_VECTOR_H

#include <float.h>
#include <stddef.h>
#include <stdint.h>

#include "strata.h"

/* ---- kernels ------------------------------------------------------------ */

typedef enum {
    VEC_LEVEL_SCALAR = 0,   /* portable C, the reference                      */
    VEC_LEVEL_AVX2   = 1,   /* x86-64 AVX2 + FMA + POPCNT                      */
    VEC_LEVEL_AVX512 = 2,   /* x86-64 AVX-512 F/BW/DQ/VL + POPCNT              */
    VEC_LEVEL_COUNT  = 3
} vec_level;

enum { VEC_N_METRICS = 4 };   /* STRATA_METRIC_L2 .. STRATA_METRIC_L1 */

/* Distance of one pair of f32 vectors of dim > 0 elements. */
typedef float (*vec_dist_fn)(const float *a, const float *b, size_t dim);
/* Distances of q to n vectors stored contiguously at base (vector j at
 * base + j * dim); writes out[0..n). n may be 0. */
typedef void (*vec_dist_batch_fn)(const float *q, const float *base, size_t n, size_t dim,
                                  float *out);

typedef struct vec_kernels {
    const char       *name;                    /* "scalar", "avx2", "avx512" */
    vec_level         level;
    vec_dist_fn       dist[VEC_N_METRICS];     /* indexed by strata_metric   */
    vec_dist_batch_fn dist_batch[VEC_N_METRICS];
    /* Sum of squared differences of two u8 codes (exact; dim <= STRATA_VEC_MAX_DIM
     * keeps it below 2^32). */
    uint32_t (*l2_u8)(const uint8_t *a, const uint8_t *b, size_t dim);
    void     (*l2_u8_batch)(const uint8_t *q, const uint8_t *base, size_t n, size_t dim,
                            uint32_t *out);
    /* Number of differing bits of two binary codes of n_words u64 words (exact). */
    uint64_t (*hamming)(const uint64_t *a, const uint64_t *b, size_t n_words);
    void     (*hamming_batch)(const uint64_t *q, const uint64_t *base, size_t n,
                              size_t n_words, uint64_t *out);
} vec_kernels;

/* The table this process uses: the best level the CPU supports, or the level
 * forced by the environment variable STRATA_SIMD=scalar|avx2|avx512 (capped at
 * what the CPU supports; unknown values are ignored). Chosen on the first call.
 * Never NULL. Any thread. */
const vec_kernels *vec_kernels_get(void);
/* The table of one level, or NULL if this CPU (or build) lacks it. Any thread. */
const vec_kernels *vec_kernels_for(vec_level level);

/* ---- validation --------------------------------------------------------- */

/* STRATA_OK if every element is finite and the squared norm is at most
 * VEC_MAX_NORM2 (so that any L2 or dot product of two valid vectors is finite,
 * f32 rounding of the sums included: see validate.c);
 * STRATA_EINVAL otherwise (also for x == NULL or dim outside 1..STRATA_VEC_MAX_DIM). */
#define VEC_MAX_NORM2 ((double)FLT_MAX / 8.0)
int vec_validate(const float *x, size_t dim);

/* ---- top-k heap ---------------------------------------------------------
 * A bounded max-heap over a caller's array of k hits. The root is the worst
 * hit kept so far; "worse" is (dist, id) compared lexicographically, so ties go
 * to the smaller id and results do not depend on insertion order. Feed it
 * incrementally: init, push any number of times, finish (sorts nearest first).
 */
typedef struct vec_topk {
    strata_hit *hits;   /* caller's array of k entries; heap order until finish */
    size_t      k;      /* capacity, >= 1                                       */
    size_t      n;      /* hits held, <= k                                      */
} vec_topk;

void vec_topk_init(vec_topk *h, strata_hit *buf, size_t k);

/* Non-zero if (dist, id) would enter the heap now. dist must not be NaN. */
static inline int vec_topk_accepts(const vec_topk *h, float dist, uint64_t id)
{
    if (h->n < h->k) return 1;
    const strata_hit *w = &h->hits[0];
    return dist < w->dist || (dist == w->dist && id < w->id);
}

/* Offer a hit; kept if it is among the k best seen so far. dist must not be NaN. */
void vec_topk_push(vec_topk *h, uint64_t id, float dist);

/* Sort the held hits nearest first (ascending (dist, id)) and return their
 * number. The heap must not be pushed to afterwards (re-init it). */
size_t vec_topk_finish(vec_topk *h);

/* Exact scan of n vectors at base into h with metric m using table kt.
 * ids (may be NULL: row index is the id) gives each row's id; filter (may be
 * NULL) is called only for rows that would enter the heap and keeps a row when
 * it returns non-zero. Returns STRATA_OK, or STRATA_EINVAL if a distance is not
 * finite (an input holds NaN/Inf or too large a magnitude): h then holds a
 * partial result. Arguments are not otherwise checked. */
int vec_topk_scan(const vec_kernels *kt, strata_metric m, const float *query,
                  const float *base, size_t n, size_t dim, const uint64_t *ids,
                  strata_vec_filter_fn filter, void *ctx, vec_topk *h);

/* ---- scalar quantizer (sq8) --------------------------------------------
 * Per-dimension affine map of [vmin[i], vmax[i]] onto 0..255, see
 * docs/VECTORS.md "sq8". The public strata_sq8_* functions check arguments;
 * these do not. */
void vec_sq8_train(const float *data, size_t n, size_t dim, float *vmin, float *vmax);
void vec_sq8_encode(const float *vmin, const float *vmax, size_t dim, const float *x,
                    uint8_t *code);
void vec_sq8_decode(const float *vmin, const float *vmax, size_t dim, const uint8_t *code,
                    float *x);

/* Serialized sq8 parameters (docs/VECTORS.md "sq8 parameter block"):
 *   offset 0: u32 LE dim; offset 4: u32 LE flags (must be 0);
 *   offset 8: dim x f32 LE vmin; offset 8 + 4*dim: dim x f32 LE vmax. */
enum { VEC_SQ8_OFF_DIM = 0, VEC_SQ8_OFF_FLAGS = 4, VEC_SQ8_OFF_MIN = 8 };
size_t vec_sq8_params_size(size_t dim);
void   vec_sq8_params_put(uint8_t *p, const float *vmin, const float *vmax, uint32_t dim);
/* Decode a parameter block of len bytes holding exactly dim dimensions.
 * Returns STRATA_OK, or STRATA_ECORRUPT (wrong length, dim, flags, a non-finite
 * bound or vmin > vmax; vmin and vmax then hold unspecified values). */
int    vec_sq8_params_get(const uint8_t *p, size_t len, uint32_t dim, float *vmin,
                          float *vmax);

/* ---- binary quantizer ---------------------------------------------------
 * Bit i (word i / 64, bit i % 64, LSB first) is 1 iff x[i] > 0. Unused bits of
 * the last word are 0. */
static inline size_t vec_bin_words(size_t dim) { return (dim + 63) / 64; }
void vec_bin_encode(const float *x, size_t dim, uint64_t *code);

/* ---- little-endian codecs for stored vectors and codes ---------------- */
void vec_f32_put(uint8_t *p, const float *x, size_t n);     /* 4*n bytes */
void vec_f32_get(float *x, const uint8_t *p, size_t n);
void vec_u64_put(uint8_t *p, const uint64_t *w, size_t n);  /* 8*n bytes */
void vec_u64_get(uint64_t *w, const uint8_t *p, size_t n);

#endif /* STRATA_VECTOR_H */
