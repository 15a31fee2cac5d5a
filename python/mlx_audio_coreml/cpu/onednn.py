"""oneDNN's BLAS-like matrix products (float32 and int8) for the CPU host path, through ctypes.

Why: on x86 Linux the `onednn-cpu-gomp` wheel (Apache-2.0, on PyPI, ~39 MB) brings JIT-generated
GEMM kernels that use AVX-512 and VNNI where the CPU has them. Measured on this 2-core Zen 4 VM
(medians, 2 threads): the (500 x 1500) @ (1500 x 64) product of encoder attention took 0.47 ms
against 1.0 ms in Debian's OpenBLAS 0.3.21, and tiny.en's 51864 x 384 logits product took 0.45 ms
in int8 against 3.5 ms in float32. It is optional: without the wheel (macOS, aarch64) callers
keep their OpenBLAS/MLX route, and `available()` says so.

Only the C "BLAS-like" functions are used (row-major, as oneDNN defines them since v1.0); no
primitives, no engine. Set MLX_AUDIO_COREML_ONEDNN=none to turn it off, or to a library path.
"""

from __future__ import annotations

import ctypes
import sys
import sysconfig
import threading
from functools import lru_cache
from pathlib import Path
from typing import Any

import numpy as np

from .. import config
from ..errors import CPUKernelFailed
from . import signal_stack

_LIBRARY_NAMES = ("libdnnl.so.3", "libdnnl.so")
_dim, _float, _ptr, _char = ctypes.c_int64, ctypes.c_float, ctypes.c_void_p, ctypes.c_char
_ZERO_OFFSET = np.zeros(1, np.int32)  # the C offset oneDNN reads with offsetc 'F' (one value)


class _Version(ctypes.Structure):
    _fields_ = [("major", ctypes.c_int), ("minor", ctypes.c_int), ("patch", ctypes.c_int), ("hash", ctypes.c_char_p)]


def _candidates() -> list[Path]:
    """Where pip puts the wheel's library: `<prefix>/lib` of this environment (data scheme)."""
    roots = {Path(sysconfig.get_paths()["data"]) / "lib", Path(sys.prefix) / "lib"}
    return [root / name for root in sorted(roots) for name in _LIBRARY_NAMES]


@lru_cache(maxsize=1)
def _library() -> Any:
    """The loaded library with its signatures declared, or None (not installed, not x86 Linux, off)."""
    wanted = config.setting(config.ONEDNN)
    if wanted.lower() == "none" or not sys.platform.startswith("linux"):
        return None
    for path in [Path(wanted)] if wanted else _candidates():
        if not path.exists():
            continue
        try:
            library = ctypes.CDLL(str(path))
        except OSError:
            continue
        _declare(library)
        return library
    return None


def _declare(library: Any) -> None:
    library.dnnl_sgemm.argtypes = [_char, _char, _dim, _dim, _dim, _float, _ptr, _dim, _ptr, _dim, _float, _ptr, _dim]
    library.dnnl_gemm_s8s8s32.argtypes = [
        _char, _char, _char, _dim, _dim, _dim, _float, _ptr, _dim, ctypes.c_int8,
        _ptr, _dim, ctypes.c_int8, _float, _ptr, _dim, _ptr,
    ]  # fmt: skip
    library.dnnl_gemm_u8s8s32.argtypes = [
        _char, _char, _char, _dim, _dim, _dim, _float, _ptr, _dim, ctypes.c_uint8,
        _ptr, _dim, ctypes.c_int8, _float, _ptr, _dim, _ptr,
    ]  # fmt: skip
    for function in (library.dnnl_sgemm, library.dnnl_gemm_s8s8s32, library.dnnl_gemm_u8s8s32):
        function.restype = ctypes.c_int
    handle, pointer = ctypes.c_void_p, ctypes.POINTER(ctypes.c_void_p)
    signatures = {  # the primitive API used by onednn_eltwise.py; all return dnnl_status_t
        "dnnl_engine_create": [pointer, ctypes.c_int, ctypes.c_size_t],
        "dnnl_stream_create": [pointer, handle, ctypes.c_uint],
        "dnnl_stream_wait": [handle],
        "dnnl_memory_desc_create_with_tag": [pointer, ctypes.c_int, ctypes.POINTER(_dim), ctypes.c_int, ctypes.c_int],
        "dnnl_memory_desc_destroy": [handle],
        "dnnl_eltwise_forward_primitive_desc_create": [
            pointer,
            handle,
            ctypes.c_int,
            ctypes.c_int,
            handle,
            handle,
            _float,
            _float,
            handle,
        ],
        "dnnl_softmax_forward_primitive_desc_create": [
            pointer,
            handle,
            ctypes.c_int,
            ctypes.c_int,
            handle,
            handle,
            ctypes.c_int,
            handle,
        ],
        "dnnl_primitive_desc_destroy": [handle],
        "dnnl_primitive_create": [pointer, handle],
        "dnnl_primitive_destroy": [handle],
        "dnnl_primitive_execute": [handle, handle, ctypes.c_int, handle],
        "dnnl_memory_create": [pointer, handle, handle, handle],
        "dnnl_memory_destroy": [handle],
    }
    for name, argtypes in signatures.items():
        function = getattr(library, name)
        function.argtypes, function.restype = argtypes, ctypes.c_int
    library.dnnl_version.restype = ctypes.POINTER(_Version)


