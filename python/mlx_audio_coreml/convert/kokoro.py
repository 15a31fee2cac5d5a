"""`convert kokoro`: the Kokoro decoder (vocoder) from MLX weights to checked Core ML packages, one per frame bucket.

Layouts: "packages" writes `AudioVocoder-<frames>.mlpackage` per bucket (macOS 13 / iOS 16 on);
"multifunction" writes one `AudioVocoder.mlpackage` whose function `frames_<frames>` is each bucket
and whose weights file holds the decoder's weights once (coremltools deduplicates them); Core ML
loads such a package from macOS 15 / iOS 18 on only. "auto" (the default) picks multifunction when
the deployment target allows it.

Stages, each reported to the progress callback as (stage, fraction of that stage done): loading the
weights, then per bucket building the MIL program, coremltools passes, saving, validating through
the portable runtime against the MLX decoder (noise off), and finally the companion files.
Everything is built in a staging folder beside the destination, moved into place only when every
bucket is complete and validated (convert/package.staged_output): never a half-written result.

A float16 package keeps the scopes of kokoro_program.FLOAT32_SCOPES in float32 (the harmonic
source's phase, the last stage's Snake chain and the exp/sin/iSTFT tail), a float32 sub-program
inside the package.
"""

from __future__ import annotations

import hashlib
import json
import shutil
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import coremltools as ct
import numpy as np

from ..errors import ConversionFailed, InvalidConversionOption, UnsupportedModelForConversion
from ..kokoro.vocoder_bucket import DEFAULT_BUCKETS
from ..vocoders import SAMPLE_RATE_METADATA_KEY
from . import package
from .kokoro_program import FLOAT32_SCOPES, build_vocoder_program
from .kokoro_validate import VocoderValidation, validate_vocoder_package
from .whisper import ConversionStage

# Text frames per bucket (DEFAULT_BUCKETS: 32 to 512); Kokoro speaks 40 text frames a second (600 samples
# at 24 kHz each): 0.8 s to 12.8 s. A longer chunk is decoded by MLX (vocoder_bucket.py).
SAMPLES_PER_FRAME = 600
SAMPLE_RATE = 24000
PACKAGE_PREFIX = "AudioVocoder-"
MULTIFUNCTION_PACKAGE = "AudioVocoder.mlpackage"
LAYOUTS = ("auto", "packages", "multifunction")
MANIFEST_NAME = "manifest.json"
META = "mlx_audio_coreml."

ProgressCallback = Callable[[ConversionStage, float], None]


@dataclass(frozen=True)
class KokoroConvertOptions:
    precision: str = "float32"  # "float32" | "float16" (FLOAT32_SCOPES stay float32)
    buckets: Sequence[int] = DEFAULT_BUCKETS
    deployment_target: str = "macOS13"
    validate: bool = True  # run every package through the portable runtime against MLX
    min_snr_db: Mapping[str, float] = field(default_factory=lambda: {"float32": 40.0, "float16": 10.0})
    overwrite: bool = False
    layout: str = "auto"  # LAYOUTS: "auto" is multifunction where the deployment target loads it


@dataclass(frozen=True)
class KokoroConversionResult:
    folder: Path  # the companion folder: the package(s), manifest.json, README.md
    packages: Mapping[int, Path]  # bucket (text frames) -> package (one multi-function package for all)
    validations: Mapping[int, VocoderValidation]
    seconds: float
    functions: Mapping[int, str] = field(default_factory=dict)  # bucket -> function name (multifunction only)


def check_options(options: KokoroConvertOptions) -> None:
    if options.precision not in ("float16", "float32"):
        raise InvalidConversionOption("precision", options.precision, ["float16", "float32"])
    if options.deployment_target not in package.DEPLOYMENT_TARGETS:
        raise InvalidConversionOption("deployment_target", options.deployment_target, list(package.DEPLOYMENT_TARGETS))
    if options.layout not in LAYOUTS:
        raise InvalidConversionOption("layout", options.layout, list(LAYOUTS))
    if options.layout == "multifunction" and options.deployment_target not in package.MULTIFUNCTION_TARGETS:
        raise InvalidConversionOption(
            "layout", "multifunction", [f"packages, or a deployment target of {package.MULTIFUNCTION_TARGETS}"]
        )
    buckets = list(options.buckets)
    if not buckets or any(int(b) < 2 for b in buckets) or len(set(buckets)) != len(buckets):
        raise InvalidConversionOption("buckets", buckets, ["distinct frame counts >= 2, e.g. 64,128,256,512"])


