"""CPU fast path: Whisper's transcendental-heavy steps done by numpy on MLX's own buffers.

Why: MLX's CPU backend evaluates exp and erf one element at a time on x86 (measured here: ~13 ns
per exp, so the encoder's softmax over 6 x 1500 x 1500 scores took ~210 ms per layer and the
MLP's erf-GELU ~75 ms), while numpy's are vectorized (~0.4 ns per exp). Matrix products stay in
MLX (they already go through BLAS). Only used when MLX runs on the CPU in float32; on a GPU the
plain MLX ops in `model.py` run instead.

How: an evaluated, C-contiguous MLX array exposes its memory through the buffer protocol, so
`np.asarray` is a view, not a copy. The functions here overwrite such a buffer in place. That is
safe only for a fresh intermediate (a matmul output) that nothing else refers to; callers pass
exactly those. Anything else (a strided or shared array) takes the copying route.
"""

from __future__ import annotations

import ctypes
import math
from collections.abc import Iterator
from contextlib import contextmanager
from functools import lru_cache
from typing import Any

import mlx.core as mx
import numpy as np

from .. import config
from . import native_kernels, onednn, onednn_eltwise

_ROWS_PER_CHUNK = 128  # keeps each chunk of scores in the L2 cache while it is worked on
ROWS_PER_BLOCK = 500  # positions per block of encoder work: 500 x 1500 float32 scores = 3 MB
_INV_SQRT2 = np.float32(1.0 / math.sqrt(2.0))
# erf(z) ~= 1 - t (a1 + a2 t + ... + a5 t^4) exp(-z^2), t = 1 / (1 + p z), z >= 0:
# Abramowitz & Stegun 7.1.26, absolute error below 1.5e-7.
_ERF_P = np.float32(0.3275911)
_ERF_A = tuple(np.float32(c) for c in (0.254829592, -0.284496736, 1.421413741, -1.453152027, 1.061405429))


# Blocks from this many elements go to oneDNN's vectorized GELU/softmax when it is installed
# (measured here: a 500 x 1536 GELU in 0.45 ms against 11 ms for the numpy polynomial below);
# smaller ones (a decoder step's one row) stay in numpy, whose call costs less.
_KERNEL_MIN_SIZE = 16384
_enabled = config.setting(config.HOST_MATH, "1") != "0"  # set to 0 to measure plain MLX


def available(dtype: mx.Dtype) -> bool:
    """True when the host path applies: enabled, MLX computing on the CPU, in float32."""
    return _enabled and dtype == mx.float32 and mx.default_device() == mx.cpu


@contextmanager
def disabled() -> Iterator[None]:
    """Run the plain MLX ops inside this block (tests compare the two paths; benchmarks time both)."""
    global _enabled
    previous, _enabled = _enabled, False
    try:
        yield
    finally:
        _enabled = previous


def _writable_view(array: mx.array) -> np.ndarray | None:
    mx.eval(array)
    view = np.asarray(array)
    if view.flags.owndata or not view.flags.c_contiguous or not view.flags.writeable:
        return None  # a copy, or not one plain block: do not write through it
    return view.reshape(-1, view.shape[-1])


def softmax_(scores: mx.array) -> mx.array:
    """Softmax over the last axis of a fresh float32 score array, in place; returns it."""
    rows = _writable_view(scores)
    if rows is None:
        return mx.softmax(scores, axis=-1)
    softmax_np_(rows)
    return scores


def _kernel_fits(block: np.ndarray) -> bool:
    """Whether oneDNN's element-wise kernels take this block (large, plain 2-D float32)."""
    return block.size >= _KERNEL_MIN_SIZE and block.ndim == 2 and block.flags.c_contiguous and onednn.available()


def softmax_np_(rows: np.ndarray) -> np.ndarray:
    """Softmax over the last axis of a 2-D float32 numpy array, in place; returns it."""
    if _kernel_fits(rows):
        return onednn_eltwise.softmax_(rows)
    for start in range(0, rows.shape[0], _ROWS_PER_CHUNK):
        block = rows[start : start + _ROWS_PER_CHUNK]
        block -= block.max(axis=1, keepdims=True)
        np.exp(block, out=block)
        block *= np.reciprocal(block.sum(axis=1, keepdims=True))
    return rows


def softmax_last_(scores: np.ndarray) -> np.ndarray:
    """Softmax over the last axis of a C-contiguous float32 array of any rank, in place; returns it."""
    if not scores.flags.c_contiguous:
        raise ValueError("softmax_last_ works in place on a C-contiguous array")
    softmax_np_(scores.reshape(-1, scores.shape[-1]))  # a view: the rows are the array's own
    return scores


Norm = tuple[np.ndarray, np.ndarray, float]  # a layer norm's weight, bias and epsilon


