/* ivfpq/blocks.h - posting-block read-modify-write (blocks.c), used by the
 * write path (write.c). An ivf_elist is a decoded, growable run of entries in
 * id order with row-major codes (entry i's m code bytes at codes + i * m),
 * its L2 terms and, with raw vectors kept, raw rows (entry i's dim floats at
 * raw + i * dim). */
#ifndef STRATA_IVFPQ_BLOCKS_H
#define STRATA_IVFPQ_BLOCKS_H

#include "ivfpq_int.h"

typedef struct ivf_elist {
    uint32_t  n, cap;
    uint64_t *ids;
    uint64_t *attrs;
    uint8_t  *codes;
    float    *terms;
    float    *raw;       /* NULL when the index keeps no raw vectors */
} ivf_elist;

void ivf_elist_free(ivf_elist *l);
int  ivf_elist_reserve(ivf_elist *l, uint32_t n, const ivf_blayout *lay);
/* Copy entry j of src to entry k of dst (both reserved). */
void ivf_elist_copy(ivf_elist *dst, uint32_t k, const ivf_elist *src, uint32_t j,
                    const ivf_blayout *lay);
int  ivf_blocks_store(strata_ivf *ix, uint32_t c, const ivf_elist *l, int append);
int  ivf_block_find(strata_ivf *ix, uint32_t c, uint64_t id, ivf_elist *l, int *found,
                    uint64_t *first, int *has_next, uint64_t *next_first);
int  ivf_block_del_key(strata_ivf *ix, uint32_t c, uint64_t first);
int  ivf_block_remove(strata_ivf *ix, uint32_t c, uint64_t id);
/* Raw vector of id (stored in cluster c) into out (dim floats). */
int  ivf_block_raw_get(strata_ivf *ix, uint32_t c, uint64_t id, float *out);

#endif
