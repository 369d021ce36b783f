/* query/plan.c - candidate generation and filtering (docs/QUERY.md "Plan").
 *
 * 1. Driver choice. Every filter that has an index (the lineage radius with
 *    STRATA_QUERY_LINEAGE_FILTER, the namespace, each required tag, the time
 *    window) is a possible source of candidates. The lineage set is already in
 *    memory (qplan_lineage); the others are read with a cap equal to the size
 *    of the smallest list seen so far, so choosing costs at most a few times
 *    the size of the winner, never a full scan of a large index. When only
 *    lineage and preferred tags are set (all weighted), their support (the
 *    radius plus the tags' rows) competes too: nothing outside it can score.
 *    The smallest complete list drives. With no such filter, the candidates are every blob
 *    (the whole time index), or, when one signal is the only one set and no
 *    filter at all is given, the k nearest embeddings (similarity.c) or the
 *    newest blobs (recency): the answer is then read directly.
 * 2. Filters on the candidates (sorted by id): lineage radius and anchor
 *    exclusion from memory; namespace and tags by intersecting with their
 *    index rows when those are at most 4x the candidates, else by one point
 *    lookup per candidate (probe.c); the window likewise (else each
 *    candidate's HLC from its metadata record); the predicate last, on the
 *    survivors only.
 * Invariant: after each step the candidate array is sorted by id and every
 * candidate passed every filter applied so far (query_int.h invariant 2). */
#include <stdlib.h>
#include <string.h>

#include "query_int.h"

enum { INTERSECT_FACTOR = 4 };

static size_t cap_of(size_t n) { return n > SIZE_MAX / INTERSECT_FACTOR ? SIZE_MAX : n * INTERSECT_FACTOR; }

static int on_reach(void *ctx, uint64_t id, uint32_t depth) {
    qrun *r = ctx;
    return qhops_put(&r->hops, id, depth);
}

int qplan_lineage(qrun *r) {
    const strata_query *q = r->q;
    strata_blob_info info;
    if (!q->anchor) return STRATA_OK;
    int rc = strata_blob_info_get(r->txn, q->anchor, &info);
    r->ex.n_meta_loads++;
    if (rc || (rc = qhops_put(&r->hops, q->anchor, 0))) return rc;
    rc = strata_blob_traverse(r->txn, q->anchor, q->dir, q->rel_mask, q->max_hops, on_reach, r);
    r->ex.n_reached = r->hops.n;
    return rc;
}

/* Load the index rows of filter `kind` with at most cap ids (QSRC_OVER past it). */
static int load(qrun *r, int kind, const char *arg, size_t cap, qids *l) {
    const strata_query *q = r->q;
    switch (kind) {
    case STRATA_QUERY_DRIVE_TAG: return qsrc_tag(r->txn, arg, cap, l);
    case STRATA_QUERY_DRIVE_NAMESPACE: return qsrc_ns(r->txn, arg, cap, l);
    case STRATA_QUERY_DRIVE_WINDOW: return qsrc_time(r->txn, q->hlc_lo, q->hlc_hi, cap, l);
    default: return STRATA_EINVAL;
    }
}

typedef struct choice {
    int         kind;
    const char *arg;
    size_t      n;        /* SIZE_MAX: no list yet */
    qids        l;
} choice;

/* Try filter (kind, arg) as the driver: it wins when its list is complete and
 * shorter than the best so far. Records the row count in the explain. */
static int try_driver(qrun *r, int kind, const char *arg, choice *best) {
    qids l = { 0 };
    int rc = load(r, kind, arg, best->n, &l);
    if (rc < 0) { qids_free(&l); return rc; }
    uint64_t *est = &r->ex.est[kind];
    if (*est == STRATA_QUERY_EST_UNSET || l.n < *est) {
        *est = l.n;
        if (rc == QSRC_OVER) r->ex.est_capped |= 1u << kind;
        else r->ex.est_capped &= ~(1u << kind);
    }
    if (rc == STRATA_OK && l.n < best->n) {
        qids_free(&best->l);
        best->l = l;
        best->n = l.n;
        best->kind = kind;
        best->arg = arg;
        return STRATA_OK;
    }
    qids_free(&l);
    return STRATA_OK;
}

