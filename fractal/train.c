/* fractal/train.c - training (and retraining) the global PQ codebooks, for
 * strata_fractal_train, the auto-train at train_size and the retrain policy
 * (retrain_growth). The codebooks quantize residuals: the sample is every
 * s-th member of every leaf (working vectors: raw when kept, buffered, or
 * decoded with the old codebooks) minus its leaf's centroid, at most
 * max_sample of them; fpq_train trains per-subspace codebooks or, with
 * SHARED_CODEBOOK, one codebook on the pooled sub-vectors.
 * After training, every posting list is re-anchored at its leaf's current
 * centroid and re-encoded with the new codebooks (from raw vectors when kept,
 * else from the old decoded codes), the sums are
 * adjusted by (new decoded - old decoded) when raw vectors are not kept (a
 * leaf's recomputed from its members when taking an old code out cancelled
 * most of a sum or sq on its path, as in the cascade), the
 * codebooks are stored with a new generation, and every full buffer cascades.
 * Invariants: (1) a posting list never mixes codes of two generations; (2)
 * the sums keep matching the members' working vectors as check.c defines them.
 */
#include <stdlib.h>
#include <string.h>

#include "fractal_int.h"

enum { DEFAULT_SAMPLE = 16384 };

typedef struct sample {
    float  *x;
    size_t  n, cap, stride, seen;
} sample;

static int collect(strata_fractal *f, frac_node *leaf, sample *s)
{
    size_t n = 0;
    frac_member *mem = NULL;
    float *w = NULL;
    uint8_t *codes = NULL;
    uint32_t dim = f->cfg.dim;
    int rc = frac_leaf_gather(f, leaf, &n, &mem, &w, &codes);
    if (rc != STRATA_OK) return rc;
    for (size_t i = 0; i < n; i++, s->seen++)
        if (s->seen % s->stride == 0 && s->n < s->cap) {
            float *r = s->x + s->n++ * dim;
            for (uint32_t j = 0; j < dim; j++) r[j] = w[i * dim + j] - leaf->cent[j];
        }
    free(mem); free(w); free(codes);
    return STRATA_OK;
}

/* Re-anchor one leaf's posting list at its centroid and re-encode it with the
 * codebooks now in f->pq (one batch per leaf); old holds the codebooks the
 * stored codes use. */
static int reencode(strata_fractal *f, frac_node *leaf, const frac_pq *old)
{
    if (leaf->n_codes == 0) return STRATA_OK;
    uint32_t dim = f->cfg.dim, m = f->cfg.pq_m, n = 0;
    uint64_t *ids = NULL, *ts = NULL;
    uint8_t *codes = NULL, *nc = NULL;
    float *w = NULL, *a = malloc((size_t)3 * dim * sizeof *a), *a_old = a + dim, *d = a_old + dim;
    if (!a) return STRATA_ENOMEM;
    float *a_new = a;
    memcpy(a_new, leaf->cent, (size_t)dim * sizeof *a_new);
    int rc = frac_post_read(f, leaf->id, &n, &ids, &ts, &codes, a_old);
    if (rc == STRATA_OK && n != leaf->n_codes) rc = FRAC_CORRUPT();   /* list and node disagree */
    if (rc == STRATA_OK && (!(nc = malloc((size_t)n * m)) || !(w = malloc((size_t)n * dim * sizeof *w))))
        rc = STRATA_ENOMEM;
    int raw = (f->cfg.flags & CFG_F_RAW) != 0, cancel = 0;
    for (uint32_t i = 0; i < n && rc == STRATA_OK; i++) {
        float *wi = w + (size_t)i * dim;
        if (raw) {
            if ((rc = frac_raw_get(f, ids[i], wi)) == STRATA_OK) frac_working(f, wi, wi);
        } else {
            fpq_decode(old, codes + (size_t)i * m, wi);
            for (uint32_t j = 0; j < dim; j++) wi[j] += a_old[j];
        }
    }
    if (rc == STRATA_OK) rc = frac_encode_res(f, a_new, w, n, nc);
    for (uint32_t i = 0; i < n && rc == STRATA_OK && !raw; i++) {   /* sums follow the codes */
        frac_decode_res(f, a_new, nc + (size_t)i * m, d);
        frac_path_add(f, leaf, w + (size_t)i * dim, -1, 0);
        cancel |= frac_cancelled(f, leaf, w + (size_t)i * dim);
        frac_path_add(f, leaf, d, +1, 0);
    }
    if (rc == STRATA_OK) rc = frac_post_write(f, leaf->id, n, ids, ts, nc, a_new);
    if (rc == STRATA_OK && cancel) rc = frac_resum(f, leaf);   /* as in the cascade */
    free(ids); free(ts); free(codes); free(nc); free(w); free(a);
    return rc;
}

int frac_train(strata_fractal *f, size_t max_sample)
{
    uint32_t dim = f->cfg.dim;
    if (f->cfg.n_vectors == 0) return STRATA_EINVAL;
    if (max_sample == 0) max_sample = DEFAULT_SAMPLE;
    sample s = { .cap = max_sample < f->cfg.n_vectors ? max_sample : (size_t)f->cfg.n_vectors };
    s.stride = (size_t)((f->cfg.n_vectors + s.cap - 1) / s.cap);
    s.x = malloc(s.cap * dim * sizeof *s.x);
    frac_pq np = {0};
    int rc = s.x ? STRATA_OK : STRATA_ENOMEM;
    for (uint32_t i = 0; i < f->n_slots && rc == STRATA_OK; i++) {
        frac_node *n = frac_node_at(f, i);
        if (n && n->leaf) rc = collect(f, n, &s);
    }
    if (rc == STRATA_OK && s.n == 0) rc = FRAC_CORRUPT();   /* n_vectors > 0 but no member */
    if (rc == STRATA_OK)
        rc = fpq_train(&np, s.x, s.n, dim, f->cfg.pq_m, f->cfg.train_iters,
                       f->cfg.seed + f->cfg.cb_gen, (f->cfg.flags & CFG_F_SHARED_CB) != 0);
    free(s.x);
    if (rc != STRATA_OK) { fpq_free(&np); return rc; }
    frac_pq old = f->pq;   /* the new codebooks encode; the old ones decode */
    f->pq = np;
    for (uint32_t i = 0; i < f->n_slots && rc == STRATA_OK; i++) {
        frac_node *n = frac_node_at(f, i);
        if (n && n->leaf) rc = reencode(f, n, &old);
    }
    fpq_free(&old);
    if (rc != STRATA_OK) return rc;   /* half re-encoded: the handle is poisoned */
    f->cfg.cb_gen++;
    f->cfg.n_trained = f->cfg.n_vectors;
    if ((rc = frac_cb_save(f)) != STRATA_OK) return rc;
    for (uint32_t i = 0; i < f->n_slots && rc == STRATA_OK; i++) {
        frac_node *n = frac_node_at(f, i);
        if (n && n->leaf && n->n_buf >= f->cfg.buffer_cap) rc = frac_cascade(f, n);
    }
    return rc;
}
