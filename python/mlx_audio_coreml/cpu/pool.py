"""Worker threads for the CPU host path: independent pieces of one layer (heads, row blocks) at once.

Why: in the encoder, softmax, GELU and the quantization passes are numpy loops on one core, and a
product split between OpenMP threads waits for both at every call. Giving each core its own
pieces, with single-threaded kernels, keeps both cores busy through the whole layer: numpy and
oneDNN release the GIL while they work. One pool per process, made on first use.
"""

from __future__ import annotations

import os
import threading
from collections.abc import Callable, Iterable
from concurrent.futures import ThreadPoolExecutor
from functools import lru_cache
from typing import TypeVar

from .. import config
from . import onednn

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
    """True on one of the pool's threads (work handed out there runs inline)."""
    return _worker.active


def _start_worker() -> None:
    _worker.active = True
    onednn.use_one_thread_here()


@lru_cache(maxsize=1)
def _pool() -> ThreadPoolExecutor:
    return ThreadPoolExecutor(worker_count(), thread_name_prefix="mlx-audio-host", initializer=_start_worker)


def run_all(work: Callable[[T], R], items: Iterable[T]) -> list[R]:
    """work(item) for every item, spread over the workers; results in order; the first error raised.

    Called from a worker (work inside work) it runs the items itself: a worker waiting on the
    pool it belongs to could wait forever."""
    items = list(items)
    if worker_count() == 1 or len(items) < 2 or _worker.active:
        return [work(item) for item in items]
    return list(_pool().map(work, items))


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
