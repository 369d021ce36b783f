/* tests/query/qmodel.c - see qmodel.h. The brute force (qp_eval) shares no
 * code with query/: it scans every blob of the mirror, applies every filter,
 * computes every score by the formulas of docs/QUERY.md and sorts. */
#include "qmodel.h"

#include <criterion/criterion.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

const char *const qm_ns_names[QM_NS] = { "", "work", "home" };
static const char *const tag_names[QM_TAGS] = { "red", "green", "blue", "todo", "done", "idea", "fact", "re" };

const char *qm_tag(int t) { return tag_names[t]; }

uint64_t qm_rand(uint64_t *s) {
    uint64_t x = *s;
    x ^= x >> 12; x ^= x << 25; x ^= x >> 27;
    *s = x;
    return x * 0x2545F4914F6CDD1Dull;
}

static uint64_t clock_fn(void *ctx) { return ((const qmodel *)ctx)->clock_ms; }

static int edge_known(const qmodel *m, uint64_t from, uint64_t to, int rel) {
    for (size_t i = 0; i < m->ne; i++)
        if (m->e[i].from == from && m->e[i].to == to && m->e[i].rel == rel) return 1;
    return 0;
}

static void add_edge(qmodel *m, strata_txn *w, uint64_t from, uint64_t to, int rel) {
    if (from == to || edge_known(m, from, to, rel) || m->ne == QM_MAXE) return;
    cr_assert_eq(strata_blob_link(w, from, to, (strata_blob_rel)rel, NULL), STRATA_OK);
    m->e[m->ne++] = (medge){ from, to, rel };
}

void qm_del_blob(qmodel *m, strata_txn *w, size_t i) {
    cr_assert_eq(strata_blob_delete(w, m->b[i].id), STRATA_OK);
    size_t o = 0;
    for (size_t j = 0; j < m->ne; j++)
        if (m->e[j].from != m->b[i].id && m->e[j].to != m->b[i].id) m->e[o++] = m->e[j];
    m->ne = o;
    m->b[i].id = 0;   /* deleted */
}

/* A live blob index at random, or -1. */
static long pick(const qmodel *m, uint64_t *rng) {
    for (int tries = 0; tries < 64 && m->n; tries++) {
        size_t i = (size_t)(qm_rand(rng) % m->n);
        if (m->b[i].id) return (long)i;
    }
    return -1;
}

static void one_blob(qmodel *m, strata_txn *w, uint64_t *rng) {
    mblob *b = &m->b[m->n];
    uint8_t data[300];
    strata_blob_opts o;
    memset(&o, 0, sizeof o);
    memset(b, 0, sizeof *b);
    b->ns = (int)(qm_rand(rng) % QM_NS);
    o.ns = qm_ns_names[b->ns];
    b->size = 1 + qm_rand(rng) % sizeof data;
    for (size_t i = 0; i < b->size; i++) data[i] = (uint8_t)qm_rand(rng);
    cr_assert_eq(strata_blob_put(w, &o, data, (size_t)b->size, &b->id), STRATA_OK);
    cr_assert_eq(strata_txn_hlc(w, &b->hlc), STRATA_OK);
    for (int t = 0; t < QM_TAGS; t++)
        if (qm_rand(rng) % 10 < 3) {
            cr_assert_eq(strata_blob_tag_add(w, b->id, qm_tag(t)), STRATA_OK);
            b->tags |= 1u << t;
        }
    if (qm_rand(rng) % 10 < 8) {
        b->has_emb = 1;
        for (int d = 0; d < QM_DIM; d++) b->emb[d] = (float)((int)(qm_rand(rng) % 5) - 2) * 0.5f;
        cr_assert_eq(strata_blob_embed_set(w, b->id, b->emb, QM_DIM), STRATA_OK);
    }
    size_t me = m->n++;
    long to = pick(m, rng);
    if (to >= 0 && (size_t)to != me && qm_rand(rng) % 10 < 7)
        add_edge(m, w, b->id, m->b[to].id, 1 + (int)(qm_rand(rng) % 5));
    long a = pick(m, rng), c = pick(m, rng);
    if (a >= 0 && c >= 0 && qm_rand(rng) % 10 < 2)
        add_edge(m, w, m->b[a].id, m->b[c].id, 1 + (int)(qm_rand(rng) % 5));
}

