"""MLX weights to Core ML packages through coremltools' MIL builder (no torch).

`convert_whisper(model, out_dir, options, progress)` builds the Whisper encoder as a .mlpackage in
one of the layouts of `whisper/encoder_layouts.py`, records its provenance in the package metadata, checks
it through the portable runtime against MLX, and can wrap it as a companion-repo folder.
Needs the `convert` extra (coremltools).
"""

from __future__ import annotations

from .validate import DEFAULT_TOLERANCES, ValidationReport, relative_error
from .whisper import (
    ConversionResult,
    ConversionStage,
    ConvertOptions,
    ProgressCallback,
    SourceInfo,
    convert_encoder,
    convert_whisper,
)

__all__ = [
    "DEFAULT_TOLERANCES",
    "ConversionResult",
    "ConversionStage",
    "ConvertOptions",
    "ProgressCallback",
    "SourceInfo",
    "ValidationReport",
    "convert_encoder",
    "convert_whisper",
    "relative_error",
]
