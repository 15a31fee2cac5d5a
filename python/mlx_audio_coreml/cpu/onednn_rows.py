"""int8 products of a few rows (a decoder step's) through oneDNN's 1x1 convolution primitive.

Why: `onednn.gemm_u8s8` is oneDNN's BLAS-like gemm, which on CPUs without VNNI repacks the weights
on every call; for one input row that repacking is most of the work. A 1x1 convolution over a
width of `rows` positions is the same product, and oneDNN's int8 1x1 convolution kernel
(`jit_uni_int8_1x1:avx2` here) reads weights it reordered once, at preparation, and applies the
scales and the bias itself. Measured on this AVX2 EPYC, one thread: tiny.en's logits (1 x 384) @
(384 x 51864) 1.4-1.8 ms against 3.3-3.9 ms through the gemm, a (1 x 384) @ (384 x 1536) 0.027 ms
against 0.072 ms (quantization and scaling included in both).

The arithmetic is `linear.HostLinear`'s: inputs quantized per row to -127..127 and given to oneDNN
as unsigned bytes with zero point 128, weights int8 with one scale per output channel, exact int32
sums. Only the order of the final float multiplications differs (results within ~1 float32 ulp).

Primitive API through ctypes, as `onednn_eltwise`: scratchpad memory is the caller's (user mode),
so any thread may run any prepared product; each thread keeps its own memory objects and stream.
The numeric constants are oneDNN 3.x's enum values (dnnl_types.h / dnnl_common_types.h).
"""

from __future__ import annotations

import ctypes
import itertools
import threading
from functools import lru_cache
from typing import Any

import numpy as np

from ..errors import CPUKernelFailed
from . import onednn, onednn_eltwise
from . import pool as host_pool
from .amx_policy import amx_for_few_rows
from .onednn import _check  # CPUKernelFailed(what, status) for a failed call

_S32, _S8, _U8, _F32 = 4, 5, 6, 3  # dnnl_data_type_t
_TAG_ANY = 1  # dnnl_format_tag_any: the primitive picks its weights layout
_FORWARD_INFERENCE, _CONVOLUTION_DIRECT = 96, 1
_QUERY_IMPL_INFO, _QUERY_WEIGHTS_MD, _QUERY_SCRATCHPAD_MD = 8, 131, 136
_SCRATCHPAD_USER = 1
_ARG_SRC, _ARG_DST, _ARG_WEIGHTS, _ARG_BIAS, _ARG_SCRATCHPAD = 1, 17, 33, 41, 80
_ARG_SCALES, _ARG_ZERO_POINTS = 4096, 8192  # | the argument they apply to
_ZERO_POINT = 128  # inputs are quantized to -127..127 and passed as q + 128
_handle = ctypes.c_void_p
_Dims = ctypes.c_int64 * 12
_UNIMPLEMENTED = 3  # dnnl_unimplemented: the status given where this oneDNN or CPU has no such product
_AMX_TILE_ROWS = 16  # an AMX tile multiply takes 16 rows: below that, `amx_policy` decides


@lru_cache(maxsize=1)
def _declared() -> Any:
    """The library with the primitive functions used here declared; CPUKernelFailed without them."""
    library = onednn._library()
    if library is None:
        raise CPUKernelFailed("oneDNN (not installed)", _UNIMPLEMENTED)
    pointer, dims = ctypes.POINTER(_handle), ctypes.POINTER(ctypes.c_int64)
    signatures = {
        "dnnl_memory_desc_create_with_strides": [pointer, ctypes.c_int, dims, ctypes.c_int, dims],
        "dnnl_primitive_attr_create": [pointer],
        "dnnl_primitive_attr_destroy": [_handle],
        "dnnl_primitive_attr_set_scales_mask": [_handle, ctypes.c_int, ctypes.c_int],
        "dnnl_primitive_attr_set_zero_points_mask": [_handle, ctypes.c_int, ctypes.c_int],
        "dnnl_primitive_attr_set_scratchpad_mode": [_handle, ctypes.c_int],
        "dnnl_convolution_forward_primitive_desc_create": [
            pointer, _handle, ctypes.c_int, ctypes.c_int, _handle, _handle, _handle, _handle,
            dims, dims, dims, dims, _handle,
        ],
        "dnnl_primitive_desc_query": [_handle, ctypes.c_int, ctypes.c_int, _handle],
        "dnnl_reorder_primitive_desc_create": [pointer, _handle, _handle, _handle, _handle, _handle],
        "dnnl_memory_set_data_handle": [_handle, _handle],
        "dnnl_memory_desc_clone": [pointer, _handle],
        "dnnl_primitive_desc_next_impl": [_handle],
    }  # fmt: skip
    try:
        for name, argtypes in signatures.items():
            function = getattr(library, name)
            function.argtypes, function.restype = argtypes, ctypes.c_int
        library.dnnl_primitive_desc_query_md.argtypes = [_handle, ctypes.c_int, ctypes.c_int]
        library.dnnl_primitive_desc_query_md.restype = _handle
        library.dnnl_memory_desc_get_size.argtypes = [_handle]
        library.dnnl_memory_desc_get_size.restype = ctypes.c_size_t
        library.dnnl_memory_desc_equal.argtypes = [_handle, _handle]
        library.dnnl_memory_desc_equal.restype = ctypes.c_int
    except AttributeError as missing:  # oneDNN 2.x: no such functions
        raise CPUKernelFailed(f"oneDNN 3.x primitives ({missing})", _UNIMPLEMENTED) from missing
    return library


