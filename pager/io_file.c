/* pager/io_file.c - file and memory backends on a file descriptor.
 * Invariants: (1) the fd is locked (flock) for the backend's lifetime, exclusive
 * unless read-only, so a second open of the same file in any process gets
 * STRATA_EBUSY; (2) short writes and EINTR are retried; ENOSPC maps to
 * STRATA_ENOSPC and every other failure to STRATA_EIO, errno kept in sys_errno;
 * (3) a file io_file_open creates has its directory fsync'd before it returns,
 * so the name of a database whose first commit was durable survives a power loss. */
#include <errno.h>
#include <fcntl.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#include "strata.h"
#include "io.h"

typedef struct io_fd {
    io_backend base;
    int fd;
} io_fd;

static int err_of(io_backend *io, int e) {
    io->sys_errno = e;
    return e == ENOSPC || e == EDQUOT || e == EFBIG ? STRATA_ENOSPC : STRATA_EIO;
}

static int fd_pwritev(io_backend *io, const struct iovec *iov, int n, uint64_t off) {
    io_fd *f = (io_fd *)io;
    struct iovec local[64];
    while (n > 0) {
        int take = n < 64 ? n : 64;
        size_t want = 0;
        for (int i = 0; i < take; i++) { local[i] = iov[i]; want += iov[i].iov_len; }
        struct iovec *v = local;
        int vn = take;
        while (want > 0) {
            ssize_t w = pwritev(f->fd, v, vn, (off_t)off);
            if (w < 0) {
                if (errno == EINTR) continue;
                return err_of(io, errno);
            }
            if (w == 0) return err_of(io, EIO);
            want -= (size_t)w; off += (uint64_t)w;
            while (vn > 0 && (size_t)w >= v->iov_len) { w -= (ssize_t)v->iov_len; v++; vn--; }
            if (vn > 0) { v->iov_base = (uint8_t *)v->iov_base + w; v->iov_len -= (size_t)w; }
        }
        iov += take; n -= take;
    }
    return STRATA_OK;
}

static int fd_pread(io_backend *io, void *buf, size_t len, uint64_t off) {
    io_fd *f = (io_fd *)io;
    uint8_t *p = buf;
    while (len > 0) {
        ssize_t r = pread(f->fd, p, len, (off_t)off);
        if (r < 0) {
            if (errno == EINTR) continue;
            return err_of(io, errno);
        }
        if (r == 0) return STRATA_ECORRUPT;     /* past end of file: truncated */
        p += r; len -= (size_t)r; off += (uint64_t)r;
    }
    return STRATA_OK;
}

static int fd_sync(io_backend *io) {
    io_fd *f = (io_fd *)io;
    while (fdatasync(f->fd) != 0) {
        if (errno != EINTR) return err_of(io, errno);
    }
    return STRATA_OK;
}

static int fd_set_len(io_backend *io, uint64_t len) {
    io_fd *f = (io_fd *)io;
    while (ftruncate(f->fd, (off_t)len) != 0) {
        if (errno != EINTR) return err_of(io, errno);
    }
    return STRATA_OK;
}

static int fd_get_len(io_backend *io, uint64_t *len) {
    io_fd *f = (io_fd *)io;
    struct stat st;
    if (fstat(f->fd, &st) != 0) return err_of(io, errno);
    *len = (uint64_t)st.st_size;
    return STRATA_OK;
}

static int fd_map(io_backend *io, size_t len, const uint8_t **out) {
    io_fd *f = (io_fd *)io;
    void *p = mmap(NULL, len, PROT_READ, MAP_SHARED | MAP_NORESERVE, f->fd, 0);
    /* ENOMEM, or EINVAL from tools like valgrind: the range is too large here */
    if (p == MAP_FAILED) return errno == ENOMEM || errno == EINVAL ? STRATA_ENOMEM : err_of(io, errno);
    (void)madvise(p, len, MADV_RANDOM);
    *out = p;
    return STRATA_OK;
}

static void fd_unmap(io_backend *io, const uint8_t *base, size_t len) {
    (void)io;
    if (base) munmap((void *)base, len);
}

static void fd_close(io_backend *io) {
    io_fd *f = (io_fd *)io;
    if (f->fd >= 0) close(f->fd);    /* closing releases the flock */
    free(f);
}

