/* fractal/delete.c - removal of one vector by id, through the id -> leaf
 * assignment table. The member's exact contribution to the sums is
 * subtracted on the leaf and every ancestor: its buffered working vector, its
 * raw vector's working form, or (without raw vectors) its decoded code, which
 * is what the cascade added for it. A leaf left below min_leaf merges into its
 * nearest sibling (merge.c).
 * Invariants: (1) every removal subtracts exactly what was added for the
 * member (population and sums together); (2) an assignment that names a
 * missing leaf, or a leaf that does not hold the id, is STRATA_ECORRUPT;
 * (3) a removal that cancels all but a small remainder of a sum on its path
 * recomputes the leaf's sums from its members and its ancestors' from their
 * children, so f64 rounding left by large removed members never outgrows
 * what is left (the check's tolerance is relative to the present members).
 */
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "fractal_int.h"

static strata_slice sl(const void *p, size_t n) { return (strata_slice){p, n}; }

/* Remove id from leaf's posting list; w gets its working vector. */
static int post_remove(strata_fractal *f, frac_node *leaf, uint64_t id, float *w)
{
    uint32_t n = 0, m = f->cfg.pq_m;
    uint64_t *ids = NULL, *ts = NULL;
    uint8_t *codes = NULL;
    float *anchor = malloc((size_t)f->cfg.dim * sizeof *anchor);
    if (!anchor) return STRATA_ENOMEM;
    int rc = frac_post_read(f, leaf->id, &n, &ids, &ts, &codes, anchor);
    if (rc != STRATA_OK) goto out;
    uint32_t i = 0;
    while (i < n && ids[i] != id) i++;
    if (i == n) { rc = FRAC_CORRUPT(); goto out; }
    if (f->cfg.flags & CFG_F_RAW) {
        if ((rc = frac_raw_get(f, id, w)) != STRATA_OK) goto out;
        frac_working(f, w, w);
    } else {
        frac_decode_res(f, anchor, codes + (size_t)i * m, w);
    }
    memmove(ids + i, ids + i + 1, (size_t)(n - i - 1) * 8);
    memmove(ts + i, ts + i + 1, (size_t)(n - i - 1) * 8);
    memmove(codes + (size_t)i * m, codes + (size_t)(i + 1) * m, (size_t)(n - i - 1) * m);
    rc = frac_post_write(f, leaf->id, n - 1, ids, ts, codes, anchor);
out:
    free(ids); free(ts); free(codes); free(anchor);
    return rc;
}

/* Did removing w cancel all but a small remainder of a sum on leaf's path?
 * f64 sums of f32 values round when the members' magnitudes differ widely
 * (1e4 and 1e-4), and once the large members are gone that rounding can
 * exceed what is left: the check would see sums that do not match the
 * members. before = after + w, up to that rounding. An exact 0 is taken as
 * exact (integer-valued data such as SIFT: a dimension no member uses). */
int frac_cancelled(strata_fractal *f, const frac_node *n, const float *w)
{
    uint32_t dim = f->cfg.dim;
    double sq = frac_sqnorm(w, dim);
    for (uint32_t step = 0; n && step <= FRAC_DEPTH_LIMIT; step++) {
        for (uint32_t j = 0; n->pop && j < dim; j++)
            if (n->sum[j] != 0 && fabs(n->sum[j]) < fabs(n->sum[j] + w[j]) * 0x1p-16) return 1;
        /* sq == 0 is no exact zero: with members left, a large |w|^2 absorbed
         * the small ones' (1e12 + 1e-6 == 1e12); only zero vectors remain else */
        if (n->pop && fabs(n->sq) < (fabs(n->sq) + sq) * 0x1p-16) return 1;
        n = n->parent == FRAC_NONE ? NULL : frac_node_at(f, n->parent);
    }
    return 0;
}

/* Recompute the leaf's sums from its members, in frac_check's order, and its
 * ancestors' from their children. */
int frac_resum(strata_fractal *f, frac_node *leaf)
{
    uint32_t dim = f->cfg.dim;
    size_t n = 0;
    frac_member *mem = NULL;
    float *w = NULL;
    uint8_t *codes = NULL;
    int rc = frac_leaf_gather(f, leaf, &n, &mem, &w, &codes);
    if (rc != STRATA_OK) return rc;
    memset(leaf->sum, 0, (size_t)dim * sizeof *leaf->sum);
    leaf->sq = leaf->sq_lo = 0;
    for (size_t i = 0; i < n; i++) {
        for (uint32_t j = 0; j < dim; j++) leaf->sum[j] += w[i * dim + j];
        frac_sq_add(leaf, frac_sqnorm(w + i * dim, dim));
    }
    frac_node_cent(f, leaf);
    frac_node *a = leaf;
    for (uint32_t step = 0; a->parent != FRAC_NONE && step <= FRAC_DEPTH_LIMIT; step++) {
        if (!(a = frac_node_at(f, a->parent))) { rc = FRAC_CORRUPT(); break; }
        frac_node_from_children(f, a);
    }
    free(mem); free(w); free(codes);
    return rc;
}

int frac_delete_one(strata_fractal *f, uint64_t id, int allow_merge)
{
    uint32_t leaf_id;
    uint8_t where, k[8];
    uint64_t ts;
    int rc = frac_assign_lookup(f, id, &leaf_id, &where, &ts);
    if (rc != STRATA_OK) return rc;
    frac_node *leaf = frac_node_at(f, leaf_id);
    if (!leaf || !leaf->leaf) return FRAC_CORRUPT();
    if (where == WHERE_POST && (leaf->n_codes == 0 || f->cfg.cb_gen == 0)) return FRAC_CORRUPT();
    if (where == WHERE_BUF && leaf->n_buf == 0) return FRAC_CORRUPT();
    float *w = malloc((size_t)f->cfg.dim * sizeof *w);
    if (!w) return STRATA_ENOMEM;
    if (where == WHERE_BUF) {
        rc = frac_buf_get(f, leaf_id, id, NULL, w);
        if (rc == STRATA_NOTFOUND) rc = FRAC_CORRUPT();
        if (rc == STRATA_OK) rc = frac_buf_del(f, leaf_id, id);
    } else {
        rc = post_remove(f, leaf, id, w);
    }
    frac_le64_put(k, id);
    if (rc == STRATA_OK) rc = strata_del(f->t[FT_ASSIGN], sl(k, 8));
    if (rc == STRATA_OK && (f->cfg.flags & CFG_F_RAW)) rc = strata_del(f->t[FT_RAW], sl(k, 8));
    if (rc == STRATA_NOTFOUND) rc = FRAC_CORRUPT();
    if (rc == STRATA_OK) {
        frac_path_add(f, leaf, w, -1, 1);
        if (where == WHERE_BUF) leaf->n_buf--; else leaf->n_codes--;
        f->cfg.n_vectors--;
        if (frac_cancelled(f, leaf, w)) rc = frac_resum(f, leaf);
    }
    free(w);
    if (rc == STRATA_OK && allow_merge) rc = frac_merge_leaf(f, leaf);
    return rc;
}
