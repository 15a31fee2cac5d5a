"""A cancel token: the synchronous twin of asyncio task cancellation, shared by every long job."""

from __future__ import annotations

import threading


class CancelToken:
    """Set once by any thread; long jobs poll `cancelled` or wait on it with a timeout."""

    def __init__(self) -> None:
        self._event = threading.Event()

    def cancel(self) -> None:
        self._event.set()

    @property
    def cancelled(self) -> bool:
        return self._event.is_set()

    def wait(self, timeout_s: float) -> bool:
        """Sleep up to `timeout_s`; True as soon as the token is cancelled."""
        return self._event.wait(timeout_s)


# Interrupts a C extension dropped. MLX's array constructor, given a numpy array, drops a
# KeyboardInterrupt that a signal handler raises while it runs: with SIGINT sent every 0.5 ms,
# `mx.array` of a (5, 51864) float32 array ran the handler 4 times in 5 s and raised none of them
# (numpy's own calls, and mx.array of a few int32 ids, raised every one). A decoder step converted
# its logits so: 2 of 140 interrupted CLI runs here (bench/interrupt_stress.py) ran on to the end
# and exited 0. Host steps now hand their logits over without MLX, but other conversions remain, so
# the CLI's handler notes each signal before raising, and long loops call
# `raise_dropped_interrupt()` between steps: a dropped interrupt comes back there, one step later.
_noted_signal: int | None = None


def interrupt_handler(signum: int, _frame: object) -> None:
    """A signal handler (the CLI's, for SIGINT and SIGTERM): notes the signal, then raises
    KeyboardInterrupt, as Ctrl-C does."""
    global _noted_signal
    _noted_signal = signum
    raise KeyboardInterrupt(f"signal {signum}")


def raise_dropped_interrupt() -> None:
    """Raise KeyboardInterrupt again for a signal `interrupt_handler` noted whose exception never
    reached the top (a C extension dropped it). A no-op unless that handler is installed; its cost
    is one global read."""
    if _noted_signal is not None:
        raise KeyboardInterrupt(f"signal {_noted_signal}")


def interrupt_handled() -> None:
    """The KeyboardInterrupt reached the code that handles it (the CLI's exit): forget the signal."""
    global _noted_signal
    _noted_signal = None
