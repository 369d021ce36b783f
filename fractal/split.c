/* fractal/split.c - splitting clusters. A leaf above max_leaf splits by
 * 2-means on its members' working vectors (raw vectors when kept, decoded PQ
 * codes otherwise, buffers always raw) into itself and a new sibling leaf; an
 * internal node above max_fanout splits its children by a pop-weighted 2-means
 * on their centroids into itself and a new sibling; a root that splits gets a
 * new root above it, so every leaf stays at the same depth. A root already at
 * max_depth levels does not split: its fan-out is then unbounded.
 * Separation: a leaf at or below max_leaf that holds separate groups (a new
 * region's vectors routed into an old region's leaf, or a split that left two
 * of three groups together) splits too, by 2-means without the balance
 * guard, when it was marked for the check (sep_check: by a cascade whose
 * buffer lies far outside the leaf's spread, cascade.c, and on both halves
 * of a split whose ratio was below SEP_RATIO). With r the ratio of its
 * members' 2-means (squared distances to the side means over those to the
 * common mean; frac_two_means_ex) it needs r < SEP_RATIO and r < SEP_GAIN *
 * the larger ratio of the two sides' own 2-means: a unimodal cloud of any
 * dimension splits about as well one level down as at this one (1-d
 * uniform: 0.25 both; 128-d Gaussian: about 0.995 both), two groups far
 * apart do not (0.1 against 0.99). Both sides keep at least
 * max(min_leaf, SEP_MIN) members, so a separated leaf is never small enough
 * to be merged straight back.
 * Sibling moves: a member nearer to a sibling leaf's centroid than to its
 * half's, and no farther from that sibling's anchor than from its half's
 * centroid, goes into the sibling's buffer instead (pick_siblings): greedy
 * routing and moving centroids leave vectors outside their nearest leaf, and
 * most of them belong in a sibling. A sibling that took members cascades and
 * splits like any leaf (frac_split_leaf's work list).
 * Invariants: (1) a split moves members, never drops one: each member's buffer
 * row / posting entry and assignment row are rewritten to the leaf it lands
 * in; (2) the two halves' sums are recomputed from their members, the parent's
 * do not change (same members) except, without raw vectors, by new - old
 * decoded codes; time ranges of both halves are exact and the ancestors' are
 * recomputed as unions; (3) each half's codes are re-encoded against its new
 * centroid, which becomes its anchor.
 */
#include <stdlib.h>
#include <string.h>

#include "fractal_int.h"

#define SEP_RATIO 0.9   /* a split explaining less than 10 % is no separation */
#define SEP_GAIN  0.8   /* ... and must explain more than the sides' splits would */
enum { SEP_MIN = 8 };

/* Add one member (working vector w, buffered or coded, time ts) to a
 * leaf's sums, sq, counts and time range; the centroid is the caller's. */
static void stats_add(frac_node *leaf, uint32_t dim, const float *w, uint8_t where, uint64_t ts)
{
    for (uint32_t j = 0; j < dim; j++) leaf->sum[j] += w[j];
    frac_sq_add(leaf, frac_sqnorm(w, dim));
    leaf->pop++;
    if (where == WHERE_BUF) leaf->n_buf++; else leaf->n_codes++;
    if (ts < leaf->ts_min) leaf->ts_min = ts;
    if (ts > leaf->ts_max) leaf->ts_max = ts;
}

/* Reset a leaf's statistics and recompute them from the members on `side`. */
static void leaf_stats(strata_fractal *f, frac_node *leaf, size_t n, const frac_member *mem,
                       const float *w, const uint8_t *side, uint8_t want)
{
    uint32_t dim = f->cfg.dim;
    memset(leaf->sum, 0, (size_t)dim * sizeof *leaf->sum);
    leaf->sq = leaf->sq_lo = 0;
    leaf->pop = 0; leaf->n_buf = 0; leaf->n_codes = 0;
    leaf->ts_min = UINT64_MAX; leaf->ts_max = 0;
    for (size_t i = 0; i < n; i++)
        if (side[i] == want) stats_add(leaf, dim, w + i * dim, mem[i].where, mem[i].ts);
    frac_node_cent(f, leaf);
}

