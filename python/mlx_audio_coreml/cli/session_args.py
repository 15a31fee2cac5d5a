"""The session flags shared by every command that loads a model, and the lines that say what runs and why.

    --backend {auto,coreml,mlx}              who runs the command's Core ML-capable part
    --runtime {apple,coremltools,portable}   which Core ML runtime (default: apple, then coremltools)
    --coreml-package [COMPONENT=]PATH        that part's Core ML package: a folder or a hub repo id
    --strict                                 Core ML or an error, never a quiet fall back to MLX
    --dtype                                  MLX weights precision (Whisper)

`SessionFlags.from_args(args, component)` reads them; `.options()` turns them into the API's
`ModelLoadingOptions` (the same recipe works in Python); `explain(info)` renders a loaded
session's `SessionInfo` as one line per component; `report()` prints those lines on stderr and
enforces --strict. `show_kernel_log()` lets the first transcription's kernel line reach stderr.
"""

from __future__ import annotations

import argparse
import logging
import sys
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from ..errors import CoreMLRequired, InvalidOption
from ..info import ComponentInfo, SessionInfo
from ..options import RUNTIME_NAMES, BackendPreference, Component, ModelLoadingOptions, WhisperQuantization

BACKENDS = {"auto": BackendPreference.AUTO, "coreml": BackendPreference.CORE_ML, "mlx": BackendPreference.MLX}
DTYPES = tuple(q.value for q in WhisperQuantization)
_PACKAGE_SUFFIXES = (".mlpackage", ".mlmodelc", ".zip")
_KERNEL_LOGGER = "mlx_audio_coreml.cpu.report"


def add_session_flags(parser: argparse.ArgumentParser, component: Component, *, dtype: bool) -> None:
    """Add the shared flags to a command whose Core ML-capable part is `component`."""
    part = component.value
    parser.add_argument(
        "--backend", choices=tuple(BACKENDS), default="auto",
        help=f"who runs the {part}: auto (Core ML when a package, a runtime and a Neural Engine are all there), coreml, mlx",
    )  # fmt: skip
    parser.add_argument(
        "--runtime", choices=RUNTIME_NAMES, default=None,
        help="Core ML runtime (default: apple, then coremltools; 'portable' runs a package with MLX on any OS, only when named)",
    )  # fmt: skip
    parser.add_argument(
        "--coreml-package", dest="coreml_packages", action="append", default=[], type=_package(component),
        metavar="[COMPONENT=]PATH",
        help=f"Core ML package for the {part} (.mlpackage or .mlmodelc folder, or a hub repo id); repeatable with encoder=/vocoder=",
    )  # fmt: skip
    parser.add_argument(
        "--strict", action="store_true",
        help="require Core ML (implies --backend coreml): exit with an error instead of running MLX",
    )  # fmt: skip
    if dtype:
        parser.add_argument("--dtype", choices=DTYPES, default="float16", help="MLX weights precision or quantization")


def _package(default: Component) -> Any:
    """argparse type for --coreml-package: (component, local Path or hub repo id)."""
    names = {c.value: c for c in Component}

    def parse(text: str) -> tuple[Component, str | Path]:
        prefix, sep, rest = text.partition("=")
        component, value = (names[prefix], rest) if sep and prefix in names else (default, text)
        path = Path(value).expanduser()
        if path.exists():
            return component, path.resolve()
        if value.endswith(_PACKAGE_SUFFIXES) or value.startswith((".", "/", "~")):
            raise argparse.ArgumentTypeError(f"no Core ML package at {path}")
        return component, value  # a hub repo id (owner/name)

    return parse


