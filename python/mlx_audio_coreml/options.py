"""The seed's `ModelLoadingOptions`: how a session loads its model and picks a backend per component.

Swift's presets become classmethods (`ModelLoadingOptions.max_performance()`); change one field
with `options.with_(backend=BackendPreference.MLX)` (a `dataclasses.replace` that also checks the
new values).
"""

from __future__ import annotations

import dataclasses
import enum
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from types import MappingProxyType
from typing import Any, cast

__all__ = [
    "BackendPreference",
    "Component",
    "ComputeUnits",
    "CoreMLRuntimeName",
    "DEFAULT_COMPILE_TIMEOUT_S",
    "ModelLoadingOptions",
    "WhisperQuantization",
]

# The seed: "ANE compilation timeout: >10 min compilation -> cancel, fall back to MLX".
DEFAULT_COMPILE_TIMEOUT_S = 600.0


class BackendPreference(enum.Enum):
    """Which framework runs a component. Also the type of `SessionInfo.encoder_backend`."""

    AUTO = "auto"  # the system decides (Core ML only when available and beneficial)
    CORE_ML = "coreML"  # prefer Core ML; fall back to MLX when it cannot run
    MLX = "mlx"  # MLX only: no Core ML lookup, download or compile at all


class ComputeUnits(enum.IntEnum):
    """`MLModelConfiguration.computeUnits`, with Apple's raw values. A request, not a promise."""

    CPU_ONLY = 0
    CPU_AND_GPU = 1
    ALL = 2
    CPU_AND_NEURAL_ENGINE = 3  # macOS 13+


class CoreMLRuntimeName(enum.Enum):
    """The Core ML runtimes (coreml/registry.py maps each to its class)."""

    APPLE = "apple"  # the Swift shim: macOS 13+ on Apple silicon
    COREMLTOOLS = "coremltools"  # coremltools' MLModel.predict: macOS only
    PORTABLE = "portable"  # ML Programs executed with MLX, any OS; never chosen silently


RUNTIME_NAMES: tuple[str, ...] = tuple(name.value for name in CoreMLRuntimeName)


class Component(enum.Enum):
    """The fixed-shape parts that have a Core ML implementation."""

    ENCODER = "encoder"  # the Whisper audio encoder
    VOCODER = "vocoder"  # the Kokoro vocoder (text-to-speech, a later issue)


class WhisperQuantization(enum.Enum):
    """Precision of the MLX weights. Core ML packages keep the precision they were converted at."""

    FLOAT16 = "float16"
    FLOAT32 = "float32"
    INT8 = "int8"  # MLX affine quantization, 8 bits
    INT4 = "int4"  # MLX affine quantization, 4 bits

    @property
    def bits(self) -> int | None:
        """Bits of a quantized format, None for the float formats."""
        return {"int8": 8, "int4": 4}.get(self.value)


def _freeze(mapping: Mapping[Any, Any] | None) -> Mapping[Any, Any]:
    return MappingProxyType(dict(mapping or {}))


def _hashable(value: object) -> object:
    if isinstance(value, Mapping):  # the frozen mappings hash by their items, in a fixed order
        return tuple(sorted(cast("Mapping[object, object]", value).items(), key=repr))
    return value


