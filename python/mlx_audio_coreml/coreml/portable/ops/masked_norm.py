"""A masked instance norm with an affine, an optional activation and an optional output gate, as one op
(fuse_norm.py finds it; the AdaIN of vocoders' converted programs):

    mean = sum(x m) / count,  var = sum((x - mean)^2 m^2) / count     (over `axis`)
    y = act((x - mean) * rsqrt(var + epsilon) * scale + shift) * gate

Why: spelled as MIL ops this is about ten passes over the activation on the CPU, each a separate MLX
kernel; here the statistics are matrix-vector products (BLAS) and the rest is one pass per block of
rows in cache, on the host workers. Elsewhere (a GPU, float16 values, a compiled trace, shapes the host
path does not cover) the op runs the same steps as the original MIL ops in MLX.
"""

from __future__ import annotations

import threading
from dataclasses import dataclass
from typing import overload

import mlx.core as mx
import numpy as np

from ....cpu import onednn
from ....cpu import pool as host_pool
from . import host
from .activation import leaky_relu
from .registry import OpContext
from .snake import snake

_MIN_SIZE = 16384  # smaller inputs stay in MLX (a numpy call costs more than it saves)
_BLOCK_ELEMENTS = 1 << 17  # values per block of rows (512 kB; 256 kB blocks cost ~8% more in per-block overhead)
_DEFAULT_EPSILON = 1e-12  # MIL rsqrt's


def masked_norm(
    ctx: OpContext,
    x: mx.array,
    mask: mx.array,
    count: mx.array,
    scale: mx.array,
    shift: mx.array,
    axis: int,
    activation: str,
    epsilon: mx.array | None = None,
    alpha: mx.array | None = None,
    inv_alpha: mx.array | None = None,
    gate: mx.array | None = None,
) -> mx.array:
    """The fused AdaIN; `activation` is "none", "portable.snake" (alpha, inv_alpha) or "leaky_relu" (alpha)."""
    axis = axis + x.ndim if axis < 0 else axis
    plan = _host_plan(x, axis, [mask, count, scale, shift, gate, alpha, inv_alpha])
    if plan is not None:
        return _on_host(x, axis, activation, epsilon, plan)
    eps = mx.array(_DEFAULT_EPSILON, dtype=x.dtype) if epsilon is None else epsilon
    mean = mx.sum(x * mask, axis=axis, keepdims=True) / count
    centred = x - mean
    masked = centred * mask
    var = mx.sum(masked * masked, axis=axis, keepdims=True) / count
    y = centred * mx.rsqrt(var + eps) * scale + shift
    if activation == "portable.snake" and alpha is not None and inv_alpha is not None:
        y = snake(ctx, y, alpha, inv_alpha)
    elif activation == "leaky_relu" and alpha is not None:
        y = leaky_relu(ctx, y, alpha)
    return y * gate if gate is not None else y


def _host_plan(x: mx.array, axis: int, operands: list[mx.array | None]) -> list[np.ndarray | None] | None:
    """The operands as float32 numpy arrays of x's rank when the host path covers this call: a float32
    (B, ., .) x reduced over axis 1 or 2, on the CPU, big enough; else None."""
    if x.dtype != mx.float32 or x.ndim != 3 or axis not in (1, 2) or x.size < _MIN_SIZE:
        return None
    if not host.applies(mx.float32) or any(a is not None and a.ndim > 3 for a in operands):
        return None
    arrays = [_host(a) for a in operands]
    for a in arrays:
        if a is not None and not all(d in (1, n) for d, n in zip(a.shape, x.shape)):
            return None
    other = 3 - axis
    mask, count, scale, shift, gate = arrays[:5]
    per_step = [a for a in (mask, gate) if a is not None]  # vary along axis only
    per_channel = [a for a in (scale, shift, *arrays[5:]) if a is not None]  # constant along axis
    if any(a.shape[other] != 1 for a in per_step) or any(a.shape[axis] != 1 for a in per_channel):
        return None
    if count is None or count.shape[1] != 1 or count.shape[2] != 1:
        return None
    return arrays


def _host(a: mx.array | None) -> np.ndarray | None:
    """a as float32 numpy of rank 3 (leading ones added), or None."""
    if a is None:
        return None
    if a.dtype != mx.float32:
        a = a.astype(mx.float32)
    mx.eval(a)
    view = np.asarray(a)
    return view.reshape((1,) * (3 - view.ndim) + view.shape)


