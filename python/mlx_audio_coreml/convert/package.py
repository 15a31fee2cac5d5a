"""Turn a MIL program into a saved .mlpackage: coremltools' passes, metadata, and an atomic write.

Nothing is ever half-written at the destination: everything is built inside a staging folder
beside it (same filesystem, so the final rename is atomic) and the staging folder is removed on
success and on any failure, interrupts included.
"""

from __future__ import annotations

import contextlib
import threading
from collections.abc import Callable, Iterable, Iterator, Mapping
from pathlib import Path
from typing import Any, cast

import coremltools as ct
from coremltools.converters.mil.mil import Program
from coremltools.converters.mil.mil.passes import pass_pipeline as _pass_pipeline

from ..errors import ConversionDestinationExists, ConversionFailed
from ..store.staging import staged_path

PRECISIONS: Mapping[str, Any] = {"float16": ct.precision.FLOAT16, "float32": ct.precision.FLOAT32}

# macOS 13 / iOS 16 is the first with float16 model inputs and outputs, and what the shim needs.
DEPLOYMENT_TARGETS: Mapping[str, Any] = {
    "macOS13": ct.target.macOS13,
    "macOS14": ct.target.macOS14,
    "macOS15": ct.target.macOS15,
    "iOS16": ct.target.iOS16,
    "iOS17": ct.target.iOS17,
    "iOS18": ct.target.iOS18,
}

# A package with several functions is Core ML specification 9: macOS 15 / iOS 18 load it, no earlier OS.
MULTIFUNCTION_TARGETS = ("macOS15", "iOS18")

FractionCallback = Callable[[float], None]


def convert_program(
    program: Program,
    precision: str,
    deployment_target: str,
    package_dir: Path,
    on_fraction: FractionCallback | None = None,
) -> ct.models.MLModel:
    """Run coremltools' pass pipelines on `program` and write the package to `package_dir`.

    `on_fraction` sees the share of graph passes done; coremltools' own progress bars are not drawn.
    """
    try:
        with _passes_reported_to(on_fraction):
            # ct.convert returns a Program or an MLModel by `convert_to`; mlprogram gives an MLModel
            model = ct.convert(
                program,
                convert_to="mlprogram",
                minimum_deployment_target=DEPLOYMENT_TARGETS[deployment_target],
                compute_precision=PRECISIONS[precision],
                skip_model_load=True,  # loading needs Core ML (macOS); the package is checked elsewhere
                package_dir=str(package_dir),
            )
            return cast("ct.models.MLModel", model)
    except (ValueError, TypeError, RuntimeError, NotImplementedError, AssertionError) as exc:
        raise ConversionFailed("converting the MIL program", str(exc), exc) from exc


def write_metadata(model: ct.models.MLModel, metadata: Mapping[str, str], short_description: str) -> None:
    """Record our metadata in the package's user-defined metadata (kept beside coremltools' own keys)."""
    for key, value in metadata.items():
        model.user_defined_metadata[key] = str(value)
    model.short_description = short_description


def save_model(model: ct.models.MLModel, destination: Path) -> None:
    try:
        model.save(str(destination))
    except OSError as exc:
        raise ConversionFailed("saving the package", str(exc), exc) from exc


def save_multifunction(
    functions: Mapping[str, Path], default: str, destination: Path, metadata: Mapping[str, str], short_description: str
) -> None:
    """One package at `destination` whose function `name` is the `main` of package `functions[name]`.

    coremltools deduplicates equal constants across functions, so weights the functions share are
    stored once in weights/weight.bin. Our metadata is written into the new spec (coremltools does
    not carry the sources' user-defined metadata over).
    """
    from coremltools.proto import Model_pb2

    descriptor = ct.utils.MultiFunctionDescriptor()
    for name, path in functions.items():
        descriptor.add_function(str(path), "main", name)
    descriptor.default_function_name = default
    try:
        ct.utils.save_multifunction(descriptor, str(destination))
        spec_path = destination / "Data" / "com.apple.CoreML" / "model.mlmodel"
        spec: Any = Model_pb2.Model()  # generated protobuf class: pyright sees its fields only with stubs
        spec.ParseFromString(spec_path.read_bytes())
        for key, value in metadata.items():
            spec.description.metadata.userDefined[key] = str(value)
        spec.description.metadata.shortDescription = short_description
        spec_path.write_bytes(spec.SerializeToString())
    except (OSError, ValueError, KeyError, RuntimeError) as exc:
        raise ConversionFailed("saving the multi-function package", str(exc), exc) from exc


@contextlib.contextmanager
def staged_output(destination: Path, overwrite: bool = False) -> Iterator[Path]:
    """Yield a path to build `destination` at; move it into place only if the block succeeds.

    The staging folder lives beside the destination; it is removed whatever happens. With
    `overwrite`, an existing destination is swapped out only after the new one is complete.
    """
    destination = Path(destination)
    if destination.exists() and not overwrite:
        raise ConversionDestinationExists(str(destination))
    with staged_path(destination, overwrite=True) as built:
        yield built
        if not built.exists():
            raise ConversionFailed("finishing", f"nothing was built for {destination}")


_PATCH_LOCK = threading.Lock()
_PIPELINES_PER_CONVERT = 3


@contextlib.contextmanager
def _passes_reported_to(on_fraction: FractionCallback | None) -> Iterator[None]:
    """Swap the progress bar coremltools draws around its pass loop for our callback.

    coremltools iterates its graph passes through `tqdm(...)` in pass_pipeline.py, printing to
    stderr; a library must not draw. The swap is process-wide, so conversions take turns here.
    """
    original = getattr(_pass_pipeline, "tqdm", None)
    if original is None:  # another coremltools layout: convert without fine-grained progress
        yield
        return
    pipelines_started = [0]

    def quiet_progress(passes: Iterable[Any], *args: Any, **kwargs: Any) -> Iterator[Any]:
        # ct.convert runs three pipelines in turn (frontend, default, backend): a third each
        passes = list(passes)
        first = min(pipelines_started[0], _PIPELINES_PER_CONVERT - 1)
        pipelines_started[0] += 1
        for index, graph_pass in enumerate(passes):
            yield graph_pass
            if on_fraction is not None:
                on_fraction((first + (index + 1) / len(passes)) / _PIPELINES_PER_CONVERT)

    with _PATCH_LOCK:
        _pass_pipeline.tqdm = quiet_progress
        try:
            yield
        finally:
            _pass_pipeline.tqdm = original