/* Rewrite the posting lists of a and b from the posting members by side,
 * with anchors anc[0] (a) and anc[1] (b). */
static int write_posts(strata_fractal *f, frac_node *a, frac_node *b, size_t n,
                       const frac_member *mem, const uint8_t *codes, const uint8_t *side,
                       float *const anc[2])
{
    uint32_t m = f->cfg.pq_m;
    uint64_t *ids = malloc((n ? n : 1) * 8), *ts = malloc((n ? n : 1) * 8);
    uint8_t *cs = malloc((n ? n : 1) * (size_t)m);
    int rc = STRATA_ENOMEM;
    if (!ids || !ts || !cs) goto out;
    for (uint8_t s = 0; s < 2; s++) {
        frac_node *dst = s ? b : a;
        uint32_t k = 0;
        for (size_t i = 0; i < n; i++) {
            if (side[i] != s || mem[i].where != WHERE_POST) continue;
            ids[k] = mem[i].id; ts[k] = mem[i].ts;
            memcpy(cs + (size_t)k * m, codes + i * m, m);
            k++;
            if (s && (rc = frac_assign_set(f, mem[i].id, b->id, WHERE_POST, mem[i].ts)))
                goto out;
        }
        if ((rc = frac_post_write(f, dst->id, k, ids, ts, cs, anc[s])) != STRATA_OK) goto out;
    }
    rc = STRATA_OK;
out:
    free(ids); free(ts); free(cs);
    return rc;
}

/* Move the buffered members on side 1 from leaf a to leaf b. */
static int move_bufs(strata_fractal *f, frac_node *a, frac_node *b, size_t n,
                     const frac_member *mem, const float *w, const uint8_t *side)
{
    int rc = STRATA_OK;
    for (size_t i = 0; i < n && rc == STRATA_OK; i++) {
        if (side[i] != 1 || mem[i].where != WHERE_BUF) continue;
        rc = frac_buf_del(f, a->id, mem[i].id);
        if (rc == STRATA_OK) rc = frac_buf_put(f, b->id, mem[i].id, mem[i].ts, w + i * f->cfg.dim);
        if (rc == STRATA_OK) rc = frac_assign_set(f, mem[i].id, b->id, WHERE_BUF, mem[i].ts);
    }
    return rc;
}

/* Snapshot the centroids of the two halves a (side 0) and b (side 1) as their
 * anchors (*anc: 2 * dim floats, caller frees) and re-encode every posting
 * member against its half's anchor, in place in codes. Without raw vectors a
 * member's working vector becomes its new decoded code, in w and in the sums
 * of the ancestors (from parent up; the halves are recomputed by the caller). */
static int reanchor(strata_fractal *f, frac_node *parent, const frac_node *a, const frac_node *b,
                    size_t n, const frac_member *mem, float *w, uint8_t *codes,
                    const uint8_t *side, float **anc)
{
    uint32_t dim = f->cfg.dim, m = f->cfg.pq_m;
    float *an = malloc((size_t)3 * dim * sizeof *an), *old = an + 2 * (size_t)dim;
    if (!an) return STRATA_ENOMEM;
    *anc = an;
    memcpy(an, a->cent, (size_t)dim * sizeof *an);
    memcpy(an + dim, b->cent, (size_t)dim * sizeof *an);
    int raw = (f->cfg.flags & CFG_F_RAW) != 0, rc = STRATA_OK;
    for (size_t i = 0; i < n && rc == STRATA_OK; i++) {
        if (mem[i].where != WHERE_POST || side[i] > 1) continue;   /* 2: leaves for a sibling */
        const float *ai = an + (size_t)side[i] * dim;
        float *wi = w + i * dim;
        if ((rc = frac_encode_res(f, ai, wi, 1, codes + i * m)) != STRATA_OK) break;
        if (raw) continue;
        memcpy(old, wi, (size_t)dim * sizeof *old);
        frac_decode_res(f, ai, codes + i * m, wi);
        frac_path_add(f, parent, old, -1, 0);
        frac_path_add(f, parent, wi, +1, 0);
    }
    return rc;
}

/* Make sure n has a parent, growing a new root above it if it is the root.
 * Returns STRATA_NOTFOUND when the depth limit forbids a new root. */
