/* fractal/check.c - the invariant checker behind strata_fractal_check(): it
 * recomputes, from the rows, everything the node records and sums claim, and
 * reports each disagreement as one line. The tree shape itself (links,
 * levels, depth, reachability, no cycle) was already checked when the handle
 * loaded it (store.c).
 * Checks: (1) every member of a leaf has an assignment row naming that leaf and
 * place, no id is in two places, and the assignment, buffer, posting and raw
 * tables hold no other rows, and with KEEP_RAW each buffered member's vector
 * is its raw row's working form; (2) pop, n_buf, n_codes, the f64 sums and
 * the sum of squared norms of every node match its members (leaves) or
 * children (internal nodes), centroids are sums / pop; (3) a leaf's time range covers its members, an internal node's
 * is exactly the union of its children's; (4) no leaf is above max_leaf, and
 * with codebooks no buffer is full.
 */
#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "fractal_int.h"

typedef struct chk {
    strata_fractal *f;
    void (*report)(void *ctx, const char *msg);
    void *ctx;
    unsigned n_bad;
    uint64_t *ids;
    size_t n_ids, cap_ids;
    size_t n_post_rows;
} chk;

static void bad(chk *c, const char *fmt, ...)
{
    char msg[256];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(msg, sizeof msg, fmt, ap);
    va_end(ap);
    c->n_bad++;
    if (c->report) c->report(c->ctx, msg);
}

/* f64 sums agree within rounding of the f64 additions that built them. */
static int sums_match(const double *a, const double *b, const double *mag, uint32_t dim)
{
    for (uint32_t j = 0; j < dim; j++)
        if (!(fabs(a[j] - b[j]) <= 1e-9 * mag[j] + 1e-12)) return 0;   /* NaN: no match */
    return 1;
}

/* The same for sq, a sum of non-negative terms (its own magnitude). */
static int sq_match(double want, double have)
{
    return sums_match(&want, &have, &want, 1);
}

/* sq_lo is what sq's roundings left out: below half an ulp of sq. */
static void check_sq_lo(chk *c, const frac_node *n)
{
    if (!(fabs(n->sq_lo) <= fabs(n->sq) * 0x1p-52 + 0x1p-1074))
        bad(c, "node %u: rounding remainder of the sum of squared norms out of range", n->id);
}

static void check_cent(chk *c, const frac_node *n)
{
    for (uint32_t j = 0; j < c->f->cfg.dim; j++) {
        float want = n->pop ? (float)(n->sum[j] / (double)n->pop) : 0.0f;
        if (n->cent[j] != want) { bad(c, "node %u: centroid is not sums / pop", n->id); return; }
    }
}

static int check_members(chk *c, const frac_node *leaf, size_t n, const frac_member *mem)
{
    for (size_t i = 0; i < n; i++) {
        uint32_t at;
        uint8_t where;
        uint64_t ts;
        int rc = frac_assign_lookup(c->f, mem[i].id, &at, &where, &ts);
        if (rc == STRATA_NOTFOUND) { bad(c, "id %llu in leaf %u has no assignment",
                                         (unsigned long long)mem[i].id, leaf->id); continue; }
        if (rc != STRATA_OK) return rc;
        if (at != leaf->id || where != mem[i].where || ts != mem[i].ts)
            bad(c, "id %llu: assignment says leaf %u/%u, found in leaf %u/%u",
                (unsigned long long)mem[i].id, at, where, leaf->id, mem[i].where);
        if (mem[i].ts < leaf->ts_min || mem[i].ts > leaf->ts_max)
            bad(c, "leaf %u: time range misses id %llu", leaf->id, (unsigned long long)mem[i].id);
        if (c->n_ids == c->cap_ids) {
            size_t cap = c->cap_ids ? 2 * c->cap_ids : 1024;
            uint64_t *p = realloc(c->ids, cap * sizeof *p);
            if (!p) return STRATA_ENOMEM;
            c->ids = p; c->cap_ids = cap;
        }
        c->ids[c->n_ids++] = mem[i].id;
    }
    return STRATA_OK;
}

