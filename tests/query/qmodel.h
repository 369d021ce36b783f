/* tests/query/qmodel.h - a random blob store built through the public API,
 * mirrored in memory, and a brute-force evaluation of composite queries over
 * the mirror that follows docs/QUERY.md literally (no plan, no index: every
 * blob, every filter, every score, a full sort). The tests compare
 * strata_query_run with it. */
#ifndef QMODEL_H
#define QMODEL_H

#include <stddef.h>
#include <stdint.h>

#include "strata.h"

#define QM_DIM    4
#define QM_TAGS   8
#define QM_NS     3
#define QM_MAXB   512
#define QM_MAXE   1024

typedef struct mblob {
    uint64_t id, hlc, size;
    int      ns;                 /* index into qm_ns_names     */
    uint32_t tags;               /* bit t: carries qm_tag(t)   */
    int      has_emb;
    float    emb[QM_DIM];
} mblob;

typedef struct medge { uint64_t from, to; int rel; } medge;

typedef struct qmodel {
    strata_db *db;
    char       dir[64], path[96];
    uint64_t   clock_ms;
    mblob      b[QM_MAXB];
    size_t     n;
    medge      e[QM_MAXE];
    size_t     ne;
} qmodel;

extern const char *const qm_ns_names[QM_NS];
const char *qm_tag(int t);

/* Create a database with n blobs (<= QM_MAXB) from seed; asserts. */
void qm_build(qmodel *m, uint64_t seed, size_t n);
void qm_free(qmodel *m);
/* Delete model blob i (ids are 1, 2, ... in model order) in w, with its
 * edges; asserts. */
void qm_del_blob(qmodel *m, strata_txn *w, size_t i);
/* Create IVF-PQ index `name` in w (4 lists, 2 subspaces, raw vectors) over
 * every live embedding under its blob id; asserts (needs >= 256). */
void qm_build_ivf(qmodel *m, strata_txn *w, const char *name, strata_metric met);

/* A query described as plain data: the test builds a strata_query from it
 * (qp_build) and evaluates it on the model (qp_eval). */
typedef struct qparams {
    int           vec;          /* similarity signal set            */
    strata_metric metric;
    float         v[QM_DIM];
    size_t        k;
    double        scale;
    int           rec;          /* recency signal set               */
    uint64_t      now, half_life;
    int           lin;          /* anchor set                       */
    uint64_t      anchor;
    int           dir;
    unsigned      mask, lflags;
    uint32_t      max_hops;
    int           n_pref, pref[3];
    int           has_ns, ns;
    int           n_req, req[2], n_exc, exc[2];
    int           win;
    uint64_t      lo, hi;
    int           pred;         /* keep blobs with size % 3 != 0    */
    double        w[STRATA_QUERY_NSIG];
    int           fusion;
    double        c;
    size_t        cap;
} qparams;

/* Random query parameters: signals in sig_mask (bit per signal), filters
 * from filter_mask bits (1 ns, 2 required tag, 4 excluded tag, 8 window,
 * 16 lineage filter, 32 predicate, 64 exclude anchor), fusion as given. */
void qp_random(const qmodel *m, qparams *p, uint64_t *rng, unsigned sig_mask, unsigned filter_mask,
               int fusion);
/* Build the query; asserts every setter succeeds. */
strata_query *qp_build(const qparams *p);
/* Brute force: up to p->cap results into out, count into *n; now_hlc is the
 * HLC used when p->now == 0. */
void qp_eval(const qmodel *m, const qparams *p, uint64_t now_hlc, strata_query_result *out, size_t *n);
/* Assert two answers are equal (ids, order, scores, signals, ranks). */
void qp_assert_same(const strata_query_result *a, size_t na, const strata_query_result *b, size_t nb,
                    const char *what);
uint64_t qm_rand(uint64_t *s);

#endif
