/* Cross-attention for a few query rows against long keys and values: out = softmax(q k^T) v.
 *
 * Why a kernel of our own: a decoder step's cross-attention reads every head's audio keys and
 * values (tiny.en: 4.6 MB of float32 a layer) for one query row per beam. numpy's batched matmul
 * hands each head to OpenBLAS, whose sgemm repacks the whole (64 x 1500) operand for five beam
 * rows: five rows cost 4-5x one row while reading the same memory. Here each head's keys and
 * values are read once from memory for all rows that share them (later rows find them in L2),
 * and scores, softmax and the weighted sum run in one pass without Python in between.
 * A oneDNN matmul primitive over all heads was also tried: faster alone, slower in the real step.
 *
 * Plain C for the compiler's vectorizer, one clone per ISA level (simd_helpers.h). Sums run in
 * another order than BLAS's: results agree with numpy to float32 rounding, not bit for bit. No
 * allocation, no threads: the caller passes the scratch.
 */
#include <stdint.h>
#include <string.h>

#include "attend_common.h"
#include "macb_cpu.h"
#include "simd_helpers.h"

enum { SCORE_BLOCK = 1024 }; /* frames per block of scores: 4 KB a row; eight key rows' 32 KB */

/* row[s] += sum over eight key rows d of w[d] keys[d][s], for s in [0, count): the row of
 * scores is loaded and stored once per eight products, the key rows (32 KB of SCORE_BLOCK
 * frames) stay in L1 for the next query row. */
static INLINE void add_eight_products(const float *restrict w, const float *restrict keys, int64_t frames,
                                      int64_t count, float *restrict row) {
    for (int64_t s = 0; s < count; s++)
        row[s] += w[0] * keys[s] + w[1] * keys[s + frames] + w[2] * keys[s + 2 * frames] +
                  w[3] * keys[s + 3 * frames] + w[4] * keys[s + 4 * frames] + w[5] * keys[s + 5 * frames] +
                  w[6] * keys[s + 6 * frames] + w[7] * keys[s + 7 * frames];
}

/* scores[r][s] = sum_d q[r][d] keys_t[d][s] for `rows` query rows that share the keys. */
static INLINE void dot_rows(const float *const q[], int rows, const float *restrict keys_t, int64_t frames,
                            int64_t head_dim, float *const scores[]) {
    for (int r = 0; r < rows; r++) memset(scores[r], 0, (size_t)frames * sizeof(float));
    for (int64_t start = 0; start < frames; start += SCORE_BLOCK) {
        const int64_t count = frames - start < SCORE_BLOCK ? frames - start : SCORE_BLOCK;
        int64_t d = 0;
        for (; d + 8 <= head_dim; d += 8)
            for (int r = 0; r < rows; r++)
                add_eight_products(q[r] + d, keys_t + d * frames + start, frames, count, scores[r] + start);
        for (; d < head_dim; d++)
            for (int r = 0; r < rows; r++)
                for (int64_t s = 0; s < count; s++) scores[r][start + s] += q[r][d] * keys_t[d * frames + start + s];
    }
}

/* out[j] = (sum_s weights[s] values[s][j]) / total for j in [0, head_dim). */
static INLINE void weighted_sum(const float *restrict weights, const float *restrict values, int64_t frames,
                                int64_t head_dim, float total, float *restrict out) {
    float acc[MACB_CPU_MAX_HEAD_DIM];
    memset(acc, 0, (size_t)head_dim * sizeof *acc);
    for (int64_t s = 0; s < frames; s++) {
        const float w = weights[s], *row = values + s * head_dim;
        for (int64_t j = 0; j < head_dim; j++) acc[j] += w * row[j];
    }
    const float inverse = 1.0f / total;
    for (int64_t j = 0; j < head_dim; j++) out[j] = acc[j] * inverse;
}

/* The same for Whisper's head size, 64: the sums stay in eight 8-float registers instead of
 * going through memory for every frame (that cost ~3x the whole pass). */
static INLINE void weighted_sum_64(const float *restrict weights, const float *restrict values, int64_t frames,
                                   float total, float *restrict out) {
    vec8 acc[8] = {{0}};
    for (int64_t s = 0; s < frames; s++) {
        const float *row = values + s * 64;
        const float w = weights[s];
        for (int part = 0; part < 8; part++) acc[part] += w * load8(row + 8 * part);
    }
    const float inverse = 1.0f / total;
    for (int part = 0; part < 8; part++) {
        vec8 scaled = acc[part] * inverse;
        memcpy(out + 8 * part, &scaled, sizeof scaled);
    }
}

/* GROUP rows that share one head's values (beams of one window): each 16-column slice of a value
 * row is loaded once for all of them (8 sums + 4 weights fit AVX2's 16 registers). One row at a
 * time re-read the values from L2 per row, which bounded the pass. */