/* A posting list's per-code terms must be what its anchor and codes give
 * (search trusts them for L2 distances), and its raw vectors (KEEP_RAW) must
 * be the raw rows of its ids, byte for byte (rerank trusts them). */
static int check_terms(chk *c, const frac_node *leaf)
{
    strata_fractal *f = c->f;
    uint8_t k[8];
    strata_slice v;
    frac_post post;
    if (leaf->n_codes == 0 || !f->pq.cb) return STRATA_OK;
    frac_le64_put(k, leaf->id);
    int rc = strata_get(f->t[FT_POST], (strata_slice){k, 8}, &v);
    if (rc != STRATA_OK) return rc == STRATA_NOTFOUND ? STRATA_OK : rc;   /* gather reported it */
    int raw = (f->cfg.flags & CFG_F_RAW) != 0;
    if (frac_post_view(v.data, v.len, f->cfg.pq_m, f->cfg.dim, raw, &post) != STRATA_OK)
        return STRATA_OK;   /* gather reported it */
    float *a = malloc((size_t)f->cfg.dim * sizeof *a);
    uint8_t *code = malloc(post.m);
    if (!a || !code) { free(a); free(code); return STRATA_ENOMEM; }
    vec_f32_get(a, post.anchor, f->cfg.dim);
    for (uint32_t i = 0; i < post.n; i++) {
        frac_code_get(post.codes, post.m, i, code);
        float t, want = fpq_term(&f->pq, a, code);
        vec_f32_get(&t, post.terms + 4 * (size_t)i, 1);
        if (memcmp(&t, &want, sizeof t)) {
            bad(c, "leaf %u: posting term %u is %g, its code gives %g", leaf->id, i, t, want);
            break;
        }
    }
    /* the lanes of the last block past n are zero (one encoding per list) */
    uint32_t nb = frac_post_blocks(post.n), tail = post.n - (nb - 1) * FRAC_BLK;
    const uint8_t *last = post.codes + (size_t)(nb - 1) * post.m * FRAC_BLK;
    for (uint32_t j = 0; j < post.m; j++)
        for (uint32_t l = tail; l < FRAC_BLK; l++)
            if (last[(size_t)j * FRAC_BLK + l]) {
                bad(c, "leaf %u: padding byte of subspace %u lane %u is not zero", leaf->id, j, l);
                j = post.m;
                break;
            }
    free(a);
    free(code);
    size_t rl = (size_t)4 * f->cfg.dim;
    for (uint32_t i = 0; post.raw && i < post.n; i++) {
        uint8_t rk[8];
        strata_slice rv;
        frac_le64_put(rk, frac_le64_get(post.ids + 8 * (size_t)i));
        rc = strata_get(f->t[FT_RAW], (strata_slice){rk, 8}, &rv);
        if (rc == STRATA_NOTFOUND) continue;   /* the raw-row count check reports it */
        if (rc != STRATA_OK) return rc;
        if (rv.len != rl || memcmp(rv.data, post.raw + rl * i, rl)) {
            bad(c, "leaf %u: raw vector %u of the posting list differs from its raw row",
                leaf->id, i);
            break;
        }
    }
    return STRATA_OK;
}

/* With KEEP_RAW every member has its raw row, and a buffered member's
 * working vector is that of its raw row, bit for bit (rerank and splits
 * trust the raw rows; posting members' raw rows are compared with the copies
 * in their list by check_terms). */
