/* fractal/delete.c - removal of one vector by id, through the id -> leaf
 * assignment table. The member's exact contribution to the sums is
 * subtracted on the leaf and every ancestor: its buffered working vector, its
 * raw vector's working form, or (without raw vectors) its decoded code, which
 * is what the cascade added for it. A leaf left below min_leaf merges into its
 * nearest sibling (merge.c).
 * Invariants: (1) every removal subtracts exactly what was added for the
 * member (population and sums together); (2) an assignment that names a
 * missing leaf, or a leaf that does not hold the id, is STRATA_ECORRUPT.
 */
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
    }
    free(w);
    if (rc == STRATA_OK && allow_merge) rc = frac_merge_leaf(f, leaf);
    return rc;
}
