/* query/run.c - strata_query_run: one composite query in the caller's
 * transaction. The steps, each in its own file:
 *   1. check the query as a whole (a signal set, weights not all zero);
 *   2. the lineage walk from the anchor (plan.c, when an anchor is set);
 *   3. candidates: driver choice, index filters, predicate (plan.c);
 *   4. what the set signals need: HLCs, preferred tags, hops (plan.c), the
 *      k nearest (similarity.c);
 *   5. scores, fusion, ranking into a scratch answer (score.c), copied to the
 *      caller's array only when everything succeeded.
 * Invariant: nothing but the local run state is written; the query object is
 * read-only here, so several runs may share it. */
#include <stdlib.h>
#include <string.h>

#include "query_int.h"

static int check(strata_txn *txn, const strata_query *q, const strata_query_result *out, size_t cap,
                 const size_t *n_out) {
    if (!txn || !q || q->magic != QUERY_MAGIC || !out || !n_out || cap == 0) return STRATA_EINVAL;
    unsigned active = query_active(q);
    double wsum = 0;
    for (int s = 0; s < STRATA_QUERY_NSIG; s++)
        if (active >> s & 1) wsum += q->w[s];
    return active && wsum > 0 ? STRATA_OK : STRATA_EINVAL;
}

static void run_free(qrun *r) {
    free(r->c);
    qhops_free(&r->hops);
}

static int signals_input(qrun *r) {
    unsigned active = query_active(r->q);
    int rc = STRATA_OK;
    if (active >> STRATA_QUERY_RECENCY & 1) rc = qplan_load_hlc(r);
    if (!rc && (active >> STRATA_QUERY_TAGS & 1)) rc = qplan_pref_tags(r);
    for (size_t i = 0; !rc && r->q->anchor && i < r->n; i++) r->c[i].hops = qhops_get(&r->hops, r->c[i].id);
    if (!rc && (active >> STRATA_QUERY_SIMILARITY & 1) && r->ex.driver != STRATA_QUERY_DRIVE_SIMILARITY)
        rc = qsim_run(r);
    return rc;
}

int strata_query_run(strata_txn *txn, const strata_query *q, strata_query_result *out, size_t cap,
                     size_t *n_out, strata_query_explain *ex) {
    int rc = check(txn, q, out, cap, n_out);
    if (rc) return rc;
    qrun r;
    memset(&r, 0, sizeof r);
    r.txn = txn;
    r.q = q;
    r.want = cap;
    for (int t = 0; t < QT_COUNT; t++) r.tab_rc[t] = 1;
    r.ex.fusion = q->fusion;
    unsigned active = query_active(q);
    for (int s = 0; s < STRATA_QUERY_NSIG; s++) r.ex.weight[s] = (active >> s & 1) ? q->w[s] : 0.0;
    strata_blob_stats st;
    strata_query_result *tmp = NULL;
    size_t n = 0;
    if ((rc = strata_blob_stats_get(txn, &st))) goto out;
    r.ex.n_blobs = st.n_blobs;
    r.now_hlc = q->now_hlc;
    if (q->half_life_ms && !q->now_hlc && (rc = strata_txn_hlc(txn, &r.now_hlc))) goto out;
    if ((rc = qplan_lineage(&r)) || (rc = qplan_candidates(&r)) || (rc = signals_input(&r))) goto out;
    size_t want = cap < r.n ? cap : r.n;
    tmp = malloc((want ? want : 1) * sizeof *tmp);
    if (!tmp) { rc = STRATA_ENOMEM; goto out; }
    if ((rc = qscore_rank(&r, tmp, want ? want : 1, &n))) goto out;
    memcpy(out, tmp, n * sizeof *tmp);
    *n_out = n;
    if (ex) *ex = r.ex;
out:
    free(tmp);
    run_free(&r);
    return rc;
}