static int lineage_list(qrun *r, choice *best) {
    const qhops *h = &r->hops;
    for (size_t i = 0; i < h->cap; i++) {
        if (!h->keys[i]) continue;
        int rc = qids_push(&best->l, h->keys[i], 0);
        if (rc) return rc;
    }
    qids_sort(&best->l);
    best->n = best->l.n;
    best->kind = STRATA_QUERY_DRIVE_LINEAGE;
    r->ex.est[STRATA_QUERY_DRIVE_LINEAGE] = best->n;
    return STRATA_OK;
}

/* Only lineage and/or preferred tags are set, all with a positive weight:
 * a blob outside the lineage radius and carrying no preferred tag scores 0
 * in every signal, so it can neither be an answer nor change a rank. */
static int support_ok(const strata_query *q) {
    unsigned active = query_active(q), allowed = 1u << STRATA_QUERY_LINEAGE | 1u << STRATA_QUERY_TAGS;
    if (!active || (active & ~allowed)) return 0;
    for (int s = 0; s < STRATA_QUERY_NSIG; s++)
        if ((active >> s & 1) && !(q->w[s] > 0)) return 0;
    return 1;
}

/* The support (radius plus preferred tags' rows) as a driver, if smaller. */
static int try_support(qrun *r, choice *best) {
    const strata_query *q = r->q;
    qids l = { 0 };
    int rc = STRATA_OK;
    for (size_t i = 0; !rc && q->anchor && i < r->hops.cap; i++)
        if (r->hops.keys[i]) rc = qids_push(&l, r->hops.keys[i], 0);
    for (size_t t = 0; !rc && t < q->pref.n; t++) rc = qsrc_tag(r->txn, q->pref.v[t], best->n, &l);
    if (!rc) {
        size_t o = 0;
        qids_sort(&l);
        for (size_t i = 0; i < l.n; i++)
            if (!o || l.id[i] != l.id[o - 1]) { l.id[o] = l.id[i]; l.aux[o++] = 0; }
        l.n = o;
        r->ex.est[STRATA_QUERY_DRIVE_SUPPORT] = o;
        if (o < best->n) {
            qids_free(&best->l);
            best->l = l;
            best->n = o;
            best->kind = STRATA_QUERY_DRIVE_SUPPORT;
            best->arg = NULL;
            return STRATA_OK;
        }
    }
    if (rc == QSRC_OVER) rc = STRATA_OK;   /* one tag alone is larger than the best */
    qids_free(&l);
    return rc;
}

static int any_filter(const strata_query *q) {
    return q->has_ns || q->req.n || q->exc.n || q->has_window || q->pred ||
           (q->anchor && (q->lin_flags & (STRATA_QUERY_LINEAGE_FILTER | STRATA_QUERY_EXCLUDE_ANCHOR)));
}

/* Candidates from the best driver, or from a whole-store source. */
static int generate(qrun *r) {
    const strata_query *q = r->q;
    choice best = { STRATA_QUERY_DRIVE_ALL, NULL, SIZE_MAX, { 0 } };
    int rc = STRATA_OK;
    if (q->anchor && (q->lin_flags & STRATA_QUERY_LINEAGE_FILTER)) rc = lineage_list(r, &best);
    if (!rc && q->has_ns) rc = try_driver(r, STRATA_QUERY_DRIVE_NAMESPACE, q->ns, &best);
    for (size_t i = 0; !rc && i < q->req.n; i++) rc = try_driver(r, STRATA_QUERY_DRIVE_TAG, q->req.v[i], &best);
    if (!rc && q->has_window) rc = try_driver(r, STRATA_QUERY_DRIVE_WINDOW, NULL, &best);
    if (!rc && support_ok(q)) rc = try_support(r, &best);
    unsigned active = query_active(q);
    if (!rc && best.n == SIZE_MAX && !any_filter(q)) {
        if (active == 1u << STRATA_QUERY_SIMILARITY) {
            r->ex.driver = STRATA_QUERY_DRIVE_SIMILARITY;
            qids_free(&best.l);
            return qsim_drive(r);
        }
        if (active == 1u << STRATA_QUERY_RECENCY) {
            best.kind = STRATA_QUERY_DRIVE_RECENCY;
            rc = qsrc_time_newest(r->txn, r->want, r->now_hlc, q->half_life_ms, &best.l);
        }
    }
    if (!rc && best.n == SIZE_MAX && best.kind == STRATA_QUERY_DRIVE_ALL)
        rc = qsrc_time(r->txn, 0, UINT64_MAX, SIZE_MAX, &best.l);
    if (!rc) qids_sort(&best.l);
    int timed = best.kind == STRATA_QUERY_DRIVE_ALL || best.kind == STRATA_QUERY_DRIVE_WINDOW ||
                best.kind == STRATA_QUERY_DRIVE_RECENCY;
    for (size_t i = 0; !rc && i < best.l.n; i++) {
        if (i && best.l.id[i] == best.l.id[i - 1]) { rc = STRATA_ECORRUPT; break; }
        rc = qrun_add(r, best.l.id[i], best.l.aux[i], timed);
    }
    r->ex.driver = best.kind;
    if (best.arg) {
        size_t len = strlen(best.arg);
        memcpy(r->ex.driver_arg, best.arg, len + 1);
    }
    r->ex.n_generated = r->n;
    qids_free(&best.l);
    return rc;
}

