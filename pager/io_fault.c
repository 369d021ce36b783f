/* pager/io_fault.c - a fault-injecting backend for tests (SQLite's test6.c and
 * SimulateIOError ideas): countdowns that fail the n-th write, sync, set_len or
 * map, and power-loss simulation that undoes or tears every write made since the
 * last successful sync.
 * Invariants: (1) writes pass through to the inner backend at once, so the map
 * sees them; the pre-images are logged until the next sync; (2) io_fault_crash()
 * rewrites pre-images through the inner backend, so it must run only after the
 * database handle is gone; (3) the wrapper is reference counted: the database
 * and the test each hold one reference and each call io_close(). */
#include <stdlib.h>
#include <string.h>

#include "strata.h"
#include "io.h"

typedef struct undo {
    uint64_t off;
    size_t   len;            /* bytes written                       */
    size_t   old_len;        /* bytes of pre-image (0 past old EOF) */
    uint8_t *old;
    uint8_t *new_bytes;
} undo;

typedef struct io_fault {
    io_backend  base;
    io_backend *inner;
    int         refs;
    long        count[FAULT_KINDS];
    long        fail_at[FAULT_KINDS];  /* -1: disarmed */
    int         fail_err[FAULT_KINDS];
    int         persistent[FAULT_KINDS];
    undo       *log;
    size_t      n_log, cap_log;
    uint64_t    synced_len;
} io_fault;

static int trip(io_fault *f, int kind) {
    long n = f->count[kind]++;
    if (f->fail_at[kind] < 0) return STRATA_OK;
    if (n == f->fail_at[kind] || (f->persistent[kind] && n > f->fail_at[kind]))
        return f->fail_err[kind];
    return STRATA_OK;
}

static void log_clear(io_fault *f) {
    for (size_t i = 0; i < f->n_log; i++) { free(f->log[i].old); free(f->log[i].new_bytes); }
    f->n_log = 0;
}

static int log_write(io_fault *f, const uint8_t *buf, size_t len, uint64_t off) {
    uint64_t flen;
    int rc = f->inner->ops->get_len(f->inner, &flen);
    if (rc) return rc;
    if (f->n_log == f->cap_log) {
        size_t nc = f->cap_log ? f->cap_log * 2 : 64;
        undo *nl = realloc(f->log, nc * sizeof *nl);
        if (!nl) return STRATA_ENOMEM;
        f->log = nl; f->cap_log = nc;
    }
    undo *u = &f->log[f->n_log];
    memset(u, 0, sizeof *u);
    u->off = off; u->len = len;
    u->old_len = off >= flen ? 0 : (size_t)(flen - off < len ? flen - off : len);
    u->new_bytes = malloc(len ? len : 1);
    u->old = malloc(u->old_len ? u->old_len : 1);
    if (!u->new_bytes || !u->old) { free(u->new_bytes); free(u->old); return STRATA_ENOMEM; }
    memcpy(u->new_bytes, buf, len);
    if (u->old_len && (rc = f->inner->ops->pread(f->inner, u->old, u->old_len, off))) {
        free(u->new_bytes); free(u->old);
        return rc;
    }
    f->n_log++;
    return STRATA_OK;
}

static int ft_pwritev(io_backend *io, const struct iovec *iov, int n, uint64_t off) {
    io_fault *f = (io_fault *)io;
    int rc = trip(f, FAULT_WRITE);
    if (rc) return rc;
    uint64_t o = off;
    for (int i = 0; i < n; i++) {
        if ((rc = log_write(f, iov[i].iov_base, iov[i].iov_len, o))) return rc;
        o += iov[i].iov_len;
    }
    return f->inner->ops->pwritev(f->inner, iov, n, off);
}

static int ft_pread(io_backend *io, void *buf, size_t len, uint64_t off) {
    io_fault *f = (io_fault *)io;
    return f->inner->ops->pread(f->inner, buf, len, off);
}

static int ft_sync(io_backend *io) {
    io_fault *f = (io_fault *)io;
    int rc = trip(f, FAULT_SYNC);
    if (rc) return rc;
    if ((rc = f->inner->ops->sync(f->inner))) return rc;
    log_clear(f);
    return f->inner->ops->get_len(f->inner, &f->synced_len);
}

