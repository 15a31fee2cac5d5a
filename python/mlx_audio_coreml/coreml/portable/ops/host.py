"""When the portable ops hand softmax, exact GELU and attention to cpu/host_math.py (numpy on
MLX's own buffers), as the product's MLX encoder does on the CPU in float32; and, for float32
values with oneDNN installed, attention to cpu/attention.py, the product encoder's own
per-head oneDNN kernels (matrix products by constant weights: host_products.py).

Why: MLX's CPU exp and erf run one element at a time here, so a Whisper encoder spends most of
its time in softmax and GELU; numpy's are vectorized (host_math.py has the measurements).
When: `applies(dtype)`: host_math says so for the dtype the op computes in (float32 on the CPU,
which is also where float16 programs compute), and no `mx.compile` trace is being recorded —
host math evaluates as it goes, which a trace cannot do. A program that would use it on its
device is therefore run eagerly (runtime.py); `tracing()` marks a compiled call, so a trace that
happens anyway (host math switched on after load) gets the plain MLX ops.
Safety: host_math overwrites its argument; the ops only ever hand it an array they just made (a
copy, or the fresh output of their own product), never a value of the program that another op
(or the caller) may read.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Iterator
from contextlib import contextmanager
from contextvars import ContextVar
from typing import Any

import mlx.core as mx
import numpy as np

from ....cpu import attention as host_attention
from ....cpu import host_math, onednn

_tracing: ContextVar[bool] = ContextVar("portable_tracing", default=False)

# The ops (MIL names, the fused attention of fuse.py, the product + GELU of fuse_gelu.py) with a host path.
HOST_OPS = frozenset(
    {
        "softmax",
        "gelu",
        "portable.multi_head_attention",
        "portable.product_gelu",
        "portable.snake",
        "portable.masked_norm",
    }
)
# Convolutions with one spatial axis (host_conv.py: cpu/conv1d.py's kernels).
CONV_OPS = frozenset({"conv", "conv_transpose", "portable.conv_to_channels_last", "portable.conv_add"})


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


def onednn_applies(dtype: mx.Dtype) -> bool:
    """True when an op on `dtype` values should use the oneDNN kernels now: float32 values (a
    float16 program keeps its own path), host math applying, oneDNN installed."""
    return dtype == mx.float32 and applies(dtype) and onednn.available()


def handles(node: Any) -> bool:
    """Whether a program node has a host path: by op name, constant parameters (gelu's mode),
    for scaled_dot_product_attention no mask and float32 values (the oneDNN route), for a
    convolution one spatial axis and oneDNN present."""
    name, host_params = node.op.name, node.host_params
    if name == "gelu":
        return str(host_params.get("mode", "EXACT")) == "EXACT"
    if name == "scaled_dot_product_attention":
        declared = node.ctx.output_types[0] if node.ctx.output_types else None
        float32 = declared is not None and not declared.is_string and declared.dtype == np.float32
        return "attn_mask" not in node.params and float32 and onednn.available()
    if name in CONV_OPS:
        declared = node.ctx.output_types[0] if node.ctx.output_types else None
        one_axis = declared is not None and declared.shape is not None and len(declared.shape) == 3
        return one_axis and onednn.available()
    return name in HOST_OPS


def wanted(nodes: Iterable[Any], device: mx.Device | mx.DeviceType) -> bool:
    """Whether a program of these nodes (nested blocks included) would use host math on `device`;
    such a program is run eagerly, as a compiled one would leave host math out."""
    with mx.stream(device):
        if not applies(mx.float32):  # every float program computes in float32 on the CPU
            return False
    for node in nodes:
        if handles(node):
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


def filled(shape: tuple[int, ...], fill: Callable[[np.ndarray], Any], start: mx.array | None = None) -> mx.array:
    """A new float32 MLX array of `shape` that `fill` writes through a numpy view of its memory: zeros
    until then (a fill may leave rows it knows to be zero), or a copy of `start` (float32, `shape`'s
    size) for a fill that adds to it.

    Why: a result made in numpy would cost one more buffer and one more pass to copy into MLX
    (mx.array always copies); `start` is copied by MLX as the array is made, where zeros and then a
    copy in numpy would write the memory twice. The array is fresh, so nothing else can read it while
    it is filled; should MLX not expose it as one writable block, `fill` gets a numpy array to copy
    instead."""
    array = mx.zeros(shape, mx.float32) if start is None else (start * 1).reshape(shape)  # times one: exact
    mx.eval(array)
    view = np.asarray(array)
    if view.flags.owndata or not view.flags.writeable or not view.flags.c_contiguous:
        scratch = np.zeros(shape, np.float32) if start is None else np.array(view, np.float32, order="C")
        fill(scratch)
        return mx.array(scratch)
    fill(view)
    return array


def _host_view(x: mx.array) -> np.ndarray:
    """An evaluated float32 MLX array as numpy, read only by the caller (a view, no copy, when possible)."""
    mx.eval(x)
    return np.asarray(x)


def _by_head(t: np.ndarray, heads: int, channels_first: bool) -> np.ndarray:
    """One batch item (D, S) or (S, D) as a (H, S, Dh) view."""
    if channels_first:
        return t.reshape(heads, -1, t.shape[-1]).transpose(0, 2, 1)  # (H, Dh, S) -> (H, S, Dh)
    return host_attention.split_heads(t, heads)


def onednn_multi_head_attention(
    query: mx.array, key: mx.array, value: mx.array, heads: int, scale: float, channels_first: bool
) -> mx.array:
    """The fused attention of fuse.py on float32 (B, D, S) or (B, S, D) inputs through
    host_attention, merged tokens-first: (B, Sq, D)."""
    q, k, v = (_host_view(t) for t in (query, key, value))
    length = q.shape[2] if channels_first else q.shape[1]
    width = v.shape[1] if channels_first else v.shape[2]

    def fill(merged: np.ndarray) -> None:  # (B, Sq, D): heads side by side
        for b in range(q.shape[0]):
            qh, kh, vh = (_by_head(t[b], heads, channels_first) for t in (q, k, v))
            host_attention.attend(qh, kh, vh, host_attention.split_heads(merged[b], heads), scale)

    return filled((q.shape[0], length, width), fill)


def onednn_attention(q: mx.array, k: mx.array, v: mx.array, scale: float) -> mx.array:
    """Unmasked softmax(scale q k^T) v on float32 (B, H, L, E) inputs through host_attention."""
    q_np, k_np, v_np = (_host_view(t) for t in (q, k, v))

    def fill(out: np.ndarray) -> None:  # (B, H, L, EV)
        for b in range(q_np.shape[0]):
            host_attention.attend(q_np[b], k_np[b], v_np[b], out[b], scale)

    return filled(q_np.shape[:3] + v_np.shape[3:], fill)
