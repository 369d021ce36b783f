/* bench/vec/faiss_flat.h - a C view of FAISS IndexFlatL2 / IndexFlatIP for
 * bench_vec (implemented in faiss_flat.cpp; built only when FAISS is found).
 */
#ifndef STRATA_BENCH_FAISS_FLAT_H
#define STRATA_BENCH_FAISS_FLAT_H

#include <stddef.h>
#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

typedef struct bfaiss bfaiss;

/* Pin FAISS's OpenMP pool (and OpenBLAS, via OMP) to one thread. */
void    bfaiss_single_thread(void);
/* A flat index of dim; ip != 0: IndexFlatIP, else IndexFlatL2. NULL on error. */
bfaiss *bfaiss_new(size_t dim, int ip);
/* Copy n vectors into the index. 0 on success. */
int     bfaiss_add(bfaiss *f, size_t n, const float *x);
/* k nearest of nq queries: distances and labels, nq*k each. 0 on success.
 * FAISS reports L2 as squared L2 and IP as the raw dot (larger is nearer). */
int     bfaiss_search(bfaiss *f, size_t nq, const float *q, size_t k, float *dist,
                      int64_t *labels);
void    bfaiss_free(bfaiss *f);

#ifdef __cplusplus
}
#endif
#endif
