/* fractal/store.c - the tables of one fractal index and the node cache: open
 * the "__frac:NAME:*" tables, load every node (record, centroid, sums, edges)
 * and validate the tree's shape, allocate and delete nodes, keep the edges
 * table and the cached child lists in step, and write dirty nodes back.
 * Invariants: (1) a loaded tree is a tree: every live node is reached from the
 * root exactly once along edges that agree with the parent fields, levels fall
 * by one per edge and end at 0 on leaves, the depth is at most max_depth; any
 * other shape is STRATA_ECORRUPT, so no walk of the cache can loop;
 * (2) edges are written immediately; node records, centroids and sums at
 * frac_flush(), which every mutating public call runs before it returns.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "db.h"
#include "fractal_int.h"

static const char *const suffix[FT_COUNT] = {
    [FT_CONFIG] = "config", [FT_NODES] = "nodes", [FT_CENT] = "cent", [FT_SUMS] = "sums",
    [FT_EDGES] = "edges",   [FT_BUF] = "buf",     [FT_POST] = "post", [FT_ASSIGN] = "assign",
    [FT_RAW] = "raw",       [FT_CB] = "codebooks",
};

static strata_slice sl(const void *p, size_t n) { return (strata_slice){p, n}; }

void frac_table_name(char *out, size_t cap, const char *index, int which)
{
    snprintf(out, cap, "__frac:%s:%s", index, suffix[which]);
}

int frac_tables_open(strata_fractal *f, int create)
{
    char name[FRAC_NAME_MAX + 32];
    for (int i = 0; i < FT_COUNT; i++) {
        strata_table_spec spec = { .key_type = (i == FT_EDGES || i == FT_BUF) ? STRATA_KEY_BYTES
                                                                              : STRATA_KEY_U64 };
        frac_table_name(name, sizeof name, f->name, i);
        int rc = db_internal_table_open(f->txn, name, &spec, create ? STRATA_CREATE : 0u,
                                        &f->t[i]);
        if (rc != STRATA_OK) return rc;
    }
    return STRATA_OK;
}

int frac_config_save(strata_fractal *f)
{
    uint8_t k[8], v[CFG_SIZE];
    frac_le64_put(k, 0);
    frac_config_put(v, &f->cfg);
    return strata_put(f->t[FT_CONFIG], sl(k, 8), sl(v, CFG_SIZE));
}

static frac_node *node_alloc(uint32_t dim)
{
    frac_node *n = calloc(1, sizeof *n);
    if (!n) return NULL;
    n->sum = calloc(dim, sizeof *n->sum);
    n->cent = calloc(dim, sizeof *n->cent);
    if (!n->sum || !n->cent) { free(n->sum); free(n->cent); free(n); return NULL; }
    return n;
}

static void node_free(frac_node *n)
{
    if (!n) return;
    free(n->sum); free(n->cent); free(n->child); free(n);
}

static int slots_reserve(strata_fractal *f, uint32_t need)
{
    if (need <= f->n_slots) return STRATA_OK;
    uint32_t cap = f->n_slots ? f->n_slots : 16;
    while (cap < need) cap *= 2;
    frac_node **p = realloc(f->nodes, (size_t)cap * sizeof *p);
    if (!p) return STRATA_ENOMEM;
    memset(p + f->n_slots, 0, (size_t)(cap - f->n_slots) * sizeof *p);
    f->nodes = p;
    f->n_slots = cap;
    return STRATA_OK;
}

void frac_cache_free(strata_fractal *f)
{
    for (uint32_t i = 0; i < f->n_slots; i++) node_free(f->nodes[i]);
    free(f->nodes);
    f->nodes = NULL;
    f->n_slots = 0;
    fpq_free(&f->pq);
}

int frac_child_append(frac_node *p, uint32_t id)
{
    if (p->n_child == p->cap_child) {
        uint32_t cap = p->cap_child ? p->cap_child * 2 : 8;
        uint32_t *c = realloc(p->child, (size_t)cap * sizeof *c);
        if (!c) return STRATA_ENOMEM;
        p->child = c;
        p->cap_child = cap;
    }
    p->child[p->n_child++] = id;
    return STRATA_OK;
}

void frac_child_remove(frac_node *p, uint32_t id)
{
    for (uint32_t i = 0; i < p->n_child; i++)
        if (p->child[i] == id) {
            memmove(p->child + i, p->child + i + 1, (size_t)(p->n_child - i - 1) * sizeof *p->child);
            p->n_child--;
            return;
        }
}

/* Read one node's record, centroid and sums. */
static int load_one(strata_fractal *f, uint32_t id, strata_slice rec)
{
    uint32_t dim = f->cfg.dim;
    uint8_t k[8];
    strata_slice v;
    if (f->nodes[id]) return FRAC_CORRUPT();   /* duplicate key cannot happen; be safe */
    frac_node *n = node_alloc(dim);
    if (!n) return STRATA_ENOMEM;
    f->nodes[id] = n;
    int rc = frac_node_get(rec.data, rec.len, n);
    if (rc != STRATA_OK) return rc;
    n->id = id;
    n->live = 1;
    uint32_t rec_children = n->n_child;
    n->n_child = 0;   /* rebuilt from the edges table, then compared */
    n->cap_child = rec_children;   /* remembered for the comparison in check_shape */
    frac_le64_put(k, id);
    if ((rc = strata_get(f->t[FT_CENT], sl(k, 8), &v)) != STRATA_OK)
        return rc == STRATA_NOTFOUND ? FRAC_CORRUPT() : rc;
    if (v.len != (size_t)4 * dim) return FRAC_CORRUPT();
    vec_f32_get(n->cent, v.data, dim);
    if ((rc = strata_get(f->t[FT_SUMS], sl(k, 8), &v)) != STRATA_OK)
        return rc == STRATA_NOTFOUND ? FRAC_CORRUPT() : rc;
    if (v.len != (size_t)8 * (dim + 2)) return FRAC_CORRUPT();
    frac_f64_get(n->sum, v.data, dim);
    frac_f64_get(&n->sq, (const uint8_t *)v.data + (size_t)8 * dim, 1);
    frac_f64_get(&n->sq_lo, (const uint8_t *)v.data + (size_t)8 * (dim + 1), 1);
    frac_node_spread(f, n);
    return STRATA_OK;
}