void qm_build(qmodel *m, uint64_t seed, size_t n) {
    memset(m, 0, sizeof *m);
    strcpy(m->dir, "/tmp/strata_query_XXXXXX");
    cr_assert_not_null(mkdtemp(m->dir));
    snprintf(m->path, sizeof m->path, "%s/db.strata", m->dir);
    cr_assert_eq(strata_open(m->path, STRATA_CREATE, &m->db), STRATA_OK);
    m->clock_ms = 1700000000000ull;
    cr_assert_eq(strata_set_clock(m->db, clock_fn, m), STRATA_OK);
    uint64_t rng = seed * 0x9E3779B97F4A7C15ull + 7;
    cr_assert_leq(n, QM_MAXB);
    while (m->n < n) {
        uint64_t step = qm_rand(&rng) % 3 == 0 ? 0 : qm_rand(&rng) % 100000;
        m->clock_ms += step;
        strata_txn *w;
        cr_assert_eq(strata_begin_write(m->db, &w), STRATA_OK);
        cr_assert_eq(strata_txn_set_durability(w, STRATA_DURABILITY_NONE), STRATA_OK);
        size_t per = 1 + (size_t)(qm_rand(&rng) % 4);
        for (size_t j = 0; j < per && m->n < n; j++) one_blob(m, w, &rng);
        long d = pick(m, &rng);
        if (d >= 0 && qm_rand(&rng) % 100 < 4) qm_del_blob(m, w, (size_t)d);
        cr_assert_eq(strata_commit(w), STRATA_OK);
    }
}

void qm_free(qmodel *m) {
    strata_close(m->db);
    m->db = NULL;
    unlink(m->path);
    rmdir(m->dir);
}

static uint64_t live_id(const qmodel *m, uint64_t *rng) {
    long i = pick(m, rng);
    return i >= 0 ? m->b[i].id : 1;
}

static void random_signals(const qmodel *m, qparams *p, uint64_t *rng, unsigned sig) {
    static const double scales[3] = { 1.0, 0.5, 4.0 };
    if (sig & 1) {
        p->vec = 1;
        p->metric = (strata_metric)(qm_rand(rng) % 4);
        for (int d = 0; d < QM_DIM; d++) p->v[d] = (float)((int)(qm_rand(rng) % 5) - 2) * 0.5f;
        p->k = 1 + (size_t)(qm_rand(rng) % 12);
        p->scale = scales[qm_rand(rng) % 3];
    }
    if (sig & 2) {
        p->rec = 1;
        uint64_t h = m->b[qm_rand(rng) % m->n].hlc;
        p->now = qm_rand(rng) % 3 == 0 ? 0 : h + ((qm_rand(rng) % 1000) << 16);
        p->half_life = 1 + qm_rand(rng) % 400000;
    }
    if (sig & 4) {
        p->lin = 1;
        p->anchor = live_id(m, rng);
        p->dir = 1 + (int)(qm_rand(rng) % 3);
        p->mask = qm_rand(rng) % 3 == 0 ? (unsigned)(qm_rand(rng) % 64) & ~1u : 0;
        p->max_hops = 1 + (uint32_t)(qm_rand(rng) % 4);
    }
    if (sig & 8) {
        p->n_pref = 1 + (int)(qm_rand(rng) % 3);
        for (int i = 0; i < p->n_pref; i++) p->pref[i] = i * 3 + (int)(qm_rand(rng) % 2);   /* distinct */
    }
}

void qp_random(const qmodel *m, qparams *p, uint64_t *rng, unsigned sig, unsigned f, int fusion) {
    memset(p, 0, sizeof *p);
    random_signals(m, p, rng, sig);
    if (f & 1) { p->has_ns = 1; p->ns = (int)(qm_rand(rng) % QM_NS); }
    if (f & 2) {
        p->n_req = 1 + (int)(qm_rand(rng) % 2);
        p->req[0] = (int)(qm_rand(rng) % QM_TAGS);
        p->req[1] = (int)(qm_rand(rng) % QM_TAGS);
    }
    if (f & 4) { p->n_exc = 1; p->exc[0] = (int)(qm_rand(rng) % QM_TAGS); }
    if (f & 8) {
        uint64_t a = m->b[qm_rand(rng) % m->n].hlc, b = m->b[qm_rand(rng) % m->n].hlc;
        p->win = 1;
        p->lo = a < b ? a : b;
        p->hi = a < b ? b : a;
    }
    if (p->lin && (f & 16)) p->lflags |= STRATA_QUERY_LINEAGE_FILTER;
    if (p->lin && (f & 64)) p->lflags |= STRATA_QUERY_EXCLUDE_ANCHOR;
    if (f & 32) p->pred = 1;
    static const double ws[5] = { 0, 0.5, 1, 2, 3 };
    double sum = 0;
    for (int s = 0; s < STRATA_QUERY_NSIG; s++) {
        p->w[s] = ws[qm_rand(rng) % 5];
        if (sig >> s & 1) sum += p->w[s];
    }
    for (int s = 0; sum == 0 && s < STRATA_QUERY_NSIG; s++)
        if (sig >> s & 1) { p->w[s] = 1; sum = 1; }
    p->fusion = fusion;
    p->c = qm_rand(rng) % 2 ? 0 : (double)(1 + qm_rand(rng) % 100);
    p->cap = qm_rand(rng) % 4 == 0 ? 1000 : 1 + (size_t)(qm_rand(rng) % 20);
}

