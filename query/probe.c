/* query/probe.c - point lookups of one blob in the index tables, used by the
 * filters when a candidate list is much shorter than the index list it would
 * otherwise be intersected with (plan.c):
 *   tag      blob:blobtags key (id BE, tag bytes)          docs/BLOBS.md
 *   ns       blob:ns key (u8 len, ns bytes, id BE)
 * Tables come from the run's cache (qrun_tab).
 * Each is one B-tree lookup; neither reads a metadata record.
 * Invariant: a table never written means "not present" (0), not an error. */
#include <string.h>

#include "query_int.h"

int qprobe_tag(qrun *r, const char *tag, uint64_t id) {
    uint8_t k[8 + STRATA_BLOB_MAX_META];
    strata_table *t;
    strata_slice v;
    size_t len = strlen(tag);
    int rc = qrun_tab(r, QT_BTAGS, &t);
    if (rc) return rc == STRATA_NOTFOUND ? 0 : rc;
    q_be64_put(k, id);
    memcpy(k + 8, tag, len);
    rc = strata_get(t, q_sl(k, 8 + len), &v);
    return rc == STRATA_OK ? 1 : rc == STRATA_NOTFOUND ? 0 : rc;
}

int qprobe_ns(qrun *r, const char *ns, uint64_t id) {
    uint8_t k[1 + STRATA_BLOB_MAX_META + 8];
    strata_table *t;
    strata_slice v;
    int rc = qrun_tab(r, QT_NS, &t);
    if (rc) return rc == STRATA_NOTFOUND ? 0 : rc;
    size_t n = qkey_named(k, ns, strlen(ns), id);
    rc = strata_get(t, q_sl(k, n), &v);
    return rc == STRATA_OK ? 1 : rc == STRATA_NOTFOUND ? 0 : rc;
}
