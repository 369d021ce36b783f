/* query/score.c - the signal scores, their fusion and the final ranking
 * (normative definitions: docs/QUERY.md "Scores" and "Fusion").
 *   similarity  COSINE: clamp(1 - d/2, 0, 1); L2, L1: 1 / (1 + max(d,0)/scale);
 *               IP (d = -dot): 1 / (1 + exp(d/scale)); 0 outside the k nearest
 *   recency     1 if created >= now (physical ms), else 0.5 ^ (age_ms / half_life_ms)
 *   lineage     1 - hops / (max_hops + 1) within the radius, else 0
 *   tags        preferred tags carried / preferred tags
 *   FUSE_SUM    sum_s w_s S_s / sum_s w_s                       (s: set signals)
 *   FUSE_RRF    sum_{s: S_s > 0} w_s / (c + rank_s) / sum_s w_s / (c + 1)
 * rank_s of a candidate is 1 + the number of candidates with a greater S_s
 * (competition ranking: ties share a rank). The answer is the candidates with
 * a fused score > 0, by score descending, then id ascending.
 * Invariants: (1) every S_s and every fused score is in [0, 1]; (2) sums run
 * over the signals in index order, so the result is reproducible bit for bit
 * by any evaluation that does the same (tests/query's brute force does). */
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "query_int.h"

enum { COUNT_RANKS_MAX = 16 };   /* results up to this: count ranks, else sort */

double qscore_similarity(strata_metric m, double scale, float d) {
    double x = d;
    if (m == STRATA_METRIC_COSINE) {
        double s = 1.0 - x / 2.0;
        return s < 0 ? 0 : s > 1 ? 1 : s;
    }
    if (m == STRATA_METRIC_IP) return 1.0 / (1.0 + exp(x / scale));
    if (x < 0) x = 0;
    return 1.0 / (1.0 + x / scale);
}

double qscore_recency(uint64_t now_hlc, uint64_t created_hlc, uint64_t half_life_ms) {
    uint64_t now = STRATA_HLC_PHYS_MS(now_hlc), at = STRATA_HLC_PHYS_MS(created_hlc);
    if (at >= now) return 1.0;
    return pow(0.5, (double)(now - at) / (double)half_life_ms);
}

double qscore_lineage(uint32_t hops, uint32_t max_hops) {
    if (hops > max_hops) return 0.0;
    return 1.0 - (double)hops / ((double)max_hops + 1.0);
}

static void signals(qrun *r, unsigned active) {
    const strata_query *q = r->q;
    for (size_t i = 0; i < r->n; i++) {
        qcand *c = &r->c[i];
        memset(c->sig, 0, sizeof c->sig);
        if ((active >> STRATA_QUERY_SIMILARITY & 1) && (c->flags & QC_DIST))
            c->sig[STRATA_QUERY_SIMILARITY] = qscore_similarity(q->metric, q->scale, c->dist);
        if (active >> STRATA_QUERY_RECENCY & 1)
            c->sig[STRATA_QUERY_RECENCY] = qscore_recency(r->now_hlc, c->hlc, q->half_life_ms);
        if (active >> STRATA_QUERY_LINEAGE & 1)
            c->sig[STRATA_QUERY_LINEAGE] = qscore_lineage(c->hops, q->max_hops);
        if (active >> STRATA_QUERY_TAGS & 1)
            c->sig[STRATA_QUERY_TAGS] = (double)c->n_pref / (double)q->pref.n;
    }
}

typedef struct keyed { double v; uint64_t id; size_t i; } keyed;

/* Descending value, then ascending id. */
static int keyed_cmp(const void *a, const void *b) {
    const keyed *x = a, *y = b;
    if (x->v != y->v) return x->v > y->v ? -1 : 1;
    return (x->id > y->id) - (x->id < y->id);
}

/* rank[i * NSIG + s] for every candidate i (competition ranking, 0 for 0). */
static int ranks_sorted(qrun *r, int s, uint32_t *rank) {
    keyed *k = malloc((r->n ? r->n : 1) * sizeof *k);
    if (!k) return STRATA_ENOMEM;
    for (size_t i = 0; i < r->n; i++) k[i] = (keyed){ r->c[i].sig[s], r->c[i].id, i };
    qsort(k, r->n, sizeof *k, keyed_cmp);
    uint32_t cur = 0;
    for (size_t p = 0; p < r->n; p++) {
        if (p == 0 || k[p].v != k[p - 1].v) cur = (uint32_t)(p + 1);
        rank[k[p].i * STRATA_QUERY_NSIG + s] = k[p].v > 0 ? cur : 0;
    }
    free(k);
    return STRATA_OK;
}

static uint32_t rank_counted(const qrun *r, int s, double v) {
    if (!(v > 0)) return 0;
    uint32_t above = 0;
    for (size_t i = 0; i < r->n; i++) above += r->c[i].sig[s] > v;
    return above + 1;
}

