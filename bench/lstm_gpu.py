"""Kokoro's LSTM recurrence on one GPU: plain MLX ops per step vs a compiled cell vs the fused CUDA kernel.

Checks the fused kernel (kokoro/model/lstm_recurrence.py) against the per-step MLX ops on random inputs
at Kokoro's shapes (hidden 256 per direction, both directions, batch 1) and times each path, ending in
mx.eval + mx.synchronize; medians after one warm-up call. The kernel runs only on MLX's CUDA backend,
so this script is the only place it is exercised (tests/kokoro/test_lstm_recurrence.py skips without it).

GPU (H100):
    source .gpu/b/env.sh && python3 bench/lstm_gpu.py
CPU smoke test (the two portable paths only):
    .venv/bin/python bench/lstm_gpu.py --smoke
"""

from __future__ import annotations

import argparse
import statistics
import time
from collections.abc import Callable

import mlx.core as mx
import numpy as np

from mlx_audio_coreml.kokoro.model import lstm_recurrence


def eager(gx: mx.array, w_hh: mx.array) -> mx.array:
    """The recurrence as plain MLX ops, one step at a time (the path before the kernel)."""
    h = mx.zeros((gx.shape[0], gx.shape[1], gx.shape[3] // 4), dtype=gx.dtype)
    c = mx.zeros_like(h)
    outs = []
    for t in range(gx.shape[2]):
        i, f, g, o = mx.split(gx[:, :, t] + h @ w_hh, 4, axis=-1)
        c = mx.sigmoid(f) * c + mx.sigmoid(i) * mx.tanh(g)
        h = mx.sigmoid(o) * mx.tanh(c)
        outs.append(h)
    return mx.stack(outs, axis=2)


def timed(run: Callable[[], mx.array], repeats: int) -> tuple[float, np.ndarray]:
    out = run()
    mx.eval(out)
    seconds = []
    for _ in range(repeats):
        start = time.perf_counter()
        out = run()
        mx.eval(out)
        mx.synchronize()
        seconds.append(time.perf_counter() - start)
    return 1e3 * statistics.median(seconds), np.array(out)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--steps", type=int, nargs="+", default=[32, 510, 1513])
    parser.add_argument("--hidden", type=int, default=256)
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--smoke", action="store_true", help="CPU, 16 steps, hidden 32, one repeat")
    args = parser.parse_args()
    if args.smoke:
        mx.set_default_device(mx.cpu)
        args.steps, args.hidden, args.repeats = [16], 32, 1
    rng = np.random.default_rng(0)
    paths: dict[str, Callable[[mx.array, mx.array], mx.array]] = {
        "per-step MLX ops": eager,
        "compiled cell": lstm_recurrence.run_stepwise,
    }
    if lstm_recurrence.cuda_available():
        paths["fused CUDA kernel"] = lstm_recurrence.run_cuda
    print(f"device: {mx.default_device()}; mx.cuda available: {mx.cuda.is_available()}; hidden {args.hidden}")
    print("| steps | path | ms | max abs diff vs per-step ops |")
    print("| --- | --- | --- | --- |")
    for steps in args.steps:
        gx = mx.array(rng.standard_normal((2, 1, steps, 4 * args.hidden)).astype(np.float32))
        w_hh = mx.array(
            (rng.standard_normal((2, args.hidden, 4 * args.hidden)) / np.sqrt(args.hidden)).astype(np.float32)
        )
        reference: np.ndarray | None = None
        for name, path in paths.items():
            ms, out = timed(lambda path=path, gx=gx, w_hh=w_hh: path(gx, w_hh), args.repeats)
            reference = out if reference is None else reference
            diff = float(np.abs(out - reference).max())
            print(f"| {steps} | {name} | {ms:.2f} | {diff:.2e} |", flush=True)


if __name__ == "__main__":
    main()
