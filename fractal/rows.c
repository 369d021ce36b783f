/* fractal/rows.c - the per-vector rows of a fractal index: the working vector
 * rule, buffer rows (leaf, id) -> (ts, working vector), posting lists (one row
 * per leaf), assignment rows id -> (leaf, where, ts), raw vectors, and the
 * gathering of a leaf's members for a split, a merge or a check.
 * Invariants: (1) buffer rows and posting entries hold working vectors (the
 * cosine metric normalizes), raw rows hold the caller's vector unchanged;
 * (2) a posting list row exists iff the leaf has at least one entry.
 */
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "fractal_int.h"

static strata_slice sl(const void *p, size_t n) { return (strata_slice){p, n}; }

void frac_working(const strata_fractal *f, const float *x, float *w)
{
    uint32_t dim = f->cfg.dim;
    if (f->cfg.metric != STRATA_METRIC_COSINE) {
        if (w != x) memcpy(w, x, (size_t)dim * sizeof *w);
        return;
    }
    double s = 0;
    for (uint32_t i = 0; i < dim; i++) s += (double)x[i] * x[i];
    double inv = s > 0 ? 1.0 / sqrt(s) : 0.0;
    for (uint32_t i = 0; i < dim; i++) w[i] = (float)(x[i] * inv);
}

int frac_buf_put(strata_fractal *f, uint32_t leaf, uint64_t id, uint64_t ts, const float *w)
{
    uint8_t k[BUF_KEY_LEN];
    size_t len = 8 + (size_t)4 * f->cfg.dim;
    uint8_t *v = malloc(len);
    if (!v) return STRATA_ENOMEM;
    frac_buf_key(k, leaf, id);
    frac_le64_put(v, ts);
    vec_f32_put(v + 8, w, f->cfg.dim);
    int rc = strata_put(f->t[FT_BUF], sl(k, BUF_KEY_LEN), sl(v, len));
    free(v);
    return rc;
}

int frac_buf_get(strata_fractal *f, uint32_t leaf, uint64_t id, uint64_t *ts, float *w)
{
    uint8_t k[BUF_KEY_LEN];
    strata_slice v;
    frac_buf_key(k, leaf, id);
    int rc = strata_get(f->t[FT_BUF], sl(k, BUF_KEY_LEN), &v);
    if (rc != STRATA_OK) return rc;
    if (v.len != 8 + (size_t)4 * f->cfg.dim) return FRAC_CORRUPT();
    if (ts) *ts = frac_le64_get(v.data);
    if (w) frac_f32_get(w, (const uint8_t *)v.data + 8, f->cfg.dim);
    return STRATA_OK;
}

int frac_buf_del(strata_fractal *f, uint32_t leaf, uint64_t id)
{
    uint8_t k[BUF_KEY_LEN];
    frac_buf_key(k, leaf, id);
    return strata_del(f->t[FT_BUF], sl(k, BUF_KEY_LEN));
}

int frac_post_read(strata_fractal *f, uint32_t leaf, uint32_t *n, uint64_t **ids, uint64_t **ts,
                   uint8_t **codes, float *anchor)
{
    uint8_t k[8];
    strata_slice v;
    frac_post p;
    uint32_t m = f->cfg.pq_m;
    *n = 0; *ids = NULL; *ts = NULL; *codes = NULL;
    frac_le64_put(k, leaf);
    int rc = strata_get(f->t[FT_POST], sl(k, 8), &v);
    if (rc == STRATA_NOTFOUND) return STRATA_OK;
    if (rc != STRATA_OK) return rc;
    int raw = (f->cfg.flags & CFG_F_RAW) != 0;
    if ((rc = frac_post_view(v.data, v.len, m, f->cfg.dim, raw, &p)) != STRATA_OK) return rc;
    uint64_t *a = malloc((size_t)p.n * 8), *b = malloc((size_t)p.n * 8);
    uint8_t *c = malloc((size_t)p.n * m);
    if (!a || !b || !c) { free(a); free(b); free(c); return STRATA_ENOMEM; }
    for (uint32_t i = 0; i < p.n; i++) {
        a[i] = frac_le64_get(p.ids + 8 * (size_t)i);
        b[i] = frac_le64_get(p.ts + 8 * (size_t)i);
    }
    for (uint32_t i = 0; i < p.n; i++) frac_code_get(p.codes, m, i, c + (size_t)i * m);
    if (anchor) frac_f32_get(anchor, p.anchor, f->cfg.dim);
    *n = p.n; *ids = a; *ts = b; *codes = c;
    return STRATA_OK;
}

