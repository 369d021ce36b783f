/* fractal/merge.c - merging clusters after deletes. A leaf below min_leaf
 * merges into the nearest (by centroid) other child of its parent, buffer
 * rows and posting entries included, and disappears; the sibling then
 * cascades or splits if it went over a limit. A leaf without a sibling first
 * collapses its parent (below), then merges if it has siblings now; an empty
 * one that is still alone is removed with its one-child ancestors. An internal
 * node left with one child hands that child to its nearest sibling and
 * disappears; a root left with one child is replaced by it (the tree gets one
 * level lower everywhere, so all leaves keep the same depth).
 * Invariants: (1) the merge target is always a live child of the same parent,
 * read from the current child list, so it is a leaf at level 0 (never a node
 * that has since split); (2) no member is dropped: each buffer row is re-keyed
 * and each posting entry appended to the target, with its assignment row;
 * (3) sums move by exact f64 addition of the source's sums; (4) the target is
 * re-anchored at the merged centroid and all its codes re-encoded (so no
 * anchor is left describing a cluster that no longer exists).
 */
#include <stdlib.h>
#include <string.h>

#include "fractal_int.h"

static frac_node *nearest_sibling(strata_fractal *f, frac_node *p, const frac_node *n)
{
    frac_node *best = NULL;
    float bd = 0;
    for (uint32_t i = 0; i < p->n_child; i++) {
        frac_node *c = frac_node_at(f, p->child[i]);
        if (!c || c == n) continue;
        float d = frac_route_dist(f, c, n->cent);
        if (!best || d < bd) { best = c; bd = d; }
    }
    return best;
}

static void absorb_stats(strata_fractal *f, frac_node *dst, const frac_node *src)
{
    uint32_t dim = f->cfg.dim;
    for (uint32_t j = 0; j < dim; j++) dst->sum[j] += src->sum[j];
    frac_sq_add(dst, src->sq);
    frac_sq_add(dst, src->sq_lo);
    dst->pop += src->pop;
    dst->n_buf += src->n_buf;
    dst->n_codes += src->n_codes;
    if (src->ts_min < dst->ts_min) dst->ts_min = src->ts_min;
    if (src->ts_max > dst->ts_max) dst->ts_max = src->ts_max;
    frac_node_cent(f, dst);
}

/* Move every member of leaf src into leaf dst (rows and assignments). dst
 * absorbs src's statistics first (absorb_stats), so its centroid is the
 * merged one: it becomes dst's anchor, and every posting member of both
 * leaves is re-encoded against it. Without raw vectors, each re-encoded
 * member's contribution to the sums of dst and its ancestors changes from its
 * old decoded code to its new one. */
static int move_members(strata_fractal *f, frac_node *src, frac_node *dst)
{
    size_t n = 0, nd = 0;
    frac_member *mem = NULL, *dmem = NULL;
    float *w = NULL, *dw = NULL, *anchor = NULL;
    uint8_t *codes = NULL, *dcodes = NULL, *pc = NULL;
    uint64_t *pids = NULL, *pts = NULL;
    uint32_t m = f->cfg.pq_m, dim = f->cfg.dim;
    int raw = (f->cfg.flags & CFG_F_RAW) != 0;
    int rc = frac_leaf_gather(f, src, &n, &mem, &w, &codes);
    if (rc != STRATA_OK) return rc;
    if ((rc = frac_leaf_gather(f, dst, &nd, &dmem, &dw, &dcodes)) != STRATA_OK) goto out;
    absorb_stats(f, dst, src);
    size_t tot = nd + n;
    pids = malloc((tot ? tot : 1) * 8);
    pts = malloc((tot ? tot : 1) * 8);
    pc = malloc((tot ? tot : 1) * m);
    anchor = malloc((size_t)2 * dim * sizeof *anchor);
    if (!pids || !pts || !pc || !anchor) { rc = STRATA_ENOMEM; goto out; }
    float *dec = anchor + dim;
    memcpy(anchor, dst->cent, (size_t)dim * sizeof *anchor);
    uint32_t k = 0;
    for (size_t i = 0; i < tot && rc == STRATA_OK; i++) {
        int from_src = i >= nd;
        const frac_member *mi = from_src ? &mem[i - nd] : &dmem[i];
        const float *wi = from_src ? w + (i - nd) * dim : dw + i * dim;
        if (mi->where == WHERE_BUF) {
            if (!from_src) continue;
            rc = frac_buf_del(f, src->id, mi->id);
            if (rc == STRATA_OK) rc = frac_buf_put(f, dst->id, mi->id, mi->ts, wi);
        } else {
            pids[k] = mi->id; pts[k] = mi->ts;
            rc = frac_encode_res(f, anchor, wi, 1, pc + (size_t)k * m);
            if (rc == STRATA_OK && !raw) {
                frac_decode_res(f, anchor, pc + (size_t)k * m, dec);
                frac_path_add(f, dst, wi, -1, 0);
                frac_path_add(f, dst, dec, +1, 0);
            }
            k++;
        }
        if (rc == STRATA_OK && from_src)
            rc = frac_assign_set(f, mi->id, dst->id, mi->where, mi->ts);
    }
    if (rc == STRATA_OK) rc = frac_post_write(f, dst->id, k, pids, pts, pc, anchor);
    if (rc == STRATA_OK) rc = frac_post_write(f, src->id, 0, NULL, NULL, NULL, NULL);
out:
    free(mem); free(w); free(codes); free(dmem); free(dw); free(dcodes);
    free(pids); free(pts); free(pc); free(anchor);
    return rc;
}

