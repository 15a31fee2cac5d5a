/* Host CPU kernels of mlx-audio-coreml (libmacb_cpu): plain C, no allocation, no threads.
 * Python loads the library with ctypes (python/mlx_audio_coreml/cpu/native_kernels.py) and checks
 * macb_cpu_abi_version() first. Structs start with their size so they can grow. */
#ifndef MACB_CPU_H
#define MACB_CPU_H

#include <stdint.h>

#define MACB_CPU_ABI_VERSION 12
#define MACB_CPU_EXPORT __attribute__((visibility("default")))
#define MACB_CPU_MAX_HEAD_DIM 256

enum {
    MACB_CPU_OK = 0,
    MACB_CPU_BAD_ARGUMENT = 1,
    MACB_CPU_HAS_NAN = 2,
    MACB_CPU_UNSUPPORTED = 3,  /* this CPU lacks what the call needs (float16 audio: F16C, AVX2, FMA) */
    MACB_CPU_OUT_OF_RANGE = 4, /* a value float16 cannot hold (macb_cpu_to_half) */
    MACB_CPU_ONEDNN_FAILED = 100 /* + oneDNN's status */
};

/* out[b, h] = softmax(q[b, h] . keys_t[b, h]) values[b, h] for each row b and head h, float32.
 * q[b, h] is head_dim floats at q + b * q_row_stride + h * head_dim (queries already scaled);
 * out[b, h] likewise with out_row_stride. A row's audio: keys_t (heads, head_dim, frames) and
 * values (heads, frames, head_dim), both contiguous, at b * audio_row_stride floats from the
 * start (0: every row reads the same audio, as beams of one window do). scratch: at least
 * `frames` floats; given 4 * frames, rows that share audio with head_dim 64 go four at a time,
 * reading each head's keys and values once for the four. Strides count floats.
 * audio_half: keys_t and values hold float16 bits (uint16_t, IEEE binary16) instead of floats, and
 * audio_row_stride counts those; head_dim must be 64 (MACB_CPU_BAD_ARGUMENT otherwise) and the CPU
 * able (macb_cpu_half_supported; MACB_CPU_UNSUPPORTED otherwise). The arithmetic is the float32
 * kernel's on the widened values.
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
    int64_t audio_half;
} macb_cpu_attend_args;

MACB_CPU_EXPORT int32_t macb_cpu_attend_rows(const macb_cpu_attend_args *args);

/* 1 where macb_cpu_attend_rows takes float16 audio on this CPU (x86-64 with F16C, AVX2 and FMA;
 * AArch64), else 0. */
MACB_CPU_EXPORT int32_t macb_cpu_half_supported(void);

/* dst[i] = src[i] as float16 bits, rounded to nearest even (numpy's astype(float16) bit for bit).
 * MACB_CPU_OUT_OF_RANGE where a value is not finite or rounds past float16's largest (65504): the
 * caller keeps float32 then (dst is left partly written). MACB_CPU_UNSUPPORTED as above. */
MACB_CPU_EXPORT int32_t macb_cpu_to_half(const float *src, uint16_t *dst, int64_t count);

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

/* Beam search's candidates: each row's k largest logits (rows as above), largest first and equal
 * values in id order (a stable descending sort's first k), into ids and values (rows x k), and the
 * row's logsumexp into normalizers, as macb_cpu_log_normalizers with the row's largest value.
 * MACB_CPU_HAS_NAN when a row holds NaN (the outputs are then not to be read). */
#define MACB_CPU_MAX_TOP 64
MACB_CPU_EXPORT int32_t macb_cpu_top_logprobs(const float *logits, int64_t rows, int64_t width, int64_t row_stride,
                                              int64_t k, int64_t *ids, float *values, double *normalizers);

/* Exact (erf) GELU of `count` contiguous floats, in place. */
MACB_CPU_EXPORT int32_t macb_cpu_gelu(float *x, int64_t count);

/* A few rows' product through a prepared oneDNN primitive (python/.../cpu/onednn_rows.py).
 * int8 (float_input 0): quantizes each of `rows` rows (width floats, row_stride apart) into
 * `quantized` (the primitive's source buffer, rows packed) as bytes rint(x / scale) + shift,
 * scale = max(max |x|, tiny) / limit. One row: its scale goes to `scale_slot` (the primitive's
 * source scale; the primitive adds the bias). Several: `scale_slot` gets 1, and after the run each
 * out row (out_width floats) is multiplied by its scale and `bias` (or NULL) added.
 * float32 (float_input 1): the rows are copied, packed, into `quantized` (then a float32 buffer);
 * the primitive adds the bias; scale_slot, bias, tiny, limit and shift are not read.
 * Then points `dst_memory` at `out`, executes, waits; oneDNN's functions come as pointers:
 * dnnl_memory_set_data_handle, dnnl_primitive_execute, dnnl_stream_wait. Returns
 * MACB_CPU_ONEDNN_FAILED + oneDNN's status when one of them fails. */
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
    int32_t float_input;
} macb_cpu_row_product_args;

MACB_CPU_EXPORT int32_t macb_cpu_row_product(const macb_cpu_row_product_args *args);

/* A team: the calling thread and helper threads that wait in macb_cpu_team_serve share the pieces
 * of the kernels given it (cpu_kernels/team.c). The caller's memory, zeroed, with `size` set;
 * opened (macb_cpu_team_open, before helpers are sent in) with the count of workers the kernels'
 * scratch has room for, the caller included; closed (macb_cpu_team_close) to send helpers out.
 * A helper still inside when the team is opened again stays, with its worker number. The memory
 * must outlive every helper's call. Fields are the library's. */