def _desc(dims: list[int], dtype: int, strides: list[int] | None = None) -> Any:
    """A memory descriptor with explicit strides (any layout oneDNN picks when `strides` is None)."""
    library, desc = _declared(), _handle()
    if strides is None:
        status = library.dnnl_memory_desc_create_with_tag(ctypes.byref(desc), len(dims), _Dims(*dims), dtype, _TAG_ANY)
    else:
        status = library.dnnl_memory_desc_create_with_strides(
            ctypes.byref(desc), len(dims), _Dims(*dims), dtype, _Dims(*strides)
        )
    _check("memory descriptor", status)
    return desc


def _cloned(desc: Any) -> Any:
    copy = _handle()
    _check("dnnl_memory_desc_clone", _declared().dnnl_memory_desc_clone(ctypes.byref(copy), desc))
    return copy


def _memory(desc: Any, data: int) -> Any:
    memory = _handle()
    status = _declared().dnnl_memory_create(ctypes.byref(memory), desc, onednn_eltwise._engine(), _handle(data))
    _check("dnnl_memory_create", status)
    return memory


def _execute(primitive: Any, args: list[tuple[int, Any]]) -> None:
    onednn.use_one_thread_here()
    library, stream = _declared(), onednn_eltwise._stream()
    packed = (onednn_eltwise._ExecArg * len(args))(*(onednn_eltwise._ExecArg(a, m) for a, m in args))
    _check("dnnl_primitive_execute", library.dnnl_primitive_execute(primitive, stream, len(args), packed))
    _check("dnnl_stream_wait", library.dnnl_stream_wait(stream))


class _ThreadMemories(threading.local):
    """Per thread: each product's argument list (memory objects whose data pointers change per call)."""

    def __init__(self) -> None:
        self.by_product: dict[int, _Bound] = {}
        # one scratchpad for all of this thread's sums-only products (each runs to completion before
        # the next), not one each: many-row kernels may ask for large ones (a few per layer)
        self.shared_scratch = np.empty(0, np.uint8)

    def scratch_at(self, size: int) -> int:
        if self.shared_scratch.size < size:
            self.shared_scratch = np.empty(size, np.uint8)
        return self.shared_scratch.ctypes.data