int frac_post_anchor(strata_fractal *f, uint32_t leaf, float *anchor)
{
    uint8_t k[8];
    strata_slice v;
    frac_post p;
    frac_le64_put(k, leaf);
    int rc = strata_get(f->t[FT_POST], sl(k, 8), &v);
    if (rc != STRATA_OK) return rc;
    rc = frac_post_view(v.data, v.len, f->cfg.pq_m, f->cfg.dim, (f->cfg.flags & CFG_F_RAW) != 0, &p);
    if (rc == STRATA_OK) frac_f32_get(anchor, p.anchor, f->cfg.dim);
    return rc;
}

/* The raw vectors of a posting list about to be written (rerank reads them
 * there): copied from the list being replaced while its ids line up with
 * the new ones (a cascade appends, a delete shifts the tail by one), else
 * looked up in the raw table. out: n * 4 * dim bytes. */
static int post_raw_fill(strata_fractal *f, uint32_t leaf, uint32_t n, const uint64_t *ids,
                         uint8_t *out)
{
    size_t rl = (size_t)4 * f->cfg.dim;
    uint8_t k[8];
    strata_slice v;
    frac_post old = { .n = 0 };
    frac_le64_put(k, leaf);
    int rc = strata_get(f->t[FT_POST], sl(k, 8), &v);
    if (rc == STRATA_OK) rc = frac_post_view(v.data, v.len, f->cfg.pq_m, f->cfg.dim, 1, &old);
    if (rc != STRATA_OK && rc != STRATA_NOTFOUND) return rc;
    uint32_t off = 0;   /* new i is old i + off */
    for (uint32_t i = 0; i < n; i++) {
        uint64_t j = (uint64_t)i + off;
        if (j + 1 < old.n && frac_le64_get(old.ids + 8 * j) != ids[i] &&
            frac_le64_get(old.ids + 8 * (j + 1)) == ids[i])
            j = (uint64_t)i + ++off;
        if (j < old.n && frac_le64_get(old.ids + 8 * j) == ids[i]) {
            memcpy(out + rl * i, old.raw + rl * j, rl);
            continue;
        }
        uint8_t rk[8];
        strata_slice rv;
        frac_le64_put(rk, ids[i]);
        rc = strata_get(f->t[FT_RAW], sl(rk, 8), &rv);
        if (rc == STRATA_NOTFOUND || (rc == STRATA_OK && rv.len != rl)) rc = FRAC_CORRUPT();
        if (rc != STRATA_OK) return rc;
        memcpy(out + rl * i, rv.data, rl);
    }
    return STRATA_OK;
}

int frac_post_write(strata_fractal *f, uint32_t leaf, uint32_t n, const uint64_t *ids,
                    const uint64_t *ts, const uint8_t *codes, const float *anchor)
{
    uint8_t k[8];
    uint32_t m = f->cfg.pq_m, dim = f->cfg.dim;
    frac_le64_put(k, leaf);
    if (n == 0) {
        int rc = strata_del(f->t[FT_POST], sl(k, 8));
        return rc == STRATA_NOTFOUND ? STRATA_OK : rc;
    }
    if (!f->pq.cb) return FRAC_CORRUPT();   /* codes without codebooks */
    int raw = (f->cfg.flags & CFG_F_RAW) != 0;
    size_t len = frac_post_size(n, m, dim, raw);
    uint8_t *v = malloc(len);
    if (!v) return STRATA_ENOMEM;
    uint8_t *pa = v + POST_HDR, *pi = pa + (size_t)4 * dim, *pt = pi + (size_t)8 * n;
    uint8_t *pterm = pt + (size_t)8 * n, *pc = pterm + (size_t)4 * n;
    frac_le32_put(v, n);
    frac_le32_put(v + 4, m);
    vec_f32_put(pa, anchor, dim);
    for (uint32_t i = 0; i < n; i++) {
        frac_le64_put(pi + 8 * (size_t)i, ids[i]);
        frac_le64_put(pt + 8 * (size_t)i, ts[i]);
        float t = fpq_term(&f->pq, anchor, codes + (size_t)i * m);
        vec_f32_put(pterm + 4 * (size_t)i, &t, 1);
    }
    frac_codes_block(codes, n, m, pc);
    int rc = raw ? post_raw_fill(f, leaf, n, ids, pc + (size_t)frac_post_blocks(n) * m * FRAC_BLK)
                 : STRATA_OK;
    if (rc == STRATA_OK) rc = strata_put(f->t[FT_POST], sl(k, 8), sl(v, len));
    free(v);
    return rc;
}

