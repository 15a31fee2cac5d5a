"""Our own C kernels for the CPU host path (`cpu_kernels/`, built into `_native/libmacb_cpu`), through ctypes.

Kernels: `attend_rows` (cross-attention of a few query rows), `attend_cache` (a decoder step's
self-attention against its cached keys and values), `layer_norm_rows` and `gelu_` (a
decoder step's row-wise operations, where numpy's or oneDNN's call overhead is most of the cost),
`log_normalizers` (a decoding step's logsumexp per row), `RowProductCall` (a few rows' int8
product through a prepared oneDNN primitive in one call, bit for bit what the numpy route gives;
or a float32 product through one).

Why C of our own: beam search's cross-attention reads each head's audio keys and values for five
query rows; numpy hands every head to OpenBLAS, whose sgemm repacks the (64 x 1500) operand for
five rows, so five rows cost 4-5x one row for the same memory (see attend_rows.c). The kernel is
built at install time when a C compiler is found (CMakeLists.txt); without it `available()` is
False and callers keep their numpy route. Set MLX_AUDIO_COREML_CPU_KERNELS=none to turn it off,
or to a library path.
"""

from __future__ import annotations

import ctypes
import sys
import threading
from functools import lru_cache
from pathlib import Path
from typing import Any

import numpy as np

from .. import config
from ..errors import CPUKernelFailed

ABI_VERSION = 12  # MACB_CPU_ABI_VERSION in cpu_kernels/include/macb_cpu.h
MAX_HEAD_DIM = 256
GROUP_ROWS = 4  # scratch of this many rows lets rows that share audio go four at a time
_LIBRARY_NAME = "libmacb_cpu.dylib" if sys.platform == "darwin" else "libmacb_cpu.so"
_STATUSES = "1: bad argument, 3: unsupported on this CPU"  # macb_cpu.h's statuses (the int8 product: 100 + oneDNN's)
_ptr, _i64 = ctypes.c_void_p, ctypes.c_int64


class _AttendArgs(ctypes.Structure):
    """macb_cpu_attend_args, field for field."""

    _fields_ = [
        ("size", _i64), ("q", _ptr), ("keys_t", _ptr), ("values", _ptr), ("out", _ptr), ("scratch", _ptr),
        ("rows", _i64), ("heads", _i64), ("head_dim", _i64), ("frames", _i64),
        ("q_row_stride", _i64), ("out_row_stride", _i64), ("audio_row_stride", _i64), ("scratch_floats", _i64),
        ("audio_half", _i64),
    ]  # fmt: skip


class _AttendCacheArgs(ctypes.Structure):
    """macb_cpu_attend_cache_args, field for field."""

    _fields_ = [
        ("size", _i64), ("q", _ptr), ("keys", _ptr), ("values", _ptr), ("out", _ptr), ("scratch", _ptr),
        ("rows", _i64), ("heads", _i64), ("head_dim", _i64), ("length", _i64),
        ("q_row_stride", _i64), ("out_row_stride", _i64), ("keys_row_stride", _i64), ("keys_head_stride", _i64),
        ("values_row_stride", _i64), ("values_head_stride", _i64), ("scratch_floats", _i64),
    ]  # fmt: skip


class _RowProductArgs(ctypes.Structure):
    """macb_cpu_row_product_args, field for field."""

    _fields_ = [
        ("size", _i64), ("row", _ptr), ("rows", _i64), ("width", _i64), ("row_stride", _i64), ("out_width", _i64),
        ("quantized", _ptr), ("scale_slot", _ptr), ("out", _ptr), ("bias", _ptr),
        ("tiny", ctypes.c_float), ("limit", ctypes.c_float), ("shift", ctypes.c_float), ("arg_count", ctypes.c_int32),
        ("set_handle", _ptr), ("execute", _ptr), ("wait", _ptr),
        ("primitive", _ptr), ("stream", _ptr), ("dst_memory", _ptr), ("args", _ptr), ("float_input", ctypes.c_int32),
    ]  # fmt: skip


MAX_PRODUCT_ROWS = 64  # MACB_CPU_MAX_PRODUCT_ROWS


def library_path() -> Path:
    """$MLX_AUDIO_COREML_CPU_KERNELS when it names a file, else the library built into the package."""
    wanted = config.setting(config.CPU_KERNELS)
    return (
        Path(wanted)
        if wanted and wanted.lower() != "none"
        else Path(__file__).parent.parent / "_native" / _LIBRARY_NAME
    )


