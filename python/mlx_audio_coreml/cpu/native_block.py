"""One decoder block of a decoder step in one C call (`macb_cpu_decoder_block`, cpu_kernels/decoder_block.c).

The block runs the kernels the step's Python route calls one by one (layer norms, the six int8
one-call products, self- and cross-attention, GELU, residual adds) in the same order on the same
bytes, so its results are that route's, bit for bit. What it saves is Python between them: ~60
calls a block (numpy, ctypes, the cache's bookkeeping).

A `BlockCall` belongs to one layer, one row count and one thread: its products are that thread's
prepared one-call products (`native_kernels.RowProductCall`), or their column pieces
(`native_pieces.PiecesCall`) where the step's team shares a large product, whose argument structs
the C side fills in, and its scratch is its own.
"""

from __future__ import annotations

import ctypes
from collections.abc import Sequence
from typing import Any

import numpy as np

from . import half_audio, native_kernels
from .native_kernels import RowProductCall
from .native_pieces import PiecesCall
from .team import TeamState

# macb_cpu.h's MACB_CPU_STAGE_*: what one call runs, in this order
STAGE_SELF, STAGE_CROSS_QUERY, STAGE_CROSS_ATTEND, STAGE_CROSS_OUT_MLP = 1, 2, 4, 8
ALL_STAGES = STAGE_SELF | STAGE_CROSS_QUERY | STAGE_CROSS_ATTEND | STAGE_CROSS_OUT_MLP
_ptr, _i64 = ctypes.c_void_p, ctypes.c_int64


class _BlockArgs(ctypes.Structure):
    """macb_cpu_block_args, field for field."""

    _fields_ = [
        ("size", _i64), ("stages", _i64), ("x", _ptr), ("cross_q", _ptr), ("attended", _ptr), ("scratch", _ptr),
        ("rows", _i64), ("width", _i64), ("heads", _i64), ("hidden_width", _i64), ("scratch_floats", _i64),
        ("norm_weight", _ptr * 3), ("norm_bias", _ptr * 3), ("eps", ctypes.c_float),
        ("qkv", _ptr), ("out", _ptr), ("cross_q_product", _ptr), ("cross_out", _ptr), ("mlp1", _ptr), ("mlp2", _ptr),
        ("keys", _ptr), ("values", _ptr), ("cache_row_stride", _i64), ("cache_head_stride", _i64), ("length", _i64),
        ("audio_keys_t", _ptr), ("audio_values", _ptr), ("audio_row_stride", _i64), ("frames", _i64), ("team", _ptr),
        ("split", _ptr * 6), ("audio_half", _i64),
    ]  # fmt: skip


def _declared() -> Any:
    library = native_kernels.library()
    if library is None:
        raise RuntimeError("the CPU kernels are not available (see native_kernels.available())")
    if library.macb_cpu_decoder_block.argtypes is None:
        library.macb_cpu_decoder_block.argtypes = [ctypes.POINTER(_BlockArgs)]
        library.macb_cpu_decoder_block.restype = ctypes.c_int32
    return library


