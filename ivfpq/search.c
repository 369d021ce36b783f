/* ivfpq/search.c - k-NN search: choose nprobe clusters (nearest, or by maximal
 * marginal relevance), build the per-query ADC table (one per query for every
 * metric), scan the clusters' posting blocks into a top-k candidate heap,
 * optionally rerank the best candidates with exact distances from the raw
 * vectors stored in the same blocks (no lookup: candidates carry their
 * address).
 * Distances (smaller is nearer, docs/IVFPQ.md "Search"):
 *   L2      |q-c|^2 + term - 2 sum_j q_j.w_j, term = sum_j |w_j|^2 + 2 c_j.w_j
 *           (stored per entry)
 *   IP      -q.c - sum_j q_j.w_j     (the cluster term q.c is exact, not via L2)
 *   COSINE  1 - q'.c - sum_j q'_j.w_j with q' = q / |q| (vectors stored normalized)
 * where w_j is the codeword of subspace j of a code.
 * Invariants: (1) the stored default nprobe is used when asked for
 * (STRATA_IVF_NPROBE_DEFAULT or params NULL); (2) every distance offered to
 * the heap is finite: tables with a non-finite entry are STRATA_ECORRUPT.
 */
#include <float.h>
#include <math.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "ivfpq_int.h"

typedef struct qstate {
    const strata_ivf_params *p;
    ivf_scratch *b;      /* the handle's buffers                 */
    uint32_t nprobe;
} qstate;

void strata_ivf_params_default(strata_ivf_params *p)
{
    if (!p) return;
    memset(p, 0, sizeof *p);
    p->nprobe = STRATA_IVF_NPROBE_DEFAULT;
}

static int params_check(const strata_ivf *ix, const strata_ivf_params *p, uint32_t *nprobe)
{
    uint32_t np = p->nprobe == STRATA_IVF_NPROBE_DEFAULT ? ix->cfg.nprobe : p->nprobe;
    if (np == 0) return STRATA_EINVAL;
    if (p->rerank && !ix->lay.raw_dim) return STRATA_EINVAL;
    if (!(p->mmr >= 0.0f && p->mmr <= 1.0f)) return STRATA_EINVAL;   /* also NaN */
    if (p->int_lut > 1) return STRATA_EINVAL;
    *nprobe = np > ix->cfg.nlist ? ix->cfg.nlist : np;
    return STRATA_OK;
}

/* Nearest `want` clusters into out (sorted). */
static void nearest(const float *cd, uint32_t nlist, uint32_t want, strata_hit *out)
{
    vec_topk h;
    vec_topk_init(&h, out, want);
    for (uint32_t c = 0; c < nlist; c++)
        if (vec_topk_accepts(&h, cd[c], c)) vec_topk_push(&h, c, cd[c]);
    vec_topk_finish(&h);
}

/* MMR over the 4*nprobe nearest: minimise (1-l) d(q,c) - l min_{s chosen} d(c,s). */
static int choose_mmr(strata_ivf *ix, qstate *s)
{
    uint32_t nl = ix->cfg.nlist, pool = s->nprobe * 4 > nl ? nl : s->nprobe * 4;
    strata_hit *cand = malloc(pool * sizeof *cand);
    float *mind = malloc(pool * sizeof *mind);
    if (!cand || !mind) { free(cand); free(mind); return STRATA_ENOMEM; }
    nearest(s->b->cd, nl, pool, cand);
    vec_dist_fn df = ix->kt->dist[ix->cfg.metric == STRATA_METRIC_L2 ? STRATA_METRIC_L2
                                                                      : STRATA_METRIC_IP];
    float lam = s->p->mmr;
    for (uint32_t i = 0; i < pool; i++) mind[i] = INFINITY;
    for (uint32_t t = 0; t < s->nprobe; t++) {
        uint32_t best = UINT32_MAX;
        float bs = INFINITY;
        for (uint32_t i = 0; i < pool; i++) {
            if (cand[i].id == UINT64_MAX) continue;          /* already taken */
            float sc = t == 0 ? cand[i].dist : (1 - lam) * cand[i].dist - lam * mind[i];
            if (best == UINT32_MAX || sc < bs) { bs = sc; best = i; }
        }
        s->b->probe[t] = cand[best];
        const float *cb = ix->centroids + cand[best].id * ix->cfg.dim;
        cand[best].id = UINT64_MAX;
        for (uint32_t i = 0; i < pool; i++) {
            if (cand[i].id == UINT64_MAX) continue;
            float d = df(ix->centroids + cand[i].id * ix->cfg.dim, cb, ix->cfg.dim);
            if (d < mind[i]) mind[i] = d;
        }
    }
    free(cand); free(mind);
    return STRATA_OK;
}

