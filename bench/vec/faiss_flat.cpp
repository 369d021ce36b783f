// bench/vec/faiss_flat.cpp - the FAISS side of bench_vec: a thin C wrapper over
// faiss::IndexFlatL2 / IndexFlatIP (C++ API of libfaiss-dev). Exceptions never
// cross into C: every entry catches and reports failure.
#include "faiss_flat.h"

#include <faiss/IndexFlat.h>
#include <omp.h>

#include <new>

struct bfaiss {
    faiss::IndexFlat *index;
};

extern "C" void bfaiss_single_thread(void)
{
    omp_set_num_threads(1);
}

extern "C" bfaiss *bfaiss_new(size_t dim, int ip)
{
    try {
        bfaiss *f = new bfaiss;
        if (ip)
            f->index = new faiss::IndexFlatIP((faiss::Index::idx_t)dim);
        else
            f->index = new faiss::IndexFlatL2((faiss::Index::idx_t)dim);
        return f;
    } catch (...) {
        return nullptr;
    }
}

extern "C" int bfaiss_add(bfaiss *f, size_t n, const float *x)
{
    try {
        f->index->add((faiss::Index::idx_t)n, x);
        return 0;
    } catch (...) {
        return -1;
    }
}

extern "C" int bfaiss_search(bfaiss *f, size_t nq, const float *q, size_t k, float *dist,
                             int64_t *labels)
{
    static_assert(sizeof(faiss::Index::idx_t) == sizeof(int64_t), "idx_t is 64-bit");
    try {
        f->index->search((faiss::Index::idx_t)nq, q, (faiss::Index::idx_t)k, dist,
                         reinterpret_cast<faiss::Index::idx_t *>(labels));
        return 0;
    } catch (...) {
        return -1;
    }
}

extern "C" void bfaiss_free(bfaiss *f)
{
    if (!f) return;
    delete f->index;
    delete f;
}
