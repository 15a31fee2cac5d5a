"""Which kernels a model's CPU products run on, as one line, logged once per process.

The line tells a user whether the fast path is on without a benchmark, e.g.
`cpu kernels: oneDNN 3.2.0 float32 (int8 weights +-63: no VNNI) + our C kernels`. It goes to the logger
`mlx_audio_coreml.cpu.report` at INFO (the command line shows it on stderr); `describe` gives
the same text for `info` and tests.
"""

from __future__ import annotations

import logging
import threading

import mlx.core as mx

from . import host_math, native_kernels, onednn

logger = logging.getLogger(__name__)
_lock = threading.Lock()
_logged: set[str] = set()


def describe(dtype: mx.Dtype, int8: bool = False) -> str:
    """The kernels that run a model's products whose MLX weights are in `dtype` (`int8`: host int8)."""
    device = mx.default_device()
    if device != mx.cpu:
        return f"cpu kernels: not used (MLX computes on {device})"
    if not host_math.available(dtype):
        name = str(dtype).replace("mlx.core.", "")
        return f"cpu kernels: MLX's own (weights in {name}; the host path runs float32 only, or is turned off)"
    version = onednn.version()
    if version is None:
        return "cpu kernels: numpy and the BLAS (oneDNN not installed; on x86-64 Linux: pip install onednn-cpu-gomp)"
    limit = onednn.int8_weight_limit()
    vnni = "VNNI" if limit == 127 else "no VNNI"
    ours = " + our C kernels" if native_kernels.available() else ""
    return f"cpu kernels: oneDNN {version} {'int8' if int8 else 'float32'} (int8 weights +-{limit}: {vnni}){ours}"


def log_once(dtype: mx.Dtype, int8: bool = False) -> None:
    """Log `describe(...)` at INFO the first time this process sees that line."""
    line = describe(dtype, int8)
    with _lock:
        if line in _logged:
            return
        _logged.add(line)
    logger.info("%s", line)
