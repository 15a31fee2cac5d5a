"""The Snake activation, x + sin(alpha x)^2 / alpha (alpha per channel), as one op: the form vocoders'
converted programs spell in five MIL ops (fuse_snake.py finds it).

Why: on the CPU in float32, MLX's sin is a scalar loop (~20 ns an element here) and the five ops make
five passes over the activation; numpy's sin is vectorized, and a block of rows at a time stays in
cache (a (30720, 128) Snake: ~100 ms in MLX, eager or compiled, ~37 ms in numpy on one core, measured
here). Elsewhere (a GPU, float16 values, a compiled trace) the op runs the same five steps in MLX.
"""

from __future__ import annotations

import mlx.core as mx
import numpy as np

from ....cpu import pool as host_pool
from . import host
from .registry import OpContext

_BLOCK_ROWS = 1024  # rows of the last axis per piece of work
_MIN_SIZE = 16384  # smaller inputs stay in MLX (a numpy call costs more than it saves)


def _host(x: mx.array) -> np.ndarray:
    mx.eval(x)
    return np.asarray(x)


def _per_channel(alpha: np.ndarray, x_shape: tuple[int, ...]) -> bool:
    """Whether `alpha` broadcasts against x as one value per element of x's last axis."""
    return (
        alpha.ndim <= len(x_shape)
        and all(s == 1 for s in alpha.shape[:-1])
        and alpha.shape[-1:] in ((1,), x_shape[-1:])
    )


def snake(ctx: OpContext, x: mx.array, alpha: mx.array, inv_alpha: mx.array) -> mx.array:
    """x + sin(alpha x)^2 * inv_alpha (inv_alpha = 1 / alpha, a constant of the program)."""
    if x.dtype == mx.float32 and x.size >= _MIN_SIZE and host.applies(mx.float32):
        a, inv = _host(alpha.astype(mx.float32)), _host(inv_alpha.astype(mx.float32))
        if _per_channel(a, x.shape) and _per_channel(inv, x.shape):
            return _host_rows(_host(x), a.reshape(-1), inv.reshape(-1))
    wave = mx.sin(x * alpha)
    return x + wave * wave * inv_alpha


def _host_rows(x: np.ndarray, alpha: np.ndarray, inv_alpha: np.ndarray) -> mx.array:
    rows = x.reshape(-1, x.shape[-1]) if x.ndim else x.reshape(1, 1)

    def block(out: np.ndarray, part: slice) -> None:
        y = rows[part]
        wave = y * alpha
        np.sin(wave, out=wave)
        np.square(wave, out=wave)
        wave *= inv_alpha
        np.add(y, wave, out=out[part])

    def fill(out: np.ndarray) -> None:
        flat = out.reshape(rows.shape)
        host_pool.run_all(lambda part: block(flat, part), host_pool.row_blocks(rows.shape[0], _BLOCK_ROWS))

    return host.filled(tuple(x.shape), fill)