static int ft_set_len(io_backend *io, uint64_t len) {
    io_fault *f = (io_fault *)io;
    int rc = trip(f, FAULT_SET_LEN);
    return rc ? rc : f->inner->ops->set_len(f->inner, len);
}

static int ft_get_len(io_backend *io, uint64_t *len) {
    io_fault *f = (io_fault *)io;
    return f->inner->ops->get_len(f->inner, len);
}

static int ft_map(io_backend *io, size_t len, const uint8_t **out) {
    io_fault *f = (io_fault *)io;
    int rc = trip(f, FAULT_MAP);
    return rc ? rc : f->inner->ops->map(f->inner, len, out);
}

static void ft_unmap(io_backend *io, const uint8_t *base, size_t len) {
    io_fault *f = (io_fault *)io;
    f->inner->ops->unmap(f->inner, base, len);
}

static void ft_close(io_backend *io) {
    io_fault *f = (io_fault *)io;
    if (--f->refs > 0) return;
    log_clear(f);
    free(f->log);
    io_close(f->inner);
    free(f);
}

static const io_ops fault_ops = {
    ft_pwritev, ft_pread, ft_sync, ft_set_len, ft_get_len, ft_map, ft_unmap, ft_close,
    NULL,                        /* no writeback hint: every write stays undoable until sync */
};

int io_fault_wrap(io_backend *inner, io_backend **out) {
    io_fault *f = calloc(1, sizeof *f);
    if (!f) { io_close(inner); return STRATA_ENOMEM; }
    f->base.ops = &fault_ops;
    f->inner = inner;
    f->refs = 2;
    for (int k = 0; k < FAULT_KINDS; k++) f->fail_at[k] = -1;
    int rc = inner->ops->get_len(inner, &f->synced_len);
    if (rc) { free(f); io_close(inner); return rc; }
    *out = &f->base;
    return STRATA_OK;
}

void io_fault_arm(io_backend *io, int kind, long n, int err, int persistent) {
    io_fault *f = (io_fault *)io;
    f->fail_at[kind] = f->count[kind] + n;
    f->fail_err[kind] = err;
    f->persistent[kind] = persistent;
}

void io_fault_disarm(io_backend *io) {
    io_fault *f = (io_fault *)io;
    for (int k = 0; k < FAULT_KINDS; k++) f->fail_at[k] = -1;
}

long io_fault_count(const io_backend *io, int kind) {
    const io_fault *f = (const io_fault *)io;
    return f->count[kind];
}

static uint64_t splitmix(uint64_t *s) {
    uint64_t z = (*s += 0x9E3779B97F4A7C15ull);
    z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ull;
    z = (z ^ (z >> 27)) * 0x94D049BB133111EBull;
    return z ^ (z >> 31);
}

int io_fault_crash(io_backend *io, uint64_t seed, int mode) {
    io_fault *f = (io_fault *)io;
    io_backend *in = f->inner;
    int rc = STRATA_OK;
    uint64_t s = seed;
    /* Undo newest first so overlapping writes restore the oldest pre-image. */
    for (size_t i = f->n_log; i-- > 0 && rc == STRATA_OK;) {
        undo *u = &f->log[i];
        int keep = mode != 0 && (splitmix(&s) & 1);
        if (keep) {
            if (mode == 2 && u->old_len && (splitmix(&s) % 4) == 0) {
                /* torn: a random prefix of the new bytes landed, the rest is old */
                size_t cut = (size_t)(splitmix(&s) % u->old_len);
                rc = io_write(in, u->old + cut, u->old_len - cut, u->off + cut);
            }
            continue;
        }
        if (u->old_len) rc = io_write(in, u->old, u->old_len, u->off);
        if (rc == STRATA_OK && u->len > u->old_len) {
            /* bytes past the old end of file: lost, read back as zeros */
            size_t z = u->len - u->old_len;
            uint8_t *zero = calloc(1, z);
            if (!zero) return STRATA_ENOMEM;
            rc = io_write(in, zero, z, u->off + u->old_len);
            free(zero);
        }
    }
    if (rc == STRATA_OK && mode == 0) rc = in->ops->set_len(in, f->synced_len);
    log_clear(f);
    return rc;
}
