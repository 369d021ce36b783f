/* query/tables.c - opening the blob layer's index tables by name for direct
 * range scans and point lookups (blob/blob.h publishes the names for this
 * purpose). The names and key types are the normative ones of docs/BLOBS.md
 * "Tables"; opening a table with another key type fails with STRATA_ETYPE, so
 * a layout change in the blob layer is caught at the first query. The
 * embeddings of dimension d are the STRATA_VECTOR table "blob:vec:<d>",
 * opened through the blob layer's blob_vec_tab
 * (docs/BLOBS.md "Embeddings"); its name states d, so a table of that name
 * that is not a vector table of dimension d is STRATA_ECORRUPT.
 * Invariant: this layer only reads these tables (read or write transaction);
 * it never creates or writes them. */
#include <string.h>

#include "blob.h"
#include "query_int.h"

static const char *const names[QT_COUNT] = {
    [QT_TAGS] = "blob:tags", [QT_BTAGS] = "blob:blobtags", [QT_NS] = "blob:ns",
    [QT_TIME] = "blob:time", [QT_EMBED] = "blob:embed",
};
static const strata_key_type keys[QT_COUNT] = {
    [QT_TAGS] = STRATA_KEY_BYTES, [QT_BTAGS] = STRATA_KEY_BYTES, [QT_NS] = STRATA_KEY_BYTES,
    [QT_TIME] = STRATA_KEY_BYTES, [QT_EMBED] = STRATA_KEY_U64,
};

int qtab_open(strata_txn *txn, int which, strata_table **out) {
    if (which < 0 || which >= QT_COUNT || !names[which]) return STRATA_EINVAL;
    return strata_table_open(txn, names[which], keys[which], 0, out);
}

int qtab_open_vec(strata_txn *txn, size_t dim, strata_table **out) {
    if (dim == 0 || dim > STRATA_VEC_MAX_DIM) return STRATA_EINVAL;
    return blob_vec_tab(txn, (uint32_t)dim, 0, out);
}

int qrun_tab(qrun *r, int which, strata_table **out) {
    if (which < 0 || which >= QT_COUNT) return STRATA_EINVAL;
    if (r->tab_rc[which] == 1)
        r->tab_rc[which] = which == QT_VEC ? qtab_open_vec(r->txn, r->q->dim, &r->tab[which])
                                           : qtab_open(r->txn, which, &r->tab[which]);
    if (r->tab_rc[which] == STRATA_OK) *out = r->tab[which];
    return r->tab_rc[which];
}

size_t qkey_named(uint8_t *k, const char *name, size_t len, uint64_t id) {
    k[0] = (uint8_t)len;
    memcpy(k + 1, name, len);
    q_be64_put(k + 1 + len, id);
    return 1 + len + 8;
}
