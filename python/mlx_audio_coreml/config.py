"""Every MLX_AUDIO_COREML_* environment variable and every cache path, read in one place.

Values are read when asked for (not at import), so tests and callers that set a variable before a
call see it honoured. Nothing here imports MLX or any other part of the package.

| variable | meaning | default |
| --- | --- | --- |
| MLX_AUDIO_COREML_HOME | root of our caches: models/, assets/, packages/, compiled/ | ~/.cache/mlx-audio-coreml |
| MLX_AUDIO_COREML_BLAS | `none`, or a BLAS library to preload before MLX (Linux) | Debian's OpenBLAS if present |
| MLX_AUDIO_COREML_ONEDNN | `none`, or a oneDNN library path (CPU host kernels) | the onednn-cpu-gomp wheel |
| MLX_AUDIO_COREML_HOST_THREADS | worker threads of the CPU host kernels (1-16) | the cores this process may use |
| MLX_AUDIO_COREML_HOST_MATH | `0` runs plain MLX ops instead of the CPU host kernels | on |
| MLX_AUDIO_COREML_DECODER_BLAS_THREADS | BLAS threads during a decoder step (0: leave as is) | 0 |
| MLX_AUDIO_COREML_NATIVE_LIB | path of the Swift shim to load | the one built into the package |
| MLX_AUDIO_COREML_CPU_KERNELS | `none`, or a path: our C kernels of the CPU host path (libmacb_cpu) | the one built into the package |
| MLX_AUDIO_COREML_LSTM_CUDA_KERNEL | `0` runs Kokoro's LSTMs step by step on a CUDA GPU instead of one fused kernel per LSTM | on |
| MLX_AUDIO_COREML_ROWS_AMX | int8 products of fewer than 16 rows on oneDNN's AMX kernels (CPUs with AMX): `1` always, `0` never | several rows (beams), and one row only against a large weight (the logits) |
| MLX_AUDIO_COREML_SPLIT_CROSS | `1` splits the CPU decoder's cross-attention heads between the host workers, `0` never | every step with a step team (below); else one-row steps on CPUs with AMX |
| MLX_AUDIO_COREML_STEP_TEAM | `0`: the CPU decoder step hands pieces to the host workers through the pool, not a spinning team in C | the team, where our C kernels are built and there are 2+ cores |
| MLX_AUDIO_COREML_BF16_ATTENTION | `0`: an int8 model's CPU encoder attention stays float32 | its two products in bfloat16, on CPUs with bfloat16 dot products |
| MLX_AUDIO_COREML_API_KEY | `serve`: the bearer key its /v1 routes require | none: open |
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from pathlib import Path

HOME = "MLX_AUDIO_COREML_HOME"
BLAS = "MLX_AUDIO_COREML_BLAS"
ONEDNN = "MLX_AUDIO_COREML_ONEDNN"
HOST_THREADS = "MLX_AUDIO_COREML_HOST_THREADS"
HOST_MATH = "MLX_AUDIO_COREML_HOST_MATH"
DECODER_BLAS_THREADS = "MLX_AUDIO_COREML_DECODER_BLAS_THREADS"
NATIVE_LIB = "MLX_AUDIO_COREML_NATIVE_LIB"
CPU_KERNELS = "MLX_AUDIO_COREML_CPU_KERNELS"
LSTM_CUDA_KERNEL = "MLX_AUDIO_COREML_LSTM_CUDA_KERNEL"
ROWS_AMX = "MLX_AUDIO_COREML_ROWS_AMX"
SPLIT_CROSS = "MLX_AUDIO_COREML_SPLIT_CROSS"
STEP_TEAM = "MLX_AUDIO_COREML_STEP_TEAM"
BF16_ATTENTION = "MLX_AUDIO_COREML_BF16_ATTENTION"
API_KEY = "MLX_AUDIO_COREML_API_KEY"


def setting(name: str, default: str = "", environ: Mapping[str, str] | None = None) -> str:
    """The raw value of one of the variables above ('' when unset)."""
    return (os.environ if environ is None else environ).get(name, default)


def home(environ: Mapping[str, str] | None = None) -> Path:
    """Root of our caches: $MLX_AUDIO_COREML_HOME, default ~/.cache/mlx-audio-coreml."""
    value = setting(HOME, environ=environ)
    return Path(value).expanduser() if value else Path.home() / ".cache" / "mlx-audio-coreml"


def models_dir(environ: Mapping[str, str] | None = None) -> Path:
    """Installed model folders (what scripts/fetch_models.sh writes), by short name."""
    return home(environ) / "models"


def assets_dir(environ: Mapping[str, str] | None = None) -> Path:
    """Shared assets such as tokenizer rank files."""
    return home(environ) / "assets"


def packages_dir(environ: Mapping[str, str] | None = None) -> Path:
    """Core ML packages downloaded from the hub, kept as real files."""
    return home(environ) / "packages"


def compiled_dir(environ: Mapping[str, str] | None = None) -> Path:
    """Compiled Core ML models (.mlmodelc), one per package path and content."""
    return home(environ) / "compiled"