class BlockCall:
    """One decoder block (self-attention, cross-attention, MLP) for `rows` token rows, on one thread.

    `products`: the thread's one-call products for this row count, in the order q/k/v (fused,
    queries pre-scaled), self-attention out, cross queries (pre-scaled), cross-attention out, mlp1,
    mlp2, each whole or in column pieces (`PiecesCall`: the step's team shares them); `norms`: the
    three layer norms' (weight, bias, eps), eps shared."""

    def __init__(
        self, products: Sequence[RowProductCall | PiecesCall], norms: Sequence[tuple[np.ndarray, np.ndarray, float]],
        heads: int, rows: int,
    ) -> None:  # fmt: skip
        self._library = _declared()
        qkv, out, cross_q, cross_out, mlp1, mlp2 = products
        self.width, self.hidden_width, self.rows = out.out_width, mlp1.out_width, rows
        shapes = [(p.in_width, p.out_width) for p in products]
        width, hidden = self.width, self.hidden_width
        expected = [(width, 3 * width)] + [(width, width)] * 3 + [(width, hidden), (hidden, width)]
        if shapes != expected or any(p.rows != rows for p in products) or width % heads:
            raise ValueError(f"the block's products do not chain: {shapes} for {rows} rows of width {width}")
        self.products = tuple(products)
        self._norms = norms  # kept alive: the C side holds their addresses
        args = _BlockArgs()
        args.size, args.rows, args.heads = ctypes.sizeof(_BlockArgs), rows, heads
        args.width, args.hidden_width = width, hidden
        for i, (weight, bias, _eps) in enumerate(norms):
            args.norm_weight[i] = native_kernels.vector_address(weight, width, "norm weight")
            args.norm_bias[i] = native_kernels.vector_address(bias, width, "norm bias")
        args.eps = norms[0][2]
        whole = [None if isinstance(p, PiecesCall) else p.address for p in products]
        args.qkv, args.out, args.cross_q_product, args.cross_out, args.mlp1, args.mlp2 = whole
        for i, p in enumerate(products):
            args.split[i] = p.address if isinstance(p, PiecesCall) else None
        self._args, self._pointer = args, ctypes.byref(args)
        self._scratch = np.empty(0, np.float32)

    def _scratch_for(self, extra: int) -> None:
        """Scratch for the block's row buffers (normed, q/k/v, projected, hidden) and `extra` floats more."""
        floats = self.rows * (5 * self.width + self.hidden_width) + extra
        if self._scratch.size < floats:
            self._scratch = np.empty(floats, np.float32)
            self._args.scratch, self._args.scratch_floats = self._scratch.ctypes.data, floats

    def set_cache(self, keys: np.ndarray, values: np.ndarray, length: int) -> None:
        """The self-attention cache: keys and values storage (rows, heads, capacity, head_dim),
        float32, C-contiguous, alike; `length` token rows after this step (its row is length - 1)."""
        rows, heads, capacity, head_dim = keys.shape
        if (
            values.shape != keys.shape or rows != self.rows or heads * head_dim != self.width
            or not 1 <= length <= capacity or keys.dtype != np.float32 or values.dtype != np.float32
            or not (keys.flags.c_contiguous and values.flags.c_contiguous)
        ):  # fmt: skip
            raise ValueError(f"cache storage {keys.shape} / {values.shape} does not fit {self.rows} rows to {length}")
        args = self._args
        args.keys, args.values = keys.ctypes.data, values.ctypes.data
        args.cache_head_stride, args.length = capacity * head_dim, length
        args.cache_row_stride = heads * args.cache_head_stride
        self._scratch_for(capacity)

    def set_audio(self, keys_t: np.ndarray, values: np.ndarray, team: TeamState | None = None) -> None:
        """The window's audio keys (A, H, Dh, S) and values (A, H, S, Dh), C-contiguous float32 (or both
        float16: half_audio.py), A 1 (every row reads the same audio) or the row count; `team` (an
        open one) shares its heads."""
        audio, heads, head_dim, frames = keys_t.shape
        half = half_audio.is_half_pair(keys_t, values)
        if (
            values.shape != (audio, heads, frames, head_dim) or audio not in (1, self.rows)
            or heads * head_dim != self.width or not (half or keys_t.dtype == values.dtype == np.float32)
            or not (keys_t.flags.c_contiguous and values.flags.c_contiguous)
        ):  # fmt: skip
            raise ValueError(f"audio keys {keys_t.shape} / values {values.shape} do not fit width {self.width}")
        args = self._args
        args.audio_keys_t, args.audio_values, args.audio_half = keys_t.ctypes.data, values.ctypes.data, int(half)
        args.audio_row_stride, args.frames = 0 if audio == 1 else heads * head_dim * frames, frames
        args.team = None if team is None else ctypes.addressof(team)
        workers = 1 if team is None else int(team.workers)
        self._scratch_for(workers * native_kernels.GROUP_ROWS * frames)

    def run(self, x: np.ndarray, cross_q: np.ndarray, attended: np.ndarray, stages: int) -> None:
        """The `stages` on x (rows, width) in place; cross_q and attended (rows, width) are written
        (or, without STAGE_CROSS_ATTEND, `attended` is read by STAGE_CROSS_OUT_MLP). All three
        float32 and C-contiguous; the cache and audio set first."""
        for name, block in (("x", x), ("cross_q", cross_q), ("attended", attended)):
            if block.shape != (self.rows, self.width) or block.dtype != np.float32 or not block.flags.c_contiguous:
                raise ValueError(f"{name}: expected C-contiguous float32 {(self.rows, self.width)}, got {block.shape}")
        args = self._args
        args.stages, args.x = stages, native_kernels.address(x)
        args.cross_q, args.attended = native_kernels.address(cross_q), native_kernels.address(attended)
        status = self._library.macb_cpu_decoder_block(self._pointer)
        native_kernels.checked(status, "macb_cpu_decoder_block")
