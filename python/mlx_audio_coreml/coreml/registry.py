"""Find Core ML runtimes by name without importing what a machine cannot run."""

from __future__ import annotations

import importlib

from ..errors import CoreMLRuntimeUnavailable
from ..options import RUNTIME_NAMES as RUNTIME_NAMES  # the names live with the options that take them
from ..options import CoreMLRuntimeName
from .runtime import Availability, CoreMLRuntime

# name -> (module, class); imported on first use so a missing dependency only affects its runtime
_RUNTIMES: dict[str, tuple[str, str]] = {
    CoreMLRuntimeName.APPLE.value: ("mlx_audio_coreml.coreml.apple", "AppleRuntime"),
    CoreMLRuntimeName.COREMLTOOLS.value: ("mlx_audio_coreml.coreml.coremltools_runtime", "CoremltoolsRuntime"),
    CoreMLRuntimeName.PORTABLE.value: ("mlx_audio_coreml.coreml.portable", "PortableRuntime"),
}


def runtime_class(name: str) -> type[CoreMLRuntime]:
    if name not in _RUNTIMES:
        raise CoreMLRuntimeUnavailable(name, f"no such runtime; choose one of {list(_RUNTIMES)}")
    module_name, class_name = _RUNTIMES[name]
    try:
        module = importlib.import_module(module_name)
    except ImportError as exc:
        raise CoreMLRuntimeUnavailable(name, f"its module cannot be imported: {exc}") from exc
    return getattr(module, class_name)


def availability(name: str) -> Availability:
    try:
        return runtime_class(name).availability()
    except CoreMLRuntimeUnavailable as exc:
        return Availability(False, exc.reason)


def get_runtime(name: str) -> CoreMLRuntime:
    """An instance of the named runtime, or CoreMLRuntimeUnavailable with the reason it cannot run here."""
    cls = runtime_class(name)
    found = cls.availability()
    if not found.available:
        raise CoreMLRuntimeUnavailable(name, found.reason)
    return cls()
