"""The `apple` Core ML runtime: Core ML itself, through the Swift shim (native/).

macOS 13+ on Apple silicon. Elsewhere `availability()` says why not ("Core ML is not available on
Linux ...", or "native: not built" when the shim is absent). A load compiles the package once into
a stable cache folder (Core ML keys its device specialization on that path), then loads and
prewarms it as a native background job, polled here so `timeout_s`, `cancel` and Ctrl-C act within
one poll (native.POLL_INTERVAL_S). On timeout or cancel the native work is abandoned, not stopped
(Core ML cannot stop a compile); a later load of the same package while it still runs adopts it.

`AppleRuntime(library_path=...)` runs over another build of the shim, e.g. the test-only stand-in
(build/standin/libmacb_standin.so), which executes no model and proves nothing about Core ML.

`load(..., function=NAME)` loads one function of a multi-function package: the package compiles once
(one cache folder for all its functions) and the shim sets MLModelConfiguration.functionName, which
needs macOS 15 / iOS 18 (CoreMLRuntimeUnavailable before). That Swift path is WRITTEN BLIND: no Mac
ran it in this project; on Linux only the stand-in exercises the shim's logic around it.
"""

from __future__ import annotations

import hashlib
import os
import time
from collections.abc import Mapping
from pathlib import Path
from typing import Any, ClassVar

import numpy as np

from .. import config, native
from ..cancel import CancelToken
from ..errors import (
    ANECompilationCancelled,
    ANECompilationTimeout,
    ANENotAvailable,
    CoreMLRuntimeUnavailable,
    MlxAudioCoreMLError,
    NativeLibraryUnavailable,
    PackageError,
    UnknownFunction,
)
from .runtime import Availability, ComputeUnits, LoadStage, PredictResult, StageCallback

_NEURAL_ENGINE_UNITS = (ComputeUnits.ALL, ComputeUnits.CPU_AND_NEURAL_ENGINE)


def default_cache_dir() -> Path:
    """$MLX_AUDIO_COREML_HOME/compiled (default ~/.cache/mlx-audio-coreml/compiled)."""
    return config.compiled_dir()


def compiled_cache_path(package: Path, cache_dir: Path) -> Path | None:
    """Where the compiled form of `package` is kept: one folder per package path and content
    (names, sizes and modification times of its files). None for an already compiled .mlmodelc."""
    package = package.resolve()
    if package.suffix == ".mlmodelc":
        return None
    digest = hashlib.sha256(str(package).encode())
    files = sorted(p for p in package.rglob("*") if p.is_file()) if package.is_dir() else [package]
    for path in files:
        stat = path.stat()
        digest.update(f"\0{path.relative_to(package.parent)}\0{stat.st_size}\0{stat.st_mtime_ns}".encode())
    return cache_dir / f"{package.stem}-{digest.hexdigest()[:16]}.mlmodelc"


class AppleModel:
    """A model loaded by Core ML (coreml.runtime.LoadedModel)."""

    def __init__(self, model: native.NativeModel, *, neural_engine_compiled: bool, state: native.JobState) -> None:
        self._model = model
        self.description = model.description
        # Core ML does not say where it placed the work: this is True when the Neural Engine was
        # present and requested, and the load and its prewarm prediction completed.
        self.neural_engine_compiled = neural_engine_compiled
        self.used_compiled_cache = state.used_compiled_cache
        self.adopted = state.adopted
        self.load_seconds = state.elapsed_s

    def predict(self, inputs: Mapping[str, Any], outputs: Mapping[str, np.ndarray] | None = None) -> PredictResult:
        return self._model.predict(inputs, outputs)

    def info(self) -> native.ModelInfo:
        return self._model.info()

    def close(self) -> None:
        self._model.close()


