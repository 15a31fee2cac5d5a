"""oneDNN's element-wise primitives for the CPU host path: exact (erf) GELU and row softmax, in place.

Why: numpy has no erf, so `host_math.gelu_np_` evaluates a polynomial in ~20 array passes; on
tiny.en's (1500 x 1536) MLP blocks that was ~30 ms per layer on one core here, and its chunked
softmax ~16 ms per layer. oneDNN generates vectorized kernels for both (its gelu_erf is exact to
float32 rounding). Primitive API through ctypes: one CPU engine, a stream per thread, one
primitive per (operation, shape), memory objects wrapping the caller's numpy buffer (no copy).

The numeric constants are oneDNN 3.x's enum values (dnnl_types.h / dnnl_common_types.h).
"""

from __future__ import annotations

import ctypes
import threading
from functools import lru_cache
from typing import Any

import numpy as np

from . import onednn

_CPU_ENGINE, _IN_ORDER_STREAM = 1, 1  # dnnl_cpu, dnnl_stream_in_order
_F32, _TAG_AB = 3, 3  # dnnl_f32, dnnl_ab (plain row-major 2-D)
_FORWARD_INFERENCE = 96
_GELU_ERF, _SOFTMAX_ACCURATE = 49, 0x30000
_ARG_SRC, _ARG_DST = 1, 17
_MAX_PRIMITIVES = 128  # shapes seen; beyond this a primitive is made and dropped per call
_handle = ctypes.c_void_p


class _ExecArg(ctypes.Structure):
    _fields_ = [("arg", ctypes.c_int), ("memory", _handle)]


@lru_cache(maxsize=1)
def _engine() -> Any:
    library = onednn._library()
    engine = _handle()
    onednn._check("dnnl_engine_create", library.dnnl_engine_create(ctypes.byref(engine), _CPU_ENGINE, 0))
    return engine


class _Streams(threading.local):
    stream: Any = None


_streams = _Streams()
_primitives: dict[tuple[str, int, int], tuple[Any, Any]] = {}
_lock = threading.Lock()


def _stream() -> Any:
    if _streams.stream is None:
        _streams.stream = new_stream()
    return _streams.stream


def new_stream() -> Any:
    """A fresh in-order CPU stream (a handle; never destroyed: a few per thread and product).
    Threads must not share one: executing on one stream from two threads at once slowed every
    call down (a team's helper on its caller's stream: the logits product 1.8 against 1.0 ms)."""
    stream = _handle()
    onednn._check(
        "dnnl_stream_create", onednn._library().dnnl_stream_create(ctypes.byref(stream), _engine(), _IN_ORDER_STREAM)
    )
    return stream


def _make(kind: str, rows: int, cols: int) -> tuple[Any, Any]:
    """(primitive, memory descriptor) for `kind` on a (rows, cols) float32 block."""
    library = onednn._library()
    desc, primitive_desc, primitive = _handle(), _handle(), _handle()
    dims = (ctypes.c_int64 * 2)(rows, cols)
    onednn._check(
        "dnnl_memory_desc_create_with_tag",
        library.dnnl_memory_desc_create_with_tag(ctypes.byref(desc), 2, dims, _F32, _TAG_AB),
    )
    if kind == "gelu":
        status = library.dnnl_eltwise_forward_primitive_desc_create(
            ctypes.byref(primitive_desc), _engine(), _FORWARD_INFERENCE, _GELU_ERF, desc, desc,
            ctypes.c_float(0.0), ctypes.c_float(0.0), None,
        )  # fmt: skip
    else:
        status = library.dnnl_softmax_forward_primitive_desc_create(
            ctypes.byref(primitive_desc), _engine(), _FORWARD_INFERENCE, _SOFTMAX_ACCURATE, desc, desc, 1, None
        )
    onednn._check(f"{kind} primitive descriptor", status)
    try:
        onednn._check("dnnl_primitive_create", library.dnnl_primitive_create(ctypes.byref(primitive), primitive_desc))
    finally:
        library.dnnl_primitive_desc_destroy(primitive_desc)
    return primitive, desc


def _primitive(kind: str, rows: int, cols: int) -> tuple[Any, Any, bool]:
    """A cached primitive for the shape, or a fresh one the caller destroys (third item True)."""
    key = (kind, rows, cols)
    with _lock:
        found = _primitives.get(key)
        if found is not None:
            return (*found, False)
        made = _make(kind, rows, cols)
        if len(_primitives) < _MAX_PRIMITIVES:
            _primitives[key] = made
            return (*made, False)
    return (*made, True)


def _run(kind: str, block: np.ndarray) -> np.ndarray:
    if block.ndim != 2 or block.dtype != np.float32 or not block.flags.c_contiguous:
        raise ValueError(f"need a C-contiguous 2-D float32 block, got {block.dtype} {block.shape}")
    library = onednn._library()
    onednn.use_one_thread_here()
    primitive, desc, temporary = _primitive(kind, *block.shape)
    memory = _handle()
    onednn._check(
        "dnnl_memory_create",
        library.dnnl_memory_create(ctypes.byref(memory), desc, _engine(), _handle(block.ctypes.data)),
    )
    try:
        args = (_ExecArg * 2)(_ExecArg(_ARG_SRC, memory), _ExecArg(_ARG_DST, memory))  # in place
        onednn._check(f"{kind} execute", library.dnnl_primitive_execute(primitive, _stream(), 2, args))
        onednn._check("dnnl_stream_wait", library.dnnl_stream_wait(_stream()))
    finally:
        library.dnnl_memory_destroy(memory)
        if temporary:
            library.dnnl_primitive_destroy(primitive)
            library.dnnl_memory_desc_destroy(desc)
    return block


def gelu_(block: np.ndarray) -> np.ndarray:
    """Exact (erf) GELU of a C-contiguous 2-D float32 array, in place; returns it."""
    return _run("gelu", block)


def softmax_(block: np.ndarray) -> np.ndarray:
    """Softmax of each row of a C-contiguous 2-D float32 array, in place; returns it."""
    return _run("softmax", block)
