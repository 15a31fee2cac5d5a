/* Shared by the audio attention kernels (attend_rows.c: float32 audio; attend_half.c: float16
 * audio): 8-float vectors, the softmax's exponentials, and the float16 entry attend_rows.c hands
 * its calls to. Internal. */
#ifndef MACB_CPU_ATTEND_COMMON_H
#define MACB_CPU_ATTEND_COMMON_H

#include <stdint.h>
#include <string.h>

#include "macb_cpu.h"
#include "simd_helpers.h"

enum { GROUP = 4 }; /* rows of one head processed together when they share its audio */

/* 8 floats, not 16: GCC spilled 16-float vectors to the stack in the AVX2 clone. */
typedef float vec8 __attribute__((vector_size(32)));

static INLINE vec8 load8(const float *from) {
    vec8 value;
    memcpy(&value, from, sizeof value);
    return value;
}

/* Softmax of one row of scores in place, unnormalized; returns the sum to divide by. */
static INLINE float exp_row(float *restrict scores, int64_t frames) {
    float top = scores[0];
    for (int64_t s = 1; s < frames; s++) top = scores[s] > top ? scores[s] : top;
    for (int64_t s = 0; s < frames; s++) scores[s] = exp_nonpositive(scores[s] - top);
    return sum_lanes(scores, frames);
}

/* macb_cpu_attend_rows for float16 audio (args->audio_half), checked by the caller except for
 * head_dim (64 only) and the CPU (MACB_CPU_UNSUPPORTED without F16C, AVX2 and FMA on x86-64). */
int32_t attend_rows_half(const macb_cpu_attend_args *args);

#endif