static int load_records(strata_fractal *f)
{
    strata_cursor *c = NULL;
    strata_slice k, v;
    int rc = strata_cursor_open(f->t[FT_NODES], &c);
    if (rc != STRATA_OK) return rc;
    for (rc = strata_cursor_first(c); rc == STRATA_OK; rc = strata_cursor_next(c)) {
        if ((rc = strata_cursor_get(c, &k, &v)) != STRATA_OK) break;
        uint64_t id = frac_le64_get(k.data);
        if (k.len != 8 || id >= f->cfg.next_node) { rc = FRAC_CORRUPT(); break; }
        /* the cache holds copies: v is only valid until the next read */
        uint8_t rec[NODE_SIZE];
        if (v.len != NODE_SIZE) { rc = FRAC_CORRUPT(); break; }
        memcpy(rec, v.data, NODE_SIZE);
        if ((rc = load_one(f, (uint32_t)id, sl(rec, NODE_SIZE))) != STRATA_OK) break;
    }
    strata_cursor_close(c);
    return rc == STRATA_NOTFOUND ? STRATA_OK : rc;
}

static int load_edges(strata_fractal *f)
{
    strata_cursor *c = NULL;
    strata_slice k, v;
    int rc = strata_cursor_open(f->t[FT_EDGES], &c);
    if (rc != STRATA_OK) return rc;
    for (rc = strata_cursor_first(c); rc == STRATA_OK; rc = strata_cursor_next(c)) {
        if ((rc = strata_cursor_get(c, &k, &v)) != STRATA_OK) break;
        if (k.len != EDGE_KEY_LEN || v.len != 0) { rc = FRAC_CORRUPT(); break; }
        frac_node *p = frac_node_at(f, frac_be32_get(k.data));
        frac_node *ch = frac_node_at(f, frac_be32_get((const uint8_t *)k.data + 4));
        /* a dangling edge, an edge out of a leaf, or one the child disowns */
        if (!p || !ch || p->leaf || ch->parent != p->id || ch->level + 1 != p->level ||
            p->n_child >= p->cap_child) { rc = FRAC_CORRUPT(); break; }
        p->child[p->n_child++] = ch->id;
    }
    strata_cursor_close(c);
    return rc == STRATA_NOTFOUND ? STRATA_OK : rc;
}

