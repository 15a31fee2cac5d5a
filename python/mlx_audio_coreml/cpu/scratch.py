"""Per-thread reusable buffers of the host linear layers (`linear.HostLinear`).

Why: large fresh allocations cost page faults on every call, and a decoder step makes ~25 products;
each thread keeps its own so that concurrent callers never share one.
"""

from __future__ import annotations

import threading

import numpy as np


class _BlockScratch(threading.local):
    """Per-thread reusable buffers: large fresh allocations cost page faults on every call."""

    def __init__(self) -> None:
        self.buffers: dict[tuple[str, tuple[int, ...], str], np.ndarray] = {}

    def get(self, role: str, shape: tuple[int, ...], dtype: type) -> np.ndarray:
        key = (role, shape, np.dtype(dtype).str)
        found = self.buffers.get(key)
        if found is None:
            if len(self.buffers) > 64:  # many lengths seen (prompts): start over rather than grow
                self.buffers.clear()
            found = self.buffers[key] = np.empty(shape, dtype)
        return found


block_scratch = _BlockScratch()


class _RowBuffers:
    """One thread's buffers for one-row int8 products of a (K -> N) shape, with their addresses."""

    def __init__(self, in_features: int, out_features: int) -> None:
        self.scaled = np.empty((1, in_features), np.float32)
        self.quantized = np.empty((1, in_features), np.uint8)
        self.sums = np.empty((1, out_features), np.int32)
        self.quantized_at, self.sums_at = self.quantized.ctypes.data, self.sums.ctypes.data


class _RowScratch(threading.local):
    def __init__(self) -> None:
        self.buffers: dict[tuple[int, int], _RowBuffers] = {}

    def get(self, in_features: int, out_features: int) -> _RowBuffers:
        found = self.buffers.get((in_features, out_features))
        if found is None:
            found = self.buffers[(in_features, out_features)] = _RowBuffers(in_features, out_features)
        return found


row_scratch = _RowScratch()
