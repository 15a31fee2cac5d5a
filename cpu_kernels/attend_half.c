/* Cross-attention against float16 audio keys and values, and the float32 -> float16 copy that makes them.
 *
 * Why: a greedy decoder step reads every layer's audio keys and values (tiny.en: 18 MB of float32,
 * a quarter of an int8 step's time on two cores, bound by memory). Kept as float16 they are half
 * the bytes; each is widened to float32 as it is loaded and the arithmetic is attend_rows.c's.
 * Widening must cost ~nothing for this to pay: one vcvtph2ps per 8 values (F16C). GCC 12 widens
 * _Float16 one value at a time, which made the pass slower than float32's; hence intrinsics, in
 * functions built for AVX2 + FMA + F16C and called only where the CPU has them (checked at run
 * time: the library's other kernels are cloned per ISA, these cannot be). On AArch64 the widening
 * is a vector conversion of the base ISA. Elsewhere float16 audio is MACB_CPU_UNSUPPORTED.
 * Whisper's heads are 64 wide; other widths are refused (the caller keeps float32 audio).
 */
#include <stdint.h>
#include <string.h>

#include "attend_common.h"
#include "macb_cpu.h"
#include "simd_helpers.h"

#if defined(__x86_64__) && (defined(__GNUC__) || defined(__clang__))
#include <immintrin.h>
#define HALF_TARGET __attribute__((target("avx2,fma,f16c")))
#define HALF_PATH 1

static INLINE HALF_TARGET vec8 widen8(const uint16_t *from) {
    const __m256 wide = _mm256_cvtph_ps(_mm_loadu_si128((const __m128i *)(const void *)from));
    vec8 value;
    memcpy(&value, &wide, sizeof value);
    return value;
}

static INLINE HALF_TARGET float widen(uint16_t bits) { return _cvtsh_ss(bits); }

/* 8 floats to float16 bits, nearest even; returns nonzero when one rounds to infinity or is not finite. */
static INLINE HALF_TARGET int narrow8(const float *from, uint16_t *to) {
    const __m256 x = _mm256_loadu_ps(from);
    const __m256 magnitude = _mm256_andnot_ps(_mm256_set1_ps(-0.0f), x);
    const int bad = _mm256_movemask_ps(_mm256_cmp_ps(magnitude, _mm256_set1_ps(65520.0f), _CMP_NLT_UQ));
    _mm_storeu_si128((__m128i *)(void *)to, _mm256_cvtps_ph(x, _MM_FROUND_TO_NEAREST_INT | _MM_FROUND_NO_EXC));
    return bad;
}

static int cpu_has_half(void) {
    __builtin_cpu_init();
    return __builtin_cpu_supports("avx2") && __builtin_cpu_supports("fma") && __builtin_cpu_supports("f16c");
}

#elif defined(__aarch64__)
#define HALF_TARGET
#define HALF_PATH 1
typedef _Float16 half8 __attribute__((vector_size(16)));

static INLINE vec8 widen8(const uint16_t *from) {
    half8 bits;
    memcpy(&bits, from, sizeof bits);
    return __builtin_convertvector(bits, vec8);
}

static INLINE float widen(uint16_t bits) {
    _Float16 value;
    memcpy(&value, &bits, sizeof value);
    return (float)value;
}

static INLINE int narrow8(const float *from, uint16_t *to) {
    int bad = 0;
    for (int i = 0; i < 8; i++) {
        const float magnitude = from[i] < 0 ? -from[i] : from[i];
        bad |= !(magnitude < 65520.0f);
        const _Float16 value = (_Float16)from[i];
        memcpy(to + i, &value, sizeof value);
    }
    return bad;
}

static int cpu_has_half(void) { return 1; }
#else
#define HALF_PATH 0
#endif

#if HALF_PATH
enum { HALF_SCORE_BLOCK = 1024 }; /* frames per block of scores, as attend_rows.c's */

/* scores[r][s] = sum_d q[r][d] keys_t[d][s], 64 dims, 8 key rows at a time (as attend_rows.c). */
static INLINE HALF_TARGET void dot_rows_half(const float *const q[], int rows, const uint16_t *keys_t,
                                             int64_t frames, float *const scores[]) {
    for (int r = 0; r < rows; r++) memset(scores[r], 0, (size_t)frames * sizeof(float));
    for (int64_t start = 0; start < frames; start += HALF_SCORE_BLOCK) {
        const int64_t stop = frames - start < HALF_SCORE_BLOCK ? frames : start + HALF_SCORE_BLOCK;
        const int64_t whole = start + (stop - start) / 8 * 8;
        for (int64_t d = 0; d < 64; d += 8) {
            const uint16_t *k = keys_t + d * frames;
            for (int r = 0; r < rows; r++) {
                const float *w = q[r] + d;
                float *row = scores[r];
                for (int64_t s = start; s < whole; s += 8) {
                    vec8 sum = w[0] * widen8(k + s) + w[1] * widen8(k + frames + s) +
                               w[2] * widen8(k + 2 * frames + s) + w[3] * widen8(k + 3 * frames + s) +
                               w[4] * widen8(k + 4 * frames + s) + w[5] * widen8(k + 5 * frames + s) +
                               w[6] * widen8(k + 6 * frames + s) + w[7] * widen8(k + 7 * frames + s);
                    sum += load8(row + s);
                    memcpy(row + s, &sum, sizeof sum);
                }
                for (int64_t s = whole; s < stop; s++) /* the same sum as a vector lane's */
                    row[s] += w[0] * widen(k[s]) + w[1] * widen(k[frames + s]) + w[2] * widen(k[2 * frames + s]) +
                              w[3] * widen(k[3 * frames + s]) + w[4] * widen(k[4 * frames + s]) +
                              w[5] * widen(k[5 * frames + s]) + w[6] * widen(k[6 * frames + s]) +
                              w[7] * widen(k[7 * frames + s]);
            }
        }
    }
}