static int pred_fn(void *ctx, strata_txn *txn, const strata_blob_info *info) {
    (void)ctx;
    (void)txn;
    return info->size % 3 != 0;
}

strata_query *qp_build(const qparams *p) {
    strata_query *q = NULL;
    cr_assert_eq(strata_query_create(&q), STRATA_OK);
    if (p->vec) cr_assert_eq(strata_query_set_vector(q, p->metric, p->v, QM_DIM, p->k, p->scale, 0), STRATA_OK);
    if (p->rec) cr_assert_eq(strata_query_set_recency(q, p->now, p->half_life), STRATA_OK);
    if (p->lin)
        cr_assert_eq(strata_query_set_anchor(q, p->anchor, p->dir, p->mask, p->max_hops, p->lflags), STRATA_OK);
    for (int i = 0; i < p->n_pref; i++) cr_assert_eq(strata_query_prefer_tag(q, qm_tag(p->pref[i])), STRATA_OK);
    if (p->has_ns) cr_assert_eq(strata_query_set_namespace(q, qm_ns_names[p->ns]), STRATA_OK);
    for (int i = 0; i < p->n_req; i++) cr_assert_eq(strata_query_require_tag(q, qm_tag(p->req[i])), STRATA_OK);
    for (int i = 0; i < p->n_exc; i++) cr_assert_eq(strata_query_exclude_tag(q, qm_tag(p->exc[i])), STRATA_OK);
    if (p->win) cr_assert_eq(strata_query_set_window(q, p->lo, p->hi), STRATA_OK);
    if (p->pred) cr_assert_eq(strata_query_set_predicate(q, pred_fn, NULL), STRATA_OK);
    for (int s = 0; s < STRATA_QUERY_NSIG; s++)
        cr_assert_eq(strata_query_set_weight(q, (strata_query_signal)s, p->w[s]), STRATA_OK);
    cr_assert_eq(strata_query_set_fusion(q, p->fusion, p->c), STRATA_OK);
    return q;
}

/* Hops from the anchor for every model blob (by index), UINT32_MAX if not
 * within max_hops: a BFS over the edge list. */
static void bfs(const qmodel *m, const qparams *p, uint32_t *hops) {
    size_t *front = malloc(m->n * sizeof *front), *next = malloc(m->n * sizeof *next), nf = 0, nn;
    cr_assert(front && next);
    for (size_t i = 0; i < m->n; i++) {
        hops[i] = STRATA_QUERY_NO_HOPS;
        if (m->b[i].id && m->b[i].id == p->anchor) { hops[i] = 0; front[nf++] = i; }
    }
    for (uint32_t d = 1; d <= p->max_hops && nf; d++) {
        nn = 0;
        for (size_t f = 0; f < nf; f++) {
            uint64_t x = m->b[front[f]].id;
            for (size_t e = 0; e < m->ne; e++) {
                const medge *g = &m->e[e];
                if (p->mask && !(p->mask & STRATA_BLOB_REL_MASK(g->rel))) continue;
                uint64_t nb = 0;
                if ((p->dir & STRATA_BLOB_PARENTS) && g->from == x) nb = g->to;
                for (int side = 0; side < 2; side++) {
                    if (side == 1) nb = (p->dir & STRATA_BLOB_CHILDREN) && g->to == x ? g->from : 0;
                    if (!nb) continue;
                    size_t i = (size_t)(nb - 1);   /* ids are 1, 2, ... in model order */
                    cr_assert(i < m->n && m->b[i].id == nb);
                    if (hops[i] == STRATA_QUERY_NO_HOPS) { hops[i] = d; next[nn++] = i; }
                }
            }
        }
        memcpy(front, next, nn * sizeof *front);
        nf = nn;
    }
    free(front);
    free(next);
}