static void fd_start_writeback(io_backend *io, uint64_t off, uint64_t len) {
#ifdef SYNC_FILE_RANGE_WRITE
    (void)sync_file_range(((io_fd *)io)->fd, (off_t)off, (off_t)len, SYNC_FILE_RANGE_WRITE);
#else
    (void)io; (void)off; (void)len;
#endif
}

static const io_ops fd_ops = {
    fd_pwritev, fd_pread, fd_sync, fd_set_len, fd_get_len, fd_map, fd_unmap, fd_close,
    fd_start_writeback,
};

int io_sync_dir_of(const char *path) {
    size_t n = strlen(path);
    while (n > 0 && path[n - 1] != '/') n--;          /* keep the last '/' */
    while (n > 1 && path[n - 1] == '/') n--;          /* "a//b" -> "a", "/b" -> "/" */
    char *dir = malloc(n ? n + 1 : 2);
    if (!dir) return STRATA_ENOMEM;
    if (n) memcpy(dir, path, n), dir[n] = 0;
    else dir[0] = '.', dir[1] = 0;
    int fd = open(dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    free(dir);
    /* EACCES: a directory the caller may write but not read (mode 0733) cannot
     * be opened to be synced; creating a file there worked before the sync
     * existed, so it is no reason to refuse (SQLite does the same) */
    if (fd < 0) return errno == EACCES ? STRATA_OK : errno == ENOMEM ? STRATA_ENOMEM : STRATA_EIO;
    int rc = STRATA_OK;
    /* EINVAL: the file system cannot sync a directory (nothing to make durable) */
    if (fsync(fd) != 0 && errno != EINVAL) rc = STRATA_EIO;
    close(fd);
    return rc;
}

int io_file_open(const char *path, int flags, io_backend **out) {
    int oflags = O_CLOEXEC | ((flags & IO_OPEN_RDONLY) ? O_RDONLY : O_RDWR);
    int created = 0, fd = -1;
    if (flags & IO_OPEN_CREATE) {
        /* exclusive first: a file this call creates gets its directory entry synced */
        fd = open(path, oflags | O_CREAT | O_EXCL, 0644);
        if (fd >= 0) created = 1;
        else if (errno != EEXIST) goto fail;
    }
    if (fd < 0) fd = open(path, oflags, 0644);
    if (fd < 0 && errno == ENOENT && (flags & IO_OPEN_CREATE)) {
        /* EEXIST, then gone: a dangling symlink (O_EXCL never follows one;
         * a plain create makes its target) or a file removed in between */
        fd = open(path, oflags | O_CREAT, 0644);
        created = fd >= 0;
    }
    if (fd < 0) goto fail;
    if (flock(fd, ((flags & IO_OPEN_RDONLY) ? LOCK_SH : LOCK_EX) | LOCK_NB) != 0) {
        int e = errno;
        close(fd);
        return e == EWOULDBLOCK ? STRATA_EBUSY : STRATA_EIO;
    }
    int rc;   /* synced under the lock: no other handle can be using a file we remove */
    if (created && (rc = io_sync_dir_of(path)) != STRATA_OK) {
        unlink(path);
        close(fd);
        return rc;
    }
    io_fd *f = calloc(1, sizeof *f);
    if (!f) { close(fd); return STRATA_ENOMEM; }
    f->base.ops = &fd_ops;
    f->fd = fd;
    *out = &f->base;
    return STRATA_OK;
fail:
    if (errno == ENOENT) return STRATA_NOTFOUND;
    if (errno == ENOMEM) return STRATA_ENOMEM;
    return STRATA_EIO;
}

int io_mem_open(io_backend **out) {
    int fd = memfd_create("strata-mem", MFD_CLOEXEC);
    /* EACCES: a directory the caller may write but not read (mode 0733) cannot
     * be opened to be synced; creating a file there worked before the sync
     * existed, so it is no reason to refuse (SQLite does the same) */
    if (fd < 0) return errno == EACCES ? STRATA_OK : errno == ENOMEM ? STRATA_ENOMEM : STRATA_EIO;
    io_fd *f = calloc(1, sizeof *f);
    if (!f) { close(fd); return STRATA_ENOMEM; }
    f->base.ops = &fd_ops;
    f->fd = fd;
    *out = &f->base;
    return STRATA_OK;
}

void io_close(io_backend *io) {
    if (io) io->ops->close(io);
}
