"""The host worker pool: results in order, errors raised, and a caller that never waits on a helper
that has not started (a crowded machine may not run it for a whole time slice)."""

from __future__ import annotations

import threading
import time
from typing import Any

import pytest

from mlx_audio_coreml.cpu import pool as host_pool


def test_results_come_back_in_item_order() -> None:
    assert host_pool.run_all(lambda i: i * i, range(20)) == [i * i for i in range(20)]


def test_first_error_is_raised() -> None:
    def work(i: int) -> int:
        if i in (3, 7):
            raise ValueError(i)
        return i

    with pytest.raises(ValueError, match="3"):
        host_pool.run_all(work, range(10))


def test_caller_runs_every_piece_while_all_helpers_are_busy() -> None:
    if host_pool.worker_count() < 2:
        pytest.skip("one worker: run_all never uses helpers")
    helpers = host_pool.worker_count() - 1
    release = threading.Event()
    blocker = host_pool._Batch(lambda _i: release.wait(30), list(range(helpers)))
    host_pool._helpers().offer(blocker, helpers)  # every helper takes one piece and blocks in it
    try:
        deadline = time.monotonic() + 10
        while blocker._helping < helpers and time.monotonic() < deadline:
            time.sleep(0.01)
        ran_on: list[str] = []
        done = threading.Event()

        def call() -> None:
            ran_on.extend(host_pool.run_all(lambda _i: threading.current_thread().name, range(8)))
            done.set()

        caller = threading.Thread(target=call, name="caller")
        caller.start()
        assert done.wait(10), "run_all waited for helpers that could not start"
        assert ran_on == ["caller"] * 8
    finally:
        release.set()
        blocker.close()


def test_work_inside_work_completes() -> None:
    def outer(i: int) -> int:
        return sum(host_pool.run_all(lambda j: i * j, range(4)))

    assert host_pool.run_all(outer, range(6)) == [6 * i for i in range(6)]


def test_work_inside_an_item_runs_inline_whichever_thread_claims_it() -> None:
    seen = host_pool.run_all(lambda _i: host_pool.in_worker(), range(8))
    assert seen == [True] * 8  # the caller too: nested splits never depend on who ran the item
    assert not host_pool.in_worker()


class _InterruptedOnce:
    """A lock whose first blocking acquire is cut short by Ctrl-C, as a signal handler would."""

    def __init__(self, lock: Any) -> None:
        self.lock, self.interrupted = lock, False

    def acquire(self, *args: Any) -> bool:
        if not self.interrupted:
            self.interrupted = True
            raise KeyboardInterrupt
        return self.lock.acquire(*args)

    def release(self) -> None:
        self.lock.release()


def test_an_interrupt_while_closing_is_raised_only_after_the_helpers_finish() -> None:
    """Ctrl-C during the caller's wait must not unwind under a helper still writing its buffers."""
    started, finished = threading.Event(), threading.Event()

    def slow(_i: int) -> None:
        started.set()
        time.sleep(0.3)
        finished.set()

    batch = host_pool._Batch(slow, [0])
    batch._idle = _InterruptedOnce(batch._idle)  # type: ignore[assignment]
    helper = threading.Thread(target=batch.help)
    helper.start()
    assert started.wait(10)
    with pytest.raises(KeyboardInterrupt):
        batch.close()
    assert finished.is_set() and batch._idle.interrupted
    helper.join(10)


def test_a_helper_that_comes_after_close_runs_nothing() -> None:
    ran: list[int] = []
    batch = host_pool._Batch(ran.append, [0, 1, 2])
    batch.close()
    batch.help()
    assert ran == []
