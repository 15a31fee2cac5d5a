"""The `portable` Core ML runtime: load a .mlpackage (or a compiled .mlmodelc) and predict with MLX.

There is no compile step and no Neural Engine: `load` parses the package, checks every op is
supported (UnsupportedOp otherwise), folds constants and applies the exact load-time rewrites
(fuse.py, layout.py; `PortableRuntime(optimize=False)` runs the program as written); `predict` validates the tensors against
the description (typed errors, nothing written on failure), runs the program (mx.compile'd where
possible: not on the CPU when its softmax/GELU/attention go through numpy, see ops/host.py) and
copies outputs into caller buffers when given. CPU_ONLY runs on MLX's CPU device;
other compute units use MLX's default device (the GPU where there is one).
A stateful model (iOS18 states) gives `make_state()`; each prediction then takes `state=` and
updates it in place once the prediction has succeeded.
"""

from __future__ import annotations

import threading
from collections.abc import Mapping
from pathlib import Path
from typing import Any, ClassVar

import mlx.core as mx
import numpy as np

from ...cancel import CancelToken
from ...errors import (
    ANECompilationCancelled,
    ModelLoadFailed,
    PackageError,
    PredictionFailed,
    StateMismatch,
    StateRequired,
    TensorDtypeMismatch,
    TensorShapeMismatch,
)
from ..runtime import (
    Availability,
    ComputeUnits,
    LoadStage,
    ModelDescription,
    PredictResult,
    StageCallback,
    TensorSpec,
)
from ..validation import check_buffers, checked_inputs
from .ops import host
from .package import read_model
from .program import Executor, Program
from .state import PortableState
from .values import mx_dtype

# MLX keeps freed buffers for reuse up to a cache limit (32 MiB on the CPU here). An eager tiny.en
# window frees more than that between its layers, and every buffer made anew after that costs page
# faults: ~280 ms per window with the default, 269 ms with 128 MiB (measured here, 0 faults).
_EAGER_CACHE_BYTES = 128 << 20


def _keep_buffers_cached(at_least: int) -> None:
    """Raise MLX's process-wide buffer cache limit to `at_least` bytes; never lower it."""
    previous = mx.set_cache_limit(at_least)
    if previous > at_least:
        mx.set_cache_limit(previous)