/* Walk from the root; every live node must be reached once, within max_depth. */
static int check_shape(strata_fractal *f)
{
    frac_node *root = frac_node_at(f, f->cfg.root);
    if (!root || root->parent != FRAC_NONE || root->level + 1u > f->cfg.max_depth)
        return FRAC_CORRUPT();
    uint32_t n_live = 0;
    for (uint32_t i = 0; i < f->n_slots; i++) {
        frac_node *n = f->nodes[i];
        if (!n || !n->live) continue;
        n_live++;
        if (n->n_child != n->cap_child) return FRAC_CORRUPT();   /* record vs edges */
        if (!n->leaf && n->n_child == 0) return FRAC_CORRUPT();
        if (n != root && n->parent == FRAC_NONE) return FRAC_CORRUPT();
    }
    uint32_t *stack = malloc((size_t)n_live * sizeof *stack);
    uint8_t *seen = calloc(f->n_slots, 1);
    int rc = STRATA_ENOMEM;
    if (!stack || !seen) goto out;
    uint32_t sp = 0, n_seen = 0;
    stack[sp++] = root->id;
    seen[root->id] = 1;
    rc = STRATA_OK;
    while (sp) {
        frac_node *n = f->nodes[stack[--sp]];
        n_seen++;
        for (uint32_t i = 0; i < n->n_child; i++) {
            uint32_t c = n->child[i];
            if (seen[c] || sp >= n_live) { rc = FRAC_CORRUPT(); goto out; }
            seen[c] = 1;
            stack[sp++] = c;
        }
    }
    if (n_seen != n_live) rc = FRAC_CORRUPT();
out:
    free(stack); free(seen);
    return rc;
}

int frac_nodes_load(strata_fractal *f)
{
    int rc = slots_reserve(f, f->cfg.next_node);
    if (rc != STRATA_OK) return rc;
    if ((rc = load_records(f)) != STRATA_OK) return rc;
    for (uint32_t i = 0; i < f->n_slots; i++) {   /* child arrays sized by the record */
        frac_node *n = f->nodes[i];
        if (!n || !n->cap_child) continue;
        if (n->cap_child > FRAC_MAX_NODES) return FRAC_CORRUPT();
        if (!(n->child = malloc((size_t)n->cap_child * sizeof *n->child))) return STRATA_ENOMEM;
    }
    if ((rc = load_edges(f)) != STRATA_OK) return rc;
    return check_shape(f);
}

int frac_cb_load(strata_fractal *f)
{
    if (f->cfg.cb_gen == 0) return STRATA_OK;
    uint8_t k[8];
    strata_slice v;
    frac_le64_put(k, 0);
    int rc = strata_get(f->t[FT_CB], sl(k, 8), &v);
    if (rc != STRATA_OK) return rc == STRATA_NOTFOUND ? FRAC_CORRUPT() : rc;
    uint32_t dim = f->cfg.dim, m = f->cfg.pq_m;
    size_t n_f = (size_t)FPQ_KSUB * dim;
    const uint8_t *p = v.data;
    if (v.len != CB_HDR + 4 * n_f || frac_le32_get(p) != dim || frac_le32_get(p + 4) != m ||
        frac_le32_get(p + 8) != FPQ_KSUB || frac_le32_get(p + 12) != f->cfg.cb_gen)
        return FRAC_CORRUPT();
    float *cb = malloc(n_f * sizeof *cb);
    if (!cb) return STRATA_ENOMEM;
    vec_f32_get(cb, p + CB_HDR, n_f);
    for (size_t i = 0; i < n_f; i++)
        if (!(cb[i] - cb[i] == 0)) { free(cb); return FRAC_CORRUPT(); }   /* NaN or Inf */
    return fpq_adopt(&f->pq, cb, dim, m);
}

int frac_cb_save(strata_fractal *f)
{
    uint32_t dim = f->cfg.dim;
    size_t n_f = (size_t)FPQ_KSUB * dim, len = CB_HDR + 4 * n_f;
    uint8_t k[8], *v = malloc(len);
    if (!v) return STRATA_ENOMEM;
    frac_le32_put(v, dim);
    frac_le32_put(v + 4, f->cfg.pq_m);
    frac_le32_put(v + 8, FPQ_KSUB);
    frac_le32_put(v + 12, f->cfg.cb_gen);
    vec_f32_put(v + CB_HDR, f->pq.cb, n_f);
    frac_le64_put(k, 0);
    int rc = strata_put(f->t[FT_CB], sl(k, 8), sl(v, len));
    free(v);
    return rc;
}

