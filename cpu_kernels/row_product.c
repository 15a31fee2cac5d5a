/* A few rows' int8 product through a prepared oneDNN primitive, in one call from Python: quantize
 * the rows, hand oneDNN the scale and the output's address, execute, wait; with several rows, scale
 * each output row and add the bias after (the primitive then has neither). A float32 product (a
 * float32 model's decoder step) only copies its rows into the primitive's source buffer: the
 * primitive reads packed rows, and adds the bias itself.
 *
 * Why: a greedy decoder step makes 24 of these (tiny.en), each ~20 us of oneDNN arithmetic behind
 * ~7 numpy calls and 2-3 ctypes calls of a few microseconds each (beam search: 5 rows, 2 more). The arithmetic here is
 * host_linear's numpy route step for step (|x|, max, max with tiny, / limit, reciprocal, x times it,
 * round half to even, + shift), each a single float32 operation, so the bytes oneDNN reads are the
 * same and so are the results, bit for bit (this file is built with -ffp-contract=off: the output's
 * scale and bias stay two roundings, as numpy's two passes). oneDNN is reached through the function pointers the
 * caller passes (this library links nothing).
 */
#include <math.h>
#include <stdint.h>
#include <string.h>

#include "macb_cpu.h"
#include "simd_helpers.h"
#include "team_internal.h"

typedef int32_t (*set_handle_fn)(void *memory, void *handle);
typedef int32_t (*execute_fn)(const void *primitive, void *stream, int32_t count, const void *args);
typedef int32_t (*wait_fn)(void *stream);

/* Returns the row's scale: max(max |x|, tiny) / limit. */
static INLINE float quantize_row(const float *restrict x, int64_t width, float tiny, float limit, float shift,
                                 uint8_t *restrict out) {
    float top = 0.0f;
    for (int64_t i = 0; i < width; i++) top = fabsf(x[i]) > top ? fabsf(x[i]) : top;
    const float scale = (top > tiny ? top : tiny) / limit;
    const float inverse = 1.0f / scale;
    for (int64_t i = 0; i < width; i++) out[i] = (uint8_t)(int32_t)(rintf(x[i] * inverse) + shift);
    return scale;
}

/* out[r][j] = out[r][j] * scales[r], then + bias[j]: two float32 roundings, as numpy's passes. */
static INLINE void scale_rows(float *restrict out, int64_t rows, int64_t width, const float *restrict scales,
                              const float *restrict bias) {
    for (int64_t r = 0; r < rows; r++) {
        float *restrict row = out + r * width;
        for (int64_t j = 0; j < width; j++) row[j] *= scales[r];
        if (bias != NULL)
            for (int64_t j = 0; j < width; j++) row[j] += bias[j];
    }
}

static int valid(const macb_cpu_row_product_args *a) {
    if (a->row == NULL || a->quantized == NULL || a->out == NULL || a->width < 1 || a->set_handle == NULL ||
        a->execute == NULL || a->wait == NULL || a->primitive == NULL || a->dst_memory == NULL || a->args == NULL ||
        a->arg_count < 1 || a->rows < 1 || a->rows > MACB_CPU_MAX_PRODUCT_ROWS || a->row_stride < a->width ||
        a->out_width < 1)
        return 0;
    return a->float_input || (a->scale_slot != NULL && a->limit > 0.0f);
}

MACB_CLONES
int32_t macb_cpu_row_product(const macb_cpu_row_product_args *a) {
    if (a == NULL || a->size < (int64_t)sizeof(macb_cpu_row_product_args) || !valid(a)) return MACB_CPU_BAD_ARGUMENT;
    float scales[MACB_CPU_MAX_PRODUCT_ROWS];
    if (a->float_input) {
        float *source = (float *)(void *)a->quantized;
        for (int64_t r = 0; r < a->rows; r++)
            memcpy(source + r * a->width, a->row + r * a->row_stride, (size_t)a->width * sizeof(float));
    } else {
        for (int64_t r = 0; r < a->rows; r++)
            scales[r] = quantize_row(a->row + r * a->row_stride, a->width, a->tiny, a->limit, a->shift,
                                     a->quantized + r * a->width);
        *a->scale_slot = a->rows == 1 ? scales[0] : 1.0f; /* several rows: their scales are applied below */
    }
    int32_t status = ((set_handle_fn)a->set_handle)(a->dst_memory, a->out);
    if (status == 0) status = ((execute_fn)a->execute)(a->primitive, a->stream, a->arg_count, a->args);
    if (status == 0) status = ((wait_fn)a->wait)(a->stream);
    if (status != 0) return MACB_CPU_ONEDNN_FAILED + status;
    if (a->rows > 1 && !a->float_input) scale_rows(a->out, a->rows, a->out_width, scales, a->bias);
    return MACB_CPU_OK;
}

static int32_t run_piece(void *context, int64_t index, int64_t worker) {
    (void)worker;
    const macb_cpu_pieces_args *a = context;
    macb_cpu_row_product_args *p = a->pieces[index];
    if (p == NULL || p->rows != a->row_count || a->columns[index] + p->out_width > a->out_width ||
        (a->row_count > 1 && a->blocks[index] == NULL))
        return MACB_CPU_BAD_ARGUMENT;
    p->row = a->rows;
    p->row_stride = a->row_stride;
    p->out = a->row_count == 1 ? a->out + a->columns[index] : a->blocks[index];
    const int32_t status = macb_cpu_row_product(p);
    if (status != MACB_CPU_OK || a->row_count == 1) return status;
    for (int64_t r = 0; r < a->row_count; r++) /* the piece's rows into their columns of the output */
        memcpy(a->out + r * a->out_width + a->columns[index], p->out + r * p->out_width,
               (size_t)p->out_width * sizeof(float));
    return MACB_CPU_OK;
}

int32_t macb_cpu_row_product_pieces(const macb_cpu_pieces_args *a) {
    if (a == NULL || a->size < (int64_t)sizeof(macb_cpu_pieces_args) || a->pieces == NULL || a->columns == NULL ||
        a->count < 1 || a->rows == NULL || a->out == NULL || a->row_count < 1 || a->out_width < 1 ||
        (a->row_count > 1 && a->blocks == NULL))
        return MACB_CPU_BAD_ARGUMENT;
    return team_run(a->team, run_piece, (void *)a, a->count);
}
