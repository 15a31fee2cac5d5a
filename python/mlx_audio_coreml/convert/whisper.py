"""`convert whisper`: the Whisper encoder from MLX weights to a checked .mlpackage (or companion folder).

Stages, each reported to the progress callback as (stage, fraction of that stage done):
loading weights -> building the MIL program -> coremltools passes -> saving -> validating through
the portable runtime -> writing the companion files. Everything happens in a staging folder beside
the destination; only a complete, validated result is moved into place.
"""

from __future__ import annotations

import enum
import shutil
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

from ..errors import (
    ConversionFailed,
    ConversionValidationFailed,
    InvalidConversionOption,
    UnsupportedModelForConversion,
    UnsupportedModelFormat,
)
from ..whisper.encoder_layouts import (
    LAYOUT_METADATA_KEY,
    LAYOUTS,
    N_FRAMES,
    EncoderLayout,
    get_layout,
)
from . import companion, package, validate
from .encoder_program import ProgramOptions, build_encoder_program
from .encoder_weights import EncoderWeights, weights_from_mlx


class ConversionStage(str, enum.Enum):
    DOWNLOADING = "downloading weights"  # only when the model is not on this machine
    LOADING = "loading weights"
    BUILDING = "building the MIL program"
    CONVERTING = "running coremltools passes"
    SAVING = "saving the package"
    VALIDATING = "validating"
    PUBLISHING = "writing the companion folder"


ProgressCallback = Callable[[ConversionStage, float], None]


@dataclass(frozen=True)
class ConvertOptions:
    layout: str = "default"  # "default" | "whispercpp" | "whisperkit" (whisper/encoder_layouts.py)
    precision: str = "float16"  # compute precision: "float16" | "float32"
    deployment_target: str = "macOS13"  # first with float16 I/O; see package.DEPLOYMENT_TARGETS
    split_heads: bool = True  # per-head attention, as the Neural Engine prefers
    validate: bool | None = None  # None: when the validation runtime is available; True: required
    validation_runtime: str = "portable"
    validation_audio: Any = None  # audio to take the validation mel from; None: a built-in test signal
    tolerance: float | None = None  # relative error allowed; None: validate.DEFAULT_TOLERANCES[precision]
    companion: bool = False  # write `<name>-coreml/` (package + model card + manifest)
    overwrite: bool = False  # replace an existing result at the destination


@dataclass(frozen=True)
class SourceInfo:
    """Where the weights came from, for the package metadata."""

    name: str  # what the user asked for: a short name, a repo id or a folder
    revision: str  # a hub snapshot revision when known, else "local"
    weights_sha256: str
    source_format: str  # "mlx" | "transformers" | "ctranslate2"


@dataclass(frozen=True)
class ConversionResult:
    package: Path  # the .mlpackage (inside the companion folder when one was written)
    companion_dir: Path | None
    metadata: Mapping[str, str]
    validation: validate.ValidationReport | None
    validation_note: str  # why validation did not run, when it did not
    seconds: float


def convert_whisper(
    model: str | Path,
    out_dir: Path,
    options: ConvertOptions = ConvertOptions(),
    progress: ProgressCallback | None = None,
) -> ConversionResult:
    """Convert the encoder of the Whisper model `model` into `out_dir`.

    `model` is a folder, a name in the local store, or else a hub repo (downloaded, verified, into
    the Hugging Face cache). Raises a ConversionError subclass, ModelNotFound, DownloadError, or
    whatever the progress callback raises; on every failure nothing is left in `out_dir`.
    """
    check_options(options)
    started = time.perf_counter()
    import mlx.core as mx

    from ..whisper.loading import load_whisper

    found = resolve_model(model, lambda f: _report(progress, ConversionStage.DOWNLOADING, f))
    _report(progress, ConversionStage.LOADING, 0.0)
    try:
        bundle = load_whisper(found.path, dtype=mx.float32)  # float32: the reference and the builder's input
    except UnsupportedModelFormat as exc:
        raise UnsupportedModelForConversion(str(model), str(exc)) from exc
    name = _source_name(model, found.path, found.repo_id if found.downloaded else None)
    source = SourceInfo(name, snapshot_revision(found.path), bundle.weights_sha256, bundle.source_format)
    result = convert_encoder(bundle.model.encoder, bundle.dims.n_audio_head, source, out_dir, options, progress)
    return replace(result, seconds=time.perf_counter() - started)  # downloading and loading included


