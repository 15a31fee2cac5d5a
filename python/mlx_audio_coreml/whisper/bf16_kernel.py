"""A bfloat16-weight matrix-vector product for the CPU, compiled on first use with the system C compiler.

Why: a greedy decoder step on the CPU is bound by memory reads, and its largest read is the logits
table (base: 51865 x 512 float32, 106 MB per token). Stored as bfloat16 (the upper half of each
float32) it is half the bytes; measured here the product took ~3 ms instead of ~10 ms through
OpenBLAS's float32 gemv. Neither OpenBLAS build present exports sbgemv, and MLX's own bfloat16 and
quantized CPU products are slower than float32 (23 and 17 ms), hence this small C loop, which the
compiler vectorizes for the machine it runs on. The result is approximate: `host_logits` corrects
every logit that matters with the exact float32 product.

The shared library is built once per source and CPU into ~/.cache/mlx-audio-coreml/kernels (or
$MLX_AUDIO_COREML_HOME/kernels), written to a temporary name then renamed, so concurrent first
uses never load a half-written file. Without a C compiler (or with MLX_AUDIO_COREML_BF16_LOGITS=0)
`load()` returns None and callers keep the float32 product.
"""

from __future__ import annotations

import ctypes
import hashlib
import logging
import os
import shutil
import subprocess
import tempfile
from functools import lru_cache
from pathlib import Path
from typing import Any

import numpy as np

_log = logging.getLogger(__name__)

_SOURCE = r"""
#include <stdint.h>
#include <string.h>
/* out[r] = sum_d float(w[r * cols + d]) * x[d]; w holds the upper 16 bits of float32 values.
   16 running sums per row so the compiler keeps one vector register of partial sums. */
void bf16_gemv(const uint16_t *w, const float *x, float *out, long rows, long cols) {
    for (long r = 0; r < rows; r++) {
        const uint16_t *row = w + r * cols;
        float acc[16] = {0};
        long d = 0;
        for (; d + 16 <= cols; d += 16) {
            for (int j = 0; j < 16; j++) {
                uint32_t bits = (uint32_t)row[d + j] << 16;
                float value;
                memcpy(&value, &bits, 4);
                acc[j] += value * x[d + j];
            }
        }
        float total = 0;
        for (int j = 0; j < 16; j++) total += acc[j];
        for (; d < cols; d++) {
            uint32_t bits = (uint32_t)row[d] << 16;
            float value;
            memcpy(&value, &bits, 4);
            total += value * x[d];
        }
        out[r] = total;
    }
}
"""


def _cache_dir() -> Path:
    home = os.environ.get("MLX_AUDIO_COREML_HOME") or os.path.join("~", ".cache", "mlx-audio-coreml")
    return Path(home).expanduser() / "kernels"


def _cpu_flags() -> str:
    """The CPU's feature flags: the library is built with -march=native, so it is keyed to them."""
    try:
        with open("/proc/cpuinfo") as info:
            return next((line for line in info if line.startswith(("flags", "Features"))), "")
    except OSError:
        return ""


def _build(target: Path) -> bool:
    compiler = shutil.which(os.environ.get("CC", "cc"))
    if compiler is None:
        return False
    target.parent.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(dir=target.parent) as work:
        source, built = Path(work) / "kernel.c", Path(work) / target.name
        source.write_text(_SOURCE)
        command = [compiler, "-O3", "-march=native", "-shared", "-fPIC", "-o", str(built), str(source)]
        result = subprocess.run(command, capture_output=True, text=True, check=False)
        if result.returncode != 0:
            _log.info("bf16 kernel not built (%s): %s", compiler, result.stderr.strip()[:500])
            return False
        os.replace(built, target)
    return True


@lru_cache(maxsize=1)
def load() -> Any:
    """The compiled `bf16_gemv` (ctypes function), or None where it cannot be had."""
    if os.environ.get("MLX_AUDIO_COREML_BF16_LOGITS", "1") == "0":
        return None
    key = hashlib.sha256((_SOURCE + _cpu_flags()).encode()).hexdigest()[:16]
    target = _cache_dir() / f"bf16_gemv_{key}.so"
    try:
        if not target.exists() and not _build(target):
            return None
        function = ctypes.CDLL(str(target)).bf16_gemv
    except (OSError, AttributeError, subprocess.SubprocessError) as error:
        _log.info("bf16 kernel unavailable: %s", error)
        return None
    function.argtypes = [ctypes.c_void_p, ctypes.c_void_p, ctypes.c_void_p, ctypes.c_long, ctypes.c_long]
    function.restype = None
    return function


def to_bf16(matrix: np.ndarray) -> np.ndarray:
    """float32 (R, C) -> its bfloat16 bit patterns (R, C) uint16, rounded to nearest even."""
    bits = np.ascontiguousarray(matrix, dtype=np.float32).view(np.uint32)
    rounded = (bits >> 16) + (((bits & 0xFFFF) + ((bits >> 16) & 1)) > 0x8000)  # ties to even
    return rounded.astype(np.uint16)


def gemv(function: Any, table: np.ndarray, vector: np.ndarray) -> np.ndarray:
    """table (R, C) bfloat16 bits @ vector (C,) float32 -> (R,) float32."""
    vector = np.ascontiguousarray(vector, dtype=np.float32)
    out = np.empty(table.shape[0], np.float32)
    function(table.ctypes.data, vector.ctypes.data, out.ctypes.data, table.shape[0], table.shape[1])
    return out
