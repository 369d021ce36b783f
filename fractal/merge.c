/* fractal/merge.c - merging clusters after deletes. A leaf below min_leaf
 * merges into the nearest (by centroid) other child of its parent, buffer
 * rows and posting entries included, and disappears; the sibling then
 * cascades or splits if it went over a limit. An internal node left with one
 * child hands that child to its nearest sibling and disappears; a root left
 * with one child is replaced by it (the tree gets one level lower everywhere,
 * so all leaves keep the same depth).
 * Invariants: (1) the merge target is always a live child of the same parent,
 * read from the current child list, so it is a leaf at level 0 (never a node
 * that has since split); (2) no member is dropped: each buffer row is re-keyed
 * and each posting entry appended to the target, with its assignment row;
 * (3) sums move by exact f64 addition of the source's sums.
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
    dst->pop += src->pop;
    dst->n_buf += src->n_buf;
    dst->n_codes += src->n_codes;
    if (src->ts_min < dst->ts_min) dst->ts_min = src->ts_min;
    if (src->ts_max > dst->ts_max) dst->ts_max = src->ts_max;
    for (uint32_t j = 0; j < dim; j++)
        dst->cent[j] = dst->pop ? (float)(dst->sum[j] / (double)dst->pop) : 0.0f;
    dst->dirty = 1;
}

/* Move every member of leaf src into leaf dst (rows and assignments). */
static int move_members(strata_fractal *f, frac_node *src, frac_node *dst)
{
    size_t n = 0;
    frac_member *mem = NULL;
    float *w = NULL;
    uint8_t *codes = NULL, *dc = NULL;
    uint64_t *dids = NULL, *dts = NULL;
    uint32_t m = f->cfg.pq_m, nd = 0;
    int rc = frac_leaf_gather(f, src, &n, &mem, &w, &codes);
    if (rc != STRATA_OK) return rc;
    if ((rc = frac_post_read(f, dst->id, &nd, &dids, &dts, &dc)) != STRATA_OK) goto out;
    size_t tot = (size_t)nd + n;
    uint64_t *a = realloc(dids, (tot ? tot : 1) * 8);
    if (a) dids = a;
    uint64_t *b = realloc(dts, (tot ? tot : 1) * 8);
    if (b) dts = b;
    uint8_t *c = realloc(dc, (tot ? tot : 1) * m);
    if (c) dc = c;
    if (!a || !b || !c) { rc = STRATA_ENOMEM; goto out; }
    uint32_t k = nd;
    for (size_t i = 0; i < n && rc == STRATA_OK; i++) {
        if (mem[i].where == WHERE_BUF) {
            rc = frac_buf_del(f, src->id, mem[i].id);
            if (rc == STRATA_OK)
                rc = frac_buf_put(f, dst->id, mem[i].id, mem[i].ts, w + i * f->cfg.dim);
        } else {
            dids[k] = mem[i].id; dts[k] = mem[i].ts;
            memcpy(dc + (size_t)k * m, codes + i * m, m);
            k++;
        }
        if (rc == STRATA_OK) rc = frac_assign_set(f, mem[i].id, dst->id, mem[i].where, mem[i].ts);
    }
    if (rc == STRATA_OK && k != nd) rc = frac_post_write(f, dst->id, k, dids, dts, dc);
    if (rc == STRATA_OK) rc = frac_post_write(f, src->id, 0, NULL, NULL, NULL);
out:
    free(mem); free(w); free(codes); free(dids); free(dts); free(dc);
    return rc;
}

/* Collapse internal nodes left with one child, from p upwards. */
static int collapse_up(strata_fractal *f, frac_node *p)
{
    for (uint32_t step = 0; p && step <= 2 * FRAC_DEPTH_LIMIT; step++) {
        if (p->leaf || p->n_child >= 2) return STRATA_OK;
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

int frac_merge_leaf(strata_fractal *f, frac_node *leaf)
{
    if (leaf->parent == FRAC_NONE || leaf->pop >= f->cfg.min_leaf) return STRATA_OK;
    frac_node *p = frac_node_at(f, leaf->parent);
    if (!p) return FRAC_CORRUPT();
    frac_node *s = nearest_sibling(f, p, leaf);
    if (!s) return collapse_up(f, p);
    int rc = move_members(f, leaf, s);
    if (rc != STRATA_OK) return rc;
    absorb_stats(f, s, leaf);
    if ((rc = frac_edge_del(f, p, leaf)) != STRATA_OK) return rc;
    if ((rc = frac_node_delete(f, leaf)) != STRATA_OK) return rc;
    if (f->cfg.cb_gen && s->n_buf >= f->cfg.buffer_cap && (rc = frac_cascade(f, s))) return rc;
    uint32_t pid = p->id;
    if (s->pop > f->cfg.max_leaf && (rc = frac_split_leaf(f, s)) != STRATA_OK) return rc;
    p = frac_node_at(f, pid);
    return p ? collapse_up(f, p) : STRATA_OK;
}
