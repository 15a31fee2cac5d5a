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

_BLOCK_ELEMENTS = 1 << 17  # values per piece of work (512 kB: stays in cache)
_MIN_SIZE = 16384  # smaller inputs stay in MLX (a numpy call costs more than it saves)


def _host(x: mx.array) -> np.ndarray:
    mx.eval(x)
    return np.asarray(x)


def _broadcast_shape(alpha: np.ndarray, x_shape: tuple[int, ...]) -> tuple[int, ...] | None:
    """alpha's shape padded to x's rank when it broadcasts against x without growing it, else None."""
    if alpha.ndim > len(x_shape):
        return None
    shape = (1,) * (len(x_shape) - alpha.ndim) + tuple(alpha.shape)
    return shape if all(a in (1, d) for a, d in zip(shape, x_shape)) else None


def snake(ctx: OpContext, x: mx.array, alpha: mx.array, inv_alpha: mx.array) -> mx.array:
    """x + sin(alpha x)^2 * inv_alpha (inv_alpha = 1 / alpha, a constant of the program)."""
    if x.dtype == mx.float32 and x.size >= _MIN_SIZE and x.ndim >= 1 and host.applies(mx.float32):
        a, inv = _host(alpha.astype(mx.float32)), _host(inv_alpha.astype(mx.float32))
        shape_a, shape_inv = _broadcast_shape(a, x.shape), _broadcast_shape(inv, x.shape)
        if shape_a is not None and shape_inv is not None:
            return _host_blocks(np.ascontiguousarray(_host(x)), a.reshape(shape_a), inv.reshape(shape_inv))
    wave = mx.sin(x * alpha)
    return x + wave * wave * inv_alpha


def _host_blocks(x: np.ndarray, alpha: np.ndarray, inv_alpha: np.ndarray) -> mx.array:
    """Snake in numpy over blocks of x's first axis longer than 1 (channels of a channels-first
    activation, frames of a channels-last one), each block a few hundred kB, on the host workers."""
    axis = next((i for i, d in enumerate(x.shape) if d > 1), 0)
    inner = int(np.prod(x.shape[axis + 1 :], dtype=np.int64))
    step = max(1, _BLOCK_ELEMENTS // max(1, inner))

    def part(index: slice, a: np.ndarray) -> np.ndarray:
        return a[(slice(None),) * axis + (index,)] if a.shape[axis] > 1 else a

    def block(out: np.ndarray, index: slice) -> None:
        y = part(index, x)
        wave = y * part(index, alpha)
        np.sin(wave, out=wave)
        np.square(wave, out=wave)
        wave *= part(index, inv_alpha)
        np.add(y, wave, out=part(index, out))

    def fill(out: np.ndarray) -> None:
        host_pool.run_all(lambda index: block(out, index), host_pool.row_blocks(x.shape[axis], step))

    return host.filled(tuple(x.shape), fill)
