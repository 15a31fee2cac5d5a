"""A large weight's few-row product (int8 or float32), its column pieces shared by a decoder step's team, in one C call.

The logits product of a decoder step (tiny.en: 51864 x 384, 20 MB of int8 weights) is cut into
column pieces so that every core reads its share (`linear.HostLinear._row_kernel`); so are a
block's larger products (`HostLinear.split_for_team`), which the block's C call runs the same way. Through the
host pool each piece is a Python call handed to a worker; here `macb_cpu_row_product_pieces` runs
every piece's one-call product (`native_kernels.RowProductCall`) on the open team of the step
(`cpu/team.py`). Each piece quantizes the rows itself, as the numpy route does once: the same
bytes, the same results, bit for bit.
"""

from __future__ import annotations

import ctypes
import threading
from typing import Any

import numpy as np

from . import native_kernels
from .team import TeamState

_ptr, _i64 = ctypes.c_void_p, ctypes.c_int64


class _PiecesArgs(ctypes.Structure):
    """macb_cpu_pieces_args, field for field."""

    _fields_ = [
        ("size", _i64), ("team", _ptr), ("pieces", _ptr), ("columns", _ptr), ("blocks", _ptr), ("count", _i64),
        ("rows", _ptr), ("row_count", _i64), ("row_stride", _i64), ("out", _ptr), ("out_width", _i64),
    ]  # fmt: skip


def _declared() -> Any:
    library = native_kernels.library()
    if library is not None and library.macb_cpu_row_product_pieces.argtypes is None:
        library.macb_cpu_row_product_pieces.argtypes = [ctypes.POINTER(_PiecesArgs)]
        library.macb_cpu_row_product_pieces.restype = ctypes.c_int32
    return library


class PiecesCall:
    """One thread's pieces of one product for `rows` rows: (column start, RowProductCall, the
    binding it runs on, its own (rows, width) block) per piece."""

    def __init__(self, pieces: list[tuple[int, native_kernels.RowProductCall, Any, np.ndarray]], rows: int) -> None:
        self._library = _declared()
        self._bounds = [bound for _, _, bound, _ in pieces]
        count = len(pieces)
        self._keep = (
            (_ptr * count)(*(call.address for _, call, _, _ in pieces)),
            (_i64 * count)(*(start for start, _, _, _ in pieces)),
            (_ptr * count)(*(block.ctypes.data for _, _, _, block in pieces)),
            [(call, block) for _, call, _, block in pieces],  # alive while the C side holds their addresses
        )
        self.out_width = sum(call.out_width for _, call, _, _ in pieces)
        self.rows, self.in_width = rows, pieces[0][1].in_width
        self._args = _PiecesArgs(
            ctypes.sizeof(_PiecesArgs), None, ctypes.addressof(self._keep[0]), ctypes.addressof(self._keep[1]),
            ctypes.addressof(self._keep[2]), count, None, rows, 0, None, self.out_width,
        )  # fmt: skip
        self._pointer = ctypes.byref(self._args)
        self.address = ctypes.addressof(self._args)  # macb_cpu_decoder_block fills in its row, out and team fields

    def own_sources(self) -> None:
        """Point each piece back at its own source buffer (a `_few` call, a prefill's last row, may
        have moved one) before the C side runs the pieces."""
        for bound in self._bounds:
            bound.own_source()

    def __call__(self, team: TeamState | None, rows: np.ndarray, out: np.ndarray) -> None:
        """rows (R, K) float32 with contiguous rows; out (R, N) float32, C-contiguous."""
        if rows.shape != (self.rows, self.in_width) or rows.strides[1] != 4 or rows.dtype != np.float32:
            raise ValueError(f"rows: expected float32 {(self.rows, self.in_width)} with contiguous rows")
        if out.shape != (self.rows, self.out_width) or not out.flags.c_contiguous or out.dtype != np.float32:
            raise ValueError(f"out: expected C-contiguous float32 {(self.rows, self.out_width)}")
        self.own_sources()
        args = self._args
        args.team = None if team is None else ctypes.addressof(team)
        args.rows, args.row_stride, args.out = native_kernels.address(rows), rows.strides[0] // 4, out.ctypes.data
        native_kernels.checked(self._library.macb_cpu_row_product_pieces(self._pointer), "row_product_pieces")


class ThreadPieces(threading.local):
    """A product's `PiecesCall` per row count for the thread that asks (None: it has none)."""

    def __init__(self) -> None:
        self.by_rows: dict[int, PiecesCall | None] = {}
