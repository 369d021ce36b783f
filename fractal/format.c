/* fractal/format.c - byte codecs of the fractal index's records: config,
 * node, edge and buffer keys, assignment rows, posting lists; the check word;
 * the corruption breakpoint. Normative layouts: docs/FRACTAL.md.
 * Invariants: (1) every *_get checks length, version, reserved fields and the
 * check word before it trusts a byte; (2) encoders write every byte (reserved
 * bytes are zero), so equal records encode to equal bytes.
 */
#include <string.h>

#include "fractal_int.h"

uint32_t frac_check32(const uint8_t *p, size_t len)
{
    uint32_t h = 0x811C9DC5u;   /* FNV-1a */
    for (size_t i = 0; i < len; i++) { h ^= p[i]; h *= 0x01000193u; }
    return h;
}

void frac_be32_put(uint8_t *p, uint32_t v)
{
    p[0] = (uint8_t)(v >> 24); p[1] = (uint8_t)(v >> 16); p[2] = (uint8_t)(v >> 8); p[3] = (uint8_t)v;
}
uint32_t frac_be32_get(const uint8_t *p)
{
    return (uint32_t)p[0] << 24 | (uint32_t)p[1] << 16 | (uint32_t)p[2] << 8 | p[3];
}
void frac_be64_put(uint8_t *p, uint64_t v)
{
    frac_be32_put(p, (uint32_t)(v >> 32)); frac_be32_put(p + 4, (uint32_t)v);
}
uint64_t frac_be64_get(const uint8_t *p)
{
    return (uint64_t)frac_be32_get(p) << 32 | frac_be32_get(p + 4);
}
void frac_le16_put(uint8_t *p, uint16_t v) { p[0] = (uint8_t)v; p[1] = (uint8_t)(v >> 8); }
uint16_t frac_le16_get(const uint8_t *p) { return (uint16_t)(p[0] | p[1] << 8); }
void frac_le32_put(uint8_t *p, uint32_t v)
{
    p[0] = (uint8_t)v; p[1] = (uint8_t)(v >> 8); p[2] = (uint8_t)(v >> 16); p[3] = (uint8_t)(v >> 24);
}
uint32_t frac_le32_get(const uint8_t *p)
{
    return (uint32_t)p[0] | (uint32_t)p[1] << 8 | (uint32_t)p[2] << 16 | (uint32_t)p[3] << 24;
}
void frac_le64_put(uint8_t *p, uint64_t v)
{
    frac_le32_put(p, (uint32_t)v); frac_le32_put(p + 4, (uint32_t)(v >> 32));
}
uint64_t frac_le64_get(const uint8_t *p)
{
    return (uint64_t)frac_le32_get(p) | (uint64_t)frac_le32_get(p + 4) << 32;
}
void frac_f64_put(uint8_t *p, const double *x, size_t n)
{
    for (size_t i = 0; i < n; i++) {
        uint64_t b;
        memcpy(&b, &x[i], 8);
        frac_le64_put(p + 8 * i, b);
    }
}
void frac_f64_get(double *x, const uint8_t *p, size_t n)
{
    for (size_t i = 0; i < n; i++) {
        uint64_t b = frac_le64_get(p + 8 * i);
        memcpy(&x[i], &b, 8);
    }
}

int frac_corrupt_at(const char *file, int line)
{
    (void)file; (void)line;   /* a breakpoint spot; the library never prints */
    return STRATA_ECORRUPT;
}

void frac_f32_get(float *x, const uint8_t *p, size_t n)
{
#if defined(__BYTE_ORDER__) && __BYTE_ORDER__ == __ORDER_LITTLE_ENDIAN__
    memcpy(x, p, n * sizeof *x);   /* the stored bytes are the host's floats */
#else
    vec_f32_get(x, p, n);
#endif
}

void frac_config_put(uint8_t out[CFG_SIZE], const frac_config *c)
{
    memset(out, 0, CFG_SIZE);
    frac_le32_put(out + CFG_OFF_MAGIC, FRAC_MAGIC);
    frac_le16_put(out + CFG_OFF_VERSION, FRAC_VERSION);
    frac_le16_put(out + CFG_OFF_FLAGS, (uint16_t)c->flags);
    frac_le32_put(out + CFG_OFF_DIM, c->dim);
    frac_le32_put(out + CFG_OFF_METRIC, c->metric);
    frac_le32_put(out + CFG_OFF_PQ_M, c->pq_m);
    frac_le32_put(out + CFG_OFF_MAX_LEAF, c->max_leaf);
    frac_le32_put(out + CFG_OFF_MIN_LEAF, c->min_leaf);
    frac_le32_put(out + CFG_OFF_FANOUT, c->max_fanout);
    frac_le32_put(out + CFG_OFF_DEPTH, c->max_depth);
    frac_le32_put(out + CFG_OFF_BUFCAP, c->buffer_cap);
    frac_le32_put(out + CFG_OFF_TRAIN_SIZE, c->train_size);
    frac_le32_put(out + CFG_OFF_ITERS, c->train_iters);
    frac_le32_put(out + CFG_OFF_ROOT, c->root);
    frac_le32_put(out + CFG_OFF_NEXT_NODE, c->next_node);
    frac_le64_put(out + CFG_OFF_NVEC, c->n_vectors);
    frac_le64_put(out + CFG_OFF_SEED, c->seed);
    frac_le32_put(out + CFG_OFF_CB_GEN, c->cb_gen);
    frac_le32_put(out + CFG_OFF_RETRAIN, c->retrain_growth);
    frac_le64_put(out + CFG_OFF_NTRAINED, c->n_trained);
    frac_le32_put(out + CFG_OFF_CHECK, frac_check32(out, CFG_OFF_CHECK));
}