@lru_cache(maxsize=1)
def _library() -> Any:
    """The loaded library with its signatures declared, or None (not built, turned off, wrong ABI)."""
    if config.setting(config.CPU_KERNELS).lower() == "none":
        return None
    path = library_path()
    if not path.exists():
        return None
    try:
        library = ctypes.CDLL(str(path))
    except OSError:
        return None
    library.macb_cpu_abi_version.restype = ctypes.c_int32
    if library.macb_cpu_abi_version() != ABI_VERSION:
        return None
    library.macb_cpu_attend_rows.argtypes = [ctypes.POINTER(_AttendArgs)]
    library.macb_cpu_layer_norm_rows.argtypes = [_ptr, _i64, _ptr, _i64, _i64, _i64, _ptr, _ptr, ctypes.c_float]
    library.macb_cpu_gelu.argtypes = [_ptr, _i64]
    library.macb_cpu_row_product.argtypes = [ctypes.POINTER(_RowProductArgs)]
    library.macb_cpu_attend_cache.argtypes = [ctypes.POINTER(_AttendCacheArgs)]
    library.macb_cpu_log_normalizers.argtypes = [_ptr, _i64, _i64, _i64, _ptr, _ptr]
    library.macb_cpu_top_logprobs.argtypes = [_ptr, _i64, _i64, _i64, _i64, _ptr, _ptr, _ptr]
    library.macb_cpu_to_bf16.argtypes = [_ptr, _i64, _ptr, _i64, _i64, _i64]
    for function in (
        library.macb_cpu_attend_rows, library.macb_cpu_layer_norm_rows, library.macb_cpu_gelu,
        library.macb_cpu_row_product, library.macb_cpu_attend_cache, library.macb_cpu_log_normalizers,
        library.macb_cpu_top_logprobs, library.macb_cpu_to_bf16,
    ):  # fmt: skip
        function.restype = ctypes.c_int32
    return library


def library() -> Any:
    """The loaded library (ctypes), or None: for modules declaring the signatures of their own entry points."""
    return _library()


def available() -> bool:
    """True when the kernels are built, loadable and of this ABI (and not turned off)."""
    return _library() is not None


_scratch = threading.local()  # each thread's scratch for the scores, grown as needed


def _scratch_for(floats: int) -> np.ndarray:
    held: np.ndarray | None = getattr(_scratch, "block", None)
    if held is None or held.size < floats:
        held = np.empty(floats, np.float32)
        _scratch.block = held
    return held


def address(array: np.ndarray) -> int:
    """Where an array's data starts: through ctypes' buffer view (~1 us) when the array is a
    writable contiguous buffer, else `.ctypes.data` (~2-3 us; a decoder step makes ~40 of these)."""
    try:
        return ctypes.addressof(ctypes.c_char.from_buffer(array))  # pyright: ignore[reportArgumentType]
    except (TypeError, ValueError, BufferError):
        return array.ctypes.data


def _rows_of(array: np.ndarray, name: str, width: int) -> int:
    """The row stride, in floats, of a float32 (B, width) array whose rows are each contiguous."""
    if array.dtype != np.float32 or array.ndim != 2 or array.shape[1] != width or array.strides[1] != 4:
        raise ValueError(
            f"{name}: expected float32 (rows, {width}) with contiguous rows, got {array.dtype} {array.shape}"
        )
    return array.strides[0] // 4


