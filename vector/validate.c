/* vector/validate.c - the rule every stored or query vector must pass.
 *
 * Invariants:
 *  (1) A valid vector has only finite elements and a squared norm (summed in
 *      double, so the check itself cannot overflow) of at most VEC_MAX_NORM2 =
 *      FLT_MAX / 8.
 *  (2) Hence for valid a, b: |a - b|^2 <= 2|a|^2 + 2|b|^2 <= FLT_MAX / 2 and
 *      |a . b| <= |a||b| <= FLT_MAX / 8, and every partial sum is bounded the
 *      same way. The factor 2 below FLT_MAX absorbs the f32 rounding of the
 *      kernels' sums (relative error under 1e-3 even at STRATA_VEC_MAX_DIM):
 *      at FLT_MAX / 4, a and -a at the bound summed to Inf (dim 23). So L2,
 *      IP and cosine of valid vectors never overflow to Inf.
 */
#include <math.h>

#include "vector_int.h"

int vec_validate(const float *x, size_t dim)
{
    if (!x || dim == 0 || dim > STRATA_VEC_MAX_DIM) return STRATA_EINVAL;
    double s = 0.0;
    for (size_t i = 0; i < dim; i++) {
        if (!isfinite(x[i])) return STRATA_EINVAL;
        s += (double)x[i] * (double)x[i];
    }
    return s <= VEC_MAX_NORM2 ? STRATA_OK : STRATA_EINVAL;
}
