"""Matrix products by constant weights (linear, 1x1 convs, matmul by a constant 2-D y) on the CPU
host path: cpu/linear.py's HostLinear, the product encoder's own oneDNN route.

Why: MLX sends CPU products to OpenBLAS, whose kernels ran the encoder's shapes at about half the
speed of oneDNN's here (cpu/onednn.py has the measurements); HostLinear also splits many rows between
the host workers. When: `applies`: float32 values with oneDNN (host.onednn_applies, so never in a
compiled trace, on a GPU or for float16 programs) and every weight parameter a constant of the
program. The prepared HostLinear (weights laid out once) is kept on the node for later predictions.
"""

from __future__ import annotations

from collections.abc import Callable

import mlx.core as mx
import numpy as np

from ....cpu import host_math, onednn
from ....cpu import pool as host_pool
from ....cpu.linear import HostLinear
from .. import shared
from . import host
from .registry import OpContext

Activation = Callable[[np.ndarray], np.ndarray]  # in place on a float32 block, such as host_math.gelu_np_
# One row times a weight of at most this many values runs on the calling thread alone: OpenBLAS's threaded
# gemv (HostLinear's one-row route, right for a large logits weight) woke its threads for a vocoder's 59
# style products of (1, 128) x (128, 2C) and they spun on between calls: 0.3-0.6 s of CPU time a call,
# measured per thread on 2 cores, for microseconds of arithmetic.
_ONE_THREAD_VALUES = 1 << 20


def applies(ctx: OpContext, x: mx.array, weights: dict[str, mx.array | None]) -> bool:
    """Whether x times these weights (by parameter name; None: left out) takes the host path."""
    given = {name: w for name, w in weights.items() if w is not None}
    return (
        host.onednn_applies(x.dtype)
        and x.size > 0
        and all(w.dtype == mx.float32 for w in given.values())
        and all(name in ctx.constant_params for name in given)
    )


def _prepared(ctx: OpContext, weight: mx.array, bias: mx.array | None) -> HostLinear:
    """The node's HostLinear for a constant weight (N, K) or (N, K, 1, ..) of a 1x1 conv, laid out on
    its first call, kept in the node's memo and shared with nodes of other loaded programs that read
    the same weight and bias arrays (shared.py)."""
    held = ctx.memo.get("host_products.linear")
    if held is None:

        def make() -> HostLinear:
            matrix = _host(weight)
            return HostLinear(matrix.reshape(matrix.shape[0], -1), None if bias is None else _host(bias))

        held = ctx.memo["host_products.linear"] = shared.prepared("host_products.linear", (weight, bias), make)
    return held.value


def _host(x: mx.array) -> np.ndarray:
    mx.eval(x)
    return np.asarray(x)  # a view of MLX's buffer when it is one plain block


def _rows(x: mx.array) -> np.ndarray:
    """x (..., K) as plain (M, K) float32 rows (oneDNN reads plain rows: copies only a strided x)."""
    rows = np.ascontiguousarray(_host(x))
    return rows.reshape(-1, rows.shape[-1])


def _row_blocks(count: int) -> list[slice]:
    return host_pool.row_blocks(count, host_math.ROWS_PER_BLOCK)


def linear(
    ctx: OpContext, x: mx.array, weight: mx.array, bias: mx.array | None, activation: Activation | None = None
) -> mx.array:
    """x @ weight^T + bias, then `activation` in place when given: on each block of rows while it
    is still in cache (row blocks go to the host workers)."""
    layer, flat = _prepared(ctx, weight, bias), _rows(x)  # (M, K)

    def fill(out: np.ndarray) -> None:
        result = out.reshape(flat.shape[0], -1)  # (M, N)
        if activation is None and _one_small_row(layer, flat):
            onednn.sgemm(flat, layer.weight, result, b_transposed=True)
            if layer.bias is not None:
                result += layer.bias
            return
        if activation is None:
            layer(flat, out=result)  # splits many rows between the workers itself
            return
        act = activation  # bound here: the lambda below would not see the narrowing
        host_pool.run_all(lambda block: act(layer(flat[block], out=result[block])), _row_blocks(len(flat)))

    return host.filled(x.shape[:-1] + (layer.out_features,), fill)


def _one_small_row(layer: HostLinear, rows: np.ndarray) -> bool:
    return rows.shape[0] == 1 and not layer.int8 and layer.weight.size <= _ONE_THREAD_VALUES


def matmul(ctx: OpContext, x: mx.array, y: mx.array) -> mx.array:
    """x @ y for a constant 2-D y (K, N) (a transposed view of a stored (N, K) one costs no copy)."""
    held = ctx.memo.get("host_products.matmul")
    if held is None:
        held = ctx.memo["host_products.matmul"] = shared.prepared(
            "host_products.matmul",
            (y,),
            lambda: HostLinear(np.ascontiguousarray(_host(y).T), None),  # (N, K)
        )
    layer: HostLinear = held.value
    flat = _rows(x)
    return host.filled(x.shape[:-1] + (layer.out_features,), lambda out: layer(flat, out=out.reshape(len(flat), -1)))
