"""The host worker pool: results in order, errors raised, and a caller that never waits on a helper
that has not started (a crowded machine may not run it for a whole time slice)."""

from __future__ import annotations

import threading

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
    pool = host_pool._pool()
    release = threading.Event()
    blockers = [pool.submit(release.wait, 30) for _ in range(pool._max_workers)]  # every helper busy
    try:
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
        for blocker in blockers:
            blocker.result(30)


def test_work_inside_work_completes() -> None:
    def outer(i: int) -> int:
        return sum(host_pool.run_all(lambda j: i * j, range(4)))

    assert host_pool.run_all(outer, range(6)) == [6 * i for i in range(6)]


def test_work_inside_an_item_runs_inline_whichever_thread_claims_it() -> None:
    seen = host_pool.run_all(lambda _i: host_pool.in_worker(), range(8))
    assert seen == [True] * 8  # the caller too: nested splits never depend on who ran the item
    assert not host_pool.in_worker()


def test_an_interrupt_while_waiting_is_raised_only_after_the_helpers_finish(monkeypatch):
    """Ctrl-C during the caller's wait must not unwind under a helper still writing its buffers."""
    import threading
    import time

    from mlx_audio_coreml.cpu import pool as host_pool

    finished = threading.Event()
    calls = {"n": 0}
    real_wait = finished.wait

    def interrupted_wait(timeout=None):
        calls["n"] += 1
        if calls["n"] == 1:
            threading.Timer(0.2, finished.set).start()  # the helper ends a little later
            raise KeyboardInterrupt
        return real_wait(timeout)

    monkeypatch.setattr(finished, "wait", interrupted_wait)
    start = time.monotonic()
    with pytest.raises(KeyboardInterrupt):
        host_pool._wait_out(finished)
    assert finished.is_set() and time.monotonic() - start >= 0.15