int frac_config_valid(const frac_config *c)
{
    if (c->dim == 0 || c->dim > STRATA_VEC_MAX_DIM) return 0;
    if (c->metric != STRATA_METRIC_L2 && c->metric != STRATA_METRIC_IP &&
        c->metric != STRATA_METRIC_COSINE) return 0;
    if (c->pq_m == 0 || c->pq_m > c->dim || c->dim % c->pq_m) return 0;
    if (c->max_leaf < 4 || c->max_leaf > (1u << 20)) return 0;
    if (c->min_leaf >= c->max_leaf / 2) return 0;
    if (c->max_fanout < 2 || c->max_fanout > 4096) return 0;
    if (c->max_depth < 2 || c->max_depth > FRAC_DEPTH_LIMIT) return 0;
    if (c->buffer_cap < 1 || c->buffer_cap > c->max_leaf) return 0;
    if (c->train_iters < 1 || c->train_iters > 1000) return 0;
    if (c->retrain_growth > FRAC_RETRAIN_MAX) return 0;
    if (c->flags & ~(uint32_t)CFG_F_KNOWN) return 0;
    return 1;
}

int frac_config_get(const uint8_t *p, size_t len, frac_config *c)
{
    if (len < 8 || frac_le32_get(p + CFG_OFF_MAGIC) != FRAC_MAGIC) return FRAC_CORRUPT();
    /* another version (3: codes vector-major; 2: an 80-byte record without
     * the retrain policy) */
    if (frac_le16_get(p + CFG_OFF_VERSION) != FRAC_VERSION) return STRATA_EVERSION;
    if (len != CFG_SIZE) return FRAC_CORRUPT();
    if (frac_le32_get(p + CFG_OFF_CHECK) != frac_check32(p, CFG_OFF_CHECK)) return FRAC_CORRUPT();
    c->flags = frac_le16_get(p + CFG_OFF_FLAGS);
    c->dim = frac_le32_get(p + CFG_OFF_DIM);
    c->metric = frac_le32_get(p + CFG_OFF_METRIC);
    c->pq_m = frac_le32_get(p + CFG_OFF_PQ_M);
    c->max_leaf = frac_le32_get(p + CFG_OFF_MAX_LEAF);
    c->min_leaf = frac_le32_get(p + CFG_OFF_MIN_LEAF);
    c->max_fanout = frac_le32_get(p + CFG_OFF_FANOUT);
    c->max_depth = frac_le32_get(p + CFG_OFF_DEPTH);
    c->buffer_cap = frac_le32_get(p + CFG_OFF_BUFCAP);
    c->train_size = frac_le32_get(p + CFG_OFF_TRAIN_SIZE);
    c->train_iters = frac_le32_get(p + CFG_OFF_ITERS);
    c->root = frac_le32_get(p + CFG_OFF_ROOT);
    c->next_node = frac_le32_get(p + CFG_OFF_NEXT_NODE);
    c->n_vectors = frac_le64_get(p + CFG_OFF_NVEC);
    c->seed = frac_le64_get(p + CFG_OFF_SEED);
    c->cb_gen = frac_le32_get(p + CFG_OFF_CB_GEN);
    c->retrain_growth = frac_le32_get(p + CFG_OFF_RETRAIN);
    c->n_trained = frac_le64_get(p + CFG_OFF_NTRAINED);
    if (!frac_config_valid(c) || c->next_node > FRAC_MAX_NODES || c->root >= c->next_node)
        return FRAC_CORRUPT();
    return STRATA_OK;
}

void frac_node_put(uint8_t out[NODE_SIZE], const frac_node *n)
{
    memset(out, 0, NODE_SIZE);
    out[NODE_OFF_VERSION] = FRAC_VERSION;
    out[NODE_OFF_KIND] = n->leaf ? NODE_LEAF : NODE_INTERNAL;
    frac_le16_put(out + NODE_OFF_LEVEL, n->level);
    frac_le32_put(out + NODE_OFF_PARENT, n->parent);
    frac_le32_put(out + NODE_OFF_NCHILD, n->n_child);
    frac_le32_put(out + NODE_OFF_NBUF, n->n_buf);
    frac_le32_put(out + NODE_OFF_NCODES, n->n_codes);
    frac_le64_put(out + NODE_OFF_POP, n->pop);
    frac_le64_put(out + NODE_OFF_TSMIN, n->ts_min);
    frac_le64_put(out + NODE_OFF_TSMAX, n->ts_max);
    frac_le32_put(out + NODE_OFF_CHECK, frac_check32(out, NODE_OFF_CHECK));
}