static int ensure_parent(strata_fractal *f, frac_node *n, frac_node **parent)
{
    if (n->parent != FRAC_NONE) {
        *parent = frac_node_at(f, n->parent);
        return *parent ? STRATA_OK : FRAC_CORRUPT();
    }
    if ((uint32_t)n->level + 2 > f->cfg.max_depth) return STRATA_NOTFOUND;
    frac_node *r;
    int rc = frac_node_new(f, 0, (uint16_t)(n->level + 1), &r);
    if (rc != STRATA_OK) return rc;
    if ((rc = frac_edge_add(f, r, n)) != STRATA_OK) return rc;
    frac_node_from_children(f, r);
    f->cfg.root = r->id;
    *parent = r;
    return STRATA_OK;
}

/* Members nearer to a sibling leaf than to their half get side 2 and tgt[i]
 * = that sibling: nearer to its centroid than to their half's (the halves'
 * centroids from side), and no farther from the anchor its codes would be
 * residuals of (its posting list's, else its centroid) than from that
 * centroid, so a move never makes a member's code worse. None move when a
 * half would be left empty. */
static int pick_siblings(strata_fractal *f, const frac_node *leaf, const frac_node *parent,
                         size_t n, const float *w, uint8_t *side, uint32_t *tgt)
{
    uint32_t dim = f->cfg.dim, ns = 0;
    vec_dist_fn l2 = f->kt->dist[STRATA_METRIC_L2];
    for (size_t i = 0; i < n; i++) tgt[i] = FRAC_NONE;
    if (!parent || parent->n_child < 2) return STRATA_OK;
    double *acc = calloc(2 * (size_t)dim, sizeof *acc);
    float *hc = malloc((2 + (size_t)parent->n_child) * dim * sizeof *hc), *anc = hc + 2 * (size_t)dim;
    const frac_node **sib = malloc(parent->n_child * sizeof *sib);
    size_t cnt[2] = { 0, 0 }, moved[2] = { 0, 0 };
    int rc = acc && hc && sib ? STRATA_OK : STRATA_ENOMEM;
    for (uint32_t c = 0; c < parent->n_child && rc == STRATA_OK; c++) {
        const frac_node *x = frac_node_at(f, parent->child[c]);
        if (!x || x == leaf || !x->leaf || x->pop == 0) continue;
        rc = frac_post_anchor(f, x->id, anc + (size_t)ns * dim);
        if (rc == STRATA_NOTFOUND) {
            memcpy(anc + (size_t)ns * dim, x->cent, (size_t)dim * sizeof *anc);
            rc = STRATA_OK;
        }
        sib[ns++] = x;
    }
    if (rc != STRATA_OK || ns == 0) goto out;
    for (size_t i = 0; i < n; i++) {
        cnt[side[i]]++;
        for (uint32_t j = 0; j < dim; j++) acc[side[i] * dim + j] += w[i * dim + j];
    }
    for (int k = 0; k < 2; k++)
        for (uint32_t j = 0; j < dim; j++)
            hc[k * dim + j] = cnt[k] ? (float)(acc[k * dim + j] / (double)cnt[k]) : 0.0f;
    for (size_t i = 0; i < n; i++) {
        const float *wi = w + i * dim;
        float own = l2(wi, hc + side[i] * dim, dim), best = own;
        for (uint32_t c = 0; c < ns; c++) {
            float d = frac_route_dist(f, sib[c], wi);
            if (d >= best || l2(wi, anc + (size_t)c * dim, dim) > own) continue;
            best = d;
            tgt[i] = sib[c]->id;
        }
        if (tgt[i] != FRAC_NONE) moved[side[i]]++;
    }
    int cancel = moved[0] == cnt[0] || moved[1] == cnt[1];
    for (size_t i = 0; i < n; i++) {
        if (cancel) tgt[i] = FRAC_NONE;
        else if (tgt[i] != FRAC_NONE) side[i] = 2;
    }
out:
    free(acc); free(hc); free(sib);
    return rc;
}

/* Side-2 members into their target sibling's buffer (rows, assignment,
 * statistics; the ancestors' do not change: same parent). */