static int check_raw(chk *c, const frac_node *leaf, size_t n, const frac_member *mem, const float *w)
{
    strata_fractal *f = c->f;
    uint32_t dim = f->cfg.dim;
    if (!(f->cfg.flags & CFG_F_RAW)) return STRATA_OK;
    float *x = malloc((size_t)dim * sizeof *x);
    if (!x) return STRATA_ENOMEM;
    int rc = STRATA_OK;
    for (size_t i = 0; i < n && rc == STRATA_OK; i++) {
        if (mem[i].where != WHERE_BUF) continue;
        rc = frac_raw_get(f, mem[i].id, x);
        if (rc == STRATA_ECORRUPT) {
            bad(c, "leaf %u: id %llu has no valid raw row", leaf->id, (unsigned long long)mem[i].id);
            rc = STRATA_OK;
            continue;
        }
        if (rc != STRATA_OK) break;
        frac_working(f, x, x);
        if (memcmp(x, w + i * dim, (size_t)dim * sizeof *x))
            bad(c, "leaf %u: buffered id %llu differs from its raw row", leaf->id,
                (unsigned long long)mem[i].id);
    }
    free(x);
    return rc;
}

static int check_leaf(chk *c, const frac_node *leaf)
{
    strata_fractal *f = c->f;
    uint32_t dim = f->cfg.dim;
    size_t n = 0, nb = 0;
    frac_member *mem = NULL;
    float *w = NULL;
    uint8_t *codes = NULL;
    int rc = frac_leaf_gather(f, leaf, &n, &mem, &w, &codes);
    if (rc == STRATA_ECORRUPT) { bad(c, "leaf %u: rows disagree with its record", leaf->id); return STRATA_OK; }
    if (rc != STRATA_OK) return rc;
    double *s = calloc(2 * (size_t)dim, sizeof *s), *mag = s + dim;
    if (!s) { rc = STRATA_ENOMEM; goto out; }
    double sq = 0;
    for (size_t i = 0; i < n; i++) {
        nb += mem[i].where == WHERE_BUF;
        for (uint32_t j = 0; j < dim; j++) { s[j] += w[i * dim + j]; mag[j] += fabs(w[i * dim + j]); }
        sq += frac_sqnorm(w + i * dim, dim);
    }
    if (leaf->pop != n || leaf->n_buf != nb || leaf->n_codes != n - nb)
        bad(c, "leaf %u: pop %llu / buf %u / codes %u, found %zu / %zu / %zu", leaf->id,
            (unsigned long long)leaf->pop, leaf->n_buf, leaf->n_codes, n, nb, n - nb);
    if (!sums_match(s, leaf->sum, mag, dim)) bad(c, "leaf %u: sums do not match its vectors", leaf->id);
    if (!sq_match(sq, leaf->sq)) bad(c, "leaf %u: sum of squared norms does not match its vectors", leaf->id);
    check_sq_lo(c, leaf);
    if (leaf->pop > f->cfg.max_leaf) bad(c, "leaf %u: %llu vectors, above max_leaf %u", leaf->id,
                                         (unsigned long long)leaf->pop, f->cfg.max_leaf);
    if (f->cfg.cb_gen && leaf->n_buf >= f->cfg.buffer_cap)
        bad(c, "leaf %u: buffer of %u not cascaded", leaf->id, leaf->n_buf);
    c->n_post_rows += n - nb > 0;
    rc = check_members(c, leaf, n, mem);
    if (rc == STRATA_OK) rc = check_raw(c, leaf, n, mem, w);
    if (rc == STRATA_OK) rc = check_terms(c, leaf);
out:
    free(mem); free(w); free(codes); free(s);
    return rc;
}

