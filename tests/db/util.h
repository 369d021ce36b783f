/* tests/db/util.h - small helpers shared by the db tests: slices from strings
 * and u64 values (little-endian, as STRATA_KEY_U64 keys), and back. */
#ifndef STRATA_TESTS_DB_UTIL_H
#define STRATA_TESTS_DB_UTIL_H

#include <string.h>

#include "strata.h"

static inline strata_slice S(const char *z) { return (strata_slice){ z, strlen(z) }; }
static inline strata_slice U(uint64_t *b, uint64_t v) {
    uint8_t *p = (uint8_t *)b;
    for (int i = 0; i < 8; i++) p[i] = (uint8_t)(v >> (8 * i));
    return (strata_slice){ b, 8 };
}
static inline uint64_t getu(const void *p) {
    const uint8_t *b = p;
    uint64_t v = 0;
    for (int i = 7; i >= 0; i--) v = v << 8 | b[i];
    return v;
}

#endif