def load_decoder(model: str | Path) -> tuple[Any, str]:
    """The MLX `Decoder` of a Kokoro folder (a path, or a name in the local model store), and its name."""
    from .. import config
    from ..errors import KokoroError, MlxAudioCoreMLError
    from ..kokoro.config import KokoroConfig
    from ..kokoro.model.decoder import Decoder
    from ..kokoro.weights.folder import load_kokoro_folder

    folder = Path(model)
    if not folder.is_dir():
        folder = config.models_dir() / str(model)
    if not folder.is_dir():
        raise UnsupportedModelForConversion(str(model), f"no Kokoro folder at {model} nor {folder}")
    try:
        weights = load_kokoro_folder(folder)
        decoder = Decoder.from_config(KokoroConfig.from_dict(weights.config))
        decoder.load_state(weights.state)
    except (KokoroError, MlxAudioCoreMLError, KeyError, ValueError) as exc:
        raise UnsupportedModelForConversion(str(model), f"not a Kokoro model this converter builds: {exc}") from exc
    return decoder, folder.name


def decoder_hash(decoder: Any) -> str:
    """sha256 over the decoder's float32 parameters in name order (independent of the weights' file format)."""
    from mlx.utils import tree_flatten

    digest = hashlib.sha256()
    for name, value in sorted(tree_flatten(decoder.parameters()), key=lambda item: item[0]):
        digest.update(name.encode())
        digest.update(np.ascontiguousarray(np.asarray(value, dtype=np.float32)).tobytes())
    return digest.hexdigest()


def convert_kokoro(
    model: str | Path, out_dir: Path, options: KokoroConvertOptions = KokoroConvertOptions(),
    progress: ProgressCallback | None = None,
) -> KokoroConversionResult:  # fmt: skip
    """Convert the Kokoro model `model` (folder or stored name) into `out_dir/<name>-coreml/`."""
    check_options(options)
    _report(progress, ConversionStage.LOADING, 0.0)
    decoder, name = load_decoder(model)
    _report(progress, ConversionStage.LOADING, 1.0)
    return convert_decoder(decoder, name, out_dir, options, progress)


def convert_decoder(
    decoder: Any, name: str, out_dir: Path, options: KokoroConvertOptions = KokoroConvertOptions(),
    progress: ProgressCallback | None = None,
) -> KokoroConversionResult:  # fmt: skip
    """Convert an MLX `Decoder` into `out_dir/<name>-coreml/` (one package per bucket, or one multi-function
    package: `resolved_layout`)."""
    check_options(options)
    started = time.perf_counter()
    buckets = sorted(int(b) for b in options.buckets)
    metadata = _metadata(decoder, name, options, buckets)
    destination = Path(out_dir) / f"{Path(name).name}-coreml"
    multi = resolved_layout(options) == "multifunction"
    functions = {frames: function_name(frames) for frames in buckets} if multi else {}
    validations: dict[int, VocoderValidation] = {}
    with package.staged_output(destination, options.overwrite) as built:
        parts = built / ".buckets" if multi else built  # a multi-function package is made from one per bucket
        parts.mkdir(parents=True, exist_ok=True)
        for index, frames in enumerate(buckets):
            share = (index, len(buckets))
            bucket_metadata = {**metadata, META + "frames": str(frames)}
            _build_bucket(decoder, frames, options, bucket_metadata, parts / package_name(frames), progress, share)
        if multi:
            _report(progress, ConversionStage.SAVING, 1.0)
            description = f"Kokoro vocoder, buckets {metadata[META + 'buckets']} text frames ({options.precision})"
            sources = {functions[b]: parts / package_name(b) for b in buckets}
            package.save_multifunction(
                sources, functions[buckets[-1]], built / MULTIFUNCTION_PACKAGE, metadata, description
            )
            shutil.rmtree(parts)
        for index, frames in enumerate(buckets):
            if options.validate:
                _report(progress, ConversionStage.VALIDATING, index / len(buckets))
                path = built / (MULTIFUNCTION_PACKAGE if multi else package_name(frames))
                floor = options.min_snr_db[options.precision]
                validations[frames] = validate_vocoder_package(
                    path, decoder, frames, floor, function=functions.get(frames)
                )
        _report(progress, ConversionStage.PUBLISHING, 0.0)
        _write_manifest(built, metadata, buckets, validations, functions)
        _report(progress, ConversionStage.PUBLISHING, 1.0)
    packages = {b: destination / (MULTIFUNCTION_PACKAGE if multi else package_name(b)) for b in buckets}
    return KokoroConversionResult(destination, packages, validations, time.perf_counter() - started, functions)


def resolved_layout(options: KokoroConvertOptions) -> str:
    """ "packages" or "multifunction" ("auto": multifunction where the deployment target loads it)."""
    if options.layout != "auto":
        return options.layout
    return "multifunction" if options.deployment_target in package.MULTIFUNCTION_TARGETS else "packages"


def function_name(frames: int) -> str:
    return f"frames_{frames}"


def package_name(frames: int) -> str:
    return f"{PACKAGE_PREFIX}{frames}.mlpackage"


