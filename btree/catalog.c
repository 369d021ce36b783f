/* btree/catalog.c - encoding of catalog descriptors (see catalog.h). */
#include <string.h>

#include "strata.h"
#include "catalog.h"

size_t cat_desc_encode(const cat_desc *d, uint8_t *out) {
    memset(out, 0, CAT_DESC_FIXED);
    out[0] = CAT_DESC_VERSION;
    out[1] = d->key_type;
    out[2] = d->flags;
    out[3] = d->cmp_len;
    le32_put(out + 4, d->dim);
    le64_put(out + 8, d->root);
    ck_put(out + 16, d->root_ck);
    le64_put(out + 32, d->count);
    memcpy(out + CAT_DESC_FIXED, d->cmp_name, d->cmp_len);
    return CAT_DESC_FIXED + d->cmp_len;
}

int cat_desc_decode(const uint8_t *in, size_t len, cat_desc *d) {
    if (len < CAT_DESC_FIXED || in[0] != CAT_DESC_VERSION) return STRATA_ECORRUPT;
    if (in[1] > STRATA_KEY_CUSTOM || (in[2] & ~CAT_FLAGS_KNOWN) || in[3] > CAT_CMP_MAX)
        return STRATA_ECORRUPT;
    if (len != (size_t)CAT_DESC_FIXED + in[3] || le64_get(in + 40)) return STRATA_ECORRUPT;
    uint32_t dim = le32_get(in + 4);
    if ((in[2] & CAT_FLAG_VECTOR) ? (dim == 0 || dim > CAT_VEC_MAX_DIM || in[1] != STRATA_KEY_U64) : dim != 0)
        return STRATA_ECORRUPT;
    d->dim = dim;
    if ((in[1] == STRATA_KEY_CUSTOM) != (in[3] > 0)) return STRATA_ECORRUPT;
    d->key_type = in[1];
    d->flags = in[2];
    d->cmp_len = in[3];
    memcpy(d->cmp_name, in + CAT_DESC_FIXED, d->cmp_len);
    d->cmp_name[d->cmp_len] = 0;
    d->root = le64_get(in + 8);
    d->root_ck = ck_get(in + 16);
    d->count = le64_get(in + 32);
    return STRATA_OK;
}
