/* ivfpq/api.c - lifecycle of an IVF-PQ index: create, open, close, drop,
 * train, info. State diagram of the stored config:
 *   (none) --strata_ivf_create--> EMPTY --strata_ivf_train--> TRAINED
 *   TRAINED --strata_ivf_train (no vectors)--> TRAINED (new model)
 *   any --strata_ivf_drop--> (none)
 * Invariants: (1) a handle's cfg and model mirror what its transaction sees;
 * (2) train writes the model and the state in the same transaction, so a
 * reader never sees a half-trained index.
 */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "db.h"
#include "ivfpq_int.h"

/* Default block capacity: as many entries as fit in BLOCK_TARGET bytes of
 * the scanned part (ids, attributes, terms, codes) and, with raw vectors, in
 * BLOCK_TARGET_RAW bytes in all (bounds the rewrite of one insert). */
enum { DEFAULT_ITERS = 25, BLOCK_TARGET = 8192, BLOCK_TARGET_RAW = 65536 };

/* Load config and model again from the tables; on failure the handle stays
 * stale and the next call tries again. */
static int reload(strata_ivf *ix)
{
    ivf_model_free(ix);
    ivf_scratch_free(ix->scratch);   /* sized by the old config, which the */
    ix->scratch = NULL;              /* reload may change (drop + create)  */
    int rc = ivf_tables_open(ix, 0);
    if (rc == STRATA_OK) rc = ivf_model_load(ix);
    if (rc == STRATA_OK) ix->writes_seen = *ix->writes, ix->stale = 0;
    else ix->stale = 1;
    return rc == STRATA_NOTFOUND ? STRATA_EBADTXN : rc;
}

int ivf_handle_check(strata_ivf *ix)
{
    if (!ix || ix->magic != IVF_HANDLE_MAGIC) return STRATA_EINVAL;
    /* a savepoint rollback may have undone rows cached here (a training,
     * the counters), or another handle on the index wrote */
    if (!ix->stale && ix->writes_seen == *ix->writes) return STRATA_OK;
    return reload(ix);
}

void ivf_normalize(float *x, size_t dim)
{
    double s = 0;
    for (size_t i = 0; i < dim; i++) s += (double)x[i] * x[i];
    if (s <= 0) return;
    float inv = (float)(1.0 / sqrt(s));
    for (size_t i = 0; i < dim; i++) x[i] *= inv;
}

static int name_ok(const char *name)
{
    size_t n = name ? strlen(name) : 0;
    return n >= 1 && n <= IVF_NAME_MAX;
}

static int handle_new(strata_txn *txn, const char *name, strata_ivf **out)
{
    strata_ivf *ix = calloc(1, sizeof *ix);
    if (!ix) return STRATA_ENOMEM;
    ix->magic = IVF_HANDLE_MAGIC;
    ix->txn = txn;
    ix->kt = vec_kernels_get();
    memcpy(ix->name, name, strlen(name) + 1);
    char key[IVF_NAME_MAX + 16];
    snprintf(key, sizeof key, "__ivf:%s", name);
    if (!(ix->writes = db_txn_counter(txn, key))) { free(ix); return STRATA_ENOMEM; }
    ix->writes_seen = *ix->writes;
    *out = ix;
    return STRATA_OK;
}

void ivf_wrote(strata_ivf *ix)
{
    ix->writes_seen = ++*ix->writes;
}

void strata_ivf_close(strata_ivf *ix)
{
    if (!ix || ix->magic != IVF_HANDLE_MAGIC) return;
    ivf_model_free(ix);
    ivf_scratch_free(ix->scratch);
    ix->magic = 0;
    free(ix);
}

static int cfg_from_user(const strata_ivf_config *u, ivf_config *c)
{
    if (u->flags & ~(STRATA_IVF_RAW | STRATA_IVF_ATTR)) return STRATA_EINVAL;
    memset(c, 0, sizeof *c);
    c->flags = ((u->flags & STRATA_IVF_RAW) ? CFG_F_RAW : 0) |
               ((u->flags & STRATA_IVF_ATTR) ? CFG_F_ATTR : 0);
    c->dim = u->dim;
    c->metric = (uint32_t)u->metric;
    c->nlist = u->nlist;
    c->m = u->m;
    c->nprobe = u->nprobe;
    c->iters = u->iters ? u->iters : DEFAULT_ITERS;
    c->seed = u->seed;
    c->state = IVF_STATE_EMPTY;
    c->block_cap = u->block_cap;
    if (c->block_cap == 0 && c->m > 0 && c->m <= c->dim) {
        ivf_blayout l = ivf_layout(c);
        uint32_t per = 8 + c->m + (l.attr ? 8 : 0) + (l.term ? 4 : 0);
        c->block_cap = (BLOCK_TARGET - BLK_HDR) / per;
        if (l.raw_dim) {
            uint64_t all = (BLOCK_TARGET_RAW - BLK_HDR) / (per + 4ull * l.raw_dim);
            if (all < c->block_cap) c->block_cap = (uint32_t)all;
        }
        if (c->block_cap == 0) c->block_cap = 1;
        if (c->block_cap > 65535) c->block_cap = 65535;
    }
    return ivf_config_check(c);
}