/* The query's table (-2 q_j.w for L2, -q_j.w for IP/cosine) with its
 * per-table minima and maxima in one pass, the suffix minima, and the
 * quantized copy when asked. */
static int build_lut(strata_ivf *ix, qstate *s, ivf_scan_ctx *sc)
{
    uint32_t m = ix->cfg.m;
    ivf_scratch *b = s->b;
    float a = ix->cfg.metric == STRATA_METRIC_L2 ? -2.0f : -1.0f;
    if (ivf_lut_build(NULL, b->qdot, a, m, b->lut, b->lo, b->hi)) return STRATA_ECORRUPT;
    b->smin[m] = 0;
    float qmax = 0;
    for (uint32_t j = m; j-- > 0;) {
        float lo = b->lo[j], hi = b->hi[j];
        if (!isfinite(lo) || !isfinite(hi)) return STRATA_ECORRUPT;
        b->smin[j] = b->smin[j + 1] + lo;
        if (hi - lo > qmax) qmax = hi - lo;
    }
    if (!isfinite(b->smin[0])) return STRATA_ECORRUPT;
    sc->lut = b->lut;
    sc->suffix_min = b->smin;
    sc->qlut = NULL;
    if ((s->p->int_lut || ivf_scan_fast(m)) &&
        ivf_qlut_setup(sc, b->lut, b->lo, b->hi, m, qmax, b->qlut) != STRATA_OK)
        return STRATA_ECORRUPT;
    return STRATA_OK;
}

static int scan_cluster(strata_ivf *ix, strata_cursor *cur, uint32_t c, ivf_scan_ctx *sc,
                        ivf_heap *h)
{
    uint8_t key[LIST_KEY_LEN];
    ivf_list_key(key, c, 0);
    if (!isfinite(sc->base)) return STRATA_ECORRUPT;
    int rc = strata_cursor_seek(cur, (strata_slice){key, LIST_KEY_LEN});
    while (rc == STRATA_OK) {
        strata_slice k, v;
        ivf_block b;
        if ((rc = strata_cursor_get(cur, &k, &v)) != STRATA_OK) break;
        if (k.len != LIST_KEY_LEN) return STRATA_ECORRUPT;
        if (ivf_be32_get(k.data) != c) return STRATA_OK;
        rc = ivf_block_view(v.data, v.len, &ix->lay, ix->cfg.block_cap, c, &b);
        if (rc != STRATA_OK) return rc;
        ivf_scan_block(sc, &b, h);
        if (sc->bad) return STRATA_ECORRUPT;
        rc = strata_cursor_next(cur);
    }
    return rc == STRATA_NOTFOUND ? STRATA_OK : rc;
}

/* Rows prefetched ahead of the rerank's distance computations: the rows are
 * scattered over the probed blocks, and one row ahead does not cover the
 * memory latency (measured). */
enum { RERANK_AHEAD = 6 };

static void prefetch_row(const uint8_t *p, uint32_t dim)
{
    for (size_t o = 0; o < 4 * (size_t)dim; o += 64) __builtin_prefetch(p + o);
}

/* Exact distances of the candidates from the raw vectors in their blocks
 * into a k-heap. */
