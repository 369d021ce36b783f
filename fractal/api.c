/* fractal/api.c - the public strata_fractal_* functions: argument checks,
 * handle life cycle (create, open, close, drop), and the write-back rule:
 * every mutating call flushes the nodes it changed before returning, and a
 * failure after the first write poisons the handle (the transaction must be
 * aborted).
 * Invariants: (1) a handle's magic is FRAC_HANDLE_MAGIC from open to close;
 * (2) inputs are validated completely before the first write, so STRATA_EINVAL
 * never leaves a partial change.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "db.h"
#include "fractal_int.h"

static int name_ok(const char *name)
{
    if (!name) return 0;
    size_t n = strlen(name);
    return n >= 1 && n <= FRAC_NAME_MAX && !strchr(name, ':');
}

void strata_fractal_config_default(strata_fractal_config *cfg, uint32_t dim, strata_metric metric)
{
    if (!cfg) return;
    memset(cfg, 0, sizeof *cfg);
    cfg->dim = dim;
    cfg->metric = metric;
    cfg->pq_m = dim % 4 == 0 ? dim / 4 : dim % 2 == 0 ? dim / 2 : dim;
    cfg->max_leaf = 512;    /* docs/FRACTAL.md "Insert routing and leaf ranking": 256 covered less */
    cfg->min_leaf = 64;
    cfg->max_fanout = 32;
    cfg->max_depth = 8;
    cfg->buffer_cap = 8;    /* docs/FRACTAL.md "Knobs": with 32, searches 1.2-1.5x slower */
    cfg->train_iters = 10;
    cfg->flags = STRATA_FRACTAL_KEEP_RAW;
    cfg->seed = 1;
    cfg->retrain_growth = 0;
}

static int handle_new(strata_txn *txn, const char *name, strata_fractal **out)
{
    strata_fractal *f = calloc(1, sizeof *f);
    if (!f) return STRATA_ENOMEM;
    f->magic = FRAC_HANDLE_MAGIC;
    f->txn = txn;
    f->kt = vec_kernels_get();
    snprintf(f->name, sizeof f->name, "%s", name);
    char key[FRAC_NAME_MAX + 16];
    snprintf(key, sizeof key, "__frac:%s", name);
    if (!(f->writes = db_txn_counter(txn, key))) { free(f); return STRATA_ENOMEM; }
    f->writes_seen = *f->writes;
    *out = f;
    return STRATA_OK;
}

/* After this handle wrote to the index (or tried to): other handles on it in
 * txn reload before their next call; this one is current. */
static void wrote(strata_fractal *f)
{
    f->writes_seen = ++*f->writes;
}

void strata_fractal_close(strata_fractal *f)
{
    if (!f || f->magic != FRAC_HANDLE_MAGIC) return;
    frac_cache_free(f);
    f->magic = 0;
    free(f);
}

static int load(strata_fractal *f)
{
    uint8_t k[8];
    strata_slice v;
    frac_le64_put(k, 0);
    int rc = strata_get(f->t[FT_CONFIG], (strata_slice){k, 8}, &v);
    if (rc == STRATA_NOTFOUND) {   /* a create that never completed, or an old-style drop */
        uint64_t n = 1;
        int r = strata_len(f->t[FT_NODES], &n);
        return r == STRATA_OK && n == 0 ? STRATA_NOTFOUND : FRAC_CORRUPT();
    }
    if (rc == STRATA_OK) rc = frac_config_get(v.data, v.len, &f->cfg);
    if (rc == STRATA_OK) rc = frac_nodes_load(f);
    if (rc == STRATA_OK) rc = frac_cb_load(f);
    return rc;
}

int strata_fractal_open(strata_txn *txn, const char *name, strata_fractal **out)
{
    if (!txn || !out || !name_ok(name)) return STRATA_EINVAL;
    strata_fractal *f = NULL;
    int rc = handle_new(txn, name, &f);
    if (rc == STRATA_OK) rc = frac_tables_open(f, 0);
    if (rc == STRATA_OK) rc = load(f);
    if (rc != STRATA_OK) { strata_fractal_close(f); return rc; }
    *out = f;
    return STRATA_OK;
}