class _Bound:
    """One thread's memory objects for one product: input (its own buffer unless the caller names
    another), output, input scale, scratchpad; and the thread's stream."""

    def __init__(self, product: RowProduct) -> None:
        onednn.use_one_thread_here()  # once per thread: OpenMP's setting is the thread's own
        self.stream = onednn_eltwise._stream()
        rows = 1 if product.sums_only else product.rows  # many-row products take the caller's buffers
        self.quantized = np.empty((rows, product.in_features), product.input_dtype)  # `input_buffer()`
        self.scaled = np.empty((rows, product.in_features), np.float32)  # the caller's quantization pass
        self.block = np.empty((rows, product.out_features), np.float32)  # `RowKernel`'s column pieces
        self.scale = np.ones(1, np.float32)  # the input's scale, written before each call
        self.scratch = np.empty(1 if product.sums_only else max(product.scratch_bytes, 1), np.uint8)
        self.scratch_at = self.scratch.ctypes.data  # sums-only: the thread's shared one, set per call
        self.src_at = self.own_at = self.quantized.ctypes.data
        self.src, self.dst = _memory(product.src_desc, self.src_at), _memory(product.dst_desc, 0)
        args = [(_ARG_SRC, self.src), (_ARG_DST, self.dst), (_ARG_WEIGHTS, product.weights_memory)]
        if product.sums_only:
            args.append((_ARG_ZERO_POINTS | _ARG_SRC, product.zero_memory))
        elif product.int8:
            args += [
                (_ARG_SCALES | _ARG_SRC, _memory(product.scalar_desc, self.scale.ctypes.data)),
                (_ARG_SCALES | _ARG_WEIGHTS, product.scales_memory), (_ARG_ZERO_POINTS | _ARG_SRC, product.zero_memory),
            ]  # fmt: skip
        self.scratch_memory = _memory(product.scratch_desc, self.scratch_at) if product.scratch_bytes else None
        if self.scratch_memory is not None:
            args.append((_ARG_SCRATCHPAD, self.scratch_memory))
        if product.bias_memory is not None:
            args.append((_ARG_BIAS, product.bias_memory))
        self.args = (onednn_eltwise._ExecArg * len(args))(*(onednn_eltwise._ExecArg(a, m) for a, m in args))
        self.count = len(args)
        self.native_call: Any = None  # linear.py's one-call route (native_kernels.RowProductCall), or False

    def own_source(self) -> None:
        """Point the primitive's source back at this binding's own buffer (a `run` with another
        buffer's address moved it): the one-call routes write their bytes there."""
        if self.src_at != self.own_at:
            _declared().dnnl_memory_set_data_handle(self.src, self.own_at)
            self.src_at = self.own_at


_bound = _ThreadMemories()
_serial = itertools.count()  # a product's key in the per-thread tables (ids of dead objects are reused)