def _metadata(decoder: Any, name: str, options: KokoroConvertOptions, buckets: list[int]) -> dict[str, str]:
    return {
        META + "source_model": name,
        META + "model_kind": "kokoro-vocoder",
        META + "weights_sha256": decoder_hash(decoder),
        META + "precision": options.precision,
        META + "float32_scopes": ",".join(FLOAT32_SCOPES) if options.precision == "float16" else "all",
        META + "buckets": ",".join(str(b) for b in buckets),
        META + "samples_per_frame": str(SAMPLES_PER_FRAME),
        META + "source_noise": "off",
        SAMPLE_RATE_METADATA_KEY: str(SAMPLE_RATE),
        META + "coremltools_version": ct.__version__,
    }


def compute_precision(precision: str) -> Any:
    """float32, or float16 everywhere but the ops of FLOAT32_SCOPES (named `<scope>__<n>`)."""
    if precision == "float32":
        return ct.precision.FLOAT32
    return ct.transform.FP16ComputePrecision(op_selector=lambda op: op.name.split("__")[0] not in FLOAT32_SCOPES)


def _build_bucket(
    decoder: Any, frames: int, options: KokoroConvertOptions, metadata: Mapping[str, str], path: Path,
    progress: ProgressCallback | None, share: tuple[int, int],
) -> None:  # fmt: skip
    index, total = share

    def on(stage: ConversionStage) -> Callable[[float], None]:
        return lambda fraction: _report(progress, stage, (index + fraction) / total)

    try:
        program = build_vocoder_program(decoder, frames, on(ConversionStage.BUILDING))
    except (ValueError, TypeError, AssertionError) as exc:
        raise ConversionFailed("building the MIL program", str(exc), exc) from exc
    scratch = path.parent / f".scratch-{frames}.mlpackage"
    try:
        with package._passes_reported_to(on(ConversionStage.CONVERTING)):
            model = ct.convert(
                program, convert_to="mlprogram", compute_precision=compute_precision(options.precision),
                minimum_deployment_target=package.DEPLOYMENT_TARGETS[options.deployment_target],
                skip_model_load=True, package_dir=str(scratch),
            )  # fmt: skip
    except (ValueError, TypeError, RuntimeError, NotImplementedError, AssertionError) as exc:
        raise ConversionFailed("converting the MIL program", str(exc), exc) from exc
    if not isinstance(model, ct.models.MLModel):  # what convert_to="mlprogram" returns
        raise ConversionFailed("converting the MIL program", f"coremltools returned {type(model).__name__}", None)
    _report(progress, ConversionStage.SAVING, index / total)
    package.write_metadata(model, metadata, f"Kokoro vocoder, {frames} text frames ({options.precision})")
    package.save_model(model, path)
    shutil.rmtree(scratch, ignore_errors=True)


def _write_manifest(
    folder: Path, metadata: Mapping[str, str], buckets: list[int], validations: Mapping[int, VocoderValidation],
    functions: Mapping[int, str],
) -> None:  # fmt: skip
    from .companion import file_hashes

    lines = [f"# {metadata[META + 'source_model']} vocoder for Core ML", "", "Buckets (text frames): "
             + ", ".join(str(b) for b in buckets), f"Precision: {metadata[META + 'precision']}", ""]  # fmt: skip
    for frames, report in sorted(validations.items()):
        lines.append(f"- {frames} frames: portable runtime vs MLX, SNR {report.snr_db:.1f} dB on {report.chunk_frames}")
    (folder / "README.md").write_text("\n".join(lines) + "\n", encoding="utf-8")
    manifest = {
        "format": "mlx-audio-coreml-companion",
        "version": 1,
        "source": {"model": metadata[META + "source_model"], "weights_sha256": metadata[META + "weights_sha256"]},
        "components": {
            "vocoder": {
                **_manifest_layout(buckets, functions),
                "precision": metadata[META + "precision"],
                "sample_rate": int(metadata[SAMPLE_RATE_METADATA_KEY]),
            },
        },  # fmt: skip
        "validation": {str(b): v.as_dict() for b, v in validations.items()},
        "files": file_hashes(folder),
    }
    (folder / MANIFEST_NAME).write_text(json.dumps(manifest, indent=2) + "\n", encoding="utf-8")


def _manifest_layout(buckets: list[int], functions: Mapping[int, str]) -> dict[str, Any]:
    """`path` is what a companion lookup finds (store/sources.py); `packages` all load (loading/packages.py);
    `functions` name a multi-function package's buckets."""
    if functions:
        return {"path": MULTIFUNCTION_PACKAGE, "functions": {str(b): functions[b] for b in buckets}}
    return {"path": package_name(buckets[0]), "packages": {str(b): package_name(b) for b in buckets}}


def _report(progress: ProgressCallback | None, stage: ConversionStage, fraction: float) -> None:
    if progress is not None:
        progress(stage, min(max(fraction, 0.0), 1.0))
