/* query/builder.c - the query object: create, free and the setters.
 * Every setter validates its input completely and changes nothing on error,
 * so a query that was built without errors can only fail at run time for
 * reasons that depend on the data (unknown anchor, dimension mismatch) or on
 * the weights of the signals as a whole (all zero).
 * Invariants: (1) q->magic == QUERY_MAGIC from create until free; (2) every
 * weight is finite and >= 0; (3) tag strings are owned copies of 1..255
 * bytes, without duplicates within a list. */
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "query_int.h"

static int live(const strata_query *q) { return q && q->magic == QUERY_MAGIC; }

unsigned query_active(const strata_query *q) {
    unsigned a = 0;
    if (q->vec) a |= 1u << STRATA_QUERY_SIMILARITY;
    if (q->half_life_ms) a |= 1u << STRATA_QUERY_RECENCY;
    if (q->anchor) a |= 1u << STRATA_QUERY_LINEAGE;
    if (q->pref.n) a |= 1u << STRATA_QUERY_TAGS;
    return a;
}

int strata_query_create(strata_query **out) {
    if (!out) return STRATA_EINVAL;
    strata_query *q = calloc(1, sizeof *q);
    if (!q) return STRATA_ENOMEM;
    q->magic = QUERY_MAGIC;
    for (int s = 0; s < STRATA_QUERY_NSIG; s++) q->w[s] = 1.0;
    q->fusion = STRATA_QUERY_FUSE_SUM;
    q->rrf_c = QUERY_RRF_DEFAULT;
    *out = q;
    return STRATA_OK;
}

static void tags_free(qtags *t) {
    for (size_t i = 0; i < t->n; i++) free(t->v[i]);
    t->n = 0;
}

void strata_query_free(strata_query *q) {
    if (!live(q)) return;
    free(q->vec);
    free(q->ivf);
    tags_free(&q->req);
    tags_free(&q->exc);
    tags_free(&q->pref);
    q->magic = 0;
    free(q);
}

int strata_query_set_vector(strata_query *q, strata_metric m, const float *v, size_t dim, size_t k,
                            double scale, unsigned flags) {
    if (!live(q) || (unsigned)m > STRATA_METRIC_L1 || k == 0 || !isfinite(scale) || scale <= 0 ||
        (flags & ~STRATA_QUERY_VEC_SKIP_DIM) || strata_vec_validate(v, dim) != STRATA_OK)
        return STRATA_EINVAL;
    float *copy = malloc(dim * sizeof *copy);
    if (!copy) return STRATA_ENOMEM;
    memcpy(copy, v, dim * sizeof *copy);
    free(q->vec);
    q->vec = copy;
    q->dim = dim;
    q->k = k;
    q->metric = m;
    q->scale = scale;
    q->vec_flags = flags;
    return STRATA_OK;
}

int strata_query_set_ann(strata_query *q, strata_query_ann_fn fn, void *ctx) {
    if (!live(q)) return STRATA_EINVAL;
    q->ann = fn;
    q->ann_ctx = fn ? ctx : NULL;
    if (fn) { free(q->ivf); q->ivf = NULL; q->ivf_h = NULL; }
    return STRATA_OK;
}

int strata_query_set_ivf_handle(strata_query *q, strata_ivf *ix, uint32_t nprobe, uint32_t rerank) {
    if (!live(q)) return STRATA_EINVAL;
    free(q->ivf);
    q->ivf = NULL;
    q->ivf_h = ix;
    q->ivf_nprobe = nprobe;
    q->ivf_rerank = rerank;
    q->ivf_flags = STRATA_QUERY_IVF_REQUIRED;
    if (ix) { q->ann = NULL; q->ann_ctx = NULL; }
    return STRATA_OK;
}

int strata_query_set_ivf(strata_query *q, const char *name, uint32_t nprobe, uint32_t rerank,
                         unsigned flags) {
    if (!live(q) || (flags & ~STRATA_QUERY_IVF_REQUIRED)) return STRATA_EINVAL;
    if (!name) { free(q->ivf); q->ivf = NULL; q->ivf_h = NULL; return STRATA_OK; }
    size_t len = strlen(name);
    if (len == 0 || len > QUERY_IVF_NAME_MAX) return STRATA_EINVAL;
    char *copy = malloc(len + 1);
    if (!copy) return STRATA_ENOMEM;
    memcpy(copy, name, len + 1);
    free(q->ivf);
    q->ivf = copy;
    q->ivf_h = NULL;
    q->ivf_nprobe = nprobe;
    q->ivf_rerank = rerank;
    q->ivf_flags = flags;
    q->ann = NULL;
    q->ann_ctx = NULL;
    return STRATA_OK;
}