class RowProduct:
    """out (rows, N) = scale * ((q - 128) @ weight.T) * weight_scales (+ bias) for q (rows, K) uint8.

    `weight` (N, K) int8 with |values| <= `onednn.int8_weight_limit()`, `weight_scales` (N,) float32.
    Without `weight_scales` the product is float32: out = x @ weight.T (+ bias) for x (rows, K)
    float32 and float32 weights (oneDNN's `brgconv_1x1:avx2` here: beams' 5 rows against tiny.en's
    logits 5.8 ms against 14 ms through sgemm, one thread).
    With `sums_only` (int8, for many rows) the output is the exact integer sums (q - 128) @ weight.T
    as float32 (converted in the kernel, rounded as numpy's int32 -> float32 cast rounds), unscaled,
    and `run_sums` takes the caller's buffers: the caller scales them as the gemm route does.
    Input and output are plain row-major blocks (oneDNN's 1x1 kernels take no output row stride of
    their own: a column block of a wider array falls back to its reference loop)."""

    def __init__(
        self,
        weight: np.ndarray,
        weight_scales: np.ndarray | None,
        bias: np.ndarray | None,
        rows: int,
        shared: RowProduct | None = None,
        *,
        sums_only: bool = False,
    ) -> None:
        library = self._library = _declared()
        self.key = next(_serial)
        n, k = weight.shape
        self.rows, self.in_features, self.out_features = rows, k, n
        # a 1x1 convolution over `rows` positions; activations in (position, channel) order
        self.sums_only = sums_only
        self.int8 = weight_scales is not None or sums_only
        self.input_dtype, self.weight_type = (np.uint8, _S8) if self.int8 else (np.float32, _F32)
        self.src_desc = _desc([1, k, rows], _U8 if self.int8 else _F32, [rows * k, 1, k])
        self.dst_desc = _desc([1, n, rows], _F32, [rows * n, 1, n])
        self.scalar_desc = _desc([1], _F32, [1])
        self._keep = [
            np.ascontiguousarray(np.ones(1) if weight_scales is None else weight_scales, np.float32),
            np.array([_ZERO_POINT], np.int32),
            np.ascontiguousarray(np.zeros(1) if bias is None else bias, np.float32),
        ]
        primitive_desc = self._primitive_desc(n, k, bias is not None)
        try:
            # copies: the queried descriptors belong to the primitive descriptor, destroyed below
            self.weights_desc = _cloned(library.dnnl_primitive_desc_query_md(primitive_desc, _QUERY_WEIGHTS_MD, 0))
            self.scratch_desc = _cloned(library.dnnl_primitive_desc_query_md(primitive_desc, _QUERY_SCRATCHPAD_MD, 0))
            self.scratch_bytes = int(library.dnnl_memory_desc_get_size(self.scratch_desc))
            self.implementation = _implementation(primitive_desc)
            if self.implementation.startswith("ref"):  # a reference loop: far slower than the gemm
                raise CPUKernelFailed(f"int8 1x1 convolution ({self.implementation} only)", _UNIMPLEMENTED)
            self.primitive = _handle()
            _check("dnnl_primitive_create", library.dnnl_primitive_create(ctypes.byref(self.primitive), primitive_desc))
            if shared is not None and library.dnnl_memory_desc_equal(shared.weights_desc, self.weights_desc):
                self._weights = shared._weights  # the same layout: one copy of the weights
            else:
                self._weights = self._reordered(weight)
        finally:
            library.dnnl_primitive_desc_destroy(primitive_desc)
        self.weights_memory = _memory(self.weights_desc, self._weights.ctypes.data)
        self.scales_memory = _memory(_desc([len(self._keep[0])], _F32, [1]), self._keep[0].ctypes.data)
        self.zero_memory = _memory(_desc([1], _S32, [1]), self._keep[1].ctypes.data)
        self.bias_memory = None if bias is None else _memory(_desc([n], _F32, [1]), self._keep[2].ctypes.data)

    def _primitive_desc(self, n: int, k: int, with_bias: bool) -> Any:
        library, attr = _declared(), _handle()
        _check("dnnl_primitive_attr_create", library.dnnl_primitive_attr_create(ctypes.byref(attr)))
        try:
            if self.sums_only:
                _check("zero point", library.dnnl_primitive_attr_set_zero_points_mask(attr, _ARG_SRC, 0))
            elif self.int8:
                _check("src scale", library.dnnl_primitive_attr_set_scales_mask(attr, _ARG_SRC, 0))
                _check("weight scales", library.dnnl_primitive_attr_set_scales_mask(attr, _ARG_WEIGHTS, 1))
                _check("zero point", library.dnnl_primitive_attr_set_zero_points_mask(attr, _ARG_SRC, 0))
            _check("scratchpad", library.dnnl_primitive_attr_set_scratchpad_mode(attr, _SCRATCHPAD_USER))
            one, zero = (ctypes.c_int64 * 1)(1), (ctypes.c_int64 * 1)(0)
            primitive_desc = _handle()
            status = library.dnnl_convolution_forward_primitive_desc_create(
                ctypes.byref(primitive_desc), onednn_eltwise._engine(), _FORWARD_INFERENCE, _CONVOLUTION_DIRECT,
                self.src_desc, _desc([n, k, 1], self.weight_type), _desc([n], _F32, [1]) if with_bias else None,
                self.dst_desc, one, zero, zero, zero, attr,
            )  # fmt: skip
            _check("int8 1x1 convolution", status)
            if self.rows < _AMX_TILE_ROWS and not amx_for_few_rows(self.rows, n * k):
                _past_amx(primitive_desc)
            return primitive_desc
        finally:
            library.dnnl_primitive_attr_destroy(attr)

    def _reordered(self, weight: np.ndarray) -> np.ndarray:
        """The weights in the primitive's own layout (with the zero point's compensation after them)."""
        library = _declared()
        size = int(library.dnnl_memory_desc_get_size(self.weights_desc))
        out = np.zeros(size, np.uint8)
        plain = np.ascontiguousarray(weight, np.int8 if self.int8 else np.float32)
        n, k = plain.shape
        plain_desc = _desc([n, k, 1], self.weight_type, [k, 1, 1])
        engine, reorder_desc, reorder = onednn_eltwise._engine(), _handle(), _handle()
        _check(
            "weights reorder",
            library.dnnl_reorder_primitive_desc_create(
                ctypes.byref(reorder_desc), plain_desc, engine, self.weights_desc, engine, None
            ),
        )
        try:
            _check("dnnl_primitive_create", library.dnnl_primitive_create(ctypes.byref(reorder), reorder_desc))
        finally:
            library.dnnl_primitive_desc_destroy(reorder_desc)
        try:
            _execute(
                reorder,
                [
                    (_ARG_SRC, _memory(plain_desc, plain.ctypes.data)),
                    (_ARG_DST, _memory(self.weights_desc, out.ctypes.data)),
                ],
            )
        finally:
            library.dnnl_primitive_destroy(reorder)
        return out

    def bound(self) -> _Bound:
        """This thread's buffers and memory objects for this product (`run_bound` takes them)."""
        found = _bound.by_product.get(self.key)
        if found is None:
            found = _bound.by_product[self.key] = _Bound(self)
        return found

    def input_buffer(self) -> np.ndarray:
        """This thread's (rows, K) uint8 input buffer: fill it, then `run` without an address."""
        return self.bound().quantized

    def run(self, scale: float, out_at: int, quantized_at: int | None = None) -> None:
        """Multiply the input bytes (at `quantized_at`, else this thread's `input_buffer()`), writing
        the (rows, N) float32 output rows at address `out_at`; `scale` is the input's quantization
        scale. Few calls on purpose: a decoder step makes ~25 of these, of 10-30 us of arithmetic."""
        self.run_bound(self.bound(), scale, out_at, quantized_at)

    def run_sums(self, quantized_at: int, sums_at: int) -> None:
        """A `sums_only` product: the (rows, K) uint8 input at `quantized_at` into the (rows, N)
        float32 sums at `sums_at` (both plain row-major blocks of the caller's)."""
        if not self.sums_only:
            raise ValueError("run_sums is for products made with sums_only=True")
        bound = self.bound()
        if bound.scratch_memory is not None:
            shared = _bound.scratch_at(self.scratch_bytes)
            if shared != bound.scratch_at:
                self._library.dnnl_memory_set_data_handle(bound.scratch_memory, shared)
                bound.scratch_at = shared
        self.run_bound(bound, 1.0, sums_at, quantized_at)

    def run_bound(self, bound: _Bound, scale: float, out_at: int, quantized_at: int | None = None) -> None:
        """`run` with this thread's `bound()` already in hand (a decoder step's hot path)."""
        library = self._library
        source = bound.own_at if quantized_at is None else quantized_at
        if source != bound.src_at:
            library.dnnl_memory_set_data_handle(bound.src, source)
            bound.src_at = source
        library.dnnl_memory_set_data_handle(bound.dst, out_at)
        bound.scale[0] = scale
        status = library.dnnl_primitive_execute(self.primitive, bound.stream, bound.count, bound.args)
        if status != 0 or library.dnnl_stream_wait(bound.stream) != 0:
            raise CPUKernelFailed("int8 1x1 convolution (execute)", status)