static int to_siblings(strata_fractal *f, frac_node *leaf, size_t n, const frac_member *mem,
                       const float *w, const uint8_t *side, const uint32_t *tgt)
{
    uint32_t dim = f->cfg.dim;
    int rc = STRATA_OK;
    for (size_t i = 0; i < n && rc == STRATA_OK; i++) {
        if (side[i] != 2) continue;
        frac_node *s = frac_node_at(f, tgt[i]);
        if (!s) return FRAC_CORRUPT();
        if (mem[i].where == WHERE_BUF) rc = frac_buf_del(f, leaf->id, mem[i].id);
        if (rc == STRATA_OK) rc = frac_buf_put(f, s->id, mem[i].id, mem[i].ts, w + i * dim);
        if (rc == STRATA_OK) rc = frac_assign_set(f, mem[i].id, s->id, WHERE_BUF, mem[i].ts);
        if (rc != STRATA_OK) break;
        stats_add(s, dim, w + i * dim, WHERE_BUF, mem[i].ts);
        frac_node_cent(f, s);
    }
    return rc;
}

/* The larger 2-means ratio within the two sides of a split (each side's own
 * 2-means, balance guard on, as a split would do it). */
static int sides_ratio(const strata_fractal *f, const float *w, size_t n, const uint8_t *side,
                       double *out)
{
    uint32_t dim = f->cfg.dim;
    float *x = malloc((n ? n : 1) * dim * sizeof *x);
    uint8_t *s2 = malloc(n ? n : 1);
    int rc = x && s2 ? STRATA_OK : STRATA_ENOMEM;
    double best = 0;
    for (uint8_t s = 0; s < 2 && rc == STRATA_OK; s++) {
        size_t k = 0;
        for (size_t i = 0; i < n; i++)
            if (side[i] == s) memcpy(x + k++ * dim, w + i * dim, (size_t)dim * sizeof *x);
        double r;
        rc = frac_two_means_ex(x, NULL, k, dim, f->cfg.seed, 1, s2, &r);
        if (r > best) best = r;
    }
    free(x); free(s2);
    *out = best;
    return rc;
}

/* Split leaf in two, members that belong in a sibling leaf moved there. sep = 0: a split for size (2-means with the balance
 * guard); *out_r gets its ratio. sep = 1: only if the leaf holds separate
 * groups (see the top of the file); *out_b stays NULL when it does not. */
static int split_leaf_once(strata_fractal *f, frac_node *leaf, int sep, frac_node **out_b,
                           double *out_r)
{
    size_t n = 0;
    frac_member *mem = NULL;
    float *w = NULL;
    uint8_t *codes = NULL, *side = NULL;
    float *anc = NULL;
    frac_node *parent = NULL, *b = NULL;
    uint32_t *tgt = NULL;
    int changing = 0;
    *out_b = NULL;
    int rc = frac_leaf_gather(f, leaf, &n, &mem, &w, &codes);
    if (rc != STRATA_OK) return rc;
    if (!(side = malloc(n ? n : 1))) { rc = STRATA_ENOMEM; goto out; }
    if ((rc = frac_two_means_ex(w, NULL, n, f->cfg.dim, f->cfg.seed, !sep, side, out_r)) != STRATA_OK)
        goto out;
    if (sep) {
        f->sep_tests++;
        size_t n1 = 0, min = f->cfg.min_leaf > SEP_MIN ? f->cfg.min_leaf : SEP_MIN;
        for (size_t i = 0; i < n; i++) n1 += side[i];
        if (n1 < min || n - n1 < min || *out_r >= SEP_RATIO) goto out;   /* not separate */
        double r2;
        if ((rc = sides_ratio(f, w, n, side, &r2)) != STRATA_OK) goto out;
        if (*out_r >= SEP_GAIN * r2) goto out;
        f->sep_splits++;
    }
    /* STRATA_NOTFOUND here, before any change, is the depth limit; a missing
     * row later is damage (the caller takes NOTFOUND as "cannot split") */
    if ((rc = ensure_parent(f, leaf, &parent)) != STRATA_OK) goto out;
    changing = 1;
    if (!(tgt = malloc((n ? n : 1) * sizeof *tgt))) { rc = STRATA_ENOMEM; goto out; }
    if ((rc = pick_siblings(f, leaf, parent, n, w, side, tgt)) != STRATA_OK) goto out;
    if ((rc = frac_node_new(f, 1, 0, &b)) != STRATA_OK) goto out;
    if ((rc = frac_edge_add(f, parent, b)) != STRATA_OK) goto out;
    if ((rc = move_bufs(f, leaf, b, n, mem, w, side)) != STRATA_OK) goto out;
    leaf_stats(f, leaf, n, mem, w, side, 0);
    leaf_stats(f, b, n, mem, w, side, 1);
    if ((rc = reanchor(f, parent, leaf, b, n, mem, w, codes, side, &anc)) != STRATA_OK) goto out;
    float *anc2[2] = { anc, anc + f->cfg.dim };
    if ((rc = write_posts(f, leaf, b, n, mem, codes, side, anc2)) != STRATA_OK) goto out;
    if (!(f->cfg.flags & CFG_F_RAW)) {   /* members now stand for their new codes */
        leaf_stats(f, leaf, n, mem, w, side, 0);
        leaf_stats(f, b, n, mem, w, side, 1);
    }
    if ((rc = to_siblings(f, leaf, n, mem, w, side, tgt)) != STRATA_OK) goto out;
    frac_ts_refresh_up(f, leaf);
    *out_b = b;
out:
    free(mem); free(w); free(codes); free(side); free(anc); free(tgt);
    return changing && rc == STRATA_NOTFOUND ? FRAC_CORRUPT() : rc;
}

