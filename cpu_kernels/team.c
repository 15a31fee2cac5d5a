/* A team for one decoder step: the calling thread and helper threads waiting inside
 * macb_cpu_team_serve share pieces of work (cross-attention's heads, the logits product's column
 * pieces) without a hand-off through Python.
 *
 * Why: handing a piece to a sleeping worker thread costs ~60 us (a futex wake-up and the GIL), more
 * than most pieces of a decoder step take. A helper that spins here between pieces takes the next
 * one in well under a microsecond. The helpers are the host pool's Python threads (cpu/team.py
 * enlists one for the length of a step, with the GIL released), so no thread is made here.
 *
 * Claims are one 64-bit word: job generation (32 bits), piece count (16), next piece (16). A piece
 * is claimed by compare-and-swap, so a helper that read an old job can never take a piece of a
 * newer one. The caller takes pieces too, and waits only for pieces a helper is already running.
 */
#include <sched.h>
#include <stdint.h>

#include "macb_cpu.h"
#include "team_internal.h"

#if defined(__x86_64__) || defined(__i386__)
#define PAUSE() __builtin_ia32_pause()
#elif defined(__aarch64__)
#define PAUSE() __asm__ __volatile__("yield")
#else
#define PAUSE() ((void)0)
#endif

enum { SPINS_BEFORE_YIELD = 2000 };

static uint64_t load(const uint64_t *word) { return __atomic_load_n(word, __ATOMIC_ACQUIRE); }

/* Runs piece `index` of the job claimed in `word`, if the claim is still open; 1 when one ran. */
static int take_piece(macb_cpu_team *team, int64_t worker) {
    uint64_t word = load(&team->claim);
    const uint64_t count = (word >> 16) & 0xffff, next = word & 0xffff;
    if (next >= count) return 0;
    team_piece_fn piece = (team_piece_fn)team->piece; /* this job's: written before its claim word */
    void *context = team->context;
    if (!__atomic_compare_exchange_n(&team->claim, &word, word + 1, 0, __ATOMIC_ACQ_REL, __ATOMIC_ACQUIRE))
        return 1; /* another thread took it (or a new job came): look again at once */
    const int32_t status = piece(context, (int64_t)next, worker);
    if (status != MACB_CPU_OK) {
        int32_t none = MACB_CPU_OK;
        __atomic_compare_exchange_n(&team->status, &none, status, 0, __ATOMIC_ACQ_REL, __ATOMIC_ACQUIRE);
    }
    __atomic_add_fetch(&team->finished, 1, __ATOMIC_ACQ_REL);
    return 1;
}

int32_t team_run(macb_cpu_team *team, team_piece_fn piece, void *context, int64_t count) {
    if (team == NULL || count < 2 || count > 0xffff) { /* alone: the same pieces in order */
        for (int64_t i = 0; i < count; i++) {
            const int32_t status = piece(context, i, 0);
            if (status != MACB_CPU_OK) return status;
        }
        return MACB_CPU_OK;
    }
    const uint64_t generation = (load(&team->claim) >> 32) + 1;
    team->piece = (void *)piece;
    team->context = context;
    __atomic_store_n(&team->finished, 0, __ATOMIC_RELAXED);
    __atomic_store_n(&team->status, MACB_CPU_OK, __ATOMIC_RELAXED);
    __atomic_store_n(&team->claim, (generation << 32) | ((uint64_t)count << 16), __ATOMIC_RELEASE);
    while (take_piece(team, 0)) {
    }
    while (__atomic_load_n(&team->finished, __ATOMIC_ACQUIRE) < count) PAUSE(); /* pieces a helper runs */
    return __atomic_load_n(&team->status, __ATOMIC_ACQUIRE);
}

int32_t macb_cpu_team_open(macb_cpu_team *team, int64_t workers) {
    if (team == NULL || team->size < (int64_t)sizeof(macb_cpu_team) || workers < 1) return MACB_CPU_BAD_ARGUMENT;
    team->workers = workers;
    __atomic_store_n(&team->slots, 1, __ATOMIC_RELAXED);
    __atomic_store_n(&team->closed, 0, __ATOMIC_RELEASE);
    return MACB_CPU_OK;
}

int32_t macb_cpu_team_close(macb_cpu_team *team) {
    if (team == NULL) return MACB_CPU_BAD_ARGUMENT;
    __atomic_store_n(&team->closed, 1, __ATOMIC_RELEASE);
    return MACB_CPU_OK;
}

int32_t macb_cpu_team_serve(macb_cpu_team *team, int64_t idle_spins) {
    if (team == NULL || team->size < (int64_t)sizeof(macb_cpu_team) || idle_spins < 1) return MACB_CPU_BAD_ARGUMENT;
    const int64_t worker = __atomic_fetch_add(&team->slots, 1, __ATOMIC_ACQ_REL);
    if (worker >= team->workers) return MACB_CPU_OK; /* no scratch for a worker more */
    int64_t idle = 0;
    while (!__atomic_load_n(&team->closed, __ATOMIC_ACQUIRE) && idle < idle_spins) {
        if (take_piece(team, worker)) {
            idle = 0;
            continue;
        }
        idle++;
        if (idle > SPINS_BEFORE_YIELD) /* the caller is between pieces a while: let others run */
            sched_yield();
        else
            PAUSE();
    }
    return MACB_CPU_OK;
}