def attend_rows(q: np.ndarray, keys_t: np.ndarray, values: np.ndarray, out: np.ndarray) -> np.ndarray:
    """out[b, h] = softmax(q[b, h] keys_t[b, h]) values[b, h] for every row b and head h; returns `out`.

    q and out (B, H * Dh) float32 (queries already scaled); keys_t (A, H, Dh, S) and values (A, H, S, Dh)
    C-contiguous float32 (or both float16, Dh 64: half_audio.py), A == 1 (every row reads the same audio:
    beams of one window) or A == B. Results agree with numpy's to float32 rounding, not bit for bit."""
    library = _library_or_raise()
    audio, heads, head_dim, frames = keys_t.shape
    rows = q.shape[0]
    if values.shape != (audio, heads, frames, head_dim) or audio not in (1, rows) or head_dim > MAX_HEAD_DIM:
        raise ValueError(f"attention shapes do not chain: q {q.shape}, keys_t {keys_t.shape}, values {values.shape}")
    half = keys_t.dtype == np.float16 and head_dim == 64
    for name, block in (("keys_t", keys_t), ("values", values)):
        if block.dtype != (np.float16 if half else np.float32) or not block.flags.c_contiguous:
            raise ValueError(f"{name}: expected C-contiguous float32 (or float16, Dh 64), got {block.dtype}")
    q_stride, out_stride = _rows_of(q, "q", heads * head_dim), _rows_of(out, "out", heads * head_dim)
    if out.shape[0] != rows:
        raise ValueError(f"out has {out.shape[0]} rows for {rows} queries")
    scratch = _scratch_for(GROUP_ROWS * frames)
    args = _AttendArgs(
        ctypes.sizeof(_AttendArgs), address(q), address(keys_t), address(values), address(out),
        address(scratch), rows, heads, head_dim, frames, q_stride, out_stride,
        0 if audio == 1 else heads * head_dim * frames, scratch.size, int(half),
    )  # fmt: skip
    checked(library.macb_cpu_attend_rows(ctypes.byref(args)), "macb_cpu_attend_rows")
    return out


def _cache_strides(block: np.ndarray, name: str, shape: tuple[int, ...]) -> tuple[int, int]:
    """(row, head) strides in floats of a float32 (B, H, T, Dh) view whose token rows are plain."""
    batch, heads, _, head_dim = block.strides
    if block.dtype != np.float32 or block.shape != shape or head_dim != 4 or batch % 4 or heads % 4:
        raise ValueError(f"{name}: expected float32 {shape} with plain token rows, got {block.dtype} {block.shape}")
    if block.strides[2] != 4 * shape[3]:
        raise ValueError(f"{name}: token rows are not {shape[3]} floats apart")
    return batch // 4, heads // 4


def attend_cache(q: np.ndarray, keys: np.ndarray, values: np.ndarray, out: np.ndarray) -> np.ndarray:
    """out[b, h] = softmax(q[b, h] keys[b, h]^T) values[b, h]; returns `out`.

    q and out (B, H * Dh) float32 with contiguous rows (queries already scaled); keys and values
    (B, H, T, Dh) float32 views whose token rows are plain (host_cache.HostKV's `view()`).
    Agrees with numpy's matmul-softmax-matmul to float32 rounding. Needs `available()`."""
    library = _library_or_raise()
    batch, heads, length, head_dim = keys.shape
    width = heads * head_dim
    keys_strides = _cache_strides(keys, "keys", (q.shape[0], heads, length, head_dim))
    values_strides = _cache_strides(values, "values", keys.shape)
    if out.shape != (batch, width) or length < 1 or head_dim > MAX_HEAD_DIM:
        raise ValueError(f"attention shapes do not chain: q {q.shape}, keys {keys.shape}, out {out.shape}")
    scratch = _scratch_for(length)
    args = _AttendCacheArgs(
        ctypes.sizeof(_AttendCacheArgs), address(q), keys.ctypes.data, values.ctypes.data, address(out),
        address(scratch), batch, heads, head_dim, length, _rows_of(q, "q", width), _rows_of(out, "out", width),
        *keys_strides, *values_strides, scratch.size,
    )  # fmt: skip
    checked(library.macb_cpu_attend_cache(ctypes.byref(args)), "macb_cpu_attend_cache")
    return out


def log_normalizers(logits: np.ndarray, maxima: np.ndarray) -> np.ndarray:
    """logsumexp of each row of float32 logits (B, V) (rows contiguous) as float64 (B,), given each
    row's maximum (B,): host_math.log_normalizers' scheme (float32 exponentials, float64 sum)."""
    library = _library_or_raise()
    stride = _rows_of(logits, "logits", logits.shape[1] if logits.ndim == 2 else -1)
    tops = np.ascontiguousarray(maxima, np.float32).reshape(-1)
    if tops.shape != (logits.shape[0],):
        raise ValueError(f"maxima: expected ({logits.shape[0]},), got {np.shape(maxima)}")
    out = np.empty(logits.shape[0], np.float64)
    status = library.macb_cpu_log_normalizers(
        address(logits), logits.shape[0], logits.shape[1], stride, tops.ctypes.data, address(out)
    )
    checked(status, "macb_cpu_log_normalizers")
    return out


MAX_TOP = 64  # MACB_CPU_MAX_TOP
_HAS_NAN = 2  # MACB_CPU_HAS_NAN


