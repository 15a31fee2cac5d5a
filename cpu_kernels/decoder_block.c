/* One decoder block of a Whisper decoder step, for a few token rows, in one call from Python.
 *
 * Why: the block is ~20 small operations on (rows, D) rows: three layer norms, six products, two
 * attentions, a GELU and three residual adds. Each already runs in a kernel of this library (or
 * oneDNN through macb_cpu_row_product); what was left was Python between them: ~60 calls a block
 * into numpy, ctypes and the cache's bookkeeping, 0.5-1.2 ms of a 3.8-4 ms greedy step on tiny.en
 * (2 cores, AMD EPYC and Intel Xeon). int8: the same kernels run in the same order on the same
 * bytes, so the results are host_decoder's numpy-and-kernels route bit for bit. float32: the
 * products are oneDNN's prepared 1x1 convolutions where that route calls BLAS (sgemv, sgemm), so
 * the two agree to float32 rounding.
 *
 * The stages can be run apart (a bit mask), so that the caller may run the cross-attention itself
 * (split over its worker threads) between the cross queries and the rest of the block. With a team,
 * cross-attention's heads and the products the caller cut in column pieces are shared by its workers.
 */
#include <stdint.h>
#include <string.h>

#include "macb_cpu.h"
#include "team_internal.h"

enum { QKV, OUT, CROSS_Q, CROSS_OUT, MLP1, MLP2 }; /* the products, in macb_cpu_block_args' order */

/* Product `which` of the block: its column pieces on the team where the caller split it (each core
 * reads its share of the weights: one core alone streamed a float32 decoder's block weights at
 * ~11 GB/s here, two at ~29), else its one-call product. */
static int32_t product(const macb_cpu_block_args *a, int which, const float *in, int64_t in_stride, float *out) {
    macb_cpu_pieces_args *pieces = a->split[which];
    if (pieces != NULL) {
        if (pieces->row_count != a->rows) return MACB_CPU_BAD_ARGUMENT;
        pieces->team = a->team;
        pieces->rows = in;
        pieces->row_stride = in_stride;
        pieces->out = out;
        return macb_cpu_row_product_pieces(pieces);
    }
    macb_cpu_row_product_args *const whole[] = {a->qkv, a->out, a->cross_q_product, a->cross_out, a->mlp1, a->mlp2};
    macb_cpu_row_product_args *p = whole[which];
    if (p == NULL || p->rows != a->rows) return MACB_CPU_BAD_ARGUMENT;
    p->row = in;
    p->row_stride = in_stride;
    p->out = out;
    return macb_cpu_row_product(p);
}

static void add_rows(float *restrict x, const float *restrict y, int64_t count) {
    for (int64_t i = 0; i < count; i++) x[i] += y[i];
}

static int32_t layer_norm(const macb_cpu_block_args *a, int which, float *out) {
    return macb_cpu_layer_norm_rows(a->x, a->width, out, a->width, a->rows, a->width, a->norm_weight[which],
                                    a->norm_bias[which], a->eps);
}

/* Layer norm, q/k/v, the new token's keys and values into the cache, attention, out product, residual. */
static int32_t self_attention(const macb_cpu_block_args *a, float *normed, float *qkv, float *projected,
                              float *scratch) {
    const int64_t rows = a->rows, width = a->width, head_dim = width / a->heads;
    int32_t status = layer_norm(a, 0, normed);
    if (status == MACB_CPU_OK) status = product(a, QKV, normed, width, qkv);
    if (status != MACB_CPU_OK) return status;
    const int64_t at = (a->length - 1) * head_dim; /* the new token's row in each head's cache */
    for (int64_t b = 0; b < rows; b++)
        for (int64_t h = 0; h < a->heads; h++) {
            const float *key = qkv + b * 3 * width + width + h * head_dim;
            memcpy(a->keys + b * a->cache_row_stride + h * a->cache_head_stride + at, key, head_dim * sizeof(float));
            memcpy(a->values + b * a->cache_row_stride + h * a->cache_head_stride + at, key + width,
                   head_dim * sizeof(float));
        }
    const macb_cpu_attend_cache_args attend = {
        sizeof(macb_cpu_attend_cache_args), qkv, a->keys, a->values, a->attended, scratch, rows, a->heads, head_dim,
        a->length, 3 * width, width, a->cache_row_stride, a->cache_head_stride, a->cache_row_stride,
        a->cache_head_stride, a->scratch_floats - (scratch - a->scratch),
    };
    status = macb_cpu_attend_cache(&attend);
    if (status == MACB_CPU_OK) status = product(a, OUT, a->attended, width, projected);
    if (status == MACB_CPU_OK) add_rows(a->x, projected, rows * width);
    return status;
}

typedef struct cross_job {
    const macb_cpu_block_args *a;
    float *scratch; /* each worker's `per_worker` floats, worker 0 first */
    int64_t per_worker;
} cross_job;

