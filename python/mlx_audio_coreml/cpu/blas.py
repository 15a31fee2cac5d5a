"""Load an optimized BLAS before MLX on Linux, so MLX's CPU matrix products use it.

The `mlx[cpu]` wheel ships a slow reference BLAS; MLX resolves `sgemm_` and friends dynamically, so a
library loaded first with RTLD_GLOBAL wins. Seen here: a 1500x384 @ 384x1536 float32 product went
from 226 ms to 7.8 ms with OpenBLAS (../shared/DATA.md). Set MLX_AUDIO_COREML_BLAS=none to skip,
or to a path to load another library.
"""

from __future__ import annotations

import ctypes
import os
import sys
import warnings

from .. import config

_CANDIDATES = (
    "/usr/lib/x86_64-linux-gnu/openblas-pthread/libblas.so.3",
    "/usr/lib/aarch64-linux-gnu/openblas-pthread/libblas.so.3",
    "/usr/lib/x86_64-linux-gnu/libopenblas.so.0",
    "/usr/lib/aarch64-linux-gnu/libopenblas.so.0",
)

# Measured (tiny.en int8, greedy, 116 s of real speech, same code): 11.8 s CPU with MLX's bundled BLAS against
# 7.5 s with OpenBLAS. The products agree to rounding (the mel's filter bank product differs by 1e-7), but
# that rounding was enough to move the first window's timestamps, hence every later seek: that greedy run
# without temperature fallback then hallucinated in a later window (WER 29.4% vs 6.5%); with the default
# fallback both BLAS gave 5.4-6.5%. So the warning is about speed: the user is told, not left to find out.
_MLX_FIRST = (
    "mlx.core was imported before mlx_audio_coreml, so MLX runs on its bundled reference BLAS "
    "(about 1.6x slower here). Import mlx_audio_coreml before mlx."
)

loaded_blas: str | None = None  # the path loaded, for `info`
blas_note: str = "not attempted"


def _load() -> None:
    global loaded_blas, blas_note
    if not sys.platform.startswith("linux"):
        blas_note = "platform default (Accelerate on macOS)"
        return
    wanted = config.setting(config.BLAS)
    if wanted.lower() == "none":
        blas_note = "disabled by MLX_AUDIO_COREML_BLAS=none: MLX's bundled reference BLAS"
        return
    if "mlx.core" in sys.modules:
        blas_note = "mlx.core was imported first: MLX's bundled BLAS (import mlx_audio_coreml earlier)"
        warnings.warn(_MLX_FIRST, RuntimeWarning, stacklevel=2)
        return
    for path in [wanted] if wanted else list(_CANDIDATES):
        if os.path.exists(path):
            try:
                ctypes.CDLL(path, mode=ctypes.RTLD_GLOBAL)
            except OSError as exc:
                blas_note = f"{path} failed to load: {exc}"
                continue
            loaded_blas, blas_note = path, f"OpenBLAS ({path})"
            return
    blas_note = "MLX's bundled reference BLAS (install libopenblas0-pthread for a large speed-up)"


_load()
