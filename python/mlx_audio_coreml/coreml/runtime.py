"""The one interface every Core ML runtime implements: apple (the shim), coremltools, portable.

A runtime turns a package path into a `LoadedModel`; the model describes its tensors and predicts
from named numpy/MLX arrays, optionally into caller-owned output buffers. A stateful model (Core ML's
iOS18 states, e.g. a KV cache kept between predictions) also lists its states in the description and
is a `StatefulModel`: `make_state()` gives a fresh `ModelState` that `predict(..., state=...)` reads
and updates in place, as Core ML's `MLModel.makeState()` / `prediction(from:using:)` do.
A multi-function package (one ML Program, several functions sharing weights) loads one function per
`load(..., function=NAME)`, as `MLModelConfiguration.functionName` selects one (macOS 15 / iOS 18).
"""

from __future__ import annotations

import enum
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, ClassVar, Protocol, runtime_checkable

import numpy as np

from ..cancel import CancelToken
from ..options import ComputeUnits as ComputeUnits  # defined with the options; re-exported for runtimes


class LoadStage(enum.Enum):
    """Where a load job is; reported through the stage callback and by polling."""

    QUEUED = "queued"
    COMPILING = "compiling"  # .mlpackage -> .mlmodelc
    LOADING = "loading"  # MLModel(contentsOf:): device specialization happens here
    PREWARMING = "prewarming"  # one prediction on zeros, to surface a failed ANE compile early
    READY = "ready"
    FAILED = "failed"
    CANCELLED = "cancelled"


@dataclass(frozen=True)
class TensorSpec:
    name: str
    dtype: str  # numpy dtype name: "float32", "float16", "float64", "int32"
    shape: tuple[int, ...]


@dataclass(frozen=True)
class ModelDescription:
    inputs: tuple[TensorSpec, ...]
    outputs: tuple[TensorSpec, ...]
    metadata: Mapping[str, str] = field(default_factory=dict)
    states: tuple[TensorSpec, ...] = ()  # a stateful model's states (never among the inputs)

    def input(self, name: str) -> TensorSpec | None:
        return next((t for t in self.inputs if t.name == name), None)

    def output(self, name: str) -> TensorSpec | None:
        return next((t for t in self.outputs if t.name == name), None)

    def state(self, name: str) -> TensorSpec | None:
        return next((t for t in self.states if t.name == name), None)


@dataclass(frozen=True)
class Availability:
    available: bool
    reason: str = ""  # why not, in words fit for `info` and for CoreMLUnavailable events


@dataclass(frozen=True)
class PredictResult:
    outputs: Mapping[str, np.ndarray]  # every output, caller buffers included
    written_in_place: frozenset[str] = frozenset()  # outputs the runtime wrote straight into caller buffers
    input_copies: frozenset[str] = frozenset()  # inputs that needed a conversion copy (dtype/layout)


StageCallback = Callable[[LoadStage], None]


@runtime_checkable
class LoadedModel(Protocol):
    description: ModelDescription
    neural_engine_compiled: bool  # True only when a Neural Engine compile really completed

    def predict(
        self,
        inputs: Mapping[str, Any],
        outputs: Mapping[str, np.ndarray] | None = None,
        *,
        state: ModelState | None = None,  # stateful models only; runtimes without states may omit it
    ) -> PredictResult: ...

    def close(self) -> None: ...


@runtime_checkable
class ModelState(Protocol):
    """The states of one stateful model, made by its `make_state()`; predictions update it in place."""

    def read_state(self, name: str) -> np.ndarray: ...

    def write_state(self, name: str, value: Any) -> None: ...


@runtime_checkable
class StatefulModel(LoadedModel, Protocol):
    """A LoadedModel whose description lists states. Predicting without a state from its own
    `make_state()` raises StateRequired / StateMismatch."""

    def make_state(self) -> ModelState: ...


@runtime_checkable
class CoreMLRuntime(Protocol):
    name: ClassVar[str]  # "apple" | "coremltools" | "portable"
    claims_neural_engine: ClassVar[bool]

    @classmethod
    def availability(cls) -> Availability: ...

    def load(
        self,
        package: Path,
        compute_units: ComputeUnits = ComputeUnits.ALL,
        *,
        timeout_s: float | None = None,
        cancel: CancelToken | None = None,
        on_stage: StageCallback | None = None,
        function: str | None = None,
    ) -> LoadedModel:
        """Compile (if needed) and load. `function` picks one function of a multi-function package
        (Core ML specification 9, e.g. one vocoder frame bucket); None loads its default function.
        Raises ANECompilationTimeout, ANECompilationCancelled, ModelLoadFailed, CoreMLRuntimeUnavailable,
        PackageError, or UnknownFunction (a PackageError) for a function the package lacks."""
        ...
