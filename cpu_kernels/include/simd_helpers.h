/* Shared by the kernels' sources: ISA clones, forced inlining, partial-sum lanes, exp. Internal. */
#ifndef MACB_CPU_SIMD_HELPERS_H
#define MACB_CPU_SIMD_HELPERS_H

#include <stdint.h>
#include <string.h>

/* On x86-64 Linux with GCC each entry point gets one clone per ISA level (x86-64-v4: AVX-512; v3:
 * AVX2 and FMA; baseline SSE2), picked at load time by CPU features, not CPU names (an
 * "arch=haswell" clone was never picked on an AMD EPYC). Elsewhere one build for the target. */
#if defined(__x86_64__) && defined(__linux__) && defined(__GNUC__) && !defined(__clang__)
#define MACB_CLONES __attribute__((target_clones("arch=x86-64-v4", "arch=x86-64-v3", "default")))
#else
#define MACB_CLONES
#endif

/* Helpers are inlined into each ISA's clone of the entry point; a call would run the base ISA. */
#define INLINE inline __attribute__((always_inline))

enum { LANES = 16 }; /* partial sums: one AVX-512 register's floats */

/* exp(x) for x <= 0 (softmax after subtracting the row maximum): 2^n times a degree-6
 * polynomial of the remainder, about 2 ulp; below -87.3 the result is 0 as in float32. */
static INLINE float exp_nonpositive(float x) {
    const float log2e = 1.44269504088896341f, ln2_hi = 0.693359375f, ln2_lo = -2.12194440e-4f;
    const float shifter = 12582912.0f; /* 1.5 * 2^23: adding it rounds to an integer */
    float clamped = x < -87.3f ? -87.3f : x;
    float n = (clamped * log2e + shifter) - shifter;
    float r = clamped - n * ln2_hi - n * ln2_lo;
    float p = 1.0f / 720.0f;
    p = p * r + 1.0f / 120.0f;
    p = p * r + 1.0f / 24.0f;
    p = p * r + 1.0f / 6.0f;
    p = p * r + 0.5f;
    p = p * r + 1.0f;
    p = p * r + 1.0f;
    int32_t bits = ((int32_t)n + 127) << 23;
    float scale;
    memcpy(&scale, &bits, sizeof scale);
    float result = p * scale;
    return x < -87.3f ? 0.0f : result;
}

/* Sum of n floats in LANES partial sums (the vectorizer keeps one accumulator otherwise). */
static INLINE float sum_lanes(const float *restrict x, int64_t n) {
    float lanes[LANES] = {0.0f}, total = 0.0f;
    int64_t whole = n - n % LANES, i = 0;
    for (; i < whole; i += LANES)
        for (int l = 0; l < LANES; l++) lanes[l] += x[i + l];
    for (; i < n; i++) total += x[i];
    for (int l = 0; l < LANES; l++) total += lanes[l];
    return total;
}

#endif