class PortableModel:
    """A loaded package. Predictions are serialized by a lock (one MLX graph per model at a time)."""

    neural_engine_compiled: bool = False

    def __init__(
        self, program: Program, description: ModelDescription, device: mx.Device | mx.DeviceType, compile: bool = True
    ):
        self.description = description
        self.program = program
        self.device = device
        compile = compile and not host.wanted(program.block.nodes, device)  # host math runs eagerly
        if not compile and device == mx.cpu:
            _keep_buffers_cached(_EAGER_CACHE_BYTES)
        self._executor: Executor | None = Executor(program, compile=compile)
        self._lock = threading.Lock()
        if set(program.state_names) != {spec.name for spec in description.states}:
            raise PackageError(
                str(program.path),
                f"the program's states {list(program.state_names)} are not "
                f"the description's {[spec.name for spec in description.states]}",
            )

    @property
    def compiled(self) -> bool:
        """Whether predictions run through mx.compile (False after a fallback to eager execution)."""
        return self._executor is not None and self._executor.compiled

    def make_state(self) -> PortableState:
        """A fresh, zero-filled state for `predict(..., state=...)` (Core ML's `makeState()`)."""
        if not self.description.states:
            raise StateMismatch("the model has no states")
        return PortableState(self, self.description.states)

    def predict(
        self,
        inputs: Mapping[str, Any],
        outputs: Mapping[str, np.ndarray] | None = None,
        *,
        state: PortableState | None = None,
    ) -> PredictResult:
        feeds, copies = self._validated_inputs(inputs)
        buffers = dict(outputs or {})
        check_buffers(self.description, buffers)
        with self._lock:
            feeds.update(self._state_feeds(state))
            if self._executor is None:
                raise PredictionFailed("the model is closed")
            try:
                with mx.stream(self.device):
                    values = self._executor(feeds)
                    mx.eval(values)
            except (TensorShapeMismatch, TensorDtypeMismatch):
                raise
            except Exception as exc:  # an op failing on these inputs: report, never return garbage
                raise PredictionFailed(f"{type(exc).__name__}: {exc}") from exc
            count = len(self.program.output_names)
            result = self._collect(dict(zip(self.program.output_names, values[:count])), buffers, copies)
            self._store_state(state, values[count:])
        return result

    def predict_mlx(self, inputs: Mapping[str, Any], *, state: PortableState | None = None) -> dict[str, mx.array]:
        """Outputs as MLX arrays, left lazy (no copy to numpy): for callers that stay in MLX.
        The state, if any, is updated with lazy values too."""
        feeds, _ = self._validated_inputs(inputs)
        with self._lock:
            feeds.update(self._state_feeds(state))
            if self._executor is None:
                raise PredictionFailed("the model is closed")
            with mx.stream(self.device):
                values = self._executor(feeds)
            self._store_state(state, values[len(self.program.output_names) :])
        return {
            spec.name: _as_spec_dtype(values[self._output_index(spec.name)], spec) for spec in self.description.outputs
        }

    def close(self) -> None:
        """Predictions fail from now on; the program's weights are let go (shared ones live on while
        another loaded model holds them)."""
        with self._lock:
            self._executor = None
            self.program.release()

    # --- validation -------------------------------------------------------------------------------

    def _state_feeds(self, state: PortableState | None) -> dict[str, mx.array]:
        """The state's arrays as program inputs; a typed error when the state cannot serve this model."""
        if not self.description.states:
            if state is not None:
                raise StateMismatch("the model has no states")
            return {}
        if state is None:
            raise StateRequired([spec.name for spec in self.description.states])
        if not isinstance(state, PortableState):
            raise StateMismatch(f"expected a state from this model's make_state(), got {type(state).__name__}")
        state.check_owner(self)
        return state.values()

    def _store_state(self, state: PortableState | None, values: list[mx.array]) -> None:
        if state is not None:
            state.update(dict(zip(self.program.state_names, values)))

    def _validated_inputs(self, inputs: Mapping[str, Any]) -> tuple[dict[str, mx.array], frozenset[str]]:
        feeds: dict[str, mx.array] = {}
        copies = set()
        for spec, value in checked_inputs(self.description, inputs):
            if isinstance(value, np.ndarray) and not value.flags.c_contiguous:
                copies.add(spec.name)
            array = value if isinstance(value, mx.array) else mx.array(value)
            if array.dtype == mx.float64:  # Core ML computes double inputs as float32
                array = array.astype(mx.float32)
                copies.add(spec.name)
            feeds[spec.name] = array
        return feeds, frozenset(copies)

    def _output_index(self, name: str) -> int:
        return self.program.output_names.index(name)

    def _collect(
        self, values: dict[str, mx.array], buffers: dict[str, np.ndarray], copies: frozenset[str]
    ) -> PredictResult:
        results: dict[str, np.ndarray] = {}
        for spec in self.description.outputs:
            array = np.asarray(_as_spec_dtype(values[spec.name], spec))
            if tuple(array.shape) != spec.shape and -1 not in spec.shape and spec.shape:
                raise PredictionFailed(
                    f"output '{spec.name}' came out {list(array.shape)}, declared {list(spec.shape)}"
                )
            if spec.name in buffers:
                np.copyto(buffers[spec.name], array.reshape(buffers[spec.name].shape))
                array = buffers[spec.name]
            results[spec.name] = array
        return PredictResult(results, frozenset(buffers), copies)


def _as_spec_dtype(value: mx.array, spec: TensorSpec) -> mx.array:
    wanted = mx_dtype(spec.dtype)
    return value if value.dtype == wanted else value.astype(wanted)


class PortableRuntime:
    """Core ML packages executed by MLX. Never claims a Neural Engine."""

    name: ClassVar[str] = "portable"
    claims_neural_engine: ClassVar[bool] = False

    def __init__(self, compile: bool = True, optimize: bool = True) -> None:
        self.compile = compile
        self.optimize = optimize  # the load-time rewrites (attention fusion, channels-last layout)

    @classmethod
    def availability(cls) -> Availability:
        return Availability(True)  # this module imported MLX, so MLX runs here

    def load(
        self,
        package: Path,
        compute_units: ComputeUnits = ComputeUnits.ALL,
        *,
        timeout_s: float | None = None,
        cancel: CancelToken | None = None,
        on_stage: StageCallback | None = None,
        function: str | None = None,
    ) -> PortableModel:
        """Parse and prepare the package (its function `function`, for a multi-function package). `timeout_s`
        is not applied: there is no compile to wait for and parsing cannot be interrupted part way;
        `cancel` is honoured before the work starts."""
        del timeout_s
        stage = on_stage or (lambda _stage: None)
        if cancel is not None and cancel.cancelled:
            stage(LoadStage.CANCELLED)
            raise ANECompilationCancelled(LoadStage.QUEUED.value)
        try:
            stage(LoadStage.LOADING)
            contents = read_model(Path(package), function)
            program = Program(contents, optimize=self.optimize)
        except PackageError:
            stage(LoadStage.FAILED)
            raise
        except Exception as exc:  # anything unexpected while reading is still a failed load
            stage(LoadStage.FAILED)
            raise ModelLoadFailed(str(package), f"{type(exc).__name__}: {exc}") from exc
        device = mx.cpu if compute_units == ComputeUnits.CPU_ONLY else mx.default_device()
        model = PortableModel(program, contents.description, device, compile=self.compile)
        stage(LoadStage.READY)
        return model
