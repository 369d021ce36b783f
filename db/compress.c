/* db/compress.c - per-table value compression (LZ4 or zstd).
 * Stored value: u8 0 then the raw value, or u8 1, u32 LE raw length, then the
 * compressed bytes (docs/ARCHITECTURE.md "Catalog"). A value is stored
 * compressed only when that saves at least 1/16 of it.
 * Invariants: (1) decompressed copies live in an arena owned by the
 * transaction and freed when it ends, so returned slices stay valid as long as
 * map pointers would; (2) a damaged compressed value is STRATA_ECORRUPT. */
#include <lz4.h>
#include <stdlib.h>
#include <string.h>
#include <zstd.h>

#include "db_int.h"

enum { CZ_RAW = 0, CZ_PACKED = 1, CZ_HDR = 5, CZ_MIN = 64 };

struct arena_blk { struct arena_blk *next; size_t len; uint8_t data[]; };

int db_compress(strata_table *t, strata_slice val, strata_slice *stored) {
    size_t bound = t->desc.flags & CAT_FLAG_LZ4 ? (size_t)LZ4_compressBound((int)(val.len > INT32_MAX ? 0 : val.len))
                                                : ZSTD_compressBound(val.len);
    size_t need = CZ_HDR + (bound > val.len ? bound : val.len);
    int rc = db_ensure_buf(&t->cbuf, &t->cbuf_cap, need);
    if (rc) return rc;
    size_t clen = 0;
    if (val.len >= CZ_MIN && val.len <= INT32_MAX) {
        if (t->desc.flags & CAT_FLAG_LZ4) {
            int r = LZ4_compress_default(val.data, (char *)t->cbuf + CZ_HDR, (int)val.len, (int)bound);
            clen = r > 0 ? (size_t)r : 0;
        } else {
            if (!t->zc && !(t->zc = ZSTD_createCCtx())) return STRATA_ENOMEM;
            size_t r = ZSTD_compressCCtx(t->zc, t->cbuf + CZ_HDR, bound, val.data, val.len, 3);
            clen = ZSTD_isError(r) ? 0 : r;
        }
    }
    if (clen && clen + CZ_HDR < val.len - val.len / 16) {
        t->cbuf[0] = CZ_PACKED;
        le32_put(t->cbuf + 1, (uint32_t)val.len);
        *stored = (strata_slice){ t->cbuf, CZ_HDR + clen };
        return STRATA_OK;
    }
    t->cbuf[0] = CZ_RAW;
    if (val.len) memcpy(t->cbuf + 1, val.data, val.len);
    *stored = (strata_slice){ t->cbuf, 1 + val.len };
    return STRATA_OK;
}

int db_decompress(strata_table *t, const uint8_t *data, size_t len, strata_slice *out) {
    if (len < 1) return CORRUPT(t->txn->db->p, t->tree.root);
    if (data[0] == CZ_RAW) { *out = (strata_slice){ data + 1, len - 1 }; return STRATA_OK; }
    if (data[0] != CZ_PACKED || len < CZ_HDR) return CORRUPT(t->txn->db->p, t->tree.root);
    size_t raw = le32_get(data + 1);
    struct arena_blk *b = malloc(sizeof *b + (raw ? raw : 1));
    if (!b) return STRATA_ENOMEM;
    int ok;
    if (t->desc.flags & CAT_FLAG_LZ4) {
        int r = LZ4_decompress_safe((const char *)data + CZ_HDR, (char *)b->data, (int)(len - CZ_HDR), (int)raw);
        ok = r >= 0 && (size_t)r == raw;
    } else {
        if (!t->zd && !(t->zd = ZSTD_createDCtx())) { free(b); return STRATA_ENOMEM; }
        size_t r = ZSTD_decompressDCtx(t->zd, b->data, raw, data + CZ_HDR, len - CZ_HDR);
        ok = !ZSTD_isError(r) && r == raw;
    }
    if (!ok) { free(b); return CORRUPT(t->txn->db->p, t->tree.root); }
    b->len = raw;
    b->next = t->txn->arena;
    t->txn->arena = b;
    *out = (strata_slice){ b->data, raw };
    return STRATA_OK;
}

void db_arena_free(strata_txn *txn) {
    while (txn->arena) {
        struct arena_blk *b = txn->arena;
        txn->arena = b->next;
        free(b);
    }
}

void db_compress_free(strata_table *t) {
    ZSTD_freeCCtx(t->zc);
    ZSTD_freeDCtx(t->zd);
}
