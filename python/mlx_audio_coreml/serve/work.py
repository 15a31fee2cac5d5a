"""A bounded queue and worker threads per model: the event loop never runs model code, a full queue
is refused at once (429 with a Retry-After), and a request whose client left is cancelled.

    queue = WorkQueue("tiny.en", workers=1, max_queued=8)
    result = await queue.submit(lambda token: work(token), token)   # raises QueueFull when full
"""

from __future__ import annotations

import asyncio
import math
import queue
import threading
import time
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from ..cancel import CancelToken
from ..errors.serve import QueueFull, ShuttingDown


class JobCancelled(Exception):
    """The job's token was cancelled before or while it ran (its client went away)."""


@dataclass
class _Job:
    run: Callable[[CancelToken], Any]
    token: CancelToken
    loop: asyncio.AbstractEventLoop
    future: asyncio.Future

    def settle(self, result: Any = None, error: BaseException | None = None) -> None:
        def apply() -> None:
            if self.future.done():  # the awaiting request was cancelled meanwhile
                return
            if error is not None:
                self.future.set_exception(error)
            else:
                self.future.set_result(result)

        try:
            self.loop.call_soon_threadsafe(apply)
        except RuntimeError:  # the loop has closed: nobody is waiting any more
            pass


class WorkQueue:
    """Jobs for one model: at most `max_queued` waiting and `workers` running."""

    def __init__(self, name: str, workers: int = 1, max_queued: int = 8) -> None:
        self.name = name
        self.workers = max(1, int(workers))
        self.max_queued = max(0, int(max_queued))
        self._jobs: queue.Queue[_Job | None] = queue.Queue()
        self._lock = threading.Lock()
        self._waiting = 0
        self._running = 0
        self._closed = False
        self._durations: deque[float] = deque(maxlen=32)
        self._threads = [
            threading.Thread(target=self._work, name=f"serve-{name}-{i}", daemon=True) for i in range(self.workers)
        ]
        for thread in self._threads:
            thread.start()

    @property
    def waiting(self) -> int:
        return self._waiting

    @property
    def running(self) -> int:
        return self._running

    def submit(self, run: Callable[[CancelToken], Any], token: CancelToken) -> asyncio.Future:
        """Queue `run(token)`; its result (or error) arrives in the returned future."""
        loop = asyncio.get_running_loop()
        with self._lock:
            if self._closed:
                raise ShuttingDown()
            if self._waiting >= self.max_queued and self._running >= self.workers:
                raise QueueFull(self.max_queued, self.retry_after_s())
            self._waiting += 1
        future = loop.create_future()
        self._jobs.put(_Job(run, token, loop, future))
        return future

    def retry_after_s(self) -> int:
        """Seconds until a slot is likely free: the recent mean run time times the jobs ahead."""
        mean = sum(self._durations) / len(self._durations) if self._durations else 1.0
        return max(1, math.ceil(mean * (self._waiting + 1) / self.workers))

    def close(self, timeout_s: float = 30.0) -> None:
        """Take no new jobs; let the queued and running ones finish (up to `timeout_s`)."""
        with self._lock:
            self._closed = True
        for _ in self._threads:
            self._jobs.put(None)
        deadline = time.monotonic() + timeout_s
        for thread in self._threads:
            thread.join(max(0.0, deadline - time.monotonic()))

    def _work(self) -> None:
        while True:
            job = self._jobs.get()
            if job is None:
                return
            with self._lock:
                self._waiting -= 1
                self._running += 1
            started = time.monotonic()
            try:
                if job.token.cancelled:  # the client left while it waited: skip the work
                    raise JobCancelled()
                job.settle(result=job.run(job.token))
            except BaseException as exc:  # handed to the request that asked for it
                job.settle(error=exc)
            finally:
                with self._lock:
                    self._running -= 1
                self._durations.append(time.monotonic() - started)
