/* tests/fuzz/fuzz_image.h - shared by the targets whose input is a database
 * file image (fuzz_open, fuzz_layers): fix up both commit slots' checksums
 * so the fuzzer gets past them, and write the image to a per-process file
 * under /dev/shm (or /tmp). */
#ifndef STRATA_FUZZ_IMAGE_H
#define STRATA_FUZZ_IMAGE_H

#include <fcntl.h>
#include <string.h>
#include <unistd.h>

#include "pager.h"
#include "fuzz_common.h"

/* Write data[0, size) with both slots' checksums made right for whatever
 * bytes they hold to a file named after tag and the process; returns its
 * path (static storage), or NULL when out of memory. */
static inline const char *fuzz_image_file(const uint8_t *data, size_t size, const char *tag) {
    static char path[96];
    const char *dir = access("/dev/shm", W_OK) == 0 ? "/dev/shm" : "/tmp";
    snprintf(path, sizeof path, "%s/strata-fuzz-%s-%d.db", dir, tag, (int)getpid());
    uint8_t *img = malloc(size ? size : 1);
    if (!img) return NULL;
    if (size) memcpy(img, data, size);
    if (size >= HDR_WRITE_LEN)
        for (int s = 0; s < 2; s++) {
            uint8_t *slot = img + (s ? HDR_OFF_SLOT1 : HDR_OFF_SLOT0);
            le64_put(slot + SLOT_OFF_CK, ck64_compute(slot, SLOT_OFF_CK));
        }
    int fd = open(path, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
    FUZZ_FAIL_IF(fd < 0, "cannot create %s", path);
    FUZZ_FAIL_IF(size && write(fd, img, size) != (ssize_t)size, "short write");
    close(fd);
    free(img);
    return path;
}

#endif
