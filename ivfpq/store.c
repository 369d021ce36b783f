/* ivfpq/store.c - the index's tables: naming and opening them, and loading and
 * saving the config record and the model (centroids, codebooks). Also the
 * derived search tables of the handle (L2 term table, transposed codebooks).
 * Tables (docs/IVFPQ.md "Tables"): __ivf:NAME:config, :centroids, :codebooks,
 * :lists, :assign and, with raw vectors kept, :raw.
 * Invariants: (1) a loaded model has exactly nlist centroid rows keyed 0..nlist-1
 * and m codebook rows keyed 0..m-1, else STRATA_ECORRUPT; (2) the cached model
 * is what this handle's transaction sees (train replaces both).
 */
#include <cblas.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "db.h"
#include "ivfpq_int.h"

static const char CFG_KEY[] = "config";

static int open_one(strata_ivf *ix, const char *suffix, strata_key_type kt, uint32_t vdim,
                    unsigned flags, strata_table **out)
{
    char name[IVF_NAME_MAX + 32];
    snprintf(name, sizeof name, "__ivf:%s:%s", ix->name, suffix);
    strata_table_spec spec = {.key_type = kt, .comparator = NULL, .vector_dim = vdim};
    return db_internal_table_open(ix->txn, name, &spec, flags, out);
}

/* Open every table; create them when `create` (a new index: cfg already set). */
int ivf_tables_open(strata_ivf *ix, int create)
{
    unsigned f = create ? STRATA_CREATE : 0;
    int rc;
    if ((rc = open_one(ix, "config", STRATA_KEY_BYTES, 0, f, &ix->t_config)) != STRATA_OK) return rc;
    if (!create) {
        if ((rc = ivf_config_load(ix)) != STRATA_OK) return rc;
    }
    if ((rc = open_one(ix, "centroids", STRATA_KEY_BYTES, 0, f, &ix->t_cent)) != STRATA_OK) return rc;
    if ((rc = open_one(ix, "codebooks", STRATA_KEY_BYTES, 0, f, &ix->t_cb)) != STRATA_OK) return rc;
    if ((rc = open_one(ix, "lists", STRATA_KEY_BYTES, 0, f, &ix->t_lists)) != STRATA_OK) return rc;
    if ((rc = open_one(ix, "assign", STRATA_KEY_U64, 0, f, &ix->t_assign)) != STRATA_OK) return rc;
    if (ix->cfg.flags & CFG_F_RAW)
        rc = open_one(ix, "raw", STRATA_KEY_U64, ix->cfg.dim, f | STRATA_VECTOR, &ix->t_raw);
    if (rc == STRATA_NOTFOUND && !create) rc = STRATA_ECORRUPT;   /* config without tables */
    return rc;
}

int ivf_config_load(strata_ivf *ix)
{
    strata_slice v;
    int rc = strata_get(ix->t_config, (strata_slice){CFG_KEY, sizeof CFG_KEY - 1}, &v);
    if (rc == STRATA_NOTFOUND) return STRATA_ECORRUPT;
    if (rc != STRATA_OK) return rc;
    return ivf_config_get(v.data, v.len, &ix->cfg);
}

int ivf_config_save(strata_ivf *ix)
{
    uint8_t buf[CFG_SIZE];
    ivf_config_put(buf, &ix->cfg);
    return strata_put(ix->t_config, (strata_slice){CFG_KEY, sizeof CFG_KEY - 1},
                      (strata_slice){buf, sizeof buf});
}

void ivf_model_free(strata_ivf *ix)
{
    free(ix->centroids); free(ix->cnorm); free(ix->codebooks); free(ix->l2_term); free(ix->cb_t);
    ix->centroids = ix->cnorm = ix->codebooks = ix->l2_term = ix->cb_t = NULL;
}

/* Read rows keyed 0..n-1 (u32 BE) of `len` floats each into dst. */
static int rows_load(strata_table *t, uint32_t n, size_t len, float *dst)
{
    strata_cursor *c = NULL;
    int rc = strata_cursor_open(t, &c);
    if (rc != STRATA_OK) return rc;
    rc = strata_cursor_first(c);
    for (uint32_t i = 0; i < n; i++) {
        strata_slice k, v;
        if (rc == STRATA_NOTFOUND) { rc = STRATA_ECORRUPT; break; }
        if (rc != STRATA_OK || (rc = strata_cursor_get(c, &k, &v)) != STRATA_OK) break;
        if (k.len != 4 || ivf_be32_get(k.data) != i) { rc = STRATA_ECORRUPT; break; }
        if ((rc = ivf_row_get(v.data, v.len, dst + (size_t)i * len, len)) != STRATA_OK) break;
        rc = strata_cursor_next(c);
    }
    if (rc == STRATA_OK) rc = STRATA_ECORRUPT;          /* a row past the last one */
    else if (rc == STRATA_NOTFOUND) rc = STRATA_OK;
    strata_cursor_close(c);
    return rc;
}