int frac_split_leaf(strata_fractal *f, frac_node *leaf)
{
    /* work list of leaves that may be over the limit or hold separate groups;
     * each split shrinks both halves */
    if (leaf->pop <= f->cfg.max_leaf && !leaf->sep_check) return STRATA_OK;   /* nothing to do */
    uint32_t cap = 16, top = 0;
    uint32_t *work = malloc(cap * sizeof *work);
    if (!work) return STRATA_ENOMEM;
    work[top++] = leaf->id;
    uint32_t parent_id = FRAC_NONE;
    int rc = STRATA_OK;
    while (top && rc == STRATA_OK) {
        frac_node *l = frac_node_at(f, work[--top]), *b = NULL;
        if (!l) continue;
        int sep = l->pop <= f->cfg.max_leaf;
        if (sep && !l->sep_check) continue;
        l->sep_check = 0;
        double r = 1;
        rc = split_leaf_once(f, l, sep, &b, &r);
        if (rc == STRATA_NOTFOUND) { rc = STRATA_OK; break; }   /* max_depth 1 cannot occur */
        if (rc != STRATA_OK || !b) continue;
        parent_id = l->parent;
        if (top + 2 > cap) {
            uint32_t *p = realloc(work, (cap *= 2) * sizeof *p);
            if (!p) { rc = STRATA_ENOMEM; break; }
            work = p;
        }
        /* a split that separated groups may have left two of three together */
        l->sep_check = b->sep_check = r < SEP_RATIO;
        work[top++] = l->id;
        work[top++] = b->id;
        frac_node *pp = frac_node_at(f, l->parent);   /* siblings that took members */
        for (uint32_t c = 0; pp && c < pp->n_child && rc == STRATA_OK; c++) {
            frac_node *sib = frac_node_at(f, pp->child[c]);
            if (!sib || sib == l || sib == b || !sib->leaf) continue;
            if (f->cfg.cb_gen && sib->n_buf >= f->cfg.buffer_cap && (rc = frac_cascade(f, sib))) break;
            if (sib->pop <= f->cfg.max_leaf && !sib->sep_check) continue;
            if (top + 1 > cap) {
                uint32_t *p2 = realloc(work, (cap *= 2) * sizeof *p2);
                if (!p2) { rc = STRATA_ENOMEM; break; }
                work = p2;
            }
            work[top++] = sib->id;
        }
    }
    free(work);
    if (rc == STRATA_OK && parent_id != FRAC_NONE) {
        frac_node *p = frac_node_at(f, parent_id);
        if (p) rc = frac_split_internal(f, p);
    }
    return rc;
}

