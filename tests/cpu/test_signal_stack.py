"""Signals that arrive while oneDNN's sgemm kernels run (cpu/signal_stack.py).

Those kernels move the stack pointer into a heap buffer of their own; without an alternate signal
stack, a signal's frame landed in the heap and glibc aborted later ("corrupted size vs. prev_size":
2-3 of 25 interrupted CLI runs, bench/interrupt_stress.py). The script below aborted in 3 of 3
runs before the fix (rc 134 within 2 s) and passes with it.
"""

from __future__ import annotations

import ctypes
import os
import signal
import subprocess
import sys
import textwrap
import threading
import time
from collections.abc import Callable

import numpy as np
import pytest

from mlx_audio_coreml.cpu import onednn, signal_stack
from mlx_audio_coreml.cpu import pool as host_pool
from speech_data import REPO

pytestmark = [
    pytest.mark.skipif(not sys.platform.startswith("linux"), reason="oneDNN is used on Linux only"),
]
needs_onednn = pytest.mark.skipif(not onednn.available(), reason="oneDNN is not installed")

# The main thread multiplies a prefill-sized block over and over while a helper thread signals it
# every ~100 us; a Python handler counts the signals. The process must end normally.
SIGNALLED_PRODUCTS = textwrap.dedent(
    """
    import signal, sys, threading, time
    import numpy as np
    from mlx_audio_coreml.cpu import onednn

    received = 0
    def count(signum, frame):
        global received
        received += 1
    signal.signal(signal.SIGUSR1, count)
    rng = np.random.default_rng(0)
    a, w = rng.standard_normal((200, 384), dtype=np.float32), rng.standard_normal((384, 384), dtype=np.float32)
    out = np.empty((200, 384), np.float32)
    stop, main = threading.Event(), threading.main_thread().ident
    def send():
        while not stop.is_set():
            signal.pthread_kill(main, signal.SIGUSR1)
            time.sleep(0.0001)
    sender = threading.Thread(target=send)
    sender.start()
    end, kept = time.monotonic() + float(sys.argv[1]), []
    while time.monotonic() < end:
        onednn.sgemm(a, w, out, b_transposed=True)
        kept = (kept + [np.empty(int(rng.integers(1, 2000)), np.float32)])[-50:]  # the heap in use around it
    stop.set()
    sender.join()
    print(received, float(np.abs(out - a @ w.T).max()))
    """
)


@needs_onednn
def test_signals_during_products_leave_the_heap_intact() -> None:
    env = {k: v for k, v in os.environ.items() if k != "PYTHONFAULTHANDLER"}  # its own stack would hide the bug
    done = subprocess.run(
        [sys.executable, "-c", SIGNALLED_PRODUCTS, "1.5"], cwd=REPO, env=env, capture_output=True, text=True,
        timeout=120,
    )  # fmt: skip
    assert done.returncode == 0, done.stderr[-2000:]
    received, error = done.stdout.split()
    assert int(received) > 200  # the signals did arrive during the products
    assert float(error) < 1e-3


class _SigAction(ctypes.Structure):
    """Linux x86-64's struct sigaction (kernel-independent glibc layout)."""

    _fields_ = [
        ("handler", ctypes.c_void_p), ("mask", ctypes.c_ulong * 16), ("flags", ctypes.c_int),
        ("restorer", ctypes.c_void_p),
    ]  # fmt: skip


def test_python_handlers_run_on_the_alternate_stack() -> None:
    """The fix relies on Python installing its handlers with SA_ONSTACK (3.10 and later)."""
    sa_onstack = 0x08000000
    previous = signal.signal(signal.SIGUSR2, lambda signum, frame: None)
    try:
        found = _SigAction()
        assert ctypes.CDLL(None).sigaction(signal.SIGUSR2, None, ctypes.byref(found)) == 0
        assert found.flags & sa_onstack
    finally:
        signal.signal(signal.SIGUSR2, previous)


def _in_new_thread(work: Callable[[], tuple[object, object]]) -> tuple[object, object]:
    result: list[tuple[object, object]] = []
    thread = threading.Thread(target=lambda: result.append(work()))
    thread.start()
    thread.join()
    return result[0]


@needs_onednn
def test_a_thread_gets_a_stack_with_its_first_product() -> None:
    def run() -> tuple[object, object]:
        before = signal_stack.current()
        onednn.sgemm(np.ones((4, 8), np.float32), np.ones((8, 3), np.float32), np.empty((4, 3), np.float32))
        return before, signal_stack.current()

    before, after = _in_new_thread(run)
    assert before is None
    assert after is not None and after[1] >= signal_stack.SIZE


def test_a_large_enough_stack_of_the_threads_own_is_kept() -> None:
    def run() -> tuple[object, object]:
        memory = ctypes.create_string_buffer(2 * signal_stack.SIZE)
        own = signal_stack._Stack(ctypes.addressof(memory), 0, len(memory))
        assert signal_stack._libc().sigaltstack(ctypes.byref(own), None) == 0
        signal_stack.ensure()
        found = signal_stack.current()
        signal_stack._libc().sigaltstack(ctypes.byref(signal_stack._Stack(None, 2, 0)), None)
        return found, (ctypes.addressof(memory), len(memory))

    found, own = _in_new_thread(run)
    assert found == own


@needs_onednn
def test_pool_helpers_have_stacks() -> None:
    if host_pool.worker_count() < 2:
        pytest.skip("one core: no helpers")

    def where(_: int) -> tuple[str, object]:
        time.sleep(0.1)  # long enough for every helper to claim an item
        return threading.current_thread().name, signal_stack.current()

    found = host_pool.run_all(where, range(2 * host_pool.worker_count()))
    helpers = [stack for name, stack in found if name.startswith("mlx-audio-host")]
    assert helpers and all(stack is not None and stack[1] >= signal_stack.SIZE for stack in helpers)
