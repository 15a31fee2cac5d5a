"""An alternate signal stack for every thread that runs oneDNN's kernels (Linux).

Why: oneDNN's x86-64 JIT sgemm kernels point the stack pointer at a heap buffer of their own
while they run. A signal delivered to the thread then (Ctrl-C, the CLI's SIGTERM, any signal with
a Python handler) gets its frame, ~3 KB of registers and AVX-512 state, written by the kernel just
below that pointer: into the heap. glibc notices later and aborts ("corrupted size vs. prev_size").
Found with bench/interrupt_stress.py (2-3 of 25 interrupted CLI runs aborted); a core dump showed
the frame's magic words and an interrupted stack pointer inside the heap. Measured with a C probe
on this AMD EPYC: a (200 x 384) @ (384 x 384) sgemm, a prompt prefill's product, had the pointer
off the thread's stack at 3423 of 3985 signals.

Python installs its handlers with SA_ONSTACK (since 3.10; tests/cpu/test_signal_stack.py checks
it), so a thread with an alternate stack takes the frame there instead. `ensure()` gives the
calling thread one, unless it has one as large already (pytest's faulthandler sets a smaller one
on the main thread: it is replaced). The stack is unset and freed when the thread's Python state
goes (a `threading.local`, as cpu/teardown.py's janitor). oneDNN is used on Linux only.
"""

from __future__ import annotations

import ctypes
import sys
import threading
from functools import lru_cache
from typing import Any

SIZE = 64 * 1024  # a frame is ~3 KB with AVX-512, ~11 KB with AMX's tiles; the handler runs there too
_SS_DISABLE = 2  # Linux's value


class _Stack(ctypes.Structure):
    """Linux's stack_t."""

    _fields_ = [("ss_sp", ctypes.c_void_p), ("ss_flags", ctypes.c_int), ("ss_size", ctypes.c_size_t)]


@lru_cache(maxsize=1)
def _libc() -> Any:
    if not sys.platform.startswith("linux"):
        return None
    libc = ctypes.CDLL(None, use_errno=True)
    libc.sigaltstack.argtypes = [ctypes.POINTER(_Stack), ctypes.POINTER(_Stack)]
    libc.sigaltstack.restype = ctypes.c_int
    return libc


def current() -> tuple[int, int] | None:
    """The calling thread's alternate signal stack as (address, size), None when it has none."""
    libc = _libc()
    found = _Stack()
    if libc is None or libc.sigaltstack(None, ctypes.byref(found)) != 0 or found.ss_flags & _SS_DISABLE:
        return None
    return int(found.ss_sp or 0), int(found.ss_size)


class _OwnStack:
    """One thread's stack memory, set as its alternate stack; unset again before it is freed.

    `__del__` may run while the interpreter exits, with this module's globals gone: it uses only
    what the instance holds."""

    def __init__(self, libc: Any) -> None:
        self._libc, self._byref, self._ident, self._kept = libc, ctypes.byref, threading.get_ident, _kept
        self._found, self._off = _Stack(), _Stack(None, _SS_DISABLE, 0)
        self.memory = ctypes.create_string_buffer(SIZE)
        self.address = ctypes.addressof(self.memory)
        self.owner = threading.get_ident()

    def set(self) -> bool:
        return bool(self._libc.sigaltstack(self._byref(_Stack(self.address, 0, SIZE)), None) == 0)

    def __del__(self) -> None:
        if self._ident() != self.owner:  # dropped on another thread: never free a stack that may be live
            self._kept.append(self.memory)
            return
        if self._libc.sigaltstack(None, self._byref(self._found)) == 0 and self._found.ss_sp == self.address:
            self._libc.sigaltstack(self._byref(self._off), None)


_kept: list[Any] = []


class _ThreadStack(threading.local):
    stack: _OwnStack | None = None  # ours, kept for the thread's life


_mine = _ThreadStack()


def ensure() -> None:
    """Give the calling thread an alternate signal stack of at least SIZE bytes, unless it has one
    (onednn.use_one_thread_here calls this once per thread); nothing off Linux, or inside a signal
    handler, where the stack cannot change."""
    libc = _libc()
    if libc is None:
        return
    found = current()
    if found is not None and found[1] >= SIZE:
        return
    stack = _OwnStack(libc)
    if stack.set():
        _mine.stack = stack
