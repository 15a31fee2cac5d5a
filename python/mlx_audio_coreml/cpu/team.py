"""A team of threads for one decoder step: the caller and host-pool helpers spinning in C (`cpu_kernels/team.c`).

Why: handing a piece of work to a host-pool helper (`pool.run_all`) costs ~60 us (waking a thread
and the GIL), as much as the pieces of a decoder step take: the logits product's column pieces,
cross-attention's heads. A step that runs `with enlisted():` sends one helper into the C library
for its length (the GIL released); the C kernels given the team (`current()`) hand it pieces in
well under a microsecond, and the caller takes every piece nobody has taken, so a helper that
starts late (a busy machine) costs nothing but its absence. The helper spins ~30 us after each
piece, then sleeps on a futex until the next job (cpu_kernels/team.c says why), and leaves when the
step ends.

MLX_AUDIO_COREML_STEP_TEAM=0 turns it off (the pool's hand-off then, as before).
"""

from __future__ import annotations

import ctypes
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

from .. import config
from . import native_kernels
from . import pool as host_pool

# A helper spins this long after its last piece, then sleeps until the caller publishes a job (a
# futex: a few microseconds to wake). Measured on this 2-core AMD EPYC, tiny.en int8, 1.5 min of
# real speech, a step with the team against without (in turns, `bench/longform_phases.py --ab-team`):
# greedy 3.22 against 3.86 ms, beam 5 5.83 against 6.99; with one core taken by another process,
# greedy 4.05 against 4.55 (a helper spinning for the whole step instead: 5.5 against 4.5).
_SPIN_NS = 30_000
_IDLE_NS = 200_000_000  # and leaves when nothing came for this long: a safety net (steps close it)
# Helpers stay for the whole step, and the step's pieces are memory-bound reads that a few cores
# saturate: more helpers would take cores for little (on 2 cores, the only size measured, it is 1).
_MAX_HELPERS = 3
_i64, _ptr = ctypes.c_int64, ctypes.c_void_p


class TeamState(ctypes.Structure):
    """macb_cpu_team, field for field (the C side's; zeroed here)."""

    _fields_ = [
        ("size", _i64), ("claim", ctypes.c_uint64), ("finished", _i64), ("busy", _i64), ("workers", _i64),
        ("closed", ctypes.c_int32), ("status", ctypes.c_int32), ("piece", _ptr), ("context", _ptr),
        ("wake", ctypes.c_uint32), ("sleepers", ctypes.c_int32), ("waited_ns", _i64),
    ]  # fmt: skip


def _declared() -> Any:
    library = native_kernels.library()
    if library is not None and library.macb_cpu_team_serve.argtypes is None:
        pointer = ctypes.POINTER(TeamState)
        library.macb_cpu_team_open.argtypes = [pointer, _i64]
        library.macb_cpu_team_close.argtypes = [pointer]
        library.macb_cpu_team_serve.argtypes = [pointer, _i64, _i64]
        for function in (library.macb_cpu_team_open, library.macb_cpu_team_close, library.macb_cpu_team_serve):
            function.restype = ctypes.c_int32
    return library


class _ThreadTeam(threading.local):
    """Each calling thread's own team (threads may step decoders at once), and whether it is open."""

    def __init__(self) -> None:
        self.state: TeamState | None = None
        self.open = False


_mine = _ThreadTeam()
_every_state: list[TeamState] = []  # never freed: a helper may still be leaving one when its thread ends
_states_lock = threading.Lock()


def current() -> TeamState | None:
    """The open team of the step running on this thread, or None (no step, or no team)."""
    return _mine.state if _mine.open else None


def possible() -> bool:
    """Steps may open a team here: it is not switched off, there is a second core and our C kernels."""
    return config.setting(config.STEP_TEAM) != "0" and host_pool.worker_count() > 1 and native_kernels.available()


def _wanted() -> bool:
    return possible() and not host_pool.in_worker() and not _mine.open


@contextmanager
def enlisted(wanted: bool = True) -> Iterator[TeamState | None]:
    """This thread's team, open for the body, with the pool's helpers sent into it; None (nothing
    done) when not `wanted` (work that hands pieces to the pool instead: it would find the helpers
    busy here), without a second core or our C kernels, inside a pool worker or another step."""
    if not (wanted and _wanted()):
        yield None
        return
    library = _declared()
    if _mine.state is None:
        _mine.state = TeamState(size=ctypes.sizeof(TeamState))
        with _states_lock:
            _every_state.append(_mine.state)
    state = _mine.state
    helper_count = min(host_pool.worker_count() - 1, _MAX_HELPERS)
    native_kernels.checked(library.macb_cpu_team_open(ctypes.byref(state), helper_count + 1), "team_open")
    helpers = host_pool.in_background(
        lambda _: library.macb_cpu_team_serve(ctypes.byref(state), _SPIN_NS, _IDLE_NS), helper_count
    )
    _mine.open = True
    try:
        yield state
    finally:
        _mine.open = False
        library.macb_cpu_team_close(ctypes.byref(state))
        # Not waited for: every piece has run (each kernel waits for its own), so a helper only
        # leaves; waiting cost ~0.25 ms a step here (its futex wake-up and the GIL). One still
        # inside when the next step opens the team stays and serves it.
        helpers.detach()
