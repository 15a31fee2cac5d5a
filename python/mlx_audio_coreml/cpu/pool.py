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

Ctrl-C is an exception that may be raised on the main thread between any two bytecodes (a signal
handler raises it there), so the caller's side uses only operations that cannot be left half done:
a C queue, a C counter and plain C locks. `concurrent.futures` could not be used: its `submit` goes
through Python-level semaphores and conditions, and an interrupt inside one left its lock held, so
every helper blocked for good and the interrupted CLI hung at exit (reproduced in
tests/cpu/test_pool_interrupts.py). Helpers are daemon threads that an `atexit` hook stops and joins
before MLX's streams are cleared (cpu/teardown.py) and before the interpreter finalizes.
"""

from __future__ import annotations

import atexit
import itertools
import os
import queue
import threading
from collections.abc import Callable, Iterable
from functools import lru_cache
from typing import Any, Generic, TypeVar

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


class _Batch(Generic[T, R]):
    """Items shared by the caller and the helpers: each claims the next one until none is left.

    Helpers (never interrupted) keep the count of helpers inside the batch; the caller only closes
    the batch and waits for that count to reach zero."""

    def __init__(self, work: Callable[[T], R], items: list[T]) -> None:
        self.work, self.items = work, items
        self.results: list[Any] = [None] * len(items)
        self.errors: list[BaseException | None] = [None] * len(items)
        self._claims = itertools.count()  # next() is one C call: a claim is made or not, never half
        self._lock = threading.Lock()  # a C lock: `with` on it cannot be left held by an interrupt
        self._closed, self._helping = False, 0
        self._idle = threading.Lock()
        self._idle.acquire()  # released once, by the last helper out of a closed batch

    def drain(self) -> None:
        """Run items until none is left unclaimed."""
        while (index := next(self._claims)) < len(self.items):
            try:
                self.results[index] = self.work(self.items[index])
            except BaseException as error:  # handed to the caller, which raises the first
                self.errors[index] = error

    def help(self) -> None:
        """A helper's share: nothing once the caller has closed the batch (its work is done)."""
        with self._lock:
            if self._closed:
                return
            self._helping += 1
        try:
            self.drain()
        finally:
            with self._lock:
                self._helping -= 1
                if self._closed and self._helping == 0:
                    self._idle.release()

    def detach(self) -> None:
        """No more claims by late helpers, without waiting for those inside (`in_background` work
        that touches nothing of the caller's once it is told to stop)."""
        with self._lock:
            self._closed = True

    def close(self) -> None:
        """No more claims by late helpers; wait for those inside (even through Ctrl-C: they write
        into buffers the caller's frames own), then raise the interrupt, if one came."""
        interrupt: BaseException | None = None
        while True:
            try:
                with self._lock:
                    self._closed = True
                    if self._helping == 0:
                        break
                self._idle.acquire()  # each pass re-reads the count: a wake-up lost to an interrupt is harmless
            except BaseException as caught:  # KeyboardInterrupt, SystemExit from a signal handler
                interrupt = interrupt or caught
        if interrupt is not None:
            raise interrupt


class _Helpers:
    """The pool's threads: each takes batches from one queue until it takes None."""

    def __init__(self, count: int) -> None:
        self._queue: queue.SimpleQueue[_Batch[Any, Any] | None] = queue.SimpleQueue()  # C: put is atomic
        self._threads = [
            threading.Thread(target=self._serve, name=f"mlx-audio-host-{i}", daemon=True) for i in range(count)
        ]
        for thread in self._threads:
            thread.start()
        atexit.register(self.stop)  # after teardown's hook was registered, so it runs before it

    def offer(self, batch: _Batch[Any, Any], copies: int) -> None:
        for _ in range(copies):
            self._queue.put(batch)

    def stop(self) -> None:
        """Each helper finishes what it runs and ends; joined (through a second Ctrl-C too), so none
        runs while MLX's streams are cleared or Python finalizes."""
        for _ in self._threads:
            self._queue.put(None)
        interrupt: BaseException | None = None
        for thread in self._threads:
            while thread.is_alive():
                try:
                    thread.join()
                except BaseException as caught:  # noqa: PERF203  (a signal handler's exception)
                    interrupt = interrupt or caught
        if interrupt is not None:
            raise interrupt

    def _serve(self) -> None:
        _worker.active = True
        onednn.use_one_thread_here()
        release_streams_at_thread_exit()  # MLX work handed to a worker must not abort the exit
        while (batch := self._queue.get()) is not None:
            batch.help()


@lru_cache(maxsize=1)
def _helpers() -> _Helpers:
    return _Helpers(worker_count() - 1)


def run_all(work: Callable[[T], R], items: Iterable[T]) -> list[R]:
    """work(item) for every item, spread over the caller and the helpers; results in order; the
    first error raised.

    Called from a helper (work inside work) it runs the items itself. Never waits on a helper that
    has not started: the caller runs every item nobody claimed first."""
    items = list(items)
    if worker_count() == 1 or len(items) < 2 or _worker.active:
        return [work(item) for item in items]
    batch = _Batch(work, items)
    try:
        _helpers().offer(batch, min(worker_count() - 1, len(items) - 1))
        _worker.active = True  # work inside an item runs inline on any thread: the same pieces, the same float sums
        batch.drain()
    finally:
        _worker.active = False
        batch.close()  # only pieces a helper is running now remain
    for error in batch.errors:
        if error is not None:
            raise error
    return batch.results


def in_background(work: Callable[[None], object], copies: int) -> _Batch[None, object]:
    """work(None) on up to `copies` helpers, started now and not waited for: for work that waits
    for the caller's (cpu/team.py's helpers). The caller's `close()` on the result waits for the
    helpers inside (end their work first), `detach()` does not; both keep queued ones from starting."""
    batch: _Batch[None, object] = _Batch(work, [None] * max(copies, 0))
    if copies > 0:
        _helpers().offer(batch, copies)
    return batch


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