typedef struct macb_cpu_team {
    int64_t size; /* sizeof(macb_cpu_team) */
    uint64_t claim;
    int64_t finished, busy, workers; /* busy: a bit per worker number a helper holds */
    int32_t closed, status;
    void *piece, *context;
    uint32_t wake;
    int32_t sleepers;
    int64_t waited_ns; /* how long the caller waited for pieces a helper ran (the caller may reset it) */
} macb_cpu_team;

MACB_CPU_EXPORT int32_t macb_cpu_team_open(macb_cpu_team *team, int64_t workers);
MACB_CPU_EXPORT int32_t macb_cpu_team_close(macb_cpu_team *team);
/* A helper's side: take pieces until the team is closed (or none came for `idle_ns`); between
 * pieces spin for `spin_ns`, then sleep until the caller publishes a job. Returns at once for a
 * worker past the team's count. */
MACB_CPU_EXPORT int32_t macb_cpu_team_serve(macb_cpu_team *team, int64_t spin_ns, int64_t idle_ns);

/* Column pieces of a few rows' product (int8 or float32), each a prepared one-call product over its output
 * columns (`pieces`, count of them), run by the team (NULL: the caller alone). Every piece reads
 * `rows` (row_count rows, row_stride floats apart) and writes its columns of `out` (row_count x
 * out_width, contiguous) from column columns[i]: straight there for one row, else into blocks[i]
 * (row_count x its width) first, then copied. */
typedef struct macb_cpu_pieces_args {
    int64_t size; /* sizeof(macb_cpu_pieces_args) */
    macb_cpu_team *team;
    macb_cpu_row_product_args *const *pieces;
    const int64_t *columns;
    float *const *blocks;
    int64_t count;
    const float *rows;
    int64_t row_count, row_stride;
    float *out;
    int64_t out_width;
} macb_cpu_pieces_args;

MACB_CPU_EXPORT int32_t macb_cpu_row_product_pieces(const macb_cpu_pieces_args *args);

/* One block of a Whisper decoder step for `rows` token rows (beams), in place on the residual
 * stream x (rows, width), contiguous. `stages` (a mask of MACB_CPU_STAGE_*) picks what runs, in order:
 * - SELF: layer norm 0, the fused q/k/v product (queries pre-scaled), the new token's keys and values
 *   written at token row length - 1 of the cache (keys and values: (rows, heads, capacity,
 *   head_dim) blocks, cache_*_stride floats apart), attention over `length` rows, out product, add;
 * - CROSS_QUERY: layer norm 1 and the cross queries' product into cross_q (rows, width);
 * - CROSS_ATTEND: cross_q against the audio keys_t / values (macb_cpu_attend_args' layout) into
 *   `attended` (rows, width);
 * - CROSS_OUT_MLP: out product of `attended`, add; layer norm 2, mlp1, GELU, mlp2, add.
 * The products are prepared one-call products (macb_cpu_row_product_args of this many rows, int8 or
 * float32 alike); their
 * row, row_stride and out fields are set here. scratch: at least rows * (5 * width + hidden_width)
 * floats, plus `length` for SELF and 4 * frames per team worker for CROSS_ATTEND (4 rows sharing
 * audio at a time). `team` (or NULL) splits CROSS_ATTEND's heads.
 * `split` (each entry may be NULL): a product's column pieces (macb_cpu_pieces_args, in the order
 * qkv, out, cross_q_product, cross_out, mlp1, mlp2) run on `team` instead of that one-call product
 * (which may then be NULL); their team, rows, row_count, row_stride and out fields are set here.
 * audio_half: the audio keys_t / values are float16 (macb_cpu_attend_args' audio_half).
 * The same kernels in the same order as the caller's separate calls: the same results, bit for bit. */
enum {
    MACB_CPU_STAGE_SELF = 1,
    MACB_CPU_STAGE_CROSS_QUERY = 2,
    MACB_CPU_STAGE_CROSS_ATTEND = 4,
    MACB_CPU_STAGE_CROSS_OUT_MLP = 8,
};
typedef struct macb_cpu_block_args {
    int64_t size; /* sizeof(macb_cpu_block_args) */
    int64_t stages;
    float *x;
    float *cross_q;
    float *attended;
    float *scratch;
    int64_t rows, width, heads, hidden_width, scratch_floats;
    const float *norm_weight[3];
    const float *norm_bias[3];
    float eps;
    macb_cpu_row_product_args *qkv, *out, *cross_q_product, *cross_out, *mlp1, *mlp2;
    float *keys, *values;
    int64_t cache_row_stride, cache_head_stride, length;
    const float *audio_keys_t, *audio_values;
    int64_t audio_row_stride, frames;
    macb_cpu_team *team;
    macb_cpu_pieces_args *split[6];
    int64_t audio_half;
} macb_cpu_block_args;

MACB_CPU_EXPORT int32_t macb_cpu_decoder_block(const macb_cpu_block_args *args);

MACB_CPU_EXPORT int32_t macb_cpu_abi_version(void);

/* bfloat16 copies (round to nearest even) of `rows` rows of `cols` floats, src_row_stride floats and
 * dst_row_stride values apart. MACB_CPU_BAD_ARGUMENT for a null pointer, a count below 1 or a
 * stride shorter than a row. */
MACB_CPU_EXPORT int32_t macb_cpu_to_bf16(const float *src, int64_t src_row_stride, uint16_t *dst,
                                         int64_t dst_row_stride, int64_t rows, int64_t cols);

#endif