int qplan_tag_marks(qrun *r, const char *tag, uint8_t *mark) {
    qids l = { 0 };
    int rc = qsrc_tag(r->txn, tag, cap_of(r->n), &l);
    if (rc == STRATA_OK) {
        for (size_t i = 0, j = 0; i < r->n; i++) {
            while (j < l.n && l.id[j] < r->c[i].id) j++;
            mark[i] = j < l.n && l.id[j] == r->c[i].id;
        }
    } else if (rc == QSRC_OVER) {
        rc = STRATA_OK;
        for (size_t i = 0; !rc && i < r->n; i++) {
            int got = qprobe_tag(r, tag, r->c[i].id);
            r->ex.n_probes++;
            if (got < 0) rc = got;
            else mark[i] = (uint8_t)got;
        }
    }
    qids_free(&l);
    return rc;
}

static int ns_marks(qrun *r, uint8_t *mark) {
    qids l = { 0 };
    int rc = qsrc_ns(r->txn, r->q->ns, cap_of(r->n), &l);
    if (rc == STRATA_OK) {
        for (size_t i = 0, j = 0; i < r->n; i++) {
            while (j < l.n && l.id[j] < r->c[i].id) j++;
            mark[i] = j < l.n && l.id[j] == r->c[i].id;
        }
    } else if (rc == QSRC_OVER) {
        rc = STRATA_OK;
        for (size_t i = 0; !rc && i < r->n; i++) {
            int got = qprobe_ns(r, r->q->ns, r->c[i].id);
            r->ex.n_probes++;
            if (got < 0) rc = got;
            else mark[i] = (uint8_t)got;
        }
    }
    qids_free(&l);
    return rc;
}

/* Keep the candidates whose mark equals want. */
static void keep_marked(qrun *r, const uint8_t *mark, uint8_t want) {
    for (size_t i = 0; i < r->n; i++)
        if (mark[i] != want) r->c[i].flags |= QC_DEAD;
    qrun_compact(r);
}

static int meta_of(qrun *r, qcand *c, strata_blob_info *info) {
    int rc = strata_blob_info_get(r->txn, c->id, info);
    r->ex.n_meta_loads++;
    if (rc == STRATA_NOTFOUND) return STRATA_ECORRUPT;   /* indexed, but no record */
    if (rc) return rc;
    c->hlc = info->created_hlc;
    c->flags |= QC_HLC;
    return STRATA_OK;
}

/* Window filter for a non-driving window. */
static int window_filter(qrun *r) {
    const strata_query *q = r->q;
    qids l = { 0 };
    int rc = qsrc_time(r->txn, q->hlc_lo, q->hlc_hi, cap_of(r->n), &l);
    if (rc == STRATA_OK) {
        qids_sort(&l);
        for (size_t i = 0, j = 0; i < r->n; i++) {
            while (j < l.n && l.id[j] < r->c[i].id) j++;
            if (j < l.n && l.id[j] == r->c[i].id) { r->c[i].hlc = l.aux[j]; r->c[i].flags |= QC_HLC; }
            else r->c[i].flags |= QC_DEAD;
        }
    } else if (rc == QSRC_OVER) {
        rc = STRATA_OK;
        for (size_t i = 0; !rc && i < r->n; i++) {
            qcand *c = &r->c[i];
            strata_blob_info info;
            if (!(c->flags & QC_HLC) && (rc = meta_of(r, c, &info))) break;
            if (c->hlc < q->hlc_lo || c->hlc > q->hlc_hi) c->flags |= QC_DEAD;
        }
    }
    qids_free(&l);
    qrun_compact(r);
    return rc;
}

