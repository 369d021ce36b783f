/* fractal/insert.c - insert and upsert of one vector. The vector's working
 * form is routed down the tree to the nearest leaf by centroid, appended to
 * that leaf's write buffer, and added to the sums and populations of the leaf
 * and every ancestor; then the leaf cascades (buffer full, codebooks exist),
 * splits (above max_leaf), and the codebooks are trained automatically when
 * train_size vectors are present and none exist yet, or retrained (the
 * retrain policy, retrain_growth > 0) when the index has grown by
 * retrain_growth percent since the last training (at least one vector).
 * Invariants: (1) an id already present is first removed completely (buffer
 * row or posting entry, assignment, raw row, sums), as a delete (its leaf
 * merges if it falls below min_leaf), so an upsert never leaves a stale copy
 * or an emptied leaf behind; (2) routing uses centroids that include every earlier
 * insert of the same batch (frac_path_add() updates them at once).
 */
#include <stdlib.h>
#include <string.h>

#include "fractal_int.h"

static strata_slice sl(const void *p, size_t n) { return (strata_slice){p, n}; }

static int raw_put(strata_fractal *f, uint64_t id, const float *x)
{
    uint8_t k[8];
    size_t len = (size_t)4 * f->cfg.dim;
    uint8_t *v = malloc(len);
    if (!v) return STRATA_ENOMEM;
    frac_le64_put(k, id);
    vec_f32_put(v, x, f->cfg.dim);
    int rc = strata_put(f->t[FT_RAW], sl(k, 8), sl(v, len));
    free(v);
    return rc;
}

/* The retrain policy's threshold n_trained * (1 + retrain_growth / 100),
 * rounded up and at least n_trained + 1: without growth (an upsert, a delete
 * and re-insert at the trained size) there is no retraining. */
static uint64_t retrain_at(const frac_config *c)
{
    uint64_t grow = (c->n_trained * c->retrain_growth + 99) / 100;
    return c->n_trained + (grow ? grow : 1);
}

int frac_insert_one(strata_fractal *f, uint64_t id, const float *x, uint64_t ts)
{
    uint32_t leaf_id;
    uint8_t where;
    uint64_t old_ts;
    int rc = frac_assign_lookup(f, id, &leaf_id, &where, &old_ts);
    if (rc == STRATA_OK) rc = frac_delete_one(f, id, 1);   /* upsert: a removal, merges included */
    else if (rc == STRATA_NOTFOUND) rc = STRATA_OK;
    if (rc != STRATA_OK) return rc;
    float *w = malloc((size_t)f->cfg.dim * sizeof *w);
    if (!w) return STRATA_ENOMEM;
    frac_working(f, x, w);
    frac_node *leaf = frac_route(f, w);
    if (!leaf) { free(w); return FRAC_CORRUPT(); }
    rc = frac_buf_put(f, leaf->id, id, ts, w);
    if (rc == STRATA_OK) rc = frac_assign_set(f, id, leaf->id, WHERE_BUF, ts);
    if (rc == STRATA_OK && (f->cfg.flags & CFG_F_RAW)) rc = raw_put(f, id, x);
    if (rc == STRATA_OK) {
        frac_path_add(f, leaf, w, +1, 1);
        frac_path_ts(f, leaf, ts);
        leaf->n_buf++;
        f->cfg.n_vectors++;
    }
    free(w);
    if (rc != STRATA_OK) return rc;
    if (f->cfg.cb_gen && leaf->n_buf >= f->cfg.buffer_cap && (rc = frac_cascade(f, leaf)))
        return rc;
    if ((rc = frac_split_leaf(f, leaf)) != STRATA_OK) return rc;   /* if full or marked */
    if (f->cfg.cb_gen == 0 && f->cfg.train_size && f->cfg.n_vectors >= f->cfg.train_size)
        rc = frac_train(f, 0);
    else if (f->cfg.cb_gen && f->cfg.retrain_growth && f->cfg.n_vectors >= retrain_at(&f->cfg))
        rc = frac_train(f, 0);   /* the retrain policy */
    return rc;
}