static int split_internal_once(strata_fractal *f, frac_node *n, frac_node *parent, frac_node **out_q)
{
    uint32_t dim = f->cfg.dim, k = n->n_child;
    float *x = malloc((size_t)k * dim * sizeof *x);
    double *wt = malloc((size_t)k * sizeof *wt);
    uint8_t *side = malloc(k);
    uint32_t *kids = malloc((size_t)k * sizeof *kids);
    frac_node *q = NULL;
    int rc = STRATA_ENOMEM;
    if (!x || !wt || !side || !kids) goto out;
    memcpy(kids, n->child, (size_t)k * sizeof *kids);
    for (uint32_t i = 0; i < k; i++) {
        const frac_node *c = frac_node_at(f, kids[i]);
        if (!c) { rc = FRAC_CORRUPT(); goto out; }
        memcpy(x + (size_t)i * dim, c->cent, (size_t)dim * sizeof *x);
        wt[i] = c->pop ? (double)c->pop : 1.0;
    }
    if ((rc = frac_two_means(x, wt, k, dim, f->cfg.seed, side)) != STRATA_OK) goto out;
    if ((rc = frac_node_new(f, 0, n->level, &q)) != STRATA_OK) goto out;
    if ((rc = frac_edge_add(f, parent, q)) != STRATA_OK) goto out;
    for (uint32_t i = 0; i < k && rc == STRATA_OK; i++) {
        if (!side[i]) continue;
        frac_node *c = frac_node_at(f, kids[i]);
        rc = frac_edge_del(f, n, c);
        if (rc == STRATA_OK) rc = frac_edge_add(f, q, c);
    }
    if (rc != STRATA_OK) goto out;
    frac_node_from_children(f, n);
    frac_node_from_children(f, q);
    *out_q = q;
out:
    free(x); free(wt); free(side); free(kids);
    return rc;
}

/* Level by level from n up: every node of the level above max_fanout splits
 * until it is not, and so does every new sibling such a split makes (a leaf
 * split can add more than one child to a parent - a half separated again, a
 * merged leaf above max_leaf split twice - and one 2-means of max_fanout + k
 * children can leave a side above the limit); then their parents. A root at
 * max_depth levels does not split (its fan-out is unbounded). */
int frac_split_internal(strata_fractal *f, frac_node *n)
{
    uint32_t cap = 8, cnt = 0;
    uint32_t *lv = malloc(cap * sizeof *lv);
    if (!lv) return STRATA_ENOMEM;
    int rc = STRATA_OK;
    if (n && !n->leaf) lv[cnt++] = n->id;
    for (uint32_t step = 0; cnt && rc == STRATA_OK && step <= FRAC_DEPTH_LIMIT; step++) {
        for (uint32_t i = 0; i < cnt && rc == STRATA_OK; i++) {   /* lv grows while we go */
            frac_node *x = frac_node_at(f, lv[i]), *parent;
            if (!x) { rc = FRAC_CORRUPT(); break; }
            while (rc == STRATA_OK && x->n_child > f->cfg.max_fanout) {
                if ((rc = ensure_parent(f, x, &parent)) == STRATA_NOTFOUND) { rc = STRATA_OK; break; }
                frac_node *q = NULL;
                if (rc == STRATA_OK) rc = split_internal_once(f, x, parent, &q);
                if (rc != STRATA_OK || !q || q->n_child <= f->cfg.max_fanout) continue;
                if (cnt == cap) {
                    uint32_t *nl = realloc(lv, (cap *= 2) * sizeof *nl);
                    if (!nl) { rc = STRATA_ENOMEM; break; }
                    lv = nl;
                }
                lv[cnt++] = q->id;
            }
        }
        /* the parents of this level that are now above the limit */
        uint32_t nc = 0;
        for (uint32_t i = 0; i < cnt && rc == STRATA_OK; i++) {
            frac_node *x = frac_node_at(f, lv[i]);
            frac_node *p = x && x->parent != FRAC_NONE ? frac_node_at(f, x->parent) : NULL;
            if (!p || p->n_child <= f->cfg.max_fanout) continue;
            uint32_t k = 0;
            while (k < nc && lv[k] != p->id) k++;
            if (k == nc) lv[nc++] = p->id;   /* nc <= i: in place */
        }
        cnt = rc == STRATA_OK ? nc : 0;
    }
    free(lv);
    return rc;
}
