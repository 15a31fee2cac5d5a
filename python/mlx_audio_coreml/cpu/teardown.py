"""Release MLX's per-thread streams while Python still runs, so no exit aborts.

MLX keeps each thread's streams (and their command encoders) in C++ thread-local storage. Left to
themselves they are destroyed by the C library after the thread's Python state is gone, possibly
while the main thread is finalizing the interpreter; the destructor then cannot take the GIL and
the process dies with "terminate called without an active exception" (SIGABRT, rc 134), after
every thread returned correct results (seen 4 times in 20 runs of four threads doing MLX work).
MLX's own advice is to call `mx.clear_streams()` at the end of every thread that used it,
the main thread included. We cannot edit our callers' threads, so:
- `release_streams_at_thread_exit()` (called where our API does MLX work on a caller's thread)
  parks a sentinel in a `threading.local`; CPython drops it while tearing down that thread's
  Python state, on that thread with the GIL held, and its finalizer clears the thread's streams;
- the main thread's streams are cleared by an `atexit` hook (registered when this module is
  imported), before the interpreter finalizes, and after the host pool's hook has joined its
  helpers (cpu/pool.py registers it later, so it runs first).
"""

from __future__ import annotations

import atexit
import threading


class _StreamJanitor:
    """Dropped with its thread's `threading.local`: clears that thread's MLX streams."""

    def __del__(self) -> None:
        _clear_streams()


class _ThreadState(threading.local):
    janitor: _StreamJanitor | None = None


_state = _ThreadState()


def _clear_streams() -> None:
    for _ in range(3):  # a second Ctrl-C during the exit cuts one attempt short, not the clearing
        try:
            import mlx.core as mx

            clear = getattr(mx, "clear_streams", None)  # MLX 0.32+; older versions clean up themselves
            if clear is not None:
                mx.synchronize()  # nothing of this thread may still be running on its streams
                clear()
            return
        except KeyboardInterrupt:
            continue
        except Exception:  # noqa: BLE001  (at teardown there is no one left to tell)
            return


def release_streams_at_thread_exit() -> None:
    """Make sure this thread's MLX streams are cleared before the thread (or the process) ends."""
    if threading.current_thread() is not threading.main_thread() and _state.janitor is None:
        _state.janitor = _StreamJanitor()


atexit.register(_clear_streams)  # the main thread's streams (atexit runs on the main thread)
