/* tests/fuzz/fuzz_common.h - shared by the fuzz targets: the entry point
 * prototype and a hard failure that libFuzzer and the replay driver both
 * report (abort: a crash with a stack trace under the sanitizers). */
#ifndef STRATA_FUZZ_COMMON_H
#define STRATA_FUZZ_COMMON_H

#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

/* A broken promise: print why and abort. */
#define FUZZ_FAIL_IF(cond, ...)                                                  \
    do {                                                                         \
        if (cond) {                                                              \
            fprintf(stderr, "%s:%d: %s: ", __FILE__, __LINE__, #cond);           \
            fprintf(stderr, __VA_ARGS__);                                        \
            fputc('\n', stderr);                                                 \
            abort();                                                             \
        }                                                                        \
    } while (0)

#endif