def norm_params(layer: Any) -> Norm:
    """An MLX `nn.LayerNorm` as (weight, bias, eps), the arrays as zero-copy numpy views."""
    return np.asarray(layer.weight), np.asarray(layer.bias), float(layer.eps)


# Blocks up to this many rows (a decoder step's beams) go to our C kernels when they are built:
# there numpy's or oneDNN's per-call overhead is most of the cost (a layer norm of one 384-float
# row: ~6 numpy calls). Larger blocks (the encoder, prompts) keep their routes and results.
_NATIVE_ROWS = 16


def layer_norm(x: np.ndarray, norm: Norm) -> np.ndarray:
    """Layer norm of each row of a (rows, D) float32 block, into a new array."""
    weight, bias, eps = norm
    if x.shape[0] <= _NATIVE_ROWS and x.strides[-1] == 4 and x.dtype == np.float32 and native_kernels.available():
        return native_kernels.layer_norm_rows(x, weight, bias, eps)
    # add.reduce / n is what ndarray.mean computes, without its Python wrapper (a decoder step makes 13 of these)
    centered = x - np.add.reduce(x, axis=1, keepdims=True) / x.shape[1]
    variance = np.einsum("td,td->t", centered, centered)[:, None] / np.float32(x.shape[1])
    centered *= np.reciprocal(np.sqrt(variance + np.float32(eps)))
    centered *= weight
    centered += bias
    return centered


def gelu_(hidden: mx.array) -> mx.array:
    """Exact (erf) GELU of a fresh float32 array, in place; returns it."""
    rows = _writable_view(hidden)
    if rows is None:
        return hidden * 0.5 * (1.0 + mx.erf(hidden * float(_INV_SQRT2)))
    for start in range(0, rows.shape[0], _ROWS_PER_CHUNK):
        gelu_np_(rows[start : start + _ROWS_PER_CHUNK])
    return hidden


def gelu_np_(block: np.ndarray) -> np.ndarray:
    """Exact (erf) GELU of a float32 numpy array, in place; returns it."""
    if block.ndim == 2 and block.shape[0] <= _NATIVE_ROWS and block.flags.c_contiguous and native_kernels.available():
        return native_kernels.gelu_(block)
    if _kernel_fits(block):
        return onednn_eltwise.gelu_(block)
    block *= 0.5 * (1.0 + np.copysign(_erf_of_abs(np.abs(block) * _INV_SQRT2), block))
    return block


def _erf_of_abs(z: np.ndarray) -> np.ndarray:
    """erf(z) for z >= 0 (float32 arrays)."""
    t = np.reciprocal(1.0 + _ERF_P * z)
    poly = _ERF_A[4]
    for coefficient in reversed(_ERF_A[:4]):
        poly = poly * t + coefficient
    return 1.0 - poly * t * np.exp(-z * z)


def attention(scaled_q: mx.array, k_t: mx.array, v: mx.array) -> mx.array:
    """Unmasked attention with the softmax on the host, merged to (B, T, H * Dh).

    q (B, H, T, Dh) already scaled, k_t (B, H, Dh, S), v (B, H, S, Dh). Works one head and
    `ROWS_PER_BLOCK` queries at a time and evaluates each block before the next, so the
    scores (3 MB, not 54 MB for tiny.en's 6 x 1500 x 1500) stay in cache from product to softmax
    to product and their buffer is reused: measured ~1.5x faster than all heads at once here.
    """
    batch, heads, length, _ = scaled_q.shape
    merged = []
    for b in range(batch):
        per_head = []
        for h in range(heads):
            for start in range(0, length, ROWS_PER_BLOCK):
                scores = scaled_q[b, h, start : start + ROWS_PER_BLOCK] @ k_t[b, h]  # (rows, S)
                per_head.append(softmax_(scores) @ v[b, h])  # (rows, Dh)
                mx.eval(per_head[-1])
        rows_per_head = len(per_head) // heads
        heads_out = [mx.concatenate(per_head[i * rows_per_head : (i + 1) * rows_per_head]) for i in range(heads)]
        merged.append(mx.concatenate(heads_out, axis=-1))  # (T, H * Dh): heads side by side
    return mx.stack(merged)


def matvec_logits(weight: mx.array, x: mx.array) -> mx.array:
    """x (1, 1, D) @ weight.T for a large (V, D) weight, through a BLAS matrix-vector product.

    MLX sends every product to gemm, which is ~2x slower than gemv for one row (4 ms vs 8 ms for
    tiny.en's 51864 x 384 logits here). Several rows read the weight once in a gemm instead:
    callers keep those in MLX.
    """
    mx.eval(x, weight)
    table = np.asarray(weight)
    out = matvec(table, np.asarray(x).reshape(-1))
    return mx.array(out.reshape(1, 1, table.shape[0]))


