"""A window's audio keys and values kept as float16 for the decoder steps' cross-attention (int8 decoding).

Why: every greedy step reads every layer's audio keys and values, 18 MB of float32 for tiny.en, and
on two cores that pass is bound by memory: about a quarter of an int8 step. As float16 they are
half the bytes; our kernel widens each value to float32 as it loads it (F16C on x86-64, see
cpu_kernels/attend_half.c) and the arithmetic after that is the float32 kernel's. Rounding a key or
value to float16 moves it by at most 2^-11 of itself, well inside what int8 weights (and int8
activations in CTranslate2's int8 products) already change; float32 decoding keeps float32 audio.

`supported()`: our C kernels are built and this CPU widens float16 fast. `to_half(block)`: the
float16 copy of a float32 block, or None where a value does not fit float16 (the caller keeps the
float32 block), rounded as numpy's `astype(np.float16)` rounds, bit for bit (0.21 against 5.7 ms for 2.3 M values
here).
"""

from __future__ import annotations

import ctypes
from functools import lru_cache
from typing import Any

import numpy as np

from . import native_kernels

UNSUPPORTED, OUT_OF_RANGE = 3, 4  # MACB_CPU_UNSUPPORTED, MACB_CPU_OUT_OF_RANGE
HEAD_DIM = 64  # the only head width the float16 kernel takes (every Whisper model's)


@lru_cache(maxsize=1)
def _declared() -> Any:
    library = native_kernels.library()
    if library is None:
        return None
    library.macb_cpu_half_supported.argtypes = []
    library.macb_cpu_to_half.argtypes = [ctypes.c_void_p, ctypes.c_void_p, ctypes.c_int64]
    for function in (library.macb_cpu_half_supported, library.macb_cpu_to_half):
        function.restype = ctypes.c_int32
    return library


@lru_cache(maxsize=1)
def supported() -> bool:
    """Our kernels take float16 audio on this CPU (x86-64 with F16C, AVX2 and FMA; AArch64)."""
    library = _declared()
    return library is not None and bool(library.macb_cpu_half_supported())


def to_half(block: np.ndarray) -> np.ndarray | None:
    """`block` (float32, C-contiguous) as a new float16 array, rounded to nearest even; None where a
    value is not finite or too large for float16 (past 65504), or float16 audio is not `supported()`."""
    library = _declared()
    if block.dtype != np.float32 or not block.flags.c_contiguous:
        raise ValueError(f"expected a C-contiguous float32 block, got {block.dtype}")
    if library is None or block.size == 0:
        return None
    out = np.empty(block.shape, np.float16)
    status = library.macb_cpu_to_half(block.ctypes.data, out.ctypes.data, block.size)
    if status in (UNSUPPORTED, OUT_OF_RANGE):
        return None
    native_kernels.checked(status, "macb_cpu_to_half")
    return out


def is_half_pair(keys_t: np.ndarray, values: np.ndarray) -> bool:
    """Both audio blocks float16 with heads of the width the float16 kernel takes ((A, H, Dh, S) keys)."""
    return keys_t.dtype == np.float16 and values.dtype == np.float16 and keys_t.shape[2] == HEAD_DIM
