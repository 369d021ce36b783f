/* pager/bytes.h - little-endian encode/decode helpers and the 128-bit checksum type.
 * All on-disk integers go through these; page bytes are never cast to structs.
 * Invariants: (1) every helper reads/writes exactly its width; (2) no alignment
 * is assumed (memcpy-free byte assembly; gcc/clang fold it to single loads). */
#ifndef STRATA_PAGER_BYTES_H
#define STRATA_PAGER_BYTES_H

#include <stdint.h>
#include <string.h>

typedef uint64_t pgno_t;            /* page number; 0 = none (page 0 is the header) */

static inline uint16_t le16_get(const uint8_t *p) { return (uint16_t)(p[0] | p[1] << 8); }
static inline void le16_put(uint8_t *p, uint16_t v) { p[0] = (uint8_t)v; p[1] = (uint8_t)(v >> 8); }
static inline uint32_t le32_get(const uint8_t *p) {
    return (uint32_t)p[0] | (uint32_t)p[1] << 8 | (uint32_t)p[2] << 16 | (uint32_t)p[3] << 24;
}
static inline void le32_put(uint8_t *p, uint32_t v) {
    p[0] = (uint8_t)v; p[1] = (uint8_t)(v >> 8); p[2] = (uint8_t)(v >> 16); p[3] = (uint8_t)(v >> 24);
}
static inline uint64_t le64_get(const uint8_t *p) {
    return (uint64_t)le32_get(p) | (uint64_t)le32_get(p + 4) << 32;
}
static inline void le64_put(uint8_t *p, uint64_t v) {
    le32_put(p, (uint32_t)v); le32_put(p + 4, (uint32_t)(v >> 32));
}
static inline uint64_t be64_get(const uint8_t *p) {
    uint64_t v = 0;
    for (int i = 0; i < 8; i++) v = v << 8 | p[i];
    return v;
}
static inline void be64_put(uint8_t *p, uint64_t v) {
    for (int i = 7; i >= 0; i--) { p[i] = (uint8_t)v; v >>= 8; }
}
static inline uint32_t be32_get(const uint8_t *p) {
    return (uint32_t)p[0] << 24 | (uint32_t)p[1] << 16 | (uint32_t)p[2] << 8 | p[3];
}
static inline void be32_put(uint8_t *p, uint32_t v) {
    p[0] = (uint8_t)(v >> 24); p[1] = (uint8_t)(v >> 16); p[2] = (uint8_t)(v >> 8); p[3] = (uint8_t)v;
}

/* xxh3-128 checksum, stored on disk as lo (8 bytes LE) then hi (8 bytes LE). */
typedef struct ck128 { uint64_t lo, hi; } ck128;
enum { CK128_SIZE = 16 };

static inline ck128 ck_get(const uint8_t *p) { ck128 c = { le64_get(p), le64_get(p + 8) }; return c; }
static inline void ck_put(uint8_t *p, ck128 c) { le64_put(p, c.lo); le64_put(p + 8, c.hi); }
static inline int ck_eq(ck128 a, ck128 b) { return a.lo == b.lo && a.hi == b.hi; }

ck128 ck_compute(const void *data, size_t len);   /* xxh3-128 (pager/checksum.c) */
uint64_t ck64_compute(const void *data, size_t len); /* xxh3-64, for header slots */

#endif