@dataclass(frozen=True)
class SessionFlags:
    """The shared flags as given; `component` is the part --backend and --strict are about."""

    component: Component = Component.ENCODER
    backend: str = "auto"
    runtime: str | None = None
    packages: Mapping[Component, str | Path] = field(default_factory=dict)
    strict: bool = False
    dtype: str | None = None

    @classmethod
    def from_args(cls, args: argparse.Namespace, component: Component) -> SessionFlags:
        backend = getattr(args, "backend", "auto")
        strict = bool(getattr(args, "strict", False))
        if strict and backend == "mlx":
            raise InvalidOption("--strict", "--backend mlx", "--strict requires Core ML; drop one of them")
        return cls(
            component=component, backend="coreml" if strict else backend, runtime=getattr(args, "runtime", None),
            packages=dict(getattr(args, "coreml_packages", None) or []), strict=strict, dtype=getattr(args, "dtype", None),
        )  # fmt: skip

    def options(self, base: ModelLoadingOptions | None = None) -> ModelLoadingOptions:
        """The loading options these flags ask for (`base` keeps everything they do not name)."""
        changes: dict[str, Any] = {}
        preference = BACKENDS[self.backend]
        if preference is not BackendPreference.AUTO:  # an override: `coreml` skips the Neural Engine check
            changes["backend_overrides"] = {self.component: preference}
        if self.runtime is not None:
            changes["coreml_runtime"] = self.runtime
        if self.packages:
            changes["coreml_sources"] = dict(self.packages)
        if self.dtype is not None:
            changes["quantization"] = WhisperQuantization(self.dtype)
        return (base or ModelLoadingOptions.default()).with_(**changes)


def describe_component(c: ComponentInfo) -> str:
    """One line: what runs the component, and why (the selection rule or the failure)."""
    if c.backend is BackendPreference.CORE_ML:
        compiled = "; Neural Engine compile done" if c.ane_compiled else ""
        return (
            f"{c.component.value}: Core ML, runtime {c.runtime} ({c.reason}{compiled})"  # the reason names the package
        )
    why = f"Core ML failed: {c.fallback_reason}" if c.fallback_reason else c.reason
    return f"{c.component.value}: MLX ({why})"


def explain(info: SessionInfo, flags: SessionFlags | None = None) -> list[str]:
    """Lines for stderr: each component's backend and why, a hint when a package waits unused, notes."""
    from ..loading.selection import ANE_NOT_SUPPORTED, NO_RUNTIME  # (the reasons a named portable runtime overcomes)

    lines = [describe_component(c) for c in info.components]
    flags = flags or SessionFlags()
    no_native = (ANE_NOT_SUPPORTED, NO_RUNTIME)
    unused = [c for c in info.components if c.component in flags.packages and c.reason.startswith(no_native)]
    if unused and flags.runtime is None:
        lines.append("hint: no Neural Engine or native Core ML here; --runtime portable runs the package with MLX")
    return lines + [f"note: {note}" for note in info.notes]  # e.g. the weights' real precision


def report(info: SessionInfo, flags: SessionFlags, *, out: Any = None) -> None:
    """Print `explain(info)` on stderr, then raise CoreMLRequired if --strict was not met."""
    stream = out or sys.stderr
    for line in explain(info, flags):
        print(line, file=stream)
    if not flags.strict:
        return
    found = info.component(flags.component)
    if found is None or found.backend is not BackendPreference.CORE_ML:
        reason = (found.fallback_reason or found.reason) if found else "this session has no such part"
        raise CoreMLRequired(flags.component.value, "MLX", reason)


class _StderrLines(logging.Handler):
    """Each record as one line on the current sys.stderr (not the one at creation: tests swap it)."""

    def emit(self, record: logging.LogRecord) -> None:
        print(self.format(record), file=sys.stderr)


def show_kernel_log() -> None:
    """Show the library's 'cpu kernels: ...' line (logged once, at the first transcription) on stderr."""
    logger = logging.getLogger(_KERNEL_LOGGER)
    if not any(isinstance(h, _StderrLines) for h in logger.handlers):
        logger.addHandler(_StderrLines())
    logger.setLevel(logging.INFO)
