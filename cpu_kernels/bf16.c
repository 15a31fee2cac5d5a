/* float32 -> bfloat16, rounded to nearest even, for the CPU encoder's attention products in bf16
 * (python/mlx_audio_coreml/cpu/attention.py says why and where).
 *
 * Why in C: numpy has no bfloat16; its integer route (add, shift, narrow) took 23 ms for one
 * head's 3 blocks of (500 x 1500) scores here, longer than the products it feeds. NaN stays a
 * quiet NaN with its sign; values past bfloat16's largest finite one round to infinity, as IEEE
 * rounding does.
 */
#include <stdint.h>
#include <string.h>

#include "macb_cpu.h"
#include "simd_helpers.h"

static INLINE uint16_t bf16_nearest_even(float x) {
    uint32_t bits;
    memcpy(&bits, &x, sizeof bits);
    if ((bits & 0x7fffffffu) > 0x7f800000u) return (uint16_t)((bits >> 16) | 0x0040u);
    bits += 0x7fffu + ((bits >> 16) & 1u);
    return (uint16_t)(bits >> 16);
}

MACB_CLONES
int32_t macb_cpu_to_bf16(const float *src, int64_t src_row_stride, uint16_t *dst, int64_t dst_row_stride,
                         int64_t rows, int64_t cols) {
    if (src == NULL || dst == NULL || rows < 1 || cols < 1 || src_row_stride < cols || dst_row_stride < cols)
        return MACB_CPU_BAD_ARGUMENT;
    for (int64_t r = 0; r < rows; r++) {
        const float *in = src + r * src_row_stride;
        uint16_t *out = dst + r * dst_row_stride;
        for (int64_t c = 0; c < cols; c++) out[c] = bf16_nearest_even(in[c]);
    }
    return MACB_CPU_OK;
}
