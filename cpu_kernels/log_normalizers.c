/* logsumexp of each row of a decoding step's logits (B, V), in float64: the log-probabilities' common
 * term, every step of greedy and beam decoding; and beam search's candidates, each row's k largest
 * logits with that term (macb_cpu_top_logprobs).
 *
 * Why in C: numpy's shift, float32 exp (~1.3 ns an element without AVX-512) and float64 sum of
 * tiny.en's 51864 logits took ~120 us a row on a loaded EPYC, this ~55 (one pass, no temporary). Same scheme as sampling.log_normalizers: shift by the row's maximum (0 when it
 * is not finite), float32 exponentials (about 2 ulp here against numpy's 1), summed in float64.
 * Rows hold -inf (suppressed tokens): this file is built without -ffinite-math-only. The caller
 * gives each row's maximum (numpy's max is fast, and greedy decoding has it from the argmax).
 */
#include <math.h>
#include <stdint.h>

#include "macb_cpu.h"
#include "simd_helpers.h"

enum { SUM_LANES = 32 }; /* float64 partial sums: four AVX-512 registers, so the adds do not wait on each other */

/* sum over the row of exp(x - top) (float32 terms, float64 sum); -inf terms give 0. The terms of a
 * block are made first, then added: 14 against 22 us for 51864 logits here (8 lanes, one pass). */
static INLINE double shifted_exp_sum(const float *restrict x, int64_t width, float top) {
    double lanes[SUM_LANES] = {0.0}, total = 0.0;
    int64_t whole = width - width % SUM_LANES, i = 0;
    for (; i < whole; i += SUM_LANES) {
        float terms[SUM_LANES];
        for (int l = 0; l < SUM_LANES; l++) terms[l] = exp_nonpositive(x[i + l] - top);
        for (int l = 0; l < SUM_LANES; l++) lanes[l] += (double)terms[l];
    }
    for (; i < width; i++) total += (double)exp_nonpositive(x[i] - top);
    for (int l = 0; l < SUM_LANES; l++) total += lanes[l];
    return total;
}

/* The row's logsumexp, shifted by `top` (its largest value; 0 when that is not finite, so that a row
 * of -inf gives -inf). */
static INLINE double normalizer(const float *restrict x, int64_t width, float top) {
    if (!isfinite(top)) top = 0.0f;
    return (double)top + log(shifted_exp_sum(x, width, top));
}

MACB_CLONES
int32_t macb_cpu_log_normalizers(const float *logits, int64_t rows, int64_t width, int64_t row_stride,
                                 const float *maxima, double *out) {
    if (logits == NULL || maxima == NULL || out == NULL || rows < 1 || width < 1 || row_stride < width)
        return MACB_CPU_BAD_ARGUMENT;
    for (int64_t r = 0; r < rows; r++) out[r] = normalizer(logits + r * row_stride, width, maxima[r]);
    return MACB_CPU_OK;
}

/* Puts (value, id) among the row's best `count` (largest first, equal values in id order); ids come
 * in increasing order, so a value equal to one kept goes after it. Returns the new count. */
static INLINE int64_t keep(float value, int64_t id, int64_t count, int64_t k, int64_t *ids, float *values) {
    int64_t at = count < k ? count : k - 1;
    while (at > 0 && values[at - 1] < value) {
        values[at] = values[at - 1];
        ids[at] = ids[at - 1];
        at--;
    }
    values[at] = value;
    ids[at] = id;
    return count < k ? count + 1 : k;
}

/* The row's k best into ids/values; 0 when the row holds NaN (a stable sort places NaN apart). */
static INLINE int best_of_row(const float *restrict x, int64_t width, int64_t k, int64_t *ids, float *values) {
    int64_t count = 0, i = 0;
    for (; i < k; i++) {
        if (x[i] != x[i]) return 0;
        count = keep(x[i], i, count, k, ids, values);
    }
    enum { BLOCK = 4 * LANES };
    for (; i + BLOCK <= width; i += BLOCK) { /* most blocks hold nothing above the k-th: one vector test */
        const float floor = values[k - 1];
        int hit = 0;
        for (int l = 0; l < BLOCK; l++) hit |= (x[i + l] > floor) | (x[i + l] != x[i + l]);
        if (!hit) continue;
        for (int l = 0; l < BLOCK; l++) {
            if (x[i + l] != x[i + l]) return 0;
            if (x[i + l] > values[k - 1]) keep(x[i + l], i + l, k, k, ids, values);
        }
    }
    for (; i < width; i++) {
        if (x[i] != x[i]) return 0;
        if (x[i] > values[k - 1]) keep(x[i], i, k, k, ids, values);
    }
    return 1;
}

MACB_CLONES
int32_t macb_cpu_top_logprobs(const float *logits, int64_t rows, int64_t width, int64_t row_stride, int64_t k,
                              int64_t *ids, float *values, double *normalizers) {
    if (logits == NULL || ids == NULL || values == NULL || normalizers == NULL || rows < 1 || k < 1 ||
        k > MACB_CPU_MAX_TOP || width < k || row_stride < width)
        return MACB_CPU_BAD_ARGUMENT;
    for (int64_t r = 0; r < rows; r++) {
        const float *row = logits + r * row_stride;
        if (!best_of_row(row, width, k, ids + r * k, values + r * k)) return MACB_CPU_HAS_NAN;
        normalizers[r] = normalizer(row, width, values[r * k]);
    }
    return MACB_CPU_OK;
}
