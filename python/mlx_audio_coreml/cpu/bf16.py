"""bfloat16 products on the CPU host path: the attention of an int8 model's encoder (cpu/attention.py).

Why: the encoder's attention is half of an int8 window here (tiny.en on this AMD EPYC: 104 of 194 ms),
and its float32 products already run at the core's peak (QK^T 90 GFLOP/s a core). oneDNN's
bfloat16 products (float32 sums) took 1.71 and 1.70 ms for one head's QK^T and AV against 3.19
and 3.07 ms in float32. Only the two products' inputs are rounded to bfloat16 (8 bits of mantissa);
the scores, the softmax and the outputs stay float32, as GPUs run Whisper in float16. On 3.2 min
of real speech (greedy, int8) the transcript was the same word for word. On CPUs with AMX only AV's
inputs are (`scores_in_bf16`).

Used where oneDNN exports `dnnl_gemm_bf16bf16f32`, the CPU multiplies bfloat16 natively
(avx512_bf16, or AMX's amx_bf16; elsewhere oneDNN would emulate it, slower than float32), our C
kernels are built (the conversion: native_kernels.to_bf16, cpu_kernels/bf16.c), and MLX_AUDIO_COREML_BF16_ATTENTION is not
`0`. float32 models keep float32 attention: they ask for float32 arithmetic.
"""

from __future__ import annotations

import ctypes
from functools import lru_cache
from typing import Any

import numpy as np

from .. import config
from . import amx_policy, native_kernels, onednn

_FLAGS = {"avx512_bf16", "amx_bf16"}  # /proc/cpuinfo's names for native bfloat16 dot products


def cpu_multiplies_bf16() -> bool:
    """True when this CPU has bfloat16 dot-product instructions (Linux's cpuinfo flags)."""
    return bool(_FLAGS.intersection(amx_policy.cpu_flags()))


def scores_in_bf16() -> bool:
    """QK^T takes bfloat16 too (else only AV does): not on CPUs with AMX.

    Why: on the Xeon with AMX (2 cores, one 500-row block of one head), oneDNN's bfloat16 QK^T
    (inner size Dh = 64) took 0.834 ms against 0.823 in float32, while AV (inner size 1500) took
    0.166 against 0.882; a tiny.en int8 encoder window, 15 each in turns: 156.6 ms with AV alone in
    bfloat16, 166.4 with both, 169.8 with neither. On this AMD EPYC (avx512_bf16): 143.3 with both,
    156.3 with AV alone, 174.7 with neither."""
    return "amx_bf16" not in amx_policy.cpu_flags()


@lru_cache(maxsize=1)
def _gemm() -> Any:
    library = onednn._library()
    function = getattr(library, "dnnl_gemm_bf16bf16f32", None) if library is not None else None
    if function is not None:
        dim, char, ptr, real = ctypes.c_int64, ctypes.c_char, ctypes.c_void_p, ctypes.c_float
        function.argtypes = [char, char, dim, dim, dim, real, ptr, dim, ptr, dim, real, ptr, dim]
        function.restype = ctypes.c_int
    return function


def available() -> bool:
    """bfloat16 attention products can run, and are wanted (see the module docstring)."""
    return (
        config.setting(config.BF16_ATTENTION) != "0"
        and cpu_multiplies_bf16()
        and _gemm() is not None
        and native_kernels.available()
    )


def gemm(a: np.ndarray, b: np.ndarray, out: np.ndarray, *, b_transposed: bool = False) -> np.ndarray:
    """out = a @ b (b (K, N)) or a @ b.T (b (N, K) when `b_transposed`) in float32, a and b bfloat16
    bits (uint16) with contiguous rows; out float32 with contiguous rows."""
    m, k = a.shape
    n = b.shape[0] if b_transposed else b.shape[1]
    if out.shape != (m, n) or (b.shape[1] if b_transposed else b.shape[0]) != k:
        raise ValueError(f"bf16 gemm shapes do not chain: {a.shape} x {b.shape} -> {out.shape}")
    onednn.use_one_thread_here()
    status = _gemm()(
        b"N", b"T" if b_transposed else b"N", m, n, k, 1.0, a.ctypes.data, onednn._rows(a, np.uint16),
        b.ctypes.data, onednn._rows(b, np.uint16), 0.0, out.ctypes.data, onednn._rows(out, np.float32),
    )  # fmt: skip
    onednn._check("dnnl_gemm_bf16bf16f32", status)
    return out