def _on_host(
    x: mx.array, axis: int, activation: str, epsilon: mx.array | None, plan: list[np.ndarray | None]
) -> mx.array:
    mask, count, scale, shift, gate, alpha, inv_alpha = plan
    assert mask is not None and count is not None and scale is not None and shift is not None
    eps = _DEFAULT_EPSILON if epsilon is None else float(np.asarray(epsilon).reshape(-1)[0])
    mx.eval(x)
    data = np.asarray(x)
    swapped = not data.flags.c_contiguous and data.transpose(0, 2, 1).flags.c_contiguous
    if swapped:  # a transposed view (a layout change left to the reader): work in its memory order
        data, axis = data.transpose(0, 2, 1), 3 - axis
        mask, count, scale, shift, gate, alpha, inv_alpha = (None if a is None else a.transpose(0, 2, 1) for a in plan)
        assert mask is not None and count is not None and scale is not None and shift is not None
    elif not data.flags.c_contiguous:
        data = np.ascontiguousarray(data)

    def fill(out: np.ndarray) -> None:
        for b in range(data.shape[0]):
            steps = _Steps(_pick(mask, b), _pick(gate, b))
            channels = _Channels(_item(scale, b), _item(shift, b), _pick(alpha, b), _pick(inv_alpha, b))
            cnt = float(_item(count, b))
            run = _steps_first if axis == 1 else _channels_first
            run(data[b], out[b], steps, channels, cnt, eps, activation)

    result = host.filled(tuple(data.shape), fill)
    return result.swapaxes(1, 2) if swapped else result


def _item(a: np.ndarray, b: int) -> np.ndarray:
    """Batch item b of a (B or 1, ., .) flattened to the one axis it varies along, or to a scalar."""
    item = a[b if a.shape[0] > 1 else 0]
    return item.reshape(-1) if item.size > 1 else item.reshape(())


def _pick(a: np.ndarray | None, b: int) -> np.ndarray | None:
    return None if a is None else _item(a, b)


@dataclass(frozen=True)
class _Steps:
    """What varies along the reduced axis: the mask and the gate, (L,) or scalars."""

    mask: np.ndarray | None
    gate: np.ndarray | None


@dataclass(frozen=True)
class _Channels:
    """What varies along the channels: the affine and the activation's constants, (C,) or scalars."""

    scale: np.ndarray
    shift: np.ndarray
    alpha: np.ndarray | None
    inv_alpha: np.ndarray | None


@overload
def _rows(v: np.ndarray, rows: slice) -> np.ndarray: ...
@overload
def _rows(v: None, rows: slice) -> None: ...
def _rows(v: np.ndarray | None, rows: slice) -> np.ndarray | None:
    """A per-row vector's block as a column (broadcasts over a block's columns)."""
    return v[rows, None] if v is not None and v.ndim == 1 else v


def _finish(
    y: np.ndarray,
    scale: np.ndarray,
    shift: np.ndarray,
    alpha: np.ndarray | None,
    inv_alpha: np.ndarray | None,
    gate: np.ndarray | None,
    activation: str,
) -> None:
    """y = act(y * scale + shift) * gate, in place on one block (operands broadcast against it); the
    Snake's wave in this thread's scratch buffer (a fresh one per block cost an allocation each)."""
    y *= scale
    y += shift
    if activation == "portable.snake" and alpha is not None and inv_alpha is not None:
        wave = _scratch.get(y.size).reshape(y.shape)
        np.multiply(y, alpha, out=wave)
        np.sin(wave, out=wave)
        np.square(wave, out=wave)
        wave *= inv_alpha
        y += wave
    elif activation == "leaky_relu" and alpha is not None:
        slope = _scratch.get(y.size).reshape(y.shape)
        np.multiply(y, alpha, out=slope)
        if _unit_slope(alpha):  # max(y, a y) is where(y < 0, a y, y) there, NaN and -0.0 included
            np.maximum(y, slope, out=y)
        else:
            np.copyto(y, slope, where=y < 0)
    if gate is not None:
        y *= gate


def _unit_slope(alpha: np.ndarray) -> bool:
    """Whether every slope is in (0, 1] (a masked copy costs ~8 ns an element, a maximum ~1; a zero
    slope would turn +inf into NaN there)."""
    return bool(np.all((alpha > 0.0) & (alpha <= 1.0)))


class _Scratch(threading.local):
    """One reusable float32 work buffer per thread (a block's temporary)."""

    def __init__(self) -> None:
        self.buffer = np.empty(0, np.float32)

    def get(self, size: int) -> np.ndarray:
        if self.buffer.size < size:
            self.buffer = np.empty(size, np.float32)
        return self.buffer[:size]


_scratch = _Scratch()


def _live(x: np.ndarray, axis: int, mask: np.ndarray, gate: np.ndarray | None) -> tuple[int, int]:
    """(rows the statistics need, rows the output needs) along x's reduced `axis` (0 or 1): a tail where the mask is zero adds nothing to the sums, and one where
    the gate is zero is zero in the output (a bucket's padded frames). Only while x is finite there
    (a NaN times zero is NaN): else every row, as the MIL ops would compute it."""
    length = x.shape[axis]
    stats = _nonzero_length(mask)
    output = length if gate is None else _nonzero_length(np.broadcast_to(gate, (length,)))
    skipped = min(stats, output)
    if skipped < length:
        tail = x[skipped:] if axis == 0 else x[:, skipped:]
        # a finite sum means finite values (one SIMD pass); one that overflows only costs the full path
        with np.errstate(over="ignore", invalid="ignore"):
            finite = bool(np.isfinite(np.sum(tail)))
        if not finite:
            return length, length
    return stats, output


def _nonzero_length(v: np.ndarray) -> int:
    hits = np.flatnonzero(v)
    return int(hits[-1]) + 1 if hits.size else 0


