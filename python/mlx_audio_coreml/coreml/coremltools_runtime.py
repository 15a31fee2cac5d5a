"""The `coremltools` runtime: Core ML through coremltools' `MLModel.predict`. macOS only.

It is the baseline the Swift shim is measured against: every predict goes through coremltools'
dictionary API, so inputs are copied into new MLMultiArrays and outputs come back as new numpy
arrays that are then copied into the caller's buffers (`written_in_place` is always empty).

coremltools can build and read packages on Linux but cannot run predictions there, so on Linux
`availability()` says so and nothing here loads. The load/predict path is written from
coremltools' documentation and has NOT run on a Mac in this project; the description parsing
(`describe_spec`) is shared with Linux and tested there. A multi-function package loads one function
(`load(..., function=NAME)`, coremltools' `MLModel(..., function_name=NAME)`); the function is checked
against the package's spec before coremltools compiles anything (UnknownFunction), on any OS.
"""

from __future__ import annotations

import platform
from collections.abc import Mapping
from pathlib import Path
from typing import Any, ClassVar

import numpy as np

from ..cancel import CancelToken
from ..errors import (
    ANECompilationCancelled,
    CoreMLRuntimeUnavailable,
    ModelLoadFailed,
    PackageError,
    PredictionFailed,
    UnknownFunction,
)
from ..loading.deadline import run_with_deadline
from .runtime import (
    Availability,
    ComputeUnits,
    LoadStage,
    ModelDescription,
    PredictResult,
    StageCallback,
    TensorSpec,
)
from .validation import check_buffers, checked_inputs

# Core ML's ArrayFeatureType.ArrayDataType raw values (FeatureTypes.proto).
_ARRAY_DTYPES = {65568: "float32", 65552: "float16", 65600: "float64", 131104: "int32"}


def describe_spec(
    spec: Any, metadata: Mapping[str, str] | None = None, *, function: str | None = None, path: str = ""
) -> ModelDescription:
    """A ModelDescription from a Core ML model spec (the protobuf coremltools reads from a package): of
    function `function` of a multi-function spec (None: its default function). UnknownFunction, naming
    `path`, for a function the spec lacks."""

    def tensor(feature: Any) -> TensorSpec:
        if feature.type.WhichOneof("Type") != "multiArrayType":
            raise PackageError(feature.name, "only multi-array inputs and outputs are supported")
        array = feature.type.multiArrayType
        dtype = _ARRAY_DTYPES.get(int(array.dataType))
        if dtype is None:
            raise PackageError(feature.name, f"unsupported multi-array data type {array.dataType}")
        return TensorSpec(feature.name, dtype, tuple(int(d) for d in array.shape))

    user = dict(metadata) if metadata is not None else dict(spec.description.metadata.userDefined)
    described = _function_description(spec, function, path)
    return ModelDescription(
        inputs=tuple(tensor(f) for f in described.input),
        outputs=tuple(tensor(f) for f in described.output),
        metadata=user,
    )


def _function_description(spec: Any, function: str | None, path: str) -> Any:
    """The description holding the tensors of `function`: one of `spec.description.functions` for a
    multi-function spec (specification 9), else the model's own (whose one function is 'main')."""
    functions = list(spec.description.functions)
    if not functions:
        if function not in (None, "main"):
            raise UnknownFunction(path, function, ("main",))
        return spec.description
    wanted = function or spec.description.defaultFunctionName
    found = next((f for f in functions if f.name == wanted), None)
    if found is None:
        raise UnknownFunction(path, wanted, [f.name for f in functions])
    return found


class CoremltoolsLoadedModel:
    """A model loaded by coremltools; predict copies in and out (see the module docstring)."""

    neural_engine_compiled = False  # coremltools does not say where Core ML placed the model

    def __init__(self, mlmodel: Any, description: ModelDescription) -> None:
        self._mlmodel = mlmodel
        self.description = description

    def predict(self, inputs: Mapping[str, Any], outputs: Mapping[str, np.ndarray] | None = None) -> PredictResult:
        if self._mlmodel is None:
            raise PredictionFailed("the model was closed")
        feed, copies = _checked_inputs(self.description, inputs)
        buffers = dict(outputs or {})
        check_buffers(self.description, buffers, strict=False)  # copied in with casting below
        try:
            produced = self._mlmodel.predict(feed)
        except Exception as exc:
            raise PredictionFailed(str(exc)) from exc
        results: dict[str, np.ndarray] = {}
        for spec in self.description.outputs:
            value = np.asarray(produced[spec.name]).reshape(spec.shape)
            if spec.name in buffers:
                np.copyto(buffers[spec.name], value, casting="same_kind")
                value = buffers[spec.name]
            results[spec.name] = value
        return PredictResult(results, frozenset(), frozenset(copies))

    def close(self) -> None:
        self._mlmodel = None


