"""Worker threads for the CPU host path: independent pieces of one layer (heads, row blocks) at once.

Why: in the encoder, softmax, GELU and the quantization passes are numpy loops on one core, and a
product split between OpenMP threads waits for both at every call. Giving each core its own
pieces, with single-threaded kernels, keeps both cores busy through the whole layer: numpy and
oneDNN release the GIL while they work. One pool per process, made on first use.

The calling thread works too, and takes whatever no helper has started: on a crowded machine a
helper may wait a whole time slice to run, and a caller that sat waiting for it lost that slice
(in a profile of a busy 2-core machine, 47 ms of a 163 ms beam decoder step was spent waiting for a
woken helper to take its half of the logits product). The caller waits only for pieces a helper
already runs, never for one still queued.
"""

from __future__ import annotations

import os
import threading
from collections.abc import Callable, Iterable
from concurrent.futures import ThreadPoolExecutor
from functools import lru_cache
from typing import Any, TypeVar

from .. import config
from . import onednn
from .teardown import release_streams_at_thread_exit

T = TypeVar("T")
R = TypeVar("R")


def worker_count() -> int:
    """Cores this process may run on (MLX_AUDIO_COREML_HOST_THREADS overrides), at most 16."""
    wanted = config.setting(config.HOST_THREADS)
    if wanted.isdigit() and int(wanted) > 0:
        return min(int(wanted), 16)
    try:
        cores = len(os.sched_getaffinity(0))
    except AttributeError:  # macOS
        cores = os.cpu_count() or 1
    return max(1, min(cores, 16))


class _Worker(threading.local):
    active: bool = False


_worker = _Worker()


def in_worker() -> bool:
    """True on one of the pool's threads, or on a caller running a batch's items (work handed out
    there runs inline)."""
    return _worker.active


def _start_worker() -> None:
    _worker.active = True
    onednn.use_one_thread_here()
    release_streams_at_thread_exit()  # MLX work handed to a worker must not abort the exit


@lru_cache(maxsize=1)
def _pool() -> ThreadPoolExecutor:
    return ThreadPoolExecutor(worker_count() - 1, thread_name_prefix="mlx-audio-host", initializer=_start_worker)


class _Batch:
    """Items shared by the caller and the helpers: each claims the next one until none is left."""

    def __init__(self, work: Callable[[T], R], items: list[T]) -> None:
        self.work, self.items = work, items
        self.results: list[Any] = [None] * len(items)
        self.errors: list[BaseException | None] = [None] * len(items)
        self._next, self._done = 0, 0
        self._lock = threading.Lock()
        self.finished = threading.Event()

    def _claim(self) -> int | None:
        with self._lock:
            index, self._next = self._next, self._next + 1
        return index if index < len(self.items) else None

    def drain(self) -> None:
        """Run items until none is left unclaimed (a helper that comes late finds none and returns)."""
        while (index := self._claim()) is not None:
            try:
                self.results[index] = self.work(self.items[index])
            except BaseException as error:  # handed to the caller, which raises the first
                self.errors[index] = error
            with self._lock:
                self._done += 1
                if self._done == len(self.items):
                    self.finished.set()


def run_all(work: Callable[[T], R], items: Iterable[T]) -> list[R]:
    """work(item) for every item, spread over the caller and the helpers; results in order; the
    first error raised.

    Called from a helper (work inside work) it runs the items itself. Never waits on a helper that
    has not started: the caller runs every item nobody claimed first."""
    items = list(items)
    if worker_count() == 1 or len(items) < 2 or _worker.active:
        return [work(item) for item in items]
    batch = _Batch(work, items)
    pool = _pool()
    for _ in range(min(worker_count() - 1, len(items) - 1)):
        pool.submit(batch.drain)
    _worker.active = True  # work inside an item runs inline on any thread: the same pieces, the same float sums
    try:
        batch.drain()
    finally:
        _worker.active = False
    _wait_out(batch.finished)  # only pieces a helper is running now remain
    for error in batch.errors:
        if error is not None:
            raise error
    return batch.results


def _wait_out(finished: threading.Event) -> None:
    """Wait for the helpers' pieces even through Ctrl-C: they write into the caller's buffers, so
    unwinding (and freeing those) under them corrupts the heap ('corrupted size vs. prev_size' at
    the exit of an interrupted CLI run). The interrupt is raised once they are done."""
    interrupt: BaseException | None = None
    while not finished.is_set():
        try:
            finished.wait()
        except BaseException as caught:  # KeyboardInterrupt, SystemExit from a signal handler
            interrupt = interrupt or caught
    if interrupt is not None:
        raise interrupt


def even_ranges(count: int, pieces: int | None = None) -> list[slice]:
    """`count` positions cut into `pieces` (default: one per worker) nearly equal slices."""
    pieces = max(1, min(pieces or worker_count(), count))
    size = -(-count // pieces)
    return [slice(start, min(start + size, count)) for start in range(0, count, size)]


def row_blocks(length: int, max_rows: int) -> list[slice]:
    """`length` rows cut into a few even blocks per worker, none over `max_rows` (cache-sized)."""
    workers = worker_count()
    count = workers * max(1, -(-length // (max_rows * workers)))
    return even_ranges(length, count)