def _weighted_rows(weights: np.ndarray, rows: np.ndarray) -> np.ndarray:
    """weights (R,) @ rows (R, C) -> (C,): with oneDNN's single-threaded product where present (numpy's
    BLAS would spread a row block over its own threads, which then spin: measured as CPU time on 2 cores)."""
    if not onednn.available() or rows.strides[1] != rows.itemsize:
        return weights @ rows
    out = np.empty((1, rows.shape[1]), np.float32)
    return onednn.sgemm(np.ascontiguousarray(weights, np.float32)[None], rows, out)[0]


def _steps_first(
    x: np.ndarray, out: np.ndarray, steps: _Steps, ch: _Channels, count: float, eps: float, activation: str
) -> None:
    """x (L, C), reduced over L: the mean as vector-matrix products, then per block of rows the centred
    rows written to the output and their squares' weighted sums (squares in a per-thread scratch), then
    each output block finished in place; rows past `_live`'s are not worked. (Reading x again instead
    of the centred output measured no faster: the passes are compute-bound.)"""
    length = x.shape[0]
    mask = np.broadcast_to(steps.mask, (length,)) if steps.mask is not None else np.ones(length, np.float32)
    stats, output = _live(x, 0, mask, steps.gate)
    rows_per_block = max(1, _BLOCK_ELEMENTS // max(1, x.shape[1]))
    # per block: one vector-matrix product over all of x is slower (the BLAS's threads spin)
    mean_parts = host_pool.run_all(lambda rows: _weighted_rows(mask[rows], x[rows]), _blocks(stats, rows_per_block))
    mean = (np.sum(mean_parts, axis=0) / count).astype(np.float32)
    squared_mask = mask * mask
    worked = max(stats, output)

    def centred_squares(rows: slice) -> np.ndarray:
        y = out[rows]
        np.subtract(x[rows], mean, out=y)
        squares = _scratch.get(y.size).reshape(y.shape)
        np.square(y, out=squares)
        return _weighted_rows(squared_mask[rows], squares)

    var = np.sum(host_pool.run_all(centred_squares, _blocks(worked, rows_per_block)), axis=0) / count
    scale = (1.0 / np.sqrt(var + np.float32(eps))).astype(np.float32) * ch.scale
    gate = None if steps.gate is None or _ones(steps.gate, output) else steps.gate  # times one is exact

    def finish(rows: slice) -> None:
        _finish(out[rows], scale, ch.shift, ch.alpha, ch.inv_alpha, _rows(gate, rows), activation)

    host_pool.run_all(finish, _blocks(output, rows_per_block))
    out[output:worked] = 0.0  # centred, not kept; the rows after are still host.filled's zeros


def _ones(gate: np.ndarray, rows: int) -> bool:
    """Whether the gate is one on its first `rows` steps (the mask of a bucket's real frames)."""
    return bool(np.all((gate[:rows] if gate.ndim == 1 else gate) == 1.0))


def _blocks(length: int, max_rows: int) -> list[slice]:
    return host_pool.row_blocks(length, max_rows) if length > 0 else []


def _channels_first(
    x: np.ndarray, out: np.ndarray, steps: _Steps, ch: _Channels, count: float, eps: float, activation: str
) -> None:
    """x (C, L), reduced over L: each block of channel rows is done in one go; columns past `_live`'s
    are not worked."""
    length = x.shape[1]
    mask = np.broadcast_to(steps.mask, (length,)) if steps.mask is not None else np.ones(length, np.float32)
    stats, output = _live(x, 1, mask, steps.gate)
    worked = max(stats, output)
    squared_mask = np.ascontiguousarray(mask[:worked] * mask[:worked])
    gate = steps.gate[:output] if steps.gate is not None and steps.gate.ndim == 1 else steps.gate

    def block(rows: slice) -> None:
        y = out[rows, :worked]
        mean = _transposed_product(x[rows, :stats], mask[:stats]) / count
        np.subtract(x[rows, :worked], mean[:, None], out=y)
        var = _transposed_product(np.square(y), squared_mask) / count
        scale = (1.0 / np.sqrt(var + np.float32(eps))).astype(np.float32)[:, None] * _rows(ch.scale, rows)
        _finish(
            out[rows, :output],
            scale,
            _rows(ch.shift, rows),
            _rows(ch.alpha, rows),
            _rows(ch.inv_alpha, rows),
            gate,
            activation,
        )
        out[rows, output:worked] = 0.0

    host_pool.run_all(block, host_pool.row_blocks(x.shape[0], max(1, _BLOCK_ELEMENTS // max(1, length))))


def _transposed_product(rows: np.ndarray, weights: np.ndarray) -> np.ndarray:
    """rows (R, L) @ weights (L,) -> (R,), single-threaded as `_weighted_rows`."""
    if rows.shape[1] == 0:
        return np.zeros(rows.shape[0], np.float32)
    if not onednn.available() or rows.strides[1] != rows.itemsize:
        return rows @ weights
    out = np.empty((1, rows.shape[0]), np.float32)
    return onednn.sgemm(np.ascontiguousarray(weights, np.float32)[None], rows, out, b_transposed=True)[0]
