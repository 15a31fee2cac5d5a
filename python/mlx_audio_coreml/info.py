"""The seed's `SessionInfo`: what a loaded session actually runs, for debugging and logging.

    session = WhisperSession.from_pretrained("tiny.en")
    session.info.encoder_backend   # BackendPreference.MLX or BackendPreference.CORE_ML
    session.info.did_fallback      # True when a component asked for Core ML (or auto) got MLX
    session.info.fallback_reasons  # why, one line per fallback
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
    fallback_reason: str | None = None  # set when Core ML was asked for (or auto) and MLX runs
    package: str | None = None  # the Core ML package path, when one was resolved

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
    did_fallback: bool  # some component that asked for Core ML (or auto) runs on MLX
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
        ane_compiled: bool,
        load_duration_s: float,
        quantization: WhisperQuantization,
        model: str,
        notes: tuple[str, ...] = (),
        compile_duration_s: float | None = None,
    ) -> SessionInfo:
        """Build the summary fields from the per-component records so they can never disagree."""
        by_component = {c.component: c for c in components}
        encoder = by_component.get(Component.ENCODER)
        vocoder = by_component.get(Component.VOCODER)
        reasons = tuple(f"{c.component.value}: {c.fallback_reason}" for c in components if c.did_fallback)
        return cls(
            encoder_backend=encoder.backend if encoder else BackendPreference.MLX,
            vocoder_backend=vocoder.backend if vocoder else None,
            encoder_runtime=encoder.runtime if encoder else None,
            vocoder_runtime=vocoder.runtime if vocoder else None,
            ane_compiled=ane_compiled,
            did_fallback=bool(reasons),
            fallback_reasons=reasons,
            load_duration_s=load_duration_s,
            components=components,
            quantization=quantization,
            model=model,
            notes=tuple(notes),
            compile_duration_s=compile_duration_s,
        )

    def component(self, component: Component) -> ComponentInfo | None:
        return next((c for c in self.components if c.component is component), None)


class SessionRecorder:
    """What a session has decided so far, updated from any thread; `snapshot()` builds its SessionInfo."""

    def __init__(self, model: str) -> None:
        self.model = model
        self._lock = threading.Lock()
        self._components: dict[Component, ComponentInfo] = {}
        self._fields: dict[str, Any] = {
            "duration_s": None, "compile_s": None, "ane_compiled": False, "notes": (),
            "quantization": WhisperQuantization.FLOAT16,
        }  # fmt: skip

    def record(self, info: ComponentInfo) -> None:
        with self._lock:
            self._components[info.component] = info

    def component(self, component: Component) -> ComponentInfo | None:
        with self._lock:
            return self._components.get(component)

    def update(self, **fields: Any) -> None:
        """Set any of duration_s, compile_s, ane_compiled, notes, quantization."""
        unknown = set(fields) - set(self._fields)
        if unknown:
            raise TypeError(f"unknown session fields {sorted(unknown)}")
        with self._lock:
            self._fields.update(fields)

    def snapshot(self, extra_notes: tuple[str, ...] = ()) -> SessionInfo:
        with self._lock:
            components = tuple(self._components[c] for c in Component if c in self._components)
            fields = dict(self._fields)
        return SessionInfo.from_components(
            components,
            ane_compiled=fields["ane_compiled"],
            load_duration_s=fields["duration_s"] or 0.0,
            quantization=fields["quantization"],
            model=self.model,
            notes=tuple(fields["notes"]) + extra_notes,
            compile_duration_s=fields["compile_s"],
        )
