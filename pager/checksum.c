/* pager/checksum.c - the only place that calls xxHash (inlined, header-only mode).
 * Pages use xxh3-128 (parents store their children's sums: a Merkle tree);
 * commit slots use xxh3-64 over their own bytes. */
#define XXH_INLINE_ALL
#include <xxhash.h>

#include "bytes.h"

ck128 ck_compute(const void *data, size_t len) {
    XXH128_hash_t h = XXH3_128bits(data, len);
    ck128 c = { h.low64, h.high64 };
    return c;
}

uint64_t ck64_compute(const void *data, size_t len) { return XXH3_64bits(data, len); }
