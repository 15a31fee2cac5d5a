/* Host CPU kernels of mlx-audio-coreml (libmacb_cpu): plain C, no allocation, no threads.
 * Python loads the library with ctypes (python/mlx_audio_coreml/cpu/native_kernels.py) and checks
 * macb_cpu_abi_version() first. Structs start with their size so they can grow. */
#ifndef MACB_CPU_H
#define MACB_CPU_H

#include <stdint.h>

#define MACB_CPU_ABI_VERSION 6
#define MACB_CPU_EXPORT __attribute__((visibility("default")))
#define MACB_CPU_MAX_HEAD_DIM 256

enum { MACB_CPU_OK = 0, MACB_CPU_BAD_ARGUMENT = 1, MACB_CPU_ONEDNN_FAILED = 100 /* + oneDNN's status */ };

/* out[b, h] = softmax(q[b, h] . keys_t[b, h]) values[b, h] for each row b and head h, float32.
 * q[b, h] is head_dim floats at q + b * q_row_stride + h * head_dim (queries already scaled);
 * out[b, h] likewise with out_row_stride. A row's audio: keys_t (heads, head_dim, frames) and
 * values (heads, frames, head_dim), both contiguous, at b * audio_row_stride floats from the
 * start (0: every row reads the same audio, as beams of one window do). scratch: at least
 * `frames` floats; given 4 * frames, rows that share audio with head_dim 64 go four at a time,
 * reading each head's keys and values once for the four. Strides count floats.
 * Returns MACB_CPU_BAD_ARGUMENT (and writes nothing) for a null pointer, a size or count below 1,
 * head_dim above MACB_CPU_MAX_HEAD_DIM or too little scratch. */
typedef struct macb_cpu_attend_args {
    int64_t size; /* sizeof(macb_cpu_attend_args) */
    const float *q;
    const float *keys_t;
    const float *values;
    float *out;
    float *scratch;
    int64_t rows, heads, head_dim, frames;
    int64_t q_row_stride, out_row_stride, audio_row_stride, scratch_floats;
} macb_cpu_attend_args;

MACB_CPU_EXPORT int32_t macb_cpu_attend_rows(const macb_cpu_attend_args *args);

/* Self-attention of one new query row per beam against a decoder's cached keys and values:
 * out[b, h] = softmax(q[b, h] . keys[b, h, t]) values[b, h, t] over t < length. q and out as in
 * macb_cpu_attend_args; keys and values row-major (length, head_dim) per row and head, at
 * b * *_row_stride + h * *_head_stride floats from their start. scratch: `length` floats. */
typedef struct macb_cpu_attend_cache_args {
    int64_t size; /* sizeof(macb_cpu_attend_cache_args) */
    const float *q;
    const float *keys;
    const float *values;
    float *out;
    float *scratch;
    int64_t rows, heads, head_dim, length;
    int64_t q_row_stride, out_row_stride, keys_row_stride, keys_head_stride, values_row_stride, values_head_stride;
    int64_t scratch_floats;
} macb_cpu_attend_cache_args;

MACB_CPU_EXPORT int32_t macb_cpu_attend_cache(const macb_cpu_attend_cache_args *args);

/* Layer norm of each row: out[r] = (x[r] - mean) / sqrt(var + eps) * weight + bias, rows of
 * `width` floats at the given strides (out may be x). MACB_CPU_BAD_ARGUMENT for a null pointer,
 * a count below 1 or a negative eps. */
MACB_CPU_EXPORT int32_t macb_cpu_layer_norm_rows(const float *x, int64_t x_row_stride, float *out,
                                                 int64_t out_row_stride, int64_t rows, int64_t width,
                                                 const float *weight, const float *bias, float eps);

/* logsumexp of each row of logits (rows of `width` floats, row_stride apart), into out[rows] as
 * float64: top + log(sum exp(x - top)), top the row's maximum maxima[r] (taken as 0 when not
 * finite, so a row of -inf gives -inf). */
MACB_CPU_EXPORT int32_t macb_cpu_log_normalizers(const float *logits, int64_t rows, int64_t width,
                                                 int64_t row_stride, const float *maxima, double *out);

/* Exact (erf) GELU of `count` contiguous floats, in place. */
MACB_CPU_EXPORT int32_t macb_cpu_gelu(float *x, int64_t count);

/* A few rows' int8 product through a prepared oneDNN primitive (python/.../cpu/onednn_rows.py):
 * quantizes each of `rows` rows (width floats, row_stride apart) into `quantized` (the primitive's
 * source buffer, rows packed) as bytes rint(x / scale) + shift, scale = max(max |x|, tiny) / limit.
 * One row: its scale goes to `scale_slot` (the primitive's source scale; the primitive adds the
 * bias). Several: `scale_slot` gets 1, and after the run each out row (out_width floats) is
 * multiplied by its scale and `bias` (or NULL) added. Points `dst_memory` at `out`, executes,
 * waits; oneDNN's functions come as pointers: dnnl_memory_set_data_handle, dnnl_primitive_execute,
 * dnnl_stream_wait. Returns MACB_CPU_ONEDNN_FAILED + oneDNN's status when one of them fails. */
#define MACB_CPU_MAX_PRODUCT_ROWS 64
typedef struct macb_cpu_row_product_args {
    int64_t size; /* sizeof(macb_cpu_row_product_args) */
    const float *row;
    int64_t rows, width, row_stride, out_width;
    uint8_t *quantized;
    float *scale_slot;
    float *out;
    const float *bias;
    float tiny, limit, shift;
    int32_t arg_count;
    void *set_handle, *execute, *wait;
    void *primitive, *stream, *dst_memory;
    const void *args;
} macb_cpu_row_product_args;

MACB_CPU_EXPORT int32_t macb_cpu_int8_row_product(const macb_cpu_row_product_args *args);

MACB_CPU_EXPORT int32_t macb_cpu_abi_version(void);

#endif
