"""mlx-audio-coreml: on-device speech on MLX, with fixed-shape parts on Core ML."""

from __future__ import annotations

from . import _blas  # noqa: F401  (must run before mlx.core is first imported: see _blas.py)

__version__ = "0.1.0"
