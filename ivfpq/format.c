/* ivfpq/format.c - byte codecs of the IVF-PQ tables (normative: docs/IVFPQ.md):
 * the config record, float rows with a check word (centroids, codebooks), list
 * keys and posting blocks (ids, attributes, L2 terms, codes, raw vectors). Decoders treat the bytes as untrusted.
 * Invariants: (1) every multi-byte number is fixed width; list keys are big
 * endian (so memcmp order is (cluster, id) order), everything else little
 * endian; (2) a decoder reads only inside [p, p + len).
 */
#include <math.h>
#include <string.h>

#include "ivfpq_int.h"

void ivf_be32_put(uint8_t *p, uint32_t v)
{
    p[0] = (uint8_t)(v >> 24); p[1] = (uint8_t)(v >> 16); p[2] = (uint8_t)(v >> 8);
    p[3] = (uint8_t)v;
}

uint32_t ivf_be32_get(const uint8_t *p)
{
    return (uint32_t)p[0] << 24 | (uint32_t)p[1] << 16 | (uint32_t)p[2] << 8 | (uint32_t)p[3];
}

void ivf_be64_put(uint8_t *p, uint64_t v)
{
    ivf_be32_put(p, (uint32_t)(v >> 32));
    ivf_be32_put(p + 4, (uint32_t)v);
}

uint64_t ivf_be64_get(const uint8_t *p)
{
    return (uint64_t)ivf_be32_get(p) << 32 | ivf_be32_get(p + 4);
}

uint32_t ivf_le32_get(const uint8_t *p)
{
    return (uint32_t)p[0] | (uint32_t)p[1] << 8 | (uint32_t)p[2] << 16 | (uint32_t)p[3] << 24;
}

void ivf_le32_put(uint8_t *p, uint32_t v)
{
    p[0] = (uint8_t)v; p[1] = (uint8_t)(v >> 8); p[2] = (uint8_t)(v >> 16);
    p[3] = (uint8_t)(v >> 24);
}

uint64_t ivf_le64_get(const uint8_t *p)
{
    return (uint64_t)ivf_le32_get(p) | (uint64_t)ivf_le32_get(p + 4) << 32;
}

void ivf_le64_put(uint8_t *p, uint64_t v)
{
    ivf_le32_put(p, (uint32_t)v);
    ivf_le32_put(p + 4, (uint32_t)(v >> 32));
}

/* FNV-1a over 32-bit little-endian words (a trailing partial word is zero
 * padded), seeded with the length: cheap and catches any single flipped bit. */
uint32_t ivf_check32(const uint8_t *p, size_t len)
{
    uint32_t h = 2166136261u ^ (uint32_t)len;
    size_t i = 0;
    for (; i + 4 <= len; i += 4) h = (h ^ ivf_le32_get(p + i)) * 16777619u;
    if (i < len) {
        uint8_t t[4] = {0};
        memcpy(t, p + i, len - i);
        h = (h ^ ivf_le32_get(t)) * 16777619u;
    }
    return h;
}

int ivf_config_check(const ivf_config *c)
{
    if (c->dim == 0 || c->dim > STRATA_VEC_MAX_DIM) return STRATA_EINVAL;
    if (c->metric != STRATA_METRIC_L2 && c->metric != STRATA_METRIC_IP &&
        c->metric != STRATA_METRIC_COSINE) return STRATA_EINVAL;
    if (c->nlist == 0 || c->nlist > (1u << 24)) return STRATA_EINVAL;
    if (c->m == 0 || c->m > c->dim || c->dim % c->m != 0 || c->m > 1024) return STRATA_EINVAL;
    if (c->nprobe == 0 || c->nprobe > c->nlist) return STRATA_EINVAL;
    if (c->block_cap == 0 || c->block_cap > 65535) return STRATA_EINVAL;
    if (c->flags & ~(uint32_t)CFG_F_KNOWN) return STRATA_EINVAL;
    if (c->state != IVF_STATE_EMPTY && c->state != IVF_STATE_TRAINED) return STRATA_EINVAL;
    if (c->iters == 0 || c->iters > 1000) return STRATA_EINVAL;
    ivf_blayout l = ivf_layout(c);
    if (ivf_block_size(&l, c->block_cap) > IVF_BLOCK_MAX_BYTES) return STRATA_EINVAL;
    return STRATA_OK;
}

void ivf_config_put(uint8_t out[CFG_SIZE], const ivf_config *c)
{
    memset(out, 0, CFG_SIZE);
    ivf_le32_put(out + CFG_OFF_MAGIC, IVF_MAGIC);
    out[CFG_OFF_VERSION] = (uint8_t)IVF_VERSION;
    out[CFG_OFF_FLAGS] = (uint8_t)c->flags;
    ivf_le32_put(out + CFG_OFF_DIM, c->dim);
    ivf_le32_put(out + CFG_OFF_METRIC, c->metric);
    ivf_le32_put(out + CFG_OFF_NLIST, c->nlist);
    ivf_le32_put(out + CFG_OFF_M, c->m);
    ivf_le32_put(out + CFG_OFF_NPROBE, c->nprobe);
    ivf_le32_put(out + CFG_OFF_BLOCKCAP, c->block_cap);
    ivf_le32_put(out + CFG_OFF_STATE, c->state);
    ivf_le32_put(out + CFG_OFF_ITERS, c->iters);
    ivf_le64_put(out + CFG_OFF_NVEC, c->n_vectors);
    ivf_le64_put(out + CFG_OFF_SEED, c->seed);
    ivf_le32_put(out + CFG_OFF_CHECK, ivf_check32(out, CFG_OFF_CHECK));
}