@dataclass(frozen=True)
class ModelLoadingOptions:
    """Every choice a caller can make about loading; the defaults are the seed's `.default`."""

    quantization: WhisperQuantization = WhisperQuantization.FLOAT16
    load_in_background: bool = False  # from_pretrained returns at once; loading goes on in a worker
    fallback_to_float16: bool = True  # a quantization that fails to load falls back to float16
    backend: BackendPreference = BackendPreference.AUTO
    # Per-component preference; beats `backend` for that component.
    backend_overrides: Mapping[Component, BackendPreference] = field(default_factory=dict[Component, BackendPreference])
    compile_timeout_s: float = DEFAULT_COMPILE_TIMEOUT_S  # Core ML compile + load + specialization
    # The seed's "user accepts compilation delay": under AUTO, off means a package that is not
    # compiled yet is left to `warmup()` (MLX runs meanwhile) instead of compiling during the load.
    accept_compile_delay: bool = True
    compute_units: ComputeUnits = ComputeUnits.ALL  # a request to Core ML, not a promise
    # None: automatic (apple, then coremltools; never portable). Or a CoreMLRuntimeName / its value.
    coreml_runtime: str | None = None
    # Where a component's Core ML package comes from: a local .mlpackage path or a Hugging Face repo
    # id. Unset components use the companion repo `<model repo>-coreml`.
    coreml_sources: Mapping[Component, str | Path] = field(default_factory=dict[Component, str | Path])
    # No package anywhere: convert the MLX encoder now (coremltools, seconds to minutes) and keep
    # the result in the local store for later sessions. ARCHITECTURE's "conversion on the spot".
    convert_missing: bool = False

    def __post_init__(self) -> None:
        # Mappings are copied read-only so a frozen options object cannot change under a session.
        object.__setattr__(self, "backend_overrides", _freeze(self.backend_overrides))
        object.__setattr__(self, "coreml_sources", _freeze(self.coreml_sources))
        object.__setattr__(self, "quantization", WhisperQuantization(self.quantization))
        object.__setattr__(self, "backend", BackendPreference(self.backend))
        object.__setattr__(self, "compute_units", ComputeUnits(self.compute_units))
        self._check()

    def _check(self) -> None:
        # Checked at run time too: callers without a type checker may pass plain strings.
        for component, preference in cast("Mapping[object, object]", self.backend_overrides).items():
            if not isinstance(component, Component) or not isinstance(preference, BackendPreference):
                raise TypeError(
                    f"backend_overrides maps Component to BackendPreference, got {component!r}: {preference!r}"
                )
        for component in cast("Mapping[object, object]", self.coreml_sources):
            if not isinstance(component, Component):
                raise TypeError(f"coreml_sources is keyed by Component, got {component!r}")
        if not self.compile_timeout_s > 0:
            raise ValueError(f"compile_timeout_s must be positive, got {self.compile_timeout_s}")
        if isinstance(self.coreml_runtime, CoreMLRuntimeName):
            object.__setattr__(self, "coreml_runtime", self.coreml_runtime.value)
        if self.coreml_runtime is not None and self.coreml_runtime not in RUNTIME_NAMES:
            raise ValueError(
                f"coreml_runtime must be None or one of {list(RUNTIME_NAMES)}, got {self.coreml_runtime!r}"
            )

    def __hash__(self) -> int:
        return hash(tuple(_hashable(getattr(self, f.name)) for f in dataclasses.fields(self)))

    # --- The seed's presets ---------------------------------------------------------------------

    @classmethod
    def default(cls) -> ModelLoadingOptions:
        """Auto backend selection, float16, loaded in the foreground."""
        return cls(
            quantization=WhisperQuantization.FLOAT16,
            load_in_background=False,
            fallback_to_float16=True,
            backend=BackendPreference.AUTO,
        )

    @classmethod
    def max_performance(cls) -> ModelLoadingOptions:
        """Prefer Core ML where available; 4-bit MLX weights; load in the background."""
        return cls(
            quantization=WhisperQuantization.INT4,
            load_in_background=True,
            fallback_to_float16=True,
            backend=BackendPreference.CORE_ML,
        )

    @classmethod
    def mlx_only(cls) -> ModelLoadingOptions:
        """Skip Core ML entirely."""
        return cls(
            quantization=WhisperQuantization.FLOAT16,
            load_in_background=False,
            fallback_to_float16=True,
            backend=BackendPreference.MLX,
        )

    # --- Merging --------------------------------------------------------------------------------

    def with_(self, **changes: Any) -> ModelLoadingOptions:
        """A copy with `changes` applied (validated like a new object)."""
        return dataclasses.replace(self, **changes)

    def preference_for(self, component: Component) -> BackendPreference:
        """What the caller asked for this component: its override, else the session-wide preference."""
        return self.backend_overrides.get(component, self.backend)
