/* query/query_int.h - private declarations of the query layer: the query
 * object, the run state (candidates, lineage hops, explain counters) and the
 * functions shared between its files. Definitions: docs/QUERY.md.
 * Invariants of the whole layer:
 *  (1) a run reads only through the caller's transaction and never reads blob
 *      content: index tables (blob:tags, blob:blobtags, blob:ns, blob:time,
 *      edges via strata_blob_traverse), metadata records (strata_blob_info_get)
 *      and embeddings (the index blob:embed and the vector tables blob:vec:<dim>);
 *  (2) between steps, run.c's candidate array is sorted by id, strictly
 *      increasing, and holds only blobs that passed every filter applied so far;
 *  (3) every signal score is in [0, 1]; scores are computed by score.c alone;
 *  (4) the query object is never written by a run (runs may share it). */
#ifndef STRATA_QUERY_INT_H
#define STRATA_QUERY_INT_H

#include <stddef.h>
#include <stdint.h>

#include "strata.h"

#define QUERY_MUST __attribute__((warn_unused_result))
#define QUERY_MAGIC 0x51525953u   /* "SYRQ": live strata_query */
#define QUERY_MAX_HOPS 1024u
#define QUERY_IVF_NAME_MAX 200u   /* strata_ivf_create's limit */
#define QUERY_RRF_DEFAULT 60.0

/* The blob tables this layer reads (tables.c). QT_EMBED is the embedding
 * index (id -> dim), QT_VEC the vector table of the query's dimension. */
enum { QT_TAGS = 0, QT_BTAGS, QT_NS, QT_TIME, QT_EMBED, QT_VEC, QT_COUNT };

/* A list of tags held by the query (copied, NUL-terminated). */
typedef struct qtags {
    char  *v[STRATA_QUERY_MAX_TAGS];
    size_t n;
} qtags;

struct strata_query {
    uint32_t magic;                    /* QUERY_MAGIC while live                 */
    double   w[STRATA_QUERY_NSIG];     /* weights, >= 0                           */
    int      fusion;                   /* STRATA_QUERY_FUSE_*                     */
    double   rrf_c;                    /* > 0                                     */
    /* similarity: set when vec != NULL */
    float        *vec;
    size_t        dim, k;
    strata_metric metric;
    double        scale;
    unsigned      vec_flags;
    strata_query_ann_fn ann;
    void         *ann_ctx;
    char         *ivf;            /* IVF index name, or NULL          */
    strata_ivf   *ivf_h;          /* or a borrowed open handle        */
    uint32_t      ivf_nprobe, ivf_rerank;
    unsigned      ivf_flags;
    /* time */
    int      has_window;
    uint64_t hlc_lo, hlc_hi;
    uint64_t half_life_ms;             /* 0: recency not set                      */
    uint64_t now_hlc;                  /* 0: the run's transaction HLC            */
    /* lineage: set when anchor != 0 */
    uint64_t anchor;
    int      dir;
    unsigned rel_mask, lin_flags;
    uint32_t max_hops;
    /* tags, namespace, predicate */
    qtags    req, exc, pref;
    int      has_ns;
    char     ns[STRATA_BLOB_MAX_META + 1];
    strata_query_pred_fn pred;
    void    *pred_ctx;
};

/* Which signals q sets: bit s for signal s. */
unsigned query_active(const strata_query *q);

/* ---- candidates (run state) ---- */
enum { QC_HLC = 0x1, QC_DIST = 0x2, QC_DEAD = 0x4 };

typedef struct qcand {
    uint64_t id;
    uint64_t hlc;        /* valid with QC_HLC                        */
    float    dist;       /* valid with QC_DIST (among the k nearest) */
    uint32_t hops;       /* STRATA_QUERY_NO_HOPS when not reached    */
    uint32_t n_pref;     /* preferred tags carried                   */
    uint32_t flags;      /* QC_*                                     */
    double   sig[STRATA_QUERY_NSIG];
    double   score;
} qcand;

/* id -> hops map (open addressing; id 0 is the empty slot). */
typedef struct qhops {
    uint64_t *keys;
    uint32_t *hops;
    size_t    cap, n;
} qhops;

/* A sorted-or-not list of ids with one u64 of payload each (the HLC for time
 * index lists, else 0). */
typedef struct qids {
    uint64_t *id, *aux;
    size_t    n, cap;
} qids;

typedef struct qrun {
    strata_txn          *txn;
    const strata_query  *q;
    qcand               *c;          /* candidates, sorted by id (invariant 2) */
    size_t               n, cap;
    qhops                hops;       /* filled when q->anchor != 0             */
    uint64_t             now_hlc;
    size_t               want;         /* results asked for (cap of the run) */
    int                  sim_all;      /* similarity over every blob (knn plan) */
    int                  keep_rc;      /* first error of the index's keep test  */
    strata_table        *tab[QT_COUNT];  /* opened on first use (tables.c)     */
    int                  tab_rc[QT_COUNT]; /* 1 not yet opened, else the open rc */
    strata_query_explain ex;
} qrun;

/* ---- tables.c: the blob layer's index tables this layer scans directly.
 * Names and key layouts: docs/BLOBS.md "Tables" (normative). ---- */
/* Open table `which` in txn (never creates). STRATA_NOTFOUND when the blob
 * store never wrote it: callers treat that as an empty table. */
QUERY_MUST int qtab_open(strata_txn *txn, int which, strata_table **out);
/* The vector table of dimension dim ("blob:vec:<dim>", never created):
 * STRATA_NOTFOUND when no embedding of that dimension was ever stored,
 * STRATA_ECORRUPT when the name holds something else than such a table. */
