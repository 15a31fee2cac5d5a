"""Element-wise math on the CPU host path: sin, cos, exp, tanh, `mod` by one and leaky ReLU, through numpy.

Why: MLX's CPU sin, cos, exp and tanh are scalar loops (15-19 ns an element on this machine, one
core) where numpy's float32 ones are vectorized (~2 ns), and MLX's float `mod` costs ~25 ns an
element (fmod and a fix-up) where x - floor(x) is two vectorized passes. A converted vocoder runs
these over every sample of its bucket (Kokoro: the harmonic source's phase and sines, 0.86 M values,
and the inverse STFT's magnitude and phase): ~45 ms a call at 160 frames, measured per node.

Semantics: numpy's float32 sin/cos/exp/tanh are within a few ulp of MLX's (the Snake op already
uses numpy's sin). `mod(x, 1)` as x - floor(x) is exact (the fractional part of a float is a float;
x - floor(x) rounds once, as MLX's fmod-then-add does for negative x); it differs from MLX only in
the sign of an exact zero (+0, as Python's `%`, where MLX's fmod keeps -0 for a negative integer x).
Leaky ReLU with one slope a in (0, 1] is max(x, a x): bit for bit MIL's where(x >= 0, x, a x), NaN
and -0.0 included, in two vectorized passes where MLX makes three (~2.5 ns an element here).
When: float32 x of at least `_MIN_SIZE` values, host math on (CPU, no trace being recorded).
"""

from __future__ import annotations

from collections.abc import Callable

import mlx.core as mx
import numpy as np

from ....cpu import pool as host_pool
from . import host

_MIN_SIZE = 16384  # smaller inputs stay in MLX (a numpy call costs more than it saves)
_BLOCK_ELEMENTS = 1 << 16  # values per piece of work on the host workers

Kernel = Callable[[np.ndarray, np.ndarray], object]  # (values in, values out), out may be the same

UNARY: dict[str, Kernel] = {
    "sin": lambda x, out: np.sin(x, out=out),
    "cos": lambda x, out: np.cos(x, out=out),
    "exp": lambda x, out: np.exp(x, out=out),
    "tanh": lambda x, out: np.tanh(x, out=out),
}


def applies(x: mx.array) -> bool:
    """Whether x takes the host path now: float32, big enough, host math on."""
    return x.dtype == mx.float32 and x.size >= _MIN_SIZE and host.applies(mx.float32)


def unary(kernel: Kernel, x: mx.array) -> mx.array:
    """kernel over x into a new float32 array of x's shape, in blocks on the host workers."""
    mx.eval(x)
    flat = np.asarray(x).reshape(-1)  # a copy only when x is a strided view

    def fill(out: np.ndarray) -> None:
        target = out.reshape(-1)
        blocks = host_pool.row_blocks(flat.shape[0], _BLOCK_ELEMENTS)
        host_pool.run_all(lambda part: kernel(flat[part], target[part]), blocks)

    return host.filled(tuple(x.shape), fill)


def is_one(y: mx.array) -> bool:
    """Whether y is a single value equal to 1 (the divisor `mod_one` stands for)."""
    if y.size != 1 or not mx.issubdtype(y.dtype, mx.floating):
        return False
    mx.eval(y)
    return float(np.asarray(y.astype(mx.float32)).reshape(-1)[0]) == 1.0


def _fraction(x: np.ndarray, out: np.ndarray) -> None:
    np.floor(x, out=out)
    np.subtract(x, out, out=out)


def mod_one(x: mx.array) -> mx.array:
    """x mod 1 rounded toward negative infinity (x - floor(x)), float32."""
    return unary(_fraction, x)


def unit_slope(alpha: mx.array) -> float | None:
    """The one slope of a leaky ReLU when it is in (0, 1] (max(x, a x) is exact there), else None."""
    if alpha.size != 1 or not mx.issubdtype(alpha.dtype, mx.floating):
        return None
    mx.eval(alpha)
    slope = float(np.asarray(alpha.astype(mx.float32)).reshape(-1)[0])
    return slope if 0.0 < slope <= 1.0 else None


def leaky_relu(x: mx.array, slope: float) -> mx.array:
    """max(x, slope x), float32, for a slope in (0, 1] (`unit_slope`)."""
    a = np.float32(slope)

    def kernel(values: np.ndarray, out: np.ndarray) -> None:
        np.multiply(values, a, out=out)
        np.maximum(values, out, out=out)

    return unary(kernel, x)
