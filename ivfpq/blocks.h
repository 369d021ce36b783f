/* ivfpq/blocks.h - posting-block read-modify-write (blocks.c), used by the
 * write path (write.c). An ivf_elist is a decoded, growable run of entries in
 * id order with row-major codes (entry i's m code bytes at codes + i * m). */
#ifndef STRATA_IVFPQ_BLOCKS_H
#define STRATA_IVFPQ_BLOCKS_H

#include "ivfpq_int.h"

typedef struct ivf_elist {
    uint32_t  n, cap;
    uint64_t *ids;
    uint64_t *attrs;
    uint8_t  *codes;
} ivf_elist;

void ivf_elist_free(ivf_elist *l);
int  ivf_elist_reserve(ivf_elist *l, uint32_t n, uint32_t m);
int  ivf_blocks_store(strata_ivf *ix, uint32_t c, const ivf_elist *l, int append);
int  ivf_block_find(strata_ivf *ix, uint32_t c, uint64_t id, ivf_elist *l, int *found,
                    uint64_t *first, int *has_next, uint64_t *next_first);
int  ivf_block_del_key(strata_ivf *ix, uint32_t c, uint64_t first);
int  ivf_block_remove(strata_ivf *ix, uint32_t c, uint64_t id);

#endif
