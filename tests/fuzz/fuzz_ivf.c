/* tests/fuzz/fuzz_ivf.c - the IVF-PQ index decoders (ivfpq/format.c) on
 * untrusted bytes. Byte 0 picks the decoder:
 *   0: config record (the rest); accepted => its parameters pass
 *      ivf_config_check and re-encoding gives the same 64 bytes;
 *   1: checked float row of data[1] floats (the rest); accepted => finite;
 *   2: posting block: data[1] m - 1 (m 1..64), data[2] raw dim (0..15), data[3]
 *      bit 0 attributes, bit 1 L2 terms, data[4..5] block_cap (u16 LE, 0 as
 *      1), data[6..9] cluster (u32 LE), the rest the block value. Accepted
 *      => n <= cap, the length matches the layout, and every id, attribute,
 *      term, code and raw float lies inside the value (read here; the value
 *      is an exact-size heap buffer, so ASan sees any overrun), and the raw
 *      part is 4-byte aligned relative to the value.
 * Seeds (corpus/ivf/): valid records of each kind, written by the encoders'
 * byte layout (docs/IVFPQ.md). */
#include <math.h>
#include <string.h>

#include "ivfpq_int.h"
#include "fuzz_common.h"

static volatile uint64_t g_sink;

static void fuzz_config(const uint8_t *p, size_t len)
{
    ivf_config c;
    if (ivf_config_get(p, len, &c) != STRATA_OK) return;
    FUZZ_FAIL_IF(ivf_config_check(&c) != STRATA_OK, "accepted config fails the check");
    uint8_t again[CFG_SIZE];
    ivf_config_put(again, &c);
    FUZZ_FAIL_IF(len != CFG_SIZE || memcmp(again, p, CFG_SIZE) != 0, "config does not round-trip");
}

static void fuzz_row(const uint8_t *p, size_t len, size_t n)
{
    float x[256];
    if (ivf_row_get(p, len, x, n) != STRATA_OK) return;
    for (size_t i = 0; i < n; i++) FUZZ_FAIL_IF(!isfinite(x[i]), "row float %zu not finite", i);
}

static void fuzz_block(const uint8_t *hdr, const uint8_t *p, size_t len)
{
    ivf_blayout l = {.m = 1 + hdr[0] % 64, .raw_dim = hdr[1] % 16, .attr = hdr[2] & 1,
                     .term = (hdr[2] >> 1) & 1};
    uint32_t cap = (uint32_t)hdr[3] | (uint32_t)hdr[4] << 8, cluster;
    if (cap == 0) cap = 1;
    memcpy(&cluster, hdr + 5, 4);
    ivf_block b;
    if (ivf_block_view(p, len, &l, cap, cluster, &b) != STRATA_OK) return;
    FUZZ_FAIL_IF(b.n == 0 || b.n > cap, "n %u outside 1..%u", b.n, cap);
    FUZZ_FAIL_IF(ivf_block_size(&l, b.n) != len, "length %zu for n %u", len, b.n);
    const uint8_t *end = p + len;
    uint64_t acc = 0;
    FUZZ_FAIL_IF(b.ids < p || b.ids + 8 * (size_t)b.n > end, "ids outside the value");
    for (uint32_t i = 0; i < b.n; i++) acc += ivf_le64_get(b.ids + 8 * (size_t)i);
    if (b.attrs) {
        FUZZ_FAIL_IF(b.attrs + 8 * (size_t)b.n > end, "attributes outside the value");
        for (uint32_t i = 0; i < b.n; i++) acc += ivf_le64_get(b.attrs + 8 * (size_t)i);
    }
    if (b.terms) {
        FUZZ_FAIL_IF(b.terms + 4 * (size_t)b.n > end, "terms outside the value");
        for (uint32_t i = 0; i < b.n; i++) acc += ivf_le32_get(b.terms + 4 * (size_t)i);
    }
    FUZZ_FAIL_IF(b.codes + (size_t)l.m * b.n > end, "codes outside the value");
    for (size_t i = 0; i < (size_t)l.m * b.n; i++) acc += b.codes[i];
    FUZZ_FAIL_IF(!l.raw_dim != !b.raw, "raw part present %d for raw dim %u", b.raw != NULL, l.raw_dim);
    if (b.raw) {
        FUZZ_FAIL_IF(((size_t)(b.raw - p) & 3) != 0, "raw part unaligned");
        FUZZ_FAIL_IF(b.raw + 4 * (size_t)b.n * l.raw_dim != end, "raw part does not end the value");
        for (size_t i = 0; i < 4 * (size_t)b.n * l.raw_dim; i++) acc += b.raw[i];
    }
    g_sink = acc;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (size < 1) return 0;
    size_t skip = data[0] % 3 == 0 ? 1 : data[0] % 3 == 1 ? 2 : 10;
    if (size < skip) return 0;
    uint8_t *p = malloc(size - skip + 1);          /* exact size (+1: malloc(0)) */
    if (!p) return 0;
    memcpy(p, data + skip, size - skip);
    switch (data[0] % 3) {
    case 0: fuzz_config(p, size - skip); break;
    case 1: fuzz_row(p, size - skip, data[1]); break;
    default: fuzz_block(data + 1, p, size - skip); break;
    }
    free(p);
    return 0;
}