static int rerank(strata_ivf *ix, const float *q, const ivf_cand *cand, size_t n, vec_topk *h)
{
    uint32_t dim = ix->lay.raw_dim;
    vec_dist_fn df = ix->kt->dist[ix->cfg.metric];
    size_t ahead = n < RERANK_AHEAD ? n : RERANK_AHEAD;
    for (size_t i = 0; i < ahead; i++) prefetch_row(cand[i].raw, dim);
    for (size_t i = 0; i < n; i++) {
        if (i + ahead < n) prefetch_row(cand[i + ahead].raw, dim);
        const float *v;
        if (((uintptr_t)cand[i].raw & 3) == 0) {
            v = (const float *)(const void *)cand[i].raw;    /* LE host: stored f32 as is */
        } else {                                           /* inline value, unaligned */
            vec_f32_get(ix->scratch->raw, cand[i].raw, dim);
            v = ix->scratch->raw;
        }
        float d = df(q, v, dim);
        if (!isfinite(d)) return STRATA_ECORRUPT;
        if (vec_topk_accepts(h, d, cand[i].id)) vec_topk_push(h, cand[i].id, d);
    }
    return STRATA_OK;
}

static int search_one(strata_ivf *ix, qstate *s, const float *query, size_t k, strata_hit *out,
                      size_t *n_out, strata_cursor *cur)
{
    const ivf_config *cf = &ix->cfg;
    ivf_scratch *b = s->b;
    int l2 = cf->metric == STRATA_METRIC_L2;
    if (vec_validate(query, cf->dim) != STRATA_OK) return STRATA_EINVAL;
    memcpy(b->q, query, cf->dim * sizeof *b->q);
    if (cf->metric == STRATA_METRIC_COSINE) ivf_normalize(b->q, cf->dim);
    ix->kt->dist_batch[l2 ? STRATA_METRIC_L2 : STRATA_METRIC_IP](b->q, ix->centroids, cf->nlist,
                                                                 cf->dim, b->cd);
    int rc = STRATA_OK;
    if (s->p->mmr > 0) rc = choose_mmr(ix, s);
    else nearest(b->cd, cf->nlist, s->nprobe, b->probe);
    if (rc != STRATA_OK) return rc;
    ivf_dot_lut_t(ix->cb_t, cf->dim, cf->m, b->q, b->qdot);
    size_t kk = s->p->rerank && s->p->rerank > k ? s->p->rerank : k;
    if (kk > s->b->cand_cap) kk = s->b->cand_cap;  /* bounded by the index size */
    ivf_heap h;
    ivf_heap_init(&h, b->ckey, b->cand, kk);
    ivf_scan_ctx sc = {.m = cf->m, .keep = s->p->filter, .keep_ctx = s->p->filter_ctx};
    if ((rc = build_lut(ix, s, &sc)) != STRATA_OK) return rc;
    for (uint32_t t = 0; t < s->nprobe && rc == STRATA_OK; t++) {
        uint32_t c = (uint32_t)b->probe[t].id;
        sc.base = b->probe[t].dist + (cf->metric == STRATA_METRIC_COSINE ? 1.0f : 0.0f);
        rc = scan_cluster(ix, cur, c, &sc, &h);
    }
    if (rc != STRATA_OK) return rc;
    size_t n;
    n = ivf_heap_finish(&h, b->sorted);             /* the best kk, sorted */
    if (s->p->rerank) {
        vec_topk fin;
        vec_topk_init(&fin, out, k);
        if ((rc = rerank(ix, query, b->sorted, n, &fin)) != STRATA_OK) return rc;
        n = vec_topk_finish(&fin);
    } else {
        for (size_t i = 0; i < n; i++) out[i] = (strata_hit){.id = b->sorted[i].id, .dist = b->sorted[i].dist};
    }
    *n_out = n;
    return STRATA_OK;
}

void ivf_scratch_free(ivf_scratch *b)
{
    if (!b) return;
    free(b->q); free(b->cd); free(b->qdot); free(b->lut); free(b->smin); free(b->lo);
    free(b->hi); free(b->qlut); free(b->raw); free(b->probe); free(b->cand);
    free(b->ckey); free(b->sorted);
    free(b);
}

