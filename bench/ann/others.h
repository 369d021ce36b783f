/* bench/ann/others.h - C interface to the C++ reference libraries used by
 * bench_ann: FAISS IndexIVFPQ (others_faiss.cpp) and hnswlib (others_hnsw.cpp). */
#ifndef STRATA_BENCH_ANN_OTHERS_H
#define STRATA_BENCH_ANN_OTHERS_H
#include <stddef.h>
#include <stdint.h>
#ifdef __cplusplus
extern "C" {
#endif
/* FAISS IndexIVFPQ (L2, 8-bit codes), one OpenMP thread. */
void  *faiss_ivfpq_build(size_t d, size_t nlist, size_t m, size_t n_train, const float *xt,
                         size_t n, const float *x, uint64_t seed);
void   faiss_ivfpq_search(void *h, size_t nprobe, const float *q, size_t k, int64_t *labels);
size_t faiss_ivfpq_bytes(void *h);   /* codes + ids + centroids + codebooks */
void   faiss_ivfpq_free(void *h);
/* hnswlib HierarchicalNSW<float>, L2. */
void  *hnsw_build(size_t d, size_t n, const float *x, size_t m, size_t ef_construction);
void   hnsw_search(void *h, size_t ef, const float *q, size_t k, int64_t *labels);
size_t hnsw_bytes(void *h);          /* vectors + graph links */
void   hnsw_free(void *h);
#ifdef __cplusplus
}
#endif
#endif
