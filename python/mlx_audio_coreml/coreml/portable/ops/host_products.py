"""Matrix products by constant weights (linear, 1x1 convs, matmul by a constant 2-D y) on the CPU
host path: whisper/host_linear.py's HostLinear, the product encoder's own oneDNN route.

Why: MLX sends CPU products to OpenBLAS, whose kernels ran the encoder's shapes at about half the
speed of oneDNN's here (onednn.py has the measurements); HostLinear also splits many rows between
the host workers. When: `applies`: float32 values with oneDNN (host.onednn_applies, so never in a
compiled trace, on a GPU or for float16 programs) and every weight parameter a constant of the
program. The prepared HostLinear (weights laid out once) is kept on the node for later predictions.
"""

from __future__ import annotations

from collections.abc import Callable

import mlx.core as mx
import numpy as np

from ....whisper import host_math, host_pool
from ....whisper.host_linear import HostLinear
from . import host
from .registry import OpContext

Activation = Callable[[np.ndarray], object]  # in place on a float32 block, such as host_math.gelu_np_
_MEMO_KEY = "host_products.layer"


def applies(ctx: OpContext, x: mx.array, weights: dict[str, mx.array | None]) -> bool:
    """Whether x times these weights (by parameter name; None: left out) takes the host path."""
    given = {name: w for name, w in weights.items() if w is not None}
    return (
        host.onednn_applies(x.dtype)
        and x.size > 0
        and all(w.dtype == mx.float32 for w in given.values())
        and all(name in ctx.constant_params for name in given)
    )


def _layer(ctx: OpContext, make: Callable[[], HostLinear]) -> HostLinear:
    """The node's prepared HostLinear, made on its first call (its weights are constants)."""
    layer = ctx.memo.get(_MEMO_KEY)
    if layer is None:
        layer = ctx.memo[_MEMO_KEY] = make()
    return layer


def _host(x: mx.array) -> np.ndarray:
    mx.eval(x)
    return np.asarray(x)  # a view of MLX's buffer when it is one plain block


def _times(layer: HostLinear, x: mx.array, activation: Activation | None = None) -> mx.array:
    """x (..., K) through `layer`: (..., N); `activation` then applied in place, on each block of
    rows while it is still in cache (row blocks go to the host workers)."""
    rows = np.ascontiguousarray(_host(x))  # oneDNN reads plain rows: copies only a strided x
    flat = rows.reshape(-1, rows.shape[-1])  # (M, K)
    shape = rows.shape[:-1] + (layer.out_features,)  # (..., N)

    def fill(out: np.ndarray) -> None:
        result = out.reshape(flat.shape[0], -1)  # (M, N)
        if activation is None:
            layer(flat, out=result)  # splits many rows between the workers itself
            return

        def part(block: slice) -> None:
            activation(layer(flat[block], out=result[block]))

        host_pool.run_all(part, host_pool.row_blocks(flat.shape[0], host_math.ROWS_PER_BLOCK))

    return host.filled(shape, fill)


def linear(
    ctx: OpContext, x: mx.array, weight: mx.array, bias: mx.array | None, activation: Activation | None = None
) -> mx.array:
    """x @ weight^T + bias for a constant (N, K) weight (or (N, K, 1, ..) of a 1x1 conv), then
    `activation` (in place on a float32 block) when given."""
    def make() -> HostLinear:
        matrix = _host(weight)
        return HostLinear(matrix.reshape(matrix.shape[0], -1), None if bias is None else _host(bias))

    return _times(_layer(ctx, make), x, activation)


def matmul(ctx: OpContext, x: mx.array, y: mx.array) -> mx.array:
    """x @ y for a constant 2-D y (K, N) (a transposed view of a stored (N, K) one costs no copy)."""
    def make() -> HostLinear:
        return HostLinear(np.ascontiguousarray(_host(y).T), None)  # (N, K)

    return _times(_layer(ctx, make), x)