@lru_cache(maxsize=1)
def _openmp() -> Any:
    """The OpenMP runtime oneDNN was built against (GNU libgomp, already loaded with it), or None."""
    if _library() is None:
        return None
    try:
        runtime = ctypes.CDLL("libgomp.so.1")
        runtime.omp_set_num_threads.argtypes = [ctypes.c_int]
    except (OSError, AttributeError):
        return None
    return runtime


class _ThreadState(threading.local):
    single: bool = False


_thread_state = _ThreadState()


def use_one_thread_here() -> None:
    """Make oneDNN calls from the current thread run on it alone (OpenMP's per-thread setting).

    Every call here does this first. Why: an OpenMP team spins while it waits for work, and on 2
    shared cores next to OpenBLAS's and our own worker threads that made an int8 transcription of
    jfk.wav take 3.3 s instead of 0.57 s (measured here). `cpu/pool.py` splits large work
    between cores instead, with threads that sleep while idle. The thread also gets an alternate
    signal stack (cpu/signal_stack.py: a signal during an sgemm kernel would otherwise land in the heap)."""
    if _thread_state.single:
        return
    signal_stack.ensure()
    runtime = _openmp()
    if runtime is not None:
        runtime.omp_set_num_threads(1)
    _thread_state.single = True


def available() -> bool:
    """True when oneDNN's library was found and loaded."""
    return _library() is not None


def version() -> str | None:
    """'3.2.0' or None when not available (for `info`)."""
    library = _library()
    if library is None:
        return None
    found = library.dnnl_version().contents
    return f"{found.major}.{found.minor}.{found.patch}"


def _check(name: str, status: int) -> None:
    if status != 0:
        raise CPUKernelFailed(name, status)


