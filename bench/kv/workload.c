/* bench/kv/workload.c - deterministic keys and values, clock, file helpers.
 *
 * Invariants (see bench_kv.h): key i depends only on (seed, i) and its first 8
 * bytes are mix64(seed-scrambled i), a bijection, so keys never collide; the
 * value depends only on the key bytes.
 */
#include "bench_kv.h"

#include <errno.h>
#include <ftw.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

/* splitmix64's output function: a bijection on 64-bit words. */
static uint64_t mix64(uint64_t z)
{
    z = (z ^ (z >> 30)) * UINT64_C(0xbf58476d1ce4e5b9);
    z = (z ^ (z >> 27)) * UINT64_C(0x94d049bb133111eb);
    return z ^ (z >> 31);
}

static void put64(uint8_t *p, uint64_t v)
{
    for (int i = 0; i < 8; i++)
        p[i] = (uint8_t)(v >> (8 * i));
}

static uint64_t get64(const uint8_t *p)
{
    uint64_t v = 0;
    for (int i = 7; i >= 0; i--)
        v = v << 8 | p[i];
    return v;
}

uint64_t kv_rand_next(uint64_t *state)
{
    *state += UINT64_C(0x9e3779b97f4a7c15);
    return mix64(*state);
}

void kv_key(uint64_t seed, uint64_t i, uint8_t key[KV_KEY_LEN])
{
    /* i + seed * odd constant is injective in i for a fixed seed. */
    uint64_t a = mix64(i + seed * UINT64_C(0xd1b54a32d192ed03));
    put64(key, a);
    put64(key + 8, mix64(a ^ UINT64_C(0x243f6a8885a308d3)));
    put64(key + 16, mix64(a ^ UINT64_C(0x13198a2e03707344)));
}

void kv_value(const uint8_t key[KV_KEY_LEN], uint8_t val[KV_VAL_LEN])
{
    uint64_t s = get64(key) ^ get64(key + 8) ^ get64(key + 16);
    uint8_t tail[8];
    size_t i = 0;
    for (; i + 8 <= KV_VAL_LEN; i += 8)
        put64(val + i, kv_rand_next(&s));
    if (i < KV_VAL_LEN) {
        put64(tail, kv_rand_next(&s));
        memcpy(val + i, tail, KV_VAL_LEN - i);
    }
}

int kv_value_ok(const uint8_t *k, size_t klen, const uint8_t *v, size_t vlen)
{
    uint8_t want[KV_VAL_LEN];
    if (klen != KV_KEY_LEN || vlen != KV_VAL_LEN)
        return 0;
    kv_value(k, want);
    return memcmp(want, v, KV_VAL_LEN) == 0;
}

double kv_now_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec * 1e3 + (double)ts.tv_nsec / 1e6;
}

/* nftw has no context argument; the walk runs on the driver thread only. */
static uint64_t g_walk_bytes;

static int walk_sum(const char *path, const struct stat *st, int type, struct FTW *ftw)
{
    (void)path;
    (void)ftw;
    if (type == FTW_F)
        g_walk_bytes += (uint64_t)st->st_size;
    return 0;
}

uint64_t kv_dir_bytes(const char *path)
{
    g_walk_bytes = 0;
    if (nftw(path, walk_sum, 16, FTW_PHYS) != 0)
        return UINT64_MAX;
    return g_walk_bytes;
}

static int walk_rm(const char *path, const struct stat *st, int type, struct FTW *ftw)
{
    (void)st;
    (void)ftw;
    int rc = (type == FTW_DP) ? rmdir(path) : unlink(path);
    if (rc != 0 && errno != ENOENT)
        fprintf(stderr, "bench_kv: cannot remove %s: %s\n", path, strerror(errno));
    return 0;
}

int kv_rm_rf(const char *path)
{
    return nftw(path, walk_rm, 16, FTW_DEPTH | FTW_PHYS) == 0 ? 0 : -1;
}

static int cmp_double(const void *a, const void *b)
{
    double x = *(const double *)a, y = *(const double *)b;
    return (x > y) - (x < y);
}

double kv_quantile(double *v, size_t n, double q)
{
    if (n == 0)
        return 0.0;
    qsort(v, n, sizeof *v, cmp_double);
    size_t i = (size_t)(q * (double)(n - 1) + 0.5);
    if (n % 2 == 0 && q == 0.5)
        return (v[n / 2 - 1] + v[n / 2]) / 2.0;
    return v[i < n ? i : n - 1];
}