int strata_query_set_window(strata_query *q, uint64_t hlc_lo, uint64_t hlc_hi) {
    if (!live(q) || hlc_lo > hlc_hi) return STRATA_EINVAL;
    q->has_window = 1;
    q->hlc_lo = hlc_lo;
    q->hlc_hi = hlc_hi;
    return STRATA_OK;
}

int strata_query_set_recency(strata_query *q, uint64_t now_hlc, uint64_t half_life_ms) {
    if (!live(q) || half_life_ms == 0) return STRATA_EINVAL;
    q->now_hlc = now_hlc;
    q->half_life_ms = half_life_ms;
    return STRATA_OK;
}

int strata_query_set_anchor(strata_query *q, uint64_t anchor, int dir, unsigned rel_mask,
                            uint32_t max_hops, unsigned flags) {
    if (!live(q) || anchor == 0 || dir < STRATA_BLOB_PARENTS || dir > STRATA_BLOB_BOTH ||
        max_hops == 0 || max_hops > QUERY_MAX_HOPS ||
        (flags & ~(STRATA_QUERY_LINEAGE_FILTER | STRATA_QUERY_EXCLUDE_ANCHOR)))
        return STRATA_EINVAL;
    q->anchor = anchor;
    q->dir = dir;
    q->rel_mask = rel_mask;
    q->max_hops = max_hops;
    q->lin_flags = flags;
    return STRATA_OK;
}

static int tags_add(strata_query *q, qtags *t, const char *tag) {
    if (!live(q) || !tag) return STRATA_EINVAL;
    size_t len = strlen(tag);
    if (len == 0 || len > STRATA_BLOB_MAX_META) return STRATA_EINVAL;
    for (size_t i = 0; i < t->n; i++)
        if (strcmp(t->v[i], tag) == 0) return STRATA_OK;
    if (t->n == STRATA_QUERY_MAX_TAGS) return STRATA_EINVAL;
    char *copy = malloc(len + 1);
    if (!copy) return STRATA_ENOMEM;
    memcpy(copy, tag, len + 1);
    t->v[t->n++] = copy;
    return STRATA_OK;
}

/* live(q) before &q->...: member access through NULL is undefined. */
int strata_query_require_tag(strata_query *q, const char *tag) {
    return live(q) ? tags_add(q, &q->req, tag) : STRATA_EINVAL;
}
int strata_query_exclude_tag(strata_query *q, const char *tag) {
    return live(q) ? tags_add(q, &q->exc, tag) : STRATA_EINVAL;
}
int strata_query_prefer_tag(strata_query *q, const char *tag) {
    return live(q) ? tags_add(q, &q->pref, tag) : STRATA_EINVAL;
}

int strata_query_set_namespace(strata_query *q, const char *ns) {
    if (!live(q)) return STRATA_EINVAL;
    if (!ns) { q->has_ns = 0; return STRATA_OK; }
    size_t len = strlen(ns);
    if (len > STRATA_BLOB_MAX_META) return STRATA_EINVAL;
    memcpy(q->ns, ns, len + 1);
    q->has_ns = 1;
    return STRATA_OK;
}

int strata_query_set_predicate(strata_query *q, strata_query_pred_fn fn, void *ctx) {
    if (!live(q)) return STRATA_EINVAL;
    q->pred = fn;
    q->pred_ctx = fn ? ctx : NULL;
    return STRATA_OK;
}

int strata_query_set_weight(strata_query *q, strata_query_signal s, double w) {
    if (!live(q) || (unsigned)s >= STRATA_QUERY_NSIG || !isfinite(w) || w < 0) return STRATA_EINVAL;
    q->w[s] = w;
    return STRATA_OK;
}

int strata_query_set_fusion(strata_query *q, int fusion, double c) {
    if (!live(q) || (fusion != STRATA_QUERY_FUSE_SUM && fusion != STRATA_QUERY_FUSE_RRF) ||
        !isfinite(c) || c < 0)
        return STRATA_EINVAL;
    q->fusion = fusion;
    q->rrf_c = c > 0 ? c : QUERY_RRF_DEFAULT;
    return STRATA_OK;
}