int frac_node_new(strata_fractal *f, int leaf, uint16_t level, frac_node **out)
{
    if (f->cfg.next_node >= FRAC_MAX_NODES) return STRATA_ENOSPC;
    uint32_t id = f->cfg.next_node;
    int rc = slots_reserve(f, id + 1);
    if (rc != STRATA_OK) return rc;
    frac_node *n = node_alloc(f->cfg.dim);
    if (!n) return STRATA_ENOMEM;
    n->id = id;
    n->live = 1;
    n->leaf = (uint8_t)(leaf != 0);
    n->level = level;
    n->parent = FRAC_NONE;
    n->ts_min = UINT64_MAX;
    n->dirty = 1;
    f->nodes[id] = n;
    f->cfg.next_node++;
    *out = n;
    return STRATA_OK;
}

int frac_node_delete(strata_fractal *f, frac_node *n)
{
    uint8_t k[8];
    frac_le64_put(k, n->id);
    int rc;
    for (int t = FT_NODES; t <= FT_SUMS; t++) {   /* nodes, cent, sums */
        rc = strata_del(f->t[t], sl(k, 8));
        if (rc != STRATA_OK && rc != STRATA_NOTFOUND) return rc;   /* NOTFOUND: never flushed */
    }
    rc = strata_del(f->t[FT_POST], sl(k, 8));
    if (rc != STRATA_OK && rc != STRATA_NOTFOUND) return rc;
    f->nodes[n->id] = NULL;
    node_free(n);
    return STRATA_OK;
}

int frac_edge_add(strata_fractal *f, frac_node *parent, frac_node *child)
{
    uint8_t k[EDGE_KEY_LEN];
    int rc = frac_child_append(parent, child->id);
    if (rc != STRATA_OK) return rc;
    child->parent = parent->id;
    parent->dirty = child->dirty = 1;
    frac_edge_key(k, parent->id, child->id);
    return strata_put(f->t[FT_EDGES], sl(k, EDGE_KEY_LEN), sl("", 0));
}

int frac_edge_del(strata_fractal *f, frac_node *parent, frac_node *child)
{
    uint8_t k[EDGE_KEY_LEN];
    frac_child_remove(parent, child->id);
    child->parent = FRAC_NONE;
    parent->dirty = child->dirty = 1;
    frac_edge_key(k, parent->id, child->id);
    return strata_del(f->t[FT_EDGES], sl(k, EDGE_KEY_LEN));
}

static int node_save(strata_fractal *f, frac_node *n)
{
    uint32_t dim = f->cfg.dim;
    uint8_t k[8], rec[NODE_SIZE];
    uint8_t *buf = malloc((size_t)8 * (dim + 2));
    if (!buf) return STRATA_ENOMEM;
    frac_node_cent(f, n);
    frac_le64_put(k, n->id);
    frac_node_put(rec, n);
    int rc = strata_put(f->t[FT_NODES], sl(k, 8), sl(rec, NODE_SIZE));
    if (rc == STRATA_OK) {
        vec_f32_put(buf, n->cent, dim);
        rc = strata_put(f->t[FT_CENT], sl(k, 8), sl(buf, (size_t)4 * dim));
    }
    if (rc == STRATA_OK) {
        frac_f64_put(buf, n->sum, dim);
        frac_f64_put(buf + (size_t)8 * dim, &n->sq, 1);
        frac_f64_put(buf + (size_t)8 * (dim + 1), &n->sq_lo, 1);
        rc = strata_put(f->t[FT_SUMS], sl(k, 8), sl(buf, (size_t)8 * (dim + 2)));
    }
    free(buf);
    if (rc == STRATA_OK) n->dirty = 0;
    return rc;
}

int frac_flush(strata_fractal *f)
{
    for (uint32_t i = 0; i < f->n_slots; i++) {
        frac_node *n = f->nodes[i];
        if (n && n->live && n->dirty) {
            int rc = node_save(f, n);
            if (rc != STRATA_OK) return rc;
        }
    }
    return frac_config_save(f);
}
