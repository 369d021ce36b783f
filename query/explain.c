/* query/explain.c - strata_query_explain_format: the plan of a run and the
 * per-signal scores of its answers as text, for logs and demos. Pure: reads
 * only its arguments.
 * Invariant: behaves like snprintf (always NUL-terminates when cap > 0,
 * returns the length the whole text needs). */
#include <math.h>
#include <stdarg.h>
#include <stdio.h>

#include "query_int.h"

typedef struct sbuf { char *p; size_t cap, len; } sbuf;

static void put(sbuf *b, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static void put(sbuf *b, const char *fmt, ...) {
    va_list ap;
    va_start(ap, fmt);
    size_t room = b->len < b->cap ? b->cap - b->len : 0;
    int n = vsnprintf(room ? b->p + b->len : NULL, room, fmt, ap);
    va_end(ap);
    if (n > 0) b->len += (size_t)n;
}

static const char *const drv_names[STRATA_QUERY_NDRIVE] = {
    "all blobs (time index)", "required tag", "namespace", "time window",
    "lineage radius", "k nearest embeddings", "newest first (time index)",
    "lineage radius + preferred tags (support)",
};
static const char *const sig_names[STRATA_QUERY_NSIG] = { "similarity", "recency", "lineage", "tags" };

static void plan(sbuf *b, const strata_query_explain *ex) {
    int d = ex->driver >= 0 && ex->driver < STRATA_QUERY_NDRIVE ? ex->driver : 0;
    put(b, "plan: candidates from %s", drv_names[d]);
    if (ex->driver_arg[0]) put(b, " \"%s\"", ex->driver_arg);
    put(b, " (store: %llu blobs)\n", (unsigned long long)ex->n_blobs);
    int any = 0;
    for (int k = STRATA_QUERY_DRIVE_TAG; k < STRATA_QUERY_NDRIVE; k++) {
        if (ex->est[k] == STRATA_QUERY_EST_UNSET || k == STRATA_QUERY_DRIVE_SIMILARITY ||
            k == STRATA_QUERY_DRIVE_RECENCY)
            continue;
        put(b, "%s%s: %s%llu", any ? ", " : "  index rows seen: ", drv_names[k],
            (ex->est_capped >> k & 1) ? ">" : "",
            (unsigned long long)(ex->est[k] - ((ex->est_capped >> k & 1) ? 1 : 0)));
        any = 1;
    }
    if (any) put(b, "\n");
    put(b, "  candidates %llu -> index filters %llu -> predicate %llu (probes %llu, metadata reads %llu)\n",
        (unsigned long long)ex->n_generated, (unsigned long long)ex->n_indexed,
        (unsigned long long)ex->n_filtered, (unsigned long long)ex->n_probes,
        (unsigned long long)ex->n_meta_loads);
    static const char *const src[4] = { "", "exact scan", "index (ann function)", "IVF-PQ index" };
    if (ex->sim_source > 0 && ex->sim_source < 4)
        put(b, "  similarity: %s%s, %llu %s, %llu ranked\n", src[ex->sim_source],
            ex->sim_fallback ? " (chosen index missing)" : "", (unsigned long long)ex->n_sim_considered,
            ex->sim_source == 1 ? "embeddings compared" : "index hits", (unsigned long long)ex->n_sim_ranked);
    if (ex->weight[STRATA_QUERY_LINEAGE] > 0 || ex->n_reached)
        put(b, "  lineage: %llu blobs within the radius\n", (unsigned long long)ex->n_reached);
    put(b, "  fusion: %s, weights", ex->fusion == STRATA_QUERY_FUSE_RRF ? "reciprocal rank" : "weighted sum");
    for (int s = 0; s < STRATA_QUERY_NSIG; s++) put(b, " %s=%.3g", sig_names[s], ex->weight[s]);
    put(b, "; scored %llu, returned %llu\n", (unsigned long long)ex->n_scored,
        (unsigned long long)ex->n_results);
}

size_t strata_query_explain_format(const strata_query_explain *ex, const strata_query_result *res,
                                   size_t n, char *buf, size_t cap) {
    sbuf b = { buf, buf ? cap : 0, 0 };
    if (b.cap) buf[0] = 0;
    if (ex) plan(&b, ex);
    for (size_t i = 0; res && i < n; i++) {
        const strata_query_result *r = &res[i];
        put(&b, "  #%zu id %llu score %.4f:", i + 1, (unsigned long long)r->id, r->score);
        for (int s = 0; s < STRATA_QUERY_NSIG; s++)
            if (r->rank[s] || r->signal[s] > 0) put(&b, " %s %.3f (rank %u)", sig_names[s], r->signal[s], r->rank[s]);
        if (!isnan(r->dist)) put(&b, " dist %.4g", (double)r->dist);
        if (r->hops != STRATA_QUERY_NO_HOPS) put(&b, " hops %u", r->hops);
        put(&b, "\n");
    }
    return b.len;
}
