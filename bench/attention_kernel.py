"""Our C cross-attention kernel (cpu/native_kernels.py) against the decoder's numpy route, one layer
of tiny.en's shapes (6 heads of 64, 1500 audio frames), one thread.

For 1 row (greedy) and 5 rows sharing one window's audio (beam 5): the largest error of each route
against a float64 reference, and the median microseconds per layer, warm (the same layer's 4.6 MB
of keys and values again, in cache) and cold (16 layers' audio in turn, 74 MB: read from memory,
as in a real step). Engines in turns; prints the CPU model and the load average before and after.

    python3 bench/attention_kernel.py [--repeats 200]
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import time
from collections.abc import Callable
from pathlib import Path

import numpy as np

sys.path[:0] = [str(Path(__file__).resolve().parent)]
os.environ.setdefault("OPENBLAS_NUM_THREADS", "1")  # one thread, as the decoder's per-head products run

HEADS, HEAD_DIM, FRAMES, LAYERS = 6, 64, 1500, 16


def _numpy_route(q: np.ndarray, keys_t: np.ndarray, values: np.ndarray) -> np.ndarray:
    """host_decoder's route without the kernel: per-head batched matmuls and an in-place softmax."""
    from mlx_audio_coreml.cpu import host_math

    rows = q.shape[0]
    if rows == 1:
        heads_q = q.reshape(1, HEADS, 1, HEAD_DIM)
        return np.matmul(host_math.softmax_last_(np.matmul(heads_q, keys_t)), values).reshape(1, -1)
    by_head = np.ascontiguousarray(q.reshape(rows, HEADS, HEAD_DIM).transpose(1, 0, 2))  # (H, B, Dh)
    out = np.matmul(host_math.softmax_last_(np.matmul(by_head, keys_t[0])), values[0])  # (H, B, Dh)
    return out.transpose(1, 0, 2).reshape(rows, -1)


def _reference(q: np.ndarray, keys_t: np.ndarray, values: np.ndarray) -> np.ndarray:
    scores = q.astype(np.float64).reshape(q.shape[0], HEADS, 1, HEAD_DIM) @ keys_t.astype(np.float64)
    weights = np.exp(scores - scores.max(-1, keepdims=True))
    weights /= weights.sum(-1, keepdims=True)
    return (weights @ values.astype(np.float64)).reshape(q.shape[0], -1)


def _median_us(run: Callable[[int], object], repeats: int, layers: int) -> float:
    times = []
    for index in range(repeats):
        start = time.perf_counter()
        run(index % layers)
        times.append(time.perf_counter() - start)
    return 1e6 * statistics.median(times[layers:])  # the first pass over the layers warms up


def _compare(q: np.ndarray, keys: np.ndarray, values: np.ndarray, repeats: int) -> list[str]:
    """Table rows for one query block: each route's error, warm and cold times (routes in turns)."""
    from mlx_audio_coreml.cpu import native_kernels

    out = np.empty_like(q)
    routes: dict[str, Callable[[int], object]] = {
        "numpy": lambda layer: _numpy_route(q, keys[layer], values[layer]),
        "C kernel": lambda layer: native_kernels.attend_rows(q, keys[layer], values[layer], out),
    }
    timings: dict[str, list[float]] = {name: [0.0, 0.0] for name in routes}
    for name in list(routes) + list(reversed(routes)):  # in turns
        run = routes[name]
        timings[name][0] += _median_us(lambda _layer, run=run: run(0), repeats, 1) / 2
        timings[name][1] += _median_us(run, repeats, LAYERS) / 2
    reference = _reference(q, keys[0], values[0])
    rows = []
    for name, run in routes.items():
        error = float(np.abs(np.asarray(run(0)) - reference).max())
        rows.append(f"| {q.shape[0]} | {name} | {error:.2e} | {timings[name][0]:.0f} | {timings[name][1]:.0f} |")
    return rows


def main() -> int:
    parser = argparse.ArgumentParser()
    parser.add_argument("--repeats", type=int, default=200)
    args = parser.parse_args()
    import mlx_audio_coreml  # noqa: F401  (loads OpenBLAS before MLX, as the product does)
    from machine_info import cpu_flags, cpu_model
    from mlx_audio_coreml.cpu import native_kernels

    print(f"CPU: {cpu_model()} ({cpu_flags()}); load before {os.getloadavg()[:3]}")
    if not native_kernels.available():
        print("libmacb_cpu is not built or is turned off: nothing to compare")
        return 1
    rng = np.random.default_rng(0)
    keys = rng.standard_normal((LAYERS, 1, HEADS, HEAD_DIM, FRAMES), dtype=np.float32)
    values = rng.standard_normal((LAYERS, 1, HEADS, FRAMES, HEAD_DIM), dtype=np.float32)
    print("\n| rows | route | max error vs float64 | warm us / layer | cold us / layer |")
    print("| --- | --- | --- | --- | --- |")
    for rows in (1, 5):
        q = (rng.standard_normal((rows, HEADS * HEAD_DIM)) * 0.125).astype(np.float32)
        for line in _compare(q, keys, values, args.repeats):
            print(line)
    print(f"\nload after {os.getloadavg()[:3]}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
