/* bench/fractal/ann_ext.h - C shims over the optional C++ baselines of the
 * drift benchmark: hnswlib (built incrementally) and FAISS IndexIVFPQ. */
#ifndef BENCH_FRACTAL_ANN_EXT_H
#define BENCH_FRACTAL_ANN_EXT_H
#include <stddef.h>
#include <stdint.h>
#ifdef __cplusplus
extern "C" {
#endif
void  *hnsw_new(int dim, size_t max_n, int m, int ef_construction);
void   hnsw_add(void *h, const float *v, uint64_t id);
void   hnsw_set_ef(void *h, int ef);
size_t hnsw_search(void *h, const float *q, size_t k, uint64_t *ids);
void   hnsw_free(void *h);
void  *faiss_ivfpq_new(int dim, int nlist, int m);
void   faiss_ivfpq_train(void *h, size_t n, const float *x);
void   faiss_ivfpq_add(void *h, size_t n, const float *x, const uint64_t *ids);
void   faiss_ivfpq_set_nprobe(void *h, int nprobe);
size_t faiss_ivfpq_search(void *h, const float *q, size_t k, uint64_t *ids);
void   faiss_ivfpq_free(void *h);
#ifdef __cplusplus
}
#endif
#endif