def convert_encoder(
    encoder: Any,
    n_head: int,
    source: SourceInfo,
    out_dir: Path,
    options: ConvertOptions = ConvertOptions(),
    progress: ProgressCallback | None = None,
) -> ConversionResult:
    """Convert an MLX `WhisperEncoder` module (float weights) into `out_dir`."""
    check_options(options)
    started = time.perf_counter()
    weights = weights_from_mlx(encoder, n_head, source.name)
    _report(progress, ConversionStage.LOADING, 1.0)
    layout = get_layout(options.layout)
    metadata = package_metadata(weights, source, options)
    name = companion.companion_name(source.name) if options.companion else package_file_name(source.name, options)
    destination = Path(out_dir) / name
    with package.staged_output(destination, options.overwrite) as built:
        package_path = built / companion.ENCODER_PACKAGE_NAME if options.companion else built
        package_path.parent.mkdir(parents=True, exist_ok=True)
        scratch = built.parent / ".converted.mlpackage"  # in the staging folder, removed with it
        _build_package(weights, layout, options, metadata, package_path, scratch, progress)
        report, note = _maybe_validate(package_path, encoder, weights, options, progress)
        if options.companion:
            _report(progress, ConversionStage.PUBLISHING, 0.0)
            try:
                companion.write_companion_files(built, metadata, report, note)
            except OSError as exc:
                raise ConversionFailed("writing the companion folder", str(exc), exc) from exc
            _report(progress, ConversionStage.PUBLISHING, 1.0)
    final_package = destination / companion.ENCODER_PACKAGE_NAME if options.companion else destination
    return ConversionResult(
        package=final_package,
        companion_dir=destination if options.companion else None,
        metadata=metadata,
        validation=report,
        validation_note=note,
        seconds=time.perf_counter() - started,
    )


def check_options(options: ConvertOptions) -> None:
    if options.layout not in LAYOUTS:
        raise InvalidConversionOption("layout", options.layout, sorted(LAYOUTS))
    if options.precision not in package.PRECISIONS:
        raise InvalidConversionOption("precision", options.precision, sorted(package.PRECISIONS))
    if options.deployment_target not in package.DEPLOYMENT_TARGETS:
        raise InvalidConversionOption(
            "deployment_target", options.deployment_target, sorted(package.DEPLOYMENT_TARGETS)
        )


def _build_package(
    weights: EncoderWeights,
    layout: EncoderLayout,
    options: ConvertOptions,
    metadata: Mapping[str, str],
    package_path: Path,
    scratch: Path,
    progress: ProgressCallback | None,
) -> None:
    """Build, convert (into `scratch`) and save the package at `package_path`, with metadata."""
    _report(progress, ConversionStage.BUILDING, 0.0)
    target = package.DEPLOYMENT_TARGETS[options.deployment_target]
    program_options = ProgramOptions(layout.io_dtype(options.precision), options.split_heads, target)
    program = build_encoder_program(
        weights, layout, program_options, lambda f: _report(progress, ConversionStage.BUILDING, f)
    )
    _report(progress, ConversionStage.CONVERTING, 0.0)
    model = package.convert_program(
        program, options.precision, options.deployment_target, scratch,
        lambda f: _report(progress, ConversionStage.CONVERTING, f),
    )  # fmt: skip
    _report(progress, ConversionStage.SAVING, 0.0)
    package.write_metadata(model, metadata, _short_description(metadata))
    package.save_model(model, package_path)
    shutil.rmtree(scratch, ignore_errors=True)
    _report(progress, ConversionStage.SAVING, 1.0)


