// bench/ann/others_hnsw.cpp - hnswlib (header-only) behind a C interface for bench_ann.
#include <hnswlib/hnswlib.h>

#include "others.h"

struct fh { hnswlib::L2Space *sp; hnswlib::HierarchicalNSW<float> *g; };

void *hnsw_build(size_t d, size_t n, const float *x, size_t m, size_t ef_construction)
{
    fh *h = new fh;
    h->sp = new hnswlib::L2Space(d);
    h->g = new hnswlib::HierarchicalNSW<float>(h->sp, n, m, ef_construction, 100);
    for (size_t i = 0; i < n; i++) h->g->addPoint(x + i * d, i);
    return h;
}

void hnsw_search(void *v, size_t ef, const float *q, size_t k, int64_t *labels)
{
    fh *h = static_cast<fh *>(v);
    h->g->setEf(ef);
    auto r = h->g->searchKnn(q, k);
    size_t i = r.size();
    for (size_t j = i; j < k; j++) labels[j] = -1;
    while (!r.empty()) { labels[--i] = (int64_t)r.top().second; r.pop(); }
}

size_t hnsw_bytes(void *v)
{
    fh *h = static_cast<fh *>(v);
    size_t n = h->g->cur_element_count, b = n * h->g->size_data_per_element_;
    for (size_t i = 0; i < n; i++)
        if (h->g->element_levels_[i] > 0)
            b += h->g->size_links_per_element_ * (size_t)h->g->element_levels_[i];
    return b;
}

void hnsw_free(void *v)
{
    fh *h = static_cast<fh *>(v);
    delete h->g;
    delete h->sp;
    delete h;
}