static int passes(const qmodel *m, const qparams *p, const mblob *b, uint32_t hops) {
    if (p->has_ns && b->ns != p->ns) return 0;
    for (int i = 0; i < p->n_req; i++) if (!(b->tags >> p->req[i] & 1)) return 0;
    for (int i = 0; i < p->n_exc; i++) if (b->tags >> p->exc[i] & 1) return 0;
    if (p->win && (b->hlc < p->lo || b->hlc > p->hi)) return 0;
    if ((p->lflags & STRATA_QUERY_LINEAGE_FILTER) && hops == STRATA_QUERY_NO_HOPS) return 0;
    if ((p->lflags & STRATA_QUERY_EXCLUDE_ANCHOR) && b->id == p->anchor) return 0;
    if (p->pred && b->size % 3 == 0) return 0;
    (void)m;
    return 1;
}

typedef struct ev { const mblob *b; uint32_t hops; float dist; int has_dist; double sig[4], score; uint32_t rank[4]; } ev;

static int cmp_dist(const void *a, const void *b) {
    const ev *const *x = a, *const *y = b;
    if ((*x)->dist != (*y)->dist) return (*x)->dist < (*y)->dist ? -1 : 1;
    return ((*x)->b->id > (*y)->b->id) - ((*x)->b->id < (*y)->b->id);
}

static int cmp_score(const void *a, const void *b) {
    const ev *x = a, *y = b;
    if (x->score != y->score) return x->score > y->score ? -1 : 1;
    return (x->b->id > y->b->id) - (x->b->id < y->b->id);
}

static double sim_map(const qparams *p, float d) {
    double x = d;
    if (p->metric == STRATA_METRIC_COSINE) { double s = 1 - x / 2; return s < 0 ? 0 : s > 1 ? 1 : s; }
    if (p->metric == STRATA_METRIC_IP) return 1 / (1 + exp(x / p->scale));
    return 1 / (1 + (x < 0 ? 0 : x) / p->scale);
}

static void score_all(const qparams *p, uint64_t now, ev *v, size_t n) {
    int act[4] = { p->vec, p->rec, p->lin, p->n_pref > 0 };
    for (size_t i = 0; i < n; i++) {
        ev *e = &v[i];
        if (act[0] && e->has_dist) e->sig[0] = sim_map(p, e->dist);
        if (act[1]) {
            uint64_t nm = now >> 16, at = e->b->hlc >> 16;
            e->sig[1] = at >= nm ? 1.0 : pow(0.5, (double)(nm - at) / (double)p->half_life);
        }
        if (act[2] && e->hops <= p->max_hops) e->sig[2] = 1.0 - (double)e->hops / ((double)p->max_hops + 1.0);
        if (act[3]) {
            int c = 0;
            for (int t = 0; t < p->n_pref; t++) c += e->b->tags >> p->pref[t] & 1;
            e->sig[3] = (double)c / (double)p->n_pref;
        }
    }
    for (size_t i = 0; i < n; i++)
        for (int s = 0; s < 4; s++) {
            uint32_t above = 0;
            for (size_t j = 0; j < n; j++) above += v[j].sig[s] > v[i].sig[s];
            v[i].rank[s] = act[s] && v[i].sig[s] > 0 ? above + 1 : 0;
        }
    double c = p->c > 0 ? p->c : 60.0, wsum = 0, rsum = 0, w[4];
    for (int s = 0; s < 4; s++) { w[s] = act[s] ? p->w[s] : 0; wsum += w[s]; rsum += w[s] / (c + 1.0); }
    for (size_t i = 0; i < n; i++) {
        double acc = 0;
        for (int s = 0; s < 4; s++) {
            if (p->fusion == STRATA_QUERY_FUSE_SUM) acc += w[s] * v[i].sig[s];
            else if (v[i].rank[s]) acc += w[s] / (c + v[i].rank[s]);
        }
        v[i].score = p->fusion == STRATA_QUERY_FUSE_SUM ? acc / wsum : acc / rsum;
    }
}