def _maybe_validate(
    package_path: Path,
    encoder: Any,
    weights: EncoderWeights,
    options: ConvertOptions,
    progress: ProgressCallback | None,
) -> tuple[validate.ValidationReport | None, str]:
    """Validate when asked (or when possible under `validate=None`); raise when over tolerance."""
    if options.validate is False:
        return None, "skipped on request (--no-validate)"
    available, reason = validate.validation_runtime_available(options.validation_runtime)
    if not available:
        if options.validate is None:
            return None, f"the {options.validation_runtime} runtime is unavailable: {reason}"
        from ..errors import CoreMLRuntimeUnavailable

        raise CoreMLRuntimeUnavailable(options.validation_runtime, reason)
    _report(progress, ConversionStage.VALIDATING, 0.0)
    mel = validate.validation_mel(weights.n_mels, options.validation_audio)
    reference = validate.mlx_states(encoder, mel)
    _report(progress, ConversionStage.VALIDATING, 0.3)
    tolerance = validate.DEFAULT_TOLERANCES[options.precision] if options.tolerance is None else options.tolerance
    report = validate.validate_package(package_path, reference, mel, tolerance, options.validation_runtime)
    _report(progress, ConversionStage.VALIDATING, 1.0)
    if not report.passed:
        raise ConversionValidationFailed(report.relative_error, report.tolerance, report.runtime)
    return report, ""


def package_metadata(weights: EncoderWeights, source: SourceInfo, options: ConvertOptions) -> dict[str, str]:
    """Our keys in the package's user-defined metadata (all strings, as Core ML requires)."""
    import coremltools as ct
    import mlx.core as mx

    from .. import __version__

    layout = get_layout(options.layout)
    prefix = "mlx_audio_coreml."
    values = {
        "component": "whisper_encoder",
        LAYOUT_METADATA_KEY.removeprefix(prefix): layout.name,
        "precision": options.precision,
        "io_dtype": layout.io_dtype(options.precision),
        "input_name": layout.input_name,
        "input_shape": str(list(layout.input_shape(weights.n_mels, N_FRAMES))),
        "output_name": layout.output_name,
        "output_shape": str(list(layout.output_shape(weights.d_model, weights.n_ctx))),
        "attention": "per_head" if options.split_heads else "batched",
        "deployment_target": options.deployment_target,
        "source_model": source.name,
        "source_revision": source.revision,
        "source_format": source.source_format,
        "weights_sha256": source.weights_sha256,
        "n_mels": str(weights.n_mels),
        "n_ctx": str(weights.n_ctx),
        "d_model": str(weights.d_model),
        "n_head": str(weights.n_head),
        "n_layer": str(weights.n_layer),
        "version": __version__,
        "coremltools_version": ct.__version__,
        "mlx_version": str(getattr(mx, "__version__", "")),  # not in MLX's type stubs
    }
    return {prefix + key: value for key, value in values.items()}


def package_file_name(model_name: str, options: ConvertOptions) -> str:
    """`tiny.en` -> `tiny.en-encoder-whisperkit-float16.mlpackage`."""
    stem = Path(str(model_name).rstrip("/")).name
    return f"{stem}-encoder-{options.layout}-{options.precision}.mlpackage"


def resolve_model(model: str | Path, on_fraction: Callable[[float], None] | None = None) -> Any:
    """The model's folder (sources.ResolvedModel): a path, the local store, else a verified hub
    download into the Hugging Face cache. Raises ModelNotFound (with a hint) or DownloadError."""
    from ..store import hub
    from ..whisper.sources import resolve_model as resolve

    return resolve(model, hub.HubSettings.from_env(), on_fraction)


def snapshot_revision(model_dir: Path) -> str:
    """The commit of a Hugging Face cache snapshot (`.../snapshots/<revision>/`), else "local"."""
    parts = Path(model_dir).resolve().parts
    if len(parts) >= 2 and parts[-2] == "snapshots":
        return parts[-1]
    return "local"


def _source_name(model: str | Path, model_dir: Path, downloaded_repo: str | None) -> str:
    """How the metadata names the source: the hub repo it was downloaded from, else the name the
    user gave, and a local folder by its name only (published metadata carries no local paths)."""
    if downloaded_repo:
        return downloaded_repo
    return model_dir.name if Path(model).expanduser().is_dir() else str(model)


def _short_description(metadata: Mapping[str, str]) -> str:
    get = metadata.get
    return (
        f"Whisper audio encoder of {get('mlx_audio_coreml.source_model')} "
        f"({get('mlx_audio_coreml.layout')} layout, {get('mlx_audio_coreml.precision')}), "
        "converted by mlx-audio-coreml"
    )


def _report(progress: ProgressCallback | None, stage: ConversionStage, fraction: float) -> None:
    if progress is not None:
        progress(stage, min(max(fraction, 0.0), 1.0))
