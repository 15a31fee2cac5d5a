"""When the portable ops hand softmax, exact GELU and attention to whisper/host_math.py (numpy on
MLX's own buffers), as the product's MLX encoder does on the CPU in float32.

Why: MLX's CPU exp and erf run one element at a time here, so a Whisper encoder spends most of
its time in softmax and GELU; numpy's are vectorized (host_math.py has the measurements).
When: `applies(dtype)`: host_math says so for the dtype the op computes in (float32 on the CPU,
which is also where float16 programs compute), and no `mx.compile` trace is being recorded —
host math evaluates as it goes, which a trace cannot do. A program that would use it on its
device is therefore run eagerly (runtime.py); `tracing()` marks a compiled call, so a trace that
happens anyway (host math switched on after load) gets the plain MLX ops.
Safety: host_math overwrites its argument; the ops here only ever hand it a copy they just made,
never a value of the program that another op (or the caller) may read.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator, Mapping
from contextlib import contextmanager
from contextvars import ContextVar
from typing import Any

import mlx.core as mx

from ....whisper import host_math

_tracing: ContextVar[bool] = ContextVar("portable_tracing", default=False)

# The ops (MIL names, and the fused attention of fuse.py) that have a host path.
HOST_OPS = frozenset({"softmax", "gelu", "portable.multi_head_attention"})


@contextmanager
def tracing() -> Iterator[None]:
    """Mark an `mx.compile`d call: ops inside take the plain MLX route."""
    token = _tracing.set(True)
    try:
        yield
    finally:
        _tracing.reset(token)


def applies(dtype: mx.Dtype) -> bool:
    """True when an op computing in `dtype` should use host math now."""
    return not _tracing.get() and host_math.available(dtype)


def handles(op_name: str, host_params: Mapping[str, Any]) -> bool:
    """Whether a node of this op (with these constant parameters) has a host path."""
    if op_name == "gelu":
        return str(host_params.get("mode", "EXACT")) == "EXACT"
    return op_name in HOST_OPS


def wanted(nodes: Iterable[Any], device: mx.Device) -> bool:
    """Whether a program of these nodes (nested blocks included) would use host math on `device`;
    such a program is run eagerly, as a compiled one would leave host math out."""
    with mx.stream(device):
        if not applies(mx.float32):  # every float program computes in float32 on the CPU
            return False
    for node in nodes:
        if handles(node.op.name, node.host_params):
            return True
        if any(wanted(block.nodes, device) for block in node.ctx.blocks):
            return True
    return False


def own_copy(x: mx.array, dtype: mx.Dtype) -> mx.array:
    """x as `dtype` in a row-major buffer of its own (host math may overwrite it)."""
    copy = x.astype(dtype) if x.dtype != dtype else x * 1  # astype to the same dtype would share x's buffer
    return mx.contiguous(copy)  # a further copy only when x was a transposed view


def softmax_last_axis(x: mx.array, dtype: mx.Dtype) -> mx.array:
    """Softmax over the last axis, computed in `dtype` on the host."""
    return host_math.softmax_(own_copy(x, dtype))


def gelu_exact(x: mx.array, dtype: mx.Dtype) -> mx.array:
    """Exact (erf) GELU, computed in `dtype` on the host."""
    return host_math.gelu_(own_copy(x, dtype))


def attention(q: mx.array, k: mx.array, v: mx.array, scale: float) -> mx.array:
    """softmax(scale q k^T) v over heads (B, H, S, Dh) each, merged to (B, Sq, H * Dh).

    Laid out as host_math wants (row-major q, k^T and v per head), q scaled rather than the
    scores (1/Sk of the work). host_math only overwrites the score blocks it makes itself.
    """
    if scale != 1.0:
        q = q * scale
    k_t = k.swapaxes(-1, -2)  # (B, H, Dh, Sk)
    return host_math.attention(mx.contiguous(q), mx.contiguous(k_t), mx.contiguous(v))