static void fuse(qrun *r, const double *wq, const uint32_t *rank) {
    const strata_query *q = r->q;
    double wsum = 0, rsum = 0, wmax = 0, w[STRATA_QUERY_NSIG];
    for (int s = 0; s < STRATA_QUERY_NSIG; s++) {
        w[s] = wq[s];
        wsum += w[s];
        rsum += w[s] / (q->rrf_c + 1.0);
        if (w[s] > wmax) wmax = w[s];
    }
    if (!isfinite(wsum) || !isfinite(rsum)) {
        /* weights near DBL_MAX: the sums overflow (inf / inf). The fused
         * score does not depend on the weights' scale, so use w / max w
         * (only then: ordinary weights keep their exact bits) */
        wsum = rsum = 0;
        for (int s = 0; s < STRATA_QUERY_NSIG; s++) {
            w[s] /= wmax;
            wsum += w[s];
            rsum += w[s] / (q->rrf_c + 1.0);
        }
    }
    for (size_t i = 0; i < r->n; i++) {
        qcand *c = &r->c[i];
        double acc = 0;
        for (int s = 0; s < STRATA_QUERY_NSIG; s++) {
            if (q->fusion == STRATA_QUERY_FUSE_SUM) acc += w[s] * c->sig[s];
            else if (rank[i * STRATA_QUERY_NSIG + s]) acc += w[s] / (q->rrf_c + rank[i * STRATA_QUERY_NSIG + s]);
        }
        c->score = q->fusion == STRATA_QUERY_FUSE_SUM ? acc / wsum : acc / rsum;
    }
}

/* The first `cap` of sel[0..n) in keyed_cmp order, sorted, into sel[0..):
 * a heap of the best cap seen (its root the worst of them), then a sort. */
static size_t select_top(keyed *sel, size_t n, size_t cap) {
    if (n <= 2 * cap) {
        qsort(sel, n, sizeof *sel, keyed_cmp);
        return n < cap ? n : cap;
    }
    size_t h = 0;
    for (size_t i = 0; i < n; i++) {
        keyed x = sel[i];
        size_t at;
        if (h < cap) {                       /* push, sift up */
            at = h++;
            while (at && keyed_cmp(&sel[(at - 1) / 2], &x) < 0) { sel[at] = sel[(at - 1) / 2]; at = (at - 1) / 2; }
        } else if (keyed_cmp(&x, &sel[0]) < 0) {   /* better than the worst: replace root, sift down */
            at = 0;
            for (;;) {
                size_t c = 2 * at + 1;
                if (c >= h) break;
                if (c + 1 < h && keyed_cmp(&sel[c], &sel[c + 1]) < 0) c++;
                if (keyed_cmp(&x, &sel[c]) >= 0) break;
                sel[at] = sel[c];
                at = c;
            }
        } else continue;
        sel[at] = x;
    }
    qsort(sel, h, sizeof *sel, keyed_cmp);
    return h;
}

/* Fill one answer from candidate c; its HLC from the metadata if unknown. */
static int fill(qrun *r, const qcand *c, const uint32_t *rank, size_t i, unsigned active,
                strata_query_result *o) {
    memset(o, 0, sizeof *o);
    o->id = c->id;
    o->score = c->score;
    for (int s = 0; s < STRATA_QUERY_NSIG; s++) {
        o->signal[s] = c->sig[s];
        if (active >> s & 1)
            o->rank[s] = rank ? rank[i * STRATA_QUERY_NSIG + s] : rank_counted(r, s, c->sig[s]);
    }
    o->dist = (c->flags & QC_DIST) ? c->dist : NAN;
    o->hops = c->hops;
    o->tags_matched = c->n_pref;
    o->created_hlc = c->hlc;
    if (!(c->flags & QC_HLC)) {
        strata_blob_info info;
        int rc = strata_blob_info_get(r->txn, c->id, &info);
        r->ex.n_meta_loads++;
        if (rc) return rc == STRATA_NOTFOUND ? STRATA_ECORRUPT : rc;
        o->created_hlc = info.created_hlc;
    }
    return STRATA_OK;
}

int qscore_rank(qrun *r, strata_query_result *out, size_t cap, size_t *n_out) {
    const strata_query *q = r->q;
    unsigned active = query_active(q);
    double w[STRATA_QUERY_NSIG];
    for (int s = 0; s < STRATA_QUERY_NSIG; s++) w[s] = (active >> s & 1) ? q->w[s] : 0.0;
    signals(r, active);
    keyed *sel = malloc((r->n ? r->n : 1) * sizeof *sel);
    uint32_t *rank = NULL;
    int rc = sel ? STRATA_OK : STRATA_ENOMEM;
    int sorted_ranks = q->fusion == STRATA_QUERY_FUSE_RRF || cap > COUNT_RANKS_MAX;
    if (!rc && sorted_ranks) {
        rank = calloc(r->n ? r->n * STRATA_QUERY_NSIG : 1, sizeof *rank);
        if (!rank) rc = STRATA_ENOMEM;
        for (int s = 0; !rc && s < STRATA_QUERY_NSIG; s++)
            if (active >> s & 1) rc = ranks_sorted(r, s, rank);
    }
    size_t n_sel = 0;
    if (!rc) {
        fuse(r, w, rank);
        for (size_t i = 0; i < r->n; i++)
            if (r->c[i].score > 0) sel[n_sel++] = (keyed){ r->c[i].score, r->c[i].id, i };
    }
    size_t n = rc ? 0 : select_top(sel, n_sel, cap);
    for (size_t j = 0; !rc && j < n; j++) rc = fill(r, &r->c[sel[j].i], rank, sel[j].i, active, &out[j]);
    r->ex.n_scored = n_sel;
    r->ex.n_results = n;
    if (!rc) *n_out = n;
    free(sel);
    free(rank);
    return rc;
}