int strata_fractal_create(strata_txn *txn, const char *name, const strata_fractal_config *cfg,
                          strata_fractal **out)
{
    if (!txn || !cfg || !name_ok(name)) return STRATA_EINVAL;
    frac_config c = { .flags = cfg->flags, .dim = cfg->dim, .metric = (uint32_t)cfg->metric,
                      .pq_m = cfg->pq_m, .max_leaf = cfg->max_leaf, .min_leaf = cfg->min_leaf,
                      .max_fanout = cfg->max_fanout, .max_depth = cfg->max_depth,
                      .buffer_cap = cfg->buffer_cap, .train_size = cfg->train_size,
                      .train_iters = cfg->train_iters, .seed = cfg->seed,
                      .retrain_growth = cfg->retrain_growth };
    if (!frac_config_valid(&c)) return STRATA_EINVAL;
    strata_fractal *f = NULL;
    frac_node *root = NULL;
    uint64_t n;
    int rc = handle_new(txn, name, &f);
    if (rc == STRATA_OK) rc = frac_tables_open(f, 1);
    if (rc == STRATA_OK) rc = strata_len(f->t[FT_CONFIG], &n);
    if (rc == STRATA_OK && n) rc = STRATA_EEXIST;
    if (rc == STRATA_OK) {
        f->cfg = c;
        rc = frac_node_new(f, 1, 0, &root);
    }
    if (rc == STRATA_OK) {
        f->cfg.root = root->id;
        rc = frac_flush(f);
    }
    if (f) wrote(f);   /* a handle left open on a dropped index reloads */
    if (rc == STRATA_OK && out) { *out = f; f = NULL; }
    strata_fractal_close(f);
    return rc;
}

/* Drop every internal table of the index (db_internal_table_drop frees its
 * pages and removes its catalog entry). The index exists when its config row
 * does; tables without one (an old-style drop that only emptied them, or a
 * create that never committed a config) are removed as well, and the answer is
 * STRATA_NOTFOUND. Table handles become unusable, so the handle used to look
 * is closed first. */
int strata_fractal_drop(strata_txn *txn, const char *name)
{
    if (!txn || !name_ok(name)) return STRATA_EINVAL;
    strata_fractal *f = NULL;
    uint64_t n = 0;
    int rc = handle_new(txn, name, &f);
    if (rc == STRATA_OK) rc = frac_tables_open(f, 0);
    if (rc == STRATA_OK) rc = strata_len(f->t[FT_CONFIG], &n);
    if (f) wrote(f);   /* handles still open on it reload (and find it gone) */
    strata_fractal_close(f);
    if (rc != STRATA_OK) return rc;
    int found = n != 0;
    char tn[FRAC_NAME_MAX + 32];
    for (int i = 0; i < FT_COUNT && rc == STRATA_OK; i++) {
        frac_table_name(tn, sizeof tn, name, i);
        rc = db_internal_table_drop(txn, tn);
        if (rc == STRATA_NOTFOUND) rc = STRATA_OK;   /* a create that stopped half-way */
    }
    return rc == STRATA_OK && !found ? STRATA_NOTFOUND : rc;
}

/* A savepoint rollback in txn may have undone rows the cache holds (or the
 * whole index, if it was created after the savepoint), or another handle on
 * the index wrote to it: reload the tree and codebooks from the tables
 * before using the handle again. A handle poisoned before a rollback is
 * usable again if the reload succeeds (the rollback undid the half-done
 * write). */
static int reload(strata_fractal *f)
{
    frac_cache_free(f);
    memset(&f->cfg, 0, sizeof f->cfg);
    f->writes_seen = *f->writes;
    int rc = frac_tables_open(f, 0);
    if (rc == STRATA_OK) rc = load(f);
    f->poisoned = rc != STRATA_OK;
    return rc == STRATA_NOTFOUND ? STRATA_EBADTXN : rc;   /* the index is gone */
}

static int handle_ok(strata_fractal *f)
{
    if (!f || f->magic != FRAC_HANDLE_MAGIC) return STRATA_EINVAL;
    if (f->writes_seen != *f->writes) {
        int rc = reload(f);
        if (rc != STRATA_OK) return rc;
    }
    return f->poisoned ? STRATA_EBADTXN : STRATA_OK;
}

/* Flush; when a write may have half-happened, poison the handle and make the
 * transaction abort-only (db_txn_fail), so the half-written index can never
 * be committed (through this handle or any other). */
static int finish_write(strata_fractal *f, int rc)
{
    wrote(f);
    if (rc == STRATA_OK) rc = frac_flush(f);
    if (rc != STRATA_OK && rc != STRATA_EINVAL && rc != STRATA_NOTFOUND && rc != STRATA_EREADONLY) {
        f->poisoned = 1;
        db_txn_fail(f->txn);
    }
    return rc;
}

int strata_fractal_add_batch(strata_fractal *f, size_t n, const uint64_t *ids, const float *data,
                             size_t dim, const uint64_t *ts)
{
    int rc = handle_ok(f);
    if (rc != STRATA_OK) return rc;
    if ((n && (!ids || !data)) || dim != f->cfg.dim) return STRATA_EINVAL;
    for (size_t i = 0; i < n; i++)
        if (vec_validate(data + i * dim, dim) != STRATA_OK) return STRATA_EINVAL;
    for (size_t i = 0; i < n && rc == STRATA_OK; i++)
        rc = frac_insert_one(f, ids[i], data + i * dim, ts ? ts[i] : 0);
    /* EREADONLY comes only from a read transaction, at the first write of
     * the first vector, before the cache changes: the handle stays usable */
    return finish_write(f, rc);
}

