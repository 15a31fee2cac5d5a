/* The head and row loop of macb_cpu_attend_rows, once per audio element type. Internal: included
 * by attend_rows.c (float) and attend_half.c (uint16_t float16 bits) after they define
 *   AUDIO_T                the audio's element type;
 *   DRIVER_NAME            the name of the function this defines;
 *   GROUP_NAME             the name of the GROUP-rows helper it defines first;
 *   ISA_ATTRIBUTES         both functions' ISA target, or nothing;
 *   DRIVER_INLINE          INLINE to inline the driver into its caller, or nothing;
 *   ATTEND_HEAD(q, keys_t, values, out, frames, head_dim, scratch)       one row of one head;
 *   DOT_ROWS_64(q[], rows, keys_t, frames, scores[])                     scores of rows sharing a head's keys;
 *   WEIGHTED_SUMS_64_GROUP(weights[GROUP], values, frames, totals[GROUP], out[GROUP])  their outputs.
 * Arguments were checked by the caller. */

/* GROUP rows of one head that read the same audio, head_dim 64. */
static INLINE ISA_ATTRIBUTES void GROUP_NAME(const float *const q[GROUP], const AUDIO_T *keys_t,
                                             const AUDIO_T *values, float *const out[GROUP], int64_t frames,
                                             float *scratch) {
    float *scores[GROUP], totals[GROUP];
    for (int g = 0; g < GROUP; g++) scores[g] = scratch + g * frames;
    DOT_ROWS_64(q, GROUP, keys_t, frames, scores);
    for (int g = 0; g < GROUP; g++) totals[g] = exp_row(scores[g], frames);
    WEIGHTED_SUMS_64_GROUP((const float *const *)scores, values, frames, totals, out);
}

/* Heads outside: rows sharing audio reuse it from L2. With shared audio, head_dim 64 and room for
 * GROUP rows of scores, rows go GROUP at a time, after one row alone (its in-order pass streams the
 * head into L2). */
static DRIVER_INLINE ISA_ATTRIBUTES int32_t DRIVER_NAME(const macb_cpu_attend_args *args) {
    const int64_t rows = args->rows, heads = args->heads, head_dim = args->head_dim, frames = args->frames;
    const AUDIO_T *keys_t = (const AUDIO_T *)(const void *)args->keys_t;
    const AUDIO_T *values = (const AUDIO_T *)(const void *)args->values;
    const int64_t head_block = head_dim * frames; /* one head's keys, or its values */
    const int grouped = args->audio_row_stride == 0 && head_dim == 64 && args->scratch_floats >= GROUP * frames;
    for (int64_t h = 0; h < heads; h++) {
        int64_t b = 0;
        if (grouped && rows > 1) {
            ATTEND_HEAD(args->q + h * head_dim, keys_t + h * head_block, values + h * head_block,
                        args->out + h * head_dim, frames, head_dim, args->scratch);
            b = 1;
        }
        for (; grouped && b + GROUP <= rows; b += GROUP) {
            const float *q[GROUP];
            float *out[GROUP];
            for (int g = 0; g < GROUP; g++) {
                q[g] = args->q + (b + g) * args->q_row_stride + h * head_dim;
                out[g] = args->out + (b + g) * args->out_row_stride + h * head_dim;
            }
            GROUP_NAME(q, keys_t + h * head_block, values + h * head_block, out, frames, args->scratch);
        }
        for (; b < rows; b++) {
            const int64_t audio = b * args->audio_row_stride + h * head_block;
            ATTEND_HEAD(args->q + b * args->q_row_stride + h * head_dim, keys_t + audio, values + audio,
                        args->out + b * args->out_row_stride + h * head_dim, frames, head_dim, args->scratch);
        }
    }
    return MACB_CPU_OK;
}