void qp_eval(const qmodel *m, const qparams *p, uint64_t now_hlc, strata_query_result *out, size_t *n_out) {
    uint32_t *hops = malloc(m->n * sizeof *hops);
    ev *v = calloc(m->n ? m->n : 1, sizeof *v);
    ev **emb = malloc((m->n ? m->n : 1) * sizeof *emb);
    cr_assert(hops && v && emb);
    if (p->lin) bfs(m, p, hops);
    size_t n = 0, ne = 0;
    for (size_t i = 0; i < m->n; i++) {
        const mblob *b = &m->b[i];
        uint32_t h = p->lin ? hops[i] : STRATA_QUERY_NO_HOPS;
        if (!b->id || !passes(m, p, b, h)) continue;
        v[n] = (ev){ .b = b, .hops = h };
        if (p->vec && b->has_emb) {
            cr_assert_eq(strata_vec_distance(p->metric, p->v, b->emb, QM_DIM, &v[n].dist), STRATA_OK);
            emb[ne++] = &v[n];
        }
        n++;
    }
    qsort(emb, ne, sizeof *emb, cmp_dist);
    for (size_t i = 0; i < ne && i < p->k; i++) emb[i]->has_dist = 1;
    score_all(p, p->now ? p->now : now_hlc, v, n);
    qsort(v, n, sizeof *v, cmp_score);
    size_t o = 0;
    for (size_t i = 0; i < n && o < p->cap && v[i].score > 0; i++, o++) {
        strata_query_result *r = &out[o];
        memset(r, 0, sizeof *r);
        r->id = v[i].b->id;
        r->score = v[i].score;
        memcpy(r->signal, v[i].sig, sizeof r->signal);
        memcpy(r->rank, v[i].rank, sizeof r->rank);
        r->dist = v[i].has_dist ? v[i].dist : NAN;
        r->hops = v[i].hops;
        r->created_hlc = v[i].b->hlc;
        for (int t = 0; t < p->n_pref; t++) r->tags_matched += v[i].b->tags >> p->pref[t] & 1;
    }
    *n_out = o;
    free(hops);
    free(v);
    free(emb);
}

void qp_assert_same(const strata_query_result *a, size_t na, const strata_query_result *b, size_t nb,
                    const char *what) {
    cr_assert_eq(na, nb, "%s: %zu results, brute force %zu", what, na, nb);
    for (size_t i = 0; i < na; i++) {
        const strata_query_result *x = &a[i], *y = &b[i];
        cr_assert_eq(x->id, y->id, "%s: #%zu id %llu, brute force %llu (scores %.17g %.17g)", what, i,
                     (unsigned long long)x->id, (unsigned long long)y->id, x->score, y->score);
        cr_assert(fabs(x->score - y->score) <= 1e-12, "%s: #%zu score %.17g vs %.17g", what, i, x->score, y->score);
        for (int s = 0; s < STRATA_QUERY_NSIG; s++) {
            cr_assert(fabs(x->signal[s] - y->signal[s]) <= 1e-12, "%s: #%zu signal %d %.17g vs %.17g", what, i, s,
                      x->signal[s], y->signal[s]);
            cr_assert_eq(x->rank[s], y->rank[s], "%s: #%zu rank %d: %u vs %u", what, i, s, x->rank[s], y->rank[s]);
        }
        cr_assert((isnan(x->dist) && isnan(y->dist)) || x->dist == y->dist, "%s: #%zu dist", what, i);
        cr_assert_eq(x->hops, y->hops, "%s: #%zu hops %u vs %u", what, i, x->hops, y->hops);
        cr_assert_eq(x->tags_matched, y->tags_matched, "%s: #%zu tags", what, i);
        cr_assert_eq(x->created_hlc, y->created_hlc, "%s: #%zu hlc", what, i);
    }
}

void qm_build_ivf(qmodel *m, strata_txn *w, const char *name, strata_metric met) {
    float *data = malloc(m->n * QM_DIM * sizeof *data);
    uint64_t *ids = malloc(m->n * sizeof *ids);
    size_t n = 0;
    cr_assert(data && ids);
    for (size_t i = 0; i < m->n; i++) {
        if (!m->b[i].id || !m->b[i].has_emb) continue;
        memcpy(data + n * QM_DIM, m->b[i].emb, sizeof m->b[i].emb);
        ids[n++] = m->b[i].id;
    }
    cr_assert_geq(n, 256, "need 256 training vectors, have %zu", n);
    strata_ivf_config c = { QM_DIM, met, 4, 2, 4, STRATA_IVF_RAW, 10, 0, 7 };
    strata_ivf *ix;
    cr_assert_eq(strata_ivf_create(w, name, &c, &ix), STRATA_OK);
    cr_assert_eq(strata_ivf_train(ix, data, n, QM_DIM, NULL), STRATA_OK);
    cr_assert_eq(strata_ivf_insert_batch(ix, n, ids, data, QM_DIM, NULL), STRATA_OK);
    strata_ivf_close(ix);
    free(data);
    free(ids);
}