int strata_ivf_create(strata_txn *txn, const char *name, const strata_ivf_config *cfg,
                      strata_ivf **out)
{
    if (!txn || !cfg || !name_ok(name)) return STRATA_EINVAL;
    strata_ivf *ix = NULL;
    int rc = handle_new(txn, name, &ix);
    if (rc != STRATA_OK) return rc;
    if ((rc = cfg_from_user(cfg, &ix->cfg)) != STRATA_OK) goto out;
    strata_ivf *probe = NULL;
    rc = strata_ivf_open(txn, name, &probe);
    strata_ivf_close(probe);
    if (rc == STRATA_OK) { rc = STRATA_EEXIST; goto out; }
    if (rc != STRATA_NOTFOUND) goto out;
    ivf_wrote(ix);   /* handles left open on a dropped index of that name reload */
    if ((rc = ivf_tables_open(ix, 1)) != STRATA_OK) goto out;
    if ((rc = ivf_config_save(ix)) != STRATA_OK) goto out;
    if (out) { *out = ix; ix = NULL; }
out:
    strata_ivf_close(ix);
    return rc;
}

int strata_ivf_open(strata_txn *txn, const char *name, strata_ivf **out)
{
    if (!txn || !out || !name_ok(name)) return STRATA_EINVAL;
    strata_ivf *ix = NULL;
    int rc = handle_new(txn, name, &ix);
    if (rc != STRATA_OK) return rc;
    if ((rc = ivf_tables_open(ix, 0)) != STRATA_OK) goto out;
    if ((rc = ivf_model_load(ix)) != STRATA_OK) goto out;
    *out = ix;
    ix = NULL;
out:
    strata_ivf_close(ix);
    return rc;
}

/* Drop every table of the index (pages freed, catalog entries removed). The
 * index exists if its config table does; the others are dropped when present,
 * so a damaged index can still be dropped. Open handles of the index in this
 * transaction must not be used afterwards. */
int strata_ivf_drop(strata_txn *txn, const char *name)
{
    static const char *const suffix[] = {"lists", "assign", "centroids", "codebooks", "config"};
    if (!txn || !name_ok(name)) return STRATA_EINVAL;
    char tn[IVF_NAME_MAX + 32];
    snprintf(tn, sizeof tn, "__ivf:%s:config", name);
    strata_table *t;
    strata_table_spec spec = {.key_type = STRATA_KEY_BYTES};
    int rc = db_internal_table_open(txn, tn, &spec, 0, &t);
    if (rc != STRATA_OK) return rc;                   /* STRATA_NOTFOUND: no such index */
    snprintf(tn, sizeof tn, "__ivf:%s", name);
    uint64_t *writes = db_txn_counter(txn, tn);       /* open handles reload: and find it gone */
    if (!writes) return STRATA_ENOMEM;
    ++*writes;
    for (size_t i = 0; i < sizeof suffix / sizeof suffix[0]; i++) {
        snprintf(tn, sizeof tn, "__ivf:%s:%s", name, suffix[i]);
        rc = db_internal_table_drop(txn, tn);
        if (rc != STRATA_OK && rc != STRATA_NOTFOUND) return rc;
    }
    return STRATA_OK;
}

/* Sample copy (normalized for cosine) after validating every vector. */
static int sample_copy(const ivf_config *c, const float *data, size_t n, float **out)
{
    for (size_t i = 0; i < n; i++)
        if (vec_validate(data + i * c->dim, c->dim) != STRATA_OK) return STRATA_EINVAL;
    float *x = malloc(n * c->dim * sizeof *x);
    if (!x) return STRATA_ENOMEM;
    memcpy(x, data, n * c->dim * sizeof *x);
    if (c->metric == STRATA_METRIC_COSINE)
        for (size_t i = 0; i < n; i++) ivf_normalize(x + i * c->dim, c->dim);
    *out = x;
    return STRATA_OK;
}