def _past_amx(primitive_desc: Any) -> None:
    """Move a primitive descriptor to its first implementation without "amx" in its name (it stays
    on the last one tried when all have it)."""
    library = _declared()
    while "amx" in _implementation(primitive_desc):
        if library.dnnl_primitive_desc_next_impl(primitive_desc) != 0:  # dnnl_last_impl_reached
            break


def _implementation(primitive_desc: Any) -> str:
    info = ctypes.c_char_p()
    status = _declared().dnnl_primitive_desc_query(
        primitive_desc, _QUERY_IMPL_INFO, 0, ctypes.cast(ctypes.byref(info), _handle)
    )
    return (info.value or b"?").decode() if status == 0 else "?"


class RowKernel:
    """A weight's products for `rows` input rows: one `RowProduct` per column piece of the output
    (a large weight is split so that each worker of the host pool reads its share), run together."""

    def __init__(
        self,
        weight: np.ndarray,
        weight_scales: np.ndarray | None,
        bias: np.ndarray | None,
        rows: int,
        pieces: list[slice],
        shared: RowKernel | None = None,
    ) -> None:
        """`shared`: another kernel of the same weight and pieces, whose reordered weights are reused
        where the layouts agree (they do for every row count tried here)."""
        others = [None] * len(pieces) if shared is None else [product for _, product in shared.pieces]
        self.pieces = [
            (cols, RowProduct(weight[cols], None if weight_scales is None else weight_scales[cols],
                              None if bias is None else bias[cols], rows, other))
            for cols, other in zip(pieces, others, strict=True)
        ]  # fmt: skip
        self.single = self.pieces[0][1] if len(self.pieces) == 1 else None

    def run(self, source_at: int, scale: float, result: np.ndarray) -> None:
        """All pieces on the input rows at address `source_at`, into `result` (rows, N), C-contiguous."""
        rows, out_at = result.shape[0], result.ctypes.data

        def part(piece: tuple[slice, RowProduct]) -> None:
            cols, product = piece
            if rows == 1 or self.single is not None:  # a plain block of the output
                product.run(scale, out_at + 4 * (cols.start or 0), source_at)
            else:  # the rows of a column piece are strided: written whole, then copied
                block = product.bound().block
                product.run(scale, block.ctypes.data, source_at)
                result[:, cols] = block

        if self.single is not None:
            part(self.pieces[0])
        else:
            host_pool.run_all(part, self.pieces)