/* One head of cross-attention for every row: a piece of the team's job. */
static int32_t cross_head(void *context, int64_t head, int64_t worker) {
    const cross_job *job = context;
    const macb_cpu_block_args *a = job->a;
    const int64_t head_dim = a->width / a->heads;
    const int64_t offset = head * head_dim * a->frames * (a->audio_half ? 2 : 4); /* bytes to the head's audio */
    const macb_cpu_attend_args attend = {
        sizeof(macb_cpu_attend_args), a->cross_q + head * head_dim,
        (const float *)(const void *)((const char *)a->audio_keys_t + offset),
        (const float *)(const void *)((const char *)a->audio_values + offset), a->attended + head * head_dim,
        job->scratch + worker * job->per_worker, a->rows, 1, head_dim, a->frames, a->width, a->width,
        a->audio_row_stride, job->per_worker, a->audio_half,
    };
    return macb_cpu_attend_rows(&attend);
}

/* Each row's cross-attention over all heads: one call, or a head per piece of the team's job (the
 * same arithmetic per head: the same results). */
static int32_t cross_attention(const macb_cpu_block_args *a, float *scratch) {
    const int64_t room = a->scratch_floats - (scratch - a->scratch);
    if (a->team != NULL && a->team->workers > 1 && room >= a->team->workers * a->frames) {
        const cross_job job = {a, scratch, room / a->team->workers};
        return team_run(a->team, cross_head, (void *)&job, a->heads);
    }
    const macb_cpu_attend_args attend = {
        sizeof(macb_cpu_attend_args), a->cross_q, a->audio_keys_t, a->audio_values, a->attended, scratch, a->rows,
        a->heads, a->width / a->heads, a->frames, a->width, a->width, a->audio_row_stride, room, a->audio_half,
    };
    return macb_cpu_attend_rows(&attend);
}

/* Cross-attention's out product and residual, then layer norm, MLP (GELU between) and residual. */
static int32_t cross_out_and_mlp(const macb_cpu_block_args *a, float *normed, float *projected, float *hidden) {
    const int64_t rows = a->rows, width = a->width;
    int32_t status = product(a, CROSS_OUT, a->attended, width, projected);
    if (status != MACB_CPU_OK) return status;
    add_rows(a->x, projected, rows * width);
    status = layer_norm(a, 2, normed);
    if (status == MACB_CPU_OK) status = product(a, MLP1, normed, width, hidden);
    if (status == MACB_CPU_OK) status = macb_cpu_gelu(hidden, rows * a->hidden_width);
    if (status == MACB_CPU_OK) status = product(a, MLP2, hidden, a->hidden_width, projected);
    if (status == MACB_CPU_OK) add_rows(a->x, projected, rows * width);
    return status;
}

static int valid(const macb_cpu_block_args *a) {
    if (a->rows < 1 || a->rows > MACB_CPU_MAX_PRODUCT_ROWS || a->heads < 1 || a->width < a->heads ||
        a->width % a->heads != 0 || a->width / a->heads > MACB_CPU_MAX_HEAD_DIM || a->hidden_width < 1 ||
        a->x == NULL || a->cross_q == NULL || a->attended == NULL || a->scratch == NULL)
        return 0;
    const int64_t buffers = a->rows * (5 * a->width + a->hidden_width); /* normed, qkv, projected, hidden */
    if (a->stages & MACB_CPU_STAGE_SELF) {
        if (a->keys == NULL || a->values == NULL || a->length < 1 || a->scratch_floats < buffers + a->length)
            return 0;
    }
    if (a->stages & MACB_CPU_STAGE_CROSS_ATTEND) {
        if (a->audio_keys_t == NULL || a->audio_values == NULL || a->frames < 1 ||
            a->scratch_floats < buffers + a->frames)
            return 0;
    }
    return a->scratch_floats >= buffers;
}

int32_t macb_cpu_decoder_block(const macb_cpu_block_args *a) {
    if (a == NULL || a->size < (int64_t)sizeof(macb_cpu_block_args) || !valid(a)) return MACB_CPU_BAD_ARGUMENT;
    const int64_t rows = a->rows, width = a->width;
    float *normed = a->scratch, *qkv = normed + rows * width, *projected = qkv + 3 * rows * width;
    float *hidden = projected + rows * width, *scratch = hidden + rows * a->hidden_width;
    int32_t status = MACB_CPU_OK;
    if (a->stages & MACB_CPU_STAGE_SELF) status = self_attention(a, normed, qkv, projected, scratch);
    if (status == MACB_CPU_OK && (a->stages & MACB_CPU_STAGE_CROSS_QUERY)) {
        status = layer_norm(a, 1, normed);
        if (status == MACB_CPU_OK) status = product(a, CROSS_Q, normed, width, a->cross_q);
    }
    if (status == MACB_CPU_OK && (a->stages & MACB_CPU_STAGE_CROSS_ATTEND)) status = cross_attention(a, scratch);
    if (status == MACB_CPU_OK && (a->stages & MACB_CPU_STAGE_CROSS_OUT_MLP))
        status = cross_out_and_mlp(a, normed, projected, hidden);
    return status;
}
