// bench/fractal/hnsw_shim.cpp - hnswlib behind the C shim of ann_ext.h (L2).
#include <hnswlib/hnswlib.h>
#include "ann_ext.h"

struct hnsw_box { hnswlib::L2Space space; hnswlib::HierarchicalNSW<float> index;
    hnsw_box(int dim, size_t n, int m, int efc) : space(dim), index(&space, n, m, efc) {} };

extern "C" void *hnsw_new(int dim, size_t max_n, int m, int efc) { return new hnsw_box(dim, max_n, m, efc); }
extern "C" void hnsw_add(void *h, const float *v, uint64_t id) { static_cast<hnsw_box *>(h)->index.addPoint(v, id); }
extern "C" void hnsw_set_ef(void *h, int ef) { static_cast<hnsw_box *>(h)->index.setEf(ef); }
extern "C" size_t hnsw_search(void *h, const float *q, size_t k, uint64_t *ids)
{
    auto r = static_cast<hnsw_box *>(h)->index.searchKnn(q, k);
    size_t n = r.size();
    for (size_t i = n; i-- > 0;) { ids[i] = r.top().second; r.pop(); }
    return n;
}
extern "C" void hnsw_free(void *h) { delete static_cast<hnsw_box *>(h); }