def matvec(matrix: np.ndarray, vector: np.ndarray, transpose: bool = False) -> np.ndarray:
    """matrix @ vector (or matrix.T @ vector) for a 2-D float32 matrix, through OpenBLAS's sgemv.

    The OpenBLAS `_blas` loaded (the threads MLX already uses, limited by
    `decoder_blas_threads`) rather than numpy's own copy: numpy's bundled OpenBLAS keeps a second
    pool of threads, and two pools spinning on 2 cores made a numpy decoder step ~5x slower here.
    """
    sgemv = _cblas_sgemv()
    vector = np.ascontiguousarray(vector, dtype=np.float32)
    if sgemv is None or not matrix.flags.c_contiguous or matrix.dtype != np.float32:
        return (matrix.T if transpose else matrix) @ vector
    rows, cols = matrix.shape
    out = np.empty(cols if transpose else rows, np.float32)
    sgemv(_ROW_MAJOR, _TRANSPOSE if transpose else _NO_TRANSPOSE, rows, cols, 1.0, matrix.ctypes.data,
          cols, vector.ctypes.data, 1, 0.0, out.ctypes.data, 1)  # fmt: skip
    return out


_ROW_MAJOR, _NO_TRANSPOSE, _TRANSPOSE = 101, 111, 112  # CBLAS enum values
# BLAS threads while a decoder step evaluates (0, the default: leave OpenBLAS alone). Reading the
# weights is the cost, and one core alone does not saturate memory: on an idle 2-core machine a
# tiny.en step took 7.7 ms with 2 threads and 12.5 ms with 1. On a crowded CPU it is the other
# way round (22 ms with 1 thread, 30 ms with 2, measured under load 3): set 1 there.
_DECODER_THREADS = int(config.setting(config.DECODER_BLAS_THREADS, "0") or 0)


@contextmanager
def decoder_blas_threads() -> Iterator[None]:
    """Limit OpenBLAS's threads while a decoder step runs, then restore them.

    OpenBLAS's thread count is process-wide: a product running in another thread meanwhile uses
    whichever count it reads, which changes its speed, not its result.
    """
    library = _openblas()
    wanted = _DECODER_THREADS
    if library is None or wanted <= 0:
        yield
        return
    previous = library.openblas_get_num_threads()
    if previous <= wanted:
        yield
        return
    library.openblas_set_num_threads(wanted)
    try:
        yield
    finally:
        library.openblas_set_num_threads(previous)


@lru_cache(maxsize=1)
def _openblas() -> Any:
    """The OpenBLAS `_blas` preloaded (ctypes handle), or None."""
    from . import blas as _blas

    if _blas.loaded_blas is None:
        return None
    try:
        library = ctypes.CDLL(_blas.loaded_blas)
        library.openblas_get_num_threads.restype = ctypes.c_int
        library.openblas_set_num_threads.argtypes = [ctypes.c_int]
        library.cblas_sgemv  # noqa: B018  (probe: a BLAS without it is not used here)
    except (OSError, AttributeError):
        return None
    return library


@lru_cache(maxsize=1)
def _cblas_sgemv() -> Any:
    """cblas_sgemv from the OpenBLAS `_blas` preloaded, or None."""
    library = _openblas()
    if library is None:
        return None
    function = library.cblas_sgemv
    c_int, c_float, pointer = ctypes.c_int, ctypes.c_float, ctypes.c_void_p
    function.argtypes = [c_int, c_int, c_int, c_int, c_float, pointer, c_int, pointer, c_int, c_float, pointer, c_int]
    function.restype = None
    return function


def log_normalizers(logits: np.ndarray, maxima: np.ndarray | None = None) -> np.ndarray:
    """logsumexp of each row of `logits` (B, V), as float64; -inf for a row with nothing allowed.
    `maxima` (B,), each row's largest value when the caller has it already (one pass less).

    The exponentials are float32 (each term below 1 after the shift, relative error ~1e-7), summed
    in float64: float64 exponentials cost 0.47 ms per 51864-token row here against 0.13 ms, every
    step, and moved the result by ~1e-9."""
    if native_kernels.available() and logits.ndim == 2 and logits.dtype == np.float32 and logits.strides[1] == 4:
        tops = maxima
        if tops is None:  # (an errstate block costs ~5 us in a decoding loop: only where it is needed)
            with np.errstate(invalid="ignore"):
                tops = logits.max(axis=-1)
        return native_kernels.log_normalizers(logits, tops)  # our C kernel: the same scheme, ~2x faster (see it)
    with np.errstate(invalid="ignore", divide="ignore"):
        top = logits.max(axis=-1, keepdims=True) if maxima is None else np.reshape(maxima, (-1, 1))
        top = np.where(np.isfinite(top), top, np.float32(0.0)).astype(np.float32)
        shifted = np.subtract(logits, top, dtype=np.float32)
        np.exp(shifted, out=shifted)
        return top[:, 0].astype(np.float64) + np.log(shifted.sum(axis=-1, dtype=np.float64))