class CoremltoolsRuntime:
    name: ClassVar[str] = "coremltools"
    claims_neural_engine: ClassVar[bool] = True

    @classmethod
    def availability(cls) -> Availability:
        if platform.system() != "Darwin":
            return Availability(
                False, f"coremltools runs Core ML predictions only on macOS (this is {platform.system()})"
            )
        try:
            import coremltools  # noqa: F401
        except ImportError as exc:
            return Availability(False, f"coremltools is not installed ({exc}); pip install coremltools")
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
    ) -> CoremltoolsLoadedModel:
        """Compile and load in-process (function `function` of a multi-function package; None: its
        default). coremltools cannot be interrupted: on timeout or cancel this returns at once and the
        load finishes in the background, its result dropped. UnknownFunction before any compile."""
        package = Path(package)
        if not package.exists():
            raise ModelLoadFailed(str(package), "no such package")
        if package.suffix == ".mlmodelc":
            raise PackageError(
                str(package), "the coremltools runtime needs a .mlpackage or .mlmodel, not a compiled .mlmodelc"
            )
        if cancel is not None and cancel.cancelled:
            raise ANECompilationCancelled(LoadStage.QUEUED.value)
        if on_stage is not None:
            on_stage(LoadStage.LOADING)

        def load(token: CancelToken) -> CoremltoolsLoadedModel:
            import coremltools as ct

            try:
                spec: Any = ct.utils.load_spec(str(package))  # a generated protobuf Model
            except Exception as exc:
                raise PackageError(str(package), f"cannot read the model spec: {exc}") from exc
            description = describe_spec(spec, function=function, path=str(package))  # before compiling
            if function is not None and len(spec.description.functions) and _macos() < (15,):
                raise CoreMLRuntimeUnavailable(
                    self.name, f"function '{function}': loading one function of a package needs macOS 15"
                )
            try:
                mlmodel = ct.models.MLModel(
                    str(package), compute_units=_compute_unit(ct, compute_units), function_name=function
                )
            except Exception as exc:
                raise ModelLoadFailed(str(package), str(exc)) from exc
            return CoremltoolsLoadedModel(mlmodel, description)

        model = run_with_deadline(
            load, timeout_s=timeout_s or float("inf"), cancel=cancel, stage=lambda: LoadStage.LOADING.value,
            dispose=lambda m: m.close(), name=f"coremltools-load:{package.name}",
        )  # fmt: skip
        if on_stage is not None:
            on_stage(LoadStage.READY)
        return model


def _macos() -> tuple[int, ...]:
    """This Mac's macOS version, () elsewhere."""
    return tuple(int(part) for part in platform.mac_ver()[0].split(".") if part.isdigit())


def _compute_unit(ct: Any, units: ComputeUnits) -> Any:
    return {
        ComputeUnits.CPU_ONLY: ct.ComputeUnit.CPU_ONLY,
        ComputeUnits.CPU_AND_GPU: ct.ComputeUnit.CPU_AND_GPU,
        ComputeUnits.ALL: ct.ComputeUnit.ALL,
        ComputeUnits.CPU_AND_NEURAL_ENGINE: ct.ComputeUnit.CPU_AND_NE,
    }[ComputeUnits(units)]


def _checked_inputs(
    description: ModelDescription, inputs: Mapping[str, Any]
) -> tuple[dict[str, np.ndarray], list[str]]:
    """Validate names, shapes and dtypes before anything reaches Core ML; convert dtype if needed."""
    feed, copies = {}, []
    for spec, value in checked_inputs(description, inputs, convert_same_kind=True):
        array = np.asarray(value)
        if array.dtype != np.dtype(spec.dtype):  # same kind, another width: Core ML wants the spec's
            array = array.astype(spec.dtype)
            copies.append(spec.name)
        feed[spec.name] = array
    return feed, copies