QUERY_MUST int qtab_open_vec(strata_txn *txn, size_t dim, strata_table **out);
/* Key of blob:tags / blob:ns: u8 length, name bytes, id BE; returns the
 * length (k holds at least 1 + STRATA_BLOB_MAX_META + 8 bytes). */
/* As qtab_open (qtab_open_vec of the query's dimension for QT_VEC), cached
 * in r (tables live until the transaction ends). */
QUERY_MUST int qrun_tab(struct qrun *r, int which, strata_table **out);
size_t qkey_named(uint8_t *k, const char *name, size_t len, uint64_t id);
static inline void q_be64_put(uint8_t *p, uint64_t v) {
    for (int i = 7; i >= 0; i--) { p[i] = (uint8_t)v; v >>= 8; }
}
static inline uint64_t q_be64_get(const uint8_t *p) {
    uint64_t v = 0;
    for (int i = 0; i < 8; i++) v = v << 8 | p[i];
    return v;
}
static inline uint32_t q_le32_get(const uint8_t *p) {
    return (uint32_t)p[0] | (uint32_t)p[1] << 8 | (uint32_t)p[2] << 16 | (uint32_t)p[3] << 24;
}
static inline uint64_t q_le64_get(const uint8_t *p) {
    uint64_t v = 0;
    for (int i = 7; i >= 0; i--) v = v << 8 | p[i];
    return v;
}
static inline strata_slice q_sl(const void *p, size_t n) { strata_slice s = { p, n }; return s; }

/* ---- idlist.c ---- */
QUERY_MUST int qids_push(qids *l, uint64_t id, uint64_t aux);
void qids_free(qids *l);
/* Sort by id (aux follows). */
void qids_sort(qids *l);
/* Index of id in a sorted list, or -1. */
long qids_find(const qids *l, uint64_t id);
QUERY_MUST int qhops_put(qhops *h, uint64_t id, uint32_t hops);
/* Hops of id, or STRATA_QUERY_NO_HOPS. */
uint32_t qhops_get(const qhops *h, uint64_t id);
void qhops_free(qhops *h);
/* Candidate array: append (flags, hops initialised), drop QC_DEAD entries. */
QUERY_MUST int qrun_add(qrun *r, uint64_t id, uint64_t hlc, int has_hlc);
void qrun_compact(qrun *r);
/* Index of candidate id, or -1 (binary search). */
long qrun_find(const qrun *r, uint64_t id);

/* ---- sources.c: index scans, each in key order, stopping past `cap` ids ----
 * Return STRATA_OK (the whole list is in out), QSRC_OVER (more than cap rows:
 * out holds cap + 1 of them) or an error. A table never written is empty. */
#define QSRC_OVER 1
QUERY_MUST int qsrc_tag(strata_txn *txn, const char *tag, size_t cap, qids *out);
QUERY_MUST int qsrc_ns(strata_txn *txn, const char *ns, size_t cap, qids *out);
/* (hlc, id) rows of blob:time with lo <= hlc <= hi: aux = hlc, HLC order. */
QUERY_MUST int qsrc_time(strata_txn *txn, uint64_t lo, uint64_t hi, size_t cap, qids *out);
/* Newest first: rows of blob:time from the end, until `want` ids have been
 * read and the next row has a lower recency score at (now_hlc, half_life_ms)
 * (so every blob tied with the last one taken is in). aux = hlc. */
QUERY_MUST int qsrc_time_newest(strata_txn *txn, size_t want, uint64_t now_hlc,
                                uint64_t half_life_ms, qids *out);

/* ---- probe.c: point lookups of one blob ---- */
/* 1 if blob id carries tag, 0 if not, < 0 on error. */
QUERY_MUST int qprobe_tag(qrun *r, const char *tag, uint64_t id);
/* 1 if blob id is in namespace ns, 0 if not, < 0 on error. */
QUERY_MUST int qprobe_ns(qrun *r, const char *ns, uint64_t id);

/* ---- plan.c: candidate generation and filters ---- */
/* Choose the driver, generate candidates, apply every filter. */
QUERY_MUST int qplan_candidates(qrun *r);
/* Make sure every candidate has its HLC (time index or metadata). */
QUERY_MUST int qplan_load_hlc(qrun *r);
/* Count preferred tags of every candidate into n_pref. */
QUERY_MUST int qplan_pref_tags(qrun *r);
/* Breadth-first walk from the anchor into r->hops (STRATA_NOTFOUND for an
 * unknown anchor). */
QUERY_MUST int qplan_lineage(qrun *r);
/* Membership test of a tag over the candidates: mark[i] = carried. Loads
 * the tag's index rows when they are few, else probes each candidate. */
QUERY_MUST int qplan_tag_marks(qrun *r, const char *tag, uint8_t *mark);

/* ---- similarity.c ---- */
/* Set dist and QC_DIST on the k nearest candidates (exact or ann). */
QUERY_MUST int qsim_run(qrun *r);
/* Exact k nearest of all embeddings (no filter): candidates = the hits. */
QUERY_MUST int qsim_drive(qrun *r);

/* ---- score.c ---- */
/* Similarity map of docs/QUERY.md for distance d. */
double qscore_similarity(strata_metric m, double scale, float d);
double qscore_recency(uint64_t now_hlc, uint64_t created_hlc, uint64_t half_life_ms);
double qscore_lineage(uint32_t hops, uint32_t max_hops);
/* Fill sig[] and score of every candidate; rank and write the answer. */
QUERY_MUST int qscore_rank(qrun *r, strata_query_result *out, size_t cap, size_t *n_out);

#endif /* STRATA_QUERY_INT_H */
