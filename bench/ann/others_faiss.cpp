// bench/ann/others_faiss.cpp - FAISS IndexIVFPQ behind a C interface for bench_ann.
#include <faiss/IndexFlat.h>
#include <faiss/IndexIVFPQ.h>
#include <omp.h>

#include "others.h"

struct fivf { faiss::IndexFlatL2 *q; faiss::IndexIVFPQ *ix; };

void *faiss_ivfpq_build(size_t d, size_t nlist, size_t m, size_t n_train, const float *xt,
                        size_t n, const float *x, uint64_t seed)
{
    omp_set_num_threads(1);
    fivf *f = new fivf;
    f->q = new faiss::IndexFlatL2((faiss::Index::idx_t)d);
    f->ix = new faiss::IndexIVFPQ(f->q, (faiss::Index::idx_t)d, nlist, m, 8);
    f->ix->cp.seed = (int)seed;
    f->ix->train((faiss::Index::idx_t)n_train, xt);
    f->ix->add((faiss::Index::idx_t)n, x);
    return f;
}

void faiss_ivfpq_search(void *h, size_t nprobe, const float *q, size_t k, int64_t *labels)
{
    fivf *f = static_cast<fivf *>(h);
    f->ix->nprobe = nprobe;
    std::vector<float> dist(k);
    f->ix->search(1, q, (faiss::Index::idx_t)k, dist.data(), labels);
}

size_t faiss_ivfpq_bytes(void *h)
{
    fivf *f = static_cast<fivf *>(h);
    size_t d = (size_t)f->ix->d;
    return (size_t)f->ix->ntotal * (f->ix->code_size + 8) + f->ix->nlist * d * 4 +
           f->ix->pq.centroids.size() * 4;
}

void faiss_ivfpq_free(void *h)
{
    fivf *f = static_cast<fivf *>(h);
    delete f->ix;
    delete f->q;
    delete f;
}
