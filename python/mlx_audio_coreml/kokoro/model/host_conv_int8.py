"""int8 convolutions for the generator on the CPU host path (opt-in): the products of host_conv in 8 bits.

The scheme ONNX Runtime runs on Kokoro's int8 graph (ConvInteger after DynamicQuantizeLinear), in the
symmetric form cpu/linear.py uses: each output channel's weights quantized once, at preparation, with
their own scale (to +-63 on CPUs without VNNI, where oneDNN's int8 products would saturate beyond: see
cpu/onednn.int8_weight_limit); the input quantized per call with one scale for the whole tensor (a conv's
im2col row mixes k frames, so a scale per frame cannot be factored out of the sum). oneDNN multiplies
the int8 blocks into exact int32 sums, scaled back by both scales. The im2col copies move a quarter of
the bytes of float32.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from ...cpu import onednn
from ...cpu import pool as host_pool
from ...cpu.int8_rows import TINY, quantize_rows
from .host_conv import ROWS, HostConv1d


def quantize(x: np.ndarray) -> tuple[np.ndarray, np.float32]:
    """(int8 copy, scale) with x ~= int8 * scale, one symmetric scale for the whole array."""
    blocks = host_pool.row_blocks(x.shape[0], 4 * ROWS)
    peak = max(host_pool.run_all(lambda rows: float(np.abs(x[rows]).max(initial=0.0)), blocks))
    scale = np.float32(max(peak, float(TINY)) / 127.0)
    inverse = np.float32(1.0) / scale
    quantized = np.empty(x.shape, np.int8)

    def part(rows: slice) -> None:
        scaled = x[rows] * inverse
        np.rint(scaled, out=scaled)
        np.copyto(quantized[rows], scaled, casting="unsafe")  # exact: integers in [-127, 127]

    host_pool.run_all(part, blocks)
    return quantized, scale


class HostConv1dInt8(HostConv1d):
    """HostConv1d with int8 products: same call, float32 in and out."""

    def __init__(self, conv: Any) -> None:
        super().__init__(conv)
        self.weight, self.scales = quantize_rows(self.weight, onednn.int8_weight_limit())

    def __call__(self, x_padded: np.ndarray, out: np.ndarray | None = None, accumulate: bool = False) -> np.ndarray:
        length = self.output_length(x_padded.shape[0])
        if out is None:
            if accumulate:
                raise ValueError("accumulate needs out")
            out = np.empty((length, self.out_channels), np.float32)
        result = out
        quantized, scale = quantize(x_padded)
        factors = (self.scales * scale).astype(np.float32)  # (out,): both scales at once
        host_pool.run_all(
            lambda rows: self._int8_rows(quantized, rows, result[rows], factors, accumulate),
            host_pool.row_blocks(length, ROWS),
        )
        return result

    def _int8_rows(self, x: np.ndarray, rows: slice, out: np.ndarray, factors: np.ndarray, accumulate: bool) -> None:
        sums = np.empty(out.shape, np.int32)
        onednn.gemm_int8(self.columns(x, rows), self.weight, sums)
        if accumulate:
            out += np.multiply(sums, factors, dtype=np.float32)
        else:
            np.multiply(sums, factors, out=out, dtype=np.float32)
        if self.bias is not None:
            out += self.bias