int ivf_config_get(const uint8_t *p, size_t len, ivf_config *c)
{
    if (!p || len != CFG_SIZE) return STRATA_ECORRUPT;
    if (ivf_le32_get(p + CFG_OFF_MAGIC) != IVF_MAGIC) return STRATA_ECORRUPT;
    if (ivf_le32_get(p + CFG_OFF_CHECK) != ivf_check32(p, CFG_OFF_CHECK)) return STRATA_ECORRUPT;
    if (p[CFG_OFF_VERSION] != IVF_VERSION || p[CFG_OFF_VERSION + 1] != 0) return STRATA_ECORRUPT;
    if (p[CFG_OFF_FLAGS + 1] != 0 || ivf_le32_get(p + CFG_OFF_RESERVED) != 0)
        return STRATA_ECORRUPT;
    ivf_config t = {
        .flags = p[CFG_OFF_FLAGS], .dim = ivf_le32_get(p + CFG_OFF_DIM),
        .metric = ivf_le32_get(p + CFG_OFF_METRIC), .nlist = ivf_le32_get(p + CFG_OFF_NLIST),
        .m = ivf_le32_get(p + CFG_OFF_M), .nprobe = ivf_le32_get(p + CFG_OFF_NPROBE),
        .block_cap = ivf_le32_get(p + CFG_OFF_BLOCKCAP),
        .state = ivf_le32_get(p + CFG_OFF_STATE), .iters = ivf_le32_get(p + CFG_OFF_ITERS),
        .n_vectors = ivf_le64_get(p + CFG_OFF_NVEC), .seed = ivf_le64_get(p + CFG_OFF_SEED),
    };
    if (ivf_config_check(&t) != STRATA_OK) return STRATA_ECORRUPT;
    *c = t;
    return STRATA_OK;
}

size_t ivf_row_size(size_t n) { return 4 * n + 4; }

void ivf_row_put(uint8_t *out, const float *x, size_t n)
{
    vec_f32_put(out, x, n);
    ivf_le32_put(out + 4 * n, ivf_check32(out, 4 * n));
}

/* A row decodes only with the right length, check word and finite values. */
int ivf_row_get(const uint8_t *p, size_t len, float *x, size_t n)
{
    if (!p || len != ivf_row_size(n)) return STRATA_ECORRUPT;
    if (ivf_le32_get(p + 4 * n) != ivf_check32(p, 4 * n)) return STRATA_ECORRUPT;
    vec_f32_get(x, p, n);
    for (size_t i = 0; i < n; i++)
        if (!isfinite(x[i])) return STRATA_ECORRUPT;
    return STRATA_OK;
}

void ivf_list_key(uint8_t key[LIST_KEY_LEN], uint32_t cluster, uint64_t id)
{
    ivf_be32_put(key, cluster);
    ivf_be64_put(key + 4, id);
}

ivf_blayout ivf_layout(const ivf_config *c)
{
    return (ivf_blayout){.m = c->m, .raw_dim = (c->flags & CFG_F_RAW) ? c->dim : 0,
                         .attr = (c->flags & CFG_F_ATTR) != 0,
                         .term = c->metric == STRATA_METRIC_L2};
}

/* ids, attributes and terms are multiples of 4 bytes, so only the codes
 * (m * n bytes) can leave the raw part unaligned: 0..3 zero pad bytes. */
size_t ivf_block_raw_off(const ivf_blayout *l, uint32_t n)
{
    size_t off = BLK_HDR + (size_t)n * (8 + (l->attr ? 8 : 0) + (l->term ? 4 : 0) + l->m);
    return l->raw_dim ? (off + 3) & ~(size_t)3 : off;
}

size_t ivf_block_size(const ivf_blayout *l, uint32_t n)
{
    return ivf_block_raw_off(l, n) + 4 * (size_t)n * l->raw_dim;
}

int ivf_block_view(const uint8_t *p, size_t len, const ivf_blayout *l, uint32_t cap,
                   uint32_t cluster, ivf_block *b)
{
    if (!p || len < BLK_HDR) return STRATA_ECORRUPT;
    uint32_t n = (uint32_t)p[BLK_OFF_N] | (uint32_t)p[BLK_OFF_N + 1] << 8;
    unsigned flags = (l->attr ? BLK_F_ATTR : 0) | (l->term ? BLK_F_TERM : 0) |
                     (l->raw_dim ? BLK_F_RAW : 0);
    if (p[BLK_OFF_VERSION] != IVF_VERSION || p[BLK_OFF_FLAGS] != flags) return STRATA_ECORRUPT;
    if (n == 0 || n > cap || len != ivf_block_size(l, n)) return STRATA_ECORRUPT;
    if (ivf_le32_get(p + BLK_OFF_CLUSTER) != cluster || ivf_le32_get(p + BLK_OFF_M) != l->m)
        return STRATA_ECORRUPT;
    if (ivf_le32_get(p + BLK_OFF_DIM) != l->raw_dim) return STRATA_ECORRUPT;
    b->n = n;
    b->cluster = cluster;
    b->raw_dim = l->raw_dim;
    b->ids = p + BLK_HDR;
    b->attrs = l->attr ? b->ids + 8 * (size_t)n : NULL;
    b->terms = l->term ? b->ids + (l->attr ? 16 : 8) * (size_t)n : NULL;
    b->codes = b->ids + (8 + (l->attr ? 8 : 0) + (l->term ? 4 : 0)) * (size_t)n;
    b->raw = NULL;
    if (l->raw_dim) {
        size_t ro = ivf_block_raw_off(l, n);
        for (size_t i = (size_t)(b->codes - p) + (size_t)l->m * n; i < ro; i++)
            if (p[i] != 0) return STRATA_ECORRUPT;              /* pad bytes */
        b->raw = p + ro;
    }
    return STRATA_OK;
}