int frac_encode_res(const strata_fractal *f, const float *anchor, const float *x, size_t n,
                    uint8_t *codes)
{
    uint32_t dim = f->cfg.dim;
    float *r = malloc((n ? n : 1) * dim * sizeof *r);
    if (!r) return STRATA_ENOMEM;
    for (size_t i = 0; i < n; i++)
        for (uint32_t j = 0; j < dim; j++) r[i * dim + j] = x[i * dim + j] - anchor[j];
    int rc = fpq_encode(&f->pq, r, n, codes);
    free(r);
    return rc;
}

void frac_decode_res(const strata_fractal *f, const float *anchor, const uint8_t *code, float *w)
{
    fpq_decode(&f->pq, code, w);
    for (uint32_t j = 0; j < f->cfg.dim; j++) w[j] += anchor[j];
}

int frac_assign_set(strata_fractal *f, uint64_t id, uint32_t leaf, uint8_t where, uint64_t ts)
{
    uint8_t k[8], v[ASSIGN_LEN];
    frac_le64_put(k, id);
    frac_assign_put(v, leaf, where, ts);
    return strata_put(f->t[FT_ASSIGN], sl(k, 8), sl(v, ASSIGN_LEN));
}

int frac_assign_lookup(strata_fractal *f, uint64_t id, uint32_t *leaf, uint8_t *where,
                       uint64_t *ts)
{
    uint8_t k[8];
    strata_slice v;
    frac_le64_put(k, id);
    int rc = strata_get(f->t[FT_ASSIGN], sl(k, 8), &v);
    if (rc != STRATA_OK) return rc;
    return frac_assign_get(v.data, v.len, leaf, where, ts);
}

int frac_raw_get(strata_fractal *f, uint64_t id, float *x)
{
    uint8_t k[8];
    strata_slice v;
    frac_le64_put(k, id);
    int rc = strata_get(f->t[FT_RAW], sl(k, 8), &v);
    if (rc != STRATA_OK) return rc == STRATA_NOTFOUND ? FRAC_CORRUPT() : rc;
    if (v.len != (size_t)4 * f->cfg.dim) return FRAC_CORRUPT();
    frac_f32_get(x, v.data, f->cfg.dim);
    return STRATA_OK;
}

/* The working vector of a posting member: from its raw row when raw vectors
 * are kept (exact), else its decoded code (what the sums hold for it). */
static int post_working(strata_fractal *f, uint64_t id, const uint8_t *code, const float *anchor,
                        float *w)
{
    if (f->cfg.flags & CFG_F_RAW) {
        int rc = frac_raw_get(f, id, w);
        if (rc == STRATA_OK) frac_working(f, w, w);
        return rc;
    }
    if (f->cfg.cb_gen == 0) return FRAC_CORRUPT();   /* codes without codebooks */
    frac_decode_res(f, anchor, code, w);
    return STRATA_OK;
}