static void check_internal(chk *c, const frac_node *n)
{
    uint32_t dim = c->f->cfg.dim;
    double *s = calloc(2 * (size_t)dim, sizeof *s), *mag = s + dim;
    if (!s) return;
    uint64_t pop = 0, lo = UINT64_MAX, hi = 0;
    double sq = 0;
    for (uint32_t i = 0; i < n->n_child; i++) {
        const frac_node *ch = frac_node_at(c->f, n->child[i]);
        pop += ch->pop;
        sq += ch->sq;
        if (ch->ts_min < lo) lo = ch->ts_min;
        if (ch->ts_max > hi) hi = ch->ts_max;
        for (uint32_t j = 0; j < dim; j++) { s[j] += ch->sum[j]; mag[j] += fabs(ch->sum[j]); }
    }
    if (pop != n->pop) bad(c, "node %u: pop %llu, children hold %llu", n->id,
                           (unsigned long long)n->pop, (unsigned long long)pop);
    if (!sums_match(s, n->sum, mag, dim)) bad(c, "node %u: sums differ from its children's", n->id);
    if (!sq_match(sq, n->sq)) bad(c, "node %u: sum of squared norms differs from its children's", n->id);
    check_sq_lo(c, n);
    if (lo != n->ts_min || hi != n->ts_max) bad(c, "node %u: time range is not its children's union", n->id);
    free(s);
}

static int cmp_u64(const void *a, const void *b)
{
    uint64_t x = *(const uint64_t *)a, y = *(const uint64_t *)b;
    return x < y ? -1 : x > y;
}

static int check_counts(chk *c)
{
    strata_fractal *f = c->f;
    uint64_t n_assign, n_buf_rows, n_post, n_raw, n_edges, buf_total = 0, live = 0;
    int rc;
    if ((rc = strata_len(f->t[FT_ASSIGN], &n_assign)) || (rc = strata_len(f->t[FT_BUF], &n_buf_rows)) ||
        (rc = strata_len(f->t[FT_POST], &n_post)) || (rc = strata_len(f->t[FT_RAW], &n_raw)) ||
        (rc = strata_len(f->t[FT_EDGES], &n_edges)))
        return rc;
    for (uint32_t i = 0; i < f->n_slots; i++) {
        const frac_node *n = frac_node_at(f, i);
        if (!n) continue;
        live++;
        if (n->leaf) buf_total += n->n_buf;
    }
    if (c->n_ids) qsort(c->ids, c->n_ids, sizeof *c->ids, cmp_u64);
    for (size_t i = 1; i < c->n_ids; i++)
        if (c->ids[i] == c->ids[i - 1]) bad(c, "id %llu is in two places", (unsigned long long)c->ids[i]);
    if (c->n_ids != f->cfg.n_vectors || n_assign != f->cfg.n_vectors)
        bad(c, "config counts %llu vectors, leaves hold %zu, assignments %llu",
            (unsigned long long)f->cfg.n_vectors, c->n_ids, (unsigned long long)n_assign);
    if (n_buf_rows != buf_total) bad(c, "%llu buffer rows, leaves claim %llu",
                                     (unsigned long long)n_buf_rows, (unsigned long long)buf_total);
    if (n_post != c->n_post_rows) bad(c, "%llu posting rows, %zu leaves have codes",
                                      (unsigned long long)n_post, c->n_post_rows);
    if ((f->cfg.flags & CFG_F_RAW) ? n_raw != f->cfg.n_vectors : n_raw != 0)
        bad(c, "%llu raw rows for %llu vectors", (unsigned long long)n_raw,
            (unsigned long long)f->cfg.n_vectors);
    if (n_edges + 1 != live) bad(c, "%llu edges for %llu nodes", (unsigned long long)n_edges,
                                 (unsigned long long)live);
    return STRATA_OK;
}

int frac_check(strata_fractal *f, void (*report)(void *ctx, const char *msg), void *ctx)
{
    chk c = { .f = f, .report = report, .ctx = ctx };
    int rc = STRATA_OK;
    for (uint32_t i = 0; i < f->n_slots && rc == STRATA_OK; i++) {
        frac_node *n = frac_node_at(f, i);
        if (!n) continue;
        check_cent(&c, n);
        if (n->leaf) rc = check_leaf(&c, n);
        else check_internal(&c, n);
    }
    if (rc == STRATA_OK) rc = check_counts(&c);
    free(c.ids);
    if (rc != STRATA_OK) return rc;
    return c.n_bad ? STRATA_ECORRUPT : STRATA_OK;
}
