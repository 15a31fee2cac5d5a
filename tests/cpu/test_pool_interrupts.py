"""The host pool under Ctrl-C at any moment, and at exit (issue #16's interrupted-CLI race).

A signal handler raises KeyboardInterrupt on the main thread between any two bytecodes. With
`concurrent.futures` behind the pool, an interrupt inside its `submit` left a semaphore's lock
held: every helper then blocked for good and the process hung at exit (this test's script hung
within 600 calls, and 63 of 570 interrupts escaped `run_all` while a helper still ran a piece).
Each script runs in a fresh process, so the signals never reach pytest itself.
"""

from __future__ import annotations

import os
import subprocess
import sys
import textwrap

from speech_data import REPO

# Interrupts every 0.5-5 ms while the main thread calls run_all (the handler raises only while the
# call runs); pieces of work busy-wait up to 2 ms.
INTERRUPTED_CALLS = textwrap.dedent(
    """
    import random, signal, sys, threading, time
    from mlx_audio_coreml.cpu import pool

    calls_wanted = int(sys.argv[1])
    running, count_lock, stopping = 0, threading.Lock(), False

    def work(i):
        global running
        helper = threading.current_thread() is not threading.main_thread()  # helpers are never interrupted
        if helper:
            with count_lock:
                running += 1
        end = time.perf_counter() + random.uniform(0, 0.002)
        while time.perf_counter() < end:
            pass
        if helper:
            with count_lock:
                running -= 1
        return i

    def interrupter(main):
        while not stopping:
            time.sleep(random.uniform(0.0005, 0.005))
            signal.pthread_kill(main, signal.SIGINT)

    armed = False

    def raise_when_armed(signum, frame):  # the harness's own lines are not under test
        if armed:
            raise KeyboardInterrupt

    signal.signal(signal.SIGINT, raise_when_armed)
    threading.Thread(target=interrupter, args=(threading.main_thread().ident,), daemon=True).start()
    calls = interrupted = escaped_under_helper = 0
    while calls < calls_wanted:
        try:
            armed = True
            pool.run_all(work, range(8))
            armed = False
        except KeyboardInterrupt:
            armed = False
            interrupted += 1
            escaped_under_helper += running > 0
        calls += 1
    stopping = True
    print(calls, interrupted, escaped_under_helper)
    """
)

# A hook registered after cpu/teardown.py's and before the pool's first use runs after the pool's
# own hook and before teardown clears MLX's streams.
HELPERS_AT_EXIT = textwrap.dedent(
    """
    import atexit, threading
    from mlx_audio_coreml.cpu import teardown  # noqa: F401  (its hook first: it runs last)

    def report():
        print([t.name for t in threading.enumerate() if t.name.startswith("mlx-audio-host")])

    atexit.register(report)
    from mlx_audio_coreml.cpu import pool
    assert pool.run_all(lambda i: i * i, range(8)) == [i * i for i in range(8)]
    """
)


def _run(script: str, *args: str, timeout: float) -> subprocess.CompletedProcess[str]:
    env = dict(os.environ, MLX_AUDIO_COREML_HOST_THREADS="4")  # three helpers, whatever the machine
    return subprocess.run(
        [sys.executable, "-c", script, *args], cwd=REPO, env=env, capture_output=True, text=True, timeout=timeout
    )


def test_interrupts_at_random_moments_never_hang_nor_leave_a_helper_running() -> None:
    done = _run(INTERRUPTED_CALLS, "150", timeout=240)  # ~5 s idle; a hang shows as TimeoutExpired
    assert done.returncode == 0, done.stderr[-2000:]
    calls, interrupted, escaped_under_helper = map(int, done.stdout.split())
    assert calls == 150 and interrupted > 30  # the interrupts really landed inside run_all
    assert escaped_under_helper == 0


def test_helpers_are_joined_at_exit_before_mlx_streams_are_cleared() -> None:
    done = _run(HELPERS_AT_EXIT, timeout=120)
    assert done.returncode == 0, done.stderr[-2000:]
    assert done.stdout.strip() == "[]"