/* out = (sum_s weights[s] values[s]) / total, 64 columns in eight 8-float sums. */
static INLINE HALF_TARGET void weighted_sum_half(const float *restrict weights, const uint16_t *values,
                                                 int64_t frames, float total, float *out) {
    vec8 acc[8] = {{0}};
    for (int64_t s = 0; s < frames; s++) {
        const float w = weights[s];
        for (int part = 0; part < 8; part++) acc[part] += w * widen8(values + s * 64 + 8 * part);
    }
    const float inverse = 1.0f / total;
    for (int part = 0; part < 8; part++) {
        const vec8 scaled = acc[part] * inverse;
        memcpy(out + 8 * part, &scaled, sizeof scaled);
    }
}

/* GROUP rows sharing one head's values: each 16-column slice of a value row widened once for all. */
static INLINE HALF_TARGET void weighted_sums_half_group(const float *const weights[GROUP], const uint16_t *values,
                                                        int64_t frames, const float totals[GROUP],
                                                        float *const out[GROUP]) {
    for (int column = 0; column < 64; column += 16) {
        vec8 acc[GROUP][2] = {{{0}}};
        for (int64_t s = 0; s < frames; s++) {
            const vec8 low = widen8(values + s * 64 + column), high = widen8(values + s * 64 + column + 8);
            for (int g = 0; g < GROUP; g++) {
                acc[g][0] += weights[g][s] * low;
                acc[g][1] += weights[g][s] * high;
            }
        }
        for (int g = 0; g < GROUP; g++) {
            const float inverse = 1.0f / totals[g];
            const vec8 low = acc[g][0] * inverse, high = acc[g][1] * inverse;
            memcpy(out[g] + column, &low, sizeof low), memcpy(out[g] + column + 8, &high, sizeof high);
        }
    }
}

static INLINE HALF_TARGET void attend_head_half(const float *q, const uint16_t *keys_t, const uint16_t *values,
                                                float *out, int64_t frames, int64_t head_dim, float *scores) {
    (void)head_dim; /* 64, checked by attend_rows_half */
    dot_rows_half(&q, 1, keys_t, frames, &scores);
    weighted_sum_half(scores, values, frames, exp_row(scores, frames), out);
}

#define AUDIO_T uint16_t
#define DRIVER_NAME attend_rows_half_checked
#define GROUP_NAME attend_head_group_half
#define ISA_ATTRIBUTES HALF_TARGET
#define DRIVER_INLINE
#define ATTEND_HEAD attend_head_half
#define DOT_ROWS_64 dot_rows_half
#define WEIGHTED_SUMS_64_GROUP weighted_sums_half_group
#include "attend_driver.h"

int32_t attend_rows_half(const macb_cpu_attend_args *args) {
    if (args->head_dim != 64) return MACB_CPU_BAD_ARGUMENT;
    return cpu_has_half() ? attend_rows_half_checked(args) : MACB_CPU_UNSUPPORTED;
}

static HALF_TARGET int32_t to_half_checked(const float *src, uint16_t *dst, int64_t count) {
    int bad = 0;
    int64_t i = 0;
    for (; i + 8 <= count; i += 8) bad |= narrow8(src + i, dst + i);
    if (i < count) { /* the tail through an 8-float buffer: one rounding routine for every value */
        float rest[8] = {0};
        uint16_t out[8];
        memcpy(rest, src + i, (size_t)(count - i) * sizeof(float));
        bad |= narrow8(rest, out);
        memcpy(dst + i, out, (size_t)(count - i) * sizeof(uint16_t));
    }
    return bad ? MACB_CPU_OUT_OF_RANGE : MACB_CPU_OK;
}

int32_t macb_cpu_half_supported(void) { return cpu_has_half(); }

int32_t macb_cpu_to_half(const float *src, uint16_t *dst, int64_t count) {
    if (src == NULL || dst == NULL || count < 1) return MACB_CPU_BAD_ARGUMENT;
    return cpu_has_half() ? to_half_checked(src, dst, count) : MACB_CPU_UNSUPPORTED;
}

#else
int32_t attend_rows_half(const macb_cpu_attend_args *args) {
    (void)args;
    return MACB_CPU_UNSUPPORTED;
}

int32_t macb_cpu_half_supported(void) { return 0; }

int32_t macb_cpu_to_half(const float *src, uint16_t *dst, int64_t count) {
    if (src == NULL || dst == NULL || count < 1) return MACB_CPU_BAD_ARGUMENT;
    return MACB_CPU_UNSUPPORTED;
}
#endif
