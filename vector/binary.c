/* vector/binary.c - binary quantizer: 1 bit per dimension (docs/VECTORS.md "binary").
 *
 * Invariants:
 *  (1) Dimension i is bit (i % 64) of word (i / 64), least significant bit
 *      first; the bit is 1 iff x[i] > 0 (so -0.0 and +0.0 both give 0).
 *  (2) The bits of the last word past dim are 0, so Hamming distances of codes
 *      of the same dim count only real dimensions.
 */
#include "vector_int.h"

void vec_bin_encode(const float *x, size_t dim, uint64_t *code)
{
    size_t nw = vec_bin_words(dim);
    for (size_t w = 0; w < nw; w++) {
        uint64_t v = 0;
        size_t end = (w + 1) * 64 < dim ? (w + 1) * 64 : dim;
        for (size_t i = w * 64; i < end; i++) v |= (uint64_t)(x[i] > 0.0f) << (i % 64);
        code[w] = v;
    }
}