def top_logprobs(logits: np.ndarray, k: int) -> tuple[np.ndarray, np.ndarray, np.ndarray] | None:
    """Each row's k largest float32 logits (B, V) (rows contiguous), largest first and equal values
    in id order, as (ids (B, k) int64, values (B, k) float32, logsumexp (B,) float64): what
    top_tokens.top_k and `log_normalizers` with each row's largest give, in one C call. None when a
    row holds NaN (the caller's numpy route orders those) or k is outside 1..min(V, MAX_TOP)."""
    library = _library_or_raise()
    rows, width = logits.shape if logits.ndim == 2 else (0, -1)
    stride = _rows_of(logits, "logits", width)
    if not 1 <= k <= min(width, MAX_TOP) or rows < 1:
        return None
    ids, values = np.empty((rows, k), np.int64), np.empty((rows, k), np.float32)
    normalizers = np.empty(rows, np.float64)
    status = library.macb_cpu_top_logprobs(
        address(logits), rows, width, stride, k, ids.ctypes.data, values.ctypes.data, normalizers.ctypes.data
    )
    if status == _HAS_NAN:
        return None
    checked(status, "macb_cpu_top_logprobs")
    return ids, values, normalizers


def checked(status: int, function: str) -> None:
    if status != 0:
        raise CPUKernelFailed(function, status, _STATUSES)


def _library_or_raise() -> Any:
    library = _library()
    if library is None:
        raise RuntimeError("the CPU kernels are not available (see native_kernels.available())")
    return library


_vectors: dict[int, tuple[np.ndarray, int]] = {}  # id -> (the array, kept alive; its address)


def vector_address(vector: np.ndarray, width: int, name: str) -> int:
    """The address of a layer's (width,) float32 parameter, checked and remembered: `.ctypes.data`
    costs ~1-2 us, and a step passes 26 of these."""
    known = _vectors.get(id(vector))
    if known is not None and known[0] is vector:
        return known[1]
    if vector.dtype != np.float32 or vector.shape != (width,) or not vector.flags.c_contiguous:
        raise ValueError(f"{name}: expected contiguous float32 ({width},), got {vector.dtype} {vector.shape}")
    if len(_vectors) > 4096:  # models come and go: forget, rather than keep every one alive
        _vectors.clear()
    _vectors[id(vector)] = (vector, vector.ctypes.data)
    return _vectors[id(vector)][1]


def layer_norm_rows(x: np.ndarray, weight: np.ndarray, bias: np.ndarray, eps: float) -> np.ndarray:
    """Layer norm of each row of a float32 (rows, D) block (rows contiguous), into a new array.

    Same formula as host_math.layer_norm's numpy route; agrees with it to float32 rounding."""
    library = _library_or_raise()
    width = x.shape[1] if x.ndim == 2 else -1
    stride = _rows_of(x, "x", width)
    weights, biases = vector_address(weight, width, "weight"), vector_address(bias, width, "bias")
    out = np.empty(x.shape, np.float32)
    if x.shape[0]:
        status = library.macb_cpu_layer_norm_rows(
            address(x), stride, address(out), width, x.shape[0], width, weights, biases, eps
        )
        checked(status, "macb_cpu_layer_norm_rows")
    return out


def gelu_(block: np.ndarray) -> np.ndarray:
    """Exact (erf) GELU of a C-contiguous float32 array, in place; returns it."""
    library = _library_or_raise()
    if block.dtype != np.float32 or not block.flags.c_contiguous or not block.flags.writeable:
        raise ValueError(f"gelu_: expected a writable C-contiguous float32 array, got {block.dtype}")
    checked(library.macb_cpu_gelu(address(block), block.size), "macb_cpu_gelu")
    return block


def to_bf16(block: np.ndarray, out: np.ndarray) -> np.ndarray:
    """bfloat16 bits (uint16, round to nearest even) of a 2-D float32 block whose rows are each
    contiguous, into `out` (uint16, same shape, rows contiguous); returns `out`."""
    library = _library_or_raise()
    rows, cols = block.shape
    source_stride = _rows_of(block, "to_bf16 source", cols)
    if out.dtype != np.uint16 or out.shape != block.shape or out.strides[1] != 2 or not out.flags.writeable:
        raise ValueError(f"to_bf16: expected a writable uint16 {block.shape} with contiguous rows, got {out.dtype}")
    if rows:
        status = library.macb_cpu_to_bf16(
            block.ctypes.data, source_stride, out.ctypes.data, out.strides[0] // 2, rows, cols
        )
        checked(status, "macb_cpu_to_bf16")
    return out