/* Collapse internal nodes left with one child, from p upwards. A node whose
 * parent has no other child waits for that parent to collapse first, then
 * (now with siblings, or the root) collapses itself. */
static int collapse_up(strata_fractal *f, frac_node *p)
{
    uint32_t start = p->id;
    for (uint32_t step = 0; p && step <= 4 * FRAC_DEPTH_LIMIT; step++) {
        if (p->leaf || p->n_child >= 2) {
            frac_node *s0 = frac_node_at(f, start);
            if (!s0 || s0 == p || s0->leaf || s0->n_child != 1) return STRATA_OK;
            p = s0;   /* the node that waited */
            continue;
        }
        frac_node *only = frac_node_at(f, p->child[0]);
        if (!only) return FRAC_CORRUPT();
        int rc;
        if (p->parent == FRAC_NONE) {   /* the root: its child takes its place */
            if ((rc = frac_edge_del(f, p, only)) != STRATA_OK) return rc;
            if ((rc = frac_node_delete(f, p)) != STRATA_OK) return rc;
            f->cfg.root = only->id;
            only->dirty = 1;
            p = only;
            continue;
        }
        frac_node *g = frac_node_at(f, p->parent);
        if (!g) return FRAC_CORRUPT();
        frac_node *q = nearest_sibling(f, g, p);
        if (!q) { p = g; continue; }   /* g has one child too: collapse it first */
        if ((rc = frac_edge_del(f, p, only)) != STRATA_OK) return rc;
        if ((rc = frac_edge_add(f, q, only)) != STRATA_OK) return rc;
        if ((rc = frac_edge_del(f, g, p)) != STRATA_OK) return rc;
        if ((rc = frac_node_delete(f, p)) != STRATA_OK) return rc;
        frac_node_from_children(f, q);
        if ((rc = frac_split_internal(f, q)) != STRATA_OK) return rc;
        p = frac_node_at(f, q->parent);
    }
    return STRATA_OK;
}

/* Remove an empty leaf that is still an only child (a collapse handed it to
 * a node that split and left it alone again) together with the chain of
 * one-child ancestors holding it, up to the first ancestor with other
 * children, whose time range is then recomputed; that ancestor may collapse
 * in turn. An empty root leaf stays. */
static int drop_empty(strata_fractal *f, frac_node *leaf)
{
    frac_node *top = leaf, *g = NULL;
    for (uint32_t step = 0; step <= FRAC_DEPTH_LIMIT; step++) {
        if (top->parent == FRAC_NONE) return STRATA_OK;
        if (!(g = frac_node_at(f, top->parent))) return FRAC_CORRUPT();
        if (g->n_child != 1) break;
        top = g;
        g = NULL;
    }
    if (!g) return FRAC_CORRUPT();   /* deeper than FRAC_DEPTH_LIMIT */
    int rc = frac_edge_del(f, g, top);
    while (rc == STRATA_OK && top) {   /* top down to the leaf: one child each */
        frac_node *c = top->leaf ? NULL : frac_node_at(f, top->child[0]);
        if (!top->leaf && !c) return FRAC_CORRUPT();
        if (c) rc = frac_edge_del(f, top, c);
        if (rc == STRATA_OK) rc = frac_node_delete(f, top);
        top = c;
    }
    if (rc != STRATA_OK) return rc;
    frac_node_from_children(f, g);   /* the same members; the range may shrink */
    frac_ts_refresh_up(f, g);
    return collapse_up(f, g);
}

int frac_merge_leaf(strata_fractal *f, frac_node *leaf)
{
    if (leaf->parent == FRAC_NONE || leaf->pop >= f->cfg.min_leaf) return STRATA_OK;
    frac_node *p = frac_node_at(f, leaf->parent);
    if (!p) return FRAC_CORRUPT();
    frac_node *s = nearest_sibling(f, p, leaf);
    int rc;
    if (!s) {   /* an only child: collapse p first; the leaf may then have siblings */
        if ((rc = collapse_up(f, p)) != STRATA_OK || leaf->parent == FRAC_NONE) return rc;
        if (!(p = frac_node_at(f, leaf->parent))) return FRAC_CORRUPT();
        if (!(s = nearest_sibling(f, p, leaf))) return leaf->pop ? STRATA_OK : drop_empty(f, leaf);
    }
    if ((rc = move_members(f, leaf, s)) != STRATA_OK) return rc;   /* dst absorbs src's statistics */
    if ((rc = frac_edge_del(f, p, leaf)) != STRATA_OK) return rc;
    if ((rc = frac_node_delete(f, leaf)) != STRATA_OK) return rc;
    if (f->cfg.cb_gen && s->n_buf >= f->cfg.buffer_cap && (rc = frac_cascade(f, s))) return rc;
    uint32_t pid = p->id;
    if ((rc = frac_split_leaf(f, s)) != STRATA_OK) return rc;   /* if full or marked */
    p = frac_node_at(f, pid);
    return p ? collapse_up(f, p) : STRATA_OK;
}