/* Coarse k-means, residuals, PQ k-means; the model goes to the handle. */
static int train_model(strata_ivf *ix, float *x, size_t n, unsigned *warn)
{
    ivf_config *c = &ix->cfg;
    size_t dsub = c->dim / c->m;
    float *cent = malloc((size_t)c->nlist * c->dim * sizeof *cent);
    float *cb = malloc((size_t)c->m * IVF_KSUB * dsub * sizeof *cb);
    uint32_t *as = malloc(n * sizeof *as);
    ivf_kmeans_out ko, po;
    int rc = STRATA_ENOMEM;
    if (!cent || !cb || !as) goto out;
    if ((rc = ivf_kmeans(x, n, c->dim, c->nlist, c->iters, c->seed, cent, &ko)) != STRATA_OK) goto out;
    rc = ivf_assign(x, n, c->dim, cent, c->nlist, c->metric == STRATA_METRIC_IP, as, NULL);
    if (rc != STRATA_OK) goto out;
    for (size_t i = 0; i < n; i++)
        for (uint32_t d = 0; d < c->dim; d++) x[i * c->dim + d] -= cent[(size_t)as[i] * c->dim + d];
    if ((rc = ivf_pq_train(x, n, c->dim, c->m, c->iters, c->seed, cb, &po)) != STRATA_OK) goto out;
    if (ko.n_repaired || ko.n_empty || po.n_repaired || po.n_empty) *warn |= STRATA_IVF_WARN_EMPTY;
    if (ko.n_distinct < c->nlist || po.n_distinct < c->m * IVF_KSUB) *warn |= STRATA_IVF_WARN_DEGENERATE;
    ivf_model_free(ix);
    ix->centroids = cent; cent = NULL;
    ix->codebooks = cb; cb = NULL;
    rc = (ix->cnorm = malloc(c->nlist * sizeof(float))) ? STRATA_OK : STRATA_ENOMEM;
    for (uint32_t i = 0; rc == STRATA_OK && i < c->nlist; i++) {
        float s = 0;
        for (uint32_t d = 0; d < c->dim; d++) s += ix->centroids[(size_t)i * c->dim + d] * ix->centroids[(size_t)i * c->dim + d];
        ix->cnorm[i] = s;
    }
out:
    free(cent); free(cb); free(as);
    return rc;
}

int strata_ivf_train(strata_ivf *ix, const float *data, size_t n, size_t dim, unsigned *warnings)
{
    int rc = ivf_handle_check(ix);
    if (rc != STRATA_OK) return rc;
    ivf_config *c = &ix->cfg;
    if (!data || dim != c->dim || n < c->nlist || n < IVF_KSUB || n > UINT32_MAX)
        return STRATA_EINVAL;
    if (c->n_vectors > 0) return STRATA_EEXIST;
    unsigned warn = 0;
    if (n < 39 * (size_t)c->nlist) warn |= STRATA_IVF_WARN_SMALL_SAMPLE;
    if (n < 39 * (size_t)IVF_KSUB) warn |= STRATA_IVF_WARN_PQ_SAMPLE;
    float *x = NULL;
    if ((rc = sample_copy(c, data, n, &x)) != STRATA_OK) return rc;
    rc = train_model(ix, x, n, &warn);
    free(x);
    int saved = 0;                                  /* the model rows were written to */
    if (rc == STRATA_OK) {
        c->state = IVF_STATE_TRAINED;
        ivf_wrote(ix);
        saved = 1;
        if ((rc = ivf_model_save(ix)) == STRATA_OK) rc = ivf_config_save(ix);
    }
    if (rc != STRATA_OK) {
        /* the handle must keep mirroring the tables (invariant 1): reload
         * what the transaction sees instead of the model that was not stored
         * (read transaction, failed write); a half-written model makes the
         * transaction abort-only (db/db.h) */
        if (saved && rc != STRATA_EREADONLY) db_txn_fail(ix->txn);
        (void)reload(ix);   /* if it fails, the next call retries */
        return rc;
    }
    if (warnings) *warnings = warn;
    return rc;
}

int strata_ivf_info_get(strata_ivf *ix, strata_ivf_info *out)
{
    int rc = ivf_handle_check(ix);
    if (rc != STRATA_OK || !out) return rc ? rc : STRATA_EINVAL;
    const ivf_config *c = &ix->cfg;
    strata_ivf_info r;
    memset(&r, 0, sizeof r);
    r.config = (strata_ivf_config){c->dim, (strata_metric)c->metric, c->nlist, c->m, c->nprobe,
        ((c->flags & CFG_F_RAW) ? STRATA_IVF_RAW : 0) | ((c->flags & CFG_F_ATTR) ? STRATA_IVF_ATTR : 0),
        c->iters, c->block_cap, c->seed};
    r.trained = c->state == IVF_STATE_TRAINED;
    r.n_vectors = c->n_vectors;
    r.model_bytes = r.trained ? 4ull * c->nlist * c->dim + 4ull * c->m * IVF_KSUB * (c->dim / c->m) : 0;
    strata_cursor *cur = NULL;
    if ((rc = strata_cursor_open(ix->t_lists, &cur)) != STRATA_OK) return rc;
    for (rc = strata_cursor_first(cur); rc == STRATA_OK; rc = strata_cursor_next(cur)) {
        strata_slice k, v;
        ivf_block b;
        if ((rc = strata_cursor_get(cur, &k, &v)) != STRATA_OK) break;
        if (k.len != LIST_KEY_LEN) { rc = STRATA_ECORRUPT; break; }
        rc = ivf_block_view(v.data, v.len, &ix->lay, c->block_cap, ivf_be32_get(k.data), &b);
        if (rc != STRATA_OK) break;
        r.n_blocks++;
        r.code_bytes += ivf_block_raw_off(&ix->lay, b.n);   /* raw vectors not counted */
    }
    strata_cursor_close(cur);
    if (rc != STRATA_NOTFOUND) return rc;
    *out = r;
    return STRATA_OK;
}
