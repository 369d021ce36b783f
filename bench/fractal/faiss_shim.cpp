// bench/fractal/faiss_shim.cpp - FAISS IndexIVFPQ behind the C shim of ann_ext.h.
#include <faiss/IndexFlat.h>
#include <faiss/IndexIVFPQ.h>
#include <vector>
#include "ann_ext.h"

struct fbox { faiss::IndexFlatL2 q; faiss::IndexIVFPQ ix;
    fbox(int d, int nlist, int m) : q(d), ix(&q, d, nlist, m, 8) {} };

extern "C" void *faiss_ivfpq_new(int dim, int nlist, int m) { return new fbox(dim, nlist, m); }
extern "C" void faiss_ivfpq_train(void *h, size_t n, const float *x) { static_cast<fbox *>(h)->ix.train(n, x); }
extern "C" void faiss_ivfpq_add(void *h, size_t n, const float *x, const uint64_t *ids)
{
    std::vector<faiss::Index::idx_t> v(ids, ids + n);
    static_cast<fbox *>(h)->ix.add_with_ids(n, x, v.data());
}
extern "C" void faiss_ivfpq_set_nprobe(void *h, int nprobe) { static_cast<fbox *>(h)->ix.nprobe = nprobe; }
extern "C" size_t faiss_ivfpq_search(void *h, const float *q, size_t k, uint64_t *ids)
{
    std::vector<float> d(k);
    std::vector<faiss::Index::idx_t> l(k);
    static_cast<fbox *>(h)->ix.search(1, q, k, d.data(), l.data());
    size_t n = 0;
    for (size_t i = 0; i < k; i++) if (l[i] >= 0) ids[n++] = (uint64_t)l[i];
    return n;
}
extern "C" void faiss_ivfpq_free(void *h) { delete static_cast<fbox *>(h); }