static INLINE void weighted_sums_64_group(const float *const weights[GROUP], const float *restrict values,
                                          int64_t frames, const float totals[GROUP], float *const out[GROUP]) {
    for (int column = 0; column < 64; column += 16) {
        vec8 acc[GROUP][2] = {{{0}}};
        for (int64_t s = 0; s < frames; s++) {
            const vec8 low = load8(values + s * 64 + column), high = load8(values + s * 64 + column + 8);
            for (int g = 0; g < GROUP; g++) {
                const float w = weights[g][s];
                acc[g][0] += w * low;
                acc[g][1] += w * high;
            }
        }
        for (int g = 0; g < GROUP; g++) {
            const float inverse = 1.0f / totals[g];
            vec8 low = acc[g][0] * inverse, high = acc[g][1] * inverse;
            memcpy(out[g] + column, &low, sizeof low), memcpy(out[g] + column + 8, &high, sizeof high);
        }
    }
}

static INLINE void attend_head(const float *q, const float *keys_t, const float *values, float *out, int64_t frames,
                               int64_t head_dim, float *scores) {
    dot_rows(&q, 1, keys_t, frames, head_dim, &scores);
    const float total = exp_row(scores, frames);
    if (head_dim == 64)
        weighted_sum_64(scores, values, frames, total, out);
    else
        weighted_sum(scores, values, frames, head_dim, total, out);
}

#define AUDIO_T float
#define DRIVER_NAME attend_rows_float
#define GROUP_NAME attend_head_group
#define ISA_ATTRIBUTES
#define DRIVER_INLINE INLINE
#define ATTEND_HEAD attend_head
#define DOT_ROWS_64(q, rows, keys_t, frames, scores) dot_rows(q, rows, keys_t, frames, 64, scores)
#define WEIGHTED_SUMS_64_GROUP weighted_sums_64_group
#include "attend_driver.h"

MACB_CLONES
int32_t macb_cpu_attend_rows(const macb_cpu_attend_args *args) {
    if (args == NULL || args->size < (int64_t)sizeof(macb_cpu_attend_args)) return MACB_CPU_BAD_ARGUMENT;
    const int64_t rows = args->rows, heads = args->heads, head_dim = args->head_dim, frames = args->frames;
    if (rows < 1 || heads < 1 || frames < 1 || head_dim < 1 || head_dim > MACB_CPU_MAX_HEAD_DIM)
        return MACB_CPU_BAD_ARGUMENT;
    if (args->q == NULL || args->keys_t == NULL || args->values == NULL || args->out == NULL ||
        args->scratch == NULL || args->scratch_floats < frames)
        return MACB_CPU_BAD_ARGUMENT;
    return args->audio_half ? attend_rows_half(args) : attend_rows_float(args);
}

int32_t macb_cpu_abi_version(void) { return MACB_CPU_ABI_VERSION; }

/* scores[t] = q . keys[t] for t in [0, length): keys row-major (length, head_dim), as a decoder's
 * self-attention cache keeps them. Eight partial sums per key row, then their total. */
static INLINE void dot_key_rows(const float *restrict q, const float *restrict keys, int64_t length,
                                int64_t head_dim, float *restrict scores) {
    for (int64_t t = 0; t < length; t++) {
        const float *restrict key = keys + t * head_dim;
        float lanes[8] = {0.0f}, total = 0.0f;
        int64_t whole = head_dim - head_dim % 8, d = 0;
        for (; d < whole; d += 8)
            for (int l = 0; l < 8; l++) lanes[l] += q[d + l] * key[d + l];
        for (; d < head_dim; d++) total += q[d] * key[d];
        scores[t] = total + ((lanes[0] + lanes[1]) + (lanes[2] + lanes[3])) + ((lanes[4] + lanes[5]) + (lanes[6] + lanes[7]));
    }
}

MACB_CLONES
int32_t macb_cpu_attend_cache(const macb_cpu_attend_cache_args *a) {
    if (a == NULL || a->size < (int64_t)sizeof(macb_cpu_attend_cache_args)) return MACB_CPU_BAD_ARGUMENT;
    const int64_t rows = a->rows, heads = a->heads, head_dim = a->head_dim, length = a->length;
    if (rows < 1 || heads < 1 || length < 1 || head_dim < 1 || head_dim > MACB_CPU_MAX_HEAD_DIM || a->q == NULL ||
        a->keys == NULL || a->values == NULL || a->out == NULL || a->scratch == NULL || a->scratch_floats < length)
        return MACB_CPU_BAD_ARGUMENT;
    for (int64_t b = 0; b < rows; b++)
        for (int64_t h = 0; h < heads; h++) {
            const float *q = a->q + b * a->q_row_stride + h * head_dim;
            const float *values = a->values + b * a->values_row_stride + h * a->values_head_stride;
            float *out = a->out + b * a->out_row_stride + h * head_dim;
            dot_key_rows(q, a->keys + b * a->keys_row_stride + h * a->keys_head_stride, length, head_dim, a->scratch);
            const float total = exp_row(a->scratch, length);
            if (head_dim == 64)
                weighted_sum_64(a->scratch, values, length, total, out);
            else
                weighted_sum(a->scratch, values, length, head_dim, total, out);
        }
    return MACB_CPU_OK;
}
