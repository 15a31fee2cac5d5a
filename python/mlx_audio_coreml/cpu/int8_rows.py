"""Symmetric int8 quantization of rows, as the host's int8 products (`linear.HostLinear`) take them.

Weights: each row (output channel) once, at preparation, with its own scale. Inputs: each row at
call time, the same way, then shifted to unsigned bytes q + 128 (oneDNN's faster u8 x s8 kernels;
the layer's precomputed offsets take the 128s back out). The C one-call products
(`cpu_kernels/row_product.c`) repeat `quantize_into` operation for operation with `QUANTIZATION`.
"""

from __future__ import annotations

import numpy as np

INT8_MAX = np.float32(127.0)
INPUT_SHIFT = 128  # quantized inputs (-127..127) go to oneDNN shifted to unsigned bytes (1..255)
TINY = np.float32(1e-30)  # an all-zero row keeps scale 1e-30 / 127: its integers are all 0 anyway
QUANTIZATION = (float(TINY), float(INT8_MAX), float(INPUT_SHIFT))  # as the C one-call products take it


def quantize_rows(matrix: np.ndarray, limit: float = 127.0) -> tuple[np.ndarray, np.ndarray]:
    """(int8 matrix, float32 scale per row) with matrix ~= int8 * scale[:, None]; |int8| <= limit."""
    scales = np.maximum(np.abs(matrix).max(axis=1), TINY) / np.float32(limit)
    quantized = np.rint(matrix / scales[:, None]).astype(np.int8)
    return quantized, scales.astype(np.float32)


def quantize_into(rows: np.ndarray, scaled: np.ndarray, out: np.ndarray) -> np.ndarray:
    """Each float32 row of `rows` (M, K) quantized symmetrically as `HostLinear` takes its int8 inputs,
    written into `out` as unsigned bytes q + 128 (`scaled`: a float32 scratch of their shape; a fresh
    block would cost page faults per call); returns the rows' scales, (M, 1) float32."""
    np.abs(rows, out=scaled)
    row_scales = np.maximum(scaled.max(axis=1, keepdims=True), TINY) / INT8_MAX
    np.multiply(rows, np.reciprocal(row_scales), out=scaled)
    np.rint(scaled, out=scaled)
    np.add(scaled, INPUT_SHIFT, out=out, casting="unsafe")  # exact: integers in [1, 255]
    return row_scales
