/* Row-wise operations of a decoder step: layer norm and exact (erf) GELU, float32.
 *
 * Why in C: a one-token decoder step calls them on one row per beam (384 or 1536 floats for
 * tiny.en), 13 layer norms and 4 GELUs a step. numpy spends ~6 calls of a few microseconds each on a
 * layer norm, oneDNN's GELU primitive ~10-30 us of call overhead; the work itself is ~1 us here.
 * Same formulas as host_math's numpy route; sums in 16 partial lanes, so results agree with it to
 * float32 rounding, not bit for bit.
 */
#include <math.h>
#include <stdint.h>
#include <string.h>

#include "macb_cpu.h"
#include "simd_helpers.h"

static INLINE float sum_squares_lanes(const float *restrict x, int64_t n) {
    float lanes[LANES] = {0.0f}, total = 0.0f;
    int64_t whole = n - n % LANES, i = 0;
    for (; i < whole; i += LANES)
        for (int l = 0; l < LANES; l++) lanes[l] += x[i + l] * x[i + l];
    for (; i < n; i++) total += x[i] * x[i];
    for (int l = 0; l < LANES; l++) total += lanes[l];
    return total;
}

MACB_CLONES
int32_t macb_cpu_layer_norm_rows(const float *x, int64_t x_row_stride, float *out, int64_t out_row_stride,
                                 int64_t rows, int64_t width, const float *weight, const float *bias, float eps) {
    if (x == NULL || out == NULL || weight == NULL || bias == NULL || rows < 1 || width < 1 || !(eps >= 0.0f))
        return MACB_CPU_BAD_ARGUMENT;
    for (int64_t r = 0; r < rows; r++) {
        const float *row = x + r * x_row_stride;
        float *restrict result = out + r * out_row_stride;
        const float mean = sum_lanes(row, width) / (float)width;
        for (int64_t i = 0; i < width; i++) result[i] = row[i] - mean; /* in place when out == x */
        const float scale = 1.0f / sqrtf(sum_squares_lanes(result, width) / (float)width + eps);
        for (int64_t i = 0; i < width; i++) result[i] = result[i] * scale * weight[i] + bias[i];
    }
    return MACB_CPU_OK;
}

/* erf(z) for z >= 0: Abramowitz and Stegun 7.1.26 (error below 1.5e-7), as host_math's numpy route. */
static INLINE float erf_nonnegative(float z) {
    const float t = 1.0f / (1.0f + 0.3275911f * z);
    float poly = 1.061405429f;
    poly = poly * t - 1.453152027f;
    poly = poly * t + 1.421413741f;
    poly = poly * t - 0.284496736f;
    poly = poly * t + 0.254829592f;
    return 1.0f - poly * t * exp_nonpositive(-z * z);
}

MACB_CLONES
int32_t macb_cpu_gelu(float *x, int64_t count) {
    if (x == NULL || count < 0) return MACB_CPU_BAD_ARGUMENT;
    const float inv_sqrt2 = 0.70710678118654752f;
    for (int64_t i = 0; i < count; i++) {
        const float v = x[i], z = fabsf(v) * inv_sqrt2, e = erf_nonnegative(z);
        x[i] = v * 0.5f * (1.0f + (v < 0.0f ? -e : e));
    }
    return MACB_CPU_OK;
}
