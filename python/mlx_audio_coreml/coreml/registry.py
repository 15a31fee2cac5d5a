"""Find Core ML runtimes by name without importing what a machine cannot run."""

from __future__ import annotations

import importlib

from ..errors import CoreMLUnavailable
from .runtime import Availability, CoreMLRuntime

# name -> (module, class); imported on first use so a missing dependency only affects its runtime
_RUNTIMES: dict[str, tuple[str, str]] = {
    "apple": ("mlx_audio_coreml.coreml.apple", "AppleRuntime"),
    "coremltools": ("mlx_audio_coreml.coreml.coremltools_runtime", "CoremltoolsRuntime"),
    "portable": ("mlx_audio_coreml.coreml.portable", "PortableRuntime"),
}

RUNTIME_NAMES: tuple[str, ...] = tuple(_RUNTIMES)


def runtime_class(name: str) -> type[CoreMLRuntime]:
    if name not in _RUNTIMES:
        raise CoreMLUnavailable(name, f"no such runtime; choose one of {list(_RUNTIMES)}")
    module_name, class_name = _RUNTIMES[name]
    try:
        module = importlib.import_module(module_name)
    except ImportError as exc:
        raise CoreMLUnavailable(name, f"its module cannot be imported: {exc}") from exc
    return getattr(module, class_name)


def availability(name: str) -> Availability:
    try:
        return runtime_class(name).availability()
    except CoreMLUnavailable as exc:
        return Availability(False, exc.reason)


def get_runtime(name: str) -> CoreMLRuntime:
    """An instance of the named runtime, or CoreMLUnavailable with the reason it cannot run here."""
    cls = runtime_class(name)
    found = cls.availability()
    if not found.available:
        raise CoreMLUnavailable(name, found.reason)
    return cls()
