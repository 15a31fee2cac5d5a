/* The team's internal interface for this library's kernels (cpu_kernels/team.c). */
#ifndef MACB_CPU_TEAM_INTERNAL_H
#define MACB_CPU_TEAM_INTERNAL_H

#include <stdint.h>

#include "macb_cpu.h"

/* One piece of a job: `worker` is 0 for the caller, 1.. for helpers (each has its own scratch). */
typedef int32_t (*team_piece_fn)(void *context, int64_t index, int64_t worker);

/* Pieces 0..count-1 of a job, on the caller and the team's helpers (alone when team is NULL);
 * returns once every piece has run: MACB_CPU_OK or the first failing piece's status. */
int32_t team_run(macb_cpu_team *team, team_piece_fn piece, void *context, int64_t count);

#endif
