"""The seed's `SessionInfo`: what a loaded session actually runs, for debugging and logging.

    session = WhisperSession.from_pretrained("tiny.en")
    session.info.encoder_backend   # BackendPreference.MLX or BackendPreference.CORE_ML
    session.info.did_fallback      # Core ML was chosen or demanded, and could not run
    session.info.fallback_reasons  # why, one line per fallback

What the fields promise:
- `did_fallback` is true only when Core ML was chosen by selection (or demanded with CORE_ML) and
  then could not run: the package lookup or download failed, the package did not belong to the
  model, the compile failed, timed out or was cancelled, the warm-up or a later call failed. A
  component that auto selection never tried on Core ML (no Neural Engine, no runtime, no package)
  is not a fallback: its `ComponentInfo.reason` says why, and the progress handler heard
  `CoreMLUnavailable`. A compile left to `warmup()` is pending, not a fallback.
- `ane_compiled` is true only when a Neural Engine compile could happen (a runtime that uses it,
  a machine that has one, compute units that include it) and completed.
- `quantization` is what the MLX weights really are; the notes never contradict it.
"""

from __future__ import annotations

import threading
from dataclasses import dataclass, field
from typing import Any

from .options import BackendPreference, Component, WhisperQuantization


@dataclass(frozen=True)
class ComponentInfo:
    """How one component was decided and what runs it."""

    component: Component
    requested: BackendPreference  # the caller's preference for it (override or session-wide)
    backend: BackendPreference  # what actually runs: MLX or CORE_ML, never AUTO
    runtime: str | None  # "mlx", or the Core ML runtime ("apple", "coremltools", "portable")
    reason: str  # why this backend: the selection rule, or the failure that forced the fallback
    fallback_reason: str | None = None  # set when Core ML was chosen or demanded and could not run
    package: str | None = None  # the Core ML package path, when one was resolved
    ane_compiled: bool = False  # a Neural Engine compile completed for this component's package
    compile_duration_s: float | None = None  # its last Core ML compile attempt (None: none was made)

    @property
    def did_fallback(self) -> bool:
        return self.fallback_reason is not None


@dataclass(frozen=True)
class SessionInfo:
    """A snapshot: a session's `.info` returns a new one after a warmup or a fallback."""

    encoder_backend: BackendPreference
    vocoder_backend: BackendPreference | None  # None: this session has no vocoder (speech-to-text)
    encoder_runtime: str | None
    vocoder_runtime: str | None
    ane_compiled: bool  # a Core ML compile completed on a runtime that uses the Neural Engine
    did_fallback: bool  # some component's Core ML was chosen or demanded and could not run
    fallback_reasons: tuple[str, ...]
    load_duration_s: float  # from_pretrained's start to the model being usable (MLX ready)
    components: tuple[ComponentInfo, ...] = field(default=())
    quantization: WhisperQuantization = WhisperQuantization.FLOAT16  # what the MLX weights are in
    model: str = ""  # the model name or path the session was created from
    notes: tuple[str, ...] = ()  # other things worth logging, e.g. a quantization that fell back to float16
    compile_duration_s: float | None = None  # the last Core ML compile attempt (None: none was made)

    @classmethod
    def from_components(
        cls,
        components: tuple[ComponentInfo, ...],
        *,
        load_duration_s: float,
        quantization: WhisperQuantization,
        model: str,
        notes: tuple[str, ...] = (),
    ) -> SessionInfo:
        """Build the summary fields from the per-component records so they can never disagree."""
        by_component = {c.component: c for c in components}
        encoder = by_component.get(Component.ENCODER)
        vocoder = by_component.get(Component.VOCODER)
        reasons = tuple(f"{c.component.value}: {c.fallback_reason}" for c in components if c.did_fallback)
        compiles = [c.compile_duration_s for c in components if c.compile_duration_s is not None]
        return cls(
            encoder_backend=encoder.backend if encoder else BackendPreference.MLX,
            vocoder_backend=vocoder.backend if vocoder else None,
            encoder_runtime=encoder.runtime if encoder else None,
            vocoder_runtime=vocoder.runtime if vocoder else None,
            ane_compiled=any(c.ane_compiled for c in components),
            did_fallback=bool(reasons),
            fallback_reasons=reasons,
            load_duration_s=load_duration_s,
            components=components,
            quantization=quantization,
            model=model,
            notes=tuple(notes),
            compile_duration_s=sum(compiles) if compiles else None,
        )

    def component(self, component: Component) -> ComponentInfo | None:
        return next((c for c in self.components if c.component is component), None)


class SessionRecorder:
    """What a session has decided so far, updated from any thread; `snapshot()` builds its SessionInfo."""

    def __init__(self, model: str) -> None:
        self.model = model
        self._lock = threading.Lock()
        self._components: dict[Component, ComponentInfo] = {}
        self._fields: dict[str, Any] = {"duration_s": None, "notes": (), "quantization": WhisperQuantization.FLOAT16}

    def record(self, info: ComponentInfo) -> None:
        with self._lock:
            self._components[info.component] = info

    def component(self, component: Component) -> ComponentInfo | None:
        with self._lock:
            return self._components.get(component)

    def update(self, **fields: Any) -> None:
        """Set any of duration_s, notes, quantization."""
        unknown = set(fields) - set(self._fields)
        if unknown:
            raise TypeError(f"unknown session fields {sorted(unknown)}")
        with self._lock:
            self._fields.update(fields)

    def snapshot(self) -> SessionInfo:
        with self._lock:
            components = tuple(self._components[c] for c in Component if c in self._components)
            fields = dict(self._fields)
        return SessionInfo.from_components(
            components,
            load_duration_s=fields["duration_s"] or 0.0,
            quantization=fields["quantization"],
            model=self.model,
            notes=tuple(fields["notes"]),
        )
