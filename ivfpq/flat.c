/* ivfpq/flat.c - exact top-k over a vector table (STRATA_VECTOR): a scan of
 * the table through a cursor into the vector layer's bounded heap. The exact
 * baseline the approximate indexes are measured against.
 * Invariants: (1) values are read in place from the map (zero-copy); (2) ties
 * are broken by the smaller id (the heap's order), so results are
 * deterministic; (3) a row of another length is STRATA_EINVAL; (4) a row
 * the map holds at an address that is not 4-aligned (an inline value) is
 * copied first: the kernels read floats (the scalar ones plainly). */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "strata.h"
#include "vector.h"

int strata_vec_table_topk(strata_table *t, strata_metric m, const float *query, size_t dim, size_t k,
                          strata_vec_filter_fn filter, void *ctx, strata_hit *out, size_t *n_out) {
    if (!t || !query || !out || !n_out || k == 0 || (unsigned)m > STRATA_METRIC_L1) return STRATA_EINVAL;
    int rc = strata_vec_validate(query, dim);
    if (rc) return rc;
    uint64_t n;
    if ((rc = strata_len(t, &n))) return rc;
    if (k > n) return STRATA_EINVAL;
    strata_cursor *c;
    if ((rc = strata_cursor_open(t, &c))) return rc;
    const vec_kernels *kt = vec_kernels_get();
    vec_topk h;
    float *tmp = NULL;                            /* one unaligned row */
    vec_topk_init(&h, out, k);
    for (rc = strata_cursor_first(c); rc == STRATA_OK; rc = strata_cursor_next(c)) {
        strata_slice key, val;
        if ((rc = strata_cursor_get(c, &key, &val))) break;
        if (key.len != 8 || val.len != dim * sizeof(float)) { rc = STRATA_EINVAL; break; }
        uint64_t id;
        memcpy(&id, key.data, 8);                 /* u64 keys are little-endian, as the host */
        const float *row = val.data;
        if ((uintptr_t)val.data & (_Alignof(float) - 1)) {
            if (!tmp && !(tmp = malloc(dim * sizeof *tmp))) { rc = STRATA_ENOMEM; break; }
            memcpy(tmp, val.data, dim * sizeof *tmp);
            row = tmp;
        }
        if ((rc = vec_topk_scan(kt, m, query, row, 1, dim, &id, filter, ctx, &h))) break;
    }
    free(tmp);
    strata_cursor_close(c);
    if (rc != STRATA_NOTFOUND) return rc;
    *n_out = vec_topk_finish(&h);
    return STRATA_OK;
}
