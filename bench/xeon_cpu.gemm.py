"""One thread's int8 products of tiny.en's shapes through each oneDNN route we have (for bench/xeon_cpu.sh).

For each (output features N, input features K, rows) of tiny.en's decoder step (1 row greedy, 5 rows
beam 5) and encoder (375-row pieces, all 1500 rows), the median time of one call of:
- `conv`: the prepared 1x1 convolution of `cpu/onednn_rows.RowProduct` (weights reordered once), with
  the implementation oneDNN picks first (on a Sapphire Rapids: its AMX kernel);
- `conv, no AMX`: the same primitive moved to the first implementation without "amx" in its name
  (`dnnl_primitive_desc_next_impl`), in the same process, so the two compare directly;
- `gemm`: the BLAS-like `onednn.gemm_u8s8` (repacks the weights at every call), which our many-row
  products used before the next route;
- `conv, sums as float32`: the prepared 1x1 convolution giving the unscaled sums as float32
  (`RowProduct(..., sums_only=True)`), what `linear.HostLinear` uses for more than 8 rows (scales
  applied after; int32 sums before 2026-12-07, the same speed).
MLX_AUDIO_COREML_ROWS_AMX=1 is set here so that `conv` stays oneDNN's first choice for few rows too.
Random int8 weights and inputs (the speed of these kernels does not depend on the values). One thread:
our host pool splits products between workers, each call runs on one.

    python3 bench/xeon_cpu.gemm.py            # after `source bench/xeon_cpu.env.sh` on the machine
"""

from __future__ import annotations

import ctypes
import os
import statistics
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "python"))

from mlx_audio_coreml.cpu import onednn, onednn_rows  # noqa: E402

os.environ["MLX_AUDIO_COREML_ROWS_AMX"] = "1"  # read at each product's preparation

SHAPES = [  # (N, K, rows); 6483 x 384: one of the logits' column pieces with 2 workers (4 pieces each)
    (51864, 384, 1), (51864, 384, 5), (6483, 384, 1), (6483, 384, 5), (1536, 384, 1), (1536, 384, 5),
    (384, 1536, 1), (384, 384, 1), (1152, 384, 96), (1152, 384, 224), (1152, 384, 375), (1152, 384, 1500),
    (1536, 384, 375), (384, 1536, 375), (384, 384, 375), (3072, 384, 750),
]  # fmt: skip


class NoAmxRowProduct(onednn_rows.RowProduct):
    """RowProduct on the first implementation whose name has no "amx" (the first one if none)."""

    def _primitive_desc(self, n: int, k: int, with_bias: bool) -> Any:
        descriptor = super()._primitive_desc(n, k, with_bias)
        library = onednn_rows._declared()
        library.dnnl_primitive_desc_next_impl.argtypes = [ctypes.c_void_p]
        library.dnnl_primitive_desc_next_impl.restype = ctypes.c_int
        while "amx" in onednn_rows._implementation(descriptor):
            if library.dnnl_primitive_desc_next_impl(descriptor) != 0:  # dnnl_last_impl_reached
                break
        return descriptor


def _median_ms(call: Callable[[], object], budget_s: float = 0.25) -> float:
    for _ in range(3):
        call()
    times: list[float] = []
    spent = 0.0
    while (spent < budget_s or len(times) < 5) and len(times) < 400:
        start = time.perf_counter()
        call()
        times.append(time.perf_counter() - start)
        spent += times[-1]
    return 1000 * statistics.median(times)


def _conv(kind: type[onednn_rows.RowProduct], weight: np.ndarray, scales: np.ndarray, x: np.ndarray) -> str:
    try:
        product = kind(weight, scales, None, x.shape[0])
    except Exception as exc:  # a route this oneDNN or CPU lacks is reported, not fatal
        return f"n/a ({type(exc).__name__})"
    product.input_buffer()[:] = x
    out = np.empty((x.shape[0], weight.shape[0]), np.float32)
    ms = _median_ms(lambda: product.run(0.01, out.ctypes.data))
    return f"{ms:.3f} ({product.implementation})"


def _sums(weight: np.ndarray, x: np.ndarray, sums: np.ndarray) -> str:
    try:
        product = onednn_rows.RowProduct(weight, None, None, x.shape[0], sums_only=True)
    except Exception as exc:  # a route this oneDNN or CPU lacks is reported, not fatal
        return f"n/a ({type(exc).__name__})"
    ms = _median_ms(lambda: product.run_sums(x.ctypes.data, sums.ctypes.data))
    return f"{ms:.3f} ({product.implementation})"


def main() -> int:
    if not onednn.available():
        print("oneDNN not available: nothing to time")
        return 1
    onednn.use_one_thread_here()
    rng = np.random.default_rng(0)
    limit = onednn.int8_weight_limit()
    print(f"oneDNN {onednn.version()}, int8 weight limit {limit}, one thread; ms per call (implementation)")
    print(
        "| N x K | rows | conv (oneDNN's first choice) | conv, no AMX | gemm (BLAS-like) | conv, sums as float32 | GOP/s best |"
    )
    print("| --- | --- | --- | --- | --- | --- | --- |")
    for n, k, rows in SHAPES:
        weight = rng.integers(-limit, limit + 1, (n, k), dtype=np.int8)
        scales = rng.uniform(0.001, 0.01, n).astype(np.float32)
        x = rng.integers(1, 256, (rows, k), dtype=np.uint8)
        offsets = (-128 * weight.astype(np.int32).sum(axis=1)).astype(np.int32)
        sums = np.empty((rows, n), np.int32)
        cells = [_conv(onednn_rows.RowProduct, weight, scales, x), _conv(NoAmxRowProduct, weight, scales, x)]
        cells.append(f"{_median_ms(lambda: onednn.gemm_u8s8(x, weight, sums, offsets)):.3f}")  # noqa: B023
        cells.append(_sums(weight, x, np.empty((rows, n), np.float32)))
        best = min(float(c.split()[0]) for c in cells if not c.startswith("n/a"))
        print(f"| {n} x {k} | {rows} | {' | '.join(cells)} | {2 * n * k * rows / best / 1e6:.0f} |", flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