class AppleRuntime:
    """Core ML through the shim; `library_path` selects another build (the test-only stand-in)."""

    name: ClassVar[str] = "apple"
    claims_neural_engine: ClassVar[bool] = True

    def __init__(
        self, library_path: str | os.PathLike[str] | None = None, cache_dir: str | os.PathLike[str] | None = None
    ) -> None:
        self.library_path = library_path
        self.cache_dir = Path(cache_dir) if cache_dir is not None else default_cache_dir()

    @classmethod
    def availability(cls, library_path: str | os.PathLike[str] | None = None) -> Availability:
        status = native.library_status(library_path)
        if not status.loaded:
            return Availability(False, f"native: {status.state} ({status.detail})")
        facts = native.runtime_facts(library_path)
        if not facts.coreml_available:
            return Availability(False, facts.note)
        if facts.is_standin:
            return Availability(True, "test-only stand-in: executes no model, proves nothing about Core ML")
        return Availability(True)

    def load(
        self,
        package: Path,
        compute_units: ComputeUnits = ComputeUnits.ALL,
        *,
        timeout_s: float | None = None,
        cancel: CancelToken | None = None,
        on_stage: StageCallback | None = None,
        function: str | None = None,
    ) -> AppleModel:
        """Compile (once per package content), load and prewarm (function `function` of a multi-function
        package; None: its default). Raises ANECompilationTimeout, ANECompilationCancelled, ModelLoadFailed,
        PackageError, UnknownFunction or CoreMLRuntimeUnavailable. `on_stage` is called on this thread with
        each stage; FAILED after a timeout, CANCELLED after a cancel."""
        lib = self._library()
        facts = lib.runtime_facts()
        if not facts.coreml_available:
            raise CoreMLRuntimeUnavailable(self.name, facts.note)
        if ComputeUnits(compute_units) == ComputeUnits.CPU_AND_NEURAL_ENGINE and not facts.neural_engine_available:
            # asked for the Neural Engine alone: without one Core ML would quietly run on the CPU
            raise ANENotAvailable("ANE not supported: CPU_AND_NEURAL_ENGINE was requested on a machine without one")
        package = Path(package)
        if not package.exists():
            raise PackageError(str(package), "does not exist")
        job = lib.begin_load(
            package, compiled_cache_path(package, self.cache_dir), ComputeUnits(compute_units), function=function
        )
        try:
            _wait(job, timeout_s, cancel, on_stage)
            state = job.state()
            model = job.take_model()
        except UnknownFunction as exc:
            listed = _listed_functions(package)
            if listed is None:
                raise
            raise UnknownFunction(exc.path, exc.function, listed, exc.detail) from exc
        finally:
            job.close()
        engine = bool(facts.neural_engine_available) and ComputeUnits(compute_units) in _NEURAL_ENGINE_UNITS
        return AppleModel(model, neural_engine_compiled=engine, state=state)

    def _library(self) -> native.NativeLibrary:
        try:
            return native.library(self.library_path)
        except NativeLibraryUnavailable as exc:
            raise CoreMLRuntimeUnavailable(self.name, f"native: {exc.reason}") from exc


def _listed_functions(package: Path) -> tuple[str, ...] | None:
    """The shim names a model's functions only in words; a readable .mlpackage lists them as data.
    None for what Python cannot read (a compiled .mlmodelc, the test-only stand-in's packages)."""
    if not (package / "Manifest.json").is_file():
        return None
    from .portable.package import function_names  # protobuf parsing, only on this rare path

    try:
        return function_names(package)
    except PackageError:
        return None


def _wait(
    job: native.LoadJob, timeout_s: float | None, cancel: CancelToken | None, on_stage: StageCallback | None
) -> None:
    """Polls the job until ready; reports stages on this thread; abandons it on timeout or cancel."""
    deadline = None if timeout_s is None else time.monotonic() + timeout_s

    def report(*extra: LoadStage) -> None:
        for stage in [*job.stages(), *extra]:
            if on_stage is not None:
                on_stage(stage)

    while True:
        report()
        if cancel is not None and cancel.cancelled:
            job.cancel()
            report(LoadStage.CANCELLED)
            raise ANECompilationCancelled(job.last_stage.value)
        remaining = None if deadline is None else deadline - time.monotonic()
        if remaining is not None and remaining <= 0:
            job.cancel()
            report(LoadStage.FAILED)
            raise ANECompilationTimeout(float(timeout_s or 0.0), job.last_stage.value)
        try:
            ready = job.wait(native.POLL_INTERVAL_S if remaining is None else min(native.POLL_INTERVAL_S, remaining))
        except MlxAudioCoreMLError:
            report()  # the native FAILED stage, then the failure itself
            raise
        if ready:
            report()
            return