int strata_fractal_add(strata_fractal *f, uint64_t id, const float *v, size_t dim, uint64_t ts)
{
    return strata_fractal_add_batch(f, 1, &id, v, dim, &ts);
}

int strata_fractal_delete(strata_fractal *f, uint64_t id)
{
    int rc = handle_ok(f);
    if (rc != STRATA_OK) return rc;
    rc = frac_delete_one(f, id, 1);   /* EREADONLY: before the cache changes */
    return finish_write(f, rc);
}

int strata_fractal_train(strata_fractal *f, size_t max_sample)
{
    int rc = handle_ok(f);
    if (rc != STRATA_OK) return rc;
    rc = frac_train(f, max_sample);
    /* EREADONLY after the new codebooks replaced the old ones in the cache */
    if (rc == STRATA_EREADONLY) rc = STRATA_EBADTXN, f->poisoned = 1;
    return finish_write(f, rc);
}

int strata_fractal_get(strata_fractal *f, uint64_t id, float *v, size_t dim, uint64_t *ts)
{
    int rc = handle_ok(f);
    if (rc != STRATA_OK) return rc;
    if (v && (dim != f->cfg.dim || !(f->cfg.flags & CFG_F_RAW))) return STRATA_EINVAL;
    uint32_t leaf;
    uint8_t where;
    uint64_t t;
    if ((rc = frac_assign_lookup(f, id, &leaf, &where, &t)) != STRATA_OK) return rc;
    if (v && (rc = frac_raw_get(f, id, v)) != STRATA_OK) return rc;
    if (ts) *ts = t;
    return STRATA_OK;
}

int strata_fractal_search(strata_fractal *f, const float *query, size_t dim, size_t k,
                          const strata_fractal_params *params, strata_hit *out, size_t *n_out)
{
    static const strata_fractal_params defaults = {0};
    int rc = handle_ok(f);
    if (rc != STRATA_OK) return rc;
    const strata_fractal_params *p = params ? params : &defaults;
    if (!query || !out || !n_out || k == 0 || dim != f->cfg.dim) return STRATA_EINVAL;
    if (f->cfg.cb_gen == 0) return STRATA_EINVAL;   /* no codebooks yet: train first */
    if (p->rerank && !(f->cfg.flags & CFG_F_RAW)) return STRATA_EINVAL;
    if ((p->flags & ~STRATA_FRACTAL_WINDOW) ||
        ((p->flags & STRATA_FRACTAL_WINDOW) && p->ts_min > p->ts_max))
        return STRATA_EINVAL;
    if (vec_validate(query, dim) != STRATA_OK) return STRATA_EINVAL;
    return frac_search(f, query, k, p, out, n_out);
}

int strata_fractal_info_get(strata_fractal *f, strata_fractal_info *out)
{
    int rc = handle_ok(f);
    if (rc != STRATA_OK || !out) return rc ? rc : STRATA_EINVAL;
    memset(out, 0, sizeof *out);
    const frac_config *c = &f->cfg;
    out->config = (strata_fractal_config){
        .dim = c->dim, .metric = (strata_metric)c->metric, .pq_m = c->pq_m,
        .max_leaf = c->max_leaf, .min_leaf = c->min_leaf, .max_fanout = c->max_fanout,
        .max_depth = c->max_depth, .buffer_cap = c->buffer_cap, .train_size = c->train_size,
        .train_iters = c->train_iters, .flags = c->flags, .seed = c->seed,
        .retrain_growth = c->retrain_growth };
    out->n_vectors = c->n_vectors;
    out->codebook_gen = c->cb_gen;
    out->smallest_leaf = UINT64_MAX;
    for (uint32_t i = 0; i < f->n_slots; i++) {
        const frac_node *n = frac_node_at(f, i);
        if (!n) continue;
        if (!n->leaf) { out->n_internal++; continue; }
        out->n_leaves++;
        out->n_buffered += n->n_buf;
        if (n->pop > out->largest_leaf) out->largest_leaf = n->pop;
        if (n->pop < out->smallest_leaf) out->smallest_leaf = n->pop;
    }
    const frac_node *r = frac_node_at(f, c->root);
    out->depth = r ? r->level + 1u : 0;
    return STRATA_OK;
}

int strata_fractal_check(strata_txn *txn, const char *name,
                         void (*report)(void *ctx, const char *msg), void *ctx)
{
    strata_fractal *f = NULL;
    int rc = strata_fractal_open(txn, name, &f);
    if (rc == STRATA_ECORRUPT && report) report(ctx, "the tree does not load (bad record, link, cycle or depth)");
    if (rc == STRATA_OK) rc = frac_check(f, report, ctx);
    strata_fractal_close(f);
    return rc;
}
