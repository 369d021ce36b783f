/* ivfpq/store.c - the index's tables: naming and opening them, and loading and
 * saving the config record and the model (centroids, codebooks). Also the
 * derived search table of the handle (transposed codebooks) and the per-entry
 * L2 term stored in the posting blocks.
 * Tables (docs/IVFPQ.md "Tables"): __ivf:NAME:config, :centroids, :codebooks,
 * :lists, :assign (raw vectors live in the posting blocks).
 * Invariants: (1) a loaded model has exactly nlist centroid rows keyed 0..nlist-1
 * and m codebook rows keyed 0..m-1, else STRATA_ECORRUPT; (2) the cached model
 * is what this handle's transaction sees (train replaces both).
 */
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
    ix->lay = ivf_layout(&ix->cfg);
    if ((rc = open_one(ix, "centroids", STRATA_KEY_BYTES, 0, f, &ix->t_cent)) != STRATA_OK) return rc;
    if ((rc = open_one(ix, "codebooks", STRATA_KEY_BYTES, 0, f, &ix->t_cb)) != STRATA_OK) return rc;
    if ((rc = open_one(ix, "lists", STRATA_KEY_BYTES, 0, f, &ix->t_lists)) != STRATA_OK) return rc;
    rc = open_one(ix, "assign", STRATA_KEY_U64, 0, f, &ix->t_assign);
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
    free(ix->centroids); free(ix->cnorm); free(ix->codebooks); free(ix->cb_t);
    ix->centroids = ix->cnorm = ix->codebooks = ix->cb_t = NULL;
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

/* sum_j |w_j|^2 + 2 c_j . w_j = sum_t w_t (w_t + 2 c_t) over the dim
 * coordinates of the reconstructed residual w; summed in coordinate order. */
float ivf_l2_term(const strata_ivf *ix, uint32_t c, const uint8_t *code)
{
    const ivf_config *cf = &ix->cfg;
    size_t dsub = cf->dim / cf->m;
    const float *ce = ix->centroids + (size_t)c * cf->dim;
    float s = 0;
    for (size_t j = 0; j < cf->m; j++) {
        const float *w = ix->codebooks + (j * IVF_KSUB + code[j]) * dsub;
        for (size_t t = 0; t < dsub; t++) s += w[t] * (w[t] + 2.0f * ce[j * dsub + t]);
    }
    return s;
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
    return STRATA_OK;
}
