/* pager/io.h - the I/O backend seam: every byte the pager writes, every sync and
 * every length change goes through an io_backend (SQLite's VFS idea; redb's
 * StorageBackend). Reads go through the read-only map the backend provides.
 * Backends: file (pread/pwrite/fdatasync on a locked fd), memory (an anonymous
 * memfd: a database that never touches disk), fault (wraps another backend and
 * fails or "loses" operations on command, for tests).
 * Invariants: (1) a backend never writes through the map; (2) the map, once made,
 * never moves until unmap; (3) every function returns a STRATA_* code. */
#ifndef STRATA_PAGER_IO_H
#define STRATA_PAGER_IO_H

#include <stddef.h>
#include <stdint.h>
#include <sys/uio.h>

typedef struct io_backend io_backend;

typedef struct io_ops {
    int  (*pwritev)(io_backend *io, const struct iovec *iov, int n, uint64_t off);
    int  (*pread)(io_backend *io, void *buf, size_t len, uint64_t off);
    int  (*sync)(io_backend *io);
    int  (*set_len)(io_backend *io, uint64_t len);
    int  (*get_len)(io_backend *io, uint64_t *len);
    int  (*map)(io_backend *io, size_t len, const uint8_t **out);
    void (*unmap)(io_backend *io, const uint8_t *base, size_t len);
    void (*close)(io_backend *io);
    /* Optional (may be NULL): start writing [off, off + len) back to the device
     * without waiting, so a later sync has less to do. A hint: no error, no
     * durability promise. */
    void (*start_writeback)(io_backend *io, uint64_t off, uint64_t len);
} io_ops;

struct io_backend {
    const io_ops *ops;
    int sys_errno;               /* errno of the last failed system call, for messages */
};

#define IO_OPEN_CREATE  0x1
#define IO_OPEN_RDONLY  0x2

/* Open path. Takes an exclusive (or, read-only, shared) lock on the file:
 * STRATA_EBUSY if another handle holds it. STRATA_NOTFOUND if absent and not CREATE. */
int  io_file_open(const char *path, int flags, io_backend **out);
/* fsync the directory holding path, so a file just created there survives a
 * power loss (its content is the file's own fsync's job). A file system that
 * cannot sync a directory (EINVAL), or a directory the caller may not read
 * (EACCES at open: it cannot be synced at all), counts as success. */
int  io_sync_dir_of(const char *path);
/* A database in memory (memfd). */
int  io_mem_open(io_backend **out);
static inline int io_write(io_backend *io, const void *buf, size_t len, uint64_t off) {
    struct iovec v = { (void *)buf, len };
    return io->ops->pwritev(io, &v, 1, off);
}
void io_close(io_backend *io);   /* NULL-safe */

/* ---- fault injection (pager/io_fault.c) ---- */
enum { FAULT_WRITE = 0, FAULT_SYNC = 1, FAULT_SET_LEN = 2, FAULT_MAP = 3, FAULT_KINDS = 4 };

/* Wrap inner (ownership moves to the fault backend). */
int  io_fault_wrap(io_backend *inner, io_backend **out);
/* Fail the n-th (0-based, counted from now) operation of `kind` with err
 * (STRATA_EIO or STRATA_ENOSPC); persistent: every later one fails too. */
void io_fault_arm(io_backend *io, int kind, long n, int err, int persistent);
void io_fault_disarm(io_backend *io);
/* Operations of each kind seen since wrap (for counting crash points). */
long io_fault_count(const io_backend *io, int kind);
/* Simulate power loss: every write since the last successful sync is undone
 * or torn. mode 0: drop all; 1: keep a random subset; 2: random subset with
 * torn writes (a random prefix of a page reaches the disk). Deterministic in seed.
 * Call after the database handle is gone; then reopen the file. */
int  io_fault_crash(io_backend *io, uint64_t seed, int mode);

#endif