def _function_address(function: Any) -> int:
    """A ctypes function's address, for the C side to call it."""
    return ctypes.cast(function, _ptr).value or 0


class RowProductCall:
    """A few rows' product through a prepared oneDNN primitive, run in one C call.

    `onednn` names oneDNN's dnnl_memory_set_data_handle, dnnl_primitive_execute and
    dnnl_stream_wait (ctypes functions of the loaded library); the handles and buffers are one
    thread's (onednn_rows' `_Bound`): `quantized` is the primitive's (rows, K) source buffer and
    `scale_slot` its float32 source scale.
    - int8 (a uint8 source): the rows are quantized in C. One row: the primitive applies the row's
      scale and the bias; several: the call applies them after (`bias` is the layer's, or None).
      Operation for operation host_linear's numpy route, so the results are the same bits.
    - float32 (a float32 source): the rows are copied in; the primitive adds the bias."""

    def __init__(
        self, onednn: Any, handles: dict[str, Any], quantized: np.ndarray, scale_slot: np.ndarray, out_width: int,
        bias: np.ndarray | None,
    ) -> None:  # fmt: skip
        self._library = _library_or_raise()
        rows, width = quantized.shape
        if not 1 <= rows <= MAX_PRODUCT_ROWS:
            raise ValueError(f"{rows} rows: the one-call product takes 1 to {MAX_PRODUCT_ROWS}")
        self._keep = (quantized, scale_slot, bias)  # kept alive: the C side holds their addresses
        self._args = _RowProductArgs(
            ctypes.sizeof(_RowProductArgs), None, rows, width, width, out_width, quantized.ctypes.data,
            scale_slot.ctypes.data, None, None if bias is None else vector_address(bias, out_width, "bias"),
            handles["tiny"], handles["limit"], handles["shift"], handles["arg_count"],
            _function_address(onednn.dnnl_memory_set_data_handle), _function_address(onednn.dnnl_primitive_execute),
            _function_address(onednn.dnnl_stream_wait),
            handles["primitive"], handles["stream"], handles["dst_memory"], ctypes.cast(handles["args"], _ptr).value,
            int(quantized.dtype == np.float32),
        )  # fmt: skip
        self._pointer = ctypes.byref(self._args)
        self.rows, self.in_width, self.out_width = rows, width, out_width
        self.address = ctypes.addressof(self._args)  # macb_cpu_decoder_block fills in its row and out fields

    def use_stream(self, stream: Any) -> None:
        """Run on this oneDNN stream (a handle kept alive here) instead of the binding thread's."""
        self._stream = stream
        self._args.stream = stream.value

    def __call__(self, rows: np.ndarray, out: np.ndarray) -> None:
        """rows (R, K) float32, each row contiguous, R the rows this call was made for; out (R, N)
        float32, C-contiguous."""
        args = self._args
        args.row, args.out = address(rows), address(out)
        args.row_stride = rows.strides[0] // 4
        checked(self._library.macb_cpu_row_product(self._pointer), "macb_cpu_row_product")


def row_product_call(
    product: Any, bound: Any, quantization: tuple[float, float, float], bias: np.ndarray | None
) -> RowProductCall | None:
    """A `RowProductCall` for an `onednn_rows.RowProduct` (int8 or float32) of up to MAX_PRODUCT_ROWS
    rows and one thread's `bound` memories, or None (kernels not built, a sums-only product, too
    many rows). `quantization`: (tiny, limit, shift) as host_linear quantizes; `bias`: an int8
    layer's, for several rows (the primitive adds it to one row itself, and to a float32 product's)."""
    if not (available() and not product.sums_only and product.rows <= MAX_PRODUCT_ROWS):
        return None
    bias = bias if product.int8 else None
    tiny, limit, shift = quantization
    handles = {
        "tiny": tiny, "limit": limit, "shift": shift, "arg_count": bound.count, "primitive": product.primitive.value,
        "stream": bound.stream.value, "dst_memory": bound.dst.value, "args": bound.args,
    }  # fmt: skip
    return RowProductCall(product._library, handles, bound.quantized, bound.scale, product.out_features, bias)
