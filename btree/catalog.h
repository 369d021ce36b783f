/* btree/catalog.h - the table catalog: a B-tree from table name to descriptor.
 * Descriptor bytes (docs/ARCHITECTURE.md "Catalog descriptor"):
 *   0 u8 version (1) | 1 u8 key type | 2 u8 flags (multimap, ttl, cdc, vector, lz4, zstd) | 3 u8 comparator name length L
 *   4 u32 vector dimension (0 unless a vector table) | 8 u64 root page |
 *   16 16B root xxh3-128 | 32 u64 entries
 *   40 u64 reserved (0) | 48 L bytes comparator name (no NUL)
 * Invariants: L <= CAT_CMP_MAX; unknown versions or flags are rejected. */
#ifndef STRATA_BTREE_CATALOG_H
#define STRATA_BTREE_CATALOG_H

#include "btree.h"

enum { CAT_DESC_VERSION = 1, CAT_DESC_FIXED = 48, CAT_CMP_MAX = 63, CAT_NAME_MAX = 255 };
enum { CAT_FLAG_MULTIMAP = 0x1, CAT_FLAG_TTL = 0x2, CAT_FLAG_CDC = 0x4, CAT_FLAG_VECTOR = 0x8,
       CAT_FLAG_LZ4 = 0x10, CAT_FLAG_ZSTD = 0x20, CAT_FLAGS_KNOWN = 0x3F,
       CAT_FLAG_COMPRESS = CAT_FLAG_LZ4 | CAT_FLAG_ZSTD,
       CAT_KIND_FLAGS = CAT_FLAG_MULTIMAP | CAT_FLAG_TTL | CAT_FLAG_VECTOR | CAT_FLAG_COMPRESS };
enum { CAT_VEC_MAX_DIM = 65536 };

typedef struct cat_desc {
    uint8_t  key_type;
    uint8_t  flags;
    uint8_t  cmp_len;
    uint32_t dim;            /* vector tables */
    char     cmp_name[CAT_CMP_MAX + 1];
    pgno_t   root;
    ck128    root_ck;
    uint64_t count;
} cat_desc;

size_t cat_desc_encode(const cat_desc *d, uint8_t *out);   /* out >= CAT_DESC_FIXED + CAT_CMP_MAX */
int    cat_desc_decode(const uint8_t *in, size_t len, cat_desc *d);  /* 0 or STRATA_ECORRUPT */

#endif
