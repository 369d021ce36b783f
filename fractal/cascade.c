/* fractal/cascade.c - the buffer cascade: when a leaf's write buffer reaches
 * buffer_cap (and codebooks exist), its buffered working vectors are
 * PQ-encoded as residuals against the leaf's anchor and appended to the leaf's
 * posting list, and the buffer rows are deleted. A leaf without codes takes
 * its current centroid as the anchor; a leaf with codes keeps its anchor (the
 * codes already stored depend on it; split, merge and train re-anchor).
 * A cascade into a list whose buffer lies far outside it (a new region's
 * vectors routed into an old region's leaf: the buffer's mean squared
 * distance to the leaf's centroid above SEP_FAR times the posting members',
 * which comes from the leaf's sums and sq less the buffer's, not from the
 * members' raw rows, a B-tree lookup each; both about the leaf's centroid
 * after the cascade) marks the leaf for the separation
 * check of the next frac_split_leaf (split.c).
 * Invariants: (1) every buffered member ends up exactly once in the posting
 * list, with its assignment row switched to WHERE_POST; (2) without raw
 * vectors, a member's contribution to the sums changes from its working
 * vector to its decoded code (what a later removal can subtract exactly), on
 * the leaf and every ancestor; with raw vectors the sums do not change. A
 * vector far outside the codebooks' scale decodes near the anchor: when
 * taking it out cancelled most of a sum or sq on the path (a member large
 * against the rest), the leaf's sums are recomputed from its members and the
 * ancestors' from their children, as after such a delete.
 */
#include <stdlib.h>
#include <string.h>

#include "fractal_int.h"

#define SEP_FAR 2.0

/* mean squared distance of n vectors w to c */
static double spread(uint32_t dim, const float *c, const float *w, size_t n)
{
    float s = 0;
    for (size_t i = 0; i < n; i++)
        for (uint32_t j = 0; j < dim; j++) {   /* f32: a comparison of spreads, vectorized */
            float e = w[i * dim + j] - c[j];
            s += e * e;
        }
    return (double)s / (double)n;
}

/* Mean squared distance to c of the leaf's np posting members, from its sums
 * and sq less the nb buffered members' contributions w (their rows are all
 * it reads: the posting members' vectors would cost a raw row lookup each).
 * Rounding can leave a small negative value for members at c: taken as 0. */
static double post_spread(uint32_t dim, const frac_node *leaf, const float *c, const float *w,
                          size_t nb, uint32_t np)
{
    double sq = leaf->sq + leaf->sq_lo, cross = 0, cc = 0;
    for (size_t i = 0; i < nb; i++) sq -= frac_sqnorm(w + i * dim, dim);
    for (uint32_t j = 0; j < dim; j++) {
        double sj = leaf->sum[j];
        for (size_t i = 0; i < nb; i++) sj -= w[i * dim + j];
        cross += sj * c[j];
        cc += (double)c[j] * c[j];
    }
    double s = (sq - 2 * cross + (double)np * cc) / (double)np;
    return s > 0 ? s : 0;
}

int frac_cascade(strata_fractal *f, frac_node *leaf)
{
    if (f->cfg.cb_gen == 0 || leaf->n_buf == 0) return STRATA_OK;
    uint32_t dim = f->cfg.dim, m = f->cfg.pq_m, np = 0;
    size_t n = 0;
    frac_member *mem = NULL;
    float *w = NULL, *dec = NULL, *anchor = NULL;
    uint8_t *bcodes = NULL, *allc = NULL;
    uint64_t *pids = NULL, *pts = NULL;
    int cancel = 0;
    int rc = frac_buf_gather(f, leaf, &n, &mem, &w);
    if (rc != STRATA_OK) return rc;
    size_t nb = n;
    /* dec: the buffered members' decoded codes, what the sums hold for them
     * after the cascade without raw vectors */
    if (!(bcodes = malloc(nb * m)) || !(dec = malloc(nb * dim * sizeof *dec)) ||
        !(anchor = malloc((size_t)dim * sizeof *anchor))) {
        rc = STRATA_ENOMEM;
        goto out;
    }
    if ((rc = frac_post_read(f, leaf->id, &np, &pids, &pts, &allc, anchor)) != STRATA_OK) goto out;
    if (np == 0) memcpy(anchor, leaf->cent, (size_t)dim * sizeof *anchor);
    if ((rc = frac_encode_res(f, anchor, w, nb, bcodes)) != STRATA_OK) goto out;
    uint64_t *ids2 = realloc(pids, ((size_t)np + nb) * 8);
    if (ids2) pids = ids2;
    uint64_t *ts2 = realloc(pts, ((size_t)np + nb) * 8);
    if (ts2) pts = ts2;
    uint8_t *c2 = realloc(allc, ((size_t)np + nb) * m);
    if (c2) allc = c2;
    if (!ids2 || !ts2 || !c2) { rc = STRATA_ENOMEM; goto out; }
    for (size_t i = 0; i < nb; i++) {
        pids[np + i] = mem[i].id;
        pts[np + i] = mem[i].ts;
        memcpy(allc + (np + i) * m, bcodes + i * m, m);
    }
    if ((rc = frac_post_write(f, leaf->id, (uint32_t)(np + nb), pids, pts, allc, anchor))) goto out;
    for (size_t i = 0; i < nb && rc == STRATA_OK; i++) {
        rc = frac_buf_del(f, leaf->id, mem[i].id);
        if (rc == STRATA_OK) rc = frac_assign_set(f, mem[i].id, leaf->id, WHERE_POST, mem[i].ts);
        if (rc == STRATA_OK && !(f->cfg.flags & CFG_F_RAW)) {
            frac_decode_res(f, anchor, bcodes + i * m, dec + i * dim);
            frac_path_add(f, leaf, w + i * dim, -1, 0);
            cancel |= frac_cancelled(f, leaf, w + i * dim);
            frac_path_add(f, leaf, dec + i * dim, +1, 0);
        }
    }
    if (rc != STRATA_OK) goto out;
    leaf->n_codes += (uint32_t)nb;
    leaf->n_buf = 0;
    leaf->dirty = 1;
    if (cancel && (rc = frac_resum(f, leaf)) != STRATA_OK) goto out;
    /* both spreads about the centroid after the cascade: without raw vectors
     * the buffer's decoded codes replaced its vectors in the sums (far
     * outside the codebooks' scale they decode near the anchor, and the
     * centroid moves back towards the posting members) */
    if (np > 0) {
        const float *in_sums = (f->cfg.flags & CFG_F_RAW) ? w : dec;
        double sp_post = post_spread(dim, leaf, leaf->cent, in_sums, nb, np);
        if (spread(dim, leaf->cent, w, nb) > SEP_FAR * sp_post) leaf->sep_check = 1;
    }
out:
    free(mem); free(w); free(bcodes); free(dec); free(pids); free(pts); free(allc);
    free(anchor);
    return rc;
}