static int predicate_filter(qrun *r) {
    int rc = STRATA_OK;
    for (size_t i = 0; !rc && i < r->n; i++) {
        strata_blob_info info;
        if ((rc = meta_of(r, &r->c[i], &info))) break;
        if (!r->q->pred(r->q->pred_ctx, r->txn, &info)) r->c[i].flags |= QC_DEAD;
    }
    qrun_compact(r);
    return rc;
}

/* Filters on memory and indexes, in order of cost; `mark` has r->n bytes. */
static int index_filters(qrun *r, uint8_t *mark) {
    const strata_query *q = r->q;
    int drv = r->ex.driver, rc = STRATA_OK;
    if (q->anchor && (q->lin_flags & STRATA_QUERY_LINEAGE_FILTER) && drv != STRATA_QUERY_DRIVE_LINEAGE) {
        for (size_t i = 0; i < r->n; i++)
            if (qhops_get(&r->hops, r->c[i].id) == STRATA_QUERY_NO_HOPS) r->c[i].flags |= QC_DEAD;
        qrun_compact(r);
    }
    if (q->anchor && (q->lin_flags & STRATA_QUERY_EXCLUDE_ANCHOR)) {
        long a = qrun_find(r, q->anchor);
        if (a >= 0) { r->c[a].flags |= QC_DEAD; qrun_compact(r); }
    }
    if (q->has_ns && drv != STRATA_QUERY_DRIVE_NAMESPACE) {
        if ((rc = ns_marks(r, mark))) return rc;
        keep_marked(r, mark, 1);
    }
    for (size_t t = 0; t < q->req.n; t++) {
        if (drv == STRATA_QUERY_DRIVE_TAG && strcmp(q->req.v[t], r->ex.driver_arg) == 0) continue;
        if ((rc = qplan_tag_marks(r, q->req.v[t], mark))) return rc;
        keep_marked(r, mark, 1);
    }
    for (size_t t = 0; t < q->exc.n; t++) {
        if ((rc = qplan_tag_marks(r, q->exc.v[t], mark))) return rc;
        keep_marked(r, mark, 0);
    }
    if (q->has_window && drv != STRATA_QUERY_DRIVE_WINDOW) rc = window_filter(r);
    return rc;
}

int qplan_candidates(qrun *r) {
    for (int d = 0; d < STRATA_QUERY_NDRIVE; d++) r->ex.est[d] = STRATA_QUERY_EST_UNSET;
    int rc = generate(r);
    if (rc) return rc;
    uint8_t *mark = malloc(r->n ? r->n : 1);
    if (!mark) return STRATA_ENOMEM;
    rc = index_filters(r, mark);
    free(mark);
    r->ex.n_indexed = r->n;
    if (!rc && r->q->pred) rc = predicate_filter(r);
    r->ex.n_filtered = r->n;
    return rc;
}

int qplan_load_hlc(qrun *r) {
    size_t missing = 0;
    for (size_t i = 0; i < r->n; i++) missing += !(r->c[i].flags & QC_HLC);
    if (!missing) return STRATA_OK;
    int rc = STRATA_OK;
    if (missing > 64 && missing >= r->ex.n_blobs / 8) {
        /* Many: one pass over the whole time index beats a lookup each. */
        qids l = { 0 };
        rc = qsrc_time(r->txn, 0, UINT64_MAX, SIZE_MAX, &l);
        if (!rc) qids_sort(&l);
        for (size_t i = 0, j = 0; !rc && i < r->n; i++) {
            while (j < l.n && l.id[j] < r->c[i].id) j++;
            if (j < l.n && l.id[j] == r->c[i].id) { r->c[i].hlc = l.aux[j]; r->c[i].flags |= QC_HLC; }
            else rc = STRATA_ECORRUPT;   /* a blob without its time row */
        }
        qids_free(&l);
        return rc;
    }
    for (size_t i = 0; !rc && i < r->n; i++) {
        strata_blob_info info;
        if (!(r->c[i].flags & QC_HLC)) rc = meta_of(r, &r->c[i], &info);
    }
    return rc;
}

int qplan_pref_tags(qrun *r) {
    const strata_query *q = r->q;
    uint8_t *mark = malloc(r->n ? r->n : 1);
    int rc = mark ? STRATA_OK : STRATA_ENOMEM;
    for (size_t t = 0; !rc && t < q->pref.n; t++) {
        if ((rc = qplan_tag_marks(r, q->pref.v[t], mark))) break;
        for (size_t i = 0; i < r->n; i++) r->c[i].n_pref += mark[i];
    }
    free(mark);
    return rc;
}