def _rows(matrix: np.ndarray, dtype: type) -> int:
    """The row stride in elements of a 2-D matrix whose rows are each contiguous (its leading dimension)."""
    if matrix.ndim != 2 or matrix.dtype != dtype or matrix.strides[1] != matrix.itemsize:
        raise ValueError(
            f"need a 2-D {np.dtype(dtype).name} matrix with contiguous rows, got {matrix.dtype} {matrix.strides}"
        )
    return max(matrix.strides[0] // matrix.itemsize, matrix.shape[1], 1)


def sgemm(
    a: np.ndarray, b: np.ndarray, out: np.ndarray, *, b_transposed: bool = False, accumulate: bool = False
) -> np.ndarray:
    """out = a @ b (b (K, N)) or a @ b.T (b (N, K) when `b_transposed`), float32; `accumulate` adds to out."""
    m, k = a.shape
    n = b.shape[0] if b_transposed else b.shape[1]
    if out.shape != (m, n) or (b.shape[1] if b_transposed else b.shape[0]) != k:
        raise ValueError(f"sgemm shapes do not chain: {a.shape} x {b.shape} -> {out.shape}")
    use_one_thread_here()
    status = _library().dnnl_sgemm(
        b"N", b"T" if b_transposed else b"N", m, n, k, 1.0, a.ctypes.data, _rows(a, np.float32),
        b.ctypes.data, _rows(b, np.float32), 1.0 if accumulate else 0.0, out.ctypes.data, _rows(out, np.float32),
    )  # fmt: skip
    _check("dnnl_sgemm", status)
    return out


def gemm_int8(a: np.ndarray, b: np.ndarray, out: np.ndarray) -> np.ndarray:
    """out (M, N) int32 = a (M, K) int8 @ b (N, K) int8 transposed, exact integer sums while
    |b| <= int8_weight_limit() (127 on CPUs with VNNI, 63 without)."""
    m, k = a.shape
    n = b.shape[0]
    if out.shape != (m, n) or b.shape[1] != k or out.dtype != np.int32:
        raise ValueError(f"int8 gemm shapes do not chain: {a.shape} x {b.shape}.T -> {out.shape} {out.dtype}")
    use_one_thread_here()
    status = _library().dnnl_gemm_s8s8s32(
        b"N", b"T", b"F", m, n, k, 1.0, a.ctypes.data, _rows(a, np.int8), 0,
        b.ctypes.data, _rows(b, np.int8), 0, 0.0, out.ctypes.data, _rows(out, np.int32), _ZERO_OFFSET.ctypes.data,
    )  # fmt: skip
    _check("dnnl_gemm_s8s8s32", status)
    return out


def gemm_u8s8(a: np.ndarray, b: np.ndarray, out: np.ndarray, column_offsets: np.ndarray) -> np.ndarray:
    """out (M, N) int32 = a (M, K) uint8 @ b (N, K) int8 transposed + column_offsets (N,) int32.

    Why beside `gemm_int8`: oneDNN's s8 x s8 kernels shift the first operand to unsigned and work out
    the weights' compensation on every call; with an unsigned first operand and the compensation
    precomputed (`column_offsets`, added by oneDNN's 'R' offset) the same product took half the time
    on this AVX2 EPYC: tiny.en's one-row logits (51864 x 384) 3.3 ms against 6.4 ms, a (1 x 384) @
    (384 x 1536) 0.05 against 0.11 ms (one thread). Exact while |b| <= int8_weight_limit().
    """
    m, k = a.shape
    n = b.shape[0]
    if out.shape != (m, n) or b.shape[1] != k or out.dtype != np.int32 or column_offsets.shape != (n,):
        raise ValueError(f"u8 x s8 gemm shapes do not chain: {a.shape} x {b.shape}.T -> {out.shape} {out.dtype}")
    if column_offsets.dtype != np.int32 or not column_offsets.flags.c_contiguous:
        raise ValueError("column_offsets must be a contiguous int32 vector")
    use_one_thread_here()
    status = _library().dnnl_gemm_u8s8s32(
        b"N", b"T", b"R", m, n, k, 1.0, a.ctypes.data, _rows(a, np.uint8), 0,
        b.ctypes.data, _rows(b, np.int8), 0, 0.0, out.ctypes.data, _rows(out, np.int32), column_offsets.ctypes.data,
    )  # fmt: skip
    _check("dnnl_gemm_u8s8s32", status)
    return out


def gemm_u8s8_at(m: int, n: int, k: int, a: int, b: int, out: int, ldc: int, column_offsets: int) -> None:
    """`gemm_u8s8` on the addresses of plain row-major blocks, a (m, k) uint8, b (n, k) int8, out
    (m, n) int32 with row stride `ldc` and the offsets (n,) int32, without `gemm_u8s8`'s checks.

    Why: a decoder step makes ~25 one-row products of ~20 us of arithmetic each, and the checks and
    array-to-address conversions cost more than that. The caller guarantees the blocks' sizes
    (`linear.HostLinear` checks them once, when it prepares its weights and buffers)."""
    use_one_thread_here()
    status = _library().dnnl_gemm_u8s8s32(
        b"N", b"T", b"R", m, n, k, 1.0, a, k, 0, b, k, 0, 0.0, out, ldc, column_offsets
    )  # fmt: skip
    _check("dnnl_gemm_u8s8s32", status)


@lru_cache(maxsize=1)
def int8_weight_limit() -> int:
    """The largest |weight| for which `gemm_int8` and `gemm_u8s8` are exact on this CPU: 127, or 63
    without VNNI.

    Without VNNI (AVX2 and early AVX-512 CPUs) oneDNN adds 128 to the first operand and multiplies
    pairs with vpmaddubsw, whose int16 pair sums saturate once |weight| > 64 (255 * 65 * 2 > 32767):
    seen here on an AVX2-only EPYC as sums off by up to 30%. A probe on the worst case decides, so
    the answer is the loaded library's, not a guess from CPU flags. Weights quantized to +-63 lose
    one bit; PyTorch's x86 backend makes the same trade (`reduce_range`).
    """
    rows = np.full((1, 64), 127, np.int8)
    weights = np.full((2, 64), 127, np.int8)
    sums = gemm_int8(rows, weights, np.empty((1, 2), np.int32))
    unsigned = gemm_u8s8(np.full((1, 64), 255, np.uint8), weights, np.empty((1, 2), np.int32), np.zeros(2, np.int32))
    exact = int(sums[0, 0]) == 64 * 127 * 127 and int(unsigned[0, 0]) == 64 * 255 * 127
    return 127 if exact else 63
