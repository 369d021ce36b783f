/* tests/fuzz/replay.c - replays fuzz inputs without libFuzzer (zstd's
 * regression_driver.c idea): main() calls LLVMFuzzerTestOneInput on every file
 * in the directories (or files) given, in name order, so CI runs the checked-in
 * corpus and every regression input under the normal gcc (and ASan) builds.
 * Fails when a path cannot be read or when no input was found at all. */
#include <dirent.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "fuzz_common.h"

static int run_file(const char *path) {
    FILE *f = fopen(path, "rb");
    if (!f) { fprintf(stderr, "replay: cannot open %s\n", path); return -1; }
    size_t cap = 1 << 16, n = 0;
    uint8_t *buf = malloc(cap);
    for (;;) {
        if (!buf) { fclose(f); return -1; }
        n += fread(buf + n, 1, cap - n, f);
        if (n < cap) break;
        uint8_t *nb = realloc(buf, cap * 2);
        if (!nb) { free(buf); fclose(f); return -1; }
        buf = nb;
        cap *= 2;
    }
    fclose(f);
    LLVMFuzzerTestOneInput(buf, n);
    free(buf);
    return 0;
}

static int by_name(const struct dirent **a, const struct dirent **b) {
    return strcmp((*a)->d_name, (*b)->d_name);
}

int main(int argc, char **argv) {
    long files = 0;
    for (int i = 1; i < argc; i++) {
        struct stat st;
        if (stat(argv[i], &st) != 0) { fprintf(stderr, "replay: no %s\n", argv[i]); return 1; }
        if (!S_ISDIR(st.st_mode)) {
            if (run_file(argv[i])) return 1;
            files++;
            continue;
        }
        struct dirent **list;
        int n = scandir(argv[i], &list, NULL, by_name);
        if (n < 0) { fprintf(stderr, "replay: cannot read %s\n", argv[i]); return 1; }
        for (int j = 0; j < n; j++) {
            char path[4096];
            snprintf(path, sizeof path, "%s/%s", argv[i], list[j]->d_name);
            struct stat fs;
            if (list[j]->d_name[0] != '.' && stat(path, &fs) == 0 && S_ISREG(fs.st_mode)) {
                if (run_file(path)) return 1;
                files++;
            }
            free(list[j]);
        }
        free(list);
    }
    printf("replay: %ld inputs, all passed\n", files);
    if (files == 0) { fprintf(stderr, "replay: no inputs found\n"); return 1; }
    return 0;
}