int ivf_model_load(strata_ivf *ix)
{
    const ivf_config *c = &ix->cfg;
    ivf_model_free(ix);
    if (c->state != IVF_STATE_TRAINED) return STRATA_OK;
    size_t dsub = c->dim / c->m;
    ix->centroids = malloc((size_t)c->nlist * c->dim * sizeof(float));
    ix->cnorm = malloc((size_t)c->nlist * sizeof(float));
    ix->codebooks = malloc((size_t)c->m * IVF_KSUB * dsub * sizeof(float));
    int rc = STRATA_ENOMEM;
    if (!ix->centroids || !ix->cnorm || !ix->codebooks) goto out;
    if ((rc = rows_load(ix->t_cent, c->nlist, c->dim, ix->centroids)) != STRATA_OK) goto out;
    if ((rc = rows_load(ix->t_cb, c->m, IVF_KSUB * dsub, ix->codebooks)) != STRATA_OK) goto out;
    for (uint32_t i = 0; i < c->nlist; i++) {
        const float *r = ix->centroids + (size_t)i * c->dim;
        float s = 0;
        for (uint32_t d = 0; d < c->dim; d++) s += r[d] * r[d];
        ix->cnorm[i] = s;
    }
out:
    if (rc != STRATA_OK) ivf_model_free(ix);
    return rc;
}

static int rows_save(strata_table *t, uint32_t n, size_t len, const float *src)
{
    uint8_t *buf = malloc(ivf_row_size(len));
    if (!buf) return STRATA_ENOMEM;
    int rc = strata_del_range(t, NULL, NULL, 0, NULL);
    for (uint32_t i = 0; i < n && rc == STRATA_OK; i++) {
        uint8_t key[4];
        ivf_be32_put(key, i);
        ivf_row_put(buf, src + (size_t)i * len, len);
        rc = strata_put(t, (strata_slice){key, 4}, (strata_slice){buf, ivf_row_size(len)});
    }
    free(buf);
    return rc;
}

int ivf_model_save(strata_ivf *ix)
{
    const ivf_config *c = &ix->cfg;
    int rc = rows_save(ix->t_cent, c->nlist, c->dim, ix->centroids);
    if (rc == STRATA_OK) rc = rows_save(ix->t_cb, c->m, IVF_KSUB * (c->dim / c->m), ix->codebooks);
    return rc;
}

/* term[(c * m + j) * 256 + w] = |cb_jw|^2 + 2 c_j . cb_jw, so that the L2 table
 * of cluster c for query q is term[c] - 2 q_j . cb_jw, plus |q - c|^2. Every
 * entry must be finite: the scan kernels then only have to catch overflow. */
static int l2_term_build(strata_ivf *ix)
{
    if (ix->l2_term) return STRATA_OK;
    const ivf_config *c = &ix->cfg;
    size_t dsub = c->dim / c->m, row = (size_t)c->m * IVF_KSUB;
    float *t = malloc((size_t)c->nlist * row * sizeof *t);
    if (!t) return STRATA_ENOMEM;
    for (size_t j = 0; j < c->m; j++) {
        const float *cb = ix->codebooks + j * IVF_KSUB * dsub;
        cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasTrans, (int)c->nlist, IVF_KSUB, (int)dsub,
                    2.0f, ix->centroids + j * dsub, (int)c->dim, cb, (int)dsub, 0.0f,
                    t + j * IVF_KSUB, (int)row);
        for (size_t w = 0; w < IVF_KSUB; w++) {
            float s = 0;
            for (size_t d = 0; d < dsub; d++) s += cb[w * dsub + d] * cb[w * dsub + d];
            for (size_t ci = 0; ci < c->nlist; ci++) t[ci * row + j * IVF_KSUB + w] += s;
        }
    }
    for (size_t i = 0; i < (size_t)c->nlist * row; i++)
        if (!isfinite(t[i])) { free(t); return STRATA_ECORRUPT; }
    ix->l2_term = t;
    return STRATA_OK;
}

int ivf_search_tables_build(strata_ivf *ix)
{
    const ivf_config *c = &ix->cfg;
    if (!ix->cb_t) {
        float *t = malloc((size_t)c->m * IVF_KSUB * (c->dim / c->m) * sizeof *t);
        if (!t) return STRATA_ENOMEM;
        ivf_pq_transpose(ix->codebooks, c->dim, c->m, t);
        ix->cb_t = t;
    }
    return c->metric == STRATA_METRIC_L2 ? l2_term_build(ix) : STRATA_OK;
}

int ivf_raw_get(strata_ivf *ix, uint64_t id, float *out)
{
    uint8_t key[8];
    strata_slice v;
    ivf_le64_put(key, id);
    int rc = strata_get(ix->t_raw, (strata_slice){key, 8}, &v);
    if (rc == STRATA_NOTFOUND) return STRATA_ECORRUPT;      /* invariant (3) */
    if (rc != STRATA_OK) return rc;
    if (v.len != 4 * (size_t)ix->cfg.dim) return STRATA_ECORRUPT;
    vec_f32_get(out, v.data, ix->cfg.dim);
    return STRATA_OK;
}
