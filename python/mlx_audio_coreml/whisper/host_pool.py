"""Worker threads for the CPU host path: independent pieces of one layer (heads, row blocks) at once.

Why: in the encoder, softmax, GELU and the quantization passes are numpy loops on one core, and a
product split between OpenMP threads waits for both at every call. Giving each core its own
pieces, with single-threaded kernels, keeps both cores busy through the whole layer: numpy and
oneDNN release the GIL while they work. One pool per process, made on first use.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Iterable
from concurrent.futures import ThreadPoolExecutor
from functools import lru_cache
from typing import TypeVar

from .. import onednn

T = TypeVar("T")
R = TypeVar("R")


def worker_count() -> int:
    """Cores this process may run on (MLX_AUDIO_COREML_HOST_THREADS overrides), at most 16."""
    wanted = os.environ.get("MLX_AUDIO_COREML_HOST_THREADS", "")
    if wanted.isdigit() and int(wanted) > 0:
        return min(int(wanted), 16)
    try:
        cores = len(os.sched_getaffinity(0))
    except AttributeError:  # macOS
        cores = os.cpu_count() or 1
    return max(1, min(cores, 16))


@lru_cache(maxsize=1)
def _pool() -> ThreadPoolExecutor:
    return ThreadPoolExecutor(worker_count(), thread_name_prefix="mlx-audio-host", initializer=onednn.use_one_thread_here)


def run_all(work: Callable[[T], R], items: Iterable[T]) -> list[R]:
    """work(item) for every item, spread over the workers; results in order; the first error raised."""
    items = list(items)
    if worker_count() == 1 or len(items) < 2:
        return [work(item) for item in items]
    return list(_pool().map(work, items))