int frac_node_get(const uint8_t *p, size_t len, frac_node *n)
{
    if (len != NODE_SIZE || p[NODE_OFF_VERSION] != FRAC_VERSION) return FRAC_CORRUPT();
    if (frac_le32_get(p + NODE_OFF_CHECK) != frac_check32(p, NODE_OFF_CHECK)) return FRAC_CORRUPT();
    if (p[NODE_OFF_KIND] > NODE_INTERNAL || frac_le32_get(p + NODE_OFF_RESERVED) != 0)
        return FRAC_CORRUPT();
    n->leaf = p[NODE_OFF_KIND] == NODE_LEAF;
    n->level = frac_le16_get(p + NODE_OFF_LEVEL);
    n->parent = frac_le32_get(p + NODE_OFF_PARENT);
    n->n_child = frac_le32_get(p + NODE_OFF_NCHILD);
    n->n_buf = frac_le32_get(p + NODE_OFF_NBUF);
    n->n_codes = frac_le32_get(p + NODE_OFF_NCODES);
    n->pop = frac_le64_get(p + NODE_OFF_POP);
    n->ts_min = frac_le64_get(p + NODE_OFF_TSMIN);
    n->ts_max = frac_le64_get(p + NODE_OFF_TSMAX);
    if (n->leaf != (n->level == 0)) return FRAC_CORRUPT();
    if (n->leaf && (n->n_child || n->pop != (uint64_t)n->n_buf + n->n_codes)) return FRAC_CORRUPT();
    if (!n->leaf && (n->n_buf || n->n_codes)) return FRAC_CORRUPT();
    return STRATA_OK;
}

void frac_edge_key(uint8_t key[EDGE_KEY_LEN], uint32_t parent, uint32_t child)
{
    frac_be32_put(key, parent);
    frac_be32_put(key + 4, child);
}

void frac_buf_key(uint8_t key[BUF_KEY_LEN], uint32_t leaf, uint64_t id)
{
    frac_be32_put(key, leaf);
    frac_be64_put(key + 4, id);
}

void frac_assign_put(uint8_t out[ASSIGN_LEN], uint32_t leaf, uint8_t where, uint64_t ts)
{
    memset(out, 0, ASSIGN_LEN);
    frac_le32_put(out, leaf);
    out[4] = where;
    frac_le64_put(out + 8, ts);
}

int frac_assign_get(const uint8_t *p, size_t len, uint32_t *leaf, uint8_t *where, uint64_t *ts)
{
    if (len != ASSIGN_LEN || p[4] > WHERE_POST || p[5] || p[6] || p[7]) return FRAC_CORRUPT();
    *leaf = frac_le32_get(p);
    *where = p[4];
    *ts = frac_le64_get(p + 8);
    return STRATA_OK;
}

size_t frac_post_size(uint32_t n, uint32_t m, uint32_t dim, int raw)
{
    return POST_HDR + (size_t)4 * dim + (size_t)n * (20 + (raw ? (size_t)4 * dim : 0)) +
           (size_t)frac_post_blocks(n) * m * FRAC_BLK;
}

void frac_codes_block(const uint8_t *vm, uint32_t n, uint32_t m, uint8_t *blk)
{
    memset(blk, 0, (size_t)frac_post_blocks(n) * m * FRAC_BLK);
    for (uint32_t i = 0; i < n; i++) {
        uint8_t *b = blk + (size_t)(i / FRAC_BLK) * m * FRAC_BLK + i % FRAC_BLK;
        for (uint32_t j = 0; j < m; j++) b[(size_t)j * FRAC_BLK] = vm[(size_t)i * m + j];
    }
}

void frac_code_get(const uint8_t *blk, uint32_t m, uint32_t i, uint8_t *out)
{
    const uint8_t *b = blk + (size_t)(i / FRAC_BLK) * m * FRAC_BLK + i % FRAC_BLK;
    for (uint32_t j = 0; j < m; j++) out[j] = b[(size_t)j * FRAC_BLK];
}

int frac_post_view(const uint8_t *p, size_t len, uint32_t m, uint32_t dim, int raw,
                   frac_post *out)
{
    if (len < POST_HDR) return FRAC_CORRUPT();
    uint32_t n = frac_le32_get(p), pm = frac_le32_get(p + 4);
    if (pm != m || n == 0 || n > (1u << 24) || len != frac_post_size(n, m, dim, raw))
        return FRAC_CORRUPT();
    out->n = n;
    out->m = m;
    out->anchor = p + POST_HDR;
    out->ids = out->anchor + (size_t)4 * dim;
    out->ts = out->ids + (size_t)8 * n;
    out->terms = out->ts + (size_t)8 * n;
    out->codes = out->terms + (size_t)4 * n;
    out->raw = raw ? out->codes + (size_t)frac_post_blocks(n) * m * FRAC_BLK : NULL;
    return STRATA_OK;
}
