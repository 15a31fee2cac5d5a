/* A team for one decoder step: the calling thread and helper threads waiting inside
 * macb_cpu_team_serve share pieces of work (cross-attention's heads, the logits product's column
 * pieces) without a hand-off through Python.
 *
 * Why: handing a piece to a sleeping worker thread through the host pool costs ~60 us (a queue, a
 * wake-up and the GIL), more than most pieces of a decoder step take. A helper waiting here takes
 * the next piece in well under a microsecond while it spins, and a few microseconds after a futex
 * wake-up once it sleeps. It spins only briefly (`spin_ns`) after its last piece, because on a
 * busy machine a spinning helper takes time slices from the caller. The helpers are the host
 * pool's Python threads (cpu/team.py enlists them for the length of a step, with the GIL
 * released), so no thread is made here.
 *
 * Claims are one 64-bit word: job generation (32 bits), piece count (16), next piece (16). A piece
 * is claimed by compare-and-swap, so a helper that read an old job can never take a piece of a
 * newer one. The caller takes pieces too, and waits only for pieces a helper is already running.
 * A helper going to sleep first counts itself in `sleepers`, then looks for work once more; the
 * caller publishes a job, then reads `sleepers` (all sequentially consistent): one of the two sees
 * the other, so no job is slept through.
 */
#include <sched.h>
#include <stdint.h>
#include <time.h>
#if defined(__linux__)
#include <linux/futex.h>
#include <sys/syscall.h>
#include <unistd.h>
#endif

#include "macb_cpu.h"
#include "team_internal.h"

#if defined(__x86_64__) || defined(__i386__)
#define PAUSE() __builtin_ia32_pause()
#elif defined(__aarch64__)
#define PAUSE() __asm__ __volatile__("yield")
#else
#define PAUSE() ((void)0)
#endif

enum { WAIT_SPINS_BEFORE_YIELD = 4096, SLEEP_NS = 1000000 };

static int64_t now_ns(void) {
    struct timespec t;
    clock_gettime(CLOCK_MONOTONIC, &t);
    return (int64_t)t.tv_sec * 1000000000 + t.tv_nsec;
}

/* Sleep until `*word` is no longer `seen` (or SLEEP_NS passed); elsewhere than Linux, yield once. */
static void sleep_while(uint32_t *word, uint32_t seen) {
#if defined(__linux__)
    const struct timespec limit = {0, SLEEP_NS};
    syscall(SYS_futex, word, FUTEX_WAIT_PRIVATE, seen, &limit, NULL, 0);
#else
    (void)word;
    (void)seen;
    sched_yield();
#endif
}

/* The caller's side after a change helpers must see (a new job, closing): wake any that sleep. */
static void wake_sleepers(macb_cpu_team *team) {
    if (__atomic_load_n(&team->sleepers, __ATOMIC_SEQ_CST) == 0) return;
    __atomic_add_fetch(&team->wake, 1, __ATOMIC_SEQ_CST);
#if defined(__linux__)
    syscall(SYS_futex, &team->wake, FUTEX_WAKE_PRIVATE, 0x7fffffff, NULL, NULL, 0);
#endif
}

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
    __atomic_store_n(&team->claim, (generation << 32) | ((uint64_t)count << 16), __ATOMIC_SEQ_CST);
    wake_sleepers(team);
    while (take_piece(team, 0)) {
    }
    if (__atomic_load_n(&team->finished, __ATOMIC_ACQUIRE) < count) { /* pieces a helper runs */
        const int64_t start = now_ns();
        for (int64_t spins = 0; __atomic_load_n(&team->finished, __ATOMIC_ACQUIRE) < count; spins++) {
            if (spins < WAIT_SPINS_BEFORE_YIELD) /* short, unless the helper lost its core */
                PAUSE();
            else
                sched_yield();
        }
        team->waited_ns += now_ns() - start; /* the caller's own field: only it writes */
    }
    return __atomic_load_n(&team->status, __ATOMIC_ACQUIRE);
}

int32_t macb_cpu_team_open(macb_cpu_team *team, int64_t workers) {
    if (team == NULL || team->size < (int64_t)sizeof(macb_cpu_team) || workers < 1) return MACB_CPU_BAD_ARGUMENT;
    team->workers = workers; /* helpers still inside from the last step keep their slots and stay */
    __atomic_store_n(&team->closed, 0, __ATOMIC_SEQ_CST);
    return MACB_CPU_OK;
}

int32_t macb_cpu_team_close(macb_cpu_team *team) {
    if (team == NULL) return MACB_CPU_BAD_ARGUMENT;
    __atomic_store_n(&team->closed, 1, __ATOMIC_SEQ_CST);
    wake_sleepers(team);
    return MACB_CPU_OK;
}

/* Nothing to take for `spin_ns`: sleep until the caller publishes a job or closes (or 1 ms). */
static void rest(macb_cpu_team *team) {
    const uint32_t seen = __atomic_load_n(&team->wake, __ATOMIC_SEQ_CST);
    __atomic_add_fetch(&team->sleepers, 1, __ATOMIC_SEQ_CST);
    const uint64_t word = __atomic_load_n(&team->claim, __ATOMIC_SEQ_CST);
    if ((word & 0xffff) >= ((word >> 16) & 0xffff) && !__atomic_load_n(&team->closed, __ATOMIC_SEQ_CST))
        sleep_while(&team->wake, seen);
    __atomic_sub_fetch(&team->sleepers, 1, __ATOMIC_SEQ_CST);
}

/* A helper's worker number (1 .. workers - 1: its scratch), the lowest one free, or 0 for none. */
static int64_t claim_slot(macb_cpu_team *team) {
    for (int64_t worker = 1; worker < team->workers && worker < 63; worker++) {
        const int64_t bit = INT64_C(1) << worker;
        if (!(__atomic_fetch_or(&team->busy, bit, __ATOMIC_SEQ_CST) & bit)) return worker;
    }
    return 0;
}

int32_t macb_cpu_team_serve(macb_cpu_team *team, int64_t spin_ns, int64_t idle_ns) {
    if (team == NULL || team->size < (int64_t)sizeof(macb_cpu_team) || spin_ns < 0 || idle_ns < 1)
        return MACB_CPU_BAD_ARGUMENT;
    const int64_t worker = claim_slot(team);
    if (worker == 0) return MACB_CPU_OK; /* every helper's scratch is taken */
    int64_t last_piece = now_ns();
    while (!__atomic_load_n(&team->closed, __ATOMIC_ACQUIRE)) {
        if (take_piece(team, worker)) {
            last_piece = now_ns();
            continue;
        }
        const int64_t idle = now_ns() - last_piece;
        if (idle > idle_ns) break; /* a safety net: the caller closes the team at the step's end */
        if (idle > spin_ns)
            rest(team);
        else
            PAUSE();
    }
    __atomic_and_fetch(&team->busy, ~(INT64_C(1) << worker), __ATOMIC_SEQ_CST);
    return MACB_CPU_OK;
}