static int gather_buf(strata_fractal *f, const frac_node *leaf, size_t cap, size_t *n,
                      frac_member *mem, float *w)
{
    uint8_t lo[BUF_KEY_LEN], hi[BUF_KEY_LEN];
    uint32_t dim = f->cfg.dim;
    frac_buf_key(lo, leaf->id, 0);
    frac_buf_key(hi, leaf->id + 1, 0);   /* leaf ids < FRAC_MAX_NODES: no overflow */
    strata_slice slo = sl(lo, BUF_KEY_LEN), shi = sl(hi, BUF_KEY_LEN), k, v;
    strata_cursor *c = NULL;
    int rc = strata_cursor_open(f->t[FT_BUF], &c);
    if (rc == STRATA_OK) rc = strata_cursor_set_range(c, &slo, &shi, 0);
    if (rc != STRATA_OK) { strata_cursor_close(c); return rc; }
    for (rc = strata_cursor_first(c); rc == STRATA_OK; rc = strata_cursor_next(c)) {
        if ((rc = strata_cursor_get(c, &k, &v)) != STRATA_OK) break;
        if (*n >= cap || k.len != BUF_KEY_LEN || v.len != 8 + (size_t)4 * dim) {
            rc = FRAC_CORRUPT();
            break;
        }
        mem[*n] = (frac_member){ .id = frac_be64_get((const uint8_t *)k.data + 4),
                                 .ts = frac_le64_get(v.data), .where = WHERE_BUF };
        frac_f32_get(w + *n * dim, (const uint8_t *)v.data + 8, dim);
        (*n)++;
    }
    strata_cursor_close(c);
    return rc == STRATA_NOTFOUND ? STRATA_OK : rc;
}

int frac_buf_gather(strata_fractal *f, const frac_node *leaf, size_t *n_out, frac_member **mem_out,
                    float **w_out)
{
    size_t cap = leaf->n_buf, n = 0;
    frac_member *mem = malloc((cap ? cap : 1) * sizeof *mem);
    float *w = malloc((cap ? cap : 1) * f->cfg.dim * sizeof *w);
    int rc = mem && w ? gather_buf(f, leaf, cap, &n, mem, w) : STRATA_ENOMEM;
    if (rc == STRATA_OK && n != cap) rc = FRAC_CORRUPT();
    if (rc != STRATA_OK) { free(mem); free(w); return rc; }
    *n_out = n; *mem_out = mem; *w_out = w;
    return STRATA_OK;
}

int frac_leaf_gather(strata_fractal *f, const frac_node *leaf, size_t *n_out, frac_member **mem_out,
                     float **w_out, uint8_t **codes_out)
{
    uint32_t dim = f->cfg.dim, m = f->cfg.pq_m, np = 0;
    uint64_t *pids = NULL, *pts = NULL;
    uint8_t *pcodes = NULL;
    float *anchor = malloc((size_t)dim * sizeof *anchor);
    if (!anchor) return STRATA_ENOMEM;
    int rc = frac_post_read(f, leaf->id, &np, &pids, &pts, &pcodes, anchor);
    if (rc != STRATA_OK) { free(anchor); return rc; }
    size_t cap = (size_t)leaf->n_buf + np, n = 0;
    frac_member *mem = malloc((cap ? cap : 1) * sizeof *mem);
    float *w = malloc((cap ? cap : 1) * dim * sizeof *w);
    uint8_t *codes = malloc((cap ? cap : 1) * (size_t)m);
    if (!mem || !w || !codes) { rc = STRATA_ENOMEM; goto out; }
    if ((rc = gather_buf(f, leaf, leaf->n_buf, &n, mem, w)) != STRATA_OK) goto out;
    if (n != leaf->n_buf) { rc = FRAC_CORRUPT(); goto out; }
    for (uint32_t i = 0; i < np; i++, n++) {
        mem[n] = (frac_member){ .id = pids[i], .ts = pts[i], .where = WHERE_POST };
        memcpy(codes + n * m, pcodes + (size_t)i * m, m);
        if ((rc = post_working(f, pids[i], pcodes + (size_t)i * m, anchor, w + n * dim)) != STRATA_OK)
            goto out;
    }
    *n_out = n; *mem_out = mem; *w_out = w; *codes_out = codes;
    mem = NULL; w = NULL; codes = NULL;
out:
    free(pids); free(pts); free(pcodes); free(mem); free(w); free(codes); free(anchor);
    return rc;
}