/* The handle's scratch with room for nprobe probes and kk candidates. */
static int scratch_get(strata_ivf *ix, size_t nprobe, size_t kk, ivf_scratch **out)
{
    const ivf_config *c = &ix->cfg;
    ivf_scratch *b = ix->scratch;
    if (!b) {
        size_t ml = (size_t)c->m * IVF_KSUB;
        if (!(b = calloc(1, sizeof *b))) return STRATA_ENOMEM;
        b->q = malloc(c->dim * sizeof(float));
        b->cd = malloc(c->nlist * sizeof(float));
        b->qdot = malloc(ml * sizeof(float));
        b->lut = malloc(ml * sizeof(float));
        b->smin = malloc((c->m + 1) * sizeof(float));
        b->lo = malloc(c->m * sizeof(float));
        b->hi = malloc(c->m * sizeof(float));
        b->qlut = malloc(ml);
        b->raw = malloc(c->dim * sizeof(float));
        if (!b->q || !b->cd || !b->qdot || !b->lut || !b->smin || !b->lo || !b->hi || !b->qlut ||
            !b->raw) {
            ivf_scratch_free(b);
            return STRATA_ENOMEM;
        }
        ix->scratch = b;
    }
    if (b->probe_cap < nprobe) {
        strata_hit *p = realloc(b->probe, nprobe * sizeof *p);
        if (!p) return STRATA_ENOMEM;
        b->probe = p;
        b->probe_cap = nprobe;
    }
    if (b->cand_cap < kk) {
        ivf_cand *p = realloc(b->cand, kk * sizeof *p);
        if (p) b->cand = p;
        ivf_hkey *ky = realloc(b->ckey, kk * sizeof *ky);
        if (ky) b->ckey = ky;
        ivf_cand *so = realloc(b->sorted, kk * sizeof *so);
        if (so) b->sorted = so;
        if (!p || !ky || !so) return STRATA_ENOMEM;
        b->cand_cap = kk;
    }
    *out = b;
    return STRATA_OK;
}

int strata_ivf_search_batch(strata_ivf *ix, size_t nq, const float *queries, size_t dim, size_t k,
                            const strata_ivf_params *params, strata_hit *out, size_t *n_out)
{
    int rc = ivf_handle_check(ix);
    if (rc != STRATA_OK) return rc;
    strata_ivf_params def;
    strata_ivf_params_default(&def);
    const strata_ivf_params *p = params ? params : &def;
    qstate s = {.p = p};
    if (!queries || !out || !n_out || k == 0 || dim != ix->cfg.dim) return STRATA_EINVAL;
    if (nq > SIZE_MAX / dim || (nq > 1 && k > SIZE_MAX / sizeof(strata_hit) / nq))
        return STRATA_EINVAL;                       /* nq * dim floats, nq * k hits */
    if (ix->cfg.state != IVF_STATE_TRAINED) return STRATA_EINVAL;
    if ((rc = params_check(ix, p, &s.nprobe)) != STRATA_OK) return rc;
    if ((rc = ivf_search_tables_build(ix)) != STRATA_OK) return rc;
    /* the candidate heap never holds more than the index: a huge k or
     * rerank costs nothing (and kk * sizeof cannot wrap) */
    size_t kk = p->rerank > k ? p->rerank : k;
    if (kk > ix->cfg.n_vectors) kk = ix->cfg.n_vectors ? (size_t)ix->cfg.n_vectors : 1;
    if (kk > UINT32_MAX) return STRATA_ENOMEM;      /* heap slots are u32 */
    if ((rc = scratch_get(ix, s.nprobe, kk, &s.b)) != STRATA_OK) return rc;
    strata_cursor *cur = NULL;
    if ((rc = strata_cursor_open(ix->t_lists, &cur)) != STRATA_OK) return rc;
    for (size_t i = 0; i < nq && rc == STRATA_OK; i++)
        rc = search_one(ix, &s, queries + i * ix->cfg.dim, k, out + i * k, n_out + i, cur);
    strata_cursor_close(cur);
    return rc;
}
int strata_ivf_search(strata_ivf *ix, const float *query, size_t dim, size_t k,
                      const strata_ivf_params *params, strata_hit *out, size_t *n_out)
{
    return strata_ivf_search_batch(ix, 1, query, dim, k, params, out, n_out);
}
